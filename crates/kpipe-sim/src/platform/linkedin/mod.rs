//! LinkedIn Marketing API, versioned (`/rest/...`), as `shared/apis/linkedin.md` describes it.
//!
//! | route (all `GET`) | query | notes |
//! |---|---|---|
//! | `/rest/adAccounts/{id}` | | §3.2 |
//! | `/rest/adAccounts/{id}/adCampaigns` | `q=search&search=(status:(..))&pageSize&pageToken` | §3.3, §4 |
//! | `/rest/adAccounts/{id}/creatives` | `q=criteria&pageSize&pageToken` | §4 |
//! | `/rest/adAnalytics` | `q=analytics&pivot&timeGranularity&dateRange&accounts&fields` | §2, §3.1; `DAILY` or `ALL` |
//! | `/rest/organizations/{id}` | | `localizedName` |
//! | `/rest/networkSizes/{urn}` | `edgeType=COMPANY_FOLLOWED_BY_MEMBER` | §3.4 |
//! | `/rest/organizationalEntityFollowerStatistics` | `q=organizationalEntity&timeIntervals` | §3.4, §4 |
//! | `/rest/organizationalEntityShareStatistics` | `q=organizationalEntity&timeIntervals` | §3.5, §4 |
//!
//! What it enforces like the real API: the `LinkedIn-Version` header (missing: 400
//! `VERSION_MISSING`; not an active version: 426 `NONEXISTENT_VERSION`, §1), the
//! `X-Restli-Protocol-Version: 2.0.0` header, Rest.li 2.0 query syntax with URNs percent-encoded
//! inside `List(...)` (§2), at most [`LinkedInApi::max_fields`] `fields` per analytics request,
//! silent truncation of analytics responses at [`LinkedInApi::max_elements`] elements (§3.1),
//! cursor paging with `metadata.nextPageToken` (§4) and `start`/`count` paging of organization
//! statistics, and the rolling 12-month window of time-bound organization statistics (§3.5).
//! Errors use LinkedIn's envelope `{"status","serviceErrorCode"?,"code","message"}` (§6).
//! Where the notes are unsure, the simulator is strict: `dateRange` and `pivotValues` count
//! towards the 20 fields, and time-bound share statistics omit `uniqueImpressionsCount`.
//!
//! Ad analytics are served by the pivots ACCOUNT, CAMPAIGN_GROUP, CAMPAIGN and CREATIVE, daily
//! (`DAILY`, one element per entity and day) or over the whole date range (`ALL`, one element
//! per entity, `dateRange` the range asked for). Reach (`approximateMemberReach`) counts unique
//! members, so it is no sum at any grain: a campaign's day lies between its largest creative's
//! and its creatives' sum, a group's and the account's likewise over their children, and an
//! entity's reach over several days between its largest day and the sum of its days
//! ([`LinkedInApi::period_reach`] is that truth). As LinkedIn does, reach is left out of every
//! element when the date range is longer than 92 days.
//!
//! Not simulated: `q=statistics` and `q=attributedRevenueMetrics`, other pivots, the MONTHLY and
//! YEARLY granularities, facets other than `accounts` with the ACCOUNT and CAMPAIGN_GROUP
//! pivots, granularities other than DAY (organization statistics), lifetime organization
//! statistics, and query tunneling (§2, 414).

mod data;
mod organization;
pub mod restli;
mod routes;
#[cfg(test)]
mod tests;

use std::ops::RangeInclusive;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use chrono::{Months, NaiveDate, Utc};
use serde_json::{Map, Value, json};

pub use data::{AdAccount, AnalyticsElement, Campaign, Creative, Organization, Pivot, format_money};

use crate::config::{CannedResponse, RefreshRotation};
use crate::platform::{Platform, PlatformContext};
use crate::quota::QuotaRule;

/// LinkedIn's OAuth token endpoint path (`https://www.linkedin.com/oauth/v2/accessToken`).
pub const TOKEN_PATH: &str = "/oauth/v2/accessToken";

/// The simulated LinkedIn Marketing API: which accounts and pages exist and how the API
/// behaves. Mount it with [`crate::SimConfig::with_platform`]; use [`auth_config`] for its
/// OAuth endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkedInApi {
    /// The sponsored ad accounts.
    pub accounts: Vec<AdAccount>,
    /// The company pages.
    pub organizations: Vec<Organization>,
    /// The first day with data; earlier windows are empty.
    pub first_day: NaiveDate,
    /// "Today" for organization statistics (follower totals, the 12-month window); `None` is
    /// the current UTC date.
    pub today: Option<NaiveDate>,
    /// The `LinkedIn-Version` values served (`YYYYMM`); others are answered 426.
    pub active_versions: RangeInclusive<u32>,
    /// Ad analytics elements per response; more are cut off without notice.
    pub max_elements: usize,
    /// `fields` per ad analytics request, `dateRange` and `pivotValues` included.
    pub max_fields: usize,
    /// `pageSize` of listings that name none.
    pub default_page_size: u64,
    /// The largest `pageSize` (and `count`) accepted.
    pub max_page_size: u64,
    /// `count` of organization statistics requests that name none.
    pub default_statistics_count: u64,
    /// Whether some days lose more followers than they gain (net gains below zero, about one
    /// day in ten), as LinkedIn's net gains do; on by default.
    pub negative_follower_gains: bool,
}

