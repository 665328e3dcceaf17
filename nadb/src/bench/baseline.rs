//! [`Baseline`]: what a user would write instead of nadb, measured beside it on the same data —
//! a locked `HashMap`, an append-only file with `fdatasync`, raw rusqlite, a raw Redis pipeline.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::RwLock;

use bytes::Bytes;

use crate::BoxError;

/// The raw counterpart of a backend. Each method works on its own data set named `set` (one
/// per workload), so workloads never see each other's keys.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use bytes::Bytes;
/// use nadb::bench::{Baseline, MapBaseline};
///
/// let mut map = MapBaseline::default();
/// map.load("demo", &[("k".to_string(), Bytes::from_static(b"v"))]).await?;
/// assert_eq!(map.get_all("demo", &["k".to_string()]).await?, 1);
/// assert!(!map.reopen("demo").await?); // nothing persists
/// # Ok::<(), nadb::BoxError>(()) }).unwrap();
/// ```
#[async_trait::async_trait]
pub trait Baseline: Send {
    /// A short name for tables and charts, e.g. `raw rusqlite`.
    fn name(&self) -> String;

    /// Writes every item as one bulk operation (one transaction, pipeline or sync), the way a
    /// user loads data when they do not need each write acknowledged durably.
    async fn load(&mut self, set: &str, items: &[(String, Bytes)]) -> Result<(), BoxError>;

    /// Writes the items one at a time, each durable before the next starts (the baseline's
    /// strongest per-write guarantee).
    async fn put_durable(&mut self, set: &str, items: &[(String, Bytes)]) -> Result<(), BoxError>;

    /// Reads every key in order and returns how many were found.
    async fn get_all(&mut self, set: &str, keys: &[String]) -> Result<u64, BoxError>;

    /// Drops what the baseline holds in memory for `set` and opens it again from storage;
    /// `false` when it has no storage to reopen from.
    async fn reopen(&mut self, set: &str) -> Result<bool, BoxError>;

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

fn poisoned<T>(_: T) -> BoxError {
    "baseline map lock poisoned".into()
}

#[async_trait::async_trait]
impl Baseline for MapBaseline {
    fn name(&self) -> String {
        "RwLock<HashMap>".into()
    }

    async fn load(&mut self, set: &str, items: &[(String, Bytes)]) -> Result<(), BoxError> {
        let mut map = self.set(set).write().map_err(poisoned)?;
        for (k, v) in items {
            map.insert(k.clone(), v.clone());
        }
        Ok(())
    }

    async fn put_durable(&mut self, set: &str, items: &[(String, Bytes)]) -> Result<(), BoxError> {
        // Each write takes the lock on its own, as concurrent callers would.
        let lock = self.set(set);
        for (k, v) in items {
            lock.write().map_err(poisoned)?.insert(k.clone(), v.clone());
        }
        Ok(())
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

    async fn reopen(&mut self, _set: &str) -> Result<bool, BoxError> {
        Ok(false)
    }
}

/// One append-only file per data set, records `[key len u32][value len u32][key][value]`, an
/// in-memory index of offsets, `fdatasync` after each durable write: the least a filesystem
/// store must do, so the floor under nadb's `fs://` backend.
#[derive(Debug)]
pub struct LogBaseline {
    dir: PathBuf,
    sets: HashMap<String, Log>,
}

#[derive(Debug)]
struct Log {
    file: File,
    end: u64,
    index: HashMap<String, (u64, u32)>,
}

impl LogBaseline {
    /// Files go into `dir`, which must exist.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use nadb::bench::{Baseline, LogBaseline};
    /// let dir = tempfile::tempdir()?;
    /// let mut log = LogBaseline::new(dir.path());
    /// log.put_durable("s", &[("k".into(), "v".into())]).await?;
    /// assert!(log.reopen("s").await?); // the index is rebuilt from the file
    /// assert_eq!(log.get_all("s", &["k".into()]).await?, 1);
    /// # Ok::<(), nadb::BoxError>(()) }).unwrap();
    /// ```
    pub fn new(dir: impl Into<PathBuf>) -> LogBaseline {
        LogBaseline {
            dir: dir.into(),
            sets: HashMap::new(),
        }
    }

    fn log(&mut self, set: &str) -> Result<&mut Log, BoxError> {
        if !self.sets.contains_key(set) {
            let log = Log::open(self.dir.join(format!("{set}.log")))?;
            self.sets.insert(set.to_string(), log);
        }
        self.sets
            .get_mut(set)
            .ok_or_else(|| BoxError::from("log vanished"))
    }
}

fn frame(key: &str, value: &[u8], out: &mut Vec<u8>) -> Result<(), BoxError> {
    out.extend_from_slice(&u32::try_from(key.len())?.to_le_bytes());
    out.extend_from_slice(&u32::try_from(value.len())?.to_le_bytes());
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(value);
    Ok(())
}

impl Log {
    /// Opens (creating) the file and rebuilds the index by reading every header.
    fn open(path: PathBuf) -> Result<Log, BoxError> {
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)?;
        let mut index = HashMap::new();
        let mut reader = BufReader::new(File::open(&path)?);
        let mut end = 0u64;
        let mut header = [0u8; 8];
        while reader.read_exact(&mut header).is_ok() {
            let klen = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
            let vlen = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
            let mut key = vec![0u8; klen as usize];
            reader.read_exact(&mut key)?;
            reader.seek(SeekFrom::Current(i64::from(vlen)))?;
            let value_at = end + 8 + u64::from(klen);
            index.insert(String::from_utf8(key)?, (value_at, vlen));
            end = value_at + u64::from(vlen);
        }
        Ok(Log { file, end, index })
    }

