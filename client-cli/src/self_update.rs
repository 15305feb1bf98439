//! The client updating itself: `wavecast-update self-update`, and what `check`,
//! `update` and `poll` do when the channel's manifest needs a newer
//! `wavecast-update` than the one running.
//!
//! `update` and `poll` replace the executable with the build the manifest offers
//! for this platform, then execute it again with the same arguments, so the new
//! client continues the command. The restarted process carries
//! [`SELF_UPDATED_VARIABLE`]; if it is still too old it stops with an error instead
//! of updating again, so a build that lies about its version cannot make a loop.
//! `check` and `update --dry-run` install nothing: they report that the client must
//! update itself first.

use std::convert::Infallible;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context as _;
use clap::Args;
use jiff::Timestamp;
use semver::Version;
use serde::Serialize;
use wavecast_client::{BUILD_PLATFORM, CheckOptions, CheckReport, ClientCheck, NetError, Updater};

use crate::args::{RootArg, now};
use crate::json::{ClientJson, JSON_SCHEMA_VERSION};
use crate::output::{ExitStatus, SelfUpdateError, stderr_line, stdout_json, stdout_line};
use crate::progress::{ProgressReporter, Shown};

/// Set in the environment of a `wavecast-update` restarted after it updated itself,
/// to the version it updated from.
pub(crate) const SELF_UPDATED_VARIABLE: &str = "WAVECAST_SELF_UPDATED_FROM";

/// The flags of `self-update`.
#[derive(Debug, Args)]
pub(crate) struct SelfUpdateArgs {
    #[command(flatten)]
    root: RootArg,
    /// Print one JSON object on stdout (and no progress bar).
    #[arg(long)]
    json: bool,
}

/// The `client` object of what [`Updater::check_client`] found.
fn check_client_json(check: &ClientCheck) -> ClientJson {
    ClientJson::new(
        check.required(),
        check.offered().map(|build| &build.version),
        check.status(),
    )
}

/// `check --json` (and `update --dry-run --json`) when the client must update itself
/// before it can decide.
#[derive(Debug, Serialize)]
struct SelfUpdateNeededJson<'a> {
    schema_version: u32,
    /// `self_update`.
    decision: &'static str,
    manifest_url: &'a str,
    client: ClientJson,
}

/// `check_with` for commands that install nothing (`check`, `update --dry-run`):
/// when the manifest needs a newer client and offers a build that reaches it, prints
/// that the client must update itself first and breaks with the exit status (10
/// with `exit_code`, else 0). With no such build, the [`ClientTooOld`] error.
///
/// [`ClientTooOld`]: wavecast_client::NetError::ClientTooOld
pub(crate) fn check_or_report(
    updater: &Updater,
    now: Timestamp,
    options: &CheckOptions,
    json: bool,
    exit_code: bool,
) -> anyhow::Result<ControlFlow<ExitStatus, CheckReport>> {
    let too_old = match updater.check_with(now, options) {
        Err(error @ wavecast_client::Error::Net(NetError::ClientTooOld { .. })) => error,
        other => return Ok(ControlFlow::Continue(other?)),
    };
    let check = updater.check_client(now)?;
    let Some(build) = check.offered().filter(|_| check.status().installs()) else {
        return Err(too_old.into());
    };
    if json {
        stdout_json(&SelfUpdateNeededJson {
            schema_version: JSON_SCHEMA_VERSION,
            decision: "self_update",
            manifest_url: check.manifest_url(),
            client: check_client_json(&check),
        })?;
    } else {
        stdout_line(&format!(
            "wavecast-update {} must update itself to {} first (this channel needs >= {}): run `wavecast-update update` or `wavecast-update self-update`",
            check.running(),
            build.version,
            check.required()
        ))?;
    }
    Ok(ControlFlow::Break(if exit_code {
        ExitStatus::UpdateAvailable
    } else {
        ExitStatus::Success
    }))
}

/// `check_with` for commands that install (`update`, `poll`): when the manifest
/// needs a newer client, the client updates itself and executes the new
/// executable with the same arguments, so this returns only on failure. With no
/// build that reaches the floor, the [`ClientTooOld`] error.
///
/// [`ClientTooOld`]: wavecast_client::NetError::ClientTooOld
pub(crate) fn check_or_update_self(
    updater: &Updater,
    now: Timestamp,
    options: &CheckOptions,
    progress: Shown,
) -> anyhow::Result<CheckReport> {
    let too_old = match updater.check_with(now, options) {
        Err(error @ wavecast_client::Error::Net(NetError::ClientTooOld { .. })) => error,
        other => return Ok(other?),
    };
    if let (
        Some(from),
        wavecast_client::Error::Net(NetError::ClientTooOld {
            required, running, ..
        }),
    ) = (std::env::var_os(SELF_UPDATED_VARIABLE), &too_old)
    {
        return Err(SelfUpdateError::StillTooOld {
            from: from.to_string_lossy().into_owned(),
            running: running.clone(),
            required: required.clone(),
            executable: executable().unwrap_or_default(),
        }
        .into());
    }
    match update_and_restart(updater, now, progress, too_old)? {}
}

/// The path of the running executable.
fn executable() -> anyhow::Result<PathBuf> {
    std::env::current_exe()
        .map_err(|source| wavecast_client::Error::LocateExecutable { source }.into())
}

