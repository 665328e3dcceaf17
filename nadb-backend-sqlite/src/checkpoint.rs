//! The WAL checkpointer: a thread of its own that copies committed pages from the WAL into the
//! database file, so that the writer's commits do not.
//!
//! By default SQLite checkpoints inside the commit that takes the WAL past 1,000 pages: that
//! writer copies the log into the database file and fsyncs both before its commit returns,
//! about a fifth of a bulk load's time. Here the writer connection's WAL hook replaces that
//! default: past [`Thresholds::wake_at`] new pages it only wakes this thread, whose passive
//! checkpoint runs beside the writer's next commits.
//!
//! Durable commits are the exception. Each fsyncs the WAL, and while a checkpoint runs beside
//! them the WAL cannot start over, so it grows, and an fsync that must also record a new file
//! size costs more (2,000 durable writes of 128 bytes ran at 3.5–4.4k/s instead of 5.5–6.5k/s
//! on the machine this was measured on). While the writer commits
//! durably ([`Checkpointer::durable`]) one commit after another, it checkpoints in place, as
//! SQLite does by default; the lone durable commit that ends a buffered flush does not.
//!
//! SQLite starts the WAL over only after a checkpoint that copied all of it, which a passive
//! checkpoint racing a steady stream of commits never does: past [`Thresholds::writer_at`]
//! pages the writer checkpoints itself, copying only what the thread has not, so the WAL stays
//! bounded. A checkpoint never changes what the database holds: durability rests on the WAL's
//! fsync alone.

use std::ffi::c_int;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::thread::JoinHandle;

use nadb_core::Result;
use parking_lot::{Condvar, Mutex};
use rusqlite::hooks::Wal;
use rusqlite::wal::CheckpointMode;
use rusqlite::{Connection, InterruptHandle, OpenFlags};

use crate::sql::{db_error, open_connection};

/// When checkpoints run, in WAL pages.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Thresholds {
    /// New pages since the thread was last woken that wake it again (SQLite's own default
    /// checkpoint size).
    pub(crate) wake_at: c_int,
    /// WAL pages past which the writer checkpoints itself (64 MiB at 4 KiB pages).
    pub(crate) writer_at: c_int,
}

impl Thresholds {
    pub(crate) const DEFAULT: Thresholds = Thresholds {
        wake_at: 1000,
        writer_at: 16_384,
    };
}

/// Durable commits in a row after which the writer checkpoints in place.
const DURABLE_RUN: u32 = 8;

#[derive(Default)]
struct Signal {
    wake: bool,
    stop: bool,
}

struct Shared {
    signal: Mutex<Signal>,
    changed: Condvar,
    /// The writer's commits are durable (`synchronous=FULL`).
    durable: AtomicBool,
}

impl Shared {
    fn send(&self, f: impl FnOnce(&mut Signal)) {
        f(&mut self.signal.lock());
        self.changed.notify_one();
    }
}

/// The checkpoint thread of one database file; stopped (and joined) when dropped.
pub(crate) struct Checkpointer {
    shared: Arc<Shared>,
    interrupt: InterruptHandle,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts the thread for the database at `path` (already in WAL mode) and hands its
    /// commit hook to `writer`, which replaces SQLite's checkpoint-on-commit.
    pub(crate) fn start(
        path: &Path,
        writer: &mut Connection,
        thresholds: Thresholds,
    ) -> Result<Checkpointer> {
        let location = path.display().to_string();
        let conn = open_connection(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE.union(OpenFlags::SQLITE_OPEN_NO_MUTEX),
            false,
        )?;
        // A connection finds the WAL on its first read; until then it cannot checkpoint.
        conn.query_row("PRAGMA schema_version", [], |_| Ok(()))
            .map_err(|e| db_error(&location, e))?;
        let interrupt = conn.get_interrupt_handle();
        let shared = Arc::new(Shared {
            signal: Mutex::new(Signal::default()),
            changed: Condvar::new(),
            durable: AtomicBool::new(false),
        });
        let thread = {
            let (shared, location) = (shared.clone(), location.clone());
            std::thread::Builder::new()
                .name("nadb-sqlite-checkpoint".into())
                .spawn(move || run(&conn, &shared, &location))
                .map_err(|e| nadb_core::Error::backend("sqlite", false, e))?
        };
        let checkpointer = Checkpointer {
            shared: shared.clone(),
            interrupt,
            thread: Some(thread),
        };
        let mut woken_at: c_int = 0;
        let mut durable_run: u32 = 0;
        writer
            .wal_hook(Some(move |wal: &mut Wal, pages: c_int| {
                // The WAL started over since the last wake: count from its start.
                if pages < woken_at {
                    woken_at = 0;
                }
                durable_run = match shared.durable.load(Relaxed) {
                    true => durable_run.saturating_add(1),
                    false => 0,
                };
                let in_place = durable_run >= DURABLE_RUN && pages >= thresholds.wake_at;
                if in_place || pages >= thresholds.writer_at {
                    // An error here would fail a commit that has happened: it is only logged,
                    // and the next commit tries again (the thread may hold the checkpoint).
                    if let Err(e) = wal.checkpoint_v2(CheckpointMode::PASSIVE) {
                        tracing::debug!(error = %e, "writer's WAL checkpoint did not run");
                    }
                } else if pages - woken_at >= thresholds.wake_at {
                    woken_at = pages;
                    shared.send(|s| s.wake = true);
                }
                Ok(())
            }))
            .map_err(|e| db_error(&location, e))?;
        Ok(checkpointer)
    }

