//! What a run had done when it was stopped: which sources had published which days, which were
//! still pulling (and so publish nothing of this run), and which had not begun. Kept by an
//! observer in front of the one that draws progress, so that a signal can be answered with a
//! per-source account instead of a general sentence.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use kpipe_core::DateWindow;

use crate::runner::RunObserver;
use crate::summary::{SourceStatus, SourceSummary};

/// Where one source stood.
#[derive(Debug, Clone, Default, PartialEq)]
struct SourceProgress {
    /// Windows committed (published; the ledger records them right after), with their rows.
    published: Vec<(DateWindow, u64)>,
    /// The window being pulled, not committed.
    pulling: Option<DateWindow>,
    /// A window that failed, with why.
    failed: Option<(DateWindow, String)>,
}

/// A [`RunObserver`] that remembers each source's progress and passes every event on.
pub struct RunProgress {
    inner: Arc<dyn RunObserver>,
    sources: Mutex<BTreeMap<String, SourceProgress>>,
}

impl std::fmt::Debug for RunProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunProgress").field("sources", &self.sources).finish_non_exhaustive()
    }
}

impl RunProgress {
    /// Observes for `inner`; `sources` are the names the run may start, so that one that never
    /// began is reported too.
    pub fn new(inner: Arc<dyn RunObserver>, sources: impl IntoIterator<Item = String>) -> Self {
        let sources = sources.into_iter().map(|name| (name, SourceProgress::default())).collect();
        RunProgress { inner, sources: Mutex::new(sources) }
    }

    /// One line per source: what is published and what is not.
    pub fn report(&self) -> String {
        let Ok(sources) = self.sources.lock() else {
            return String::new();
        };
        let width = sources.keys().map(String::len).max().unwrap_or(0);
        let mut out = String::new();
        for (name, progress) in sources.iter() {
            let mut parts = Vec::new();
            for (window, rows) in &progress.published {
                parts.push(format!("published {window} ({rows} rows)"));
            }
            if let Some((window, error)) = &progress.failed {
                parts.push(format!("failed on {window}, nothing of it published: {error}"));
            }
            if let Some(window) = progress.pulling {
                parts.push(format!("interrupted while pulling {window}: nothing of it published"));
            }
            if parts.is_empty() {
                parts.push("not started".to_owned());
            }
            let _ = writeln!(out, "  {name:<width$}  {}", parts.join("; "));
        }
        out
    }

    fn update(&self, source: &str, change: impl FnOnce(&mut SourceProgress)) {
        if let Ok(mut sources) = self.sources.lock() {
            change(sources.entry(source.to_owned()).or_default());
        }
    }
}

impl RunObserver for RunProgress {
    fn started(&self, source: &str, window: DateWindow) {
        self.update(source, |p| p.pulling = Some(window));
        self.inner.started(source, window);
    }

    fn rows(&self, source: &str, rows: u64) {
        self.inner.rows(source, rows);
    }

    fn finished(&self, summary: &SourceSummary) {
        self.update(&summary.name, |p| {
            let window = p.pulling.take().or(summary.window);
            match (window, summary.status) {
                (Some(window), SourceStatus::Failed) => {
                    p.failed = Some((window, summary.error.clone().unwrap_or_default()));
                }
                (Some(window), SourceStatus::Succeeded | SourceStatus::Partial) => {
                    p.published.push((window, summary.rows_written));
                }
                _ => {}
            }
        });
        self.inner.finished(summary);
    }

    fn run_started(&self, run_id: &str, sources: &[String]) {
        self.inner.run_started(run_id, sources);
    }

    fn source_done(&self, source: &str) {
        self.inner.source_done(source);
    }
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;
    use crate::runner::Quiet;

    fn window(from: u32, to: u32) -> DateWindow {
        let day = |d| NaiveDate::from_ymd_opt(2026, 3, d).unwrap_or_default();
        DateWindow::new(day(from), day(to)).unwrap_or_else(|e| panic!("{e:?}"))
    }

    #[test]
    fn each_source_is_reported_as_published_interrupted_failed_or_not_started() {
        let names = ["li", "fb", "ga", "sheet"].map(str::to_owned);
        let progress = RunProgress::new(Arc::new(Quiet), names);
        progress.started("li", window(1, 7));
        let mut li = SourceSummary::new("li", "linkedin");
        li.status = SourceStatus::Succeeded;
        li.rows_written = 420;
        progress.finished(&li);
        progress.started("li", window(8, 14));
        progress.started("fb", window(1, 14));
        progress.started("sheet", window(1, 14));
        let mut sheet = SourceSummary::new("sheet", "files");
        sheet.status = SourceStatus::Failed;
        sheet.error = Some("no file matches data/*.csv".into());
        progress.finished(&sheet);

        let report = progress.report();
        let line = |name: &str| {
            report.lines().find(|l| l.trim_start().starts_with(name)).unwrap_or_default().to_owned()
        };
        assert!(
            line("li").contains("published 2026-03-01..=2026-03-07 (420 rows)")
                && line("li").contains("interrupted while pulling 2026-03-08..=2026-03-14"),
            "{report}"
        );
        assert!(line("fb").contains("interrupted while pulling 2026-03-01..=2026-03-14"), "{report}");
        assert!(line("ga").contains("not started"), "{report}");
        assert!(line("sheet").contains("failed on 2026-03-01..=2026-03-14"), "{report}");
        assert!(line("sheet").contains("no file matches"), "{report}");
    }
}
