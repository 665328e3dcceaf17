//! Transactions: reads see the transaction's own writes, commit applies everything as one unit
//! or nothing, and a key the transaction read that someone else changed before the commit
//! makes the commit fail with [`Error::Conflict`].
//!
//! Isolation comes from keeping writes inside the [`Transaction`] until `commit`; atomicity from
//! committing them as one pipeline unit, which the flusher never splits and hands to the
//! backend as one batch; conflict detection from version checks on every key read, evaluated by
//! the backend atomically with the writes.

use std::collections::BTreeMap;
use std::fmt;
use std::hash::BuildHasher;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;

use super::{SetOptions, Store};
use crate::backend::{Batch, Expect};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::record::Record;
use crate::stats::OpKind;

/// A transaction on one space of a store. Dropping it without [`commit`](Transaction::commit)
/// rolls it back: nothing it wrote is ever visible.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let store = nadb_core::Store::open("memory://").await?;
/// store.set("alice", "100").await?;
/// let mut tx = store.begin();
/// let balance: i64 = std::str::from_utf8(&tx.get("alice").await?.unwrap()).unwrap().parse().unwrap();
/// tx.set("alice", (balance - 30).to_string())?;
/// tx.set("bob", "30")?;
/// assert_eq!(store.get("bob").await?, None, "invisible before commit");
/// tx.commit().await?;
/// assert_eq!(store.get("bob").await?.as_deref(), Some(&b"30"[..]));
/// # Ok::<(), nadb_core::Error>(()) }).unwrap();
/// ```
pub struct Transaction {
    store: Store,
    /// Each key read, as it was when first read.
    reads: BTreeMap<String, Read>,
    /// Writes in order of last write per key (`None`: delete).
    writes: BTreeMap<String, (u64, Option<(Bytes, SetOptions)>)>,
    next: u64,
}

/// What a transaction saw of a key it read.
struct Read {
    /// The record's version (`None`: no record, live or expired).
    version: Option<u64>,
    /// When the record it saw live expires: by then the read no longer holds.
    live_until: Option<Timestamp>,
}

impl fmt::Debug for Transaction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transaction")
            .field("space", &self.store.space)
            .field("reads", &self.reads.len())
            .field("writes", &self.writes.len())
            .finish()
    }
}

/// How many times [`Store::transaction`] runs its body before it gives up on conflicts.
pub const TRANSACTION_ATTEMPTS: u32 = 100;

impl Store {
    /// Starts a transaction on this handle's space.
    pub fn begin(&self) -> Transaction {
        Transaction {
            store: self.clone(),
            reads: BTreeMap::new(),
            writes: BTreeMap::new(),
            next: 0,
        }
    }

    /// Runs `body` in a transaction and commits it, retrying the whole body (up to 100 times,
    /// with growing randomised pauses) when the commit meets a conflict. An error from `body` rolls back and is returned.
    ///
    /// The body returns a boxed future so the whole call stays `Send` (usable in
    /// `tokio::spawn`).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = nadb_core::Store::open("memory://").await?;
    /// let n = store
    ///     .transaction(|tx| {
    ///         Box::pin(async move {
    ///             let n = tx.get("n").await?.map_or(0, |v| v.len());
    ///             tx.set("n", vec![b'x'; n + 1])?;
    ///             Ok(n + 1)
    ///         })
    ///     })
    ///     .await?;
    /// assert_eq!(n, 1);
    /// # Ok::<(), nadb_core::Error>(()) }).unwrap();
    /// ```
    pub async fn transaction<T, F>(&self, mut body: F) -> Result<T>
    where
        F: for<'t> FnMut(&'t mut Transaction) -> BoxFuture<'t, Result<T>>,
    {
        let mut last = None;
        for attempt in 0..TRANSACTION_ATTEMPTS {
            let mut tx = self.begin();
            let out = body(&mut tx).await?;
            match tx.commit().await {
                Ok(()) => return Ok(out),
                Err(e @ Error::Conflict { .. }) => last = Some(e),
                Err(e) => return Err(e),
            }
            if attempt + 1 < TRANSACTION_ATTEMPTS {
                tokio::time::sleep(self.conflict_pause(attempt)).await;
            }
        }
        Err(last.unwrap_or_else(|| Error::Conflict {
            reason: "transaction kept conflicting".into(),
        }))
    }
}

impl Store {
    /// The pause before running a transaction again after its commit number `attempt`
    /// (counting from 0) met a conflict: random, below a cap that doubles per attempt from
    /// 50 µs to about 51 ms, so that colliding transactions do not collide again in lockstep.
    /// [`Store::transaction`] waits this long; so can a caller retrying [`Store::begin`] by hand.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = nadb_core::Store::open("memory://").await?;
    /// assert!(store.conflict_pause(0) < std::time::Duration::from_micros(50));
    /// assert!(store.conflict_pause(99) < std::time::Duration::from_millis(52));
    /// # Ok::<(), nadb_core::Error>(()) }).unwrap();
    /// ```
    pub fn conflict_pause(&self, attempt: u32) -> Duration {
        let cap_us = 50u64 << attempt.min(10);
        // Versions count up by one: hashed, consecutive calls land far apart.
        let draw = foldhash::fast::FixedState::default().hash_one(self.engine.next_version());
        Duration::from_micros(draw % cap_us)
    }
}

