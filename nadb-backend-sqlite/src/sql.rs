//! Every SQL statement of the backend: connections, the writer, reads, the native index.
//! All user text reaches SQLite as bound parameters, never as SQL.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::LazyLock;

use async_trait::async_trait;
use bytes::Bytes;
use nadb_core::{
    Batch, Codec, Error, ExpiredKey, IndexedKey, Meta, MetadataIndex, Op, Record, Result, Space,
    SpaceCount, TagMode, Tags, Timestamp,
};
use rusqlite::{CachedStatement, Connection, ErrorCode, OpenFlags, OptionalExtension, params};

use crate::SqliteBackend;
use crate::checkpoint::Checkpointer;
use crate::queries::{self, KeyWriter, NATIVE};

/// A SQLite error as a backend error: busy and locked databases are temporary.
pub(crate) fn db_error(location: &str, e: rusqlite::Error) -> Error {
    let temporary = matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    );
    Error::backend(
        "sqlite",
        temporary,
        std::io::Error::other(format!("{location}: {e}")),
    )
}

/// Opens a connection to a database file (WAL, busy timeout); the writer also migrates.
pub(crate) fn open_connection(path: &Path, flags: OpenFlags, writer: bool) -> Result<Connection> {
    let loc = path.display().to_string();
    // SQLite reads a name starting with `file:` as a URI whatever the flags say, and its
    // parameters can turn off locking or keep the data in memory: `./` keeps it a file name.
    let bytes = path.as_os_str().as_encoded_bytes();
    let path = if bytes.len() >= 5 && bytes[..5].eq_ignore_ascii_case(b"file:") {
        Path::new(".").join(path)
    } else {
        path.to_path_buf()
    };
    let conn = Connection::open_with_flags(&path, flags).map_err(|e| db_error(&loc, e))?;
    conn.busy_timeout(crate::BUSY_TIMEOUT)
        .map_err(|e| db_error(&loc, e))?;
    if writer {
        // The durability design needs WAL; SQLite silently keeps another mode where WAL is
        // impossible (some network filesystems), so the answer is checked.
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .map_err(|e| db_error(&loc, e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::backend(
                "sqlite",
                false,
                std::io::Error::other(format!("{loc}: WAL journal mode unavailable (got {mode})")),
            ));
        }
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| db_error(&loc, e))?;
    }
    Ok(conn)
}

/// The writer connection's `synchronous` setting, changed only when a write needs the other
/// one: a run of durable writes pays for no pragma statements. The file's checkpointer is
/// told, as durable commits checkpoint in place.
struct Synchronous {
    full: bool,
    checkpointer: Option<Checkpointer>,
}

impl Synchronous {
    fn set(&mut self, conn: &Connection, full: bool) -> rusqlite::Result<()> {
        if self.full != full {
            conn.pragma_update(None, "synchronous", if full { "FULL" } else { "NORMAL" })?;
            self.full = full;
            if let Some(c) = &self.checkpointer {
                c.durable(full);
            }
        }
        Ok(())
    }
}

/// The one writer connection and what it knows about its own commits.
pub(crate) struct Writer {
    /// Declared first: dropping it stops the checkpoint thread before `conn` closes.
    mode: Synchronous,
    conn: Connection,
    /// The database's `data_version` at this connection's last fsync, while nothing committed
    /// since could be unsynced: `None` after a commit under NORMAL (opening makes some). The
    /// version moves whenever another connection or process commits.
    clean_at: Option<i64>,
}

impl Writer {
    /// Takes over `conn`, which `open_connection` left at `synchronous=NORMAL`, and the
    /// checkpointer of its file (none in memory).
    pub(crate) fn new(conn: Connection, checkpointer: Option<Checkpointer>) -> Writer {
        // Room for every write statement beside the reads of an in-memory database: the
        // multi-row upsert is costly to prepare again.
        conn.set_prepared_statement_cache_capacity(64);
        Writer {
            mode: Synchronous {
                full: false,
                checkpointer,
            },
            conn,
            clean_at: None,
        }
    }

    /// The connection, for reads of an in-memory database.
    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Applies `batch` in one transaction that does not wait for the disk.
    pub(crate) fn apply(&mut self, batch: &Batch, location: &str) -> Result<()> {
        let result = self
            .mode
            .set(&self.conn, false)
            .map_err(Applied::Db)
            .and_then(|()| apply(&mut self.conn, batch, Commit::Buffered));
        self.clean_at = None;
        result.map(drop).map_err(|e| applied_error(location, e))
    }

