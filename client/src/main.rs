//! `wavecast-update`: the command-line client. Parses arguments, calls
//! [`wavecast_client`], prints results, and maps every outcome to an exit code in one
//! place ([`main`]).

use std::cell::{Cell, RefCell};
use std::io::{self, BufRead, IsTerminal, Write};
use std::num::NonZeroU32;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use jiff::Timestamp;
use semver::Version;
use serde::Serialize;
use wavecast_client::limits::DownloadLimits;
use wavecast_client::schedule::{PollSchedule, parse_jitter};
use wavecast_client::units::{format_duration, format_speed, parse_duration, parse_speed};
use wavecast_client::{
    Attributes, BUILD_PLATFORM, BadRelease, BaseUrl, CheckOptions, CheckReport, ChooseOptions,
    Config, ConfigChange, Exclusion, Fallback, FileAction, HEALTH_CHECK_VARIABLE, HealthCheck,
    HealthCheckFailure, HealthCheckReport, HealthConfig, HealthStatus, HeldBack, ImageSource,
    InitOptions, InstallError, InstallOutcome, InstallReport, LaunchOutcome, LifecycleError, Mode,
    ModuleUpdate, Outcome, PackageReason, PinnedTrust, PrunedRelease, Recovery, RecoveryOutcome,
    Reporter, SiteSummary, SlotActivation, SlotConfig, SlotName, SlotsStatus, TrustedKey,
    UpdatePlan, Updater, Withdrawal, format_bytes, unmark_command,
};
use wavecast_schema::{ChannelName, ModuleName, Platform, VersionPin};

mod list_cli;
mod self_update_cli;

/// Version of the `--json` documents; bumped only for incompatible changes.
const JSON_SCHEMA_VERSION: u32 = 1;

/// The environment variable that replaces the clock, for tests.
const NOW_VARIABLE: &str = "WAVECAST_NOW";

const AFTER_HELP: &str = "\
Exit codes:
  0   success, including \"up to date\" and \"deferred\"
  1   operational failure: network, verification, install; a rollback (a failed
      health check, `launched` past the unconfirmed launches allowed); a failed
      on-activate hook; `update` with no terminal to ask and no --yes (mandatory
      updates never ask)
  2   usage or configuration error, such as `unmark` of a release not marked bad
  10  only with `check --exit-code`: an update is available

Environment:
  WAVECAST_ROOT         default for --root
  WAVECAST_NOW          an RFC 3339 time (e.g. 2026-11-21T12:00:00Z) used instead
                        of the system clock, for tests
  WAVECAST_NO_PROGRESS  set to hide progress bars
  WAVECAST_SELF_UPDATED_FROM
                        set by wavecast-update itself when it restarts after
                        updating itself; a client still too old then stops";

/// Keeps an install root up to date from a wavecast site: verifies the publisher's
/// signature, follows staged rollouts, and switches releases atomically.
#[derive(Debug, Parser)]
#[command(
    name = "wavecast-update",
    version = wavecast_client::marked_version(),
    after_help = AFTER_HELP
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Set up an install root: where to update from, whose signature to trust, which
    /// channel to follow.
    #[command(after_help = AFTER_HELP)]
    Init(InitArgs),
    /// Show the configuration, or change the channel, attributes, limits, health check,
    /// how many releases are kept, and the image slots and their on-activate hook.
    #[command(after_help = AFTER_HELP)]
    Config(ConfigArgs),
    /// Check for an update without installing anything.
    #[command(after_help = AFTER_HELP)]
    Check(CheckArgs),
    /// List every release of the channel and what it is to this client: current,
    /// installed, offered now, eligible at a time, paused, yanked, marked bad here,
    /// off the pin; and what updating to it would download.
    #[command(after_help = AFTER_HELP)]
    List(list_cli::ListArgs),
    /// Check for an update and install it.
    #[command(after_help = AFTER_HELP)]
    Update(UpdateArgs),
    /// Show what is installed and configured (no network).
    #[command(after_help = AFTER_HELP)]
    Status(StatusArgs),
    /// Check on an interval, with random jitter and a backoff after failures;
    /// install updates that are mandatory, or all of them with --install. Ctrl-C or
    /// SIGTERM stops between checks (an install in progress finishes first).
    #[command(after_help = AFTER_HELP)]
    Poll(PollArgs),
    /// Mark the current release healthy: call it from the application once it works.
    /// Launches then no longer count towards a rollback. Does nothing inside a health
    /// check. Members of the root's group (`init --group`) may run it too.
    #[command(after_help = AFTER_HELP)]
    Confirm(ConfirmArgs),
    /// Record one start of the application: call it from the launcher just before it
    /// starts `ROOT/current`. A release switched to by an update that is launched more
    /// often than --max-unconfirmed-launches (see `config`) without a `confirm` is
    /// rolled back to the release that ran before it, marked bad, and this exits 1;
    /// `current` is then the older release, so start `current` either way. Does
    /// nothing inside a health check. Members of the root's group (`init --group`)
    /// may count launches, but only the root's owner may roll back.
    #[command(after_help = AFTER_HELP)]
    Launched(LaunchedArgs),
    /// Return to the previous installed release (the newest one installed before the
    /// current one that is still on disk and not marked bad), marking the current one
    /// bad so updates skip it until a newer release appears. With image modules, the
    /// other slot is activated first when it holds that release's image.
    #[command(after_help = AFTER_HELP)]
    Rollback(RollbackArgs),
    /// Clear the bad mark of a release, so that updates (and `rollback`) may install
    /// it again. A release is marked bad by `rollback`, a failed health check, too
    /// many unconfirmed launches or a failed on-activate hook; `status` lists them.
    #[command(after_help = AFTER_HELP)]
    Unmark(UnmarkArgs),
    /// Replace this wavecast-update with the newer build the channel offers for its
    /// platform, keeping the old executable as `<name>.old`. `update` and `poll` do
    /// this by themselves, then go on, when the channel needs a newer client.
    #[command(after_help = AFTER_HELP)]
    SelfUpdate(self_update_cli::SelfUpdateArgs),
}

#[derive(Debug, Args)]
struct RootArg {
    /// The install root: `current`, `releases/` and `.wavecast/` live here.
    #[arg(
        long,
        value_name = "ROOT",
        env = "WAVECAST_ROOT",
        hide_env_values = true
    )]
    root: PathBuf,
}

/// `--attr KEY=VALUE`, repeatable.
#[derive(Debug, Args)]
struct AttrArgs {
    /// Declare an attribute for rollout rules (region, tenant, server id…), e.g.
    /// `--attr region=eu`. Repeatable. Attributes only feed this machine's decision;
    /// they are never sent anywhere.
    #[arg(long = "attr", value_name = "KEY=VALUE", value_parser = attribute_argument)]
    attributes: Vec<(String, String)>,
}

impl AttrArgs {
    fn to_map(&self) -> Attributes {
        self.attributes.iter().cloned().collect()
    }
}

fn attribute_argument(text: &str) -> Result<(String, String), String> {
    wavecast_client::parse_attribute(text).map_err(|error| error.to_string())
}

fn attribute_key_argument(text: &str) -> Result<String, String> {
    wavecast_client::check_attribute_key(text)
        .map(|()| text.to_owned())
        .map_err(|error| error.to_string())
}

/// How slowly hosts may send files, and how long an expired manifest is still
/// accepted: set by `init` (to the defaults when left out) and changed by `config`.
#[derive(Debug, Args)]
struct LimitArgs {
    /// Give up on a host whose download's average speed, counted from the request,
    /// is below this once the grace has passed (default 4KiB/s; 0 for no minimum),
    /// and try the next host.
    #[arg(long, value_name = "SPEED", value_parser = parse_speed)]
    min_speed: Option<u64>,
    /// How long a download runs before its average speed is judged, so small files
    /// and slow starts are not punished (default 10s).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    min_speed_grace: Option<Duration>,
    /// Give up on a host whose download (the manifest, or one blob) takes longer than
    /// this, however fast it goes, and try the next host (default 1h).
    #[arg(long, value_name = "DURATION", value_parser = deadline_argument)]
    download_deadline: Option<Duration>,
    /// Still accept a manifest this long after it expired, for a clock that runs
    /// ahead (default 0s). Each minute of grace is a minute more during which a host
    /// can freeze this client on an old manifest.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    expiry_grace: Option<Duration>,
}

impl LimitArgs {
    /// The download limits given, with the defaults for the rest.
    fn download_limits(&self) -> DownloadLimits {
        let defaults = DownloadLimits::default();
        DownloadLimits {
            min_speed: self.min_speed.unwrap_or(defaults.min_speed),
            min_speed_grace: self.min_speed_grace.unwrap_or(defaults.min_speed_grace),
            deadline: self.download_deadline.unwrap_or(defaults.deadline),
        }
    }
}

/// A download deadline: a duration longer than zero.
fn deadline_argument(text: &str) -> Result<Duration, String> {
    match parse_duration(text)? {
        Duration::ZERO => Err("a download deadline must be longer than 0s".to_owned()),
        deadline => Ok(deadline),
    }
}

#[derive(Debug, Args)]
struct InitArgs {
    #[command(flatten)]
    root: RootArg,
    /// Base URL of the site: http://, https://, file://, or a local folder. Repeat to
    /// add mirrors, tried in order.
    #[arg(long = "url", value_name = "URL", required = true)]
    urls: Vec<String>,
    /// The publisher's minisign public key: a `.pub` file or its base64 line.
    #[arg(
        long,
        value_name = "FILE_OR_BASE64",
        required_unless_present = "trusted_root"
    )]
    pubkey: Option<String>,
    /// Pin a root file instead of one key: a `roots/<n>.json` from the publisher's
    /// site, obtained by a path you trust (it lists k-of-n keys).
    #[arg(long, value_name = "FILE", conflicts_with = "pubkey")]
    trusted_root: Option<PathBuf>,
    /// The channel to follow.
    #[arg(long, default_value = "stable")]
    channel: ChannelName,
    /// The platform whose builds to install (a Rust target triple, or `any`).
    #[arg(long, value_name = "TRIPLE", default_value = BUILD_PLATFORM)]
    platform: Platform,
    #[command(flatten)]
    attributes: AttrArgs,
    #[command(flatten)]
    limits: LimitArgs,
    /// Rewrite the configuration of an initialized root; the install id and state are
    /// kept.
    #[arg(long)]
    force: bool,
    /// The product this root installs (the site's `product`). `init` checks it
    /// against the site; by default it records the site's. A manifest for another
    /// product is refused from then on.
    #[arg(long, value_name = "NAME")]
    product: Option<String>,
    /// Write the configuration without fetching the site (an image built without
    /// network). The first check verifies the site and, without --product, records
    /// its product.
    #[arg(long)]
    offline: bool,
    /// Share the root with this group (a name or a number), such as the application's
    /// own user's: its members may then run `confirm`, `launched` (a rollback stays
    /// with the owner) and `status`. ROOT/.wavecast becomes 2750 and group-owned, its
    /// files 0640, the lock 0660, and ROOT/.wavecast/shared, which holds the trial,
    /// 2770. Without it only the owner (the user running `init`) may use the root.
    #[arg(long, value_name = "GROUP")]
    group: Option<String>,
}

