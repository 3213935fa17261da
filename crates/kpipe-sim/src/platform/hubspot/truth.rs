//! What the portal's records add up to per day, as HubSpot's own reports count them: the rows a
//! connector must write for a window. Days are the portal's days.
//!
//! - contacts created on a day, by original source (`hs_analytics_source`) or not; leads are the
//!   ones whose lifecycle stage is, or has been, one of the lead stages;
//! - per deal pipeline: deals created on a day, deals closed won on a day (a won stage and a
//!   `closedate` that day) and their amounts per currency; a deal whose amount is not a number
//!   counts nowhere;
//! - per form: submissions every day from the form's creation on, zeros included;
//! - per marketing email: delivered, opened, clicked, bounced, unsubscribed, on the days with
//!   statistics;
//! - per survey: responses; NPS responses bucketed by score (9-10, 7-8, 0-6, all three written
//!   for a day with responses), CSAT responses answered happy.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use super::data::{CrmRecord, parse_ms};
use super::{HubSpotApi, SurveyKind};

/// One row a connector must write.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ExpectedRow {
    /// `account`, `deal_pipeline`, `form`, `email` or `survey`.
    pub level: &'static str,
    /// The portal, pipeline, form, email or survey id.
    pub entity_id: String,
    /// The portal day.
    pub date: NaiveDate,
    /// The original source of contacts, when leads are broken down by it.
    pub channel: Option<String>,
    /// The canonical metric name, or `hubspot.<name>`.
    pub metric: &'static str,
    /// The currency of money.
    pub currency: Option<String>,
    /// The exact value.
    pub value: String,
}

/// How the rows are cut (the connector's settings they correspond to).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TruthOptions {
    /// Lifecycle stages that make a contact a lead.
    pub lead_stages: Vec<String>,
    /// Whether contacts are broken down by `hs_analytics_source`.
    pub leads_by_source: bool,
    /// Only these deal pipelines (all when `None`).
    pub pipelines: Option<Vec<String>>,
}

impl Default for TruthOptions {
    fn default() -> Self {
        Self {
            lead_stages: ["lead", "marketingqualifiedlead", "salesqualifiedlead"].map(str::to_owned).to_vec(),
            leads_by_source: true,
            pipelines: None,
        }
    }
}

/// Exact decimal amounts in hundredths.
fn cents(text: &str) -> Option<i128> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) || fraction.len() > 2 {
        return None;
    }
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let fraction: i128 = format!("{fraction:0<2}").parse().ok()?;
    Some(whole.parse::<i128>().ok()? * 100 + fraction)
}

fn money(cents: i128) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

impl HubSpotApi {
    fn day_of(&self, record: &CrmRecord, property: &str) -> Option<NaiveDate> {
        let ms = parse_ms(record.get(property)?)?;
        Some(self.portal.local_day(ms))
    }

    /// The deals whose `amount` is not a number and that a search for `since..=until` finds
    /// (created then, or closed won then): what a connector quarantines.
    #[must_use]
    pub fn poisoned_deals(&self, seed: u64, since: NaiveDate, until: NaiveDate) -> Vec<u64> {
        let won = self.won_stages();
        let in_window = |d: Option<NaiveDate>| d.is_some_and(|d| since <= d && d <= until);
        self.dataset(seed)
            .deals
            .iter()
            .filter(|d| d.get("amount").is_some_and(|a| cents(a).is_none()))
            .filter(|d| {
                in_window(self.day_of(d, "createdate"))
                    || (d.get("dealstage").is_some_and(|s| won.contains(&s))
                        && in_window(self.day_of(d, "closedate")))
            })
            .map(|d| d.id)
            .collect()
    }

