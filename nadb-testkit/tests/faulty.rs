//! FaultyBackend: injected faults reach the caller typed, and a failed write writes nothing.

use nadb_core::{Error, MemoryBackend, Store};
use nadb_testkit::{Fault, FaultOp, FaultyBackend};
use std::sync::Arc;

#[tokio::test]
async fn faults_are_typed_and_failed_writes_write_nothing() -> nadb_core::Result<()> {
    let faulty = Arc::new(FaultyBackend::new(MemoryBackend::new(), 1));
    let store = Store::builder(faulty.clone()).build().await?;

    faulty.fail_next(FaultOp::Apply, 1, Fault::Temporary);
    let err = store.set("k", "v").await.expect_err("injected");
    assert!(err.is_temporary());
    assert!(!store.exists("k").await?, "a failed apply must not write");

    faulty.fail_always(FaultOp::Apply, Fault::Permanent);
    let err = store.set("k", "v").await.expect_err("injected");
    assert!(matches!(
        err,
        Error::Backend {
            temporary: false,
            ..
        }
    ));
    assert!(store.incr("n", 1).await.is_err());
    faulty.heal();
    store.set("k", "v").await?;
    assert_eq!(store.get("k").await?.as_deref(), Some(&b"v"[..]));

    faulty.fail_next(FaultOp::Read, 2, Fault::Temporary);
    assert!(store.get("k").await.is_err());
    assert!(store.get_many(&["k"]).await.is_err());
    assert!(store.get("k").await?.is_some());

    faulty.fail_next(FaultOp::Sync, 1, Fault::Permanent);
    assert!(store.flush().await.is_err());
    store.flush().await?;
    assert_eq!(faulty.injected(), 6);
    assert_eq!(store.stats().await?.ops["set"].errors, 2);
    Ok(())
}

#[tokio::test]
async fn rate_faults_fire_at_about_the_rate() -> nadb_core::Result<()> {
    let faulty = FaultyBackend::new(MemoryBackend::new(), 42);
    faulty.fail_rate(FaultOp::Any, 0.1, Fault::Temporary);
    let store = Store::builder(Arc::new(faulty)).build().await?;
    let mut failed = 0;
    for i in 0..10_000 {
        if store.set(&format!("k{i}"), "v").await.is_err() {
            failed += 1;
        }
    }
    assert!(
        (700..1300).contains(&failed),
        "{failed} of 10000 failed at rate 0.1"
    );
    Ok(())
}
