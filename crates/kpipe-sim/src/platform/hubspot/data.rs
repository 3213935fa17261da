//! The simulated portal's records, generated from the seed: contacts, deals and survey responses
//! (CRM objects whose property values are all strings, §2), form submissions (§6) and marketing
//! email statistics (§4). Everything a route answers and everything a test expects comes from
//! [`Dataset::generate`].

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Days, NaiveDate, SecondsFormat};

use super::{HubSpotApi, StageOutcome, SurveyKind};
use crate::rng::{SimRng, hash_label};

/// Milliseconds in a day.
pub const DAY_MS: i64 = 86_400_000;

/// A deal amount that is not a number: two amounts joined by `;`, as a multi-value field exported
/// into a number property looks.
pub const POISONED_AMOUNT: &str = "134376773869;137654776000";

/// Lifecycle stages in the order a contact moves through them.
pub const LIFECYCLE_STAGES: [&str; 6] =
    ["subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead", "opportunity", "customer"];

/// Values of `hs_analytics_source` (a contact's original source).
pub const ANALYTICS_SOURCES: [&str; 9] = [
    "ORGANIC_SEARCH",
    "PAID_SEARCH",
    "EMAIL_MARKETING",
    "SOCIAL_MEDIA",
    "PAID_SOCIAL",
    "REFERRALS",
    "DIRECT_TRAFFIC",
    "OFFLINE",
    "OTHER_CAMPAIGNS",
];

/// Which CRM object a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CrmObject {
    /// `contacts` (`0-1`).
    Contacts,
    /// `deals` (`0-3`).
    Deals,
    /// `feedback_submissions` (`0-19`), survey responses.
    FeedbackSubmissions,
}

impl CrmObject {
    /// The object type's name in paths (`/crm/v3/objects/{name}/search`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Contacts => "contacts",
            Self::Deals => "deals",
            Self::FeedbackSubmissions => "feedback_submissions",
        }
    }

    /// The object type named `name` or `id` (`contacts` or `0-1`).
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "contacts" | "contact" | "0-1" => Some(Self::Contacts),
            "deals" | "deal" | "0-3" => Some(Self::Deals),
            "feedback_submissions" | "feedback_submission" | "0-19" => Some(Self::FeedbackSubmissions),
            _ => None,
        }
    }

    /// The property search sorts on for incremental sync (§2's last-modified table).
    #[must_use]
    pub fn modified_property(self) -> &'static str {
        match self {
            Self::Contacts => "lastmodifieddate",
            Self::Deals | Self::FeedbackSubmissions => "hs_lastmodifieddate",
        }
    }

    /// The creation-date property.
    #[must_use]
    pub fn created_property(self) -> &'static str {
        match self {
            Self::Contacts | Self::Deals => "createdate",
            Self::FeedbackSubmissions => "hs_createdate",
        }
    }

    /// The properties every search result carries even when not asked for (§2).
    #[must_use]
    pub fn default_properties(self) -> &'static [&'static str] {
        match self {
            Self::Contacts => {
                &["createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"]
            }
            Self::Deals => &[
                "amount",
                "closedate",
                "createdate",
                "dealname",
                "dealstage",
                "hs_lastmodifieddate",
                "hs_object_id",
                "pipeline",
            ],
            Self::FeedbackSubmissions => &["hs_createdate", "hs_lastmodifieddate", "hs_object_id"],
        }
    }

    /// How a property's values compare in filters and sorts.
    #[must_use]
    pub fn property_type(self, property: &str) -> Option<PropertyType> {
        let datetime = [
            "createdate",
            "lastmodifieddate",
            "hs_lastmodifieddate",
            "closedate",
            "hs_createdate",
            "hs_submission_timestamp",
        ];
        if datetime.contains(&property) {
            return Some(PropertyType::Datetime);
        }
        let number = ["hs_object_id", "amount", "hs_value"];
        if number.contains(&property) {
            return Some(PropertyType::Number);
        }
        let known: &[&str] = match self {
            Self::Contacts => &[
                "email",
                "firstname",
                "lastname",
                "lifecyclestage",
                "hs_analytics_source",
                "hs_analytics_source_data_1",
            ],
            Self::Deals => &["dealname", "dealstage", "pipeline", "deal_currency_code", "hs_is_closed_won"],
            Self::FeedbackSubmissions => &[
                "hs_survey_id",
                "hs_survey_name",
                "hs_survey_type",
                "hs_response_group",
                "hs_sentiment",
                "hs_survey_channel",
                "hs_content",
            ],
        };
        if known.contains(&property) {
            return Some(PropertyType::Text);
        }
        let stage_date = property
            .strip_prefix("hs_lifecyclestage_")
            .and_then(|rest| rest.strip_suffix("_date"))
            .is_some_and(|stage| LIFECYCLE_STAGES.contains(&stage) || stage == "other");
        (self == Self::Contacts && stage_date).then_some(PropertyType::Datetime)
    }
}

