//! The keydir: where the newest frame of every live key is, with its metadata, per space.
//! Point lookups go through a hash map; ordered scans through a sorted key set.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::Arc;

use nadb_core::{Meta, Space};

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Where a key's newest record is.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub(crate) seg: u64,
    pub(crate) offset: u64,
    pub(crate) len: u32,
    pub(crate) meta: Meta,
}

#[derive(Debug, Default)]
struct SpaceKeys {
    map: FastMap<Arc<str>, Entry>,
    order: BTreeSet<Arc<str>>,
}

#[derive(Debug, Default)]
pub(crate) struct Keydir {
    spaces: FastMap<Space, SpaceKeys>,
    /// While replaying at open the sorted key sets are not maintained; `finish_load` builds
    /// them in one pass (sorting once beats a million ordered inserts).
    loading: bool,
}

impl Keydir {
    /// A keydir for replay: see [`Keydir::finish_load`].
    pub(crate) fn loading() -> Keydir {
        Keydir {
            spaces: FastMap::default(),
            loading: true,
        }
    }

    /// Builds the sorted key sets after replay.
    pub(crate) fn finish_load(&mut self) {
        for s in self.spaces.values_mut() {
            let mut keys: Vec<Arc<str>> = s.map.keys().cloned().collect();
            keys.sort_unstable();
            s.order = keys.into_iter().collect();
        }
        self.loading = false;
    }

    /// Makes room for `n` more keys in `space`.
    pub(crate) fn reserve(&mut self, space: &Space, n: usize) {
        self.spaces.entry(space.clone()).or_default().map.reserve(n);
    }

    pub(crate) fn get(&self, space: &Space, key: &str) -> Option<&Entry> {
        self.spaces.get(space)?.map.get(key)
    }

    /// Points `key` at a new entry; returns the entry it replaced.
    pub(crate) fn put(&mut self, space: &Space, key: &str, entry: Entry) -> Option<Entry> {
        let s = self.spaces.entry(space.clone()).or_default();
        match s.map.get_mut(key) {
            Some(e) => Some(std::mem::replace(e, entry)),
            None => {
                let k: Arc<str> = Arc::from(key);
                if !self.loading {
                    s.order.insert(k.clone());
                }
                s.map.insert(k, entry);
                None
            }
        }
    }

    /// Forgets `key`; returns the entry it had.
    pub(crate) fn remove(&mut self, space: &Space, key: &str) -> Option<Entry> {
        let s = self.spaces.get_mut(space)?;
        let e = s.map.remove(key)?;
        if !self.loading {
            s.order.remove(key);
        }
        if s.map.is_empty() {
            self.spaces.remove(space);
        }
        Some(e)
    }

    /// Up to `limit` keys of `space` with `prefix`, after `after`, in byte order.
    pub(crate) fn scan(
        &self,
        space: &Space,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Vec<(String, Meta)> {
        let Some(s) = self.spaces.get(space) else {
            return Vec::new();
        };
        let lower = match after {
            Some(a) if a >= prefix => Bound::Excluded(a),
            _ => Bound::Included(prefix),
        };
        s.order
            .range::<str, _>((lower, Bound::Unbounded))
            .take_while(|k| k.starts_with(prefix))
            .take(limit)
            .filter_map(|k| s.map.get(k).map(|e| (k.to_string(), e.meta.clone())))
            .collect()
    }

    /// Every space holding a key, sorted.
    pub(crate) fn space_names(&self) -> Vec<Space> {
        let mut out: Vec<Space> = self
            .spaces
            .iter()
            .filter(|(_, s)| !s.map.is_empty())
            .map(|(space, _)| space.clone())
            .collect();
        out.sort();
        out
    }

    /// Every space with its keys and metadata (for loading the index).
    pub(crate) fn spaces(
        &self,
    ) -> impl Iterator<Item = (&Space, impl Iterator<Item = (&str, &Meta)>)> {
        self.spaces
            .iter()
            .map(|(space, s)| (space, s.map.iter().map(|(k, e)| (&**k, &e.meta))))
    }

    /// Live frame bytes per segment.
    pub(crate) fn live_bytes(&self) -> BTreeMap<u64, u64> {
        let mut out = BTreeMap::new();
        for s in self.spaces.values() {
            for e in s.map.values() {
                *out.entry(e.seg).or_default() += u64::from(e.len);
            }
        }
        out
    }

    /// Every entry stored in one of `segs`, as (space, key, entry).
    pub(crate) fn entries_in(&self, segs: &BTreeSet<u64>) -> Vec<(Space, String, Entry)> {
        let mut out = Vec::new();
        for (space, s) in &self.spaces {
            for (k, e) in &s.map {
                if segs.contains(&e.seg) {
                    out.push((space.clone(), k.to_string(), e.clone()));
                }
            }
        }
        out
    }

    /// Repoints `key` to `to` if it is still at `from` (segment, offset).
    pub(crate) fn relocate(&mut self, space: &Space, key: &str, from: (u64, u64), to: (u64, u64)) {
        if let Some(e) = self.spaces.get_mut(space).and_then(|s| s.map.get_mut(key))
            && (e.seg, e.offset) == from
        {
            e.seg = to.0;
            e.offset = to.1;
        }
    }
}
