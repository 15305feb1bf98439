//! Polling: fetching and verifying the channel's manifest and deciding what this
//! client should run ([`Updater::check`], [`CheckReport`]).

use jiff::Timestamp;
use semver::Version;
use wavecast_schema::{
    Attributes, ChannelName, ClientView, Exclusion, Manifest, Mode, Offer, Outcome, Platform,
    Release, Rule, VersionPin, Withdrawal, decide_skipping,
};

use crate::error::{Result, StoreError};
use crate::net::manifest::{Expectations, Stored, fetch_manifest};
use crate::net::url::BaseUrl;
use crate::store::attributes::check_attribute_keys;
use crate::store::current::{CurrentRelease, read_current};
use crate::store::root::{create_dir_all, write_atomically};
use crate::store::state::{BadRelease, StoredManifest};
use crate::updater::Updater;
use crate::updater::decision::{HeldBack, RolloutCheck};

/// How [`Updater::check_with`] decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOptions {
    /// [`Mode::Scheduled`] follows the rollout; [`Mode::Manual`] (`--now`) skips
    /// shares and ramps, never a pause, a yank, an excluding rule or a cap.
    pub mode: Mode,
    /// Attributes for this check only, over the configured ones (these win).
    pub attributes: Attributes,
    /// Read a manifest that needs a newer client too, instead of failing with
    /// [`NetError::ClientTooOld`](crate::NetError::ClientTooOld) (`list` shows such a channel). A report read this way
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

impl Updater {
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
    /// Any manifest error ([`NetError::FetchManifest`](crate::NetError::FetchManifest), [`NetError::VerifySignature`](crate::NetError::VerifySignature),
    /// [`NetError::Rollback`](crate::NetError::Rollback), [`NetError::ManifestExpired`](crate::NetError::ManifestExpired), [`NetError::TooSlow`](crate::NetError::TooSlow)…), state errors, or
    /// [`StoreError::CurrentNotSymlink`]; [`StoreError::InvalidAttributeKey`] for an attribute
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
            return Err(match first_error {
                Some(error) => error.into(),
                None => StoreError::NoUrls {
                    path: self.root.config(),
                }
                .into(),
            });
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
}
