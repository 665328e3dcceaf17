//! The database layout: a version 1 file is rewritten as version 2 with nothing lost, long
//! batches (written many rows to a statement) apply in op order, and a `SqliteIndex` file of
//! the earlier layout is replaced.

use std::collections::BTreeMap;
use std::sync::Arc;

use nadb_backend_sqlite::schema::SCHEMA_VERSION;
use nadb_backend_sqlite::{SqliteBackend, SqliteIndex};
use nadb_core::{
    Batch, Meta, MetadataIndex, Record, Space, StorageBackend, TagMode, Tags, Timestamp,
};

/// The tables a version 1 build created: the space named in every row.
const V1_TABLES: &str = "
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
CREATE TABLE nadb_schema (version INTEGER NOT NULL);
INSERT INTO nadb_schema (version) VALUES (1);
";

const NOW: u64 = 1_800_000_000_000;

/// db, namespace, key, value, expiry, tags.
type V1Row = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Option<u64>,
    &'static str,
);

/// A version 1 file: three records in the default space (one tagged, one live with an
/// expiry, one expired) and one in `app/users`.
fn write_version_1(path: &std::path::Path) {
    let c = rusqlite::Connection::open(path).expect("create a version 1 file");
    c.execute_batch(V1_TABLES).expect("version 1 tables");
    let rows: [V1Row; 4] = [
        ("default", "default", "tagged", "one", None, "blue\nred"),
        ("default", "default", "later", "two", Some(NOW + 60_000), ""),
        (
            "default",
            "default",
            "gone",
            "three",
            Some(NOW - 60_000),
            "red",
        ),
        ("app", "users", "ada", "four", None, "red"),
    ];
    for (i, (db, ns, key, value, expires, tags)) in rows.iter().enumerate() {
        c.execute(
            "INSERT INTO nadb_records VALUES (?1, ?2, ?3, ?4, 0, ?5, 1000, 2000, ?6, ?7, ?8)",
            rusqlite::params![
                db,
                ns,
                key,
                value.as_bytes(),
                value.len() as i64,
                expires.map(|t| t as i64),
                10 + i as i64,
                tags
            ],
        )
        .expect("a version 1 record");
        for tag in tags.split('\n').filter(|t| !t.is_empty()) {
            c.execute(
                "INSERT INTO nadb_tags VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                rusqlite::params![db, ns, tag, key, expires.map(|t| t as i64), 10 + i as i64],
            )
            .expect("a version 1 tag row");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_1_database_opens_as_version_2_with_everything_in_it() -> nadb_core::Result<()> {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("v1.db");
    write_version_1(&path);

    let backend = SqliteBackend::open(&path).await?;
    let default = Space::default();
    let users = Space::new("app", "users")?;
    let tagged = backend.get(&default, "tagged").await?.expect("tagged kept");
    assert_eq!(&tagged.value[..], b"one");
    assert_eq!(tagged.meta.tags, Tags::new(["blue", "red"])?);
    assert_eq!(tagged.meta.created_at, Timestamp::from_millis(1000));
    assert_eq!(tagged.meta.updated_at, Timestamp::from_millis(2000));
    assert_eq!(tagged.meta.version, 10);
    let later = backend.get(&default, "later").await?.expect("later kept");
    assert_eq!(
        later.meta.expires_at,
        Some(Timestamp::from_millis(NOW + 60_000))
    );
    assert_eq!(
        &backend.get(&users, "ada").await?.expect("ada kept").value[..],
        b"four"
    );
    assert_eq!(
        backend.spaces().await?,
        vec![users.clone(), default.clone()]
    );

    let index = backend.native_index().expect("a native index");
    let now = Timestamp::from_millis(NOW);
    let red = ["red".to_string()];
    let found = index
        .query(&default, &red, TagMode::All, now, None, 10)
        .await?;
    assert_eq!(
        found.iter().map(|k| k.key.as_str()).collect::<Vec<_>>(),
        ["tagged"],
        "the expired record's tag must not answer"
    );
    assert_eq!(
        index
            .query(&users, &red, TagMode::All, now, None, 10)
            .await?[0]
            .key,
        "ada"
    );
    let expired = index.expired(now, 10).await?;
    assert_eq!(expired.len(), 1);
    assert_eq!(
        (expired[0].key.as_str(), &expired[0].space),
        ("gone", &default)
    );
    assert_eq!(index.count(&default, now).await?.keys, 2);

    // Written after the rewrite, into a space the version 1 file already had.
    let mut batch = Batch::new(users.clone());
    batch.put("bob", record("five", 20, 3000, &["red"]));
    backend.apply(&batch).await?;
    assert_eq!(index.tag_counts(&users, now).await?.get("red"), Some(&2));
    backend.close().await?;

    let c = rusqlite::Connection::open(&path).expect("reopen by hand");
    let version: i64 = c
        .query_row("SELECT version FROM nadb_schema", [], |r| r.get(0))
        .expect("schema version");
    assert_eq!(version, SCHEMA_VERSION);
    let entries: Vec<String> = c
        .prepare("SELECT db || '/' || ns || ' ' || key FROM nadb_entries ORDER BY db, ns, key")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .expect("the entries view");
    assert_eq!(
        entries,
        [
            "app/users ada",
            "app/users bob",
            "default/default gone",
            "default/default later",
            "default/default tagged"
        ]
    );
    let leftovers: i64 = c
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name LIKE '%_v1'",
            [],
            |r| r.get(0),
        )
        .expect("schema listing");
    assert_eq!(leftovers, 0, "the version 1 tables were left behind");
    Ok(())
}

fn record(value: &str, version: u64, created: u64, tags: &[&str]) -> Record {
    let mut meta = Meta::new(Timestamp::from_millis(created), version);
    meta.value_len = value.len() as u64;
    meta.tags = Tags::new(tags.iter().copied()).expect("valid tags");
    Record::new(value.to_string().into(), meta)
}

/// What a key holds in the model: value, creation time, tagged.
type Model = BTreeMap<String, (String, u64, bool)>;

/// One batch of 1,000 ops over 40 keys — puts (some tagged, some large), deletes and repeats
/// of one key within a single many-row statement — leaves what applying the ops one by one would: last
/// write wins, a delete in between counts, and a rewritten live record keeps its creation time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_batches_apply_in_op_order() -> nadb_core::Result<()> {
    let dir = tempfile::tempdir().expect("dir");
    let backend = SqliteBackend::open(dir.path().join("order.db")).await?;
    let space = Space::default();
    let mut model = Model::new();
    let mut batch = Batch::new(space.clone());
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    for i in 0..1000u64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let key = format!("k{:02}", x % 40);
        // Deletes are rare enough that runs of puts fill many-row statements.
        if x.is_multiple_of(89) {
            batch.delete(key.clone());
            model.remove(&key);
        } else {
            let tagged = x.is_multiple_of(5);
            // Every 50th value is too large to share a statement and is written alone.
            let value = if i % 50 == 0 {
                format!("v{i}{}", "x".repeat(20_000))
            } else {
                format!("v{i}")
            };
            let created = 10_000 + i;
            let tags: &[&str] = if tagged { &["t"] } else { &[] };
            batch.put(key.clone(), record(&value, i + 1, created, tags));
            let kept = model.get(&key).map_or(created, |(_, c, _)| *c);
            model.insert(key, (value, kept, tagged));
        }
    }
    backend.apply(&batch).await?;

    for i in 0..40 {
        let key = format!("k{i:02}");
        let got = backend.get(&space, &key).await?;
        match (model.get(&key), got) {
            (None, None) => {}
            (Some((value, created, _)), Some(r)) => {
                assert_eq!(&r.value[..], value.as_bytes(), "{key}");
                assert_eq!(r.meta.created_at, Timestamp::from_millis(*created), "{key}");
            }
            (want, got) => panic!("{key}: want {want:?}, got {:?}", got.map(|r| r.value)),
        }
    }
    let index = backend.native_index().expect("a native index");
    let found = index
        .query(
            &space,
            &["t".to_string()],
            TagMode::All,
            Timestamp::from_millis(NOW),
            None,
            100,
        )
        .await?;
    let want: Vec<&str> = model
        .iter()
        .filter(|(_, (_, _, tagged))| *tagged)
        .map(|(k, _)| k.as_str())
        .collect();
    assert_eq!(
        found.iter().map(|k| k.key.as_str()).collect::<Vec<_>>(),
        want
    );
    backend.close().await
}

