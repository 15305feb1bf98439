//! How a rollout treats this client, in owned form: the test that settled a check
//! ([`RolloutCheck`]) and the newer releases it holds back ([`HeldBack`]).

use std::fmt;

use jiff::Timestamp;
use semver::Version;
use wavecast_schema::{AppliedRollout, BasisPoints, Exclusion, Offer};

/// The rollout test that settled a [`CheckReport`](crate::CheckReport), in owned form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RolloutCheck {
    /// This client's bucket for the release, `0..10000`.
    pub bucket: u16,
    /// The release's threshold at the time of the check (after any cap); the client
    /// is in when `bucket < threshold`, unless a rule or an exclusion says otherwise.
    pub threshold: BasisPoints,
    /// Why the release keeps this client out regardless of time, if it does.
    pub exclusion: Option<Exclusion>,
}

/// A release newer than the installed one that does not admit this client now, and
/// what keeps it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldBack {
    /// The release.
    pub version: Version,
    /// Its rollout test for this client.
    pub rollout: RolloutCheck,
    /// The rollout rule that applied, if one matched.
    pub rule: Option<String>,
    /// When its ramp admits this client, if that time is known.
    pub eligible_at: Option<Timestamp>,
}

impl HeldBack {
    pub(crate) fn from_offer(offer: &Offer<'_>) -> Self {
        let AppliedRollout {
            release,
            bucket,
            threshold,
            rule,
            exclusion,
        } = offer.applied;
        Self {
            version: release.version.clone(),
            rollout: RolloutCheck {
                bucket,
                threshold,
                exclusion,
            },
            rule: rule.map(|rule| rule.name.clone()),
            eligible_at: offer.eligible_at,
        }
    }

    /// What keeps it out, as a code for JSON: `paused`, `excluded_by_rule`,
    /// `capped`, `ramping` (it admits this client at [`Self::eligible_at`]) or
    /// `outside_share`.
    pub fn reason(&self) -> &'static str {
        match (self.rollout.exclusion, self.eligible_at) {
            (Some(exclusion), _) => exclusion.as_str(),
            (None, Some(_)) => "ramping",
            (None, None) => "outside_share",
        }
    }
}

impl fmt::Display for HeldBack {
    /// `the rollout of 1.2.0 is paused`, `1.1.0 is capped at 25.00%; this client's
    /// bucket 8123 is above the cap`, `1.1.0 is rolling out to 30.00%; this client's
    /// bucket 4968 is outside it (rule `eu`)`…
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            version,
            rollout,
            rule,
            eligible_at,
        } = self;
        let (bucket, threshold) = (rollout.bucket, rollout.threshold);
        match (rollout.exclusion, eligible_at) {
            (Some(Exclusion::Paused), _) => write!(f, "the rollout of {version} is paused")?,
            (Some(Exclusion::Yanked), _) => write!(f, "{version} was yanked")?,
            (Some(Exclusion::Rule), _) => {
                return match rule {
                    Some(rule) => write!(f, "{version} is excluded by rule `{rule}`"),
                    None => write!(f, "{version} is excluded by a rule"),
                };
            }
            (Some(Exclusion::Capped), _) => write!(
                f,
                "{version} is capped at {threshold}; this client's bucket {bucket} is above the cap"
            )?,
            (None, Some(at)) => write!(
                f,
                "{version} is ramping (threshold {threshold} now); this client's bucket {bucket} enters at {at}"
            )?,
            (None, None) => write!(
                f,
                "{version} is rolling out to {threshold}; this client's bucket {bucket} is outside it"
            )?,
        }
        match rule {
            Some(rule) => write!(f, " (rule `{rule}`)"),
            None => Ok(()),
        }
    }
}
