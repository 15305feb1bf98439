//! Version pins: a line of releases a client stays on (`config --pin 1.4`), as
//! Bottlerocket's version lock does.

use std::fmt;
use std::str::FromStr;

use semver::Version;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};

/// The releases whose version starts with these numbers: `1` is every 1.x.y, `1.4`
/// every 1.4.y, `1.4.2` that patch and its pre-releases. Written `1.4`, or `1.4.x`
/// as a person might.
///
/// Matching compares the numbers themselves, not a semver requirement, so a
/// pre-release such as `1.4.0-rc.1` is on the line `1.4` like any other 1.4.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct VersionPin {
    major: u64,
    minor: Option<u64>,
    patch: Option<u64>,
}

impl VersionPin {
    /// Whether `version` is on this line.
    pub fn matches(&self, version: &Version) -> bool {
        version.major == self.major
            && self.minor.is_none_or(|minor| version.minor == minor)
            && self.patch.is_none_or(|patch| version.patch == patch)
    }
}

impl FromStr for VersionPin {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        let invalid = |reason| Error::InvalidIdentifier {
            kind: "version pin",
            value: text.to_owned(),
            reason,
        };
        let trimmed = text
            .strip_suffix(".x")
            .or_else(|| text.strip_suffix(".*"))
            .unwrap_or(text);
        let numbers: Vec<&str> = trimmed.split('.').collect();
        if numbers.len() > 3 {
            return Err(invalid(
                "expected one to three numbers, like `1`, `1.4` or `1.4.2`",
            ));
        }
        let mut parsed = numbers.iter().map(|number| {
            let digits = !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit());
            let canonical = number.len() == 1 || !number.starts_with('0');
            if digits && canonical {
                number
                    .parse::<u64>()
                    .map_err(|_| invalid("a number is too large"))
            } else {
                Err(invalid(
                    "expected numbers without leading zeros, like `1`, `1.4` or `1.4.2`",
                ))
            }
        });
        Ok(Self {
            major: parsed.next().expect("split gives at least one part")?,
            minor: parsed.next().transpose()?,
            patch: parsed.next().transpose()?,
        })
    }
}

impl fmt::Display for VersionPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.major)?;
        if let Some(minor) = self.minor {
            write!(f, ".{minor}")?;
        }
        if let Some(patch) = self.patch {
            write!(f, ".{patch}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for VersionPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VersionPin({self})")
    }
}

impl Serialize for VersionPin {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for VersionPin {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pin(text: &str) -> VersionPin {
        text.parse().unwrap()
    }

    fn version(text: &str) -> Version {
        text.parse().unwrap()
    }

    #[test]
    fn a_pin_matches_its_line_pre_releases_included() {
        assert!(pin("1.4").matches(&version("1.4.0")));
        assert!(pin("1.4").matches(&version("1.4.9-rc.1")));
        assert!(pin("1.4.x").matches(&version("1.4.2+build.7")));
        assert!(!pin("1.4").matches(&version("1.5.0")));
        assert!(!pin("1.4").matches(&version("11.4.0")));
        assert!(pin("1").matches(&version("1.99.3")));
        assert!(!pin("1").matches(&version("2.0.0")));
        assert!(pin("1.4.2").matches(&version("1.4.2-beta")));
        assert!(!pin("1.4.2").matches(&version("1.4.3")));
    }

    #[test]
    fn pins_parse_display_and_round_trip_through_json() {
        for (text, shown) in [
            ("1", "1"),
            ("1.4", "1.4"),
            ("1.4.x", "1.4"),
            ("0.3.*", "0.3"),
            ("2.0.1", "2.0.1"),
        ] {
            assert_eq!(pin(text).to_string(), shown);
        }
        for bad in [
            "", "1.", "v1.4", "1.4.2.0", "01.4", "1.-4", "1.4-rc", "x", "1.x.2",
        ] {
            assert!(bad.parse::<VersionPin>().is_err(), "{bad:?} was accepted");
        }
        let json = serde_json::to_string(&pin("1.4")).unwrap();
        assert_eq!(json, "\"1.4\"");
        assert_eq!(
            serde_json::from_str::<VersionPin>(&json).unwrap(),
            pin("1.4")
        );
    }
}
