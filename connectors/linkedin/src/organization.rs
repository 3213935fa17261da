//! Company page statistics (`shared/apis/linkedin.md` §3.4, §3.5): follower gains and share
//! statistics by day, and the follower total from `networkSizes`. Time-bound statistics cover
//! a rolling 12 months, so days before that get no organization rows.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Days, Months, NaiveDate};
use futures::StreamExt;
use kpipe_core::{DateWindow, Emitter, Label, PeriodRequest, PeriodRow, Quarantined, SourceError};
use kpipe_http::{ApiRequest, PageKind, Pagination};
use serde_json::Value;

use crate::client::Api;
use crate::normalize::Entity;
use crate::normalize::organization::{
    bucket_day, follower_gain, follower_gain_row, followers_by_day, followers_row, share_rows,
};
use crate::restli;

/// The quarantine stream of follower statistics.
pub const FOLLOWERS_STREAM: &str = "organization_followers";

/// The quarantine stream of share statistics.
pub const SHARES_STREAM: &str = "organization_shares";

const FOLLOWER_PATH: &str = "rest/organizationalEntityFollowerStatistics";
const SHARE_PATH: &str = "rest/organizationalEntityShareStatistics";

/// The first day time-bound statistics reach back to on `today`.
pub fn earliest_day(today: NaiveDate) -> NaiveDate {
    today.checked_sub_months(Months::new(12)).unwrap_or(today)
}

/// `GET /rest/organizations/{id}`: the page's `localizedName`.
pub async fn name(api: &Api, id: u64) -> Result<Option<Label>, SourceError> {
    let (body, _) = api
        .get_json(&ApiRequest::get(&format!("rest/organizations/{id}")))
        .await
        .map_err(|e| api.error(e))?;
    Ok(body.get("localizedName").and_then(Value::as_str).map(|n| Label::from(n.to_owned())))
}

/// `GET /rest/networkSizes/urn%3Ali%3Aorganization%3A{id}?edgeType=COMPANY_FOLLOWED_BY_MEMBER`:
/// followers now.
pub async fn network_size(api: &Api, id: u64) -> Result<i64, SourceError> {
    let urn = restli::encode(&format!("urn:li:organization:{id}"));
    let request = ApiRequest::get(&format!("rest/networkSizes/{urn}"))
        .raw_query("edgeType=COMPANY_FOLLOWED_BY_MEMBER")
        .stream(FOLLOWERS_STREAM);
    let (body, url) = api.get_json(&request).await.map_err(|e| api.error(e))?;
    body.get("firstDegreeSize")
        .and_then(Value::as_i64)
        .ok_or_else(|| SourceError::data(format!("{url}: no whole `firstDegreeSize` in {body}")))
}

/// Pulls the statistics of organization `id` for the days of `window` up to `today`, and
/// emits their rows.
pub async fn pull(
    api: &Api,
    id: u64,
    window: DateWindow,
    today: NaiveDate,
    out: &mut Emitter,
) -> Result<(), SourceError> {
    let earliest = earliest_day(today);
    let Ok(covered) = DateWindow::new(window.start().max(earliest), window.end().min(today)) else {
        tracing::debug!(organization = id, %window, "no organization statistics exist for these days");
        return Ok(());
    };
    if window.start() < earliest {
        tracing::warn!(organization = id, %window, %earliest,
            "organization statistics reach back 12 months: earlier days get no organization rows");
    }
    let label = Label::from(id.to_string());
    let entity = Entity {
        account_id: label.clone(),
        level: Label::from("organization"),
        entity_id: label,
        entity_name: name(api, id).await?,
    };
    out.set_stream(FOLLOWERS_STREAM);
    pull_followers(api, id, &entity, covered, today, out).await?;
    out.set_stream(SHARES_STREAM);
    let buckets = buckets(api, SHARE_PATH, id, covered.start(), covered.end(), SHARES_STREAM, out).await?;
    for (element, location) in &buckets.elements {
        match share_rows(element, &entity, covered) {
            Ok(rows) => out.emit_all(rows).await?,
            Err(reason) => {
                quarantine(out, SHARES_STREAM, location.clone(), reason, element.to_string()).await?
            }
        }
    }
    Ok(())
}

