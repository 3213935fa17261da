//! Reading several insights listings, report runs and Pages at once. The Graph API answers each
//! request in a few hundred milliseconds and a report run takes seconds to complete, so one at a
//! time leaves the source waiting most of the run. Each job gets its own fork of the emitter
//! ([`Emitter::fork`]): its rows reach the sink as its pages come in, and its counts come back
//! when it ends. Rows of different jobs are therefore interleaved in the order their answers
//! arrive; which days a slice completes does not change.

use std::future::Future;

use futures::StreamExt;
use kpipe_core::{Emitter, SourceError};

/// Runs `run` over `jobs`, at most `in_flight` at once, each with a fork of `out` joined back as
/// it ends. `Ok(false)` when a job reported part of its data quarantined; the first error stops
/// the others (the pull fails with it, so the rows they had not sent are not needed).
pub(crate) async fn run_forked<J, F, Fut>(
    out: &mut Emitter,
    jobs: Vec<J>,
    in_flight: usize,
    run: F,
) -> Result<bool, SourceError>
where
    F: Fn(J, Emitter) -> Fut,
    Fut: Future<Output = (Emitter, Result<bool, SourceError>)>,
{
    // Forks are made before the jobs start: `out` is lent to the joins below meanwhile.
    let forked: Vec<(J, Emitter)> = jobs.into_iter().map(|job| (job, out.fork())).collect();
    let run = &run;
    let mut running = futures::stream::iter(forked)
        .map(|(job, fork)| async move {
            let (mut fork, result) = run(job, fork).await;
            // Each job sends its last rows itself: the channel's free places go to the senders
            // waiting first, and a job waiting here is polled with the others, while a send
            // from the loop below would wait for places promised to jobs it does not poll.
            let flushed = fork.flush().await;
            (fork, result.and_then(|whole| flushed.map(|()| whole)))
        })
        .buffer_unordered(in_flight.max(1));
    let mut whole = true;
    while let Some((fork, result)) = running.next().await {
        // Nothing is left to send: joining only adds the fork's counts.
        out.join(fork).await?;
        whole &= result?;
    }
    Ok(whole)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use kpipe_core::{Decimal, Dimensions, Metric, MetricRow, SourceEvent};

    fn row(entity: String) -> MetricRow {
        MetricRow {
            platform: "facebook".into(),
            account_id: "1".into(),
            level: "campaign".into(),
            entity_id: entity.into(),
            entity_name: None,
            date: NaiveDate::from_ymd_opt(2026, 3, 1).unwrap_or_default(),
            dimensions: Dimensions::default(),
            metric: Metric::Clicks.into(),
            value: Decimal::from_i64(1),
            currency: None,
        }
    }

    #[tokio::test]
    async fn every_job_s_rows_arrive_and_are_counted() {
        let (mut out, mut rx) = Emitter::channel(64, 3);
        let jobs: Vec<u32> = (0..7).collect();
        let whole = run_forked(&mut out, jobs, 3, |job, mut fork| async move {
            for i in 0..job {
                if let Err(e) = fork.emit(row(format!("{job}-{i}"))).await {
                    return (fork, Err(e));
                }
            }
            (fork, Ok(job != 4))
        })
        .await
        .unwrap();
        assert!(!whole, "job 4 said part of its data was quarantined");
        out.flush().await.unwrap();
        assert_eq!(out.rows_emitted(), (0..7).sum::<u64>());
        drop(out);
        let mut rows = 0;
        while let Some(event) = rx.recv().await {
            if let SourceEvent::Rows(batch) = event {
                rows += batch.len();
            }
        }
        assert_eq!(rows, 21);
    }

    /// A channel of one batch and many jobs sending at once: the jobs' sends and the joins
    /// never wait for each other (the receiver reads in another task, as the sink does).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn jobs_sending_into_a_full_channel_all_finish() {
        let (mut out, mut rx) = Emitter::channel(1, 2);
        let reader = tokio::spawn(async move {
            let mut rows = 0;
            while let Some(event) = rx.recv().await {
                if let SourceEvent::Rows(batch) = event {
                    rows += batch.len();
                    tokio::task::yield_now().await;
                }
            }
            rows
        });
        let jobs: Vec<u32> = (0..40).collect();
        run_forked(&mut out, jobs, 16, |job, mut fork| async move {
            for i in 0..25 {
                if let Err(e) = fork.emit(row(format!("{job}-{i}"))).await {
                    return (fork, Err(e));
                }
            }
            (fork, Ok(true))
        })
        .await
        .unwrap();
        out.flush().await.unwrap();
        assert_eq!(out.rows_emitted(), 1_000);
        drop(out);
        assert_eq!(reader.await.unwrap(), 1_000);
    }

    #[tokio::test]
    async fn the_first_error_ends_the_run() {
        let (mut out, _rx) = Emitter::channel(64, 3);
        let failed = run_forked(&mut out, vec![1, 2, 3], 2, |job, fork| async move {
            (fork, if job == 2 { Err(SourceError::data("broken")) } else { Ok(true) })
        })
        .await;
        assert!(failed.is_err());
    }
}
