//! A site in an S3 bucket, or any S3-compatible storage (feature `s3`).
//!
//! Requests are path-style (`ENDPOINT/BUCKET/KEY`) and signed with AWS Signature
//! Version 4, written here with `hmac` and `sha2` so no SDK is needed.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use wavecast_schema::RelativePath;

use crate::error::{Error, Result, S3Failure};
use crate::storage::Storage;

/// The region used when none is given and neither `AWS_REGION` nor
/// `AWS_DEFAULT_REGION` is set.
pub const DEFAULT_REGION: &str = "us-east-1";

/// A bucket and a key prefix, written `s3://BUCKET/PREFIX` (the prefix may be empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    /// The bucket.
    pub bucket: String,
    /// The key prefix without leading or trailing `/`; empty for the bucket root.
    pub prefix: String,
}

impl FromStr for S3Location {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        let invalid = |reason: &str| Error::S3Config {
            reason: format!("`{text}` is not an `s3://BUCKET/PREFIX` location: {reason}"),
        };
        let rest = text
            .strip_prefix("s3://")
            .ok_or_else(|| invalid("it does not start with `s3://`"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty()
            || !bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        {
            return Err(invalid(
                "the bucket name must be lowercase letters, digits, `-` and `.`",
            ));
        }
        Ok(Self {
            bucket: bucket.to_owned(),
            prefix: prefix.trim_matches('/').to_owned(),
        })
    }
}

impl std::fmt::Display for S3Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.prefix)
    }
}

/// AWS credentials. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The access key id (`AKIA…`).
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: String,
    /// The session token of temporary credentials.
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// Credentials from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and
    /// `AWS_SESSION_TOKEN`, else from the profile `AWS_PROFILE` (default `default`)
    /// of the shared credentials file (`AWS_SHARED_CREDENTIALS_FILE`, default
    /// `~/.aws/credentials`).
    ///
    /// # Errors
    ///
    /// [`Error::NoCredentials`] when neither has them; [`Error::Read`] when the
    /// credentials file exists but cannot be read.
    pub fn from_environment() -> Result<Self> {
        let var = |name| std::env::var(name).ok().filter(|value| !value.is_empty());
        if let (Some(access_key_id), Some(secret_access_key)) =
            (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY"))
        {
            return Ok(Self {
                access_key_id,
                secret_access_key,
                session_token: var("AWS_SESSION_TOKEN"),
            });
        }
        let profile = var("AWS_PROFILE").unwrap_or_else(|| "default".to_owned());
        let file = var("AWS_SHARED_CREDENTIALS_FILE")
            .map(PathBuf::from)
            .or_else(|| var("HOME").map(|home| Path::new(&home).join(".aws/credentials")))
            .unwrap_or_else(|| PathBuf::from("~/.aws/credentials"));
        let text = match std::fs::read_to_string(&file) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => return Err(Error::Read { path: file, source }),
        };
        Self::from_profile(&text, &profile).ok_or_else(|| Error::NoCredentials {
            profile: profile.into(),
            file: file.into(),
        })
    }

    /// The credentials of `profile` in the text of a shared credentials file.
    pub fn from_profile(text: &str, profile: &str) -> Option<Self> {
        let mut section = None;
        let mut values = BTreeMap::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = Some(name.trim().to_owned());
            } else if section.as_deref() == Some(profile)
                && let Some((key, value)) = line.split_once('=')
            {
                values.insert(key.trim().to_owned(), value.trim().to_owned());
            }
        }
        Some(Self {
            access_key_id: values.remove("aws_access_key_id")?,
            secret_access_key: values.remove("aws_secret_access_key")?,
            session_token: values.remove("aws_session_token"),
        })
    }
}

