//! The command line: global options and one variant per command. A new command is a variant
//! here and an arm in `dispatch` (`mod.rs`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// `nadb`: inspect and manage a nadb store from the shell.
#[derive(Debug, Parser)]
#[command(
    name = "nadb",
    version,
    about = "Inspect and manage a nadb key-value store",
    after_help = "Exit codes: 0 ok, 1 key not found, 2 usage error, 3 any other failure."
)]
pub(crate) struct Cli {
    /// The store to open, e.g. fs://./data, sqlite://./app.db, memory://
    #[arg(long, global = true, value_name = "URL", default_value = crate::DEFAULT_URL)]
    pub(crate) url: String,
    /// Database of the space single-key commands work in
    #[arg(long, global = true, default_value = "default")]
    pub(crate) db: String,
    /// Namespace of the space single-key commands work in
    #[arg(long, global = true, default_value = "default")]
    pub(crate) namespace: String,
    /// Print machine-readable JSON on stdout
    #[arg(long, global = true)]
    pub(crate) json: bool,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Store a value (from the argument, or from stdin when it is `-` or absent)
    Set(SetArgs),
    /// Print a key's value, raw bytes, to stdout
    Get(KeyArg),
    /// Delete a key (exit 1 when it did not exist)
    Del(KeyArg),
    /// Tell whether a key exists (exit 1 when it does not)
    Exists(KeyArg),
    /// List keys in order
    Keys(KeysArgs),
    /// Print a key's metadata: sizes, times, tags, codec, version
    Meta(KeyArg),
    /// List tags with the number of keys carrying each
    Tags,
    /// List keys carrying all (or, with --any, any) of the given tags
    Query(QueryArgs),
    /// Print the store's metrics and live key count for the space
    Stats,
    /// Reclaim space held by deleted and expired records
    Compact,
    /// Write every record of every space as NDJSON
    Export(ExportArgs),
    /// Read NDJSON records (as export writes them, or {"key":…,"value":…} lines)
    Import(ImportArgs),
    /// Copy every space into another store, then compare counts and checksums
    Migrate(MigrateArgs),
    /// Check that every record reads and decodes and that the index agrees with the records
    Verify,
    /// Measure standard workloads on fresh temporary stores beside raw baselines
    Bench(BenchArgs),
}

/// A single key.
#[derive(Debug, Args)]
pub(crate) struct KeyArg {
    /// The key
    pub(crate) key: String,
}

/// Arguments of `set`.
#[derive(Debug, Args)]
pub(crate) struct SetArgs {
    /// The key
    pub(crate) key: String,
    /// The value; `-` or nothing reads it from stdin
    pub(crate) value: Option<String>,
    /// A tag (repeat for several)
    #[arg(long = "tag", value_name = "TAG")]
    pub(crate) tags: Vec<String>,
    /// Time to live: seconds, or a number with a unit (ms, s, m, h, d), e.g. 30s, 5m, 1h30m
    #[arg(long, value_name = "DURATION")]
    pub(crate) ttl: Option<String>,
}

/// Arguments of `keys`.
#[derive(Debug, Args)]
pub(crate) struct KeysArgs {
    /// Only keys starting with this
    #[arg(long, default_value = "")]
    pub(crate) prefix: String,
    /// At most this many keys
    #[arg(long)]
    pub(crate) limit: Option<u64>,
}

/// Arguments of `query`.
#[derive(Debug, Args)]
pub(crate) struct QueryArgs {
    /// A tag (repeat for several)
    #[arg(long = "tag", value_name = "TAG", required = true)]
    pub(crate) tags: Vec<String>,
    /// Keys with any of the tags instead of all of them
    #[arg(long)]
    pub(crate) any: bool,
    /// At most this many keys
    #[arg(long)]
    pub(crate) limit: Option<u64>,
}

/// Arguments of `export`.
#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// Write to this file instead of stdout
    #[arg(long, short, value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
}

/// Arguments of `import`.
#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// The NDJSON file; `-` or nothing reads stdin
    pub(crate) input: Option<PathBuf>,
}

/// Arguments of `migrate`.
#[derive(Debug, Args)]
pub(crate) struct MigrateArgs {
    /// The store to copy into
    #[arg(long, value_name = "URL")]
    pub(crate) to: String,
}

/// A backend `bench` can measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum BenchBackend {
    /// `memory://` beside a locked HashMap
    Memory,
    /// `fs://` in a temporary directory beside append + fdatasync
    Fs,
    /// `sqlite://` in a temporary directory beside raw rusqlite
    Sqlite,
    /// The server given by --redis beside a raw pipeline
    Redis,
}

/// Arguments of `bench`.
#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// A backend to measure (repeat for several; default memory, fs and sqlite)
    #[arg(long = "backend", value_enum, value_name = "BACKEND")]
    pub(crate) backends: Vec<BenchBackend>,
    /// A standalone Redis server to measure too (redis://HOST:PORT/DB); the run writes under
    /// its own key prefix and removes it at the end
    #[arg(long, value_name = "URL")]
    pub(crate) redis: Option<String>,
    /// Keys per workload, the other sizes in proportion (default 10,000; 100,000 with --full)
    #[arg(long)]
    pub(crate) keys: Option<usize>,
    /// The full sizes instead of the quick ones
    #[arg(long)]
    pub(crate) full: bool,
    /// Also write report.json, report.md and chart.svg into this directory
    #[arg(long, short, value_name = "DIR")]
    pub(crate) out: Option<PathBuf>,
}
