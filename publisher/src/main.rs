//! `wavecast`: the publisher CLI.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::builder::FalseyValueParser;
use clap::{Args, Parser, Subcommand};
use jiff::{SignedDuration, Timestamp};
use semver::Version;
use wavecast_publisher::channel::Signing;
use wavecast_publisher::keys::{self, Password, Signers, SigningKey};
use wavecast_publisher::package::{ModuleSpec, PackReporter};
use wavecast_publisher::publish::{self, ModuleSummary, PublishOptions, PublishReport};
use wavecast_publisher::rollout;
use wavecast_publisher::rollout_plan::{self, CapChange, RolloutChange};
use wavecast_schema::{BasisPoints, ChannelName, ModuleKind, Platform, Ramp, Rule, Share};
use wavecast_site::FsStorage;

mod key_commands;
mod output;
mod push_cli;
mod simulate;
mod site_commands;
mod updater_cli;

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  operational failure (I/O, signing, site storage)
  2  usage or configuration error (bad arguments, existing key or version, wrong password)

Environment:
  WAVECAST_KEY_PASSWORD  password of the secret key (keygen encrypts with it)
  WAVECAST_NOW           RFC 3339 time to use instead of the clock (for tests)
  WAVECAST_NO_PROGRESS   hide progress bars
  WAVECAST_RESPECT_UMASK 1 acts as --respect-umask on every command that writes a site";

/// Publish signed software releases to a static site.
#[derive(Debug, Parser)]
#[command(name = "wavecast", version, after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Print only errors.
    #[arg(long, short, global = true)]
    quiet: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate a minisign key pair: DIR/wavecast.key and DIR/wavecast.pub.
    Keygen(KeygenArgs),
    /// Add a release folder to a channel of a site, keeping earlier releases live.
    Publish(Box<PublishArgs>),
    /// Change a live release's rollout: share or ramp, rules, cap.
    Rollout(Box<RolloutArgs>),
    /// Pause a release's rollout: nobody new is offered it; clients on it stay.
    Pause(ReleaseArgs),
    /// Resume a paused rollout; a ramp continues where it stopped.
    Resume(ReleaseArgs),
    /// Withdraw a release: nobody is offered it, and clients on it move to the best
    /// release still allowed (usually the previous one).
    Yank(YankArgs),
    /// Copy a release from one channel to another with a new salt and its own rollout.
    Promote(Box<PromoteArgs>),
    /// Offer a build of the client, `wavecast-update`, for one platform on a channel:
    /// clients below the channel's --min-client-version replace themselves with it
    /// before anything else.
    PublishUpdater(Box<updater_cli::PublishUpdaterArgs>),
    /// Simulate a channel's rollout over a synthetic fleet: share per version over
    /// time, and install rates.
    Simulate(Box<simulate::SimulateArgs>),
    /// Check a site: every channel's signature and expiry, and the size and hash of
    /// every package, file index, file copy and patch its releases refer to.
    Verify(site_commands::VerifyArgs),
    /// Copy a site (or some of its releases) into a folder, verifying every signature
    /// and blob on the way; rerun it to finish an interrupted copy.
    Mirror(Box<site_commands::MirrorArgs>),
    /// Upload a site folder to an S3 bucket (or S3-compatible storage): only the
    /// files it lacks, blobs first, channel manifests last. Credentials come from
    /// AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN or the AWS profile
    /// files (AWS_PROFILE, AWS_SHARED_CREDENTIALS_FILE, ~/.aws/credentials).
    Push(Box<push_cli::PushArgs>),
    /// Manage the site's chain of trust: rotate root and release keys.
    #[command(subcommand)]
    Key(key_commands::KeyCommand),
}

#[derive(Debug, Args)]
struct KeygenArgs {
    /// Folder to write the keys into (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Store the secret key without a password (not recommended).
    #[arg(long)]
    unencrypted: bool,
    /// Replace existing key files.
    #[arg(long)]
    force: bool,
    /// Read the password from this file instead of WAVECAST_KEY_PASSWORD.
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
}

