//! Pulls against the simulated LinkedIn Marketing API, beyond the conformance suite: the wire
//! format (Rest.li query string, headers, version), names, field groups, the element cap,
//! daily limits, company pages and reach. Each test names the section of
//! `shared/apis/linkedin.md` its shapes follow.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use kpipe_core::{
    Additivity, DateWindow, Decimal, ErrorChain, ErrorKind, Metric, MetricName, PeriodGrain, PeriodRequest,
};
use kpipe_sim::platform::linkedin::{self, LinkedInApi, Pivot};
use kpipe_sim::{FaultRule, QuotaRule, SimServer};
use kpipe_testkit::{Totals, pull};

use common::{build, day, days_ago, expected, expected_ads, sim_config, source_table, start, window};

const SEED: u64 = 7;

fn ads_only() -> LinkedInApi {
    LinkedInApi { organizations: Vec::new(), ..LinkedInApi::default() }
}

/// The daily ad analytics requests (`timeGranularity=DAILY`).
fn analytics_requests(sim: &SimServer) -> Vec<kpipe_sim::RecordedRequest> {
    sim.requests()
        .into_iter()
        .filter(|r| r.path == "/rest/adAnalytics" && r.query.as_deref().is_some_and(|q| q.contains("=DAILY")))
        .collect()
}

/// The requests for reach over whole weeks and months (`timeGranularity=ALL`).
fn period_requests(sim: &SimServer) -> Vec<kpipe_sim::RecordedRequest> {
    sim.requests()
        .into_iter()
        .filter(|r| r.path == "/rest/adAnalytics" && r.query.as_deref().is_some_and(|q| q.contains("=ALL")))
        .collect()
}

/// §2: the exact query of an adAnalytics request: literal Rest.li structures, the account URN
/// percent-encoded inside `List(...)`, dates not zero-padded, and the §1 headers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analytics_requests_use_restli_encoding_and_version_headers() {
    let api = ads_only();
    let sim = start(sim_config(SEED, api.clone())).await;
    let source = build(source_table(&sim, &api, ""));
    let pulled = pull(source.as_ref(), window("2026-03-01", "2026-03-03")).await;
    pulled.expect_ok("restli");
    // Accounts and pivots are asked about at once: the first account's campaign request,
    // whenever it came.
    let first = analytics_requests(&sim)
        .into_iter()
        .find(|r| {
            r.query.as_deref().is_some_and(|q| q.contains("508000001)&") && q.contains("pivot=CAMPAIGN&"))
        })
        .expect("an analytics request");
    assert_eq!(
        first.query.as_deref(),
        Some(
            "q=analytics&pivot=CAMPAIGN&timeGranularity=DAILY\
             &dateRange=(start:(year:2026,month:3,day:1),end:(year:2026,month:3,day:3))\
             &accounts=List(urn%3Ali%3AsponsoredAccount%3A508000001)\
             &fields=dateRange,pivotValues,impressions,clicks,landingPageClicks,likes,comments,shares,\
             follows,totalEngagements,videoViews,costInLocalCurrency,externalWebsiteConversions,\
             oneClickLeads,approximateMemberReach"
        )
    );
    assert_eq!(first.header("linkedin-version"), Some(kpipe_connector_linkedin::config::DEFAULT_API_VERSION));
    assert_eq!(first.header("x-restli-protocol-version"), Some("2.0.0"));
    assert!(first.header("authorization").is_some_and(|a| a.starts_with("Bearer ")));
    let campaigns = sim.requests().into_iter().find(|r| r.path.ends_with("/adCampaigns")).expect("a search");
    assert_eq!(
        campaigns.query.as_deref(),
        Some(
            "q=search&search=(status:(values:List(ACTIVE,PAUSED,ARCHIVED,COMPLETED,CANCELED,DRAFT,\
             PENDING_DELETION,REMOVED)))&pageSize=100"
        )
    );
    // The token came from LinkedIn's token path, client credentials in the form (§5).
    assert_eq!(sim.requests_for(linkedin::TOKEN_PATH), 1);
}

/// §1: a sunset version is answered 426 NONEXISTENT_VERSION; the source fails as a
/// configuration error that says which `api_version` to set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sunset_version_fails_with_the_version_to_set() {
    let api = ads_only();
    let sim = start(sim_config(SEED, api.clone())).await;
    let source = build(source_table(&sim, &api, "api_version = \"202401\""));
    let pulled = pull(source.as_ref(), window("2026-03-01", "2026-03-01")).await;
    let error = pulled.result.expect_err("version 202401 is sunset");
    assert_eq!(error.kind(), ErrorKind::Config);
    let message = ErrorChain(&error).to_string();
    assert!(message.contains("API version 202401"), "{message}");
    assert!(message.contains("set `api_version = \"20"), "{message}");
    assert!(message.contains("Requested version 20240101 is not active"), "{message}");
    assert!(pulled.rows.is_empty());
}

