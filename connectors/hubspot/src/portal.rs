//! The portal (HubSpot account) a source reads: its id, currency and time zone, from
//! `GET /account-info/v3/details`. Every date the connector writes is a day of the portal's
//! time zone, as HubSpot's own reports count them.

use chrono::{DateTime, Days, NaiveDate, Utc};
use kpipe_core::{Currency, DateWindow, Label, SourceError};

/// What the connector needs to know about the portal.
#[derive(Debug, Clone, PartialEq)]
pub struct Portal {
    /// `portalId` (the Hub ID): every row's `account_id`.
    pub id: Label,
    /// `timeZone`, for messages.
    pub time_zone: String,
    /// `utcOffsetMilliseconds`: the zone's offset east of UTC.
    pub offset_ms: i64,
    /// `companyCurrency`: the currency of deals that name none.
    pub currency: Currency,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct AccountDetails {
    portal_id: serde_json::Value,
    time_zone: Option<String>,
    company_currency: Option<String>,
    utc_offset_milliseconds: Option<i64>,
    utc_offset: Option<String>,
}

/// `-05:00` as milliseconds.
fn parse_offset(text: &str) -> Option<i64> {
    let (sign, rest) = match text.as_bytes().first()? {
        b'-' => (-1, &text[1..]),
        b'+' => (1, &text[1..]),
        _ => (1, text),
    };
    let (hours, minutes) = rest.split_once(':')?;
    let minutes = hours.parse::<i64>().ok()? * 60 + minutes.parse::<i64>().ok()?;
    Some(sign * minutes * 60_000)
}

impl Portal {
    /// Reads the account details body.
    pub fn from_details(body: &[u8]) -> Result<Portal, SourceError> {
        let details: AccountDetails = serde_json::from_slice(body)
            .map_err(|e| SourceError::data(format!("account details: unexpected shape: {e}")))?;
        let id = match &details.portal_id {
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::String(s) if !s.is_empty() => s.clone(),
            other => {
                return Err(SourceError::data(format!("account details: `portalId` {other} is not an id")));
            }
        };
        let currency_text = details.company_currency.unwrap_or_default();
        let currency = Currency::parse(&currency_text).ok_or_else(|| {
            SourceError::data(format!("account details: `companyCurrency` {currency_text:?} is not ISO 4217"))
        })?;
        let offset_ms = details
            .utc_offset_milliseconds
            .or_else(|| details.utc_offset.as_deref().and_then(parse_offset))
            .ok_or_else(|| {
                SourceError::data(
                    "account details: neither `utcOffsetMilliseconds` nor `utcOffset` is readable",
                )
            })?;
        if offset_ms.abs() > 14 * 3_600_000 {
            return Err(SourceError::data(format!(
                "account details: UTC offset {offset_ms} ms is not a time zone"
            )));
        }
        Ok(Portal {
            id: Label::from(id),
            time_zone: details.time_zone.unwrap_or_else(|| "UTC".to_owned()),
            offset_ms,
            currency,
        })
    }

    /// The portal day of an instant (epoch milliseconds).
    pub fn day_of(&self, ms: i64) -> Option<NaiveDate> {
        DateTime::from_timestamp_millis(ms.checked_add(self.offset_ms)?).map(|t| t.date_naive())
    }

    /// Epoch milliseconds of the portal's midnight starting `day`.
    pub fn day_start_ms(&self, day: NaiveDate) -> i64 {
        day.and_hms_opt(0, 0, 0).map_or(0, |t| t.and_utc().timestamp_millis()) - self.offset_ms
    }

    /// `[start, end)` in epoch milliseconds: the instants of the window's portal days.
    pub fn window_ms(&self, window: DateWindow) -> (i64, i64) {
        let after = window.end().checked_add_days(Days::new(1)).unwrap_or(window.end());
        (self.day_start_ms(window.start()), self.day_start_ms(after))
    }

