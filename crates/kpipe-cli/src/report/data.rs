//! Reading what the report shows, through the output's [`Storage`] (a directory or an object
//! store, Parquet files or Delta tables): the KPI rows of the periods that overlap the window,
//! and totals of the metric rows of its days. Files are read one at a time and only what the
//! report needs is kept, so memory follows the report's size, not the output's.

use std::collections::{BTreeMap, HashMap};

use kpipe_core::{Additivity, Decimal, Metric, NaiveDate};
use kpipe_kpi::{Grain, KpiRow, LEVEL_ORDER, Scope};
use kpipe_sink_parquet::read::StoredRow;
use kpipe_sink_parquet::{OutputFormat, Storage};

use super::ReportError;

/// The KPIs whose values over the whole window the spend section shows, re-aggregated from
/// their day rows (docs/kpis.md rule 5: sum the numerators, sum the denominators).
pub const WINDOW_KPIS: [&str; 2] = ["roi", "roas"];

/// The metrics of the social-selling funnel, in funnel order.
pub const SOCIAL_SELLING: [&str; 4] = ["invites_sent", "invites_accepted", "replies", "interested"];

/// The level whose entities the spend section lists by name.
pub const CAMPAIGN_LEVEL: &str = "campaign";

/// The days of the report, and which stored periods overlap them.
#[derive(Debug, Clone)]
pub struct Window {
    /// First day.
    pub from: NaiveDate,
    /// Last day.
    pub to: NaiveDate,
    /// The stored KPI files that overlap the window: grain, period start, key.
    pub files: Vec<(Grain, NaiveDate, String)>,
}

impl Window {
    /// The period starts of `grain` in the window, in order.
    pub fn periods(&self, grain: Grain) -> Vec<NaiveDate> {
        let mut starts: Vec<NaiveDate> =
            self.files.iter().filter(|(g, _, _)| *g == grain).map(|(_, start, _)| *start).collect();
        starts.dedup();
        starts
    }

    /// True when the period of `grain` starting on `start` reaches outside the window.
    pub fn is_partial(&self, grain: Grain, start: NaiveDate) -> bool {
        start < self.from || grain.period_end(start) > self.to
    }
}

/// Finds the window: the days asked for, or by default the first to the last stored day of the
/// KPIs (of any grain when no day is stored), and the stored KPI files overlapping it. `output`
/// names the output in messages.
pub fn window(
    storage: &Storage,
    output: &str,
    format: OutputFormat,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> Result<Window, ReportError> {
    let no_kpis = || ReportError::NoKpis { output: output.to_owned(), format: format.name() };
    let mut stored = Vec::new();
    for grain in Grain::ALL {
        for (start, key) in kpipe_kpi::stored_periods(storage, format, Some(grain))? {
            stored.push((grain, start, key));
        }
    }
    if stored.is_empty() {
        return Err(no_kpis());
    }
    let days: Vec<NaiveDate> =
        stored.iter().filter(|(g, _, _)| *g == Grain::Day).map(|(_, s, _)| *s).collect();
    let first = days.iter().min().copied().or_else(|| stored.iter().map(|(_, s, _)| *s).min());
    let last = days.iter().max().copied().or_else(|| stored.iter().map(|(g, s, _)| g.period_end(*s)).max());
    let (Some(first), Some(last)) = (first, last) else {
        return Err(no_kpis());
    };
    let (from, to) = (from.unwrap_or(first), to.unwrap_or(last));
    if from > to {
        return Err(ReportError::Window { from, to });
    }
    let mut files: Vec<(Grain, NaiveDate, String)> =
        stored.into_iter().filter(|(g, s, _)| *s <= to && g.period_end(*s) >= from).collect();
    if files.is_empty() {
        return Err(ReportError::NoPeriods { from, to });
    }
    files.sort();
    Ok(Window { from, to, files })
}

/// A numerator and a denominator summed over days.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fraction {
    /// Sum of the rows' numerators.
    pub numerator: Decimal,
    /// Sum of the rows' denominators.
    pub denominator: Decimal,
}

impl Fraction {
    /// The quotient, for reading; `None` for a zero denominator.
    pub fn value(&self) -> Option<f64> {
        (self.denominator.units() != 0).then(|| self.numerator.to_f64() / self.denominator.to_f64())
    }
}

/// Who a window total of a KPI is over.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TotalKey {
    /// The KPI.
    pub kpi: String,
    /// `All`, `Platform` or `Entity`.
    pub scope: Scope,
    /// The platform (none for `All`).
    pub platform: Option<String>,
    /// Source, account and entity, for `Entity`.
    pub entity: Option<(String, String, String)>,
    /// The currency of the rows.
    pub currency: Option<String>,
}

