//! HubSpot (CRM v3, Marketing v3, the legacy form-submissions API and OAuth v1), as
//! `shared/apis/hubspot.md` describes it.
//!
//! | route | source of the shapes |
//! |---|---|
//! | `GET /account-info/v3/details` | developers.hubspot.com, account information API |
//! | `GET /crm/v3/pipelines/deals` | developers.hubspot.com, CRM pipelines API (stage `metadata`) |
//! | `POST /crm/v3/objects/{contacts,deals,feedback_submissions}/search` | §3 |
//! | `GET /marketing/v3/forms?limit&after` | §6 |
//! | `GET /form-integrations/v1/submissions/forms/{guid}?limit&after` | §6 (newest first, ≤ 50) |
//! | `GET /marketing/v3/emails?limit&after` | §4 (email listing) |
//! | `GET /marketing/v3/emails/statistics/list?startTimestamp&endTimestamp` | §4 |
//! | `GET /marketing/v3/emails/statistics/histogram?interval=DAY&...&emailIds` | §4 |
//! | `POST /oauth/v1/token` | §7 (use [`auth_config`]) |
//!
//! What it enforces like the real API: CRM property values are strings (§2); search takes at most
//! 200 results per page, 5 filter groups, 10 filters per group and 25 in all, one sort, and
//! answers HTTP 400 for a page past the 10,000th result of a query (§3) even though `paging.next`
//! points there; search results have no associations and search responses carry no rate-limit
//! headers, while every other route sends `X-HubSpot-RateLimit-*` (and the daily pair for
//! private-app tokens, §8). Errors use the envelope `{"status":"error","message",
//! "correlationId","category"}`; the 429s carry `policyName` (§8). Days are the portal's, cut at
//! its midnight: US and EU zones keep daylight saving time (`zone.rs`), any other zone has a fixed
//! UTC offset ([`Portal::utc_offset_minutes`]); the account details report the offset in force.
//!
//! The generic machinery enforces limits: [`burst_quota`], [`search_quota`] and [`daily_quota`]
//! are quota rules answered with HubSpot's bodies. Not simulated: the CRM list and read
//! endpoints, associations, the email events API, archived forms, and the daylight saving time of
//! zones outside the US and the EU.

mod data;
mod routes;
mod search;
#[cfg(test)]
mod tests;
mod truth;
mod usage;
mod zone;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::middleware;
use axum::routing::{get, post};
use chrono::NaiveDate;
use serde_json::{Value, json};

pub use data::{
    ANALYTICS_SOURCES, CrmObject, CrmRecord, DAY_MS, Dataset, EmailDay, FormSubmission, LIFECYCLE_STAGES,
    POISONED_AMOUNT, PropertyType, day_start_ms, iso, local_day, parse_ms,
};
pub use truth::{ExpectedRow, TruthOptions};

use crate::config::CannedResponse;
use crate::platform::{Platform, PlatformContext};
use crate::quota::{QuotaKey, QuotaRule, RetryAfter};

/// HubSpot's OAuth token endpoint path (`https://api.hubapi.com/oauth/v1/token`).
pub const TOKEN_PATH: &str = "/oauth/v1/token";

/// Results one search query can page through; a page past it is answered 400.
pub const SEARCH_RESULT_CEILING: u64 = 10_000;

/// The portal (HubSpot account) the API belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Portal {
    /// `portalId` (the Hub ID).
    pub id: u64,
    /// `timeZone`, e.g. `US/Eastern`: a US or EU zone named in `zone.rs` keeps daylight saving
    /// time.
    pub time_zone: String,
    /// The zone's standard offset east of UTC, in minutes (its winter offset, for a zone with
    /// daylight saving time).
    pub utc_offset_minutes: i32,
    /// `companyCurrency`.
    pub currency: String,
    /// `additionalCurrencies`: some deals are in the first of them.
    pub additional_currencies: Vec<String>,
}

/// How a deal stage ends a deal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageOutcome {
    /// Still open (`isClosed: "false"`).
    Open,
    /// Closed won (`isClosed: "true"`, `probability: "1.0"`).
    Won,
    /// Closed lost (`isClosed: "true"`, `probability: "0.0"`).
    Lost,
}

