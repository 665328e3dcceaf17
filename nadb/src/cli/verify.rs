//! `verify`: the store's records and index checked, problems listed, exit 3 when any.

use serde_json::json;

use super::exit::Failure;
use super::output::Output;
use super::progress::Bars;
use crate::Error;
use crate::verify::{Problem, VerifyReport};

pub(crate) async fn verify(url: &str, out: &mut Output) -> Result<(), Failure> {
    let report = match crate::open(url).await {
        Ok(store) => {
            let result = crate::verify::verify(&store, &Bars::new()).await;
            let closed = store.close().await;
            let report = result?;
            closed?;
            report
        }
        // Damage found while opening is what verify looks for: report it like any other.
        Err(e @ Error::Corrupt { .. }) => VerifyReport {
            problems: vec![Problem::from_error(None, None, &e)],
            ..VerifyReport::default()
        },
        Err(e) => return Err(e.into()),
    };
    if out.json {
        out.json(&json!({
            "ok": report.is_ok(),
            "spaces": report.spaces,
            "records": report.records,
            "problems": report.problems,
        }))?;
    } else {
        out.line(format!(
            "checked {} records in {} spaces: {} problems",
            report.records,
            report.spaces,
            report.problems.len()
        ))?;
        for p in &report.problems {
            out.line(describe(p))?;
        }
    }
    if report.is_ok() {
        Ok(())
    } else {
        Err(Failure::other(format!(
            "verify found {} problems; first: {}",
            report.problems.len(),
            report.problems.first().map(describe).unwrap_or_default()
        ))
        .after_output())
    }
}

fn describe(p: &Problem) -> String {
    let mut s = String::from("  ");
    if let Some(space) = &p.space {
        s.push_str(&format!("{space} "));
    }
    if let Some(key) = &p.key {
        s.push_str(&format!("key {key:?} "));
    }
    if let Some(location) = &p.location {
        s.push_str(&format!("in {location} "));
    }
    if let Some(offset) = p.offset {
        s.push_str(&format!("at offset {offset} "));
    }
    s.push_str(&format!("- {}", p.reason));
    s.trim_start().to_string()
}