/// The KPI rows the report reads.
#[derive(Debug, Default)]
pub struct KpiData {
    /// Week and month rows over all platforms and per platform, and per account for the KPIs
    /// over unique counts or starting snapshots.
    pub rows: Vec<KpiRow>,
    /// [`WINDOW_KPIS`] over the window's days, over all platforms, per platform and per
    /// campaign.
    pub totals: BTreeMap<TotalKey, Fraction>,
    /// KPI rows read, in all.
    pub rows_read: usize,
}

/// Reads the KPI files of the window. `per_account` says which KPIs keep their account rows.
pub fn read_kpis(
    storage: &Storage,
    window: &Window,
    per_account: &dyn Fn(&str) -> bool,
) -> Result<KpiData, ReportError> {
    let mut data = KpiData::default();
    for (grain, start, key) in &window.files {
        let rows = kpipe_kpi::read_stored_kpi_files(storage, std::slice::from_ref(key))?;
        data.rows_read += rows.len();
        if *grain == Grain::Day {
            if *start >= window.from && *start <= window.to {
                add_day_totals(&mut data.totals, &rows)?;
            }
            continue;
        }
        data.rows.extend(rows.into_iter().filter(|r| match r.scope {
            Scope::All | Scope::Platform => true,
            Scope::Account => per_account(&r.kpi),
            Scope::Entity => false,
        }));
    }
    Ok(data)
}

fn add_day_totals(totals: &mut BTreeMap<TotalKey, Fraction>, rows: &[KpiRow]) -> Result<(), ReportError> {
    for r in rows.iter().filter(|r| WINDOW_KPIS.contains(&r.kpi.as_str())) {
        let entity = match r.scope {
            Scope::Entity if r.level.as_deref() == Some(CAMPAIGN_LEVEL) => Some((
                r.source.as_deref().unwrap_or_default().to_owned(),
                r.account_id.as_deref().unwrap_or_default().to_owned(),
                r.entity_id.as_deref().unwrap_or_default().to_owned(),
            )),
            Scope::All | Scope::Platform => None,
            _ => continue,
        };
        let (Some(numerator), Some(denominator)) = (r.numerator, r.denominator) else { continue };
        let key = TotalKey {
            kpi: r.kpi.to_string(),
            scope: r.scope,
            platform: r.platform.as_deref().map(str::to_owned),
            entity,
            currency: r.currency.map(|c| c.as_str().to_owned()),
        };
        let total = totals.entry(key).or_default();
        total.numerator = add(total.numerator, numerator, &r.kpi)?;
        total.denominator = add(total.denominator, denominator, &r.kpi)?;
    }
    Ok(())
}

fn add(a: Decimal, b: Decimal, what: &str) -> Result<Decimal, ReportError> {
    a.checked_add(b).ok_or_else(|| ReportError::Overflow { what: what.to_owned() })
}

/// A campaign's spend over the window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CampaignSpend {
    /// Its name where the platform gives one.
    pub name: Option<String>,
    /// Spend in the campaign's currency.
    pub spend: Decimal,
}

/// Who a campaign is: platform, source, account, entity id, currency.
pub type CampaignKey = (String, String, String, String, String);

/// A sales rep's social-selling counts over the window, in [`SOCIAL_SELLING`] order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepCounts {
    /// The rep's name where the file gives one (else the entity id is the name).
    pub name: Option<String>,
    /// Sums of the four metrics.
    pub counts: [Decimal; 4],
}

/// Totals of the metric rows of the window's days.
///
/// Each metric of an account and day is taken from the coarsest level that has it, and each
/// entity's from its least broken-down rows, as the KPI stage does (docs/schema.md, "How values
/// are computed"): finer levels and breakdowns repeat the same numbers.
#[derive(Debug, Default)]
pub struct MetricTotals {
    /// Sum per (platform, metric, currency) of the `sum` metrics of the vocabulary.
    pub by_platform: BTreeMap<(String, String, Option<String>), Decimal>,
    /// Spend per (currency, platform, ISO week start).
    pub spend_by_week: BTreeMap<(String, String, NaiveDate), Decimal>,
    /// Spend per campaign (rows at the campaign level).
    pub campaigns: BTreeMap<CampaignKey, CampaignSpend>,
    /// Social-selling counts per (platform, rep).
    pub reps: BTreeMap<(String, String), RepCounts>,
    /// Metric files read.
    pub files: usize,
    /// Metric rows read.
    pub rows: usize,
}

