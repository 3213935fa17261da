//! `kpipe report`: a self-contained HTML report of the stored KPIs (docs/report.md): trends by
//! week and month, platforms side by side, the buyer's-journey and social-selling funnels,
//! spend with ROI by platform and campaign, each currency apart, and the reason for every empty
//! value.

mod cards;
mod data;
mod explain;
mod format;
mod html;
mod model;
mod sections;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use kpipe_core::NaiveDate;
use kpipe_kpi::{Grain, KpiRow, Scope};

pub use explain::NoValue;
use model::{Charts, KpiInput, KpiSection};

/// Exit code for a usage or configuration error: nothing was written.
const EXIT_USAGE: u8 = 2;

/// `kpipe report -c FILE [--from --to] [--out report.html]`.
#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// The configuration file.
    #[arg(short, long)]
    pub config: PathBuf,
    /// First day (YYYY-MM-DD); default: the first stored KPI period.
    #[arg(long, value_parser = crate::config::parse_date)]
    pub from: Option<NaiveDate>,
    /// Last day (YYYY-MM-DD); default: the last stored KPI period.
    #[arg(long, value_parser = crate::config::parse_date)]
    pub to: Option<NaiveDate>,
    /// The HTML file to write.
    #[arg(long, default_value = "report.html")]
    pub out: PathBuf,
}

/// Why no report was written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The output cannot be opened (a bad location or store options).
    #[error("pipeline.output: {0}")]
    Output(#[from] kpipe_sink_parquet::StorageError),
    /// Nothing to report.
    #[error("no KPIs in {output} ({format} format): run `kpipe run` or `kpipe kpis` first")]
    NoKpis {
        /// The output.
        output: String,
        /// The output's format (`pipeline.format`).
        format: &'static str,
    },
    /// `--from` after `--to`.
    #[error("--from {from} is after --to {to}")]
    Window {
        /// First day asked for.
        from: NaiveDate,
        /// Last day asked for.
        to: NaiveDate,
    },
    /// No stored period overlaps the window.
    #[error("no KPI period overlaps {from}..{to}")]
    NoPeriods {
        /// First day.
        from: NaiveDate,
        /// Last day.
        to: NaiveDate,
    },
    /// A KPI file could not be read.
    #[error("cannot read the KPIs: {0}")]
    Kpis(#[from] kpipe_kpi::KpiError),
    /// A metric file could not be read.
    #[error("cannot read the metrics: {0}")]
    Metrics(#[from] kpipe_core::SinkError),
    /// A sum left the range of `DECIMAL(38, 18)`.
    #[error("the sum of {what} over the window is out of range")]
    Overflow {
        /// What was summed.
        what: String,
    },
    /// The page could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl ReportError {
    /// The exit code of `kpipe report` for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            ReportError::Output(_) | ReportError::Window { .. } => EXIT_USAGE,
            _ => 1,
        }
    }
}

/// What [`write_report`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportOutcome {
    /// The HTML file.
    pub path: PathBuf,
    /// First day of the window.
    pub from: NaiveDate,
    /// Last day of the window.
    pub to: NaiveDate,
    /// Weeks in the window.
    pub weeks: usize,
    /// Months in the window.
    pub months: usize,
    /// KPI sections (a KPI in several currencies has one per currency).
    pub kpis: usize,
    /// Charts drawn by the page.
    pub charts: usize,
    /// Chart places without a chart, each with its reason.
    pub empty_charts: usize,
}

impl std::fmt::Display for ReportOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "report {}..{}: {} KPI(s), {} week(s), {} month(s), {} chart(s) ({} without data, explained) in {}",
            self.from,
            self.to,
            self.kpis,
            self.weeks,
            self.months,
            self.charts,
            self.empty_charts,
            self.path.display()
        )
    }
}

/// The report, ready to be rendered.
#[derive(Debug)]
pub(crate) struct Report {
    output: String,
    format: &'static str,
    from: NaiveDate,
    to: NaiveDate,
    weeks: usize,
    months: usize,
    generated_at: String,
    report_currency: Option<String>,
    kpi_rows: usize,
    metric_rows: usize,
    metric_files: usize,
    kpis: Vec<KpiSection>,
    journey: sections::Journey,
    social: sections::Social,
    money: sections::Money,
    charts: Charts,
}

