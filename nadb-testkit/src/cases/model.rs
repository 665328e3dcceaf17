//! The model test: random operation sequences run on the store and on a plain in-memory model
//! (a `BTreeMap` with expiry), every answer compared. proptest shrinks a failure to a minimal
//! sequence.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::Bytes;
use nadb_core::{Clock, KeyTtl, Result, SetOptions, Store, TagMode, Timestamp};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};

use crate::case::Ctx;

/// Sequences the model test runs per backend.
pub const MODEL_CASES: u32 = 256;

/// One operation of a generated sequence.
#[derive(Clone, Debug)]
pub enum ModelOp {
    /// `set_with` (tags, optional TTL in seconds).
    Set(String, Vec<u8>, Vec<String>, Option<u64>),
    /// `set_many` of untagged values.
    SetMany(Vec<(String, Vec<u8>)>),
    /// `delete`.
    Delete(String),
    /// `delete_many`.
    DeleteMany(Vec<String>),
    /// `get`.
    Get(String),
    /// `exists`.
    Exists(String),
    /// `incr`.
    Incr(String, i64),
    /// `set_if_absent`.
    SetIfAbsent(String, Vec<u8>),
    /// `touch` with a TTL in seconds.
    Touch(String, u64),
    /// `persist`.
    Persist(String),
    /// `ttl`.
    Ttl(String),
    /// `scan` with a prefix and a page size.
    Scan(String, usize),
    /// `query_by_tags`.
    Query(Vec<String>, TagMode),
    /// `list_tags`.
    ListTags,
    /// `delete_by_tag`.
    DeleteByTag(String),
    /// `len`.
    Len,
    /// `sweep_expired` (its count is not compared: it depends on what was swept before).
    Sweep,
    /// Move the mock clock forward by seconds.
    Advance(u64),
}

fn key() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "a", "b", "ab", "a/b", "..", "{x}", "*", "k\0", "é", "n",
    ])
    .prop_map(String::from)
}

fn tag() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["red", "green", "blue"]).prop_map(String::from)
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => prop::collection::vec(any::<u8>(), 0..16),
        1 => (any::<u8>(), 1500..3000usize).prop_map(|(b, n)| vec![b; n]),
        1 => (-20i64..20).prop_map(|n| n.to_string().into_bytes()),
    ]
}

fn op() -> impl Strategy<Value = ModelOp> {
    prop_oneof![
        6 => (key(), value(), prop::collection::vec(tag(), 0..3), prop::option::of(1..5u64))
            .prop_map(|(k, v, t, ttl)| ModelOp::Set(k, v, t, ttl)),
        1 => prop::collection::vec((key(), value()), 0..4).prop_map(ModelOp::SetMany),
        2 => key().prop_map(ModelOp::Delete),
        1 => prop::collection::vec(key(), 0..4).prop_map(ModelOp::DeleteMany),
        3 => key().prop_map(ModelOp::Get),
        1 => key().prop_map(ModelOp::Exists),
        2 => (key(), -5i64..5).prop_map(|(k, d)| ModelOp::Incr(k, d)),
        1 => (key(), value()).prop_map(|(k, v)| ModelOp::SetIfAbsent(k, v)),
        1 => (key(), 1..5u64).prop_map(|(k, s)| ModelOp::Touch(k, s)),
        1 => key().prop_map(ModelOp::Persist),
        1 => key().prop_map(ModelOp::Ttl),
        1 => (prop::sample::select(vec!["", "a", "k", "{"]), 1..4usize)
            .prop_map(|(p, n)| ModelOp::Scan(p.to_string(), n)),
        1 => (prop::collection::vec(tag(), 1..3), prop::bool::ANY)
            .prop_map(|(t, all)| ModelOp::Query(t, if all { TagMode::All } else { TagMode::Any })),
        1 => Just(ModelOp::ListTags),
        1 => tag().prop_map(ModelOp::DeleteByTag),
        1 => Just(ModelOp::Len),
        1 => Just(ModelOp::Sweep),
        2 => (1..4u64).prop_map(ModelOp::Advance),
    ]
}

#[derive(Clone, Debug)]
struct Entry {
    value: Vec<u8>,
    tags: BTreeSet<String>,
    expires_at: Option<Timestamp>,
}

/// The reference: a sorted map whose entries vanish at their expiry time.
#[derive(Debug, Default)]
struct Model {
    map: BTreeMap<String, Entry>,
}

