//! `wavecast-update apply`: switch to the release `update --stage` built beside the
//! running one.

use clap::Args;
use serde::Serialize;

use crate::args::{RootArg, WaitArg, now};
use crate::json::JSON_SCHEMA_VERSION;
use crate::output::{ExitStatus, stdout_json, stdout_line};
use crate::progress::{ProgressReporter, Shown};
use crate::sentences::{print_after_switch, was_suffix};

/// The flags of `apply`.
#[derive(Debug, Args)]
pub(crate) struct ApplyArgs {
    #[command(flatten)]
    root: RootArg,
    #[command(flatten)]
    wait: WaitArg,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

/// The `apply --json` document.
#[derive(Debug, Serialize)]
struct ApplyJson {
    schema_version: u32,
    /// `applied` or `nothing_staged`.
    result: &'static str,
    /// The release now current, when applied.
    version: Option<String>,
    /// The release current before, when applied.
    previous: Option<String>,
    /// Its tree, relative to the root.
    release_dir: Option<String>,
}

/// `wavecast-update apply`.
pub(crate) fn run(args: &ApplyArgs) -> anyhow::Result<ExitStatus> {
    let updater = args.wait.open(&args.root)?;
    let reporter = ProgressReporter::new(Shown::for_command(args.json));
    let applied = updater.apply(now()?, &reporter)?;
    drop(reporter);
    let tree = applied.as_ref().map(|applied| &applied.tree);
    if args.json {
        stdout_json(&ApplyJson {
            schema_version: JSON_SCHEMA_VERSION,
            result: if tree.is_some() {
                "applied"
            } else {
                "nothing_staged"
            },
            version: tree.map(|tree| tree.version.to_string()),
            previous: tree.and_then(|tree| tree.previous.as_ref().map(ToString::to_string)),
            release_dir: tree.map(|tree| format!("releases/{}", tree.dir)),
        })?;
        return Ok(ExitStatus::Success);
    }
    match &applied {
        None => {
            stdout_line("nothing is staged: `wavecast-update update --stage` stages a release")?
        }
        Some(applied) => {
            let tree = &applied.tree;
            stdout_line(&format!(
                "applied {}{}: current is releases/{}",
                tree.version,
                was_suffix(tree),
                tree.dir
            ))?;
            print_after_switch(applied);
        }
    }
    Ok(ExitStatus::Success)
}