/// An index file written by a build whose index tables named the space in every row opens
/// with fresh tables; the store then rebuilds what it needs from the backend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_file_of_the_earlier_layout_is_replaced() -> nadb_core::Result<()> {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("index.db");
    {
        let c = rusqlite::Connection::open(&path).expect("create");
        c.execute_batch(
            "CREATE TABLE nadb_index (db TEXT NOT NULL, ns TEXT NOT NULL, key TEXT NOT NULL,
                 version INTEGER NOT NULL, expires_at INTEGER, stored_len INTEGER NOT NULL,
                 PRIMARY KEY (db, ns, key)) WITHOUT ROWID;
             CREATE TABLE nadb_index_tags (db TEXT NOT NULL, ns TEXT NOT NULL,
                 tag TEXT NOT NULL, key TEXT NOT NULL, expires_at INTEGER,
                 version INTEGER NOT NULL, PRIMARY KEY (db, ns, tag, key)) WITHOUT ROWID;
             INSERT INTO nadb_index VALUES ('default', 'default', 'stale', 1, NULL, 1);
             INSERT INTO nadb_index_tags VALUES ('default', 'default', 'red', 'stale', NULL, 1);",
        )
        .expect("earlier layout");
    }
    let index = Arc::new(SqliteIndex::open(&path)?);
    let space = Space::default();
    let now = Timestamp::from_millis(NOW);
    assert!(index.tag_counts(&space, now).await?.is_empty());
    let mut batch = Batch::new(space.clone());
    batch.put("fresh", record("v", 1, 1000, &["red"]));
    index.update(&batch).await?;
    let found = index
        .query(&space, &["red".to_string()], TagMode::All, now, None, 10)
        .await?;
    assert_eq!(
        found.iter().map(|k| k.key.as_str()).collect::<Vec<_>>(),
        ["fresh"]
    );
    Ok(())
}

