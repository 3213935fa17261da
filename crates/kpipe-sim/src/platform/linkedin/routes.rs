//! Ad accounts, campaigns, creatives and ad analytics (`shared/apis/linkedin.md` §2–§4).

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use chrono::NaiveDate;
use serde_json::{Map, Value, json};

use super::data::{self, AdAccount, Pivot};
use super::restli::{self, RestliValue};
use super::{LinkedInState, Refusal, bad_request, not_found};
use crate::config::CannedResponse;
use crate::platform::test_routes::{decode_position, encode_position};

/// Query parameters: decoded keys, values still encoded.
pub(super) struct Query(Vec<(String, String)>);

impl Query {
    pub(super) fn new(raw: Option<&str>) -> Query {
        Query(raw.map(restli::raw_pairs).unwrap_or_default())
    }

    fn raw(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// A plain (non-Rest.li) parameter, decoded.
    pub(super) fn plain(&self, name: &str) -> Result<Option<String>, Refusal> {
        self.raw(name).map(restli::decode).transpose().map_err(|e| bad_request(&e))
    }

    /// A Rest.li parameter, parsed.
    pub(super) fn restli(&self, name: &str) -> Result<Option<RestliValue>, Refusal> {
        match self.raw(name) {
            None => Ok(None),
            Some(raw) => restli::parse(raw).map(Some).map_err(|e| bad_request(&format!("`{name}`: {e}"))),
        }
    }

    /// `q=` must be `finder`.
    pub(super) fn finder(&self, finder: &str) -> Result<(), Refusal> {
        match self.plain("q")? {
            Some(q) if q == finder => Ok(()),
            Some(q) => Err(bad_request(&format!("kpipe-sim serves `q={finder}` here, not `q={q}`"))),
            None => Err(bad_request(&format!("`q={finder}` is required"))),
        }
    }

    /// A whole number within `1..=max`, or `default`.
    pub(super) fn size(&self, name: &str, default: u64, max: u64) -> Result<u64, Refusal> {
        match self.plain(name)? {
            None => Ok(default),
            Some(v) => match v.parse::<u64>() {
                Ok(n) if (1..=max).contains(&n) => Ok(n),
                _ => {
                    Err(bad_request(&format!("`{name}` must be a whole number within 1..={max}, not `{v}`")))
                }
            },
        }
    }
}

pub(super) fn ok(body: Value) -> Response {
    CannedResponse::json(200, body).to_response()
}

fn account_of(state: &LinkedInState, id: &str) -> Result<AdAccount, Refusal> {
    id.parse::<u64>()
        .ok()
        .and_then(|id| state.api.account(id))
        .cloned()
        .ok_or_else(|| not_found(&format!("Ad account {id} does not exist or is not accessible")))
}

/// An epoch-milliseconds timestamp standing for when the simulated entities were created.
const CREATED_MS: i64 = 1_735_689_600_000;

pub(super) async fn account(State(state): State<Arc<LinkedInState>>, Path(id): Path<String>) -> Response {
    let account = match account_of(&state, &id) {
        Ok(a) => a,
        Err(refusal) => return refusal.response(),
    };
    let organization = state.api.organizations.first().map_or(10_000_001, |o| o.id);
    ok(json!({
        "id": account.id,
        "name": account.name,
        "currency": account.currency,
        "status": account.status,
        "type": "BUSINESS",
        "reference": format!("urn:li:organization:{organization}"),
        "servingStatuses": ["RUNNABLE"],
        "test": false,
        "notifiedOnCampaignOptimization": false,
        "notifiedOnCreativeApproval": false,
        "notifiedOnCreativeRejection": false,
        "notifiedOnEndOfCampaign": false,
        "notifiedOnNewFeaturesEnabled": false,
        "version": {"versionTag": "3"},
        "changeAuditStamps": {"created": {"time": CREATED_MS}, "lastModified": {"time": CREATED_MS}}
    }))
}

/// One cursor page of `items`: the slice and the next page's token (absent on the last page).
fn cursor_page<T: Clone>(
    query: &Query,
    items: &[T],
    state: &LinkedInState,
) -> Result<(Vec<T>, Option<String>), Refusal> {
    let size = query.size("pageSize", state.api.default_page_size, state.api.max_page_size)?;
    let offset = match query.plain("pageToken")? {
        None => 0,
        Some(token) => {
            decode_position(&token).ok_or_else(|| bad_request("`pageToken` is not a token this API gave"))?
        }
    };
    let start = usize::try_from(offset).unwrap_or(usize::MAX).min(items.len());
    let end = start.saturating_add(usize::try_from(size).unwrap_or(usize::MAX)).min(items.len());
    let next = (end < items.len()).then(|| encode_position(end as u64));
    Ok((items[start..end].to_vec(), next))
}

fn metadata(next: Option<String>) -> Value {
    match next {
        Some(token) => json!({"nextPageToken": token}),
        None => json!({}),
    }
}

const ALL_CAMPAIGN_STATUSES: [&str; 8] =
    ["ACTIVE", "PAUSED", "ARCHIVED", "COMPLETED", "CANCELED", "DRAFT", "PENDING_DELETION", "REMOVED"];

/// `search=(status:(values:List(ACTIVE,PAUSED)))`: the statuses asked for; without a search,
/// LinkedIn lists every campaign that is not removed.
fn statuses(search: Option<&RestliValue>) -> Result<Vec<String>, Refusal> {
    let Some(search) = search else {
        return Ok(ALL_CAMPAIGN_STATUSES
            .iter()
            .filter(|s| **s != "REMOVED")
            .map(|s| (*s).to_owned())
            .collect());
    };
    let values = search
        .get("status")
        .and_then(|s| s.get("values"))
        .and_then(RestliValue::as_list)
        .ok_or_else(|| bad_request("`search` must look like (status:(values:List(ACTIVE,...)))"))?;
    values
        .iter()
        .map(|v| match v.as_literal() {
            Some(s) if ALL_CAMPAIGN_STATUSES.contains(&s) => Ok(s.to_owned()),
            _ => Err(bad_request(&format!("`{v:?}` is not a campaign status"))),
        })
        .collect()
}

pub(super) async fn campaigns(
    State(state): State<Arc<LinkedInState>>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let query = Query::new(raw.as_deref());
    campaigns_body(&state, &id, &query).map_or_else(|refusal| refusal.response(), ok)
}

fn campaigns_body(state: &LinkedInState, id: &str, query: &Query) -> Result<Value, Refusal> {
    query.finder("search")?;
    let account = account_of(state, id)?;
    let wanted = statuses(query.restli("search")?.as_ref())?;
    let listed: Vec<_> =
        data::campaigns(&account).into_iter().filter(|c| wanted.iter().any(|s| s == c.status)).collect();
    let (page, next) = cursor_page(query, &listed, state)?;
    let elements: Vec<Value> = page
        .iter()
        .map(|c| {
            json!({
                "id": c.id,
                "account": format!("urn:li:sponsoredAccount:{}", c.account_id),
                "campaignGroup": format!("urn:li:sponsoredCampaignGroup:{}", c.group_id),
                "name": c.name,
                "status": c.status,
                "type": "SPONSORED_UPDATES",
                "costType": "CPM",
                "objectiveType": "WEBSITE_VISIT",
                "dailyBudget": {"amount": "50.00", "currencyCode": account.currency},
                "unitCost": {"amount": "8.5", "currencyCode": account.currency},
                "runSchedule": {"start": CREATED_MS},
                "locale": {"country": "US", "language": "en"},
                "servingStatuses": ["RUNNABLE"],
                "offsiteDeliveryEnabled": false,
                "audienceExpansionEnabled": false,
                "creativeSelection": "OPTIMIZED",
                "format": "STANDARD_UPDATE",
                "optimizationTargetType": "NONE",
                "pacingStrategy": "LIFETIME",
                "test": false,
                "version": {"versionTag": "2"},
                "changeAuditStamps": {"created": {"time": CREATED_MS}, "lastModified": {"time": CREATED_MS}}
            })
        })
        .collect();
    // The cursor-pagination sample shows `metadata` and `elements` only (§4).
    Ok(json!({"elements": elements, "metadata": metadata(next)}))
}

pub(super) async fn creatives(
    State(state): State<Arc<LinkedInState>>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let query = Query::new(raw.as_deref());
    creatives_body(&state, &id, &query).map_or_else(|refusal| refusal.response(), ok)
}

fn creatives_body(state: &LinkedInState, id: &str, query: &Query) -> Result<Value, Refusal> {
    query.finder("criteria")?;
    let account = account_of(state, id)?;
    let listed = data::creatives(&account);
    let (page, next) = cursor_page(query, &listed, state)?;
    let elements: Vec<Value> = page
        .iter()
        .map(|c| {
            json!({
                "id": format!("urn:li:sponsoredCreative:{}", c.id),
                "account": format!("urn:li:sponsoredAccount:{}", c.account_id),
                "campaign": format!("urn:li:sponsoredCampaign:{}", c.campaign_id),
                "name": c.name,
                "intendedStatus": c.status,
                "isServing": c.status == "ACTIVE",
                "isTest": false,
                "servingHoldReasons": [],
                "content": {"reference": format!("urn:li:share:{}", c.id)},
                "createdAt": CREATED_MS,
                "createdBy": "urn:li:person:kpipeSim",
                "lastModifiedAt": CREATED_MS,
                "lastModifiedBy": "urn:li:person:kpipeSim"
            })
        })
        .collect();
    // Whether cursor pages also carry `paging` is unconfirmed (§4): this listing sends it.
    Ok(json!({
        "paging": {"start": 0, "count": elements.len(), "links": []},
        "elements": elements,
        "metadata": metadata(next)
    }))
}

/// `(year:2026,month:1,day:5)`.
fn date_of(value: Option<&RestliValue>, what: &str) -> Result<NaiveDate, Refusal> {
    let part = |name: &str| {
        value
            .and_then(|v| v.get(name))
            .and_then(RestliValue::as_literal)
            .and_then(|t| t.parse::<u32>().ok())
            .ok_or_else(|| bad_request(&format!("`dateRange.{what}.{name}` is missing or not a number")))
    };
    let (year, month, day) = (part("year")?, part("month")?, part("day")?);
    i32::try_from(year)
        .ok()
        .and_then(|y| NaiveDate::from_ymd_opt(y, month, day))
        .ok_or_else(|| bad_request(&format!("`dateRange.{what}` is not a date")))
}

/// The ids in `facet=List(urn%3Ali%3A<kind>%3A<id>,...)`.
fn facet_ids(query: &Query, facet: &str, kind: &str) -> Result<Option<Vec<u64>>, Refusal> {
    let Some(value) = query.restli(facet)? else { return Ok(None) };
    let items = value.as_list().ok_or_else(|| bad_request(&format!("`{facet}` must be a List(...)")))?;
    let prefix = format!("urn:li:{kind}:");
    items
        .iter()
        .map(|item| {
            item.as_literal()
                .and_then(|urn| urn.strip_prefix(&prefix))
                .and_then(|id| id.parse::<u64>().ok())
                .ok_or_else(|| bad_request(&format!("`{facet}` holds `{item:?}`, not a {prefix}<id> URN")))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn is_field_name(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_alphanumeric())
}

/// `GET /rest/adAnalytics?q=analytics`: one element per entity and day (`DAILY`) or per entity
/// over the date range (`ALL`), never paginated, cut silently at `max_elements` (§3.1).
pub(super) async fn analytics(State(state): State<Arc<LinkedInState>>, RawQuery(raw): RawQuery) -> Response {
    let query = Query::new(raw.as_deref());
    analytics_body(&state, &query).map_or_else(|refusal| refusal.response(), ok)
}

/// The longest `dateRange`, in days, for which LinkedIn serves reach.
const MAX_REACH_DAYS: i64 = 92;

fn is_reach_field(field: &str) -> bool {
    matches!(field, "approximateMemberReach" | "approximateUniqueImpressions")
}

fn analytics_body(state: &LinkedInState, query: &Query) -> Result<Value, Refusal> {
    query.finder("analytics")?;
    let pivot_name =
        query.plain("pivot")?.ok_or_else(|| bad_request("`pivot` is required with q=analytics"))?;
    let pivot = Pivot::parse(&pivot_name).ok_or_else(|| {
        bad_request(&format!(
            "kpipe-sim serves pivots ACCOUNT, CAMPAIGN_GROUP, CAMPAIGN and CREATIVE, not {pivot_name}"
        ))
    })?;
    let granularity = query.restli("timeGranularity")?;
    let granularity = granularity
        .as_ref()
        .and_then(|g| g.as_literal().or_else(|| g.get("value").and_then(RestliValue::as_literal)));
    let whole_range = match granularity {
        Some("DAILY") => false,
        Some("ALL") => true,
        _ => return Err(bad_request("kpipe-sim serves timeGranularity=DAILY and ALL only")),
    };
    let range = query.restli("dateRange")?.ok_or_else(|| bad_request("`dateRange` is required"))?;
    let since = date_of(range.get("start"), "start")?;
    let until = match range.get("end") {
        Some(end) => date_of(Some(end), "end")?,
        None => state.api.today(),
    };
    if until < since {
        return Err(bad_request("`dateRange` ends before it starts"));
    }
    let fields: Vec<String> = match query.plain("fields")? {
        None => ["dateRange", "pivotValues", "impressions", "clicks"].map(str::to_owned).to_vec(),
        Some(list) => list.split(',').map(str::to_owned).collect(),
    };
    if let Some(bad) = fields.iter().find(|f| !is_field_name(f)) {
        return Err(bad_request(&format!("`{bad}` is not a field name")));
    }
    if fields.len() > state.api.max_fields {
        return Err(bad_request(&format!(
            "{} fields requested; at most {} are allowed per request",
            fields.len(),
            state.api.max_fields
        )));
    }
    let accounts = facet_ids(query, "accounts", "sponsoredAccount")?;
    let campaigns = facet_ids(query, "campaigns", "sponsoredCampaign")?;
    let creatives = facet_ids(query, "creatives", "sponsoredCreative")?;
    if matches!(pivot, Pivot::Account | Pivot::CampaignGroup)
        && (accounts.is_none() || campaigns.is_some() || creatives.is_some())
    {
        return Err(bad_request(&format!(
            "kpipe-sim serves pivot {} with the accounts facet only",
            pivot.as_str()
        )));
    }
    // Without an accounts facet, the accounts are those of the campaigns or creatives named
    // (ids are derived: campaign = account * 1000 + n, creative = campaign * 100 + k).
    let account_ids: Vec<u64> = match (&accounts, &campaigns, &creatives) {
        (Some(a), _, _) => a.clone(),
        (None, Some(c), _) => c.iter().map(|c| c / 1000).collect(),
        (None, None, Some(c)) => c.iter().map(|c| c / 100_000).collect(),
        (None, None, None) => {
            return Err(bad_request("a facet (accounts, campaigns or creatives) is required"));
        }
    };
    // Reach is served only for date ranges of at most 92 days; longer ones leave it out.
    let reach_served = (until - since).num_days() < MAX_REACH_DAYS;
    let metrics: Vec<&str> = fields
        .iter()
        .map(String::as_str)
        .filter(|f| !matches!(*f, "dateRange" | "pivotValues"))
        .filter(|f| reach_served || !is_reach_field(f))
        .collect();
    let wants = |f: &str| fields.iter().any(|x| x == f);
    let mut elements = Vec::new();
    let mut seen = Vec::new();
    for account in account_ids {
        // An account named twice is reported once; one without access reports nothing (§3.1).
        if seen.contains(&account) {
            continue;
        }
        seen.push(account);
        let answer = if whole_range {
            state.api.ad_analytics_total(state.seed, account, pivot, since, until, &metrics)
        } else {
            state.api.ad_analytics(state.seed, account, pivot, since, until, &metrics)
        };
        for element in answer {
            let id = element.entity_urn.rsplit(':').next().and_then(|i| i.parse::<u64>().ok()).unwrap_or(0);
            let campaign = if pivot == Pivot::Creative { id / 100 } else { id };
            if (pivot == Pivot::Campaign || pivot == Pivot::Creative)
                && campaigns.as_ref().is_some_and(|c| !c.contains(&campaign))
                || (pivot == Pivot::Creative && creatives.as_ref().is_some_and(|c| !c.contains(&id)))
            {
                continue;
            }
            let mut object = Map::new();
            if wants("pivotValues") {
                object.insert("pivotValues".into(), json!([element.entity_urn]));
            }
            if wants("dateRange") {
                let (start, end) = (data::date_object(element.date), data::date_object(element.last));
                object.insert("dateRange".into(), json!({"start": start, "end": end}));
            }
            object.extend(element.values);
            elements.push(Value::Object(object));
        }
    }
    if elements.len() > state.api.max_elements {
        tracing::debug!(elements = elements.len(), "kpipe-sim: truncating an adAnalytics response");
        elements.truncate(state.api.max_elements);
    }
    Ok(json!({"paging": {"start": 0, "count": 10, "links": []}, "elements": elements}))
}