#[derive(Debug, Args)]
struct ConfigArgs {
    #[command(flatten)]
    root: RootArg,
    /// Follow this channel from now on. A client never moves down: on a channel whose
    /// newest release is older than the installed one, it stays where it is.
    #[arg(long)]
    channel: Option<ChannelName>,
    /// Set an attribute in the configuration. Repeatable.
    #[arg(long = "attr", value_name = "KEY=VALUE", value_parser = attribute_argument)]
    attributes: Vec<(String, String)>,
    /// Remove an attribute from the configuration (before any --attr). Repeatable.
    #[arg(long = "unset-attr", value_name = "KEY", value_parser = attribute_key_argument)]
    unset_attributes: Vec<String>,
    #[command(flatten)]
    limits: LimitArgs,
    /// Run this shell command (`sh -c`) in the new release tree after every switch;
    /// when it fails or times out, `current` is switched back and the release marked
    /// bad. It gets WAVECAST_ROOT, WAVECAST_RELEASE_DIR, WAVECAST_VERSION and
    /// WAVECAST_PREVIOUS_VERSION (empty on a first install).
    #[arg(long, value_name = "COMMAND", conflicts_with = "no_health_check")]
    health_check: Option<String>,
    /// Remove the health check.
    #[arg(long)]
    no_health_check: bool,
    /// How long the health check may run before its processes are killed and it
    /// counts as failed (default 30s).
    #[arg(long, value_name = "DURATION", value_parser = health_timeout_argument)]
    health_timeout: Option<Duration>,
    /// How many times a release switched to by an update may be launched (see
    /// `launched`) without a `confirm`; the next launch rolls it back (default 3; 0
    /// never rolls back).
    #[arg(long, value_name = "N")]
    max_unconfirmed_launches: Option<u32>,
    /// How many release trees to keep under ROOT/releases, the current one included
    /// (default 2; at least 1). Older ones are deleted after each install and
    /// rollback.
    #[arg(long, value_name = "N")]
    keep_releases: Option<NonZeroU32>,
    #[command(flatten)]
    activation: ActivationArgs,
    /// Remove the on-activate hook: a written image's slot then becomes active at
    /// once.
    #[arg(long, conflicts_with = "on_activate")]
    no_on_activate: bool,
    /// Where image modules are written: slot a's path (a file, partition or block
    /// device; default ROOT/slots/a).
    #[arg(long, value_name = "PATH")]
    slot_a: Option<PathBuf>,
    /// Slot b's path (default ROOT/slots/b).
    #[arg(long, value_name = "PATH")]
    slot_b: Option<PathBuf>,
    /// Stay on a line of releases: `1.4` (every 1.4.x), `1` or `1.4.2`. Updates then
    /// take the newest allowed release on it, never leave it, and `check` and `list`
    /// say what the pin holds back.
    #[arg(long, value_name = "LINE", conflicts_with = "unpin")]
    pin: Option<VersionPin>,
    /// Remove the pin: follow the whole channel again.
    #[arg(long)]
    unpin: bool,
    /// Share the root with this group (see `init --group`), or set its modes again.
    #[arg(long, value_name = "GROUP", conflicts_with = "no_group")]
    group: Option<String>,
    /// Share the root with no group: only the owner may use it.
    #[arg(long)]
    no_group: bool,
    /// Print the resulting configuration as one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

/// The on-activate hook of image modules, on `config` and `update`.
#[derive(Debug, Args)]
struct ActivationArgs {
    /// Run this shell command (`sh -c`, in ROOT) after an image module is written to
    /// the inactive slot and verified; only when it succeeds does that slot become
    /// the active one. On failure or timeout the other slot stays active and the
    /// release is marked bad. It gets WAVECAST_SLOT (a or b), WAVECAST_SLOT_PATH,
    /// WAVECAST_VERSION, WAVECAST_MODULE, WAVECAST_PREVIOUS_SLOT,
    /// WAVECAST_PREVIOUS_SLOT_PATH, WAVECAST_PREVIOUS_VERSION (empty when no slot was
    /// active) and WAVECAST_ROOT. It also runs for the older slot when a rollback
    /// switches back to it, so it must be idempotent.
    #[arg(long, value_name = "COMMAND")]
    on_activate: Option<String>,
    /// How long the on-activate hook may run before its processes are killed and it
    /// counts as failed (default 1m).
    #[arg(long, value_name = "DURATION", value_parser = health_timeout_argument)]
    activate_timeout: Option<Duration>,
}

/// A timeout (of a health check or an on-activate hook): a duration longer than zero.
fn health_timeout_argument(text: &str) -> Result<Duration, String> {
    match parse_duration(text)? {
        Duration::ZERO => Err("a timeout must be longer than 0s".to_owned()),
        timeout => Ok(timeout),
    }
}

/// What `check` and `update` decide with.
#[derive(Debug, Args)]
struct DecisionArgs {
    #[command(flatten)]
    attributes: AttrArgs,
    /// Ask for the newest release this client may take now, skipping the rollout's
    /// share and ramp. A pause, a yank, an excluding rule or a cap still apply.
    #[arg(long)]
    now: bool,
}

impl DecisionArgs {
    fn options(&self) -> CheckOptions {
        CheckOptions {
            mode: if self.now {
                Mode::Manual
            } else {
                Mode::Scheduled
            },
            attributes: self.attributes.to_map(),
            ignore_client_floor: false,
        }
    }
}

/// `--wait DURATION`, on the commands that take the root's lock.
#[derive(Debug, Args)]
struct WaitArg {
    /// When another wavecast-update is working on the root, wait up to this long for
    /// it to finish (e.g. 60s, 5m) instead of failing at once. A run that died never
    /// blocks: its lock went with it.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    wait: Option<Duration>,
}

impl WaitArg {
    /// Opens the root with this wait, then finishes or undoes an install a killed run
    /// left and says so on stderr.
    fn open(&self, root: &RootArg) -> anyhow::Result<Updater> {
        let updater = Updater::open(&root.root)?.with_lock_wait(self.wait.unwrap_or_default());
        if let Some(recovery) = updater.recover()? {
            stderr_line(&recovery_sentence(&recovery));
        }
        Ok(updater)
    }
}

/// What recovery did, for stderr.
fn recovery_sentence(recovery: &Recovery) -> String {
    let install = &recovery.install;
    let (version, step) = (&install.release.version, install.step);
    match recovery.outcome {
        RecoveryOutcome::Finished => format!(
            "finished the install of {version} that was interrupted at step `{step}`: current is releases/{}",
            install.release.dir
        ),
        _ => format!(
            "undid the install of {version} that was interrupted at step `{step}`: its partial tree was removed and current is unchanged"
        ),
    }
}

#[derive(Debug, Args)]
struct CheckArgs {
    #[command(flatten)]
    root: RootArg,
    #[command(flatten)]
    wait: WaitArg,
    #[command(flatten)]
    decision: DecisionArgs,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
    /// Exit with 10 when an update is available.
    #[arg(long)]
    exit_code: bool,
}

#[derive(Debug, Args)]
struct UpdateArgs {
    #[command(flatten)]
    root: RootArg,
    #[command(flatten)]
    wait: WaitArg,
    #[command(flatten)]
    decision: DecisionArgs,
    /// Install without asking. Required when there is no terminal to ask on, unless
    /// the update is mandatory (mandatory updates never ask).
    #[arg(long, short = 'y')]
    yes: bool,
    /// Print one JSON object on stdout (and no progress bars).
    #[arg(long)]
    json: bool,
    /// Hide progress bars.
    #[arg(long, short = 'q')]
    quiet: bool,
    /// Show how the update would be obtained and install nothing: per module and per
    /// file `keep` (copied from an installed release), `patch` (with its algorithm
    /// and size), `download` (the file's compressed copy) or `delete`, whether the
    /// whole package is used instead, and the bytes to download. Only file indexes
    /// are fetched.
    #[arg(long)]
    dry_run: bool,
    /// Download each module's whole package, as before differential updates: no
    /// local copies, patches or per-file downloads.
    #[arg(long)]
    full: bool,
    /// Run this health check after the switch instead of the configured one (see
    /// `config --health-check`): on failure or timeout `current` is switched back,
    /// the release marked bad, and this exits 1.
    #[arg(long, value_name = "COMMAND")]
    health_check: Option<String>,
    /// The health check's timeout for this run (default: the configured one, 30s).
    #[arg(long, value_name = "DURATION", value_parser = health_timeout_argument)]
    health_timeout: Option<Duration>,
    /// The on-activate hook (and its timeout) for this run instead of the configured
    /// ones (see `config --on-activate`).
    #[command(flatten)]
    activation: ActivationArgs,
    /// Install this release of the channel instead of the one the rollout picks:
    /// any live release (`list` shows them), but never a yanked one, one marked bad
    /// here or one off the pin. A release the rollout does not offer this client
    /// yet (share, ramp, pause, rule, cap) needs --now; an older one
    /// --allow-downgrade.
    #[arg(long, value_name = "VERSION")]
    to: Option<Version>,
    /// With --to, allow a release older than the installed one.
    #[arg(long, requires = "to")]
    allow_downgrade: bool,
}

impl UpdateArgs {
    /// The health check this run asks for instead of the configured one, if any.
    fn health_check(&self, configured: &HealthConfig) -> Option<HealthCheck> {
        let timeout = self.health_timeout.unwrap_or(configured.timeout);
        self.health_check
            .clone()
            .or_else(|| self.health_timeout.and(configured.check.clone()))
            .map(|command| HealthCheck { command, timeout })
    }

    /// The slots and hook this run uses, when it overrides the configured hook.
    fn slot_config(&self, configured: &SlotConfig) -> Option<SlotConfig> {
        let activation = &self.activation;
        (activation.on_activate.is_some() || activation.activate_timeout.is_some()).then(|| {
            SlotConfig {
                on_activate: activation
                    .on_activate
                    .clone()
                    .or_else(|| configured.on_activate.clone()),
                activate_timeout: activation
                    .activate_timeout
                    .unwrap_or(configured.activate_timeout),
                ..configured.clone()
            }
        })
    }
}

#[derive(Debug, Args)]
struct PollArgs {
    #[command(flatten)]
    root: RootArg,
    #[command(flatten)]
    decision: DecisionArgs,
    /// The wait between checks, e.g. 6h, 30m, 45s.
    #[arg(long, default_value = "6h", value_parser = parse_duration)]
    interval: Duration,
    /// How far each wait may move either way, so a fleet does not poll together.
    #[arg(long, default_value = "10%", value_parser = parse_jitter)]
    jitter: f64,
    /// Stop after this many checks (default: never).
    #[arg(long, value_name = "N")]
    max_polls: Option<u64>,
    /// Install every update found without asking, as `update --yes`. Without it only
    /// mandatory updates are installed and others are reported.
    #[arg(long)]
    install: bool,
    /// Print one JSON object per check on one line: `{"type": "poll", "data": {...}}`.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct ConfirmArgs {
    #[command(flatten)]
    root: RootArg,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct LaunchedArgs {
    #[command(flatten)]
    root: RootArg,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct RollbackArgs {
    #[command(flatten)]
    root: RootArg,
    /// Do not mark the current release bad: the next update may install it again.
    #[arg(long)]
    keep: bool,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct UnmarkArgs {
    #[command(flatten)]
    root: RootArg,
    /// The release whose mark to clear.
    #[arg(value_name = "VERSION")]
    version: Version,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct StatusArgs {
    #[command(flatten)]
    root: RootArg,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

/// Every exit code this program uses. Never renumber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExitStatus {
    /// 0: the command did what was asked, including "up to date" and "deferred".
    Success,
    /// 1: network, verification or install failure.
    Failure,
    /// 2: usage or configuration error (clap uses 2 as well).
    Usage,
    /// 10: `check --exit-code` found an update.
    UpdateAvailable,
}

impl From<ExitStatus> for ExitCode {
    fn from(status: ExitStatus) -> Self {
        ExitCode::from(match status {
            ExitStatus::Success => 0,
            ExitStatus::Failure => 1,
            ExitStatus::Usage => 2,
            ExitStatus::UpdateAvailable => 10,
        })
    }
}

/// Errors of the command line itself.
#[derive(Debug, thiserror::Error)]
enum CliError {
    /// `WAVECAST_NOW` is set but is not a time.
    #[error(
        "invalid {NOW_VARIABLE} `{value}`: expected an RFC 3339 time such as 2026-11-21T12:00:00Z"
    )]
    InvalidNow {
        value: String,
        #[source]
        source: jiff::Error,
    },
    /// `update` without `--yes` and nobody to ask.
    #[error("not installing {version}: no terminal to ask for consent; pass --yes")]
    NoTerminalForConsent { version: Version },
    /// Writing the result to stdout failed.
    #[error("failed to write to stdout")]
    WriteStdout(#[source] io::Error),
    /// `launched` rolled the current release back.
    #[error(
        "{version} was not confirmed after {launches} launches (at most {limit}): rolled back to {to} and marked {version} bad{}",
        unmark_note(version)
    )]
    RolledBackUnconfirmed {
        version: Version,
        launches: u32,
        limit: u32,
        to: Version,
    },
}

impl CliError {
    fn is_usage(&self) -> bool {
        matches!(self, Self::InvalidNow { .. })
    }

