//! [`KeyMap`]: the in-memory key table of a backend that keeps its keys in memory.

use std::collections::BTreeSet;
use std::hash::BuildHasher;
use std::ops::Bound;

use hashbrown::HashTable;
use hashbrown::hash_table::Entry;
use smol_str::SmolStr;

/// The longest key a [`SmolStr`] holds inline: making one of these allocates nothing.
const INLINE_KEY: usize = 23;

/// A map from string keys to values with point lookups by hash and, when made with
/// [`KeyMap::new`], scans in key order.
///
/// Built for key tables that grow to millions of entries (the memory backend's records, the
/// fs backend's keydir, the pending writes):
/// - The hash table holds, per key, 32 bits of its hash and its position in a slot table
///   that holds the key and value: 8-byte buckets, so a table of millions of keys stays
///   small enough for the CPU's caches, growing it moves no key or value and hashes nothing
///   again, and a lookup reads one slot (the stored hash rules out almost every other).
/// - A key of up to 23 bytes is held inline in its slot: adding it allocates nothing.
/// - The sorted key set is brought up to date lazily: new keys wait in a list that
///   [`KeyMap::sort`] sorts in one go, so a bulk load costs one sort rather than an ordered
///   insert per key. [`KeyMap::range`] answers only once the map is sorted.
///
/// ```
/// let mut m = nadb_core::KeyMap::new();
/// m.insert("b", 2);
/// m.insert("a", 1);
/// assert_eq!(m.get("a"), Some(&1));
/// assert!(m.range("", None).is_none()); // "a" and "b" are not sorted yet
/// m.sort();
/// let keys: Vec<&str> = m.range("", None).unwrap().map(|(k, _)| k).collect();
/// assert_eq!(keys, ["a", "b"]);
/// ```
pub struct KeyMap<V> {
    hasher: foldhash::fast::RandomState,
    /// Per key: its hash's low 32 bits and its position in `slots`.
    index: HashTable<(u32, u32)>,
    /// Keys and values; `None` marks a free position, listed in `free`.
    slots: Vec<Option<(SmolStr, V)>>,
    free: Vec<u32>,
    ordered: bool,
    /// Sorted keys. Every key in it is in `index`; a key of `index` is here or in `unsorted`.
    order: BTreeSet<SmolStr>,
    /// Keys added since the last sort, in any order; may hold removed keys and repeats,
    /// which sorting drops.
    unsorted: Vec<SmolStr>,
}

impl<V> Default for KeyMap<V> {
    fn default() -> Self {
        KeyMap::new()
    }
}

impl<V> KeyMap<V> {
    /// An empty map that can be scanned in key order.
    pub fn new() -> KeyMap<V> {
        KeyMap {
            hasher: foldhash::fast::RandomState::default(),
            index: HashTable::new(),
            slots: Vec::new(),
            free: Vec::new(),
            ordered: true,
            order: BTreeSet::new(),
            unsorted: Vec::new(),
        }
    }

    /// An empty map that keeps no key order: [`KeyMap::range`] always answers `None`.
    ///
    /// ```
    /// let mut m = nadb_core::KeyMap::unordered();
    /// m.insert("k", ());
    /// m.sort();
    /// assert!(m.range("", None).is_none());
    /// ```
    pub fn unordered() -> KeyMap<V> {
        KeyMap {
            ordered: false,
            ..KeyMap::new()
        }
    }

    /// Number of keys.
    ///
    /// ```
    /// let mut m = nadb_core::KeyMap::new();
    /// m.insert("k", 1);
    /// assert_eq!(m.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether the map holds no key.
    ///
    /// ```
    /// assert!(nadb_core::KeyMap::<u8>::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Makes room for `n` more keys.
    ///
    /// ```
    /// let mut m = nadb_core::KeyMap::<u8>::new();
    /// m.reserve(1000);
    /// ```
    pub fn reserve(&mut self, n: usize) {
        self.index.reserve(n, |&(h, _)| spread(h));
        self.slots.reserve(n);
    }

    /// The hash of `key` the index keeps.
    #[inline]
    fn hash(&self, key: &str) -> u32 {
        // The low bits: `spread` makes them both the bucket position and the tag.
        self.hasher.hash_one(key) as u32
    }

