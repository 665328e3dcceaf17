//! Latency is timed on one call in `LATENCY_SAMPLE` per thread: each call must take exactly
//! one sample tick, whether memory or the backend answers it. (A thread runs nothing else
//! here, so the count is exact; in a shared runtime other stores' calls share the tick.)

use nadb_core::stats::LATENCY_SAMPLE;
use nadb_core::{FlushPolicy, MemoryBackend, Result, Store};

/// Reads `k` `4 * LATENCY_SAMPLE` times and returns how many of the reads were timed.
async fn timed_reads(store: &Store) -> Result<u64> {
    let sampled = |st: nadb_core::Stats| st.ops.get("get").map_or(0, |s| s.sampled);
    let before = sampled(store.stats().await?);
    for _ in 0..4 * LATENCY_SAMPLE {
        assert!(store.get("k").await?.is_some());
    }
    Ok(sampled(store.stats().await?) - before)
}

// `tokio::test` runs on a current-thread runtime: the flusher shares this thread and no
// other test's calls do.
#[tokio::test]
async fn reads_are_sampled_once_from_memory_and_from_the_backend() -> Result<()> {
    for policy in [FlushPolicy::Manual, FlushPolicy::Immediate] {
        // Manual: `k` stays pending, reads come from memory. Immediate with no cache: every
        // read goes to the backend.
        let store = Store::builder(MemoryBackend::new())
            .flush_policy(policy)
            .sweep_interval(None)
            .build()
            .await?;
        store.set("k", "v").await?;
        assert_eq!(timed_reads(&store).await?, 4, "under {policy:?}");
        store.close().await?;
    }
    Ok(())
}
