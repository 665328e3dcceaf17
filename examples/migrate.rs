//! Moving a store from the filesystem backend to SQLite: fill an fs store, copy every space
//! with `nadb::migrate`, compare per-space counts and checksums, and read the copy — then the
//! same data through NDJSON export and import.
//!
//! Run with `cargo run -p nadb-examples --example migrate`.

use std::time::Duration;

use nadb::{SetOptions, Space};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let from = nadb::open(&format!("fs://{}", dir.path().join("fs-store").display())).await?;
    for i in 0..500 {
        let opts = SetOptions::new().tags(if i % 2 == 0 {
            vec!["even"]
        } else {
            vec!["odd"]
        });
        from.set_with(&format!("item:{i:04}"), format!("value {i}"), &opts)
            .await?;
    }
    let sessions = from.with_space(Space::new("web", "sessions")?).await?;
    sessions
        .set_with(
            "s:1",
            vec![0u8, 159, 255],
            &SetOptions::new().ttl(Duration::from_secs(3600)),
        )
        .await?;

    let to = nadb::open(&format!(
        "sqlite://{}",
        dir.path().join("copy.db").display()
    ))
    .await?;
    let report = nadb::migrate::migrate(&from, &to, &()).await?;
    for s in &report.spaces {
        println!("{s}");
    }
    assert!(report.verified(), "the copy differs from the source");
    println!("copied {} records", report.copied);
    println!("item:0042 in SQLite = {:?}", to.get("item:0042").await?);
    let web = to.with_space(Space::new("web", "sessions")?).await?;
    println!("web/sessions s:1 ttl = {:?}", web.ttl("s:1").await?);

    // The same move through a file: export NDJSON, import it elsewhere, compare bytes.
    let file = dir.path().join("dump.ndjson");
    let summary = nadb::ndjson::export(&from, std::fs::File::create(&file)?, &()).await?;
    println!(
        "exported {} records from {} spaces",
        summary.records, summary.spaces
    );
    let again = nadb::open(&format!(
        "sqlite://{}",
        dir.path().join("again.db").display()
    ))
    .await?;
    let input = std::io::BufReader::new(std::fs::File::open(&file)?);
    nadb::ndjson::import(&again, input, &()).await?;
    let mut reexported = Vec::new();
    nadb::ndjson::export(&again, &mut reexported, &()).await?;
    assert_eq!(
        reexported,
        std::fs::read(&file)?,
        "export -> import -> export is exact"
    );
    println!("export -> import -> export: identical bytes");

    from.close().await?;
    to.close().await?;
    again.close().await?;
    Ok(())
}
