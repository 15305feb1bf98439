//! `wavecast-update`: the command-line client. Parses arguments, calls
//! [`wavecast_client`], prints results, and maps every outcome to an exit code in one
//! place ([`main`]).

use std::cell::{Cell, RefCell};
use std::io::{self, BufRead, IsTerminal, Write};
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
use wavecast_client::limits::{DownloadLimits, format_duration, format_speed, parse_speed};
use wavecast_client::schedule::{PollSchedule, parse_duration, parse_jitter};
use wavecast_client::{
    Attributes, BUILD_PLATFORM, BaseUrl, CheckOptions, CheckReport, Config, ConfigChange,
    Exclusion, Fallback, FileAction, InitOptions, InstallOutcome, InstallReport, Mode,
    ModuleUpdate, Outcome, PinnedTrust, Recovery, RecoveryOutcome, Reporter, TrustedKey,
    UpdatePlan, Updater, Withdrawal,
};
use wavecast_schema::{ChannelName, ModuleName, Platform};

/// Version of the `--json` documents; bumped only for incompatible changes.
const JSON_SCHEMA_VERSION: u32 = 1;

/// The environment variable that replaces the clock, for tests.
const NOW_VARIABLE: &str = "WAVECAST_NOW";

const AFTER_HELP: &str = "\
Exit codes:
  0   success, including \"up to date\" and \"deferred\"
  1   operational failure: network, verification, install; `update` with no
      terminal to ask and no --yes (mandatory updates never ask)
  2   usage or configuration error
  10  only with `check --exit-code`: an update is available

Environment:
  WAVECAST_ROOT         default for --root
  WAVECAST_NOW          an RFC 3339 time (e.g. 2026-11-21T12:00:00Z) used instead
                        of the system clock, for tests
  WAVECAST_NO_PROGRESS  set to hide progress bars";

/// Keeps an install root up to date from a wavecast site: verifies the publisher's
/// signature, follows staged rollouts, and switches releases atomically.
#[derive(Debug, Parser)]
#[command(name = "wavecast-update", version, after_help = AFTER_HELP)]
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
    /// Show the configuration, or change the channel, attributes and limits.
    #[command(after_help = AFTER_HELP)]
    Config(ConfigArgs),
    /// Check for an update without installing anything.
    #[command(after_help = AFTER_HELP)]
    Check(CheckArgs),
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
    /// Print the resulting configuration as one JSON object on stdout.
    #[arg(long)]
    json: bool,
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
}

impl CliError {
    fn is_usage(&self) -> bool {
        matches!(self, Self::InvalidNow { .. })
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
        Command::Update(args) => update(args),
        Command::Status(args) => status(args),
        Command::Poll(args) => poll(args),
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
    };
    let report = Updater::init(&args.root.root, options)?;
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
    stderr_line(&format!(
        "{verb} {}: channel {}, platform {}, install id {}{kept}{attributes}",
        args.root.root.display(),
        args.channel,
        args.platform,
        report.install_id,
    ));
    Ok(ExitStatus::Success)
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
    } else if change != ConfigChange::default() {
        stderr_line("nothing changed");
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
    ]
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
    let report = updater.check_with(now()?, &args.decision.options())?;
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
    let updater = args.wait.open(&args.root)?.with_packages_only(args.full);
    let report = updater.check_with(now()?, &args.decision.options())?;
    if args.dry_run {
        return dry_run(&updater, &report, args.json);
    }
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
    let progress = !args.json
        && !args.quiet
        && io::stderr().is_terminal()
        && std::env::var_os("WAVECAST_NO_PROGRESS").is_none();
    let reporter = ProgressReporter::new(progress);
    let installed = updater.install(&report, now()?, &reporter)?;
    drop(reporter);
    if args.json {
        stdout_json(&update_json(&report, Some(&installed)))?;
    } else {
        let line = match (installed.outcome, &installed.previous) {
            (InstallOutcome::AlreadyCurrent, _) => {
                format!("already installed: {}", installed.version)
            }
            (InstallOutcome::Reused, Some(previous)) => format!(
                "switched back to {} (was {previous}): releases/{} was intact, nothing to download",
                installed.version, installed.dir
            ),
            (_, Some(previous)) => format!(
                "installed {} (was {previous}) in releases/{}{}",
                installed.version,
                installed.dir,
                transfer_summary(&report, &installed)
            ),
            (_, None) => format!(
                "installed {} in releases/{}{}",
                installed.version,
                installed.dir,
                transfer_summary(&report, &installed)
            ),
        };
        stderr_line(&line);
    }
    Ok(ExitStatus::Success)
}

