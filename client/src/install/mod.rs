//! Installing a release: plan it from what is on disk, check the free space, build it
//! in a staging tree (local copies, patches, file copies, packages: see
//! [`crate::install::plan`]), promote it, record it, switch `ROOT/current` with one atomic
//! rename, then prune the cache.
//!
//! Every step is journaled first (see [`crate::store::journal`] for the state machine), so a
//! run killed at any instant leaves `current` on a complete release and the next run
//! finishes or undoes the install. Until the switch the previous release stays
//! current, whatever fails: an error while building removes the staging tree (a
//! guard, on `Drop`) and the journal. The state file records a release before
//! `current` points to it, and the current version is always derived from where
//! `current` points, so the two cannot disagree after a crash.
//!
//! Whatever way the tree was built, it is checked against the release's signed file
//! indexes before it is promoted ([`crate::install::tree::check_tree`]): the tree that becomes
//! current is exactly the signed one, or the install fails naming the difference.
//! The indexes stay in the index cache while the release is installed, so the next
//! update plans from them without downloading them again.
//!
//! A release whose tree is still recorded under `releases/` (a move back after a yank
//! or cap) is switched to again without downloading when the tree still matches the
//! release's signed file indexes; otherwise it is installed afresh like any other.


pub(crate) mod patch;
pub(crate) mod plan;
pub(crate) mod reporter;
pub(crate) mod space;
pub(crate) mod tree;
pub(crate) mod unpack;
pub(crate) mod verified;

use std::fs::File;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use std::collections::BTreeSet;

use jiff::Timestamp;
use semver::Version;
use serde::Serialize;
use wavecast_schema::{Manifest, Platform, PlatformRelease, Release};

use crate::store::cache::Cache;
use crate::install::plan::{Builder, LocalFiles, UpdatePlan, plan_release};
use crate::error::{Error, Result};
use crate::store::journal::{InstallStep, InterruptedInstall, Journal, finish};
use crate::net::limits::DownloadLimits;
use crate::install::reporter::{NoReporter, Reporter};
use crate::store::root::{ATOMIC_TEMP_PREFIX, InstallRoot, create_dir_all, random_hex, sync_dir};
use crate::install::space::ensure_free_space;
use crate::store::state::{InstalledModule, InstalledRelease, State};
use crate::net::transport::Transport;
use crate::install::tree::{ReleaseIndexes, WrittenFiles, check_tree};
use crate::net::url::BaseUrl;

/// The prefix of staging trees (and of trees moved aside) under `releases/`.
pub(crate) const STAGING_PREFIX: &str = ".staging-";
const CURRENT_TEMP_PREFIX: &str = ".current.tmp-";

/// The release `ROOT/current` points to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CurrentRelease {
    /// Its version.
    pub version: Version,
    /// Its directory name under `ROOT/releases`.
    pub dir: String,
}

/// What [`Updater::install`](crate::Updater::install) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InstallOutcome {
    /// The release was installed and is now current.
    Installed,
    /// `current` already pointed to exactly this release tree; nothing changed.
    AlreadyCurrent,
    /// The release's tree was still under `releases/` and matched its signed file
    /// indexes exactly, so `current` was switched back to it without downloading or
    /// unpacking anything (a move back from a withdrawn release).
    Reused,
}

/// The result of an install.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallReport {
    /// What happened.
    pub outcome: InstallOutcome,
    /// The version now current.
    pub version: Version,
    /// Its directory name under `ROOT/releases`.
    pub dir: String,
    /// The version that was current before, if any.
    pub previous: Option<Version>,
    /// Bytes the plan meant to download (file indexes aside): 0 when nothing was
    /// installed.
    pub planned_bytes: u64,
    /// Bytes received over the transport by this install, file indexes included. A
    /// resumed download counts only what arrived this time; fallbacks add to it.
    pub downloaded_bytes: u64,
    /// Of `downloaded_bytes`, those spent on file indexes.
    pub index_bytes: u64,
    /// What downloading every module's package would have cost.
    pub package_bytes: u64,
    /// How many times a failed step was replaced by a more expensive one (a patch or
    /// local copy by the file's copy, a module's files by its package).
    pub fallbacks: u32,
    /// Bytes freed from the download cache after the install.
    pub pruned_bytes: u64,
    /// The hosts that sent blobs (packages, indexes, file copies, patches) for this
    /// install, in the order they first did; empty when everything came from the
    /// caches.
    pub download_hosts_used: Vec<BaseUrl>,
    /// The health check run after the switch, when one is configured (it passed: a
    /// failed check is an error).
    pub health_check: Option<crate::lifecycle::health::HealthCheckReport>,
    /// The release trees deleted after the install, beyond the newest kept.
    pub pruned_releases: Vec<crate::lifecycle::prune::PrunedRelease>,
    /// The release's image module, written to a slot and activated before the tree
    /// was installed; `None` for a release without one.
    pub image: Option<crate::lifecycle::slots::SlotActivation>,
}