impl Model {
    fn live(&self, k: &str, now: Timestamp) -> Option<&Entry> {
        self.map
            .get(k)
            .filter(|e| e.expires_at.is_none_or(|t| t > now))
    }

    fn live_keys(&self, now: Timestamp) -> Vec<String> {
        self.map
            .keys()
            .filter(|k| self.live(k, now).is_some())
            .cloned()
            .collect()
    }

    fn put(&mut self, k: &str, value: Vec<u8>, tags: &[String], expires_at: Option<Timestamp>) {
        let entry = Entry {
            value,
            tags: tags.iter().cloned().collect(),
            expires_at,
        };
        self.map.insert(k.to_string(), entry);
    }

    fn remove_live(&mut self, k: &str, now: Timestamp) -> bool {
        let live = self.live(k, now).is_some();
        self.map.remove(k);
        live
    }
}

fn check<T: PartialEq + std::fmt::Debug>(
    what: &ModelOp,
    got: T,
    want: T,
) -> Result<(), TestCaseError> {
    if got == want {
        Ok(())
    } else {
        Err(TestCaseError::fail(format!(
            "{what:?}: store gave {got:?}, model {want:?}"
        )))
    }
}

fn err(e: nadb_core::Error) -> TestCaseError {
    TestCaseError::fail(format!("store error: {e}"))
}

