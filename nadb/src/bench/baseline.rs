//! [`Baseline`]: what a user would write instead of nadb, measured beside it on the same data —
//! a locked `HashMap`, an append-only file with `fdatasync`, raw rusqlite, a raw Redis pipeline.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Write};
#[cfg(unix)]
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::RwLock;

use bytes::Bytes;

use crate::BoxError;

/// The raw counterpart of a backend. Each method works on its own data set named `set` (one
/// per workload), so workloads never see each other's keys.
///
/// The run calls [`open`](Baseline::open) before it starts a clock (except when timing a
/// reopen) and [`close`](Baseline::close) after it stops one, so opening and closing files,
/// databases and connections is never counted as writing or reading.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use bytes::Bytes;
/// use nadb::bench::{Baseline, MapBaseline};
///
/// let mut map = MapBaseline::default();
/// map.open("demo").await?;
/// map.load("demo", &[("k".to_string(), Bytes::from_static(b"v"))]).await?;
/// assert_eq!(map.get_all("demo", &["k".to_string()]).await?, 1);
/// assert!(!map.close("demo").await?); // nothing persists
/// # Ok::<(), nadb::BoxError>(()) }).unwrap();
/// ```
#[async_trait::async_trait]
pub trait Baseline: Send {
    /// A short name for tables and charts, e.g. `raw rusqlite`.
    fn name(&self) -> String;

    /// Opens (creating when new) the data set `set`: files, database, connection.
    async fn open(&mut self, set: &str) -> Result<(), BoxError>;

    /// Closes `set`, dropping what the baseline holds in memory for it, so the next
    /// [`open`](Baseline::open) reads it back from storage; `false` when nothing would be left
    /// to read back (an in-memory map keeps its data and answers `false`).
    async fn close(&mut self, set: &str) -> Result<bool, BoxError>;

    /// Writes every item as one bulk operation (one transaction, pipeline or sync), the way a
    /// user loads data when they do not need each write acknowledged durably.
    async fn load(&mut self, set: &str, items: &[(String, Bytes)]) -> Result<(), BoxError>;

    /// Writes the items one at a time, each durable before the next starts (the baseline's
    /// strongest per-write guarantee).
    async fn put_durable(&mut self, set: &str, items: &[(String, Bytes)]) -> Result<(), BoxError>;

    /// The same durable writes from `writers` concurrent writers (threads, tasks or
    /// connections), item `i` written by writer `i % writers`.
    async fn put_durable_concurrent(
        &mut self,
        set: &str,
        items: &[(String, Bytes)],
        writers: usize,
    ) -> Result<(), BoxError>;

    /// Reads every key in order and returns how many were found.
    async fn get_all(&mut self, set: &str, keys: &[String]) -> Result<u64, BoxError>;

    /// Removes what the baseline wrote outside temporary directories (Redis keys).
    async fn cleanup(&mut self) -> Result<(), BoxError> {
        Ok(())
    }
}

/// `RwLock<HashMap<String, Bytes>>`: the in-process map nadb's memory backend is compared with.
#[derive(Debug, Default)]
pub struct MapBaseline {
    sets: HashMap<String, RwLock<HashMap<String, Bytes>>>,
}

impl MapBaseline {
    fn set(&mut self, set: &str) -> &RwLock<HashMap<String, Bytes>> {
        self.sets.entry(set.to_string()).or_default()
    }
}

/// Item `i` goes to writer `i % writers`; never more writers than items (but at least one).
pub(crate) fn share<T>(items: &[T], writers: usize) -> Vec<Vec<&T>> {
    let writers = writers.min(items.len()).max(1);
    let mut parts: Vec<Vec<&T>> = (0..writers).map(|_| Vec::new()).collect();
    for (i, item) in items.iter().enumerate() {
        parts[i % writers].push(item);
    }
    parts
}

