//! Store-wide commands without data transfer: `stats`, `compact`.

use std::time::Instant;

use serde_json::json;

use super::exit::Failure;
use super::output::Output;
use super::progress::Bars;
use crate::Store;
use crate::progress::Progress;

pub(crate) async fn stats(store: &Store, out: &mut Output) -> Result<(), Failure> {
    let stats = store.stats().await?;
    let scheme = &store.backend_info().scheme;
    if out.json {
        return out.json(&json!({
            "backend": scheme,
            "space": store.space(),
            "stats": stats,
        }));
    }
    out.line(format!("backend:            {scheme}"))?;
    out.line(format!("space:              {}", store.space()))?;
    out.line(format!("live keys:          {}", stats.live_keys))?;
    out.line(format!("live stored bytes:  {}", stats.live_stored_bytes))?;
    out.line(format!(
        "compression ratio:  {:.2}",
        stats.compression_ratio
    ))?;
    out.line(format!("expired removed:    {}", stats.expired_removed))?;
    for (op, s) in &stats.ops {
        out.line(format!("op {op}: {} calls, {} errors", s.count, s.errors))?;
    }
    Ok(())
}

pub(crate) async fn compact(store: &Store, out: &mut Output) -> Result<(), Failure> {
    let bars = Bars::new();
    bars.spinner("compacting");
    let started = Instant::now();
    let result = store.compact().await;
    bars.finish();
    result?;
    let seconds = started.elapsed().as_secs_f64();
    if out.json {
        out.json(&json!({ "compacted": true, "seconds": seconds }))
    } else {
        out.line(format!("compacted in {seconds:.2} s"))
    }
}
