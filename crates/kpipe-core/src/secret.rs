//! Secrets that never print, and the process-wide registry of their values that every output
//! of the process is scrubbed with.
//!
//! `Debug` and `Display` of a [`Secret`] hide it, but a secret also travels as text the program
//! does not control: a token endpoint or an API that quotes the request in its error answer
//! (form body, `Authorization` header, query) puts the value into an error message, and from
//! there into logs, summaries and files. Every secret value is therefore registered when it is
//! made, and [`scrub`] replaces what was registered in any text before it leaves the process.

use std::borrow::Cow;
use std::fmt;
use std::sync::{PoisonError, RwLock};

use base64::engine::general_purpose::{STANDARD, URL_SAFE};

/// What [`scrub`] puts in place of a secret.
pub const REDACTED: &str = "[redacted]";

/// Values shorter than this (in characters) are not registered: they would scrub ordinary
/// words and numbers out of every message, and a real credential is longer.
pub const MIN_REGISTERED_CHARS: usize = 8;

/// The shortest beginning of a secret that [`scrub`] removes before a `…` that cut it.
const MIN_CUT_PREFIX: usize = 4;

/// A token, client secret or refresh token. `Debug` and `Display` show `***`; only
/// [`Secret::expose`] gives the value, and nothing serializes it. Making one (with
/// [`Secret::new`] or by deserializing) registers its value for [`scrub`].
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(from = "String")]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`, and registers it so that [`scrub`] removes it from any text.
    pub fn new(value: impl Into<String>) -> Secret {
        let value = value.into();
        register(&value);
        Secret(value)
    }

    /// The value, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Deserializing goes through here so that a secret read from a configuration is registered
/// like one made in code.
impl From<String> for Secret {
    fn from(value: String) -> Secret {
        Secret::new(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// In a configuration's JSON Schema a secret is a string marked `writeOnly` (it is given, never
/// shown back) and `x-secret` (Airbyte's `airbyte_secret`), so that forms and docs built from
/// the schema hide it.
impl schemars::JsonSchema for Secret {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "Secret".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "writeOnly": true, "x-secret": true})
    }
}

/// Whether a configuration key's name says that its value is a secret: `client_secret`,
/// `access_token`, `password`, `private_key`, `api_key`, `assertion`. Matching is by part of the
/// name and errs on the side of hiding.
pub fn is_secret_key(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["secret", "token", "password", "key", "assertion"].iter().any(|part| name.contains(part))
}

/// Whether any key of a dotted key path (`sources.li.client_secret`, `keys[0]`) says that its
/// value is a secret ([`is_secret_key`]).
pub fn is_secret_key_path(path: &str) -> bool {
    path.split(['.', '[', ']']).any(is_secret_key)
}

/// The values registered, and every form in which [`scrub`] looks for them, longest first so
/// that a secret containing another is replaced whole.
struct Registry {
    values: Vec<Box<str>>,
    forms: Vec<Box<str>>,
}

static REGISTRY: RwLock<Registry> = RwLock::new(Registry { values: Vec::new(), forms: Vec::new() });

/// Registers `value` as a secret for [`scrub`]. Values shorter than [`MIN_REGISTERED_CHARS`]
/// are ignored; a value registered again is not stored twice (access tokens are made anew at
/// every refresh, often with the same value).
pub fn register(value: &str) {
    if value.chars().count() < MIN_REGISTERED_CHARS {
        return;
    }
    let known = |r: &Registry| r.values.iter().any(|v| **v == *value);
    if known(&REGISTRY.read().unwrap_or_else(PoisonError::into_inner)) {
        return;
    }
    // The forms are computed outside the lock: registering never holds up a thread that logs.
    let forms = forms_of(value);
    let mut registry = REGISTRY.write().unwrap_or_else(PoisonError::into_inner);
    if known(&registry) {
        return;
    }
    registry.values.push(value.into());
    for form in forms {
        if !registry.forms.contains(&form) {
            registry.forms.push(form);
        }
    }
    registry.forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
}

/// `text` with every registered secret replaced by [`REDACTED`]: as it is, JSON-escaped,
/// form-encoded (how a token request's body and a query carry it), and base64-encoded in either
/// alphabet at any offset (how `Authorization: Basic base64(client_id:client_secret)` carries
/// it). A beginning of a secret just before a `…` (an excerpt of an answer cut there) is removed
/// too. Text without a secret comes back borrowed.
pub fn scrub(text: &str) -> Cow<'_, str> {
    let registry = REGISTRY.read().unwrap_or_else(PoisonError::into_inner);
    if registry.forms.is_empty() {
        return Cow::Borrowed(text);
    }
    let mut out = Cow::Borrowed(text);
    for form in &registry.forms {
        if out.contains(&**form) {
            out = Cow::Owned(out.replace(&**form, REDACTED));
        }
    }
    if out.contains('…')
        && let Some(cut) = scrub_cut_prefixes(&out, &registry.forms)
    {
        out = Cow::Owned(cut);
    }
    out
}

/// Removes what precedes a `…` when it is the beginning of a registered form: excerpts of long
/// answers end there, possibly in the middle of a secret.
fn scrub_cut_prefixes(text: &str, forms: &[Box<str>]) -> Option<String> {
    let mut cuts = Vec::new();
    for (at, _) in text.match_indices('…') {
        let before = &text[..at];
        let longest = forms
            .iter()
            .filter_map(|form| {
                (MIN_CUT_PREFIX..form.len())
                    .rev()
                    .find(|&k| form.is_char_boundary(k) && before.ends_with(&form[..k]))
            })
            .max();
        if let Some(k) = longest {
            cuts.push((at - k, at));
        }
    }
    if cuts.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut from = 0;
    for (start, end) in cuts {
        if start >= from {
            out.push_str(&text[from..start]);
            out.push_str(REDACTED);
            from = end;
        }
    }
    out.push_str(&text[from..]);
    Some(out)
}

/// Every form in which `value` may appear in text that quotes a request or a document.
fn forms_of(value: &str) -> Vec<Box<str>> {
    let mut forms: Vec<String> = vec![value.to_owned()];
    // An error body or a log line in JSON escapes quotes, backslashes and control characters.
    forms.push(json_escaped(value));
    // `application/x-www-form-urlencoded`: token request bodies, and queries built by reqwest.
    let form_encoded: String = url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
    forms.push(form_encoded.replace('+', "%20"));
    // The oauth2 crate form-encodes the client secret before putting it into a Basic header.
    for plain in [value.as_bytes(), form_encoded.as_bytes()] {
        forms.extend(base64_cores(plain, &STANDARD));
        forms.extend(base64_cores(plain, &URL_SAFE));
    }
    forms.push(form_encoded);
    let mut unique: Vec<Box<str>> = Vec::new();
    for form in forms {
        if form.chars().count() >= MIN_REGISTERED_CHARS && !unique.iter().any(|u| **u == *form) {
            unique.push(form.into_boxed_str());
        }
    }
    unique
}

fn json_escaped(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

/// The characters of base64 that depend on `bytes` alone, for each of the three offsets at which
/// `bytes` can start inside a longer encoded text (`client_id:` before a client secret): the
/// characters that mix in a neighbouring byte are left out, so each core appears in any encoding
/// of any text that contains `bytes` at that offset.
fn base64_cores(bytes: &[u8], engine: &impl base64::Engine) -> Vec<String> {
    (0..3usize)
        .filter_map(|offset| {
            let mut padded = vec![0u8; offset];
            padded.extend_from_slice(bytes);
            let encoded = engine.encode(&padded);
            // With 1 byte before, the first 2 characters hold bits of it; with 2 bytes, 3.
            let skip = [0, 2, 3][offset];
            // A last group of fewer than 3 bytes is completed by whatever follows.
            let end = padded.len() / 3 * 4;
            encoded.get(skip..end).map(str::to_owned)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    use super::*;

    #[test]
    fn never_prints_its_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s} {s:#?}"), "Secret(***) *** Secret(***)");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn a_made_secret_is_scrubbed_from_text() {
        let _s = Secret::new("tok-registered-by-new-1");
        assert_eq!(scrub("Bearer tok-registered-by-new-1, again"), "Bearer [redacted], again");
        assert!(matches!(scrub("nothing secret here"), Cow::Borrowed(_)));
    }

    #[test]
    fn a_deserialized_secret_is_registered() {
        let s: Secret = serde_json::from_str("\"deserialized-secret-value-2\"").expect("a string");
        assert_eq!(s.expose(), "deserialized-secret-value-2");
        assert_eq!(scrub("x deserialized-secret-value-2 y"), "x [redacted] y");
    }

    #[test]
    fn short_values_are_not_registered() {
        register("1234567");
        register("http");
        assert_eq!(scrub("1234567 http"), "1234567 http");
    }

    #[test]
    fn registering_again_stores_nothing_more() {
        register("the same value, twice 3");
        // Only this value's entries: other tests of this binary register theirs meanwhile.
        let count = || {
            let registry = REGISTRY.read().unwrap_or_else(PoisonError::into_inner);
            let forms = forms_of("the same value, twice 3");
            let values = registry.values.iter().filter(|v| &***v == "the same value, twice 3").count();
            (values, registry.forms.iter().filter(|f| forms.contains(*f)).count())
        };
        let before = count();
        for _ in 0..100 {
            register("the same value, twice 3");
        }
        assert_eq!(before.0, 1);
        assert_eq!(count(), before);
    }

    #[test]
    fn form_encoded_and_json_escaped_forms_are_scrubbed() {
        register("s3cret/with spaces+plus&amp 4");
        let body = "grant_type=refresh_token&client_secret=s3cret%2Fwith+spaces%2Bplus%26amp+4&x=1";
        assert_eq!(scrub(body), "grant_type=refresh_token&client_secret=[redacted]&x=1");
        assert_eq!(scrub("q=s3cret%2Fwith%20spaces%2Bplus%26amp%204"), "q=[redacted]");
        register("quote\"and\\backslash 5");
        assert_eq!(scrub(r#"{"e":"quote\"and\\backslash 5"}"#), r#"{"e":"[redacted]"}"#);
    }

    #[test]
    fn a_basic_authorization_header_is_scrubbed_at_any_offset() {
        register("client-secret-in-basic-6");
        for id in ["c", "cl", "cli", "a-client-id"] {
            for engine in [&STANDARD, &URL_SAFE] {
                let header = engine.encode(format!("{id}:client-secret-in-basic-6"));
                let scrubbed = scrub(&header);
                assert!(scrubbed.contains(REDACTED), "{id}: {header} -> {scrubbed}");
                // What is left around the redaction decodes to no more than 2 bytes of the secret.
                assert!(scrubbed.len() < header.len(), "{header}");
            }
        }
        // The oauth2 crate form-encodes before base64.
        register("secret with/space 7");
        let header = STANDARD.encode("id:secret+with%2Fspace+7");
        assert!(scrub(&header).contains(REDACTED), "{header}");
    }

    #[test]
    fn a_secret_cut_by_an_excerpt_is_removed_up_to_the_cut() {
        register("refresh-token-cut-in-the-middle-8");
        assert_eq!(scrub("answer: refresh_token=refresh-token-cu…"), "answer: refresh_token=[redacted]…");
        assert_eq!(scrub("nothing cut here…"), "nothing cut here…");
    }

    #[test]
    fn secret_key_names() {
        for name in ["client_secret", "refresh_token", "access_token", "password", "private_key", "api_key"] {
            assert!(is_secret_key(name), "{name}");
        }
        assert!(is_secret_key("assertion"));
        for name in ["client_id", "account_ids", "base_url", "page_size"] {
            assert!(!is_secret_key(name), "{name}");
        }
        assert!(is_secret_key_path("sources.li.client_secret"));
        assert!(!is_secret_key_path("sources.li.account_ids[0]"));
    }
}
