//! [`FaultyBackend`]: wraps any backend and fails chosen operations on purpose.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use nadb_core::{
    BackendInfo, Batch, Error, IntoBackend, Meta, MetadataIndex, Record, Result, Space,
    StorageBackend,
};
use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Which backend calls a fault applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultOp {
    /// `get`, `get_many`, `get_meta_many`.
    Read,
    /// `apply`.
    Apply,
    /// `scan`, `spaces`.
    Scan,
    /// `sync`.
    Sync,
    /// Every call above.
    Any,
}

/// The kind of error injected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// [`Error::is_temporary`] is true: a retry may succeed.
    Temporary,
    /// A retry will not help until the backend is healed.
    Permanent,
    /// The call reaches the wrapped backend and takes effect, then a temporary error is
    /// reported: a reply lost on its way back.
    LostReply,
    /// The call takes effect, its reply is lost, and the backend's client sends it again by
    /// itself (as the Redis Cluster client does after a dropped connection): the caller gets
    /// the second call's answer. Only an `apply` can tell; other calls just run.
    Resent,
}

#[derive(Clone, Copy, Debug)]
enum When {
    Next(u64),
    /// Lets the first count of calls through, then fails the second count.
    After(u64, u64),
    Rate(f64),
    Always,
}

#[derive(Clone, Copy, Debug)]
struct Rule {
    op: FaultOp,
    fault: Fault,
    when: When,
}

/// A backend that fails chosen calls before they reach the wrapped backend, so a failed
/// `apply` applies nothing — or, for [`Fault::LostReply`], after it; [`Fault::Resent`] runs an
/// `apply` twice. Index reads are passed through untouched. It can also slow
/// `sync` down ([`set_sync_delay`](FaultyBackend::set_sync_delay)) and records the size of
/// every applied batch ([`applied_batches`](FaultyBackend::applied_batches)).
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use nadb_core::{BackendExt, MemoryBackend, Space, StorageBackend};
/// use nadb_testkit::{Fault, FaultOp, FaultyBackend};
/// let b = FaultyBackend::new(MemoryBackend::new(), 7);
/// b.fail_next(FaultOp::Read, 1, Fault::Temporary);
/// let err = b.get(&Space::default(), "k").await.unwrap_err();
/// assert!(err.is_temporary());
/// assert!(b.get(&Space::default(), "k").await?.is_none());
/// assert_eq!(b.injected(), 1);
/// # Ok::<(), nadb_core::Error>(()) }).unwrap();
/// ```
pub struct FaultyBackend {
    inner: Arc<dyn StorageBackend>,
    info: BackendInfo,
    rules: Mutex<Vec<Rule>>,
    rng: Mutex<StdRng>,
    injected: AtomicU64,
    sync_delay: Mutex<Duration>,
    apply_delay: Mutex<Duration>,
    read_delay: Mutex<Duration>,
    batches: Mutex<Vec<usize>>,
}

