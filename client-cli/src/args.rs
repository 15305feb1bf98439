//! The flags several subcommands share, and what they stand for: the install root
//! (and opening it, waiting for its lock and finishing an interrupted install),
//! attributes, download limits, the on-activate hook, what a check decides with;
//! the parsers of their values; and what the environment says beside them: the
//! clock, and whether this runs inside a health check.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use jiff::Timestamp;
use wavecast_client::limits::DownloadLimits;
use wavecast_client::units::{parse_duration, parse_speed};
use wavecast_client::{
    Attributes, CheckOptions, HEALTH_CHECK_VARIABLE, Mode, Recovery, RecoveryOutcome, Updater,
};

use crate::output::{CliError, NOW_VARIABLE, stderr_line};

/// `--root`: every subcommand works on one install root.
#[derive(Debug, Args)]
pub(crate) struct RootArg {
    /// The install root: `current`, `releases/` and `.wavecast/` live here.
    #[arg(
        long,
        value_name = "ROOT",
        env = "WAVECAST_ROOT",
        hide_env_values = true
    )]
    pub(crate) root: PathBuf,
}

/// `--attr KEY=VALUE`, repeatable.
#[derive(Debug, Args)]
pub(crate) struct AttrArgs {
    /// Declare an attribute for rollout rules (region, tenant, server id…), e.g.
    /// `--attr region=eu`. Repeatable. Attributes only feed this machine's decision;
    /// they are never sent anywhere.
    #[arg(long = "attr", value_name = "KEY=VALUE", value_parser = attribute_argument)]
    attributes: Vec<(String, String)>,
}

impl AttrArgs {
    /// The attributes given, as the library takes them.
    pub(crate) fn to_map(&self) -> Attributes {
        self.attributes.iter().cloned().collect()
    }
}

/// Parses `--attr KEY=VALUE`.
pub(crate) fn attribute_argument(text: &str) -> Result<(String, String), String> {
    wavecast_client::parse_attribute(text).map_err(|error| error.to_string())
}

/// How slowly hosts may send files, and how long an expired manifest is still
/// accepted: set by `init` (to the defaults when left out) and changed by `config`.
#[derive(Debug, Args)]
pub(crate) struct LimitArgs {
    /// Give up on a host whose download's average speed, counted from the request,
    /// is below this once the grace has passed (default 4KiB/s; 0 for no minimum),
    /// and try the next host.
    #[arg(long, value_name = "SPEED", value_parser = parse_speed)]
    pub(crate) min_speed: Option<u64>,
    /// How long a download runs before its average speed is judged, so small files
    /// and slow starts are not punished (default 10s).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub(crate) min_speed_grace: Option<Duration>,
    /// Give up on a host whose download (the manifest, or one blob) takes longer than
    /// this, however fast it goes, and try the next host (default 1h).
    #[arg(long, value_name = "DURATION", value_parser = deadline_argument)]
    pub(crate) download_deadline: Option<Duration>,
    /// Still accept a manifest this long after it expired, for a clock that runs
    /// ahead (default 0s). Each minute of grace is a minute more during which a host
    /// can freeze this client on an old manifest.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub(crate) expiry_grace: Option<Duration>,
}

impl LimitArgs {
    /// The download limits given, with the defaults for the rest.
    pub(crate) fn download_limits(&self) -> DownloadLimits {
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

/// The on-activate hook of image modules, on `config` and `update`.
#[derive(Debug, Args)]
pub(crate) struct ActivationArgs {
    /// Run this shell command (`sh -c`, in ROOT) after an image module is written to
    /// the inactive slot and verified; only when it succeeds does that slot become
    /// the active one. On failure or timeout the other slot stays active and the
    /// release is marked bad. It gets WAVECAST_SLOT (a or b), WAVECAST_SLOT_PATH,
    /// WAVECAST_VERSION, WAVECAST_MODULE, WAVECAST_PREVIOUS_SLOT,
    /// WAVECAST_PREVIOUS_SLOT_PATH, WAVECAST_PREVIOUS_VERSION (empty when no slot was
    /// active) and WAVECAST_ROOT. It also runs for the older slot when a rollback
    /// switches back to it, so it must be idempotent.
    #[arg(long, value_name = "COMMAND")]
    pub(crate) on_activate: Option<String>,
    /// How long the on-activate hook may run before its processes are killed and it
    /// counts as failed (default 1m).
    #[arg(long, value_name = "DURATION", value_parser = health_timeout_argument)]
    pub(crate) activate_timeout: Option<Duration>,
}

/// A timeout (of a health check or an on-activate hook): a duration longer than zero.
pub(crate) fn health_timeout_argument(text: &str) -> Result<Duration, String> {
    match parse_duration(text)? {
        Duration::ZERO => Err("a timeout must be longer than 0s".to_owned()),
        timeout => Ok(timeout),
    }
}

/// What `check` and `update` decide with.
#[derive(Debug, Args)]
pub(crate) struct DecisionArgs {
    #[command(flatten)]
    attributes: AttrArgs,
    /// Ask for the newest release this client may take now, skipping the rollout's
    /// share and ramp. A pause, a yank, an excluding rule or a cap still apply.
    #[arg(long)]
    pub(crate) now: bool,
}

impl DecisionArgs {
    /// The options of a check with these flags.
    pub(crate) fn options(&self) -> CheckOptions {
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
pub(crate) struct WaitArg {
    /// When another wavecast-update is working on the root, wait up to this long for
    /// it to finish (e.g. 60s, 5m) instead of failing at once. A run that died never
    /// blocks: its lock went with it.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    wait: Option<Duration>,
}

impl WaitArg {
    /// Opens the root with this wait, then finishes or undoes an install a killed run
    /// left and says so on stderr.
    pub(crate) fn open(&self, root: &RootArg) -> anyhow::Result<Updater> {
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

/// The client's clock: `WAVECAST_NOW` when set, else the system clock.
pub(crate) fn now() -> anyhow::Result<Timestamp> {
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

/// Whether this process runs inside a health check, where `confirm` and `launched`
/// do nothing (the root is locked by the install that runs the check).
pub(crate) fn in_health_check() -> bool {
    std::env::var_os(HEALTH_CHECK_VARIABLE).is_some()
}
