//! The one error type of nadb.
//!
//! Every failure a caller can see is a variant of [`Error`]. Variants carry structured fields
//! (limits, sizes, backend names) so callers can react without parsing messages, and
//! [`Error::is_temporary`] tells whether retrying the same operation may succeed, so one retry
//! policy serves every backend.
//!
//! Neither `Debug` nor `Display` ever prints a stored value: errors name keys by length and a
//! short escaped preview at most, and never include payload bytes.

use std::error::Error as StdError;
use std::fmt;

/// A boxed error from a backend's underlying library (I/O, SQLite, Redis, ...).
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Shorthand for `std::result::Result<T, nadb_core::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in nadb.
///
/// ```
/// use nadb_core::Error;
/// let err = Error::backend("memory", true, std::io::Error::other("link down"));
/// assert!(err.is_temporary());
/// assert!(err.to_string().contains("memory"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A key is empty, too long, or otherwise unacceptable.
    #[error("invalid key ({len} bytes): {reason}")]
    InvalidKey {
        /// Length of the rejected key in bytes.
        len: usize,
        /// Why it was rejected.
        reason: String,
    },
    /// A database or namespace name is not a valid identifier.
    #[error("invalid space: {reason}")]
    InvalidSpace {
        /// Why it was rejected.
        reason: String,
    },
    /// A tag is empty, too long, contains control characters, or a key has too many tags.
    #[error("invalid tag: {reason}")]
    InvalidTag {
        /// Why it was rejected.
        reason: String,
    },
    /// A time-to-live or expiry time is zero, in the past, or overflows the clock.
    #[error("invalid ttl: {reason}")]
    InvalidTtl {
        /// Why it was rejected.
        reason: String,
    },
    /// An argument other than key, space, tag or TTL is out of range (a zero page limit, say).
    #[error("invalid argument `{name}`: {reason}")]
    InvalidArgument {
        /// The argument's name.
        name: &'static str,
        /// Why it was rejected.
        reason: String,
    },
    /// A value exceeds the store's or the backend's size limit.
    #[error("value too large: {size} bytes, limit {limit} bytes")]
    ValueTooLarge {
        /// Size of the rejected value in bytes.
        size: u64,
        /// The limit in force.
        limit: u64,
    },
    /// A stored value cannot be used for the requested operation (`incr` on a non-integer,
    /// `get_json` on something that is not the requested JSON type, an overflow).
    #[error("invalid value: {reason}")]
    InvalidValue {
        /// Why the value cannot be used; never contains the value itself.
        reason: String,
    },
    /// A conditional write or transaction lost a race with another writer.
    #[error("conflict: {reason}")]
    Conflict {
        /// What was expected and not found.
        reason: String,
    },
    /// The backend does not support the requested operation.
    #[error("operation `{op}` is not supported by the {backend} backend")]
    Unsupported {
        /// The operation.
        op: &'static str,
        /// The backend's scheme.
        backend: String,
    },
    /// The storage is held by another process.
    #[error("{path} is locked by {}", holder.map_or_else(|| "another process".to_string(), |pid| format!("process {pid}")))]
    Locked {
        /// The lock file or database path.
        path: String,
        /// The holder's process id, when known.
        holder: Option<u32>,
    },
    /// Stored data failed a checksum or could not be decoded.
    #[error("corrupt data in {location}{}: {reason}", offset.map(|o| format!(" at offset {o}")).unwrap_or_default())]
    Corrupt {
        /// The file, table or key space where the damage is.
        location: String,
        /// Byte offset of the damage, when it is known.
        offset: Option<u64>,
        /// What is wrong.
        reason: String,
    },
    /// The backend failed; `temporary` says whether retrying may succeed.
    #[error("{backend} backend error ({}): {source}", if *temporary { "temporary" } else { "permanent" })]
    Backend {
        /// The backend's scheme.
        backend: String,
        /// Whether retrying the operation may succeed.
        temporary: bool,
        /// The underlying error.
        #[source]
        source: BoxError,
    },
    /// Writes are not persisted: they sit in the dead-letter queue after the backend refused
    /// them. They stay readable; `retry_dlq` persists them, `clear_dlq` drops them.
    #[error("{ops} writes ({bytes} bytes) are not persisted; last backend error: {last_error}")]
    Unpersisted {
        /// Operations not persisted.
        ops: u64,
        /// Their stored bytes.
        bytes: u64,
        /// The backend's last error, as text.
        last_error: String,
    },
    /// The store or backend was closed.
    #[error("the store is closed")]
    Closed,
    /// A configuration option is invalid or cannot be honoured.
    #[error("configuration error: {reason}")]
    Config {
        /// What is wrong.
        reason: String,
    },
    /// A URL passed to `open` is malformed. The URL is shown with any password removed.
    #[error("invalid url `{url}`: {reason}")]
    InvalidUrl {
        /// The URL, password removed.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// No backend is registered for a URL's scheme.
    #[error("unknown scheme `{scheme}`; known schemes: {}", known.join(", "))]
    UnknownScheme {
        /// The scheme asked for.
        scheme: String,
        /// The schemes that are registered in this binary.
        known: Vec<String>,
    },
}

