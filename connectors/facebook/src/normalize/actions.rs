//! The `actions` / `action_values` arrays of an insights element to metric values.
//!
//! Each array is read once, entry by entry, straight from the element's text. An entry's action
//! type is looked up once in a table the reader keeps for its whole listing: the table knows
//! which canonical metrics the type can feed (and at which preference) and the extra metric it
//! makes otherwise, so a row costs one lookup per entry rather than a search of the array per
//! mapped type, and no name is built twice.

use std::collections::HashMap;
use std::fmt;

use kpipe_core::{Decimal, Metric, MetricName, Unit};
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::insights::{amount, decimal, present, string_of};
use crate::mapping::action_extra;

/// One entry of `actions` / `action_values`; the attribution-window keys (`7d_click`, ...)
/// repeat parts of `value` and are not read. Only used to word why an entry cannot be read,
/// exactly as reading the entry on its own words it.
#[derive(Deserialize)]
struct ActionEntry<'a> {
    #[serde(default, borrow, deserialize_with = "present")]
    #[expect(dead_code, reason = "read for its errors only")]
    action_type: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    #[expect(dead_code, reason = "read for its errors only")]
    value: Option<&'a RawValue>,
}

/// The two fields of an entry, read in place while walking the array. Unlike a derived struct
/// it accepts a JSON object only: an array entry is not read by position.
#[derive(Default)]
struct EntryFields<'a> {
    action_type: Option<&'a RawValue>,
    value: Option<&'a RawValue>,
}

/// A key of an entry object.
enum EntryKey {
    ActionType,
    Value,
    Other,
}

impl<'de> Deserialize<'de> for EntryKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = EntryKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: de::Error>(self, key: &str) -> Result<EntryKey, E> {
                Ok(match key {
                    "action_type" => EntryKey::ActionType,
                    "value" => EntryKey::Value,
                    _ => EntryKey::Other,
                })
            }
        }
        d.deserialize_identifier(KeyVisitor)
    }
}

impl<'de> Deserialize<'de> for EntryFields<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct EntryVisitor;
        impl<'de> Visitor<'de> for EntryVisitor {
            type Value = EntryFields<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an action entry object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<EntryFields<'de>, A::Error> {
                let mut fields = EntryFields::default();
                while let Some(key) = map.next_key::<EntryKey>()? {
                    let (slot, name) = match key {
                        EntryKey::ActionType => (&mut fields.action_type, "action_type"),
                        EntryKey::Value => (&mut fields.value, "value"),
                        EntryKey::Other => {
                            map.next_value::<IgnoredAny>()?;
                            continue;
                        }
                    };
                    if slot.is_some() {
                        return Err(de::Error::duplicate_field(name));
                    }
                    *slot = Some(map.next_value()?);
                }
                Ok(fields)
            }
        }
        d.deserialize_map(EntryVisitor)
    }
}

/// An action type met in the listing.
#[derive(Debug)]
struct ActionType {
    kind: Box<str>,
    /// The canonical metrics it feeds: (index in [`ActionTable::metrics`], rank in that
    /// metric's list of types, lower preferred).
    feeds: Vec<(usize, usize)>,
    /// Its extra metric, an index in [`ActionTable::extras`]; `None` when it makes no name.
    extra: Option<usize>,
    /// The array it was last read in ([`ActionTable::array`]), to refuse it twice in one.
    seen_in: u64,
    /// The type that followed it in the last array that held it: rows of a listing list
    /// their types in the same order, so this is usually the next entry's.
    next: Option<usize>,
}

/// An extra metric, shared by the action types whose names write the same.
#[derive(Debug)]
struct Extra {
    name: MetricName,
    /// The array that last wrote it, to refuse two types writing it in one.
    written_in: u64,
}

/// An entry of the array being read.
#[derive(Debug, Clone, Copy)]
struct Entry {
    kind: usize,
    value: Decimal,
    taken: bool,
}

/// What the entries of one of the two arrays become, kept for a listing.
#[derive(Debug)]
pub(super) struct ActionTable {
    /// `actions` or `action_values`, for messages.
    field: &'static str,
    /// Counts, or money in the account currency.
    unit: Unit,
    /// The canonical metrics the array feeds, in the order they are written.
    metrics: Vec<Metric>,
    types: Vec<ActionType>,
    by_kind: HashMap<Box<str>, usize>,
    extras: Vec<Extra>,
    extra_by_name: HashMap<MetricName, usize>,
    /// Counts the arrays read; marks what the current one has used.
    array: u64,
    /// The entries of the current array, a buffer kept between rows.
    entries: Vec<Entry>,
    /// For each metric, the (rank, entry) of the most preferred type the array holds.
    chosen: Vec<Option<(usize, usize)>>,
    /// The type of the first entry of the last array that had one.
    first: Option<usize>,
}

impl ActionTable {
    /// A table for `field`, whose values are in `unit`, mapping the types of each metric's list
    /// (in order of preference) to that metric.
    pub(super) fn new<'m>(
        field: &'static str,
        unit: Unit,
        mapping: impl IntoIterator<Item = (Metric, &'m [String])>,
    ) -> ActionTable {
        let mut table = ActionTable {
            field,
            unit,
            metrics: Vec::new(),
            types: Vec::new(),
            by_kind: HashMap::new(),
            extras: Vec::new(),
            extra_by_name: HashMap::new(),
            array: 0,
            entries: Vec::new(),
            chosen: Vec::new(),
            first: None,
        };
        for (metric, kinds) in mapping {
            let slot = table.metrics.len();
            table.metrics.push(metric);
            for (rank, kind) in kinds.iter().enumerate() {
                let t = table.type_index(kind);
                table.types[t].feeds.push((slot, rank));
            }
        }
        table.chosen = vec![None; table.metrics.len()];
        table
    }