impl Default for LinkedInApi {
    /// Two ad accounts (USD with 4 campaigns, EUR with 3, two creatives each) and one company
    /// page, with data every day from 2026-01-01.
    fn default() -> Self {
        Self {
            accounts: vec![
                AdAccount::new(508_000_001, "USD", 4, 2),
                AdAccount::new(508_000_002, "EUR", 3, 2),
            ],
            organizations: vec![Organization { id: 2_414_183, name: "Kpipe Demo Company".to_owned() }],
            first_day: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap_or_default(),
            today: None,
            active_versions: 202_511..=202_611,
            max_elements: 15_000,
            max_fields: 20,
            default_page_size: 100,
            max_page_size: 1_000,
            default_statistics_count: 10,
            negative_follower_gains: true,
        }
    }
}

impl LinkedInApi {
    /// `accounts` ad accounts (ids from 508000001, alternately USD and EUR) of `campaigns`
    /// campaigns with `creatives` creatives each, and no company page.
    #[must_use]
    pub fn with_accounts(accounts: u64, campaigns: u64, creatives: u64) -> Self {
        let accounts = (1..=accounts)
            .map(|n| {
                AdAccount::new(508_000_000 + n, if n % 2 == 1 { "USD" } else { "EUR" }, campaigns, creatives)
            })
            .collect();
        Self { accounts, organizations: Vec::new(), ..Self::default() }
    }

    /// The account with this id.
    #[must_use]
    pub fn account(&self, id: u64) -> Option<&AdAccount> {
        self.accounts.iter().find(|a| a.id == id)
    }

    /// The organization with this id.
    #[must_use]
    pub fn organization(&self, id: u64) -> Option<&Organization> {
        self.organizations.iter().find(|o| o.id == id)
    }

    /// The campaigns of an account (none for an unknown one).
    #[must_use]
    pub fn campaigns(&self, account: u64) -> Vec<Campaign> {
        self.account(account).map(data::campaigns).unwrap_or_default()
    }

    /// The campaign groups of an account that hold a campaign, ordered by id (none for an
    /// unknown account).
    #[must_use]
    pub fn campaign_groups(&self, account: u64) -> Vec<u64> {
        self.account(account).map(data::campaign_groups).unwrap_or_default()
    }

    /// The creatives of an account (none for an unknown one).
    #[must_use]
    pub fn creatives(&self, account: u64) -> Vec<Creative> {
        self.account(account).map(data::creatives).unwrap_or_default()
    }

    /// The ad analytics of `account` by `pivot`, every day from `since` to `until`, with these
    /// metric fields: the simulator's truth, in API order, before any truncation.
    #[must_use]
    pub fn ad_analytics(
        &self,
        seed: u64,
        account: u64,
        pivot: Pivot,
        since: NaiveDate,
        until: NaiveDate,
        fields: &[&str],
    ) -> Vec<AnalyticsElement> {
        match self.account(account) {
            Some(a) => data::ad_analytics(seed, a, self.first_day, pivot, since, until, fields),
            None => Vec::new(),
        }
    }

    /// The ad analytics of `account` by `pivot` over the days from `since` to `until` as one
    /// element per entity (`timeGranularity=ALL`), with these metric fields: counts and money
    /// summed over the days, reach as [`LinkedInApi::period_reach`]; in listing order, before any
    /// truncation.
    #[must_use]
    pub fn ad_analytics_total(
        &self,
        seed: u64,
        account: u64,
        pivot: Pivot,
        since: NaiveDate,
        until: NaiveDate,
        fields: &[&str],
    ) -> Vec<AnalyticsElement> {
        match self.account(account) {
            Some(a) => data::ad_analytics_total(seed, a, self.first_day, pivot, since, until, fields),
            None => Vec::new(),
        }
    }

