//! Time ramps: a share of the fleet that grows piecewise-linearly with time.
//!
//! A ramp is a list of points `(after_seconds, basis_points)` measured from the
//! rollout's start. Between two points the threshold grows linearly and continuously,
//! so clients enter one by one as their bucket falls under it, not in waves. Before the
//! first point the threshold is zero; after the last it stays at the last value.
//! Points never decrease, so a client that is in stays in as time passes.
//!
//! Inclusion is computed exactly in integers: in segment `(a0, v0) → (a1, v1)`, at
//! `e` seconds past `a0`, a client is in when `bucket · (a1 − a0) < v0 · (a1 − a0) +
//! (v1 − v0) · e`. That makes every decision, and `eligible_at`, reproducible to the
//! second on any machine.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::bucket::BasisPoints;
use crate::error::{Error, Result};
use crate::limits::MAX_RAMP_POINTS;

/// One point of a [`Ramp`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RampPoint {
    /// Seconds after the rollout's start.
    pub after_seconds: u64,
    /// The share reached at that moment.
    pub basis_points: BasisPoints,
}

/// A share of the fleet as a function of time since the rollout started.
///
/// Parses from `1%@0h,5%@4h,25%@1d,100%@3d`, or from a duration such as `7d`, which
/// is shorthand for a linear ramp from 0 % now to 100 % after that long.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<RampPoint>", into = "Vec<RampPoint>")]
pub struct Ramp(Vec<RampPoint>);

impl Ramp {
    /// A ramp through `points`, which must be non-empty, at most
    /// [`MAX_RAMP_POINTS`], at strictly increasing times and with shares that never
    /// decrease.
    pub fn new(points: Vec<RampPoint>) -> Result<Self> {
        let invalid = |problem: &str| Error::Invalid {
            document: "ramp",
            problem: problem.into(),
        };
        if points.is_empty() {
            return Err(invalid("a ramp needs at least one point"));
        }
        if points.len() > MAX_RAMP_POINTS {
            return Err(invalid(&format!(
                "a ramp of {} points has more than the {MAX_RAMP_POINTS} allowed",
                points.len()
            )));
        }
        for pair in points.windows(2) {
            if pair[1].after_seconds <= pair[0].after_seconds {
                return Err(invalid("ramp points must be in increasing order of time"));
            }
            if pair[1].basis_points < pair[0].basis_points {
                return Err(invalid(
                    "a ramp never decreases; lower the rollout with `wavecast rollout` instead",
                ));
            }
        }
        Ok(Self(points))
    }

    /// A linear ramp from 0 % at the start to 100 % after `seconds`.
    pub fn linear(seconds: u64) -> Result<Self> {
        Self::new(vec![
            RampPoint {
                after_seconds: 0,
                basis_points: BasisPoints::new(0).expect("0 is a valid share"),
            },
            RampPoint {
                after_seconds: seconds,
                basis_points: BasisPoints::ALL,
            },
        ])
    }

    /// The points.
    pub fn points(&self) -> &[RampPoint] {
        &self.0
    }

    /// The share the ramp ends at.
    pub fn final_share(&self) -> BasisPoints {
        self.0[self.0.len() - 1].basis_points
    }

    /// Whether a client with `bucket` is in, `elapsed` seconds after the start
    /// (negative before it).
    pub fn admits(&self, bucket: u16, elapsed: i64) -> bool {
        let (scaled, span) = self.scaled_threshold(elapsed);
        i128::from(bucket) * span < scaled
    }

    /// The threshold `elapsed` seconds after the start, rounded down to a basis point.
    pub fn threshold_at(&self, elapsed: i64) -> BasisPoints {
        let (scaled, span) = self.scaled_threshold(elapsed);
        u16::try_from(scaled / span)
            .ok()
            .and_then(BasisPoints::new)
            .unwrap_or(BasisPoints::ALL)
    }