/// The directory name of a release tree: `<version>-<id>`, where `id` is the first 12
/// hex digits of blake3 over each module's name, destination and package hash. Equal
/// names mean equal trees, so a re-published version with other content gets a new
/// directory instead of overwriting one that may be running.
pub fn release_dir_name(version: &Version, release: &PlatformRelease) -> String {
    let mut hasher = blake3::Hasher::new();
    for (name, module) in &release.modules {
        hasher.update(name.as_str().as_bytes());
        hasher.update(b"\0");
        hasher.update(
            module
                .dest
                .as_ref()
                .map_or("", |dest| dest.as_str())
                .as_bytes(),
        );
        hasher.update(b"\0");
        hasher.update(module.package.blake3.as_str().as_bytes());
        hasher.update(b"\n");
    }
    let digest = hasher.finalize().to_hex();
    format!("{version}-{}", &digest[..12])
}

/// The release `ROOT/current` points to, or `None` when there is no `current` or it
/// points to a release directory that no longer exists.
///
/// The version comes from the state's record of that directory, else from the
/// directory's name.
pub(crate) fn read_current(root: &InstallRoot, state: &State) -> Result<Option<CurrentRelease>> {
    let path = root.current();
    let metadata = match std::fs::symlink_metadata(&path) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(Error::ReadCurrent { path, source }),
    };
    if !metadata.file_type().is_symlink() {
        return Err(Error::CurrentNotSymlink { path });
    }
    let target = std::fs::read_link(&path).map_err(|source| Error::ReadCurrent {
        path: path.clone(),
        source,
    })?;
    let target_text = target.to_string_lossy().into_owned();
    let unrecognized = || Error::UnrecognizedCurrent {
        path: path.clone(),
        target: target_text.clone(),
    };
    let dir = target_text
        .strip_prefix("releases/")
        .filter(|dir| !dir.is_empty() && !dir.contains('/') && !dir.starts_with('.'))
        .ok_or_else(unrecognized)?;
    match std::fs::symlink_metadata(root.releases().join(dir)) {
        Ok(metadata) if metadata.is_dir() => {}
        Ok(_) => return Err(unrecognized()),
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(Error::ReadCurrent {
                path: root.releases().join(dir),
                source,
            });
        }
    }
    let version = match state.installed_in(dir) {
        Some(installed) => installed.version.clone(),
        None => version_from_dir_name(dir).ok_or_else(unrecognized)?,
    };
    Ok(Some(CurrentRelease {
        version,
        dir: dir.to_owned(),
    }))
}

pub(crate) fn version_from_dir_name(dir: &str) -> Option<Version> {
    let (version, id) = dir.rsplit_once('-')?;
    if id.len() != 12 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    version.parse().ok()
}

/// Everything [`install_release`] and [`plan_install`] need.
pub(crate) struct InstallPlan<'a> {
    pub(crate) transport: &'a dyn Transport,
    /// The hosts blobs are downloaded from, in the order they are tried.
    pub(crate) hosts: &'a [BaseUrl],
    pub(crate) root: &'a InstallRoot,
    pub(crate) platform: &'a Platform,
    pub(crate) release: &'a Release,
    /// The verified manifest the release comes from: it also describes installed
    /// releases that the state does not (states older than differential updates).
    pub(crate) manifest: &'a Manifest,
    pub(crate) now: Timestamp,
    pub(crate) reporter: &'a dyn Reporter,
    /// Install every module from its whole package, as before differential updates.
    pub(crate) packages_only: bool,
    /// How slowly each download may arrive.
    pub(crate) limits: DownloadLimits,
}

impl InstallPlan<'_> {
    fn modules(&self) -> Result<&PlatformRelease> {
        self.release
            .for_platform(self.platform)
            .ok_or_else(|| Error::NoBuildForPlatform {
                version: self.release.version.clone(),
                platform: self.platform.clone(),
            })
    }
}

