//! `ROOT/.wavecast/journal.json`: the install in progress, so that a run killed at
//! any instant (`kill -9`, a power cut) is finished or undone by the next one.
//!
//! # The state machine
//!
//! An install takes these steps in order. Before each one, the journal is rewritten
//! to name it (atomically: a temporary file, fsync, rename, fsync of `.wavecast/`),
//! together with the release being installed (its record as `state.json` will hold
//! it), its staging directory and the release `current` pointed to when it began:
//!
//! ```text
//! (none) ─▶ build ─▶ promote ─▶ record ─▶ switch ─▶ prune ─▶ (none)
//!
//! build    download into the cache; build and verify the staging tree
//!          releases/.staging-<hex>; syncfs
//! promote  move an unfinished tree of the same name aside; rename the staging tree
//!          to releases/<version>-<id>; fsync releases/
//! record   state.json records the new tree (atomic write)
//! switch   a new symlink renamed over ROOT/current; fsync ROOT
//! prune    remove what was moved aside, empty the download cache, delete the journal
//! ```
//!
//! Each step is atomic or can be taken again harmlessly, and `current` only ever
//! moves by the rename of one symlink: at every instant it points to a complete
//! release, the previous one until `switch` and the new one after it. The journal's
//! move from `build` to `promote` is the commit point: it is written only once the
//! staging tree is complete, verified and on disk.
//!
//! Recovery (the install pipeline's `commit::recover`) runs at the start of every
//! operation that takes the root's lock:
//! - no journal: nothing was interrupted (stray temporary files are removed);
//! - `build`: undo. The staging tree goes and `current` stays where it was; verified
//!   downloads stay in the cache, so the next update does not fetch them again;
//! - `promote` and later: finish. The remaining steps are taken in turn, ending with
//!   `current` on the new release; only when the new tree has vanished (removed by
//!   hand) is the install undone instead.
//!
//! A run that fails with an error rather than being killed undoes `build` itself. An
//! error from `promote` on leaves the journal for the next run to finish. A switch
//! back to a tree still under `releases/` starts at `record`.

use std::io;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::store::current::STAGING_PREFIX;
use crate::store::error::{Error, Result};
use crate::store::root::{InstallRoot, sync_dir, write_json_atomically};
use crate::store::state::{InstalledRelease, peek_format};

/// The newest journal format this build reads and writes.
const JOURNAL_FORMAT: u32 = 1;

/// One step of an install, in the order they are taken. The journal
/// (`ROOT/.wavecast/journal.json`) names each step before it is taken, so the next
/// run knows where a killed one stopped: an install interrupted at
/// [`Build`](Self::Build) is undone, one interrupted later is finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum InstallStep {
    /// Downloading and building the staging tree; undone on recovery.
    Build,
    /// Renaming the complete staging tree to `releases/<dir>`.
    Promote,
    /// Recording the new tree in `state.json`.
    Record,
    /// Pointing `current` to the new tree.
    Switch,
    /// Emptying the download cache and removing leftovers.
    Prune,
}

impl InstallStep {
    /// `build`, `promote`, `record`, `switch` or `prune`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Build => "build",
            Self::Promote => "promote",
            Self::Record => "record",
            Self::Switch => "switch",
            Self::Prune => "prune",
        }
    }
}

impl std::fmt::Display for InstallStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An install that a run left unfinished, as its journal describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterruptedInstall {
    /// The step it had reached: the journal names each step before it is taken.
    pub step: InstallStep,
    /// The release being installed, as `state.json` records it once installed.
    pub release: InstalledRelease,
    /// Its staging directory under `ROOT/releases`; absent for a switch back to a
    /// tree still there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staging: Option<String>,
    /// The directory under `ROOT/releases` that `current` pointed to when the install
    /// began, if any.
    #[serde(default)]
    pub previous: Option<String>,
    /// Whether the install only stages the release
    /// ([`Updater::stage`](crate::Updater::stage)): it ends once the tree is recorded,
    /// and `current` stays where it is.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stage_only: bool,
}

