//! `POST /crm/v3/objects/{objectType}/search` (§3): filter groups (OR of ANDs), one sort,
//! `limit` ≤ 200, an offset-like `after`, and the 10,000-result ceiling answered with HTTP 400.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::data::{CrmObject, CrmRecord, Dataset, PropertyType, iso, parse_ms};
use super::{HubSpotState, SearchCall, validation_error};
use crate::config::CannedResponse;

const MAX_GROUPS: usize = 5;
const MAX_FILTERS_PER_GROUP: usize = 10;
const MAX_FILTERS: usize = 25;
const DEFAULT_LIMIT: u64 = 10;

/// A property value as filters and sorts compare it.
#[derive(Debug, Clone, PartialEq)]
enum Key {
    Number(f64),
    Text(String),
}

impl Key {
    fn of(kind: PropertyType, text: &str) -> Option<Self> {
        match kind {
            PropertyType::Datetime => parse_ms(text).map(|ms| Self::Number(ms as f64)),
            PropertyType::Number => {
                text.trim().parse::<f64>().ok().filter(|n| n.is_finite()).map(Self::Number)
            }
            PropertyType::Text => Some(Self::Text(text.to_owned())),
        }
    }

    fn cmp(&self, other: &Self) -> Option<Ordering> {
        match (self, other) {
            (Self::Number(a), Self::Number(b)) => a.partial_cmp(b),
            (Self::Text(a), Self::Text(b)) => Some(a.cmp(b)),
            _ => None,
        }
    }
}

/// Every record's property values, parsed once for filters and sorts, in the order of
/// [`Dataset::records`].
#[derive(Debug, Default)]
pub(super) struct Index {
    keys: HashMap<CrmObject, Vec<HashMap<String, Key>>>,
}

impl Index {
    pub(super) fn new(data: &Dataset) -> Self {
        let mut keys = HashMap::new();
        for object in [CrmObject::Contacts, CrmObject::Deals, CrmObject::FeedbackSubmissions] {
            let parsed = data
                .records(object)
                .iter()
                .map(|record| {
                    record
                        .properties
                        .iter()
                        .filter_map(|(name, value)| {
                            let kind = object.property_type(name)?;
                            Some((name.clone(), Key::of(kind, value.as_deref()?)?))
                        })
                        .collect()
                })
                .collect();
            keys.insert(object, parsed);
        }
        Self { keys }
    }

    fn of(&self, object: CrmObject) -> &[HashMap<String, Key>] {
        self.keys.get(&object).map_or(&[], Vec::as_slice)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Neq,
    Lt,
    Lte,
    Gt,
    Gte,
    Between,
    In,
    NotIn,
    HasProperty,
    NotHasProperty,
}

impl Op {
    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "EQ" => Self::Eq,
            "NEQ" => Self::Neq,
            "LT" => Self::Lt,
            "LTE" => Self::Lte,
            "GT" => Self::Gt,
            "GTE" => Self::Gte,
            "BETWEEN" => Self::Between,
            "IN" => Self::In,
            "NOT_IN" => Self::NotIn,
            "HAS_PROPERTY" => Self::HasProperty,
            "NOT_HAS_PROPERTY" => Self::NotHasProperty,
            _ => return None,
        })
    }
}

#[derive(Debug)]
struct Filter {
    property: String,
    op: Op,
    value: Option<Key>,
    high: Option<Key>,
    values: Vec<Key>,
}

impl Filter {
    fn matches(&self, key: Option<&Key>) -> bool {
        let Some(key) = key else { return matches!(self.op, Op::NotHasProperty | Op::Neq | Op::NotIn) };
        let against = |k: &Option<Key>| k.as_ref().and_then(|v| key.cmp(v));
        match self.op {
            Op::HasProperty => true,
            Op::NotHasProperty => false,
            Op::Eq => against(&self.value) == Some(Ordering::Equal),
            Op::Neq => against(&self.value) != Some(Ordering::Equal),
            Op::Lt => against(&self.value) == Some(Ordering::Less),
            Op::Lte => matches!(against(&self.value), Some(Ordering::Less | Ordering::Equal)),
            Op::Gt => against(&self.value) == Some(Ordering::Greater),
            Op::Gte => matches!(against(&self.value), Some(Ordering::Greater | Ordering::Equal)),
            Op::Between => {
                matches!(against(&self.value), Some(Ordering::Greater | Ordering::Equal))
                    && matches!(against(&self.high), Some(Ordering::Less | Ordering::Equal))
            }
            Op::In => self.values.iter().any(|v| key.cmp(v) == Some(Ordering::Equal)),
            Op::NotIn => !self.values.iter().any(|v| key.cmp(v) == Some(Ordering::Equal)),
        }
    }
}

