//! What the Facebook tests share: the harness against the simulated Graph API
//! (`kpipe_sim::platform::facebook`, shaped after `shared/apis/facebook.md`) and the rows the
//! simulator's own data says a pull must write, mapped by the README's tables.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use chrono::NaiveDate;
use kpipe_core::{ConnectorFactory, DateWindow, Decimal};
use kpipe_sim::platform::facebook::{
    self, DEFAULT_AD_ACCOUNTS, DEFAULT_PAGE, FacebookGraph, InsightsLevel, PageValue,
};
use kpipe_sim::{Fault, QuotaRule, SimConfig, SimServer};
use kpipe_testkit::{Auth, Harness, RowKey, Setup, Totals};

pub const SEED: u64 = kpipe_testkit::suite::SEED;

pub fn day(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("a date")
}

pub fn window(start: &str, end: &str) -> DateWindow {
    DateWindow::new(day(start), day(end)).expect("a window")
}

/// The levels a default source pulls, as the simulator names them and as rows are labelled.
pub const LEVELS: [(InsightsLevel, &str); 3] =
    [(InsightsLevel::Campaign, "campaign"), (InsightsLevel::Adset, "ad_set"), (InsightsLevel::Ad, "ad")];

/// The default Page metrics and their canonical names (README, "Page insights").
pub const PAGE_METRICS: [(&str, &str); 4] = [
    ("page_media_view", "impressions"),
    ("page_post_engagements", "engagements"),
    ("page_daily_follows_unique", "follower_gains"),
    ("page_follows", "followers"),
];

/// Action types to canonical metrics, first type present wins (README, "Action types").
const ACTION_METRICS: [(&str, &[&str]); 7] = [
    ("leads", &["lead", "onsite_conversion.lead_grouped", "offsite_conversion.fb_pixel_lead"]),
    ("conversions", &["offsite_conversion.fb_pixel_purchase", "purchase"]),
    ("likes", &["post_reaction"]),
    ("comments", &["comment"]),
    ("shares", &["post"]),
    ("video_views", &["video_view"]),
    ("engagements", &["post_engagement"]),
];
const REVENUE: [&str; 2] = ["offsite_conversion.fb_pixel_purchase", "purchase"];

fn snake(text: &str) -> String {
    text.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect()
}

fn parse(text: &str) -> Decimal {
    text.parse().expect("the simulator's numbers parse")
}

