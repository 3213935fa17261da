//! The page: one HTML file with its styles, Chart.js, the data blob and the script that draws
//! the charts inline, so that it opens anywhere without a network. Every text that comes from
//! the data (names of campaigns, reps, accounts) is escaped; the blob is JSON in which `<`, `>`
//! and `&` are written as `\u003c`, `\u003e` and `\u0026`, so that no value can close its
//! `<script>` element.

use std::fmt::Write as _;

use super::Report;
use super::model::{Chart, ChartKind, Notes, Shown, Slot};
use super::sections::{self, FunnelStep, StageKpi};

/// Chart.js, as vendored (crates/kpipe-cli/assets/chartjs/README.md).
const CHART_JS: &str = include_str!("../../assets/chartjs/chart.umd.min.js");
/// The version of [`CHART_JS`].
pub const CHART_JS_VERSION: &str = "4.6.2";
/// The page's styles.
const CSS: &str = include_str!("page.css");
/// The script that draws the charts from the data blob.
const PAGE_JS: &str = include_str!("page.js");

/// Text for HTML content and attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// JSON for the inside of a `<script type="application/json">` element: `<`, `>` and `&` only
/// occur inside JSON strings, where their `\u` escapes mean the same; U+2028 and U+2029 are
/// escaped too, for script parsers that end lines at them.
pub fn script_json(value: &serde_json::Value) -> String {
    let text = value.to_string();
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// Chart.js without its last line, the `sourceMappingURL` comment: the map is not shipped, and
/// developer tools would try to fetch it.
fn chart_js() -> &'static str {
    let trimmed = CHART_JS.trim_end();
    match trimmed.rfind('\n') {
        Some(at) if trimmed[at + 1..].starts_with("//# sourceMappingURL=") => &trimmed[..at],
        _ => trimmed,
    }
}

/// The whole page.
pub fn page(report: &Report) -> String {
    let mut h = String::with_capacity(512 * 1024);
    let title = format!("KPI report {} to {}", report.from, report.to);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"generator\" content=\"kpipe {version}\">\n<title>{title}</title>\n<style>\n{CSS}</style>\n</head>\n<body>\n",
        version = env!("CARGO_PKG_VERSION"),
        title = esc(&title)
    );
    header(&mut h, report);
    h.push_str("<main class=\"wrap\">\n");
    overview(&mut h, report);
    journey(&mut h, report);
    social(&mut h, report);
    money(&mut h, report);
    super::cards::kpis(&mut h, report);
    about(&mut h);
    h.push_str("</main>\n");
    let _ = writeln!(
        h,
        "<footer class=\"wrap\">Written by kpipe {} on {}. Charts drawn by Chart.js {CHART_JS_VERSION} \
         (MIT License), included in this file.</footer>",
        esc(env!("CARGO_PKG_VERSION")),
        esc(&report.generated_at)
    );
    let blob = serde_json::json!({
        "output": report.output,
        "from": report.from.to_string(),
        "to": report.to.to_string(),
        "charts": report.charts.all().iter().map(|c| (c.id.clone(), serde_json::to_value(c).unwrap_or_default()))
            .collect::<serde_json::Map<String, serde_json::Value>>(),
    });
    let _ = write!(
        h,
        "<script type=\"application/json\" id=\"report-data\">{}</script>\n<script>\n{}\n</script>\n<script>\n{PAGE_JS}</script>\n</body>\n</html>\n",
        script_json(&blob),
        chart_js()
    );
    h
}

