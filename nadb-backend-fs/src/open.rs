//! Opening a store directory (lock, replay, recovery), sealing segments, closing.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use nadb_core::{BackendInfo, Capabilities, Error, Result, SparseIndex};
use parking_lot::{Mutex, RwLock};

use crate::files::{
    LOCK_FILE, hint_path, io_error, parse_segment_name, segment_path, sync_dir, write_atomic,
    write_side_file,
};
use crate::format::{
    self, Frame, FrameError, HintEntry, HintFile, HintLog, SEGMENT_HEADER_LEN, Seal, read_frame,
};
use crate::hints::HintWriter;
use crate::keydir::{Entry, Keydir};
use crate::{FsOptions, Inner, SegStat, Segment, Writer};

/// What opening with [`FsOptions::repair`](crate::FsOptions::repair) moved aside.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RepairReport {
    /// One entry per damaged segment.
    pub quarantined: Vec<Quarantined>,
}

/// A damaged range moved out of a segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quarantined {
    /// The segment.
    pub segment: PathBuf,
    /// Where the damage starts (the end of the last intact batch).
    pub offset: u64,
    /// Bytes moved out (records in them are lost).
    pub bytes: u64,
    /// Where they were moved.
    pub side_file: PathBuf,
}

fn lock(dir: &Path) -> Result<File> {
    let path = dir.join(LOCK_FILE);
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| io_error("opening", &path, e))?;
    match f.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            let holder = fs::read_to_string(&path)
                .ok()
                .and_then(|s| s.trim().parse::<u32>().ok());
            return Err(Error::Locked {
                path: path.display().to_string(),
                holder,
            });
        }
        Err(fs::TryLockError::Error(e)) => return Err(io_error("locking", &path, e)),
    }
    f.set_len(0).map_err(|e| io_error("writing", &path, e))?;
    f.write_all(std::process::id().to_string().as_bytes())
        .map_err(|e| io_error("writing", &path, e))?;
    Ok(f)
}

/// Creates `dir` and any missing parents, each made durable in its parent directory: a store
/// whose directory entry is lost vanishes whole.
fn create_dirs(dir: &Path) -> Result<()> {
    let missing: Vec<PathBuf> = dir
        .ancestors()
        .take_while(|p| !p.as_os_str().is_empty() && !p.exists())
        .map(Path::to_path_buf)
        .collect();
    fs::create_dir_all(dir).map_err(|e| io_error("creating", dir, e))?;
    for d in missing.iter().rev() {
        let parent = match d.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        sync_dir(parent).map_err(|e| io_error("syncing directory", parent, e))?;
    }
    Ok(())
}

