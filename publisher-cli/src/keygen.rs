//! `wavecast keygen`: a new minisign key pair.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use wavecast_publisher::keys;

use crate::{output, secret_keys};

#[derive(Debug, Args)]
pub(crate) struct KeygenArgs {
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
    /// Print a JSON summary on stdout: the key id and both files.
    #[arg(long)]
    json: bool,
}

/// `wavecast keygen`.
pub(crate) fn run(args: &KeygenArgs) -> anyhow::Result<()> {
    let password = if args.unencrypted {
        output::warn(
            "the secret key is stored unencrypted; anyone who reads the file can sign releases",
        );
        None
    } else {
        let password = secret_keys::password_from(args.password_file.as_deref(), true)?;
        Some(password.context(
            "a password is needed to encrypt the secret key; set WAVECAST_KEY_PASSWORD, pass --password-file, or pass --unencrypted",
        )?)
    };
    let generated = keys::generate(&args.out, password.as_ref(), args.force)?;
    if args.json {
        output::json(&serde_json::json!({
            "schema_version": 1,
            "key_id": generated.key_id,
            "secret_key": generated.secret_key,
            "public_key": generated.public_key,
        }));
    } else {
        output::result(
            &format!(
                "generated key {}\n  secret key: {} (keep it private, owner-only)\n  public key: {} (give it to clients: wavecast-update init --pubkey)",
                generated.key_id,
                generated.secret_key.display(),
                generated.public_key.display()
            ),
            false,
        );
    }
    Ok(())
}