/// What a pull covers.
#[derive(Debug, Clone)]
pub struct Scope {
    pub accounts: Vec<&'static str>,
    pub levels: Vec<(InsightsLevel, &'static str)>,
    pub pages: Vec<&'static str>,
    pub page_metrics: Vec<(&'static str, &'static str)>,
}

impl Default for Scope {
    fn default() -> Self {
        Scope {
            accounts: DEFAULT_AD_ACCOUNTS.to_vec(),
            levels: LEVELS.to_vec(),
            pages: vec![DEFAULT_PAGE],
            page_metrics: PAGE_METRICS.to_vec(),
        }
    }
}

/// The rows of `scope` for `window` from the simulator's data: each level's daily rows, and the
/// account's daily reach (level `account`) when that level is not pulled.
pub fn expected(graph: &FacebookGraph, seed: u64, window: DateWindow, scope: &Scope) -> Totals {
    let mut totals = Totals::new();
    for account in &scope.accounts {
        if !scope.levels.iter().any(|(level, _)| *level == InsightsLevel::Account) {
            for row in graph.insights(seed, account, InsightsLevel::Account, window.start(), window.end()) {
                let key = RowKey::new(account, "account", account, row.date, "reach", None);
                totals.insert(key, Decimal::from_i64(row.reach as i64));
            }
        }
        let currency = graph.ad_account(account).expect("a simulated account").currency.clone();
        for (level, label) in &scope.levels {
            for row in graph.insights(seed, account, *level, window.start(), window.end()) {
                let mut put = |metric: String, value: Decimal, money: bool| {
                    let key = RowKey::new(
                        account,
                        label,
                        row.entity_id(),
                        row.date,
                        &metric,
                        money.then_some(currency.as_str()),
                    );
                    totals.insert(key, value);
                };
                put("impressions".into(), Decimal::from_i64(row.impressions as i64), false);
                put("reach".into(), Decimal::from_i64(row.reach as i64), false);
                put("clicks".into(), Decimal::from_i64(row.clicks as i64), false);
                put("link_clicks".into(), Decimal::from_i64(row.inline_link_clicks as i64), false);
                put("spend".into(), parse(&row.spend()), true);
                let actions = row.action_stats();
                let mut taken = Vec::new();
                for (metric, types) in ACTION_METRICS {
                    if let Some(stat) =
                        types.iter().find_map(|t| actions.iter().find(|a| a.action_type == *t))
                    {
                        taken.push(stat.action_type.clone());
                        put(metric.into(), parse(&stat.value), false);
                    }
                }
                for stat in actions.iter().filter(|a| !taken.contains(&a.action_type)) {
                    put(format!("facebook.action_{}", snake(&stat.action_type)), parse(&stat.value), false);
                }
                let values = row.action_value_stats();
                let revenue = REVENUE.iter().find_map(|t| values.iter().find(|a| a.action_type == *t));
                if let Some(stat) = revenue {
                    put("revenue".into(), parse(&stat.value), true);
                }
                for stat in values
                    .iter()
                    .filter(|a| Some(a.action_type.as_str()) != revenue.map(|r| r.action_type.as_str()))
                {
                    put(
                        format!("facebook.action_value_{}", snake(&stat.action_type)),
                        parse(&stat.value),
                        true,
                    );
                }
            }
        }
    }
    for page in &scope.pages {
        for date in window.days() {
            for (api, metric) in &scope.page_metrics {
                match graph.page_metric(seed, page, api, date) {
                    Some(PageValue::Count(n)) => {
                        totals.insert(
                            RowKey::new(page, "page", page, date, metric, None),
                            Decimal::from_i64(n as i64),
                        );
                    }
                    Some(PageValue::Breakdown(parts)) => {
                        for (key, n) in parts {
                            let name = format!("facebook.{api}_{key}");
                            totals.insert(
                                RowKey::new(page, "page", page, date, &name, None),
                                Decimal::from_i64(n as i64),
                            );
                        }
                    }
                    None => {}
                }
            }
        }
    }
    totals
}

/// The Facebook source against the simulator: the accounts and Pages of `scope`, `extra`
/// appended to the source table.
pub struct FacebookHarness {
    pub graph: FacebookGraph,
    pub scope: Scope,
    pub extra: String,
    pub report_runs: bool,
    tokens: Mutex<Vec<String>>,
}

impl FacebookHarness {
    /// Synchronous reports (the conformance window is shorter than the report-run threshold).
    pub fn new() -> Self {
        FacebookHarness {
            graph: FacebookGraph::default(),
            scope: Scope::default(),
            extra: String::new(),
            report_runs: false,
            tokens: Mutex::default(),
        }
    }

    /// The same source for `scope` on `graph`, with `extra` settings.
    pub fn custom(graph: FacebookGraph, scope: Scope, extra: &str) -> Self {
        FacebookHarness { graph, scope, extra: extra.to_owned(), ..FacebookHarness::new() }
    }

    /// Every window through report runs, polled quickly.
    pub fn with_report_runs() -> Self {
        FacebookHarness {
            extra: concat!(
                "async_reports = { after_days = 0, poll_initial_ms = 5, poll_max_ms = 20, ",
                "timeout_seconds = 5 }"
            )
            .into(),
            report_runs: true,
            ..FacebookHarness::new()
        }
    }
}

/// A fixture-shaped insights row (shared/apis/facebook.md §2, `insights_page1.json`).
pub fn campaign_row(campaign: &str, impressions: &str) -> serde_json::Value {
    serde_json::json!({
        "account_id": DEFAULT_AD_ACCOUNTS[0], "account_name": "Acme Outdoor US", "account_currency": "USD",
        "campaign_id": campaign, "campaign_name": "Spring Sale",
        "impressions": impressions, "reach": "171", "clicks": "9", "inline_link_clicks": "7",
        "spend": "14.35",
        "actions": [{"action_type": "lead", "value": "2"}, {"action_type": "link_click", "value": "7"}],
        "action_values": [{"action_type": "offsite_conversion.fb_pixel_purchase", "value": "189.9"}],
        "date_start": "2026-03-07", "date_stop": "2026-03-07"
    })
}

impl Harness for FacebookHarness {
    fn factory(&self) -> ConnectorFactory {
        kpipe_connector_facebook::factory()
    }

