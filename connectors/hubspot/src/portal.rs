//! The portal (HubSpot account) a source reads: its id, currency and time zone, from
//! `GET /account-info/v3/details`. Every date the connector writes is a day of the portal's
//! time zone, as HubSpot's own reports count them: its IANA zone (`timeZone`), daylight saving
//! time included, or the fixed UTC offset the details report when the zone is not one
//! chrono-tz knows.

use std::fmt;

use chrono::{DateTime, Days, NaiveDate, Offset, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use kpipe_core::{Currency, DateWindow, Label, SourceError};

/// What the connector needs to know about the portal.
#[derive(Debug, Clone, PartialEq)]
pub struct Portal {
    /// `portalId` (the Hub ID): every row's `account_id`.
    pub id: Label,
    /// `timeZone`: an IANA name (`America/New_York`, or a legacy one like `US/Eastern`) whose
    /// days the rows are; empty when the details have none.
    pub time_zone: String,
    /// `utcOffsetMilliseconds`: the zone's offset east of UTC when the details were read. Days
    /// are cut with it only when `time_zone` is not a zone chrono-tz knows.
    pub offset_ms: i64,
    /// `companyCurrency`: the currency of deals that name none.
    pub currency: Currency,
}

/// The zone whose days the connector writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    /// An IANA zone, daylight saving time included.
    Named(Tz),
    /// A fixed offset east of UTC, in milliseconds.
    Fixed(i64),
}

impl Default for Zone {
    fn default() -> Zone {
        Zone::Fixed(0)
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Zone::Named(tz) => f.write_str(tz.name()),
            Zone::Fixed(ms) => {
                let sign = if *ms < 0 { '-' } else { '+' };
                let minutes = ms.unsigned_abs() / 60_000;
                write!(f, "UTC{sign}{:02}:{:02}", minutes / 60, minutes % 60)
            }
        }
    }
}

/// The IANA zone `name` stands for, if chrono-tz knows it.
fn named_zone(name: &str) -> Option<Tz> {
    name.trim().parse::<Tz>().ok()
}

impl Zone {
    /// The zone `time_zone` names, or the fixed `offset_ms` when it names none chrono-tz knows.
    pub fn new(time_zone: &str, offset_ms: i64) -> Zone {
        named_zone(time_zone).map_or(Zone::Fixed(offset_ms), Zone::Named)
    }

    /// The day of an instant (epoch milliseconds).
    pub fn day_of(self, ms: i64) -> Option<NaiveDate> {
        match self {
            Zone::Named(tz) => DateTime::from_timestamp_millis(ms).map(|t| t.with_timezone(&tz).date_naive()),
            Zone::Fixed(offset) => {
                DateTime::from_timestamp_millis(ms.checked_add(offset)?).map(|t| t.date_naive())
            }
        }
    }

    /// Epoch milliseconds of the first instant of `day`: its midnight (the first one, where
    /// clocks go back over midnight), or where clocks skip midnight, the instant they jump.
    pub fn day_start_ms(self, day: NaiveDate) -> Option<i64> {
        let midnight = day.and_hms_opt(0, 0, 0)?;
        match self {
            Zone::Fixed(offset) => midnight.and_utc().timestamp_millis().checked_sub(offset),
            Zone::Named(tz) => match tz.from_local_datetime(&midnight).earliest() {
                Some(t) => Some(t.timestamp_millis()),
                None => {
                    // Midnight falls in a gap: the day starts when the offset of the evening
                    // before ends.
                    let before =
                        tz.offset_from_utc_datetime(&midnight.checked_sub_signed(TimeDelta::days(1))?);
                    let seconds = i64::from(before.fix().local_minus_utc());
                    midnight.and_utc().timestamp_millis().checked_sub(seconds * 1_000)
                }
            },
        }
    }

    /// The first midnight after `now`.
    pub fn next_midnight(self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let today = self.day_of(now.timestamp_millis())?;
        DateTime::from_timestamp_millis(self.day_start_ms(today.checked_add_days(Days::new(1))?)?)
    }

