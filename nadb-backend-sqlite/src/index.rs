//! [`SqliteIndex`]: a persistent [`MetadataIndex`] in its own SQLite file, for any backend.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use nadb_core::{
    Batch, ExpiredKey, IndexedKey, Meta, MetadataIndex, Op, Result, Space, SpaceCount, TagMode,
    Timestamp,
};
use parking_lot::Mutex;
use rusqlite::{CachedStatement, Connection, params};

use crate::queries::{self, INDEX, KeyWriter};
use crate::sql::{db_error, open_connection};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS nadb_index_spaces (
    id INTEGER PRIMARY KEY, db TEXT NOT NULL, ns TEXT NOT NULL, UNIQUE (db, ns)
);
CREATE TABLE IF NOT EXISTS nadb_index (
    space INTEGER NOT NULL, key TEXT NOT NULL,
    version INTEGER NOT NULL, expires_at INTEGER, stored_len INTEGER NOT NULL,
    PRIMARY KEY (space, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS nadb_index_tags (
    space INTEGER NOT NULL, tag TEXT NOT NULL, key TEXT NOT NULL,
    expires_at INTEGER, version INTEGER NOT NULL,
    PRIMARY KEY (space, tag, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS nadb_index_expiry ON nadb_index (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS nadb_index_tags_by_key ON nadb_index_tags (space, key);
";

/// Tables of an earlier layout, which named the space in every row: the index is derived
/// state, so they are dropped and each space is rebuilt on first use.
const OLD_LAYOUT: &str = "
DROP TABLE IF EXISTS nadb_index;
DROP TABLE IF EXISTS nadb_index_tags;
";

/// A metadata index kept in SQLite: tags, expiry and sizes of another backend's records
/// (the filesystem backend, say), queried with SQL. It is derived state — the store rebuilds
/// each space from the backend's scan the first time it uses it — so it can always be deleted.
///
/// ```
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use nadb_backend_sqlite::SqliteIndex;
/// use nadb_core::{MemoryBackend, SetOptions, Store, TagMode};
/// let dir = tempfile::tempdir().unwrap();
/// let index = Arc::new(SqliteIndex::open(dir.path().join("index.db"))?);
/// let store = Store::builder(MemoryBackend::new()).index(index).build().await?;
/// store.set_with("a", "1", &SetOptions::new().tags(["red"])).await?;
/// assert_eq!(store.query_by_tags(&["red"], TagMode::All, None, 10).await?.items, ["a"]);
/// # Ok::<(), nadb_core::Error>(()) }).unwrap();
/// ```
#[derive(Clone)]
pub struct SqliteIndex {
    conn: Arc<Mutex<Connection>>,
    location: String,
}

impl std::fmt::Debug for SqliteIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteIndex")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl SqliteIndex {
    /// Opens (creating if needed) an index file.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteIndex> {
        let path = path.as_ref();
        let conn = open_connection(path, crate::WRITER_FLAGS, true)?;
        SqliteIndex::with(conn, path.display().to_string())
    }

    /// A private in-memory index.
    pub fn in_memory() -> Result<SqliteIndex> {
        let conn = Connection::open_in_memory().map_err(|e| db_error(":memory:", e))?;
        SqliteIndex::with(conn, ":memory:".into())
    }

    fn with(mut conn: Connection, location: String) -> Result<SqliteIndex> {
        let create = |c: &mut Connection| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let old: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM pragma_table_info('nadb_index') WHERE name = 'db')",
                [],
                |r| r.get(0),
            )?;
            if old {
                tx.execute_batch(OLD_LAYOUT)?;
            }
            tx.execute_batch(SCHEMA)?;
            tx.commit()
        };
        create(&mut conn).map_err(|e| db_error(&location, e))?;
        Ok(SqliteIndex {
            conn: Arc::new(Mutex::new(conn)),
            location,
        })
    }

    /// Runs `f` on the connection, in place like the backend's writes (see
    /// [`blocking`](crate::blocking)): waiting for another process's lock does not stall the
    /// runtime's other tasks.
    fn run<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> Result<T> {
        crate::blocking(|| {
            let mut c = self.conn.lock();
            f(&mut c).map_err(|e| db_error(&self.location, e))
        })
    }
}

const UPSERT: &str = "INSERT OR REPLACE INTO nadb_index \
     (space, key, version, expires_at, stored_len) VALUES (?1, ?2, ?3, ?4, ?5)";

/// Writes the rows of `space`'s keys.
struct IndexWriter<'c> {
    keys: KeyWriter<'c>,
    upsert: CachedStatement<'c>,
}

impl<'c> IndexWriter<'c> {
    fn new(c: &'c Connection, space: &Space, add: bool) -> rusqlite::Result<Self> {
        Ok(IndexWriter {
            keys: KeyWriter::new(c, &INDEX, space, add)?,
            upsert: c.prepare_cached(UPSERT)?,
        })
    }

    fn put(&mut self, key: &str, meta: &Meta) -> rusqlite::Result<()> {
        self.upsert.execute(params![
            self.keys.space(),
            key,
            meta.version as i64,
            meta.expires_at.map(queries::millis),
            meta.stored_len as i64
        ])?;
        self.keys.write_tags(key, meta)
    }
}

#[async_trait]
impl MetadataIndex for SqliteIndex {
    async fn update(&self, batch: &Batch) -> Result<()> {
        self.run(|c| {
            // Takes the write lock up front: the batch reads (whether the space has tags)
            // before it writes, and a read transaction cannot always become a write one.
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            {
                let puts = batch.ops.iter().any(|op| matches!(op, Op::Put { .. }));
                let mut w = IndexWriter::new(&tx, &batch.space, puts)?;
                for op in &batch.ops {
                    match op {
                        Op::Put { key, record } => w.put(key, &record.meta)?,
                        Op::Delete { key } => w.keys.remove_key(key)?,
                    }
                }
            }
            tx.commit()
        })
    }

    async fn rebuild(&self, space: &Space, entries: Vec<(String, Meta)>) -> Result<()> {
        self.run(|c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let id = queries::space_id(&tx, &INDEX, space, !entries.is_empty())?;
            tx.execute("DELETE FROM nadb_index WHERE space = ?1", [id])?;
            tx.execute("DELETE FROM nadb_index_tags WHERE space = ?1", [id])?;
            {
                let mut w = IndexWriter::new(&tx, space, !entries.is_empty())?;
                for (k, m) in &entries {
                    w.put(k, m)?;
                }
            }
            tx.commit()
        })
    }

    async fn query(
        &self,
        space: &Space,
        tags: &[String],
        mode: TagMode,
        now: Timestamp,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<IndexedKey>> {
        let tags = queries::distinct(tags);
        self.run(|c| {
            queries::tag_query(
                c,
                &INDEX,
                space,
                &tags,
                mode,
                now,
                after.unwrap_or(""),
                limit,
            )
        })
    }

    async fn tag_counts(&self, space: &Space, now: Timestamp) -> Result<BTreeMap<String, u64>> {
        self.run(|c| queries::tag_counts(c, &INDEX, space, now))
    }

    async fn expired(&self, now: Timestamp, limit: usize) -> Result<Vec<ExpiredKey>> {
        self.run(|c| queries::expired(c, &INDEX, now, limit))
    }

    async fn count(&self, space: &Space, now: Timestamp) -> Result<SpaceCount> {
        self.run(|c| queries::count(c, &INDEX, space, now))
    }
}
