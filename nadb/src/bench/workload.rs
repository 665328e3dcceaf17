//! The standard workloads: what each one does through a [`Store`] and through a [`Baseline`],
//! on the same keys and values.

use std::time::Instant;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{Baseline, BenchError, Config};
use crate::{BufferedFlush, FlushPolicy, SetOptions, Store, TagMode, open_backend};

/// How the store under test acknowledges writes and serves reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// [`FlushPolicy::Immediate`]: each write applied and synced before it returns.
    Immediate,
    /// [`BufferedFlush::default`]: writes acknowledged from memory, flushed in chunks.
    Buffered,
    /// Immediate writes, and every record loaded into memory at open
    /// ([`memory_first`](crate::StoreBuilder::memory_first)).
    MemoryFirst,
}

impl Mode {
    /// The name used in reports: `immediate`, `buffered`, `memory_first`.
    ///
    /// ```
    /// assert_eq!(nadb::bench::Mode::MemoryFirst.name(), "memory_first");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Mode::Immediate => "immediate",
            Mode::Buffered => "buffered",
            Mode::MemoryFirst => "memory_first",
        }
    }
}

/// What a figure measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Operations per second: higher is faster.
    OpsPerSec,
    /// Milliseconds for the whole operation: lower is faster.
    Millis,
}

/// The standard workloads, each run on every target in the modes [`Workload::modes`] lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Workload {
    /// `keys` sets of 100-byte values one call at a time, then `flush()`.
    Set,
    /// `durable_writes` sets of 128-byte values by one writer, each acknowledged durably.
    DurableSet1,
    /// The same number of durable sets spread over `writers` concurrent tasks.
    DurableSetMany,
    /// `large_values` sets of 64 KiB text (compresses well), then `flush()`.
    Set64kCompressible,
    /// `large_values` sets of 64 KiB random bytes (does not compress), then `flush()`.
    Set64kRandom,
    /// `hot_gets` reads cycling over the first 1,000 of `keys` keys (all of them when fewer),
    /// after one warm-up pass.
    GetHot,
    /// Every one of `keys` keys read once in random order, right after reopening the store
    /// (the reopen untimed).
    GetCold,
    /// `query_by_tags` for the tag that every tenth key carries, all of them in one page; the
    /// best of five queries.
    TagQuery,
    /// Opening a store that holds `keys` keys, until the first read answers.
    Reopen,
}

impl Workload {
    /// Every workload, in report order.
    pub const ALL: [Workload; 9] = [
        Workload::Set,
        Workload::DurableSet1,
        Workload::DurableSetMany,
        Workload::Set64kCompressible,
        Workload::Set64kRandom,
        Workload::GetHot,
        Workload::GetCold,
        Workload::TagQuery,
        Workload::Reopen,
    ];

    /// A short machine name, e.g. `get_hot` (also the data-set name given to baselines).
    ///
    /// ```
    /// assert_eq!(nadb::bench::Workload::GetHot.slug(), "get_hot");
    /// ```
    pub fn slug(self) -> &'static str {
        match self {
            Workload::Set => "set",
            Workload::DurableSet1 => "durable_set_1",
            Workload::DurableSetMany => "durable_set_many",
            Workload::Set64kCompressible => "set_64k_compressible",
            Workload::Set64kRandom => "set_64k_random",
            Workload::GetHot => "get_hot",
            Workload::GetCold => "get_cold",
            Workload::TagQuery => "tag_query",
            Workload::Reopen => "reopen",
        }
    }

    /// A title for tables, with the sizes of `config`.
    ///
    /// ```
    /// use nadb::bench::{Config, Workload};
    /// assert_eq!(Workload::Reopen.title(&Config::sized(500)), "reopen with 500 keys");
    /// ```
    pub fn title(self, config: &Config) -> String {
        match self {
            Workload::Set => format!("set {} × 100 B + flush", config.keys),
            Workload::DurableSet1 => {
                format!("durable set {} × 128 B, 1 writer", config.durable_writes)
            }
            Workload::DurableSetMany => format!(
                "durable set {} × 128 B, {} writers",
                config.durable_writes, config.writers
            ),
            Workload::Set64kCompressible => {
                format!("set {} × 64 KiB compressible", config.large_values)
            }
            Workload::Set64kRandom => format!("set {} × 64 KiB random", config.large_values),
            Workload::GetHot => format!(
                "get hot ({} reads of {} keys)",
                config.hot_gets,
                config.keys.min(1000)
            ),
            Workload::GetCold => format!("get cold ({} keys after reopen)", config.keys),
            Workload::TagQuery => {
                format!(
                    "tag query ({} of {} keys)",
                    tagged(config.keys),
                    config.keys
                )
            }
            Workload::Reopen => format!("reopen with {} keys", config.keys),
        }
    }

    /// The modes the workload runs in: sets in the mode that gives them meaning, reads and
    /// queries with and without `memory_first`.
    ///
    /// ```
    /// use nadb::bench::{Mode, Workload};
    /// assert_eq!(Workload::DurableSet1.modes(), [Mode::Immediate]);
    /// ```
    pub fn modes(self) -> &'static [Mode] {
        match self {
            Workload::Set => &[Mode::Buffered],
            Workload::DurableSet1 | Workload::DurableSetMany => &[Mode::Immediate],
            Workload::Set64kCompressible | Workload::Set64kRandom => {
                &[Mode::Buffered, Mode::Immediate]
            }
            // Under memory_first a reopen loads every record before the first read, so there
            // is no cold read to time: the reopen row carries that cost.
            Workload::GetCold => &[Mode::Immediate],
            Workload::GetHot | Workload::TagQuery | Workload::Reopen => {
                &[Mode::Immediate, Mode::MemoryFirst]
            }
        }
    }

    /// What the figure measures.
    ///
    /// ```
    /// use nadb::bench::{Unit, Workload};
    /// assert_eq!(Workload::TagQuery.unit(), Unit::Millis);
    /// ```
    pub fn unit(self) -> Unit {
        match self {
            Workload::TagQuery | Workload::Reopen => Unit::Millis,
            _ => Unit::OpsPerSec,
        }
    }

    /// Whether the workload needs data to survive a reopen.
    fn needs_persistence(self) -> bool {
        matches!(self, Workload::GetCold | Workload::Reopen)
    }
}