#[derive(Debug)]
struct Query {
    groups: Vec<Vec<Filter>>,
    sort: Option<(String, PropertyType, bool)>,
    properties: Option<Vec<String>>,
    limit: u64,
    after: u64,
}

fn string_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn parse_filter(object: CrmObject, filter: &Value) -> Result<Filter, String> {
    let property = filter
        .get("propertyName")
        .and_then(Value::as_str)
        .ok_or("Each filter needs a `propertyName`.")?
        .to_owned();
    let kind = object
        .property_type(&property)
        .ok_or_else(|| format!("Property \"{property}\" does not exist on object type {}.", object.name()))?;
    let op_text = filter.get("operator").and_then(Value::as_str).unwrap_or("EQ");
    let op = Op::parse(op_text).ok_or_else(|| format!("Unknown filter operator \"{op_text}\"."))?;
    let key = |field: &str| -> Result<Option<Key>, String> {
        match filter.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => {
                let text =
                    string_of(v).ok_or_else(|| format!("`{field}` of \"{property}\" must be a string."))?;
                Key::of(kind, &text)
                    .map(Some)
                    .ok_or_else(|| format!("\"{text}\" is not a valid value for property \"{property}\"."))
            }
        }
    };
    let value = key("value")?;
    let high = key("highValue")?;
    let values = match filter.get("values") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                string_of(v)
                    .and_then(|t| Key::of(kind, &t))
                    .ok_or_else(|| format!("{v} is not a valid value for property \"{property}\"."))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(format!("`values` of \"{property}\" must be an array.")),
    };
    let needs_value = matches!(op, Op::Eq | Op::Neq | Op::Lt | Op::Lte | Op::Gt | Op::Gte | Op::Between);
    if needs_value && value.is_none() {
        return Err(format!("Operator {op_text} on \"{property}\" needs a `value`."));
    }
    if op == Op::Between && high.is_none() {
        return Err(format!("Operator BETWEEN on \"{property}\" needs a `highValue`."));
    }
    if matches!(op, Op::In | Op::NotIn) && values.is_empty() {
        return Err(format!("Operator {op_text} on \"{property}\" needs `values`."));
    }
    Ok(Filter { property, op, value, high, values })
}

fn parse_query(object: CrmObject, body: &Value, max_limit: u64) -> Result<Query, String> {
    let groups_json = match body.get("filterGroups") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(groups)) => groups.clone(),
        Some(_) => return Err("`filterGroups` must be an array.".to_owned()),
    };
    if groups_json.len() > MAX_GROUPS {
        return Err(format!("Too many filter groups ({}); the limit is {MAX_GROUPS}.", groups_json.len()));
    }
    let mut groups = Vec::new();
    let mut total = 0;
    for group in &groups_json {
        let filters =
            group.get("filters").and_then(Value::as_array).ok_or("Each filter group needs `filters`.")?;
        if filters.len() > MAX_FILTERS_PER_GROUP {
            return Err(format!(
                "Too many filters in a group ({}); the limit is {MAX_FILTERS_PER_GROUP}.",
                filters.len()
            ));
        }
        total += filters.len();
        groups.push(filters.iter().map(|f| parse_filter(object, f)).collect::<Result<Vec<_>, _>>()?);
    }
    if total > MAX_FILTERS {
        return Err(format!("Too many filters ({total}); the limit is {MAX_FILTERS}."));
    }
    let sort = match body.get("sorts").and_then(Value::as_array).and_then(|s| s.first()) {
        None => None,
        Some(Value::String(text)) => {
            let (name, descending) = text.strip_prefix('-').map_or((text.as_str(), false), |n| (n, true));
            Some((name.to_owned(), !descending))
        }
        Some(sort) => {
            let name =
                sort.get("propertyName").and_then(Value::as_str).ok_or("A sort needs `propertyName`.")?;
            let ascending = match sort.get("direction").and_then(Value::as_str).unwrap_or("ASCENDING") {
                "ASCENDING" => true,
                "DESCENDING" => false,
                other => return Err(format!("Unknown sort direction \"{other}\".")),
            };
            Some((name.to_owned(), ascending))
        }
    };
    let sort = match sort {
        Some((name, ascending)) => {
            let kind = object
                .property_type(&name)
                .ok_or_else(|| format!("Cannot sort by \"{name}\": the property does not exist."))?;
            Some((name, kind, ascending))
        }
        None => None,
    };
    let properties = match body.get("properties") {
        None | Some(Value::Null) => None,
        Some(Value::Array(names)) => {
            Some(names.iter().filter_map(|n| n.as_str().map(str::to_owned)).collect())
        }
        Some(_) => return Err("`properties` must be an array of names.".to_owned()),
    };
    let limit = match body.get("limit") {
        None | Some(Value::Null) => DEFAULT_LIMIT,
        Some(v) => v.as_u64().ok_or("`limit` must be a whole number.")?,
    };
    if limit == 0 || limit > max_limit {
        return Err(format!("`limit` must be between 1 and {max_limit}; got {limit}."));
    }
    let after = match body.get("after") {
        None | Some(Value::Null) => 0,
        Some(v) => string_of(v)
            .and_then(|t| if t.is_empty() { Some(0) } else { t.parse().ok() })
            .ok_or("`after` is not a paging token this API gave.")?,
    };
    Ok(Query { groups, sort, properties, limit, after })
}

