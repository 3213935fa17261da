//! Prometheus' text exposition format (version 0.0.4), written by hand.
//!
//! The `prometheus-client` crate encodes OpenMetrics (a `# EOF` line, counters typed without
//! their `_total` suffix) from long-lived registries whose counters only go up by increments.
//! What kpipe exposes is a snapshot assembled at the end of each run, partly carried over from
//! the file it replaces, and node-exporter's textfile collector reads the classic format; writing
//! that format directly is a few dozen lines.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Whether a metric only goes up (until its process or file starts again) or is a level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    /// Cumulative; its name ends in `_total`.
    Counter,
    /// A value at the time of the snapshot.
    Gauge,
}

/// A metric's name, help text and type.
#[derive(Debug, PartialEq, Eq)]
pub struct Family {
    /// The metric name, `kpipe_` first.
    pub name: &'static str,
    /// One line for `# HELP`.
    pub help: &'static str,
    /// Counter or gauge.
    pub kind: MetricType,
}

impl Family {
    /// A counter (`name` ends in `_total`).
    pub const fn counter(name: &'static str, help: &'static str) -> Family {
        Family { name, help, kind: MetricType::Counter }
    }

    /// A gauge.
    pub const fn gauge(name: &'static str, help: &'static str) -> Family {
        Family { name, help, kind: MetricType::Gauge }
    }
}

/// Label names and values, in the order they are written.
pub type Labels = Vec<(&'static str, String)>;

/// Samples by metric name, then by labels: one value per series.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    samples: BTreeMap<&'static str, BTreeMap<Labels, f64>>,
}

impl Series {
    /// Sets the value of a series.
    pub fn set(&mut self, family: &'static Family, labels: Labels, value: f64) {
        self.samples.entry(family.name).or_default().insert(labels, value);
    }

    /// Adds to the value of a series (from 0).
    pub fn add(&mut self, family: &'static Family, labels: Labels, value: f64) {
        *self.samples.entry(family.name).or_default().entry(labels).or_default() += value;
    }

    /// Adds every series of `other` to this one's.
    pub fn add_all(&mut self, other: &Series) {
        for (name, series) in &other.samples {
            let mine = self.samples.entry(name).or_default();
            for (labels, value) in series {
                *mine.entry(labels.clone()).or_default() += value;
            }
        }
    }