    fn hint(&self) -> Option<String> {
        match self {
            Self::RolledBackUnconfirmed { to, .. } => Some(format!(
                "start `current` as usual: it is {to} now; the application must run `wavecast-update confirm` once it works"
            )),
            _ => None,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(status) => status.into(),
        Err(error) => render_error(&error).into(),
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitStatus> {
    match cli.command {
        Command::Init(args) => init(args),
        Command::Config(args) => config(args),
        Command::Check(args) => check(args),
        Command::List(args) => list_cli::list(args),
        Command::Update(args) => update(args),
        Command::Status(args) => status(args),
        Command::Poll(args) => poll(args),
        Command::Confirm(args) => confirm(args),
        Command::Launched(args) => launched(args),
        Command::Rollback(args) => rollback(args),
        Command::Unmark(args) => unmark(args),
        Command::SelfUpdate(args) => self_update_cli::self_update(&args),
    }
}

/// The one error renderer: `error: …`, one `  caused by: …` per source, then any
/// hint. Chooses the exit code. A broken pipe on stdout exits 0 silently.
fn render_error(error: &anyhow::Error) -> ExitStatus {
    // Only our own stdout counts: a broken pipe to a server is a network failure.
    let broken_pipe = error
        .downcast_ref::<CliError>()
        .is_some_and(|error| matches!(error, CliError::WriteStdout(io) if io.kind() == io::ErrorKind::BrokenPipe));
    if broken_pipe {
        return ExitStatus::Success;
    }
    let mut usage = false;
    let mut hint = None;
    for cause in error.chain() {
        if let Some(error) = cause.downcast_ref::<wavecast_client::Error>() {
            usage |= error.is_configuration();
            hint = hint.or_else(|| error.hint());
        }
        if let Some(error) = cause.downcast_ref::<CliError>() {
            usage |= error.is_usage();
            hint = hint.or_else(|| error.hint());
        }
        if let Some(error) = cause.downcast_ref::<self_update_cli::SelfUpdateError>() {
            hint = hint.or_else(|| Some(error.hint()));
        }
    }
    let mut stderr = io::stderr().lock();
    let _ = writeln!(stderr, "error: {error}");
    for cause in error.chain().skip(1) {
        let _ = writeln!(stderr, "  caused by: {cause}");
    }
    if let Some(hint) = hint {
        let _ = writeln!(stderr, "hint: {hint}");
    }
    if usage {
        ExitStatus::Usage
    } else {
        ExitStatus::Failure
    }
}

/// The client's clock: `WAVECAST_NOW` when set, else the system clock.
fn now() -> anyhow::Result<Timestamp> {
    match std::env::var_os(NOW_VARIABLE) {
        Some(value) => {
            let value = value.to_string_lossy().into_owned();
            value
                .trim()
                .parse()
                .map_err(|source| CliError::InvalidNow { value, source }.into())
        }
        None => Ok(Timestamp::now()),
    }
}

fn stdout_line(text: &str) -> Result<(), CliError> {
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "{text}")
        .and_then(|()| stdout.flush())
        .map_err(CliError::WriteStdout)
}

fn stdout_json(value: &impl Serialize) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value).context("failed to format JSON output")?;
    Ok(stdout_line(&text)?)
}

fn stderr_line(text: &str) {
    let _ = writeln!(io::stderr().lock(), "{text}");
}

fn init(args: InitArgs) -> anyhow::Result<ExitStatus> {
    let cwd = std::env::current_dir().context("failed to read the current directory")?;
    let urls = args
        .urls
        .iter()
        .map(|url| BaseUrl::from_argument(url, &cwd))
        .collect::<Result<Vec<_>, _>>()?;
    let trust = match (&args.pubkey, &args.trusted_root) {
        (_, Some(path)) => PinnedTrust::Root(wavecast_client::read_pinned_root(path)?),
        (Some(key), None) => PinnedTrust::Pubkey(TrustedKey::from_argument(key)?),
        (None, None) => unreachable!("clap requires --pubkey or --trusted-root"),
    };
    let options = InitOptions {
        urls,
        trust,
        channel: args.channel.clone(),
        platform: args.platform.clone(),
        attributes: args.attributes.to_map(),
        download_limits: args.limits.download_limits(),
        expiry_grace: args.limits.expiry_grace.unwrap_or_default(),
        force: args.force,
        product: args.product.clone(),
        offline: args.offline,
        group: args.group.clone(),
    };
    let report = Updater::init(&args.root.root, options, now()?)?;
    match &report.site {
        Some(site) => stderr_line(&site_line(site, &args.platform)),
        None => stderr_line(
            "not verified (--offline): the first check verifies the site and records its product",
        ),
    }
    let verb = if report.reconfigured {
        "reconfigured"
    } else {
        "initialized"
    };
    let kept = if report.kept_state { " (kept)" } else { "" };
    let attributes = args.attributes.to_map();
    let attributes = if attributes.is_empty() {
        String::new()
    } else {
        format!(", attributes {}", attribute_list(&attributes))
    };
    let group = args.group.as_ref().map_or_else(String::new, |group| {
        format!(", shared with group `{group}`")
    });
    stderr_line(&format!(
        "{verb} {}: channel {}, platform {}, install id {}{kept}{attributes}{group}",
        args.root.root.display(),
        args.channel,
        args.platform,
        report.install_id,
    ));
    Ok(ExitStatus::Success)
}

/// What `init` verified, for people: the site's product, channel, serial, newest
/// release and the keys that signed it.
fn site_line(site: &SiteSummary, platform: &Platform) -> String {
    let urls: Vec<&str> = site.urls.iter().map(BaseUrl::as_str).collect();
    let newest = match &site.newest {
        Some(newest) => format!(
            "newest release {newest} ({} for {platform})",
            plural(site.releases, "release")
        ),
        None => format!("no release for {platform} yet"),
    };
    let keys: Vec<String> = site.signed_by.iter().map(ToString::to_string).collect();
    let floor = if site.min_client_version > wavecast_client::client_version() {
        format!(
            "; it needs wavecast-update >= {}, which the first update installs first",
            site.min_client_version
        )
    } else {
        String::new()
    };
    format!(
        "verified {}: product `{}`, channel {}, serial {}, {newest}, signed by release key {} of root v{}{floor}",
        urls.join(" and "),
        site.product,
        site.channel,
        site.serial,
        keys.join(", "),
        site.root_version,
    )
}

/// `1 release`, `3 releases`.
fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

fn config(args: ConfigArgs) -> anyhow::Result<ExitStatus> {
    let mut updater = Updater::open(&args.root.root)?;
    let change = ConfigChange {
        channel: args.channel.clone(),
        set_attributes: args.attributes.iter().cloned().collect(),
        unset_attributes: args.unset_attributes.iter().cloned().collect(),
        min_speed: args.limits.min_speed,
        min_speed_grace: args.limits.min_speed_grace,
        download_deadline: args.limits.download_deadline,
        expiry_grace: args.limits.expiry_grace,
        health_check: if args.no_health_check {
            Some(None)
        } else {
            args.health_check.clone().map(Some)
        },
        health_timeout: args.health_timeout,
        max_unconfirmed_launches: args.max_unconfirmed_launches,
        keep_releases: args.keep_releases,
        on_activate: if args.no_on_activate {
            Some(None)
        } else {
            args.activation.on_activate.clone().map(Some)
        },
        activate_timeout: args.activation.activate_timeout,
        slot_a: args
            .slot_a
            .as_deref()
            .map(std::path::absolute)
            .transpose()?,
        slot_b: args
            .slot_b
            .as_deref()
            .map(std::path::absolute)
            .transpose()?,
        pin: if args.unpin {
            Some(None)
        } else {
            args.pin.map(Some)
        },
        group: if args.no_group {
            Some(None)
        } else {
            args.group.clone().map(Some)
        },
    };
    let before = updater.config().clone();
    let changed = if change == ConfigChange::default() {
        false
    } else {
        updater.reconfigure(&change)?
    };
    let config = updater.config();
    if changed {
        if config.channel != before.channel {
            stderr_line(&format!(
                "now following channel `{}` (was `{}`)",
                config.channel, before.channel
            ));
        }
        if config.attributes != before.attributes {
            stderr_line("attributes updated");
        }
        if config.download_limits != before.download_limits {
            stderr_line(&format!(
                "download limits now {}",
                limits_text(&config.download_limits)
            ));
        }
        if config.expiry_grace != before.expiry_grace {
            stderr_line(&format!(
                "expiry grace now {}",
                format_duration(config.expiry_grace)
            ));
        }
        let (health, was) = (&config.health, &before.health);
        if (&health.check, health.timeout) != (&was.check, was.timeout) {
            stderr_line(&format!("health check now {}", health_text(health)));
        }
        if health.max_unconfirmed_launches != was.max_unconfirmed_launches {
            stderr_line(&format!(
                "unconfirmed launches now {}",
                launches_text(health.max_unconfirmed_launches)
            ));
        }
        if config.keep_releases != before.keep_releases {
            stderr_line(&format!(
                "keeping {} release tree(s) from the next install or rollback on",
                config.keep_releases
            ));
        }
        let (slots, was) = (&config.slots, &before.slots);
        if (&slots.on_activate, slots.activate_timeout) != (&was.on_activate, was.activate_timeout)
        {
            stderr_line(&format!("on-activate hook now {}", activation_text(slots)));
        }
        if (&slots.a, &slots.b) != (&was.a, &was.b) {
            stderr_line(&format!("image slots now {}", slot_paths_text(slots)));
        }
        if config.pin != before.pin {
            stderr_line(&match config.pin {
                Some(pin) => format!(
                    "pinned to {pin}: updates take the newest allowed release on that line and never leave it"
                ),
                None => "unpinned: updates follow the whole channel".to_owned(),
            });
        }
    } else if change != ConfigChange::default() && change.group.is_none() {
        stderr_line("nothing changed");
    }
    if change.group.is_some() {
        stderr_line(&match &config.group {
            Some(group) => format!(
                "shared with group `{group}`: its members may run `confirm`, `launched` and `status`; modes set"
            ),
            None => "shared with no group: only the owner may use this root; modes set".to_owned(),
        });
    }
    if args.json {
        stdout_json(&ConfigJson {
            schema_version: JSON_SCHEMA_VERSION,
            changed,
            channel: config.channel.as_str(),
            platform: config.platform.as_str(),
            urls: config.urls.iter().map(BaseUrl::as_str).collect(),
            attributes: &config.attributes,
            download_limits: &config.download_limits,
            expiry_grace: format_duration(config.expiry_grace),
            health: &config.health,
            keep_releases: config.keep_releases.get(),
            slots: &config.slots,
            pin: config.pin.map(|pin| pin.to_string()),
            group: config.group.as_deref(),
        })?;
    } else {
        stdout_line(&config_lines(config).join("\n"))?;
    }
    Ok(ExitStatus::Success)
}

fn config_lines(config: &Config) -> Vec<String> {
    vec![
        format!("channel: {}", config.channel),
        format!("platform: {}", config.platform),
        format!(
            "urls: {}",
            config
                .urls
                .iter()
                .map(BaseUrl::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        format!("attributes: {}", attribute_list(&config.attributes)),
        format!("download limits: {}", limits_text(&config.download_limits)),
        format!("expiry grace: {}", format_duration(config.expiry_grace)),
        format!("health check: {}", health_text(&config.health)),
        format!(
            "unconfirmed launches: {}",
            launches_text(config.health.max_unconfirmed_launches)
        ),
        format!("keep releases: {}", config.keep_releases),
        format!("on-activate hook: {}", activation_text(&config.slots)),
        format!("image slots: {}", slot_paths_text(&config.slots)),
        format!(
            "pin: {}",
            config
                .pin
                .map_or_else(|| "none".to_owned(), |pin| pin.to_string())
        ),
        format!("group: {}", group_text(config.group.as_deref())),
    ]
}

/// `app (its members may run …)`, or `none (…)`, for `config`'s `group:` line.
fn group_text(group: Option<&str>) -> String {
    match group {
        Some(group) => format!("{group} (its members may run confirm, launched and status)"),
        None => "none (only the owner may use this root)".to_owned(),
    }
}

/// ``reboot-into "$WAVECAST_SLOT"` (timeout 1m)`, or `none (timeout 1m)`.
fn activation_text(slots: &SlotConfig) -> String {
    let timeout = format_duration(slots.activate_timeout);
    match &slots.on_activate {
        Some(command) => format!("`{command}` (timeout {timeout})"),
        None => format!("none (timeout {timeout})"),
    }
}

/// `a = /dev/sda2, b = ROOT/slots/b`.
fn slot_paths_text(slots: &SlotConfig) -> String {
    SlotName::BOTH
        .iter()
        .map(|slot| {
            let path = slots.path(*slot).map_or_else(
                || format!("ROOT/slots/{slot}"),
                |path| path.display().to_string(),
            );
            format!("{slot} = {path}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// ``./bin/app --self-test` (timeout 30s)`, or `none (timeout 30s)`.
fn health_text(health: &HealthConfig) -> String {
    let timeout = format_duration(health.timeout);
    match &health.check {
        Some(command) => format!("`{command}` (timeout {timeout})"),
        None => format!("none (timeout {timeout})"),
    }
}

/// `at most 3, then a rollback`, or `counted, never rolled back`.
fn launches_text(limit: u32) -> String {
    if limit == 0 {
        "counted, never rolled back".to_owned()
    } else {
        format!("at most {limit}, then a rollback")
    }
}

/// `at least 4KiB/s on average after 10s, at most 1h per download`.
fn limits_text(limits: &DownloadLimits) -> String {
    let speed = if limits.min_speed == 0 {
        "no minimum speed".to_owned()
    } else {
        format!(
            "at least {} on average after {}",
            format_speed(limits.min_speed),
            format_duration(limits.min_speed_grace)
        )
    };
    format!(
        "{speed}, at most {} per download",
        format_duration(limits.deadline)
    )
}

/// `region=eu, tenant=acme`, or `none`.
fn attribute_list(attributes: &Attributes) -> String {
    if attributes.is_empty() {
        return "none".to_owned();
    }
    attributes
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn check(args: CheckArgs) -> anyhow::Result<ExitStatus> {
    let updater = args.wait.open(&args.root)?;
    let options = args.decision.options();
    let checked =
        self_update_cli::check_or_report(&updater, now()?, &options, args.json, args.exit_code)?;
    let report = match checked {
        ControlFlow::Continue(report) => report,
        ControlFlow::Break(status) => return Ok(status),
    };
    if args.json {
        stdout_json(&check_json(&report))?;
    } else {
        stdout_line(&check_sentence(&report))?;
    }
    Ok(if args.exit_code && report.outcome() == Outcome::Update {
        ExitStatus::UpdateAvailable
    } else {
        ExitStatus::Success
    })
}

fn update(args: UpdateArgs) -> anyhow::Result<ExitStatus> {
    let mut updater = args.wait.open(&args.root)?.with_packages_only(args.full);
    if let Some(check) = args.health_check(&updater.config().health) {
        updater = updater.with_health_check(check);
    }
    if let Some(slots) = args.slot_config(&updater.config().slots) {
        updater = updater.with_slot_config(slots);
    }
    let options = args.decision.options();
    let choice = ChooseOptions {
        allow_downgrade: args.allow_downgrade,
        now: args.decision.now,
    };
    let choose = |report: CheckReport| match &args.to {
        Some(version) => updater.choose(&report, version, choice),
        None => Ok(report),
    };
    if args.dry_run {
        return match self_update_cli::check_or_report(&updater, now()?, &options, args.json, false)?
        {
            ControlFlow::Continue(report) => dry_run(&updater, &choose(report)?, args.json),
            ControlFlow::Break(status) => Ok(status),
        };
    }
    let progress = !args.json
        && !args.quiet
        && io::stderr().is_terminal()
        && std::env::var_os("WAVECAST_NO_PROGRESS").is_none();
    let report = choose(self_update_cli::check_or_update_self(
        &updater,
        now()?,
        &options,
        progress,
    )?)?;
    let Some(target) = report
        .target()
        .filter(|_| report.outcome() == Outcome::Update)
    else {
        if args.json {
            stdout_json(&update_json(&report, None))?;
        } else {
            stderr_line(&check_sentence(&report));
        }
        return Ok(ExitStatus::Success);
    };
    if let Some(sentence) = withdrawal_sentence(&report) {
        stderr_line(&sentence);
    }
    if report.mandatory() {
        // Mandatory updates never ask: the publisher decided this client must move.
        stderr_line(&format!(
            "mandatory update: installing {}{}",
            target.version,
            rule_suffix(&report)
        ));
    } else if !args.yes {
        if !(io::stdin().is_terminal() && io::stderr().is_terminal()) {
            return Err(CliError::NoTerminalForConsent {
                version: target.version.clone(),
            }
            .into());
        }
        if !ask_consent(&report)? {
            stderr_line(&format!("not installing {}", target.version));
            if args.json {
                stdout_json(&update_json(&report, None))?;
            }
            return Ok(ExitStatus::Success);
        }
    }
    let reporter = ProgressReporter::new(progress);
    let outcome = updater.install(&report, now()?, &reporter);
    drop(reporter);
    let installed = match outcome {
        Ok(installed) => installed,
        Err(error) => {
            if let wavecast_client::Error::Lifecycle(LifecycleError::HealthCheckFailed(failure)) =
                &error
            {
                if args.json {
                    stdout_json(&rolled_back_json(&report, failure))?;
                } else {
                    print_health_output("health check", &failure.report);
                    print_pruned(&failure.pruned);
                }
            }
            if let wavecast_client::Error::Lifecycle(LifecycleError::ActivationFailed(failure)) =
                &error
            {
                if args.json {
                    stdout_json(&UpdateJson {
                        marked_bad: failure.marked_bad.then(|| failure.version.to_string()),
                        unmark_command: failure
                            .marked_bad
                            .then(|| unmark_command(&failure.version)),
                        activation_failed: Some(health_check_json(&failure.report)),
                        ..update_json(&report, None)
                    })?;
                } else {
                    print_health_output("on-activate", &failure.report);
                }
            }
            return Err(error.into());
        }
    };
    if args.json {
        stdout_json(&update_json(&report, Some(&installed)))?;
    } else {
        let line = match (installed.tree.outcome, &installed.tree.previous) {
            (InstallOutcome::AlreadyCurrent, _) => {
                format!("already installed: {}", installed.tree.version)
            }
            (InstallOutcome::Reused, Some(previous)) => format!(
                "switched back to {} (was {previous}): releases/{} was intact, nothing to download",
                installed.tree.version, installed.tree.dir
            ),
            (_, Some(previous)) => format!(
                "installed {} (was {previous}) in releases/{}{}",
                installed.tree.version,
                installed.tree.dir,
                transfer_summary(&report, &installed)
            ),
            (_, None) => format!(
                "installed {} in releases/{}{}",
                installed.tree.version,
                installed.tree.dir,
                transfer_summary(&report, &installed)
            ),
        };
        if let Some(image) = &installed.image {
            stderr_line(&image_line(image));
        }
        stderr_line(&line);
        if let Some(health) = &installed.health_check {
            stderr_line(&format!(
                "health check `{}` {}",
                health.command,
                health.describe()
            ));
        }
        print_pruned(&installed.pruned_releases);
    }
    Ok(ExitStatus::Success)
}

/// `image os 1.1.0 written to slot b (`/dev/sda3`) from a 1.2 KiB patch against
/// slot a; on-activate `…` passed in 0.1s; slot b is active (was a)`.
fn image_line(image: &SlotActivation) -> String {
    let written = match &image.source {
        ImageSource::InSlot => "already in".to_owned(),
        ImageSource::Patch {
            base,
            algorithm,
            bytes,
        } => format!(
            "written from a {} {} patch against slot {base} to",
            format_bytes(*bytes),
            algorithm.as_str()
        ),
        ImageSource::Package { bytes } => {
            format!("written from its {} package to", format_bytes(*bytes))
        }
        _ => "written to".to_owned(),
    };
    let mut line = format!(
        "image {} {} {written} slot {} (`{}`)",
        image.module,
        image.version,
        image.slot,
        image.slot_path.display()
    );
    if image.fallbacks > 0 {
        line.push_str(&format!(" after {} failed patch(es)", image.fallbacks));
    }
    if let Some(hook) = &image.hook {
        line.push_str(&format!(
            "; on-activate `{}` {}",
            hook.command,
            hook.describe()
        ));
    }
    line.push_str(&match (image.switched, image.previous) {
        (false, _) => format!("; slot {} was active already", image.slot),
        (true, Some(previous)) => format!("; slot {} is active (was {previous})", image.slot),
        (true, None) => format!("; slot {} is active", image.slot),
    });
    line
}

/// The captured output of a failed hook (`health check`, `on-activate`), on stderr.
fn print_health_output(what: &str, report: &HealthCheckReport) {
    if report.output_bytes == 0 {
        stderr_line(&format!("{what} output: none"));
        return;
    }
    let kept = report.output.len() as u64;
    if kept < report.output_bytes {
        stderr_line(&format!(
            "{what} output (its last {} of {}):",
            format_bytes(kept),
            format_bytes(report.output_bytes)
        ));
    } else {
        stderr_line(&format!("{what} output:"));
    }
    for line in report.output.lines() {
        stderr_line(&format!("  | {line}"));
    }
}

/// `deleted release trees: releases/1.0.0-…`, when a prune deleted any.
fn print_pruned(pruned: &[PrunedRelease]) {
    if !pruned.is_empty() {
        let dirs: Vec<String> = pruned
            .iter()
            .map(|release| format!("releases/{}", release.dir))
            .collect();
        stderr_line(&format!("deleted release trees: {}", dirs.join(", ")));
    }
}

/// `: downloaded 1.2 MiB (planned 1.1 MiB; whole packages: 9.9 MiB); freed 3.4 MiB
/// of cache; manifest from https://a/; blobs from https://cdn/`. For a release of only
/// an image (its image line says what that cost), the tree's zero bytes are left out.
fn transfer_summary(report: &CheckReport, installed: &InstallReport) -> String {
    let mut text = if installed.tree.package_bytes == 0 && installed.image.is_some() {
        ": the release tree has no modules".to_owned()
    } else {
        format!(
            ": downloaded {} (planned {}; whole packages: {})",
            format_bytes(installed.tree.downloaded_bytes),
            format_bytes(installed.tree.planned_bytes + installed.tree.index_bytes),
            format_bytes(installed.tree.package_bytes),
        )
    };
    if installed.tree.fallbacks > 0 {
        text.push_str(&format!("; {} fallback(s)", installed.tree.fallbacks));
    }
    if installed.tree.pruned_bytes > 0 {
        text.push_str(&format!(
            "; freed {} of cache",
            format_bytes(installed.tree.pruned_bytes)
        ));
    }
    text.push_str(&format!("; manifest from {}", report.served_by()));
    if !installed.tree.download_hosts_used.is_empty() {
        let hosts: Vec<&str> = installed
            .tree
            .download_hosts_used
            .iter()
            .map(BaseUrl::as_str)
            .collect();
        text.push_str(&format!("; blobs from {}", hosts.join(", ")));
    }
    text
}

/// `update --dry-run`: prints the plan (or the decision, when there is nothing to
/// install) on stdout and installs nothing.
fn dry_run(updater: &Updater, report: &CheckReport, json: bool) -> anyhow::Result<ExitStatus> {
    let plan = match report.target() {
        Some(_) if report.outcome() == Outcome::Update => Some(updater.plan(report)?),
        _ => None,
    };
    if json {
        stdout_json(&plan_json(report, plan.as_ref()))?;
    } else if let Some(plan) = &plan {
        stdout_line(&plan_lines(report, plan).join("\n"))?;
    } else {
        stdout_line(&check_sentence(report))?;
    }
    Ok(ExitStatus::Success)
}

/// The `update --dry-run --json` document.
#[derive(Debug, Serialize)]
struct PlanJson<'a> {
    schema_version: u32,
    /// `update`, `up_to_date` or `deferred`; the plan is empty unless `update`.
    decision: &'static str,
    current: Option<String>,
    target: Option<String>,
    modules: Vec<ModulePlanJson<'a>>,
    /// Bytes the update would download, file indexes aside.
    download_bytes: u64,
    /// What downloading every module's package would cost instead.
    package_bytes: u64,
    /// Bytes received to fetch file indexes for the plan.
    index_bytes: u64,
}

#[derive(Debug, Serialize)]
struct ModulePlanJson<'a> {
    name: &'a str,
    /// The module's destination in the release tree, if not its root.
    dest: Option<&'a str>,
    use_package: bool,
    /// `cheaper`, `no_file_copies`, `requested` or `fresh_install` when
    /// `use_package`.
    package_reason: Option<&'static str>,
    download_bytes: u64,
    package_bytes: u64,
    /// Every file with `keep`, `patch` or `download`; empty when `use_package`.
    files: Vec<FilePlanJson<'a>>,
    /// Paths of the installed module that the target lacks.
    removed: Vec<&'a str>,
}

#[derive(Debug, Serialize)]
struct FilePlanJson<'a> {
    /// Relative to the module's destination.
    path: &'a str,
    action: &'static str,
    /// Bytes to download for this file.
    bytes: u64,
    /// `zstd` or `bsdiff`, for a patch.
    #[serde(skip_serializing_if = "Option::is_none")]
    algorithm: Option<&'static str>,
}

fn plan_json<'a>(report: &'a CheckReport, plan: Option<&'a UpdatePlan>) -> PlanJson<'a> {
    PlanJson {
        schema_version: JSON_SCHEMA_VERSION,
        decision: report.outcome().as_str(),
        current: report.current().map(|current| current.version.to_string()),
        target: report.target().map(|target| target.version.to_string()),
        modules: plan.map_or_else(Vec::new, |plan| {
            plan.modules
                .iter()
                .map(|module| ModulePlanJson {
                    name: module.name.as_str(),
                    dest: module_dest(report, module),
                    use_package: module.use_package,
                    package_reason: module.package_reason.map(|reason| reason.as_str()),
                    download_bytes: module.download_bytes,
                    package_bytes: module.package_bytes,
                    files: module
                        .files
                        .iter()
                        .map(|file| FilePlanJson {
                            path: file.path.as_str(),
                            action: file.action.as_str(),
                            bytes: file.download_bytes(),
                            algorithm: match &file.action {
                                FileAction::Patch(patch) => Some(patch.algorithm.as_str()),
                                _ => None,
                            },
                        })
                        .collect(),
                    removed: module.removed.iter().map(|path| path.as_str()).collect(),
                })
                .collect()
        }),
        download_bytes: plan.map_or(0, |plan| plan.download_bytes),
        package_bytes: plan.map_or(0, |plan| plan.package_bytes),
        index_bytes: plan.map_or(0, |plan| plan.index_bytes),
    }
}

/// Where a module of the report's target goes in the release tree.
fn module_dest<'a>(report: &'a CheckReport, module: &ModuleUpdate) -> Option<&'a str> {
    report
        .target()?
        .for_platform(report.platform())?
        .modules
        .get(&module.name)?
        .dest
        .as_ref()
        .map(|dest| dest.as_str())
}

/// The dry run for people: one line per module and per file, then the total.
fn plan_lines(report: &CheckReport, plan: &UpdatePlan) -> Vec<String> {
    let from = report.current().map_or_else(
        || "nothing installed".to_owned(),
        |current| current.version.to_string(),
    );
    let mut lines = vec![format!(
        "plan: {from} -> {} (releases/{})",
        plan.version, plan.dir
    )];
    for module in &plan.modules {
        let name = match module_dest(report, module) {
            Some(dest) => format!("module {} ({dest}/)", module.name),
            None => format!("module {}", module.name),
        };
        if module.use_package {
            let why = match module.package_reason {
                Some(PackageReason::Cheaper) => "cheaper than its files",
                Some(PackageReason::NoFileCopies) => "the site has no per-file copies",
                Some(PackageReason::Requested) => "--full",
                Some(PackageReason::FreshInstall) => "nothing installed to update from",
                // A reason added later: the bare fact is still right.
                _ => "as planned",
            };
            lines.push(format!(
                "{name}: whole package, {} ({why})",
                format_bytes(module.package_bytes)
            ));
        } else {
            lines.push(format!(
                "{name}: {} files, download {} (package {})",
                module.files.len(),
                format_bytes(module.download_bytes),
                format_bytes(module.package_bytes)
            ));
            for file in &module.files {
                let detail = match &file.action {
                    FileAction::Keep => String::new(),
                    FileAction::Patch(patch) => format!(
                        " ({}, {})",
                        patch.algorithm.as_str(),
                        format_bytes(patch.size)
                    ),
                    _ => format!(" ({})", format_bytes(file.download_bytes())),
                };
                lines.push(format!(
                    "  {:<9} {}{detail}",
                    file.action.as_str(),
                    file.path
                ));
            }
        }
        for path in &module.removed {
            lines.push(format!("  {:<9} {path}", "delete"));
        }
    }
    lines.push(format!(
        "total: download {} (whole packages: {}); file indexes fetched: {}",
        format_bytes(plan.download_bytes),
        format_bytes(plan.package_bytes),
        format_bytes(plan.index_bytes)
    ));
    lines
}

/// Shows the target and its notes on stderr and asks on the terminal.
fn ask_consent(report: &CheckReport) -> anyhow::Result<bool> {
    let Some(target) = report.target() else {
        return Ok(false);
    };
    let current = report.current().map_or_else(
        || "nothing installed yet".to_owned(),
        |current| format!("installed: {}", current.version),
    );
    let mut stderr = io::stderr().lock();
    let rule = rule_suffix(report);
    writeln!(stderr, "{} is available ({current}){rule}", target.version)?;
    if !target.notes.trim().is_empty() {
        writeln!(stderr, "\nRelease notes:\n{}\n", target.notes.trim_end())?;
    }
    write!(stderr, "Install {}? [y/N] ", target.version)?;
    stderr.flush()?;
    drop(stderr);
    let mut answer = String::new();
    io::stdin()
        .lock()
        .read_line(&mut answer)
        .context("failed to read the answer")?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

/// Set by SIGINT or SIGTERM during `poll`: stop before the next check.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn request_stop(_signal: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// Makes SIGINT and SIGTERM set [`STOP`] instead of killing the process, so `poll`
/// exits between checks.
fn stop_on_signals() {
    let handler = request_stop as extern "C" fn(libc::c_int) as libc::sighandler_t;
    for signal in [libc::SIGINT, libc::SIGTERM] {
        #[expect(
            unsafe_code,
            reason = "signal(2) has no safe wrapper in std; the handler only stores an atomic"
        )]
        // SAFETY: the handler is async-signal-safe (one atomic store).
        unsafe {
            libc::signal(signal, handler);
        }
    }
}

/// Sleeps for `delay`, waking early when a stop was requested; returns whether to go
/// on.
fn sleep_unless_stopped(delay: Duration) -> bool {
    let deadline = std::time::Instant::now() + delay;
    while !STOP.load(Ordering::SeqCst) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return true;
        }
        std::thread::sleep(left.min(Duration::from_millis(200)));
    }
    false
}

/// The `poll --json` line of one check.
#[derive(Serialize)]
struct PollLine<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    data: PollJson<'a>,
}

