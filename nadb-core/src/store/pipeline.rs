//! The write pipeline: pending buffer → flusher → backend, with group commit, retries and the
//! dead-letter queue.
//!
//! Every write becomes a *unit* (one API call's [`Batch`]) with a sequence number and joins a
//! FIFO queue; unconditional writes also go into the *overlay* (key → newest pending record or
//! delete) so every read sees them at once. One flusher task per store takes the whole queue
//! when a trigger fires, cuts it into chunks of whole units (at most `chunk_size` ops unless one
//! unit is larger; a unit with checks alone), coalesces each chunk (last write per key wins —
//! safe because a chunk is applied as one backend batch), applies the chunks, syncs once, and
//! then acknowledges every unit of the round: concurrent `Immediate` writers share that apply
//! and sync (group commit).
//!
//! A chunk failing with a temporary error is retried with exponential backoff. When it still
//! fails, waiting writers get the error; buffered units go to the bounded dead-letter queue and
//! their values stay readable through the overlay until they are persisted (`retry_dlq`) or
//! dropped (`clear_dlq`), so reads and a reopen never disagree silently. A later write of the
//! same key that persists supersedes the dead-lettered op.

use std::collections::{HashMap, VecDeque};
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use smallvec::{SmallVec, smallvec};
use smol_str::SmolStr;
use tokio::sync::{Notify, Semaphore, oneshot, watch};

use super::Engine;
use super::overlay::{Overlays, Pending, Slot};
use super::policy::{FlushPolicy, WriteConfig};
use crate::backend::{Batch, Check, Op};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::record::{Meta, Record};
use crate::space::Space;
use crate::stats::Histogram;

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// One write as the pipeline holds it. The key is shared with the overlay, so a buffered
/// write allocates its key once, and the task that applies it allocates its own copies.
pub(crate) struct PendingOp {
    key: SmolStr,
    /// The record to store; `None`: delete the key.
    put: Option<Record>,
}

/// The writes of one API call as the pipeline takes them: one space, checks, ops in order.
pub(crate) struct Writes {
    space: Space,
    checks: Vec<Check>,
    ops: SmallVec<[PendingOp; 1]>,
}

impl Writes {
    /// No writes yet, in `space`.
    pub(crate) fn new(space: Space) -> Writes {
        Writes {
            space,
            checks: Vec::new(),
            ops: SmallVec::new(),
        }
    }

    /// A single put, the plain `set`: nothing but the key is allocated.
    pub(crate) fn one(space: Space, key: &str, record: Record) -> Writes {
        Writes {
            space,
            checks: Vec::new(),
            ops: smallvec![PendingOp {
                key: SmolStr::new(key),
                put: Some(record),
            }],
        }
    }

    /// Adds a put.
    pub(crate) fn put(&mut self, key: &str, record: Record) {
        self.ops.push(PendingOp {
            key: SmolStr::new(key),
            put: Some(record),
        });
    }

    fn keys(&self) -> impl Iterator<Item = &str> {
        self.ops.iter().map(|op| &*op.key)
    }

    /// The keys as the overlay holds them (a copy of a key longer than 23 bytes is shared).
    fn shared_keys(&self) -> impl Iterator<Item = SmolStr> {
        self.ops.iter().map(|op| op.key.clone())
    }

    /// A copy as a backend batch (for the dead-letter queue).
    fn to_batch(&self) -> Batch {
        Batch {
            space: self.space.clone(),
            checks: self.checks.clone(),
            ops: self
                .ops
                .iter()
                .map(|op| match &op.put {
                    Some(record) => Op::Put {
                        key: op.key.to_string(),
                        record: record.clone(),
                    },
                    None => Op::Delete {
                        key: op.key.to_string(),
                    },
                })
                .collect(),
        }
    }
}

impl From<Batch> for Writes {
    fn from(batch: Batch) -> Writes {
        Writes {
            space: batch.space,
            checks: batch.checks,
            ops: batch
                .ops
                .into_iter()
                .map(|op| match op {
                    Op::Put { key, record } => PendingOp {
                        key: SmolStr::new(key),
                        put: Some(record),
                    },
                    Op::Delete { key } => PendingOp {
                        key: SmolStr::new(key),
                        put: None,
                    },
                })
                .collect(),
        }
    }
}

struct Unit {
    seq: u64,
    writes: Writes,
    bytes: usize,
    /// Buffer room the unit holds, given back when it is settled (none for a dead-lettered
    /// write sent again: it already sat in memory).
    room: usize,
    ack: Option<oneshot::Sender<Result<()>>>,
    /// Applied by a round that was cancelled before its sync: needs only sync and ack.
    applied: bool,
    /// May already be in the backend: it was being applied when its round was cancelled, or
    /// it is a dead-lettered write sent again (its failure may have been a lost reply). Such
    /// a unit is applied in a batch of its own, so a backend that recognises a batch it
    /// already applied (as Redis does after a lost reply) never takes a mixed batch for one.
    uncertain: bool,
    /// Writes a key that something pending also writes (or carries checks): its chunk must
    /// be coalesced. Without any such unit a chunk's keys are all distinct.
    overlaps: bool,
}

/// A batch the backend refused; see [`Store::dlq`](super::Store::dlq).
#[derive(Clone, Debug)]
pub struct DeadLetter {
    /// Position in the store's write order (a batch sent again by
    /// [`Store::retry_dlq`](super::Store::retry_dlq) takes a new one).
    pub seq: u64,
    /// The writes not persisted (ops superseded by a later persisted write are removed).
    pub batch: Batch,
    /// The last error, as text.
    pub error: String,
    /// When the batch was dead-lettered.
    pub failed_at: Timestamp,
}

/// What the dead-letter queue holds, without payloads.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DlqSummary {
    /// Entries (batches).
    pub entries: u64,
    /// Operations in them.
    pub ops: u64,
    /// Stored value bytes in them.
    pub bytes: u64,
    /// Entries evicted because the queue was full (their writes are lost).
    pub evicted: u64,
    /// The newest entry's error.
    pub last_error: Option<String>,
}

