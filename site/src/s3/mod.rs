//! A site in an S3 bucket, or any S3-compatible storage (feature `s3`).
//!
//! Requests are path-style (`ENDPOINT/BUCKET/KEY`): rusty-s3 builds each action's
//! URL and reads its XML answers, `request` signs and sends them with retries,
//! `multipart` uploads large blobs in parts, and `list` pages through listings.

mod credentials;
mod list;
mod multipart;
mod request;
mod retry;

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;

use rusty_s3::{Bucket, UrlStyle};
use url::Url;
use wavecast_schema::RelativePath;

pub use self::credentials::{Credentials, DEFAULT_REGION, region_from_environment};
use self::request::{Body, Client, Malformed, Request, url};
use self::retry::Retry;
use crate::error::{Error, Result};
use crate::storage::Storage;

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

/// A site in an S3 bucket under a key prefix. Each `put` is one `PutObject`, or for
/// files over 64 MiB one multipart upload, which S3 applies atomically; every
/// request is signed (Signature Version 4) and retried while it may pass.
#[derive(Debug, Clone)]
pub struct S3Storage {
    client: Client,
    bucket: Bucket,
    location: S3Location,
}

impl S3Storage {
    /// A site at `location`, reached through `endpoint` (default
    /// `https://s3.<region>.amazonaws.com`) in `region`.
    ///
    /// # Errors
    ///
    /// [`Error::S3Config`] when the endpoint is not an `http(s)://HOST[:PORT]` URL.
    pub fn new(
        location: S3Location,
        endpoint: Option<&str>,
        region: &str,
        credentials: Credentials,
    ) -> Result<Self> {
        Self::with_retry(location, endpoint, region, credentials, Retry::DEFAULT)
    }

