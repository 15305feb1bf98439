//! Errors of what follows a switch: health checks and trials, rolling back, and image
//! slots with their activation hook. The layers below reach the caller unchanged, as
//! [`Error::Net`], [`Error::Store`] and [`Error::Install`].

use std::path::PathBuf;

use semver::Version;
use wavecast_schema::{Blake3Hash, ModuleName};

use crate::lifecycle::command::HealthCheckReport;
use crate::lifecycle::prune::PrunedRelease;
use crate::store::config::SlotName;
use crate::store::error::storage_full_hint;

/// A `Result` whose error is the lifecycle layer's [`Error`].
pub(crate) type Result<T> = std::result::Result<T, Error>;

/// Why checking, confirming, rolling back or activating a release failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The network layer's error: a URL, a key or the manifest.
    #[error(transparent)]
    Net(#[from] crate::net::error::Error),

    /// The storage layer's error: the install root or one of its files.
    #[error(transparent)]
    Store(#[from] crate::store::error::Error),

    /// The install pipeline's error (never one of the layers below it: those are
    /// [`Error::Net`] and [`Error::Store`]).
    #[error(transparent)]
    Install(crate::install::error::Error),

    /// `confirm`, `launched` or `rollback` on a root where no release is current.
    #[error("no release is installed in `{}`", root.display())]
    NothingInstalled {
        /// The install root.
        root: PathBuf,
    },

    /// `rollback` found no release to return to.
    #[error(
        "nothing to roll back to: no release installed before {version} is still on disk and not marked bad"
    )]
    NothingToRollBackTo {
        /// The current release.
        version: Version,
    },

    /// `unmark` named a version that is not marked bad.
    #[error("{version} is not marked bad here; {}", marked_list(marked))]
    NotMarkedBad {
        /// The version given.
        version: Version,
        /// The versions that are marked bad, oldest mark first.
        marked: Vec<Version>,
    },

    /// `launched`, run by a member of the root's group, found the current release
    /// launched more often than allowed without a `confirm`, but only the root's owner
    /// may switch `current`. The launch was counted; nothing was rolled back.
    #[error(
        "{version} was not confirmed after {launches} launches (at most {limit}), but this user may not roll it back: only the owner of `{}` may switch `current`",
        path.display()
    )]
    RollbackNotAllowed {
        /// The current release.
        version: Version,
        /// Launches since the switch, this one included.
        launches: u32,
        /// The most it may have unconfirmed.
        limit: u32,
        /// `ROOT/.wavecast`, which this user may not write in.
        path: PathBuf,
        /// Why (`EACCES`…).
        #[source]
        source: std::io::Error,
    },

    /// The release just switched to failed its health check (or timed out); `current`
    /// was switched back and the release marked bad.
    #[error("{0}")]
    HealthCheckFailed(Box<HealthCheckFailure>),

    /// The health check of the release just switched to could not be run at all;
    /// `current` was switched back, but the release is not marked bad, since the
    /// check never judged it.
    #[error(
        "failed to run the health check `{command}` of {version}; {}",
        rollback_note(rolled_back_to.as_ref())
    )]
    RunHealthCheck {
        /// The release that was checked.
        version: Version,
        /// The shell command.
        command: String,
        /// The release `current` points to again, if one was current before.
        rolled_back_to: Option<Version>,
        /// Why `sh` could not be run.
        #[source]
        source: std::io::Error,
    },

    /// The on-activate hook failed or timed out; the previous slot stays active.
    #[error("{0}")]
    ActivationFailed(Box<ActivationFailure>),

    /// The on-activate hook could not be run at all (no `sh`, no temporary file).
    #[error("failed to run on-activate `{command}` for {version} in slot {slot}")]
    RunActivation {
        /// The release whose image was to be activated.
        version: Version,
        /// The hook.
        command: String,
        /// The slot holding the image.
        slot: SlotName,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// An image module's file index does not describe one file of the module's size.
    #[error("the file index of image module `{module}` does not describe an image: {problem}")]
    ImageIndex {
        /// The module.
        module: ModuleName,
        /// What is wrong.
        problem: String,
    },

    /// The image written into a slot does not hash to its file index's blake3,
    /// although its package verified: the signed manifest and index disagree.
    #[error(
        "the image of module `{module}` written to slot {slot} hashes to {actual}, but its file index says {expected}"
    )]
    ImageMismatch {
        /// The module.
        module: ModuleName,
        /// The slot written.
        slot: SlotName,
        /// The blake3 of the index.
        expected: Blake3Hash,
        /// The blake3 of what was written.
        actual: Blake3Hash,
    },

    /// Writing or flushing a slot failed; the active slot is untouched.
    #[error("failed to write slot {slot} (`{}`)", path.display())]
    WriteSlot {
        /// The slot.
        slot: SlotName,
        /// Its path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// Reading a slot (to verify it, or as a patch's base) failed.
    #[error("failed to read slot {slot} (`{}`)", path.display())]
    ReadSlot {
        /// The slot.
        slot: SlotName,
        /// Its path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// A slot no longer holds the image recorded for it (it was changed on disk).
    #[error("slot {slot} (`{}`) no longer holds the image of {version} it was written with", path.display())]
    SlotChanged {
        /// The slot.
        slot: SlotName,
        /// Its path.
        path: PathBuf,
        /// The release whose image it held.
        version: Version,
    },

    /// A rollback of the release tree would leave the active slot on the image of the
    /// release being left: the other slot does not hold the older release's image.
    #[error(
        "cannot roll back to {to}: the active slot holds the current release's image and slot {slot} does not hold {to}'s ({})",
        holds.as_ref().map_or_else(|| "it holds no image".to_owned(), |version| format!("it holds {version}'s"))
    )]
    NoImageToRollBackTo {
        /// The release rolled back to.
        to: Version,
        /// The inactive slot.
        slot: SlotName,
        /// The release whose image it holds, if any.
        holds: Option<Version>,
    },

    /// Both slots are configured with the same path.
    #[error("slots a and b are both `{}`", path.display())]
    SlotsShareAPath {
        /// The path.
        path: PathBuf,
    },
}

