//! `kpipe kpis` and the KPI stage of `kpipe run`, as users see them: files, messages, exit codes.

mod common;

use common::{config, kpipe, text, write};

const METRICS_CSV: &str = "date,platform,account,level,entity,metric,value,currency\n\
    2026-03-02,linkedin,508,campaign,c1,spend,24.5,EUR\n\
    2026-03-02,linkedin,508,campaign,c1,impressions,1200,\n\
    2026-03-02,linkedin,508,campaign,c1,clicks,12,\n\
    2026-03-03,linkedin,508,campaign,c1,spend,10,EUR\n\
    2026-03-03,linkedin,508,campaign,c1,impressions,800,\n\
    2026-03-03,linkedin,508,campaign,c1,clicks,8,\n";

#[test]
fn run_writes_kpis_and_kpis_recomputes_and_shows_them() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write(dir.path(), "data/m.csv", METRICS_CSV);
    write(
        dir.path(),
        "kpipe.toml",
        &config(
            "\n[kpis.cost_per_thousand_clicks]\nformula = \"spend / clicks * 1000\"\nstage = \"decision\"\n",
        ),
    );
    let out = kpipe(dir.path(), &["run", "-c", "kpipe.toml", "--from", "2026-03-02", "--to", "2026-03-03"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("kpis 2026-03-02..2026-03-03: "), "{}", text(&out));
    // Monday 2026-03-02: its week and March, whole, and the two days.
    for (grain, period) in
        [("day", "2026-03-02"), ("day", "2026-03-03"), ("week", "2026-03-02"), ("month", "2026-03-01")]
    {
        let file = dir.path().join(format!("out/kpis/{grain}.{period}.parquet"));
        assert!(file.is_file(), "{}", file.display());
    }

    let out = kpipe(
        dir.path(),
        &["kpis", "-c", "kpipe.toml", "--from", "2026-03-03", "--to", "2026-03-03", "--show"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let t = String::from_utf8_lossy(&out.stdout).into_owned();
    // (12 + 8) / (1200 + 800) = 1%; (24.5 + 10) / 20 = 1.725 EUR; a user KPI after the catalog.
    let line =
        |kpi: &str| t.lines().find(|l| l.starts_with(&format!("{kpi} "))).unwrap_or_default().to_owned();
    assert!(line("ctr").contains("2026-03-02 (week 2026-W10)") && line("ctr").contains("1.00%"), "{t}");
    assert!(line("cpc").contains("1.73 EUR"), "{t}");
    assert!(line("cost_per_thousand_clicks").contains("1725.00 EUR"), "{t}");
    assert!(t.lines().any(|l| l.starts_with("kpi ") && l.contains("all platforms")), "{t}");

    let out = kpipe(
        dir.path(),
        &["kpis", "-c", "kpipe.toml", "--from", "2026-03-03", "--to", "2026-03-03", "--show", "month"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("2026-03 "), "{}", text(&out));

    let out = kpipe(dir.path(), &["kpis", "-c", "kpipe.toml", "--from", "2026-03-04", "--to", "2026-03-03"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn a_bad_formula_is_a_configuration_error_with_its_column() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write(dir.path(), "data/m.csv", METRICS_CSV);
    write(
        dir.path(),
        "kpipe.toml",
        &config(
            "\n[kpis.my_kpi]\nformula = \"comments + clickz\"\nstage = \"awareness\"\n\
             \n[kpis_settings]\ngrains = [\"day\", \"year\"]\n",
        ),
    );
    for args in [
        &["run", "-c", "kpipe.toml", "--from", "2026-03-02", "--to", "2026-03-03"][..],
        &["kpis", "-c", "kpipe.toml"][..],
        &["check", "-c", "kpipe.toml"][..],
    ] {
        let out = kpipe(dir.path(), args);
        let t = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {t}");
        assert!(t.contains("kpipe.toml: kpis.my_kpi.formula: column 12: unknown metric \"clickz\""), "{t}");
        assert!(t.contains("kpipe.toml: kpis_settings.grains[1]: unknown variant `year`"), "{t}");
        assert!(!dir.path().join("out").exists(), "{args:?}: something ran before the error");
    }
}

#[test]
fn kpis_can_be_left_to_kpipe_kpis() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write(dir.path(), "data/m.csv", METRICS_CSV);
    write(dir.path(), "kpipe.toml", &config("\n[kpis_settings]\nenabled = false\n"));
    let out = kpipe(dir.path(), &["run", "-c", "kpipe.toml", "--from", "2026-03-02", "--to", "2026-03-03"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!dir.path().join("out/kpis").exists());
    let out = kpipe(dir.path(), &["kpis", "-c", "kpipe.toml", "--from", "2026-03-02", "--to", "2026-03-03"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(dir.path().join("out/kpis/month.2026-03-01.parquet").is_file());
}

#[test]
fn the_demo_ends_with_a_kpi_table() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let out = kpipe(dir.path(), &["demo", "--output", "demo"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let t = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(t.contains("KPIs of the month"), "{t}");
    for kpi in ["ctr ", "cpl ", "nps ", "interest_rate ", "blended_cpl "] {
        assert!(t.lines().any(|l| l.starts_with(kpi) && l.contains("2026-10")), "{kpi}: {t}");
    }
    assert!(dir.path().join("demo/kpis/week.2026-09-28.parquet").is_file());
    // KPIs over reach, users and starting followers have the month's value per account, from
    // the platforms' own period values (never a sum of days).
    let (_, by_account) = t.split_once("Over reach and users, per account").unwrap_or_else(|| panic!("{t}"));
    for kpi in ["content_engagement_rate ", "frequency ", "follower_growth_rate ", "returning_visitor_rate "]
    {
        let line = by_account.lines().find(|l| l.starts_with(kpi)).unwrap_or_else(|| panic!("{kpi}: {t}"));
        let values: Vec<&str> = line.split_whitespace().skip(2).filter(|v| *v != "-" && *v != "/").collect();
        assert!(!values.is_empty() && values.iter().all(|v| v.chars().any(|c| c.is_ascii_digit())), "{line}");
    }
    assert!(dir.path().join("demo/metrics_period/facebook_ads.month.2026-10-01.parquet").is_file());
}

/// What the demo's configuration file says is true: while `kpipe demo --serve` keeps the
/// simulated APIs up, `kpipe run -c <output>/kpipe.toml` runs the whole pipeline again.
#[test]
fn the_demo_configuration_runs_again_while_the_demo_serves() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let config = dir.path().join("demo/kpipe.toml");
    let mut demo = Command::new(env!("CARGO_BIN_EXE_kpipe"))
        .args(["demo", "--serve", "--output", "demo"])
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let stdout = demo.stdout.take().unwrap_or_else(|| panic!("no stdout"));
    let mut said = String::new();
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        let line = line.unwrap_or_else(|e| panic!("{e}"));
        said.push_str(&line);
        said.push('\n');
        if line.contains("stay up until Ctrl-C") {
            break;
        }
    }
    // Keep its standard output open and read: a closed pipe would end the demo at its next line.
    std::thread::spawn(move || lines.for_each(drop));
    assert!(said.contains("stay up until Ctrl-C"), "the demo ended without serving:\n{said}");
    let header = std::fs::read_to_string(&config).unwrap_or_else(|e| panic!("{e}"));
    assert!(header.contains("kpipe demo --serve"), "{header}");
    let again =
        kpipe(dir.path(), &["run", "-c", "demo/kpipe.toml", "--from", "2026-10-01", "--to", "2026-10-28"]);
    let _ = demo.kill();
    let _ = demo.wait();
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
}

/// The KPIs of `kpipe run` are computed as each source finishes, beside the others' pull; the
/// files they leave are the same as `kpipe kpis` writes over the same stored metrics afterwards,
/// with a source stored by an earlier run and not pulled now, and a source that fails.
#[test]
fn kpis_computed_during_a_run_are_those_computed_after_it() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let other = "date,platform,account,level,entity,metric,value,currency\n\
        2026-03-02,facebook,act_1,campaign,f1,spend,5,USD\n\
        2026-03-02,facebook,act_1,campaign,f1,impressions,500,\n\
        2026-03-02,facebook,act_1,campaign,f1,clicks,4,\n\
        2026-03-03,linkedin,509,campaign,c9,impressions,100,\n\
        2026-03-03,linkedin,509,campaign,c9,clicks,3,\n";
    write(dir.path(), "data/m.csv", METRICS_CSV);
    write(dir.path(), "other/m.csv", other);
    write(
        dir.path(),
        "earlier/m.csv",
        "date,platform,account,level,entity,metric,value,currency\n\
        2026-03-03,linkedin,510,campaign,c5,impressions,40,\n\
        2026-03-03,linkedin,510,campaign,c5,clicks,1,\n",
    );
    write(dir.path(), "broken/m.csv", "not,a,metrics,file\n");
    let source = |name: &str, path: &str| {
        format!("\n[sources.{name}]\ntype = \"files\"\nkind = \"metrics\"\npath = \"{path}/*.csv\"\n")
    };
    let window = ["--from", "2026-03-02", "--to", "2026-03-03"];
    write(dir.path(), "earlier.toml", &config(&source("earlier", "earlier")));
    let out = kpipe(dir.path(), &[&["run", "-c", "earlier.toml"][..], &window].concat());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let both = config(&(source("other", "other") + &source("broken", "broken")));
    write(dir.path(), "kpipe.toml", &both);
    let out = kpipe(dir.path(), &[&["run", "-c", "kpipe.toml"][..], &window].concat());
    assert_eq!(out.status.code(), Some(1), "the broken source fails the run: {}", text(&out));
    assert!(text(&out).contains("kpis 2026-03-02..2026-03-03: "), "{}", text(&out));
    let during = kpi_lines(dir.path());
    // Three sources' accounts over both platforms: the all-platforms scope adds up every source.
    assert!(during.iter().any(|l| l.contains("scope=all")), "{during:?}");
    for account in ["508", "509", "510", "act_1"] {
        assert!(during.iter().any(|l| l.contains(&format!("account={account} "))), "{account}: {during:?}");
    }

    let out = kpipe(dir.path(), &[&["kpis", "-c", "kpipe.toml"][..], &window].concat());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(kpi_lines(dir.path()), during);
    let staging = dir.path().join("out/.kpipe/staging/kpis");
    let left = std::fs::read_dir(&staging).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0, "nothing staged is left");
}

fn kpi_lines(dir: &std::path::Path) -> Vec<String> {
    let rows = kpipe_kpi::read_kpis(&dir.join("out"), None).unwrap_or_else(|e| panic!("{e}"));
    let mut lines: Vec<String> = rows
        .iter()
        .map(|r| {
            let s = |l: &Option<kpipe_core::Label>| l.as_deref().unwrap_or("-").to_owned();
            format!(
                "{} {} {} scope={} platform={} source={} account={} entity={} {:?} {:?} {:?} {:?}",
                r.kpi,
                r.grain,
                r.period_start,
                r.scope,
                s(&r.platform),
                s(&r.source),
                s(&r.account_id),
                s(&r.entity_id),
                r.value,
                r.numerator,
                r.denominator,
                r.currency
            )
        })
        .collect();
    lines.sort();
    lines
}
