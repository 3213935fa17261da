//! Report-run polls gathered into batch requests (`POST /` with `batch`, the Graph API's batch
//! requests; `shared/apis/facebook.md` §3): runs started together are due for a poll at about
//! the same time, and one request asking about all of them leaves the source's pace to the
//! requests that read rows. The first run due becomes the sender: it waits a moment for the
//! others, sends what has gathered (up to 50, Meta's limit per batch), and goes on while more
//! are waiting. A run polled alone, a run whose ad account is resting for its usage, and every
//! run of a batch that could not be read are polled with a request of their own, which goes
//! through the classifier's throttling and retry rules as before.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures::channel::oneshot;
use kpipe_http::ApiRequest;
use serde_json::{Value, json};

use crate::listing::ADS_STREAM;
use crate::pause::sleep;
use crate::source::FacebookSource;

/// The most requests in one batch.
const MAX_BATCH: usize = 50;

/// How long the sender waits for other runs due at about the same time.
const GATHER: Duration = Duration::from_millis(20);

/// The fields a poll asks for.
pub(crate) const POLL_FIELDS: &str = "id,async_status,async_percent_completion";

/// A run waiting for its status.
struct Waiting {
    run: String,
    account: usize,
    /// The run's status, or `None`: poll it alone.
    answer: oneshot::Sender<Option<Value>>,
}

#[derive(Default)]
struct Queue {
    waiting: Vec<Waiting>,
    sending: bool,
}

/// The polls of one source's report runs waiting to be sent together.
#[derive(Default)]
pub(crate) struct RunPolls {
    queue: Mutex<Queue>,
}

impl std::fmt::Debug for RunPolls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunPolls").finish_non_exhaustive()
    }
}

/// Hands the sender's part back if the sender's future is dropped before it is done.
struct Sending<'a> {
    polls: &'a RunPolls,
    done: bool,
}

impl Drop for Sending<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.polls.lock().sending = false;
        }
    }
}

/// One answer of a batch.
#[derive(serde::Deserialize)]
struct Answer {
    code: u16,
    #[serde(default)]
    body: Option<String>,
}

impl RunPolls {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The status of `run` (of the ad account at `account`) from a batch, or `None` when it is
    /// to be polled with a request of its own.
    pub(crate) async fn status(&self, source: &FacebookSource, account: usize, run: &str) -> Option<Value> {
        let (answer, status) = oneshot::channel();
        let lead = {
            let mut queue = self.lock();
            queue.waiting.push(Waiting { run: run.to_owned(), account, answer });
            !std::mem::replace(&mut queue.sending, true)
        };
        if lead {
            let mut sending = Sending { polls: self, done: false };
            sleep(GATHER).await;
            loop {
                let batch: Vec<Waiting> = {
                    let mut queue = self.lock();
                    if queue.waiting.is_empty() {
                        // Under the same lock as the check: a run queued after it leads.
                        queue.sending = false;
                        sending.done = true;
                        break;
                    }
                    let n = queue.waiting.len().min(MAX_BATCH);
                    queue.waiting.drain(..n).collect()
                };
                source.send_polls(batch).await;
            }
        }
        status.await.ok().flatten()
    }
}

impl FacebookSource {
    /// Sends `batch` as one request and answers each run; alone, resting or unread ones are
    /// answered `None`.
    async fn send_polls(&self, batch: Vec<Waiting>) {
        let (together, alone): (Vec<Waiting>, Vec<Waiting>) =
            batch.into_iter().partition(|w| self.book.remaining(&self.accounts[w.account].id).is_zero());
        for waiting in alone {
            let _ = waiting.answer.send(None);
        }
        let Some(first) = together.first() else { return };
        if together.len() == 1 {
            for waiting in together {
                let _ = waiting.answer.send(None);
            }
            return;
        }
        let requests: Vec<Value> = together
            .iter()
            .map(|w| {
                json!({"method": "GET",
                       "relative_url": format!("{}/{}?fields={POLL_FIELDS}", self.settings.api_version, w.run)})
            })
            .collect();
        let request = ApiRequest::post_json(
            "",
            json!({"batch": Value::Array(requests).to_string(), "include_headers": false}),
        )
        .idempotent(true)
        .stream(ADS_STREAM);
        let account = &self.accounts[first.account];
        let answers = match account.call(&self.book, self.max_wait, request, &self.token).await {
            Ok(response) => match serde_json::from_slice::<Vec<Answer>>(&response.body) {
                Ok(answers) if answers.len() == together.len() => answers,
                Ok(answers) => {
                    tracing::debug!(
                        asked = together.len(),
                        answered = answers.len(),
                        "a batch of report-run polls came back short; polling them one by one"
                    );
                    Vec::new()
                }
                Err(e) => {
                    tracing::debug!(error = %e, "a batch of report-run polls cannot be read; polling them one by one");
                    Vec::new()
                }
            },
            Err(e) => {
                tracing::debug!(error = %crate::client::scrub(&e.error.to_string()),
                    "a batch of report-run polls failed; polling them one by one");
                Vec::new()
            }
        };
        let mut answers = answers.into_iter();
        for waiting in together {
            let status = answers
                .next()
                .filter(|a| a.code == 200)
                .and_then(|a| a.body)
                .and_then(|body| serde_json::from_str::<Value>(&body).ok())
                .filter(|status| status.get("async_status").is_some());
            let _ = waiting.answer.send(status);
        }
    }
}
