//! [`Progress`]: how long-running whole-store operations ([`ndjson`](crate::ndjson),
//! [`migrate`](crate::migrate), [`verify`](crate::verify)) report how far they are.
//!
//! The operations call it from the task running them; an implementation only counts and
//! draws. `()` is the silent implementation.

/// Receives progress of a long operation: a phase starts (with a total when it is known),
/// items are done, the phase ends. Every method has an empty default.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use nadb::progress::Progress;
///
/// #[derive(Default)]
/// struct Count(AtomicU64);
/// impl Progress for Count {
///     fn advance(&self, n: u64) {
///         self.0.fetch_add(n, Ordering::Relaxed);
///     }
/// }
///
/// let c = Count::default();
/// c.begin("copying", Some(2));
/// c.advance(2);
/// c.finish();
/// assert_eq!(c.0.load(Ordering::Relaxed), 2);
/// ().advance(1); // the silent implementation
/// ```
pub trait Progress: Send + Sync {
    /// A phase named `phase` starts; `total` items are expected when known.
    fn begin(&self, phase: &str, total: Option<u64>) {
        let _ = (phase, total);
    }

    /// `n` more items are done.
    fn advance(&self, n: u64) {
        let _ = n;
    }

    /// The current phase is over.
    fn finish(&self) {}
}

impl Progress for () {}
