//! Installing what a check decided ([`Updater::install`], [`InstallReport`]): the
//! image slot first, then the release tree through the install pipeline, then the
//! health check and pruning; and planning one without installing ([`Updater::plan`]).

use jiff::Timestamp;
use wavecast_schema::{PlatformRelease, Release};

use crate::error::{Error, InstallError, LifecycleError, NetError, Result};
use crate::install::fetch::Cache;
use crate::install::plan::{ImageDownload, UpdatePlan};
use crate::install::reporter::{Phase, Reporter, Tracker};
use crate::install::{InstallOutcome, InstallPlan, TreeReport, install_release, plan_install};
use crate::lifecycle::command::{HealthCheckReport, HealthStatus};
use crate::lifecycle::error::HealthCheckFailure;
use crate::lifecycle::health::{CheckTarget, roll_back, run_health_check};
use crate::lifecycle::prune::{PrunedRelease, prune_releases};
use crate::lifecycle::slots::{ImageTarget, SlotActivation, Slots, image_module, tree_part};
use crate::net::url::BaseUrl;
use crate::store::config::HealthCheck;
use crate::store::current::start_trial;
use crate::store::current::{CurrentRelease, read_current, release_dir_name};
use crate::store::root::RootLock;
use crate::store::state::{BadReason, State};
use crate::updater::Updater;
use crate::updater::check::CheckReport;

/// The result of an install: the release tree's, then what followed the switch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallReport {
    /// The release tree's install: what it downloaded, reused and switched to.
    pub tree: TreeReport,
    /// The release's image module, written to a slot and activated before the tree
    /// was installed; `None` for a release without one.
    pub image: Option<SlotActivation>,
    /// The health check run after the switch, when one is configured (it passed: a
    /// failed check is an error).
    pub health_check: Option<HealthCheckReport>,
    /// The release trees deleted after the install, beyond the newest kept.
    pub pruned_releases: Vec<PrunedRelease>,
}

impl Updater {
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
    /// [`LifecycleError::HealthCheckFailed`] is returned. Last, release trees beyond the
    /// configured number to keep are deleted.
    ///
    /// A release with an image module first writes the image into the inactive slot
    /// and activates it ([`SlotConfig`](crate::SlotConfig), [`InstallReport::image`]); only then is
    /// the release tree of its other modules (empty for an image-only release)
    /// installed as above. A failed activation leaves everything as it was and marks
    /// the release bad; a failure after it (the tree, the health check) also switches
    /// the slots back.
    ///
    /// # Errors
    ///
    /// [`Error::NothingToInstall`] when the report offers no update;
    /// [`InstallError::NotEnoughSpace`]; [`LifecycleError::HealthCheckFailed`] or
    /// [`LifecycleError::RunHealthCheck`] after a rollback; [`LifecycleError::ActivationFailed`] or
    /// [`LifecycleError::RunActivation`] when an image was not activated; download,
    /// verification, unpacking and file-system errors.
    pub fn install(
        &self,
        report: &CheckReport,
        now: Timestamp,
        reporter: &dyn Reporter,
    ) -> Result<InstallReport> {
        let reporter = &Tracker::new(reporter);
        let (_lock, mut state, document) = self.open_target(report, reporter)?;
        // A newer install supersedes a staged release, and installing the staged one
        // applies it.
        state.staged = None;
        self.install_locked(
            &document,
            report.download_hosts(),
            &mut state,
            now,
            reporter,
        )
    }

