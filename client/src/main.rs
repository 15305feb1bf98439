//! `wavecast-update`: the command-line client. Parses arguments, calls
//! [`wavecast_client`], prints results, and maps every outcome to an exit code in one
//! place ([`main`]).

use std::cell::RefCell;
use std::io::{self, BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use jiff::Timestamp;
use semver::Version;
use serde::Serialize;
use wavecast_client::{
    BUILD_PLATFORM, BaseUrl, CheckReport, InitOptions, InstallOutcome, InstallReport,
    InstalledRelease, Outcome, Reporter, TrustedKey, Updater,
};
use wavecast_schema::{ChannelName, ModuleName, Platform};

/// Version of the `--json` documents; bumped only for incompatible changes.
const JSON_SCHEMA_VERSION: u32 = 1;

/// The environment variable that replaces the clock, for tests.
const NOW_VARIABLE: &str = "WAVECAST_NOW";

const AFTER_HELP: &str = "\
Exit codes:
  0   success, including \"up to date\" and \"deferred\"
  1   operational failure: network, verification, install
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
    /// Check for an update without installing anything.
    #[command(after_help = AFTER_HELP)]
    Check(CheckArgs),
    /// Check for an update and install it.
    #[command(after_help = AFTER_HELP)]
    Update(UpdateArgs),
    /// Show what is installed and configured (no network).
    #[command(after_help = AFTER_HELP)]
    Status(StatusArgs),
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

#[derive(Debug, Args)]
struct InitArgs {
    #[command(flatten)]
    root: RootArg,
    /// Base URL of the site: http://, https://, file://, or a local folder. Repeat to
    /// add mirrors, tried in order.
    #[arg(long = "url", value_name = "URL", required = true)]
    urls: Vec<String>,
    /// The publisher's minisign public key: a `.pub` file or its base64 line.
    #[arg(long, value_name = "FILE_OR_BASE64")]
    pubkey: String,
    /// The channel to follow.
    #[arg(long, default_value = "stable")]
    channel: ChannelName,
    /// The platform whose builds to install (a Rust target triple, or `any`).
    #[arg(long, value_name = "TRIPLE", default_value = BUILD_PLATFORM)]
    platform: Platform,
    /// Rewrite the configuration of an initialized root; the install id and state are
    /// kept.
    #[arg(long)]
    force: bool,
}

#[derive(Debug, Args)]
struct CheckArgs {
    #[command(flatten)]
    root: RootArg,
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
    /// Install without asking. Required when there is no terminal to ask on.
    #[arg(long, short = 'y')]
    yes: bool,
    /// Print one JSON object on stdout (and no progress bars).
    #[arg(long)]
    json: bool,
    /// Hide progress bars.
    #[arg(long, short = 'q')]
    quiet: bool,
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
        Command::Check(args) => check(args),
        Command::Update(args) => update(args),
        Command::Status(args) => status(args),
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
    let pubkey = TrustedKey::from_argument(&args.pubkey)?;
    let options = InitOptions {
        urls,
        pubkey,
        channel: args.channel.clone(),
        platform: args.platform.clone(),
        force: args.force,
    };
    let report = Updater::init(&args.root.root, options)?;
    let verb = if report.reconfigured {
        "reconfigured"
    } else {
        "initialized"
    };
    let kept = if report.kept_state { " (kept)" } else { "" };
    stderr_line(&format!(
        "{verb} {}: channel {}, platform {}, install id {}{kept}",
        args.root.root.display(),
        args.channel,
        args.platform,
        report.install_id,
    ));
    Ok(ExitStatus::Success)
}

fn check(args: CheckArgs) -> anyhow::Result<ExitStatus> {
    let updater = Updater::open(&args.root.root)?;
    let report = updater.check(now()?)?;
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
    let updater = Updater::open(&args.root.root)?;
    let report = updater.check(now()?)?;
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
    if !args.yes {
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
    if args.json {
        stdout_json(&update_json(&report, Some(&installed)))?;
    } else {
        let line = match (installed.outcome, &installed.previous) {
            (InstallOutcome::AlreadyCurrent, _) => {
                format!("already installed: {}", installed.version)
            }
            (_, Some(previous)) => format!(
                "installed {} (was {previous}) in releases/{}",
                installed.version, installed.dir
            ),
            (_, None) => format!(
                "installed {} in releases/{}",
                installed.version, installed.dir
            ),
        };
        stderr_line(&line);
    }
    Ok(ExitStatus::Success)
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
    writeln!(stderr, "{} is available ({current})", target.version)?;
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
            installed: &status.installed,
            channel: status.channel.as_str(),
            platform: status.platform.as_str(),
            urls: status.urls.iter().map(BaseUrl::as_str).collect(),
            install_id: status.install_id.as_str(),
            highest_serial: status.highest_serial,
            last_check: status.last_check,
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
    let lines = [
        format!("current: {current}"),
        format!("installed: {installed}"),
        format!("channel: {}", status.channel),
        format!("platform: {}", status.platform),
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
    stdout_line(&lines.join("\n"))?;
    Ok(ExitStatus::Success)
}

/// The `check --json` document.
#[derive(Debug, Serialize)]
struct CheckJson<'a> {
    schema_version: u32,
    decision: &'static str,
    current: Option<String>,
    target: Option<String>,
    newest: Option<String>,
    bucket: Option<u16>,
    threshold: Option<u16>,
    threshold_percent: Option<f64>,
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
        bucket: rollout.map(|rollout| rollout.bucket),
        threshold: rollout.map(|rollout| rollout.threshold.get()),
        threshold_percent: rollout.map(|rollout| rollout.threshold.percent()),
        channel: report.channel().as_str(),
        serial: report.serial(),
        served_by: report.served_by().as_str(),
        notes: report
            .target()
            .map(|target| target.notes.as_str())
            .filter(|notes| !notes.is_empty()),
    }
}

/// The `update --json` document: the check's fields plus what was installed.
#[derive(Debug, Serialize)]
struct UpdateJson<'a> {
    #[serde(flatten)]
    check: CheckJson<'a>,
    /// The version installed by this run, if any.
    installed: Option<String>,
    /// Where it was installed, relative to the root.
    release_dir: Option<String>,
}

