//! The report as the page shows it: its sections with their text already formatted, and the
//! charts, which the page's script draws from the data blob.

use std::collections::{BTreeMap, BTreeSet};

use kpipe_core::{NaiveDate, Unit};
use kpipe_kpi::{Grain, KpiRow, Scope, Stage};

use super::explain::{self, NoValue};
use super::format::{self, Change};

/// The label of the series over all platforms.
pub const ALL_PLATFORMS: &str = "all platforms";

/// The colours of platforms, in the report's platform order.
const PALETTE: [&str; 8] =
    ["#2563eb", "#db2777", "#059669", "#d97706", "#7c3aed", "#0891b2", "#dc2626", "#65a30d"];
/// The colour of the series over all platforms.
pub const ALL_COLOR: &str = "#0f172a";
/// The colour of a latest period, or of the single series of a chart.
pub const LATEST_COLOR: &str = "#0f766e";
/// The colour of a previous period.
pub const PREVIOUS_COLOR: &str = "#94a3b8";
/// The colour of a second measure beside [`LATEST_COLOR`].
pub const SECOND_COLOR: &str = "#b45309";

/// The colour of `series`: a platform's own, or that of all platforms.
pub fn series_color(platforms: &[String], series: &str) -> &'static str {
    platforms.iter().position(|p| p == series).map_or(ALL_COLOR, |i| PALETTE[i % PALETTE.len()])
}

/// How a chart is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChartKind {
    /// Lines over periods.
    Line,
    /// Vertical bars.
    Bar,
    /// Horizontal bars.
    HorizontalBar,
}

/// One dataset of a chart.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Series {
    /// Its legend.
    pub label: String,
    /// One value per label of the chart; `None` where there is no value (a gap).
    pub data: Vec<Option<f64>>,
    /// Its colour (a platform keeps its colour on every chart).
    pub color: &'static str,
}

/// A chart: one unit, and for money one currency, so that no axis mixes two.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Chart {
    /// The canvas's id.
    #[serde(skip)]
    pub id: String,
    /// What it shows, in full (the canvas's accessible name).
    #[serde(skip)]
    pub title: String,
    /// Its heading where shorter than the title (inside a KPI's section).
    #[serde(skip)]
    pub caption: Option<String>,
    /// How it is drawn.
    pub kind: ChartKind,
    /// The categories or periods.
    pub labels: Vec<String>,
    /// The datasets.
    pub datasets: Vec<Series>,
    /// The unit of every value (`ratio`, `currency`, `count`, `seconds`, `score`).
    pub unit: &'static str,
    /// The currency of every value, for money.
    pub currency: Option<String>,
    /// A logarithmic value axis (volumes that span orders of magnitude).
    pub log: bool,
}

/// The charts of the report, by id, in page order.
#[derive(Debug, Default)]
pub struct Charts {
    list: Vec<Chart>,
}

impl Charts {
    /// Adds `chart` if one of its datasets has a value; returns its id, or `None` for a chart
    /// with nothing to draw.
    pub fn add(&mut self, chart: Chart) -> Option<String> {
        if !chart.datasets.iter().any(|s| s.data.iter().any(Option::is_some)) {
            return None;
        }
        let id = chart.id.clone();
        self.list.push(chart);
        Some(id)
    }

    /// The chart `id`.
    pub fn get(&self, id: &str) -> Option<&Chart> {
        self.list.iter().find(|c| c.id == id)
    }

    /// Every chart.
    pub fn all(&self) -> &[Chart] {
        &self.list
    }
}

/// A place for a chart: the chart, or why there is none.
#[derive(Debug, Clone, PartialEq)]
pub enum Slot {
    /// The chart's id.
    Chart(String),
    /// No chart: its title and the reason.
    Empty {
        /// The chart's heading.
        title: String,
        /// Why it has nothing to draw.
        reason: String,
    },
}

/// A value cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shown {
    /// A value, formatted.
    Value(String),
    /// Nothing stored for the whole period (a previous period before the window): a dash.
    Missing,
    /// No value: the reason, and its footnote number in the section (1-based).
    Empty {
        /// Why.
        reason: String,
        /// The footnote.
        note: usize,
    },
}

