//! Reading JSON text in place. An ad analytics answer holds up to 15,000 elements; parsed into
//! `serde_json::Value` trees (a map per element, a `String` per key) it takes many times the
//! size of its body, while its rows need only a few fields of each element. Here the values
//! stay slices of the body: an object's members are handed over one by one as text, and
//! strings are borrowed unless they hold escapes.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use serde::Deserializer as _;
use serde::de::{self, Deserialize, MapAccess, Visitor};
use serde_json::value::RawValue;

/// A JSON string, borrowed from the text it was read from when it holds no escapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text<'a>(pub Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Text<'de>, D::Error> {
        deserializer.deserialize_str(TextVisitor)
    }
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Text<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
        Ok(Text(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'de>, E> {
        Ok(Text(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Text<'de>, E> {
        Ok(Text(Cow::Owned(v)))
    }
}

/// Hands each member of an object to a closure, in the order written. A key written twice is
/// handed over twice, so that the last one wins, as in a parsed map.
struct Members<F>(F);

impl<'de, F: FnMut(&str, &'de str)> Visitor<'de> for Members<F> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
            let value: &'de RawValue = map.next_value()?;
            (self.0)(&key, value.get());
        }
        Ok(())
    }
}

/// Calls `member` with each key of the object `text` and the text of its value. False when
/// `text` is not an object (nothing is called then).
pub fn members<'a>(text: &'a str, member: impl FnMut(&str, &'a str)) -> Result<bool, serde_json::Error> {
    if !is_object(text) {
        return Ok(false);
    }
    let mut deserializer = serde_json::Deserializer::from_str(text);
    (&mut deserializer).deserialize_map(Members(member))?;
    deserializer.end()?;
    Ok(true)
}

/// Whether the JSON value `text` is an object.
pub fn is_object(text: &str) -> bool {
    text.trim_start().starts_with('{')
}

/// Whether the JSON value `text` is `null`.
pub fn is_null(text: &str) -> bool {
    text.trim() == "null"
}

/// What the JSON value `text` is, for messages: `an object`, `a string`, ...
pub fn kind(text: &str) -> &'static str {
    match text.trim_start().as_bytes().first() {
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

/// The string `text` holds, or `None` when it is not a JSON string.
pub fn string(text: &str) -> Option<Cow<'_, str>> {
    if !text.trim_start().starts_with('"') {
        return None;
    }
    serde_json::from_str::<Text<'_>>(text).ok().map(|t| t.0)
}

/// The whole number `text` holds when it is written as one and fits an `i64`, as
/// `serde_json::Value::as_i64` reads it: `2024`, not `2024.0` or `"2024"`.
pub fn integer(text: &str) -> Option<i64> {
    let text = text.trim();
    // Rust's integer syntax allows a leading `+`, JSON's does not.
    if text.starts_with('+') {
        return None;
    }
    text.parse().ok()
}

/// The texts of the items of the array `text`, or `None` when it is not an array.
pub fn array(text: &str) -> Option<Vec<&str>> {
    if !text.trim_start().starts_with('[') {
        return None;
    }
    let items: Vec<&RawValue> = serde_json::from_str(text).ok()?;
    Some(items.into_iter().map(RawValue::get).collect())
}

/// Where `part`, a slice of `whole` (a value read from it in place), is in `whole`.
pub fn span(whole: &str, part: &str) -> Option<Range<usize>> {
    let start = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    let end = start.checked_add(part.len())?;
    (end <= whole.len()).then_some(start..end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_are_slices_of_the_text_in_order() {
        let text = r#"{"a": 1, "b\u0041": {"c": [1, 2]}, "s": "x\"y", "a": null}"#;
        let mut seen = Vec::new();
        assert!(members(text, |k, v| seen.push((k.to_owned(), v))).unwrap());
        assert_eq!(
            seen,
            [
                ("a".into(), "1"),
                ("bA".into(), r#"{"c": [1, 2]}"#),
                ("s".into(), r#""x\"y""#),
                ("a".into(), "null")
            ]
        );
        let (_, nested) = seen[1];
        assert_eq!(&text[span(text, nested).unwrap()], nested);
        assert!(!members("[1]", |_, _| ()).unwrap());
        assert!(members("{\"a\": }", |_, _| ()).is_err());
    }

    #[test]
    fn scalars_read_as_a_parsed_value_would() {
        assert_eq!(
            string(r#""urn:li:sponsoredCampaign:1""#),
            Some(Cow::Borrowed("urn:li:sponsoredCampaign:1"))
        );
        assert_eq!(string(r#""caf\u00e9""#).as_deref(), Some("café"));
        assert_eq!(string("12"), None);
        assert_eq!(integer("2024"), Some(2024));
        assert_eq!(integer("-3"), Some(-3));
        assert_eq!(integer("2024.0"), None);
        assert_eq!(integer("\"2024\""), None);
        assert_eq!(integer("99999999999999999999"), None);
        assert_eq!(array(r#"["a", {"b": 1}]"#), Some(vec![r#""a""#, r#"{"b": 1}"#]));
        assert_eq!(array("{}"), None);
        assert!(is_null(" null") && !is_null("0"));
        assert_eq!(
            [kind("{}"), kind("[]"), kind("\"\""), kind("true"), kind("-1")],
            ["an object", "an array", "a string", "a boolean", "a number"]
        );
        let whole = "abcdef";
        assert_eq!(span(whole, &whole[2..4]), Some(2..4));
    }
}