/// §3.3, §4: campaigns and creatives are listed page by page until `nextPageToken` is absent,
/// and every row carries its entity's name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_carry_names_from_cursor_paged_listings() {
    let api = ads_only();
    let sim = start(sim_config(SEED, api.clone())).await;
    let source = build(source_table(&sim, &api, "page_size = 3"));
    let w = window("2026-03-01", "2026-03-02");
    let pulled = pull(source.as_ref(), w).await;
    pulled.expect_ok("names");
    pulled.totals().assert_eq(&expected_ads(&api, SEED, w), "names");
    // 4 and 3 campaigns in pages of 3: 2 + 1 pages; 8 and 6 creatives: 3 + 2 pages.
    assert_eq!(sim.requests_for("/rest/adAccounts/508000001/adCampaigns"), 2);
    assert_eq!(sim.requests_for("/rest/adAccounts/508000002/adCampaigns"), 1);
    assert_eq!(sim.requests_for("/rest/adAccounts/508000001/creatives"), 3);
    assert_eq!(sim.requests_for("/rest/adAccounts/508000002/creatives"), 2);
    for row in &pulled.rows {
        let name = row.entity_name.as_deref().unwrap_or_else(|| panic!("no name: {row:?}"));
        let id: u64 = row.entity_id.parse().unwrap();
        let account: u64 = row.account_id.parse().unwrap();
        match row.level.as_str() {
            "campaign" => assert!(api.campaigns(account).iter().any(|c| c.id == id && c.name == name)),
            _ => assert!(api.creatives(account).iter().any(|c| c.id == id && c.name == name)),
        }
    }
}

/// §3.1: more than 20 fields are asked in groups of at most 20 (`dateRange` and `pivotValues`
/// in each) and merged by entity and day.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_than_twenty_fields_are_split_and_merged() {
    let api = LinkedInApi {
        accounts: vec![LinkedInApi::default().accounts[0].clone()],
        organizations: Vec::new(),
        ..LinkedInApi::default()
    };
    let extras = [
        "videoStarts",
        "videoCompletions",
        "opens",
        "sends",
        "reactions",
        "viralImpressions",
        "costInUsd",
        "conversionValueInLocalCurrency",
    ];
    let sim = start(sim_config(SEED, api.clone())).await;
    let list: Vec<String> = extras.iter().map(|e| format!("\"{e}\"")).collect();
    let source = build(source_table(&sim, &api, &format!("extra_fields = [{}]", list.join(", "))));
    let w = window("2026-04-10", "2026-04-11");
    let pulled = pull(source.as_ref(), w).await;
    pulled.expect_ok("field groups");
    assert!(pulled.quarantined.is_empty(), "{:?}", pulled.quarantined);
    let requests = analytics_requests(&sim);
    assert_eq!(requests.len(), 4, "two groups for each pivot");
    // Reach by week and month needs no extra field: one group each.
    assert!(period_requests(&sim).iter().all(|r| {
        r.query.as_deref().unwrap().ends_with("&fields=dateRange,pivotValues,approximateMemberReach")
    }));
    for r in &requests {
        let fields = r.query.as_deref().unwrap().split("fields=").nth(1).unwrap().split(',').count();
        assert!(fields <= 20, "{fields} fields in {:?}", r.query);
    }
    // The canonical metrics are exact, and every extra is the simulator's value.
    let canonical = Totals::from_rows(
        &pulled
            .rows
            .iter()
            .filter(|r| matches!(r.metric, MetricName::Canonical(_)))
            .cloned()
            .collect::<Vec<_>>(),
    )
    .unwrap();
    canonical.assert_eq(&expected_ads(&api, SEED, w), "field groups");
    let account = &api.accounts[0];
    for pivot in [Pivot::Campaign, Pivot::Creative] {
        for element in api.ad_analytics(SEED, account.id, pivot, w.start(), w.end(), &extras) {
            let entity = element.entity_urn.rsplit(':').next().unwrap();
            for extra in extras {
                let metric = format!("linkedin.{}", kpipe_connector_linkedin::fields::snake_case(extra));
                let row = pulled
                    .rows
                    .iter()
                    .find(|r| r.entity_id == entity && r.date == element.date && r.metric.as_str() == metric)
                    .unwrap_or_else(|| panic!("no {metric} for {entity} on {}", element.date));
                let want = match &element.values[extra] {
                    serde_json::Value::String(s) => s.parse().unwrap(),
                    other => other.to_string().parse().unwrap(),
                };
                assert_eq!(row.value, want, "{metric}");
                let currency = row.currency.map(|c| c.as_str().to_owned());
                match extra {
                    "costInUsd" => assert_eq!(currency.as_deref(), Some("USD")),
                    "conversionValueInLocalCurrency" => {
                        assert_eq!(currency.as_deref(), Some(account.currency.as_str()))
                    }
                    _ => assert_eq!(currency, None),
                }
            }
        }
    }
}

