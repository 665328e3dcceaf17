//! Removal of expired records: [`Store::sweep_expired`] and the background task that calls it.
//!
//! Reads never return expired records whether or not a sweep has run; sweeping only reclaims
//! space. Each delete is guarded by the version the index reported, so a key rewritten after it
//! expired is never swept.

use std::collections::{BTreeMap, HashSet};
use std::sync::Weak;
use std::time::Duration;

use super::{Engine, Store};
use crate::backend::{Batch, Expect};
use crate::error::{Error, Result};
use crate::index::ExpiredKey;
use crate::space::Space;
use crate::stats::{Metrics, OpKind};

const SWEEP_CHUNK: usize = 1000;

impl Store {
    /// Removes records that have expired, in every space; returns how many. The background
    /// sweeper calls this on its interval; call it to reclaim space now.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use nadb_core::{MemoryBackend, MockClock, SetOptions, Store};
    /// use std::time::Duration;
    /// let clock = MockClock::default();
    /// let store = Store::builder(MemoryBackend::new()).clock(clock.clone()).build().await?;
    /// store.set_with("k", "v", &SetOptions::new().ttl(Duration::from_secs(1))).await?;
    /// clock.advance(Duration::from_secs(2));
    /// assert_eq!(store.sweep_expired().await?, 1);
    /// # Ok::<(), nadb_core::Error>(()) }).unwrap();
    /// ```
    pub async fn sweep_expired(&self) -> Result<u64> {
        self.measured(OpKind::Sweep, async {
            // Pending writes first, so their expiry is in the index.
            self.engine.drain().await?;
            self.engine.sweep().await
        })
        .await
    }
}

impl Engine {
    #[tracing::instrument(level = "debug", name = "nadb.sweep", skip_all)]
    async fn sweep(&self) -> Result<u64> {
        let mut removed = 0;
        // Expired keys this pass leaves alone: the index keeps listing them, so each query
        // asks for that many more, and a pass never stalls behind a chunk of them.
        let mut passed: HashSet<(Space, String)> = HashSet::new();
        loop {
            let now = self.clock.now();
            let limit = SWEEP_CHUNK + passed.len();
            let expired = self.index.expired(now, limit).await?;
            let listed_all = expired.len() < limit;
            let mut by_space: BTreeMap<Space, Vec<ExpiredKey>> = BTreeMap::new();
            let mut fresh = 0;
            for e in expired {
                if fresh == SWEEP_CHUNK {
                    break;
                }
                let id = (e.space, e.key);
                if passed.contains(&id) {
                    continue;
                }
                // A key with a pending (or dead-lettered) write is that write's business.
                if self.pipeline.lookup(&id.0, &id.1).is_some() {
                    passed.insert(id);
                    continue;
                }
                fresh += 1;
                let (space, key) = id;
                by_space.entry(space.clone()).or_default().push(ExpiredKey {
                    space,
                    key,
                    version: e.version,
                });
            }
            if fresh == 0 {
                if listed_all {
                    break;
                }
                // A full list of keys to leave alone: ask past them.
                continue;
            }
            let mut round = 0;
            for (space, keys) in by_space {
                round += self.sweep_space(&space, &keys, &mut passed).await?;
            }
            Metrics::add(&self.metrics.expired_removed, round);
            removed += round;
        }
        Ok(removed)
    }

    /// Deletes `keys` of one space in one guarded batch; if a key changed meanwhile, falls
    /// back to one guarded delete per key so the others still go, and adds the changed keys
    /// to `passed`.
    async fn sweep_space(
        &self,
        space: &Space,
        keys: &[ExpiredKey],
        passed: &mut HashSet<(Space, String)>,
    ) -> Result<u64> {
        let guarded = |ks: &[ExpiredKey]| {
            let mut b = Batch::new(space.clone());
            for k in ks {
                b.check(k.key.clone(), Expect::Version(k.version));
                b.delete(k.key.clone());
            }
            b
        };
        match self.submit(guarded(keys).into(), true).await {
            Ok(()) => return Ok(keys.len() as u64),
            Err(Error::Conflict { .. }) => {}
            Err(e) => return Err(e),
        }
        let mut removed = 0;
        for k in keys {
            match self
                .submit(guarded(std::slice::from_ref(k)).into(), true)
                .await
            {
                Ok(()) => removed += 1,
                Err(Error::Conflict { .. }) => {
                    passed.insert((space.clone(), k.key.clone()));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(removed)
    }
}

/// The background sweeper: runs until the store is dropped or closed. It holds the engine
/// only weakly, so it never keeps a store alive.
pub(super) async fn run(engine: Weak<Engine>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(engine) = engine.upgrade() else {
            return;
        };
        if let Err(e) = engine.sweep().await {
            tracing::warn!(error = %e, "expiry sweep failed; retrying next interval");
        }
    }
}
