//! The [`Updater`] facade: one install root, its configuration, and the operations
//! the `wavecast-update` commands perform.

pub(crate) mod check;
pub(crate) mod choose;
pub(crate) mod decision;
pub(crate) mod init;
pub(crate) mod install;
pub(crate) mod self_update;
pub(crate) mod stage;
pub(crate) mod status;
pub(crate) mod trial;

use std::path::Path;
use std::time::Duration;

use wavecast_schema::{Manifest, Root};

use crate::error::{LifecycleError, Result, StoreError};
use crate::install::cancel::Cancel;
use crate::install::commit::{Recovery, recover};

use crate::net::transport::{DefaultTransport, Transport};
use crate::net::url::BaseUrl;
use crate::store::config::Config;
use crate::store::config::HealthCheck;
use crate::store::config::SlotConfig;
use crate::store::current::{CurrentRelease, read_current};
use crate::store::root::{InstallRoot, RootLock};
use crate::store::state::State;

/// How long [`Updater::confirm`] and [`Updater::launched`] wait for another run
/// (a poll, an install) to release the root: 10 s.
pub const LOCK_PATIENCE: Duration = Duration::from_secs(10);

/// Takes the lock of `root`, waiting up to `wait`, and finishes or undoes an
/// interrupted install before anything else happens under it. Only the root's owner
/// may: this process must be able to write in `ROOT/.wavecast`.
pub(super) fn lock_and_recover(root: &InstallRoot, wait: Duration) -> Result<RootLock> {
    require_writable(root)?;
    let lock = root.lock(wait)?;
    recover(root)?;
    Ok(lock)
}

/// Fails unless this process may write in `ROOT/.wavecast`, as the root's owner may,
/// before anything is fetched or written.
pub(super) fn require_writable(root: &InstallRoot) -> Result<()> {
    root.writable().map_err(|source| {
        StoreError::NotWritable {
            path: root.meta(),
            source,
        }
        .into()
    })
}

/// One install root and the operations on it.
#[derive(Debug)]
pub struct Updater {
    root: InstallRoot,
    config: Config,
    transport: Box<dyn Transport>,
    packages_only: bool,
    health_check: Option<HealthCheck>,
    slots: Option<SlotConfig>,
    lock_wait: Duration,
    cancel: Cancel,
}

impl Updater {
    /// Opens an initialized install root, with the [`DefaultTransport`].
    ///
    /// # Errors
    ///
    /// [`StoreError::NotInitialized`] when `root` has no configuration, or the errors of
    /// [`Config::load`].
    pub fn open(root: impl AsRef<Path>) -> Result<Self> {
        let root = InstallRoot::new(root.as_ref());
        let config = Config::load(&root.config())?.ok_or_else(|| StoreError::NotInitialized {
            root: root.path().to_owned(),
            config: root.config(),
        })?;
        Ok(Self {
            root,
            config,
            transport: Box::new(DefaultTransport::new()),
            packages_only: false,
            health_check: None,
            slots: None,
            lock_wait: Duration::ZERO,
            cancel: Cancel::new(),
        })
    }

    /// Replaces the transport (for tests, or to add a scheme).
    pub fn with_transport(mut self, transport: Box<dyn Transport>) -> Self {
        self.transport = transport;
        self
    }

    /// With `true`, [`install`](Self::install) and [`plan`](Self::plan) take every
    /// module's whole package, as before differential updates: no local copies,
    /// patches or file copies (`update --full`).
    pub fn with_packages_only(mut self, packages_only: bool) -> Self {
        self.packages_only = packages_only;
        self
    }

    /// Runs `check` after each switch instead of the configured health check
    /// (`update --health-check`).
    pub fn with_health_check(mut self, check: HealthCheck) -> Self {
        self.health_check = Some(check);
        self
    }

    /// Uses `slots` for image modules instead of the configured slots and hook
    /// (`update --on-activate`).
    pub fn with_slot_config(mut self, slots: SlotConfig) -> Self {
        self.slots = Some(slots);
        self
    }