    /// Applies `batch` in one transaction whose commit, made under `synchronous=FULL`, fsyncs
    /// the WAL and with it every earlier commit.
    pub(crate) fn apply_synced(&mut self, batch: &Batch, location: &str) -> Result<()> {
        let commit = Commit::Synced {
            clean_at: self.clean_at,
        };
        let result = self
            .mode
            .set(&self.conn, true)
            .map_err(Applied::Db)
            .and_then(|()| apply(&mut self.conn, batch, commit));
        // A failed commit may have reached the WAL without its fsync.
        self.clean_at = result.as_ref().ok().copied().flatten();
        result.map(drop).map_err(|e| applied_error(location, e))
    }

    /// Makes every commit so far durable.
    pub(crate) fn sync(&mut self, location: &str) -> Result<()> {
        // Read before the fsync: a commit of another connection in between is fsynced too.
        let result =
            data_version(&self.conn).and_then(|v| sync(&mut self.conn, &mut self.mode).map(|()| v));
        self.clean_at = result.as_ref().ok().copied();
        result.map(drop).map_err(|e| db_error(location, e))
    }
}

fn applied_error(location: &str, e: Applied) -> Error {
    match e {
        Applied::Conflict(reason) => Error::Conflict { reason },
        Applied::Db(e) => db_error(location, e),
    }
}

enum Applied {
    Conflict(String),
    Db(rusqlite::Error),
}

impl From<rusqlite::Error> for Applied {
    fn from(e: rusqlite::Error) -> Applied {
        Applied::Db(e)
    }
}

/// The record upsert for `rows` rows: an existing record that is live at this write keeps its
/// creation time. SQLite applies the rows in order, so an earlier row (or op) counts.
fn upsert_sql(rows: usize) -> String {
    let values: Vec<String> = (0..rows)
        .map(|r| {
            let p: Vec<String> = (1..=RECORD_PARAMS)
                .map(|i| format!("?{}", r * RECORD_PARAMS + i))
                .collect();
            format!("({})", p.join(", "))
        })
        .collect();
    format!(
        "INSERT INTO nadb_records \
         (space, key, value, codec, value_len, created_at, updated_at, expires_at, version, tags) \
         VALUES {} \
         ON CONFLICT (space, key) DO UPDATE SET \
         value = excluded.value, codec = excluded.codec, value_len = excluded.value_len, \
         created_at = CASE WHEN nadb_records.expires_at IS NULL \
             OR nadb_records.expires_at > excluded.updated_at \
             THEN nadb_records.created_at ELSE excluded.created_at END, \
         updated_at = excluded.updated_at, expires_at = excluded.expires_at, \
         version = excluded.version, tags = excluded.tags",
        values.join(", ")
    )
}

/// Parameters of one record row.
const RECORD_PARAMS: usize = 10;

/// Rows per multi-row upsert: one statement per 64 puts costs SQLite far less than 64.
const ROWS: usize = 64;

/// The largest value written with others in one statement. SQLite copies the values bound
/// to a statement, so a group holds at most 64 × 16 KiB beside the batch; a larger value
/// gains nothing from grouping and is written alone.
const GROUPED_VALUE_MAX: usize = 16 << 10;

static UPSERT_ONE: LazyLock<String> = LazyLock::new(|| upsert_sql(1));
static UPSERT_MANY: LazyLock<String> = LazyLock::new(|| upsert_sql(ROWS));

/// Record rows of one space on their way into `nadb_records`, written [`ROWS`] to a
/// statement. Rows are written in the order they are put; [`Self::flush`] writes the rest,
/// and must run before anything that depends on the rows put so far.
struct RecordRows<'c, 'b> {
    conn: &'c Connection,
    space: i64,
    one: CachedStatement<'c>,
    /// Looked up on the first full group: a batch of a few puts never hashes its long SQL.
    many: Option<CachedStatement<'c>>,
    waiting: Vec<(&'b str, &'b Record)>,
}

impl<'c, 'b> RecordRows<'c, 'b> {
    fn new(conn: &'c Connection, space: i64) -> rusqlite::Result<Self> {
        Ok(RecordRows {
            conn,
            space,
            one: conn.prepare_cached(&UPSERT_ONE)?,
            many: None,
            waiting: Vec::new(),
        })
    }