/// Opens `dir`: takes the lock, replays every segment into the keydir, recovers the tail.
pub(crate) fn open(dir: PathBuf, opts: FsOptions) -> Result<Inner> {
    create_dirs(&dir)?;
    let lock = lock(&dir)?;
    let mut ids = Vec::new();
    let entries = fs::read_dir(&dir).map_err(|e| io_error("listing", &dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| io_error("listing", &dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(id) = parse_segment_name(name) {
            ids.push(id);
        } else if name.ends_with(".tmp") {
            // Left by a crash before a rename: never part of the store.
            let p = entry.path();
            fs::remove_file(&p).map_err(|e| io_error("removing", &p, e))?;
        }
    }
    ids.sort_unstable();
    let mut keydir = Keydir::default();
    let mut lens = BTreeMap::new();
    let mut report = RepairReport::default();
    let mut last_hints = HintLog::new();
    let mut seals = BTreeMap::new();
    for (i, &id) in ids.iter().enumerate() {
        let is_last = i + 1 == ids.len();
        let (len, hints, seal) = replay(&dir, id, is_last, &opts, &mut keydir, &mut report)?;
        lens.insert(id, len);
        if let Some(seal) = seal {
            seals.insert(id, seal);
        }
        if is_last {
            last_hints = hints;
        }
    }
    let mut segments = BTreeMap::new();
    for &id in &ids {
        let path = segment_path(&dir, id);
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| io_error("opening", &path, e))?;
        // Replay has checked every header, and read it unless it had to rewrite it.
        let seal = match seals.get(&id) {
            Some(&seal) => seal,
            None => read_seal(&mut f).ok_or_else(|| Error::Corrupt {
                location: path.display().to_string(),
                offset: Some(0),
                reason: "bad segment header".into(),
            })?,
        };
        segments.insert(id, Segment::new(f, seal));
    }
    let writer = match ids.last() {
        Some(&id) => {
            let last = segments[&id].clone();
            if last.seal == Seal::unsalted() {
                // Format 1 is read, not written: its checksums do not bind a frame to its place.
                let next = id.checked_add(1).ok_or_else(ids_exhausted)?;
                let path = segment_path(&dir, id);
                last.file
                    .sync_data()
                    .map_err(|e| io_error("syncing", &path, e))?;
                write_hint_file(&dir, id, lens[&id], &last_hints)?;
                let segment = create_segment(&dir, next)?;
                segments.insert(next, segment.clone());
                lens.insert(next, SEGMENT_HEADER_LEN);
                Writer::new(next, segment, SEGMENT_HEADER_LEN, HintLog::new(), &opts)
            } else {
                Writer::new(id, last, lens[&id], last_hints, &opts)
            }
        }
        None => {
            let segment = create_segment(&dir, 1)?;
            segments.insert(1, segment.clone());
            lens.insert(1, SEGMENT_HEADER_LEN);
            Writer::new(1, segment, SEGMENT_HEADER_LEN, HintLog::new(), &opts)
        }
    };
    let live = keydir.live_bytes();
    let stats = lens
        .iter()
        .map(|(&id, &len)| {
            let live = live.get(&id).copied().unwrap_or(0);
            (
                id,
                SegStat {
                    total: len,
                    dead: len.saturating_sub(SEGMENT_HEADER_LEN + live),
                },
            )
        })
        .collect();
    // Every segment but the active one is sealed.
    let segments = segments
        .into_iter()
        .map(|(id, s)| {
            let s = if id == writer.id {
                s.active(&opts)
            } else {
                s.sealed(&opts)
            };
            (id, s)
        })
        .collect();
    let index = Arc::new(SparseIndex::new());
    for (space, entries) in keydir.spaces() {
        index.load(space, entries);
    }
    Ok(Inner {
        info: BackendInfo {
            scheme: "fs".into(),
            capabilities: Capabilities {
                persistent: true,
                atomic_batch: true,
                ordered_scan: true,
                max_value_size: Some(opts.max_value_size),
                ..Capabilities::none()
            },
        },
        dir,
        opts,
        lock: Mutex::new(Some(lock)),
        keydir: RwLock::new(keydir),
        segments: RwLock::new(segments),
        writer: Mutex::new(writer),
        stats: Mutex::new(stats),
        index,
        closed: AtomicBool::new(false),
        poisoned: AtomicBool::new(false),
        compacting: Arc::new(tokio::sync::Mutex::new(())),
        compaction_scheduled: AtomicBool::new(false),
        compaction_paused_until: Mutex::new(None),
        hints: HintWriter::default(),
        repair: (!report.quarantined.is_empty()).then_some(report),
    })
}

/// Applies one committed op to the keydir.
fn apply_hint(keydir: &mut Keydir, seg: u64, h: HintEntry) {
    match h {
        HintEntry::Put {
            space,
            key,
            offset,
            len,
            meta,
        } => {
            keydir.put(
                &space,
                &key,
                Entry {
                    seg,
                    offset,
                    len,
                    meta,
                },
            );
        }
        HintEntry::Delete { space, key } => {
            keydir.remove(&space, &key);
        }
    }
}

/// Replays segment `id` into the keydir, from its hint file when that is valid. Returns the
/// segment's (possibly cut) length and, for the last segment, the hints of its committed ops
/// (empty for any other).
fn replay(
    dir: &Path,
    id: u64,
    is_last: bool,
    opts: &FsOptions,
    keydir: &mut Keydir,
    report: &mut RepairReport,
) -> Result<(u64, HintLog, Option<Seal>)> {
    let path = segment_path(dir, id);
    let file_len = fs::metadata(&path)
        .map_err(|e| io_error("reading", &path, e))?
        .len();
    let header = File::open(&path).ok().and_then(|mut f| read_seal(&mut f));
    if let Some(seal) = header
        && let Ok(hint) = fs::read(hint_path(dir, id))
    {
        let hint = Bytes::from(hint);
        if let Ok(file) = HintFile::open(&hint)
            && file.segment_len() == file_len
        {
            // Room for every entry of the segment, bounded by what the file can hold.
            let room = file.count().min(hint.len() as u64 / 16) as usize;
            let mut reserved = false;
            // Every entry is decoded once before any is applied: a file that fails part-way
            // (its checksum held, so only a faulty writer could cause it) is ignored whole and
            // the segment scanned, which may cut the segment short of what the file lists. So
            // is one listing a frame outside the segment (a read would fail, or allocate as
            // much as the bad length says).
            let mut inside = true;
            let checked = file.for_each(|h| {
                if let HintEntry::Put { offset, len, .. } = h {
                    inside &= offset >= SEGMENT_HEADER_LEN
                        && offset.saturating_add(u64::from(len)) <= file_len;
                }
            });
            let read = checked.and_then(|()| {
                if !inside {
                    return Err(FrameError::Damaged(
                        "hint lists a frame outside its segment",
                    ));
                }
                file.for_each(|h| {
                    if !reserved && let HintEntry::Put { space, .. } = &h {
                        keydir.reserve(space, room);
                        reserved = true;
                    }
                    apply_hint(keydir, id, h);
                })
            });
            if read.is_ok() {
                let hints = if is_last {
                    file.to_log()
                } else {
                    HintLog::new()
                };
                return Ok((file_len, hints, Some(seal)));
            }
        }
    }
    let bytes = Bytes::from(fs::read(&path).map_err(|e| io_error("reading", &path, e))?);
    // Checked here rather than trusted from a hint: a damaged header is handled below.
    let Some(seal) = Seal::from_header(&bytes) else {
        if is_last && Seal::is_header_start(&bytes) {
            // Created but its header never fully reached the disk: start it afresh.
            rewrite_header(&path)?;
            return Ok((SEGMENT_HEADER_LEN, HintLog::new(), None));
        }
        // A header is synced when its segment is created, so a crash cannot damage it: this
        // is corruption, even in the last segment.
        return damaged(
            &path,
            id,
            false,
            opts,
            report,
            &bytes,
            0,
            0,
            "bad segment header",
        )
        .map(|len| (len, HintLog::new(), None));
    };
    let mut pos = SEGMENT_HEADER_LEN as usize;
    let mut committed_end = pos;
    let mut pending: Vec<HintEntry> = Vec::new();
    let mut hints = HintLog::new();
    let mut damage: Option<(usize, &'static str)> = None;
    let mut last_space = None;
    while pos < bytes.len() {
        let at = bytes.slice(pos..);
        match format::read_frame_after(&at, u64::from(u32::MAX), seal, pos as u64, &mut last_space)
        {
            Ok((frame, n)) => {
                match frame {
                    Frame::Put { space, key, record } => pending.push(HintEntry::Put {
                        space,
                        key,
                        offset: pos as u64,
                        len: n as u32,
                        meta: record.meta,
                    }),
                    Frame::Delete { space, key } => pending.push(HintEntry::Delete { space, key }),
                    Frame::Commit { ops } => {
                        if ops as usize != pending.len() {
                            damage = Some((pos, "commit frame does not match its batch"));
                            break;
                        }
                        for h in pending.drain(..) {
                            if is_last {
                                hints.push(&h);
                            }
                            apply_hint(keydir, id, h);
                        }
                        committed_end = pos + n;
                    }
                }
                pos += n;
            }
            Err(FrameError::Truncated) => {
                damage = Some((pos, "torn frame"));
                break;
            }
            Err(FrameError::Damaged(why)) => {
                damage = Some((pos, why));
                break;
            }
        }
    }
    if damage.is_none() && pending.is_empty() {
        return Ok((bytes.len() as u64, hints, Some(seal)));
    }
    let (at, why) = damage.unwrap_or((committed_end, "batch without its commit frame"));
    // A crash only tears the end. Intact committed batches after the damage mean the damage
    // is not a torn tail, and cutting there would drop acknowledged writes.
    let torn_tail = is_last && !commit_follows(&bytes, seal, at);
    let len = damaged(
        &path,
        id,
        torn_tail,
        opts,
        report,
        &bytes,
        committed_end,
        at,
        why,
    )?;
    Ok((len, hints, Some(seal)))
}

/// The seal in the header of the segment `f` (read from its start); `None` when the header
/// cannot be read or is not valid.
fn read_seal(f: &mut File) -> Option<Seal> {
    let mut header = [0u8; SEGMENT_HEADER_LEN as usize];
    f.read_exact(&mut header).ok()?;
    Seal::from_header(&header)
}

/// Whether a valid commit frame starts anywhere after `at` (checksums bind a frame to where it
/// was written, so frames inside a value do not count).
fn commit_follows(bytes: &Bytes, seal: Seal, at: usize) -> bool {
    // Only a position holding a commit's length is checked further, so each costs a compare
    // rather than a CRC over whatever length its bytes claim: a large torn batch is searched
    // in time linear in its size.
    let len = (format::COMMIT_PAYLOAD_LEN as u32).to_le_bytes();
    let end = bytes.len().saturating_sub(format::FRAME_HEADER_LEN);
    (at + 1..end).any(|p| {
        bytes[p..].starts_with(&len)
            && matches!(
                read_frame(
                    &bytes.slice(p..),
                    format::COMMIT_PAYLOAD_LEN as u64,
                    seal,
                    p as u64
                ),
                Ok((Frame::Commit { .. }, _))
            )
    })
}

/// Handles a segment whose bytes from `cut` on cannot be replayed (damage found at `at`).
#[allow(clippy::too_many_arguments)]
fn damaged(
    path: &Path,
    id: u64,
    torn_tail: bool,
    opts: &FsOptions,
    report: &mut RepairReport,
    bytes: &[u8],
    cut: usize,
    at: usize,
    why: &str,
) -> Result<u64> {
    let tail = &bytes[cut..];
    if torn_tail {
        // What a crash leaves: the tail of the last segment. Keep it beside for inspection.
        let side = write_side_file(path, &format!(".cut-{cut}"), tail)
            .map_err(|e| io_error("writing the cut tail of", path, e))?;
        truncate(path, cut as u64)?;
        tracing::warn!(
            segment = %path.display(),
            offset = cut,
            bytes = tail.len(),
            side_file = %side.display(),
            reason = why,
            "cut an incomplete tail off the last segment"
        );
        return Ok((cut as u64).max(SEGMENT_HEADER_LEN));
    }
    if !opts.repair {
        return Err(Error::Corrupt {
            location: path.display().to_string(),
            offset: Some(at as u64),
            reason: format!("{why} (segment {id}); open with repair to quarantine it"),
        });
    }
    let side = write_side_file(path, &format!(".quarantine-{cut}"), tail)
        .map_err(|e| io_error("writing the quarantined range of", path, e))?;
    truncate(path, cut as u64)?;
    tracing::error!(
        segment = %path.display(),
        offset = cut,
        bytes = tail.len(),
        side_file = %side.display(),
        reason = why,
        "quarantined a damaged range; the records in it are lost"
    );
    report.quarantined.push(Quarantined {
        segment: path.to_path_buf(),
        offset: cut as u64,
        bytes: tail.len() as u64,
        side_file: side,
    });
    Ok((cut as u64).max(SEGMENT_HEADER_LEN))
}

/// Cuts `path` to `len` bytes (a segment never shrinks below its header).
fn truncate(path: &Path, len: u64) -> Result<()> {
    if len < SEGMENT_HEADER_LEN {
        return rewrite_header(path);
    }
    let f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| io_error("opening", path, e))?;
    f.set_len(len)
        .map_err(|e| io_error("truncating", path, e))?;
    f.sync_all().map_err(|e| io_error("syncing", path, e))
}

fn rewrite_header(path: &Path) -> Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .map_err(|e| io_error("opening", path, e))?;
    f.write_all(&Seal::new().header())
        .map_err(|e| io_error("writing", path, e))?;
    f.sync_all().map_err(|e| io_error("syncing", path, e))
}

