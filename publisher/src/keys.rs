//! Signing keys in minisign's file formats, so the stock `minisign` CLI can use them.

use std::fmt;
use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};

use minisign::{KeyPair, PublicKey, SecretKey, SecretKeyBox, SignatureBox};

use crate::error::{Error, Result};

/// File name of the secret key written by [`generate`].
pub const SECRET_KEY_FILE: &str = "wavecast.key";
/// File name of the public key written by [`generate`].
pub const PUBLIC_KEY_FILE: &str = "wavecast.pub";

/// A password for a secret key. Its `Debug` output never shows the password.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// Wraps a password.
    pub fn new(password: String) -> Self {
        Self(password)
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// A decrypted secret key with its public half. `Debug` shows the key id only.
pub struct SigningKey {
    secret: SecretKey,
    public: PublicKey,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("key_id", &self.key_id())
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// The keys a command signs with, each loaded and decrypted: at least one, or none
/// at all for a change signed later ([`Signers::later`]). A site whose root asks for
/// k-of-n release keys needs k of them here.
#[derive(Debug)]
pub struct Signers(Vec<SigningKey>);

impl Signers {
    /// The keys, in the order given; `None` when there are none.
    pub fn new(keys: Vec<SigningKey>) -> Option<Self> {
        (!keys.is_empty()).then_some(Self(keys))
    }

    /// No keys: the change is checked as usual, then written unsigned beside the
    /// live manifest (`channels/<channel>.json.unsigned`) for `wavecast sign` to sign
    /// where the release keys are, and publish.
    pub fn later() -> Self {
        Self(Vec::new())
    }

    /// Whether this is [`Signers::later`].
    pub fn sign_later(&self) -> bool {
        self.0.is_empty()
    }

    /// The keys.
    pub fn iter(&self) -> impl Iterator<Item = &SigningKey> {
        self.0.iter()
    }

    /// The first key given; `None` for [`Signers::later`].
    pub fn first(&self) -> Option<&SigningKey> {
        self.0.first()
    }
}

impl From<SigningKey> for Signers {
    fn from(key: SigningKey) -> Self {
        Self(vec![key])
    }
}

/// The paths [`generate`] wrote, and the new key's id.
#[derive(Debug)]
pub struct GeneratedKeys {
    /// The secret key file.
    pub secret_key: PathBuf,
    /// The public key file.
    pub public_key: PathBuf,
    /// The key id, as minisign prints it.
    pub key_id: String,
}

/// Generates a key pair into `dir` as `wavecast.key` and `wavecast.pub`.
///
/// With a password the secret key is encrypted (scrypt, as minisign does); with `None`
/// it is stored unencrypted. The secret key file is created owner-only (`0600`).
/// Existing files are only replaced when `overwrite` is set.
pub fn generate(dir: &Path, password: Option<&Password>, overwrite: bool) -> Result<GeneratedKeys> {
    let secret_path = dir.join(SECRET_KEY_FILE);
    let public_path = dir.join(PUBLIC_KEY_FILE);
    if !overwrite {
        for path in [&secret_path, &public_path] {
            if path.exists() {
                return Err(Error::KeyExists { path: path.clone() });
            }
        }
    }
    let minisign_error = |error: minisign::PError| Error::Minisign {
        operation: "generate a key",
        reason: error.to_string(),
    };
    let pair = match password {
        Some(password) => KeyPair::generate_encrypted_keypair(Some(password.0.clone())),
        None => KeyPair::generate_unencrypted_keypair(),
    }
    .map_err(minisign_error)?;
    let key_id = key_id(&pair.pk);
    let secret_text = pair
        .sk
        .to_box(Some(&format!("wavecast secret key {key_id}")))
        .map_err(minisign_error)?
        .to_bytes();
    let public_text = pair.pk.to_box().map_err(minisign_error)?.to_bytes();

    fs_err::create_dir_all(dir).map_err(|source| Error::Write {
        path: dir.into(),
        source,
    })?;
    write_private(&secret_path, &secret_text)?;
    fs_err::write(&public_path, public_text).map_err(|source| Error::Write {
        path: public_path.clone(),
        source,
    })?;
    Ok(GeneratedKeys {
        secret_key: secret_path,
        public_key: public_path,
        key_id,
    })
}

/// Writes `bytes` to a new owner-only file, replacing `path` atomically.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let write_error = |source| Error::Write {
        path: path.to_owned(),
        source,
    };
    let temp = path.with_extension("key.tmp");
    let mut file = crate::platform::private_file_options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&temp)
        .map_err(write_error)?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(write_error)?;
    std::fs::rename(&temp, path).map_err(write_error)
}