/// The region from `AWS_REGION`, else `AWS_DEFAULT_REGION`, else [`DEFAULT_REGION`].
pub fn region_from_environment() -> String {
    ["AWS_REGION", "AWS_DEFAULT_REGION"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|value| !value.is_empty()))
        .unwrap_or_else(|| DEFAULT_REGION.to_owned())
}

/// The `Content-Type` a site file is served with, from its name.
pub fn content_type(path: &RelativePath) -> &'static str {
    let name = path.as_str();
    if name.ends_with(".json") {
        "application/json"
    } else if name.ends_with(".gz") {
        "application/gzip"
    } else if name.ends_with(".zst") {
        "application/zstd"
    } else if name.ends_with(".html") {
        "text/html; charset=utf-8"
    } else if name.ends_with(".nojekyll") {
        "text/plain"
    } else {
        "application/octet-stream"
    }
}

/// The `Cache-Control` a site file is served with: content-addressed blobs and the
/// write-once roots forever, the mutable files (channel manifests, status page) for a
/// minute.
pub fn cache_control(path: &RelativePath) -> &'static str {
    if path.as_str().starts_with("blobs/") || path.as_str().starts_with("roots/") {
        "public, max-age=31536000, immutable"
    } else if path.as_str().starts_with("channels/") || path.as_str() == "index.html" {
        "max-age=60, must-revalidate"
    } else {
        "max-age=300"
    }
}

/// What a `HEAD` request tells about an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Size in bytes.
    pub size: u64,
    /// Its `Content-Type`, if any.
    pub content_type: Option<String>,
    /// Its `Cache-Control`, if any.
    pub cache_control: Option<String>,
    /// Its `Last-Modified` (when it was uploaded), if given and readable.
    pub last_modified: Option<jiff::Timestamp>,
}

/// A site in an S3 bucket under a key prefix. Each `put` is one `PutObject`, which
/// S3 applies atomically; every request is signed (Signature Version 4).
#[derive(Debug, Clone)]
pub struct S3Storage {
    agent: ureq::Agent,
    endpoint: String,
    host: String,
    region: String,
    location: S3Location,
    credentials: Credentials,
}

