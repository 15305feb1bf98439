//! Errors from reading and writing a site.

use std::path::{Path, PathBuf};

/// A `Result` whose error is this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// Why a site operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading a file of the site failed.
    #[error("failed to read `{}`", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// Writing a file of the site failed; the previous content, if any, is untouched.
    #[error("failed to write `{}`", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// An S3 location, endpoint or region is invalid.
    #[error("{reason}")]
    S3Config {
        /// What is wrong.
        reason: String,
    },

    /// No AWS credentials were found.
    #[error(
        "no AWS credentials: set `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`, or add the profile `{profile}` to `{}`",
        file.display()
    )]
    NoCredentials {
        /// The profile looked for (`AWS_PROFILE`, default `default`).
        profile: Box<str>,
        /// The shared credentials file looked in.
        file: Box<Path>,
    },

    /// A request to storage could not be sent or its answer not read: the endpoint is
    /// unreachable, timed out or broke the connection.
    #[error("failed to send `{request}`")]
    Request {
        /// The method and URL, such as `PUT https://…`.
        request: Box<str>,
        /// The transport error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// Storage refused a request (HTTP 403): wrong credentials, a bad signature or a
    /// missing permission.
    #[error("`{} {}` was refused (HTTP 403 `{}`): {}", .0.method, .0.url, .0.code, .0.message)]
    S3Denied(Box<S3Failure>),

    /// Storage answered a request with an error status other than 403.
    #[error("`{} {}` failed with HTTP {} `{}`: {}", .0.method, .0.url, .0.status, .0.code, .0.message)]
    S3Response(Box<S3Failure>),
}

/// A request S3 answered with an error status, and its answer.
#[derive(Debug)]
pub struct S3Failure {
    /// The HTTP method.
    pub method: &'static str,
    /// The URL.
    pub url: String,
    /// The HTTP status.
    pub status: u16,
    /// The S3 error code, such as `SignatureDoesNotMatch` or `NoSuchBucket`.
    pub code: String,
    /// The S3 error message.
    pub message: String,
}
