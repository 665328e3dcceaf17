//! Basic reads and writes: CRUD, overwrite, byte values, empty and large values, metadata.

use std::time::Duration;

use bytes::Bytes;
use nadb_core::{Clock, Codec, Result, SetOptions};

use crate::case::Ctx;

/// Deterministic incompressible bytes (xorshift), so large-value cases need no RNG state.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// set → get → exists → delete → get, and delete's answer.
pub async fn put_get_delete(ctx: &Ctx) -> Result<()> {
    let s = ctx.store().await?;
    assert_eq!(s.get("k").await?, None);
    assert!(!s.exists("k").await?);
    s.set("k", "v1").await?;
    assert_eq!(s.get("k").await?.as_deref(), Some(&b"v1"[..]));
    assert!(s.exists("k").await?);
    assert!(
        s.delete("k").await?,
        "delete of an existing key must say it existed"
    );
    assert_eq!(s.get("k").await?, None);
    assert!(!s.exists("k").await?);
    assert!(!s.delete("k").await?, "delete of a missing key must say so");
    Ok(())
}

/// An overwrite replaces value and tags, keeps created_at, moves updated_at and version.
pub async fn overwrite(ctx: &Ctx) -> Result<()> {
    let s = ctx.store().await?;
    s.set_with("k", "first", &SetOptions::new().tags(["a"]))
        .await?;
    let m1 = s.get_with_metadata("k").await?.expect("written").meta;
    ctx.clock().advance(Duration::from_secs(5));
    s.set("k", "second").await?;
    let r2 = s.get_with_metadata("k").await?.expect("written");
    assert_eq!(r2.value, Bytes::from_static(b"second"));
    assert!(
        r2.meta.tags.is_empty(),
        "a set without tags must clear the old tags"
    );
    assert_eq!(
        r2.meta.created_at, m1.created_at,
        "created_at must survive an overwrite"
    );
    assert!(r2.meta.updated_at > m1.updated_at);
    assert_ne!(r2.meta.version, m1.version);
    assert_eq!(s.len().await?, 1);
    Ok(())
}

/// Every byte value 0..=255 alone, and all of them in one value, round-trip exactly.
pub async fn every_byte_value(ctx: &Ctx) -> Result<()> {
    let s = ctx.store().await?;
    let all: Vec<u8> = (0..=255u8).collect();
    s.set("all", all.clone()).await?;
    assert_eq!(s.get("all").await?.as_deref(), Some(&all[..]));
    let items: Vec<(String, Bytes)> = (0..=255u8)
        .map(|b| (format!("b{b}"), Bytes::from(vec![b])))
        .collect();
    s.set_many(items.clone()).await?;
    for (k, v) in items {
        assert_eq!(s.get(&k).await?, Some(v), "byte value under {k}");
    }
    Ok(())
}

/// An empty value is a value: stored, found, distinct from absence.
pub async fn empty_value(ctx: &Ctx) -> Result<()> {
    let s = ctx.store().await?;
    s.set("empty", Bytes::new()).await?;
    assert_eq!(s.get("empty").await?, Some(Bytes::new()));
    assert!(s.exists("empty").await?);
    let m = s.get_with_metadata("empty").await?.expect("written").meta;
    assert_eq!((m.value_len, m.stored_len), (0, 0));
    Ok(())
}

/// 16 MiB values, incompressible and compressible, round-trip exactly.
pub async fn large_value_16mib(ctx: &Ctx) -> Result<()> {
    let s = ctx.store().await?;
    let random = noise(16 << 20, 0x5EED);
    s.set("random", random.clone()).await?;
    assert!(
        s.get("random").await?.as_deref() == Some(&random[..]),
        "16 MiB random value differs"
    );
    let m = s.get_with_metadata("random").await?.expect("written").meta;
    assert_eq!(m.codec, Codec::Raw, "incompressible data must be kept raw");
    assert_eq!(m.stored_len, 16 << 20);
    let text: Vec<u8> = b"nadb ".iter().copied().cycle().take(16 << 20).collect();
    s.set("text", text.clone()).await?;
    assert!(
        s.get("text").await?.as_deref() == Some(&text[..]),
        "16 MiB text value differs"
    );
    let m = s.get_with_metadata("text").await?.expect("written").meta;
    assert_eq!(m.codec, Codec::Zstd);
    assert!(m.stored_len < m.value_len / 10);
    Ok(())
}