/// A deal stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// Its id, the value of a deal's `dealstage`.
    pub id: String,
    /// Its label.
    pub label: String,
    /// Whether it is open, won or lost.
    pub outcome: StageOutcome,
}

impl Stage {
    fn new(id: &str, label: &str, outcome: StageOutcome) -> Self {
        Self { id: id.to_owned(), label: label.to_owned(), outcome }
    }
}

/// A deal pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pipeline {
    /// Its id, the value of a deal's `pipeline`.
    pub id: String,
    /// Its label.
    pub label: String,
    /// Its stages, in order.
    pub stages: Vec<Stage>,
}

/// A form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Form {
    /// Its GUID.
    pub guid: String,
    /// Its name.
    pub name: String,
    /// The portal day it was created.
    pub created: NaiveDate,
    /// Submissions per day, a range (inclusive).
    pub per_day: (u64, u64),
}

impl Form {
    /// The path of the page it sits on.
    #[must_use]
    pub fn slug(&self) -> String {
        self.name.to_ascii_lowercase().replace(' ', "-")
    }
}

/// A marketing email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarketingEmail {
    /// Its id (a 12-digit number).
    pub id: u64,
    /// Its name.
    pub name: String,
    /// The portal day it was sent.
    pub published: NaiveDate,
    /// Recipients.
    pub recipients: u64,
    /// Days with statistics from the send on (opens and clicks tail off).
    pub active_days: u64,
}

/// The kind of a feedback survey (`hs_survey_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SurveyKind {
    /// Net promoter score: `hs_value` 0 to 10.
    Nps,
    /// Customer satisfaction: `hs_value` 0 (unhappy), 1 (neutral), 2 (happy).
    Csat,
    /// Customer effort: `hs_value` 1 to 7.
    Ces,
}

impl SurveyKind {
    /// The value of `hs_survey_type`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Nps => "NPS",
            Self::Csat => "CSAT",
            Self::Ces => "CES",
        }
    }
}

/// A feedback survey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Survey {
    /// `hs_survey_id`.
    pub id: u64,
    /// `hs_survey_name`.
    pub name: String,
    /// `hs_survey_type`.
    pub kind: SurveyKind,
}

/// The values the `X-HubSpot-RateLimit-*` headers report (§8). They only report: limits are
/// enforced by quota rules ([`burst_quota`], [`daily_quota`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsageLimits {
    /// `X-HubSpot-RateLimit-Max`: requests per interval.
    pub burst_max: u64,
    /// `X-HubSpot-RateLimit-Interval-Milliseconds`.
    pub burst_interval: Duration,
    /// `X-HubSpot-RateLimit-Daily`, sent for private-app tokens only.
    pub daily_max: u64,
}

/// One search request the API received, for tests.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchCall {
    /// The object type in the path.
    pub object: String,
    /// The request body.
    pub body: Value,
    /// The status answered.
    pub status: u16,
}

/// The search requests received by the servers a [`HubSpotApi`] (or a clone of it) is mounted
/// on. Not part of the API's shape: any two logs compare equal.
#[derive(Debug, Clone, Default)]
pub struct SearchLog(Arc<Mutex<Vec<SearchCall>>>);

impl PartialEq for SearchLog {
    fn eq(&self, _other: &Self) -> bool {
        true
    }
}