/// How values of a property compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropertyType {
    /// ISO-8601 datetimes (filters may give epoch milliseconds).
    Datetime,
    /// Numbers written as strings.
    Number,
    /// Text and enumerations, compared as text.
    Text,
}

/// One CRM record: every property value a string (or null), as the API sends them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrmRecord {
    /// `hs_object_id`.
    pub id: u64,
    /// When it was created (epoch milliseconds): `createdAt`.
    pub created_ms: i64,
    /// When it last changed (epoch milliseconds): `updatedAt` and the last-modified property.
    pub modified_ms: i64,
    /// The property values.
    pub properties: BTreeMap<String, Option<String>>,
}

impl CrmRecord {
    /// A property's value, if set.
    #[must_use]
    pub fn get(&self, property: &str) -> Option<&str> {
        self.properties.get(property).and_then(|v| v.as_deref())
    }
}

/// One submission of a form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormSubmission {
    /// `conversionId`.
    pub conversion_id: String,
    /// `submittedAt` (epoch milliseconds).
    pub submitted_ms: i64,
    /// `pageUrl`.
    pub page_url: String,
    /// The submitted e-mail address.
    pub email: String,
}

/// One marketing email's statistics on one portal day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailDay {
    /// The email.
    pub email_id: u64,
    /// The portal day.
    pub day: NaiveDate,
    /// `counters`: `sent`, `delivered`, `open`, `click`, `bounce`, `unsubscribed`, `spamreport`.
    pub counters: BTreeMap<&'static str, u64>,
}

/// Everything the portal holds for one seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dataset {
    /// Contacts, by creation time.
    pub contacts: Vec<CrmRecord>,
    /// Deals, by creation time.
    pub deals: Vec<CrmRecord>,
    /// Survey responses, by creation time.
    pub feedback: Vec<CrmRecord>,
    /// Each form's submissions (same order as [`HubSpotApi::forms`]), newest first.
    pub submissions: Vec<Vec<FormSubmission>>,
    /// Marketing email statistics per email and day.
    pub email_days: Vec<EmailDay>,
}

impl Dataset {
    /// The records of one CRM object type.
    #[must_use]
    pub fn records(&self, object: CrmObject) -> &[CrmRecord] {
        match object {
            CrmObject::Contacts => &self.contacts,
            CrmObject::Deals => &self.deals,
            CrmObject::FeedbackSubmissions => &self.feedback,
        }
    }

    /// The portal's data for `seed`.
    #[must_use]
    pub fn generate(api: &HubSpotApi, seed: u64) -> Self {
        Self {
            contacts: contacts(api, seed),
            deals: deals(api, seed),
            feedback: feedback(api, seed),
            submissions: api.forms.iter().map(|form| submissions(api, seed, form)).collect(),
            email_days: email_days(api, seed),
        }
    }
}

/// `2026-10-01T09:12:44.201Z`.
#[must_use]
pub fn iso(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// Epoch milliseconds of an ISO-8601 datetime, a date, or epoch milliseconds written as digits.
#[must_use]
pub fn parse_ms(text: &str) -> Option<i64> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().ok();
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.timestamp_millis());
    }
    let day = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    Some(day.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis())
}

/// Epoch milliseconds of midnight starting `day` in a zone `offset_minutes` east of UTC.
#[must_use]
pub fn day_start_ms(day: NaiveDate, offset_minutes: i32) -> i64 {
    let midnight = day.and_hms_opt(0, 0, 0).map_or(0, |t| t.and_utc().timestamp_millis());
    midnight - i64::from(offset_minutes) * 60_000
}

