//! Terminal tables of the latest period of each KPI: over all platforms and per platform, and
//! per account.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use chrono::NaiveDate;
use kpipe_core::Unit;

use crate::period::{Grain, Scope};
use crate::row::KpiRow;

/// One column of a table: its header and the rows whose value it shows.
struct Column<'a> {
    header: String,
    holds: Box<dyn Fn(&KpiRow) -> bool + 'a>,
}

/// The table: one line per KPI (in `order`, then any others by name), its latest period of
/// `grain` with data at the platform or all-platforms scope, the value over all platforms and
/// per platform. Values are rounded for reading; the files hold them exactly.
pub fn render_table(rows: &[KpiRow], grain: Grain, order: &[&str]) -> String {
    let rows: Vec<&KpiRow> =
        rows.iter().filter(|r| r.grain == grain && matches!(r.scope, Scope::All | Scope::Platform)).collect();
    let platforms: BTreeSet<&str> = rows.iter().filter_map(|r| r.platform.as_deref()).collect();
    let mut columns = vec![Column {
        header: "all platforms".to_owned(),
        holds: Box::new(|r: &KpiRow| r.scope == Scope::All),
    }];
    columns.extend(platforms.into_iter().map(|p| Column {
        header: p.to_owned(),
        holds: Box::new(move |r: &KpiRow| r.scope == Scope::Platform && r.platform.as_deref() == Some(p)),
    }));
    render(&rows, grain, order, &columns)
}

/// A table of `kpis` per account: the latest period of `grain` of each, one column per account
/// (`<platform> <account>`) that has a value of one of them. For KPIs over reach or users, whose
/// value over a platform of several accounts does not exist (the same person may be counted in
/// two accounts), this is where their values are.
pub fn render_account_table(rows: &[KpiRow], grain: Grain, kpis: &[&str]) -> String {
    let rows: Vec<&KpiRow> = rows
        .iter()
        .filter(|r| r.grain == grain && r.scope == Scope::Account && kpis.contains(&r.kpi.as_str()))
        .collect();
    let accounts: BTreeSet<(&str, &str)> = rows
        .iter()
        .filter(|r| r.value.is_some())
        .filter_map(|r| Some((r.platform.as_deref()?, r.account_id.as_deref()?)))
        .collect();
    let columns: Vec<Column<'_>> = accounts
        .into_iter()
        .map(|(platform, account)| Column {
            header: format!("{platform} {account}"),
            holds: Box::new(move |r: &KpiRow| {
                r.platform.as_deref() == Some(platform) && r.account_id.as_deref() == Some(account)
            }),
        })
        .collect();
    let rows: Vec<&KpiRow> = rows.into_iter().filter(|r| columns.iter().any(|c| (c.holds)(r))).collect();
    render(&rows, grain, kpis, &columns)
}

fn render(rows: &[&KpiRow], grain: Grain, order: &[&str], columns: &[Column<'_>]) -> String {
    let mut latest: BTreeMap<&str, NaiveDate> = BTreeMap::new();
    for r in rows {
        let l = latest.entry(r.kpi.as_str()).or_insert(r.period_start);
        *l = (*l).max(r.period_start);
    }
    if latest.is_empty() {
        return format!("no KPI rows at the {grain} grain\n");
    }
    let mut names: Vec<&str> = order.iter().copied().filter(|n| latest.contains_key(n)).collect();
    names.extend(latest.keys().copied().filter(|n| !order.contains(n)));

    let mut header = vec!["kpi".to_owned(), grain.as_str().to_owned()];
    header.extend(columns.iter().map(|c| c.header.clone()));
    let mut table = vec![header];
    for name in names {
        let start = latest[name];
        let cell = |column: &Column<'_>| {
            let parts: Vec<String> = rows
                .iter()
                .filter(|r| r.kpi.as_str() == name && r.period_start == start && (column.holds)(r))
                .map(|r| format_value(r))
                .collect();
            if parts.is_empty() { String::new() } else { parts.join(" / ") }
        };
        let mut line = vec![name.to_owned(), period_label(grain, start)];
        line.extend(columns.iter().map(cell));
        table.push(line);
    }
    let widths: Vec<usize> =
        (0..table[0].len()).map(|c| table.iter().map(|l| l[c].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for (i, line) in table.iter().enumerate() {
        let mut text = String::new();
        for (c, cell) in line.iter().enumerate() {
            let pad = widths[c] - cell.chars().count();
            if c < 2 {
                let _ = write!(text, "{cell}{}  ", " ".repeat(pad));
            } else {
                let _ = write!(text, "{}{cell}  ", " ".repeat(pad));
            }
        }
        let _ = writeln!(out, "{}", text.trim_end());
        if i == 0 {
            let _ = writeln!(out, "{}", "-".repeat(widths.iter().sum::<usize>() + 2 * (widths.len() - 1)));
        }
    }
    if table.iter().skip(1).any(|l| l.iter().any(|c| c == "-")) {
        let _ = writeln!(
            out,
            "(- : no value: a zero denominator, or a unique metric such as reach or users, or a starting \
             snapshot, that the period does not have)"
        );
    }
    out
}

fn period_label(grain: Grain, start: NaiveDate) -> String {
    match grain {
        Grain::Day => start.format("%Y-%m-%d").to_string(),
        Grain::Week => format!("{} (week {})", start.format("%Y-%m-%d"), start.format("%G-W%V")),
        Grain::Month => start.format("%Y-%m").to_string(),
    }
}

/// A value for reading: ratios as percentages, money with its currency.
pub fn format_value(r: &KpiRow) -> String {
    let Some(v) = r.value else { return "-".to_owned() };
    let x = v.to_f64();
    match r.unit {
        Unit::Ratio => format!("{:.2}%", x * 100.0),
        Unit::Currency => match &r.currency {
            Some(c) => format!("{x:.2} {c}"),
            None => format!("{x:.2}"),
        },
        Unit::Seconds => format!("{x:.1} s"),
        Unit::Score => format!("{x:.1}"),
        Unit::Count if v.is_integer() => thousands(&v.to_string()),
        Unit::Count => format!("{x:.2}"),
    }
}

fn thousands(digits: &str) -> String {
    let (sign, digits) = digits.strip_prefix('-').map_or(("", digits), |d| ("-", d));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{sign}{out}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands("1234567"), "1,234,567");
        assert_eq!(thousands("-1000"), "-1,000");
        assert_eq!(thousands("12"), "12");
    }
}
