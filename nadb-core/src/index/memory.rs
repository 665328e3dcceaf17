//! The in-memory metadata index: per space, tag → key sets and an expiry-ordered set.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::RwLock;

use super::{ExpiredKey, IndexedKey, MetadataIndex, SpaceCount, TagMode};
use crate::backend::{Batch, Op};
use crate::clock::Timestamp;
use crate::error::Result;
use crate::record::Meta;
use crate::space::Space;
use crate::tags::Tags;

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

#[derive(Debug)]
struct Entry {
    tags: Tags,
    expires_at: Option<Timestamp>,
    version: u64,
    stored_len: u64,
}

/// What a key held before a write, as the caller knows it.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Prior {
    /// The index looks it up in its own entries (it keeps every key).
    Unknown,
    /// No record.
    Absent,
    /// A record of this stored size.
    Present(u64),
}

#[derive(Debug, Default)]
pub(crate) struct SpaceIndex {
    /// Every key; or, in a sparse index, only keys with tags or an expiry (the owner keeps
    /// the rest and says what a key held when it writes it).
    entries: FastMap<Arc<str>, Entry>,
    by_tag: FastMap<String, BTreeSet<Arc<str>>>,
    by_expiry: BTreeSet<(Timestamp, Arc<str>)>,
    keys: u64,
    stored_bytes: u64,
    sparse: bool,
}

impl SpaceIndex {
    pub(crate) fn remove(&mut self, key: &str, prior: Prior) {
        let removed = self.entries.remove_entry(key);
        if let Some((k, e)) = &removed {
            for t in e.tags.iter() {
                if let Some(set) = self.by_tag.get_mut(t.as_str()) {
                    set.remove(key);
                    if set.is_empty() {
                        self.by_tag.remove(t.as_str());
                    }
                }
            }
            if let Some(at) = e.expires_at {
                self.by_expiry.remove(&(at, k.clone()));
            }
        }
        let old_len = match prior {
            Prior::Unknown => removed.map(|(_, e)| e.stored_len),
            Prior::Absent => None,
            Prior::Present(n) => Some(n),
        };
        // Saturating: a sparse index's owner states the priors, and a wrong one must not panic.
        if let Some(n) = old_len {
            self.keys = self.keys.saturating_sub(1);
            self.stored_bytes = self.stored_bytes.saturating_sub(n);
        }
    }

    pub(crate) fn put(&mut self, key: &str, meta: &Meta, prior: Prior) {
        self.remove(key, prior);
        self.add(key, meta);
    }

    /// Adds a key the index does not hold.
    fn add(&mut self, key: &str, meta: &Meta) {
        self.keys += 1;
        self.stored_bytes += meta.stored_len;
        if self.sparse && meta.tags.is_empty() && meta.expires_at.is_none() {
            return;
        }
        let k: Arc<str> = Arc::from(key);
        for t in meta.tags.iter() {
            self.by_tag.entry(t.clone()).or_default().insert(k.clone());
        }
        if let Some(at) = meta.expires_at {
            self.by_expiry.insert((at, k.clone()));
        }
        self.entries.insert(
            k,
            Entry {
                tags: meta.tags.clone(),
                expires_at: meta.expires_at,
                version: meta.version,
                stored_len: meta.stored_len,
            },
        );
    }

    fn live(&self, key: &str, now: Timestamp) -> Option<&Entry> {
        self.entries
            .get(key)
            .filter(|e| e.expires_at.is_none_or(|at| at > now))
    }

    fn query(
        &self,
        tags: &[String],
        mode: TagMode,
        now: Timestamp,
        after: Option<&str>,
        limit: usize,
    ) -> Vec<IndexedKey> {
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        let sets: Vec<Option<&BTreeSet<Arc<str>>>> =
            tags.iter().map(|t| self.by_tag.get(t.as_str())).collect();
        let hit = |k: &Arc<str>| {
            self.live(k, now).map(|e| IndexedKey {
                key: k.to_string(),
                version: e.version,
            })
        };
        match mode {
            TagMode::All => {
                let Some(sets) = sets.into_iter().collect::<Option<Vec<_>>>() else {
                    return Vec::new();
                };
                let Some(smallest) = sets.iter().min_by_key(|s| s.len()) else {
                    return Vec::new();
                };
                smallest
                    .range::<str, _>((lower, Bound::Unbounded))
                    .filter(|k| sets.iter().all(|s| s.contains(&***k)))
                    .filter_map(hit)
                    .take(limit)
                    .collect()
            }
            TagMode::Any => {
                // Merge the first `limit` live keys of each set; the union's first `limit`
                // keys are among them.
                let mut merged: BTreeSet<&Arc<str>> = BTreeSet::new();
                for set in sets.into_iter().flatten() {
                    merged.extend(
                        set.range::<str, _>((lower, Bound::Unbounded))
                            .filter(|k| self.live(k, now).is_some())
                            .take(limit),
                    );
                }
                merged.into_iter().filter_map(hit).take(limit).collect()
            }
        }
    }

    fn expired_count(&self, now: Timestamp) -> (u64, u64) {
        self.by_expiry
            .iter()
            .take_while(|(at, _)| *at <= now)
            .filter_map(|(_, k)| self.entries.get(k))
            .fold((0, 0), |(n, b), e| (n + 1, b + e.stored_len))
    }
}

/// State of a [`MemoryIndex`] (every key) or a [`SparseIndex`](super::SparseIndex).
#[derive(Debug, Default)]
pub(crate) struct IndexState {
    spaces: FastMap<Space, SpaceIndex>,
    sparse: bool,
}

