//! The conformance suite on the filesystem backend: each case gets a fresh directory, which
//! the factory reopens for the persistence case.

use std::sync::Arc;

nadb_testkit::conformance!(fs, {
    let dir = Arc::new(tempfile::tempdir().expect("a temporary directory"));
    move || {
        let dir = dir.clone();
        async move { nadb_backend_fs::FsBackend::open(dir.path()).await }
    }
});
