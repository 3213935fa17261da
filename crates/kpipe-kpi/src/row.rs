//! The rows going in (metric rows, borrowed) and coming out (KPI rows).

use chrono::NaiveDate;
use kpipe_core::{Currency, Decimal, Label, MetricRow, Unit};

use crate::config::Stage;
use crate::period::{Grain, Scope};

/// A stored metric row as the KPI stage reads it: borrowed text, so that reading a file copies
/// nothing per row.
#[derive(Debug, Clone, Copy)]
pub struct RowRef<'a> {
    /// `platform` column.
    pub platform: &'a str,
    /// `account_id` column.
    pub account_id: &'a str,
    /// `level` column.
    pub level: &'a str,
    /// `entity_id` column.
    pub entity_id: &'a str,
    /// The dimension columns in [`kpipe_core::Dimensions::NAMES`] order.
    pub dimensions: [Option<&'a str>; 8],
    /// `metric` column.
    pub metric: &'a str,
    /// `value` column.
    pub value: Decimal,
    /// `currency` column.
    pub currency: Option<Currency>,
}

impl<'a> RowRef<'a> {
    /// Borrows a [`MetricRow`].
    pub fn from_row(row: &'a MetricRow) -> RowRef<'a> {
        RowRef {
            platform: &row.platform,
            account_id: &row.account_id,
            level: &row.level,
            entity_id: &row.entity_id,
            dimensions: row.dimensions.values().map(|d| d.map(Label::as_str)),
            metric: row.metric.as_str(),
            value: row.value,
            currency: row.currency,
        }
    }
}

/// One row of the KPI output (docs/schema.md, "KPI output").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KpiRow {
    /// The KPI's name.
    pub kpi: Label,
    /// The grain of the period.
    pub grain: Grain,
    /// First day of the period.
    pub period_start: NaiveDate,
    /// Last day of the period.
    pub period_end: NaiveDate,
    /// What the row is computed over.
    pub scope: Scope,
    /// Set for the entity, account and platform scopes.
    pub platform: Option<Label>,
    /// Set for the entity and account scopes.
    pub source: Option<Label>,
    /// Set for the entity and account scopes.
    pub account_id: Option<Label>,
    /// Set for the entity scope.
    pub level: Option<Label>,
    /// Set for the entity scope.
    pub entity_id: Option<Label>,
    /// `numerator / denominator` rounded half to even to 18 decimals (or the numerator, for a KPI
    /// without a denominator); null when the denominator is zero or a part has no value.
    pub value: Option<Decimal>,
    /// The summed numerator, with the KPI's scale applied.
    pub numerator: Option<Decimal>,
    /// The summed denominator; null for KPIs that are a sum.
    pub denominator: Option<Decimal>,
    /// The unit of `value`.
    pub unit: Unit,
    /// The currency of the money in the row, if any.
    pub currency: Option<Currency>,
    /// The KPI's stage.
    pub stage: Stage,
}

/// A KPI row as it is produced: borrowed labels, so that streaming a period to its file copies
/// no text into an intermediate row.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RowView<'a> {
    pub kpi: &'a Label,
    pub grain: Grain,
    pub period_start: NaiveDate,
    pub period_end: NaiveDate,
    pub scope: Scope,
    pub platform: Option<&'a Label>,
    pub source: Option<&'a Label>,
    pub account_id: Option<&'a Label>,
    pub level: Option<&'a Label>,
    pub entity_id: Option<&'a Label>,
    /// The account's and the entity's numbers in the computation, when set: the same number
    /// is the same text for the whole period, so a writer can skip looking the text up.
    pub account_key: Option<u32>,
    pub entity_key: Option<u32>,
    pub value: Option<Decimal>,
    pub numerator: Option<Decimal>,
    pub denominator: Option<Decimal>,
    pub unit: Unit,
    pub currency: Option<Currency>,
    pub stage: Stage,
}

impl RowView<'_> {
    pub fn owned(&self) -> KpiRow {
        KpiRow {
            kpi: self.kpi.clone(),
            grain: self.grain,
            period_start: self.period_start,
            period_end: self.period_end,
            scope: self.scope,
            platform: self.platform.cloned(),
            source: self.source.cloned(),
            account_id: self.account_id.cloned(),
            level: self.level.cloned(),
            entity_id: self.entity_id.cloned(),
            value: self.value,
            numerator: self.numerator,
            denominator: self.denominator,
            unit: self.unit,
            currency: self.currency,
            stage: self.stage,
        }
    }
}

/// Where the rows of a period go, one at a time, in output order.
pub(crate) trait RowSink {
    type Error;

    fn push(&mut self, row: &RowView<'_>) -> Result<(), Self::Error>;
}

impl RowSink for Vec<KpiRow> {
    type Error = std::convert::Infallible;

    fn push(&mut self, row: &RowView<'_>) -> Result<(), Self::Error> {
        Vec::push(self, row.owned());
        Ok(())
    }
}
