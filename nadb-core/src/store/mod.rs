//! The [`Store`]: one async key-value API over any [`StorageBackend`].
//!
//! The store validates every input, encodes values (threshold zstd), assigns versions and
//! timestamps from its [`Clock`], enforces TTL on every read, keeps the metadata index in step
//! with the backend and runs the expiry sweeper. Its parts, one module each:
//!
//! - `write`: `set`, `delete` and their batch forms — the write path from the API to
//!   the pipeline, and from the pipeline to [`StorageBackend::apply`];
//! - `policy` and `pipeline`: the pending buffer, flush triggers, group commit, retries and the
//!   dead-letter queue (`dlq`);
//! - `read`: `get`, `exists`, `get_many`, `ttl` — decode and TTL check;
//! - `conditional`: `set_if_absent`, `compare_and_swap`, `incr`, `touch`, `persist` —
//!   read-modify-write guarded by version checks;
//! - `listing`: `scan`, `len`, `clear`, tag queries;
//! - `sweeper`: removal of expired records;
//! - `transaction`: all-or-nothing groups of writes with conflict detection;
//! - `json`: typed values through serde.

mod cache;
mod conditional;
mod dlq;
mod json;
mod listing;
mod options;
mod overlay;
mod pipeline;
mod policy;
mod read;
mod sweeper;
mod transaction;
mod write;

use std::collections::HashSet;
use std::fmt;
use std::future::Future;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use tokio::task::JoinHandle;
use tracing::Instrument;

use cache::Lookup;

/// An operation memory could not answer (see [`Store::measured_now`]): the cache epoch to read
/// the backend with, and the call's sampled start time and span.
pub(crate) struct Missed {
    pub(crate) epoch: u64,
    started: Option<Instant>,
    span: Option<tracing::Span>,
}

pub use options::{Cas, KeyTtl, Page, SetOptions};
pub use pipeline::{DeadLetter, DlqSummary, PipelineStats};
pub use policy::{BufferedFlush, FlushPolicy, WriteConfig};
pub use transaction::{TRANSACTION_ATTEMPTS, Transaction};

use crate::backend::{BackendExt, BackendInfo, StorageBackend};
use crate::clock::{Clock, SystemClock};
use crate::codec::Compression;
use crate::error::{Error, Result};
use crate::index::{MemoryIndex, MetadataIndex};
use crate::key::{DEFAULT_MAX_KEY_LEN, validate_key};
use crate::registry::open_backend;
use crate::space::Space;
use crate::stats::{Histogram, Metrics, OpKind, Stats};

/// Default limit on a value's size: 64 MiB.
pub const DEFAULT_MAX_VALUE_SIZE: u64 = 64 << 20;
/// Default interval of the background expiry sweeper.
pub const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// Anything that can become the store's backend: a backend value, or an `Arc` of one.
pub trait IntoBackend {
    /// Converts into a shared backend.
    fn into_backend(self) -> Arc<dyn StorageBackend>;
}

impl<T: StorageBackend> IntoBackend for T {
    fn into_backend(self) -> Arc<dyn StorageBackend> {
        Arc::new(self)
    }
}

impl<T: StorageBackend> IntoBackend for Arc<T> {
    fn into_backend(self) -> Arc<dyn StorageBackend> {
        self
    }
}

impl IntoBackend for Arc<dyn StorageBackend> {
    fn into_backend(self) -> Arc<dyn StorageBackend> {
        self
    }
}

/// Configures and builds a [`Store`].
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use nadb_core::{MemoryBackend, MockClock, Space, Store};
/// use std::time::Duration;
/// let store = Store::builder(MemoryBackend::new())
///     .space(Space::new("app", "cache")?)
///     .clock(MockClock::default())
///     .max_key_len(256)
///     .sweep_interval(Some(Duration::from_millis(100)))
///     .build()
///     .await?;
/// assert_eq!(store.space().namespace(), "cache");
/// # Ok::<(), nadb_core::Error>(()) }).unwrap();
/// ```
#[must_use = "a builder does nothing until `build` is awaited"]
pub struct StoreBuilder {
    backend: Arc<dyn StorageBackend>,
    space: Space,
    clock: Arc<dyn Clock>,
    compression: Compression,
    max_key_len: usize,
    max_value_size: u64,
    sweep_interval: Option<Duration>,
    index: Option<Arc<dyn MetadataIndex>>,
    policy: FlushPolicy,
    write: WriteConfig,
    cache_bytes: Option<usize>,
    memory_first: bool,
}

