//! After an install: confirming the new release, counting its launches, rolling
//! back, and unmarking a release marked bad.

use jiff::Timestamp;
use semver::Version;

use crate::error::{LifecycleError, Result};
use crate::install::commit::recover;
use crate::install::reporter::{NoReporter, Tracker};
use crate::lifecycle::health::{
    ConfirmReport, LaunchOutcome, RollbackReport, fallback_release, previous_release, roll_back,
};
use crate::lifecycle::prune::prune_releases;
use crate::lifecycle::slots::Slots;
use crate::store::current::CurrentRelease;
use crate::store::current::trial_of;
use crate::store::root::RootLock;
use crate::store::state::{BadReason, BadRelease};
use crate::updater::install::InstallReport;
use crate::updater::{LOCK_PATIENCE, Updater};

/// The result of [`Updater::launched`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchReport {
    /// The release that was current when the launch was recorded.
    pub release: CurrentRelease,
    /// What happened.
    pub outcome: LaunchOutcome,
    /// The staged release this launch applied first, if any: `release` is then the
    /// one it switched to.
    pub applied: Option<Box<InstallReport>>,
}

impl Updater {
    /// Marks the current release healthy (`wavecast-update confirm`): its trial ends,
    /// so launches no longer count towards a rollback. Confirming a release that is
    /// confirmed already changes nothing. Waits up to [`LOCK_PATIENCE`] for another
    /// run to release the root. A member of the root's group may confirm: it writes
    /// only the trial file.
    ///
    /// # Errors
    ///
    /// [`LifecycleError::NothingInstalled`], [`StoreError::Locked`](crate::StoreError::Locked), state errors.
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
    /// launcher before it starts `current`). A release [`stage`](Self::stage)d since
    /// is applied first, when this run is the root's owner (the application is not
    /// running yet, so its files may change): its launch is then the first of its
    /// trial ([`LaunchReport::applied`]). A confirmed release counts nothing. An
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
    /// [`LifecycleError::NothingInstalled`], [`StoreError::Locked`](crate::StoreError::Locked), state and file-system errors;
    /// the slot errors of [`rollback`](Self::rollback), with nothing rolled back;
    /// [`LifecycleError::RollbackNotAllowed`] when a member's launch is one too many (it is
    /// counted); the errors of [`apply`](Self::apply), with the staged release kept
    /// and nothing counted.
    pub fn launched(&self, now: Timestamp) -> Result<LaunchReport> {
        let (_lock, not_owner) = self.lock_for_trial()?;
        let mut state = self.load_state()?;
        let applied = match not_owner {
            None => self
                .apply_locked(&mut state, now, &Tracker::new(&NoReporter))?
                .map(Box::new),
            Some(_) => None,
        };
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
                applied,
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
                return Err(LifecycleError::RollbackNotAllowed {
                    version: current.version,
                    launches,
                    limit,
                    path: self.root.meta(),
                    source,
                }
                .into());
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
                    applied,
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
            applied,
        })
    }

    /// Takes the lock for [`confirm`](Self::confirm) and [`launched`](Self::launched),
    /// which the root's group may run too. The owner's run first finishes or undoes
    /// an interrupted install, as every locked operation does; a member's run may not
    /// write `releases/` or `current`, so it leaves that to the owner's next run.
    /// Returns the lock and, for a member's run, why it may not write
    /// `ROOT/.wavecast`.
    fn lock_for_trial(&self) -> Result<(RootLock, Option<std::io::Error>)> {
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
    /// [`LifecycleError::NotMarkedBad`] (naming the versions that are marked),
    /// [`StoreError::Locked`](crate::StoreError::Locked), [`StoreError::NotWritable`](crate::StoreError::NotWritable), state errors.
    pub fn unmark(&self, version: &Version) -> Result<BadRelease> {
        let _lock = self.lock()?;
        let mut state = self.load_state()?;
        let cleared = state
            .unmark(version)
            .ok_or_else(|| LifecycleError::NotMarkedBad {
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
    /// [`LifecycleError::NothingInstalled`], [`LifecycleError::NothingToRollBackTo`], [`StoreError::Locked`](crate::StoreError::Locked),
    /// [`LifecycleError::NoImageToRollBackTo`] when the active slot holds the current release's
    /// image and the other slot not the older one's, [`LifecycleError::ActivationFailed`],
    /// state and file-system errors.
    pub fn rollback(&self, mark_bad: bool, now: Timestamp) -> Result<RollbackReport> {
        let _lock = self.lock()?;
        let mut state = self.load_state()?;
        let current = self.require_current(&state)?;
        let to = previous_release(&self.root, &state, &current)
            .cloned()
            .ok_or_else(|| LifecycleError::NothingToRollBackTo {
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
}
