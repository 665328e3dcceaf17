//! FaultyBackend and the store's failure handling: temporary errors are retried, permanent
//! ones reach the caller typed, and a failed write writes nothing.

use std::sync::Arc;
use std::time::Duration;

use nadb_core::{Error, MemoryBackend, Store, WriteConfig};
use nadb_testkit::{Fault, FaultOp, FaultyBackend};

fn quick_retries() -> WriteConfig {
    WriteConfig {
        retry_base_delay: Duration::from_micros(100),
        retry_max_delay: Duration::from_millis(2),
        ..WriteConfig::default()
    }
}

#[tokio::test]
async fn faults_are_retried_or_reported_and_failed_writes_write_nothing() -> nadb_core::Result<()> {
    let faulty = Arc::new(FaultyBackend::new(MemoryBackend::new(), 1));
    let store = Store::builder(faulty.clone())
        .write_config(quick_retries())
        .build()
        .await?;

    // A temporary apply failure is retried inside the pipeline: the caller sees success.
    faulty.fail_next(FaultOp::Apply, 2, Fault::Temporary);
    store.set("k", "v").await?;
    assert_eq!(store.get("k").await?.as_deref(), Some(&b"v"[..]));
    assert_eq!(store.stats().await?.pipeline.retries, 2);

    // A permanent failure reaches the caller and writes nothing.
    faulty.fail_always(FaultOp::Apply, Fault::Permanent);
    let err = store.set("k2", "v").await.expect_err("injected");
    assert!(
        matches!(
            err,
            Error::Backend {
                temporary: false,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        !store.exists("k2").await?,
        "a failed write must not be readable"
    );
    assert!(store.incr("n", 1).await.is_err());
    faulty.heal();
    store.set("k2", "v").await?;
    assert!(store.exists("k2").await?);

    // Reads are not retried by the store: the caller gets the error.
    faulty.fail_next(FaultOp::Read, 2, Fault::Temporary);
    assert!(store.get("k").await.expect_err("injected").is_temporary());
    assert!(store.get_many(&["k"]).await.is_err());
    assert!(store.get("k").await?.is_some());

    faulty.fail_next(FaultOp::Sync, 1, Fault::Permanent);
    assert!(store.flush().await.is_err());
    store.flush().await?;
    assert_eq!(store.stats().await?.ops["set"].errors, 1);
    Ok(())
}

#[tokio::test]
async fn ten_percent_temporary_faults_lose_nothing() -> nadb_core::Result<()> {
    let faulty = Arc::new(FaultyBackend::new(MemoryBackend::new(), 42));
    faulty.fail_rate(FaultOp::Apply, 0.1, Fault::Temporary);
    faulty.fail_rate(FaultOp::Sync, 0.1, Fault::Temporary);
    let store = Store::builder(faulty.clone())
        .write_config(quick_retries())
        .build()
        .await?;
    for i in 0..2_000 {
        store.set(&format!("k{i}"), format!("v{i}")).await?;
    }
    faulty.heal();
    for i in 0..2_000 {
        let want = format!("v{i}");
        assert_eq!(
            store.get(&format!("k{i}")).await?.as_deref(),
            Some(want.as_bytes())
        );
    }
    assert!(
        faulty.injected() > 100,
        "only {} faults injected",
        faulty.injected()
    );
    assert_eq!(store.stats().await?.pipeline.retries, faulty.injected());
    Ok(())
}