/// The body of a request: bytes in memory or a local file streamed from disk.
enum Body<'a> {
    Empty,
    Bytes(&'a [u8]),
    File(&'a Path),
}

impl S3Storage {
    /// A site at `location`, reached through `endpoint` (default
    /// `https://s3.<region>.amazonaws.com`) in `region`.
    ///
    /// # Errors
    ///
    /// [`Error::S3Config`] when the endpoint is not an `http(s)://` URL.
    pub fn new(
        location: S3Location,
        endpoint: Option<&str>,
        region: &str,
        credentials: Credentials,
    ) -> Result<Self> {
        let endpoint = endpoint.map_or_else(
            || format!("https://s3.{region}.amazonaws.com"),
            |endpoint| endpoint.trim_end_matches('/').to_owned(),
        );
        let host = endpoint
            .strip_prefix("https://")
            .or_else(|| endpoint.strip_prefix("http://"))
            .filter(|host| !host.is_empty() && !host.contains('/'))
            .ok_or_else(|| Error::S3Config {
                reason: format!("the endpoint `{endpoint}` is not an `http(s)://HOST[:PORT]` URL"),
            })?
            .to_owned();
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_recv_response(Some(Duration::from_secs(60)))
            .timeout_recv_body(Some(Duration::from_secs(300)))
            .timeout_send_body(Some(Duration::from_secs(300)))
            .build()
            .into();
        Ok(Self {
            agent,
            endpoint,
            host,
            region: region.to_owned(),
            location,
            credentials,
        })
    }

    /// The bucket and prefix.
    pub fn location(&self) -> &S3Location {
        &self.location
    }

    /// Creates the bucket (`CreateBucket`); for tests and first-time setup.
    ///
    /// # Errors
    ///
    /// The request failed or was refused.
    pub fn create_bucket(&self) -> Result<()> {
        let body = if self.region == DEFAULT_REGION {
            String::new()
        } else {
            format!(
                "<CreateBucketConfiguration><LocationConstraint>{}</LocationConstraint></CreateBucketConfiguration>",
                self.region
            )
        };
        self.send("PUT", None, &[], &[], Body::Bytes(body.as_bytes()))
            .map(drop)
    }

    /// Lets anyone read the objects under the prefix (a bucket policy allowing
    /// anonymous `s3:GetObject`), so clients can fetch the site over plain HTTP.
    /// Replaces the bucket's policy.
    ///
    /// # Errors
    ///
    /// The request failed or was refused.
    pub fn allow_public_reads(&self) -> Result<()> {
        let resource = format!(
            "arn:aws:s3:::{}/{}*",
            self.location.bucket,
            self.key_prefix()
        );
        let policy = format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"WavecastPublicRead","Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"{resource}"}}]}}"#
        );
        self.send(
            "PUT",
            None,
            &[("policy", String::new())],
            &[("content-type", "application/json")],
            Body::Bytes(policy.as_bytes()),
        )
        .map(drop)
    }

    /// The size and headers of the object at `path`, or `None` when it is absent.
    ///
    /// # Errors
    ///
    /// The request failed or was refused.
    pub fn head(&self, path: &RelativePath) -> Result<Option<ObjectInfo>> {
        let response = self.send("HEAD", Some(path), &[], &[], Body::Empty)?;
        let Some(response) = response else {
            return Ok(None);
        };
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
        };
        Ok(Some(ObjectInfo {
            size: header("content-length")
                .and_then(|value| value.parse().ok())
                .unwrap_or(0),
            content_type: header("content-type"),
            cache_control: header("cache-control"),
            last_modified: header("last-modified").and_then(|date| http_date(&date)),
        }))
    }

    /// Every object under the prefix, by site path, with its size (one
    /// `ListObjectsV2` listing, paged). Keys that are not site paths are left out.
    ///
    /// # Errors
    ///
    /// The request failed or was refused.
    pub fn sizes(&self) -> Result<BTreeMap<RelativePath, u64>> {
        let prefix = self.key_prefix();
        Ok(self
            .list_objects(&prefix, false)?
            .into_iter()
            .filter_map(|(key, size)| Some((key.strip_prefix(&prefix)?.parse().ok()?, size)))
            .collect())
    }

    /// `PREFIX/`, or empty at the bucket root.
    fn key_prefix(&self) -> String {
        if self.location.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.location.prefix)
        }
    }

    fn key(&self, path: &RelativePath) -> String {
        format!("{}{path}", self.key_prefix())
    }

    /// The keys and sizes of the objects whose keys start with `prefix`; with
    /// `delimited`, only those with no further `/`.
    fn list_objects(&self, prefix: &str, delimited: bool) -> Result<Vec<(String, u64)>> {
        let mut objects = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut query = vec![("list-type", "2".to_owned()), ("prefix", prefix.to_owned())];
            if delimited {
                query.push(("delimiter", "/".to_owned()));
            }
            if let Some(token) = &token {
                query.push(("continuation-token", token.clone()));
            }
            let Some(mut response) = self.send("GET", None, &query, &[], Body::Empty)? else {
                return Err(self.missing_bucket("GET"));
            };
            let url = self.url(None);
            let text = response
                .body_mut()
                .with_config()
                .limit(64 << 20)
                .read_to_string()
                .map_err(|source| Error::Request {
                    request: format!("GET {url}").into(),
                    source: Box::new(source),
                })?;
            for contents in elements(&text, "Contents") {
                if let Some(key) = elements(contents, "Key").next() {
                    let size = elements(contents, "Size")
                        .next()
                        .and_then(|size| size.parse().ok())
                        .unwrap_or(0);
                    objects.push((unescape(key), size));
                }
            }
            token = elements(&text, "NextContinuationToken")
                .next()
                .map(unescape);
            if elements(&text, "IsTruncated").next() != Some("true") || token.is_none() {
                return Ok(objects);
            }
        }
    }

    fn missing_bucket(&self, method: &'static str) -> Error {
        Error::S3Response(Box::new(S3Failure {
            method,
            url: self.url(None),
            status: 404,
            code: "NoSuchBucket".to_owned(),
            message: format!("the bucket `{}` does not exist", self.location.bucket),
        }))
    }

    /// `ENDPOINT/BUCKET/[KEY]`, encoded.
    fn url(&self, path: Option<&RelativePath>) -> String {
        format!("{}{}", self.endpoint, self.canonical_uri(path))
    }

    fn canonical_uri(&self, path: Option<&RelativePath>) -> String {
        match path {
            Some(path) => format!(
                "/{}/{}",
                self.location.bucket,
                uri_encode(&self.key(path), false)
            ),
            None => format!("/{}/", self.location.bucket),
        }
    }

    /// Sends one signed request. `None` is a 404 for an object request; other
    /// statuses that are not 2xx are errors.
    fn send(
        &self,
        method: &'static str,
        path: Option<&RelativePath>,
        query: &[(&str, String)],
        extra_headers: &[(&str, &str)],
        body: Body<'_>,
    ) -> Result<Option<ureq::http::Response<ureq::Body>>> {
        let canonical_uri = self.canonical_uri(path);
        let mut url = format!("{}{canonical_uri}", self.endpoint);
        let canonical_query = canonical_query(query);
        if !canonical_query.is_empty() {
            url = format!("{url}?{canonical_query}");
        }
        let request_error = |source: Box<dyn std::error::Error + Send + Sync>| Error::Request {
            request: format!("{method} {url}").into(),
            source,
        };
        let (payload_hash, length) = match &body {
            Body::Empty => (hex(&Sha256::digest(b"")), 0),
            Body::Bytes(bytes) => (hex(&Sha256::digest(bytes)), bytes.len() as u64),
            Body::File(file) => hash_file(file)?,
        };
        let amz_date = jiff::Timestamp::now()
            .strftime("%Y%m%dT%H%M%SZ")
            .to_string();
        let mut headers: Vec<(String, String)> = vec![
            ("host".to_owned(), self.host.clone()),
            ("x-amz-content-sha256".to_owned(), payload_hash.clone()),
            ("x-amz-date".to_owned(), amz_date.clone()),
        ];
        if let Some(token) = &self.credentials.session_token {
            headers.push(("x-amz-security-token".to_owned(), token.clone()));
        }
        for (name, value) in extra_headers {
            headers.push((name.to_ascii_lowercase(), (*value).to_owned()));
        }
        let authorization = authorization(
            &Request {
                method,
                canonical_uri: &canonical_uri,
                canonical_query: &canonical_query,
                headers: &headers,
                payload_hash: &payload_hash,
            },
            &self.credentials,
            &amz_date,
            &self.region,
        );
        let mut builder = ureq::http::Request::builder()
            .method(method)
            .uri(&url)
            .header("authorization", authorization);
        for (name, value) in headers.iter().filter(|(name, _)| name != "host") {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let result = match body {
            Body::Empty => self
                .agent
                .run(builder.body(()).map_err(|e| request_error(Box::new(e)))?),
            Body::Bytes(bytes) => self.agent.run(
                builder
                    .header("content-length", length.to_string())
                    .body(bytes)
                    .map_err(|e| request_error(Box::new(e)))?,
            ),
            Body::File(file) => {
                let mut reader = std::fs::File::open(file).map_err(|source| Error::Read {
                    path: file.to_owned(),
                    source,
                })?;
                self.agent.run(
                    builder
                        .header("content-length", length.to_string())
                        .body(ureq::SendBody::from_reader(&mut reader))
                        .map_err(|e| request_error(Box::new(e)))?,
                )
            }
        };
        let mut response = result.map_err(|e| request_error(Box::new(e)))?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(Some(response));
        }
        if status == 404 && path.is_some() {
            return Ok(None);
        }
        let text = response
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_string()
            .unwrap_or_default();
        let field = |name| elements(&text, name).next().map(unescape);
        let code = field("Code").unwrap_or_default();
        let message = field("Message").unwrap_or_default();
        let failure = Box::new(S3Failure {
            method,
            url,
            status,
            code,
            message,
        });
        Err(if status == 403 {
            Error::S3Denied(failure)
        } else {
            Error::S3Response(failure)
        })
    }
}