/// Write-pipeline figures, part of [`Stats`](crate::Stats).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PipelineStats {
    /// Flush rounds that applied something.
    pub flushes: u64,
    /// Operations applied to the backend (after coalescing).
    pub ops_flushed: u64,
    /// Operations coalesced away (a later write of the same key in the same chunk).
    pub ops_coalesced: u64,
    /// Operations waiting in the buffer.
    pub pending_ops: u64,
    /// Value bytes waiting in the buffer.
    pub pending_bytes: u64,
    /// Age of the oldest waiting write, milliseconds.
    pub oldest_pending_ms: u64,
    /// Dead-letter entries.
    pub dlq_entries: u64,
    /// Dead-letter entries evicted.
    pub dlq_evicted: u64,
    /// Chunk applies retried after a temporary error.
    pub retries: u64,
    /// Writers that waited for buffer room.
    pub backpressure_waits: u64,
    /// Latency of one chunk's backend apply, as [`OpStats`](crate::OpStats).
    pub chunk: crate::stats::OpStats,
    /// Largest number of writes acknowledged by one flush round (group commit).
    pub max_group: u64,
    /// Mean number of writes acknowledged per flush round.
    pub mean_group: f64,
}

#[derive(Default)]
struct State {
    next_seq: u64,
    queue: VecDeque<Unit>,
    queued_ops: usize,
    queued_bytes: usize,
    /// When the oldest queued unit was queued: the interval trigger's start. Only the front
    /// unit's time matters (a round takes the whole queue), so a write reads the clock only
    /// when it finds the queue empty.
    queued_oldest: Option<Instant>,
    /// Ops, bytes and enqueue time of the oldest unit of the round in progress, which are no
    /// longer queued but not applied either.
    round_ops: usize,
    round_bytes: usize,
    round_oldest: Option<Instant>,
    waiting_acks: usize,
    spare: VecDeque<Unit>,
    overlay: Overlays,
    dlq: VecDeque<DeadLetter>,
    /// The error of the last write dead-lettered (the queue is in write order, not failure
    /// order).
    last_dlq_error: Option<String>,
    flush_target: u64,
    shutdown: bool,
}

/// The pending buffer and its signals; owned by the engine, drained by the flusher task.
pub(crate) struct Pipeline {
    /// Keys in the overlay, readable without the lock so reads skip it when nothing is pending.
    overlay_keys: std::sync::atomic::AtomicUsize,
    pub(crate) policy: FlushPolicy,
    pub(crate) config: WriteConfig,
    state: Mutex<State>,
    /// Held by whoever runs a flush round: the flusher task, or a waiting writer that leads.
    round_lock: tokio::sync::Mutex<()>,
    wake: Notify,
    processed: watch::Sender<u64>,
    room: Semaphore,
    room_total: usize,
    flushes: AtomicU64,
    ops_flushed: AtomicU64,
    ops_coalesced: AtomicU64,
    dlq_evicted: AtomicU64,
    retries: AtomicU64,
    backpressure_waits: AtomicU64,
    rounds_units: AtomicU64,
    max_group: AtomicU64,
    chunk_latency: Histogram,
}

/// What a write holds in the buffer: its key and stored value (at least 1).
fn bytes_of<'a>(ops: impl Iterator<Item = (&'a str, Option<&'a Record>)>) -> usize {
    ops.map(|(key, put)| key.len() + put.map_or(0, |r| r.value.len()))
        .sum::<usize>()
        .max(1)
}

fn batch_bytes(batch: &Batch) -> usize {
    bytes_of(batch.ops.iter().map(|op| match op {
        Op::Put { key, record } => (key.as_str(), Some(record)),
        Op::Delete { key } => (key.as_str(), None),
    }))
}

/// A copy of an error for every writer of a failed chunk (errors are not `Clone`).
fn share_error(e: &Error) -> Error {
    match e {
        Error::Conflict { reason } => Error::Conflict {
            reason: reason.clone(),
        },
        Error::Closed => Error::Closed,
        Error::Backend {
            backend, temporary, ..
        } => Error::backend(backend.clone(), *temporary, e.to_string()),
        other => Error::backend("pipeline", false, other.to_string()),
    }
}

