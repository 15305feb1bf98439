//! `wavecast-update update`: check for an update and install it, after asking
//! unless told not to; with `--dry-run`, the plan of how it would be obtained.

use std::io::{self, BufRead, IsTerminal, Write};
use std::ops::ControlFlow;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use semver::Version;
use serde::Serialize;
use wavecast_client::{
    BaseUrl, CheckReport, ChooseOptions, FileAction, HealthCheck, HealthCheckFailure,
    HealthCheckReport, HealthConfig, InstallOutcome, InstallReport, LifecycleError, ModuleUpdate,
    Outcome, PackageReason, SlotConfig, UpdatePlan, Updater, format_bytes, unmark_command,
};

use crate::args::{ActivationArgs, DecisionArgs, RootArg, WaitArg, health_timeout_argument, now};
use crate::json::{
    CheckJson, HealthCheckJson, ImageJson, JSON_SCHEMA_VERSION, PrunedJson, check_json,
    health_check_json, image_json, pruned_json,
};
use crate::output::{CliError, ExitStatus, stderr_line, stdout_json, stdout_line};
use crate::progress::{ProgressReporter, Shown};
use crate::self_update::{check_or_report, check_or_update_self};
use crate::sentences::{
    check_sentence, image_line, plural, print_after_switch, print_pruned, rule_suffix,
    withdrawal_sentence,
};

/// The flags of `update`.
#[derive(Debug, Args)]
pub(crate) struct UpdateArgs {
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
    /// Download and build the release beside the running one without switching to
    /// it, so a running application is never changed under it: `apply`, or the
    /// launcher's next `launched`, switches to it.
    #[arg(long, conflicts_with_all = ["dry_run", "health_check", "health_timeout"])]
    stage: bool,
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
    #[arg(long, value_name = "VERSION", value_parser = wavecast_schema::parse_version)]
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

/// `wavecast-update update`.
pub(crate) fn run(args: &UpdateArgs) -> anyhow::Result<ExitStatus> {
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
        return match check_or_report(&updater, now()?, &options, args.json, false)? {
            ControlFlow::Continue(report) => dry_run(&updater, &choose(report)?, args.json),
            ControlFlow::Break(status) => Ok(status),
        };
    }
    let progress = Shown::for_command(args.json);
    let report = choose(check_or_update_self(&updater, now()?, &options, progress)?)?;
    let Some(target) = report
        .target()
        .filter(|_| report.outcome() == Outcome::Update)
    else {
        if args.json {
            stdout_json(&update_json(&report, None))?;
        } else {
            stdout_line(&check_sentence(&report))?;
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
            if args.json {
                stdout_json(&update_json(&report, None))?;
            } else {
                stdout_line(&format!("not installing {}", target.version))?;
            }
            return Ok(ExitStatus::Success);
        }
    }
    if args.stage {
        return stage(&updater, &report, progress, args.json);
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
        stdout_line(&line)?;
        print_after_switch(&installed);
    }
    Ok(ExitStatus::Success)
}

/// `update --stage`: builds the target of `report` beside the running release.
fn stage(
    updater: &Updater,
    report: &CheckReport,
    progress: Shown,
    json: bool,
) -> anyhow::Result<ExitStatus> {
    let reporter = ProgressReporter::new(progress);
    let staged = updater.stage(report, now()?, &reporter);
    drop(reporter);
    let staged = staged?;
    if json {
        stdout_json(&UpdateJson {
            staged: staged.tree.outcome != InstallOutcome::AlreadyCurrent,
            ..update_json(report, Some(&staged))
        })?;
        return Ok(ExitStatus::Success);
    }
    let tree = &staged.tree;
    stdout_line(&match tree.outcome {
        InstallOutcome::AlreadyCurrent => format!("already installed: {}", tree.version),
        InstallOutcome::Reused => format!(
            "staged {}: releases/{} was intact, nothing to download; `wavecast-update apply` or the next `launched` switches to it",
            tree.version, tree.dir
        ),
        _ => format!(
            "staged {} in releases/{}{}; `wavecast-update apply` or the next `launched` switches to it",
            tree.version,
            tree.dir,
            transfer_summary(report, &staged)
        ),
    })?;
    print_pruned(&staged.pruned_releases);
    Ok(ExitStatus::Success)
}

/// The `update --json` document: the check's fields plus what was installed and
/// what it cost.
#[derive(Debug, Serialize)]
struct UpdateJson<'a> {
    #[serde(flatten)]
    check: CheckJson<'a>,
    /// With --stage: the release was staged, not switched to (`installed` names it).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    staged: bool,
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
    /// Requests the install made to the hosts (the manifest's aside).
    requests: Option<u32>,
    /// The release the install's delta pack updated from, when it took one.
    pack_from: Option<String>,
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

