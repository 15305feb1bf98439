//! `wavecast-update`: the client CLI, a client of the `wavecast_client` library.
//!
//! This file only parses the command line, dispatches, and maps the result to the
//! exit code. Each subcommand has a file that turns its flags into calls of the
//! library and renders the result; the flags several of them share, and the clock,
//! are in [`args`], the JSON documents several print in [`json`], the sentences they
//! share in [`sentences`], the progress bar in [`progress`], and everything written
//! to stdout and stderr, with the exit codes, the errors of the CLI itself and the
//! one error renderer, in [`output`].

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::output::ExitStatus;

mod apply;
mod args;
mod check;
mod config;
mod confirm;
mod init;
mod json;
mod launched;
mod list;
mod output;
mod poll;
mod progress;
mod rollback;
mod self_update;
mod sentences;
mod status;
mod unmark;
mod update;

/// The exit codes and the environment variables, after every `--help`: the codes are
/// part of the interface, so they are documented where a user looks.
const AFTER_HELP: &str = "\
Exit codes:
  0   success, including \"up to date\" and \"deferred\"
  1   operational failure: network, verification, install; a rollback (a failed
      health check, `launched` past the unconfirmed launches allowed); a failed
      on-activate hook; `update` with no terminal to ask and no --yes (mandatory
      updates never ask)
  2   usage or configuration error, such as `unmark` of a release not marked bad
  10  only with `check --exit-code`: an update is available

Environment:
  WAVECAST_ROOT         default for --root
  WAVECAST_NOW          an RFC 3339 time (e.g. 2026-11-21T12:00:00Z) used instead
                        of the system clock, for tests
  WAVECAST_NO_PROGRESS  set to hide progress (bars on a terminal, lines without one)
  WAVECAST_SELF_UPDATED_FROM
                        set by wavecast-update itself when it restarts after
                        updating itself; a client still too old then stops";

/// Keeps an install root up to date from a wavecast site: verifies the publisher's
/// signature, follows staged rollouts, and switches releases atomically.
#[derive(Debug, Parser)]
#[command(
    name = "wavecast-update",
    version = wavecast_client::marked_version(),
    after_help = AFTER_HELP
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Nothing on stderr but errors: no progress, messages or warnings. The result
    /// still goes to stdout (as does the JSON document with --json). The same as
    /// `wavecast -q`.
    #[arg(long, short, global = true)]
    quiet: bool,
}

/// The subcommands, each run by the module of the same name.
#[derive(Debug, Subcommand)]
enum Command {
    /// Set up an install root: where to update from, whose signature to trust, which
    /// channel to follow.
    #[command(after_help = AFTER_HELP)]
    Init(init::InitArgs),
    /// Show the configuration, or change the channel, attributes, limits, health check,
    /// how many releases are kept, and the image slots and their on-activate hook.
    #[command(after_help = AFTER_HELP)]
    Config(config::ConfigArgs),
    /// Check for an update without installing anything.
    #[command(after_help = AFTER_HELP)]
    Check(check::CheckArgs),
    /// List every release of the channel and what it is to this client: current,
    /// installed, offered now, eligible at a time, paused, yanked, marked bad here,
    /// off the pin; and what updating to it would download.
    #[command(after_help = AFTER_HELP)]
    List(list::ListArgs),
    /// Check for an update and install it.
    #[command(after_help = AFTER_HELP)]
    Update(update::UpdateArgs),
    /// Switch to the release `update --stage` built beside the running one: its tree
    /// is checked against its file indexes (no network), then made current, put on
    /// trial and health-checked, as `update` does. `launched` does this by itself
    /// before the application starts.
    #[command(after_help = AFTER_HELP)]
    Apply(apply::ApplyArgs),
    /// Show what is installed and configured (no network).
    #[command(after_help = AFTER_HELP)]
    Status(status::StatusArgs),
    /// Check on an interval, with random jitter and a backoff after failures;
    /// install updates that are mandatory, or all of them with --install. Ctrl-C or
    /// SIGTERM stops between checks (an install in progress finishes first).
    #[command(after_help = AFTER_HELP)]
    Poll(poll::PollArgs),
    /// Mark the current release healthy: call it from the application once it works.
    /// Launches then no longer count towards a rollback. Does nothing inside a health
    /// check. Members of the root's group (`init --group`) may run it too.
    #[command(after_help = AFTER_HELP)]
    Confirm(confirm::ConfirmArgs),
    /// Record one start of the application: call it from the launcher just before it
    /// starts `ROOT/current`. A release switched to by an update that is launched more
    /// often than --max-unconfirmed-launches (see `config`) without a `confirm` is
    /// rolled back to the release that ran before it, marked bad, and this exits 1;
    /// `current` is then the older release, so start `current` either way. Does
    /// nothing inside a health check. Members of the root's group (`init --group`)
    /// may count launches, but only the root's owner may roll back.
    #[command(after_help = AFTER_HELP)]
    Launched(launched::LaunchedArgs),
    /// Return to the previous installed release (the newest one installed before the
    /// current one that is still on disk and not marked bad), marking the current one
    /// bad so updates skip it until a newer release appears. With image modules, the
    /// other slot is activated first when it holds that release's image.
    #[command(after_help = AFTER_HELP)]
    Rollback(rollback::RollbackArgs),
    /// Clear the bad mark of a release, so that updates (and `rollback`) may install
    /// it again. A release is marked bad by `rollback`, a failed health check, too
    /// many unconfirmed launches or a failed on-activate hook; `status` lists them.
    #[command(after_help = AFTER_HELP)]
    Unmark(unmark::UnmarkArgs),
    /// Replace this wavecast-update with the newer build the channel offers for its
    /// platform, keeping the old executable as `<name>.old`. `update` and `poll` do
    /// this by themselves, then go on, when the channel needs a newer client.
    #[command(after_help = AFTER_HELP)]
    SelfUpdate(self_update::SelfUpdateArgs),
}

/// Parses the command line and runs it; the exit code comes from the result, or from
/// the error renderer.
fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.quiet {
        output::set_quiet();
    }
    match run(cli) {
        Ok(status) => status.into(),
        Err(error) => output::render_error(&error).into(),
    }
}

/// Runs the subcommand.
fn run(cli: Cli) -> anyhow::Result<ExitStatus> {
    match cli.command {
        Command::Init(args) => init::run(&args),
        Command::Config(args) => config::run(&args),
        Command::Check(args) => check::run(&args),
        Command::List(args) => list::run(&args),
        Command::Update(args) => update::run(&args),
        Command::Apply(args) => apply::run(&args),
        Command::Status(args) => status::run(&args),
        Command::Poll(args) => poll::run(&args),
        Command::Confirm(args) => confirm::run(&args),
        Command::Launched(args) => launched::run(&args),
        Command::Rollback(args) => rollback::run(&args),
        Command::Unmark(args) => unmark::run(&args),
        Command::SelfUpdate(args) => self_update::run(&args),
    }
}
