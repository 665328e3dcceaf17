//! Key rules: a key is any non-empty UTF-8 string up to a configurable byte limit.
//!
//! Keys may contain anything else (`/`, `..`, `*`, `{`, `:`, NUL, newlines, emoji); backends
//! store them as opaque data and never interpret them as paths, globs or patterns.

use crate::error::{Error, Result};

/// Default longest key, in bytes (1 KiB).
pub const DEFAULT_MAX_KEY_LEN: usize = 1024;

/// Checks `key` against the rules with `max_len` as the byte limit.
///
/// ```
/// use nadb_core::key::validate_key;
/// assert!(validate_key("../etc/passwd", 1024).is_ok());
/// assert!(validate_key("", 1024).is_err());
/// assert!(validate_key("abc", 2).is_err());
/// ```
pub fn validate_key(key: &str, max_len: usize) -> Result<()> {
    if key.is_empty() {
        return Err(Error::invalid_key(key, "key is empty"));
    }
    if key.len() > max_len {
        return Err(Error::invalid_key(
            key,
            format!("key is longer than the {max_len}-byte limit"),
        ));
    }
    Ok(())
}
