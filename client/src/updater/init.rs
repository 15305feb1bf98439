//! Setting up an install root ([`Updater::init`]) after checking the site it will
//! poll, and changing its configuration later ([`Updater::reconfigure`]).

use std::collections::BTreeSet;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;
use semver::Version;
use wavecast_schema::{
    Attributes, ChannelName, Envelope, InstallId, KeyId, Platform, Release, Role, VersionPin,
};

use crate::error::{Result, StoreError};
use crate::lifecycle::slots::SlotPaths;
use crate::net::limits::DownloadLimits;
use crate::net::manifest::{Expectations, fetch_manifest};
use crate::net::transport::{DefaultTransport, Transport};
use crate::net::url::BaseUrl;
use crate::store::access::{group_id, is_shared, share};
use crate::store::attributes::check_attribute_keys;
use crate::store::config::{Config, PinnedTrust};
use crate::store::root::{InstallRoot, create_dir_all};
use crate::store::state::State;
use crate::updater::{Updater, lock_and_recover};

/// What `init` writes. Start from [`InitOptions::new`], which fills in the defaults,
/// and set the fields that differ:
///
/// ```
/// use wavecast_client::{BaseUrl, InitOptions, PinnedTrust, TrustedKey};
///
/// let key = TrustedKey::from_argument("RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3")?;
/// let mut options = InitOptions::new(
///     BaseUrl::parse("https://updates.example.com/app")?,
///     PinnedTrust::Pubkey(key),
/// );
/// options.channel = "beta".parse()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct InitOptions {
    /// Base URLs of the site, tried in order.
    pub urls: Vec<BaseUrl>,
    /// Whom to trust: the publisher's public key, or a root file from the site.
    pub trust: PinnedTrust,
    /// The channel to follow.
    pub channel: ChannelName,
    /// The platform whose builds to install.
    pub platform: Platform,
    /// What the client declares about itself for rollout rules; never sent anywhere.
    pub attributes: Attributes,
    /// How slowly a host may send a file.
    pub download_limits: DownloadLimits,
    /// How long after its expiry a manifest is still accepted.
    pub expiry_grace: Duration,
    /// Rewrite the configuration of an initialized root (the state is kept).
    pub force: bool,
    /// The product the root installs. Checked against the site's manifest at
    /// `init`; by default the site's product is recorded.
    pub product: Option<String>,
    /// Write the configuration without fetching the site (an image built without
    /// network): nothing is verified until the first check, which records the
    /// site's product when `product` is `None`.
    pub offline: bool,
    /// A group to share the root with (a name or a number): its members, such as the
    /// application's own user, may then run `confirm`, `launched` and `status` (see
    /// [`Config::group`]).
    pub group: Option<String>,
}

impl InitOptions {
    /// Options for a root that polls `url` and trusts `trust`, with the defaults
    /// `wavecast-update init` has: the `stable` channel, this build's platform
    /// ([`BUILD_PLATFORM`](crate::BUILD_PLATFORM)), no attributes, the default
    /// [`DownloadLimits`], no grace for an expired manifest, the site's product, the
    /// site fetched and checked before anything is written, and a root only its
    /// owner may use.
    pub fn new(url: BaseUrl, trust: PinnedTrust) -> Self {
        Self {
            urls: vec![url],
            trust,
            channel: "stable".parse().expect("`stable` is a valid channel name"),
            platform: crate::BUILD_PLATFORM
                .parse()
                .expect("the build's target triple is a valid platform"),
            attributes: Attributes::new(),
            download_limits: DownloadLimits::default(),
            expiry_grace: Duration::ZERO,
            force: false,
            product: None,
            offline: false,
            group: None,
        }
    }
}

