//! Pulling several accounts at once (`concurrency`). An answer takes LinkedIn a few hundred
//! milliseconds, so one request at a time uses a fraction of the pace the source is allowed:
//! the requests of several accounts are then in flight together, while their rows are still
//! emitted account by account, in the order a one-at-a-time pull writes them.

use std::future::Future;

use kpipe_core::{Emitter, Quarantined, SourceError, SourceEvent};

/// Ad analytics elements the answers in flight may hold together: what bounds the memory of
/// concurrent requests for accounts with many campaigns or creatives.
pub const ELEMENTS_IN_FLIGHT: u64 = 20_000;

/// At most `in_flight` answers of `elements_per_answer` elements held at once within
/// [`ELEMENTS_IN_FLIGHT`], at least one.
pub fn in_flight_for_elements(in_flight: usize, elements_per_answer: u64) -> usize {
    let fits = ELEMENTS_IN_FLIGHT / elements_per_answer.max(1);
    in_flight.min(usize::try_from(fits).unwrap_or(usize::MAX)).max(1)
}

/// Runs `work` with an emitter of its own (handed to it) and keeps what it quarantines, so
/// that work can run beside other work while the pull's emitter stays with the caller, who
/// passes the records on. `work` may only quarantine: rows sent to its emitter are dropped.
pub async fn beside<T, F>(work: impl FnOnce(Emitter) -> F) -> (Result<T, SourceError>, Vec<Quarantined>)
where
    F: Future<Output = Result<T, SourceError>>,
{
    let (own, mut events) = Emitter::channel(16, 1);
    let working = work(own);
    let keeping = async move {
        let mut kept = Vec::new();
        // Ends when `work` is done and its emitter dropped.
        while let Some(event) = events.recv().await {
            if let SourceEvent::Quarantined(record) = event {
                kept.push(record);
            }
        }
        kept
    };
    futures::join!(working, keeping)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_answers_lower_the_requests_in_flight() {
        assert_eq!(in_flight_for_elements(8, 200), 8);
        assert_eq!(in_flight_for_elements(8, 9_000), 2);
        assert_eq!(in_flight_for_elements(8, 50_000), 1);
    }

    #[tokio::test]
    async fn quarantined_records_come_back_with_the_result() {
        let (result, kept) = beside(|mut own| async move {
            for n in 0..40 {
                let record = Quarantined {
                    stream: "ad_entities".into(),
                    location: format!("element {n}"),
                    reason: "unreadable".into(),
                    raw: "{}".into(),
                };
                own.quarantine(record).await?;
            }
            Ok(7)
        })
        .await;
        assert_eq!(result.unwrap(), 7);
        assert_eq!(kept.len(), 40, "more records than the channel holds at once");
        assert_eq!(kept[39].location, "element 39");
        let (failed, kept) = beside(|_own| async { Err::<(), _>(SourceError::data("no")) }).await;
        assert!(failed.is_err() && kept.is_empty());
    }
}