/// Compression: kept only when smaller, flagged per record, never confused with raw data
/// that looks compressed.
pub async fn compression(ctx: &Ctx) -> Result<()> {
    let s = ctx.store().await?;
    let small = vec![b'a'; 100];
    s.set("small", small.clone()).await?;
    assert_eq!(
        s.get_with_metadata("small").await?.expect("w").meta.codec,
        Codec::Raw
    );
    let mut tricky = vec![0x28, 0xB5, 0x2F, 0xFD];
    tricky.extend(noise(4096, 3));
    s.set("tricky", tricky.clone()).await?;
    let r = s.get_with_metadata("tricky").await?.expect("w");
    assert_eq!(
        r.value.as_ref(),
        &tricky[..],
        "raw value starting with zstd magic"
    );
    assert_eq!(r.meta.codec, Codec::Raw);
    assert_eq!(r.meta.stored_len, r.meta.value_len);
    let stats = s.stats().await?;
    assert!(stats.stored_bytes_written <= stats.value_bytes_written);
    Ok(())
}

/// Metadata fields are filled in as documented.
pub async fn metadata(ctx: &Ctx) -> Result<()> {
    let s = ctx.store().await?;
    let now = ctx.clock().now();
    s.set_with(
        "k",
        vec![b'x'; 5000],
        &SetOptions::new()
            .tags(["b", "a", "a"])
            .ttl(Duration::from_secs(60)),
    )
    .await?;
    let m = s.get_with_metadata("k").await?.expect("written").meta;
    assert_eq!(m.created_at, now);
    assert_eq!(m.updated_at, now);
    assert_eq!(
        m.expires_at.map(|t| t.as_millis()),
        Some(now.as_millis() + 60_000)
    );
    assert_eq!(&*m.tags, ["a", "b"]);
    assert_eq!(m.value_len, 5000);
    assert_eq!(m.codec, Codec::Zstd);
    assert!(m.stored_len < 5000);
    Ok(())
}

/// get_many answers in the order asked, with gaps for missing and expired keys.
pub async fn get_many(ctx: &Ctx) -> Result<()> {
    let s = ctx.store().await?;
    s.set_many([("a", "1"), ("c", "3")]).await?;
    s.set_with("e", "5", &SetOptions::new().ttl(Duration::from_secs(1)))
        .await?;
    ctx.clock().advance(Duration::from_secs(2));
    let got = s.get_many(&["c", "b", "a", "e", "a"]).await?;
    let want: Vec<Option<Bytes>> = vec![
        Some("3".into()),
        None,
        Some("1".into()),
        None,
        Some("1".into()),
    ];
    assert_eq!(got, want);
    assert!(s.get_many::<&str>(&[]).await?.is_empty());
    Ok(())
}

/// delete_many removes what exists and counts only live records.
pub async fn delete_many(ctx: &Ctx) -> Result<()> {
    let s = ctx.store().await?;
    s.set_many([("a", "1"), ("b", "2"), ("c", "3")]).await?;
    assert_eq!(s.delete_many(&["a", "b", "x", "a"]).await?, 2);
    assert_eq!(
        s.get_many(&["a", "b", "c"]).await?,
        vec![None, None, Some("3".into())]
    );
    Ok(())
}

/// JSON helpers round-trip and a type mismatch is a typed error that does not quote the value.
pub async fn json(ctx: &Ctx) -> Result<()> {
    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct User {
        name: String,
        age: u32,
    }
    let s = ctx.store().await?;
    let u = User {
        name: "ada".into(),
        age: 36,
    };
    s.set_json("u", &u).await?;
    assert_eq!(s.get_json::<User>("u").await?, Some(u));
    assert_eq!(s.get_json::<User>("missing").await?, None);
    s.set("bad", "{\"name\":\"topsecret\",\"age\":\"x\"}")
        .await?;
    let err = s.get_json::<User>("bad").await.expect_err("type mismatch");
    assert!(
        matches!(err, nadb_core::Error::InvalidValue { .. }),
        "{err:?}"
    );
    assert!(!err.to_string().contains("topsecret") && !format!("{err:?}").contains("topsecret"));
    Ok(())
}
