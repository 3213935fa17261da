//! API report rows to metric rows. One report row (a campaign on a day) becomes one metric row
//! per metric; an element that cannot be read is refused with the reason, for the quarantine.

use chrono::NaiveDate;
use kpipe_core::{Currency, Decimal, Dimensions, Label, Metric, MetricRow};
use serde_json::Value;

/// The `platform` column of every row.
pub const PLATFORM: &str = "template";

/// The `level` column of every row: a report row is a campaign's day.
pub const LEVEL: &str = "campaign";

/// One element of a report page, numbers as the API sends them (strings).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct ReportRow {
    /// `YYYY-MM-DD`, in the account's time zone.
    pub date: String,
    /// The campaign.
    pub campaign_id: String,
    /// Its name.
    pub campaign_name: Option<String>,
    /// Times shown.
    pub impressions: String,
    /// Clicks.
    pub clicks: String,
    /// Amount spent in the account currency.
    pub spend: String,
}

/// The account a page belongs to: what every row of it shares.
#[derive(Debug, Clone)]
pub struct AccountContext {
    /// The ad account.
    pub account_id: Label,
    /// Its currency, for `spend`.
    pub currency: Currency,
}

/// Which API field becomes which canonical metric (the mapping table of the README).
pub const FIELD_METRICS: [(&str, Metric); 3] =
    [("impressions", Metric::Impressions), ("clicks", Metric::Clicks), ("spend", Metric::Spend)];

/// The metric rows of one report element, or why it cannot be read.
pub fn normalize(element: &Value, account: &AccountContext) -> Result<Vec<MetricRow>, String> {
    let row: ReportRow =
        serde_json::from_value(element.clone()).map_err(|e| format!("unexpected shape: {e}"))?;
    let date = NaiveDate::parse_from_str(&row.date, "%Y-%m-%d")
        .map_err(|_| format!("`date` {:?} is not YYYY-MM-DD", row.date))?;
    if row.campaign_id.is_empty() {
        return Err("`campaign_id` is empty".into());
    }
    let entity_id = Label::from(row.campaign_id.clone());
    let entity_name = row.campaign_name.clone().filter(|n| !n.is_empty()).map(Label::from);
    let mut rows = Vec::with_capacity(FIELD_METRICS.len());
    for (field, metric) in FIELD_METRICS {
        let text = match field {
            "impressions" => &row.impressions,
            "clicks" => &row.clicks,
            _ => &row.spend,
        };
        let value: Decimal = text.parse().map_err(|e| format!("`{field}`: {e}"))?;
        let money = metric == Metric::Spend;
        if !money && value.units() % Decimal::from_i64(1).units() != 0 {
            return Err(format!("`{field}` {text:?} is a count but not a whole number"));
        }
        rows.push(MetricRow {
            platform: Label::from(PLATFORM),
            account_id: account.account_id.clone(),
            level: Label::from(LEVEL),
            entity_id: entity_id.clone(),
            entity_name: entity_name.clone(),
            date,
            dimensions: Dimensions::default(),
            metric: metric.into(),
            value,
            currency: money.then_some(account.currency),
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn account() -> AccountContext {
        AccountContext { account_id: "1001".into(), currency: Currency::parse("USD").unwrap() }
    }

    #[test]
    fn a_report_row_becomes_three_exact_metric_rows() {
        let element = json!({"date": "2026-10-01", "campaign_id": "1001-1", "campaign_name": "Campaign 1",
                             "impressions": "1520", "clicks": "37", "spend": "41.07"});
        let rows = normalize(&element, &account()).unwrap();
        let values: Vec<(String, String, Option<String>)> = rows
            .iter()
            .map(|r| {
                (
                    r.metric.as_str().to_owned(),
                    r.value.to_string(),
                    r.currency.as_ref().map(|c| c.as_str().to_owned()),
                )
            })
            .collect();
        assert_eq!(
            values,
            [
                ("impressions".into(), "1520".into(), None),
                ("clicks".into(), "37".into(), None),
                ("spend".into(), "41.07".into(), Some("USD".into())),
            ]
        );
        assert!(rows.iter().all(|r| r.entity_id.as_ref() == "1001-1" && r.level.as_ref() == "campaign"));
    }

    #[test]
    fn unreadable_elements_are_refused_with_the_reason() {
        let base = json!({"date": "2026-10-01", "campaign_id": "c", "impressions": "1", "clicks": "1", "spend": "1"});
        let with = |k: &str, v: Value| {
            let mut e = base.clone();
            e[k] = v;
            normalize(&e, &account()).unwrap_err()
        };
        assert!(with("impressions", json!("many")).starts_with("`impressions`"));
        assert!(with("clicks", json!("1.5")).contains("not a whole number"));
        assert!(with("date", json!("01/10/2026")).contains("not YYYY-MM-DD"));
        assert!(with("spend", json!(12)).starts_with("unexpected shape"));
    }
}
