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
//! [`recover`] runs at the start of every operation that takes the root's lock:
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

use crate::store::cache::prune;
use crate::error::{Error, Result};
use crate::install::{STAGING_PREFIX, clean_leftovers, installed_indexes, promote, switch_current};
use crate::store::root::{InstallRoot, sync_dir, write_json_atomically};
use crate::store::state::{InstalledRelease, State, peek_format};

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
}

impl InterruptedInstall {
    /// Whether the next run that takes the lock finishes the install (it reached
    /// [`InstallStep::Promote`]) rather than undoing it.
    pub fn finishes(&self) -> bool {
        self.step > InstallStep::Build
    }
}

/// What [`Updater::recover`](crate::Updater::recover) found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// The install the journal described.
    pub install: InterruptedInstall,
    /// Whether it was finished or undone.
    pub outcome: RecoveryOutcome,
}

/// How an interrupted install was resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecoveryOutcome {
    /// Its remaining steps were taken: `current` points to its release.
    Finished,
    /// Its partial tree was removed; `current` was left where it pointed.
    RolledBack,
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

/// Finishes or undoes the install a run left in the journal of `root`, as the module
/// docs describe, and removes what a killed run can leave behind. The caller holds
/// the root's lock. Returns what was found and done; `None` when no install was
/// interrupted.
///
/// # Errors
///
/// The errors of [`read`]; [`Error::Recover`] when finishing fails (the journal
/// stays, for the next run); file-system errors while undoing.
pub(crate) fn recover(root: &InstallRoot) -> Result<Option<Recovery>> {
    let Some(install) = read(root)? else {
        clean_leftovers(root)?;
        return Ok(None);
    };
    let journal = Journal {
        path: root.journal(),
        install: install.clone(),
    };
    let is_tree = |name: &str| {
        std::fs::symlink_metadata(root.releases().join(name)).is_ok_and(|meta| meta.is_dir())
    };
    let tree_left = is_tree(&install.release.dir)
        || (install.step == InstallStep::Promote
            && install.staging.as_deref().is_some_and(is_tree));
    let outcome = if install.finishes() && tree_left {
        let state_path = root.state();
        let mut state =
            State::load(&state_path)?.ok_or(Error::MissingState { path: state_path })?;
        finish(root, &mut state, journal).map_err(|source| Error::Recover {
            version: install.release.version.clone(),
            dir: install.release.dir.clone(),
            step: install.step,
            source: Box::new(source),
        })?;
        RecoveryOutcome::Finished
    } else {
        clean_leftovers(root)?;
        journal.close()?;
        RecoveryOutcome::RolledBack
    };
    Ok(Some(Recovery { install, outcome }))
}

