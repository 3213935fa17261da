//! Meta's usage headers (`X-App-Usage`, `X-Business-Use-Case-Usage`, `X-Ad-Account-Usage`,
//! `X-Page-Usage`, the legacy `x-fb-ads-insights-throttle`), read on every response, and the
//! book of pauses they call for: above the threshold, the next request about that object (or,
//! for app usage, any request) waits, so that the platform never has to throttle. The book also
//! keeps the highest usage each object's answers reported, the quota left the run summary
//! shows.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kpipe_core::QuotaLeft;
use serde_json::Value;

/// The rolling window Meta's usage percentages are computed over (one hour), for a pause
/// proportional to how far usage is above the threshold when no header says how long to wait.
const USAGE_WINDOW: Duration = Duration::from_secs(3_600);

/// What one response's headers say.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UsageReading {
    /// App usage, percent (the largest of call count, CPU time, total time).
    pub app_pct: Option<f64>,
    /// Business-use-case usage by object id: percent, and minutes until access returns.
    pub objects: Vec<(String, f64, u64)>,
    /// The ad account's or Page's own usage (`X-Ad-Account-Usage`, `X-Page-Usage`), percent.
    pub own_pct: Option<f64>,
    /// Seconds until the ad account's usage resets (`reset_time_duration`).
    pub reset_seconds: Option<u64>,
    /// Minutes until the Page's access returns (`X-Page-Usage`).
    pub own_regain_minutes: Option<u64>,
}

