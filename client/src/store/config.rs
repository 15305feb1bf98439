//! `ROOT/.wavecast/config.json`: where to update from and whom to trust.

use std::io;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};
use wavecast_schema::{Attributes, ChannelName, Platform, Root, VersionPin};

use crate::net::limits::DownloadLimits;
use crate::net::trust::TrustedKey;
use crate::net::url::BaseUrl;
use crate::store::error::{Error, Result};
use crate::store::root::write_json_atomically;
use crate::units::{duration_text, positive_duration};

/// The newest configuration format this build reads and writes.
pub const CONFIG_FORMAT: u32 = 1;

/// How many release trees are kept by default: the current one and the one before.
pub const DEFAULT_KEEP_RELEASES: NonZeroU32 = NonZeroU32::new(2).unwrap();

/// A client's configuration, written once by `init` (and again by `init --force`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// Format of this file.
    pub format: u32,
    /// Base URLs of the site, tried in order: later ones are mirrors.
    pub urls: Vec<BaseUrl>,
    /// Whom the client trusted at `init`: the start of its chain of roots.
    #[serde(flatten)]
    pub trust: PinnedTrust,
    /// The channel to follow.
    pub channel: ChannelName,
    /// The platform whose builds to install.
    pub platform: Platform,
    /// What this client declares about itself for rollout rules (region, tenant,
    /// server id…). Used only by the local decision, never sent anywhere. Configs
    /// written before attributes existed have none.
    #[serde(default, deserialize_with = "checked_attributes")]
    pub attributes: Attributes,
    /// How slowly a host may send the manifest or a blob before the client gives up
    /// on it and tries the next host. Configs written before the limits existed get
    /// the defaults.
    #[serde(default)]
    pub download_limits: DownloadLimits,
    /// How long after its `expires_at` a manifest is still accepted, for a clock that
    /// runs ahead (`"5m"`); by default none, so a manifest expires exactly when its
    /// publisher said. Every second of grace is a second more during which a host can
    /// freeze the client on an old manifest.
    #[serde(default, with = "duration_text")]
    pub expiry_grace: Duration,
    /// The health check run after each switch, and how many launches an unconfirmed
    /// release gets. Configurations written before health checks existed get the
    /// defaults (no check).
    #[serde(default)]
    pub health: HealthConfig,
    /// How many release trees to keep under `ROOT/releases` (at least 1, the current
    /// one): older ones are deleted after each install and rollback. Configurations
    /// written before pruning existed get the default, 2.
    #[serde(default = "default_keep_releases")]
    pub keep_releases: NonZeroU32,
    /// Where image modules are written (slots `a` and `b`) and the hook that activates
    /// them. Configurations written before image slots existed get the defaults.
    #[serde(default)]
    pub slots: SlotConfig,
    /// The product this root installs (the manifests' `product`), recorded at `init`
    /// from the verified site or `--product`: a manifest for another product is
    /// refused, so a key that signs several products cannot move a root to another
    /// one's releases. A root set up before products were recorded (or offline
    /// without `--product`) records the product of its first verified manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    /// The line of releases this root stays on (`config --pin 1.4`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin: Option<VersionPin>,
    /// The group the root is shared with (a name, or a number), if any: its members
    /// (the application's own user, say) may run `confirm`, `launched` and `status`,
    /// while only the owner may install, check, roll back or reconfigure. The modes of
    /// `ROOT/.wavecast` carry it out; this records what `init --group` or `config
    /// --group` set. Configurations written before groups existed have none.
    #[serde(default)]
    pub group: Option<String>,
}

fn default_keep_releases() -> NonZeroU32 {
    DEFAULT_KEEP_RELEASES
}

/// What a client pins at `init`. Stored in `config.json` as `"pubkey": "RW…"` or
/// `"root": {…}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PinnedTrust {
    /// The publisher's public key: root version 1 with that key alone.
    Pubkey(TrustedKey),
    /// A root file from the site (`--trusted-root`), checked at `init`.
    Root(Root),
}

