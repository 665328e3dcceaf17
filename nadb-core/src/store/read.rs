//! The read path: pending write (the pipeline's overlay) or backend record → TTL check →
//! decode → metrics.
//!
//! An expired record is treated as absent by every read, whether or not the sweeper has
//! removed it yet.

use bytes::Bytes;

use super::cache::Lookup;
use super::{Engine, KeyTtl, Store};
use crate::codec::decode_value;
use crate::error::Result;
use crate::record::{Codec, Record};
use crate::space::Space;
use crate::stats::{Metrics, OpKind};

impl Store {
    /// The value stored under `key`, or `None` when there is no live record.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = nadb_core::Store::open("memory://").await?;
    /// assert_eq!(store.get("missing").await?, None);
    /// # Ok::<(), nadb_core::Error>(()) }).unwrap();
    /// ```
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        // Only the value and what decoding needs leave the lock: no metadata copy.
        let live = |r: Option<&Record>| {
            r.filter(|r| self.engine.is_live(r))
                .map(|r| (r.value.clone(), r.meta.codec, r.meta.value_len))
        };
        let decode = |found: Option<(Bytes, Codec, u64)>| {
            found
                .map(|(stored, codec, len)| self.engine.decode_parts(stored, codec, len))
                .transpose()
        };
        // A pending write or a memory-first space answers without suspending the caller.
        let now = self.measured_now(OpKind::Get, || {
            self.check_key(key)?;
            Ok(match self.engine.read_now(&self.space, key, live) {
                Lookup::Hit(found) => Lookup::Hit(decode(found)?),
                Lookup::Miss(epoch) => Lookup::Miss(epoch),
            })
        });
        let missed = match now {
            Ok(answer) => return answer,
            Err(missed) => missed,
        };
        // The key was checked before memory could miss; a closed store is refused first.
        let epoch = missed.epoch;
        self.measured_after(OpKind::Get, missed, async {
            let record = self.engine.read_stored(&self.space, key, epoch).await?;
            decode(live(record.as_ref()))
        })
        .await
    }

    /// The value and metadata stored under `key`, or `None` when there is no live record.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = nadb_core::Store::open("memory://").await?;
    /// store.set("k", vec![b'z'; 2048]).await?;
    /// let r = store.get_with_metadata("k").await?.unwrap();
    /// assert_eq!(r.value.len(), 2048);
    /// assert_eq!(r.meta.codec, nadb_core::Codec::Zstd);
    /// assert!(r.meta.stored_len < 2048);
    /// # Ok::<(), nadb_core::Error>(()) }).unwrap();
    /// ```
    pub async fn get_with_metadata(&self, key: &str) -> Result<Option<Record>> {
        self.measured(OpKind::Get, async {
            self.check_key(key)?;
            let Some(mut record) = self.engine.read_live(&self.space, key).await? else {
                return Ok(None);
            };
            let pipeline = &self.engine.pipeline;
            if pipeline.lookup(&self.space, key).is_some()
                && !pipeline.follows_delete(&self.space, key)
            {
                // A pending overwrite gets the stored record's creation time when it is applied;
                // report that time already.
                if let Some(old) = self.engine.backend.get(&self.space, key).await?
                    && !old.meta.is_expired(record.meta.updated_at)
                {
                    record.meta.created_at = old.meta.created_at.min(record.meta.created_at);
                }
            }
            self.engine.decode(record).map(Some)
        })
        .await
    }

    /// Whether `key` has a live record.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = nadb_core::Store::open("memory://").await?;
    /// store.set("k", "").await?;
    /// assert!(store.exists("k").await?);
    /// # Ok::<(), nadb_core::Error>(()) }).unwrap();
    /// ```
    pub async fn exists(&self, key: &str) -> Result<bool> {
        let live = |r: Option<&Record>| r.is_some_and(|r| self.engine.is_live(r));
        let now = self.measured_now(OpKind::Exists, || {
            self.check_key(key)?;
            Ok(self.engine.read_now(&self.space, key, live))
        });
        let missed = match now {
            Ok(answer) => return answer,
            Err(missed) => missed,
        };
        // The key was checked before memory could miss; a closed store is refused first.
        let epoch = missed.epoch;
        self.measured_after(OpKind::Exists, missed, async {
            let record = self.engine.read_stored(&self.space, key, epoch).await?;
            Ok(live(record.as_ref()))
        })
        .await
    }

    /// Values of several keys, in the order asked; `None` where there is no live record.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = nadb_core::Store::open("memory://").await?;
    /// store.set("a", "1").await?;
    /// let got = store.get_many(&["a", "b"]).await?;
    /// assert_eq!(got[0].as_deref(), Some(&b"1"[..]));
    /// assert_eq!(got[1], None);
    /// # Ok::<(), nadb_core::Error>(()) }).unwrap();
    /// ```
    pub async fn get_many<K: AsRef<str>>(&self, keys: &[K]) -> Result<Vec<Option<Bytes>>> {
        self.measured(OpKind::GetMany, async {
            let mut owned = Vec::with_capacity(keys.len());
            for k in keys {
                self.check_key(k.as_ref())?;
                owned.push(k.as_ref().to_string());
            }
            if !self.engine.cache.is_off() {
                let now = self.engine.clock.now();
                let mut out = Vec::with_capacity(owned.len());
                for k in &owned {
                    out.push(match self.engine.read(&self.space, k).await? {
                        Some(r) if !r.meta.is_expired(now) => Some(self.engine.decode(r)?.value),
                        _ => None,
                    });
                }
                return Ok(out);
            }
            let pending: Vec<_> = owned
                .iter()
                .map(|k| self.engine.pipeline.lookup(&self.space, k))
                .collect();
            let stored: Vec<String> = owned
                .iter()
                .zip(&pending)
                .filter(|(_, p)| p.is_none())
                .map(|(k, _)| k.clone())
                .collect();
            let mut from_backend = if stored.is_empty() {
                Vec::new()
            } else {
                self.engine.backend.get_many(&self.space, &stored).await?
            }
            .into_iter();
            let records = pending
                .into_iter()
                .map(|p| p.unwrap_or_else(|| from_backend.next().flatten()));
            let now = self.engine.clock.now();
            records
                .into_iter()
                .map(|r| match r.filter(|r| !r.meta.is_expired(now)) {
                    Some(r) => self.engine.decode(r).map(|r| Some(r.value)),
                    None => Ok(None),
                })
                .collect()
        })
        .await
    }

    /// How long `key` has left: `None` when there is no live record.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use nadb_core::KeyTtl;
    /// let store = nadb_core::Store::open("memory://").await?;
    /// store.set("k", "v").await?;
    /// assert_eq!(store.ttl("k").await?, Some(KeyTtl::Never));
    /// # Ok::<(), nadb_core::Error>(()) }).unwrap();
    /// ```
    pub async fn ttl(&self, key: &str) -> Result<Option<KeyTtl>> {
        self.measured(OpKind::Ttl, async {
            self.check_key(key)?;
            let Some(r) = self.engine.read(&self.space, key).await? else {
                return Ok(None);
            };
            let now = self.engine.clock.now();
            Ok(match r.meta.expires_at {
                None => Some(KeyTtl::Never),
                Some(at) if at > now => Some(KeyTtl::Remaining(at.saturating_since(now))),
                Some(_) => None,
            })
        })
        .await
    }
}

