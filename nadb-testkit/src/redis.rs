//! Real Redis servers for tests: [`RedisServer`] starts a private `redis-server` on a free
//! loopback port in a temporary directory, [`RedisCluster`] a cluster of such servers joined
//! with `redis-cli --cluster create`. Both stop their processes (by pid) when dropped. A test
//! never talks to a server it did not start.
//!
//! When `redis-server` or `redis-cli` is missing, starting fails with a message that says how
//! to install them; tests should fail with it, never pass.
//!
//! ```no_run
//! let server = nadb_testkit::redis::RedisServer::start().unwrap();
//! println!("{}", server.url()); // redis://127.0.0.1:PORT/0
//! server.cli(&["CONFIG", "RESETSTAT"]).unwrap();
//! ```

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What to tell a developer whose machine lacks Redis.
pub const INSTALL_HINT: &str = "redis-server and redis-cli are needed for the Redis tests: \
     install them with `sudo apt-get install redis-server` (Debian/Ubuntu), \
     `brew install redis` (macOS), or run scripts/test.sh, which installs them";

/// A `redis-server` process this test started.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    args: Vec<String>,
    _tmp: Option<tempfile::TempDir>,
}

fn which(tool: &str) -> Result<(), String> {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    if found {
        Ok(())
    } else {
        Err(format!("`{tool}` is not on PATH. {INSTALL_HINT}"))
    }
}

/// A loopback port nobody listens on now (and, for cluster nodes, whose bus port +10000 is
/// free too).
fn free_port(with_bus: bool) -> Result<u16, String> {
    for _ in 0..100 {
        let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
        let port = l.local_addr().map_err(|e| e.to_string())?.port();
        if !with_bus {
            return Ok(port);
        }
        if port < 55_000 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return Ok(port);
        }
    }
    Err("no free loopback port pair found".into())
}

/// Sends one command in RESP and returns the first line of the reply.
fn raw_command(port: u16, args: &[&str]) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    s.write_all(req.as_bytes())?;
    let mut buf = [0u8; 512];
    let n = s.read(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf[..n])
        .lines()
        .next()
        .unwrap_or("")
        .to_string())
}

/// The `process_id` a server on `port` reports.
fn server_pid(port: u16) -> Option<u32> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n").ok()?;
    let mut text = Vec::new();
    let mut buf = [0u8; 4096];
    while text.len() < 64 * 1024 {
        let n = s.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        text.extend_from_slice(&buf[..n]);
        let t = String::from_utf8_lossy(&text);
        if let Some(at) = t.find("process_id:") {
            let rest = &t[at + "process_id:".len()..];
            // Only a whole line: the number may be split across reads.
            if let Some(end) = rest.find("\r\n") {
                return rest[..end].trim().parse().ok();
            }
        }
    }
    None
}

impl RedisServer {
    /// Starts a standalone server with persistence off.
    pub fn start() -> Result<RedisServer, String> {
        RedisServer::start_with(&["--save", "", "--appendonly", "no"])
    }

    /// Starts a server with extra `redis-server` arguments (e.g. `--appendonly yes`).
    pub fn start_with(args: &[&str]) -> Result<RedisServer, String> {
        let tmp = tempfile::tempdir().map_err(|e| format!("no temporary directory: {e}"))?;
        let dir = tmp.path().to_path_buf();
        let mut server = RedisServer::launch(&dir, args, false)?;
        server._tmp = Some(tmp);
        Ok(server)
    }

