//! Bulk ingest with a buffered store: writes return at memory speed, the pipeline flushes in
//! large batches by op count, size or age, and `flush` makes everything durable at the end.
//! Progress (records, rate, what is still buffered) is printed as it goes.
//!
//! Run with `cargo run -p nadb-examples --example ingest`.

use std::time::{Duration, Instant};

use nadb::{FlushPolicy, SetOptions, Store};

const RECORDS: u64 = 100_000;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let backend = nadb::fs::FsBackend::open(dir.path()).await?;
    let store = Store::builder(backend)
        .flush_policy(
            FlushPolicy::buffered()
                .max_ops(20_000)
                .max_bytes(8 << 20)
                .interval(Duration::from_millis(250)),
        )
        .build()
        .await?;

    let started = Instant::now();
    let mut last_report = Instant::now();
    for i in 0..RECORDS {
        let tags = if i % 10 == 0 { vec!["sample"] } else { vec![] };
        let value = format!("{{\"id\":{i},\"reading\":{}}}", i * 7 % 1000);
        store
            .set_with(
                &format!("reading:{i:08}"),
                value,
                &SetOptions::new().tags(tags),
            )
            .await?;
        if last_report.elapsed() >= Duration::from_millis(200) || i + 1 == RECORDS {
            let done = i + 1;
            let rate = done as f64 / started.elapsed().as_secs_f64();
            let p = store.stats().await?.pipeline;
            println!(
                "{done:>7}/{RECORDS} records  {rate:>9.0}/s  buffered {:>6} ops  flushes {:>3}",
                p.pending_ops, p.flushes
            );
            last_report = Instant::now();
        }
    }
    let acknowledged = started.elapsed();
    store.flush().await?;
    let durable = started.elapsed();
    println!(
        "{RECORDS} writes acknowledged in {:.2} s, durable after {:.2} s",
        acknowledged.as_secs_f64(),
        durable.as_secs_f64()
    );

    let stats = store.stats().await?;
    println!(
        "{} live keys, {} flush rounds, {} writes coalesced",
        stats.live_keys, stats.pipeline.flushes, stats.pipeline.ops_coalesced
    );
    assert_eq!(store.len().await?, RECORDS);
    assert_eq!(store.list_tags().await?["sample"], RECORDS / 10);
    store.close().await?;
    Ok(())
}