/// A batch that only deletes or checks keys of a space nothing was written to adds no row
/// for that space: deleting in made-up namespaces leaves the file as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_that_writes_no_record_adds_no_space() -> nadb_core::Result<()> {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("ghost.db");
    let backend = SqliteBackend::open(&path).await?;
    let index = SqliteIndex::open(dir.path().join("index.db"))?;
    for i in 0..5 {
        let mut batch = Batch::new(Space::new("ghost", &format!("ns{i}"))?);
        batch.delete("k");
        backend.apply(&batch).await?;
        index.update(&batch).await?;
    }
    let mut checked = Batch::new(Space::new("ghost", "checked")?);
    checked.check("k", nadb_core::Expect::Version(1));
    assert!(matches!(
        backend.apply(&checked).await,
        Err(nadb_core::Error::Conflict { .. })
    ));
    let mut batch = Batch::new(Space::new("real", "ns")?);
    batch.put("k", record("v", 1, 1000, &[]));
    backend.apply(&batch).await?;
    index.update(&batch).await?;
    backend.close().await?;
    let spaces = |file: &str, table: &str| -> Vec<String> {
        let c = rusqlite::Connection::open(dir.path().join(file)).expect("open by hand");
        c.prepare(&format!("SELECT db || '/' || ns FROM {table} ORDER BY id"))
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .expect("spaces")
    };
    assert_eq!(spaces("ghost.db", "nadb_spaces"), ["real/ns"]);
    assert_eq!(spaces("index.db", "nadb_index_spaces"), ["real/ns"]);
    Ok(())
}
