//! When and how buffered writes reach the backend: [`FlushPolicy`] and [`WriteConfig`].

use std::time::Duration;

/// When a write is acknowledged and when buffered writes are flushed.
///
/// | policy | `set` returns once | a `kill -9` can lose |
/// |---|---|---|
/// | [`Immediate`](FlushPolicy::Immediate) (default) | applied **and synced** by the backend | nothing acknowledged |
/// | [`Buffered`](FlushPolicy::Buffered) | in the store's buffer | writes since the last completed flush |
/// | [`Manual`](FlushPolicy::Manual) | in the store's buffer | writes since the last completed [`flush`](super::Store::flush) |
///
/// Concurrent `Immediate` writers share one backend apply and one sync (group commit), so the
/// safe default still scales with writers. `Buffered` trades a bounded window of loss for
/// memory-speed writes coalesced into large batches. In every mode `flush()` returns only when
/// everything acknowledged before it is durable, and `close()` flushes.
///
/// ```
/// use nadb_core::FlushPolicy;
/// use std::time::Duration;
/// let p = FlushPolicy::buffered().max_ops(10_000).interval(Duration::from_millis(200));
/// # let _ = p;
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FlushPolicy {
    /// Acknowledge after the backend applied and synced the write.
    #[default]
    Immediate,
    /// Acknowledge at once; flush when any set threshold is reached.
    Buffered(BufferedFlush),
    /// Acknowledge at once; flush only on [`flush`](super::Store::flush), `close`, when a
    /// listing or tag query needs the backend, or when the buffer's hard limit is reached.
    Manual,
}

/// Thresholds of [`FlushPolicy::Buffered`]; a flush starts when any one is reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufferedFlush {
    /// Pending operations that trigger a flush.
    pub max_ops: Option<usize>,
    /// Pending value bytes that trigger a flush.
    pub max_bytes: Option<usize>,
    /// Age of the oldest pending write that triggers a flush.
    pub interval: Option<Duration>,
}

impl FlushPolicy {
    /// Buffered with the defaults: 10,000 ops, 16 MiB, or 1 s, whichever comes first.
    pub fn buffered() -> BufferedFlush {
        BufferedFlush::default()
    }
}

impl Default for BufferedFlush {
    fn default() -> Self {
        BufferedFlush {
            max_ops: Some(10_000),
            max_bytes: Some(16 << 20),
            interval: Some(Duration::from_secs(1)),
        }
    }
}

impl BufferedFlush {
    /// Flush at `n` pending ops.
    pub fn max_ops(mut self, n: usize) -> Self {
        self.max_ops = Some(n);
        self
    }

    /// Flush at `bytes` pending value bytes.
    pub fn max_bytes(mut self, bytes: usize) -> Self {
        self.max_bytes = Some(bytes);
        self
    }

    /// Flush when the oldest pending write is `d` old.
    pub fn interval(mut self, d: Duration) -> Self {
        self.interval = Some(d);
        self
    }

    /// Only these thresholds: none set.
    pub fn none() -> Self {
        BufferedFlush {
            max_ops: None,
            max_bytes: None,
            interval: None,
        }
    }
}

impl From<BufferedFlush> for FlushPolicy {
    fn from(b: BufferedFlush) -> FlushPolicy {
        FlushPolicy::Buffered(b)
    }
}

/// Limits of the write pipeline.
///
/// ```
/// let c = nadb_core::WriteConfig::default();
/// assert_eq!(c.chunk_size, 1000);
/// assert_eq!(c.max_pending_bytes, 64 << 20);
/// assert_eq!(c.dlq_capacity, 1000);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteConfig {
    /// Most operations in one backend batch (a single larger batch or transaction is kept whole).
    pub chunk_size: usize,
    /// Hard limit on buffered value bytes; past it writers wait (backpressure).
    pub max_pending_bytes: usize,
    /// Dead-letter entries kept; past it the oldest is evicted, counted and logged.
    pub dlq_capacity: usize,
    /// Attempts for a chunk that fails with a temporary error before it is dead-lettered.
    pub retry_attempts: u32,
    /// First retry delay; doubles per attempt up to [`WriteConfig::retry_max_delay`].
    pub retry_base_delay: Duration,
    /// Longest retry delay.
    pub retry_max_delay: Duration,
}

impl Default for WriteConfig {
    fn default() -> Self {
        WriteConfig {
            chunk_size: 1000,
            max_pending_bytes: 64 << 20,
            dlq_capacity: 1000,
            retry_attempts: 6,
            retry_base_delay: Duration::from_millis(10),
            retry_max_delay: Duration::from_secs(1),
        }
    }
}
