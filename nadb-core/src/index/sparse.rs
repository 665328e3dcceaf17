//! The metadata index of a backend that keeps every key's metadata itself.

use std::collections::BTreeMap;

use async_trait::async_trait;
use parking_lot::RwLock;

use super::{ExpiredKey, IndexState, IndexedKey, MetadataIndex, Prior, SpaceCount, TagMode};
use crate::backend::{Batch, Op};
use crate::clock::Timestamp;
use crate::error::Result;
use crate::record::Meta;
use crate::space::Space;

/// A [`MetadataIndex`] for a backend that already holds every key with its metadata (a
/// keydir, a records map) and serves it as its native index.
///
/// It keeps entries only for keys with tags or an expiry, and counts the others from what
/// its owner says each write replaced, so a plain put costs no second map entry. The owner
/// keeps it current with [`SparseIndex::apply`] and [`SparseIndex::load`]; the
/// [`MetadataIndex::update`] and [`MetadataIndex::rebuild`] a store would call on a derived
/// index do nothing.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use nadb_core::{Batch, Meta, MetadataIndex, Record, Space, SparseIndex, Timestamp};
/// let idx = SparseIndex::new();
/// let s = Space::default();
/// let meta = Meta::new(Timestamp::EPOCH, 1);
/// let value = bytes::Bytes::from_static(b"fruit");
/// let mut b = Batch::new(s.clone());
/// b.put("apple", Record::new(value.clone(), meta.clone()));
/// idx.apply(&b, &[None]); // "apple" held nothing before
/// let mut b = Batch::new(s.clone());
/// b.put("apple", Record::new(value, meta));
/// idx.apply(&b, &[Some(5)]); // it held a record of 5 stored bytes
/// let n = idx.count(&s, Timestamp::EPOCH).await?;
/// assert_eq!((n.keys, n.stored_bytes), (1, 5));
/// # Ok::<(), nadb_core::Error>(()) }).unwrap();
/// ```
#[derive(Debug)]
pub struct SparseIndex(RwLock<IndexState>);

impl Default for SparseIndex {
    fn default() -> Self {
        SparseIndex::new()
    }
}

impl SparseIndex {
    /// An empty index.
    pub fn new() -> SparseIndex {
        SparseIndex(RwLock::new(IndexState::sparse()))
    }

    /// Applies `batch`. `before[i]` is the stored length of the record the key of op `i` held
    /// just before op `i` (after the batch's earlier ops), or `None` when it held none; ops
    /// past the end of `before` count as replacing nothing.
    pub fn apply(&self, batch: &Batch, before: &[Option<u64>]) {
        let mut state = self.0.write();
        let space = state.space_mut(&batch.space);
        for (i, op) in batch.ops.iter().enumerate() {
            let prior = match before.get(i).copied().flatten() {
                Some(n) => Prior::Present(n),
                None => Prior::Absent,
            };
            match op {
                Op::Put { key, record } => space.put(key, &record.meta, prior),
                Op::Delete { key } => space.remove(key, prior),
            }
        }
        state.prune(&batch.space);
    }

    /// Replaces what the index holds for `space` with `entries`, each key once (a repeated
    /// key is not looked up, so it would be counted twice).
    pub fn load<'a>(&self, space: &Space, entries: impl IntoIterator<Item = (&'a str, &'a Meta)>) {
        self.0.write().load(space, entries, true);
    }
}

#[async_trait]
impl MetadataIndex for SparseIndex {
    async fn update(&self, _batch: &Batch) -> Result<()> {
        Ok(())
    }

    async fn rebuild(&self, _space: &Space, _entries: Vec<(String, Meta)>) -> Result<()> {
        Ok(())
    }

    async fn query(
        &self,
        space: &Space,
        tags: &[String],
        mode: TagMode,
        now: Timestamp,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<IndexedKey>> {
        Ok(self.0.read().query(space, tags, mode, now, after, limit))
    }

    async fn tag_counts(&self, space: &Space, now: Timestamp) -> Result<BTreeMap<String, u64>> {
        Ok(self.0.read().tag_counts(space, now))
    }

    async fn expired(&self, now: Timestamp, limit: usize) -> Result<Vec<ExpiredKey>> {
        Ok(self.0.read().expired(now, limit))
    }

    async fn count(&self, space: &Space, now: Timestamp) -> Result<SpaceCount> {
        Ok(self.0.read().count(space, now))
    }
}
