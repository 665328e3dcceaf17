//! Spaces, batches and listing: isolation, atomicity, checks, scan order and paging, len, clear.

use std::time::Duration;

use bytes::Bytes;
use nadb_core::{
    BackendExt, Batch, Clock, Error, Expect, Meta, Record, Result, SetOptions, TagMode,
};

use crate::case::Ctx;

fn raw_record(ctx: &Ctx, value: &'static [u8], version: u64) -> Record {
    let mut meta = Meta::new(ctx.clock().now(), version);
    meta.value_len = value.len() as u64;
    meta.stored_len = value.len() as u64;
    Record::new(Bytes::from_static(value), meta)
}

/// Nothing crosses spaces: same key in two spaces, reads, scans, tags, len, clear.
pub async fn space_isolation(ctx: &Ctx) -> Result<()> {
    let a = ctx.store().await?;
    let b = a.with_space(ctx.other_space()).await?;
    a.set_with("k", "in a", &SetOptions::new().tags(["t"]))
        .await?;
    b.set_with("k", "in b", &SetOptions::new().tags(["t"]))
        .await?;
    b.set("only-b", "x").await?;
    assert_eq!(a.get("k").await?.as_deref(), Some(&b"in a"[..]));
    assert_eq!(b.get("k").await?.as_deref(), Some(&b"in b"[..]));
    assert_eq!(a.get("only-b").await?, None);
    assert_eq!(a.scan("", None, 10).await?.items, ["k"]);
    assert_eq!(a.len().await?, 1);
    assert_eq!(b.len().await?, 2);
    assert_eq!(a.list_tags().await?["t"], 1);
    assert_eq!(
        a.query_by_tags(&["t"], TagMode::All, None, 10).await?.items,
        ["k"]
    );
    assert_eq!(a.clear().await?, 1);
    assert_eq!(b.get("k").await?.as_deref(), Some(&b"in b"[..]));
    assert_eq!(b.delete_by_tag("t").await?, 1);
    assert!(b.exists("only-b").await?);
    Ok(())
}

/// `spaces()` lists a space once it holds a record and forgets it once it holds none.
pub async fn spaces_listed(ctx: &Ctx) -> Result<()> {
    let backend = ctx.backend();
    let (a, b) = (ctx.space().clone(), ctx.other_space());
    let listed = |all: &[nadb_core::Space], s: &nadb_core::Space| all.contains(s);
    let before = backend.spaces().await?;
    assert!(!listed(&before, &a) && !listed(&before, &b));
    backend.put(&a, "k", raw_record(ctx, b"v", 1)).await?;
    backend.put(&b, "k1", raw_record(ctx, b"v", 1)).await?;
    backend.put(&b, "k2", raw_record(ctx, b"v", 1)).await?;
    let all = backend.spaces().await?;
    assert!(listed(&all, &a) && listed(&all, &b), "both spaces listed");
    assert!(all.windows(2).all(|w| w[0] < w[1]), "sorted, no duplicates");
    backend.remove(&a, "k").await?;
    let all = backend.spaces().await?;
    assert!(!listed(&all, &a), "an emptied space is not listed");
    assert!(listed(&all, &b));
    backend.remove(&b, "k1").await?;
    backend.remove(&b, "k2").await?;
    Ok(())
}

/// A batch is one unit: a failing check or an invalid item writes nothing.
pub async fn batch_atomicity(ctx: &Ctx) -> Result<()> {
    let s = ctx.store().await?;
    s.set("existing", "old").await?;
    s.flush().await?;
    let r = s
        .set_many([("new1", "1".to_string()), ("", "bad key".to_string())])
        .await;
    assert!(matches!(r, Err(Error::InvalidKey { .. })));
    assert!(
        !s.exists("new1").await?,
        "an invalid batch must write nothing"
    );
    let backend = ctx.backend();
    let mut b = Batch::new(ctx.space().clone());
    b.check("existing", Expect::Absent);
    b.put("new2", raw_record(ctx, b"2", 1));
    b.delete("existing");
    assert!(matches!(
        backend.apply(&b).await,
        Err(Error::Conflict { .. })
    ));
    assert!(
        !s.exists("new2").await?,
        "a batch with a failed check must write nothing"
    );
    assert!(s.exists("existing").await?);
    s.set_many((0..500).map(|i| (format!("k{i:03}"), format!("{i}"))))
        .await?;
    assert_eq!(s.len().await?, 501);
    Ok(())
}

/// Backend-level checks: `Absent` and `Version` hold exactly; ops apply in order.
pub async fn batch_checks(ctx: &Ctx) -> Result<()> {
    let backend = ctx.backend();
    let space = ctx.space().clone();
    let mut b = Batch::new(space.clone());
    b.check("k", Expect::Absent)
        .put("k", raw_record(ctx, b"v", 10));
    backend.apply(&b).await?;
    assert!(matches!(
        backend.apply(&b).await,
        Err(Error::Conflict { .. })
    ));
    let mut b = Batch::new(space.clone());
    b.check("k", Expect::Version(11)).delete("k");
    assert!(matches!(
        backend.apply(&b).await,
        Err(Error::Conflict { .. })
    ));
    let mut b = Batch::new(space.clone());
    b.check("k", Expect::Version(10))
        .put("k", raw_record(ctx, b"w", 12))
        .delete("k")
        .put("k", raw_record(ctx, b"z", 13));
    backend.apply(&b).await?;
    let got = backend.get(&space, "k").await?.expect("last put wins");
    assert_eq!((got.value.as_ref(), got.meta.version), (&b"z"[..], 13));
    backend.remove(&space, "k").await?;
    assert!(backend.get(&space, "k").await?.is_none());
    Ok(())
}