fn header(h: &mut String, r: &Report) {
    let days = (r.to - r.from).num_days() + 1;
    let money = match &r.report_currency {
        Some(code) => {
            format!("converted to {code} at the configured fixed rates in KPIs; spend in its own currencies")
        }
        None => "kept in its own currencies: one table and chart per currency".to_owned(),
    };
    let _ = write!(
        h,
        "<header class=\"top\"><div class=\"wrap\">\n<p class=\"brand\">kpipe</p>\n<h1>Marketing KPI report</h1>\n\
         <dl class=\"meta\">\n<div><dt>Output</dt><dd><code>{}</code> ({})</dd></div>\n\
         <div><dt>Window</dt><dd>{} to {} ({days} days)</dd></div>\n\
         <div><dt>Periods</dt><dd>{} week(s), {} month(s)</dd></div>\n\
         <div><dt>Money</dt><dd>{}</dd></div>\n\
         <div><dt>Read</dt><dd>{} KPI rows, {} metric rows in {} file(s)</dd></div>\n</dl>\n</div></header>\n",
        esc(&r.output),
        esc(r.format),
        r.from,
        r.to,
        r.weeks,
        r.months,
        esc(&money),
        super::format::number(r.kpi_rows as f64, 0),
        super::format::number(r.metric_rows as f64, 0),
        super::format::number(r.metric_files as f64, 0),
    );
    h.push_str(
        "<nav class=\"toc\"><div class=\"wrap\"><a href=\"#overview\">Overview</a><a href=\"#journey\">Buyer's journey</a>\
         <a href=\"#social-selling\">Social selling</a><a href=\"#spend\">Spend and ROI</a><a href=\"#kpis\">KPIs</a>\
         <a href=\"#reading\">Reading this report</a></div></nav>\n",
    );
}

fn overview(h: &mut String, r: &Report) {
    h.push_str("<section id=\"overview\">\n<h2>Overview</h2>\n<div class=\"tiles\">\n");
    for c in &r.money.currencies {
        tile(h, &format!("Spend ({})", c.currency), &c.total, "over the window");
    }
    for step in &r.journey.steps {
        tile(h, &capitalize(&step.metric.replace('_', " ")), &step.volume, &step.title);
    }
    if let Some(all) = r.money.roi.iter().find(|row| row.series == super::model::ALL_PLATFORMS) {
        tile(h, "ROAS, all platforms", &shown_text(&all.roas), &format!("revenue / spend, {}", all.currency));
    }
    h.push_str("</div>\n</section>\n");
}

fn tile(h: &mut String, label: &str, value: &str, detail: &str) {
    // A currency code after an amount is set smaller than the amount.
    let shown = match value.rsplit_once(' ') {
        Some((amount, code)) if code.len() == 3 && code.chars().all(|c| c.is_ascii_uppercase()) => {
            format!("{}<small>{}</small>", esc(amount), esc(code))
        }
        _ => esc(value),
    };
    let _ = writeln!(
        h,
        "<div class=\"tile\"><p class=\"tile-label\">{}</p><p class=\"tile-value\">{shown}</p><p class=\"tile-detail\">{}</p></div>",
        esc(label),
        esc(detail)
    );
}

pub(super) fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|c| c.to_uppercase().collect::<String>() + chars.as_str()).unwrap_or_default()
}

fn shown_text(s: &Shown) -> String {
    match s {
        Shown::Value(v) => v.clone(),
        Shown::Empty { .. } | Shown::Missing => "no value".to_owned(),
    }
}

/// A value cell: the value, or a dash with its footnote and the reason on hover.
pub(super) fn cell(s: &Shown) -> String {
    match s {
        Shown::Value(v) => esc(v),
        Shown::Missing => {
            "<span class=\"nv\" title=\"nothing stored for this period\">&mdash;</span>".to_owned()
        }
        Shown::Empty { reason, note } => {
            format!("<span class=\"nv\" title=\"{}\">no value<sup>{note}</sup></span>", esc(reason))
        }
    }
}

pub(super) fn notes(h: &mut String, notes: &Notes) {
    if notes.list().is_empty() {
        return;
    }
    h.push_str("<ol class=\"notes\">");
    for n in notes.list() {
        let _ = write!(h, "<li>{}</li>", esc(n));
    }
    h.push_str("</ol>\n");
}

/// A chart's figure: its canvas with the number of datasets, or the reason there is none.
pub(super) fn slot(h: &mut String, r: &Report, s: &Slot) {
    match s {
        Slot::Chart(id) => {
            if let Some(chart) = r.charts.get(id) {
                figure(h, chart);
            }
        }
        Slot::Empty { title, reason } => {
            let _ = writeln!(
                h,
                "<figure class=\"chart empty\"><figcaption>{}</figcaption><p class=\"why\">{}</p></figure>",
                esc(title),
                esc(reason)
            );
        }
    }
}