    /// Every row a connector must write for `since..=until` (portal days), sorted.
    #[must_use]
    pub fn expected_rows(
        &self,
        seed: u64,
        since: NaiveDate,
        until: NaiveDate,
        options: &TruthOptions,
    ) -> Vec<ExpectedRow> {
        let data = self.dataset(seed);
        let in_window = |d: NaiveDate| since <= d && d <= until;
        let portal = self.portal.id.to_string();
        let mut rows = Vec::new();
        let mut row =
            |level, entity: &str, date, channel: Option<String>, metric, currency, value: String| {
                rows.push(ExpectedRow {
                    level,
                    entity_id: entity.to_owned(),
                    date,
                    channel,
                    metric,
                    currency,
                    value,
                });
            };

        // Contacts: (day, source) -> (created, leads).
        let mut contacts: BTreeMap<(NaiveDate, Option<String>), (u64, u64)> = BTreeMap::new();
        for contact in &data.contacts {
            let Some(day) = self.day_of(contact, "createdate").filter(|d| in_window(*d)) else { continue };
            let source = options
                .leads_by_source
                .then(|| contact.get("hs_analytics_source").unwrap_or("UNKNOWN").to_owned());
            let lead = options.lead_stages.iter().any(|stage| {
                contact.get("lifecyclestage") == Some(stage.as_str())
                    || contact.get(&format!("hs_lifecyclestage_{stage}_date")).is_some()
            });
            let counts = contacts.entry((day, source)).or_default();
            counts.0 += 1;
            counts.1 += u64::from(lead);
        }
        for ((day, source), (created, leads)) in contacts {
            row(
                "account",
                &portal,
                day,
                source.clone(),
                "hubspot.contacts_created",
                None,
                created.to_string(),
            );
            row("account", &portal, day, source, "leads", None, leads.to_string());
        }

        // Deals: (pipeline, day) -> (created, won), and revenue per currency.
        let won_stages = self.won_stages();
        let mut deals: BTreeMap<(String, NaiveDate), (u64, u64)> = BTreeMap::new();
        let mut revenue: BTreeMap<(String, NaiveDate, String), i128> = BTreeMap::new();
        for deal in &data.deals {
            let Some(pipeline) = deal.get("pipeline") else { continue };
            if options.pipelines.as_ref().is_some_and(|p| !p.iter().any(|id| id == pipeline)) {
                continue;
            }
            let amount = match deal.get("amount") {
                Some(text) => match cents(text) {
                    Some(c) => Some(c),
                    None => continue,
                },
                None => None,
            };
            if let Some(day) = self.day_of(deal, "createdate").filter(|d| in_window(*d)) {
                deals.entry((pipeline.to_owned(), day)).or_default().0 += 1;
            }
            let won = deal.get("dealstage").is_some_and(|s| won_stages.contains(&s));
            if let Some(day) = self.day_of(deal, "closedate").filter(|d| won && in_window(*d)) {
                deals.entry((pipeline.to_owned(), day)).or_default().1 += 1;
                if let Some(amount) = amount {
                    let currency = deal.get("deal_currency_code").unwrap_or(&self.portal.currency).to_owned();
                    *revenue.entry((pipeline.to_owned(), day, currency)).or_default() += amount;
                }
            }
        }
        for ((pipeline, day), (created, won)) in deals {
            row("deal_pipeline", &pipeline, day, None, "deals_created", None, created.to_string());
            row("deal_pipeline", &pipeline, day, None, "deals_won", None, won.to_string());
        }
        for ((pipeline, day, currency), total) in revenue {
            row("deal_pipeline", &pipeline, day, None, "revenue", Some(currency), money(total));
        }

        // Forms: every day from creation on.
        for (form, submissions) in self.forms.iter().zip(&data.submissions) {
            let mut counts: BTreeMap<NaiveDate, u64> = BTreeMap::new();
            for s in submissions {
                *counts.entry(self.portal.local_day(s.submitted_ms)).or_default() += 1;
            }
            for day in since.max(form.created).iter_days().take_while(|d| *d <= until) {
                let n = counts.get(&day).copied().unwrap_or(0);
                row("form", &form.guid, day, None, "form_submissions", None, n.to_string());
            }
        }

        // Marketing email statistics.
        let email_metrics = [
            ("delivered", "emails_delivered"),
            ("open", "emails_opened"),
            ("click", "emails_clicked"),
            ("bounce", "hubspot.email_bounces"),
            ("unsubscribed", "hubspot.email_unsubscribes"),
        ];
        for day in data.email_days.iter().filter(|d| in_window(d.day)) {
            for (counter, metric) in email_metrics {
                if let Some(value) = day.counters.get(counter) {
                    row("email", &day.email_id.to_string(), day.day, None, metric, None, value.to_string());
                }
            }
        }

        // Survey responses: (survey, day) -> (responses, promoters, passives, detractors, satisfied).
        let mut surveys: BTreeMap<(String, NaiveDate), [u64; 5]> = BTreeMap::new();
        for response in &data.feedback {
            let Some(day) = self.day_of(response, "hs_createdate").filter(|d| in_window(*d)) else {
                continue;
            };
            let Some(survey) = response.get("hs_survey_id") else { continue };
            let counts = surveys.entry((survey.to_owned(), day)).or_default();
            counts[0] += 1;
            let value: u64 = response.get("hs_value").and_then(|v| v.parse().ok()).unwrap_or(0);
            match response.get("hs_survey_type") {
                Some("NPS") => match value {
                    9.. => counts[1] += 1,
                    7 | 8 => counts[2] += 1,
                    _ => counts[3] += 1,
                },
                Some("CSAT") => counts[4] += u64::from(response.get("hs_response_group") == Some("PROMOTER")),
                _ => {}
            }
        }
        for ((survey, day), counts) in surveys {
            let kind = self.surveys.iter().find(|s| s.id.to_string() == survey).map(|s| s.kind);
            row("survey", &survey, day, None, "survey_responses", None, counts[0].to_string());
            match kind {
                Some(SurveyKind::Nps) => {
                    row("survey", &survey, day, None, "nps_promoters", None, counts[1].to_string());
                    row("survey", &survey, day, None, "nps_passives", None, counts[2].to_string());
                    row("survey", &survey, day, None, "nps_detractors", None, counts[3].to_string());
                }
                Some(SurveyKind::Csat) => {
                    row("survey", &survey, day, None, "csat_satisfied", None, counts[4].to_string());
                }
                _ => {}
            }
        }
        rows.sort();
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_read_exactly() {
        assert_eq!(cents("12500"), Some(1_250_000));
        assert_eq!(cents("1999.5"), Some(199_950));
        assert_eq!(cents("1999.05"), Some(199_905));
        assert_eq!(cents(super::super::POISONED_AMOUNT), None);
        assert_eq!(money(199_905), "1999.05");
    }
}
