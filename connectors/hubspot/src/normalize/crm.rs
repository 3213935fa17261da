//! Contacts, deals and survey responses (CRM search results, §2-§3 of the wire notes).

use chrono::NaiveDate;
use kpipe_core::{Currency, Decimal};
use serde_json::Value;

use super::Record;
use crate::portal::Portal;
use crate::tally::Measure;

/// How contacts are counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactSettings {
    /// Lifecycle stages that make a contact a lead.
    pub lead_stages: Vec<String>,
    /// The property holding the original source, when contacts are broken down by it.
    pub source_property: Option<String>,
}

impl ContactSettings {
    /// The properties a contact search must return.
    pub fn properties(&self) -> Vec<String> {
        let mut names =
            vec!["createdate".to_owned(), "lastmodifieddate".to_owned(), "lifecyclestage".to_owned()];
        names.extend(self.source_property.iter().cloned());
        names.extend(self.lead_stages.iter().map(|s| stage_date_property(s)));
        names
    }
}

/// The property recording when a contact entered a lifecycle stage.
pub fn stage_date_property(stage: &str) -> String {
    format!("hs_lifecyclestage_{stage}_date")
}

/// What one contact counts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactFacts {
    /// The portal day it was created.
    pub day: NaiveDate,
    /// Its original source (`UNKNOWN` when it has none), when broken down by source.
    pub channel: Option<String>,
    /// Whether its lifecycle stage is, or has been, a lead stage.
    pub lead: bool,
}

/// A contact's facts, or why it cannot be read.
pub fn contact(value: &Value, portal: &Portal, settings: &ContactSettings) -> Result<ContactFacts, String> {
    let record = Record::of(value)?;
    let created = record.instant("createdate")?.ok_or("`createdate` is missing")?;
    let day = portal.day_of(created).ok_or("`createdate` is out of range")?;
    let stage = record.text("lifecyclestage")?;
    let mut lead = stage.is_some_and(|s| settings.lead_stages.iter().any(|l| l == s));
    // A contact that moved on (to opportunity, customer) was still a lead when it entered a
    // lead stage: HubSpot keeps the date it did.
    for name in settings.lead_stages.iter().map(|s| stage_date_property(s)) {
        lead |= record.instant(&name)?.is_some();
    }
    let channel = match &settings.source_property {
        Some(property) => Some(record.text(property)?.unwrap_or("UNKNOWN").to_owned()),
        None => None,
    };
    Ok(ContactFacts { day, channel, lead })
}

/// What one deal counts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DealFacts {
    /// `pipeline`.
    pub pipeline: String,
    /// The portal day it was created.
    pub created: NaiveDate,
    /// The portal day of `closedate`, if set (open deals may carry an expected one).
    pub closed: Option<NaiveDate>,
    /// `dealstage`.
    pub stage: Option<String>,
    /// `amount`, exact.
    pub amount: Option<Decimal>,
    /// `deal_currency_code`, or the portal's currency.
    pub currency: Currency,
}

/// A deal's facts, or why it cannot be read.
pub fn deal(value: &Value, portal: &Portal) -> Result<DealFacts, String> {
    let record = Record::of(value)?;
    let pipeline = record.required("pipeline")?.to_owned();
    let created = record.instant("createdate")?.ok_or("`createdate` is missing")?;
    let created = portal.day_of(created).ok_or("`createdate` is out of range")?;
    let closed = match record.instant("closedate")? {
        Some(ms) => Some(portal.day_of(ms).ok_or("`closedate` is out of range")?),
        None => None,
    };
    let amount = record.decimal("amount")?;
    let currency = match record.text("deal_currency_code")? {
        Some(code) => Currency::parse(code.trim())
            .ok_or_else(|| format!("`deal_currency_code` {code:?} is not an ISO 4217 currency"))?,
        None => portal.currency,
    };
    Ok(DealFacts {
        pipeline,
        created,
        closed,
        stage: record.text("dealstage")?.map(str::to_owned),
        amount,
        currency,
    })
}

/// What a survey response says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SurveyAnswer {
    /// An NPS score, 0 to 10.
    Nps(u8),
    /// A CSAT answer.
    Csat {
        /// Answered happy (`hs_response_group` `PROMOTER`, or `hs_value` 2).
        satisfied: bool,
    },
    /// Another survey type (CES, custom): a response, nothing more.
    Other,
}

