//! [`StorageBackend`]: the trait every backend implements, the source of truth for records.
//!
//! The required surface is small: read by key, apply a [`Batch`], scan a space in key order,
//! sync, compact, close. Conveniences built from those live in [`BackendExt`], implemented for
//! every backend, so a new backend writes only what it must.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::error::Result;
use crate::index::MetadataIndex;
use crate::record::{Meta, Record};
use crate::space::Space;

/// What a backend can do. Static for a backend; the store emulates what is missing (TTL,
/// ordering) and the testkit skips cases whose capability is absent.
///
/// ```
/// use nadb_core::Capabilities;
/// let c = Capabilities { persistent: true, ..Capabilities::default() };
/// assert!(c.persistent && !c.atomic_batch);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// Records survive closing and reopening the backend.
    pub persistent: bool,
    /// [`StorageBackend::apply`] applies a whole batch or nothing, even across a crash.
    pub atomic_batch: bool,
    /// The backend removes expired records by itself (Redis `PEXPIREAT`).
    pub native_ttl: bool,
    /// [`StorageBackend::scan`] returns keys in byte order and honours `after` and `limit`.
    pub ordered_scan: bool,
    /// Several processes may open the same storage at once.
    pub multi_process: bool,
    /// Largest stored value the backend accepts, in bytes, if it has a limit.
    pub max_value_size: Option<u64>,
}

impl Capabilities {
    /// Capabilities with every flag off and no size limit; set fields on the result.
    pub const fn none() -> Capabilities {
        Capabilities {
            persistent: false,
            atomic_batch: false,
            native_ttl: false,
            ordered_scan: false,
            multi_process: false,
            max_value_size: None,
        }
    }
}

/// A backend's name and capabilities.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendInfo {
    /// The URL scheme, e.g. `memory`, `fs`.
    pub scheme: String,
    /// What the backend can do.
    pub capabilities: Capabilities,
}

/// What a [`Check`] requires of a key's stored record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// No record is stored under the key (an expired but unswept record counts as stored).
    Absent,
    /// The stored record has exactly this version.
    Version(u64),
}

impl Expect {
    /// Whether a stored record with version `found` (`None`: no record) satisfies this.
    ///
    /// ```
    /// use nadb_core::Expect;
    /// assert!(Expect::Absent.holds(None));
    /// assert!(Expect::Version(3).holds(Some(3)));
    /// assert!(!Expect::Version(3).holds(None));
    /// ```
    pub fn holds(self, found: Option<u64>) -> bool {
        match self {
            Expect::Absent => found.is_none(),
            Expect::Version(v) => found == Some(v),
        }
    }
}

/// A precondition of a [`Batch`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// The key checked.
    pub key: String,
    /// What must hold.
    pub expect: Expect,
}

/// One write in a [`Batch`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Store `record` (in stored form) under `key`, replacing any record and its tags.
    ///
    /// When a record is stored and not expired at `record.meta.updated_at`, the backend keeps
    /// its `created_at`.
    Put {
        /// The key.
        key: String,
        /// The record, value already encoded as `meta.codec` says.
        record: Record,
    },
    /// Remove `key` and its tags; removing a missing key is not an error.
    Delete {
        /// The key.
        key: String,
    },
}

impl Op {
    /// The key this op writes.
    pub fn key(&self) -> &str {
        match self {
            Op::Put { key, .. } | Op::Delete { key } => key,
        }
    }
}

/// Writes to one space, applied in order, guarded by checks.
///
/// Contract for [`StorageBackend::apply`]: every check is evaluated against the state before
/// the batch, atomically with applying it; if any fails the backend applies nothing and
/// returns [`Error::Conflict`](crate::Error::Conflict). When the backend has
/// [`Capabilities::atomic_batch`] the ops are all-or-nothing, also across a crash.
///
/// ```
/// use nadb_core::{Batch, Space};
/// let mut b = Batch::new(Space::default());
/// b.delete("old");
/// assert_eq!(b.ops.len(), 1);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    /// The space every op and check is in.
    pub space: Space,
    /// Preconditions.
    pub checks: Vec<Check>,
    /// Writes, applied in order.
    pub ops: Vec<Op>,
}

impl Batch {
    /// An empty batch in `space`.
    pub fn new(space: Space) -> Batch {
        Batch {
            space,
            checks: Vec::new(),
            ops: Vec::new(),
        }
    }

    /// Adds a put. The record's `meta.stored_len` is set to its value's length, which is
    /// what that field means; backends may rely on it.
    ///
    /// ```
    /// use nadb_core::{Batch, Meta, Op, Record, Space, Timestamp};
    /// let mut b = Batch::new(Space::default());
    /// b.put("k", Record::new("abc".into(), Meta::new(Timestamp::EPOCH, 1)));
    /// let Op::Put { record, .. } = &b.ops[0] else { unreachable!() };
    /// assert_eq!(record.meta.stored_len, 3);
    /// ```
    pub fn put(&mut self, key: impl Into<String>, mut record: Record) -> &mut Batch {
        record.meta.stored_len = record.value.len() as u64;
        self.ops.push(Op::Put {
            key: key.into(),
            record,
        });
        self
    }

    /// Adds a delete.
    pub fn delete(&mut self, key: impl Into<String>) -> &mut Batch {
        self.ops.push(Op::Delete { key: key.into() });
        self
    }

