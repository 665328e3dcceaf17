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
    let mut wanted: Vec<BenchBackend> = Vec::new();
    for b in &args.backends {
        if !wanted.contains(b) {
            wanted.push(*b);
        }
    }
    if wanted.is_empty() {
        wanted = vec![BenchBackend::Memory, BenchBackend::Fs, BenchBackend::Sqlite];
        if args.redis.is_some() {
            wanted.push(BenchBackend::Redis);
        }
    } else if args.redis.is_some() && !wanted.contains(&BenchBackend::Redis) {
        return Err(Failure::usage(
            "--redis is given but --backend redis is not among the backends",
        ));
    }
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
    let config = match args.keys {
        Some(0) => return Err(Failure::usage("--keys must be at least 1")),
        Some(keys) => Config::sized(keys),
        None if args.full => Config::full(),
        None => Config::quick(),
    };
    let targets = targets(args).await?;
    let mut report = bench::run(&config, targets, &Bars::counting("steps")).await?;
    // URLs may carry passwords; the report is meant to be shared.
    report.command = std::env::args()
        .map(|a| {
            if a.contains("://") {
                crate::error::redact_url(&a)
            } else {
                a
            }
        })
        .collect::<Vec<_>>()
        .join(" ");
    if let Some(dir) = &args.out {
        report.write_to(dir)?;
    }
    if out.json {
        out.json(&report)
    } else {
        out.raw(report.to_markdown().as_bytes())
    }
}
