//! Secret keys: loading and decrypting the keys a command signs with, and their
//! password, from `--password-file`, `WAVECAST_KEY_PASSWORD` or a prompt. Prompting
//! is the CLI's work; the library asks for a password through a closure.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use wavecast_publisher::keys::{Password, Signers, SigningKey};

use crate::output::UsageError;

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

/// The key password from a file, `WAVECAST_KEY_PASSWORD`, or a prompt on a terminal.
pub(crate) fn password_from(
    file: Option<&Path>,
    confirm: bool,
) -> anyhow::Result<Option<Password>> {
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
