//! `kind = "survey"`: a line per answer, turned into daily counts (`survey_responses`, the NPS
//! groups, `csat_satisfied`) from which the KPI stage computes NPS and CSAT as ratios of sums.

use std::collections::{BTreeMap, HashMap};

use kpipe_core::{Metric, MetricRow, NaiveDate};

use crate::reader::{Header, parse_date};
use crate::source::{LineKind, RowContext};

/// The `level` of the rows: the survey is the entity.
pub(crate) const LEVEL: &str = "survey";

/// The metrics the daily counts become, with the column each counts.
pub(crate) const COUNTS: [(Metric, &str); 5] = [
    (Metric::SurveyResponses, "answers (lines) of the day"),
    (Metric::NpsPromoters, "`score` 9 or 10"),
    (Metric::NpsPassives, "`score` 7 or 8"),
    (Metric::NpsDetractors, "`score` 0 to 6"),
    (Metric::CsatSatisfied, "`satisfied` yes"),
];

const REQUIRED: &[&str] = &["date", "respondent"];
const OPTIONAL: &[&str] = &["score", "satisfied"];

#[derive(Debug, Default, Clone, Copy)]
struct DayCounts {
    responses: u32,
    promoters: u32,
    passives: u32,
    detractors: u32,
    satisfied: u32,
}

#[derive(Debug)]
pub(crate) struct SurveyLines {
    cx: RowContext,
    /// Which answers the files carry; every file of a source must carry the same, or the NPS and
    /// CSAT denominators would count different answers.
    answers: Option<(bool, bool)>,
    cols: (usize, usize, Option<usize>, Option<usize>),
    days: BTreeMap<NaiveDate, DayCounts>,
    seen: HashMap<(NaiveDate, String), String>,
}

impl SurveyLines {
    pub fn new(cx: RowContext) -> SurveyLines {
        SurveyLines {
            cx,
            answers: None,
            cols: (usize::MAX, usize::MAX, None, None),
            days: BTreeMap::new(),
            seen: HashMap::new(),
        }
    }

    fn row(&self, date: NaiveDate, metric: Metric, value: u32) -> MetricRow {
        self.cx.count_row(LEVEL, self.cx.entity_id.clone(), date, metric, value)
    }
}

fn parse_score(text: &str) -> Result<u8, String> {
    match text.parse::<u8>() {
        Ok(v) if v <= 10 => Ok(v),
        _ => Err(format!("`score` is `{text}`, expected a whole number from 0 to 10")),
    }
}

fn parse_satisfied(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "yes" | "y" | "true" | "1" => Ok(true),
        "no" | "n" | "false" | "0" => Ok(false),
        _ => Err(format!("`satisfied` is `{text}`, expected yes or no")),
    }
}

impl LineKind for SurveyLines {
    fn columns(&self) -> (&'static [&'static str], &'static [&'static str]) {
        (REQUIRED, OPTIONAL)
    }

    fn start_file(&mut self, header: &Header) -> Result<(), String> {
        let score = header.position("score");
        let satisfied = header.position("satisfied");
        if score.is_none() && satisfied.is_none() {
            return Err(
                "the header has neither `score` nor `satisfied`; a survey file needs at least one".into()
            );
        }
        let answers = (score.is_some(), satisfied.is_some());
        match self.answers {
            None => self.answers = Some(answers),
            Some(earlier) if earlier != answers => {
                return Err(format!(
                    "its answer columns (score: {}, satisfied: {}) differ from the earlier files' (score: {}, \
                     satisfied: {}); split them into two sources",
                    answers.0, answers.1, earlier.0, earlier.1
                ));
            }
            Some(_) => {}
        }
        self.cols = (
            header.position("date").unwrap_or(usize::MAX),
            header.position("respondent").unwrap_or(usize::MAX),
            score,
            satisfied,
        );
        Ok(())
    }

    fn line(&mut self, fields: &csv::StringRecord, location: &str) -> Result<Vec<MetricRow>, String> {
        let get = |i: usize| fields.get(i).map(str::trim).unwrap_or("");
        let date = parse_date(get(self.cols.0))?;
        let respondent = get(self.cols.1);
        if respondent.is_empty() {
            return Err("`respondent` is empty".into());
        }
        let score = self.cols.2.map(|i| parse_score(get(i))).transpose()?;
        let satisfied = self.cols.3.map(|i| parse_satisfied(get(i))).transpose()?;
        if let Some(first) = self.seen.get(&(date, respondent.to_owned())) {
            return Err(format!(
                "respondent `{respondent}` already answered on {date} (at {first}); a second answer the same \
                 day is not counted"
            ));
        }
        self.seen.insert((date, respondent.to_owned()), location.to_owned());
        let day = self.days.entry(date).or_default();
        day.responses += 1;
        match score {
            Some(9..=10) => day.promoters += 1,
            Some(7..=8) => day.passives += 1,
            Some(_) => day.detractors += 1,
            None => {}
        }
        if satisfied == Some(true) {
            day.satisfied += 1;
        }
        Ok(Vec::new())
    }

    fn finish(&mut self) -> Vec<MetricRow> {
        let (score, satisfied) = self.answers.unwrap_or((false, false));
        let mut rows = Vec::new();
        for (date, c) in std::mem::take(&mut self.days) {
            rows.push(self.row(date, Metric::SurveyResponses, c.responses));
            if score {
                rows.push(self.row(date, Metric::NpsPromoters, c.promoters));
                rows.push(self.row(date, Metric::NpsPassives, c.passives));
                rows.push(self.row(date, Metric::NpsDetractors, c.detractors));
            }
            if satisfied {
                rows.push(self.row(date, Metric::CsatSatisfied, c.satisfied));
            }
        }
        rows
    }
}
