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

pub(crate) mod assemble;
pub(crate) mod commit;
pub(crate) mod download;
pub(crate) mod error;
pub(crate) mod fetch;
pub(crate) mod patch;
pub(crate) mod plan;
pub(crate) mod reporter;
pub(crate) mod space;
pub(crate) mod tree;
pub(crate) mod unpack;
pub(crate) mod verified;

use jiff::Timestamp;
use semver::Version;
use wavecast_schema::{Manifest, Platform, PlatformRelease, Release};

use crate::install::assemble::Builder;
use crate::install::commit::{Building, finish, sync_filesystem};
use crate::install::error::{Error, Result};
use crate::install::fetch::Cache;
use crate::install::plan::{LocalFiles, UpdatePlan, plan_release};
use crate::install::reporter::{NoReporter, Reporter};
use crate::install::space::ensure_free_space;
use crate::install::tree::{ReleaseIndexes, WrittenFiles, check_tree};
use crate::net::limits::DownloadLimits;
use crate::net::transport::Transport;
use crate::net::url::BaseUrl;
use crate::store::current::{CurrentRelease, read_current, release_dir_name};
use crate::store::journal::{InstallStep, InterruptedInstall, Journal};
use crate::store::root::{InstallRoot, create_dir_all};
use crate::store::state::{InstalledModule, InstalledRelease, State};

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

/// What installing a release's tree did: the install pipeline's part of an install's
/// report, to which the health check, image slots and pruning add theirs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeReport {
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
    let indexes = cache.release_indexes(modules)?;
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
            |name, blob| cache.index(name, blob).ok(),
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
pub(crate) fn install_release(plan: &InstallPlan<'_>, state: &mut State) -> Result<TreeReport> {
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
    let report = |outcome, cache: &Cache<'_>| TreeReport {
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
    };
    let cache = Cache::open(root, transport, hosts, reporter, limits)?;
    if current.as_ref().is_some_and(|current| current.dir == dir) {
        return Ok(report(InstallOutcome::AlreadyCurrent, &cache));
    }

    let indexes = cache.release_indexes(modules)?;
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
        return Ok(TreeReport {
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
            source: Box::new(source),
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
    Ok(TreeReport {
        planned_bytes: update.download_bytes,
        index_bytes: update.index_bytes,
        fallbacks: builder.fallbacks(),
        pruned_bytes,
        ..report(InstallOutcome::Installed, &cache)
    })
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

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    use crate::install::commit::{clean_leftovers, switch_current};
    use crate::store::current::CURRENT_TEMP_PREFIX;

    use super::*;
    use crate::store::error::Error as StoreError;

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
        assert!(
            matches!(error, Error::Store(StoreError::CurrentNotSymlink { .. })),
            "{error}"
        );
        let error = read_current(&root, &state()).unwrap_err();
        assert!(
            matches!(error, StoreError::CurrentNotSymlink { .. }),
            "{error}"
        );
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
