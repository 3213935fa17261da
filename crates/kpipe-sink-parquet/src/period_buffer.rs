//! The period rows a writer holds until its commit. They are written as one file per period at
//! the end, so all of them are held: as numbers into tables of the texts, metrics and
//! dimension sets they repeat (a platform, an account, an entity's id for each of its unique
//! metrics), a sixth of a [`PeriodRow`]'s size.

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hash};

use chrono::NaiveDate;
use hashbrown::HashTable;
use kpipe_core::{
    Currency, Decimal, Dimensions, Label, MetricName, Period, PeriodRequest, PeriodRow, SinkError,
};

use crate::period::PeriodRowRef;

/// Distinct values, numbered in the order first seen.
#[derive(Debug)]
struct Interner<T> {
    values: Vec<T>,
    /// Numbers into `values`, by the value's hash.
    ids: HashTable<u32>,
    hasher: foldhash::fast::FixedState,
}

impl<T> Default for Interner<T> {
    fn default() -> Interner<T> {
        Interner { values: Vec::new(), ids: HashTable::new(), hasher: foldhash::fast::FixedState::default() }
    }
}

impl<T: Hash + Eq + Clone> Interner<T> {
    /// The number of `value`, which is added if new.
    fn id(&mut self, value: &T) -> Result<u32, SinkError> {
        let Interner { values, ids, hasher } = self;
        let hash = hasher.hash_one(value);
        if let Some(&id) = ids.find(hash, |&id| values[id as usize] == *value) {
            return Ok(id);
        }
        let id = u32::try_from(values.len())
            .map_err(|_| SinkError::new("too many distinct values in the period rows of one source"))?;
        values.push(value.clone());
        ids.insert_unique(hash, id, |&id| hasher.hash_one(&values[id as usize]));
        Ok(id)
    }

    fn get(&self, id: u32) -> &T {
        &self.values[id as usize]
    }
}

/// A period row as held: its texts, metric and dimensions by number.
#[derive(Debug, Clone, Copy)]
struct HeldRow {
    platform: u32,
    account_id: u32,
    level: u32,
    entity_id: u32,
    entity_name: Option<u32>,
    metric: u32,
    /// `None` for a row without dimensions.
    dimensions: Option<u32>,
    currency: Option<Currency>,
    date: NaiveDate,
    /// The last day the value covers (the period is the one the row is held under).
    through: NaiveDate,
    value: Decimal,
}

/// Period rows by period, each period's in the order they were pushed.
#[derive(Debug, Default)]
pub(crate) struct PeriodBuffer {
    texts: Interner<Label>,
    metrics: Interner<MetricName>,
    dimensions: Interner<Dimensions>,
    periods: BTreeMap<Period, Vec<HeldRow>>,
}

impl PeriodBuffer {
    /// Holds `row` under its period.
    pub(crate) fn push(&mut self, row: &PeriodRow) -> Result<(), SinkError> {
        let r = &row.row;
        let held = HeldRow {
            platform: self.texts.id(&r.platform)?,
            account_id: self.texts.id(&r.account_id)?,
            level: self.texts.id(&r.level)?,
            entity_id: self.texts.id(&r.entity_id)?,
            entity_name: r.entity_name.as_ref().map(|n| self.texts.id(n)).transpose()?,
            metric: self.metrics.id(&r.metric)?,
            dimensions: match r.dimensions == Dimensions::default() {
                true => None,
                false => Some(self.dimensions.id(&r.dimensions)?),
            },
            currency: r.currency,
            date: r.date,
            through: row.request.through,
            value: r.value,
        };
        self.periods.entry(row.request.period).or_default().push(held);
        Ok(())
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.periods.is_empty()
    }

    /// Each period's request, as its first row gave it, in period order.
    pub(crate) fn requests(&self) -> Vec<PeriodRequest> {
        self.periods
            .iter()
            .filter_map(|(&period, rows)| rows.first().map(|r| PeriodRequest { period, through: r.through }))
            .collect()
    }

    /// The periods held, in order.
    pub(crate) fn periods(&self) -> impl DoubleEndedIterator<Item = Period> + '_ {
        self.periods.keys().copied()
    }

    /// Each period with its rows, in period order.
    pub(crate) fn by_period(&self) -> impl Iterator<Item = (Period, HeldPeriod<'_>)> {
        self.periods.iter().map(|(&period, rows)| (period, HeldPeriod { buffer: self, period, rows }))
    }
}

