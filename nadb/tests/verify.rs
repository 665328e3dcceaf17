//! `verify` finds records that do not decode and an index that disagrees with the records,
//! and finds nothing in a sound store.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use nadb::{
    BackendExt, Codec, MemoryBackend, MemoryIndex, Meta, Record, SetOptions, Space, Store, Tags,
    Timestamp,
};

fn record(value: &[u8], codec: Codec, tags: &[&str]) -> nadb::Result<Record> {
    let mut meta = Meta::new(Timestamp::from_millis(1_700_000_000_000), 7);
    meta.value_len = value.len() as u64;
    meta.stored_len = value.len() as u64;
    meta.codec = codec;
    meta.tags = Tags::new(tags.iter().copied())?;
    Ok(Record::new(Bytes::copy_from_slice(value), meta))
}

/// A store keeping its own index beside the backend, so a write straight to the backend
/// leaves the index behind.
async fn sound_store() -> nadb::Result<Store> {
    let store = Store::builder(MemoryBackend::new())
        .index(Arc::new(MemoryIndex::new()))
        .build()
        .await?;
    store
        .set_with("a", "1", &SetOptions::new().tags(["red", "big"]))
        .await?;
    store
        .set_with(
            "b",
            vec![b'z'; 5000],
            &SetOptions::new()
                .tags(["red"])
                .ttl(Duration::from_secs(3600)),
        )
        .await?;
    let other = store.with_space(Space::new("other", "ns")?).await?;
    other
        .set_with("c", "3", &SetOptions::new().tags(["blue"]))
        .await?;
    Ok(store)
}

#[tokio::test]
async fn a_sound_store_has_no_problems() -> nadb::Result<()> {
    let store = sound_store().await?;
    let report = nadb::verify::verify(&store, &()).await?;
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!((report.spaces, report.records), (2, 3));
    Ok(())
}

#[tokio::test]
async fn a_value_that_does_not_decode_is_a_problem() -> nadb::Result<()> {
    let store = sound_store().await?;
    // Written under the store, as a damaged backend would hold it.
    store
        .backend()
        .put(
            &Space::default(),
            "broken",
            record(b"not zstd", Codec::Zstd, &[])?,
        )
        .await?;
    let report = nadb::verify::verify(&store, &()).await?;
    let keys: Vec<_> = report.problems.iter().map(|p| p.key.as_deref()).collect();
    assert!(keys.contains(&Some("broken")), "{:?}", report.problems);
    let p = report
        .problems
        .iter()
        .find(|p| p.key.as_deref() == Some("broken"))
        .expect("problem");
    assert!(p.reason.contains("corrupt"), "{}", p.reason);
    assert!(!format!("{:?}", report.problems).contains("not zstd"));
    Ok(())
}

#[tokio::test]
async fn an_index_that_disagrees_with_the_records_is_a_problem() -> nadb::Result<()> {
    let store = sound_store().await?;
    // The store's index never sees a record written straight to the backend.
    store
        .backend()
        .put(
            &Space::default(),
            "hidden",
            record(b"h", Codec::Raw, &["red"])?,
        )
        .await?;
    let report = nadb::verify::verify(&store, &()).await?;
    let reasons: Vec<String> = report
        .problems
        .iter()
        .map(|p| format!("{:?} {}", p.key, p.reason))
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("hidden") && r.contains("does not return the key")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("index counts 2 live keys, the records say 3")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("index counts 2 keys with tag \"red\", the records say 3")),
        "{reasons:?}"
    );
    assert!(
        report
            .problems
            .iter()
            .all(|p| p.space == Some(Space::default()))
    );
    Ok(())
}
