//! Conditional writes and counters, alone and under 32 concurrent tasks.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use nadb_core::{Cas, Error, Result, SetOptions};

use crate::case::Ctx;

/// set_if_absent writes only when nothing live is there.
pub async fn set_if_absent(ctx: &Ctx) -> Result<()> {
    let s = ctx.store().await?;
    let o = SetOptions::new();
    assert!(s.set_if_absent("k", "first", &o).await?);
    assert!(!s.set_if_absent("k", "second", &o).await?);
    assert_eq!(s.get("k").await?.as_deref(), Some(&b"first"[..]));
    s.delete("k").await?;
    assert!(
        s.set_if_absent("k", "third", &o.clone().tags(["t"]))
            .await?
    );
    assert_eq!(s.list_tags().await?["t"], 1);
    Ok(())
}

/// compare_and_swap compares the record version; `None` means "must be absent".
pub async fn compare_and_swap(ctx: &Ctx) -> Result<()> {
    let s = ctx.store().await?;
    let o = SetOptions::new();
    assert!(s.compare_and_swap("k", None, "v1", &o).await?.is_swapped());
    assert_eq!(
        s.compare_and_swap("k", None, "x", &o).await?,
        Cas::Mismatch {
            current: Some(s.get_with_metadata("k").await?.expect("w").meta.version)
        }
    );
    let v1 = s.get_with_metadata("k").await?.expect("w").meta.version;
    let Cas::Swapped { version: v2 } = s.compare_and_swap("k", Some(v1), "v2", &o).await? else {
        panic!("swap at the current version failed");
    };
    assert_eq!(s.get_with_metadata("k").await?.expect("w").meta.version, v2);
    assert!(
        !s.compare_and_swap("k", Some(v1), "v3", &o)
            .await?
            .is_swapped()
    );
    assert_eq!(s.get("k").await?.as_deref(), Some(&b"v2"[..]));
    s.delete("k").await?;
    assert_eq!(
        s.compare_and_swap("k", Some(v2), "v4", &o).await?,
        Cas::Mismatch { current: None }
    );
    Ok(())
}

/// 32 tasks each add 1 through CAS loops, 50 times: the counter ends at exactly 1,600.
pub async fn cas_concurrent(ctx: &Ctx) -> Result<()> {
    let s = ctx.store().await?;
    s.set("counter", "0").await?;
    let mismatches = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let s = s.clone();
        let mismatches = mismatches.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..50 {
                let mut attempts = 0;
                loop {
                    attempts += 1;
                    assert!(
                        attempts < 100_000,
                        "a CAS loop never succeeded: stale reads?"
                    );
                    let r = s
                        .get_with_metadata("counter")
                        .await?
                        .expect("counter exists");
                    let n: u64 = std::str::from_utf8(&r.value)
                        .ok()
                        .and_then(|t| t.parse().ok())
                        .expect("counter is a number");
                    let next = (n + 1).to_string();
                    let cas = s
                        .compare_and_swap("counter", Some(r.meta.version), next, &SetOptions::new())
                        .await?;
                    if cas.is_swapped() {
                        break;
                    }
                    mismatches.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok::<_, Error>(())
        }));
    }
    for t in tasks {
        t.await.expect("task panicked")?;
    }
    assert_eq!(s.get("counter").await?.as_deref(), Some(&b"1600"[..]));
    Ok(())
}

/// 32 tasks × 100 increments of ±1 and +7 on shared counters sum exactly.
pub async fn incr_concurrent(ctx: &Ctx) -> Result<()> {
    let s = ctx.store().await?;
    let mut tasks = Vec::new();
    for t in 0..32i64 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..100i64 {
                s.incr("up", 1).await?;
                s.decr("down", 1).await?;
                s.incr(&format!("mine-{t}"), 7).await?;
                if i % 10 == 0 {
                    s.incr("mixed", if t % 2 == 0 { 3 } else { -3 }).await?;
                }
            }
            Ok::<_, Error>(())
        }));
    }
    for t in tasks {
        t.await.expect("task panicked")?;
    }
    assert_eq!(s.get("up").await?.as_deref(), Some(&b"3200"[..]));
    assert_eq!(s.get("down").await?.as_deref(), Some(&b"-3200"[..]));
    assert_eq!(s.get("mixed").await?.as_deref(), Some(&b"0"[..]));
    for t in 0..32 {
        assert_eq!(
            s.get(&format!("mine-{t}")).await?.as_deref(),
            Some(&b"700"[..])
        );
    }
    Ok(())
}

/// incr on a non-integer or past i64 is a typed error and leaves the value alone.
pub async fn incr_errors(ctx: &Ctx) -> Result<()> {
    let s = ctx.store().await?;
    s.set("text", "secret-text").await?;
    let err = s.incr("text", 1).await.expect_err("not a number");
    assert!(matches!(err, Error::InvalidValue { .. }));
    assert!(
        !err.to_string().contains("secret-text"),
        "error quoted the value"
    );
    s.set("max", i64::MAX.to_string()).await?;
    assert!(matches!(
        s.incr("max", 1).await,
        Err(Error::InvalidValue { .. })
    ));
    assert_eq!(s.get("max").await?, Some(i64::MAX.to_string().into()));
    s.set("min", i64::MIN.to_string()).await?;
    assert!(matches!(
        s.decr("min", 1).await,
        Err(Error::InvalidValue { .. })
    ));
    assert_eq!(s.incr("neg", -5).await?, -5);
    Ok(())
}
