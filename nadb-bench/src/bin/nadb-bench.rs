//! Store workloads on the memory backend beside raw baselines, in one process: each figure is
//! the median of several rounds, store and baseline alternating so both see the same machine.
//!
//! Run with `cargo run --release -p nadb-bench`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use nadb::{BufferedFlush, FlushPolicy, MemoryBackend, Store};
use nadb_bench::{
    bench_error, keys, loaded_map, loaded_store, map_get, map_set, median, slow_sync_backend, value,
};

const ROUNDS: usize = 5;

async fn buffered_ingest(n: usize) -> nadb::Result<f64> {
    let store = Store::builder(MemoryBackend::new())
        .flush_policy(BufferedFlush::default())
        .sweep_interval(None)
        .build()
        .await?;
    let keys: Vec<String> = (0..n).map(|i| format!("key-{i:07}")).collect();
    let v = value();
    let t = Instant::now();
    for k in &keys {
        store.set(k, v.clone()).await?;
    }
    store.flush().await?;
    Ok(n as f64 / t.elapsed().as_secs_f64())
}

fn raw_map_ingest(n: usize) -> f64 {
    let v = value();
    let t = Instant::now();
    let mut m = std::collections::HashMap::new();
    for i in 0..n {
        m.insert(format!("key-{i:07}"), v.clone());
    }
    black_box(&m);
    n as f64 / t.elapsed().as_secs_f64()
}

async fn pending_gets(n: usize) -> nadb::Result<f64> {
    let store = Store::builder(MemoryBackend::new())
        .flush_policy(FlushPolicy::Manual)
        .sweep_interval(None)
        .build()
        .await?;
    let keys: Vec<String> = (0..100_000).map(|i| format!("key-{i:07}")).collect();
    for k in &keys {
        store.set(k, value()).await?;
    }
    let t = Instant::now();
    for i in 0..n {
        black_box(store.get(&keys[i % keys.len()]).await?);
    }
    Ok(n as f64 / t.elapsed().as_secs_f64())
}

async fn memory_first_gets(n: usize) -> nadb::Result<f64> {
    let backend = Arc::new(MemoryBackend::new());
    let loader = Store::builder(backend.clone())
        .sweep_interval(None)
        .build()
        .await?;
    let keys: Vec<String> = (0..100_000).map(|i| format!("key-{i:07}")).collect();
    loader
        .set_many(keys.iter().map(|k| (k.clone(), value())))
        .await?;
    let store = Store::builder(backend)
        .memory_first(true)
        .sweep_interval(None)
        .build()
        .await?;
    let t = Instant::now();
    for i in 0..n {
        black_box(store.get(&keys[i % keys.len()]).await?);
    }
    Ok(n as f64 / t.elapsed().as_secs_f64())
}

/// The raw map's gets over the same 100k keys as [`memory_first_gets`].
async fn raw_map_gets(n: usize) -> f64 {
    let keys: Vec<String> = (0..100_000).map(|i| format!("key-{i:07}")).collect();
    let map: nadb_bench::RawMap =
        std::sync::RwLock::new(keys.iter().map(|k| (k.clone(), value())).collect());
    let t = Instant::now();
    for i in 0..n {
        black_box(async { map_get(&map, &keys[i % keys.len()]) }.await);
    }
    n as f64 / t.elapsed().as_secs_f64()
}

/// A bare `HashMap` (no lock, no async) over the same 100k keys as [`memory_first_gets`], each
/// hit cloning its value as a store's get does: the lookup work alone, with no store around it.
fn bare_map_gets(n: usize) -> f64 {
    let keys: Vec<String> = (0..100_000).map(|i| format!("key-{i:07}")).collect();
    let map: std::collections::HashMap<String, Bytes> =
        keys.iter().map(|k| (k.clone(), value())).collect();
    let t = Instant::now();
    for i in 0..n {
        black_box(map.get(&keys[i % keys.len()]).cloned());
    }
    n as f64 / t.elapsed().as_secs_f64()
}