fn figure(h: &mut String, chart: &Chart) {
    let height = match chart.kind {
        ChartKind::HorizontalBar => (chart.labels.len() * chart.datasets.len().max(1) * 22 + 70).max(200),
        _ => 220,
    };
    let caption = chart.caption.as_deref().unwrap_or(&chart.title);
    let _ = writeln!(
        h,
        "<figure class=\"chart\"><figcaption>{}</figcaption><div class=\"canvas-box\" style=\"height:{height}px\">\
         <canvas id=\"{id}\" data-chart=\"{id}\" data-series=\"{n}\" role=\"img\" aria-label=\"{label}\"></canvas></div></figure>",
        esc(&capitalize(caption)),
        id = esc(&chart.id),
        n = chart.datasets.len(),
        label = esc(&chart.title),
    );
}

fn funnel_table(h: &mut String, steps: &[FunnelStep], first_header: &str) {
    let _ = write!(
        h,
        "<table class=\"data compact\"><thead><tr><th>{}</th><th>The bar counts</th><th class=\"num\">Volume</th>\
         <th class=\"num\">Of previous step</th></tr></thead><tbody>",
        esc(first_header)
    );
    for s in steps {
        let per = if s.per_platform.len() > 1 {
            let parts: Vec<String> =
                s.per_platform.iter().map(|(p, v)| format!("{} {}", esc(p), esc(v))).collect();
            format!("<br><small class=\"muted\">{}</small>", parts.join(" &middot; "))
        } else {
            s.per_platform
                .first()
                .map(|(p, _)| format!(" <small class=\"muted\">({})</small>", esc(p)))
                .unwrap_or_default()
        };
        let _ = write!(
            h,
            "<tr><th scope=\"row\">{}</th><td><code title=\"{}\">{}</code>{per}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            esc(&s.title),
            esc(&s.counts),
            esc(&s.metric),
            esc(&s.volume),
            s.of_previous.as_deref().map_or_else(|| "&mdash;".to_owned(), esc),
        );
    }
    h.push_str("</tbody></table>\n");
}

fn stage_kpis(h: &mut String, kpis: &[StageKpi]) {
    if kpis.is_empty() {
        h.push_str("<p class=\"muted\">No KPI of this stage has rows in the window.</p>\n");
        return;
    }
    h.push_str(
        "<table class=\"data compact fixed\"><colgroup><col style=\"width:24%\"><col style=\"width:15%\">\
         <col style=\"width:14%\"><col style=\"width:17%\"><col style=\"width:12%\"><col style=\"width:18%\"></colgroup>\
         <thead><tr><th>KPI</th><th>Latest month</th><th class=\"num\">Value</th>\
         <th>Latest whole week</th><th class=\"num\">Value</th><th class=\"num\">Change</th></tr></thead><tbody>",
    );
    for k in kpis {
        let (month_label, month) =
            k.month.as_ref().map_or((String::new(), "&mdash;".to_owned()), |(l, s)| (esc(l), cell(s)));
        let (week_label, week, change) = k
            .week
            .as_ref()
            .map_or((String::new(), "&mdash;".to_owned(), "&mdash;".to_owned()), |(l, s, c)| {
                (esc(l), cell(s), change_cell(c.as_ref(), k.lower_is_better))
            });
        let _ = write!(
            h,
            "<tr><th scope=\"row\"><a href=\"#{}\"><code>{}</code></a></th><td>{month_label}</td><td class=\"num\">{month}</td>\
             <td>{week_label}</td><td class=\"num\">{week}</td><td class=\"num\">{change}</td></tr>",
            esc(&k.anchor),
            esc(&k.name)
        );
    }
    h.push_str("</tbody></table>\n");
}

pub(super) fn change_cell(change: Option<&super::format::Change>, lower_is_better: bool) -> String {
    use super::format::Direction;
    match change {
        None => "&mdash;".to_owned(),
        Some(c) => {
            // Green for good news, red for bad: a fall is good news for costs.
            let class = match (c.direction, lower_is_better) {
                (Direction::Flat, _) => "flat",
                (Direction::Up, false) | (Direction::Down, true) => "good",
                (Direction::Up, true) | (Direction::Down, false) => "bad",
            };
            let relative = c.relative.as_deref().map(|r| format!(" ({})", esc(r))).unwrap_or_default();
            format!("<span class=\"chg {class}\">{}{relative}</span>", esc(&c.absolute))
        }
    }
}

