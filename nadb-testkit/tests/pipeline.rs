//! The write pipeline under failure, pressure and concurrency: retries, the dead-letter queue,
//! backpressure, group commit, ordering across flushes, drop without close.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use nadb_core::{
    BackendExt, BufferedFlush, Error, FlushPolicy, MemoryBackend, Meta, MockClock, Record, Result,
    SetOptions, Space, StorageBackend, Store, TagMode, Timestamp, WriteConfig,
};
use nadb_testkit::{Fault, FaultOp, FaultyBackend};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn quick_retries() -> WriteConfig {
    WriteConfig {
        retry_base_delay: Duration::from_micros(100),
        retry_max_delay: Duration::from_millis(2),
        ..WriteConfig::default()
    }
}

/// A store with the manual policy and quick retries over a fault-injecting memory backend.
async fn manual_store(seed: u64) -> Result<(Arc<FaultyBackend>, Store)> {
    manual_store_with(seed, quick_retries()).await
}

/// [`manual_store`] with its own write settings.
async fn manual_store_with(seed: u64, config: WriteConfig) -> Result<(Arc<FaultyBackend>, Store)> {
    let faulty = Arc::new(FaultyBackend::new(MemoryBackend::new(), seed));
    let store = Store::builder(faulty.clone())
        .flush_policy(FlushPolicy::Manual)
        .write_config(config)
        .build()
        .await?;
    Ok((faulty, store))
}

/// Stores `key` and `other` tagged "old", then rewrites `key`, still tagged, in a write the
/// backend refuses: `key`'s newest write is dead-lettered.
async fn tagged_with_a_dead_lettered_rewrite(
    faulty: &FaultyBackend,
    store: &Store,
    key: &str,
    other: &str,
) -> Result<()> {
    let old = SetOptions::new().tags(["old"]);
    store.set_with(key, "1", &old).await?;
    store.set_with(other, "1", &old).await?;
    store.flush().await?;
    faulty.fail_always(FaultOp::Apply, Fault::Permanent);
    store.set_with(key, "2", &old).await?;
    store
        .flush()
        .await
        .expect_err("the rewrite is dead-lettered");
    faulty.heal();
    Ok(())
}

/// Starts a flush whose backend apply takes 400 ms; returns once its round is applying.
async fn flush_during_a_slow_apply(
    faulty: &FaultyBackend,
    store: &Store,
) -> tokio::task::JoinHandle<Result<()>> {
    faulty.set_apply_delay(Duration::from_millis(400));
    let flusher = store.clone();
    let flushing = tokio::spawn(async move { flusher.flush().await });
    tokio::time::sleep(Duration::from_millis(150)).await;
    flushing
}

async fn backend_contents(
    b: &dyn StorageBackend,
    space: &Space,
) -> Result<BTreeMap<String, Bytes>> {
    let mut out = BTreeMap::new();
    for (k, _) in b.scan_all(space, "").await? {
        if let Some(r) = b.get(space, &k).await? {
            out.insert(k, r.value);
        }
    }
    Ok(out)
}

/// Interleaved sets, deletes and batches across many flush boundaries end with the backend
/// holding exactly the model's state, under every buffered policy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_across_flushes_matches_the_model() -> Result<()> {
    let policies: [FlushPolicy; 4] = [
        BufferedFlush::none().max_ops(7).into(),
        BufferedFlush::none().max_bytes(300).into(),
        BufferedFlush::none()
            .interval(Duration::from_millis(1))
            .into(),
        FlushPolicy::Manual,
    ];
    for (n, policy) in policies.into_iter().enumerate() {
        let backend = Arc::new(MemoryBackend::new());
        let store = Store::builder(backend.clone())
            .flush_policy(policy)
            .compression(nadb_core::Compression::disabled())
            .build()
            .await?;
        let mut model: BTreeMap<String, Bytes> = BTreeMap::new();
        let mut rng = StdRng::seed_from_u64(n as u64);
        for i in 0..5_000 {
            let k = format!("k{}", rng.random_range(0..50));
            match rng.random_range(0..10) {
                0..=4 => {
                    let v = Bytes::from(format!("v{i}"));
                    store.set(&k, v.clone()).await?;
                    model.insert(k.clone(), v);
                }
                5..=6 => {
                    store.delete(&k).await?;
                    model.remove(&k);
                }
                7..=8 => {
                    let k2 = format!("k{}", rng.random_range(0..50));
                    let items = [
                        (k.clone(), Bytes::from(format!("a{i}"))),
                        (k2.clone(), Bytes::from(format!("b{i}"))),
                    ];
                    store.set_many(items.clone()).await?;
                    for (k, v) in items {
                        model.insert(k, v);
                    }
                }
                _ => {
                    if rng.random_bool(0.3) {
                        store.flush().await?;
                    }
                }
            }
            if i % 97 == 0 {
                assert_eq!(
                    store.get(&k).await?,
                    model.get(&k).cloned(),
                    "read-your-writes of {k}"
                );
            }
        }
        store.flush().await?;
        assert_eq!(
            backend_contents(backend.as_ref(), store.space()).await?,
            model,
            "policy #{n}"
        );
        let stats = store.stats().await?;
        assert!(stats.pipeline.flushes > 1);
        assert_eq!(stats.pipeline.pending_ops, 0);
    }
    Ok(())
}

/// 100,000 buffered writes over a backend failing 10 % of applies and syncs temporarily:
/// every write is persisted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_percent_temporary_failures_lose_nothing_over_100k_ops() -> Result<()> {
    let inner = Arc::new(MemoryBackend::new());
    let faulty = Arc::new(FaultyBackend::new(inner.clone(), 7));
    faulty.fail_rate(FaultOp::Apply, 0.1, Fault::Temporary);
    faulty.fail_rate(FaultOp::Sync, 0.1, Fault::Temporary);
    let store = Store::builder(faulty.clone())
        .flush_policy(BufferedFlush::none().max_ops(500))
        .write_config(WriteConfig {
            chunk_size: 100,
            ..quick_retries()
        })
        .build()
        .await?;
    for i in 0..100_000u32 {
        store
            .set(&format!("k{:06}", i % 60_000), format!("v{i}"))
            .await?;
    }
    store.flush().await?;
    assert_eq!(store.dlq_summary().entries, 0);
    let stored = backend_contents(inner.as_ref(), store.space()).await?;
    assert_eq!(stored.len(), 60_000);
    for i in 40_000..100_000u32 {
        let want = format!("v{i}");
        assert_eq!(
            stored[&format!("k{:06}", i % 60_000)].as_ref(),
            want.as_bytes()
        );
    }
    assert!(faulty.injected() > 50, "only {} faults", faulty.injected());
    Ok(())
}