fn update_json<'a>(report: &'a CheckReport, installed: Option<&InstallReport>) -> UpdateJson<'a> {
    UpdateJson {
        check: check_json(report),
        installed: installed.map(|installed| installed.version.to_string()),
        release_dir: installed.map(|installed| format!("releases/{}", installed.dir)),
    }
}

/// The `status --json` document.
#[derive(Debug, Serialize)]
struct StatusJson<'a> {
    schema_version: u32,
    current: Option<String>,
    current_dir: Option<&'a str>,
    installed: &'a [InstalledRelease],
    channel: &'a str,
    platform: &'a str,
    urls: Vec<&'a str>,
    install_id: &'a str,
    highest_serial: Option<u64>,
    last_check: Option<Timestamp>,
}

/// The one-line answer of `check` for people.
fn check_sentence(report: &CheckReport) -> String {
    let rollout = report.rollout();
    match report.outcome() {
        Outcome::Update => {
            let target = report
                .target()
                .map_or_else(String::new, |target| target.version.to_string());
            let from = report.current().map_or_else(
                || "nothing installed".to_owned(),
                |current| current.version.to_string(),
            );
            match rollout {
                Some(rollout) => format!(
                    "update available: {from} -> {target} (bucket {} < threshold {})",
                    rollout.bucket, rollout.threshold
                ),
                None => format!("update available: {from} -> {target}"),
            }
        }
        Outcome::Deferred => {
            let version = report
                .rollout_version()
                .or(report.newest())
                .map_or_else(String::new, ToString::to_string);
            match rollout {
                Some(rollout) => format!(
                    "deferred: {version} is rolling out to {}; this client's bucket {} is outside it",
                    rollout.threshold, rollout.bucket
                ),
                None => format!("deferred: {version} is not offered to this client yet"),
            }
        }
        Outcome::UpToDate => match report.current() {
            Some(current) => format!("up to date: {}", current.version),
            None => format!(
                "up to date: channel `{}` has no release for platform `{}`",
                report.channel(),
                report.platform()
            ),
        },
    }
}

/// Shows one progress bar per downloaded package on stderr, or nothing when hidden.
struct ProgressReporter {
    enabled: bool,
    bar: RefCell<Option<ProgressBar>>,
}

impl ProgressReporter {
    fn new(enabled: bool) -> Self {
        Self {
            enabled,
            bar: RefCell::new(None),
        }
    }
}

impl Reporter for ProgressReporter {
    fn on_download_start(&self, module: &ModuleName, _url: &str, size: u64) {
        if !self.enabled {
            return;
        }
        let bar = ProgressBar::with_draw_target(Some(size), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(
            "{msg:>12} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(module.to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        *self.bar.borrow_mut() = Some(bar);
    }

    fn on_download_progress(&self, _module: &ModuleName, downloaded: u64) {
        if let Some(bar) = self.bar.borrow().as_ref() {
            bar.set_position(downloaded);
        }
    }

    fn on_download_finish(&self, _module: &ModuleName) {
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
