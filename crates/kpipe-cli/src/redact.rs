//! Where text leaves the process, every registered secret is taken out of it
//! ([`kpipe_core::scrub`]): one function per way out.
//!
//! Errors quote what servers answer, and servers may quote the request (its form body with a
//! client secret or refresh token, its `Authorization` header, a signed assertion). Filtering
//! every message where it is made would miss one sooner or later; filtering at the few places
//! where text is written does not.

use std::borrow::Cow;
use std::io::{self, Write};

use kpipe_core::{Quarantined, scrub};
use tracing_subscriber::fmt::MakeWriter;

use crate::RunSummary;

/// Text for the terminal: the run summary, `kpipe check`'s report, error messages.
pub fn text(text: &str) -> Cow<'_, str> {
    scrub(text)
}

/// `value` as JSON with every string scrubbed (keys too): `kpipe check --json`, `kpipe plan
/// --json`. Strings are scrubbed before they are escaped, so a secret with a quote or a
/// backslash in it is found as it is.
pub fn json<T: serde::Serialize + ?Sized>(value: &T) -> serde_json::Result<serde_json::Value> {
    let mut value = serde_json::to_value(value)?;
    scrub_json(&mut value);
    Ok(value)
}

/// The run summary as the pretty JSON of `--summary-json`.
pub fn summary_json(summary: &RunSummary) -> serde_json::Result<Vec<u8>> {
    serde_json::to_vec_pretty(&json(summary)?)
}

/// The bytes of a state object, as stored under `.kpipe/state/`. State objects hold names,
/// dates and run ids; this keeps a secret out should one ever be put there.
pub fn state_object(bytes: Vec<u8>) -> Vec<u8> {
    match std::str::from_utf8(&bytes).map(scrub) {
        Ok(Cow::Owned(scrubbed)) => scrubbed.into_bytes(),
        _ => bytes,
    }
}

/// The TOML parser's message for `text`, which quotes the offending line (and often its
/// neighbours), with the value of every secret-named key in the document taken out. Nothing is
/// registered yet when a file does not parse, so [`scrub`] alone would pass a literal
/// `client_secret = "..."` through; the line number, caret and reason stay.
pub fn toml_syntax_error(text: &str, error: &toml::de::Error) -> String {
    toml_error_without(text, error, crate::config::holds_secret)
}

/// [`toml_syntax_error`] for a secrets file, where every value is taken out.
pub fn toml_syntax_error_in_secrets_file(text: &str, error: &toml::de::Error) -> String {
    toml_error_without(text, error, |_| true)
}

fn toml_error_without(text: &str, error: &toml::de::Error, secret: impl Fn(&str) -> bool) -> String {
    let mut values = values_in_unparsed_toml(text, secret);
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    let mut message = error.to_string().trim().to_owned();
    for value in values {
        message = message.replace(value, "[redacted]");
    }
    message
}

/// The values written after `key =` on any line of `text` (inline tables too) whose key is
/// `secret`, read without a TOML parser: the document is broken, so a string may be unclosed
/// (then the rest of the line is its value).
fn values_in_unparsed_toml(text: &str, secret: impl Fn(&str) -> bool) -> Vec<&str> {
    let mut values = Vec::new();
    for line in text.lines() {
        let mut rest = line;
        while let Some(eq) = rest.find('=') {
            let key = rest[..eq].trim_end().trim_end_matches(['"', '\'']);
            // The key is the run of key characters (all ASCII) just before `=`.
            let key_len = key
                .bytes()
                .rev()
                .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-')
                .count();
            let key = &key[key.len() - key_len..];
            let after = rest[eq + 1..].trim_start();
            let (value, next) = match after.chars().next() {
                Some(quote @ ('"' | '\'')) => {
                    let inner = after.trim_start_matches(quote);
                    match inner.find(quote) {
                        Some(end) => (&inner[..end], &inner[end + 1..]),
                        None => (inner, ""),
                    }
                }
                _ => {
                    let end = after.find([',', '}', ' ', '\t', '#']).unwrap_or(after.len());
                    (&after[..end], &after[end..])
                }
            };
            if secret(key) && !value.is_empty() {
                values.push(value);
            }
            rest = next;
        }
    }
    values
}

/// A quarantined record as written to the quarantine: `raw` is the record as received (a
/// server's answer), `reason` and `location` may quote it.
pub fn quarantined(record: &Quarantined) -> Cow<'_, Quarantined> {
    let (raw, reason, location) = (scrub(&record.raw), scrub(&record.reason), scrub(&record.location));
    if matches!((&raw, &reason, &location), (Cow::Borrowed(_), Cow::Borrowed(_), Cow::Borrowed(_))) {
        return Cow::Borrowed(record);
    }
    Cow::Owned(Quarantined {
        stream: record.stream.clone(),
        location: location.into_owned(),
        reason: reason.into_owned(),
        raw: raw.into_owned(),
    })
}