impl Pipeline {
    pub(crate) fn new(policy: FlushPolicy, config: WriteConfig) -> Pipeline {
        let room_total = config
            .max_pending_bytes
            .clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize));
        Pipeline {
            overlay_keys: std::sync::atomic::AtomicUsize::new(0),
            policy,
            config,
            state: Mutex::new(State {
                next_seq: 1,
                ..State::default()
            }),
            round_lock: tokio::sync::Mutex::new(()),
            wake: Notify::new(),
            processed: watch::Sender::new(0),
            room: Semaphore::new(room_total),
            room_total,
            flushes: AtomicU64::new(0),
            ops_flushed: AtomicU64::new(0),
            ops_coalesced: AtomicU64::new(0),
            dlq_evicted: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            backpressure_waits: AtomicU64::new(0),
            rounds_units: AtomicU64::new(0),
            max_group: AtomicU64::new(0),
            chunk_latency: Histogram::default(),
        }
    }

    /// Whether the overlay is empty, read without the lock: reads skip it then.
    fn nothing_pending(&self) -> bool {
        self.overlay_keys.load(std::sync::atomic::Ordering::Acquire) == 0
    }

    fn publish(&self, st: &State) {
        self.overlay_keys
            .store(st.overlay.len(), std::sync::atomic::Ordering::Release);
    }

    /// The newest pending op for `key`, if any (`Some(None)`: a pending delete).
    pub(crate) fn lookup(&self, space: &Space, key: &str) -> Option<Pending> {
        self.view(space, key, |r| r.cloned())
    }

    /// Waits until no flush round runs and keeps new ones from starting while the guard is
    /// held: what the backend holds and which writes are dead-lettered then agree.
    pub(crate) async fn hold_rounds(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.round_lock.lock().await
    }

    /// The newest pending op for `key`, if any, and whether it is dead-lettered.
    pub(crate) fn lookup_dead(&self, space: &Space, key: &str) -> Option<(Pending, bool)> {
        if self.nothing_pending() {
            return None;
        }
        let st = self.state.lock();
        let slot = st.overlay.get(space, key)?;
        Some((slot.pending.clone(), slot.dead))
    }

    /// `f` of the newest pending op for `key` (`None`: a pending delete), if there is one;
    /// lets a read take only what it needs under the lock.
    pub(crate) fn view<T>(
        &self,
        space: &Space,
        key: &str,
        f: impl FnOnce(Option<&Record>) -> T,
    ) -> Option<T> {
        if self.nothing_pending() {
            return None;
        }
        let st = self.state.lock();
        st.overlay
            .get(space, key)
            .map(|slot| f(slot.pending.as_ref()))
    }

    /// The pending ops of `space` whose keys start with `prefix`, in key order: the key and
    /// the put's metadata (`None`: a delete). After a drain these are the dead-lettered ones
    /// (and any written since), which listings add to what the backend holds.
    pub(crate) fn pending_listing(
        &self,
        space: &Space,
        prefix: &str,
    ) -> Vec<(String, Option<Meta>)> {
        if self.nothing_pending() {
            return Vec::new();
        }
        let mut out = self.state.lock().overlay.listing(space, prefix);
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Whether the pending write of `key` is a put that follows a pending delete.
    pub(crate) fn follows_delete(&self, space: &Space, key: &str) -> bool {
        let st = self.state.lock();
        st.overlay
            .get(space, key)
            .is_some_and(|slot| slot.after_delete)
    }

    /// Whether anything of `space` is pending (queued or dead-lettered).
    pub(crate) fn has_pending(&self, space: &Space) -> bool {
        if self.nothing_pending() {
            return false;
        }
        let st = self.state.lock();
        st.overlay.has_space(space)
    }

    /// Whether a flush trigger has fired; the interval trigger only when `now` is given (a
    /// writer leaves it to the flusher's timer).
    fn should_flush(&self, st: &State, now: Option<Instant>) -> bool {
        let Some(first) = st.queue.front() else {
            return false;
        };
        if st.shutdown || st.flush_target >= first.seq {
            return true;
        }
        if st.waiting_acks > 0 {
            return true;
        }
        match self.policy {
            FlushPolicy::Immediate => true,
            FlushPolicy::Manual => false,
            FlushPolicy::Buffered(b) => {
                b.max_ops.is_some_and(|n| st.queued_ops >= n)
                    || b.max_bytes.is_some_and(|n| st.queued_bytes >= n)
                    || b.interval
                        .zip(st.queued_oldest)
                        .and_then(|(d, oldest)| oldest.checked_add(d))
                        .zip(now)
                        .is_some_and(|(at, now)| now >= at)
            }
        }
    }

    fn request_flush(&self) -> u64 {
        let target = {
            let mut st = self.state.lock();
            let last = st.next_seq - 1;
            st.flush_target = st.flush_target.max(last);
            last
        };
        self.wake.notify_one();
        target
    }

    pub(crate) fn begin_shutdown(&self) {
        self.state.lock().shutdown = true;
        self.wake.notify_one();
    }

    pub(crate) fn dlq(&self) -> Vec<DeadLetter> {
        self.state.lock().dlq.iter().cloned().collect()
    }

    pub(crate) fn dlq_summary(&self) -> DlqSummary {
        let st = self.state.lock();
        DlqSummary {
            entries: st.dlq.len() as u64,
            ops: st.dlq.iter().map(|d| d.batch.ops.len() as u64).sum(),
            bytes: st.dlq.iter().map(|d| batch_bytes(&d.batch) as u64).sum(),
            evicted: self.dlq_evicted.load(Relaxed),
            last_error: st.last_dlq_error.clone().filter(|_| !st.dlq.is_empty()),
        }
    }

    pub(crate) fn stats(&self) -> PipelineStats {
        let st = self.state.lock();
        let flushes = self.flushes.load(Relaxed);
        PipelineStats {
            flushes,
            ops_flushed: self.ops_flushed.load(Relaxed),
            ops_coalesced: self.ops_coalesced.load(Relaxed),
            pending_ops: (st.queued_ops + st.round_ops) as u64,
            pending_bytes: (st.queued_bytes + st.round_bytes) as u64,
            oldest_pending_ms: st
                .round_oldest
                .or(st.queued_oldest)
                .map_or(0, |at| at.elapsed().as_millis() as u64),
            dlq_entries: st.dlq.len() as u64,
            dlq_evicted: self.dlq_evicted.load(Relaxed),
            retries: self.retries.load(Relaxed),
            backpressure_waits: self.backpressure_waits.load(Relaxed),
            chunk: self.chunk_latency.summary(),
            max_group: self.max_group.load(Relaxed),
            mean_group: if flushes == 0 {
                0.0
            } else {
                self.rounds_units.load(Relaxed) as f64 / flushes as f64
            },
        }
    }

    /// `Unpersisted`, saying how much, while the dead-letter queue holds writes.
    pub(crate) fn check_persisted(&self) -> Result<()> {
        let s = self.dlq_summary();
        if s.entries == 0 {
            return Ok(());
        }
        Err(self.unpersisted_from(s))
    }

    /// The `Unpersisted` error for what the dead-letter queue holds.
    pub(crate) fn unpersisted(&self) -> Error {
        self.unpersisted_from(self.dlq_summary())
    }

    fn unpersisted_from(&self, s: DlqSummary) -> Error {
        Error::Unpersisted {
            ops: s.ops,
            bytes: s.bytes,
            last_error: s.last_error.unwrap_or_default(),
        }
    }

    /// Removes dead-letter entries; their pending values stop being readable.
    pub(crate) fn clear_dlq(&self) -> u64 {
        let mut st = self.state.lock();
        let dead: Vec<DeadLetter> = st.dlq.drain(..).collect();
        for d in &dead {
            forget_overlay(&mut st, d.seq, &d.batch.space, overlay_keys(&d.batch));
        }
        self.publish(&st);
        dead.len() as u64
    }

    /// The buffer room a write of `bytes` takes: all of it at most, so any write fits.
    fn room_cost(&self, bytes: usize) -> u32 {
        bytes.min(self.room_total) as u32
    }

    /// Takes buffer room for a write of `bytes` if the buffer has it now; returns the room
    /// taken.
    fn try_reserve_room(&self, bytes: usize) -> Option<usize> {
        let cost = self.room_cost(bytes);
        let permit = self.room.try_acquire_many(cost).ok()?;
        permit.forget();
        Some(cost as usize)
    }

    /// Takes buffer room for a write of `bytes` that [`Pipeline::try_reserve_room`] found
    /// missing: asks for a flush and waits for it to give some back. Returns the room taken.
    async fn wait_for_room(&self, bytes: usize) -> Result<usize> {
        self.backpressure_waits.fetch_add(1, Relaxed);
        // The buffer is full: make room rather than wait for a trigger that may never come.
        self.request_flush();
        let cost = self.room_cost(bytes);
        self.room
            .acquire_many(cost)
            .await
            .map_err(|_| Error::Closed)?
            .forget();
        Ok(cost as usize)
    }

    /// Queues `writes` as the newest unit; unchecked writes become visible to reads at once.
    fn enqueue(
        &self,
        st: &mut State,
        mut writes: Writes,
        bytes: usize,
        room: usize,
        ack: Option<oneshot::Sender<Result<()>>>,
    ) {
        let seq = st.next_seq;
        st.next_seq += 1;
        let mut overlaps = !writes.checks.is_empty();
        if writes.checks.is_empty() {
            let mut m = st.overlay.writer(&writes.space);
            for op in &mut writes.ops {
                let prev = m.get(&op.key);
                overlaps |= prev.is_some();
                let after_delete = prev.is_some_and(|p| p.pending.is_none() || p.after_delete);
                // An overwrite of a pending record keeps its creation time, as the backend
                // does for stored ones.
                if let (
                    Some(record),
                    Some(Slot {
                        pending: Some(prev),
                        ..
                    }),
                ) = (&mut op.put, prev)
                    && !prev.meta.is_expired(record.meta.updated_at)
                {
                    record.meta.created_at = prev.meta.created_at;
                }
                let slot = Slot {
                    seq,
                    pending: op.put.clone(),
                    after_delete,
                    dead: false,
                };
                m.insert(&op.key, slot);
            }
            self.publish(st);
        }
        st.queued_ops += writes.ops.len();
        st.queued_bytes += bytes;
        st.waiting_acks += usize::from(ack.is_some());
        if st.queue.is_empty() {
            st.queued_oldest = Some(Instant::now());
        }
        st.queue.push_back(Unit {
            seq,
            writes,
            bytes,
            room,
            ack,
            applied: false,
            uncertain: false,
            overlaps,
        });
    }

    /// Queues every dead-lettered op again as a new unit, except those a newer unapplied write
    /// of the same key supersedes: these stay dead-lettered until that write persists (which
    /// removes them) or fails. Returns the number of ops queued. The caller holds the round
    /// lock, so every unapplied write is in the queue or the overlay.
    fn requeue_dead_letters(&self, st: &mut State) -> u64 {
        // The newest queued unit writing each key (checked units are not in the overlay).
        let mut queued: FastMap<(Space, SmolStr), u64> = FastMap::default();
        for u in &st.queue {
            for op in &u.writes.ops {
                let seq = queued
                    .entry((u.writes.space.clone(), op.key.clone()))
                    .or_default();
                *seq = (*seq).max(u.seq);
            }
        }
        let mut requeued = 0;
        let dead = std::mem::take(&mut st.dlq);
        for mut d in dead {
            let space = d.batch.space.clone();
            let superseded = |st: &State, key: &str| {
                let pending = st.overlay.get(&space, key);
                pending.is_some_and(|slot| slot.seq > d.seq)
                    || queued
                        .get(&(space.clone(), SmolStr::new(key)))
                        .is_some_and(|&seq| seq > d.seq)
            };
            let (stay, again): (Vec<Op>, Vec<Op>) = d
                .batch
                .ops
                .drain(..)
                .partition(|op| superseded(st, op.key()));
            if !again.is_empty() {
                requeued += again.len() as u64;
                let batch = Batch {
                    space: space.clone(),
                    checks: Vec::new(),
                    ops: again,
                };
                let bytes = batch_bytes(&batch);
                self.enqueue(st, batch.into(), bytes, 0, None);
                if let Some(u) = st.queue.back_mut() {
                    u.uncertain = true;
                }
            }
            if !stay.is_empty() {
                d.batch.ops = stay;
                st.dlq.push_back(d);
            }
        }
        requeued
    }
}

