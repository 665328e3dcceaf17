//! Standard benchmark workloads on every backend and flush mode, beside raw baselines
//! measured in the same run (feature `bench`, on with `cli`).
//!
//! A [`Target`] is a backend (a URL per data set) plus the [`Baseline`]s it is compared with:
//! `memory://` with a locked `HashMap`, `fs://` with an append-only file and `fdatasync`,
//! `sqlite://` with raw rusqlite, `redis://` with a raw client (pipelined loads). [`run`] measures every
//! [`Workload`] in each of its [`Mode`]s, store and baselines on the same keys and values, and
//! returns a [`Report`] that writes itself as JSON, a markdown table and an SVG chart.
//! `nadb bench` runs [`Config::quick`]; the `nadb-bench-report` binary of the workspace runs
//! [`Config::full`] with redb as a second baseline for `fs://`.
//!
//! Each figure is one timed pass on a fresh data set (a tag query: the best of five; hot gets:
//! after one warm-up pass); opening and closing stores and baselines is timed only where a
//! reopen is the workload. Compare ratios within one report, not figures across machines.
//!
//! ```
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! use nadb::bench::{run, Config, Target};
//!
//! let config = Config { keys: 200, durable_writes: 20, large_values: 2, hot_gets: 500, writers: 4 };
//! let report = run(&config, vec![Target::memory()], &()).await?;
//! let markdown = report.to_markdown();
//! assert!(markdown.contains("| get hot"));
//! assert!(report.to_svg()?.starts_with("<svg"));
//! # Ok::<(), nadb::bench::BenchError>(()) }).unwrap();
//! ```

mod baseline;
mod chart;
mod report;
mod workload;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[cfg(unix)]
pub use baseline::LogBaseline;
#[cfg(feature = "redis")]
pub use baseline::RedisBaseline;
#[cfg(feature = "sqlite")]
pub use baseline::SqliteBaseline;
pub use baseline::{Baseline, MapBaseline, in_threads};
pub use report::{BaselineFigure, Machine, Report, Row};
pub use workload::{Mode, Unit, Workload};

use crate::BoxError;
use crate::progress::Progress;

/// Sizes of the workloads.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// Keys written by `set` and loaded for the read, tag-query and reopen workloads.
    pub keys: usize,
    /// Writes in each durable-set workload.
    pub durable_writes: usize,
    /// 64 KiB values written by each large-value workload.
    pub large_values: usize,
    /// Reads in the hot-get workload.
    pub hot_gets: usize,
    /// Concurrent writers in the many-writer durable workload.
    pub writers: usize,
}

impl Config {
    /// Every size in proportion to `keys`: `keys / 50` durable writes (at least 20),
    /// `keys / 300` large values (at least 2), `2 × keys` hot reads, 16 writers.
    ///
    /// ```
    /// let c = nadb::bench::Config::sized(300);
    /// assert_eq!((c.keys, c.durable_writes, c.large_values, c.hot_gets), (300, 20, 2, 600));
    /// ```
    pub fn sized(keys: usize) -> Config {
        Config {
            keys,
            durable_writes: (keys / 50).max(20),
            large_values: (keys / 300).max(2),
            hot_gets: keys.saturating_mul(2),
            writers: 16,
        }
    }

    /// The full run behind the README's table: [`sized`](Config::sized)`(100_000)`.
    ///
    /// ```
    /// assert_eq!(nadb::bench::Config::full().keys, 100_000);
    /// ```
    pub fn full() -> Config {
        Config::sized(100_000)
    }

    /// A run of seconds per backend, what `nadb bench` does by default:
    /// [`sized`](Config::sized)`(10_000)`.
    ///
    /// ```
    /// assert!(nadb::bench::Config::quick().keys < nadb::bench::Config::full().keys);
    /// ```
    pub fn quick() -> Config {
        Config::sized(10_000)
    }
}

/// Why a benchmark run failed.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The store under test failed.
    #[error(transparent)]
    Store(#[from] crate::Error),
    /// A baseline failed.
    #[error("baseline {name} failed: {source}")]
    Baseline {
        /// The baseline's name.
        name: String,
        /// What went wrong.
        source: BoxError,
    },
    /// A workload read back something other than what it wrote.
    #[error("wrong result: {0}")]
    Wrong(String),
    /// A size in the [`Config`] is zero.
    #[error("invalid benchmark configuration: {0}")]
    Config(String),
    /// A report file or temporary directory could not be written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Drawing the chart failed.
    #[error("cannot draw the chart: {0}")]
    Chart(String),
}

type UrlFor = Box<dyn Fn(&str) -> String + Send + Sync>;

