//! Talking to the Graph API: one `ApiClient` per ad account and Page (so that the classifier of
//! a response knows which object its usage headers are about), sharing the rate limiter, the
//! usage book and the connection pool; Meta's error envelope and what each code means; and
//! keeping tokens out of what is logged or quarantined.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kpipe_core::{ErrorKind, Secret, SourceError};
use kpipe_http::{ApiClient, ApiRequest, ApiResponse, Decision, FnClassifier, HttpError, Outcome};
use serde_json::Value;

use crate::usage::{UsageBook, UsageReading};

/// Meta's error envelope, `{"error": {...}}` (`shared/apis/facebook.md` §6).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct GraphError {
    /// `(#80000) There have been too many calls...`.
    pub message: String,
    /// `OAuthException`, ...
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// The error code.
    pub code: i64,
    /// The subcode.
    #[serde(default)]
    pub error_subcode: Option<i64>,
    /// Whether retrying later may work.
    #[serde(default)]
    pub is_transient: Option<bool>,
}

/// What an error code asks of the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Throttling (4, 17, 32, 341, 613, 80000-80014): wait and retry.
    Throttled,
    /// The token is expired or invalid (190, 102, 2500): a configured token cannot be renewed.
    Token,
    /// A permission is missing (10, 200-299).
    Permission,
    /// "Please reduce the amount of data you're asking for" (1/99): ask for smaller pages.
    ReduceData,
    /// An invalid parameter (100), such as a retired Page metric.
    InvalidParameter,
    /// A temporary failure on Meta's side.
    Transient,
    /// Anything else.
    Other,
}

impl GraphError {
    /// The envelope in `body`, if it is one.
    pub fn parse(body: &[u8]) -> Option<GraphError> {
        #[derive(serde::Deserialize)]
        struct Envelope {
            error: GraphError,
        }
        serde_json::from_slice::<Envelope>(body).ok().map(|e| e.error)
    }

    /// What the code asks for.
    pub fn class(&self) -> ErrorClass {
        match self.code {
            4 | 17 | 32 | 341 | 613 | 80_000..=80_014 => ErrorClass::Throttled,
            190 | 102 | 2500 => ErrorClass::Token,
            10 | 200..=299 => ErrorClass::Permission,
            1 if self.error_subcode == Some(99)
                || self.message.to_lowercase().contains("reduce the amount of data") =>
            {
                ErrorClass::ReduceData
            }
            100 => ErrorClass::InvalidParameter,
            _ if self.is_transient == Some(true) => ErrorClass::Transient,
            1 | 2 => ErrorClass::Transient,
            _ => ErrorClass::Other,
        }
    }

    /// `(#100/33) message`, for errors and reports.
    pub fn summary(&self) -> String {
        let code = match self.error_subcode {
            Some(sub) => format!("#{}/{sub}", self.code),
            None => format!("#{}", self.code),
        };
        format!("({code}) {}", scrub(&self.message))
    }
}

/// The envelope of the last error response of one object's client, for its caller: the
/// runtime's error keeps only a short excerpt of the body.
type ErrorSlot = Arc<Mutex<Option<GraphError>>>;

/// Whether a successful body is an error envelope in disguise (some batch answers are).
fn looks_like_error(body: &[u8]) -> bool {
    let start = body.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(body.len());
    body[start..].starts_with(b"{\"error\"")
}

/// The classifier of one object's client: records usage (every response), and turns Meta's
/// codes into decisions. `cap` is the longest wait honoured by sleeping; beyond it the quota
/// is exhausted for this run.
fn classifier(
    object: String,
    book: Arc<UsageBook>,
    slot: ErrorSlot,
    threshold: f64,
    cap: Duration,
) -> FnClassifier<impl Fn(&Outcome<'_>, Decision) -> Decision + Send + Sync> {
    FnClassifier::new("facebook", move |outcome: &Outcome<'_>, current| {
        let Outcome::Response { status, headers, body } = outcome else { return current };
        let reading = UsageReading::read(|name| headers.get(name).and_then(|v| v.to_str().ok()));
        book.observe(&object, &reading);
        for (scope, pause) in reading.pauses(&object, threshold) {
            book.rest(scope.as_deref(), pause.min(cap));
        }
        if status.is_success() && !looks_like_error(body) {
            return current;
        }
        let Some(error) = GraphError::parse(body) else { return current };
        let decision = match error.class() {
            ErrorClass::Throttled => {
                let wait = reading.regain_access(&object);
                if wait > cap {
                    let reset_at = chrono::Duration::from_std(wait)
                        .ok()
                        .and_then(|d| chrono::Utc::now().checked_add_signed(d));
                    Decision::QuotaExhausted { reset_at }
                } else {
                    book.rest(Some(&object), wait);
                    Decision::Retry { reason: "throttled", after: (!wait.is_zero()).then_some(wait) }
                }
            }
            ErrorClass::Token | ErrorClass::Permission => Decision::GiveUp { kind: ErrorKind::Auth },
            // The caller asks again with a smaller page.
            ErrorClass::ReduceData => Decision::GiveUp { kind: ErrorKind::Transient },
            ErrorClass::InvalidParameter => Decision::GiveUp { kind: ErrorKind::Config },
            ErrorClass::Transient => Decision::Retry { reason: "server_error", after: None },
            ErrorClass::Other => current,
        };
        if let Ok(mut last) = slot.lock() {
            *last = Some(error);
        }
        decision
    })
}