/// The keys of a dead-lettered batch, as the overlay holds them.
fn overlay_keys(batch: &Batch) -> impl Iterator<Item = SmolStr> + '_ {
    batch.ops.iter().map(|op| SmolStr::new(op.key()))
}

/// Drops overlay entries written by unit `seq` (newer entries of the same keys stay).
fn forget_overlay(
    st: &mut State,
    seq: u64,
    space: &Space,
    keys: impl IntoIterator<Item = SmolStr>,
) {
    for key in keys {
        st.overlay.remove_if(space, &key, seq);
    }
}

/// What [`Engine::try_submit`] did with a batch.
pub(crate) enum Submitted {
    /// Buffered: nothing to wait for.
    Done,
    /// Queued; the caller waits with [`Engine::settle`] until it is applied and synced.
    Queued(oneshot::Receiver<Result<()>>),
    /// Not queued: the buffer has no room for it yet; [`Engine::settle`] waits for room.
    Full {
        writes: Writes,
        bytes: usize,
        wait: bool,
    },
}

impl Engine {
    /// Puts a batch into the pipeline. Returns once it is buffered, or — under `Immediate`,
    /// with `wait`, or when it carries checks — once it is applied and synced.
    pub(crate) async fn submit(&self, writes: Writes, wait: bool) -> Result<()> {
        let submitted = self.try_submit(writes, wait)?;
        self.settle(submitted).await
    }

    /// Queues a batch as [`Engine::submit`] does, as far as that is possible without waiting.
    pub(crate) fn try_submit(&self, writes: Writes, wait: bool) -> Result<Submitted> {
        if writes.ops.is_empty() && writes.checks.is_empty() {
            return Ok(Submitted::Done);
        }
        let p = &self.pipeline;
        let wait = wait || !writes.checks.is_empty() || p.policy == FlushPolicy::Immediate;
        let bytes = bytes_of(writes.ops.iter().map(|op| (&*op.key, op.put.as_ref())));
        match p.try_reserve_room(bytes) {
            Some(room) => self.queue(writes, bytes, room, wait),
            None => Ok(Submitted::Full {
                writes,
                bytes,
                wait,
            }),
        }
    }

    /// Completes what [`Engine::try_submit`] started.
    pub(crate) async fn settle(&self, submitted: Submitted) -> Result<()> {
        let rx = match submitted {
            Submitted::Done => return Ok(()),
            Submitted::Queued(rx) => rx,
            Submitted::Full {
                writes,
                bytes,
                wait,
            } => {
                let room = self.pipeline.wait_for_room(bytes).await?;
                match self.queue(writes, bytes, room, wait)? {
                    Submitted::Queued(rx) => rx,
                    _ => return Ok(()),
                }
            }
        };
        // Boxed: the round-leading future is large, and every write's future would otherwise
        // carry (and copy) its room.
        Box::pin(self.lead_until_acked(rx)).await
    }

