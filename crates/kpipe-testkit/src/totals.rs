//! Rows keyed by what identifies them, for exact comparisons.

use std::collections::BTreeMap;
use std::fmt;

use kpipe_core::{Decimal, MetricRow, NaiveDate};

/// What identifies a row: account, level, entity, day, dimensions, metric (and currency).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RowKey {
    /// `account_id`.
    pub account_id: String,
    /// `level`.
    pub level: String,
    /// `entity_id`.
    pub entity_id: String,
    /// `date`.
    pub date: NaiveDate,
    /// The dimension values, `name=value` joined by `,`; empty without breakdowns.
    pub dimensions: String,
    /// `metric`.
    pub metric: String,
    /// `currency`, for money.
    pub currency: Option<String>,
}

impl fmt::Display for RowKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {} {} {}", self.account_id, self.level, self.entity_id, self.date, self.metric)?;
        if !self.dimensions.is_empty() {
            write!(f, " [{}]", self.dimensions)?;
        }
        if let Some(c) = &self.currency {
            write!(f, " {c}")?;
        }
        Ok(())
    }
}

impl RowKey {
    /// The key of `row`.
    pub fn of(row: &MetricRow) -> RowKey {
        const NAMES: [&str; 8] = [
            "country",
            "region",
            "device",
            "channel",
            "source_medium",
            "publisher_platform",
            "age",
            "gender",
        ];
        let dimensions = NAMES
            .iter()
            .zip(row.dimensions.values())
            .filter_map(|(n, v)| v.map(|v| format!("{n}={v}")))
            .collect::<Vec<_>>()
            .join(",");
        RowKey {
            account_id: row.account_id.to_string(),
            level: row.level.to_string(),
            entity_id: row.entity_id.to_string(),
            date: row.date,
            dimensions,
            metric: row.metric.as_str().to_owned(),
            currency: row.currency.as_ref().map(|c| c.as_str().to_owned()),
        }
    }

    /// A key without dimensions.
    pub fn new(
        account_id: &str,
        level: &str,
        entity_id: &str,
        date: NaiveDate,
        metric: &str,
        currency: Option<&str>,
    ) -> RowKey {
        RowKey {
            account_id: account_id.to_owned(),
            level: level.to_owned(),
            entity_id: entity_id.to_owned(),
            date,
            dimensions: String::new(),
            metric: metric.to_owned(),
            currency: currency.map(str::to_owned),
        }
    }
}

/// Values by row key: what a source wrote, or what the simulator says it must write.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    values: BTreeMap<RowKey, Decimal>,
}

impl Totals {
    /// No rows.
    pub fn new() -> Totals {
        Totals::default()
    }

    /// Sets a key's value (what the simulator says); a second value for the key replaces it.
    pub fn insert(&mut self, key: RowKey, value: Decimal) {
        self.values.insert(key, value);
    }

    /// The rows by key; `Err` names a key that occurs twice.
    pub fn from_rows(rows: &[MetricRow]) -> Result<Totals, Box<RowKey>> {
        let mut totals = Totals::new();
        for row in rows {
            let key = RowKey::of(row);
            if totals.values.contains_key(&key) {
                return Err(Box::new(key));
            }
            totals.values.insert(key, row.value);
        }
        Ok(totals)
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The value of `key`.
    pub fn get(&self, key: &RowKey) -> Option<Decimal> {
        self.values.get(key).copied()
    }

    /// Every key and value.
    pub fn iter(&self) -> impl Iterator<Item = (&RowKey, &Decimal)> {
        self.values.iter()
    }

    /// The keys dated on a day `keep` accepts.
    pub fn restricted(&self, keep: impl Fn(kpipe_core::NaiveDate) -> bool) -> Totals {
        Totals {
            values: self.values.iter().filter(|(k, _)| keep(k.date)).map(|(k, v)| (k.clone(), *v)).collect(),
        }
    }

    /// Sums per metric over every key.
    pub fn by_metric(&self) -> BTreeMap<String, Decimal> {
        let mut out: BTreeMap<String, Decimal> = BTreeMap::new();
        for (k, v) in &self.values {
            let sum = out.entry(k.metric.clone()).or_insert(Decimal::ZERO);
            *sum = sum.checked_add(*v).unwrap_or(*sum);
        }
        out
    }

    /// The differences from `expected`, at most `limit` of them, one per line; empty if equal.
    pub fn diff(&self, expected: &Totals, limit: usize) -> Vec<String> {
        let mut out = Vec::new();
        for (k, want) in &expected.values {
            match self.values.get(k) {
                None => out.push(format!("missing: {k} = {want}")),
                Some(got) if got != want => out.push(format!("wrong:   {k} = {got}, expected {want}")),
                Some(_) => {}
            }
        }
        for (k, got) in &self.values {
            if !expected.values.contains_key(k) {
                out.push(format!("extra:   {k} = {got}"));
            }
        }
        let n = out.len();
        if n > limit {
            out.truncate(limit);
            out.push(format!("... {} more", n - limit));
        }
        out
    }

    /// Panics with the differences unless equal to `expected`.
    pub fn assert_eq(&self, expected: &Totals, case: &str) {
        let diff = self.diff(expected, 20);
        assert!(diff.is_empty(), "{case}: the rows differ from the simulator's data:\n{}", diff.join("\n"));
    }

    /// Panics unless every key here is in `expected` with the same value (a subset: what a
    /// stopped or partial pull wrote must still be right).
    pub fn assert_subset_of(&self, expected: &Totals, case: &str) {
        let wrong: Vec<String> = self
            .values
            .iter()
            .filter(|(k, v)| expected.values.get(*k) != Some(*v))
            .take(20)
            .map(|(k, v)| format!("{k} = {v}, expected {:?}", expected.values.get(k)))
            .collect();
        assert!(wrong.is_empty(), "{case}: rows that are not the simulator's:\n{}", wrong.join("\n"));
    }
}