/// Plans how `plan.release` would be installed, fetching only file indexes (through
/// the index cache) and changing nothing else. The caller holds the root's lock.
pub(crate) fn plan_install(plan: &InstallPlan<'_>, state: &State) -> Result<UpdatePlan> {
    let modules = plan.modules()?;
    let cache = Cache::open(
        plan.root,
        plan.transport,
        plan.hosts,
        &NoReporter,
        plan.limits,
    )?;
    let current = read_current(plan.root, state)?;
    let dir = release_dir_name(&plan.release.version, modules);
    let indexes = ReleaseIndexes::fetch(&cache, modules)?;
    Ok(differential_plan(
        plan,
        &cache,
        &indexes,
        state,
        current.as_ref(),
        modules,
        &dir,
    )
    .0)
}

/// The files on disk and the plan built from them, with the bytes spent on indexes.
/// `cache` must have been opened for this plan: all it received so far, and all it
/// receives here, are file indexes.
fn differential_plan(
    plan: &InstallPlan<'_>,
    cache: &Cache<'_>,
    indexes: &ReleaseIndexes,
    state: &State,
    current: Option<&CurrentRelease>,
    modules: &PlatformRelease,
    dir: &str,
) -> (UpdatePlan, LocalFiles) {
    let local = if plan.packages_only {
        LocalFiles::default()
    } else {
        LocalFiles::gather(
            cache,
            plan.root,
            state,
            current.map(|current| current.dir.as_str()),
            plan.manifest,
            plan.platform,
        )
    };
    let mut update = plan_release(
        indexes,
        &plan.release.version,
        dir,
        modules,
        &local,
        plan.packages_only,
    );
    update.index_bytes = cache.received();
    (update, local)
}

/// Installs `plan.release` and makes it current. The caller holds the root's lock and
/// passes the state loaded under it.
pub(crate) fn install_release(plan: &InstallPlan<'_>, state: &mut State) -> Result<InstallReport> {
    let InstallPlan {
        transport,
        hosts,
        root,
        release,
        now,
        reporter,
        limits,
        ..
    } = *plan;
    let modules = plan.modules()?;
    let dir = release_dir_name(&release.version, modules);
    let current = read_current(root, state)?;
    let previous = current.as_ref().map(|current| current.version.clone());
    let package_bytes = modules
        .modules
        .values()
        .map(|module| module.package.size)
        .sum();
    let report = |outcome, cache: &Cache<'_>| InstallReport {
        outcome,
        version: release.version.clone(),
        dir: dir.clone(),
        previous: previous.clone(),
        planned_bytes: 0,
        downloaded_bytes: cache.received(),
        index_bytes: cache.received(),
        package_bytes,
        fallbacks: 0,
        pruned_bytes: 0,
        download_hosts_used: cache.hosts_used(),
        health_check: None,
        pruned_releases: Vec::new(),
        image: None,
    };
    let cache = Cache::open(root, transport, hosts, reporter, limits)?;
    if current.as_ref().is_some_and(|current| current.dir == dir) {
        return Ok(report(InstallOutcome::AlreadyCurrent, &cache));
    }

    let indexes = ReleaseIndexes::fetch(&cache, modules)?;
    create_dir_all(&root.releases())?;
    let previous_dir = current.as_ref().map(|current| current.dir.clone());

    let kept = root.releases().join(&dir);
    if let Some(recorded) = state
        .installed_in(&dir)
        .filter(|_| {
            // A tree that cannot be read or differs is installed afresh instead.
            matches!(
                check_tree(&kept, indexes.tree(), &WrittenFiles::default()),
                Ok(Ok(()))
            )
        })
        .cloned()
    {
        reporter.on_reuse(&release.version, &dir);
        // Remember the modules, so the index cache keeps this tree's indexes.
        let record = if recorded.modules.is_empty() {
            InstalledRelease {
                modules: installed_modules(modules),
                ..recorded
            }
        } else {
            recorded
        };
        let journal = Journal::begin(
            root,
            InterruptedInstall {
                step: InstallStep::Record,
                release: record,
                staging: None,
                previous: previous_dir,
            },
        )?;
        reporter.on_switch(&release.version, &dir);
        let pruned_bytes = finish(root, state, journal)?;
        return Ok(InstallReport {
            pruned_bytes,
            ..report(InstallOutcome::Reused, &cache)
        });
    }

    let (update, local) = differential_plan(
        plan,
        &cache,
        &indexes,
        state,
        current.as_ref(),
        modules,
        &dir,
    );
    let unpacked = modules.modules.values().fold(0u64, |total, module| {
        total.saturating_add(module.unpacked_size)
    });
    let to_download = update
        .download_bytes
        .saturating_sub(cache.held_bytes(&update, modules));
    ensure_free_space(root.path(), to_download, unpacked)?;

    let building = Building::begin(
        root,
        InstalledRelease {
            version: release.version.clone(),
            dir: dir.clone(),
            installed_at: now,
            modules: installed_modules(modules),
        },
        previous_dir,
    )?;
    let builder = Builder::new(&cache, &local, reporter);
    let written = builder.build(&update, modules, building.path())?;
    check_tree(building.path(), indexes.tree(), &written)?.map_err(|source| {
        Error::TreeMismatch {
            version: release.version.clone(),
            source,
        }
    })?;
    sync_filesystem(building.path()).map_err(|source| Error::Release {
        action: "flush",
        path: building.path().to_owned(),
        source,
    })?;
    let journal = building.built()?;

    reporter.on_switch(&release.version, &dir);
    let pruned_bytes = finish(root, state, journal)?;
    Ok(InstallReport {
        planned_bytes: update.download_bytes,
        index_bytes: update.index_bytes,
        fallbacks: builder.fallbacks(),
        pruned_bytes,
        ..report(InstallOutcome::Installed, &cache)
    })
}

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

