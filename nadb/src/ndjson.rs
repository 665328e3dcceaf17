//! Export and import of a whole store as NDJSON: one JSON object per line, one line per record.
//!
//! ```text
//! {"db":"default","namespace":"default","key":"greeting","value":"hello","tags":["t"],"expires_at":null}
//! {"db":"app","namespace":"blobs","key":"img","value_b64":"iVBORw0K","tags":[],"expires_at":1767225600000}
//! ```
//!
//! - `value` holds a value that is valid UTF-8, as text; any other value is in `value_b64`
//!   (standard base64 with padding). A line has exactly one of them.
//! - `expires_at` is milliseconds since the Unix epoch, or `null` for a record that never
//!   expires; `tags` is the record's sorted tag list.
//! - [`export`] writes every space the backend lists, spaces sorted, and in each space every
//!   live record in key order, so the same data always exports to the same bytes, and export →
//!   import → export reproduces them exactly. Expired records are not exported.
//!
//! [`import`] also reads lines in the older `{"key":…,"value":…}` form (a ptvp35 database
//! file): without `db` and `namespace` a record goes to the space of the store handle passed
//! in; a `key` or `value` that is not a JSON string is stored as its compact JSON text (so
//! `{"key":1,"value":{"a":[1]}}` stores `{"a":[1]}` under the key `1`, readable with
//! `get_json`); a key repeated in the file keeps its last value. `tags` and `expires_at` are
//! optional; other fields are refused.
//!
//! ## What an import does when something is wrong
//!
//! [`import`] reads its input twice. The first pass parses and validates every line (JSON,
//! space, key, tags, expiry, value size) and stops at the first bad line with
//! [`NdjsonError::Line`] naming it: **a file with a bad line writes nothing**. The second pass
//! writes the records in file order, in batches of at most 1000 records or 16 MiB, each one
//! transaction on one space, flushed before the next starts. If the store fails during that
//! pass, the error is [`NdjsonError::Interrupted`], which says through which line the input is
//! persisted; nothing after it is. Re-running the same import is idempotent: it writes the same
//! values again and ends in the same state. An import adds and overwrites records; it never
//! deletes keys absent from the file. Records whose `expires_at` has passed are skipped and
//! counted.
//!
//! A store built with a lower value-size or key-length limit than the defaults can still
//! refuse a record in the second pass; that is reported as an interruption like any other.

use std::collections::HashMap;
use std::io::{BufRead, BufWriter, Seek, SeekFrom, Write};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::load;
use crate::progress::Progress;
use crate::walk::{self, CHUNK_BYTES, CHUNK_RECORDS, Entry, SpaceReader};
use crate::{Error, Space, Store, Tags, Timestamp};

/// The latest `expires_at` a store accepts (what SQLite's signed integer holds).
const MAX_EXPIRES_AT: u64 = i64::MAX as u64;

/// What went wrong in an export or import. Messages never contain stored values.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NdjsonError {
    /// A line of the input is not a valid record; nothing was written.
    #[error("line {line}: {reason}")]
    Line {
        /// The line's number, counting from 1.
        line: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// Reading the input or writing the output failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The store failed before anything was written (or while exporting).
    #[error(transparent)]
    Store(#[from] Error),
    /// The store failed while an import was writing. Lines `1..=persisted_lines` are
    /// persisted, nothing after them; running the import again is safe.
    #[error(
        "import interrupted: lines 1 to {persisted_lines} are persisted, the rest is not: {source}"
    )]
    Interrupted {
        /// Every line up to and including this one is persisted (0: none).
        persisted_lines: u64,
        /// The store's error.
        #[source]
        source: Error,
    },
}

/// What [`export`] wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ExportSummary {
    /// Spaces with at least one exported record.
    pub spaces: u64,
    /// Records (lines) written.
    pub records: u64,
}

/// What [`import`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ImportSummary {
    /// Lines read, blank ones included.
    pub lines: u64,
    /// Records written.
    pub records: u64,
    /// Records skipped because their `expires_at` had passed.
    pub expired: u64,
}

#[derive(Serialize)]
struct OutLine<'a> {
    db: &'a str,
    namespace: &'a str,
    key: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value_b64: Option<String>,
    tags: &'a [String],
    expires_at: Option<u64>,
}

