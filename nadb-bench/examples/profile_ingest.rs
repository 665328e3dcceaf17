use bytes::Bytes;
use nadb::{BufferedFlush, MemoryBackend, Store};
use std::time::Instant;
#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> nadb::Result<()> {
    for _ in 0..3 {
        let store = Store::builder(MemoryBackend::new())
            .flush_policy(BufferedFlush::default())
            .sweep_interval(None)
            .build()
            .await?;
        let keys: Vec<String> = (0..1_000_000).map(|i| format!("key-{i:07}")).collect();
        let v = Bytes::from(vec![b'v'; 100]);
        let t = Instant::now();
        for k in &keys {
            store.set(k, v.clone()).await?;
        }
        let set = t.elapsed();
        store.flush().await?;
        println!(
            "set {:?} total {:?} -> {:.0} ops/s",
            set,
            t.elapsed(),
            1e6 / t.elapsed().as_secs_f64()
        );
        store.close().await?;
    }
    Ok(())
}
