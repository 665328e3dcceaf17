//! `nadb::bench`: the baselines keep what they write across a reopen, and a run's report holds
//! one consistent row per workload and mode, in all three forms.

use bytes::Bytes;
use nadb::bench::{
    Baseline, Config, LogBaseline, Mode, Report, SqliteBaseline, Target, Unit, Workload, run,
};

fn items(n: usize) -> Vec<(String, Bytes)> {
    (0..n)
        .map(|i| (format!("k{i}"), Bytes::from(format!("value {i}"))))
        .collect()
}

async fn survives_reopen(b: &mut dyn Baseline) {
    let bulk = items(500);
    b.load("s", &bulk).await.unwrap();
    let durable: Vec<_> = (0..20)
        .map(|i| (format!("d{i}"), Bytes::from(vec![b'x'; 100 + i])))
        .collect();
    b.put_durable("s", &durable).await.unwrap();
    assert!(b.reopen("s").await.unwrap(), "{} persists", b.name());
    let keys: Vec<String> = bulk
        .iter()
        .chain(&durable)
        .map(|(k, _)| k.clone())
        .collect();
    assert_eq!(b.get_all("s", &keys).await.unwrap(), 520);
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

    let back: Report = serde_json::from_str(&report.to_json()).unwrap();
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
