//! Where the credentials and the region come from: the environment variables and the
//! shared credentials file the AWS tools use, so a publisher needs no other setup.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The region used when none is given and neither `AWS_REGION` nor
/// `AWS_DEFAULT_REGION` is set.
pub const DEFAULT_REGION: &str = "us-east-1";

/// AWS credentials. `Debug` never shows the secret, so they can be logged with the
/// storage that holds them.
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