/// The site and how to sign its manifests: shared by every command that writes one.
#[derive(Debug, Args)]
struct SiteArgs {
    /// The site folder (`publish` creates it if missing).
    #[arg(long, value_name = "SITE")]
    site: PathBuf,
    /// A minisign secret key that signs the manifest: a release key of the site's
    /// newest root. Repeat it when the root asks for several (k of n).
    #[arg(long = "key", value_name = "KEY", required = true)]
    keys: Vec<PathBuf>,
    /// Read the keys' password from this file instead of WAVECAST_KEY_PASSWORD.
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
    /// How long the signed manifest stays valid: `30d`, `12h`, `2w`.
    #[arg(long, default_value = "30d", value_parser = parse_duration)]
    expires_in: SignedDuration,
    /// Print a JSON summary on stdout.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    umask: UmaskArg,
}

impl SiteArgs {
    /// The site folder, written as `--respect-umask` says.
    fn storage(&self) -> FsStorage {
        self.umask.storage(&self.site)
    }
}

/// `--respect-umask`: shared by every command that writes a site folder.
#[derive(Debug, Args)]
pub(crate) struct UmaskArg {
    /// Let the umask restrict the site's files and new folders. By default they are
    /// 0644 and 0755 whatever the umask, so that a web server running as another user
    /// (www-data, nobody) can read them; with this flag and umask 077 they are 0600
    /// and 0700, and the server needs the publisher's user or group.
    #[arg(long, env = "WAVECAST_RESPECT_UMASK", value_parser = FalseyValueParser::new())]
    respect_umask: bool,
}

impl UmaskArg {
    /// The site folder `folder`, written as this flag says.
    pub(crate) fn storage(&self, folder: impl Into<PathBuf>) -> FsStorage {
        FsStorage::new(folder).respect_umask(self.respect_umask)
    }
}

#[derive(Debug, Args)]
struct ChannelArg {
    /// The channel.
    #[arg(long, default_value = "stable")]
    channel: ChannelName,
}

#[derive(Debug, Args)]
struct RampArg {
    /// A time ramp instead of a fixed share, counted from now: points
    /// `SHARE@TIME` such as `1%@0h,5%@4h,25%@1d,100%@3d` (linear between points,
    /// never decreasing), or a duration such as `7d` for 0 % now to 100 % then.
    #[arg(long, value_name = "SPEC")]
    ramp: Option<Ramp>,
}

/// The default share of a new plan: `--rollout` or `--ramp`.
#[derive(Debug, Args)]
struct ShareArgs {
    /// Share of clients offered the release: `30%`, `30` or `0.5%` [default: 100%].
    #[arg(long, value_name = "PERCENT", conflicts_with = "ramp")]
    rollout: Option<BasisPoints>,
    #[command(flatten)]
    ramp: RampArg,
}

impl ShareArgs {
    fn share(&self) -> Option<Share> {
        share_from(self.rollout, self.ramp.ramp.as_ref())
    }
}

/// Rules and caps: shared by `publish`, `rollout` and `promote`.
#[derive(Debug, Args)]
struct PlanArgs {
    /// A rollout rule, `NAME: CONDITION; CONDITION -> ACTION`; repeat it for more, the
    /// first rule that matches a client applies.
    ///
    /// Conditions: `from < V`, `from >= V` (the installed version; never matches a
    /// fresh install), `KEY = VALUE`, `KEY in A|B|C`, `KEY ^= PREFIX`, `KEY ~ REGEX`
    /// (attributes the client declares). Actions: `mandatory`, `exclude`, a share
    /// (`20%`) or a ramp (`1%@0h,100%@2d`; a ramp given here or with --ramp restarts
    /// the plan's clock, `started_at`, at the time of the command). Examples:
    /// `legacy: from < 2.0 -> mandatory`, `eu-canary: region = eu; tenant in
    /// acme|globex -> 1%@0h,100%@2d`, `lab: server_id ^= lab- -> exclude`.
    #[arg(long = "rule", value_name = "RULE")]
    rules: Vec<Rule>,
    /// Make the update mandatory for clients below this version: adds the first
    /// rule `mandatory-below-V: from < V -> mandatory` (replacing an earlier one).
    #[arg(long, value_name = "VERSION", value_parser = wavecast_schema::parse_version)]
    min_version: Option<Version>,
    /// Cap the release at roughly N installs out of a fleet of --fleet M (an
    /// approximation: no server counts installs): a ceiling of floor(N * 10000 / M)
    /// basis points on every share; clients at or above it move back.
    ///
    /// The cap holds only as far as M is right and buckets spread evenly; it is a
    /// share of the fleet, not a count anyone enforces.
    #[arg(long, value_name = "N", requires = "fleet")]
    cap: Option<u64>,
    /// The fleet size the --cap count is a share of.
    #[arg(long, value_name = "M", requires = "cap")]
    fleet: Option<u64>,
}