    /// Queues a batch for which `room` is reserved.
    fn queue(&self, writes: Writes, bytes: usize, room: usize, wait: bool) -> Result<Submitted> {
        let p = &self.pipeline;
        let (tx, rx) = if wait {
            let (tx, rx) = oneshot::channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let wake = {
            let mut st = p.state.lock();
            if st.shutdown {
                drop(st);
                p.room.add_permits(room);
                return Err(Error::Closed);
            }
            p.enqueue(&mut st, writes, bytes, room, tx);
            // A waiting writer leads its own round; the flusher is only for buffered units. A
            // unit that starts an empty queue wakes the flusher so its interval timer is armed.
            !wait && (st.queue.len() == 1 || p.should_flush(&st, None))
        };
        if wake {
            p.wake.notify_one();
        }
        Ok(match rx {
            Some(rx) => Submitted::Queued(rx),
            None => Submitted::Done,
        })
    }

    /// Waits for a unit's acknowledgement, running flush rounds itself whenever no one else
    /// is: a lone writer pays no task switch, and writers arriving during a round are
    /// gathered into the next one (group commit).
    async fn lead_until_acked(&self, mut rx: oneshot::Receiver<Result<()>>) -> Result<()> {
        /// If the waiting writer is cancelled, the flusher takes over its queued unit.
        struct HandOff<'a>(&'a Notify);
        impl Drop for HandOff<'_> {
            fn drop(&mut self) {
                self.0.notify_one();
            }
        }
        let p = &self.pipeline;
        let hand_off = HandOff(&p.wake);
        let result = self.lead_rounds(&mut rx).await;
        std::mem::forget(hand_off);
        result
    }

    async fn lead_rounds(&self, rx: &mut oneshot::Receiver<Result<()>>) -> Result<()> {
        let p = &self.pipeline;
        loop {
            tokio::select! {
                biased;
                acked = &mut *rx => return acked.map_err(|_| Error::Closed)?,
                _guard = p.round_lock.lock() => {
                    match rx.try_recv() {
                        Ok(acked) => return acked,
                        Err(oneshot::error::TryRecvError::Closed) => return Err(Error::Closed),
                        Err(oneshot::error::TryRecvError::Empty) => {}
                    }
                    let units = take_queue(p);
                    if !units.is_empty() {
                        process_round(self, units).await;
                    }
                }
            }
        }
    }

    /// Returns once every write submitted before the call has been processed (applied, or
    /// dead-lettered) — without a final sync or a dead-letter check.
    pub(crate) async fn drain(&self) -> Result<()> {
        let target = self.pipeline.request_flush();
        let mut rx = self.pipeline.processed.subscribe();
        rx.wait_for(|p| *p >= target)
            .await
            .map(|_| ())
            .map_err(|_| Error::Closed)
    }

    /// `drain`, then fails if anything is left unpersisted, then syncs the backend.
    pub(crate) async fn flush_all(&self) -> Result<()> {
        self.drain().await?;
        self.pipeline.check_persisted()?;
        sync_with_retry(self).await
    }

    /// Queues dead-lettered writes again (in their original order) and flushes them. An
    /// entry leaves the queue only as its ops go back into the pipeline, all under one lock,
    /// so a concurrent `clear_dlq` or newer write is never undone.
    pub(crate) async fn retry_dlq(&self) -> Result<u64> {
        let p = &self.pipeline;
        let ops = {
            // With no round running, every write newer than a dead-lettered one is either
            // persisted (and has removed it) or still queued.
            let _round = p.round_lock.lock().await;
            let mut st = p.state.lock();
            if st.shutdown {
                return Err(Error::Closed);
            }
            p.requeue_dead_letters(&mut st)
        };
        self.flush_all().await?;
        Ok(ops)
    }
}

/// The flusher: one task per store, for buffered writes and triggers. Runs until the store is
/// closed or dropped, then drains.
pub(crate) async fn run(engine: Arc<Engine>) {
    loop {
        if !wait_for_trigger(&engine).await {
            // A round a writer leads (the sweeper's, which shutting down cancels) may hold
            // units it will put back: stop only once no round runs and the queue is empty.
            let _round = engine.pipeline.round_lock.lock().await;
            if engine.pipeline.state.lock().queue.is_empty() {
                break;
            }
            continue;
        }
        let _round = engine.pipeline.round_lock.lock().await;
        let units = take_queue(&engine.pipeline);
        if !units.is_empty() {
            process_round(&engine, units).await;
        }
    }
    if let Err(e) = engine.backend.sync().await {
        tracing::error!(error = %e, "final sync of a shut-down store failed");
    }
}

/// Takes every queued unit for a round.
fn take_queue(p: &Pipeline) -> VecDeque<Unit> {
    let mut st = p.state.lock();
    st.round_ops = std::mem::take(&mut st.queued_ops);
    st.round_bytes = std::mem::take(&mut st.queued_bytes);
    st.round_oldest = st.queued_oldest.take();
    st.waiting_acks = 0;
    // Every pending entry is now this round's, unless some belong to dead-lettered writes.
    if st.dlq.is_empty() && !st.queue.is_empty() {
        st.overlay.seal();
    } else {
        st.overlay.unseal();
    }
    // Swap in the spare buffer of the last round so a busy queue does not regrow each round.
    let spare = std::mem::take(&mut st.spare);
    std::mem::replace(&mut st.queue, spare)
}

/// Waits until a flush trigger fires; `false` once the store is shut down and drained.
async fn wait_for_trigger(engine: &Engine) -> bool {
    let p = &engine.pipeline;
    loop {
        let deadline = {
            let st = p.state.lock();
            if p.should_flush(&st, Some(Instant::now())) {
                return true;
            }
            if st.shutdown && st.queue.is_empty() {
                return false;
            }
            match (p.policy, st.queued_oldest) {
                (FlushPolicy::Buffered(b), Some(oldest)) => {
                    b.interval.and_then(|d| oldest.checked_add(d))
                }
                _ => None,
            }
        };
        match deadline {
            Some(at) => {
                tokio::select! {
                    _ = p.wake.notified() => {}
                    _ = tokio::time::sleep_until(at.into()) => {}
                }
            }
            None => p.wake.notified().await,
        }
    }
}

