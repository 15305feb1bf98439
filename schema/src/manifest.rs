//! The channel manifest: what a client polls, verifies and decides from.
//!
//! It carries what deciding needs (the releases, their rollouts, the platforms each
//! is built for) and nothing more: what a release installs on a platform is a
//! separate content-addressed document ([`crate::PlatformRelease`]), fetched only by
//! a client about to install it. The manifest names each by its size and blake3, so
//! it grows by a couple of hundred bytes per release, and it is written as compact
//! JSON.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use semver::Version;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ids::{Blake3Hash, ChannelName, Platform};
use crate::rollout::RolloutPlan;

/// The manifest, platform release, file index and pack format this build reads and
/// writes. Format 1 listed every module inline, with paths beside hashes; a format-1
/// document is refused by name ([`Error::UnsupportedFormat`]).
pub const FORMAT_VERSION: u32 = 2;

/// The JSON Schema (draft 2020-12) of [`Manifest`], as published in
/// `schema/manifest.schema.json`.
pub const MANIFEST_JSON_SCHEMA: &str = include_str!("../manifest.schema.json");

/// One channel's signed list of releases.
///
/// Clients must only parse a manifest whose signature they verified (see
/// [`crate::Envelope`]), then check `channel`, `serial` and `expires_at` against
/// their own state before acting on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Format of this document; a client refuses formats newer than it knows.
    pub format: u32,
    /// The product this site publishes, for display and sanity checks.
    pub product: String,
    /// The channel this manifest describes. A client refuses a manifest for another
    /// channel, so a host cannot swap `beta` in for `stable`.
    pub channel: ChannelName,
    /// Grows by at least one with every signed change. A client refuses a serial lower
    /// than the highest it has seen (rollback protection).
    pub serial: u64,
    /// When this manifest was signed.
    pub published_at: Timestamp,
    /// After this instant clients refuse the manifest (freeze protection): a host
    /// cannot keep serving an old manifest forever to hide newer releases.
    pub expires_at: Timestamp,
    /// The oldest client able to act on this manifest correctly. Older clients stop
    /// with an error rather than ignore fields they do not understand.
    pub min_client_version: Version,
    /// The version of the root (see [`crate::Root`]) whose release keys signed this
    /// manifest. A client walks its chain of roots up to this version before checking
    /// the signatures. Manifests written before roots existed were signed under root 1.
    #[serde(default = "first_root")]
    pub root_version: u64,
    /// Absolute `http://` or `https://` base URLs (each ending with `/`) that serve
    /// the site's blobs, tried in this order before the host that served the
    /// manifest. Signed with the rest, so a host cannot add one; every blob is still
    /// verified by its hash, whichever host sends it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub download_hosts: Vec<String>,
    /// Builds of the client itself (`wavecast-update`), by the target triple they run
    /// on: a client below `min_client_version` replaces its own executable with the
    /// build for its platform before anything else (see [`crate::client_update`]).
    /// Independent of the releases, so a broken application package never keeps a
    /// client from updating itself.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub updater: BTreeMap<Platform, UpdaterBuild>,
    /// Every live release, newest first.
    pub releases: Vec<Release>,
}

/// The version of a site's first root.
pub(crate) fn first_root() -> u64 {
    1
}

/// One published version of the product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    /// The release's version; releases are ordered by semver precedence.
    pub version: Version,
    /// When this release was first published.
    pub published_at: Timestamp,
    /// Release notes shown to users before they consent to install.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub notes: String,
    /// What to install, per platform (`any` matches every client): the release's
    /// [`crate::PlatformRelease`] document for that platform, at
    /// `blobs/<blake3>.json`.
    pub platforms: BTreeMap<Platform, Blob>,
    /// Which clients may take this release.
    pub rollout: RolloutPlan,
}

/// One build of the client executable, `wavecast-update`, for one platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdaterBuild {
    /// The version the build reports (`wavecast-update --version`); clients check
    /// it before they replace themselves with it.
    pub version: Version,
    /// A deterministic tar.gz holding one regular file, [`UPDATER_EXECUTABLE`].
    pub package: Blob,
    /// The executable's size, in bytes: clients stop unpacking past it.
    pub unpacked_size: u64,
}

/// The name of the executable inside an [`UpdaterBuild`]'s package.
pub const UPDATER_EXECUTABLE: &str = "wavecast-update";

