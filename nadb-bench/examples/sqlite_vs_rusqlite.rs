//! The SQLite backend beside raw rusqlite on the same machine, same run: bulk load, durable
//! single writes, and a tag query returning 10k of 100k keys.
//!
//! Run with `cargo run --release -p nadb-bench --example sqlite_vs_rusqlite [-- N]` (default 200k).

use std::time::Instant;

use bytes::Bytes;
use nadb::sqlite::SqliteBackend;
use nadb::{BufferedFlush, FlushPolicy, SetOptions, Store, TagMode};
use rusqlite::{Connection, params};

fn rate(n: usize, t: Instant) -> f64 {
    n as f64 / t.elapsed().as_secs_f64()
}

fn raw(path: &std::path::Path, n: usize, durable: usize) -> rusqlite::Result<(f64, f64)> {
    let mut c = Connection::open(path)?;
    c.pragma_update(None, "journal_mode", "WAL")?;
    c.execute_batch("CREATE TABLE kv (k TEXT PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID")?;
    let v = [b'b'; 100];
    let t = Instant::now();
    let tx = c.transaction()?;
    {
        let mut st = tx.prepare("INSERT OR REPLACE INTO kv (k, v) VALUES (?1, ?2)")?;
        for i in 0..n {
            st.execute(params![format!("key-{i:08}"), &v[..]])?;
        }
    }
    tx.commit()?;
    let bulk = rate(n, t);
    c.pragma_update(None, "synchronous", "FULL")?;
    let v128 = [b'v'; 128];
    let t = Instant::now();
    for i in 0..durable {
        let tx = c.transaction()?;
        tx.execute(
            "INSERT OR REPLACE INTO kv (k, v) VALUES (?1, ?2)",
            params![format!("d{i}"), &v128[..]],
        )?;
        tx.commit()?;
    }
    Ok((bulk, rate(durable, t)))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200_000);
    let durable = 1000;
    let dir = tempfile::tempdir()?;
    let (raw_bulk, raw_durable) = raw(&dir.path().join("raw.db"), n, durable)?;

    let store = Store::builder(SqliteBackend::open(dir.path().join("bulk.db")).await?)
        .flush_policy(BufferedFlush::default())
        .sweep_interval(None)
        .build()
        .await?;
    let v = Bytes::from(vec![b'b'; 100]);
    let t = Instant::now();
    for i in 0..n {
        store.set(&format!("key-{i:08}"), v.clone()).await?;
    }
    store.flush().await?;
    let bulk = rate(n, t);
    store.close().await?;

    let store = Store::builder(SqliteBackend::open(dir.path().join("durable.db")).await?)
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

    let store = Store::builder(SqliteBackend::open(dir.path().join("tags.db")).await?)
        .flush_policy(BufferedFlush::default())
        .sweep_interval(None)
        .build()
        .await?;
    for i in 0..100_000 {
        let tag = if i % 10 == 0 { "hot" } else { "cold" };
        store
            .set_with(&format!("t{i:06}"), "x", &SetOptions::new().tags([tag]))
            .await?;
    }
    store.flush().await?;
    let t = Instant::now();
    let page = store
        .query_by_tags(&["hot"], TagMode::All, None, 10_000)
        .await?;
    let tag_ms = t.elapsed().as_secs_f64() * 1e3;
    assert_eq!(page.items.len(), 10_000);
    store.close().await?;

    println!("workload                               nadb sqlite   raw rusqlite    ratio");
    println!(
        "bulk {n} x 100 B (buffered vs 1 txn) {bulk:>10.0}/s {raw_bulk:>12.0}/s {:>7.0} %",
        bulk / raw_bulk * 100.0
    );
    println!(
        "durable single writes (FULL)          {durable_rate:>10.0}/s {raw_durable:>12.0}/s {:>7.0} %",
        durable_rate / raw_durable * 100.0
    );
    println!("tag query, 10k of 100k keys            {tag_ms:>8.1} ms");
    Ok(())
}
