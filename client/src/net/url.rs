//! Base URLs of sites, and joining validated site paths under them.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use wavecast_schema::RelativePath;

use crate::net::error::{Error, Result};

/// Where a site is served from: an `http://`, `https://` or `file://` URL that always
/// ends with `/`, so every site path joins under it.
///
/// A plain absolute folder path is accepted too and turned into a `file://` URL.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct BaseUrl(String);

impl BaseUrl {
    /// Parses a URL or an absolute folder path.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidUrl`] for other schemes, relative paths, URLs with a query or
    /// fragment (they would swallow the joined path), or a missing host.
    pub fn parse(text: &str) -> Result<Self> {
        let invalid = |reason| Error::InvalidUrl {
            url: text.to_owned(),
            reason,
        };
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(invalid("it is empty"));
        }
        if trimmed.chars().any(|c| c.is_control() || c.is_whitespace()) && trimmed.contains("://") {
            return Err(invalid(
                "URLs must not contain spaces or control characters",
            ));
        }
        let lower = trimmed.to_ascii_lowercase();
        let mut url = if let Some(scheme) = ["http://", "https://"]
            .iter()
            .find(|s| lower.starts_with(**s))
        {
            let rest = &trimmed[scheme.len()..];
            let host = rest.split('/').next().unwrap_or("");
            if host.is_empty() {
                return Err(invalid("the URL has no host"));
            }
            format!("{scheme}{rest}")
        } else if lower.starts_with("file://") {
            let url = format!("file://{}", &trimmed["file://".len()..]);
            if file_url_to_path(&url).is_none() {
                return Err(invalid(
                    "file URLs must look like file:///absolute/folder, on this machine",
                ));
            }
            url
        } else if trimmed.contains("://") {
            return Err(invalid(
                "use an http://, https:// or file:// URL, or a folder path",
            ));
        } else {
            let path = Path::new(trimmed);
            if !path.is_absolute() {
                return Err(invalid("folder paths must be absolute"));
            }
            path_to_file_url(trimmed)
        };
        if url.contains(['?', '#']) {
            return Err(invalid("base URLs cannot have a query or a fragment"));
        }
        if !url.ends_with('/') {
            url.push('/');
        }
        Ok(Self(url))
    }

    /// Like [`parse`](Self::parse) for a command-line argument: a folder path without
    /// a scheme is taken relative to `cwd`, and must be a folder that exists here, so
    /// that `127.0.0.1:8080` or `updates.example.com` (a forgotten `http://`) is not
    /// quietly taken for a folder. A folder that does not exist yet can be named
    /// with a `file://` URL.
    ///
    /// # Errors
    ///
    /// As [`parse`](Self::parse), and [`Error::NotAFolder`].
    pub fn from_argument(text: &str, cwd: &Path) -> Result<Self> {
        let trimmed = text.trim();
        if trimmed.contains("://") || trimmed.is_empty() {
            return Self::parse(trimmed);
        }
        let joined = std::path::absolute(cwd.join(trimmed)).unwrap_or_else(|_| cwd.join(trimmed));
        if !joined.is_dir() {
            return Err(Error::NotAFolder {
                argument: trimmed.to_owned(),
                path: joined,
            });
        }
        match joined.to_str() {
            Some(path) => Self::parse(path),
            None => Err(Error::InvalidUrl {
                url: text.to_owned(),
                reason: "folder paths must be valid UTF-8",
            }),
        }
    }

    /// The URL of the site file at `path`, each segment percent-encoded.
    pub fn join(&self, path: &RelativePath) -> String {
        let mut url = self.0.clone();
        percent_encode_into(path.as_str(), &mut url);
        url
    }

    /// The URL as text, ending with `/`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for BaseUrl {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        Self::parse(text)
    }
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BaseUrl({:?})", self.0)
    }
}

