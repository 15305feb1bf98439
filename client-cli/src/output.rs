//! Everything the CLI writes, and how a run ends: data on stdout, messages on
//! stderr, the exit codes ([`ExitStatus`]), the errors of the CLI itself beyond the
//! library's ([`CliError`], [`SelfUpdateError`]), and the one error renderer, which
//! picks the exit code. The errors live here, below every subcommand, so that the
//! renderer can recognise them without importing a subcommand.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use semver::Version;
use serde::Serialize;
use wavecast_client::{InstallError, LifecycleError, NetError, StoreError, unmark_command};

/// The environment variable that replaces the clock, for tests ([`crate::args::now`]
/// reads it; [`CliError::InvalidNow`] names it).
pub(crate) const NOW_VARIABLE: &str = "WAVECAST_NOW";

/// Every exit code this program uses. Never renumber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExitStatus {
    /// 0: the command did what was asked, including "up to date" and "deferred".
    Success,
    /// 1: network, verification or install failure.
    Failure,
    /// 2: usage or configuration error (clap uses 2 as well).
    Usage,
    /// 10: `check --exit-code` found an update.
    UpdateAvailable,
}

impl ExitStatus {
    /// The process's exit code.
    fn code(self) -> u8 {
        match self {
            Self::Success => 0,
            Self::Failure => 1,
            Self::Usage => 2,
            Self::UpdateAvailable => 10,
        }
    }
}

impl From<ExitStatus> for ExitCode {
    fn from(status: ExitStatus) -> Self {
        ExitCode::from(status.code())
    }
}

/// Errors of the command line itself.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
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
    /// Whether the error is the caller's (exit code 2).
    fn is_usage(&self) -> bool {
        matches!(self, Self::InvalidNow { .. })
    }

    /// A suggestion to print after the error, if there is one.
    fn hint(&self) -> Option<String> {
        match self {
            Self::RolledBackUnconfirmed { to, .. } => Some(format!(
                "start `current` as usual: it is {to} now; the application must run `wavecast-update confirm` once it works"
            )),
            _ => None,
        }
    }
}

/// `` (`wavecast-update unmark 1.1.0` clears the mark)``, after saying that a release
/// is marked bad.
pub(crate) fn unmark_note(version: &Version) -> String {
    format!(" (`{}` clears the mark)", unmark_command(version))
}

/// Errors of the client updating itself, beyond the library's (raised by
/// [`crate::self_update`]).
#[derive(Debug, thiserror::Error)]
pub(crate) enum SelfUpdateError {
    /// The restarted client is still below the floor.
    #[error(
        "wavecast-update updated itself from {from} and restarted, but `{}` still reports {running}, below the {required} this channel needs; not updating again",
        executable.display()
    )]
    StillTooOld {
        from: String,
        running: Version,
        required: Version,
        executable: PathBuf,
    },
    /// Executing the new client failed after it replaced the old one.
    #[error(
        "wavecast-update {to} replaced `{}`, but restarting it failed",
        executable.display()
    )]
    Restart {
        to: Version,
        executable: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl SelfUpdateError {
    /// A suggestion to print after the error.
    fn hint(&self) -> String {
        match self {
            Self::StillTooOld { executable, .. } => format!(
                "`{}` may not be the wavecast-update that runs (a wrapper, or another copy earlier on PATH); update it by hand",
                executable.display()
            ),
            Self::Restart { .. } => {
                "run the command again: the new wavecast-update is in place".into()
            }
        }
    }
}

/// The one error renderer: `error: …`, one `  caused by: …` per source, then any
/// hint. Chooses the exit code. Under `--json` the same goes to stdout as a JSON
/// object too, unless the command wrote its document already. A broken pipe on
/// stdout exits 0 silently.
pub(crate) fn render_error(error: &anyhow::Error) -> ExitStatus {
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
        if let Some((configuration, advice)) = library_advice(cause) {
            usage |= configuration;
            hint = hint.or(advice);
        }
        if let Some(error) = cause.downcast_ref::<CliError>() {
            usage |= error.is_usage();
            hint = hint.or_else(|| error.hint());
        }
        if let Some(error) = cause.downcast_ref::<SelfUpdateError>() {
            hint = hint.or_else(|| Some(error.hint()));
        }
    }
    let mut stderr = io::stderr().lock();
    let _ = writeln!(stderr, "error: {error}");
    for cause in error.chain().skip(1) {
        let _ = writeln!(stderr, "  caused by: {cause}");
    }
    if let Some(hint) = &hint {
        let _ = writeln!(stderr, "hint: {hint}");
    }
    let status = if usage {
        ExitStatus::Usage
    } else {
        ExitStatus::Failure
    };
    if std::env::args_os().any(|argument| argument == "--json")
        && !JSON_WRITTEN.load(Ordering::Relaxed)
    {
        let _ = stdout_json(&ErrorJson {
            schema_version: crate::json::JSON_SCHEMA_VERSION,
            error: ErrorFields {
                message: error.to_string(),
                causes: error.chain().skip(1).map(ToString::to_string).collect(),
                hint: hint.as_deref(),
                exit_code: status.code(),
            },
        });
    }
    status
}