fn result(object: CrmObject, record: &CrmRecord, requested: Option<&[String]>) -> Value {
    let mut properties = Map::new();
    let mut put = |name: &str| {
        if object.property_type(name).is_some() || record.properties.contains_key(name) {
            properties.insert(
                name.to_owned(),
                record.get(name).map_or(Value::Null, |v| Value::String(v.to_owned())),
            );
        }
    };
    match requested {
        Some(names) if !names.is_empty() => {
            for name in [object.created_property(), object.modified_property(), "hs_object_id"] {
                put(name);
            }
            for name in names {
                put(name);
            }
        }
        _ => object.default_properties().iter().for_each(|name| put(name)),
    }
    json!({
        "id": record.id.to_string(),
        "properties": properties,
        "createdAt": iso(record.created_ms),
        "updatedAt": iso(record.modified_ms),
        "archived": false,
    })
}

fn answer(state: &HubSpotState, object_name: &str, body: &Value) -> Result<Value, String> {
    let object = CrmObject::parse(object_name)
        .ok_or_else(|| format!("Unable to infer object type from: {object_name}"))?;
    let query = parse_query(object, body, state.api.max_search_limit)?;
    let ceiling = state.api.search_result_ceiling;
    if query.after >= ceiling || query.after + query.limit > ceiling {
        return Err(format!(
            "The search returns at most {ceiling} results: after ({}) plus limit ({}) goes past them. \
             Narrow the query (for example with a filter on the last-modified date) instead.",
            query.after, query.limit
        ));
    }
    let keys = state.index.of(object);
    let mut hits: Vec<(&CrmRecord, &HashMap<String, Key>)> = state
        .data
        .records(object)
        .iter()
        .zip(keys)
        .filter(|(_, k)| {
            query.groups.is_empty()
                || query.groups.iter().any(|g| g.iter().all(|f| f.matches(k.get(&f.property))))
        })
        .collect();
    if let Some((name, _, ascending)) = &query.sort {
        let mut decorated: Vec<(Option<&Key>, &CrmRecord, &HashMap<String, Key>)> =
            hits.iter().map(|(r, k)| (k.get(name), *r, *k)).collect();
        decorated.sort_by(|(ka, a, _), (kb, b, _)| {
            let order = match (ka, kb) {
                (Some(x), Some(y)) => x.cmp(y).unwrap_or(Ordering::Equal),
                // Records without a value come last either way.
                (Some(_), None) => return Ordering::Less,
                (None, Some(_)) => return Ordering::Greater,
                (None, None) => Ordering::Equal,
            };
            let order = if *ascending { order } else { order.reverse() };
            order.then(a.id.cmp(&b.id))
        });
        hits = decorated.into_iter().map(|(_, r, k)| (r, k)).collect();
    } else {
        hits.sort_by_key(|(r, _)| r.id);
    }
    let total = hits.len() as u64;
    let start = usize::try_from(query.after).unwrap_or(usize::MAX).min(hits.len());
    let end = start.saturating_add(usize::try_from(query.limit).unwrap_or(usize::MAX)).min(hits.len());
    let results: Vec<Value> =
        hits[start..end].iter().map(|(r, _)| result(object, r, query.properties.as_deref())).collect();
    let mut response = json!({"total": total, "results": results});
    // `paging.next` is there whenever more results exist, even past the ceiling.
    if (end as u64) < total {
        response["paging"] = json!({"next": {"after": end.to_string()}});
    }
    Ok(response)
}

pub(super) async fn search(
    State(state): State<Arc<HubSpotState>>,
    Path(object): Path<String>,
    body: Result<Json<Value>, JsonRejection>,
) -> Response {
    let (body, outcome) = match body {
        Ok(Json(body)) => {
            let outcome = answer(&state, &object, &body);
            (body, outcome)
        }
        Err(rejection) => (Value::Null, Err(format!("Invalid input JSON: {}", rejection.body_text()))),
    };
    let canned = match outcome {
        Ok(value) => CannedResponse::json(200, value),
        Err(message) => validation_error(&message),
    };
    state.api.log_search(SearchCall { object, body, status: canned.status });
    canned.to_response()
}
