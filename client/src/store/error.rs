//! Errors of the storage layer: an install root that is missing, unreadable, locked,
//! not this user's to write, or holds a file it cannot read.
//!
//! The layers above share its hints for local I/O ([`local_io_hint`],
//! [`storage_full_hint`]): a file of the root that this user may not write, or on a
//! read-only or full file system, gets the same advice whichever layer touched it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::units::format_duration;

/// A `Result` whose error is the storage layer's [`Error`].
pub(crate) type Result<T> = std::result::Result<T, Error>;

/// Why the install root, or one of its files, could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The install root has no configuration: `wavecast-update init` was never run
    /// for it.
    #[error("`{}` is not a wavecast install root (no `{}`)", root.display(), config.display())]
    NotInitialized {
        /// The install root.
        root: PathBuf,
        /// The configuration file that is missing.
        config: PathBuf,
    },

    /// `init` was asked to set up a root that already has a configuration.
    #[error("`{}` is already initialized", root.display())]
    AlreadyInitialized {
        /// The install root.
        root: PathBuf,
    },

    /// Creating the install root or one of its directories failed.
    #[error("failed to create directory `{}`", path.display())]
    CreateDirectory {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// Reading the configuration file failed.
    #[error("failed to read configuration `{}`", path.display())]
    ReadConfig {
        /// The configuration file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The configuration file is not valid.
    #[error("configuration `{}` is invalid", path.display())]
    ParseConfig {
        /// The configuration file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: serde_json::Error,
    },

    /// The configuration or state file declares a format newer than this client reads.
    #[error(
        "`{}` uses format {found}, but this wavecast-update understands format {supported} at most",
        path.display()
    )]
    UnsupportedFileFormat {
        /// The file.
        path: PathBuf,
        /// The format it declares.
        found: u32,
        /// The newest format this build reads.
        supported: u32,
    },

    /// The configuration lists no base URL.
    #[error("configuration `{}` lists no URL to update from", path.display())]
    NoUrls {
        /// The configuration file.
        path: PathBuf,
    },

    /// Reading the state file failed.
    #[error("failed to read state `{}`", path.display())]
    ReadState {
        /// The state file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The install root has a configuration but no state file.
    #[error("state file `{}` is missing", path.display())]
    MissingState {
        /// The state file.
        path: PathBuf,
    },

    /// The state file is corrupt. It is never reset silently, because it holds the
    /// install id and the rollback-protection serials.
    #[error("state file `{}` is corrupt", path.display())]
    ParseState {
        /// The state file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: serde_json::Error,
    },

    /// Writing a configuration or state file failed; the previous content is untouched.
    #[error("failed to write `{}`", path.display())]
    WriteFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// Taking the install root's lock failed.
    #[error("failed to lock `{}`", path.display())]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// This process may not write in the install root's `.wavecast/`: only the root's
    /// owner may install, roll back, check (which records what it saw) or change the
    /// configuration. Also a read-only file system.
    #[error("this user may not write in `{}`", path.display())]
    NotWritable {
        /// `ROOT/.wavecast`.
        path: PathBuf,
        /// Why (`EACCES`, `EROFS`…).
        #[source]
        source: std::io::Error,
    },

    /// The trial file is not valid JSON of the expected shape.
    #[error("the trial file `{}` is corrupt", path.display())]
    ParseTrial {
        /// `ROOT/.wavecast/shared/trial.json`.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: serde_json::Error,
    },

    /// `--group` names no group of the system.
    #[error("unknown group `{group}`")]
    UnknownGroup {
        /// The name as given.
        group: String,
    },

    /// The system's group database could not be read.
    #[error("failed to look up group `{group}`")]
    LookUpGroup {
        /// The name as given.
        group: String,
        /// The C library's error.
        #[source]
        source: std::io::Error,
    },

    /// Setting the group or mode of a file of the root failed (`--group`).
    #[error("failed to set the group and mode of `{}`", path.display())]
    SetAccess {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// Another `wavecast-update` holds the install root's lock (and still did after
    /// waiting, when asked to wait).
    #[error(
        "another wavecast-update{} is working on this install root: `{}` is locked{}",
        holder.map(|pid| format!(" (process {pid})")).unwrap_or_default(),
        path.display(),
        waited_note(*waited)
    )]
    Locked {
        /// The lock file.
        path: PathBuf,
        /// The process id the holder wrote into the lock file, if it could be read.
        holder: Option<u32>,
        /// How long this run waited for the lock before giving up.
        waited: Duration,
    },

    /// Reading or removing the install journal failed.
    #[error("failed to {action} the install journal `{}`", path.display())]
    Journal {
        /// `read` or `remove`.
        action: &'static str,
        /// The journal file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The install journal is not valid JSON of the expected shape.
    #[error("failed to parse the install journal `{}`", path.display())]
    ParseJournal {
        /// The journal file.
        path: PathBuf,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },

    /// The operating system's random number generator failed.
    #[error("failed to get random bytes from the operating system")]
    Random {
        /// The generator's error.
        #[source]
        source: getrandom::Error,
    },

    /// A `--attr` argument is not `KEY=VALUE`.
    #[error("invalid attribute `{argument}`: expected KEY=VALUE")]
    InvalidAttribute {
        /// The argument as given.
        argument: String,
    },

    /// An attribute name has characters rules cannot name.
    #[error("invalid attribute name `{key}`: use ASCII letters, digits, `.`, `_` and `-` only")]
    InvalidAttributeKey {
        /// The name as given.
        key: String,
    },

    /// `ROOT/current` exists but is not a symlink, so it was not made by wavecast.
    #[error("`{}` is not a symlink; wavecast will not replace a directory it did not create", path.display())]
    CurrentNotSymlink {
        /// The `current` path.
        path: PathBuf,
    },

    /// `ROOT/current` points somewhere wavecast never installs to.
    #[error("`{}` points to `{target}`, which is not a wavecast release", path.display())]
    UnrecognizedCurrent {
        /// The `current` path.
        path: PathBuf,
        /// Where it points.
        target: String,
    },

    /// Reading `ROOT/current` failed.
    #[error("failed to read `{}`", path.display())]
    ReadCurrent {
        /// The `current` path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// Reading the slots' record failed.
    #[error("failed to read the slots' record `{}`", path.display())]
    ReadSlots {
        /// `ROOT/.wavecast/slots.json`.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The slots' record is not valid.
    #[error("the slots' record `{}` is invalid", path.display())]
    ParseSlots {
        /// `ROOT/.wavecast/slots.json`.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: serde_json::Error,
    },
}

impl Error {
    /// Whether the error comes from how the client was set up or invoked (a missing or
    /// invalid configuration, an attribute or group that cannot be used) rather than
    /// from the operation itself.
    pub fn is_configuration(&self) -> bool {
        matches!(
            self,
            Self::NotInitialized { .. }
                | Self::AlreadyInitialized { .. }
                | Self::ReadConfig { .. }
                | Self::ParseConfig { .. }
                | Self::NoUrls { .. }
                | Self::MissingState { .. }
                | Self::InvalidAttribute { .. }
                | Self::InvalidAttributeKey { .. }
                | Self::UnknownGroup { .. }
        )
    }

    /// A suggestion for the user, when there is an obvious next step.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            Self::NotInitialized { root, .. } => format!(
                "run `wavecast-update init --root {} --url URL --pubkey KEY` (or --trusted-root FILE) first",
                root.display()
            ),
            Self::AlreadyInitialized { .. } => {
                "pass --force to rewrite the configuration; the install id and state are kept"
                    .into()
            }
            Self::ParseState { path, .. } => format!(
                "the file holds this client's install id; repair `{}` by hand or restore it from a backup",
                path.display()
            ),
            Self::MissingState { .. } => {
                "run `wavecast-update init --force` to create a new one; this client gets a new install id"
                    .into()
            }
            Self::Locked { .. } => {
                "wait for the other run to finish, or pass `--wait 60s` to wait for it; the lock is released when its holder exits or dies, so never delete the lock file"
                    .into()
            }
            Self::ParseJournal { path, .. } => format!(
                "`current` points to a complete release either way; remove `{}` and run `wavecast-update update` again",
                path.display()
            ),
            Self::CurrentNotSymlink { path } => format!(
                "move `{}` out of the way; wavecast manages it as {} `releases/`",
                path.display(),
                if cfg!(unix) {
                    "a symlink into"
                } else {
                    "a small file naming a folder of"
                }
            ),
            Self::NotWritable { path, source } if !is_read_only(source) => format!(
                "only the owner of `{}` (the user that ran `init`) may install, check, roll back or reconfigure this root: run this as that user; members of the group given to `init --group` or `config --group` may run `confirm`, `launched` and `status`",
                path.display()
            ),
            Self::ParseTrial { path, .. } => format!(
                "remove `{}`: the current release then counts as confirmed",
                path.display()
            ),
            Self::UnknownGroup { .. } => {
                "name an existing group (`getent group NAME`) that the application's user is in, or create one with `groupadd`"
                    .into()
            }
            Self::SetAccess { source, .. }
                if source.kind() == std::io::ErrorKind::PermissionDenied =>
            {
                "only root, or an owner who is a member of the group, may share the root with it".into()
            }
            Self::CreateDirectory { path, source }
            | Self::ReadConfig { path, source }
            | Self::ReadState { path, source }
            | Self::WriteFile { path, source }
            | Self::Lock { path, source }
            | Self::Journal { path, source, .. }
            | Self::ReadCurrent { path, source }
            | Self::ReadSlots { path, source } => return local_io_hint(path, source, self),
            Self::NotWritable { path, .. } => read_only_hint(path),
            _ => return storage_full_hint(self),
        })
    }
}

