//! A file-backed `SqliteIndex` paired with the filesystem backend, across reopening, and
//! rebuilt when it is deleted.

use std::sync::Arc;

use nadb_backend_fs::FsBackend;
use nadb_backend_sqlite::SqliteIndex;
use nadb_core::{SetOptions, Store, TagMode};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_index_survives_reopen_and_is_rebuilt_when_lost() -> nadb_core::Result<()> {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    let index_file = dir.path().join("index.db");
    let open = || async {
        Store::builder(FsBackend::open(&data).await?)
            .index(Arc::new(SqliteIndex::open(&index_file)?))
            .build()
            .await
    };
    let store = open().await?;
    for i in 0..50 {
        let tag = if i % 2 == 0 { "even" } else { "odd" };
        store
            .set_with(&format!("k{i:02}"), "v", &SetOptions::new().tags([tag]))
            .await?;
    }
    store.close().await?;

    let store = open().await?;
    assert_eq!(
        store
            .query_by_tags(&["even"], TagMode::All, None, 100)
            .await?
            .items
            .len(),
        25
    );
    store.close().await?;

    std::fs::remove_file(&index_file).expect("delete the index");
    let store = open().await?;
    assert_eq!(
        store.list_tags().await?["odd"],
        25,
        "the index was not rebuilt from the data"
    );
    assert_eq!(store.len().await?, 50);
    store.close().await
}
