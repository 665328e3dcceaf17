//! Tags and expiry: label records, query them by all or any of their labels, count them,
//! delete by tag, and watch keys expire — on a filesystem store in a temporary directory.
//!
//! Run with `cargo run -p nadb-examples --example tags_and_ttl`.

use std::time::Duration;

use nadb::{KeyTtl, SetOptions, TagMode};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = nadb::open(&format!("fs://{}", dir.path().display())).await?;

    // A write carries its tags; a later write replaces them (here: none).
    let article = |tags: &[&str]| SetOptions::new().tags(tags.iter().copied());
    store
        .set_with("post:1", "Rust async", &article(&["rust", "async"]))
        .await?;
    store
        .set_with("post:2", "Rust traits", &article(&["rust"]))
        .await?;
    store
        .set_with("post:3", "Tokio tips", &article(&["async", "tokio"]))
        .await?;
    store
        .set_with("post:4", "Draft", &article(&["draft"]))
        .await?;
    store.set("post:4", "Published, untagged").await?;

    let both = store
        .query_by_tags(&["rust", "async"], TagMode::All, None, 10)
        .await?;
    let either = store
        .query_by_tags(&["rust", "async"], TagMode::Any, None, 10)
        .await?;
    println!("rust AND async: {:?}", both.items);
    println!("rust OR async:  {:?}", either.items);
    println!("tag counts:     {:?}", store.list_tags().await?);
    assert_eq!(both.items, ["post:1"]);
    assert_eq!(either.items, ["post:1", "post:2", "post:3"]);

    // Paging through a larger result, two keys at a time.
    let mut cursor = None;
    loop {
        let page = store
            .query_by_tags(&["rust", "async"], TagMode::Any, cursor.as_deref(), 2)
            .await?;
        println!("page: {:?}", page.items);
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }

    // Expiry: relative TTL, remaining time, extending it, removing it.
    let session = SetOptions::new()
        .tags(["session"])
        .ttl(Duration::from_millis(300));
    store.set_with("session:a", "token-a", &session).await?;
    store.set_with("session:b", "token-b", &session).await?;
    store.touch("session:b", Duration::from_secs(60)).await?;
    store.set_with("session:c", "token-c", &session).await?;
    store.persist("session:c").await?;
    if let Some(KeyTtl::Remaining(left)) = store.ttl("session:a").await? {
        println!("session:a expires in {} ms", left.as_millis());
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    let live = store
        .query_by_tags(&["session"], TagMode::All, None, 10)
        .await?;
    println!("sessions after 400 ms: {:?}", live.items);
    assert_eq!(live.items, ["session:b", "session:c"]);
    assert_eq!(
        store.get("session:a").await?,
        None,
        "expired keys are never returned"
    );
    assert_eq!(store.ttl("session:c").await?, Some(KeyTtl::Never));

    // Delete every key with a tag.
    let removed = store.delete_by_tag("rust").await?;
    println!(
        "deleted {removed} keys tagged rust; {} keys left",
        store.len().await?
    );
    assert_eq!(removed, 2);

    store.close().await?;
    Ok(())
}