fn scrub_json(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(s) => {
            if let Cow::Owned(scrubbed) = scrub(s) {
                *s = scrubbed;
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(scrub_json),
        serde_json::Value::Object(map) => {
            let entries = std::mem::take(map);
            for (key, mut item) in entries {
                scrub_json(&mut item);
                map.insert(scrub(&key).into_owned(), item);
            }
        }
        _ => {}
    }
}

/// The log's writer: each event (a line of text or of JSON, at any level) is collected whole
/// and written scrubbed to the writer `inner` makes.
#[derive(Debug, Clone)]
pub struct LogWriter<M>(pub M);

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for LogWriter<M> {
    type Writer = ScrubbedEvent<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        ScrubbedEvent { buf: Vec::new(), inner: self.0.make_writer() }
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Self::Writer {
        ScrubbedEvent { buf: Vec::new(), inner: self.0.make_writer_for(meta) }
    }
}

/// One event being written: collected, so that a secret split over two writes is still found,
/// and written when the formatter is done with it.
#[derive(Debug)]
pub struct ScrubbedEvent<W: Write> {
    buf: Vec<u8>,
    inner: W,
}

impl<W: Write> ScrubbedEvent<W> {
    fn write_out(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&self.buf);
        let result = self.inner.write_all(scrub(&text).as_bytes());
        self.buf.clear();
        result?;
        self.inner.flush()
    }
}

impl<W: Write> Write for ScrubbedEvent<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        // The formatter writes an event whole, then drops the writer: that is when it goes out.
        Ok(())
    }
}

impl<W: Write> Drop for ScrubbedEvent<W> {
    fn drop(&mut self) {
        // Nowhere to report a failed log write; the next event tries again.
        let _ = self.write_out();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    fn syntax_error(text: &str) -> String {
        let error = text.parse::<toml::Table>().expect_err("not valid TOML");
        toml_syntax_error(text, &error)
    }

    #[test]
    fn a_toml_syntax_error_keeps_its_position_but_not_a_secret_on_the_quoted_line() {
        let unclosed =
            "[sources.li]\ntype = \"linkedin\"\nclient_secret = \"unclosed-secret-4d1f\naccount_ids = []\n";
        let message = syntax_error(unclosed);
        assert!(!message.contains("unclosed-secret-4d1f"), "{message}");
        assert!(message.contains("line 3") && message.contains("[redacted]"), "{message}");

        let trailing = "[sources.hs]\naccess_token = 'private-app-token-77' junk\n";
        let message = syntax_error(trailing);
        assert!(!message.contains("private-app-token-77") && message.contains("line 2"), "{message}");

        let inline = "[pipeline]\nstorage = { aws_secret_access_key = \"storage-key-0a9b\", region = }\n";
        let message = syntax_error(inline);
        assert!(!message.contains("storage-key-0a9b") && message.contains("line 2"), "{message}");

        // Found by `cargo xtask fuzz`: a key after a multi-byte character.
        let message = syntax_error("é=\"x\n[a]\nñtoken = \"unclosed-ñ-secret\n");
        assert!(!message.contains("unclosed-ñ-secret"), "{message}");

        let bare = "[sources.li]\nrefresh_token = bare-refresh-token-31\n";
        let message = syntax_error(bare);
        assert!(!message.contains("bare-refresh-token-31"), "{message}");
    }

    #[test]
    fn a_toml_syntax_error_keeps_values_that_are_not_secrets() {
        let text = "[sources.li]\ntoken_url = \"http://127.0.0.1:9/token\"\naccount_ids = [\"5\"\n";
        let message = syntax_error(text);
        assert!(!message.contains("[redacted]"), "{message}");
    }

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().map_err(|_| io::Error::other("poisoned"))?.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Shared {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
        }
    }

    #[test]
    fn log_events_in_text_and_json_are_scrubbed() {
        let secret = kpipe_core::Secret::new("log-writer-secret-value-1");
        for json in [false, true] {
            let out = Shared::default();
            let writer = {
                let out = out.clone();
                LogWriter(move || out.clone())
            };
            let builder = tracing_subscriber::fmt().with_max_level(tracing::Level::TRACE).with_writer(writer);
            let dispatch: tracing::Dispatch =
                if json { builder.json().finish().into() } else { builder.with_ansi(false).finish().into() };
            tracing::dispatcher::with_default(&dispatch, || {
                tracing::trace!(body = %format!("refresh_token={}&x=\"{}\"", secret.expose(), secret.expose()), "answer");
                tracing::error!("refused: {}", secret.expose());
            });
            let logged = out.text();
            assert_eq!(logged.lines().count(), 2, "{logged}");
            assert!(!logged.contains(secret.expose()), "{logged}");
            assert!(logged.contains("[redacted]"), "{logged}");
        }
    }

    #[test]
    fn json_strings_and_quarantined_records_are_scrubbed() {
        let secret = kpipe_core::Secret::new("json-sink-secret \"quoted\" 2");
        let value = json(&serde_json::json!({ "error": format!("echo: {}", secret.expose()), "n": 1 }))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(value, serde_json::json!({ "error": "echo: [redacted]", "n": 1 }));

        let record = Quarantined {
            stream: "s".into(),
            location: "l".into(),
            reason: format!("bad: {}", secret.expose()),
            raw: format!("{{\"token\":{:?}}}", secret.expose()),
        };
        let scrubbed = quarantined(&record);
        assert_eq!(scrubbed.reason, "bad: [redacted]");
        assert_eq!(scrubbed.raw, "{\"token\":\"[redacted]\"}");
        let clean =
            Quarantined { stream: "s".into(), location: "l".into(), reason: "r".into(), raw: "x".into() };
        assert!(matches!(quarantined(&clean), Cow::Borrowed(_)));
    }

    #[test]
    fn state_objects_are_scrubbed() {
        let secret = kpipe_core::Secret::new("state-object-secret-3");
        let bytes = format!("{{\"source\":\"{}\"}}", secret.expose()).into_bytes();
        assert_eq!(state_object(bytes), b"{\"source\":\"[redacted]\"}");
    }
}
