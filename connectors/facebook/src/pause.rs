//! Waiting on the runtime's timer: pauses for usage near the limit and the waits between
//! report-run polls, which with many runs in flight are many at once.

use std::time::Duration;

/// Completes after `duration`, without blocking the executor.
pub async fn sleep(duration: Duration) {
    if !duration.is_zero() {
        tokio::time::sleep(duration).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sleeps_at_least_as_long_as_asked() {
        let start = std::time::Instant::now();
        sleep(Duration::from_millis(40)).await;
        assert!(start.elapsed() >= Duration::from_millis(40));
        sleep(Duration::ZERO).await;
    }
}