/// The footnotes of a section: each reason once.
#[derive(Debug, Default, Clone)]
pub struct Notes {
    list: Vec<String>,
}

impl Notes {
    /// The footnote number of `reason`.
    pub fn note(&mut self, reason: &NoValue) -> Shown {
        self.note_text(&reason.to_string())
    }

    /// The footnote number of a reason already written out.
    pub fn note_text(&mut self, text: &str) -> Shown {
        let at = match self.list.iter().position(|n| n == text) {
            Some(at) => at,
            None => {
                self.list.push(text.to_owned());
                self.list.len() - 1
            }
        };
        Shown::Empty { reason: text.to_owned(), note: at + 1 }
    }

    /// The footnotes, in number order.
    pub fn list(&self) -> &[String] {
        &self.list
    }
}

/// The latest period of a grain and the one before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Latest {
    /// The latest period's label.
    pub label: String,
    /// True when it reaches outside the window (its value covers part of it).
    pub partial: bool,
    /// The previous period's label.
    pub previous: String,
}

/// A series' latest value of a grain against the previous period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compare {
    /// The latest period's value.
    pub latest: Shown,
    /// The previous period's value.
    pub previous: Shown,
    /// The change, when both have a value.
    pub change: Option<Change>,
}

/// One line of a KPI's comparison table: all platforms, or one platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompareRow {
    /// `all platforms` or the platform.
    pub series: String,
    /// By week.
    pub week: Option<Compare>,
    /// By month.
    pub month: Option<Compare>,
}

/// A KPI's latest month value for one account (KPIs over unique counts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountValue {
    /// `<platform> <account>`.
    pub account: String,
    /// The period.
    pub period: String,
    /// The value.
    pub value: Shown,
}

/// One KPI (in one currency) with its trends and comparisons.
#[derive(Debug, Clone)]
pub struct KpiSection {
    /// The KPI's name.
    pub name: String,
    /// Its description.
    pub description: String,
    /// Its formula.
    pub formula: String,
    /// Its stage.
    pub stage: Stage,
    /// Its unit.
    pub unit: Unit,
    /// The currency of its rows, for money.
    pub currency: Option<String>,
    /// A fall of its value is good news (costs).
    pub lower_is_better: bool,
    /// The element id of the section.
    pub anchor: String,
    /// The latest and previous week.
    pub week: Option<Latest>,
    /// The latest and previous month.
    pub month: Option<Latest>,
    /// All platforms, then each platform.
    pub rows: Vec<CompareRow>,
    /// Week trend, month trend, platforms side by side.
    pub charts: Vec<Slot>,
    /// Values per account, for a KPI whose value over several accounts may not exist.
    pub accounts: Vec<AccountValue>,
    /// The footnotes of its empty values.
    pub notes: Notes,
}

/// The rows of one KPI and currency, and what it needs to be shown.
pub struct KpiInput<'a> {
    /// The KPI's name.
    pub name: &'a str,
    /// Its description.
    pub description: &'a str,
    /// Its formula, when it is still defined.
    pub formula: Option<&'a str>,
    /// The currency of its rows.
    pub currency: Option<&'a str>,
    /// Its week and month rows, all scopes the report reads.
    pub rows: Vec<&'a KpiRow>,
}

/// The label of a period in a table: `October 2026`, `2026-W41 · Oct 5`, or the day.
pub fn period_label(grain: Grain, start: NaiveDate) -> String {
    match grain {
        Grain::Day => start.format("%Y-%m-%d").to_string(),
        Grain::Week => format!("{} \u{b7} {}", start.format("%G-W%V"), start.format("%b %-d")),
        Grain::Month => start.format("%B %Y").to_string(),
    }
}

/// The label of a period on a chart's axis: `Oct 2026`, `W41 · Oct 5`; a period reaching
/// outside the window is marked partial.
pub fn axis_label(grain: Grain, start: NaiveDate, partial: bool) -> String {
    let label = match grain {
        Grain::Day => start.format("%b %-d").to_string(),
        Grain::Week => format!("W{} \u{b7} {}", start.format("%V"), start.format("%b %-d")),
        Grain::Month => start.format("%b %Y").to_string(),
    };
    if partial { format!("{label} (partial)") } else { label }
}