    /// The truth of reach over several days: the unique members each entity of `pivot` in
    /// `account` reached from `since` to `until`, by entity id, for the entities that delivered
    /// on one of those days. Each value lies between the entity's largest day and the sum of its
    /// days (strictly below the sum, as a rule, once two days have reach), and between its
    /// largest child's value over the same days and its children's sum (creatives of a campaign,
    /// campaigns of a group, groups of the account). What `timeGranularity=ALL` answers.
    #[must_use]
    pub fn period_reach(
        &self,
        seed: u64,
        account: u64,
        pivot: Pivot,
        since: NaiveDate,
        until: NaiveDate,
    ) -> Vec<(u64, i64)> {
        match self.account(account) {
            Some(a) => data::period_reach(seed, a, self.first_day, pivot, since, until),
            None => Vec::new(),
        }
    }

    /// Today, for organization statistics.
    #[must_use]
    pub fn today(&self) -> NaiveDate {
        self.today.unwrap_or_else(|| Utc::now().date_naive())
    }

    /// The earliest day time-bound organization statistics may start on (12 months back).
    #[must_use]
    pub fn earliest_statistics_day(&self) -> NaiveDate {
        let today = self.today();
        today.checked_sub_months(Months::new(12)).unwrap_or(today)
    }

    /// Whether organization statistics exist for `day`: from the first day to today.
    #[must_use]
    pub fn has_statistics(&self, day: NaiveDate) -> bool {
        self.first_day <= day && day <= self.today()
    }

    /// An organization's follower gains of `day`, `(organic, paid)`; zero outside
    /// [`LinkedInApi::has_statistics`].
    #[must_use]
    pub fn follower_gains(&self, seed: u64, organization: u64, day: NaiveDate) -> (i64, i64) {
        if self.has_statistics(day) {
            data::follower_gains(seed, organization, day, self.negative_follower_gains)
        } else {
            (0, 0)
        }
    }

    /// Followers at the end of `day` (days after today count as today).
    #[must_use]
    pub fn followers_at_end_of(&self, seed: u64, organization: u64, day: NaiveDate) -> i64 {
        let day = day.min(self.today());
        data::followers_at_end_of(seed, organization, self.first_day, day, self.negative_follower_gains)
    }

    /// What `networkSizes` answers: followers now.
    #[must_use]
    pub fn network_size(&self, seed: u64, organization: u64) -> i64 {
        self.followers_at_end_of(seed, organization, self.today())
    }

    /// An organization's `totalShareStatistics` of one day.
    #[must_use]
    pub fn share_statistics(&self, seed: u64, organization: u64, day: NaiveDate) -> Map<String, Value> {
        data::share_statistics(seed, organization, day)
    }

    /// Whether `LinkedIn-Version: <value>` is served.
    #[must_use]
    pub fn version_active(&self, value: &str) -> bool {
        value.len() == 6 && value.parse::<u32>().is_ok_and(|v| self.active_versions.contains(&v))
    }
}

/// What the handlers share.
#[derive(Debug)]
struct LinkedInState {
    api: LinkedInApi,
    seed: u64,
}

impl Platform for LinkedInApi {
    fn name(&self) -> &str {
        "linkedin"
    }

    fn router(&self, ctx: &PlatformContext) -> Router {
        let state = Arc::new(LinkedInState { api: self.clone(), seed: ctx.seed() });
        Router::new()
            .route("/rest/adAccounts/{id}", get(routes::account))
            .route("/rest/adAccounts/{id}/adCampaigns", get(routes::campaigns))
            .route("/rest/adAccounts/{id}/creatives", get(routes::creatives))
            .route("/rest/adAnalytics", get(routes::analytics))
            .route("/rest/organizations/{id}", get(organization::organization))
            .route("/rest/networkSizes/{urn}", get(organization::network_size))
            .route("/rest/organizationalEntityFollowerStatistics", get(organization::follower_statistics))
            .route("/rest/organizationalEntityShareStatistics", get(organization::share_statistics))
            .route_layer(middleware::from_fn_with_state(Arc::clone(&state), check_headers))
            .with_state(state)
    }
}

/// The headers every versioned call needs (§1): a served `LinkedIn-Version` and Rest.li 2.0.
async fn check_headers(State(state): State<Arc<LinkedInState>>, request: Request, next: Next) -> Response {
    // Read before awaiting: a borrow of the request (whose body is not `Sync`) may not live
    // across the await.
    let (version, protocol) = {
        let header =
            |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        (header("linkedin-version"), header("x-restli-protocol-version"))
    };
    let Some(version) = version else {
        return error(
            400,
            "VERSION_MISSING",
            "A version must be present. Please specify a version by adding the LinkedIn-Version header.",
        );
    };
    if !state.api.version_active(version.trim()) {
        return nonexistent_version(version.trim()).to_response();
    }
    if protocol.as_deref().map(str::trim) != Some("2.0.0") {
        return error(
            400,
            "ILLEGAL_ARGUMENT",
            "Invalid query parameters passed to request: send X-Restli-Protocol-Version: 2.0.0 \
             with Rest.li 2.0 query syntax",
        );
    }
    next.run(request).await
}