impl PlanArgs {
    /// The change these flags make, with `share` as the new default share.
    fn change(
        &self,
        share: Option<Share>,
        clear_rules: bool,
        no_cap: bool,
    ) -> anyhow::Result<RolloutChange> {
        let rules = if clear_rules {
            Some(Vec::new())
        } else {
            (!self.rules.is_empty()).then(|| self.rules.clone())
        };
        let cap = match (self.cap, self.fleet) {
            (Some(installs), Some(fleet)) => {
                CapChange::Set(rollout_plan::fleet_cap(installs, fleet)?)
            }
            _ if no_cap => CapChange::Clear,
            _ => CapChange::Keep,
        };
        Ok(RolloutChange {
            share,
            rules,
            min_version: self.min_version.clone(),
            cap,
        })
    }
}

#[derive(Debug, Args)]
struct RolloutArgs {
    /// The version whose rollout changes.
    version: Version,
    /// The new share: `50%`, `50` or `0.5%`. Raising it only adds clients.
    #[arg(value_name = "PERCENT", conflicts_with = "ramp")]
    share: Option<BasisPoints>,
    #[command(flatten)]
    ramp: RampArg,
    #[command(flatten)]
    plan: PlanArgs,
    /// Remove every rule (given --rule flags replace the rules; none keeps them).
    #[arg(long, conflicts_with = "rules")]
    clear_rules: bool,
    /// Remove the cap.
    #[arg(long, conflicts_with_all = ["cap", "fleet"])]
    no_cap: bool,
    #[command(flatten)]
    floor: updater_cli::ClientFloorArg,
    #[command(flatten)]
    channel: ChannelArg,
    #[command(flatten)]
    site: SiteArgs,
}

#[derive(Debug, Args)]
struct ReleaseArgs {
    /// The release's version.
    version: Version,
    #[command(flatten)]
    channel: ChannelArg,
    #[command(flatten)]
    site: SiteArgs,
}

#[derive(Debug, Args)]
struct YankArgs {
    #[command(flatten)]
    release: ReleaseArgs,
    /// Take a yank back: the release is offered again under its rollout.
    #[arg(long)]
    undo: bool,
}

#[derive(Debug, Args)]
struct PromoteArgs {
    /// The version to promote.
    version: Version,
    /// The channel that has the release.
    #[arg(long, value_name = "CHANNEL")]
    from: ChannelName,
    /// The channel to add it to (created if it has no manifest yet).
    #[arg(long, value_name = "CHANNEL")]
    to: ChannelName,
    #[command(flatten)]
    share: ShareArgs,
    #[command(flatten)]
    plan: PlanArgs,
    /// Replace the release if the target channel has it (keeping its salt there).
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    site: SiteArgs,
}

