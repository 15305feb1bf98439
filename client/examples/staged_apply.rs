//! Apply on restart: a running desktop application is never changed under it. The
//! application stages an update while it runs; its launcher applies the staged
//! release just before the next start and starts the new release in its own place.
//!
//! ```text
//! cargo run -p wavecast-client --example staged_apply -- stage ROOT
//! cargo run -p wavecast-client --example staged_apply -- launch ROOT PROGRAM [ARGS...]
//! ```
//!
//! `stage` is what the application runs in the background; `launch` is its launcher:
//! `launched` applies a staged release (and counts the start of an unconfirmed
//! one), then `restart` replaces the launcher with `PROGRAM` (a path inside the
//! release, such as `bin/app`) of the current release. The tests run both against
//! nginx (`tests/e2e/examples.rs`).

#![expect(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command-line example prints its result"
)]

use std::error::Error;
use std::process::ExitCode;

use wavecast_client::{NoReporter, Outcome, RelativePath, Timestamp, Updater};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.as_slice() {
        [command, root] if command == "stage" => stage(root),
        [command, root, program, rest @ ..] if command == "launch" => launch(root, program, rest),
        _ => {
            eprintln!(
                "usage: staged_apply stage ROOT | staged_apply launch ROOT PROGRAM [ARGS...]"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Downloads and builds the next release beside the running one.
fn stage(root: &str) -> Result<(), Box<dyn Error>> {
    let updater = Updater::open(root)?;
    let report = updater.check(Timestamp::now())?;
    if report.outcome() != Outcome::Update {
        println!("up to date");
        return Ok(());
    }
    let staged = updater.stage(&report, Timestamp::now(), &NoReporter)?;
    println!("staged {}: applied at the next start", staged.tree.version);
    Ok(())
}

/// Applies a staged release, then becomes `program` of the current release.
fn launch(root: &str, program: &str, args: &[String]) -> Result<(), Box<dyn Error>> {
    let updater = Updater::open(root)?;
    let launch = updater.launched(Timestamp::now())?;
    if launch.applied.is_some() {
        eprintln!("applied {}", launch.release.version);
    }
    let program: RelativePath = program.parse()?;
    Err(updater.restart(&program, args).into())
}
