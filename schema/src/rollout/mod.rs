//! Rollout plans: which clients may take a release, and when. Each client computes
//! its own bucket for a release ([`bucket()`], whose module gives the formula) and is
//! inside the rollout while the bucket is below the share in force ([`Share`]).

mod bucket;
mod ramp;
mod rules;
mod share;

use jiff::Timestamp;
use semver::Version;
use serde::{Deserialize, Serialize};

pub use bucket::{BUCKETS, BasisPoints, bucket};
pub use ramp::{Ramp, RampPoint, format_duration, parse_duration};
pub(crate) use rules::SharedPatterns;
pub use rules::{
    AttributeMatch, Attributes, Pattern, Rule, RuleAction, VersionRange, parse_version,
};
pub use share::Share;

use crate::ids::Salt;

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
    use crate::ids::InstallId;

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
