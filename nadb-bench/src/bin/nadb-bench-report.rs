//! The full benchmark report: every standard workload on memory, fs, sqlite and a private
//! Redis server, each in its flush modes, beside raw baselines run in the same process (redb
//! as a second baseline for fs). Writes `report.json`, `report.md` and `chart.svg`.
//!
//! ```text
//! cargo run --release -p nadb-bench --bin nadb-bench-report -- [--out DIR] [--quick | --keys N]
//! cargo run --release -p nadb-bench --bin nadb-bench-report -- --render DIR
//! ```
//!
//! `--render` measures nothing: it reads `DIR/report.json` and writes its table and chart again.
//!
//! `--out` defaults to `docs/bench` (what the README shows). Redis needs `redis-server`
//! (scripts/test.sh installs it); without it the report leaves Redis out and says so in a note.

use std::path::PathBuf;

use nadb::bench::{self, BenchError, Config, Target};
use nadb_bench::RedbBaseline;
use nadb_testkit::redis::RedisServer;

struct Args {
    out: PathBuf,
    render: bool,
    config: Config,
    command: String,
}

fn args() -> Result<Args, String> {
    let mut out = PathBuf::from("docs/bench");
    let mut render = false;
    let mut config = Config::full();
    let raw: Vec<String> = std::env::args().skip(1).collect();
    let mut command = "cargo run --release -p nadb-bench --bin nadb-bench-report".to_string();
    if !raw.is_empty() {
        command = format!("{command} -- {}", raw.join(" "));
    }
    let mut it = raw.into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--out" => out = it.next().ok_or("--out needs a directory")?.into(),
            "--render" => {
                out = it.next().ok_or("--render needs a directory")?.into();
                render = true;
            }
            "--quick" => config = Config::quick(),
            "--keys" => {
                config = Config::sized(
                    it.next()
                        .and_then(|n| n.parse().ok())
                        .filter(|&n| n > 0)
                        .ok_or("--keys needs a positive number")?,
                );
            }
            other => return Err(format!("unknown argument {other:?} (see the file's docs)")),
        }
    }
    Ok(Args {
        out,
        render,
        config,
        command,
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = args()?;
    if args.render {
        let saved: bench::Report =
            serde_json::from_slice(&std::fs::read(args.out.join("report.json"))?)?;
        for f in saved.write_to(&args.out)? {
            eprintln!("wrote {}", f.display());
        }
        return Ok(());
    }
    let dirs = tempfile::tempdir()?;
    let redb_dir = dirs.path().join("redb");
    std::fs::create_dir(&redb_dir)?;
    let mut targets = vec![
        Target::memory(),
        Target::fs()?.with_baseline(RedbBaseline::new(redb_dir)),
        Target::sqlite()?,
    ];
    let mut notes = Vec::new();
    let server = match RedisServer::start() {
        Ok(server) => {
            targets.push(Target::redis(&server.url()).await?);
            Some(server)
        }
        Err(e) => {
            eprintln!("redis left out of the report: {e}");
            notes.push(format!("redis left out: {e}"));
            None
        }
    };
    eprintln!("running {} targets, sizes {:?}", targets.len(), args.config);
    let mut report = bench::run(&args.config, targets, &Log).await?;
    drop(server);
    report.command = args.command;
    report.notes = notes;
    let files = report
        .write_to(&args.out)
        .map_err(|e: BenchError| e.to_string())?;
    print!("{}", report.to_markdown());
    for f in files {
        eprintln!("wrote {}", f.display());
    }
    Ok(())
}

/// Progress as one line per target on stderr.
struct Log;

impl nadb::progress::Progress for Log {
    fn begin(&self, phase: &str, total: Option<u64>) {
        eprintln!("{phase}: {} steps", total.unwrap_or(0));
    }
}
