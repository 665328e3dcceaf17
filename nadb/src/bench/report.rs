//! [`Report`]: a run's figures, the machine they were taken on, and the three ways it is
//! written: JSON (to compare runs by program), a markdown table and an SVG chart.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{BenchError, Config, Mode, Unit, Workload};

/// The machine a report was measured on, as far as the process can tell.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// The CPU model (`/proc/cpuinfo`), or `unknown`.
    pub cpu: String,
    /// Threads the process may run in parallel.
    pub cores: usize,
    /// Total memory in GiB (`/proc/meminfo`), 0 when unknown.
    pub memory_gib: f64,
    /// Operating system and kernel release.
    pub os: String,
    /// `release` or `debug`: figures from a debug build say little.
    pub build: String,
}

fn proc_field(path: &str, field: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
}

impl Machine {
    /// Describes the machine this process runs on.
    ///
    /// ```
    /// assert!(nadb::bench::Machine::detect().cores >= 1);
    /// ```
    pub fn detect() -> Machine {
        let memory_gib = proc_field("/proc/meminfo", "MemTotal")
            .and_then(|v| v.trim_end_matches("kB").trim().parse::<f64>().ok())
            .map(|kib| (kib / (1024.0 * 1024.0) * 10.0).round() / 10.0)
            .unwrap_or(0.0);
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| format!(" {}", s.trim()))
            .unwrap_or_default();
        Machine {
            cpu: proc_field("/proc/cpuinfo", "model name").unwrap_or_else(|| "unknown".into()),
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            memory_gib,
            os: format!("{}{kernel}", std::env::consts::OS),
            build: if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            }
            .into(),
        }
    }
}

impl std::fmt::Display for Machine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}, {} threads, {} GiB, {}, {} build",
            self.cpu, self.cores, self.memory_gib, self.os, self.build
        )
    }
}

/// A baseline's figure for the same workload, and how nadb compares with it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BaselineFigure {
    /// The baseline's name.
    pub name: String,
    /// Its figure, in the row's unit.
    pub value: f64,
    /// nadb's speed over the baseline's: above 1, nadb is faster.
    pub ratio: f64,
}

/// One workload in one mode on one backend.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// The workload.
    pub workload: Workload,
    /// Its title with the run's sizes.
    pub title: String,
    /// The target's name, e.g. `fs`.
    pub backend: String,
    /// The store's mode.
    pub mode: Mode,
    /// What `value` measures.
    pub unit: Unit,
    /// nadb's figure.
    pub value: f64,
    /// Operations timed.
    pub ops: u64,
    /// The baselines' figures (none for a tag query, which they do not have).
    pub baselines: Vec<BaselineFigure>,
}

/// nadb's speed over the baseline's, in either unit.
pub(crate) fn ratio(unit: Unit, nadb: f64, baseline: f64) -> f64 {
    let r = match unit {
        Unit::OpsPerSec => nadb / baseline,
        Unit::Millis => baseline / nadb,
    };
    if r.is_finite() { r } else { 0.0 }
}

/// A ratio with enough digits to tell small ones apart: `0.0043×`, `0.53×`, `516.29×`.
pub(crate) fn ratio_text(r: f64) -> String {
    if r < 0.1 {
        format!("{r:.4}×")
    } else {
        format!("{r:.2}×")
    }
}

/// A figure with its unit, short: `1.23 M ops/s`, `850 ops/s`, `4.2 ms`.
fn human(unit: Unit, v: f64) -> String {
    match unit {
        Unit::OpsPerSec if v >= 1e6 => format!("{:.2} M ops/s", v / 1e6),
        Unit::OpsPerSec if v >= 1e4 => format!("{:.0} k ops/s", v / 1e3),
        Unit::OpsPerSec if v >= 1e3 => format!("{:.1} k ops/s", v / 1e3),
        Unit::OpsPerSec => format!("{v:.0} ops/s"),
        Unit::Millis if v >= 100.0 => format!("{v:.0} ms"),
        Unit::Millis => format!("{v:.2} ms"),
    }
}