/// What [`Updater::init`] found on the site before writing anything: the verified
/// manifest of the channel, the same at every URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteSummary {
    /// The product the site publishes, now recorded as the root's.
    pub product: String,
    /// The channel.
    pub channel: ChannelName,
    /// The manifest's serial.
    pub serial: u64,
    /// The newest release for the configured platform that is not yanked, if any.
    pub newest: Option<Version>,
    /// The number of releases for the configured platform.
    pub releases: usize,
    /// The root the manifest is signed under.
    pub root_version: u64,
    /// The release keys of that root that signed the manifest.
    pub signed_by: Vec<KeyId>,
    /// The oldest client the manifest accepts; an older one updates itself first.
    pub min_client_version: Version,
    /// The URLs checked, each serving that manifest.
    pub urls: Vec<BaseUrl>,
}

/// A change to an initialized root's configuration, for [`Updater::reconfigure`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigChange {
    /// Follow this channel from now on. The highest serial seen is kept per channel,
    /// so switching back and forth never weakens rollback protection.
    pub channel: Option<ChannelName>,
    /// Attributes to set (added, or replacing the value of the same name).
    pub set_attributes: Attributes,
    /// Attribute names to remove; names that are not set are ignored. Removals apply
    /// before additions.
    pub unset_attributes: BTreeSet<String>,
    /// A new minimum average download speed, in bytes per second.
    pub min_speed: Option<u64>,
    /// A new grace before the download speed is judged.
    pub min_speed_grace: Option<Duration>,
    /// A new deadline per download.
    pub download_deadline: Option<Duration>,
    /// A new expiry grace.
    pub expiry_grace: Option<Duration>,
    /// A new health check command (`Some(None)` removes it).
    pub health_check: Option<Option<String>>,
    /// A new health check timeout (longer than zero).
    pub health_timeout: Option<Duration>,
    /// A new limit of unconfirmed launches (`0`: never roll back).
    pub max_unconfirmed_launches: Option<u32>,
    /// A new number of release trees to keep.
    pub keep_releases: Option<NonZeroU32>,
    /// A new on-activate hook for image slots (`Some(None)` removes it).
    pub on_activate: Option<Option<String>>,
    /// A new on-activate timeout (longer than zero).
    pub activate_timeout: Option<Duration>,
    /// A new path for slot `a` (relative to the install root unless absolute).
    pub slot_a: Option<PathBuf>,
    /// A new path for slot `b` (relative to the install root unless absolute).
    pub slot_b: Option<PathBuf>,
    /// A new pin (`Some(None)` removes it): the line of releases to stay on.
    pub pin: Option<Option<VersionPin>>,
    /// A new group to share the root with (`Some(None)`: none, only the owner). Given,
    /// the group and modes are set again even when it is the same group.
    pub group: Option<Option<String>>,
}

/// What `init` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitReport {
    /// The root's install id: new, or kept from an existing state file.
    pub install_id: InstallId,
    /// Whether an existing configuration was replaced (`--force`).
    pub reconfigured: bool,
    /// Whether an existing state (install id, serials, installed releases) was kept.
    pub kept_state: bool,
    /// What the site serves, as verified before the configuration was written;
    /// `None` with [`InitOptions::offline`].
    pub site: Option<SiteSummary>,
    /// The product the root installs, if known.
    pub product: Option<String>,
}

