//! The catalog as text tables for a terminal, and as the Markdown tables of the connector docs.

use std::fmt::Write as _;

use super::model::{AdditivityName, ConnectorEntry, GrainName, MetricEntry, UnitName};

/// How tables are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Aligned columns.
    Text,
    /// GitHub-flavoured Markdown.
    Markdown,
}

fn unit(u: Option<UnitName>) -> &'static str {
    match u {
        Some(UnitName::Count) => "count",
        Some(UnitName::Currency) => "currency",
        Some(UnitName::Seconds) => "seconds",
        Some(UnitName::Ratio) => "ratio",
        Some(UnitName::Score) => "score",
        None => "varies",
    }
}

fn additivity(a: Option<AdditivityName>) -> &'static str {
    match a {
        Some(AdditivityName::Sum) => "sum",
        Some(AdditivityName::Unique) => "unique",
        Some(AdditivityName::Snapshot) => "snapshot",
        None => "-",
    }
}

fn grains(g: &[GrainName]) -> String {
    let names: Vec<&str> = g
        .iter()
        .map(|g| match g {
            GrainName::Day => "day",
            GrainName::Week => "week",
            GrainName::Month => "month",
        })
        .collect();
    names.join(", ")
}

fn list(items: &[String]) -> String {
    if items.is_empty() { "-".to_owned() } else { items.join(", ") }
}

/// A cell's text on one line; in Markdown, with `|` escaped.
fn cell(text: &str, style: Style) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match style {
        Style::Text => one_line,
        Style::Markdown => one_line.replace('|', "\\|"),
    }
}

/// `rows` under `headers`: aligned columns, or a Markdown table.
pub fn table(headers: &[&str], rows: &[Vec<String>], style: Style) -> String {
    let rows: Vec<Vec<String>> = rows.iter().map(|r| r.iter().map(|c| cell(c, style)).collect()).collect();
    let mut out = String::new();
    match style {
        Style::Markdown => {
            let _ = writeln!(out, "| {} |", headers.join(" | "));
            let _ = writeln!(out, "|{}", "---|".repeat(headers.len()));
            for row in &rows {
                let _ = writeln!(out, "| {} |", row.join(" | "));
            }
        }
        Style::Text => {
            let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
            for row in &rows {
                for (w, c) in widths.iter_mut().zip(row) {
                    *w = (*w).max(c.chars().count());
                }
            }
            let line = |cells: Vec<&str>| {
                let last = cells.len().saturating_sub(1);
                let mut text = String::from("  ");
                for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
                    text.push_str(c);
                    if i < last {
                        text.push_str(&" ".repeat(w - c.chars().count() + 2));
                    }
                }
                text.trim_end().to_owned()
            };
            let _ = writeln!(out, "{}", line(headers.to_vec()));
            for row in &rows {
                let _ = writeln!(out, "{}", line(row.iter().map(String::as_str).collect()));
            }
        }
    }
    out
}

fn code(text: &str, style: Style) -> String {
    match style {
        Style::Text => text.to_owned(),
        Style::Markdown => format!("`{text}`"),
    }
}

fn metric_row(stream: &str, m: &MetricEntry, style: Style) -> Vec<String> {
    let mut note = m.note.clone().unwrap_or_default();
    if m.configured && note.is_empty() {
        note = "when configured".to_owned();
    }
    vec![
        code(stream, style),
        code(&m.metric, style),
        unit(m.unit).to_owned(),
        additivity(m.additivity).to_owned(),
        grains(&m.grains),
        code(&m.platform_field, style),
        if m.configured { "configured".to_owned() } else { "always".to_owned() },
        note,
    ]
}

/// The streams, metrics, configuration keys and KPIs of one connector. In Markdown, the
/// sections have `###` headings, for a connector page.
pub fn connector(c: &ConnectorEntry, style: Style) -> String {
    let heading = |title: &str| match style {
        Style::Text => format!("{title}\n"),
        Style::Markdown => format!("### {title}\n\n"),
    };
    let mut out = String::new();
    out.push_str(&heading("Streams"));
    let streams: Vec<Vec<String>> = c
        .streams
        .iter()
        .map(|s| {
            let levels = match &s.levels_from {
                Some(from) if s.levels.is_empty() => format!("from {from}"),
                Some(from) => format!("{}, or from {from}", s.levels.join(", ")),
                None => list(&s.levels),
            };
            vec![code(&s.name, style), levels, list(&s.dimensions), s.description.clone()]
        })
        .collect();
    out.push_str(&table(&["stream", "levels", "dimensions", "what it pulls"], &streams, style));
    out.push('\n');
    out.push_str(&heading("Metrics"));
    let metrics: Vec<Vec<String>> =
        c.streams.iter().flat_map(|s| s.metrics.iter().map(|m| metric_row(&s.name, m, style))).collect();
    out.push_str(&table(
        &["stream", "metric", "unit", "additivity", "grains", "platform field", "pulled", "notes"],
        &metrics,
        style,
    ));
    out.push('\n');
    out.push_str(&heading(&format!("Configuration ({})", code(&format!("type = \"{}\"", c.kind), style))));
    let keys: Vec<Vec<String>> = c
        .config
        .keys
        .iter()
        .map(|k| {
            vec![
                code(&k.key, style),
                k.type_name.clone(),
                if k.required { "yes".to_owned() } else { "no".to_owned() },
                k.default.as_ref().map(|d| code(&d.to_string(), style)).unwrap_or_default(),
                if k.secret { "secret".to_owned() } else { String::new() },
                k.description.clone().unwrap_or_default(),
            ]
        })
        .collect();
    out.push_str(&table(&["key", "type", "required", "default", "secret", "meaning"], &keys, style));
    out.push('\n');
    out.push_str(&heading("KPIs from its metrics alone"));
    let kpis: Vec<String> = c.kpis.iter().map(|k| code(k, style)).collect();
    match style {
        Style::Text => {
            let _ = writeln!(out, "  {}", list(&kpis));
        }
        Style::Markdown => {
            let _ = writeln!(out, "{}", list(&kpis));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_tables_align_and_markdown_tables_escape() {
        let rows = vec![vec!["a".to_owned(), "x | y".to_owned()], vec!["long".to_owned(), "z".to_owned()]];
        assert_eq!(table(&["k", "v"], &rows, Style::Text), "  k     v\n  a     x | y\n  long  z\n");
        assert_eq!(
            table(&["k", "v"], &rows, Style::Markdown),
            "| k | v |\n|---|---|\n| a | x \\| y |\n| long | z |\n"
        );
    }
}