async fn durable_writers(writers: usize, per_writer: usize, sync: Duration) -> nadb::Result<f64> {
    let store = Store::builder(slow_sync_backend(sync))
        .sweep_interval(None)
        .build()
        .await?;
    let t = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..per_writer {
                s.set(&format!("w{w}-{i}"), Bytes::from_static(b"v"))
                    .await?;
            }
            Ok::<_, nadb::Error>(())
        }));
    }
    for task in tasks {
        task.await.map_err(bench_error)??;
    }
    Ok((writers * per_writer) as f64 / t.elapsed().as_secs_f64())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> nadb::Result<()> {
    let store = loaded_store().await?;
    let map = Arc::new(loaded_map());
    let keys = keys();
    let v = value();
    const OPS: usize = 1_000_000;
    let (mut sg, mut mg, mut ss, mut ms) = (vec![], vec![], vec![], vec![]);
    for _ in 0..ROUNDS {
        let t = Instant::now();
        for i in 0..OPS {
            black_box(store.get(&keys[i % keys.len()]).await?);
        }
        sg.push(t.elapsed().as_nanos() as f64 / OPS as f64);
        let t = Instant::now();
        for i in 0..OPS {
            black_box(async { map_get(&map, &keys[i % keys.len()]) }.await);
        }
        mg.push(t.elapsed().as_nanos() as f64 / OPS as f64);
        let t = Instant::now();
        for i in 0..OPS / 20 {
            store.set(&keys[i % keys.len()], v.clone()).await?;
        }
        ss.push(t.elapsed().as_nanos() as f64 / (OPS / 20) as f64);
        let t = Instant::now();
        for i in 0..OPS / 20 {
            async { map_set(&map, &keys[i % keys.len()], v.clone()) }.await;
        }
        ms.push(t.elapsed().as_nanos() as f64 / (OPS / 20) as f64);
    }
    let (sg, mg, ss, ms) = (median(&sg), median(&mg), median(&ss), median(&ms));
    println!(
        "memory backend, {} keys, {}-byte values, median of {ROUNDS} rounds",
        keys.len(),
        v.len()
    );
    println!("workload                     store          baseline       ratio");
    println!(
        "get                          {sg:>8.1} ns/op  {mg:>8.1} ns/op  {:>6.2}x (raw RwLock<HashMap>)",
        sg / mg
    );
    println!(
        "set, Immediate               {ss:>8.1} ns/op  {ms:>8.1} ns/op  {:>6.2}x (raw RwLock<HashMap>)",
        ss / ms
    );

    let mut ingest = vec![];
    let mut raw_ingest = vec![];
    let mut pending = vec![];
    let mut first = vec![];
    let mut raw_first = vec![];
    let mut bare_first = vec![];
    for _ in 0..3 {
        first.push(memory_first_gets(2_000_000).await?);
        raw_first.push(raw_map_gets(2_000_000).await);
        bare_first.push(bare_map_gets(2_000_000));
        ingest.push(buffered_ingest(1_000_000).await?);
        raw_ingest.push(raw_map_ingest(1_000_000));
        pending.push(pending_gets(2_000_000).await?);
    }
    let (ingest, raw_ingest) = (median(&ingest), median(&raw_ingest));
    println!(
        "buffered set 1M + flush      {:>8.2} M ops/s  {:>8.2} M ops/s  {:>6.2}x (raw HashMap insert of 1M new keys)",
        ingest / 1e6,
        raw_ingest / 1e6,
        raw_ingest / ingest
    );
    let (first, raw_first) = (median(&first), median(&raw_first));
    println!(
        "memory_first get, 100k keys  {:>8.2} M ops/s  {:>8.2} M ops/s  {:>6.2}x (raw RwLock<HashMap>, same keys)",
        first / 1e6,
        raw_first / 1e6,
        raw_first / first
    );
    let bare_first = median(&bare_first);
    println!(
        "                             {:>8}        {:>8.2} M ops/s  {:>6.2}x (bare HashMap get + clone, no lock)",
        "",
        bare_first / 1e6,
        bare_first / first
    );
    println!(
        "get of pending keys          {:>8.2} M ops/s",
        median(&pending) / 1e6
    );

    let sync = Duration::from_micros(200);
    let one = durable_writers(1, 400, sync).await?;
    let sixteen = durable_writers(16, 400, sync).await?;
    println!(
        "Immediate, sync ~200 us: 1 writer {one:.0} acks/s, 16 writers {sixteen:.0} acks/s ({:.1}x, group commit)",
        sixteen / one
    );
    Ok(())
}
