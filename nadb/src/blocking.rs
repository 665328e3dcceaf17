//! A synchronous [`Store`] for callers without an async runtime.
//!
//! It owns a small tokio runtime (one worker thread, which also runs the store's flusher and
//! sweeper) and blocks on the async store's methods, which it mirrors one for one. Handles are
//! cheap to clone and may be used from many threads at once; [`Store::with_space`] gives a
//! handle on another space that shares the runtime. Calling it from inside an async runtime
//! (a `spawn_blocking` closure included) is refused with [`Error::Config`] rather than
//! deadlocking. Dropping the last handle closes the store (flushing what is buffered), also
//! when the drop happens inside an async runtime: the close then runs on a thread of its own,
//! which the drop waits for.
//!
//! ```
//! let store = nadb::blocking::Store::open("memory://")?;
//! store.set("k", "v")?;
//! assert_eq!(store.get("k")?.as_deref(), Some(&b"v"[..]));
//! store.close()?;
//! # Ok::<(), nadb::Error>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use nadb_core::{
    BackendInfo, Cas, DeadLetter, DlqSummary, Error, KeyTtl, Page, Record, Result, SetOptions,
    Space, Stats, StorageBackend, StoreBuilder, TRANSACTION_ATTEMPTS, TagMode,
};

/// The synchronous store; see the [module docs](self).
#[derive(Clone)]
pub struct Store {
    inner: nadb_core::Store,
    owner: Arc<Owner>,
}

/// What every handle of one blocking store shares; the last handle's drop closes the store.
struct Owner {
    store: nadb_core::Store,
    /// Always `Some` until dropped: the drop may have to move it to another thread.
    runtime: Option<tokio::runtime::Runtime>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("blocking::Store")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(Error::Config {
            reason: "nadb::blocking used inside an async runtime; use the async Store there".into(),
        });
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("nadb-blocking")
        .enable_all()
        .build()
        .map_err(|e| Error::Config {
            reason: format!("cannot start the runtime of the blocking store: {e}"),
        })
}

impl Store {
    /// Opens the store a URL names, as [`nadb::open`](crate::open) does.
    pub fn open(url: &str) -> Result<Store> {
        let runtime = runtime()?;
        let inner = runtime.block_on(crate::open(url))?;
        Ok(Store::owning(inner, runtime))
    }

    /// Builds a store from a configured builder.
    ///
    /// ```
    /// use nadb::{FlushPolicy, MemoryBackend};
    /// let store = nadb::blocking::Store::build(
    ///     nadb::Store::builder(MemoryBackend::new()).flush_policy(FlushPolicy::Manual),
    /// )?;
    /// store.set("k", "v")?;
    /// store.flush()?;
    /// # Ok::<(), nadb::Error>(())
    /// ```
    pub fn build(builder: StoreBuilder) -> Result<Store> {
        let runtime = runtime()?;
        let inner = runtime.block_on(builder.build())?;
        Ok(Store::owning(inner, runtime))
    }

    fn owning(inner: nadb_core::Store, runtime: tokio::runtime::Runtime) -> Store {
        Store {
            owner: Arc::new(Owner {
                store: inner.clone(),
                runtime: Some(runtime),
            }),
            inner,
        }
    }

