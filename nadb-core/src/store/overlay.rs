//! The overlay: for every key with a pending write, the newest one, so reads see writes the
//! backend has not applied yet.

use smol_str::SmolStr;

use crate::keymap::KeyMap;
use crate::record::Record;

/// A pending op as reads see it: `Some(record)` for a put, `None` for a delete.
pub(crate) type Pending = Option<Record>;

/// The overlay's entry for a key: the unit that wrote it, the op, and whether a pending
/// delete of the key comes before it (so no stored record's creation time carries over).
#[derive(Clone)]
pub(super) struct Slot {
    pub(super) seq: u64,
    pub(super) pending: Pending,
    pub(super) after_delete: bool,
    /// The unit failed and is in the dead-letter queue.
    pub(super) dead: bool,
}

/// One space's pending keys. A bulk load fills it up to the pending limit; a [`KeyMap`]
/// grows by moving keys and positions, not records.
pub(super) struct Overlay(KeyMap<Slot>);

impl Default for Overlay {
    fn default() -> Self {
        Overlay(KeyMap::unordered())
    }
}

impl Overlay {
    pub(super) fn get(&self, key: &str) -> Option<&Slot> {
        self.0.get(key)
    }

    /// Makes `slot` the entry of `key`; returns whether the key had none.
    pub(super) fn insert(&mut self, key: &SmolStr, slot: Slot) -> bool {
        self.0.insert_shared(key, slot).is_none()
    }

    /// Drops the entry of `key` if unit `seq` wrote it; returns whether it did.
    pub(super) fn remove_if(&mut self, key: &SmolStr, seq: u64) -> bool {
        self.0.remove_if(key, |slot| slot.seq == seq).is_some()
    }

    /// Marks the entry of `key` dead-lettered if unit `seq` wrote it.
    pub(super) fn mark_dead(&mut self, key: &str, seq: u64) {
        if let Some(slot) = self.0.get_mut(key).filter(|slot| slot.seq == seq) {
            slot.dead = true;
        }
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (&str, &Slot)> {
        self.0.iter()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