/// Fetches and verifies the channel's manifest at every URL of `options`, as a check
/// would, with the pinned trust and nothing seen before: what [`Updater::init`] makes
/// sure of before it writes anything. Every URL must serve a verified manifest of
/// the same product (`options.product`, when given).
fn verify_site(
    options: &InitOptions,
    now: Timestamp,
    transport: &dyn Transport,
) -> Result<SiteSummary> {
    let pinned = options.trust.root();
    let mut product = options.product.clone();
    let mut summary: Option<SiteSummary> = None;
    for base in &options.urls {
        let expect = Expectations {
            root: &pinned,
            channel: &options.channel,
            product: product.as_deref(),
            highest_serial: None,
            now,
            expiry_grace: options.expiry_grace,
            limits: options.download_limits,
            // A site that needs a newer client is still the right site: the client
            // updates itself first on its first update.
            client_floor: false,
        };
        let fetched = fetch_manifest(transport, base, &expect, None)?;
        product.get_or_insert_with(|| fetched.manifest.product.clone());
        if let Some(summary) = &mut summary {
            summary.urls.push(base.clone());
            continue;
        }
        let root = fetched.root.unwrap_or_else(|| pinned.clone());
        let signed_by = fetched
            .fresh
            .as_ref()
            .and_then(|(bytes, _)| Envelope::parse(bytes).ok())
            .map(|envelope| {
                root.signing_keys(
                    Role::Release,
                    envelope.manifest.as_bytes(),
                    &envelope.signatures,
                )
            })
            .unwrap_or_default();
        let manifest = &fetched.manifest;
        let for_platform: Vec<&Release> = manifest
            .releases
            .iter()
            .filter(|release| release.for_platform(&options.platform).is_some())
            .collect();
        summary = Some(SiteSummary {
            product: manifest.product.clone(),
            channel: manifest.channel.clone(),
            serial: manifest.serial,
            newest: for_platform
                .iter()
                .filter(|release| !release.rollout.yanked)
                .map(|release| release.version.clone())
                .max(),
            releases: for_platform.len(),
            root_version: root.version,
            signed_by,
            min_client_version: manifest.min_client_version.clone(),
            urls: vec![base.clone()],
        });
    }
    summary.ok_or_else(|| {
        StoreError::NoUrls {
            path: PathBuf::from("--url"),
        }
        .into()
    })
}

impl Updater {
    /// Sets up `root` (creating it if needed): writes the configuration and, unless
    /// one exists, a state file with a new random install id.
    ///
    /// An existing state is always kept, so re-initializing never changes a client's
    /// rollout buckets or forgets the serials it has seen. With
    /// [`InitOptions::group`], the root is shared with that group (see
    /// [`Config::group`]); re-initialized without one, it is shared with none.
    ///
    /// # Errors
    ///
    /// [`StoreError::InvalidAttributeKey`] for an attribute name rules cannot test;
    /// [`StoreError::UnknownGroup`]; [`StoreError::NotWritable`] when this user may not write
    /// in `ROOT/.wavecast`; [`StoreError::SetAccess`] when the group cannot be set;
    /// [`StoreError::AlreadyInitialized`] when `root` has a configuration and
    /// `options.force` is false; [`StoreError::ParseState`] when an existing state file is
    /// corrupt; I/O errors.
    pub fn init(
        root: impl AsRef<Path>,
        options: InitOptions,
        now: Timestamp,
    ) -> Result<InitReport> {
        Self::init_with_transport(root, options, now, &DefaultTransport::new())
    }

    /// [`init`](Self::init), fetching the site through `transport`.
    ///
    /// # Errors
    ///
    /// As [`init`](Self::init).
    pub fn init_with_transport(
        root: impl AsRef<Path>,
        options: InitOptions,
        now: Timestamp,
        transport: &dyn Transport,
    ) -> Result<InitReport> {
        check_attribute_keys(&options.attributes)?;
        let gid = options.group.as_deref().map(group_id).transpose()?;
        let site = if options.offline {
            None
        } else {
            Some(verify_site(&options, now, transport)?)
        };
        let product = options
            .product
            .clone()
            .or_else(|| site.as_ref().map(|site| site.product.clone()));
        let root = InstallRoot::new(root.as_ref());
        create_dir_all(&root.meta())?;
        let _lock = lock_and_recover(&root, Duration::ZERO)?;
        let config_path = root.config();
        let configured = std::fs::symlink_metadata(&config_path).is_ok();
        if configured && !options.force {
            return Err(StoreError::AlreadyInitialized {
                root: root.path().to_owned(),
            }
            .into());
        }
        let previous_trust = Config::load(&config_path)
            .ok()
            .flatten()
            .map(|config| config.trust);
        let (state, kept_state) = match State::load(&root.state())? {
            Some(mut state) => {
                // Roots walked from another pin say nothing about the new one.
                if previous_trust.as_ref() != Some(&options.trust) && state.trusted_root.is_some() {
                    state.trusted_root = None;
                    state.save(&root.state())?;
                }
                (state, true)
            }
            None => {
                let state = State::generate()?;
                state.save(&root.state())?;
                (state, false)
            }
        };
        let config = Config::new(
            options.urls,
            options.trust,
            options.channel,
            options.platform,
        )
        .with_attributes(options.attributes)
        .with_download_limits(options.download_limits)
        .with_expiry_grace(options.expiry_grace)
        .with_product(product.clone())
        .with_group(options.group);
        config.save(&config_path)?;
        if gid.is_some() || is_shared(&root) {
            share(&root, gid)?;
        }
        Ok(InitReport {
            install_id: state.install_id,
            reconfigured: configured,
            kept_state,
            site,
            product,
        })
    }