/// Updates the client to the build the manifest requires, then executes it with
/// this process's arguments; returns only on failure (`too_old` when no build
/// reaches the floor).
fn update_and_restart(
    updater: &Updater,
    now: Timestamp,
    progress: Shown,
    too_old: wavecast_client::Error,
) -> anyhow::Result<Infallible> {
    let check = updater.check_client(now)?;
    let Some(build) = check.offered().filter(|_| check.status().installs()) else {
        return Err(too_old.into());
    };
    // Resolved now: once replaced, the running executable's link names a deleted file.
    let executable = executable()?;
    stderr_line(&format!(
        "wavecast-update {} is older than the {} channel `{}` needs: updating itself to {} first",
        check.running(),
        check.required(),
        updater.config().channel,
        build.version
    ));
    let reporter = ProgressReporter::new(progress);
    let updated = updater
        .self_update(&check, &executable, &reporter)
        .with_context(|| {
            format!(
                "failed to update wavecast-update {} to {}; it is unchanged",
                check.running(),
                build.version
            )
        })?;
    drop(reporter);
    let Some(report) = updated else {
        return Err(too_old.into());
    };
    stderr_line(&format!(
        "updated wavecast-update {} -> {} (`{}`; the old executable is kept as `{}`); restarting it",
        report.from,
        report.to,
        report.executable.display(),
        report.previous.display()
    ));
    Err(restart(&report.executable, &report.from, &report.to).into())
}

/// Executes `executable` in place of this process with the same arguments and
/// [`SELF_UPDATED_VARIABLE`] set to `from`; returns only when that fails. Retries
/// for up to a second while the file is busy (`ETXTBSY`). Windows cannot replace a
/// process's image: there the new executable runs as a child with this process's
/// standard streams, and this process exits with its status.
fn restart(executable: &Path, from: &Version, to: &Version) -> SelfUpdateError {
    let mut arguments = std::env::args_os();
    let mut command = Command::new(executable);
    let arg0 = arguments.next();
    command
        .args(arguments)
        .env(SELF_UPDATED_VARIABLE, from.to_string());
    #[cfg(windows)]
    {
        let _ = arg0;
        match command.status() {
            Ok(status) => std::process::exit(status.code().unwrap_or(1)),
            Err(source) => SelfUpdateError::Restart {
                to: to.clone(),
                executable: executable.to_owned(),
                source,
            },
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt as _;
        if let Some(arg0) = arg0 {
            command.arg0(arg0);
        }
        exec_retrying(&mut command, executable, to)
    }
}

/// `exec` of `command`, retried for up to a second while the file is busy.
#[cfg(unix)]
fn exec_retrying(command: &mut Command, executable: &Path, to: &Version) -> SelfUpdateError {
    use std::os::unix::process::CommandExt as _;
    let mut attempts = 0;
    loop {
        let source = command.exec();
        if source.kind() == std::io::ErrorKind::ExecutableFileBusy && attempts < 20 {
            attempts += 1;
            std::thread::sleep(std::time::Duration::from_millis(50));
            continue;
        }
        return SelfUpdateError::Restart {
            to: to.clone(),
            executable: executable.to_owned(),
            source,
        };
    }
}

/// The `self-update --json` document.
#[derive(Debug, Serialize)]
struct SelfUpdateJson<'a> {
    schema_version: u32,
    /// `updated` or `up_to_date`.
    result: &'static str,
    /// The version replaced, when updated.
    from: Option<String>,
    /// The version installed, when updated.
    to: Option<String>,
    executable: &'a Path,
    /// Where the old executable was kept, when updated.
    previous: Option<&'a Path>,
    downloaded_bytes: u64,
    manifest_url: &'a str,
    client: ClientJson,
}

/// `wavecast-update self-update`: replaces this executable with the newer build the
/// channel offers for this platform, if any.
pub(crate) fn run(args: &SelfUpdateArgs) -> anyhow::Result<ExitStatus> {
    let updater = Updater::open(&args.root.root)?;
    let check = updater.check_client(now()?)?;
    let executable = executable()?;
    let progress = Shown::for_command(args.json);
    let reporter = ProgressReporter::new(progress);
    let to = check.offered().map(|build| build.version.clone());
    let updated = updater
        .self_update(&check, &executable, &reporter)
        .with_context(|| match &to {
            Some(to) if check.status().installs() => format!(
                "failed to update wavecast-update {} to {to}; it is unchanged",
                check.running()
            ),
            _ => format!("wavecast-update {} cannot update itself", check.running()),
        })?;
    drop(reporter);
    if args.json {
        stdout_json(&SelfUpdateJson {
            schema_version: JSON_SCHEMA_VERSION,
            result: if updated.is_some() {
                "updated"
            } else {
                "up_to_date"
            },
            from: updated.as_ref().map(|report| report.from.to_string()),
            to: updated.as_ref().map(|report| report.to.to_string()),
            executable: &executable,
            previous: updated.as_ref().map(|report| report.previous.as_path()),
            downloaded_bytes: updated.as_ref().map_or(0, |report| report.downloaded_bytes),
            manifest_url: check.manifest_url(),
            client: check_client_json(&check),
        })?;
    } else {
        stdout_line(&match &updated {
            Some(report) => format!(
                "updated wavecast-update {} -> {} (`{}`; the old executable is kept as `{}`)",
                report.from,
                report.to,
                report.executable.display(),
                report.previous.display()
            ),
            None => format!(
                "wavecast-update {} is up to date (channel `{}` offers {} for `{BUILD_PLATFORM}` and needs >= {})",
                check.running(),
                updater.config().channel,
                to.map_or_else(|| "no build".to_owned(), |to| to.to_string()),
                check.required()
            ),
        })?;
    }
    Ok(ExitStatus::Success)
}
