//! Cron expressions read in a time zone, and their fire times.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;

/// What is wrong with a schedule.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// The expression does not parse.
    #[error("`{expression}` is not a cron expression: {reason}")]
    Expression {
        /// The expression given.
        expression: String,
        /// The parser's reason.
        reason: String,
    },
    /// The time zone is not an IANA name.
    #[error("`{0}` is not a time zone; expected an IANA name such as UTC, Europe/Berlin or America/New_York")]
    TimeZone(String),
    /// The expression has no fire time after this one (such as `0 0 30 2 *`, February 30th).
    #[error("`{expression}` has no fire time after {after}")]
    NoFireTime {
        /// The expression.
        expression: String,
        /// The time searched from.
        after: DateTime<Utc>,
    },
}

/// The fields of a six-field expression; a five-field one has no seconds.
const FIELDS: [&str; 6] = ["second", "minute", "hour", "day-of-month", "month", "day-of-week"];

/// A cron expression in a time zone: five fields (minute hour day-of-month month day-of-week),
/// or six with seconds first.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    cron: Cron,
    time_zone: Tz,
    expression: String,
}

impl CronSchedule {
    /// Parses `expression`, read in `time_zone`.
    pub fn parse(expression: &str, time_zone: Tz) -> Result<CronSchedule, ScheduleError> {
        let fail = |reason: String| ScheduleError::Expression { expression: expression.to_owned(), reason };
        let fields: Vec<&str> = expression.split_whitespace().collect();
        let names: &[&str] = match fields.len() {
            5 => &FIELDS[1..],
            6 => &FIELDS,
            n => {
                return Err(fail(format!(
                    "it has {n} field(s); expected 5 (minute hour day-of-month month day-of-week) \
                     or 6 (second first)"
                )));
            }
        };
        let cron: Cron = expression.parse().map_err(|e: croner::errors::CronError| {
            // Name the field: croner's message ("Number out of bounds") does not.
            let culprit = fields.iter().zip(names).find(|(field, name)| {
                let mut alone: Vec<&str> = names.iter().map(|_| "*").collect();
                if let Some(slot) = names.iter().position(|n| n == *name) {
                    alone[slot] = field;
                }
                alone.join(" ").parse::<Cron>().is_err()
            });
            match culprit {
                Some((field, name)) => fail(format!("{name} `{field}`: {e}")),
                None => fail(e.to_string()),
            }
        })?;
        Ok(CronSchedule { cron, time_zone, expression: expression.trim().to_owned() })
    }

    /// The first fire time strictly after `after`. In a daylight-saving gap a fixed time runs at
    /// the first valid time after the gap; in a repeated hour it runs once.
    pub fn next_after(&self, after: DateTime<Utc>) -> Result<DateTime<Utc>, ScheduleError> {
        let local = after.with_timezone(&self.time_zone);
        self.cron
            .find_next_occurrence(&local, false)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| ScheduleError::NoFireTime { expression: self.expression.clone(), after })
    }

    /// The time zone.
    pub fn time_zone(&self) -> Tz {
        self.time_zone
    }

    /// The expression as given.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// `t` in the schedule's time zone, for messages.
    pub fn local(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.time_zone).format("%Y-%m-%d %H:%M:%S %Z").to_string()
    }
}

/// An IANA time zone name.
pub fn parse_time_zone(name: &str) -> Result<Tz, ScheduleError> {
    name.trim().parse::<Tz>().map_err(|_| ScheduleError::TimeZone(name.to_owned()))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// An RFC 3339 instant (the scheduler's tests use it too).
    pub(crate) fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).expect("a date").with_timezone(&Utc)
    }

    /// A parsed expression in a named zone.
    pub(crate) fn schedule(expression: &str, tz: &str) -> CronSchedule {
        CronSchedule::parse(expression, parse_time_zone(tz).expect("zone")).expect("expression")
    }

    #[test]
    fn fire_times_are_read_in_the_time_zone_across_daylight_saving() {
        let s = schedule("0 3 * * *", "Europe/Berlin");
        // 03:00 CET is 02:00 UTC; from 2026-03-29 on, 03:00 CEST is 01:00 UTC.
        assert_eq!(s.next_after(utc("2026-03-27T12:00:00Z")).ok(), Some(utc("2026-03-28T02:00:00Z")));
        assert_eq!(s.next_after(utc("2026-03-28T12:00:00Z")).ok(), Some(utc("2026-03-29T01:00:00Z")));
        // Strictly after: the fire time itself gives the next day's.
        assert_eq!(s.next_after(utc("2026-03-29T01:00:00Z")).ok(), Some(utc("2026-03-30T01:00:00Z")));
        assert_eq!(s.local(utc("2026-03-29T01:00:00Z")), "2026-03-29 03:00:00 CEST");
        // 02:30 does not exist on 2026-03-29 in Berlin: it runs once, right after the gap.
        let gap = schedule("30 2 * * *", "Europe/Berlin");
        assert_eq!(gap.next_after(utc("2026-03-28T12:00:00Z")).ok(), Some(utc("2026-03-29T01:00:00Z")));
        assert_eq!(
            schedule("0 3 * * *", "UTC").next_after(utc("2026-03-28T12:00:00Z")).ok(),
            Some(utc("2026-03-29T03:00:00Z"))
        );
    }

    #[test]
    fn six_fields_have_seconds_and_mistakes_are_named() {
        let s = schedule("*/10 * * * * *", "UTC");
        assert_eq!(s.next_after(utc("2026-01-01T00:00:05.5Z")).ok(), Some(utc("2026-01-01T00:00:10Z")));
        let every_second = schedule("* * * * * *", "UTC");
        assert_eq!(
            every_second.next_after(utc("2026-01-01T00:00:05.5Z")).ok(),
            Some(utc("2026-01-01T00:00:06Z"))
        );
        let err = CronSchedule::parse("0 3 * *", Tz::UTC).expect_err("four fields");
        assert!(err.to_string().starts_with("`0 3 * *` is not a cron expression: "), "{err}");
        let err = CronSchedule::parse("61 3 * * *", Tz::UTC).expect_err("minute 61");
        assert!(err.to_string().contains(": minute `61`: "), "{err}");
        let err = CronSchedule::parse("0 0 3 * * 9", Tz::UTC).expect_err("day-of-week 9");
        assert!(err.to_string().contains(": day-of-week `9`: "), "{err}");
        // Seven fields (a year) would otherwise be taken, and fire hourly.
        let err = CronSchedule::parse("0 3 * * * * *", Tz::UTC).expect_err("seven fields");
        assert!(err.to_string().contains("it has 7 field(s); expected 5"), "{err}");
        assert_eq!(
            parse_time_zone("Mars/Olympus").expect_err("no such zone").to_string(),
            "`Mars/Olympus` is not a time zone; expected an IANA name such as UTC, Europe/Berlin or \
             America/New_York"
        );
        let never = schedule("0 0 30 2 *", "UTC");
        assert!(matches!(
            never.next_after(utc("2026-01-01T00:00:00Z")),
            Err(ScheduleError::NoFireTime { .. })
        ));
    }
}
