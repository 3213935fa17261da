//! The results: one table for the terminal, and the same figures appended to
//! `docs/benchmarks.md` with the machine and the command.

use std::fmt::Write as _;
use std::path::Path;

use crate::scenario::Scenario;

/// Whether a figure meets its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Verdict {
    /// Met.
    Met,
    /// Not met.
    Missed,
}

impl Verdict {
    /// `Met` when `ok`.
    pub fn of(ok: bool) -> Verdict {
        if ok { Verdict::Met } else { Verdict::Missed }
    }

    fn word(self) -> &'static str {
        match self {
            Verdict::Met => "met",
            Verdict::Missed => "NOT met",
        }
    }
}

/// One figure of a scenario.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Figure {
    /// What it is.
    pub name: String,
    /// Its value, formatted.
    pub value: String,
    /// The target and whether it is met.
    pub target: Option<(String, Verdict)>,
    /// What it comes from.
    pub note: Option<String>,
}

impl Figure {
    /// A figure without target.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Figure {
        Figure { name: name.into(), value: value.into(), target: None, note: None }
    }

    /// The same with a target.
    pub fn target(mut self, target: impl Into<String>, verdict: Verdict) -> Figure {
        self.target = Some((target.into(), verdict));
        self
    }

    /// The same with a note.
    pub fn note(mut self, note: impl Into<String>) -> Figure {
        self.note = Some(note.into());
        self
    }
}

/// What one scenario measured.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ScenarioReport {
    /// Which.
    pub scenario: Scenario,
    /// How long it took, setup included, seconds.
    pub seconds: f64,
    /// Its figures.
    pub figures: Vec<Figure>,
    /// Why it did not run, when it did not.
    pub skipped: Option<String>,
    /// Why it failed, when it failed.
    pub error: Option<String>,
    /// The peak memory of a memory scenario, MiB.
    pub peak_rss_mib: Option<f64>,
    /// The sampled peak of its pull alone, MiB.
    pub pull_peak_mib: Option<f64>,
}

impl ScenarioReport {
    /// An empty report.
    pub fn new(scenario: Scenario) -> ScenarioReport {
        ScenarioReport {
            scenario,
            seconds: 0.0,
            figures: Vec::new(),
            skipped: None,
            error: None,
            peak_rss_mib: None,
            pull_peak_mib: None,
        }
    }

    /// A scenario that could not run.
    pub fn failed(scenario: Scenario, error: String) -> ScenarioReport {
        ScenarioReport { error: Some(error), ..ScenarioReport::new(scenario) }
    }

    /// Adds a figure.
    pub fn push(&mut self, figure: Figure) {
        self.figures.push(figure);
    }

    /// Adds figures.
    pub fn extend(&mut self, figures: impl IntoIterator<Item = Figure>) {
        self.figures.extend(figures);
    }
}

