//! Compaction: live records of the sealed segments rewritten into one new segment, then the
//! old segments deleted.
//!
//! Steps, and what a crash after each leaves on disk:
//!
//! 1. Seal the active segment A and start a new active segment A+2; A+1 is reserved for the
//!    compacted output, so replay order stays old segments < compacted < new writes.
//!    *Crash:* the old segments and an empty A+2 — the same state as before.
//! 2. Write every live record of segments ≤ A (expired ones too: expiry is the store's
//!    decision, by its clock) to `seg-(A+1).log.tmp`, in batches with commit frames, and fsync
//!    it. *Crash:* the `.tmp` file is deleted at the next open.
//! 3. Rename it to `seg-(A+1).log`, fsync the directory. *Crash:* replay reads the old
//!    segments, then A+1 which repeats exactly their live records — the same state.
//! 4. Write the hint file of A+1. *Crash:* as after 3 (a hint is optional).
//! 5. Point the keydir at A+1 for every key still in an old segment, then delete the old
//!    segments oldest first, fsyncing the directory after each. *Crash:* a prefix of the old
//!    segments is gone. Every tombstone in a remaining segment deletes a put in the same or a
//!    later remaining segment, never in a deleted one, so nothing is resurrected; A+1 then
//!    repeats the live records — the same state.
//!
//! An error after step 3 leaves A+1 registered, so the next compaction takes it in with the
//! other sealed segments; an old segment leaves the in-memory maps only once it is deleted.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::FileExt;

use bytes::BytesMut;
use nadb_core::{Error, Result};

use crate::files::{hint_path, io_error, segment_path, sync_dir, tmp_path};
use crate::format::{self, HintLog, SEGMENT_HEADER_LEN, Seal};
use crate::open::{seal_and_switch, write_hint_file};
use crate::{FsBackend, SegStat, Segment};

/// Frames per commit in the compacted segment.
const BATCH: usize = 1000;

fn crash_point(backend: &FsBackend, step: u8) -> Result<()> {
    if backend.0.opts.crash_compaction_at == Some(step) {
        return Err(Error::backend(
            "fs",
            false,
            format!("simulated crash after compaction step {step}"),
        ));
    }
    Ok(())
}

#[tracing::instrument(level = "info", name = "nadb.fs.compact", skip_all)]
pub(crate) async fn compact(backend: &FsBackend) -> Result<()> {
    // Owned by the blocking task, so a cancelled caller cannot let a second compaction start
    // while this one still runs.
    let one_at_a_time = backend.0.compacting.clone().lock_owned().await;
    let me = backend.clone();
    tokio::task::spawn_blocking(move || {
        let _held = one_at_a_time;
        compact_blocking(&me)
    })
    .await
    .map_err(|e| Error::backend("fs", false, e))?
}

