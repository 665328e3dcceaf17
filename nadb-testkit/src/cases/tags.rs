//! Tags: All/Any queries with paging, counts, delete_by_tag, replacement on overwrite.

use std::collections::BTreeMap;
use std::time::Duration;

use nadb_core::{Result, SetOptions, TagMode};

use crate::case::Ctx;

/// All and Any give the same answers as set algebra over the written tags.
pub async fn tags_all_any(ctx: &Ctx) -> Result<()> {
    let s = ctx.store().await?;
    s.set_with("a", "1", &SetOptions::new().tags(["red", "big"]))
        .await?;
    s.set_with("b", "2", &SetOptions::new().tags(["red"]))
        .await?;
    s.set_with("c", "3", &SetOptions::new().tags(["big", "*", "{x}"]))
        .await?;
    s.set("d", "4").await?;
    let q = |tags: &'static [&'static str], mode| {
        let s = s.clone();
        async move {
            s.query_by_tags(tags, mode, None, 100)
                .await
                .map(|p| p.items)
        }
    };
    assert_eq!(q(&["red"], TagMode::All).await?, ["a", "b"]);
    assert_eq!(q(&["red", "big"], TagMode::All).await?, ["a"]);
    assert_eq!(q(&["red", "big"], TagMode::Any).await?, ["a", "b", "c"]);
    assert_eq!(
        q(&["red", "nope"], TagMode::All).await?,
        Vec::<String>::new()
    );
    assert_eq!(q(&["red", "nope"], TagMode::Any).await?, ["a", "b"]);
    assert_eq!(
        q(&["*"], TagMode::Any).await?,
        ["c"],
        "glob characters must be inert"
    );
    assert_eq!(q(&["{x}"], TagMode::All).await?, ["c"]);
    assert_eq!(q(&["nope"], TagMode::Any).await?, Vec::<String>::new());
    Ok(())
}

/// A query may name more tags than a key can carry and than a statement or script takes
/// arguments: Any finds each key with one of them, All finds none, a repeated tag counts once.
pub async fn tags_many_in_one_query(ctx: &Ctx) -> Result<()> {
    let s = ctx.store().await?;
    s.set_with("a", "1", &SetOptions::new().tags(["red", "big"]))
        .await?;
    s.set_with("b", "2", &SetOptions::new().tags(["t-39999"]))
        .await?;
    s.set_with("c", "3", &SetOptions::new().tags(["blue"]))
        .await?;
    let mut many: Vec<String> = (0..40_000).map(|i| format!("t-{i:05}")).collect();
    many.push("red".into());
    let q = |tags: Vec<String>, mode| {
        let s = s.clone();
        async move {
            s.query_by_tags(&tags, mode, None, 10)
                .await
                .map(|p| p.items)
        }
    };
    let owned = |t: &[&str]| t.iter().map(|t| t.to_string()).collect::<Vec<_>>();
    assert_eq!(q(many.clone(), TagMode::Any).await?, ["a", "b"]);
    assert!(q(many, TagMode::All).await?.is_empty());
    assert_eq!(q(owned(&["red", "big", "red"]), TagMode::All).await?, ["a"]);
    assert_eq!(q(owned(&["blue", "blue"]), TagMode::Any).await?, ["c"]);
    Ok(())
}

/// Tag queries page like scans, in key order, for both modes.
pub async fn tags_paging(ctx: &Ctx) -> Result<()> {
    let s = ctx.store().await?;
    for i in 0..300 {
        let tags: Vec<&str> = match i % 3 {
            0 => vec!["x"],
            1 => vec!["y"],
            _ => vec!["x", "y"],
        };
        s.set_with(&format!("k{i:04}"), "v", &SetOptions::new().tags(tags))
            .await?;
    }
    for (mode, expect) in [(TagMode::All, 100), (TagMode::Any, 300)] {
        let mut got = Vec::new();
        let mut cursor = None;
        loop {
            let page = s
                .query_by_tags(&["x", "y"], mode, cursor.as_deref(), 32)
                .await?;
            got.extend(page.items);
            cursor = page.next;
            if cursor.is_none() {
                break;
            }
        }
        assert_eq!(got.len(), expect, "{mode:?}");
        assert!(
            got.windows(2).all(|w| w[0] < w[1]),
            "{mode:?} pages out of order"
        );
    }
    Ok(())
}

/// list_tags counts live keys per tag and follows overwrites, deletes and expiry.
pub async fn list_tags_counts(ctx: &Ctx) -> Result<()> {
    let s = ctx.store().await?;
    s.set_with("a", "1", &SetOptions::new().tags(["red", "big"]))
        .await?;
    s.set_with("b", "2", &SetOptions::new().tags(["red"]))
        .await?;
    s.set_with(
        "c",
        "3",
        &SetOptions::new().tags(["red"]).ttl(Duration::from_secs(1)),
    )
    .await?;
    let want: BTreeMap<String, u64> = [("big".to_string(), 1), ("red".to_string(), 3)].into();
    assert_eq!(s.list_tags().await?, want);
    ctx.clock().advance(Duration::from_secs(2));
    s.set_with("a", "1", &SetOptions::new().tags(["small"]))
        .await?;
    s.delete("b").await?;
    let want: BTreeMap<String, u64> = [("small".to_string(), 1)].into();
    assert_eq!(s.list_tags().await?, want);
    Ok(())
}

/// delete_by_tag removes exactly the live keys with the tag.
pub async fn delete_by_tag(ctx: &Ctx) -> Result<()> {
    let s = ctx.store().await?;
    for i in 0..2100 {
        let tag = if i % 2 == 0 { "even" } else { "odd" };
        s.set_with(&format!("k{i}"), "v", &SetOptions::new().tags([tag]))
            .await?;
    }
    assert_eq!(s.delete_by_tag("even").await?, 1050);
    assert_eq!(s.len().await?, 1050);
    assert!(
        s.query_by_tags(&["even"], TagMode::Any, None, 10)
            .await?
            .items
            .is_empty()
    );
    assert_eq!(s.delete_by_tag("none").await?, 0);
    assert!(s.exists("k1").await? && !s.exists("k0").await?);
    Ok(())
}

/// A write replaces tags: old tags stop matching at once, in every query API alike.
pub async fn tags_replaced_on_overwrite(ctx: &Ctx) -> Result<()> {
    let s = ctx.store().await?;
    s.set_with("k", "1", &SetOptions::new().tags(["old"]))
        .await?;
    s.set_with("k", "2", &SetOptions::new().tags(["new"]))
        .await?;
    assert!(
        s.query_by_tags(&["old"], TagMode::Any, None, 10)
            .await?
            .items
            .is_empty()
    );
    assert_eq!(
        s.query_by_tags(&["new"], TagMode::Any, None, 10)
            .await?
            .items,
        ["k"]
    );
    s.set("k", "3").await?;
    assert!(
        s.query_by_tags(&["new"], TagMode::Any, None, 10)
            .await?
            .items
            .is_empty()
    );
    assert!(s.list_tags().await?.is_empty());
    assert!(
        s.get_with_metadata("k")
            .await?
            .expect("w")
            .meta
            .tags
            .is_empty()
    );
    s.incr("n", 1).await?;
    s.set_with("n", "5", &SetOptions::new().tags(["counter"]))
        .await?;
    s.incr("n", 1).await?;
    assert_eq!(
        &*s.get_with_metadata("n").await?.expect("w").meta.tags,
        ["counter"]
    );
    Ok(())
}
