//! Facebook / Meta Graph and Marketing API (`/v25.0/...`), following `shared/apis/facebook.md`:
//!
//! | route | response |
//! |---|---|
//! | `GET /{v}/act_{id}?fields=` | the ad account: `id`, `account_id`, `name`, `currency`, ... |
//! | `GET /{v}/act_{id}/insights?level=&fields=&time_range=&time_increment=1` | daily rows (§2) |
//! | `GET /{v}/act_{id}/insights?level=&fields=&time_ranges=[...]` (or `time_range` with `time_increment=all_days`) | one row per entity and range |
//! | `POST /{v}/act_{id}/insights` (JSON or form body) | `{"report_run_id": "..."}` (§3) |
//! | `GET /{v}/{report_run_id}` | `async_status`, `async_percent_completion`, ... (§3) |
//! | `GET /{v}/{report_run_id}/insights?limit=&after=` | the run's rows, paged like the synchronous report |
//! | `POST /` with `batch=[{"method": "GET", "relative_url": "{v}/{report_run_id}?fields=..."}]` | one `{"code", "headers", "body"}` per report-run poll |
//! | `GET /{v}/{page_id}?fields=name,access_token` | the Page and its access token |
//! | `GET /{v}/{page_id}/insights?metric=&period=day&since=&until=` | Page insights (§4) |
//! | `GET /{v}/{page_id}/insights?metric=page_total_media_view_unique&period=week&since=&until=` | rolling weekly values |
//!
//! Every answer of these routes carries the usage headers of §6 (`X-App-Usage`, and per
//! business object `X-Business-Use-Case-Usage` with `X-Ad-Account-Usage` or `X-Page-Usage`),
//! errors use Meta's envelope (`{"error": {"message", "type", "code", "error_subcode",
//! "fbtrace_id"}}`), and throttling is an error body with HTTP 400, never a 429 or
//! `Retry-After`. Tokens travel as `Authorization: Bearer` or the `access_token` query
//! parameter; [`auth_config`] makes the simulator check them and answer Meta's code 190.
//!
//! [`FacebookGraph::default`] serves two ad accounts (USD in Los Angeles, EUR in Berlin) with two
//! campaigns of two ad sets of two ads each, delivering on most days from [`FIRST_DAY`] on, and
//! one Page. The truth tests compare against is [`FacebookGraph::insights`],
//! [`FacebookGraph::range_insights`] (reach over a week or month), [`FacebookGraph::page_metric`]
//! and [`FacebookGraph::page_week_metric`].

mod batch;
mod data;
mod insights;
mod pages;
mod reports;
mod usage;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use axum::routing::get;
use bytes::Bytes;
use chrono::NaiveDate;
use http::{HeaderMap, header};
use serde_json::{Value, json};

pub use data::{
    ActionStat, CUSTOM_CONVERSION, Entity, FIRST_DAY, InsightsLevel, InsightsRow, PAGE_METRICS,
    PAGE_WEEK_METRICS, PageMetricDef, PageValue, SimAdAccount, SimPage, Structure, money, page_end_time,
};
pub use insights::{ATTRIBUTION_WINDOWS, KNOWN_FIELDS};
pub use pages::{MAX_PAGE_INSIGHTS_DAYS, invalid_metric};
pub use reports::ReportRunBehaviour;
pub use usage::UsageBudget;

use crate::config::{AuthConfig, CannedResponse};
use crate::platform::{Platform, PlatformContext};
use crate::quota::QuotaRule;
use insights::{RowFormat, listing_of, page_spec, reply_with_text, report_spec};
use reports::{PollOutcome, ReportRuns};
use usage::{BusinessObject, UsageTracker};

/// The Graph API version the simulator serves unless configured otherwise.
pub const DEFAULT_API_VERSION: &str = "v25.0";

/// The ad accounts of [`FacebookGraph::default`] (ids without `act_`).
pub const DEFAULT_AD_ACCOUNTS: [&str; 2] = ["101000000000001", "101000000000002"];

/// The Page of [`FacebookGraph::default`].
pub const DEFAULT_PAGE: &str = "200000000000001";

