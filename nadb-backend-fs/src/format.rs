//! The on-disk format: segment files of checksummed frames, and hint files.
//!
//! # Segments
//!
//! A store directory holds numbered segments `seg-{id:016x}.log`, replayed in id order. Each
//! starts with a 16-byte header and continues with frames:
//!
//! ```text
//! header  := "NADBSEG\0" (8) | format version u16 LE (= 2) | header check u16 LE | salt u32 LE
//! header check := low 16 bits of CRC32C of (magic | version | salt)
//! frame   := payload length u32 LE | checksum u32 LE | payload
//! checksum:= CRC32C of (salt u32 LE | frame offset in the segment u64 LE | payload)
//! payload := 1 (put)    | space | key | record      (record: nadb-core's record format v1)
//!          | 2 (delete) | space | key
//!          | 3 (commit) | op count u32 LE
//! space   := db length u8 | db | namespace length u8 | namespace
//! key     := key length u16 LE | key bytes
//! ```
//!
//! Every batch is written as its put and delete frames followed by one commit frame naming how
//! many ops it had; replay applies a batch only when its commit frame is read, so a batch torn
//! by a crash is dropped whole. Readers take frames as slices of bytes already read, so a damaged
//! length never makes them allocate: it points past the end (a torn frame) or fails the CRC.
//!
//! The salt is drawn at random when a segment is created. With the offset, it makes a frame's
//! checksum hold only where the frame was written: frame-shaped bytes anywhere else, such as a
//! value holding a copy of a segment (even of its own), pass for a frame only by a 1 in 2^32
//! checksum collision. Recovery relies on that when it looks past a damaged frame for intact
//! batches (see [`Seal`]). The header check makes a damaged salt a damaged header (corruption)
//! rather than a segment whose every frame fails (which would read as a tail torn at its
//! start).
//!
//! Format 1 segments have a 16-byte header of the magic, version 1 as a u32 and a zero u32,
//! and checksum the payload alone. They are still read; opening a store whose last segment is
//! one starts a new segment, so nothing more is written in format 1.
//!
//! # Hint files
//!
//! `seg-{id:016x}.hint` lists, for a sealed segment, every committed op with where its frame is,
//! so opening a store need not read values:
//!
//! ```text
//! hint    := "NADBHNT\0" (8) | version u32 LE (= 1) | segment length u64 LE | entry count u64 LE
//!            | entries | CRC32C of everything before it u32 LE
//! entry   := 1 (put) | space | key | frame offset u64 LE | frame length u32 LE
//!            | metadata length u32 LE | metadata | stored value length u64 LE
//!          | 2 (delete) | space | key
//! ```
//!
//! The metadata is the record format with an empty value. A hint whose
//! segment length differs from the segment's, or whose checksum fails, is ignored and the
//! segment is scanned instead.

use bytes::{BufMut, Bytes, BytesMut};
use nadb_core::codec::{decode_record, encode_record_to};
use nadb_core::{Error, Meta, Record, Result, Space};

/// Bytes before the first frame of a segment.
pub const SEGMENT_HEADER_LEN: u64 = 16;
const SEGMENT_MAGIC: &[u8; 8] = b"NADBSEG\0";
const HINT_MAGIC: &[u8; 8] = b"NADBHNT\0";
/// The segment format new segments are written in.
const FORMAT_VERSION: u16 = 2;
/// The first segment format, still read: checksums over the payload alone.
const UNSALTED_VERSION: u16 = 1;
/// The hint file format.
const HINT_VERSION: u32 = 1;
/// Bytes of a frame before its payload.
pub const FRAME_HEADER_LEN: usize = 8;

const KIND_PUT: u8 = 1;
const KIND_DELETE: u8 = 2;
const KIND_COMMIT: u8 = 3;

/// How the frames of one segment are checksummed, as its header says: with the segment's
/// salt and each frame's offset (format 2), or over the payload alone (format 1).
///
/// Recovery tells a torn tail from damage in the middle of a segment by looking past the
/// damage for an intact commit frame. Were checksums over the payload alone, a torn value
/// holding a copy of a segment would show such frames and make a crash look like corruption.
///
/// ```
/// use bytes::BytesMut;
/// use nadb_backend_fs::format::{Seal, commit_frame, read_frame};
/// let seal = Seal::new();
/// let mut buf = BytesMut::new();
/// commit_frame(&mut buf, 0)?;
/// seal.sign(&mut buf, 16); // the frame will be written at offset 16
/// let frame = buf.freeze();
/// assert!(read_frame(&frame, 1 << 20, seal, 16).is_ok());
/// assert!(read_frame(&frame, 1 << 20, seal, 32).is_err()); // not where it was written
/// assert!(read_frame(&frame, 1 << 20, Seal::new(), 16).is_err()); // another segment
/// # Ok::<(), nadb_core::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seal(Option<u32>);