/// Permanent failure → dead-letter queue (values still readable, flush says how much is
/// unpersisted) → heal → retry_dlq → everything persisted; a newer write is never overwritten.
#[tokio::test]
async fn dead_letters_stay_readable_and_retry_never_overwrites_newer_writes() -> Result<()> {
    let (faulty, store) = manual_store(1).await?;
    let inner = faulty.inner().clone();
    faulty.fail_always(FaultOp::Apply, Fault::Permanent);
    store.set("a", "a1").await?;
    store.set("b", "b1").await?;
    let err = store.flush().await.expect_err("backend refuses");
    match err {
        Error::Unpersisted { ops, .. } => assert_eq!(ops, 2),
        other => panic!("expected Unpersisted, got {other:?}"),
    }
    let summary = store.dlq_summary();
    assert_eq!((summary.entries, summary.ops), (2, 2));
    assert!(summary.last_error.is_some());
    assert_eq!(
        store.get("a").await?.as_deref(),
        Some(&b"a1"[..]),
        "dead-lettered value must stay readable"
    );
    assert!(
        store.close().await.is_err(),
        "close must refuse while writes are unpersisted"
    );

    faulty.heal();
    store.set("a", "a2").await?; // newer than the dead-lettered a1
    store.flush().await.expect_err("b1 is still dead-lettered");
    assert_eq!(
        store.dlq_summary().ops,
        1,
        "a1 must be superseded by the persisted a2"
    );
    assert_eq!(store.retry_dlq().await?, 1);
    assert_eq!(store.dlq_summary().entries, 0);
    store.flush().await?;
    assert_eq!(
        inner.get(store.space(), "a").await?.map(|r| r.value),
        Some(Bytes::from("a2"))
    );
    assert_eq!(
        inner.get(store.space(), "b").await?.map(|r| r.value),
        Some(Bytes::from("b1"))
    );
    store.close().await
}

/// `retry_dlq` while a newer checked write (a transaction, which reads see only once it is
/// applied) of a dead-lettered key is still being applied: the newer write wins, and the
/// dead-lettered op leaves the queue because it is superseded, not because it was sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_dlq_never_overwrites_a_newer_checked_write_in_flight() -> Result<()> {
    let (faulty, store) = manual_store(2).await?;
    let inner = faulty.inner().clone();
    faulty.fail_always(FaultOp::Apply, Fault::Permanent);
    store.set("k", "old").await?;
    store.flush().await.expect_err("backend refuses");
    assert_eq!(store.dlq_summary().ops, 1);
    faulty.heal();
    faulty.set_apply_delay(Duration::from_millis(300));
    let writer = store.clone();
    let newer = tokio::spawn(async move {
        writer
            .transaction(|tx| {
                Box::pin(async move {
                    tx.get("other").await?;
                    tx.set("k", "new")?;
                    Ok(())
                })
            })
            .await
    });
    // The transaction is now being applied (slowly).
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(store.retry_dlq().await?, 0, "the old write is superseded");
    newer.await.expect("transaction task")?;
    faulty.set_apply_delay(Duration::ZERO);
    store.flush().await?;
    assert_eq!(store.dlq_summary().entries, 0);
    assert_eq!(store.get("k").await?.as_deref(), Some(&b"new"[..]));
    assert_eq!(
        inner.get(store.space(), "k").await?.map(|r| r.value),
        Some(Bytes::from("new"))
    );
    store.close().await
}

/// `clear_dlq` and `retry_dlq` racing: a cleared write is never sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cleared_dead_letter_is_never_retried() -> Result<()> {
    for round in 0..50 {
        let (faulty, store) = manual_store(round).await?;
        let inner = faulty.inner().clone();
        faulty.fail_always(FaultOp::Apply, Fault::Permanent);
        for i in 0..20 {
            store.set(&format!("k{i}"), "v").await?;
            let _ = store.flush().await;
        }
        faulty.heal();
        let retrier = store.clone();
        let retry = tokio::spawn(async move { retrier.retry_dlq().await });
        let cleared = store.clear_dlq();
        let sent = retry.await.expect("retry task")?;
        store.flush().await?;
        assert_eq!(cleared + sent, 20, "every entry is either cleared or sent");
        assert_eq!(
            backend_contents(inner.as_ref(), store.space()).await?.len(),
            sent as usize,
            "round {round}: a cleared write reached the backend"
        );
        store.close().await?;
    }
    Ok(())
}

/// Listings, counts and tag queries agree with `get` while writes are dead-lettered: a new
/// key is listed, a deleted key is not, a retagged key moves between tags; `clear` removes
/// dead-lettered keys too.
#[tokio::test]
async fn dead_lettered_writes_are_listed_as_reads_see_them() -> Result<()> {
    let (faulty, store) = manual_store(4).await?;
    let red = SetOptions::new().tags(["red"]);
    let blue = SetOptions::new().tags(["blue"]);
    for k in ["a", "c", "e"] {
        store.set_with(k, "1", &red).await?;
    }
    store.flush().await?;
    faulty.fail_always(FaultOp::Apply, Fault::Permanent);
    store.set_with("b", "2", &red).await?; // new key
    // A pending overwrite makes the delete of a stored key a buffered one.
    store.set("c", "2").await?;
    store.delete("c").await?;
    store.set_with("e", "2", &blue).await?; // retagged
    store.set_with("f", "2", &blue).await?; // new key, other tag
    store.flush().await.expect_err("dead-lettered");
    assert_eq!(store.dlq_summary().ops, 5);

    let all = ["a", "b", "e", "f"];
    assert_eq!(store.scan("", None, 10).await?.items, all);
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = store.scan("", cursor.as_deref(), 1).await?;
        paged.extend(page.items.clone());
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(paged, all, "paging one key at a time");
    assert_eq!(store.len().await?, 4);
    let red_keys = store
        .query_by_tags(&["red"], TagMode::Any, None, 10)
        .await?;
    assert_eq!(red_keys.items, ["a", "b"]);
    let first = store
        .query_by_tags(&["red", "blue"], TagMode::Any, None, 3)
        .await?;
    assert_eq!(first.items, ["a", "b", "e"]);
    let rest = store
        .query_by_tags(&["red", "blue"], TagMode::Any, first.next.as_deref(), 3)
        .await?;
    assert_eq!(rest.items, ["f"]);
    let tags = store.list_tags().await?;
    assert_eq!(tags.get("red"), Some(&2));
    assert_eq!(tags.get("blue"), Some(&2));

    faulty.heal();
    assert_eq!(store.clear().await?, 4);
    store.flush().await?;
    assert_eq!(store.dlq_summary().entries, 0);
    assert_eq!(store.get("b").await?, None);
    assert_eq!(store.len().await?, 0);
    assert!(
        backend_contents(faulty.as_ref(), store.space())
            .await?
            .is_empty()
    );
    store.close().await
}