    /// [`install`](Self::install) of `document`'s release from `hosts`, under the
    /// lock, with the state loaded under it: the image, the tree, the trial, the
    /// health check and pruning.
    pub(super) fn install_locked(
        &self,
        document: &PlatformRelease,
        hosts: &[BaseUrl],
        state: &mut State,
        now: Timestamp,
        reporter: &Tracker<'_>,
    ) -> Result<InstallReport> {
        let before = read_current(&self.root, state)?;
        let tree = tree_part(document);
        let image = self.install_image(
            hosts,
            document,
            &tree,
            before.as_ref(),
            state,
            now,
            reporter,
        )?;
        let plan = self.install_plan(hosts, &tree, now, reporter, false);
        let tree = match install_release(&plan, state) {
            Ok(tree) => tree,
            Err(error) => {
                self.revert_image(image.as_ref())?;
                return Err(error.into());
            }
        };
        let mut installed = InstallReport {
            tree,
            image,
            health_check: None,
            pruned_releases: Vec::new(),
        };
        if installed.tree.outcome == InstallOutcome::AlreadyCurrent {
            return Ok(installed);
        }
        let switched = CurrentRelease {
            version: installed.tree.version.clone(),
            dir: installed.tree.dir.clone(),
        };
        // The trial is saved before the check runs: if the client dies during the
        // check, launch counting still guards the unchecked release.
        start_trial(state, &switched, before.as_ref(), now);
        state.save(&self.root.state())?;
        if let Some(check) = self.health_check() {
            let checked = self.run_check(&check, &switched, before.as_ref(), state, now, reporter);
            if checked.is_err() {
                self.revert_image(installed.image.as_ref())?;
            }
            installed.health_check = Some(checked?);
        }
        installed.pruned_releases = prune_releases(&self.root, state, self.config.keep_releases)?;
        Ok(installed)
    }

    /// The start of an install or a stage of the target of `report`: its client floor
    /// checked, the root locked, the state loaded under the lock, and the target's
    /// platform document fetched.
    pub(super) fn open_target(
        &self,
        report: &CheckReport,
        reporter: &Tracker<'_>,
    ) -> Result<(RootLock, State, PlatformRelease)> {
        let release = report.target().ok_or(Error::NothingToInstall)?;
        require_floor(report)?;
        let lock = self.lock()?;
        let state = self.load_state()?;
        let document = self.platform_release(report, release, reporter)?;
        Ok((lock, state, document))
    }

