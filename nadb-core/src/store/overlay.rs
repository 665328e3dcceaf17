//! The overlay: for every key with a pending write, the newest one, so reads see writes the
//! backend has not applied yet.

use std::collections::HashMap;
use std::sync::Arc;

use crate::record::Record;

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// A pending op as reads see it: `Some(record)` for a put, `None` for a delete.
pub(crate) type Pending = Option<Record>;

/// The overlay's entry for a key: the unit that wrote it, the op, and whether a pending
/// delete of the key comes before it (so no stored record's creation time carries over).
#[derive(Clone)]
pub(super) struct Slot {
    pub(super) seq: u64,
    pub(super) pending: Pending,
    pub(super) after_delete: bool,
}

const FREE: Slot = Slot {
    seq: 0,
    pending: None,
    after_delete: false,
};

/// One space's pending keys. The hash table maps a key to a position in a slot table, so
/// its buckets stay small: a bulk load fills it up to the pending limit, and each time it
/// grows it moves keys and positions, not records.
#[derive(Default)]
pub(super) struct Overlay {
    index: FastMap<Arc<str>, usize>,
    slots: Vec<Slot>,
    /// Positions in `slots` no key uses.
    free: Vec<usize>,
}

impl Overlay {
    pub(super) fn get(&self, key: &str) -> Option<&Slot> {
        self.index.get(key).map(|&i| &self.slots[i])
    }

    /// Makes `slot` the entry of `key`; returns whether the key had none.
    pub(super) fn insert(&mut self, key: &Arc<str>, slot: Slot) -> bool {
        if let Some(&i) = self.index.get(&**key) {
            self.slots[i] = slot;
            return false;
        }
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i] = slot;
                i
            }
            None => {
                self.slots.push(slot);
                self.slots.len() - 1
            }
        };
        self.index.insert(key.clone(), i);
        true
    }

    /// Drops the entry of `key` if unit `seq` wrote it; returns whether it did.
    pub(super) fn remove_if(&mut self, key: &str, seq: u64) -> bool {
        let Some(&i) = self.index.get(key) else {
            return false;
        };
        if self.slots[i].seq != seq {
            return false;
        }
        self.index.remove(key);
        self.slots[i] = FREE;
        self.free.push(i);
        if self.index.is_empty() {
            // Nothing pending: the tables keep their capacity, the slots their memory no more.
            self.slots.clear();
            self.free.clear();
        }
        true
    }

    pub(super) fn is_empty(&self) -> bool {
        self.index.is_empty()
    }
}
