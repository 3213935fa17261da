//! The portal's days. HubSpot cuts days at the portal's midnight in its time zone (`timeZone`),
//! daylight saving time included, and reports the offset in force when asked (`utcOffset`). The
//! simulator knows the daylight saving rules of the US and EU zones named below, written out
//! here rather than taken from a time zone database, so that a connector's zone handling is
//! checked against an independent reckoning; under any other name the portal keeps
//! [`Portal::utc_offset_minutes`] all year.

use chrono::{DateTime, Datelike, NaiveDate, Weekday};

use super::Portal;
use super::data::{day_start_ms, local_day};

/// US zones: daylight saving time from the second Sunday of March, 02:00 standard time, to the
/// first Sunday of November, 02:00 daylight time.
const US_ZONES: [&str; 8] = [
    "US/Eastern",
    "America/New_York",
    "US/Central",
    "America/Chicago",
    "US/Mountain",
    "America/Denver",
    "US/Pacific",
    "America/Los_Angeles",
];

/// EU zones: summer time from the last Sunday of March to the last Sunday of October, both at
/// 01:00 UTC.
const EU_ZONES: [&str; 18] = [
    "Europe/London",
    "Europe/Dublin",
    "Europe/Lisbon",
    "Europe/Amsterdam",
    "Europe/Berlin",
    "Europe/Brussels",
    "Europe/Copenhagen",
    "Europe/Madrid",
    "Europe/Oslo",
    "Europe/Paris",
    "Europe/Prague",
    "Europe/Rome",
    "Europe/Stockholm",
    "Europe/Vienna",
    "Europe/Warsaw",
    "Europe/Zurich",
    "Europe/Athens",
    "Europe/Helsinki",
];

const HOUR_MS: i64 = 3_600_000;

/// Epoch milliseconds of `hour`:00 UTC on `day`.
fn utc_ms(day: NaiveDate, hour: u32) -> i64 {
    day.and_hms_opt(hour, 0, 0).map_or(0, |t| t.and_utc().timestamp_millis())
}

fn nth_sunday(year: i32, month: u32, n: u8) -> Option<NaiveDate> {
    NaiveDate::from_weekday_of_month_opt(year, month, Weekday::Sun, n)
}

fn last_sunday(year: i32, month: u32) -> Option<NaiveDate> {
    nth_sunday(year, month, 5).or_else(|| nth_sunday(year, month, 4))
}

impl Portal {
    /// `[start, end)` of daylight saving time in `year`, in epoch milliseconds; `None` for a zone
    /// without.
    fn daylight_saving(&self, year: i32) -> Option<(i64, i64)> {
        let standard = i64::from(self.utc_offset_minutes) * 60_000;
        let zone = self.time_zone.as_str();
        if US_ZONES.contains(&zone) {
            let (start, end) = (nth_sunday(year, 3, 2)?, nth_sunday(year, 11, 1)?);
            Some((utc_ms(start, 2) - standard, utc_ms(end, 2) - standard - HOUR_MS))
        } else if EU_ZONES.contains(&zone) {
            Some((utc_ms(last_sunday(year, 3)?, 1), utc_ms(last_sunday(year, 10)?, 1)))
        } else {
            None
        }
    }

    /// The offset east of UTC in force at `ms`, in minutes.
    #[must_use]
    pub fn offset_minutes_at(&self, ms: i64) -> i32 {
        let year = DateTime::from_timestamp_millis(ms).map_or(1970, |t| t.year());
        match self.daylight_saving(year) {
            Some((start, end)) if (start..end).contains(&ms) => self.utc_offset_minutes + 60,
            _ => self.utc_offset_minutes,
        }
    }

    /// Epoch milliseconds of the portal's midnight starting `day` (clocks of the zones above
    /// never change at midnight).
    #[must_use]
    pub fn day_start_ms(&self, day: NaiveDate) -> i64 {
        let standard = day_start_ms(day, self.utc_offset_minutes);
        if self.offset_minutes_at(standard) == self.utc_offset_minutes {
            standard
        } else {
            day_start_ms(day, self.utc_offset_minutes + 60)
        }
    }

    /// The portal day of an instant.
    #[must_use]
    pub fn local_day(&self, ms: i64) -> NaiveDate {
        local_day(ms, self.offset_minutes_at(ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn portal(zone: &str, standard: i32) -> Portal {
        Portal {
            time_zone: zone.to_owned(),
            utc_offset_minutes: standard,
            ..super::super::HubSpotApi::default().portal
        }
    }

    fn ms(text: &str) -> i64 {
        DateTime::parse_from_rfc3339(text).unwrap().timestamp_millis()
    }

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn us_and_eu_zones_keep_daylight_saving_time() {
        let new_york = portal("America/New_York", -300);
        let berlin = portal("Europe/Berlin", 60);
        let starts =
            |p: &Portal, days: &[&str]| -> Vec<i64> { days.iter().map(|d| p.day_start_ms(day(d))).collect() };
        assert_eq!(
            starts(&new_york, &["2026-01-15", "2026-03-08", "2026-03-09", "2026-11-01", "2026-11-02"]),
            [
                "2026-01-15T05:00:00Z",
                "2026-03-08T05:00:00Z",
                "2026-03-09T04:00:00Z",
                "2026-11-01T04:00:00Z",
                "2026-11-02T05:00:00Z"
            ]
            .map(ms)
        );
        assert_eq!(
            starts(&berlin, &["2026-01-15", "2026-03-29", "2026-03-30", "2026-10-25", "2026-10-26"]),
            [
                "2026-01-14T23:00:00Z",
                "2026-03-28T23:00:00Z",
                "2026-03-29T22:00:00Z",
                "2026-10-24T22:00:00Z",
                "2026-10-25T23:00:00Z"
            ]
            .map(ms)
        );
        // The clocks change at 02:00 local time in New York, at 01:00 UTC in Berlin.
        assert_eq!(new_york.offset_minutes_at(ms("2026-03-08T06:59:59Z")), -300);
        assert_eq!(new_york.offset_minutes_at(ms("2026-03-08T07:00:00Z")), -240);
        assert_eq!(new_york.offset_minutes_at(ms("2026-11-01T05:59:59Z")), -240);
        assert_eq!(new_york.offset_minutes_at(ms("2026-11-01T06:00:00Z")), -300);
        assert_eq!(berlin.offset_minutes_at(ms("2026-03-29T00:59:59Z")), 60);
        assert_eq!(berlin.offset_minutes_at(ms("2026-03-29T01:00:00Z")), 120);
        assert_eq!(berlin.offset_minutes_at(ms("2026-10-25T01:00:00Z")), 60);
        assert_eq!(new_york.local_day(ms("2026-07-16T00:30:00-04:00")), day("2026-07-16"));
        assert_eq!(berlin.local_day(ms("2026-07-15T23:30:00+02:00")), day("2026-07-15"));
        // Any other name keeps its offset all year.
        let fixed = portal("America/Bogota", -300);
        assert_eq!(fixed.day_start_ms(day("2026-07-16")), ms("2026-07-16T05:00:00Z"));
    }
}
