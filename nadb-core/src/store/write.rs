//! The write path, top to bottom: API call → validation → record encoding (size limit,
//! compression, version, timestamps) → one [`Batch`] → [`Engine::try_submit`] (the pending
//! buffer of `pipeline.rs`, which acknowledges per the flush policy; [`Engine::settle`] waits
//! when it must) → … → the flusher calls
//! [`Engine::commit`] → [`StorageBackend::apply`](crate::StorageBackend::apply) → metadata
//! index.

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;

use super::cache::Lookup;
use super::pipeline::{Submitted, Writes};
use super::{Engine, SetOptions, Store};
use crate::backend::{Batch, Expect};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::record::{Meta, Record};
use crate::stats::{Metrics, OpKind};
use crate::tags::Tags;

/// The part of a write that waits (for room or an acknowledgement), boxed: the future of a
/// write that waits for nothing then carries (and copies) no room for it.
type WaitingWrite<'a> = Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>>;

impl Store {
    /// Stores `value` under `key`, untagged and without expiry, replacing any record.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = nadb_core::Store::open("memory://").await?;
    /// store.set("k", "v").await?;
    /// assert_eq!(store.get("k").await?.as_deref(), Some(&b"v"[..]));
    /// # Ok::<(), nadb_core::Error>(()) }).unwrap();
    /// ```
    pub async fn set(&self, key: &str, value: impl Into<Bytes>) -> Result<()> {
        self.set_with(key, value, &SetOptions::default()).await
    }

    /// Stores `value` under `key` with tags and/or expiry, replacing any record and its tags.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use nadb_core::SetOptions;
    /// let store = nadb_core::Store::open("memory://").await?;
    /// store.set_with("k", "v", &SetOptions::new().tags(["t"])).await?;
    /// assert_eq!(&*store.get_with_metadata("k").await?.unwrap().meta.tags, ["t"]);
    /// # Ok::<(), nadb_core::Error>(()) }).unwrap();
    /// ```
    pub async fn set_with(
        &self,
        key: &str,
        value: impl Into<Bytes>,
        opts: &SetOptions,
    ) -> Result<()> {
        let value = value.into();
        self.measured_write(OpKind::Set, || {
            self.check_key(key)?;
            let now = self.engine.clock.now();
            let (tags, expires_at) = opts.resolve(now)?;
            let record = self.engine.encode(value, tags, expires_at, now)?;
            Ok(Writes::one(self.space.clone(), key, record))
        })
        .await
    }

    /// Stores several untagged, non-expiring values as one atomic batch.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = nadb_core::Store::open("memory://").await?;
    /// store.set_many([("a", "1"), ("b", "2")]).await?;
    /// assert_eq!(store.len().await?, 2);
    /// # Ok::<(), nadb_core::Error>(()) }).unwrap();
    /// ```
    pub async fn set_many<I, K, V>(&self, items: I) -> Result<()>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: Into<Bytes>,
    {
        self.set_many_with(items, &SetOptions::default()).await
    }

    /// Stores several values with the same options as one batch: all or nothing where the
    /// backend has `atomic_batch`. If a key repeats, its last value wins.
    pub async fn set_many_with<I, K, V>(&self, items: I, opts: &SetOptions) -> Result<()>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: Into<Bytes>,
    {
        let items: Vec<(K, Bytes)> = items.into_iter().map(|(k, v)| (k, v.into())).collect();
        self.measured_write(OpKind::SetMany, || {
            let now = self.engine.clock.now();
            let (tags, expires_at) = opts.resolve(now)?;
            let mut writes = Writes::new(self.space.clone());
            for (key, value) in items {
                let key = key.as_ref();
                self.check_key(key)?;
                let record = self.engine.encode(value, tags.clone(), expires_at, now)?;
                writes.put(key, record);
            }
            Ok(writes)
        })
        .await
    }

    /// Runs a write as operation `kind`, counted and traced as [`Store::measured`] does:
    /// `build` validates and encodes it, and it is queued without suspending the caller when
    /// the buffer has room and the flush policy acknowledges buffered writes.
    async fn measured_write(
        &self,
        kind: OpKind,
        build: impl FnOnce() -> Result<Writes>,
    ) -> Result<()> {
        match self.write_now(kind, build) {
            Ok(done) => done,
            Err(waiting) => waiting.await,
        }
    }

