//! The `nadb` command-line tool (feature `cli`); `src/bin/nadb.rs` only calls [`run`].
//!
//! ```text
//! nadb [--url URL] [--db DB] [--namespace NS] [--json] COMMAND
//!
//!   set KEY [VALUE|-] [--tag T]... [--ttl 30s]   get KEY        del KEY      exists KEY
//!   keys [--prefix P] [--limit N]                meta KEY       tags
//!   query --tag A [--tag B]... [--any]           stats          compact
//!   export [-o FILE]    import [FILE|-]          migrate --to URL             verify
//!   bench [--backend memory|fs|sqlite|redis]... [--redis URL] [--keys N] [--full] [-o DIR]
//! ```
//!
//! `--url` defaults to the embedded store, [`DEFAULT_URL`](crate::DEFAULT_URL). Single-key
//! commands, listings and `stats` work in the space `--db`/`--namespace` (default
//! `default/default`); `export`, `migrate` and `verify` cover every space, and `import` puts
//! lines without a space in that one. `bench` ignores `--url`: it measures fresh temporary
//! stores (and, with `--redis`, a prefix of its own on that server), never your data.
//!
//! **Exit codes**: [`OK`] 0; [`NOT_FOUND`] 1 (`get`/`meta`/`del` of a missing key, `exists`
//! answering no); [`USAGE`] 2 (a bad command line, key, tag, space or TTL); [`FAILURE`] 3
//! (anything else: the store cannot be opened or fails, a file, a migration whose checksums
//! differ, `verify` finding a problem). Every non-zero exit writes one line to stderr.
//!
//! **Output**: `get` writes the raw value; listings write one key per line. With `--json`
//! every command writes one JSON document on stdout instead — on failure
//! `{"error":{"code":N,"kind":"not_found"|"usage"|"failure","message":…}}` — except `export`
//! without `-o`, whose stdout is the NDJSON itself. Progress bars for `export`, `import`,
//! `migrate`, `compact`, `verify` and `bench` go to stderr, only when it is a terminal.

mod admin;
mod args;
mod bench;
mod exit;
mod listing;
mod output;
mod progress;
mod record;
mod transfer;
mod ttl;
mod verify;

use std::ffi::OsString;
use std::io::Write;

use clap::Parser;
use clap::error::ErrorKind;

pub use exit::{FAILURE, NOT_FOUND, OK, USAGE};

use crate::{Space, Store};
use args::{Cli, Command};
use exit::Failure;
use output::Output;

/// Sends log events to stderr, so that what the tool's stores report (a cut torn tail,
/// dead-lettered writes) reaches its user.
fn log_to_stderr() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("NADB_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}

/// Runs the tool on `args` (the program name first, as `std::env::args_os` gives them),
/// writing to stdout and stderr, and returns the exit code. Unless the process already has a
/// `tracing` subscriber, log events go to stderr: warnings and errors, or what `NADB_LOG`
/// selects (`NADB_LOG=debug` adds a line with the duration of each span as it closes).
///
/// ```
/// use nadb::cli::{run, NOT_FOUND, OK, USAGE};
/// assert_eq!(run(["nadb", "--url", "memory://", "set", "greeting", "hello"]), OK);
/// assert_eq!(run(["nadb", "--url", "memory://", "get", "missing"]), NOT_FOUND);
/// assert_eq!(run(["nadb", "--no-such-flag"]), USAGE);
/// ```
pub fn run<I, T>(args: I) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    log_to_stderr();
    // Known before parsing, so even a usage error can answer in JSON.
    let json = args.iter().skip(1).any(|a| a == "--json");
    let mut out = Output::new(json);
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => {
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => match e.print() {
                    Ok(()) => OK,
                    Err(_) => FAILURE,
                },
                _ => report(&mut out, Failure::usage(clap_message(&e))),
            };
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return report(&mut out, Failure::other(format!("cannot start: {e}"))),
    };
    let result = runtime
        .block_on(dispatch(cli, &mut out))
        .and_then(|()| out.flush());
    match result {
        Ok(()) => OK,
        Err(f) => report(&mut out, f),
    }
}

/// The first paragraph of a clap error on one line, without its `error: ` prefix (the usage
/// text after it is what `--help` shows).
fn clap_message(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let paragraph: Vec<&str> = text
        .lines()
        .skip_while(|l| l.trim().is_empty())
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect();
    let line = paragraph.join(" ");
    let line = line.strip_prefix("error: ").unwrap_or(&line);
    format!("{line} (see --help)")
}

/// Writes a failure (JSON on stdout when asked and not printed yet; one line on stderr) and
/// returns its exit code.
fn report(out: &mut Output, f: Failure) -> u8 {
    if out.json && !f.printed {
        let doc = serde_json::json!({
            "error": { "code": f.code, "kind": f.kind(), "message": f.to_string() }
        });
        // The exit code and stderr still tell the failure if stdout is gone.
        let _ = out.json(&doc).and_then(|()| out.flush());
    } else {
        let _ = out.flush();
    }
    let _ = writeln!(std::io::stderr(), "nadb: {f}");
    f.code
}

/// Opens the store at `url` with a handle on `space`.
async fn open(url: &str, space: Space) -> Result<Store, Failure> {
    let store = crate::open(url).await?;
    match store.with_space(space).await {
        Ok(handle) => Ok(handle),
        Err(e) => {
            // Closed rather than dropped, which would log a warning beside the error line.
            let _ = store.close().await;
            Err(e.into())
        }
    }
}

async fn dispatch(cli: Cli, out: &mut Output) -> Result<(), Failure> {
    let space = Space::new(&cli.db, &cli.namespace)?;
    match cli.command {
        Command::Verify => return verify::verify(&cli.url, out).await,
        Command::Migrate(args) => return transfer::migrate(&cli.url, &args, out).await,
        Command::Bench(args) => return bench::bench(&args, out).await,
        _ => {}
    }
    let store = open(&cli.url, space).await?;
    let result = match cli.command {
        Command::Set(args) => record::set(&store, args, out).await,
        Command::Get(args) => record::get(&store, &args.key, out).await,
        Command::Del(args) => record::del(&store, &args.key, out).await,
        Command::Exists(args) => record::exists(&store, &args.key, out).await,
        Command::Meta(args) => record::meta(&store, &args.key, out).await,
        Command::Keys(args) => listing::keys(&store, &args, out).await,
        Command::Tags => listing::tags(&store, out).await,
        Command::Query(args) => listing::query(&store, &args, out).await,
        Command::Stats => admin::stats(&store, out).await,
        Command::Compact => admin::compact(&store, out).await,
        Command::Export(args) => transfer::export(&store, &args, out).await,
        Command::Import(args) => transfer::import(&store, &args, out).await,
        Command::Verify | Command::Migrate(_) | Command::Bench(_) => Ok(()),
    };
    let closed = store.close().await;
    result?;
    Ok(closed?)
}