/// How many of `keys` keys the tag-query workload tags `hot`: every tenth of each chunk of
/// 1,000, starting with the first.
fn tagged(keys: usize) -> usize {
    (keys / 1000) * 100 + (keys % 1000).div_ceil(10)
}

/// Operations done and the seconds they took.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timed {
    pub(crate) ops: u64,
    pub(crate) secs: f64,
}

impl Timed {
    fn since(ops: usize, t: Instant) -> Timed {
        Timed {
            ops: ops as u64,
            secs: t.elapsed().as_secs_f64().max(1e-9),
        }
    }

    /// The figure in `unit`.
    pub(crate) fn value(self, unit: Unit) -> f64 {
        match unit {
            Unit::OpsPerSec => self.ops as f64 / self.secs,
            Unit::Millis => self.secs * 1e3,
        }
    }
}

/// The keys and values every workload draws from, built once per run.
pub(crate) struct Data {
    keys: Vec<String>,
    small: Bytes,
    /// `keys` with the small value each, built once for the baselines' loads.
    items: Vec<(String, Bytes)>,
    durable: Vec<(String, Bytes)>,
    compressible: Vec<(String, Bytes)>,
    random: Vec<(String, Bytes)>,
    hot: Vec<String>,
    shuffled: Vec<String>,
}

