//! Installing a release: load the delta pack from the current release when the site
//! has one (deriving the target's file indexes from it, [`crate::install::pack`]),
//! plan from what is on disk, check the free space, fetch the ranges of copy packs and
//! the packages the plan needs (several at a time), build the new tree in a staging
//! directory (local copies, the pack's patches and copies, file copies, packages: see
//! [`crate::install::plan`]), flush it once, promote it, record it, switch
//! `ROOT/current` with one atomic rename, then prune the cache.
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
pub(crate) mod cancel;
pub(crate) mod commit;
pub(crate) mod download;
pub(crate) mod error;
pub(crate) mod fetch;
pub(crate) mod file_writers;
pub(crate) mod pack;
pub(crate) mod patch;
pub(crate) mod plan;
pub(crate) mod reporter;
pub(crate) mod space;
#[cfg(test)]
pub(crate) mod test_site;
pub(crate) mod tree;
pub(crate) mod unpack;
pub(crate) mod verified;

use jiff::Timestamp;
use semver::Version;
use wavecast_schema::PlatformRelease;

use crate::install::assemble::Builder;
use crate::install::cancel::Cancel;
use crate::install::commit::{Building, finish, sync_filesystem};
use crate::install::error::{Error, Result};
use crate::install::fetch::{Cache, Prefetch};
use crate::install::pack::Delta;
use crate::install::plan::{LocalFiles, UpdatePlan, plan_release};
use crate::install::reporter::{NoReporter, Phase, Reporter, Tracker};
use crate::install::space::ensure_free_space;
use crate::install::tree::{WrittenFiles, check_tree};
use crate::net::limits::DownloadLimits;
use crate::net::transport::Transport;
use crate::net::url::BaseUrl;
use crate::store::cache::prune_downloads;
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
    /// Requests this install made to the hosts, answered or not.
    pub requests: u32,
    /// The release the install's delta pack updated from, when it took one.
    pub pack_from: Option<Version>,
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
    /// What the release installs on this client's platform (its tree modules).
    pub(crate) release: &'a PlatformRelease,
    pub(crate) now: Timestamp,
    pub(crate) reporter: &'a Tracker<'a>,
    /// Install every module from its whole package, as before differential updates.
    pub(crate) packages_only: bool,
    /// How slowly each download may arrive.
    pub(crate) limits: DownloadLimits,
    /// Stops the install at its next safe point, before the switch.
    pub(crate) cancel: &'a Cancel,
    /// Build and record the tree, but leave `current` where it is
    /// ([`Updater::stage`](crate::Updater::stage)).
    pub(crate) stage_only: bool,
}

/// Plans how `plan.release` would be installed, fetching only file indexes (through
/// the index cache) and the header of the delta pack, and changing nothing else. The
/// caller holds the root's lock.
pub(crate) fn plan_install(plan: &InstallPlan<'_>, state: &State) -> Result<UpdatePlan> {
    let cache = Cache::open(
        plan.root,
        plan.transport,
        plan.hosts,
        &NoReporter,
        plan.limits,
    )?;
    let current = read_current(plan.root, state)?;
    let dir = release_dir_name(&plan.release.version, plan.release);
    let local = gather_local(plan, &cache, state, current.as_ref());
    let delta = load_delta(plan, &cache, current.as_ref(), &local, true)?;
    let pack_bytes = cache.received();
    let indexes = cache.release_indexes(
        plan.release,
        delta
            .as_ref()
            .map_or(&std::collections::BTreeMap::new(), |delta| &delta.indexes),
    )?;
    let mut update = plan_release(
        &indexes,
        &dir,
        plan.release,
        &local,
        delta.as_ref().map(|delta| (&delta.header, delta.pack.size)),
        plan.packages_only,
    );
    update.index_bytes = cache.received() - pack_bytes;
    Ok(update)
}

/// The files of the installed trees, found through the index cache (nothing when
/// every module comes from its package anyway).
fn gather_local(
    plan: &InstallPlan<'_>,
    cache: &Cache<'_>,
    state: &State,
    current: Option<&CurrentRelease>,
) -> LocalFiles {
    if plan.packages_only {
        return LocalFiles::default();
    }
    LocalFiles::gather(
        |blob| cache.cached_index(&blob.blake3).ok().flatten(),
        plan.root,
        state,
        current.map(|current| current.dir.as_str()),
    )
}