/// §3.1: a response that reaches the element cap may be cut short, so its days are asked again
/// in halves and the totals stay exact. Here the creatives listing shows none of the account's
/// creatives (as for deleted ones, whose past analytics remain), so the plan underestimates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_at_the_element_cap_are_split_by_days() {
    let account = LinkedInApi::default().accounts[0].clone();
    let api = LinkedInApi {
        accounts: vec![account],
        organizations: Vec::new(),
        max_elements: 12,
        ..LinkedInApi::default()
    };
    let unlisted = kpipe_sim::Fault::respond(200, serde_json::json!({"elements": [], "metadata": {}}));
    let config = sim_config(SEED, api.clone())
        .with_fault(FaultRule::always(unlisted).on_path("/rest/adAccounts/508000001/creatives"));
    let sim = start(config).await;
    let source = build(source_table(&sim, &api, "response_element_cap = 12"));
    let w = window("2026-05-01", "2026-05-14");
    let pulled = pull(source.as_ref(), w).await;
    pulled.expect_ok("element cap");
    pulled.totals().assert_eq(&expected_ads(&api, SEED, w), "element cap");
    // Planned from the 4 listed campaigns (8 elements of budget): 2 days per slice, 7 slices.
    let requests = analytics_requests(&sim);
    let first = requests[0].query.as_deref().unwrap();
    assert!(first.contains("start:(year:2026,month:5,day:1),end:(year:2026,month:5,day:2)"), "{first}");
    assert!(requests.len() > 7 * 2, "{} analytics requests: no response was split", requests.len());
    assert_eq!(pulled.completed.iter().map(DateWindow::num_days).sum::<u64>(), 14);
}

/// §6: a 429 naming `MEMBER DAY` stops the pull as quota exhausted until the next midnight
/// UTC, without a retry; other 429s are retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_daily_limit_stops_until_midnight_and_other_429s_are_retried() {
    let api = ads_only();
    let cap = QuotaRule::daily(8).named("member_day").with_response(linkedin::member_daily_quota_exhausted());
    let throttle = FaultRule::on_requests([1], kpipe_sim::Fault::Respond(linkedin::throttled(None)));
    let sim = start(
        sim_config(SEED, api.clone()).with_quota(cap).with_fault(throttle.on_path("/rest/adAnalytics")),
    )
    .await;
    // One request at a time, so that exactly one meets the cap (requests in flight together
    // may each meet it once; none is retried either way).
    let source = build(source_table(&sim, &api, "concurrency = 1"));
    let pulled = pull(source.as_ref(), window("2026-03-01", "2026-03-02")).await;
    let error = pulled.result.as_ref().expect_err("the daily limit stops the pull");
    let ErrorKind::QuotaExhausted { reset_at: Some(reset) } = error.kind() else {
        panic!("expected quota exhausted with a reset time: {}", ErrorChain(error))
    };
    let tomorrow = common::today().succ_opt().unwrap().and_hms_opt(0, 0, 0).unwrap().and_utc();
    assert_eq!(reset, tomorrow);
    assert_eq!(sim.rejections_for_quota("member_day"), 1);
    assert_eq!(pulled.retries("throttled"), 1, "{:?}", pulled.telemetry);
}