impl fmt::Debug for StoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreBuilder")
            .field("backend", &self.backend.info().scheme)
            .field("space", &self.space)
            .field("compression", &self.compression)
            .field("max_key_len", &self.max_key_len)
            .field("max_value_size", &self.max_value_size)
            .field("sweep_interval", &self.sweep_interval)
            .field("policy", &self.policy)
            .field("write", &self.write)
            .field("cache_bytes", &self.cache_bytes)
            .field("memory_first", &self.memory_first)
            .finish_non_exhaustive()
    }
}

impl StoreBuilder {
    /// The space the built handle starts in (default `default/default`).
    pub fn space(mut self, space: Space) -> Self {
        self.space = space;
        self
    }

    /// The clock for timestamps and TTL (default: the system clock).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Compression settings (default: zstd level 3 from 1 KiB).
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// Longest accepted key in bytes (default 1 KiB).
    pub fn max_key_len(mut self, bytes: usize) -> Self {
        self.max_key_len = bytes;
        self
    }

    /// Largest accepted value in bytes (default 64 MiB; the backend's own limit also applies).
    pub fn max_value_size(mut self, bytes: u64) -> Self {
        self.max_value_size = bytes;
        self
    }

    /// How often the background sweeper removes expired records; `None` turns it off
    /// (expired records are still never returned). Default: every second.
    pub fn sweep_interval(mut self, interval: Option<Duration>) -> Self {
        self.sweep_interval = interval;
        self
    }

    /// Pairs the backend with this metadata index instead of its own (or the store's
    /// in-memory one).
    pub fn index(mut self, index: Arc<dyn MetadataIndex>) -> Self {
        self.index = Some(index);
        self
    }

    /// When writes are acknowledged and flushed (default [`FlushPolicy::Immediate`]).
    pub fn flush_policy(mut self, policy: impl Into<FlushPolicy>) -> Self {
        self.policy = policy.into();
        self
    }

    /// Chunk size, buffer limit, dead-letter capacity and retry settings.
    pub fn write_config(mut self, config: WriteConfig) -> Self {
        self.write = config;
        self
    }

    /// Keeps recently read records in an LRU cache of at most `bytes` (off by default).
    pub fn cache_bytes(mut self, bytes: usize) -> Self {
        self.cache_bytes = Some(bytes);
        self
    }

    /// Memory-first: loads every record of a space into memory the first time the space is
    /// used, and answers every key read from memory; writes reach the backend through the
    /// pipeline as usual, so only changed keys are flushed. For a single process whose data
    /// fits in memory: writes by other processes are not seen. Cannot be combined with
    /// [`cache_bytes`](StoreBuilder::cache_bytes).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use nadb_core::{BufferedFlush, MemoryBackend, Store};
    /// let store = Store::builder(MemoryBackend::new())
    ///     .memory_first(true)
    ///     .flush_policy(BufferedFlush::default())
    ///     .build()
    ///     .await?;
    /// store.set("k", "v").await?;
    /// assert_eq!(store.get("k").await?.as_deref(), Some(&b"v"[..]));
    /// # Ok::<(), nadb_core::Error>(()) }).unwrap();
    /// ```
    pub fn memory_first(mut self, on: bool) -> Self {
        self.memory_first = on;
        self
    }