    /// Applies `change` to the configuration and saves it, under the root's lock.
    /// Returns whether anything changed (an unchanged configuration is not rewritten).
    ///
    /// The configuration is re-read under the lock first, so a concurrent change is
    /// not lost. Switching channels keeps every serial seen; the next check decides
    /// from the new channel's manifest, and a client whose release is newer than that
    /// channel's newest stays where it is.
    ///
    /// # Errors
    ///
    /// [`StoreError::InvalidAttributeKey`], [`StoreError::UnknownGroup`], the errors of
    /// [`Config::load`], [`StoreError::WriteFile`], or [`StoreError::SetAccess`].
    pub fn reconfigure(&mut self, change: &ConfigChange) -> Result<bool> {
        check_attribute_keys(&change.set_attributes)?;
        let gid = match &change.group {
            Some(Some(group)) => Some(group_id(group)?),
            _ => None,
        };
        let _lock = self.lock()?;
        let mut config =
            Config::load(&self.root.config())?.ok_or_else(|| StoreError::NotInitialized {
                root: self.root.path().to_owned(),
                config: self.root.config(),
            })?;
        let before = config.clone();
        if let Some(channel) = &change.channel {
            config.channel = channel.clone();
        }
        for key in &change.unset_attributes {
            config.attributes.remove(key);
        }
        config.attributes.extend(
            change
                .set_attributes
                .iter()
                .map(|(key, value)| (key.clone(), value.clone())),
        );
        let limits = &mut config.download_limits;
        limits.min_speed = change.min_speed.unwrap_or(limits.min_speed);
        limits.min_speed_grace = change.min_speed_grace.unwrap_or(limits.min_speed_grace);
        limits.deadline = change.download_deadline.unwrap_or(limits.deadline);
        config.expiry_grace = change.expiry_grace.unwrap_or(config.expiry_grace);
        let health = &mut config.health;
        if let Some(check) = &change.health_check {
            health.check.clone_from(check);
        }
        health.timeout = change.health_timeout.unwrap_or(health.timeout);
        health.max_unconfirmed_launches = change
            .max_unconfirmed_launches
            .unwrap_or(health.max_unconfirmed_launches);
        config.keep_releases = change.keep_releases.unwrap_or(config.keep_releases);
        let slots = &mut config.slots;
        if let Some(command) = &change.on_activate {
            slots.on_activate.clone_from(command);
        }
        slots.activate_timeout = change.activate_timeout.unwrap_or(slots.activate_timeout);
        if let Some(path) = &change.slot_a {
            slots.a = Some(path.clone());
        }
        if let Some(path) = &change.slot_b {
            slots.b = Some(path.clone());
        }
        if let Some(pin) = change.pin {
            config.pin = pin;
        }
        if let Some(group) = &change.group {
            config.group.clone_from(group);
        }
        SlotPaths::resolve(&self.root, &config.slots)?;
        let changed = config != before;
        if changed {
            config.save(&self.root.config())?;
        }
        if change.group.is_some() {
            share(&self.root, gid)?;
        }
        self.config = config;
        Ok(changed)
    }

    /// The transport every request goes through.
    /// Records `product` as the root's, for a root that did not know it (set up
    /// before products were recorded, or offline without `--product`): from its
    /// first verified manifest on, another product is refused.
    pub(super) fn record_product(&self, product: &str) -> Result<()> {
        let path = self.root.config();
        let mut config = Config::load(&path)?.unwrap_or_else(|| self.config.clone());
        config.product = Some(product.to_owned());
        Ok(config.save(&path)?)
    }
}