    /// [`Store::measured_write`] up to where it must wait: `Err` with the rest.
    fn write_now(
        &self,
        kind: OpKind,
        build: impl FnOnce() -> Result<Writes>,
    ) -> std::result::Result<Result<()>, WaitingWrite<'_>> {
        let mut later = None;
        let now = self.measured_now(kind, || match self.engine.try_submit(build()?, false)? {
            Submitted::Done => Ok(Lookup::Hit(())),
            waiting => {
                later = Some(waiting);
                Ok(Lookup::Miss(0))
            }
        });
        let missed = match now {
            Ok(done) => return Ok(done),
            Err(missed) => missed,
        };
        Err(Box::pin(self.measured_after(kind, missed, async move {
            match later {
                Some(waiting) => self.engine.settle(waiting).await,
                // The store was closed before the write was built.
                None => Err(Error::Closed),
            }
        })))
    }

    /// Removes `key`; tells whether a live record was there.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = nadb_core::Store::open("memory://").await?;
    /// store.set("k", "v").await?;
    /// assert!(store.delete("k").await?);
    /// assert!(!store.delete("k").await?);
    /// # Ok::<(), nadb_core::Error>(()) }).unwrap();
    /// ```
    pub async fn delete(&self, key: &str) -> Result<bool> {
        self.measured(OpKind::Delete, async {
            self.check_key(key)?;
            Ok(self
                .delete_keys(&[key.to_string()], |_| true, false)
                .await?
                == 1)
        })
        .await
    }

    /// Removes several keys in one batch; returns how many live records were removed.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = nadb_core::Store::open("memory://").await?;
    /// store.set_many([("a", "1"), ("b", "2")]).await?;
    /// assert_eq!(store.delete_many(&["a", "b", "c"]).await?, 2);
    /// # Ok::<(), nadb_core::Error>(()) }).unwrap();
    /// ```
    pub async fn delete_many<K: AsRef<str>>(&self, keys: &[K]) -> Result<u64> {
        self.measured(OpKind::DeleteMany, async {
            let mut owned = Vec::with_capacity(keys.len());
            for k in keys {
                self.check_key(k.as_ref())?;
                owned.push(k.as_ref().to_string());
            }
            owned.sort_unstable();
            owned.dedup();
            self.delete_keys(&owned, |_| true, false).await
        })
        .await
    }

    /// Deletes those of `keys` (distinct, validated) whose current metadata passes `filter`,
    /// and counts the live records among them.
    ///
    /// A key with a pending write is judged by that write. Unless `guarded`, its delete is
    /// queued after that write unchecked, like any buffered write. Any other delete, and every
    /// delete when `guarded`, is checked against the version the backend will hold when the
    /// delete is applied (the pending write's, or for a dead-lettered one the stored record's),
    /// so a write that lands in between is never removed by mistake; on a conflict the keys are
    /// read again. A checked delete returns once applied, so a refusal comes back as an error.
    pub(crate) async fn delete_keys(
        &self,
        keys: &[String],
        filter: impl Fn(&Meta) -> bool,
        guarded: bool,
    ) -> Result<u64> {
        const ATTEMPTS: usize = 64;
        // Keys whose delete is decided on the stored record.
        let from_backend = |p: &Option<(Option<Record>, bool)>| match p {
            None => true,
            Some((_, dead)) => guarded && *dead,
        };
        for _ in 0..ATTEMPTS {
            // A round that applied a newer write but has not yet removed the dead-lettered op
            // it supersedes would make that op look newer than the stored record.
            let quiet = if guarded {
                Some(self.engine.pipeline.hold_rounds().await)
            } else {
                None
            };
            let now = self.engine.clock.now();
            let pending: Vec<_> = keys
                .iter()
                .map(|k| self.engine.pipeline.lookup_dead(&self.space, k))
                .collect();
            let stored: Vec<String> = keys
                .iter()
                .zip(&pending)
                .filter(|(_, p)| from_backend(p))
                .map(|(k, _)| k.clone())
                .collect();
            let mut metas = if stored.is_empty() {
                Vec::new()
            } else {
                self.engine
                    .backend
                    .get_meta_many(&self.space, &stored)
                    .await?
            }
            .into_iter();
            let mut batch = Batch::new(self.space.clone());
            let mut live = 0;
            for (key, p) in keys.iter().zip(pending) {
                let stored = if from_backend(&p) {
                    metas.next().flatten()
                } else {
                    None
                };
                let stored_version = stored
                    .as_ref()
                    .map_or(Expect::Absent, |m| Expect::Version(m.version));
                match p {
                    None => {
                        if let Some(meta) = stored.filter(|m| filter(m)) {
                            live += u64::from(!meta.is_expired(now));
                            batch.check(key.clone(), Expect::Version(meta.version));
                            batch.delete(key.clone());
                        }
                    }
                    Some((Some(record), dead)) => {
                        if !filter(&record.meta) {
                            continue;
                        }
                        live += u64::from(!record.meta.is_expired(now));
                        if guarded {
                            let expect = if dead {
                                stored_version
                            } else {
                                Expect::Version(record.meta.version)
                            };
                            batch.check(key.clone(), expect);
                        }
                        batch.delete(key.clone());
                    }
                    // Deleted by a pending write, so not live. A dead-lettered delete left the
                    // backend's copy: delete again so it goes too.
                    Some((None, dead)) => {
                        if guarded && dead {
                            batch.check(key.clone(), stored_version);
                        }
                        if !guarded || dead {
                            batch.delete(key.clone());
                        }
                    }
                }
            }
            drop(quiet);
            match self.engine.submit(batch.into(), false).await {
                Ok(()) => return Ok(live),
                Err(Error::Conflict { .. }) => tokio::task::yield_now().await,
                Err(e) => return Err(e),
            }
        }
        Err(Error::Conflict {
            reason: format!("keys kept changing during a delete of {} keys", keys.len()),
        })
    }
}