    fn note(&mut self, key: &str, value_len: usize) {
        let value_at = self.end + 8 + key.len() as u64;
        self.index
            .insert(key.to_string(), (value_at, value_len as u32));
        self.end = value_at + value_len as u64;
    }
}

#[async_trait::async_trait]
impl Baseline for LogBaseline {
    fn name(&self) -> String {
        "append + fdatasync".into()
    }

    async fn load(&mut self, set: &str, items: &[(String, Bytes)]) -> Result<(), BoxError> {
        let log = self.log(set)?;
        let mut out = BufWriter::with_capacity(1 << 20, &log.file);
        let mut buf = Vec::new();
        for (k, v) in items {
            buf.clear();
            frame(k, v, &mut buf)?;
            out.write_all(&buf)?;
        }
        out.flush()?;
        drop(out);
        log.file.sync_data()?;
        for (k, v) in items {
            log.note(k, v.len());
        }
        Ok(())
    }

    async fn put_durable(&mut self, set: &str, items: &[(String, Bytes)]) -> Result<(), BoxError> {
        let log = self.log(set)?;
        let mut buf = Vec::new();
        for (k, v) in items {
            buf.clear();
            frame(k, v, &mut buf)?;
            (&log.file).write_all(&buf)?;
            log.file.sync_data()?;
            log.note(k, v.len());
        }
        Ok(())
    }

    async fn get_all(&mut self, set: &str, keys: &[String]) -> Result<u64, BoxError> {
        let log = self.log(set)?;
        let mut found = 0;
        for k in keys {
            if let Some(&(at, len)) = log.index.get(k) {
                let mut value = vec![0u8; len as usize];
                log.file.read_exact_at(&mut value, at)?;
                std::hint::black_box(value);
                found += 1;
            }
        }
        Ok(found)
    }

    async fn reopen(&mut self, set: &str) -> Result<bool, BoxError> {
        self.sets.remove(set);
        self.log(set)?;
        Ok(true)
    }
}

/// Raw rusqlite: one file per data set in WAL mode, a `WITHOUT ROWID` table, `INSERT OR
/// REPLACE` — in one transaction for a load, one transaction each with `synchronous=FULL`
/// for durable writes.
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

    fn conn(&mut self, set: &str) -> Result<&mut rusqlite::Connection, BoxError> {
        if !self.sets.contains_key(set) {
            let c = rusqlite::Connection::open(self.dir.join(format!("{set}.db")))?;
            c.pragma_update(None, "journal_mode", "WAL")?;
            c.pragma_update(None, "synchronous", "FULL")?;
            c.execute_batch(
                "CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID",
            )?;
            self.sets.insert(set.to_string(), c);
        }
        self.sets
            .get_mut(set)
            .ok_or_else(|| BoxError::from("connection vanished"))
    }
}

#[cfg(feature = "sqlite")]
const SQL_PUT: &str = "INSERT OR REPLACE INTO kv (k, v) VALUES (?1, ?2)";

#[cfg(feature = "sqlite")]
#[async_trait::async_trait]
impl Baseline for SqliteBaseline {
    fn name(&self) -> String {
        "raw rusqlite".into()
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
        let c = self.conn(set)?;
        for (k, v) in items {
            let tx = c.transaction()?;
            tx.prepare_cached(SQL_PUT)?
                .execute(rusqlite::params![k, &v[..]])?;
            tx.commit()?;
        }
        Ok(())
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

    async fn reopen(&mut self, set: &str) -> Result<bool, BoxError> {
        self.sets.remove(set);
        self.conn(set)?;
        Ok(true)
    }
}

/// A raw Redis client on one multiplexed connection: loads as pipelines of 64 `SET`s (what
/// `redis-benchmark -P 64` sends), durable writes and reads one command per round trip.
/// Keys are `PREFIX:raw:SET:KEY`; [`cleanup`](Baseline::cleanup) unlinks every key under
/// `PREFIX` (the store's keys too, when they share it).
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
    /// Connects to a standalone server at `url` (`redis://HOST:PORT/DB`).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), nadb::BoxError> {
    /// use nadb::bench::{Baseline, RedisBaseline};
    /// let mut raw = RedisBaseline::connect("redis://127.0.0.1:6379/0", "scratch").await?;
    /// raw.load("s", &[("k".into(), "v".into())]).await?; // SET scratch:raw:s:k v
    /// raw.cleanup().await?; // unlinks scratch*
    /// # Ok(()) }
    /// ```
    pub async fn connect(url: &str, prefix: &str) -> Result<RedisBaseline, BoxError> {
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
}

#[cfg(feature = "redis")]
#[async_trait::async_trait]
impl Baseline for RedisBaseline {
    fn name(&self) -> String {
        "raw redis pipeline".into()
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

    async fn reopen(&mut self, _set: &str) -> Result<bool, BoxError> {
        self.conn = self.client.get_multiplexed_async_connection().await?;
        Ok(true)
    }

    async fn cleanup(&mut self) -> Result<(), BoxError> {
        // A benchmark run's own prefix, so SCAN touches only what this run wrote.
        let mut pattern = String::new();
        for c in self.prefix.chars() {
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push('*');
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = ::redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
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
