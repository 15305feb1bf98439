//! Committing an install: flushing the staging tree, promoting it under
//! `releases/`, recording it and switching `ROOT/current`, each step journaled first
//! (see [`crate::store::journal`] for the state machine), and finishing or undoing an
//! install a killed run left ([`recover`]).

use std::io;
use std::path::{Path, PathBuf};

use crate::install::error::{Error, Result};
use crate::store::cache::prune;
use crate::store::current::{CURRENT_TEMP_PREFIX, STAGING_PREFIX};
use crate::store::error::Error as StoreError;
use crate::store::journal::{InstallStep, InterruptedInstall, Journal, read};
use crate::store::root::{ATOMIC_TEMP_PREFIX, InstallRoot, random_hex, remove_tree, sync_dir};
use crate::store::state::{InstalledRelease, State, installed_indexes};
/// Renames the complete staging tree `releases/<staging>` to `releases/<dir>`, then
/// flushes `releases/`. A tree already at `releases/<dir>` (left by an install that
/// did not finish, or installed but not current and no longer intact) is first
/// renamed aside to a staging name, so that `releases/<dir>` is never a half-removed
/// tree; [`clean_leftovers`] removes it later. Taken again after the staging tree
/// was renamed, it only flushes.
pub(crate) fn promote(root: &InstallRoot, staging: &str, dir: &str) -> Result<()> {
    let releases = root.releases();
    let (staging, destination) = (releases.join(staging), releases.join(dir));
    let release_error = |action, path: &Path| {
        let path = path.to_owned();
        move |source| Error::Release {
            action,
            path,
            source,
        }
    };
    if std::fs::symlink_metadata(&staging).is_ok() {
        if std::fs::symlink_metadata(&destination).is_ok() {
            let aside = releases.join(format!("{STAGING_PREFIX}{}", random_hex(8)?));
            std::fs::rename(&destination, &aside)
                .map_err(release_error("move aside", &destination))?;
        }
        std::fs::rename(&staging, &destination).map_err(release_error("rename", &staging))?;
    }
    sync_dir(&releases).map_err(release_error("flush", &releases))
}

/// Points `ROOT/current` to `releases/<dir>` atomically, then flushes the root
/// directory. On Unix a new relative symlink is renamed over the old one; on
/// Windows, where a symlink needs administrator rights and a junction cannot be
/// renamed over another, `current` is a small file naming the directory (see
/// [`read_current`](crate::store::current::read_current)), replaced the same way.
pub(crate) fn switch_current(root: &InstallRoot, dir: &str) -> Result<()> {
    let current = root.current();
    let target = format!("releases/{dir}");
    let switch_error = |source| Error::SwitchCurrent {
        path: current.clone(),
        target: target.clone(),
        source,
    };
    // Only a `current` wavecast made is replaced: a symlink on Unix, a file on Windows
    // (where renaming over a directory would fail as "access denied").
    if let Ok(metadata) = std::fs::symlink_metadata(&current) {
        let made = if cfg!(unix) {
            metadata.file_type().is_symlink()
        } else {
            metadata.is_file()
        };
        if !made {
            return Err(StoreError::CurrentNotSymlink { path: current }.into());
        }
    }
    let temp = root
        .path()
        .join(format!("{CURRENT_TEMP_PREFIX}{}", random_hex(8)?));
    #[cfg(unix)]
    std::os::unix::fs::symlink(&target, &temp).map_err(switch_error)?;
    #[cfg(not(unix))]
    std::fs::write(&temp, format!("{target}\n"))
        .and_then(|()| crate::platform::sync_file(&temp))
        .map_err(switch_error)?;
    if let Err(source) = std::fs::rename(&temp, &current) {
        let _ = std::fs::remove_file(&temp);
        return Err(switch_error(source));
    }
    sync_dir(root.path()).map_err(switch_error)
}

