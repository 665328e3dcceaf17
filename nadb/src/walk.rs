//! Reading a whole store in a fixed order: every space the backend lists, sorted, and in each
//! every live record in key order, decoded. Export, migration and their checksums share it so
//! they see records the same way.
//!
//! Reads go to the backend, the source of truth, after the store has been flushed: keys and
//! metadata from `scan`, then records with `get_many` in chunks bounded by count and stored
//! bytes, so memory stays bounded whatever the values' sizes. Expiry is judged by the system
//! clock when a chunk is read.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use nadb_core::codec::decode_value;
use nadb_core::{BackendExt, Clock, Result, Space, StorageBackend, SystemClock, Tags, Timestamp};

use crate::Store;

/// Most records read (and written) per round.
pub(crate) const CHUNK_RECORDS: usize = 1000;
/// Most value bytes read (and written) per round, unless one record alone is larger.
pub(crate) const CHUNK_BYTES: u64 = 16 << 20;

/// One record, value decoded: what export, import and migration move.
pub(crate) struct Entry {
    pub(crate) key: String,
    pub(crate) value: Bytes,
    pub(crate) tags: Tags,
    pub(crate) expires_at: Option<Timestamp>,
}

/// Flushes `store` and lists every space holding a record, sorted.
pub(crate) async fn spaces(store: &Store) -> Result<Vec<Space>> {
    store.flush().await?;
    let mut spaces = store.backend().spaces().await?;
    spaces.sort();
    spaces.dedup();
    Ok(spaces)
}

/// Live keys of a space now (a total for progress reports, not exact under writers).
pub(crate) async fn count(store: &Store, space: &Space) -> Result<u64> {
    store.with_space(space.clone()).await?.len().await
}

/// The live records of one space, chunk by chunk in key order.
pub(crate) struct SpaceReader {
    backend: Arc<dyn StorageBackend>,
    space: Space,
    /// Keys scanned and not yet read, with their stored sizes.
    queue: VecDeque<(String, u64)>,
    after: Option<String>,
    scanned_all: bool,
}

impl SpaceReader {
    pub(crate) fn new(store: &Store, space: Space) -> SpaceReader {
        SpaceReader {
            backend: store.backend().clone(),
            space,
            queue: VecDeque::new(),
            after: None,
            scanned_all: false,
        }
    }

    async fn fill(&mut self) -> Result<()> {
        if !self.queue.is_empty() || self.scanned_all {
            return Ok(());
        }
        let now = SystemClock.now();
        let page = if self.backend.info().capabilities.ordered_scan {
            let page = self
                .backend
                .scan(&self.space, "", self.after.as_deref(), CHUNK_RECORDS)
                .await?;
            self.scanned_all = page.len() < CHUNK_RECORDS;
            self.after = page.last().map(|(k, _)| k.clone()).or(self.after.take());
            page
        } else {
            self.scanned_all = true;
            self.backend.scan_all(&self.space, "").await?
        };
        self.queue.extend(
            page.into_iter()
                .filter(|(_, m)| !m.is_expired(now))
                .map(|(k, m)| (k, m.stored_len)),
        );
        Ok(())
    }

    /// The next chunk of live records (possibly empty when every key of it went away), or
    /// `None` once the space is done.
    pub(crate) async fn next_chunk(&mut self) -> Result<Option<Vec<Entry>>> {
        while self.queue.is_empty() {
            if self.scanned_all {
                return Ok(None);
            }
            self.fill().await?;
        }
        let mut keys = Vec::new();
        let mut bytes = 0u64;
        while let Some((_, len)) = self.queue.front() {
            if !keys.is_empty() && (keys.len() >= CHUNK_RECORDS || bytes + len > CHUNK_BYTES) {
                break;
            }
            bytes += len;
            if let Some((k, _)) = self.queue.pop_front() {
                keys.push(k);
            }
        }
        let records = self.backend.get_many(&self.space, &keys).await?;
        let now = SystemClock.now();
        let mut out = Vec::with_capacity(keys.len());
        for (key, record) in keys.into_iter().zip(records) {
            // Gone since the scan, or expired: no longer part of the store.
            let Some(r) = record.filter(|r| !r.meta.is_expired(now)) else {
                continue;
            };
            let value = decode_value(r.meta.codec, r.value, r.meta.value_len)?;
            out.push(Entry {
                key,
                value,
                tags: r.meta.tags,
                expires_at: r.meta.expires_at,
            });
        }
        Ok(Some(out))
    }
}
