//! # nadb-backend-sqlite
//!
//! nadb on SQLite (`sqlite://PATH`, or `sqlite://:memory:`): one file that many processes can
//! share and that the `sqlite3` shell can read. The schema is documented in [`schema`].
//!
//! ```
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! let dir = tempfile::tempdir().unwrap();
//! let backend = nadb_backend_sqlite::SqliteBackend::open(dir.path().join("app.db")).await?;
//! let store = nadb_core::Store::builder(backend).build().await?;
//! store.set("greeting", "hello").await?;
//! store.close().await?;
//! # Ok::<(), nadb_core::Error>(()) }).unwrap();
//! ```
//!
//! ## How it works
//!
//! - **Writes**: one writer connection behind a lock, used in place by the calling task (on a
//!   multi-threaded runtime its worker first hands its other tasks off): no channel to a
//!   writer thread and no copy of the batch per write. Each `apply` is one `BEGIN IMMEDIATE` transaction: checks,
//!   records, tags and expiry together, so a batch is all-or-nothing, also across a crash.
//!   Records go in 64 rows to an `INSERT` statement, which costs SQLite far less than 64
//!   statements; rows name their space by an integer id, looked up once per statement, so
//!   a key lookup compares one integer and the key rather than three strings.
//! - **Durability**: the database runs in WAL mode with `synchronous=NORMAL`, so a commit does
//!   not wait for the disk; [`sync`](nadb_core::StorageBackend::sync) commits one small write with
//!   `synchronous=FULL`, which fsyncs the WAL and with it every commit before it. A store in
//!   `Immediate` mode therefore pays one fsync per group of writers; a buffered store one per
//!   flush.
//! - **Checkpoints**: a thread of the backend's own copies the WAL into the database file
//!   beside the writer's commits, instead of the commit that passes 1,000 WAL pages doing it
//!   (SQLite's default). Should a steady stream of commits keep it from catching up, the
//!   writer checkpoints itself once the WAL passes 64 MiB, so the WAL stays bounded; a run of
//!   durable commits checkpoints in place, as SQLite does, so the WAL they fsync starts over
//!   rather than grows.
//! - **Reads**: a small pool of reader connections (WAL lets them run beside the writer).
//! - **Many processes**: SQLite's file locks serialize writers across processes;
//!   `busy_timeout` waits for them, and a busy or locked database that still times out is
//!   reported as a temporary error, so the store's pipeline retries it.
//! - **Index**: tags live in their own table, updated in the same transaction as the record;
//!   tag queries, tag counts, expiry and counts are SQL queries (the backend's native index).
#![deny(missing_docs)]

mod checkpoint;
mod index;
mod queries;
pub mod schema;
mod sql;

pub use index::SqliteIndex;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use futures::future::BoxFuture;
use nadb_core::registry::Registration;
use nadb_core::{
    BackendInfo, Batch, Capabilities, Error, Meta, MetadataIndex, Record, Result, Space,
    StorageBackend,
};
use parking_lot::Mutex;
use rusqlite::{Connection, OpenFlags};

use crate::checkpoint::{Checkpointer, Thresholds};
use crate::sql::{Writer, db_error, open_connection};

/// Reader connections kept open for a file database.
const READERS: usize = 4;

/// How the writer opens a file. Without `SQLITE_OPEN_URI`: a path is a file name, never a
/// `file:` URI whose parameters (`nolock=1`, …) change what the backend does.
const WRITER_FLAGS: OpenFlags = OpenFlags::SQLITE_OPEN_READ_WRITE
    .union(OpenFlags::SQLITE_OPEN_CREATE)
    .union(OpenFlags::SQLITE_OPEN_NO_MUTEX);
/// How readers open the file (no URI either).
const READER_FLAGS: OpenFlags =
    OpenFlags::SQLITE_OPEN_READ_ONLY.union(OpenFlags::SQLITE_OPEN_NO_MUTEX);

/// Largest value stored: SQLite refuses a blob or row past 10^9 bytes, and the row also holds
/// the key and metadata.
const MAX_VALUE_SIZE: u64 = 1_000_000_000 - (1 << 20);
/// How long a connection waits for another process's lock before reporting busy.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