/// `: downloaded 1.2 MiB (planned 1.1 MiB; whole packages: 9.9 MiB); freed 3.4 MiB
/// of cache; manifest from https://a/; blobs from https://cdn/`.
fn transfer_summary(report: &CheckReport, installed: &InstallReport) -> String {
    let mut text = format!(
        ": downloaded {} (planned {}; whole packages: {})",
        human_bytes(installed.downloaded_bytes),
        human_bytes(installed.planned_bytes + installed.index_bytes),
        human_bytes(installed.package_bytes),
    );
    if installed.fallbacks > 0 {
        text.push_str(&format!("; {} fallback(s)", installed.fallbacks));
    }
    if installed.pruned_bytes > 0 {
        text.push_str(&format!(
            "; freed {} of cache",
            human_bytes(installed.pruned_bytes)
        ));
    }
    text.push_str(&format!("; manifest from {}", report.served_by()));
    if !installed.download_hosts_used.is_empty() {
        let hosts: Vec<&str> = installed
            .download_hosts_used
            .iter()
            .map(BaseUrl::as_str)
            .collect();
        text.push_str(&format!("; blobs from {}", hosts.join(", ")));
    }
    text
}

/// `1023 B`, `1.5 KiB`, `12.0 MiB`.
fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    #[expect(clippy::cast_precision_loss, reason = "one decimal is shown")]
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
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
    /// `cheaper`, `index_unavailable`, `no_file_copies` or `requested` when
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
            let why = match module.package_reason.map(|reason| reason.as_str()) {
                Some("cheaper") => "cheaper than its files",
                Some("index_unavailable") => "its file index is unavailable",
                Some("no_file_copies") => "the site has no per-file copies",
                Some("requested") => "--full",
                _ => "",
            };
            lines.push(format!(
                "{name}: whole package, {} ({why})",
                human_bytes(module.package_bytes)
            ));
        } else {
            lines.push(format!(
                "{name}: {} files, download {} (package {})",
                module.files.len(),
                human_bytes(module.download_bytes),
                human_bytes(module.package_bytes)
            ));
            for file in &module.files {
                let detail = match &file.action {
                    FileAction::Keep => String::new(),
                    FileAction::Patch(patch) => format!(
                        " ({}, {})",
                        patch.algorithm.as_str(),
                        human_bytes(patch.size)
                    ),
                    _ => format!(" ({})", human_bytes(file.download_bytes())),
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
        human_bytes(plan.download_bytes),
        human_bytes(plan.package_bytes),
        human_bytes(plan.index_bytes)
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
                    installed: installed.map(|installed| installed.version.to_string()),
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
                    format!("installed {}{}", installed.version, rule_suffix(report))
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
    let report = updater.check_with(now()?, options)?;
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
        |current| format!("{} (releases/{})", current.version, current.dir),
    );
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
    let mut lines = vec![
        format!("current: {current}"),
        format!("installed: {installed}"),
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
    ];
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
}

fn update_json<'a>(
    report: &'a CheckReport,
    installed: Option<&'a InstallReport>,
) -> UpdateJson<'a> {
    UpdateJson {
        check: check_json(report),
        installed: installed.map(|installed| installed.version.to_string()),
        release_dir: installed.map(|installed| format!("releases/{}", installed.dir)),
        download_bytes: installed.map(|installed| installed.planned_bytes),
        downloaded_bytes: installed.map(|installed| installed.downloaded_bytes),
        index_bytes: installed.map(|installed| installed.index_bytes),
        package_bytes: installed.map(|installed| installed.package_bytes),
        fallbacks: installed.map(|installed| installed.fallbacks),
        pruned_bytes: installed.map(|installed| installed.pruned_bytes),
        download_hosts_used: installed.map(|installed| {
            installed
                .download_hosts_used
                .iter()
                .map(BaseUrl::as_str)
                .collect()
        }),
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

/// The one-line answer of `check` for people.
fn check_sentence(report: &CheckReport) -> String {
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

/// Why a deferred client waits, and until when if that is known.
fn deferred_sentence(report: &CheckReport) -> String {
    let version = report
        .rollout_version()
        .or(report.newest())
        .map_or_else(String::new, ToString::to_string);
    let rule = rule_suffix(report);
    let Some(rollout) = report.rollout() else {
        return format!("deferred: {version} is not offered to this client yet");
    };
    match rollout.exclusion {
        Some(Exclusion::Paused) => format!(
            "deferred: the rollout of {version} is paused; no new client gets it until it resumes{rule}"
        ),
        Some(Exclusion::Yanked) => format!("deferred: {version} was yanked{rule}"),
        Some(Exclusion::Rule) => match report.rule() {
            Some(rule) => format!(
                "deferred: {version} is not offered to this client: excluded by rule `{}`",
                rule.name
            ),
            None => format!("deferred: {version} is not offered to this client"),
        },
        Some(Exclusion::Capped) => format!(
            "deferred: {version} is capped at {}; this client's bucket {} is above the cap{rule}",
            rollout.threshold, rollout.bucket
        ),
        None => match report.eligible_at() {
            Some(eligible_at) => format!(
                "deferred: {version} is ramping (threshold {} now); this client's bucket {} enters at {eligible_at}{rule}",
                rollout.threshold, rollout.bucket
            ),
            None => format!(
                "deferred: {version} is rolling out to {}; this client's bucket {} is outside it{rule}",
                rollout.threshold, rollout.bucket
            ),
        },
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

    fn on_fallback(
        &self,
        module: &ModuleName,
        fallback: &Fallback,
        reason: &wavecast_client::Error,
    ) {
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
}

impl Drop for ProgressReporter {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.borrow_mut().take() {
            bar.abandon();
        }
    }
}
