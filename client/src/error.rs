//! Errors of the library: each layer's own, as that layer raised it, and those of the
//! [`Updater`](crate::Updater) facade itself (a release a person chose that cannot be
//! installed as asked, a self-update that failed).
//!
//! Each variant is named after the operation that failed and carries the URL, path or
//! version involved; the underlying cause, when there is one, is its
//! [`source`](std::error::Error::source) and is never repeated in the message, so a
//! renderer that walks the cause chain prints every fact once. A lower layer's error
//! is always found under its own layer's variant ([`Error::Net`], [`Error::Store`],
//! [`Error::Install`], [`Error::Lifecycle`]), whichever layers passed it on.

use std::path::PathBuf;

use semver::Version;
use wavecast_schema::{ChannelName, Platform, VersionPin};

pub use crate::install::error::Error as InstallError;
pub use crate::lifecycle::error::Error as LifecycleError;
pub use crate::net::error::Error as NetError;
pub use crate::store::error::Error as StoreError;
use crate::store::error::storage_full_hint;
use crate::updater::decision::HeldBack;

/// A `Result` whose error is this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// Why a client operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A URL, a key, or the site's manifest could not be used.
    #[error(transparent)]
    Net(NetError),

    /// The install root, or one of its files, could not be used.
    #[error(transparent)]
    Store(StoreError),

    /// A release could not be installed.
    #[error(transparent)]
    Install(InstallError),

    /// A health check, a trial, a rollback or an image slot failed.
    #[error(transparent)]
    Lifecycle(LifecycleError),

    /// A chosen version is not a release of the channel for this platform.
    #[error(
        "channel `{channel}` has no release {version} for platform `{platform}`; it lists {}",
        version_list(listed)
    )]
    NotListed {
        /// The version asked for.
        version: Version,
        /// The channel.
        channel: ChannelName,
        /// The client's platform.
        platform: Platform,
        /// The versions it lists for the platform, oldest first.
        listed: Vec<Version>,
    },

    /// A chosen release was yanked.
    #[error("{version} was yanked: it is offered to nobody")]
    ChosenYanked {
        /// The version asked for.
        version: Version,
    },

    /// A chosen release is off the client's pin.
    #[error("{version} is outside the pin {pin} this client stays on")]
    ChosenOffPin {
        /// The version asked for.
        version: Version,
        /// The pin.
        pin: VersionPin,
    },

    /// A chosen release is marked bad on this machine.
    #[error("{version} is marked bad on this machine")]
    ChosenMarkedBad {
        /// The version asked for.
        version: Version,
    },

    /// A chosen release is older than the installed one, without
    /// `--allow-downgrade`.
    #[error("{version} is older than the installed {current}")]
    ChosenDowngrade {
        /// The version asked for.
        version: Version,
        /// The installed version.
        current: Version,
    },

    /// The rollout does not offer a chosen release to this client now, and `--now`
    /// was not given.
    #[error("{0}, so it is not offered to this client now")]
    ChosenNotOffered(Box<HeldBack>),

    /// [`crate::Updater::install`] was called with a check that offers no update.
    #[error("there is no update to install")]
    NothingToInstall,

    /// The path of the running executable could not be found.
    #[error("failed to find the path of the running wavecast-update")]
    LocateExecutable {
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The directory of the executable to replace does not let this user write in it.
    #[error(
        "cannot replace `{}`: failed to write in its directory `{}`",
        executable.display(),
        dir.display()
    )]
    ExecutableNotWritable {
        /// The executable.
        executable: PathBuf,
        /// Its directory.
        dir: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// A release with an image module cannot be staged: the image is activated as it
    /// is written.
    #[error(
        "release {version} has an image module, which is activated as it is written: install it instead of staging it"
    )]
    StageImage {
        /// The release.
        version: Version,
    },

    /// The current release's program could not be started in place of this process.
    #[error("failed to restart into `{}`", program.display())]
    Restart {
        /// The program.
        program: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// An updater package holds something else than the one executable.
    #[error(
        "the updater package `{url}` must hold only the file `wavecast-update`; it holds {found}"
    )]
    UpdaterPackage {
        /// The package's URL.
        url: String,
        /// What it holds instead, for the message.
        found: String,
    },

    /// The downloaded executable could not be started.
    #[error("failed to run the downloaded wavecast-update `{}`", path.display())]
    RunUpdater {
        /// The downloaded executable.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The downloaded executable did not answer `--version` as a wavecast-update does.
    #[error("the downloaded wavecast-update `{}` {problem}", path.display())]
    UpdaterMisbehaved {
        /// The downloaded executable.
        path: PathBuf,
        /// What it did, e.g. `exited with status 1 on --version`.
        problem: String,
    },

    /// The downloaded executable reports another version than the manifest offers
    /// it as.
    #[error(
        "the downloaded wavecast-update `{}` reports version {reported}, but the manifest offers it as {expected}; refusing to install it",
        path.display()
    )]
    UpdaterVersionMismatch {
        /// The downloaded executable.
        path: PathBuf,
        /// What its `--version` said.
        reported: Version,
        /// The build's version in the manifest.
        expected: Version,
    },

    /// Keeping the old executable, or moving the new one into place, failed.
    #[error("failed to {action} `{}`", path.display())]
    ReplaceExecutable {
        /// What was being done (`keep the old executable as`, `replace`…).
        action: &'static str,
        /// The file written.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl From<NetError> for Error {
    fn from(error: NetError) -> Self {
        Self::Net(error)
    }
}