impl Engine {
    /// Builds the stored record for a new value written at `now`: enforces the size limit,
    /// compresses above the threshold, stamps a fresh version.
    pub(crate) fn encode(
        &self,
        value: Bytes,
        tags: Tags,
        expires_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<Record> {
        let value_len = value.len() as u64;
        if value_len > self.max_value_size {
            return Err(Error::ValueTooLarge {
                size: value_len,
                limit: self.max_value_size,
            });
        }
        let (codec, stored) = self.compression.encode(value);
        Metrics::add(&self.metrics.value_bytes_written, value_len);
        Metrics::add(&self.metrics.stored_bytes_written, stored.len() as u64);
        Ok(Record {
            meta: Meta {
                created_at: now,
                updated_at: now,
                expires_at,
                tags,
                codec,
                value_len,
                stored_len: stored.len() as u64,
                version: self.next_version(),
            },
            value: stored,
        })
    }

    /// A copy of a stored record with new metadata fields, keeping the stored value.
    pub(crate) fn restamp(
        &self,
        record: &Record,
        expires_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Record {
        let mut r = record.clone();
        r.meta.expires_at = expires_at;
        r.meta.updated_at = now;
        r.meta.version = self.next_version();
        r
    }

    /// Hands a (coalesced) batch to the backend, then brings a store-kept index up to date.
    /// Called by the flusher only.
    ///
    /// With a store-kept index the two steps run under one lock so the index sees batches in
    /// the order the backend applied them.
    /// With `synced`, the backend also makes the batch durable in the same call
    /// ([`StorageBackend::apply_synced`](crate::StorageBackend::apply_synced)).
    #[tracing::instrument(
        level = "debug",
        name = "nadb.backend.apply",
        skip_all,
        fields(space = %batch.space, ops = batch.ops.len(), synced = synced)
    )]
    pub(crate) async fn commit(&self, batch: &Batch, synced: bool) -> Result<()> {
        self.ensure_indexed(&batch.space).await?;
        let apply = async {
            if synced {
                self.backend.apply_synced(batch).await
            } else {
                self.backend.apply(batch).await
            }
        };
        let _order = self.index_order().await;
        if let Err(e) = apply.await {
            // Unless its checks failed, the batch may have taken effect all the same (a lost
            // reply, a failed sync after the apply): cached records of its keys are suspect.
            if !matches!(e, Error::Conflict { .. }) {
                self.refresh_cached(batch).await;
            }
            return Err(e);
        }
        self.after_apply(batch).await
    }

    /// Brings the cache and a store-kept index up to date with a batch found applied after
    /// its apply reported an error. Called by the flusher only.
    pub(crate) async fn record_applied(&self, batch: &Batch) -> Result<()> {
        let _order = self.index_order().await;
        self.after_apply(batch).await
    }

    /// With a store-kept index: the lock under which applies and index updates pair up, so
    /// the index sees batches in the order the backend applied them.
    async fn index_order(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match self.derived_index {
            true => Some(self.index_lock.lock().await),
            false => None,
        }
    }

    /// Brings the cache and a store-kept index up to date with an applied batch.
    async fn after_apply(&self, batch: &Batch) -> Result<()> {
        self.cache.applied(batch);
        if self.derived_index {
            self.index.update(batch).await?;
        }
        Ok(())
    }

    /// Makes the cache read `batch`'s keys from the backend again.
    async fn refresh_cached(&self, batch: &Batch) {
        if !self.cache.is_full() {
            self.cache.forget(batch);
            return;
        }
        let keys: Vec<String> = batch.ops.iter().map(|op| op.key().to_string()).collect();
        match self.backend.get_many(&batch.space, &keys).await {
            Ok(records) => self
                .cache
                .replace(&batch.space, keys.into_iter().zip(records)),
            // Unknown: the space is loaded again from the backend when next used.
            Err(_) => self.cache.forget_space(&batch.space),
        }
    }
}
