//! # nadb-backend-fs
//!
//! The embedded, crash-safe filesystem backend of nadb (`fs://PATH`): a segmented append-only
//! log of checksummed frames, an in-memory keydir pointing at each key's newest frame, hint
//! files so opening does not read values, compaction, and a lock file so one process writes.
//!
//! ```
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! let dir = tempfile::tempdir().unwrap();
//! let backend = nadb_backend_fs::FsBackend::open(dir.path()).await?;
//! let store = nadb_core::Store::builder(backend).build().await?;
//! store.set("greeting", "hello").await?; // applied and fsynced before it returns
//! store.close().await?;
//! # Ok::<(), nadb_core::Error>(()) }).unwrap();
//! ```
//!
//! ## Durability, case by case
//!
//! - `apply` writes a batch's frames and a commit frame with one positional write at the end
//!   of the active segment; `sync` is `fdatasync` of the active segment. A write acknowledged
//!   by a store in `Immediate` mode has been through both.
//! - A new segment file is fsynced and then the directory is fsynced before it is used; every
//!   rename and delete (compaction, hints) is followed by a directory fsync.
//! - A sealed segment's hint file is written on a thread of its own, through a temporary
//!   file and a rename, so the write that fills a segment does not wait for it; a hint is
//!   only a shortcut for opening, which reads a segment whose hint is missing: see `hints.rs`.
//! - A crash can leave, at the end of the last segment, a torn frame or the frames of a batch
//!   without its commit frame. Opening cuts the segment at the end of its last commit frame,
//!   copies the cut bytes to `seg-….log.cut-OFFSET` beside it and logs where: the batch is
//!   dropped whole, everything committed before it stays.
//! - Damage in the last segment followed by an intact commit frame is not a torn tail: opening
//!   treats it as corruption (below) rather than drop the batches after it. Frame checksums
//!   cover the segment's random salt and the frame's offset, so frame-shaped bytes inside a
//!   torn value (a copy of a segment kept as a value) are not taken for such a batch.
//! - Damage inside an earlier (sealed) segment cannot come from a crash; opening fails with
//!   [`Error::Corrupt`] naming the file and offset, unless [`FsOptions::repair`] is set, which
//!   moves the damaged range and everything after it in that segment to
//!   `seg-….log.quarantine-OFFSET`, keeps every other record and reports the loss.
//! - A failed `fdatasync` poisons the backend: every later call fails until it is reopened,
//!   because the kernel may have dropped the unsynced pages and a retried sync would lie.
//! - Compaction writes live records to a new segment numbered between the old ones and the new
//!   active one (temporary file, fsync, rename, directory fsync), points the keydir at it, and
//!   only then deletes the old segments (directory fsync). A crash at any step leaves either the
//!   old segments, or the old and the new (which replay to the same state): see
//!   `compaction.rs`.
//!
//! Keys never become paths: file names are made only of segment numbers.
//!
//! ## Reads
//!
//! A read finds the key's frame in the keydir and checks the frame's checksum before it
//! returns the value. By default each segment is mapped into memory on its first read and
//! frames are copied out of the page cache with no system call ([`FsOptions::mmap_reads`]).
//! A segment first read while sealed is mapped whole; the active one (on Linux, macOS and
//! FreeBSD, whose page cache makes appended bytes visible through an earlier mapping) over
//! the room it is appended into, [`FsOptions::max_segment_size`] bytes (at most 1 GiB), and
//! keeps that mapping once sealed. A frame outside a mapping, as one oversized batch writes,
//! is read with `pread`. A read only touches bytes a keydir entry points at, and an entry is
//! published only once its frame is written, so a mapping is never read past the end of its
//! file. The value is always a copy, checksummed like any read: nothing the caller holds
//! points into a mapping, and bytes changed on disk are reported as corruption, not returned.
//!
//! What a mapping changes is how a failure *below* the store shows: a read error from the
//! device (a bad sector, a failing network or FUSE filesystem) or another program truncating
//! a segment of an open store (nadb never cuts a byte a read can reach; its lock keeps other
//! nadb processes out) stops the process with `SIGBUS` instead of failing that read with an
//! error. Turn mapped reads off where that matters more than a system call per read.
#![deny(missing_docs)]