impl Storage for S3Storage {
    fn get(&self, path: &RelativePath) -> Result<Option<Vec<u8>>> {
        let Some(mut response) = self.send("GET", Some(path), &[], &[], Body::Empty)? else {
            return Ok(None);
        };
        let bytes = response
            .body_mut()
            .with_config()
            .limit(u64::MAX)
            .read_to_vec()
            .map_err(|source| Error::Request {
                request: format!("GET {}", self.url(Some(path))).into(),
                source: Box::new(source),
            })?;
        Ok(Some(bytes))
    }

    fn size(&self, path: &RelativePath) -> Result<Option<u64>> {
        Ok(self.head(path)?.map(|info| info.size))
    }

    fn list(&self, prefix: &RelativePath) -> Result<Vec<RelativePath>> {
        let site_prefix = self.key_prefix();
        let folder = format!("{site_prefix}{prefix}/");
        let mut paths: Vec<RelativePath> = self
            .list_objects(&folder, true)?
            .into_iter()
            .filter_map(|(key, _)| key.strip_prefix(&site_prefix)?.parse().ok())
            .collect();
        paths.sort();
        Ok(paths)
    }

    fn put_bytes(&self, path: &RelativePath, bytes: &[u8]) -> Result<()> {
        let headers = [
            ("content-type", content_type(path)),
            ("cache-control", cache_control(path)),
        ];
        self.send("PUT", Some(path), &[], &headers, Body::Bytes(bytes))
            .map(drop)
    }

