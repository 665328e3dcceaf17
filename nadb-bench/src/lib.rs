//! Workloads shared by the `nadb-bench` binary and the criterion benches: the store and a raw
//! `RwLock<HashMap<String, Bytes>>` baseline, loaded with the same keys and values.
#![deny(missing_docs)]

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use nadb::{
    BackendInfo, Batch, MemoryBackend, Meta, MetadataIndex, Record, Space, StorageBackend, Store,
    async_trait,
};

/// Keys loaded into each side.
pub const KEYS: usize = 10_000;
/// Bytes per value (below the compression threshold, as most small-object workloads).
pub const VALUE_LEN: usize = 100;

/// The raw baseline: what a user would write instead of nadb for an in-process map.
pub type RawMap = RwLock<HashMap<String, Bytes>>;

/// The keys `key-00000` .. in load order.
pub fn keys() -> Vec<String> {
    (0..KEYS).map(|i| format!("key-{i:05}")).collect()
}

/// The value stored under every key.
pub fn value() -> Bytes {
    Bytes::from(vec![b'v'; VALUE_LEN])
}

/// A store on the memory backend holding every key, sweeper off (nothing expires).
pub async fn loaded_store() -> nadb::Result<Store> {
    let store = Store::builder(MemoryBackend::new())
        .sweep_interval(None)
        .build()
        .await?;
    for k in keys() {
        store.set(&k, value()).await?;
    }
    Ok(store)
}

/// The baseline map holding every key.
pub fn loaded_map() -> RawMap {
    RwLock::new(keys().into_iter().map(|k| (k, value())).collect())
}

/// One baseline get.
#[inline]
pub fn map_get(map: &RawMap, key: &str) -> Option<Bytes> {
    map.read().ok().and_then(|m| m.get(key).cloned())
}

/// One baseline set.
#[inline]
pub fn map_set(map: &RawMap, key: &str, value: Bytes) {
    if let Ok(mut m) = map.write() {
        m.insert(key.to_string(), value);
    }
}

/// The memory backend with a `sync` that takes a fixed time, standing in for a disk's flush:
/// it spins rather than sleeps, because timer granularity (about 1 ms) would swamp 200 µs.
#[derive(Debug)]
pub struct SlowSync {
    inner: MemoryBackend,
    sync: Duration,
}

impl SlowSync {
    /// A memory backend whose `sync` takes `sync`.
    pub fn new(sync: Duration) -> SlowSync {
        SlowSync {
            inner: MemoryBackend::new(),
            sync,
        }
    }
}

#[async_trait]
impl StorageBackend for SlowSync {
    fn info(&self) -> &BackendInfo {
        self.inner.info()
    }
    async fn get(&self, space: &Space, key: &str) -> nadb::Result<Option<Record>> {
        self.inner.get(space, key).await
    }
    async fn apply(&self, batch: &Batch) -> nadb::Result<()> {
        self.inner.apply(batch).await
    }
    async fn scan(
        &self,
        space: &Space,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> nadb::Result<Vec<(String, Meta)>> {
        self.inner.scan(space, prefix, after, limit).await
    }
    async fn sync(&self) -> nadb::Result<()> {
        let until = Instant::now() + self.sync;
        let spin = tokio::task::spawn_blocking(move || {
            while Instant::now() < until {
                std::hint::spin_loop();
            }
        });
        spin.await
            .map_err(|e| nadb::Error::backend("slow-sync", false, e))
    }
    async fn close(&self) -> nadb::Result<()> {
        self.inner.close().await
    }
    fn native_index(&self) -> Option<Arc<dyn MetadataIndex>> {
        self.inner.native_index()
    }
}