    fn sim_config(&self, seed: u64) -> SimConfig {
        SimConfig::new(seed).with_auth(facebook::auth_config()).with_platform(Arc::new(self.graph.clone()))
    }

    fn source_config(&self, sim: &SimServer, setup: Setup) -> toml::Table {
        // A long-lived token: issued by the simulator so that the token-expiry case can end it.
        let token = sim.issue_token();
        self.tokens.lock().expect("the token list").push(token.clone());
        // Ad accounts alternate between the `act_` form and the bare id: both are accepted.
        let accounts: Vec<String> = self
            .scope
            .accounts
            .iter()
            .enumerate()
            .map(|(i, a)| if i % 2 == 0 { format!("\"act_{a}\"") } else { format!("\"{a}\"") })
            .collect();
        let pages: Vec<String> = self.scope.pages.iter().map(|p| format!("\"{p}\"")).collect();
        let levels: Vec<String> = self.scope.levels.iter().map(|(_, label)| format!("\"{label}\"")).collect();
        let mut table: toml::Table = toml::from_str(&format!(
            r#"
            ad_account_ids = [{}]
            page_ids = [{}]
            levels = [{}]
            access_token = "{token}"
            base_url = "{}"
            # Faster than the default pace, so that cases with many small pages stay quick.
            rate_limit = {{ requests = 50, per_seconds = 1, burst = 5 }}
            {}
            "#,
            accounts.join(", "),
            pages.join(", "),
            levels.join(", "),
            sim.base_url(),
            self.extra,
        ))
        .expect("a table");
        if let Some(size) = setup.page_size {
            table.insert("page_size".into(), toml::Value::Integer(i64::from(size)));
        }
        table
    }

    fn auth(&self) -> Auth {
        Auth::StaticToken
    }

    fn window(&self) -> DateWindow {
        // Pacific daylight time starts on 2026-03-08: Page `end_time`s move from 08:00 to 07:00 UTC.
        window("2026-03-07", "2026-03-09")
    }

    fn empty_window(&self) -> DateWindow {
        window("2019-06-01", "2019-06-07")
    }

    fn expected(&self, seed: u64, window: DateWindow) -> Totals {
        expected(&self.graph, seed, window, &self.scope)
    }

    /// The first ad account's insights: the usage headers of the canned answers
    /// ([`facebook::throttled`]) are about that account, and the source reads its accounts,
    /// levels and Pages at once, so the first request on a wider path may be about another.
    fn data_path(&self) -> &str {
        const FIRST_ACCOUNT_INSIGHTS: &str = "/v25.0/act_101000000000001/insights";
        debug_assert!(FIRST_ACCOUNT_INSIGHTS.contains(DEFAULT_AD_ACCOUNTS[0]));
        FIRST_ACCOUNT_INSIGHTS
    }

    fn throttled(&self, seconds: u64) -> Fault {
        Fault::Respond(facebook::throttled(seconds))
    }

    fn daily_cap(&self, limit: u64) -> Option<QuotaRule> {
        Some(facebook::daily_quota(limit))
    }

    fn malformed_elements(&self, _sim: &SimServer) -> Option<Fault> {
        if self.report_runs {
            // The first data request starts a report run; its answer holds no elements.
            return None;
        }
        // The first insights answer of the account, whichever listing asked (the levels, the
        // daily reach and the period reports are asked for at once): an element that is no
        // object is refused by every reader.
        Some(Fault::respond(
            200,
            serde_json::json!({"data": [campaign_row("101000000000001101", "185"),
                                        campaign_row("101000000000001102", "n/a"),
                                        "not a row"],
                               "paging": {"cursors": {"before": "MAZDZD", "after": "MQZDZD"}}}),
        ))
    }

    fn secrets(&self, _sim: &SimServer) -> Vec<String> {
        self.tokens.lock().expect("the token list").clone()
    }
}