    /// The offset east of UTC in force at `now`, in milliseconds.
    pub fn offset_ms_at(self, now: DateTime<Utc>) -> i64 {
        match self {
            Zone::Named(tz) => i64::from(now.with_timezone(&tz).offset().fix().local_minus_utc()) * 1_000,
            Zone::Fixed(offset) => offset,
        }
    }
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
    /// Reads the account details body. The UTC offset is required only when `timeZone` is
    /// absent or not a zone chrono-tz knows.
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
        let time_zone = details.time_zone.map(|z| z.trim().to_owned()).unwrap_or_default();
        let offset =
            details.utc_offset_milliseconds.or_else(|| details.utc_offset.as_deref().and_then(parse_offset));
        let offset_ms = match (named_zone(&time_zone), offset) {
            (_, Some(ms)) if ms.abs() <= 14 * 3_600_000 => ms,
            (Some(tz), _) => Zone::Named(tz).offset_ms_at(Utc::now()),
            (None, Some(ms)) => {
                return Err(SourceError::data(format!(
                    "account details: UTC offset {ms} ms is not a time zone"
                )));
            }
            (None, None) => {
                return Err(SourceError::data(format!(
                    "account details: `timeZone` {time_zone:?} is not an IANA time zone and neither \
                     `utcOffsetMilliseconds` nor `utcOffset` is readable"
                )));
            }
        };
        Ok(Portal { id: Label::from(id), time_zone, offset_ms, currency })
    }

    /// The zone whose days the rows are.
    pub fn zone(&self) -> Zone {
        Zone::new(&self.time_zone, self.offset_ms)
    }

    /// `timeZone` when the details name a zone chrono-tz does not know (days are then cut at
    /// the fixed offset).
    pub fn unknown_zone(&self) -> Option<&str> {
        (!self.time_zone.is_empty() && named_zone(&self.time_zone).is_none())
            .then_some(self.time_zone.as_str())
    }

    /// The portal day of an instant (epoch milliseconds).
    pub fn day_of(&self, ms: i64) -> Option<NaiveDate> {
        self.zone().day_of(ms)
    }

    /// Epoch milliseconds of the portal's midnight starting `day`.
    pub fn day_start_ms(&self, day: NaiveDate) -> i64 {
        self.zone().day_start_ms(day).unwrap_or(0)
    }

    /// `[start, end)` in epoch milliseconds: the instants of the window's portal days.
    pub fn window_ms(&self, window: DateWindow) -> (i64, i64) {
        let zone = self.zone();
        let after = window.end().checked_add_days(Days::new(1)).unwrap_or(window.end());
        let at = |day| zone.day_start_ms(day).unwrap_or(0);
        (at(window.start()), at(after))
    }

    /// The next portal midnight after `now`: when the daily limit resets.
    pub fn next_midnight(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.zone().next_midnight(now)
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
        // October is on daylight saving time in New York (UTC-4), whatever offset the details
        // reported.
        assert_eq!(iso(start), "2026-10-01T04:00:00.000Z");
        assert_eq!(portal.day_of(start), Some(day("2026-10-01")));
        assert_eq!(portal.day_of(start - 1), Some(day("2026-09-30")));
        let window = DateWindow::new(day("2026-10-01"), day("2026-10-02")).unwrap();
        assert_eq!(portal.window_ms(window), (start, start + 2 * 86_400_000));
        // 03:00 UTC is still October 1st in New York: the daily limit resets at 04:00 UTC.
        assert_eq!(
            portal.next_midnight(at("2026-10-02T03:00:00Z")).map(|t| t.to_rfc3339()),
            Some("2026-10-02T04:00:00+00:00".into())
        );
    }

    /// Account details of a portal in `zone`, read when its offset was `offset_ms`.
    fn portal_in(zone: &str, offset_ms: i64) -> Portal {
        let body = serde_json::json!({"portalId": 62515, "timeZone": zone, "companyCurrency": "USD",
                                      "utcOffsetMilliseconds": offset_ms});
        Portal::from_details(body.to_string().as_bytes()).unwrap()
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    /// Each instant (written with the offset in force there) lands on its local date, whichever
    /// offset the account details reported when the pull ran.
    fn assert_local_days(zone: &str, offsets_ms: [i64; 2], cases: &[(&str, &str)]) {
        for offset in offsets_ms {
            let portal = portal_in(zone, offset);
            for (instant, local_day) in cases {
                let ms = at(instant).timestamp_millis();
                assert_eq!(portal.day_of(ms), Some(day(local_day)), "{zone} read at {offset}: {instant}");
            }
        }
    }

    #[test]
    fn records_either_side_of_midnight_land_on_the_new_york_day() {
        assert_local_days(
            "America/New_York",
            [-18_000_000, -14_400_000],
            &[
                // Winter (EST) and summer (EDT).
                ("2026-01-15T23:30:00-05:00", "2026-01-15"),
                ("2026-01-16T00:30:00-05:00", "2026-01-16"),
                ("2026-07-15T23:30:00-04:00", "2026-07-15"),
                ("2026-07-16T00:30:00-04:00", "2026-07-16"),
                // 2026-03-08: clocks go from 02:00 EST to 03:00 EDT.
                ("2026-03-07T23:30:00-05:00", "2026-03-07"),
                ("2026-03-08T00:30:00-05:00", "2026-03-08"),
                ("2026-03-08T23:30:00-04:00", "2026-03-08"),
                ("2026-03-09T00:30:00-04:00", "2026-03-09"),
                // 2026-11-01: clocks go from 02:00 EDT back to 01:00 EST.
                ("2026-10-31T23:30:00-04:00", "2026-10-31"),
                ("2026-11-01T00:30:00-04:00", "2026-11-01"),
                ("2026-11-01T01:30:00-04:00", "2026-11-01"),
                ("2026-11-01T01:30:00-05:00", "2026-11-01"),
                ("2026-11-01T23:30:00-05:00", "2026-11-01"),
                ("2026-11-02T00:30:00-05:00", "2026-11-02"),
            ],
        );
    }

    #[test]
    fn records_either_side_of_midnight_land_on_the_berlin_day() {
        assert_local_days(
            "Europe/Berlin",
            [3_600_000, 7_200_000],
            &[
                // Winter (CET) and summer (CEST).
                ("2026-01-15T23:30:00+01:00", "2026-01-15"),
                ("2026-01-16T00:30:00+01:00", "2026-01-16"),
                ("2026-07-15T23:30:00+02:00", "2026-07-15"),
                ("2026-07-16T00:30:00+02:00", "2026-07-16"),
                // 2026-03-29: clocks go from 02:00 CET to 03:00 CEST.
                ("2026-03-28T23:30:00+01:00", "2026-03-28"),
                ("2026-03-29T00:30:00+01:00", "2026-03-29"),
                ("2026-03-29T23:30:00+02:00", "2026-03-29"),
                ("2026-03-30T00:30:00+02:00", "2026-03-30"),
                // 2026-10-25: clocks go from 03:00 CEST back to 02:00 CET.
                ("2026-10-24T23:30:00+02:00", "2026-10-24"),
                ("2026-10-25T00:30:00+02:00", "2026-10-25"),
                ("2026-10-25T02:30:00+02:00", "2026-10-25"),
                ("2026-10-25T02:30:00+01:00", "2026-10-25"),
                ("2026-10-25T23:30:00+01:00", "2026-10-25"),
                ("2026-10-26T00:30:00+01:00", "2026-10-26"),
            ],
        );
    }

    #[test]
    fn change_days_last_23_and_25_hours() {
        let starts = |zone: &str, offset: i64, days: [&str; 3]| {
            let portal = portal_in(zone, offset);
            days.map(|d| iso(portal.day_start_ms(day(d))))
        };
        assert_eq!(
            starts("America/New_York", -18_000_000, ["2026-03-08", "2026-03-09", "2026-11-02"]),
            ["2026-03-08T05:00:00.000Z", "2026-03-09T04:00:00.000Z", "2026-11-02T05:00:00.000Z"]
        );
        assert_eq!(
            iso(portal_in("America/New_York", -18_000_000).day_start_ms(day("2026-11-01"))),
            "2026-11-01T04:00:00.000Z"
        );
        assert_eq!(
            starts("Europe/Berlin", 3_600_000, ["2026-03-29", "2026-03-30", "2026-10-26"]),
            ["2026-03-28T23:00:00.000Z", "2026-03-29T22:00:00.000Z", "2026-10-25T23:00:00.000Z"]
        );
        let berlin = portal_in("Europe/Berlin", 3_600_000);
        assert_eq!(iso(berlin.day_start_ms(day("2026-10-25"))), "2026-10-24T22:00:00.000Z");
        // A window over both change days: the search asks for exactly its instants.
        let window = DateWindow::new(day("2026-03-29"), day("2026-10-25")).unwrap();
        assert_eq!(
            berlin.window_ms(window),
            (at("2026-03-28T23:00:00Z").timestamp_millis(), at("2026-10-25T23:00:00Z").timestamp_millis())
        );
        // Every day of the year starts where the one before ends.
        for zone in ["America/New_York", "Europe/Berlin", "US/Eastern"] {
            let portal = portal_in(zone, 0);
            let mut hours = std::collections::BTreeMap::new();
            for d in day("2026-01-01").iter_days().take_while(|d| *d <= day("2026-12-31")) {
                let (start, end) = portal.window_ms(DateWindow::new(d, d).unwrap());
                assert_eq!(
                    (portal.day_of(start), portal.day_of(start - 1)),
                    (Some(d), d.pred_opt()),
                    "{zone} {d}"
                );
                assert_eq!(portal.day_of(end - 1), Some(d), "{zone} {d}");
                *hours.entry((end - start) / 3_600_000).or_insert(0) += 1;
            }
            assert_eq!(hours.into_iter().collect::<Vec<_>>(), [(23, 1), (24, 363), (25, 1)], "{zone}");
        }
    }

    #[test]
    fn the_daily_reset_is_the_portals_midnight_on_change_days() {
        let cases = [
            ("America/New_York", -18_000_000, "2026-03-08T04:30:00Z", "2026-03-08T05:00:00Z"),
            ("America/New_York", -18_000_000, "2026-03-08T12:00:00Z", "2026-03-09T04:00:00Z"),
            ("America/New_York", -14_400_000, "2026-11-01T03:30:00Z", "2026-11-01T04:00:00Z"),
            ("America/New_York", -14_400_000, "2026-11-01T12:00:00Z", "2026-11-02T05:00:00Z"),
            ("Europe/Berlin", 3_600_000, "2026-03-28T22:30:00Z", "2026-03-28T23:00:00Z"),
            ("Europe/Berlin", 3_600_000, "2026-03-29T10:00:00Z", "2026-03-29T22:00:00Z"),
            ("Europe/Berlin", 7_200_000, "2026-10-24T21:30:00Z", "2026-10-24T22:00:00Z"),
            ("Europe/Berlin", 7_200_000, "2026-10-25T10:00:00Z", "2026-10-25T23:00:00Z"),
        ];
        for (zone, offset, now, reset) in cases {
            assert_eq!(portal_in(zone, offset).next_midnight(at(now)), Some(at(reset)), "{zone} at {now}");
        }
    }

    #[test]
    fn legacy_zone_names_are_the_iana_zones() {
        // HubSpot reports legacy names like `US/Eastern`; chrono-tz has their rules.
        assert_eq!(eastern().zone(), Zone::Named(chrono_tz::US::Eastern));
        assert_eq!(eastern().unknown_zone(), None);
        let new_york = portal_in("America/New_York", -18_000_000);
        for instant in ["2026-03-08T04:30:00Z", "2026-07-16T04:30:00Z", "2026-11-01T04:30:00Z"] {
            let ms = at(instant).timestamp_millis();
            assert_eq!(eastern().day_of(ms), new_york.day_of(ms), "{instant}");
        }
        assert_eq!(portal_in(" Europe/Berlin ", 0).zone().to_string(), "Europe/Berlin");
    }

    #[test]
    fn a_zone_chrono_tz_does_not_know_falls_back_to_the_offset() {
        let unknown = portal_in("Mars/Olympus", -18_000_000);
        assert_eq!(unknown.unknown_zone(), Some("Mars/Olympus"));
        assert_eq!(unknown.zone(), Zone::Fixed(-18_000_000));
        assert_eq!(unknown.zone().to_string(), "UTC-05:00");
        assert_eq!(iso(unknown.day_start_ms(day("2026-07-16"))), "2026-07-16T05:00:00.000Z");
        let missing =
            Portal::from_details(br#"{"portalId": 7, "companyCurrency": "EUR", "utcOffset": "+05:30"}"#)
                .unwrap();
        assert_eq!((missing.unknown_zone(), missing.zone()), (None, Zone::Fixed(19_800_000)));
        assert_eq!(missing.zone().to_string(), "UTC+05:30");
        // A known zone needs no offset; an unknown one cannot do without.
        let no_offset = br#"{"portalId": 7, "companyCurrency": "EUR", "timeZone": "Europe/Berlin"}"#;
        assert_eq!(Portal::from_details(no_offset).unwrap().zone(), Zone::Named(chrono_tz::Europe::Berlin));
        let neither = br#"{"portalId": 7, "companyCurrency": "EUR", "timeZone": "Mars/Olympus"}"#;
        let error = Portal::from_details(neither).unwrap_err();
        assert!(error.to_string().contains("Mars/Olympus"), "{error}");
    }

    #[test]
    fn a_day_whose_midnight_is_skipped_starts_when_clocks_jump() {
        // Chile moves its clocks from 00:00 to 01:00 on 2026-09-06: that day has no midnight.
        let santiago = Zone::new("America/Santiago", 0);
        let d = day("2026-09-06");
        assert!(
            chrono_tz::America::Santiago
                .from_local_datetime(&d.and_hms_opt(0, 0, 0).unwrap())
                .earliest()
                .is_none()
        );
        let start = santiago.day_start_ms(d).unwrap();
        assert_eq!(iso(start), "2026-09-06T04:00:00.000Z");
        assert_eq!((santiago.day_of(start), santiago.day_of(start - 1)), (Some(d), d.pred_opt()));
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