    /// Says whether the writer's next commits are durable (then it checkpoints in place).
    pub(crate) fn durable(&self, durable: bool) {
        self.shared.durable.store(durable, Relaxed);
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.shared.send(|s| s.stop = true);
        // A checkpoint can be stopped at any point; the last connection to close finishes it.
        self.interrupt.interrupt();
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            tracing::error!("the SQLite checkpoint thread panicked");
        }
    }
}

fn run(conn: &Connection, shared: &Shared, location: &str) {
    loop {
        {
            let mut s = shared.signal.lock();
            while !s.wake && !s.stop {
                shared.changed.wait(&mut s);
            }
            if s.stop {
                return;
            }
            s.wake = false;
        }
        if let Err(e) = conn.wal_checkpoint_v2(Some(rusqlite::MAIN_DB), CheckpointMode::PASSIVE) {
            tracing::debug!(error = %e, location, "WAL checkpoint did not run");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::open_connection;

    const FLAGS: OpenFlags = OpenFlags::SQLITE_OPEN_READ_WRITE
        .union(OpenFlags::SQLITE_OPEN_CREATE)
        .union(OpenFlags::SQLITE_OPEN_NO_MUTEX);

    /// Page size of a new database.
    const PAGE: u64 = 4096;

    /// A WAL database with one table, its checkpointer, and the path.
    fn open(thresholds: Thresholds) -> (tempfile::TempDir, Connection, Checkpointer) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        let mut conn = open_connection(&path, FLAGS, true).unwrap();
        conn.execute_batch("CREATE TABLE t (v BLOB NOT NULL)")
            .unwrap();
        let ck = Checkpointer::start(&path, &mut conn, thresholds).unwrap();
        (dir, conn, ck)
    }

    /// Commits `n` transactions of about `pages` pages each.
    fn write(conn: &Connection, n: usize, pages: usize) {
        let blob = vec![7u8; 3000];
        for _ in 0..n {
            conn.execute_batch("BEGIN").unwrap();
            for _ in 0..pages {
                conn.execute("INSERT INTO t VALUES (?1)", [&blob]).unwrap();
            }
            conn.execute_batch("COMMIT").unwrap();
        }
    }

    fn len(dir: &tempfile::TempDir, name: &str) -> u64 {
        std::fs::metadata(dir.path().join(name)).map_or(0, |m| m.len())
    }

    const NEVER: c_int = c_int::MAX;

    /// The written pages reached the database file through a WAL of fewer than `frames`.
    fn assert_copied_through_a_wal_of(dir: &tempfile::TempDir, frames: u64) {
        let wal = len(dir, "c.db-wal");
        assert!(wal < frames * (PAGE + 24), "WAL of {wal} bytes");
        let db = len(dir, "c.db");
        assert!(db >= 800 * PAGE, "database file of {db} bytes");
    }

    #[test]
    fn commits_do_not_checkpoint_by_themselves() {
        let (dir, conn, _ck) = open(Thresholds {
            wake_at: NEVER,
            writer_at: NEVER,
        });
        write(&conn, 120, 10);
        // 1,200 pages: SQLite's own hook would have checkpointed at 1,000.
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(len(&dir, "c.db") < 4 * PAGE, "{} bytes", len(&dir, "c.db"));
        assert!(len(&dir, "c.db-wal") > 1200 * PAGE);
    }

    #[test]
    fn the_thread_copies_the_wal_into_the_database() {
        let (dir, conn, _ck) = open(Thresholds {
            wake_at: 50,
            writer_at: NEVER,
        });
        write(&conn, 30, 10);
        // Only the thread checkpoints here; give it time to run.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while len(&dir, "c.db") < 250 * PAGE && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(
            len(&dir, "c.db") >= 250 * PAGE,
            "{} bytes",
            len(&dir, "c.db")
        );
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 300);
    }

    #[test]
    fn past_its_limit_the_writer_checkpoints_and_the_wal_starts_over() {
        let (dir, conn, _ck) = open(Thresholds {
            wake_at: NEVER,
            writer_at: 100,
        });
        write(&conn, 100, 10);
        // 1,000 pages went through a WAL restarted each time it passed 100 pages.
        assert_copied_through_a_wal_of(&dir, 130);
    }

    #[test]
    fn durable_commits_checkpoint_in_place() {
        let (dir, conn, ck) = open(Thresholds {
            wake_at: 50,
            writer_at: NEVER,
        });
        ck.durable(true);
        // Eight commits of 3 rows (about 4 pages each) make the run before the WAL reaches
        // 50 pages, so the thread is never woken: every later commit past 50 pages checkpoints
        // in place, and the WAL starts over each time.
        write(&conn, 300, 3);
        assert_copied_through_a_wal_of(&dir, 70);
    }

    #[test]
    fn dropping_it_stops_the_thread() {
        let (_dir, conn, ck) = open(Thresholds::DEFAULT);
        drop(ck);
        // The writer keeps working without it.
        write(&conn, 2, 10);
    }
}
