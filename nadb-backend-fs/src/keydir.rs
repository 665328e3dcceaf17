//! The keydir: where the newest frame of every live key is, with its metadata, per space.
//!
//! Point lookups go through a hash map from key to a slot of an entry table; the map's
//! buckets stay small, so growing it to millions of keys moves little memory. Ordered scans
//! go through a sorted key set that is brought up to date lazily: new keys wait in a list
//! and are sorted in one go by the next scan (a bulk load costs one sort, not a million
//! ordered inserts).

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
    /// Key → index into `slots`.
    map: FastMap<Arc<str>, usize>,
    /// Entries; `None` marks a free slot, listed in `free`.
    slots: Vec<Option<Entry>>,
    free: Vec<usize>,
    /// Sorted keys. Every key in it is in `map`; a key of `map` is here or in `unsorted`.
    order: BTreeSet<Arc<str>>,
    /// Keys added since `order` was last sorted, in any order; may hold removed keys and
    /// repeats, which sorting drops.
    unsorted: Vec<Arc<str>>,
}

impl SpaceKeys {
    fn get(&self, key: &str) -> Option<&Entry> {
        self.slots[*self.map.get(key)?].as_ref()
    }

    fn get_mut(&mut self, key: &str) -> Option<&mut Entry> {
        self.slots[*self.map.get(key)?].as_mut()
    }

    fn entries(&self) -> impl Iterator<Item = (&Arc<str>, &Entry)> {
        self.map
            .iter()
            .filter_map(|(k, &i)| self.slots[i].as_ref().map(|e| (k, e)))
    }