/// A KPI value for reading; a count per something (impressions per person, shares per post)
/// always with two decimals, a count that is a sum as a whole number.
pub fn show_value(x: f64, unit: Unit, currency: Option<&str>, per_something: bool) -> String {
    if unit == Unit::Count && per_something { format::number(x, 2) } else { format::value(x, unit, currency) }
}

/// True for a KPI where a lower value is the better one: costs, and the bounce rate.
pub fn lower_is_better(name: &str, unit: Unit) -> bool {
    unit == Unit::Currency || name == "bounce_rate"
}

/// The start of the period of `grain` before the one starting on `start`.
pub fn previous_start(grain: Grain, start: NaiveDate) -> Option<NaiveDate> {
    start.pred_opt().map(|d| grain.period_start(d))
}

/// The id part of a currency: `-EUR`, or nothing.
pub fn currency_suffix(currency: Option<&str>) -> String {
    currency.map(|c| format!("-{c}")).unwrap_or_default()
}

/// Builds a KPI's section and its charts. `platforms` is every platform of the report, in the
/// order that gives each its colour; `window` says which periods are partial.
pub fn kpi_section(
    input: &KpiInput<'_>,
    platforms: &[String],
    window: &super::data::Window,
    charts: &mut Charts,
) -> Option<KpiSection> {
    let first = input.rows.first()?;
    let (unit, stage) = (first.unit, first.stage);
    let mut notes = Notes::default();
    let blended: Vec<&KpiRow> = input.rows.iter().copied().filter(|r| explain::is_blended(r.scope)).collect();
    let shown_platforms: Vec<&String> = platforms
        .iter()
        .filter(|p| {
            blended.iter().any(|r| r.scope == Scope::Platform && r.platform.as_deref() == Some(p.as_str()))
        })
        .collect();
    let series_of = |r: &KpiRow| -> Option<String> {
        match r.scope {
            Scope::All => Some(ALL_PLATFORMS.to_owned()),
            Scope::Platform => r.platform.as_deref().map(str::to_owned),
            _ => None,
        }
    };
    // (series, grain, start) -> row
    let mut cells: BTreeMap<(String, Grain, NaiveDate), &KpiRow> = BTreeMap::new();
    for r in &blended {
        if let Some(series) = series_of(r) {
            cells.insert((series, r.grain, r.period_start), r);
        }
    }
    let mut series_names = Vec::new();
    if blended.iter().any(|r| r.scope == Scope::All) {
        series_names.push(ALL_PLATFORMS.to_owned());
    }
    series_names.extend(shown_platforms.iter().map(|p| (*p).clone()));
    let color = |series: &str| series_color(platforms, series);
    let anchor = format!("kpi-{}{}", input.name, currency_suffix(input.currency));
    let value_of = |r: &KpiRow| r.value.map(|v| v.to_f64());

    // The latest period of each grain that lies within the window, or the latest one when none
    // does: a week cut by the window's end does not compare with a whole week.
    let mut latest_of: BTreeMap<Grain, (NaiveDate, Option<NaiveDate>)> = BTreeMap::new();
    for grain in [Grain::Week, Grain::Month] {
        let starts = || blended.iter().filter(|r| r.grain == grain).map(|r| r.period_start);
        let whole = starts().filter(|s| !window.is_partial(grain, *s)).max();
        if let Some(last) = whole.or_else(|| starts().max()) {
            latest_of.insert(grain, (last, previous_start(grain, last)));
        }
    }
    let latest = |grain: Grain| {
        latest_of.get(&grain).map(|(last, prev)| Latest {
            label: period_label(grain, *last),
            partial: window.is_partial(grain, *last),
            previous: prev.map(|p| period_label(grain, p)).unwrap_or_default(),
        })
    };
    let per = input.formula.is_some_and(|f| explain::split_fraction(f).1.is_some());
    let show = |x: f64| show_value(x, unit, input.currency, per);
    let shown = |r: Option<&&KpiRow>, notes: &mut Notes| -> Shown {
        match r {
            Some(r) => match explain::explain(r, input.formula) {
                None => Shown::Value(show(value_of(r).unwrap_or_default())),
                Some(why) => notes.note(&why),
            },
            None => notes.note(&explain::no_row()),
        }
    };
    let mut rows = Vec::new();
    for series in &series_names {
        let compare = |grain: Grain, notes: &mut Notes| -> Option<Compare> {
            let (last, prev) = latest_of.get(&grain)?;
            let l = cells.get(&(series.clone(), grain, *last));
            let p = prev.and_then(|p| cells.get(&(series.clone(), grain, p)));
            let change = match (l.and_then(|r| value_of(r)), p.and_then(|r| value_of(r))) {
                (Some(a), Some(b)) => Some(format::change(a, b, unit, input.currency)),
                _ => None,
            };
            let stored = prev.is_some_and(|p| cells.keys().any(|(_, g, start)| *g == grain && *start == p));
            let previous = if stored { shown(p, notes) } else { Shown::Missing };
            Some(Compare { latest: shown(l, notes), previous, change })
        };
        let week = compare(Grain::Week, &mut notes);
        let month = compare(Grain::Month, &mut notes);
        rows.push(CompareRow { series: series.clone(), week, month });
    }

    let mut slots = Vec::new();
    for (grain, title) in [(Grain::Week, "By week"), (Grain::Month, "By month")] {
        let periods = window.periods(grain);
        let datasets: Vec<Series> = series_names
            .iter()
            .map(|s| Series {
                label: s.clone(),
                data: periods
                    .iter()
                    .map(|p| cells.get(&(s.clone(), grain, *p)).and_then(|r| value_of(r)))
                    .collect(),
                color: color(s),
            })
            .filter(|s| s.data.iter().any(Option::is_some))
            .collect();
        let months = periods.len();
        let chart = Chart {
            id: format!("{anchor}-{grain}"),
            title: format!("{} {}", input.name, title.to_lowercase()),
            caption: Some(title.to_owned()),
            kind: if grain == Grain::Month && months < 3 { ChartKind::Bar } else { ChartKind::Line },
            labels: periods.iter().map(|p| axis_label(grain, *p, window.is_partial(grain, *p))).collect(),
            datasets,
            unit: unit.as_str(),
            currency: input.currency.map(str::to_owned),
            log: false,
        };
        slots.push(match charts.add(chart) {
            Some(id) => Slot::Chart(id),
            None => {
                Slot::Empty { title: title.to_owned(), reason: empty_reason(&blended, grain, input.formula) }
            }
        });
    }
    slots.push(platform_chart(input, &blended, &shown_platforms, &latest_of, &anchor, charts));

    let accounts = account_values(input, &mut notes, unit);
    Some(KpiSection {
        name: input.name.to_owned(),
        description: input.description.to_owned(),
        formula: input.formula.unwrap_or_default().to_owned(),
        stage,
        unit,
        currency: input.currency.map(str::to_owned),
        lower_is_better: lower_is_better(input.name, unit),
        anchor,
        week: latest(Grain::Week),
        month: latest(Grain::Month),
        rows,
        charts: slots,
        accounts,
        notes,
    })
}

