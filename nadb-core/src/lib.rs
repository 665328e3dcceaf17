//! # nadb-core
//!
//! The core of [nadb](https://docs.rs/nadb): a key-value [`Store`] with TTL, tags,
//! compression, conditional writes and metrics that runs on any [`StorageBackend`].
//!
//! This crate holds the parts every backend shares and never names a backend other than the
//! in-memory reference one:
//!
//! - the two traits: [`StorageBackend`] (records by key — the source of truth) and
//!   [`MetadataIndex`] (tags, expiry, counts — derived, rebuildable);
//! - the types: [`Space`], [`Record`], [`Meta`], [`Tags`], [`Timestamp`], and the one [`Error`];
//! - the [`codec`] (threshold zstd and the record byte format);
//! - the [`Store`] engine;
//! - [`MemoryBackend`] (`memory://`) and the scheme [`registry`].
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use nadb_core::{SetOptions, Store};
//! use std::time::Duration;
//!
//! let store = Store::open("memory://").await?;
//! store.set_with("session:42", "alice", &SetOptions::new().tags(["session"]).ttl(Duration::from_secs(900))).await?;
//! assert_eq!(store.get("session:42").await?.as_deref(), Some(&b"alice"[..]));
//! assert_eq!(store.incr("visits", 1).await?, 1);
//! store.close().await?;
//! # Ok::<(), nadb_core::Error>(()) }).unwrap();
//! ```
#![deny(missing_docs)]

pub mod backend;
pub mod clock;
pub mod codec;
pub mod error;
pub mod index;
pub mod key;
pub mod keymap;
pub mod memory;
pub mod record;
pub mod registry;
pub mod space;
pub mod stats;
pub mod store;
pub mod tags;

pub use backend::{
    BackendExt, BackendInfo, Batch, Capabilities, Check, Expect, Op, StorageBackend,
};
pub use clock::{Clock, MockClock, SystemClock, Timestamp};
pub use codec::Compression;
pub use error::{BoxError, Error, Result};
pub use index::{
    ExpiredKey, IndexedKey, MemoryIndex, MetadataIndex, SpaceCount, SparseIndex, TagMode,
};
pub use keymap::KeyMap;
pub use memory::MemoryBackend;
pub use record::{Codec, Meta, Record};
pub use registry::{open_backend, schemes};
pub use space::Space;
pub use stats::{OpStats, Stats};
pub use store::{
    BufferedFlush, Cas, DeadLetter, DlqSummary, FlushPolicy, IntoBackend, KeyTtl, Page,
    PipelineStats, SetOptions, Store, StoreBuilder, TRANSACTION_ATTEMPTS, Transaction, WriteConfig,
};
pub use tags::Tags;

/// Re-exported so backend crates implement the traits with the same `async-trait` version.
pub use async_trait::async_trait;
/// Re-exported so backend crates register with the same `inventory` version.
pub use inventory;