impl Seal {
    /// A new segment's: the current format, with a random salt.
    pub fn new() -> Seal {
        use std::hash::BuildHasher;
        // std's hasher keys are random per process and differ per instance: no rng needed.
        let random =
            std::collections::hash_map::RandomState::new().hash_one(std::time::SystemTime::now());
        Seal::with_salt(random as u32 ^ (random >> 32) as u32)
    }

    /// The current format with a given salt.
    pub fn with_salt(salt: u32) -> Seal {
        Seal(Some(salt))
    }

    /// Format 1: checksums over the payload alone.
    pub fn unsalted() -> Seal {
        Seal(None)
    }

    /// The segment header that records this seal.
    pub fn header(self) -> [u8; SEGMENT_HEADER_LEN as usize] {
        let mut h = [0u8; SEGMENT_HEADER_LEN as usize];
        h[..8].copy_from_slice(SEGMENT_MAGIC);
        match self.0 {
            Some(salt) => {
                h[8..10].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
                h[12..].copy_from_slice(&salt.to_le_bytes());
                let check = header_check(&h);
                h[10..12].copy_from_slice(&check.to_le_bytes());
            }
            None => h[8..12].copy_from_slice(&u32::from(UNSALTED_VERSION).to_le_bytes()),
        }
        h
    }

    /// The seal of a segment whose bytes start with `bytes`; `None` unless they start with a
    /// valid header of a format this version reads.
    pub fn from_header(bytes: &[u8]) -> Option<Seal> {
        let h = bytes.get(..SEGMENT_HEADER_LEN as usize)?;
        if &h[..8] != SEGMENT_MAGIC {
            return None;
        }
        let half = |at: usize| u16::from_le_bytes([h[at], h[at + 1]]);
        let salt = u32::from_le_bytes([h[12], h[13], h[14], h[15]]);
        match (half(8), half(10)) {
            (FORMAT_VERSION, check) if check == header_check(h) => Some(Seal::with_salt(salt)),
            (UNSALTED_VERSION, 0) if salt == 0 => Some(Seal::unsalted()),
            _ => None,
        }
    }

    /// Whether `bytes`, shorter than a header, are the start of one: what a crash while a
    /// segment was being created can leave.
    pub fn is_header_start(bytes: &[u8]) -> bool {
        // Each format's header, and how many of its bytes come before anything that varies.
        let known = [
            (Seal::unsalted().header(), SEGMENT_HEADER_LEN as usize),
            (Seal::with_salt(0).header(), 10),
        ];
        bytes.len() < SEGMENT_HEADER_LEN as usize
            && known
                .iter()
                .any(|(header, n)| bytes.iter().zip(&header[..*n]).all(|(b, k)| b == k))
    }

    /// The checksum of a frame at `offset` with `payload`.
    pub fn checksum(self, offset: u64, payload: &[u8]) -> u32 {
        match self.0 {
            None => crc32c::crc32c(payload),
            Some(salt) => {
                let mut prefix = [0u8; 12];
                prefix[..4].copy_from_slice(&salt.to_le_bytes());
                prefix[4..].copy_from_slice(&offset.to_le_bytes());
                crc32c::crc32c_append(crc32c::crc32c(&prefix), payload)
            }
        }
    }

    /// Fills in the checksums of the frames in `frames`, which are to be written at `offset`.
    pub fn sign(self, frames: &mut [u8], offset: u64) {
        let mut pos = 0usize;
        while let Some(head) = frames.get(pos..pos + FRAME_HEADER_LEN) {
            let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
            let end = pos + FRAME_HEADER_LEN + len;
            let Some(payload) = frames.get(pos + FRAME_HEADER_LEN..end) else {
                return;
            };
            let crc = self.checksum(offset.wrapping_add(pos as u64), payload);
            frames[pos + 4..pos + 8].copy_from_slice(&crc.to_le_bytes());
            pos = end;
        }
    }
}

/// The check of a format 2 header: over the magic, version and salt.
fn header_check(h: &[u8]) -> u16 {
    let crc = crc32c::crc32c_append(
        crc32c::crc32c(&h[..10]),
        &h[12..SEGMENT_HEADER_LEN as usize],
    );
    crc as u16
}

impl Default for Seal {
    fn default() -> Self {
        Seal::new()
    }
}