/// A failed call: the runtime's error and Meta's envelope when the platform sent one.
#[derive(Debug)]
pub struct CallError {
    /// What the runtime reports.
    pub error: HttpError,
    /// The error envelope of the last response.
    pub graph: Option<GraphError>,
}

impl CallError {
    /// The envelope's class, if there was one.
    pub fn class(&self) -> Option<ErrorClass> {
        self.graph.as_ref().map(GraphError::class)
    }
}

impl From<CallError> for SourceError {
    fn from(e: CallError) -> SourceError {
        let hint = match e.class() {
            Some(ErrorClass::Token) => {
                " (the access token is expired or invalid: create a new system-user or long-lived token)"
            }
            Some(ErrorClass::Permission) => {
                " (a permission is missing: the token needs ads_read, read_insights and \
                 pages_read_engagement)"
            }
            _ => "",
        };
        let kind = e.error.kind();
        let message = match &e.graph {
            Some(g) => format!("{}: {}{hint}", scrub(&e.error.to_string()), g.summary()),
            None => scrub(&e.error.to_string()),
        };
        SourceError::new(kind, message).with_source(e.error)
    }
}

/// One ad account or Page and the client that calls the API about it.
#[derive(Debug)]
pub struct GraphObject {
    /// The id (an ad account without `act_`, or a Page).
    pub id: String,
    /// Its client.
    pub api: ApiClient,
    last_error: ErrorSlot,
    page_size: AtomicU32,
}

impl GraphObject {
    /// The object `id` with a client from `builder`, whose classifier records usage in `book`.
    pub fn new(
        id: &str,
        builder: kpipe_http::ApiClientBuilder,
        book: Arc<UsageBook>,
        threshold: f64,
        cap: Duration,
        page_size: u32,
    ) -> GraphObject {
        let slot: ErrorSlot = Arc::default();
        let api =
            builder.classifier(classifier(id.to_owned(), book, Arc::clone(&slot), threshold, cap)).build();
        GraphObject { id: id.to_owned(), api, last_error: slot, page_size: AtomicU32::new(page_size) }
    }

    /// Rows per page for this object's listings (smaller after "reduce the amount of data").
    pub fn page_size(&self) -> u32 {
        self.page_size.load(Ordering::Relaxed)
    }

    /// Asks for `size` rows per page from now on.
    pub fn shrink_pages(&self, size: u32) {
        self.page_size.fetch_min(size.max(1), Ordering::Relaxed);
    }

    /// Sends `request` with `token` once the object may be called again (usage pauses).
    pub async fn call(
        &self,
        book: &UsageBook,
        cap: Duration,
        request: ApiRequest,
        token: &Secret,
    ) -> Result<ApiResponse, CallError> {
        book.wait(&self.id, cap).await;
        if let Ok(mut last) = self.last_error.lock() {
            *last = None;
        }
        let request = request.header("authorization", &format!("Bearer {}", token.expose()));
        self.api.send(&request).await.map_err(|error| {
            let graph = self.last_error.lock().ok().and_then(|mut last| last.take());
            CallError { error, graph }
        })
    }
}

/// `text` with token values replaced by `***`: `access_token=...` in URLs (Meta's paging links
/// carry the token) and `"access_token": "..."` in JSON (a Page's token).
pub fn scrub(text: &str) -> String {
    const KEY: &str = "access_token";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(KEY) {
        let (before, after) = rest.split_at(at + KEY.len());
        out.push_str(before);
        let separator_len =
            after.find(|c: char| !['"', '\'', ':', '=', ' ', '\\'].contains(&c)).unwrap_or(after.len());
        let (separator, value) = after.split_at(separator_len);
        out.push_str(separator);
        let value_len = value.find(['&', '"', '\'', '\\', ',', '}', ' ', '\n']).unwrap_or(value.len());
        if value_len > 0 {
            out.push_str("***");
        }
        rest = &value[value_len..];
    }
    out.push_str(rest);
    out
}