    /// Adds a precondition.
    pub fn check(&mut self, key: impl Into<String>, expect: Expect) -> &mut Batch {
        self.checks.push(Check {
            key: key.into(),
            expect,
        });
        self
    }
}

/// A key-value storage engine nadb can run on. Object-safe: the store holds an
/// `Arc<dyn StorageBackend>`.
///
/// Records are handed over in stored form; the store does compression, validation, TTL
/// decisions and versions. Implementations must be safe to call from many tasks at once.
///
/// Run `nadb_testkit`'s conformance suite against any implementation.
#[async_trait]
pub trait StorageBackend: Send + Sync + fmt::Debug + 'static {
    /// Scheme and capabilities.
    fn info(&self) -> &BackendInfo;

    /// The record stored under `key`, expired or not.
    async fn get(&self, space: &Space, key: &str) -> Result<Option<Record>>;

    /// Several records at once, in the order of `keys`.
    async fn get_many(&self, space: &Space, keys: &[String]) -> Result<Vec<Option<Record>>> {
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            out.push(self.get(space, k).await?);
        }
        Ok(out)
    }

    /// Metadata of several records, in the order of `keys`. Backends that can read metadata
    /// without values should override this.
    async fn get_meta_many(&self, space: &Space, keys: &[String]) -> Result<Vec<Option<Meta>>> {
        Ok(self
            .get_many(space, keys)
            .await?
            .into_iter()
            .map(|r| r.map(|r| r.meta))
            .collect())
    }

    /// Applies `batch` as the [`Batch`] contract says.
    async fn apply(&self, batch: &Batch) -> Result<()>;

    /// Up to `limit` keys of `space` starting with `prefix` and greater than `after`, with
    /// their metadata, expired records included. With [`Capabilities::ordered_scan`] they come
    /// in byte order; without it the backend returns every matching key in one call.
    async fn scan(
        &self,
        space: &Space,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Meta)>>;

    /// Every space holding at least one record (expired ones included), in [`Space`] order.
    /// Export and migration walk a whole store with it. The default answers
    /// [`Error::Unsupported`](crate::Error::Unsupported).
    async fn spaces(&self) -> Result<Vec<Space>> {
        Err(crate::Error::Unsupported {
            op: "spaces",
            backend: self.info().scheme.to_string(),
        })
    }

    /// Durability barrier: returns once everything applied before it is on stable storage.
    async fn sync(&self) -> Result<()>;

    /// [`apply`](StorageBackend::apply) and then [`sync`](StorageBackend::sync). Backends that
    /// can apply durably in one step (one fsynced commit instead of a commit and a sync)
    /// should override it.
    async fn apply_synced(&self, batch: &Batch) -> Result<()> {
        self.apply(batch).await?;
        self.sync().await
    }

    /// Reclaims space held by dead records. The default does nothing.
    async fn compact(&self) -> Result<()> {
        Ok(())
    }

    /// Flushes and releases resources; later calls fail with [`Error::Closed`](crate::Error::Closed).
    async fn close(&self) -> Result<()>;

    /// The backend's own metadata index, if it keeps one up to date inside `apply`.
    fn native_index(&self) -> Option<Arc<dyn MetadataIndex>> {
        None
    }
}

/// Conveniences for every [`StorageBackend`].
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use nadb_core::{BackendExt, MemoryBackend, Meta, Record, Space, StorageBackend, Timestamp};
/// let b = MemoryBackend::new();
/// let s = Space::default();
/// b.put(&s, "k", Record::new("v".into(), Meta { value_len: 1, stored_len: 1, ..Meta::new(Timestamp::EPOCH, 1) })).await?;
/// assert_eq!(b.scan_all(&s, "").await?.len(), 1);
/// b.remove(&s, "k").await?;
/// assert!(b.get(&s, "k").await?.is_none());
/// # Ok::<(), nadb_core::Error>(()) }).unwrap();
/// ```
#[async_trait]
pub trait BackendExt: StorageBackend {
    /// Stores one record.
    async fn put(&self, space: &Space, key: &str, record: Record) -> Result<()> {
        let mut b = Batch::new(space.clone());
        b.put(key, record);
        self.apply(&b).await
    }

    /// Removes one key.
    async fn remove(&self, space: &Space, key: &str) -> Result<()> {
        let mut b = Batch::new(space.clone());
        b.delete(key);
        self.apply(&b).await
    }

    /// Every key with `prefix` in `space` with its metadata, in key order.
    async fn scan_all(&self, space: &Space, prefix: &str) -> Result<Vec<(String, Meta)>> {
        const PAGE: usize = 1024;
        if !self.info().capabilities.ordered_scan {
            let mut all = self.scan(space, prefix, None, usize::MAX).await?;
            all.sort_by(|a, b| a.0.cmp(&b.0));
            return Ok(all);
        }
        let mut out: Vec<(String, Meta)> = Vec::new();
        loop {
            let after = out.last().map(|(k, _)| k.clone());
            let page = self.scan(space, prefix, after.as_deref(), PAGE).await?;
            let done = page.len() < PAGE;
            out.extend(page);
            if done {
                return Ok(out);
            }
        }
    }
}

impl<T: StorageBackend + ?Sized> BackendExt for T {}