#[derive(Serialize)]
struct PollJson<'a> {
    schema_version: u32,
    /// 1 for the first check.
    poll: u64,
    /// `checked`, `installed`, `available` (an update not installed without
    /// --install) or `error`.
    result: &'static str,
    /// The host answered that the manifest had not changed.
    not_modified: bool,
    check: Option<CheckJson<'a>>,
    /// The release installed by this check.
    installed: Option<String>,
    error: Option<String>,
    /// Seconds until the next check; absent after the last.
    next_poll_secs: Option<f64>,
}

fn poll(args: PollArgs) -> anyhow::Result<ExitStatus> {
    let updater = Updater::open(&args.root.root)?;
    let schedule = PollSchedule {
        interval: args.interval,
        jitter: args.jitter,
    };
    let options = args.decision.options();
    stop_on_signals();
    let mut failures = 0u32;
    let mut last_failed = false;
    for count in 1.. {
        let outcome = poll_once(&updater, &options, args.install);
        last_failed = outcome.is_err();
        failures = if last_failed {
            failures.saturating_add(1)
        } else {
            0
        };
        let last = args.max_polls.is_some_and(|max| count >= max) || STOP.load(Ordering::SeqCst);
        let delay = (!last).then(|| schedule.delay(failures, random_u64()));
        let (report, installed, error) = match &outcome {
            Ok((report, installed)) => (Some(report), installed.as_ref(), None),
            Err(error) => (None, None, Some(error)),
        };
        let result = match (report, installed, error) {
            (_, _, Some(_)) => "error",
            (_, Some(_), _) => "installed",
            (Some(report), None, _) if report.outcome() == Outcome::Update => "available",
            _ => "checked",
        };
        if args.json {
            let line = PollLine {
                kind: "poll",
                data: PollJson {
                    schema_version: JSON_SCHEMA_VERSION,
                    poll: count,
                    result,
                    not_modified: report.is_some_and(CheckReport::not_modified),
                    check: report.map(check_json),
                    installed: installed.map(|installed| installed.tree.version.to_string()),
                    error: error.map(|error| format!("{error:#}")),
                    next_poll_secs: delay.map(|delay| delay.as_secs_f64()),
                },
            };
            let text = serde_json::to_string(&line).context("failed to format JSON output")?;
            stdout_line(&text)?;
        } else {
            let what = match (report, installed, error) {
                (_, _, Some(error)) => format!("error: {error:#}"),
                (Some(report), Some(installed), _) => {
                    format!(
                        "installed {}{}",
                        installed.tree.version,
                        rule_suffix(report)
                    )
                }
                (Some(report), None, _) if report.outcome() == Outcome::Update => format!(
                    "{} (not installing: pass --install)",
                    check_sentence(report)
                ),
                (Some(report), None, _) => check_sentence(report),
                (None, _, None) => String::new(),
            };
            let unchanged = if report.is_some_and(CheckReport::not_modified) {
                " [manifest unchanged]"
            } else {
                ""
            };
            let next = delay.map_or_else(String::new, |delay| {
                format!("; next check in {}", human_duration(delay))
            });
            stdout_line(&format!("poll {count}: {what}{unchanged}{next}"))?;
        }
        match delay {
            Some(delay) if sleep_unless_stopped(delay) => {}
            _ => break,
        }
    }
    Ok(if last_failed {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}

/// One check, and an install when the policy allows it: mandatory updates always,
/// others with `--install`.
fn poll_once(
    updater: &Updater,
    options: &CheckOptions,
    install: bool,
) -> anyhow::Result<(CheckReport, Option<InstallReport>)> {
    let report = self_update_cli::check_or_update_self(updater, now()?, options, false)?;
    let wanted = report.outcome() == Outcome::Update
        && report.target().is_some()
        && (install || report.mandatory());
    if !wanted {
        return Ok((report, None));
    }
    let installed = updater.install(&report, now()?, &wavecast_client::NoReporter)?;
    Ok((report, Some(installed)))
}

/// A random number for the jitter; without randomness the wait is not moved.
fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    match getrandom::fill(&mut bytes) {
        Ok(()) => u64::from_le_bytes(bytes),
        Err(_) => u64::MAX / 2,
    }
}

/// `6h 0m`, `12m 3s`, `1.5s`.
fn human_duration(delay: Duration) -> String {
    let seconds = delay.as_secs();
    if seconds >= 3600 {
        format!("{}h {}m", seconds / 3600, seconds % 3600 / 60)
    } else if seconds >= 60 {
        format!("{}m {}s", seconds / 60, seconds % 60)
    } else {
        format!("{:.1}s", delay.as_secs_f64())
    }
}

/// Whether this process runs inside a health check, where `confirm` and `launched`
/// do nothing (the root is locked by the install that runs the check).
fn in_health_check() -> bool {
    std::env::var_os(HEALTH_CHECK_VARIABLE).is_some()
}

/// The `confirm --json` and `launched --json` document.
#[derive(Debug, Serialize)]
struct TrialJson<'a> {
    schema_version: u32,
    /// `confirm`: `confirmed`, `already_confirmed` or `in_health_check`.
    /// `launched`: `confirmed`, `counted`, `no_fallback`, `rolled_back` or
    /// `in_health_check`.
    result: &'static str,
    /// The release current when the command ran.
    version: Option<String>,
    /// Launches recorded while it was unconfirmed.
    launches: Option<u32>,
    /// The most unconfirmed launches allowed (`0`: no limit), for `launched`.
    limit: Option<u32>,
    /// The release `current` points to after a rollback.
    rolled_back_to: Option<String>,
    /// The release a rollback marked bad.
    marked_bad: Option<String>,
    /// The command that clears that mark.
    unmark_command: Option<String>,
    /// Release trees deleted after a rollback.
    pruned_releases: Vec<PrunedJson<'a>>,
}

