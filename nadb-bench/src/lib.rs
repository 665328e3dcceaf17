//! Workloads shared by the `nadb-bench` binary and the criterion benches: the store and a raw
//! `RwLock<HashMap<String, Bytes>>` baseline, loaded with the same keys and values; and
//! [`RedbBaseline`], redb as a second baseline of the `nadb-bench-report` binary.
#![deny(missing_docs)]

mod redb_baseline;

pub use redb_baseline::RedbBaseline;

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Duration;

use bytes::Bytes;
use nadb::{MemoryBackend, Store};

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

/// The memory backend with a `sync` that takes `sync`, standing in for a disk's flush.
pub fn slow_sync_backend(sync: Duration) -> nadb_testkit::FaultyBackend {
    let b = nadb_testkit::FaultyBackend::new(MemoryBackend::new(), 0);
    b.set_sync_delay(sync);
    b
}

/// A failure outside the store (a file, a task, a baseline) as the error the benchmark
/// binaries return.
///
/// ```
/// let e = nadb_bench::bench_error("no disk");
/// assert!(e.to_string().contains("no disk"));
/// ```
pub fn bench_error(e: impl std::fmt::Display) -> nadb::Error {
    nadb::Error::Config {
        reason: e.to_string(),
    }
}

/// The median of `rounds` (the upper one of an even count); rounds of a benchmark are
/// summarised by it, so one disturbed round does not move the figure.
///
/// ```
/// assert_eq!(nadb_bench::median(&[3.0, 1.0, 2.0]), 2.0);
/// ```
pub fn median(rounds: &[f64]) -> f64 {
    let mut v = rounds.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
