//! `wavecast-update poll`: check on an interval, installing what the policy allows,
//! until the checks run out or a signal asks it to stop.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use serde::Serialize;
use wavecast_client::schedule::{PollSchedule, parse_interval, parse_jitter};
use wavecast_client::{CheckOptions, CheckReport, InstallReport, Outcome, Updater};

use crate::args::{DecisionArgs, RootArg, now};
use crate::json::{CheckJson, JSON_SCHEMA_VERSION, check_json};
use crate::output::{ExitStatus, stdout_line};
use crate::progress::{ProgressReporter, Shown};
use crate::self_update::check_or_update_self;
use crate::sentences::{check_sentence, rule_suffix};

/// The flags of `poll`.
#[derive(Debug, Args)]
pub(crate) struct PollArgs {
    #[command(flatten)]
    root: RootArg,
    #[command(flatten)]
    decision: DecisionArgs,
    /// The wait between checks, e.g. 6h, 30m, 45s (at least 1s).
    #[arg(long, value_name = "DURATION", default_value = "6h", value_parser = parse_interval)]
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

/// `wavecast-update poll`.
pub(crate) fn run(args: &PollArgs) -> anyhow::Result<ExitStatus> {
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
        let outcome = poll_once(
            &updater,
            &options,
            args.install,
            Shown::for_command(args.json),
        );
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
    progress: Shown,
) -> anyhow::Result<(CheckReport, Option<InstallReport>)> {
    let report = check_or_update_self(updater, now()?, options, progress)?;
    let wanted = report.outcome() == Outcome::Update
        && report.target().is_some()
        && (install || report.mandatory());
    if !wanted {
        return Ok((report, None));
    }
    let installed = updater.install(&report, now()?, &ProgressReporter::new(progress))?;
    Ok((report, Some(installed)))
}

/// The `poll --json` line of one check.
#[derive(Serialize)]
struct PollLine<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    data: PollJson<'a>,
}

/// What one check did, in a `poll --json` line.
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

/// Set by SIGINT or SIGTERM during `poll`: stop before the next check.
static STOP: AtomicBool = AtomicBool::new(false);

/// The handler of SIGINT and SIGTERM during `poll`.
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