/// The simulated HubSpot portal and API. Mount it with [`crate::SimConfig::with_platform`]; use
/// [`auth_config`] for its OAuth endpoint. Clones share the log of search calls
/// ([`HubSpotApi::search_calls`]).
#[derive(Debug, Clone, PartialEq)]
pub struct HubSpotApi {
    /// The portal.
    pub portal: Portal,
    /// The first day with records.
    pub first_day: NaiveDate,
    /// The last day with records ("today" for the simulated portal).
    pub last_day: NaiveDate,
    /// Contacts created per day, a range (inclusive).
    pub contacts_per_day: (u64, u64),
    /// Deals created per day, a range (inclusive).
    pub deals_per_day: (u64, u64),
    /// Responses per survey and day, a range (inclusive).
    pub responses_per_day: (u64, u64),
    /// Deal pipelines.
    pub pipelines: Vec<Pipeline>,
    /// Forms.
    pub forms: Vec<Form>,
    /// Marketing emails.
    pub emails: Vec<MarketingEmail>,
    /// Feedback surveys.
    pub surveys: Vec<Survey>,
    /// Contacts' last-modified times are rounded up to this many milliseconds, so that many
    /// share one (1: millisecond precision).
    pub modified_granularity_ms: i64,
    /// Every contact last modified at this instant (epoch ms): a bulk update.
    pub bulk_modified_at: Option<i64>,
    /// On these days the first deal created has [`POISONED_AMOUNT`] as its `amount`.
    pub poisoned_deal_days: Vec<NaiveDate>,
    /// Results one search query can page through ([`SEARCH_RESULT_CEILING`]).
    pub search_result_ceiling: u64,
    /// The largest search `limit` (200).
    pub max_search_limit: u64,
    /// What the rate-limit headers report.
    pub usage: UsageLimits,
    /// Tokens of private apps: their responses carry the daily rate-limit headers too.
    pub private_app_tokens: Vec<String>,
    /// The search calls received, shared by clones.
    pub search_log: SearchLog,
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
}

/// The default sales pipeline and a renewals pipeline with numeric ids, as portals have them.
#[must_use]
pub fn default_pipelines() -> Vec<Pipeline> {
    use StageOutcome::{Lost, Open, Won};
    vec![
        Pipeline {
            id: "default".to_owned(),
            label: "Sales Pipeline".to_owned(),
            stages: vec![
                Stage::new("appointmentscheduled", "Appointment Scheduled", Open),
                Stage::new("qualifiedtobuy", "Qualified To Buy", Open),
                Stage::new("presentationscheduled", "Presentation Scheduled", Open),
                Stage::new("decisionmakerboughtin", "Decision Maker Bought-In", Open),
                Stage::new("contractsent", "Contract Sent", Open),
                Stage::new("closedwon", "Closed Won", Won),
                Stage::new("closedlost", "Closed Lost", Lost),
            ],
        },
        Pipeline {
            id: "75138201".to_owned(),
            label: "Renewals".to_owned(),
            stages: vec![
                Stage::new("75138202", "Renewal Due", Open),
                Stage::new("75138203", "Renewed", Won),
                Stage::new("75138204", "Churned", Lost),
            ],
        },
    ]
}

impl Default for HubSpotApi {
    /// One portal (US/Eastern, USD with some EUR deals) with records every day of 2026: 12 to 30
    /// contacts and 3 to 8 deals a day in two pipelines, three forms, a newsletter every two
    /// weeks, and an NPS, a CSAT and a CES survey.
    fn default() -> Self {
        let forms = vec![
            Form {
                guid: "4e5d1a3c-8f2b-4c7d-9a61-2b3c4d5e6f70".to_owned(),
                name: "Newsletter Sign-up".to_owned(),
                created: date(2025, 11, 3),
                per_day: (2, 9),
            },
            Form {
                guid: "a7c3e9d1-5b24-4f8a-b6c0-1d2e3f4a5b6c".to_owned(),
                name: "Contact Us".to_owned(),
                created: date(2025, 6, 17),
                per_day: (0, 4),
            },
            Form {
                guid: "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f".to_owned(),
                name: "Ebook Download".to_owned(),
                created: date(2026, 3, 2),
                per_day: (1, 6),
            },
        ];
        let emails = (0..26u64)
            .filter_map(|n| {
                let published = date(2026, 1, 6).checked_add_days(chrono::Days::new(n * 14))?;
                Some(MarketingEmail {
                    id: 187_000_000_000 + n * 17,
                    name: format!("Newsletter {published}"),
                    published,
                    recipients: 4_000 + n * 120,
                    active_days: 10,
                })
            })
            .collect();
        Self {
            portal: Portal {
                id: 24_839_204,
                time_zone: "US/Eastern".to_owned(),
                utc_offset_minutes: -300,
                currency: "USD".to_owned(),
                additional_currencies: vec!["EUR".to_owned()],
            },
            first_day: date(2026, 1, 1),
            last_day: date(2026, 12, 31),
            contacts_per_day: (12, 30),
            deals_per_day: (3, 8),
            responses_per_day: (1, 5),
            pipelines: default_pipelines(),
            forms,
            emails,
            surveys: vec![
                Survey { id: 3_101, name: "Customer NPS".to_owned(), kind: SurveyKind::Nps },
                Survey { id: 3_102, name: "Support CSAT".to_owned(), kind: SurveyKind::Csat },
                Survey { id: 3_103, name: "Onboarding Effort".to_owned(), kind: SurveyKind::Ces },
            ],
            modified_granularity_ms: 1,
            bulk_modified_at: None,
            poisoned_deal_days: Vec::new(),
            search_result_ceiling: SEARCH_RESULT_CEILING,
            max_search_limit: 200,
            usage: UsageLimits {
                burst_max: 190,
                burst_interval: Duration::from_secs(10),
                daily_max: 625_000,
            },
            private_app_tokens: Vec::new(),
            search_log: SearchLog::default(),
        }
    }
}