impl From<StoreError> for Error {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

impl From<InstallError> for Error {
    /// Keeps a lower layer's error under its own layer's variant.
    fn from(error: InstallError) -> Self {
        match error {
            InstallError::Net(error) => Self::Net(error),
            InstallError::Store(error) => Self::Store(error),
            error => Self::Install(error),
        }
    }
}

impl From<LifecycleError> for Error {
    /// Keeps a lower layer's error under its own layer's variant.
    fn from(error: LifecycleError) -> Self {
        match error {
            LifecycleError::Net(error) => Self::Net(error),
            LifecycleError::Store(error) => Self::Store(error),
            LifecycleError::Install(error) => Self::Install(error),
            error => Self::Lifecycle(error),
        }
    }
}

impl Error {
    /// Whether the error comes from how the client was set up or invoked (a missing or
    /// invalid configuration, a bad URL or key, a release asked for that cannot be
    /// installed as asked) rather than from the operation itself.
    /// `wavecast-update` exits with 2 for these and 1 for the rest.
    pub fn is_configuration(&self) -> bool {
        match self {
            Self::Net(error) => error.is_configuration(),
            Self::Store(error) => error.is_configuration(),
            Self::Install(error) => error.is_configuration(),
            Self::Lifecycle(error) => error.is_configuration(),
            Self::NotListed { .. }
            | Self::ChosenYanked { .. }
            | Self::ChosenOffPin { .. }
            | Self::ChosenMarkedBad { .. }
            | Self::ChosenDowngrade { .. }
            | Self::ChosenNotOffered(_)
            | Self::StageImage { .. } => true,
            _ => false,
        }
    }

    /// Whether an install stopped because its [`Cancel`](crate::Cancel) handle was
    /// triggered: nothing changed, and the install can simply be run again.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, Self::Install(InstallError::Cancelled))
    }

    /// A suggestion for the user, when there is an obvious next step.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            Self::Net(error) => return error.hint(),
            Self::Store(error) => return error.hint(),
            Self::Install(error) => return error.hint(),
            Self::Lifecycle(error) => return error.hint(),
            Self::ExecutableNotWritable { dir, .. } => format!(
                "run the update as a user who may write to `{}`, or install wavecast-update where this user can",
                dir.display()
            ),
            Self::UpdaterPackage { .. }
            | Self::RunUpdater { .. }
            | Self::UpdaterMisbehaved { .. }
            | Self::UpdaterVersionMismatch { .. } => {
                "this wavecast-update is unchanged; the publisher must offer a build that runs on this platform and reports the version it is offered as"
                    .into()
            }
            Self::NotListed { .. } => {
                "`wavecast-update list` shows every release of the channel and what it is to this client"
                    .into()
            }
            Self::ChosenYanked { .. } => {
                "the publisher withdrew it; `wavecast-update list` shows the releases that can be installed"
                    .into()
            }
            Self::ChosenOffPin { pin, .. } => format!(
                "`wavecast-update config --unpin` follows the whole channel again; `config --pin` another line moves the pin (it stays on {pin} now)"
            ),
            Self::ChosenMarkedBad { version } => format!(
                "it failed here before; `wavecast-update unmark {version}` clears the mark if you want to try it again"
            ),
            Self::ChosenDowngrade { .. } => {
                "add --allow-downgrade to go back to it".into()
            }
            Self::ChosenNotOffered(_) => {
                "add --now to install it anyway: a person's choice skips shares, ramps, pauses, rules and caps (never a yank)"
                    .into()
            }
            _ => return storage_full_hint(self),
        })
    }
}

/// `1.0.0, 1.1.0 and 2.0.0`, or `nothing` for none.
fn version_list(versions: &[Version]) -> String {
    match versions {
        [] => "nothing".to_owned(),
        [one] => one.to_string(),
        [rest @ .., last] => format!(
            "{} and {last}",
            rest.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}
