//! Runnable examples of nadb: `cargo run -p nadb-examples --example NAME`.
//!
//! - `quickstart`: the main tour on the embedded default store.
//! - `custom_backend`: a backend written from scratch, proven with the conformance suite.
//! - `tags_and_ttl`: tag queries (all / any, paged), tag counts, delete by tag, expiry.
//! - `ingest`: a buffered bulk load with progress, then one flush to make it durable.
//! - `transaction`: all-or-nothing transfers, rollback, conflicts and retried transactions.
//! - `migrate`: an fs store copied to SQLite and checked, and the same through NDJSON.
#![deny(missing_docs)]
