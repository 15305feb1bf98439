//! The transport the client uses unless told otherwise.

use std::fmt::{self, Debug};
use std::io::Read;

use super::file::FileTransport;
use super::http::HttpTransport;
use super::protocol::{Conditional, RangeStream, Transport, TransportError, Validators};

/// The transport the client uses by default: [`HttpTransport`] for `http://` and
/// `https://` URLs, [`FileTransport`] for `file://` URLs.
#[derive(Default)]
pub struct DefaultTransport {
    http: HttpTransport,
    file: FileTransport,
}

impl Debug for DefaultTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DefaultTransport").finish_non_exhaustive()
    }
}

impl DefaultTransport {
    /// A transport for HTTP(S) and local files.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Transport for DefaultTransport {
    fn fetch(&self, url: &str) -> Result<Box<dyn Read + Send>, TransportError> {
        if url.starts_with("file://") {
            self.file.fetch(url)
        } else {
            self.http.fetch(url)
        }
    }

    fn fetch_from(&self, url: &str, offset: u64) -> Result<RangeStream, TransportError> {
        if url.starts_with("file://") {
            self.file.fetch_from(url, offset)
        } else {
            self.http.fetch_from(url, offset)
        }
    }

    fn fetch_span(&self, url: &str, start: u64, end: u64) -> Result<RangeStream, TransportError> {
        if url.starts_with("file://") {
            self.file.fetch_span(url, start, end)
        } else {
            self.http.fetch_span(url, start, end)
        }
    }

    fn fetch_conditional(
        &self,
        url: &str,
        validators: &Validators,
    ) -> Result<Conditional, TransportError> {
        if url.starts_with("file://") {
            self.file.fetch_conditional(url, validators)
        } else {
            self.http.fetch_conditional(url, validators)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::transport::TransportErrorKind;

    #[test]
    fn unknown_schemes_are_unsupported() {
        let transport = DefaultTransport::new();
        let Err(error) = transport.fetch("ftp://example.invalid/x") else {
            panic!("ftp must not be fetched");
        };
        assert_eq!(error.kind(), TransportErrorKind::Unsupported);
    }
}
