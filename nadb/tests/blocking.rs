//! The blocking store: same behaviour without async, refuses async contexts, closes on drop.

use std::sync::Arc;
use std::time::Duration;

use nadb::{BackendExt, FlushPolicy, MemoryBackend, SetOptions, StorageBackend, TagMode};

#[test]
fn mirrors_the_async_store() -> nadb::Result<()> {
    let store = nadb::blocking::Store::open("memory://")?;
    store.set_with(
        "a",
        "1",
        &SetOptions::new().tags(["t"]).ttl(Duration::from_secs(60)),
    )?;
    store.set_many([("b", "2"), ("c", "3")])?;
    assert_eq!(store.get("a")?.as_deref(), Some(&b"1"[..]));
    assert_eq!(store.get_many(&["b", "x"])?, vec![Some("2".into()), None]);
    assert_eq!(
        store.query_by_tags(&["t"], TagMode::All, None, 10)?.items,
        ["a"]
    );
    assert_eq!(store.incr("n", 2)?, 2);
    assert!(store.set_if_absent("lock", "me", &SetOptions::new())?);
    store.transaction(|tx| {
        let b = tx.get("b")?;
        assert_eq!(b.as_deref(), Some(&b"2"[..]));
        tx.set("b", "20")?;
        tx.delete("c")
    })?;
    assert_eq!(store.get("b")?.as_deref(), Some(&b"20"[..]));
    assert!(!store.exists("c")?);
    assert_eq!(store.scan("", None, 10)?.items, ["a", "b", "lock", "n"]);
    assert_eq!(store.stats()?.ops["set"].count, 1);
    store.close()
}

#[test]
fn refuses_async_contexts_without_panicking() -> nadb::Result<()> {
    let store = nadb::blocking::Store::open("memory://")?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| nadb::Error::Config {
            reason: e.to_string(),
        })?;
    rt.block_on(async {
        assert!(matches!(store.get("k"), Err(nadb::Error::Config { .. })));
        assert!(matches!(
            nadb::blocking::Store::open("memory://"),
            Err(nadb::Error::Config { .. })
        ));
    });
    store.close()
}

/// A manual blocking store over `backend` with `k` written but not flushed.
fn manual_store_holding_k(backend: &Arc<MemoryBackend>) -> nadb::Result<nadb::blocking::Store> {
    let store = nadb::blocking::Store::build(
        nadb::Store::builder(backend.clone()).flush_policy(FlushPolicy::Manual),
    )?;
    store.set("k", "v")?;
    Ok(store)
}

#[test]
fn drop_closes_the_store() -> nadb::Result<()> {
    let backend = Arc::new(MemoryBackend::new());
    let store = manual_store_holding_k(&backend)?;
    let space = store.space().clone();
    drop(store);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| nadb::Error::Config {
            reason: e.to_string(),
        })?;
    // Dropping ran close(), which flushes first and then closes the backend.
    assert!(matches!(
        rt.block_on(backend.scan_all(&space, "")),
        Err(nadb::Error::Closed)
    ));
    Ok(())
}

#[test]
fn handles_share_one_store_until_the_last_is_dropped() -> nadb::Result<()> {
    let config = |e: std::io::Error| nadb::Error::Config {
        reason: e.to_string(),
    };
    let dir = tempfile::tempdir().map_err(config)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(config)?;
    let backend = rt.block_on(nadb::fs::FsBackend::open(dir.path()))?;
    let a = nadb::blocking::Store::build(
        nadb::Store::builder(backend.clone()).flush_policy(FlushPolicy::Manual),
    )?;
    a.set("k", "v")?;
    let other = nadb::Space::new("other", "ns")?;
    let b = a.with_space(other.clone())?;
    let c = a.clone();
    b.set("k", "in b")?;
    drop(a);
    // The other handles keep the store open: nothing was closed or flushed yet.
    assert_eq!(c.get("k")?.as_deref(), Some(&b"v"[..]));
    assert_eq!(b.get("k")?.as_deref(), Some(&b"in b"[..]));
    assert!(rt.block_on(backend.get(c.space(), "k"))?.is_none());
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let c = c.clone();
            std::thread::spawn(move || c.set(&format!("t{i}"), "x"))
        })
        .collect();
    for t in threads {
        t.join().map_err(|_| nadb::Error::Config {
            reason: "writer thread panicked".into(),
        })??;
    }
    drop(c);
    assert_eq!(b.len()?, 1);
    drop((b, backend));
    // The last drop closed the store after flushing the writes of every space.
    let reopened = nadb::blocking::Store::open(&format!("fs://{}", dir.path().display()))?;
    assert_eq!(
        reopened.scan("", None, 10)?.items,
        ["k", "t0", "t1", "t2", "t3"]
    );
    let other = reopened.with_space(other)?;
    assert_eq!(other.get("k")?.as_deref(), Some(&b"in b"[..]));
    reopened.close()
}

