//! Reach over whole weeks and months (`shared/apis/linkedin.md` §3.1).
//!
//! Reach counts unique members: a week's is not the sum of its days' (a member seen on three
//! days counts once), so it is asked of LinkedIn for the week itself. For each week and month a
//! pull's window touches ([`PeriodRequest::for_window`]), from the period's first day up to the
//! window's last at most, one `q=analytics&timeGranularity=ALL` request per pivot (ACCOUNT,
//! CAMPAIGN_GROUP, CAMPAIGN) asks for `approximateMemberReach` as one value per entity, for
//! several ad accounts at once (`accounts=List(...)`). Each element becomes a period row of the
//! account it belongs to: the account of an ACCOUNT element is its own URN, that of a campaign
//! or campaign group comes from the accounts' campaign listings (a campaign's `campaignGroup`).
//!
//! Why not `q=statistics` with `pivots=List(ACCOUNT,CAMPAIGN_GROUP,CAMPAIGN)` in one request:
//! each of its elements is one combination of the three, which for a campaign is the campaign
//! itself (a campaign has one group and one account); no element holds an account's or a
//! group's own reach, and reach cannot be added up from campaigns. The account and group levels
//! would still need a request each, so it saves nothing.

use std::ops::Range;

use futures::StreamExt;
use kpipe_core::{DateWindow, Emitter, Label, Metric, PeriodRequest, PeriodRow, SourceError};
use kpipe_http::ApiRequest;

use crate::analytics::{ANALYTICS_STREAM, Answer, quarantine};
use crate::client::Api;
use crate::entities::AdAccount;
use crate::fields::{KEY_FIELDS, REACH_FIELD};
use crate::normalize::Entity;
use crate::normalize::period::period_element;
use crate::restli::{self, PeriodPivot};

/// Ad accounts named in one request at most: their URNs keep the query near 2 KB, well below
/// the lengths LinkedIn answers 414 to.
pub const MAX_ACCOUNTS_PER_REQUEST: usize = 50;

/// The fields of a period request: the key fields and reach, the one unique metric.
pub fn fields() -> Vec<&'static str> {
    KEY_FIELDS.iter().copied().chain([REACH_FIELD]).collect()
}

/// The accounts in groups asked together, as ranges of `accounts`: at most
/// [`MAX_ACCOUNTS_PER_REQUEST`], and at most as many campaigns together as keep an answer by
/// campaign within two thirds of the element cap (a by-campaign answer has an element per
/// campaign that delivered; by group or by account fewer).
pub fn batches(accounts: &[AdAccount], element_cap: u32) -> Vec<Range<usize>> {
    let budget = (u64::from(element_cap) * 2 / 3).max(1);
    let mut batches = Vec::new();
    let (mut start, mut elements) = (0, 0u64);
    for (i, account) in accounts.iter().enumerate() {
        let size = batch_size(account);
        if i > start && (i - start >= MAX_ACCOUNTS_PER_REQUEST || elements + size > budget) {
            batches.push(start..i);
            (start, elements) = (i, 0);
        }
        elements += size;
    }
    if start < accounts.len() {
        batches.push(start..accounts.len());
    }
    batches
}

/// The most elements one answer by campaign may hold: the campaigns (or groups) of the
/// largest batch of [`batches`], at least one.
pub fn largest_batch(accounts: &[AdAccount], element_cap: u32) -> u64 {
    batches(accounts, element_cap)
        .into_iter()
        .map(|b| accounts[b].iter().map(batch_size).sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1)
}

fn batch_size(account: &AdAccount) -> u64 {
    (account.campaigns.len().max(account.campaign_groups.len()) as u64).max(1)
}

/// What one request gave.
enum Fetched {
    /// The answer, and where it came from.
    Answer(Answer, String),
    /// The answer reached the element cap: it may be cut short.
    AtCap(usize),
    /// The answer could not be read and was quarantined.
    Quarantined,
}

