//! Real servers doing bad things: a paused server, a killed and restarted server, a slot
//! migrated under an ingest; and proof that tag queries never scan the keyspace.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use nadb_backend_redis::RedisBackend;
use nadb_core::{BufferedFlush, FlushPolicy, SetOptions, Space, Store, TagMode, WriteConfig};
use nadb_testkit::redis::{RedisCluster, RedisServer};
use parking_lot::Mutex;

fn server(args: &[&str]) -> RedisServer {
    RedisServer::start_with(args).unwrap_or_else(|e| panic!("{e}"))
}

/// Retries that outlast a restart or a slot migration of a few seconds.
fn patient() -> WriteConfig {
    WriteConfig {
        retry_attempts: 40,
        retry_base_delay: Duration::from_millis(20),
        retry_max_delay: Duration::from_millis(500),
        ..WriteConfig::default()
    }
}

async fn store(url: &str, policy: FlushPolicy) -> Store {
    let backend = RedisBackend::open(url).await.expect("connect");
    Store::builder(Arc::new(backend))
        .space(Space::new("ingest", "main").unwrap())
        .flush_policy(policy)
        .write_config(patient())
        .build()
        .await
        .expect("store")
}

/// Checks every key `k{i}` for `i < n` holds `expected(i)`.
async fn assert_all(s: &Store, n: u64, expected: impl Fn(u64) -> String) {
    let keys: Vec<String> = (0..n).map(|i| format!("k{i}")).collect();
    for chunk in keys.chunks(2000) {
        let got = s.get_many(chunk).await.expect("read back");
        for (k, v) in chunk.iter().zip(got) {
            let i: u64 = k[1..].parse().unwrap();
            let want = expected(i);
            assert_eq!(v.as_deref(), Some(want.as_bytes()), "key {k}");
        }
    }
    assert_eq!(s.len().await.unwrap(), n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tag_queries_never_scan_the_keyspace() {
    let srv = server(&["--save", ""]);
    let s = store(&srv.url(), BufferedFlush::none().max_ops(1000).into()).await;
    for i in 0..2000u32 {
        let tags: &[&str] = if i % 10 == 0 {
            &["hot", "all"]
        } else {
            &["all"]
        };
        s.set_with(
            &format!("k{i}"),
            "v",
            &SetOptions::new().tags(tags.iter().copied()),
        )
        .await
        .unwrap();
    }
    s.flush().await.unwrap();
    srv.cli(&["CONFIG", "RESETSTAT"]).unwrap();
    let page = s
        .query_by_tags(&["hot"], TagMode::All, None, 10_000)
        .await
        .unwrap();
    assert_eq!(page.items.len(), 200);
    let any = s
        .query_by_tags(&["hot", "all"], TagMode::Any, None, 100)
        .await
        .unwrap();
    assert_eq!(any.items.len(), 100);
    assert_eq!(s.list_tags().await.unwrap()["hot"], 200);
    let stats = srv.cli(&["INFO", "commandstats"]).unwrap();
    for banned in [
        "cmdstat_scan:",
        "cmdstat_keys:",
        "cmdstat_sscan:",
        "cmdstat_hscan:",
        "cmdstat_zscan:",
    ] {
        assert!(!stats.contains(banned), "{banned} issued:\n{stats}");
    }
    // The query ran on the server, over the tag sets.
    assert!(stats.contains("cmdstat_zinterstore:"), "{stats}");
    assert!(stats.contains("cmdstat_zunionstore:"), "{stats}");
    s.close().await.unwrap();
}

/// Writes `ops` sets over `keys` keys (each key several times; the last write is `v{i}` with
/// the largest `i` such that `i % keys == key`), calling `disrupt` once halfway.
async fn ingest(s: &Store, ops: u64, keys: u64, disrupt: impl FnOnce()) {
    let mut disrupt = Some(disrupt);
    for i in 0..ops {
        if i == ops / 2
            && let Some(d) = disrupt.take()
        {
            d();
        }
        s.set(&format!("k{}", i % keys), format!("v{i}"))
            .await
            .unwrap_or_else(|e| panic!("write {i} failed: {e}"));
    }
    s.flush()
        .await
        .unwrap_or_else(|e| panic!("flush failed: {e}"));
}

fn last_write(ops: u64, keys: u64) -> impl Fn(u64) -> String {
    move |k| format!("v{}", ((ops - 1 - k) / keys) * keys + k)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_pause_mid_ingest_loses_nothing() {
    let srv = server(&["--save", ""]);
    let s = store(&srv.url(), BufferedFlush::none().max_ops(1000).into()).await;
    let (ops, keys) = (100_000, 60_000);
    let port = srv.port();
    let mut paused_at = None;
    ingest(&s, ops, keys, || {
        let out = nadb_testkit::redis::cli(port, &["CLIENT", "PAUSE", "2000", "ALL"]).unwrap();
        assert!(out.contains("OK"), "{out}");
        paused_at = Some(std::time::Instant::now());
    })
    .await;
    // The writes after the pause could only land once it ended.
    let waited = paused_at.unwrap().elapsed();
    assert!(
        waited >= Duration::from_millis(1900),
        "flush returned {waited:?} after the pause"
    );
    assert_all(&s, keys, last_write(ops, keys)).await;
    assert_eq!(s.dlq_summary().entries, 0);
    s.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_killed_and_restarted_keeps_every_acked_write() {
    let srv = Arc::new(Mutex::new(server(&[
        "--save",
        "",
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
    ])));
    let url = srv.lock().url();
    let s = store(&url, FlushPolicy::Immediate).await;
    let acked = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    // Four writers with Immediate acknowledgements, each on its own keys.
    let mut writers = Vec::new();
    for w in 0..4u64 {
        let (s, acked, stop) = (s.clone(), acked.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let key = format!("w{w}-{i}");
                if s.set(&key, format!("value {i}")).await.is_ok() {
                    mine.push(i);
                    acked.fetch_add(1, Ordering::Relaxed);
                }
                i += 1;
            }
            (w, mine)
        }));
    }
    while acked.load(Ordering::Relaxed) < 500 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let before = acked.load(Ordering::Relaxed);
    {
        let srv = srv.clone();
        tokio::task::spawn_blocking(move || {
            let mut srv = srv.lock();
            srv.kill();
            std::thread::sleep(Duration::from_millis(300));
            srv.restart().unwrap();
        })
        .await
        .unwrap();
    }
    let resumed = acked.load(Ordering::Relaxed);
    while acked.load(Ordering::Relaxed) < resumed + 500 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.store(true, Ordering::Relaxed);
    s.flush().await.unwrap();
    let mut total = 0;
    for w in writers {
        let (w, mine) = w.await.unwrap();
        let keys: Vec<String> = mine.iter().map(|i| format!("w{w}-{i}")).collect();
        let got = s.get_many(&keys).await.unwrap();
        for (i, v) in mine.iter().zip(got) {
            assert_eq!(
                v.as_deref(),
                Some(format!("value {i}").as_bytes()),
                "acknowledged write w{w}-{i} lost"
            );
        }
        total += mine.len();
    }
    assert!(before >= 500 && total as u64 >= resumed + 500);
    s.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slot_migration_mid_ingest_is_invisible() {
    let cluster = RedisCluster::start(3).unwrap_or_else(|e| panic!("{e}"));
    let s = store(&cluster.url(), BufferedFlush::none().max_ops(500).into()).await;
    let slot: u16 = cluster.nodes[0]
        .cli(&["CLUSTER", "KEYSLOT", "nadb:{ingest:main}:m"])
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let (ops, keys) = (30_000u64, 20_000u64);
    let cluster = Arc::new(cluster);
    let mover = cluster.clone();
    let mut migration = None;
    let tag = |i: u64| format!("g{}", i % 7);
    for i in 0..ops {
        if i == ops / 3 {
            let mover = mover.clone();
            migration = Some(std::thread::spawn(move || migrate_slot(&mover, slot)));
        }
        let key = format!("k{}", i % keys);
        let mut opts = SetOptions::new().tags([tag(i)]);
        if i % 5 == 0 {
            opts = opts.ttl(Duration::from_secs(3600));
        }
        if i % 11 == 0 {
            // A delete then a put of one key in one flush: both reach the backend in a batch.
            s.delete(&key)
                .await
                .unwrap_or_else(|e| panic!("delete {i}: {e}"));
        }
        s.set_with(&key, format!("v{i}"), &opts)
            .await
            .unwrap_or_else(|e| panic!("write {i}: {e}"));
        if i % 250 == 0 {
            // Reads while the slot moves: a tag query, a scan page, a point read.
            s.query_by_tags(&["g3"], TagMode::All, None, 50)
                .await
                .unwrap_or_else(|e| panic!("query at {i}: {e}"));
            s.scan("k1", None, 20)
                .await
                .unwrap_or_else(|e| panic!("scan at {i}: {e}"));
            s.get("k7")
                .await
                .unwrap_or_else(|e| panic!("get at {i}: {e}"));
        }
    }
    s.flush()
        .await
        .unwrap_or_else(|e| panic!("flush failed: {e}"));
    let moved_to = migration
        .unwrap()
        .join()
        .unwrap()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        cluster.owner_of(slot).unwrap().port(),
        moved_to,
        "slot moved"
    );
    let last = last_write(ops, keys);
    assert_all(&s, keys, &last).await;
    // The index agrees with the records.
    let mut by_tag: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for k in 0..keys {
        let i: u64 = last(k)[1..].parse().unwrap();
        by_tag.entry(tag(i)).or_default().push(format!("k{k}"));
    }
    let counts = s.list_tags().await.unwrap();
    for (t, mut want) in by_tag {
        assert_eq!(counts[&t], want.len() as u64, "count of {t}");
        want.sort();
        let got = s
            .query_by_tags(&[t.as_str()], TagMode::All, None, 100_000)
            .await
            .unwrap();
        assert_eq!(got.items, want, "members of {t}");
    }
    s.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_the_server_expired_is_gone_everywhere() {
    let srv = server(&["--save", ""]);
    let s = store(&srv.url(), FlushPolicy::Immediate).await;
    let opts = SetOptions::new().tags(["t"]).ttl(Duration::from_secs(3600));
    s.set_with("gone", "a", &opts).await.unwrap();
    s.set_with("kept", "b", &opts).await.unwrap();
    // What the server does when a native expiry fires: the value key disappears, the
    // metadata and tag membership stay until pruned.
    srv.cli(&["DEL", "nadb:{ingest:main}:r:gone"]).unwrap();
    assert_eq!(
        srv.cli(&["HEXISTS", "nadb:{ingest:main}:m", "gone"])
            .unwrap()
            .trim(),
        "1"
    );
    assert_eq!(s.get("gone").await.unwrap(), None);
    assert!(!s.exists("gone").await.unwrap());
    assert_eq!(s.scan("", None, 10).await.unwrap().items, ["kept"]);
    let page = s
        .query_by_tags(&["t"], TagMode::All, None, 10)
        .await
        .unwrap();
    assert_eq!(page.items, ["kept"]);
    // The query met the dead record and pruned it.
    assert_eq!(
        srv.cli(&["HEXISTS", "nadb:{ingest:main}:m", "gone"])
            .unwrap()
            .trim(),
        "0"
    );
    assert_eq!(
        srv.cli(&["SISMEMBER", "nadb:{ingest:main}:t:t", "gone"])
            .unwrap()
            .trim(),
        "0"
    );
    assert_eq!(s.len().await.unwrap(), 1);
    assert_eq!(s.list_tags().await.unwrap()["t"], 1);
    // The key is free again.
    assert!(
        s.set_if_absent("gone", "new", &SetOptions::new())
            .await
            .unwrap()
    );
    assert_eq!(s.get("gone").await.unwrap().as_deref(), Some(&b"new"[..]));
    s.close().await.unwrap();
}

/// Moves `slot` to another primary the way `redis-cli --cluster reshard` does: mark it
/// importing and migrating, MIGRATE its keys in groups of 100, then assign it. Returns the new
/// owner's port.
fn migrate_slot(cluster: &RedisCluster, slot: u16) -> Result<u16, String> {
    let slot_s = slot.to_string();
    let from = cluster.owner_of(slot)?;
    let to = cluster
        .nodes
        .iter()
        .find(|n| n.port() != from.port())
        .ok_or("no second node")?;
    let (from_id, to_id) = (RedisCluster::id_of(from)?, RedisCluster::id_of(to)?);
    to.cli(&["CLUSTER", "SETSLOT", &slot_s, "IMPORTING", &from_id])?;
    from.cli(&["CLUSTER", "SETSLOT", &slot_s, "MIGRATING", &to_id])?;
    loop {
        let keys = from.cli(&["CLUSTER", "GETKEYSINSLOT", &slot_s, "100"])?;
        let keys: Vec<&str> = keys.lines().filter(|l| !l.is_empty()).collect();
        if keys.is_empty() {
            break;
        }
        let port = to.port().to_string();
        let mut args = vec![
            "MIGRATE",
            "127.0.0.1",
            &port,
            "",
            "0",
            "5000",
            "REPLACE",
            "KEYS",
        ];
        args.extend(keys.iter().copied());
        let out = from.cli(&args)?;
        if !(out.contains("OK") || out.contains("NOKEY")) {
            return Err(format!("MIGRATE answered {out}"));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    for n in &cluster.nodes {
        n.cli(&["CLUSTER", "SETSLOT", &slot_s, "NODE", &to_id])?;
    }
    Ok(to.port())
}

/// A batch sent again after its reply was lost (the pipeline retries it) is recognised as
/// already applied: it does not undo a write made by someone else in between.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_sent_again_after_a_lost_reply_is_not_applied_twice() {
    use nadb_core::{Batch, Meta, Record, StorageBackend, Timestamp};
    let srv = server(&["--save", ""]);
    let backend = RedisBackend::open(&srv.url()).await.expect("connect");
    let space = Space::new("retry", "main").unwrap();
    let record = |value: &'static str, version: u64| {
        let mut m = Meta::new(Timestamp::from_millis(1_700_000_000_000), version);
        m.stored_len = value.len() as u64;
        m.value_len = value.len() as u64;
        Record::new(value.into(), m)
    };
    // The probed put (the last) has a tag: the long put form.
    let mut tagged = record("first", 1);
    tagged.meta.tags = nadb_core::Tags::new(["t"]).unwrap();
    let mut sent = Batch::new(space.clone());
    sent.put("a", record("first", 1)).put("b", tagged);
    backend.apply(&sent).await.unwrap();
    let mut other = Batch::new(space.clone());
    other.delete("a");
    backend.apply(&other).await.unwrap();
    backend.apply(&sent).await.unwrap();
    assert_eq!(backend.get(&space, "a").await.unwrap(), None);
    let b = backend.get(&space, "b").await.unwrap().expect("b");
    assert_eq!((&b.value[..], b.meta.version), (&b"first"[..], 1));
    assert!(b.meta.tags.iter().eq(["t"]));
    // A batch whose last put differs is applied.
    let mut next = Batch::new(space.clone());
    next.put("a", record("second", 2))
        .put("b", record("second", 2));
    backend.apply(&next).await.unwrap();
    let a = backend.get(&space, "a").await.unwrap().expect("a");
    assert_eq!(&a.value[..], b"second");
}

/// Writes that may already have landed (dead-lettered after a lost reply, then retried) are
/// sent again each in a batch of its own: merged with a write that never landed, the landed
/// one would make the whole batch look already applied and the other write would be dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_write_that_landed_does_not_hide_one_that_did_not() {
    use nadb_testkit::{Fault, FaultOp, FaultyBackend};
    let srv = server(&["--save", ""]);
    let redis = RedisBackend::open(&srv.url()).await.expect("connect");
    let faulty = Arc::new(FaultyBackend::new(redis, 3));
    let space = Space::new("retry", "dlq").unwrap();
    let s = Store::builder(faulty.clone())
        .space(space.clone())
        .flush_policy(FlushPolicy::Manual)
        .write_config(WriteConfig {
            retry_attempts: 1,
            ..WriteConfig::default()
        })
        .build()
        .await
        .expect("store");
    s.set("a", "never landed").await.unwrap();
    faulty.fail_next(FaultOp::Apply, 1, Fault::Temporary);
    assert!(s.flush().await.is_err());
    s.set("c", "landed").await.unwrap();
    faulty.fail_next(FaultOp::Apply, 1, Fault::LostReply);
    assert!(s.flush().await.is_err());
    assert_eq!(s.dlq_summary().entries, 2);
    assert_eq!(s.retry_dlq().await.unwrap(), 2);
    s.flush().await.unwrap();
    let stored = faulty.inner().get(&space, "a").await.unwrap();
    assert_eq!(
        stored.map(|r| r.value),
        Some("never landed".into()),
        "the write that never landed was dropped"
    );
    assert_eq!(s.get("c").await.unwrap().as_deref(), Some(&b"landed"[..]));
}