/// §3.4, §3.5: company pages give daily gains, end-of-day followers derived from the
/// `networkSizes` total, and share counts; statistics are paged by `start`/`count`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn company_pages_give_gains_followers_and_share_counts() {
    let api = LinkedInApi { accounts: Vec::new(), ..LinkedInApi::default() };
    let sim = start(sim_config(SEED, api.clone())).await;
    let source = build(source_table(&sim, &api, "page_size = 4"));
    let w = DateWindow::new(days_ago(20), days_ago(3)).unwrap();
    let pulled = pull(source.as_ref(), w).await;
    pulled.expect_ok("pages");
    pulled.totals().assert_eq(&expected(&api, SEED, w), "pages");
    let by_page = |path: &str| sim.requests_for(path);
    // Gains from the first day of the earliest week or month the window touches (so that the
    // followers before each period can be derived) through today, in pages of 4; shares for the
    // window's 18 days.
    let periods = PeriodRequest::for_window(w);
    let from = periods.iter().map(|r| r.period.start).min().unwrap();
    let gain_days = (common::today() - from).num_days() + 1;
    assert_eq!(by_page("/rest/organizationalEntityFollowerStatistics") as i64, (gain_days + 3) / 4);
    assert_eq!(by_page("/rest/organizationalEntityShareStatistics"), 5);
    assert_eq!(by_page("/rest/networkSizes/urn%3Ali%3Aorganization%3A2414183"), 1);
    let followers = pulled.rows.iter().filter(|r| r.metric == Metric::Followers.into()).count();
    assert_eq!(followers, 18);
    // Each period that starts before the window opens with the followers of the day before it:
    // the window's first day's followers less the net gains since that day.
    let first = pulled
        .rows
        .iter()
        .find(|r| r.metric == Metric::Followers.into() && r.date == w.start())
        .map(|r| r.value)
        .unwrap();
    let mut openings = 0;
    for request in periods.iter().filter(|r| r.period.start <= w.start()) {
        let day_before = request.period.start.pred_opt().unwrap();
        let gained: i64 = DateWindow::new(request.period.start, w.start())
            .unwrap()
            .days()
            .map(|d| {
                let (organic, paid) = api.follower_gains(SEED, 2_414_183, d);
                organic + paid
            })
            .sum();
        let want = first.checked_add(kpipe_core::Decimal::from_i64(-gained)).unwrap();
        let got: Vec<_> = pulled
            .period_rows
            .iter()
            .filter(|p| p.request == *request && p.row.metric == Metric::Followers.into())
            .collect();
        assert_eq!(got.len(), 1, "{request:?} of {day_before}");
        assert_eq!(got[0].row.value, want, "followers at the end of {day_before}");
        openings += 1;
    }
    assert!(openings >= 1, "the window starts inside a week or a month");
    assert!(
        pulled
            .rows
            .iter()
            .all(|r| r.level == "organization" && r.entity_name.as_deref() == Some("Kpipe Demo Company"))
    );
}

/// §3.4: follower gains are net (unfollows included), so a day that lost followers has a
/// negative `follower_gains` row with LinkedIn's own number, nothing is quarantined, and the
/// followers of every day stay exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn net_follower_losses_are_written_as_linkedin_reports_them() {
    let api = LinkedInApi { accounts: Vec::new(), ..LinkedInApi::default() };
    assert!(api.negative_follower_gains, "the simulator's pages lose followers on some days");
    let sim = start(sim_config(SEED, api.clone())).await;
    let source = build(source_table(&sim, &api, ""));
    let w = DateWindow::new(days_ago(120), days_ago(1)).unwrap();
    let pulled = pull(source.as_ref(), w).await;
    pulled.expect_ok("losses");
    assert!(pulled.quarantined.is_empty(), "{:?}", pulled.quarantined);
    let losses: Vec<_> = w
        .days()
        .filter_map(|d| {
            let (organic, paid) = api.follower_gains(SEED, 2_414_183, d);
            (organic + paid < 0).then_some((d, organic + paid))
        })
        .collect();
    assert!(!losses.is_empty(), "the window holds a day with a net loss");
    for (d, net) in &losses {
        let rows: Vec<_> =
            pulled.rows.iter().filter(|r| r.date == *d && r.metric == Metric::FollowerGains.into()).collect();
        assert_eq!(rows.len(), 1, "one follower_gains row on {d}");
        assert_eq!(rows[0].value, kpipe_core::Decimal::from_i64(*net), "{d}");
        assert!(rows[0].value.is_negative());
    }
    pulled.totals().assert_eq(&expected(&api, SEED, w), "losses");
}