/// One decoded frame.
#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    /// A put of `record` under `key`.
    Put {
        /// Space.
        space: Space,
        /// Key.
        key: String,
        /// The stored record.
        record: Record,
    },
    /// A delete of `key`.
    Delete {
        /// Space.
        space: Space,
        /// Key.
        key: String,
    },
    /// The end of a batch of `ops` ops.
    Commit {
        /// Ops in the batch.
        ops: u32,
    },
}

fn put_space(buf: &mut BytesMut, space: &Space) {
    // Space names are validated identifiers of at most 64 bytes.
    buf.put_u8(space.db().len() as u8);
    buf.put_slice(space.db().as_bytes());
    buf.put_u8(space.namespace().len() as u8);
    buf.put_slice(space.namespace().as_bytes());
}

fn put_key(buf: &mut BytesMut, key: &str) -> Result<()> {
    let len = u16::try_from(key.len()).map_err(|_| Error::InvalidKey {
        len: key.len(),
        reason: "keys longer than 65535 bytes cannot be stored by the fs backend".into(),
    })?;
    buf.put_u16_le(len);
    buf.put_slice(key.as_bytes());
    Ok(())
}

/// Appends one framed payload built by `fill` to `out`, its checksum left for [`Seal::sign`];
/// returns the frame's length.
fn frame(out: &mut BytesMut, fill: impl FnOnce(&mut BytesMut) -> Result<()>) -> Result<usize> {
    let start = out.len();
    out.put_u64_le(0); // length and CRC, filled in below
    fill(out)?;
    let payload_len = out.len() - start - FRAME_HEADER_LEN;
    // The whole frame's length must fit the keydir's u32 too.
    let too_large = || Error::ValueTooLarge {
        size: payload_len as u64,
        limit: u64::from(u32::MAX) - FRAME_HEADER_LEN as u64,
    };
    u32::try_from(out.len() - start).map_err(|_| too_large())?;
    let len = u32::try_from(payload_len).map_err(|_| too_large())?;
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    Ok(out.len() - start)
}

/// Appends an unsigned put frame of the record `meta` + `stored` value; returns its length.
pub fn put_frame(
    out: &mut BytesMut,
    space: &Space,
    key: &str,
    meta: &Meta,
    stored: &[u8],
) -> Result<usize> {
    frame(out, |b| {
        b.put_u8(KIND_PUT);
        put_space(b, space);
        put_key(b, key)?;
        encode_record_to(b, meta, stored);
        Ok(())
    })
}

/// Appends an unsigned delete frame; returns its length.
pub fn delete_frame(out: &mut BytesMut, space: &Space, key: &str) -> Result<usize> {
    frame(out, |b| {
        b.put_u8(KIND_DELETE);
        put_space(b, space);
        put_key(b, key)
    })
}

/// Payload bytes of a commit frame: its kind and the op count.
pub const COMMIT_PAYLOAD_LEN: usize = 5;

/// Appends an unsigned commit frame; returns its length.
pub fn commit_frame(out: &mut BytesMut, ops: u32) -> Result<usize> {
    frame(out, |b| {
        b.put_u8(KIND_COMMIT);
        b.put_u32_le(ops);
        Ok(())
    })
}

/// Why a frame could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The bytes end inside the frame (a torn write).
    Truncated,
    /// The frame is complete but damaged (checksum, length or content).
    Damaged(&'static str),
}

/// A cursor over the bytes of one field area.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> std::result::Result<&'a [u8], FrameError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.buf.len())
            .ok_or(FrameError::Damaged("field runs past its frame"))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> std::result::Result<u8, FrameError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> std::result::Result<u16, FrameError> {
        Ok(u16::from_le_bytes([self.take(1)?[0], self.take(1)?[0]]))
    }
    fn u32(&mut self) -> std::result::Result<u32, FrameError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> std::result::Result<u64, FrameError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    fn str(&mut self, n: usize) -> std::result::Result<&'a str, FrameError> {
        std::str::from_utf8(self.take(n)?).map_err(|_| FrameError::Damaged("text is not UTF-8"))
    }
    /// A space; `last` is the one read before, shared when this is the same (a run of
    /// frames of one space then allocates its names once).
    fn space(&mut self, last: &mut Option<Space>) -> std::result::Result<Space, FrameError> {
        let n = self.u8()? as usize;
        let db = self.str(n)?;
        let n = self.u8()? as usize;
        let ns = self.str(n)?;
        if let Some(s) = last
            && s.db() == db
            && s.namespace() == ns
        {
            return Ok(s.clone());
        }
        let s = Space::new(db, ns).map_err(|_| FrameError::Damaged("invalid space name"))?;
        *last = Some(s.clone());
        Ok(s)
    }
    fn key(&mut self) -> std::result::Result<String, FrameError> {
        let n = self.u16()? as usize;
        Ok(self.str(n)?.to_string())
    }
    fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }
}