impl Transaction {
    fn record_read(&mut self, key: &str, stored: Option<&Record>, now: Timestamp) {
        self.reads.entry(key.to_string()).or_insert_with(|| Read {
            version: stored.map(|r| r.meta.version),
            live_until: stored
                .filter(|r| !r.meta.is_expired(now))
                .and_then(|r| r.meta.expires_at),
        });
    }

    /// The value of `key` as this transaction sees it: its own write if any, else the store's.
    pub async fn get(&mut self, key: &str) -> Result<Option<Bytes>> {
        self.store.check_open()?;
        self.store.check_key(key)?;
        if let Some((_, w)) = self.writes.get(key) {
            return Ok(w.as_ref().map(|(v, _)| v.clone()));
        }
        let engine = self.store.engine.clone();
        let stored = engine.read(&self.store.space, key).await?;
        let now = engine.clock.now();
        self.record_read(key, stored.as_ref(), now);
        match stored.filter(|r| !r.meta.is_expired(now)) {
            Some(r) => Ok(Some(engine.decode(r)?.value)),
            None => Ok(None),
        }
    }

    /// Whether `key` has a live value as this transaction sees it.
    pub async fn exists(&mut self, key: &str) -> Result<bool> {
        Ok(self.get(key).await?.is_some())
    }

    /// Writes `value` under `key` inside the transaction.
    pub fn set(&mut self, key: &str, value: impl Into<Bytes>) -> Result<()> {
        self.set_with(key, value, &SetOptions::default())
    }

    /// Writes `value` with tags and/or expiry inside the transaction. Options are validated
    /// at commit time, against the commit's clock.
    pub fn set_with(
        &mut self,
        key: &str,
        value: impl Into<Bytes>,
        opts: &SetOptions,
    ) -> Result<()> {
        self.store.check_key(key)?;
        self.next += 1;
        self.writes.insert(
            key.to_string(),
            (self.next, Some((value.into(), opts.clone()))),
        );
        Ok(())
    }

    /// Deletes `key` inside the transaction.
    pub fn delete(&mut self, key: &str) -> Result<()> {
        self.store.check_key(key)?;
        self.next += 1;
        self.writes.insert(key.to_string(), (self.next, None));
        Ok(())
    }

    /// Number of keys written.
    pub fn len(&self) -> usize {
        self.writes.len()
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// Applies every write at once, or none: fails with [`Error::Conflict`] if a key this
    /// transaction read was changed by anyone else since it was read, or has expired since
    /// (a value it saw is gone). When a key it read holds a write that is dead-lettered, the
    /// commit fails with [`Error::Unpersisted`] instead: that write never reaches the backend,
    /// so no retry could succeed until it is retried or cleared. Under
    /// [`FlushPolicy::Immediate`](crate::FlushPolicy::Immediate), or when the transaction read
    /// anything, returns once applied and synced; otherwise once buffered, like a plain write.
    pub async fn commit(self) -> Result<()> {
        let store = self.store.clone();
        store
            .measured(OpKind::Transaction, async move {
                let engine = &self.store.engine;
                let now = engine.clock.now();
                let mut batch = Batch::new(self.store.space.clone());
                for (key, read) in &self.reads {
                    if read.live_until.is_some_and(|at| at <= now) {
                        return Err(Error::Conflict {
                            reason: format!(
                                "a record of a {}-byte key this transaction read has expired since",
                                key.len()
                            ),
                        });
                    }
                    if let Some((_, true)) = engine.pipeline.lookup_dead(&self.store.space, key) {
                        return Err(engine.pipeline.unpersisted());
                    }
                    let expect = read.version.map_or(Expect::Absent, Expect::Version);
                    batch.check(key.clone(), expect);
                }
                let mut writes: Vec<_> = self.writes.into_iter().collect();
                writes.sort_by_key(|(_, (order, _))| *order);
                for (key, (_, write)) in writes {
                    match write {
                        Some((value, opts)) => {
                            let (tags, expires_at) = opts.resolve(now)?;
                            batch.put(key, engine.encode(value, tags, expires_at, now)?);
                        }
                        None => {
                            batch.delete(key);
                        }
                    }
                }
                // A read-only transaction still commits its checks: its reads were consistent.
                let wait = !batch.checks.is_empty();
                engine.submit(batch.into(), wait).await
            })
            .await
    }

    /// Discards every write (the same as dropping the transaction).
    pub fn rollback(self) {}
}
