//! The filesystem backend beside raw baselines, in one process: durable single and
//! concurrent writers vs a raw append + fdatasync loop (one record, and sixteen, per sync),
//! buffered bulk load vs raw rusqlite, a plain log and a bare index, reopen time and random
//! reads over 1M keys (memory-mapped and with `pread`). Each figure is the median of
//! several rounds, printed with their range: one run on a shared disk moves by a third.
//!
//! Run with `cargo run --release -p nadb-bench --bin nadb-bench-fs [-- KEYS]` (default 1M keys).

use std::fs::OpenOptions;
use std::hint::black_box;
use std::io::Write;
use std::time::Instant;

use bytes::Bytes;
use nadb::bench::{Baseline, LogBaseline, MapBaseline, SqliteBaseline};
use nadb::fs::{FsBackend, FsOptions};
use nadb::{BufferedFlush, FlushPolicy, StorageBackend, Store};
use nadb_bench::{bench_error, median};

fn rate(n: usize, t: Instant) -> f64 {
    n as f64 / t.elapsed().as_secs_f64()
}

/// `n` records appended `group` at a time, one write and one `fdatasync` per group: with
/// `group` > 1, what this disk gives a group commit of that many writers that has no other
/// work (no framing, no wake-ups).
fn raw_append_fdatasync(
    dir: &std::path::Path,
    n: usize,
    group: usize,
    value: &[u8],
) -> std::io::Result<f64> {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("raw.log"))?;
    let mut buf = Vec::with_capacity(group * (8 + value.len()));
    let t = Instant::now();
    for first in (0..n).step_by(group) {
        buf.clear();
        for i in first..(first + group).min(n) {
            buf.extend_from_slice(&(i as u64).to_le_bytes());
            buf.extend_from_slice(value);
        }
        f.write_all(&buf)?;
        f.sync_data()?;
    }
    Ok(rate(n, t))
}

async fn durable(
    dir: &std::path::Path,
    writers: usize,
    per: usize,
    value: Bytes,
) -> nadb::Result<f64> {
    let store = Store::builder(FsBackend::open(dir).await?)
        .flush_policy(FlushPolicy::Immediate)
        .sweep_interval(None)
        .build()
        .await?;
    let t = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let s = store.clone();
        let v = value.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..per {
                s.set(&format!("w{w}-{i}"), v.clone()).await?;
            }
            Ok::<_, nadb::Error>(())
        }));
    }
    for t in tasks {
        t.await.map_err(bench_error)??;
    }
    let r = rate(writers * per, t);
    store.close().await?;
    Ok(r)
}

/// Loads `items` into a fresh data set of `baseline`; returns ops/s.
async fn baseline_load(
    mut baseline: impl Baseline,
    items: &[(String, Bytes)],
) -> nadb::Result<f64> {
    baseline.open("bulk").await.map_err(bench_error)?;
    let t = Instant::now();
    baseline.load("bulk", items).await.map_err(bench_error)?;
    let r = rate(items.len(), t);
    baseline.close("bulk").await.map_err(bench_error)?;
    Ok(r)
}

/// Rounds of each durable measurement.
const ROUNDS: usize = 5;
/// Bulk loads of all keys (each into a new directory), and reopens of the last one.
const BULK_ROUNDS: usize = 3;

/// The lowest and highest of `v`, scaled, as "a–b" with `decimals` and `unit`.
fn spread(v: &[f64], scale: f64, decimals: usize, unit: &str) -> String {
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min) * scale;
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max) * scale;
    format!("{lo:.decimals$}–{hi:.decimals$}{unit}")
}