/// §3.1: reach (`approximateMemberReach`) is written per entity and day exactly as the
/// API gave it, as the canonical unique metric: a campaign's reach is not the sum of its
/// creatives' reach, and nothing sums days.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reach_is_written_per_day_as_the_api_gave_it() {
    let api = ads_only();
    let sim = start(sim_config(SEED, api.clone())).await;
    let source = build(source_table(&sim, &api, ""));
    let w = window("2026-06-01", "2026-06-07");
    let pulled = pull(source.as_ref(), w).await;
    pulled.expect_ok("reach");
    assert_eq!(Metric::Reach.additivity(), Additivity::Unique);
    let reach: Vec<_> = pulled.rows.iter().filter(|r| r.metric == Metric::Reach.into()).collect();
    let mut elements = 0;
    let mut overlapping = 0;
    for account in &api.accounts {
        for (pivot, level) in [(Pivot::Campaign, "campaign"), (Pivot::Creative, "creative")] {
            for element in
                api.ad_analytics(SEED, account.id, pivot, w.start(), w.end(), &["approximateMemberReach"])
            {
                elements += 1;
                let entity = element.entity_urn.rsplit(':').next().unwrap();
                let rows: Vec<_> = reach
                    .iter()
                    .filter(|r| r.level == level && r.entity_id == entity && r.date == element.date)
                    .collect();
                assert_eq!(rows.len(), 1, "one reach row per entity and day");
                assert_eq!(rows[0].value.to_string(), element.values["approximateMemberReach"].to_string());
            }
        }
        // Campaign reach is the API's, not the sum of its creatives'.
        for campaign in api.campaigns(account.id) {
            for d in w.days() {
                let of = |level: &str, keep: &dyn Fn(u64) -> bool| {
                    reach
                        .iter()
                        .filter(|r| r.level == level && r.date == d && keep(r.entity_id.parse().unwrap()))
                        .map(|r| r.value.to_f64())
                        .sum::<f64>()
                };
                let campaign_reach = of("campaign", &|id| id == campaign.id);
                let creatives_sum = of("creative", &|id| id / 100 == campaign.id);
                if campaign_reach < creatives_sum {
                    overlapping += 1;
                }
            }
        }
    }
    assert_eq!(reach.len(), elements);
    assert!(overlapping > 0, "some campaign-days reach fewer members than their creatives summed");
}

/// The requests per useful row for 10 accounts x 50 campaigns (2 creatives each) x 28 days,
/// the figure the README documents. Printed with `--nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_per_row_for_ten_accounts_of_fifty_campaigns_over_28_days() {
    let api = LinkedInApi::with_accounts(10, 50, 2);
    let sim = start(sim_config(SEED, api.clone())).await;
    let source = build(source_table(&sim, &api, ""));
    let w = window("2026-09-01", "2026-09-28");
    let pulled = pull(source.as_ref(), w).await;
    pulled.expect_ok("requests per row");
    assert!(pulled.quarantined.is_empty());
    let telemetry = pulled.telemetry.clone().expect("telemetry");
    let rows = pulled.rows.len() as u64;
    let elements = analytics_requests(&sim).len();
    println!(
        "10 accounts x 50 campaigns x 2 creatives x 28 days: {} requests ({} analytics) \
         + {} token request(s), {rows} rows, {:.6} requests per row",
        telemetry.requests,
        elements,
        telemetry.token_refreshes,
        telemetry.requests as f64 / rows as f64
    );
    // 10 account reads, 10 campaign searches, 10 creative listings (100 creatives, one page
    // each), 20 analytics requests (each account by campaign and by creative, 28 days at once),
    // and reach of the 5 weeks and the month the window touches by account, campaign group and
    // campaign, all ten accounts in each request (500 campaigns, far below the cap).
    assert_eq!(telemetry.requests, 68);
    assert_eq!(elements, 20);
    assert_eq!(period_requests(&sim).len(), 18);
    println!("{} period rows (reach by week and month)", pulled.period_rows.len());
    pulled.totals().assert_eq(&expected_ads(&api, SEED, w), "requests per row");
}

/// `kpipe check`: one cheap call per ad account (§3.2) and per company page (§3.4).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reads_every_account_and_page() {
    let api = LinkedInApi::default();
    let sim = start(sim_config(SEED, api.clone())).await;
    let source = build(source_table(&sim, &api, ""));
    let summary = source.check().await.expect("the check passes");
    let followers = api.network_size(SEED, 2_414_183);
    assert_eq!(
        summary,
        format!(
            "readable: ad account 508000001 (USD, ACTIVE), ad account 508000002 (EUR, ACTIVE), \
             company page 2414183 ({followers} followers)"
        )
    );
}

/// A fixed access token is sent as it is; nothing is asked of the token endpoint (§5).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fixed_access_token_needs_no_token_endpoint() {
    let api = ads_only();
    let sim = start(sim_config(SEED, api.clone())).await;
    let mut table = source_table(&sim, &api, "");
    for key in ["client_id", "client_secret", "refresh_token", "token_url"] {
        table.remove(key);
    }
    table.insert("access_token".into(), toml::Value::String(sim.issue_token()));
    let source = build(table);
    let w = window("2026-03-01", "2026-03-01");
    let pulled = pull(source.as_ref(), w).await;
    pulled.expect_ok("access token");
    pulled.totals().assert_eq(&expected_ads(&api, SEED, w), "access token");
    assert_eq!(sim.requests_for(linkedin::TOKEN_PATH), 0);
}

