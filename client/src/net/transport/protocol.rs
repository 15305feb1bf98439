//! What a transport promises: the [`Transport`] trait, the streams it returns and the
//! kinds of failure callers branch on.

use std::fmt::{self, Debug};
use std::io::Read;

/// A trait to abstract over the protocol by which site files are obtained.
///
/// The client calls [`fetch`](Transport::fetch) once per file, with an absolute URL
/// built by [`BaseUrl::join`](crate::BaseUrl::join), and reads the returned stream to
/// its end or until it has seen enough. To resume a download that was interrupted it
/// calls [`fetch_from`](Transport::fetch_from) instead. Implementations must be
/// usable from several threads and must not verify or interpret the bytes.
pub trait Transport: Debug + Send + Sync {
    /// Opens a stream of the file at `url`.
    ///
    /// # Errors
    ///
    /// A [`TransportError`] whose [`kind`](TransportError::kind) is
    /// [`NotFound`](TransportErrorKind::NotFound) when the host answers that the file
    /// does not exist (a valid answer: the caller may try elsewhere),
    /// [`Unsupported`](TransportErrorKind::Unsupported) when this transport does not
    /// handle the URL's scheme, [`Forbidden`](TransportErrorKind::Forbidden) when the
    /// host refuses to serve it, and [`Other`](TransportErrorKind::Other) for every
    /// other failure (network, server errors).
    fn fetch(&self, url: &str) -> Result<Box<dyn Read + Send>, TransportError>;

    /// Opens a stream of the file at `url` from byte `offset` on, to resume a download
    /// of which the caller already holds the first `offset` bytes.
    ///
    /// The returned [`RangeStream::start`] says where the stream begins: `offset` when
    /// the range was honoured, or `0` when the whole file comes instead (a server that
    /// ignores ranges, or an `offset` past the end of the file); the caller then
    /// starts over. No other value is allowed. With `offset == 0` this is
    /// [`fetch`](Transport::fetch). The caller still checks the size and hash of the
    /// whole file, so a transport never needs to know whether the bytes it resumes
    /// from are right.
    ///
    /// The default implementation ignores `offset` and fetches the whole file.
    ///
    /// # Errors
    ///
    /// As [`fetch`](Transport::fetch).
    fn fetch_from(&self, url: &str, offset: u64) -> Result<RangeStream, TransportError> {
        let _ = offset;
        Ok(RangeStream {
            start: 0,
            reader: self.fetch(url)?,
        })
    }

    /// Opens a stream of bytes `start..end` of the file at `url`: a part the caller
    /// needs, such as one file's copy inside a copy pack, of which it reads no more
    /// than `end - start` bytes (and checks them itself).
    ///
    /// [`RangeStream::start`] is `start` when the range was honoured, or `0` when the
    /// whole file comes instead (a server that ignores ranges); the caller then skips
    /// to `start`. The default implementation is
    /// [`fetch_from`](Transport::fetch_from)`(url, start)`, whose stream may run on
    /// past `end`; transports that can bound a request do.
    ///
    /// # Errors
    ///
    /// As [`fetch`](Transport::fetch).
    fn fetch_span(&self, url: &str, start: u64, end: u64) -> Result<RangeStream, TransportError> {
        let _ = end;
        self.fetch_from(url, start)
    }

    /// Opens a stream of the file at `url` unless it is unchanged since the response
    /// that carried `validators`: a conditional request (`If-None-Match`,
    /// `If-Modified-Since` over HTTP). [`Conditional::NotModified`] means the caller's
    /// stored copy is still current; the caller still verifies that copy, so a
    /// transport can only save bytes here, never vouch for them.
    ///
    /// The default implementation always fetches the whole file, with no validators.
    ///
    /// # Errors
    ///
    /// As [`fetch`](Transport::fetch).
    fn fetch_conditional(
        &self,
        url: &str,
        validators: &Validators,
    ) -> Result<Conditional, TransportError> {
        let _ = validators;
        Ok(Conditional::Modified {
            reader: self.fetch(url)?,
            validators: Validators::default(),
        })
    }
}

/// What identifies one version of a file to its host: the `ETag` and
/// `Last-Modified` of an HTTP response, or whatever a transport can compare.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Validators {
    /// The entity tag, sent back as `If-None-Match`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// The modification date, sent back as `If-Modified-Since`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
}

impl Validators {
    /// Whether there is nothing to send: the request is unconditional.
    pub fn is_empty(&self) -> bool {
        self.etag.is_none() && self.last_modified.is_none()
    }
}

/// The answer to [`Transport::fetch_conditional`].
pub enum Conditional {
    /// The file changed (or the transport cannot tell): its bytes, and the
    /// validators to send next time.
    Modified {
        /// The whole file.
        reader: Box<dyn Read + Send>,
        /// What identifies this version; empty when the host gave nothing.
        validators: Validators,
    },
    /// The file is unchanged since the validators were issued.
    NotModified,
}

impl Debug for Conditional {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Modified { validators, .. } => f
                .debug_struct("Modified")
                .field("validators", validators)
                .finish_non_exhaustive(),
            Self::NotModified => f.write_str("NotModified"),
        }
    }
}

/// A stream of a file from some byte offset on, returned by
/// [`Transport::fetch_from`].
pub struct RangeStream {
    /// The offset in the file of the stream's first byte: the offset asked for, or 0.
    pub start: u64,
    /// The bytes from `start` to the end of the file.
    pub reader: Box<dyn Read + Send>,
}

impl Debug for RangeStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RangeStream")
            .field("start", &self.start)
            .finish_non_exhaustive()
    }
}

/// What kind of failure a [`TransportError`] is, for callers that branch on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportErrorKind {
    /// The host answered that the file does not exist.
    NotFound,
    /// The transport does not handle this URL (its scheme, or its host for `file://`).
    Unsupported,
    /// The host refused to serve the file: HTTP 403 Forbidden, or a local file this
    /// user may not read. Usually the files of the site, or a folder above them, are
    /// not readable by the user the web server runs as.
    Forbidden,
    /// Anything else: the fetch is broken.
    Other,
}

/// Why a [`Transport`] could not open a file.
///
/// The message describes the failure without repeating the URL, which the caller's
/// own error carries.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct TransportError {
    kind: TransportErrorKind,
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl TransportError {
    /// An error of `kind` described by `message`.
    pub fn new(kind: TransportErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// An error of `kind` described by `message`, caused by `source`.
    pub fn with_source(
        kind: TransportErrorKind,
        message: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self {
            kind,
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> TransportErrorKind {
        self.kind
    }
}