mod compaction;
mod files;
pub mod format;
mod hints;
mod keydir;
mod open;

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::future::BoxFuture;
use memmap2::Mmap;
use nadb_core::registry::Registration;
use nadb_core::{
    BackendInfo, Batch, Error, Meta, MetadataIndex, Op, Record, Result, Space, SparseIndex,
    StorageBackend,
};
use parking_lot::{Mutex, RwLock};

/// Largest frame buffer kept for the next batch.
const SCRATCH_KEPT: usize = 16 << 20;
/// How long automatic compaction waits after a failed attempt (explicit `compact` does not).
const COMPACTION_BACKOFF: std::time::Duration = std::time::Duration::from_secs(60);

type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

use crate::files::{io_error, segment_path};
use crate::format::{HintLog, Seal, read_put};
use crate::hints::HintWriter;
use crate::keydir::{Entry, Keydir};

pub use open::RepairReport;

/// Settings of a filesystem store.
///
/// ```
/// let opts = nadb_backend_fs::FsOptions::default();
/// assert_eq!(opts.max_value_size, 64 << 20);
/// ```
#[derive(Clone, Debug)]
pub struct FsOptions {
    /// A segment is sealed and a new one started past this size (default 64 MiB).
    pub max_segment_size: u64,
    /// Largest value accepted, in bytes (default 64 MiB).
    pub max_value_size: u64,
    /// Compact automatically when dead bytes are at least this share of all bytes (default 0.5).
    pub compaction_ratio: f64,
    /// ... and at least this many bytes are dead (default 64 MiB).
    pub compaction_min_dead_bytes: u64,
    /// Open even when a sealed segment is damaged: quarantine the damage, keep the rest.
    pub repair: bool,
    /// Read segments through a memory mapping rather than `pread` (default on): a read makes
    /// no system call. Turn it off when a device read error or a file truncated by
    /// another program must fail the read with an error rather than stop the process with
    /// `SIGBUS` (network and FUSE filesystems, failing disks); see [Reads](crate#reads).
    pub mmap_reads: bool,
    #[doc(hidden)]
    pub crash_compaction_at: Option<u8>,
}

impl Default for FsOptions {
    fn default() -> Self {
        FsOptions {
            max_segment_size: 64 << 20,
            max_value_size: 64 << 20,
            compaction_ratio: 0.5,
            compaction_min_dead_bytes: 64 << 20,
            repair: false,
            mmap_reads: true,
            crash_compaction_at: None,
        }
    }
}

/// An open segment file and how its frames are checksummed.
#[derive(Clone)]
struct Segment {
    file: Arc<File>,
    seal: Seal,
    /// With mapped reads on: its mapping, made by the first read; `None` inside when mapping
    /// failed, and reads use `pread`.
    map: Option<Arc<OnceLock<Option<Mmap>>>>,
    /// Bytes a mapping covers: for the active segment the room it is appended into, made
    /// before the bytes exist; `None` for the file as it is (a sealed segment).
    window: Option<u64>,
}

impl Segment {
    fn new(file: File, seal: Seal) -> Segment {
        Segment {
            file: Arc::new(file),
            seal,
            map: None,
            window: None,
        }
    }

    /// This segment sealed: read through a mapping of the whole file when `opts` allow it.
    /// One mapped while active keeps that mapping; a frame past its window is read with
    /// `pread`.
    fn sealed(mut self, opts: &FsOptions) -> Segment {
        if opts.mmap_reads && self.map.is_none() {
            self.map = Some(Arc::default());
        }
        self
    }

    /// This segment as the active one: read through a mapping of the room it is appended
    /// into when `opts` allow it.
    fn active(mut self, opts: &FsOptions) -> Segment {
        // Elsewhere a mapping may not show bytes written after it was made.
        if cfg!(any(
            target_os = "linux",
            target_os = "macos",
            target_os = "freebsd"
        )) {
            // Address space is reserved, not memory; a huge segment size maps a part.
            self.window = Some(opts.max_segment_size.min(1 << 30));
            self.sealed(opts)
        } else {
            self
        }
    }