/// §3.1: an element that cannot be read is quarantined with its JSON text and a reason naming
/// the field, the others of its answer still make rows; an answer without `elements` is
/// quarantined whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_elements_and_answers_are_quarantined_with_their_text() {
    let api = LinkedInApi {
        accounts: vec![LinkedInApi::default().accounts[0].clone()],
        organizations: Vec::new(),
        ..LinkedInApi::default()
    };
    let day = serde_json::json!({"year": 2026, "month": 7, "day": 14});
    let range = serde_json::json!({"start": day, "end": day});
    let bad_count = serde_json::json!({"pivotValues": ["urn:li:sponsoredCampaign:508000001002"],
        "dateRange": range, "impressions": "n/a", "clicks": 1});
    let wrong_pivot = serde_json::json!({"pivotValues": ["urn:li:sponsoredCreative:7"], "dateRange": range});
    // The first answer (by campaign): one good element, then the two unreadable ones.
    let by_campaign = kpipe_sim::Fault::respond(
        200,
        serde_json::json!({"paging": {"start": 0, "count": 10, "links": []}, "elements": [
            {"pivotValues": ["urn:li:sponsoredCampaign:508000001001"], "dateRange": range,
             "impressions": 19464, "clicks": 106, "costInLocalCurrency": "24.457317520310493"},
            bad_count, wrong_pivot
        ]}),
    );
    // The second (by creative) has no `elements`.
    let by_creative =
        kpipe_sim::Fault::respond(200, serde_json::json!({"paging": {"start": 0, "count": 10}}));
    let config = sim_config(SEED, api.clone())
        .with_fault(FaultRule::on_request(1, by_campaign).on_path("/rest/adAnalytics"))
        .with_fault(FaultRule::on_request(2, by_creative).on_path("/rest/adAnalytics"));
    let sim = start(config).await;
    let source = build(source_table(&sim, &api, "concurrency = 1"));
    let pulled = pull(source.as_ref(), window("2026-07-14", "2026-07-14")).await;
    pulled.expect_ok("unreadable elements");

    let q = &pulled.quarantined;
    assert_eq!(q.len(), 3, "{q:?}");
    assert!(
        q.iter().all(|r| r.stream == "ad_analytics" && r.location.contains("/rest/adAnalytics")),
        "{q:?}"
    );
    assert!(q[0].location.ends_with("element 1") && q[0].reason.starts_with("`impressions`"), "{:?}", q[0]);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&q[0].raw).unwrap(), bad_count);
    assert!(q[1].location.ends_with("element 2") && q[1].reason.contains("sponsoredCampaign"), "{:?}", q[1]);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&q[1].raw).unwrap(), wrong_pivot);
    assert_eq!(q[2].reason, "the response has no `elements` array");
    assert!(q[2].location.contains("pivot=CREATIVE") && q[2].raw.contains("paging"), "{:?}", q[2]);

    // The good element's rows, and nothing of the quarantined ones.
    assert!(pulled.rows.iter().all(|r| r.entity_id == "508000001001"), "{:?}", pulled.rows);
    let value = |m: Metric| pulled.rows.iter().find(|r| r.metric == m.into()).map(|r| r.value.to_string());
    assert_eq!(value(Metric::Impressions).as_deref(), Some("19464"));
    assert_eq!(value(Metric::Spend).as_deref(), Some("24.457317520310493"));
    assert_eq!(value(Metric::Likes).as_deref(), Some("0"));
    assert_eq!(value(Metric::Reach), None);
}

/// The pivots reach is asked by for whole periods, and the `level` of their rows.
const PERIOD_PIVOTS: [(Pivot, &str); 3] =
    [(Pivot::Account, "account"), (Pivot::CampaignGroup, "campaign_group"), (Pivot::Campaign, "campaign")];

/// A period row's key: grain, first day, level, entity.
type PeriodKey = (PeriodGrain, NaiveDate, String, String);