/// Reads the frame at the start of `buf`, the bytes from `offset` on of a segment sealed
/// with `seal`. Returns the frame and its total length. `max_payload` bounds the length field.
pub fn read_frame(
    buf: &Bytes,
    max_payload: u64,
    seal: Seal,
    offset: u64,
) -> std::result::Result<(Frame, usize), FrameError> {
    read_frame_after(buf, max_payload, seal, offset, &mut None)
}

/// [`read_frame`] for a reader going through frames in order: `last` carries the space of
/// the frame before, so frames of the same space share it.
pub(crate) fn read_frame_after(
    buf: &Bytes,
    max_payload: u64,
    seal: Seal,
    offset: u64,
    last: &mut Option<Space>,
) -> std::result::Result<(Frame, usize), FrameError> {
    let (payload, total) = checked_payload(buf, max_payload, seal, offset)?;
    Ok((decode_payload(&payload, last)?, total))
}

/// Reads the frame at the start of `buf` (at `offset` of a segment sealed with `seal`) if it
/// is a put of `key` in `space`: its record, or `None` for any other intact frame. The names
/// are compared in place, not decoded.
///
/// ```
/// use bytes::{Bytes, BytesMut};
/// use nadb_backend_fs::format::{Seal, put_frame, read_put};
/// use nadb_core::{Meta, Space, Timestamp};
/// let (space, seal) = (Space::default(), Seal::new());
/// let mut buf = BytesMut::new();
/// put_frame(&mut buf, &space, "k", &Meta::new(Timestamp::from_millis(1), 1), b"v")?;
/// seal.sign(&mut buf, 16);
/// let frame = buf.freeze();
/// assert_eq!(read_put(&frame, 1 << 20, seal, 16, &space, "k").unwrap().unwrap().value, "v");
/// assert_eq!(read_put(&frame, 1 << 20, seal, 16, &space, "other").unwrap(), None);
/// # Ok::<(), nadb_core::Error>(())
/// ```
pub fn read_put(
    buf: &Bytes,
    max_payload: u64,
    seal: Seal,
    offset: u64,
    space: &Space,
    key: &str,
) -> std::result::Result<Option<Record>, FrameError> {
    let (payload, _) = checked_payload(buf, max_payload, seal, offset)?;
    let mut r = Reader {
        buf: &payload,
        pos: 0,
    };
    if r.u8()? != KIND_PUT {
        return Ok(None);
    }
    let n = r.u8()? as usize;
    let db = r.take(n)?;
    let n = r.u8()? as usize;
    let ns = r.take(n)?;
    let n = r.u16()? as usize;
    let k = r.take(n)?;
    if db != space.db().as_bytes() || ns != space.namespace().as_bytes() || k != key.as_bytes() {
        return Ok(None);
    }
    decode_record(payload.slice(r.pos..))
        .map(Some)
        .map_err(|_| FrameError::Damaged("record does not decode"))
}

/// The checksummed payload of the frame at the start of `buf`, and the frame's total length.
fn checked_payload(
    buf: &Bytes,
    max_payload: u64,
    seal: Seal,
    offset: u64,
) -> std::result::Result<(Bytes, usize), FrameError> {
    if buf.len() < FRAME_HEADER_LEN {
        return Err(FrameError::Truncated);
    }
    let len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    let crc = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]);
    if len as u64 > max_payload || len == 0 {
        return Err(FrameError::Damaged("frame length out of range"));
    }
    let total = FRAME_HEADER_LEN + len;
    if buf.len() < total {
        return Err(FrameError::Truncated);
    }
    let payload = buf.slice(FRAME_HEADER_LEN..total);
    if seal.checksum(offset, &payload) != crc {
        return Err(FrameError::Damaged("frame checksum mismatch"));
    }
    Ok((payload, total))
}

