//! # nadb
//!
//! One async key-value [`Store`] API — TTL, tags, zstd compression, conditional writes,
//! metrics — over interchangeable backends, chosen by URL.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use nadb::{SetOptions, TagMode};
//! use std::time::Duration;
//!
//! # let dir = tempfile::tempdir().unwrap();
//! # let url = format!("fs://{}", dir.path().display());
//! let store = nadb::open(&url).await?; // e.g. "fs://./nadb-data"
//! store.set_with("user:1", "ada", &SetOptions::new().tags(["user"]).ttl(Duration::from_secs(3600))).await?;
//! assert_eq!(store.get("user:1").await?.as_deref(), Some(&b"ada"[..]));
//! assert_eq!(store.query_by_tags(&["user"], TagMode::All, None, 10).await?.items, ["user:1"]);
//! store.close().await?;
//! # Ok::<(), nadb::Error>(()) }).unwrap();
//! ```
//!
//! ## Backends
//!
//! A backend is picked by the URL's scheme; [`schemes`] lists those linked into the binary.
//!
//! | scheme | feature | what |
//! |---|---|---|
//! | `fs://PATH` | `fs` (default) | crash-safe log-structured files in a directory: [`fs`] |
//! | `sqlite://PATH`, `sqlite://:memory:` | `sqlite` (default) | one SQLite file many processes can share: [`sqlite`] |
//! | `redis://HOST:PORT/DB`, `redis+cluster://H1:P1,H2:P2` | `redis` (default) | a Redis server or Cluster, one slot per space: [`redis`] |
//! | `memory://` | always | in-process, not persistent — the reference backend |
//!
//! Any type implementing [`StorageBackend`] works too: pass it to [`Store::builder`], and prove
//! it with `nadb_testkit::conformance!`.
//!
//! ## Synchronous callers
//!
//! [`blocking::Store`] offers the same methods without `async`.
//!
//! ## Spaces
//!
//! Every record lives in a [`Space`] (database + namespace). [`open`] starts in
//! `default/default`; [`Store::with_space`] gives a handle on another space of the same store.
//!
//! ## Whole-store tools
//!
//! [`ndjson`] exports and imports every space as NDJSON, [`migrate`] copies a store into
//! another and checks the copy, [`verify`] checks every record and the index. The `nadb`
//! command-line tool (feature `cli`, logic in `cli`) runs them and every single-key operation.
#![deny(missing_docs)]

#[cfg(feature = "bench")]
pub mod bench;
pub mod blocking;
#[cfg(feature = "cli")]
pub mod cli;
mod load;
pub mod migrate;
pub mod ndjson;
pub mod progress;
pub mod verify;
mod walk;

pub use nadb_core::*;

/// The filesystem backend (feature `fs`). Linking it here registers `fs://`.
#[cfg(feature = "fs")]
pub use nadb_backend_fs as fs;

/// The SQLite backend (feature `sqlite`). Linking it here registers `sqlite://`.
#[cfg(feature = "sqlite")]
pub use nadb_backend_sqlite as sqlite;

/// The Redis backend (feature `redis`). Linking it here registers `redis://` and
/// `redis+cluster://`.
#[cfg(feature = "redis")]
pub use nadb_backend_redis as redis;

/// The URL of the embedded default store: a directory `nadb-data` under the working directory
/// (or `memory://` when the `fs` feature is off).
#[cfg(feature = "fs")]
pub const DEFAULT_URL: &str = "fs://./nadb-data";
/// The URL of the embedded default store (`memory://`: the `fs` feature is off).
#[cfg(not(feature = "fs"))]
pub const DEFAULT_URL: &str = "memory://";

/// Opens the store a URL names, with default settings, in space `default/default`.
///
/// Malformed URLs are [`Error::InvalidUrl`]; unknown schemes are [`Error::UnknownScheme`],
/// which lists the schemes this binary knows.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let err = nadb::open("nosuch://x").await.unwrap_err();
/// assert!(matches!(err, nadb::Error::UnknownScheme { .. }));
/// # Ok::<(), nadb::Error>(()) }).unwrap();
/// ```
pub async fn open(url: &str) -> Result<Store> {
    Store::open(url).await
}
