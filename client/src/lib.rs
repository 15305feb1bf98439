/*!
The wavecast client: checks a site for updates and installs them safely.

# Brief overview

An [`Updater`] manages one install root. [`Updater::init`] writes its [`Config`]
(base URLs, the pinned [`TrustedKey`], channel, platform, [`Attributes`], the
[`DownloadLimits`](limits::DownloadLimits) a slow host must keep within, the grace
an expired manifest gets for a skewed clock) and a [`State`] holding a random
install id; [`Updater::reconfigure`] applies a [`ConfigChange`] (another channel,
attributes set or removed, other limits). [`Updater::check`]
fetches the channel's signed manifest through a [`Transport`] ([`HttpTransport`],
[`FileTransport`], or [`DefaultTransport`] for both), verifies its signature before
reading it, checks its channel, expiry and serial, and returns a [`CheckReport`] with
the decision of [`wavecast_schema::decide_skipping`] (releases marked bad on this
machine are skipped, see [`CheckReport::skipped`]): the target, the rollout rule that applied,
whether the update is mandatory, why the installed release was withdrawn, when a
deferred client becomes eligible. [`Updater::check_with`] takes [`CheckOptions`]: the
[`Mode`] (`--now` is [`Mode::Manual`]) and attributes for one check. Attributes only
feed the local decision; no request carries them.
[`Updater::plan`] computes an [`UpdatePlan`]: for every module of the target, whether
each file is kept (copied from an installed tree), patched ([`FileAction::Patch`]) or
downloaded as a compressed copy, or whether the whole package is cheaper.
[`Updater::install`] first checks that the root's file system has room for the
download and the unpacked tree, then carries the plan out in a staging tree,
downloading through a content-addressed cache that verifies size and blake3 and
resumes interrupted downloads ([`Transport::fetch_from`]), falling back from patch to
file copy to package when the site or a local file lets it down, and verifying every
file as it is written. Whichever way it was built, the tree must then be exactly the
one the release's signed file indexes list (files, directories, symbolic links;
[`InstallError::TreeMismatch`] names the first difference). It then promotes the tree under
`releases/`, records it,
switches the `current` symlink atomically and prunes the cache, telling a
[`Reporter`] about progress. Each of those [`InstallStep`]s is journaled before it
is taken, so a run killed at any instant leaves `current` on a complete release;
every operation that takes the root's lock first finishes or undoes such an
[`InterruptedInstall`] ([`Updater::recover`] does only that and returns the
[`Recovery`]). One run at a time holds the lock; [`Updater::with_lock_wait`] waits
for it.
After the switch the release is on [`Trial`], and the [`HealthCheck`] of its
[`HealthConfig`], if any, runs in the new tree; one that fails or times out switches
`current` back and marks the release a [`BadRelease`]
([`LifecycleError::HealthCheckFailed`]). The application ends the trial with
[`Updater::confirm`]; its launcher counts starts with [`Updater::launched`], which
rolls back a release still unconfirmed after too many ([`LaunchOutcome`]).
A release's image module (see [`wavecast_schema::ModuleKind::Image`]) never enters
the release tree: it is written into the inactive of two slots, verified, activated
by the [`SlotConfig`]'s on-activate hook and only then made the active slot
([`SlotActivation`], [`LifecycleError::ActivationFailed`]); rollbacks switch the slots back.
[`Updater::rollback`] returns to the previous release on request. Every rollback
marks the release it leaves bad (unless asked not to), and [`Updater::unmark`] clears
such a mark ([`unmark_command`] names the command in messages). After installs
and rollbacks only the newest [`Config::keep_releases`] trees stay
([`PrunedRelease`]). [`Updater::status`] reads what is installed, and any
interrupted install, without writing. Every failure is an [`Error`] naming what
failed.

Only the root's owner may install, check, roll back or reconfigure: a process that
may not write `ROOT/.wavecast` fails with [`StoreError::NotWritable`] before doing
anything. A root shared with a group ([`InitOptions::group`], [`ConfigChange::group`],
[`Config::group`]) lets that group's members, such as the application's own user,
run [`Updater::confirm`], [`Updater::launched`] and [`Updater::status`]: they write
only the trial file, and leave rollbacks ([`LifecycleError::RollbackNotAllowed`]) and
interrupted installs to the owner. The README's "The application's own user" has the
modes and the reasons.

A manifest whose `min_client_version` is above [`CLIENT_VERSION`] fails
[`Updater::check`] with [`NetError::ClientTooOld`]; [`Updater::check_client`] reads it
anyway and says what it offers this client for itself ([`ClientCheck`],
[`ClientUpdate`]), and [`Updater::self_update`] replaces the running executable with
that build, verified and probed first ([`SelfUpdateReport`]).

```text
ROOT/current -> releases/<version>-<id>    the running release, switched atomically
ROOT/releases/<version>-<id>/...           installed trees, the newest N kept
ROOT/.wavecast/config.json                 written by init
ROOT/.wavecast/state.json                  install id, serials seen, installed releases,
                                           releases marked bad
ROOT/.wavecast/shared/trial.json           the release on trial (the one file the
                                           root's group may write)
ROOT/.wavecast/cache/<blake3>[.zst]        verified downloads, emptied after installs
ROOT/.wavecast/indexes/<blake3>            file indexes of the installed releases, kept
                                           so updates plan without fetching them
ROOT/.wavecast/slots.json                  the active image slot, what each slot holds
ROOT/slots/a, ROOT/slots/b                 image slots (unless configured elsewhere)
ROOT/.wavecast/journal.json                the install in progress, if any
ROOT/.wavecast/lock                        held by the run working on the root
```

Site paths are joined under a [`BaseUrl`]:

```
use wavecast_client::BaseUrl;

let base = BaseUrl::parse("https://updates.example.com/app").unwrap();
let path = "channels/stable.json".parse().unwrap();
assert_eq!(base.join(&path), "https://updates.example.com/app/channels/stable.json");
// A folder is a file:// URL.
let (folder, url) = if cfg!(windows) {
    (r"C:\srv\site", "file:///C:/srv/site/")
} else {
    ("/srv/site", "file:///srv/site/")
};
assert_eq!(BaseUrl::parse(folder).unwrap().as_str(), url);
```

The library never prints. It runs on Unix and on Windows, where it keeps no
permission bits, makes `current` a small file and runs hooks with `cmd`.
*/
#![deny(missing_docs)]

