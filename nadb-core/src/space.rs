//! [`Space`]: the (database, namespace) pair every record lives in.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Longest database or namespace name, in bytes.
pub const MAX_SPACE_NAME_LEN: usize = 64;

/// A validated database + namespace pair. Every record lives in exactly one space and no
/// operation ever crosses spaces.
///
/// Both names match `[A-Za-z0-9_.-]{1,64}` and are neither `.` nor `..`, so a backend may use
/// them in file names or Redis hash tags without escaping.
///
/// ```
/// use nadb_core::Space;
/// let s = Space::new("app", "sessions").unwrap();
/// assert_eq!(s.db(), "app");
/// assert_eq!(s.to_string(), "app/sessions");
/// assert!(Space::new("app", "../etc").is_err());
/// ```
#[derive(Clone, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "SpaceParts", into = "SpaceParts")]
pub struct Space(Arc<Names>);

/// The names, and a digest of them computed once: every read and write looks a space up in
/// a map, and hashing a `u64` is cheaper than hashing two strings each time.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Names {
    db: String,
    namespace: String,
    digest: u64,
}

impl PartialEq for Space {
    fn eq(&self, other: &Space) -> bool {
        // Handles of one store share the Arc: skip comparing the strings.
        Arc::ptr_eq(&self.0, &other.0) || self.0 == other.0
    }
}

impl std::hash::Hash for Space {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // Equal spaces have equal names, so equal digests, whether or not they share the Arc.
        state.write_u64(self.0.digest);
    }
}

#[derive(Serialize, Deserialize)]
struct SpaceParts {
    db: String,
    namespace: String,
}

impl TryFrom<SpaceParts> for Space {
    type Error = Error;
    fn try_from(p: SpaceParts) -> Result<Space> {
        Space::new(&p.db, &p.namespace)
    }
}

impl From<Space> for SpaceParts {
    fn from(s: Space) -> SpaceParts {
        SpaceParts {
            db: s.db().to_string(),
            namespace: s.namespace().to_string(),
        }
    }
}

impl Space {
    /// Validates and builds a space.
    pub fn new(db: &str, namespace: &str) -> Result<Space> {
        validate_name("db", db)?;
        validate_name("namespace", namespace)?;
        Ok(Space::from_valid(db, namespace))
    }

    /// The space `default/default` that `nadb::open` starts in.
    pub fn default_space() -> Space {
        Space::from_valid("default", "default")
    }

    fn from_valid(db: &str, namespace: &str) -> Space {
        use std::hash::BuildHasher;
        // A fixed seed: the digest only feeds in-process maps, which hash it again with
        // their own seeds.
        let digest =
            foldhash::quality::FixedState::with_seed(0x6e_61_64_62).hash_one((db, namespace));
        Space(Arc::new(Names {
            db: db.to_string(),
            namespace: namespace.to_string(),
            digest,
        }))
    }

    /// The database name.
    pub fn db(&self) -> &str {
        &self.0.db
    }

    /// The namespace name.
    pub fn namespace(&self) -> &str {
        &self.0.namespace
    }
}

impl Default for Space {
    fn default() -> Self {
        Space::default_space()
    }
}

impl fmt::Display for Space {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.db(), self.namespace())
    }
}

impl fmt::Debug for Space {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Space({self})")
    }
}

fn validate_name(what: &str, name: &str) -> Result<()> {
    let fail = |reason: String| Err(Error::InvalidSpace { reason });
    if name.is_empty() {
        return fail(format!("{what} name is empty"));
    }
    if name.len() > MAX_SPACE_NAME_LEN {
        return fail(format!(
            "{what} name is {} bytes, the limit is {MAX_SPACE_NAME_LEN}",
            name.len()
        ));
    }
    if name == "." || name == ".." {
        return fail(format!("{what} name may not be `.` or `..`"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return fail(format!(
            "{what} name contains {c:?}; allowed are A-Z a-z 0-9 _ . -"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_identifiers_and_rejects_the_rest() {
        assert!(Space::new("a", "b").is_ok());
        assert!(Space::new("A-z_0.9", &"n".repeat(64)).is_ok());
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "a b",
            "ü",
            "{x}",
            "a:b",
            "*",
            &"n".repeat(65),
        ] {
            assert!(
                matches!(Space::new("db", bad), Err(Error::InvalidSpace { .. })),
                "{bad:?} accepted"
            );
            assert!(matches!(
                Space::new(bad, "ns"),
                Err(Error::InvalidSpace { .. })
            ));
        }
    }

    #[test]
    fn serde_validates() {
        let s: Space = serde_json::from_str(r#"{"db":"a","namespace":"b"}"#).unwrap();
        assert_eq!(s, Space::new("a", "b").unwrap());
        assert!(serde_json::from_str::<Space>(r#"{"db":"..","namespace":"b"}"#).is_err());
    }
}
