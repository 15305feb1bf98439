//! `wavecast`: the publisher CLI.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use jiff::{SignedDuration, Timestamp};
use semver::Version;
use wavecast_publisher::keys::{self, Password, SigningKey};
use wavecast_publisher::package::{ModuleSpec, PackReporter};
use wavecast_publisher::publish::{self, PublishOptions, PublishReport};
use wavecast_schema::{BasisPoints, ChannelName, Platform};
use wavecast_site::FsStorage;

mod output;

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  operational failure (I/O, signing, site storage)
  2  usage or configuration error (bad arguments, existing key or version, wrong password)

Environment:
  WAVECAST_KEY_PASSWORD  password of the secret key (keygen encrypts with it)
  WAVECAST_NOW           RFC 3339 time to use instead of the clock (for tests)
  WAVECAST_NO_PROGRESS   hide progress bars";

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

#[derive(Debug, Args)]
struct PublishArgs {
    /// The release folder: the exact tree clients will have installed.
    release_dir: PathBuf,
    /// The release's semantic version.
    #[arg(long)]
    version: Version,
    /// The site folder to publish into (created if missing).
    #[arg(long, value_name = "SITE")]
    site: PathBuf,
    /// The minisign secret key that signs the manifest.
    #[arg(long, value_name = "KEY")]
    key: PathBuf,
    /// The channel to publish to.
    #[arg(long, default_value = "stable")]
    channel: ChannelName,
    /// Share of clients offered the release: `30%`, `30` or `0.5%`.
    #[arg(long, default_value = "100%", value_name = "PERCENT")]
    rollout: BasisPoints,
    /// Target triple the release is for, or `any` for every platform.
    #[arg(long, default_value = "any")]
    platform: Platform,
    /// Split the release into modules, each a subfolder: `--module core=bin
    /// --module assets=share`. Default: the whole folder as one module `app`.
    #[arg(long = "module", value_name = "NAME=DIR")]
    modules: Vec<ModuleSpec>,
    /// Release notes shown to users before they install.
    #[arg(long, conflicts_with = "notes_file")]
    notes: Option<String>,
    /// Read the release notes from a file.
    #[arg(long, value_name = "FILE")]
    notes_file: Option<PathBuf>,
    /// Product name shown to clients (kept from the existing manifest by default).
    #[arg(long)]
    product: Option<String>,
    /// Replace the release if this version is already published for this platform.
    #[arg(long)]
    force: bool,
    /// How long the signed manifest stays valid: `30d`, `12h`, `2w`.
    #[arg(long, default_value = "30d", value_parser = parse_duration)]
    expires_in: SignedDuration,
    /// gzip compression level, 0 (fastest) to 9 (smallest).
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(0..=9))]
    compression_level: u32,
    /// Read the key's password from this file instead of WAVECAST_KEY_PASSWORD.
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
    /// Print a JSON summary on stdout.
    #[arg(long)]
    json: bool,
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

fn publish_release(args: &PublishArgs, quiet: bool) -> anyhow::Result<()> {
    if !args.release_dir.is_dir() {
        bail!(UsageError(format!(
            "the release folder `{}` does not exist or is not a folder",
            args.release_dir.display()
        )));
    }
    let key = SigningKey::load(&args.key, || {
        password_from(args.password_file.as_deref(), false).map_err(|error| {
            wavecast_publisher::Error::LoadKey {
                path: args.key.clone(),
                reason: format!("{error:#}"),
            }
        })
    })?;
    let notes = match &args.notes_file {
        Some(path) => fs_err::read_to_string(path)?,
        None => args.notes.clone().unwrap_or_default(),
    };
    let options = PublishOptions {
        release_dir: args.release_dir.clone(),
        version: args.version.clone(),
        channel: args.channel.clone(),
        platform: args.platform.clone(),
        modules: args.modules.clone(),
        rollout: args.rollout,
        notes,
        product: args.product.clone(),
        force: args.force,
        expires_in: args.expires_in,
        compression_level: args.compression_level,
        now: now()?,
    };
    let total = folder_size(&args.release_dir);
    let progress = output::Progress::bytes(total, "packaging", quiet || args.json);
    let report = publish::publish(&FsStorage::new(&args.site), &key, &options, &progress)?;
    progress.finish();
    if args.json {
        output::json(&report_json(&report, &args.site));
    }
    if !quiet {
        print_report(&report, &args.version, args.rollout);
    }
    Ok(())
}

impl PackReporter for output::Progress {
    fn on_bytes(&self, bytes: u64) {
        self.advance(bytes);
    }
}

fn print_report(report: &PublishReport, version: &Version, rollout: BasisPoints) {
    for module in &report.modules {
        output::status(&format!(
            "packaged {}: {} files, {} -> {} tar.gz{}",
            module.name,
            module.files,
            output::bytes(module.unpacked_size),
            output::bytes(module.package_size),
            if module.uploaded {
                ""
            } else {
                " (already on the site)"
            }
        ));
    }
    let manifest = &report.manifest;
    output::status(&format!(
        "published {version} at {rollout} to channel `{}` (serial {}, {} live releases, expires {}) in {:.2}s",
        manifest.channel,
        manifest.serial,
        manifest.releases.len(),
        manifest.expires_at,
        report.total_time.as_secs_f64()
    ));
}

fn report_json(report: &PublishReport, site: &Path) -> serde_json::Value {
    let manifest = &report.manifest;
    serde_json::json!({
        "schema_version": 1,
        "channel": manifest.channel,
        "serial": manifest.serial,
        "expires_at": manifest.expires_at,
        "manifest": site.join(wavecast_site::layout::channel_manifest(&manifest.channel).as_str()),
        "releases": manifest.releases.iter().map(|release| serde_json::json!({
            "version": release.version,
            "rollout_basis_points": release.rollout.share.basis_points,
        })).collect::<Vec<_>>(),
        "modules": report.modules.iter().map(|module| serde_json::json!({
            "name": module.name,
            "files": module.files,
            "unpacked_size": module.unpacked_size,
            "package_size": module.package_size,
            "uploaded": module.uploaded,
        })).collect::<Vec<_>>(),
        "packaging_seconds": report.packaging_time.as_secs_f64(),
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
fn now() -> anyhow::Result<Timestamp> {
    let now = match std::env::var("WAVECAST_NOW") {
        Ok(text) => text
            .parse()
            .with_context(|| format!("WAVECAST_NOW=`{text}` is not an RFC 3339 time"))?,
        Err(_) => Timestamp::now(),
    };
    Ok(Timestamp::from_second(now.as_second())?)
}

/// Parses `30d`, `12h`, `90m`, `45s` or `2w`.
fn parse_duration(text: &str) -> Result<SignedDuration, String> {
    let invalid = || format!("`{text}` is not a duration like `30d`, `12h`, `90m` or `2w`");
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(invalid)?;
    let (number, unit) = text.split_at(split);
    let number: i64 = number.parse().map_err(|_| invalid())?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(invalid()),
    };
    match number.checked_mul(seconds) {
        Some(seconds) if seconds > 0 => Ok(SignedDuration::from_secs(seconds)),
        _ => Err(invalid()),
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
