//! Sending one S3 request: signed, retried, and its failure turned into a typed error.
//!
//! rusty-s3 builds each action's URL, but it can only sign by presigning that URL,
//! which leaves the payload unsigned and which some S3-compatible services (moto
//! enforcing IAM among them) do not accept. So requests are signed in their
//! `Authorization` header with `aws-sigv4`, the signer of the AWS SDK, and with the
//! SHA-256 of their body, so that storage rejects a body altered on the way.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode, sign,
};
use instant_xml::FromXml;
use rusty_s3::S3Action;
use sha2::{Digest, Sha256};
use url::Url;

use super::Credentials;
use super::retry::{Retry, retryable_error, retryable_status};
use crate::error::{Error, Result, S3Failure};

/// How long to wait to connect (DNS, TCP and TLS).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long any single read or write may stall. It restarts with each read or
/// write, so a large part on a slow link is fine while a stalled connection is not.
const STALL_TIMEOUT: Duration = Duration::from_secs(60);
/// The most read of an answer that is a document (a listing, an upload's answer, an
/// error): S3's are well under 1 MiB (a listing page has at most 1000 keys), so a
/// larger one is not S3's and is not held in memory. An object read back with
/// [`Client::get_object`] is read whole, whatever its size.
const DOCUMENT_LIMIT: u64 = 16 << 20;

/// The body of a request, in a form that can be sent again on a retry.
#[derive(Debug, Clone, Copy)]
pub(super) enum Body<'a> {
    Empty,
    Bytes(&'a [u8]),
    /// `length` bytes of a local file from `offset`, streamed from disk.
    File {
        path: &'a Path,
        offset: u64,
        length: u64,
    },
}

/// One request: its method, the URL rusty-s3 built, headers to send and sign, body.
#[derive(Debug)]
pub(super) struct Request<'a> {
    pub(super) method: &'static str,
    pub(super) url: Url,
    pub(super) headers: &'a [(&'a str, &'a str)],
    pub(super) body: Body<'a>,
}

/// A successful answer, read whole (bodies are small, or a file read back).
#[derive(Debug)]
pub(super) struct Answer {
    pub(super) headers: ureq::http::HeaderMap,
    pub(super) body: Vec<u8>,
}

impl Answer {
    /// The header `name`, if present and text.
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// The body as text, for the XML documents of listings and uploads.
    pub(super) fn text(&self, request: &Request<'_>) -> Result<&str> {
        std::str::from_utf8(&self.body).map_err(|source| request.unreadable(source))
    }
}

impl Request<'_> {
    /// `METHOD URL`, as errors name a request.
    pub(super) fn describe(&self) -> String {
        format!("{} {}", self.method, self.url)
    }

    /// The error for an answer that is not the document the request expects.
    pub(super) fn unreadable(
        &self,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Error {
        Error::S3Answer {
            request: self.describe().into(),
            source: Box::new(source),
        }
    }
}

/// Signs and sends requests to one region with one set of credentials.
#[derive(Debug, Clone)]
pub(super) struct Client {
    agent: ureq::Agent,
    credentials: Credentials,
    region: String,
    retry: Retry,
}

