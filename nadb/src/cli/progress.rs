//! Progress bars on stderr for long commands, with counts and rates; hidden when stderr is
//! not a terminal, so logs and pipes stay clean.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::progress::Progress;

/// One bar per phase, drawn on stderr.
pub(crate) struct Bars {
    visible: bool,
    unit: &'static str,
    current: Mutex<Option<ProgressBar>>,
}

impl Bars {
    pub(crate) fn new() -> Bars {
        Bars::counting("records")
    }

    /// Bars whose counts are of `unit` (e.g. `steps`).
    pub(crate) fn counting(unit: &'static str) -> Bars {
        Bars {
            visible: std::io::stderr().is_terminal(),
            unit,
            current: Mutex::new(None),
        }
    }

    fn with(&self, f: impl FnOnce(&mut Option<ProgressBar>)) {
        // A panic elsewhere while holding the lock leaves a bar that is still safe to draw.
        let mut guard = self.current.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard);
    }

    /// A spinner for work without counts (compaction).
    pub(crate) fn spinner(&self, phase: &str) {
        self.begin(phase, None);
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar())
}

impl Progress for Bars {
    fn begin(&self, phase: &str, total: Option<u64>) {
        let bar = if !self.visible {
            ProgressBar::hidden()
        } else if let Some(total) = total {
            ProgressBar::new(total).with_style(style(&format!(
                "{{msg:>10}} [{{bar:30}}] {{human_pos}}/{{human_len}} {} ({{per_sec}}, {{elapsed_precise}}, eta {{eta}})",
                self.unit
            )))
        } else {
            ProgressBar::new_spinner().with_style(style(
                "{msg:>10} {spinner} {human_pos} ({per_sec}, {elapsed_precise})",
            ))
        };
        bar.set_message(phase.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        self.with(|cur| {
            if let Some(old) = cur.replace(bar) {
                old.finish_and_clear();
            }
        });
    }

    fn advance(&self, n: u64) {
        self.with(|cur| {
            if let Some(bar) = cur {
                bar.inc(n);
            }
        });
    }

    fn finish(&self) {
        self.with(|cur| {
            if let Some(bar) = cur.take() {
                bar.finish_and_clear();
            }
        });
    }
}