    /// The `len` bytes at `offset`.
    fn read(&self, offset: u64, len: u32) -> io::Result<Bytes> {
        if let Some(map) = self.mapping() {
            let range = usize::try_from(offset)
                .ok()
                .and_then(|start| Some(start..start.checked_add(len as usize)?));
            if let Some(bytes) = range.and_then(|r| map.get(r)) {
                return Ok(Bytes::copy_from_slice(bytes));
            }
        }
        let mut buf = vec![0u8; len as usize];
        self.file.read_exact_at(&mut buf, offset)?;
        Ok(Bytes::from(buf))
    }

    fn mapping(&self) -> Option<&Mmap> {
        self.map
            .as_ref()?
            .get_or_init(|| {
                let mut options = memmap2::MmapOptions::new();
                if let Some(window) = self.window {
                    // Mapping past the end of the file is allowed; touching those pages is
                    // not, and no read does (see below).
                    options.len(usize::try_from(window).ok()?);
                }
                // SAFETY: a read copies only the bytes of a frame a keydir entry points at,
                // and an entry is published after its frame is written. nadb never rewrites
                // those bytes or cuts them off while the store is open: the active segment is
                // only appended to (a failed write cuts off its own partial bytes, which no
                // entry points at), a torn tail is cut at open before any read, compaction
                // writes new files and unlinks old ones (a mapping outlives the unlink), and
                // the lock keeps other nadb processes out. Another program changing the file
                // is outside this contract, as for any mapping: changed bytes are copied out
                // and fail their checksum, and the crate docs say what a truncation or a
                // device error does.
                unsafe { options.map(&*self.file) }.ok()
            })
            .as_ref()
    }
}

/// The segment being appended to.
struct Writer {
    id: u64,
    file: Arc<File>,
    seal: Seal,
    len: u64,
    /// Every committed op of the active segment, for its hint file.
    hints: HintLog,
    /// The frames of the batch being written; kept between batches so their pages are not
    /// allocated (and faulted in) afresh each time.
    scratch: BytesMut,
    /// Ops applied since the last sync began: how many writes the next one serves.
    unsynced_ops: usize,
}

impl Writer {
    fn new(id: u64, segment: Segment, len: u64, mut hints: HintLog, opts: &FsOptions) -> Writer {
        // Entries run to about half a segment's bytes when values are small; reserved up
        // front, the log never copies itself to grow (untouched pages cost no memory; a log
        // handed on from a sealed segment keeps the pages it touched).
        hints.reserve(usize::try_from(opts.max_segment_size / 2).map_or(0, |n| n.min(64 << 20)));
        Writer {
            id,
            file: segment.file,
            seal: segment.seal,
            len,
            hints,
            scratch: BytesMut::new(),
            unsynced_ops: 0,
        }
    }
}

/// Total and dead bytes per segment.
#[derive(Clone, Copy, Debug, Default)]
struct SegStat {
    total: u64,
    dead: u64,
}

struct Inner {
    dir: PathBuf,
    opts: FsOptions,
    info: BackendInfo,
    lock: Mutex<Option<File>>,
    keydir: RwLock<Keydir>,
    segments: RwLock<BTreeMap<u64, Segment>>,
    writer: Mutex<Writer>,
    stats: Mutex<BTreeMap<u64, SegStat>>,
    index: Arc<SparseIndex>,
    closed: AtomicBool,
    poisoned: AtomicBool,
    compacting: Arc<tokio::sync::Mutex<()>>,
    compaction_scheduled: AtomicBool,
    /// After a background compaction fails, none starts by itself before this instant: the
    /// cause (damage, a full disk) usually outlasts the next write.
    compaction_paused_until: Mutex<Option<std::time::Instant>>,
    /// The hint file of the segment sealed last, while it is being written.
    hints: HintWriter,
    repair: Option<RepairReport>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Before the lock file is let go: no hint may land in a directory another process
        // holds.
        self.hints.wait();
    }
}

/// The filesystem backend; see the [crate docs](crate). Cheap to clone.
#[derive(Clone)]
pub struct FsBackend(Arc<Inner>);

impl std::fmt::Debug for FsBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FsBackend")
            .field("dir", &self.0.dir)
            .finish_non_exhaustive()
    }
}

