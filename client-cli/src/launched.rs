//! `wavecast-update launched`: count one start of the application, rolling back a
//! release launched too often without a `confirm`.

use clap::Args;
use wavecast_client::{LaunchOutcome, Updater, unmark_command};

use crate::args::{RootArg, in_health_check, now};
use crate::json::{TrialJson, pruned_json};
use crate::output::{CliError, ExitStatus, result_line, stderr_line, stdout_json};
use crate::sentences::{print_pruned, was_suffix};

/// The flags of `launched`.
#[derive(Debug, Args)]
pub(crate) struct LaunchedArgs {
    #[command(flatten)]
    root: RootArg,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

/// `wavecast-update launched`.
pub(crate) fn run(args: &LaunchedArgs) -> anyhow::Result<ExitStatus> {
    if in_health_check() {
        result_line(
            "inside a health check: the launch is not counted",
            args.json,
        )?;
        if args.json {
            stdout_json(&TrialJson::new("in_health_check"))?;
        }
        return Ok(ExitStatus::Success);
    }
    let report = Updater::open(&args.root.root)?.launched(now()?)?;
    let version = report.release.version.clone();
    let mut json = TrialJson {
        version: Some(version.to_string()),
        applied: report.applied.is_some(),
        ..TrialJson::new("confirmed")
    };
    if let Some(applied) = &report.applied {
        result_line(
            &format!(
                "applied the staged release {version}{} before the launch",
                was_suffix(&applied.tree)
            ),
            args.json,
        )?;
    }
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
            result_line(
                &format!(
                    "{version} is not confirmed yet: launch {launches}{limit_text} (`wavecast-update confirm` ends the count)"
                ),
                args.json,
            )?;
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
        _ => result_line(
            &format!("{version} is confirmed: the launch is not counted"),
            args.json,
        )?,
    }
    if args.json {
        stdout_json(&json)?;
    }
    match rolled_back {
        Some(error) => Err(error.into()),
        None => Ok(ExitStatus::Success),
    }
}