#[derive(Debug, Args)]
struct PublishArgs {
    /// The release folder: the exact tree clients will have installed.
    release_dir: PathBuf,
    /// The release's semantic version.
    #[arg(long)]
    version: Version,
    #[command(flatten)]
    channel: ChannelArg,
    #[command(flatten)]
    share: ShareArgs,
    #[command(flatten)]
    plan: PlanArgs,
    /// Target triple the release is for, or `any` for every platform.
    #[arg(long, default_value = "any")]
    platform: Platform,
    /// Split the release into modules, each a subfolder: `--module core=bin
    /// --module assets=share`. Default: the whole folder as one module `app`
    /// (unless --image is given).
    #[arg(long = "module", value_name = "NAME=DIR")]
    modules: Vec<ModuleSpec>,
    /// Publish the file FILE of the release folder as an image module: clients write
    /// it whole into the inactive of two slots (A/B) and activate it with their
    /// on-activate hook, instead of unpacking it into the release tree. Its package
    /// is its zstd copy, and patches from earlier images are built as for any file.
    /// Every other file must belong to a --module.
    #[arg(long, value_name = "NAME=FILE", value_parser = ModuleSpec::image)]
    image: Option<ModuleSpec>,
    /// Release notes shown to users before they install.
    #[arg(long, conflicts_with = "notes_file")]
    notes: Option<String>,
    /// Read the release notes from a file.
    #[arg(long, value_name = "FILE")]
    notes_file: Option<PathBuf>,
    /// Product name shown to clients (kept from the existing manifest by default).
    #[arg(long)]
    product: Option<String>,
    /// An http(s) base URL that also serves this site's blobs (a CDN or mirror),
    /// signed into the manifest; clients try these in order before the host that
    /// served the manifest. Repeatable; replaces the channel's list (kept when absent).
    #[arg(long = "download-host", value_name = "URL", value_parser = parse_download_host)]
    download_hosts: Vec<String>,
    /// Replace the release if this version is already published for this platform
    /// (keeping its salt, with a new rollout from the flags).
    #[arg(long)]
    force: bool,
    /// gzip compression level, 0 (fastest) to 9 (smallest).
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(0..=9))]
    compression_level: u32,
    /// zstd level of the per-file copies clients fetch for changed files without a
    /// patch, 1 to 19: 19 is about 12 % smaller and 9 times slower than the default.
    #[arg(long, default_value_t = wavecast_delta::DEFAULT_COPY_LEVEL, value_parser = clap::value_parser!(i32).range(1..=19))]
    copy_level: i32,
    /// Build binary patches (zstd and bsdiff, the smaller kept) for changed files from
    /// the same files in the K previous releases of the channel; 0 builds none.
    #[arg(long, value_name = "K", default_value_t = 3)]
    patch_depth: usize,
    #[command(flatten)]
    floor: updater_cli::ClientFloorArg,
    #[command(flatten)]
    site: SiteArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => output::report_error(&error),
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Keygen(args) => keygen(&args, cli.quiet),
        Command::Publish(args) => publish_release(&args, cli.quiet),
        Command::Rollout(args) => change_rollout(&args, cli.quiet),
        Command::Pause(args) => pause_or_resume(&args, true, cli.quiet),
        Command::Resume(args) => pause_or_resume(&args, false, cli.quiet),
        Command::Yank(args) => yank(&args, cli.quiet),
        Command::Promote(args) => promote(&args, cli.quiet),
        Command::PublishUpdater(args) => updater_cli::run(&args, cli.quiet),
        Command::Simulate(args) => simulate::run(&args, cli.quiet),
        Command::Verify(args) => site_commands::verify_site(&args, cli.quiet),
        Command::Mirror(args) => site_commands::mirror_site(&args, cli.quiet),
        Command::Push(args) => push_cli::run(&args, cli.quiet),
        Command::Key(command) => key_commands::run(&command, cli.quiet),
    }
}

fn keygen(args: &KeygenArgs, quiet: bool) -> anyhow::Result<()> {
    let password = if args.unencrypted {
        output::warn(
            "the secret key is stored unencrypted; anyone who reads the file can sign releases",
        );
        None
    } else {
        let password = password_from(args.password_file.as_deref(), true)?;
        Some(password.context(
            "a password is needed to encrypt the secret key; set WAVECAST_KEY_PASSWORD, pass --password-file, or pass --unencrypted",
        )?)
    };
    let generated = keys::generate(&args.out, password.as_ref(), args.force)?;
    if !quiet {
        output::status(&format!(
            "generated key {}\n  secret key: {} (keep it private, owner-only)\n  public key: {} (give it to clients: wavecast-update init --pubkey)",
            generated.key_id,
            generated.secret_key.display(),
            generated.public_key.display()
        ));
    }
    Ok(())
}

/// A `--download-host` value, normalised (trailing `/`) and checked.
fn parse_download_host(text: &str) -> Result<String, String> {
    wavecast_schema::normalize_download_host(text)
}

fn publish_release(args: &PublishArgs, quiet: bool) -> anyhow::Result<()> {
    if !args.release_dir.is_dir() {
        bail!(UsageError(format!(
            "the release folder `{}` does not exist or is not a folder",
            args.release_dir.display()
        )));
    }
    let key = load_key(&args.site)?;
    let notes = match &args.notes_file {
        Some(path) => fs_err::read_to_string(path)?,
        None => args.notes.clone().unwrap_or_default(),
    };
    let options = PublishOptions {
        release_dir: args.release_dir.clone(),
        version: args.version.clone(),
        channel: args.channel.channel.clone(),
        platform: args.platform.clone(),
        modules: args.modules.iter().chain(&args.image).cloned().collect(),
        rollout: args.plan.change(args.share.share(), false, false)?,
        notes,
        product: args.product.clone(),
        download_hosts: (!args.download_hosts.is_empty()).then(|| args.download_hosts.clone()),
        min_client_version: args.floor.min_client_version.clone(),
        force: args.force,
        expires_in: args.site.expires_in,
        compression_level: args.compression_level,
        copy_level: args.copy_level,
        patch_depth: args.patch_depth,
        now: now()?,
    };
    let total = folder_size(&args.release_dir);
    let progress = output::Progress::bytes(total, "packaging", quiet || args.site.json);
    let report = publish::publish(&args.site.storage(), &key, &options, &progress)?;
    progress.finish();
    if args.site.json {
        output::json(&report_json(&report, &args.site.site));
    }
    if !quiet {
        print_report(&report, &args.version);
    }
    updater_cli::report_floor(&args.floor, &report.manifest, quiet);
    Ok(())
}