impl SigningKey {
    /// Loads a secret key file, decrypting it with `password` when it is encrypted.
    /// `password` is only called for encrypted keys.
    pub fn load(path: &Path, password: impl FnOnce() -> Result<Option<Password>>) -> Result<Self> {
        let text = fs_err::read_to_string(path).map_err(|source| Error::Read {
            path: path.into(),
            source,
        })?;
        let load_error = |error: minisign::PError| Error::LoadKey {
            path: path.into(),
            reason: error.to_string(),
        };
        // The public key is the file most often given by mistake (it sits beside the
        // secret one); minisign's parser would only say "failed to fill whole buffer".
        if minisign::PublicKeyBox::from_string(&text)
            .and_then(minisign::PublicKeyBox::into_public_key)
            .is_ok()
        {
            return Err(Error::NotASecretKey { path: path.into() });
        }
        let key_box = SecretKeyBox::from_string(&text).map_err(load_error)?;
        // An unencrypted key loads without a password; anything else is treated as
        // encrypted, and decrypting it reports a wrong password or a corrupt file.
        let secret = match key_box.clone().into_unencrypted_secret_key() {
            Ok(secret) => secret,
            Err(_) => {
                let password =
                    password()?.ok_or_else(|| Error::PasswordRequired { path: path.into() })?;
                key_box
                    .into_secret_key(Some(password.0))
                    .map_err(|error| match error.kind() {
                        // The checksum of the decrypted key does not match: minisign's
                        // only way to tell a wrong password.
                        minisign::ErrorKind::Verify => Error::WrongPassword { path: path.into() },
                        _ => load_error(error),
                    })?
            }
        };
        let public = PublicKey::from_secret_key(&secret).map_err(load_error)?;
        Ok(Self { secret, public })
    }

    /// The key id, as minisign prints it (16 uppercase hex digits).
    pub fn key_id(&self) -> String {
        key_id(&self.public)
    }

    /// The public key in minisign's base64 form.
    pub fn public_key_base64(&self) -> String {
        self.public.to_base64()
    }

    /// The public key, as roots list it.
    pub fn public_key(&self) -> wavecast_schema::PublicKey {
        wavecast_schema::PublicKey::parse(&self.public.to_base64())
            .expect("minisign writes keys minisign-verify reads")
    }

    /// Signs `bytes` (prehashed Ed25519, minisign's default) and returns the signature
    /// in minisign's text format. The trusted comment is signed too.
    pub fn sign(&self, bytes: &[u8], trusted_comment: &str) -> Result<String> {
        let signature = minisign::sign(
            Some(&self.public),
            &self.secret,
            Cursor::new(bytes),
            Some(trusted_comment),
            Some(&format!(
                "signature from wavecast secret key {}",
                self.key_id()
            )),
        )
        .map_err(|error| Error::Minisign {
            operation: "sign",
            reason: error.to_string(),
        })?;
        Ok(signature.into_string())
    }

    /// Whether `signature` (minisign text) is a valid signature of `bytes` by this key.
    pub fn verifies(&self, bytes: &[u8], signature: &str) -> bool {
        let Ok(signature) = SignatureBox::from_string(signature) else {
            return false;
        };
        minisign::verify(
            &self.public,
            &signature,
            Cursor::new(bytes),
            true,
            false,
            false,
        )
        .is_ok()
    }
}

fn key_id(public: &PublicKey) -> String {
    let mut id = [0u8; 8];
    id.copy_from_slice(&public.keynum()[..8]);
    format!("{:016X}", u64::from_le_bytes(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn password() -> Password {
        Password::new("correct horse".into())
    }

    #[test]
    fn an_encrypted_key_signs_after_loading_with_its_password() {
        let dir = tempfile::tempdir().unwrap();
        let generated = generate(dir.path(), Some(&password()), false).unwrap();
        let key = SigningKey::load(&generated.secret_key, || Ok(Some(password()))).unwrap();
        assert_eq!(key.key_id(), generated.key_id);
        let signature = key.sign(b"manifest", "wavecast test").unwrap();
        assert!(key.verifies(b"manifest", &signature));
        assert!(!key.verifies(b"tampered", &signature));

        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&generated.secret_key)
                .unwrap()
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_wrong_or_missing_password_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let generated = generate(dir.path(), Some(&password()), false).unwrap();
        let wrong = SigningKey::load(&generated.secret_key, || {
            Ok(Some(Password::new("x".into())))
        });
        assert!(matches!(wrong, Err(Error::WrongPassword { .. })));
        let missing = SigningKey::load(&generated.secret_key, || Ok(None));
        assert!(matches!(missing, Err(Error::PasswordRequired { .. })));
    }

    #[test]
    fn a_public_key_given_as_the_secret_key_is_named_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let generated = generate(dir.path(), Some(&password()), false).unwrap();
        let loaded = SigningKey::load(&generated.public_key, || {
            panic!("no password is asked for a public key")
        });
        assert!(
            matches!(&loaded, Err(Error::NotASecretKey { path }) if *path == generated.public_key),
            "{loaded:?}"
        );
    }

    #[test]
    fn unencrypted_keys_need_no_password_and_keys_are_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let generated = generate(dir.path(), None, false).unwrap();
        let key = SigningKey::load(&generated.secret_key, || panic!("no password needed")).unwrap();
        assert_eq!(key.key_id(), generated.key_id);
        assert!(matches!(
            generate(dir.path(), None, false),
            Err(Error::KeyExists { .. })
        ));
    }

    #[test]
    fn debug_output_never_shows_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let generated = generate(dir.path(), None, false).unwrap();
        let key = SigningKey::load(&generated.secret_key, || Ok(None)).unwrap();
        let secret_line = std::fs::read_to_string(&generated.secret_key).unwrap();
        let secret_base64 = secret_line.lines().nth(1).unwrap();
        let debug = format!("{key:?} {:?}", password());
        assert!(
            !debug.contains(secret_base64) && !debug.contains("correct horse"),
            "{debug}"
        );
        assert!(debug.contains(&generated.key_id));
    }
}
