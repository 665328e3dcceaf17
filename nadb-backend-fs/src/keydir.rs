//! The keydir: where the newest frame of every live key is, with its metadata, per space.
//! Each space's keys live in a [`KeyMap`]: point lookups by hash, scans in key order once its
//! lazily sorted key set is brought up to date.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use nadb_core::{KeyMap, Meta, Space};

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
pub(crate) struct Keydir {
    spaces: FastMap<Space, KeyMap<Entry>>,
}

impl Keydir {
    /// Makes room for `n` more keys in `space`.
    pub(crate) fn reserve(&mut self, space: &Space, n: usize) {
        self.spaces.entry(space.clone()).or_default().reserve(n);
    }

    pub(crate) fn get(&self, space: &Space, key: &str) -> Option<&Entry> {
        self.spaces.get(space)?.get(key)
    }

    /// Points `key` at a new entry; returns the entry it replaced.
    pub(crate) fn put(&mut self, space: &Space, key: &str, entry: Entry) -> Option<Entry> {
        match self.spaces.get_mut(space) {
            Some(s) => s.insert(key, entry),
            None => self
                .spaces
                .entry(space.clone())
                .or_default()
                .insert(key, entry),
        }
    }

    /// Forgets `key`; returns the entry it had.
    pub(crate) fn remove(&mut self, space: &Space, key: &str) -> Option<Entry> {
        let s = self.spaces.get_mut(space)?;
        let e = s.remove(key)?;
        if s.is_empty() {
            self.spaces.remove(space);
        }
        Some(e)
    }

    /// Whether [`Keydir::scan`] of `space` needs [`Keydir::sort`] first.
    pub(crate) fn needs_sort(&self, space: &Space) -> bool {
        self.spaces.get(space).is_some_and(|s| s.needs_sort())
    }

    /// Brings the sorted key set of `space` up to date.
    pub(crate) fn sort(&mut self, space: &Space) {
        if let Some(s) = self.spaces.get_mut(space) {
            s.sort();
        }
    }

    /// Up to `limit` keys of `space` with `prefix`, after `after`, in byte order; nothing
    /// while the space [`Keydir::needs_sort`].
    pub(crate) fn scan(
        &self,
        space: &Space,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Vec<(String, Meta)> {
        self.spaces
            .get(space)
            .and_then(|s| s.range(prefix, after))
            .map(|keys| {
                keys.take(limit)
                    .map(|(k, e)| (k.to_string(), e.meta.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every space holding a key, sorted.
    pub(crate) fn space_names(&self) -> Vec<Space> {
        let mut out: Vec<Space> = self
            .spaces
            .iter()
            .filter(|(_, s)| !s.is_empty())
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
            .map(|(space, s)| (space, s.iter().map(|(k, e)| (k, &e.meta))))
    }

    /// Live frame bytes per segment.
    pub(crate) fn live_bytes(&self) -> BTreeMap<u64, u64> {
        let mut out = BTreeMap::new();
        for s in self.spaces.values() {
            for e in s.values() {
                *out.entry(e.seg).or_default() += u64::from(e.len);
            }
        }
        out
    }

    /// Every entry stored in one of `segs`, as (space, key, entry).
    pub(crate) fn entries_in(&self, segs: &BTreeSet<u64>) -> Vec<(Space, String, Entry)> {
        let mut out = Vec::new();
        for (space, s) in &self.spaces {
            for (k, e) in s.iter() {
                if segs.contains(&e.seg) {
                    out.push((space.clone(), k.to_string(), e.clone()));
                }
            }
        }
        out
    }

    /// Repoints `key` to `to` if it is still at `from` (segment, offset).
    pub(crate) fn relocate(&mut self, space: &Space, key: &str, from: (u64, u64), to: (u64, u64)) {
        if let Some(e) = self.spaces.get_mut(space).and_then(|s| s.get_mut(key))
            && (e.seg, e.offset) == from
        {
            e.seg = to.0;
            e.offset = to.1;
        }
    }
}
