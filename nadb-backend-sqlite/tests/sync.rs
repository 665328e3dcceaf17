//! `sync` must make SQLite write and fsync: it commits a real change under synchronous=FULL.

use nadb_backend_sqlite::SqliteBackend;
use nadb_core::{BackendExt, Meta, Record, Space, StorageBackend, Timestamp};

fn counter(path: &std::path::Path) -> i64 {
    let c = rusqlite::Connection::open(path).expect("open");
    c.query_row("SELECT n FROM nadb_sync", [], |r| r.get(0))
        .expect("read the sync counter")
}

/// A fresh backend in a temporary directory, and its sync counter now.
async fn opened() -> nadb_core::Result<(tempfile::TempDir, std::path::PathBuf, SqliteBackend, i64)>
{
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("s.db");
    let b = SqliteBackend::open(&path).await?;
    let before = counter(&path);
    Ok((dir, path, b, before))
}

/// The one-byte record `v`.
fn record() -> Record {
    let mut meta = Meta::new(Timestamp::EPOCH, 1);
    meta.value_len = 1;
    meta.stored_len = 1;
    Record::new("v".into(), meta)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sync_commits_a_change() -> nadb_core::Result<()> {
    let (_dir, path, b, before) = opened().await?;
    b.put(&Space::default(), "k", record()).await?;
    b.sync().await?;
    b.sync().await?;
    assert_eq!(
        counter(&path),
        before + 2,
        "a sync that changes nothing is not fsynced by SQLite"
    );
    b.close().await
}

/// `apply_synced` fsyncs even when its ops change nothing (a delete of a missing key) while
/// earlier commits may be unsynced, as opening leaves them: the commit bumps the sync counter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_synced_commits_a_change_even_for_a_no_op_batch() -> nadb_core::Result<()> {
    let (_dir, path, b, before) = opened().await?;
    let mut batch = nadb_core::Batch::new(Space::default());
    batch.delete("not-there");
    b.apply_synced(&batch).await?;
    assert_eq!(counter(&path), before + 1);
    b.close().await?;
    b.close().await
}

/// A synced batch that SQLite stores without writing a page (the same rows again, as when an
/// uncertain buffered apply is retried durably) still makes its commit write, so the fsync the
/// earlier commit needs happens: counting changed rows is not enough, SQLite counts an
/// identical upsert as a change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_synced_of_an_identical_batch_still_writes() -> nadb_core::Result<()> {
    let (_dir, path, b, _) = opened().await?;
    let wal = path.with_extension("db-wal");
    let wal_len = || std::fs::metadata(&wal).map(|m| m.len()).expect("wal file");
    let mut batch = nadb_core::Batch::new(Space::default());
    batch.put("k", record());
    b.apply(&batch).await?;
    let after_first = (wal_len(), counter(&path));
    b.apply_synced(&batch).await?;
    assert!(
        wal_len() > after_first.0,
        "the re-applied batch committed nothing, so nothing was fsynced"
    );
    assert_eq!(counter(&path), after_first.1 + 1);
    assert!(b.get(&Space::default(), "k").await?.is_some());
    b.close().await
}

/// Durable batches in a row write no sync counter row: each one's commit already fsyncs, and
/// nothing before it is left unsynced. A buffered apply in between, or another connection's
/// commit, brings the counter back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consecutive_synced_batches_skip_the_counter() -> nadb_core::Result<()> {
    let (_dir, path, b, _) = opened().await?;
    let mut batch = nadb_core::Batch::new(Space::default());
    batch.put("k", record());
    b.apply_synced(&batch).await?;
    let first = counter(&path);
    for _ in 0..3 {
        b.apply_synced(&batch).await?;
    }
    assert_eq!(counter(&path), first);
    b.apply(&batch).await?;
    b.apply_synced(&batch).await?;
    assert_eq!(counter(&path), first + 1);
    // So does a commit of another connection, which may not be fsynced.
    let other = rusqlite::Connection::open(&path).expect("open");
    other
        .execute_batch("CREATE TABLE other (x); INSERT INTO other VALUES (1)")
        .expect("write");
    drop(other);
    b.apply_synced(&batch).await?;
    assert_eq!(counter(&path), first + 2);
    b.apply_synced(&batch).await?;
    assert_eq!(counter(&path), first + 2);
    b.close().await
}

#[tokio::test]
async fn an_empty_or_memory_path_is_not_a_file() {
    for bad in ["", ":memory:"] {
        assert!(matches!(
            SqliteBackend::open(bad).await,
            Err(nadb_core::Error::InvalidArgument { .. })
        ));
    }
}
