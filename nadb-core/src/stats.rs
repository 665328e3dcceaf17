//! Store metrics: per-operation counts and latency percentiles in fixed memory, byte counters,
//! compression ratio. Everything is lock-free atomics on the hot path; [`Stats`] is a
//! serde-serialisable snapshot.
//!
//! Latencies go into a log-linear histogram (8 sub-buckets per power of two, so a reported
//! percentile is within 12.5 % of the true value) of fixed size, however many ops are recorded.
//! A histogram crate such as `hdrhistogram` needs `&mut` to record, which would put a lock on
//! every operation; this one is a few hundred atomic counters.
//!
//! Counts and errors are exact. Latency is timed on a sample — one call in
//! [`LATENCY_SAMPLE`] on each thread, whatever its operation — because reading the clock twice
//! costs more than a whole in-memory `get`; percentiles, mean and max describe the sampled
//! calls.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The operations the store measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[allow(missing_docs)]
pub enum OpKind {
    Get,
    GetMany,
    Exists,
    Set,
    SetMany,
    Delete,
    DeleteMany,
    Scan,
    Len,
    Clear,
    QueryByTags,
    ListTags,
    DeleteByTag,
    Ttl,
    Touch,
    Persist,
    SetIfAbsent,
    CompareAndSwap,
    Incr,
    Sweep,
    Flush,
    Compact,
    Transaction,
}

impl OpKind {
    const ALL: [OpKind; 23] = [
        OpKind::Get,
        OpKind::GetMany,
        OpKind::Exists,
        OpKind::Set,
        OpKind::SetMany,
        OpKind::Delete,
        OpKind::DeleteMany,
        OpKind::Scan,
        OpKind::Len,
        OpKind::Clear,
        OpKind::QueryByTags,
        OpKind::ListTags,
        OpKind::DeleteByTag,
        OpKind::Ttl,
        OpKind::Touch,
        OpKind::Persist,
        OpKind::SetIfAbsent,
        OpKind::CompareAndSwap,
        OpKind::Incr,
        OpKind::Sweep,
        OpKind::Flush,
        OpKind::Compact,
        OpKind::Transaction,
    ];

    /// The name used in [`Stats::ops`].
    pub const fn name(self) -> &'static str {
        match self {
            OpKind::Get => "get",
            OpKind::GetMany => "get_many",
            OpKind::Exists => "exists",
            OpKind::Set => "set",
            OpKind::SetMany => "set_many",
            OpKind::Delete => "delete",
            OpKind::DeleteMany => "delete_many",
            OpKind::Scan => "scan",
            OpKind::Len => "len",
            OpKind::Clear => "clear",
            OpKind::QueryByTags => "query_by_tags",
            OpKind::ListTags => "list_tags",
            OpKind::DeleteByTag => "delete_by_tag",
            OpKind::Ttl => "ttl",
            OpKind::Touch => "touch",
            OpKind::Persist => "persist",
            OpKind::SetIfAbsent => "set_if_absent",
            OpKind::CompareAndSwap => "compare_and_swap",
            OpKind::Incr => "incr",
            OpKind::Sweep => "sweep",
            OpKind::Flush => "flush",
            OpKind::Compact => "compact",
            OpKind::Transaction => "transaction",
        }
    }
}

/// One call in this many (per thread) has its latency timed.
pub const LATENCY_SAMPLE: u32 = 8;

thread_local! {
    static SAMPLE_TICK: Cell<u32> = const { Cell::new(0) };
}

const LINEAR: u64 = 16;
const SUB_BITS: u32 = 3;
const BUCKETS: usize = (LINEAR as usize) + (64 - 4) * (1 << SUB_BITS);

/// A fixed-size, lock-free latency histogram (nanoseconds).
///
/// ```
/// use nadb_core::stats::Histogram;
/// use std::time::Duration;
/// let h = Histogram::default();
/// for us in 1..=100 { h.record(Duration::from_micros(us)); }
/// let s = h.summary();
/// assert_eq!(s.sampled, 100);
/// assert!(s.p50_ns >= 50_000 && s.p50_ns <= 57_000);
/// assert_eq!(s.max_ns, 100_000);
/// ```
#[derive(Debug)]
pub struct Histogram {
    buckets: Box<[AtomicU64]>,
    calls: AtomicU64,
    count: AtomicU64,
    sum_ns: AtomicU64,
    max_ns: AtomicU64,
    errors: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            calls: AtomicU64::new(0),
            count: AtomicU64::new(0),
            sum_ns: AtomicU64::new(0),
            max_ns: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        }
    }
}