    /// The value of a series, if it has one.
    pub fn get(&self, family: &Family, labels: &[(&'static str, &str)]) -> Option<f64> {
        self.samples.get(family.name)?.iter().find_map(|(have, value)| {
            let same = have.len() == labels.len()
                && have.iter().zip(labels).all(|((n, v), (name, want))| n == name && v == want);
            same.then_some(*value)
        })
    }

    /// Removes every series of `family`.
    pub fn clear(&mut self, family: &Family) {
        self.samples.remove(family.name);
    }

    /// True when there is no series.
    pub fn is_empty(&self) -> bool {
        self.samples.values().all(BTreeMap::is_empty)
    }
}

/// The samples of `parts`, family by family in the order of `families`: `# HELP` and `# TYPE`
/// lines, then one line per series. A family without a series is left out; a series in two
/// parts is written once, with the later part's value.
pub fn render(families: &[&'static Family], parts: &[&Series]) -> String {
    let mut out = String::new();
    for family in families {
        let mut series: BTreeMap<&Labels, f64> = BTreeMap::new();
        for part in parts {
            if let Some(samples) = part.samples.get(family.name) {
                series.extend(samples.iter().map(|(labels, value)| (labels, *value)));
            }
        }
        if series.is_empty() {
            continue;
        }
        let kind = match family.kind {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
        };
        let _ = writeln!(out, "# HELP {} {}", family.name, escape_help(family.help));
        let _ = writeln!(out, "# TYPE {} {kind}", family.name);
        for (labels, value) in series {
            out.push_str(family.name);
            if !labels.is_empty() {
                out.push('{');
                for (i, (name, value)) in labels.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "{name}=\"{}\"", escape_label_value(value));
                }
                out.push('}');
            }
            let _ = writeln!(out, " {}", format_value(value));
        }
    }
    out
}

/// A label value as the format quotes it: backslash, double quote and line feed escaped. Any
/// registered secret is taken out first, though no label is meant to hold one.
pub fn escape_label_value(value: &str) -> String {
    let value = kpipe_core::scrub(value);
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// A `# HELP` text: backslash and line feed escaped.
fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

/// A sample value: whole numbers without a fraction, others as Rust writes them (never with an
/// exponent, which the format would accept too), and the format's words for the non-finite.
fn format_value(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
}

/// The counters of an earlier snapshot (a metrics file about to be replaced), for the next one
/// to continue from. Lines that are not a sample of one of `families`' counters, or that do not
/// parse, are skipped: the worst outcome is a counter that starts again from zero, which
/// Prometheus reads as a reset.
pub fn read_counters(text: &str, families: &[&'static Family]) -> Series {
    let mut series = Series::default();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((name, labels, value)) = parse_sample(line) else { continue };
        let Some(family) = families.iter().find(|f| f.kind == MetricType::Counter && f.name == name) else {
            continue;
        };
        // Label names are taken from the known ones so that they stay `&'static`; a series with
        // another label is not one kpipe wrote.
        let known: Option<Labels> = labels
            .into_iter()
            .map(|(label, value)| LABEL_NAMES.iter().find(|n| **n == label).map(|n| (*n, value)))
            .collect();
        if let Some(known) = known
            && value.is_finite()
            && value >= 0.0
        {
            series.add(family, known, value);
        }
    }
    series
}

/// Every label name kpipe writes.
pub const LABEL_NAMES: [&str; 9] =
    ["source", "kind", "stream", "reason", "status", "quota", "account", "outcome", "version"];

/// A sample line's metric name, labels (names and unescaped values) and value.
type Sample<'a> = (&'a str, Vec<(String, String)>, f64);

/// `name{label="value",...} value [timestamp]`.
fn parse_sample(line: &str) -> Option<Sample<'_>> {
    let name_end = line.find(|c: char| c == '{' || c.is_whitespace())?;
    let name = &line[..name_end];
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(inner) = rest.strip_prefix('{') {
        let mut chars = inner.char_indices().peekable();
        let end = loop {
            // A label name, `=`, a quoted value, then `,` or `}`.
            while chars.next_if(|(_, c)| *c == ',' || c.is_whitespace()).is_some() {}
            match chars.peek() {
                Some((i, '}')) => break *i,
                None => return None,
                _ => {}
            }
            let mut label = String::new();
            while let Some((_, c)) = chars.next_if(|(_, c)| *c != '=') {
                label.push(c);
            }
            chars.next().filter(|(_, c)| *c == '=')?;
            chars.next().filter(|(_, c)| *c == '"')?;
            let mut value = String::new();
            loop {
                match chars.next()? {
                    (_, '"') => break,
                    (_, '\\') => match chars.next()? {
                        (_, 'n') => value.push('\n'),
                        (_, c) => value.push(c),
                    },
                    (_, c) => value.push(c),
                }
            }
            labels.push((label.trim().to_owned(), value));
        };
        rest = &inner[end + 1..];
    }
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some((name, labels, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    static ROWS: Family = Family::counter("kpipe_test_rows_total", "Rows.\nWritten \\ read.");
    static LEVEL: Family = Family::gauge("kpipe_test_level", "A level.");

    #[test]
    fn label_values_escape_backslash_quote_and_line_feed() {
        assert_eq!(escape_label_value(r#"a\b"c"#), r#"a\\b\"c"#);
        assert_eq!(escape_label_value("one\ntwo"), r"one\ntwo");
        assert_eq!(escape_label_value("plain é"), "plain é");
        let mut series = Series::default();
        series.set(&LEVEL, vec![("source", "we\"ird\\name\n".to_owned())], 1.5);
        let text = render(&[&ROWS, &LEVEL], &[&series]);
        assert_eq!(
            text,
            "# HELP kpipe_test_level A level.\n# TYPE kpipe_test_level gauge\n\
             kpipe_test_level{source=\"we\\\"ird\\\\name\\n\"} 1.5\n"
        );
    }

    #[test]
    fn help_is_escaped_and_values_are_written_as_the_format_reads_them() {
        let mut series = Series::default();
        series.add(&ROWS, vec![], 3.0);
        series.add(&ROWS, vec![], 4.0);
        series.set(&LEVEL, vec![("quota", "a".into())], f64::NAN);
        series.set(&LEVEL, vec![("quota", "b".into())], f64::INFINITY);
        series.set(&LEVEL, vec![("quota", "c".into())], 1_767_225_600.125);
        let text = render(&[&ROWS, &LEVEL], &[&series]);
        assert!(text.starts_with("# HELP kpipe_test_rows_total Rows.\\nWritten \\\\ read.\n"), "{text}");
        assert!(text.contains("# TYPE kpipe_test_rows_total counter\nkpipe_test_rows_total 7\n"), "{text}");
        assert!(text.contains("kpipe_test_level{quota=\"a\"} NaN\n"), "{text}");
        assert!(text.contains("kpipe_test_level{quota=\"b\"} +Inf\n"), "{text}");
        assert!(text.contains("kpipe_test_level{quota=\"c\"} 1767225600.125\n"), "{text}");
    }

    #[test]
    fn counters_are_read_back_from_a_snapshot_with_their_escaped_labels() {
        let mut series = Series::default();
        series.add(&ROWS, vec![("source", "a\"b\\c\nd".into()), ("kind", "files".into())], 12.0);
        series.add(&ROWS, vec![], 5.0);
        series.set(&LEVEL, vec![], 9.0);
        let text = render(&[&ROWS, &LEVEL], &[&series]);
        let back = read_counters(&text, &[&ROWS, &LEVEL]);
        assert_eq!(back.get(&ROWS, &[("source", "a\"b\\c\nd"), ("kind", "files")]), Some(12.0));
        assert_eq!(back.get(&ROWS, &[]), Some(5.0));
        assert_eq!(back.get(&LEVEL, &[]), None, "gauges are not carried over");
        // Lines of other programs, unknown labels and garbage are skipped.
        let back = read_counters(
            "other_total 4\nkpipe_test_rows_total{secret=\"x\"} 1\nkpipe_test_rows_total{source=\"x\" 2\n\
             kpipe_test_rows_total{source=\"y\"} -1\nkpipe_test_rows_total{source=\"z\"} 2 1767225600000\n",
            &[&ROWS],
        );
        assert_eq!(back.get(&ROWS, &[("source", "z")]), Some(2.0));
        assert_eq!(back.samples.get(ROWS.name).map(BTreeMap::len), Some(1), "{back:?}");
    }
}
