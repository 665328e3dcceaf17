//! Tracing: every store operation, flush round and backend call runs in a span that names it,
//! and no span carries a stored value.

use std::sync::{Arc, Mutex};

use nadb_core::{FlushPolicy, MemoryBackend, Store};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

/// Every span opened, as its name and its fields written out.
#[derive(Clone, Default)]
struct Spans(Arc<Mutex<Vec<String>>>);

struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!(" {}={:?}", field.name(), value));
    }
}

impl<S: tracing::Subscriber> Layer<S> for Spans {
    fn on_new_span(&self, attrs: &Attributes<'_>, _id: &Id, _ctx: Context<'_, S>) {
        let mut fields = Fields(attrs.metadata().name().to_string());
        attrs.record(&mut fields);
        if let Ok(mut spans) = self.0.lock() {
            spans.push(fields.0);
        }
    }
}

#[test]
fn operations_rounds_and_backend_calls_open_spans_without_values() -> nadb_core::Result<()> {
    let spans = Spans::default();
    let subscriber = tracing_subscriber::registry().with(spans.clone());
    // A current-thread runtime keeps the flusher on the thread the subscriber is set for.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| nadb_core::Error::Config {
            reason: e.to_string(),
        })?;
    tracing::subscriber::with_default(subscriber, || {
        rt.block_on(async {
            let store = Store::builder(MemoryBackend::new())
                .flush_policy(FlushPolicy::Manual)
                .sweep_interval(None)
                .build()
                .await?;
            store.set("k", "s3cr3t-value").await?;
            assert!(store.get("k").await?.is_some());
            store.flush().await?;
            // Read from the backend this time: still one span for the one operation.
            assert!(store.get("k").await?.is_some());
            store.close().await
        })
    })?;
    let spans = spans.0.lock().map_err(|_| nadb_core::Error::Config {
        reason: "span list poisoned".into(),
    })?;
    let has = |want: &str| spans.iter().any(|s| s == want);
    for want in [
        "nadb.op op=\"set\" space=default/default",
        "nadb.op op=\"get\" space=default/default",
        "nadb.op op=\"flush\" space=default/default",
        "nadb.flush_round units=1",
        "nadb.backend.apply space=default/default ops=1 synced=true",
        "nadb.backend.sync",
    ] {
        assert!(has(want), "no span {want:?} among {spans:?}");
    }
    let gets = spans
        .iter()
        .filter(|s| s.starts_with("nadb.op op=\"get\""))
        .count();
    assert_eq!(gets, 2, "two gets, one from memory: {spans:?}");
    assert!(
        spans.iter().all(|s| !s.contains("s3cr3t")),
        "a span carries the value: {spans:?}"
    );
    Ok(())
}
