//! NDJSON export and import: byte-identical round trips between every pair of persistent
//! backends, the older `{"key":…,"value":…}` lines, bad lines, and an import interrupted by
//! a failing backend.

use std::io::Cursor;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use nadb::ndjson::{self, NdjsonError};
use nadb::progress::Progress;
use nadb::{BackendExt, SetOptions, Space, Store, Timestamp};
use nadb_testkit::{Fault, FaultOp, FaultyBackend};

type TestResult = Result<(), NdjsonError>;

fn url(kind: &str, dir: &std::path::Path) -> String {
    match kind {
        "fs" => format!("fs://{}", dir.join("fs").display()),
        _ => format!("sqlite://{}", dir.join("db.sqlite").display()),
    }
}

const BINARY: &[u8] = &[0, 159, 146, 150, 255, b'\n', b'"'];

/// Far enough ahead never to pass during a test; fixed so two exports agree.
const LATER: u64 = 4_102_444_800_000;

async fn populate(store: &Store) -> nadb::Result<()> {
    store
        .set_with("text", "hello", &SetOptions::new().tags(["greeting", "t"]))
        .await?;
    store.set("bin", BINARY).await?;
    store.set("empty", "").await?;
    store.set("unicode ключ 🔑", "значение \u{0}").await?;
    store.set("line\nbreak \"quoted\"", "v").await?;
    store.set("big", "compressible ".repeat(1000)).await?;
    store
        .set_with(
            "until",
            "later",
            &SetOptions::new()
                .tags(["ttl"])
                .expires_at(Timestamp::from_millis(LATER)),
        )
        .await?;
    store
        .set_with(
            "short",
            "gone",
            &SetOptions::new().ttl(Duration::from_millis(30)),
        )
        .await?;
    let cache = store.with_space(Space::new("app", "cache")?).await?;
    cache
        .set_with("page", BINARY, &SetOptions::new().tags(["html"]))
        .await?;
    let last = store.with_space(Space::new("z", "last")?).await?;
    last.set("k", "v").await?;
    tokio::time::sleep(Duration::from_millis(60)).await;
    Ok(())
}

