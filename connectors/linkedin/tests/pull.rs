//! Pulls against the simulated LinkedIn Marketing API, beyond the conformance suite: the wire
//! format (Rest.li query string, headers, version), names, field groups, the element cap,
//! daily limits, company pages and reach. Each test names the section of
//! `shared/apis/linkedin.md` its shapes follow.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use kpipe_core::{Additivity, DateWindow, ErrorChain, ErrorKind, Metric, MetricName};
use kpipe_sim::platform::linkedin::{self, LinkedInApi, Pivot};
use kpipe_sim::{FaultRule, QuotaRule, SimServer};
use kpipe_testkit::{Totals, pull};

use common::{build, days_ago, expected, expected_ads, sim_config, source_table, start, window};

const SEED: u64 = 7;

fn ads_only() -> LinkedInApi {
    LinkedInApi { organizations: Vec::new(), ..LinkedInApi::default() }
}

fn analytics_requests(sim: &SimServer) -> Vec<kpipe_sim::RecordedRequest> {
    sim.requests().into_iter().filter(|r| r.path == "/rest/adAnalytics").collect()
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
    let first = analytics_requests(&sim).into_iter().next().expect("an analytics request");
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
    let source = build(source_table(&sim, &api, ""));
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
    // Gains from the window's start through today (21 days) in pages of 4; shares for 18 days.
    assert_eq!(by_page("/rest/organizationalEntityFollowerStatistics"), 6);
    assert_eq!(by_page("/rest/organizationalEntityShareStatistics"), 5);
    assert_eq!(by_page("/rest/networkSizes/urn%3Ali%3Aorganization%3A2414183"), 1);
    let followers = pulled.rows.iter().filter(|r| r.metric == Metric::Followers.into()).count();
    assert_eq!(followers, 18);
    assert!(
        pulled
            .rows
            .iter()
            .all(|r| r.level == "organization" && r.entity_name.as_deref() == Some("Kpipe Demo Company"))
    );
}

/// §3.4: a day that lost followers (net gains below zero) has no `follower_gains` row but a
/// quarantined record saying why; the followers of every day stay exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn net_follower_losses_are_quarantined_and_followers_stay_exact() {
    let api = LinkedInApi { accounts: Vec::new(), negative_follower_gains: true, ..LinkedInApi::default() };
    let sim = start(sim_config(SEED, api.clone())).await;
    let source = build(source_table(&sim, &api, ""));
    let w = DateWindow::new(days_ago(120), days_ago(1)).unwrap();
    let pulled = pull(source.as_ref(), w).await;
    pulled.expect_ok("losses");
    let losses: Vec<_> = w
        .days()
        .filter(|d| {
            let (organic, paid) = api.follower_gains(SEED, 2_414_183, *d);
            organic + paid < 0
        })
        .collect();
    assert!(!losses.is_empty(), "the window holds a day with a net loss");
    assert_eq!(pulled.quarantined.len(), losses.len(), "{:?}", pulled.quarantined);
    assert!(
        pulled.quarantined.iter().all(|q| q.stream == "organization_followers" && q.reason.contains("lost"))
    );
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
    // each), 20 analytics requests (each account by campaign and by creative, 28 days at once).
    assert_eq!(telemetry.requests, 50);
    assert_eq!(elements, 20);
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
