//! Text for people and for configuration files: byte counts and durations, formatted
//! and parsed the same way everywhere (`4KiB/s`, `1h`, `324.0 MiB`). The bottom of
//! the crate: nothing here knows about updates.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// Parses a duration such as `6h`, `30m`, `45s`, `500ms` or `1d`.
///
/// # Errors
///
/// A message saying what was expected.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration such as 6h, 30m, 45s or 500ms"))?;
    let seconds = match unit {
        "ms" => return Ok(Duration::from_millis(number)),
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => {
            return Err(format!(
                "`{text}` has no unit: use ms, s, m, h or d (e.g. 6h)"
            ));
        }
    };
    Ok(Duration::from_secs(number.saturating_mul(seconds)))
}

/// Formats a duration as [`parse_duration`] reads it, in the largest unit that keeps
/// the number whole: `1h`, `90s`, `1500ms`.
pub fn format_duration(duration: Duration) -> String {
    if duration.subsec_nanos() != 0 {
        return format!("{}ms", duration.as_millis());
    }
    let seconds = duration.as_secs();
    [("d", 86_400), ("h", 3600), ("m", 60)]
        .iter()
        .find(|(_, scale)| seconds != 0 && seconds.is_multiple_of(*scale))
        .map_or_else(
            || format!("{seconds}s"),
            |(unit, scale)| format!("{}{unit}", seconds / scale),
        )
}

/// Durations in the configuration, as text such as `10s` or `1h`.
pub(crate) mod duration_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(
        duration: &Duration,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&super::format_duration(*duration))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Duration, D::Error> {
        let text = String::deserialize(deserializer)?;
        super::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

/// Reads a duration that must be longer than zero (a timeout in `config.json`).
pub(crate) fn positive_duration<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    match parse_duration(&text).map_err(serde::de::Error::custom)? {
        Duration::ZERO => Err(serde::de::Error::custom("a timeout must be longer than 0s")),
        timeout => Ok(timeout),
    }
}

pub use wavecast_site::units::format_bytes;

const SPEED_UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];

/// Parses a speed such as `4KiB/s`, `1MiB/s` or `512B/s` into bytes per second (the
/// `/s` and the `B` of plain bytes may be left out).
///
/// # Errors
///
/// A message saying what was expected.
pub fn parse_speed(text: &str) -> std::result::Result<u64, String> {
    let trimmed = text.trim();
    let amount = trimmed.strip_suffix("/s").unwrap_or(trimmed);
    let split = amount
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(amount.len());
    let (number, unit) = amount.split_at(split);
    let invalid = || format!("`{text}` is not a speed such as 4KiB/s, 1MiB/s or 512B/s");
    let number: u64 = number.parse().map_err(|_| invalid())?;
    let scale = match unit {
        "" | "B" => 1,
        _ => SPEED_UNITS
            .iter()
            .find(|(name, _)| *name == unit)
            .map(|(_, scale)| *scale)
            .ok_or_else(invalid)?,
    };
    number.checked_mul(scale).ok_or_else(invalid)
}

/// Formats bytes per second as [`parse_speed`] reads them, in the largest unit that
/// keeps the number whole: `4KiB/s`, `1536B/s`.
pub fn format_speed(speed: u64) -> String {
    SPEED_UNITS
        .iter()
        .find(|(_, scale)| speed != 0 && speed.is_multiple_of(*scale))
        .map_or_else(
            || format!("{speed}B/s"),
            |(name, scale)| format!("{}{name}/s", speed / scale),
        )
}

/// Speeds in the configuration, as text such as `4KiB/s`.
pub(crate) mod speed_text {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(speed: &u64, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&super::format_speed(*speed))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
        let text = String::deserialize(deserializer)?;
        super::parse_speed(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speeds_and_durations_parse_and_format_back() {
        assert_eq!(parse_speed("4KiB/s"), Ok(4096));
        assert_eq!(parse_speed("4KiB"), Ok(4096));
        assert_eq!(parse_speed("1MiB/s"), Ok(1 << 20));
        assert_eq!(parse_speed("512B/s"), Ok(512));
        assert_eq!(parse_speed("0"), Ok(0));
        for bad in ["fast", "4kb/s", "KiB/s", "-1B/s", "99999999999GiB/s"] {
            assert!(parse_speed(bad).is_err(), "{bad}");
        }
        for speed in [0, 1, 1536, 4096, 3 << 20, 5 << 30] {
            assert_eq!(parse_speed(&format_speed(speed)), Ok(speed));
        }
        assert_eq!(format_speed(4096), "4KiB/s");
        assert_eq!(format_speed(1536), "1536B/s");
        for duration in [0, 1, 90, 3600, 86_400, 5400].map(Duration::from_secs) {
            assert_eq!(parse_duration(&format_duration(duration)), Ok(duration));
        }
        assert_eq!(format_duration(Duration::from_secs(3600)), "1h");
        assert_eq!(format_duration(Duration::from_secs(90)), "90s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
    }
}
