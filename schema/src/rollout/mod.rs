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

mod ramp;
mod rules;

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use semver::Version;
use serde::{Deserialize, Serialize};

pub use ramp::{Ramp, RampPoint, format_duration, parse_duration};
pub(crate) use rules::SharedPatterns;
pub use rules::{
    AttributeMatch, Attributes, Pattern, Rule, RuleAction, VersionRange, parse_version,
};

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

/// A share of the fleet: fixed, or growing along a time ramp.
///
/// Serialized as `basis_points` plus an optional `ramp`; with a ramp, `basis_points`
/// is where the ramp ends. Parses from `30%` or from a ramp (`1%@0h,100%@3d`, `7d`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Share {
    /// The share, or with a ramp, the share the ramp ends at.
    pub basis_points: BasisPoints,
    /// The time ramp, measured from the rollout's `started_at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ramp: Option<Ramp>,
}

impl Share {
    /// A fixed share.
    pub fn fixed(basis_points: BasisPoints) -> Self {
        Self {
            basis_points,
            ramp: None,
        }
    }

    /// A share that follows `ramp`.
    pub fn ramped(ramp: Ramp) -> Self {
        Self {
            basis_points: ramp.final_share(),
            ramp: Some(ramp),
        }
    }

    /// Whether `bucket` is in, `elapsed` seconds after the rollout started (`None`
    /// when the rollout has no start, which only fixed shares allow).
    pub fn admits(&self, bucket: u16, elapsed: Option<i64>) -> bool {
        match (&self.ramp, elapsed) {
            (Some(ramp), Some(elapsed)) => ramp.admits(bucket, elapsed),
            (Some(_), None) => false,
            (None, _) => bucket < self.basis_points.get(),
        }
    }

    /// The threshold in force `elapsed` seconds after the start.
    pub fn threshold_at(&self, elapsed: Option<i64>) -> BasisPoints {
        match (&self.ramp, elapsed) {
            (Some(ramp), Some(elapsed)) => ramp.threshold_at(elapsed),
            (Some(_), None) => BasisPoints(0),
            (None, _) => self.basis_points,
        }
    }

    /// Seconds after the start at which `bucket` is first in, or `None` if never.
    pub fn admitted_after(&self, bucket: u16) -> Option<u64> {
        match &self.ramp {
            Some(ramp) => ramp.admitted_after(bucket),
            None => (bucket < self.basis_points.get()).then_some(0),
        }
    }

    fn validate(&self) -> std::result::Result<(), String> {
        match &self.ramp {
            Some(ramp) if ramp.final_share() != self.basis_points => Err(format!(
                "basis_points {} differs from the end of its ramp, {}",
                self.basis_points.get(),
                ramp.final_share().get()
            )),
            _ => Ok(()),
        }
    }
}

impl FromStr for Share {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        let looks_like_ramp =
            text.contains('@') || text.trim().ends_with(['s', 'm', 'h', 'd', 'w']);
        if looks_like_ramp {
            Ok(Self::ramped(text.parse()?))
        } else {
            Ok(Self::fixed(text.parse()?))
        }
    }
}

impl fmt::Display for Share {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.ramp {
            Some(ramp) => write!(f, "ramp {ramp}"),
            None => write!(f, "{}", self.basis_points),
        }
    }
}

/// Which clients may take a release, and when.
///
/// The default share applies to clients no rule matches; `rules` are tried in order
/// and the first match wins. A `cap` is a ceiling on every share: clients whose
/// bucket is at or above it are moved off the release. A paused release is offered to
/// nobody new; a yanked one to nobody, and clients on it move to the best release
/// still allowed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutPlan {
    /// Per-release random salt, so each release samples a different slice of the fleet.
    pub salt: Salt,
    /// The share offered to clients no rule matches.
    #[serde(flatten)]
    pub share: Share,
    /// When ramps start counting. Required when any share of the plan has a ramp;
    /// resuming a paused rollout moves it later by the time spent paused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    /// A ceiling on every share, e.g. from a fleet cap (`--cap 1000000 --fleet
    /// 3000000` is 33.33 %). It is an approximation: no server counts installs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap: Option<BasisPoints>,
    /// Ordered rules by current version and client attributes; the first match wins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<Rule>,
    /// Set while the rollout is paused: nobody new is offered the release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused_at: Option<Timestamp>,
    /// A yanked release is offered to nobody, and clients on it move away.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub yanked: bool,
}

impl RolloutPlan {
    /// A plan offering a fixed share to everyone, with no rules.
    pub fn fixed(salt: Salt, basis_points: BasisPoints) -> Self {
        Self {
            salt,
            share: Share::fixed(basis_points),
            started_at: None,
            cap: None,
            rules: Vec::new(),
            paused_at: None,
            yanked: false,
        }
    }

    /// Whether any share of the plan follows a time ramp.
    pub fn has_ramp(&self) -> bool {
        self.share.ramp.is_some() || self.rules.iter().any(Rule::has_ramp)
    }

    /// The first rule matching a client on `current` with `attributes`.
    pub fn matching_rule(
        &self,
        current: Option<&Version>,
        attributes: &Attributes,
    ) -> Option<&Rule> {
        self.rules
            .iter()
            .find(|rule| rule.matches(current, attributes))
    }

    pub(crate) fn validate(&self) -> std::result::Result<(), String> {
        self.share.validate()?;
        let mut names = std::collections::BTreeSet::new();
        for rule in &self.rules {
            if rule.name.trim().is_empty() {
                return Err("a rule has an empty name".into());
            }
            if !names.insert(rule.name.as_str()) {
                return Err(format!("rule `{}` is named twice", rule.name));
            }
            if let RuleAction::Share(share) = &rule.action {
                share
                    .validate()
                    .map_err(|problem| format!("rule `{}`: {problem}", rule.name))?;
            }
        }
        if self.has_ramp() && self.started_at.is_none() {
            return Err("the rollout has a ramp but no started_at".into());
        }
        Ok(())
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

    /// The documented formula, computed independently, so an optimisation of
    /// [`bucket`] can never silently change a published decision.
    #[test]
    fn bucket_follows_the_documented_formula() {
        let salt: Salt = "00112233445566778899aabbccddeeff".parse().unwrap();
        for n in [0, 1, 42, 99_999] {
            let install_id = id(n);
            let text = format!("wavecast-bucket-v1\0{salt}\0{install_id}");
            let digest = blake3::hash(text.as_bytes());
            let first = u64::from_be_bytes(digest.as_bytes()[..8].try_into().unwrap());
            assert_eq!(u64::from(bucket(&install_id, &salt)), first % 10_000);
        }
        let longest_id: InstallId = "i".repeat(128).parse().unwrap();
        let longest_salt: Salt = "a".repeat(64).parse().unwrap();
        assert!(bucket(&longest_id, &longest_salt) < BUCKETS);
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
        for n in 0..20_000 {
            let client = bucket(&id(n), &salt);
            let mut was_in = false;
            for bp in (0..=10_000).step_by(250) {
                let now_in = Share::fixed(BasisPoints::new(bp).unwrap()).admits(client, None);
                assert!(!was_in || now_in, "client {n} dropped at {bp} bp");
                was_in = now_in;
            }
            assert!(was_in, "everyone is in at 100%");
        }
    }
}