    fn type_index(&mut self, kind: &str) -> usize {
        if let Some(&t) = self.by_kind.get(kind) {
            return t;
        }
        let extra = action_extra(kind, self.unit).map(|name| match self.extra_by_name.get(&name) {
            Some(&x) => x,
            None => {
                self.extras.push(Extra { name: name.clone(), written_in: 0 });
                self.extra_by_name.insert(name, self.extras.len() - 1);
                self.extras.len() - 1
            }
        });
        self.types.push(ActionType { kind: kind.into(), feeds: Vec::new(), extra, seen_in: 0, next: None });
        self.by_kind.insert(kind.into(), self.types.len() - 1);
        self.types.len() - 1
    }

    /// Reads `raw` (`[{"action_type": "lead", "value": "3", "7d_click": "3"}, ...]`) and hands
    /// `write` its values: each canonical metric from the most preferred of its types that the
    /// array holds (never a sum: Meta reports one event under several types), in mapping order,
    /// then every entry no metric took as its extra metric, in the array's order.
    pub(super) fn read(
        &mut self,
        raw: Option<&RawValue>,
        mut write: impl FnMut(MetricName, Decimal),
    ) -> Result<(), String> {
        self.array += 1;
        self.entries.clear();
        self.chosen.fill(None);
        let Some(raw) = raw else { return Ok(()) };
        let mut refused = None;
        let mut deserializer = serde_json::Deserializer::from_str(raw.get());
        let walked = deserializer.deserialize_seq(ArrayVisitor { table: self, refused: &mut refused });
        match (refused, walked) {
            (Some(reason), _) => return Err(reason),
            (None, Err(_)) => return Err(shape_error(raw, self.field)),
            (None, Ok(())) => {}
        }
        for (metric, chosen) in self.metrics.iter().zip(&self.chosen) {
            if let Some((_, at)) = *chosen {
                let entry = &mut self.entries[at];
                entry.taken = true;
                write((*metric).into(), entry.value);
            }
        }
        for entry in self.entries.iter().filter(|e| !e.taken) {
            let kind = &self.types[entry.kind];
            let x = kind.extra.ok_or_else(|| format!("action type {:?} makes no metric name", kind.kind))?;
            let extra = &mut self.extras[x];
            if extra.written_in == self.array {
                return Err(format!(
                    "action type {:?} and another one both make `{}`",
                    kind.kind, extra.name
                ));
            }
            extra.written_in = self.array;
            write(extra.name.clone(), entry.value);
        }
        Ok(())
    }

    /// Entry `i` of the current array, checked.
    fn accept(&mut self, i: usize, entry: EntryFields<'_>) -> Result<(), String> {
        let field = self.field;
        let kind = entry
            .action_type
            .and_then(string_of)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| format!("`{field}[{i}]` has no `action_type`"))?;
        let what = format_args!("`{field}` {kind}");
        let raw = entry.value.ok_or_else(|| format!("{what} has no `value`"))?;
        let value = if self.unit == Unit::Currency { decimal(raw, &what)? } else { amount(raw, &what)? };
        let previous = self.entries.last().map(|e| e.kind);
        let expected = match previous {
            Some(p) => self.types[p].next,
            None => self.first,
        };
        let t = match expected {
            Some(t) if *self.types[t].kind == *kind => t,
            _ => self.type_index(&kind),
        };
        match previous {
            Some(p) => self.types[p].next = Some(t),
            None => self.first = Some(t),
        }
        let at = self.entries.len();
        let action = &mut self.types[t];
        if action.seen_in == self.array {
            return Err(format!("{what} appears twice"));
        }
        action.seen_in = self.array;
        for &(metric, rank) in &action.feeds {
            let chosen = &mut self.chosen[metric];
            if chosen.is_none_or(|(best, _)| rank < best) {
                *chosen = Some((rank, at));
            }
        }
        self.entries.push(Entry { kind: t, value, taken: false });
        Ok(())
    }
}

/// Walks an array, handing each entry to the table; the first entry the table refuses stops the
/// walk with its reason in `refused`.
struct ArrayVisitor<'t> {
    table: &'t mut ActionTable,
    refused: &'t mut Option<String>,
}

impl<'de> Visitor<'de> for ArrayVisitor<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of action entries")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0;
        while let Some(entry) = seq.next_element::<EntryFields<'de>>()? {
            if let Err(reason) = self.table.accept(i, entry) {
                *self.refused = Some(reason);
                return Err(de::Error::custom("entry refused"));
            }
            i += 1;
        }
        Ok(())
    }
}

/// Why an array could not be walked as entry objects, worded as reading its entries one by one
/// words it: the array, or the first entry that is not an object or cannot be read.
fn shape_error(raw: &RawValue, field: &str) -> String {
    let Ok(list) = serde_json::from_str::<Vec<&RawValue>>(raw.get()) else {
        return format!("`{field}` is not an array");
    };
    for (i, entry) in list.into_iter().enumerate() {
        if !entry.get().starts_with('{') {
            return format!("`{field}[{i}]` is not an object");
        }
        if let Err(e) = serde_json::from_str::<ActionEntry<'_>>(entry.get()) {
            return format!("`{field}[{i}]`: {e}");
        }
    }
    format!("`{field}` cannot be read")
}
