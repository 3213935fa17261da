//! Fixed digests of insights answers: every byte of a set of representative report pages (status,
//! headers but `date`, body) and of the rows behind them is pinned, so that how rows are made and
//! written can change while what the API answers cannot.

use std::sync::Arc;

use super::*;
use crate::{SimConfig, SimServer};

/// FNV-1a over `bytes`, continuing from `hash`.
fn fnv(hash: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(hash, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3))
}

const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

/// An account whose name needs escaping in JSON, next to the default ones.
fn graph() -> FacebookGraph {
    let mut graph =
        FacebookGraph { structure: Structure { campaigns: 3, adsets: 2, ads: 5 }, ..Default::default() };
    graph.ad_accounts.push(SimAdAccount::new(
        "101000000000009",
        "Quote \" back\\slash tab\t new\nline \u{1} é ü 日本 / </script>",
        "JPY",
        "Asia/Tokyo",
        9,
    ));
    graph
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// What one request got, reduced to a digest: the server's address is written as `BASE` so the
/// digest does not depend on the port.
struct Answer {
    digest: u64,
    body: serde_json::Value,
}

async fn fetch(sim: &SimServer, request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.unwrap();
    let mut hash = fnv(FNV_START, response.status().as_str().as_bytes());
    for (name, value) in response.headers() {
        if name != "date" {
            hash = fnv(hash, format!("{name}: {}\n", value.to_str().unwrap()).as_bytes());
        }
    }
    let text = response.text().await.unwrap().replace(sim.base_url(), "BASE");
    let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
    Answer { digest: fnv(hash, text.as_bytes()), body }
}

/// Every page of the report at `path_and_query`, following `next`: one digest over them all.
async fn all_pages(sim: &SimServer, path_and_query: &str) -> (u64, usize) {
    let mut url = sim.url(path_and_query);
    let (mut hash, mut pages) = (FNV_START, 0);
    loop {
        let answer = fetch(sim, client().get(&url).bearer_auth(DEMO_ACCESS_TOKEN)).await;
        hash = fnv(hash, &answer.digest.to_le_bytes());
        pages += 1;
        match answer.body["paging"]["next"].as_str() {
            Some(next) => url = next.replace("BASE", sim.base_url()),
            None => return (hash, pages),
        }
    }
}

const ALL_FIELDS: &str = "account_id,account_name,account_currency,campaign_id,campaign_name,adset_id,\
                          adset_name,ad_id,ad_name,impressions,reach,frequency,clicks,inline_link_clicks,\
                          spend,cpc,cpm,ctr,actions,action_values,cost_per_action_type,date_start,date_stop";

fn encoded(text: &str) -> String {
    crate::percent_encode(text)
}

fn range(since: &str, until: &str) -> String {
    encoded(&format!(r#"{{"since":"{since}","until":"{until}"}}"#))
}

/// Weeks and months of March 2026, overlapping, out of order, one before the data starts.
fn ranges() -> String {
    encoded(
        r#"[{"since":"2026-03-02","until":"2026-03-08"},{"since":"2026-03-09","until":"2026-03-15"},
            {"since":"2026-02-01","until":"2026-02-28"},{"since":"2026-03-01","until":"2026-03-31"},
            {"since":"2026-03-16","until":"2026-03-22"},{"since":"2024-12-20","until":"2025-01-03"},
            {"since":"2026-03-05","until":"2026-03-05"}]"#,
    )
}

/// The synchronous reports, in the order they are asked (usage headers count the calls).
fn reports() -> Vec<(&'static str, String)> {
    let windows = encoded(r#"["7d_click","1d_view","28d_click","1d_click","7d_click"]"#);
    let a = "act_101000000000001";
    let b = "act_101000000000002";
    let c = "act_101000000000009";
    vec![
        (
            "daily ad, every field, windows",
            format!(
                "/v25.0/{a}/insights?level=ad&fields={ALL_FIELDS}&time_increment=1&time_range={}\
                 &action_attribution_windows={windows}&limit=70",
                range("2026-03-01", "2026-03-10")
            ),
        ),
        (
            "daily adset, repeated fields",
            format!(
                "/v25.0/{b}/insights?level=adset&fields=spend,adset_id,spend,date_start,reach,actions\
                 &time_increment=1&time_range={}&limit=7",
                range("2026-03-07", "2026-03-12")
            ),
        ),
        (
            "daily campaign, default fields and page size",
            format!(
                "/v25.0/{a}/insights?level=campaign&time_increment=1&time_range={}",
                range("2026-03-01", "2026-03-20")
            ),
        ),
        (
            "daily account, every field, escaped name",
            format!(
                "/v25.0/{c}/insights?fields={ALL_FIELDS}&time_increment=1&time_range={}&limit=4",
                range("2024-12-29", "2025-01-09")
            ),
        ),
        (
            "ranges at ad level",
            format!(
                "/v25.0/{a}/insights?level=ad&fields={ALL_FIELDS}&time_ranges={}&limit=45\
                 &action_attribution_windows={windows}",
                ranges()
            ),
        ),
        (
            "ranges at adset level",
            format!(
                "/v25.0/{b}/insights?level=adset&fields=adset_id,reach,frequency,spend&time_ranges={}&limit=9",
                ranges()
            ),
        ),
        (
            "ranges at campaign level",
            format!(
                "/v25.0/{c}/insights?level=campaign&fields={ALL_FIELDS}&time_ranges={}&limit=500",
                ranges()
            ),
        ),
        (
            "ranges at account level",
            format!(
                "/v25.0/{a}/insights?level=account&fields=reach,impressions,actions&time_ranges={}",
                ranges()
            ),
        ),
        (
            "all days at adset level",
            format!(
                "/v25.0/{a}/insights?level=adset&fields={ALL_FIELDS}&time_range={}&time_increment=all_days&limit=5",
                range("2026-02-20", "2026-03-10")
            ),
        ),
        (
            "all days by default at ad level",
            format!(
                "/v25.0/{b}/insights?level=ad&fields=ad_id,reach,cpm&time_range={}&limit=11",
                range("2026-03-03", "2026-03-04")
            ),
        ),
        (
            "before the first day",
            format!(
                "/v25.0/{a}/insights?level=ad&time_increment=1&time_range={}",
                range("2024-01-01", "2024-01-31")
            ),
        ),
        (
            "a page past the end",
            format!(
                "/v25.0/{a}/insights?level=campaign&time_increment=1&time_range={}&limit=3&after={}",
                range("2026-03-01", "2026-03-02"),
                crate::platform::test_routes::encode_position(40)
            ),
        ),
        (
            "an unknown field",
            format!(
                "/v25.0/{a}/insights?level=ad&fields=spend,likes&time_range={}",
                range("2026-03-01", "2026-03-02")
            ),
        ),
    ]
}

/// Digests the current code gives; a change to how rows are made or written must keep them.
const REPORT_DIGESTS: [(&str, u64, usize); 13] = [
    ("daily ad, every field, windows", 0x4f1418433c6ce10d, 4),
    ("daily adset, repeated fields", 0x532a48ed246234cb, 6),
    ("daily campaign, default fields and page size", 0xf9f1f55b684bc5ec, 3),
    ("daily account, every field, escaped name", 0x22b921ec5c8576f5, 3),
    ("ranges at ad level", 0x030b0c54c4a40c67, 5),
    ("ranges at adset level", 0x1cfb9c2d179db4a5, 5),
    ("ranges at campaign level", 0xceae6e65198c15ac, 1),
    ("ranges at account level", 0x060f582b1f5729e6, 1),
    ("all days at adset level", 0x2dc0fa9e399717e6, 2),
    ("all days by default at ad level", 0x1501850846a31e0f, 3),
    ("before the first day", 0xdd51d8cc9ef12bbf, 1),
    ("a page past the end", 0x43f1282c8085a098, 1),
    ("an unknown field", 0xce71604cc256c43f, 1),
];

#[tokio::test]
async fn insights_answers_keep_their_bytes() {
    let sim = SimServer::start(SimConfig::new(11).with_auth(auth_config()).with_platform(Arc::new(graph())))
        .await
        .unwrap();
    let mut got = Vec::new();
    for (name, path) in reports() {
        let (digest, pages) = all_pages(&sim, &path).await;
        got.push((name, digest, pages));
    }
    // A report run's rows, the token in the query instead of a header.
    let account = "101000000000009";
    let body = serde_json::json!({
        "level": "ad", "fields": ALL_FIELDS, "time_increment": 1,
        "time_range": {"since": "2026-03-07", "until": "2026-03-09"},
        "action_attribution_windows": ["28d_click", "1d_view"],
    });
    let start =
        client().post(sim.url(&format!("/v25.0/act_{account}/insights"))).bearer_auth(DEMO_ACCESS_TOKEN);
    let started = fetch(&sim, start.json(&body)).await;
    let id = started.body["report_run_id"].as_str().unwrap().to_owned();
    let mut hash = started.digest;
    let query = format!("access_token={DEMO_ACCESS_TOKEN}");
    let early = fetch(&sim, client().get(sim.url(&format!("/v25.0/{id}/insights?{query}")))).await;
    hash = fnv(hash, &early.digest.to_le_bytes());
    // The polls are not digested: they carry the wall clock.
    for _ in 0..2 {
        let poll = client().get(sim.url(&format!("/v25.0/{id}?{query}"))).send().await.unwrap();
        assert_eq!(poll.status().as_u16(), 200);
    }
    let mut url = sim.url(&format!("/v25.0/{id}/insights?{query}&limit=13"));
    let mut pages = 0;
    loop {
        let answer = fetch(&sim, client().get(&url)).await;
        hash = fnv(hash, &answer.digest.to_le_bytes());
        pages += 1;
        match answer.body["paging"]["next"].as_str() {
            Some(next) => url = next.replace("BASE", sim.base_url()),
            None => break,
        }
    }
    got.push(("report run", hash, pages));
    let expected: Vec<(&str, u64, usize)> =
        REPORT_DIGESTS.iter().copied().chain([REPORT_RUN_DIGEST]).collect();
    assert_eq!(got, expected, "\ngot:\n{}", table(&got));
}

const REPORT_RUN_DIGEST: (&str, u64, usize) = ("report run", 0x2e7315169a2ad861, 6);

fn table(rows: &[(&str, u64, usize)]) -> String {
    rows.iter().map(|(name, digest, pages)| format!("    ({name:?}, {digest:#018x}, {pages}),\n")).collect()
}

/// The rows the API's truth functions give, digested through their `Debug` text.
#[test]
fn the_truth_keeps_its_rows() {
    let graph = graph();
    let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
    let mut got = Vec::new();
    for account in ["101000000000001", "101000000000009"] {
        for level in InsightsLevel::ALL {
            let daily = graph.insights(5, account, level, d("2026-02-25"), d("2026-03-04"));
            let week = graph.range_insights(5, account, level, d("2026-03-02"), d("2026-03-08"));
            let edge = graph.range_insights(5, account, level, d("2024-12-30"), d("2025-01-02"));
            let text = format!("{daily:?}{week:?}{edge:?}");
            got.push((
                level.as_str(),
                fnv(FNV_START, text.as_bytes()),
                daily.len() + week.len() + edge.len(),
            ));
        }
    }
    assert_eq!(got, TRUTH_DIGESTS, "\ngot:\n{}", table(&got));
}

const TRUTH_DIGESTS: [(&str, u64, usize); 8] = [
    ("account", 0xd36991a4246ea1ca, 10),
    ("campaign", 0xfa69d156e7927322, 30),
    ("adset", 0x2579870b35a37055, 60),
    ("ad", 0x2705eeecd739350b, 271),
    ("account", 0x25f0458309b0e593, 10),
    ("campaign", 0xd29e2f928fc3eb3e, 30),
    ("adset", 0x75f94bfbdf975494, 60),
    ("ad", 0xc879f45bfba23315, 255),
];