fn change_rollout(args: &RolloutArgs, quiet: bool) -> anyhow::Result<()> {
    let share = share_from(args.share, args.ramp.ramp.as_ref());
    let change = args.plan.change(share, args.clear_rules, args.no_cap)?;
    if change.is_empty() && args.floor.min_client_version.is_none() {
        return Err(wavecast_publisher::Error::NothingToChange(
            "give a share (`50%`), --ramp, --rule, --clear-rules, --min-version, --cap with --fleet, --no-cap, or --min-client-version",
        )
        .into());
    }
    let site = &args.site;
    let key = load_key(site)?;
    let now = now()?;
    let changed = rollout::change_release_and_floor(
        &site.storage(),
        signing(site, &key, now),
        &args.channel.channel,
        &args.version,
        args.floor.min_client_version.as_ref(),
        |release| {
            change.apply(&mut release.rollout, now);
            Ok(())
        },
    )?;
    report_change("rollout", &changed, site, quiet);
    updater_cli::report_floor(&args.floor, &changed.manifest, quiet);
    Ok(())
}

fn pause_or_resume(args: &ReleaseArgs, pause: bool, quiet: bool) -> anyhow::Result<()> {
    let site = &args.site;
    let key = load_key(site)?;
    let now = now()?;
    let channel = &args.channel.channel;
    let changed = rollout::change_release(
        &site.storage(),
        signing(site, &key, now),
        channel,
        &args.version,
        |release| {
            if pause {
                rollout_plan::pause(release, channel, now)
            } else {
                rollout_plan::resume(release, channel, now).map(drop)
            }
        },
    )?;
    report_change(
        if pause { "pause" } else { "resume" },
        &changed,
        site,
        quiet,
    );
    Ok(())
}

fn yank(args: &YankArgs, quiet: bool) -> anyhow::Result<()> {
    let site = &args.release.site;
    let key = load_key(site)?;
    let now = now()?;
    let channel = &args.release.channel.channel;
    let changed = rollout::change_release(
        &site.storage(),
        signing(site, &key, now),
        channel,
        &args.release.version,
        |release| rollout_plan::yank(release, channel, args.undo),
    )?;
    if !args.undo && rollout_plan::nothing_live(&changed.manifest) {
        output::warn(&format!(
            "no other release is live on channel `{channel}`: clients on {} have nowhere to go and stay on it until you publish another release",
            args.release.version
        ));
    }
    report_change("yank", &changed, site, quiet);
    Ok(())
}

fn promote(args: &PromoteArgs, quiet: bool) -> anyhow::Result<()> {
    let change = args.plan.change(args.share.share(), false, false)?;
    let site = &args.site;
    let key = load_key(site)?;
    let now = now()?;
    let promotion = rollout::promote(
        &site.storage(),
        signing(site, &key, now),
        &args.version,
        (&args.from, &args.to),
        &change,
        args.force,
    )?;
    let manifest = &promotion.manifest;
    if site.json {
        output::json(&serde_json::json!({
            "schema_version": 1,
            "command": "promote",
            "version": args.version,
            "from": args.from,
            "to": args.to,
            "channel": manifest.channel,
            "serial": manifest.serial,
            "published_at": manifest.published_at,
            "expires_at": manifest.expires_at,
            "replaced": promotion.replaced.is_some(),
            "rollout": promotion.release.rollout,
            "manifest": manifest_path(&site.site, &manifest.channel),
        }));
    }
    if !quiet {
        output::status(&format!(
            "{} promoted from {} to {}{}: {} (serial {})",
            args.version,
            args.from,
            args.to,
            if promotion.replaced.is_some() {
                ", replacing the release there"
            } else {
                ""
            },
            rollout_plan::summary(&promotion.release.rollout),
            manifest.serial
        ));
    }
    Ok(())
}

