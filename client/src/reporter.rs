//! Progress reporting: the library never prints, it tells a [`Reporter`].

use semver::Version;
use wavecast_schema::ModuleName;

/// Receives progress events during [`Updater::install`](crate::Updater::install).
///
/// The installer drives execution and calls these methods from the installing thread,
/// in order: for each module, either [`on_cache_hit`](Reporter::on_cache_hit) or
/// [`on_download_start`](Reporter::on_download_start), any number of
/// [`on_download_progress`](Reporter::on_download_progress) and then
/// [`on_download_finish`](Reporter::on_download_finish) (not called when the download
/// fails); then [`on_unpack`](Reporter::on_unpack) per module, and
/// [`on_switch`](Reporter::on_switch) just before `current` is switched. When an
/// intact tree of the release is still on disk (a move back), only
/// [`on_reuse`](Reporter::on_reuse) and then `on_switch` are called. Every method
/// has a no-op default, and none can stop the install.
pub trait Reporter {
    /// A package is about to be downloaded from `url`; `size` bytes are expected.
    fn on_download_start(&self, module: &ModuleName, url: &str, size: u64) {
        let _ = (module, url, size);
    }

    /// `downloaded` bytes of the package have arrived so far.
    fn on_download_progress(&self, module: &ModuleName, downloaded: u64) {
        let _ = (module, downloaded);
    }

    /// The package arrived and verified.
    fn on_download_finish(&self, module: &ModuleName) {
        let _ = module;
    }

    /// A verified copy of the package was already in the cache.
    fn on_cache_hit(&self, module: &ModuleName, size: u64) {
        let _ = (module, size);
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
}

/// A [`Reporter`] that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoReporter;

impl Reporter for NoReporter {}