fn journey(h: &mut String, r: &Report) {
    h.push_str(
        "<section id=\"journey\">\n<h2>Buyer's journey</h2>\n<p class=\"lede\">Volumes over the window, stage by \
         stage: each bar is one metric summed over every platform that reports it (levels and breakdowns counted \
         once). The value axis is logarithmic, as the stages differ by orders of magnitude.</p>\n<div class=\"grid two\">\n",
    );
    slot(h, r, &r.journey.chart);
    h.push_str("<div>");
    funnel_table(h, &r.journey.steps, "Stage");
    h.push_str("</div></div>\n");
    for stage in &r.journey.stages {
        let _ = writeln!(
            h,
            "<h3>{} <span class=\"tag\">stage <code>{}</code></span></h3>",
            esc(sections::stage_title(stage.stage)),
            esc(stage.stage.as_str())
        );
        stage_kpis(h, &stage.kpis);
    }
    notes(h, &r.journey.notes);
    h.push_str("</section>\n");
}

fn social(h: &mut String, r: &Report) {
    let s = &r.social;
    h.push_str(
        "<section id=\"social-selling\">\n<h2>Social selling</h2>\n<p class=\"lede\">Outreach from the social-selling \
         activity files: invitations sent, accepted, replies, and prospects who said they were interested. An \
         acceptance rate above 30% counts as very good, a reply rate above 30% as good.</p>\n<div class=\"grid two\">\n",
    );
    slot(h, r, &s.chart);
    h.push_str("<div>");
    if s.steps.is_empty() {
        h.push_str("<p class=\"muted\">No social-selling activity in the window.</p>");
    } else {
        funnel_table(h, &s.steps, "Step");
    }
    h.push_str("</div></div>\n<h3>The funnel's KPIs</h3>\n");
    stage_kpis(h, &s.kpis);
    if !s.reps.is_empty() {
        h.push_str(
            "<h3>By rep</h3>\n<table class=\"data compact\"><thead><tr><th>Platform</th><th>Rep</th>\
             <th class=\"num\">Invites sent</th><th class=\"num\">Accepted</th><th class=\"num\">Replies</th>\
             <th class=\"num\">Interested</th><th class=\"num\">Accept rate</th><th class=\"num\">Reply rate</th>\
             <th class=\"num\">Interest rate</th></tr></thead><tbody>",
        );
        for (platform, rep, counts, rates) in &s.reps {
            let _ = write!(h, "<tr><td>{}</td><th scope=\"row\">{}</th>", esc(platform), esc(rep));
            for c in counts {
                let _ = write!(h, "<td class=\"num\">{}</td>", esc(c));
            }
            for rate in rates {
                let _ = write!(h, "<td class=\"num\">{}</td>", cell(rate));
            }
            h.push_str("</tr>");
        }
        h.push_str("</tbody></table>\n");
    }
    notes(h, &s.notes);
    h.push_str("</section>\n");
}