    fn run<T>(&self, fut: impl Future<Output = Result<T>>) -> Result<T> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(Error::Config {
                reason: "nadb::blocking used inside an async runtime; use the async Store there"
                    .into(),
            });
        }
        match &self.owner.runtime {
            Some(rt) => rt.block_on(fut),
            None => Err(Error::Closed),
        }
    }

    /// The async store underneath.
    pub fn as_async(&self) -> &nadb_core::Store {
        &self.inner
    }

    /// A blocking handle's space.
    pub fn space(&self) -> &Space {
        self.inner.space()
    }

    /// A handle on another space of the same store, sharing its runtime; see
    /// [`nadb::Store::with_space`](nadb_core::Store::with_space).
    ///
    /// ```
    /// let a = nadb::blocking::Store::open("memory://")?;
    /// let b = a.with_space(nadb::Space::new("other", "ns")?)?;
    /// a.set("k", "in a")?;
    /// assert_eq!(b.get("k")?, None);
    /// drop(a); // b keeps the store open
    /// b.set("k", "in b")?;
    /// # Ok::<(), nadb::Error>(())
    /// ```
    pub fn with_space(&self, space: Space) -> Result<Store> {
        let inner = self.run(self.inner.with_space(space))?;
        Ok(Store {
            inner,
            owner: self.owner.clone(),
        })
    }

    /// See [`nadb::Store::backend_info`](nadb_core::Store::backend_info).
    ///
    /// ```
    /// let store = nadb::blocking::Store::open("memory://")?;
    /// assert_eq!(store.backend_info().scheme, "memory");
    /// # Ok::<(), nadb::Error>(())
    /// ```
    pub fn backend_info(&self) -> &BackendInfo {
        self.inner.backend_info()
    }

    /// See [`nadb::Store::backend`](nadb_core::Store::backend).
    pub fn backend(&self) -> &Arc<dyn StorageBackend> {
        self.inner.backend()
    }

    /// See [`nadb::Store::set`](nadb_core::Store::set).
    pub fn set(&self, key: &str, value: impl Into<Bytes>) -> Result<()> {
        self.run(self.inner.set(key, value))
    }
    /// See [`nadb::Store::set_with`](nadb_core::Store::set_with).
    pub fn set_with(&self, key: &str, value: impl Into<Bytes>, opts: &SetOptions) -> Result<()> {
        self.run(self.inner.set_with(key, value, opts))
    }
    /// See [`nadb::Store::set_many`](nadb_core::Store::set_many).
    pub fn set_many<I, K, V>(&self, items: I) -> Result<()>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: Into<Bytes>,
    {
        self.run(self.inner.set_many(items))
    }
    /// See [`nadb::Store::set_many_with`](nadb_core::Store::set_many_with).
    ///
    /// ```
    /// let store = nadb::blocking::Store::open("memory://")?;
    /// let opts = nadb::SetOptions::new().tags(["batch"]);
    /// store.set_many_with([("a", "1"), ("b", "2")], &opts)?;
    /// assert_eq!(store.list_tags()?["batch"], 2);
    /// # Ok::<(), nadb::Error>(())
    /// ```
    pub fn set_many_with<I, K, V>(&self, items: I, opts: &SetOptions) -> Result<()>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: Into<Bytes>,
    {
        self.run(self.inner.set_many_with(items, opts))
    }
    /// See [`nadb::Store::get`](nadb_core::Store::get).
    pub fn get(&self, key: &str) -> Result<Option<Bytes>> {
        self.run(self.inner.get(key))
    }
    /// See [`nadb::Store::get_with_metadata`](nadb_core::Store::get_with_metadata).
    pub fn get_with_metadata(&self, key: &str) -> Result<Option<Record>> {
        self.run(self.inner.get_with_metadata(key))
    }
    /// See [`nadb::Store::exists`](nadb_core::Store::exists).
    pub fn exists(&self, key: &str) -> Result<bool> {
        self.run(self.inner.exists(key))
    }
    /// See [`nadb::Store::get_many`](nadb_core::Store::get_many).
    pub fn get_many<K: AsRef<str>>(&self, keys: &[K]) -> Result<Vec<Option<Bytes>>> {
        self.run(self.inner.get_many(keys))
    }
    /// See [`nadb::Store::delete`](nadb_core::Store::delete).
    pub fn delete(&self, key: &str) -> Result<bool> {
        self.run(self.inner.delete(key))
    }
    /// See [`nadb::Store::delete_many`](nadb_core::Store::delete_many).
    pub fn delete_many<K: AsRef<str>>(&self, keys: &[K]) -> Result<u64> {
        self.run(self.inner.delete_many(keys))
    }
    /// See [`nadb::Store::scan`](nadb_core::Store::scan).
    pub fn scan(&self, prefix: &str, cursor: Option<&str>, limit: usize) -> Result<Page<String>> {
        self.run(self.inner.scan(prefix, cursor, limit))
    }
    /// See [`nadb::Store::len`](nadb_core::Store::len).
    pub fn len(&self) -> Result<u64> {
        self.run(self.inner.len())
    }
    /// See [`nadb::Store::is_empty`](nadb_core::Store::is_empty).
    pub fn is_empty(&self) -> Result<bool> {
        self.run(self.inner.is_empty())
    }
    /// See [`nadb::Store::clear`](nadb_core::Store::clear).
    pub fn clear(&self) -> Result<u64> {
        self.run(self.inner.clear())
    }
    /// See [`nadb::Store::query_by_tags`](nadb_core::Store::query_by_tags).
    pub fn query_by_tags<T: AsRef<str>>(
        &self,
        tags: &[T],
        mode: TagMode,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<String>> {
        self.run(self.inner.query_by_tags(tags, mode, cursor, limit))
    }
    /// See [`nadb::Store::list_tags`](nadb_core::Store::list_tags).
    pub fn list_tags(&self) -> Result<BTreeMap<String, u64>> {
        self.run(self.inner.list_tags())
    }
    /// See [`nadb::Store::delete_by_tag`](nadb_core::Store::delete_by_tag).
    pub fn delete_by_tag(&self, tag: &str) -> Result<u64> {
        self.run(self.inner.delete_by_tag(tag))
    }
    /// See [`nadb::Store::ttl`](nadb_core::Store::ttl).
    pub fn ttl(&self, key: &str) -> Result<Option<KeyTtl>> {
        self.run(self.inner.ttl(key))
    }
    /// See [`nadb::Store::touch`](nadb_core::Store::touch).
    pub fn touch(&self, key: &str, ttl: Duration) -> Result<bool> {
        self.run(self.inner.touch(key, ttl))
    }
    /// See [`nadb::Store::persist`](nadb_core::Store::persist).
    pub fn persist(&self, key: &str) -> Result<bool> {
        self.run(self.inner.persist(key))
    }
    /// See [`nadb::Store::set_if_absent`](nadb_core::Store::set_if_absent).
    pub fn set_if_absent(
        &self,
        key: &str,
        value: impl Into<Bytes>,
        opts: &SetOptions,
    ) -> Result<bool> {
        self.run(self.inner.set_if_absent(key, value, opts))
    }
    /// See [`nadb::Store::compare_and_swap`](nadb_core::Store::compare_and_swap).
    pub fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<u64>,
        value: impl Into<Bytes>,
        opts: &SetOptions,
    ) -> Result<Cas> {
        self.run(self.inner.compare_and_swap(key, expected, value, opts))
    }
    /// See [`nadb::Store::incr`](nadb_core::Store::incr).
    pub fn incr(&self, key: &str, delta: i64) -> Result<i64> {
        self.run(self.inner.incr(key, delta))
    }
    /// See [`nadb::Store::decr`](nadb_core::Store::decr).
    pub fn decr(&self, key: &str, delta: i64) -> Result<i64> {
        self.run(self.inner.decr(key, delta))
    }
    /// See [`nadb::Store::set_json`](nadb_core::Store::set_json).
    pub fn set_json<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<()> {
        self.run(self.inner.set_json(key, value))
    }
    /// See [`nadb::Store::set_json_with`](nadb_core::Store::set_json_with).
    ///
    /// ```
    /// let store = nadb::blocking::Store::open("memory://")?;
    /// let opts = nadb::SetOptions::new().ttl(std::time::Duration::from_secs(60));
    /// store.set_json_with("cfg", &vec![1, 2], &opts)?;
    /// assert_eq!(store.get_json::<Vec<i32>>("cfg")?, Some(vec![1, 2]));
    /// # Ok::<(), nadb::Error>(())
    /// ```
    pub fn set_json_with<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        opts: &SetOptions,
    ) -> Result<()> {
        self.run(self.inner.set_json_with(key, value, opts))
    }
    /// See [`nadb::Store::get_json`](nadb_core::Store::get_json).
    pub fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        self.run(self.inner.get_json(key))
    }
    /// Starts a transaction; see [`nadb::Store::begin`](nadb_core::Store::begin).
    ///
    /// ```
    /// let store = nadb::blocking::Store::open("memory://")?;
    /// let mut tx = store.begin();
    /// tx.set("a", "1")?;
    /// assert_eq!(store.get("a")?, None, "invisible before commit");
    /// tx.commit()?;
    /// assert!(store.exists("a")?);
    /// # Ok::<(), nadb::Error>(())
    /// ```
    pub fn begin(&self) -> Transaction<'_> {
        Transaction {
            inner: self.inner.begin(),
            store: self,
        }
    }
    /// Runs `body` in a transaction and commits it, running the body again when the commit
    /// meets a conflict, as [`nadb::Store::transaction`](nadb_core::Store::transaction) does.
    /// An error from `body` rolls back and is returned.
    ///
    /// ```
    /// let store = nadb::blocking::Store::open("memory://")?;
    /// store.transaction(|tx| {
    ///     tx.set("a", "1")?;
    ///     tx.set("b", "2")
    /// })?;
    /// assert_eq!(store.len()?, 2);
    /// # Ok::<(), nadb::Error>(())
    /// ```
    pub fn transaction<T>(
        &self,
        mut body: impl FnMut(&mut Transaction<'_>) -> Result<T>,
    ) -> Result<T> {
        let mut attempt = 0;
        loop {
            let mut tx = self.begin();
            let out = body(&mut tx)?;
            match tx.commit() {
                Err(Error::Conflict { .. }) if attempt + 1 < TRANSACTION_ATTEMPTS => {
                    std::thread::sleep(self.inner.conflict_pause(attempt));
                    attempt += 1;
                }
                committed => return committed.map(|()| out),
            }
        }
    }
    /// See [`nadb::Store::stats`](nadb_core::Store::stats).
    pub fn stats(&self) -> Result<Stats> {
        self.run(self.inner.stats())
    }
    /// See [`nadb::Store::sweep_expired`](nadb_core::Store::sweep_expired).
    pub fn sweep_expired(&self) -> Result<u64> {
        self.run(self.inner.sweep_expired())
    }
    /// See [`nadb::Store::dlq`](nadb_core::Store::dlq).
    pub fn dlq(&self) -> Vec<DeadLetter> {
        self.inner.dlq()
    }
    /// See [`nadb::Store::dlq_summary`](nadb_core::Store::dlq_summary).
    pub fn dlq_summary(&self) -> DlqSummary {
        self.inner.dlq_summary()
    }
    /// See [`nadb::Store::retry_dlq`](nadb_core::Store::retry_dlq).
    pub fn retry_dlq(&self) -> Result<u64> {
        self.run(self.inner.retry_dlq())
    }
    /// See [`nadb::Store::clear_dlq`](nadb_core::Store::clear_dlq).
    pub fn clear_dlq(&self) -> u64 {
        self.inner.clear_dlq()
    }
    /// See [`nadb::Store::flush`](nadb_core::Store::flush).
    pub fn flush(&self) -> Result<()> {
        self.run(self.inner.flush())
    }
    /// See [`nadb::Store::compact`](nadb_core::Store::compact).
    pub fn compact(&self) -> Result<()> {
        self.run(self.inner.compact())
    }
    /// See [`nadb::Store::close`](nadb_core::Store::close).
    pub fn close(&self) -> Result<()> {
        self.run(self.inner.close())
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        if tokio::runtime::Handle::try_current().is_err() {
            self.close_and_end();
            return;
        }
        // Inside an async runtime neither the close nor the end of our runtime (which waits
        // for its threads) may run on this thread, so both run on a thread of their own.
        let closed = std::thread::scope(|scope| {
            std::thread::Builder::new()
                .name("nadb-blocking-close".into())
                .spawn_scoped(scope, || self.close_and_end())
                .map(|closer| closer.join())
        });
        match closed {
            Ok(Ok(())) => {}
            Ok(Err(_)) => tracing::error!("closing a dropped blocking store panicked"),
            Err(e) => tracing::error!(
                error = %e,
                "no thread to close a blocking store dropped inside an async runtime; its buffered writes are lost"
            ),
        }
        // Left only if the closing thread never ran: end it without waiting.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Owner {
    /// Closes the store (flushing it) and ends its runtime; on a thread outside any async
    /// runtime.
    fn close_and_end(&mut self) {
        if let Some(runtime) = self.runtime.take()
            && let Err(e) = runtime.block_on(self.store.close())
        {
            tracing::error!(error = %e, "closing a dropped blocking store failed");
        }
    }
}

/// A transaction of the [blocking store](Store): reads block, writes are buffered in it.
pub struct Transaction<'s> {
    inner: nadb_core::Transaction,
    store: &'s Store,
}

