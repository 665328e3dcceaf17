//! Listing and tag operations: `scan`, `len`, `clear`, `query_by_tags`, `list_tags`,
//! `delete_by_tag`. Paging uses the last key of a page as the cursor of the next.
//!
//! Each first applies the space's pending writes, then answers from the backend or the index.
//! Writes still pending after that (dead-lettered, or written since) are merged in, so a
//! listing agrees with `get`.

use std::collections::BTreeMap;

use super::{Page, Store};
use crate::backend::BackendExt;
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::index::TagMode;
use crate::record::Meta;
use crate::stats::OpKind;
use crate::tags::validate_tag;

/// Keys handled per round by `clear` and `delete_by_tag`.
const CHUNK: usize = 1000;

/// Trims a list fetched with one extra item into a page.
fn page_of(mut items: Vec<String>, limit: usize) -> Page<String> {
    if items.len() > limit {
        items.truncate(limit);
        let next = items.last().cloned();
        Page { items, next }
    } else {
        Page { items, next: None }
    }
}

/// Adds to `found` (keys in order from the backend or the index, none of them pending) the
/// pending `keys` that belong in the same listing, up to `bound` (the last key the source was
/// asked about; `None` when it had no more), and keeps the first `want`.
fn merge_page<'a>(
    mut found: Vec<String>,
    keys: impl Iterator<Item = &'a str>,
    bound: Option<&str>,
    want: usize,
) -> Vec<String> {
    let before = found.len();
    found.extend(
        keys.filter(|k| bound.is_none_or(|b| *k <= b))
            .map(str::to_string),
    );
    if found.len() > before {
        found.sort_unstable();
    }
    found.truncate(want);
    found
}

/// The metadata of a pending write (`None`: a delete) if it leaves its key live at `now`.
fn live(pending: &Option<Meta>, now: Timestamp) -> Option<&Meta> {
    pending.as_ref().filter(|m| !m.is_expired(now))
}

fn has_tags(meta: &Meta, tags: &[String], mode: TagMode) -> bool {
    match mode {
        TagMode::All => tags.iter().all(|t| meta.tags.contains(t)),
        TagMode::Any => tags.iter().any(|t| meta.tags.contains(t)),
    }
}

/// Whether `key` is among `pending` (sorted by key).
fn is_pending(pending: &[(String, Option<Meta>)], key: &str) -> bool {
    pending
        .binary_search_by(|(k, _)| k.as_str().cmp(key))
        .is_ok()
}

fn check_limit(limit: usize) -> Result<()> {
    if limit == 0 {
        return Err(Error::InvalidArgument {
            name: "limit",
            reason: "must be at least 1".into(),
        });
    }
    Ok(())
}

