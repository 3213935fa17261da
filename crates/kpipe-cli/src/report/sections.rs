//! The funnels and the money: the buyer's journey by stage, the social-selling funnel, and
//! spend with ROI and ROAS by platform and campaign, one currency at a time.

use kpipe_core::{Decimal, Metric};
use kpipe_kpi::{Grain, Scope, Stage};

use super::data::{self, Fraction, MetricTotals, TotalKey};
use super::explain::NoValue;
use super::format;
use super::model::{
    ALL_COLOR, ALL_PLATFORMS, Chart, ChartKind, Charts, KpiSection, LATEST_COLOR, Notes, SECOND_COLOR,
    Series, Shown, Slot, series_color,
};

/// A stage of the journey funnel: the stage, its title, and the metrics that can stand for its
/// volume, preferred first (the first with data is counted).
const JOURNEY: [(Stage, &str, &[&str]); 4] = [
    (Stage::Awareness, "Awareness", &["impressions"]),
    (Stage::Consideration, "Consideration", &["clicks", "engagements", "sessions"]),
    (Stage::Decision, "Conversion", &["leads", "conversions", "form_submissions"]),
    (Stage::Loyalty, "Loyalty", &["survey_responses"]),
];

/// The title of a stage as the report names it (the data's `decision` is the conversion step).
pub fn stage_title(stage: Stage) -> &'static str {
    JOURNEY.iter().find(|(s, _, _)| *s == stage).map_or("Other", |(_, t, _)| t)
}

/// A bar of a funnel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunnelStep {
    /// Its title.
    pub title: String,
    /// The metric it counts.
    pub metric: String,
    /// What the metric counts, for people.
    pub counts: String,
    /// The volume over the window.
    pub volume: String,
    /// The volume as a share of the previous step's.
    pub of_previous: Option<String>,
    /// The volume per platform.
    pub per_platform: Vec<(String, String)>,
}

/// A KPI's latest values over all platforms, in a stage table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageKpi {
    /// The KPI.
    pub name: String,
    /// Its section's id.
    pub anchor: String,
    /// A fall of its value is good news.
    pub lower_is_better: bool,
    /// Its latest month.
    pub month: Option<(String, Shown)>,
    /// Its latest week, and the change from the week before.
    pub week: Option<(String, Shown, Option<format::Change>)>,
}

/// One stage's KPIs.
#[derive(Debug, Clone)]
pub struct StageView {
    /// The stage.
    pub stage: Stage,
    /// Its KPIs.
    pub kpis: Vec<StageKpi>,
}

/// The buyer's-journey funnel.
#[derive(Debug, Clone)]
pub struct Journey {
    /// One bar per stage with data.
    pub steps: Vec<FunnelStep>,
    /// The funnel chart.
    pub chart: Slot,
    /// The stages with their KPIs.
    pub stages: Vec<StageView>,
    /// Footnotes of the stage tables.
    pub notes: Notes,
}

/// The social-selling funnel.
#[derive(Debug, Clone)]
pub struct Social {
    /// Invites sent, accepted, replies, interested.
    pub steps: Vec<FunnelStep>,
    /// The funnel chart.
    pub chart: Slot,
    /// Per rep: platform, rep, the four counts, the three rates.
    pub reps: Vec<(String, String, [String; 4], [Shown; 3])>,
    /// The funnel's KPIs (invite_accept_rate, reply_rate, interest_rate).
    pub kpis: Vec<StageKpi>,
    /// Footnotes.
    pub notes: Notes,
}

/// A campaign line of a spend table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignRow {
    /// Platform.
    pub platform: String,
    /// Account.
    pub account: String,
    /// Name, or id.
    pub name: String,
    /// Spend over the window.
    pub spend: String,
    /// ROI over the window.
    pub roi: Shown,
    /// ROAS over the window.
    pub roas: Shown,
}

/// The spend in one currency.
#[derive(Debug, Clone)]
pub struct CurrencySpend {
    /// ISO 4217 code.
    pub currency: String,
    /// The total.
    pub total: String,
    /// Per platform.
    pub platforms: Vec<(String, String)>,
    /// By platform, by week, by campaign.
    pub charts: Vec<Slot>,
    /// The campaigns, most spend first.
    pub campaigns: Vec<CampaignRow>,
    /// Campaigns not listed.
    pub more: usize,
}