    /// The slot position of `key`.
    #[inline]
    fn find(&self, key: &str) -> Option<usize> {
        let h = self.hash(key);
        let slots = &self.slots;
        self.index
            .find(spread(h), holds(slots, h, key))
            .map(|&(_, i)| i as usize)
    }

    /// The value of `key`.
    ///
    /// ```
    /// let mut m = nadb_core::KeyMap::new();
    /// m.insert("k", 1);
    /// assert_eq!((m.get("k"), m.get("x")), (Some(&1), None));
    /// ```
    pub fn get(&self, key: &str) -> Option<&V> {
        let i = self.find(key)?;
        self.slots[i].as_ref().map(|(_, v)| v)
    }

    /// The value of `key`, to change in place.
    ///
    /// ```
    /// let mut m = nadb_core::KeyMap::new();
    /// m.insert("k", 1);
    /// *m.get_mut("k").unwrap() += 1;
    /// assert_eq!(m.get("k"), Some(&2));
    /// ```
    pub fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        let i = self.find(key)?;
        self.slots[i].as_mut().map(|(_, v)| v)
    }

    /// Sets the value of `key`; returns the value it replaced. A new key is copied once.
    ///
    /// # Panics
    ///
    /// When `key` is new and the map already holds `u32::MAX` keys (slot positions are 32-bit;
    /// such a map would take hundreds of gigabytes).
    ///
    /// ```
    /// let mut m = nadb_core::KeyMap::new();
    /// assert_eq!(m.insert("k", 1), None);
    /// assert_eq!(m.insert("k", 2), Some(1));
    /// ```
    pub fn insert(&mut self, key: &str, value: V) -> Option<V> {
        if key.len() > INLINE_KEY
            && let Some(v) = self.get_mut(key)
        {
            // A long key is copied only when it is new.
            return Some(std::mem::replace(v, value));
        }
        self.insert_shared(&SmolStr::new(key), value)
    }

    /// [`KeyMap::insert`] for a key the caller already holds as a [`SmolStr`]: a new key is
    /// shared, not copied. One probe of the hash table finds the key or its place.
    pub(crate) fn insert_shared(&mut self, key: &SmolStr, value: V) -> Option<V> {
        let h = self.hash(key);
        let slots = &mut self.slots;
        match self
            .index
            .entry(spread(h), holds(slots, h, key), |&(eh, _)| spread(eh))
        {
            Entry::Occupied(e) => {
                let (_, old) = slots[e.get().1 as usize].as_mut()?;
                return Some(std::mem::replace(old, value));
            }
            Entry::Vacant(e) => {
                let slot = match self.free.pop() {
                    Some(i) => {
                        slots[i as usize] = Some((key.clone(), value));
                        i
                    }
                    None => {
                        let i = u32::try_from(slots.len())
                            .ok()
                            .filter(|&i| i < u32::MAX)
                            .expect("a KeyMap holds at most u32::MAX keys");
                        slots.push(Some((key.clone(), value)));
                        i
                    }
                };
                e.insert((h, slot));
            }
        }
        if self.ordered {
            self.unsorted.push(key.clone());
            // Removed keys linger in `unsorted` until a sort; sorting now and then bounds them.
            // (The key is in `index` already, so the sort keeps it.)
            if self.unsorted.len() > 1024 && self.unsorted.len() > 2 * self.index.len() {
                self.sort();
            }
        }
        None
    }

    /// Removes `key`; returns its value.
    ///
    /// ```
    /// let mut m = nadb_core::KeyMap::new();
    /// m.insert("k", 1);
    /// assert_eq!((m.remove("k"), m.remove("k")), (Some(1), None));
    /// ```
    pub fn remove(&mut self, key: &str) -> Option<V> {
        self.remove_if(key, |_| true)
    }

    /// Removes `key` if `pred` holds for its value, in one probe of the hash table; returns
    /// the value removed.
    pub(crate) fn remove_if(&mut self, key: &str, pred: impl FnOnce(&V) -> bool) -> Option<V> {
        let h = self.hash(key);
        let slots = &self.slots;
        let Ok(e) = self.index.find_entry(spread(h), holds(slots, h, key)) else {
            return None;
        };
        let slot = e.get().1;
        if !slots[slot as usize].as_ref().is_some_and(|(_, v)| pred(v)) {
            return None;
        }
        e.remove();
        self.release(slot, key)
    }

    /// Takes the value out of the position of `key`, just removed from the index.
    fn release(&mut self, slot: u32, key: &str) -> Option<V> {
        let value = self.slots[slot as usize].take().map(|(_, v)| v);
        if self.index.is_empty() {
            // Nothing left: drop the bookkeeping but keep the capacity.
            self.slots.clear();
            self.free.clear();
            self.order.clear();
            self.unsorted.clear();
        } else {
            self.free.push(slot);
            if self.ordered {
                self.order.remove(key);
            }
        }
        value
    }

    /// Removes every key, keeping room for as many keys as it held.
    ///
    /// ```
    /// let mut m = nadb_core::KeyMap::new();
    /// m.insert("k", 1);
    /// m.clear();
    /// assert!(m.is_empty() && m.get("k").is_none());
    /// ```
    pub fn clear(&mut self) {
        let held = self.index.len();
        if self.index.capacity() > 2 * held + 64 {
            // Emptying a table takes time in proportion to its size: one that held far fewer
            // keys than it has room for is replaced by one sized for them.
            self.index = HashTable::with_capacity(held);
            self.slots = Vec::with_capacity(held);
        } else {
            self.index.clear();
            self.slots.clear();
        }
        self.free.clear();
        self.order.clear();
        self.unsorted.clear();
    }

    /// Takes every key with its value out, in no particular order, keeping the map's room.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = (SmolStr, V)> + '_ {
        self.index.clear();
        self.free.clear();
        self.order.clear();
        self.unsorted.clear();
        self.slots.drain(..).flatten()
    }

    /// Every key with its value, in no particular order.
    ///
    /// ```
    /// let mut m = nadb_core::KeyMap::new();
    /// m.insert("k", 1);
    /// assert_eq!(m.iter().collect::<Vec<_>>(), [("k", &1)]);
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = (&str, &V)> {
        self.slots.iter().flatten().map(|(k, v)| (k.as_str(), v))
    }

    /// Every value, in no particular order.
    ///
    /// ```
    /// let mut m = nadb_core::KeyMap::new();
    /// m.insert("k", 1);
    /// assert_eq!(m.values().sum::<i32>(), 1);
    /// ```
    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.slots.iter().flatten().map(|(_, v)| v)
    }

    /// Whether keys were added since the last [`KeyMap::sort`] (so [`KeyMap::range`] waits).
    ///
    /// ```
    /// let mut m = nadb_core::KeyMap::new();
    /// m.insert("k", 1);
    /// assert!(m.needs_sort());
    /// m.sort();
    /// assert!(!m.needs_sort());
    /// ```
    pub fn needs_sort(&self) -> bool {
        !self.unsorted.is_empty()
    }

    /// Brings the sorted key set up to date.
    ///
    /// ```
    /// let mut m = nadb_core::KeyMap::new();
    /// m.insert("k", 1);
    /// m.sort();
    /// assert!(m.range("", None).is_some());
    /// ```
    pub fn sort(&mut self) {
        if self.unsorted.is_empty() {
            return;
        }
        let mut new = std::mem::take(&mut self.unsorted);
        new.sort_unstable();
        new.dedup();
        new.retain(|k| self.find(k).is_some());
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

    /// Keys starting with `prefix` and greater than `after`, in byte order, with their values;
    /// `None` while the map needs a [`KeyMap::sort`] or keeps no order.
    ///
    /// ```
    /// let mut m = nadb_core::KeyMap::new();
    /// for k in ["a1", "a2", "b1"] {
    ///     m.insert(k, ());
    /// }
    /// m.sort();
    /// let keys: Vec<&str> = m.range("a", Some("a1")).unwrap().map(|(k, _)| k).collect();
    /// assert_eq!(keys, ["a2"]);
    /// ```
    pub fn range<'a>(
        &'a self,
        prefix: &'a str,
        after: Option<&'a str>,
    ) -> Option<impl Iterator<Item = (&'a str, &'a V)> + 'a> {
        if !self.ordered || self.needs_sort() {
            return None;
        }
        let lower = match after {
            Some(a) if a >= prefix => Bound::Excluded(a),
            _ => Bound::Included(prefix),
        };
        Some(
            self.order
                .range::<str, _>((lower, Bound::Unbounded))
                .take_while(move |k| k.starts_with(prefix))
                .filter_map(|k| self.get(k).map(|v| (&**k, v))),
        )
    }
}

