//! Expiry on the mock clock: never returned after expiry by any read; swept; touch and persist.

use std::time::Duration;

use nadb_core::{KeyTtl, Result, SetOptions, TagMode};

use crate::case::Ctx;

/// At the expiry instant and after it, no read, scan, count or query returns the record.
pub async fn ttl_hidden_everywhere(ctx: &Ctx) -> Result<()> {
    let s = ctx.store().await?;
    let opts = SetOptions::new()
        .tags(["t"])
        .ttl(Duration::from_millis(1500));
    s.set_with("e", "v", &opts).await?;
    s.set_with("keep", "v", &SetOptions::new().tags(["t"]))
        .await?;
    ctx.clock().advance(Duration::from_millis(1499));
    assert!(s.exists("e").await?, "expired too early");
    ctx.clock().advance(Duration::from_millis(1));
    assert_eq!(s.get("e").await?, None);
    assert_eq!(s.get_with_metadata("e").await?, None);
    assert!(!s.exists("e").await?);
    assert_eq!(s.get_many(&["e"]).await?, vec![None]);
    assert_eq!(s.ttl("e").await?, None);
    assert_eq!(s.scan("", None, 10).await?.items, ["keep"]);
    assert_eq!(s.len().await?, 1);
    assert_eq!(
        s.query_by_tags(&["t"], TagMode::Any, None, 10).await?.items,
        ["keep"]
    );
    assert_eq!(s.list_tags().await?["t"], 1);
    assert!(
        !s.touch("e", Duration::from_secs(60)).await?,
        "touch revived an expired key"
    );
    assert!(!s.persist("e").await?, "persist revived an expired key");
    assert!(
        !s.delete("e").await?,
        "delete reported an expired key as existing"
    );
    assert_eq!(s.incr("e2", 1).await?, 1);
    Ok(())
}

/// Once expired, a key behaves as absent for writes too: set_if_absent and incr start fresh.
pub async fn ttl_expired_key_is_absent_for_writes(ctx: &Ctx) -> Result<()> {
    let s = ctx.store().await?;
    let opts = SetOptions::new().ttl(Duration::from_secs(1));
    s.set_with("lock", "old-owner", &opts).await?;
    s.set_with("n", "41", &opts).await?;
    ctx.clock().advance(Duration::from_secs(1));
    assert!(
        s.set_if_absent("lock", "new-owner", &SetOptions::new())
            .await?
    );
    assert_eq!(s.get("lock").await?.as_deref(), Some(&b"new-owner"[..]));
    assert_eq!(
        s.incr("n", 1).await?,
        1,
        "incr must not resurrect an expired value"
    );
    Ok(())
}

/// `sweep_expired` removes expired records from the backend and leaves the rest.
pub async fn ttl_sweep_removes(ctx: &Ctx) -> Result<()> {
    let s = ctx.store().await?;
    for i in 0..50 {
        let ttl = Duration::from_secs(if i % 2 == 0 { 1 } else { 100 });
        s.set_with(
            &format!("k{i}"),
            "v",
            &SetOptions::new().ttl(ttl).tags(["t"]),
        )
        .await?;
    }
    ctx.clock().advance(Duration::from_secs(2));
    assert_eq!(s.sweep_expired().await?, 25);
    let backend = ctx.backend();
    assert!(
        backend.get(ctx.space(), "k0").await?.is_none(),
        "swept record still stored"
    );
    assert!(backend.get(ctx.space(), "k1").await?.is_some());
    assert_eq!(s.stats().await?.expired_removed, 25);
    assert_eq!(s.sweep_expired().await?, 0);
    assert_eq!(s.list_tags().await?["t"], 25);
    Ok(())
}

/// The background sweeper runs on its interval without being called.
pub async fn ttl_background_sweeper(ctx: &Ctx) -> Result<()> {
    let s = ctx
        .builder()
        .sweep_interval(Some(Duration::from_millis(20)))
        .build()
        .await?;
    s.set_with("k", "v", &SetOptions::new().ttl(Duration::from_secs(1)))
        .await?;
    // The sweeper works on what the backend holds; buffered policies must flush first.
    s.flush().await?;
    ctx.clock().advance(Duration::from_secs(2));
    let backend = ctx.backend();
    for _ in 0..500 {
        if backend.get(ctx.space(), "k").await?.is_none() && s.stats().await?.expired_removed >= 1 {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the background sweeper did not remove an expired record within 5 s");
}

/// A sweep never removes a key that was rewritten after it expired.
pub async fn ttl_sweep_spares_rewrites(ctx: &Ctx) -> Result<()> {
    let s = ctx.store().await?;
    s.set_with("k", "old", &SetOptions::new().ttl(Duration::from_secs(1)))
        .await?;
    ctx.clock().advance(Duration::from_secs(2));
    s.set("k", "new").await?;
    s.sweep_expired().await?;
    assert_eq!(s.get("k").await?.as_deref(), Some(&b"new"[..]));
    Ok(())
}

/// ttl reports the remaining time; touch extends it; persist removes it.
pub async fn ttl_touch_persist(ctx: &Ctx) -> Result<()> {
    let s = ctx.store().await?;
    assert_eq!(s.ttl("missing").await?, None);
    s.set_with("k", "v", &SetOptions::new().ttl(Duration::from_secs(10)))
        .await?;
    ctx.clock().advance(Duration::from_secs(4));
    assert_eq!(
        s.ttl("k").await?,
        Some(KeyTtl::Remaining(Duration::from_secs(6)))
    );
    assert!(s.touch("k", Duration::from_secs(30)).await?);
    assert_eq!(
        s.ttl("k").await?,
        Some(KeyTtl::Remaining(Duration::from_secs(30)))
    );
    ctx.clock().advance(Duration::from_secs(20));
    assert!(s.exists("k").await?, "touch did not extend the expiry");
    assert!(s.persist("k").await?);
    assert_eq!(s.ttl("k").await?, Some(KeyTtl::Never));
    ctx.clock().advance(Duration::from_secs(3600));
    assert_eq!(s.get("k").await?.as_deref(), Some(&b"v"[..]));
    assert!(!s.touch("missing", Duration::from_secs(1)).await?);
    assert!(!s.persist("missing").await?);
    s.set("plain", "v").await?;
    assert!(s.touch("plain", Duration::from_secs(5)).await?);
    ctx.clock().advance(Duration::from_secs(5));
    assert!(!s.exists("plain").await?);
    Ok(())
}
