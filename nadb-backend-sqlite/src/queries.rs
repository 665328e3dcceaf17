//! The metadata queries shared by the backend's native index and [`SqliteIndex`]
//! (`crate::SqliteIndex`): the same SQL over two sets of tables.

use std::collections::BTreeMap;

use nadb_core::{ExpiredKey, IndexedKey, Space, SpaceCount, TagMode, Timestamp};
use rusqlite::types::Value;
use rusqlite::{CachedStatement, Connection, OptionalExtension, params};

/// Where a set of tables keeps spaces, records and tags. Records and tags name their space by
/// its id in the spaces table; the tags table repeats each record's `expires_at` and
/// `version`, so tag questions need no join.
pub(crate) struct Tables {
    pub(crate) records: &'static str,
    pub(crate) tags: &'static str,
    pub(crate) spaces: &'static str,
    /// SQL for a record's stored size.
    pub(crate) size: &'static str,
    /// A condition selecting the rows of the space named by `?1` (db) and `?2` (namespace):
    /// SQLite looks the id up once per statement, then seeks on it.
    pub(crate) in_space: &'static str,
    /// The statements, spelled out so the per-op path formats nothing.
    space_id: &'static str,
    new_space: &'static str,
    delete_tags: &'static str,
    insert_tag: &'static str,
    delete_record: &'static str,
    any_tag: &'static str,
}

/// The backend's own tables.
pub(crate) const NATIVE: Tables = Tables {
    records: "nadb_records",
    tags: "nadb_tags",
    spaces: "nadb_spaces",
    size: "length(value)",
    in_space: "space = (SELECT id FROM nadb_spaces WHERE db = ?1 AND ns = ?2)",
    space_id: "SELECT id FROM nadb_spaces WHERE db = ?1 AND ns = ?2",
    new_space: "INSERT INTO nadb_spaces (db, ns) VALUES (?1, ?2)",
    delete_tags: "DELETE FROM nadb_tags WHERE space = ?1 AND key = ?2",
    insert_tag: "INSERT INTO nadb_tags (space, tag, key, expires_at, version) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
    delete_record: "DELETE FROM nadb_records WHERE space = ?1 AND key = ?2",
    any_tag: "SELECT EXISTS (SELECT 1 FROM nadb_tags WHERE space = ?1)",
};

/// A [`SqliteIndex`](crate::SqliteIndex)'s tables.
pub(crate) const INDEX: Tables = Tables {
    records: "nadb_index",
    tags: "nadb_index_tags",
    spaces: "nadb_index_spaces",
    size: "stored_len",
    in_space: "space = (SELECT id FROM nadb_index_spaces WHERE db = ?1 AND ns = ?2)",
    space_id: "SELECT id FROM nadb_index_spaces WHERE db = ?1 AND ns = ?2",
    new_space: "INSERT INTO nadb_index_spaces (db, ns) VALUES (?1, ?2)",
    delete_tags: "DELETE FROM nadb_index_tags WHERE space = ?1 AND key = ?2",
    insert_tag: "INSERT INTO nadb_index_tags (space, tag, key, expires_at, version) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
    delete_record: "DELETE FROM nadb_index WHERE space = ?1 AND key = ?2",
    any_tag: "SELECT EXISTS (SELECT 1 FROM nadb_index_tags WHERE space = ?1)",
};

/// An id no space has (SQLite numbers rows from 1): the rows of a space never added.
pub(crate) const NO_SPACE: i64 = 0;

/// The id of `space` in `t`'s spaces table; a space it lacks is added when `add` is set (a
/// batch that writes records), or else answered with [`NO_SPACE`] (a batch that only
/// deletes or checks keys finds none, and leaves no row behind). Ids are never reused, but
/// one added in a transaction that rolls back is gone: callers keep an id no longer than
/// their transaction.
pub(crate) fn space_id(
    c: &Connection,
    t: &Tables,
    space: &Space,
    add: bool,
) -> rusqlite::Result<i64> {
    let names = params![space.db(), space.namespace()];
    let found = c
        .prepare_cached(t.space_id)?
        .query_row(names, |r| r.get(0))
        .optional()?;
    match found {
        Some(id) => Ok(id),
        None if !add => Ok(NO_SPACE),
        None => {
            c.prepare_cached(t.new_space)?.execute(names)?;
            Ok(c.last_insert_rowid())
        }
    }
}

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
        "SELECT key, version FROM {} WHERE {} AND key > ? \
         AND (expires_at IS NULL OR expires_at > ?) AND tag IN ({list}) {grouping} \
         ORDER BY key LIMIT ?",
        t.tags, t.in_space,
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
        "SELECT tag, count(*) FROM {} WHERE {} \
         AND (expires_at IS NULL OR expires_at > ?3) GROUP BY tag",
        t.tags, t.in_space
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
        "SELECT s.db, s.ns, r.key, r.version FROM {} r JOIN {} s ON s.id = r.space \
         WHERE r.expires_at IS NOT NULL AND r.expires_at <= ?1 LIMIT ?2",
        t.records, t.spaces
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
         WHERE {} AND (expires_at IS NULL OR expires_at > ?3)",
        t.size, t.records, t.in_space
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

/// The statements that write the tag rows of keys of one space and delete its keys, prepared
/// once per batch rather than looked up in the statement cache for every op. Callers write
/// the record rows themselves (the two record tables differ), naming the space by [`Self::space`].
pub(crate) struct KeyWriter<'c> {
    space: i64,
    delete_tags: CachedStatement<'c>,
    insert_tag: CachedStatement<'c>,
    delete_record: CachedStatement<'c>,
    /// Whether the space may hold tag rows. While it holds none, a write has no tag rows to
    /// delete, and skipping that lookup is most of the cost of an untagged put.
    tagged: bool,
}

impl<'c> KeyWriter<'c> {
    /// Prepares `t`'s write statements on `c` for keys of `space`, inside the transaction
    /// that will write them (which adds the space if it is new and `add` is set; see
    /// [`space_id`]).
    pub(crate) fn new(
        c: &'c Connection,
        t: &Tables,
        space: &Space,
        add: bool,
    ) -> rusqlite::Result<Self> {
        let space = space_id(c, t, space, add)?;
        let tagged = c
            .prepare_cached(t.any_tag)?
            .query_row(params![space], |r| r.get(0))?;
        Ok(KeyWriter {
            space,
            delete_tags: c.prepare_cached(t.delete_tags)?,
            insert_tag: c.prepare_cached(t.insert_tag)?,
            delete_record: c.prepare_cached(t.delete_record)?,
            tagged,
        })
    }

    /// The space's id, valid until the transaction ends.
    pub(crate) fn space(&self) -> i64 {
        self.space
    }

    /// Replaces the tag rows of `key` with `meta`'s tags, each carrying the record's expiry
    /// and version.
    pub(crate) fn write_tags(&mut self, key: &str, meta: &nadb_core::Meta) -> rusqlite::Result<()> {
        if self.tagged {
            self.delete_tags.execute(params![self.space, key])?;
        }
        self.tagged |= !meta.tags.is_empty();
        let expires = meta.expires_at.map(millis);
        for tag in meta.tags.iter() {
            self.insert_tag
                .execute(params![self.space, tag, key, expires, meta.version as i64])?;
        }
        Ok(())
    }

    /// Removes `key`'s record row and tag rows.
    pub(crate) fn remove_key(&mut self, key: &str) -> rusqlite::Result<()> {
        self.delete_record.execute(params![self.space, key])?;
        if self.tagged {
            self.delete_tags.execute(params![self.space, key])?;
        }
        Ok(())
    }
}
