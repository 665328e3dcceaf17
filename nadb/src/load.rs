//! Writing records into a store in batches: import and migration share it.
//!
//! A batch is one transaction on one space, so it lands whole or not at all, and it is
//! flushed before the next starts, so everything before a failed batch is durable.

use nadb_core::{Clock, Error, Result, SetOptions, SystemClock};

use crate::Store;
use crate::walk::Entry;

/// Writes `records` into `space_store`'s space as one transaction and flushes. Records already
/// expired are left out and counted: the returned number is how many were skipped.
pub(crate) async fn write_batch(space_store: &Store, records: &[Entry]) -> Result<u64> {
    // A record can expire between the check and the commit, which then refuses the whole
    // batch with `InvalidTtl` before writing anything: check again and retry.
    let mut attempts = 0;
    loop {
        attempts += 1;
        let now = SystemClock.now();
        let mut tx = space_store.begin();
        let mut expired = 0;
        for r in records {
            let mut opts = SetOptions::new().tags(r.tags.iter().cloned());
            match r.expires_at {
                Some(at) if at <= now => {
                    expired += 1;
                    continue;
                }
                Some(at) => opts = opts.expires_at(at),
                None => {}
            }
            tx.set_with(&r.key, r.value.clone(), &opts)?;
        }
        if tx.is_empty() {
            return Ok(expired);
        }
        match tx.commit().await {
            Ok(()) => {
                space_store.flush().await?;
                return Ok(expired);
            }
            Err(Error::InvalidTtl { .. }) if attempts < 3 => continue,
            Err(e) => return Err(e),
        }
    }
}