    /// How this updater installs the tree of `release` from `hosts`: with its
    /// transport, limits and cancel handle, telling `reporter`; `stage_only` leaves
    /// `current` alone.
    pub(super) fn install_plan<'a>(
        &'a self,
        hosts: &'a [BaseUrl],
        release: &'a PlatformRelease,
        now: Timestamp,
        reporter: &'a Tracker<'a>,
        stage_only: bool,
    ) -> InstallPlan<'a> {
        InstallPlan {
            transport: self.transport.as_ref(),
            hosts,
            root: &self.root,
            release,
            now,
            reporter,
            packages_only: self.packages_only,
            limits: self.config.download_limits,
            cancel: &self.cancel,
            stage_only,
        }
    }

    /// The root's download cache, fetching from `hosts` within the configured limits,
    /// telling `reporter`, and stopped by this updater's cancel handle.
    pub(super) fn cache<'a>(
        &'a self,
        hosts: &'a [BaseUrl],
        reporter: &'a dyn Reporter,
    ) -> Result<Cache<'a>> {
        Ok(Cache::open(
            &self.root,
            self.transport.as_ref(),
            hosts,
            reporter,
            self.config.download_limits,
        )?
        .with_cancel(&self.cancel))
    }

    /// What `release` installs on this client's platform: its platform document,
    /// fetched (and verified) through the download cache.
    ///
    /// # Errors
    ///
    /// [`InstallError::NoBuildForPlatform`]
    /// when the release has none for this platform; download errors;
    /// [`InstallError::ParsePlatformRelease`]
    /// for a document of another release.
    pub(super) fn platform_release(
        &self,
        report: &CheckReport,
        release: &Release,
        reporter: &dyn Reporter,
    ) -> Result<PlatformRelease> {
        let blob = release.for_platform(report.platform()).ok_or_else(|| {
            InstallError::NoBuildForPlatform {
                version: release.version.clone(),
                platform: report.platform().clone(),
            }
        })?;
        let cache = self.cache(report.download_hosts(), reporter)?;
        Ok(cache.platform_release(&release.version, blob)?)
    }

    /// Writes and activates the image module of `release`, if it has one, for
    /// [`install`](Self::install); `tree` is its tree part and `current` the
    /// release installed now.
    #[expect(clippy::too_many_arguments, reason = "one internal step of install")]
    fn install_image(
        &self,
        hosts: &[BaseUrl],
        release: &PlatformRelease,
        tree: &PlatformRelease,
        current: Option<&CurrentRelease>,
        state: &mut State,
        now: Timestamp,
        reporter: &Tracker<'_>,
    ) -> Result<Option<SlotActivation>> {
        let Some((name, module)) = image_module(release) else {
            return Ok(None);
        };
        // The image's package is the most it downloads; the tree's plan then sets the
        // total from what the image took.
        reporter.expect(module.package.size);
        reporter.phase(Phase::Downloading);
        let dir = release_dir_name(&release.version, tree);
        let cache = self.cache(hosts, reporter)?;
        let target = ImageTarget {
            version: &release.version,
            name,
            module,
            dir: &dir,
            packages_only: self.packages_only,
            pack: crate::install::pack::choose(release, current.map(|current| &current.version)),
        };
        let activation =
            Slots::open(&self.root, self.slot_config())?.install(&cache, &target, state, now)?;
        Ok(Some(activation))
    }

    /// Switches the slots back after a step that followed `image`'s activation
    /// failed.
    fn revert_image(&self, image: Option<&SlotActivation>) -> Result<()> {
        match image {
            Some(image) => Ok(Slots::open(&self.root, self.slot_config())?.revert(image)?),
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
    ) -> Result<HealthCheckReport> {
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
                return Err(LifecycleError::RunHealthCheck {
                    version: switched.version.clone(),
                    command: check.command.clone(),
                    rolled_back_to: before.map(|before| before.version.clone()),
                    source,
                }
                .into());
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
        Err(
            LifecycleError::HealthCheckFailed(Box::new(HealthCheckFailure {
                version: switched.version.clone(),
                dir: switched.dir.clone(),
                report: health,
                rolled_back_to: before.map(|before| before.version.clone()),
                pruned,
            }))
            .into(),
        )
    }

    /// Plans how [`install`](Self::install) would obtain the target of `report`,
    /// module by module and file by file, without installing or downloading anything
    /// but file indexes (which are cached): `update --dry-run`. An image module goes
    /// to a slot, not the release tree: the plan names it with its package's size
    /// ([`UpdatePlan::image`]), what it costs at most.
    ///
    /// # Errors
    ///
    /// [`Error::NothingToInstall`] when the report offers no update;
    /// [`InstallError::NoBuildForPlatform`]; the errors of fetching a file index (every
    /// install checks its tree against them, so none can be done without); state and
    /// file-system errors.
    pub fn plan(&self, report: &CheckReport) -> Result<UpdatePlan> {
        let target = report.target().ok_or(Error::NothingToInstall)?;
        let _lock = self.lock()?;
        let state = self.load_state()?;
        let document =
            self.platform_release(report, target, &crate::install::reporter::NoReporter)?;
        let release = tree_part(&document);
        let reporter = Tracker::new(&crate::install::reporter::NoReporter);
        let plan = self.install_plan(
            report.download_hosts(),
            &release,
            report.checked_at(),
            &reporter,
            false,
        );
        let mut planned = plan_install(&plan, &state)?;
        planned.image = image_module(&document).map(|(name, module)| ImageDownload {
            module: name.clone(),
            package_bytes: module.package.size,
        });
        Ok(planned)
    }
}

/// Refuses `report` when its manifest needs a newer client: a report read with
/// `ignore_client_floor` is for showing, and this client may not act on it.
fn require_floor(report: &CheckReport) -> Result<()> {
    let running = crate::build_info::client_version();
    if report.manifest().min_client_version > running {
        return Err(NetError::ClientTooOld {
            url: report.manifest_url().to_owned(),
            required: report.manifest().min_client_version.clone(),
            running,
        }
        .into());
    }
    Ok(())
}
