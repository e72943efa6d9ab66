//! One bounded exponential back-off for every retry loop in the workspace.
//!
//! Why one: the same "double the delay, cap it" rule was written out in eight
//! places with slightly different caps. A retry loop that forgets the cap hammers
//! a recovering PostgreSQL or NATS; one that forgets to reset waits needlessly
//! long after a recovery. Here both are a method call.

use std::time::Duration;

/// A doubling delay between `initial` and `max`.
///
/// `next()` returns the delay to wait now and doubles the one after it;
/// `reset()` goes back to `initial` after a success.
#[derive(Debug, Clone)]
pub struct Backoff {
    /// The first delay, and the one after every `reset()`.
    initial: Duration,
    /// The bound: no wait is ever longer than this.
    max: Duration,
    /// The delay `next()` returns next.
    current: Duration,
}

impl Backoff {
    /// A back-off from `initial` doubling up to `max` (`max` is raised to
    /// `initial` if smaller, so the bound always holds).
    pub fn new(initial: Duration, max: Duration) -> Self {
        let max = max.max(initial);
        Self {
            initial,
            max,
            current: initial,
        }
    }

    /// The delay to wait now; the next call returns twice as much, capped.
    pub fn next_delay(&mut self) -> Duration {
        let now = self.current;
        self.current = (self.current * 2).min(self.max);
        now
    }

    /// Sleeps for [`Backoff::next_delay`].
    pub async fn wait(&mut self) {
        tokio::time::sleep(self.next_delay()).await;
    }

    /// Back to the first delay (call after a success).
    pub fn reset(&mut self) {
        self.current = self.initial;
    }

    /// The delay for the `attempt`-th retry (0-based) without keeping state:
    /// `initial * 2^attempt`, capped at `max`.
    pub fn delay_for(initial: Duration, max: Duration, attempt: u32) -> Duration {
        // 2^16 × any sane initial delay is already past every cap we use; the
        // clamp keeps the shift from overflowing.
        let factor = 1u32 << attempt.min(16);
        initial.saturating_mul(factor).min(max.max(initial))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(500));
        let got: Vec<u128> = (0..5).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(got, [100, 200, 400, 500, 500]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(100));
    }

    #[test]
    fn stateless_delay_is_capped_and_never_overflows() {
        let (i, m) = (Duration::from_millis(500), Duration::from_secs(8));
        assert_eq!(Backoff::delay_for(i, m, 0), i);
        assert_eq!(Backoff::delay_for(i, m, 2), Duration::from_secs(2));
        assert_eq!(Backoff::delay_for(i, m, 10), m);
        assert_eq!(Backoff::delay_for(i, m, u32::MAX), m);
    }

    #[test]
    fn a_cap_below_the_initial_delay_is_raised() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_millis(10));
        assert_eq!(b.next_delay(), Duration::from_secs(1));
        assert_eq!(b.next_delay(), Duration::from_secs(1));
    }
}