/// xorshift64: reproducible, dependency-free bytes and shuffles.
fn next(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

const LARGE: usize = 64 * 1024;

impl Data {
    pub(crate) fn new(config: &Config) -> Data {
        let keys: Vec<String> = (0..config.keys).map(|i| format!("key-{i:08}")).collect();
        let v128 = Bytes::from(vec![b'v'; 128]);
        let durable = (0..config.durable_writes)
            .map(|i| (format!("durable-{i:08}"), v128.clone()))
            .collect();
        let compressible = (0..config.large_values)
            .map(|i| {
                let mut text = String::with_capacity(LARGE + 64);
                let mut line = 0;
                while text.len() < LARGE {
                    text.push_str(&format!("value {i}, line {line}: the quick brown fox\n"));
                    line += 1;
                }
                text.truncate(LARGE);
                (format!("text-{i:06}"), Bytes::from(text))
            })
            .collect();
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let random = (0..config.large_values)
            .map(|i| {
                let bytes: Vec<u8> = (0..LARGE / 8)
                    .flat_map(|_| next(&mut x).to_le_bytes())
                    .collect();
                (format!("random-{i:06}"), Bytes::from(bytes))
            })
            .collect();
        let hot_set = &keys[..keys.len().min(1000)];
        let hot = (0..config.hot_gets)
            .map(|i| hot_set[i % hot_set.len()].clone())
            .collect();
        let mut shuffled = keys.clone();
        for i in (1..shuffled.len()).rev() {
            let j = (next(&mut x) % (i as u64 + 1)) as usize;
            shuffled.swap(i, j);
        }
        let small = Bytes::from(vec![b'b'; 100]);
        let items = keys.iter().map(|k| (k.clone(), small.clone())).collect();
        Data {
            keys,
            small,
            items,
            durable,
            compressible,
            random,
            hot,
            shuffled,
        }
    }

    /// The 64 KiB values of a large-value workload.
    fn large(&self, workload: Workload) -> &[(String, Bytes)] {
        if workload == Workload::Set64kRandom {
            &self.random
        } else {
            &self.compressible
        }
    }
}

async fn open(url: &str, mode: Mode) -> crate::Result<Store> {
    let builder = Store::builder(open_backend(url).await?).sweep_interval(None);
    let builder = match mode {
        Mode::Immediate => builder.flush_policy(FlushPolicy::Immediate),
        Mode::Buffered => builder.flush_policy(BufferedFlush::default()),
        Mode::MemoryFirst => builder.memory_first(true),
    };
    builder.build().await
}

/// Loads `keys` small values in batches (untimed set-up for the read workloads).
async fn load(store: &Store, data: &Data) -> crate::Result<()> {
    for chunk in data.keys.chunks(1000) {
        store
            .set_many(chunk.iter().map(|k| (k.as_str(), data.small.clone())))
            .await?;
    }
    store.flush().await
}

fn expect_found(found: usize, want: usize, what: &str) -> Result<(), BenchError> {
    if found == want {
        Ok(())
    } else {
        Err(BenchError::Wrong(format!(
            "{what}: found {found} of {want} keys"
        )))
    }
}

/// Runs `workload` through a store at `url` in `mode`, or `None` when it needs data to
/// survive a reopen and the backend keeps none.
pub(crate) async fn store_side(
    workload: Workload,
    mode: Mode,
    url: &str,
    data: &Data,
    config: &Config,
) -> Result<Option<Timed>, BenchError> {
    let store = open(url, mode).await?;
    if workload.needs_persistence() && !store.backend_info().capabilities.persistent {
        store.close().await?;
        return Ok(None);
    }
    let timed = match workload {
        Workload::Set => {
            let t = Instant::now();
            for k in &data.keys {
                store.set(k, data.small.clone()).await?;
            }
            store.flush().await?;
            Timed::since(data.keys.len(), t)
        }
        Workload::DurableSet1 => {
            let t = Instant::now();
            for (k, v) in &data.durable {
                store.set(k, v.clone()).await?;
            }
            Timed::since(data.durable.len(), t)
        }
        Workload::DurableSetMany => {
            // Each writer's share is copied before the clock starts.
            let shares: Vec<Vec<(String, Bytes)>> =
                super::baseline::share(&data.durable, config.writers)
                    .into_iter()
                    .map(|part| part.into_iter().cloned().collect())
                    .collect();
            let t = Instant::now();
            let mut tasks = tokio::task::JoinSet::new();
            for mine in shares {
                let store = store.clone();
                tasks.spawn(async move {
                    for (k, v) in mine {
                        store.set(&k, v).await?;
                    }
                    Ok::<(), crate::Error>(())
                });
            }
            while let Some(done) = tasks.join_next().await {
                done.map_err(|e| BenchError::Wrong(format!("writer task failed: {e}")))??;
            }
            Timed::since(data.durable.len(), t)
        }
        Workload::Set64kCompressible | Workload::Set64kRandom => {
            let items = data.large(workload);
            let t = Instant::now();
            for (k, v) in items {
                store.set(k, v.clone()).await?;
            }
            store.flush().await?;
            Timed::since(items.len(), t)
        }
        Workload::GetHot => {
            load(&store, data).await?;
            for k in data.hot.iter().take(1000) {
                store.get(k).await?;
            }
            let t = Instant::now();
            let mut found = 0;
            for k in &data.hot {
                found += usize::from(store.get(k).await?.is_some());
            }
            let timed = Timed::since(data.hot.len(), t);
            expect_found(found, data.hot.len(), "get hot")?;
            timed
        }
        Workload::GetCold => {
            load(&store, data).await?;
            store.close().await?;
            let store = open(url, mode).await?;
            let t = Instant::now();
            let mut found = 0;
            for k in &data.shuffled {
                found += usize::from(store.get(k).await?.is_some());
            }
            let timed = Timed::since(data.shuffled.len(), t);
            store.close().await?;
            expect_found(found, data.shuffled.len(), "get cold")?;
            return Ok(Some(timed));
        }
        Workload::TagQuery => {
            let hot = SetOptions::new().tags(["hot"]);
            let cold = SetOptions::new().tags(["cold"]);
            for chunk in data.keys.chunks(1000) {
                let (tagged, plain): (Vec<_>, Vec<_>) = chunk
                    .iter()
                    .enumerate()
                    .map(|(i, k)| (i, (k.as_str(), data.small.clone())))
                    .partition(|(i, _)| i % 10 == 0);
                store
                    .set_many_with(tagged.into_iter().map(|(_, kv)| kv), &hot)
                    .await?;
                store
                    .set_many_with(plain.into_iter().map(|(_, kv)| kv), &cold)
                    .await?;
            }
            store.flush().await?;
            let want = tagged(data.keys.len());
            let limit = want.max(1);
            // The best of five: a query's cost, not the first call's warm-up.
            let mut best: Option<Timed> = None;
            for _ in 0..5 {
                let t = Instant::now();
                let page = store
                    .query_by_tags(&["hot"], TagMode::All, None, limit)
                    .await?;
                let timed = Timed::since(1, t);
                expect_found(page.items.len(), want, "tag query")?;
                if best.is_none_or(|b| timed.secs < b.secs) {
                    best = Some(timed);
                }
            }
            best.unwrap_or(Timed { ops: 1, secs: 0.0 })
        }
        Workload::Reopen => {
            load(&store, data).await?;
            store.close().await?;
            let first = data.keys.first().map(String::as_str).unwrap_or("key");
            let t = Instant::now();
            let store = open(url, mode).await?;
            let found = store.get(first).await?.is_some();
            let timed = Timed::since(1, t);
            store.close().await?;
            expect_found(usize::from(found), 1, "reopen")?;
            return Ok(Some(timed));
        }
    };
    store.close().await?;
    Ok(Some(timed))
}

/// Runs `workload` through a baseline, or `None` when it has no counterpart there (a tag
/// query, a reopen of something that does not persist). Opening and closing the baseline's
/// data set stay outside the clock, except the open a reopen measures.
pub(crate) async fn baseline_side(
    workload: Workload,
    mode: Mode,
    baseline: &mut dyn Baseline,
    data: &Data,
    config: &Config,
) -> Result<Option<Timed>, BenchError> {
    if workload == Workload::TagQuery {
        return Ok(None);
    }
    let set = format!("{}_{}", workload.slug(), mode.name());
    let name = baseline.name();
    let err = |source| BenchError::Baseline {
        name: name.clone(),
        source,
    };
    baseline.open(&set).await.map_err(err)?;
    let timed = match workload {
        Workload::Set => {
            let items = &data.items;
            let t = Instant::now();
            baseline.load(&set, items).await.map_err(err)?;
            Some(Timed::since(items.len(), t))
        }
        Workload::DurableSet1 => {
            let t = Instant::now();
            baseline
                .put_durable(&set, &data.durable)
                .await
                .map_err(err)?;
            Some(Timed::since(data.durable.len(), t))
        }
        Workload::DurableSetMany => {
            let t = Instant::now();
            baseline
                .put_durable_concurrent(&set, &data.durable, config.writers)
                .await
                .map_err(err)?;
            Some(Timed::since(data.durable.len(), t))
        }
        Workload::Set64kCompressible | Workload::Set64kRandom => {
            let items = data.large(workload);
            let t = Instant::now();
            if mode == Mode::Immediate {
                baseline.put_durable(&set, items).await.map_err(err)?;
            } else {
                baseline.load(&set, items).await.map_err(err)?;
            }
            Some(Timed::since(items.len(), t))
        }
        Workload::GetHot => {
            baseline.load(&set, &data.items).await.map_err(err)?;
            baseline
                .get_all(&set, &data.hot[..data.hot.len().min(1000)])
                .await
                .map_err(err)?;
            let t = Instant::now();
            let found = baseline.get_all(&set, &data.hot).await.map_err(err)?;
            let timed = Timed::since(data.hot.len(), t);
            expect_found(found as usize, data.hot.len(), "baseline get hot")?;
            Some(timed)
        }
        Workload::GetCold | Workload::Reopen => {
            baseline.load(&set, &data.items).await.map_err(err)?;
            if baseline.close(&set).await.map_err(err)? {
                let t = Instant::now();
                baseline.open(&set).await.map_err(err)?;
                let timed = if workload == Workload::Reopen {
                    let first = &data.keys[..data.keys.len().min(1)];
                    let found = baseline.get_all(&set, first).await.map_err(err)?;
                    expect_found(found as usize, first.len(), "baseline reopen")?;
                    Timed::since(1, t)
                } else {
                    let t = Instant::now();
                    let found = baseline.get_all(&set, &data.shuffled).await.map_err(err)?;
                    let timed = Timed::since(data.shuffled.len(), t);
                    expect_found(found as usize, data.shuffled.len(), "baseline get cold")?;
                    timed
                };
                Some(timed)
            } else {
                None
            }
        }
        Workload::TagQuery => None,
    };
    baseline.close(&set).await.map_err(err)?;
    Ok(timed)
}