/// Gains of the covered days, and followers derived from the total: the gains are asked up to
/// today, since every later day's gains are subtracted from today's total.
async fn pull_followers(
    api: &Api,
    id: u64,
    entity: &Entity,
    covered: DateWindow,
    today: NaiveDate,
    out: &mut Emitter,
) -> Result<(), SourceError> {
    // The followers on the day before each period that starts before the window open that
    // period (follower growth divides by them): the gains are asked from the earliest such
    // period's first day, in the same requests.
    let openings: Vec<(PeriodRequest, NaiveDate)> = PeriodRequest::for_window(covered)
        .into_iter()
        .filter_map(|r| r.period.start.pred_opt().map(|day| (r, day)))
        .filter(|(_, day)| *day < covered.start() && *day >= earliest_day(today))
        .collect();
    let from =
        openings.iter().map(|(_, day)| *day).min().map_or(covered.start(), |d| d.succ_opt().unwrap_or(d));
    let buckets =
        buckets(api, FOLLOWER_PATH, id, from.min(covered.start()), today, FOLLOWERS_STREAM, out).await?;
    let mut gains = BTreeMap::new();
    let mut unreadable = BTreeSet::new();
    // An unreadable bucket of an unknown day lies before the next bucket read (buckets come in
    // day order): no day before that one can be derived.
    let mut unknown_day_pending = false;
    for (element, location) in &buckets.elements {
        match follower_gain(element) {
            Ok((day, net)) => {
                if std::mem::take(&mut unknown_day_pending) {
                    unreadable.insert(day);
                }
                gains.insert(day, net);
                if covered.contains(day) {
                    // Net of unfollows, so negative on some days: written as LinkedIn reports it.
                    out.emit(follower_gain_row(entity, day, net)).await?;
                }
            }
            Err(reason) => {
                match bucket_day(element) {
                    Ok(day) => {
                        unreadable.insert(day);
                    }
                    Err(_) => unknown_day_pending = true,
                }
                quarantine(out, FOLLOWERS_STREAM, location.clone(), reason, element.to_string()).await?;
            }
        }
    }
    if !buckets.complete || unknown_day_pending {
        let reason = "the follower gains could not all be read, so end-of-day followers cannot be derived";
        return quarantine(
            out,
            FOLLOWERS_STREAM,
            format!("organization {id} {covered}"),
            reason.into(),
            String::new(),
        )
        .await;
    }
    let total = network_size(api, id).await?;
    let derived = DateWindow::new(from.pred_opt().unwrap_or(from).min(covered.start()), covered.end())
        .unwrap_or(covered);
    let series = followers_by_day(total, &gains, &unreadable, derived);
    for (day, followers) in series.followers {
        if covered.contains(day) {
            out.emit(followers_row(entity, day, followers)).await?;
        }
        for (request, _) in openings.iter().filter(|(_, opening)| *opening == day) {
            out.emit_period(PeriodRow::new(*request, followers_row(entity, day, followers))).await?;
        }
    }
    if let Some(day) = series.underivable_before.filter(|d| *d > covered.start()) {
        let reason = format!(
            "the follower gains of {day} are unreadable, so the followers of earlier days cannot be derived"
        );
        quarantine(out, FOLLOWERS_STREAM, format!("organization {id} {covered}"), reason, String::new())
            .await?;
    }
    Ok(())
}

/// Every bucket of a statistics listing, with where it came from.
struct Buckets {
    elements: Vec<(Value, String)>,
    /// False when a page was unreadable and quarantined: buckets after it are missing.
    complete: bool,
}

fn midnight_ms(day: NaiveDate) -> i64 {
    day.and_hms_opt(0, 0, 0).map_or(0, |t| t.and_utc().timestamp_millis())
}

async fn buckets(
    api: &Api,
    path: &str,
    id: u64,
    first: NaiveDate,
    last: NaiveDate,
    stream: &str,
    out: &mut Emitter,
) -> Result<Buckets, SourceError> {
    let end = last.checked_add_days(Days::new(1)).unwrap_or(last);
    let request = ApiRequest::get(path)
        .raw_query(restli::statistics_query(id, midnight_ms(first), midnight_ms(end)))
        .stream(stream);
    let pagination = Pagination::new(
        PageKind::OffsetLimit {
            offset_param: "start".into(),
            limit_param: "count".into(),
            limit: u64::from(api.page_size()),
        },
        "/elements",
    );
    let mut buckets = Buckets { elements: Vec::new(), complete: true };
    let mut pages = api.pages(request, pagination).boxed();
    while let Some(page) = pages.next().await {
        let page = match page {
            Ok(page) => page,
            Err(e) => {
                api.quarantine_or_fail(e, stream, out).await?;
                buckets.complete = false;
                break;
            }
        };
        let elements = page.body.get("elements").and_then(Value::as_array).map_or(&[][..], |a| a);
        for (index, element) in elements.iter().enumerate() {
            let location = format!("{} page {} element {index}", page.response.url, page.index);
            buckets.elements.push((element.clone(), location));
        }
    }
    Ok(buckets)
}

async fn quarantine(
    out: &mut Emitter,
    stream: &str,
    location: String,
    reason: String,
    raw: String,
) -> Result<(), SourceError> {
    tracing::warn!(%location, %reason, "organization statistics quarantined");
    out.quarantine(Quarantined { stream: stream.into(), location, reason, raw }).await
}