/// The delta pack from the current release, loaded (or only its header, for a plan)
/// with the indexes derived from it; `None` when there is none, or when it cannot be
/// used (the install then goes on without it, which the reporter is told).
///
/// # Errors
///
/// [`Error::NotEnoughSpace`] when the pack and the tree would not fit; otherwise
/// local errors only: a pack the site cannot provide is not one.
fn load_delta(
    plan: &InstallPlan<'_>,
    cache: &Cache<'_>,
    current: Option<&CurrentRelease>,
    local: &LocalFiles,
    header_only: bool,
) -> Result<Option<Delta>> {
    // A tree of no modules (a release of only an image) has nothing to take from it.
    let Some(first) = plan.release.modules.keys().next() else {
        return Ok(None);
    };
    if plan.packages_only {
        return Ok(None);
    }
    let Some(pack) = pack::choose(plan.release, current.map(|current| &current.version)) else {
        return Ok(None);
    };
    if !header_only {
        // The pack is downloaded before the plan is made: refuse now, with the
        // figures, rather than fill the disk with it.
        ensure_free_space(plan.root.path(), pack.size, unpacked_size(plan.release))?;
        plan.reporter.expect(pack.size);
        plan.reporter.phase(Phase::Downloading);
    }
    match pack::load(cache, plan.release, pack, &local.current, header_only) {
        Ok(delta) => Ok(Some(delta)),
        Err(error) if error.is_remote() => {
            plan.reporter
                .on_fallback(first, &reporter::Fallback::WithoutPack, &error);
            Ok(None)
        }
        Err(error) => Err(error),
    }
}

/// The size of `release`'s tree once unpacked, all modules together.
fn unpacked_size(release: &PlatformRelease) -> u64 {
    release.modules.values().fold(0u64, |total, module| {
        total.saturating_add(module.unpacked_size)
    })
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
    let version = &release.version;
    let dir = release_dir_name(version, release);
    let current = read_current(root, state)?;
    let previous = current.as_ref().map(|current| current.version.clone());
    let package_bytes = release
        .modules
        .values()
        .map(|module| module.package.size)
        .sum();
    let report = |outcome, cache: &Cache<'_>| TreeReport {
        outcome,
        version: version.clone(),
        dir: dir.clone(),
        previous: previous.clone(),
        planned_bytes: 0,
        downloaded_bytes: cache.received(),
        index_bytes: cache.received(),
        package_bytes,
        fallbacks: 0,
        pruned_bytes: 0,
        requests: cache.requests(),
        pack_from: None,
        download_hosts_used: cache.hosts_used(),
    };
    let cache = Cache::open(root, transport, hosts, reporter, limits)?.with_cancel(plan.cancel);
    if current.as_ref().is_some_and(|current| current.dir == dir) {
        return Ok(report(InstallOutcome::AlreadyCurrent, &cache));
    }

    let local = gather_local(plan, &cache, state, current.as_ref());
    let kept_tree = state.installed_in(&dir).is_some();
    // A tree kept under `releases/` is switched back to without a pack.
    let delta = if kept_tree {
        None
    } else {
        load_delta(plan, &cache, current.as_ref(), &local, false)?
    };
    let pack_bytes = cache.received();
    let derived = delta
        .as_ref()
        .map_or_else(std::collections::BTreeMap::new, |delta| {
            delta.indexes.clone()
        });
    for index in derived.values() {
        cache.keep_index(index)?;
    }
    let indexes = cache.release_indexes(release, &derived)?;
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
        cache.check_cancel()?;
        reporter.phase(Phase::Switching);
        reporter.on_reuse(version, &dir);
        // Remember the modules, so the index cache keeps this tree's indexes.
        let record = if recorded.modules.is_empty() {
            InstalledRelease {
                modules: installed_modules(release),
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
                stage_only: plan.stage_only,
            },
        )?;
        if !plan.stage_only {
            reporter.on_switch(version, &dir);
        }
        let pruned_bytes = finish(root, state, journal)?;
        return Ok(TreeReport {
            pruned_bytes,
            ..report(InstallOutcome::Reused, &cache)
        });
    }

    let mut update = plan_release(
        &indexes,
        &dir,
        release,
        &local,
        delta.as_ref().map(|delta| (&delta.header, delta.pack.size)),
        plan.packages_only,
    );
    update.index_bytes = cache.received() - pack_bytes;
    let unpacked = unpacked_size(release);
    // The pack is on disk already; what it carries needs no more downloading.
    let to_download = update
        .download_bytes
        .saturating_sub(update.pack.as_ref().map_or(0, |pack| pack.size))
        .saturating_sub(held_bytes(&cache, &update, release));
    ensure_free_space(root.path(), to_download, unpacked)?;
    cache.check_cancel()?;

    let building = Building::begin(
        root,
        InstalledRelease {
            version: version.clone(),
            dir: dir.clone(),
            installed_at: now,
            modules: installed_modules(release),
        },
        previous_dir,
        plan.stage_only,
    )?;
    for module in &update.modules {
        reporter.on_module_plan(module);
    }
    // What the pack carries is on disk already.
    let pack_size = update.pack.as_ref().map_or(0, |pack| pack.size);
    reporter.expect(update.download_bytes.saturating_sub(pack_size));
    if update.download_bytes > pack_size {
        reporter.phase(Phase::Downloading);
    }
    prefetch(&cache, &update, release);
    reporter.phase(Phase::Assembling);
    let builder = Builder::new(
        &cache,
        &local,
        delta.as_ref().and_then(|delta| {
            delta
                .payload
                .as_deref()
                .map(|payload| (payload, &delta.pack.blake3))
        }),
        reporter,
    );
    let written = builder.build(&update, release, building.path())?;
    check_tree(building.path(), indexes.tree(), &written)?.map_err(|source| {
        Error::TreeMismatch {
            version: version.clone(),
            source: Box::new(source),
        }
    })?;
    reporter.phase(Phase::Switching);
    // The last safe point: from here on the install switches and finishes.
    cache.check_cancel()?;
    // The tree is whole and checked: the downloads go before the flush, which then
    // need not write them.
    let early_pruned = prune_downloads(root);
    sync_filesystem(building.path()).map_err(|source| Error::Release {
        action: "flush",
        path: building.path().to_owned(),
        source,
    })?;
    let journal = building.built()?;

    if !plan.stage_only {
        reporter.on_switch(version, &dir);
    }
    let pruned_bytes = early_pruned + finish(root, state, journal)?;
    Ok(TreeReport {
        planned_bytes: update.download_bytes,
        index_bytes: update.index_bytes,
        fallbacks: builder.fallbacks(),
        pruned_bytes,
        pack_from: update.pack.as_ref().map(|pack| pack.from.clone()),
        ..report(InstallOutcome::Installed, &cache)
    })
}

