//! The [`Updater`] facade: one install root, its configuration, and the operations
//! the `wavecast-update` commands perform.

pub(crate) mod choose;
pub(crate) mod self_update;

use std::collections::BTreeSet;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;
use semver::Version;
use wavecast_schema::{
    Attributes, BasisPoints, ChannelName, ClientView, Envelope, Exclusion, InstallId, KeyId,
    Manifest, Mode, Offer, Outcome, Platform, Release, Role, Root, Rule, VersionPin, Withdrawal,
    decide_skipping,
};

use crate::error::{Error, Result};
use crate::install::commit::{Recovery, recover};
use crate::install::fetch::Cache;
use crate::install::plan::UpdatePlan;
use crate::install::reporter::Reporter;
use crate::install::{InstallOutcome, InstallPlan, InstallReport, install_release, plan_install};
use crate::lifecycle::command::HealthStatus;
use crate::lifecycle::health::{
    CheckTarget, ConfirmReport, HealthCheckFailure, LaunchOutcome, LaunchReport, RollbackReport,
    fallback_release, previous_release, roll_back, run_health_check,
};
use crate::lifecycle::prune::prune_releases;
use crate::lifecycle::slots::{
    ImageTarget, SlotActivation, Slots, SlotsStatus, image_module, tree_part,
};
use crate::net::limits::DownloadLimits;
use crate::net::manifest::{Expectations, Stored, fetch_manifest};
use crate::net::transport::{DefaultTransport, Transport};
use crate::net::url::BaseUrl;
use crate::store::access::{group_id, is_shared, share};
use crate::store::attributes::check_attribute_keys;
use crate::store::config::HealthCheck;
use crate::store::config::SlotConfig;
use crate::store::config::{Config, PinnedTrust};
use crate::store::current::{CurrentRelease, read_current, release_dir_name};
use crate::store::journal::{InterruptedInstall, read as read_journal};
use crate::store::root::{InstallRoot, create_dir_all, write_atomically};
use crate::store::slots::SlotPaths;
use crate::store::state::{BadReason, BadRelease, Trial, start_trial, trial_of};
use crate::store::state::{InstalledRelease, State, StoredManifest};
use crate::updater::choose::HeldBack;

/// How long [`Updater::confirm`] and [`Updater::launched`] wait for another run
/// (a poll, an install) to release the root: 10 s.
pub const LOCK_PATIENCE: Duration = Duration::from_secs(10);

/// What `init` writes.
#[derive(Debug, Clone)]
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

/// How [`Updater::check_with`] decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOptions {
    /// [`Mode::Scheduled`] follows the rollout; [`Mode::Manual`] (`--now`) skips
    /// shares and ramps, never a pause, a yank, an excluding rule or a cap.
    pub mode: Mode,
    /// Attributes for this check only, over the configured ones (these win).
    pub attributes: Attributes,
    /// Read a manifest that needs a newer client too, instead of failing with
    /// [`Error::ClientTooOld`] (`list` shows such a channel). A report read this way
    /// cannot be installed: [`Updater::install`] refuses it.
    pub ignore_client_floor: bool,
}

impl Default for CheckOptions {
    fn default() -> Self {
        Self {
            mode: Mode::Scheduled,
            attributes: Attributes::new(),
            ignore_client_floor: false,
        }
    }
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

/// The rollout test that settled a [`CheckReport`], in owned form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RolloutCheck {
    /// This client's bucket for the release, `0..10000`.
    pub bucket: u16,
    /// The release's threshold at the time of the check (after any cap); the client
    /// is in when `bucket < threshold`, unless a rule or an exclusion says otherwise.
    pub threshold: BasisPoints,
    /// Why the release keeps this client out regardless of time, if it does.
    pub exclusion: Option<Exclusion>,
}

/// The outcome of [`Updater::check`]: a verified manifest and the decision taken
/// from it. Only `check` creates one, so a report's target always comes from a
/// manifest whose signature, channel, expiry and serial were checked.
#[derive(Debug, Clone)]
pub struct CheckReport {
    outcome: Outcome,
    current: Option<CurrentRelease>,
    target: Option<Release>,
    newest: Option<Version>,
    applied: Option<RolloutCheck>,
    applied_version: Option<Version>,
    rule: Option<Rule>,
    mandatory: bool,
    withdrawn: Option<Withdrawal>,
    eligible_at: Option<Timestamp>,
    mode: Mode,
    attributes: Attributes,
    manifest: Manifest,
    served_by: BaseUrl,
    download_hosts: Vec<BaseUrl>,
    manifest_url: String,
    platform: Platform,
    checked_at: Timestamp,
    not_modified: bool,
    skipped: Vec<BadRelease>,
    held_back: Vec<HeldBack>,
    pinned_out: Option<Version>,
    pin: Option<VersionPin>,
}

impl CheckReport {
    /// Every release newer than the installed one that does not admit this client
    /// now, newest first, each with what keeps it out: for a deferral, all it waits
    /// for.
    pub fn held_back(&self) -> &[HeldBack] {
        &self.held_back
    }

    /// The newest release (not yanked, newer than the installed one) that the
    /// client's pin keeps it from, if any.
    pub fn pinned_out(&self) -> Option<&Version> {
        self.pinned_out.as_ref()
    }

    /// The line the client is pinned to, if any.
    pub fn pin(&self) -> Option<VersionPin> {
        self.pin
    }

    /// This report with `outcome` and `release` as its target.
    pub(crate) fn with_target(mut self, outcome: Outcome, release: Release) -> Self {
        self.outcome = outcome;
        self.target = Some(release);
        self
    }

    /// Records `offer` as the rollout test that settled the (chosen) target, taken in
    /// `mode`.
    pub(crate) fn settle(&mut self, offer: &Offer<'_>, mode: Mode) {
        self.applied = Some(RolloutCheck {
            bucket: offer.applied.bucket,
            threshold: offer.applied.threshold,
            exclusion: offer.applied.exclusion,
        });
        self.applied_version = Some(offer.applied.release.version.clone());
        self.rule = offer.applied.rule.cloned();
        self.mandatory = offer.mandatory;
        self.withdrawn = None;
        self.eligible_at = None;
        self.mode = mode;
    }

    /// The releases the manifest offers, newer than the installed one, that this
    /// client skipped because they are marked bad here (they failed a health check,
    /// were never confirmed, or were rolled back).
    pub fn skipped(&self) -> &[BadRelease] {
        &self.skipped
    }

    /// Whether the host answered that the manifest had not changed since the last
    /// check (`304 Not Modified`), so the stored envelope was verified again instead
    /// of downloaded.
    pub fn not_modified(&self) -> bool {
        self.not_modified
    }

    /// Update, up to date, or deferred.
    pub fn outcome(&self) -> Outcome {
        self.outcome
    }

    /// The release installed when the check ran.
    pub fn current(&self) -> Option<&CurrentRelease> {
        self.current.as_ref()
    }

    /// The release to install, for [`Outcome::Update`].
    pub fn target(&self) -> Option<&Release> {
        self.target.as_ref()
    }

    /// The newest release published for this client's platform.
    pub fn newest(&self) -> Option<&Version> {
        self.newest.as_ref()
    }

    /// The rollout test that settled the decision (see
    /// [`Decision::applied`](wavecast_schema::Decision::applied)).
    pub fn rollout(&self) -> Option<RolloutCheck> {
        self.applied
    }

    /// The release whose rollout test settled the decision.
    pub fn rollout_version(&self) -> Option<&Version> {
        self.applied_version.as_ref()
    }

    /// The rollout rule that applied to this client in that test, if one matched.
    pub fn rule(&self) -> Option<&Rule> {
        self.rule.as_ref()
    }

    /// Why the release of the rollout test keeps this client out regardless of time
    /// (paused, yanked, excluded by a rule, capped), if it does.
    pub fn exclusion(&self) -> Option<Exclusion> {
        self.applied.and_then(|applied| applied.exclusion)
    }

    /// Whether the update is mandatory (a `mandatory` rule matched): it installs
    /// without asking.
    pub fn mandatory(&self) -> bool {
        self.mandatory
    }

    /// Why the installed release must be left (yanked, or capped below this client's
    /// bucket), if it must; the target may then be older than the installed release.
    pub fn withdrawn(&self) -> Option<Withdrawal> {
        self.withdrawn
    }

    /// Whether the target is older than the installed release (a move back from a
    /// withdrawn release).
    pub fn is_downgrade(&self) -> bool {
        match (&self.target, &self.current) {
            (Some(target), Some(current)) => target.version < current.version,
            _ => false,
        }
    }

