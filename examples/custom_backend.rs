//! Writing a backend: a small `BTreeMap` store implementing `StorageBackend`, then the whole
//! conformance suite run against it through the testkit's public functions.
//!
//! Run with `cargo run -p nadb-examples --example custom_backend`; it exits non-zero if any
//! case fails.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::process::ExitCode;

use nadb::{
    BackendInfo, Batch, Capabilities, Error, Meta, Op, Record, Result, Space, StorageBackend,
    async_trait,
};
use parking_lot::Mutex;

/// Every record of every space in one ordered map, behind one lock: batches are atomic and
/// scans come out in key order. It brings no metadata index, so the store keeps one for it.
#[derive(Debug)]
struct BTreeBackend {
    info: BackendInfo,
    map: Mutex<BTreeMap<(Space, String), Record>>,
}

impl BTreeBackend {
    fn new() -> BTreeBackend {
        BTreeBackend {
            info: BackendInfo {
                scheme: "btree".into(),
                capabilities: Capabilities {
                    atomic_batch: true,
                    ordered_scan: true,
                    ..Capabilities::none()
                },
            },
            map: Mutex::new(BTreeMap::new()),
        }
    }
}

#[async_trait]
impl StorageBackend for BTreeBackend {
    fn info(&self) -> &BackendInfo {
        &self.info
    }

    async fn get(&self, space: &Space, key: &str) -> Result<Option<Record>> {
        Ok(self
            .map
            .lock()
            .get(&(space.clone(), key.to_string()))
            .cloned())
    }

    async fn apply(&self, batch: &Batch) -> Result<()> {
        let mut map = self.map.lock();
        let id = |k: &str| (batch.space.clone(), k.to_string());
        for check in &batch.checks {
            let found = map.get(&id(&check.key)).map(|r| r.meta.version);
            if !check.expect.holds(found) {
                return Err(Error::Conflict {
                    reason: "a batch check failed".into(),
                });
            }
        }
        for op in &batch.ops {
            match op {
                Op::Put { key, record } => {
                    let mut record = record.clone();
                    if let Some(old) = map.get(&id(key))
                        && !old.meta.is_expired(record.meta.updated_at)
                    {
                        record.meta.created_at = old.meta.created_at;
                    }
                    map.insert(id(key), record);
                }
                Op::Delete { key } => {
                    map.remove(&id(key));
                }
            }
        }
        Ok(())
    }

    async fn scan(
        &self,
        space: &Space,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Meta)>> {
        let map = self.map.lock();
        let start = match after {
            Some(a) if a >= prefix => Bound::Excluded((space.clone(), a.to_string())),
            _ => Bound::Included((space.clone(), prefix.to_string())),
        };
        Ok(map
            .range((start, Bound::Unbounded))
            .take_while(|((s, k), _)| s == space && k.starts_with(prefix))
            .take(limit)
            .map(|((_, k), r)| (k.clone(), r.meta.clone()))
            .collect())
    }

    async fn spaces(&self) -> Result<Vec<Space>> {
        let mut out: Vec<Space> = Vec::new();
        for (space, _) in self.map.lock().keys() {
            if out.last() != Some(space) {
                out.push(space.clone());
            }
        }
        Ok(out)
    }

    async fn sync(&self) -> Result<()> {
        Ok(())
    }

    async fn close(&self) -> Result<()> {
        Ok(())
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> ExitCode {
    // One case on its own: each is a plain async function of a context.
    let factory: std::sync::Arc<dyn nadb_testkit::BackendFactory> =
        std::sync::Arc::new(|| async { Ok(BTreeBackend::new()) });
    let one = match nadb_testkit::Ctx::new(factory).await {
        Ok(ctx) => nadb_testkit::cases::crud::put_get_delete(&ctx).await,
        Err(e) => Err(e),
    };
    println!("put_get_delete on its own: {one:?}");
    if one.is_err() {
        return ExitCode::FAILURE;
    }
    println!("running the nadb conformance suite on BTreeBackend ...");
    let report = nadb_testkit::run_all(|| async { Ok(BTreeBackend::new()) }).await;
    println!("{report}");
    if report.all_passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
