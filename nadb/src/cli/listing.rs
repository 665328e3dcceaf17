//! Listing commands: `keys`, `tags`, `query`. Keys are streamed page by page, so a large space
//! is listed in bounded memory, also as JSON.

use std::io::Write;

use super::args::{KeysArgs, QueryArgs};
use super::exit::Failure;
use super::output::Output;
use crate::{Page, Store, TagMode};

/// Keys fetched per page.
const PAGE: usize = 1000;

/// Streams keys from `next_page(cursor, limit)` as lines, or as `{"keys":[…]}`.
async fn list<F, Fut>(out: &mut Output, limit: Option<u64>, mut next_page: F) -> Result<(), Failure>
where
    F: FnMut(Option<String>, usize) -> Fut,
    Fut: std::future::Future<Output = crate::Result<Page<String>>>,
{
    let mut left = limit.unwrap_or(u64::MAX);
    let mut cursor = None;
    let mut first = true;
    if out.json {
        out.raw(b"{\"keys\":[")?;
    }
    while left > 0 {
        let want = usize::try_from(left.min(PAGE as u64)).unwrap_or(PAGE);
        let page = next_page(cursor.take(), want).await?;
        left -= page.items.len() as u64;
        for key in &page.items {
            if out.json {
                if !first {
                    out.raw(b",")?;
                }
                serde_json::to_writer(out.writer(), key).map_err(std::io::Error::from)?;
            } else {
                out.writer().write_all(key.as_bytes())?;
                out.raw(b"\n")?;
            }
            first = false;
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    if out.json {
        out.raw(b"]}\n")?;
    }
    Ok(())
}

pub(crate) async fn keys(store: &Store, args: &KeysArgs, out: &mut Output) -> Result<(), Failure> {
    let prefix = args.prefix.as_str();
    list(out, args.limit, |cursor, limit| async move {
        store.scan(prefix, cursor.as_deref(), limit).await
    })
    .await
}

pub(crate) async fn query(
    store: &Store,
    args: &QueryArgs,
    out: &mut Output,
) -> Result<(), Failure> {
    let mode = if args.any { TagMode::Any } else { TagMode::All };
    let tags = args.tags.as_slice();
    list(out, args.limit, |cursor, limit| async move {
        store
            .query_by_tags(tags, mode, cursor.as_deref(), limit)
            .await
    })
    .await
}

pub(crate) async fn tags(store: &Store, out: &mut Output) -> Result<(), Failure> {
    let tags = store.list_tags().await?;
    if out.json {
        return out.json(&serde_json::json!({ "tags": tags }));
    }
    for (tag, count) in tags {
        out.line(format!("{tag}\t{count}"))?;
    }
    Ok(())
}
