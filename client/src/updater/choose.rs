//! A person's view of the channel and their choice in it: every release and what it
//! is to this client ([`Updater::list`]), installing a chosen one
//! ([`Updater::choose`], `update --to`), and why newer releases hold back
//! ([`HeldBack`]).
//!
//! The rollout decides for a client that polls; a person may ask for a specific
//! release instead. Such a choice still never installs a yanked release, one marked
//! bad here, one off the client's pin, or an older one without being asked, and it
//! takes a release its rollout does not offer this client yet (a share, a ramp, a
//! pause, a rule, a cap) only with `--now`.

use jiff::Timestamp;
use semver::Version;
use wavecast_schema::{ClientView, Mode, Offer, Outcome, Release, VersionPin, offer};

use crate::error::{Error, Result};
use crate::updater::Updater;
use crate::updater::check::CheckReport;
use crate::updater::decision::HeldBack;

/// How a release stands for this client in the rollout, now.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Availability {
    /// It admits this client now.
    Offered {
        /// By a `mandatory` rule: an update to it installs without asking.
        mandatory: bool,
    },
    /// It does not admit this client now, for the reason given.
    HeldBack(HeldBack),
    /// It was yanked: offered to nobody.
    Yanked,
}

/// One release of the channel as this client sees it ([`Updater::list`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedRelease {
    /// The version.
    pub version: Version,
    /// When it was first published.
    pub published_at: Timestamp,
    /// Its release notes.
    pub notes: String,
    /// Whether `current` points to it.
    pub current: bool,
    /// Whether its tree is installed under `releases/` (current or kept).
    pub installed: bool,
    /// Whether it is marked bad on this machine (`unmark` clears it).
    pub marked_bad: bool,
    /// Whether the client's pin keeps it out.
    pub off_pin: bool,
    /// How its rollout stands for this client.
    pub availability: Availability,
    /// What updating to it from here would download (file indexes aside); `None`
    /// for the current release and for one that cannot be installed (yanked).
    pub download_bytes: Option<u64>,
}

/// Every release of a channel for this client, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    /// The releases for this client's platform.
    pub releases: Vec<ListedRelease>,
    /// The client's pin, if any.
    pub pin: Option<VersionPin>,
    /// Whether the channel needs a newer wavecast-update than this one: nothing can
    /// be installed until it updates itself (`wavecast-update self-update`).
    pub needs_newer_client: bool,
}

/// How [`Updater::choose`] may go against the rollout.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChooseOptions {
    /// Allow a release older than the installed one (`--allow-downgrade`).
    pub allow_downgrade: bool,
    /// Take a release the rollout does not offer this client now (not yet in its
    /// share or ramp, paused, excluded by a rule, capped): `--now`. Never a yanked
    /// one.
    pub now: bool,
}

impl Updater {
    /// Every release of the report's channel for this client's platform, newest
    /// first, with what it is to this client and what updating to it would download
    /// (planned from the file indexes, which are fetched into the index cache).
    ///
    /// # Errors
    ///
    /// State errors, and the errors of [`plan`](Self::plan) for a release whose
    /// file index cannot be fetched.
    pub fn list(&self, report: &CheckReport) -> Result<Listing> {
        let state = self.load_state()?;
        let bad = state.bad_versions();
        let pin = self.config().pin;
        let current = report.current().map(|current| &current.version);
        let mut releases = Vec::new();
        let mut listed: Vec<&Release> = report
            .manifest()
            .releases
            .iter()
            .filter(|release| release.for_platform(report.platform()).is_some())
            .collect();
        listed.sort_by(|a, b| b.version.cmp(&a.version));
        for release in listed {
            let is_current = current == Some(&release.version);
            let availability = availability(report, &state.install_id, release);
            let installable = !is_current && availability != Availability::Yanked;
            let download_bytes = if installable {
                Some(self.plan(&report.retarget(release.clone()))?.download_bytes)
            } else {
                None
            };
            releases.push(ListedRelease {
                version: release.version.clone(),
                published_at: release.published_at,
                notes: release.notes.clone(),
                current: is_current,
                installed: state.installed.iter().any(|installed| {
                    installed.version == release.version
                        && self.root().releases().join(&installed.dir).is_dir()
                }),
                marked_bad: bad.contains(&release.version),
                off_pin: pin.is_some_and(|pin| !pin.matches(&release.version)),
                availability,
                download_bytes,
            });
        }
        Ok(Listing {
            releases,
            pin,
            needs_newer_client: report.manifest().min_client_version > crate::client_version(),
        })
    }

