//! The Redis backend beside `redis-benchmark` against the same private server, same run:
//! buffered sets against `redis-benchmark -t set -P 64`, Immediate single-key sets against
//! `-P 1` with one client, and a tag query returning 10k of 100k keys. The server CPU each
//! buffered run costs per key (from `INFO cpu`) says how far the server itself caps the store.
//!
//! Run with `cargo run --release -p nadb-bench --example redis_vs_redis_benchmark [-- N]`
//! (default 200k; needs `redis-server` and `redis-benchmark`, see scripts/test.sh).

use std::process::Command;
use std::time::Instant;

use bytes::Bytes;
use nadb::redis::RedisBackend;
use nadb::{BufferedFlush, FlushPolicy, SetOptions, Store, TagMode};
use nadb_testkit::redis::RedisServer;

fn rate(n: usize, t: Instant) -> f64 {
    n as f64 / t.elapsed().as_secs_f64()
}

/// `redis-benchmark` SET requests per second with `pipeline` commands in flight per client.
fn redis_benchmark(port: u16, n: usize, pipeline: usize, clients: usize) -> Result<f64, String> {
    let out = Command::new("redis-benchmark")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-t",
            "set",
            "-d",
            "128",
        ])
        .args(["-r", "1000000", "-q", "--csv"])
        .args(["-n", &n.to_string(), "-P", &pipeline.to_string()])
        .args(["-c", &clients.to_string()])
        .output()
        .map_err(|e| format!("cannot run redis-benchmark: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    // CSV: "test","rps",...; the data line starts with "SET".
    text.lines()
        .find(|l| l.starts_with("\"SET\""))
        .and_then(|l| l.split(',').nth(1))
        .and_then(|v| v.trim_matches('"').parse().ok())
        .ok_or_else(|| format!("unexpected redis-benchmark output: {text}"))
}

/// CPU seconds the server has used so far (user + system), from `INFO cpu`.
fn server_cpu(server: &RedisServer) -> Result<f64, String> {
    let info = server.cli(&["INFO", "cpu"])?;
    let field = |name: &str| -> Result<f64, String> {
        info.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .ok_or_else(|| format!("no {name} in INFO cpu: {info}"))
    };
    Ok(field("used_cpu_user:")? + field("used_cpu_sys:")?)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200_000);
    let durable = 5000;
    let server = RedisServer::start()?;
    let url = server.url();
    let port = server.port();

    let cpu = server_cpu(&server)?;
    let raw_p64 = redis_benchmark(port, n, 64, 1)?;
    let set_cpu = server_cpu(&server)? - cpu;
    let raw_p1 = redis_benchmark(port, durable, 1, 1)?;
    server.cli(&["FLUSHALL"])?;

    let v = Bytes::from(vec![b'b'; 128]);
    let store = Store::builder(RedisBackend::open(&url).await?)
        .flush_policy(BufferedFlush::default())
        .sweep_interval(None)
        .build()
        .await?;
    let cpu = server_cpu(&server)?;
    let t = Instant::now();
    for i in 0..n {
        store.set(&format!("key-{i:08}"), v.clone()).await?;
    }
    store.flush().await?;
    let buffered = rate(n, t);
    let store_cpu = server_cpu(&server)? - cpu;
    store.close().await?;

    let store = Store::builder(RedisBackend::open(&url).await?)
        .flush_policy(FlushPolicy::Immediate)
        .sweep_interval(None)
        .build()
        .await?;
    let store = store
        .with_space(nadb::Space::new("bench", "durable")?)
        .await?;
    let t = Instant::now();
    for i in 0..durable {
        store.set(&format!("d{i}"), v.clone()).await?;
    }
    let immediate = rate(durable, t);
    store.close().await?;

    // The client stack alone: one SET per round trip over a multiplexed connection (the
    // backend's `ConnectionManager` wraps one), on the same runtime.
    let mut conn = redis::Client::open(url.as_str())?
        .get_multiplexed_async_connection()
        .await?;
    let t = Instant::now();
    for i in 0..durable {
        redis::cmd("SET")
            .arg(format!("r{i}"))
            .arg(&v[..])
            .query_async::<()>(&mut conn)
            .await?;
    }
    let client_p1 = rate(durable, t);

    let store = Store::builder(RedisBackend::open(&url).await?)
        .flush_policy(BufferedFlush::default())
        .sweep_interval(None)
        .build()
        .await?;
    let store = store.with_space(nadb::Space::new("bench", "tags")?).await?;
    let tagged = SetOptions::new().tags(["hot"]);
    let plain = SetOptions::new().tags(["cold"]);
    for i in 0..100_000 {
        let opts = if i % 10 == 0 { &tagged } else { &plain };
        store.set_with(&format!("t{i:06}"), v.clone(), opts).await?;
    }
    store.flush().await?;
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        let page = store
            .query_by_tags(&["hot"], TagMode::All, None, 10_000)
            .await?;
        best = best.min(t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(page.items.len(), 10_000);
    }
    store.close().await?;

    println!("redis, same server, one run (128 B values):");
    println!(
        "  buffered set:  {buffered:>10.0} ops/s   redis-benchmark -P 64: {raw_p64:>10.0} ops/s   ratio {:.2}",
        buffered / raw_p64
    );
    println!(
        "  immediate set: {immediate:>10.0} ops/s   redis-benchmark -P 1:  {raw_p1:>10.0} ops/s   ratio {:.2}",
        immediate / raw_p1
    );
    println!(
        "  redis-rs SET, one per round trip: {client_p1:>7.0} ops/s   ratio to -P 1 {:.2} (the client stack without the store)",
        client_p1 / raw_p1
    );
    // A store write also keeps the key's metadata and its place in the ordered key index,
    // atomically (one script per batch): the server does more per key than for a bare SET.
    let (store_us, set_us) = (store_cpu / n as f64 * 1e6, set_cpu / n as f64 * 1e6);
    println!(
        "  server CPU per buffered key: store {store_us:.2} us, redis-benchmark SET {set_us:.2} us ({:.1}x)",
        store_us / set_us
    );
    println!("  tag query returning 10k of 100k keys: {best:.1} ms (best of 5)");
    Ok(())
}