/// A system-user token [`auth_config`] always accepts (for `kpipe demo`).
pub const DEMO_ACCESS_TOKEN: &str = "sim-facebook-system-user-token";

/// Meta's error envelope.
#[must_use]
pub fn error(status: u16, code: u64, subcode: Option<u64>, message: &str) -> CannedResponse {
    let mut error =
        json!({"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "ASimTrace"});
    if let (Some(subcode), Some(object)) = (subcode, error.as_object_mut()) {
        object.insert("error_subcode".to_owned(), json!(subcode));
    }
    CannedResponse::json(status, json!({ "error": error }))
}

/// `(#17) User request limit reached` (subcode 2446079), with this status (400, or 200 to
/// hide it in a success).
#[must_use]
pub fn user_request_limit(status: u16) -> CannedResponse {
    error(status, 17, Some(2_446_079), "(#17) User request limit reached")
}

/// `(#80000)` ads-insights business-use-case throttling on an ad account (HTTP 400).
#[must_use]
pub fn ad_account_limit() -> CannedResponse {
    error(
        400,
        80_000,
        Some(2_446_079),
        concat!(
            "(#80000) There have been too many calls from this ad-account. Wait a bit and try again. ",
            "For more info, please refer to ",
            "https://developers.facebook.com/docs/graph-api/overview/rate-limiting."
        ),
    )
}

/// `(#80001)` Pages business-use-case throttling (HTTP 400).
#[must_use]
pub fn page_limit() -> CannedResponse {
    error(
        400,
        80_001,
        None,
        concat!(
            "(#80001) There have been too many calls to this Page account. Wait a bit and try again. ",
            "For more info, please refer to ",
            "https://developers.facebook.com/docs/graph-api/overview/rate-limiting."
        ),
    )
}

/// `Please reduce the amount of data you're asking for` (code 1, subcode 99, HTTP 500).
#[must_use]
pub fn reduce_data() -> CannedResponse {
    error(500, 1, Some(99), "Please reduce the amount of data you're asking for, then retry your request")
}

/// An expired access token: code 190, subcode 463, HTTP 400 (what the Graph API sends).
#[must_use]
pub fn expired_token() -> CannedResponse {
    error(
        400,
        190,
        Some(463),
        "Error validating access token: Session has expired on Tuesday, 01-Jan-2030 00:00:00 PST.",
    )
}

/// An invalid access token: code 190 (HTTP 400).
#[must_use]
pub fn invalid_token() -> CannedResponse {
    error(400, 190, None, "Invalid OAuth access token - Cannot parse access token")
}

/// Usage headers of an ad account at its limit: the business-use-case entry says access returns
/// in `seconds / 60` minutes (rounded down: Meta counts whole minutes) and `X-Ad-Account-Usage`
/// that the score resets in `seconds`.
fn exhausted_headers(response: CannedResponse, seconds: u64) -> CannedResponse {
    let entry = json!({"type": "ads_insights", "call_count": 100, "total_cputime": 40, "total_time": 40,
                       "estimated_time_to_regain_access": seconds / 60,
                       "ads_api_access_tier": "standard_access"});
    let buc = json!({ DEFAULT_AD_ACCOUNTS[0]: [entry] });
    let account = json!({"acc_id_util_pct": 100.0, "reset_time_duration": seconds,
                         "ads_api_access_tier": "standard_access"});
    response
        .with_header("X-Business-Use-Case-Usage", buc.to_string())
        .with_header("X-Ad-Account-Usage", account.to_string())
        .with_header(
            "X-App-Usage",
            json!({"call_count": 12, "total_cputime": 5, "total_time": 5}).to_string(),
        )
}

/// The answer to a request over an ad account's short-term limit, retryable after `seconds`:
/// `(#80000)` with the usage headers saying when access returns.
#[must_use]
pub fn throttled(seconds: u64) -> CannedResponse {
    exhausted_headers(ad_account_limit(), seconds)
}

/// A business-use-case limit that lasts `minutes` (the 24-hour Pages window, a spent hourly
/// ads-insights budget).
#[must_use]
pub fn business_use_case_exhausted(minutes: u64) -> CannedResponse {
    exhausted_headers(ad_account_limit(), minutes * 60)
}

/// A cap of `limit` requests, after which every request is refused with `(#80000)` and an
/// hour to wait: more than a run should sleep, so a connector stops as quota-exhausted.
#[must_use]
pub fn daily_quota(limit: u64) -> QuotaRule {
    QuotaRule::daily(limit).named("facebook_business_use_case").with_response(business_use_case_exhausted(60))
}

/// Tokens required on every API route, Meta's code 190 envelopes for expired and unknown tokens
/// (HTTP 400), `token_type` `bearer`, and [`DEMO_ACCESS_TOKEN`] always valid. Tokens the
/// tests issue with [`crate::SimServer::issue_token`] honour `expire_after_uses`.
#[must_use]
pub fn auth_config() -> AuthConfig {
    AuthConfig {
        require_bearer: true,
        token_type: "bearer".to_owned(),
        static_tokens: vec![DEMO_ACCESS_TOKEN.to_owned()],
        expired_response: expired_token(),
        invalid_response: invalid_token(),
        ..AuthConfig::default()
    }
}

#[derive(Debug, Default)]
struct MonitorCounters {
    throttled: AtomicU64,
    report_runs: AtomicU64,
    failed_polls: AtomicU64,
    rejected_metric_requests: AtomicU64,
}

/// What the simulated Graph API did, for tests. Clones of a [`FacebookGraph`] share it.
#[derive(Debug, Clone, Default)]
pub struct FacebookMonitor {
    counters: Arc<MonitorCounters>,
}

impl FacebookMonitor {
    /// Requests refused for a spent business-use-case budget (`#80000`/`#80001`).
    #[must_use]
    pub fn throttled(&self) -> u64 {
        self.counters.throttled.load(Ordering::Relaxed)
    }

    /// Report runs started.
    #[must_use]
    pub fn report_runs(&self) -> u64 {
        self.counters.report_runs.load(Ordering::Relaxed)
    }

    /// Polls answered `"Job Failed"`.
    #[must_use]
    pub fn failed_polls(&self) -> u64 {
        self.counters.failed_polls.load(Ordering::Relaxed)
    }

    /// Page insights requests refused for a retired or unknown metric.
    #[must_use]
    pub fn rejected_metric_requests(&self) -> u64 {
        self.counters.rejected_metric_requests.load(Ordering::Relaxed)
    }
}

/// The simulated Graph API and its data.
#[derive(Debug, Clone)]
pub struct FacebookGraph {
    /// The version in every path (`v25.0`).
    pub api_version: String,
    /// The ad accounts.
    pub ad_accounts: Vec<SimAdAccount>,
    /// The Pages.
    pub pages: Vec<SimPage>,
    /// Campaigns, ad sets and ads of every account.
    pub structure: Structure,
    /// Rows per page without `limit` (the API's 25).
    pub default_page_size: u64,
    /// The largest `limit` accepted.
    pub max_page_size: u64,
    /// A `limit` above this is answered "Please reduce the amount of data" (HTTP 500); `None`
    /// accepts any page size up to [`FacebookGraph::max_page_size`].
    pub reduce_data_above: Option<u64>,
    /// How report runs progress and which fail.
    pub report_runs: ReportRunBehaviour,
    /// Page metrics refused with `(#100)` like retired ones.
    pub retired_page_metrics: Vec<String>,
    /// The business-use-case budget of each ad account and Page.
    pub usage_budget: UsageBudget,
    /// The app's budget (`X-App-Usage`).
    pub app_usage_budget: UsageBudget,
    /// What the API did (shared by clones; [`FacebookGraph::monitor`] hands out a copy).
    pub monitor: FacebookMonitor,
}

impl Default for FacebookGraph {
    fn default() -> Self {
        Self {
            api_version: DEFAULT_API_VERSION.to_owned(),
            ad_accounts: vec![
                SimAdAccount::new(
                    DEFAULT_AD_ACCOUNTS[0],
                    "Acme Outdoor US",
                    "USD",
                    "America/Los_Angeles",
                    -8,
                ),
                SimAdAccount::new(DEFAULT_AD_ACCOUNTS[1], "Acme Outdoor DE", "EUR", "Europe/Berlin", 1),
            ],
            pages: vec![SimPage::new(DEFAULT_PAGE, "Acme Outdoor")],
            structure: Structure { campaigns: 2, adsets: 2, ads: 2 },
            default_page_size: 25,
            max_page_size: 5_000,
            reduce_data_above: None,
            report_runs: ReportRunBehaviour::default(),
            // Retired on 2025-11-15 for every API version (the Pages API changelog).
            retired_page_metrics: vec!["page_impressions".to_owned()],
            usage_budget: UsageBudget::new(5_000, Duration::from_secs(3_600)),
            app_usage_budget: UsageBudget::new(50_000, Duration::from_secs(3_600)),
            monitor: FacebookMonitor::default(),
        }
    }
}

impl FacebookGraph {
    /// The counters of what the API did; shared by clones.
    #[must_use]
    pub fn monitor(&self) -> FacebookMonitor {
        self.monitor.clone()
    }

    /// The ad account `id` (without `act_`).
    #[must_use]
    pub fn ad_account(&self, id: &str) -> Option<&SimAdAccount> {
        self.ad_accounts.iter().find(|a| a.id == id)
    }

    /// Every daily insights row of account `id` at `level` from `since` to `until`: the
    /// simulator's truth.
    #[must_use]
    pub fn insights(
        &self,
        seed: u64,
        id: &str,
        level: InsightsLevel,
        since: NaiveDate,
        until: NaiveDate,
    ) -> Vec<InsightsRow> {
        match self.ad_account(id) {
            Some(account) => data::insights(seed, &self.structure, account, level, since, until),
            None => Vec::new(),
        }
    }

    /// One row per entity of account `id` at `level` over the whole range `since..=until`, as
    /// `time_ranges` (or `time_increment=all_days`) returns it: the simulator's truth for a
    /// period's reach, at least the entity's largest day and below the sum of its days when it
    /// delivered on two days or more (the module `data` has the rules).
    #[must_use]
    pub fn range_insights(
        &self,
        seed: u64,
        id: &str,
        level: InsightsLevel,
        since: NaiveDate,
        until: NaiveDate,
    ) -> Vec<InsightsRow> {
        match self.ad_account(id) {
            Some(account) => data::range_insights(seed, &self.structure, account, level, since, until),
            None => Vec::new(),
        }
    }

    /// The value of Page metric `metric` on `day`, if the Page had data then.
    #[must_use]
    pub fn page_metric(&self, seed: u64, page: &str, metric: &str, day: NaiveDate) -> Option<PageValue> {
        data::page_metric(seed, page, metric, day)
    }

    /// The `period=week` value of Page metric `metric` closing `last_day` (the seven days
    /// ending then), for the metrics of [`PAGE_WEEK_METRICS`]: the truth of a Page's weekly reach.
    #[must_use]
    pub fn page_week_metric(&self, seed: u64, page: &str, metric: &str, last_day: NaiveDate) -> Option<u64> {
        data::page_week_metric(seed, page, metric, last_day)
    }
}

#[derive(Debug)]
struct GraphState {
    api: FacebookGraph,
    seed: u64,
    base_url: String,
    runs: Mutex<ReportRuns>,
    usage: Mutex<UsageTracker>,
    /// The rows of the reports asked for last: each page of a listing is cut from its
    /// report's rows, which are made once instead of once per page.
    reports: Mutex<Vec<(String, Arc<Vec<InsightsRow>>)>>,
}

/// Reports whose rows are kept for their next pages.
const REPORTS_KEPT: usize = 64;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Platform for FacebookGraph {
    fn name(&self) -> &str {
        "facebook"
    }

    fn router(&self, ctx: &PlatformContext) -> Router {
        let state = Arc::new(GraphState {
            api: self.clone(),
            seed: ctx.seed(),
            base_url: ctx.base_url().to_owned(),
            runs: Mutex::new(ReportRuns::default()),
            usage: Mutex::new(UsageTracker::new(self.usage_budget, self.app_usage_budget)),
            reports: Mutex::new(Vec::new()),
        });
        let version = &self.api_version;
        Router::new()
            .route(&format!("/{version}/{{node}}"), get(node))
            .route(&format!("/{version}/{{node}}/insights"), get(node_insights).post(start_report_run))
            .route("/", axum::routing::post(batch::batch))
            .with_state(state)
    }
}

/// What an id in a path names.
enum Node {
    AdAccount(SimAdAccount),
    Page(SimPage),
    ReportRun(String, String),
    Unknown,
}

impl GraphState {
    fn resolve(&self, node: &str) -> Node {
        if let Some(id) = node.strip_prefix("act_") {
            return self.api.ad_account(id).cloned().map_or(Node::Unknown, Node::AdAccount);
        }
        if let Some(run) = lock(&self.runs).get(node) {
            return Node::ReportRun(run.id.clone(), run.account_id.clone());
        }
        self.api.pages.iter().find(|p| p.id == node).cloned().map_or(Node::Unknown, Node::Page)
    }

    /// One poll of the report run `id` of `account`: the answer and its usage headers (none
    /// when the answer is the throttling one, which carries its own).
    fn poll_run(&self, id: &str, account: String) -> (CannedResponse, Vec<(String, String)>) {
        let usage = match self.admit(BusinessObject::AdAccount(account)) {
            Ok(h) => h,
            Err(refused) => return (refused, Vec::new()),
        };
        match lock(&self.runs).poll(id, &self.api.report_runs, now_unix(), clock_now()) {
            Some((body, outcome)) => {
                if outcome == PollOutcome::Failed {
                    self.api.monitor.counters.failed_polls.fetch_add(1, Ordering::Relaxed);
                }
                (CannedResponse::json(200, body), usage)
            }
            None => (unsupported("get", id), usage),
        }
    }

    /// Counts the call; `Err` is the throttling answer, with its usage headers.
    fn admit(&self, object: BusinessObject) -> Result<Vec<(String, String)>, CannedResponse> {
        let admission = lock(&self.usage).admit(&object, tokio::time::Instant::now());
        match admission.throttled {
            Some(refusal) => {
                self.api.monitor.counters.throttled.fetch_add(1, Ordering::Relaxed);
                Err(admission.headers.into_iter().fold(refusal, |c, (k, v)| c.with_header(k, v)))
            }
            None => Ok(admission.headers),
        }
    }

    /// The rows a report of account `id` returns: daily rows, or one per entity and range.
    fn rows_of(&self, id: &str, spec: &insights::ReportSpec) -> Arc<Vec<InsightsRow>> {
        let key = format!("{id} {:?} {} {} {:?}", spec.level, spec.since, spec.until, spec.ranges);
        if let Some((_, rows)) = lock(&self.reports).iter().find(|(k, _)| *k == key) {
            return Arc::clone(rows);
        }
        let rows = Arc::new(self.make_rows(id, spec));
        let mut kept = lock(&self.reports);
        if kept.len() >= REPORTS_KEPT {
            kept.remove(0);
        }
        kept.push((key, Arc::clone(&rows)));
        rows
    }

    fn make_rows(&self, id: &str, spec: &insights::ReportSpec) -> Vec<InsightsRow> {
        let Some(account) = self.api.ad_account(id) else { return Vec::new() };
        let structure = &self.api.structure;
        match &spec.ranges {
            None => data::insights(self.seed, structure, account, spec.level, spec.since, spec.until),
            // All ranges at once: weeks and months share their days, which are drawn once.
            Some(ranges) => data::ranges_insights(self.seed, structure, account, spec.level, ranges),
        }
    }

    fn link(&self, node: &str) -> String {
        format!("{}/{}/{node}/insights", self.base_url, self.api.api_version)
    }

    /// The `limit` check shared by the synchronous report and report-run results.
    fn page_of(&self, params: &[(String, String)]) -> Result<insights::PageSpec, CannedResponse> {
        let page = page_spec(params, self.api.default_page_size, self.api.max_page_size)?;
        match self.api.reduce_data_above {
            Some(max) if page.limit > max => Err(reduce_data()),
            _ => Ok(page),
        }
    }
}

fn reply(canned: CannedResponse, headers: Vec<(String, String)>) -> Response {
    headers.into_iter().fold(canned, |c, (k, v)| c.with_header(k, v)).to_response()
}

fn unsupported(method: &str, node: &str) -> CannedResponse {
    error(
        400,
        100,
        Some(33),
        &format!(
            "Unsupported {method} request. Object with ID '{node}' does not exist, cannot be loaded due to \
             missing permissions, or does not support this operation. Please read the Graph API \
             documentation at https://developers.facebook.com/docs/graph-api"
        ),
    )
}

/// The token a request authenticated with: the bearer header, else `access_token`.
fn token_of(headers: &HeaderMap, params: &[(String, String)]) -> Option<String> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().to_owned());
    bearer.or_else(|| params.iter().find(|(k, _)| k == "access_token").map(|(_, v)| v.clone()))
}

