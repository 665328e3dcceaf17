//! # nadb-backend-redis
//!
//! The Redis backend for nadb: `redis://HOST:PORT/DB` for one server,
//! `redis+cluster://H1:P1,H2:P2,…` for a Redis Cluster (seed nodes; the rest are discovered).
//! `user:password@` may precede the host(s); `?prefix=ROOT` makes every key start with `ROOT`
//! instead of `nadb`, so several applications (or test runs) can share one server.
//!
//! ```no_run
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use nadb_backend_redis as _; // links the `redis://` scheme
//! let store = nadb_core::Store::open("redis://127.0.0.1:6379/0").await?;
//! store.set("k", "v").await?;
//! store.close().await?;
//! # Ok::<(), nadb_core::Error>(()) }).unwrap();
//! ```
//!
//! ## Data layout
//!
//! See the `layout` module's table: a space's records, metadata, key index, expiry index and
//! tag sets all share the hash tag `{DB:NS}`, so a space lives on one cluster slot. Values are
//! stored as the store hands them over (zstd-compressed above the store's threshold), so
//! `redis-cli GET 'nadb:{DB:NS}:r:KEY'` shows an uncompressed value as written.
//!
//! ## How it works
//!
//! - **Batches** run as one Lua script on the space's slot: checks, puts, deletes, tag sets,
//!   key and expiry indexes change together or not at all. A retry after a lost reply is
//!   recognised (the batch's last put is already there with its version) and not applied twice.
//!   So a batch whose last put is a record already stored, same version and time, counts as
//!   applied whole: the store never builds one (a write that may have landed is sent again in
//!   a batch of its own), and a caller applying batches by hand must not either.
//! - **TTL** is native: a record's value key expires on the server a minute after
//!   `expires_at − updated_at` milliseconds have passed since it was written. The store hides
//!   expired records by its own clock from the moment they expire, so the server only reclaims
//!   memory; a relative expiry with a grace period means a server whose clock disagrees with
//!   the application's (or a mock clock in tests) never drops a live record. Metadata and tag-set members of a record the server expired are pruned when a
//!   tag query meets them and by the store's sweeper.
//! - **Tag queries** combine the tag sets on the server (`ZINTERSTORE`/`ZUNIONSTORE` of the
//!   sets, paged with `ZRANGEBYLEX`), never `KEYS` or `SCAN`. **Scans** page a per-space sorted
//!   set of keys with `ZRANGEBYLEX`.
//! - **Conditional writes** are checks inside the batch script, so compare-and-swap and
//!   `incr` are atomic across processes.
//! - **Connections** reconnect by themselves (`ConnectionManager`, the cluster client follows
//!   `MOVED`/`ASK` and refreshes its slot map). Lost connections, timeouts, `TRYAGAIN`,
//!   `CLUSTERDOWN`, `LOADING`, `BUSY` and `READONLY` (a failover) are temporary errors, which
//!   the store's write pipeline retries.
//!
//! ## Sharding and durability
//!
//! One space lives on one slot, so one space is served by one primary: scale out by using many
//! spaces (`Store::with_space`), which spread over the cluster. A write is acknowledged when
//! the primary ran it; [`sync`](nadb_core::StorageBackend::sync) adds nothing. What survives a
//! crash is what the server's persistence keeps: with `appendonly yes` and `appendfsync
//! always` every acknowledged write; with the default `everysec` up to a second of writes. A
//! failover to a replica loses what the replica had not received (Redis replication is
//! asynchronous).
#![deny(missing_docs)]

mod conn;
mod index;
mod layout;
mod meta;
mod scripts;

use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use futures::future::BoxFuture;
use nadb_core::registry::Registration;
use nadb_core::{
    BackendInfo, Batch, Capabilities, Error, Expect, Meta, MetadataIndex, Op, Record, Result,
    Space, StorageBackend,
};
use parking_lot::Mutex;
use redis::Value;

use crate::conn::{Conn, Target, redis_error};
use crate::layout::{SpaceKeys, spaces_key};
use crate::scripts::{APPLY_SCRIPT, GET_SCRIPT, SCAN_SCRIPT};

