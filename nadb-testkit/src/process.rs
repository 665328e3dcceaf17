//! Child processes for crash and multi-process tests: a test binary that is also its own
//! child, started with a role.
//!
//! ```no_run
//! // In the `main` of a `harness = false` test:
//! if let Some(role) = nadb_testkit::process::role() {
//!     // ... act as the child `role`, e.g. write until killed, then return ...
//! } else {
//!     let child = nadb_testkit::process::spawn("writer", &[("DIR", "/tmp/x")]).unwrap();
//!     child.kill(); // SIGKILL and reap
//! }
//! ```

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;

const ROLE: &str = "NADB_TEST_ROLE";

/// The role this process was started with, if it is a child.
pub fn role() -> Option<String> {
    std::env::var(ROLE).ok()
}

/// A variable passed to the child by [`spawn`].
pub fn var(name: &str) -> Option<String> {
    std::env::var(format!("NADB_TEST_{name}")).ok()
}

/// A child process that is SIGKILLed and reaped when dropped, whatever happens to the test.
#[derive(Debug)]
pub struct ChildGuard(pub std::process::Child);

impl ChildGuard {
    /// Kills the child with SIGKILL and waits for it.
    pub fn kill(mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts this executable again as a child with `role` and variables (read with [`var`]);
/// its stdout is piped to the parent.
pub fn spawn(role: &str, vars: &[(&str, &str)]) -> std::io::Result<ChildGuard> {
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.env(ROLE, role)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in vars {
        cmd.env(format!("NADB_TEST_{k}"), v);
    }
    Ok(ChildGuard(cmd.spawn()?))
}

/// Reads the numbers a child prints, one per line, on a thread: each arrives on the returned
/// channel as soon as it is printed (a crash test's list of acknowledged writes).
pub fn numbers_printed_by(
    child: &mut ChildGuard,
) -> std::io::Result<(mpsc::Receiver<u64>, JoinHandle<()>)> {
    let stdout = child
        .0
        .stdout
        .take()
        .ok_or_else(|| std::io::Error::other("the child's stdout is not piped"))?;
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Ok(n) = line.trim().parse::<u64>()
                && tx.send(n).is_err()
            {
                break;
            }
        }
    });
    Ok((rx, reader))
}