    fn put_file(&self, path: &RelativePath, source: &Path) -> Result<()> {
        let headers = [
            ("content-type", content_type(path)),
            ("cache-control", cache_control(path)),
        ];
        self.send("PUT", Some(path), &[], &headers, Body::File(source))
            .map(drop)
    }

    fn delete(&self, path: &RelativePath) -> Result<()> {
        // `DeleteObject` answers 204 whether or not the key existed, and `send`
        // reads a 404 as absent: either way the file is gone.
        self.send("DELETE", Some(path), &[], &[], Body::Empty)
            .map(drop)
    }

    fn modified(&self, path: &RelativePath) -> Result<Option<jiff::Timestamp>> {
        let Some(info) = self.head(path)? else {
            return Ok(None);
        };
        info.last_modified.map(Some).ok_or_else(|| {
            Error::S3Response(Box::new(S3Failure {
                method: "HEAD",
                url: self.url(Some(path)),
                status: 200,
                code: "NoLastModified".to_owned(),
                message: "the answer has no readable `Last-Modified` header".to_owned(),
            }))
        })
    }
}

/// An HTTP date (RFC 9110's IMF-fixdate, `Sun, 06 Nov 1994 08:49:37 GMT`, which
/// RFC 2822 parsing accepts) as a timestamp.
fn http_date(text: &str) -> Option<jiff::Timestamp> {
    static PARSER: jiff::fmt::rfc2822::DateTimeParser = jiff::fmt::rfc2822::DateTimeParser::new();
    PARSER.parse_timestamp(text.trim()).ok()
}