impl fmt::Debug for Transaction<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl Transaction<'_> {
    /// See [`nadb::Transaction::get`](nadb_core::Transaction::get).
    pub fn get(&mut self, key: &str) -> Result<Option<Bytes>> {
        let store = self.store;
        store.run(self.inner.get(key))
    }
    /// See [`nadb::Transaction::set`](nadb_core::Transaction::set).
    pub fn set(&mut self, key: &str, value: impl Into<Bytes>) -> Result<()> {
        self.inner.set(key, value)
    }
    /// See [`nadb::Transaction::set_with`](nadb_core::Transaction::set_with).
    pub fn set_with(
        &mut self,
        key: &str,
        value: impl Into<Bytes>,
        opts: &SetOptions,
    ) -> Result<()> {
        self.inner.set_with(key, value, opts)
    }
    /// See [`nadb::Transaction::delete`](nadb_core::Transaction::delete).
    pub fn delete(&mut self, key: &str) -> Result<()> {
        self.inner.delete(key)
    }
    /// See [`nadb::Transaction::exists`](nadb_core::Transaction::exists).
    pub fn exists(&mut self, key: &str) -> Result<bool> {
        let store = self.store;
        store.run(self.inner.exists(key))
    }
    /// See [`nadb::Transaction::len`](nadb_core::Transaction::len).
    pub fn len(&self) -> usize {
        self.inner.len()
    }
    /// See [`nadb::Transaction::is_empty`](nadb_core::Transaction::is_empty).
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }
    /// See [`nadb::Transaction::commit`](nadb_core::Transaction::commit).
    pub fn commit(self) -> Result<()> {
        self.store.run(self.inner.commit())
    }
    /// See [`nadb::Transaction::rollback`](nadb_core::Transaction::rollback).
    pub fn rollback(self) {
        self.inner.rollback()
    }
}