/// The largest value Redis accepts in one argument (`proto-max-bulk-len`'s default).
const MAX_VALUE: u64 = 512 * 1024 * 1024;
/// Native expiries longer than this (about 100 years) are left to the sweeper.
const MAX_NATIVE_TTL_MS: u64 = 100 * 365 * 24 * 3600 * 1000;
/// How long after the store considers a record expired the server drops its value: the store
/// hides expired records by its own clock, so the server only reclaims memory, and a server
/// clock running ahead of the application's (or a test's mock clock) never loses a live record.
const EXPIRY_GRACE_MS: u64 = 60_000;
/// Keys per read script call.
const READ_CHUNK: usize = 256;
/// How often a batch is re-planned when another writer keeps changing its keys' tags.
const STALE_ATTEMPTS: usize = 16;

/// A store on a Redis server or cluster. Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct RedisBackend(Arc<Inner>);

struct Inner {
    info: BackendInfo,
    conn: Conn,
    url: String,
    /// What every key starts with.
    root: String,
    closed: AtomicBool,
    /// Spaces this process already put in the registry of spaces.
    registered: Mutex<HashSet<Space>>,
}

impl fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBackend")
            .field("url", &self.0.url)
            .finish_non_exhaustive()
    }
}

/// One write the apply script performs.
enum WriteOp<'a> {
    Put(&'a str, &'a Record),
    Delete(&'a str),
    /// Drops the metadata and tag memberships of a record whose value the server expired,
    /// if the record still has this version.
    Prune(&'a str, u64),
}

impl WriteOp<'_> {
    fn key(&self) -> &str {
        match self {
            WriteOp::Put(k, _) | WriteOp::Delete(k) | WriteOp::Prune(k, _) => k,
        }
    }
}

impl RedisBackend {
    /// Connects to `redis://…` or `redis+cluster://…`.
    ///
    /// A malformed URL is [`Error::InvalidUrl`]; a server that does not answer is a temporary
    /// [`Error::Backend`] naming the URL (password masked).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let err = nadb_backend_redis::RedisBackend::open("redis+cluster://").await.unwrap_err();
    /// assert!(matches!(err, nadb_core::Error::InvalidUrl { .. }));
    /// # });
    /// ```
    pub async fn open(url: &str) -> Result<RedisBackend> {
        let (scheme, rest) = url.split_once("://").ok_or_else(|| Error::InvalidUrl {
            url: nadb_core::error::redact_url(url),
            reason: "expected redis://HOST:PORT/DB or redis+cluster://H1:P1,H2:P2".into(),
        })?;
        let (rest, root) = match rest.split_once('?') {
            Some((rest, query)) => match query.strip_prefix("prefix=") {
                Some(root) if layout::valid_root(root) => (rest, root.to_string()),
                _ => {
                    return Err(Error::InvalidUrl {
                        url: nadb_core::error::redact_url(url),
                        reason: "the only option is ?prefix=ROOT (1 to 64 of A-Z a-z 0-9 _ . -)"
                            .into(),
                    });
                }
            },
            None => (rest, layout::DEFAULT_ROOT.to_string()),
        };
        let target = Target::parse(scheme, rest, url)?;
        let conn = Conn::open(&target, url).await?;
        Ok(RedisBackend(Arc::new(Inner {
            info: BackendInfo {
                scheme: scheme.to_string(),
                capabilities: Capabilities {
                    persistent: true,
                    atomic_batch: true,
                    native_ttl: true,
                    ordered_scan: true,
                    multi_process: true,
                    max_value_size: Some(MAX_VALUE),
                },
            },
            conn,
            url: nadb_core::error::redact_url(url),
            root,
            closed: AtomicBool::new(false),
            registered: Mutex::new(HashSet::new()),
        })))
    }

    fn keys(&self, space: &Space) -> SpaceKeys {
        SpaceKeys::new(&self.0.root, space)
    }

    fn conn(&self) -> Result<Conn> {
        if self.0.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        Ok(self.0.conn.clone())
    }

    fn corrupt(space: &Space, reason: &str) -> Error {
        Error::Corrupt {
            location: format!("redis space {space}"),
            offset: None,
            reason: reason.to_string(),
        }
    }