    /// The exact threshold at `elapsed` as a fraction `scaled / span` of basis points,
    /// so that inclusion is decided in integers: in segment `(a0, v0) → (a1, v1)`,
    /// `e` seconds past `a0`, it is `(v0 · (a1 − a0) + (v1 − v0) · e) / (a1 − a0)`.
    fn scaled_threshold(&self, elapsed: i64) -> (i128, i128) {
        match self.segment(elapsed) {
            Segment::Before => (0, 1),
            Segment::After(value) => (i128::from(value), 1),
            Segment::Within {
                start,
                end,
                from,
                to,
                into,
            } => {
                let span = i128::from(end - start);
                (
                    i128::from(from) * span + i128::from(to - from) * i128::from(into),
                    span,
                )
            }
        }
    }

    /// The first second, counted from the start, at which `bucket` is in, or `None`
    /// when the ramp never reaches it.
    pub fn admitted_after(&self, bucket: u16) -> Option<u64> {
        let bucket = i128::from(bucket);
        let first = self.0[0];
        if bucket < i128::from(first.basis_points.get()) {
            return Some(first.after_seconds);
        }
        for pair in self.0.windows(2) {
            let (a0, a1) = (
                i128::from(pair[0].after_seconds),
                i128::from(pair[1].after_seconds),
            );
            let (v0, v1) = (
                i128::from(pair[0].basis_points.get()),
                i128::from(pair[1].basis_points.get()),
            );
            if v1 <= bucket {
                continue;
            }
            // The least whole e with (v1 − v0)·e > (bucket − v0)·(a1 − a0); v0 ≤ bucket < v1 here.
            let into = (bucket - v0) * (a1 - a0) / (v1 - v0) + 1;
            let second = if into < a1 - a0 { a0 + into } else { a1 };
            return u64::try_from(second).ok();
        }
        None
    }

    fn segment(&self, elapsed: i64) -> Segment {
        let first = self.0[0];
        if elapsed < 0 || (elapsed as u64) < first.after_seconds {
            return Segment::Before;
        }
        let elapsed = elapsed as u64;
        for pair in self.0.windows(2) {
            if elapsed < pair[1].after_seconds {
                return Segment::Within {
                    start: pair[0].after_seconds,
                    end: pair[1].after_seconds,
                    from: pair[0].basis_points.get(),
                    to: pair[1].basis_points.get(),
                    into: elapsed - pair[0].after_seconds,
                };
            }
        }
        Segment::After(self.final_share().get())
    }
}

/// Where a moment falls on a ramp.
enum Segment {
    Before,
    Within {
        start: u64,
        end: u64,
        from: u16,
        to: u16,
        into: u64,
    },
    After(u16),
}

impl TryFrom<Vec<RampPoint>> for Ramp {
    type Error = Error;

    fn try_from(points: Vec<RampPoint>) -> Result<Self> {
        Self::new(points)
    }
}

impl From<Ramp> for Vec<RampPoint> {
    fn from(ramp: Ramp) -> Self {
        ramp.0
    }
}

impl FromStr for Ramp {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        let text = text.trim();
        if !text.contains('@') {
            return Self::linear(parse_duration(text)?);
        }
        let points = text
            .split(',')
            .map(|point| {
                let (share, at) = point
                    .split_once('@')
                    .ok_or_else(|| Error::InvalidRamp(text.to_owned()))?;
                Ok(RampPoint {
                    after_seconds: parse_duration(at)?,
                    basis_points: share.parse()?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Self::new(points)
    }
}

impl fmt::Display for Ramp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, point) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(
                f,
                "{}@{}",
                point.basis_points,
                format_duration(point.after_seconds)
            )?;
        }
        Ok(())
    }
}

/// Parses a duration: a whole number and a unit, `s`, `m`, `h`, `d` or `w` (`90m`,
/// `4h`, `3d`). `0` alone is also accepted.
pub fn parse_duration(text: &str) -> Result<u64> {
    let text = text.trim();
    let invalid = || Error::InvalidDuration(text.to_owned());
    if text == "0" {
        return Ok(0);
    }
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(invalid)?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| invalid())?;
    let unit_seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(invalid()),
    };
    number.checked_mul(unit_seconds).ok_or_else(invalid)
}