/// One period's rows in a [`PeriodBuffer`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeldPeriod<'a> {
    buffer: &'a PeriodBuffer,
    period: Period,
    rows: &'a [HeldRow],
}

impl<'a> HeldPeriod<'a> {
    pub(crate) fn len(&self) -> usize {
        self.rows.len()
    }

    /// The rows, in the order they were pushed.
    pub(crate) fn rows(self) -> impl Iterator<Item = PeriodRowRef<'a>> + Clone {
        self.rows.iter().map(move |h| self.row(h))
    }

    fn row(&self, h: &'a HeldRow) -> PeriodRowRef<'a> {
        let texts = &self.buffer.texts;
        PeriodRowRef {
            platform: texts.get(h.platform),
            account_id: texts.get(h.account_id),
            level: texts.get(h.level),
            entity_id: texts.get(h.entity_id),
            entity_name: h.entity_name.map(|id| texts.get(id).as_str()),
            date: h.date,
            dimensions: h.dimensions.map(|id| self.buffer.dimensions.get(id)),
            metric: self.buffer.metrics.get(h.metric),
            value: h.value,
            currency: h.currency.as_ref(),
            request: PeriodRequest { period: self.period, through: h.through },
        }
    }
}

#[cfg(test)]
mod tests {
    use kpipe_core::{Metric, MetricRow, PeriodGrain, Unit};

    use super::*;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, d).unwrap_or_default()
    }

    fn period_row(grain: PeriodGrain, through: u32, entity: &str, value: i64) -> PeriodRow {
        let period = Period::containing(grain, day(2));
        let dimensions = match value % 3 {
            0 => Dimensions::default(),
            1 => Dimensions { country: Some("DE".into()), ..Dimensions::default() },
            _ => Dimensions {
                device: Some(Label::new("mobile")),
                age: Some("25-34".into()),
                ..Default::default()
            },
        };
        PeriodRow::new(
            PeriodRequest { period, through: day(through) },
            MetricRow {
                platform: "facebook".into(),
                account_id: "act_1".into(),
                level: "campaign".into(),
                entity_id: Label::new(entity),
                entity_name: (value % 2 == 0).then(|| Label::new(&format!("Campaign {entity}"))),
                date: day(2),
                dimensions,
                metric: match value % 2 {
                    0 => Metric::Reach.into(),
                    _ => MetricName::extra("facebook", "unique_clicks", Unit::Count)
                        .unwrap_or(Metric::Reach.into()),
                },
                value: Decimal::from_i64(value),
                currency: (value % 4 == 1).then(|| Currency::parse("EUR")).flatten(),
            },
        )
    }

    /// A row without dimensions is held as such.
    fn plain(mut r: PeriodRowRef<'_>) -> PeriodRowRef<'_> {
        r.dimensions = r.dimensions.filter(|d| **d != Dimensions::default());
        r
    }

    #[test]
    fn rows_come_back_by_period_as_they_were_pushed() {
        let rows: Vec<PeriodRow> = (0..50)
            .map(|i| {
                let grain = if i % 3 == 0 { PeriodGrain::Month } else { PeriodGrain::Week };
                period_row(grain, 4 + (i % 4) as u32, &format!("{}", i / 2), i)
            })
            .collect();
        let mut buffer = PeriodBuffer::default();
        assert!(buffer.is_empty());
        for row in &rows {
            buffer.push(row).unwrap_or_else(|e| panic!("{e}"));
        }
        let week = Period::containing(PeriodGrain::Week, day(2));
        let month = Period::containing(PeriodGrain::Month, day(2));
        assert_eq!(buffer.periods().collect::<Vec<_>>(), [week, month]);
        assert_eq!(
            buffer.requests(),
            [rows[1].request, rows[0].request],
            "each period's request is its first row's"
        );
        // A row without dimensions is held as such.
        for (period, held) in buffer.by_period() {
            let expected: Vec<PeriodRowRef<'_>> =
                rows.iter().filter(|r| r.request.period == period).map(|r| plain(r.into())).collect();
            assert_eq!(held.len(), expected.len());
            assert_eq!(held.rows().collect::<Vec<_>>(), expected);
        }
    }

    #[test]
    fn a_held_row_is_a_sixth_of_a_period_row() {
        assert!(std::mem::size_of::<HeldRow>() * 6 <= std::mem::size_of::<PeriodRow>());
    }
}