impl HubSpotApi {
    /// The portal's records for `seed`: what every route serves and every test expects.
    #[must_use]
    pub fn dataset(&self, seed: u64) -> Dataset {
        Dataset::generate(self, seed)
    }

    /// The search requests received so far (by every server this API, or a clone of it, is
    /// mounted on), oldest first.
    #[must_use]
    pub fn search_calls(&self) -> Vec<SearchCall> {
        self.search_log.0.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    pub(crate) fn log_search(&self, call: SearchCall) {
        self.search_log.0.lock().unwrap_or_else(PoisonError::into_inner).push(call);
    }

    /// The pipeline whose id is `id`.
    #[must_use]
    pub fn pipeline(&self, id: &str) -> Option<&Pipeline> {
        self.pipelines.iter().find(|p| p.id == id)
    }

    /// The ids of the stages that close a deal as won.
    #[must_use]
    pub fn won_stages(&self) -> Vec<&str> {
        self.pipelines
            .iter()
            .flat_map(|p| &p.stages)
            .filter(|s| s.outcome == StageOutcome::Won)
            .map(|s| s.id.as_str())
            .collect()
    }
}

/// What the handlers share.
#[derive(Debug)]
struct HubSpotState {
    api: HubSpotApi,
    data: Dataset,
    index: search::Index,
    usage: usage::UsageCounter,
}

impl Platform for HubSpotApi {
    fn name(&self) -> &str {
        "hubspot"
    }