impl TrialJson<'_> {
    fn new(result: &'static str) -> Self {
        Self {
            schema_version: JSON_SCHEMA_VERSION,
            result,
            version: None,
            launches: None,
            limit: None,
            rolled_back_to: None,
            marked_bad: None,
            unmark_command: None,
            pruned_releases: Vec::new(),
        }
    }
}

fn confirm(args: ConfirmArgs) -> anyhow::Result<ExitStatus> {
    if in_health_check() {
        stderr_line("inside a health check: nothing to confirm");
        if args.json {
            stdout_json(&TrialJson::new("in_health_check"))?;
        }
        return Ok(ExitStatus::Success);
    }
    let report = Updater::open(&args.root.root)?.confirm()?;
    let version = &report.release.version;
    let result = match report.launches {
        Some(launches) => {
            stderr_line(&format!(
                "confirmed {version} after {launches} launch(es): it is kept"
            ));
            "confirmed"
        }
        None => {
            stderr_line(&format!("{version} was confirmed already"));
            "already_confirmed"
        }
    };
    if args.json {
        stdout_json(&TrialJson {
            version: Some(version.to_string()),
            launches: report.launches,
            ..TrialJson::new(result)
        })?;
    }
    Ok(ExitStatus::Success)
}

fn launched(args: LaunchedArgs) -> anyhow::Result<ExitStatus> {
    if in_health_check() {
        stderr_line("inside a health check: the launch is not counted");
        if args.json {
            stdout_json(&TrialJson::new("in_health_check"))?;
        }
        return Ok(ExitStatus::Success);
    }
    let report = Updater::open(&args.root.root)?.launched(now()?)?;
    let version = report.release.version.clone();
    let mut json = TrialJson {
        version: Some(version.to_string()),
        ..TrialJson::new("confirmed")
    };
    let mut rolled_back = None;
    match &report.outcome {
        &LaunchOutcome::Counted { launches, limit } => {
            json.result = "counted";
            (json.launches, json.limit) = (Some(launches), Some(limit));
            let limit_text = if limit == 0 {
                String::new()
            } else {
                format!(" of at most {limit}")
            };
            stderr_line(&format!(
                "{version} is not confirmed yet: launch {launches}{limit_text} (`wavecast-update confirm` ends the count)"
            ));
        }
        &LaunchOutcome::NoFallback { launches, limit } => {
            json.result = "no_fallback";
            (json.launches, json.limit) = (Some(launches), Some(limit));
            stderr_line(&format!(
                "warning: {version} is still not confirmed after {launches} launches (at most {limit}), but no earlier release is left to roll back to"
            ));
        }
        LaunchOutcome::RolledBack {
            launches,
            limit,
            to,
            pruned,
        } => {
            json.result = "rolled_back";
            (json.launches, json.limit) = (Some(*launches), Some(*limit));
            json.rolled_back_to = Some(to.version.to_string());
            json.marked_bad = Some(version.to_string());
            json.unmark_command = Some(unmark_command(&version));
            json.pruned_releases = pruned_json(pruned);
            print_pruned(pruned);
            rolled_back = Some(CliError::RolledBackUnconfirmed {
                version: version.clone(),
                launches: *launches,
                limit: *limit,
                to: to.version.clone(),
            });
        }
        _ => stderr_line(&format!(
            "{version} is confirmed: the launch is not counted"
        )),
    }
    if args.json {
        stdout_json(&json)?;
    }
    match rolled_back {
        Some(error) => Err(error.into()),
        None => Ok(ExitStatus::Success),
    }
}

