//! User definitions end to end: a new KPI with a filter and a scale, an override of a built-in
//! one, and formulas that cannot be computed, reported with their key and column.

mod common;

use std::collections::BTreeMap;

use common::{day, lines, rows, store};
use kpipe_core::{DateWindow, Unit};
use kpipe_kpi::{Catalog, KpiDefinitionConfig, Settings, Stage, read_kpis};

const METRICS: &str = "source,platform,account,level,entity,date,metric,value,currency,channel
li_org,linkedin,org_9,organization,org_9,2026-10-05,likes,40,,
li_org,linkedin,org_9,organization,org_9,2026-10-05,comments,5,,
li_org,linkedin,org_9,organization,org_9,2026-10-05,shares,6,,
li_org,linkedin,org_9,organization,org_9,2026-10-05,reach,2500,,
li_org,linkedin,org_9,organization,org_9,2026-10-05,linkedin.video_completions,7,,
li_ads,linkedin,508,campaign,c1,2026-10-05,impressions,1000,,
li_ads,linkedin,508,campaign,c1,2026-10-05,clicks,20,,
li_ads,linkedin,508,campaign,c1,2026-10-05,link_clicks,15,,
fb,facebook,act_1,page,p1,2026-10-05,likes,30,,
fb,facebook,act_1,page,p1,2026-10-05,comments,3,,
fb,facebook,act_1,page,p1,2026-10-05,shares,7,,
fb,facebook,act_1,page,p1,2026-10-05,reach,4000,,
";

fn catalog(toml_text: &str) -> Result<Catalog, Vec<String>> {
    let defs: BTreeMap<String, KpiDefinitionConfig> =
        toml::from_str(toml_text).map_err(|e| vec![e.to_string()])?;
    Catalog::new(&defs).map_err(|e| e.iter().map(ToString::to_string).collect())
}

fn compute(catalog: &Catalog) -> Vec<String> {
    let dir = tempfile::tempdir().expect("test setup");
    let window = DateWindow::day(day("2026-10-05"));
    store(dir.path(), &rows(METRICS), window);
    let settings = Settings { grains: vec![kpipe_kpi::Grain::Day], ..Settings::default() };
    kpipe_kpi::run(dir.path(), catalog, &settings, window, "defs").expect("the KPI stage runs");
    lines(&read_kpis(dir.path(), None).expect("KPI files read back"))
}

fn of<'a>(all: &'a [String], kpi: &str) -> Vec<&'a str> {
    all.iter().filter(|l| l.starts_with(&format!("{kpi} "))).map(String::as_str).collect()
}

#[test]
fn a_user_kpi_with_a_filter_a_scale_and_an_extra_metric() {
    let c = catalog(
        r#"
[linkedin_engagement]
formula = "(likes + comments + shares) / reach"
stage = "consideration"
scale = 100
unit = "score"
filter = { platform = "linkedin" }

[completions_per_share]
formula = "linkedin.video_completions / shares"
stage = "awareness"
"#,
    )
    .unwrap();
    assert_eq!(c.len(), 30);
    let def = c.get("linkedin_engagement").unwrap();
    assert_eq!((def.stage, def.unit, def.builtin), (Stage::Consideration, Unit::Score, false));
    let all = compute(&c);
    // (40 + 5 + 6) × 100 / 2500 = 2.04; Facebook's page is filtered out at every scope.
    assert_eq!(
        of(&all, "linkedin_engagement"),
        [
            "linkedin_engagement day 2026-10-05 account linkedin:li_org/org_9 - = 2.04 (5100 / 2500) score consideration",
            "linkedin_engagement day 2026-10-05 all * - = 2.04 (5100 / 2500) score consideration",
            "linkedin_engagement day 2026-10-05 entity linkedin:li_org/org_9/organization/org_9 - = 2.04 (5100 / 2500) score consideration",
            "linkedin_engagement day 2026-10-05 platform linkedin - = 2.04 (5100 / 2500) score consideration",
        ]
    );
    // An extra metric (`<platform>.<name>`) adds up like any count: 7 / (6 + 7).
    assert!(of(&all, "completions_per_share").contains(
        &"completions_per_share day 2026-10-05 all * - = 0.538461538461538462 (7 / 13) ratio awareness"
    ));
    // The built-in definition is still there, over both platforms.
    assert!(of(&all, "content_engagement_rate").contains(
        &"content_engagement_rate day 2026-10-05 entity facebook:fb/act_1/page/p1 - = 0.01 (40 / 4000) ratio consideration"
    ));
}

#[test]
fn a_user_definition_overrides_a_builtin_one() {
    // CTR from landing-page clicks, as a percentage; keys left out (stage) keep the built-in's.
    let c =
        catalog("[ctr]\nformula = \"link_clicks / impressions\"\nscale = 100\nunit = \"score\"\n").unwrap();
    assert_eq!(c.len(), 28);
    let ctr = c.get("ctr").unwrap();
    assert_eq!(
        (ctr.formula.as_str(), ctr.stage, ctr.builtin),
        ("link_clicks / impressions", Stage::Consideration, false)
    );
    let all = compute(&c);
    assert!(of(&all, "ctr").contains(
        &"ctr day 2026-10-05 entity linkedin:li_ads/508/campaign/c1 - = 1.5 (1500 / 1000) score consideration"
    ));
    // And a built-in can be switched off.
    let c = catalog("[ctr]\nenabled = false\n").unwrap();
    assert!(c.get("ctr").is_none());
    assert!(of(&compute(&c), "ctr").is_empty());
}

#[test]
fn bad_formulas_are_configuration_errors_with_their_column() {
    let err = |text: &str| catalog(text).unwrap_err();
    assert_eq!(
        err("[my_kpi]\nformula = \"(likes + clickz) / reach\"\nstage = \"consideration\"\n"),
        ["my_kpi.formula: column 10: unknown metric \"clickz\""]
    );
    assert_eq!(
        err("[my_kpi]\nformula = \"clicks / / impressions\"\nstage = \"consideration\"\n"),
        ["my_kpi.formula: column 10: unexpected `/`; expected a metric, a number or `(`"]
    );
    assert_eq!(
        err("[my_kpi]\nformula = \"spend * clicks\"\nstage = \"decision\"\n"),
        ["my_kpi.formula: column 7: a product of two metrics is not a KPI; multiply by numbers only"]
    );
    // An override's formula is checked the same way; every mistake is reported at once.
    assert_eq!(
        err("[ctr]\nformula = \"clicks / impresions\"\n[cpc]\nformula = \"spend / (clicks\"\n"),
        [
            "ctr.formula: column 10: unknown metric \"impresions\"",
            "cpc.formula: column 16: expected `)`, found the end of the formula"
        ]
    );
}