/// Splits `items` among `writers` threads as [`Baseline::put_durable_concurrent`] wants
/// (item `i` to writer `i % writers`), runs `work` on each share in its own thread, and
/// returns the first error.
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// let seen = AtomicUsize::new(0);
/// nadb::bench::in_threads(&[1, 2, 3, 4, 5], 2, |part| {
///     seen.fetch_add(part.len(), Ordering::Relaxed);
///     Ok(())
/// })?;
/// assert_eq!(seen.into_inner(), 5);
/// # Ok::<(), nadb::BoxError>(())
/// ```
pub fn in_threads<T: Sync>(
    items: &[T],
    writers: usize,
    work: impl Fn(Vec<&T>) -> Result<(), BoxError> + Sync,
) -> Result<(), BoxError> {
    std::thread::scope(|scope| {
        // A thread the OS refuses is an error, not a panic.
        let handles = share(items, writers)
            .into_iter()
            .map(|part| {
                std::thread::Builder::new()
                    .name("baseline-writer".into())
                    .spawn_scoped(scope, || work(part))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut result = Ok(());
        for h in handles {
            let r = h
                .join()
                .unwrap_or_else(|_| Err(BoxError::from("baseline writer thread panicked")));
            if result.is_ok() {
                result = r;
            }
        }
        result
    })
}

/// Inserts the items one at a time, each taking the lock on its own.
fn insert_each<'a>(
    lock: &RwLock<HashMap<String, Bytes>>,
    items: impl IntoIterator<Item = &'a (String, Bytes)>,
) -> Result<(), BoxError> {
    for (k, v) in items {
        lock.write().map_err(poisoned)?.insert(k.clone(), v.clone());
    }
    Ok(())
}

fn poisoned<T>(_: T) -> BoxError {
    "baseline map lock poisoned".into()
}

#[async_trait::async_trait]
impl Baseline for MapBaseline {
    fn name(&self) -> String {
        "RwLock<HashMap>".into()
    }

    async fn open(&mut self, set: &str) -> Result<(), BoxError> {
        self.set(set);
        Ok(())
    }

    async fn close(&mut self, _set: &str) -> Result<bool, BoxError> {
        Ok(false)
    }

    async fn load(&mut self, set: &str, items: &[(String, Bytes)]) -> Result<(), BoxError> {
        let mut map = self.set(set).write().map_err(poisoned)?;
        for (k, v) in items {
            map.insert(k.clone(), v.clone());
        }
        Ok(())
    }

    async fn put_durable(&mut self, set: &str, items: &[(String, Bytes)]) -> Result<(), BoxError> {
        insert_each(self.set(set), items)
    }

    async fn put_durable_concurrent(
        &mut self,
        set: &str,
        items: &[(String, Bytes)],
        writers: usize,
    ) -> Result<(), BoxError> {
        let lock = self.set(set);
        in_threads(items, writers, |part| insert_each(lock, part))
    }

    async fn get_all(&mut self, set: &str, keys: &[String]) -> Result<u64, BoxError> {
        let lock = self.set(set);
        let mut found = 0;
        for k in keys {
            if std::hint::black_box(lock.read().map_err(poisoned)?.get(k).cloned()).is_some() {
                found += 1;
            }
        }
        Ok(found)
    }
}

/// One append-only file per data set, records `[key len u32][value len u32][key][value]`, an
/// in-memory index of offsets, `fdatasync` after each durable write (its concurrent writers
/// append under a lock and sync outside it): the least a filesystem store must do, so the
/// floor under nadb's `fs://` backend.
#[cfg(unix)]
#[derive(Debug)]
pub struct LogBaseline {
    dir: PathBuf,
    sets: HashMap<String, Log>,
}

#[cfg(unix)]
#[derive(Debug)]
struct Log {
    file: File,
    index: std::sync::Mutex<LogIndex>,
}

/// Where the next record goes, and where each key's value is (offset, length).
#[cfg(unix)]
type LogIndex = (u64, HashMap<String, (u64, u32)>);

/// Records in the index that a record for `key` with a `len`-byte value was appended.
#[cfg(unix)]
fn note(index: &mut LogIndex, key: &str, len: usize) -> Result<(), BoxError> {
    let value_at = index.0 + 8 + key.len() as u64;
    index
        .1
        .insert(key.to_string(), (value_at, u32::try_from(len)?));
    index.0 = value_at + len as u64;
    Ok(())
}

#[cfg(unix)]
impl LogBaseline {
    /// Files go into `dir`, which must exist.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use nadb::bench::{Baseline, LogBaseline};
    /// let dir = tempfile::tempdir()?;
    /// let mut log = LogBaseline::new(dir.path());
    /// log.open("s").await?;
    /// log.put_durable("s", &[("k".into(), "v".into())]).await?;
    /// assert!(log.close("s").await?);
    /// log.open("s").await?; // the index is rebuilt from the file
    /// assert_eq!(log.get_all("s", &["k".into()]).await?, 1);
    /// # Ok::<(), nadb::BoxError>(()) }).unwrap();
    /// ```
    pub fn new(dir: impl Into<PathBuf>) -> LogBaseline {
        LogBaseline {
            dir: dir.into(),
            sets: HashMap::new(),
        }
    }

    fn log(&self, set: &str) -> Result<&Log, BoxError> {
        self.sets
            .get(set)
            .ok_or_else(|| BoxError::from(format!("data set {set} is not open")))
    }
}

#[cfg(unix)]
fn frame(key: &str, value: &[u8], out: &mut Vec<u8>) -> Result<(), BoxError> {
    out.extend_from_slice(&u32::try_from(key.len())?.to_le_bytes());
    out.extend_from_slice(&u32::try_from(value.len())?.to_le_bytes());
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(value);
    Ok(())
}

#[cfg(unix)]
impl Log {
    /// Opens (creating) the file and rebuilds the index by reading every header.
    fn open(path: PathBuf) -> Result<Log, BoxError> {
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)?;
        let mut index = HashMap::new();
        let mut reader = BufReader::with_capacity(1 << 20, &file);
        let mut end = 0u64;
        let mut header = [0u8; 8];
        loop {
            match reader.read_exact(&mut header) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
                Err(e) => return Err(e.into()),
            }
            let klen = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
            let vlen = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
            let mut key = vec![0u8; klen as usize];
            reader.read_exact(&mut key)?;
            // Relative seeks keep the buffer: one read per megabyte, not per record.
            reader.seek_relative(i64::from(vlen))?;
            let value_at = end + 8 + u64::from(klen);
            index.insert(String::from_utf8(key)?, (value_at, vlen));
            end = value_at + u64::from(vlen);
        }
        Ok(Log {
            file,
            index: std::sync::Mutex::new((end, index)),
        })
    }

    /// Appends each record under the lock and `fdatasync`s it outside, one at a time.
    fn append_synced<'a>(
        &self,
        items: impl IntoIterator<Item = &'a (String, Bytes)>,
    ) -> Result<(), BoxError> {
        let mut buf = Vec::new();
        for (k, v) in items {
            buf.clear();
            frame(k, v, &mut buf)?;
            {
                let mut index = self.index.lock().map_err(poisoned)?;
                (&self.file).write_all(&buf)?;
                note(&mut index, k, v.len())?;
            }
            self.file.sync_data()?;
        }
        Ok(())
    }
}

