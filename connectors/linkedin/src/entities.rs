//! Ad accounts, campaigns and creatives: the currency spend is in, the names that rows carry,
//! and the campaign groups of each account's campaigns (`shared/apis/linkedin.md` §3.2, §3.3,
//! §4). Campaigns and creatives are listed with cursor paging: `pageSize`, then `pageToken` from
//! `metadata.nextPageToken` until it is absent.

use std::collections::{BTreeSet, HashMap};

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
    /// The campaign groups its listed campaigns belong to (their `campaignGroup`).
    pub campaign_groups: BTreeSet<u64>,
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
        campaign_groups: BTreeSet::new(),
    })
}

/// Lists the account's campaigns (every status: finished campaigns still have past days) and
/// creatives into its name maps, and the campaigns' groups. An unreadable element or page is
/// quarantined; the names it held are then missing from the rows, which keep their ids.
pub async fn list_names(api: &Api, account: &mut AdAccount, out: &mut Emitter) -> Result<(), SourceError> {
    let campaigns = list(api, listing(api, account.id, Listing::Campaigns), out).await?;
    account.campaigns = campaigns.names;
    account.campaign_groups = campaigns.groups;
    account.creatives = list(api, listing(api, account.id, Listing::Creatives), out).await?.names;
    Ok(())
}

/// The two listings of an ad account's entities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Listing {
    Campaigns,
    Creatives,
}

/// The first page of an account's campaigns or creatives.
fn listing(api: &Api, account: u64, which: Listing) -> ApiRequest {
    let request = match which {
        Listing::Campaigns => ApiRequest::get(&format!("rest/adAccounts/{account}/adCampaigns"))
            .raw_query(restli::campaign_search_query()),
        Listing::Creatives => {
            ApiRequest::get(&format!("rest/adAccounts/{account}/creatives")).raw_query("q=criteria")
        }
    };
    request.query("pageSize", api.page_size().to_string()).stream(ANALYTICS_STREAM)
}

/// What one request of [`read_accounts`] gave.
enum Part {
    Account(AdAccount),
    Names(Listing, Listed),
}

/// Reads the accounts of `ids` and their names, as [`ad_account`] and [`list_names`] do, with
/// up to `in_flight` requests at once; in the order of `ids`.
pub async fn read_accounts(
    api: &Api,
    ids: &[u64],
    in_flight: usize,
    out: &mut Emitter,
) -> Result<Vec<AdAccount>, SourceError> {
    // An account and its two listings are three independent requests: all of them are queued
    // together and taken in any order, so that the pace stays busy until the last one.
    let jobs = ids.iter().copied().enumerate().flat_map(|(position, id)| {
        [None, Some(Listing::Campaigns), Some(Listing::Creatives)].map(|which| (position, id, which))
    });
    let mut reads = futures::stream::iter(jobs)
        .map(|(position, id, which)| async move {
            let read = crate::concurrent::beside(move |mut own| async move {
                match which {
                    None => ad_account(api, id).await.map(Part::Account),
                    Some(which) => list(api, listing(api, id, which), &mut own)
                        .await
                        .map(|names| Part::Names(which, names)),
                }
            })
            .await;
            (position, read)
        })
        .buffer_unordered(in_flight.max(1));
    let mut accounts: Vec<Option<AdAccount>> = ids.iter().map(|_| None).collect();
    let mut names: Vec<[Listed; 2]> = ids.iter().map(|_| Default::default()).collect();
    while let Some((position, (read, quarantined))) = reads.next().await {
        for record in quarantined {
            out.quarantine(record).await?;
        }
        match read? {
            Part::Account(account) => accounts[position] = Some(account),
            Part::Names(which, found) => names[position][which as usize] = found,
        }
    }
    accounts
        .into_iter()
        .zip(names)
        .zip(ids)
        .map(|((account, [campaigns, creatives]), id)| {
            let mut account =
                account.ok_or_else(|| SourceError::data(format!("ad account {id} was not read")))?;
            account.campaigns = campaigns.names;
            account.campaign_groups = campaigns.groups;
            account.creatives = creatives.names;
            Ok(account)
        })
        .collect()
}

/// What a listing gave: names by id, and the campaign groups its elements name (campaigns
/// carry `campaignGroup`, creatives none).
#[derive(Debug, Default)]
struct Listed {
    names: HashMap<u64, Option<Label>>,
    groups: BTreeSet<u64>,
}

async fn list(api: &Api, first: ApiRequest, out: &mut Emitter) -> Result<Listed, SourceError> {
    let pagination = Pagination::new(
        PageKind::PageToken { param: "pageToken".into(), next: "/metadata/nextPageToken".into() },
        "/elements",
    );
    let mut listed = Listed::default();
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
                    listed.names.insert(id, name_of(element));
                    if let Some(group) = element.get("campaignGroup").and_then(numeric_id) {
                        listed.groups.insert(group);
                    }
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
    Ok(listed)
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