/// Formats seconds in the largest unit that divides them exactly (`4h`, `1d`, `90s`).
pub fn format_duration(seconds: u64) -> String {
    for (unit, size) in [("w", 604_800), ("d", 86_400), ("h", 3600), ("m", 60)] {
        if seconds > 0 && seconds.is_multiple_of(size) {
            return format!("{}{unit}", seconds / size);
        }
    }
    format!("{seconds}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(text: &str) -> Ramp {
        text.parse().unwrap()
    }

    #[test]
    fn ramps_parse_and_display() {
        let parsed = ramp("1%@0h,5%@4h,25%@1d,100%@3d");
        assert_eq!(parsed.points().len(), 4);
        assert_eq!(
            parsed.points()[1],
            RampPoint {
                after_seconds: 14_400,
                basis_points: "5%".parse().unwrap()
            }
        );
        assert_eq!(parsed.to_string(), "1%@0s,5%@4h,25%@1d,100%@3d");
        assert_eq!(ramp("7d"), Ramp::linear(7 * 86_400).unwrap());
        for bad in [
            "",
            "7",
            "7y",
            "5%@4h,1%@5h",
            "5%@4h,6%@4h",
            "5%",
            "200%@1h",
            "x@1h",
        ] {
            assert!(bad.parse::<Ramp>().is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn a_ramp_has_at_most_the_allowed_points() {
        let points = |count: u64| {
            (0..count)
                .map(|n| RampPoint {
                    after_seconds: n * 60,
                    basis_points: BasisPoints::ALL,
                })
                .collect::<Vec<_>>()
        };
        Ramp::new(points(MAX_RAMP_POINTS as u64)).unwrap();
        let error = Ramp::new(points(MAX_RAMP_POINTS as u64 + 1)).unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid ramp: a ramp of 65 points has more than the 64 allowed"
        );
    }

    #[test]
    fn the_threshold_grows_linearly_between_points() {
        let ramp = ramp("1%@0h,5%@4h,100%@3d");
        assert_eq!(ramp.threshold_at(-1).get(), 0);
        assert_eq!(ramp.threshold_at(0).get(), 100);
        assert_eq!(ramp.threshold_at(7200).get(), 300);
        assert_eq!(ramp.threshold_at(14_400).get(), 500);
        assert_eq!(ramp.threshold_at(3 * 86_400).get(), 10_000);
        assert_eq!(ramp.threshold_at(30 * 86_400).get(), 10_000);
    }

    #[test]
    fn admitted_after_is_the_exact_first_second() {
        let ramps = [
            ramp("1%@0h,5%@4h,25%@1d,100%@3d"),
            ramp("7d"),
            ramp("10%@2h"),
            ramp("0%@0s,50%@10s"),
        ];
        for ramp in &ramps {
            for bucket in (0..10_000).step_by(37) {
                match ramp.admitted_after(bucket) {
                    Some(second) => {
                        let second = second as i64;
                        assert!(ramp.admits(bucket, second), "{ramp} {bucket} at {second}");
                        assert!(
                            second == 0 || !ramp.admits(bucket, second - 1),
                            "{ramp} {bucket} before {second}"
                        );
                    }
                    None => assert!(!ramp.admits(bucket, i64::MAX / 2), "{ramp} {bucket}"),
                }
            }
        }
        assert_eq!(ramp("50%@1h").admitted_after(6000), None);
    }

    #[test]
    fn durations_parse_and_format() {
        assert_eq!(parse_duration("90m").unwrap(), 5400);
        assert_eq!(parse_duration("0").unwrap(), 0);
        assert_eq!(parse_duration("2w").unwrap(), 1_209_600);
        assert!(parse_duration("-1h").is_err() && parse_duration("1.5h").is_err());
        assert_eq!(format_duration(86_400), "1d");
        assert_eq!(format_duration(5400), "90m");
    }
}