/// Pulls the reach of every week and month `window` touches for `accounts`, with up to
/// `in_flight` requests at once, and emits a period row per entity, pivot and period, in the
/// order of the periods, then the pivots (account, campaign group, campaign), then the batches.
pub async fn pull(
    api: &Api,
    accounts: &[AdAccount],
    window: DateWindow,
    element_cap: usize,
    in_flight: usize,
    out: &mut Emitter,
) -> Result<(), SourceError> {
    if accounts.is_empty() {
        return Ok(());
    }
    let requests = PeriodRequest::for_window(window);
    let batches = batches(accounts, u32::try_from(element_cap).unwrap_or(u32::MAX));
    let (requests, batches) = (&requests, &batches);
    tracing::debug!(periods = requests.len(), batches = batches.len(), %window, "reach by week and month");
    // Jobs by index: closures over borrowed items would not make a `Send` future here.
    let mut jobs = Vec::with_capacity(requests.len() * PeriodPivot::ALL.len() * batches.len());
    for r in 0..requests.len() {
        for pivot in PeriodPivot::ALL {
            jobs.extend((0..batches.len()).map(|b| (r, pivot, b)));
        }
    }
    let mut answers = futures::stream::iter(jobs)
        .map(|(r, pivot, b)| async move {
            let ids: Vec<u64> = accounts[batches[b].clone()].iter().map(|a| a.id).collect();
            let days = requests[r].days();
            let fetched = crate::concurrent::beside(|mut own| async move {
                fetch(api, &ids, pivot, days, element_cap, &mut own).await
            })
            .await;
            (r, pivot, b, fetched)
        })
        .buffered(in_flight.max(1));
    while let Some((r, pivot, b, (fetched, quarantined))) = answers.next().await {
        for record in quarantined {
            out.quarantine(record).await?;
        }
        let (request, batch) = (requests[r], &accounts[batches[b].clone()]);
        match fetched? {
            Fetched::Answer(answer, location) => emit(batch, pivot, request, &answer, &location, out).await?,
            // Asked again by halves of the accounts, on its own: rare.
            Fetched::AtCap(count) => split(api, batch, pivot, request, element_cap, count, out).await?,
            Fetched::Quarantined => {}
        }
    }
    Ok(())
}

/// Asks for `batch` again in halves of its accounts, down to single accounts, after an answer
/// for all of them held `count` elements, the cap.
async fn split(
    api: &Api,
    batch: &[AdAccount],
    pivot: PeriodPivot,
    request: PeriodRequest,
    element_cap: usize,
    count: usize,
    out: &mut Emitter,
) -> Result<(), SourceError> {
    let mut pending = vec![(batch, count)];
    while let Some((part, count)) = pending.pop() {
        if part.len() < 2 {
            return Err(SourceError::data(format!(
                "reach of ad account {} by {} over {}: the response holds {count} elements, \
                 LinkedIn's cap, so it may be cut short and one account cannot be split further",
                part.first().map_or(0, |a| a.id),
                pivot.as_str(),
                request.days()
            )));
        }
        let (first, second) = part.split_at(part.len() / 2);
        tracing::info!(accounts = part.len(), pivot = pivot.as_str(), days = %request.days(), count,
            "the response reached the element cap; asking for half the accounts");
        for half in [first, second] {
            let ids: Vec<u64> = half.iter().map(|a| a.id).collect();
            match fetch(api, &ids, pivot, request.days(), element_cap, out).await? {
                Fetched::Answer(answer, location) => {
                    emit(half, pivot, request, &answer, &location, out).await?
                }
                Fetched::AtCap(count) => pending.push((half, count)),
                Fetched::Quarantined => {}
            }
        }
    }
    Ok(())
}

