//! The metadata queries shared by the backend's native index and [`SqliteIndex`]
//! (`crate::SqliteIndex`): the same SQL over two sets of tables.

use std::collections::BTreeMap;

use nadb_core::{ExpiredKey, IndexedKey, Space, SpaceCount, TagMode, Timestamp};
use rusqlite::types::Value;
use rusqlite::{CachedStatement, Connection, params};

/// Where a set of tables keeps records and tags. The tags table repeats each record's
/// `expires_at` and `version`, so tag questions need no join.
pub(crate) struct Tables {
    pub(crate) records: &'static str,
    pub(crate) tags: &'static str,
    /// SQL for a record's stored size.
    pub(crate) size: &'static str,
    /// The write statements, spelled out so the per-op path formats nothing.
    delete_tags: &'static str,
    insert_tag: &'static str,
    delete_record: &'static str,
    any_tag: &'static str,
}

/// The backend's own tables.
pub(crate) const NATIVE: Tables = Tables {
    records: "nadb_records",
    tags: "nadb_tags",
    size: "length(value)",
    delete_tags: "DELETE FROM nadb_tags WHERE db = ?1 AND ns = ?2 AND key = ?3",
    insert_tag: "INSERT INTO nadb_tags (db, ns, tag, key, expires_at, version) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    delete_record: "DELETE FROM nadb_records WHERE db = ?1 AND ns = ?2 AND key = ?3",
    any_tag: "SELECT EXISTS (SELECT 1 FROM nadb_tags WHERE db = ?1 AND ns = ?2)",
};

/// A [`SqliteIndex`](crate::SqliteIndex)'s tables.
pub(crate) const INDEX: Tables = Tables {
    records: "nadb_index",
    tags: "nadb_index_tags",
    size: "stored_len",
    delete_tags: "DELETE FROM nadb_index_tags WHERE db = ?1 AND ns = ?2 AND key = ?3",
    insert_tag: "INSERT INTO nadb_index_tags (db, ns, tag, key, expires_at, version) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    delete_record: "DELETE FROM nadb_index WHERE db = ?1 AND ns = ?2 AND key = ?3",
    any_tag: "SELECT EXISTS (SELECT 1 FROM nadb_index_tags WHERE db = ?1 AND ns = ?2)",
};

/// A time as SQLite stores it: milliseconds in an `INTEGER` (a signed 64-bit number), so a
/// time past its largest (some 292 million years from now) is stored as that largest, keeping
/// SQL comparisons with it right.
pub(crate) fn millis(t: Timestamp) -> i64 {
    i64::try_from(t.as_millis()).unwrap_or(i64::MAX)
}

fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Tags a query binds one parameter each; a longer list is bound as one JSON array.
const BOUND_TAGS: usize = 500;

/// Live keys of `space` with all or any of `tags` (sorted, distinct), in key order.
#[allow(clippy::too_many_arguments)]
pub(crate) fn tag_query(
    c: &Connection,
    t: &Tables,
    space: &Space,
    tags: &[String],
    mode: TagMode,
    now: Timestamp,
    after: &str,
    n: usize,
) -> rusqlite::Result<Vec<IndexedKey>> {
    // One tag: a range of the tags table's primary key, already in key order.
    let grouping = match (tags.len(), mode) {
        (1, _) => String::new(),
        (k, TagMode::All) => format!("GROUP BY key HAVING count(*) = {k}"),
        (_, TagMode::Any) => "GROUP BY key".to_string(),
    };
    // SQLite binds at most 32,766 parameters to a statement: a long list of tags travels as
    // one JSON array.
    let one_array = tags.len() > BOUND_TAGS;
    let list = if one_array {
        "SELECT value FROM json_each(?)".to_string()
    } else {
        vec!["?"; tags.len()].join(", ")
    };
    let sql = format!(
        "SELECT key, version FROM {} WHERE db = ? AND ns = ? AND key > ? \
         AND (expires_at IS NULL OR expires_at > ?) AND tag IN ({list}) {grouping} \
         ORDER BY key LIMIT ?",
        t.tags,
    );
    let mut args: Vec<Value> = vec![
        space.db().to_string().into(),
        space.namespace().to_string().into(),
        after.to_string().into(),
        millis(now).into(),
    ];
    if one_array {
        let json = serde_json::to_string(tags)
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        args.push(json.into());
    } else {
        args.extend(tags.iter().map(|tag| Value::from(tag.clone())));
    }
    args.push(limit(n).into());
    let mut stmt = c.prepare_cached(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(args), |r| {
        Ok(IndexedKey {
            key: r.get(0)?,
            version: r.get::<_, i64>(1)? as u64,
        })
    })?;
    rows.collect()
}