fn decode_payload(
    payload: &Bytes,
    last: &mut Option<Space>,
) -> std::result::Result<Frame, FrameError> {
    let mut r = Reader {
        buf: payload,
        pos: 0,
    };
    match r.u8()? {
        KIND_PUT => {
            let space = r.space(last)?;
            let key = r.key()?;
            let record = decode_record(payload.slice(r.pos..))
                .map_err(|_| FrameError::Damaged("record does not decode"))?;
            Ok(Frame::Put { space, key, record })
        }
        KIND_DELETE => {
            let space = r.space(last)?;
            let key = r.key()?;
            if !r.rest().is_empty() {
                return Err(FrameError::Damaged("trailing bytes in a delete frame"));
            }
            Ok(Frame::Delete { space, key })
        }
        KIND_COMMIT => {
            let ops = r.u32()?;
            if !r.rest().is_empty() {
                return Err(FrameError::Damaged("trailing bytes in a commit frame"));
            }
            Ok(Frame::Commit { ops })
        }
        _ => Err(FrameError::Damaged("unknown frame kind")),
    }
}

/// One entry of a hint file.
#[derive(Clone, Debug, PartialEq)]
pub enum HintEntry {
    /// A put whose frame is at `offset`, `len` bytes long.
    Put {
        /// Space.
        space: Space,
        /// Key.
        key: String,
        /// Frame offset in the segment.
        offset: u64,
        /// Frame length.
        len: u32,
        /// The record's metadata.
        meta: Meta,
    },
    /// A delete.
    Delete {
        /// Space.
        space: Space,
        /// Key.
        key: String,
    },
}

/// The entries of a hint file, encoded as they are appended: the active segment's hints
/// cost one growing buffer, not an allocation per op.
#[derive(Debug, Default)]
pub struct HintLog {
    body: BytesMut,
    count: u64,
    /// Set when an entry could not be encoded; such a log writes no hint file, and opening
    /// scans the segment instead.
    broken: bool,
}

impl HintLog {
    /// An empty log.
    pub fn new() -> HintLog {
        HintLog::default()
    }

    /// Appends a put whose frame is at `offset`, `len` bytes long.
    pub fn put(&mut self, space: &Space, key: &str, offset: u64, len: u32, meta: &Meta) {
        if !self.start(KIND_PUT, space, key) {
            return;
        }
        let b = &mut self.body;
        b.put_u64_le(offset);
        b.put_u32_le(len);
        // The record format with an empty value carries exactly the metadata.
        let at = b.len();
        b.put_u32_le(0);
        encode_record_to(b, meta, &[]);
        let header_len = (b.len() - at - 4) as u32;
        b[at..at + 4].copy_from_slice(&header_len.to_le_bytes());
        b.put_u64_le(meta.stored_len);
    }

    /// Appends a delete.
    pub fn delete(&mut self, space: &Space, key: &str) {
        self.start(KIND_DELETE, space, key);
    }

    /// Appends an entry's kind, space and key; false (and the log broken) if the key cannot
    /// be encoded.
    fn start(&mut self, kind: u8, space: &Space, key: &str) -> bool {
        self.body.put_u8(kind);
        put_space(&mut self.body, space);
        if put_key(&mut self.body, key).is_err() {
            self.broken = true;
            return false;
        }
        self.count += 1;
        true
    }

    /// Appends `entry`.
    pub fn push(&mut self, entry: &HintEntry) {
        match entry {
            HintEntry::Put {
                space,
                key,
                offset,
                len,
                meta,
            } => self.put(space, key, *offset, *len, meta),
            HintEntry::Delete { space, key } => self.delete(space, key),
        }
    }

    /// Entries appended.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// Whether no entry was appended.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Makes room for about `bytes` more of entries.
    pub fn reserve(&mut self, bytes: usize) {
        self.body.reserve(bytes);
    }

    /// Empties the log, keeping its buffer for the next segment's entries.
    pub fn clear(&mut self) {
        self.body.clear();
        self.count = 0;
        self.broken = false;
    }

    /// The hint file for a segment of `segment_len` bytes, as three parts to write one after
    /// the other (header, entries, checksum) so the entries are not copied; `None` when an
    /// entry could not be encoded (the segment is then scanned at open).
    pub fn parts(&self, segment_len: u64) -> Option<([u8; 28], &[u8], [u8; 4])> {
        if self.broken {
            return None;
        }
        let mut header = [0u8; 28];
        header[..8].copy_from_slice(HINT_MAGIC);
        header[8..12].copy_from_slice(&HINT_VERSION.to_le_bytes());
        header[12..20].copy_from_slice(&segment_len.to_le_bytes());
        header[20..28].copy_from_slice(&self.count.to_le_bytes());
        let crc = crc32c::crc32c_append(crc32c::crc32c(&header), &self.body);
        Some((header, &self.body, crc.to_le_bytes()))
    }

