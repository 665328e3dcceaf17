//! Where a space's data lives in Redis: the key names.
//!
//! Every key of a space starts with `nadb:{DB:NS}:`. The part in braces is a Redis Cluster
//! *hash tag*, so the whole space hashes to one slot: a batch runs as one script, a tag query
//! as one `SINTER`/`SUNION`. Database and namespace names may only hold `A-Z a-z 0-9 _ . -`
//! ([`nadb_core::Space`] refuses anything else), so they can contain neither a brace nor the
//! `:` that separates them, and the hash tag always ends where the space name ends.
//!
//! | Redis key | type | holds |
//! |---|---|---|
//! | `nadb:{DB:NS}:r:KEY` | string | the value as stored (zstd-compressed when the metadata's codec is 1), with a native expiry for records with a TTL |
//! | `nadb:{DB:NS}:m` | hash | `KEY` → metadata string (see below) |
//! | `nadb:{DB:NS}:k` | sorted set | every `KEY`, score 0, for ordered paging by prefix (`ZRANGEBYLEX`) |
//! | `nadb:{DB:NS}:x` | sorted set | `KEY` scored by its expiry time in ms, for the sweeper |
//! | `nadb:{DB:NS}:t:TAG` | set | the keys carrying `TAG` |
//! | `nadb:{DB:NS}:n` | set | every tag in use in the space |
//! | `nadb:{DB:NS}:b` | string | total stored bytes of the space's values |
//! | `nadb:{DB:NS}:q` | sorted set | scratch space of a tag query, deleted before the query returns |
//! | `nadb:spaces` | set | `DB/NS` of every space ever written (its own slot) |
//!
//! `nadb` is the default root; a URL ending in `?prefix=ROOT` puts everything under `ROOT`
//! instead (`A-Z a-z 0-9 _ . -`), so several applications can share a server.
//!
//! User text (keys and tags) only ever comes *after* a fixed prefix that names the structure,
//! and no command takes a pattern (no `KEYS`, no `SCAN MATCH`), so no two distinct keys or tags
//! share a Redis key and glob characters or braces in them are inert.
//!
//! Reading a value with `redis-cli`:
//!
//! ```text
//! redis-cli GET 'nadb:{default:default}:r:user:1'      # the stored bytes
//! redis-cli HGET 'nadb:{default:default}:m' 'user:1'   # its metadata
//! ```
//!
//! The metadata string is described in the `meta` module: fields separated by `0x1F`:
//! `version, expires_at, stored_len, created_at, updated_at, codec, value_len, tags…`.

use nadb_core::Space;

/// The root every key starts with unless the URL names another (`?prefix=ROOT`).
pub(crate) const DEFAULT_ROOT: &str = "nadb";

/// The set of written spaces under `root`.
pub(crate) fn spaces_key(root: &str) -> String {
    format!("{root}:spaces")
}

/// Checks a root given in a URL: the same characters as a space name, so it can hold no brace.
pub(crate) fn valid_root(root: &str) -> bool {
    !root.is_empty()
        && root.len() <= 64
        && root
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// The key names of one space.
#[derive(Clone, Debug)]
pub(crate) struct SpaceKeys {
    /// `nadb:{DB:NS}:`
    pub(crate) prefix: String,
}

impl SpaceKeys {
    pub(crate) fn new(root: &str, space: &Space) -> SpaceKeys {
        SpaceKeys {
            prefix: format!("{root}:{{{}:{}}}:", space.db(), space.namespace()),
        }
    }

    /// The member naming `space` in the set of spaces.
    pub(crate) fn registry_name(space: &Space) -> String {
        format!("{}/{}", space.db(), space.namespace())
    }

    pub(crate) fn record(&self, key: &str) -> Vec<u8> {
        self.with("r:", key)
    }

    pub(crate) fn tag(&self, tag: &str) -> Vec<u8> {
        self.with("t:", tag)
    }

    pub(crate) fn meta(&self) -> Vec<u8> {
        self.with("m", "")
    }

    pub(crate) fn keys(&self) -> Vec<u8> {
        self.with("k", "")
    }

    pub(crate) fn expiries(&self) -> Vec<u8> {
        self.with("x", "")
    }

    pub(crate) fn tag_names(&self) -> Vec<u8> {
        self.with("n", "")
    }

    pub(crate) fn bytes(&self) -> Vec<u8> {
        self.with("b", "")
    }

    /// Scratch sorted set a tag query builds and deletes within one script.
    pub(crate) fn scratch(&self) -> Vec<u8> {
        self.with("q", "")
    }

    /// The keys every write script declares, in the order the scripts expect them.
    pub(crate) fn fixed(&self) -> [Vec<u8>; 5] {
        [
            self.meta(),
            self.keys(),
            self.expiries(),
            self.tag_names(),
            self.bytes(),
        ]
    }

    fn with(&self, kind: &str, text: &str) -> Vec<u8> {
        let mut k = Vec::with_capacity(self.prefix.len() + kind.len() + text.len());
        k.extend_from_slice(self.prefix.as_bytes());
        k.extend_from_slice(kind.as_bytes());
        k.extend_from_slice(text.as_bytes());
        k
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let k = SpaceKeys::new("nadb", &Space::new("app", "s-1.x").unwrap());
        assert_eq!(k.record("a{b}*"), b"nadb:{app:s-1.x}:r:a{b}*");
        assert_eq!(k.tag("t"), b"nadb:{app:s-1.x}:t:t");
        assert_eq!(k.meta(), b"nadb:{app:s-1.x}:m");
    }

    #[test]
    fn distinct_inputs_distinct_keys() {
        let a = SpaceKeys::new("nadb", &Space::new("a", "b").unwrap());
        let b = SpaceKeys::new("nadb", &Space::new("a.b", "c").unwrap());
        // Records, tags and fixed structures never share a name, whatever the user text.
        assert_ne!(a.record("m"), a.meta());
        assert_ne!(a.record("x"), a.tag("x"));
        assert_ne!(a.tag(""), a.record(""));
        assert_ne!(a.record("k"), b.record("k"));
        assert!(a.record("}:r:x").starts_with(b"nadb:{a:b}:r:"));
    }
}
