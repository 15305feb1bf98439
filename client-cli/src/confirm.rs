//! `wavecast-update confirm`: mark the current release healthy.

use clap::Args;
use wavecast_client::Updater;

use crate::args::{RootArg, in_health_check};
use crate::json::TrialJson;
use crate::output::{ExitStatus, result_line, stdout_json};

/// The flags of `confirm`.
#[derive(Debug, Args)]
pub(crate) struct ConfirmArgs {
    #[command(flatten)]
    root: RootArg,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

/// `wavecast-update confirm`.
pub(crate) fn run(args: &ConfirmArgs) -> anyhow::Result<ExitStatus> {
    if in_health_check() {
        result_line("inside a health check: nothing to confirm", args.json)?;
        if args.json {
            stdout_json(&TrialJson::new("in_health_check"))?;
        }
        return Ok(ExitStatus::Success);
    }
    let report = Updater::open(&args.root.root)?.confirm()?;
    let version = &report.release.version;
    let result = match report.launches {
        Some(launches) => {
            result_line(
                &format!("confirmed {version} after {launches} launch(es): it is kept"),
                args.json,
            )?;
            "confirmed"
        }
        None => {
            result_line(&format!("{version} was confirmed already"), args.json)?;
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