    fn with_retry(
        location: S3Location,
        endpoint: Option<&str>,
        region: &str,
        credentials: Credentials,
        retry: Retry,
    ) -> Result<Self> {
        let endpoint = endpoint.map_or_else(
            || format!("https://s3.{region}.amazonaws.com"),
            |endpoint| endpoint.trim_end_matches('/').to_owned(),
        );
        let invalid = || Error::S3Config {
            reason: format!("the endpoint `{endpoint}` is not an `http(s)://HOST[:PORT]` URL"),
        };
        let parsed = Url::parse(&endpoint)
            .ok()
            .filter(|url| url.path() == "/" && url.query().is_none())
            .ok_or_else(invalid)?;
        let bucket = Bucket::new(
            parsed,
            UrlStyle::Path,
            location.bucket.clone(),
            region.to_owned(),
        )
        .map_err(|_| invalid())?;
        Ok(Self {
            client: Client::new(credentials, region, retry),
            bucket,
            location,
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
        // rusty-s3's `CreateBucket` only presigns with credentials; its body is this.
        let region = self.bucket.region();
        let body = if region == DEFAULT_REGION {
            String::new()
        } else {
            format!(
                "<CreateBucketConfiguration><LocationConstraint>{region}</LocationConstraint></CreateBucketConfiguration>"
            )
        };
        self.client
            .send(&Request {
                method: "PUT",
                url: self.bucket.base_url().clone(),
                headers: &[],
                body: Body::Bytes(body.as_bytes()),
            })
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
        // rusty-s3 has no `PutBucketPolicy`: it is a `PUT` to the bucket's `?policy`.
        let mut policy_url = self.bucket.base_url().clone();
        policy_url.set_query(Some("policy"));
        self.client
            .send(&Request {
                method: "PUT",
                url: policy_url,
                headers: &[("content-type", "application/json")],
                body: Body::Bytes(policy.as_bytes()),
            })
            .map(drop)
    }

    /// The size and headers of the object at `path`, or `None` when it is absent.
    ///
    /// # Errors
    ///
    /// The request failed or was refused.
    pub fn head(&self, path: &RelativePath) -> Result<Option<ObjectInfo>> {
        let key = self.key(path);
        let request = Request {
            method: "HEAD",
            url: url(&self.bucket.head_object(None, &key)),
            headers: &[],
            body: Body::Empty,
        };
        let Some(answer) = self.client.send_optional(&request)? else {
            return Ok(None);
        };
        let header = |name| answer.header(name).map(str::to_owned);
        Ok(Some(ObjectInfo {
            size: answer
                .header("content-length")
                .and_then(|value| value.parse().ok())
                .unwrap_or(0),
            content_type: header("content-type"),
            cache_control: header("cache-control"),
            last_modified: answer.header("last-modified").and_then(http_date),
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
        Ok(list::objects(&self.client, &self.bucket, &prefix, false)?
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

    /// Stores `body` at `path` with one `PutObject`.
    fn put(&self, path: &RelativePath, body: Body<'_>) -> Result<()> {
        let key = self.key(path);
        self.client
            .send(&Request {
                method: "PUT",
                url: url(&self.bucket.put_object(None, &key)),
                headers: &object_headers(path),
                body,
            })
            .map(drop)
    }
}

/// The headers a site file is stored with, and later served with.
fn object_headers(path: &RelativePath) -> [(&'static str, &'static str); 2] {
    [
        ("content-type", content_type(path)),
        ("cache-control", cache_control(path)),
    ]
}

impl Storage for S3Storage {
    fn get(&self, path: &RelativePath) -> Result<Option<Vec<u8>>> {
        let key = self.key(path);
        let request = Request {
            method: "GET",
            url: url(&self.bucket.get_object(None, &key)),
            headers: &[],
            body: Body::Empty,
        };
        Ok(self.client.get_object(&request)?.map(|answer| answer.body))
    }

    fn size(&self, path: &RelativePath) -> Result<Option<u64>> {
        Ok(self.head(path)?.map(|info| info.size))
    }

    fn list(&self, prefix: &RelativePath) -> Result<Vec<RelativePath>> {
        let site_prefix = self.key_prefix();
        let folder = format!("{site_prefix}{prefix}/");
        let mut paths: Vec<RelativePath> =
            list::objects(&self.client, &self.bucket, &folder, true)?
                .into_iter()
                .filter_map(|(key, _)| key.strip_prefix(&site_prefix)?.parse().ok())
                .collect();
        paths.sort();
        Ok(paths)
    }

    fn put_bytes(&self, path: &RelativePath, bytes: &[u8]) -> Result<()> {
        self.put(path, Body::Bytes(bytes))
    }

    fn put_file(&self, path: &RelativePath, source: &Path) -> Result<()> {
        let size = std::fs::metadata(source)
            .map_err(|error| Error::Read {
                path: source.to_owned(),
                source: error,
            })?
            .len();
        if size > multipart::THRESHOLD {
            let key = self.key(path);
            return multipart::upload(
                &self.client,
                &self.bucket,
                &key,
                source,
                size,
                &object_headers(path),
            );
        }
        self.put(
            path,
            Body::File {
                path: source,
                offset: 0,
                length: size,
            },
        )
    }

    fn delete(&self, path: &RelativePath) -> Result<()> {
        // `DeleteObject` answers 204 whether or not the key existed, and a 404 reads
        // as absent: either way the file is gone.
        let key = self.key(path);
        let request = Request {
            method: "DELETE",
            url: url(&self.bucket.delete_object(None, &key)),
            headers: &[],
            body: Body::Empty,
        };
        self.client.send_optional(&request).map(drop)
    }

    fn modified(&self, path: &RelativePath) -> Result<Option<jiff::Timestamp>> {
        let Some(info) = self.head(path)? else {
            return Ok(None);
        };
        info.last_modified.map(Some).ok_or_else(|| Error::S3Answer {
            request: format!("HEAD {}", self.bucket.object_url(&self.key(path))).into(),
            source: Box::new(Malformed("no readable `Last-Modified` header")),
        })
    }
}

/// An HTTP date (RFC 9110's IMF-fixdate, `Sun, 06 Nov 1994 08:49:37 GMT`, which
/// RFC 2822 parsing accepts) as a timestamp.
fn http_date(text: &str) -> Option<jiff::Timestamp> {
    static PARSER: jiff::fmt::rfc2822::DateTimeParser = jiff::fmt::rfc2822::DateTimeParser::new();
    PARSER.parse_timestamp(text.trim()).ok()
}

#[cfg(test)]
mod tests;
