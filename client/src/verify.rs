//! The pinned minisign public key, and checking a manifest's signature with it.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};

/// The minisign public key a client trusts, pinned at `init`.
///
/// Only pre-hashed (current minisign) signatures are accepted; legacy signatures of
/// the raw message are refused.
#[derive(Clone, PartialEq, Eq)]
pub struct TrustedKey {
    base64: String,
    key: minisign_verify::PublicKey,
}

impl TrustedKey {
    /// Parses a key given either as the base64 line alone or as the content of a
    /// minisign `.pub` file (`untrusted comment: …` then the base64 line).
    /// Surrounding whitespace is ignored.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidPublicKey`] when the text holds no valid key.
    pub fn parse(text: &str) -> Result<Self> {
        let base64 = text
            .lines()
            .map(str::trim)
            .find(|line| !line.is_empty() && !line.starts_with("untrusted comment:"))
            .unwrap_or("");
        let key = minisign_verify::PublicKey::from_base64(base64).map_err(|source| {
            Error::InvalidPublicKey {
                key: text.trim().to_owned(),
                source,
            }
        })?;
        Ok(Self {
            base64: base64.to_owned(),
            key,
        })
    }

    /// Parses a command-line argument: the path of a minisign `.pub` file if such a
    /// file exists, else the key itself.
    ///
    /// # Errors
    ///
    /// [`Error::ReadPublicKey`] when the file cannot be read,
    /// [`Error::InvalidPublicKey`] when it (or the argument) holds no valid key.
    pub fn from_argument(argument: &str) -> Result<Self> {
        let path = Path::new(argument);
        if path.is_file() {
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
        &self.base64
    }

    /// Checks that `signature` (minisign's text format) is a valid signature of
    /// `bytes` by this key. `url` names the document in errors.
    ///
    /// # Errors
    ///
    /// [`Error::DecodeSignature`] when the signature is malformed,
    /// [`Error::VerifySignature`] when it was made by another key or over other bytes.
    pub fn verify(&self, bytes: &[u8], signature: &str, url: &str) -> Result<()> {
        let signature = minisign_verify::Signature::decode(signature).map_err(|source| {
            Error::DecodeSignature {
                url: url.to_owned(),
                source,
            }
        })?;
        self.key
            .verify(bytes, &signature, false)
            .map_err(|source| Error::VerifySignature {
                url: url.to_owned(),
                source,
            })
    }
}

impl fmt::Debug for TrustedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TrustedKey({})", self.base64)
    }
}

impl fmt::Display for TrustedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.base64)
    }
}

impl Serialize for TrustedKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.base64)
    }
}

impl<'de> Deserialize<'de> for TrustedKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(|error| {
            serde::de::Error::custom(format!("{error}: not a minisign public key"))
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io::Cursor;

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
    fn a_signature_verifies_only_with_its_key_and_bytes() {
        let (signer, key) = keypair();
        let (_, other_key) = keypair();
        let signature = sign(&signer, b"manifest bytes");
        key.verify(b"manifest bytes", &signature, "u").unwrap();

        let error = other_key
            .verify(b"manifest bytes", &signature, "u")
            .unwrap_err();
        assert!(matches!(error, Error::VerifySignature { .. }), "{error}");
        let error = key.verify(b"manifest bytez", &signature, "u").unwrap_err();
        assert!(matches!(error, Error::VerifySignature { .. }), "{error}");
        let error = key
            .verify(b"manifest bytes", "not a signature", "u")
            .unwrap_err();
        assert!(matches!(error, Error::DecodeSignature { .. }), "{error}");
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
}
