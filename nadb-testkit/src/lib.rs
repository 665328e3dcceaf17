//! # nadb-testkit
//!
//! The conformance suite every nadb backend runs — ours and yours — plus the tools it is
//! built from: a random-operation model test, [`FaultyBackend`] for fault injection and
//! [`MockClock`] for deterministic expiry.
//!
//! ## Running the suite on a backend
//!
//! Add a test target with `harness = false` and one line:
//!
//! ```toml
//! [[test]]
//! name = "conformance"
//! harness = false
//! ```
//!
//! ```no_run
//! // tests/conformance.rs
//! nadb_testkit::conformance!(memory, || async { Ok(nadb_core::MemoryBackend::new()) });
//! ```
//!
//! `cargo test` then lists one test per case and flush policy
//! (`memory::immediate::put_get_delete`, `memory::manual::put_get_delete`, ...). The second
//! argument is evaluated once per case and must be a [`BackendFactory`]: a closure that opens
//! the backend, and opens *the same storage* again when called after a close. A case whose
//! capability the backend lacks is shown as ignored with a `[skipped: needs ...]` label —
//! never as passed.
//!
//! Each case runs in a fresh random [`Space`](nadb_core::Space) with a [`MockClock`], and
//! removes what it wrote when it ends.
//!
//! ## Running cases by hand
//!
//! Every case is a public async function in [`cases`]; [`run_all`] runs them all and returns
//! a printable [`Report`]:
//!
//! ```
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use nadb_testkit::{cases, Ctx};
//! let ctx = Ctx::new(Arc::new(|| async { Ok(nadb_core::MemoryBackend::new()) })).await?;
//! cases::crud::put_get_delete(&ctx).await?;
//! ctx.cleanup().await?;
//! # Ok::<(), nadb_core::Error>(()) }).unwrap();
//! ```
#![deny(missing_docs)]

mod case;
pub mod cases;
mod factory;
mod faulty;
pub mod process;
pub mod redis;
mod runner;

pub use case::{Case, CaseFn, Ctx, IndexFactory, Need, StoreMode, policies, random_space};
pub use factory::BackendFactory;
pub use faulty::{Fault, FaultOp, FaultyBackend};
pub use nadb_core::MockClock;
pub use runner::{Outcome, Report, harness_main, harness_main_with_index, run_all, run_case};

/// Expands to the `main` of a conformance test target (`harness = false`), running every case
/// against the backend the factory expression opens. See the [crate docs](crate).
///
/// ```no_run
/// nadb_testkit::conformance!(memory, || async { Ok(nadb_core::MemoryBackend::new()) });
/// ```
#[macro_export]
macro_rules! conformance {
    ($name:ident, $factory:expr $(,)?) => {
        fn main() -> ::std::process::ExitCode {
            $crate::harness_main(::std::stringify!($name), || $factory)
        }
    };
    ($name:ident, $factory:expr, index = $index:expr $(,)?) => {
        fn main() -> ::std::process::ExitCode {
            $crate::harness_main_with_index(::std::stringify!($name), || $factory, Some($index))
        }
    };
}
