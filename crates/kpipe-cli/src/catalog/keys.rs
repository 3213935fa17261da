//! A configuration's keys read off its JSON Schema, for tables people read: the dotted key, its
//! type in words, whether it is required, its default, whether it is a secret.

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

/// One key of a `[sources.<name>]` table.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ConfigKey {
    /// The key; keys of nested tables are dotted (`rate_limit.requests`), those of tables in a
    /// list marked `[]` (`reports[].name`).
    pub key: String,
    /// Its type in words: `string`, `integer`, `array of string`, `"a" | "b"`, `table`.
    #[serde(rename = "type")]
    pub type_name: String,
    /// Whether the table must give it.
    pub required: bool,
    /// The value used when it is left out, where the schema states one.
    pub default: Option<Value>,
    /// A secret: given, never shown back.
    pub secret: bool,
    /// What it is for.
    pub description: Option<String>,
}

/// The keys of the object schema `schema` (a root schema with `$defs`).
pub fn config_keys(schema: &Value) -> Vec<ConfigKey> {
    let mut out = Vec::new();
    walk("", schema, schema, &mut out, 0);
    out
}

/// Nested tables deeper than this are listed as `table` without their keys.
const MAX_DEPTH: usize = 4;

fn walk(prefix: &str, object: &Value, root: &Value, out: &mut Vec<ConfigKey>, depth: usize) {
    let Some(properties) = object.get("properties").and_then(Value::as_object) else { return };
    let required: Vec<&str> = object
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for (name, property) in properties {
        let key = format!("{prefix}{name}");
        let inner = non_null(property, root);
        let default = property.get("default").cloned();
        let description = text(property, "description")
            .or_else(|| text(inner, "description"))
            .map(|d| readable(&d, default.as_ref()));
        out.push(ConfigKey {
            key: key.clone(),
            type_name: type_name(property, root),
            required: required.contains(&name.as_str()),
            default,
            secret: flag(property, "x-secret") || flag(inner, "x-secret"),
            description,
        });
        if depth >= MAX_DEPTH {
            continue;
        }
        if inner.get("properties").is_some() {
            walk(&format!("{key}."), inner, root, out, depth + 1);
        } else if let Some(items) = inner.get("items").map(|i| non_null(i, root))
            && items.get("properties").is_some()
        {
            walk(&format!("{key}[]."), items, root, out, depth + 1);
        }
    }
}

/// A doc comment made for people reading the configuration: its links to Rust items
/// (`` [`DEFAULT_BASE_URL`] ``) become the default value where the key has one, and plain code
/// otherwise.
fn readable(description: &str, default: Option<&Value>) -> String {
    let mut out = String::with_capacity(description.len());
    let mut rest = description;
    while let Some(start) = rest.find("[`") {
        let Some(len) = rest[start..].find("`]") else { break };
        out.push_str(&rest[..start]);
        let item = &rest[start + 2..start + len];
        match default {
            Some(value) => out
                .push_str(&format!("`{}`", value.as_str().map_or_else(|| value.to_string(), str::to_owned))),
            None => out.push_str(&format!("`{item}`")),
        }
        rest = &rest[start + len + 2..];
    }
    out.push_str(rest);
    out
}

fn flag(schema: &Value, name: &str) -> bool {
    schema.get(name).and_then(Value::as_bool).unwrap_or(false)
}

fn text(schema: &Value, name: &str) -> Option<String> {
    schema.get(name).and_then(Value::as_str).map(str::to_owned)
}

/// `schema` with a `$ref` followed (within `root`'s `$defs`).
fn resolve<'a>(schema: &'a Value, root: &'a Value) -> &'a Value {
    let target = schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/$defs/"))
        .and_then(|name| root.get("$defs")?.get(name));
    target.unwrap_or(schema)
}

/// The non-null member of an optional value's schema (`anyOf: [X, {type: null}]`), resolved.
fn non_null<'a>(schema: &'a Value, root: &'a Value) -> &'a Value {
    let schema = resolve(schema, root);
    let members: Vec<&Value> = alternatives(schema).into_iter().filter(|m| !is_null(m)).collect();
    match members.as_slice() {
        [only] => resolve(only, root),
        _ => schema,
    }
}