    /// The hint file for a segment of `segment_len` bytes in one buffer; see
    /// [`HintLog::parts`].
    pub fn encode(&self, segment_len: u64) -> Option<Bytes> {
        let (header, body, crc) = self.parts(segment_len)?;
        let mut b = BytesMut::with_capacity(header.len() + body.len() + crc.len());
        b.put_slice(&header);
        b.put_slice(body);
        b.put_slice(&crc);
        Some(b.freeze())
    }
}

/// Parses a hint file; returns the segment length it describes and its entries.
pub fn decode_hint(buf: &Bytes) -> std::result::Result<(u64, Vec<HintEntry>), FrameError> {
    let file = HintFile::open(buf)?;
    let mut entries = Vec::with_capacity(file.count.min(1 << 20) as usize);
    file.for_each(|e| entries.push(e))?;
    Ok((file.segment_len, entries))
}

/// A hint file whose checksum and header hold; [`HintFile::for_each`] reads its entries one
/// at a time, so opening a store applies them without collecting them first.
///
/// ```
/// use nadb_backend_fs::format::{HintFile, HintLog};
/// use nadb_core::Space;
/// let mut log = HintLog::new();
/// log.delete(&Space::default(), "gone");
/// let bytes = log.encode(4096).unwrap();
/// let file = HintFile::open(&bytes).unwrap();
/// assert_eq!((file.segment_len(), file.count()), (4096, 1));
/// let mut seen = 0;
/// file.for_each(|_| seen += 1).unwrap();
/// assert_eq!(seen, 1);
/// assert_eq!(file.to_log().encode(4096), Some(bytes));
/// ```
pub struct HintFile<'a> {
    buf: &'a Bytes,
    segment_len: u64,
    count: u64,
    /// The entries, between the header and the checksum.
    entries: std::ops::Range<usize>,
}