/// The table's 64-bit hash of a key's 32 bits, repeated in both halves: the bucket position
/// comes from the low bits and the tag from the top 7 (bits 25..32 of the key's hash). Up to
/// 2^25 buckets the two are independent; past that the tag repeats position bits and filters
/// less, so more lookups compare a stored hash (never a key: those 32 bits come first).
#[inline]
fn spread(h: u32) -> u64 {
    u64::from(h) << 32 | u64::from(h)
}

/// Whether an index entry is `key`'s, whose hash is `h`: the stored hash is compared first,
/// so a slot is read only for a likely match.
#[inline]
fn holds<'a, V>(
    slots: &'a [Option<(SmolStr, V)>],
    h: u32,
    key: &'a str,
) -> impl Fn(&(u32, u32)) -> bool + 'a {
    move |&(eh, i)| {
        eh == h
            && slots[i as usize]
                .as_ref()
                .is_some_and(|(k, _)| k.as_str() == key)
    }
}

impl<V: std::fmt::Debug> std::fmt::Debug for KeyMap<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, HashMap};

    proptest! {
        /// Inserts, removes and scans in any interleaving answer as a sorted map does, however
        /// the lazily sorted key set stands when the scan comes.
        #[test]
        fn key_map_matches_a_sorted_map(ops in proptest::collection::vec((0u8..4, 0u16..64), 1..400)) {
            let mut m = KeyMap::new();
            let mut model: BTreeMap<String, usize> = BTreeMap::new();
            for (i, (op, k)) in ops.into_iter().enumerate() {
                let key = format!("k{k:03}");
                match op {
                    0 | 1 => prop_assert_eq!(m.insert(&key, i), model.insert(key.clone(), i)),
                    2 => prop_assert_eq!(m.remove(&key), model.remove(&key)),
                    _ => {
                        m.sort();
                        prop_assert!(!m.needs_sort());
                        let prefix = if k % 2 == 0 { "" } else { "k0" };
                        let after = (k % 3 == 0).then_some("k020");
                        let got: Vec<(String, usize)> = m
                            .range(prefix, after)
                            .unwrap()
                            .map(|(k, v)| (k.to_string(), *v))
                            .collect();
                        let want: Vec<(String, usize)> = model
                            .iter()
                            .filter(|(k, _)| k.starts_with(prefix) && after.is_none_or(|a| k.as_str() > a))
                            .map(|(k, v)| (k.clone(), *v))
                            .collect();
                        prop_assert_eq!(got, want);
                    }
                }
                prop_assert_eq!(m.get(&key), model.get(&key));
                prop_assert_eq!(m.len(), model.len());
            }
        }
    }

    #[test]
    fn remove_if_removes_only_what_its_predicate_accepts() {
        let mut m = KeyMap::new();
        m.insert("k", 1);
        let k = SmolStr::new("k");
        assert_eq!(m.remove_if(&k, |v| *v == 2), None);
        assert_eq!(m.get("k"), Some(&1));
        assert_eq!(m.remove_if(&k, |v| *v == 1), Some(1));
        assert_eq!((m.get("k"), m.len()), (None, 0));
        assert_eq!(m.remove_if(&k, |_| true), None);
    }

    #[test]
    fn keys_removed_without_a_scan_do_not_pile_up() {
        let mut m = KeyMap::new();
        m.insert("anchor", 0);
        for i in 0..100_000u64 {
            let key = format!("churn-{i}");
            m.insert(&key, i);
            m.remove(&key);
        }
        assert!(
            m.unsorted.len() <= 1025,
            "{} keys waiting",
            m.unsorted.len()
        );
        assert!(m.slots.len() <= 2, "{} slots", m.slots.len());
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn keys_added_while_removed_ones_pile_up_are_all_scanned() {
        let mut m = KeyMap::new();
        let mut model = BTreeMap::new();
        for i in 0..20_000u64 {
            let key = format!("k{i:05}");
            m.insert(&key, i);
            if i % 8 == 0 {
                model.insert(key, i);
            } else {
                m.remove(&key);
            }
        }
        m.sort();
        let got: Vec<(&str, &u64)> = m.range("", None).unwrap().collect();
        let want: Vec<(&str, &u64)> = model.iter().map(|(k, v)| (k.as_str(), v)).collect();
        assert_eq!(got, want);
    }

    /// Clearing shrinks a table that held far fewer keys than it has room for and keeps one
    /// that was full; a cleared or drained map works as a new one.
    #[test]
    fn clearing_and_draining_leave_a_map_that_works_and_fits_what_it_held() {
        let mut m = KeyMap::new();
        for i in 0..10_000 {
            m.insert(&format!("k{i}"), i);
        }
        for i in 100..10_000 {
            m.remove(&format!("k{i}"));
        }
        let big = m.index.capacity();
        m.clear();
        assert!(m.is_empty() && m.get("k1").is_none() && m.iter().next().is_none());
        assert!(
            m.index.capacity() < big / 10,
            "{} of {big}",
            m.index.capacity()
        );
        for i in 0..100 {
            m.insert(&format!("n{i}"), i);
        }
        let room = m.index.capacity();
        m.clear();
        assert_eq!(
            m.index.capacity(),
            room,
            "a table as full as it held is kept"
        );
        m.insert("b", 2);
        m.insert("a", 1);
        m.remove("b");
        m.sort();
        let keys: Vec<&str> = m.range("", None).unwrap().map(|(k, _)| k).collect();
        assert_eq!(keys, ["a"]);
        m.insert("c", 3);
        let mut drained: Vec<(SmolStr, i32)> = m.drain().collect();
        drained.sort();
        assert_eq!(drained, [("a".into(), 1), ("c".into(), 3)]);
        assert!(m.is_empty() && m.get("a").is_none());
        m.insert("a", 4);
        m.sort();
        assert_eq!(m.range("", None).unwrap().count(), 1);
    }

    /// Two keys whose kept hashes are equal: the index tells them apart by their keys.
    #[test]
    fn keys_with_the_same_kept_hash_stay_apart() {
        let mut m = KeyMap::new();
        // Among a million 32-bit hashes two are equal but for a chance of about e^-116.
        let mut seen: HashMap<u32, String> = HashMap::new();
        let (a, b) = (0..1_000_000u32)
            .map(|i| format!("key-{i}"))
            .find_map(|k| {
                let h = m.hash(&k);
                seen.insert(h, k.clone()).map(|other| (other, k))
            })
            .expect("two of a million keys share a 32-bit hash");
        assert_eq!(m.hash(&a), m.hash(&b));
        assert_eq!(m.insert(&a, 1), None);
        assert_eq!((m.get(&a), m.get(&b)), (Some(&1), None));
        assert_eq!(m.insert(&b, 2), None);
        assert_eq!((m.get(&a), m.get(&b), m.len()), (Some(&1), Some(&2), 2));
        *m.get_mut(&b).unwrap() = 3;
        assert_eq!(m.remove(&a), Some(1));
        assert_eq!((m.get(&a), m.get(&b), m.len()), (None, Some(&3), 1));
        assert_eq!(m.remove_if(&SmolStr::new(&a), |_| true), None);
        assert_eq!(m.insert(&a, 4), None);
        m.sort();
        let keys: Vec<(&str, &u32)> = m.range("", None).unwrap().collect();
        let mut want = vec![(a.as_str(), &4), (b.as_str(), &3)];
        want.sort();
        assert_eq!(keys, want);
    }

    #[test]
    fn an_unordered_map_keeps_no_key_list() {
        let mut m = KeyMap::unordered();
        for i in 0..10_000u64 {
            m.insert(&format!("k{i}"), i);
        }
        assert!(m.unsorted.is_empty() && m.order.is_empty());
        assert!(m.range("", None).is_none());
        assert_eq!(m.iter().count(), 10_000);
    }
}
