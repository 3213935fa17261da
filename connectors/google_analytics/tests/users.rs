//! Unique counts are never summed: the metric registry says `users`, `new_users` and
//! `returning_users` are unique (KPI rule 2), and the connector writes `users` only at the grain
//! GA4 counts it, one value per property and day, from `totalUsers` of a report by `date`
//! (`shared/apis/ga4.md` §3), never adding up finer rows; and a week's or a month's users are
//! GA4's own count for that period, asked without `date` over the period's days, several
//! periods to a request as named `dateRanges` whose rows carry the `dateRange` dimension (the
//! Data API's `DateRange` reference, and "Multiple date ranges" in Google's "Create a report"
//! guide), several reports to a `batchRunReports`.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use kpipe_core::{Additivity, DateWindow, Decimal, METRICS, Metric, PeriodGrain, PeriodRequest};
use kpipe_sim::platform::ga4::{Ga4Api, PeriodUsers, ReportQuery};
use kpipe_sim::{Fault, FaultRule, SimServer};
use kpipe_testkit::{Pulled, pull};

use common::{PRIVATE_KEY, build, day, expected, key_file, sim_config, source_table};

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

/// The period rows of the traffic report's entity, the channel group (its day rows break it down
/// by source / medium).
const CHANNEL: [&str; 1] = ["sessionDefaultChannelGroup"];

/// One of the counts of [`PeriodUsers`].
type Count = fn(&PeriodUsers) -> u64;

/// A period row's identity: period, days covered, property, level, entity, dimension columns,
/// metric.
type PeriodKey = (PeriodGrain, chrono::NaiveDate, chrono::NaiveDate, String, String, String, String, String);

fn period_rows(pulled: &Pulled) -> BTreeMap<PeriodKey, Decimal> {
    let mut out = BTreeMap::new();
    for p in &pulled.period_rows {
        p.validate().expect("a valid period row");
        assert_eq!(p.row.date, p.request.period.start, "dated the period's first day");
        let r = &p.row;
        let key = (
            p.request.period.grain,
            p.request.period.start,
            p.request.through,
            r.account_id.to_string(),
            r.level.to_string(),
            r.entity_id.to_string(),
            kpipe_testkit::RowKey::of(r).dimensions,
            r.metric.to_string(),
        );
        assert!(out.insert(key.clone(), r.value).is_none(), "{key:?} written twice");
    }
    out
}

/// The period rows the simulator's truth calls for: per property, `users`, `new_users` and
/// `returning_users` of the property, and of each channel group.
fn expected_periods(
    api: &Ga4Api,
    seed: u64,
    window: DateWindow,
    properties: &[&str],
    custom: Option<(&str, &[&str])>,
) -> BTreeMap<PeriodKey, Decimal> {
    let mut out = BTreeMap::new();
    for request in PeriodRequest::for_window(window) {
        let (period, through) = (request.period, request.through);
        for property in properties {
            let mut put =
                |level: &str, entity: &str, dims: String, users: &PeriodUsers, metrics: &[Metric]| {
                    for metric in metrics {
                        let value = match metric {
                            Metric::Users => users.users,
                            Metric::NewUsers => users.new_users,
                            _ => users.returning_users,
                        };
                        // GA4 leaves out rows whose metrics are all zero: the returning row of a group
                        // without returning users.
                        if *metric == Metric::ReturningUsers && value == 0 {
                            continue;
                        }
                        let key = (
                            period.grain,
                            period.start,
                            through,
                            (*property).to_owned(),
                            level.to_owned(),
                            entity.to_owned(),
                            dims.clone(),
                            metric.name().to_owned(),
                        );
                        out.insert(key, Decimal::from(i64::try_from(value).expect("a count")));
                    }
                };
            let all = [Metric::Users, Metric::NewUsers, Metric::ReturningUsers];
            let truth = |dims: &[&str]| {
                api.period_users(seed, property, period.start, through, dims).expect("the truth")
            };
            for users in truth(&[]).values() {
                put("property", property, String::new(), users, &all);
            }
            for (key, users) in truth(&CHANNEL) {
                let dims = format!("channel={}", key[0]);
                put("channel", &key[0], dims, &users, &all);
            }
            if let Some((level, dims)) = custom {
                for (key, users) in truth(dims) {
                    let shown = format!("country={},device={}", key[1], key[0]);
                    put(level, property, shown, &users, &[Metric::Users]);
                }
            }
        }
    }
    out
}