    /// Validates the configuration and starts the store. Must run inside a tokio runtime.
    pub async fn build(self) -> Result<Store> {
        let cache = match (self.memory_first, self.cache_bytes) {
            (true, Some(_)) => {
                return Err(Error::config(
                    "memory_first already keeps every record in memory; drop cache_bytes",
                ));
            }
            (true, None) => cache::ReadCache::full(),
            (false, Some(0)) => return Err(Error::config("cache_bytes must be at least 1")),
            (false, Some(n)) => cache::ReadCache::lru(n),
            (false, None) => cache::ReadCache::Off,
        };
        let w = &self.write;
        if w.chunk_size == 0
            || w.max_pending_bytes == 0
            || w.dlq_capacity == 0
            || w.retry_attempts == 0
        {
            return Err(Error::config(
                "chunk_size, max_pending_bytes, dlq_capacity and retry_attempts must be at least 1",
            ));
        }
        if let FlushPolicy::Buffered(b) = self.policy
            && (b.max_ops == Some(0)
                || b.max_bytes == Some(0)
                || b.interval.is_some_and(|d| d.is_zero()))
        {
            return Err(Error::config("buffered flush thresholds must not be zero"));
        }
        if self.max_key_len == 0 {
            return Err(Error::config("max_key_len must be at least 1"));
        }
        if self.max_value_size == 0 {
            return Err(Error::config("max_value_size must be at least 1"));
        }
        if self.sweep_interval.is_some_and(|d| d.is_zero()) {
            return Err(Error::config("sweep_interval must not be zero"));
        }
        let levels = zstd::compression_level_range();
        if !levels.contains(&self.compression.level) {
            return Err(Error::config(format!(
                "zstd level {} is outside {}..={}",
                self.compression.level,
                levels.start(),
                levels.end()
            )));
        }
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| Error::config("a Store must be built inside a tokio runtime"))?;
        let info = self.backend.info().clone();
        let max_value_size = info
            .capabilities
            .max_value_size
            .map_or(self.max_value_size, |b| b.min(self.max_value_size));
        let (index, derived_index) = match (self.index, self.backend.native_index()) {
            (Some(i), _) => (i, true),
            (None, Some(i)) => (i, false),
            (None, None) => (Arc::new(MemoryIndex::new()) as Arc<dyn MetadataIndex>, true),
        };
        // Versions must differ between every engine writing to the same storage (two stores
        // on one backend, or several processes), or a check could pass on another engine's
        // write: each engine counts from a random start in [1, 2^63), so two engines' ranges
        // meet only by a chance of about (writes / 2^62) and no count wraps.
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let random =
            std::collections::hash_map::RandomState::new().hash_one((nanos, std::process::id()));
        let seed = (random >> 1).max(1);
        let engine = Arc::new(Engine {
            backend: self.backend,
            info,
            index,
            derived_index,
            indexed_spaces: Mutex::new(HashSet::new()),
            index_lock: tokio::sync::Mutex::new(()),
            clock: self.clock,
            compression: self.compression,
            max_key_len: self.max_key_len,
            max_value_size,
            metrics: Metrics::default(),
            versions: AtomicU64::new(seed),
            key_locks: (0..KEY_LOCKS)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
            key_lock_hasher: foldhash::fast::FixedState::default(),
            closed: AtomicBool::new(false),
            sweeper: Mutex::new(None),
            flusher: Mutex::new(None),
            pipeline: pipeline::Pipeline::new(self.policy, self.write),
            cache,
        });
        if let Some(every) = self.sweep_interval {
            let task = runtime.spawn(sweeper::run(Arc::downgrade(&engine), every));
            *engine.sweeper.lock() = Some(task);
        }
        let flusher = runtime.spawn(pipeline::run(engine.clone()));
        *engine.flusher.lock() = Some(flusher);
        let store = Store {
            open: Arc::new(OpenGuard(engine.clone())),
            engine,
            space: self.space,
        };
        store.engine.ensure_indexed(&store.space).await?;
        Ok(store)
    }
}

const KEY_LOCKS: usize = 64;

