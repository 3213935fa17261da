//! Rest.li 2.0 query strings (`shared/apis/linkedin.md` §2): structures are written literally,
//! `(key:value,...)` and `List(a,b)`, and only the leaves are percent-encoded, so a URN inside
//! `List(...)` becomes `urn%3Ali%3A...`. A generic URL encoder would encode the parentheses
//! too and LinkedIn would refuse the request; these strings are therefore sent as raw queries.

use chrono::{Datelike, NaiveDate};
use kpipe_core::DateWindow;

/// What ad analytics are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pivot {
    /// One element per campaign and day.
    Campaign,
    /// One element per creative and day.
    Creative,
}

impl Pivot {
    /// Both pivots, in pull order.
    pub const ALL: [Pivot; 2] = [Pivot::Campaign, Pivot::Creative];

    /// The `pivot=` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Pivot::Campaign => "CAMPAIGN",
            Pivot::Creative => "CREATIVE",
        }
    }

    /// The `level` column of its rows.
    pub fn level(self) -> &'static str {
        match self {
            Pivot::Campaign => "campaign",
            Pivot::Creative => "creative",
        }
    }

    /// The URN prefix of its entities, `urn:li:sponsoredCampaign:`.
    pub fn urn_prefix(self) -> &'static str {
        match self {
            Pivot::Campaign => "urn:li:sponsoredCampaign:",
            Pivot::Creative => "urn:li:sponsoredCreative:",
        }
    }
}

/// What reach over a whole week or month is grouped by: the account and the campaign levels
/// above creatives (`pivot=ACCOUNT`, `CAMPAIGN_GROUP`, `CAMPAIGN`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeriodPivot {
    /// One element per ad account.
    Account,
    /// One element per campaign group.
    CampaignGroup,
    /// One element per campaign.
    Campaign,
}

impl PeriodPivot {
    /// Every period pivot, in pull order: coarsest first.
    pub const ALL: [PeriodPivot; 3] =
        [PeriodPivot::Account, PeriodPivot::CampaignGroup, PeriodPivot::Campaign];

    /// The `pivot=` value.
    pub fn as_str(self) -> &'static str {
        match self {
            PeriodPivot::Account => "ACCOUNT",
            PeriodPivot::CampaignGroup => "CAMPAIGN_GROUP",
            PeriodPivot::Campaign => "CAMPAIGN",
        }
    }

    /// The `level` column of its rows.
    pub fn level(self) -> &'static str {
        match self {
            PeriodPivot::Account => "account",
            PeriodPivot::CampaignGroup => "campaign_group",
            PeriodPivot::Campaign => "campaign",
        }
    }

    /// The URN prefix of its entities, `urn:li:sponsoredAccount:`.
    pub fn urn_prefix(self) -> &'static str {
        match self {
            PeriodPivot::Account => "urn:li:sponsoredAccount:",
            PeriodPivot::CampaignGroup => "urn:li:sponsoredCampaignGroup:",
            PeriodPivot::Campaign => "urn:li:sponsoredCampaign:",
        }
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `List(urn%3Ali%3A...,...)`.
pub fn urn_list<'a>(urns: impl IntoIterator<Item = &'a str>) -> String {
    let items: Vec<String> = urns.into_iter().map(encode).collect();
    format!("List({})", items.join(","))
}

/// `(year:2026,month:1,day:5)`: not zero-padded.
pub fn date(day: NaiveDate) -> String {
    format!("(year:{},month:{},day:{})", day.year(), day.month(), day.day())
}

/// `(start:(...),end:(...))`, both days included.
pub fn date_range(window: DateWindow) -> String {
    format!("(start:{},end:{})", date(window.start()), date(window.end()))
}