/// The SHA-256 (hex) and length of a local file, read in pieces.
fn hash_file(path: &Path) -> Result<(String, u64)> {
    let read_error = |source| Error::Read {
        path: path.to_owned(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(read_error)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 1 << 16];
    let mut length = 0u64;
    loop {
        let read = file.read(&mut buffer).map_err(read_error)?;
        if read == 0 {
            return Ok((hex(&hasher.finalize()), length));
        }
        hasher.update(&buffer[..read]);
        length += read as u64;
    }
}

/// What a request's signature covers.
struct Request<'a> {
    method: &'a str,
    /// The path, already URI-encoded.
    canonical_uri: &'a str,
    /// The query, already sorted and encoded (see [`canonical_query`]).
    canonical_query: &'a str,
    /// Lowercase header names and their values; all of them are signed.
    headers: &'a [(String, String)],
    payload_hash: &'a str,
}

/// The `Authorization` header of Signature Version 4 for `request` at `amz_date`
/// (`YYYYMMDDTHHMMSSZ`).
fn authorization(
    request: &Request<'_>,
    credentials: &Credentials,
    amz_date: &str,
    region: &str,
) -> String {
    let mut headers: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|(name, value)| {
            (
                name.to_ascii_lowercase(),
                value.split_whitespace().collect::<Vec<_>>().join(" "),
            )
        })
        .collect();
    headers.sort();
    let signed_headers = headers
        .iter()
        .map(|(name, _)| name.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let mut canonical_headers = String::new();
    for (name, value) in &headers {
        let _ = writeln!(canonical_headers, "{name}:{value}");
    }
    let canonical_request = format!(
        "{}\n{}\n{}\n{canonical_headers}\n{signed_headers}\n{}",
        request.method, request.canonical_uri, request.canonical_query, request.payload_hash
    );
    let date = &amz_date[..8];
    let scope = format!("{date}/{region}/s3/aws4_request");
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex(&Sha256::digest(canonical_request.as_bytes()))
    );
    let secret = format!("AWS4{}", credentials.secret_access_key);
    let key = [region, "s3", "aws4_request"]
        .iter()
        .fold(hmac(secret.as_bytes(), date.as_bytes()), |key, part| {
            hmac(&key, part.as_bytes())
        });
    let signature = hex(&hmac(&key, string_to_sign.as_bytes()));
    format!(
        "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
        credentials.access_key_id
    )
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut text, byte| {
        let _ = write!(text, "{byte:02x}");
        text
    })
}

/// The query string of Signature Version 4: names and values encoded, sorted.
fn canonical_query(query: &[(&str, String)]) -> String {
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .map(|(name, value)| (uri_encode(name, true), uri_encode(value, true)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Percent-encodes everything but unreserved characters (and `/` unless `slash`).
fn uri_encode(text: &str, slash: bool) -> String {
    let mut encoded = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) || (byte == b'/' && !slash) {
            encoded.push(char::from(byte));
        } else {
            let _ = write!(encoded, "%{byte:02X}");
        }
    }
    encoded
}

/// The texts of the elements `<name>…</name>` of an XML document, in order.
fn elements<'a>(xml: &'a str, name: &str) -> impl Iterator<Item = &'a str> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let mut rest = xml;
    std::iter::from_fn(move || {
        let start = rest.find(&open)? + open.len();
        let length = rest[start..].find(&close)?;
        let text = &rest[start..start + length];
        rest = &rest[start + length + close.len()..];
        Some(text)
    })
}

