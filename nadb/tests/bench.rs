//! `nadb::bench`: the baselines keep what they write across a reopen, their opening and
//! closing stay out of the figures, cleanup runs after a failure, and a run's report holds one
//! consistent row per workload and mode, in all three forms.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use nadb::BoxError;
use nadb::bench::{
    Baseline, BenchError, Config, LogBaseline, MapBaseline, Mode, Report, SqliteBaseline, Target,
    Unit, Workload, run,
};

fn items(n: usize) -> Vec<(String, Bytes)> {
    (0..n)
        .map(|i| (format!("k{i}"), Bytes::from(format!("value {i}"))))
        .collect()
}

async fn survives_reopen(b: &mut dyn Baseline) {
    let bulk = items(500);
    b.open("s").await.unwrap();
    b.load("s", &bulk).await.unwrap();
    let durable: Vec<_> = (0..20)
        .map(|i| (format!("d{i}"), Bytes::from(vec![b'x'; 100 + i])))
        .collect();
    b.put_durable("s", &durable).await.unwrap();
    let concurrent: Vec<_> = (0..40)
        .map(|i| (format!("c{i}"), Bytes::from(format!("c{i}"))))
        .collect();
    b.put_durable_concurrent("s", &concurrent, 8).await.unwrap();
    assert!(b.close("s").await.unwrap(), "{} persists", b.name());
    b.open("s").await.unwrap();
    let keys: Vec<String> = bulk
        .iter()
        .chain(&durable)
        .chain(&concurrent)
        .map(|(k, _)| k.clone())
        .collect();
    assert_eq!(b.get_all("s", &keys).await.unwrap(), 560);
    b.open("other").await.unwrap();
    assert_eq!(
        b.get_all("other", &keys).await.unwrap(),
        0,
        "sets are apart"
    );
    assert_eq!(b.get_all("s", &["missing".to_string()]).await.unwrap(), 0);
}

#[tokio::test]
async fn log_baseline_rebuilds_its_index_on_reopen() {
    let dir = tempfile::tempdir().unwrap();
    survives_reopen(&mut LogBaseline::new(dir.path())).await;
}

#[tokio::test]
async fn sqlite_baseline_keeps_rows_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    survives_reopen(&mut SqliteBaseline::new(dir.path())).await;
}