impl From<crate::install::error::Error> for Error {
    /// Keeps a lower layer's error where it belongs, so that a caller finds it in one
    /// place whichever layer passed it on.
    fn from(error: crate::install::error::Error) -> Self {
        match error {
            crate::install::error::Error::Net(error) => Self::Net(error),
            crate::install::error::Error::Store(error) => Self::Store(error),
            error => Self::Install(error),
        }
    }
}

impl Error {
    /// Whether the error means the site could not provide a file as described (see
    /// the install pipeline's errors), so that a more expensive way to the same
    /// content may be tried.
    pub(crate) fn is_remote(&self) -> bool {
        match self {
            Self::Net(error) => error.is_remote(),
            Self::Install(error) => error.is_remote(),
            _ => false,
        }
    }

    /// Whether the error comes from how the client was set up or invoked (a release
    /// to unmark that is not marked) rather than from the operation itself.
    pub fn is_configuration(&self) -> bool {
        match self {
            Self::Net(error) => error.is_configuration(),
            Self::Store(error) => error.is_configuration(),
            Self::Install(error) => error.is_configuration(),
            Self::NotMarkedBad { .. } | Self::SlotsShareAPath { .. } => true,
            _ => false,
        }
    }

    /// A suggestion for the user, when there is an obvious next step.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            Self::Net(error) => return error.hint(),
            Self::Store(error) => return error.hint(),
            Self::Install(error) => return error.hint(),
            Self::HealthCheckFailed(failure) => format!(
                "{0} is not installed again until a newer release is published or its mark is cleared; `wavecast-update status` lists the releases marked bad",
                failure.version
            ),
            Self::ActivationFailed(failure) if failure.marked_bad => format!(
                "{} is not installed again until a newer release is published or its mark is cleared; slot {} keeps its image for the next one; `wavecast-update status` shows the slots",
                failure.version, failure.slot
            ),
            Self::ActivationFailed(_) | Self::RunActivation { .. } => {
                "nothing was switched; fix the hook (`wavecast-update config --on-activate`) and try again"
                    .into()
            }
            Self::NoImageToRollBackTo { .. } => {
                "a later install wrote over the older image; `wavecast-update status` shows what each slot holds"
                    .into()
            }
            Self::NothingToRollBackTo { .. } => {
                "`wavecast-update status` lists the installed releases; `config --keep-releases N` keeps more of them"
                    .into()
            }
            Self::RollbackNotAllowed { .. } => {
                "start `current` as usual; run `wavecast-update launched` from the launcher as the root's owner (with systemd, `ExecStartPre=+…`), which rolls back, and `confirm` from the application as its own user"
                    .into()
            }
            _ => return storage_full_hint(self),
        })
    }
}