/// Sizes (in units) of the chunks a round is cut into: runs of whole units of one space, at
/// most `chunk_size` ops unless one unit is larger; a unit with checks, or one that may
/// already be in the backend, always alone.
fn chunk_sizes(units: &[Unit], chunk_size: usize) -> Vec<usize> {
    let mut sizes: Vec<usize> = Vec::new();
    let mut ops_in_last = 0;
    let mut last: Option<(&Space, bool)> = None;
    for u in units {
        let alone = !u.writes.checks.is_empty() || u.uncertain;
        let fits = last.is_some_and(|(space, last_alone)| {
            !last_alone
                && !alone
                && *space == u.writes.space
                && ops_in_last + u.writes.ops.len() <= chunk_size
        });
        if fits {
            ops_in_last += u.writes.ops.len();
            if let Some(n) = sizes.last_mut() {
                *n += 1;
            }
        } else {
            ops_in_last = u.writes.ops.len();
            last = Some((&u.writes.space, alone));
            sizes.push(1);
        }
    }
    sizes
}

/// A chunk's backend batch, its ops moved (not copied) out of the chunk's units; `origin`
/// says where each came from (`None`: a delete coalescing added) so they can be moved back.
struct Staged {
    batch: Batch,
    origin: Vec<Option<(usize, usize)>>,
    coalesced: u64,
}

/// One backend batch for a chunk: its checks, and the last op of each key in the order of
/// those last ops. A put that follows a delete of its key in the chunk keeps that delete in
/// front of it, so the backend treats the key as new (creation time) exactly as it would have
/// without coalescing.
fn coalesce(chunk: &mut [Unit]) -> Staged {
    struct KeyState {
        last: usize,
        deleted: bool,
        put_after_delete: bool,
    }
    let Some(first) = chunk.first() else {
        return Staged {
            batch: Batch::new(Space::default()),
            origin: Vec::new(),
            coalesced: 0,
        };
    };
    let mut batch = Batch::new(first.writes.space.clone());
    batch.checks = chunk
        .iter()
        .flat_map(|u| u.writes.checks.iter().cloned())
        .collect();
    let total: usize = chunk.iter().map(|u| u.writes.ops.len()).sum();
    let every = || {
        chunk
            .iter()
            .enumerate()
            .flat_map(|(u, unit)| (0..unit.writes.ops.len()).map(move |i| (u, i)))
    };
    // (unit, op, a delete goes first) for each op the batch takes.
    let plan: Vec<(usize, usize, bool)> = if chunk.iter().all(|u| !u.overlaps) {
        every().map(|(u, i)| (u, i, false)).collect()
    } else {
        let mut keys: FastMap<&str, KeyState> = FastMap::default();
        keys.reserve(total);
        for (n, (u, i)) in every().enumerate() {
            let op = &chunk[u].writes.ops[i];
            let k = keys.entry(&op.key).or_insert(KeyState {
                last: n,
                deleted: false,
                put_after_delete: false,
            });
            k.last = n;
            match op.put {
                None => k.deleted = true,
                Some(_) => k.put_after_delete = k.deleted,
            }
        }
        every()
            .enumerate()
            .filter_map(|(n, (u, i))| {
                let op = &chunk[u].writes.ops[i];
                let k = keys.get(&*op.key)?;
                (k.last == n).then_some((u, i, op.put.is_some() && k.put_after_delete))
            })
            .collect()
    };
    batch.ops.reserve_exact(plan.len());
    let mut origin = Vec::with_capacity(plan.len());
    for (u, i, delete_first) in plan {
        let Some(op) = chunk.get_mut(u).and_then(|unit| unit.writes.ops.get_mut(i)) else {
            continue;
        };
        // The backend's copy of the key is allocated here, by the task that frees it.
        let key = op.key.to_string();
        if delete_first {
            batch.delete(key.clone());
            origin.push(None);
        }
        batch.ops.push(match op.put.take() {
            Some(record) => Op::Put { key, record },
            None => Op::Delete { key },
        });
        origin.push(Some((u, i)));
    }
    let coalesced = total.saturating_sub(batch.ops.len()) as u64;
    Staged {
        batch,
        origin,
        coalesced,
    }
}

/// Whether a checked batch that failed its checks had already reached the backend: every
/// put's record is stored at exactly its version and every deleted key is gone.
async fn already_applied(engine: &Engine, batch: &Batch) -> bool {
    // A batch of checks alone leaves no trace: whether its checks held then is unknown.
    if batch.ops.is_empty() {
        return false;
    }
    let keys: Vec<String> = batch.ops.iter().map(|op| op.key().to_string()).collect();
    let Ok(stored) = engine.backend.get_meta_many(&batch.space, &keys).await else {
        return false;
    };
    batch.ops.iter().zip(stored).all(|(op, meta)| match op {
        Op::Put { record, .. } => meta.is_some_and(|m| m.version == record.meta.version),
        Op::Delete { .. } => meta.is_none(),
    })
}

/// Applies `batch`, retrying temporary errors; also says whether an attempt failed (then an
/// earlier attempt may have taken effect).
async fn apply_with_retry(engine: &Engine, batch: &Batch, synced: bool) -> (Result<()>, bool) {
    let cfg = engine.pipeline.config;
    let mut delay = cfg.retry_base_delay;
    let mut attempt = 1;
    loop {
        let started = engine.pipeline.chunk_latency.start();
        let result = engine.commit(batch, synced).await;
        engine
            .pipeline
            .chunk_latency
            .finish(started, result.is_ok());
        match result {
            Err(e) if e.is_temporary() && attempt < cfg.retry_attempts => {
                engine.pipeline.retries.fetch_add(1, Relaxed);
                tracing::debug!(error = %e, attempt, "backend apply failed; retrying");
                tokio::time::sleep(delay).await;
                delay = delay.saturating_mul(2).min(cfg.retry_max_delay);
                attempt += 1;
            }
            other => return (other, attempt > 1),
        }
    }
}

