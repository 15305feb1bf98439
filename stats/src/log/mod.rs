//! Access log lines, in each host's format, read into one [`Request`]. Pure: a
//! parser takes one line's text and returns what it says, or why it cannot.
//!
//! | Format | Who writes it | Body bytes | Parser |
//! |---|---|---|---|
//! | [`LogFormat::Combined`] | nginx (`combined`), Apache (`%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i"`) | `$body_bytes_sent` / `%b` | [`combined`] |
//! | [`LogFormat::S3`] | S3 server access logging | `Bytes Sent` | [`s3`] |
//! | [`LogFormat::CloudFront`] | CloudFront standard logs (tab-separated, `#Fields:` header) | not logged: `sc-bytes` counts headers too | [`cloudfront`] |

pub mod cloudfront;
pub mod combined;
pub mod s3;
mod time;

use std::fmt;
use std::str::FromStr;

pub use time::{days_from_civil, month_number};

/// One request as an access log records it, borrowed from the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    /// When the host logged it, in seconds since the Unix epoch (UTC).
    pub time: i64,
    /// The client's address as logged. Only ever hashed, never kept.
    pub address: &'a str,
    /// The `User-Agent` header as logged. Only ever hashed, never kept.
    pub user_agent: &'a str,
    /// `GET`, `HEAD`…
    pub method: &'a str,
    /// The path requested, without the query string.
    pub path: &'a str,
    /// The response's status; `0` when the client went away before one (CloudFront's
    /// `000`).
    pub status: u16,
    /// The body bytes sent, when the format logs them.
    pub body_bytes: Option<u64>,
    /// Whether the host says the response did not reach the client whole (CloudFront's
    /// `ClientCommError`, status `000`).
    pub cut_off: bool,
}

/// Why a line is not a log line of the format: said to the user with the line's
/// number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError(pub String);

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a parser makes of one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// A request.
    Request(Request<'a>),
    /// A line that is not a request but belongs in the log (a comment, a header).
    Skip,
}

/// The access log formats [`crate::Tally`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogFormat {
    /// The combined log format of nginx and Apache.
    Combined,
    /// S3 server access logs.
    S3,
    /// CloudFront standard (legacy) access logs.
    CloudFront,
}

impl LogFormat {
    /// Every format, for help texts.
    pub const ALL: [Self; 3] = [Self::Combined, Self::S3, Self::CloudFront];

    /// The name `--format` takes.
    pub fn name(self) -> &'static str {
        match self {
            Self::Combined => "combined",
            Self::S3 => "s3",
            Self::CloudFront => "cloudfront",
        }
    }

    /// The format a log starting with `first_line` is in: CloudFront logs start with
    /// `#Version:`, S3 lines with the bucket owner's 64 hex digits and the bucket's
    /// name, anything else is taken for combined (whose parser then says what is
    /// wrong).
    pub fn detect(first_line: &str) -> Self {
        if first_line.starts_with("#Version:") || first_line.starts_with("#Fields:") {
            return Self::CloudFront;
        }
        let owner = first_line.split(' ').next().unwrap_or("");
        if owner.len() == 64
            && owner.bytes().all(|byte| byte.is_ascii_hexdigit())
            && first_line.contains(" [")
        {
            return Self::S3;
        }
        Self::Combined
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.to_ascii_lowercase().as_str() {
            "combined" | "nginx" | "apache" => Ok(Self::Combined),
            "s3" => Ok(Self::S3),
            "cloudfront" => Ok(Self::CloudFront),
            _ => Err(format!(
                "`{text}` is not a log format: use combined (nginx, apache), s3 or cloudfront"
            )),
        }
    }
}

/// Reads the lines of one log in one format. CloudFront's parser keeps the column
/// order its `#Fields:` header gave; the others keep nothing.
#[derive(Debug, Clone)]
pub struct LineParser {
    format: LogFormat,
    cloudfront: cloudfront::Columns,
}

impl LineParser {
    /// A parser for a log in `format`.
    pub fn new(format: LogFormat) -> Self {
        Self {
            format,
            cloudfront: cloudfront::Columns::default(),
        }
    }

    /// The format it reads.
    pub fn format(&self) -> LogFormat {
        self.format
    }

    /// Parses one line (without its line end).
    ///
    /// # Errors
    ///
    /// What does not fit the format.
    pub fn parse<'a>(&mut self, line: &'a str) -> Result<Parsed<'a>, LineError> {
        match self.format {
            LogFormat::Combined => combined::parse(line).map(Parsed::Request),
            LogFormat::S3 => s3::parse(line).map(Parsed::Request),
            LogFormat::CloudFront => self.cloudfront.parse(line),
        }
    }
}

/// The path of a request target (`/a/b?x=1` → `/a/b`, `http://host/a` → `/a`).
pub(crate) fn target_path(target: &str) -> &str {
    let target = match target.find("://") {
        Some(scheme_end) => {
            let rest = &target[scheme_end + 3..];
            rest.find('/').map_or("/", |slash| &rest[slash..])
        }
        None => target,
    };
    target.split(['?', '#']).next().unwrap_or(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_named_and_detected() {
        for format in LogFormat::ALL {
            assert_eq!(format.name().parse::<LogFormat>(), Ok(format));
        }
        assert_eq!("nginx".parse::<LogFormat>(), Ok(LogFormat::Combined));
        assert_eq!("Apache".parse::<LogFormat>(), Ok(LogFormat::Combined));
        assert!("w3c".parse::<LogFormat>().is_err());
        assert_eq!(LogFormat::detect("#Version: 1.0"), LogFormat::CloudFront);
        assert_eq!(
            LogFormat::detect(&format!(
                "{} bucket [06/Feb/2019:00:00:38 +0000] …",
                "a".repeat(64)
            )),
            LogFormat::S3
        );
        assert_eq!(
            LogFormat::detect(
                "127.0.0.1 - - [05/Dec/2026:01:19:00 +0000] \"GET / HTTP/1.1\" 200 1 \"-\" \"x\""
            ),
            LogFormat::Combined
        );
    }

    #[test]
    fn target_paths_lose_query_and_host() {
        assert_eq!(
            target_path("/channels/stable.json?x=1"),
            "/channels/stable.json"
        );
        assert_eq!(
            target_path("http://cdn.example/blobs/a.pack"),
            "/blobs/a.pack"
        );
        assert_eq!(target_path("http://cdn.example"), "/");
        assert_eq!(target_path("/a#b"), "/a");
    }
}