fn rollback(args: RollbackArgs) -> anyhow::Result<ExitStatus> {
    let report = Updater::open(&args.root.root)?.rollback(!args.keep, now()?)?;
    let (from, to) = (&report.from.version, &report.to.version);
    let consequence = if report.marked_bad {
        format!(
            "{from} is marked bad and is not installed again until a newer release is published{}",
            unmark_note(from)
        )
    } else {
        format!("{from} is not marked bad, so the next update may install it again")
    };
    if let Some(image) = &report.image {
        stderr_line(&image_line(image));
    }
    stderr_line(&format!(
        "rolled back to {to} (was {from}) in releases/{}; {consequence}",
        report.to.dir
    ));
    print_pruned(&report.pruned);
    if args.json {
        stdout_json(&RollbackJson {
            schema_version: JSON_SCHEMA_VERSION,
            from: from.to_string(),
            to: to.to_string(),
            release_dir: format!("releases/{}", report.to.dir),
            marked_bad: report.marked_bad,
            unmark_command: report.marked_bad.then(|| unmark_command(from)),
            pruned_releases: pruned_json(&report.pruned),
            image: report.image.as_ref().map(image_json),
        })?;
    }
    Ok(ExitStatus::Success)
}

fn unmark(args: UnmarkArgs) -> anyhow::Result<ExitStatus> {
    let cleared = Updater::open(&args.root.root)?.unmark(&args.version)?;
    stderr_line(&format!(
        "unmarked {} (marked bad at {}: {}); the next update may install it again",
        cleared.version, cleared.marked_at, cleared.detail
    ));
    if args.json {
        stdout_json(&UnmarkJson {
            schema_version: JSON_SCHEMA_VERSION,
            result: "unmarked",
            version: cleared.version.to_string(),
            dir: &cleared.dir,
            reason: cleared.reason.as_str(),
            detail: &cleared.detail,
            marked_at: cleared.marked_at,
        })?;
    }
    Ok(ExitStatus::Success)
}

/// The `unmark --json` document: the mark cleared.
#[derive(Debug, Serialize)]
struct UnmarkJson<'a> {
    schema_version: u32,
    /// `unmarked`.
    result: &'static str,
    version: String,
    dir: &'a str,
    /// Why it had been marked (as `reason` in `status --json`).
    reason: &'static str,
    detail: &'a str,
    marked_at: Timestamp,
}

/// `` (`wavecast-update unmark 1.1.0` clears the mark)``, after saying that a release
/// is marked bad.
fn unmark_note(version: &Version) -> String {
    format!(" (`{}` clears the mark)", unmark_command(version))
}

/// The `rollback --json` document.
#[derive(Debug, Serialize)]
struct RollbackJson<'a> {
    schema_version: u32,
    /// The release that was current.
    from: String,
    /// The release now current.
    to: String,
    /// Where it is, relative to the root.
    release_dir: String,
    /// Whether `from` was marked bad (not with `--keep`).
    marked_bad: bool,
    /// The command that clears that mark, when there is one.
    unmark_command: Option<String>,
    /// Release trees deleted after the rollback.
    pruned_releases: Vec<PrunedJson<'a>>,
    /// The slot switched back to, when the slots followed the rollback.
    image: Option<ImageJson<'a>>,
}

