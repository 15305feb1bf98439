//! Updating a running application without changing it under it: [`Updater::stage`]
//! downloads and builds the next release's tree beside the running one, and
//! [`Updater::apply`] (or the next [`Updater::launched`], before the application
//! starts) switches to it; [`Updater::restart`] starts the new release in place of
//! the running process.

use std::ffi::OsStr;
use std::path::PathBuf;

use jiff::Timestamp;
use wavecast_schema::RelativePath;

use crate::error::{Error, Result};
use crate::install::reporter::{Reporter, Tracker};
use crate::install::{InstallOutcome, install_release};
use crate::lifecycle::prune::prune_releases;
use crate::lifecycle::slots::{image_module, tree_part};
use crate::store::current::read_current;
use crate::store::state::{StagedRelease, State};
use crate::updater::Updater;
use crate::updater::check::CheckReport;
use crate::updater::install::InstallReport;

impl Updater {
    /// Downloads and builds the target of `report` as [`install`](Self::install)
    /// does, and records its tree under `releases/`, but leaves `current` where it
    /// is: the running application keeps its files. The release is then staged
    /// ([`State::staged`]) until [`apply`](Self::apply) or the next
    /// [`launched`](Self::launched) switches to it; a later install replaces it.
    /// Staging the release again, or one already current, downloads nothing. The
    /// report's `tree` names the staged tree; nothing runs after it (no trial, no
    /// health check).
    ///
    /// # Errors
    ///
    /// [`Error::NothingToInstall`]; [`Error::StageImage`] for a release with an image
    /// module, which is activated as it is written; the errors of
    /// [`install`](Self::install) before its switch, with the installed release and
    /// any earlier staged release untouched.
    pub fn stage(
        &self,
        report: &CheckReport,
        now: Timestamp,
        reporter: &dyn Reporter,
    ) -> Result<InstallReport> {
        let reporter = &Tracker::new(reporter);
        let (_lock, mut state, document) = self.open_target(report, reporter)?;
        if image_module(&document).is_some() {
            return Err(Error::StageImage {
                version: document.version,
            });
        }
        let document = tree_part(&document);
        let plan = self.install_plan(report.download_hosts(), &document, now, reporter, true);
        let tree = install_release(&plan, &mut state)?;
        if tree.outcome != InstallOutcome::AlreadyCurrent {
            state.staged = Some(StagedRelease {
                version: tree.version.clone(),
                dir: tree.dir.clone(),
                staged_at: now,
                document,
            });
            state.save(&self.root.state())?;
        }
        let pruned_releases = prune_releases(&self.root, &mut state, self.config.keep_releases)?;
        Ok(InstallReport {
            tree,
            image: None,
            health_check: None,
            pruned_releases,
        })
    }

    /// Switches to the release [`stage`](Self::stage) prepared, as
    /// [`install`](Self::install) would switch to it: its tree is checked against its
    /// file indexes (kept on disk, so no network is needed), then made current,
    /// put on trial and health-checked. Returns `None` when nothing is staged, or the
    /// staged release is current already. A tree that changed on disk since it was
    /// staged is installed afresh from the hosts.
    ///
    /// # Errors
    ///
    /// The errors of [`install`](Self::install). A failure before the switch keeps
    /// the release staged; a failed health check switches back and marks it bad, as
    /// an install does.
    pub fn apply(&self, now: Timestamp, reporter: &dyn Reporter) -> Result<Option<InstallReport>> {
        let _lock = self.lock()?;
        let reporter = Tracker::new(reporter);
        let mut state = self.load_state()?;
        self.apply_locked(&mut state, now, &reporter)
    }

    /// [`apply`](Self::apply) under the lock, with the state loaded under it.
    pub(super) fn apply_locked(
        &self,
        state: &mut State,
        now: Timestamp,
        reporter: &Tracker<'_>,
    ) -> Result<Option<InstallReport>> {
        let Some(staged) = state.staged.take() else {
            return Ok(None);
        };
        let current = read_current(&self.root, state)?;
        if current.is_some_and(|current| current.dir == staged.dir) {
            state.save(&self.root.state())?;
            return Ok(None);
        }
        match self.install_locked(&staged.document, &self.config.urls, state, now, reporter) {
            Ok(installed) => Ok(Some(installed)),
            Err(error) => {
                // Not switched (nor switched back and marked bad): the release stays
                // staged for the next attempt.
                let switched = read_current(&self.root, state)?
                    .is_some_and(|current| current.dir == staged.dir);
                let marked_bad = state
                    .bad_releases
                    .iter()
                    .any(|bad| bad.version == staged.version);
                if !switched && !marked_bad {
                    state.staged = Some(staged);
                    state.save(&self.root.state())?;
                }
                Err(error)
            }
        }
    }

    /// The path of `program` (such as `bin/app`) in the current release's tree.
    ///
    /// # Errors
    ///
    /// [`LifecycleError::NothingInstalled`](crate::LifecycleError::NothingInstalled);
    /// state errors.
    pub fn current_program(&self, program: &RelativePath) -> Result<PathBuf> {
        let state = self.load_state()?;
        let current = self.require_current(&state)?;
        Ok(self
            .root
            .releases()
            .join(&current.dir)
            .join(program.as_str()))
    }

    /// Starts `program` of the current release with `args` in place of this
    /// process: how an application restarts into a release it just applied. On Unix
    /// the process is replaced (`exec`), keeping its id; on Windows, which cannot
    /// replace a process's image, the program runs as a child with this process's
    /// standard streams and this process then exits with its status. Returns only
    /// on failure.
    pub fn restart<I, S>(&self, program: &RelativePath, args: I) -> Error
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let path = match self.current_program(program) {
            Ok(path) => path,
            Err(error) => return error,
        };
        let mut command = std::process::Command::new(&path);
        command.args(args);
        let source = crate::platform::replace_process(&mut command);
        Error::Restart {
            program: path,
            source,
        }
    }
}
