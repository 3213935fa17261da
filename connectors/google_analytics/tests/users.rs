//! Unique counts are never summed: the metric registry says `users`, `new_users` and
//! `returning_users` are unique (KPI rule 2), and the connector writes `users` only at the grain
//! GA4 counts it, one value per property and day, from `totalUsers` of a report by `date`
//! (`shared/apis/ga4.md` §3), never adding up finer rows.

mod common;

use std::collections::BTreeMap;

use kpipe_core::{Additivity, DateWindow, Decimal, METRICS, Metric};
use kpipe_sim::SimServer;
use kpipe_sim::platform::ga4::{Ga4Api, ReportQuery};
use kpipe_testkit::pull;

use common::{PRIVATE_KEY, build, day, key_file, sim_config, source_table};

const SEED: u64 = 9;
const PROPERTIES: [&str; 2] = ["123456789", "987654321"];

#[test]
fn the_metric_registry_marks_user_counts_unique() {
    for metric in [Metric::Users, Metric::NewUsers, Metric::ReturningUsers] {
        let def = METRICS.iter().find(|d| d.name == metric.name()).expect("in the registry");
        assert_eq!(def.additivity, Additivity::Unique, "{} must never be summed", def.name);
        assert_eq!(metric.additivity(), Additivity::Unique);
    }
    assert_eq!(Metric::Sessions.additivity(), Additivity::Sum);
}

fn sum(values: impl IntoIterator<Item = Decimal>) -> Decimal {
    values.into_iter().fold(Decimal::ZERO, |a, v| a.checked_add(v).expect("in range"))
}

fn count(text: &str) -> Decimal {
    text.parse().expect("a count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_are_written_once_per_property_and_day_as_ga4_counts_them() {
    let api = Ga4Api::default();
    let sim = SimServer::start(sim_config(SEED, api.clone())).await.expect("the simulator");
    let key = key_file(&sim, PRIVATE_KEY, "users");
    let window = DateWindow::new(day("2026-06-01"), day("2026-06-07")).expect("a window");
    let pulled = pull(build(source_table(&sim, &PROPERTIES, &key)).as_ref(), window).await;
    pulled.expect_ok("users");

    for metric in [Metric::Users, Metric::ReturningUsers] {
        let rows: Vec<_> = pulled.rows.iter().filter(|r| r.metric.as_str() == metric.name()).collect();
        // One per property and day, at the property level, without breakdowns.
        assert_eq!(rows.len(), PROPERTIES.len() * 7, "{metric}");
        assert!(
            rows.iter().all(|r| r.level.as_str() == "property" && r.entity_id == r.account_id),
            "{metric}"
        );
        assert!(rows.iter().all(|r| r.dimensions == kpipe_core::Dimensions::default()), "{metric}");
    }
    assert!(
        !pulled.rows.iter().any(|r| r.metric.as_str() == "users" && r.level.as_str() == "channel"),
        "users at the channel level would invite summing them"
    );

    for property in PROPERTIES {
        let report = |dims: &[&str], start: &str, end: &str| {
            api.report(SEED, property, &ReportQuery::new(day(start), day(end), dims, &["totalUsers"]))
                .expect("a report")
        };
        let written: BTreeMap<_, _> = pulled
            .rows
            .iter()
            .filter(|r| r.account_id.as_str() == property && r.metric.as_str() == "users")
            .map(|r| (r.date, r.value))
            .collect();
        // Each day's value is GA4's count for that day ...
        for row in report(&["date"], "2026-06-01", "2026-06-07").rows {
            let date = chrono::NaiveDate::parse_from_str(&row.dimensions[0], "%Y%m%d").expect("a date");
            assert_eq!(written.get(&date), Some(&count(&row.metrics[0])), "{property} {date}");
            // ... which is fewer than the channels' users added up: the same person comes
            // through several channels.
            let day_text = date.to_string();
            let channels = report(&["date", "sessionDefaultChannelGroup"], &day_text, &day_text);
            let channel_sum = sum(channels.rows.iter().map(|r| count(&r.metrics[0])));
            assert!(
                channel_sum > count(&row.metrics[0]),
                "{property} {date}: the simulator must make the point"
            );
        }
        // And the week's users are not the days' users added up either: a warehouse that wants
        // them asks GA4 for the week.
        let week = report(&[], "2026-06-01", "2026-06-07");
        assert!(sum(written.values().copied()) > count(&week.rows[0].metrics[0]), "{property}");
    }
}
