//! [`BackendFactory`]: how the suite opens (and reopens) the backend under test.

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use nadb_core::{IntoBackend, Result, StorageBackend};

/// Opens the backend under test. Calling [`open`](BackendFactory::open) again after the
/// previous instance was closed must reopen *the same storage* (same directory, same
/// database file, same server), so persistence cases can check what survived.
///
/// Any `Fn() -> impl Future<Output = Result<B>>` closure is a factory, for every `B` the store
/// accepts as a backend:
///
/// ```
/// use nadb_testkit::BackendFactory;
/// let factory = || async { Ok(nadb_core::MemoryBackend::new()) };
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let backend = factory.open().await?;
/// assert_eq!(backend.info().scheme, "memory");
/// # Ok::<(), nadb_core::Error>(()) }).unwrap();
/// ```
#[async_trait]
pub trait BackendFactory: Send + Sync + 'static {
    /// Opens (or reopens) the backend.
    async fn open(&self) -> Result<Arc<dyn StorageBackend>>;
}

#[async_trait]
impl<F, Fut, B> BackendFactory for F
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<B>> + Send,
    B: IntoBackend,
{
    async fn open(&self) -> Result<Arc<dyn StorageBackend>> {
        Ok(self().await?.into_backend())
    }
}