/// A run's figures. `command` is whatever the caller wants a reader to re-run.
///
/// ```
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// let config = nadb::bench::Config { keys: 100, durable_writes: 10, large_values: 1, hot_gets: 100, writers: 2 };
/// let mut report = nadb::bench::run(&config, vec![nadb::bench::Target::memory()], &()).await?;
/// report.command = "cargo run --release -p nadb-bench --bin nadb-bench-report".into();
/// let dir = tempfile::tempdir().unwrap();
/// let files = report.write_to(dir.path())?;
/// assert_eq!(files.len(), 3);
/// let back: nadb::bench::Report = serde_json::from_slice(&std::fs::read(&files[0]).unwrap()).unwrap();
/// assert_eq!(back.rows.len(), report.rows.len());
/// # Ok::<(), nadb::bench::BenchError>(()) }).unwrap();
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Where it ran.
    pub machine: Machine,
    /// The command that produced it.
    pub command: String,
    /// The sizes used.
    pub config: Config,
    /// What the reader should know that the rows do not say, e.g. a backend left out.
    #[serde(default)]
    pub notes: Vec<String>,
    /// The figures, target by target, in workload order.
    pub rows: Vec<Row>,
}

impl Report {
    /// The report as pretty-printed JSON; the markdown and SVG forms are
    /// [`to_markdown`](Report::to_markdown) and [`to_svg`](Report::to_svg), all three written by
    /// [`write_to`](Report::write_to) (example on [`Report`]).
    pub fn to_json(&self) -> Result<String, BenchError> {
        serde_json::to_string_pretty(self)
            .map_err(|e| BenchError::Wrong(format!("cannot serialise the report: {e}")))
    }

    /// A markdown table, one line per row and baseline, headed by the machine and command.
    pub fn to_markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "Machine: {}.  ", self.machine);
        if !self.command.is_empty() {
            let _ = writeln!(md, "Command: `{}`.  ", self.command);
        }
        for note in &self.notes {
            let _ = writeln!(md, "Note: {note}.  ");
        }
        let _ = writeln!(
            md,
            "Ratio = nadb's speed ÷ the baseline's (ops/s over ops/s, or baseline ms over nadb ms): above 1 nadb is faster.\n"
        );
        md.push_str("| workload | backend | mode | nadb | baseline | baseline figure | ratio |\n");
        md.push_str("|---|---|---|---:|---|---:|---:|\n");
        for row in &self.rows {
            let ours = human(row.unit, row.value);
            if row.baselines.is_empty() {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {ours} | — | — | — |",
                    row.title,
                    row.backend,
                    row.mode.name()
                );
            }
            for b in &row.baselines {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {ours} | {} | {} | {} |",
                    row.title,
                    row.backend,
                    row.mode.name(),
                    b.name.replace('|', "\\|"),
                    human(row.unit, b.value),
                    ratio_text(b.ratio)
                );
            }
        }
        md
    }

    /// The chart: for each row with a baseline, nadb's ratio to its first baseline.
    pub fn to_svg(&self) -> Result<String, BenchError> {
        super::chart::ratios(self)
    }

    /// Writes `report.json`, `report.md` and `chart.svg` into `dir` (created if missing)
    /// and returns their paths in that order.
    pub fn write_to(&self, dir: &Path) -> Result<Vec<PathBuf>, BenchError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| BenchError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let files = [
            ("report.json", self.to_json()?),
            ("report.md", self.to_markdown()),
            ("chart.svg", self.to_svg()?),
        ];
        let mut paths = Vec::new();
        for (name, text) in files {
            let path = dir.join(name);
            std::fs::write(&path, text).map_err(io(&path))?;
            paths.push(path);
        }
        Ok(paths)
    }
}
