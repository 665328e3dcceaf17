//! Listing and tag operations: `scan`, `len`, `clear`, `query_by_tags`, `list_tags`,
//! `delete_by_tag`. Paging uses the last key of a page as the cursor of the next.

use std::collections::BTreeMap;

use super::{Page, Store};
use crate::backend::BackendExt;
use crate::error::{Error, Result};
use crate::index::TagMode;
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
            let mut items: Vec<String> = Vec::new();
            if !self.engine.info.capabilities.ordered_scan {
                items = backend
                    .scan_all(&self.space, prefix)
                    .await?
                    .into_iter()
                    .filter(|(k, m)| !m.is_expired(now) && cursor.is_none_or(|c| k.as_str() > c))
                    .map(|(k, _)| k)
                    .take(want)
                    .collect();
                return Ok(page_of(items, limit));
            }
            let mut after = cursor.map(str::to_string);
            loop {
                let ask = (want - items.len()).max(16);
                let batch = backend
                    .scan(&self.space, prefix, after.as_deref(), ask)
                    .await?;
                let exhausted = batch.len() < ask;
                after = batch.last().map(|(k, _)| k.clone()).or(after);
                items.extend(
                    batch
                        .into_iter()
                        .filter(|(_, m)| !m.is_expired(now))
                        .map(|(k, _)| k),
                );
                if exhausted || items.len() >= want {
                    items.truncate(want);
                    return Ok(page_of(items, limit));
                }
            }
        })
        .await
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
            Ok(self.engine.index.count(&self.space, now).await?.keys)
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
                let keys: Vec<String> = self
                    .engine
                    .backend
                    .scan(&self.space, "", None, CHUNK)
                    .await?
                    .into_iter()
                    .map(|(k, _)| k)
                    .collect();
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
            let hits = self
                .engine
                .index
                .query(
                    &self.space,
                    &owned,
                    mode,
                    now,
                    cursor,
                    limit.saturating_add(1),
                )
                .await?;
            Ok(page_of(hits.into_iter().map(|h| h.key).collect(), limit))
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
            self.engine.index.tag_counts(&self.space, now).await
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
            loop {
                self.drain_space().await?;
                let now = self.engine.clock.now();
                let keys: Vec<String> = self
                    .engine
                    .index
                    .query(&self.space, &tags, TagMode::All, now, None, CHUNK)
                    .await?
                    .into_iter()
                    .map(|h| h.key)
                    .collect();
                if keys.is_empty() {
                    return Ok(removed);
                }
                // Re-checked against the stored record: a key rewritten without the tag
                // since the query is left alone.
                let n = self
                    .delete_keys(&keys, |m| m.tags.contains(tag), true)
                    .await?;
                removed += n;
                if n == 0 {
                    return Ok(removed);
                }
            }
        })
        .await
    }
}