/// The check across the two memory scenarios: peaks within 20% of each other, for the whole
/// process and for the pull alone.
pub fn memory_growth(reports: &[ScenarioReport]) -> Vec<Figure> {
    let of =
        |s, peak: fn(&ScenarioReport) -> Option<f64>| reports.iter().find(|r| r.scenario == s).and_then(peak);
    let growth = |name: &str, peak: fn(&ScenarioReport) -> Option<f64>| {
        let (small, large) = (of(Scenario::Memory1M, peak)?, of(Scenario::Memory10M, peak)?);
        let growth = large / small.max(f64::EPSILON) - 1.0;
        Some(
            Figure::new(name, format!("{:+.0}%", growth * 100.0))
                .target("within 20%", Verdict::of(growth.abs() <= 0.20))
                .note(format!("{small:.0} MiB and {large:.0} MiB")),
        )
    };
    [
        growth("10M peak vs 1M peak", |r| r.peak_rss_mib),
        growth("the same, the pull alone", |r| r.pull_peak_mib),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The table printed at the end of `cargo xtask bench`.
pub fn table(reports: &[ScenarioReport], extra: &[Figure]) -> String {
    let mut rows: Vec<[String; 4]> = Vec::new();
    for r in reports {
        let title = format!("{} ({:.0} s)", r.scenario.name(), r.seconds);
        if let Some(why) = &r.skipped {
            rows.push([title, "skipped".into(), one_line(why), String::new()]);
            continue;
        }
        if let Some(error) = &r.error {
            rows.push([title, "failed".into(), one_line(error), String::new()]);
            continue;
        }
        for (i, f) in r.figures.iter().enumerate() {
            let target = f.target.as_ref().map(|(t, v)| format!("{t}: {}", v.word())).unwrap_or_default();
            rows.push([
                if i == 0 { title.clone() } else { String::new() },
                f.name.clone(),
                f.value.clone(),
                target,
            ]);
        }
    }
    for f in extra {
        let target = f.target.as_ref().map(|(t, v)| format!("{t}: {}", v.word())).unwrap_or_default();
        rows.push(["memory".into(), f.name.clone(), f.value.clone(), target]);
    }
    let headers = ["scenario", "figure", "value", "target"];
    let mut widths = headers.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: [&str; 4]| {
        let _ = writeln!(
            out,
            "{:<w0$}  {:<w1$}  {:<w2$}  {}",
            cells[0],
            cells[1],
            cells[2],
            cells[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        );
    };
    line(&mut out, headers);
    for row in &rows {
        line(&mut out, [&row[0], &row[1], &row[2], &row[3]]);
    }
    out
}

/// The machine the figures come from, from `/proc`.
#[derive(Debug, Clone, PartialEq)]
pub struct Machine {
    /// Logical cores.
    pub cores: usize,
    /// The CPU's model name.
    pub cpu: String,
    /// Memory, GiB.
    pub ram_gib: u64,
    /// The 5-minute load average when read: other work on the machine slows wall times.
    pub load: Option<f64>,
}

impl Machine {
    /// Reads `/proc/cpuinfo` and `/proc/meminfo`; unknown parts are left empty.
    pub fn read() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let load = std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()));
        Machine { load, ..Machine::parse(&cpuinfo, &meminfo) }
    }

    /// The same from the two files' text.
    pub fn parse(cpuinfo: &str, meminfo: &str) -> Machine {
        let value = |line: &str| line.split_once(':').map(|(_, v)| v.trim().to_owned()).unwrap_or_default();
        let cores = cpuinfo.lines().filter(|l| l.starts_with("processor")).count();
        let cpu = cpuinfo.lines().find(|l| l.starts_with("model name")).map(value).unwrap_or_default();
        let kib = meminfo
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
        Machine { cores, cpu, ram_gib: (kib + (1 << 19)) >> 20, load: None }
    }

    /// `2 cores (AMD EPYC), 24 GiB`, and the load average when known.
    pub fn describe(&self) -> String {
        let cpu = if self.cpu.is_empty() { "unknown CPU" } else { &self.cpu };
        let mut text = format!("{} cores ({cpu}), {} GiB", self.cores, self.ram_gib);
        if let Some(load) = self.load {
            text.push_str(&format!(", load average {load:.1} over the last 5 minutes of the run"));
        }
        text
    }
}

/// The section `docs/benchmarks.md` gets on the first run, above the first results.
pub const SECTION_INTRO: &str = include_str!("../doc/end-to-end.md");

/// The heading of the section.
pub const SECTION_HEADING: &str = "## End to end";

/// `text` on one line: a table cell cannot hold line breaks.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn escape(cell: &str) -> String {
    one_line(cell).replace('|', "\\|")
}

/// The results of one run as Markdown: when, where, the command, the figures.
pub fn markdown(
    reports: &[ScenarioReport],
    extra: &[Figure],
    when: &str,
    machine: &Machine,
    rustc: &str,
    command: &str,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "\n### {when}\n");
    let _ = writeln!(out, "Machine: {}; {rustc}. Command: `{command}`.\n", machine.describe());
    let _ = writeln!(out, "| scenario | figure | value | target | note |");
    let _ = writeln!(out, "|---|---|---|---|---|");
    for r in reports {
        let title = format!("{} ({:.0} s)", r.scenario.name(), r.seconds);
        if let Some(why) = &r.skipped {
            let _ = writeln!(out, "| {title} | skipped | | | {} |", escape(why));
            continue;
        }
        if let Some(error) = &r.error {
            let _ = writeln!(out, "| {title} | failed | | | {} |", escape(error));
            continue;
        }
        for (i, f) in r.figures.iter().enumerate() {
            let target = f.target.as_ref().map(|(t, v)| format!("{t}: {}", v.word())).unwrap_or_default();
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                if i == 0 { title.as_str() } else { "" },
                escape(&f.name),
                escape(&f.value),
                escape(&target),
                escape(f.note.as_deref().unwrap_or(""))
            );
        }
    }
    for f in extra {
        let target = f.target.as_ref().map(|(t, v)| format!("{t}: {}", v.word())).unwrap_or_default();
        let _ = writeln!(
            out,
            "| memory | {} | {} | {} | {} |",
            escape(&f.name),
            escape(&f.value),
            escape(&target),
            escape(f.note.as_deref().unwrap_or(""))
        );
    }
    out
}

