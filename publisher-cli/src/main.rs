//! `wavecast`: the publisher CLI, a client of the `wavecast_publisher` library.
//!
//! This file only parses the command line and dispatches. Each subcommand, or group
//! of closely related ones, has a file that turns its flags into a call of the
//! library and renders the result; the flags several of them share are in [`args`],
//! loading secret keys in [`secret_keys`], and everything written to stdout and
//! stderr, the one error renderer included, in [`output`].

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod args;
mod client_floor;
mod gc;
mod key;
mod keygen;
mod mirror;
mod output;
mod publish;
mod publish_updater;
mod push;
mod retire;
mod rollout;
mod secret_keys;
mod sign;
mod simulate;
mod stats;
mod survey;
mod verify;

/// Publish signed software releases to a static site.
#[derive(Debug, Parser)]
#[command(
    name = "wavecast",
    version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("WAVECAST_BUILD"), ")"),
    after_help = output::EXIT_CODES
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Nothing on stderr but errors: no progress, messages or warnings. The result
    /// still goes to stdout (as does the JSON document with --json). The same as
    /// `wavecast-update -q`.
    #[arg(long, short, global = true)]
    quiet: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate a minisign key pair: DIR/wavecast.key and DIR/wavecast.pub.
    #[command(after_help = output::EXIT_CODES)]
    Keygen(keygen::KeygenArgs),
    /// Add a release folder to a channel of a site, keeping earlier releases live.
    #[command(after_help = output::EXIT_CODES)]
    Publish(Box<publish::PublishArgs>),
    /// Change a live release's rollout: share or ramp, rules, cap.
    #[command(after_help = output::EXIT_CODES)]
    Rollout(Box<rollout::RolloutArgs>),
    /// Pause a release's rollout: nobody new is offered it; clients on it stay.
    #[command(after_help = output::EXIT_CODES)]
    Pause(rollout::ReleaseArgs),
    /// Resume a paused rollout; a ramp continues where it stopped.
    #[command(after_help = output::EXIT_CODES)]
    Resume(rollout::ReleaseArgs),
    /// Withdraw a release: nobody is offered it, and clients on it move to the best
    /// release still allowed (usually the previous one).
    #[command(after_help = output::EXIT_CODES)]
    Yank(rollout::YankArgs),
    /// Copy a release from one channel to another with a new salt and its own rollout.
    #[command(after_help = output::EXIT_CODES)]
    Promote(Box<rollout::PromoteArgs>),
    /// Take releases off a channel (named, or all but the newest --keep N): nobody is
    /// offered them any more. Their blobs stay until `wavecast gc`.
    #[command(after_help = output::EXIT_CODES)]
    Retire(Box<retire::RetireArgs>),
    /// Offer a build of the client, `wavecast-update`, for one platform on a channel:
    /// clients below the channel's --min-client-version replace themselves with it
    /// before anything else.
    #[command(after_help = output::EXIT_CODES)]
    PublishUpdater(Box<publish_updater::PublishUpdaterArgs>),
    /// Simulate a channel's rollout over a synthetic fleet: share per version over
    /// time, and install rates.
    #[command(after_help = output::EXIT_CODES)]
    Simulate(Box<simulate::SimulateArgs>),
    /// Measure a rollout from the host's access logs: installs per release (fresh or
    /// from which release), active clients, incomplete downloads, pack fallbacks and
    /// the fleet's versions, per channel and time bucket. No address or id is kept:
    /// clients are counted by a salted hash that lives only while the command runs.
    #[command(after_help = output::EXIT_CODES)]
    Stats(Box<stats::StatsArgs>),
    /// Check a site: every channel's signature and expiry, and every document,
    /// package, file index, copy pack and delta pack its releases refer to (sizes,
    /// hashes, and that each rebuilds what it describes).
    #[command(after_help = output::EXIT_CODES)]
    Verify(verify::VerifyArgs),
    /// Copy a site (or some of its releases) into a folder, verifying every signature
    /// and blob on the way; rerun it to finish an interrupted copy.
    #[command(after_help = output::EXIT_CODES)]
    Mirror(Box<mirror::MirrorArgs>),
    /// Upload a site folder to an S3 bucket (or S3-compatible storage): only the
    /// files it lacks, blobs first, channel manifests last. Credentials come from
    /// AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN or the AWS profile
    /// files (AWS_PROFILE, AWS_SHARED_CREDENTIALS_FILE, ~/.aws/credentials).
    #[command(after_help = output::EXIT_CODES)]
    Push(Box<push::PushArgs>),
    /// Delete the blobs no live release, pack or updater build refers to, once they
    /// are older than --grace (uploaded at least 7 days ago by default), from a site
    /// folder or an S3 bucket. Deletes nothing unless every channel verifies.
    #[command(after_help = output::EXIT_CODES)]
    Gc(Box<gc::GcArgs>),
    /// Sign the changes made with --sign-later (channels/*.json.unsigned) with
    /// release keys, and publish each once a threshold has signed: the root, serial,
    /// expiry and every blob are checked again first. Keys on several machines sign
    /// one run after another; a manifest is never live half-signed.
    #[command(after_help = output::EXIT_CODES)]
    Sign(sign::SignArgs),
    /// Manage the site's chain of trust: rotate root and release keys, at once or as
    /// a draft each holder signs on their own machine.
    #[command(subcommand, after_help = output::EXIT_CODES)]
    Key(key::KeyCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.quiet {
        output::set_quiet();
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => output::report_error(&error),
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Keygen(args) => keygen::run(&args),
        Command::Publish(args) => publish::run(&args),
        Command::Rollout(args) => rollout::change(&args),
        Command::Pause(args) => rollout::pause_or_resume(&args, true),
        Command::Resume(args) => rollout::pause_or_resume(&args, false),
        Command::Yank(args) => rollout::yank(&args),
        Command::Promote(args) => rollout::promote(&args),
        Command::Retire(args) => retire::run(&args),
        Command::PublishUpdater(args) => publish_updater::run(&args),
        Command::Simulate(args) => simulate::run(&args),
        Command::Stats(args) => stats::run(&args),
        Command::Verify(args) => verify::run(&args),
        Command::Mirror(args) => mirror::run(&args),
        Command::Push(args) => push::run(&args),
        Command::Gc(args) => gc::run(&args),
        Command::Sign(args) => sign::run(&args),
        Command::Key(command) => key::run(&command),
    }
}
