//! Moving data: `export`, `import`, `migrate`.

use std::fs::File;
use std::io::{BufReader, Seek, SeekFrom};
use std::path::Path;

use serde_json::json;

use super::args::{ExportArgs, ImportArgs, MigrateArgs};
use super::exit::Failure;
use super::output::Output;
use super::progress::Bars;
use crate::{migrate, ndjson};

pub(crate) async fn export(
    store: &crate::Store,
    args: &ExportArgs,
    out: &mut Output,
) -> Result<(), Failure> {
    let bars = Bars::new();
    let Some(path) = &args.output else {
        // The NDJSON is the output.
        ndjson::export(store, out.writer(), &bars).await?;
        return Ok(());
    };
    // Written beside the target and renamed into place, so a failed export leaves no
    // truncated file under the name asked for.
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .map_err(|e| Failure::other(format!("cannot create a file in {}: {e}", dir.display())))?;
    let summary = ndjson::export(store, tmp.as_file_mut(), &bars).await?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| Failure::other(format!("syncing {}: {e}", path.display())))?;
    tmp.persist(path)
        .map_err(|e| Failure::other(format!("writing {}: {}", path.display(), e.error)))?;
    if out.json {
        out.json(&json!({
            "file": path,
            "spaces": summary.spaces,
            "records": summary.records,
        }))
    } else {
        out.line(format!(
            "exported {} records from {} spaces to {}",
            summary.records,
            summary.spaces,
            path.display()
        ))
    }
}

pub(crate) async fn import(
    store: &crate::Store,
    args: &ImportArgs,
    out: &mut Output,
) -> Result<(), Failure> {
    let file = match &args.input {
        Some(p) if p.as_os_str() != "-" => File::open(p)
            .map_err(|e| Failure::other(format!("cannot open {}: {e}", p.display())))?,
        _ => {
            // Import reads its input twice (validate, then write): stdin is kept in a
            // temporary file that disappears when closed.
            let mut spool = tempfile::tempfile()?;
            std::io::copy(&mut std::io::stdin().lock(), &mut spool)?;
            spool.seek(SeekFrom::Start(0))?;
            spool
        }
    };
    let bars = Bars::new();
    let summary = ndjson::import(store, BufReader::new(file), &bars).await?;
    if out.json {
        out.json(&summary)
    } else {
        out.line(format!(
            "imported {} records from {} lines ({} already expired, skipped)",
            summary.records, summary.lines, summary.expired
        ))
    }
}

pub(crate) async fn migrate(
    url: &str,
    args: &MigrateArgs,
    out: &mut Output,
) -> Result<(), Failure> {
    let from = crate::open(url).await?;
    let to = match crate::open(&args.to).await {
        Ok(to) => to,
        Err(e) => {
            let _ = from.close().await;
            return Err(e.into());
        }
    };
    let bars = Bars::new();
    let result = migrate::migrate(&from, &to, &bars).await;
    let closed_from = from.close().await;
    let closed_to = to.close().await;
    let report = result?;
    closed_from?;
    closed_to?;
    if out.json {
        out.json(&json!({
            "verified": report.verified(),
            "copied": report.copied,
            "expired": report.expired,
            "spaces": report.spaces,
        }))?;
    } else {
        for s in &report.spaces {
            out.line(s.to_string())?;
        }
        out.line(format!(
            "copied {} records in {} spaces",
            report.copied,
            report.spaces.len()
        ))?;
    }
    if report.verified() {
        Ok(())
    } else {
        let bad = report.spaces.iter().filter(|s| !s.matches()).count();
        Err(Failure::other(format!(
            "migration copied {} records but {bad} spaces differ between source and target",
            report.copied
        ))
        .after_output())
    }
}
