//! The scheme registry: backends register a URL scheme with `inventory`, and [`open_backend`]
//! picks the backend for a URL.
//!
//! Registration happens at link time, so a backend is available exactly when its crate is
//! linked into the binary; the `nadb` facade links every enabled backend for you.

use std::sync::Arc;

use futures::future::BoxFuture;

use crate::backend::StorageBackend;
use crate::error::{Error, Result, redact_url};
use crate::memory::MemoryBackend;

/// Opens a backend from the part of a URL after `scheme://` (the full URL is passed too, for
/// messages).
pub type OpenFn = fn(rest: &str, url: &str) -> BoxFuture<'static, Result<Arc<dyn StorageBackend>>>;

/// A backend's entry in the registry; submit one with `inventory::submit!`.
///
/// ```
/// use nadb_core::registry::Registration;
/// fn open(_rest: &str, _url: &str) -> futures::future::BoxFuture<'static, nadb_core::Result<std::sync::Arc<dyn nadb_core::StorageBackend>>> {
///     Box::pin(async { Ok(std::sync::Arc::new(nadb_core::MemoryBackend::new()) as _) })
/// }
/// inventory::submit! { Registration { scheme: "doc-example", open } }
/// assert!(nadb_core::schemes().contains(&"doc-example"));
/// ```
#[derive(Debug)]
pub struct Registration {
    /// The URL scheme, without `://`.
    pub scheme: &'static str,
    /// How to open it.
    pub open: OpenFn,
}

inventory::collect!(Registration);

fn open_memory(rest: &str, url: &str) -> BoxFuture<'static, Result<Arc<dyn StorageBackend>>> {
    let result = if rest.is_empty() {
        Ok(Arc::new(MemoryBackend::new()) as Arc<dyn StorageBackend>)
    } else {
        Err(Error::InvalidUrl {
            url: redact_url(url),
            reason: "memory:// takes no path or options".into(),
        })
    };
    Box::pin(async move { result })
}

inventory::submit! { Registration { scheme: "memory", open: open_memory } }

/// Every scheme linked into this binary, sorted.
///
/// ```
/// assert!(nadb_core::schemes().contains(&"memory"));
/// ```
pub fn schemes() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = inventory::iter::<Registration>
        .into_iter()
        .map(|r| r.scheme)
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Opens the backend a URL names: `memory://`, `fs://PATH`, ...
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let b = nadb_core::open_backend("memory://").await?;
/// assert_eq!(b.info().scheme, "memory");
/// let err = nadb_core::open_backend("nope://x").await.unwrap_err();
/// assert!(err.to_string().contains("memory"));
/// # Ok::<(), nadb_core::Error>(()) }).unwrap();
/// ```
pub async fn open_backend(url: &str) -> Result<Arc<dyn StorageBackend>> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(Error::InvalidUrl {
            url: redact_url(url),
            reason: "expected SCHEME://...".into(),
        });
    };
    let valid_scheme = !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !valid_scheme {
        return Err(Error::InvalidUrl {
            url: redact_url(url),
            reason: "the scheme must be letters, digits, `+`, `-` or `.`".into(),
        });
    }
    let scheme = scheme.to_ascii_lowercase();
    match inventory::iter::<Registration>
        .into_iter()
        .find(|r| r.scheme == scheme)
    {
        Some(r) => (r.open)(rest, url).await,
        None => Err(Error::UnknownScheme {
            scheme,
            known: schemes().into_iter().map(String::from).collect(),
        }),
    }
}
