//! Argument and result types of the [`Store`](super::Store) API.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::tags::Tags;

/// Options of a write: tags and expiry. A write replaces the whole record, tags included, so a
/// write without tags leaves the key untagged.
///
/// ```
/// use nadb_core::SetOptions;
/// use std::time::Duration;
/// let opts = SetOptions::new().tags(["user", "active"]).ttl(Duration::from_secs(60));
/// # let _ = opts;
/// ```
#[derive(Clone, Debug, Default)]
pub struct SetOptions {
    tags: Vec<String>,
    expiry: Expiry,
}

#[derive(Clone, Copy, Debug, Default)]
enum Expiry {
    #[default]
    Never,
    After(Duration),
    At(Timestamp),
}

impl SetOptions {
    /// No tags, no expiry.
    pub fn new() -> SetOptions {
        SetOptions::default()
    }

    /// Sets the record's tags (validated when the write happens).
    pub fn tags<I, S>(mut self, tags: I) -> SetOptions
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.tags = tags.into_iter().map(Into::into).collect();
        self
    }

    /// The record expires `ttl` after the write. Zero is rejected when the write happens.
    pub fn ttl(mut self, ttl: Duration) -> SetOptions {
        self.expiry = Expiry::After(ttl);
        self
    }

    /// The record expires at `at`. A time not after the write is rejected when it happens.
    pub fn expires_at(mut self, at: Timestamp) -> SetOptions {
        self.expiry = Expiry::At(at);
        self
    }

    /// Validated tags and absolute expiry for a write at `now`.
    pub(crate) fn resolve(&self, now: Timestamp) -> Result<(Tags, Option<Timestamp>)> {
        let tags = Tags::new(self.tags.iter().map(String::as_str))?;
        let expires_at = match self.expiry {
            Expiry::Never => None,
            Expiry::After(ttl) => Some(expiry_after(now, ttl)?),
            Expiry::At(at) if at > now => Some(within_range(at)?),
            Expiry::At(_) => {
                return Err(Error::InvalidTtl {
                    reason: "expiry time is not in the future".into(),
                });
            }
        };
        Ok((tags, expires_at))
    }
}

/// `now + ttl`, rejecting a zero or overflowing TTL.
pub(crate) fn expiry_after(now: Timestamp, ttl: Duration) -> Result<Timestamp> {
    if ttl.is_zero() {
        return Err(Error::InvalidTtl {
            reason: "ttl is zero".into(),
        });
    }
    within_range(now.checked_add(ttl)?)
}

/// The latest expiry accepted: every backend can store it (SQLite's INTEGER is signed), and it
/// is about 292 million years away.
pub const MAX_EXPIRY: Timestamp = Timestamp::from_millis(i64::MAX as u64);

fn within_range(at: Timestamp) -> Result<Timestamp> {
    if at > MAX_EXPIRY {
        return Err(Error::InvalidTtl {
            reason: "expiry time is too far in the future; omit it for a key that never expires"
                .into(),
        });
    }
    Ok(at)
}

/// One page of keys and the cursor for the next.
///
/// ```
/// use nadb_core::Page;
/// let p = Page { items: vec!["a".to_string()], next: None };
/// assert!(p.is_last());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The items, in key order.
    pub items: Vec<T>,
    /// Pass this as the cursor to get the next page; `None` on the last page.
    pub next: Option<String>,
}

impl<T> Page<T> {
    /// Whether no page follows this one.
    pub fn is_last(&self) -> bool {
        self.next.is_none()
    }
}

/// A key's remaining lifetime, as [`Store::ttl`](super::Store::ttl) reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyTtl {
    /// The key never expires.
    Never,
    /// The key expires after this long.
    Remaining(Duration),
}

/// The outcome of [`Store::compare_and_swap`](super::Store::compare_and_swap).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cas {
    /// The value was written; this is the record's new version.
    Swapped {
        /// The new version.
        version: u64,
    },
    /// The record was not at the expected version; nothing was written.
    Mismatch {
        /// The version found (`None`: no live record).
        current: Option<u64>,
    },
}

impl Cas {
    /// Whether the swap happened.
    pub fn is_swapped(&self) -> bool {
        matches!(self, Cas::Swapped { .. })
    }
}
