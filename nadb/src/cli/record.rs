//! Single-key commands: `set`, `get`, `del`, `exists`, `meta`.

use std::io::Read;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::json;

use super::args::SetArgs;
use super::exit::Failure;
use super::output::Output;
use super::ttl::parse_ttl;
use crate::{KeyTtl, SetOptions, Store, Timestamp};

/// A value as JSON: text when it is UTF-8, else base64 under `value_b64` (as NDJSON has it).
fn value_json(key: &str, value: &[u8]) -> serde_json::Value {
    match std::str::from_utf8(value) {
        Ok(text) => json!({ "key": key, "value": text }),
        Err(_) => json!({ "key": key, "value_b64": BASE64.encode(value) }),
    }
}

pub(crate) async fn set(store: &Store, args: SetArgs, out: &mut Output) -> Result<(), Failure> {
    let mut opts = SetOptions::new().tags(args.tags.iter().cloned());
    if let Some(ttl) = &args.ttl {
        opts = opts.ttl(parse_ttl(ttl).map_err(Failure::usage)?);
    }
    let value = match args.value {
        None => read_stdin()?,
        Some(v) if v == "-" => read_stdin()?,
        Some(v) => v.into_bytes(),
    };
    let len = value.len();
    store.set_with(&args.key, value, &opts).await?;
    if out.json {
        out.json(&json!({ "key": args.key, "bytes": len }))?;
    }
    Ok(())
}

fn read_stdin() -> Result<Vec<u8>, Failure> {
    let mut buf = Vec::new();
    std::io::stdin()
        .lock()
        .read_to_end(&mut buf)
        .map_err(|e| Failure::other(format!("reading the value from stdin: {e}")))?;
    Ok(buf)
}

pub(crate) async fn get(store: &Store, key: &str, out: &mut Output) -> Result<(), Failure> {
    let value = store
        .get(key)
        .await?
        .ok_or_else(|| Failure::not_found(key))?;
    if out.json {
        out.json(&value_json(key, &value))
    } else {
        out.raw(&value)
    }
}

pub(crate) async fn del(store: &Store, key: &str, out: &mut Output) -> Result<(), Failure> {
    let deleted = store.delete(key).await?;
    if out.json {
        out.json(&json!({ "key": key, "deleted": deleted }))?;
    }
    if deleted {
        Ok(())
    } else {
        Err(Failure::not_found(key).after_output())
    }
}

pub(crate) async fn exists(store: &Store, key: &str, out: &mut Output) -> Result<(), Failure> {
    let exists = store.exists(key).await?;
    if out.json {
        out.json(&json!({ "key": key, "exists": exists }))?;
    } else {
        out.line(if exists { "true" } else { "false" })?;
    }
    if exists {
        Ok(())
    } else {
        Err(Failure::not_found(key).after_output())
    }
}

pub(crate) async fn meta(store: &Store, key: &str, out: &mut Output) -> Result<(), Failure> {
    let record = store
        .get_with_metadata(key)
        .await?
        .ok_or_else(|| Failure::not_found(key))?;
    let m = &record.meta;
    let ttl_ms = match store.ttl(key).await? {
        Some(KeyTtl::Remaining(d)) => Some(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        _ => None,
    };
    if out.json {
        return out.json(&json!({
            "key": key,
            "value_len": m.value_len,
            "stored_len": m.stored_len,
            "codec": m.codec,
            "created_at": m.created_at,
            "updated_at": m.updated_at,
            "expires_at": m.expires_at,
            "ttl_ms": ttl_ms,
            "tags": &*m.tags,
            "version": m.version,
        }));
    }
    let ms = |t: Timestamp| format!("{} ms since the epoch", t.as_millis());
    out.line(format!("key:        {key}"))?;
    out.line(format!("size:       {} bytes", m.value_len))?;
    out.line(format!(
        "stored:     {} bytes ({:?})",
        m.stored_len, m.codec
    ))?;
    out.line(format!("created:    {}", ms(m.created_at)))?;
    out.line(format!("updated:    {}", ms(m.updated_at)))?;
    match (m.expires_at, ttl_ms) {
        (Some(at), Some(left)) => out.line(format!(
            "expires:    {} (in {} s)",
            ms(at),
            left.div_ceil(1000)
        ))?,
        (Some(at), None) => out.line(format!("expires:    {}", ms(at)))?,
        (None, _) => out.line("expires:    never")?,
    }
    out.line(format!("tags:       {}", m.tags.join(", ")))?;
    out.line(format!("version:    {}", m.version))?;
    Ok(())
}
