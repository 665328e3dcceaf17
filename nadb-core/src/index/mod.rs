//! [`MetadataIndex`]: answers what a backend cannot answer by key — keys by tags, tag counts,
//! keys expiring before a time, counts and sizes per space.
//!
//! An index is *derived* state: it can always be rebuilt from [`StorageBackend::scan`]
//! (`crate::StorageBackend::scan`). A backend may keep its own ([`StorageBackend::native_index`],
//! maintained inside `apply`); otherwise the store keeps a [`MemoryIndex`], rebuilt from a
//! scan the first time a space is used and updated after every applied batch.
//!
//! [`StorageBackend::scan`]: crate::StorageBackend::scan
//! [`StorageBackend::native_index`]: crate::StorageBackend::native_index

mod memory;
mod sparse;

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::backend::Batch;
use crate::clock::Timestamp;
use crate::error::Result;
use crate::record::Meta;
use crate::space::Space;

pub use memory::MemoryIndex;
pub(crate) use memory::{IndexState, Prior};
pub use sparse::SparseIndex;

/// How several tags combine in a query.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TagMode {
    /// Keys carrying every one of the tags.
    All,
    /// Keys carrying at least one of the tags.
    Any,
}

/// A key found by a query, with the version of the record the index saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexedKey {
    /// The key.
    pub key: String,
    /// The record's version when indexed.
    pub version: u64,
}

/// A key whose record has expired.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpiredKey {
    /// Its space.
    pub space: Space,
    /// The key.
    pub key: String,
    /// The expired record's version (so a newer write is never swept by mistake).
    pub version: u64,
}

/// Live keys and stored bytes of one space.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpaceCount {
    /// Unexpired keys.
    pub keys: u64,
    /// Stored value bytes of those keys.
    pub stored_bytes: u64,
}

/// A queryable index of record metadata. Every method that answers a question takes `now`
/// and leaves out records expired at that time.
#[async_trait]
pub trait MetadataIndex: Send + Sync + fmt::Debug + 'static {
    /// Records the effect of a batch the backend has applied.
    async fn update(&self, batch: &Batch) -> Result<()>;

    /// Replaces everything known about `space` with `entries` (from a backend scan).
    async fn rebuild(&self, space: &Space, entries: Vec<(String, Meta)>) -> Result<()>;

    /// Keys of `space` with all or any of `tags`, in key order, after `after`, at most `limit`.
    async fn query(
        &self,
        space: &Space,
        tags: &[String],
        mode: TagMode,
        now: Timestamp,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<IndexedKey>>;

    /// Every tag used in `space` with the number of live keys carrying it.
    async fn tag_counts(&self, space: &Space, now: Timestamp) -> Result<BTreeMap<String, u64>>;

    /// Up to `limit` records, in any space, expired at `now`.
    async fn expired(&self, now: Timestamp, limit: usize) -> Result<Vec<ExpiredKey>>;

    /// Live keys and stored bytes of `space`.
    async fn count(&self, space: &Space, now: Timestamp) -> Result<SpaceCount>;
}