/// The `update --json` document of `report`, and of the install when there was one.
fn update_json<'a>(
    report: &'a CheckReport,
    installed: Option<&'a InstallReport>,
) -> UpdateJson<'a> {
    UpdateJson {
        check: check_json(report),
        staged: false,
        installed: installed.map(|installed| installed.tree.version.to_string()),
        release_dir: installed.map(|installed| format!("releases/{}", installed.tree.dir)),
        download_bytes: installed.map(|installed| installed.tree.planned_bytes),
        downloaded_bytes: installed.map(|installed| installed.tree.downloaded_bytes),
        index_bytes: installed.map(|installed| installed.tree.index_bytes),
        package_bytes: installed.map(|installed| installed.tree.package_bytes),
        requests: installed.map(|installed| installed.tree.requests),
        pack_from: installed
            .and_then(|installed| installed.tree.pack_from.as_ref())
            .map(ToString::to_string),
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

/// `: downloaded 1.2 MiB (planned 1.1 MiB; whole packages: 9.9 MiB); freed 3.4 MiB
/// of cache; manifest from https://a/; blobs from https://cdn/`. For a release of only
/// an image (its image line says what that cost), the tree's zero bytes are left out.
fn transfer_summary(report: &CheckReport, installed: &InstallReport) -> String {
    // The image's bytes count too: it is most of what an image release downloads.
    let image_bytes = installed
        .image
        .as_ref()
        .map_or(0, |image| image.downloaded_bytes);
    let mut text = if installed.tree.package_bytes == 0 && installed.image.is_some() {
        format!(
            ": downloaded {} for the image; the release tree has no modules",
            format_bytes(image_bytes)
        )
    } else {
        format!(
            ": downloaded {}{} in {} (planned {}; whole packages: {})",
            format_bytes(installed.tree.downloaded_bytes + image_bytes),
            if image_bytes > 0 {
                format!(", {} of it for the image,", format_bytes(image_bytes))
            } else {
                String::new()
            },
            plural(installed.tree.requests as usize, "request"),
            format_bytes(installed.tree.planned_bytes + installed.tree.index_bytes),
            format_bytes(installed.tree.package_bytes),
        )
    };
    if let Some(from) = &installed.tree.pack_from {
        text.push_str(&format!("; delta pack from {from}"));
    }
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
    /// The delta pack the update would download, when one updates from the current
    /// release.
    pack: Option<PackJson>,
    /// Bytes the update would download, file indexes aside.
    download_bytes: u64,
    /// What downloading every module's package would cost instead.
    package_bytes: u64,
    /// Bytes received to fetch file indexes for the plan.
    index_bytes: u64,
    /// The image module, which goes to a slot: at most its package's size.
    image: Option<ImagePlanJson<'a>>,
}

/// The image module in `update --dry-run --json`.
#[derive(Debug, Serialize)]
struct ImagePlanJson<'a> {
    module: &'a str,
    /// The most it downloads: its package (a patch against the other slot is smaller).
    max_bytes: u64,
}

/// The delta pack of the plan in `update --dry-run --json`.
#[derive(Debug, Serialize)]
struct PackJson {
    /// The release it updates from.
    from: String,
    /// Its size, downloaded in one request.
    bytes: u64,
}

/// One module of the plan in `update --dry-run --json`.
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
    /// Every file with `keep`, `patch`, `copy` or `range`; empty when `use_package`.
    files: Vec<FilePlanJson<'a>>,
    /// Paths of the installed module that the target lacks.
    removed: Vec<&'a str>,
}

/// One file of a module's plan in `update --dry-run --json`.
#[derive(Debug, Serialize)]
struct FilePlanJson<'a> {
    /// Relative to the module's destination.
    path: &'a str,
    action: &'static str,
    /// Bytes to download for this file.
    bytes: u64,
    /// `zstd`, `bsdiff` or `bsdiff-zstd`, for a patch.
    #[serde(skip_serializing_if = "Option::is_none")]
    algorithm: Option<&'static str>,
}

/// The `update --dry-run --json` document of `report` and its plan.
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
                    dest: module_dest(module),
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
                                FileAction::Patch { algorithm, .. } => Some(algorithm.as_str()),
                                _ => None,
                            },
                        })
                        .collect(),
                    removed: module.removed.iter().map(|path| path.as_str()).collect(),
                })
                .collect()
        }),
        pack: plan
            .and_then(|plan| plan.pack.as_ref())
            .map(|pack| PackJson {
                from: pack.from.to_string(),
                bytes: pack.size,
            }),
        download_bytes: plan.map_or(0, |plan| plan.download_bytes),
        package_bytes: plan.map_or(0, |plan| plan.package_bytes),
        index_bytes: plan.map_or(0, |plan| plan.index_bytes),
        image: plan
            .and_then(|plan| plan.image.as_ref())
            .map(|image| ImagePlanJson {
                module: image.module.as_str(),
                max_bytes: image.package_bytes,
            }),
    }
}

/// Where a module goes in the release tree, if not its root.
fn module_dest(module: &ModuleUpdate) -> Option<&str> {
    module.dest.as_ref().map(|dest| dest.as_str())
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
    if let Some(pack) = &plan.pack {
        lines.push(format!(
            "delta pack from {}: {}, in one request",
            pack.from,
            format_bytes(pack.size)
        ));
    }
    for module in &plan.modules {
        let name = match module_dest(module) {
            Some(dest) => format!("module {} ({dest}/)", module.name),
            None => format!("module {}", module.name),
        };
        if module.use_package {
            let why = match module.package_reason {
                Some(PackageReason::Cheaper) => "cheaper than its files",
                Some(PackageReason::NoFileCopies) => "the site has no copies of its files",
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
                    FileAction::Patch {
                        algorithm, size, ..
                    } => format!(" ({}, {})", algorithm.as_str(), format_bytes(*size)),
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
    if let Some(image) = &plan.image {
        lines.push(format!(
            "image module {}: at most {} (its package; a patch against the other slot is smaller)",
            image.module,
            format_bytes(image.package_bytes)
        ));
    }
    lines.push(format!(
        "total: download {}{} (whole packages: {}); file indexes fetched: {}",
        format_bytes(plan.download_bytes),
        plan.image
            .as_ref()
            .map_or_else(String::new, |image| format!(
                " and at most {} for the image",
                format_bytes(image.package_bytes)
            )),
        format_bytes(plan.package_bytes),
        format_bytes(plan.index_bytes)
    ));
    lines
}