/// Writes every live record of every space of `store` to `out` as NDJSON (see the
/// [module docs](self) for the format and order). Flushes the store first. Writing to `out`
/// blocks the calling task; pass a file or buffer, not a slow pipe, from a busy runtime.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let store = nadb::open("memory://").await?;
/// store.set("greeting", "hello").await?;
/// let mut out = Vec::new();
/// let summary = nadb::ndjson::export(&store, &mut out, &()).await?;
/// assert_eq!(summary.records, 1);
/// assert_eq!(
///     String::from_utf8(out).unwrap(),
///     "{\"db\":\"default\",\"namespace\":\"default\",\"key\":\"greeting\",\"value\":\"hello\",\"tags\":[],\"expires_at\":null}\n"
/// );
/// # Ok::<(), nadb::ndjson::NdjsonError>(()) }).unwrap();
/// ```
pub async fn export<W: Write>(
    store: &Store,
    out: W,
    progress: &dyn Progress,
) -> Result<ExportSummary, NdjsonError> {
    let mut out = BufWriter::new(out);
    let spaces = walk::spaces(store).await?;
    let mut total = 0;
    for space in &spaces {
        total += walk::count(store, space).await?;
    }
    progress.begin("exporting", Some(total));
    let mut summary = ExportSummary::default();
    for space in spaces {
        let mut reader = SpaceReader::new(store, space.clone());
        let mut wrote = false;
        while let Some(page) = reader.next_chunk().await? {
            for r in &page {
                let text = std::str::from_utf8(&r.value).ok();
                let line = OutLine {
                    db: space.db(),
                    namespace: space.namespace(),
                    key: &r.key,
                    value: text,
                    value_b64: text.is_none().then(|| BASE64.encode(&r.value)),
                    tags: &r.tags,
                    expires_at: r.expires_at.map(Timestamp::as_millis),
                };
                serde_json::to_writer(&mut out, &line).map_err(std::io::Error::from)?;
                out.write_all(b"\n")?;
            }
            summary.records += page.len() as u64;
            wrote |= !page.is_empty();
            progress.advance(page.len() as u64);
        }
        summary.spaces += u64::from(wrote);
    }
    out.flush()?;
    progress.finish();
    Ok(summary)
}

/// Checks every line of `input` as [`import`] would before writing, without writing anything;
/// returns how many records it holds. Records without `db`/`namespace` are judged for
/// `store`'s space.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use nadb::ndjson::{validate, NdjsonError};
/// let store = nadb::open("memory://").await?;
/// assert_eq!(validate(&store, &b"{\"key\":\"a\",\"value\":1}\n"[..])?, 1);
/// let bad = validate(&store, &b"{\"key\":\"a\",\"value\":1}\n{\"key\":\"\",\"value\":2}\n"[..]);
/// assert!(matches!(bad, Err(NdjsonError::Line { line: 2, .. })));
/// # Ok::<(), NdjsonError>(()) }).unwrap();
/// ```
pub fn validate<R: BufRead>(store: &Store, input: R) -> Result<u64, NdjsonError> {
    let parser = Parser::new(store);
    let mut records = 0;
    for_each_line(input, |_, line| {
        parser.parse(line)?;
        records += 1;
        Ok(())
    })?;
    Ok(records)
}

