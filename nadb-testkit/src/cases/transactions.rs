//! Transactions: visibility, rollback, conflicts, concurrent transfers.

use bytes::Bytes;
use nadb_core::{Error, Result, SetOptions, TagMode};

use crate::case::Ctx;

fn num(v: Option<Bytes>) -> i64 {
    v.and_then(|b| std::str::from_utf8(&b).ok().and_then(|s| s.parse().ok()))
        .unwrap_or(0)
}

/// Writes are invisible to others until commit, visible to the transaction itself at once,
/// and all visible after commit.
pub async fn tx_commit_visibility(ctx: &Ctx) -> Result<()> {
    let s = ctx.store().await?;
    s.set("a", "old-a").await?;
    s.set("gone", "x").await?;
    let mut tx = s.begin();
    tx.set("a", "new-a")?;
    tx.set_with("b", "new-b", &SetOptions::new().tags(["tx"]))?;
    tx.delete("gone")?;
    assert_eq!(tx.get("a").await?.as_deref(), Some(&b"new-a"[..]));
    assert_eq!(tx.get("gone").await?, None);
    assert_eq!(
        s.get("a").await?.as_deref(),
        Some(&b"old-a"[..]),
        "uncommitted write visible"
    );
    assert_eq!(s.get("b").await?, None);
    assert!(s.exists("gone").await?);
    assert_eq!(tx.len(), 3);
    tx.commit().await?;
    assert_eq!(s.get("a").await?.as_deref(), Some(&b"new-a"[..]));
    assert_eq!(s.get("b").await?.as_deref(), Some(&b"new-b"[..]));
    assert!(!s.exists("gone").await?);
    assert_eq!(
        s.query_by_tags(&["tx"], TagMode::All, None, 10)
            .await?
            .items,
        ["b"]
    );
    Ok(())
}

/// Dropping or rolling back a transaction leaves every prior value in place.
pub async fn tx_rollback(ctx: &Ctx) -> Result<()> {
    let s = ctx.store().await?;
    s.set("a", "1").await?;
    {
        let mut tx = s.begin();
        tx.set("a", "2")?;
        tx.set("b", "2")?;
        tx.delete("a")?;
    }
    let mut tx = s.begin();
    tx.set("c", "3")?;
    tx.rollback();
    assert_eq!(s.get("a").await?.as_deref(), Some(&b"1"[..]));
    assert_eq!(s.get("b").await?, None);
    assert_eq!(s.get("c").await?, None);
    assert_eq!(s.len().await?, 1);
    Ok(())
}

/// A key read by the transaction and changed by someone else before commit → `Conflict`, and
/// nothing of the transaction is applied. Creating a key the transaction saw absent counts, and
/// so does the expiry of a value it saw.
pub async fn tx_conflict(ctx: &Ctx) -> Result<()> {
    let s = ctx.store().await?;
    s.set("k", "1").await?;
    let mut tx = s.begin();
    assert_eq!(tx.get("k").await?.as_deref(), Some(&b"1"[..]));
    tx.set("k", "from-tx")?;
    tx.set("other", "from-tx")?;
    s.set("k", "from-outside").await?;
    assert!(matches!(tx.commit().await, Err(Error::Conflict { .. })));
    assert_eq!(s.get("k").await?.as_deref(), Some(&b"from-outside"[..]));
    assert_eq!(
        s.get("other").await?,
        None,
        "a conflicting transaction applied a write"
    );

    let mut tx = s.begin();
    assert_eq!(tx.get("new").await?, None);
    tx.set("new", "tx")?;
    s.set("new", "outside").await?;
    assert!(matches!(tx.commit().await, Err(Error::Conflict { .. })));
    assert_eq!(s.get("new").await?.as_deref(), Some(&b"outside"[..]));

    // A read-only transaction is checked too: its reads must have been consistent.
    let mut tx = s.begin();
    assert!(tx.get("k").await?.is_some());
    s.set("k", "changed-under-a-reader").await?;
    assert!(matches!(tx.commit().await, Err(Error::Conflict { .. })));

    // A value the transaction saw that has expired by the commit is gone: that is a change.
    s.set_with(
        "lease",
        "me",
        &SetOptions::new().ttl(std::time::Duration::from_secs(10)),
    )
    .await?;
    let mut tx = s.begin();
    assert!(tx.get("lease").await?.is_some());
    tx.set("work", "done")?;
    ctx.clock().advance(std::time::Duration::from_secs(11));
    assert!(matches!(tx.commit().await, Err(Error::Conflict { .. })));
    assert_eq!(s.get("work").await?, None);

    // Blind writes (nothing read) never conflict.
    let mut tx = s.begin();
    tx.set("k", "blind")?;
    s.set("k", "outside-again").await?;
    tx.commit().await?;
    assert_eq!(s.get("k").await?.as_deref(), Some(&b"blind"[..]));
    Ok(())
}

/// 16 tasks × 20 random transfers between 8 accounts through `Store::transaction`: the total
/// is conserved and no account goes missing.
pub async fn tx_concurrent_transfers(ctx: &Ctx) -> Result<()> {
    let s = ctx.store().await?;
    for i in 0..8 {
        s.set(&format!("acct{i}"), "100").await?;
    }
    let mut tasks = Vec::new();
    for t in 0..16u64 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            for j in 0..20u64 {
                let from = format!("acct{}", (t + j) % 8);
                let to = format!("acct{}", (t * 3 + j + 1) % 8);
                if from == to {
                    continue;
                }
                s.transaction(|tx| {
                    let (from, to) = (from.clone(), to.clone());
                    Box::pin(async move {
                        let a = num(tx.get(&from).await?);
                        let b = num(tx.get(&to).await?);
                        tx.set(&from, (a - 1).to_string())?;
                        tx.set(&to, (b + 1).to_string())?;
                        Ok(())
                    })
                })
                .await?;
            }
            Ok::<_, Error>(())
        }));
    }
    for t in tasks {
        t.await.expect("task panicked")?;
    }
    let mut total = 0;
    for i in 0..8 {
        total += num(s.get(&format!("acct{i}")).await?);
    }
    assert_eq!(total, 800, "money was created or destroyed");
    Ok(())
}
