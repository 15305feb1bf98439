//! `wavecast-update unmark`: clear the bad mark of a release.

use clap::Args;
use jiff::Timestamp;
use semver::Version;
use serde::Serialize;
use wavecast_client::Updater;

use crate::args::RootArg;
use crate::json::JSON_SCHEMA_VERSION;
use crate::output::{ExitStatus, result_line, stdout_json};

/// The flags of `unmark`.
#[derive(Debug, Args)]
pub(crate) struct UnmarkArgs {
    #[command(flatten)]
    root: RootArg,
    /// The release whose mark to clear.
    #[arg(value_name = "VERSION", value_parser = wavecast_schema::parse_version)]
    version: Version,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

/// `wavecast-update unmark`.
pub(crate) fn run(args: &UnmarkArgs) -> anyhow::Result<ExitStatus> {
    let cleared = Updater::open(&args.root.root)?.unmark(&args.version)?;
    result_line(
        &format!(
            "unmarked {} (marked bad at {}: {}); the next update may install it again",
            cleared.version, cleared.marked_at, cleared.detail
        ),
        args.json,
    )?;
    if args.json {
        stdout_json(&UnmarkJson {
            schema_version: JSON_SCHEMA_VERSION,
            result: "unmarked",
            version: cleared.version.to_string(),
            dir: &cleared.dir,
            reason: cleared.reason.as_str(),
            detail: &cleared.detail,
            marked_at: cleared.marked_at,
        })?;
    }
    Ok(ExitStatus::Success)
}

/// The `unmark --json` document: the mark cleared.
#[derive(Debug, Serialize)]
struct UnmarkJson<'a> {
    schema_version: u32,
    /// `unmarked`.
    result: &'static str,
    version: String,
    dir: &'a str,
    /// Why it had been marked (as `reason` in `status --json`).
    reason: &'static str,
    detail: &'a str,
    marked_at: Timestamp,
}
