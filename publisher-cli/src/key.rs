//! `wavecast key`: the site's chain of trust.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use jiff::{SignedDuration, Timestamp};
use wavecast_publisher::channel::{self, Signing};
use wavecast_publisher::root_draft;
use wavecast_publisher::trust::{self, Rotation};
use wavecast_publisher::verify;
use wavecast_schema::{ChannelName, CheckedDraft, KeyId, KeySet, PublicKey, Root, Signoff};

use crate::args::{UmaskArg, now, parse_duration};
use crate::output;
use crate::secret_keys::load_signers;

#[derive(Debug, Subcommand)]
pub(crate) enum KeyCommand {
    /// Write the site's next root (roots/<n+1>.json) with every key at hand: new root
    /// keys, release keys or thresholds. A threshold of the current root keys and of
    /// the new root keys must sign it; clients walk to it when a manifest names it.
    /// When the keys are in different hands, use draft-root, sign-root and
    /// publish-root instead.
    #[command(after_help = output::EXIT_CODES)]
    Rotate(Box<RotateArgs>),
    /// Draft the site's next root, unsigned, into a file that each root key holder
    /// signs on their own machine (`sign-root`) before `publish-root` puts it on the
    /// site. Prints the new root and who must sign it.
    #[command(after_help = output::EXIT_CODES)]
    DraftRoot(Box<DraftRootArgs>),
    /// Add one signature to a root draft. Needs only the draft file and the key, no
    /// site: run it on each holder's machine, offline. Prints what the new root
    /// says, who has signed and who is still missing. Signing twice with one key
    /// adds nothing; a key that is not a root key of the current or the new root is
    /// refused and the draft is left as it was.
    #[command(after_help = output::EXIT_CODES)]
    SignRoot(SignRootArgs),
    /// Publish a signed root draft as roots/<n>.json, once a threshold of the
    /// current root keys and of the new root keys have signed it, and only if the
    /// site's newest root is still the one the draft follows.
    #[command(after_help = output::EXIT_CODES)]
    PublishRoot(PublishRootArgs),
}

/// The new root's keys, thresholds and expiry, as `rotate` and `draft-root` take them.
#[derive(Debug, Args)]
pub(crate) struct NextRootArgs {
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
}

