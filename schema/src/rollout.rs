//! Rollout plans and the bucketing function every client runs for itself.
//!
//! # The bucket formula
//!
//! A client's bucket for a release is
//!
//! ```text
//! digest = blake3("wavecast-bucket-v1" || 0x00 || salt || 0x00 || install_id)
//! bucket = u64::from_be_bytes(digest[0..8]) mod 10000
//! ```
//!
//! where `salt` and `install_id` are their ASCII text. The client is inside the
//! rollout when `bucket < threshold`, with the threshold in basis points
//! (`10000` = 100 %). Because the bucket of an id never changes for a release, raising
//! the threshold only ever adds clients; lowering it removes the ones with the highest
//! buckets first. The modulo bias of 2^64 mod 10000 is below 10^-15.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ids::{InstallId, Salt};

/// Number of buckets: thresholds are in basis points, `0..=10000`.
pub const BUCKETS: u16 = 10_000;

/// The client's bucket for a release, in `0..10000`. See the module docs for the
/// formula, which is part of the format and never changes within `format` 1.
pub fn bucket(install_id: &InstallId, salt: &Salt) -> u16 {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"wavecast-bucket-v1\0");
    hasher.update(salt.as_str().as_bytes());
    hasher.update(b"\0");
    hasher.update(install_id.as_str().as_bytes());
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest.as_bytes()[..8]);
    // The remainder is below 10000, so the narrowing cast is lossless.
    (u64::from_be_bytes(first) % u64::from(BUCKETS)) as u16
}

/// A share of the fleet in basis points: `0` is nobody, `10000` is everyone.
///
/// Parses from `30%`, `30` or `0.5%` (at most two decimals) and serializes as the
/// integer number of basis points, so signed manifests never carry floats.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u16", into = "u16")]
pub struct BasisPoints(u16);

impl BasisPoints {
    /// Everyone.
    pub const ALL: Self = Self(BUCKETS);

    /// The share as basis points, `0..=10000`.
    pub fn get(self) -> u16 {
        self.0
    }

    /// Builds a share from basis points, or `None` above `10000`.
    pub fn new(basis_points: u16) -> Option<Self> {
        (basis_points <= BUCKETS).then_some(Self(basis_points))
    }

    /// The share as a percentage, for display.
    pub fn percent(self) -> f64 {
        f64::from(self.0) / 100.0
    }
}

impl TryFrom<u16> for BasisPoints {
    type Error = String;

    fn try_from(value: u16) -> std::result::Result<Self, String> {
        Self::new(value).ok_or_else(|| format!("{value} basis points is more than 100%"))
    }
}

impl From<BasisPoints> for u16 {
    fn from(value: BasisPoints) -> u16 {
        value.0
    }
}

impl FromStr for BasisPoints {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        let invalid = || Error::InvalidPercentage(text.to_owned());
        let number = text.trim().strip_suffix('%').unwrap_or(text.trim());
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || whole.len() > 3 || fraction.len() > 2 || !digits(whole) {
            return Err(invalid());
        }
        if !digits(fraction) || (number.contains('.') && fraction.is_empty()) {
            return Err(invalid());
        }
        let whole: u16 = whole.parse().map_err(|_| invalid())?;
        let hundredths: u16 = format!("{fraction:0<2}").parse().map_err(|_| invalid())?;
        Self::new(whole * 100 + hundredths).ok_or_else(invalid)
    }
}

impl fmt::Display for BasisPoints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (whole, hundredths) = (self.0 / 100, self.0 % 100);
        match hundredths {
            0 => write!(f, "{whole}%"),
            h if h % 10 == 0 => write!(f, "{whole}.{}%", h / 10),
            h => write!(f, "{whole}.{h:02}%"),
        }
    }
}

impl fmt::Debug for BasisPoints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BasisPoints({self})")
    }
}

/// Which clients may take a release.
///
/// Format 1 defines a salt and a fixed share. Later formats extend this object (time
/// ramps, rules by from-version and client attributes, pause, yank); a publisher that
/// uses such fields raises the manifest's `min_client_version` so that older clients,
/// which would ignore them, refuse the manifest instead of misreading it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutPlan {
    /// Per-release random salt, so each release samples a different slice of the fleet.
    pub salt: Salt,
    /// The share of clients the release is offered to.
    pub basis_points: BasisPoints,
}

impl RolloutPlan {
    /// Whether the client with `install_id` is inside this rollout, and its bucket.
    pub fn admits(&self, install_id: &InstallId) -> (bool, u16) {
        let bucket = bucket(install_id, &self.salt);
        (bucket < self.basis_points.get(), bucket)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u64) -> InstallId {
        format!("{n:032x}").parse().unwrap()
    }

    #[test]
    fn percentages_parse_to_basis_points() {
        for (text, expected) in [
            ("30%", 3000),
            ("30", 3000),
            ("0.5%", 50),
            ("0.25", 25),
            ("100%", 10_000),
            ("0", 0),
            (" 12.5% ", 1250),
        ] {
            assert_eq!(
                text.parse::<BasisPoints>().unwrap().get(),
                expected,
                "{text}"
            );
        }
        for bad in [
            "", "%", "101%", "-1", "0.125%", "1.", ".5", "abc", "1e2", "1000",
        ] {
            assert!(bad.parse::<BasisPoints>().is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn basis_points_display_round_trips() {
        for text in ["30%", "0.5%", "0.25%", "100%", "0%", "12.34%"] {
            let parsed: BasisPoints = text.parse().unwrap();
            assert_eq!(parsed.to_string(), text);
        }
    }

    #[test]
    fn bucket_is_stable_and_in_range() {
        let salt: Salt = "00112233445566778899aabbccddeeff".parse().unwrap();
        let first = bucket(&id(1), &salt);
        assert_eq!(first, bucket(&id(1), &salt));
        assert!((0..10_000).map(id).all(|id| bucket(&id, &salt) < BUCKETS));
        let other_salt: Salt = "ffeeddccbbaa99887766554433221100".parse().unwrap();
        let moved = (0..1000)
            .filter(|n| bucket(&id(*n), &salt) != bucket(&id(*n), &other_salt))
            .count();
        assert!(
            moved > 990,
            "a new salt must reshuffle the fleet, moved {moved}"
        );
    }

    /// One million ids at 30 % must land within ±0.1 percentage points of 30 %.
    #[test]
    fn a_million_ids_at_thirty_percent() {
        let salt: Salt = "5a17c0ffee5a17c0ffee5a17c0ffee00".parse().unwrap();
        let threshold: BasisPoints = "30%".parse().unwrap();
        let total = 1_000_000u32;
        let inside = (0..u64::from(total))
            .filter(|n| bucket(&id(n.wrapping_mul(0x9e37_79b9_7f4a_7c15)), &salt) < threshold.get())
            .count();
        let share = inside as f64 / f64::from(total);
        assert!((share - 0.30).abs() <= 0.001, "share inside was {share}");
    }

    #[test]
    fn raising_the_threshold_never_drops_a_client() {
        let salt: Salt = "0badc0de0badc0de".parse().unwrap();
        let plan = |bp| RolloutPlan {
            salt: salt.clone(),
            basis_points: BasisPoints::new(bp).unwrap(),
        };
        for n in 0..20_000 {
            let client = id(n);
            let mut was_in = false;
            for bp in (0..=10_000).step_by(250) {
                let (now_in, _) = plan(bp).admits(&client);
                assert!(!was_in || now_in, "client {n} dropped at {bp} bp");
                was_in = now_in;
            }
            assert!(was_in, "everyone is in at 100%");
        }
    }
}
