//! The conformance suite on the filesystem backend paired with a `SqliteIndex`: tags, expiry
//! and counts answered by SQLite, records stored by the fs log.

use std::sync::Arc;

fn index() -> Arc<dyn nadb_core::MetadataIndex> {
    Arc::new(nadb_backend_sqlite::SqliteIndex::in_memory().expect("an in-memory SqliteIndex"))
}

nadb_testkit::conformance!(
    fs_sqlite_index,
    {
        let dir = Arc::new(tempfile::tempdir().expect("a temporary directory"));
        move || {
            let dir = dir.clone();
            async move { nadb_backend_fs::FsBackend::open(dir.path()).await }
        }
    },
    index = index
);