    /// For a deferral, the first instant a newer release admits this client as the
    /// manifest stands (ramps), or `None` when only a change to the manifest can.
    pub fn eligible_at(&self) -> Option<Timestamp> {
        self.eligible_at
    }

    /// The mode the decision was taken in.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The attributes the decision saw: the configured ones with the check's own over
    /// them.
    pub fn attributes(&self) -> &Attributes {
        &self.attributes
    }

    /// The verified manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The channel.
    pub fn channel(&self) -> &ChannelName {
        &self.manifest.channel
    }

    /// The manifest's serial.
    pub fn serial(&self) -> u64 {
        self.manifest.serial
    }

    /// The base URL that served the manifest.
    pub fn served_by(&self) -> &BaseUrl {
        &self.served_by
    }

    /// The hosts blobs are downloaded from, in the order they are tried: the
    /// manifest's signed `download_hosts`, then the base URL that served it, then
    /// the other configured base URLs. Each appears once.
    pub fn download_hosts(&self) -> &[BaseUrl] {
        &self.download_hosts
    }

    /// The manifest's own URL.
    pub fn manifest_url(&self) -> &str {
        &self.manifest_url
    }

    /// The platform the decision was made for.
    pub fn platform(&self) -> &Platform {
        &self.platform
    }

    /// The clock reading the manifest was checked against.
    pub fn checked_at(&self) -> Timestamp {
        self.checked_at
    }
}

/// The outcome of [`Updater::status`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReport {
    /// The release `current` points to.
    pub current: Option<CurrentRelease>,
    /// Every release tree recorded in the state, in installation order.
    pub installed: Vec<InstalledRelease>,
    /// The configured channel.
    pub channel: ChannelName,
    /// The configured platform.
    pub platform: Platform,
    /// The configured attributes.
    pub attributes: Attributes,
    /// The configured base URLs.
    pub urls: Vec<BaseUrl>,
    /// This client's install id.
    pub install_id: InstallId,
    /// The highest manifest serial seen on the configured channel.
    pub highest_serial: Option<u64>,
    /// When a manifest was last fetched and verified.
    pub last_check: Option<Timestamp>,
    /// The trial of the current release while it is unconfirmed.
    pub trial: Option<Trial>,
    /// The releases marked bad on this machine, oldest mark first.
    pub bad_releases: Vec<BadRelease>,
    /// The image slots, once an image module was installed here.
    pub slots: Option<SlotsStatus>,
    /// An install a run left unfinished (killed, or failed after its tree was
    /// built), which the next check or update finishes or undoes.
    pub interrupted: Option<InterruptedInstall>,
}

/// Takes the lock of `root`, waiting up to `wait`, and finishes or undoes an
/// interrupted install before anything else happens under it. Only the root's owner
/// may: this process must be able to write in `ROOT/.wavecast`.
fn lock_and_recover(root: &InstallRoot, wait: Duration) -> Result<std::fs::File> {
    require_writable(root)?;
    let lock = root.lock(wait)?;
    recover(root)?;
    Ok(lock)
}

/// Fails unless this process may write in `ROOT/.wavecast`, as the root's owner may,
/// before anything is fetched or written.
fn require_writable(root: &InstallRoot) -> Result<()> {
    root.writable().map_err(|source| Error::NotWritable {
        path: root.meta(),
        source,
    })
}

