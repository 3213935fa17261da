//! The KPI cards of the page: per KPI, its comparison table (latest week and month against the
//! period before, over all platforms and per platform), its charts or the reason there are
//! none, and its values per account where values over several accounts do not exist.

use std::fmt::Write as _;

use super::Report;
use super::html::{capitalize, cell, change_cell, esc, notes, slot};
use super::model::{Compare, KpiSection, Slot};
use super::sections;

pub(super) fn kpis(h: &mut String, r: &Report) {
    h.push_str(
        "<section id=\"kpis\">\n<h2>KPIs</h2>\n<p class=\"lede\">Each KPI by week and by month over all platforms and per \
         platform, the latest whole period against the one before it, and the platforms side by side. A period marked \
         <span class=\"badge\">partial</span> reaches outside the window.</p>\n<p class=\"jump\">",
    );
    let links: Vec<String> = r
        .kpis
        .iter()
        .map(|k| format!("<a href=\"#{}\">{}</a>", esc(&k.anchor), esc(&section_title(k))))
        .collect();
    h.push_str(&links.join(" "));
    h.push_str("</p>\n");
    for k in &r.kpis {
        kpi_card(h, r, k);
    }
    h.push_str("</section>\n");
}

fn section_title(k: &KpiSection) -> String {
    match &k.currency {
        Some(c) => format!("{} ({c})", k.name),
        None => k.name.clone(),
    }
}

fn kpi_card(h: &mut String, r: &Report, k: &KpiSection) {
    let _ = write!(
        h,
        "<article class=\"card\" id=\"{}\">\n<header><h3><code>{}</code></h3><span class=\"tag\">{}</span>\
         <span class=\"tag\">{}</span><p>{}</p><p class=\"formula\"><code>{}</code></p></header>\n",
        esc(&k.anchor),
        esc(&section_title(k)),
        esc(sections::stage_title(k.stage)),
        esc(&unit_label(k)),
        esc(&k.description),
        esc(&k.formula)
    );
    let grains = [("week", &k.week), ("month", &k.month)];
    h.push_str("<table class=\"data compact\"><thead><tr><th rowspan=\"2\"></th>");
    for (name, latest) in grains {
        let Some(l) = latest else { continue };
        let partial = if l.partial { " <span class=\"badge\">partial</span>" } else { "" };
        let _ = write!(h, "<th colspan=\"3\" class=\"group\">Latest {name}: {}{partial}</th>", esc(&l.label));
    }
    h.push_str("</tr><tr>");
    for (_, latest) in grains {
        let Some(l) = latest else { continue };
        let _ = write!(
            h,
            "<th class=\"num\">Value</th><th class=\"num\">Previous ({})</th><th class=\"num\">Change</th>",
            esc(&l.previous)
        );
    }
    h.push_str("</tr></thead><tbody>");
    for row in &k.rows {
        let _ = write!(h, "<tr><th scope=\"row\">{}</th>", esc(&row.series));
        for compare in [&row.week, &row.month].into_iter().flatten() {
            compare_cells(h, compare, k.lower_is_better);
        }
        h.push_str("</tr>");
    }
    h.push_str("</tbody></table>\n");
    let reasons: Vec<&str> = k
        .charts
        .iter()
        .filter_map(|s| match s {
            Slot::Empty { reason, .. } => Some(reason.as_str()),
            Slot::Chart(_) => None,
        })
        .collect();
    if reasons.len() == k.charts.len() && reasons.windows(2).all(|w| w[0] == w[1]) {
        // No chart at all, for one reason: said once.
        let reason = capitalize(reasons.first().copied().unwrap_or_default());
        let _ = writeln!(h, "<p class=\"why wide\">No chart. {}</p>", esc(&reason));
    } else {
        h.push_str("<div class=\"grid three\">\n");
        for s in &k.charts {
            slot(h, r, s);
        }
        h.push_str("</div>\n");
    }
    if !k.accounts.is_empty() {
        h.push_str(
            "<p class=\"muted\">Per account (people are not added up across accounts):</p>\
             <table class=\"data compact narrow\"><thead><tr><th>Account</th><th>Period</th><th class=\"num\">Value</th></tr></thead><tbody>",
        );
        for a in &k.accounts {
            let _ = write!(
                h,
                "<tr><th scope=\"row\">{}</th><td>{}</td><td class=\"num\">{}</td></tr>",
                esc(&a.account),
                esc(&a.period),
                cell(&a.value)
            );
        }
        h.push_str("</tbody></table>\n");
    }
    notes(h, &k.notes);
    h.push_str("</article>\n");
}

fn unit_label(k: &KpiSection) -> String {
    match (k.unit, &k.currency) {
        (kpipe_core::Unit::Ratio, _) => "ratio, shown as %".to_owned(),
        (kpipe_core::Unit::Currency, Some(c)) => format!("money, {c}"),
        (unit, _) => unit.as_str().to_owned(),
    }
}

fn compare_cells(h: &mut String, c: &Compare, lower_is_better: bool) {
    let _ = write!(
        h,
        "<td class=\"num\">{}</td><td class=\"num muted\">{}</td><td class=\"num\">{}</td>",
        cell(&c.latest),
        cell(&c.previous),
        change_cell(c.change.as_ref(), lower_is_better)
    );
}