fn money(h: &mut String, r: &Report) {
    let m = &r.money;
    h.push_str(
        "<section id=\"spend\">\n<h2>Spend and ROI</h2>\n<p class=\"lede\">Spend is summed from the metric rows of the \
         window, in the currency each account reports: amounts in two currencies are never added, so each \
         currency has its own charts and table. ROI and ROAS over the window are re-aggregated from the daily KPI \
         rows (sum of numerators over sum of denominators).</p>\n",
    );
    if m.currencies.is_empty() {
        h.push_str("<p class=\"muted\">No spend in the window.</p>\n");
    }
    for c in &m.currencies {
        let _ = write!(
            h,
            "<h3>Spend in {} <span class=\"tag\">total {}</span>{}</h3>\n<div class=\"grid one-two\">\n",
            esc(&c.currency),
            esc(&c.total),
            c.platforms
                .iter()
                .map(|(p, v)| format!("<span class=\"tag light\">{} {}</span>", esc(p), esc(v)))
                .collect::<String>()
        );
        let (first, rest) = c.charts.split_at(c.charts.len().min(2));
        for s in first {
            slot(h, r, s);
        }
        h.push_str("</div>\n");
        for s in rest {
            h.push_str("<div class=\"grid one\">");
            slot(h, r, s);
            h.push_str("</div>\n");
        }
        if !c.campaigns.is_empty() {
            let _ = write!(
                h,
                "<table class=\"data compact\"><thead><tr><th>Platform</th><th>Account</th><th>Campaign</th>\
                 <th class=\"num\">Spend ({})</th><th class=\"num\">ROI</th><th class=\"num\">ROAS</th></tr></thead><tbody>",
                esc(&c.currency)
            );
            for row in &c.campaigns {
                let _ = write!(
                    h,
                    "<tr><td>{}</td><td>{}</td><th scope=\"row\">{}</th><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                    esc(&row.platform),
                    esc(&row.account),
                    esc(&row.name),
                    esc(&row.spend),
                    cell(&row.roi),
                    cell(&row.roas)
                );
            }
            h.push_str("</tbody></table>\n");
            if c.more > 0 {
                let _ =
                    writeln!(h, "<p class=\"muted\">and {} more campaign(s) with less spend.</p>", c.more);
            }
        }
    }
    h.push_str("<h3>ROI and ROAS by platform</h3>\n<div class=\"grid two-three\">\n");
    for s in &m.roi_charts {
        slot(h, r, s);
    }
    h.push_str("<div>");
    if m.roi.is_empty() {
        h.push_str(
            "<p class=\"muted\">No ROI or ROAS rows in the window: no revenue was recorded beside spend.</p>",
        );
    } else {
        h.push_str(
            "<table class=\"data compact\"><thead><tr><th>Platform</th><th>Currency</th><th class=\"num\">Revenue</th>\
             <th class=\"num\">Spend</th><th class=\"num\">ROI</th><th class=\"num\">ROAS</th></tr></thead><tbody>",
        );
        for row in &m.roi {
            let _ = write!(
                h,
                "<tr><th scope=\"row\">{}</th><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                esc(&row.series),
                esc(&row.currency),
                esc(&row.revenue),
                esc(&row.spend),
                cell(&row.roi),
                cell(&row.roas)
            );
        }
        h.push_str("</tbody></table>");
    }
    h.push_str("</div></div>\n");
    notes(h, &m.notes);
    h.push_str("</section>\n");
}

fn about(h: &mut String) {
    h.push_str(
        "<section id=\"reading\">\n<h2>Reading this report</h2>\n<ul class=\"plain\">\n\
         <li><strong>Ratios</strong> are shown as percentages; changes of ratios in percentage points (pp), with the \
         relative change beside them. Money carries its currency code; values are rounded for reading, the files \
         hold them exactly.</li>\n\
         <li><strong>No value</strong> is never zero. Its reason is footnoted: a zero denominator (a KPI over a \
         period without clicks, posts or sessions); a unique count such as reach or users over a week or month \
         for which the platform gave no period value (people are not summed over days); a unique count over \
         several accounts (one person may be counted by two); a missing starting snapshot of followers; or a part \
         of a formula without data (ROI without revenue).</li>\n\
         <li><strong>Currencies</strong> are never added or drawn on one axis: each currency has its own chart and \
         table.</li>\n\
         <li><strong>Partial periods</strong> reach outside the window: their values cover the days stored. \
         Comparisons take the latest period that lies whole within the window.</li>\n\
         </ul>\n</section>\n",
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_text_is_escaped() {
        let name = "</script><img src=x onerror=alert(1)>\"'&";
        assert_eq!(esc(name), "&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;&quot;&#39;&amp;");
        let json = script_json(&serde_json::json!({ "label": name, "line": "a\u{2028}b" }));
        assert!(!json.contains('<') && !json.contains('>') && !json.contains('&'), "{json}");
        assert!(json.contains("\\u003c/script\\u003e") && json.contains("\\u2028"), "{json}");
        let back: serde_json::Value = serde_json::from_str(&json).expect("still JSON");
        assert_eq!(back["label"], name);
    }

    #[test]
    fn the_vendored_chart_js_is_inlined_without_its_source_map() {
        let js = chart_js();
        assert!(js.starts_with("/*!\n * Chart.js v4."), "{}", &js[..40]);
        assert!(!js.contains("sourceMappingURL") && !js.contains("</script"));
        assert!(PAGE_JS.contains("data-series") || PAGE_JS.contains("dataset.series"));
    }
}
