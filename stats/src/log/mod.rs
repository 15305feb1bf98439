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
mod request;
pub mod s3;
mod time;

use std::fmt;
use std::str::FromStr;

pub use request::{LineError, Parsed, Request};
pub use time::{days_from_civil, month_number};

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
}
