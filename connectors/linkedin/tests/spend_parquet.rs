//! Spend is exact end to end: LinkedIn's decimal strings `"24.457317520310493"` and the float
//! residue `"-2E-18"` (`shared/apis/linkedin.md` §3.1, "Number formats") go through the
//! connector and the Parquet sink and are read back as exactly those decimals, with the
//! account's currency. Reach rows are stored per day as sent.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use chrono::Utc;
use kpipe_core::{Decimal, MetricBatch, Sink, SinkTarget};
use kpipe_sim::platform::linkedin::LinkedInApi;
use kpipe_sim::{Fault, FaultRule};
use kpipe_sink_parquet::ParquetSink;
use kpipe_sink_parquet::read::read_dir;
use kpipe_testkit::pull;
use serde_json::json;

use common::{build, sim_config, source_table, start, window};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spend_decimals_survive_the_trip_to_parquet() {
    let api = LinkedInApi { organizations: Vec::new(), ..LinkedInApi::default() };
    let range =
        json!({"start": {"year": 2026, "month": 7, "day": 14}, "end": {"year": 2026, "month": 7, "day": 14}});
    // The first analytics response: account 508000001 (USD) by campaign, as in the notes' fixture.
    let answer = Fault::respond(
        200,
        json!({"paging": {"start": 0, "count": 10, "links": []}, "elements": [
            {"pivotValues": ["urn:li:sponsoredCampaign:508000001001"], "dateRange": range,
             "impressions": 19464, "clicks": 106, "costInLocalCurrency": "24.457317520310493",
             "approximateMemberReach": 15877},
            {"pivotValues": ["urn:li:sponsoredCampaign:508000001002"], "dateRange": range,
             "impressions": 0, "clicks": 0, "costInLocalCurrency": "-2E-18",
             "approximateMemberReach": 0}
        ]}),
    );
    let config =
        sim_config(3, api.clone()).with_fault(FaultRule::on_request(1, answer).on_path("/rest/adAnalytics"));
    let sim = start(config).await;
    // One request at a time: the canned answer is for the first one, account 508000001's.
    let source = build(source_table(&sim, &api, "concurrency = 1"));
    let w = window("2026-07-14", "2026-07-14");
    let pulled = pull(source.as_ref(), w).await;
    pulled.expect_ok("spend");

    let dir = tempfile::tempdir().unwrap();
    let sink = ParquetSink::new(dir.path());
    let target = SinkTarget {
        source: "linkedin_ads".into(),
        window: w,
        run_id: "spend-test".into(),
        pulled_at: Utc::now(),
    };
    let mut writer = sink.open(target).unwrap();
    writer.write(&MetricBatch::new(pulled.rows.clone())).unwrap();
    writer.commit().unwrap();

    let stored = read_dir(dir.path()).unwrap();
    assert_eq!(stored.len(), pulled.rows.len());
    let find = |entity: &str, metric: &str| {
        stored
            .iter()
            .find(|s| {
                s.row.level == "campaign" && s.row.entity_id == entity && s.row.metric.as_str() == metric
            })
            .map(|s| s.row.clone())
            .unwrap_or_else(|| panic!("no stored {metric} of campaign {entity}"))
    };
    let spend = find("508000001001", "spend");
    assert_eq!(spend.value, "24.457317520310493".parse::<Decimal>().unwrap());
    assert_eq!(spend.value.to_string(), "24.457317520310493");
    assert_eq!(spend.currency.map(|c| c.as_str().to_owned()).as_deref(), Some("USD"));
    let residue = find("508000001002", "spend");
    assert_eq!(residue.value, "-2E-18".parse::<Decimal>().unwrap());
    assert_eq!(residue.value.units(), -2);
    assert_eq!(find("508000001001", "reach").value, Decimal::from_i64(15_877));
    // The campaign's name came from the campaign search and is stored with the row.
    assert_eq!(spend.entity_name.as_deref(), api.campaigns(508_000_001).first().map(|c| c.name.as_str()));
}