    fn launch(dir: &Path, args: &[&str], cluster: bool) -> Result<RedisServer, String> {
        which("redis-server")?;
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port(cluster)?;
            let mut server = RedisServer {
                child: None,
                port,
                dir: dir.to_path_buf(),
                args: args.iter().map(|a| a.to_string()).collect(),
                _tmp: None,
            };
            match server.spawn() {
                Ok(()) => return Ok(server),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn spawn(&mut self) -> Result<(), String> {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--dir", &self.dir.to_string_lossy()])
            .args(["--protected-mode", "no", "--daemonize", "no"])
            .args(["--logfile", "redis.log"])
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start redis-server: {e}. {INSTALL_HINT}"))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                self.child = None;
                return Err(format!(
                    "redis-server exited with {status} (port {} taken?); log: {}",
                    self.port,
                    self.dir.join("redis.log").display()
                ));
            }
            // LOADING while an AOF replays: keep waiting for PONG, and only from our own
            // process (another test's server may have taken the port first).
            if let Ok(reply) = raw_command(self.port, &["PING"])
                && reply == "+PONG"
                && server_pid(self.port) == self.pid()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.kill();
                return Err(format!("redis-server on port {} did not answer", self.port));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Runs `redis-cli -p PORT ARGS…` and returns its standard output.
    pub fn cli(&self, args: &[&str]) -> Result<String, String> {
        cli(self.port, args)
    }

    /// Kills the server with SIGKILL (no shutdown save), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the server again on the same port and directory (it reloads its AOF/RDB).
    pub fn restart(&mut self) -> Result<(), String> {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.spawn() {
                Ok(()) => return Ok(()),
                // The old socket may linger a moment.
                Err(e) if Instant::now() > deadline => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `redis-cli -p PORT ARGS…`.
pub fn cli(port: u16, args: &[&str]) -> Result<String, String> {
    which("redis-cli")?;
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run redis-cli: {e}. {INSTALL_HINT}"))?;
    if !out.status.success() {
        return Err(format!(
            "redis-cli {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A Redis Cluster of primaries without replicas, every node a [`RedisServer`].
#[derive(Debug)]
pub struct RedisCluster {
    /// The nodes, in the order they were created.
    pub nodes: Vec<RedisServer>,
    _tmp: tempfile::TempDir,
}

impl RedisCluster {
    /// Starts `primaries` (at least 3) nodes and joins them into a cluster covering every slot.
    pub fn start(primaries: usize) -> Result<RedisCluster, String> {
        which("redis-cli")?;
        let tmp = tempfile::tempdir().map_err(|e| format!("no temporary directory: {e}"))?;
        let mut nodes = Vec::new();
        for i in 0..primaries {
            let dir = tmp.path().join(format!("node{i}"));
            std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
            nodes.push(RedisServer::launch(
                &dir,
                &[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "5000",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ],
                true,
            )?);
        }
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let mut args = vec!["--cluster", "create"];
        args.extend(addrs.iter().map(String::as_str));
        args.extend(["--cluster-replicas", "0", "--cluster-yes"]);
        cli(nodes[0].port, &args)?;
        let cluster = RedisCluster { nodes, _tmp: tmp };
        cluster.wait_ok()?;
        Ok(cluster)
    }

    /// Waits until every node reports `cluster_state:ok` and agrees on the slot map.
    pub fn wait_ok(&self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ok = self.nodes.iter().all(|n| {
                n.cli(&["CLUSTER", "INFO"])
                    .is_ok_and(|i| i.contains("cluster_state:ok"))
            }) && self.nodes.first().is_some_and(|n| {
                cli(
                    n.port,
                    &["--cluster", "check", &format!("127.0.0.1:{}", n.port)],
                )
                .is_ok_and(|o| o.contains("All 16384 slots covered"))
            });
            if ok {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err("the cluster did not become ready".into());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `redis+cluster://127.0.0.1:P1,127.0.0.1:P2,…`.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        format!("redis+cluster://{}", hosts.join(","))
    }

    /// The node serving `slot`, by its own `CLUSTER NODES` line.
    pub fn owner_of(&self, slot: u16) -> Result<&RedisServer, String> {
        for n in &self.nodes {
            let nodes = n.cli(&["CLUSTER", "NODES"])?;
            let Some(line) = nodes.lines().find(|l| l.contains("myself")) else {
                continue;
            };
            for r in line.split(' ').skip(8) {
                let (lo, hi) = r.split_once('-').unwrap_or((r, r));
                if let (Ok(lo), Ok(hi)) = (lo.parse::<u16>(), hi.parse::<u16>())
                    && (lo..=hi).contains(&slot)
                {
                    return Ok(n);
                }
            }
        }
        Err(format!("no node serves slot {slot}"))
    }

    /// The node id of `node`.
    pub fn id_of(node: &RedisServer) -> Result<String, String> {
        Ok(node.cli(&["CLUSTER", "MYID"])?.trim().to_string())
    }
}
