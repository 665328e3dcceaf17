//! What a conformance case is, and the context it runs in.

use std::fmt;
use std::sync::Arc;

use futures::future::BoxFuture;
use nadb_core::{
    BackendExt, Batch, BufferedFlush, Capabilities, FlushPolicy, MockClock, Result, Space,
    StorageBackend, Store, StoreBuilder,
};
use parking_lot::Mutex;
use rand::Rng;

use crate::factory::BackendFactory;

/// A capability a case needs; without it the case is reported *skipped*.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// [`Capabilities::persistent`].
    Persistent,
    /// [`Capabilities::atomic_batch`].
    AtomicBatch,
    /// [`Capabilities::multi_process`].
    MultiProcess,
}

impl Need {
    /// Whether `caps` provide this.
    pub fn met_by(self, caps: &Capabilities) -> bool {
        match self {
            Need::Persistent => caps.persistent,
            Need::AtomicBatch => caps.atomic_batch,
            Need::MultiProcess => caps.multi_process,
        }
    }
}

impl fmt::Display for Need {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Need::Persistent => "persistent",
            Need::AtomicBatch => "atomic_batch",
            Need::MultiProcess => "multi_process",
        })
    }
}

/// The body of a case.
pub type CaseFn = for<'a> fn(&'a Ctx) -> BoxFuture<'a, Result<()>>;

/// One named conformance case.
#[derive(Clone, Copy)]
pub struct Case {
    /// The case's name, unique in the suite.
    pub name: &'static str,
    /// Capabilities it needs.
    pub needs: &'static [Need],
    /// Its body: returns an error or panics (assertion) on failure.
    pub run: CaseFn,
}

impl fmt::Debug for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Case")
            .field("name", &self.name)
            .field("needs", &self.needs)
            .finish()
    }
}

impl Case {
    /// The first capability `caps` lack, if any.
    pub fn missing(&self, caps: &Capabilities) -> Option<Need> {
        self.needs.iter().copied().find(|n| !n.met_by(caps))
    }
}

/// The context a case runs in: the backend under test, a fresh random space, and a
/// [`MockClock`] for every store the case builds.
pub struct Ctx {
    factory: Arc<dyn BackendFactory>,
    backend: Mutex<Arc<dyn StorageBackend>>,
    space: Space,
    clock: MockClock,
    mode: StoreMode,
    spaces: Mutex<Vec<Space>>,
}

impl fmt::Debug for Ctx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ctx")
            .field("space", &self.space)
            .finish_non_exhaustive()
    }
}

/// Makes the metadata index a store is paired with (instead of the backend's own).
pub type IndexFactory = fn() -> Arc<dyn nadb_core::MetadataIndex>;

/// How the stores of a case are configured: flush policy, read cache, paired index.
#[derive(Clone, Copy, Debug)]
pub struct StoreMode {
    /// The flush policy.
    pub policy: FlushPolicy,
    /// Memory-first reads.
    pub memory_first: bool,
    /// An LRU read cache of this many bytes.
    pub cache_bytes: Option<usize>,
    /// A metadata index to pair the backend with.
    pub index: Option<IndexFactory>,
}

impl StoreMode {
    /// A mode with `policy` and no cache.
    pub const fn with_policy(policy: FlushPolicy) -> StoreMode {
        StoreMode {
            policy,
            memory_first: false,
            cache_bytes: None,
            index: None,
        }
    }
}

impl Default for StoreMode {
    fn default() -> Self {
        StoreMode::with_policy(FlushPolicy::Immediate)
    }
}

