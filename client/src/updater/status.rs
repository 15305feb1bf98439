//! What is installed and how it stands ([`Updater::status`]).

use jiff::Timestamp;
use wavecast_schema::{Attributes, ChannelName, InstallId, Platform};

use crate::error::Result;
use crate::lifecycle::slots::{Slots, SlotsStatus};
use crate::net::url::BaseUrl;
use crate::store::current::trial_of;
use crate::store::current::{CurrentRelease, read_current};
use crate::store::journal::{InterruptedInstall, read as read_journal};
use crate::store::state::{BadRelease, InstalledRelease, Trial};
use crate::updater::Updater;

/// The outcome of [`Updater::status`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReport {
    /// The release `current` points to.
    pub current: Option<CurrentRelease>,
    /// Every release tree recorded in the state, in installation order.
    pub installed: Vec<InstalledRelease>,
    /// The configured channel.
    pub channel: ChannelName,
    /// The configured platform.
    pub platform: Platform,
    /// The configured attributes.
    pub attributes: Attributes,
    /// The configured base URLs.
    pub urls: Vec<BaseUrl>,
    /// This client's install id.
    pub install_id: InstallId,
    /// The highest manifest serial seen on the configured channel.
    pub highest_serial: Option<u64>,
    /// When a manifest was last fetched and verified.
    pub last_check: Option<Timestamp>,
    /// The trial of the current release while it is unconfirmed.
    pub trial: Option<Trial>,
    /// The releases marked bad on this machine, oldest mark first.
    pub bad_releases: Vec<BadRelease>,
    /// The image slots, once an image module was installed here.
    pub slots: Option<SlotsStatus>,
    /// An install a run left unfinished (killed, or failed after its tree was
    /// built), which the next check or update finishes or undoes.
    pub interrupted: Option<InterruptedInstall>,
    /// The release staged to be switched to by the next `apply` or `launched`.
    pub staged: Option<CurrentRelease>,
}

impl Updater {
    /// What is installed and configured, from local files only. It takes no lock and
    /// writes nothing: an interrupted install is reported, not recovered.
    ///
    /// # Errors
    ///
    /// State and journal errors, [`StoreError::CurrentNotSymlink`](crate::StoreError::CurrentNotSymlink),
    /// [`StoreError::UnrecognizedCurrent`](crate::StoreError::UnrecognizedCurrent).
    pub fn status(&self) -> Result<StatusReport> {
        let state = self.load_state()?;
        let slots = Slots::open(&self.root, self.slot_config())?;
        let slots = slots.recorded().then(|| slots.status());
        let current = read_current(&self.root, &state)?;
        let trial = current
            .as_ref()
            .and_then(|current| trial_of(&state, current))
            .cloned();
        Ok(StatusReport {
            current,
            trial,
            bad_releases: state.bad_releases.clone(),
            highest_serial: state.highest_serial(&self.config.channel),
            installed: state.installed.clone(),
            channel: self.config.channel.clone(),
            platform: self.config.platform.clone(),
            attributes: self.config.attributes.clone(),
            urls: self.config.urls.clone(),
            install_id: state.install_id,
            last_check: state.last_check,
            slots,
            interrupted: read_journal(&self.root)?,
            staged: state.staged.map(|staged| CurrentRelease {
                version: staged.version,
                dir: staged.dir,
            }),
        })
    }
}
