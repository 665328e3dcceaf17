//! Lifecycle: persistence across reopen, closing, metrics.

use std::time::Duration;

use nadb_core::{Error, Result, SetOptions, TagMode};

use crate::case::Ctx;

/// Everything written (values, tags, expiry, counters, deletes) is there after a reopen.
pub async fn persistence_across_reopen(ctx: &Ctx) -> Result<()> {
    let s = ctx.store().await?;
    s.set_with("tagged", "v", &SetOptions::new().tags(["t"]))
        .await?;
    s.set_with(
        "expiring",
        "v",
        &SetOptions::new().ttl(Duration::from_secs(60)),
    )
    .await?;
    s.set("big", vec![b'z'; 100_000]).await?;
    s.set("gone", "v").await?;
    s.delete("gone").await?;
    s.incr("n", 42).await?;
    let meta = s.get_with_metadata("tagged").await?.expect("w").meta;
    s.flush().await?;
    drop(s);
    ctx.reopen().await?;
    let s = ctx.store().await?;
    assert_eq!(s.get("tagged").await?.as_deref(), Some(&b"v"[..]));
    assert_eq!(s.get_with_metadata("tagged").await?.expect("w").meta, meta);
    assert_eq!(
        s.query_by_tags(&["t"], TagMode::All, None, 10).await?.items,
        ["tagged"]
    );
    assert_eq!(s.get("big").await?.map(|b| b.len()), Some(100_000));
    assert_eq!(s.get("gone").await?, None);
    assert_eq!(s.incr("n", 0).await?, 42);
    ctx.clock().advance(Duration::from_secs(61));
    assert_eq!(s.get("expiring").await?, None, "expiry lost across reopen");
    assert_eq!(s.len().await?, 3);
    Ok(())
}

/// After close every call fails with `Closed`, on every handle; closing twice is fine.
pub async fn closed_store(ctx: &Ctx) -> Result<()> {
    let s = ctx.store().await?;
    s.set("k", "v").await?;
    let other = s.with_space(ctx.other_space()).await?;
    s.close().await?;
    s.close().await?;
    assert!(matches!(s.get("k").await, Err(Error::Closed)));
    assert!(matches!(s.set("k", "v").await, Err(Error::Closed)));
    assert!(matches!(other.len().await, Err(Error::Closed)));
    assert!(matches!(s.scan("", None, 1).await, Err(Error::Closed)));
    assert!(matches!(s.flush().await, Err(Error::Closed)));
    Ok(())
}

/// Metrics count every operation and byte, and serialise.
pub async fn stats(ctx: &Ctx) -> Result<()> {
    let s = ctx.store().await?;
    s.set("a", vec![b'a'; 10_000]).await?;
    s.set("b", "bb").await?;
    s.get("a").await?;
    s.get("b").await?;
    s.get("missing").await?;
    // Reads count the same whether a pending write, memory or the backend answers them.
    assert!(s.exists("b").await? && !s.exists("missing").await?);
    s.delete("b").await?;
    let _ = s.set("", "bad").await;
    assert!(matches!(s.get("").await, Err(Error::InvalidKey { .. })));
    assert!(matches!(s.exists("").await, Err(Error::InvalidKey { .. })));
    s.flush().await?;
    let st = s.stats().await?;
    assert_eq!(st.ops["set"].count, 3);
    assert_eq!(st.ops["set"].errors, 1);
    assert_eq!((st.ops["get"].count, st.ops["get"].errors), (4, 1));
    assert_eq!((st.ops["exists"].count, st.ops["exists"].errors), (3, 1));
    assert_eq!(st.ops["delete"].count, 1);
    assert!(st.ops["set"].max_ns >= st.ops["set"].p50_ns);
    assert_eq!(st.value_bytes_written, 10_002);
    // One value compressed, one stored as it is: each counts at its own size.
    assert_eq!(st.value_bytes_read, 10_002);
    let stored_a = s
        .get_with_metadata("a")
        .await?
        .map(|r| r.meta.stored_len)
        .ok_or_else(|| Error::Config {
            reason: "a is missing".into(),
        })?;
    assert!(stored_a < 10_000);
    assert_eq!(st.stored_bytes_read, stored_a + 2);
    assert!(
        st.compression_ratio > 10.0,
        "ratio {}",
        st.compression_ratio
    );
    assert_eq!(st.live_keys, 1);
    let json = serde_json::to_string(&st).map_err(|e| Error::Config {
        reason: e.to_string(),
    })?;
    assert!(json.contains("\"set\""));
    Ok(())
}
