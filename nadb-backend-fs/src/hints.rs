//! Hint files of sealed segments, written beside the write path.
//!
//! A segment fills up inside `apply`; writing its hint file there (tens of megabytes,
//! fsync, rename, directory fsync) would stall every write behind it. A hint only makes
//! opening faster — opening reads a segment whose hint is missing or damaged — so the
//! hint of a sealed segment is written on a thread of its own, one at a time:
//!
//! - it goes through a temporary file and a rename, so a hint file either is whole or
//!   does not exist; a crash leaves at most a `.tmp` file, which opening deletes;
//! - a failure is logged and costs only the hint: opening reads that segment instead;
//! - everything that deletes a segment or gives up the directory waits for the hint in
//!   flight first (compaction before it deletes segments, `close` and drop before the lock
//!   is released), so no hint outlives its segment or lands in a directory another process
//!   holds.

use std::path::PathBuf;
use std::thread::JoinHandle;

use parking_lot::Mutex;

use crate::format::HintLog;
use crate::open::write_hint_file;

/// The hint write in flight, if any.
#[derive(Default)]
pub(crate) struct HintWriter {
    job: Mutex<Option<JoinHandle<HintLog>>>,
}

impl HintWriter {
    /// Writes the hint file of sealed segment `id`, `len` bytes long, after the write in
    /// flight (if any) finishes. Returns the log of that earlier write, emptied, for the next
    /// segment: its pages are in place already.
    pub(crate) fn start(&self, dir: PathBuf, id: u64, len: u64, hints: HintLog) -> HintLog {
        let mut job = self.job.lock();
        let recycled = job.take().and_then(finish).unwrap_or_default();
        let spawned = std::thread::Builder::new()
            .name("nadb-fs-hint".into())
            .spawn(move || {
                let mut hints = hints;
                write_logged(&dir, id, len, &hints);
                hints.clear();
                hints
            });
        match spawned {
            Ok(handle) => *job = Some(handle),
            Err(e) => tracing::warn!(
                error = %e,
                segment = id,
                "no thread to write a hint file; opening reads the segment instead"
            ),
        }
        recycled
    }

    /// Waits for the hint write in flight, if any.
    pub(crate) fn wait(&self) {
        if let Some(handle) = self.job.lock().take() {
            finish(handle);
        }
    }
}

fn finish(handle: JoinHandle<HintLog>) -> Option<HintLog> {
    // The thread only writes a file and logs; a panic there loses only the hint.
    handle.join().ok()
}

fn write_logged(dir: &std::path::Path, id: u64, len: u64, hints: &HintLog) {
    if let Err(e) = write_hint_file(dir, id, len, hints) {
        tracing::warn!(
            error = %e,
            segment = id,
            "could not write a hint file; opening reads the segment instead"
        );
    }
}
