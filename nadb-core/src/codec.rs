//! The value codec (threshold zstd) and the versioned byte format of a whole record.
//!
//! **Values.** A value at least [`Compression::threshold`] bytes long is compressed with zstd;
//! the compressed form is kept only when it is strictly smaller, so incompressible data is
//! never stored larger than it came. The choice is recorded in [`Meta::codec`], never guessed
//! from the bytes: a raw value that happens to start with zstd's magic number stays raw.
//!
//! **Records.** Backends that keep a record as one blob (a Redis string, a log entry) use
//! [`encode_record`] / [`decode_record`]. Format version 1, integers little-endian:
//!
//! ```text
//! offset  size  field
//! 0       2     magic "nR"
//! 2       1     format version (1)
//! 3       1     codec (0 raw, 1 zstd)
//! 4       8     version
//! 12      8     created_at   (ms since the Unix epoch)
//! 20      8     updated_at
//! 28      8     expires_at   (0 = never)
//! 36      8     value_len    (length before the codec)
//! 44      1     tag count n  (at most 64)
//! 45      ...   n tags, each: length (1 byte, at most 128) then UTF-8 bytes
//! ...     ...   payload (the stored value; its length is what remains)
//! end-4   4     CRC32C of every byte before it
//! ```

use std::io::Read;

use bytes::{BufMut, Bytes, BytesMut};

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::record::{Codec, Meta, Record};
use crate::tags::Tags;

/// When and how hard values are compressed.
///
/// ```
/// use nadb_core::Compression;
/// let c = Compression::default();
/// assert_eq!((c.threshold, c.level), (1024, 3));
/// assert!(Compression::disabled().threshold == usize::MAX);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Compression {
    /// Values shorter than this many bytes are never compressed.
    pub threshold: usize,
    /// zstd level (1 fastest .. 22 smallest).
    pub level: i32,
}

impl Default for Compression {
    fn default() -> Self {
        Compression {
            threshold: 1024,
            level: 3,
        }
    }
}

impl Compression {
    /// Never compress.
    pub const fn disabled() -> Compression {
        Compression {
            threshold: usize::MAX,
            level: 3,
        }
    }

    /// Encodes `value`: returns the codec chosen and the stored bytes.
    ///
    /// ```
    /// use nadb_core::{Codec, Compression};
    /// let (codec, stored) = Compression::default().encode(vec![b'a'; 4096].into());
    /// assert_eq!(codec, Codec::Zstd);
    /// assert!(stored.len() < 4096);
    /// ```
    pub fn encode(&self, value: Bytes) -> (Codec, Bytes) {
        if value.len() < self.threshold {
            return (Codec::Raw, value);
        }
        match zstd::bulk::compress(&value, self.level) {
            Ok(c) if c.len() < value.len() => (Codec::Zstd, Bytes::from(c)),
            // Not smaller (random data) or zstd refused: keep the raw bytes.
            _ => (Codec::Raw, value),
        }
    }
}

/// Decodes a stored value back to what the caller wrote; `value_len` is the expected length.
///
/// ```
/// use nadb_core::{codec::decode_value, Codec, Compression};
/// let (codec, stored) = Compression::default().encode(vec![7u8; 5000].into());
/// assert_eq!(decode_value(codec, stored, 5000).unwrap(), vec![7u8; 5000]);
/// ```
pub fn decode_value(codec: Codec, stored: Bytes, value_len: u64) -> Result<Bytes> {
    match codec {
        Codec::Raw => {
            if stored.len() as u64 != value_len {
                return Err(corrupt("raw value length differs from its metadata"));
            }
            Ok(stored)
        }
        Codec::Zstd => {
            let mut decoder = zstd::stream::read::Decoder::with_buffer(&stored[..])
                .map_err(|_| corrupt("zstd stream cannot be opened"))?;
            // Capacity is capped so a damaged length field cannot force a huge allocation.
            let cap = usize::try_from(value_len.min(64 << 20)).unwrap_or(0);
            let mut out = Vec::with_capacity(cap);
            (&mut decoder)
                .take(value_len.saturating_add(1))
                .read_to_end(&mut out)
                .map_err(|_| corrupt("zstd stream is damaged"))?;
            if out.len() as u64 != value_len {
                return Err(corrupt("decompressed length differs from its metadata"));
            }
            Ok(Bytes::from(out))
        }
    }
}

fn corrupt(reason: &str) -> Error {
    Error::Corrupt {
        location: "record".into(),
        offset: None,
        reason: reason.into(),
    }
}

const MAGIC: &[u8; 2] = b"nR";
const FORMAT_VERSION: u8 = 1;
const FIXED_LEN: usize = 45;
const CRC_LEN: usize = 4;

