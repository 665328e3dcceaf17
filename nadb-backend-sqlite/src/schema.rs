//! The database schema and its migrations.
//!
//! Version 2, readable with the `sqlite3` shell:
//!
//! ```sql
//! -- One row per space (database and namespace). Records and tags name their space by `id`:
//! -- an integer key compares in one step where two names compared in two.
//! CREATE TABLE nadb_spaces (
//!     id INTEGER PRIMARY KEY, db TEXT NOT NULL, ns TEXT NOT NULL, UNIQUE (db, ns)
//! );
//! -- One row per record. `value` is the stored value: raw when codec = 0, zstd when codec = 1
//! -- (`value_len` is its length before compression). Times are milliseconds since the Unix
//! -- epoch; `expires_at` is NULL for records that never expire. `version` changes on every
//! -- write (a 64-bit number stored in SQLite's signed INTEGER). `tags` repeats the record's
//! -- tags, sorted and newline-separated (tags never contain control characters).
//! CREATE TABLE nadb_records (
//!     space INTEGER NOT NULL, key TEXT NOT NULL,
//!     value BLOB NOT NULL, codec INTEGER NOT NULL, value_len INTEGER NOT NULL,
//!     created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, expires_at INTEGER,
//!     version INTEGER NOT NULL, tags TEXT NOT NULL,
//!     PRIMARY KEY (space, key)
//! ) WITHOUT ROWID;
//! -- One row per (record, tag), written in the same transaction as the record.
//! -- `expires_at` and `version` repeat the record's, so tag queries need no join.
//! CREATE TABLE nadb_tags (
//!     space INTEGER NOT NULL, tag TEXT NOT NULL, key TEXT NOT NULL,
//!     expires_at INTEGER, version INTEGER NOT NULL,
//!     PRIMARY KEY (space, tag, key)
//! ) WITHOUT ROWID;
//! CREATE INDEX nadb_records_expiry ON nadb_records (expires_at) WHERE expires_at IS NOT NULL;
//! CREATE INDEX nadb_tags_by_key ON nadb_tags (space, key);
//! -- Records with their space's names, for reading by hand.
//! CREATE VIEW nadb_entries AS SELECT s.db, s.ns, r.key, r.value, r.codec, r.value_len,
//!     r.created_at, r.updated_at, r.expires_at, r.version, r.tags
//!     FROM nadb_records r JOIN nadb_spaces s ON s.id = r.space;
//! CREATE TABLE nadb_schema (version INTEGER NOT NULL);
//! -- A counter `sync` increments in a transaction committed with synchronous=FULL: the commit
//! -- must change a page, or SQLite writes (and fsyncs) nothing.
//! CREATE TABLE nadb_sync (n INTEGER NOT NULL);
//! ```
//!
//! For example: `sqlite3 store.db "SELECT db, ns, key, value FROM nadb_entries WHERE codec = 0"`.
//!
//! Version 1 named the space in every row (`db` and `ns` columns leading each primary key);
//! opening a version 1 database rewrites it as version 2 in one transaction. Processes that
//! share a file must all run a build of one schema version: once a newer build has rewritten
//! the file, an older build's statements fail. The rewrite holds the write lock while it
//! copies every row; other processes wait for it, up to their busy timeout.

use rusqlite::Connection;

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = 2;

