//! `wavecast sign`: sign the changes made with `--sign-later`, and publish them.

use std::path::PathBuf;

use clap::Args;
use wavecast_publisher::keys::Signers;
use wavecast_publisher::sign::{self, Pending};
use wavecast_schema::KeyId;

use crate::args::{UmaskArg, now};
use crate::output;
use crate::secret_keys::load_signers;

#[derive(Debug, Args)]
pub(crate) struct SignArgs {
    /// The site folder, with the pending manifests (channels/*.json.unsigned).
    #[arg(long, value_name = "SITE")]
    site: PathBuf,
    /// A secret release key of the site's newest root; repeat it for several. Keys
    /// on other machines sign there, one run after another. Without any, pending
    /// manifests that have enough signatures are published.
    #[arg(long = "key", value_name = "KEY")]
    keys: Vec<PathBuf>,
    /// Only add the signatures, publish nothing: for a copy of the site (its
    /// channels/ and roots/) on a machine without the blobs, such as an air-gapped
    /// one. Publish later with `wavecast sign --site SITE` where the site is.
    #[arg(long)]
    no_publish: bool,
    /// Read the keys' password from this file instead of WAVECAST_KEY_PASSWORD.
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
    #[command(flatten)]
    umask: UmaskArg,
    /// Print a JSON document on stdout: each pending manifest, who signed it and
    /// whether it is live.
    #[arg(long)]
    json: bool,
}

/// `wavecast sign`.
pub(crate) fn run(args: &SignArgs) -> anyhow::Result<()> {
    let signers = if args.keys.is_empty() {
        Signers::later()
    } else {
        load_signers(&args.keys, args.password_file.as_deref())?
    };
    let storage = args.umask.storage(&args.site);
    let done = sign::sign_pending(&storage, &signers, now()?, !args.no_publish)?;
    if args.json {
        output::json(&serde_json::json!({
            "schema_version": 1,
            "pending": done.iter().map(|pending| serde_json::json!({
                "channel": pending.manifest.channel,
                "serial": pending.manifest.serial,
                "expires_at": pending.manifest.expires_at,
                "threshold": pending.threshold,
                "signed": ids(&pending.signed),
                "not_signed": ids(&pending.unsigned),
                "added": ids(&pending.added),
                "missing": pending.missing(),
                "published": pending.published,
            })).collect::<Vec<_>>(),
        }));
    }
    if done.is_empty() {
        output::result(
            "nothing to sign: no channel has a change made with --sign-later",
            args.json,
        );
    }
    for pending in &done {
        output::result(&describe(pending), args.json);
    }
    Ok(())
}

/// One pending manifest: what it is, who has signed, and where it stands.
fn describe(pending: &Pending) -> String {
    let manifest = &pending.manifest;
    let versions: Vec<String> = manifest
        .releases
        .iter()
        .map(|release| release.version.to_string())
        .collect();
    let mut text = format!(
        "{} serial {} (releases: {}; expires at {}): signed by {} of {} release keys needed",
        manifest.channel,
        manifest.serial,
        if versions.is_empty() {
            "none".to_owned()
        } else {
            versions.join(", ")
        },
        manifest.expires_at,
        pending.signed.len(),
        pending.threshold,
    );
    for id in &pending.signed {
        let new = if pending.added.contains(id) {
            " (now)"
        } else {
            ""
        };
        text.push_str(&format!("\n    signed      {id}{new}"));
    }
    for id in &pending.unsigned {
        text.push_str(&format!("\n    not signed  {id}"));
    }
    text.push('\n');
    text.push_str(&if pending.published {
        format!("published channels/{}.json", manifest.channel)
    } else if pending.missing() > 0 {
        format!(
            "not live yet: {} more release key{} must sign (`wavecast sign --site SITE --key KEY`)",
            pending.missing(),
            if pending.missing() == 1 { "" } else { "s" }
        )
    } else {
        "signed by enough release keys; publish it with `wavecast sign --site SITE` where the site is".to_owned()
    });
    text
}

/// Key ids as strings.
fn ids(ids: &[KeyId]) -> Vec<String> {
    ids.iter().map(ToString::to_string).collect()
}
