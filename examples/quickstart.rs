//! A tour of nadb on the embedded default store (`fs://./nadb-data`): values, metadata, tags, TTL, counters,
//! conditional writes, scans, JSON, metrics.
//!
//! Run with `cargo run -p nadb-examples --example quickstart`.

use std::time::Duration;

use nadb::{SetOptions, TagMode};

#[derive(serde::Serialize, serde::Deserialize, Debug)]
struct Profile {
    name: String,
    langs: Vec<String>,
}

#[tokio::main]
async fn main() -> nadb::Result<()> {
    let store = nadb::open(nadb::DEFAULT_URL).await?;
    println!(
        "opened {} (schemes in this build: {:?})",
        nadb::DEFAULT_URL,
        nadb::schemes()
    );

    // Bytes in, bytes out.
    store.set("greeting", "hello, nadb").await?;
    let greeting = store.get("greeting").await?.unwrap_or_default();
    println!("greeting = {}", String::from_utf8_lossy(&greeting));

    // Tags and expiry travel with the record.
    let session = SetOptions::new()
        .tags(["session", "web"])
        .ttl(Duration::from_secs(900));
    store.set_with("session:ada", "token-1", &session).await?;
    store.set_with("session:bob", "token-2", &session).await?;
    let sessions = store
        .query_by_tags(&["session"], TagMode::All, None, 100)
        .await?;
    println!(
        "sessions = {:?}; tags = {:?}",
        sessions.items,
        store.list_tags().await?
    );
    println!("ttl(session:ada) = {:?}", store.ttl("session:ada").await?);

    // Large values are compressed when that makes them smaller.
    store
        .set("report", "all systems nominal\n".repeat(1000))
        .await?;
    if let Some(r) = store.get_with_metadata("report").await? {
        println!(
            "report: {} bytes stored as {} ({:?})",
            r.meta.value_len, r.meta.stored_len, r.meta.codec
        );
    }

    // Atomic counters and conditional writes.
    store.incr("visits", 1).await?;
    println!("visits = {}", store.incr("visits", 1).await?);
    let won = store
        .set_if_absent("leader", "node-a", &SetOptions::new())
        .await?;
    println!("became leader: {won}");

    // Typed values.
    let ada = Profile {
        name: "Ada".into(),
        langs: vec!["Rust".into()],
    };
    store.set_json("profile:ada", &ada).await?;
    println!(
        "profile = {:?}",
        store.get_json::<Profile>("profile:ada").await?
    );

    // Listing in key order, page by page.
    let page = store.scan("session:", None, 10).await?;
    println!(
        "scan(session:) = {:?}, more: {}",
        page.items,
        !page.is_last()
    );
    println!("{} live keys", store.len().await?);

    let stats = store.stats().await?;
    println!(
        "stats: {} sets, {} gets, compression ratio {:.1}, {} flush rounds",
        stats.ops.get("set").map_or(0, |s| s.count),
        stats.ops.get("get").map_or(0, |s| s.count),
        stats.compression_ratio,
        stats.pipeline.flushes
    );
    store.close().await
}
