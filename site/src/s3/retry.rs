//! When and how long to wait before sending a failed request again.
//!
//! Storage services shed load with 503 `SlowDown` and 429, and networks drop
//! connections; both pass, so such failures are retried a bounded number of times
//! with exponential backoff. The delays are jittered so that many publishers (or the
//! parts of one upload) that failed together do not all come back at once.

use std::time::Duration;

/// A bounded retry schedule: exponential backoff with jitter, capped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Retry {
    /// Attempts in all, the first included.
    pub(super) attempts: u32,
    /// The delay before the second attempt, before jitter; it doubles each time.
    pub(super) first_delay: Duration,
    /// The longest delay between two attempts.
    pub(super) max_delay: Duration,
}

impl Retry {
    /// Five attempts over about 6 seconds at most: long enough for a throttled bucket
    /// or a dropped connection to recover, short enough that a dead endpoint is
    /// reported promptly.
    pub(super) const DEFAULT: Self = Self {
        attempts: 5,
        first_delay: Duration::from_millis(400),
        max_delay: Duration::from_secs(3),
    };

    /// The delay after the failed attempt number `attempt` (1 for the first): the
    /// capped exponential delay, less a random part of up to half of it.
    pub(super) fn delay(&self, attempt: u32) -> Duration {
        let exponential = self
            .first_delay
            .saturating_mul(1 << attempt.saturating_sub(1).min(16))
            .min(self.max_delay);
        // Jitter is best effort: without randomness the delay is simply not shortened.
        let random = getrandom::u64().unwrap_or(0);
        let half = exponential / 2;
        let jitter = Duration::from_nanos(random % (half.as_nanos() as u64).max(1));
        exponential - jitter
    }
}

/// Whether an answer with `status` is worth sending again: the server is overloaded,
/// throttling or failing for now. 501 (not implemented) never changes.
pub(super) fn retryable_status(status: u16) -> bool {
    status == 429 || (status >= 500 && status != 501)
}

/// Whether a transport failure may pass: a refused, reset or timed-out connection.
/// TLS, protocol and request-building errors would fail the same way again.
pub(super) fn retryable_error(error: &ureq::Error) -> bool {
    matches!(
        error,
        ureq::Error::Io(_)
            | ureq::Error::Timeout(_)
            | ureq::Error::ConnectionFailed
            | ureq::Error::HostNotFound
            | ureq::Error::BodyStalled
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_exponentially_within_bounds() {
        let retry = Retry::DEFAULT;
        for (attempt, ceiling) in [(1, 400), (2, 800), (3, 1600), (4, 3000), (10, 3000)] {
            let ceiling = Duration::from_millis(ceiling);
            for _ in 0..20 {
                let delay = retry.delay(attempt);
                assert!(
                    delay <= ceiling && delay >= ceiling / 2,
                    "attempt {attempt}: {delay:?}"
                );
            }
        }
        let delays: std::collections::BTreeSet<_> = (0..20).map(|_| retry.delay(3)).collect();
        assert!(delays.len() > 1, "the delays are jittered: {delays:?}");
    }

    #[test]
    fn only_passing_failures_are_retried() {
        for status in [429, 500, 502, 503, 504] {
            assert!(retryable_status(status), "{status}");
        }
        for status in [400, 403, 404, 409, 501] {
            assert!(!retryable_status(status), "{status}");
        }
        assert!(retryable_error(&ureq::Error::ConnectionFailed));
        assert!(!retryable_error(&ureq::Error::BadUri("x".into())));
    }
}
