//! Read-modify-write operations: `set_if_absent`, `compare_and_swap`, `incr`/`decr`,
//! `touch`, `persist`.
//!
//! Each reads the key, decides, and writes with a check that the record is still the one it
//! read (its version, or its absence). The backend evaluates that check atomically with the
//! write, so the operations are atomic on every backend and across processes; a lost race is
//! retried. Writers in one process queue on a per-key lock first, so they do not spin.

use std::time::Duration;

use bytes::Bytes;

use super::options::expiry_after;
use super::{Cas, SetOptions, Store};
use crate::backend::{Batch, Expect};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::record::Record;
use crate::stats::OpKind;
use crate::tags::Tags;

/// What a read-modify-write decided to do with the key.
enum Change {
    Keep,
    Put(Record),
}

const ATTEMPTS: u32 = 100;

impl Store {
    /// Stores `value` only if `key` has no live record; tells whether it did.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use nadb_core::SetOptions;
    /// let store = nadb_core::Store::open("memory://").await?;
    /// assert!(store.set_if_absent("lock", "me", &SetOptions::new()).await?);
    /// assert!(!store.set_if_absent("lock", "you", &SetOptions::new()).await?);
    /// # Ok::<(), nadb_core::Error>(()) }).unwrap();
    /// ```
    pub async fn set_if_absent(
        &self,
        key: &str,
        value: impl Into<Bytes>,
        opts: &SetOptions,
    ) -> Result<bool> {
        let value = value.into();
        self.measured(OpKind::SetIfAbsent, async {
            self.read_modify_write(key, |live, now| {
                if live.is_some() {
                    return Ok((Change::Keep, false));
                }
                let (tags, expires_at) = opts.resolve(now)?;
                let record = self.engine.encode(value.clone(), tags, expires_at, now)?;
                Ok((Change::Put(record), true))
            })
            .await
        })
        .await
    }