    fn put(&mut self, key: &'b str, record: &'b Record) -> rusqlite::Result<()> {
        if record.value.len() > GROUPED_VALUE_MAX {
            self.flush()?;
            bind_record(&mut self.one, 0, self.space, key, record)?;
            self.one.raw_execute()?;
            return Ok(());
        }
        self.waiting.push((key, record));
        if self.waiting.len() == ROWS {
            let many = match &mut self.many {
                Some(st) => st,
                None => self.many.insert(self.conn.prepare_cached(&UPSERT_MANY)?),
            };
            for (row, (key, record)) in self.waiting.iter().enumerate() {
                bind_record(many, row * RECORD_PARAMS, self.space, key, record)?;
            }
            self.waiting.clear();
            many.raw_execute()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> rusqlite::Result<()> {
        for (key, record) in self.waiting.drain(..) {
            bind_record(&mut self.one, 0, self.space, key, record)?;
            self.one.raw_execute()?;
        }
        Ok(())
    }
}

/// Binds one record row after the statement's first `before` parameters.
fn bind_record(
    st: &mut rusqlite::Statement<'_>,
    before: usize,
    space: i64,
    key: &str,
    record: &Record,
) -> rusqlite::Result<()> {
    let m = &record.meta;
    st.raw_bind_parameter(before + 1, space)?;
    st.raw_bind_parameter(before + 2, key)?;
    st.raw_bind_parameter(before + 3, &record.value[..])?;
    st.raw_bind_parameter(before + 4, m.codec.id())?;
    st.raw_bind_parameter(before + 5, m.value_len as i64)?;
    st.raw_bind_parameter(before + 6, queries::millis(m.created_at))?;
    st.raw_bind_parameter(before + 7, queries::millis(m.updated_at))?;
    st.raw_bind_parameter(before + 8, m.expires_at.map(queries::millis))?;
    st.raw_bind_parameter(before + 9, m.version as i64)?;
    st.raw_bind_parameter(before + 10, m.tags.join("\n"))
}

/// How [`apply`] commits.
enum Commit {
    /// Without waiting for the disk (the connection is at `synchronous=NORMAL`).
    Buffered,
    /// With an fsync of the WAL (the connection is at `synchronous=FULL`). A batch that writes
    /// no page (the same rows again, as when an uncertain apply is retried; SQLite counts an
    /// identical upsert as a change but writes nothing) commits nothing and gets no fsync, so
    /// the commit also bumps the sync counter unless the database is exactly as it was at the
    /// last fsync, `clean_at`: then every row the batch can leave unchanged is durable already.
    Synced { clean_at: Option<i64> },
}

/// The connection's `data_version`: it changes when another connection commits.
fn data_version(c: &Connection) -> rusqlite::Result<i64> {
    c.query_row("PRAGMA data_version", [], |r| r.get(0))
}

/// Applies `batch` in one transaction; a synced commit returns the `data_version` it saw.
fn apply(
    conn: &mut Connection,
    batch: &Batch,
    commit: Commit,
) -> std::result::Result<Option<i64>, Applied> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    // Read under the write lock: no other commit can slip in before this one.
    let seen = match commit {
        Commit::Buffered => None,
        Commit::Synced { .. } => Some(data_version(&tx)?),
    };
    let puts = batch.ops.iter().any(|op| matches!(op, Op::Put { .. }));
    let mut keys = KeyWriter::new(&tx, &NATIVE, &batch.space, puts)?;
    for c in &batch.checks {
        let found: Option<i64> = tx
            .prepare_cached("SELECT version FROM nadb_records WHERE space = ?1 AND key = ?2")?
            .query_row(params![keys.space(), c.key], |r| r.get(0))
            .optional()?;
        if !c.expect.holds(found.map(|v| v as u64)) {
            return Err(Applied::Conflict(format!(
                "a check on a key of {} bytes failed",
                c.key.len()
            )));
        }
    }
    let mut records = RecordRows::new(&tx, keys.space())?;
    for op in &batch.ops {
        match op {
            Op::Put { key, record } => {
                // Tag rows are in their own table: only their order per key matters.
                records.put(key, record)?;
                keys.write_tags(key, &record.meta)?;
            }
            Op::Delete { key } => {
                records.flush()?;
                keys.remove_key(key)?;
            }
        }
    }
    records.flush()?;
    drop((records, keys));
    if let Commit::Synced { clean_at } = commit
        && clean_at != seen
    {
        bump_sync_counter(&tx)?;
    }
    tx.commit()?;
    Ok(seen)
}

/// An error for a database whose nadb tables are not as this build wrote them.
pub(crate) fn altered(reason: String) -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
        Some(reason),
    )
}

/// Changes the sync counter row; fails if it is missing (then a sync would write nothing).
fn bump_sync_counter(c: &Connection) -> rusqlite::Result<()> {
    match c.execute("UPDATE nadb_sync SET n = n + 1", [])? {
        1 => Ok(()),
        n => Err(crate::sql::altered(format!(
            "nadb_sync holds {n} rows, want 1: the database was altered"
        ))),
    }
}

/// Makes every commit so far durable: one write committed with `synchronous=FULL` fsyncs the
/// WAL, which holds all earlier commits. The write must really change a row — SQLite skips an
/// update that leaves a record as it was, and then has nothing to commit or sync.
fn sync(conn: &mut Connection, mode: &mut Synchronous) -> rusqlite::Result<()> {
    mode.set(conn, true)?;
    bump_sync_counter(conn)
}