#[tracing::instrument(level = "debug", name = "nadb.backend.sync", skip_all)]
async fn sync_with_retry(engine: &Engine) -> Result<()> {
    let cfg = engine.pipeline.config;
    let mut delay = cfg.retry_base_delay;
    let mut attempt = 1;
    loop {
        match engine.backend.sync().await {
            Err(e) if e.is_temporary() && attempt < cfg.retry_attempts => {
                engine.pipeline.retries.fetch_add(1, Relaxed);
                tokio::time::sleep(delay).await;
                delay = delay.saturating_mul(2).min(cfg.retry_max_delay);
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// The units of a round in progress, in the buffer the queue handed over: each is marked
/// applied where it lies, and only failed ones are taken out, at the end. If the round is
/// dropped before it finishes (a leading writer was cancelled), they go back to the front of
/// the queue in order — those already applied marked so, to be synced and acknowledged
/// without a second apply — and the flusher is woken. Nothing taken from the queue is ever
/// lost.
struct InFlight<'a> {
    engine: &'a Engine,
    /// The round's units, in write order.
    units: Vec<Unit>,
    /// Where the chunk being applied lies in `units` (empty between chunks).
    current: Range<usize>,
    /// The ops of the current chunk, while they are being applied.
    staged: Option<Staged>,
    /// Units whose chunk or sync failed: position in `units`, and the error.
    failed: Vec<(usize, Error)>,
}

impl InFlight<'_> {
    /// Moves the ops of `chunk` into one coalesced backend batch.
    fn stage(&mut self, chunk: Range<usize>) -> &Batch {
        self.current = chunk.clone();
        &self.staged.insert(coalesce(&mut self.units[chunk])).batch
    }

    /// Moves the staged ops back into their units; returns how many coalescing dropped.
    fn unstage(&mut self) -> u64 {
        let Some(staged) = self.staged.take() else {
            return 0;
        };
        // Something is staged only while `current` is a chunk of `units`.
        let chunk = self.units.get_mut(self.current.clone()).unwrap_or_default();
        for (op, at) in staged.batch.ops.into_iter().zip(staged.origin) {
            if let Op::Put { record, .. } = op
                && let Some(slot) = at.and_then(|(u, i)| chunk.get_mut(u)?.writes.ops.get_mut(i))
            {
                slot.put = Some(record);
            }
        }
        staged.coalesced
    }

    /// Takes the failed units out of `units`, each with its error, in the order they failed
    /// (the dead-letter queue reports the last failure as its latest error).
    fn take_failed(&mut self) -> Vec<(Unit, Error)> {
        if self.failed.is_empty() {
            return Vec::new();
        }
        let mut units: Vec<Option<Unit>> = self.units.drain(..).map(Some).collect();
        let failed = self
            .failed
            .drain(..)
            .filter_map(|(at, e)| Some((units.get_mut(at)?.take()?, e)))
            .collect();
        self.units = units.into_iter().flatten().collect();
        self.current = 0..0;
        failed
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.unstage();
        // The chunk being applied may or may not have reached the backend.
        for u in self.units.get_mut(self.current.clone()).unwrap_or_default() {
            u.uncertain = true;
        }
        let failed = self.take_failed();
        let units = std::mem::take(&mut self.units);
        // Pushed to the front one by one below: the queue stays in write order.
        debug_assert!(units.is_sorted_by_key(|u| u.seq));
        let p = &self.engine.pipeline;
        let mut st = p.state.lock();
        // The round is over (finished, or its units go back to the queue just below).
        st.round_ops = 0;
        st.round_bytes = 0;
        let round_oldest = st.round_oldest.take();
        if !failed.is_empty() {
            dead_letter(p, &mut st, &failed, self.engine.clock.now());
            p.publish(&st);
        }
        let requeued = !units.is_empty();
        if requeued {
            // Their entries stay pending, so the overlay no longer matches one round.
            st.overlay.unseal();
        }
        for u in units.into_iter().rev() {
            st.queued_ops += u.writes.ops.len();
            st.queued_bytes += u.bytes;
            st.waiting_acks += usize::from(u.ack.is_some());
            st.queue.push_front(u);
        }
        if requeued {
            st.flush_target = st.flush_target.max(st.next_seq - 1);
            // The units put back are older than any queued since.
            st.queued_oldest = round_oldest.or(st.queued_oldest);
        }
        drop(st);
        settle_failed(p, failed);
        if requeued {
            p.wake.notify_one();
        }
    }
}

/// Tells the writers of failed units and releases their buffer room.
fn settle_failed(p: &Pipeline, failed: Vec<(Unit, Error)>) {
    let mut released = 0;
    for (u, e) in failed {
        released += u.room;
        if let Some(ack) = u.ack {
            let _ = ack.send(Err(e));
        }
    }
    p.room.add_permits(released);
}

// A root span: a writer leading the round carries other writers' units too.
#[tracing::instrument(
    level = "debug",
    name = "nadb.flush_round",
    parent = None,
    skip_all,
    fields(units = units.len())
)]
async fn process_round(engine: &Engine, units: VecDeque<Unit>) {
    let p = &engine.pipeline;
    let last_seq = units.back().map_or(0, |u| u.seq);
    let mut round = InFlight {
        engine,
        units: Vec::from(units),
        current: 0..0,
        staged: None,
        failed: Vec::new(),
    };
    // Units applied by a cancelled round come first (they are the oldest).
    let mut applied = round.units.iter().take_while(|u| u.applied).count();
    let sizes = chunk_sizes(&round.units[applied..], p.config.chunk_size.max(1));
    // A round of one chunk (the usual Immediate case) is applied and synced in one backend
    // call, which some backends do with a single durable commit.
    let one_call = sizes.len() == 1 && applied == 0;
    let mut synced = false;
    let mut next = applied;
    for n in sizes {
        let chunk = next..next + n;
        next += n;
        let uncertain = round.units[chunk.clone()].iter().all(|u| u.uncertain);
        let batch = round.stage(chunk.clone());
        let (mut result, retried) = apply_with_retry(engine, batch, one_call).await;
        synced = one_call && result.is_ok();
        // A checked batch may fail its own checks because it already took effect: in an
        // attempt whose reply was lost, in a cancelled round, or in a call the backend's
        // client sent twice by itself, which the store never sees fail. A put's version is
        // its own, so finding it stored proves the batch landed whatever the store saw; a
        // batch of deletes alone proves nothing (someone else may have deleted the keys), so
        // it is judged so only after a failure the store did see.
        // (A real conflict costs one more read of the batch's keys here.)
        if matches!(result, Err(Error::Conflict { .. }))
            && (uncertain || retried || batch.ops.iter().any(|op| matches!(op, Op::Put { .. })))
            && already_applied(engine, batch).await
        {
            result = engine.record_applied(batch).await;
        }
        let ops = batch.ops.len() as u64;
        let coalesced = round.unstage();
        round.current = next..next;
        match result {
            Ok(()) => {
                p.ops_flushed.fetch_add(ops, Relaxed);
                p.ops_coalesced.fetch_add(coalesced, Relaxed);
                applied += n;
                for u in &mut round.units[chunk] {
                    u.applied = true;
                }
            }
            Err(e) => round.failed.extend(chunk.map(|at| (at, share_error(&e)))),
        }
    }
    if applied > 0 {
        let sync = if synced {
            Ok(())
        } else {
            sync_with_retry(engine).await
        };
        if let Err(e) = sync {
            let InFlight { units, failed, .. } = &mut round;
            for (at, u) in units.iter().enumerate() {
                if u.applied {
                    failed.push((at, share_error(&e)));
                }
            }
        } else {
            // Group-commit figures count the writes this round acknowledged, not failed ones.
            let acked = applied as u64;
            p.flushes.fetch_add(1, Relaxed);
            p.rounds_units.fetch_add(acked, Relaxed);
            p.max_group.fetch_max(acked, Relaxed);
        }
    }
    // No await from here on: the round completes as a whole. Every unit not failed was
    // applied and synced.
    let failed = round.take_failed();
    let mut applied = std::mem::take(&mut round.units);
    drop(round);
    let now = engine.clock.now();
    let mut released = 0;
    let persisted = {
        let mut st = p.state.lock();
        // Failures first: a later unit of this round that persisted must supersede them.
        dead_letter(p, &mut st, &failed, now);
        // With every unit persisted, the entries they wrote go in one piece.
        let persisted = if failed.is_empty() {
            st.overlay.take_sealed()
        } else {
            None
        };
        if persisted.is_none() {
            st.overlay.unseal();
            for u in &applied {
                forget_overlay(&mut st, u.seq, &u.writes.space, u.writes.shared_keys());
            }
        }
        supersede_dead_letters(&mut st, &applied);
        st.overlay.trim();
        p.publish(&st);
        persisted
    };
    // Emptied outside the lock: writers need not wait for a round's worth of entries.
    let persisted = persisted.map(|mut g| {
        g.values_mut().for_each(|m| m.clear());
        g
    });
    for u in applied.drain(..) {
        released += u.room;
        if let Some(ack) = u.ack {
            let _ = ack.send(Ok(()));
        }
    }
    for (u, e) in failed {
        released += u.room;
        if let Some(ack) = u.ack {
            let _ = ack.send(Err(e));
        }
    }
    p.room.add_permits(released);
    {
        // The emptied buffers become the next ones, so a busy queue does not regrow.
        let mut st = p.state.lock();
        if applied.capacity() > st.spare.capacity() {
            st.spare = VecDeque::from(applied);
        }
        if let Some(g) = persisted {
            st.overlay.recycle(g);
        }
    }
    p.processed.send_modify(|s| *s = (*s).max(last_seq));
}

