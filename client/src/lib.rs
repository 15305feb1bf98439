/*!
The wavecast client: checks a site for updates and installs them safely.

# Quick start

An application that updates itself opens (or first initializes) an install root,
checks its channel and installs what the check decides:

```no_run
use wavecast_client::{
    BaseUrl, InitOptions, NoReporter, Outcome, PinnedTrust, StoreError, Timestamp,
    TrustedKey, Updater,
};

# fn main() -> Result<(), wavecast_client::Error> {
let root = "/opt/myapp";
let updater = match Updater::open(root) {
    Ok(updater) => updater,
    Err(wavecast_client::Error::Store(StoreError::NotInitialized { .. })) => {
        let key = TrustedKey::from_argument("RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3")?;
        let url = BaseUrl::parse("https://updates.example.com/myapp")?;
        Updater::init(root, InitOptions::new(url, PinnedTrust::Pubkey(key)), Timestamp::now())?;
        Updater::open(root)?
    }
    Err(error) => return Err(error),
};
let report = updater.check(Timestamp::now())?;
if report.outcome() == Outcome::Update {
    let installed = updater.install(&report, Timestamp::now(), &NoReporter)?;
    println!("now on {}", installed.tree.version);
}
# Ok(())
# }
```

`client/examples/` has this as a program, and two more (an update in the background
with progress and cancel; staging and applying at the next start), all run against
a real site by the tests.
The types the API takes and returns are re-exported: [`Timestamp`],
[`SignedDuration`], [`Version`], the site's names ([`ChannelName`], [`Platform`],
[`ModuleName`], [`RelativePath`]) and the whole site format as [`schema`].

# Checking

An [`Updater`] manages one install root. [`Updater::init`] writes its [`Config`]
(base URLs, the pinned [`TrustedKey`], channel, platform, [`Attributes`], the
[`DownloadLimits`](limits::DownloadLimits) a slow host must keep within, the grace
an expired manifest gets for a skewed clock; [`InitOptions::new`] has the defaults)
and a [`State`] holding a random install id; [`Updater::reconfigure`] applies a
[`ConfigChange`] (another channel, attributes set or removed, other limits).

[`Updater::check`] fetches the channel's signed manifest through a [`Transport`]
([`HttpTransport`], [`FileTransport`], or [`DefaultTransport`] for both), verifies
its signature before reading it, checks its channel, expiry and serial, and returns
a [`CheckReport`] with the decision of [`wavecast_schema::decide_skipping`] (releases
marked bad on this machine are skipped, see [`CheckReport::skipped`]): the target,
the rollout rule that applied, whether the update is mandatory, why the installed
release was withdrawn, when a deferred client becomes eligible.
[`Updater::check_with`] takes [`CheckOptions`]: the [`Mode`] (`--now` is
[`Mode::Manual`]) and attributes for one check. Attributes only feed the local
decision; no request carries them.

# Installing

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
[`InstallError::TreeMismatch`] names the first difference). It then promotes the tree
under `releases/`, records it, switches `current` atomically and prunes the cache,
telling a [`Reporter`] about progress.

Each of those [`InstallStep`]s is journaled before it is taken, so a run killed at
any instant leaves `current` on a complete release; every operation that takes the
root's lock first finishes or undoes such an [`InterruptedInstall`]
([`Updater::recover`] does only that and returns the [`Recovery`]). One run at a
time holds the lock; [`Updater::with_lock_wait`] waits for it.

# Progress and cancel

The [`Reporter`] given to an install hears its [`Progress`]: the [`Phase`]
(checking, downloading, assembling, switching) and the bytes done out of a total
known before the first byte is downloaded, all modules together; its other methods
tell each module's plan and downloads. A [`Cancel`] handle given to
[`Updater::with_cancel`] stops an install from another thread at its next safe point
(a chunk of a download, a file of the new tree, or just before the switch), with the
installed release untouched and [`Error::is_cancelled`] true.

# Apply at the next start

[`Updater::stage`] downloads and builds a release beside the running one without
switching to it, so a running application is never changed under it;
[`Updater::apply`], or the next [`Updater::launched`] before the application
starts, switches to it (no network needed), and [`Updater::restart`] starts the new
release's program in place of the running process.

# Trial, health checks and rollback

After the switch the release is on [`Trial`], and the [`HealthCheck`] of its
[`HealthConfig`], if any, runs in the new tree; one that fails or times out switches
`current` back and marks the release a [`BadRelease`]
([`LifecycleError::HealthCheckFailed`]). The application ends the trial with
[`Updater::confirm`]; its launcher counts starts with [`Updater::launched`], which
rolls back a release still unconfirmed after too many ([`LaunchOutcome`]).
[`Updater::rollback`] returns to the previous release on request. Every rollback
marks the release it leaves bad (unless asked not to), and [`Updater::unmark`] clears
such a mark ([`unmark_command`] names the command in messages). After installs and
rollbacks only the newest [`Config::keep_releases`] trees stay ([`PrunedRelease`]).
[`Updater::status`] reads what is installed, and any interrupted install, without
writing. Every failure is an [`Error`] naming what failed.

# Image modules

A release's image module (see [`wavecast_schema::ModuleKind::Image`]) never enters
the release tree: it is written into the inactive of two slots, verified, activated
by the [`SlotConfig`]'s on-activate hook and only then made the active slot
([`SlotActivation`], [`LifecycleError::ActivationFailed`]); rollbacks switch the
slots back.

# Who may use a root

Only the root's owner may install, check, roll back or reconfigure: a process that
may not write `ROOT/.wavecast` fails with [`StoreError::NotWritable`] before doing
anything. A root shared with a group ([`InitOptions::group`], [`ConfigChange::group`],
[`Config::group`]; Unix only) lets that group's members, such as the application's
own user, run [`Updater::confirm`], [`Updater::launched`] and [`Updater::status`]:
they write only the trial file, and leave rollbacks
([`LifecycleError::RollbackNotAllowed`]) and interrupted installs to the owner. The
README's "The application's own user" has the modes and the reasons.

# Updating the client itself

A manifest whose `min_client_version` is above [`CLIENT_VERSION`] fails
[`Updater::check`] with [`NetError::ClientTooOld`]; [`Updater::check_client`] reads it
anyway and says what it offers this client for itself ([`ClientCheck`],
[`ClientUpdate`]), and [`Updater::self_update`] replaces the running executable with
that build, verified and probed first ([`SelfUpdateReport`]).

# On disk

```text
ROOT/current -> releases/<version>-<id>    the running release, switched atomically
                                           (on Windows a file holding the path)
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

# Platforms

The library runs on Linux, macOS and Windows and never prints. What differs on
Windows (no mode bits, `current` as a small file, hooks run by `cmd` in a job
object, the running `.exe` renamed aside by a self-update) is in the README's
"Windows" section.
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
pub use install::cancel::Cancel;
pub use install::commit::{Recovery, RecoveryOutcome};
pub use install::plan::{
    FileAction, FileUpdate, ImageDownload, ModuleUpdate, PackageReason, UpdatePlan,
};
pub use install::reporter::{Fallback, NoReporter, Phase, Progress, Reporter};
pub use install::unpack::unpack_module;
pub use install::{InstallOutcome, TreeReport};
pub use lifecycle::command::{HEALTH_OUTPUT_LIMIT, HealthCheckReport, HealthStatus};
pub use lifecycle::error::{ActivationFailure, HealthCheckFailure, unmark_command};
pub use lifecycle::health::{ConfirmReport, HEALTH_CHECK_VARIABLE, LaunchOutcome, RollbackReport};
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
    BadReason, BadRelease, InstalledModule, InstalledRelease, STATE_FORMAT, StagedRelease, State,
    StoredManifest, Trial,
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
pub use updater::trial::LaunchReport;
pub use updater::{LOCK_PATIENCE, Updater};
pub use wavecast_schema::{Attributes, ClientUpdate, Exclusion, Mode, Outcome, Withdrawal};

/// Times: every call that depends on the clock takes the time as a [`Timestamp`].
pub use jiff::{SignedDuration, Timestamp};
/// Release versions.
pub use semver::Version;
/// The site's format: the manifest, releases, file indexes and names the API uses.
pub use wavecast_schema as schema;
pub use wavecast_schema::{ChannelName, ModuleName, Platform, RelativePath};
