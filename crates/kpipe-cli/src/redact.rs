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
