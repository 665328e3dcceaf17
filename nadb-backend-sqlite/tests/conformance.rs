//! The conformance suite on the SQLite backend: a fresh database file per case, reopened by
//! the factory for the persistence case.

use std::sync::Arc;

nadb_testkit::conformance!(sqlite, {
    let dir = Arc::new(tempfile::tempdir().expect("a temporary directory"));
    move || {
        let dir = dir.clone();
        async move { nadb_backend_sqlite::SqliteBackend::open(dir.path().join("store.db")).await }
    }
});