    /// The slots and hook for image modules: the ones given to
    /// [`with_slot_config`](Self::with_slot_config), else the configured ones.
    pub fn slot_config(&self) -> &SlotConfig {
        self.slots.as_ref().unwrap_or(&self.config.slots)
    }

    /// The health check [`install`](Self::install) runs: the one given to
    /// [`with_health_check`](Self::with_health_check), else the configured one.
    pub fn health_check(&self) -> Option<HealthCheck> {
        self.health_check
            .clone()
            .or_else(|| self.config.health.health_check())
    }

    /// When another run holds the root's lock, wait up to `wait` for it (polling)
    /// instead of failing at once with [`StoreError::Locked`].
    pub fn with_lock_wait(mut self, wait: Duration) -> Self {
        self.lock_wait = wait;
        self
    }

    /// Lets `cancel` stop [`install`](Self::install), [`stage`](Self::stage) and the
    /// download of a [`self_update`](Self::self_update) at their next safe point,
    /// from any thread (see [`Cancel`]).
    pub fn with_cancel(mut self, cancel: Cancel) -> Self {
        self.cancel = cancel;
        self
    }

    /// Takes the root's lock, then finishes or undoes an install that a killed run
    /// left in the journal, and removes what such a run leaves behind. Every
    /// operation that takes the lock does this first; calling it alone tells what
    /// was found and done.
    ///
    /// # Errors
    ///
    /// [`StoreError::Locked`], journal and state errors, and [`InstallError::Recover`](crate::InstallError::Recover) when the
    /// interrupted install cannot be finished (the journal stays for the next run).
    pub fn recover(&self) -> Result<Option<Recovery>> {
        require_writable(&self.root)?;
        let _lock = self.root.lock(self.lock_wait)?;
        Ok(recover(&self.root)?)
    }

    /// The install root.
    pub fn root(&self) -> &InstallRoot {
        &self.root
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    pub(super) fn require_current(&self, state: &State) -> Result<CurrentRelease> {
        read_current(&self.root, state)?.ok_or_else(|| {
            LifecycleError::NothingInstalled {
                root: self.root.path().to_owned(),
            }
            .into()
        })
    }

    /// The release `current` points to, if any.
    ///
    /// # Errors
    ///
    /// State errors, [`StoreError::CurrentNotSymlink`], [`StoreError::UnrecognizedCurrent`].
    pub fn current(&self) -> Result<Option<CurrentRelease>> {
        Ok(read_current(&self.root, &self.load_state()?)?)
    }

    /// The hosts blobs of `manifest` are downloaded from, in order: its signed
    /// `download_hosts`, then `served_by` (the base URL that served it), then the
    /// other configured base URLs, each once.
    pub(crate) fn download_hosts(&self, manifest: &Manifest, served_by: &BaseUrl) -> Vec<BaseUrl> {
        let mut download_hosts: Vec<BaseUrl> = Vec::new();
        let signed = manifest
            .download_hosts
            .iter()
            .filter_map(|host| BaseUrl::parse(host).ok());
        let configured = self.config.urls.iter().cloned();
        for host in signed
            .chain(std::iter::once(served_by.clone()))
            .chain(configured)
        {
            if !download_hosts.contains(&host) {
                download_hosts.push(host);
            }
        }
        download_hosts
    }

    pub(crate) fn transport(&self) -> &dyn Transport {
        self.transport.as_ref()
    }

    /// The newest root this client trusts: the one it walked to, or the pinned one.
    pub(crate) fn trusted_root(&self, state: &State) -> Root {
        let pinned = self.config.trust.root();
        match &state.trusted_root {
            Some(walked) if walked.version > pinned.version => walked.clone(),
            _ => pinned,
        }
    }

    /// Takes the root's lock (waiting as configured), then recovers.
    pub(crate) fn lock(&self) -> Result<RootLock> {
        lock_and_recover(&self.root, self.lock_wait)
    }

    pub(crate) fn load_state(&self) -> Result<State> {
        let path = self.root.state();
        Ok(State::load(&path)?.ok_or(StoreError::MissingState { path })?)
    }
}

#[cfg(test)]
mod tests;
