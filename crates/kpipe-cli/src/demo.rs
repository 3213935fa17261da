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
pub const CONFIG: &str = r#"# Written by `kpipe demo`. Run it again with: kpipe run -c kpipe.toml --from 2026-10-01 --to 2026-10-28
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
"#;

/// The days the sample data covers.
pub fn window() -> (NaiveDate, NaiveDate) {
    let d = |m, day| NaiveDate::from_ymd_opt(2026, m, day).unwrap_or_default();
    (d(10, 1), d(10, 28))
}

/// Writes the inputs and the configuration below `dir`; returns the configuration's path.
pub fn prepare(dir: &Path) -> std::io::Result<std::path::PathBuf> {
    std::fs::create_dir_all(dir.join("input"))?;
    for (name, content) in INPUTS {
        std::fs::write(dir.join("input").join(name), content)?;
    }
    let config = dir.join("kpipe.toml");
    std::fs::write(&config, CONFIG)?;
    Ok(config)
}

/// How to look at the result.
pub fn next_steps(dir: &Path) -> String {
    let metrics = dir.join("metrics");
    let glob = format!("{}/**/*.parquet", metrics.display());
    format!(
        "Parquet files: {metrics}/source=<name>/date=<YYYY-MM-DD>/part-00000.parquet\n\
         Read them with DuckDB:\n  duckdb -c \"SELECT platform, metric, sum(value) FROM read_parquet('{glob}', hive_partitioning = false) GROUP BY ALL ORDER BY ALL\"\n\
         or with Python:\n  python3 -c \"import pyarrow.dataset as ds; print(ds.dataset('{metrics}', format='parquet').to_table().group_by(['platform', 'metric']).aggregate([('value', 'sum')]))\"\n",
        metrics = metrics.display()
    )
}