/// A backend under test: the URL of a fresh store for each data set, and the baselines it
/// is compared with.
pub struct Target {
    name: String,
    url_for: UrlFor,
    baselines: Vec<Box<dyn Baseline>>,
    // Kept so the stores' files live exactly as long as the target.
    _dir: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("name", &self.name)
            .field(
                "baselines",
                &self.baselines.iter().map(|b| b.name()).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

#[cfg(any(feature = "fs", feature = "sqlite"))]
fn temp_dir() -> Result<tempfile::TempDir, BenchError> {
    tempfile::Builder::new()
        .prefix("nadb-bench-")
        .tempdir()
        .map_err(|source| BenchError::Io {
            path: std::env::temp_dir(),
            source,
        })
}

/// A new temporary directory, its path, and its `raw` subdirectory for a baseline's files.
#[cfg(any(feature = "fs", feature = "sqlite"))]
fn temp_dir_with_raw() -> Result<(tempfile::TempDir, PathBuf, PathBuf), BenchError> {
    let dir = temp_dir()?;
    let root = dir.path().to_path_buf();
    let raw = root.join("raw");
    std::fs::create_dir(&raw).map_err(|source| BenchError::Io {
        path: raw.clone(),
        source,
    })?;
    Ok((dir, root, raw))
}

impl Target {
    /// A target named `name` whose data set `set` lives at `url_for(set)`; every URL must
    /// name a fresh, empty store.
    ///
    /// ```
    /// let t = nadb::bench::Target::new("memory", |_| "memory://".to_string());
    /// assert_eq!(t.name(), "memory");
    /// ```
    pub fn new(
        name: impl Into<String>,
        url_for: impl Fn(&str) -> String + Send + Sync + 'static,
    ) -> Target {
        Target {
            name: name.into(),
            url_for: Box::new(url_for),
            baselines: Vec::new(),
            _dir: None,
        }
    }

    /// Adds a baseline; the first one added is the chart's.
    ///
    /// ```
    /// use nadb::bench::{MapBaseline, Target};
    /// let t = Target::new("memory", |_| "memory://".into()).with_baseline(MapBaseline::default());
    /// assert_eq!(t.baseline_names(), ["RwLock<HashMap>"]);
    /// ```
    pub fn with_baseline(mut self, baseline: impl Baseline + 'static) -> Target {
        self.baselines.push(Box::new(baseline));
        self
    }

    /// The target's name in reports.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The names of its baselines, in order.
    pub fn baseline_names(&self) -> Vec<String> {
        self.baselines.iter().map(|b| b.name()).collect()
    }

    /// `memory://` beside `RwLock<HashMap>`.
    ///
    /// ```
    /// assert_eq!(nadb::bench::Target::memory().name(), "memory");
    /// ```
    pub fn memory() -> Target {
        Target::new("memory", |_| "memory://".to_string()).with_baseline(MapBaseline::default())
    }

    /// `fs://` in a new temporary directory (removed with the target) beside an append-only
    /// file with `fdatasync`.
    ///
    /// ```
    /// assert_eq!(nadb::bench::Target::fs()?.name(), "fs");
    /// # Ok::<(), nadb::bench::BenchError>(())
    /// ```
    #[cfg(all(feature = "fs", unix))]
    pub fn fs() -> Result<Target, BenchError> {
        let (dir, root, raw) = temp_dir_with_raw()?;
        let mut target = Target::new("fs", move |set| {
            format!("fs://{}", root.join(set).display())
        })
        .with_baseline(LogBaseline::new(raw));
        target._dir = Some(dir);
        Ok(target)
    }

    /// `sqlite://` files in a new temporary directory (removed with the target) beside raw
    /// rusqlite.
    ///
    /// ```
    /// assert_eq!(nadb::bench::Target::sqlite()?.name(), "sqlite");
    /// # Ok::<(), nadb::bench::BenchError>(())
    /// ```
    #[cfg(feature = "sqlite")]
    pub fn sqlite() -> Result<Target, BenchError> {
        let (dir, root, raw) = temp_dir_with_raw()?;
        let mut target = Target::new("sqlite", move |set| {
            format!("sqlite://{}", root.join(format!("{set}.db")).display())
        })
        .with_baseline(SqliteBaseline::new(raw));
        target._dir = Some(dir);
        Ok(target)
    }

    /// A standalone Redis server at `url` (`redis://HOST:PORT/DB`, no query) beside a raw
    /// client. Everything goes under a prefix unique to this run, `nadb-bench-` and 16 random
    /// hex digits (stores rooted at `PREFIX-SET`, raw keys at `PREFIX:raw:`), and is unlinked
    /// when the run ends — nothing else on the server is touched.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), nadb::bench::BenchError> {
    /// let target = nadb::bench::Target::redis("redis://127.0.0.1:6379/0").await?;
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "redis")]
    pub async fn redis(url: &str) -> Result<Target, BenchError> {
        if url.contains('?') {
            return Err(BenchError::Store(crate::Error::InvalidUrl {
                url: crate::error::redact_url(url),
                reason: "the benchmark picks its own prefix; pass the URL without a query".into(),
            }));
        }
        use std::hash::{BuildHasher, Hasher};
        // A random nonce (std's per-map random keys), so runs sharing a server never meet;
        // short enough that the longest data-set name still fits a 64-character root.
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        let prefix = format!("nadb-bench-{:016x}", h.finish());
        let raw = RedisBaseline::connect(url, &prefix)
            .await
            .map_err(|source| BenchError::Baseline {
                name: "raw redis client".into(),
                source,
            })?;
        let base = url.to_string();
        Ok(
            Target::new("redis", move |set| format!("{base}?prefix={prefix}-{set}"))
                .with_baseline(raw),
        )
    }
}