    fn router(&self, ctx: &PlatformContext) -> Router {
        let data = self.dataset(ctx.seed());
        let state = Arc::new(HubSpotState {
            api: self.clone(),
            index: search::Index::new(&data),
            data,
            usage: usage::UsageCounter::default(),
        });
        let reporting = Router::new()
            .route("/account-info/v3/details", get(routes::account_details))
            .route("/crm/v3/pipelines/{object}", get(routes::pipelines))
            .route("/marketing/v3/forms", get(routes::forms))
            .route("/form-integrations/v1/submissions/forms/{guid}", get(routes::submissions))
            .route("/marketing/v3/emails", get(routes::emails))
            .route("/marketing/v3/emails/statistics/list", get(routes::statistics_list))
            .route("/marketing/v3/emails/statistics/histogram", get(routes::histogram))
            .route_layer(middleware::from_fn_with_state(Arc::clone(&state), usage::rate_limit_headers));
        // Search answers without rate-limit headers (§3, §8).
        Router::new()
            .route("/crm/v3/objects/{object}/search", post(search::search))
            .merge(reporting)
            .with_state(state)
    }
}

/// HubSpot's error envelope (§8): `{"status":"error","message","correlationId","category"}`.
#[must_use]
pub fn error(status: u16, category: &str, message: &str) -> CannedResponse {
    CannedResponse::json(
        status,
        json!({"status": "error", "message": message,
               "correlationId": "9d2b6c1e-4f3a-4b8e-a1d7-5c6e7f8a9b0c", "category": category}),
    )
}

/// A 400 `VALIDATION_ERROR`.
#[must_use]
pub fn validation_error(message: &str) -> CannedResponse {
    error(400, "VALIDATION_ERROR", message)
}

fn rate_limit(message: &str, policy: Option<&str>) -> CannedResponse {
    let mut body = json!({"status": "error", "message": message, "errorType": "RATE_LIMIT",
                          "correlationId": "c033cdaa-2c40-4a64-ae48-b4cec88dad24",
                          "requestId": "3d3e35b7-0dae-4b9f-a6e3-9c230cbcf8dd"});
    if let (Some(policy), Some(map)) = (policy, body.as_object_mut()) {
        map.insert("policyName".to_owned(), Value::String(policy.to_owned()));
    }
    CannedResponse::json(429, body)
}

/// The burst-limit 429 (`TEN_SECONDLY_ROLLING`).
#[must_use]
pub fn ten_secondly_limit() -> CannedResponse {
    rate_limit("You have reached your ten_secondly_rolling limit.", Some("TEN_SECONDLY_ROLLING"))
}

/// The burst-limit 429 with `Retry-After: <seconds>`.
#[must_use]
pub fn throttled(seconds: u64) -> CannedResponse {
    ten_secondly_limit().with_retry_after(seconds)
}

/// The search limit's 429, which comes without `policyName` (§8).
#[must_use]
pub fn secondly_limit() -> CannedResponse {
    rate_limit("You have reached your secondly limit.", None)
}

/// The daily-limit 429 (`DAILY`).
#[must_use]
pub fn daily_limit() -> CannedResponse {
    rate_limit("You have reached your daily limit.", Some("DAILY"))
}

/// HubSpot's burst limit: `limit` requests per rolling `window` per token, answered like HubSpot
/// with `Retry-After` until a slot frees.
#[must_use]
pub fn burst_quota(limit: u64, window: Duration) -> QuotaRule {
    QuotaRule::rolling_window(limit, window)
        .named("hubspot_burst")
        .keyed_by(QuotaKey::BearerToken)
        .with_retry_after(RetryAfter::UntilReset)
        .with_response(ten_secondly_limit())
}

/// The CRM search limit: 5 requests per rolling second for the account (§8), on every path
/// under `/crm/v3/objects/` (the simulator serves only search there).
#[must_use]
pub fn search_quota() -> QuotaRule {
    QuotaRule::rolling_window(5, Duration::from_secs(1))
        .named("hubspot_search")
        .on_path("/crm/v3/objects/")
        .with_retry_after(RetryAfter::Omit)
        .with_response(secondly_limit())
}

/// The daily limit: `limit` requests, then 429 `DAILY` until the portal's midnight.
#[must_use]
pub fn daily_quota(limit: u64) -> QuotaRule {
    QuotaRule::daily(limit).named("hubspot_daily").with_response(daily_limit())
}

/// An expired OAuth access token (401).
#[must_use]
pub fn expired_token() -> CannedResponse {
    CannedResponse::json(
        401,
        json!({"status": "error",
               "message": "The OAuth token used to make this call expired 1 second(s) ago.",
               "correlationId": "5b7d4f0c-8f9c-4f3a-9a51-9a0c8f2d1e11",
               "category": "EXPIRED_AUTHENTICATION"}),
    )
}

/// A missing or unknown access token (401).
#[must_use]
pub fn invalid_token() -> CannedResponse {
    CannedResponse::json(
        401,
        json!({"status": "error",
               "message": "Authentication credentials not found.",
               "correlationId": "0f6a3c1e-2b7d-4c59-8e4a-6d1b2c3e4f50",
               "category": "INVALID_AUTHENTICATION"}),
    )
}

/// HubSpot's OAuth behaviour (§7): the token endpoint at [`TOKEN_PATH`], client credentials in
/// the form body, `token_type: "bearer"`, access tokens living 30 minutes (`expires_in: 1800`),
/// the refresh token echoed back, bearer tokens required on the API.
#[must_use]
pub fn auth_config() -> crate::AuthConfig {
    crate::AuthConfig {
        require_bearer: true,
        token_path: TOKEN_PATH.to_owned(),
        refresh_rotation: crate::RefreshRotation::Echo,
        expires_in: Duration::from_secs(1800),
        token_type: "bearer".to_owned(),
        expired_response: expired_token(),
        invalid_response: invalid_token(),
        ..crate::AuthConfig::default()
    }
}
