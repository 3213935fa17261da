//! Portal days in zones with daylight saving time: records either side of the portal's midnight
//! land on its day in summer, in winter and on the days the clocks change, whatever offset the
//! account details report at pull time. The simulator reckons the portal's days with its own US
//! and EU rules; the connector with the IANA zone the details name.

use chrono::{DateTime, Days, NaiveDate};
use kpipe_core::Decimal;
use kpipe_sim::platform::hubspot::{self, Form, HubSpotApi, MarketingEmail, Portal, TruthOptions, local_day};
use kpipe_sim::{Fault, FaultRule};
use serde_json::{Value, json};

use crate::common::{self, day};
use crate::{SEED, pull, sim_config, start, window, with};

/// New York (UTC-5, UTC-4 from 2026-03-08 to 2026-11-01) and Berlin (UTC+1, UTC+2 from
/// 2026-03-29 to 2026-10-25): the zone, its standard offset in minutes and the days to check (a
/// winter day, a summer day, the two change days).
const ZONES: [(&str, i32, [&str; 4]); 2] = [
    ("America/New_York", -300, ["2026-01-15", "2026-07-15", "2026-03-08", "2026-11-01"]),
    ("Europe/Berlin", 60, ["2026-01-15", "2026-07-15", "2026-03-29", "2026-10-25"]),
];

fn portal(zone: &str, standard: i32) -> Portal {
    Portal { time_zone: zone.to_owned(), utc_offset_minutes: standard, ..HubSpotApi::default().portal }
}

fn next(d: NaiveDate, n: u64) -> NaiveDate {
    d.checked_add_days(Days::new(n)).expect("a day")
}

fn prev(d: NaiveDate, n: u64) -> NaiveDate {
    d.checked_sub_days(Days::new(n)).expect("a day")
}

/// `hh:mm` local time on `d` in the simulated portal, as epoch milliseconds.
fn local(portal: &Portal, d: NaiveDate, hours: i64, minutes: i64) -> i64 {
    let guess = portal.day_start_ms(d) + (hours * 60 + minutes) * 60_000;
    // On the days clocks change, the hours after the change are an hour off the midnight's.
    let shift = i64::from(portal.offset_minutes_at(portal.day_start_ms(d)) - portal.offset_minutes_at(guess));
    guess + shift * 60_000
}

fn iso(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms).expect("an instant").format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// A contact of a search page (§3) created at `ms`.
fn contact(id: u64, ms: i64) -> Value {
    json!({"id": id.to_string(), "archived": false, "createdAt": iso(ms), "updatedAt": iso(ms),
           "properties": {"createdate": iso(ms), "hs_object_id": id.to_string(), "lastmodifieddate": iso(ms),
                          "lifecyclestage": "subscriber", "hs_analytics_source": "DIRECT_TRAFFIC"}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_either_side_of_midnight_land_on_the_portals_day() {
    for (zone, standard, days) in ZONES {
        let portal = portal(zone, standard);
        for d in days.map(day) {
            // 23:30 and 00:30 around both of the day's midnights.
            let instants = [
                local(&portal, prev(d, 1), 23, 30),
                local(&portal, d, 0, 30),
                local(&portal, d, 23, 30),
                local(&portal, next(d, 1), 0, 30),
            ];
            let results: Vec<Value> = instants.iter().zip(1_001..).map(|(ms, id)| contact(id, *ms)).collect();
            let page = Fault::respond(200, json!({"total": results.len(), "results": results}));
            let api = HubSpotApi {
                portal: portal.clone(),
                first_day: d,
                last_day: prev(d, 1),
                ..HubSpotApi::default()
            };
            let config = sim_config(&api, hubspot::auth_config())
                .with_fault(FaultRule::on_request(1, page).on_path("/crm/v3/objects/contacts/search"));
            let sim = start(config).await;
            let table = with(common::oauth_table(&sim), r#"streams = ["contacts"]"#);
            let pulled = pull(table, window(&prev(d, 1).to_string(), &next(d, 1).to_string())).await;
            pulled.expect_ok(zone);
            assert!(pulled.quarantined.is_empty(), "{zone} {d}: {:?}", pulled.quarantined);
            let created = |on: NaiveDate| {
                pulled
                    .rows
                    .iter()
                    .filter(|r| r.metric.as_str() == "hubspot.contacts_created" && r.date == on)
                    .fold(Decimal::ZERO, |sum, r| sum.checked_add(r.value).expect("a sum"))
            };
            let counts = [prev(d, 1), d, next(d, 1)].map(|on| created(on).to_string());
            assert_eq!(counts, ["1", "2", "1"], "{zone} around {d}");
        }
    }
}

/// A portal in `zone` with a fortnight of records around `around`, a form created before and an
/// email sent two days before it.
fn portal_around(zone: &str, standard: i32, around: NaiveDate) -> HubSpotApi {
    HubSpotApi {
        portal: portal(zone, standard),
        first_day: prev(around, 7),
        last_day: next(around, 7),
        contacts_per_day: (20, 30),
        deals_per_day: (8, 12),
        responses_per_day: (2, 4),
        forms: vec![Form {
            guid: "4e5d1a3c-8f2b-4c7d-9a61-2b3c4d5e6f70".into(),
            name: "Newsletter Sign-up".into(),
            created: prev(around, 10),
            per_day: (5, 10),
        }],
        emails: vec![MarketingEmail {
            id: 187_000_000_101,
            name: "Newsletter".into(),
            published: prev(around, 2),
            recipients: 1_200,
            active_days: 6,
        }],
        ..HubSpotApi::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_over_the_days_clocks_change_match_the_portals_days() {
    for (zone, standard, days) in ZONES {
        for change in [days[2], days[3]].map(day) {
            let api = portal_around(zone, standard, change);
            let window = window(&prev(change, 2).to_string(), &next(change, 2).to_string());
            // Records whose day a fixed offset would get wrong, either the winter or the summer one.
            let data = api.dataset(SEED);
            let misplaced = |offset: i32| {
                data.contacts
                    .iter()
                    .map(|c| c.created_ms)
                    .filter(|ms| window.contains(api.portal.local_day(*ms)))
                    .filter(|ms| local_day(*ms, offset) != api.portal.local_day(*ms))
                    .count()
            };
            assert!(
                misplaced(standard) > 0 && misplaced(standard + 60) > 0,
                "{zone} {change}: a test without edge"
            );
            let sim = crate::start_api(&api).await;
            let pulled = pull(common::oauth_table(&sim), window).await;
            pulled.expect_ok(zone);
            let expected = common::expected(&api, SEED, window, &TruthOptions::default());
            pulled.totals().assert_eq(&expected, &format!("{zone} around {change}"));
            // Each search asked for exactly the instants of the window's portal days.
            let bounds =
                [api.portal.day_start_ms(window.start()), api.portal.day_start_ms(next(window.end(), 1))]
                    .map(|ms| Value::String(ms.to_string()));
            let calls = api.search_calls();
            assert_eq!(calls.len(), 3, "{zone} {change}: {calls:?}");
            for call in calls {
                let filters = &call.body["filterGroups"][0]["filters"];
                assert_eq!(
                    [&filters[0]["value"], &filters[1]["value"]],
                    [&bounds[0], &bounds[1]],
                    "{zone} {change}"
                );
            }
        }
    }
}
