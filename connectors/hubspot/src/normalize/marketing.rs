//! Forms, form submissions (§6 of the wire notes) and marketing email statistics (§4). Unlike
//! CRM properties, these numbers are JSON numbers.

use chrono::NaiveDate;
use kpipe_core::Decimal;
use serde_json::Value;

use crate::portal::{Portal, parse_instant};
use crate::tally::Measure;

/// Which email statistics counter becomes which metric.
pub const EMAIL_COUNTERS: [(&str, Measure); 5] = [
    ("delivered", Measure::EmailsDelivered),
    ("open", Measure::EmailsOpened),
    ("click", Measure::EmailsClicked),
    ("bounce", Measure::EmailBounces),
    ("unsubscribed", Measure::EmailUnsubscribes),
];

/// A form of the forms listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormInfo {
    /// Its GUID.
    pub guid: String,
    /// Its name.
    pub name: Option<String>,
    /// The portal day it was created: no submissions before.
    pub created: NaiveDate,
}

/// A form of `GET /marketing/v3/forms`, or why it cannot be read.
pub fn form(value: &Value, portal: &Portal) -> Result<FormInfo, String> {
    let guid =
        value.get("id").and_then(Value::as_str).filter(|g| !g.is_empty()).ok_or("the form has no `id`")?;
    let created_text = value.get("createdAt").and_then(Value::as_str).ok_or("the form has no `createdAt`")?;
    let created = parse_instant(created_text)
        .and_then(|ms| portal.day_of(ms))
        .ok_or_else(|| format!("`createdAt` {created_text:?} is not a datetime"))?;
    let name = value.get("name").and_then(Value::as_str).map(str::to_owned);
    Ok(FormInfo { guid: guid.to_owned(), name, created })
}

/// A submission's `submittedAt` (epoch milliseconds), or why it cannot be read.
pub fn submission_time(value: &Value) -> Result<i64, String> {
    match value.get("submittedAt") {
        Some(Value::Number(n)) => {
            n.as_i64().ok_or_else(|| format!("`submittedAt` {n} is not epoch milliseconds"))
        }
        Some(Value::String(s)) => {
            parse_instant(s).ok_or_else(|| format!("`submittedAt` {s:?} is not a time"))
        }
        Some(other) => Err(format!("`submittedAt` {other} is not a time")),
        None => Err("the submission has no `submittedAt`".to_owned()),
    }
}

/// One day of one email's statistics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailDayFacts {
    /// The portal day the interval starts.
    pub day: NaiveDate,
    /// The counters present, as metrics.
    pub values: Vec<(Measure, Decimal)>,
}

/// A `DAY` interval of the statistics histogram, or why it cannot be read.
pub fn email_interval(value: &Value, portal: &Portal) -> Result<EmailDayFacts, String> {
    let start =
        value.pointer("/interval/start").and_then(Value::as_str).ok_or("the interval has no `start`")?;
    let day = parse_instant(start)
        .and_then(|ms| portal.day_of(ms))
        .ok_or_else(|| format!("interval start {start:?} is not a datetime"))?;
    let counters = value
        .pointer("/aggregations/counters")
        .and_then(Value::as_object)
        .ok_or("the interval has no `aggregations.counters`")?;
    let mut values = Vec::new();
    for (counter, measure) in EMAIL_COUNTERS {
        match counters.get(counter) {
            // The keys are not enumerated by the API: a missing counter is not reported.
            None | Some(Value::Null) => {}
            Some(Value::Number(n)) => {
                let count = n.as_u64().ok_or_else(|| format!("counter `{counter}` {n} is not a count"))?;
                let count =
                    i64::try_from(count).map_err(|_| format!("counter `{counter}` {n} is too large"))?;
                values.push((measure, Decimal::from_i64(count)));
            }
            Some(other) => return Err(format!("counter `{counter}` {other} is not a number")),
        }
    }
    Ok(EmailDayFacts { day, values })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn portal() -> Portal {
        Portal::from_details(
            br#"{"portalId": 62515, "companyCurrency": "USD", "utcOffsetMilliseconds": -18000000}"#,
        )
        .unwrap()
    }

    #[test]
    fn forms_and_submissions_follow_the_listing_shapes() {
        // §6: forms listing results and v1 submissions (submittedAt in epoch ms).
        let info = form(
            &json!({"id": "4e5d", "name": "Newsletter", "formType": "hubspot",
                                "createdAt": "2025-11-03T14:00:00.000Z", "archived": false}),
            &portal(),
        )
        .unwrap();
        assert_eq!(info.created, NaiveDate::from_ymd_opt(2025, 11, 3).unwrap());
        assert!(form(&json!({"name": "no id", "createdAt": "2025-11-03T14:00:00Z"}), &portal()).is_err());
        assert!(form(&json!({"id": "x", "createdAt": "last year"}), &portal()).is_err());
        assert_eq!(
            submission_time(&json!({"conversionId": "c", "submittedAt": 1714546800000_i64})),
            Ok(1_714_546_800_000)
        );
        assert!(submission_time(&json!({"submittedAt": "soon"})).is_err());
        assert!(submission_time(&json!({"submittedAt": -1.5})).is_err());
        assert!(submission_time(&json!({})).is_err());
    }

    #[test]
    fn histogram_intervals_become_email_metrics() {
        // §4: {"interval": {"start", "end"}, "aggregations": EmailStatisticsData}.
        let interval = json!({
            "interval": {"start": "2026-01-06T05:00:00.000Z", "end": "2026-01-07T05:00:00.000Z"},
            "aggregations": {
                "counters": {"sent": 4000, "delivered": 3950, "open": 900, "click": 120, "bounce": 50,
                             "spamreport": 1},
                "deviceBreakdown": {}, "qualifierStats": {}, "ratios": {"openratio": 22.78}}});
        let facts = email_interval(&interval, &portal()).unwrap();
        assert_eq!(facts.day, NaiveDate::from_ymd_opt(2026, 1, 6).unwrap());
        let shown: Vec<(Measure, String)> = facts.values.iter().map(|(m, v)| (*m, v.to_string())).collect();
        assert_eq!(
            shown,
            [
                (Measure::EmailsDelivered, "3950".into()),
                (Measure::EmailsOpened, "900".into()),
                (Measure::EmailsClicked, "120".into()),
                (Measure::EmailBounces, "50".into()),
            ]
        );
        let mut bad = interval.clone();
        bad["aggregations"]["counters"]["open"] = json!(-3);
        assert!(email_interval(&bad, &portal()).unwrap_err().contains("not a count"));
        bad["aggregations"]["counters"]["open"] = json!("900");
        assert!(email_interval(&bad, &portal()).is_err());
    }
}