/// Reads the KPIs and metrics of `cfg`'s output over `from..=to` (by default every stored
/// day) and writes the HTML report to `out` (replaced whole: written beside it, then renamed).
pub fn write_report(
    cfg: &crate::Config,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    out: &Path,
) -> Result<ReportOutcome, ReportError> {
    let storage = cfg.pipeline.open_storage()?;
    let format = cfg.pipeline.format;
    let window = data::window(&storage, &cfg.pipeline.output.to_string(), format, from, to)?;
    let catalog = &cfg.kpis.catalog;
    let per_account = |kpi: &str| catalog.get(kpi).is_some_and(|d| explain::needs_single_counts(&d.formula));
    let kpi_data = data::read_kpis(&storage, &window, &per_account)?;
    let metrics = data::read_metrics(&storage, format, &window)?;
    tracing::info!(
        from = %window.from, to = %window.to, kpi_rows = kpi_data.rows_read, metric_rows = metrics.rows,
        "report data read"
    );

    let platforms: Vec<String> = {
        let mut set: BTreeSet<String> =
            kpi_data.rows.iter().filter_map(|r| r.platform.as_deref().map(str::to_owned)).collect();
        set.extend(metrics.by_platform.keys().map(|(p, _, _)| p.clone()));
        set.into_iter().collect()
    };
    let mut charts = Charts::default();
    let mut kpis = Vec::new();
    for (name, currency, rows) in group_by_kpi(&kpi_data.rows, catalog) {
        let def = catalog.get(&name);
        let input = KpiInput {
            name: &name,
            description: def.map_or("", |d| d.description.as_str()),
            formula: def.map(|d| d.formula.as_str()),
            currency: currency.as_deref(),
            rows,
        };
        kpis.extend(model::kpi_section(&input, &platforms, &window, &mut charts));
    }
    let journey = sections::journey(&metrics, &kpis, &mut charts);
    let social = sections::social(&metrics, &kpis, &platforms, &mut charts);
    let money = sections::money(&metrics, &kpi_data.totals, &platforms, &window, &mut charts);
    let empty_charts = kpis
        .iter()
        .flat_map(|k| &k.charts)
        .chain([&journey.chart, &social.chart])
        .filter(|s| matches!(s, model::Slot::Empty { .. }))
        .count();
    let report = Report {
        output: cfg.pipeline.output.to_string(),
        format: format.name(),
        from: window.from,
        to: window.to,
        weeks: window.periods(Grain::Week).len(),
        months: window.periods(Grain::Month).len(),
        generated_at: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
        report_currency: cfg.kpis.settings.currency.as_ref().map(|c| c.report.as_str().to_owned()),
        kpi_rows: kpi_data.rows_read,
        metric_rows: metrics.rows,
        metric_files: metrics.files,
        kpis,
        journey,
        social,
        money,
        charts,
    };
    write_file(out, &html::page(&report))?;
    Ok(ReportOutcome {
        path: out.to_path_buf(),
        from: report.from,
        to: report.to,
        weeks: report.weeks,
        months: report.months,
        kpis: report.kpis.len(),
        charts: report.charts.all().len(),
        empty_charts,
    })
}

/// The week and month rows per KPI and currency, in catalog order (then KPIs no longer
/// defined, by name).
fn group_by_kpi<'a>(
    rows: &'a [KpiRow],
    catalog: &kpipe_kpi::Catalog,
) -> Vec<(String, Option<String>, Vec<&'a KpiRow>)> {
    let mut keys: BTreeSet<(usize, String, Option<String>)> = BTreeSet::new();
    let order: Vec<&str> = catalog.definitions().map(|d| d.name.as_str()).collect();
    for r in rows.iter().filter(|r| matches!(r.scope, Scope::All | Scope::Platform)) {
        let at = order.iter().position(|n| *n == r.kpi.as_str()).unwrap_or(order.len());
        keys.insert((at, r.kpi.to_string(), r.currency.map(|c| c.as_str().to_owned())));
    }
    keys.into_iter()
        .map(|(_, name, currency)| {
            let of: Vec<&KpiRow> = rows
                .iter()
                .filter(|r| r.kpi.as_str() == name && r.currency.map(|c| c.as_str().to_owned()) == currency)
                .collect();
            (name, currency, of)
        })
        .collect()
}

fn write_file(out: &Path, page: &str) -> Result<(), ReportError> {
    let fail = |source| ReportError::Write { path: out.to_path_buf(), source };
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let mut staged = out.as_os_str().to_owned();
    staged.push(".partial");
    let staged = PathBuf::from(staged);
    std::fs::write(&staged, page).map_err(fail)?;
    std::fs::rename(&staged, out).map_err(|e| {
        let _ = std::fs::remove_file(&staged);
        fail(e)
    })
}

/// Runs the command; returns the exit code.
pub fn command(args: &ReportArgs) -> u8 {
    let cfg = match crate::config::load(&args.config, &|name| std::env::var(name).ok()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("configuration error:\n{}", crate::redact::text(&e.to_string()));
            return EXIT_USAGE;
        }
    };
    match write_report(&cfg, args.from, args.to, &args.out) {
        Ok(outcome) => {
            println!("{outcome}");
            0
        }
        Err(e) => {
            eprintln!("error: {}", crate::redact::text(&e.to_string()));
            e.exit_code()
        }
    }
}

#[cfg(test)]
mod tests;
