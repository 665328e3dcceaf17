//! Hostile and invalid input: odd keys stored exactly, bad keys, values, spaces, tags, TTLs
//! and limits rejected with typed errors, never a panic.

use std::time::Duration;

use bytes::Bytes;
use nadb_core::{Error, Result, SetOptions, Space, TagMode, Timestamp};

use crate::case::Ctx;

/// Keys that look like paths, globs, patterns, control characters or emoji.
pub fn hostile_keys() -> Vec<String> {
    let mut keys: Vec<String> = [
        "../x",
        "/abs",
        "a/b",
        "*",
        "?",
        "[x]",
        "{x}",
        ":",
        "\0",
        "a\0b",
        "\n",
        "line\r\nbreak",
        "🚀",
        "ключ",
        "..",
        ".",
        "~",
        "%2e%2e",
        "C:\\win",
        "\\\\?\\unc",
        " ",
        "\t",
        "'\"",
        "$(rm -rf /)",
        "{db:ns}",
        "a*b?c[d]",
        "\u{202e}rtl",
        "\u{feff}bom",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    keys.push("k".repeat(1024));
    keys.push("é".repeat(512));
    keys
}

/// Every hostile key is stored and read back exactly, and none reads another's value.
pub async fn hostile_keys_round_trip(ctx: &Ctx) -> Result<()> {
    let s = ctx.store().await?;
    let keys = hostile_keys();
    for (i, k) in keys.iter().enumerate() {
        s.set(k, format!("value-{i}")).await?;
    }
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(
            s.get(k).await?,
            Some(Bytes::from(format!("value-{i}"))),
            "hostile key #{i} ({} bytes)",
            k.len()
        );
    }
    let mut listed = s.scan("", None, 1000).await?.items;
    let mut want = keys.clone();
    listed.sort();
    want.sort();
    assert_eq!(
        listed, want,
        "scan must list every hostile key exactly once"
    );
    assert_eq!(s.len().await?, keys.len() as u64);
    for k in &keys {
        assert!(s.delete(k).await?);
    }
    assert_eq!(s.len().await?, 0);
    Ok(())
}

/// Empty and over-long keys are `InvalidKey`; the limit is configurable.
pub async fn key_limits(ctx: &Ctx) -> Result<()> {
    let s = ctx.store().await?;
    let long = "k".repeat(1025);
    for bad in ["", long.as_str()] {
        assert!(matches!(
            s.set(bad, "v").await,
            Err(Error::InvalidKey { .. })
        ));
        assert!(matches!(s.get(bad).await, Err(Error::InvalidKey { .. })));
        assert!(matches!(s.delete(bad).await, Err(Error::InvalidKey { .. })));
        assert!(matches!(s.exists(bad).await, Err(Error::InvalidKey { .. })));
        assert!(matches!(
            s.incr(bad, 1).await,
            Err(Error::InvalidKey { .. })
        ));
        assert!(matches!(
            s.get_many(&[bad]).await,
            Err(Error::InvalidKey { .. })
        ));
        assert!(matches!(
            s.set_many([(bad, "v")]).await,
            Err(Error::InvalidKey { .. })
        ));
    }
    let small = ctx.builder().max_key_len(4).build().await?;
    small.set("abcd", "v").await?;
    assert!(matches!(
        small.set("abcde", "v").await,
        Err(Error::InvalidKey { .. })
    ));
    assert!(matches!(
        ctx.builder().max_key_len(0).build().await,
        Err(Error::Config { .. })
    ));
    Ok(())
}

/// Values over the limit are `ValueTooLarge` with size and limit; nothing is written.
pub async fn value_limits(ctx: &Ctx) -> Result<()> {
    let s = ctx.builder().max_value_size(1 << 20).build().await?;
    s.set("fits", vec![0u8; 1 << 20]).await?;
    match s.set("big", vec![0u8; (1 << 20) + 1]).await {
        Err(Error::ValueTooLarge { size, limit }) => {
            assert_eq!((size, limit), ((1 << 20) + 1, 1 << 20));
        }
        other => panic!("expected ValueTooLarge, got {other:?}"),
    }
    assert!(!s.exists("big").await?);
    let r = s
        .set_many([("ok", vec![0u8; 10]), ("big", vec![0u8; (1 << 20) + 1])])
        .await;
    assert!(matches!(r, Err(Error::ValueTooLarge { .. })));
    assert!(
        !s.exists("ok").await?,
        "a rejected batch must write nothing"
    );
    Ok(())
}

/// Invalid database and namespace names are `InvalidSpace`.
pub async fn invalid_spaces(_ctx: &Ctx) -> Result<()> {
    let long = "n".repeat(65);
    for bad in [
        "",
        ".",
        "..",
        "a/b",
        "a b",
        "{x}",
        "a:b",
        "*",
        "ü",
        "a\0",
        long.as_str(),
    ] {
        assert!(
            matches!(Space::new(bad, "ns"), Err(Error::InvalidSpace { .. })),
            "{bad:?}"
        );
        assert!(
            matches!(Space::new("db", bad), Err(Error::InvalidSpace { .. })),
            "{bad:?}"
        );
    }
    Ok(())
}

