//! The metadata index kept on the server: tag sets, the expiry index and the byte counter the
//! apply script maintains, queried by scripts.

use std::collections::BTreeMap;

use async_trait::async_trait;
use nadb_core::{
    Batch, ExpiredKey, IndexedKey, Meta, MetadataIndex, Result, Space, SpaceCount, TagMode,
    Timestamp,
};
use redis::Value;

use crate::conn::redis_error;
use crate::scripts::{COUNT_SCRIPT, EXPIRED_SCRIPT, QUERY_SCRIPT, TAG_COUNTS_SCRIPT};
use crate::{RedisBackend, WriteOp};

/// [`MetadataIndex`] over the sets the apply script keeps up to date.
#[derive(Debug)]
pub(crate) struct RedisIndex(pub(crate) RedisBackend);

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

fn pairs(v: &[Value]) -> Vec<(String, String)> {
    v.chunks_exact(2)
        .filter_map(|p| Some((text(&p[0])?, text(&p[1])?)))
        .collect()
}

impl RedisIndex {
    /// Prunes records whose value the server expired (`(key, version)` as the scripts saw them).
    async fn prune(&self, space: &Space, dead: &[(String, u64)]) -> Result<()> {
        if dead.is_empty() {
            return Ok(());
        }
        let ops: Vec<WriteOp<'_>> = dead.iter().map(|(k, v)| WriteOp::Prune(k, *v)).collect();
        self.0.write(space, &[], &ops).await
    }
}

#[async_trait]
impl MetadataIndex for RedisIndex {
    async fn update(&self, _batch: &Batch) -> Result<()> {
        Ok(())
    }

    async fn rebuild(&self, _space: &Space, _entries: Vec<(String, Meta)>) -> Result<()> {
        Ok(())
    }

    async fn query(
        &self,
        space: &Space,
        tags: &[String],
        mode: TagMode,
        now: Timestamp,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<IndexedKey>> {
        if tags.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let mut conn = self.0.conn()?;
        let sk = self.0.keys(space);
        let mut inv = QUERY_SCRIPT.prepare_invoke();
        inv.key(sk.meta()).key(sk.scratch());
        let mut distinct: Vec<&String> = tags.iter().collect();
        distinct.sort();
        distinct.dedup();
        for t in distinct {
            inv.key(sk.tag(t));
        }
        inv.arg(&sk.prefix)
            .arg(match mode {
                TagMode::All => "all",
                TagMode::Any => "any",
            })
            .arg(now.as_millis())
            .arg(after.unwrap_or(""))
            .arg(i64::try_from(limit).unwrap_or(i64::MAX));
        let reply: Vec<Vec<Value>> = inv.invoke_async(&mut conn).await.map_err(redis_error)?;
        let parse = |v: Option<&Vec<Value>>| -> Vec<(String, u64)> {
            v.map(|v| pairs(v))
                .unwrap_or_default()
                .into_iter()
                .filter_map(|(k, ver)| Some((k, ver.parse().ok()?)))
                .collect()
        };
        let found = parse(reply.first());
        self.prune(space, &parse(reply.get(1))).await?;
        Ok(found
            .into_iter()
            .map(|(key, version)| IndexedKey { key, version })
            .collect())
    }

    async fn tag_counts(&self, space: &Space, now: Timestamp) -> Result<BTreeMap<String, u64>> {
        let mut conn = self.0.conn()?;
        let sk = self.0.keys(space);
        let mut inv = TAG_COUNTS_SCRIPT.prepare_invoke();
        inv.key(sk.meta()).key(sk.tag_names()).key(sk.expiries());
        inv.arg(&sk.prefix).arg(now.as_millis());
        let reply: Vec<Value> = inv.invoke_async(&mut conn).await.map_err(redis_error)?;
        Ok(pairs(&reply)
            .into_iter()
            .filter_map(|(t, n)| Some((t, n.parse().ok()?)))
            .collect())
    }

    async fn expired(&self, now: Timestamp, limit: usize) -> Result<Vec<ExpiredKey>> {
        let mut out = Vec::new();
        for space in self.0.registered_spaces().await? {
            if out.len() >= limit {
                break;
            }
            let mut conn = self.0.conn()?;
            let sk = self.0.keys(&space);
            let mut inv = EXPIRED_SCRIPT.prepare_invoke();
            inv.key(sk.meta()).key(sk.expiries());
            inv.arg(&sk.prefix)
                .arg(now.as_millis())
                .arg(i64::try_from(limit - out.len()).unwrap_or(i64::MAX));
            let reply: Vec<Value> = inv.invoke_async(&mut conn).await.map_err(redis_error)?;
            let mut dead = Vec::new();
            for t in reply.chunks_exact(3) {
                let (Some(key), Some(version), Some(live)) =
                    (text(&t[0]), text(&t[1]), text(&t[2]))
                else {
                    continue;
                };
                let Ok(version) = version.parse() else {
                    continue;
                };
                if live == "1" {
                    out.push(ExpiredKey {
                        space: space.clone(),
                        key,
                        version,
                    });
                } else {
                    dead.push((key, version));
                }
            }
            self.prune(&space, &dead).await?;
        }
        Ok(out)
    }

    async fn count(&self, space: &Space, now: Timestamp) -> Result<SpaceCount> {
        let mut conn = self.0.conn()?;
        let sk = self.0.keys(space);
        let mut inv = COUNT_SCRIPT.prepare_invoke();
        inv.key(sk.meta())
            .key(sk.keys())
            .key(sk.expiries())
            .key(sk.bytes());
        inv.arg(&sk.prefix).arg(now.as_millis());
        let (keys, bytes): (i64, i64) = inv.invoke_async(&mut conn).await.map_err(redis_error)?;
        Ok(SpaceCount {
            keys: u64::try_from(keys).unwrap_or(0),
            stored_bytes: u64::try_from(bytes).unwrap_or(0),
        })
    }
}