/// The state record of a release's modules.
fn installed_modules(
    release: &PlatformRelease,
) -> std::collections::BTreeMap<wavecast_schema::ModuleName, InstalledModule> {
    release
        .modules
        .iter()
        .map(|(name, module)| (name.clone(), InstalledModule::from(module)))
        .collect()
}

/// The file indexes of the installed releases, which the index cache keeps.
pub(crate) fn installed_indexes(state: &State) -> BTreeSet<&wavecast_schema::Blake3Hash> {
    state
        .installed
        .iter()
        .flat_map(|release| release.modules.values())
        .map(|module| &module.file_index.blake3)
        .collect()
}

/// Points `ROOT/current` to `releases/<dir>` atomically: a new relative symlink is
/// renamed over the old one, then the root directory is flushed.
pub(crate) fn switch_current(root: &InstallRoot, dir: &str) -> Result<()> {
    let current = root.current();
    let target = format!("releases/{dir}");
    let switch_error = |source| Error::SwitchCurrent {
        path: current.clone(),
        target: target.clone(),
        source,
    };
    if let Ok(metadata) = std::fs::symlink_metadata(&current)
        && !metadata.file_type().is_symlink()
    {
        return Err(Error::CurrentNotSymlink { path: current });
    }
    let temp = root
        .path()
        .join(format!("{CURRENT_TEMP_PREFIX}{}", random_hex(8)?));
    std::os::unix::fs::symlink(&target, &temp).map_err(switch_error)?;
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
struct Building {
    staging: PathBuf,
    journal: Journal,
    done: bool,
}

impl Building {
    /// Writes the journal of the install of `release` over `previous` at
    /// [`InstallStep::Build`], naming a new staging directory, then creates that
    /// directory.
    fn begin(
        root: &InstallRoot,
        release: InstalledRelease,
        previous: Option<String>,
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
            },
        )?;
        let building = Self {
            staging,
            journal,
            done: false,
        };
        std::fs::create_dir(&building.staging).map_err(|source| Error::CreateDirectory {
            path: building.staging.clone(),
            source,
        })?;
        Ok(building)
    }

    fn path(&self) -> &Path {
        &self.staging
    }

    /// The tree is complete and on disk: records the commit point (the journal moves
    /// to [`InstallStep::Promote`]) and hands the journal over.
    fn built(mut self) -> Result<Journal> {
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

/// Removes a file, a symlink (not its target) or a whole directory tree, making
/// read-only directories writable first.
pub(crate) fn remove_tree(path: &Path) -> io::Result<()> {
    let metadata = std::fs::symlink_metadata(path)?;
    if !metadata.is_dir() {
        return std::fs::remove_file(path);
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))?;
    for entry in std::fs::read_dir(path)? {
        remove_tree(&entry?.path())?;
    }
    std::fs::remove_dir(path)
}