    /// The next portal midnight after `now`: when the daily limit resets.
    pub fn next_midnight(offset_ms: i64, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = DateTime::from_timestamp_millis(now.timestamp_millis().checked_add(offset_ms)?)?;
        let tomorrow = local.date_naive().checked_add_days(Days::new(1))?;
        let midnight = tomorrow.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis() - offset_ms;
        DateTime::from_timestamp_millis(midnight)
    }
}

/// Epoch milliseconds of an ISO-8601 datetime (`2026-10-01T09:12:44.201Z`, with or without
/// fractions, any offset) or of epoch milliseconds written as digits.
pub fn parse_instant(text: &str) -> Option<i64> {
    let text = text.trim();
    if !text.is_empty() && text.len() <= 16 && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().ok();
    }
    DateTime::parse_from_rfc3339(text).ok().map(|t| t.timestamp_millis())
}

/// `2026-10-01T04:00:00.000Z`.
pub fn iso(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eastern() -> Portal {
        Portal::from_details(
            br#"{"portalId": 62515, "accountType": "STANDARD", "timeZone": "US/Eastern",
                 "companyCurrency": "USD", "additionalCurrencies": [], "utcOffset": "-05:00",
                 "utcOffsetMilliseconds": -18000000, "uiDomain": "app.hubspot.com",
                 "dataHostingLocation": "na1"}"#,
        )
        .unwrap()
    }

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn account_details_give_id_currency_and_offset() {
        // Shape of developers.hubspot.com's "Retrieve account details" example.
        let portal = eastern();
        assert_eq!(portal.id.as_str(), "62515");
        assert_eq!(portal.currency.as_str(), "USD");
        assert_eq!(portal.offset_ms, -18_000_000);
        let from_text =
            Portal::from_details(br#"{"portalId": "7", "companyCurrency": "EUR", "utcOffset": "+01:30"}"#);
        assert_eq!(from_text.unwrap().offset_ms, 5_400_000);
        for bad in [
            r#"{"portalId": 1, "companyCurrency": "usd", "utcOffset": "+00:00"}"#,
            r#"{"portalId": 1}"#,
            "[]",
        ] {
            assert_eq!(Portal::from_details(bad.as_bytes()).unwrap_err().kind(), kpipe_core::ErrorKind::Data);
        }
    }

    #[test]
    fn days_are_cut_at_the_portals_midnight() {
        let portal = eastern();
        let start = portal.day_start_ms(day("2026-10-01"));
        assert_eq!(iso(start), "2026-10-01T05:00:00.000Z");
        assert_eq!(portal.day_of(start), Some(day("2026-10-01")));
        assert_eq!(portal.day_of(start - 1), Some(day("2026-09-30")));
        let window = DateWindow::new(day("2026-10-01"), day("2026-10-02")).unwrap();
        assert_eq!(portal.window_ms(window), (start, start + 2 * 86_400_000));
        let now = DateTime::parse_from_rfc3339("2026-10-02T03:00:00Z").unwrap().with_timezone(&Utc);
        // 03:00 UTC is still October 1st in New York: the daily limit resets at 05:00 UTC.
        assert_eq!(
            Portal::next_midnight(portal.offset_ms, now).map(|t| t.to_rfc3339()),
            Some("2026-10-02T05:00:00+00:00".into())
        );
    }

    #[test]
    fn instants_come_as_iso_or_milliseconds() {
        assert_eq!(parse_instant("2026-10-01T05:00:00Z"), Some(1_790_830_800_000));
        assert_eq!(parse_instant("2026-10-01T05:00:00.250Z"), Some(1_790_830_800_250));
        assert_eq!(parse_instant("2026-10-01T01:00:00-04:00"), Some(1_790_830_800_000));
        assert_eq!(parse_instant("1790830800000"), Some(1_790_830_800_000));
        for bad in ["", "yesterday", "2026-10-01", "134376773869;137654776000"] {
            assert_eq!(parse_instant(bad), None, "{bad}");
        }
    }
}