/// The day, in a zone `offset_minutes` east of UTC, of an instant.
#[must_use]
pub fn local_day(ms: i64, offset_minutes: i32) -> NaiveDate {
    let shifted = ms + i64::from(offset_minutes) * 60_000;
    DateTime::from_timestamp_millis(shifted).map(|t| t.date_naive()).unwrap_or_default()
}

fn days(first: NaiveDate, last: NaiveDate) -> impl Iterator<Item = NaiveDate> {
    first.iter_days().take_while(move |d| *d <= last)
}

/// The portal's midnight starting `day` and the day's length in milliseconds (23 or 25 hours on
/// the days clocks change).
fn portal_day(api: &HubSpotApi, day: NaiveDate) -> (i64, u64) {
    let start = api.portal.day_start_ms(day);
    let end = day.checked_add_days(Days::new(1)).map_or(start + DAY_MS, |next| api.portal.day_start_ms(next));
    (start, u64::try_from(end - start).unwrap_or(DAY_MS as u64))
}

fn day_rng(seed: u64, label: &str, day: NaiveDate) -> SimRng {
    SimRng::derive(seed, label, u64::try_from(day.num_days_from_ce()).unwrap_or(0))
}

fn text(value: impl Into<String>) -> Option<String> {
    Some(value.into())
}

/// Rounds `ms` up to a multiple of `granularity` (many records then share a timestamp).
fn quantize(ms: i64, granularity: i64) -> i64 {
    if granularity <= 1 { ms } else { ms + (granularity - ms.rem_euclid(granularity)) % granularity }
}

fn contacts(api: &HubSpotApi, seed: u64) -> Vec<CrmRecord> {
    let mut out = Vec::new();
    let mut next_id = 1001;
    for day in days(api.first_day, api.last_day) {
        let mut rng = day_rng(seed, "hubspot-contacts", day);
        let (low, high) = api.contacts_per_day;
        let (start, length) = portal_day(api, day);
        for _ in 0..rng.range(low, high + 1) {
            let id = next_id;
            next_id += 1;
            let created = start + rng.range(0, length) as i64;
            let modified = match api.bulk_modified_at {
                Some(at) => at,
                None => {
                    quantize(created + rng.range(0, 20 * DAY_MS as u64) as i64, api.modified_granularity_ms)
                }
            };
            let mut properties = BTreeMap::new();
            properties.insert("createdate".to_owned(), text(iso(created)));
            properties.insert("lastmodifieddate".to_owned(), text(iso(modified)));
            properties.insert("hs_object_id".to_owned(), text(id.to_string()));
            properties.insert("email".to_owned(), text(format!("contact{id}@example.com")));
            properties.insert("firstname".to_owned(), text(format!("First{id}")));
            properties.insert("lastname".to_owned(), text(format!("Last{id}")));
            let source = ANALYTICS_SOURCES[rng.range(0, ANALYTICS_SOURCES.len() as u64) as usize];
            properties.insert("hs_analytics_source".to_owned(), text(source));
            // Stages reached, in order: most contacts start as subscribers, some as leads; a few
            // sit in "other", outside the funnel.
            let roll = rng.range(0, 100);
            let (current, first) = match roll {
                0..25 => (Some(0), 0),
                25..55 => (Some(1), rng.range(0, 2) as usize),
                55..70 => (Some(2), 1),
                70..80 => (Some(3), 1),
                80..88 => (Some(4), 0),
                88..95 => (Some(5), 1),
                _ => (None, 0),
            };
            match current {
                Some(stage) => {
                    properties.insert("lifecyclestage".to_owned(), text(LIFECYCLE_STAGES[stage]));
                    for (step, name) in LIFECYCLE_STAGES.iter().enumerate().take(stage + 1).skip(first) {
                        let at = created + (step - first) as i64 * 3_600_000;
                        properties.insert(format!("hs_lifecyclestage_{name}_date"), text(iso(at)));
                    }
                }
                None => {
                    properties.insert("lifecyclestage".to_owned(), text("other"));
                    properties.insert("hs_lifecyclestage_other_date".to_owned(), text(iso(created)));
                }
            }
            out.push(CrmRecord { id, created_ms: created, modified_ms: modified, properties });
        }
    }
    out
}

