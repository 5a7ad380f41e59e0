//! Pacing for failure paths: an exponential backoff for retries, and a throttle that
//! keeps a failing disk or backend from writing one log line per request.

use std::time::{Duration, Instant};

/// Exponential backoff between `first` and `max`, reset by a success.
#[derive(Debug)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// Starts at `first`, doubles per failure up to `max`.
    pub fn new(first: Duration, max: Duration) -> Self {
        Self {
            first,
            max,
            next: first,
        }
    }

    /// The delay to wait now; the following one doubles.
    pub fn failed(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }

    /// Back to the first delay.
    pub fn reset(&mut self) {
        self.next = self.first;
    }
}

/// Lets one log line through per period and counts the ones it held back.
#[derive(Debug)]
pub struct LogThrottle {
    period: Duration,
    last: Option<Instant>,
    held_back: u64,
}

impl LogThrottle {
    /// At most one line per `period`.
    pub fn new(period: Duration) -> Self {
        Self {
            period,
            last: None,
            held_back: 0,
        }
    }

    /// `Some(lines held back since the last one)` when a line may be logged now.
    pub fn allow(&mut self) -> Option<u64> {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|last| now.duration_since(last) < self.period)
        {
            self.held_back += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.held_back))
    }

    /// Whether a failure was logged since the last `recovered`; resets the throttle,
    /// so that the next failure is logged at once.
    pub fn recovered(&mut self) -> bool {
        let was_failing = self.last.is_some();
        self.last = None;
        self.held_back = 0;
        was_failing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_resets() {
        let mut backoff = Backoff::new(Duration::from_millis(10), Duration::from_millis(35));
        let delays: Vec<u128> = (0..4).map(|_| backoff.failed().as_millis()).collect();
        assert_eq!(delays, [10, 20, 35, 35]);
        backoff.reset();
        assert_eq!(backoff.failed(), Duration::from_millis(10));
    }

    #[test]
    fn the_throttle_lets_one_line_through_per_period() {
        let mut throttle = LogThrottle::new(Duration::from_secs(3600));
        assert_eq!(throttle.allow(), Some(0));
        assert_eq!(throttle.allow(), None);
        assert_eq!(throttle.allow(), None);
        assert!(throttle.recovered());
        assert!(!throttle.recovered());
        assert_eq!(throttle.allow(), Some(0));
    }
}