mod build_info;
mod error;
mod install;
mod lifecycle;
mod net;
mod platform;
pub mod schedule;
mod store;
pub mod units;
mod updater;

pub use net::{limits, transport};

pub use build_info::{BUILD_PLATFORM, CLIENT_VERSION, client_version, marked_version};
pub use error::{Error, InstallError, LifecycleError, NetError, Result, StoreError};
pub use install::commit::{Recovery, RecoveryOutcome};
pub use install::plan::{FileAction, FileUpdate, ModuleUpdate, PackageReason, UpdatePlan};
pub use install::reporter::{Fallback, NoReporter, Reporter};
pub use install::unpack::unpack_module;
pub use install::{InstallOutcome, TreeReport};
pub use lifecycle::command::{HEALTH_OUTPUT_LIMIT, HealthCheckReport, HealthStatus};
pub use lifecycle::error::{ActivationFailure, HealthCheckFailure, unmark_command};
pub use lifecycle::health::{
    ConfirmReport, HEALTH_CHECK_VARIABLE, LaunchOutcome, LaunchReport, RollbackReport,
};
pub use lifecycle::prune::PrunedRelease;
pub use lifecycle::slots::{ImageSource, SlotActivation, SlotStatus, SlotsStatus};
pub use net::error::SpeedLimit;
pub use net::manifest::MANIFEST_SIZE_LIMIT;
pub use net::transport::{
    Conditional, DefaultTransport, FileTransport, HttpTransport, RangeStream, Transport,
    TransportError, TransportErrorKind, Validators,
};
pub use net::trust::{TrustedKey, read_pinned_root};
pub use net::url::BaseUrl;
pub use store::attributes::{check_attribute_key, is_valid_attribute_key, parse_attribute};
pub use store::config::{
    CONFIG_FORMAT, Config, DEFAULT_ACTIVATE_TIMEOUT, DEFAULT_HEALTH_TIMEOUT, DEFAULT_KEEP_RELEASES,
    DEFAULT_MAX_UNCONFIRMED_LAUNCHES, HealthCheck, HealthConfig, PinnedTrust, SlotConfig, SlotName,
};
pub use store::current::{CurrentRelease, release_dir_name};
pub use store::journal::{InstallStep, InterruptedInstall};
pub use store::root::InstallRoot;
pub use store::slots::{SLOTS_FORMAT, SlotImage, SlotsState};
pub use store::state::{
    BadReason, BadRelease, InstalledModule, InstalledRelease, STATE_FORMAT, State, StoredManifest,
    Trial,
};
pub use units::format_bytes;
pub use updater::check::{CheckOptions, CheckReport};
pub use updater::choose::{Availability, ChooseOptions, ListedRelease, Listing};
pub use updater::decision::{HeldBack, RolloutCheck};
pub use updater::init::{ConfigChange, InitOptions, InitReport, SiteSummary};
pub use updater::install::InstallReport;
pub use updater::self_update::{
    ClientCheck, PROBE_TIMEOUT, SelfUpdateReport, offered_to_this_client,
};
pub use updater::status::StatusReport;
pub use updater::{LOCK_PATIENCE, Updater};
pub use wavecast_schema::{Attributes, ClientUpdate, Exclusion, Mode, Outcome, Withdrawal};