fn deals(api: &HubSpotApi, seed: u64) -> Vec<CrmRecord> {
    let mut out = Vec::new();
    let mut next_id = 5001;
    if api.pipelines.is_empty() {
        return out;
    }
    for day in days(api.first_day, api.last_day) {
        let mut rng = day_rng(seed, "hubspot-deals", day);
        let (low, high) = api.deals_per_day;
        let (start, length) = portal_day(api, day);
        let poisoned_day = api.poisoned_deal_days.contains(&day);
        for n in 0..rng.range(low, high + 1) {
            let id = next_id;
            next_id += 1;
            let pipeline = &api.pipelines[rng.range(0, api.pipelines.len() as u64) as usize];
            let created = start + rng.range(0, length) as i64;
            let cents = rng.range(50_000, 5_000_000);
            let amount = if cents.is_multiple_of(100) {
                (cents / 100).to_string()
            } else {
                format!("{}.{:02}", cents / 100, cents % 100)
            };
            let currency = match api.portal.additional_currencies.first() {
                Some(other) if rng.range(0, 100) < 15 => other.clone(),
                _ => api.portal.currency.clone(),
            };
            let roll = rng.range(0, 100);
            let outcome = match roll {
                0..35 => StageOutcome::Won,
                35..60 => StageOutcome::Lost,
                _ => StageOutcome::Open,
            };
            let stages: Vec<_> = pipeline.stages.iter().filter(|s| s.outcome == outcome).collect();
            let Some(stage) = stages.get(rng.range(0, stages.len().max(1) as u64) as usize) else {
                continue;
            };
            // Open deals often carry an expected close date; only closed ones have really closed.
            let close = created + rng.range(0, 45 * DAY_MS as u64) as i64;
            let closedate = match outcome {
                StageOutcome::Open if rng.range(0, 2) == 0 => None,
                _ => Some(close),
            };
            let modified = closedate.unwrap_or(created).max(created) + rng.range(0, 3 * DAY_MS as u64) as i64;
            let mut properties = BTreeMap::new();
            properties.insert("dealname".to_owned(), text(format!("Deal {id}")));
            let amount = if poisoned_day && n == 0 { POISONED_AMOUNT.to_owned() } else { amount };
            properties.insert("amount".to_owned(), text(amount));
            properties.insert("deal_currency_code".to_owned(), text(currency));
            properties.insert("pipeline".to_owned(), text(pipeline.id.clone()));
            properties.insert("dealstage".to_owned(), text(stage.id.clone()));
            properties.insert("createdate".to_owned(), text(iso(created)));
            properties.insert("closedate".to_owned(), closedate.map(iso));
            properties.insert("hs_lastmodifieddate".to_owned(), text(iso(modified)));
            properties.insert("hs_object_id".to_owned(), text(id.to_string()));
            let won = outcome == StageOutcome::Won;
            properties.insert("hs_is_closed_won".to_owned(), text(won.to_string()));
            out.push(CrmRecord { id, created_ms: created, modified_ms: modified, properties });
        }
    }
    out
}