/// Invalid tags are `InvalidTag` on write and query; an empty query is `InvalidArgument`.
pub async fn invalid_tags(ctx: &Ctx) -> Result<()> {
    let s = ctx.store().await?;
    let long = "t".repeat(129);
    for bad in ["", "a\nb", "\0", "\u{7f}", long.as_str()] {
        let r = s.set_with("k", "v", &SetOptions::new().tags([bad])).await;
        assert!(matches!(r, Err(Error::InvalidTag { .. })), "{bad:?}");
        let r = s.query_by_tags(&[bad], TagMode::Any, None, 10).await;
        assert!(matches!(r, Err(Error::InvalidTag { .. })), "{bad:?}");
        assert!(matches!(
            s.delete_by_tag(bad).await,
            Err(Error::InvalidTag { .. })
        ));
    }
    let many: Vec<String> = (0..65).map(|i| format!("t{i}")).collect();
    let r = s.set_with("k", "v", &SetOptions::new().tags(many)).await;
    assert!(matches!(r, Err(Error::InvalidTag { .. })));
    let ok: Vec<String> = (0..64).map(|i| format!("t{i}")).collect();
    s.set_with("k", "v", &SetOptions::new().tags(ok)).await?;
    let r = s.query_by_tags::<&str>(&[], TagMode::All, None, 10).await;
    assert!(matches!(r, Err(Error::InvalidArgument { .. })));
    Ok(())
}

/// Zero, past and overflowing TTLs are `InvalidTtl`, on set and touch.
pub async fn invalid_ttls(ctx: &Ctx) -> Result<()> {
    let s = ctx.store().await?;
    let bad = [
        SetOptions::new().ttl(Duration::ZERO),
        SetOptions::new().ttl(Duration::MAX),
        SetOptions::new().ttl(Duration::from_millis(u64::MAX)),
        SetOptions::new().expires_at(Timestamp::EPOCH),
        SetOptions::new().expires_at(Timestamp::from_millis(1)),
        SetOptions::new().expires_at(Timestamp::MAX),
        SetOptions::new().ttl(Duration::from_millis(i64::MAX as u64)),
    ];
    for opts in &bad {
        let r = s.set_with("k", "v", opts).await;
        assert!(
            matches!(r, Err(Error::InvalidTtl { .. })),
            "{opts:?}: {r:?}"
        );
        let r = s.set_if_absent("k", "v", opts).await;
        assert!(
            matches!(r, Err(Error::InvalidTtl { .. })),
            "{opts:?}: {r:?}"
        );
    }
    assert!(!s.exists("k").await?);
    s.set("k", "v").await?;
    assert!(matches!(
        s.touch("k", Duration::ZERO).await,
        Err(Error::InvalidTtl { .. })
    ));
    assert!(matches!(
        s.touch("k", Duration::MAX).await,
        Err(Error::InvalidTtl { .. })
    ));
    assert!(matches!(
        s.decr("k", i64::MIN).await,
        Err(Error::InvalidArgument { .. })
    ));
    Ok(())
}

/// Zero page limits are `InvalidArgument`; bad builder settings are `Config`.
pub async fn invalid_limits(ctx: &Ctx) -> Result<()> {
    let s = ctx.store().await?;
    assert!(matches!(
        s.scan("", None, 0).await,
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        s.query_by_tags(&["t"], TagMode::All, None, 0).await,
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        ctx.builder().max_value_size(0).build().await,
        Err(Error::Config { .. })
    ));
    assert!(matches!(
        ctx.builder()
            .sweep_interval(Some(Duration::ZERO))
            .build()
            .await,
        Err(Error::Config { .. })
    ));
    let bad_level = nadb_core::Compression {
        threshold: 1,
        level: 1000,
    };
    assert!(matches!(
        ctx.builder().compression(bad_level).build().await,
        Err(Error::Config { .. })
    ));
    Ok(())
}

/// Malformed and unknown URLs are typed errors that list the known schemes.
pub async fn invalid_urls(_ctx: &Ctx) -> Result<()> {
    for bad in ["", "memory", "://x", "me mory://", "memory://extra"] {
        assert!(
            matches!(
                nadb_core::open_backend(bad).await,
                Err(Error::InvalidUrl { .. })
            ),
            "{bad:?}"
        );
    }
    match nadb_core::open_backend("nosuch://x").await {
        Err(Error::UnknownScheme { scheme, known }) => {
            assert_eq!(scheme, "nosuch");
            assert!(known.iter().any(|k| k == "memory"));
        }
        other => panic!("expected UnknownScheme, got {other:?}"),
    }
    let err = nadb_core::open_backend("nosuch://user:hunter2@h")
        .await
        .expect_err("unknown");
    assert!(!err.to_string().contains("hunter2"));
    Ok(())
}