/// Whether `cause`, when it is one of the library's errors (the facade's, or one a
/// layer's function returned directly, such as [`BaseUrl::from_argument`]'s), comes
/// from how the client was set up or invoked, and its hint.
///
/// [`BaseUrl::from_argument`]: wavecast_client::BaseUrl::from_argument
fn library_advice(cause: &(dyn std::error::Error + 'static)) -> Option<(bool, Option<String>)> {
    if let Some(error) = cause.downcast_ref::<wavecast_client::Error>() {
        return Some((error.is_configuration(), error.hint()));
    }
    if let Some(error) = cause.downcast_ref::<NetError>() {
        return Some((error.is_configuration(), error.hint()));
    }
    if let Some(error) = cause.downcast_ref::<StoreError>() {
        return Some((error.is_configuration(), error.hint()));
    }
    if let Some(error) = cause.downcast_ref::<InstallError>() {
        return Some((error.is_configuration(), error.hint()));
    }
    let error = cause.downcast_ref::<LifecycleError>()?;
    Some((error.is_configuration(), error.hint()))
}

/// Writes one line of data on stdout. A failure, such as a closed pipe, is
/// [`CliError::WriteStdout`], which the renderer turns into a silent exit 0 for a
/// broken pipe.
pub(crate) fn stdout_line(text: &str) -> Result<(), CliError> {
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "{text}")
        .and_then(|()| stdout.flush())
        .map_err(CliError::WriteStdout)
}

/// Writes a command's result, the sentence that says what it did or found, on
/// stdout: unless `json`, as the command then writes its JSON document instead.
/// Results stay under `-q`, which silences stderr only; messages on the way go to
/// [`stderr_line`].
pub(crate) fn result_line(text: &str, json: bool) -> Result<(), CliError> {
    if json { Ok(()) } else { stdout_line(text) }
}

/// Writes `value` as one pretty-printed JSON document on stdout.
pub(crate) fn stdout_json(value: &impl Serialize) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value).context("failed to format JSON output")?;
    JSON_WRITTEN.store(true, Ordering::Relaxed);
    Ok(stdout_line(&text)?)
}

/// Set once a command wrote its JSON document: a failure after it (a health check
/// that failed, say, whose document tells it) writes no second one.
static JSON_WRITTEN: AtomicBool = AtomicBool::new(false);

/// The document a failed command writes on stdout under `--json`, for a program that
/// reads stdout only; the text goes to stderr as always.
#[derive(Serialize)]
struct ErrorJson<'a> {
    schema_version: u32,
    error: ErrorFields<'a>,
}

#[derive(Serialize)]
struct ErrorFields<'a> {
    /// The error's own message.
    message: String,
    /// The messages of its causes, outermost first.
    causes: Vec<String>,
    hint: Option<&'a str>,
    exit_code: u8,
}

/// Writes one message line on stderr; a failure to write it is ignored, as there is
/// nowhere left to report it.
pub(crate) fn stderr_line(text: &str) {
    if !quiet() {
        let _ = writeln!(io::stderr().lock(), "{text}");
    }
}

/// Set by `-q`: only errors reach stderr, and no progress bar is drawn.
static QUIET: AtomicBool = AtomicBool::new(false);

/// `-q` was given.
pub(crate) fn set_quiet() {
    QUIET.store(true, Ordering::Relaxed);
}

/// Whether `-q` was given: messages, warnings and progress bars are left out.
pub(crate) fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}