/// A content-addressed, immutable file on the site, at `blobs/<blake3>.<extension>`
/// (the extension is its kind's: the document that refers to it says what it is).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Blob {
    /// Exact size in bytes. Clients read no more than this.
    pub size: u64,
    /// blake3 of the bytes. Clients verify it before using any of them.
    pub blake3: Blake3Hash,
}

impl Manifest {
    /// Deserializes and validates a manifest. Call it only on bytes whose signature
    /// has been verified.
    ///
    /// The bytes are checked against every [`crate::Limit`] first
    /// ([`crate::check_manifest`]), so a manifest past one costs a walk over its
    /// bytes and nothing more. A pattern used by several rules is compiled once.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        #[derive(Deserialize)]
        struct FormatOnly {
            format: u32,
        }
        // Read the format first, so a newer manifest is reported as "too new" rather
        // than as whatever field this build does not recognise.
        let format = serde_json::from_slice::<FormatOnly>(bytes)
            .map_err(|source| Error::Json {
                document: "manifest",
                source,
            })?
            .format;
        if format != FORMAT_VERSION {
            return Err(Error::UnsupportedFormat {
                document: "manifest",
                found: format,
                supported: FORMAT_VERSION,
            });
        }
        crate::limits::walk::check_manifest(bytes)?;
        let _shared = crate::rollout::SharedPatterns::begin();
        let manifest: Self = serde_json::from_slice(bytes).map_err(|source| Error::Json {
            document: "manifest",
            source,
        })?;
        manifest.validate()?;
        Ok(manifest)
    }

    /// The canonical bytes of this manifest, compact JSON: the text that gets signed
    /// and published.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("manifest types always serialize to JSON")
    }

    /// Checks the rules that serde's types cannot express.
    pub fn validate(&self) -> Result<()> {
        let invalid = |problem: String| Error::Invalid {
            document: "manifest",
            problem,
        };
        if self.format == 0 {
            return Err(invalid("format must be at least 1".into()));
        }
        if self.root_version == 0 {
            return Err(invalid("root_version must be at least 1".into()));
        }
        if self.expires_at <= self.published_at {
            return Err(invalid(format!(
                "expires_at {} is not after published_at {}",
                self.expires_at, self.published_at
            )));
        }
        let mut hosts = BTreeSet::new();
        for host in &self.download_hosts {
            check_download_host(host)
                .map_err(|problem| invalid(format!("download host `{host}`: {problem}")))?;
            if !hosts.insert(host) {
                return Err(invalid(format!("download host `{host}` is listed twice")));
            }
        }
        if self.updater.contains_key("any") {
            return Err(invalid(
                "an updater build is for one platform, not `any`".into(),
            ));
        }
        let mut versions = BTreeSet::new();
        for release in &self.releases {
            if !versions.insert(&release.version) {
                return Err(invalid(format!(
                    "release {} is listed twice",
                    release.version
                )));
            }
            release
                .validate()
                .map_err(|problem| invalid(format!("release {}: {problem}", release.version)))?;
        }
        Ok(())
    }

    /// The release with exactly this version, if it is live.
    pub fn release(&self, version: &Version) -> Option<&Release> {
        self.releases
            .iter()
            .find(|release| &release.version == version)
    }

    /// Sorts releases newest first, the order in which they are published.
    pub fn sort_releases(&mut self) {
        self.releases.sort_by(|a, b| b.version.cmp(&a.version));
    }
}

/// Normalises a download host given to the publisher: trims it and adds the
/// trailing `/`, then checks it as [`Manifest::validate`] does.
///
/// # Errors
///
/// A description of the problem, for an error message.
pub fn normalize_download_host(text: &str) -> std::result::Result<String, String> {
    let text = text.trim();
    let mut host = match text.split_once("://") {
        Some((scheme, rest)) => format!("{}://{rest}", scheme.to_ascii_lowercase()),
        None => text.to_owned(),
    };
    if !host.ends_with('/') {
        host.push('/');
    }
    check_download_host(&host)?;
    Ok(host)
}