/// The platforms side by side over the latest and the previous month (week, without months).
fn platform_chart(
    input: &KpiInput<'_>,
    blended: &[&KpiRow],
    shown_platforms: &[&String],
    latest_of: &BTreeMap<Grain, (NaiveDate, Option<NaiveDate>)>,
    anchor: &str,
    charts: &mut Charts,
) -> Slot {
    let title = "Platforms side by side";
    if shown_platforms.is_empty() {
        return Slot::Empty {
            title: title.to_owned(),
            reason: "no data per platform: this KPI has values over all platforms only".to_owned(),
        };
    }
    let grain = if latest_of.contains_key(&Grain::Month) { Grain::Month } else { Grain::Week };
    let Some((last, prev)) = latest_of.get(&grain) else {
        return Slot::Empty { title: title.to_owned(), reason: NoValue::NoRow.to_string() };
    };
    let unit = blended.first().map_or(Unit::Count, |r| r.unit);
    let mut datasets = Vec::new();
    for start in prev.iter().chain(std::iter::once(last)) {
        let data = shown_platforms
            .iter()
            .map(|p| {
                blended
                    .iter()
                    .find(|r| {
                        r.scope == Scope::Platform
                            && r.grain == grain
                            && r.period_start == *start
                            && r.platform.as_deref() == Some(p.as_str())
                    })
                    .and_then(|r| r.value.map(|v| v.to_f64()))
            })
            .collect();
        // The previous period in a light colour, the latest in the report's accent.
        let color = if start == last { LATEST_COLOR } else { PREVIOUS_COLOR };
        datasets.push(Series { label: period_label(grain, *start), data, color });
    }
    let with_values: Vec<bool> = datasets.iter().map(|s| s.data.iter().any(Option::is_some)).collect();
    let datasets_with_values: Vec<&NaiveDate> = prev
        .iter()
        .chain(std::iter::once(last))
        .zip(&with_values)
        .filter(|(_, has)| **has)
        .map(|(s, _)| s)
        .collect();
    datasets.retain(|s| s.data.iter().any(Option::is_some));
    let chart = Chart {
        id: format!("{anchor}-platforms"),
        title: format!("{} per platform", input.name),
        caption: Some(format!(
            "{title}, {}",
            prev.iter()
                .chain(std::iter::once(last))
                .filter(|s| datasets_with_values.contains(s))
                .map(|s| period_label(grain, *s))
                .collect::<Vec<_>>()
                .join(" and ")
        )),
        kind: ChartKind::HorizontalBar,
        labels: shown_platforms.iter().map(|p| (*p).clone()).collect(),
        datasets,
        unit: unit.as_str(),
        currency: input.currency.map(str::to_owned),
        log: false,
    };
    match charts.add(chart) {
        Some(id) => Slot::Chart(id),
        None => {
            let rows: Vec<&KpiRow> = blended
                .iter()
                .copied()
                .filter(|r| r.scope == Scope::Platform && r.grain == grain && r.period_start == *last)
                .collect();
            Slot::Empty { title: title.to_owned(), reason: empty_reason(&rows, grain, input.formula) }
        }
    }
}