fn status(args: StatusArgs) -> anyhow::Result<ExitStatus> {
    let updater = Updater::open(&args.root.root)?;
    let status = updater.status()?;
    if args.json {
        stdout_json(&StatusJson {
            schema_version: JSON_SCHEMA_VERSION,
            current: status
                .current
                .as_ref()
                .map(|current| current.version.to_string()),
            current_dir: status.current.as_ref().map(|current| current.dir.as_str()),
            installed: status
                .installed
                .iter()
                .map(|release| InstalledJson {
                    version: release.version.to_string(),
                    dir: &release.dir,
                    installed_at: release.installed_at,
                })
                .collect(),
            channel: status.channel.as_str(),
            platform: status.platform.as_str(),
            attributes: &status.attributes,
            urls: status.urls.iter().map(BaseUrl::as_str).collect(),
            install_id: status.install_id.as_str(),
            highest_serial: status.highest_serial,
            last_check: status.last_check,
            confirmed: status.current.as_ref().map(|_| status.trial.is_none()),
            unconfirmed_launches: status.trial.as_ref().map(|trial| trial.launches),
            bad_releases: status.bad_releases.iter().map(bad_json).collect(),
            slots: status.slots.as_ref().map(slots_json),
            interrupted: status.interrupted.as_ref().map(|install| InterruptedJson {
                version: install.release.version.to_string(),
                dir: &install.release.dir,
                step: install.step.as_str(),
                previous: install.previous.as_deref(),
                finishes: install.finishes(),
            }),
        })?;
        return Ok(ExitStatus::Success);
    }
    let current = status.current.as_ref().map_or_else(
        || "none".to_owned(),
        |current| {
            let confirmation = match &status.trial {
                Some(trial) => format!("unconfirmed, {} launch(es)", trial.launches),
                None => "confirmed".to_owned(),
            };
            format!(
                "{} (releases/{}), {confirmation}",
                current.version, current.dir
            )
        },
    );
    let bad = if status.bad_releases.is_empty() {
        "none".to_owned()
    } else {
        status
            .bad_releases
            .iter()
            .map(|bad| format!("{} ({}, {})", bad.version, bad.detail, bad.marked_at))
            .collect::<Vec<_>>()
            .join("; ")
            + "; `wavecast-update unmark VERSION` clears a mark"
    };
    let installed = if status.installed.is_empty() {
        "none".to_owned()
    } else {
        status
            .installed
            .iter()
            .map(|release| release.version.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let slots = status.slots.as_ref().map(slots_lines).unwrap_or_default();
    let mut lines = [
        format!("current: {current}"),
        format!("installed: {installed}"),
        format!("marked bad: {bad}"),
    ]
    .into_iter()
    .chain(slots)
    .chain([
        format!("channel: {}", status.channel),
        format!("platform: {}", status.platform),
        format!("attributes: {}", attribute_list(&status.attributes)),
        format!(
            "urls: {}",
            status
                .urls
                .iter()
                .map(BaseUrl::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        format!("install id: {}", status.install_id),
        format!(
            "highest serial seen: {}",
            status
                .highest_serial
                .map_or_else(|| "none".to_owned(), |serial| serial.to_string())
        ),
        format!(
            "last check: {}",
            status
                .last_check
                .map_or_else(|| "never".to_owned(), |time| time.to_string())
        ),
    ])
    .collect::<Vec<_>>();
    if let Some(install) = &status.interrupted {
        lines.push(format!(
            "interrupted install: {} at step `{}`; the next check or update {} it",
            install.release.version,
            install.step,
            if install.finishes() {
                "finishes"
            } else {
                "undoes"
            }
        ));
    }
    stdout_line(&lines.join("\n"))?;
    Ok(ExitStatus::Success)
}

/// `slot a: 1.0.0 (os, 4.0 MiB, `/x/slots/a`), active` and the same for `b`.
fn slots_lines(slots: &SlotsStatus) -> Vec<String> {
    slots
        .slots
        .iter()
        .map(|slot| {
            let held = slot.image.as_ref().map_or_else(
                || "no image".to_owned(),
                |image| {
                    format!(
                        "{} ({}, {})",
                        image.version,
                        image.module,
                        format_bytes(image.size)
                    )
                },
            );
            let active = if slots.active == Some(slot.name) {
                ", active"
            } else {
                ""
            };
            format!(
                "slot {}: {held} at `{}`{active}",
                slot.name,
                slot.path.display()
            )
        })
        .collect()
}

/// The `slots` object of `status --json`.
#[derive(Debug, Serialize)]
struct SlotsJson<'a> {
    /// `a`, `b` or null.
    active: Option<SlotName>,
    /// Both slots, `a` first.
    slots: Vec<SlotJson<'a>>,
}

/// One slot in `status --json`.
#[derive(Debug, Serialize)]
struct SlotJson<'a> {
    name: SlotName,
    path: &'a std::path::Path,
    active: bool,
    /// The release whose image it holds (null when unknown or empty).
    version: Option<String>,
    module: Option<&'a str>,
    size: Option<u64>,
    blake3: Option<&'a str>,
}

fn slots_json(slots: &SlotsStatus) -> SlotsJson<'_> {
    SlotsJson {
        active: slots.active,
        slots: slots
            .slots
            .iter()
            .map(|slot| SlotJson {
                name: slot.name,
                path: &slot.path,
                active: slots.active == Some(slot.name),
                version: slot.image.as_ref().map(|image| image.version.to_string()),
                module: slot.image.as_ref().map(|image| image.module.as_str()),
                size: slot.image.as_ref().map(|image| image.size),
                blake3: slot.image.as_ref().map(|image| image.blake3.as_str()),
            })
            .collect(),
    }
}

/// The `check --json` document.
#[derive(Debug, Serialize)]
struct CheckJson<'a> {
    schema_version: u32,
    /// `update`, `up_to_date` or `deferred`.
    decision: &'static str,
    current: Option<String>,
    target: Option<String>,
    newest: Option<String>,
    /// The release whose rollout test settled the decision (`bucket`, `threshold`,
    /// `rule` and `exclusion` are about it).
    rollout_version: Option<String>,
    bucket: Option<u16>,
    threshold: Option<u16>,
    threshold_percent: Option<f64>,
    /// The name of the rollout rule that applied, if one matched.
    rule: Option<&'a str>,
    /// A mandatory update installs without asking.
    mandatory: bool,
    /// `yanked` or `capped` when the installed release must be left.
    withdrawn: Option<&'static str>,
    /// `paused`, `yanked`, `excluded_by_rule` or `capped` when the release keeps this
    /// client out regardless of time.
    exclusion: Option<&'static str>,
    /// For a deferral, when this client becomes eligible as the manifest stands.
    eligible_at: Option<Timestamp>,
    /// The target is older than the installed release.
    downgrade: bool,
    /// `scheduled`, or `manual` with `--now`.
    mode: &'static str,
    channel: &'a str,
    serial: u64,
    served_by: &'a str,
    notes: Option<&'a str>,
    /// Releases newer than the installed one that this client skips because they
    /// are marked bad here.
    skipped_bad: Vec<BadJson<'a>>,
    /// Every newer release that does not admit this client now, newest first, each
    /// with its own rollout test and why it keeps this client out.
    held_back: Vec<HeldBackJson>,
    /// The line the client stays on, or null.
    pin: Option<String>,
    /// The newest release the pin keeps this client from, or null.
    pinned_out: Option<String>,
    /// This client's version, the floor, and the build of it offered.
    client: self_update_cli::ClientJson,
}

/// A release that holds back, in `check` and `update` JSON.
#[derive(Debug, Serialize)]
struct HeldBackJson {
    version: String,
    /// `paused`, `excluded_by_rule`, `capped`, `ramping` or `outside_share`.
    reason: &'static str,
    bucket: u16,
    threshold: u16,
    threshold_percent: f64,
    rule: Option<String>,
    eligible_at: Option<Timestamp>,
    /// The reason in words.
    sentence: String,
}

fn held_back_json(held: &HeldBack) -> HeldBackJson {
    HeldBackJson {
        version: held.version.to_string(),
        reason: held.reason(),
        bucket: held.rollout.bucket,
        threshold: held.rollout.threshold.get(),
        threshold_percent: held.rollout.threshold.percent(),
        rule: held.rule.clone(),
        eligible_at: held.eligible_at,
        sentence: held.to_string(),
    }
}

/// A release marked bad, in `check`, `update` and `status` JSON.
#[derive(Debug, Serialize)]
struct BadJson<'a> {
    version: String,
    dir: &'a str,
    /// `health_check_failed`, `health_check_timed_out`, `unconfirmed` or
    /// `rolled_back`.
    reason: &'static str,
    detail: &'a str,
    marked_at: Timestamp,
    /// The command that clears the mark.
    unmark_command: String,
}

fn bad_json(bad: &BadRelease) -> BadJson<'_> {
    BadJson {
        version: bad.version.to_string(),
        dir: &bad.dir,
        reason: bad.reason.as_str(),
        detail: &bad.detail,
        marked_at: bad.marked_at,
        unmark_command: unmark_command(&bad.version),
    }
}

fn check_json(report: &CheckReport) -> CheckJson<'_> {
    let rollout = report.rollout();
    CheckJson {
        schema_version: JSON_SCHEMA_VERSION,
        decision: report.outcome().as_str(),
        current: report.current().map(|current| current.version.to_string()),
        target: report.target().map(|target| target.version.to_string()),
        newest: report.newest().map(ToString::to_string),
        rollout_version: report.rollout_version().map(ToString::to_string),
        bucket: rollout.map(|rollout| rollout.bucket),
        threshold: rollout.map(|rollout| rollout.threshold.get()),
        threshold_percent: rollout.map(|rollout| rollout.threshold.percent()),
        rule: report.rule().map(|rule| rule.name.as_str()),
        mandatory: report.mandatory(),
        withdrawn: report.withdrawn().map(Withdrawal::as_str),
        exclusion: report.exclusion().map(Exclusion::as_str),
        eligible_at: report.eligible_at(),
        downgrade: report.is_downgrade(),
        mode: match report.mode() {
            Mode::Scheduled => "scheduled",
            Mode::Manual => "manual",
        },
        channel: report.channel().as_str(),
        serial: report.serial(),
        served_by: report.served_by().as_str(),
        notes: report
            .target()
            .map(|target| target.notes.as_str())
            .filter(|notes| !notes.is_empty()),
        skipped_bad: report.skipped().iter().map(bad_json).collect(),
        held_back: report.held_back().iter().map(held_back_json).collect(),
        pin: report.pin().map(|pin| pin.to_string()),
        pinned_out: report.pinned_out().map(ToString::to_string),
        client: self_update_cli::client_json(report.manifest()),
    }
}

/// The `update --json` document: the check's fields plus what was installed and
/// what it cost.
#[derive(Debug, Serialize)]
struct UpdateJson<'a> {
    #[serde(flatten)]
    check: CheckJson<'a>,
    /// The version installed by this run, if any.
    installed: Option<String>,
    /// Where it was installed, relative to the root.
    release_dir: Option<String>,
    /// Bytes the plan meant to download, file indexes aside (the dry run's
    /// `download_bytes`).
    download_bytes: Option<u64>,
    /// Bytes received over the network by the install, file indexes and fallbacks
    /// included.
    downloaded_bytes: Option<u64>,
    /// Of `downloaded_bytes`, those spent on file indexes.
    index_bytes: Option<u64>,
    /// What downloading every module's package would have cost.
    package_bytes: Option<u64>,
    /// How many failed steps were replaced by more expensive ones.
    fallbacks: Option<u32>,
    /// Bytes freed from the download cache after the install.
    pruned_bytes: Option<u64>,
    /// The hosts that sent blobs for the install, in the order they first did
    /// (`served_by` names the manifest's host).
    download_hosts_used: Option<Vec<&'a str>>,
    /// The health check run after the switch, if one is configured.
    health_check: Option<HealthCheckJson<'a>>,
    /// When the health check failed: the release `current` points to again (null
    /// when none was current before).
    rolled_back_to: Option<String>,
    /// When the health check or the on-activate hook failed: the release marked bad.
    marked_bad: Option<String>,
    /// The command that clears that mark.
    unmark_command: Option<String>,
    /// Release trees deleted after the install (or the rollback).
    pruned_releases: Vec<PrunedJson<'a>>,
    /// The image module written to a slot and activated, if the release has one.
    image: Option<ImageJson<'a>>,
    /// When the on-activate hook failed: what it did (as `health_check`).
    activation_failed: Option<HealthCheckJson<'a>>,
}

/// An image module's slot activation in `update --json` and `rollback --json`.
#[derive(Debug, Serialize)]
struct ImageJson<'a> {
    module: &'a str,
    version: String,
    /// `a` or `b`: the slot now active.
    slot: SlotName,
    slot_path: &'a std::path::Path,
    /// The slot active before (null when none was).
    previous_slot: Option<SlotName>,
    /// `in_slot`, `patch` or `package`.
    source: &'static str,
    /// Bytes received for the image, its file index included.
    downloaded_bytes: u64,
    /// Whether the active slot changed.
    switched: bool,
    /// What the on-activate hook did (as `health_check`), when one ran.
    hook: Option<HealthCheckJson<'a>>,
}

fn image_json(image: &SlotActivation) -> ImageJson<'_> {
    ImageJson {
        module: image.module.as_str(),
        version: image.version.to_string(),
        slot: image.slot,
        slot_path: &image.slot_path,
        previous_slot: image.previous,
        source: match image.source {
            ImageSource::Patch { .. } => "patch",
            ImageSource::Package { .. } => "package",
            _ => "in_slot",
        },
        downloaded_bytes: image.downloaded_bytes,
        switched: image.switched,
        hook: image.hook.as_ref().map(health_check_json),
    }
}

/// A health check in `update --json`.
#[derive(Debug, Serialize)]
struct HealthCheckJson<'a> {
    command: &'a str,
    /// `passed`, `failed` or `timed_out`.
    result: &'static str,
    /// The exit status, when it exited.
    exit_code: Option<i32>,
    /// The signal that killed it (not the client's, on a timeout).
    signal: Option<i32>,
    /// Its timeout: `"30s"`…
    timeout: String,
    duration_secs: f64,
    /// The end of its output (at most 4 KiB), stdout and stderr interleaved.
    output: &'a str,
    /// How many bytes of output it wrote in all.
    output_bytes: u64,
}

fn health_check_json(report: &HealthCheckReport) -> HealthCheckJson<'_> {
    let (result, exit_code, signal) = match report.status {
        HealthStatus::Passed => ("passed", Some(0), None),
        HealthStatus::Exited(code) => ("failed", Some(code), None),
        HealthStatus::Signaled(signal) => ("failed", None, Some(signal)),
        HealthStatus::TimedOut => ("timed_out", None, None),
    };
    HealthCheckJson {
        command: &report.command,
        result,
        exit_code,
        signal,
        timeout: format_duration(report.timeout),
        duration_secs: report.duration.as_secs_f64(),
        output: &report.output,
        output_bytes: report.output_bytes,
    }
}

/// A deleted release tree in `--json` output.
#[derive(Debug, Serialize)]
struct PrunedJson<'a> {
    version: String,
    dir: &'a str,
}

fn pruned_json(pruned: &[PrunedRelease]) -> Vec<PrunedJson<'_>> {
    pruned
        .iter()
        .map(|release| PrunedJson {
            version: release.version.to_string(),
            dir: &release.dir,
        })
        .collect()
}