/// The rules of a download host: `http` or `https`, a host name, no credentials,
/// query or fragment, no spaces or control characters, and a trailing `/`.
fn check_download_host(host: &str) -> std::result::Result<(), String> {
    let Some(rest) = ["http://", "https://"]
        .iter()
        .find_map(|scheme| host.strip_prefix(scheme))
    else {
        return Err("it must be an http:// or https:// URL (scheme in lower case)".into());
    };
    if host.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("it must not contain spaces or control characters".into());
    }
    let authority = rest.split('/').next().unwrap_or("");
    if authority.is_empty() {
        return Err("it has no host".into());
    }
    if authority.contains('@') {
        return Err("it must not carry credentials".into());
    }
    if host.contains(['?', '#']) {
        return Err("it must not have a query or a fragment".into());
    }
    if !host.ends_with('/') {
        return Err("it must end with `/`".into());
    }
    Ok(())
}

impl Release {
    /// The release's document for `platform`, falling back to the
    /// platform-independent `any`.
    pub fn for_platform(&self, platform: &Platform) -> Option<&Blob> {
        self.platforms
            .get(platform)
            .or_else(|| self.platforms.get("any"))
    }

    fn validate(&self) -> std::result::Result<(), String> {
        self.rollout.validate()?;
        if self.platforms.is_empty() {
            return Err("it has no platforms".into());
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::rollout::BasisPoints;

    pub(crate) fn blob(tag: &str) -> Blob {
        Blob {
            size: 100,
            blake3: Blake3Hash::of(tag.as_bytes()),
        }
    }

    pub(crate) fn release(version: &str, basis_points: u16) -> Release {
        Release {
            version: version.parse().unwrap(),
            published_at: "2026-11-01T00:00:00Z".parse().unwrap(),
            notes: format!("notes for {version}"),
            platforms: BTreeMap::from([("any".parse().unwrap(), blob(version))]),
            rollout: RolloutPlan::fixed(
                Blake3Hash::of(version.as_bytes()).as_str()[..32]
                    .parse()
                    .unwrap(),
                BasisPoints::new(basis_points).unwrap(),
            ),
        }
    }

    pub(crate) fn manifest(releases: Vec<Release>) -> Manifest {
        let mut manifest = Manifest {
            format: FORMAT_VERSION,
            product: "demo".into(),
            channel: "stable".parse().unwrap(),
            serial: 7,
            published_at: "2026-11-01T00:00:00Z".parse().unwrap(),
            expires_at: "2026-12-01T00:00:00Z".parse().unwrap(),
            min_client_version: "0.1.0".parse().unwrap(),
            root_version: 1,
            download_hosts: Vec::new(),
            updater: BTreeMap::new(),
            releases,
        };
        manifest.sort_releases();
        manifest
    }

    #[test]
    fn a_manifest_round_trips() {
        let original = manifest(vec![release("1.0.0", 10_000), release("1.1.0", 3000)]);
        let parsed = Manifest::parse(&original.to_json()).unwrap();
        assert_eq!(parsed, original);
        assert_eq!(parsed.releases[0].version.to_string(), "1.1.0");
    }

    #[test]
    fn other_formats_are_refused_by_name() {
        for format in [1, 3] {
            let mut value = serde_json::to_value(manifest(vec![])).unwrap();
            value["format"] = format.into();
            value["a_field_from_the_future"] = true.into();
            let error = Manifest::parse(value.to_string().as_bytes()).unwrap_err();
            assert!(
                matches!(error, Error::UnsupportedFormat { found, .. } if found == format),
                "{error}"
            );
        }
    }

    #[test]
    fn duplicate_versions_are_refused() {
        let bytes = manifest(vec![release("1.0.0", 100), release("1.0.0", 100)]).to_json();
        let error = Manifest::parse(&bytes).unwrap_err();
        assert!(error.to_string().contains("listed twice"), "{error}");
    }

    #[test]
    fn download_hosts_round_trip_and_bad_ones_are_refused() {
        let mut with_hosts = manifest(vec![release("1.0.0", 100)]);
        let bare = String::from_utf8(with_hosts.to_json()).unwrap();
        assert!(
            !bare.contains("download_hosts"),
            "an empty list is left out"
        );
        with_hosts.download_hosts = vec![
            "https://cdn.example.com/app/".into(),
            "http://127.0.0.1:8080/".into(),
        ];
        assert_eq!(Manifest::parse(&with_hosts.to_json()).unwrap(), with_hosts);
        for bad in [
            "ftp://cdn.example.com/",
            "https://cdn.example.com",
            "https://user:secret@cdn.example.com/",
            "https:///path/",
            "https://cdn.example.com/?x=1/",
            "https://cdn example.com/",
        ] {
            let mut broken = with_hosts.clone();
            broken.download_hosts = vec![bad.into()];
            assert!(Manifest::parse(&broken.to_json()).is_err(), "{bad:?}");
        }
        let mut twice = with_hosts.clone();
        twice.download_hosts.push("http://127.0.0.1:8080/".into());
        assert!(Manifest::parse(&twice.to_json()).is_err());
        assert_eq!(
            normalize_download_host(" https://cdn.example.com/app ").unwrap(),
            "https://cdn.example.com/app/"
        );
        assert!(normalize_download_host("file:///srv/site").is_err());
    }

    #[test]
    fn updater_builds_round_trip_and_none_is_for_any() {
        let mut with_updater = manifest(vec![release("1.0.0", 100)]);
        let bare = String::from_utf8(with_updater.to_json()).unwrap();
        assert!(!bare.contains("updater"), "an empty map is left out");
        let build = UpdaterBuild {
            version: "0.2.0".parse().unwrap(),
            package: blob("updater"),
            unpacked_size: 1234,
        };
        with_updater
            .updater
            .insert("aarch64-apple-darwin".parse().unwrap(), build.clone());
        assert_eq!(
            Manifest::parse(&with_updater.to_json()).unwrap(),
            with_updater
        );
        with_updater.updater.insert("any".parse().unwrap(), build);
        let error = Manifest::parse(&with_updater.to_json()).unwrap_err();
        assert!(error.to_string().contains("not `any`"), "{error}");
    }

    #[test]
    fn expiry_must_follow_publication() {
        let mut broken = manifest(vec![]);
        broken.expires_at = broken.published_at;
        assert!(Manifest::parse(&broken.to_json()).is_err());
    }

    #[test]
    fn every_manifest_matches_the_published_json_schema() {
        let schema: serde_json::Value = serde_json::from_str(MANIFEST_JSON_SCHEMA).unwrap();
        let validator = jsonschema::validator_for(&schema).unwrap();
        let mut with_dest = release("2.0.0-beta.1", 50);
        with_dest.rollout.share = crate::Share::ramped("1%@0h,100%@3d".parse().unwrap());
        with_dest.rollout.started_at = Some("2026-11-01T00:00:00Z".parse().unwrap());
        with_dest.rollout.cap = crate::BasisPoints::new(5000);
        with_dest.rollout.paused_at = Some("2026-11-02T00:00:00Z".parse().unwrap());
        with_dest.rollout.rules = [
            "old: from < 2 -> mandatory",
            "eu: region in eu|uk; user ~ [0-9]+ -> 5%",
            "lab: server ^= lab -> exclude",
            "ramp: tier = gold -> 2d",
        ]
        .iter()
        .map(|text| text.parse().unwrap())
        .collect();
        let mut sample = manifest(vec![release("1.0.0", 10_000), with_dest]);
        sample.download_hosts = vec!["https://cdn.example.com/app/".into()];
        sample.updater.insert(
            "x86_64-unknown-linux-gnu".parse().unwrap(),
            UpdaterBuild {
                version: "0.2.0".parse().unwrap(),
                package: blob("updater"),
                unpacked_size: 5_000_000,
            },
        );
        let instance = serde_json::to_value(&sample).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&instance)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{errors:#?}");

        let mut broken = instance.clone();
        broken["releases"][0]["rollout"]["basis_points"] = 10_001.into();
        assert!(
            !validator.is_valid(&broken),
            "the schema must bound basis points"
        );
        let mut broken = instance.clone();
        broken["download_hosts"][0] = "ftp://cdn.example.com/".into();
        assert!(
            !validator.is_valid(&broken),
            "the schema must check download host schemes"
        );
        let mut broken = instance.clone();
        broken["updater"]["any"] = broken["updater"]["x86_64-unknown-linux-gnu"].clone();
        assert!(
            !validator.is_valid(&broken),
            "the schema must refuse an updater build for `any`"
        );
        let mut broken = instance.clone();
        broken["updater"]["x86_64-unknown-linux-gnu"]["version"] = "two".into();
        assert!(
            !validator.is_valid(&broken),
            "the schema must check updater versions"
        );
        let mut broken = instance;
        broken["releases"][0]["platforms"]["any"]["blake3"] = "xyz".into();
        assert!(
            !validator.is_valid(&broken),
            "the schema must check hash shape"
        );
    }
}