/// ROI and ROAS of a platform (or all) over the window, in one currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoiRow {
    /// `all platforms` or the platform.
    pub series: String,
    /// The currency of the KPI rows.
    pub currency: String,
    /// Revenue.
    pub revenue: String,
    /// Spend.
    pub spend: String,
    /// ROI.
    pub roi: Shown,
    /// ROAS.
    pub roas: Shown,
}

/// Spend, ROI and ROAS.
#[derive(Debug, Clone)]
pub struct Money {
    /// One block per currency of spend.
    pub currencies: Vec<CurrencySpend>,
    /// ROI and ROAS by platform.
    pub roi: Vec<RoiRow>,
    /// ROI and ROAS charts, one per currency of the KPI rows.
    pub roi_charts: Vec<Slot>,
    /// Footnotes.
    pub notes: Notes,
}

/// Campaigns listed per currency.
const CAMPAIGN_ROWS: usize = 25;
/// Campaigns in a spend chart.
const CAMPAIGN_BARS: usize = 10;

fn decimal_f64(d: Decimal) -> f64 {
    d.to_f64()
}

fn count(d: Decimal) -> String {
    format::value(d.to_f64(), kpipe_core::Unit::Count, None)
}

fn share(part: Decimal, whole: Decimal) -> Option<String> {
    (whole.units() != 0).then(|| format::value(part.to_f64() / whole.to_f64(), kpipe_core::Unit::Ratio, None))
}

fn describe(metric: &str) -> String {
    Metric::from_name(metric).map_or_else(|| metric.to_owned(), |m| m.def().description.to_owned())
}

/// The stage tables' line of a KPI, from its section's all-platforms comparison.
fn stage_kpi(section: &KpiSection, notes: &mut Notes) -> StageKpi {
    let all = section.rows.first();
    let mut renote = |s: &Shown| match s {
        Shown::Empty { reason, .. } => notes.note_text(reason),
        other => other.clone(),
    };
    StageKpi {
        name: section.name.clone(),
        anchor: section.anchor.clone(),
        lower_is_better: section.lower_is_better,
        month: match (&section.month, all.and_then(|r| r.month.as_ref())) {
            (Some(l), Some(c)) => Some((l.label.clone(), renote(&c.latest))),
            _ => None,
        },
        week: match (&section.week, all.and_then(|r| r.week.as_ref())) {
            (Some(l), Some(c)) => Some((l.label.clone(), renote(&c.latest), c.change.clone())),
            _ => None,
        },
    }
}

/// The journey funnel from the metric totals, and each stage's KPIs from their sections.
pub fn journey(metrics: &MetricTotals, sections: &[KpiSection], charts: &mut Charts) -> Journey {
    let mut steps: Vec<FunnelStep> = Vec::new();
    let mut previous: Option<Decimal> = None;
    let mut volumes = Vec::new();
    for (_, title, candidates) in JOURNEY {
        let found =
            candidates.iter().find_map(|m| metrics.total(m, None).filter(|t| t.units() > 0).map(|t| (*m, t)));
        let Some((metric, total)) = found else { continue };
        steps.push(FunnelStep {
            title: title.to_owned(),
            metric: metric.to_owned(),
            counts: describe(metric),
            volume: count(total),
            of_previous: previous.and_then(|p| share(total, p)),
            per_platform: metrics
                .per_platform(metric, None)
                .into_iter()
                .map(|(p, v)| (p, count(v)))
                .collect(),
        });
        previous = Some(total);
        volumes.push(Some(decimal_f64(total)));
    }
    let chart = Chart {
        id: "funnel-journey".to_owned(),
        title: "Buyer's journey funnel".to_owned(),
        caption: None,
        kind: ChartKind::HorizontalBar,
        labels: steps.iter().map(|s| format!("{}: {}", s.title, s.metric)).collect(),
        datasets: vec![Series { label: ALL_PLATFORMS.to_owned(), data: volumes, color: ALL_COLOR }],
        unit: "count",
        currency: None,
        log: true,
    };
    let chart = charts.add(chart).map_or_else(
        || Slot::Empty {
            title: "Buyer's journey funnel".to_owned(),
            reason: "no data: no impressions, clicks, leads or survey responses in the window".to_owned(),
        },
        Slot::Chart,
    );
    let mut notes = Notes::default();
    let mut stages = Vec::new();
    for (stage, _, _) in JOURNEY {
        let kpis: Vec<StageKpi> =
            sections.iter().filter(|s| s.stage == stage).map(|s| stage_kpi(s, &mut notes)).collect();
        stages.push(StageView { stage, kpis });
    }
    Journey { steps, chart, stages, notes }
}

