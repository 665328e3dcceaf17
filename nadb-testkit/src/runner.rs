//! Running cases: one at a time ([`run_case`]), all of them into a [`Report`] ([`run_all`]),
//! or as a `cargo test` harness ([`harness_main`], what [`conformance!`](crate::conformance)
//! expands to).

use std::fmt;
use std::process::ExitCode;
use std::sync::Arc;

use libtest_mimic::{Arguments, Failed, Trial};

use crate::case::{Case, Ctx, StoreMode, policies};
use crate::cases;
use crate::factory::BackendFactory;

/// How a case ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every assertion held.
    Passed,
    /// An assertion failed or an error came back; the message says which.
    Failed(String),
    /// The backend lacks a capability the case needs; the case did not run.
    Skipped(String),
}

/// Runs one case against a fresh backend from `factory`, in a fresh space, with stores in
/// `mode`, and cleans up. A panic inside the case is caught and reported as
/// [`Outcome::Failed`].
pub async fn run_case(case: &Case, factory: Arc<dyn BackendFactory>, mode: StoreMode) -> Outcome {
    let ctx = match Ctx::with_mode(factory, mode).await {
        Ok(ctx) => Arc::new(ctx),
        Err(e) => return Outcome::Failed(format!("opening the backend failed: {e}")),
    };
    if let Some(need) = case.missing(&ctx.backend().info().capabilities) {
        return Outcome::Skipped(format!("backend lacks capability `{need}`"));
    }
    let run = case.run;
    let task_ctx = ctx.clone();
    let joined = tokio::spawn(async move { run(&task_ctx).await }).await;
    let outcome = match joined {
        Ok(Ok(())) => Outcome::Passed,
        Ok(Err(e)) => Outcome::Failed(format!("returned error: {e}")),
        Err(join) => Outcome::Failed(match join.try_into_panic() {
            Ok(p) => p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panicked".into()),
            Err(_) => "cancelled".into(),
        }),
    };
    match (outcome, ctx.cleanup().await) {
        (Outcome::Passed, Err(e)) => Outcome::Failed(format!("cleanup failed: {e}")),
        (outcome, _) => outcome,
    }
}

/// The outcome of every case, in suite order.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// `(policy/case name, outcome)`.
    pub results: Vec<(String, Outcome)>,
}

impl Report {
    /// Number of cases with each outcome: (passed, failed, skipped).
    pub fn counts(&self) -> (usize, usize, usize) {
        self.results
            .iter()
            .fold((0, 0, 0), |(p, f, s), (_, o)| match o {
                Outcome::Passed => (p + 1, f, s),
                Outcome::Failed(_) => (p, f + 1, s),
                Outcome::Skipped(_) => (p, f, s + 1),
            })
    }

    /// Whether no case failed.
    pub fn all_passed(&self) -> bool {
        self.counts().1 == 0
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, outcome) in &self.results {
            match outcome {
                Outcome::Passed => writeln!(f, "  ok       {name}")?,
                Outcome::Failed(m) => writeln!(f, "  FAILED   {name}: {m}")?,
                Outcome::Skipped(m) => writeln!(f, "  skipped  {name}: {m}")?,
            }
        }
        let (p, fl, s) = self.counts();
        write!(f, "{p} passed, {fl} failed, {s} skipped")
    }
}

/// Runs every case of the suite in every store mode, one after another, and reports.
///
/// ```
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// let report = nadb_testkit::run_all(|| async { Ok(nadb_core::MemoryBackend::new()) }).await;
/// assert!(report.all_passed(), "{report}");
/// # });
/// ```
pub async fn run_all(factory: impl BackendFactory) -> Report {
    let factory: Arc<dyn BackendFactory> = Arc::new(factory);
    let mut report = Report::default();
    for (policy_name, policy) in policies() {
        for case in cases::all() {
            let outcome = run_case(&case, factory.clone(), policy).await;
            report
                .results
                .push((format!("{policy_name}/{}", case.name), outcome));
        }
    }
    report
}

/// The `main` of a conformance test target (`harness = false`): one test per case and store
/// mode, named `BACKEND::MODE::CASE`, with `cargo test`'s filters and output. `make_factory` is called once
/// per case, so each case may get storage of its own (a fresh temporary directory, say).
///
/// A case whose capability is missing is listed as *ignored* with a `[skipped: ...]` label and
/// a line on stdout — it is never counted as passed. Run with `--include-ignored` to force it:
/// it then fails, saying what is missing.
pub fn harness_main<M, F>(backend: &str, make_factory: M) -> ExitCode
where
    M: Fn() -> F + Send + Sync + 'static,
    F: BackendFactory,
{
    harness_main_with_index(backend, make_factory, None)
}

/// [`harness_main`] with every store paired with the index `index` makes (e.g. the filesystem
/// backend with a `SqliteIndex`).
pub fn harness_main_with_index<M, F>(
    backend: &str,
    make_factory: M,
    index: Option<crate::case::IndexFactory>,
) -> ExitCode
where
    M: Fn() -> F + Send + Sync + 'static,
    F: BackendFactory,
{
    let args = Arguments::from_args();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => Arc::new(rt),
        Err(e) => {
            eprintln!("cannot start a tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let caps = match runtime.block_on(async {
        // The factory may own the storage (a temporary directory): keep it until closed.
        let factory = make_factory();
        let b = factory.open().await?;
        let caps = b.info().capabilities;
        b.close().await?;
        drop(factory);
        Ok::<_, nadb_core::Error>(caps)
    }) {
        Ok(caps) => caps,
        Err(e) => {
            eprintln!("cannot open the {backend} backend: {e}");
            return ExitCode::FAILURE;
        }
    };
    let make_factory = Arc::new(make_factory);
    let trials = policies()
        .into_iter()
        .map(|(name, mode)| (name, StoreMode { index, ..mode }))
        .flat_map(|(policy_name, policy)| {
            cases::all()
                .into_iter()
                .map(move |c| (policy_name, policy, c))
        })
        .map(|(policy_name, policy, case)| {
            let name = format!("{backend}::{policy_name}::{}", case.name);
            let rt = runtime.clone();
            let make = make_factory.clone();
            let trial = Trial::test(name.clone(), move || {
                let factory: Arc<dyn BackendFactory> = Arc::new(make());
                match rt.block_on(run_case(&case, factory, policy)) {
                    Outcome::Passed => Ok(()),
                    Outcome::Failed(m) => Err(Failed::from(m)),
                    Outcome::Skipped(m) => Err(Failed::from(format!("cannot run: {m}"))),
                }
            });
            match case.missing(&caps) {
                Some(need) => {
                    println!("skipped: {name} (backend lacks capability `{need}`)");
                    trial
                        .with_ignored_flag(true)
                        .with_kind(format!("skipped: needs {need}"))
                }
                None => trial,
            }
        })
        .collect();
    libtest_mimic::run(&args, trials).exit_code()
}