struct Inner {
    location: String,
    info: BackendInfo,
    /// `None` once closed. Waited for asynchronously: a writer queued behind another holds no
    /// thread.
    writer: tokio::sync::Mutex<Option<Writer>>,
    readers: Mutex<Vec<Connection>>,
    path: Option<PathBuf>,
    closed: AtomicBool,
    /// Held through `close`; remembers whether it succeeded, so every caller gets its answer.
    close_result: tokio::sync::Mutex<Option<bool>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Dropped without a close (or with one cancelled before it took the writer): sync
        // anyway, on whichever thread drops the last handle. Called directly: a drop can run
        // where handing a worker's tasks off is not allowed.
        if let Some(mut w) = self.writer.get_mut().take()
            && let Err(e) = w.sync(&self.location)
        {
            tracing::error!(error = %e, "final sync of a dropped SQLite backend failed");
        }
    }
}

/// The SQLite backend; see the [crate docs](crate). Cheap to clone.
#[derive(Clone)]
pub struct SqliteBackend(Arc<Inner>);

impl std::fmt::Debug for SqliteBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteBackend")
            .field("location", &self.0.location)
            .finish_non_exhaustive()
    }
}

impl SqliteBackend {
    /// Opens (creating if needed) the database file at `path` and brings its schema up to date.
    pub async fn open(path: impl AsRef<Path>) -> Result<SqliteBackend> {
        let path = path.as_ref().to_path_buf();
        if path.as_os_str().is_empty() || path.as_os_str() == ":memory:" {
            return Err(Error::InvalidArgument {
                name: "path",
                reason: "a database file is needed; use open_in_memory for a private one".into(),
            });
        }
        let location = path.display().to_string();
        SqliteBackend::start(location, Some(path)).await
    }

    /// A private in-memory database, gone when the backend is closed or dropped.
    pub async fn open_in_memory() -> Result<SqliteBackend> {
        SqliteBackend::start(":memory:".into(), None).await
    }

    async fn start(location: String, path: Option<PathBuf>) -> Result<SqliteBackend> {
        let (open_path, loc) = (path.clone(), location.clone());
        let writer = tokio::task::spawn_blocking(move || -> Result<Writer> {
            let mut conn = match &open_path {
                Some(p) => open_connection(p, WRITER_FLAGS, true)?,
                None => Connection::open_in_memory().map_err(|e| db_error(&loc, e))?,
            };
            schema::migrate(&mut conn).map_err(|e| db_error(&loc, e))?;
            let checkpointer = match &open_path {
                Some(p) => Some(Checkpointer::start(p, &mut conn, Thresholds::DEFAULT)?),
                None => None,
            };
            Ok(Writer::new(conn, checkpointer))
        })
        .await
        .map_err(|e| Error::backend("sqlite", false, e))??;
        let mut readers = Vec::new();
        if let Some(p) = &path {
            for _ in 0..READERS {
                readers.push(open_connection(p, READER_FLAGS, false)?);
            }
        }
        Ok(SqliteBackend(Arc::new(Inner {
            location,
            info: BackendInfo {
                scheme: "sqlite".into(),
                capabilities: Capabilities {
                    persistent: path.is_some(),
                    atomic_batch: true,
                    ordered_scan: true,
                    multi_process: path.is_some(),
                    max_value_size: Some(MAX_VALUE_SIZE),
                    ..Capabilities::none()
                },
            },
            writer: tokio::sync::Mutex::new(Some(writer)),
            readers: Mutex::new(readers),
            path,
            closed: AtomicBool::new(false),
            close_result: tokio::sync::Mutex::new(None),
        })))
    }

    /// Runs `f` on the writer connection, in place (see [`blocking`]).
    async fn write<T>(&self, f: impl FnOnce(&mut Writer, &str) -> Result<T>) -> Result<T> {
        if self.0.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        let mut w = self.0.writer.lock().await;
        let w = w.as_mut().ok_or(Error::Closed)?;
        blocking(|| f(w, &self.0.location))
    }

