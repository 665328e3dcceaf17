//! Checking a whole store: every record of every space reads and decodes, and the metadata
//! index agrees with the records.
//!
//! For each space the backend lists, [`verify`]:
//!
//! 1. scans every key with its metadata (expired records too) and reads every record, so each
//!    stored frame passes the backend's own checksum where it has one (the fs backend's
//!    CRC32C); a read that fails is a problem naming the file and offset when the backend
//!    gives them;
//! 2. checks that each record's metadata is the one the scan listed, that its stored length
//!    is right, and that its value decodes (zstd, lengths);
//! 3. asks the index, through the store, for every tag's count ([`Store::list_tags`]), every
//!    tag's keys ([`Store::query_by_tags`]) and the live key count ([`Store::len`]), and
//!    compares each answer with what the records say.
//!
//! Records that expire while the check runs are left out of the comparisons. Run it on a
//! store nobody is writing to: a concurrent write can show up as a problem.

use std::collections::{BTreeMap, BTreeSet};

use nadb_core::codec::decode_value;
use nadb_core::{BackendExt, Clock, Meta, SystemClock, TagMode, Timestamp};
use serde::Serialize;

use crate::progress::Progress;
use crate::{Error, Result, Space, Store};

/// Records read per round.
const CHUNK: usize = 1000;

/// One thing found wrong. Never holds a stored value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The space it is in, when it concerns one.
    pub space: Option<Space>,
    /// The key it concerns, when it concerns one.
    pub key: Option<String>,
    /// The file, table or record where the damage is, when the backend names one.
    pub location: Option<String>,
    /// Byte offset of the damage in `location`, when known.
    pub offset: Option<u64>,
    /// What is wrong.
    pub reason: String,
}

impl Problem {
    /// A problem from an error: a [`Error::Corrupt`] gives its location, offset and reason;
    /// any other error its message.
    ///
    /// ```
    /// let e = nadb::Error::Corrupt { location: "seg-1.log".into(), offset: Some(7), reason: "bad crc".into() };
    /// let p = nadb::verify::Problem::from_error(None, None, &e);
    /// assert_eq!((p.location.as_deref(), p.offset), (Some("seg-1.log"), Some(7)));
    /// ```
    pub fn from_error(space: Option<Space>, key: Option<String>, err: &Error) -> Problem {
        match err {
            Error::Corrupt {
                location,
                offset,
                reason,
            } => Problem {
                space,
                key,
                location: Some(location.clone()),
                offset: *offset,
                reason: format!("corrupt data: {reason}"),
            },
            other => Problem {
                space,
                key,
                location: None,
                offset: None,
                reason: other.to_string(),
            },
        }
    }

    fn new(space: &Space, key: Option<&str>, reason: impl Into<String>) -> Problem {
        Problem {
            space: Some(space.clone()),
            key: key.map(str::to_string),
            location: None,
            offset: None,
            reason: reason.into(),
        }
    }
}

/// What [`verify`] checked and found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Spaces checked.
    pub spaces: u64,
    /// Records read (expired ones included).
    pub records: u64,
    /// Everything found wrong; empty when the store is sound.
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    /// Whether nothing was found wrong.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks every record and the index of every space of `store`; see the
/// [module docs](self). What is found wrong is in the report; the error is only for a store
/// that cannot be flushed first.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use nadb::SetOptions;
/// let store = nadb::open("memory://").await?;
/// store.set_with("a", "1", &SetOptions::new().tags(["t"])).await?;
/// let report = nadb::verify::verify(&store, &()).await?;
/// assert!(report.is_ok(), "{:?}", report.problems);
/// assert_eq!((report.spaces, report.records), (1, 1));
/// # Ok::<(), nadb::Error>(()) }).unwrap();
/// ```
pub async fn verify(store: &Store, progress: &dyn Progress) -> Result<VerifyReport> {
    store.flush().await?;
    let mut report = VerifyReport::default();
    let mut spaces = match store.backend().spaces().await {
        Ok(s) => s,
        Err(e) => {
            report.problems.push(Problem::from_error(None, None, &e));
            return Ok(report);
        }
    };
    spaces.sort();
    spaces.dedup();
    let mut total = 0;
    for space in &spaces {
        if let Ok(handle) = store.with_space(space.clone()).await {
            total += handle.len().await.unwrap_or(0);
        }
    }
    progress.begin("verifying", Some(total));
    for space in spaces {
        report.spaces += 1;
        if let Err(e) = check_space(store, &space, &mut report, progress).await {
            report
                .problems
                .push(Problem::from_error(Some(space), None, &e));
        }
    }
    progress.finish();
    Ok(report)
}

/// What the records of a space say the index should answer.
#[derive(Default)]
struct Expected {
    /// Live keys.
    live: u64,
    /// Live keys per tag.
    tags: BTreeMap<String, BTreeSet<String>>,
    /// Keys with an expiry, and their tags: decided once the end of the check is known.
    expiring: BTreeMap<String, (Timestamp, Vec<String>)>,
}