/// The one stderr line and the `--json` document of a release change.
fn report_change(command: &str, changed: &rollout::ReleaseChange, site: &SiteArgs, quiet: bool) {
    let manifest = &changed.manifest;
    let change = rollout_plan::describe(&changed.before.rollout, &changed.after.rollout);
    if site.json {
        output::json(&serde_json::json!({
            "schema_version": 1,
            "command": command,
            "version": changed.after.version,
            "channel": manifest.channel,
            "serial": manifest.serial,
            "published_at": manifest.published_at,
            "expires_at": manifest.expires_at,
            "change": change,
            "before": changed.before.rollout,
            "rollout": changed.after.rollout,
            "manifest": manifest_path(&site.site, &manifest.channel),
        }));
    }
    if !quiet {
        output::status(&format!(
            "{} on {}: {change} (serial {})",
            changed.after.version, manifest.channel, manifest.serial
        ));
    }
}

fn share_from(percent: Option<BasisPoints>, ramp: Option<&Ramp>) -> Option<Share> {
    percent
        .map(Share::fixed)
        .or_else(|| ramp.cloned().map(Share::ramped))
}

fn signing<'a>(site: &SiteArgs, signers: &'a Signers, now: Timestamp) -> Signing<'a> {
    Signing {
        signers,
        now,
        expires_in: site.expires_in,
    }
}

fn load_key(site: &SiteArgs) -> anyhow::Result<Signers> {
    load_signers(&site.keys, site.password_file.as_deref())
}

/// Loads and decrypts secret keys, asking for each one's password only if it is
/// encrypted.
pub(crate) fn load_signers(
    paths: &[PathBuf],
    password_file: Option<&Path>,
) -> anyhow::Result<Signers> {
    let mut keys = Vec::with_capacity(paths.len());
    for path in paths {
        keys.push(SigningKey::load(path, || {
            password_from(password_file, false).map_err(|error| {
                wavecast_publisher::Error::LoadKey {
                    path: path.clone(),
                    reason: format!("{error:#}"),
                }
            })
        })?);
    }
    Signers::new(keys).context("no secret key given")
}

fn manifest_path(site: &Path, channel: &ChannelName) -> PathBuf {
    site.join(wavecast_site::layout::channel_manifest(channel).as_str())
}

impl PackReporter for output::Progress {
    fn on_bytes(&self, bytes: u64) {
        self.advance(bytes);
    }
}

fn print_report(report: &PublishReport, version: &Version) {
    for (path, size) in &report.oversized {
        output::warn(&format!(
            "`{path}` is {}: GitHub Pages refuses files over 100 MB (other static hosts are fine)",
            output::bytes(*size)
        ));
    }
    for module in &report.modules {
        warn_about_links(module);
        output::status(&format!(
            "packaged {}: {} files{}, {} -> {} {}{}",
            module.name,
            module.files,
            match module.links {
                0 => String::new(),
                1 => ", 1 symbolic link".to_owned(),
                links => format!(", {links} symbolic links"),
            },
            output::bytes(module.unpacked_size),
            output::bytes(module.package_size),
            match module.kind {
                ModuleKind::Tree => "tar.gz",
                ModuleKind::Image => "zstd image",
            },
            if module.uploaded {
                ""
            } else {
                " (already on the site)"
            }
        ));
        if let Some(line) = delta_line(module, report.patch_time) {
            output::status(&line);
        }
    }
    let copies = &report.copies;
    output::status(&format!(
        "file copies: {} compressed ({} -> {} zstd) in {:.2}s of CPU, {} already on the site",
        copies.compressed,
        output::bytes(copies.raw_bytes),
        output::bytes(copies.packed_bytes),
        copies.compress_time.as_secs_f64(),
        copies.reused
    ));
    let manifest = &report.manifest;
    let rollout = manifest
        .release(version)
        .map_or_else(String::new, |release| {
            rollout_plan::summary(&release.rollout)
        });
    output::status(&format!(
        "published {version} at {rollout} to channel `{}` (serial {}, {} live releases, expires {}) in {:.2}s",
        manifest.channel,
        manifest.serial,
        manifest.releases.len(),
        manifest.expires_at,
        report.total_time.as_secs_f64()
    ));
}