/// Random gets over `names` in the store at `dir`, after as many untimed ones (so a mapping
/// is measured once its pages are in place, as in a long-running store).
async fn random_gets(
    dir: &std::path::Path,
    names: &[String],
    mmap_reads: bool,
    x: &mut u64,
) -> nadb::Result<f64> {
    let opts = FsOptions {
        mmap_reads,
        ..FsOptions::default()
    };
    let store = Store::builder(FsBackend::open_with(dir, opts).await?)
        .sweep_interval(None)
        .build()
        .await?;
    let n = 200_000;
    let mut t = Instant::now();
    for round in 0..2 {
        if round == 1 {
            t = Instant::now();
        }
        for _ in 0..n {
            *x ^= *x << 13;
            *x ^= *x >> 7;
            *x ^= *x << 17;
            black_box(
                store
                    .get(&names[(*x % names.len() as u64) as usize])
                    .await?,
            );
        }
    }
    let r = rate(n, t);
    store.close().await?;
    Ok(r)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> nadb::Result<()> {
    let keys: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let tmp = |name: &str| {
        let d = std::env::temp_dir().join(format!("nadb-bench-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).map(|_| d).map_err(bench_error)
    };
    let v128 = Bytes::from(vec![b'v'; 128]);

    // Durable rounds alternate raw loop, one writer and sixteen, so each ratio compares runs
    // made under the same disk conditions; the figures are medians over the rounds.
    let (mut raws, mut ones, mut sixteens) = (Vec::new(), Vec::new(), Vec::new());
    let (mut raw_groups, mut raw_group_x) = (Vec::new(), Vec::new());
    let (mut of_raw, mut group) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let raw = raw_append_fdatasync(&tmp("raw")?, 2000, 1, &v128).map_err(bench_error)?;
        let one = durable(&tmp("one")?, 1, 2000, v128.clone()).await?;
        let sixteen = durable(&tmp("sixteen")?, 16, 500, v128.clone()).await?;
        let raw_group =
            raw_append_fdatasync(&tmp("rawgroup")?, 8000, 16, &v128).map_err(bench_error)?;
        of_raw.push(one / raw);
        group.push(sixteen / one);
        raw_group_x.push(raw_group / raw);
        raws.push(raw);
        ones.push(one);
        sixteens.push(sixteen);
        raw_groups.push(raw_group);
    }
    println!(
        "durable writes, 128-byte values (fdatasync per ack), median of {ROUNDS} alternating rounds"
    );
    println!(
        "  raw append + fdatasync loop     {:>10.0} ops/s",
        median(&raws)
    );
    println!(
        "  Store Immediate, 1 writer       {:>10.0} ops/s  ({:.0} % of raw; rounds {})",
        median(&ones),
        median(&of_raw) * 100.0,
        spread(&of_raw, 100.0, 0, " %")
    );
    println!(
        "  Store Immediate, 16 writers     {:>10.0} ops/s  ({:.1}x one writer; rounds {})",
        median(&sixteens),
        median(&group),
        spread(&group, 1.0, 1, "x")
    );
    println!(
        "  raw, 16 records per fdatasync   {:>10.0} ops/s  ({:.1}x the raw loop; rounds {}): the disk's ceiling for 16 writers",
        median(&raw_groups),
        median(&raw_group_x),
        spread(&raw_group_x, 1.0, 1, "x")
    );

    let v100 = Bytes::from(vec![b'b'; 100]);
    let names: Vec<String> = (0..keys).map(|i| format!("key-{i:08}")).collect();
    let (mut bulks, mut dir) = (Vec::new(), std::path::PathBuf::new());
    // Each load gets a directory of its own, all removed at the end: no load runs while the
    // files of an earlier one are being deleted.
    for round in 0..BULK_ROUNDS {
        dir = tmp(&format!("bulk{round}"))?;
        let store = Store::builder(FsBackend::open(&dir).await?)
            .flush_policy(BufferedFlush::default())
            .sweep_interval(None)
            .build()
            .await?;
        let t = Instant::now();
        for k in &names {
            store.set(k, v100.clone()).await?;
        }
        store.flush().await?;
        bulks.push(rate(keys, t));
        store.close().await?;
    }
    println!(
        "bulk: {keys} x 100 B buffered, then flush  {:>10.0} ops/s  (median of {BULK_ROUNDS}; rounds {})",
        median(&bulks),
        spread(&bulks, 1e-3, 0, "k")
    );
    // The same load into raw rusqlite (one transaction, WAL), which the store is measured
    // against; into a plain durable log (frames appended, an in-memory index of offsets, one
    // fdatasync); and into a map alone, with no I/O: the insert per new key of any store that
    // finds keys by name in a hash map.
    let items: Vec<(String, Bytes)> = names.iter().map(|k| (k.clone(), v100.clone())).collect();
    let (mut sqls, mut logs, mut indexes) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..BULK_ROUNDS {
        sqls.push(
            baseline_load(
                SqliteBaseline::new(tmp(&format!("sqlbulk{round}"))?),
                &items,
            )
            .await?,
        );
        logs.push(baseline_load(LogBaseline::new(tmp(&format!("logbulk{round}"))?), &items).await?);
        indexes.push(baseline_load(MapBaseline::default(), &items).await?);
    }
    let (sql, log, index) = (median(&sqls), median(&logs), median(&indexes));
    println!(
        "  raw rusqlite, one transaction (WAL)    {sql:>10.0} ops/s  (store {:.2}x of it)",
        median(&bulks) / sql
    );
    println!(
        "  append + index + one fdatasync         {log:>10.0} ops/s  ({:.2}x raw rusqlite)",
        log / sql
    );
    println!(
        "  HashMap insert of each key, no I/O   {index:>10.0} ops/s  ({:.2}x raw rusqlite)",
        index / sql
    );

    let mut reopens = Vec::new();
    for _ in 0..BULK_ROUNDS {
        let t = Instant::now();
        let backend = FsBackend::open(&dir).await?;
        reopens.push(t.elapsed().as_secs_f64());
        backend.close().await?;
    }
    println!(
        "reopen with {keys} keys (hints)          {:>10.3} s  (median of {BULK_ROUNDS}; rounds {})",
        median(&reopens),
        spread(&reopens, 1.0, 3, " s")
    );

    // Mapped reads of sealed segments against `pread`, rounds alternating, each the median of
    // five: this workload waits on memory, which a shared machine's neighbours make noisy.
    // Keys in the active (last) segment are read with `pread` either way.
    let (mut mapped, mut pread) = (Vec::new(), Vec::new());
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..5 {
        mapped.push(random_gets(&dir, &names, true, &mut x).await?);
        pread.push(random_gets(&dir, &names, false, &mut x).await?);
    }
    let (mapped, pread) = (median(&mapped), median(&pread));
    println!(
        "random get over {keys} keys               {mapped:>10.0} ops/s  ({:.2}x the same reads with pread: {pread:.0} ops/s)",
        mapped / pread
    );
    let bulk_dirs = (0..BULK_ROUNDS)
        .flat_map(|round| ["bulk", "sqlbulk", "logbulk"].map(|d| format!("{d}{round}")));
    for d in ["raw", "rawgroup", "one", "sixteen"]
        .map(String::from)
        .into_iter()
        .chain(bulk_dirs)
    {
        let _ = std::fs::remove_dir_all(
            std::env::temp_dir().join(format!("nadb-bench-{d}-{}", std::process::id())),
        );
    }
    Ok(())
}
