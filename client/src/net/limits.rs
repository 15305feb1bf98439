//! How slowly a host may send a file: a minimum average speed and a deadline per
//! download ([`DownloadLimits`]), so a host that trickles bytes cannot hold the client
//! (or freeze it on what it has) indefinitely.
//!
//! The per-read timeout of the HTTP transport only catches a host that stops; one that
//! sends a byte every few seconds never trips it. Every download, the channel manifest
//! as well as every package, patch, file index and file copy, is therefore timed from
//! its request: once the grace has passed, the bytes received must keep up with the
//! minimum average speed, and the last byte must arrive before the deadline. The check
//! runs whenever bytes arrive, so a host that sends nothing is still cut off by the
//! transport's read timeout. A download that breaks a limit is an
//! [`Error::TooSlow`], and the next host is tried.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::net::error::{Error, Result, SpeedLimit};
use crate::units::duration_text;

/// The default minimum average speed: 4 KiB/s, a speed any working link keeps up
/// with, while a host trickling a byte at a time falls far below it.
pub const DEFAULT_MIN_SPEED: u64 = 4 * 1024;
/// The default grace before the average speed is judged: 10 s, so that small files,
/// which may be over before it ends, and slow starts (DNS, TLS, a cold CDN) are not
/// punished.
pub const DEFAULT_MIN_SPEED_GRACE: Duration = Duration::from_secs(10);
/// The default deadline of one download: 1 h, which a 1 GiB package meets at
/// 300 KB/s. Raise it for larger packages on slower links.
pub const DEFAULT_DOWNLOAD_DEADLINE: Duration = Duration::from_secs(3600);

/// How slowly one download (one request to one host) may arrive. Stored in the
/// configuration as text: `{"min_speed": "4KiB/s", "min_speed_grace": "10s",
/// "deadline": "1h"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DownloadLimits {
    /// The minimum average speed in bytes per second, from the request to the last
    /// byte; 0 for none.
    #[serde(with = "crate::units::speed_text")]
    pub min_speed: u64,
    /// How long a download runs before its average speed is judged.
    #[serde(with = "duration_text")]
    pub min_speed_grace: Duration,
    /// The longest one download may take, from the request to the last byte.
    #[serde(with = "duration_text")]
    pub deadline: Duration,
}

impl Default for DownloadLimits {
    fn default() -> Self {
        Self {
            min_speed: DEFAULT_MIN_SPEED,
            min_speed_grace: DEFAULT_MIN_SPEED_GRACE,
            deadline: DEFAULT_DOWNLOAD_DEADLINE,
        }
    }
}

/// The clock of one download, started just before its request is sent.
#[derive(Debug)]
pub(crate) struct Pace {
    limits: DownloadLimits,
    started: Instant,
}

impl Pace {
    /// Starts timing a download now.
    pub(crate) fn start(limits: DownloadLimits) -> Self {
        Self {
            limits,
            started: Instant::now(),
        }
    }

    /// Checks that `received` bytes by now keep within the limits.
    ///
    /// # Errors
    ///
    /// [`Error::TooSlow`] naming `url`, when the deadline has passed, or when the
    /// grace has passed and the average speed is below the minimum.
    pub(crate) fn check(&self, url: &str, received: u64) -> Result<()> {
        let elapsed = self.started.elapsed();
        let too_slow = |limit| Error::TooSlow {
            url: url.to_owned(),
            received,
            elapsed,
            limit,
        };
        if elapsed > self.limits.deadline {
            return Err(too_slow(SpeedLimit::Deadline(self.limits.deadline)));
        }
        let expected = u128::from(self.limits.min_speed) * elapsed.as_millis() / 1000;
        if elapsed > self.limits.min_speed_grace && u128::from(received) < expected {
            return Err(too_slow(SpeedLimit::MinSpeed(self.limits.min_speed)));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limits_round_trip_as_text_and_default_when_missing() {
        let limits = DownloadLimits {
            min_speed: 1024,
            min_speed_grace: Duration::from_secs(2),
            deadline: Duration::from_secs(1800),
        };
        let json = serde_json::to_string(&limits).unwrap();
        assert_eq!(
            json,
            r#"{"min_speed":"1KiB/s","min_speed_grace":"2s","deadline":"30m"}"#
        );
        assert_eq!(
            serde_json::from_str::<DownloadLimits>(&json).unwrap(),
            limits
        );
        assert_eq!(
            serde_json::from_str::<DownloadLimits>(r#"{"deadline":"30m"}"#).unwrap(),
            DownloadLimits {
                deadline: Duration::from_secs(1800),
                ..DownloadLimits::default()
            }
        );
        assert!(serde_json::from_str::<DownloadLimits>(r#"{"min_speed":"fast"}"#).is_err());
    }

    #[test]
    fn a_download_is_judged_after_the_grace_and_cut_at_the_deadline() {
        let limits = DownloadLimits {
            min_speed: 1000,
            min_speed_grace: Duration::from_secs(10),
            deadline: Duration::from_secs(60),
        };
        let at = |seconds| Pace {
            limits,
            started: Instant::now() - Duration::from_secs(seconds),
        };
        // Within the grace, nothing is judged.
        at(5).check("u", 0).unwrap();
        // After it, the average must keep up: 20 s need 20,000 bytes.
        at(20).check("u", 20_100).unwrap();
        let error = at(20).check("u", 100).unwrap_err();
        assert!(
            matches!(
                error,
                Error::TooSlow {
                    received: 100,
                    limit: SpeedLimit::MinSpeed(1000),
                    ..
                }
            ),
            "{error}"
        );
        let message = error.to_string();
        assert!(
            message.starts_with("download of `u` cut off after 100 bytes in 20.0"),
            "{message}"
        );
        assert!(
            message.ends_with("s: below the minimum average speed of 1000B/s"),
            "{message}"
        );
        // Past the deadline, even a fast download stops.
        let error = at(61).check("u", 1 << 30).unwrap_err();
        assert!(
            error
                .to_string()
                .ends_with("past the download deadline of 1m"),
            "{error}"
        );
        // No minimum speed: only the deadline counts.
        let unlimited = Pace {
            limits: DownloadLimits {
                min_speed: 0,
                ..limits
            },
            started: Instant::now() - Duration::from_secs(30),
        };
        unlimited.check("u", 0).unwrap();
    }
}