/// Imports NDJSON records (see the [module docs](self) for the format, the older
/// `{"key":…,"value":…}` form, and what happens on a bad line or a failed write). Records
/// without `db`/`namespace` go to `store`'s space. The input is read twice, so it must be
/// seekable: a file, or a `Cursor` over bytes.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use std::io::Cursor;
/// let store = nadb::open("memory://").await?;
/// let input = "{\"key\":\"a\",\"value\":\"1\",\"tags\":[\"t\"]}\n{\"key\":[1,2],\"value\":{\"x\":true}}\n";
/// let summary = nadb::ndjson::import(&store, Cursor::new(input), &()).await?;
/// assert_eq!(summary.records, 2);
/// assert_eq!(store.get("[1,2]").await?.as_deref(), Some(&b"{\"x\":true}"[..]));
///
/// // A bad line writes nothing, and the error names it.
/// let bad = nadb::ndjson::import(&store, Cursor::new("{\"key\":\"b\",\"value\":\"2\"}\nnot json\n"), &()).await;
/// assert!(matches!(bad, Err(nadb::ndjson::NdjsonError::Line { line: 2, .. })));
/// assert_eq!(store.get("b").await?, None);
/// # Ok::<(), nadb::ndjson::NdjsonError>(()) }).unwrap();
/// ```
pub async fn import<R: BufRead + Seek>(
    store: &Store,
    mut input: R,
    progress: &dyn Progress,
) -> Result<ImportSummary, NdjsonError> {
    progress.begin("validating", None);
    let parser = Parser::new(store);
    let mut total = 0;
    for_each_line(&mut input, |_, line| {
        parser.parse(line)?;
        total += 1;
        progress.advance(1);
        Ok(())
    })?;
    progress.finish();
    input.seek(SeekFrom::Start(0))?;

    progress.begin("importing", Some(total));
    let mut w = Writer {
        store,
        handles: HashMap::new(),
        space: store.space().clone(),
        batch: Vec::new(),
        batch_bytes: 0,
        batch_last_line: 0,
        persisted_lines: 0,
        summary: ImportSummary::default(),
        progress,
    };
    // Lines are parsed again here; the first pass kept nothing, so memory stays bounded by a
    // batch however large the input.
    let mut line_no = 0;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        if input.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        line_no += 1;
        let Some(text) = line_text(line_no, &buf)? else {
            w.summary.lines = line_no;
            if w.batch.is_empty() {
                w.persisted_lines = line_no;
            }
            continue;
        };
        let (space, record) = parser.parse(text).map_err(|reason| NdjsonError::Line {
            line: line_no,
            reason: format!("{reason} (the input changed while it was imported)"),
        })?;
        if space != w.space
            || w.batch.len() >= CHUNK_RECORDS
            || w.batch_bytes + record.value.len() as u64 > CHUNK_BYTES
        {
            w.write().await?;
            w.space = space;
        }
        w.batch_bytes += record.value.len() as u64;
        w.batch.push(record);
        w.batch_last_line = line_no;
        w.summary.lines = line_no;
    }
    w.write().await?;
    progress.finish();
    Ok(w.summary)
}

/// Calls `f` with the number and text of every non-blank line.
fn for_each_line<R: BufRead>(
    mut input: R,
    mut f: impl FnMut(u64, &str) -> Result<(), String>,
) -> Result<(), NdjsonError> {
    let mut line_no = 0;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        if input.read_until(b'\n', &mut buf)? == 0 {
            return Ok(());
        }
        line_no += 1;
        if let Some(text) = line_text(line_no, &buf)? {
            f(line_no, text).map_err(|reason| NdjsonError::Line {
                line: line_no,
                reason,
            })?;
        }
    }
}

/// A line without its end-of-line bytes; `None` when it is blank.
fn line_text(line_no: u64, buf: &[u8]) -> Result<Option<&str>, NdjsonError> {
    let text = std::str::from_utf8(buf).map_err(|e| NdjsonError::Line {
        line: line_no,
        reason: format!("not UTF-8 (at byte {})", e.valid_up_to()),
    })?;
    let text = text.trim_end_matches(['\n', '\r']);
    Ok((!text.trim().is_empty()).then_some(text))
}

/// Batches records per space and writes them.
struct Writer<'a> {
    store: &'a Store,
    handles: HashMap<Space, Store>,
    space: Space,
    batch: Vec<Entry>,
    batch_bytes: u64,
    batch_last_line: u64,
    persisted_lines: u64,
    summary: ImportSummary,
    progress: &'a dyn Progress,
}

impl Writer<'_> {
    async fn write(&mut self) -> Result<(), NdjsonError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let interrupted = |source| NdjsonError::Interrupted {
            persisted_lines: self.persisted_lines,
            source,
        };
        let handle = match self.handles.get(&self.space) {
            Some(h) => h.clone(),
            None => {
                let h = self
                    .store
                    .with_space(self.space.clone())
                    .await
                    .map_err(interrupted)?;
                self.handles.insert(self.space.clone(), h.clone());
                h
            }
        };
        let expired = load::write_batch(&handle, &self.batch)
            .await
            .map_err(interrupted)?;
        let n = self.batch.len() as u64;
        self.summary.records += n - expired;
        self.summary.expired += expired;
        self.persisted_lines = self.batch_last_line;
        self.progress.advance(n);
        self.batch.clear();
        self.batch_bytes = 0;
        Ok(())
    }
}