async fn run_sequence(store: &Store, ctx: &Ctx, ops: &[ModelOp]) -> Result<(), TestCaseError> {
    let mut m = Model::default();
    let secs = Duration::from_secs;
    for op in ops {
        let now = ctx.clock().now();
        match op {
            ModelOp::Set(k, v, tags, ttl) => {
                let mut opts = SetOptions::new().tags(tags.clone());
                if let Some(s) = ttl {
                    opts = opts.ttl(secs(*s));
                }
                store.set_with(k, v.clone(), &opts).await.map_err(err)?;
                let exp = ttl.map(|s| Timestamp::from_millis(now.as_millis() + s * 1000));
                m.put(k, v.clone(), tags, exp);
            }
            ModelOp::SetMany(items) => {
                store.set_many(items.clone()).await.map_err(err)?;
                for (k, v) in items {
                    m.put(k, v.clone(), &[], None);
                }
            }
            ModelOp::Delete(k) => {
                let got = store.delete(k).await.map_err(err)?;
                check(op, got, m.remove_live(k, now))?;
            }
            ModelOp::DeleteMany(keys) => {
                let got = store.delete_many(keys).await.map_err(err)?;
                let unique: BTreeSet<&String> = keys.iter().collect();
                let want = unique.into_iter().filter(|k| m.remove_live(k, now)).count() as u64;
                check(op, got, want)?;
            }
            ModelOp::Get(k) => {
                let got = store.get(k).await.map_err(err)?;
                check(
                    op,
                    got,
                    m.live(k, now).map(|e| Bytes::from(e.value.clone())),
                )?;
            }
            ModelOp::Exists(k) => {
                check(
                    op,
                    store.exists(k).await.map_err(err)?,
                    m.live(k, now).is_some(),
                )?;
            }
            ModelOp::Incr(k, d) => {
                let got = store.incr(k, *d).await;
                let current = m.live(k, now).cloned();
                let parsed = match &current {
                    None => Some(0i64),
                    Some(e) => std::str::from_utf8(&e.value)
                        .ok()
                        .and_then(|s| s.parse().ok()),
                };
                match (got, parsed.and_then(|n| n.checked_add(*d))) {
                    (Ok(n), Some(want)) => {
                        check(op, n, want)?;
                        let (tags, exp) =
                            current.map_or((BTreeSet::new(), None), |e| (e.tags, e.expires_at));
                        let tags: Vec<String> = tags.into_iter().collect();
                        m.put(k, want.to_string().into_bytes(), &tags, exp);
                    }
                    (Err(nadb_core::Error::InvalidValue { .. }), None) => {}
                    (got, want) => {
                        return Err(TestCaseError::fail(format!(
                            "{op:?}: store gave {got:?}, model {want:?}"
                        )));
                    }
                }
            }
            ModelOp::SetIfAbsent(k, v) => {
                let got = store
                    .set_if_absent(k, v.clone(), &SetOptions::new())
                    .await
                    .map_err(err)?;
                let want = m.live(k, now).is_none();
                if want {
                    m.put(k, v.clone(), &[], None);
                }
                check(op, got, want)?;
            }
            ModelOp::Touch(k, s) => {
                let got = store.touch(k, secs(*s)).await.map_err(err)?;
                let want = m.live(k, now).is_some();
                if want && let Some(e) = m.map.get_mut(k) {
                    e.expires_at = Some(Timestamp::from_millis(now.as_millis() + s * 1000));
                }
                check(op, got, want)?;
            }
            ModelOp::Persist(k) => {
                let got = store.persist(k).await.map_err(err)?;
                let want = m.live(k, now).is_some();
                if want && let Some(e) = m.map.get_mut(k) {
                    e.expires_at = None;
                }
                check(op, got, want)?;
            }
            ModelOp::Ttl(k) => {
                let got = store.ttl(k).await.map_err(err)?;
                let want = m.live(k, now).map(|e| match e.expires_at {
                    None => KeyTtl::Never,
                    Some(t) => KeyTtl::Remaining(t.saturating_since(now)),
                });
                check(op, got, want)?;
            }
            ModelOp::Scan(prefix, limit) => {
                let mut got = Vec::new();
                let mut cursor: Option<String> = None;
                loop {
                    let page = store
                        .scan(prefix, cursor.as_deref(), *limit)
                        .await
                        .map_err(err)?;
                    got.extend(page.items);
                    match page.next {
                        Some(n) => cursor = Some(n),
                        None => break,
                    }
                }
                let want: Vec<String> = m
                    .live_keys(now)
                    .into_iter()
                    .filter(|k| k.starts_with(prefix.as_str()))
                    .collect();
                check(op, got, want)?;
            }
            ModelOp::Query(tags, mode) => {
                let got = store
                    .query_by_tags(tags, *mode, None, 1000)
                    .await
                    .map_err(err)?
                    .items;
                let want: Vec<String> = m
                    .live_keys(now)
                    .into_iter()
                    .filter(|k| {
                        let e = &m.map[k];
                        match mode {
                            TagMode::All => tags.iter().all(|t| e.tags.contains(t)),
                            TagMode::Any => tags.iter().any(|t| e.tags.contains(t)),
                        }
                    })
                    .collect();
                check(op, got, want)?;
            }
            ModelOp::ListTags => {
                let got = store.list_tags().await.map_err(err)?;
                let mut want: BTreeMap<String, u64> = BTreeMap::new();
                for k in m.live_keys(now) {
                    for t in &m.map[&k].tags {
                        *want.entry(t.clone()).or_default() += 1;
                    }
                }
                check(op, got, want)?;
            }
            ModelOp::DeleteByTag(t) => {
                let got = store.delete_by_tag(t).await.map_err(err)?;
                let doomed: Vec<String> = m
                    .live_keys(now)
                    .into_iter()
                    .filter(|k| m.map[k].tags.contains(t))
                    .collect();
                for k in &doomed {
                    m.map.remove(k);
                }
                check(op, got, doomed.len() as u64)?;
            }
            ModelOp::Len => {
                check(
                    op,
                    store.len().await.map_err(err)?,
                    m.live_keys(now).len() as u64,
                )?;
            }
            ModelOp::Sweep => {
                store.sweep_expired().await.map_err(err)?;
                m.map.retain(|_, e| e.expires_at.is_none_or(|t| t > now));
            }
            ModelOp::Advance(s) => ctx.clock().advance(secs(*s)),
        }
    }
    Ok(())
}

/// 256 random sequences of up to 40 operations, each in a fresh space, agree with the model.
/// Needs a multi-threaded tokio runtime (proptest drives the cases synchronously).
pub async fn model_random_ops(ctx: &Ctx) -> Result<()> {
    let mut runner = TestRunner::new(Config {
        cases: MODEL_CASES,
        failure_persistence: None,
        ..Config::default()
    });
    let handle = tokio::runtime::Handle::current();
    let result = tokio::task::block_in_place(|| {
        runner.run(&prop::collection::vec(op(), 1..40), |ops| {
            handle.block_on(async {
                let store = ctx
                    .builder()
                    .space(ctx.other_space())
                    .build()
                    .await
                    .map_err(err)?;
                run_sequence(&store, ctx, &ops).await
            })
        })
    });
    match result {
        Ok(()) => Ok(()),
        Err(TestError::Fail(reason, ops)) => {
            panic!("model test failed: {reason}\nminimal failing sequence: {ops:#?}")
        }
        Err(TestError::Abort(reason)) => panic!("model test aborted: {reason}"),
    }
}