/// One request: `accounts` by `pivot` over `days`, as one value per entity.
async fn fetch(
    api: &Api,
    accounts: &[u64],
    pivot: PeriodPivot,
    days: DateWindow,
    element_cap: usize,
    out: &mut Emitter,
) -> Result<Fetched, SourceError> {
    let request = ApiRequest::get("rest/adAnalytics")
        .raw_query(restli::period_query(accounts, pivot, days, &fields()))
        .stream(ANALYTICS_STREAM);
    let (body, url) = match api.get_text(&request).await {
        Ok(answer) => answer,
        Err(e) => {
            api.quarantine_or_fail(e, ANALYTICS_STREAM, out).await?;
            return Ok(Fetched::Quarantined);
        }
    };
    match Answer::read(body) {
        Ok(answer) if answer.len() >= element_cap => Ok(Fetched::AtCap(answer.len())),
        Ok(answer) => Ok(Fetched::Answer(answer, url)),
        Err(body) => {
            quarantine(out, url, "the response has no `elements` array".into(), body).await?;
            Ok(Fetched::Quarantined)
        }
    }
}

/// The period rows of `answer` (about `batch` by `pivot` over `request`'s days), emitted; an
/// element that cannot be read or placed is quarantined with its JSON text.
async fn emit(
    batch: &[AdAccount],
    pivot: PeriodPivot,
    request: PeriodRequest,
    answer: &Answer,
    location: &str,
    out: &mut Emitter,
) -> Result<(), SourceError> {
    for (index, element) in answer.elements().enumerate() {
        match period_row(batch, pivot, request, element) {
            Ok(Some(row)) => out.emit_period(row).await?,
            Ok(None) => {}
            Err(reason) => {
                quarantine(out, format!("{location} element {index}"), reason, element.to_owned()).await?
            }
        }
    }
    Ok(())
}

/// The period row of one element: `None` when it holds no reach.
fn period_row(
    batch: &[AdAccount],
    pivot: PeriodPivot,
    request: PeriodRequest,
    element: &str,
) -> Result<Option<PeriodRow>, String> {
    let read = period_element(element, pivot, request.days())?;
    let Some(reach) = read.reach else { return Ok(None) };
    let account = owner(batch, pivot, read.id)?;
    let entity_name = match pivot {
        PeriodPivot::Account => account.name.as_deref().map(|n| Label::from(n.to_owned())),
        PeriodPivot::Campaign => account.campaigns.get(&read.id).cloned().flatten(),
        // Campaign groups are not listed, so their names are not known.
        PeriodPivot::CampaignGroup => None,
    };
    let entity = Entity {
        account_id: account.label.clone(),
        level: Label::from(pivot.level()),
        entity_id: Label::from(read.id.to_string()),
        entity_name,
    };
    let row = entity.row(request.period.start, Metric::Reach.into(), reach, None);
    Ok(Some(PeriodRow::new(request, row)))
}