impl PinnedTrust {
    /// The root this pin stands for.
    pub fn root(&self) -> Root {
        match self {
            Self::Pubkey(key) => key.root(),
            Self::Root(root) => root.clone(),
        }
    }
}

impl From<TrustedKey> for PinnedTrust {
    fn from(key: TrustedKey) -> Self {
        Self::Pubkey(key)
    }
}

impl Config {
    /// A configuration in the current format.
    pub fn new(
        urls: Vec<BaseUrl>,
        trust: PinnedTrust,
        channel: ChannelName,
        platform: Platform,
    ) -> Self {
        Self {
            format: CONFIG_FORMAT,
            urls,
            trust,
            channel,
            platform,
            attributes: Attributes::new(),
            download_limits: DownloadLimits::default(),
            expiry_grace: Duration::ZERO,
            health: HealthConfig::default(),
            keep_releases: DEFAULT_KEEP_RELEASES,
            slots: SlotConfig::default(),
            product: None,
            pin: None,
            group: None,
        }
    }

    /// The same configuration for `product`.
    pub fn with_product(mut self, product: Option<String>) -> Self {
        self.product = product;
        self
    }

    /// The same configuration declaring `attributes`.
    pub fn with_attributes(mut self, attributes: Attributes) -> Self {
        self.attributes = attributes;
        self
    }

    /// The same configuration with other download limits.
    pub fn with_download_limits(mut self, limits: DownloadLimits) -> Self {
        self.download_limits = limits;
        self
    }

    /// The same configuration with another expiry grace.
    pub fn with_expiry_grace(mut self, grace: Duration) -> Self {
        self.expiry_grace = grace;
        self
    }

    /// The same configuration shared with `group` (see [`group`](Self::group)).
    pub fn with_group(mut self, group: Option<String>) -> Self {
        self.group = group;
        self
    }

    /// Reads and checks the configuration at `path`; `None` when there is none.
    ///
    /// # Errors
    ///
    /// [`Error::ReadConfig`], [`Error::ParseConfig`],
    /// [`Error::UnsupportedFileFormat`] or [`Error::NoUrls`].
    pub fn load(path: &Path) -> Result<Option<Self>> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(Error::ReadConfig {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        let format =
            crate::store::state::peek_format(&bytes).map_err(|source| Error::ParseConfig {
                path: path.to_owned(),
                source,
            })?;
        if format > CONFIG_FORMAT {
            return Err(Error::UnsupportedFileFormat {
                path: path.to_owned(),
                found: format,
                supported: CONFIG_FORMAT,
            });
        }
        let config: Self = serde_json::from_slice(&bytes).map_err(|source| Error::ParseConfig {
            path: path.to_owned(),
            source,
        })?;
        if config.urls.is_empty() {
            return Err(Error::NoUrls {
                path: path.to_owned(),
            });
        }
        Ok(Some(config))
    }

    /// Writes the configuration to `path` atomically.
    ///
    /// # Errors
    ///
    /// [`Error::WriteFile`].
    pub fn save(&self, path: &Path) -> Result<()> {
        write_json_atomically(path, self)
    }
}

/// Reads the attributes map, refusing names a rule could not test.
fn checked_attributes<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<Attributes, D::Error> {
    let attributes = Attributes::deserialize(deserializer)?;
    crate::store::attributes::check_attribute_keys(&attributes)
        .map_err(serde::de::Error::custom)?;
    Ok(attributes)
}

/// How long a health check may run by default: 30 s.
pub const DEFAULT_HEALTH_TIMEOUT: Duration = Duration::from_secs(30);

/// How many launches an unconfirmed release gets by default before it is rolled back
/// at the next one: 3.
pub const DEFAULT_MAX_UNCONFIRMED_LAUNCHES: u32 = 3;

/// The `"health"` object of `config.json`. Configurations written before health
/// checks existed get the defaults: no check, a 30 s timeout, 3 unconfirmed launches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HealthConfig {
    /// The shell command run after every switch, if any.
    pub check: Option<String>,
    /// How long the command may run before it is killed and counts as failed.
    #[serde(
        deserialize_with = "positive_duration",
        serialize_with = "duration_text::serialize"
    )]
    pub timeout: Duration,
    /// How many times an unconfirmed release may be launched; the next launch rolls it
    /// back. `0` never rolls back (launches are still counted).
    pub max_unconfirmed_launches: u32,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            check: None,
            timeout: DEFAULT_HEALTH_TIMEOUT,
            max_unconfirmed_launches: DEFAULT_MAX_UNCONFIRMED_LAUNCHES,
        }
    }
}

