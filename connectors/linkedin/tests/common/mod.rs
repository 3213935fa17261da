//! What the integration tests share: the simulator set up like LinkedIn, a source pointed at
//! it, and the rows the simulator's own data says a pull must write.
//!
//! The field-to-metric table below is written from `shared/apis/linkedin.md` §3.1 and the
//! issue's mapping, not taken from the connector, so that the tests check the connector's
//! table rather than repeat it.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use chrono::{Days, Months, NaiveDate, Utc};
use kpipe_core::{BuildContext, DateWindow, Decimal, DynSource, Metric};
use kpipe_sim::platform::linkedin::{self, LinkedInApi, Pivot};
use kpipe_sim::{SimConfig, SimServer};
use kpipe_testkit::{RowKey, Totals};
use serde_json::Value;

/// Ad analytics field, metric, and whether it is money.
pub const AD_FIELDS: [(&str, Metric); 13] = [
    ("impressions", Metric::Impressions),
    ("clicks", Metric::Clicks),
    ("landingPageClicks", Metric::LinkClicks),
    ("likes", Metric::Likes),
    ("comments", Metric::Comments),
    ("shares", Metric::Shares),
    ("follows", Metric::FollowerGains),
    ("totalEngagements", Metric::Engagements),
    ("videoViews", Metric::VideoViews),
    ("costInLocalCurrency", Metric::Spend),
    ("externalWebsiteConversions", Metric::Conversions),
    ("oneClickLeads", Metric::Leads),
    ("approximateMemberReach", Metric::Reach),
];

pub fn day(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("a date")
}

pub fn window(from: &str, to: &str) -> DateWindow {
    DateWindow::new(day(from), day(to)).expect("a window")
}

pub fn today() -> NaiveDate {
    Utc::now().date_naive()
}

/// Days before today, for windows that organization statistics (12 months deep) cover.
pub fn days_ago(n: u64) -> NaiveDate {
    today().checked_sub_days(Days::new(n)).expect("a day")
}

/// The simulator with LinkedIn's OAuth endpoint and `api` mounted.
pub fn sim_config(seed: u64, api: LinkedInApi) -> SimConfig {
    SimConfig::new(seed).with_auth(linkedin::auth_config()).with_platform(Arc::new(api))
}

pub async fn start(config: SimConfig) -> SimServer {
    SimServer::start(config).await.expect("the simulator starts")
}

/// The `[sources.<name>]` table for `sim` with the accounts and pages of `api`, refresh-token
/// credentials, and `extra` TOML lines.
pub fn source_table(sim: &SimServer, api: &LinkedInApi, extra: &str) -> toml::Table {
    let accounts: Vec<String> = api.accounts.iter().map(|a| format!("\"{}\"", a.id)).collect();
    let organizations: Vec<String> =
        api.organizations.iter().map(|o| format!("\"urn:li:organization:{}\"", o.id)).collect();
    toml::from_str(&format!(
        r#"
        account_ids = [{}]
        organization_ids = [{}]
        client_id = "sim-client"
        client_secret = "sim-secret"
        refresh_token = "sim-refresh-token"
        base_url = "{}"
        token_url = "{}"
        retry = {{ max_attempts = 4, base_delay_ms = 5, max_delay_ms = 50 }}
        {extra}
        "#,
        accounts.join(", "),
        organizations.join(", "),
        sim.base_url(),
        sim.token_url()
    ))
    .expect("a table")
}

pub fn build(table: toml::Table) -> Box<dyn DynSource> {
    let cx = BuildContext { source_name: "linkedin_test".into(), config_dir: std::env::temp_dir() };
    kpipe_connector_linkedin::factory().build(table, &cx).expect("the source builds")
}

fn key(
    account: &str,
    level: &str,
    entity: &str,
    date: NaiveDate,
    metric: Metric,
    currency: Option<&str>,
) -> RowKey {
    RowKey::new(account, level, entity, date, metric.name(), currency)
}

fn number(value: &Value) -> Decimal {
    match value {
        Value::String(s) => s.parse().expect("the simulator's decimals parse"),
        other => other.to_string().parse().expect("the simulator's numbers parse"),
    }
}

/// The ad analytics rows of `api` for `window`, from the simulator's generator.
pub fn expected_ads(api: &LinkedInApi, seed: u64, window: DateWindow) -> Totals {
    let mut totals = Totals::new();
    let fields: Vec<&str> = AD_FIELDS.iter().map(|(f, _)| *f).collect();
    for account in &api.accounts {
        let id = account.id.to_string();
        for (pivot, level) in [(Pivot::Campaign, "campaign"), (Pivot::Creative, "creative")] {
            for element in api.ad_analytics(seed, account.id, pivot, window.start(), window.end(), &fields) {
                let entity = element.entity_urn.rsplit(':').next().expect("an id");
                for (field, metric) in AD_FIELDS {
                    let currency = (metric == Metric::Spend).then_some(account.currency.as_str());
                    let value = number(&element.values[field]);
                    totals.insert(key(&id, level, entity, element.date, metric, currency), value);
                }
            }
        }
    }
    totals
}

/// The company page rows of `api` for `window`: the days with statistics in the last 12
/// months (the simulator's today), net gains (negative on some days), end-of-day followers and
/// the share counts.
pub fn expected_organizations(api: &LinkedInApi, seed: u64, window: DateWindow) -> Totals {
    let mut totals = Totals::new();
    let today = api.today();
    let earliest = today.checked_sub_months(Months::new(12)).expect("a day");
    for org in &api.organizations {
        let id = org.id.to_string();
        for date in window.days().filter(|d| api.has_statistics(*d) && *d >= earliest) {
            // Net gains, negative on days that lost followers, as LinkedIn reports them.
            let (organic, paid) = api.follower_gains(seed, org.id, date);
            let gains = Decimal::from_i64(organic + paid);
            totals.insert(key(&id, "organization", &id, date, Metric::FollowerGains, None), gains);
            let followers = api.followers_at_end_of(seed, org.id, date);
            totals.insert(
                key(&id, "organization", &id, date, Metric::Followers, None),
                Decimal::from_i64(followers),
            );
            let stats = api.share_statistics(seed, org.id, date);
            let get = |key: &str| stats.get(key).map(number);
            let mut sum = |metric: Metric, keys: &[&str]| {
                let values: Vec<Decimal> = keys.iter().filter_map(|k| get(k)).collect();
                if !values.is_empty() {
                    let total =
                        values.iter().fold(Decimal::ZERO, |a, v| a.checked_add(*v).expect("in range"));
                    totals.insert(key(&id, "organization", &id, date, metric, None), total);
                }
            };
            sum(Metric::Impressions, &["impressionCount"]);
            sum(Metric::Clicks, &["clickCount"]);
            sum(Metric::Likes, &["likeCount"]);
            sum(Metric::Comments, &["commentCount"]);
            sum(Metric::Shares, &["shareCount"]);
            sum(Metric::Reach, &["uniqueImpressionsCount"]);
            sum(Metric::Engagements, &["clickCount", "likeCount", "commentCount", "shareCount"]);
            sum(Metric::Mentions, &["shareMentionsCount", "commentMentionsCount"]);
        }
    }
    totals
}

/// Every row of `api` for `window`.
pub fn expected(api: &LinkedInApi, seed: u64, window: DateWindow) -> Totals {
    let mut totals = expected_ads(api, seed, window);
    for (key, value) in expected_organizations(api, seed, window).iter() {
        totals.insert(key.clone(), *value);
    }
    totals
}