/// One install root and the operations on it.
#[derive(Debug)]
pub struct Updater {
    root: InstallRoot,
    config: Config,
    transport: Box<dyn Transport>,
    packages_only: bool,
    health_check: Option<HealthCheck>,
    slots: Option<SlotConfig>,
    lock_wait: Duration,
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
    summary.ok_or_else(|| Error::NoUrls {
        path: PathBuf::from("--url"),
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
    /// [`Error::InvalidAttributeKey`] for an attribute name rules cannot test;
    /// [`Error::UnknownGroup`]; [`Error::NotWritable`] when this user may not write
    /// in `ROOT/.wavecast`; [`Error::SetAccess`] when the group cannot be set;
    /// [`Error::AlreadyInitialized`] when `root` has a configuration and
    /// `options.force` is false; [`Error::ParseState`] when an existing state file is
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
            return Err(Error::AlreadyInitialized {
                root: root.path().to_owned(),
            });
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

    /// Opens an initialized install root, with the [`DefaultTransport`].
    ///
    /// # Errors
    ///
    /// [`Error::NotInitialized`] when `root` has no configuration, or the errors of
    /// [`Config::load`].
    pub fn open(root: impl AsRef<Path>) -> Result<Self> {
        let root = InstallRoot::new(root.as_ref());
        let config = Config::load(&root.config())?.ok_or_else(|| Error::NotInitialized {
            root: root.path().to_owned(),
            config: root.config(),
        })?;
        Ok(Self {
            root,
            config,
            transport: Box::new(DefaultTransport::new()),
            packages_only: false,
            health_check: None,
            slots: None,
            lock_wait: Duration::ZERO,
        })
    }

    /// Replaces the transport (for tests, or to add a scheme).
    pub fn with_transport(mut self, transport: Box<dyn Transport>) -> Self {
        self.transport = transport;
        self
    }

    /// With `true`, [`install`](Self::install) and [`plan`](Self::plan) take every
    /// module's whole package, as before differential updates: no local copies,
    /// patches or file copies (`update --full`).
    pub fn with_packages_only(mut self, packages_only: bool) -> Self {
        self.packages_only = packages_only;
        self
    }

    /// Runs `check` after each switch instead of the configured health check
    /// (`update --health-check`).
    pub fn with_health_check(mut self, check: HealthCheck) -> Self {
        self.health_check = Some(check);
        self
    }

    /// Uses `slots` for image modules instead of the configured slots and hook
    /// (`update --on-activate`).
    pub fn with_slot_config(mut self, slots: SlotConfig) -> Self {
        self.slots = Some(slots);
        self
    }

    /// The slots and hook for image modules: the ones given to
    /// [`with_slot_config`](Self::with_slot_config), else the configured ones.
    pub fn slot_config(&self) -> &SlotConfig {
        self.slots.as_ref().unwrap_or(&self.config.slots)
    }

    /// The health check [`install`](Self::install) runs: the one given to
    /// [`with_health_check`](Self::with_health_check), else the configured one.
    pub fn health_check(&self) -> Option<HealthCheck> {
        self.health_check
            .clone()
            .or_else(|| self.config.health.health_check())
    }

    /// When another run holds the root's lock, wait up to `wait` for it (polling)
    /// instead of failing at once with [`Error::Locked`].
    pub fn with_lock_wait(mut self, wait: Duration) -> Self {
        self.lock_wait = wait;
        self
    }

    /// Takes the root's lock, then finishes or undoes an install that a killed run
    /// left in the journal, and removes what such a run leaves behind. Every
    /// operation that takes the lock does this first; calling it alone tells what
    /// was found and done.
    ///
    /// # Errors
    ///
    /// [`Error::Locked`], journal and state errors, and [`Error::Recover`] when the
    /// interrupted install cannot be finished (the journal stays for the next run).
    pub fn recover(&self) -> Result<Option<Recovery>> {
        require_writable(&self.root)?;
        let _lock = self.root.lock(self.lock_wait)?;
        recover(&self.root)
    }

    /// The install root.
    pub fn root(&self) -> &InstallRoot {
        &self.root
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
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
    /// [`Error::InvalidAttributeKey`], [`Error::UnknownGroup`], the errors of
    /// [`Config::load`], [`Error::WriteFile`], or [`Error::SetAccess`].
    pub fn reconfigure(&mut self, change: &ConfigChange) -> Result<bool> {
        check_attribute_keys(&change.set_attributes)?;
        let gid = match &change.group {
            Some(Some(group)) => Some(group_id(group)?),
            _ => None,
        };
        let _lock = self.lock()?;
        let mut config =
            Config::load(&self.root.config())?.ok_or_else(|| Error::NotInitialized {
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

    /// Fetches and verifies the channel manifest, records its serial and the check
    /// time, and decides what this client should run on the rollout's schedule with
    /// the configured attributes: [`check_with`](Self::check_with) and the default
    /// [`CheckOptions`].
    ///
    /// # Errors
    ///
    /// As [`check_with`](Self::check_with).
    pub fn check(&self, now: Timestamp) -> Result<CheckReport> {
        self.check_with(now, &CheckOptions::default())
    }

    /// Fetches and verifies the channel manifest, records its serial and the check
    /// time, and decides what this client should run in `options.mode`, declaring the
    /// configured attributes with `options.attributes` over them. The attributes
    /// only feed the local decision; no request carries them.
    ///
    /// The base URLs are tried in order; the first whose manifest passes every check,
    /// and arrives within the configured download limits, is used. When none does,
    /// the first URL's error is returned. A manifest that expired is refused once the
    /// configured expiry grace has passed too.
    ///
    /// # Errors
    ///
    /// Any manifest error ([`Error::FetchManifest`], [`Error::VerifySignature`],
    /// [`Error::Rollback`], [`Error::ManifestExpired`], [`Error::TooSlow`]…), state errors, or
    /// [`Error::CurrentNotSymlink`]; [`Error::InvalidAttributeKey`] for an attribute
    /// name rules cannot test.
    pub fn check_with(&self, now: Timestamp, options: &CheckOptions) -> Result<CheckReport> {
        check_attribute_keys(&options.attributes)?;
        let mut attributes = self.config.attributes.clone();
        attributes.extend(
            options
                .attributes
                .iter()
                .map(|(key, value)| (key.clone(), value.clone())),
        );
        let _lock = self.lock()?;
        let mut state = self.load_state()?;
        let current = read_current(&self.root, &state)?;
        let channel = &self.config.channel;
        let trusted_root = self.trusted_root(&state);
        let expect = Expectations {
            root: &trusted_root,
            channel,
            product: self.config.product.as_deref(),
            highest_serial: state.highest_serial(channel),
            now,
            expiry_grace: self.config.expiry_grace,
            limits: self.config.download_limits,
            client_floor: !options.ignore_client_floor,
        };
        let stored_path = self.root.manifests().join(format!("{channel}.json"));
        let stored_envelope = state
            .manifests
            .get(channel)
            .and_then(|_| std::fs::read(&stored_path).ok());
        let stored = state
            .manifests
            .get(channel)
            .zip(stored_envelope.as_deref())
            .map(|(record, envelope)| Stored {
                url: &record.url,
                validators: &record.validators,
                envelope,
            });
        let mut first_error = None;
        let mut verified = None;
        for base in &self.config.urls {
            match fetch_manifest(self.transport.as_ref(), base, &expect, stored) {
                Ok(fetched) => {
                    verified = Some((fetched, base.clone()));
                    break;
                }
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        let Some((fetched, served_by)) = verified else {
            return Err(first_error.unwrap_or(Error::NoUrls {
                path: self.root.config(),
            }));
        };
        let (manifest, manifest_url) = (fetched.manifest, fetched.url);
        if self.config.product.is_none() {
            self.record_product(&manifest.product)?;
        }
        if let Some(root) = fetched.root {
            state.trusted_root = Some(root);
        }
        let not_modified = fetched.fresh.is_none();
        if let Some((envelope, validators)) = fetched.fresh {
            // The envelope is written before the state names it, so validators are
            // never sent for an envelope that is not on disk.
            if validators.is_empty() {
                state.manifests.remove(channel);
            } else {
                create_dir_all(&self.root.manifests())?;
                write_atomically(&stored_path, &envelope)?;
                state.manifests.insert(
                    channel.clone(),
                    StoredManifest {
                        url: manifest_url.clone(),
                        validators,
                    },
                );
            }
        }

        let highest = state
            .highest_serial(channel)
            .unwrap_or(0)
            .max(manifest.serial);
        state.highest_serial.insert(channel.clone(), highest);
        state.last_check = Some(now);
        state.save(&self.root.state())?;

        let view = ClientView {
            install_id: &state.install_id,
            platform: &self.config.platform,
            current: current.as_ref().map(|current| &current.version),
            attributes: &attributes,
            pin: self.config.pin.as_ref(),
        };
        let decision = decide_skipping(&manifest, &view, now, options.mode, &state.bad_versions());
        let skipped = state
            .bad_releases
            .iter()
            .filter(|bad| {
                manifest
                    .release(&bad.version)
                    .is_some_and(|release| release.for_platform(&self.config.platform).is_some())
                    && current
                        .as_ref()
                        .is_none_or(|current| bad.version > current.version)
            })
            .cloned()
            .collect();
        let applied = decision.applied.map(|applied| RolloutCheck {
            bucket: applied.bucket,
            threshold: applied.threshold,
            exclusion: applied.exclusion,
        });
        let applied_version = decision
            .applied
            .map(|applied| applied.release.version.clone());
        let rule = decision.applied.and_then(|applied| applied.rule).cloned();
        let held_back = decision
            .held_back
            .iter()
            .map(HeldBack::from_offer)
            .collect();
        let pinned_out = decision.pinned_out.map(|release| release.version.clone());
        let target = decision.target.cloned();
        let newest = decision.newest.map(|release| release.version.clone());
        let (outcome, mandatory, withdrawn, eligible_at) = (
            decision.outcome,
            decision.mandatory,
            decision.withdrawn,
            decision.eligible_at,
        );
        let download_hosts = self.download_hosts(&manifest, &served_by);
        Ok(CheckReport {
            download_hosts,
            outcome,
            current,
            target,
            newest,
            applied,
            applied_version,
            rule,
            mandatory,
            withdrawn,
            eligible_at,
            mode: options.mode,
            attributes,
            manifest,
            served_by,
            manifest_url,
            platform: self.config.platform.clone(),
            checked_at: now,
            not_modified,
            skipped,
            held_back,
            pinned_out,
            pin: self.config.pin,
        })
    }

    /// Installs the target of `report` and makes it current, recording `now` as the
    /// install time. Progress goes to `reporter`.
    ///
    /// The install is differential: files already on disk (in any installed release,
    /// under any path) are copied, changed files are rebuilt from patches, new ones
    /// from their compressed copies, and a module's whole package is downloaded only
    /// when that is cheaper or the site lacks what the plan needs (see
    /// [`plan`](Self::plan)). Blobs come from the report's
    /// [`download_hosts`](CheckReport::download_hosts), each asked of the next host
    /// when one fails to send it intact (or within the configured download limits), through the download cache (an interrupted download is
    /// resumed), and every file is verified by blake3 as it is written. A target
    /// older than the installed release (a move back) installs the same way, except
    /// that a tree of it still under `releases/` is switched to without downloading
    /// when it matches the release's file indexes
    /// ([`InstallOutcome::Reused`](crate::InstallOutcome)). Until `current` is
    /// switched, any failure leaves the previous release current and removes the
    /// partial tree; a run killed at any point is finished or undone by the next
    /// one (see [`InstallStep`](crate::InstallStep)). After a successful install the
    /// download cache is pruned.
    ///
    /// Before downloading anything, the install checks that the root's file system
    /// has room for what is still to download plus the unpacked tree and a margin.
    ///
    /// After the switch the release is on trial, unconfirmed (see
    /// [`confirm`](Self::confirm) and [`launched`](Self::launched)), and the
    /// [`health_check`](Self::health_check), if any, runs in the new tree. When it
    /// fails or times out, `current` is switched back to the release that was current
    /// before, the new one is marked bad (the decision skips it from then on) and
    /// [`Error::HealthCheckFailed`] is returned. Last, release trees beyond the
    /// configured number to keep are deleted.
    ///
    /// A release with an image module first writes the image into the inactive slot
    /// and activates it ([`SlotConfig`], [`InstallReport::image`]); only then is
    /// the release tree of its other modules (empty for an image-only release)
    /// installed as above. A failed activation leaves everything as it was and marks
    /// the release bad; a failure after it (the tree, the health check) also switches
    /// the slots back.
    ///
    /// # Errors
    ///
    /// [`Error::NothingToInstall`] when the report offers no update;
    /// [`Error::NotEnoughSpace`]; [`Error::HealthCheckFailed`] or
    /// [`Error::RunHealthCheck`] after a rollback; [`Error::ActivationFailed`] or
    /// [`Error::RunActivation`] when an image was not activated; download,
    /// verification, unpacking and file-system errors.
    pub fn install(
        &self,
        report: &CheckReport,
        now: Timestamp,
        reporter: &dyn Reporter,
    ) -> Result<InstallReport> {
        let release = report.target().ok_or(Error::NothingToInstall)?;
        let running = crate::net::manifest::client_version();
        if report.manifest.min_client_version > running {
            // A report read with `ignore_client_floor`: this client may not act on it.
            return Err(Error::ClientTooOld {
                url: report.manifest_url.clone(),
                required: report.manifest.min_client_version.clone(),
                running,
            });
        }
        let _lock = self.lock()?;
        let mut state = self.load_state()?;
        let before = read_current(&self.root, &state)?;
        let tree = tree_part(release);
        let image = self.install_image(report, release, &tree, &mut state, now, reporter)?;
        let plan = InstallPlan {
            transport: self.transport.as_ref(),
            hosts: &report.download_hosts,
            root: &self.root,
            platform: &report.platform,
            release: &tree,
            manifest: &report.manifest,
            now,
            reporter,
            packages_only: self.packages_only,
            limits: self.config.download_limits,
        };
        let mut installed = match install_release(&plan, &mut state) {
            Ok(installed) => installed,
            Err(error) => {
                self.revert_image(image.as_ref())?;
                return Err(error);
            }
        };
        installed.image = image;
        if installed.outcome == InstallOutcome::AlreadyCurrent {
            return Ok(installed);
        }
        let switched = CurrentRelease {
            version: installed.version.clone(),
            dir: installed.dir.clone(),
        };
        // The trial is saved before the check runs: if the client dies during the
        // check, launch counting still guards the unchecked release.
        start_trial(&mut state, &switched, before.as_ref(), now);
        state.save(&self.root.state())?;
        if let Some(check) = self.health_check() {
            let checked = self.run_check(
                &check,
                &switched,
                before.as_ref(),
                &mut state,
                now,
                reporter,
            );
            if checked.is_err() {
                self.revert_image(installed.image.as_ref())?;
            }
            installed.health_check = Some(checked?);
        }
        installed.pruned_releases =
            prune_releases(&self.root, &mut state, self.config.keep_releases)?;
        Ok(installed)
    }

    /// Writes and activates the image module of `release`, if it has one, for
    /// [`install`](Self::install); `tree` is its tree part.
    fn install_image(
        &self,
        report: &CheckReport,
        release: &Release,
        tree: &Release,
        state: &mut State,
        now: Timestamp,
        reporter: &dyn Reporter,
    ) -> Result<Option<SlotActivation>> {
        let Some((name, module)) = image_module(release, &report.platform) else {
            return Ok(None);
        };
        let dir = tree
            .for_platform(&report.platform)
            .map(|modules| release_dir_name(&release.version, modules))
            .unwrap_or_default();
        let cache = Cache::open(
            &self.root,
            self.transport.as_ref(),
            &report.download_hosts,
            reporter,
            self.config.download_limits,
        )?;
        let target = ImageTarget {
            version: &release.version,
            name,
            module,
            dir: &dir,
            packages_only: self.packages_only,
        };
        Slots::open(&self.root, self.slot_config())?
            .install(&cache, &target, state, now)
            .map(Some)
    }

    /// Switches the slots back after a step that followed `image`'s activation
    /// failed.
    fn revert_image(&self, image: Option<&SlotActivation>) -> Result<()> {
        match image {
            Some(image) => Slots::open(&self.root, self.slot_config())?.revert(image),
            None => Ok(()),
        }
    }

    /// Runs the health check of `switched`, just made current instead of `before`;
    /// on failure rolls back to `before`, marks `switched` bad and prunes.
    fn run_check(
        &self,
        check: &HealthCheck,
        switched: &CurrentRelease,
        before: Option<&CurrentRelease>,
        state: &mut State,
        now: Timestamp,
        reporter: &dyn Reporter,
    ) -> Result<crate::lifecycle::command::HealthCheckReport> {
        reporter.on_health_check(&switched.version, &check.command, check.timeout);
        let release_dir = self.root.releases().join(&switched.dir);
        let target = CheckTarget {
            root: self.root.path(),
            release_dir: &release_dir,
            version: &switched.version,
            previous: before.map(|before| &before.version),
        };
        let back_to = before.map(|before| before.dir.as_str());
        let health = match run_health_check(check, &target) {
            Ok(health) => health,
            Err(source) => {
                roll_back(&self.root, state, switched, back_to, None, now)?;
                return Err(Error::RunHealthCheck {
                    version: switched.version.clone(),
                    command: check.command.clone(),
                    rolled_back_to: before.map(|before| before.version.clone()),
                    source,
                });
            }
        };
        if health.status.passed() {
            return Ok(health);
        }
        let reason = if health.status == HealthStatus::TimedOut {
            BadReason::HealthCheckTimedOut
        } else {
            BadReason::HealthCheckFailed
        };
        let detail = format!("health check `{}` {}", health.command, health.describe());
        roll_back(
            &self.root,
            state,
            switched,
            back_to,
            Some((reason, detail)),
            now,
        )?;
        let pruned = prune_releases(&self.root, state, self.config.keep_releases)?;
        Err(Error::HealthCheckFailed(Box::new(HealthCheckFailure {
            version: switched.version.clone(),
            dir: switched.dir.clone(),
            report: health,
            rolled_back_to: before.map(|before| before.version.clone()),
            pruned,
        })))
    }

    /// Marks the current release healthy (`wavecast-update confirm`): its trial ends,
    /// so launches no longer count towards a rollback. Confirming a release that is
    /// confirmed already changes nothing. Waits up to [`LOCK_PATIENCE`] for another
    /// run to release the root. A member of the root's group may confirm: it writes
    /// only the trial file.
    ///
    /// # Errors
    ///
    /// [`Error::NothingInstalled`], [`Error::Locked`], state errors.
    pub fn confirm(&self) -> Result<ConfirmReport> {
        let (_lock, _) = self.lock_for_trial()?;
        let mut state = self.load_state()?;
        let current = self.require_current(&state)?;
        let launches = trial_of(&state, &current).map(|trial| trial.launches);
        // A trial of another release is stale (`current` was switched by hand).
        if state.trial.take().is_some() {
            state.save_trial(&self.root.state())?;
        }
        Ok(ConfirmReport {
            release: current,
            launches,
        })
    }

    /// Records one start of the application (`wavecast-update launched`, called by a
    /// launcher before it starts `current`). A confirmed release counts nothing. An
    /// unconfirmed one counts the launch; once it has more launches than the
    /// configured `max_unconfirmed_launches` (unless that is 0), `current` is switched
    /// back to the release its trial falls back to (the last one running before it),
    /// it is marked bad, and the release trees beyond the number to keep are
    /// deleted. The image slots follow the rollback as in [`rollback`](Self::rollback).
    /// Waits up to [`LOCK_PATIENCE`] for another run to release the root. A member of
    /// the root's group may count launches (it writes only the trial file), but only
    /// the owner may roll back.
    ///
    /// # Errors
    ///
    /// [`Error::NothingInstalled`], [`Error::Locked`], state and file-system errors;
    /// the slot errors of [`rollback`](Self::rollback), with nothing rolled back;
    /// [`Error::RollbackNotAllowed`] when a member's launch is one too many (it is
    /// counted).
    pub fn launched(&self, now: Timestamp) -> Result<LaunchReport> {
        let (_lock, not_owner) = self.lock_for_trial()?;
        let mut state = self.load_state()?;
        let current = self.require_current(&state)?;
        let limit = self.config.health.max_unconfirmed_launches;
        let Some(trial) = state
            .trial
            .as_mut()
            .filter(|trial| trial.dir == current.dir)
        else {
            return Ok(LaunchReport {
                release: current,
                outcome: LaunchOutcome::Confirmed,
            });
        };
        trial.launches = trial.launches.saturating_add(1);
        let launches = trial.launches;
        let fallback = (limit != 0 && launches > limit)
            .then(|| fallback_release(&self.root, &state, &current).cloned());
        let outcome = match fallback {
            None => LaunchOutcome::Counted { launches, limit },
            Some(None) => LaunchOutcome::NoFallback { launches, limit },
            Some(Some(_)) if let Some(source) = not_owner => {
                state.save_trial(&self.root.state())?;
                return Err(Error::RollbackNotAllowed {
                    version: current.version,
                    launches,
                    limit,
                    path: self.root.meta(),
                    source,
                });
            }
            Some(Some(to)) => {
                Slots::open(&self.root, self.slot_config())?
                    .follow(&current.version, &to.version)?;
                let detail =
                    format!("not confirmed after {launches} launches (at most {limit} allowed)");
                roll_back(
                    &self.root,
                    &mut state,
                    &current,
                    Some(&to.dir),
                    Some((BadReason::Unconfirmed, detail)),
                    now,
                )?;
                let pruned = prune_releases(&self.root, &mut state, self.config.keep_releases)?;
                return Ok(LaunchReport {
                    release: current,
                    outcome: LaunchOutcome::RolledBack {
                        launches,
                        limit,
                        to: CurrentRelease {
                            version: to.version,
                            dir: to.dir,
                        },
                        pruned,
                    },
                });
            }
        };
        state.save_trial(&self.root.state())?;
        Ok(LaunchReport {
            release: current,
            outcome,
        })
    }

    /// Takes the lock for [`confirm`](Self::confirm) and [`launched`](Self::launched),
    /// which the root's group may run too. The owner's run first finishes or undoes
    /// an interrupted install, as every locked operation does; a member's run may not
    /// write `releases/` or `current`, so it leaves that to the owner's next run.
    /// Returns the lock and, for a member's run, why it may not write
    /// `ROOT/.wavecast`.
    fn lock_for_trial(&self) -> Result<(std::fs::File, Option<std::io::Error>)> {
        let lock = self.root.lock(self.lock_wait.max(LOCK_PATIENCE))?;
        let not_owner = self.root.writable().err();
        if not_owner.is_none() {
            recover(&self.root)?;
        }
        Ok((lock, not_owner))
    }

    /// Clears the bad mark of `version` (`wavecast-update unmark`): updates may
    /// install it again, and `rollback` may return to its tree while it is on disk.
    /// Returns the mark cleared.
    ///
    /// # Errors
    ///
    /// [`Error::NotMarkedBad`] (naming the versions that are marked),
    /// [`Error::Locked`], [`Error::NotWritable`], state errors.
    pub fn unmark(&self, version: &Version) -> Result<BadRelease> {
        let _lock = self.lock()?;
        let mut state = self.load_state()?;
        let cleared = state.unmark(version).ok_or_else(|| Error::NotMarkedBad {
            version: version.clone(),
            marked: state
                .bad_releases
                .iter()
                .map(|bad| bad.version.clone())
                .collect(),
        })?;
        state.save(&self.root.state())?;
        Ok(cleared)
    }

    /// Returns to the previous release on request (`wavecast-update rollback`): the
    /// newest one installed before the current one whose tree is still on disk and
    /// that is not marked bad. The release left is marked bad unless `mark_bad` is
    /// false (`--keep`), in which case the next update may install it again. Release
    /// trees beyond the number to keep are deleted afterwards.
    ///
    /// The image slots follow first: when the other slot holds the older release's
    /// image, it is hashed again, activated by the hook and made active
    /// ([`RollbackReport::image`]); when the hook fails nothing is rolled back.
    ///
    /// # Errors
    ///
    /// [`Error::NothingInstalled`], [`Error::NothingToRollBackTo`], [`Error::Locked`],
    /// [`Error::NoImageToRollBackTo`] when the active slot holds the current release's
    /// image and the other slot not the older one's, [`Error::ActivationFailed`],
    /// state and file-system errors.
    pub fn rollback(&self, mark_bad: bool, now: Timestamp) -> Result<RollbackReport> {
        let _lock = self.lock()?;
        let mut state = self.load_state()?;
        let current = self.require_current(&state)?;
        let to = previous_release(&self.root, &state, &current)
            .cloned()
            .ok_or_else(|| Error::NothingToRollBackTo {
                version: current.version.clone(),
            })?;
        let mark = mark_bad.then(|| {
            (
                BadReason::RolledBack,
                format!("rolled back to {} on request", to.version),
            )
        });
        let image =
            Slots::open(&self.root, self.slot_config())?.follow(&current.version, &to.version)?;
        roll_back(&self.root, &mut state, &current, Some(&to.dir), mark, now)?;
        let pruned = prune_releases(&self.root, &mut state, self.config.keep_releases)?;
        Ok(RollbackReport {
            from: current,
            to: CurrentRelease {
                version: to.version,
                dir: to.dir,
            },
            marked_bad: mark_bad,
            pruned,
            image,
        })
    }

    fn require_current(&self, state: &State) -> Result<CurrentRelease> {
        read_current(&self.root, state)?.ok_or_else(|| Error::NothingInstalled {
            root: self.root.path().to_owned(),
        })
    }

    /// Plans how [`install`](Self::install) would obtain the target of `report`,
    /// module by module and file by file, without installing or downloading anything
    /// but file indexes (which are cached): `update --dry-run`. An image module is
    /// left out: it goes to a slot, not the release tree.
    ///
    /// # Errors
    ///
    /// [`Error::NothingToInstall`] when the report offers no update;
    /// [`Error::NoBuildForPlatform`]; the errors of fetching a file index (every
    /// install checks its tree against them, so none can be done without); state and
    /// file-system errors.
    pub fn plan(&self, report: &CheckReport) -> Result<UpdatePlan> {
        let release = tree_part(report.target().ok_or(Error::NothingToInstall)?);
        let _lock = self.lock()?;
        let state = self.load_state()?;
        let plan = InstallPlan {
            transport: self.transport.as_ref(),
            hosts: &report.download_hosts,
            root: &self.root,
            platform: &report.platform,
            release: &release,
            manifest: &report.manifest,
            now: report.checked_at,
            reporter: &crate::install::reporter::NoReporter,
            packages_only: self.packages_only,
            limits: self.config.download_limits,
        };
        plan_install(&plan, &state)
    }

    /// The release `current` points to, if any.
    ///
    /// # Errors
    ///
    /// State errors, [`Error::CurrentNotSymlink`], [`Error::UnrecognizedCurrent`].
    pub fn current(&self) -> Result<Option<CurrentRelease>> {
        read_current(&self.root, &self.load_state()?)
    }

    /// What is installed and configured, from local files only. It takes no lock and
    /// writes nothing: an interrupted install is reported, not recovered.
    ///
    /// # Errors
    ///
    /// State and journal errors, [`Error::CurrentNotSymlink`],
    /// [`Error::UnrecognizedCurrent`].
    pub fn status(&self) -> Result<StatusReport> {
        let state = self.load_state()?;
        let slots = Slots::open(&self.root, self.slot_config())?;
        let slots = slots.recorded().then(|| slots.status());
        let current = read_current(&self.root, &state)?;
        let trial = current
            .as_ref()
            .and_then(|current| trial_of(&state, current))
            .cloned();
        Ok(StatusReport {
            current,
            trial,
            bad_releases: state.bad_releases.clone(),
            highest_serial: state.highest_serial(&self.config.channel),
            installed: state.installed,
            channel: self.config.channel.clone(),
            platform: self.config.platform.clone(),
            attributes: self.config.attributes.clone(),
            urls: self.config.urls.clone(),
            install_id: state.install_id,
            last_check: state.last_check,
            slots,
            interrupted: read_journal(&self.root)?,
        })
    }

    /// The hosts blobs of `manifest` are downloaded from, in order: its signed
    /// `download_hosts`, then `served_by` (the base URL that served it), then the
    /// other configured base URLs, each once.
    pub(crate) fn download_hosts(&self, manifest: &Manifest, served_by: &BaseUrl) -> Vec<BaseUrl> {
        let mut download_hosts: Vec<BaseUrl> = Vec::new();
        let signed = manifest
            .download_hosts
            .iter()
            .filter_map(|host| BaseUrl::parse(host).ok());
        let configured = self.config.urls.iter().cloned();
        for host in signed
            .chain(std::iter::once(served_by.clone()))
            .chain(configured)
        {
            if !download_hosts.contains(&host) {
                download_hosts.push(host);
            }
        }
        download_hosts
    }

    /// The transport every request goes through.
    /// Records `product` as the root's, for a root that did not know it (set up
    /// before products were recorded, or offline without `--product`): from its
    /// first verified manifest on, another product is refused.
    fn record_product(&self, product: &str) -> Result<()> {
        let path = self.root.config();
        let mut config = Config::load(&path)?.unwrap_or_else(|| self.config.clone());
        config.product = Some(product.to_owned());
        config.save(&path)
    }

    pub(crate) fn transport(&self) -> &dyn Transport {
        self.transport.as_ref()
    }

    /// The newest root this client trusts: the one it walked to, or the pinned one.
    pub(crate) fn trusted_root(&self, state: &State) -> Root {
        let pinned = self.config.trust.root();
        match &state.trusted_root {
            Some(walked) if walked.version > pinned.version => walked.clone(),
            _ => pinned,
        }
    }

    /// Takes the root's lock (waiting as configured), then recovers.
    pub(crate) fn lock(&self) -> Result<std::fs::File> {
        lock_and_recover(&self.root, self.lock_wait)
    }

    pub(crate) fn load_state(&self) -> Result<State> {
        let path = self.root.state();
        State::load(&path)?.ok_or(Error::MissingState { path })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use wavecast_schema::{
        Blake3Hash, Blob, EntryKind, Envelope, FORMAT_VERSION, FileIndex, FileMode, IndexEntry,
        Module, PlatformRelease, RolloutPlan,
    };

    use super::*;
    use crate::install::InstallOutcome;
    use crate::install::reporter::NoReporter;
    use crate::install::unpack::tests::{Raw, package};
    use crate::net::trust::tests::{keypair, sign};

    const NOW: &str = "2026-11-21T12:00:00Z";

    /// A site in a temporary folder, signed with a fresh key.
    struct Site {
        dir: tempfile::TempDir,
        pair: minisign::KeyPair,
        key: crate::net::trust::TrustedKey,
        releases: Vec<Release>,
    }

    impl Site {
        fn new() -> Self {
            let (pair, key) = keypair();
            Self {
                dir: tempfile::tempdir().unwrap(),
                pair,
                key,
                releases: Vec::new(),
            }
        }

        fn url(&self) -> BaseUrl {
            BaseUrl::parse(self.dir.path().to_str().unwrap()).unwrap()
        }

        /// Adds a release whose single module holds `files`, then publishes `serial`.
        fn release(
            &mut self,
            version: &str,
            files: &[(&str, &[u8])],
            basis_points: u16,
            serial: u64,
        ) {
            let entries: Vec<Raw<'_>> = files
                .iter()
                .map(|(path, content)| Raw(path, tar::EntryType::Regular, 0o644, content))
                .collect();
            let bytes = package(&entries);
            let blake3 = Blake3Hash::of(&bytes);
            let path =
                wavecast_site::layout::blob(&blake3, wavecast_site::layout::BlobKind::Package);
            std::fs::create_dir_all(self.dir.path().join("blobs")).unwrap();
            std::fs::write(self.dir.path().join(path.as_str()), &bytes).unwrap();
            let module = Module {
                version: version.parse().unwrap(),
                kind: wavecast_schema::ModuleKind::Tree,
                dest: None,
                package: Blob {
                    path,
                    size: bytes.len() as u64,
                    blake3,
                },
                unpacked_size: files.iter().map(|(_, content)| content.len() as u64).sum(),
                file_index: self.file_index(files),
            };
            self.releases.push(Release {
                version: version.parse().unwrap(),
                published_at: "2026-11-01T00:00:00Z".parse().unwrap(),
                notes: format!("notes for {version}"),
                platforms: BTreeMap::from([(
                    "any".parse().unwrap(),
                    PlatformRelease {
                        modules: BTreeMap::from([("app".parse().unwrap(), module)]),
                    },
                )]),
                rollout: RolloutPlan::fixed(
                    "00112233445566778899aabbccddeeff".parse().unwrap(),
                    BasisPoints::new(basis_points).unwrap(),
                ),
            });
            self.publish(serial);
        }

        /// Stores the file index of a module holding `files` (mode 644) on the site.
        fn file_index(&self, files: &[(&str, &[u8])]) -> Blob {
            let entries = files
                .iter()
                .map(|(path, content)| IndexEntry {
                    path: path.parse().unwrap(),
                    kind: EntryKind::File {
                        size: content.len() as u64,
                        blake3: Blake3Hash::of(content),
                        packed_size: 0,
                    },
                    mode: FileMode::from_permissions(0o644),
                })
                .collect();
            let bytes = serde_json::to_vec(&FileIndex::new(entries)).unwrap();
            let blake3 = Blake3Hash::of(&bytes);
            let path =
                wavecast_site::layout::blob(&blake3, wavecast_site::layout::BlobKind::FileIndex);
            std::fs::write(self.dir.path().join(path.as_str()), &bytes).unwrap();
            Blob {
                path,
                size: bytes.len() as u64,
                blake3,
            }
        }

        /// Changes the rollout of release `index` and publishes `serial`.
        fn change_rollout(
            &mut self,
            index: usize,
            serial: u64,
            change: impl FnOnce(&mut RolloutPlan),
        ) {
            change(&mut self.releases[index].rollout);
            self.publish(serial);
        }

        fn publish(&self, serial: u64) {
            let mut manifest = Manifest {
                format: FORMAT_VERSION,
                product: "demo".into(),
                channel: "stable".parse().unwrap(),
                serial,
                published_at: "2026-11-01T00:00:00Z".parse().unwrap(),
                expires_at: "2026-12-01T00:00:00Z".parse().unwrap(),
                min_client_version: "0.1.0".parse().unwrap(),
                root_version: 1,
                download_hosts: Vec::new(),
                updater: BTreeMap::new(),
                releases: self.releases.clone(),
            };
            manifest.sort_releases();
            let text = String::from_utf8(manifest.to_json()).unwrap();
            let envelope = Envelope::new(text.clone(), vec![sign(&self.pair, text.as_bytes())]);
            std::fs::create_dir_all(self.dir.path().join("channels")).unwrap();
            std::fs::write(
                self.dir.path().join("channels/stable.json"),
                envelope.to_json(),
            )
            .unwrap();
        }

        fn init(&self, root: &Path) -> InitReport {
            Updater::init(
                root,
                InitOptions {
                    urls: vec![self.url()],
                    trust: self.key.clone().into(),
                    channel: "stable".parse().unwrap(),
                    platform: "x86_64-unknown-linux-gnu".parse().unwrap(),
                    attributes: Attributes::new(),
                    download_limits: DownloadLimits::default(),
                    expiry_grace: Duration::ZERO,
                    force: false,
                    product: None,
                    offline: true,
                    group: None,
                },
                "2026-11-21T12:00:00Z".parse().unwrap(),
            )
            .unwrap()
        }
    }

    fn now() -> Timestamp {
        NOW.parse().unwrap()
    }

    #[test]
    fn check_install_update_and_status() {
        let mut site = Site::new();
        site.release(
            "1.0.0",
            &[("bin/app", b"one"), ("README", b"read me")],
            10_000,
            1,
        );
        let root = tempfile::tempdir().unwrap();
        let first = site.init(root.path());
        let updater = Updater::open(root.path()).unwrap();

        let report = updater.check(now()).unwrap();
        assert_eq!(report.outcome(), Outcome::Update);
        assert_eq!(report.target().unwrap().version.to_string(), "1.0.0");
        assert!(report.current().is_none());
        let installed = updater.install(&report, now(), &NoReporter).unwrap();
        assert_eq!(installed.outcome, InstallOutcome::Installed);
        assert_eq!(
            std::fs::read(root.path().join("current/bin/app")).unwrap(),
            b"one"
        );
        let old_dir = installed.dir.clone();

        assert_eq!(updater.check(now()).unwrap().outcome(), Outcome::UpToDate);

        site.release("1.1.0", &[("bin/app", b"two")], 10_000, 2);
        let report = updater.check(now()).unwrap();
        assert_eq!(report.outcome(), Outcome::Update);
        assert_eq!(report.current().unwrap().version.to_string(), "1.0.0");
        let installed = updater.install(&report, now(), &NoReporter).unwrap();
        assert_eq!(installed.previous.unwrap().to_string(), "1.0.0");
        assert_eq!(
            std::fs::read(root.path().join("current/bin/app")).unwrap(),
            b"two"
        );
        assert!(!root.path().join("current/README").exists());
        assert!(
            root.path()
                .join("releases")
                .join(&old_dir)
                .join("README")
                .exists()
        );

        let status = updater.status().unwrap();
        assert_eq!(status.current.unwrap().version.to_string(), "1.1.0");
        assert_eq!(status.installed.len(), 2);
        assert_eq!(status.highest_serial, Some(2));
        assert_eq!(status.last_check, Some(now()));
        assert_eq!(status.install_id, first.install_id);

        // A host replaying the older manifest is refused, and the serial stays.
        site.publish(1);
        let error = updater.check(now()).unwrap_err();
        assert!(
            matches!(
                error,
                Error::Rollback {
                    serial: 1,
                    highest: 2,
                    ..
                }
            ),
            "{error}"
        );
    }

    #[test]
    fn a_dry_run_plans_without_installing_or_downloading_content() {
        let mut site = Site::new();
        site.release(
            "1.0.0",
            &[("app", b"one"), ("README", b"read me")],
            10_000,
            1,
        );
        let root = tempfile::tempdir().unwrap();
        site.init(root.path());
        let updater = Updater::open(root.path()).unwrap();
        updater
            .install(&updater.check(now()).unwrap(), now(), &NoReporter)
            .unwrap();
        site.release("1.1.0", &[("app", b"two"), ("NEWS", b"news")], 10_000, 2);
        let report = updater.check(now()).unwrap();
        let plan = updater.plan(&report).unwrap();
        assert_eq!(plan.version.to_string(), "1.1.0");
        assert!(plan.index_bytes > 0);
        let module = &plan.modules[0];
        // This site's indexes list no per-file copies (an older publisher).
        assert!(module.use_package);
        assert_eq!(
            module.package_reason,
            Some(crate::install::plan::PackageReason::NoFileCopies)
        );
        assert_eq!(plan.download_bytes, module.package_bytes);
        let removed: Vec<&str> = module.removed.iter().map(|path| path.as_str()).collect();
        assert_eq!(removed, ["README"]);
        assert_eq!(
            updater.current().unwrap().unwrap().version.to_string(),
            "1.0.0"
        );
        let cached: Vec<_> = std::fs::read_dir(root.path().join(".wavecast/cache"))
            .unwrap()
            .collect();
        assert!(cached.is_empty(), "a dry run downloads no package");

        let installed = updater.install(&report, now(), &NoReporter).unwrap();
        assert_eq!(installed.planned_bytes, module.package_bytes);
        assert_eq!(
            installed.downloaded_bytes, module.package_bytes,
            "the index was cached by the dry run"
        );
        assert!(installed.pruned_bytes >= module.package_bytes);
        assert!(matches!(
            updater.plan(&updater.check(now()).unwrap()),
            Err(Error::NothingToInstall)
        ));
    }

    #[test]
    fn a_first_install_that_fails_its_health_check_leaves_nothing_current() {
        let mut site = Site::new();
        site.release("1.0.0", &[("app", b"one")], 10_000, 1);
        let root = tempfile::tempdir().unwrap();
        site.init(root.path());
        let check = |command: &str| HealthCheck {
            command: command.into(),
            timeout: Duration::from_secs(10),
        };
        let updater = Updater::open(root.path())
            .unwrap()
            .with_health_check(check("cat app; exit 7"));
        let error = updater
            .install(&updater.check(now()).unwrap(), now(), &NoReporter)
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "1.0.0 failed its health check `cat app; exit 7`: it exited with status 7; removed `current`, as no release was current before it, and marked 1.0.0 bad (`wavecast-update unmark 1.0.0` clears the mark)"
        );
        let Error::HealthCheckFailed(failure) = error else {
            panic!("not a health check failure");
        };
        assert_eq!(failure.rolled_back_to, None);
        assert_eq!(failure.report.status, HealthStatus::Exited(7));
        assert_eq!(failure.report.output, "one");
        assert_eq!(failure.pruned.len(), 1, "the bad tree is deleted");
        assert!(std::fs::symlink_metadata(root.path().join("current")).is_err());
        assert!(updater.current().unwrap().is_none());
        let status = updater.status().unwrap();
        assert!(status.installed.is_empty() && status.trial.is_none());
        assert_eq!(status.bad_releases[0].reason, BadReason::HealthCheckFailed);

        // Nothing else is offered, and the bad release is named as skipped.
        let report = updater.check(now()).unwrap();
        assert_eq!(report.outcome(), Outcome::UpToDate);
        assert_eq!(report.skipped()[0].version.to_string(), "1.0.0");

        // A newer release is installed and kept when its check passes.
        site.release("1.1.0", &[("app", b"two")], 10_000, 2);
        let updater = updater.with_health_check(check("grep -q two app"));
        let installed = updater
            .install(&updater.check(now()).unwrap(), now(), &NoReporter)
            .unwrap();
        assert_eq!(installed.previous, None);
        assert_eq!(installed.health_check.unwrap().status, HealthStatus::Passed);
        let status = updater.status().unwrap();
        assert_eq!(status.current.unwrap().version.to_string(), "1.1.0");
        assert_eq!(
            status.trial.unwrap().fallback,
            None,
            "nothing to fall back to"
        );
        assert_eq!(
            std::fs::read(root.path().join("current/app")).unwrap(),
            b"two"
        );
    }

    #[test]
    fn init_twice_needs_force_and_keeps_the_install_id() {
        let site = Site::new();
        let root = tempfile::tempdir().unwrap();
        let first = site.init(root.path());
        assert!(!first.kept_state);
        let options = |force| InitOptions {
            urls: vec![BaseUrl::parse("https://example.com/other").unwrap()],
            trust: site.key.clone().into(),
            channel: "beta".parse().unwrap(),
            platform: "any".parse().unwrap(),
            attributes: Attributes::new(),
            download_limits: DownloadLimits::default(),
            expiry_grace: Duration::ZERO,
            force,
            product: None,
            offline: true,
            group: None,
        };
        let error = Updater::init(root.path(), options(false), now()).unwrap_err();
        assert!(matches!(error, Error::AlreadyInitialized { .. }), "{error}");
        let second = Updater::init(root.path(), options(true), now()).unwrap();
        assert!(second.reconfigured && second.kept_state);
        assert_eq!(second.install_id, first.install_id);
        let updater = Updater::open(root.path()).unwrap();
        assert_eq!(updater.config().channel.as_str(), "beta");

        std::fs::write(root.path().join(".wavecast/state.json"), b"garbage").unwrap();
        let error = Updater::init(root.path(), options(true), now()).unwrap_err();
        assert!(matches!(error, Error::ParseState { .. }), "{error}");
        assert_eq!(
            std::fs::read(root.path().join(".wavecast/state.json")).unwrap(),
            b"garbage"
        );
    }

    #[test]
    fn a_failed_install_leaves_the_current_release_and_no_staging() {
        let mut site = Site::new();
        site.release("1.0.0", &[("app", b"one")], 10_000, 1);
        let root = tempfile::tempdir().unwrap();
        site.init(root.path());
        let updater = Updater::open(root.path()).unwrap();
        updater
            .install(&updater.check(now()).unwrap(), now(), &NoReporter)
            .unwrap();

        // 1.1.0's package holds a hard link: the unpack fails after the download.
        site.release("1.1.0", &[("app", b"two")], 10_000, 2);
        let old_hash = site.releases[1].platforms["any"].modules["app"]
            .package
            .blake3
            .clone();
        let hostile = package(&[
            Raw("app", tar::EntryType::Regular, 0o644, b"two"),
            Raw("link", tar::EntryType::Link, 0o644, b"app"),
        ]);
        let blake3 = Blake3Hash::of(&hostile);
        let path: wavecast_schema::RelativePath = format!("blobs/{blake3}.tar.gz").parse().unwrap();
        std::fs::write(site.dir.path().join(path.as_str()), &hostile).unwrap();
        let module = site.releases[1]
            .platforms
            .get_mut("any")
            .unwrap()
            .modules
            .get_mut("app")
            .unwrap();
        assert_ne!(old_hash, blake3);
        module.package = Blob {
            path,
            size: hostile.len() as u64,
            blake3,
        };
        site.publish(3);

        let report = updater.check(now()).unwrap();
        let error = updater.install(&report, now(), &NoReporter).unwrap_err();
        assert!(matches!(error, Error::UnsupportedEntry { .. }), "{error}");
        assert_eq!(
            std::fs::read(root.path().join("current/app")).unwrap(),
            b"one"
        );
        assert_eq!(
            updater.current().unwrap().unwrap().version.to_string(),
            "1.0.0"
        );
        let names: Vec<String> = std::fs::read_dir(root.path().join("releases"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        assert_eq!(
            updater.status().unwrap().interrupted,
            None,
            "the build was undone"
        );
    }

    #[test]
    fn a_client_outside_the_rollout_is_deferred() {
        let mut site = Site::new();
        site.release("1.0.0", &[("app", b"one")], 0, 1);
        let root = tempfile::tempdir().unwrap();
        site.init(root.path());
        let updater = Updater::open(root.path()).unwrap();
        let report = updater.check(now()).unwrap();
        assert_eq!(report.outcome(), Outcome::Deferred);
        assert_eq!(report.rollout().unwrap().threshold.get(), 0);
        assert!(matches!(
            updater.install(&report, now(), &NoReporter),
            Err(Error::NothingToInstall)
        ));
    }

    fn attributes(pairs: &[(&str, &str)]) -> Attributes {
        pairs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect()
    }

    fn rule(text: &str) -> Rule {
        text.parse().unwrap()
    }

    /// A root with 1.0.0 installed and 2.0.0 published at 0 %.
    fn installed_with_newer_at_zero() -> (Site, tempfile::TempDir, Updater) {
        let mut site = Site::new();
        site.release("1.0.0", &[("app", b"one")], 10_000, 1);
        let root = tempfile::tempdir().unwrap();
        site.init(root.path());
        let updater = Updater::open(root.path()).unwrap();
        updater
            .install(&updater.check(now()).unwrap(), now(), &NoReporter)
            .unwrap();
        site.release("2.0.0", &[("app", b"two")], 0, 2);
        (site, root, updater)
    }

    #[test]
    fn configured_attributes_feed_rules_and_a_check_can_override_them() {
        let (mut site, _root, mut updater) = installed_with_newer_at_zero();
        site.change_rollout(1, 3, |plan| {
            plan.rules = vec![rule("eu: region = eu -> 100%")];
        });
        let report = updater.check(now()).unwrap();
        assert_eq!(report.outcome(), Outcome::Deferred);
        assert!(report.rule().is_none());

        let changed = updater
            .reconfigure(&ConfigChange {
                set_attributes: attributes(&[("region", "eu")]),
                ..ConfigChange::default()
            })
            .unwrap();
        assert!(changed);
        let reopened = Updater::open(updater.root().path()).unwrap();
        assert_eq!(
            reopened.config().attributes,
            attributes(&[("region", "eu")])
        );
        let report = reopened.check(now()).unwrap();
        assert_eq!(report.outcome(), Outcome::Update);
        assert_eq!(report.rule().unwrap().name, "eu");
        assert_eq!(report.attributes(), &attributes(&[("region", "eu")]));

        let options = CheckOptions {
            attributes: attributes(&[("region", "us")]),
            ..CheckOptions::default()
        };
        let report = updater.check_with(now(), &options).unwrap();
        assert_eq!(report.outcome(), Outcome::Deferred, "the check's own win");
        assert_eq!(report.attributes(), &attributes(&[("region", "us")]));

        let unset = ConfigChange {
            unset_attributes: ["region".to_owned()].into(),
            ..ConfigChange::default()
        };
        assert!(updater.reconfigure(&unset).unwrap());
        assert!(
            !updater.reconfigure(&unset).unwrap(),
            "nothing left to unset"
        );
        assert_eq!(updater.check(now()).unwrap().outcome(), Outcome::Deferred);

        let bad = CheckOptions {
            attributes: attributes(&[("bad key", "x")]),
            ..CheckOptions::default()
        };
        assert!(matches!(
            updater.check_with(now(), &bad),
            Err(Error::InvalidAttributeKey { .. })
        ));
    }

    #[test]
    fn manual_mode_skips_the_share_but_not_a_pause_or_an_excluding_rule() {
        let (mut site, _root, updater) = installed_with_newer_at_zero();
        let manual = CheckOptions {
            mode: Mode::Manual,
            ..CheckOptions::default()
        };
        let report = updater.check_with(now(), &manual).unwrap();
        assert_eq!(report.outcome(), Outcome::Update);
        assert_eq!(report.mode(), Mode::Manual);
        assert!(!report.mandatory());

        site.change_rollout(1, 3, |plan| plan.paused_at = Some(now()));
        let report = updater.check_with(now(), &manual).unwrap();
        assert_eq!(report.outcome(), Outcome::Deferred);
        assert_eq!(report.exclusion(), Some(Exclusion::Paused));

        site.change_rollout(1, 4, |plan| {
            plan.paused_at = None;
            plan.rules = vec![rule("nobody: -> exclude")];
        });
        let report = updater.check_with(now(), &manual).unwrap();
        assert_eq!(report.exclusion(), Some(Exclusion::Rule));
        assert_eq!(report.rule().unwrap().name, "nobody");
    }

    #[test]
    fn a_mandatory_rule_is_reported_with_its_name() {
        let (mut site, _root, updater) = installed_with_newer_at_zero();
        site.change_rollout(1, 3, |plan| {
            plan.rules = vec![rule("legacy: from < 2.0 -> mandatory")];
        });
        let report = updater.check(now()).unwrap();
        assert_eq!(report.outcome(), Outcome::Update);
        assert!(report.mandatory());
        assert_eq!(report.rule().unwrap().name, "legacy");
        assert!(!report.is_downgrade());
        assert_eq!(report.withdrawn(), None);
    }

    #[test]
    fn a_yanked_release_moves_back_to_the_kept_tree_without_downloading() {
        let mut site = Site::new();
        site.release("1.0.0", &[("app", b"one")], 10_000, 1);
        let root = tempfile::tempdir().unwrap();
        site.init(root.path());
        let updater = Updater::open(root.path()).unwrap();
        let install = |updater: &Updater| {
            updater
                .install(&updater.check(now()).unwrap(), now(), &NoReporter)
                .unwrap()
        };
        let old = install(&updater);
        site.release("1.1.0", &[("app", b"two")], 10_000, 2);
        let new = install(&updater);
        assert_eq!(new.outcome, InstallOutcome::Installed);

        site.change_rollout(1, 3, |plan| plan.yanked = true);
        let report = updater.check(now()).unwrap();
        assert_eq!(report.outcome(), Outcome::Update);
        assert_eq!(report.target().unwrap().version.to_string(), "1.0.0");
        assert_eq!(report.withdrawn(), Some(Withdrawal::Yanked));
        assert!(report.is_downgrade());

        // Without packages on the site or in the cache, only the kept tree can serve.
        std::fs::remove_dir_all(root.path().join(".wavecast/cache")).unwrap();
        std::fs::remove_dir_all(site.dir.path().join("blobs"))
            .and_then(|()| std::fs::create_dir(site.dir.path().join("blobs")))
            .unwrap();
        site.file_index(&[("app", b"one")]);
        let moved = updater.install(&report, now(), &NoReporter).unwrap();
        assert_eq!(moved.outcome, InstallOutcome::Reused);
        assert_eq!(moved.dir, old.dir);
        assert_eq!(moved.previous.unwrap().to_string(), "1.1.0");
        assert_eq!(
            std::fs::read(root.path().join("current/app")).unwrap(),
            b"one"
        );
        assert_eq!(updater.check(now()).unwrap().outcome(), Outcome::UpToDate);
    }

    #[test]
    fn a_kept_tree_that_changed_is_installed_afresh() {
        let mut site = Site::new();
        site.release("1.0.0", &[("app", b"one")], 10_000, 1);
        let root = tempfile::tempdir().unwrap();
        site.init(root.path());
        let updater = Updater::open(root.path()).unwrap();
        let old = updater
            .install(&updater.check(now()).unwrap(), now(), &NoReporter)
            .unwrap();
        site.release("1.1.0", &[("app", b"two")], 10_000, 2);
        updater
            .install(&updater.check(now()).unwrap(), now(), &NoReporter)
            .unwrap();
        let kept = root.path().join("releases").join(&old.dir).join("app");
        std::fs::write(&kept, b"tampered").unwrap();

        site.change_rollout(1, 3, |plan| plan.yanked = true);
        let report = updater.check(now()).unwrap();
        let moved = updater.install(&report, now(), &NoReporter).unwrap();
        assert_eq!(moved.outcome, InstallOutcome::Installed);
        assert_eq!(moved.dir, old.dir);
        assert_eq!(
            std::fs::read(root.path().join("current/app")).unwrap(),
            b"one"
        );
    }

    #[test]
    fn reconfigure_switches_the_channel_and_refuses_bad_names() {
        let site = Site::new();
        let root = tempfile::tempdir().unwrap();
        site.init(root.path());
        let mut updater = Updater::open(root.path()).unwrap();
        let change = ConfigChange {
            channel: Some("beta".parse().unwrap()),
            ..ConfigChange::default()
        };
        assert!(updater.reconfigure(&change).unwrap());
        assert!(!updater.reconfigure(&change).unwrap());
        assert_eq!(updater.config().channel.as_str(), "beta");
        assert_eq!(
            Updater::open(root.path())
                .unwrap()
                .config()
                .channel
                .as_str(),
            "beta"
        );
        let bad = ConfigChange {
            set_attributes: attributes(&[("a/b", "c")]),
            ..ConfigChange::default()
        };
        assert!(matches!(
            updater.reconfigure(&bad),
            Err(Error::InvalidAttributeKey { .. })
        ));
    }
}