impl HealthConfig {
    /// The configured health check, if there is one.
    pub fn health_check(&self) -> Option<HealthCheck> {
        self.check.as_ref().map(|command| HealthCheck {
            command: command.clone(),
            timeout: self.timeout,
        })
    }
}

/// A health check: `sh -c command`, killed after `timeout`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    /// The shell command.
    pub command: String,
    /// How long it may run.
    pub timeout: Duration,
}

/// How long the on-activate hook may run by default: 60 s.
pub const DEFAULT_ACTIVATE_TIMEOUT: Duration = Duration::from_secs(60);

/// The `"slots"` object of `config.json`. Configurations written before image slots
/// existed get the defaults: no hook, a 60 s timeout, the slots under `ROOT/slots/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SlotConfig {
    /// The shell command that activates a freshly written slot, if any. Without one a
    /// written and verified slot becomes active at once.
    pub on_activate: Option<String>,
    /// How long the hook may run before its processes are killed and it counts as
    /// failed.
    #[serde(
        deserialize_with = "positive_duration",
        serialize_with = "duration_text::serialize"
    )]
    pub activate_timeout: Duration,
    /// Slot `a`'s path (a file, or a partition or block device), relative to the
    /// install root unless absolute; `ROOT/slots/a` when unset.
    pub a: Option<PathBuf>,
    /// Slot `b`'s path; `ROOT/slots/b` when unset.
    pub b: Option<PathBuf>,
}

impl Default for SlotConfig {
    fn default() -> Self {
        Self {
            on_activate: None,
            activate_timeout: DEFAULT_ACTIVATE_TIMEOUT,
            a: None,
            b: None,
        }
    }
}

impl SlotConfig {
    /// The configured path of `slot`, if one is set.
    pub fn path(&self, slot: SlotName) -> Option<&Path> {
        match slot {
            SlotName::A => self.a.as_deref(),
            SlotName::B => self.b.as_deref(),
        }
    }
}

/// One of the two slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SlotName {
    /// Slot `a`.
    A,
    /// Slot `b`.
    B,
}

impl SlotName {
    /// Both slots, `a` first.
    pub const BOTH: [Self; 2] = [Self::A, Self::B];

    /// The other slot.
    pub fn other(self) -> Self {
        match self {
            Self::A => Self::B,
            Self::B => Self::A,
        }
    }

    /// `a` or `b`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::A => "a",
            Self::B => "b",
        }
    }
}

