//! The dead-letter queue as callers see it: inspect, retry, clear.

use super::{DeadLetter, DlqSummary, Store};
use crate::error::Result;

impl Store {
    /// The batches the backend refused after retries, in write order, oldest first (with their
    /// values).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = nadb_core::Store::open("memory://").await?;
    /// assert!(store.dlq().is_empty());
    /// # Ok::<(), nadb_core::Error>(()) }).unwrap();
    /// ```
    pub fn dlq(&self) -> Vec<DeadLetter> {
        self.engine.pipeline.dlq()
    }

    /// Counts of the dead-letter queue, without payloads.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = nadb_core::Store::open("memory://").await?;
    /// assert_eq!(store.dlq_summary().entries, 0);
    /// # Ok::<(), nadb_core::Error>(()) }).unwrap();
    /// ```
    pub fn dlq_summary(&self) -> DlqSummary {
        self.engine.pipeline.dlq_summary()
    }

    /// Submits every dead-lettered write again, in order, and flushes. A write that a newer,
    /// not yet applied write of the same key supersedes is not sent: it leaves the queue when
    /// that write persists. Returns the number of ops resubmitted; fails like [`Store::flush`]
    /// if the backend refuses them again (they are then dead-lettered again).
    pub async fn retry_dlq(&self) -> Result<u64> {
        self.check_open()?;
        self.engine.retry_dlq().await
    }

    /// Drops every dead-lettered write; returns how many batches. Their values stop being
    /// readable, so reads agree with the backend again.
    pub fn clear_dlq(&self) -> u64 {
        self.engine.pipeline.clear_dlq()
    }
}
