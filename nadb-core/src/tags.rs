//! [`Tags`]: the validated, sorted, de-duplicated label set of a record.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Longest tag, in bytes.
pub const MAX_TAG_LEN: usize = 128;
/// Most tags on one record.
pub const MAX_TAGS_PER_KEY: usize = 64;

/// A record's tags: sorted, without duplicates, each non-empty, at most [`MAX_TAG_LEN`] bytes,
/// without control characters, and at most [`MAX_TAGS_PER_KEY`] of them. Cheap to clone.
///
/// ```
/// use nadb_core::Tags;
/// let t = Tags::new(["b", "a", "b"]).unwrap();
/// assert_eq!(&*t, &["a".to_string(), "b".to_string()]);
/// assert!(Tags::new(["bad\ntag"]).is_err());
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "Vec<String>", into = "Vec<String>")]
pub struct Tags(Option<Arc<[String]>>);

impl Tags {
    /// Validates, sorts and de-duplicates `tags`.
    pub fn new<I, S>(tags: I) -> Result<Tags>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut set = std::collections::BTreeSet::new();
        for t in tags {
            let t = t.into();
            validate_tag(&t)?;
            set.insert(t);
            // Checked as they come, so a long iterator is refused without being collected;
            // every tag given is validated and kept, however many duplicates come first.
            if set.len() > MAX_TAGS_PER_KEY {
                return Err(Error::InvalidTag {
                    reason: format!("more than {MAX_TAGS_PER_KEY} tags on one key"),
                });
            }
        }
        Ok(Tags::from_sorted(set.into_iter().collect()))
    }

    /// No tags.
    pub fn empty() -> Tags {
        Tags(None)
    }

    /// Whether `tag` is among these tags.
    pub fn contains(&self, tag: &str) -> bool {
        self.binary_search_by(|t| t.as_str().cmp(tag)).is_ok()
    }

    fn from_sorted(v: Vec<String>) -> Tags {
        if v.is_empty() {
            Tags(None)
        } else {
            Tags(Some(v.into()))
        }
    }
}

impl Deref for Tags {
    type Target = [String];
    fn deref(&self) -> &[String] {
        self.0.as_deref().unwrap_or(&[])
    }
}

impl TryFrom<Vec<String>> for Tags {
    type Error = Error;
    fn try_from(v: Vec<String>) -> Result<Tags> {
        Tags::new(v)
    }
}

impl From<Tags> for Vec<String> {
    fn from(t: Tags) -> Vec<String> {
        t.to_vec()
    }
}

impl fmt::Debug for Tags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Checks one tag against the rules.
///
/// ```
/// use nadb_core::tags::validate_tag;
/// assert!(validate_tag("color:red").is_ok());
/// assert!(validate_tag("").is_err());
/// ```
pub fn validate_tag(tag: &str) -> Result<()> {
    let fail = |reason: String| Err(Error::InvalidTag { reason });
    if tag.is_empty() {
        return fail("tag is empty".into());
    }
    if tag.len() > MAX_TAG_LEN {
        return fail(format!(
            "tag is {} bytes, the limit is {MAX_TAG_LEN}",
            tag.len()
        ));
    }
    if tag.chars().any(char::is_control) {
        return fail("tag contains a control character".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits() {
        assert!(Tags::new(["x".repeat(128)]).is_ok());
        assert!(Tags::new(["x".repeat(129)]).is_err());
        assert!(Tags::new((0..64).map(|i| i.to_string())).is_ok());
        assert!(matches!(
            Tags::new((0..65).map(|i| i.to_string())),
            Err(Error::InvalidTag { .. })
        ));
        assert!(Tags::new((0..10_000).map(|i| i.to_string())).is_err());
        // Duplicates do not count against the limit.
        assert_eq!(
            Tags::new((0..100).map(|i| (i % 3).to_string()))
                .unwrap()
                .len(),
            3
        );
        // Every tag counts and is checked, however many duplicates come before it.
        let many = || std::iter::repeat_n("a", 300);
        assert_eq!(&*Tags::new(many().chain(["b"])).unwrap(), ["a", "b"]);
        assert!(Tags::new(many().chain(["bad\n"])).is_err());
        assert!(
            Tags::new(
                many()
                    .map(String::from)
                    .chain((0..64).map(|i| i.to_string()))
            )
            .is_err()
        );
        for bad in ["", "a\0", "\t", "\u{7f}", "\u{85}"] {
            assert!(Tags::new([bad]).is_err(), "{bad:?}");
        }
        assert!(Tags::new(["*", "{x}", "a b", "ü", "🚀"]).is_ok());
        assert!(Tags::empty().is_empty());
        assert!(Tags::new(["a", "c"]).unwrap().contains("c"));
        assert!(!Tags::new(["a", "c"]).unwrap().contains("b"));
    }
}