/// Reads the metric files of the window's days and sums what the report shows.
pub fn read_metrics(
    storage: &Storage,
    format: OutputFormat,
    window: &Window,
) -> Result<MetricTotals, ReportError> {
    let mut totals = MetricTotals::default();
    let mut failed: Option<ReportError> = None;
    let files = kpipe_sink_parquet::read_days::for_each_metric_file(
        storage,
        format,
        window.from,
        window.to,
        |rows| {
            if failed.is_none()
                && let Err(e) = totals.add_file(&rows)
            {
                failed = Some(e);
            }
        },
    )?;
    if let Some(e) = failed {
        return Err(e);
    }
    totals.files = files;
    Ok(totals)
}

/// The rank of a level: coarser first, unknown levels after the known ones, by name.
fn level_rank(level: &str) -> (usize, &str) {
    match LEVEL_ORDER.iter().position(|l| *l == level) {
        Some(at) => (at, ""),
        None => (LEVEL_ORDER.len(), level),
    }
}

/// The rank of a row's breakdown: fewer dimensions first, then which ones.
fn breakdown_rank(row: &StoredRow) -> u16 {
    let values = row.row.dimensions.values();
    let mask = values.iter().enumerate().filter(|(_, v)| v.is_some()).fold(0u16, |m, (i, _)| m | (1 << i));
    ((mask.count_ones() as u16) << 8) | mask
}

/// An entity's rows of one metric on one day: those of its least broken-down breakdown.
#[derive(Debug, Clone)]
struct Best {
    rank: u16,
    sum: Decimal,
    name: Option<String>,
}

impl Best {
    fn push(
        slot: &mut Option<Best>,
        rank: u16,
        value: Decimal,
        name: Option<&str>,
    ) -> Result<(), ReportError> {
        match slot {
            Some(best) if rank > best.rank => {}
            Some(best) if rank == best.rank => {
                best.sum = add(best.sum, value, "metric")?;
                if best.name.is_none() {
                    best.name = name.map(str::to_owned);
                }
            }
            _ => *slot = Some(Best { rank, sum: value, name: name.map(str::to_owned) }),
        }
        Ok(())
    }
}

/// One account's rows of one metric and currency on one day, at its coarsest level.
#[derive(Debug, Default)]
struct Cell {
    level: Option<(usize, String)>,
    entities: HashMap<String, Option<Best>>,
}

