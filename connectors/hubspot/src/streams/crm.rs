//! Contacts, deals and survey responses of one slice, through CRM search (§3 of the wire notes).
//!
//! Each search asks for the records the slice's days concern (created then, or closed won then)
//! and pages through them sorted by last modification, which [`SearchCursor`] needs to go past
//! the 10,000-result ceiling.

use std::collections::HashMap;

use kpipe_core::{DateWindow, Emitter, SourceError};
use serde_json::Value;

use super::{Context, refuse, stop};
use crate::normalize::{self, ContactSettings, SurveyAnswer, nps_bucket};
use crate::search::{MAX_SEARCH_LIMIT, SearchCursor, SearchQuery, filter, filter_in};
use crate::tally::{Cell, Measure, Tally};

/// Stream names, as `streams` in the configuration and the quarantine name them.
pub const CONTACTS: &str = "contacts";
/// See [`CONTACTS`].
pub const DEALS: &str = "deals";
/// See [`CONTACTS`].
pub const FEEDBACK: &str = "feedback";

/// `[property GTE start, property LT end]`: the instants of the slice's portal days.
fn within(cx: &Context<'_>, property: &str, slice: DateWindow) -> Vec<Value> {
    let (start, end) = cx.portal.window_ms(slice);
    vec![filter(property, "GTE", start.to_string()), filter(property, "LT", end.to_string())]
}

/// Runs `query` and hands every record to `count`, which says why it cannot be counted.
async fn each_record(
    cx: &Context<'_>,
    query: SearchQuery,
    stream: &'static str,
    slice: DateWindow,
    out: &mut Emitter,
    mut count: impl FnMut(&Value) -> Result<(), String>,
) -> Result<(), SourceError> {
    let mut cursor = SearchCursor::new(cx.hub, query, cx.limit(MAX_SEARCH_LIMIT));
    loop {
        let page = match cursor.next_page().await {
            Ok(Some(page)) => page,
            Ok(None) => return Ok(()),
            Err(e) => return Err(stop(e, stream, slice, out).await),
        };
        for record in &page.records {
            if let Err(reason) = count(record) {
                let id = record.get("id").and_then(Value::as_str).unwrap_or("?");
                refuse(out, stream, format!("{} record {id}", page.location), reason, record).await?;
            }
        }
    }
}

/// Contacts created on the slice's days: `hubspot.contacts_created` and `leads`, per source.
pub async fn contacts(
    cx: &Context<'_>,
    settings: &ContactSettings,
    slice: DateWindow,
    tally: &mut Tally,
    out: &mut Emitter,
) -> Result<(), SourceError> {
    let query = SearchQuery {
        object: "contacts",
        modified_property: "lastmodifieddate",
        groups: vec![within(cx, "createdate", slice)],
        properties: settings.properties(),
        stream: CONTACTS,
    };
    let portal = cx.portal.id.as_str();
    each_record(cx, query, CONTACTS, slice, out, |record| {
        let facts = normalize::contact(record, cx.portal, settings)?;
        if !slice.contains(facts.day) {
            return Err(format!("created on {}, outside the days searched ({slice})", facts.day));
        }
        let cell = Cell {
            channel: facts.channel.as_deref(),
            ..Cell::new(Measure::ContactsCreated, portal, facts.day)
        };
        tally.count(cell);
        if facts.lead {
            tally.count(cell.with(Measure::Leads));
        } else {
            tally.touch(cell.with(Measure::Leads));
        }
        Ok(())
    })
    .await
}

/// The deal pipelines a pull reads, and their won stages.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pipelines {
    /// Only these pipelines, when the configuration names them.
    pub only: Option<Vec<String>>,
    /// The stages that close a deal as won (`metadata.isClosed` true, probability 1.0).
    pub won_stages: Vec<String>,
    /// Pipeline labels by id.
    pub labels: HashMap<String, String>,
}

impl Pipelines {
    /// Reads `GET /crm/v3/pipelines/deals`; `only` must name pipelines of the portal.
    pub fn from_listing(body: &Value, only: Option<Vec<String>>) -> Result<Pipelines, SourceError> {
        let results = body
            .get("results")
            .and_then(Value::as_array)
            .ok_or_else(|| SourceError::data("deal pipelines: the response has no `results` array"))?;
        let mut pipelines = Pipelines { only, ..Pipelines::default() };
        for pipeline in results {
            let Some(id) = pipeline.get("id").and_then(Value::as_str) else {
                return Err(SourceError::data(format!(
                    "deal pipelines: a pipeline without `id`: {pipeline}"
                )));
            };
            if let Some(label) = pipeline.get("label").and_then(Value::as_str) {
                pipelines.labels.insert(id.to_owned(), label.to_owned());
            }
            let stages = pipeline.get("stages").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
            for stage in stages {
                let meta = |key: &str| stage.pointer(&format!("/metadata/{key}")).and_then(Value::as_str);
                let won = meta("isClosed") == Some("true")
                    && meta("probability").and_then(|p| p.parse::<f64>().ok()) == Some(1.0);
                if let (true, Some(stage)) = (won, stage.get("id").and_then(Value::as_str)) {
                    pipelines.won_stages.push(stage.to_owned());
                }
            }
        }
        if pipelines.won_stages.is_empty() {
            tracing::warn!("no deal stage is closed won with probability 1.0: no deal will count as won");
        }
        if let Some(only) = &pipelines.only {
            let unknown: Vec<&String> = only.iter().filter(|p| !pipelines.labels.contains_key(*p)).collect();
            if !unknown.is_empty() {
                let mut known: Vec<&String> = pipelines.labels.keys().collect();
                known.sort();
                return Err(SourceError::config(format!(
                    "pipelines: {unknown:?} are not deal pipelines of this portal (it has {known:?})"
                )));
            }
        }
        Ok(pipelines)
    }
}

