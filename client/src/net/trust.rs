//! The key or root a client pins at `init`, and reading keys from the command line.
//!
//! Checking signatures is [`wavecast_schema::Root`]'s job: a pinned key is root
//! version 1 with that key alone ([`Root::from_key`]).

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};
use wavecast_schema::{PublicKey, Root};

use crate::net::error::{Error, Result};

/// A minisign public key a client trusts, given at `init`.
///
/// Only pre-hashed (current minisign) signatures are accepted; legacy signatures of
/// the raw message are refused.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TrustedKey(PublicKey);

impl TrustedKey {
    /// Parses a key given either as the base64 line alone or as the content of a
    /// minisign `.pub` file (`untrusted comment: …` then the base64 line).
    /// Surrounding whitespace is ignored.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidPublicKey`] when the text holds no valid key.
    pub fn parse(text: &str) -> Result<Self> {
        PublicKey::parse(text)
            .map(Self)
            .map_err(|source| Error::InvalidPublicKey {
                key: text.trim().to_owned(),
                source,
            })
    }

    /// Parses a command-line argument: the path of a minisign `.pub` file if such a
    /// file exists, else the key itself. An argument that is no key but looks like a
    /// path (a `/`, or a `.pub` name) is read as a file, so a missing key file reads
    /// as such rather than as a malformed key.
    ///
    /// # Errors
    ///
    /// [`Error::ReadPublicKey`] when the file cannot be read,
    /// [`Error::InvalidPublicKey`] when it (or the argument) holds no valid key.
    pub fn from_argument(argument: &str) -> Result<Self> {
        let path = Path::new(argument);
        let looks_like_a_path =
            argument.contains(['/', std::path::MAIN_SEPARATOR]) || argument.ends_with(".pub");
        let names_a_file = path.is_file() || (looks_like_a_path && Self::parse(argument).is_err());
        if names_a_file {
            let text = std::fs::read_to_string(path).map_err(|source| Error::ReadPublicKey {
                path: path.to_owned(),
                source,
            })?;
            return Self::parse(&text).map_err(|error| match error {
                Error::InvalidPublicKey { source, .. } => Error::InvalidPublicKey {
                    key: path.display().to_string(),
                    source,
                },
                other => other,
            });
        }
        Self::parse(argument)
    }

    /// The key as minisign's base64 line.
    pub fn to_base64(&self) -> &str {
        self.0.to_base64()
    }

    /// The root a client pinned to this key trusts: version 1, this key alone.
    pub fn root(&self) -> Root {
        Root::from_key(self.0.clone())
    }
}

impl fmt::Debug for TrustedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TrustedKey({})", self.0)
    }
}

impl fmt::Display for TrustedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// Reads a root file to pin (`init --root`): a `roots/<n>.json` copied from the
/// site by a trusted path, signed by a threshold of its own root keys.
///
/// # Errors
///
/// [`Error::ReadPinnedRoot`] or [`Error::PinnedRoot`].
pub fn read_pinned_root(path: &Path) -> Result<Root> {
    let bytes = std::fs::read(path).map_err(|source| Error::ReadPinnedRoot {
        path: path.to_owned(),
        source,
    })?;
    Root::verify_pinned(&bytes).map_err(|source| Error::PinnedRoot {
        path: path.to_owned(),
        source: Box::new(source),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io::Cursor;

    use wavecast_schema::{Role, SignedRoot};

    use super::*;

    /// A fresh key pair and its public half as a [`TrustedKey`].
    pub(crate) fn keypair() -> (minisign::KeyPair, TrustedKey) {
        let pair = minisign::KeyPair::generate_unencrypted_keypair().unwrap();
        let trusted = TrustedKey::parse(&pair.pk.to_base64()).unwrap();
        (pair, trusted)
    }

    /// Signs `bytes` the way the publisher does.
    pub(crate) fn sign(pair: &minisign::KeyPair, bytes: &[u8]) -> String {
        minisign::sign(
            Some(&pair.pk),
            &pair.sk,
            Cursor::new(bytes),
            Some("timestamp:0\tfile:stable.json"),
            Some("signature from wavecast tests"),
        )
        .unwrap()
        .into_string()
    }

    #[test]
    fn a_key_trusts_its_own_signatures_only() {
        let (signer, key) = keypair();
        let (_, other_key) = keypair();
        let signature = [sign(&signer, b"manifest bytes")];
        let check = |key: &TrustedKey, bytes: &[u8]| {
            key.root()
                .check_signatures(Role::Release, "m", bytes, &signature)
        };
        check(&key, b"manifest bytes").unwrap();
        assert!(check(&other_key, b"manifest bytes").is_err());
        assert!(check(&key, b"manifest bytez").is_err());
    }

    #[test]
    fn keys_parse_from_pub_files_and_bare_base64_with_whitespace() {
        let (pair, key) = keypair();
        let base64 = pair.pk.to_base64();
        let file = format!("untrusted comment: minisign public key\n{base64}\n");
        assert_eq!(TrustedKey::parse(&file).unwrap(), key);
        assert_eq!(TrustedKey::parse(&format!("  {base64}\n")).unwrap(), key);

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.pub");
        std::fs::write(&path, &file).unwrap();
        assert_eq!(
            TrustedKey::from_argument(path.to_str().unwrap()).unwrap(),
            key
        );

        for bad in ["", "RWQ", "untrusted comment: x\n", "hello world"] {
            assert!(TrustedKey::parse(bad).is_err(), "{bad:?} was accepted");
        }
        let json = serde_json::to_string(&key).unwrap();
        assert_eq!(serde_json::from_str::<TrustedKey>(&json).unwrap(), key);
    }

    #[test]
    fn a_pinned_root_file_must_be_signed_by_its_root_keys() {
        let (pair, key) = keypair();
        let (stranger, _) = keypair();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1.json");
        let text = key.root().to_text();
        let write = |signer: &minisign::KeyPair| {
            let signed = SignedRoot::new(text.clone(), vec![sign(signer, text.as_bytes())]);
            std::fs::write(&path, signed.to_json()).unwrap();
        };
        write(&pair);
        assert_eq!(read_pinned_root(&path).unwrap(), key.root());
        write(&stranger);
        let error = read_pinned_root(&path).unwrap_err();
        assert!(matches!(error, Error::PinnedRoot { .. }), "{error}");
    }
}
