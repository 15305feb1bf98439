//! `wavecast-update rollback`: return to the previous installed release.

use clap::Args;
use serde::Serialize;
use wavecast_client::{Updater, unmark_command};

use crate::args::{RootArg, now};
use crate::json::{ImageJson, JSON_SCHEMA_VERSION, PrunedJson, image_json, pruned_json};
use crate::output::{ExitStatus, result_line, stderr_line, stdout_json, unmark_note};
use crate::sentences::{image_line, print_pruned};

/// The flags of `rollback`.
#[derive(Debug, Args)]
pub(crate) struct RollbackArgs {
    #[command(flatten)]
    root: RootArg,
    /// Do not mark the current release bad: the next update may install it again.
    #[arg(long)]
    keep: bool,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

/// `wavecast-update rollback`.
pub(crate) fn run(args: &RollbackArgs) -> anyhow::Result<ExitStatus> {
    let report = Updater::open(&args.root.root)?.rollback(!args.keep, now()?)?;
    let (from, to) = (&report.from.version, &report.to.version);
    let consequence = if report.marked_bad {
        format!(
            "{from} is marked bad and is not installed again until a newer release is published{}",
            unmark_note(from)
        )
    } else {
        format!("{from} is not marked bad, so the next update may install it again")
    };
    if let Some(image) = &report.image {
        stderr_line(&image_line(image));
    }
    result_line(
        &format!(
            "rolled back to {to} (was {from}) in releases/{}; {consequence}",
            report.to.dir
        ),
        args.json,
    )?;
    print_pruned(&report.pruned);
    if args.json {
        stdout_json(&RollbackJson {
            schema_version: JSON_SCHEMA_VERSION,
            from: from.to_string(),
            to: to.to_string(),
            release_dir: format!("releases/{}", report.to.dir),
            marked_bad: report.marked_bad,
            unmark_command: report.marked_bad.then(|| unmark_command(from)),
            pruned_releases: pruned_json(&report.pruned),
            image: report.image.as_ref().map(image_json),
        })?;
    }
    Ok(ExitStatus::Success)
}

/// The `rollback --json` document.
#[derive(Debug, Serialize)]
struct RollbackJson<'a> {
    schema_version: u32,
    /// The release that was current.
    from: String,
    /// The release now current.
    to: String,
    /// Where it is, relative to the root.
    release_dir: String,
    /// Whether `from` was marked bad (not with `--keep`).
    marked_bad: bool,
    /// The command that clears that mark, when there is one.
    unmark_command: Option<String>,
    /// Release trees deleted after the rollback.
    pruned_releases: Vec<PrunedJson<'a>>,
    /// The slot switched back to, when the slots followed the rollback.
    image: Option<ImageJson<'a>>,
}