/// Removes what a killed run can leave behind: staging trees (and trees moved aside
/// by [`promote`]), temporary `current` symlinks, and the temporary files of atomic
/// writes in `.wavecast/` (a member of the root's group's too). Partial downloads
/// stay in the cache, to be resumed. The caller holds the root's lock, so no other
/// run is writing any of them.
pub(crate) fn clean_leftovers(root: &InstallRoot) -> Result<()> {
    let remove_error = |path: PathBuf| {
        move |source| Error::Release {
            action: "remove",
            path,
            source,
        }
    };
    for (dir, prefix) in [
        (root.releases(), STAGING_PREFIX),
        (root.path().to_owned(), CURRENT_TEMP_PREFIX),
        (root.meta(), ATOMIC_TEMP_PREFIX),
        (root.shared(), ATOMIC_TEMP_PREFIX),
        (root.manifests(), ATOMIC_TEMP_PREFIX),
    ] {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
            Err(source) => {
                return Err(Error::Release {
                    action: "list",
                    path: dir,
                    source,
                });
            }
        };
        for entry in entries {
            let entry = entry.map_err(remove_error(dir.clone()))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(prefix) && name.len() > prefix.len() {
                let path = entry.path();
                remove_tree(&path).map_err(remove_error(path.clone()))?;
            }
        }
    }
    Ok(())
}

/// The `build` step in progress: the journal naming it and the staging tree under
/// `releases/`. Dropped before [`built`](Self::built) (an error while building), it
/// undoes the step: the tree goes, then the journal.
pub(super) struct Building {
    staging: PathBuf,
    journal: Journal,
    done: bool,
}

impl Building {
    /// Writes the journal of the install of `release` over `previous` at
    /// [`InstallStep::Build`], naming a new staging directory, then creates that
    /// directory.
    pub(super) fn begin(
        root: &InstallRoot,
        release: InstalledRelease,
        previous: Option<String>,
        stage_only: bool,
    ) -> Result<Self> {
        let name = format!("{STAGING_PREFIX}{}", random_hex(8)?);
        let staging = root.releases().join(&name);
        let journal = Journal::begin(
            root,
            InterruptedInstall {
                step: InstallStep::Build,
                release,
                staging: Some(name),
                previous,
                stage_only,
            },
        )?;
        let building = Self {
            staging,
            journal,
            done: false,
        };
        std::fs::create_dir(&building.staging).map_err(|source| StoreError::CreateDirectory {
            path: building.staging.clone(),
            source,
        })?;
        Ok(building)
    }

    pub(super) fn path(&self) -> &Path {
        &self.staging
    }

    /// The tree is complete and on disk: records the commit point (the journal moves
    /// to [`InstallStep::Promote`]) and hands the journal over.
    pub(super) fn built(mut self) -> Result<Journal> {
        self.journal.advance(InstallStep::Promote)?;
        self.done = true;
        Ok(self.journal.clone())
    }
}

impl Drop for Building {
    fn drop(&mut self) {
        if !self.done {
            // Best effort: whatever stays is undone by the next locked run, which
            // finds the journal at `build`.
            if remove_tree(&self.staging).is_ok() || !self.staging.exists() {
                let _ = self.journal.close();
            }
        }
    }
}

/// Flushes the file system holding `dir` to disk, so the release tree is durable
/// before it is renamed into place.
#[cfg(target_os = "linux")]
pub(super) fn sync_filesystem(dir: &Path) -> io::Result<()> {
    rustix::fs::syncfs(std::fs::File::open(dir)?).map_err(io::Error::from)
}

/// Flushes every file under `dir` to disk (Windows: NTFS journals the folders).
#[cfg(not(any(target_os = "linux", target_vendor = "apple")))]
pub(super) fn sync_filesystem(dir: &Path) -> io::Result<()> {
    sync_tree(dir, &crate::platform::sync_file, &crate::platform::sync_dir)
}

/// Flushes every file and directory under `dir` to disk, then the drive's cache once.
///
/// On macOS `fsync(2)` hands the data to the drive but leaves it in the drive's own
/// cache, where a power loss can still lose it; `fcntl(F_FULLFSYNC)` (which is what
/// `File::sync_all` does there) also flushes that cache, for the whole drive, and is
/// slow. So each file and directory is `fsync`ed, and one `F_FULLFSYNC` of `dir`
/// then flushes the drive's cache for all of them: the guarantee one `syncfs` gives
/// on Linux, at the price of one cache flush. A file system that has no
/// `F_FULLFSYNC` (some network ones) keeps what `fsync` gave.
#[cfg(target_vendor = "apple")]
pub(super) fn sync_filesystem(dir: &Path) -> io::Result<()> {
    let fsync =
        |path: &Path| rustix::fs::fsync(std::fs::File::open(path)?).map_err(io::Error::from);
    sync_tree(dir, &fsync, &fsync)?;
    match rustix::fs::fcntl_fullfsync(std::fs::File::open(dir)?) {
        Err(rustix::io::Errno::NOTSUP | rustix::io::Errno::INVAL) => Ok(()),
        result => result.map_err(io::Error::from),
    }
}

