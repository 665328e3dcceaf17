//! Time: the [`Timestamp`] type and the [`Clock`] every timestamp and TTL decision comes from.
//!
//! The store never reads the system time directly; it asks its clock. Tests swap in a
//! [`MockClock`] and move time by hand, so expiry is tested deterministically, without sleeping.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A point in time: milliseconds since the Unix epoch (UTC).
///
/// ```
/// use nadb_core::Timestamp;
/// use std::time::Duration;
/// let t = Timestamp::from_millis(1_000);
/// assert_eq!(t.checked_add(Duration::from_secs(1)).unwrap().as_millis(), 2_000);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The Unix epoch.
    pub const EPOCH: Timestamp = Timestamp(0);
    /// The latest representable time.
    pub const MAX: Timestamp = Timestamp(u64::MAX);

    /// A timestamp `ms` milliseconds after the epoch.
    pub const fn from_millis(ms: u64) -> Timestamp {
        Timestamp(ms)
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// `self + d`, or an [`Error::InvalidTtl`] when the sum does not fit.
    ///
    /// Durations are rounded up to whole milliseconds so a sub-millisecond TTL never
    /// yields a record that is already expired.
    pub fn checked_add(self, d: Duration) -> Result<Timestamp> {
        let ms =
            u64::try_from(d.as_nanos().div_ceil(1_000_000)).map_err(|_| Error::InvalidTtl {
                reason: "duration does not fit in the clock".into(),
            })?;
        self.0
            .checked_add(ms)
            .map(Timestamp)
            .ok_or_else(|| Error::InvalidTtl {
                reason: "expiry time overflows the clock".into(),
            })
    }

    /// The time from `earlier` to `self`, zero when `earlier` is later.
    pub fn saturating_since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

/// Where the store gets the current time.
///
/// ```
/// use nadb_core::{Clock, SystemClock};
/// assert!(SystemClock.now().as_millis() > 0);
/// ```
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The real wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        // A clock set before 1970 reads as the epoch rather than failing every write.
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        Timestamp(u64::try_from(ms).unwrap_or(u64::MAX))
    }
}

/// A clock that moves only when told to; clones share the same time.
///
/// ```
/// use nadb_core::{Clock, MockClock};
/// use std::time::Duration;
/// let clock = MockClock::new(1_000);
/// clock.advance(Duration::from_secs(2));
/// assert_eq!(clock.now().as_millis(), 3_000);
/// ```
#[derive(Clone, Debug)]
pub struct MockClock(Arc<AtomicU64>);

impl MockClock {
    /// A clock reading `start_ms` milliseconds after the epoch.
    pub fn new(start_ms: u64) -> MockClock {
        MockClock(Arc::new(AtomicU64::new(start_ms)))
    }

    /// Moves the clock forward by `d` (saturating at [`Timestamp::MAX`]).
    pub fn advance(&self, d: Duration) {
        let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let _ = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| {
                Some(t.saturating_add(ms))
            });
    }

    /// Sets the clock to `t`.
    pub fn set(&self, t: Timestamp) {
        self.0.store(t.as_millis(), Ordering::SeqCst);
    }
}

impl Default for MockClock {
    /// A mock clock starting at 2024-01-01T00:00:00Z.
    fn default() -> Self {
        MockClock::new(1_704_067_200_000)
    }
}

impl Clock for MockClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checked_add_rounds_up_and_detects_overflow() {
        let t = Timestamp::from_millis(10);
        assert_eq!(
            t.checked_add(Duration::from_nanos(1)).unwrap().as_millis(),
            11
        );
        assert!(matches!(
            Timestamp::MAX.checked_add(Duration::from_millis(1)),
            Err(Error::InvalidTtl { .. })
        ));
        assert!(matches!(
            t.checked_add(Duration::MAX),
            Err(Error::InvalidTtl { .. })
        ));
    }

    #[test]
    fn mock_clock_is_shared_between_clones() {
        let a = MockClock::new(5);
        let b = a.clone();
        b.advance(Duration::from_millis(5));
        assert_eq!(a.now(), Timestamp::from_millis(10));
        a.set(Timestamp::from_millis(1));
        assert_eq!(b.now().as_millis(), 1);
        assert_eq!(
            Timestamp::from_millis(1).saturating_since(Timestamp::from_millis(9)),
            Duration::ZERO
        );
    }
}