impl Engine {
    /// The newest record under `key` — pending or stored — expired or not.
    pub(crate) async fn read(&self, space: &Space, key: &str) -> Result<Option<Record>> {
        self.read_with(space, key, |r| r.cloned()).await
    }

    /// `f` of the newest record under `key` (pending, cached, or stored), expired or not.
    pub(crate) async fn read_with<T>(
        &self,
        space: &Space,
        key: &str,
        f: impl Fn(Option<&Record>) -> T,
    ) -> Result<T> {
        match self.read_now(space, key, &f) {
            Lookup::Hit(t) => Ok(t),
            Lookup::Miss(epoch) => Ok(f(self.read_stored(space, key, epoch).await?.as_ref())),
        }
    }

    /// `f` of the newest record under `key` when memory has it (pending or cached), expired
    /// or not; otherwise the cache epoch to pass to [`Engine::read_stored`].
    pub(crate) fn read_now<T>(
        &self,
        space: &Space,
        key: &str,
        f: impl Fn(Option<&Record>) -> T,
    ) -> Lookup<T> {
        if let Some(t) = self.pipeline.view(space, key, &f) {
            return Lookup::Hit(t);
        }
        self.cache.view(space, key, f)
    }

    /// The record the backend stores under `key`, cached unless a batch was applied since
    /// `epoch` (from [`Engine::read_now`]).
    pub(crate) async fn read_stored(
        &self,
        space: &Space,
        key: &str,
        epoch: u64,
    ) -> Result<Option<Record>> {
        let record = self.backend.get(space, key).await?;
        self.cache.fill(space, key, &record, epoch);
        Ok(record)
    }

    /// Whether `record` is live at the clock's current time.
    #[inline]
    pub(crate) fn is_live(&self, record: &Record) -> bool {
        // The clock is read only for records that can expire.
        record.meta.expires_at.is_none() || !record.meta.is_expired(self.clock.now())
    }

    /// The newest record under `key` if it is live at the clock's current time.
    pub(crate) async fn read_live(&self, space: &Space, key: &str) -> Result<Option<Record>> {
        self.read_with(space, key, |r| r.filter(|r| self.is_live(r)).cloned())
            .await
    }

    /// Turns a stored record into the caller's value.
    pub(crate) fn decode(&self, mut record: Record) -> Result<Record> {
        record.value = self.decode_parts(record.value, record.meta.codec, record.meta.value_len)?;
        Ok(record)
    }

    /// Turns a stored value into the caller's value.
    pub(crate) fn decode_parts(
        &self,
        stored: Bytes,
        codec: Codec,
        value_len: u64,
    ) -> Result<Bytes> {
        let stored_len = stored.len() as u64;
        let value = decode_value(codec, stored, value_len)?;
        if codec == Codec::Raw {
            Metrics::add(&self.metrics.raw_bytes_read, stored_len);
        } else {
            Metrics::add(&self.metrics.stored_bytes_read, stored_len);
            Metrics::add(&self.metrics.value_bytes_read, value_len);
        }
        Ok(value)
    }
}