/// The social-selling funnel from the metric totals.
pub fn social(
    metrics: &MetricTotals,
    sections: &[KpiSection],
    platforms: &[String],
    charts: &mut Charts,
) -> Social {
    const TITLES: [&str; 4] = ["Invites sent", "Accepted", "Replies", "Interested"];
    let mut notes = Notes::default();
    let totals: Vec<Option<Decimal>> = data::SOCIAL_SELLING.iter().map(|m| metrics.total(m, None)).collect();
    let mut steps = Vec::new();
    for (i, metric) in data::SOCIAL_SELLING.iter().enumerate() {
        let Some(total) = totals[i] else { continue };
        steps.push(FunnelStep {
            title: TITLES[i].to_owned(),
            metric: (*metric).to_owned(),
            counts: describe(metric),
            volume: count(total),
            of_previous: i.checked_sub(1).and_then(|p| totals[p]).and_then(|p| share(total, p)),
            per_platform: metrics
                .per_platform(metric, None)
                .into_iter()
                .map(|(p, v)| (p, count(v)))
                .collect(),
        });
    }
    let social_platforms: Vec<&String> = platforms
        .iter()
        .filter(|p| {
            data::SOCIAL_SELLING.iter().any(|m| metrics.per_platform(m, None).iter().any(|(q, _)| q == *p))
        })
        .collect();
    let datasets = social_platforms
        .iter()
        .map(|p| Series {
            label: (*p).clone(),
            data: data::SOCIAL_SELLING
                .iter()
                .map(|m| {
                    metrics
                        .per_platform(m, None)
                        .into_iter()
                        .find(|(q, _)| q == *p)
                        .map(|(_, v)| decimal_f64(v))
                })
                .collect(),
            color: series_color(platforms, p),
        })
        .collect();
    let chart = Chart {
        id: "funnel-social".to_owned(),
        title: "Social-selling funnel".to_owned(),
        caption: None,
        kind: ChartKind::Bar,
        labels: TITLES.iter().map(|t| (*t).to_owned()).collect(),
        datasets,
        unit: "count",
        currency: None,
        log: false,
    };
    let chart = charts.add(chart).map_or_else(
        || Slot::Empty {
            title: "Social-selling funnel".to_owned(),
            reason:
                "no data: no social-selling activity (invites_sent, invites_accepted, replies, interested) \
                     in the window"
                    .to_owned(),
        },
        Slot::Chart,
    );
    let mut reps = Vec::new();
    for ((platform, entity), rep) in &metrics.reps {
        let c = &rep.counts;
        let mut rate = |at: usize| -> Shown {
            match share(c[at + 1], c[at]) {
                Some(v) => Shown::Value(v),
                None => {
                    notes.note(&NoValue::ZeroDenominator { denominator: data::SOCIAL_SELLING[at].to_owned() })
                }
            }
        };
        let rates = [rate(0), rate(1), rate(2)];
        reps.push((
            platform.clone(),
            rep.name.clone().unwrap_or_else(|| entity.clone()),
            (*c).map(count),
            rates,
        ));
    }
    let kpis = ["invite_accept_rate", "reply_rate", "interest_rate"]
        .iter()
        .filter_map(|k| sections.iter().find(|s| s.name == *k))
        .map(|s| stage_kpi(s, &mut notes))
        .collect();
    Social { steps, chart, reps, kpis, notes }
}

/// The window total of `kpi` for `key`'s scope, or the reason there is none.
fn total_value(
    totals: &std::collections::BTreeMap<TotalKey, Fraction>,
    kpi: &str,
    matches: &dyn Fn(&TotalKey) -> bool,
    missing: &str,
    notes: &mut Notes,
) -> Shown {
    match totals.iter().find(|(k, _)| k.kpi == kpi && matches(k)) {
        Some((_, f)) => match f.value() {
            Some(v) => Shown::Value(format::value(v, kpipe_core::Unit::Ratio, None)),
            None => notes.note(&NoValue::ZeroDenominator { denominator: "spend".to_owned() }),
        },
        None => notes.note_text(missing),
    }
}