/// Serializes a stored record (metadata + stored value) into format version 1.
pub fn encode_record(record: &Record) -> Bytes {
    let mut buf = BytesMut::new();
    encode_record_to(&mut buf, &record.meta, &record.value);
    buf.freeze()
}

/// Appends the record of `meta` and `stored` value to `out`, byte for byte what
/// [`encode_record`] returns: for a backend that frames many records in one buffer.
///
/// ```
/// use nadb_core::{codec::{encode_record, encode_record_to}, Meta, Record, Timestamp};
/// let r = Record::new("v".into(), Meta { value_len: 1, stored_len: 1, ..Meta::new(Timestamp::EPOCH, 9) });
/// let mut out = bytes::BytesMut::from(&b"prefix"[..]);
/// encode_record_to(&mut out, &r.meta, &r.value);
/// assert_eq!(&out[6..], &encode_record(&r)[..]);
/// ```
pub fn encode_record_to(out: &mut BytesMut, meta: &Meta, stored: &[u8]) {
    let m = meta;
    let tags_len: usize = m.tags.iter().map(|t| 1 + t.len()).sum();
    out.reserve(FIXED_LEN + tags_len + stored.len() + CRC_LEN);
    let start = out.len();
    // The fixed fields are laid out in one array and copied in one go: this runs once per
    // record written, and once more per hint entry of the fs backend.
    let mut fixed = [0u8; FIXED_LEN];
    fixed[0..2].copy_from_slice(MAGIC);
    fixed[2] = FORMAT_VERSION;
    fixed[3] = m.codec.id();
    fixed[4..12].copy_from_slice(&m.version.to_le_bytes());
    fixed[12..20].copy_from_slice(&m.created_at.as_millis().to_le_bytes());
    fixed[20..28].copy_from_slice(&m.updated_at.as_millis().to_le_bytes());
    fixed[28..36].copy_from_slice(&m.expires_at.map_or(0, Timestamp::as_millis).to_le_bytes());
    fixed[36..44].copy_from_slice(&m.value_len.to_le_bytes());
    // Tags are validated (≤ 64 tags of ≤ 128 bytes), so both fit in a byte.
    fixed[44] = m.tags.len() as u8;
    out.extend_from_slice(&fixed);
    for t in m.tags.iter() {
        out.put_u8(t.len() as u8);
        out.put_slice(t.as_bytes());
    }
    out.put_slice(stored);
    let crc = crc32c::crc32c(&out[start..]);
    out.put_u32_le(crc);
}

/// Parses a record written by [`encode_record`]. The stored value is a zero-copy slice of
/// `buf`. Any damage yields [`Error::Corrupt`], never a panic.
///
/// ```
/// use nadb_core::{codec::{decode_record, encode_record}, Meta, Record, Timestamp};
/// let r = Record::new("v".into(), Meta { value_len: 1, stored_len: 1, ..Meta::new(Timestamp::EPOCH, 9) });
/// assert_eq!(decode_record(encode_record(&r)).unwrap(), r);
/// ```
pub fn decode_record(buf: Bytes) -> Result<Record> {
    if buf.len() < FIXED_LEN + CRC_LEN {
        return Err(corrupt("record is shorter than its header"));
    }
    let body_end = buf.len() - CRC_LEN;
    let stored_crc = u32::from_le_bytes(read_array(&buf, body_end)?);
    if crc32c::crc32c(&buf[..body_end]) != stored_crc {
        return Err(corrupt("record checksum mismatch"));
    }
    if &buf[0..2] != MAGIC {
        return Err(corrupt("bad record magic"));
    }
    if buf[2] != FORMAT_VERSION {
        return Err(corrupt("unknown record format version"));
    }
    let codec = Codec::from_id(buf[3]).ok_or_else(|| corrupt("unknown codec"))?;
    let u64_at = |off: usize| read_array(&buf, off).map(u64::from_le_bytes);
    let version = u64_at(4)?;
    let created_at = Timestamp::from_millis(u64_at(12)?);
    let updated_at = Timestamp::from_millis(u64_at(20)?);
    let expires_at = match u64_at(28)? {
        0 => None,
        ms => Some(Timestamp::from_millis(ms)),
    };
    let value_len = u64_at(36)?;
    let tag_count = buf[44] as usize;
    let mut pos = FIXED_LEN;
    let mut tags = Vec::with_capacity(tag_count.min(64));
    for _ in 0..tag_count {
        let len = *buf
            .get(pos)
            .ok_or_else(|| corrupt("tag runs past the record"))? as usize;
        let bytes = buf
            .get(pos + 1..pos + 1 + len)
            .filter(|_| pos + 1 + len <= body_end)
            .ok_or_else(|| corrupt("tag runs past the record"))?;
        let tag = std::str::from_utf8(bytes).map_err(|_| corrupt("tag is not UTF-8"))?;
        tags.push(tag.to_string());
        pos += 1 + len;
    }
    let tags = Tags::new(tags).map_err(|_| corrupt("stored tags are invalid"))?;
    if pos > body_end {
        return Err(corrupt("tags run past the record"));
    }
    let value = buf.slice(pos..body_end);
    let meta = Meta {
        created_at,
        updated_at,
        expires_at,
        tags,
        codec,
        value_len,
        stored_len: value.len() as u64,
        version,
    };
    Ok(Record { value, meta })
}

