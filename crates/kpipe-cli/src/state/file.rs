//! The state's objects as stored: `.kpipe/state/<source>.json` (version 2, ranges of days), and
//! the `.kpipe/state.json` of earlier versions (version 1, an entry per day for every source),
//! which still loads.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};

use super::ledger::{Cursor, DayRecord, DayStatus, SourceState};
use super::ranges::DayRanges;

/// The version of a source's state object.
pub(crate) const VERSION: u32 = 2;

/// Days `from..=to` with one value.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Span<T> {
    from: NaiveDate,
    to: NaiveDate,
    #[serde(flatten)]
    value: T,
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct StatusOnly {
    status: DayStatus,
}

/// `.kpipe/state/<source>.json`.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct SourceFile {
    version: u32,
    source: String,
    days: Vec<Span<DayRecord>>,
    #[serde(default)]
    accounts: BTreeMap<String, Vec<Span<StatusOnly>>>,
    #[serde(default)]
    streams: BTreeMap<String, Vec<Span<StatusOnly>>>,
    #[serde(default)]
    cursors: BTreeMap<String, BTreeMap<String, Cursor>>,
    /// Weeks and months published partial, with the last day they cover.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    partial_periods: Vec<PartialPeriod>,
}

/// A week or month whose period rows cover its days only `through` a day.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct PartialPeriod {
    #[serde(flatten)]
    period: kpipe_core::Period,
    through: NaiveDate,
}

fn spans<T: Clone + PartialEq>(ranges: &DayRanges<T>) -> Vec<Span<T>> {
    ranges.iter().map(|(from, to, value)| Span { from, to, value: value.clone() }).collect()
}

fn status_spans(ranges: &DayRanges<DayStatus>) -> Vec<Span<StatusOnly>> {
    ranges.iter().map(|(from, to, status)| Span { from, to, value: StatusOnly { status: *status } }).collect()
}

fn ranges_of<T: Clone + PartialEq>(spans: Vec<Span<T>>) -> Result<DayRanges<T>, String> {
    let mut out = DayRanges::default();
    for span in spans {
        if span.to < span.from {
            return Err(format!("the range {}..{} ends before it starts", span.from, span.to));
        }
        out.set(span.from, span.to, span.value);
    }
    Ok(out)
}

fn status_ranges(spans: Vec<Span<StatusOnly>>) -> Result<DayRanges<DayStatus>, String> {
    ranges_of(spans.into_iter().map(|s| Span { from: s.from, to: s.to, value: s.value.status }).collect())
}

/// `state` as the bytes of its object.
pub(crate) fn encode(source: &str, state: &SourceState) -> Result<Vec<u8>, serde_json::Error> {
    let file = SourceFile {
        version: VERSION,
        source: source.to_owned(),
        days: spans(&state.days),
        accounts: state.accounts.iter().map(|(k, r)| (k.clone(), status_spans(r))).collect(),
        streams: state.streams.iter().map(|(k, r)| (k.clone(), status_spans(r))).collect(),
        cursors: state.cursors.clone(),
        partial_periods: state
            .partial_periods
            .iter()
            .map(|(period, through)| PartialPeriod { period: *period, through: *through })
            .collect(),
    };
    // One line: state objects of thousands of accounts stay small; `kpipe state show` reads
    // them for people.
    serde_json::to_vec(&file)
}

/// A source's state object read back; the error says what is wrong (with line and column).
pub(crate) fn decode(bytes: &[u8]) -> Result<(String, SourceState), String> {
    #[derive(serde::Deserialize)]
    struct Version {
        version: u32,
    }
    let version: Version = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if version.version != VERSION {
        return Err(format!("version {} is not {VERSION}, the version this kpipe writes", version.version));
    }
    let file: SourceFile = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let state = SourceState {
        days: ranges_of(file.days)?,
        accounts: file
            .accounts
            .into_iter()
            .map(|(k, s)| Ok((k, status_ranges(s)?)))
            .collect::<Result<_, String>>()?,
        streams: file
            .streams
            .into_iter()
            .map(|(k, s)| Ok((k, status_ranges(s)?)))
            .collect::<Result<_, String>>()?,
        cursors: file.cursors,
        partial_periods: file.partial_periods.into_iter().map(|p| (p.period, p.through)).collect(),
    };
    Ok((file.source, state))
}

/// One (source, day) of a version 1 file.
#[derive(Debug, serde::Deserialize)]
struct LegacyDay {
    pulled_at: DateTime<Utc>,
    pulled_on: NaiveDate,
    run_id: String,
    #[allow(dead_code, reason = "read for completeness; version 2 keeps no per-day row count")]
    #[serde(default)]
    rows: u64,
    #[serde(default)]
    accounts: BTreeMap<String, u64>,
    #[serde(default)]
    streams: BTreeMap<String, u64>,
    status: DayStatus,
}

#[derive(Debug, Default, serde::Deserialize)]
struct LegacySource {
    #[serde(default)]
    days: BTreeMap<NaiveDate, LegacyDay>,
    #[serde(default)]
    cursors: BTreeMap<String, BTreeMap<String, Cursor>>,
}

#[derive(Debug, serde::Deserialize)]
struct LegacyFile {
    version: u32,
    sources: BTreeMap<String, LegacySource>,
}

/// The sources of a version 1 `state.json`, as version 2 states.
pub(crate) fn decode_legacy(bytes: &[u8]) -> Result<BTreeMap<String, SourceState>, String> {
    let file: LegacyFile = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if file.version != 1 {
        return Err(format!("version {} is not 1, the version of a single state.json", file.version));
    }
    let mut out = BTreeMap::new();
    for (name, legacy) in file.sources {
        let mut state = SourceState { cursors: legacy.cursors, ..SourceState::default() };
        for (day, entry) in legacy.days {
            let record = DayRecord {
                status: entry.status,
                pulled_on: entry.pulled_on,
                pulled_at: entry.pulled_at,
                run_id: entry.run_id,
            };
            state.days.set(day, day, record);
            for (account, rows) in entry.accounts {
                if rows > 0 {
                    state.accounts.entry(account).or_default().set(day, day, entry.status);
                }
            }
            for stream in entry.streams.into_keys() {
                state.streams.entry(stream).or_default().set(day, day, entry.status);
            }
        }
        out.insert(name, state);
    }
    Ok(out)
}
