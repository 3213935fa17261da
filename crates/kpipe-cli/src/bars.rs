//! Progress spinners on a terminal, one per source.

use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use kpipe_cli::{RunObserver, SourceSummary};
use kpipe_core::DateWindow;

/// Spinners on a terminal, one per source.
#[derive(Default)]
pub(crate) struct Bars {
    multi: MultiProgress,
    bars: Mutex<Vec<(String, ProgressBar)>>,
}

impl Bars {
    fn bar(&self, source: &str) -> Option<ProgressBar> {
        let bars = self.bars.lock().ok()?;
        bars.iter().find(|(n, _)| n == source).map(|(_, b)| b.clone())
    }
}

impl RunObserver for Bars {
    fn started(&self, source: &str, window: DateWindow) {
        let bar = self.multi.add(ProgressBar::new_spinner());
        if let Ok(style) = ProgressStyle::with_template("{spinner} {prefix:<16} {msg}") {
            bar.set_style(style);
        }
        bar.set_prefix(source.to_owned());
        bar.set_message(format!("pulling {window}"));
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        if let Ok(mut bars) = self.bars.lock() {
            bars.push((source.to_owned(), bar));
        }
    }

    fn rows(&self, source: &str, rows: u64) {
        if let Some(bar) = self.bar(source) {
            bar.set_message(format!("{rows} rows written"));
        }
    }

    fn finished(&self, summary: &SourceSummary) {
        if let Some(bar) = self.bar(&summary.name) {
            bar.finish_with_message(
                format!("{:?}: {} rows", summary.status, summary.rows_written).to_lowercase(),
            );
        }
    }
}