/// Deals created on the slice's days and deals closed won on them: `deals_created`,
/// `deals_won` and `revenue` per pipeline.
pub async fn deals(
    cx: &Context<'_>,
    pipelines: &Pipelines,
    slice: DateWindow,
    tally: &mut Tally,
    out: &mut Emitter,
) -> Result<(), SourceError> {
    let mut created = within(cx, "createdate", slice);
    let mut won = within(cx, "closedate", slice);
    won.push(filter_in("dealstage", &pipelines.won_stages));
    if let Some(only) = &pipelines.only {
        created.push(filter_in("pipeline", only));
        won.push(filter_in("pipeline", only));
    }
    let mut groups = vec![created];
    if !pipelines.won_stages.is_empty() {
        groups.push(won);
    }
    let query = SearchQuery {
        object: "deals",
        modified_property: "hs_lastmodifieddate",
        groups,
        properties: [
            "createdate",
            "closedate",
            "hs_lastmodifieddate",
            "amount",
            "deal_currency_code",
            "pipeline",
            "dealstage",
        ]
        .map(str::to_owned)
        .to_vec(),
        stream: DEALS,
    };
    each_record(cx, query, DEALS, slice, out, |record| {
        let facts = normalize::deal(record, cx.portal)?;
        let created_here = slice.contains(facts.created);
        let won_on = facts
            .closed
            .filter(|day| slice.contains(*day))
            .filter(|_| facts.stage.as_ref().is_some_and(|s| pipelines.won_stages.contains(s)));
        if !created_here && won_on.is_none() {
            return Err(format!("neither created nor closed won on the days searched ({slice})"));
        }
        let pipeline = facts.pipeline.as_str();
        if let (Some(day), Some(amount)) = (won_on, facts.amount) {
            let cell = Cell { currency: Some(facts.currency), ..Cell::new(Measure::Revenue, pipeline, day) };
            tally.add(cell, amount)?;
        }
        if created_here {
            let cell = Cell::new(Measure::DealsCreated, pipeline, facts.created);
            tally.count(cell);
            tally.touch(cell.with(Measure::DealsWon));
        }
        if let Some(day) = won_on {
            let cell = Cell::new(Measure::DealsWon, pipeline, day);
            tally.count(cell);
            tally.touch(cell.with(Measure::DealsCreated));
        }
        tally.name("deal_pipeline", pipeline, pipelines.labels.get(pipeline).map(String::as_str));
        Ok(())
    })
    .await
}

/// Survey responses submitted on the slice's days: `survey_responses`, the NPS buckets and
/// `csat_satisfied` per survey.
pub async fn feedback(
    cx: &Context<'_>,
    slice: DateWindow,
    tally: &mut Tally,
    out: &mut Emitter,
) -> Result<(), SourceError> {
    let properties = [
        "hs_createdate",
        "hs_lastmodifieddate",
        "hs_survey_id",
        "hs_survey_name",
        "hs_survey_type",
        "hs_value",
        "hs_response_group",
    ];
    let query = SearchQuery {
        object: "feedback_submissions",
        modified_property: "hs_lastmodifieddate",
        groups: vec![within(cx, "hs_createdate", slice)],
        properties: properties.map(str::to_owned).to_vec(),
        stream: FEEDBACK,
    };
    each_record(cx, query, FEEDBACK, slice, out, |record| {
        let facts = normalize::feedback(record, cx.portal)?;
        if !slice.contains(facts.day) {
            return Err(format!("submitted on {}, outside the days searched ({slice})", facts.day));
        }
        let cell = Cell::new(Measure::SurveyResponses, &facts.survey, facts.day);
        tally.count(cell);
        match facts.answer {
            SurveyAnswer::Nps(score) => {
                // All three buckets, so that NPS = (promoters - detractors) / responses has both.
                for bucket in [Measure::NpsPromoters, Measure::NpsPassives, Measure::NpsDetractors] {
                    tally.touch(cell.with(bucket));
                }
                tally.count(cell.with(nps_bucket(score)));
            }
            SurveyAnswer::Csat { satisfied } => {
                tally.touch(cell.with(Measure::CsatSatisfied));
                if satisfied {
                    tally.count(cell.with(Measure::CsatSatisfied));
                }
            }
            SurveyAnswer::Other => {}
        }
        tally.name("survey", &facts.survey, facts.survey_name.as_deref());
        Ok(())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn won_stages_come_from_the_pipelines_metadata() {
        // GET /crm/v3/pipelines/deals (developers.hubspot.com, CRM pipelines API).
        fn stage(id: &str, closed: &str, probability: &str) -> Value {
            json!({"id": id, "label": id,
                   "metadata": {"isClosed": closed, "probability": probability}})
        }
        let body = json!({"results": [
            {"id": "default", "label": "Sales Pipeline", "displayOrder": 0, "stages": [
                stage("contractsent", "false", "0.9"), stage("closedwon", "true", "1.0"),
                stage("closedlost", "true", "0.0")]},
            {"id": "75138201", "label": "Renewals", "stages": [stage("75138203", "true", "1.0")]}]});
        let pipelines = Pipelines::from_listing(&body, None).unwrap();
        assert_eq!(pipelines.won_stages, ["closedwon", "75138203"]);
        assert_eq!(pipelines.labels["75138201"], "Renewals");
        assert!(Pipelines::from_listing(&body, Some(vec!["default".into()])).is_ok());
        let err = Pipelines::from_listing(&body, Some(vec!["sales".into()])).unwrap_err();
        assert_eq!(err.kind(), kpipe_core::ErrorKind::Config);
        assert!(Pipelines::from_listing(&json!({}), None).is_err());
    }
}
