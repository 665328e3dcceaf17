//! Many tasks at once: 32 tasks × 1,000 mixed operations, each checked against a model.

use std::collections::BTreeMap;

use bytes::Bytes;
use nadb_core::{Error, Result, SetOptions, TagMode};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::case::Ctx;

/// 32 tasks each run 1,000 random operations on their own keys (sharing the store, the
/// index and a hot counter); every read is checked against the task's model as it happens, and
/// the final contents, tag queries and counts against all models together.
pub async fn concurrent_mixed_ops(ctx: &Ctx) -> Result<()> {
    let s = ctx.store().await?;
    let mut tasks = Vec::new();
    for t in 0..32u64 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(t);
            let mut model: BTreeMap<String, Bytes> = BTreeMap::new();
            let tag = format!("task-{t}");
            let opts = SetOptions::new().tags([tag.as_str(), "all"]);
            for i in 0..1000u32 {
                let key = format!("t{t:02}/k{}", rng.random_range(0..40));
                match rng.random_range(0..10) {
                    0..=2 => {
                        let v = Bytes::from(format!("{t}-{i}"));
                        s.set_with(&key, v.clone(), &opts).await?;
                        model.insert(key, v);
                    }
                    3 => {
                        let existed = s.delete(&key).await?;
                        assert_eq!(existed, model.remove(&key).is_some(), "delete {key}");
                    }
                    4 => {
                        let k2 = format!("t{t:02}/k{}", rng.random_range(0..40));
                        let v = Bytes::from(format!("m{i}"));
                        s.set_many_with([(&key, v.clone()), (&k2, v.clone())], &opts)
                            .await?;
                        model.insert(key, v.clone());
                        model.insert(k2, v);
                    }
                    5 => {
                        assert_eq!(
                            s.exists(&key).await?,
                            model.contains_key(&key),
                            "exists {key}"
                        );
                    }
                    6 => {
                        s.incr("shared-counter", 1).await?;
                    }
                    _ => {
                        assert_eq!(s.get(&key).await?, model.get(&key).cloned(), "get {key}");
                    }
                }
            }
            Ok::<_, Error>((t, model))
        }));
    }
    let mut all: BTreeMap<String, Bytes> = BTreeMap::new();
    let mut per_task = Vec::new();
    for task in tasks {
        let (t, model) = task.await.expect("task panicked")?;
        per_task.push((t, model.len()));
        all.extend(model);
    }
    let listed = s.scan("t", None, 100_000).await?.items;
    assert_eq!(listed, all.keys().cloned().collect::<Vec<_>>());
    for (k, v) in &all {
        assert_eq!(s.get(k).await?.as_ref(), Some(v), "final value of {k}");
    }
    for (t, n) in per_task {
        let page = s
            .query_by_tags(&[format!("task-{t}")], TagMode::All, None, 1000)
            .await?;
        assert_eq!(page.items.len(), n, "tag query of task {t}");
    }
    assert_eq!(
        s.list_tags().await?.get("all").copied().unwrap_or(0),
        all.len() as u64
    );
    assert_eq!(
        s.len().await?,
        all.len() as u64 + u64::from(s.exists("shared-counter").await?)
    );
    Ok(())
}
