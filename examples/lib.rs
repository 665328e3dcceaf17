//! Runnable examples of nadb: `cargo run -p nadb-examples --example NAME`.
//!
//! - `quickstart`: the main tour on the embedded default store.
//! - `custom_backend`: a backend written from scratch, proven with the conformance suite.
