//! The combined log format of nginx and Apache:
//!
//! ```text
//! 203.0.113.9 - - [05/Dec/2026:01:19:07 +0000] "GET /channels/stable.json HTTP/1.1" 200 1843 "-" "wavecast-update/0.1.0"
//! ```
//!
//! Fields after the user agent (some setups append `$request_time` or a forwarded
//! address) are ignored. Quotes inside quoted fields are escaped (`\x22` by nginx,
//! `\"` by Apache), and a request line that is not `METHOD TARGET PROTOCOL` (a
//! scanner's garbage, `-`) is a request for no path, which matches nothing.

use super::request::{LineError, Request, target_path};
use super::time::parse_common_log_time;

/// Parses one combined log line.
///
/// # Errors
///
/// The first field that is missing or malformed.
pub fn parse(line: &str) -> Result<Request<'_>, LineError> {
    let mut rest = line;
    let address = word(&mut rest, "the client address")?;
    let _ident = word(&mut rest, "the identity (`-`)")?;
    let _user = word(&mut rest, "the user (`-`)")?;
    let time = bracketed(&mut rest)?;
    let request = quoted(&mut rest, "the request line")?;
    let status = word(&mut rest, "the status")?;
    let bytes = word(&mut rest, "the body size")?;
    let _referer = quoted(&mut rest, "the referer")?;
    let user_agent = quoted(&mut rest, "the user agent")?;

    let status = parse_status(status)?;
    let body_bytes = match bytes {
        "-" => 0,
        text => text
            .parse()
            .map_err(|_| LineError(format!("the body size `{text}` is not a number")))?,
    };
    let mut parts = request.split(' ');
    let (method, path) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(method), Some(target), Some(_), None) | (Some(method), Some(target), None, None) => {
            (method, target_path(target))
        }
        _ => ("", ""),
    };
    Ok(Request {
        time: parse_common_log_time(time)?,
        address,
        user_agent,
        method,
        path,
        status,
        body_bytes: Some(body_bytes),
        cut_off: false,
    })
}

/// A three-digit HTTP status.
pub(crate) fn parse_status(text: &str) -> Result<u16, LineError> {
    if text.len() == 3 && text.bytes().all(|byte| byte.is_ascii_digit()) {
        text.parse()
            .map_err(|_| LineError(format!("the status `{text}` is not a number")))
    } else {
        Err(LineError(format!(
            "the status `{text}` is not a three-digit number"
        )))
    }
}

fn missing(what: &str) -> LineError {
    LineError(format!("{what} is missing"))
}

/// The next space-separated word of `rest`, which moves past it and the spaces after.
fn word<'a>(rest: &mut &'a str, what: &str) -> Result<&'a str, LineError> {
    let text = *rest;
    if text.is_empty() {
        return Err(missing(what));
    }
    let end = memchr::memchr(b' ', text.as_bytes()).unwrap_or(text.len());
    *rest = text[end..].trim_start_matches(' ');
    Ok(&text[..end])
}

/// The `[…]` time field.
fn bracketed<'a>(rest: &mut &'a str) -> Result<&'a str, LineError> {
    let text = rest
        .strip_prefix('[')
        .ok_or_else(|| LineError("the time does not start with `[`".into()))?;
    let end = memchr::memchr(b']', text.as_bytes())
        .ok_or_else(|| LineError("the time has no closing `]`".into()))?;
    *rest = text[end + 1..].trim_start_matches(' ');
    Ok(&text[..end])
}

/// The next `"…"` field, with backslash escapes left as they are.
fn quoted<'a>(rest: &mut &'a str, what: &str) -> Result<&'a str, LineError> {
    let text = rest
        .strip_prefix('"')
        .ok_or_else(|| LineError(format!("{what} is not in double quotes")))?;
    let bytes = text.as_bytes();
    let mut index = 0;
    loop {
        let found = memchr::memchr2(b'"', b'\\', &bytes[index..])
            .ok_or_else(|| LineError(format!("{what} has no closing `\"`")))?;
        let at = index + found;
        if bytes[at] == b'\\' {
            index = at + 2;
            if index > bytes.len() {
                return Err(LineError(format!("{what} has no closing `\"`")));
            }
            continue;
        }
        *rest = text[at + 1..].trim_start_matches(' ');
        return Ok(&text[..at]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_nginx_line_reads_whole() {
        let line = r#"203.0.113.9 - - [05/Dec/2026:01:19:07 +0000] "GET /site/channels/stable.json?t=1 HTTP/1.1" 304 0 "-" "wavecast-update/0.1.0 (x86_64)""#;
        let request = parse(line).unwrap();
        assert_eq!(request.address, "203.0.113.9");
        assert_eq!(request.method, "GET");
        assert_eq!(request.path, "/site/channels/stable.json");
        assert_eq!(request.status, 304);
        assert_eq!(request.body_bytes, Some(0));
        assert_eq!(request.user_agent, "wavecast-update/0.1.0 (x86_64)");
        assert_eq!(
            request.time,
            "2026-12-05T01:19:07Z"
                .parse::<jiff::Timestamp>()
                .unwrap()
                .as_second()
        );
        assert!(!request.cut_off);
    }

    #[test]
    fn apache_dashes_escapes_and_extra_fields_are_read() {
        let line = r#"::1 - frank [05/Dec/2026:01:19:07 -0700] "GET /blobs/a.pack HTTP/1.0" 206 - "http://x/\"y\"" "agent \"quoted\" \x22" 0.004 "10.0.0.1""#;
        let request = parse(line).unwrap();
        assert_eq!(request.address, "::1");
        assert_eq!(request.body_bytes, Some(0));
        assert_eq!(request.status, 206);
        assert_eq!(request.user_agent, r#"agent \"quoted\" \x22"#);
    }

    #[test]
    fn a_garbage_request_line_is_a_request_for_nothing() {
        let line = r#"198.51.100.7 - - [05/Dec/2026:01:19:07 +0000] "\x16\x03\x01\x02\x00\x01" 400 157 "-" "-""#;
        let request = parse(line).unwrap();
        assert_eq!(
            (request.method, request.path, request.status),
            ("", "", 400)
        );
    }

    #[test]
    fn broken_lines_say_what_is_wrong() {
        for (line, problem) in [
            ("", "the client address is missing"),
            (
                "1.2.3.4 - - 05/Dec/2026",
                "the time does not start with `[`",
            ),
            (
                "1.2.3.4 - - [05/Dec/2026:01:19:07 +0000] GET / 200 1",
                "the request line is not in double quotes",
            ),
            (
                r#"1.2.3.4 - - [05/Dec/2026:01:19:07 +0000] "GET / HTTP/1.1" OK 1 "-" "-""#,
                "the status `OK` is not a three-digit number",
            ),
            (
                r#"1.2.3.4 - - [05/Dec/2026:01:19:07 +0000] "GET / HTTP/1.1" 200 12k "-" "-""#,
                "the body size `12k` is not a number",
            ),
            (
                r#"1.2.3.4 - - [05/Dec/2026:01:19:07 +0000] "GET / HTTP/1.1" 200 1 "-" "cut"#,
                "the user agent has no closing `\"`",
            ),
            (
                r#"1.2.3.4 - - [05/Dec/2026:01:19:07 +0000] "GET / HTTP/1.1" 200 1"#,
                "the referer is not in double quotes",
            ),
        ] {
            assert_eq!(parse(line).unwrap_err().0, problem, "{line}");
        }
    }
}