fn requested_fields(params: &[(String, String)]) -> Vec<String> {
    params
        .iter()
        .rev()
        .find(|(k, _)| k == "fields")
        .map(|(_, v)| v.split(',').map(|f| f.trim().to_owned()).collect())
        .unwrap_or_default()
}

fn now_unix() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The runtime's monotonic clock, as the usage windows read it: a test that pauses tokio's
/// clock moves timed report runs along with it.
fn clock_now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// `GET /{v}/{node}`: an ad account, a Page, or a report run's status.
async fn node(
    State(state): State<Arc<GraphState>>,
    Path(node): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let params = query.as_deref().map(crate::query_pairs).unwrap_or_default();
    match state.resolve(&node) {
        Node::AdAccount(account) => {
            let usage = match state.admit(BusinessObject::AdAccount(account.id.clone())) {
                Ok(h) => h,
                Err(refused) => return refused.to_response(),
            };
            let all = json!({
                "id": format!("act_{}", account.id),
                "account_id": account.id,
                "name": account.name,
                "currency": account.currency,
                "timezone_name": account.timezone_name,
                "timezone_offset_hours_utc": account.timezone_offset_hours_utc,
                "account_status": 1,
            });
            reply(CannedResponse::json(200, select(&all, &requested_fields(&params))), usage)
        }
        Node::Page(page) => {
            let usage = match state.admit(BusinessObject::Page(page.id.clone())) {
                Ok(h) => h,
                Err(refused) => return refused.to_response(),
            };
            // A system-user token gets the Page's token back; the simulator hands back the caller's
            // own token so that one token store (with its expiry rules) governs both.
            let all = json!({"id": page.id, "name": page.name, "access_token": token_of(&headers, &params)});
            reply(CannedResponse::json(200, select(&all, &requested_fields(&params))), usage)
        }
        Node::ReportRun(id, account) => {
            let (answer, usage) = state.poll_run(&id, account);
            reply(answer, usage)
        }
        Node::Unknown => {
            let usage = state.admit(BusinessObject::None).unwrap_or_default();
            reply(unsupported("get", &node), usage)
        }
    }
}