/// Spend per currency from the metric totals; ROI and ROAS over the window from the KPI rows.
pub fn money(
    metrics: &MetricTotals,
    totals: &std::collections::BTreeMap<TotalKey, Fraction>,
    platforms: &[String],
    window: &data::Window,
    charts: &mut Charts,
) -> Money {
    let mut notes = Notes::default();
    let color = |p: &str| series_color(platforms, p);
    let no_revenue = "no value: no revenue recorded with this spend in the window (ROI needs both)";
    let mut currencies = Vec::new();
    for code in metrics.spend_currencies() {
        let per_platform = metrics.per_platform("spend", Some(&code));
        let total = metrics.total("spend", Some(&code)).unwrap_or_default();
        let money = |d: Decimal| format::value(d.to_f64(), kpipe_core::Unit::Currency, Some(&code));
        let mut slots = Vec::new();
        let by_platform = Chart {
            id: format!("spend-{code}-platforms"),
            title: format!("Spend by platform ({code})"),
            caption: None,
            kind: ChartKind::Bar,
            labels: per_platform.iter().map(|(p, _)| p.clone()).collect(),
            datasets: vec![Series {
                label: format!("Spend ({code})"),
                data: per_platform.iter().map(|(_, v)| Some(decimal_f64(*v))).collect(),
                color: LATEST_COLOR,
            }],
            unit: "currency",
            currency: Some(code.clone()),
            log: false,
        };
        slots.extend(charts.add(by_platform).map(Slot::Chart));
        let mut weeks: Vec<_> =
            metrics.spend_by_week.keys().filter(|(c, _, _)| *c == code).map(|(_, _, w)| *w).collect();
        weeks.sort();
        weeks.dedup();
        let by_week = Chart {
            id: format!("spend-{code}-weeks"),
            title: format!("Spend by week ({code})"),
            caption: None,
            kind: ChartKind::Line,
            labels: weeks
                .iter()
                .map(|w| super::model::axis_label(Grain::Week, *w, window.is_partial(Grain::Week, *w)))
                .collect(),
            datasets: per_platform
                .iter()
                .map(|(p, _)| Series {
                    label: p.clone(),
                    data: weeks
                        .iter()
                        .map(|w| {
                            metrics.spend_by_week.get(&(code.clone(), p.clone(), *w)).map(|v| decimal_f64(*v))
                        })
                        .collect(),
                    color: color(p),
                })
                .collect(),
            unit: "currency",
            currency: Some(code.clone()),
            log: false,
        };
        slots.extend(charts.add(by_week).map(Slot::Chart));
        let mut campaigns: Vec<_> = metrics.campaigns.iter().filter(|(k, _)| k.4 == code).collect();
        campaigns.sort_by(|a, b| b.1.spend.cmp(&a.1.spend).then_with(|| a.0.cmp(b.0)));
        let name_of =
            |k: &data::CampaignKey, c: &data::CampaignSpend| c.name.clone().unwrap_or_else(|| k.3.clone());
        let top = Chart {
            id: format!("spend-{code}-campaigns"),
            title: format!("Spend by campaign ({code}), top {CAMPAIGN_BARS}"),
            caption: None,
            kind: ChartKind::HorizontalBar,
            labels: campaigns
                .iter()
                .take(CAMPAIGN_BARS)
                .map(|(k, c)| format!("{} ({})", name_of(k, c), k.0))
                .collect(),
            datasets: vec![Series {
                label: format!("Spend ({code})"),
                data: campaigns.iter().take(CAMPAIGN_BARS).map(|(_, c)| Some(decimal_f64(c.spend))).collect(),
                color: LATEST_COLOR,
            }],
            unit: "currency",
            currency: Some(code.clone()),
            log: false,
        };
        slots.extend(charts.add(top).map(Slot::Chart));
        let rows = campaigns
            .iter()
            .take(CAMPAIGN_ROWS)
            .map(|(k, c)| {
                let entity = Some((k.1.clone(), k.2.clone(), k.3.clone()));
                let of = |t: &TotalKey| {
                    t.scope == Scope::Entity && t.entity == entity && t.platform.as_deref() == Some(&k.0)
                };
                CampaignRow {
                    platform: k.0.clone(),
                    account: k.2.clone(),
                    name: name_of(k, c),
                    spend: money(c.spend),
                    roi: total_value(totals, "roi", &of, no_revenue, &mut notes),
                    roas: total_value(totals, "roas", &of, no_revenue, &mut notes),
                }
            })
            .collect();
        currencies.push(CurrencySpend {
            currency: code.clone(),
            total: money(total),
            platforms: per_platform.iter().map(|(p, v)| (p.clone(), money(*v))).collect(),
            charts: slots,
            campaigns: rows,
            more: campaigns.len().saturating_sub(CAMPAIGN_ROWS),
        });
    }
    let (roi, roi_charts) = roi_by_platform(totals, platforms, &mut notes, charts);
    Money { currencies, roi, roi_charts, notes }
}

