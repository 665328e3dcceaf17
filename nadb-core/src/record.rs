//! [`Record`] and its [`Meta`]data: what one key holds.

use std::fmt;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::tags::Tags;

/// How a record's value bytes are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Codec {
    /// Stored as given.
    Raw,
    /// Compressed with zstd.
    Zstd,
}

impl Codec {
    /// The codec's byte in the record format.
    pub const fn id(self) -> u8 {
        match self {
            Codec::Raw => 0,
            Codec::Zstd => 1,
        }
    }

    /// The codec with byte `id`, if there is one.
    pub const fn from_id(id: u8) -> Option<Codec> {
        match id {
            0 => Some(Codec::Raw),
            1 => Some(Codec::Zstd),
            _ => None,
        }
    }
}

/// Everything about a record except its value.
///
/// ```
/// use nadb_core::{Meta, Timestamp};
/// let m = Meta::new(Timestamp::from_millis(5), 1);
/// assert_eq!(m.created_at, m.updated_at);
/// assert!(m.expires_at.is_none());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    /// When the key was first written (kept across overwrites).
    pub created_at: Timestamp,
    /// When the record was last written.
    pub updated_at: Timestamp,
    /// When the record stops existing, if ever.
    pub expires_at: Option<Timestamp>,
    /// The record's tags.
    pub tags: Tags,
    /// How the value is stored.
    pub codec: Codec,
    /// Length of the value as the caller wrote it, in bytes.
    pub value_len: u64,
    /// Length of the value as stored (after compression), in bytes.
    pub stored_len: u64,
    /// Changes on every write of the key; compare-and-swap compares it.
    pub version: u64,
}

impl Meta {
    /// Metadata for a fresh, untagged, non-expiring, empty raw record written at `now`.
    pub fn new(now: Timestamp, version: u64) -> Meta {
        Meta {
            created_at: now,
            updated_at: now,
            expires_at: None,
            tags: Tags::empty(),
            codec: Codec::Raw,
            value_len: 0,
            stored_len: 0,
            version,
        }
    }

    /// Whether the record is expired at `now`.
    #[inline]
    pub fn is_expired(&self, now: Timestamp) -> bool {
        self.expires_at.is_some_and(|e| e <= now)
    }
}

/// A value and its metadata.
///
/// Between the store and a backend the value is in stored form (encoded as `meta.codec` says);
/// the store hands callers the decoded value. `Debug` shows the value's length, never its bytes.
///
/// ```
/// use nadb_core::{Meta, Record, Timestamp};
/// let r = Record::new(bytes::Bytes::from_static(b"secret"), Meta::new(Timestamp::EPOCH, 1));
/// assert!(!format!("{r:?}").contains("secret"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Record {
    /// The value bytes.
    pub value: Bytes,
    /// The metadata.
    pub meta: Meta,
}

impl Record {
    /// Pairs a value with its metadata.
    pub fn new(value: Bytes, meta: Meta) -> Record {
        Record { value, meta }
    }
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("value_len", &self.value.len())
            .field("meta", &self.meta)
            .finish()
    }
}