impl Store {
    /// Up to `limit` live keys starting with `prefix`, in byte order, after `cursor`.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = nadb_core::Store::open("memory://").await?;
    /// store.set_many([("user:2", "b"), ("user:1", "a"), ("item:1", "c")]).await?;
    /// let first = store.scan("user:", None, 1).await?;
    /// assert_eq!(first.items, ["user:1"]);
    /// let second = store.scan("user:", first.next.as_deref(), 1).await?;
    /// assert_eq!(second.items, ["user:2"]);
    /// assert!(second.is_last());
    /// # Ok::<(), nadb_core::Error>(()) }).unwrap();
    /// ```
    pub async fn scan(
        &self,
        prefix: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<String>> {
        self.measured(OpKind::Scan, async {
            check_limit(limit)?;
            self.drain_space().await?;
            let backend = &self.engine.backend;
            let now = self.engine.clock.now();
            let want = limit.saturating_add(1);
            let pending = self.pending_after(prefix, cursor);
            let mut items: Vec<String> = Vec::new();
            // The last key the backend was asked about, unless it has no more.
            let mut bound = None;
            if !self.engine.info.capabilities.ordered_scan {
                items = backend
                    .scan_all(&self.space, prefix)
                    .await?
                    .into_iter()
                    .filter(|(k, m)| {
                        !m.is_expired(now)
                            && cursor.is_none_or(|c| k.as_str() > c)
                            && !is_pending(&pending, k)
                    })
                    .map(|(k, _)| k)
                    .collect();
            } else {
                let mut after = cursor.map(str::to_string);
                loop {
                    let ask = want.saturating_sub(items.len()).max(16);
                    let batch = backend
                        .scan(&self.space, prefix, after.as_deref(), ask)
                        .await?;
                    let exhausted = batch.len() < ask;
                    after = batch.last().map(|(k, _)| k.clone()).or(after);
                    items.extend(
                        batch
                            .into_iter()
                            .filter(|(k, m)| !m.is_expired(now) && !is_pending(&pending, k))
                            .map(|(k, _)| k),
                    );
                    if exhausted {
                        break;
                    }
                    if items.len() >= want {
                        bound = after;
                        break;
                    }
                }
            }
            let live_pending = pending
                .iter()
                .filter(|(_, p)| live(p, now).is_some())
                .map(|(k, _)| k.as_str());
            let items = merge_page(items, live_pending, bound.as_deref(), want);
            Ok(page_of(items, limit))
        })
        .await
    }

    /// The space's pending writes (see the module docs) with keys starting with `prefix`,
    /// after `cursor`, in key order.
    fn pending_after(&self, prefix: &str, cursor: Option<&str>) -> Vec<(String, Option<Meta>)> {
        let mut pending = self.engine.pipeline.pending_listing(&self.space, prefix);
        pending.retain(|(k, _)| cursor.is_none_or(|c| k.as_str() > c));
        pending
    }

    /// For each of the space's pending writes, the stored metadata it replaces and its own,
    /// each only if live: what corrects counts taken from the index.
    async fn pending_changes(&self, now: Timestamp) -> Result<Vec<(Option<Meta>, Option<Meta>)>> {
        let pending = self.pending_after("", None);
        if pending.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = pending.iter().map(|(k, _)| k.clone()).collect();
        let stored = self
            .engine
            .backend
            .get_meta_many(&self.space, &keys)
            .await?;
        Ok(pending
            .into_iter()
            .zip(stored)
            .map(|((_, p), s)| {
                let was = s.filter(|m| !m.is_expired(now));
                (was, p.filter(|m| !m.is_expired(now)))
            })
            .collect())
    }

    /// Number of live keys in the space.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = nadb_core::Store::open("memory://").await?;
    /// store.set("a", "1").await?;
    /// assert_eq!(store.len().await?, 1);
    /// # Ok::<(), nadb_core::Error>(()) }).unwrap();
    /// ```
    pub async fn len(&self) -> Result<u64> {
        self.measured(OpKind::Len, async {
            self.drain_space().await?;
            let now = self.engine.clock.now();
            let mut keys = self.engine.index.count(&self.space, now).await?.keys;
            for (was, is) in self.pending_changes(now).await? {
                keys = (keys + u64::from(is.is_some())).saturating_sub(u64::from(was.is_some()));
            }
            Ok(keys)
        })
        .await
    }

    /// Whether the space has no live keys.
    pub async fn is_empty(&self) -> Result<bool> {
        Ok(self.len().await? == 0)
    }

    /// Removes every record of the space; returns how many live records were removed. Returns
    /// once the removals are applied and synced, under every flush policy: if the backend
    /// refuses them, the error comes back here rather than through the dead-letter queue.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = nadb_core::Store::open("memory://").await?;
    /// store.set_many([("a", "1"), ("b", "2")]).await?;
    /// assert_eq!(store.clear().await?, 2);
    /// assert!(store.is_empty().await?);
    /// # Ok::<(), nadb_core::Error>(()) }).unwrap();
    /// ```
    pub async fn clear(&self) -> Result<u64> {
        self.measured(OpKind::Clear, async {
            let mut removed = 0;
            loop {
                self.drain_space().await?;
                let mut keys: Vec<String> = self
                    .engine
                    .backend
                    .scan(&self.space, "", None, CHUNK)
                    .await?
                    .into_iter()
                    .map(|(k, _)| k)
                    .collect();
                // Dead-lettered writes go too: a delete applied after them supersedes them.
                let pending = self.pending_after("", None).into_iter().take(CHUNK);
                keys.extend(pending.map(|(k, _)| k));
                keys.sort_unstable();
                keys.dedup();
                if keys.is_empty() {
                    return Ok(removed);
                }
                removed += self.delete_keys(&keys, |_| true, true).await?;
            }
        })
        .await
    }

    /// Live keys carrying all (or any) of `tags`, in key order, paged like [`Store::scan`].
    /// An empty tag list is an error, not "everything".
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use nadb_core::{SetOptions, TagMode};
    /// let store = nadb_core::Store::open("memory://").await?;
    /// store.set_with("a", "1", &SetOptions::new().tags(["red", "big"])).await?;
    /// store.set_with("b", "2", &SetOptions::new().tags(["red"])).await?;
    /// assert_eq!(store.query_by_tags(&["red", "big"], TagMode::All, None, 10).await?.items, ["a"]);
    /// assert_eq!(store.query_by_tags(&["big", "red"], TagMode::Any, None, 10).await?.items, ["a", "b"]);
    /// assert!(store.query_by_tags::<&str>(&[], TagMode::Any, None, 10).await.is_err());
    /// # Ok::<(), nadb_core::Error>(()) }).unwrap();
    /// ```
    pub async fn query_by_tags<T: AsRef<str>>(
        &self,
        tags: &[T],
        mode: TagMode,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<String>> {
        self.measured(OpKind::QueryByTags, async {
            check_limit(limit)?;
            self.drain_space().await?;
            if tags.is_empty() {
                return Err(Error::InvalidArgument {
                    name: "tags",
                    reason: "at least one tag is required".into(),
                });
            }
            let mut owned = Vec::with_capacity(tags.len());
            for t in tags {
                validate_tag(t.as_ref())?;
                owned.push(t.as_ref().to_string());
            }
            let now = self.engine.clock.now();
            let want = limit.saturating_add(1);
            let pending = self.pending_after("", cursor);
            // Asking for one more hit per pending key leaves `want` once those are set aside.
            let ask = want.saturating_add(pending.len());
            let hits = self
                .engine
                .index
                .query(&self.space, &owned, mode, now, cursor, ask)
                .await?;
            let bound = (hits.len() >= ask).then(|| hits.last().map(|h| h.key.clone()));
            let found = hits
                .into_iter()
                .filter(|h| !is_pending(&pending, &h.key))
                .map(|h| h.key)
                .collect();
            let matching = pending
                .iter()
                .filter(|(_, p)| live(p, now).is_some_and(|m| has_tags(m, &owned, mode)))
                .map(|(k, _)| k.as_str());
            let items = merge_page(found, matching, bound.flatten().as_deref(), want);
            Ok(page_of(items, limit))
        })
        .await
    }

    /// Every tag in the space with the number of live keys carrying it.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use nadb_core::SetOptions;
    /// let store = nadb_core::Store::open("memory://").await?;
    /// store.set_with("a", "1", &SetOptions::new().tags(["red"])).await?;
    /// assert_eq!(store.list_tags().await?["red"], 1);
    /// # Ok::<(), nadb_core::Error>(()) }).unwrap();
    /// ```
    pub async fn list_tags(&self) -> Result<BTreeMap<String, u64>> {
        self.measured(OpKind::ListTags, async {
            self.drain_space().await?;
            let now = self.engine.clock.now();
            let mut counts = self.engine.index.tag_counts(&self.space, now).await?;
            for (was, is) in self.pending_changes(now).await? {
                for tag in was.iter().flat_map(|m| m.tags.iter()) {
                    if let Some(n) = counts.get_mut(tag) {
                        *n = n.saturating_sub(1);
                    }
                }
                for tag in is.iter().flat_map(|m| m.tags.iter()) {
                    *counts.entry(tag.clone()).or_default() += 1;
                }
            }
            counts.retain(|_, n| *n > 0);
            Ok(counts)
        })
        .await
    }

    /// Removes every live record carrying `tag`; returns how many. Like [`Store::clear`], it
    /// returns once the removals are applied and synced. A key written again without the tag
    /// while the removal runs is kept.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use nadb_core::SetOptions;
    /// let store = nadb_core::Store::open("memory://").await?;
    /// store.set_with("a", "1", &SetOptions::new().tags(["old"])).await?;
    /// store.set("b", "2").await?;
    /// assert_eq!(store.delete_by_tag("old").await?, 1);
    /// assert_eq!(store.len().await?, 1);
    /// # Ok::<(), nadb_core::Error>(()) }).unwrap();
    /// ```
    pub async fn delete_by_tag(&self, tag: &str) -> Result<u64> {
        self.measured(OpKind::DeleteByTag, async {
            validate_tag(tag)?;
            let tags = [tag.to_string()];
            let mut removed = 0;
            // Keys are taken in order, each page after the last key handled, so keys left
            // alone (rewritten without the tag) are not met again.
            let mut after: Option<String> = None;
            loop {
                self.drain_space().await?;
                let now = self.engine.clock.now();
                let mut keys: Vec<String> = self
                    .engine
                    .index
                    .query(
                        &self.space,
                        &tags,
                        TagMode::All,
                        now,
                        after.as_deref(),
                        CHUNK,
                    )
                    .await?
                    .into_iter()
                    .map(|h| h.key)
                    .collect();
                let bound = (keys.len() >= CHUNK)
                    .then(|| keys.last().cloned())
                    .flatten();
                let pending = self.pending_after("", after.as_deref()).into_iter();
                let tagged = pending.filter(|(k, p)| {
                    p.as_ref().is_some_and(|m| m.tags.contains(tag))
                        && bound.as_ref().is_none_or(|b| k <= b)
                });
                keys.extend(tagged.map(|(k, _)| k));
                keys.sort_unstable();
                keys.dedup();
                let Some(last) = keys.last().cloned() else {
                    return Ok(removed);
                };
                // Each key is judged again on its newest write: one rewritten without the tag
                // since the query is left alone.
                removed += self
                    .delete_keys(&keys, |m| m.tags.contains(tag), true)
                    .await?;
                after = Some(last);
            }
        })
        .await
    }
}