/// Writes a flush round is applying still count as pending, and a failed round does not
/// count as a group commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_being_applied_count_as_pending() -> Result<()> {
    let (faulty, store) = manual_store(3).await?;
    for i in 0..10 {
        store.set(&format!("k{i}"), "0123456789").await?;
    }
    let flushing = flush_during_a_slow_apply(&faulty, &store).await;
    let during = store.stats().await?.pipeline;
    assert_eq!(
        during.pending_ops, 10,
        "the round's writes are not applied yet"
    );
    assert!(during.pending_bytes >= 100);
    assert!(during.oldest_pending_ms >= 100);
    flushing.await.expect("flush task")?;
    let after = store.stats().await?.pipeline;
    assert_eq!((after.pending_ops, after.pending_bytes), (0, 0));
    assert_eq!((after.flushes, after.max_group), (1, 10));

    faulty.set_apply_delay(Duration::ZERO);
    faulty.fail_always(FaultOp::Apply, Fault::Permanent);
    store.set("x", "1").await?;
    store.flush().await.expect_err("refused");
    let failed = store.stats().await?.pipeline;
    assert_eq!((failed.flushes, failed.max_group), (1, 10));
    Ok(())
}

/// While a round is being applied, its writes and newer ones read as one pending state, the
/// newer winning: in gets and in the creation time an overwrite keeps; and once persisted
/// they read, and list, the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_being_applied_and_newer_writes_read_as_one() -> Result<()> {
    let clock = MockClock::new(1_000_000);
    let faulty = Arc::new(FaultyBackend::new(MemoryBackend::new(), 11));
    let store = Store::builder(faulty.clone())
        .flush_policy(FlushPolicy::Manual)
        .clock(clock.clone())
        .build()
        .await?;
    for i in 0..4 {
        store.set(&format!("k{i}"), "old").await?;
    }
    let flushing = flush_during_a_slow_apply(&faulty, &store).await;
    clock.advance(Duration::from_secs(5));
    store.set("k0", "new").await?;
    store.delete("k1").await?;
    store.set("k1", "again").await?;
    store.delete("k2").await?;
    store.set("n", "new").await?;

    let expect = |when: &'static str| {
        let store = store.clone();
        async move {
            let value = |k: &'static str| {
                let store = store.clone();
                async move { store.get(k).await.map(|v| v.map(|v| v.to_vec())) }
            };
            assert_eq!(value("k0").await?.as_deref(), Some(&b"new"[..]), "{when}");
            assert_eq!(value("k1").await?.as_deref(), Some(&b"again"[..]), "{when}");
            assert_eq!(value("k2").await?, None, "{when}");
            assert_eq!(value("k3").await?.as_deref(), Some(&b"old"[..]), "{when}");
            let created = |k: &'static str| {
                let store = store.clone();
                async move {
                    let record = store.get_with_metadata(k).await?;
                    Ok::<_, Error>(record.map(|r| r.meta.created_at))
                }
            };
            let start = Timestamp::from_millis(1_000_000);
            assert_eq!(
                created("k0").await?,
                Some(start),
                "{when}: an overwrite keeps it"
            );
            assert_ne!(
                created("k1").await?,
                Some(start),
                "{when}: a delete resets it"
            );
            // A listing drains what is pending first: it comes last.
            assert_eq!(
                store.scan("", None, 10).await?.items,
                ["k0", "k1", "k3", "n"],
                "{when}"
            );
            Ok::<_, Error>(())
        }
    };
    expect("during the round").await?;
    flushing.await.expect("flush task")?;
    faulty.set_apply_delay(Duration::ZERO);
    expect("after the rounds").await?;
    store.flush().await?;
    expect("after a flush").await?;
    let stored = backend_contents(&*faulty, store.space()).await?;
    let keys: Vec<&str> = stored.keys().map(String::as_str).collect();
    assert_eq!(keys, ["k0", "k1", "k3", "n"]);
    store.close().await
}

/// A dead-lettered write stays readable, and listed, while later rounds persist other writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_stay_readable_through_later_rounds() -> Result<()> {
    let (faulty, store) = manual_store(12).await?;
    faulty.fail_always(FaultOp::Apply, Fault::Permanent);
    store.set("a", "1").await?;
    store.flush().await.expect_err("dead-lettered");
    faulty.heal();
    for round in 0..3 {
        store.set(&format!("b{round}"), "2").await?;
        assert!(matches!(
            store.flush().await,
            Err(Error::Unpersisted { ops: 1, .. })
        ));
        assert_eq!(store.get("a").await?.as_deref(), Some(&b"1"[..]));
        assert_eq!(store.scan("", None, 10).await?.items.len(), round + 2);
    }
    assert_eq!(store.retry_dlq().await?, 1);
    let stored = backend_contents(&*faulty, store.space()).await?;
    assert_eq!(stored.get("a").map(|v| &v[..]), Some(&b"1"[..]));
    store.close().await
}

/// A read-only transaction whose first commit attempt lost its reply, and whose read key
/// changed before the retry, is a conflict: nothing shows its reads were still current.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_commit_retried_after_a_change_is_a_conflict() -> Result<()> {
    let faulty = Arc::new(FaultyBackend::new(MemoryBackend::new(), 0));
    let store = Store::builder(faulty.clone())
        .write_config(WriteConfig {
            retry_base_delay: Duration::from_millis(300),
            retry_max_delay: Duration::from_millis(300),
            ..WriteConfig::default()
        })
        .build()
        .await?;
    store.set("k", "1").await?;
    let mut tx = store.begin();
    assert_eq!(tx.get("k").await?.as_deref(), Some(&b"1"[..]));
    faulty.fail_next(FaultOp::Apply, 1, Fault::LostReply);
    let committing = tokio::spawn(tx.commit());
    // The commit waits out its retry delay; another process changes the read key meanwhile.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let other = Record::new(Bytes::from("2"), Meta::new(Timestamp::EPOCH, u64::MAX / 2));
    faulty.inner().put(store.space(), "k", other).await?;
    let result = committing.await.expect("commit task");
    assert!(
        matches!(result, Err(Error::Conflict { .. })),
        "expected Conflict, got {result:?}"
    );
    store.close().await
}

