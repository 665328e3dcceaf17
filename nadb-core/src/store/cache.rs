//! The read cache between the pending buffer and the backend: off, an LRU bounded in bytes,
//! or *memory-first* (every record of a space in memory, loaded when the space is first used).
//!
//! The cache holds records as the backend has them (applied writes only; pending ones are in
//! the pipeline's overlay, which reads consult first). It is updated after every applied batch.
//! An LRU fill races with writes, so a fill is dropped if any batch was applied since its
//! backend read began (an epoch counter), and a stale value can never be cached.

use std::collections::HashMap;

use lru::LruCache;
use parking_lot::{Mutex, RwLock};

use crate::backend::{Batch, Op};
use crate::keymap::KeyMap;
use crate::record::Record;
use crate::space::Space;

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Bytes a cached record is charged: its key, stored value and a fixed overhead.
fn charge(key: &str, record: &Option<Record>) -> usize {
    128 + key.len() + record.as_ref().map_or(0, |r| r.value.len())
}

pub(crate) struct Lru {
    map: LruCache<(Space, String), Option<Record>>,
    bytes: usize,
    max_bytes: usize,
    epoch: u64,
}

/// What a cache lookup found.
pub(crate) enum Lookup<T = Option<Record>> {
    /// The answer (by default the record; `None`: no record).
    Hit(T),
    /// Not cached; pass the epoch to [`ReadCache::fill`] after reading the backend.
    Miss(u64),
}

pub(crate) enum ReadCache {
    Off,
    Lru(Mutex<Lru>),
    /// Memory-first: per loaded space, every stored record.
    Full(RwLock<FastMap<Space, KeyMap<Record>>>),
}

impl ReadCache {
    pub(crate) fn lru(max_bytes: usize) -> ReadCache {
        ReadCache::Lru(Mutex::new(Lru {
            map: LruCache::unbounded(),
            bytes: 0,
            max_bytes,
            epoch: 0,
        }))
    }

    pub(crate) fn full() -> ReadCache {
        ReadCache::Full(RwLock::new(FastMap::default()))
    }

    pub(crate) fn is_full(&self) -> bool {
        matches!(self, ReadCache::Full(_))
    }

    pub(crate) fn is_off(&self) -> bool {
        matches!(self, ReadCache::Off)
    }

    /// Whether memory-first holds `space` (then the backend is never read for it).
    pub(crate) fn holds(&self, space: &Space) -> bool {
        match self {
            ReadCache::Full(m) => m.read().contains_key(space),
            _ => false,
        }
    }

    /// `f` of the cached record of `key` (`None`: cached as absent), or a miss; lets a read
    /// take only what it needs under the lock.
    pub(crate) fn view<T>(
        &self,
        space: &Space,
        key: &str,
        f: impl FnOnce(Option<&Record>) -> T,
    ) -> Lookup<T> {
        match self {
            ReadCache::Off => Lookup::Miss(0),
            ReadCache::Full(m) => match m.read().get(space) {
                Some(records) => Lookup::Hit(f(records.get(key))),
                None => Lookup::Miss(0),
            },
            ReadCache::Lru(l) => {
                let mut l = l.lock();
                let epoch = l.epoch;
                match l.map.get(&(space.clone(), key.to_string())) {
                    Some(r) => Lookup::Hit(f(r.as_ref())),
                    None => Lookup::Miss(epoch),
                }
            }
        }
    }

    /// Caches what the backend returned for `key`, unless a batch was applied since `epoch`.
    pub(crate) fn fill(&self, space: &Space, key: &str, record: &Option<Record>, epoch: u64) {
        let ReadCache::Lru(l) = self else {
            return;
        };
        let mut l = l.lock();
        let size = charge(key, record);
        if l.epoch != epoch || size > l.max_bytes {
            return;
        }
        if let Some(old) = l.map.put((space.clone(), key.to_string()), record.clone()) {
            l.bytes -= charge(key, &old);
        }
        l.bytes += size;
        while l.bytes > l.max_bytes {
            match l.map.pop_lru() {
                Some(((_, k), r)) => l.bytes -= charge(&k, &r),
                None => break,
            }
        }
    }

    /// Brings the cache up to date with a batch the backend has applied.
    pub(crate) fn applied(&self, batch: &Batch) {
        match self {
            ReadCache::Off => {}
            ReadCache::Lru(_) => self.forget(batch),
            ReadCache::Full(m) => {
                let mut m = m.write();
                let Some(records) = m.get_mut(&batch.space) else {
                    return;
                };
                for op in &batch.ops {
                    match op {
                        Op::Put { key, record } => {
                            let mut record = record.clone();
                            if let Some(old) = records.get(key)
                                && !old.meta.is_expired(record.meta.updated_at)
                            {
                                record.meta.created_at = old.meta.created_at;
                            }
                            records.insert(key, record);
                        }
                        Op::Delete { key } => {
                            records.remove(key);
                        }
                    }
                }
            }
        }
    }

    /// Drops what the cache holds for the keys of `batch` (memory-first: the whole space), so
    /// they are read from the backend again.
    pub(crate) fn forget(&self, batch: &Batch) {
        match self {
            ReadCache::Off => {}
            ReadCache::Lru(l) => {
                let mut l = l.lock();
                l.epoch += 1;
                for op in &batch.ops {
                    if let Some(old) = l.map.pop(&(batch.space.clone(), op.key().to_string())) {
                        l.bytes -= charge(op.key(), &old);
                    }
                }
            }
            ReadCache::Full(_) => self.forget_space(&batch.space),
        }
    }

    /// Memory-first: drops `space`, which is loaded again when next used.
    pub(crate) fn forget_space(&self, space: &Space) {
        if let ReadCache::Full(m) = self {
            m.write().remove(space);
        }
    }

    /// Memory-first: sets the records of some keys of `space` to what the backend holds.
    pub(crate) fn replace(
        &self,
        space: &Space,
        records: impl IntoIterator<Item = (String, Option<Record>)>,
    ) {
        if let ReadCache::Full(m) = self
            && let Some(held) = m.write().get_mut(space)
        {
            for (key, record) in records {
                match record {
                    Some(r) => {
                        held.insert(&key, r);
                    }
                    None => {
                        held.remove(&key);
                    }
                }
            }
        }
    }

    /// Memory-first: installs every record of `space`.
    pub(crate) fn load(&self, space: &Space, records: Vec<(String, Record)>) {
        if let ReadCache::Full(m) = self {
            m.write().entry(space.clone()).or_insert_with(|| {
                let mut held = KeyMap::unordered();
                held.reserve(records.len());
                for (k, r) in records {
                    held.insert(&k, r);
                }
                held
            });
        }
    }
}

impl std::fmt::Debug for ReadCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadCache::Off => f.write_str("Off"),
            ReadCache::Lru(l) => {
                let l = l.lock();
                write!(f, "Lru({} of {} bytes)", l.bytes, l.max_bytes)
            }
            ReadCache::Full(m) => write!(f, "MemoryFirst({} spaces)", m.read().len()),
        }
    }
}