/// The hint for an error reading or writing `path`, a file of the install root, with
/// `source`: for a read-only file system, a file this user may not access, or a full
/// file system. `error` is the whole error, whose causes are searched for a full file
/// system.
pub(crate) fn local_io_hint(
    path: &Path,
    source: &std::io::Error,
    error: &(dyn std::error::Error + 'static),
) -> Option<String> {
    if is_read_only(source) {
        Some(read_only_hint(path))
    } else if source.kind() == std::io::ErrorKind::PermissionDenied {
        Some(format!(
            "this user may not access `{}`: run wavecast-update as the owner of the install root (the user that ran `init`), or, for `confirm` and `launched`, have the owner share the root with a group of this user (`wavecast-update config --group GROUP`, or `init --group GROUP`)",
            path.display()
        ))
    } else {
        storage_full_hint(error)
    }
}

/// The hint for a full file system (`ENOSPC`), when `error` or one of its causes is
/// one.
pub(crate) fn storage_full_hint(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if error
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::StorageFull)
        {
            return Some(
                "the file system is full and `current` still points to a complete release; free some space, then run the update again"
                    .into(),
            );
        }
        cause = error.source();
    }
    None
}

/// Whether `error` is a read-only file system (`EROFS`).
fn is_read_only(error: &std::io::Error) -> bool {
    error.kind() == std::io::ErrorKind::ReadOnlyFilesystem
}