const META_COLUMNS: &str = "codec, value_len, created_at, updated_at, expires_at, version, tags";

fn meta_from(row: &rusqlite::Row<'_>, first: usize, stored_len: u64) -> rusqlite::Result<Meta> {
    let codec: u8 = row.get(first)?;
    let tags: String = row.get(first + 6)?;
    let bad = |what: &str| {
        rusqlite::Error::FromSqlConversionFailure(
            first,
            rusqlite::types::Type::Text,
            format!("stored {what} is invalid").into(),
        )
    };
    Ok(Meta {
        codec: Codec::from_id(codec).ok_or_else(|| bad("codec"))?,
        value_len: row.get::<_, i64>(first + 1)? as u64,
        created_at: Timestamp::from_millis(row.get::<_, i64>(first + 2)? as u64),
        updated_at: Timestamp::from_millis(row.get::<_, i64>(first + 3)? as u64),
        expires_at: row
            .get::<_, Option<i64>>(first + 4)?
            .map(|t| Timestamp::from_millis(t as u64)),
        version: row.get::<_, i64>(first + 5)? as u64,
        tags: if tags.is_empty() {
            Tags::empty()
        } else {
            Tags::new(tags.split('\n')).map_err(|_| bad("tag list"))?
        },
        stored_len,
    })
}

pub(crate) fn get(c: &Connection, space: &Space, key: &str) -> rusqlite::Result<Option<Record>> {
    c.prepare_cached(&format!(
        "SELECT value, {META_COLUMNS} FROM nadb_records WHERE {} AND key = ?3",
        NATIVE.in_space
    ))?
    .query_row(params![space.db(), space.namespace(), key], |r| {
        let value: Vec<u8> = r.get(0)?;
        let meta = meta_from(r, 1, value.len() as u64)?;
        Ok(Record::new(Bytes::from(value), meta))
    })
    .optional()
}

/// Every (db, namespace) holding a record, in order.
pub(crate) fn spaces(c: &Connection) -> rusqlite::Result<Vec<(String, String)>> {
    let mut stmt = c.prepare_cached(
        "SELECT db, ns FROM nadb_spaces s \
         WHERE EXISTS (SELECT 1 FROM nadb_records WHERE space = s.id) ORDER BY db, ns",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

pub(crate) fn scan(
    c: &Connection,
    space: &Space,
    prefix: &str,
    after: Option<&str>,
    limit: usize,
) -> rusqlite::Result<Vec<(String, Meta)>> {
    let (op, start) = match after {
        Some(a) if a >= prefix => (">", a),
        _ => (">=", prefix),
    };
    let mut stmt = c.prepare_cached(&format!(
        "SELECT key, length(value), {META_COLUMNS} FROM nadb_records \
         WHERE {} AND key {op} ?3 ORDER BY key LIMIT ?4",
        NATIVE.in_space
    ))?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = stmt.query_map(params![space.db(), space.namespace(), start, limit], |r| {
        let key: String = r.get(0)?;
        let stored: i64 = r.get(1)?;
        Ok((key, meta_from(r, 2, stored as u64)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (k, m) = row?;
        // Keys come in order: the first one without the prefix ends the range.
        if !k.starts_with(prefix) {
            break;
        }
        out.push((k, m));
    }
    Ok(out)
}

/// Tag, expiry and count questions answered by SQL over the backend's own tables.
#[derive(Debug)]
pub(crate) struct NativeIndex(pub(crate) SqliteBackend);

#[async_trait]
impl MetadataIndex for NativeIndex {
    async fn update(&self, _batch: &Batch) -> Result<()> {
        Ok(())
    }

    async fn rebuild(&self, _space: &Space, _entries: Vec<(String, Meta)>) -> Result<()> {
        Ok(())
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
        let (space, tags) = (space.clone(), queries::distinct(tags));
        let after = after.unwrap_or("").to_string();
        self.0
            .read(move |c| queries::tag_query(c, &NATIVE, &space, &tags, mode, now, &after, limit))
            .await
    }

    async fn tag_counts(&self, space: &Space, now: Timestamp) -> Result<BTreeMap<String, u64>> {
        let space = space.clone();
        self.0
            .read(move |c| queries::tag_counts(c, &NATIVE, &space, now))
            .await
    }

    async fn expired(&self, now: Timestamp, limit: usize) -> Result<Vec<ExpiredKey>> {
        self.0
            .read(move |c| queries::expired(c, &NATIVE, now, limit))
            .await
    }

    async fn count(&self, space: &Space, now: Timestamp) -> Result<SpaceCount> {
        let space = space.clone();
        self.0
            .read(move |c| queries::count(c, &NATIVE, &space, now))
            .await
    }
}