fn read_array<const N: usize>(buf: &[u8], off: usize) -> Result<[u8; N]> {
    buf.get(off..off + N)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| corrupt("field runs past the record"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Record {
        Record {
            value: Bytes::from_static(b"hello"),
            meta: Meta {
                created_at: Timestamp::from_millis(1_700_000_000_000),
                updated_at: Timestamp::from_millis(1_700_000_000_500),
                expires_at: Some(Timestamp::from_millis(1_700_000_060_000)),
                tags: Tags::new(["blue", "a"]).unwrap(),
                codec: Codec::Raw,
                value_len: 5,
                stored_len: 5,
                version: 42,
            },
        }
    }

    /// Pins format version 1 byte for byte: changing the layout must fail this test.
    #[test]
    fn golden_record_format_v1() {
        let bytes = encode_record(&sample());
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            concat!(
                "6e52",
                "01",
                "00",
                "2a00000000000000",
                "0068e5cf8b010000",
                "f469e5cf8b010000",
                "6052e6cf8b010000",
                "0500000000000000",
                "02",
                "0161",
                "04626c7565",
                "68656c6c6f",
                "015e3bda"
            )
        );
        assert_eq!(decode_record(bytes).unwrap(), sample());
    }

    #[test]
    fn compression_only_when_smaller() {
        let c = Compression::default();
        let small = Bytes::from(vec![b'a'; 1023]);
        assert_eq!(c.encode(small.clone()).0, Codec::Raw);
        let big = Bytes::from(vec![b'a'; 1024]);
        let (codec, stored) = c.encode(big.clone());
        assert_eq!(codec, Codec::Zstd);
        assert_eq!(decode_value(codec, stored, 1024).unwrap(), big);
        // Random bytes do not compress: they must be kept raw, never larger.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let random: Vec<u8> = (0..65536)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let (codec, stored) = c.encode(random.clone().into());
        assert_eq!(codec, Codec::Raw);
        assert_eq!(stored.len(), random.len());
        // A raw value that starts with zstd's magic number is still returned as written.
        let mut tricky = vec![0x28, 0xB5, 0x2F, 0xFD];
        tricky.extend_from_slice(&random[..2000]);
        let (codec, stored) = c.encode(tricky.clone().into());
        assert_eq!(codec, Codec::Raw);
        assert_eq!(
            decode_value(codec, stored, tricky.len() as u64).unwrap(),
            tricky
        );
    }

    #[test]
    fn damaged_zstd_is_corrupt_not_panic() {
        let (codec, stored) = Compression::default().encode(vec![3u8; 4096].into());
        assert!(decode_value(codec, stored.clone(), 4095).is_err());
        assert!(decode_value(codec, stored.slice(..stored.len() / 2), 4096).is_err());
        assert!(decode_value(Codec::Raw, stored, 1).is_err());
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        let bytes = encode_record(&sample());
        for i in 0..bytes.len() * 8 {
            let mut b = bytes.to_vec();
            b[i / 8] ^= 1 << (i % 8);
            assert!(
                decode_record(b.into()).is_err(),
                "flip of bit {i} not detected"
            );
        }
        for len in 0..bytes.len() {
            assert!(decode_record(bytes.slice(..len)).is_err());
        }
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_record(Bytes::from(data));
        }

        #[test]
        fn round_trip(value in proptest::collection::vec(any::<u8>(), 0..3000),
                      tags in proptest::collection::vec("[a-z]{1,8}", 0..5),
                      version in any::<u64>()) {
            let (codec, stored) = Compression::default().encode(Bytes::from(value.clone()));
            let rec = Record {
                meta: Meta {
                    tags: Tags::new(tags).unwrap(),
                    codec,
                    value_len: value.len() as u64,
                    stored_len: stored.len() as u64,
                    ..Meta::new(Timestamp::from_millis(1), version)
                },
                value: stored,
            };
            let back = decode_record(encode_record(&rec)).unwrap();
            prop_assert_eq!(&back, &rec);
            prop_assert_eq!(decode_value(back.meta.codec, back.value, back.meta.value_len).unwrap(), value);
        }
    }
}
