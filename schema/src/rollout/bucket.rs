//! Each client's bucket for a release, and shares of the fleet in basis points.
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
    const DOMAIN: &[u8] = b"wavecast-bucket-v1\0";
    // One-shot hashing of a stack buffer: identical digest to streaming the parts, but
    // several times cheaper for inputs this short. Salts are at most 64 bytes and ids
    // at most 128, so the buffer always fits.
    let mut input = [0u8; DOMAIN.len() + 64 + 1 + 128];
    let parts = [
        DOMAIN,
        salt.as_str().as_bytes(),
        b"\0",
        install_id.as_str().as_bytes(),
    ];
    let mut len = 0;
    for part in parts {
        input[len..len + part.len()].copy_from_slice(part);
        len += part.len();
    }
    let digest = blake3::hash(&input[..len]);
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
    /// Nobody.
    pub const NONE: Self = Self(0);

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
            h if h.is_multiple_of(10) => write!(f, "{whole}.{}%", h / 10),
            h => write!(f, "{whole}.{h:02}%"),
        }
    }
}

impl fmt::Debug for BasisPoints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BasisPoints({self})")
    }
}