/// The store modes the suite runs every case under, by name: each flush policy, memory-first
/// and an LRU read cache.
pub fn policies() -> Vec<(&'static str, StoreMode)> {
    use std::time::Duration;
    vec![
        ("immediate", StoreMode::with_policy(FlushPolicy::Immediate)),
        (
            "buffered_count",
            StoreMode::with_policy(BufferedFlush::none().max_ops(64).into()),
        ),
        (
            "buffered_size",
            StoreMode::with_policy(BufferedFlush::none().max_bytes(16 << 10).into()),
        ),
        (
            "buffered_time",
            StoreMode::with_policy(
                BufferedFlush::none()
                    .interval(Duration::from_millis(5))
                    .into(),
            ),
        ),
        ("manual", StoreMode::with_policy(FlushPolicy::Manual)),
        (
            "memory_first",
            StoreMode {
                memory_first: true,
                ..StoreMode::with_policy(BufferedFlush::none().max_ops(64).into())
            },
        ),
        (
            "lru_cache",
            StoreMode {
                cache_bytes: Some(64 << 10),
                ..StoreMode::with_policy(FlushPolicy::Immediate)
            },
        ),
    ]
}

/// A space name no other run will pick.
pub fn random_space() -> Space {
    let id: u64 = rand::rng().random();
    // Two valid identifiers: cannot fail.
    Space::new("nadbtest", &format!("case-{id:016x}")).unwrap_or_default()
}

impl Ctx {
    /// Opens the backend through `factory` and picks a fresh random space; stores use the
    /// default flush policy.
    pub async fn new(factory: Arc<dyn BackendFactory>) -> Result<Ctx> {
        Ctx::with_mode(factory, StoreMode::default()).await
    }

    /// Like [`Ctx::new`], with every store of the context in `mode`.
    pub async fn with_mode(factory: Arc<dyn BackendFactory>, mode: StoreMode) -> Result<Ctx> {
        let backend = factory.open().await?;
        let space = random_space();
        Ok(Ctx {
            factory,
            backend: Mutex::new(backend),
            spaces: Mutex::new(vec![space.clone()]),
            space,
            clock: MockClock::default(),
            mode,
        })
    }

    /// The configuration of this context's stores.
    pub fn mode(&self) -> StoreMode {
        self.mode
    }

    /// The backend under test (the current instance, after any reopen).
    pub fn backend(&self) -> Arc<dyn StorageBackend> {
        self.backend.lock().clone()
    }

    /// The case's space.
    pub fn space(&self) -> &Space {
        &self.space
    }

    /// The mock clock every store of this context uses.
    pub fn clock(&self) -> &MockClock {
        &self.clock
    }

    /// Another fresh space, cleaned up with the case's own.
    pub fn other_space(&self) -> Space {
        let s = random_space();
        self.spaces.lock().push(s.clone());
        s
    }

    /// A store builder on the backend, in the case's space, on the mock clock, in the
    /// context's store mode, without a background sweeper (cases sweep explicitly or turn
    /// it on).
    pub fn builder(&self) -> StoreBuilder {
        let b = Store::builder(self.backend())
            .space(self.space.clone())
            .clock(self.clock.clone())
            .flush_policy(self.mode.policy)
            .memory_first(self.mode.memory_first)
            .sweep_interval(None);
        let b = match self.mode.cache_bytes {
            Some(n) => b.cache_bytes(n),
            None => b,
        };
        match self.mode.index {
            Some(make) => b.index(make()),
            None => b,
        }
    }

    /// A store with [`Ctx::builder`]'s settings.
    pub async fn store(&self) -> Result<Store> {
        self.builder().build().await
    }

    /// Closes the backend and opens the same storage again through the factory.
    pub async fn reopen(&self) -> Result<()> {
        let old = self.backend();
        old.sync().await?;
        old.close().await?;
        drop(old);
        let fresh = self.factory.open().await?;
        *self.backend.lock() = fresh;
        Ok(())
    }

    /// Removes every record the case wrote, reopening the backend first if the case
    /// closed it.
    pub async fn cleanup(&self) -> Result<()> {
        let mut backend = self.backend();
        if backend.sync().await.is_err() {
            backend = self.factory.open().await?;
            *self.backend.lock() = backend.clone();
        }
        let spaces = self.spaces.lock().clone();
        for space in spaces {
            let keys = backend.scan_all(&space, "").await?;
            for chunk in keys.chunks(1000) {
                let mut b = Batch::new(space.clone());
                for (k, _) in chunk {
                    b.delete(k.clone());
                }
                backend.apply(&b).await?;
            }
        }
        backend.sync().await
    }
}