/// Creates segment `id` durably: header written and synced, then the directory synced.
pub(crate) fn create_segment(dir: &Path, id: u64) -> Result<Segment> {
    let path = segment_path(dir, id);
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| io_error("creating", &path, e))?;
    let seal = Seal::new();
    let done = f
        .write_all(&seal.header())
        .and_then(|()| f.sync_all())
        .and_then(|()| sync_dir(dir));
    if let Err(e) = done {
        // A half-made segment must not stay: it would take this id and sit after the active one.
        drop(f);
        let _ = fs::remove_file(&path);
        let _ = sync_dir(dir);
        return Err(io_error("creating", &path, e));
    }
    Ok(Segment::new(f, seal))
}

/// Seals the active segment (sync, hint file) and makes segment `next` the active one. The
/// hint file is written in the background (see `hints.rs`).
pub(crate) fn seal_and_switch(inner: &Inner, w: &mut Writer, next: u64) -> Result<()> {
    let old = segment_path(&inner.dir, w.id);
    if let Err(e) = w.file.sync_data() {
        // Unsynced writes of this segment may be gone; a later sync cannot vouch for them.
        inner.poisoned.store(true, Ordering::Release);
        return Err(io_error("syncing", &old, e));
    }
    let segment = create_segment(&inner.dir, next)?;
    {
        let mut segments = inner.segments.write();
        if let Some(old) = segments.remove(&w.id) {
            segments.insert(w.id, old.sealed(&inner.opts));
        }
        segments.insert(next, segment.clone().active(&inner.opts));
    }
    inner.stats.lock().insert(
        next,
        SegStat {
            total: SEGMENT_HEADER_LEN,
            dead: 0,
        },
    );
    // Nothing fails from here on: the sealed segment's hint log leaves the writer only now.
    // The frame buffer, and the log of the hint written before, are kept: sized for this
    // store's batches and segments, their pages are in place already.
    let scratch = std::mem::take(&mut w.scratch);
    let sealed = std::mem::take(&mut w.hints);
    let hints = inner.hints.start(inner.dir.clone(), w.id, w.len, sealed);
    *w = Writer::new(next, segment, SEGMENT_HEADER_LEN, hints, &inner.opts);
    w.scratch = scratch;
    Ok(())
}

