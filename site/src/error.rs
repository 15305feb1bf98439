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

    /// A request to storage could not be sent or its answer not read, even after
    /// retrying: the endpoint is wrong or unreachable, timed out or broke the
    /// connection. What to check: the endpoint and the network.
    #[error("failed to send `{request}` ({attempts} attempts)")]
    Request {
        /// The method and URL, such as `PUT https://…`.
        request: Box<str>,
        /// How many times it was sent.
        attempts: u32,
        /// The last transport error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// Storage refused a request (HTTP 403): wrong credentials, a bad signature or a
    /// missing permission. What to check: the credentials, the region and the key's
    /// policy.
    #[error("`{} {}` was refused (HTTP 403 `{}`): {}", .0.method, .0.url, .0.code, .0.message)]
    S3Denied(Box<S3Failure>),

    /// The bucket does not exist (HTTP 404 `NoSuchBucket`). What to do: create it, or
    /// correct its name or the endpoint.
    #[error("`{} {}` failed: the bucket does not exist (HTTP 404 `NoSuchBucket`)", .0.method, .0.url)]
    S3NoSuchBucket(Box<S3Failure>),

    /// Storage answered a request with another error status, after retrying those
    /// that may pass (5xx, 429).
    #[error(
        "`{} {}` failed with HTTP {} `{}` after {} attempts: {}",
        .0.method, .0.url, .0.status, .0.code, .0.attempts, .0.message
    )]
    S3Response(Box<S3Failure>),

    /// A multipart upload failed (its error is the source), and aborting it failed
    /// too, so the parts sent so far stay in the bucket, and are billed, until they
    /// are removed: by a lifecycle rule for incomplete uploads, or by hand.
    #[error(
        "the multipart upload of `{key}` failed, and aborting it failed too, so its \
         parts stay in the bucket until removed ({abort})"
    )]
    S3UploadNotAborted {
        /// The object's key.
        key: String,
        /// Why the upload failed.
        #[source]
        upload: Box<Error>,
        /// Why the abort failed.
        abort: Box<Error>,
    },

    /// Storage answered a request with something other than the document it asks
    /// for: not an S3-compatible service, or one that wavecast does not understand.
    #[error("the answer to `{request}` could not be read")]
    S3Answer {
        /// The method and URL.
        request: Box<str>,
        /// What was wrong with it.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
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
    /// How many times the request was sent.
    pub attempts: u32,
}
