//! The KPI stage: the catalog of docs/kpis.md as built-in definitions, user definitions from the
//! configuration, and their computation by grain (day, ISO week, month) and scope (entity,
//! account, platform, all platforms) from the stored metrics.
//!
//! The rules of docs/kpis.md, and how they are kept:
//!
//! 1. Ratio of sums: every term of a formula is summed over the scope and period first, then the
//!    formula is applied once.
//! 2. Additivity comes from the metric registry: `sum` metrics add up; `unique` metrics have a
//!    value only where one row gives it (one entity, one day, no breakdown); `snapshot` metrics
//!    take the period's last day, and `start(m)` the day before the period.
//! 3. A zero denominator gives a null value.
//! 4. Money is exact ([`kpipe_core::Decimal`], 256-bit intermediate products) and never added
//!    across currencies: per currency, or converted with configured rates.
//! 5. Every row keeps its numerator and denominator.
//! 6. The all-platforms scope is the same computation over every account.
//! 7. Grains day, week, month; scopes entity, account, platform, all.
//!
//! A run recomputes every period the window touches from the whole stored period (a re-pulled
//! Tuesday changes its week and month), reading days in order and emitting a period as soon as
//! its last day is read, so memory holds aggregates of the open periods, never the rows.

#![deny(missing_docs)]

mod agg;
mod arith;
mod builtins;
mod catalog;
mod cells;
mod compute;
mod config;
mod encoding;
mod error;
mod evaluate;
mod formula;
mod input;
mod output;
mod period;
mod plan;
mod read;
mod row;
mod show;
mod stage;

pub use builtins::{BuiltinKpi, builtins};
pub use catalog::{Catalog, KpiDef};
pub use compute::{Computation, ComputeStats, LEVEL_ORDER, OutOfOrder, PeriodRows};
pub use config::{CurrencyRates, KpiDefinitionConfig, KpiSettingsConfig, OneOrMany, Settings, Stage};
pub use error::KpiError;
pub use formula::FormulaError;
pub use output::{KPI_SCHEMA_VERSION, KpiCommit, kpi_schema, kpis_dir, period_file};
pub use period::{Grain, Scope, Touched};
pub use read::{read_kpi_dir, read_kpis, read_stored_kpi_files, read_stored_kpis, stored_periods};
pub use row::{KpiRow, RowRef};
pub use show::{format_value, render_account_table, render_table};
pub use stage::{StageFeed, StageReport, run, run_on};
