//! Several OS processes on one database file, SIGKILLed writers, and the file read by the
//! `sqlite3` shell. This binary is also its own child process (see `nadb_testkit::process`).
//!
//! `NADB_KILL_ITERATIONS` sets the number of kills (default 100).

use std::collections::BTreeSet;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use libtest_mimic::{Arguments, Failed, Trial};
use nadb_backend_sqlite::SqliteBackend;
use nadb_core::{FlushPolicy, SetOptions, Store};
use nadb_testkit::process::{self, ChildGuard};
use rand::Rng;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn value_of(i: u64) -> String {
    format!("value-{i}-{}", "s".repeat((i % 61) as usize))
}

/// Child: writes `COUNT` keys `PREFIX{i}` (or forever when COUNT is 0) with Immediate acks,
/// printing each acknowledged index.
fn writer() -> ExitCode {
    let file = process::var("FILE").unwrap_or_default();
    let prefix = process::var("PREFIX").unwrap_or_default();
    let start: u64 = process::var("START")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let count: u64 = process::var("COUNT")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let tag = process::var("TAG").unwrap_or_else(|| "w".into());
    let result = runtime().block_on(async move {
        let store = Store::builder(SqliteBackend::open(&file).await?)
            .flush_policy(FlushPolicy::Immediate)
            .sweep_interval(None)
            .build()
            .await?;
        let mut i = start;
        loop {
            if count > 0 && i >= start + count {
                break;
            }
            let opts = SetOptions::new().tags([tag.as_str()]);
            store
                .set_with(&format!("{prefix}{i:09}"), value_of(i), &opts)
                .await?;
            println!("{i}");
            i += 1;
        }
        store.close().await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("writer failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn spawn(vars: &[(&str, &str)]) -> ChildGuard {
    process::spawn("writer", vars).expect("spawn a writer")
}

fn two_processes_share_one_file() -> Result<(), Failed> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let file = dir.path().join("shared.db").display().to_string();
    // Create the schema once so both children start from the same file.
    runtime().block_on(async {
        nadb_core::StorageBackend::close(&SqliteBackend::open(&file).await?).await
    })?;
    let n = "400";
    let mut kids = vec![
        spawn(&[
            ("FILE", &file),
            ("PREFIX", "a/"),
            ("COUNT", n),
            ("TAG", "a"),
        ]),
        spawn(&[
            ("FILE", &file),
            ("PREFIX", "b/"),
            ("COUNT", n),
            ("TAG", "b"),
        ]),
        spawn(&[
            ("FILE", &file),
            ("PREFIX", "same/"),
            ("COUNT", n),
            ("TAG", "s1"),
        ]),
        spawn(&[
            ("FILE", &file),
            ("PREFIX", "same/"),
            ("COUNT", n),
            ("TAG", "s2"),
        ]),
    ];
    for k in &mut kids {
        let status = k.0.wait().map_err(|e| e.to_string())?;
        if !status.success() {
            return Err(
                format!("a writer failed ({status}): SQLite locking must not surface").into(),
            );
        }
    }
    runtime().block_on(async {
        let store = Store::builder(SqliteBackend::open(&file).await?)
            .build()
            .await?;
        for p in ["a/", "b/", "same/"] {
            let keys = store.scan(p, None, 10_000).await?.items;
            if keys.len() != 400 {
                return Err(nadb_core::Error::Config {
                    reason: format!("{} keys under {p}, want 400", keys.len()),
                });
            }
        }
        for i in 0..400u64 {
            let got = store.get(&format!("same/{i:09}")).await?;
            if got.as_deref() != Some(value_of(i).as_bytes()) {
                return Err(nadb_core::Error::Config {
                    reason: format!("same/{i} is not one of the written values"),
                });
            }
        }
        let tags = store.list_tags().await?;
        if tags.get("a") != Some(&400) || tags.get("b") != Some(&400) {
            return Err(nadb_core::Error::Config {
                reason: format!("tag counts {tags:?}"),
            });
        }
        store.close().await
    })?;
    Ok(())
}

fn kill9() -> Result<(), Failed> {
    let iterations: u64 = std::env::var("NADB_KILL_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let file = dir.path().join("crash.db").display().to_string();
    let rt = runtime();
    let mut acked = BTreeSet::new();
    let mut rng = rand::rng();
    for round in 0..iterations {
        let start = (round * 1_000_000).to_string();
        let mut c = spawn(&[("FILE", &file), ("PREFIX", "k"), ("START", &start)]);
        let (rx, reader) = process::numbers_printed_by(&mut c).map_err(|e| e.to_string())?;
        acked.insert(
            rx.recv_timeout(Duration::from_secs(30))
                .map_err(|_| "writer never acked")?,
        );
        let deadline = Instant::now() + Duration::from_millis(rng.random_range(0..40));
        while let Ok(i) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            acked.insert(i);
        }
        c.kill();
        let _ = reader.join();
        while let Ok(i) = rx.try_recv() {
            acked.insert(i);
        }
        rt.block_on(async {
            let store = Store::builder(SqliteBackend::open(&file).await?)
                .sweep_interval(None)
                .build()
                .await?;
            let keys: Vec<String> = acked.iter().map(|i| format!("k{i:09}")).collect();
            let got = store.get_many(&keys).await?;
            for (i, v) in acked.iter().zip(got) {
                if v.as_deref() != Some(value_of(*i).as_bytes()) {
                    return Err(nadb_core::Error::Config {
                        reason: format!("kill #{round}: acknowledged key {i} lost"),
                    });
                }
            }
            store.close().await
        })?;
    }
    println!(
        "kill -9: {iterations} kills, {} acknowledged writes all present",
        acked.len()
    );
    Ok(())
}

fn sqlite3_shell_reads_the_documented_schema() -> Result<(), Failed> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let file = dir.path().join("readable.db");
    runtime().block_on(async {
        let store = Store::builder(SqliteBackend::open(&file).await?)
            .compression(nadb_core::Compression::disabled())
            .build()
            .await?;
        store
            .set_with("user:1", "ada", &SetOptions::new().tags(["user", "admin"]))
            .await?;
        store
            .set_with("user:2", "bob", &SetOptions::new().tags(["user"]))
            .await?;
        store
            .set("note", "it's; DROP TABLE nadb_records; --")
            .await?;
        store.close().await
    })?;
    let out = std::process::Command::new("sqlite3")
        .arg(&file)
        .arg("SELECT db || '/' || ns || ' ' || key || '=' || CAST(value AS TEXT) || ' [' || tags || ']' FROM nadb_entries ORDER BY key; SELECT s.db || '/' || s.ns || ' ' || t.tag || ':' || t.key FROM nadb_tags t JOIN nadb_spaces s ON s.id = t.space ORDER BY t.tag, t.key;")
        .output()
        .map_err(|e| format!("cannot run sqlite3 ({e}); install it with `apt-get install sqlite3`"))?;
    if !out.status.success() {
        return Err(format!("sqlite3 failed: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let want = "default/default note=it's; DROP TABLE nadb_records; -- []\n\
                default/default user:1=ada [admin\nuser]\n\
                default/default user:2=bob [user]\n\
                default/default admin:user:1\n\
                default/default user:user:1\n\
                default/default user:user:2\n";
    if text != want {
        return Err(format!("sqlite3 shows:\n{text}\nwant:\n{want}").into());
    }
    Ok(())
}

fn main() -> ExitCode {
    if process::role().as_deref() == Some("writer") {
        return writer();
    }
    let args = Arguments::from_args();
    let trials = vec![
        Trial::test("two_processes_share_one_file", two_processes_share_one_file),
        Trial::test("kill9_never_loses_an_acknowledged_write", kill9),
        Trial::test(
            "sqlite3_shell_reads_the_documented_schema",
            sqlite3_shell_reads_the_documented_schema,
        ),
    ];
    libtest_mimic::run(&args, trials).exit_code()
}