impl Error {
    /// Whether retrying the same operation may succeed (a dropped connection, a busy database).
    ///
    /// ```
    /// use nadb_core::Error;
    /// assert!(!Error::Closed.is_temporary());
    /// ```
    pub fn is_temporary(&self) -> bool {
        matches!(
            self,
            Error::Backend {
                temporary: true,
                ..
            }
        )
    }

    /// Builds a [`Error::Backend`] from any error.
    ///
    /// ```
    /// use nadb_core::Error;
    /// let e = Error::backend("fs", false, std::io::Error::other("disk full"));
    /// assert!(!e.is_temporary());
    /// ```
    pub fn backend(
        backend: impl Into<String>,
        temporary: bool,
        source: impl Into<BoxError>,
    ) -> Error {
        Error::Backend {
            backend: backend.into(),
            temporary,
            source: source.into(),
        }
    }

    pub(crate) fn invalid_key(key: &str, reason: impl Into<String>) -> Error {
        Error::InvalidKey {
            len: key.len(),
            reason: reason.into(),
        }
    }

    pub(crate) fn config(reason: impl fmt::Display) -> Error {
        Error::Config {
            reason: reason.to_string(),
        }
    }
}

/// Removes the password from a URL's user-info part, for error messages and logs.
///
/// ```
/// assert_eq!(
///     nadb_core::error::redact_url("redis://user:secret@host:6379/0"),
///     "redis://user:***@host:6379/0"
/// );
/// ```
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    // Userinfo ends at the last `@` before any query: a password may itself hold `/` or `@`.
    // Text without a `:` that holds a `/` before that `@` is a path (`fs://dir/a@b`), not
    // credentials.
    let query_start = rest.find(['?', '#']).unwrap_or(rest.len());
    let at = rest[..query_start]
        .rfind('@')
        .filter(|&at| rest[..at].contains(':') || !rest[..at].contains('/'));
    match at {
        Some(at) => {
            let userinfo = &rest[..at];
            let after = &rest[at + 1..];
            let host_end = after.find('/').unwrap_or(after.len());
            let (host, path) = after.split_at(host_end);
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            let masked = if userinfo.contains(':') {
                format!("{user}:***")
            } else {
                "***".to_string()
            };
            format!("{scheme}://{masked}@{host}{path}")
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_limits_not_values() {
        let e = Error::ValueTooLarge { size: 10, limit: 5 };
        assert_eq!(e.to_string(), "value too large: 10 bytes, limit 5 bytes");
        let e = Error::Locked {
            path: "/d/LOCK".into(),
            holder: Some(42),
        };
        assert_eq!(e.to_string(), "/d/LOCK is locked by process 42");
        let e = Error::Corrupt {
            location: "seg-1".into(),
            offset: Some(7),
            reason: "crc mismatch".into(),
        };
        assert_eq!(
            e.to_string(),
            "corrupt data in seg-1 at offset 7: crc mismatch"
        );
        let e = Error::UnknownScheme {
            scheme: "foo".into(),
            known: vec!["fs".into(), "memory".into()],
        };
        assert_eq!(
            e.to_string(),
            "unknown scheme `foo`; known schemes: fs, memory"
        );
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(redact_url("redis://:pw@h:1"), "redis://:***@h:1");
        assert_eq!(redact_url("redis://tok@h:1/2"), "redis://***@h:1/2");
        assert_eq!(redact_url("memory://"), "memory://");
        assert_eq!(redact_url("no-scheme"), "no-scheme");
        assert_eq!(redact_url("fs:///a@b/c"), "fs:///a@b/c");
        assert_eq!(redact_url("redis://u:pa/s@s@h:1/0"), "redis://u:***@h:1/0");
        assert_eq!(
            redact_url("redis+cluster://u:p@a:1,b:2?prefix=x@y"),
            "redis+cluster://u:***@a:1,b:2?prefix=x@y"
        );
    }
}
