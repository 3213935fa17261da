//! `kind = "social_selling"`: a line per rep and day with the outreach funnel's counts.

use kpipe_core::{Label, Metric, MetricRow, NaiveDate};

use crate::reader::{Header, parse_count, parse_date};
use crate::source::{LineKind, RowContext};

const REQUIRED: &[&str] = &["date", "rep", "invites_sent", "invites_accepted", "replies", "interested"];
/// The `level` of the rows: each rep is an entity.
pub(crate) const LEVEL: &str = "rep";

/// Which column becomes which metric.
pub(crate) const FUNNEL: [(&str, Metric); 4] = [
    ("invites_sent", Metric::InvitesSent),
    ("invites_accepted", Metric::InvitesAccepted),
    ("replies", Metric::Replies),
    ("interested", Metric::Interested),
];

#[derive(Debug)]
pub(crate) struct SocialSellingLines {
    cx: RowContext,
    cols: [usize; 6],
}

impl SocialSellingLines {
    pub fn new(cx: RowContext) -> SocialSellingLines {
        SocialSellingLines { cx, cols: [usize::MAX; 6] }
    }

    fn row(&self, date: NaiveDate, rep: &Label, metric: Metric, value: u32) -> MetricRow {
        self.cx.count_row(LEVEL, rep.clone(), date, metric, value)
    }
}

impl LineKind for SocialSellingLines {
    fn columns(&self) -> (&'static [&'static str], &'static [&'static str]) {
        (REQUIRED, &[])
    }

    fn start_file(&mut self, header: &Header) -> Result<(), String> {
        for (slot, name) in self.cols.iter_mut().zip(REQUIRED) {
            *slot = header.position(name).ok_or_else(|| format!("column `{name}` is missing"))?;
        }
        Ok(())
    }

    fn line(&mut self, fields: &csv::StringRecord, _location: &str) -> Result<Vec<MetricRow>, String> {
        let get = |i: usize| fields.get(i).map(str::trim).unwrap_or("");
        let date = parse_date(get(self.cols[0]))?;
        let rep = get(self.cols[1]);
        if rep.is_empty() {
            return Err("`rep` is empty".into());
        }
        let rep = Label::new(rep);
        let mut rows = Vec::with_capacity(FUNNEL.len());
        for ((name, metric), col) in FUNNEL.iter().zip(&self.cols[2..]) {
            // An empty cell means "not recorded", which is not the same as zero: no row.
            if let Some(v) = parse_count(name, get(*col))? {
                rows.push(self.row(date, &rep, *metric, v));
            }
        }
        if rows.is_empty() {
            return Err("no count is filled in".into());
        }
        Ok(rows)
    }

    fn finish(&mut self) -> Vec<MetricRow> {
        Vec::new()
    }
}
