//! `bench`: the standard workloads on fresh temporary stores beside raw baselines; the
//! markdown table (or the JSON report) on stdout, the three report files with `--out`.

use super::args::{BenchArgs, BenchBackend};
use super::exit::Failure;
use super::output::Output;
use super::progress::Bars;
use crate::bench::{self, BenchError, Config, Target};

impl From<BenchError> for Failure {
    fn from(e: BenchError) -> Failure {
        match e {
            BenchError::Store(e) => e.into(),
            other => Failure::other(other.to_string()),
        }
    }
}

async fn targets(args: &BenchArgs) -> Result<Vec<Target>, Failure> {
    let mut wanted = args.backends.clone();
    if wanted.is_empty() {
        wanted = vec![BenchBackend::Memory, BenchBackend::Fs, BenchBackend::Sqlite];
        if args.redis.is_some() {
            wanted.push(BenchBackend::Redis);
        }
    }
    wanted.dedup();
    let mut targets = Vec::new();
    for b in wanted {
        targets.push(match b {
            BenchBackend::Memory => Target::memory(),
            #[cfg(feature = "fs")]
            BenchBackend::Fs => Target::fs()?,
            #[cfg(feature = "sqlite")]
            BenchBackend::Sqlite => Target::sqlite()?,
            #[cfg(feature = "redis")]
            BenchBackend::Redis => match &args.redis {
                Some(url) => Target::redis(url).await?,
                None => return Err(Failure::usage("--backend redis needs --redis URL")),
            },
            #[allow(unreachable_patterns)]
            other => {
                return Err(Failure::usage(format!(
                    "this nadb was built without the {other:?} backend"
                )));
            }
        });
    }
    Ok(targets)
}

pub(crate) async fn bench(args: &BenchArgs, out: &mut Output) -> Result<(), Failure> {
    let mut config = if args.full {
        Config::full()
    } else {
        Config::quick()
    };
    if let Some(keys) = args.keys {
        if keys == 0 {
            return Err(Failure::usage("--keys must be at least 1"));
        }
        config.keys = keys;
    }
    let targets = targets(args).await?;
    let mut report = bench::run(&config, targets, &Bars::counting("steps")).await?;
    report.command = std::env::args().collect::<Vec<_>>().join(" ");
    if let Some(dir) = &args.out {
        report.write_to(dir)?;
    }
    if out.json {
        out.json(&report)
    } else {
        out.raw(report.to_markdown().as_bytes())
    }
}