/// Why an install was rolled back by its health check: the payload of
/// [`Error::HealthCheckFailed`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheckFailure {
    /// The release that failed, now marked bad.
    pub version: Version,
    /// Its directory under `ROOT/releases` (deleted by the prune after the rollback,
    /// unless kept).
    pub dir: String,
    /// What the check did.
    pub report: HealthCheckReport,
    /// The release `current` points to again; `None` when there was none before (then
    /// there is no `current` now).
    pub rolled_back_to: Option<Version>,
    /// The release trees the prune after the rollback deleted.
    pub pruned: Vec<PrunedRelease>,
}

impl std::fmt::Display for HealthCheckFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} failed its health check `{}`: it {}; ",
            self.version,
            self.report.command,
            self.report.describe(),
        )?;
        match &self.rolled_back_to {
            Some(to) => write!(f, "rolled back to {to} and marked {} bad", self.version)?,
            None => write!(
                f,
                "{}, and marked {} bad",
                rollback_note(None),
                self.version
            )?,
        }
        f.write_str(&unmark_note(&self.version))
    }
}

/// An on-activate hook that failed or timed out: the payload of
/// [`Error::ActivationFailed`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivationFailure {
    /// The release whose image was to be activated.
    pub version: Version,
    /// The slot holding it, left as it is.
    pub slot: SlotName,
    /// Its path.
    pub slot_path: PathBuf,
    /// What the hook did.
    pub report: HealthCheckReport,
    /// The slot that stays active (`None`: none).
    pub active: Option<SlotName>,
    /// Whether `version` was marked bad (an install), or not (a rollback or revert,
    /// which changed nothing).
    pub marked_bad: bool,
}

impl std::fmt::Display for ActivationFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} was not activated in slot {} (`{}`): on-activate `{}` {}; ",
            self.version,
            self.slot,
            self.slot_path.display(),
            self.report.command,
            self.report.describe(),
        )?;
        match self.active {
            Some(active) => write!(f, "slot {active} stays active")?,
            None => f.write_str("no slot is active")?,
        }
        if self.marked_bad {
            write!(
                f,
                " and {} is marked bad{}",
                self.version,
                unmark_note(&self.version)
            )?;
        }
        Ok(())
    }
}

/// `marked bad: 1.1.0, 1.2.0`, or `no release is marked bad`.
fn marked_list(marked: &[Version]) -> String {
    if marked.is_empty() {
        return "no release is marked bad".to_owned();
    }
    let versions: Vec<String> = marked.iter().map(ToString::to_string).collect();
    format!("marked bad: {}", versions.join(", "))
}

/// ` (`wavecast-update unmark 1.1.0` clears the mark)`: what follows every sentence
/// saying that a release was marked bad.
pub(crate) fn unmark_note(version: &Version) -> String {
    format!(" (`{}` clears the mark)", unmark_command(version))
}

/// `wavecast-update unmark 1.1.0`: the command that clears the bad mark of `version`,
/// so that updates may install it again.
pub fn unmark_command(version: &Version) -> String {
    format!("wavecast-update unmark {version}")
}

/// `rolled back to 1.0.0`, or what happens when there was nothing to go back to.
pub(crate) fn rollback_note(to: Option<&Version>) -> String {
    match to {
        Some(version) => format!("rolled back to {version}"),
        None => "removed `current`, as no release was current before it".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unmarking_a_release_not_marked_names_the_marked_ones() {
        let error = |marked: &[&str]| Error::NotMarkedBad {
            version: "1.2.0".parse().unwrap(),
            marked: marked
                .iter()
                .map(|version| version.parse().unwrap())
                .collect(),
        };
        assert_eq!(
            error(&["1.0.0", "1.1.0"]).to_string(),
            "1.2.0 is not marked bad here; marked bad: 1.0.0, 1.1.0"
        );
        assert_eq!(
            error(&[]).to_string(),
            "1.2.0 is not marked bad here; no release is marked bad"
        );
        assert!(error(&[]).is_configuration());
    }
}