#[cfg(unix)]
#[async_trait::async_trait]
impl Baseline for LogBaseline {
    fn name(&self) -> String {
        "append + fdatasync".into()
    }

    async fn open(&mut self, set: &str) -> Result<(), BoxError> {
        if !self.sets.contains_key(set) {
            let path = self.dir.join(format!("{set}.log"));
            let new = !path.exists();
            let log = Log::open(path)?;
            if new {
                // A new file is durable only once its directory entry is.
                File::open(&self.dir)?.sync_all()?;
            }
            self.sets.insert(set.to_string(), log);
        }
        Ok(())
    }

    async fn close(&mut self, set: &str) -> Result<bool, BoxError> {
        self.sets.remove(set);
        Ok(true)
    }

    async fn load(&mut self, set: &str, items: &[(String, Bytes)]) -> Result<(), BoxError> {
        let log = self.log(set)?;
        let mut index = log.index.lock().map_err(poisoned)?;
        let mut out = BufWriter::with_capacity(1 << 20, &log.file);
        let mut buf = Vec::new();
        for (k, v) in items {
            buf.clear();
            frame(k, v, &mut buf)?;
            out.write_all(&buf)?;
            note(&mut index, k, v.len())?;
        }
        out.flush()?;
        drop(out);
        log.file.sync_data()?;
        Ok(())
    }

