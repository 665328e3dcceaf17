//! Process-level crash tests. This binary is both the test and, when started with a role
//! (see `nadb_testkit::process`), the child process the test kills.
//!
//! - `kill9_never_loses_an_acknowledged_write`: a child writes with Immediate acks and prints
//!   each acknowledged key; the parent SIGKILLs it at a random moment, reopens the directory
//!   (which must never fail) and checks every key ever acknowledged. 100 kills by default;
//!   set `NADB_KILL_ITERATIONS` (e.g. 1000) for more.
//! - `a_second_process_gets_locked`: a child holds the store open; opening it here fails with
//!   `Error::Locked` naming the child's pid.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use libtest_mimic::{Arguments, Failed, Trial};
use nadb_backend_fs::FsBackend;
use nadb_core::{Error, FlushPolicy, Store};
use nadb_testkit::process::{self, ChildGuard};
use rand::Rng;

fn value_of(i: u64) -> String {
    format!("value-{i}-{}", "x".repeat((i % 97) as usize))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Child: write keys from `start` on with Immediate acks, printing each acknowledged index.
fn writer(dir: String, start: u64) -> ExitCode {
    runtime().block_on(async move {
        let store = Store::builder(FsBackend::open(&dir).await.expect("open"))
            .flush_policy(FlushPolicy::Immediate)
            .sweep_interval(None)
            .build()
            .await
            .expect("store");
        // Writers in parallel, so kills land inside group commits too.
        let mut tasks = Vec::new();
        for w in 0..4u64 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut i = start + w;
                loop {
                    store
                        .set(&format!("k{i:012}"), value_of(i))
                        .await
                        .expect("set");
                    println!("{i}");
                    i += 4;
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    });
    ExitCode::SUCCESS
}

/// Child: hold the store open until killed.
fn holder(dir: String) -> ExitCode {
    runtime().block_on(async move {
        let _backend = FsBackend::open(&dir).await.expect("open");
        println!("ready");
        tokio::time::sleep(Duration::from_secs(600)).await;
    });
    ExitCode::SUCCESS
}

fn child(role: &str, dir: &std::path::Path, start: u64) -> ChildGuard {
    let dir = dir.display().to_string();
    process::spawn(role, &[("DIR", &dir), ("START", &start.to_string())]).expect("spawn the child")
}

fn kill9() -> Result<(), Failed> {
    let iterations: u64 = std::env::var("NADB_KILL_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let rt = runtime();
    let mut acked: BTreeMap<u64, ()> = BTreeMap::new();
    let mut next = 0u64;
    let mut rng = rand::rng();
    for round in 0..iterations {
        let mut c = child("writer", dir.path(), next);
        let (rx, reader) = process::numbers_printed_by(&mut c).map_err(|e| e.to_string())?;
        // Let it run a random while after its first acknowledgement, then SIGKILL it.
        let first = rx
            .recv_timeout(Duration::from_secs(30))
            .map_err(|_| "child never acked")?;
        acked.insert(first, ());
        let deadline = Instant::now() + Duration::from_millis(rng.random_range(0..40));
        while let Ok(i) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            acked.insert(i, ());
        }
        drop(c); // SIGKILL, then reap
        let _ = reader.join();
        // Lines already printed were acknowledged before the kill.
        while let Ok(i) = rx.try_recv() {
            acked.insert(i, ());
        }
        next = acked.keys().next_back().map_or(0, |m| m + 4 - (m % 4)) + 4 * (round + 1);
        // Reopen: must never fail, and must hold every acknowledged key.
        rt.block_on(async {
            let backend = FsBackend::open(dir.path())
                .await
                .map_err(|e| format!("open after kill #{round} failed: {e}"))?;
            let store = Store::builder(backend)
                .sweep_interval(None)
                .build()
                .await
                .map_err(|e| e.to_string())?;
            let keys: Vec<String> = acked.keys().map(|i| format!("k{i:012}")).collect();
            let got = store.get_many(&keys).await.map_err(|e| e.to_string())?;
            for (i, v) in acked.keys().zip(got) {
                let want = value_of(*i);
                if v.as_deref() != Some(want.as_bytes()) {
                    return Err(format!("kill #{round}: acknowledged key {i} lost or wrong"));
                }
            }
            store.close().await.map_err(|e| e.to_string())
        })?;
    }
    println!(
        "kill -9: {iterations} kills, {} acknowledged writes all present",
        acked.len()
    );
    Ok(())
}

fn locked() -> Result<(), Failed> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut c = child("holder", dir.path(), 0);
    let stdout = c.0.stdout.take().ok_or("no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    if line.trim() != "ready" {
        return Err("holder did not start".into());
    }
    let result = runtime().block_on(FsBackend::open(dir.path()));
    let pid = c.0.id();
    drop(c);
    match result {
        Err(Error::Locked { path, holder }) => {
            if holder != Some(pid) || !path.ends_with("LOCK") {
                return Err(format!("Locked names {path} and {holder:?}, child is {pid}").into());
            }
        }
        other => return Err(format!("expected Locked, got {other:?}").into()),
    }
    // Once the holder is gone the store opens.
    runtime()
        .block_on(FsBackend::open(dir.path()))
        .map(|_| ())
        .map_err(|e| format!("open after the holder died: {e}").into())
}

fn main() -> ExitCode {
    if let Some(role) = process::role() {
        let dir = process::var("DIR").unwrap_or_default();
        let start = process::var("START")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        return match role.as_str() {
            "writer" => writer(dir, start),
            "holder" => holder(dir),
            _ => ExitCode::FAILURE,
        };
    }
    let args = Arguments::from_args();
    let trials = vec![
        Trial::test("kill9_never_loses_an_acknowledged_write", kill9),
        Trial::test("a_second_process_gets_locked", locked),
    ];
    libtest_mimic::run(&args, trials).exit_code()
}
