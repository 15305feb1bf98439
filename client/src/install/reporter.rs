//! Progress reporting: the library never prints, it tells a [`Reporter`].

use std::cell::{Cell, RefCell};

use semver::Version;
use wavecast_schema::{ModuleName, RelativePath};

use crate::install::error::Error;
use crate::install::plan::ModuleUpdate;

/// Receives progress events during [`Updater::install`](crate::Updater::install).
///
/// The installer calls these methods from the installing thread.
/// [`on_progress`](Reporter::on_progress) sums everything up: the [`Phase`], and the
/// bytes done out of the total, all modules together, told at each phase and as
/// bytes arrive; most applications need nothing else.
///
/// The other methods tell the details. A delta pack, when the update has one, is
/// downloaded first, under the first module's name. Then comes each module's plan
/// ([`on_module_plan`](Reporter::on_module_plan), in name order), and the downloads
/// the plans need, several at a time: each module's are told as one download
/// ([`on_download_start`](Reporter::on_download_start) with an empty URL, any number
/// of [`on_download_progress`](Reporter::on_download_progress), then
/// [`on_download_finish`](Reporter::on_download_finish)), so the events of two
/// modules may interleave. While the tree is written, a download a fallback needs is
/// told the same way, a copy already in the cache from an earlier run with
/// [`on_cache_hit`](Reporter::on_cache_hit), each fallback with
/// [`on_fallback`](Reporter::on_fallback), and each package unpacked with
/// [`on_unpack`](Reporter::on_unpack). [`on_switch`](Reporter::on_switch) comes just
/// before `current` is switched. When an intact tree of the release is still on disk
/// (a move back), only [`on_reuse`](Reporter::on_reuse) and then `on_switch` are
/// called. After the switch, [`on_health_check`](Reporter::on_health_check) comes
/// before a configured health check runs. File indexes are fetched silently. Every
/// method has a no-op default; a [`Cancel`](crate::Cancel) handle stops the install.
pub trait Reporter {
    /// Where the install stands, all modules together: at the start of each
    /// [`Phase`], and whenever bytes arrive.
    fn on_progress(&self, progress: Progress) {
        let _ = progress;
    }

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

/// The phases of an install, in order. An install that reuses a kept tree, or has
/// nothing to download, skips [`Downloading`](Phase::Downloading).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Phase {
    /// Fetching the release's document and working out what to download: its delta
    /// pack's header or its file indexes, then the plan. Nothing of the new tree is
    /// downloaded yet.
    Checking,
    /// Downloading what the plan needs: the delta pack, ranges of copy packs, whole
    /// packages.
    Downloading,
    /// Writing the new tree in a staging folder, verifying every file, then checking
    /// it against the release's file indexes.
    Assembling,
    /// Flushing the tree to disk and switching `current` to it.
    Switching,
}

/// How far an install has come, all modules together (see
/// [`Reporter::on_progress`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// What the install is doing.
    pub phase: Phase,
    /// Bytes of the install's downloads that are on disk: received, resumed from an
    /// interrupted run, or found in the download cache.
    pub done: u64,
    /// Bytes the install downloads in all: known when [`Phase::Downloading`]
    /// starts, and grown only when a fallback downloads more than was planned. An
    /// image module counts as its whole package until it is written, and as what it
    /// took after (less, when a patch against the other slot did).
    pub total: u64,
}

/// Sums a [`Reporter`]'s download events up into [`Progress`] for it, as the
/// install moves through its [`Phase`]s. Every event is passed on.
pub(crate) struct Tracker<'a> {
    inner: &'a dyn Reporter,
    progress: Cell<Progress>,
    /// Bytes each module's current download had reported.
    reported: RefCell<Vec<(ModuleName, u64)>>,
}

impl<'a> Tracker<'a> {
    /// Tracks an install for `inner`, starting at [`Phase::Checking`] (told at once).
    pub(crate) fn new(inner: &'a dyn Reporter) -> Self {
        let tracker = Self {
            inner,
            progress: Cell::new(Progress {
                phase: Phase::Checking,
                done: 0,
                total: 0,
            }),
            reported: RefCell::new(Vec::new()),
        };
        tracker.inner.on_progress(tracker.progress.get());
        tracker
    }

    /// The install moved on to `phase`.
    pub(crate) fn phase(&self, phase: Phase) {
        self.update(|progress| progress.phase = phase);
    }

    /// The install expects to download `remaining` bytes beyond those done.
    pub(crate) fn expect(&self, remaining: u64) {
        self.update(|progress| progress.total = progress.done.saturating_add(remaining));
    }

    fn update(&self, change: impl FnOnce(&mut Progress)) {
        let mut progress = self.progress.get();
        change(&mut progress);
        progress.total = progress.total.max(progress.done);
        self.progress.set(progress);
        self.inner.on_progress(progress);
    }

    /// `bytes` more of the downloads are on disk.
    fn add(&self, bytes: u64) {
        if bytes > 0 {
            self.update(|progress| progress.done = progress.done.saturating_add(bytes));
        }
    }
}

impl Reporter for Tracker<'_> {
    fn on_progress(&self, progress: Progress) {
        self.inner.on_progress(progress);
    }

    fn on_module_plan(&self, plan: &ModuleUpdate) {
        self.inner.on_module_plan(plan);
    }

    fn on_download_start(&self, module: &ModuleName, url: &str, size: u64) {
        let mut reported = self.reported.borrow_mut();
        match reported.iter_mut().find(|(name, _)| name == module) {
            Some((_, bytes)) => *bytes = 0,
            None => reported.push((module.clone(), 0)),
        }
        drop(reported);
        self.inner.on_download_start(module, url, size);
    }

    fn on_download_progress(&self, module: &ModuleName, downloaded: u64) {
        let new = self
            .reported
            .borrow_mut()
            .iter_mut()
            .find(|(name, _)| name == module)
            .map_or(0, |(_, bytes)| {
                downloaded.saturating_sub(std::mem::replace(bytes, downloaded))
            });
        self.inner.on_download_progress(module, downloaded);
        self.add(new);
    }

    fn on_download_finish(&self, module: &ModuleName) {
        self.inner.on_download_finish(module);
    }

    fn on_cache_hit(&self, module: &ModuleName, size: u64) {
        self.inner.on_cache_hit(module, size);
        self.add(size);
    }

    fn on_fallback(&self, module: &ModuleName, fallback: &Fallback, reason: &Error) {
        self.inner.on_fallback(module, fallback, reason);
    }

    fn on_unpack(&self, module: &ModuleName) {
        self.inner.on_unpack(module);
    }

    fn on_reuse(&self, version: &Version, dir: &str) {
        self.inner.on_reuse(version, dir);
    }

    fn on_switch(&self, version: &Version, dir: &str) {
        self.inner.on_switch(version, dir);
    }

    fn on_health_check(&self, version: &Version, command: &str, timeout: std::time::Duration) {
        self.inner.on_health_check(version, command, timeout);
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