/// Calls `sync_file` on every file under `dir` and `sync_dir` on every directory,
/// `dir` last (a symbolic link is part of its directory, and is never opened: it may
/// point anywhere, or nowhere).
#[cfg(not(target_os = "linux"))]
fn sync_tree(
    dir: &Path,
    sync_file: &dyn Fn(&Path) -> io::Result<()>,
    sync_dir: &dyn Fn(&Path) -> io::Result<()>,
) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let file_type = entry.file_type()?;
        if file_type.is_dir() {
            sync_tree(&entry.path(), sync_file, sync_dir)?;
        } else if file_type.is_file() {
            sync_file(&entry.path())?;
        }
    }
    sync_dir(dir)
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
    let journal = Journal::resume(root, install.clone());
    let is_tree = |name: &str| {
        std::fs::symlink_metadata(root.releases().join(name)).is_ok_and(|meta| meta.is_dir())
    };
    let tree_left = is_tree(&install.release.dir)
        || (install.step == InstallStep::Promote
            && install.staging.as_deref().is_some_and(is_tree));
    let outcome = if install.finishes() && tree_left {
        let state_path = root.state();
        let mut state =
            State::load(&state_path)?.ok_or(StoreError::MissingState { path: state_path })?;
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
    let release = journal.install().release.clone();
    if journal.install().step <= InstallStep::Promote {
        if let Some(staging) = &journal.install().staging {
            promote(root, staging, &release.dir)?;
        }
        journal.advance(InstallStep::Record)?;
    }
    if journal.install().step <= InstallStep::Record {
        if state.installed_in(&release.dir) != Some(&release) {
            state.record_install(release.clone());
            state.save(&root.state())?;
        }
        // A staged release is only recorded: `current` stays.
        let next = if journal.install().stage_only {
            InstallStep::Prune
        } else {
            InstallStep::Switch
        };
        journal.advance(next)?;
    }
    if journal.install().step <= InstallStep::Switch {
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
    use crate::store::current::read_current;

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
            stage_only: false,
        }
    }

    fn current_content(root: &InstallRoot) -> String {
        std::fs::read_to_string(crate::store::current::current_tree(root).join("app")).unwrap()
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

    /// A stage killed after its tree was built is finished as a stage: the tree is
    /// promoted and recorded, and `current` stays.
    #[test]
    fn a_killed_stage_is_finished_without_switching() {
        for step in [InstallStep::Promote, InstallStep::Record] {
            let (_temp, root, _) = root();
            if step > InstallStep::Promote {
                promote(&root, STAGING, NEW).unwrap();
            }
            let stage = InterruptedInstall {
                stage_only: true,
                ..interrupted(step)
            };
            Journal::begin(&root, stage).unwrap();
            let recovery = recover(&root).unwrap().unwrap();
            assert_eq!(recovery.outcome, RecoveryOutcome::Finished, "{step:?}");
            assert_eq!(current_content(&root), "old", "{step:?}");
            assert_eq!(
                std::fs::read_to_string(root.releases().join(NEW).join("app")).unwrap(),
                "new"
            );
            let state = State::load(&root.state()).unwrap().unwrap();
            assert_eq!(state.installed_in(NEW), Some(&record(NEW)), "{step:?}");
            assert!(!root.journal().exists());
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
        assert!(
            matches!(error, Error::Store(StoreError::ParseJournal { .. })),
            "{error}"
        );
        assert!(root.releases().join(OLD).exists());

        std::fs::write(root.journal(), b"{\"format\": 9}").unwrap();
        let error = read(&root).unwrap_err();
        assert!(
            matches!(error, StoreError::UnsupportedFileFormat { found: 9, .. }),
            "{error}"
        );
    }
}