    /// Stores `value` only if the live record's version is `expected` (`None`: only if there
    /// is no live record). Versions come from [`Meta::version`](crate::Meta::version).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use nadb_core::{Cas, SetOptions};
    /// let store = nadb_core::Store::open("memory://").await?;
    /// store.set("k", "1").await?;
    /// let v = store.get_with_metadata("k").await?.unwrap().meta.version;
    /// assert!(store.compare_and_swap("k", Some(v), "2", &SetOptions::new()).await?.is_swapped());
    /// assert!(!store.compare_and_swap("k", Some(v), "3", &SetOptions::new()).await?.is_swapped());
    /// # Ok::<(), nadb_core::Error>(()) }).unwrap();
    /// ```
    pub async fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<u64>,
        value: impl Into<Bytes>,
        opts: &SetOptions,
    ) -> Result<Cas> {
        let value = value.into();
        self.measured(OpKind::CompareAndSwap, async {
            self.read_modify_write(key, |live, now| {
                let current = live.map(|r| r.meta.version);
                if current != expected {
                    return Ok((Change::Keep, Cas::Mismatch { current }));
                }
                let (tags, expires_at) = opts.resolve(now)?;
                let record = self.engine.encode(value.clone(), tags, expires_at, now)?;
                let version = record.meta.version;
                Ok((Change::Put(record), Cas::Swapped { version }))
            })
            .await
        })
        .await
    }

    /// Adds `delta` to the integer stored under `key` (a missing key counts as 0) and returns
    /// the result. Values are stored as decimal text (`b"42"`); tags and expiry are kept.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = nadb_core::Store::open("memory://").await?;
    /// assert_eq!(store.incr("hits", 5).await?, 5);
    /// assert_eq!(store.decr("hits", 2).await?, 3);
    /// assert_eq!(store.get("hits").await?.as_deref(), Some(&b"3"[..]));
    /// # Ok::<(), nadb_core::Error>(()) }).unwrap();
    /// ```
    pub async fn incr(&self, key: &str, delta: i64) -> Result<i64> {
        self.measured(OpKind::Incr, async {
            self.read_modify_write(key, |live, now| {
                let (current, tags, expires_at) = match live {
                    None => (0, Tags::empty(), None),
                    Some(r) => {
                        let (tags, expires_at) = (r.meta.tags.clone(), r.meta.expires_at);
                        (parse_i64(&self.engine.decode(r)?.value)?, tags, expires_at)
                    }
                };
                let next = current
                    .checked_add(delta)
                    .ok_or_else(|| Error::InvalidValue {
                        reason: "integer overflow".into(),
                    })?;
                let value = Bytes::from(next.to_string());
                let record = self.engine.encode(value, tags, expires_at, now)?;
                Ok((Change::Put(record), next))
            })
            .await
        })
        .await
    }

    /// Subtracts `delta`; see [`Store::incr`].
    pub async fn decr(&self, key: &str, delta: i64) -> Result<i64> {
        let neg = delta.checked_neg().ok_or_else(|| Error::InvalidArgument {
            name: "delta",
            reason: "cannot negate i64::MIN".into(),
        })?;
        self.incr(key, neg).await
    }

    /// Makes `key` expire `ttl` from now; tells whether there was a live record to touch.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use std::time::Duration;
    /// let store = nadb_core::Store::open("memory://").await?;
    /// store.set("k", "v").await?;
    /// assert!(store.touch("k", Duration::from_secs(30)).await?);
    /// assert!(matches!(store.ttl("k").await?, Some(nadb_core::KeyTtl::Remaining(_))));
    /// # Ok::<(), nadb_core::Error>(()) }).unwrap();
    /// ```
    pub async fn touch(&self, key: &str, ttl: Duration) -> Result<bool> {
        self.measured(OpKind::Touch, async {
            self.read_modify_write(key, |live, now| {
                let expires_at = expiry_after(now, ttl)?;
                Ok(match live {
                    None => (Change::Keep, false),
                    Some(r) => (
                        Change::Put(self.engine.restamp(&r, Some(expires_at), now)),
                        true,
                    ),
                })
            })
            .await
        })
        .await
    }

    /// Removes `key`'s expiry; tells whether there was a live record.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use std::time::Duration;
    /// use nadb_core::{KeyTtl, SetOptions};
    /// let store = nadb_core::Store::open("memory://").await?;
    /// store.set_with("k", "v", &SetOptions::new().ttl(Duration::from_secs(5))).await?;
    /// assert!(store.persist("k").await?);
    /// assert_eq!(store.ttl("k").await?, Some(KeyTtl::Never));
    /// # Ok::<(), nadb_core::Error>(()) }).unwrap();
    /// ```
    pub async fn persist(&self, key: &str) -> Result<bool> {
        self.measured(OpKind::Persist, async {
            self.read_modify_write(key, |live, now| {
                Ok(match live {
                    None => (Change::Keep, false),
                    Some(r) if r.meta.expires_at.is_none() => (Change::Keep, true),
                    Some(r) => (Change::Put(self.engine.restamp(&r, None, now)), true),
                })
            })
            .await
        })
        .await
    }

    /// Reads `key`, lets `decide` choose, and writes guarded by a check that the stored record
    /// is still the one read; retries when another writer got there first.
    async fn read_modify_write<T>(
        &self,
        key: &str,
        mut decide: impl FnMut(Option<Record>, Timestamp) -> Result<(Change, T)>,
    ) -> Result<T> {
        self.check_key(key)?;
        let _local = self.engine.key_lock(key).lock().await;
        for attempt in 0..ATTEMPTS {
            // The decision needs the stored version: let a pending write of the key land first.
            if self.engine.pipeline.lookup(&self.space, key).is_some() {
                self.engine.drain().await?;
                match self.engine.pipeline.lookup_dead(&self.space, key) {
                    // The newest write is dead-lettered: deciding on the older stored value
                    // would silently contradict it.
                    Some((_, true)) => return Err(self.engine.pipeline.unpersisted()),
                    // Written again while the drain ran: let that write land too.
                    Some((_, false)) => {
                        backoff(attempt).await;
                        continue;
                    }
                    None => {}
                }
            }
            let now = self.engine.clock.now();
            let current = self.engine.backend.get(&self.space, key).await?;
            let expect = current
                .as_ref()
                .map_or(Expect::Absent, |r| Expect::Version(r.meta.version));
            let live = current.filter(|r| !r.meta.is_expired(now));
            let (change, out) = decide(live, now)?;
            let Change::Put(record) = change else {
                return Ok(out);
            };
            let mut batch = Batch::new(self.space.clone());
            batch.check(key, expect).put(key, record);
            match self.engine.submit(batch.into(), true).await {
                Ok(()) => return Ok(out),
                Err(Error::Conflict { .. }) => backoff(attempt).await,
                Err(e) => return Err(e),
            }
        }
        Err(Error::Conflict {
            reason: format!("key changed under {ATTEMPTS} attempts of a read-modify-write"),
        })
    }
}

async fn backoff(attempt: u32) {
    if attempt < 4 {
        tokio::task::yield_now().await;
    } else {
        let ms = 1u64 << (attempt - 4).min(6);
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

fn parse_i64(value: &[u8]) -> Result<i64> {
    std::str::from_utf8(value)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| Error::InvalidValue {
            reason: "stored value is not a decimal 64-bit integer".into(),
        })
}