impl InterruptedInstall {
    /// Whether the next run that takes the lock finishes the install (it reached
    /// [`InstallStep::Promote`]) rather than undoing it.
    pub fn finishes(&self) -> bool {
        self.step > InstallStep::Build
    }
}

/// The journal file's shape.
#[derive(Serialize, Deserialize)]
struct JournalFile {
    format: u32,
    #[serde(flatten)]
    install: InterruptedInstall,
}

/// The journal of the install this run is carrying out.
#[derive(Debug, Clone)]
pub(crate) struct Journal {
    path: PathBuf,
    install: InterruptedInstall,
}

impl Journal {
    /// Writes the journal of a new install, at `install.step`.
    pub(crate) fn begin(root: &InstallRoot, install: InterruptedInstall) -> Result<Self> {
        let journal = Self {
            path: root.journal(),
            install,
        };
        journal.write()?;
        Ok(journal)
    }

    /// The journal `read` found, taken up again to finish or undo its install.
    pub(crate) fn resume(root: &InstallRoot, install: InterruptedInstall) -> Self {
        Self {
            path: root.journal(),
            install,
        }
    }

    /// The install this journal records.
    pub(crate) fn install(&self) -> &InterruptedInstall {
        &self.install
    }

    /// Records that `step` is about to be taken.
    pub(crate) fn advance(&mut self, step: InstallStep) -> Result<()> {
        self.install.step = step;
        self.write()
    }

    /// Deletes the journal: the install is over, finished or undone.
    pub(crate) fn close(&self) -> Result<()> {
        let journal_error = |source| Error::Journal {
            action: "remove",
            path: self.path.clone(),
            source,
        };
        match std::fs::remove_file(&self.path) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(source) => return Err(journal_error(source)),
        }
        match self.path.parent() {
            Some(dir) => sync_dir(dir).map_err(journal_error),
            None => Ok(()),
        }
    }

    fn write(&self) -> Result<()> {
        write_json_atomically(
            &self.path,
            &JournalFile {
                format: JOURNAL_FORMAT,
                install: self.install.clone(),
            },
        )
    }
}

/// The install the journal of `root` describes, if a run left one. Reads only.
///
/// # Errors
///
/// [`Error::Journal`] when the file cannot be read, [`Error::ParseJournal`] when it is
/// not a journal (or names paths outside `ROOT/releases`),
/// [`Error::UnsupportedFileFormat`] when a newer client wrote it.
pub(crate) fn read(root: &InstallRoot) -> Result<Option<InterruptedInstall>> {
    let path = root.journal();
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(Error::Journal {
                action: "read",
                path,
                source,
            });
        }
    };
    let parse_error = |source| Error::ParseJournal {
        path: path.clone(),
        source,
    };
    let format = peek_format(&bytes).map_err(parse_error)?;
    if format > JOURNAL_FORMAT {
        return Err(Error::UnsupportedFileFormat {
            path,
            found: format,
            supported: JOURNAL_FORMAT,
        });
    }
    let file: JournalFile = serde_json::from_slice(&bytes).map_err(parse_error)?;
    let install = file.install;
    // Names of entries of `releases/`: no separators, no `.` or `..`.
    let release = |name: &str| !name.is_empty() && !name.contains('/') && !name.starts_with('.');
    let staging = |name: &str| {
        name.strip_prefix(STAGING_PREFIX)
            .is_some_and(|rest| !rest.is_empty() && !rest.contains('/'))
    };
    let names_ok = release(&install.release.dir)
        && install.staging.as_deref().is_none_or(staging)
        && install.previous.as_deref().is_none_or(release);
    if !names_ok {
        return Err(parse_error(serde::de::Error::custom(
            "a directory name is not a plain name under `releases/`",
        )));
    }
    Ok(Some(install))
}