fn compact_blocking(backend: &FsBackend) -> Result<()> {
    let inner = &backend.0;
    let dir = &inner.dir;
    // Step 1.
    let (sealed, out_id) = {
        let mut w = inner.writer.lock();
        backend.check_usable()?;
        let active = w.id;
        let next = active
            .checked_add(2)
            .ok_or_else(crate::open::ids_exhausted)?;
        seal_and_switch(inner, &mut w, next)?;
        let sealed: BTreeSet<u64> = inner
            .segments
            .read()
            .keys()
            .copied()
            .filter(|&id| id <= active)
            .collect();
        (sealed, active + 1)
    };
    // Step 5 deletes the hint of the segment just sealed: it must be written by then.
    inner.hints.wait();
    crash_point(backend, 1)?;
    // Step 2.
    let mut live = inner.keydir.read().entries_in(&sealed);
    live.sort_by_key(|(_, _, e)| (e.seg, e.offset));
    let out_path = segment_path(dir, out_id);
    let tmp = tmp_path(&out_path);
    let written = write_output(backend, &tmp, out_id, &live);
    if written.is_err() {
        // Nothing refers to the unfinished output; a failed attempt leaves no file behind.
        let _ = fs::remove_file(&tmp);
    }
    let (segment, len, hints, moves) = written?;
    crash_point(backend, 2)?;
    // Step 3.
    fs::rename(&tmp, &out_path).map_err(|e| io_error("renaming", &tmp, e))?;
    {
        // Registered at once: whatever happens next, the next compaction will take it in.
        let _w = inner.writer.lock();
        inner
            .segments
            .write()
            .insert(out_id, segment.clone().sealed(&inner.opts));
        inner.stats.lock().insert(
            out_id,
            SegStat {
                total: len,
                dead: len - SEGMENT_HEADER_LEN,
            },
        );
    }
    sync_dir(dir).map_err(|e| io_error("syncing directory", dir, e))?;
    crash_point(backend, 3)?;
    // Step 4.
    write_hint_file(&inner.dir, out_id, len, &hints)?;
    crash_point(backend, 4)?;
    // Step 5.
    {
        let _w = inner.writer.lock();
        let mut kd = inner.keydir.write();
        for (space, key, from, to) in &moves {
            kd.relocate(space, key, *from, *to);
        }
        let live_now = kd.live_bytes().get(&out_id).copied().unwrap_or(0);
        inner.stats.lock().insert(
            out_id,
            SegStat {
                total: len,
                dead: len.saturating_sub(SEGMENT_HEADER_LEN + live_now),
            },
        );
    }
    for (i, id) in sealed.iter().enumerate() {
        let hint = hint_path(dir, *id);
        if hint.exists() {
            fs::remove_file(&hint).map_err(|e| io_error("removing", &hint, e))?;
        }
        let seg = segment_path(dir, *id);
        fs::remove_file(&seg).map_err(|e| io_error("removing", &seg, e))?;
        sync_dir(dir).map_err(|e| io_error("syncing directory", dir, e))?;
        {
            // Readers take a segment's file under the keydir lock; nothing points here now.
            let _kd = inner.keydir.write();
            inner.segments.write().remove(id);
            inner.stats.lock().remove(id);
        }
        if i == 0 {
            crash_point(backend, 5)?;
        }
    }
    Ok(())
}

/// A segment's live records (space, key, keydir entry), as the output of a compaction.
type Live = [(nadb_core::Space, String, crate::keydir::Entry)];

/// What a compaction's move of one record does: space, key, from and to (segment, offset).
type Move = (nadb_core::Space, String, (u64, u64), (u64, u64));

/// Step 2: copies the `live` records, each verified, into the new segment file `tmp` and
/// syncs it; returns the segment, its length, its hints and where each record moved.
fn write_output(
    backend: &FsBackend,
    tmp: &std::path::Path,
    out_id: u64,
    live: &Live,
) -> Result<(Segment, u64, HintLog, Vec<Move>)> {
    let inner = &backend.0;
    let dir = &inner.dir;
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(tmp)
        .map_err(|e| io_error("creating", tmp, e))?;
    let mut len = SEGMENT_HEADER_LEN;
    // A salt of its own: a copied frame is checksummed again for where it now sits.
    let seal = Seal::new();
    file.write_all_at(&seal.header(), 0)
        .map_err(|e| io_error("writing", tmp, e))?;
    let mut hints = HintLog::new();
    let mut moves = Vec::with_capacity(live.len());
    let segments = inner.segments.read().clone();
    for chunk in live.chunks(BATCH) {
        let mut buf = BytesMut::new();
        for (space, key, e) in chunk {
            let src = segments.get(&e.seg).ok_or_else(|| {
                crate::corrupt(dir, e.seg, e.offset, "segment of a live key is missing")
            })?;
            // Verified before it is copied: compaction never spreads damage.
            let (frame, _) = crate::read_key_frame(dir, src, (e.seg, e.offset, e.len), space, key)?;
            let offset = len + buf.len() as u64;
            buf.extend_from_slice(&frame);
            hints.put(space, key, offset, e.len, &e.meta);
            moves.push((
                space.clone(),
                key.clone(),
                (e.seg, e.offset),
                (out_id, offset),
            ));
        }
        format::commit_frame(&mut buf, chunk.len() as u32)?;
        seal.sign(&mut buf, len);
        file.write_all_at(&buf, len)
            .map_err(|e| io_error("writing", tmp, e))?;
        len += buf.len() as u64;
    }
    file.sync_all().map_err(|e| io_error("syncing", tmp, e))?;
    let segment = Segment::new(file, seal);
    Ok((segment, len, hints, moves))
}