/// Downloads what `update` needs from the site beyond the pack, several downloads
/// at a time: the packages of the modules that take theirs, and the ranges of copy
/// packs the others need. A download that fails is left to the assemble stage's
/// fallbacks, which try the file alone, then the package.
fn prefetch(cache: &Cache<'_>, update: &UpdatePlan, release: &PlatformRelease) {
    let jobs: Vec<Prefetch<'_>> = update
        .modules
        .iter()
        .filter_map(|module| {
            let listed = release.modules.get(&module.name)?;
            if module.use_package {
                return Some(Prefetch::Package {
                    module: &module.name,
                    package: &listed.package,
                    format: listed.package_format,
                });
            }
            let copies = listed
                .copies
                .as_ref()
                .filter(|_| !module.ranges.is_empty())?;
            Some(Prefetch::Copies {
                module: &module.name,
                copies,
                ranges: &module.ranges,
                wanted: module
                    .files
                    .iter()
                    .filter(|file| file.action == plan::FileAction::Range)
                    .map(|file| (&file.blake3, file.slice.clone()))
                    .collect(),
            })
        })
        .collect();
    // Failures surface again, one file at a time, where the builder falls back.
    let _ = cache.prefetch(&jobs);
}

/// Bytes of `update`'s downloads the cache already holds, whole or as partial
/// downloads (what an interrupted install left): the install does not download them
/// again. `release` is the release `update` was made for.
fn held_bytes(cache: &Cache<'_>, update: &UpdatePlan, release: &PlatformRelease) -> u64 {
    update
        .modules
        .iter()
        .map(|module| {
            if module.use_package {
                release.modules.get(&module.name).map_or(0, |listed| {
                    cache.held(listed.package.blake3.as_str(), listed.package.size)
                })
            } else {
                module
                    .files
                    .iter()
                    .filter(|file| file.action == plan::FileAction::Range)
                    .map(|file| cache.held(&format!("{}.zst", file.blake3), file.packed_size))
                    .sum()
            }
        })
        .sum()
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
    use crate::install::commit::{clean_leftovers, switch_current};
    use crate::store::current::{CURRENT_TEMP_PREFIX, current_tree, read_pointer};

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
            std::fs::read(current_tree(&root).join("app")).unwrap(),
            b"1.0.0-000000000000"
        );

        switch_current(&root, "1.1.0-111111111111").unwrap();
        assert_eq!(
            read_pointer(&root.current()).unwrap().as_deref(),
            Some("releases/1.1.0-111111111111")
        );
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
        crate::platform::set_mode(&staging.join("bin"), 0o555).unwrap();
        // A temporary `current`, as a switch killed midway leaves it: a link on Unix, a
        // file on Windows.
        let temp_current = root.path().join(".current.tmp-1234");
        #[cfg(unix)]
        std::os::unix::fs::symlink("releases/x", &temp_current).unwrap();
        #[cfg(windows)]
        std::fs::write(&temp_current, "releases/x\n").unwrap();
        clean_leftovers(&root).unwrap();
        assert!(!staging.exists());
        assert!(std::fs::symlink_metadata(&temp_current).is_err());
        assert!(root.releases().join("1.0.0-000000000000/app").exists());
    }
}