const V1: &str = "
CREATE TABLE nadb_records (
    db TEXT NOT NULL, ns TEXT NOT NULL, key TEXT NOT NULL,
    value BLOB NOT NULL, codec INTEGER NOT NULL, value_len INTEGER NOT NULL,
    created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, expires_at INTEGER,
    version INTEGER NOT NULL, tags TEXT NOT NULL,
    PRIMARY KEY (db, ns, key)
) WITHOUT ROWID;
CREATE TABLE nadb_tags (
    db TEXT NOT NULL, ns TEXT NOT NULL, tag TEXT NOT NULL, key TEXT NOT NULL,
    expires_at INTEGER, version INTEGER NOT NULL,
    PRIMARY KEY (db, ns, tag, key)
) WITHOUT ROWID;
CREATE INDEX nadb_records_expiry ON nadb_records (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX nadb_tags_by_key ON nadb_tags (db, ns, key);
CREATE TABLE nadb_sync (n INTEGER NOT NULL);
INSERT INTO nadb_sync (n) VALUES (0);
";

/// Version 1 to 2: spaces move to their own table and rows name them by id.
const V2: &str = "
DROP INDEX nadb_records_expiry;
DROP INDEX nadb_tags_by_key;
ALTER TABLE nadb_records RENAME TO nadb_records_v1;
ALTER TABLE nadb_tags RENAME TO nadb_tags_v1;
CREATE TABLE nadb_spaces (
    id INTEGER PRIMARY KEY, db TEXT NOT NULL, ns TEXT NOT NULL, UNIQUE (db, ns)
);
INSERT INTO nadb_spaces (db, ns)
    SELECT db, ns FROM nadb_records_v1 UNION SELECT db, ns FROM nadb_tags_v1;
CREATE TABLE nadb_records (
    space INTEGER NOT NULL, key TEXT NOT NULL,
    value BLOB NOT NULL, codec INTEGER NOT NULL, value_len INTEGER NOT NULL,
    created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, expires_at INTEGER,
    version INTEGER NOT NULL, tags TEXT NOT NULL,
    PRIMARY KEY (space, key)
) WITHOUT ROWID;
INSERT INTO nadb_records
    SELECT s.id, r.key, r.value, r.codec, r.value_len, r.created_at, r.updated_at,
        r.expires_at, r.version, r.tags
    FROM nadb_records_v1 r JOIN nadb_spaces s ON s.db = r.db AND s.ns = r.ns;
CREATE TABLE nadb_tags (
    space INTEGER NOT NULL, tag TEXT NOT NULL, key TEXT NOT NULL,
    expires_at INTEGER, version INTEGER NOT NULL,
    PRIMARY KEY (space, tag, key)
) WITHOUT ROWID;
INSERT INTO nadb_tags
    SELECT s.id, t.tag, t.key, t.expires_at, t.version
    FROM nadb_tags_v1 t JOIN nadb_spaces s ON s.db = t.db AND s.ns = t.ns;
DROP TABLE nadb_records_v1;
DROP TABLE nadb_tags_v1;
CREATE INDEX nadb_records_expiry ON nadb_records (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX nadb_tags_by_key ON nadb_tags (space, key);
CREATE VIEW nadb_entries AS SELECT s.db, s.ns, r.key, r.value, r.codec, r.value_len,
    r.created_at, r.updated_at, r.expires_at, r.version, r.tags
    FROM nadb_records r JOIN nadb_spaces s ON s.id = r.space;
";

/// Migrations from version `i` to `i + 1`, in order; `MIGRATIONS[0]` creates version 1.
const MIGRATIONS: &[&str] = &[V1, V2];

/// Brings the database to [`SCHEMA_VERSION`], in one transaction per step.
pub(crate) fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    conn.execute_batch("CREATE TABLE IF NOT EXISTS nadb_schema (version INTEGER NOT NULL)")?;
    loop {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let current: i64 = tx.query_row(
            "SELECT coalesce(max(version), 0) FROM nadb_schema",
            [],
            |r| r.get(0),
        )?;
        if current == SCHEMA_VERSION {
            return tx.commit();
        }
        if !(0..SCHEMA_VERSION).contains(&current) {
            return Err(crate::sql::altered(format!(
                "database schema version {current}; this build reads {SCHEMA_VERSION}"
            )));
        }
        tx.execute_batch(MIGRATIONS[current as usize])?;
        tx.execute("DELETE FROM nadb_schema", [])?;
        tx.execute(
            "INSERT INTO nadb_schema (version) VALUES (?1)",
            [current + 1],
        )?;
        tx.commit()?;
    }
}
