//! `kpipe demo`: the whole pipeline on sample data shipped inside the binary, no credentials.

use std::path::Path;

use kpipe_core::NaiveDate;

/// The sample inputs: name and content.
pub const INPUTS: [(&str, &str); 3] = [
    ("metrics.csv", include_str!("../demo/metrics.csv")),
    ("social_selling.csv", include_str!("../demo/social_selling.csv")),
    ("survey.csv", include_str!("../demo/survey.csv")),
];

/// The configuration the demo runs with, as a user would write it.
pub const CONFIG: &str = r#"# Written by `kpipe demo`. The API sources at the end point at the simulated APIs the demo
# starts, on ports that change with each demo: run the whole demo again with `kpipe demo`, or keep
# the simulated APIs up with `kpipe demo --serve` and, while it runs, run this file with
#   kpipe run -c kpipe.toml --from 2026-10-01 --to 2026-10-28
[pipeline]
output = "."
lookback_days = 28

# Ads, organic, web analytics and CRM metrics exported to a spreadsheet, in long form.
[sources.marketing_sheet]
type = "files"
kind = "metrics"
path = "input/metrics.csv"

# The sales team's LinkedIn outreach log.
[sources.social_selling]
type = "files"
kind = "social_selling"
path = "input/social_selling.csv"
platform = "linkedin"
account_id = "sales_team"

# Customer NPS survey answers.
[sources.nps_survey]
type = "files"
kind = "survey"
path = "input/survey.csv"
survey = "customer_nps"

# KPIs: the 26 of the built-in catalog are computed after every run, by day, ISO week and month,
# per entity, account, platform and over all platforms. Add your own, or override a built-in
# one by its name:
[kpis.blended_cpl]
formula = "spend[platform = 'linkedin' | 'facebook'] / leads[platform = 'hubspot']"
stage = "decision"
description = "Ad spend on LinkedIn and Facebook per HubSpot lead"

# Money in several currencies gives one KPI row per currency, unless converted at fixed rates:
[kpis_settings]
report_currency = "EUR"

[kpis_settings.currency_rates]
USD = "0.86"
"#;

/// The days the sample data covers.
pub fn window() -> (NaiveDate, NaiveDate) {
    let d = |m, day| NaiveDate::from_ymd_opt(2026, m, day).unwrap_or_default();
    (d(10, 1), d(10, 28))
}

/// Writes the inputs and the configuration below `dir`; returns the configuration's path.
pub fn prepare(dir: &Path) -> std::io::Result<std::path::PathBuf> {
    prepare_with(dir, "")
}

/// The same with `more_sources` (`[sources.*]` tables) appended to the configuration.
pub fn prepare_with(dir: &Path, more_sources: &str) -> std::io::Result<std::path::PathBuf> {
    std::fs::create_dir_all(dir.join("input"))?;
    for (name, content) in INPUTS {
        std::fs::write(dir.join("input").join(name), content)?;
    }
    let config = dir.join("kpipe.toml");
    std::fs::write(&config, format!("{CONFIG}{more_sources}"))?;
    Ok(config)
}

/// How to look at the result.
pub fn next_steps(dir: &Path) -> String {
    let metrics = dir.join("metrics");
    format!(
        "Parquet files: {metrics}/<source>.<YYYY-MM-DD>.parquet\n\
         Read them with DuckDB:\n  duckdb -c \"SELECT platform, metric, sum(value) FROM '{metrics}/*.parquet' GROUP BY ALL ORDER BY ALL\"\n\
         or with Python:\n  python3 -c \"import pyarrow.parquet as pq; print(pq.read_table('{metrics}').group_by(['platform', 'metric']).aggregate([('value', 'sum')]))\"\n\
         KPI files: {kpis}/<day|week|month>.<YYYY-MM-DD>.parquet (a period by its first day)\n\
         Recompute and look at them: kpipe kpis -c {config} --from 2026-10-01 --to 2026-10-28 --show month\n\
         HTML report (open it in a browser; no network needed): {report}\n\
         Write it again, for any window: kpipe report -c {config} --from 2026-10-01 --to 2026-10-28 --out {report}\n",
        kpis = dir.join("kpis").display(),
        report = dir.join("report.html").display(),
        config = dir.join("kpipe.toml").display(),
        metrics = metrics.display()
    )
}

/// The built-in KPIs over a unique metric (reach, users) or a starting snapshot.
const UNIQUE_KPIS: [&str; 5] = [
    "content_engagement_rate",
    "frequency",
    "cost_per_reach",
    "follower_growth_rate",
    "returning_visitor_rate",
];

/// The KPIs of the sample month over all platforms and per platform, and those over reach and
/// users per account, for the terminal.
pub fn kpi_table(dir: &Path) -> String {
    use kpipe_kpi::{Catalog, Grain, Scope};
    match kpipe_kpi::read_kpis(dir, Some(Grain::Month)) {
        Ok(mut rows) => {
            let catalog = Catalog::builtin();
            let order: Vec<&str> = catalog.definitions().map(|d| d.name.as_str()).collect();
            // KPIs over reach and users have no value over a platform of several accounts (one
            // person may be counted by two): they are shown per account.
            let by_account = kpipe_kpi::render_account_table(&rows, Grain::Month, &UNIQUE_KPIS);
            rows.retain(|r| matches!(r.scope, Scope::All | Scope::Platform));
            format!(
                "KPIs of the month (all of them by day, week and month in {}/kpis):\n{}\n\
                 Over reach and users, per account (people are not added up across accounts):\n{}",
                dir.display(),
                kpipe_kpi::render_table(&rows, Grain::Month, &order),
                by_account,
            )
        }
        Err(e) => format!("no KPI table: {e}\n"),
    }
}
