//! Counting records into daily metric rows. HubSpot sends records (a contact, a deal, a survey
//! response, a form submission), the schema wants one value per entity, day and metric; a slice
//! of the window is tallied completely before any of its rows is written, so that no row ever
//! holds a partial count.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use kpipe_core::{Currency, Decimal, Dimensions, Label, Metric, MetricName, MetricRow, Unit};

use crate::portal::Portal;
use crate::streams::crm::{CONTACTS, DEALS, FEEDBACK};
use crate::streams::marketing::{EMAILS, FORMS};

/// The `platform` column of every row.
pub const PLATFORM: &str = "hubspot";

/// What a row measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Measure {
    /// Contacts created that are or were at a lead stage.
    Leads,
    /// Contacts created.
    ContactsCreated,
    /// Deals created.
    DealsCreated,
    /// Deals closed won.
    DealsWon,
    /// Amounts of deals closed won.
    Revenue,
    /// Form submissions.
    FormSubmissions,
    /// Marketing emails delivered.
    EmailsDelivered,
    /// Marketing emails opened.
    EmailsOpened,
    /// Marketing emails clicked.
    EmailsClicked,
    /// Marketing emails bounced.
    EmailBounces,
    /// Recipients who unsubscribed.
    EmailUnsubscribes,
    /// NPS responses scoring 9 or 10.
    NpsPromoters,
    /// NPS responses scoring 7 or 8.
    NpsPassives,
    /// NPS responses scoring 0 to 6.
    NpsDetractors,
    /// CSAT responses answered happy.
    CsatSatisfied,
    /// Survey responses.
    SurveyResponses,
}

impl Measure {
    /// Every measure, in the order of the streams.
    pub const ALL: [Measure; 16] = [
        Measure::Leads,
        Measure::ContactsCreated,
        Measure::DealsCreated,
        Measure::DealsWon,
        Measure::Revenue,
        Measure::FormSubmissions,
        Measure::EmailsDelivered,
        Measure::EmailsOpened,
        Measure::EmailsClicked,
        Measure::EmailBounces,
        Measure::EmailUnsubscribes,
        Measure::NpsPromoters,
        Measure::NpsPassives,
        Measure::NpsDetractors,
        Measure::CsatSatisfied,
        Measure::SurveyResponses,
    ];