/// Replaces XML's predefined entities.
fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The "GET Object" example of the S3 Signature Version 4 documentation.
    #[test]
    fn signature_matches_the_aws_example() {
        let credentials = Credentials {
            access_key_id: "AKIAIOSFODNN7EXAMPLE".to_owned(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".to_owned(),
            session_token: None,
        };
        let empty = hex(&Sha256::digest(b""));
        assert_eq!(
            empty,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let headers = [
            ("host", "examplebucket.s3.amazonaws.com"),
            ("range", "bytes=0-9"),
            ("x-amz-content-sha256", empty.as_str()),
            ("x-amz-date", "20130524T000000Z"),
        ]
        .map(|(name, value)| (name.to_owned(), value.to_owned()));
        let header = authorization(
            &Request {
                method: "GET",
                canonical_uri: "/test.txt",
                canonical_query: "",
                headers: &headers,
                payload_hash: &empty,
            },
            &credentials,
            "20130524T000000Z",
            "us-east-1",
        );
        assert_eq!(
            header,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    #[test]
    fn http_dates_parse() {
        assert_eq!(
            http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some("1994-11-06T08:49:37Z".parse().unwrap())
        );
        assert_eq!(
            http_date("Wed, 21 Oct 2026 07:28:00 GMT "),
            Some("2026-10-21T07:28:00Z".parse().unwrap())
        );
        assert_eq!(http_date("yesterday"), None);
    }

    #[test]
    fn locations_parse() {
        let location: S3Location = "s3://my-bucket/sites/app/".parse().unwrap();
        assert_eq!(location.bucket, "my-bucket");
        assert_eq!(location.prefix, "sites/app");
        assert_eq!("s3://b1".parse::<S3Location>().unwrap().prefix, "");
        for bad in ["my-bucket/x", "s3://", "s3://Upper/x", "https://b/x"] {
            assert!(bad.parse::<S3Location>().is_err(), "{bad}");
        }
    }

    #[test]
    fn profiles_parse() {
        let text = "[default]\naws_access_key_id = A\naws_secret_access_key = B\n\n[ci]\n# comment\naws_access_key_id=C\naws_secret_access_key=D\naws_session_token=E\n";
        let ci = Credentials::from_profile(text, "ci").unwrap();
        assert_eq!(
            (ci.access_key_id.as_str(), ci.secret_access_key.as_str()),
            ("C", "D")
        );
        assert_eq!(ci.session_token.as_deref(), Some("E"));
        assert_eq!(
            Credentials::from_profile(text, "default")
                .unwrap()
                .session_token,
            None
        );
        assert!(Credentials::from_profile(text, "other").is_none());
        assert!(!format!("{ci:?}").contains('D'), "the secret is hidden");
    }

    #[test]
    fn files_get_their_headers() {
        let cases = [
            ("blobs/ab.tar.gz", "application/gzip", "immutable"),
            ("roots/2.json", "application/json", "immutable"),
            ("blobs/ab.json", "application/json", "immutable"),
            ("blobs/ab.zst", "application/zstd", "immutable"),
            ("blobs/ab.json.zst", "application/zstd", "immutable"),
            ("blobs/ab.copies", "application/octet-stream", "immutable"),
            ("blobs/ab.pack", "application/octet-stream", "immutable"),
            (
                "channels/stable.json",
                "application/json",
                "must-revalidate",
            ),
            ("index.html", "text/html; charset=utf-8", "must-revalidate"),
            (".nojekyll", "text/plain", "max-age=300"),
        ];
        for (path, kind, cache) in cases {
            let path: RelativePath = path.parse().unwrap();
            assert_eq!(content_type(&path), kind, "{path}");
            assert!(cache_control(&path).contains(cache), "{path}");
        }
    }

    #[test]
    fn queries_and_listings_are_encoded_and_parsed() {
        assert_eq!(
            canonical_query(&[("prefix", "a b/".to_owned()), ("list-type", "2".to_owned())]),
            "list-type=2&prefix=a%20b%2F"
        );
        assert_eq!(uri_encode("p/x y.json", false), "p/x%20y.json");
        let xml = "<R><IsTruncated>false</IsTruncated><Contents><Key>a&amp;b</Key><Size>3</Size></Contents><Contents><Key>c</Key><Size>5</Size></Contents></R>";
        let keys: Vec<_> = elements(xml, "Key").map(unescape).collect();
        assert_eq!(keys, ["a&b", "c"]);
    }
}
