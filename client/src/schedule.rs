//! When `wavecast-update poll` checks next: an interval with random jitter, and a
//! capped exponential backoff after failures.

use std::time::Duration;

use crate::units::parse_duration;

/// The first wait after a failed check, doubled after each further failure.
pub const BACKOFF_START: Duration = Duration::from_secs(30);
/// The longest wait after failures, unless the interval is shorter.
pub const BACKOFF_CAP: Duration = Duration::from_secs(3600);

/// The shortest interval `poll` takes: a fleet checking faster than this floods its
/// host with requests that only find the manifest unchanged.
pub const MIN_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// A polling schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PollSchedule {
    /// The wait between successful checks.
    pub interval: Duration,
    /// How far each wait may move either way, as a fraction of it (0.1 = ±10 %), so
    /// a fleet started together does not poll together.
    pub jitter: f64,
}

impl PollSchedule {
    /// The wait before the next check after `failures` consecutive failed checks
    /// (0 after a success), moved by `random` (uniform over `u64`) within the
    /// jitter. After failures the wait starts at [`BACKOFF_START`] and doubles, up
    /// to [`BACKOFF_CAP`] or the interval, whichever is shorter.
    pub fn delay(&self, failures: u32, random: u64) -> Duration {
        let base = if failures == 0 {
            self.interval
        } else {
            let doubled = BACKOFF_START.saturating_mul(1u32 << failures.saturating_sub(1).min(16));
            doubled.min(BACKOFF_CAP).min(self.interval)
        };
        #[expect(clippy::cast_precision_loss, reason = "a fraction needs no precision")]
        let unit = random as f64 / u64::MAX as f64;
        let factor = 1.0 + self.jitter.clamp(0.0, 1.0) * (2.0 * unit - 1.0);
        base.mul_f64(factor.max(0.0))
    }
}

/// Parses a polling interval such as `6h` (see [`parse_duration`]), at least
/// [`MIN_POLL_INTERVAL`].
///
/// # Errors
///
/// A message saying what was expected.
pub fn parse_interval(text: &str) -> Result<Duration, String> {
    let interval = parse_duration(text)?;
    if interval < MIN_POLL_INTERVAL {
        return Err(format!(
            "`{text}` is shorter than 1s: a fleet polling that often floods the host (hours are usual, e.g. 6h)"
        ));
    }
    Ok(interval)
}

/// Parses a jitter such as `10%` (or `10`) into a fraction between 0 and 1.
///
/// # Errors
///
/// A message saying what was expected.
pub fn parse_jitter(text: &str) -> Result<f64, String> {
    let number = text.trim().trim_end_matches('%');
    match number.parse::<f64>() {
        Ok(percent) if (0.0..=100.0).contains(&percent) => Ok(percent / 100.0),
        _ => Err(format!("`{text}` is not a percentage from 0% to 100%")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_jitters_parse() {
        assert_eq!(parse_duration("6h"), Ok(Duration::from_secs(6 * 3600)));
        assert_eq!(parse_duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        assert!(parse_duration("6").unwrap_err().contains("no unit"));
        assert!(parse_duration("h").is_err());
        assert_eq!(parse_interval("1s"), Ok(Duration::from_secs(1)));
        assert!(
            parse_interval("0s")
                .unwrap_err()
                .contains("shorter than 1s")
        );
        assert!(parse_interval("500ms").is_err());
        assert_eq!(parse_jitter("10%"), Ok(0.1));
        assert_eq!(parse_jitter("0"), Ok(0.0));
        assert!(parse_jitter("150%").is_err());
    }

    #[test]
    fn delays_jitter_within_bounds_and_back_off_to_a_cap() {
        let schedule = PollSchedule {
            interval: Duration::from_secs(6 * 3600),
            jitter: 0.1,
        };
        assert!(
            schedule
                .delay(0, u64::MAX / 2)
                .abs_diff(Duration::from_secs(6 * 3600))
                < Duration::from_millis(1)
        );
        assert_eq!(
            schedule.delay(0, 0),
            Duration::from_secs(6 * 3600).mul_f64(0.9)
        );
        assert_eq!(
            schedule.delay(0, u64::MAX),
            Duration::from_secs(6 * 3600).mul_f64(1.1)
        );
        let steady = PollSchedule {
            jitter: 0.0,
            ..schedule
        };
        assert_eq!(steady.delay(1, 0), Duration::from_secs(30));
        assert_eq!(steady.delay(2, 0), Duration::from_secs(60));
        assert_eq!(steady.delay(8, 0), Duration::from_secs(3600));
        assert_eq!(steady.delay(u32::MAX, 0), Duration::from_secs(3600));
        let short = PollSchedule {
            interval: Duration::from_secs(1),
            jitter: 0.0,
        };
        assert_eq!(short.delay(5, 0), Duration::from_secs(1));
    }
}
