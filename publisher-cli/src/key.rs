//! `wavecast key`: the site's chain of trust.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use jiff::SignedDuration;
use wavecast_publisher::channel::{self, Signing};
use wavecast_publisher::trust::{self, Rotation};
use wavecast_publisher::verify;
use wavecast_schema::{ChannelName, KeySet, PublicKey, Root};
use wavecast_site::Storage;

use crate::args::{UmaskArg, now, parse_duration};
use crate::output;
use crate::secret_keys::load_signers;

#[derive(Debug, Subcommand)]
pub(crate) enum KeyCommand {
    /// Write the site's next root (roots/<n+1>.json): new root keys, release keys or
    /// thresholds. A threshold of the current root keys and of the new root keys must
    /// sign it; clients walk to it when a manifest names it.
    #[command(after_help = output::EXIT_CODES)]
    Rotate(Box<RotateArgs>),
}

#[derive(Debug, Args)]
pub(crate) struct RotateArgs {
    /// The site folder.
    #[arg(long, value_name = "SITE")]
    site: PathBuf,
    /// A secret root key that signs the new root: one of the current root's root
    /// keys, or of the new root's. Repeat it to reach both thresholds.
    #[arg(long = "sign", value_name = "KEY", required = true)]
    sign: Vec<PathBuf>,
    /// The new root keys (a `.pub` file or the base64 key); repeat for several.
    /// Without it the root keys stay.
    #[arg(long = "root-key", value_name = "PUBKEY")]
    root_keys: Vec<String>,
    /// How many root keys must sign the next root; unchanged if not given.
    #[arg(long, value_name = "K")]
    root_threshold: Option<u32>,
    /// The new release keys, which sign manifests; repeat for several. Without it
    /// the release keys stay.
    #[arg(long = "release-key", value_name = "PUBKEY")]
    release_keys: Vec<String>,
    /// How many release keys must sign a manifest; unchanged if not given.
    #[arg(long, value_name = "K")]
    release_threshold: Option<u32>,
    /// Sign every channel again at once with these secret release keys of the new
    /// root (next serial), so clients move to the new root on their next check.
    /// Do this when a release key leaked. Repeat for a threshold.
    #[arg(long = "resign-with", value_name = "KEY")]
    resign_with: Vec<PathBuf>,
    /// How long re-signed manifests stay valid.
    #[arg(long, value_name = "DURATION", default_value = "30d", value_parser = parse_duration)]
    expires_in: SignedDuration,
    /// Read the keys' password from this file instead of WAVECAST_KEY_PASSWORD.
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
    #[command(flatten)]
    umask: UmaskArg,
    /// Print a JSON summary on stdout: the new root and the channels signed again.
    #[arg(long)]
    json: bool,
}

/// `wavecast key`.
pub(crate) fn run(command: &KeyCommand) -> anyhow::Result<()> {
    match command {
        KeyCommand::Rotate(args) => rotate(args),
    }
}

fn rotate(args: &RotateArgs) -> anyhow::Result<()> {
    let public_keys = |arguments: &[String]| -> anyhow::Result<Vec<PublicKey>> {
        Ok(arguments
            .iter()
            .map(|argument| verify::load_public_key(argument))
            .collect::<Result<_, _>>()?)
    };
    let rotation = Rotation {
        root_keys: public_keys(&args.root_keys)?,
        root_threshold: args.root_threshold,
        release_keys: public_keys(&args.release_keys)?,
        release_threshold: args.release_threshold,
    };
    let storage = args.umask.storage(&args.site);
    let signers = load_signers(&args.sign, args.password_file.as_deref())?;
    let root = trust::rotate(&storage, &signers, &rotation)?;
    output::result(
        &format!("wrote roots/{}.json\n{}", root.version, describe(&root)),
        args.json,
    );
    let mut resigned = Vec::new();
    if args.resign_with.is_empty() {
        if args.json {
            print_rotation(&root, &resigned);
        }
        if !args.json {
            output::status(&format!(
                "clients move to root v{} when a manifest names it: the next publish, rollout, pause or yank signed with its release keys (or rerun with --resign-with to sign every channel now)",
                root.version
            ));
        }
        return Ok(());
    }
    let release_signers = load_signers(&args.resign_with, args.password_file.as_deref())?;
    let signing = Signing {
        signers: &release_signers,
        now: now()?,
        expires_in: args.expires_in,
    };
    for channel in channels(&storage)? {
        let manifest = channel::change_manifest(&storage, signing, &channel, |_| Ok(()))?;
        output::result(
            &format!(
                "signed {channel} again under root v{} (serial {})",
                manifest.root_version, manifest.serial
            ),
            args.json,
        );
        resigned.push((channel, manifest.serial));
    }
    if args.json {
        print_rotation(&root, &resigned);
    }
    Ok(())
}

/// The `key rotate --json` document.
fn print_rotation(root: &wavecast_schema::Root, resigned: &[(ChannelName, u64)]) {
    let key_ids = |keys: &[PublicKey]| -> Vec<String> {
        keys.iter().map(|key| key.key_id().to_string()).collect()
    };
    output::json(&serde_json::json!({
        "schema_version": 1,
        "root_version": root.version,
        "path": format!("roots/{}.json", root.version),
        "root_keys": key_ids(&root.root.keys),
        "root_threshold": root.root.threshold,
        "release_keys": key_ids(&root.release.keys),
        "release_threshold": root.release.threshold,
        "resigned": resigned.iter().map(|(channel, serial)| serde_json::json!({
            "channel": channel.as_str(),
            "serial": serial,
        })).collect::<Vec<_>>(),
    }));
}

/// The channels the site publishes.
fn channels(storage: &dyn Storage) -> anyhow::Result<Vec<ChannelName>> {
    let folder = "channels".parse().expect("a valid path");
    Ok(storage
        .list(&folder)?
        .iter()
        .filter_map(|path| {
            let name = path.as_str().strip_prefix("channels/")?;
            name.strip_suffix(".json")?.parse().ok()
        })
        .collect())
}

fn describe(root: &Root) -> String {
    let set = |name: &str, set: &KeySet| {
        let keys: Vec<&str> = set.keys.iter().map(PublicKey::to_base64).collect();
        format!(
            "  {name} keys: {} of {}\n    {}",
            set.threshold,
            set.keys.len(),
            keys.join("\n    ")
        )
    };
    format!(
        "{}\n{}",
        set("root", &root.root),
        set("release", &root.release)
    )
}