impl MetricTotals {
    fn add_file(&mut self, rows: &[StoredRow]) -> Result<(), ReportError> {
        self.rows += rows.len();
        // (platform, source, account, day, metric, currency) -> cell
        type CellKey<'a> = (&'a str, &'a str, &'a str, NaiveDate, &'a str, Option<&'a str>);
        let mut cells: HashMap<CellKey<'_>, Cell> = HashMap::new();
        let mut campaigns: HashMap<(CampaignKey, NaiveDate), Option<Best>> = HashMap::new();
        for stored in rows {
            let row = &stored.row;
            let metric = row.metric.as_str();
            let summed = Metric::from_name(metric).is_some_and(|m| m.additivity() == Additivity::Sum);
            if !summed {
                continue;
            }
            let currency = row.currency.as_ref().map(|c| c.as_str());
            let rank = breakdown_rank(stored);
            let name = row.entity_name.as_deref();
            if metric == "spend" && row.level.as_str() == CAMPAIGN_LEVEL {
                let key = (
                    row.platform.to_string(),
                    stored.source.clone(),
                    row.account_id.to_string(),
                    row.entity_id.to_string(),
                    currency.unwrap_or_default().to_owned(),
                );
                Best::push(campaigns.entry((key, row.date)).or_default(), rank, row.value, name)?;
            }
            let key = (
                row.platform.as_str(),
                stored.source.as_str(),
                row.account_id.as_str(),
                row.date,
                metric,
                currency,
            );
            let cell = cells.entry(key).or_default();
            let level = level_rank(&row.level);
            let coarser = cell.level.as_ref().is_none_or(|(at, name)| level < (*at, name.as_str()));
            if coarser {
                cell.level = Some((level.0, level.1.to_owned()));
                cell.entities.clear();
            } else if cell.level.as_ref().is_some_and(|(at, name)| level > (*at, name.as_str())) {
                continue;
            }
            Best::push(cell.entities.entry(row.entity_id.to_string()).or_default(), rank, row.value, name)?;
        }
        for ((platform, _, _, day, metric, currency), cell) in cells {
            for (entity, best) in cell.entities {
                let Some(best) = best else { continue };
                let total = self
                    .by_platform
                    .entry((platform.to_owned(), metric.to_owned(), currency.map(str::to_owned)))
                    .or_default();
                *total = add(*total, best.sum, metric)?;
                if metric == "spend"
                    && let Some(code) = currency
                {
                    let week = Grain::Week.period_start(day);
                    let slot =
                        self.spend_by_week.entry((code.to_owned(), platform.to_owned(), week)).or_default();
                    *slot = add(*slot, best.sum, metric)?;
                }
                if let Some(at) = SOCIAL_SELLING.iter().position(|m| *m == metric) {
                    let rep = self.reps.entry((platform.to_owned(), entity)).or_default();
                    rep.counts[at] = add(rep.counts[at], best.sum, metric)?;
                    if rep.name.is_none() {
                        rep.name = best.name;
                    }
                }
            }
        }
        for ((key, _), best) in campaigns {
            let Some(best) = best else { continue };
            let campaign = self.campaigns.entry(key).or_default();
            campaign.spend = add(campaign.spend, best.sum, "spend")?;
            if campaign.name.is_none() {
                campaign.name = best.name;
            }
        }
        Ok(())
    }

    /// The window's sum of `metric` over every platform (money: in `currency` only).
    pub fn total(&self, metric: &str, currency: Option<&str>) -> Option<Decimal> {
        let mut sum: Option<Decimal> = None;
        for ((_, m, c), v) in &self.by_platform {
            if m == metric && c.as_deref() == currency {
                sum = Some(sum.unwrap_or_default().checked_add(*v)?);
            }
        }
        sum
    }

    /// The window's sum of `metric` per platform (money: in `currency` only).
    pub fn per_platform(&self, metric: &str, currency: Option<&str>) -> Vec<(String, Decimal)> {
        self.by_platform
            .iter()
            .filter(|((_, m, c), _)| m == metric && c.as_deref() == currency)
            .map(|((p, _, _), v)| (p.clone(), *v))
            .collect()
    }

    /// The currencies spend was reported in, in code order.
    pub fn spend_currencies(&self) -> Vec<String> {
        let mut codes: Vec<String> = self
            .by_platform
            .keys()
            .filter(|(_, m, _)| m == "spend")
            .filter_map(|(_, _, c)| c.clone())
            .collect();
        codes.sort();
        codes.dedup();
        codes
    }
}

#[cfg(test)]
mod tests {
    use kpipe_core::{Currency, Dimensions, Label, MetricName, MetricRow, Unit};

    use super::*;

    fn stored(level: &str, entity: &str, metric: &str, value: i64, currency: Option<&str>) -> StoredRow {
        let unit = if currency.is_some() { Unit::Currency } else { Unit::Count };
        StoredRow {
            source: "ads".into(),
            run_id: "r".into(),
            pulled_at: chrono::DateTime::UNIX_EPOCH,
            row: MetricRow {
                platform: Label::new("linkedin"),
                account_id: Label::new("1"),
                level: Label::new(level),
                entity_id: Label::new(entity),
                entity_name: Some(Label::new(&format!("{entity} name"))),
                date: NaiveDate::from_ymd_opt(2026, 10, 7).unwrap_or_default(),
                dimensions: Dimensions::default(),
                metric: MetricName::parse(metric, unit).expect("metric"),
                value: Decimal::from_i64(value),
                currency: currency.and_then(Currency::parse),
            },
        }
    }

    #[test]
    fn spend_is_taken_at_the_coarsest_level_and_kept_per_currency() {
        let mut breakdown = stored("campaign", "c1", "spend", 7, Some("EUR"));
        breakdown.row.dimensions.country = Some(Label::new("FR"));
        let rows = vec![
            stored("ad", "a1", "spend", 40, Some("EUR")),
            stored("campaign", "c1", "spend", 30, Some("EUR")),
            breakdown,
            stored("campaign", "c2", "spend", 12, Some("EUR")),
            stored("ad", "a9", "spend", 5, Some("USD")),
        ];
        let mut totals = MetricTotals::default();
        totals.add_file(&rows).expect("added");
        assert_eq!(totals.total("spend", Some("EUR")), Some(Decimal::from_i64(42)));
        assert_eq!(totals.total("spend", Some("USD")), Some(Decimal::from_i64(5)));
        assert_eq!(totals.spend_currencies(), ["EUR", "USD"]);
        let c1 = totals.campaigns.iter().find(|(k, _)| k.3 == "c1").map(|(_, v)| v.clone());
        assert_eq!(c1, Some(CampaignSpend { name: Some("c1 name".into()), spend: Decimal::from_i64(30) }));
    }
}