    async fn put_durable(&mut self, set: &str, items: &[(String, Bytes)]) -> Result<(), BoxError> {
        self.log(set)?.append_synced(items)
    }

    async fn put_durable_concurrent(
        &mut self,
        set: &str,
        items: &[(String, Bytes)],
        writers: usize,
    ) -> Result<(), BoxError> {
        let log = self.log(set)?;
        in_threads(items, writers, |part| log.append_synced(part))
    }

    async fn get_all(&mut self, set: &str, keys: &[String]) -> Result<u64, BoxError> {
        let log = self.log(set)?;
        let index = log.index.lock().map_err(poisoned)?;
        let mut found = 0;
        for k in keys {
            if let Some(&(at, len)) = index.1.get(k) {
                let mut value = vec![0u8; len as usize];
                log.file.read_exact_at(&mut value, at)?;
                std::hint::black_box(value);
                found += 1;
            }
        }
        Ok(found)
    }
}

/// Raw rusqlite: one file per data set in WAL mode, a `WITHOUT ROWID` table, `INSERT OR
/// REPLACE` — in one transaction for a load, one transaction each with `synchronous=FULL`
/// for durable writes. Concurrent writers each open their own connection (inside the timed
/// call: about 0.1 ms per writer) and wait on each other through `busy_timeout`.
#[cfg(feature = "sqlite")]
#[derive(Debug)]
pub struct SqliteBaseline {
    dir: PathBuf,
    sets: HashMap<String, rusqlite::Connection>,
}

#[cfg(feature = "sqlite")]
impl SqliteBaseline {
    /// Database files go into `dir`, which must exist.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use nadb::bench::{Baseline, SqliteBaseline};
    /// let dir = tempfile::tempdir()?;
    /// let mut db = SqliteBaseline::new(dir.path());
    /// db.open("s").await?;
    /// db.load("s", &[("k".into(), "v".into())]).await?;
    /// assert_eq!(db.get_all("s", &["k".into(), "missing".into()]).await?, 1);
    /// # Ok::<(), nadb::BoxError>(()) }).unwrap();
    /// ```
    pub fn new(dir: impl Into<PathBuf>) -> SqliteBaseline {
        SqliteBaseline {
            dir: dir.into(),
            sets: HashMap::new(),
        }
    }

    fn path(&self, set: &str) -> PathBuf {
        self.dir.join(format!("{set}.db"))
    }

    fn conn(&mut self, set: &str) -> Result<&mut rusqlite::Connection, BoxError> {
        self.sets
            .get_mut(set)
            .ok_or_else(|| BoxError::from(format!("data set {set} is not open")))
    }
}

#[cfg(feature = "sqlite")]
fn sqlite_connect(path: &std::path::Path) -> Result<rusqlite::Connection, BoxError> {
    let c = rusqlite::Connection::open(path)?;
    c.busy_timeout(std::time::Duration::from_secs(30))?;
    c.pragma_update(None, "journal_mode", "WAL")?;
    c.pragma_update(None, "synchronous", "FULL")?;
    Ok(c)
}

#[cfg(feature = "sqlite")]
const SQL_PUT: &str = "INSERT OR REPLACE INTO kv (k, v) VALUES (?1, ?2)";