/// A full dead-letter queue evicts the oldest entry, counts it, and the evicted write is no
/// longer readable (reads agree with the backend); clear_dlq drops the rest.
#[tokio::test]
async fn dlq_overflow_is_counted_and_clear_restores_agreement() -> Result<()> {
    let (faulty, store) = manual_store_with(
        1,
        WriteConfig {
            dlq_capacity: 2,
            ..quick_retries()
        },
    )
    .await?;
    faulty.fail_always(FaultOp::Apply, Fault::Permanent);
    for k in ["a", "b", "c"] {
        store.set(k, "v").await?;
        let _ = store.flush().await;
    }
    let s = store.dlq_summary();
    assert_eq!((s.entries, s.evicted), (2, 1));
    assert_eq!(store.stats().await?.pipeline.dlq_evicted, 1);
    assert_eq!(store.get("a").await?, None, "the evicted write is gone");
    assert!(store.get("c").await?.is_some());
    assert_eq!(store.clear_dlq(), 2);
    assert_eq!(store.get("c").await?, None);
    faulty.heal();
    store.flush().await?;
    store.close().await
}

/// Past the buffer's hard limit writers wait (counted) and a flush makes room, even under
/// the manual policy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backpressure_bounds_the_buffer() -> Result<()> {
    let backend = Arc::new(MemoryBackend::new());
    let store = Store::builder(backend.clone())
        .flush_policy(FlushPolicy::Manual)
        .compression(nadb_core::Compression::disabled())
        .write_config(WriteConfig {
            max_pending_bytes: 64 << 10,
            ..WriteConfig::default()
        })
        .build()
        .await?;
    let value = Bytes::from(vec![7u8; 1024]);
    for i in 0..1000 {
        store.set(&format!("k{i}"), value.clone()).await?;
        assert!(store.stats().await?.pipeline.pending_bytes <= 64 << 10);
    }
    let stats = store.stats().await?;
    assert!(stats.pipeline.backpressure_waits > 0);
    store.flush().await?;
    assert_eq!(backend.scan_all(store.space(), "").await?.len(), 1000);
    Ok(())
}

/// 16 concurrent Immediate writers share applies and syncs: far fewer syncs than writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn immediate_writers_are_group_committed() -> Result<()> {
    let slow = FaultyBackend::new(MemoryBackend::new(), 0);
    slow.set_sync_delay(Duration::from_millis(2));
    let store = Store::builder(slow).build().await?;
    let mut tasks = Vec::new();
    for t in 0..16 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..50 {
                s.set(&format!("t{t}-{i}"), "v").await?;
            }
            Ok::<_, Error>(())
        }));
    }
    for t in tasks {
        t.await.expect("writer panicked")?;
    }
    let p = store.stats().await?.pipeline;
    assert!(p.max_group >= 8, "largest group {}", p.max_group);
    assert!(p.flushes < 400, "{} flush rounds for 800 writes", p.flushes);
    assert_eq!(store.len().await?, 800);
    Ok(())
}

/// Dropping a store without close still writes its buffered writes out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_without_close_flushes() -> Result<()> {
    let backend = Arc::new(MemoryBackend::new());
    let store = Store::builder(backend.clone())
        .flush_policy(FlushPolicy::Manual)
        .build()
        .await?;
    let space = store.space().clone();
    for i in 0..100 {
        store
            .set_with(&format!("k{i}"), "v", &SetOptions::new().tags(["t"]))
            .await?;
    }
    drop(store);
    for _ in 0..500 {
        if backend.scan_all(&space, "").await?.len() == 100 {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("buffered writes of a dropped store were not flushed");
}

/// A write acknowledged under Immediate is in the backend when `set` returns.
#[tokio::test]
async fn immediate_acknowledges_only_after_apply_and_sync() -> Result<()> {
    let backend = Arc::new(MemoryBackend::new());
    let store = Store::builder(backend.clone()).build().await?;
    for i in 0..100 {
        let k = format!("k{i}");
        store.set(&k, "v").await?;
        assert!(
            backend.get(store.space(), &k).await?.is_some(),
            "acknowledged before applied"
        );
    }
    Ok(())
}

/// A 500-write transaction committed amid writes that trigger size-based flushes of small
/// chunks reaches the backend as one batch: never split, never interleaved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_spanning_size_flushes_stays_one_batch() -> Result<()> {
    let backend = Arc::new(FaultyBackend::new(MemoryBackend::new(), 0));
    let store = Store::builder(backend.clone())
        .flush_policy(BufferedFlush::none().max_bytes(2_000))
        .write_config(WriteConfig {
            chunk_size: 50,
            ..WriteConfig::default()
        })
        .build()
        .await?;
    for i in 0..200 {
        store.set(&format!("before{i}"), vec![1u8; 100]).await?;
    }
    let mut tx = store.begin();
    for i in 0..500 {
        tx.set(&format!("tx{i:03}"), vec![2u8; 100])?;
    }
    tx.commit().await?;
    for i in 0..200 {
        store.set(&format!("after{i}"), vec![3u8; 100]).await?;
    }
    store.flush().await?;
    let batches = backend.applied_batches();
    assert!(
        batches.iter().all(|&n| n <= 50 || n == 500),
        "a batch mixed the transaction: {batches:?}"
    );
    assert_eq!(
        batches.iter().filter(|&&n| n == 500).count(),
        1,
        "{batches:?}"
    );
    assert_eq!(store.len().await?, 900);
    Ok(())
}

/// A failed chunk and a later chunk of the same round writing the same key: the persisted
/// newer write supersedes the dead-lettered older one, so nothing stale is left to retry.
#[tokio::test]
async fn a_newer_write_in_the_same_round_supersedes_a_failed_one() -> Result<()> {
    let (faulty, store) = manual_store_with(
        3,
        WriteConfig {
            chunk_size: 1,
            retry_attempts: 1,
            ..quick_retries()
        },
    )
    .await?;
    store.set("k", "a").await?;
    store.set("k", "b").await?;
    faulty.fail_next(FaultOp::Apply, 1, Fault::Temporary);
    store.flush().await?;
    assert_eq!(store.dlq_summary().entries, 0);
    assert_eq!(store.get("k").await?.as_deref(), Some(&b"b"[..]));
    assert_eq!(
        faulty.get(store.space(), "k").await?.map(|r| r.value),
        Some(Bytes::from("b"))
    );
    Ok(())
}