/// State shared by every [`Store`] handle of one opened backend.
pub(crate) struct Engine {
    pub(crate) backend: Arc<dyn StorageBackend>,
    pub(crate) info: BackendInfo,
    pub(crate) index: Arc<dyn MetadataIndex>,
    /// Whether the store (not the backend) keeps `index` in step with writes.
    derived_index: bool,
    indexed_spaces: Mutex<HashSet<Space>>,
    /// Serialises apply + index update so a derived index sees batches in backend order.
    index_lock: tokio::sync::Mutex<()>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) compression: Compression,
    pub(crate) max_key_len: usize,
    pub(crate) max_value_size: u64,
    pub(crate) metrics: Metrics,
    versions: AtomicU64,
    /// In-process serialisation of read-modify-write per key stripe, so local writers do
    /// not spin on version conflicts; cross-process races are still caught by checks.
    key_locks: Box<[tokio::sync::Mutex<()>]>,
    key_lock_hasher: foldhash::fast::FixedState,
    closed: AtomicBool,
    sweeper: Mutex<Option<JoinHandle<()>>>,
    flusher: Mutex<Option<JoinHandle<()>>>,
    pub(crate) pipeline: pipeline::Pipeline,
    pub(crate) cache: cache::ReadCache,
}

impl Engine {
    pub(crate) fn next_version(&self) -> u64 {
        self.versions.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn key_lock(&self, key: &str) -> &tokio::sync::Mutex<()> {
        let h = self.key_lock_hasher.hash_one(key) as usize;
        &self.key_locks[h % KEY_LOCKS]
    }

    /// The first time a space is used: loads it into a derived index from a backend scan,
    /// and into memory under memory-first.
    pub(crate) async fn ensure_indexed(&self, space: &Space) -> Result<()> {
        if self.cache.is_full() && !self.cache.holds(space) {
            let _guard = self.index_lock.lock().await;
            if !self.cache.holds(space) {
                let keys: Vec<String> = self
                    .backend
                    .scan_all(space, "")
                    .await?
                    .into_iter()
                    .map(|(k, _)| k)
                    .collect();
                let mut records = Vec::with_capacity(keys.len());
                for chunk in keys.chunks(1000) {
                    let got = self.backend.get_many(space, chunk).await?;
                    records.extend(
                        chunk
                            .iter()
                            .zip(got)
                            .filter_map(|(k, r)| r.map(|r| (k.clone(), r))),
                    );
                }
                self.cache.load(space, records);
            }
        }
        if !self.derived_index || self.indexed_spaces.lock().contains(space) {
            return Ok(());
        }
        let _guard = self.index_lock.lock().await;
        if self.indexed_spaces.lock().contains(space) {
            return Ok(());
        }
        let entries = self.backend.scan_all(space, "").await?;
        self.index.rebuild(space, entries).await?;
        self.indexed_spaces.lock().insert(space.clone());
        Ok(())
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Some(task) = self.sweeper.get_mut().take() {
            task.abort();
        }
    }
}

/// A key-value store in one [`Space`] of a backend. Cheap to clone; clones and
/// [`Store::with_space`] handles share the backend, index, metrics and sweeper.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use nadb_core::{MemoryBackend, SetOptions, Store, TagMode};
/// use std::time::Duration;
/// let store = Store::builder(MemoryBackend::new()).build().await?;
/// store.set_with("user:1", "alice", &SetOptions::new().tags(["user"]).ttl(Duration::from_secs(60))).await?;
/// assert!(store.exists("user:1").await?);
/// let page = store.query_by_tags(&["user"], TagMode::All, None, 10).await?;
/// assert_eq!(page.items, ["user:1"]);
/// store.close().await?;
/// # Ok::<(), nadb_core::Error>(()) }).unwrap();
/// ```
#[derive(Clone)]
pub struct Store {
    pub(crate) engine: Arc<Engine>,
    pub(crate) space: Space,
    open: Arc<OpenGuard>,
}

/// Shared by every handle of a store; when the last handle goes without `close()`, the
/// flusher is told to write out what is pending.
struct OpenGuard(Arc<Engine>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        if self.0.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let pending = self.0.pipeline.stats().pending_ops;
        tracing::warn!(
            pending_ops = pending,
            "store dropped without close(): flushing pending writes in the background"
        );
        let dead = self.0.pipeline.dlq_summary();
        if dead.entries > 0 {
            // Readable until now, these are gone for good: nothing retries them after the drop.
            tracing::error!(
                dead_lettered_ops = dead.ops,
                dead_lettered_bytes = dead.bytes,
                "store dropped without close() holding dead-lettered writes; they are lost"
            );
        }
        if let Some(task) = self.0.sweeper.lock().take() {
            task.abort();
        }
        self.0.pipeline.begin_shutdown();
    }
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.engine.info.scheme)
            .field("space", &self.space)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Starts configuring a store over `backend`.
    pub fn builder(backend: impl IntoBackend) -> StoreBuilder {
        StoreBuilder {
            backend: backend.into_backend(),
            space: Space::default_space(),
            clock: Arc::new(SystemClock),
            compression: Compression::default(),
            max_key_len: DEFAULT_MAX_KEY_LEN,
            max_value_size: DEFAULT_MAX_VALUE_SIZE,
            sweep_interval: Some(DEFAULT_SWEEP_INTERVAL),
            index: None,
            policy: FlushPolicy::default(),
            write: WriteConfig::default(),
            cache_bytes: None,
            memory_first: false,
        }
    }

    /// Opens the backend a URL names with default settings, in space `default/default`.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = nadb_core::Store::open("memory://").await?;
    /// assert_eq!(store.backend_info().scheme, "memory");
    /// # Ok::<(), nadb_core::Error>(()) }).unwrap();
    /// ```
    pub async fn open(url: &str) -> Result<Store> {
        Store::builder(open_backend(url).await?).build().await
    }

    /// The space this handle reads and writes.
    pub fn space(&self) -> &Space {
        &self.space
    }

    /// A handle on another space of the same backend.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let a = nadb_core::Store::open("memory://").await?;
    /// let b = a.with_space(nadb_core::Space::new("other", "ns")?).await?;
    /// a.set("k", "in a").await?;
    /// assert_eq!(b.get("k").await?, None);
    /// # Ok::<(), nadb_core::Error>(()) }).unwrap();
    /// ```
    pub async fn with_space(&self, space: Space) -> Result<Store> {
        self.check_open()?;
        self.engine.ensure_indexed(&space).await?;
        Ok(Store {
            engine: self.engine.clone(),
            space,
            open: self.open.clone(),
        })
    }

    /// The backend's scheme and capabilities.
    pub fn backend_info(&self) -> &BackendInfo {
        &self.engine.info
    }

    /// The backend this store runs on.
    pub fn backend(&self) -> &Arc<dyn StorageBackend> {
        &self.engine.backend
    }

    /// A snapshot of the metrics, with live key counts of this handle's space as the backend
    /// has them (pending writes are counted under `pipeline`, not in `live_keys`).
    pub async fn stats(&self) -> Result<Stats> {
        self.check_open()?;
        let mut s = self.engine.metrics.snapshot();
        s.pipeline = self.engine.pipeline.stats();
        let count = self
            .engine
            .index
            .count(&self.space, self.engine.clock.now())
            .await?;
        s.live_keys = count.keys;
        s.live_stored_bytes = count.stored_bytes;
        Ok(s)
    }

    /// Returns once everything acknowledged before the call is on stable storage. Fails with
    /// [`Error::Unpersisted`] (saying how much) while the dead-letter queue holds writes.
    pub async fn flush(&self) -> Result<()> {
        self.measured(OpKind::Flush, self.engine.flush_all()).await
    }

    /// Applies this space's pending writes before a read that answers from the backend or
    /// the index (listings, counts, tag queries).
    pub(crate) async fn drain_space(&self) -> Result<()> {
        if self.engine.pipeline.has_pending(&self.space) {
            self.engine.drain().await?;
        }
        Ok(())
    }

    /// Asks the backend to reclaim space held by dead and expired records.
    pub async fn compact(&self) -> Result<()> {
        self.measured(OpKind::Compact, async {
            self.sweep_expired().await?;
            self.engine.flush_all().await?;
            self.engine.backend.compact().await
        })
        .await
    }

    /// Flushes, stops the background tasks and closes the backend. Every handle of the store
    /// fails with [`Error::Closed`] afterwards. Closing twice is not an error.
    ///
    /// If writes are dead-lettered the store stays open and this returns
    /// [`Error::Unpersisted`]: persist them with [`Store::retry_dlq`] or drop them with
    /// [`Store::clear_dlq`], then close again. Writes that fail after that flush (in a round
    /// already running) are not kept: the store closes and this returns `Unpersisted` for them.
    pub async fn close(&self) -> Result<()> {
        if self.engine.closed.load(Ordering::Acquire) {
            return Ok(());
        }
        self.engine.flush_all().await?;
        if self.engine.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        if let Some(task) = self.engine.sweeper.lock().take() {
            task.abort();
        }
        self.engine.pipeline.begin_shutdown();
        let flusher = self.engine.flusher.lock().take();
        if let Some(task) = flusher {
            let _ = task.await;
        }
        self.engine.backend.close().await?;
        // Writes a round still held when the flush above returned may have failed since.
        self.engine.pipeline.check_persisted()
    }

    pub(crate) fn check_open(&self) -> Result<()> {
        if self.engine.closed.load(Ordering::Acquire) {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    pub(crate) fn check_key(&self, key: &str) -> Result<()> {
        validate_key(key, self.engine.max_key_len)
    }

    /// Runs `f` as operation `kind`, counted and traced as [`Store::measured`] does, when
    /// it completes without waiting (memory answers a read, a write is buffered): `Ok` with
    /// the result. `Err` (nothing counted yet) when the operation must wait (for the
    /// backend, for room, for an acknowledgement) or the store is closed: pass it to
    /// [`Store::measured_after`] with the waiting part.
    pub(crate) fn measured_now<T>(
        &self,
        kind: OpKind,
        f: impl FnOnce() -> Result<Lookup<T>>,
    ) -> std::result::Result<Result<T>, Missed> {
        let started = Histogram::sample();
        if self.check_open().is_err() {
            return Err(Missed {
                epoch: 0,
                started,
                span: None,
            });
        }
        let span = self.op_span(kind);
        let result = match span.in_scope(f) {
            Ok(Lookup::Miss(epoch)) => {
                return Err(Missed {
                    epoch,
                    started,
                    span: Some(span),
                });
            }
            Ok(Lookup::Hit(t)) => Ok(t),
            Err(e) => Err(e),
        };
        let h = self.engine.metrics.op(kind);
        h.counted();
        h.finish(started, result.is_ok());
        Ok(result)
    }

    /// Runs `fut` as operation `kind` in a `nadb.op` span: refuses after close, records
    /// latency and errors.
    pub(crate) fn measured<T>(
        &self,
        kind: OpKind,
        fut: impl Future<Output = Result<T>>,
    ) -> impl Future<Output = Result<T>> {
        let started = Histogram::sample();
        self.measured_since(kind, started, None, fut)
    }

    /// Completes, as [`Store::measured`] does, an operation [`Store::measured_now`] could not
    /// answer from memory: in the same span, timed from the same start.
    pub(crate) fn measured_after<T>(
        &self,
        kind: OpKind,
        missed: Missed,
        fut: impl Future<Output = Result<T>>,
    ) -> impl Future<Output = Result<T>> {
        self.measured_since(kind, missed.started, missed.span, fut)
    }

    async fn measured_since<T>(
        &self,
        kind: OpKind,
        started: Option<Instant>,
        span: Option<tracing::Span>,
        fut: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        self.check_open()?;
        let h = self.engine.metrics.op(kind);
        h.counted();
        let span = span.unwrap_or_else(|| self.op_span(kind));
        let result = fut.instrument(span).await;
        h.finish(started, result.is_ok());
        result
    }

    /// The span of one operation. It names the operation and space only: keys and values stay
    /// out of traces.
    fn op_span(&self, kind: OpKind) -> tracing::Span {
        tracing::debug_span!("nadb.op", op = kind.name(), space = %self.space)
    }
}
