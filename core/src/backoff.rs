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

    #[test]
    fn a_minimum_above_the_maximum_waits_the_maximum() {
        let mut backoff = Backoff::from_millis(900, 500);
        assert_eq!(backoff.next_delay(), Duration::from_millis(500));
    }
}
