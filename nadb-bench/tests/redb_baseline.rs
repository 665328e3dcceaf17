//! redb as a baseline keeps what it writes, serially and from concurrent writers, across a
//! close and open.

use bytes::Bytes;
use nadb::bench::Baseline;
use nadb_bench::RedbBaseline;

#[tokio::test]
async fn redb_baseline_keeps_rows_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut db = RedbBaseline::new(dir.path());
    let items: Vec<(String, Bytes)> = (0..300)
        .map(|i| (format!("k{i}"), Bytes::from(format!("v{i}"))))
        .collect();
    db.open("s").await.unwrap();
    db.load("s", &items[..100]).await.unwrap();
    db.put_durable("s", &items[100..150]).await.unwrap();
    db.put_durable_concurrent("s", &items[150..], 8)
        .await
        .unwrap();
    assert!(db.close("s").await.unwrap());
    db.open("s").await.unwrap();
    let keys: Vec<String> = items.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(db.get_all("s", &keys).await.unwrap(), 300);
    assert_eq!(db.get_all("s", &["nope".to_string()]).await.unwrap(), 0);
}