    /// Records (`full`) or metadata of `keys`, in order.
    async fn read(
        &self,
        space: &Space,
        keys: &[String],
        full: bool,
    ) -> Result<Vec<Option<(Meta, Option<Bytes>)>>> {
        let mut conn = self.conn()?;
        let sk = self.keys(space);
        let mut out = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(READ_CHUNK) {
            let mut inv = GET_SCRIPT.prepare_invoke();
            inv.key(sk.meta());
            inv.arg(&sk.prefix).arg(if full { "full" } else { "meta" });
            for k in chunk {
                inv.key(sk.record(k));
                inv.arg(k.as_str());
            }
            let reply: Vec<Value> = inv.invoke_async(&mut conn).await.map_err(redis_error)?;
            let per_key = if full { 2 } else { 1 };
            if reply.len() != chunk.len() * per_key {
                return Err(Self::corrupt(
                    space,
                    "unexpected reply shape from the read script",
                ));
            }
            // Values are moved out of the reply, never copied: they can be 64 MiB each.
            let mut items = reply.into_iter();
            for _ in chunk {
                let (m, v) = (items.next(), if full { items.next() } else { None });
                let Some(Value::BulkString(m)) = m else {
                    out.push(None);
                    continue;
                };
                let meta = meta::decode(&m, &|| format!("redis space {space} metadata"))?;
                let value = match v {
                    Some(Value::BulkString(v)) if v.len() as u64 == meta.stored_len => {
                        Some(Bytes::from(v))
                    }
                    Some(Value::BulkString(_)) => {
                        return Err(Self::corrupt(
                            space,
                            "a stored value's length differs from its metadata",
                        ));
                    }
                    Some(_) => {
                        out.push(None);
                        continue;
                    }
                    None => None,
                };
                out.push(Some((meta, value)));
            }
        }
        Ok(out)
    }

    /// Adds `space` to the registry of spaces once per process, before its first write.
    async fn register(&self, space: &Space) -> Result<()> {
        if self.0.registered.lock().contains(space) {
            return Ok(());
        }
        let mut conn = self.conn()?;
        redis::cmd("SADD")
            .arg(spaces_key(&self.0.root))
            .arg(SpaceKeys::registry_name(space))
            .query_async::<()>(&mut conn)
            .await
            .map_err(redis_error)?;
        self.0.registered.lock().insert(space.clone());
        Ok(())
    }

    /// Every space in the registry, empty or not.
    async fn registered_spaces(&self) -> Result<Vec<Space>> {
        let mut conn = self.conn()?;
        let names: Vec<String> = redis::cmd("SMEMBERS")
            .arg(spaces_key(&self.0.root))
            .query_async(&mut conn)
            .await
            .map_err(redis_error)?;
        let mut spaces = Vec::with_capacity(names.len());
        for n in names {
            let parsed = n
                .split_once('/')
                .and_then(|(db, ns)| Space::new(db, ns).ok());
            match parsed {
                Some(s) => spaces.push(s),
                None => {
                    tracing::warn!(member = %n, "ignoring a malformed entry in the set of spaces")
                }
            }
        }
        spaces.sort();
        Ok(spaces)
    }