impl Serialize for BaseUrl {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for BaseUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Percent-encodes everything but unreserved characters and `/`.
fn percent_encode_into(text: &str, out: &mut String) {
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
}

/// The `file://` URL of the absolute folder `path`: `file:///srv/my%20site`. On
/// Windows, `C:\srv\my site` is `file:///C:/srv/my%20site` (RFC 8089): slashes for
/// backslashes, and one before the drive, whose colon stays as it is.
fn path_to_file_url(path: &str) -> String {
    let mut url = String::from("file://");
    #[cfg(windows)]
    let path = &path.replace('\\', "/");
    #[cfg(windows)]
    let path = match path.get(..2) {
        Some(drive) if is_drive(drive) => {
            url.push('/');
            url.push_str(drive);
            &path[2..]
        }
        _ => path,
    };
    percent_encode_into(path, &mut url);
    url
}

/// Whether `text` is a Windows drive, `C:`.
#[cfg(windows)]
fn is_drive(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':'
}

/// The local path of a `file:///abs/path` or `file://localhost/abs/path` URL, or
/// `None` for anything else (other hosts, bad escapes, non-UTF-8 results). On
/// Windows, `file:///C:/srv/site` is `C:/srv/site`.
pub(crate) fn file_url_to_path(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("file://")?;
    let rest = rest.strip_prefix("localhost").unwrap_or(rest);
    if !rest.starts_with('/') {
        return None;
    }
    let bytes = rest.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = rest.get(i + 1..i + 3)?;
            decoded.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            decoded.push(bytes[i]);
            i += 1;
        }
    }
    let path = String::from_utf8(decoded).ok()?;
    if path.contains('\0') {
        return None;
    }
    #[cfg(windows)]
    let path = match path.get(1..3) {
        Some(drive) if is_drive(drive) => path[1..].to_owned(),
        _ => path,
    };
    Some(PathBuf::from(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_gain_a_trailing_slash_and_join_with_encoding() {
        let base = BaseUrl::parse("https://cdn.example.com/app").unwrap();
        assert_eq!(base.as_str(), "https://cdn.example.com/app/");
        let path: RelativePath = "blobs/a b#c.tar.gz".parse().unwrap();
        assert_eq!(
            base.join(&path),
            "https://cdn.example.com/app/blobs/a%20b%23c.tar.gz"
        );
        let base = BaseUrl::parse("http://127.0.0.1:8080/").unwrap();
        assert_eq!(
            base.join(&"channels/stable.json".parse().unwrap()),
            "http://127.0.0.1:8080/channels/stable.json"
        );
    }

    #[test]
    fn folders_become_file_urls() {
        // An absolute folder of this platform, and its URL.
        #[cfg(unix)]
        let (folder, url) = ("/srv/my site", "file:///srv/my%20site/");
        #[cfg(windows)]
        let (folder, url) = (r"C:\srv\my site", "file:///C:/srv/my%20site/");
        let base = BaseUrl::parse(folder).unwrap();
        assert_eq!(base.as_str(), url);
        assert_eq!(BaseUrl::parse(url).unwrap(), base, "the URL reads back");
        assert_eq!(
            file_url_to_path(base.as_str()),
            Some(PathBuf::from(format!("{folder}/")))
        );
        let cwd = tempfile::tempdir().unwrap();
        std::fs::create_dir(cwd.path().join("site")).unwrap();
        let relative = BaseUrl::from_argument("site", cwd.path()).unwrap();
        #[cfg(unix)]
        let cwd_url = format!("file://{}", cwd.path().display());
        #[cfg(windows)]
        let cwd_url = format!(
            "file:///{}",
            cwd.path().to_str().unwrap().replace('\\', "/")
        );
        assert_eq!(relative.as_str(), format!("{cwd_url}/site/"));
        for forgotten_scheme in ["127.0.0.1:8080", "updates.example.com", "missing-site"] {
            let error = BaseUrl::from_argument(forgotten_scheme, cwd.path()).unwrap_err();
            assert!(matches!(error, Error::NotAFolder { .. }), "{error}");
        }
        assert!(BaseUrl::from_argument("file:///not/there/yet", cwd.path()).is_ok());
        let file = BaseUrl::parse("file:///srv/site").unwrap();
        assert_eq!(file.as_str(), "file:///srv/site/");
    }

    #[test]
    fn bad_urls_are_refused() {
        for bad in [
            "",
            "ftp://x/y",
            "https://",
            "https:///path",
            "https://host/x?y=1",
            "https://host/#frag",
            "relative/path",
            "file://otherhost/x",
            "file://relative",
            "https://ho st/",
        ] {
            assert!(BaseUrl::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn base_urls_round_trip_through_json() {
        let base = BaseUrl::parse("https://example.com").unwrap();
        let json = serde_json::to_string(&base).unwrap();
        assert_eq!(json, "\"https://example.com/\"");
        assert_eq!(serde_json::from_str::<BaseUrl>(&json).unwrap(), base);
    }
}