impl Client {
    pub(super) fn new(credentials: Credentials, region: &str, retry: Retry) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_resolve(Some(CONNECT_TIMEOUT))
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_per_read(Some(STALL_TIMEOUT))
            .timeout_per_write(Some(STALL_TIMEOUT))
            .timeout_recv_response(Some(STALL_TIMEOUT))
            .build()
            .into();
        Self {
            agent,
            credentials,
            region: region.to_owned(),
            retry,
        }
    }

    /// Sends `request` until it succeeds, fails for good, or has been tried
    /// [`Retry::attempts`] times; `None` is an object that does not exist (404
    /// other than `NoSuchBucket`).
    ///
    /// # Errors
    ///
    /// The last failure: [`Error::Request`] for a transport failure, else the
    /// storage's answer ([`Error::S3Denied`], [`Error::S3NoSuchBucket`],
    /// [`Error::S3Response`]), each saying how many attempts were made.
    pub(super) fn send_optional(&self, request: &Request<'_>) -> Result<Option<Answer>> {
        self.send_limited(request, DOCUMENT_LIMIT)
    }

    /// [`Client::send_optional`] for a `GetObject`, whose answer is the object, read
    /// whole whatever its size (an error answer is still a document).
    ///
    /// # Errors
    ///
    /// As [`Client::send_optional`].
    pub(super) fn get_object(&self, request: &Request<'_>) -> Result<Option<Answer>> {
        self.send_limited(request, u64::MAX)
    }

    /// [`Client::send_optional`], reading at most `limit` bytes of a 2xx answer.
    fn send_limited(&self, request: &Request<'_>, limit: u64) -> Result<Option<Answer>> {
        let payload_hash = payload_hash(request.body)?;
        let mut attempt = 1;
        loop {
            let outcome = self.attempt(request, &payload_hash, limit);
            let passing = match &outcome {
                Ok(Attempt::Failed { status, .. }) => retryable_status(*status),
                Err(Failure::Transport(error)) => retryable_error(error),
                _ => false,
            };
            if passing && attempt < self.retry.attempts {
                std::thread::sleep(self.retry.delay(attempt));
                attempt += 1;
                continue;
            }
            return match outcome {
                Ok(Attempt::Answer(answer)) => Ok(Some(answer)),
                Ok(Attempt::Failed {
                    status: 404, code, ..
                }) if code != "NoSuchBucket" => Ok(None),
                Ok(Attempt::Failed {
                    status,
                    code,
                    message,
                }) => Err(S3Failure {
                    method: request.method,
                    url: request.url.to_string(),
                    status,
                    code,
                    message,
                    attempts: attempt,
                }
                .into_error()),
                Err(Failure::Local(error)) => Err(error),
                Err(Failure::Transport(source)) => Err(Error::Request {
                    request: request.describe().into(),
                    attempts: attempt,
                    source: Box::new(source),
                }),
            };
        }
    }

    /// [`Client::send_optional`] for requests whose target must exist.
    ///
    /// # Errors
    ///
    /// As [`Client::send_optional`], and [`Error::S3Response`] for a 404.
    pub(super) fn send(&self, request: &Request<'_>) -> Result<Answer> {
        self.send_optional(request)?.ok_or_else(|| {
            S3Failure {
                method: request.method,
                url: request.url.to_string(),
                status: 404,
                code: "NotFound".to_owned(),
                message: "the storage answered that it has no such resource".to_owned(),
                attempts: 1,
            }
            .into_error()
        })
    }

    /// One signed attempt.
    fn attempt(
        &self,
        request: &Request<'_>,
        payload_hash: &str,
        limit: u64,
    ) -> std::result::Result<Attempt, Failure> {
        let mut builder = ureq::http::Request::builder()
            .method(request.method)
            .uri(request.url.as_str());
        for (name, value) in request.headers {
            builder = builder.header(*name, *value);
        }
        for (name, value) in self.sign(request, payload_hash)?.headers() {
            builder = builder.header(name, value);
        }
        let result = match request.body {
            Body::Empty => builder.body(()).map(|r| self.agent.run(r)),
            Body::Bytes(bytes) => builder.body(bytes).map(|r| self.agent.run(r)),
            Body::File {
                path,
                offset,
                length,
            } => {
                let mut file = open_at(path, offset).map_err(Failure::Local)?;
                let mut part = (&mut file).take(length);
                builder
                    .header("content-length", length.to_string())
                    .body(ureq::SendBody::from_reader(&mut part))
                    .map(|r| self.agent.run(r))
            }
        };
        let mut response = result
            .map_err(|error| Failure::Local(request.unreadable(error)))?
            .map_err(Failure::Transport)?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(if (200..300).contains(&status) {
                limit
            } else {
                DOCUMENT_LIMIT
            })
            .read_to_vec()
            .map_err(Failure::Transport)?;
        if (200..300).contains(&status) {
            return Ok(Attempt::Answer(Answer {
                headers: response.headers().clone(),
                body,
            }));
        }
        let document = std::str::from_utf8(&body)
            .ok()
            .and_then(|text| instant_xml::from_str::<ErrorDocument>(text).ok());
        Ok(Attempt::Failed {
            status,
            code: document
                .as_ref()
                .map(|d| d.code.clone())
                .unwrap_or_default(),
            message: document.map(|d| d.message).unwrap_or_default(),
        })
    }

    /// The headers that sign `request` now: `authorization`, `x-amz-date`,
    /// `x-amz-content-sha256` and, for temporary credentials, the session token.
    fn sign(
        &self,
        request: &Request<'_>,
        payload_hash: &str,
    ) -> std::result::Result<aws_sigv4::http_request::SigningInstructions, Failure> {
        let identity = aws_credential_types::Credentials::new(
            &self.credentials.access_key_id,
            &self.credentials.secret_access_key,
            self.credentials.session_token.clone(),
            None,
            "wavecast",
        )
        .into();
        // S3 signs the path as sent (rusty-s3 encoded it once), unnormalised, and
        // wants the payload's hash in a header of its own.
        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("s3")
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .map_err(|error| Failure::Local(request.unreadable(error)))?
            .into();
        let signable = SignableRequest::new(
            request.method,
            request.url.as_str(),
            request.headers.iter().copied(),
            SignableBody::Precomputed(payload_hash.to_owned()),
        )
        .map_err(|error| Failure::Local(request.unreadable(error)))?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|error| Failure::Local(request.unreadable(error)))?
            .into_parts();
        Ok(instructions)
    }
}

