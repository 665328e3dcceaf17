//! The in-memory backend (`memory://`): the reference every other backend is compared with.
//!
//! Records live in a [`KeyMap`] per space (fast point reads, a lazily sorted key set for ordered
//! scans). A batch is applied under one write lock, so it is atomic and its checks are exact.
//! The backend keeps its own metadata index (a [`SparseIndex`]), updated under that same lock.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use parking_lot::RwLock;

use crate::backend::{BackendInfo, Batch, Capabilities, Expect, Op, StorageBackend};
use crate::error::{Error, Result};
use crate::index::{MetadataIndex, SparseIndex};
use crate::keymap::KeyMap;
use crate::record::{Meta, Record};
use crate::space::Space;

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

#[derive(Debug, Default)]
struct SpaceData {
    records: KeyMap<Record>,
}

#[derive(Debug, Default)]
struct State {
    spaces: FastMap<Space, SpaceData>,
}

/// The in-memory backend. Not persistent: its records live as long as the value does.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use nadb_core::{MemoryBackend, Store};
/// let store = Store::builder(MemoryBackend::new()).build().await?;
/// store.set("greeting", "hello").await?;
/// assert_eq!(store.get("greeting").await?.as_deref(), Some(&b"hello"[..]));
/// # Ok::<(), nadb_core::Error>(()) }).unwrap();
/// ```
#[derive(Debug)]
pub struct MemoryBackend {
    info: BackendInfo,
    state: RwLock<State>,
    /// Keys with tags or an expiry, and counts; updated under the state lock.
    index: Arc<SparseIndex>,
    closed: AtomicBool,
}

impl Default for MemoryBackend {
    fn default() -> Self {
        MemoryBackend::new()
    }
}

impl MemoryBackend {
    /// An empty memory backend.
    pub fn new() -> MemoryBackend {
        MemoryBackend {
            info: BackendInfo {
                scheme: "memory".into(),
                capabilities: Capabilities {
                    atomic_batch: true,
                    ordered_scan: true,
                    ..Capabilities::none()
                },
            },
            state: RwLock::default(),
            index: Arc::new(SparseIndex::new()),
            closed: AtomicBool::new(false),
        }
    }

    fn open_check(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }
}

fn check_failed(key: &str, expect: Expect, found: Option<u64>) -> Error {
    Error::Conflict {
        reason: format!(
            "key of {} bytes: expected {}, found {}",
            key.len(),
            match expect {
                Expect::Absent => "no record".to_string(),
                Expect::Version(v) => format!("version {v}"),
            },
            found.map_or_else(|| "no record".to_string(), |v| format!("version {v}"))
        ),
    }
}

#[async_trait]
impl StorageBackend for MemoryBackend {
    fn info(&self) -> &BackendInfo {
        &self.info
    }

    async fn get(&self, space: &Space, key: &str) -> Result<Option<Record>> {
        self.open_check()?;
        let state = self.state.read();
        Ok(state
            .spaces
            .get(space)
            .and_then(|s| s.records.get(key))
            .cloned())
    }

    async fn get_many(&self, space: &Space, keys: &[String]) -> Result<Vec<Option<Record>>> {
        self.open_check()?;
        let state = self.state.read();
        let s = state.spaces.get(space);
        Ok(keys
            .iter()
            .map(|k| s.and_then(|s| s.records.get(k.as_str())).cloned())
            .collect())
    }

    async fn apply(&self, batch: &Batch) -> Result<()> {
        self.open_check()?;
        let mut state = self.state.write();
        let state = &mut *state;
        let space = state.spaces.get(&batch.space);
        for c in &batch.checks {
            let found = space
                .and_then(|s| s.records.get(c.key.as_str()))
                .map(|r| r.meta.version);
            if !c.expect.holds(found) {
                return Err(check_failed(&c.key, c.expect, found));
            }
        }
        let data = state.spaces.entry(batch.space.clone()).or_default();
        // What each op replaced, for the index: the stored length of the key's prior record.
        let mut before = Vec::with_capacity(batch.ops.len());
        for op in &batch.ops {
            let replaced = match op {
                Op::Put { key, record } => {
                    let mut record = record.clone();
                    match data.records.get_mut(key.as_str()) {
                        Some(old) => {
                            if !old.meta.is_expired(record.meta.updated_at) {
                                record.meta.created_at = old.meta.created_at;
                            }
                            Some(std::mem::replace(old, record))
                        }
                        None => data.records.insert(key, record),
                    }
                }
                Op::Delete { key } => data.records.remove(key.as_str()),
            };
            before.push(replaced.map(|old| old.meta.stored_len));
        }
        if data.records.is_empty() {
            state.spaces.remove(&batch.space);
        }
        // Under the state lock, so the index sees batches in the order they apply.
        self.index.apply(batch, &before);
        Ok(())
    }

    async fn scan(
        &self,
        space: &Space,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Meta)>> {
        self.open_check()?;
        let page = |s: &SpaceData| -> Option<Vec<(String, Meta)>> {
            let keys = s.records.range(prefix, after)?;
            Some(
                keys.take(limit)
                    .map(|(k, r)| (k.to_string(), r.meta.clone()))
                    .collect(),
            )
        };
        {
            let state = self.state.read();
            match state.spaces.get(space) {
                None => return Ok(Vec::new()),
                Some(s) => {
                    if let Some(out) = page(s) {
                        return Ok(out);
                    }
                }
            }
        }
        // Keys were added since the last scan: sort them in, under the write lock.
        let mut state = self.state.write();
        let Some(s) = state.spaces.get_mut(space) else {
            return Ok(Vec::new());
        };
        s.records.sort();
        Ok(page(s).unwrap_or_default())
    }

    async fn spaces(&self) -> Result<Vec<Space>> {
        self.open_check()?;
        let state = self.state.read();
        let mut out: Vec<Space> = state
            .spaces
            .iter()
            .filter(|(_, s)| !s.records.is_empty())
            .map(|(space, _)| space.clone())
            .collect();
        out.sort();
        Ok(out)
    }

    async fn sync(&self) -> Result<()> {
        self.open_check()
    }

    async fn close(&self) -> Result<()> {
        self.closed.store(true, Ordering::Release);
        Ok(())
    }

    fn native_index(&self) -> Option<Arc<dyn MetadataIndex>> {
        Some(self.index.clone())
    }
}
