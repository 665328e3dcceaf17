//! The conformance suite on a backend with nothing extra: no native index, no ordered scan,
//! no atomic batches. It runs the store's emulation paths (its own in-memory index, sorting
//! unordered scans) and shows capability-gated cases reported as skipped.

use std::sync::Arc;

use nadb_core::{
    BackendInfo, Batch, Capabilities, MemoryBackend, Meta, Record, Result, Space, StorageBackend,
    async_trait,
};

/// The memory backend with its extras hidden; `scan` returns keys in reverse order to prove
/// the store does not rely on order without `ordered_scan`.
#[derive(Debug)]
struct Plain {
    inner: MemoryBackend,
    info: BackendInfo,
}

#[async_trait]
impl StorageBackend for Plain {
    fn info(&self) -> &BackendInfo {
        &self.info
    }
    async fn get(&self, space: &Space, key: &str) -> Result<Option<Record>> {
        self.inner.get(space, key).await
    }
    async fn apply(&self, batch: &Batch) -> Result<()> {
        self.inner.apply(batch).await
    }
    async fn scan(
        &self,
        space: &Space,
        prefix: &str,
        _after: Option<&str>,
        _limit: usize,
    ) -> Result<Vec<(String, Meta)>> {
        let mut all = self.inner.scan(space, prefix, None, usize::MAX).await?;
        all.reverse();
        Ok(all)
    }
    async fn spaces(&self) -> Result<Vec<Space>> {
        self.inner.spaces().await
    }
    async fn sync(&self) -> Result<()> {
        self.inner.sync().await
    }
    async fn close(&self) -> Result<()> {
        self.inner.close().await
    }
}

fn plain() -> Arc<Plain> {
    Arc::new(Plain {
        inner: MemoryBackend::new(),
        info: BackendInfo {
            scheme: "plain".into(),
            capabilities: Capabilities::none(),
        },
    })
}

nadb_testkit::conformance!(plain, || async { Ok(plain()) });
