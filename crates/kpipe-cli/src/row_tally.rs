//! The rows a source wrote, counted by (day, account, stream, metric) as they drain: what the
//! run's state records per day, and what the summary reports per stream.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::NaiveDate;
use kpipe_core::{Label, MetricBatch, MetricName, MetricRow};

/// Rows written by (day, account, stream, metric); the stream is the one the source named.
pub(crate) type RowCounts = BTreeMap<(NaiveDate, String, Option<Arc<str>>, String), u64>;

/// Rows by (day, account, stream, metric) while a source drains. Keys hold the account, stream
/// and metric by number: an entry takes 24 bytes rather than 88 with their labels, and a source
/// has one per account, stream, metric and day of its window.
#[derive(Default)]
pub(crate) struct RowTally {
    rows: HashMap<TallyKey, u64, foldhash::fast::RandomState>,
    accounts: Numbered<Label>,
    streams: Numbered<Option<Arc<str>>>,
    metrics: Numbered<MetricName>,
    /// The last account counted and its number: rows come account by account.
    last_account: Option<(Label, u32)>,
}

/// (day, account, stream, metric), the last three as numbered by the tally.
type TallyKey = (NaiveDate, u32, u32, u32);

/// Distinct values, numbered in the order first seen.
struct Numbered<T> {
    values: Vec<T>,
    numbers: HashMap<T, u32, foldhash::fast::RandomState>,
}

impl<T> Default for Numbered<T> {
    fn default() -> Numbered<T> {
        Numbered { values: Vec::new(), numbers: HashMap::default() }
    }
}

impl<T: std::hash::Hash + Eq + Clone> Numbered<T> {
    fn number(&mut self, value: &T) -> u32 {
        if let Some(&n) = self.numbers.get(value) {
            return n;
        }
        // A source has far fewer than 2^32 accounts, streams or metrics.
        let n = self.values.len() as u32;
        self.values.push(value.clone());
        self.numbers.insert(value.clone(), n);
        n
    }
}

impl RowTally {
    pub(crate) fn add(&mut self, batch: &MetricBatch, stream: Option<&Arc<str>>) {
        let stream = self.streams.number(&stream.cloned());
        // Connectors emit every metric of an entity-day in turn, so consecutive rows rarely share
        // a key: one lookup a row, with the previous row's key checked first for runs that do.
        let mut run: Option<(&MetricRow, u64)> = None;
        for row in &batch.rows {
            match &mut run {
                Some((first, n))
                    if first.date == row.date
                        && first.metric == row.metric
                        && first.account_id == row.account_id =>
                {
                    *n += 1
                }
                _ => {
                    if let Some((first, n)) = run.replace((row, 1)) {
                        self.count(first, stream, n);
                    }
                }
            }
        }
        if let Some((first, n)) = run {
            self.count(first, stream, n);
        }
    }

    fn count(&mut self, row: &MetricRow, stream: u32, n: u64) {
        let account = match &self.last_account {
            Some((last, number)) if *last == row.account_id => *number,
            _ => {
                let number = self.accounts.number(&row.account_id);
                self.last_account = Some((row.account_id.clone(), number));
                number
            }
        };
        let key = (row.date, account, stream, self.metrics.number(&row.metric));
        *self.rows.entry(key).or_default() += n;
    }

    pub(crate) fn into_counts(self) -> RowCounts {
        let mut counts = RowCounts::new();
        for ((day, account, stream, metric), n) in self.rows {
            let key = (
                day,
                self.accounts.values[account as usize].to_string(),
                self.streams.values[stream as usize].clone(),
                self.metrics.values[metric as usize].as_str().to_owned(),
            );
            *counts.entry(key).or_default() += n;
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use kpipe_core::{Decimal, Dimensions, Metric};

    use super::*;

    fn row(day: u32, account: &str, metric: Metric) -> MetricRow {
        MetricRow {
            platform: "facebook".into(),
            account_id: Label::new(account),
            level: "ad".into(),
            entity_id: "1".into(),
            entity_name: None,
            date: NaiveDate::from_ymd_opt(2026, 3, day).unwrap_or_default(),
            dimensions: Dimensions::default(),
            metric: metric.into(),
            value: Decimal::from_i64(1),
            currency: None,
        }
    }

    #[test]
    fn the_tally_counts_rows_by_day_account_stream_and_metric() {
        let mut tally = RowTally::default();
        let (clicks, reach) = (Metric::Clicks, Metric::Reach);
        let batch = |rows: Vec<MetricRow>| MetricBatch::new(rows);
        let ads: Arc<str> = Arc::from("ads");
        tally.add(&batch(vec![row(1, "a", clicks), row(1, "a", clicks), row(1, "b", clicks)]), None);
        tally.add(&batch(vec![row(1, "a", reach), row(2, "a", clicks), row(1, "a", clicks)]), Some(&ads));
        tally.add(&batch(vec![row(1, "b", clicks), row(1, "a", clicks)]), None);
        let counts = tally.into_counts();
        let key = |day: u32, account: &str, stream: Option<&Arc<str>>, metric: Metric| {
            let day = NaiveDate::from_ymd_opt(2026, 3, day).unwrap_or_default();
            (day, account.to_owned(), stream.cloned(), metric.name().to_owned())
        };
        let expected: RowCounts = [
            (key(1, "a", None, clicks), 3),
            (key(1, "b", None, clicks), 2),
            (key(1, "a", Some(&ads), reach), 1),
            (key(2, "a", Some(&ads), clicks), 1),
            (key(1, "a", Some(&ads), clicks), 1),
        ]
        .into_iter()
        .collect();
        assert_eq!(counts, expected);
    }
}