/// Inside one batch, creation times follow the ops in order: a put after a delete of the same
/// key is a new record; a second put of a new key keeps the first put's creation time.
pub async fn batch_ops_apply_in_order(ctx: &Ctx) -> Result<()> {
    let backend = ctx.backend();
    let space = ctx.space().clone();
    let at = |ms: u64, version: u64| {
        let mut r = raw_record(ctx, b"v", version);
        r.meta.created_at = nadb_core::Timestamp::from_millis(ms);
        r.meta.updated_at = nadb_core::Timestamp::from_millis(ms);
        r
    };
    let mut b = Batch::new(space.clone());
    b.put("k", at(1_000, 1));
    backend.apply(&b).await?;
    let mut b = Batch::new(space.clone());
    b.delete("k").put("k", at(2_000, 2));
    b.put("n", at(3_000, 3)).put("n", at(4_000, 4));
    backend.apply(&b).await?;
    let k = backend.get(&space, "k").await?.expect("k").meta;
    assert_eq!(
        k.created_at.as_millis(),
        2_000,
        "a put after a delete is a new record"
    );
    let n = backend.get(&space, "n").await?.expect("n").meta;
    assert_eq!((n.created_at.as_millis(), n.version), (3_000, 4));
    Ok(())
}

/// A record's stored length is its value's: a put that claims another is stored as the value
/// it carries and read back whole.
pub async fn stored_length_is_the_value_length(ctx: &Ctx) -> Result<()> {
    let backend = ctx.backend();
    let space = ctx.space().clone();
    let wrong = || {
        let mut r = raw_record(ctx, b"abc", 1);
        r.meta.stored_len = 0;
        r
    };
    backend.put(&space, "a", wrong()).await?;
    let a = backend.get(&space, "a").await?.expect("a");
    assert_eq!((&a.value[..], a.meta.stored_len), (&b"abc"[..], 3));
    // An op pushed by hand skips `Batch::put`; the value still reads back.
    let mut b = Batch::new(space.clone());
    b.ops.push(nadb_core::Op::Put {
        key: "b".into(),
        record: wrong(),
    });
    backend.apply(&b).await?;
    let got = backend.get_many(&space, &["a".into(), "b".into()]).await?;
    let values: Vec<Option<&[u8]>> = got
        .iter()
        .map(|r| r.as_ref().map(|r| &r.value[..]))
        .collect();
    assert_eq!(values, [Some(&b"abc"[..]), Some(&b"abc"[..])]);
    Ok(())
}

/// Scan lists live keys in byte order, by prefix, in pages that join up exactly.
pub async fn scan_order_and_paging(ctx: &Ctx) -> Result<()> {
    let s = ctx.store().await?;
    let mut keys: Vec<String> = (0..237)
        .map(|i| format!("p/{:05}", i * 7919 % 1000))
        .collect();
    keys.extend(["p", "p0", "q/1", "o/9", "p/\u{10FFFF}", "p/é"].map(String::from));
    s.set_many(keys.iter().map(|k| (k.clone(), "v"))).await?;
    s.set_with(
        "p/zz-expiring",
        "v",
        &SetOptions::new().ttl(Duration::from_secs(1)),
    )
    .await?;
    ctx.clock().advance(Duration::from_secs(2));
    let mut want: Vec<String> = keys
        .iter()
        .filter(|k| k.starts_with("p/"))
        .cloned()
        .collect();
    want.sort();
    want.dedup();
    for limit in [1, 7, 100, 1000] {
        let mut got = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let page = s.scan("p/", cursor.as_deref(), limit).await?;
            assert!(page.items.len() <= limit);
            pages += 1;
            got.extend(page.items);
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
            assert!(pages < 10_000, "paging does not terminate");
        }
        assert_eq!(got, want, "limit {limit}");
    }
    let all = s.scan("", None, 10_000).await?;
    assert!(all.is_last());
    assert!(
        all.items.windows(2).all(|w| w[0] < w[1]),
        "not in byte order"
    );
    assert!(
        !all.items.iter().any(|k| k == "p/zz-expiring"),
        "scan returned an expired key"
    );
    assert!(s.scan("zzz", None, 10).await?.items.is_empty());
    assert!(
        s.scan("p/", Some("p/\u{10FFFF}"), 10)
            .await?
            .items
            .is_empty()
    );
    Ok(())
}

/// len counts live keys; clear removes everything in the space and says how many.
pub async fn len_and_clear(ctx: &Ctx) -> Result<()> {
    let s = ctx.store().await?;
    assert_eq!(s.len().await?, 0);
    assert!(s.is_empty().await?);
    s.set_many((0..2500).map(|i| (format!("k{i}"), "v")))
        .await?;
    s.set_with("short", "v", &SetOptions::new().ttl(Duration::from_secs(1)))
        .await?;
    assert_eq!(s.len().await?, 2501);
    ctx.clock().advance(Duration::from_secs(2));
    assert_eq!(s.len().await?, 2500, "len must not count expired keys");
    assert_eq!(s.clear().await?, 2500);
    assert_eq!(s.len().await?, 0);
    assert!(s.scan("", None, 10).await?.items.is_empty());
    assert!(ctx.backend().scan_all(ctx.space(), "").await?.is_empty());
    Ok(())
}