fn update_json<'a>(
    report: &'a CheckReport,
    installed: Option<&'a InstallReport>,
) -> UpdateJson<'a> {
    UpdateJson {
        check: check_json(report),
        installed: installed.map(|installed| installed.tree.version.to_string()),
        release_dir: installed.map(|installed| format!("releases/{}", installed.tree.dir)),
        download_bytes: installed.map(|installed| installed.tree.planned_bytes),
        downloaded_bytes: installed.map(|installed| installed.tree.downloaded_bytes),
        index_bytes: installed.map(|installed| installed.tree.index_bytes),
        package_bytes: installed.map(|installed| installed.tree.package_bytes),
        fallbacks: installed.map(|installed| installed.tree.fallbacks),
        pruned_bytes: installed.map(|installed| installed.tree.pruned_bytes),
        download_hosts_used: installed.map(|installed| {
            installed
                .tree
                .download_hosts_used
                .iter()
                .map(BaseUrl::as_str)
                .collect()
        }),
        health_check: installed
            .and_then(|installed| installed.health_check.as_ref())
            .map(health_check_json),
        rolled_back_to: None,
        marked_bad: None,
        unmark_command: None,
        pruned_releases: installed.map_or_else(Vec::new, |installed| {
            pruned_json(&installed.pruned_releases)
        }),
        image: installed
            .and_then(|installed| installed.image.as_ref())
            .map(image_json),
        activation_failed: None,
    }
}

/// The `update --json` document of an install its health check rolled back.
fn rolled_back_json<'a>(
    report: &'a CheckReport,
    failure: &'a HealthCheckFailure,
) -> UpdateJson<'a> {
    UpdateJson {
        health_check: Some(health_check_json(&failure.report)),
        rolled_back_to: failure.rolled_back_to.as_ref().map(ToString::to_string),
        marked_bad: Some(failure.version.to_string()),
        unmark_command: Some(unmark_command(&failure.version)),
        pruned_releases: pruned_json(&failure.pruned),
        ..update_json(report, None)
    }
}

/// The `config --json` document.
#[derive(Debug, Serialize)]
struct ConfigJson<'a> {
    schema_version: u32,
    /// Whether this run changed the configuration.
    changed: bool,
    channel: &'a str,
    platform: &'a str,
    urls: Vec<&'a str>,
    attributes: &'a Attributes,
    /// `{"min_speed": "4KiB/s", "min_speed_grace": "10s", "deadline": "1h"}`.
    download_limits: &'a DownloadLimits,
    /// `"0s"`, `"5m"`…
    expiry_grace: String,
    /// `{"check": "…" or null, "timeout": "30s", "max_unconfirmed_launches": 3}`.
    health: &'a HealthConfig,
    /// How many release trees are kept.
    keep_releases: u32,
    /// `{"on_activate": "…" or null, "activate_timeout": "1m", "a": path or null,
    /// "b": path or null}`.
    slots: &'a SlotConfig,
    /// The line the client stays on (`"1.4"`), or null.
    pin: Option<String>,
    /// The group the root is shared with, or null.
    group: Option<&'a str>,
}

/// The `status --json` document.
#[derive(Debug, Serialize)]
struct StatusJson<'a> {
    schema_version: u32,
    current: Option<String>,
    current_dir: Option<&'a str>,
    installed: Vec<InstalledJson<'a>>,
    channel: &'a str,
    platform: &'a str,
    attributes: &'a Attributes,
    urls: Vec<&'a str>,
    install_id: &'a str,
    highest_serial: Option<u64>,
    last_check: Option<Timestamp>,
    /// Whether the current release is confirmed (null when none is current).
    confirmed: Option<bool>,
    /// Launches recorded since the switch while the current release is unconfirmed.
    unconfirmed_launches: Option<u32>,
    /// The releases marked bad here, which updates skip.
    bad_releases: Vec<BadJson<'a>>,
    /// The image slots, once an image module was installed (else null).
    slots: Option<SlotsJson<'a>>,
    interrupted: Option<InterruptedJson<'a>>,
}

/// An interrupted install in `status --json`.
#[derive(Debug, Serialize)]
struct InterruptedJson<'a> {
    version: String,
    dir: &'a str,
    /// The journal step it had reached.
    step: &'static str,
    /// The directory `current` pointed to when it began.
    previous: Option<&'a str>,
    /// Whether the next check or update finishes it (else it undoes it).
    finishes: bool,
}

/// One installed release in `status --json`.
#[derive(Debug, Serialize)]
struct InstalledJson<'a> {
    version: String,
    dir: &'a str,
    installed_at: Timestamp,
}

/// ` (rule `NAME`)` when a rollout rule applied, else nothing.
fn rule_suffix(report: &CheckReport) -> String {
    report
        .rule()
        .map_or_else(String::new, |rule| format!(" (rule `{}`)", rule.name))
}

/// `1.2.0 was yanked: moving back to 1.1.0`, when the installed release is withdrawn
/// and the report moves away from it.
fn withdrawal_sentence(report: &CheckReport) -> Option<String> {
    let withdrawn = report.withdrawn()?;
    let current = report.current()?;
    let target = report.target()?;
    let why = match withdrawn {
        Withdrawal::Yanked => "was yanked",
        Withdrawal::Capped => "was capped below this client's bucket",
    };
    let direction = if report.is_downgrade() {
        "moving back to"
    } else {
        "moving to"
    };
    Some(format!(
        "{} {why}: {direction} {}",
        current.version, target.version
    ))
}

/// The one-line answer of `check` for people, naming the releases skipped as bad and
/// what a pin holds back.
fn check_sentence(report: &CheckReport) -> String {
    let sentence = format!("{}{}", decision_sentence(report), pin_note(report));
    if report.skipped().is_empty() {
        return sentence;
    }
    let skipped: Vec<String> = report
        .skipped()
        .iter()
        .map(|bad| format!("{} ({})", bad.version, bad.detail))
        .collect();
    format!(
        "{sentence}; skipping releases marked bad here: {}; `wavecast-update unmark VERSION` clears a mark",
        skipped.join(", ")
    )
}

/// What the decision says, for people.
fn decision_sentence(report: &CheckReport) -> String {
    let rollout = report.rollout();
    let rule = rule_suffix(report);
    match report.outcome() {
        Outcome::Update => {
            let target = report
                .target()
                .map_or_else(String::new, |target| target.version.to_string());
            if let Some(sentence) = withdrawal_sentence(report) {
                return format!("{sentence}{rule}");
            }
            let from = report.current().map_or_else(
                || "nothing installed".to_owned(),
                |current| current.version.to_string(),
            );
            if report.mandatory() {
                return format!("mandatory update available: {from} -> {target}{rule}");
            }
            match rollout {
                Some(rollout) if rollout.bucket < rollout.threshold.get() => format!(
                    "update available: {from} -> {target} (bucket {} < threshold {}){rule}",
                    rollout.bucket, rollout.threshold
                ),
                Some(_) if report.mode() == Mode::Manual => format!(
                    "update available: {from} -> {target} (asked with --now: the rollout share is skipped){rule}"
                ),
                _ => format!("update available: {from} -> {target}{rule}"),
            }
        }
        Outcome::Deferred => deferred_sentence(report),
        Outcome::UpToDate => {
            let Some(current) = report.current() else {
                return format!(
                    "up to date: channel `{}` has no release for platform `{}`",
                    report.channel(),
                    report.platform()
                );
            };
            if let Some(withdrawn) = report.withdrawn() {
                return format!(
                    "up to date: {} was {}, but no other release admits this client yet",
                    current.version,
                    withdrawn.as_str()
                );
            }
            match report.newest() {
                Some(newest) if newest < &current.version => format!(
                    "up to date: {} (channel `{}` offers {newest} at most; wavecast never moves down)",
                    current.version,
                    report.channel()
                ),
                _ => format!("up to date: {}", current.version),
            }
        }
    }
}

/// Why a deferred client waits: what keeps out each newer release (the three newest
/// at most), so the real blocker is named, not only the newest release's.
fn deferred_sentence(report: &CheckReport) -> String {
    const SHOWN: usize = 3;
    let held = report.held_back();
    let mut reasons: Vec<String> = held.iter().take(SHOWN).map(ToString::to_string).collect();
    if held.len() > SHOWN {
        reasons.push(format!("and {} older ones", held.len() - SHOWN));
    }
    if reasons.is_empty() {
        return "deferred: no newer release is offered to this client yet".to_owned();
    }
    format!("deferred: {}", reasons.join("; "))
}

/// `; pinned to 1.4, so 1.5.0 is not taken (`config --unpin` follows the channel)`
/// when the pin holds a newer release back; nothing otherwise.
fn pin_note(report: &CheckReport) -> String {
    match (report.pin(), report.pinned_out()) {
        (Some(pin), Some(out)) => format!(
            "; pinned to {pin}, so {out} is not taken (`wavecast-update config --unpin` follows the whole channel)"
        ),
        _ => String::new(),
    }
}

/// Shows one progress bar for all the bytes an install downloads on stderr (or
/// nothing when hidden), and a warning for every fallback.
struct ProgressReporter {
    enabled: bool,
    bar: RefCell<Option<ProgressBar>>,
    /// Bytes the plans of the modules seen so far expect.
    planned: Cell<u64>,
    /// Bytes of the downloads that ended (finished or failed).
    done: Cell<u64>,
    /// Bytes of the current download so far.
    current: Cell<u64>,
}

impl ProgressReporter {
    fn new(enabled: bool) -> Self {
        Self {
            enabled,
            bar: RefCell::new(None),
            planned: Cell::new(0),
            done: Cell::new(0),
            current: Cell::new(0),
        }
    }

    fn position(&self) -> u64 {
        self.done.get() + self.current.get()
    }

    /// Ends the current download, counting its bytes as done.
    fn end_download(&self) {
        self.done.set(self.position());
        self.current.set(0);
    }

    fn update_bar(&self) {
        if let Some(bar) = self.bar.borrow().as_ref() {
            bar.set_length(self.planned.get().max(self.position()));
            bar.set_position(self.position());
        }
    }
}

impl Reporter for ProgressReporter {
    fn on_module_plan(&self, plan: &ModuleUpdate) {
        self.planned.set(self.planned.get() + plan.download_bytes);
        self.update_bar();
    }

    fn on_download_start(&self, module: &ModuleName, _url: &str, size: u64) {
        self.end_download();
        if !self.enabled {
            return;
        }
        if self.bar.borrow().is_none() {
            let length = self.planned.get().max(self.position() + size);
            let bar = ProgressBar::with_draw_target(Some(length), ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template(
                "{msg:>12} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.enable_steady_tick(Duration::from_millis(200));
            *self.bar.borrow_mut() = Some(bar);
        }
        if let Some(bar) = self.bar.borrow().as_ref() {
            bar.set_message(module.to_string());
        }
        self.update_bar();
    }

    fn on_download_progress(&self, _module: &ModuleName, downloaded: u64) {
        self.current.set(downloaded);
        self.update_bar();
    }

    fn on_download_finish(&self, _module: &ModuleName) {
        self.end_download();
        self.update_bar();
    }

    fn on_fallback(&self, module: &ModuleName, fallback: &Fallback, reason: &InstallError) {
        let what = match fallback {
            Fallback::FileCopy(path) => {
                format!("{module}: `{path}`: downloading the file's copy instead")
            }
            _ => format!("{module}: downloading the module's package instead"),
        };
        let mut causes = reason.to_string();
        let mut source = std::error::Error::source(reason);
        while let Some(cause) = source {
            causes.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        let line = format!("warning: {what}: {causes}");
        match self.bar.borrow().as_ref() {
            Some(bar) => bar.suspend(|| stderr_line(&line)),
            None => stderr_line(&line),
        }
    }

    fn on_switch(&self, _version: &Version, _dir: &str) {
        if let Some(bar) = self.bar.borrow_mut().take() {
            bar.finish_and_clear();
        }
    }

    fn on_health_check(&self, version: &Version, command: &str, timeout: Duration) {
        stderr_line(&format!(
            "running the health check of {version}: `{command}` (timeout {})",
            format_duration(timeout)
        ));
    }
}

impl Drop for ProgressReporter {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.borrow_mut().take() {
            bar.abandon();
        }
    }
}