impl IndexState {
    /// An index that keeps entries only for keys with tags or an expiry: its owner holds
    /// every record already, and passes each write's [`Prior`].
    pub(crate) fn sparse() -> IndexState {
        IndexState {
            spaces: FastMap::default(),
            sparse: true,
        }
    }

    pub(crate) fn apply(&mut self, batch: &Batch) {
        let space = self.space_mut(&batch.space);
        for op in &batch.ops {
            match op {
                Op::Put { key, record } => space.put(key, &record.meta, Prior::Unknown),
                Op::Delete { key } => space.remove(key, Prior::Unknown),
            }
        }
        self.prune(&batch.space);
    }

    /// The index of `space`, created empty if need be; [`IndexState::prune`] it afterwards.
    pub(crate) fn space_mut(&mut self, space: &Space) -> &mut SpaceIndex {
        let sparse = self.sparse;
        self.spaces
            .entry(space.clone())
            .or_insert_with(|| SpaceIndex {
                sparse,
                ..SpaceIndex::default()
            })
    }

    /// Drops the index of `space` if it holds no key.
    pub(crate) fn prune(&mut self, space: &Space) {
        if self.spaces.get(space).is_some_and(|s| s.keys == 0) {
            self.spaces.remove(space);
        }
    }

    pub(crate) fn rebuild(&mut self, space: &Space, entries: Vec<(String, Meta)>) {
        // A scan of a third-party backend might repeat a key: each is checked.
        self.load(space, entries.iter().map(|(k, m)| (k.as_str(), m)), false);
    }

    /// Replaces the index of `space` with `entries`; `unique`: the caller knows no key
    /// repeats, so none is looked up before it is added.
    pub(crate) fn load<'a>(
        &mut self,
        space: &Space,
        entries: impl IntoIterator<Item = (&'a str, &'a Meta)>,
        unique: bool,
    ) {
        let entries = entries.into_iter();
        let mut idx = SpaceIndex {
            sparse: self.sparse,
            ..SpaceIndex::default()
        };
        if !self.sparse {
            idx.entries.reserve(entries.size_hint().0);
        }
        for (k, m) in entries {
            if unique {
                idx.add(k, m);
            } else {
                idx.put(k, m, Prior::Unknown);
            }
        }
        if idx.keys == 0 {
            self.spaces.remove(space);
        } else {
            self.spaces.insert(space.clone(), idx);
        }
    }

    pub(crate) fn query(
        &self,
        space: &Space,
        tags: &[String],
        mode: TagMode,
        now: Timestamp,
        after: Option<&str>,
        limit: usize,
    ) -> Vec<IndexedKey> {
        self.spaces
            .get(space)
            .map(|s| s.query(tags, mode, now, after, limit))
            .unwrap_or_default()
    }

    pub(crate) fn tag_counts(&self, space: &Space, now: Timestamp) -> BTreeMap<String, u64> {
        let Some(s) = self.spaces.get(space) else {
            return BTreeMap::new();
        };
        s.by_tag
            .iter()
            .filter_map(|(tag, keys)| {
                let n = keys.iter().filter(|k| s.live(k, now).is_some()).count() as u64;
                (n > 0).then(|| (tag.clone(), n))
            })
            .collect()
    }

    pub(crate) fn expired(&self, now: Timestamp, limit: usize) -> Vec<ExpiredKey> {
        let mut out = Vec::new();
        for (space, s) in &self.spaces {
            for (at, k) in &s.by_expiry {
                if *at > now || out.len() >= limit {
                    break;
                }
                if let Some(e) = s.entries.get(k) {
                    out.push(ExpiredKey {
                        space: space.clone(),
                        key: k.to_string(),
                        version: e.version,
                    });
                }
            }
        }
        out
    }

    pub(crate) fn count(&self, space: &Space, now: Timestamp) -> SpaceCount {
        let Some(s) = self.spaces.get(space) else {
            return SpaceCount::default();
        };
        let (dead_keys, dead_bytes) = s.expired_count(now);
        SpaceCount {
            keys: s.keys.saturating_sub(dead_keys),
            stored_bytes: s.stored_bytes.saturating_sub(dead_bytes),
        }
    }
}

/// A [`MetadataIndex`] kept in memory; the store's default for backends without their own.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use nadb_core::{Batch, MemoryIndex, MetadataIndex, Meta, Record, Space, TagMode, Tags, Timestamp};
/// let idx = MemoryIndex::new();
/// let s = Space::default();
/// let mut b = Batch::new(s.clone());
/// let meta = Meta { tags: Tags::new(["red"])?, ..Meta::new(Timestamp::EPOCH, 1) };
/// b.put("apple", Record::new(bytes::Bytes::new(), meta));
/// idx.update(&b).await?;
/// let hits = idx.query(&s, &["red".into()], TagMode::All, Timestamp::EPOCH, None, 10).await?;
/// assert_eq!(hits[0].key, "apple");
/// # Ok::<(), nadb_core::Error>(()) }).unwrap();
/// ```
#[derive(Debug, Default)]
pub struct MemoryIndex(RwLock<IndexState>);

impl MemoryIndex {
    /// An empty index.
    pub fn new() -> MemoryIndex {
        MemoryIndex::default()
    }
}

#[async_trait]
impl MetadataIndex for MemoryIndex {
    async fn update(&self, batch: &Batch) -> Result<()> {
        self.0.write().apply(batch);
        Ok(())
    }

    async fn rebuild(&self, space: &Space, entries: Vec<(String, Meta)>) -> Result<()> {
        self.0.write().rebuild(space, entries);
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