/// Takes the steps of `journal`'s install from the one it names to the end, writing
/// the journal before each: promote, record, switch, prune. Returns the bytes pruned
/// from the download cache.
///
/// # Errors
///
/// The errors of each step; the journal then names the step that failed.
pub(crate) fn finish(root: &InstallRoot, state: &mut State, mut journal: Journal) -> Result<u64> {
    let release = journal.install.release.clone();
    if journal.install.step <= InstallStep::Promote {
        if let Some(staging) = &journal.install.staging {
            promote(root, staging, &release.dir)?;
        }
        journal.advance(InstallStep::Record)?;
    }
    if journal.install.step <= InstallStep::Record {
        if state.installed_in(&release.dir) != Some(&release) {
            state.record_install(release.clone());
            state.save(&root.state())?;
        }
        journal.advance(InstallStep::Switch)?;
    }
    if journal.install.step <= InstallStep::Switch {
        switch_current(root, &release.dir)?;
        journal.advance(InstallStep::Prune)?;
    }
    // Best effort, as the cache prune: what stays is removed by the next locked run.
    let _ = clean_leftovers(root);
    let pruned = prune(root, &installed_indexes(state));
    journal.close()?;
    Ok(pruned)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use jiff::Timestamp;

    use super::*;
    use crate::install::read_current;

    const OLD: &str = "1.0.0-000000000000";
    const NEW: &str = "1.1.0-111111111111";
    const STAGING: &str = ".staging-0123456789abcdef";

    /// A root whose `current` is `OLD`, with a recorded state, and a complete staging
    /// tree of `NEW`.
    fn root() -> (tempfile::TempDir, InstallRoot, State) {
        let temp = tempfile::tempdir().unwrap();
        let root = InstallRoot::new(temp.path());
        for (dir, content) in [(OLD, "old"), (STAGING, "new")] {
            std::fs::create_dir_all(root.releases().join(dir)).unwrap();
            std::fs::write(root.releases().join(dir).join("app"), content).unwrap();
        }
        std::fs::create_dir_all(root.meta()).unwrap();
        let mut state = State::generate().unwrap();
        state.record_install(record(OLD));
        state.save(&root.state()).unwrap();
        switch_current(&root, OLD).unwrap();
        (temp, root, state)
    }

    fn record(dir: &str) -> InstalledRelease {
        InstalledRelease {
            version: dir.split_once('-').unwrap().0.parse().unwrap(),
            dir: dir.into(),
            installed_at: Timestamp::UNIX_EPOCH,
            modules: BTreeMap::new(),
        }
    }

    fn interrupted(step: InstallStep) -> InterruptedInstall {
        InterruptedInstall {
            step,
            release: record(NEW),
            staging: Some(STAGING.into()),
            previous: Some(OLD.into()),
        }
    }

    fn current_content(root: &InstallRoot) -> String {
        std::fs::read_to_string(root.current().join("app")).unwrap()
    }

    #[test]
    fn without_a_journal_there_is_nothing_to_recover() {
        let (_temp, root, _) = root();
        assert_eq!(read(&root).unwrap(), None);
        assert_eq!(recover(&root).unwrap(), None);
        assert!(
            !root.releases().join(STAGING).exists(),
            "a staging tree no journal names is a leftover"
        );
        assert_eq!(current_content(&root), "old");
    }

    #[test]
    fn a_killed_build_is_undone_and_current_stays() {
        let (_temp, root, _) = root();
        Journal::begin(&root, interrupted(InstallStep::Build)).unwrap();
        assert_eq!(
            read(&root).unwrap().unwrap(),
            interrupted(InstallStep::Build)
        );
        let recovery = recover(&root).unwrap().unwrap();
        assert_eq!(recovery.outcome, RecoveryOutcome::RolledBack);
        assert_eq!(recovery.install.step, InstallStep::Build);
        assert!(!root.releases().join(STAGING).exists());
        assert!(!root.journal().exists());
        assert_eq!(current_content(&root), "old");
        let state = State::load(&root.state()).unwrap().unwrap();
        assert_eq!(state.installed_in(NEW), None);
    }

    /// Every later step is finished, from wherever the killed run stopped.
    #[test]
    fn a_killed_install_past_build_is_finished_from_its_step() {
        for step in [
            InstallStep::Promote,
            InstallStep::Record,
            InstallStep::Switch,
            InstallStep::Prune,
        ] {
            let (_temp, root, mut state) = root();
            // Bring the root to where a run killed just before `step` left it.
            if step > InstallStep::Promote {
                promote(&root, STAGING, NEW).unwrap();
            }
            if step > InstallStep::Record {
                state.record_install(record(NEW));
                state.save(&root.state()).unwrap();
            }
            if step > InstallStep::Switch {
                switch_current(&root, NEW).unwrap();
            }
            std::fs::create_dir_all(root.cache()).unwrap();
            std::fs::write(root.cache().join("leftover"), b"12345").unwrap();
            Journal::begin(&root, interrupted(step)).unwrap();

            let recovery = recover(&root).unwrap().unwrap();
            assert_eq!(recovery.outcome, RecoveryOutcome::Finished, "{step}");
            assert_eq!(recovery.install.step, step);
            assert_eq!(current_content(&root), "new", "{step}");
            let state = State::load(&root.state()).unwrap().unwrap();
            assert_eq!(state.installed_in(NEW), Some(&record(NEW)), "{step}");
            assert_eq!(
                read_current(&root, &state).unwrap().unwrap().dir,
                NEW,
                "{step}"
            );
            assert!(!root.releases().join(STAGING).exists(), "{step}");
            assert!(!root.cache().join("leftover").exists(), "{step}");
            assert!(!root.journal().exists(), "{step}");
            assert!(root.releases().join(OLD).join("app").is_file(), "{step}");
            assert_eq!(recover(&root).unwrap(), None, "{step}: once is enough");
        }
    }

    #[test]
    fn a_promote_killed_after_moving_the_old_tree_aside_is_finished() {
        let (_temp, root, _) = root();
        // An unfinished tree of the same name was moved aside, then the run died.
        std::fs::create_dir_all(root.releases().join(".staging-aside")).unwrap();
        Journal::begin(&root, interrupted(InstallStep::Promote)).unwrap();
        let recovery = recover(&root).unwrap().unwrap();
        assert_eq!(recovery.outcome, RecoveryOutcome::Finished);
        assert_eq!(current_content(&root), "new");
        assert!(!root.releases().join(".staging-aside").exists());
    }

    #[test]
    fn an_install_whose_tree_vanished_is_undone() {
        let (_temp, root, _) = root();
        std::fs::remove_dir_all(root.releases().join(STAGING)).unwrap();
        Journal::begin(&root, interrupted(InstallStep::Record)).unwrap();
        let recovery = recover(&root).unwrap().unwrap();
        assert_eq!(recovery.outcome, RecoveryOutcome::RolledBack);
        assert_eq!(current_content(&root), "old");
        assert!(!root.journal().exists());
    }

    #[test]
    fn a_failing_finish_keeps_the_journal_and_names_the_step() {
        let (_temp, root, _) = root();
        Journal::begin(&root, interrupted(InstallStep::Switch)).unwrap();
        promote(&root, STAGING, NEW).unwrap();
        // `current` replaced by a directory: wavecast refuses to switch it.
        std::fs::remove_file(root.current()).unwrap();
        std::fs::create_dir(root.current()).unwrap();
        let error = recover(&root).unwrap_err();
        assert!(
            matches!(
                &error,
                Error::Recover {
                    step: InstallStep::Switch,
                    ..
                }
            ),
            "{error}"
        );
        assert!(
            error
                .to_string()
                .contains("1.1.0 (`releases/1.1.0-111111111111`) from step `switch`"),
            "{error}"
        );
        let hint = error.hint().unwrap();
        assert!(hint.starts_with("move `"), "the hint of the cause: {hint}");
        assert!(root.journal().exists());
    }

    #[test]
    fn a_journal_naming_paths_outside_releases_is_refused() {
        let (_temp, root, _) = root();
        let mut install = interrupted(InstallStep::Build);
        install.staging = Some("../../etc".into());
        Journal::begin(&root, install).unwrap();
        let error = recover(&root).unwrap_err();
        assert!(matches!(error, Error::ParseJournal { .. }), "{error}");
        assert!(root.releases().join(OLD).exists());

        std::fs::write(root.journal(), b"{\"format\": 9}").unwrap();
        let error = read(&root).unwrap_err();
        assert!(
            matches!(error, Error::UnsupportedFileFormat { found: 9, .. }),
            "{error}"
        );
    }
}