impl std::fmt::Display for SlotName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_round_trips_and_missing_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        assert_eq!(Config::load(&path).unwrap(), None);
        let (_, key) = crate::net::trust::tests::keypair();
        let config = Config::new(
            vec![BaseUrl::parse("https://example.com/site").unwrap()],
            key.into(),
            "stable".parse().unwrap(),
            crate::build_info::BUILD_PLATFORM.parse().unwrap(),
        );
        config.save(&path).unwrap();
        assert_eq!(Config::load(&path).unwrap(), Some(config.clone()));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("\"urls\": [\n    \"https://example.com/site/\""),
            "{text}"
        );
        assert!(text.contains("\"attributes\": {}"), "{text}");
        assert!(text.contains("\"pubkey\": \"RW"), "{text}");
        assert!(
            text.contains(
                "\"download_limits\": {\n    \"min_speed\": \"4KiB/s\",\n    \"min_speed_grace\": \"10s\",\n    \"deadline\": \"1h\"\n  }"
            ),
            "{text}"
        );
        assert!(text.contains("\"expiry_grace\": \"0s\""), "{text}");
        assert!(
            text.contains(
                "\"health\": {\n    \"check\": null,\n    \"timeout\": \"30s\",\n    \"max_unconfirmed_launches\": 3\n  },\n  \"keep_releases\": 2"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "\"slots\": {\n    \"on_activate\": null,\n    \"activate_timeout\": \"1m\",\n    \"a\": null,\n    \"b\": null\n  }"
            ),
            "{text}"
        );
        assert!(text.contains("\"group\": null"), "{text}");

        // A configuration written before attributes, download limits, the expiry
        // grace, health checks and pruning existed still loads, with the defaults.
        let mut old: serde_json::Value = serde_json::from_str(&text).unwrap();
        for field in [
            "attributes",
            "download_limits",
            "expiry_grace",
            "health",
            "keep_releases",
            "slots",
            "group",
        ] {
            old.as_object_mut().unwrap().remove(field);
        }
        std::fs::write(&path, old.to_string()).unwrap();
        assert_eq!(Config::load(&path).unwrap(), Some(config.clone()));

        let config = config
            .with_download_limits(DownloadLimits {
                min_speed: 0,
                min_speed_grace: Duration::from_secs(1),
                deadline: Duration::from_millis(2500),
            })
            .with_expiry_grace(Duration::from_secs(300));
        config.save(&path).unwrap();
        assert_eq!(Config::load(&path).unwrap(), Some(config.clone()));

        let config = config
            .with_attributes([("region".to_owned(), "eu".to_owned())].into())
            .with_group(Some("app".to_owned()));
        config.save(&path).unwrap();
        assert_eq!(Config::load(&path).unwrap(), Some(config.clone()));

        // A pinned root takes the key's place.
        let mut pinned = config;
        pinned.trust = PinnedTrust::Root(pinned.trust.root());
        pinned.save(&path).unwrap();
        assert_eq!(Config::load(&path).unwrap(), Some(pinned));
    }

    #[test]
    fn a_bad_config_names_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, b"{\"format\":1,\"urls\":[\"ftp://x\"]}").unwrap();
        let error = Config::load(&path).unwrap_err();
        assert!(matches!(error, Error::ParseConfig { .. }), "{error}");
        assert!(error.to_string().contains("config.json"), "{error}");
        let (_, key) = crate::net::trust::tests::keypair();
        let mut config: serde_json::Value = serde_json::to_value(Config::new(
            vec![BaseUrl::parse("https://example.com/site").unwrap()],
            key.into(),
            "stable".parse().unwrap(),
            "any".parse().unwrap(),
        ))
        .unwrap();
        config["attributes"] = serde_json::json!({"bad key": "x"});
        std::fs::write(&path, config.to_string()).unwrap();
        let error = Config::load(&path).unwrap_err();
        assert!(matches!(error, Error::ParseConfig { .. }), "{error}");
        config["attributes"] = serde_json::json!({});
        config["keep_releases"] = serde_json::json!(0);
        std::fs::write(&path, config.to_string()).unwrap();
        let error = Config::load(&path).unwrap_err();
        assert!(matches!(error, Error::ParseConfig { .. }), "{error}");
        std::fs::write(&path, b"{\"format\":9}").unwrap();
        let error = Config::load(&path).unwrap_err();
        assert!(
            matches!(error, Error::UnsupportedFileFormat { found: 9, .. }),
            "{error}"
        );
    }
}