/// Writes `first` to a store flushed only by a 20 ms interval, then polls the backend for it
/// every millisecond, writing another key before each pause when `keep_writing`: whether it
/// was stored within 2,000 polls.
async fn first_write_flushed_by_interval(keep_writing: bool) -> Result<bool> {
    let backend = Arc::new(MemoryBackend::new());
    let store = Store::builder(backend.clone())
        .flush_policy(BufferedFlush::none().interval(Duration::from_millis(20)))
        .build()
        .await?;
    store.set("first", "v").await?;
    for i in 0..2_000 {
        if backend.get(store.space(), "first").await?.is_some() {
            return Ok(true);
        }
        if keep_writing {
            store.set(&format!("k{i}"), "v").await?;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(false)
}

/// Under an interval-only buffered policy a lone write reaches the backend about one interval
/// later, and so does the first of a steady stream of writes none of which fills the buffer:
/// the interval counts from the oldest pending write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_interval_trigger_fires_for_the_oldest_pending_write() -> Result<()> {
    assert!(
        first_write_flushed_by_interval(false).await?,
        "a lone buffered write was not flushed by its interval"
    );
    assert!(
        first_write_flushed_by_interval(true).await?,
        "writes arriving faster than the interval kept the oldest one from being flushed"
    );
    Ok(())
}

/// clear() terminates and empties the space even when a pending delete is dead-lettered.
#[tokio::test]
async fn clear_finishes_over_a_dead_lettered_delete() -> Result<()> {
    let (faulty, store) = manual_store_with(
        5,
        WriteConfig {
            retry_attempts: 1,
            ..quick_retries()
        },
    )
    .await?;
    store.set("k", "v").await?;
    store.flush().await?;
    // A pending overwrite makes the delete a buffered one.
    store.set("k", "v2").await?;
    store.delete("k").await?;
    faulty.fail_next(FaultOp::Apply, 1, Fault::Temporary);
    assert!(store.flush().await.is_err());
    let cleared = tokio::time::timeout(Duration::from_secs(10), store.clear()).await;
    assert_eq!(cleared.expect("clear() did not finish")?, 0);
    store.flush().await?;
    assert!(faulty.get(store.space(), "k").await?.is_none());
    Ok(())
}

/// `delete_by_tag` decides on a key's pending (here dead-lettered) tagged write; if the key
/// is written again, untagged, before the delete is queued, the new write is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_by_tag_keeps_a_key_rewritten_without_the_tag() -> Result<()> {
    let (faulty, store) = manual_store(6).await?;
    tagged_with_a_dead_lettered_rewrite(&faulty, &store, "a", "b").await?;
    // The delete reads b's stored version slowly; "a" is rewritten meanwhile.
    faulty.set_read_delay(Duration::from_millis(300));
    let deleter = store.clone();
    let deleting = tokio::spawn(async move { deleter.delete_by_tag("old").await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    store.set("a", "a3").await?;
    let removed = deleting.await.expect("delete task")?;
    faulty.set_read_delay(Duration::ZERO);
    store.flush().await?;
    assert_eq!(removed, 1, "only b carried the tag when it was deleted");
    assert_eq!(store.get("a").await?.as_deref(), Some(&b"a3"[..]));
    assert_eq!(
        faulty
            .inner()
            .get(store.space(), "a")
            .await?
            .map(|r| r.value),
        Some(Bytes::from("a3"))
    );
    assert_eq!(store.get("b").await?, None);
    store.close().await
}

/// A transaction (which reads see only once it is applied) writes a key without the tag while
/// `delete_by_tag` decides on that key's dead-lettered tagged write: the transaction's write
/// is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_by_tag_keeps_a_transaction_write_without_the_tag() -> Result<()> {
    let (faulty, store) = manual_store(7).await?;
    tagged_with_a_dead_lettered_rewrite(&faulty, &store, "k", "b").await?;
    faulty.set_read_delay(Duration::from_millis(300));
    let deleter = store.clone();
    let deleting = tokio::spawn(async move { deleter.delete_by_tag("old").await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Read from the pending buffer, so the transaction does not wait out the read delay.
    store.set("r", "1").await?;
    store
        .transaction(|tx| {
            Box::pin(async move {
                tx.get("r").await?;
                tx.set("k", "k3")?;
                Ok(())
            })
        })
        .await?;
    deleting.await.expect("delete task")?;
    faulty.set_read_delay(Duration::ZERO);
    store.flush().await?;
    assert_eq!(store.get("k").await?.as_deref(), Some(&b"k3"[..]));
    assert_eq!(
        faulty
            .inner()
            .get(store.space(), "k")
            .await?
            .map(|r| r.value),
        Some(Bytes::from("k3"))
    );
    assert_eq!(store.get("b").await?, None);
    store.close().await
}

/// `delete_by_tag` goes on past a full page of keys it leaves alone (their newest, dead-lettered
/// writes dropped the tag) and removes the tagged keys after them.
#[tokio::test]
async fn delete_by_tag_goes_past_a_page_of_keys_it_leaves_alone() -> Result<()> {
    let (faulty, store) = manual_store(5).await?;
    let old = SetOptions::new().tags(["old"]);
    for i in 0..1200 {
        store.set_with(&format!("k{i:04}"), "v", &old).await?;
    }
    store.flush().await?;
    faulty.fail_always(FaultOp::Apply, Fault::Permanent);
    let untagged: Vec<(String, &str)> = (0..1100).map(|i| (format!("k{i:04}"), "w")).collect();
    store.set_many(untagged).await?;
    store.flush().await.expect_err("dead-lettered");
    faulty.heal();
    assert_eq!(store.delete_by_tag("old").await?, 100);
    assert_eq!(store.retry_dlq().await?, 1100);
    assert_eq!(store.len().await?, 1100);
    assert_eq!(store.get("k1199").await?, None);
    assert_eq!(store.get("k0000").await?.as_deref(), Some(&b"w"[..]));
    store.close().await
}

/// `clear` while the backend refuses every write returns the error instead of queueing
/// deletes that fail forever; once healed it clears everything.
#[tokio::test]
async fn clear_during_an_outage_fails_instead_of_looping() -> Result<()> {
    let (faulty, store) = manual_store(8).await?;
    store.set("k", "v1").await?;
    store.flush().await?;
    faulty.fail_always(FaultOp::Apply, Fault::Permanent);
    // Every stored key has a pending write, so clear() decides on pending writes only.
    store.set("k", "v2").await?;
    let cleared = tokio::time::timeout(Duration::from_secs(10), store.clear()).await;
    assert!(
        cleared
            .expect("clear() kept going during the outage")
            .is_err(),
        "clear must report that the backend refused it"
    );
    assert_eq!(store.get("k").await?.as_deref(), Some(&b"v2"[..]));
    faulty.heal();
    assert_eq!(store.clear().await?, 1);
    store.flush().await?;
    assert_eq!(store.len().await?, 0);
    assert!(faulty.inner().get(store.space(), "k").await?.is_none());
    store.close().await
}

/// A manual store where `n` holds 1 and its rewrite to 10 is dead-lettered.
async fn n_with_a_dead_lettered_rewrite(seed: u64) -> Result<Store> {
    let (faulty, store) = manual_store_with(
        seed,
        WriteConfig {
            retry_attempts: 1,
            ..quick_retries()
        },
    )
    .await?;
    store.set("n", "1").await?;
    store.flush().await?;
    store.set("n", "10").await?;
    faulty.fail_next(FaultOp::Apply, 1, Fault::Temporary);
    assert!(store.flush().await.is_err());
    Ok(store)
}

/// A conditional write on a key whose newest write is dead-lettered is refused rather than
/// decided on the older stored value.
#[tokio::test]
async fn conditional_writes_refuse_dead_lettered_keys() -> Result<()> {
    let store = n_with_a_dead_lettered_rewrite(9).await?;
    assert!(matches!(
        store.incr("n", 1).await,
        Err(Error::Unpersisted { .. })
    ));
    assert_eq!(store.retry_dlq().await?, 1);
    assert_eq!(store.incr("n", 1).await?, 11);
    Ok(())
}

/// A transaction that read a key whose newest write is dead-lettered fails at once with
/// `Unpersisted`: its check could never hold, so retrying it as a conflict would only spin.
#[tokio::test]
async fn transactions_refuse_dead_lettered_keys() -> Result<()> {
    let store = n_with_a_dead_lettered_rewrite(11).await?;
    let attempts = std::sync::atomic::AtomicU32::new(0);
    let result = store
        .transaction(|tx| {
            attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Box::pin(async move {
                let n = tx.get("n").await?;
                tx.set("n", [n.unwrap_or_default().as_ref(), b"0"].concat())
            })
        })
        .await;
    assert!(
        matches!(result, Err(Error::Unpersisted { .. })),
        "{result:?}"
    );
    assert_eq!(attempts.into_inner(), 1, "a dead-lettered read was retried");
    assert_eq!(store.retry_dlq().await?, 1);
    store
        .transaction(|tx| {
            Box::pin(async move {
                let n = tx.get("n").await?;
                tx.set("n", [n.unwrap_or_default().as_ref(), b"0"].concat())
            })
        })
        .await?;
    store.flush().await?;
    assert_eq!(store.get("n").await?.as_deref(), Some(&b"100"[..]));
    Ok(())
}

/// A conditional write whose key is written again while it waits for the key's pending write
/// to land waits for the new write too: nothing is dead-lettered, so nothing is unpersisted.
#[tokio::test]
async fn conditional_writes_wait_for_writes_queued_while_they_drain() -> Result<()> {
    let (faulty, store) = manual_store_with(10, quick_retries()).await?;
    store.set("n", "1").await?;
    faulty.set_apply_delay(Duration::from_millis(200));
    let incr = tokio::spawn({
        let store = store.clone();
        async move { store.incr("n", 1).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    store.set("n", "5").await?;
    let got = incr.await.map_err(|e| Error::Config {
        reason: e.to_string(),
    })?;
    assert_eq!(got?, 6);
    assert_eq!(store.dlq_summary().entries, 0);
    assert_eq!(store.get("n").await?.as_deref(), Some(&b"6"[..]));
    Ok(())
}

/// A writer that gives up while its round is being applied (it led the round) loses nothing:
/// its writes go back to the queue whole and the next flush applies them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_cancelled_mid_apply_loses_nothing() -> Result<()> {
    let backend = Arc::new(FaultyBackend::new(MemoryBackend::new(), 0));
    backend.set_apply_delay(Duration::from_millis(200));
    let store = Store::builder(backend.clone())
        .flush_policy(FlushPolicy::Immediate)
        .sweep_interval(None)
        .build()
        .await?;
    let items: Vec<(String, String)> = (0..5).map(|i| (format!("k{i}"), format!("v{i}"))).collect();
    let cancelled = tokio::time::timeout(
        Duration::from_millis(20),
        store.set_many(items.iter().map(|(k, v)| (k.as_str(), v.clone()))),
    )
    .await;
    assert!(
        cancelled.is_err(),
        "the write finished before it could be cancelled"
    );
    // Readers still see the writes while they wait in the queue again.
    assert_eq!(store.get("k3").await?.as_deref(), Some(&b"v3"[..]));
    // They are as old as when they were first queued.
    let pending = store.stats().await?.pipeline;
    assert_eq!(pending.pending_ops, 5);
    assert!(
        pending.oldest_pending_ms >= 20,
        "{} ms",
        pending.oldest_pending_ms
    );
    backend.set_apply_delay(Duration::ZERO);
    store.flush().await?;
    let stored = backend_contents(backend.inner().as_ref(), &Space::default()).await?;
    let expected: BTreeMap<String, Bytes> = items
        .iter()
        .map(|(k, v)| (k.clone(), Bytes::from(v.clone())))
        .collect();
    assert_eq!(stored, expected);
    store.close().await
}

/// A manual store whose chunks hold one op each, with k0..k4 buffered and every apply taking
/// 100 ms.
async fn five_writes_in_one_op_chunks() -> Result<(Arc<FaultyBackend>, Store)> {
    let (faulty, store) = manual_store_with(
        0,
        WriteConfig {
            chunk_size: 1,
            ..quick_retries()
        },
    )
    .await?;
    for i in 0..5 {
        store.set(&format!("k{i}"), format!("v{i}")).await?;
    }
    faulty.set_apply_delay(Duration::from_millis(100));
    Ok((faulty, store))
}

/// Increments `n` and gives up after 250 ms. A checked write waits for its round and leads
/// it: with [`five_writes_in_one_op_chunks`], six chunks of one unit each.
async fn cancel_a_checked_write_mid_round(store: &Store) {
    let cancelled = tokio::time::timeout(Duration::from_millis(250), store.incr("n", 1)).await;
    assert!(
        cancelled.is_err(),
        "the round finished before it was cancelled"
    );
}

/// A writer cancelled while it leads a round of several chunks loses nothing and repeats
/// nothing: the chunks already applied are only synced and acknowledged, the one in flight
/// and those after it go to the next round, and every op reaches the backend once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_cancelled_mid_way_applies_each_write_once() -> Result<()> {
    let (faulty, store) = five_writes_in_one_op_chunks().await?;
    // The third chunk is (normally) in flight when the writer gives up.
    cancel_a_checked_write_mid_round(&store).await;
    let before = faulty.applied_batches().len();
    assert!(
        (1..6).contains(&before),
        "{before} chunks applied before the cancel"
    );
    faulty.set_apply_delay(Duration::ZERO);
    store.flush().await?;
    let mut expected: BTreeMap<String, Bytes> = (0..5)
        .map(|i| (format!("k{i}"), Bytes::from(format!("v{i}"))))
        .collect();
    expected.insert("n".into(), Bytes::from("1"));
    assert_eq!(
        backend_contents(faulty.inner().as_ref(), &Space::default()).await?,
        expected
    );
    assert_eq!(faulty.applied_batches(), [1; 6], "an op was applied twice");
    assert_eq!(store.dlq_summary().entries, 0);
    store.close().await
}

/// A round cancelled after one of its chunks failed dead-letters that chunk alone; the chunks
/// applied before and after it are only synced, the rest go to the next round.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_cancelled_after_a_failed_chunk_dead_letters_that_chunk_alone() -> Result<()> {
    let (faulty, store) = five_writes_in_one_op_chunks().await?;
    // k0 applies, k1 fails at once, k2 applies, and k3 is (normally) in flight when the
    // writer leading the round gives up.
    faulty.fail_after(FaultOp::Apply, 1, 1, Fault::Permanent);
    cancel_a_checked_write_mid_round(&store).await;
    faulty.set_apply_delay(Duration::ZERO);
    assert!(store.flush().await.is_err(), "k1 is not persisted");
    let dlq = store.dlq();
    let keys: Vec<&str> = dlq.iter().map(|d| d.batch.ops[0].key()).collect();
    assert_eq!(keys, ["k1"]);
    let mut expected: BTreeMap<String, Bytes> = [0, 2, 3, 4]
        .into_iter()
        .map(|i| (format!("k{i}"), Bytes::from(format!("v{i}"))))
        .collect();
    expected.insert("n".into(), Bytes::from("1"));
    let space = Space::default();
    assert_eq!(
        backend_contents(faulty.inner().as_ref(), &space).await?,
        expected
    );
    assert_eq!(faulty.applied_batches(), [1; 5], "an op was applied twice");
    store.retry_dlq().await?;
    store.flush().await?;
    expected.insert("k1".into(), Bytes::from("v1"));
    assert_eq!(
        backend_contents(faulty.inner().as_ref(), &space).await?,
        expected
    );
    store.close().await
}

/// A checked write whose apply took effect but whose reply was lost is retried, finds its
/// checks failing (it changed the key itself) and is recognised as done: counted once, not
/// applied a second time as a fresh read-modify-write.
#[tokio::test]
async fn a_checked_write_whose_reply_was_lost_applies_once() -> Result<()> {
    let backend = Arc::new(FaultyBackend::new(MemoryBackend::new(), 0));
    let store = Store::builder(backend.clone())
        .write_config(quick_retries())
        .build()
        .await?;
    store.set("n", "10").await?;
    for fault in [FaultOp::Apply, FaultOp::Sync] {
        backend.fail_next(fault, 1, Fault::LostReply);
        store.incr("n", 1).await?;
    }
    backend.fail_next(FaultOp::Apply, 1, Fault::LostReply);
    store
        .transaction(|tx| {
            Box::pin(async move {
                let n = tx.get("n").await?.unwrap_or_default();
                let n: i64 = std::str::from_utf8(&n)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_default();
                tx.set("n", (n + 1).to_string())?;
                Ok(())
            })
        })
        .await?;
    assert_eq!(backend.injected(), 3);
    assert_eq!(store.get("n").await?.as_deref(), Some(&b"13"[..]));
    store.close().await
}

/// A checked write the backend's client sent twice by itself (the first took effect, its reply
/// was lost) answers with a conflict the store never saw a failure before: it is still
/// recognised as done, so neither an increment nor a transaction runs a second time.
#[tokio::test]
async fn a_checked_write_its_client_resent_applies_once() -> Result<()> {
    let backend = Arc::new(FaultyBackend::new(MemoryBackend::new(), 0));
    let store = Store::builder(backend.clone()).build().await?;
    store.set("n", "10").await?;
    backend.fail_next(FaultOp::Apply, 1, Fault::Resent);
    assert_eq!(store.incr("n", 1).await?, 11);
    backend.fail_next(FaultOp::Apply, 1, Fault::Resent);
    let mut runs = 0;
    store
        .transaction(|tx| {
            runs += 1;
            Box::pin(async move {
                let n = tx.get("n").await?.unwrap_or_default();
                tx.set("n", [&n[..], b"!"].concat())?;
                Ok(())
            })
        })
        .await?;
    assert_eq!((backend.injected(), runs), (2, 1));
    assert_eq!(store.get("n").await?.as_deref(), Some(&b"11!"[..]));
    store.close().await
}

/// After a write fails although the backend applied it, reads through a cache agree with the
/// backend: neither the LRU nor memory-first keeps serving the value it replaced.
#[tokio::test]
async fn a_cache_does_not_outlive_a_failed_apply_that_took_effect() -> Result<()> {
    for memory_first in [false, true] {
        let backend = Arc::new(FaultyBackend::new(MemoryBackend::new(), 0));
        let builder = Store::builder(backend.clone()).write_config(WriteConfig {
            retry_attempts: 2,
            ..quick_retries()
        });
        let store = match memory_first {
            true => builder.memory_first(true),
            false => builder.cache_bytes(1 << 20),
        }
        .build()
        .await?;
        store.set("k", "old").await?;
        assert_eq!(store.get("k").await?.as_deref(), Some(&b"old"[..]));
        backend.fail_always(FaultOp::Apply, Fault::LostReply);
        assert!(store.set("k", "new").await.is_err());
        backend.heal();
        let stored = backend.get(store.space(), "k").await?.map(|r| r.value);
        assert_eq!(stored.as_deref(), Some(&b"new"[..]));
        assert_eq!(
            store.get("k").await?.as_deref(),
            Some(&b"new"[..]),
            "memory_first: {memory_first}"
        );
        store.close().await?;
    }
    Ok(())
}

/// Dropping the store while the sweeper leads a round (its checked delete took every buffered
/// write with it) loses none of those writes: the flusher waits for the round before it stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_store_during_a_sweeper_round_loses_nothing() -> Result<()> {
    let backend = Arc::new(FaultyBackend::new(MemoryBackend::new(), 0));
    let store = Store::builder(backend.clone())
        .flush_policy(FlushPolicy::Manual)
        .sweep_interval(Some(Duration::from_millis(5)))
        .build()
        .await?;
    let space = store.space().clone();
    store
        .set_with(
            "expiring",
            "v",
            &SetOptions::new().ttl(Duration::from_millis(1)),
        )
        .await?;
    store.flush().await?;
    backend.set_apply_delay(Duration::from_millis(300));
    for i in 0..10 {
        store.set(&format!("k{i}"), "v").await?;
    }
    // The sweeper's round (the expired key's delete, with the ten buffered writes) is now
    // waiting on the slow apply.
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(store);
    for _ in 0..300 {
        let keys = backend.scan_all(&space, "k").await?.len();
        if keys == 10 {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("writes taken by a sweeper round were lost when the store was dropped");
}

/// When a round's sync fails after a later chunk of it failed to apply, the dead-letter queue
/// still lists its entries oldest first, so a full queue evicts the oldest write, not a newer one.
#[tokio::test]
async fn dead_letters_stay_oldest_first_when_a_sync_fails_after_a_chunk() -> Result<()> {
    let (faulty, store) = manual_store_with(
        7,
        WriteConfig {
            chunk_size: 1,
            dlq_capacity: 2,
            ..quick_retries()
        },
    )
    .await?;
    for key in ["a", "b", "c"] {
        store.set(key, key).await?;
    }
    // The first chunk applies, the second and third fail; then the sync fails too, which
    // fails the first chunk after the other two.
    faulty.fail_after(FaultOp::Apply, 1, 2, Fault::Permanent);
    faulty.fail_always(FaultOp::Sync, Fault::Permanent);
    assert!(store.flush().await.is_err());
    let dlq = store.dlq();
    let keys: Vec<&str> = dlq.iter().map(|d| d.batch.ops[0].key()).collect();
    assert_eq!(keys, ["b", "c"], "the oldest entry, a, is the one evicted");
    assert!(dlq.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(store.dlq_summary().evicted, 1);
    // The last failure was the sync's, though its entry is not the newest write.
    let last = store.dlq_summary().last_error.expect("an error");
    assert!(last.contains("in Sync"), "{last}");
    faulty.heal();
    store.retry_dlq().await?;
    store.flush().await?;
    for key in ["b", "c"] {
        let stored = faulty.inner().get(&Space::default(), key).await?;
        assert_eq!(stored.expect("persisted").value, key);
    }
    Ok(())
}

/// Two stores on one backend never hand out the same version: a check made by one could
/// otherwise pass on the other's write. Their counters start far apart (the chance that this
/// fails is about 2^-22), where stores built together used to start nanoseconds apart.
#[tokio::test]
async fn stores_sharing_a_backend_write_distinct_versions() -> Result<()> {
    let backend = Arc::new(MemoryBackend::new());
    let a = Store::builder(backend.clone()).build().await?;
    let b = Store::builder(backend.clone()).build().await?;
    a.set("a", "1").await?;
    b.set("b", "1").await?;
    let version = |store: &Store, key: &'static str| {
        let store = store.clone();
        async move {
            Ok::<_, Error>(
                store
                    .get_with_metadata(key)
                    .await?
                    .map(|r| r.meta.version)
                    .unwrap_or_default(),
            )
        }
    };
    let (va, vb) = (version(&a, "a").await?, version(&b, "b").await?);
    assert!(
        va.abs_diff(vb) > 1 << 40,
        "versions {va} and {vb} are close"
    );
    // A transaction of one store that read a key conflicts with the other store's write of
    // it, whatever either store's count.
    let mut tx = b.begin();
    assert!(tx.get("a").await?.is_some());
    a.set("a", "2").await?;
    tx.set("a", "from b")?;
    assert!(matches!(tx.commit().await, Err(Error::Conflict { .. })));
    Ok(())
}

/// A sweep leaves expired keys with a dead-lettered write alone and still reaches the expired
/// keys the index lists after them, however many of them come first.
#[tokio::test]
async fn a_sweep_reaches_expired_keys_listed_after_ones_it_leaves_alone() -> Result<()> {
    let clock = MockClock::default();
    let faulty = Arc::new(FaultyBackend::new(MemoryBackend::new(), 11));
    let store = Store::builder(faulty.clone())
        .flush_policy(FlushPolicy::Manual)
        .write_config(WriteConfig {
            dlq_capacity: 10_000,
            ..quick_retries()
        })
        .clock(clock.clone())
        .sweep_interval(None)
        .build()
        .await?;
    let soon = SetOptions::new().ttl(Duration::from_secs(1));
    let later = SetOptions::new().ttl(Duration::from_secs(2));
    // More than one sweep chunk (1,000 keys) expires first, each key's rewrite dead-lettered.
    let held: Vec<String> = (0..2500).map(|i| format!("held-{i:04}")).collect();
    let free: Vec<String> = (0..5).map(|i| format!("free-{i}")).collect();
    for k in &held {
        store.set_with(k, "1", &soon).await?;
    }
    for k in &free {
        store.set_with(k, "1", &later).await?;
    }
    store.flush().await?;
    faulty.fail_always(FaultOp::Apply, Fault::Permanent);
    for k in &held {
        store.set_with(k, "2", &soon).await?;
    }
    store
        .flush()
        .await
        .expect_err("the rewrites are dead-lettered");
    faulty.heal();
    clock.advance(Duration::from_secs(3));
    assert_eq!(store.sweep_expired().await?, free.len() as u64);
    let space = Space::default();
    for k in &free {
        assert!(faulty.get(&space, k).await?.is_none(), "{k} was not swept");
    }
    for k in &held {
        assert!(faulty.get(&space, k).await?.is_some(), "{k} was swept");
    }
    assert_eq!(store.sweep_expired().await?, 0);
    Ok(())
}
