//! Exponential backoff between retries of the same work: ClickHouse inserts,
//! lake writes, a service's first connection. One helper, so every retry loop
//! waits the same way and says in its log line how long it waits.

use std::time::Duration;

/// Waits that start at `min`, double after each retry, and never exceed `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Self {
        Self {
            next: min.min(max),
            max,
        }
    }

    /// From the `min_backoff_ms` / `max_backoff_ms` pairs of the settings.
    pub fn from_millis(min_ms: u64, max_ms: u64) -> Self {
        Self::new(Duration::from_millis(min_ms), Duration::from_millis(max_ms))
    }

    /// The wait before the next retry (log it, then sleep it); the one after
    /// it is twice as long, up to the maximum.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = self.next.saturating_mul(2).min(self.max);
        delay
    }

    /// Runs `attempt` until it succeeds, logging each failure as `what`
    /// with the wait before the next try. For the reads a consumer loop
    /// cannot go on without (where a partition stands after a rebalance): a
    /// ClickHouse hiccup then delays the loop instead of ending the service,
    /// which would leave its partitions unconsumed until something restarts
    /// it. Cancelled by dropping the future (a shutdown `select!`).
    pub async fn retry<T, E, F>(mut self, what: &str, mut attempt: impl FnMut() -> F) -> T
    where
        E: std::fmt::Display,
        F: Future<Output = Result<T, E>>,
    {
        loop {
            match attempt().await {
                Ok(value) => return value,
                Err(err) => {
                    let delay = self.next_delay();
                    tracing::warn!(
                        error = format!("{err:#}"),
                        backoff_ms = delay.as_millis() as u64,
                        "{what} failed; retrying"
                    );
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_maximum() {
        let mut backoff = Backoff::from_millis(100, 500);
        let waits: Vec<u128> = (0..5).map(|_| backoff.next_delay().as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 500, 500]);
    }

    #[tokio::test]
    async fn retry_tries_again_until_the_attempt_succeeds() {
        let mut failures = 3;
        let value = Backoff::from_millis(1, 2)
            .retry("the test read", || {
                let outcome = if failures == 0 {
                    Ok(7)
                } else {
                    failures -= 1;
                    Err("refused")
                };
                std::future::ready(outcome)
            })
            .await;
        assert_eq!((value, failures), (7, 0));
    }

    #[test]
    fn a_minimum_above_the_maximum_waits_the_maximum() {
        let mut backoff = Backoff::from_millis(900, 500);
        assert_eq!(backoff.next_delay(), Duration::from_millis(500));
    }
}