/// Turns lines into records, judged by one store's rules.
struct Parser<'a> {
    store: &'a Store,
    max_value_size: u64,
}

impl<'a> Parser<'a> {
    fn new(store: &'a Store) -> Parser<'a> {
        let backend_limit = store.backend_info().capabilities.max_value_size;
        let default = nadb_core::store::DEFAULT_MAX_VALUE_SIZE;
        Parser {
            store,
            max_value_size: backend_limit.map_or(default, |b| b.min(default)),
        }
    }

    /// The record on a line and its space, or why the line is not one. Reasons never quote
    /// the line's content.
    fn parse(&self, text: &str) -> Result<(Space, Entry), String> {
        let object = match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(o)) => o,
            Ok(_) => return Err("not a JSON object".into()),
            Err(e) => return Err(format!("not valid JSON (column {})", e.column())),
        };
        if let Some(unknown) = object.keys().find(|k| {
            !matches!(
                k.as_str(),
                "db" | "namespace" | "key" | "value" | "value_b64" | "tags" | "expires_at"
            )
        }) {
            return Err(format!(
                "unknown field {:?}",
                unknown.chars().take(64).collect::<String>()
            ));
        }
        let space = self.space(&object)?;
        let key = match object.get("key") {
            None => return Err("missing field \"key\"".into()),
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        };
        // The store's own key rule (its length limit is configurable): a transaction checks
        // a key without touching the backend.
        self.store
            .begin()
            .set(&key, Bytes::new())
            .map_err(|e| e.to_string())?;
        let value = match (object.get("value"), object.get("value_b64")) {
            (Some(_), Some(_)) => return Err("has both \"value\" and \"value_b64\"".into()),
            (None, None) => return Err("missing field \"value\" (or \"value_b64\")".into()),
            (Some(Value::String(s)), None) => Bytes::from(s.clone().into_bytes()),
            (Some(other), None) => Bytes::from(other.to_string().into_bytes()),
            (None, Some(Value::String(s))) => BASE64
                .decode(s)
                .map(Bytes::from)
                .map_err(|_| "\"value_b64\" is not valid base64".to_string())?,
            (None, Some(_)) => return Err("\"value_b64\" is not a string".into()),
        };
        if value.len() as u64 > self.max_value_size {
            return Err(Error::ValueTooLarge {
                size: value.len() as u64,
                limit: self.max_value_size,
            }
            .to_string());
        }
        let tags = match object.get("tags") {
            None | Some(Value::Null) => Tags::empty(),
            Some(Value::Array(items)) => {
                let mut tags = Vec::with_capacity(items.len());
                for t in items {
                    match t {
                        Value::String(s) => tags.push(s.clone()),
                        _ => return Err("\"tags\" holds something other than strings".into()),
                    }
                }
                Tags::new(tags).map_err(|e| e.to_string())?
            }
            Some(_) => return Err("\"tags\" is not a list of strings".into()),
        };
        let expires_at = match object.get("expires_at") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => match n.as_u64() {
                Some(ms) if ms <= MAX_EXPIRES_AT => Some(Timestamp::from_millis(ms)),
                _ => {
                    return Err(format!(
                        "\"expires_at\" must be milliseconds since the Unix epoch, 0 to {MAX_EXPIRES_AT}"
                    ));
                }
            },
            Some(_) => return Err("\"expires_at\" is not a number".into()),
        };
        Ok((
            space,
            Entry {
                key,
                value,
                tags,
                expires_at,
            },
        ))
    }

    fn space(&self, object: &Map<String, Value>) -> Result<Space, String> {
        match (object.get("db"), object.get("namespace")) {
            (None, None) => Ok(self.store.space().clone()),
            (Some(Value::String(db)), Some(Value::String(ns))) => {
                Space::new(db, ns).map_err(|e| e.to_string())
            }
            (Some(_), Some(_)) => Err("\"db\" and \"namespace\" must be strings".into()),
            _ => Err("\"db\" and \"namespace\" come together or not at all".into()),
        }
    }
}