impl FsBackend {
    /// Opens (creating if needed) the store in directory `dir` with default options.
    pub async fn open(dir: impl AsRef<Path>) -> Result<FsBackend> {
        FsBackend::open_with(dir, FsOptions::default()).await
    }

    /// Opens the store in `dir` with `opts`. Fails with [`Error::Locked`] when another
    /// process (or another open backend in this one) holds the directory.
    pub async fn open_with(dir: impl AsRef<Path>, opts: FsOptions) -> Result<FsBackend> {
        let dir = dir.as_ref().to_path_buf();
        let opened = tokio::task::spawn_blocking(move || open::open(dir, opts))
            .await
            .map_err(|e| Error::backend("fs", false, e))??;
        Ok(FsBackend(Arc::new(opened)))
    }

    /// What [`FsOptions::repair`] quarantined when this backend was opened, if anything.
    pub fn repair_report(&self) -> Option<&RepairReport> {
        self.0.repair.as_ref()
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.0.dir
    }

    fn check_usable(&self) -> Result<()> {
        if self.0.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        if self.0.poisoned.load(Ordering::Acquire) {
            return Err(Error::backend(
                "fs",
                false,
                "an earlier fsync failed; reopen the store to recover from its log",
            ));
        }
        Ok(())
    }

    fn should_compact(&self) -> bool {
        let stats = self.0.stats.lock();
        let (total, dead) = stats
            .values()
            .fold((0, 0), |(t, d), s| (t + s.total, d + s.dead));
        dead >= self.0.opts.compaction_min_dead_bytes
            && total > 0
            && dead as f64 / total as f64 >= self.0.opts.compaction_ratio
    }
}

/// Reads the frame at `(segment, offset, length)` of `file`, which must be `key`'s put: its
/// bytes and record, or `Corrupt` naming where it is.
pub(crate) fn read_key_frame(
    dir: &Path,
    segment: &Segment,
    (seg, offset, len): (u64, u64, u32),
    space: &Space,
    key: &str,
) -> Result<(Bytes, Record)> {
    let bytes = segment
        .read(offset, len)
        .map_err(|err| io_error("reading", &segment_path(dir, seg), err))?;
    match read_put(&bytes, u64::from(len), segment.seal, offset, space, key) {
        Ok(Some(record)) => Ok((bytes, record)),
        Ok(None) => Err(corrupt(dir, seg, offset, "frame is not this key's put")),
        Err(_) => Err(corrupt(dir, seg, offset, "frame fails its checksum")),
    }
}

fn corrupt(dir: &Path, seg: u64, offset: u64, reason: &str) -> Error {
    Error::Corrupt {
        location: segment_path(dir, seg).display().to_string(),
        offset: Some(offset),
        reason: reason.into(),
    }
}

#[async_trait]
impl StorageBackend for FsBackend {
    fn info(&self) -> &BackendInfo {
        &self.0.info
    }

    async fn get(&self, space: &Space, key: &str) -> Result<Option<Record>> {
        self.check_usable()?;
        // The segment is looked up under the keydir lock: compaction repoints entries under the
        // write lock before it drops a segment, so an entry and its file always go together.
        let found = {
            let kd = self.0.keydir.read();
            match kd.get(space, key) {
                Some(e) => {
                    let segment = self.0.segments.read().get(&e.seg).cloned().ok_or_else(|| {
                        corrupt(
                            &self.0.dir,
                            e.seg,
                            e.offset,
                            "segment of a live key is missing",
                        )
                    })?;
                    // Where the frame is; its metadata comes with the frame.
                    Some(((e.seg, e.offset, e.len), segment))
                }
                None => None,
            }
        };
        match found {
            Some((at, segment)) => {
                read_key_frame(&self.0.dir, &segment, at, space, key).map(|(_, r)| Some(r))
            }
            None => Ok(None),
        }
    }

    async fn get_meta_many(&self, space: &Space, keys: &[String]) -> Result<Vec<Option<Meta>>> {
        self.check_usable()?;
        let kd = self.0.keydir.read();
        Ok(keys
            .iter()
            .map(|k| kd.get(space, k).map(|e| e.meta.clone()))
            .collect())
    }