fn roi_by_platform(
    totals: &std::collections::BTreeMap<TotalKey, Fraction>,
    platforms: &[String],
    notes: &mut Notes,
    charts: &mut Charts,
) -> (Vec<RoiRow>, Vec<Slot>) {
    let mut codes: Vec<Option<String>> = totals
        .keys()
        .filter(|k| matches!(k.scope, Scope::All | Scope::Platform))
        .map(|k| k.currency.clone())
        .collect();
    codes.sort();
    codes.dedup();
    let mut rows = Vec::new();
    let mut slots = Vec::new();
    for code in codes {
        let mut series: Vec<Option<String>> = vec![None];
        series.extend(platforms.iter().cloned().map(Some));
        let mut labels = Vec::new();
        let mut values: [Vec<Option<f64>>; 2] = [Vec::new(), Vec::new()];
        for s in series {
            let find = |kpi: &str| {
                totals
                    .iter()
                    .find(|(k, _)| {
                        k.kpi == kpi
                            && k.currency == code
                            && k.platform == s
                            && matches!(k.scope, Scope::All | Scope::Platform)
                    })
                    .map(|(_, f)| *f)
            };
            let (roi, roas) = (find("roi"), find("roas"));
            if roi.is_none() && roas.is_none() {
                continue;
            }
            let currency = code.clone().unwrap_or_default();
            let money = |d: Decimal| format::value(d.to_f64(), kpipe_core::Unit::Currency, code.as_deref());
            // ROAS is revenue / spend; ROI is (revenue - spend) / spend.
            let (revenue, spend) = match (roas, roi) {
                (Some(f), _) => (f.numerator, f.denominator),
                (None, Some(f)) => {
                    (f.numerator.checked_add(f.denominator).unwrap_or_default(), f.denominator)
                }
                (None, None) => (Decimal::ZERO, Decimal::ZERO),
            };
            let mut shown = |f: Option<Fraction>| match f.map(|f| f.value()) {
                Some(Some(v)) => Shown::Value(format::value(v, kpipe_core::Unit::Ratio, None)),
                Some(None) => notes.note(&NoValue::ZeroDenominator { denominator: "spend".to_owned() }),
                None => notes.note(&NoValue::NoRow),
            };
            let label = s.clone().unwrap_or_else(|| ALL_PLATFORMS.to_owned());
            rows.push(RoiRow {
                series: label.clone(),
                currency,
                revenue: money(revenue),
                spend: money(spend),
                roi: shown(roi),
                roas: shown(roas),
            });
            labels.push(label);
            values[0].push(roi.and_then(|f| f.value()));
            values[1].push(roas.and_then(|f| f.value()));
        }
        let suffix = super::model::currency_suffix(code.as_deref());
        let [roi_values, roas_values] = values;
        let chart = Chart {
            id: format!("roi{suffix}"),
            title: format!(
                "ROI and ROAS by platform{}",
                code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default()
            ),
            caption: None,
            kind: ChartKind::Bar,
            labels,
            datasets: [("ROI", roi_values, LATEST_COLOR), ("ROAS", roas_values, SECOND_COLOR)]
                .into_iter()
                .map(|(label, data, color)| Series { label: label.to_owned(), data, color })
                .filter(|s| s.data.iter().any(Option::is_some))
                .collect(),
            unit: "ratio",
            currency: code.clone(),
            log: false,
        };
        slots.extend(charts.add(chart).map(Slot::Chart));
    }
    (rows, slots)
}