/// What one survey response counts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedbackFacts {
    /// `hs_survey_id`.
    pub survey: String,
    /// `hs_survey_name`.
    pub survey_name: Option<String>,
    /// The portal day it was submitted.
    pub day: NaiveDate,
    /// The answer.
    pub answer: SurveyAnswer,
}

/// The NPS bucket of a score: 9-10 promoter, 7-8 passive, 0-6 detractor.
pub fn nps_bucket(score: u8) -> Measure {
    match score {
        9.. => Measure::NpsPromoters,
        7 | 8 => Measure::NpsPassives,
        _ => Measure::NpsDetractors,
    }
}

/// A whole number within `range` written as a string (`"9"`, `"9.0"`).
fn score(record: &Record<'_>, range: std::ops::RangeInclusive<u8>) -> Result<Option<u8>, String> {
    let Some(value) = record.decimal("hs_value")? else { return Ok(None) };
    let whole = value.is_integer().then(|| value.units() / Decimal::from_i64(1).units());
    match whole.and_then(|w| u8::try_from(w).ok()).filter(|s| range.contains(s)) {
        Some(s) => Ok(Some(s)),
        None => Err(format!("`hs_value` {value} is not a score from {} to {}", range.start(), range.end())),
    }
}

/// A survey response's facts, or why it cannot be read.
pub fn feedback(value: &Value, portal: &Portal) -> Result<FeedbackFacts, String> {
    let record = Record::of(value)?;
    let survey = record.required("hs_survey_id")?.to_owned();
    let created = record.instant("hs_createdate")?.ok_or("`hs_createdate` is missing")?;
    let day = portal.day_of(created).ok_or("`hs_createdate` is out of range")?;
    let kind = record.text("hs_survey_type")?.map(str::to_ascii_uppercase);
    let answer = match kind.as_deref() {
        Some("NPS") => {
            SurveyAnswer::Nps(score(&record, 0..=10)?.ok_or("an NPS response without `hs_value`")?)
        }
        Some("CSAT") => {
            let satisfied = match record.text("hs_response_group")?.map(str::to_ascii_uppercase).as_deref() {
                Some("PROMOTER") => true,
                Some("PASSIVE" | "DETRACTOR") => false,
                Some(other) => return Err(format!("`hs_response_group` {other:?} is not a CSAT answer")),
                // HubSpot's CSAT scale: 0 unhappy, 1 neutral, 2 happy.
                None => score(&record, 0..=2)?.ok_or("a CSAT response without answer")? == 2,
            };
            SurveyAnswer::Csat { satisfied }
        }
        _ => SurveyAnswer::Other,
    };
    let survey_name = record.text("hs_survey_name")?.map(str::to_owned);
    Ok(FeedbackFacts { survey, survey_name, day, answer })
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

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    fn settings() -> ContactSettings {
        ContactSettings {
            lead_stages: ["lead", "marketingqualifiedlead", "salesqualifiedlead"].map(str::to_owned).to_vec(),
            source_property: Some("hs_analytics_source".to_owned()),
        }
    }

    // Contact shape of §2 (search results carry the same object without associations, §3).
    fn contact_json(stage: &str, extra: serde_json::Value) -> Value {
        let mut properties = json!({
            "createdate": "2026-10-01T03:12:44.201Z", "lastmodifieddate": "2026-10-03T17:25:03.987Z",
            "hs_object_id": "51", "lifecyclestage": stage, "hs_analytics_source": "PAID_SOCIAL"});
        if let (Some(p), Some(e)) = (properties.as_object_mut(), extra.as_object()) {
            p.extend(e.clone());
        }
        json!({"id": "51", "properties": properties, "createdAt": "2026-10-01T03:12:44.201Z",
               "updatedAt": "2026-10-03T17:25:03.987Z", "archived": false})
    }

    #[test]
    fn contacts_count_on_their_portal_day_as_leads_if_they_ever_were() {
        let facts = contact(&contact_json("lead", json!({})), &portal(), &settings()).unwrap();
        // 03:12 UTC is the evening before in New York.
        assert_eq!(
            facts,
            ContactFacts { day: day("2026-09-30"), channel: Some("PAID_SOCIAL".into()), lead: true }
        );
        let customer =
            contact_json("customer", json!({"hs_lifecyclestage_lead_date": "2026-10-01T04:00:00Z"}));
        assert!(contact(&customer, &portal(), &settings()).unwrap().lead);
        let subscriber = contact_json("subscriber", json!({"hs_analytics_source": null}));
        let facts = contact(&subscriber, &portal(), &settings()).unwrap();
        assert!(!facts.lead);
        assert_eq!(facts.channel.as_deref(), Some("UNKNOWN"));
        let unsourced = ContactSettings { source_property: None, ..settings() };
        assert_eq!(contact(&contact_json("lead", json!({})), &portal(), &unsourced).unwrap().channel, None);
        let bad = contact_json("lead", json!({"createdate": "yesterday"}));
        assert_eq!(
            contact(&bad, &portal(), &settings()).unwrap_err(),
            "`createdate` \"yesterday\" is not a datetime"
        );
    }

    #[test]
    fn deals_read_amounts_exactly_and_refuse_poisoned_ones() {
        // Deal search result of §3.
        let base = json!({"id": "9001", "properties": {
            "amount": "12500.10", "closedate": "2026-10-02T16:00:00Z",
            "createdate": "2026-09-20T12:00:00.000Z",
            "dealname": "Big one", "dealstage": "closedwon", "hs_lastmodifieddate": "2026-10-02T16:00:01Z",
            "hs_object_id": "9001", "pipeline": "default", "deal_currency_code": "EUR"}});
        let facts = deal(&base, &portal()).unwrap();
        assert_eq!(facts.amount.map(|a| a.to_string()), Some("12500.1".into()));
        assert_eq!(facts.currency.as_str(), "EUR");
        assert_eq!((facts.created, facts.closed), (day("2026-09-20"), Some(day("2026-10-02"))));
        let mut poisoned = base.clone();
        poisoned["properties"]["amount"] = json!("134376773869;137654776000");
        assert!(
            deal(&poisoned, &portal())
                .unwrap_err()
                .starts_with("`amount` \"134376773869;137654776000\" is not a number")
        );
        let mut no_currency = base.clone();
        no_currency["properties"]["deal_currency_code"] = Value::Null;
        assert_eq!(deal(&no_currency, &portal()).unwrap().currency.as_str(), "USD");
        let mut bad_currency = base;
        bad_currency["properties"]["deal_currency_code"] = json!("euro");
        assert!(deal(&bad_currency, &portal()).unwrap_err().contains("ISO 4217"));
    }

    fn response(kind: &str, value: Option<&str>, group: Option<&str>) -> Value {
        // A feedback_submissions search result: hs_survey_* and hs_value as strings (§2).
        json!({"id": "77", "properties": {
            "hs_createdate": "2026-10-01T12:00:00Z", "hs_lastmodifieddate": "2026-10-01T12:00:00Z",
            "hs_object_id": "77", "hs_survey_id": "3101", "hs_survey_name": "Customer NPS",
            "hs_survey_type": kind, "hs_value": value, "hs_response_group": group}})
    }

    #[test]
    fn nps_scores_zero_to_ten_fall_into_three_buckets() {
        let mut counts = std::collections::BTreeMap::new();
        for score in 0..=10 {
            let facts = feedback(&response("NPS", Some(&score.to_string()), None), &portal()).unwrap();
            let SurveyAnswer::Nps(s) = facts.answer else { panic!("{facts:?}") };
            *counts.entry(nps_bucket(s)).or_insert(0) += 1;
        }
        assert_eq!(counts[&Measure::NpsPromoters], 2);
        assert_eq!(counts[&Measure::NpsPassives], 2);
        assert_eq!(counts[&Measure::NpsDetractors], 7);
        assert_eq!(counts.values().sum::<i32>(), 11);
        for bad in ["11", "-1", "7.5", "n/a"] {
            assert!(feedback(&response("NPS", Some(bad), None), &portal()).is_err(), "{bad}");
        }
        assert!(feedback(&response("NPS", None, None), &portal()).is_err());
    }

    #[test]
    fn csat_is_satisfied_when_happy() {
        let answer = |value, group| feedback(&response("CSAT", value, group), &portal()).map(|f| f.answer);
        assert_eq!(answer(Some("2"), Some("PROMOTER")), Ok(SurveyAnswer::Csat { satisfied: true }));
        assert_eq!(answer(Some("1"), Some("PASSIVE")), Ok(SurveyAnswer::Csat { satisfied: false }));
        assert_eq!(answer(Some("2"), None), Ok(SurveyAnswer::Csat { satisfied: true }));
        assert_eq!(answer(Some("0"), None), Ok(SurveyAnswer::Csat { satisfied: false }));
        assert!(answer(Some("5"), None).is_err());
        assert!(answer(Some("2"), Some("ECSTATIC")).is_err());
        assert_eq!(
            feedback(&response("CES", Some("6"), None), &portal()).unwrap().answer,
            SurveyAnswer::Other
        );
    }
}