/// Flushes the file system holding `dir` to disk, so the release tree is durable
/// before it is renamed into place.
#[cfg(target_os = "linux")]
fn sync_filesystem(dir: &Path) -> io::Result<()> {
    rustix::fs::syncfs(File::open(dir)?).map_err(io::Error::from)
}

/// Flushes every file and directory under `dir` to disk (a symbolic link is part of
/// its directory, and is never opened: it may point anywhere, or nowhere).
#[cfg(not(target_os = "linux"))]
fn sync_filesystem(dir: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let file_type = entry.file_type()?;
        if file_type.is_dir() {
            sync_filesystem(&entry.path())?;
        } else if file_type.is_file() {
            File::open(entry.path())?.sync_all()?;
        }
    }
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root_with_release(dir: &str) -> (tempfile::TempDir, InstallRoot) {
        let temp = tempfile::tempdir().unwrap();
        let root = InstallRoot::new(temp.path());
        std::fs::create_dir_all(root.releases().join(dir)).unwrap();
        std::fs::write(root.releases().join(dir).join("app"), dir).unwrap();
        (temp, root)
    }

    fn state() -> State {
        State::generate().unwrap()
    }

    #[test]
    fn the_switch_points_current_to_the_new_tree_and_keeps_the_old_one() {
        let (_temp, root) = root_with_release("1.0.0-000000000000");
        std::fs::create_dir_all(root.releases().join("1.1.0-111111111111")).unwrap();
        switch_current(&root, "1.0.0-000000000000").unwrap();
        assert_eq!(
            std::fs::read(root.current().join("app")).unwrap(),
            b"1.0.0-000000000000"
        );

        switch_current(&root, "1.1.0-111111111111").unwrap();
        let link = std::fs::read_link(root.current()).unwrap();
        assert_eq!(link, Path::new("releases/1.1.0-111111111111"));
        assert!(
            root.releases().join("1.0.0-000000000000/app").is_file(),
            "the old tree stays"
        );
        let current = read_current(&root, &state()).unwrap().unwrap();
        assert_eq!(current.version, "1.1.0".parse::<Version>().unwrap());
        let leftovers: Vec<_> = std::fs::read_dir(root.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with(CURRENT_TEMP_PREFIX))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn a_real_current_directory_is_refused() {
        let (_temp, root) = root_with_release("1.0.0-000000000000");
        std::fs::create_dir(root.current()).unwrap();
        let error = switch_current(&root, "1.0.0-000000000000").unwrap_err();
        assert!(matches!(error, Error::CurrentNotSymlink { .. }), "{error}");
        let error = read_current(&root, &state()).unwrap_err();
        assert!(matches!(error, Error::CurrentNotSymlink { .. }), "{error}");
    }

    #[test]
    fn the_current_version_comes_from_the_state_record_of_the_link_target() {
        let (_temp, root) = root_with_release("2.0.0-rc.1-abcdefabcdef");
        assert_eq!(read_current(&root, &state()).unwrap(), None);
        switch_current(&root, "2.0.0-rc.1-abcdefabcdef").unwrap();
        let from_name = read_current(&root, &state()).unwrap().unwrap();
        assert_eq!(from_name.version.to_string(), "2.0.0-rc.1");
        let mut recorded = state();
        recorded.record_install(InstalledRelease {
            version: "2.0.0-rc.1+build.5".parse().unwrap(),
            dir: "2.0.0-rc.1-abcdefabcdef".into(),
            installed_at: Timestamp::UNIX_EPOCH,
            modules: std::collections::BTreeMap::new(),
        });
        let from_state = read_current(&root, &recorded).unwrap().unwrap();
        assert_eq!(from_state.version.to_string(), "2.0.0-rc.1+build.5");
    }

    #[test]
    fn leftovers_are_removed_even_when_read_only() {
        let (_temp, root) = root_with_release("1.0.0-000000000000");
        let staging = root.releases().join(".staging-deadbeef");
        std::fs::create_dir_all(staging.join("bin")).unwrap();
        std::fs::write(staging.join("bin/app"), b"x").unwrap();
        std::fs::set_permissions(staging.join("bin"), std::fs::Permissions::from_mode(0o555))
            .unwrap();
        std::os::unix::fs::symlink("releases/x", root.path().join(".current.tmp-1234")).unwrap();
        clean_leftovers(&root).unwrap();
        assert!(!staging.exists());
        assert!(std::fs::symlink_metadata(root.path().join(".current.tmp-1234")).is_err());
        assert!(root.releases().join("1.0.0-000000000000/app").exists());
    }
}
