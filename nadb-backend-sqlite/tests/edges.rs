//! Inputs at the edges of what SQLite takes: paths that look like URIs, times past its integer
//! range, and reads racing an atomic batch.

use std::sync::Arc;

use nadb_backend_sqlite::{SqliteBackend, SqliteIndex};
use nadb_core::{
    Batch, Meta, MetadataIndex, Record, Space, StorageBackend, TagMode, Tags, Timestamp,
};

fn record(value: &str, version: u64) -> Record {
    let mut meta = Meta::new(Timestamp::from_millis(1_700_000_000_000), version);
    meta.value_len = value.len() as u64;
    meta.stored_len = value.len() as u64;
    Record::new(value.to_string().into(), meta)
}

/// A path that starts with `file:` names a file; it is not read as a URI, whose parameters
/// (`nolock=1`, `immutable=1`, `mode=memory`) would quietly change what the backend does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_uri_is_a_path_not_a_uri() -> nadb_core::Result<()> {
    let dir = tempfile::tempdir().expect("dir");
    let target = dir.path().join("a.db");
    let uri = format!("file:{}?nolock=1", target.display());
    // As a relative path its directories do not exist, so opening fails; read as a URI it
    // would open (and create) `target` with file locking off.
    let opened = SqliteBackend::open(&uri).await;
    assert!(opened.is_err());
    assert!(!target.exists(), "the path was read as a URI");
    Ok(())
}

/// A time past the largest SQLite integer (here `Timestamp` at its maximum, reachable through
/// the backend API) is never "expired": it is stored as the largest integer, not wrapped to a
/// negative number.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn times_past_the_integer_range_are_not_in_the_past() -> nadb_core::Result<()> {
    let dir = tempfile::tempdir().expect("dir");
    let backend = SqliteBackend::open(dir.path().join("t.db")).await?;
    let file_index = Arc::new(SqliteIndex::open(dir.path().join("i.db"))?);
    let space = Space::default();
    let mut r = record("v", 7);
    r.meta.expires_at = Some(Timestamp::from_millis(u64::MAX));
    r.meta.tags = Tags::new(["t"])?;
    let mut batch = Batch::new(space.clone());
    batch.put("k", r);
    backend.apply(&batch).await?;
    file_index.update(&batch).await?;
    let native = backend.native_index().expect("a native index");
    let now = Timestamp::from_millis(1_800_000_000_000);
    for index in [native, file_index as Arc<dyn MetadataIndex>] {
        assert!(index.expired(now, 10).await?.is_empty());
        assert_eq!(index.count(&space, now).await?.keys, 1);
        let tags = ["t".to_string()];
        let found = index
            .query(&space, &tags, TagMode::All, now, None, 10)
            .await?;
        assert_eq!(found.len(), 1);
        assert_eq!(index.tag_counts(&space, now).await?.get("t"), Some(&1));
    }
    let stored = backend.get(&space, "k").await?.expect("stored");
    assert!(!stored.meta.is_expired(now));
    backend.close().await
}

/// `get_many` sees the keys of one batch as a single commit left them: never one key from
/// before a batch and another from after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_many_never_mixes_two_commits() -> nadb_core::Result<()> {
    let dir = tempfile::tempdir().expect("dir");
    let backend = Arc::new(SqliteBackend::open(dir.path().join("m.db")).await?);
    let space = Space::default();
    let keys: Vec<String> = (0..8).map(|i| format!("k{i}")).collect();
    let write = |round: u64| {
        let mut batch = Batch::new(space.clone());
        for k in &keys {
            batch.put(k.clone(), record(&round.to_string(), round + 1));
        }
        batch
    };
    backend.apply(&write(0)).await?;
    let writer = {
        let (backend, batches) = (backend.clone(), (1..=300).map(write).collect::<Vec<_>>());
        tokio::spawn(async move {
            for batch in batches {
                backend.apply(&batch).await?;
            }
            Ok::<_, nadb_core::Error>(())
        })
    };
    let mut reads = 0;
    while !writer.is_finished() || reads < 100 {
        let got = backend.get_many(&space, &keys).await?;
        let values: Vec<_> = got
            .iter()
            .map(|r| r.as_ref().map(|r| r.value.clone()))
            .collect();
        assert!(
            values.windows(2).all(|w| w[0] == w[1]),
            "read {reads} mixed commits: {values:?}"
        );
        reads += 1;
    }
    writer.await.expect("writer")?;
    backend.close().await
}
