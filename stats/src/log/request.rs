//! What every format's parser gives: one [`Request`] borrowed from its line, or why
//! the line is not one. Below the parsers, which share it.

use std::fmt;

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
