//! The metadata string kept per key in a space's metadata hash.
//!
//! Text fields separated by the byte `0x1F` (unit separator), in this order:
//!
//! ```text
//! version 0x1F expires_at 0x1F stored_len 0x1F created_at 0x1F updated_at 0x1F codec 0x1F value_len [0x1F tag]*
//! ```
//!
//! Numbers are decimal, times are milliseconds since the Unix epoch, `expires_at` is empty for
//! a record that never expires, `codec` is `0` (raw) or `1` (zstd). Text, so the Lua scripts can
//! read the version, expiry, size and tags they need without a binary decoder, and `redis-cli
//! HGET` shows it readably. Tags cannot contain control characters, so `0x1F` never occurs in
//! one.

use nadb_core::{Codec, Error, Meta, Result, Tags, Timestamp};

/// The field separator.
pub(crate) const SEP: char = '\u{1f}';

/// The first field index (0-based) holding a tag.
pub(crate) const FIRST_TAG: usize = 7;

/// The tags of an encoded metadata string, without decoding the rest.
pub(crate) fn raw_tags(raw: &[u8]) -> impl Iterator<Item = &[u8]> {
    raw.split(|b| *b == SEP as u8).skip(FIRST_TAG)
}

/// Encodes `meta` with `created_at` as given (the apply script may replace it).
pub(crate) fn encode(meta: &Meta) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(80);
    // Writing to a String cannot fail.
    let _ = write!(s, "{}{SEP}", meta.version);
    if let Some(e) = meta.expires_at {
        let _ = write!(s, "{}", e.as_millis());
    }
    let _ = write!(
        s,
        "{SEP}{}{SEP}{}{SEP}{}{SEP}{}{SEP}{}",
        meta.stored_len,
        meta.created_at.as_millis(),
        meta.updated_at.as_millis(),
        meta.codec.id(),
        meta.value_len,
    );
    for t in meta.tags.iter() {
        s.push(SEP);
        s.push_str(t);
    }
    s
}

/// Decodes a metadata string; `location` names where it was read for the error.
pub(crate) fn decode(s: &[u8], location: &dyn Fn() -> String) -> Result<Meta> {
    let corrupt = |reason: &str| Error::Corrupt {
        location: location(),
        offset: None,
        reason: format!("bad metadata: {reason}"),
    };
    let s = std::str::from_utf8(s).map_err(|_| corrupt("not UTF-8"))?;
    let parts: Vec<&str> = s.split(SEP).collect();
    if parts.len() < FIRST_TAG {
        return Err(corrupt("too few fields"));
    }
    let num = |i: usize, what: &str| -> Result<u64> {
        parts[i]
            .parse::<u64>()
            .map_err(|_| corrupt(&format!("{what} is not a number")))
    };
    let expires_at = match parts[1] {
        "" => None,
        _ => Some(Timestamp::from_millis(num(1, "expires_at")?)),
    };
    let codec = u8::try_from(num(5, "codec")?)
        .ok()
        .and_then(Codec::from_id)
        .ok_or_else(|| corrupt("unknown codec"))?;
    let tags = Tags::new(parts[FIRST_TAG..].iter().copied())
        .map_err(|e| corrupt(&format!("tags: {e}")))?;
    Ok(Meta {
        version: num(0, "version")?,
        expires_at,
        stored_len: num(2, "stored_len")?,
        created_at: Timestamp::from_millis(num(3, "created_at")?),
        updated_at: Timestamp::from_millis(num(4, "updated_at")?),
        codec,
        value_len: num(6, "value_len")?,
        tags,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Meta {
        Meta {
            created_at: Timestamp::from_millis(1_700_000_000_000),
            updated_at: Timestamp::from_millis(1_700_000_000_500),
            expires_at: Some(Timestamp::from_millis(1_700_000_060_000)),
            tags: Tags::new(["b", "a:1", "ü {x}*?"]).unwrap(),
            codec: Codec::Zstd,
            value_len: 4096,
            stored_len: 100,
            version: 18_446_744_073_709_551_615,
        }
    }

    #[test]
    fn golden() {
        let s = encode(&sample());
        assert_eq!(
            s,
            "18446744073709551615\u{1f}1700000060000\u{1f}100\u{1f}1700000000000\u{1f}\
             1700000000500\u{1f}1\u{1f}4096\u{1f}a:1\u{1f}b\u{1f}ü {x}*?"
        );
        assert_eq!(decode(s.as_bytes(), &|| "t".into()).unwrap(), sample());
    }

    #[test]
    fn raw_tags_reads_only_tags() {
        let s = encode(&sample());
        let tags: Vec<&[u8]> = raw_tags(s.as_bytes()).collect();
        assert_eq!(tags, [&b"a:1"[..], b"b", "ü {x}*?".as_bytes()]);
    }

    #[test]
    fn no_expiry_no_tags() {
        let mut m = sample();
        m.expires_at = None;
        m.tags = Tags::empty();
        let s = encode(&m);
        assert_eq!(decode(s.as_bytes(), &|| "t".into()).unwrap(), m);
    }

    #[test]
    fn garbage_is_corrupt() {
        for bad in [
            &b""[..],
            b"1\x1f\x1f3",
            b"x\x1f\x1f1\x1f1\x1f1\x1f0\x1f1",
            b"1\x1f\x1f1\x1f1\x1f1\x1f9\x1f1",
            b"\xff\xfe",
            b"1\x1f\x1f1\x1f1\x1f1\x1f0\x1f1\x1f",
        ] {
            let e = decode(bad, &|| "t".into()).unwrap_err();
            assert!(matches!(e, Error::Corrupt { .. }), "{bad:?}: {e}");
        }
    }
}