/// The sum and the largest of a group's daily counts over a period's days, from the simulator's
/// daily truth.
fn days_of(
    api: &Ga4Api,
    seed: u64,
    property: &str,
    request: &PeriodRequest,
    dims: &[&str],
) -> BTreeMap<Vec<String>, Vec<PeriodUsers>> {
    let mut out: BTreeMap<Vec<String>, Vec<PeriodUsers>> = BTreeMap::new();
    for d in request.days().days() {
        for (key, users) in api.period_users(seed, property, d, d, dims).expect("the truth") {
            out.entry(key).or_default().push(users);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn week_and_month_users_are_ga4s_counts_for_the_period_not_the_days_summed() {
    let api = Ga4Api::default();
    let sim = SimServer::start(sim_config(SEED, api.clone())).await.expect("the simulator");
    let key = key_file(&sim, PRIVATE_KEY, "periods");
    // Monday 22 June to Wednesday 8 July: three weeks (the last one partial), June whole (most
    // of it before the window) and July partial.
    let window = DateWindow::new(day("2026-06-22"), day("2026-07-08")).expect("a window");
    let source = build(source_table(&sim, &PROPERTIES, &key));
    let pulled = pull(source.as_ref(), window).await;
    pulled.expect_ok("periods");
    // The day rows are unchanged by the periods.
    pulled.totals().assert_eq(&expected(&api, SEED, window, &PROPERTIES), "day rows");

    // Every period value is the simulator's count for that period, exactly, with the day rows'
    // level, entity and dimension conventions.
    let written = period_rows(&pulled);
    let want = expected_periods(&api, SEED, window, &PROPERTIES, None);
    assert_eq!(written.len(), want.len(), "period rows written");
    for (key, value) in &want {
        assert_eq!(written.get(key), Some(value), "{key:?}");
    }
    // One value per entity, metric and period, as the KPI stage takes it.
    let mut per_entity = BTreeSet::new();
    for k in written.keys() {
        assert!(per_entity.insert((k.0, k.1, &k.3, &k.4, &k.5, &k.7)), "{k:?}: more than one value");
    }
    let shown: Vec<String> = PeriodRequest::for_window(window)
        .iter()
        .map(|r| format!("{} {} {} {}", r.period.grain, r.period.start, r.through, r.is_partial()))
        .collect();
    assert_eq!(
        shown,
        [
            "week 2026-06-22 2026-06-28 false",
            "week 2026-06-29 2026-07-05 false",
            "week 2026-07-06 2026-07-08 true",
            "month 2026-06-01 2026-06-30 false",
            "month 2026-07-01 2026-07-08 true",
        ]
    );
    // The periods the window has not finished are marked partial, through its last day.
    for p in &pulled.period_rows {
        let open = p.request.period.start == day("2026-07-06") || p.request.period.start == day("2026-07-01");
        assert_eq!(p.request.is_partial(), open, "{}", p.request.period);
        assert_eq!(p.request.through, if open { day("2026-07-08") } else { p.request.period.end() });
    }

    // And they are not the days' values added up, at the property and at the channel level:
    // each lies between the busiest day's and the days' sum, below the sum.
    let mut below = 0;
    for request in PeriodRequest::for_window(window) {
        for property in PROPERTIES {
            for (level, dims) in [("property", &[][..]), ("channel", &CHANNEL[..])] {
                for (group, days) in days_of(&api, SEED, property, &request, dims) {
                    let entity = group.first().cloned().unwrap_or_else(|| property.to_owned());
                    let shown =
                        if group.is_empty() { String::new() } else { format!("channel={}", group[0]) };
                    let picks: [(Metric, Count); 3] = [
                        (Metric::Users, |u| u.users),
                        (Metric::NewUsers, |u| u.new_users),
                        (Metric::ReturningUsers, |u| u.returning_users),
                    ];
                    for (metric, get) in picks {
                        let key = (
                            request.period.grain,
                            request.period.start,
                            request.through,
                            property.to_owned(),
                            level.to_owned(),
                            entity.clone(),
                            shown.clone(),
                            metric.name().to_owned(),
                        );
                        let Some(value) = written.get(&key) else { continue };
                        let daily: Vec<u64> = days.iter().map(get).collect();
                        let sum = Decimal::from(i64::try_from(daily.iter().sum::<u64>()).expect("a count"));
                        let max = Decimal::from(
                            i64::try_from(daily.iter().copied().max().unwrap_or(0)).expect("a count"),
                        );
                        assert!(max <= *value && *value <= sum, "{key:?}: {value} not within {max}..={sum}");
                        if daily.iter().filter(|v| **v > 0).count() >= 2 {
                            assert!(*value < sum, "{key:?}: {value} is the days' sum");
                            below += 1;
                        }
                    }
                }
            }
        }
    }
    assert!(below > 100, "only {below} period values below their days' sum");
    // Summing the day rows the connector wrote gives something else: the property's users of
    // the week of 22 June, and a channel's new users.
    for (level, metric) in [("property", "users"), ("channel", "new_users")] {
        let of_week = |entity: &str| -> Decimal {
            let rows = pulled.rows.iter().filter(|r| {
                r.account_id.as_str() == PROPERTIES[0]
                    && r.level.as_str() == level
                    && r.entity_id.as_str() == entity
                    && r.metric.as_str() == metric
                    && r.date <= day("2026-06-28")
            });
            sum(rows.map(|r| r.value))
        };
        let entity = if level == "property" { PROPERTIES[0] } else { "Direct" };
        let week: Decimal = sum(written.iter().filter_map(|(k, v)| {
            (k.0 == PeriodGrain::Week
                && k.1 == day("2026-06-22")
                && k.3 == PROPERTIES[0]
                && k.4 == level
                && k.5 == entity
                && k.7 == metric)
                .then_some(*v)
        }));
        assert!(week > Decimal::ZERO && week < of_week(entity), "{level} {metric}: {week}");
    }

    // The added requests are the ones `kpipe plan` counts: per property one batch of the day
    // reports, and 5 periods in 2 groups of date ranges, 4 period reports each: 8 reports in 2
    // batches.
    let estimate = source.estimate_requests(&[window]).expect("an estimate");
    let seen: u64 = PROPERTIES.iter().map(|p| api.monitor().requests(p)).sum();
    assert_eq!(seen, 2 * (1 + 2));
    assert_eq!(estimate.min_requests, seen);
    assert_eq!(pulled.telemetry.as_ref().map(|t| t.requests), Some(seen));
}

const DEVICES: &str = r#"
[[reports]]
name = "devices"
dimensions = ["deviceCategory", "countryId"]
metrics = ["sessions", "totalUsers"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_report_of_users_gets_its_periods_too() {
    let api = Ga4Api::default();
    let sim = SimServer::start(sim_config(SEED, api.clone())).await.expect("the simulator");
    let key = key_file(&sim, PRIVATE_KEY, "periods-custom");
    let mut table = source_table(&sim, &PROPERTIES, &key);
    table.extend(toml::from_str::<toml::Table>(DEVICES).expect("a table"));
    // Two weeks across the end of February: 2 weeks and 2 months, one group of date ranges, the
    // 4 built-in period reports and the custom report's: one batch per property.
    let window = DateWindow::new(day("2026-02-23"), day("2026-03-08")).expect("a window");
    let source = build(table);
    let pulled = pull(source.as_ref(), window).await;
    pulled.expect_ok("custom periods");
    let written = period_rows(&pulled);
    let want = expected_periods(
        &api,
        SEED,
        window,
        &PROPERTIES,
        Some(("devices", &["deviceCategory", "countryId"])),
    );
    assert_eq!(written, want);
    let seen: u64 = PROPERTIES.iter().map(|p| api.monitor().requests(p)).sum();
    assert_eq!(seen, 2 * (1 + 1));
    assert_eq!(source.estimate_requests(&[window]).map(|e| e.min_requests), Some(seen));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_period_report_that_cannot_be_read_leaves_its_periods_unpublished() {
    let api = Ga4Api::default();
    // One property, one request at a time: the day batch, then the two period batches. The
    // second period batch (the second group's last three reports) answers no report.
    let sim = SimServer::start(sim_config(SEED, api.clone()).with_fault(
        FaultRule::on_request(3, Fault::respond(200, serde_json::json!({"reports": []}))).on_path("/v1beta"),
    ))
    .await
    .expect("the simulator");
    let key = key_file(&sim, PRIVATE_KEY, "periods-lost");
    let mut table = source_table(&sim, &PROPERTIES[..1], &key);
    table.insert("concurrency".into(), toml::Value::Integer(1));
    let window = DateWindow::new(day("2026-06-22"), day("2026-07-08")).expect("a window");
    let pulled = pull(build(table).as_ref(), window).await;
    pulled.expect_ok("a lost period report");
    assert_eq!(pulled.quarantined.len(), 1, "{:?}", pulled.quarantined);
    assert!(
        pulled.quarantined[0].reason.contains("answered 0 reports for 3 requests"),
        "{:?}",
        pulled.quarantined
    );
    pulled.totals().assert_eq(&expected(&api, SEED, window, &PROPERTIES[..1]), "day rows");
    // The first group (the three weeks, June) is published whole; the second (July) not at all,
    // so that its earlier values stay.
    let periods: BTreeSet<_> = pulled.period_rows.iter().map(|p| p.request.period.start).collect();
    assert_eq!(periods, [day("2026-06-01"), day("2026-06-22"), day("2026-06-29"), day("2026-07-06")].into());
    let want: BTreeMap<_, _> = expected_periods(&api, SEED, window, &PROPERTIES[..1], None)
        .into_iter()
        .filter(|(k, _)| k.1 != day("2026-07-01"))
        .collect();
    assert_eq!(period_rows(&pulled), want);
}
