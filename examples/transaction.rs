//! Transactions: a transfer between two accounts that commits all or nothing, reads that see
//! the transaction's own writes, isolation until commit, rollback on drop, and a conflicting
//! writer turned into a retry by `Store::transaction`.
//!
//! Run with `cargo run -p nadb-examples --example transaction`.

use nadb::{Error, Store};

fn parse(raw: Option<bytes::Bytes>) -> i64 {
    raw.and_then(|b| std::str::from_utf8(&b).ok().and_then(|s| s.parse().ok()))
        .unwrap_or(0)
}

async fn balance(store: &Store, account: &str) -> nadb::Result<i64> {
    Ok(parse(store.get(account).await?))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = nadb::open(&format!(
        "sqlite://{}",
        dir.path().join("bank.db").display()
    ))
    .await?;
    store.set("alice", "100").await?;
    store.set("bob", "0").await?;

    // Commit: both writes or neither; invisible to others until then.
    let mut tx = store.begin();
    let a = parse(tx.get("alice").await?);
    tx.set("alice", (a - 30).to_string())?;
    tx.set("bob", "30")?;
    println!("inside: alice = {}", parse(tx.get("alice").await?));
    println!(
        "outside before commit: alice = {}",
        balance(&store, "alice").await?
    );
    tx.commit().await?;
    println!(
        "after commit: alice = {}, bob = {}",
        balance(&store, "alice").await?,
        balance(&store, "bob").await?
    );

    // Rollback: dropping a transaction discards it.
    {
        let mut tx = store.begin();
        tx.set("alice", "0")?;
    }
    assert_eq!(balance(&store, "alice").await?, 70);

    // Conflict: someone changes a key the transaction read; its commit is refused.
    let mut tx = store.begin();
    let b = parse(tx.get("bob").await?);
    store.set("bob", "1000").await?;
    tx.set("bob", (b + 1).to_string())?;
    match tx.commit().await {
        Err(Error::Conflict { .. }) => println!("conflict detected: nothing written"),
        other => return Err(format!("expected a conflict, got {other:?}").into()),
    }
    assert_eq!(balance(&store, "bob").await?, 1000);

    // `Store::transaction` re-runs the body on conflicts: 20 concurrent transfers all land.
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .transaction(|tx| {
                    Box::pin(async move {
                        let a = parse(tx.get("alice").await?);
                        let b = parse(tx.get("bob").await?);
                        tx.set("alice", (a - 1).to_string())?;
                        tx.set("bob", (b + 1).to_string())
                    })
                })
                .await
        }));
    }
    for t in tasks {
        t.await??;
    }
    let (a, b) = (
        balance(&store, "alice").await?,
        balance(&store, "bob").await?,
    );
    println!("after 20 concurrent transfers: alice = {a}, bob = {b}");
    assert_eq!((a, b), (50, 1020));
    store.close().await?;
    Ok(())
}