/// Checks one space; an error is a failure to read the space at all.
async fn check_space(
    store: &Store,
    space: &Space,
    report: &mut VerifyReport,
    progress: &dyn Progress,
) -> Result<()> {
    let backend = store.backend();
    let started = SystemClock.now();
    let listed = backend.scan_all(space, "").await?;
    let mut expected = Expected::default();
    for chunk in listed.chunks(CHUNK) {
        let keys: Vec<String> = chunk.iter().map(|(k, _)| k.clone()).collect();
        // One damaged record fails the whole chunk: read its keys one by one to find which.
        let records = match backend.get_many(space, &keys).await {
            Ok(records) => records.into_iter().map(Ok).collect::<Vec<_>>(),
            Err(_) => {
                let mut one_by_one = Vec::with_capacity(keys.len());
                for k in &keys {
                    one_by_one.push(backend.get(space, k).await);
                }
                one_by_one
            }
        };
        for ((key, meta), record) in chunk.iter().zip(records) {
            report.records += 1;
            let record = match record {
                Ok(Some(r)) => r,
                // Unreadable records count as the scan lists them, so the index checks below
                // report only the index's own disagreements.
                Ok(None) => {
                    report.problems.push(Problem::new(
                        space,
                        Some(key),
                        "listed by scan but has no record",
                    ));
                    expected.add(key, meta, started);
                    continue;
                }
                Err(e) => {
                    report.problems.push(Problem::from_error(
                        Some(space.clone()),
                        Some(key.clone()),
                        &e,
                    ));
                    expected.add(key, meta, started);
                    continue;
                }
            };
            if let Some(reason) = meta_mismatch(meta, &record.meta) {
                report.problems.push(Problem::new(space, Some(key), reason));
            }
            if record.meta.stored_len != record.value.len() as u64 {
                report.problems.push(Problem::new(
                    space,
                    Some(key),
                    format!(
                        "stored value is {} bytes, its metadata says {}",
                        record.value.len(),
                        record.meta.stored_len
                    ),
                ));
            }
            let value_len = record.meta.value_len;
            if let Err(e) = decode_value(record.meta.codec, record.value, value_len) {
                report.problems.push(Problem::from_error(
                    Some(space.clone()),
                    Some(key.clone()),
                    &e,
                ));
            }
            expected.add(key, &record.meta, started);
        }
        progress.advance(chunk.len() as u64);
    }
    check_index(store, space, expected, report).await
}

/// Why the metadata a scan listed differs from the record's, if it does.
fn meta_mismatch(listed: &Meta, stored: &Meta) -> Option<&'static str> {
    if listed.version != stored.version {
        Some("scan lists another version than the record has")
    } else if listed.tags != stored.tags {
        Some("scan lists other tags than the record has")
    } else if listed.expires_at != stored.expires_at {
        Some("scan lists another expiry than the record has")
    } else {
        None
    }
}

impl Expected {
    fn add(&mut self, key: &str, meta: &Meta, started: Timestamp) {
        if meta.is_expired(started) {
            return;
        }
        if let Some(at) = meta.expires_at {
            self.expiring
                .insert(key.to_string(), (at, meta.tags.iter().cloned().collect()));
            return;
        }
        self.live += 1;
        for t in meta.tags.iter() {
            self.tags
                .entry(t.clone())
                .or_default()
                .insert(key.to_string());
        }
    }
}

/// Compares the index's answers for `space` with `expected`.
async fn check_index(
    store: &Store,
    space: &Space,
    mut expected: Expected,
    report: &mut VerifyReport,
) -> Result<()> {
    let handle = store.with_space(space.clone()).await?;
    let counts = handle.list_tags().await?;
    let len = handle.len().await?;
    let mut indexed: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let tags: BTreeSet<String> = counts
        .keys()
        .chain(expected.tags.keys())
        .chain(expected.expiring.values().flat_map(|(_, t)| t))
        .cloned()
        .collect();
    for tag in &tags {
        let keys = indexed.entry(tag.clone()).or_default();
        let mut cursor: Option<String> = None;
        loop {
            let page = handle
                .query_by_tags(&[tag.as_str()], TagMode::All, cursor.as_deref(), CHUNK)
                .await?;
            keys.extend(page.items);
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
    }
    let finished = SystemClock.now();
    // A key still live after the index was read was live throughout; one that expired in
    // between may or may not be in the index's answers, so it is left out of them.
    let mut uncertain: BTreeSet<String> = BTreeSet::new();
    for (key, (at, key_tags)) in std::mem::take(&mut expected.expiring) {
        if at > finished {
            expected.live += 1;
            for t in key_tags {
                expected.tags.entry(t).or_default().insert(key.clone());
            }
        } else {
            uncertain.insert(key);
        }
    }
    let slack = uncertain.len() as u64;
    if len < expected.live || len > expected.live + slack {
        report.problems.push(Problem::new(
            space,
            None,
            format!(
                "index counts {len} live keys, the records say {}",
                expected.live
            ),
        ));
    }
    for tag in &tags {
        let want = expected.tags.get(tag).cloned().unwrap_or_default();
        let got: BTreeSet<String> = indexed
            .get(tag)
            .map(|keys| keys.difference(&uncertain).cloned().collect())
            .unwrap_or_default();
        for key in want.difference(&got) {
            report.problems.push(Problem::new(
                space,
                Some(key),
                format!("record has tag {tag:?} but a query for it does not return the key"),
            ));
        }
        for key in got.difference(&want) {
            report.problems.push(Problem::new(
                space,
                Some(key),
                format!("a query for tag {tag:?} returns the key but its record lacks the tag"),
            ));
        }
        let count = counts.get(tag).copied().unwrap_or(0);
        let wanted = want.len() as u64;
        if count < wanted || count > wanted + slack {
            report.problems.push(Problem::new(
                space,
                None,
                format!("index counts {count} keys with tag {tag:?}, the records say {wanted}"),
            ));
        }
    }
    Ok(())
}