/// One transaction (so one `synchronous=FULL` commit) per item.
#[cfg(feature = "sqlite")]
fn insert_each_committed<'a>(
    c: &mut rusqlite::Connection,
    items: impl IntoIterator<Item = &'a (String, Bytes)>,
) -> Result<(), BoxError> {
    for (k, v) in items {
        let tx = c.transaction()?;
        tx.prepare_cached(SQL_PUT)?
            .execute(rusqlite::params![k, &v[..]])?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(feature = "sqlite")]
#[async_trait::async_trait]
impl Baseline for SqliteBaseline {
    fn name(&self) -> String {
        "raw rusqlite".into()
    }

    async fn open(&mut self, set: &str) -> Result<(), BoxError> {
        if !self.sets.contains_key(set) {
            let c = sqlite_connect(&self.path(set))?;
            c.execute_batch(
                "CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID",
            )?;
            self.sets.insert(set.to_string(), c);
        }
        Ok(())
    }

    async fn close(&mut self, set: &str) -> Result<bool, BoxError> {
        if let Some(c) = self.sets.remove(set) {
            c.close().map_err(|(_, e)| e)?;
        }
        Ok(true)
    }

    async fn load(&mut self, set: &str, items: &[(String, Bytes)]) -> Result<(), BoxError> {
        let c = self.conn(set)?;
        let tx = c.transaction()?;
        {
            let mut st = tx.prepare_cached(SQL_PUT)?;
            for (k, v) in items {
                st.execute(rusqlite::params![k, &v[..]])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    async fn put_durable(&mut self, set: &str, items: &[(String, Bytes)]) -> Result<(), BoxError> {
        insert_each_committed(self.conn(set)?, items)
    }

    async fn put_durable_concurrent(
        &mut self,
        set: &str,
        items: &[(String, Bytes)],
        writers: usize,
    ) -> Result<(), BoxError> {
        let path = self.path(set);
        in_threads(items, writers, |part| {
            insert_each_committed(&mut sqlite_connect(&path)?, part)
        })
    }

    async fn get_all(&mut self, set: &str, keys: &[String]) -> Result<u64, BoxError> {
        let c = self.conn(set)?;
        let mut st = c.prepare_cached("SELECT v FROM kv WHERE k = ?1")?;
        let mut found = 0;
        for k in keys {
            let mut rows = st.query([k])?;
            if let Some(row) = rows.next()? {
                std::hint::black_box(row.get::<_, Vec<u8>>(0)?);
                found += 1;
            }
        }
        Ok(found)
    }
}

/// A raw Redis client on one multiplexed connection: loads as pipelines of 64 `SET`s (what
/// `redis-benchmark -P 64` sends); durable writes and reads one command per round trip, and
/// concurrent writers as that many tasks sharing the connection.
///
/// Keys are `PREFIX:raw:SET:KEY`. [`cleanup`](Baseline::cleanup) unlinks every key that
/// starts with `PREFIX:` or `PREFIX-` — its own, and those of stores rooted at
/// `PREFIX-SOMETHING` ([`Target::redis`](super::Target::redis) roots its stores so) — and
/// nothing else, so the prefix must be one no one else uses.
#[cfg(feature = "redis")]
pub struct RedisBaseline {
    client: ::redis::Client,
    conn: ::redis::aio::MultiplexedConnection,
    prefix: String,
}

#[cfg(feature = "redis")]
impl std::fmt::Debug for RedisBaseline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBaseline")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "redis")]
impl RedisBaseline {
    /// Connects to a standalone server at `url` (`redis://HOST:PORT/DB`). `prefix` is 8 to 40
    /// of `A-Z a-z 0-9 _ . -`, so it can never act as a glob.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), nadb::BoxError> {
    /// use nadb::bench::{Baseline, RedisBaseline};
    /// let mut raw = RedisBaseline::connect("redis://127.0.0.1:6379/0", "scratch-7f3a").await?;
    /// raw.open("s").await?;
    /// raw.load("s", &[("k".into(), "v".into())]).await?; // SET scratch-7f3a:raw:s:k v
    /// raw.cleanup().await?; // unlinks scratch-7f3a:* and scratch-7f3a-*
    /// # Ok(()) }
    /// ```
    pub async fn connect(url: &str, prefix: &str) -> Result<RedisBaseline, BoxError> {
        let valid = (8..=40).contains(&prefix.len())
            && prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !valid {
            return Err(format!(
                "benchmark prefix {prefix:?} must be 8 to 40 of A-Z a-z 0-9 _ . -"
            )
            .into());
        }
        let client = ::redis::Client::open(url)?;
        let conn = client.get_multiplexed_async_connection().await?;
        Ok(RedisBaseline {
            client,
            conn,
            prefix: prefix.to_string(),
        })
    }

    fn key(&self, set: &str, key: &str) -> String {
        format!("{}:raw:{set}:{key}", self.prefix)
    }

    async fn unlink_matching(&mut self, pattern: &str) -> Result<(), BoxError> {
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = ::redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut self.conn)
                .await?;
            if !keys.is_empty() {
                ::redis::cmd("UNLINK")
                    .arg(&keys)
                    .query_async::<()>(&mut self.conn)
                    .await?;
            }
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }
}

#[cfg(feature = "redis")]
#[async_trait::async_trait]
impl Baseline for RedisBaseline {
    fn name(&self) -> String {
        "raw redis client".into()
    }

    async fn open(&mut self, _set: &str) -> Result<(), BoxError> {
        Ok(())
    }

    async fn close(&mut self, _set: &str) -> Result<bool, BoxError> {
        // The data lives in the server; a new connection reads it back.
        self.conn = self.client.get_multiplexed_async_connection().await?;
        Ok(true)
    }

    async fn load(&mut self, set: &str, items: &[(String, Bytes)]) -> Result<(), BoxError> {
        for chunk in items.chunks(64) {
            let mut pipe = ::redis::pipe();
            for (k, v) in chunk {
                pipe.set(self.key(set, k), &v[..]).ignore();
            }
            pipe.query_async::<()>(&mut self.conn).await?;
        }
        Ok(())
    }

    async fn put_durable(&mut self, set: &str, items: &[(String, Bytes)]) -> Result<(), BoxError> {
        for (k, v) in items {
            ::redis::cmd("SET")
                .arg(self.key(set, k))
                .arg(&v[..])
                .query_async::<()>(&mut self.conn)
                .await?;
        }
        Ok(())
    }

    async fn put_durable_concurrent(
        &mut self,
        set: &str,
        items: &[(String, Bytes)],
        writers: usize,
    ) -> Result<(), BoxError> {
        let mut tasks = tokio::task::JoinSet::new();
        for part in share(items, writers) {
            let mut conn = self.conn.clone();
            let part: Vec<(String, Bytes)> = part
                .into_iter()
                .map(|(k, v)| (self.key(set, k), v.clone()))
                .collect();
            tasks.spawn(async move {
                for (k, v) in part {
                    ::redis::cmd("SET")
                        .arg(k)
                        .arg(&v[..])
                        .query_async::<()>(&mut conn)
                        .await?;
                }
                Ok::<(), ::redis::RedisError>(())
            });
        }
        while let Some(done) = tasks.join_next().await {
            done??;
        }
        Ok(())
    }

    async fn get_all(&mut self, set: &str, keys: &[String]) -> Result<u64, BoxError> {
        let mut found = 0;
        for k in keys {
            let v: Option<Vec<u8>> = ::redis::cmd("GET")
                .arg(self.key(set, k))
                .query_async(&mut self.conn)
                .await?;
            if v.is_some() {
                found += 1;
            }
        }
        Ok(found)
    }

    async fn cleanup(&mut self) -> Result<(), BoxError> {
        // Only this prefix's own key spaces; the prefix holds no glob characters.
        let prefix = self.prefix.clone();
        self.unlink_matching(&format!("{prefix}:*")).await?;
        self.unlink_matching(&format!("{prefix}-*")).await
    }
}