/// Every tag of `space` with its number of live keys.
pub(crate) fn tag_counts(
    c: &Connection,
    t: &Tables,
    space: &Space,
    now: Timestamp,
) -> rusqlite::Result<BTreeMap<String, u64>> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT tag, count(*) FROM {} WHERE db = ?1 AND ns = ?2 \
         AND (expires_at IS NULL OR expires_at > ?3) GROUP BY tag",
        t.tags
    ))?;
    let rows = stmt.query_map(params![space.db(), space.namespace(), millis(now)], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
    })?;
    rows.collect()
}

/// Up to `n` records, in any space, expired at `now`.
pub(crate) fn expired(
    c: &Connection,
    t: &Tables,
    now: Timestamp,
    n: usize,
) -> rusqlite::Result<Vec<ExpiredKey>> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT db, ns, key, version FROM {} \
         WHERE expires_at IS NOT NULL AND expires_at <= ?1 LIMIT ?2",
        t.records
    ))?;
    let rows = stmt.query_map(params![millis(now), limit(n)], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, i64>(3)? as u64,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (db, ns, key, version) = row?;
        // Rows not written by nadb (invalid space names) are not ours to sweep.
        if let Ok(space) = Space::new(&db, &ns) {
            out.push(ExpiredKey {
                space,
                key,
                version,
            });
        }
    }
    Ok(out)
}

/// Live keys and stored bytes of `space`.
pub(crate) fn count(
    c: &Connection,
    t: &Tables,
    space: &Space,
    now: Timestamp,
) -> rusqlite::Result<SpaceCount> {
    c.prepare_cached(&format!(
        "SELECT count(*), coalesce(sum({}), 0) FROM {} \
         WHERE db = ?1 AND ns = ?2 AND (expires_at IS NULL OR expires_at > ?3)",
        t.size, t.records
    ))?
    .query_row(params![space.db(), space.namespace(), millis(now)], |r| {
        Ok(SpaceCount {
            keys: r.get::<_, i64>(0)? as u64,
            stored_bytes: r.get::<_, i64>(1)? as u64,
        })
    })
}

/// `tags` sorted and without duplicates.
pub(crate) fn distinct(tags: &[String]) -> Vec<String> {
    let mut v = tags.to_vec();
    v.sort();
    v.dedup();
    v
}

/// The statements that write the rows (record, tags) of keys of one space, prepared once per
/// batch rather than looked up in the statement cache for every op.
pub(crate) struct KeyWriter<'c> {
    space: &'c Space,
    /// The table's record upsert, given by the caller (the two record tables differ).
    pub(crate) upsert: CachedStatement<'c>,
    delete_tags: CachedStatement<'c>,
    insert_tag: CachedStatement<'c>,
    delete_record: CachedStatement<'c>,
    /// Whether the space may hold tag rows. While it holds none, a write has no tag rows to
    /// delete, and skipping that lookup is most of the cost of an untagged put.
    tagged: bool,
}

impl<'c> KeyWriter<'c> {
    /// Prepares `t`'s write statements on `c`, with `upsert` as the record write, for keys
    /// of `space` (inside the transaction that will write them).
    pub(crate) fn new(
        c: &'c Connection,
        t: &Tables,
        upsert: &str,
        space: &'c Space,
    ) -> rusqlite::Result<Self> {
        let tagged = c
            .prepare_cached(t.any_tag)?
            .query_row(params![space.db(), space.namespace()], |r| r.get(0))?;
        Ok(KeyWriter {
            space,
            upsert: c.prepare_cached(upsert)?,
            delete_tags: c.prepare_cached(t.delete_tags)?,
            insert_tag: c.prepare_cached(t.insert_tag)?,
            delete_record: c.prepare_cached(t.delete_record)?,
            tagged,
        })
    }

    /// Replaces the tag rows of `key` with `meta`'s tags, each carrying the record's expiry
    /// and version.
    pub(crate) fn write_tags(&mut self, key: &str, meta: &nadb_core::Meta) -> rusqlite::Result<()> {
        let (db, ns) = (self.space.db(), self.space.namespace());
        if self.tagged {
            self.delete_tags.execute(params![db, ns, key])?;
        }
        self.tagged |= !meta.tags.is_empty();
        let expires = meta.expires_at.map(millis);
        for tag in meta.tags.iter() {
            self.insert_tag
                .execute(params![db, ns, tag, key, expires, meta.version as i64])?;
        }
        Ok(())
    }

    /// Removes `key`'s record row and tag rows.
    pub(crate) fn remove_key(&mut self, key: &str) -> rusqlite::Result<()> {
        let (db, ns) = (self.space.db(), self.space.namespace());
        self.delete_record.execute(params![db, ns, key])?;
        if self.tagged {
            self.delete_tags.execute(params![db, ns, key])?;
        }
        Ok(())
    }
}
