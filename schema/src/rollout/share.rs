//! A share of the fleet a release reaches: fixed, or growing along a time ramp.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::bucket::BasisPoints;
use super::ramp::Ramp;
use crate::error::{Error, Result};

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
            (Some(_), None) => BasisPoints::NONE,
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

    pub(super) fn validate(&self) -> std::result::Result<(), String> {
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