    async fn apply(&self, batch: &Batch) -> Result<()> {
        self.check_usable()?;
        let inner = &self.0;
        let mut w = inner.writer.lock();
        // Checked again under the lock: `close` marks the backend closed while holding it.
        self.check_usable()?;
        // Checks and creation times are judged against the keydir under the writer lock, so
        // no other batch can come between them and the write.
        let mut buf = std::mem::take(&mut w.scratch);
        buf.clear();
        // Per op: where its frame starts in `buf`, its length, and the metadata it stores.
        let mut placed: Vec<(usize, u32, Option<Meta>)> = Vec::with_capacity(batch.ops.len());
        {
            let kd = inner.keydir.read();
            for c in &batch.checks {
                let found = kd.get(&batch.space, &c.key).map(|e| e.meta.version);
                if !c.expect.holds(found) {
                    return Err(Error::Conflict {
                        reason: format!("a check on a key of {} bytes failed", c.key.len()),
                    });
                }
            }
            // Creation times follow the ops in order, so an earlier op of this batch on the same
            // key counts: the latest op per key, by its position in `placed`. A batch of one op
            // (every Immediate write) needs no map.
            let mut earlier: FastMap<&str, usize> = FastMap::default();
            for (i, op) in batch.ops.iter().enumerate() {
                let at = buf.len();
                match op {
                    Op::Put { key, record } => {
                        if record.value.len() as u64 > inner.opts.max_value_size {
                            return Err(Error::ValueTooLarge {
                                size: record.value.len() as u64,
                                limit: inner.opts.max_value_size,
                            });
                        }
                        let mut meta = record.meta.clone();
                        let prev = match earlier.get(key.as_str()) {
                            Some(&j) => placed[j].2.as_ref(),
                            None => kd.get(&batch.space, key).map(|e| &e.meta),
                        };
                        if let Some(old) = prev
                            && !old.is_expired(meta.updated_at)
                        {
                            meta.created_at = old.created_at;
                        }
                        let n =
                            format::put_frame(&mut buf, &batch.space, key, &meta, &record.value)?;
                        placed.push((at, n as u32, Some(meta)));
                    }
                    Op::Delete { key } => {
                        let n = format::delete_frame(&mut buf, &batch.space, key)?;
                        placed.push((at, n as u32, None));
                    }
                }
                if batch.ops.len() > 1 {
                    earlier.insert(op.key(), i);
                }
            }
        }
        let ops = u32::try_from(batch.ops.len()).map_err(|_| Error::InvalidArgument {
            name: "batch",
            reason: "more than 4 billion ops in one batch".into(),
        })?;
        format::commit_frame(&mut buf, ops)?;
        if w.len > format::SEGMENT_HEADER_LEN
            && w.len + buf.len() as u64 > inner.opts.max_segment_size
        {
            open::roll_over(inner, &mut w)?;
        }
        let base = w.len;
        w.seal.sign(&mut buf, base);
        if let Err(e) = w.file.write_all_at(&buf, base) {
            // Part of the batch may be in the file: cut it off so the segment ends in a commit.
            if w.file.set_len(base).is_err() {
                inner.poisoned.store(true, Ordering::Release);
            }
            return Err(io_error("writing", &segment_path(&inner.dir, w.id), e));
        }
        w.len += buf.len() as u64;
        w.unsynced_ops += batch.ops.len();
        let seg = w.id;
        let mut dead = buf.len() as u64 - placed.iter().map(|p| u64::from(p.1)).sum::<u64>();
        // What each op replaced, for the index: the stored length of the key's prior record.
        let mut before: Vec<Option<u64>> = Vec::with_capacity(batch.ops.len());
        {
            let mut kd = inner.keydir.write();
            let mut stats = inner.stats.lock();
            for (op, (at, len, meta)) in batch.ops.iter().zip(placed) {
                let offset = base + at as u64;
                let replaced = match meta {
                    Some(meta) => {
                        w.hints.put(&batch.space, op.key(), offset, len, &meta);
                        kd.put(
                            &batch.space,
                            op.key(),
                            Entry {
                                seg,
                                offset,
                                len,
                                meta,
                            },
                        )
                    }
                    None => {
                        w.hints.delete(&batch.space, op.key());
                        dead += u64::from(len);
                        kd.remove(&batch.space, op.key())
                    }
                };
                before.push(replaced.as_ref().map(|old| old.meta.stored_len));
                if let Some(old) = replaced {
                    stats.entry(old.seg).or_default().dead += u64::from(old.len);
                }
            }
            let s = stats.entry(seg).or_default();
            s.total = w.len;
            s.dead += dead;
        }
        // Under the writer lock, so the index sees batches in log order.
        inner.index.apply(batch, &before);
        if buf.capacity() <= SCRATCH_KEPT {
            w.scratch = buf;
        }
        drop(w);
        let paused = inner
            .compaction_paused_until
            .lock()
            .is_some_and(|t| std::time::Instant::now() < t);
        if !paused
            && self.should_compact()
            && !inner.compaction_scheduled.swap(true, Ordering::AcqRel)
        {
            let me = self.clone();
            tokio::spawn(async move {
                if let Err(e) = me.compact().await {
                    tracing::warn!(
                        error = %e,
                        retry_in_s = COMPACTION_BACKOFF.as_secs(),
                        "background compaction failed"
                    );
                    *me.0.compaction_paused_until.lock() =
                        Some(std::time::Instant::now() + COMPACTION_BACKOFF);
                }
                me.0.compaction_scheduled.store(false, Ordering::Release);
            });
        }
        Ok(())
    }

