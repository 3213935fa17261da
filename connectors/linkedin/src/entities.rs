//! Ad accounts, campaigns and creatives: the currency spend is in, and the names that rows
//! carry (`shared/apis/linkedin.md` §3.2, §3.3, §4). Campaigns and creatives are listed with
//! cursor paging: `pageSize`, then `pageToken` from `metadata.nextPageToken` until it is absent.

use std::collections::HashMap;

use futures::StreamExt;
use kpipe_core::{Currency, Emitter, Label, Quarantined, SourceError};
use kpipe_http::{ApiRequest, PageKind, Pagination};
use serde_json::Value;

use crate::analytics::ANALYTICS_STREAM;
use crate::client::Api;
use crate::restli::{self, Pivot};

/// The quarantine stream of unreadable listing elements.
pub const ENTITIES_STREAM: &str = "ad_entities";

/// An ad account, with the names of everything it runs.
#[derive(Debug, Clone)]
pub struct AdAccount {
    /// The numeric id.
    pub id: u64,
    /// The id as the `account_id` column.
    pub label: Label,
    /// Its name.
    pub name: Option<String>,
    /// The currency of its spend.
    pub currency: Currency,
    /// `ACTIVE`, `CANCELED`, ...
    pub status: String,
    /// Campaign id to name.
    pub campaigns: HashMap<u64, Option<Label>>,
    /// Creative id to name.
    pub creatives: HashMap<u64, Option<Label>>,
}

impl AdAccount {
    /// The names of the entities of `pivot`.
    pub fn names(&self, pivot: Pivot) -> &HashMap<u64, Option<Label>> {
        match pivot {
            Pivot::Campaign => &self.campaigns,
            Pivot::Creative => &self.creatives,
        }
    }
}

/// A JSON number, a numeric string, or a URN ending in a number.
pub fn numeric_id(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.rsplit(':').next().and_then(|id| id.parse().ok()),
        _ => None,
    }
}

fn name_of(element: &Value) -> Option<Label> {
    element
        .get("name")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(|n| Label::from(n.to_owned()))
}

/// `GET /rest/adAccounts/{id}`: name, currency and status; the campaign and creative names are
/// filled in by [`list_names`].
pub async fn ad_account(api: &Api, id: u64) -> Result<AdAccount, SourceError> {
    // Accounts, campaigns and creatives are read for the ad analytics' currency and names.
    let request = ApiRequest::get(&format!("rest/adAccounts/{id}")).stream(ANALYTICS_STREAM);
    let (body, url) = api.get_json(&request).await.map_err(|e| api.error(e))?;
    let currency_text = body.get("currency").and_then(Value::as_str).unwrap_or_default();
    let currency = Currency::parse(currency_text).ok_or_else(|| {
        SourceError::data(format!(
            "{url}: ad account {id} has currency `{currency_text}`, not an ISO 4217 code"
        ))
    })?;
    Ok(AdAccount {
        id,
        label: Label::from(id.to_string()),
        name: body.get("name").and_then(Value::as_str).map(str::to_owned),
        currency,
        status: body.get("status").and_then(Value::as_str).unwrap_or("UNKNOWN").to_owned(),
        campaigns: HashMap::new(),
        creatives: HashMap::new(),
    })
}

/// Lists the account's campaigns (every status: finished campaigns still have past days) and
/// creatives into its name maps. An unreadable element or page is quarantined; the names it
/// held are then missing from the rows, which keep their ids.
pub async fn list_names(api: &Api, account: &mut AdAccount, out: &mut Emitter) -> Result<(), SourceError> {
    let campaigns = ApiRequest::get(&format!("rest/adAccounts/{}/adCampaigns", account.id))
        .raw_query(restli::campaign_search_query())
        .query("pageSize", api.page_size().to_string())
        .stream(ANALYTICS_STREAM);
    account.campaigns = list(api, campaigns, out).await?;
    let creatives = ApiRequest::get(&format!("rest/adAccounts/{}/creatives", account.id))
        .raw_query("q=criteria")
        .query("pageSize", api.page_size().to_string())
        .stream(ANALYTICS_STREAM);
    account.creatives = list(api, creatives, out).await?;
    Ok(())
}

/// Reads the accounts of `ids` and their names ([`ad_account`], then [`list_names`]), up to
/// `in_flight` accounts at once; in the order of `ids`.
pub async fn read_accounts(
    api: &Api,
    ids: &[u64],
    in_flight: usize,
    out: &mut Emitter,
) -> Result<Vec<AdAccount>, SourceError> {
    // Unordered: an account whose three requests take long does not hold back the others.
    let mut reads = futures::stream::iter(ids.iter().copied().enumerate())
        .map(|(position, id)| async move {
            let read = crate::concurrent::beside(move |mut own| async move {
                let mut account = ad_account(api, id).await?;
                list_names(api, &mut account, &mut own).await?;
                Ok(account)
            })
            .await;
            (position, read)
        })
        .buffer_unordered(in_flight.max(1));
    let mut accounts = Vec::with_capacity(ids.len());
    while let Some((position, (read, quarantined))) = reads.next().await {
        for record in quarantined {
            out.quarantine(record).await?;
        }
        accounts.push((position, read?));
    }
    accounts.sort_by_key(|(position, _)| *position);
    Ok(accounts.into_iter().map(|(_, account)| account).collect())
}

async fn list(
    api: &Api,
    first: ApiRequest,
    out: &mut Emitter,
) -> Result<HashMap<u64, Option<Label>>, SourceError> {
    let pagination = Pagination::new(
        PageKind::PageToken { param: "pageToken".into(), next: "/metadata/nextPageToken".into() },
        "/elements",
    );
    let mut names = HashMap::new();
    let mut pages = api.pages(first, pagination).boxed();
    while let Some(page) = pages.next().await {
        let page = match page {
            Ok(page) => page,
            Err(e) => {
                api.quarantine_or_fail(e, ENTITIES_STREAM, out).await?;
                break;
            }
        };
        let elements = page.body.get("elements").and_then(Value::as_array).map_or(&[][..], |a| a);
        for (index, element) in elements.iter().enumerate() {
            match element.get("id").and_then(numeric_id) {
                Some(id) => {
                    names.insert(id, name_of(element));
                }
                None => {
                    out.quarantine(Quarantined {
                        stream: ENTITIES_STREAM.into(),
                        location: format!("{} page {} element {index}", page.response.url, page.index),
                        reason: "no numeric `id`".into(),
                        raw: element.to_string(),
                    })
                    .await?;
                }
            }
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_are_numbers_or_urns() {
        // Campaign ids are numbers (§3.3); versioned creatives carry a URN.
        assert_eq!(numeric_id(&json!(508_000_001_001_u64)), Some(508_000_001_001));
        assert_eq!(numeric_id(&json!("urn:li:sponsoredCreative:42")), Some(42));
        assert_eq!(numeric_id(&json!("17")), Some(17));
        assert_eq!(numeric_id(&json!("urn:li:sponsoredCreative:x")), None);
        assert_eq!(numeric_id(&json!(null)), None);
        assert_eq!(name_of(&json!({"name": "  "})), None);
    }
}