#[test]
fn transactions_begin_by_hand_and_retry_conflicts() -> nadb::Result<()> {
    let store = nadb::blocking::Store::open("memory://")?;
    let mut tx = store.begin();
    tx.set("a", "1")?;
    assert!(tx.exists("a")?);
    assert_eq!(tx.len(), 1);
    tx.rollback();
    assert!(!store.exists("a")?);

    store.set("n", "0")?;
    let mut runs = 0;
    let out = store.transaction(|tx| {
        runs += 1;
        let n = tx.get("n")?.unwrap_or_default();
        if runs == 1 {
            // Someone else changes what the transaction read: its commit conflicts.
            store.set("n", "5")?;
        }
        let next = std::str::from_utf8(&n).map_or(0, |s| s.parse::<u32>().unwrap_or(0)) + 1;
        tx.set("n", next.to_string())?;
        Ok(next)
    })?;
    assert_eq!((runs, out), (2, 6));
    assert_eq!(store.get("n")?.as_deref(), Some(&b"6"[..]));
    store.close()
}

#[test]
fn the_fs_scheme_is_linked_by_default() -> nadb::Result<()> {
    assert!(nadb::schemes().contains(&"fs"));
    let dir = tempfile::tempdir().map_err(|e| nadb::Error::Config {
        reason: e.to_string(),
    })?;
    let url = format!("fs://{}", dir.path().display());
    let store = nadb::blocking::Store::open(&url)?;
    store.set("k", "v")?;
    store.close()?;
    let store = nadb::blocking::Store::open(&url)?;
    assert_eq!(store.get("k")?.as_deref(), Some(&b"v"[..]));
    assert!(matches!(
        nadb::blocking::Store::open("fs://"),
        Err(nadb::Error::InvalidUrl { .. })
    ));
    store.close()
}

#[test]
fn the_sqlite_scheme_is_linked_by_default() -> nadb::Result<()> {
    assert!(nadb::schemes().contains(&"sqlite"));
    let dir = tempfile::tempdir().map_err(|e| nadb::Error::Config {
        reason: e.to_string(),
    })?;
    let url = format!("sqlite://{}", dir.path().join("app.db").display());
    let store = nadb::blocking::Store::open(&url)?;
    store.set("k", "v")?;
    store.close()?;
    let store = nadb::blocking::Store::open(&url)?;
    assert_eq!(store.get("k")?.as_deref(), Some(&b"v"[..]));
    store.close()?;
    let mem = nadb::blocking::Store::open("sqlite://:memory:")?;
    mem.set("k", "v")?;
    assert_eq!(mem.len()?, 1);
    mem.close()?;
    assert!(matches!(
        nadb::blocking::Store::open("sqlite://"),
        Err(nadb::Error::InvalidUrl { .. })
    ));
    Ok(())
}

#[test]
fn a_drop_inside_an_async_runtime_closes_the_store_without_panicking() -> nadb::Result<()> {
    let backend = Arc::new(MemoryBackend::new());
    let store = manual_store_holding_k(&backend)?;
    let space = store.space().clone();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| nadb::Error::Config {
            reason: e.to_string(),
        })?;
    rt.block_on(async move { drop(store) });
    // The buffered write was flushed and the backend closed.
    let backend_after = Arc::try_unwrap(backend).map_err(|_| nadb::Error::Config {
        reason: "the dropped store still holds the backend".into(),
    })?;
    assert!(matches!(
        rt.block_on(backend_after.scan_all(&space, "")),
        Err(nadb::Error::Closed)
    ));
    Ok(())
}
