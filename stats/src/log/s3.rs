//! S3 server access logs, one request per line:
//!
//! ```text
//! OWNER BUCKET [06/Feb/2019:00:00:38 +0000] 192.0.2.3 REQUESTER REQUEST-ID REST.GET.OBJECT KEY "GET /BUCKET/KEY HTTP/1.1" 200 - BYTES-SENT OBJECT-SIZE TOTAL-TIME TURN-AROUND "REFERER" "USER-AGENT" VERSION …
//! ```
//!
//! The path is the object key (the site's path under the bucket's prefix); the
//! fields after the user agent, which AWS keeps adding to, are ignored.

use super::combined::parse_status;
use super::request::{LineError, Request, target_path};
use super::time::parse_common_log_time;

/// Parses one S3 server access log line.
///
/// # Errors
///
/// The first field that is missing or malformed.
pub fn parse(line: &str) -> Result<Request<'_>, LineError> {
    let mut fields = Fields { rest: line };
    let _owner = fields.word("the bucket owner")?;
    let _bucket = fields.word("the bucket")?;
    let time = fields.bracketed()?;
    let address = fields.word("the remote IP")?;
    let _requester = fields.word("the requester")?;
    let _request_id = fields.word("the request ID")?;
    let operation = fields.word("the operation")?;
    let key = fields.word("the key")?;
    let request_uri = fields.quoted_or_dash("the request URI")?;
    let status = fields.word("the HTTP status")?;
    let _error_code = fields.word("the error code")?;
    let bytes_sent = fields.word("the bytes sent")?;
    let _object_size = fields.word("the object size")?;
    let _total_time = fields.word("the total time")?;
    let _turn_around = fields.word("the turn-around time")?;
    let _referer = fields.quoted_or_dash("the referer")?;
    let user_agent = fields.quoted_or_dash("the user agent")?;

    let method = operation
        .strip_prefix("REST.")
        .and_then(|rest| rest.split('.').next())
        .unwrap_or("");
    let path = if key == "-" {
        request_uri.split(' ').nth(1).map_or("", target_path)
    } else {
        key
    };
    let body_bytes = match bytes_sent {
        "-" => 0,
        text => text
            .parse()
            .map_err(|_| LineError(format!("the bytes sent `{text}` is not a number")))?,
    };
    Ok(Request {
        time: parse_common_log_time(time)?,
        address,
        user_agent,
        method,
        path,
        status: if status == "-" {
            0
        } else {
            parse_status(status)?
        },
        body_bytes: Some(body_bytes),
        cut_off: false,
    })
}

struct Fields<'a> {
    rest: &'a str,
}

impl<'a> Fields<'a> {
    fn word(&mut self, what: &str) -> Result<&'a str, LineError> {
        if self.rest.is_empty() {
            return Err(LineError(format!("{what} is missing")));
        }
        let end = memchr::memchr(b' ', self.rest.as_bytes()).unwrap_or(self.rest.len());
        let word = &self.rest[..end];
        self.rest = self.rest[end..].trim_start_matches(' ');
        Ok(word)
    }

    fn bracketed(&mut self) -> Result<&'a str, LineError> {
        let text = self
            .rest
            .strip_prefix('[')
            .ok_or_else(|| LineError("the time does not start with `[`".into()))?;
        let end = memchr::memchr(b']', text.as_bytes())
            .ok_or_else(|| LineError("the time has no closing `]`".into()))?;
        self.rest = text[end + 1..].trim_start_matches(' ');
        Ok(&text[..end])
    }

    /// A `"…"` field (S3 does not escape quotes inside: the field ends at `" `), or `-`.
    fn quoted_or_dash(&mut self, what: &str) -> Result<&'a str, LineError> {
        if let Some(after) = self.rest.strip_prefix('-') {
            self.rest = after.trim_start_matches(' ');
            return Ok("-");
        }
        let text = self
            .rest
            .strip_prefix('"')
            .ok_or_else(|| LineError(format!("{what} is not in double quotes")))?;
        let end = memchr::memmem::find(text.as_bytes(), b"\" ")
            .or_else(|| text.ends_with('"').then(|| text.len() - 1))
            .ok_or_else(|| LineError(format!("{what} has no closing `\"`")))?;
        self.rest = text[end + 1..].trim_start_matches(' ');
        Ok(&text[..end])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWNER: &str = "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be";

    #[test]
    fn an_object_get_reads_whole() {
        let line = format!(
            r#"{OWNER} updates [06/Feb/2019:00:00:38 +0000] 192.0.2.3 - 3E57427F3EXAMPLE REST.GET.OBJECT prefix/blobs/ab.pack "GET /updates/prefix/blobs/ab.pack HTTP/1.1" 200 - 1024 4096 70 10 "-" "wavecast-update/0.1.0" - s9lzHYrFp7= SigV4 ECDHE-RSA-AES128-GCM-SHA256 AuthHeader updates.s3.us-west-1.amazonaws.com TLSv1.2 - -"#
        );
        let request = parse(&line).unwrap();
        assert_eq!(request.address, "192.0.2.3");
        assert_eq!(request.method, "GET");
        assert_eq!(request.path, "prefix/blobs/ab.pack");
        assert_eq!(request.status, 200);
        assert_eq!(request.body_bytes, Some(1024));
        assert_eq!(request.user_agent, "wavecast-update/0.1.0");
        assert_eq!(
            request.time,
            "2019-02-06T00:00:38Z"
                .parse::<jiff::Timestamp>()
                .unwrap()
                .as_second()
        );
    }

    #[test]
    fn a_request_without_key_takes_the_uri_and_dashes_are_zero() {
        let line = format!(
            r#"{OWNER} updates [06/Feb/2019:00:00:38 +0000] 192.0.2.3 - 3E57 REST.GET.BUCKET - "GET /updates?list-type=2 HTTP/1.1" 403 AccessDenied - - 7 - "-" "curl/8" -"#
        );
        let request = parse(&line).unwrap();
        assert_eq!(
            (request.path, request.status, request.body_bytes),
            ("/updates", 403, Some(0))
        );
    }

    #[test]
    fn broken_lines_say_what_is_wrong() {
        assert_eq!(
            parse(&format!("{OWNER} updates 06/Feb/2019"))
                .unwrap_err()
                .0,
            "the time does not start with `[`"
        );
        assert_eq!(
            parse(&format!(
                r#"{OWNER} updates [06/Feb/2019:00:00:38 +0000] 192.0.2.3 - 3E57 REST.GET.OBJECT k "GET /k HTTP/1.1" 200 - many"#
            ))
            .unwrap_err()
            .0,
            "the object size is missing"
        );
    }
}