    /// The stream that counts it.
    pub fn stream(self) -> &'static str {
        match self {
            Measure::Leads | Measure::ContactsCreated => CONTACTS,
            Measure::DealsCreated | Measure::DealsWon | Measure::Revenue => DEALS,
            Measure::FormSubmissions => FORMS,
            Measure::EmailsDelivered
            | Measure::EmailsOpened
            | Measure::EmailsClicked
            | Measure::EmailBounces
            | Measure::EmailUnsubscribes => EMAILS,
            Measure::NpsPromoters
            | Measure::NpsPassives
            | Measure::NpsDetractors
            | Measure::CsatSatisfied
            | Measure::SurveyResponses => FEEDBACK,
        }
    }

    /// What it counts, in HubSpot's terms (the records and properties it is read from).
    pub fn platform_field(self) -> &'static str {
        match self {
            Measure::Leads => "contacts at a lead `lifecyclestage` (now or before), by `createdate`",
            Measure::ContactsCreated => "contacts by `createdate`",
            Measure::DealsCreated => "deals by `createdate`",
            Measure::DealsWon => "deals in a won `dealstage`, by `closedate`",
            Measure::Revenue => "`amount` of deals won, by `closedate`",
            Measure::FormSubmissions => "form submissions by `submittedAt`",
            Measure::EmailsDelivered => "email statistics `aggregations.counters.delivered`",
            Measure::EmailsOpened => "email statistics `aggregations.counters.open`",
            Measure::EmailsClicked => "email statistics `aggregations.counters.click`",
            Measure::EmailBounces => "email statistics `aggregations.counters.bounce`",
            Measure::EmailUnsubscribes => "email statistics `aggregations.counters.unsubscribed`",
            Measure::NpsPromoters => "NPS feedback submissions with `hs_value` 9 or 10",
            Measure::NpsPassives => "NPS feedback submissions with `hs_value` 7 or 8",
            Measure::NpsDetractors => "NPS feedback submissions with `hs_value` 0 to 6",
            Measure::CsatSatisfied => "CSAT feedback submissions answered happy (`hs_response_group`)",
            Measure::SurveyResponses => "feedback submissions by `hs_createdate`",
        }
    }

    /// The metric column's value.
    pub fn metric(self) -> MetricName {
        let extra = |name: &'static str| MetricName::Extra { name: Label::Static(name), unit: Unit::Count };
        match self {
            Measure::Leads => Metric::Leads.into(),
            Measure::ContactsCreated => extra("hubspot.contacts_created"),
            Measure::DealsCreated => Metric::DealsCreated.into(),
            Measure::DealsWon => Metric::DealsWon.into(),
            Measure::Revenue => Metric::Revenue.into(),
            Measure::FormSubmissions => Metric::FormSubmissions.into(),
            Measure::EmailsDelivered => Metric::EmailsDelivered.into(),
            Measure::EmailsOpened => Metric::EmailsOpened.into(),
            Measure::EmailsClicked => Metric::EmailsClicked.into(),
            Measure::EmailBounces => extra("hubspot.email_bounces"),
            Measure::EmailUnsubscribes => extra("hubspot.email_unsubscribes"),
            Measure::NpsPromoters => Metric::NpsPromoters.into(),
            Measure::NpsPassives => Metric::NpsPassives.into(),
            Measure::NpsDetractors => Metric::NpsDetractors.into(),
            Measure::CsatSatisfied => Metric::CsatSatisfied.into(),
            Measure::SurveyResponses => Metric::SurveyResponses.into(),
        }
    }

    /// The `level` column: what the entity is.
    pub fn level(self) -> &'static str {
        match self {
            Measure::Leads | Measure::ContactsCreated => "account",
            Measure::DealsCreated | Measure::DealsWon | Measure::Revenue => "deal_pipeline",
            Measure::FormSubmissions => "form",
            Measure::EmailsDelivered
            | Measure::EmailsOpened
            | Measure::EmailsClicked
            | Measure::EmailBounces
            | Measure::EmailUnsubscribes => "email",
            Measure::NpsPromoters
            | Measure::NpsPassives
            | Measure::NpsDetractors
            | Measure::CsatSatisfied
            | Measure::SurveyResponses => "survey",
        }
    }
}

/// Where a value goes: entity, day, source (for contacts), what, and currency (for money).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    measure: Measure,
    entity: String,
    date: NaiveDate,
    channel: Option<String>,
    currency: Option<Currency>,
}

/// The values of one slice, by key, and the names of the entities.
#[derive(Debug, Default)]
pub struct Tally {
    values: BTreeMap<Key, Decimal>,
    names: HashMap<(&'static str, String), String>,
}

/// One value to add.
#[derive(Debug, Clone, Copy)]
pub struct Cell<'a> {
    /// What.
    pub measure: Measure,
    /// The portal, pipeline, form, email or survey id.
    pub entity: &'a str,
    /// The portal day.
    pub date: NaiveDate,
    /// The contact source, for contacts broken down by it.
    pub channel: Option<&'a str>,
    /// The currency of money.
    pub currency: Option<Currency>,
}

impl<'a> Cell<'a> {
    /// A cell without source or currency.
    pub fn new(measure: Measure, entity: &'a str, date: NaiveDate) -> Cell<'a> {
        Cell { measure, entity, date, channel: None, currency: None }
    }

    /// The same cell for another measure.
    pub fn with(self, measure: Measure) -> Cell<'a> {
        Cell { measure, ..self }
    }

    fn key(&self) -> Key {
        Key {
            measure: self.measure,
            entity: self.entity.to_owned(),
            date: self.date,
            channel: self.channel.map(str::to_owned),
            currency: self.currency,
        }
    }
}