    /// `report` retargeted to the release `version` of its manifest, chosen by a
    /// person (`update --to`), to hand to [`install`](Self::install) or
    /// [`plan`](Self::plan). See the module docs for what a choice may not do.
    ///
    /// # Errors
    ///
    /// [`Error::NotListed`], [`Error::ChosenYanked`], [`Error::ChosenOffPin`],
    /// [`Error::ChosenMarkedBad`], [`Error::ChosenDowngrade`] or
    /// [`Error::ChosenNotOffered`]; state errors.
    pub fn choose(
        &self,
        report: &CheckReport,
        version: &Version,
        options: ChooseOptions,
    ) -> Result<CheckReport> {
        let platform = report.platform();
        let Some(release) = report
            .manifest()
            .release(version)
            .filter(|release| release.for_platform(platform).is_some())
        else {
            let mut listed: Vec<Version> = report
                .manifest()
                .releases
                .iter()
                .filter(|release| release.for_platform(platform).is_some())
                .map(|release| release.version.clone())
                .collect();
            listed.sort();
            return Err(Error::NotListed {
                version: version.clone(),
                channel: report.channel().clone(),
                platform: platform.clone(),
                listed,
            });
        };
        if release.rollout.yanked {
            return Err(Error::ChosenYanked {
                version: version.clone(),
            });
        }
        if let Some(pin) = self.config().pin.filter(|pin| !pin.matches(version)) {
            return Err(Error::ChosenOffPin {
                version: version.clone(),
                pin,
            });
        }
        let state = self.load_state()?;
        if state.bad_versions().contains(version) {
            return Err(Error::ChosenMarkedBad {
                version: version.clone(),
            });
        }
        if let Some(current) = report
            .current()
            .filter(|current| version < &current.version && !options.allow_downgrade)
        {
            return Err(Error::ChosenDowngrade {
                version: version.clone(),
                current: current.version.clone(),
            });
        }
        let judged = judge(report, &state.install_id, release);
        if !judged.admitted && !options.now {
            return Err(Error::ChosenNotOffered(Box::new(HeldBack::from_offer(
                &judged,
            ))));
        }
        let mut chosen = report.retarget(release.clone());
        chosen.settle(
            &judged,
            if options.now {
                Mode::Manual
            } else {
                report.mode()
            },
        );
        Ok(chosen)
    }
}

/// How `release` judges this client, in scheduled mode, with the report's
/// attributes, clock and pin.
fn judge<'r>(
    report: &CheckReport,
    install_id: &wavecast_schema::InstallId,
    release: &'r Release,
) -> Offer<'r> {
    let view = ClientView {
        install_id,
        platform: report.platform(),
        current: report.current().map(|current| &current.version),
        attributes: report.attributes(),
        pin: None,
    };
    offer(release, &view, report.checked_at(), Mode::Scheduled)
}

fn availability(
    report: &CheckReport,
    install_id: &wavecast_schema::InstallId,
    release: &Release,
) -> Availability {
    if release.rollout.yanked {
        return Availability::Yanked;
    }
    let judged = judge(report, install_id, release);
    if judged.admitted {
        Availability::Offered {
            mandatory: judged.mandatory,
        }
    } else {
        Availability::HeldBack(HeldBack::from_offer(&judged))
    }
}

impl CheckReport {
    /// This report, with `release` (of its manifest) as the target of an update.
    pub(crate) fn retarget(&self, release: Release) -> CheckReport {
        let outcome = match &self.current() {
            Some(current) if current.version == release.version => Outcome::UpToDate,
            _ => Outcome::Update,
        };
        self.clone().with_target(outcome, release)
    }
}