/// Runs every workload in each of its modes on every target, reporting one step per
/// (target, workload, mode) to `progress`. A mode a backend rejects with a configuration error
/// and a workload that needs persistence on a backend without it are left out of the report.
/// Baselines' [`cleanup`](Baseline::cleanup) runs at the end, also after a failure.
///
/// ```
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// use nadb::bench::{run, Config, Target, Workload};
///
/// let report = run(&Config::sized(200), vec![Target::sqlite()?], &()).await?;
/// let reopen = report.rows.iter().find(|r| r.workload == Workload::Reopen).unwrap();
/// assert_eq!(reopen.baselines[0].name, "raw rusqlite");
/// # Ok::<(), nadb::bench::BenchError>(()) }).unwrap();
/// ```
pub async fn run(
    config: &Config,
    mut targets: Vec<Target>,
    progress: &dyn Progress,
) -> Result<Report, BenchError> {
    for (name, n) in [
        ("keys", config.keys),
        ("durable_writes", config.durable_writes),
        ("large_values", config.large_values),
        ("hot_gets", config.hot_gets),
        ("writers", config.writers),
    ] {
        if n == 0 {
            return Err(BenchError::Config(format!("{name} must be at least 1")));
        }
    }
    let data = workload::Data::new(config);
    let steps: usize = Workload::ALL.iter().map(|w| w.modes().len()).sum();
    let mut rows = Vec::new();
    let mut outcome = Ok(());
    for target in &mut targets {
        progress.begin(&target.name, Some(steps as u64));
        outcome = run_target(config, target, &data, progress, &mut rows).await;
        progress.finish();
        if outcome.is_err() {
            break;
        }
    }
    for target in &mut targets {
        for b in &mut target.baselines {
            let name = b.name();
            let cleaned = b
                .cleanup()
                .await
                .map_err(|source| BenchError::Baseline { name, source });
            if outcome.is_ok() {
                outcome = cleaned;
            }
        }
    }
    outcome?;
    Ok(Report {
        machine: Machine::detect(),
        command: String::new(),
        config: config.clone(),
        notes: Vec::new(),
        rows,
    })
}

async fn run_target(
    config: &Config,
    target: &mut Target,
    data: &workload::Data,
    progress: &dyn Progress,
    rows: &mut Vec<Row>,
) -> Result<(), BenchError> {
    for w in Workload::ALL {
        for &mode in w.modes() {
            progress.advance(1);
            let url = (target.url_for)(&format!("{}_{}", w.slug(), mode.name()));
            let timed = match workload::store_side(w, mode, &url, data, config).await {
                Ok(Some(timed)) => timed,
                Ok(None) | Err(BenchError::Store(crate::Error::Config { .. })) => continue,
                Err(e) => return Err(e),
            };
            let unit = w.unit();
            let value = timed.value(unit);
            let mut baselines = Vec::new();
            for b in &mut target.baselines {
                if let Some(t) = workload::baseline_side(w, mode, b.as_mut(), data, config).await? {
                    let base = t.value(unit);
                    baselines.push(BaselineFigure {
                        name: b.name(),
                        value: base,
                        ratio: report::ratio(unit, value, base),
                    });
                }
            }
            rows.push(Row {
                workload: w,
                title: w.title(config),
                backend: target.name.clone(),
                mode,
                unit,
                value,
                ops: timed.ops,
                baselines,
            });
        }
    }
    Ok(())
}
