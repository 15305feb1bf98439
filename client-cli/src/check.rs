//! `wavecast-update check`: check for an update without installing anything.

use std::ops::ControlFlow;

use clap::Args;
use wavecast_client::Outcome;

use crate::args::{DecisionArgs, RootArg, WaitArg, now};
use crate::json::check_json;
use crate::output::{ExitStatus, stdout_json, stdout_line};
use crate::self_update::check_or_report;
use crate::sentences::check_sentence;

/// The flags of `check`.
#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
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

/// `wavecast-update check`.
pub(crate) fn run(args: &CheckArgs) -> anyhow::Result<ExitStatus> {
    let updater = args.wait.open(&args.root)?;
    let options = args.decision.options();
    let checked = check_or_report(&updater, now()?, &options, args.json, args.exit_code)?;
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
