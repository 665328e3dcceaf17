//! Copying every space of one store into another, while both stay open, and proving the copy
//! with a count and a checksum per space.
//!
//! [`migrate`] walks the source like an export (spaces from
//! [`StorageBackend::spaces`](crate::StorageBackend::spaces), sorted; keys in order; expired
//! records left out), writes each chunk of records into the same space of the target as one
//! transaction with the same value, tags and expiry, and then reads the target back. For each
//! space on either side it reports a [`SpaceDigest`] of what was copied from the source and of
//! what the target holds: the number of live records and a CRC32C over every record's key,
//! value, tags and expiry in key order. The copy is verified when every pair matches.
//!
//! The source keeps serving reads and writes during the copy. A record written to it after its
//! chunk was copied is not carried over; run `migrate` again (it overwrites, so it is
//! idempotent) or stop writers first for an exact copy. Keys the target held before and the
//! source lacks are kept, and show up as a mismatch.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::progress::Progress;
use crate::walk::{self, Entry, SpaceReader};
use crate::{Result, Space, Store};

/// The live records of a space, counted and checksummed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SpaceDigest {
    /// Live records.
    pub records: u64,
    /// CRC32C over each record's key, value, tags and expiry, in key order.
    pub checksum: u32,
}

impl SpaceDigest {
    /// Adds one record, in key order.
    fn add(&mut self, e: &Entry) {
        let mut crc = self.checksum;
        // Every field is length-prefixed so no two different records hash the same bytes.
        let mut field = |bytes: &[u8]| {
            crc = crc32c::crc32c_append(crc, &(bytes.len() as u64).to_le_bytes());
            crc = crc32c::crc32c_append(crc, bytes);
        };
        field(e.key.as_bytes());
        field(&e.value);
        field(&(e.tags.len() as u64).to_le_bytes());
        for t in e.tags.iter() {
            field(t.as_bytes());
        }
        match e.expires_at {
            Some(at) => field(&at.as_millis().to_le_bytes()),
            None => field(&[]),
        }
        self.checksum = crc;
        self.records += 1;
    }
}

/// One space in a [`MigrateReport`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SpaceReport {
    /// The space.
    pub space: Space,
    /// What was copied from the source.
    pub source: SpaceDigest,
    /// What the target holds after the copy.
    pub target: SpaceDigest,
}

impl SpaceReport {
    /// Whether the target holds exactly what was copied.
    pub fn matches(&self) -> bool {
        self.source == self.target
    }
}

/// One line: the space, both sides' counts and checksums, and `ok` or `MISMATCH`.
///
/// ```
/// use nadb::migrate::{SpaceDigest, SpaceReport};
/// let d = SpaceDigest { records: 2, checksum: 0xabc };
/// let r = SpaceReport { space: nadb::Space::default(), source: d, target: d };
/// assert!(r.to_string().ends_with("ok"));
/// ```
impl std::fmt::Display for SpaceReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:<30} source {:>10} records crc32c {:08x}   target {:>10} records crc32c {:08x}   {}",
            self.space.to_string(),
            self.source.records,
            self.source.checksum,
            self.target.records,
            self.target.checksum,
            if self.matches() { "ok" } else { "MISMATCH" }
        )
    }
}

/// What [`migrate`] copied and found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MigrateReport {
    /// Every space of the source or the target, sorted.
    pub spaces: Vec<SpaceReport>,
    /// Records written to the target.
    pub copied: u64,
    /// Records that expired between being read and being written, so were not written.
    pub expired: u64,
}

impl MigrateReport {
    /// Whether every space of the target matches the source in count and checksum.
    pub fn verified(&self) -> bool {
        self.spaces.iter().all(SpaceReport::matches)
    }
}

/// The digest of one space of `store` as it is now.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let a = nadb::open("memory://").await?;
/// let b = nadb::open("memory://").await?;
/// a.set("k", "v").await?;
/// b.set("k", "v").await?;
/// let space = nadb::Space::default();
/// assert_eq!(nadb::migrate::digest(&a, &space).await?, nadb::migrate::digest(&b, &space).await?);
/// b.set("k", "w").await?;
/// assert_ne!(nadb::migrate::digest(&a, &space).await?, nadb::migrate::digest(&b, &space).await?);
/// # Ok::<(), nadb::Error>(()) }).unwrap();
/// ```
pub async fn digest(store: &Store, space: &Space) -> Result<SpaceDigest> {
    store.flush().await?;
    let mut d = SpaceDigest::default();
    let mut reader = SpaceReader::new(store, space.clone());
    while let Some(chunk) = reader.next_chunk().await? {
        chunk.iter().for_each(|e| d.add(e));
    }
    Ok(d)
}

/// Copies every space of `from` into `to` and verifies the copy; see the
/// [module docs](self). A mismatch is reported in the result ([`MigrateReport::verified`]),
/// not as an error.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use nadb::SetOptions;
/// let from = nadb::open("memory://").await?;
/// from.set_with("user:1", "ada", &SetOptions::new().tags(["user"])).await?;
/// from.with_space(nadb::Space::new("app", "cache")?).await?.set("page", "<html>").await?;
/// let to = nadb::open("memory://").await?;
/// let report = nadb::migrate::migrate(&from, &to, &()).await?;
/// assert!(report.verified());
/// assert_eq!((report.spaces.len(), report.copied), (2, 2));
/// assert_eq!(to.get("user:1").await?.as_deref(), Some(&b"ada"[..]));
/// # Ok::<(), nadb::Error>(()) }).unwrap();
/// ```
pub async fn migrate(from: &Store, to: &Store, progress: &dyn Progress) -> Result<MigrateReport> {
    let spaces = walk::spaces(from).await?;
    let mut total = 0;
    for space in &spaces {
        total += walk::count(from, space).await?;
    }
    progress.begin("copying", Some(total));
    let mut report = MigrateReport::default();
    let mut sources: BTreeMap<Space, SpaceDigest> = BTreeMap::new();
    for space in spaces {
        let target = to.with_space(space.clone()).await?;
        let mut d = SpaceDigest::default();
        let mut reader = SpaceReader::new(from, space.clone());
        while let Some(chunk) = reader.next_chunk().await? {
            chunk.iter().for_each(|e| d.add(e));
            let expired = crate::load::write_batch(&target, &chunk).await?;
            report.copied += chunk.len() as u64 - expired;
            report.expired += expired;
            progress.advance(chunk.len() as u64);
        }
        sources.insert(space, d);
    }
    progress.finish();

    let mut all: Vec<Space> = walk::spaces(to).await?;
    all.extend(sources.keys().cloned());
    all.sort();
    all.dedup();
    progress.begin("verifying", Some(all.len() as u64));
    for space in all {
        let target = digest(to, &space).await?;
        let source = sources.get(&space).copied().unwrap_or_default();
        report.spaces.push(SpaceReport {
            space,
            source,
            target,
        });
        progress.advance(1);
    }
    progress.finish();
    Ok(report)
}