/// `fields` of `object` (all of it without `fields`); `id` always.
fn select(object: &Value, fields: &[String]) -> Value {
    if fields.is_empty() {
        return object.clone();
    }
    let mut out = serde_json::Map::new();
    for key in std::iter::once("id").chain(fields.iter().map(String::as_str)) {
        if let Some(v) = object.get(key).filter(|v| !v.is_null()) {
            out.insert(key.to_owned(), v.clone());
        }
    }
    Value::Object(out)
}

/// `GET /{v}/{node}/insights`: an account's report, a report run's rows, or Page insights.
async fn node_insights(
    State(state): State<Arc<GraphState>>,
    Path(node): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let params = query.as_deref().map(crate::query_pairs).unwrap_or_default();
    let token = token_of(&headers, &params);
    match state.resolve(&node) {
        Node::AdAccount(account) => {
            let usage = match state.admit(BusinessObject::AdAccount(account.id.clone())) {
                Ok(h) => h,
                Err(refused) => return refused.to_response(),
            };
            let answer = report_spec(&params).and_then(|spec| Ok((spec, state.page_of(&params)?))).and_then(
                |(spec, page)| {
                    let rows = state.rows_of(&account.id, &spec);
                    let format = RowFormat::new(&spec);
                    listing_of(&rows, |r| format.row(r), page, &state.link(&node), &params, token.as_deref())
                },
            );
            match answer {
                Ok(body) => reply_with_text(body, usage),
                Err(e) => reply(e, usage),
            }
        }
        Node::ReportRun(id, account) => {
            let usage = match state.admit(BusinessObject::AdAccount(account.clone())) {
                Ok(h) => h,
                Err(refused) => return refused.to_response(),
            };
            let run = lock(&state.runs).get(&id).cloned();
            let Some(run) = run.filter(|r| r.completed(&state.api.report_runs, clock_now())) else {
                return reply(insights::invalid("The report run is not complete yet"), usage);
            };
            let answer = state.page_of(&params).and_then(|page| {
                let rows = state.rows_of(&account, &run.spec);
                let format = RowFormat::new(&run.spec);
                listing_of(&rows, |r| format.row(r), page, &state.link(&id), &params, token.as_deref())
            });
            match answer {
                Ok(body) => reply_with_text(body, usage),
                Err(e) => reply(e, usage),
            }
        }
        Node::Page(page) => {
            let usage = match state.admit(BusinessObject::Page(page.id.clone())) {
                Ok(h) => h,
                Err(refused) => return refused.to_response(),
            };
            let answer = pages::page_insights(
                state.seed,
                &page,
                &params,
                &state.api.retired_page_metrics,
                &state.link(&node),
                token.as_deref(),
            );
            match answer {
                Ok(body) => reply(CannedResponse::json(200, body), usage),
                Err(e) => {
                    if e == invalid_metric() {
                        state.api.monitor.counters.rejected_metric_requests.fetch_add(1, Ordering::Relaxed);
                    }
                    reply(e, usage)
                }
            }
        }
        Node::Unknown => {
            let usage = state.admit(BusinessObject::None).unwrap_or_default();
            reply(unsupported("get", &node), usage)
        }
    }
}