fn number(v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn largest(object: &Value, keys: &[&str]) -> Option<f64> {
    keys.iter().filter_map(|k| number(object.get(*k))).reduce(f64::max)
}

fn higher(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

fn whole(v: Option<f64>) -> Option<u64> {
    v.filter(|x| x.is_finite() && *x >= 0.0).map(|x| x.ceil() as u64)
}

const SHARES: [&str; 3] = ["call_count", "total_cputime", "total_time"];

impl UsageReading {
    /// Reads the headers through `header` (name to value). A header that is not the JSON Meta
    /// documents is ignored: usage only tunes the pace.
    pub fn read<'a>(header: impl Fn(&str) -> Option<&'a str>) -> UsageReading {
        let json = |name: &str| {
            let text = header(name)?;
            match serde_json::from_str::<Value>(text) {
                Ok(value) => Some(value),
                Err(e) => {
                    tracing::debug!(header = name, error = %e, "usage header ignored: not JSON");
                    None
                }
            }
        };
        let mut reading = UsageReading::default();
        if let Some(app) = json("x-app-usage") {
            reading.app_pct = largest(&app, &SHARES);
        }
        if let Some(Value::Object(objects)) = json("x-business-use-case-usage") {
            for (id, entries) in objects {
                for entry in entries.as_array().into_iter().flatten() {
                    let pct = largest(entry, &SHARES).unwrap_or(0.0);
                    let regain = whole(number(entry.get("estimated_time_to_regain_access"))).unwrap_or(0);
                    reading.objects.push((id.clone(), pct, regain));
                }
            }
        }
        if let Some(account) = json("x-ad-account-usage") {
            reading.own_pct = number(account.get("acc_id_util_pct"));
            reading.reset_seconds = whole(number(account.get("reset_time_duration")));
        }
        if let Some(page) = json("x-page-usage") {
            reading.own_pct = higher(largest(&page, &SHARES), reading.own_pct);
            reading.own_regain_minutes = whole(number(page.get("estimated_time_to_regain_access")));
        }
        if let Some(legacy) = json("x-fb-ads-insights-throttle") {
            reading.app_pct = higher(number(legacy.get("app_id_util_pct")), reading.app_pct);
            reading.own_pct = higher(number(legacy.get("acc_id_util_pct")), reading.own_pct);
        }
        reading
    }

    /// The highest share of any budget the headers say is in use, in percent: the app's, the
    /// object's own, and every business use case's.
    pub fn used_percent(&self) -> Option<f64> {
        let objects = self.objects.iter().map(|(_, pct, _)| *pct).reduce(f64::max);
        [self.app_pct, self.own_pct, objects].into_iter().flatten().filter(|p| p.is_finite()).reduce(f64::max)
    }

    /// How long until access to `object` returns after a throttling error, as Meta estimates
    /// it: `estimated_time_to_regain_access` (minutes) of the business-use-case entries about
    /// the object (or, when none is about it, the longest of the others), and of `X-Page-Usage`;
    /// zero when the platform says access is not blocked. `X-Ad-Account-Usage`'s
    /// `reset_time_duration` is not used: it is how long the rolling usage score takes to decay
    /// to zero, not a block, and taking it for one stopped a source for an hour over a
    /// throttle that lifted at once.
    pub fn regain_access(&self, object: &str) -> Duration {
        let own: Vec<u64> =
            self.objects.iter().filter(|(id, _, _)| id == object).map(|(_, _, m)| *m).collect();
        let minutes = if own.is_empty() {
            self.objects.iter().map(|(_, _, m)| *m).max()
        } else {
            own.into_iter().max()
        };
        let minutes = minutes.unwrap_or(0).max(self.own_regain_minutes.unwrap_or(0));
        Duration::from_secs(minutes.saturating_mul(60))
    }

    /// The pauses this reading calls for at `threshold` percent: `(None, d)` for the app,
    /// `(Some(id), d)` for an object. `object` is what the request was about.
    pub fn pauses(&self, object: &str, threshold: f64) -> Vec<(Option<String>, Duration)> {
        let proportional = |pct: f64| USAGE_WINDOW.mul_f64(((pct - threshold + 1.0) / 100.0).clamp(0.0, 1.0));
        let mut out = Vec::new();
        if let Some(pct) = self.app_pct.filter(|p| *p >= threshold) {
            out.push((None, proportional(pct)));
        }
        for (id, pct, regain) in &self.objects {
            if *regain > 0 {
                out.push((Some(id.clone()), Duration::from_secs(regain.saturating_mul(60))));
            } else if *pct >= threshold {
                let reset = (id == object).then_some(self.reset_seconds).flatten().filter(|s| *s > 0);
                out.push((Some(id.clone()), reset.map_or_else(|| proportional(*pct), Duration::from_secs)));
            }
        }
        if let Some(pct) = self.own_pct.filter(|p| *p >= threshold) {
            let wait =
                match (self.reset_seconds.filter(|s| *s > 0), self.own_regain_minutes.filter(|m| *m > 0)) {
                    (_, Some(m)) => Duration::from_secs(m.saturating_mul(60)),
                    (Some(s), None) => Duration::from_secs(s),
                    (None, None) => proportional(pct),
                };
            out.push((Some(object.to_owned()), wait));
        }
        out
    }
}

#[derive(Debug, Default)]
struct Book {
    app_until: Option<Instant>,
    objects: HashMap<String, Instant>,
    pauses: u64,
    paused: Duration,
    /// The highest usage reported in each object's answers.
    used: BTreeMap<String, QuotaLeft>,
}

/// When each object (and the app) may be called again. Shared by the clients of one source.
#[derive(Debug, Default)]
pub struct UsageBook {
    book: Mutex<Book>,
}

impl UsageBook {
    fn lock(&self) -> std::sync::MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records that `scope` (an object id, or the app with `None`) must rest for `pause`.
    pub fn rest(&self, scope: Option<&str>, pause: Duration) {
        if pause.is_zero() {
            return;
        }
        let until = Instant::now() + pause;
        let mut book = self.lock();
        let slot = match scope {
            None => &mut book.app_until,
            Some(id) => {
                let entry = book.objects.entry(id.to_owned()).or_insert(until);
                *entry = (*entry).max(until);
                return;
            }
        };
        *slot = Some(slot.map_or(until, |t| t.max(until)));
    }

    /// How long a request about `object` must still wait.
    pub fn remaining(&self, object: &str) -> Duration {
        let book = self.lock();
        let now = Instant::now();
        let until = [book.app_until, book.objects.get(object).copied()].into_iter().flatten().max();
        until.map_or(Duration::ZERO, |t| t.saturating_duration_since(now))
    }

    /// Waits until `object` may be called, at most `cap` (a wait beyond it would outlast the
    /// run's patience; the platform will say so with an error if it still objects).
    pub async fn wait(&self, object: &str, cap: Duration) {
        let wait = self.remaining(object).min(cap);
        if wait.is_zero() {
            return;
        }
        tracing::info!(object, wait_ms = wait.as_millis() as u64, "usage near the limit; pausing");
        {
            let mut book = self.lock();
            book.pauses += 1;
            book.paused += wait;
        }
        crate::pause::sleep(wait).await;
    }

    /// Pauses taken and their total length.
    pub fn taken(&self) -> (u64, Duration) {
        let book = self.lock();
        (book.pauses, book.paused)
    }

    /// Keeps what an answer about `object` says of its usage.
    pub fn observe(&self, object: &str, reading: &UsageReading) {
        if let Some(pct) = reading.used_percent() {
            let left = QuotaLeft { used_percent: Some(pct), ..QuotaLeft::default() };
            self.lock().used.entry(object.to_owned()).or_default().keep_lowest(&left);
        }
    }

    /// The highest usage each object's answers reported.
    pub fn quota_left(&self) -> BTreeMap<String, QuotaLeft> {
        self.lock().used.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(headers: &[(&str, &str)]) -> UsageReading {
        UsageReading::read(|name| headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| *v))
    }

    /// The header shapes quoted in shared/apis/facebook.md §6 (Meta's rate-limiting page).
    #[test]
    fn documented_headers_are_read() {
        let account = serde_json::json!({"acc_id_util_pct": 9.67, "reset_time_duration": 100,
                                         "ads_api_access_tier": "standard_access"});
        let buc = serde_json::json!({
            "66782684": [{"type": "ads_management", "call_count": 95, "total_cputime": 20, "total_time": 20,
                          "estimated_time_to_regain_access": 0, "ads_api_access_tier": "development_access"}],
            "10153848260347724": [{"type": "ads_insights", "call_count": 97, "total_cputime": 23,
                                   "total_time": 23, "estimated_time_to_regain_access": 19,
                                   "ads_api_access_tier": "standard_access"}]
        });
        let (account, buc) = (account.to_string(), buc.to_string());
        let r = read(&[
            ("X-App-Usage", r#"{"call_count": 28, "total_time": 25, "total_cputime": 25}"#),
            ("X-Ad-Account-Usage", &account),
            ("X-Business-Use-Case-Usage", &buc),
        ]);
        assert_eq!(r.app_pct, Some(28.0));
        assert_eq!(r.own_pct, Some(9.67));
        assert_eq!(r.reset_seconds, Some(100));
        let mut objects = r.objects.clone();
        objects.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(objects, [("10153848260347724".to_owned(), 97.0, 19), ("66782684".to_owned(), 95.0, 0)]);
        assert_eq!(r.regain_access("10153848260347724"), Duration::from_secs(19 * 60));
        // Its business use case says access is not blocked (0 minutes): the account's
        // `reset_time_duration` (score decay) is no reason to stop.
        assert_eq!(r.regain_access("66782684"), Duration::ZERO);
        let pauses = r.pauses("66782684", 90.0);
        assert!(
            pauses.contains(&(Some("66782684".to_owned()), Duration::from_secs(100))),
            "the account's reset time"
        );
        assert!(pauses.contains(&(Some("10153848260347724".to_owned()), Duration::from_secs(19 * 60))));
        assert_eq!(pauses.len(), 2);
        assert_eq!(r.used_percent(), Some(97.0));
        let book = UsageBook::default();
        book.observe("66782684", &r);
        book.observe("66782684", &read(&[("X-App-Usage", r#"{"call_count": 3}"#)]));
        assert_eq!(book.quota_left()["66782684"].used_percent, Some(97.0), "the highest is kept");
    }

    #[test]
    fn malformed_usage_headers_are_ignored() {
        let r = read(&[
            ("X-App-Usage", "not json"),
            ("X-Ad-Account-Usage", r#"{"acc_id_util_pct": "lots"}"#),
            ("X-Business-Use-Case-Usage", "[1, 2]"),
        ]);
        assert_eq!(r, UsageReading::default());
        assert_eq!(r.used_percent(), None);
        let book = UsageBook::default();
        book.observe("1", &r);
        assert!(book.quota_left().is_empty());
    }

    #[test]
    fn below_the_threshold_nothing_pauses_and_app_usage_pauses_everything() {
        let calm = read(&[("X-App-Usage", r#"{"call_count": 50}"#)]);
        assert!(calm.pauses("1", 90.0).is_empty());
        let busy = read(&[("X-App-Usage", r#"{"call_count": 95, "total_time": 10}"#)]);
        let pauses = busy.pauses("1", 90.0);
        assert_eq!(pauses, [(None, Duration::from_secs(216))], "6 % of the hour");
        let book = UsageBook::default();
        book.rest(None, Duration::from_secs(5));
        assert!(book.remaining("anything") > Duration::from_secs(4));
    }

    #[tokio::test]
    async fn a_pause_is_waited_out_and_counted() {
        let book = UsageBook::default();
        book.rest(Some("1"), Duration::from_millis(30));
        assert_eq!(book.remaining("2"), Duration::ZERO);
        let start = Instant::now();
        book.wait("1", Duration::from_secs(1)).await;
        assert!(start.elapsed() >= Duration::from_millis(25));
        assert_eq!(book.taken().0, 1);
    }
}