/// The most frequent reason among the empty values of `grain` (or "no data").
fn empty_reason(rows: &[&KpiRow], grain: Grain, formula: Option<&str>) -> String {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.grain == grain) {
        if let Some(why) = explain::explain(r, formula) {
            *counts.entry(why.to_string()).or_default() += 1;
        }
    }
    counts
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(&a.0)))
        .map_or_else(|| format!("{}: no {grain} rows in the window", NoValue::NoRow), |(why, _)| why)
}

/// The latest month's (else week's) value per account, for KPIs over unique counts or
/// starting snapshots.
fn account_values(input: &KpiInput<'_>, notes: &mut Notes, unit: Unit) -> Vec<AccountValue> {
    let accounts: Vec<&&KpiRow> = input.rows.iter().filter(|r| r.scope == Scope::Account).collect();
    let grain = if accounts.iter().any(|r| r.grain == Grain::Month) { Grain::Month } else { Grain::Week };
    let Some(last) = accounts.iter().filter(|r| r.grain == grain).map(|r| r.period_start).max() else {
        return Vec::new();
    };
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for r in accounts.iter().filter(|r| r.grain == grain && r.period_start == last) {
        let account = format!(
            "{} {}",
            r.platform.as_deref().unwrap_or_default(),
            r.account_id.as_deref().unwrap_or_default()
        );
        if !seen.insert(account.clone()) {
            continue;
        }
        let value = match explain::explain(r, input.formula) {
            None => Shown::Value(show_value(
                r.value.map(|v| v.to_f64()).unwrap_or_default(),
                unit,
                input.currency,
                input.formula.is_some_and(|f| explain::split_fraction(f).1.is_some()),
            )),
            Some(why) => notes.note(&why),
        };
        out.push(AccountValue { account, period: period_label(grain, last), value });
    }
    out
}