impl<'a> HintFile<'a> {
    /// Checks the checksum and header of the hint file in `buf`.
    pub fn open(buf: &'a Bytes) -> std::result::Result<HintFile<'a>, FrameError> {
        if buf.len() < 32 {
            return Err(FrameError::Truncated);
        }
        let body = &buf[..buf.len() - 4];
        let crc = u32::from_le_bytes([
            buf[buf.len() - 4],
            buf[buf.len() - 3],
            buf[buf.len() - 2],
            buf[buf.len() - 1],
        ]);
        if crc32c::crc32c(body) != crc {
            return Err(FrameError::Damaged("hint checksum mismatch"));
        }
        let mut r = Reader { buf: body, pos: 0 };
        if r.take(8)? != HINT_MAGIC || r.u32()? != HINT_VERSION {
            return Err(FrameError::Damaged("not a hint file of this version"));
        }
        let segment_len = r.u64()?;
        let count = r.u64()?;
        Ok(HintFile {
            buf,
            segment_len,
            count,
            entries: r.pos..body.len(),
        })
    }

    /// The length of the segment the file describes.
    pub fn segment_len(&self) -> u64 {
        self.segment_len
    }

    /// The number of entries the header states.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Calls `f` with each entry in order. On an error, `f` has seen the entries before it.
    pub fn for_each(&self, mut f: impl FnMut(HintEntry)) -> std::result::Result<(), FrameError> {
        let buf = self.buf;
        let mut r = Reader {
            buf: &buf[..self.entries.end],
            pos: self.entries.start,
        };
        let mut last = None;
        for _ in 0..self.count {
            f(match r.u8()? {
                KIND_PUT => {
                    let space = r.space(&mut last)?;
                    let key = r.key()?;
                    let offset = r.u64()?;
                    let len = r.u32()?;
                    let n = r.u32()? as usize;
                    let start = r.pos;
                    r.take(n)?;
                    let mut rec = decode_record(buf.slice(start..start + n))
                        .map_err(|_| FrameError::Damaged("hint metadata does not decode"))?;
                    rec.meta.stored_len = r.u64()?;
                    HintEntry::Put {
                        space,
                        key,
                        offset,
                        len,
                        meta: rec.meta,
                    }
                }
                KIND_DELETE => HintEntry::Delete {
                    space: r.space(&mut last)?,
                    key: r.key()?,
                },
                _ => return Err(FrameError::Damaged("unknown hint entry kind")),
            });
        }
        if !r.rest().is_empty() {
            return Err(FrameError::Damaged("trailing bytes in a hint file"));
        }
        Ok(())
    }

    /// A [`HintLog`] holding the file's entries, to append to (their bytes are copied, not
    /// decoded and encoded again).
    pub fn to_log(&self) -> HintLog {
        HintLog {
            body: BytesMut::from(&self.buf[self.entries.clone()]),
            count: self.count,
            broken: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nadb_core::{Codec, Tags, Timestamp};
    use proptest::prelude::*;

    fn record() -> Record {
        let mut meta = Meta::new(Timestamp::from_millis(1_700_000_000_000), 7);
        meta.value_len = 2;
        meta.stored_len = 2;
        meta.codec = Codec::Raw;
        meta.tags = Tags::new(["t"]).unwrap();
        Record::new(Bytes::from_static(b"hi"), meta)
    }

    /// Pins segment format version 1 byte for byte: still read, and written to while active.
    #[test]
    fn golden_frames_v1() {
        let space = Space::new("d", "n").unwrap();
        let mut b = BytesMut::new();
        delete_frame(&mut b, &space, "k").unwrap();
        commit_frame(&mut b, 1).unwrap();
        Seal::unsalted().sign(&mut b, 16);
        let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
        let del_payload = "02016401 6e01006b".replace(' ', "");
        let del_crc = crc32c::crc32c(&hex_bytes(&del_payload));
        let commit_payload = "0301000000";
        let commit_crc = crc32c::crc32c(&hex_bytes(commit_payload));
        let want = format!(
            "08000000{}{}05000000{}{}",
            hex_le(del_crc),
            del_payload,
            hex_le(commit_crc),
            commit_payload
        );
        assert_eq!(hex, want);
        let header = *b"NADBSEG\0\x01\0\0\0\0\0\0\0";
        assert_eq!(Seal::unsalted().header(), header);
        assert_eq!(Seal::from_header(&header), Some(Seal::unsalted()));
    }

    /// Pins segment format version 2 byte for byte: the checksum covers salt, offset, payload.
    #[test]
    fn golden_frames_v2() {
        let space = Space::new("d", "n").unwrap();
        let seal = Seal::with_salt(0x0a0b_0c0d);
        let mut b = BytesMut::new();
        delete_frame(&mut b, &space, "k").unwrap();
        commit_frame(&mut b, 1).unwrap();
        seal.sign(&mut b, 40);
        let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
        let crc = |offset: &str, payload: &str| {
            crc32c::crc32c(&hex_bytes(&format!("0d0c0b0a{offset}{payload}")))
        };
        let del_payload = "020164016e01006b";
        let commit_payload = "0301000000";
        let want = format!(
            "08000000{}{}05000000{}{}",
            hex_le(crc("2800000000000000", del_payload)),
            del_payload,
            // 40 + the delete frame's 16 bytes
            hex_le(crc("3800000000000000", commit_payload)),
            commit_payload
        );
        assert_eq!(hex, want);
        let check = crc32c::crc32c(b"NADBSEG\0\x02\0\x0d\x0c\x0b\x0a") as u16;
        let mut header = *b"NADBSEG\0\x02\0..\x0d\x0c\x0b\x0a";
        header[10..12].copy_from_slice(&check.to_le_bytes());
        assert_eq!(seal.header(), header);
        assert_eq!(Seal::from_header(&header), Some(seal));
        let frames = b.freeze();
        assert!(read_frame(&frames, 1 << 20, seal, 40).is_ok());
        assert!(read_frame(&frames, 1 << 20, Seal::unsalted(), 40).is_err());
    }

    #[test]
    fn damaged_headers_and_other_versions_are_refused() {
        for seal in [Seal::new(), Seal::unsalted()] {
            let h = seal.header();
            assert_eq!(Seal::from_header(&h), Some(seal));
            assert!(Seal::from_header(&h[..15]).is_none());
            for n in 0..h.len() {
                assert!(Seal::is_header_start(&h[..n]), "{seal:?}: {n} bytes");
            }
            assert!(!Seal::is_header_start(&h));
            // Any one flipped bit, the salt's included, makes it no header at all.
            for bit in 0..h.len() * 8 {
                let mut d = h;
                d[bit / 8] ^= 1 << (bit % 8);
                assert!(Seal::from_header(&d).is_none(), "{seal:?}: bit {bit}");
            }
        }
        let mut h = Seal::new().header();
        h[8] = 3;
        assert!(!Seal::is_header_start(&h[..12]));
    }

    fn hex_bytes(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn hex_le(v: u32) -> String {
        v.to_le_bytes().iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn frames_round_trip_and_damage_is_detected() {
        let space = Space::new("db", "ns").unwrap();
        let mut b = BytesMut::new();
        let r = record();
        let n = put_frame(&mut b, &space, "key/../*", &r.meta, &r.value).unwrap();
        let seal = Seal::new();
        seal.sign(&mut b, 16);
        let bytes = b.freeze();
        let (f, len) = read_frame(&bytes, 1 << 20, seal, 16).unwrap();
        assert_eq!(len, n);
        assert_eq!(
            f,
            Frame::Put {
                space: space.clone(),
                key: "key/../*".into(),
                record: record()
            }
        );
        for cut in 0..bytes.len() {
            assert!(read_frame(&bytes.slice(..cut), 1 << 20, seal, 16).is_err());
        }
        for bit in 0..bytes.len() * 8 {
            let mut v = bytes.to_vec();
            v[bit / 8] ^= 1 << (bit % 8);
            let damaged = Bytes::from(v);
            assert!(
                read_frame(&damaged, 1 << 20, seal, 16).is_err(),
                "bit {bit}"
            );
        }
        // The same bytes anywhere else, or in another segment, are no frame.
        assert!(read_frame(&bytes, 1 << 20, seal, 17).is_err());
        assert!(read_frame(&bytes, 1 << 20, Seal::with_salt(1), 16).is_err());
    }

    #[test]
    fn read_put_answers_only_for_its_key() {
        let space = Space::new("db", "ns").unwrap();
        let mut b = BytesMut::new();
        let r = record();
        let seal = Seal::new();
        put_frame(&mut b, &space, "key", &r.meta, &r.value).unwrap();
        seal.sign(&mut b, 16);
        let put = b.split().freeze();
        delete_frame(&mut b, &space, "key").unwrap();
        seal.sign(&mut b, 16);
        let delete = b.split().freeze();
        let read = |frame: &Bytes, space: &Space, key: &str| {
            read_put(frame, 1 << 20, seal, 16, space, key)
        };
        assert_eq!(read(&put, &space, "key").unwrap(), Some(r));
        assert_eq!(read(&put, &space, "kex").unwrap(), None);
        assert_eq!(read(&put, &space, "ke").unwrap(), None);
        let other = Space::new("db", "nt").unwrap();
        assert_eq!(read(&put, &other, "key").unwrap(), None);
        assert_eq!(read(&delete, &space, "key").unwrap(), None);
        assert!(read_put(&put, 1 << 20, seal, 24, &space, "key").is_err());
        for cut in 0..put.len() {
            assert!(read(&put.slice(..cut), &space, "key").is_err());
        }
        for bit in 0..put.len() * 8 {
            let mut v = put.to_vec();
            v[bit / 8] ^= 1 << (bit % 8);
            assert!(
                !matches!(read(&Bytes::from(v), &space, "key"), Ok(Some(_))),
                "bit {bit}"
            );
        }
    }

    #[test]
    fn hints_round_trip_and_reject_damage() {
        let space = Space::new("db", "ns").unwrap();
        let entries = vec![
            HintEntry::Put {
                space: space.clone(),
                key: "a".into(),
                offset: 16,
                len: 99,
                meta: record().meta,
            },
            HintEntry::Delete {
                space,
                key: "b".into(),
            },
        ];
        let mut log = HintLog::new();
        entries.iter().for_each(|e| log.push(e));
        let h = log.encode(1234).unwrap();
        assert_eq!(decode_hint(&h).unwrap(), (1234, entries));
        for bit in (0..h.len() * 8).step_by(7) {
            let mut v = h.to_vec();
            v[bit / 8] ^= 1 << (bit % 8);
            assert!(decode_hint(&Bytes::from(v)).is_err());
        }
    }

    #[test]
    fn a_cleared_hint_log_holds_only_what_follows() {
        let space = Space::default();
        let mut log = HintLog::new();
        log.delete(&space, "old");
        // A key too long to encode breaks the log: it would write no hint file.
        log.delete(&space, &"k".repeat(70_000));
        assert!(log.encode(64).is_none());
        log.clear();
        log.delete(&space, "new");
        let entry = HintEntry::Delete {
            space,
            key: "new".into(),
        };
        let h = log.encode(64).expect("an unbroken log");
        assert_eq!(decode_hint(&h).unwrap(), (64, vec![entry]));
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let b = Bytes::from(data);
            let _ = read_frame(&b, 1 << 20, Seal::unsalted(), 0);
            let _ = read_frame(&b, 1 << 20, Seal::new(), 16);
            let _ = Seal::from_header(&b);
            let _ = decode_hint(&b);
        }

        #[test]
        fn random_frames_with_valid_crc_never_panic(payload in proptest::collection::vec(any::<u8>(), 1..200)) {
            let mut v = Vec::new();
            v.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            v.extend_from_slice(&crc32c::crc32c(&payload).to_le_bytes());
            v.extend_from_slice(&payload);
            let _ = read_frame(&Bytes::from(v), 1 << 20, Seal::unsalted(), 16);
        }
    }
}