/// The `data` of a response that has it.
pub fn data_of(body: &Value) -> Option<&Vec<Value>> {
    body.get("data").and_then(Value::as_array)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The codes of shared/apis/facebook.md §3 (insights error codes) and §6 (throttling, tokens).
    #[test]
    fn codes_are_classified_as_documented() {
        let e = |code: i64, sub: Option<i64>, message: &str| GraphError {
            message: message.into(),
            kind: Some("OAuthException".into()),
            code,
            error_subcode: sub,
            is_transient: None,
        };
        for code in [4, 17, 32, 613, 80_000, 80_004, 80_014] {
            assert_eq!(e(code, None, "").class(), ErrorClass::Throttled, "{code}");
        }
        assert_eq!(e(190, Some(463), "expired").class(), ErrorClass::Token);
        assert_eq!(e(200, None, "").class(), ErrorClass::Permission);
        assert_eq!(e(1, Some(99), "").class(), ErrorClass::ReduceData);
        assert_eq!(
            e(1, None, "Please reduce the amount of data you're asking for").class(),
            ErrorClass::ReduceData
        );
        assert_eq!(e(1, None, "An unknown error occurred").class(), ErrorClass::Transient);
        assert_eq!(e(100, None, "").class(), ErrorClass::InvalidParameter);
        assert_eq!(e(80_015, None, "").class(), ErrorClass::Other);
        let envelope = serde_json::json!({"error": {
            "message": "(#17) User request limit reached", "type": "OAuthException",
            "code": 17, "error_subcode": 2_446_079, "fbtrace_id": "x"}});
        let parsed = GraphError::parse(envelope.to_string().as_bytes()).unwrap();
        assert_eq!(parsed.summary(), "(#17/2446079) (#17) User request limit reached");
        assert!(GraphError::parse(b"{\"data\": []}").is_none());
        assert!(looks_like_error(b"  {\"error\": {}}") && !looks_like_error(b"{\"data\": []}"));
    }

    /// shared/apis/facebook.md §6: a throttling error (#17, subcode 2446079) whose
    /// `X-Business-Use-Case-Usage` says access is not blocked (`estimated_time_to_regain_access:
    /// 0`) is retried after a short wait, whatever `X-Ad-Account-Usage.reset_time_duration` (the
    /// usage score's decay) says; the source stops only when the platform says access returns
    /// later than the run can wait.
    #[test]
    fn a_throttle_stops_the_source_only_when_access_returns_too_late() {
        use kpipe_http::Classifier;
        let decide = |regain_minutes: u64| {
            let classify = classifier(
                "66782684".into(),
                Arc::new(UsageBook::default()),
                ErrorSlot::default(),
                75.0,
                Duration::from_secs(600),
            );
            let mut headers = http::HeaderMap::new();
            let buc = serde_json::json!({"66782684": [{"type": "ads_insights", "call_count": 100,
                "total_cputime": 40, "total_time": 40, "estimated_time_to_regain_access": regain_minutes}]});
            let account = r#"{"acc_id_util_pct": 100, "reset_time_duration": 3600}"#;
            headers.insert("x-business-use-case-usage", buc.to_string().parse().expect("a header"));
            headers.insert("x-ad-account-usage", account.parse().expect("a header"));
            let body = serde_json::json!({"error": {"message": "(#17) User request limit reached",
                "type": "OAuthException", "is_transient": true, "code": 17, "error_subcode": 2_446_079,
                "fbtrace_id": "x"}})
            .to_string();
            let outcome = Outcome::Response {
                status: http::StatusCode::BAD_REQUEST,
                headers: &headers,
                body: body.as_bytes(),
            };
            classify.classify(&outcome, Decision::GiveUp { kind: ErrorKind::Data })
        };
        assert_eq!(decide(0), Decision::Retry { reason: "throttled", after: None });
        assert_eq!(decide(5), Decision::Retry { reason: "throttled", after: Some(Duration::from_secs(300)) });
        assert!(matches!(decide(90), Decision::QuotaExhausted { reset_at: Some(_) }));
    }

    /// §1-§2: `paging.next` links embed `access_token`; §5: a Page answers with its token.
    #[test]
    fn tokens_are_scrubbed_from_links_and_json() {
        let link = "https://graph.facebook.com/v25.0/act_1/insights?access_token=EAAB123&after=x";
        let body = serde_json::json!({"paging": {"next": link}, "access_token": "EAAPage"}).to_string();
        let clean = scrub(&body);
        assert!(!clean.contains("EAAB123") && !clean.contains("EAAPage"), "{clean}");
        assert!(
            clean.contains("access_token=***&after=x") && clean.contains(r#""access_token":"***""#),
            "{clean}"
        );
        assert_eq!(scrub("no secrets here"), "no secrets here");
    }
}