/// The query of one ad analytics request: one account, one pivot, daily, these fields.
pub fn analytics_query(account: u64, pivot: Pivot, window: DateWindow, fields: &[&str]) -> String {
    let account = format!("urn:li:sponsoredAccount:{account}");
    format!(
        "q=analytics&pivot={}&timeGranularity=DAILY&dateRange={}&accounts={}&fields={}",
        pivot.as_str(),
        date_range(window),
        urn_list([account.as_str()]),
        fields.join(",")
    )
}

/// The query of one request for reach over a whole period: several accounts, one pivot, the
/// days as one value (`timeGranularity=ALL`), these fields.
pub fn period_query(accounts: &[u64], pivot: PeriodPivot, days: DateWindow, fields: &[&str]) -> String {
    let urns: Vec<String> = accounts.iter().map(|id| format!("urn:li:sponsoredAccount:{id}")).collect();
    format!(
        "q=analytics&pivot={}&timeGranularity=ALL&dateRange={}&accounts={}&fields={}",
        pivot.as_str(),
        date_range(days),
        urn_list(urns.iter().map(String::as_str)),
        fields.join(",")
    )
}

/// Every campaign status, so that the search lists paused, finished and removed campaigns too:
/// their past days still have analytics that need names.
pub const CAMPAIGN_STATUSES: [&str; 8] =
    ["ACTIVE", "PAUSED", "ARCHIVED", "COMPLETED", "CANCELED", "DRAFT", "PENDING_DELETION", "REMOVED"];

/// The query of the campaign search (§3.3).
pub fn campaign_search_query() -> String {
    format!("q=search&search=(status:(values:List({})))", CAMPAIGN_STATUSES.join(","))
}

/// The query of a time-bound organization statistics request by day, from `start_ms` to
/// `end_ms` (epoch milliseconds, end exclusive; §2, §3.4).
pub fn statistics_query(organization: u64, start_ms: i64, end_ms: i64) -> String {
    format!(
        "q=organizationalEntity&organizationalEntity={}\
         &timeIntervals=(timeRange:(start:{start_ms},end:{end_ms}),timeGranularityType:DAY)",
        encode(&format!("urn:li:organization:{organization}"))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn structures_stay_literal_and_urns_are_encoded() {
        // The canonical string of shared/apis/linkedin.md §2 (an ingestr unit test).
        assert_eq!(
            urn_list(["urn:li:sponsoredAccount:123456", "urn:li:sponsoredAccount:456789"]),
            "List(urn%3Ali%3AsponsoredAccount%3A123456,urn%3Ali%3AsponsoredAccount%3A456789)"
        );
        let window = DateWindow::new(day("2024-01-01"), day("2024-12-31")).unwrap();
        assert_eq!(date_range(window), "(start:(year:2024,month:1,day:1),end:(year:2024,month:12,day:31))");
        assert_eq!(
            campaign_search_query(),
            "q=search&search=(status:(values:List(ACTIVE,PAUSED,ARCHIVED,COMPLETED,CANCELED,DRAFT,\
             PENDING_DELETION,REMOVED)))"
        );
        let week = DateWindow::new(day("2026-10-26"), day("2026-11-01")).unwrap();
        assert_eq!(
            period_query(&[1, 2], PeriodPivot::CampaignGroup, week, &["dateRange", "approximateMemberReach"]),
            "q=analytics&pivot=CAMPAIGN_GROUP&timeGranularity=ALL\
             &dateRange=(start:(year:2026,month:10,day:26),end:(year:2026,month:11,day:1))\
             &accounts=List(urn%3Ali%3AsponsoredAccount%3A1,urn%3Ali%3AsponsoredAccount%3A2)\
             &fields=dateRange,approximateMemberReach"
        );
        assert_eq!(
            statistics_query(2_414_183, 1_711_929_600_000, 1_712_534_400_000),
            "q=organizationalEntity&organizationalEntity=urn%3Ali%3Aorganization%3A2414183\
             &timeIntervals=(timeRange:(start:1711929600000,end:1712534400000),timeGranularityType:DAY)"
        );
    }
}