    /// Runs checks and writes on one space as one script.
    async fn write(
        &self,
        space: &Space,
        checks: &[(&str, Expect)],
        ops: &[WriteOp<'_>],
    ) -> Result<()> {
        if checks.is_empty() && ops.is_empty() {
            return Ok(());
        }
        if ops.iter().any(|o| matches!(o, WriteOp::Put(..))) {
            self.register(space).await?;
        }
        let mut conn = self.conn()?;
        let sk = self.keys(space);
        // Every key the batch names: the written ones first (their old tags may be read).
        let mut seen = HashSet::new();
        let mut touched: Vec<&str> = ops
            .iter()
            .map(WriteOp::key)
            .filter(|k| seen.insert(*k))
            .collect();
        let written = touched.len();
        touched.extend(checks.iter().map(|c| c.0).filter(|k| seen.insert(*k)));
        let new_tags: BTreeSet<&str> = ops
            .iter()
            .filter_map(|op| match op {
                WriteOp::Put(_, r) => Some(r.meta.tags.iter().map(String::as_str)),
                _ => None,
            })
            .flatten()
            .collect();
        // The last put of a key the batch does not touch again: finding its version stored
        // means this batch already landed (a retry after a lost reply). Batches with checks
        // are not probed: re-running one must report the conflict.
        let mut later = HashSet::new();
        let mut probe = None;
        for op in ops.iter().rev().filter(|_| checks.is_empty()) {
            if let WriteOp::Put(k, r) = op
                && !later.contains(k)
            {
                probe = Some((*k, r.meta.version, r.meta.updated_at.as_millis()));
                break;
            }
            later.insert(op.key());
        }
        for attempt in 0..STALE_ATTEMPTS {
            let mut tags: BTreeSet<String> = new_tags.iter().map(|t| t.to_string()).collect();
            // The first attempt guesses the old tags are among the new ones (true for new
            // keys and for overwrites that keep their tags): one round trip. When the script
            // answers `stale`, the old tags are read first.
            if attempt > 0 && written > 0 {
                let old: Vec<Option<Vec<u8>>> = redis::cmd("HMGET")
                    .arg(sk.meta())
                    .arg(&touched[..written])
                    .query_async(&mut conn)
                    .await
                    .map_err(redis_error)?;
                for m in old.iter().flatten() {
                    tags.extend(meta::raw_tags(m).map(|t| String::from_utf8_lossy(t).into_owned()));
                }
            }
            // One command buffer for every argument (a script invocation would allocate one
            // per argument, ten per put).
            let fixed = sk.fixed();
            let mut cmd = redis::cmd("EVALSHA");
            cmd.arg(APPLY_SCRIPT.get_hash())
                .arg(fixed.len() + touched.len() + tags.len());
            for k in fixed {
                cmd.arg(k);
            }
            for k in &touched {
                cmd.arg(sk.record(k));
            }
            for t in &tags {
                cmd.arg(sk.tag(t));
            }
            cmd.arg(&sk.prefix).arg(tags.len());
            for t in &tags {
                cmd.arg(t.as_str());
            }
            match probe {
                Some((k, v, updated)) => cmd.arg(k).arg(v).arg(updated),
                None => cmd.arg("").arg("").arg(""),
            };
            cmd.arg(checks.len());
            for (k, expect) in checks {
                cmd.arg(*k);
                match expect {
                    Expect::Absent => cmd.arg(""),
                    Expect::Version(v) => cmd.arg(*v),
                };
            }
            cmd.arg(ops.len());
            for op in ops {
                match op {
                    WriteOp::Put(k, r) => {
                        let m = &r.meta;
                        let plain = m.expires_at.is_none() && m.tags.is_empty();
                        // Reads check the value against the stored length, so that length is
                        // the value's, whatever an op pushed by hand claims.
                        let stored_len = r.value.len() as u64;
                        let encoded = if m.stored_len == stored_len {
                            meta::encode(m)
                        } else {
                            meta::encode(&Meta {
                                stored_len,
                                ..m.clone()
                            })
                        };
                        cmd.arg(if plain { "p" } else { "P" })
                            .arg(*k)
                            .arg(&r.value[..])
                            .arg(stored_len)
                            .arg(m.updated_at.as_millis())
                            .arg(encoded);
                        if !plain {
                            let px = match m.expires_at {
                                Some(e) if e > m.updated_at => {
                                    let ttl = e.as_millis() - m.updated_at.as_millis();
                                    (ttl <= MAX_NATIVE_TTL_MS).then_some(ttl + EXPIRY_GRACE_MS)
                                }
                                _ => None,
                            };
                            match px {
                                Some(px) => cmd.arg(px),
                                None => cmd.arg(""),
                            };
                            match m.expires_at {
                                Some(e) => cmd.arg(e.as_millis()),
                                None => cmd.arg(""),
                            };
                            cmd.arg(m.tags.len());
                            for t in m.tags.iter() {
                                cmd.arg(t.as_str());
                            }
                        }
                    }
                    WriteOp::Delete(k) => {
                        cmd.arg("d").arg(*k);
                    }
                    WriteOp::Prune(k, v) => {
                        cmd.arg("x").arg(*k).arg(*v);
                    }
                }
            }
            let reply: Value = match cmd.query_async(&mut conn).await {
                Err(e)
                    if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) =>
                {
                    APPLY_SCRIPT
                        .load_async(&mut conn)
                        .await
                        .map_err(redis_error)?;
                    cmd.query_async(&mut conn).await.map_err(redis_error)?
                }
                other => other.map_err(redis_error)?,
            };
            match reply {
                Value::BulkString(s) if s == b"ok" || s == b"applied" => return Ok(()),
                Value::SimpleString(s) if s == "ok" || s == "applied" => return Ok(()),
                Value::Okay => return Ok(()),
                Value::BulkString(s) if s == b"stale" => continue,
                Value::SimpleString(s) if s == "stale" => continue,
                Value::Array(items) if items.len() == 2 => {
                    return Err(Error::Conflict {
                        reason: "a batch check did not hold".into(),
                    });
                }
                _ => {
                    return Err(Self::corrupt(
                        space,
                        "unexpected reply from the apply script",
                    ));
                }
            }
        }
        Err(Error::backend(
            "redis",
            true,
            "other writers kept changing the tags of this batch's keys",
        ))
    }
}