fn alternatives(schema: &Value) -> Vec<&Value> {
    ["anyOf", "oneOf"].iter().filter_map(|k| schema.get(*k).and_then(Value::as_array)).flatten().collect()
}

fn is_null(schema: &Value) -> bool {
    schema.get("type").and_then(Value::as_str) == Some("null") || schema.get("const") == Some(&Value::Null)
}

/// The type of `schema` in words.
fn type_name(schema: &Value, root: &Value) -> String {
    let schema = resolve(schema, root);
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        let names: Vec<String> = values.iter().filter(|v| !v.is_null()).map(Value::to_string).collect();
        return names.join(" | ");
    }
    if let Some(value) = schema.get("const").filter(|v| !v.is_null()) {
        return value.to_string();
    }
    let members: Vec<&Value> = alternatives(schema).into_iter().filter(|m| !is_null(m)).collect();
    if !members.is_empty() {
        let mut names: Vec<String> = Vec::new();
        for name in members.iter().map(|m| type_name(m, root)) {
            if !names.contains(&name) {
                names.push(name);
            }
        }
        // An enum made of one-value members (`oneOf` of `const`s) reads as a list of values.
        return names.join(if members.iter().all(|m| resolve(m, root).get("const").is_some()) {
            " | "
        } else {
            " or "
        });
    }
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).filter(|t| *t != "null").collect(),
        _ => Vec::new(),
    };
    let named: Vec<String> = types
        .iter()
        .map(|t| match *t {
            "array" => match schema.get("items") {
                Some(items) => format!("array of {}", type_name(items, root)),
                None => "array".to_owned(),
            },
            "object" => match schema.get("additionalProperties").filter(|a| a.is_object()) {
                Some(values) => format!("table of {}", type_name(values, root)),
                None => "table".to_owned(),
            },
            other => other.to_owned(),
        })
        .collect();
    if named.is_empty() { "any".to_owned() } else { named.join(" or ") }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn keys_are_read_with_types_defaults_and_secrets() {
        let schema = json!({
            "type": "object",
            "required": ["ids"],
            "properties": {
                "ids": {"type": "array", "items": {"type": "string"}, "description": "Ids."},
                "token": {"type": ["string", "null"], "writeOnly": true, "x-secret": true},
                "tier": {"anyOf": [{"$ref": "#/$defs/Tier"}, {"type": "null"}]},
                "limit": {"anyOf": [{"$ref": "#/$defs/Limit"}, {"type": "null"}], "description": "Pace."},
                "size": {"type": ["integer", "null"], "default": 500},
                "map": {"type": ["object", "null"], "additionalProperties": {"type": "array", "items": {"type": "string"}}}
            },
            "$defs": {
                "Tier": {"oneOf": [{"const": "free", "type": "string"}, {"const": "pro", "type": "string"}]},
                "Limit": {"type": "object", "required": ["requests"], "properties": {"requests": {"type": "integer"}}}
            }
        });
        let keys = config_keys(&schema);
        let row = |k: &str| keys.iter().find(|c| c.key == k).unwrap();
        assert_eq!((row("ids").type_name.as_str(), row("ids").required), ("array of string", true));
        assert!(row("token").secret && !row("token").required);
        assert_eq!(row("tier").type_name, "\"free\" | \"pro\"");
        assert_eq!(row("limit").type_name, "table");
        assert_eq!(
            (row("limit.requests").type_name.as_str(), row("limit.requests").required),
            ("integer", true)
        );
        assert_eq!(row("size").default, Some(json!(500)));
        assert_eq!(row("map").type_name, "table of array of string");
    }

    #[test]
    fn links_to_rust_items_become_the_default() {
        let url = json!("https://x.test");
        assert_eq!(
            readable("The URL (default [`DEFAULT_URL`]).", Some(&url)),
            "The URL (default `https://x.test`)."
        );
        assert_eq!(readable("See [`fields::MAX`].", None), "See `fields::MAX`.");
        assert_eq!(readable("Cut [`open", None), "Cut [`open");
    }
}