/// LinkedIn's error envelope.
fn envelope(status: u16, code: &str, message: &str) -> CannedResponse {
    CannedResponse::json(status, json!({"status": status, "code": code, "message": message}))
}

fn error(status: u16, code: &str, message: &str) -> Response {
    envelope(status, code, message).to_response()
}

/// A request the API refuses: kept small until it becomes the response.
#[derive(Debug)]
struct Refusal {
    status: u16,
    code: &'static str,
    message: String,
}

impl Refusal {
    fn response(&self) -> Response {
        error(self.status, self.code, &self.message)
    }
}

fn bad_request(message: &str) -> Refusal {
    Refusal { status: 400, code: "ILLEGAL_ARGUMENT", message: message.to_owned() }
}

fn not_found(message: &str) -> Refusal {
    Refusal { status: 404, code: "NOT_FOUND", message: message.to_owned() }
}

/// The 426 of a `LinkedIn-Version` that is not served (sunset or never released); LinkedIn
/// names the version as `YYYYMM01`.
#[must_use]
pub fn nonexistent_version(version: &str) -> CannedResponse {
    let shown = if version.len() == 6 && version.bytes().all(|b| b.is_ascii_digit()) {
        format!("{version}01")
    } else {
        version.to_owned()
    };
    envelope(426, "NONEXISTENT_VERSION", &format!("Requested version {shown} is not active"))
}

/// The 429 of an exhausted application daily limit (no `Retry-After`; resets at midnight UTC).
#[must_use]
pub fn daily_quota_exhausted() -> CannedResponse {
    CannedResponse::json(
        429,
        json!({"status": 429, "serviceErrorCode": 101, "code": "TOO_MANY_REQUESTS",
               "message": concat!("Resource level throttle APPLICATION DAY limit ",
                                  "for calls to this resource is reached.")}),
    )
}

/// The 429 of an exhausted per-member daily limit.
#[must_use]
pub fn member_daily_quota_exhausted() -> CannedResponse {
    CannedResponse::json(
        429,
        json!({"status": 429, "serviceErrorCode": 101, "code": "TOO_MANY_REQUESTS",
               "message": "Resource level throttle MEMBER DAY limit for calls to this resource is reached."}),
    )
}

/// A daily cap of `limit` requests answered like LinkedIn.
#[must_use]
pub fn daily_quota(limit: u64) -> QuotaRule {
    QuotaRule::daily(limit).named("linkedin_daily").with_response(daily_quota_exhausted())
}

/// A 429 for infrastructure protection (not a daily limit), with `Retry-After` when given
/// (LinkedIn documents none; clients must cope either way).
#[must_use]
pub fn throttled(retry_after: Option<u64>) -> CannedResponse {
    let response = envelope(429, "TOO_MANY_REQUESTS", "Too many requests. Please retry later.");
    match retry_after {
        Some(seconds) => response.with_retry_after(seconds),
        None => response,
    }
}

/// The 401 of an expired access token (`EXPIRED_ACCESS_TOKEN`). The notes give no
/// `serviceErrorCode` for expiry, so none is sent: clients should branch on status and `code`.
#[must_use]
pub fn expired_token() -> CannedResponse {
    CannedResponse::json(
        401,
        json!({"status": 401, "code": "EXPIRED_ACCESS_TOKEN",
               "message": "The token used in the request has expired"}),
    )
}

/// The 401 of a revoked (or unknown) access token: `REVOKED_ACCESS_TOKEN`, serviceErrorCode 65601.
#[must_use]
pub fn invalid_token() -> CannedResponse {
    CannedResponse::json(
        401,
        json!({"status": 401, "serviceErrorCode": 65601, "code": "REVOKED_ACCESS_TOKEN",
               "message": "The token used in the request has been revoked by the user"}),
    )
}

/// LinkedIn's OAuth behaviour: the token endpoint at [`TOKEN_PATH`], client credentials in the
/// form body, the refresh token echoed back (fixed TTL) with its lifetime (§5).
#[must_use]
pub fn auth_config() -> crate::AuthConfig {
    let mut extra = serde_json::Map::new();
    extra.insert("refresh_token_expires_in".to_owned(), json!(31_535_999));
    extra.insert(
        "scope".to_owned(),
        json!("r_ads,r_ads_reporting,r_organization_social,rw_organization_admin"),
    );
    crate::AuthConfig {
        require_bearer: true,
        token_path: TOKEN_PATH.to_owned(),
        refresh_rotation: RefreshRotation::Echo,
        expires_in: std::time::Duration::from_secs(5_183_999),
        extra_token_fields: extra,
        expired_response: expired_token(),
        invalid_response: invalid_token(),
        ..crate::AuthConfig::default()
    }
}