#[async_trait]
impl StorageBackend for RedisBackend {
    fn info(&self) -> &BackendInfo {
        &self.0.info
    }

    async fn get(&self, space: &Space, key: &str) -> Result<Option<Record>> {
        Ok(self
            .get_many(space, &[key.to_string()])
            .await?
            .into_iter()
            .next()
            .flatten())
    }

    async fn get_many(&self, space: &Space, keys: &[String]) -> Result<Vec<Option<Record>>> {
        Ok(self
            .read(space, keys, true)
            .await?
            .into_iter()
            .map(|r| r.and_then(|(m, v)| v.map(|v| Record::new(v, m))))
            .collect())
    }

    async fn get_meta_many(&self, space: &Space, keys: &[String]) -> Result<Vec<Option<Meta>>> {
        Ok(self
            .read(space, keys, false)
            .await?
            .into_iter()
            .map(|r| r.map(|(m, _)| m))
            .collect())
    }

    async fn apply(&self, batch: &Batch) -> Result<()> {
        let checks: Vec<(&str, Expect)> = batch
            .checks
            .iter()
            .map(|c| (c.key.as_str(), c.expect))
            .collect();
        let ops: Vec<WriteOp<'_>> = batch
            .ops
            .iter()
            .map(|op| match op {
                Op::Put { key, record } => WriteOp::Put(key, record),
                Op::Delete { key } => WriteOp::Delete(key),
            })
            .collect();
        self.write(&batch.space, &checks, &ops).await
    }

    async fn scan(
        &self,
        space: &Space,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Meta)>> {
        let mut conn = self.conn()?;
        if limit == 0 {
            return Ok(Vec::new());
        }
        let sk = self.keys(space);
        let min: Vec<u8> = match after {
            Some(a) if a >= prefix => [b"(", a.as_bytes()].concat(),
            _ if prefix.is_empty() => b"-".to_vec(),
            _ => [b"[", prefix.as_bytes()].concat(),
        };
        // Every key with the prefix sorts below prefix + 0xFF: no UTF-8 text holds that byte.
        let max: Vec<u8> = if prefix.is_empty() {
            b"+".to_vec()
        } else {
            [b"(", prefix.as_bytes(), b"\xff"].concat()
        };
        let mut inv = SCAN_SCRIPT.prepare_invoke();
        inv.key(sk.keys()).key(sk.meta());
        inv.arg(&sk.prefix)
            .arg(min)
            .arg(max)
            .arg(i64::try_from(limit).unwrap_or(i64::MAX));
        let reply: Vec<Vec<u8>> = inv.invoke_async(&mut conn).await.map_err(redis_error)?;
        let mut out = Vec::with_capacity(reply.len() / 2);
        for pair in reply.chunks_exact(2) {
            let key = String::from_utf8(pair[0].clone())
                .map_err(|_| Self::corrupt(space, "a stored key is not UTF-8"))?;
            let meta = meta::decode(&pair[1], &|| format!("redis space {space} metadata"))?;
            out.push((key, meta));
        }
        Ok(out)
    }

    async fn spaces(&self) -> Result<Vec<Space>> {
        let spaces = self.registered_spaces().await?;
        let mut conn = self.conn()?;
        let mut out = Vec::new();
        for s in spaces {
            let n: u64 = redis::cmd("ZCARD")
                .arg(self.keys(&s).keys())
                .query_async(&mut conn)
                .await
                .map_err(redis_error)?;
            if n > 0 {
                out.push(s);
            }
        }
        Ok(out)
    }

    async fn sync(&self) -> Result<()> {
        // Every write is acknowledged after the server ran it; what it keeps across a crash
        // is the server's persistence setting (see the crate docs).
        self.conn().map(|_| ())
    }

    async fn close(&self) -> Result<()> {
        self.0.closed.store(true, Ordering::Release);
        Ok(())
    }

    fn native_index(&self) -> Option<Arc<dyn MetadataIndex>> {
        Some(Arc::new(index::RedisIndex(self.clone())))
    }
}

fn open_url(_rest: &str, url: &str) -> BoxFuture<'static, Result<Arc<dyn StorageBackend>>> {
    let url = url.to_string();
    Box::pin(
        async move { Ok(Arc::new(RedisBackend::open(&url).await?) as Arc<dyn StorageBackend>) },
    )
}

nadb_core::inventory::submit! { Registration { scheme: "redis", open: open_url } }
nadb_core::inventory::submit! { Registration { scheme: "redis+cluster", open: open_url } }