/// One line on a module's patches, or `None` when nothing changed in it.
fn delta_line(module: &ModuleSummary, patch_time: std::time::Duration) -> Option<String> {
    let delta = &module.delta;
    if module.index_reused {
        return Some(format!(
            "patches for {}: the same content as an earlier release; its file index is reused",
            module.name
        ));
    }
    if delta.changed_files == 0 {
        return None;
    }
    let per_algorithm: Vec<String> = delta
        .kept
        .iter()
        .map(|(algorithm, stats)| {
            format!(
                "{} {}: {}",
                stats.count,
                algorithm.as_str(),
                output::bytes(stats.bytes)
            )
        })
        .collect();
    let skipped: Vec<String> = [
        (delta.without_counterpart, "without an old counterpart"),
        (delta.too_large, "too large to diff"),
        (delta.bases_missing, "whose old copy is not on the site"),
        (delta.not_smaller, "not smaller than the file"),
        (delta.unverified, "failed verification"),
    ]
    .into_iter()
    .filter(|(count, _)| *count > 0)
    .map(|(count, reason)| format!("{count} {reason}"))
    .collect();
    Some(format!(
        "patches for {}: {} changed files ({} as copies), {} patches{} = {}, from the previous release: {}; {} tried in {:.2}s ({:.2}s of CPU){}",
        module.name,
        delta.changed_files,
        output::bytes(delta.changed_packed_size),
        delta.patch_count(),
        if per_algorithm.is_empty() {
            String::new()
        } else {
            format!(" ({})", per_algorithm.join(", "))
        },
        output::bytes(delta.patch_bytes()),
        output::bytes(delta.from_previous),
        delta.candidates,
        patch_time.as_secs_f64(),
        delta.build_time.as_secs_f64(),
        if skipped.is_empty() {
            String::new()
        } else {
            format!("; skipped: {}", skipped.join(", "))
        },
    ))
}

/// How many paths a message lists before it says how many there are in all.
const LISTED_PATHS: usize = 5;

/// Warns about symbolic links leaving the release tree, and says that hard links
/// became copies: both are packaged, but the user should know what clients get.
fn warn_about_links(module: &ModuleSummary) {
    let listed = |items: Vec<String>| {
        let count = items.len();
        let mut text = items
            .into_iter()
            .take(LISTED_PATHS)
            .collect::<Vec<_>>()
            .join(", ");
        if count > LISTED_PATHS {
            text.push_str(&format!(", … ({count} in all)"));
        }
        text
    };
    if !module.outside_links.is_empty() {
        output::warn(&format!(
            "module {}: symbolic links that point outside the release tree are installed as they are and resolve on each client's machine: {}",
            module.name,
            listed(
                module
                    .outside_links
                    .iter()
                    .map(|(path, target)| format!("`{path}` -> `{target}`"))
                    .collect()
            )
        ));
    }
    if !module.hard_links.is_empty() {
        output::status(&format!(
            "note: module {}: hard links become copies (each name is packaged as a file of its own): {}",
            module.name,
            listed(
                module
                    .hard_links
                    .iter()
                    .map(|path| format!("`{path}`"))
                    .collect()
            )
        ));
    }
}