async fn export_bytes(store: &Store) -> Result<Vec<u8>, NdjsonError> {
    let mut out = Vec::new();
    ndjson::export(store, &mut out, &()).await?;
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trips_between_every_pair_of_persistent_backends() -> TestResult {
    for (from_kind, to_kind) in [
        ("fs", "sqlite"),
        ("sqlite", "fs"),
        ("fs", "fs"),
        ("sqlite", "sqlite"),
    ] {
        let (a, b) = (tempfile::tempdir()?, tempfile::tempdir()?);
        let from = nadb::open(&url(from_kind, a.path())).await?;
        populate(&from).await?;
        let first = export_bytes(&from).await?;
        let text = String::from_utf8(first.clone()).expect("NDJSON is UTF-8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 9, "{from_kind}: {text}");
        assert!(
            !text.contains("\"short\""),
            "an expired record was exported"
        );
        // Spaces sorted, then keys in byte order.
        assert!(lines[0].starts_with("{\"db\":\"app\",\"namespace\":\"cache\",\"key\":\"page\""));
        assert!(
            lines[1].starts_with("{\"db\":\"default\",\"namespace\":\"default\",\"key\":\"big\"")
        );
        assert!(lines[8].starts_with("{\"db\":\"z\",\"namespace\":\"last\""));
        assert!(text.contains("\"key\":\"bin\",\"value_b64\":\"AJ+Slv8KIg==\""));
        assert!(text.contains(&format!("\"tags\":[\"ttl\"],\"expires_at\":{LATER}")));

        let to = nadb::open(&url(to_kind, b.path())).await?;
        let summary = ndjson::import(&to, Cursor::new(&first), &()).await?;
        assert_eq!((summary.records, summary.expired, summary.lines), (9, 0, 9));
        assert_eq!(export_bytes(&to).await?, first, "{from_kind} -> {to_kind}");
        // Importing again changes nothing.
        ndjson::import(&to, Cursor::new(&first), &()).await?;
        assert_eq!(
            export_bytes(&to).await?,
            first,
            "re-import {from_kind} -> {to_kind}"
        );

        assert_eq!(to.get("bin").await?.as_deref(), Some(BINARY));
        let until = to.get_with_metadata("until").await?.expect("until");
        assert_eq!(until.meta.expires_at, Some(Timestamp::from_millis(LATER)));
        assert_eq!(&*until.meta.tags, ["ttl"]);
        let cache = to.with_space(Space::new("app", "cache")?).await?;
        assert_eq!(cache.get("page").await?.as_deref(), Some(BINARY));
        from.close().await?;
        // The copy survives reopening.
        to.close().await?;
        let reopened = nadb::open(&url(to_kind, b.path())).await?;
        assert_eq!(export_bytes(&reopened).await?, first);
        reopened.close().await?;
    }
    Ok(())
}

#[tokio::test]
async fn reads_older_key_value_lines_into_the_current_space() -> TestResult {
    let store = nadb::open("memory://").await?;
    let old = store.with_space(Space::new("legacy", "db")?).await?;
    let input = concat!(
        "{\"key\": [\"tuple\", \"example\"], \"value\": {\"dict\": \"example\"}}\n",
        "{\"key\": 123, \"value\": null}\n",
        "\n",
        "{\"key\": \"s\", \"value\": \"first\"}\r\n",
        "{\"key\": \"s\", \"value\": \"second\"}\n",
        "{\"key\": \"n\", \"value\": 4.5}",
    );
    let summary = ndjson::import(&old, Cursor::new(input), &()).await?;
    assert_eq!((summary.lines, summary.records), (6, 5));
    assert_eq!(
        old.get("[\"tuple\",\"example\"]").await?.as_deref(),
        Some(&b"{\"dict\":\"example\"}"[..])
    );
    let dict: serde_json::Value = old
        .get_json("[\"tuple\",\"example\"]")
        .await?
        .expect("stored as JSON");
    assert_eq!(dict["dict"], "example");
    assert_eq!(old.get("123").await?.as_deref(), Some(&b"null"[..]));
    assert_eq!(old.get("s").await?.as_deref(), Some(&b"second"[..]));
    assert_eq!(old.get("n").await?.as_deref(), Some(&b"4.5"[..]));
    assert_eq!(store.len().await?, 0, "nothing in the default space");
    Ok(())
}

#[tokio::test]
async fn a_bad_line_is_named_and_nothing_is_written() -> TestResult {
    let good = "{\"key\":\"good\",\"value\":\"SECRET-VALUE\"}";
    let cases = [
        (
            "{\"key\":\"x\",\"value\":\"SECRET-VALUE\"",
            "not valid JSON",
        ),
        ("[\"SECRET-VALUE\"]", "not a JSON object"),
        ("{\"value\":\"SECRET-VALUE\"}", "missing field \"key\""),
        ("{\"key\":\"x\"}", "missing field \"value\""),
        ("{\"key\":\"\",\"value\":\"SECRET-VALUE\"}", "invalid key"),
        (
            "{\"key\":\"x\",\"value\":\"a\",\"value_b64\":\"YQ==\"}",
            "both",
        ),
        ("{\"key\":\"x\",\"value_b64\":\"SECRET-VALUE!\"}", "base64"),
        ("{\"key\":\"x\",\"value_b64\":5}", "not a string"),
        (
            "{\"key\":\"x\",\"value\":\"v\",\"tags\":[\"\"]}",
            "invalid tag",
        ),
        ("{\"key\":\"x\",\"value\":\"v\",\"tags\":\"t\"}", "tags"),
        ("{\"key\":\"x\",\"value\":\"v\",\"tags\":[1]}", "tags"),
        (
            "{\"key\":\"x\",\"value\":\"v\",\"expires_at\":\"SECRET-VALUE\"}",
            "expires_at",
        ),
        (
            "{\"key\":\"x\",\"value\":\"v\",\"expires_at\":-1}",
            "expires_at",
        ),
        (
            "{\"key\":\"x\",\"value\":\"v\",\"expires_at\":9223372036854775808}",
            "expires_at",
        ),
        ("{\"key\":\"x\",\"value\":\"v\",\"db\":\"a\"}", "together"),
        (
            "{\"key\":\"x\",\"value\":\"v\",\"db\":\"a\",\"namespace\":\"../x\"}",
            "invalid space",
        ),
        (
            "{\"key\":\"x\",\"value\":\"v\",\"db\":1,\"namespace\":\"n\"}",
            "strings",
        ),
        (
            "{\"key\":\"x\",\"value\":\"v\",\"extra\":\"SECRET-VALUE\"}",
            "unknown field",
        ),
    ];
    for (bad, reason_has) in cases {
        let store = nadb::open("memory://").await?;
        let input = format!("{good}\n\n{bad}\n{good}\n");
        let err = ndjson::import(&store, Cursor::new(&input), &())
            .await
            .expect_err(bad);
        match &err {
            NdjsonError::Line { line, reason } => {
                assert_eq!(*line, 3, "{bad}");
                assert!(reason.contains(reason_has), "{bad}: {reason}");
            }
            other => panic!("{bad}: expected a line error, got {other:?}"),
        }
        let message = err.to_string();
        assert!(message.starts_with("line 3: "), "{message}");
        assert!(
            !message.contains("SECRET"),
            "the message quotes the input: {message}"
        );
        assert!(
            store.backend().spaces().await?.is_empty(),
            "{bad}: something was written"
        );
        assert_eq!(ndjson::validate(&store, input.as_bytes()).ok(), None);
    }
    // Not UTF-8.
    let store = nadb::open("memory://").await?;
    let mut input = format!("{good}\n").into_bytes();
    input.extend_from_slice(b"{\"key\":\"\xff\",\"value\":\"v\"}\n");
    let err = ndjson::import(&store, Cursor::new(input), &())
        .await
        .expect_err("not UTF-8");
    assert!(matches!(err, NdjsonError::Line { line: 2, .. }), "{err}");
    assert!(store.backend().spaces().await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn records_already_expired_are_skipped_and_counted() -> TestResult {
    let store = nadb::open("memory://").await?;
    let input = "{\"key\":\"old\",\"value\":\"v\",\"expires_at\":1000}\n{\"key\":\"new\",\"value\":\"v\"}\n";
    let summary = ndjson::import(&store, Cursor::new(input), &()).await?;
    assert_eq!((summary.records, summary.expired), (1, 1));
    assert!(!store.exists("old").await?);
    assert!(store.exists("new").await?);
    Ok(())
}

/// Breaks the backend once the first batch of the write pass is done.
struct BreakAfterFirstBatch {
    backend: Arc<FaultyBackend>,
    writing: AtomicBool,
    broken: AtomicBool,
}

impl Progress for BreakAfterFirstBatch {
    fn begin(&self, phase: &str, _total: Option<u64>) {
        self.writing.store(phase == "importing", Ordering::SeqCst);
    }

    fn advance(&self, _n: u64) {
        if self.writing.load(Ordering::SeqCst) && !self.broken.swap(true, Ordering::SeqCst) {
            self.backend.fail_always(FaultOp::Apply, Fault::Permanent);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_import_says_what_is_persisted_and_can_be_rerun() -> TestResult {
    let backend = Arc::new(FaultyBackend::new(nadb::MemoryBackend::new(), 1));
    let store = Store::builder(backend.clone()).build().await?;
    let input: String = (0..2500)
        .map(|i| format!("{{\"key\":\"k{i:04}\",\"value\":\"v{i}\"}}\n"))
        .collect();
    let breaker = BreakAfterFirstBatch {
        backend: backend.clone(),
        writing: AtomicBool::new(false),
        broken: AtomicBool::new(false),
    };
    let err = ndjson::import(&store, Cursor::new(&input), &breaker)
        .await
        .expect_err("the backend fails after the first batch");
    match &err {
        NdjsonError::Interrupted {
            persisted_lines, ..
        } => assert_eq!(*persisted_lines, 1000),
        other => panic!("expected an interruption, got {other:?}"),
    }
    assert!(
        err.to_string().contains("lines 1 to 1000 are persisted"),
        "{err}"
    );
    let persisted = backend.inner().scan_all(&Space::default(), "").await?;
    assert_eq!(persisted.len(), 1000);
    assert_eq!(persisted.last().map(|(k, _)| k.as_str()), Some("k0999"));

    backend.heal();
    store.clear_dlq();
    let summary = ndjson::import(&store, Cursor::new(&input), &()).await?;
    assert_eq!(summary.records, 2500);
    assert_eq!(
        backend.inner().scan_all(&Space::default(), "").await?.len(),
        2500
    );
    assert_eq!(store.get("k2499").await?.as_deref(), Some(&b"v2499"[..]));
    store.close().await?;
    Ok(())
}