impl NextRootArgs {
    fn rotation(&self, expires_at: Timestamp) -> anyhow::Result<Rotation> {
        let public_keys = |arguments: &[String]| -> anyhow::Result<Vec<PublicKey>> {
            Ok(arguments
                .iter()
                .map(|argument| verify::load_public_key(argument))
                .collect::<Result<_, _>>()?)
        };
        Ok(Rotation {
            root_keys: public_keys(&self.root_keys)?,
            root_threshold: self.root_threshold,
            release_keys: public_keys(&self.release_keys)?,
            release_threshold: self.release_threshold,
            expires_at,
        })
    }
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
    #[command(flatten)]
    next: NextRootArgs,
    /// How long the new root stays valid: past it, clients refuse every manifest
    /// until a newer root replaces it.
    #[arg(long, value_name = "DURATION", default_value = "365d", value_parser = parse_duration)]
    root_expires_in: SignedDuration,
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

#[derive(Debug, Args)]
pub(crate) struct DraftRootArgs {
    /// The site folder, whose newest root the draft follows.
    #[arg(long, value_name = "SITE")]
    site: PathBuf,
    #[command(flatten)]
    next: NextRootArgs,
    /// How long the new root stays valid once published: past it, clients refuse
    /// every manifest until a newer root replaces it.
    #[arg(long, value_name = "DURATION", default_value = "365d", value_parser = parse_duration)]
    expires_in: SignedDuration,
    /// The draft file to write; an existing one is kept unless --force.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Replace an existing draft file (and the signatures it gathered).
    #[arg(long)]
    force: bool,
    /// Print a JSON document on stdout: the new root and who must sign it.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct SignRootArgs {
    /// The draft file, rewritten in place with the new signature.
    #[arg(value_name = "DRAFT")]
    draft: PathBuf,
    /// The holder's secret root key.
    #[arg(long, value_name = "KEY")]
    key: PathBuf,
    /// Read the key's password from this file instead of WAVECAST_KEY_PASSWORD.
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
    /// Print a JSON document on stdout: who has signed and what is missing.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct PublishRootArgs {
    /// The signed draft file.
    #[arg(value_name = "DRAFT")]
    draft: PathBuf,
    /// The site folder.
    #[arg(long, value_name = "SITE")]
    site: PathBuf,
    #[command(flatten)]
    umask: UmaskArg,
    /// Print a JSON document on stdout: the root published and its signers.
    #[arg(long)]
    json: bool,
}

/// `wavecast key`.
pub(crate) fn run(command: &KeyCommand) -> anyhow::Result<()> {
    match command {
        KeyCommand::Rotate(args) => rotate(args),
        KeyCommand::DraftRoot(args) => draft_root(args),
        KeyCommand::SignRoot(args) => sign_root(args),
        KeyCommand::PublishRoot(args) => publish_root(args),
    }
}

/// When a root made now, valid for `valid_for`, expires.
fn expiry(now: Timestamp, valid_for: SignedDuration) -> Timestamp {
    now.saturating_add(valid_for).unwrap_or(Timestamp::MAX)
}

fn rotate(args: &RotateArgs) -> anyhow::Result<()> {
    let now = now()?;
    let rotation = args.next.rotation(expiry(now, args.root_expires_in))?;
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
        now,
        expires_in: args.expires_in,
    };
    for channel in channel::channels(&storage)? {
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

fn draft_root(args: &DraftRootArgs) -> anyhow::Result<()> {
    let now = now()?;
    let rotation = args.next.rotation(expiry(now, args.expires_in))?;
    let storage = wavecast_site::FsStorage::new(&args.site);
    let draft = root_draft::draft(&storage, &rotation, now)?;
    root_draft::write(&args.out, &draft.draft, args.force)?;
    if args.json {
        output::json(&draft_json(&draft, &args.out, false));
    }
    report_draft(
        &format!("wrote the draft of root v{}", draft.next.version),
        &args.out,
        &draft,
        args.json,
    );
    Ok(())
}

fn sign_root(args: &SignRootArgs) -> anyhow::Result<()> {
    let mut draft = root_draft::read(&args.draft)?;
    let key = load_signers(
        std::slice::from_ref(&args.key),
        args.password_file.as_deref(),
    )?;
    let key = key.first().expect("load_signers loads at least one key");
    let added = root_draft::sign(&mut draft, &args.draft, key)?;
    let done = if added {
        root_draft::write(&args.draft, &draft.draft, true)?;
        format!(
            "signed root v{} with key {}",
            draft.next.version,
            key.key_id()
        )
    } else {
        format!(
            "key {} has signed root v{} already; the draft is unchanged",
            key.key_id(),
            draft.next.version
        )
    };
    if args.json {
        let mut document = draft_json(&draft, &args.draft, false);
        document["signed_with"] = key.key_id().into();
        document["added"] = added.into();
        output::json(&document);
    }
    report_draft(&done, &args.draft, &draft, args.json);
    Ok(())
}

fn publish_root(args: &PublishRootArgs) -> anyhow::Result<()> {
    let draft = root_draft::read(&args.draft)?;
    let storage = args.umask.storage(&args.site);
    if let Err(error) = root_draft::publish(&storage, &draft, now()?) {
        // Who is missing is the answer to a refused publish; it goes with the error.
        if !args.json {
            output::status(&status_text(&draft));
        }
        return Err(error.into());
    }
    if args.json {
        output::json(&draft_json(&draft, &args.draft, true));
    }
    output::result(
        &format!(
            "wrote roots/{}.json\n{}\n{}",
            draft.next.version,
            describe(&draft.next),
            status_text(&draft)
        ),
        args.json,
    );
    output::status(&format!(
        "clients move to root v{} when a manifest names it: the next publish, rollout, pause or yank signed with its release keys",
        draft.next.version
    ));
    Ok(())
}

/// What a draft step did, the new root and who has signed, then the next step.
/// Under `--json` the caller prints the document.
fn report_draft(done: &str, path: &std::path::Path, draft: &CheckedDraft, json: bool) {
    output::result(
        &format!(
            "{done} ({})\n{}\n{}",
            path.display(),
            describe(&draft.next),
            status_text(draft)
        ),
        json,
    );
    if !json {
        output::status(&if draft.status().complete() {
            format!(
                "next: `wavecast key publish-root {} --site SITE`",
                path.display()
            )
        } else {
            format!(
                "next: each holder signs with `wavecast key sign-root {} --key KEY` on their own machine",
                path.display()
            )
        });
    }
}

/// Who has signed a draft and what is still missing, for both thresholds.
fn status_text(draft: &CheckedDraft) -> String {
    let status = draft.status();
    let signoff = |what: &str, signoff: &Signoff| {
        let mut text = format!(
            "  root keys of {what} root v{} ({} of {} must sign):",
            signoff.root_version,
            signoff.threshold,
            signoff.signed.len() + signoff.unsigned.len()
        );
        for id in &signoff.signed {
            text.push_str(&format!("\n    signed      {id}"));
        }
        for id in &signoff.unsigned {
            text.push_str(&format!("\n    not signed  {id}"));
        }
        text
    };
    let mut missing = Vec::new();
    for (what, signoff) in [("current", &status.old), ("new", &status.new)] {
        if signoff.missing() > 0 {
            missing.push(format!(
                "{} more by the {what} root v{}'s root keys ({})",
                signoff.missing(),
                signoff.root_version,
                ids(&signoff.unsigned)
            ));
        }
    }
    let summary = if missing.is_empty() {
        "both thresholds are met: ready to publish".to_owned()
    } else {
        format!("still missing: {}", missing.join("; "))
    };
    format!(
        "{}\n{}\n{summary}",
        signoff("the current", &status.old),
        signoff("the new", &status.new)
    )
}

/// The `draft-root`, `sign-root` and `publish-root --json` document.
fn draft_json(draft: &CheckedDraft, path: &std::path::Path, published: bool) -> serde_json::Value {
    let status = draft.status();
    let signoff = |signoff: &Signoff| {
        serde_json::json!({
            "root_version": signoff.root_version,
            "threshold": signoff.threshold,
            "signed": signoff.signed.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "not_signed": signoff.unsigned.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "missing": signoff.missing(),
        })
    };
    serde_json::json!({
        "schema_version": 1,
        "draft": path,
        "root_version": draft.next.version,
        "expires_at": draft.next.expires_at,
        "complete": status.complete(),
        "published": published.then(|| format!("roots/{}.json", draft.next.version)),
        "current_root_keys": signoff(&status.old),
        "new_root_keys": signoff(&status.new),
    })
}

/// Key ids separated by commas.
fn ids(ids: &[KeyId]) -> String {
    ids.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
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
        "expires_at": root.expires_at,
        "resigned": resigned.iter().map(|(channel, serial)| serde_json::json!({
            "channel": channel.as_str(),
            "serial": serial,
        })).collect::<Vec<_>>(),
    }));
}

fn describe(root: &Root) -> String {
    let set = |name: &str, set: &KeySet| {
        let keys: Vec<String> = set
            .keys
            .iter()
            .map(|key| format!("{} {}", key.key_id(), key.to_base64()))
            .collect();
        format!(
            "  {name} keys: {} of {}\n    {}",
            set.threshold,
            set.keys.len(),
            keys.join("\n    ")
        )
    };
    let expiry = root.expires_at.map_or_else(
        || "  never expires".to_owned(),
        |expires_at| format!("  expires at {expires_at}"),
    );
    format!(
        "{}\n{}\n{expiry}",
        set("root", &root.root),
        set("release", &root.release)
    )
}