fn feedback(api: &HubSpotApi, seed: u64) -> Vec<CrmRecord> {
    let mut out = Vec::new();
    let mut next_id = 9001;
    for day in days(api.first_day, api.last_day) {
        let (start, length) = portal_day(api, day);
        for survey in &api.surveys {
            let mut rng = day_rng(seed, &format!("hubspot-feedback-{}", survey.id), day);
            let (low, high) = api.responses_per_day;
            for _ in 0..rng.range(low, high + 1) {
                let id = next_id;
                next_id += 1;
                let created = start + rng.range(0, length) as i64;
                let modified = created + rng.range(0, 600_000) as i64;
                let roll = rng.range(0, 100);
                let (value, group) = match survey.kind {
                    SurveyKind::Nps => {
                        let score = match roll {
                            0..20 => rng.range(0, 7),
                            20..45 => rng.range(7, 9),
                            _ => rng.range(9, 11),
                        };
                        let group = match score {
                            9.. => "PROMOTER",
                            7 | 8 => "PASSIVE",
                            _ => "DETRACTOR",
                        };
                        (score, Some(group))
                    }
                    SurveyKind::Csat => match roll {
                        0..15 => (0, Some("DETRACTOR")),
                        15..35 => (1, Some("PASSIVE")),
                        _ => (2, Some("PROMOTER")),
                    },
                    SurveyKind::Ces => (rng.range(1, 8), None),
                };
                let sentiment = match group {
                    Some("PROMOTER") => "POSITIVE",
                    Some("DETRACTOR") => "NEGATIVE",
                    _ => "NEUTRAL",
                };
                let mut properties = BTreeMap::new();
                properties.insert("hs_survey_id".to_owned(), text(survey.id.to_string()));
                properties.insert("hs_survey_name".to_owned(), text(survey.name.clone()));
                properties.insert("hs_survey_type".to_owned(), text(survey.kind.as_str()));
                properties.insert("hs_survey_channel".to_owned(), text("EMAIL"));
                properties.insert("hs_value".to_owned(), text(value.to_string()));
                properties.insert("hs_response_group".to_owned(), group.map(str::to_owned));
                properties.insert("hs_sentiment".to_owned(), text(sentiment));
                properties.insert("hs_content".to_owned(), None);
                properties.insert("hs_createdate".to_owned(), text(iso(created)));
                properties.insert("hs_submission_timestamp".to_owned(), text(iso(created)));
                properties.insert("hs_lastmodifieddate".to_owned(), text(iso(modified)));
                properties.insert("hs_object_id".to_owned(), text(id.to_string()));
                out.push(CrmRecord { id, created_ms: created, modified_ms: modified, properties });
            }
        }
    }
    out
}

fn submissions(api: &HubSpotApi, seed: u64, form: &super::Form) -> Vec<FormSubmission> {
    let mut out = Vec::new();
    for day in days(api.first_day.max(form.created), api.last_day) {
        let mut rng = day_rng(seed, &format!("hubspot-form-{}", form.guid), day);
        let (start, length) = portal_day(api, day);
        let (low, high) = form.per_day;
        for _ in 0..rng.range(low, high + 1) {
            let submitted = start + rng.range(0, length) as i64;
            let id = rng.hex(16);
            out.push(FormSubmission {
                conversion_id: format!(
                    "{}-{}-{}-{}-{}",
                    &id[..8],
                    &id[8..12],
                    &id[12..16],
                    &id[16..20],
                    &id[20..32]
                ),
                submitted_ms: submitted,
                page_url: format!("https://www.example.com/{}", form.slug()),
                email: format!("visitor{}@example.org", rng.range(1, 1_000_000)),
            });
        }
    }
    // The API lists submissions newest first.
    out.sort_by(|a, b| {
        b.submitted_ms.cmp(&a.submitted_ms).then_with(|| b.conversion_id.cmp(&a.conversion_id))
    });
    out
}

fn email_days(api: &HubSpotApi, seed: u64) -> Vec<EmailDay> {
    let mut out = Vec::new();
    for email in &api.emails {
        let mut rng = SimRng::derive(seed, "hubspot-email", hash_label(&email.id.to_string()));
        let bounces = email.recipients * rng.range(5, 30) / 1000;
        let delivered = email.recipients - bounces;
        let mut opened_left = delivered * rng.range(18, 45) / 100;
        for n in 0..email.active_days {
            let Some(day) = email.published.checked_add_days(Days::new(n)) else { break };
            if day < api.first_day || day > api.last_day {
                continue;
            }
            // Most opens come on the first days, then they tail off.
            let opens = if n + 1 == email.active_days { opened_left } else { opened_left / 2 };
            opened_left -= opens;
            let clicks = opens * rng.range(5, 30) / 100;
            let mut counters = BTreeMap::new();
            let first = n == 0;
            counters.insert("sent", if first { email.recipients } else { 0 });
            counters.insert("delivered", if first { delivered } else { 0 });
            counters.insert("bounce", if first { bounces } else { 0 });
            counters.insert("hardbounced", if first { bounces / 3 } else { 0 });
            counters.insert("softbounced", if first { bounces - bounces / 3 } else { 0 });
            counters.insert("open", opens);
            counters.insert("click", clicks);
            counters.insert("unsubscribed", opens * rng.range(0, 3) / 100);
            counters.insert("spamreport", u64::from(rng.range(0, 50) == 0));
            out.push(EmailDay { email_id: email.id, day, counters });
        }
    }
    out
}
