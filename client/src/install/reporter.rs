//! Progress reporting: the library never prints, it tells a [`Reporter`].

use semver::Version;
use wavecast_schema::{ModuleName, RelativePath};

use crate::install::error::Error;
use crate::install::plan::ModuleUpdate;

/// Receives progress events during [`Updater::install`](crate::Updater::install).
///
/// The installer drives execution and calls these methods from the installing thread.
/// For each module of the target release, in name order:
/// [`on_module_plan`](Reporter::on_module_plan) with how the module will be obtained;
/// then, for every package, patch or file copy it needs, either
/// [`on_cache_hit`](Reporter::on_cache_hit) or
/// [`on_download_start`](Reporter::on_download_start), any number of
/// [`on_download_progress`](Reporter::on_download_progress) and then
/// [`on_download_finish`](Reporter::on_download_finish) (not called when the download
/// fails); [`on_fallback`](Reporter::on_fallback) whenever a step fails and a more
/// expensive one replaces it; and [`on_unpack`](Reporter::on_unpack) before a package
/// is unpacked. [`on_switch`](Reporter::on_switch) comes just before `current` is
/// switched. When an intact tree of the release is still on disk (a move back), only
/// [`on_reuse`](Reporter::on_reuse) and then `on_switch` are called. After the switch,
/// [`on_health_check`](Reporter::on_health_check) comes before a configured health
/// check runs. File indexes are fetched silently. Every method has a no-op default,
/// and none can stop the install.
pub trait Reporter {
    /// How the module will be obtained: from local files, patches and file copies, or
    /// as a whole package; `plan.download_bytes` are expected.
    fn on_module_plan(&self, plan: &ModuleUpdate) {
        let _ = plan;
    }

    /// A download of at most `size` bytes from `url` is about to start (or resume).
    fn on_download_start(&self, module: &ModuleName, url: &str, size: u64) {
        let _ = (module, url, size);
    }

    /// `downloaded` bytes of the current download are on disk so far, counting any
    /// that an interrupted run left to resume from.
    fn on_download_progress(&self, module: &ModuleName, downloaded: u64) {
        let _ = (module, downloaded);
    }

    /// The current download arrived and verified.
    fn on_download_finish(&self, module: &ModuleName) {
        let _ = module;
    }

    /// A verified copy of `size` bytes was already in the cache.
    fn on_cache_hit(&self, module: &ModuleName, size: u64) {
        let _ = (module, size);
    }

    /// A step failed for `reason` and `fallback` replaces it. The result is verified
    /// all the same; only more bytes are downloaded.
    fn on_fallback(&self, module: &ModuleName, fallback: &Fallback, reason: &Error) {
        let _ = (module, fallback, reason);
    }

    /// The module's package is being unpacked into the new release tree.
    fn on_unpack(&self, module: &ModuleName) {
        let _ = module;
    }

    /// The release's tree kept under `releases/<dir>` matches its file indexes and is
    /// reused as it is: nothing is downloaded or unpacked.
    fn on_reuse(&self, version: &Version, dir: &str) {
        let _ = (version, dir);
    }

    /// The release tree is complete; `current` is about to point to it.
    fn on_switch(&self, version: &Version, dir: &str) {
        let _ = (version, dir);
    }

    /// `current` points to `version` now, and its health check `command` is about to
    /// run (for at most `timeout`).
    fn on_health_check(&self, version: &Version, command: &str, timeout: std::time::Duration) {
        let _ = (version, command, timeout);
    }
}

/// What replaces a failed step of a differential install.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fallback {
    /// The file at this path (in its module) is rebuilt from its compressed copy
    /// instead of a local file or a patch.
    FileCopy(RelativePath),
    /// The whole module is installed from its package.
    Package,
    /// The update's delta pack cannot be used: the release's file indexes are fetched,
    /// and the files the pack would have carried come from the copy packs.
    WithoutPack,
}

/// A [`Reporter`] that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoReporter;

impl Reporter for NoReporter {}