/// Starts a new segment once the active one is full.
pub(crate) fn roll_over(inner: &Inner, w: &mut Writer) -> Result<()> {
    let next = w.id.checked_add(1).ok_or_else(ids_exhausted)?;
    seal_and_switch(inner, w, next)
}

pub(crate) fn ids_exhausted() -> Error {
    Error::backend("fs", false, "segment ids are exhausted")
}

/// Writes the hint file of segment `id`, `len` bytes long, in `dir`.
pub(crate) fn write_hint_file(dir: &Path, id: u64, len: u64, hints: &HintLog) -> Result<()> {
    let path = hint_path(dir, id);
    let Some((header, body, crc)) = hints.parts(len) else {
        // Only an entry that cannot be encoded gets here; opening scans the segment instead.
        return Ok(());
    };
    write_atomic(dir, &path, &[&header, body, &crc]).map_err(|e| io_error("writing", &path, e))
}

/// Syncs the active segment, writes its hint so the next open is fast, releases the lock.
pub(crate) fn close(inner: &Inner) -> Result<()> {
    let w = inner.writer.lock();
    if inner.closed.load(Ordering::Acquire) {
        return Ok(());
    }
    if inner.poisoned.load(Ordering::Acquire) {
        return Err(Error::backend(
            "fs",
            false,
            "an earlier fsync failed; what was not synced may be lost — reopen to recover",
        ));
    }
    let path = segment_path(&inner.dir, w.id);
    if let Err(e) = w.file.sync_data() {
        inner.poisoned.store(true, Ordering::Release);
        return Err(io_error("syncing", &path, e));
    }
    inner.hints.wait();
    write_hint_file(&inner.dir, w.id, w.len, &w.hints)?;
    // Marked under the writer lock: no apply can slip in after the final sync.
    inner.closed.store(true, Ordering::Release);
    drop(w);
    inner.lock.lock().take();
    Ok(())
}