fn report_json(report: &PublishReport, site: &Path) -> serde_json::Value {
    let manifest = &report.manifest;
    serde_json::json!({
        "schema_version": 1,
        "channel": manifest.channel,
        "serial": manifest.serial,
        "expires_at": manifest.expires_at,
        "manifest": manifest_path(site, &manifest.channel),
        "oversized": report.oversized.iter().map(|(path, size)| serde_json::json!({
            "path": path,
            "size": size,
        })).collect::<Vec<_>>(),
        "releases": manifest.releases.iter().map(|release| serde_json::json!({
            "version": release.version,
            "rollout_basis_points": release.rollout.share.basis_points,
            "rollout": release.rollout,
        })).collect::<Vec<_>>(),
        "modules": report.modules.iter().map(|module| {
            let delta = &module.delta;
            serde_json::json!({
                "name": module.name,
                "kind": module.kind,
                "files": module.files,
                "links": module.links,
                "outside_links": module.outside_links.iter().map(|(path, target)| serde_json::json!({
                    "path": path,
                    "target": target,
                })).collect::<Vec<_>>(),
                "hard_links": module.hard_links,
                "unpacked_size": module.unpacked_size,
                "package_size": module.package_size,
                "uploaded": module.uploaded,
                "index_reused": module.index_reused,
                "patches": {
                    "changed_files": delta.changed_files,
                    "changed_packed_size": delta.changed_packed_size,
                    "without_counterpart": delta.without_counterpart,
                    "candidates": delta.candidates,
                    "too_large": delta.too_large,
                    "bases_missing": delta.bases_missing,
                    "not_smaller": delta.not_smaller,
                    "unverified": delta.unverified,
                    "count": delta.patch_count(),
                    "bytes": delta.patch_bytes(),
                    "by_algorithm": delta.kept.iter().map(|(algorithm, stats)| {
                        (algorithm.as_str().to_owned(), serde_json::json!({
                            "count": stats.count,
                            "bytes": stats.bytes,
                        }))
                    }).collect::<serde_json::Map<_, _>>(),
                    "patched_files": delta.patched_files,
                    "download_from_previous": delta.from_previous,
                    "uploaded": module.patches_uploaded,
                    "cpu_seconds": delta.build_time.as_secs_f64(),
                },
            })
        }).collect::<Vec<_>>(),
        "file_copies": {
            "compressed": report.copies.compressed,
            "raw_bytes": report.copies.raw_bytes,
            "packed_bytes": report.copies.packed_bytes,
            "already_on_site": report.copies.reused,
            "cpu_seconds": report.copies.compress_time.as_secs_f64(),
        },
        "packaging_seconds": report.packaging_time.as_secs_f64(),
        "patch_seconds": report.patch_time.as_secs_f64(),
        "work_seconds": report.work_time.as_secs_f64(),
        "total_seconds": report.total_time.as_secs_f64(),
    })
}

/// A mistake in how the command was called: exit code 2.
#[derive(Debug)]
struct UsageError(String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// The key password from a file, `WAVECAST_KEY_PASSWORD`, or a prompt on a terminal.
fn password_from(file: Option<&Path>, confirm: bool) -> anyhow::Result<Option<Password>> {
    if let Some(file) = file {
        let text = fs_err::read_to_string(file)?;
        let password = text.strip_suffix('\n').unwrap_or(&text);
        return Ok(Some(Password::new(password.to_owned())));
    }
    if let Ok(password) = std::env::var("WAVECAST_KEY_PASSWORD") {
        return Ok(Some(Password::new(password)));
    }
    if !std::io::stdin().is_terminal() {
        return Ok(None);
    }
    let password = rpassword::prompt_password("key password: ")?;
    if confirm && rpassword::prompt_password("again: ")? != password {
        bail!(UsageError("the passwords do not match".into()));
    }
    Ok(Some(Password::new(password)))
}

/// The clock, or `WAVECAST_NOW` when set, to whole seconds (manifests need no more).
pub(crate) fn now() -> anyhow::Result<Timestamp> {
    let now = match std::env::var("WAVECAST_NOW") {
        Ok(text) => text
            .parse()
            .with_context(|| format!("WAVECAST_NOW=`{text}` is not an RFC 3339 time"))?,
        Err(_) => Timestamp::now(),
    };
    Ok(Timestamp::from_second(now.as_second())?)
}

/// Parses a manifest lifetime such as `30d`, `12h` or `2w` (see
/// [`wavecast_schema::parse_duration`]); zero is refused.
pub(crate) fn parse_duration(text: &str) -> Result<SignedDuration, String> {
    match wavecast_schema::parse_duration(text) {
        Ok(0) => Err(format!(
            "`{text}` is zero; a manifest must stay valid for some time"
        )),
        Ok(seconds) => i64::try_from(seconds)
            .map(SignedDuration::from_secs)
            .map_err(|_| format!("`{text}` is too long")),
        Err(error) => Err(error.to_string()),
    }
}

/// Total size of the regular files under `dir`, for the progress bar. Unreadable
/// entries count as zero here; packaging reports them properly.
fn folder_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => folder_size(&entry.path()),
            Ok(kind) if kind.is_file() => entry.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(
            parse_duration("30d").unwrap(),
            SignedDuration::from_hours(720)
        );
        assert_eq!(
            parse_duration("90m").unwrap(),
            SignedDuration::from_mins(90)
        );
        for bad in ["", "d", "30", "30y", "-1d", "0h"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }
}