fn check(report: &Report) {
    for row in &report.rows {
        assert!(row.value.is_finite() && row.value > 0.0, "{row:?}");
        assert!(row.ops > 0);
        assert!(row.workload.modes().contains(&row.mode), "{row:?}");
        assert_eq!(row.workload.unit(), row.unit);
        assert_eq!(
            row.baselines.is_empty(),
            row.workload == Workload::TagQuery,
            "only tag queries lack a baseline: {row:?}"
        );
        for b in &row.baselines {
            let want = match row.unit {
                Unit::OpsPerSec => row.value / b.value,
                Unit::Millis => b.value / row.value,
            };
            assert!((b.ratio - want).abs() <= want * 1e-9, "{row:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_reports_every_workload_and_mode() {
    let config = Config::sized(300);
    let report = run(&config, vec![Target::memory(), Target::fs().unwrap()], &())
        .await
        .unwrap();
    check(&report);
    let rows = |backend: &str| -> Vec<(Workload, Mode)> {
        report
            .rows
            .iter()
            .filter(|r| r.backend == backend)
            .map(|r| (r.workload, r.mode))
            .collect()
    };
    let every: Vec<(Workload, Mode)> = Workload::ALL
        .iter()
        .flat_map(|w| w.modes().iter().map(move |m| (*w, *m)))
        .collect();
    assert_eq!(rows("fs"), every);
    // memory:// forgets everything on reopen: no cold reads, no reopen.
    let memory: Vec<_> = every
        .iter()
        .copied()
        .filter(|(w, _)| !matches!(w, Workload::GetCold | Workload::Reopen))
        .collect();
    assert_eq!(rows("memory"), memory);

    let back: Report = serde_json::from_str(&report.to_json().unwrap()).unwrap();
    assert_eq!(back.machine, report.machine);
    assert_eq!(back.config, report.config);
    assert_eq!(back.rows.len(), report.rows.len());
    for (a, b) in back.rows.iter().zip(&report.rows) {
        assert_eq!(
            (a.workload, &a.backend, a.mode, a.ops),
            (b.workload, &b.backend, b.mode, b.ops)
        );
        // JSON keeps 17 significant digits, not always the last bit.
        assert!((a.value - b.value).abs() <= b.value * 1e-12);
        assert_eq!(a.baselines.len(), b.baselines.len());
    }

    let md = report.to_markdown();
    let lines: usize = report.rows.iter().map(|r| r.baselines.len().max(1)).sum();
    assert_eq!(
        md.lines().filter(|l| l.starts_with("| ")).count(),
        lines + 1
    );
    assert!(md.contains("RwLock<HashMap>"));
    assert!(md.contains("append + fdatasync"));

    let svg = report.to_svg().unwrap();
    assert!(svg.starts_with("<svg"));
    for row in report.rows.iter().filter(|r| !r.baselines.is_empty()) {
        assert!(svg.contains(&row.title), "{} in the chart", row.title);
    }
}

#[tokio::test]
async fn a_redis_target_refuses_a_url_with_a_query() {
    let err = Target::redis("redis://127.0.0.1:1/0?prefix=x")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("without a query"), "{err}");
}

/// A map whose opening and closing take 200 ms: none of it may show in a figure.
struct Slow {
    inner: MapBaseline,
    persisted: bool,
}

#[nadb::async_trait]
impl Baseline for Slow {
    fn name(&self) -> String {
        "slow to open".into()
    }
    async fn open(&mut self, set: &str) -> Result<(), BoxError> {
        tokio::time::sleep(Duration::from_millis(200)).await;
        self.inner.open(set).await
    }
    async fn close(&mut self, _set: &str) -> Result<bool, BoxError> {
        tokio::time::sleep(Duration::from_millis(200)).await;
        // Claims persistence so the reopen rows run; the map keeps its data anyway.
        Ok(self.persisted)
    }
    async fn load(&mut self, set: &str, items: &[(String, Bytes)]) -> Result<(), BoxError> {
        self.inner.load(set, items).await
    }
    async fn put_durable(&mut self, set: &str, items: &[(String, Bytes)]) -> Result<(), BoxError> {
        self.inner.put_durable(set, items).await
    }
    async fn put_durable_concurrent(
        &mut self,
        set: &str,
        items: &[(String, Bytes)],
        writers: usize,
    ) -> Result<(), BoxError> {
        self.inner.put_durable_concurrent(set, items, writers).await
    }
    async fn get_all(&mut self, set: &str, keys: &[String]) -> Result<u64, BoxError> {
        self.inner.get_all(set, keys).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opening_and_closing_a_baseline_is_not_timed_except_in_a_reopen() {
    let target = Target::fs().unwrap().with_baseline(Slow {
        inner: MapBaseline::default(),
        persisted: true,
    });
    let report = run(&Config::sized(300), vec![target], &()).await.unwrap();
    for row in &report.rows {
        let Some(slow) = row.baselines.iter().find(|b| b.name == "slow to open") else {
            continue;
        };
        match row.unit {
            // The timed part alone takes far less than the 200 ms an open or close would add.
            Unit::OpsPerSec => assert!(row.ops as f64 / slow.value < 0.1, "{row:?}"),
            // The reopen times exactly one open (200 ms) and one read.
            Unit::Millis => assert!((200.0..400.0).contains(&slow.value), "{row:?}"),
        }
    }
    assert!(report.rows.iter().any(|r| r.workload == Workload::Reopen));
}

/// Fails every write; remembers whether cleanup ran.
struct Failing(Arc<AtomicBool>);

#[nadb::async_trait]
impl Baseline for Failing {
    fn name(&self) -> String {
        "failing".into()
    }
    async fn open(&mut self, _set: &str) -> Result<(), BoxError> {
        Ok(())
    }
    async fn close(&mut self, _set: &str) -> Result<bool, BoxError> {
        Ok(false)
    }
    async fn load(&mut self, _: &str, _: &[(String, Bytes)]) -> Result<(), BoxError> {
        Err("disk on fire".into())
    }
    async fn put_durable(&mut self, _: &str, _: &[(String, Bytes)]) -> Result<(), BoxError> {
        Err("disk on fire".into())
    }
    async fn put_durable_concurrent(
        &mut self,
        _: &str,
        _: &[(String, Bytes)],
        _: usize,
    ) -> Result<(), BoxError> {
        Err("disk on fire".into())
    }
    async fn get_all(&mut self, _: &str, _: &[String]) -> Result<u64, BoxError> {
        Ok(0)
    }
    async fn cleanup(&mut self) -> Result<(), BoxError> {
        self.0.store(true, Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_baseline_fails_the_run_and_is_still_cleaned_up() {
    let cleaned = Arc::new(AtomicBool::new(false));
    let target =
        Target::new("memory", |_| "memory://".into()).with_baseline(Failing(cleaned.clone()));
    let err = run(&Config::sized(100), vec![target], &())
        .await
        .unwrap_err();
    assert!(
        matches!(err, BenchError::Baseline { ref name, .. } if name == "failing"),
        "{err}"
    );
    assert!(err.to_string().contains("disk on fire"));
    assert!(cleaned.load(Ordering::SeqCst));
}

#[tokio::test]
async fn zero_sizes_are_refused() {
    let mut config = Config::sized(100);
    config.hot_gets = 0;
    let err = run(&config, vec![Target::memory()], &()).await.unwrap_err();
    assert!(matches!(err, BenchError::Config(_)), "{err}");
    assert!(err.to_string().contains("hot_gets"));
}

#[tokio::test]
async fn redis_baseline_keeps_its_keys_and_cleans_only_its_own() {
    let server = nadb_testkit::redis::RedisServer::start().unwrap_or_else(|e| panic!("{e}"));
    for bad in ["", "short", "has*glob-chars", "has space in it"] {
        assert!(
            nadb::bench::RedisBaseline::connect(&server.url(), bad)
                .await
                .is_err(),
            "{bad:?}"
        );
    }
    server.cli(&["SET", "bench-run-1x:other", "mine"]).unwrap();
    server.cli(&["SET", "bench-run-1", "mine"]).unwrap();
    let mut raw = nadb::bench::RedisBaseline::connect(&server.url(), "bench-run-1")
        .await
        .unwrap();
    survives_reopen(&mut raw).await;
    // A store rooted at PREFIX-SET counts as the run's own.
    server.cli(&["SET", "bench-run-1-set:x", "run"]).unwrap();
    raw.cleanup().await.unwrap();
    assert_eq!(server.cli(&["DBSIZE"]).unwrap().trim(), "2");
    assert_eq!(
        server.cli(&["GET", "bench-run-1x:other"]).unwrap().trim(),
        "mine"
    );
    assert_eq!(server.cli(&["GET", "bench-run-1"]).unwrap().trim(), "mine");
}