impl Tally {
    /// Adds `value` to the cell; an error if the sum leaves the decimal range.
    pub fn add(&mut self, cell: Cell<'_>, value: Decimal) -> Result<(), String> {
        let slot = self.values.entry(cell.key()).or_insert(Decimal::ZERO);
        *slot = slot
            .checked_add(value)
            .ok_or_else(|| format!("{:?} of {} on {} overflows", cell.measure, cell.entity, cell.date))?;
        Ok(())
    }

    /// Counts one record in the cell.
    pub fn count(&mut self, cell: Cell<'_>) {
        let slot = self.values.entry(cell.key()).or_insert(Decimal::ZERO);
        // A count of records cannot leave the decimal range.
        *slot = slot.checked_add(Decimal::from_i64(1)).unwrap_or(*slot);
    }

    /// Makes the cell a row even if nothing is counted in it: a zero that says "none", where a
    /// missing row would make a KPI that subtracts it (NPS) or divides by it unknown.
    pub fn touch(&mut self, cell: Cell<'_>) {
        self.values.entry(cell.key()).or_insert(Decimal::ZERO);
    }

    /// Remembers an entity's name.
    pub fn name(&mut self, level: &'static str, entity: &str, name: Option<&str>) {
        if let Some(name) = name.filter(|n| !n.is_empty()) {
            self.names.insert((level, entity.to_owned()), name.to_owned());
        }
    }

    /// Whether nothing was tallied.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The rows, in key order.
    pub fn rows(self, portal: &Portal) -> Vec<MetricRow> {
        let Tally { values, names } = self;
        let mut labels: HashMap<String, Label> = HashMap::new();
        let mut label =
            |text: &str| labels.entry(text.to_owned()).or_insert_with(|| Label::new(text)).clone();
        values
            .into_iter()
            .map(|(key, value)| {
                let level = key.measure.level();
                let entity_name = names.get(&(level, key.entity.clone())).map(|n| label(n));
                let dimensions =
                    Dimensions { channel: key.channel.as_deref().map(&mut label), ..Dimensions::default() };
                MetricRow {
                    platform: Label::Static(PLATFORM),
                    account_id: portal.id.clone(),
                    level: Label::Static(level),
                    entity_id: label(&key.entity),
                    entity_name,
                    date: key.date,
                    dimensions,
                    metric: key.measure.metric(),
                    value,
                    currency: key.currency,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn portal() -> Portal {
        Portal::from_details(br#"{"portalId": 7, "companyCurrency": "USD", "utcOffsetMilliseconds": 0}"#)
            .unwrap()
    }

    #[test]
    fn counts_and_zeros_become_rows_with_their_level_and_names() {
        let day = NaiveDate::from_ymd_opt(2026, 10, 1).unwrap();
        let mut tally = Tally::default();
        let cell = Cell::new(Measure::NpsPromoters, "3101", day);
        tally.count(cell);
        tally.count(cell);
        tally.touch(cell.with(Measure::NpsDetractors));
        tally.name("survey", "3101", Some("Customer NPS"));
        let usd = Currency::parse("USD");
        tally
            .add(
                Cell { currency: usd, ..Cell::new(Measure::Revenue, "default", day) },
                "10.5".parse().unwrap(),
            )
            .unwrap();
        let rows = tally.rows(&portal());
        let shown: Vec<(String, String, String, Option<String>)> = rows
            .iter()
            .map(|r| {
                (
                    r.level.to_string(),
                    r.metric.to_string(),
                    r.value.to_string(),
                    r.entity_name.as_ref().map(|n| n.to_string()),
                )
            })
            .collect();
        assert_eq!(
            shown,
            [
                ("deal_pipeline".into(), "revenue".into(), "10.5".into(), None),
                ("survey".into(), "nps_promoters".into(), "2".into(), Some("Customer NPS".into())),
                ("survey".into(), "nps_detractors".into(), "0".into(), Some("Customer NPS".into())),
            ]
        );
        assert!(rows.iter().all(|r| r.validate().is_ok() && r.account_id.as_str() == "7"));
        assert_eq!(Measure::ContactsCreated.metric().as_str(), "hubspot.contacts_created");
    }
}