fn bucket_of(ns: u64) -> usize {
    if ns < LINEAR {
        return ns as usize;
    }
    let exp = 63 - ns.leading_zeros();
    let sub = (ns >> (exp - SUB_BITS)) & ((1 << SUB_BITS) - 1);
    LINEAR as usize + (exp as usize - 4) * (1 << SUB_BITS) + sub as usize
}

fn bucket_upper(idx: usize) -> u64 {
    if idx < LINEAR as usize {
        return idx as u64;
    }
    let i = idx - LINEAR as usize;
    let exp = (i >> SUB_BITS) as u32 + 4;
    let sub = (i & ((1 << SUB_BITS) - 1)) as u64;
    let width = 1u64 << (exp - SUB_BITS);
    ((1u64 << exp) + sub * width).saturating_add(width - 1)
}

impl Histogram {
    /// Counts a call that is starting; returns its start time when this call is one of the
    /// sampled ones. Pass the result to [`Histogram::finish`].
    #[inline]
    pub fn start(&self) -> Option<Instant> {
        self.calls.fetch_add(1, Relaxed);
        Histogram::sample()
    }

    /// The start time of a call when it is one of the sampled ones. The call is counted
    /// later, with [`Histogram::counted`], once its kind is known; each call samples once.
    #[inline]
    pub(crate) fn sample() -> Option<Instant> {
        let tick = SAMPLE_TICK.with(|t| {
            let v = t.get().wrapping_add(1);
            t.set(v);
            v
        });
        tick.is_multiple_of(LATENCY_SAMPLE).then(Instant::now)
    }

    /// Counts a call begun with [`Histogram::sample`].
    #[inline]
    pub(crate) fn counted(&self) {
        self.calls.fetch_add(1, Relaxed);
    }

    /// Completes a call begun with [`Histogram::start`].
    #[inline]
    pub fn finish(&self, started: Option<Instant>, ok: bool) {
        if let Some(t) = started {
            self.record(t.elapsed());
        }
        if !ok {
            self.errors.fetch_add(1, Relaxed);
        }
    }

    /// Records the latency of one (sampled) call that took `d`.
    pub fn record(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.buckets[bucket_of(ns)].fetch_add(1, Relaxed);
        self.count.fetch_add(1, Relaxed);
        self.sum_ns.fetch_add(ns, Relaxed);
        self.max_ns.fetch_max(ns, Relaxed);
    }

    /// Count and percentiles so far.
    pub fn summary(&self) -> OpStats {
        let count = self.count.load(Relaxed);
        let max = self.max_ns.load(Relaxed);
        let pct = |p: f64| -> u64 {
            if count == 0 {
                return 0;
            }
            let rank = ((count as f64) * p).ceil().max(1.0) as u64;
            let mut seen = 0;
            for (i, b) in self.buckets.iter().enumerate() {
                seen += b.load(Relaxed);
                if seen >= rank {
                    return bucket_upper(i).min(max);
                }
            }
            max
        };
        OpStats {
            count: self.calls.load(Relaxed).max(count),
            errors: self.errors.load(Relaxed),
            sampled: count,
            mean_ns: self.sum_ns.load(Relaxed).checked_div(count).unwrap_or(0),
            p50_ns: pct(0.50),
            p99_ns: pct(0.99),
            max_ns: max,
        }
    }
}

/// One operation's figures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpStats {
    /// Calls made (successful or not).
    pub count: u64,
    /// Calls that returned an error.
    pub errors: u64,
    /// Calls whose latency was timed; the latency figures below describe these.
    pub sampled: u64,
    /// Mean latency, nanoseconds.
    pub mean_ns: u64,
    /// Median latency, nanoseconds (upper edge of its histogram bucket).
    pub p50_ns: u64,
    /// 99th percentile latency, nanoseconds (upper edge of its histogram bucket).
    pub p99_ns: u64,
    /// Largest latency seen, nanoseconds.
    pub max_ns: u64,
}

