//! The timestamps of access logs, to seconds since the Unix epoch, by hand: a log has
//! one per line, and a general date parser would cost more than the rest of the line.

use super::request::LineError;

/// Days from 1970-01-01 to the proleptic Gregorian date `year-month-day` (Howard
/// Hinnant's `days_from_civil`).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// `Jan` → 1 … `Dec` → 12.
pub fn month_number(name: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    MONTHS
        .iter()
        .position(|month| *month == name)
        .and_then(|index| u32::try_from(index + 1).ok())
}

fn number(text: &str, what: &str) -> Result<u32, LineError> {
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(LineError(format!(
            "the time's {what} `{text}` is not a number"
        )));
    }
    text.parse()
        .map_err(|_| LineError(format!("the time's {what} `{text}` is too large")))
}

/// Seconds since the epoch of a calendar date and time of day, checked.
pub(crate) fn seconds(
    (year, month, day): (i64, u32, u32),
    (hour, minute, second): (u32, u32, u32),
) -> Result<i64, LineError> {
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return Err(LineError("the time is not a valid date and time".into()));
    }
    Ok(days_from_civil(year, month, day) * 86_400
        + i64::from(hour) * 3600
        + i64::from(minute) * 60
        + i64::from(second))
}

/// `05/Dec/2026:01:19:00 +0100` (nginx, Apache, S3) → seconds since the epoch, UTC.
pub(crate) fn parse_common_log_time(text: &str) -> Result<i64, LineError> {
    let bad = || {
        LineError(format!(
            "`{text}` is not a time like 05/Dec/2026:01:19:00 +0000"
        ))
    };
    let (stamp, zone) = text.split_once(' ').ok_or_else(bad)?;
    let mut parts = stamp.splitn(4, ':');
    let date = parts.next().ok_or_else(bad)?;
    let (hour, minute, second) = (
        parts.next().ok_or_else(bad)?,
        parts.next().ok_or_else(bad)?,
        parts.next().ok_or_else(bad)?,
    );
    let mut date_parts = date.split('/');
    let (day, month, year) = (
        date_parts.next().ok_or_else(bad)?,
        date_parts.next().ok_or_else(bad)?,
        date_parts.next().ok_or_else(bad)?,
    );
    let month = month_number(month).ok_or_else(bad)?;
    let local = seconds(
        (i64::from(number(year, "year")?), month, number(day, "day")?),
        (
            number(hour, "hour")?,
            number(minute, "minute")?,
            number(second, "second")?,
        ),
    )?;
    let zone = zone.as_bytes();
    if zone.len() != 5 || !matches!(zone[0], b'+' | b'-') {
        return Err(bad());
    }
    let zone_text = std::str::from_utf8(&zone[1..]).map_err(|_| bad())?;
    let digits = number(zone_text, "offset")?;
    let offset = i64::from(digits / 100) * 3600 + i64::from(digits % 100) * 60;
    Ok(if zone[0] == b'+' {
        local - offset
    } else {
        local + offset
    })
}

/// `2026-12-05` and `01:19:00` (CloudFront, UTC) → seconds since the epoch.
pub(crate) fn parse_date_and_time(date: &str, time: &str) -> Result<i64, LineError> {
    let bad = || {
        LineError(format!(
            "`{date} {time}` is not a time like 2026-12-05 01:19:00"
        ))
    };
    let mut date_parts = date.split('-');
    let mut time_parts = time.split(':');
    let next = |parts: &mut std::str::Split<'_, char>, what| {
        parts
            .next()
            .ok_or_else(bad)
            .and_then(|part| number(part, what))
    };
    let year = next(&mut date_parts, "year")?;
    let month = next(&mut date_parts, "month")?;
    let day = next(&mut date_parts, "day")?;
    let hour = next(&mut time_parts, "hour")?;
    let minute = next(&mut time_parts, "minute")?;
    let second = next(&mut time_parts, "second")?;
    seconds((i64::from(year), month, day), (hour, minute, second))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jiff_seconds(text: &str) -> i64 {
        text.parse::<jiff::Timestamp>().unwrap().as_second()
    }

    #[test]
    fn civil_days_agree_with_jiff() {
        for (date, (year, month, day)) in [
            ("1970-01-01T00:00:00Z", (1970, 1, 1)),
            ("2000-02-29T00:00:00Z", (2000, 2, 29)),
            ("2026-12-05T00:00:00Z", (2026, 12, 5)),
            ("1969-12-31T00:00:00Z", (1969, 12, 31)),
            ("2100-03-01T00:00:00Z", (2100, 3, 1)),
        ] {
            assert_eq!(
                days_from_civil(year, month, day) * 86_400,
                jiff_seconds(date),
                "{date}"
            );
        }
    }

    #[test]
    fn common_log_times_apply_their_offset() {
        assert_eq!(
            parse_common_log_time("05/Dec/2026:01:19:07 +0000").unwrap(),
            jiff_seconds("2026-12-05T01:19:07Z")
        );
        assert_eq!(
            parse_common_log_time("05/Dec/2026:01:19:07 +0130").unwrap(),
            jiff_seconds("2026-12-04T23:49:07Z")
        );
        assert_eq!(
            parse_common_log_time("05/Dec/2026:01:19:07 -0500").unwrap(),
            jiff_seconds("2026-12-05T06:19:07Z")
        );
        for bad in [
            "",
            "05/Dec/2026:01:19:07",
            "05/Dez/2026:01:19:07 +0000",
            "5/Dec/2026:25:19:07 +0000",
            "05/Dec/2026:01:19 +0000",
            "05/Dec/2026:01:19:07 0000",
        ] {
            assert!(parse_common_log_time(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn cloudfront_times_are_utc() {
        assert_eq!(
            parse_date_and_time("2026-12-05", "01:19:07").unwrap(),
            jiff_seconds("2026-12-05T01:19:07Z")
        );
        assert!(parse_date_and_time("2026-13-05", "01:19:07").is_err());
        assert!(parse_date_and_time("2026-12-05", "1:19").is_err());
    }
}