    async fn scan(
        &self,
        space: &Space,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Meta)>> {
        self.check_usable()?;
        {
            let kd = self.0.keydir.read();
            if !kd.needs_sort(space) {
                return Ok(kd.scan(space, prefix, after, limit));
            }
        }
        let mut kd = self.0.keydir.write();
        kd.sort(space);
        Ok(kd.scan(space, prefix, after, limit))
    }

    async fn spaces(&self) -> Result<Vec<Space>> {
        self.check_usable()?;
        Ok(self.0.keydir.read().space_names())
    }

    async fn sync(&self) -> Result<()> {
        self.check_usable()?;
        let (file, id, serves) = {
            let mut w = self.0.writer.lock();
            (w.file.clone(), w.id, std::mem::take(&mut w.unsynced_ops))
        };
        // fdatasync blocks for as long as the disk takes. On a multi-threaded runtime, a sync
        // that serves one write runs in place, its worker handing its other tasks off first:
        // a thread hop would add to that write's latency. One that serves a group of writes
        // runs on the blocking pool, so both workers are free for the writers its
        // acknowledgements wake, who then make up the next group in time.
        let result = match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::MultiThread) if serves > 1 => {
                tokio::task::spawn_blocking(move || file.sync_data())
                    .await
                    .unwrap_or_else(|e| Err(std::io::Error::other(e)))
            }
            Ok(tokio::runtime::RuntimeFlavor::MultiThread) => {
                tokio::task::block_in_place(|| file.sync_data())
            }
            _ => file.sync_data(),
        };
        if let Err(e) = result {
            self.0.poisoned.store(true, Ordering::Release);
            return Err(io_error("fdatasync of", &segment_path(&self.0.dir, id), e));
        }
        Ok(())
    }

    async fn compact(&self) -> Result<()> {
        self.check_usable()?;
        compaction::compact(self).await
    }

    async fn close(&self) -> Result<()> {
        // No compaction may run on while the lock is released.
        let _no_compaction = self.0.compacting.clone().lock_owned().await;
        let inner = self.0.clone();
        tokio::task::spawn_blocking(move || open::close(&inner))
            .await
            .map_err(|e| Error::backend("fs", false, e))?
    }

    fn native_index(&self) -> Option<Arc<dyn MetadataIndex>> {
        Some(self.0.index.clone())
    }
}

fn open_url(rest: &str, url: &str) -> BoxFuture<'static, Result<Arc<dyn StorageBackend>>> {
    let path = rest.to_string();
    let url = nadb_core::error::redact_url(url);
    Box::pin(async move {
        if path.is_empty() {
            return Err(Error::InvalidUrl {
                url,
                reason: "fs:// needs a directory, e.g. fs://./data or fs:///var/lib/app".into(),
            });
        }
        Ok(Arc::new(FsBackend::open(path).await?) as Arc<dyn StorageBackend>)
    })
}

nadb_core::inventory::submit! { Registration { scheme: "fs", open: open_url } }