    /// Runs a query on a reader connection (in memory: on the writer's).
    pub(crate) async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T> {
        if self.0.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        let location = self.0.location.clone();
        let Some(path) = &self.0.path else {
            return self
                .write(|w, loc| f(w.conn()).map_err(|e| db_error(loc, e)))
                .await;
        };
        let conn = self.0.readers.lock().pop();
        let conn = match conn {
            Some(c) => c,
            None => open_connection(path, READER_FLAGS, false)?,
        };
        // Reads are short and mostly served from SQLite's page cache.
        let result = blocking(|| f(&conn)).map_err(|e| db_error(&location, e));
        let mut pool = self.0.readers.lock();
        if pool.len() < READERS && !self.0.closed.load(Ordering::Acquire) {
            pool.push(conn);
        }
        result
    }
}

/// Runs `f` in place; on a multi-threaded runtime the worker first hands off its other tasks.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

#[async_trait]
impl StorageBackend for SqliteBackend {
    fn info(&self) -> &BackendInfo {
        &self.0.info
    }

    async fn get(&self, space: &Space, key: &str) -> Result<Option<Record>> {
        let (space, key) = (space.clone(), key.to_string());
        self.read(move |c| sql::get(c, &space, &key)).await
    }

    async fn get_many(&self, space: &Space, keys: &[String]) -> Result<Vec<Option<Record>>> {
        let (space, keys) = (space.clone(), keys.to_vec());
        self.read(move |c| {
            // One read transaction: the keys as one commit left them, not a mix of two.
            let tx = c.unchecked_transaction()?;
            let found = keys.iter().map(|k| sql::get(&tx, &space, k)).collect();
            tx.finish()?;
            found
        })
        .await
    }

    async fn apply(&self, batch: &Batch) -> Result<()> {
        self.write(|w, loc| w.apply(batch, loc)).await
    }

    async fn scan(
        &self,
        space: &Space,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Meta)>> {
        let (space, prefix, after) = (space.clone(), prefix.to_string(), after.map(str::to_string));
        self.read(move |c| sql::scan(c, &space, &prefix, after.as_deref(), limit))
            .await
    }

    async fn spaces(&self) -> Result<Vec<Space>> {
        self.read(sql::spaces)
            .await?
            .into_iter()
            .map(|(db, ns)| Space::new(&db, &ns))
            .collect()
    }

    async fn sync(&self) -> Result<()> {
        self.write(|w, loc| w.sync(loc)).await
    }

    async fn apply_synced(&self, batch: &Batch) -> Result<()> {
        self.write(|w, loc| w.apply_synced(batch, loc)).await
    }

    async fn close(&self) -> Result<()> {
        let mut done = self.0.close_result.lock().await;
        match *done {
            Some(true) => return Ok(()),
            Some(false) => {
                return Err(Error::backend(
                    "sqlite",
                    false,
                    "closing failed earlier: writes not synced then may be lost",
                ));
            }
            None => {}
        }
        self.0.closed.store(true, Ordering::Release);
        // Taken under the lock, so a write already running finishes first.
        let writer = self.0.writer.lock().await.take();
        let result = match writer {
            // Dropped in place too: it stops the checkpoint thread and closes the file.
            Some(mut w) => blocking(move || {
                let synced = w.sync(&self.0.location);
                drop(w);
                synced
            }),
            None => Ok(()),
        };
        self.0.readers.lock().clear();
        *done = Some(result.is_ok());
        // The writer is gone: a retry cannot sync, so the failure is not temporary.
        result.map_err(|e| match e {
            Error::Backend {
                backend, source, ..
            } => Error::Backend {
                backend,
                temporary: false,
                source,
            },
            other => other,
        })
    }

    fn native_index(&self) -> Option<Arc<dyn MetadataIndex>> {
        Some(Arc::new(sql::NativeIndex(self.clone())))
    }
}

fn open_url(rest: &str, url: &str) -> BoxFuture<'static, Result<Arc<dyn StorageBackend>>> {
    let rest = rest.to_string();
    let url = nadb_core::error::redact_url(url);
    Box::pin(async move {
        match rest.as_str() {
            "" => Err(Error::InvalidUrl {
                url,
                reason: "sqlite:// needs a file path, e.g. sqlite://./app.db, or :memory:".into(),
            }),
            ":memory:" => {
                Ok(Arc::new(SqliteBackend::open_in_memory().await?) as Arc<dyn StorageBackend>)
            }
            path => Ok(Arc::new(SqliteBackend::open(path).await?) as Arc<dyn StorageBackend>),
        }
    })
}

nadb_core::inventory::submit! { Registration { scheme: "sqlite", open: open_url } }