/// The account of `batch` entity `id` of `pivot` belongs to: an account's own URN, the account
/// whose listing holds the campaign or campaign group, or the only account asked for.
fn owner(batch: &[AdAccount], pivot: PeriodPivot, id: u64) -> Result<&AdAccount, String> {
    let listed = batch.iter().find(|a| match pivot {
        PeriodPivot::Account => a.id == id,
        PeriodPivot::CampaignGroup => a.campaign_groups.contains(&id),
        PeriodPivot::Campaign => a.campaigns.contains_key(&id),
    });
    match (listed, batch) {
        (Some(account), _) => Ok(account),
        (None, [only]) if pivot != PeriodPivot::Account => Ok(only),
        (None, _) => {
            let asked: Vec<String> = batch.iter().map(|a| a.id.to_string()).collect();
            Err(match pivot {
                PeriodPivot::Account => format!("ad account {id} was not asked for ({})", asked.join(", ")),
                _ => format!(
                    "{} {id} is in the campaign listing of none of the ad accounts asked for ({})",
                    pivot.level().replace('_', " "),
                    asked.join(", ")
                ),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, HashMap};

    use chrono::NaiveDate;
    use kpipe_core::Currency;

    use super::*;

    fn account(id: u64, campaigns: u64) -> AdAccount {
        AdAccount {
            id,
            label: Label::from(id.to_string()),
            name: Some(format!("Account {id}")),
            currency: Currency::parse("USD").unwrap(),
            status: "ACTIVE".into(),
            campaigns: (0..campaigns).map(|i| (id * 1000 + i, None)).collect::<HashMap<_, _>>(),
            creatives: HashMap::new(),
            campaign_groups: [id * 10 + 1].into_iter().collect::<BTreeSet<_>>(),
        }
    }

    #[test]
    fn accounts_are_batched_by_count_and_campaigns() {
        let small: Vec<AdAccount> = (1..=120).map(|id| account(id, 3)).collect();
        assert_eq!(batches(&small, 15_000), [0..50, 50..100, 100..120]);
        // 10,000 elements of budget: 4,000 campaigns fit twice, not three times.
        let large: Vec<AdAccount> = (1..=4).map(|id| account(id, 4_000)).collect();
        assert_eq!(batches(&large, 15_000), [0..2, 2..4]);
        // An account larger than the budget is asked alone.
        let huge = [account(1, 2), account(2, 20_000), account(3, 2)];
        assert_eq!(batches(&huge, 15_000), [0..1, 1..2, 2..3]);
        assert!(batches(&[], 15_000).is_empty());
        assert_eq!(largest_batch(&small, 15_000), 150);
        assert_eq!(largest_batch(&large, 15_000), 8_000);
        assert_eq!(largest_batch(&huge, 15_000), 20_000);
        assert_eq!(largest_batch(&[], 15_000), 1);
    }

    #[test]
    fn elements_belong_to_the_account_that_lists_them() {
        let batch = [account(1, 2), account(2, 2)];
        assert_eq!(owner(&batch, PeriodPivot::Account, 2).unwrap().id, 2);
        assert_eq!(owner(&batch, PeriodPivot::Campaign, 2_001).unwrap().id, 2);
        assert_eq!(owner(&batch, PeriodPivot::CampaignGroup, 11).unwrap().id, 1);
        assert!(owner(&batch, PeriodPivot::Campaign, 7).unwrap_err().contains("campaign 7 is in the"));
        assert!(owner(&batch, PeriodPivot::CampaignGroup, 7).unwrap_err().contains("campaign group 7"));
        assert!(owner(&batch, PeriodPivot::Account, 7).unwrap_err().contains("not asked for (1, 2)"));
        // With one account asked for, whatever it answers is that account's.
        assert_eq!(owner(&batch[..1], PeriodPivot::Campaign, 7).unwrap().id, 1);
    }

    #[test]
    fn a_period_row_is_the_entitys_reach_dated_the_periods_first_day() {
        let window = DateWindow::new(
            NaiveDate::from_ymd_opt(2026, 10, 28).unwrap(),
            NaiveDate::from_ymd_opt(2026, 11, 3).unwrap(),
        )
        .unwrap();
        let week = PeriodRequest::for_window(window)[1];
        let element = r#"{"pivotValues": ["urn:li:sponsoredCampaign:2001"], "approximateMemberReach": 812,
            "dateRange": {"start": {"year": 2026, "month": 11, "day": 2},
                          "end": {"year": 2026, "month": 11, "day": 3}}}"#;
        let mut batch = [account(1, 2), account(2, 2)];
        batch[1].campaigns.insert(2_001, Some(Label::from("Autumn")));
        let row = period_row(&batch, PeriodPivot::Campaign, week, element).unwrap().unwrap();
        assert!(row.request.is_partial());
        assert_eq!(row.validate(), Ok(()));
        let r = &row.row;
        assert_eq!(
            (r.account_id.as_str(), r.level.as_str(), r.entity_id.as_str(), r.entity_name.as_deref()),
            ("2", "campaign", "2001", Some("Autumn"))
        );
        assert_eq!((r.date.to_string(), r.value.to_string()), ("2026-11-02".to_owned(), "812".to_owned()));
        let without = element.replace(r#""approximateMemberReach": 812,"#, "");
        assert_eq!(period_row(&batch, PeriodPivot::Campaign, week, &without), Ok(None));
    }
}