impl fmt::Debug for FaultyBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultyBackend")
            .field("inner", &self.inner)
            .field("injected", &self.injected.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl FaultyBackend {
    /// Wraps `inner`; `seed` makes rate-based faults reproducible.
    pub fn new(inner: impl IntoBackend, seed: u64) -> FaultyBackend {
        let inner = inner.into_backend();
        let mut info = inner.info().clone();
        info.scheme = format!("faulty+{}", info.scheme);
        FaultyBackend {
            inner,
            info,
            rules: Mutex::new(Vec::new()),
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            injected: AtomicU64::new(0),
            sync_delay: Mutex::new(Duration::ZERO),
            apply_delay: Mutex::new(Duration::ZERO),
            read_delay: Mutex::new(Duration::ZERO),
            batches: Mutex::new(Vec::new()),
        }
    }

    /// Makes every `sync` take `d` (busy-waiting on a blocking thread, so even sub-millisecond
    /// delays are exact), standing in for a disk's flush.
    pub fn set_sync_delay(&self, d: Duration) {
        *self.sync_delay.lock() = d;
    }

    /// Makes every `apply` wait `d` before it applies anything (a timer, so a caller that
    /// gives up during the wait cancels the apply): a slow backend to cancel writers against.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use std::time::Duration;
    /// use nadb_core::{BackendExt, MemoryBackend, Record, Meta, Space, StorageBackend, Timestamp};
    /// use nadb_testkit::FaultyBackend;
    /// let b = FaultyBackend::new(MemoryBackend::new(), 0);
    /// b.set_apply_delay(Duration::from_secs(5));
    /// let r = Record::new(bytes::Bytes::new(), Meta::new(Timestamp::EPOCH, 1));
    /// let space = Space::default();
    /// let put = b.put(&space, "k", r);
    /// assert!(tokio::time::timeout(Duration::from_millis(10), put).await.is_err());
    /// assert!(b.get(&Space::default(), "k").await?.is_none());
    /// # Ok::<(), nadb_core::Error>(()) }).unwrap();
    /// ```
    pub fn set_apply_delay(&self, d: Duration) {
        *self.apply_delay.lock() = d;
    }

    /// Makes every `get`, `get_many` and `get_meta_many` wait `d` before it reads: a window in
    /// which other writers can act between a caller's read and its write.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use std::time::{Duration, Instant};
    /// use nadb_core::{MemoryBackend, Space, StorageBackend};
    /// use nadb_testkit::FaultyBackend;
    /// let b = FaultyBackend::new(MemoryBackend::new(), 0);
    /// b.set_read_delay(Duration::from_millis(20));
    /// let started = Instant::now();
    /// assert!(b.get(&Space::default(), "k").await?.is_none());
    /// assert!(started.elapsed() >= Duration::from_millis(20));
    /// # Ok::<(), nadb_core::Error>(()) }).unwrap();
    /// ```
    pub fn set_read_delay(&self, d: Duration) {
        *self.read_delay.lock() = d;
    }

    /// Waits out the read delay, then reads through the fault rules.
    async fn read<T>(&self, read: impl Future<Output = Result<T>>) -> Result<T> {
        let delay = *self.read_delay.lock();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        self.guarded(FaultOp::Read, read).await
    }

    /// The op count of every batch applied so far, in order.
    pub fn applied_batches(&self) -> Vec<usize> {
        self.batches.lock().clone()
    }

    /// Fails the next `n` calls of `op`.
    pub fn fail_next(&self, op: FaultOp, n: u64, fault: Fault) {
        self.rules.lock().push(Rule {
            op,
            fault,
            when: When::Next(n),
        });
    }

    /// Lets the next `skip` calls of `op` through, then fails the `n` after them: a fault in
    /// the middle of a run of calls, such as the second chunk of a flush.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use nadb_core::{BackendExt, MemoryBackend, Meta, Record, Space, Timestamp};
    /// use nadb_testkit::{Fault, FaultOp, FaultyBackend};
    /// let b = FaultyBackend::new(MemoryBackend::new(), 0);
    /// b.fail_after(FaultOp::Apply, 1, 1, Fault::Permanent);
    /// let r = || Record::new(bytes::Bytes::new(), Meta::new(Timestamp::EPOCH, 1));
    /// let space = Space::default();
    /// assert!(b.put(&space, "a", r()).await.is_ok());
    /// assert!(b.put(&space, "b", r()).await.is_err());
    /// assert!(b.put(&space, "c", r()).await.is_ok());
    /// # Ok::<(), nadb_core::Error>(()) }).unwrap();
    /// ```
    pub fn fail_after(&self, op: FaultOp, skip: u64, n: u64, fault: Fault) {
        self.rules.lock().push(Rule {
            op,
            fault,
            when: When::After(skip, n),
        });
    }

    /// Fails each call of `op` with probability `p` (0.0..=1.0).
    pub fn fail_rate(&self, op: FaultOp, p: f64, fault: Fault) {
        self.rules.lock().push(Rule {
            op,
            fault,
            when: When::Rate(p.clamp(0.0, 1.0)),
        });
    }

    /// Fails every call of `op` until [`heal`](FaultyBackend::heal).
    pub fn fail_always(&self, op: FaultOp, fault: Fault) {
        self.rules.lock().push(Rule {
            op,
            fault,
            when: When::Always,
        });
    }

    /// Removes every fault rule.
    pub fn heal(&self) {
        self.rules.lock().clear();
    }

    /// How many faults were injected so far.
    pub fn injected(&self) -> u64 {
        self.injected.load(Ordering::Relaxed)
    }

    /// The wrapped backend.
    pub fn inner(&self) -> &Arc<dyn StorageBackend> {
        &self.inner
    }

    /// Runs `call` unless a fault fires first; after a [`Fault::LostReply`] it runs and
    /// its answer is replaced by an error; a [`Fault::Resent`] just runs it.
    async fn guarded<T>(
        &self,
        op: FaultOp,
        call: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        match self.maybe_fail(op) {
            Err(e) => Err(e),
            Ok(None | Some((Fault::Resent, _))) => call.await,
            Ok(Some((_, lost))) => {
                call.await?;
                Err(lost)
            }
        }
    }

    /// The error of a fault that fires for `op`: `Err` before the call, `Ok(Some(..))` for
    /// a fault that lets the call run (a lost reply, a resent call).
    fn maybe_fail(&self, op: FaultOp) -> Result<Option<(Fault, Error)>> {
        let mut rules = self.rules.lock();
        let mut hit = None;
        for rule in rules.iter_mut() {
            if rule.op != FaultOp::Any && rule.op != op {
                continue;
            }
            let fire = match &mut rule.when {
                When::Next(0) => false,
                When::Next(n) => {
                    *n -= 1;
                    true
                }
                When::After(0, 0) => false,
                When::After(0, n) => {
                    *n -= 1;
                    true
                }
                When::After(skip, _) => {
                    *skip -= 1;
                    false
                }
                When::Rate(p) => self.rng.lock().random_bool(*p),
                When::Always => true,
            };
            if fire {
                hit = Some(rule.fault);
                break;
            }
        }
        rules.retain(|r| !matches!(r.when, When::Next(0) | When::After(0, 0)));
        let Some(fault) = hit else {
            return Ok(None);
        };
        self.injected.fetch_add(1, Ordering::Relaxed);
        let e = Error::backend(
            self.info.scheme.clone(),
            fault != Fault::Permanent,
            std::io::Error::other(format!("injected {fault:?} fault in {op:?}")),
        );
        match fault {
            Fault::LostReply | Fault::Resent => Ok(Some((fault, e))),
            Fault::Temporary | Fault::Permanent => Err(e),
        }
    }
}

#[async_trait]
impl StorageBackend for FaultyBackend {
    fn info(&self) -> &BackendInfo {
        &self.info
    }

    async fn get(&self, space: &Space, key: &str) -> Result<Option<Record>> {
        self.read(self.inner.get(space, key)).await
    }

    async fn get_many(&self, space: &Space, keys: &[String]) -> Result<Vec<Option<Record>>> {
        self.read(self.inner.get_many(space, keys)).await
    }

    async fn get_meta_many(&self, space: &Space, keys: &[String]) -> Result<Vec<Option<Meta>>> {
        self.read(self.inner.get_meta_many(space, keys)).await
    }

    async fn apply(&self, batch: &Batch) -> Result<()> {
        let once = || async {
            let delay = *self.apply_delay.lock();
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            self.inner.apply(batch).await?;
            self.batches.lock().push(batch.ops.len());
            Ok(())
        };
        match self.maybe_fail(FaultOp::Apply) {
            Err(e) => Err(e),
            Ok(None) => once().await,
            Ok(Some((Fault::Resent, _))) => {
                // The first answer never reaches the caller.
                let _ = once().await;
                once().await
            }
            Ok(Some((_, lost))) => {
                once().await?;
                Err(lost)
            }
        }
    }

    async fn scan(
        &self,
        space: &Space,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Meta)>> {
        self.guarded(FaultOp::Scan, self.inner.scan(space, prefix, after, limit))
            .await
    }

    async fn spaces(&self) -> Result<Vec<Space>> {
        self.guarded(FaultOp::Scan, self.inner.spaces()).await
    }

    async fn sync(&self) -> Result<()> {
        self.guarded(FaultOp::Sync, async {
            let delay = *self.sync_delay.lock();
            if !delay.is_zero() {
                let until = Instant::now() + delay;
                tokio::task::spawn_blocking(move || {
                    while Instant::now() < until {
                        std::hint::spin_loop();
                    }
                })
                .await
                .map_err(|e| Error::backend(self.info.scheme.clone(), false, e))?;
            }
            self.inner.sync().await
        })
        .await
    }

    async fn compact(&self) -> Result<()> {
        self.inner.compact().await
    }

    async fn close(&self) -> Result<()> {
        self.inner.close().await
    }

    fn native_index(&self) -> Option<Arc<dyn MetadataIndex>> {
        self.inner.native_index()
    }
}
