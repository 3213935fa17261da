//! Waiting without an async runtime dependency: the connector depends on kpipe-core and
//! kpipe-http only, and pauses (usage near the limit, report-run polls) are few and long, so a
//! short-lived timer thread per pause costs nothing that matters.

use std::time::Duration;

/// Completes after `duration`, without blocking the executor.
pub async fn sleep(duration: Duration) {
    if duration.is_zero() {
        return;
    }
    let (done, wait) = futures::channel::oneshot::channel::<()>();
    let timer = std::thread::Builder::new().name("kpipe-facebook-timer".into()).spawn(move || {
        std::thread::sleep(duration);
        let _ = done.send(());
    });
    match timer {
        Ok(_) => {
            let _ = wait.await;
        }
        Err(e) => {
            // Without a thread the pause cannot be taken; the platform's throttling errors are
            // still retried with their waits, so the pull stays correct, only less polite.
            tracing::warn!(error = %e, "cannot start a timer thread; continuing without the pause");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sleeps_about_as_long_as_asked() {
        let start = std::time::Instant::now();
        sleep(Duration::from_millis(40)).await;
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(40) && took < Duration::from_secs(2), "{took:?}");
        sleep(Duration::ZERO).await;
    }
}