/// §3.1, and LinkedIn's reporting pages (learn.microsoft.com/linkedin/marketing/integrations/
/// ads-reporting/ads-reporting: the analytics finder, one pivot, `timeGranularity=ALL` giving one
/// element per pivot value over the whole `dateRange`; .../ads-reporting-schema:
/// `approximateMemberReach` for non-demographic pivots and ranges of at most 92 days): reach of
/// every week and month the window touches is asked of
/// LinkedIn as one value per account, campaign group and campaign, and each period row is the
/// simulator's truth, below the sum of the days a summing implementation would write. The weeks
/// and the month the window has not finished are partial. The requests are the ones `kpipe plan`
/// predicts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reach_by_week_and_month_is_linkedins_own_value_not_a_sum_of_days() {
    let api = ads_only();
    let sim = start(sim_config(SEED, api.clone())).await;
    let source = build(source_table(&sim, &api, ""));
    // Wednesday 2026-03-25 to Wednesday 2026-04-08: three weeks (the last one unfinished) and
    // two months (April unfinished).
    let w = window("2026-03-25", "2026-04-08");
    let pulled = pull(source.as_ref(), w).await;
    pulled.expect_ok("period reach");
    assert!(pulled.quarantined.is_empty(), "{:?}", pulled.quarantined);
    pulled.totals().assert_eq(&expected_ads(&api, SEED, w), "period reach (days)");

    let requests = PeriodRequest::for_window(w);
    assert_eq!(requests.len(), 5);
    let mut want: BTreeMap<PeriodKey, (String, Decimal)> = BTreeMap::new();
    for r in &requests {
        for account in &api.accounts {
            for (pivot, level) in PERIOD_PIVOTS {
                for (id, reach) in api.period_reach(SEED, account.id, pivot, r.period.start, r.through) {
                    let key = (r.period.grain, r.period.start, level.to_owned(), id.to_string());
                    want.insert(key, (account.id.to_string(), Decimal::from_i64(reach)));
                }
            }
        }
    }
    let got: BTreeMap<PeriodKey, (String, Decimal)> = pulled
        .period_rows
        .iter()
        .map(|p| {
            let r = &p.row;
            let key = (
                p.request.period.grain,
                p.request.period.start,
                r.level.to_string(),
                r.entity_id.to_string(),
            );
            (key, (r.account_id.to_string(), r.value))
        })
        .collect();
    assert_eq!(got.len(), pulled.period_rows.len(), "one row per entity and period");
    assert_eq!(got, want, "period reach is the simulator's truth");

    // Each row: reach, dated the period's first day, for the days its request says; names as
    // the day rows carry them (campaign groups are not listed, so they have none).
    let mut below_sum: BTreeMap<&str, usize> = BTreeMap::new();
    for p in &pulled.period_rows {
        let r = &p.row;
        assert!(requests.contains(&p.request), "{:?}", p.request);
        assert_eq!(
            (r.metric.clone(), r.date, r.currency),
            (Metric::Reach.into(), p.request.period.start, None)
        );
        let account: u64 = r.account_id.parse().unwrap();
        let id: u64 = r.entity_id.parse().unwrap();
        let (pivot, level) = PERIOD_PIVOTS.into_iter().find(|(_, l)| *l == r.level.as_str()).unwrap();
        match pivot {
            Pivot::Account => assert_eq!(r.entity_name.as_deref(), Some(format!("Ad account {id}").as_str())),
            Pivot::Campaign => {
                let name = api.campaigns(account).into_iter().find(|c| c.id == id).map(|c| c.name);
                assert_eq!(r.entity_name.as_deref(), name.as_deref());
            }
            _ => assert_eq!(r.entity_name, None),
        }
        // The sum of the days' reach, what adding up daily rows would give.
        let urn = pivot.urn(id);
        let days: Vec<i64> = api
            .ad_analytics(
                SEED,
                account,
                pivot,
                p.request.period.start,
                p.request.through,
                &["approximateMemberReach"],
            )
            .into_iter()
            .filter(|e| e.entity_urn == urn)
            .map(|e| e.values["approximateMemberReach"].as_i64().unwrap())
            .collect();
        let (largest, sum) = (days.iter().copied().max().unwrap(), days.iter().sum::<i64>());
        let value = r.value.to_f64() as i64;
        assert!(
            largest <= value && value <= sum,
            "{level} {id} {}: {value} outside {largest}..={sum}",
            p.request.period
        );
        if days.iter().filter(|d| **d > 0).count() >= 2 {
            assert!(value < sum, "{level} {id} {}: {value} is the sum of its days", p.request.period);
            *below_sum.entry(level).or_default() += 1;
        }
    }
    assert_eq!(below_sum.len(), 3, "every level has periods of several days: {below_sum:?}");

    // The week of 2026-04-06 and April are asked for up to the window's last day: partial.
    let partial: BTreeSet<(PeriodGrain, NaiveDate)> = pulled
        .period_rows
        .iter()
        .filter(|p| p.request.is_partial())
        .map(|p| (p.request.period.grain, p.request.period.start))
        .collect();
    let expected_partial: BTreeSet<_> =
        [(PeriodGrain::Week, day("2026-04-06")), (PeriodGrain::Month, day("2026-04-01"))]
            .into_iter()
            .collect();
    assert_eq!(partial, expected_partial);
    assert!(
        pulled.period_rows.iter().all(|p| p.request.is_partial() == (p.request.through == day("2026-04-08")))
    );

    // One request per period and pivot, both accounts in each; exactly what the estimate says.
    let asked = period_requests(&sim);
    assert_eq!(asked.len(), requests.len() * 3);
    let first_week = "dateRange=(start:(year:2026,month:3,day:23)";
    let by_account = asked
        .iter()
        .find(|r| r.query.as_deref().is_some_and(|q| q.contains("pivot=ACCOUNT&") && q.contains(first_week)));
    assert_eq!(
        by_account.and_then(|r| r.query.as_deref()),
        Some(
            "q=analytics&pivot=ACCOUNT&timeGranularity=ALL\
             &dateRange=(start:(year:2026,month:3,day:23),end:(year:2026,month:3,day:29))\
             &accounts=List(urn%3Ali%3AsponsoredAccount%3A508000001,urn%3Ali%3AsponsoredAccount%3A508000002)\
             &fields=dateRange,pivotValues,approximateMemberReach"
        )
    );
    let estimate = source.estimate_requests(&[w]).expect("an estimate");
    let sent = sim.requests().iter().filter(|r| r.path.starts_with("/rest/")).count() as u64;
    // Accounts 2 x 3, one slice by 2 accounts x 2 pivots, 5 periods x 3 pivots.
    assert_eq!(sent, 6 + 4 + 15);
    assert_eq!(estimate.min_requests, sent, "{estimate:?}");
}