/// A snapshot of a store's metrics.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let store = nadb_core::Store::builder(nadb_core::MemoryBackend::new()).build().await?;
/// store.set("k", vec![b'x'; 4096]).await?;
/// let stats = store.stats().await?;
/// assert_eq!(stats.ops["set"].count, 1);
/// assert!(stats.compression_ratio > 10.0);
/// println!("{}", serde_json::to_string(&stats).unwrap());
/// # Ok::<(), nadb_core::Error>(()) }).unwrap();
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Per-operation figures, by [`OpKind::name`]; operations never called are left out.
    pub ops: BTreeMap<String, OpStats>,
    /// Value bytes callers wrote (before compression).
    pub value_bytes_written: u64,
    /// Value bytes sent to the backend (after compression).
    pub stored_bytes_written: u64,
    /// Value bytes returned to callers (after decompression).
    pub value_bytes_read: u64,
    /// Value bytes read from the backend (before decompression).
    pub stored_bytes_read: u64,
    /// `value_bytes_written / stored_bytes_written`; 1.0 before any write.
    pub compression_ratio: f64,
    /// Unexpired keys in the store's space, as applied to the backend.
    pub live_keys: u64,
    /// Stored value bytes of those keys.
    pub live_stored_bytes: u64,
    /// Expired records removed by the sweeper.
    pub expired_removed: u64,
    /// The write pipeline's figures.
    pub pipeline: crate::store::PipelineStats,
}

/// The live counters behind [`Stats`].
#[derive(Debug)]
pub(crate) struct Metrics {
    ops: Box<[Histogram]>,
    pub(crate) value_bytes_written: AtomicU64,
    pub(crate) stored_bytes_written: AtomicU64,
    /// Bytes of values read as stored (uncompressed): they count as both value and stored
    /// bytes, with one counter update per read.
    pub(crate) raw_bytes_read: AtomicU64,
    /// Decoded and stored bytes of compressed values read.
    pub(crate) value_bytes_read: AtomicU64,
    pub(crate) stored_bytes_read: AtomicU64,
    pub(crate) expired_removed: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            ops: OpKind::ALL.iter().map(|_| Histogram::default()).collect(),
            value_bytes_written: AtomicU64::new(0),
            stored_bytes_written: AtomicU64::new(0),
            raw_bytes_read: AtomicU64::new(0),
            value_bytes_read: AtomicU64::new(0),
            stored_bytes_read: AtomicU64::new(0),
            expired_removed: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    pub(crate) fn op(&self, kind: OpKind) -> &Histogram {
        // ALL lists the variants in declaration order, so the discriminant is the index.
        &self.ops[kind as usize]
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    pub(crate) fn snapshot(&self) -> Stats {
        let ops = OpKind::ALL
            .iter()
            .map(|k| (k.name().to_string(), self.op(*k).summary()))
            .filter(|(_, s)| s.count > 0)
            .collect();
        let raw_read = self.raw_bytes_read.load(Relaxed);
        let vw = self.value_bytes_written.load(Relaxed);
        let sw = self.stored_bytes_written.load(Relaxed);
        Stats {
            ops,
            value_bytes_written: vw,
            stored_bytes_written: sw,
            value_bytes_read: raw_read + self.value_bytes_read.load(Relaxed),
            stored_bytes_read: raw_read + self.stored_bytes_read.load(Relaxed),
            compression_ratio: if sw == 0 { 1.0 } else { vw as f64 / sw as f64 },
            live_keys: 0,
            live_stored_bytes: 0,
            expired_removed: self.expired_removed.load(Relaxed),
            pipeline: Default::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_tight() {
        let mut last = 0;
        for ns in (0..100_000u64).chain([u64::MAX / 3, u64::MAX]) {
            let b = bucket_of(ns);
            assert!(b >= last && b < BUCKETS);
            assert!(bucket_upper(b) >= ns, "{ns} above its bucket");
            if ns >= 16 {
                assert!(bucket_upper(b) as f64 <= ns as f64 * 1.125 + 1.0);
            }
            last = b;
        }
        for (i, k) in OpKind::ALL.iter().enumerate() {
            assert_eq!(*k as usize, i);
        }
    }

    #[test]
    fn percentiles() {
        let h = Histogram::default();
        assert_eq!(h.summary(), OpStats::default());
        for _ in 0..99 {
            h.record(Duration::from_nanos(100));
        }
        h.record(Duration::from_millis(5));
        let s = h.summary();
        assert_eq!(s.count, 100);
        assert!((100..=112).contains(&s.p50_ns));
        assert!((100..=112).contains(&s.p99_ns));
        assert_eq!(s.max_ns, 5_000_000);
    }
}
