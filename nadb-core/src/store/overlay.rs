//! The overlay: for every key with a pending write, the newest one, so reads see writes the
//! backend has not applied yet.
//!
//! It is kept in two generations. When a flush round takes the whole queue, the overlay as
//! it stands is *sealed*: every entry in it was written by a unit of that round, and new
//! writes start a fresh generation. A round that persists all its units then drops the
//! sealed generation whole, instead of looking up each key it wrote; one with failures
//! first folds it back (newer entries win), and settles key by key. Lookups read the newer
//! generation first, so a key's newest pending write is always the one seen.

use std::collections::HashMap;

use smol_str::SmolStr;

use crate::keymap::KeyMap;
use crate::record::{Meta, Record};
use crate::space::Space;

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Empty per-space overlays kept for reuse; past this many spaces, empty ones are dropped.
pub(super) const KEPT_OVERLAYS: usize = 16;

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

    fn len(&self) -> usize {
        self.0.len()
    }

    /// Drops every entry, keeping the table's room.
    pub(super) fn clear(&mut self) {
        self.0.clear()
    }
}

/// A generation: one [`Overlay`] per space.
pub(super) type Generation = FastMap<Space, Overlay>;

/// Every space's pending keys, in a current and a sealed generation (see the module docs).
#[derive(Default)]
pub(super) struct Overlays {
    current: Generation,
    /// The overlay as the round in progress found it; empty when no round sealed one.
    sealed: Generation,
    /// An emptied generation, kept so the next one does not regrow its tables.
    spare: Generation,
    /// Entries in both generations (a key may have one in each).
    entries: usize,
}

impl Overlays {
    /// Entries in both generations: zero exactly when nothing is pending.
    pub(super) fn len(&self) -> usize {
        self.entries
    }

    /// Per-space tables kept in all generations, empty ones included.
    #[cfg(test)]
    pub(super) fn tables(&self) -> usize {
        self.current.len() + self.sealed.len() + self.spare.len()
    }

    /// The newest pending entry of `key`.
    pub(super) fn get(&self, space: &Space, key: &str) -> Option<&Slot> {
        let newer = self.current.get(space).and_then(|m| m.get(key));
        newer.or_else(|| self.sealed.get(space)?.get(key))
    }

    /// Whether anything of `space` is pending.
    pub(super) fn has_space(&self, space: &Space) -> bool {
        [&self.current, &self.sealed]
            .iter()
            .any(|g| g.get(space).is_some_and(|m| !m.is_empty()))
    }

    /// The pending entries of `space` whose keys start with `prefix`, newest per key, in no
    /// particular order: the key and the put's metadata (`None`: a delete).
    pub(super) fn listing(&self, space: &Space, prefix: &str) -> Vec<(String, Option<Meta>)> {
        let current = self.current.get(space);
        let sealed = self.sealed.get(space).into_iter().flat_map(|m| {
            m.iter()
                .filter(move |(key, _)| current.is_none_or(|c| c.get(key).is_none()))
        });
        current
            .into_iter()
            .flat_map(|m| m.iter())
            .chain(sealed)
            .filter(|(key, _)| key.starts_with(prefix))
            .map(|(key, slot)| {
                let meta = slot.pending.as_ref().map(|r| r.meta.clone());
                (key.to_string(), meta)
            })
            .collect()
    }

    /// A handle that looks up the newest entries of `space` and sets new ones: for one
    /// unit's writes.
    pub(super) fn writer(&mut self, space: &Space) -> Writer<'_> {
        Writer {
            current: self.current.entry(space.clone()).or_default(),
            sealed: self.sealed.get(space).filter(|m| !m.is_empty()),
            entries: &mut self.entries,
        }
    }

    /// Seals the current generation for a round that took every queued unit; the caller
    /// makes sure no entry belongs to anything else (a dead-lettered write).
    pub(super) fn seal(&mut self) {
        self.unseal();
        let fresh = std::mem::take(&mut self.spare);
        self.sealed = std::mem::replace(&mut self.current, fresh);
    }

    /// Takes the sealed generation out, its entries no longer pending: `None` if nothing
    /// is sealed. Give it back, emptied, with [`Overlays::recycle`].
    pub(super) fn take_sealed(&mut self) -> Option<Generation> {
        if self.sealed.is_empty() {
            return None;
        }
        let sealed = std::mem::take(&mut self.sealed);
        self.entries -= sealed.values().map(Overlay::len).sum::<usize>();
        Some(sealed)
    }

    /// Keeps an emptied generation for the next round's fresh one, unless it holds the
    /// tables of many spaces: a store writing to many spaces must not keep one per space it
    /// ever wrote.
    pub(super) fn recycle(&mut self, emptied: Generation) {
        if self.spare.is_empty() && emptied.len() <= KEPT_OVERLAYS {
            self.spare = emptied;
        }
    }

    /// Folds the sealed generation back into the current one, where an entry of the same
    /// key is newer and wins.
    pub(super) fn unseal(&mut self) {
        for (space, mut old) in self.sealed.drain() {
            let m = self.current.entry(space).or_default();
            for (key, slot) in old.0.drain() {
                if m.get(&key).is_none() {
                    m.insert(&key, slot);
                } else {
                    self.entries -= 1;
                }
            }
        }
    }

    /// Drops the entry of `key` if unit `seq` wrote it.
    pub(super) fn remove_if(&mut self, space: &Space, key: &SmolStr, seq: u64) {
        self.unseal();
        let removed = self
            .current
            .get_mut(space)
            .is_some_and(|m| m.remove_if(key, seq));
        self.entries -= usize::from(removed);
    }

    /// Marks the entry of `key` dead-lettered if unit `seq` wrote it.
    pub(super) fn mark_dead(&mut self, space: &Space, key: &str, seq: u64) {
        self.unseal();
        if let Some(m) = self.current.get_mut(space) {
            m.mark_dead(key, seq);
        }
    }

    /// Drops the current generation's empty tables once there are many: a store writing to
    /// many spaces must not keep one per space it ever wrote.
    pub(super) fn trim(&mut self) {
        if self.current.len() > KEPT_OVERLAYS {
            self.current.retain(|_, m| !m.is_empty());
        }
    }
}

/// Adds one unit's entries to a space; see [`Overlays::writer`].
pub(super) struct Writer<'a> {
    current: &'a mut Overlay,
    sealed: Option<&'a Overlay>,
    entries: &'a mut usize,
}

impl Writer<'_> {
    /// The newest pending entry of `key`.
    pub(super) fn get(&self, key: &str) -> Option<&Slot> {
        self.current
            .get(key)
            .or_else(|| self.sealed.and_then(|m| m.get(key)))
    }

    /// Makes `slot` the newest entry of `key`.
    pub(super) fn insert(&mut self, key: &SmolStr, slot: Slot) {
        *self.entries += usize::from(self.current.insert(key, slot));
    }
}