/// What one attempt brought: an answer, or an error status with S3's code and message.
enum Attempt {
    Answer(Answer),
    Failed {
        status: u16,
        code: String,
        message: String,
    },
}

/// Why an attempt got no answer: a local problem (a file, the request) that a retry
/// would not fix, or the network.
enum Failure {
    Local(Error),
    Transport(ureq::Error),
}

/// The error document S3 answers with: `<Error><Code>…</Code><Message>…</Message>…`.
#[derive(Debug, FromXml)]
#[xml(rename = "Error")]
struct ErrorDocument {
    #[xml(rename = "Code")]
    code: String,
    #[xml(rename = "Message")]
    message: String,
}

impl S3Failure {
    /// The error for this answer, by what the user can do about it.
    fn into_error(self) -> Error {
        match (self.status, self.code.as_str()) {
            (403, _) => Error::S3Denied(Box::new(self)),
            (404, "NoSuchBucket") => Error::S3NoSuchBucket(Box::new(self)),
            _ => Error::S3Response(Box::new(self)),
        }
    }
}

/// The hex SHA-256 of a body, which the signature covers; a file part is read here
/// once, and again when it is sent, so that it is never held in memory.
fn payload_hash(body: Body<'_>) -> Result<String> {
    let mut hasher = Sha256::new();
    match body {
        Body::Empty => {}
        Body::Bytes(bytes) => hasher.update(bytes),
        Body::File {
            path,
            offset,
            length,
        } => {
            let read_error = |source| Error::Read {
                path: path.to_owned(),
                source,
            };
            let mut part = open_at(path, offset)?.take(length);
            let mut buffer = vec![0; 1 << 16];
            let mut hashed = 0;
            loop {
                let read = part.read(&mut buffer).map_err(read_error)?;
                if read == 0 {
                    break;
                }
                hasher.update(&buffer[..read]);
                hashed += read as u64;
            }
            if hashed != length {
                return Err(read_error(std::io::ErrorKind::UnexpectedEof.into()));
            }
        }
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect())
}

/// `path`, open for reading at `offset`.
fn open_at(path: &Path, offset: u64) -> Result<std::fs::File> {
    let read_error = |source| Error::Read {
        path: path.to_owned(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(read_error)?;
    file.seek(SeekFrom::Start(offset)).map_err(read_error)?;
    Ok(file)
}

/// The URL of an S3 action, built by rusty-s3. The action has no credentials, so the
/// URL is not presigned (the expiry is unused): the request is signed in its headers.
pub(super) fn url<'a>(action: &impl S3Action<'a>) -> Url {
    action.sign(Duration::ZERO)
}

/// The failure an answer reports in an error document despite its 2xx status, as
/// `CompleteMultipartUpload` can.
pub(super) fn failure_in(request: &Request<'_>, answer: &Answer) -> Option<Error> {
    let document =
        instant_xml::from_str::<ErrorDocument>(std::str::from_utf8(&answer.body).ok()?).ok()?;
    Some(
        S3Failure {
            method: request.method,
            url: request.url.to_string(),
            status: 200,
            code: document.code,
            message: document.message,
            attempts: 1,
        }
        .into_error(),
    )
}

/// An answer that lacks what its request promises, such as an `ETag`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(super) struct Malformed(pub(super) &'static str);