/// The parameters of a POST: the query's, then the body's (a JSON object, whose non-string
/// values are JSON-encoded like the query form, or a form).
fn post_params(query: Option<&str>, headers: &HeaderMap, body: &[u8]) -> Vec<(String, String)> {
    let mut params = query.map(crate::query_pairs).unwrap_or_default();
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if json {
        if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) {
            for (k, v) in map {
                let text = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                params.push((k, text));
            }
        }
    } else {
        params.extend(crate::query_pairs(&String::from_utf8_lossy(body)));
    }
    params
}

/// `POST /{v}/act_{id}/insights`: starts a report run.
async fn start_report_run(
    State(state): State<Arc<GraphState>>,
    Path(node): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Node::AdAccount(account) = state.resolve(&node) else {
        let usage = state.admit(BusinessObject::None).unwrap_or_default();
        return reply(unsupported("post", &node), usage);
    };
    let usage = match state.admit(BusinessObject::AdAccount(account.id.clone())) {
        Ok(h) => h,
        Err(refused) => return refused.to_response(),
    };
    let params = post_params(query.as_deref(), &headers, &body);
    match report_spec(&params) {
        Ok(spec) => {
            let (id, _) =
                lock(&state.runs).start(&account.id, spec, &state.api.report_runs, now_unix(), clock_now());
            state.api.monitor.counters.report_runs.fetch_add(1, Ordering::Relaxed);
            reply(CannedResponse::json(200, json!({"report_run_id": id})), usage)
        }
        Err(e) => reply(e, usage),
    }
}

#[cfg(test)]
mod answer_digests;
#[cfg(test)]
mod tests;