/// Settles failed units: a waiting writer will be told (its write was never acknowledged, so
/// nothing of it is kept); a buffered unit goes to the dead-letter queue, evicting the oldest
/// entry when full.
///
/// The queue is kept in write order: a round's units can fail out of order (a failed sync
/// fails chunks applied before a chunk that had already failed).
fn dead_letter(p: &Pipeline, st: &mut State, failed: &[(Unit, Error)], now: Timestamp) {
    for (u, e) in failed {
        if u.ack.is_some() {
            forget_overlay(st, u.seq, &u.writes.space, u.writes.shared_keys());
            continue;
        }
        tracing::warn!(error = %e, ops = u.writes.ops.len(), "writes dead-lettered");
        st.last_dlq_error = Some(e.to_string());
        for op in &u.writes.ops {
            st.overlay.mark_dead(&u.writes.space, &op.key, u.seq);
        }
        let at = st.dlq.partition_point(|d| d.seq < u.seq);
        st.dlq.insert(
            at,
            DeadLetter {
                seq: u.seq,
                batch: u.writes.to_batch(),
                error: e.to_string(),
                failed_at: now,
            },
        );
        while st.dlq.len() > p.config.dlq_capacity {
            if let Some(old) = st.dlq.pop_front() {
                p.dlq_evicted.fetch_add(1, Relaxed);
                tracing::error!(
                    ops = old.batch.ops.len(),
                    "dead-letter queue full: oldest entry evicted, its writes are lost"
                );
                forget_overlay(st, old.seq, &old.batch.space, overlay_keys(&old.batch));
            }
        }
    }
}

/// Removes from the dead-letter queue the ops that a newer write of the same key, now
/// persisted by one of `applied`, overwrote.
///
/// Reads of a superseded op's key stop seeing the dead-lettered value (its overlay slot goes),
/// so they see the persisted newer one.
fn supersede_dead_letters(st: &mut State, applied: &[Unit]) {
    if st.dlq.is_empty() || applied.is_empty() {
        return;
    }
    // The newest applied write of each key, found once per round rather than per entry.
    let mut newest: FastMap<(&Space, &str), u64> = FastMap::default();
    for u in applied {
        for key in u.writes.keys() {
            let seq = newest.entry((&u.writes.space, key)).or_default();
            *seq = (*seq).max(u.seq);
        }
    }
    let mut dropped: Vec<(u64, Batch)> = Vec::new();
    for d in st.dlq.iter_mut() {
        let mut gone = Batch::new(d.batch.space.clone());
        d.batch.ops.retain(|op| {
            let superseded = newest
                .get(&(&d.batch.space, op.key()))
                .is_some_and(|&seq| seq > d.seq);
            if superseded {
                gone.ops.push(op.clone());
            }
            !superseded
        });
        if !gone.ops.is_empty() {
            dropped.push((d.seq, gone));
        }
    }
    for (dseq, gone) in &dropped {
        forget_overlay(st, *dseq, &gone.space, overlay_keys(gone));
    }
    st.dlq.retain(|d| !d.batch.ops.is_empty());
}

#[cfg(test)]
mod tests {
    use super::super::overlay::KEPT_OVERLAYS;
    use crate::{FlushPolicy, MemoryBackend, Result, Space, Store};

    #[tokio::test]
    async fn writing_to_many_spaces_keeps_few_overlays() -> Result<()> {
        let store = Store::builder(MemoryBackend::new())
            .flush_policy(FlushPolicy::Manual)
            .build()
            .await?;
        for i in 0..100 {
            let other = store
                .with_space(Space::new("db", &format!("ns{i}"))?)
                .await?;
            other.set("k", "v").await?;
        }
        assert_eq!(store.engine.pipeline.state.lock().overlay.tables(), 100);
        store.flush().await?;
        let kept = store.engine.pipeline.state.lock().overlay.tables();
        assert!(kept <= KEPT_OVERLAYS, "{kept} overlays kept");
        store.close().await
    }
}