    /// Moves `unsorted` into `order`.
    fn sort(&mut self) {
        if self.unsorted.is_empty() {
            return;
        }
        let mut new = std::mem::take(&mut self.unsorted);
        new.sort_unstable();
        new.dedup();
        new.retain(|k| self.map.contains_key(k));
        if new.len() >= self.order.len() / 4 {
            // Many new keys: one merge and a bulk build beat that many ordered inserts.
            let old = std::mem::take(&mut self.order);
            let mut merged = Vec::with_capacity(old.len() + new.len());
            let mut a = old.into_iter().peekable();
            let mut b = new.into_iter().peekable();
            loop {
                let next = match (a.peek(), b.peek()) {
                    (Some(x), Some(y)) if x == y => {
                        b.next();
                        a.next()
                    }
                    (Some(x), Some(y)) if x < y => a.next(),
                    (Some(_), None) => a.next(),
                    (_, Some(_)) => b.next(),
                    (None, None) => break,
                };
                merged.extend(next);
            }
            self.order = merged.into_iter().collect();
        } else {
            self.order.extend(new);
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Keydir {
    spaces: FastMap<Space, SpaceKeys>,
}

impl Keydir {
    /// Makes room for `n` more keys in `space`.
    pub(crate) fn reserve(&mut self, space: &Space, n: usize) {
        let s = self.spaces.entry(space.clone()).or_default();
        s.map.reserve(n);
        s.slots.reserve(n);
    }

    pub(crate) fn get(&self, space: &Space, key: &str) -> Option<&Entry> {
        self.spaces.get(space)?.get(key)
    }

    /// Points `key` at a new entry; returns the entry it replaced.
    pub(crate) fn put(&mut self, space: &Space, key: &str, entry: Entry) -> Option<Entry> {
        let s = match self.spaces.get_mut(space) {
            Some(s) => s,
            None => self.spaces.entry(space.clone()).or_default(),
        };
        if let Some(e) = s.get_mut(key) {
            return Some(std::mem::replace(e, entry));
        }
        let slot = match s.free.pop() {
            Some(i) => {
                s.slots[i] = Some(entry);
                i
            }
            None => {
                s.slots.push(Some(entry));
                s.slots.len() - 1
            }
        };
        let k: Arc<str> = Arc::from(key);
        s.map.insert(k.clone(), slot);
        s.unsorted.push(k);
        // Removed keys linger in `unsorted` until a sort; sorting now and then bounds them.
        if s.unsorted.len() > 1024 && s.unsorted.len() > 2 * s.map.len() {
            s.sort();
        }
        None
    }

    /// Forgets `key`; returns the entry it had.
    pub(crate) fn remove(&mut self, space: &Space, key: &str) -> Option<Entry> {
        let s = self.spaces.get_mut(space)?;
        let slot = s.map.remove(key)?;
        let e = s.slots[slot].take();
        s.free.push(slot);
        s.order.remove(key);
        if s.map.is_empty() {
            self.spaces.remove(space);
        }
        e
    }

    /// Whether [`Keydir::scan`] of `space` needs [`Keydir::sort`] first.
    pub(crate) fn needs_sort(&self, space: &Space) -> bool {
        self.spaces
            .get(space)
            .is_some_and(|s| !s.unsorted.is_empty())
    }

    /// Brings the sorted key set of `space` up to date.
    pub(crate) fn sort(&mut self, space: &Space) {
        if let Some(s) = self.spaces.get_mut(space) {
            s.sort();
        }
    }

    /// Up to `limit` keys of `space` with `prefix`, after `after`, in byte order. Keys added
    /// since the last [`Keydir::sort`] are missed: see [`Keydir::needs_sort`].
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
            .filter_map(|k| s.get(k).map(|e| (k.to_string(), e.meta.clone())))
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
            .map(|(space, s)| (space, s.entries().map(|(k, e)| (&**k, &e.meta))))
    }

    /// Live frame bytes per segment.
    pub(crate) fn live_bytes(&self) -> BTreeMap<u64, u64> {
        let mut out = BTreeMap::new();
        for s in self.spaces.values() {
            for e in s.slots.iter().flatten() {
                *out.entry(e.seg).or_default() += u64::from(e.len);
            }
        }
        out
    }

    /// Every entry stored in one of `segs`, as (space, key, entry).
    pub(crate) fn entries_in(&self, segs: &BTreeSet<u64>) -> Vec<(Space, String, Entry)> {
        let mut out = Vec::new();
        for (space, s) in &self.spaces {
            for (k, e) in s.entries() {
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

#[cfg(test)]
mod tests {
    use super::*;
    use nadb_core::Timestamp;
    use proptest::prelude::*;

    fn entry(offset: u64) -> Entry {
        Entry {
            seg: 1,
            offset,
            len: 1,
            meta: Meta::new(Timestamp::EPOCH, offset),
        }
    }

    proptest! {
        /// Puts, removes and scans in any interleaving answer as a sorted map does, however
        /// the lazily sorted key set stands when the scan comes.
        #[test]
        fn keydir_matches_a_sorted_map(ops in proptest::collection::vec((0u8..4, 0u16..64), 1..400)) {
            let space = Space::default();
            let mut kd = Keydir::default();
            let mut model: BTreeMap<String, u64> = BTreeMap::new();
            for (i, (op, k)) in ops.into_iter().enumerate() {
                let key = format!("k{k:03}");
                match op {
                    0 | 1 => {
                        let old = kd.put(&space, &key, entry(i as u64)).map(|e| e.offset);
                        prop_assert_eq!(old, model.insert(key.clone(), i as u64));
                    }
                    2 => {
                        let old = kd.remove(&space, &key).map(|e| e.offset);
                        prop_assert_eq!(old, model.remove(&key));
                    }
                    _ => {
                        kd.sort(&space);
                        prop_assert!(!kd.needs_sort(&space));
                        let prefix = if k % 2 == 0 { "" } else { "k0" };
                        let got: Vec<(String, u64)> = kd
                            .scan(&space, prefix, None, usize::MAX)
                            .into_iter()
                            .map(|(k, m)| (k, m.version))
                            .collect();
                        let want: Vec<(String, u64)> = model
                            .iter()
                            .filter(|(k, _)| k.starts_with(prefix))
                            .map(|(k, v)| (k.clone(), *v))
                            .collect();
                        prop_assert_eq!(got, want);
                    }
                }
                prop_assert_eq!(kd.get(&space, &key).map(|e| e.offset), model.get(&key).copied());
            }
        }
    }

    #[test]
    fn keys_removed_without_a_scan_do_not_pile_up() {
        let space = Space::default();
        let mut kd = Keydir::default();
        kd.put(&space, "anchor", entry(0));
        for i in 0..100_000u64 {
            let key = format!("churn-{i}");
            kd.put(&space, &key, entry(i));
            kd.remove(&space, &key);
        }
        let s = &kd.spaces[&space];
        assert!(
            s.unsorted.len() <= 1025,
            "{} keys waiting",
            s.unsorted.len()
        );
        assert!(s.slots.len() <= 2, "{} slots", s.slots.len());
    }
}