/// §3.1: a period answer is read as a day answer is: an element that cannot be read or placed
/// is quarantined with its JSON text and the answer's location, the others still make rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_period_elements_are_quarantined_with_their_text() {
    let api = ads_only();
    // Monday 2026-03-30 to Tuesday 2026-03-31: the week of 2026-03-30 (partial) and March.
    let w = window("2026-03-30", "2026-03-31");
    let range = serde_json::json!({"start": {"year": 2026, "month": 3, "day": 30},
                                   "end": {"year": 2026, "month": 3, "day": 31}});
    let unknown = serde_json::json!({"pivotValues": ["urn:li:sponsoredAccount:7"], "dateRange": range,
                                     "approximateMemberReach": 5});
    let wrong_pivot = serde_json::json!({"pivotValues": ["urn:li:sponsoredCampaign:508000001001"],
                                         "dateRange": range, "approximateMemberReach": 5});
    // The first period request (by account, the week): one good element and the two others.
    let answer = kpipe_sim::Fault::respond(
        200,
        serde_json::json!({"paging": {"start": 0, "count": 10, "links": []}, "elements": [
            {"pivotValues": ["urn:li:sponsoredAccount:508000001"], "dateRange": range,
             "approximateMemberReach": 1234},
            unknown, wrong_pivot
        ]}),
    );
    // Requests 1 to 4 are the days (2 accounts x 2 pivots, one at a time).
    let config = sim_config(SEED, api.clone())
        .with_fault(FaultRule::on_request(5, answer).on_path("/rest/adAnalytics"));
    let sim = start(config).await;
    let source = build(source_table(&sim, &api, "concurrency = 1"));
    let pulled = pull(source.as_ref(), w).await;
    pulled.expect_ok("unreadable period elements");
    assert!(period_requests(&sim)[0].query.as_deref().unwrap().contains("pivot=ACCOUNT"));

    let q = &pulled.quarantined;
    assert_eq!(q.len(), 2, "{q:?}");
    assert!(
        q.iter().all(|r| r.stream == "ad_analytics" && r.location.contains("timeGranularity=ALL")),
        "{q:?}"
    );
    assert!(
        q[0].location.ends_with("element 1") && q[0].reason.contains("ad account 7 was not asked for"),
        "{:?}",
        q[0]
    );
    assert_eq!(serde_json::from_str::<serde_json::Value>(&q[0].raw).unwrap(), unknown);
    assert!(q[1].location.ends_with("element 2") && q[1].reason.contains("sponsoredAccount"), "{:?}", q[1]);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&q[1].raw).unwrap(), wrong_pivot);

    let week_accounts: Vec<_> = pulled
        .period_rows
        .iter()
        .filter(|p| p.request.period.grain == PeriodGrain::Week && p.row.level == "account")
        .map(|p| (p.row.entity_id.to_string(), p.row.value))
        .collect();
    assert_eq!(week_accounts, [("508000001".to_owned(), Decimal::from_i64(1_234))]);
    // The other requests are answered as usual: March by account has both accounts.
    let march = pulled
        .period_rows
        .iter()
        .filter(|p| p.request.period.grain == PeriodGrain::Month && p.row.level == "account")
        .count();
    assert_eq!(march, 2);
}