/// The hint for a file on a read-only file system.
fn read_only_hint(path: &Path) -> String {
    format!(
        "`{}` is on a read-only file system: remount it read-write to change this install root; the installed release is untouched",
        path.display()
    )
}

/// ` (waited 1m)` after a wait; nothing when the run did not wait.
fn waited_note(waited: Duration) -> String {
    if waited.is_zero() {
        String::new()
    } else {
        format!(" (waited {})", format_duration(waited))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The system's own error codes, so that their mapping to the kinds the hints go
    /// by is tested too.
    #[cfg(unix)]
    mod code {
        pub(super) const DENIED: i32 = libc::EACCES;
        pub(super) const READ_ONLY: i32 = libc::EROFS;
        pub(super) const IO: i32 = libc::EIO;
    }
    #[cfg(windows)]
    mod code {
        use windows_sys::Win32::Foundation as win32;
        pub(super) const DENIED: i32 = win32::ERROR_ACCESS_DENIED as i32;
        pub(super) const READ_ONLY: i32 = win32::ERROR_WRITE_PROTECT as i32;
        pub(super) const IO: i32 = win32::ERROR_IO_DEVICE as i32;
    }

    #[test]
    fn files_this_user_may_not_write_are_named_with_the_fix() {
        let path = PathBuf::from("/opt/app/.wavecast/state.json");
        let denied = Error::WriteFile {
            path: path.clone(),
            source: std::io::Error::from_raw_os_error(code::DENIED),
        };
        let hint = denied.hint().unwrap();
        assert!(
            hint.starts_with("this user may not access `/opt/app/.wavecast/state.json`: run wavecast-update as the owner of the install root")
                && hint.contains("`wavecast-update config --group GROUP`, or `init --group GROUP`"),
            "{hint}"
        );
        let read_only = Error::Lock {
            path: "/opt/app/.wavecast/lock".into(),
            source: std::io::Error::from_raw_os_error(code::READ_ONLY),
        };
        assert_eq!(
            read_only.hint().unwrap(),
            "`/opt/app/.wavecast/lock` is on a read-only file system: remount it read-write to change this install root; the installed release is untouched"
        );
        let member = Error::NotWritable {
            path: "/opt/app/.wavecast".into(),
            source: std::io::Error::from_raw_os_error(code::DENIED),
        };
        assert!(
            member
                .hint()
                .unwrap()
                .starts_with("only the owner of `/opt/app/.wavecast` (the user that ran `init`)"),
            "{member}"
        );
        // Other I/O errors keep their own hints, or none.
        let other = Error::WriteFile {
            path,
            source: std::io::Error::from_raw_os_error(code::IO),
        };
        assert_eq!(other.hint(), None);
    }
}
