//! The filesystem backend beside redb, same machine, same run: durable individual writes,
//! a bulk load of N keys, random reads. redb is a dev-dependency of this crate only.
//!
//! Run with `cargo run --release -p nadb-bench --example fs_vs_redb [-- N]` (default 1M).

use std::hint::black_box;
use std::time::Instant;

use bytes::Bytes;
use nadb::fs::FsBackend;
use nadb::{BufferedFlush, FlushPolicy, Store};
use redb::{Database, ReadableDatabase, TableDefinition};

const TABLE: TableDefinition<&str, &[u8]> = TableDefinition::new("kv");

fn rate(n: usize, t: Instant) -> f64 {
    n as f64 / t.elapsed().as_secs_f64()
}

fn next(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

fn redb_run(
    dir: &std::path::Path,
    names: &[String],
    durable: usize,
) -> Result<(f64, f64, f64), redb::Error> {
    let db = Database::create(dir.join("bench.redb"))?;
    let v128 = vec![b'v'; 128];
    let t = Instant::now();
    for i in 0..durable {
        let tx = db.begin_write()?;
        tx.open_table(TABLE)?
            .insert(format!("d{i}").as_str(), v128.as_slice())?;
        tx.commit()?;
    }
    let durable_rate = rate(durable, t);
    let v100 = vec![b'b'; 100];
    let t = Instant::now();
    let tx = db.begin_write()?;
    {
        let mut table = tx.open_table(TABLE)?;
        for k in names {
            table.insert(k.as_str(), v100.as_slice())?;
        }
    }
    tx.commit()?;
    let bulk = rate(names.len(), t);
    let rx = db.begin_read()?;
    let table = rx.open_table(TABLE)?;
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let n = 500_000;
    let t = Instant::now();
    for _ in 0..n {
        let k = &names[(next(&mut x) % names.len() as u64) as usize];
        black_box(table.get(k.as_str())?.map(|v| v.value().len()));
    }
    Ok((durable_rate, bulk, rate(n, t)))
}

async fn nadb_run(
    dir: &std::path::Path,
    names: &[String],
    durable: usize,
) -> nadb::Result<(f64, f64, f64)> {
    let store = Store::builder(FsBackend::open(dir.join("durable")).await?)
        .flush_policy(FlushPolicy::Immediate)
        .sweep_interval(None)
        .build()
        .await?;
    let v128 = Bytes::from(vec![b'v'; 128]);
    let t = Instant::now();
    for i in 0..durable {
        store.set(&format!("d{i}"), v128.clone()).await?;
    }
    let durable_rate = rate(durable, t);
    store.close().await?;
    let store = Store::builder(FsBackend::open(dir.join("bulk")).await?)
        .flush_policy(BufferedFlush::default())
        .sweep_interval(None)
        .build()
        .await?;
    let v100 = Bytes::from(vec![b'b'; 100]);
    let t = Instant::now();
    for k in names {
        store.set(k, v100.clone()).await?;
    }
    store.flush().await?;
    let bulk = rate(names.len(), t);
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let n = 500_000;
    let t = Instant::now();
    for _ in 0..n {
        let k = &names[(next(&mut x) % names.len() as u64) as usize];
        black_box(store.get(k).await?);
    }
    let reads = rate(n, t);
    store.close().await?;
    Ok((durable_rate, bulk, reads))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let names: Vec<String> = (0..n).map(|i| format!("key-{i:08}")).collect();
    let durable = 1000;
    let a = tempfile::tempdir()?;
    let b = tempfile::tempdir()?;
    let (nd, nb, nr) = nadb_run(a.path(), &names, durable).await?;
    let (rd, rb, rr) = redb_run(b.path(), &names, durable)?;
    println!("workload                          nadb fs        redb      ratio");
    println!(
        "durable single writes (128 B) {nd:>10.0}/s {rd:>10.0}/s {:>8.2}x",
        nd / rd
    );
    println!(
        "bulk load of {n} (100 B)   {nb:>10.0}/s {rb:>10.0}/s {:>8.2}x",
        nb / rb
    );
    println!(
        "random reads                  {nr:>10.0}/s {rr:>10.0}/s {:>8.2}x",
        nr / rr
    );
    Ok(())
}