/// Appends `results` to the "End to end" section of the document at `path`, creating the
/// section (after the existing ones) when it is not there yet.
pub fn append_to_doc(path: &Path, results: &str) -> std::io::Result<()> {
    let mut text = std::fs::read_to_string(path)?;
    if !text.ends_with('\n') {
        text.push('\n');
    }
    match text.find(&format!("\n{SECTION_HEADING}\n")) {
        None => {
            text.push('\n');
            text.push_str(SECTION_INTRO);
            if !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(results);
        }
        Some(at) => {
            // Results go at the end of the section: before the next section, if one follows.
            let after = at + SECTION_HEADING.len() + 2;
            match text[after..].find("\n## ") {
                Some(next) => {
                    text.insert_str(after + next + 1, &format!("{}\n", results.trim_start_matches('\n')))
                }
                None => text.push_str(results),
            }
        }
    }
    std::fs::write(path, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_machine_is_read_from_proc() {
        let cpuinfo = "processor\t: 0\nmodel name\t: AMD EPYC\n\nprocessor\t: 1\nmodel name\t: AMD EPYC\n";
        let meminfo = "MemTotal:       24606012 kB\nMemFree: 1 kB\n";
        let m = Machine::parse(cpuinfo, meminfo);
        assert_eq!(m, Machine { cores: 2, cpu: "AMD EPYC".into(), ram_gib: 23, load: None });
        assert_eq!(m.describe(), "2 cores (AMD EPYC), 23 GiB");
    }

    #[test]
    fn results_go_into_the_end_to_end_section() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.md");
        std::fs::write(&path, "# Benchmarks\n\n## Sink\n\ntext\n").unwrap();
        append_to_doc(&path, "\n### run 1\n").unwrap();
        append_to_doc(&path, "\n### run 2\n").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.matches(SECTION_HEADING).count(), 1);
        let (one, two, sink) =
            (text.find("run 1").unwrap(), text.find("run 2").unwrap(), text.find("## Sink").unwrap());
        assert!(sink < one && one < two, "{text}");

        // A section that is followed by another keeps its results inside.
        std::fs::write(&path, format!("# B\n\n{SECTION_HEADING}\n\nintro\n\n## Later\n\nx\n")).unwrap();
        append_to_doc(&path, "\n### run 3\n").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.find("run 3").unwrap() < text.find("## Later").unwrap(), "{text}");
    }

    #[test]
    fn a_failed_target_shows_in_the_table() {
        let mut r = ScenarioReport::new(Scenario::Cpu);
        r.push(Figure::new("rows per CPU second", "400,000").target(">= 1,000,000", Verdict::Missed));
        let mut skipped = ScenarioReport::new(Scenario::Peer);
        skipped.skipped = Some("pip install: no network".into());
        let text = table(&[r.clone(), skipped], &[]);
        assert!(text.contains(">= 1,000,000: NOT met"), "{text}");
        assert!(text.contains("skipped") && text.contains("no network"), "{text}");
        let md = markdown(
            &[r],
            &[],
            "2026-11-23",
            &Machine { cores: 2, cpu: "X".into(), ram_gib: 4, load: None },
            "rustc 1.95",
            "cargo xtask bench",
        );
        assert!(md.contains("| cpu (0 s) | rows per CPU second | 400,000 | >= 1,000,000: NOT met |"), "{md}");
    }
}
