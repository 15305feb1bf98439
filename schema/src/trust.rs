//! Roots of trust: which keys sign releases, which keys may replace them, and how a
//! client moves from the root it trusts to a newer one.
//!
//! A [`Root`] names two key sets, each with a threshold (k of n):
//!
//! - the **root** keys, which sign the next root. Kept offline; used only to rotate.
//! - the **release** keys, which sign channel manifests day to day.
//!
//! Roots are numbered from 1 and published as `roots/<version>.json`, each a
//! [`SignedRoot`]. Root `n + 1` is only trusted when a threshold of root `n`'s root
//! keys *and* a threshold of its own root keys signed it ([`Root::verify_successor`]):
//! the old keys vouch for the change, and the new keys prove they are held. A client
//! walks the chain one version at a time from the root it trusts, so a key dropped
//! from a root stops counting for every client that has walked past it, and a single
//! stolen key below a threshold can neither sign a manifest nor a new root.
//!
//! A client pinned to one public key trusts [`Root::from_key`]: version 1, with that
//! key alone in both roles. That is exactly the root `wavecast publish` writes for a
//! new site, so `init --pubkey` and rotation work together.
//!
//! Everything here is pure: the caller fetches the bytes, these functions decide.

use std::fmt;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::Error;

/// The root document's format version.
pub const ROOT_FORMAT: u32 = 1;

/// The most bytes a root file may have; a host sending more is refused.
pub const ROOT_SIZE_LIMIT: u64 = 64 * 1024;

/// The most roots a client walks in one check. A manifest naming a root further
/// ahead than this is refused (the chain is too long to be a real rotation history,
/// and walking it would let a host make the client fetch without end).
pub const MAX_ROOT_STEPS: u64 = 64;

/// The most keys in one role's key set.
pub const MAX_KEYS: usize = 16;

/// The most signatures one signed document may carry; each one costs a
/// verification, so a host cannot make a client spend without bound.
pub const MAX_SIGNATURES: usize = 32;

/// The id minisign stores with a key and with every signature the key makes, shown as
/// minisign shows it (16 hex digits, as in `minisign public key 607F0666BC911C33`),
/// so a person can match a signature to a `.pub` file.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId([u8; 8]);

impl KeyId {
    /// The id in bytes 2 to 10 of a decoded key or signature line (after the
    /// two-byte algorithm), when there are that many.
    fn from_line(decoded: &[u8]) -> Option<Self> {
        decoded.get(2..10)?.try_into().ok().map(Self)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016X}", u64::from_le_bytes(self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// A minisign public key, as the base64 line of a `.pub` file.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    base64: String,
    key: minisign_verify::PublicKey,
}

impl PublicKey {
    /// Parses a key given as the base64 line alone or as the content of a minisign
    /// `.pub` file (`untrusted comment: …` then the base64 line). Surrounding
    /// whitespace is ignored.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidIdentifier`] when the text holds no valid key.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let base64 = text
            .lines()
            .map(str::trim)
            .find(|line| !line.is_empty() && !line.starts_with("untrusted comment:"))
            .unwrap_or("");
        let key = minisign_verify::PublicKey::from_base64(base64).map_err(|error| {
            Error::InvalidIdentifier {
                kind: "minisign public key",
                value: text.trim().to_owned(),
                reason: match error {
                    minisign_verify::Error::UnsupportedAlgorithm => "unsupported algorithm",
                    _ => "expected minisign's base64 key line, like `RWQ…` (56 characters)",
                },
            }
        })?;
        Ok(Self {
            base64: base64.to_owned(),
            key,
        })
    }

    /// The key as minisign's base64 line.
    pub fn to_base64(&self) -> &str {
        &self.base64
    }

    /// The key's id.
    pub fn key_id(&self) -> KeyId {
        decode_base64(&self.base64)
            .as_deref()
            .and_then(KeyId::from_line)
            .expect("a parsed minisign key holds its id")
    }

    /// Whether `signature`, in minisign's text format, is a valid signature of
    /// `bytes` by this key. Unreadable text verifies nothing.
    pub fn verifies(&self, bytes: &[u8], signature: &str) -> bool {
        minisign_verify::Signature::decode(signature)
            .is_ok_and(|signature| self.signed(bytes, &signature))
    }

    /// Whether `signature` is a valid (pre-hashed) signature of `bytes` by this key.
    fn signed(&self, bytes: &[u8], signature: &minisign_verify::Signature) -> bool {
        self.key.verify(bytes, signature, false).is_ok()
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.base64)
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.base64)
    }
}

impl std::str::FromStr for PublicKey {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        Self::parse(text)
    }
}

impl Serialize for PublicKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.base64)
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The two things a root gives keys the power to sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The next root.
    Root,
    /// Channel manifests.
    Release,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Root => "root",
            Self::Release => "release",
        })
    }
}

/// A set of keys and how many of them must sign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeySet {
    /// The keys, each at most once.
    pub keys: Vec<PublicKey>,
    /// How many distinct keys of `keys` must sign: at least 1, at most `keys.len()`.
    pub threshold: u32,
}

impl KeySet {
    /// A key set, checked: 1 to [`MAX_KEYS`] distinct keys and a threshold from 1 to
    /// the number of keys.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] naming the broken rule.
    pub fn new(keys: Vec<PublicKey>, threshold: u32) -> Result<Self, Error> {
        let set = Self { keys, threshold };
        set.validate().map_err(|problem| Error::Invalid {
            document: "key set",
            problem,
        })?;
        Ok(set)
    }

    fn validate(&self) -> Result<(), String> {
        if self.keys.is_empty() || self.keys.len() > MAX_KEYS {
            return Err(format!(
                "a key set needs 1 to {MAX_KEYS} keys, not {}",
                self.keys.len()
            ));
        }
        for (i, key) in self.keys.iter().enumerate() {
            if self.keys[..i].contains(key) {
                return Err(format!("key {key} is listed twice"));
            }
        }
        if self.threshold == 0 || self.threshold as usize > self.keys.len() {
            return Err(format!(
                "threshold {} must be from 1 to the number of keys ({})",
                self.threshold,
                self.keys.len()
            ));
        }
        Ok(())
    }

    /// How many distinct keys of this set made one of `signatures` over `bytes`.
    fn signers(&self, bytes: &[u8], signatures: &[minisign_verify::Signature]) -> usize {
        self.keys
            .iter()
            .filter(|key| {
                signatures
                    .iter()
                    .any(|signature| key.signed(bytes, signature))
            })
            .count()
    }
}

/// One version of a site's trust: who signs releases and who signs the next root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Root {
    /// Format of this document.
    pub format: u32,
    /// 1 for the first root; each rotation adds one.
    pub version: u64,
    /// The keys that sign the next root (keep them offline).
    pub root: KeySet,
    /// The keys that sign channel manifests.
    pub release: KeySet,
    /// When clients stop trusting this root: past it, they refuse every manifest
    /// until the root keys publish the next root. A root must be renewed now and
    /// then so that keys lost without anyone noticing stop counting on their own.
    /// Root 1 ([`Root::from_key`]) and roots from before expiry existed have none
    /// (they never expire); clients older than this field ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
}

impl Root {
    /// Root version 1 with `key` alone in both roles: what a client pinned to one
    /// public key trusts, and what `wavecast publish` writes for a new site.
    pub fn from_key(key: PublicKey) -> Self {
        let only = KeySet {
            keys: vec![key],
            threshold: 1,
        };
        Self {
            format: ROOT_FORMAT,
            version: 1,
            root: only.clone(),
            release: only,
            expires_at: None,
        }
    }

    /// Whether the root has expired at `now`, once `grace` (for a clock that runs
    /// ahead) has passed too. A root without an expiry never expires.
    pub fn expired(&self, now: Timestamp, grace: SignedDuration) -> bool {
        self.expires_at
            .is_some_and(|expires_at| now.duration_since(expires_at) >= grace)
    }

    /// The root as the exact text to sign.
    pub fn to_text(&self) -> String {
        let mut text =
            serde_json::to_string_pretty(self).expect("a root always serializes to JSON");
        text.push('\n');
        text
    }

    /// Parses and checks root text. Only call this on text whose signatures have been
    /// counted, or on the client's own stored copy.
    ///
    /// # Errors
    ///
    /// [`Error::Json`], [`Error::UnsupportedFormat`] or [`Error::Invalid`].
    pub fn parse(text: &str) -> Result<Self, Error> {
        let root: Self = serde_json::from_str(text).map_err(|source| Error::Json {
            document: "root",
            source,
        })?;
        if root.format > ROOT_FORMAT {
            return Err(Error::UnsupportedFormat {
                document: "root",
                found: root.format,
                supported: ROOT_FORMAT,
            });
        }
        if root.version == 0 {
            return Err(Error::Invalid {
                document: "root",
                problem: "versions start at 1".into(),
            });
        }
        for (role, set) in [(Role::Root, &root.root), (Role::Release, &root.release)] {
            set.validate().map_err(|problem| Error::Invalid {
                document: "root",
                problem: format!("{role} keys: {problem}"),
            })?;
        }
        Ok(root)
    }

    /// The key set of `role`.
    pub fn keys(&self, role: Role) -> &KeySet {
        match role {
            Role::Root => &self.root,
            Role::Release => &self.release,
        }
    }

    /// Checks that a threshold of this root's keys for `role` signed `bytes`.
    /// `document` names what was signed, in errors.
    ///
    /// # Errors
    ///
    /// [`TrustError::TooManySignatures`] or [`TrustError::BelowThreshold`].
    pub fn check_signatures(
        &self,
        role: Role,
        document: &str,
        bytes: &[u8],
        signatures: &[String],
    ) -> Result<(), TrustError> {
        let decoded = decode_signatures(document, signatures)?;
        let set = self.keys(role);
        let signers = set.signers(bytes, &decoded);
        if signers < set.threshold as usize {
            return Err(TrustError::BelowThreshold {
                document: document.to_owned(),
                role,
                root: self.version,
                signers,
                threshold: set.threshold,
                trusted: set.keys.iter().map(PublicKey::key_id).collect(),
                uncounted: Box::new(Uncounted::of(set, bytes, signatures)),
            });
        }
        Ok(())
    }

    /// The ids of `role`'s keys that made a valid signature of `bytes` among
    /// `signatures`, each once, for showing who signed a document that passed
    /// [`check_signatures`](Self::check_signatures). Signatures past
    /// [`MAX_SIGNATURES`] are not read.
    pub fn signing_keys(&self, role: Role, bytes: &[u8], signatures: &[String]) -> Vec<KeyId> {
        let decoded: Vec<minisign_verify::Signature> = signatures
            .iter()
            .take(MAX_SIGNATURES)
            .filter_map(|text| minisign_verify::Signature::decode(text).ok())
            .collect();
        self.keys(role)
            .keys
            .iter()
            .filter(|key| decoded.iter().any(|signature| key.signed(bytes, signature)))
            .map(PublicKey::key_id)
            .collect()
    }

    /// Verifies the bytes of `roots/<n>.json` as the root that follows this one: a
    /// threshold of this root's root keys signed it (checked before the text is
    /// parsed), it is version `self.version + 1`, and a threshold of its own root
    /// keys signed it too.
    ///
    /// # Errors
    ///
    /// [`TrustError::Malformed`], [`TrustError::TooManySignatures`],
    /// [`TrustError::BelowThreshold`] or [`TrustError::UnexpectedVersion`].
    pub fn verify_successor(&self, bytes: &[u8]) -> Result<Root, TrustError> {
        let next = self.version.saturating_add(1);
        let document = format!("root v{next}");
        let signed = SignedRoot::parse(bytes).map_err(|source| TrustError::Malformed {
            document: document.clone(),
            source,
        })?;
        self.check_signatures(
            Role::Root,
            &document,
            signed.root.as_bytes(),
            &signed.signatures,
        )?;
        let root = Root::parse(&signed.root).map_err(|source| TrustError::Malformed {
            document: document.clone(),
            source,
        })?;
        if root.version != next || self.version == u64::MAX {
            return Err(TrustError::UnexpectedVersion {
                expected: next,
                found: root.version,
            });
        }
        root.check_signatures(
            Role::Root,
            &document,
            signed.root.as_bytes(),
            &signed.signatures,
        )?;
        Ok(root)
    }

    /// Verifies a root file a user pins directly (`wavecast-update init --root`):
    /// it must be signed by a threshold of its own root keys. Trust in it comes from
    /// how the user obtained the file; the check proves the file is whole and that
    /// its keys are held.
    ///
    /// # Errors
    ///
    /// As [`Root::verify_successor`], without the version rule.
    pub fn verify_pinned(bytes: &[u8]) -> Result<Root, TrustError> {
        let signed = SignedRoot::parse(bytes).map_err(|source| TrustError::Malformed {
            document: "pinned root".into(),
            source,
        })?;
        let root = Root::parse(&signed.root).map_err(|source| TrustError::Malformed {
            document: "pinned root".into(),
            source,
        })?;
        root.check_signatures(
            Role::Root,
            &format!("root v{}", root.version),
            signed.root.as_bytes(),
            &signed.signatures,
        )?;
        Ok(root)
    }
}

/// Decodes minisign signature texts, refusing more than [`MAX_SIGNATURES`]. A text
/// that does not decode counts as a signature by no key.
/// The bytes of a base64 line, or `None` when it is not base64.
fn decode_base64(line: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(line.trim())
        .ok()
}

/// The id of the key that made a signature in minisign's text format (its second
/// line holds the algorithm, the key id and the signature).
fn signature_key_id(text: &str) -> Option<KeyId> {
    let line = text.lines().nth(1)?;
    KeyId::from_line(&decode_base64(line)?)
}

fn decode_signatures(
    document: &str,
    signatures: &[String],
) -> Result<Vec<minisign_verify::Signature>, TrustError> {
    if signatures.len() > MAX_SIGNATURES {
        return Err(TrustError::TooManySignatures {
            document: document.to_owned(),
            found: signatures.len(),
        });
    }
    Ok(signatures
        .iter()
        .filter_map(|text| minisign_verify::Signature::decode(text).ok())
        .collect())
}

/// A root as published in `roots/<version>.json`: the root's exact text and the
/// minisign signatures made over it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedRoot {
    /// Format of this wrapper.
    pub format: u32,
    /// The root, byte for byte as signed.
    pub root: String,
    /// minisign signatures of `root`, in minisign's text format.
    pub signatures: Vec<String>,
}

impl SignedRoot {
    /// Wraps root text and its signatures.
    pub fn new(root: String, signatures: Vec<String>) -> Self {
        Self {
            format: ROOT_FORMAT,
            root,
            signatures,
        }
    }

    /// Parses the wrapper; nothing inside is trusted yet.
    ///
    /// # Errors
    ///
    /// [`Error::Json`] or [`Error::UnsupportedFormat`].
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        let signed: Self = serde_json::from_slice(bytes).map_err(|source| Error::Json {
            document: "signed root",
            source,
        })?;
        if signed.format > ROOT_FORMAT {
            return Err(Error::UnsupportedFormat {
                document: "signed root",
                found: signed.format,
                supported: ROOT_FORMAT,
            });
        }
        Ok(signed)
    }

    /// The bytes of the published file.
    pub fn to_json(&self) -> Vec<u8> {
        let mut bytes =
            serde_json::to_vec_pretty(self).expect("a signed root always serializes to JSON");
        bytes.push(b'\n');
        bytes
    }
}

/// Why a signed document or a step along the chain of roots is not trusted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrustError {
    /// The document is not a well-formed signed root.
    #[error("{document} is malformed")]
    Malformed {
        /// Which document.
        document: String,
        /// What is wrong with it.
        #[source]
        source: Error,
    },

    /// More signatures than [`MAX_SIGNATURES`].
    #[error("{document} carries {found} signatures; at most {MAX_SIGNATURES} are read")]
    TooManySignatures {
        /// Which document.
        document: String,
        /// How many it carries.
        found: usize,
    },

    /// Too few of the trusted keys signed.
    #[error(
        "{document} is signed by {signers} of the {role} keys of root v{root}, which requires {threshold}{}",
        uncounted.note(trusted)
    )]
    BelowThreshold {
        /// Which document.
        document: String,
        /// The role whose keys had to sign.
        role: Role,
        /// The root version whose keys were counted.
        root: u64,
        /// How many distinct trusted keys signed.
        signers: usize,
        /// How many must.
        threshold: u32,
        /// The ids of the role's keys.
        trusted: Vec<KeyId>,
        /// The signatures that count for nothing, and why (boxed: errors stay small
        /// on the happy path).
        uncounted: Box<Uncounted>,
    },

    /// A root file holds another version than its name promises.
    #[error("roots/{expected}.json holds root v{found}; a root must follow the one before it")]
    UnexpectedVersion {
        /// The version the chain needs next.
        expected: u64,
        /// The version the file holds.
        found: u64,
    },
}

/// The signatures of a document that count for nothing, by what is wrong with them:
/// said in a [`TrustError::BelowThreshold`] so a person can tell a wrong key from a
/// changed document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Uncounted {
    /// The ids of the keys that signed but are not trusted for the role (another
    /// site's key, a revoked one), each once.
    pub untrusted_keys: Vec<KeyId>,
    /// Signatures by a trusted key that do not verify: made over other bytes (the
    /// document was changed after it was signed) or damaged.
    pub not_matching: usize,
    /// Signatures that cannot be read at all.
    pub unreadable: usize,
}

impl Uncounted {
    fn of(set: &KeySet, bytes: &[u8], signatures: &[String]) -> Self {
        let trusted: Vec<KeyId> = set.keys.iter().map(PublicKey::key_id).collect();
        let mut uncounted = Self::default();
        for text in signatures {
            let (Ok(signature), Some(id)) = (
                minisign_verify::Signature::decode(text),
                signature_key_id(text),
            ) else {
                uncounted.unreadable += 1;
                continue;
            };
            match set.keys.iter().find(|key| key.key_id() == id) {
                Some(key) if key.signed(bytes, &signature) => {}
                Some(_) => uncounted.not_matching += 1,
                None if !trusted.contains(&id) && !uncounted.untrusted_keys.contains(&id) => {
                    uncounted.untrusted_keys.push(id);
                }
                None => {}
            }
        }
        uncounted
    }
}

impl Uncounted {
    /// What the uncounted signatures say, after a sentence about the count: which
    /// keys signed instead of `trusted`, how many signatures do not match.
    fn note(&self, trusted: &[KeyId]) -> String {
        let mut note = String::new();
        let trusted = match trusted {
            [one] => one.to_string(),
            many => format!("any of {}", list(many)),
        };
        match self.untrusted_keys.as_slice() {
            [] => {}
            [one] => note.push_str(&format!("; it is signed by key {one}, not by {trusted}")),
            many => note.push_str(&format!(
                "; it is signed by keys {}, not by {trusted}",
                list(many)
            )),
        }
        match self.not_matching {
            0 => {}
            1 => note.push_str(&format!(
                "; 1 signature by {trusted} does not match the signed bytes (changed after signing)"
            )),
            n => note.push_str(&format!(
                "; {n} signatures by {trusted} do not match the signed bytes (changed after signing)"
            )),
        }
        match self.unreadable {
            0 => {}
            1 => note.push_str("; 1 signature cannot be read"),
            n => note.push_str(&format!("; {n} signatures cannot be read")),
        }
        note
    }
}

/// Key ids separated by commas.
fn list(ids: &[KeyId]) -> String {
    ids.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io::Cursor;

    use super::*;

    /// A fresh unencrypted key pair and its public key as this module reads it.
    pub(crate) fn keypair() -> (minisign::KeyPair, PublicKey) {
        let pair = minisign::KeyPair::generate_unencrypted_keypair().unwrap();
        let public = PublicKey::parse(&pair.pk.to_base64()).unwrap();
        (pair, public)
    }

    /// A minisign signature of `bytes` by `pair`, in minisign's text format.
    pub(crate) fn sign(pair: &minisign::KeyPair, bytes: &[u8]) -> String {
        minisign::sign(None, &pair.sk, Cursor::new(bytes), Some("test"), None)
            .unwrap()
            .into_string()
    }

    fn set(keys: &[&PublicKey], threshold: u32) -> KeySet {
        KeySet::new(keys.iter().map(|key| (*key).clone()).collect(), threshold).unwrap()
    }

    fn signed(root: &Root, signers: &[&minisign::KeyPair]) -> Vec<u8> {
        let text = root.to_text();
        let signatures = signers
            .iter()
            .map(|pair| sign(pair, text.as_bytes()))
            .collect();
        SignedRoot::new(text, signatures).to_json()
    }

    fn successor(root: &Root, root_keys: KeySet, release: KeySet) -> Root {
        Root {
            format: ROOT_FORMAT,
            version: root.version + 1,
            root: root_keys,
            release,
            expires_at: None,
        }
    }

    #[test]
    fn a_key_pins_version_1_with_that_key_in_both_roles() {
        let (pair, key) = keypair();
        let root = Root::from_key(key);
        assert_eq!(root.version, 1);
        let text = b"manifest";
        let good = [sign(&pair, text)];
        root.check_signatures(Role::Release, "manifest", text, &good)
            .unwrap();
        let error = root
            .check_signatures(Role::Release, "manifest", b"other", &good)
            .unwrap_err();
        assert!(
            error.to_string().contains(&format!(
                "signed by 0 of the release keys of root v1, which requires 1; 1 signature by {} does not match the signed bytes",
                root.release.keys[0].key_id()
            )),
            "{error}"
        );
        let (other_pair, other) = keypair();
        let foreign = [sign(&other_pair, text)];
        let error = root
            .check_signatures(Role::Release, "manifest", text, &foreign)
            .unwrap_err();
        assert!(
            error.to_string().ends_with(&format!(
                "; it is signed by key {}, not by {}",
                other.key_id(),
                root.release.keys[0].key_id()
            )),
            "{error}"
        );
    }

    #[test]
    fn key_ids_read_as_minisign_prints_them() {
        let key: PublicKey = "untrusted comment: minisign public key: 607F0666BC911C33\nRWQzHJG8ZgZ/YP2kWKqKYH03EhJp6D1s1RDnYS5lz5cEIQk78qb6/F8W"
            .parse()
            .unwrap();
        assert_eq!(key.key_id().to_string(), "607F0666BC911C33");
    }

    #[test]
    fn a_successor_needs_the_old_and_the_new_root_keys() {
        let (old_pair, old) = keypair();
        let (new_pair, new) = keypair();
        let first = Root::from_key(old.clone());
        let second = successor(&first, set(&[&new], 1), set(&[&new], 1));

        let walked = first
            .verify_successor(&signed(&second, &[&old_pair, &new_pair]))
            .unwrap();
        assert_eq!(walked, second);

        let only_new = first
            .verify_successor(&signed(&second, &[&new_pair]))
            .unwrap_err();
        assert!(
            matches!(
                only_new,
                TrustError::BelowThreshold {
                    root: 1,
                    signers: 0,
                    ..
                }
            ),
            "{only_new}"
        );
        let only_old = first
            .verify_successor(&signed(&second, &[&old_pair]))
            .unwrap_err();
        assert!(
            matches!(
                only_old,
                TrustError::BelowThreshold {
                    root: 2,
                    signers: 0,
                    ..
                }
            ),
            "{only_old}"
        );
    }

    #[test]
    fn a_successor_must_be_the_next_version() {
        let (pair, key) = keypair();
        let first = Root::from_key(key.clone());
        let mut skipping = successor(&first, set(&[&key], 1), set(&[&key], 1));
        skipping.version = 3;
        let error = first
            .verify_successor(&signed(&skipping, &[&pair]))
            .unwrap_err();
        assert!(
            matches!(
                error,
                TrustError::UnexpectedVersion {
                    expected: 2,
                    found: 3
                }
            ),
            "{error}"
        );
        let mut last = first.clone();
        last.version = u64::MAX;
        let error = last.verify_successor(&signed(&last, &[&pair])).unwrap_err();
        assert!(
            matches!(error, TrustError::UnexpectedVersion { .. }),
            "{error}"
        );
        let mut replay = first.clone();
        replay.version = 1;
        let error = first
            .verify_successor(&signed(&replay, &[&pair]))
            .unwrap_err();
        assert!(
            matches!(error, TrustError::UnexpectedVersion { .. }),
            "{error}"
        );
    }

    #[test]
    fn one_stolen_key_under_a_threshold_signs_nothing() {
        let pairs: Vec<_> = (0..3).map(|_| keypair()).collect();
        let keys: Vec<&PublicKey> = pairs.iter().map(|(_, key)| key).collect();
        let root = Root {
            format: ROOT_FORMAT,
            version: 4,
            root: set(&keys, 2),
            release: set(&keys, 2),
            expires_at: None,
        };
        let stolen = &pairs[0].0;
        let text = b"evil manifest";
        // The thief signs twice with the one key: still one signer.
        let signatures = [sign(stolen, text), sign(stolen, text)];
        let error = root
            .check_signatures(Role::Release, "manifest", text, &signatures)
            .unwrap_err();
        assert!(
            matches!(
                error,
                TrustError::BelowThreshold {
                    signers: 1,
                    threshold: 2,
                    ..
                }
            ),
            "{error}"
        );
        let evil_root = successor(&root, set(&[keys[0]], 1), set(&[keys[0]], 1));
        let error = root
            .verify_successor(&signed(&evil_root, &[stolen]))
            .unwrap_err();
        assert!(
            matches!(error, TrustError::BelowThreshold { signers: 1, .. }),
            "{error}"
        );

        let honest = [sign(&pairs[1].0, text), sign(&pairs[2].0, text)];
        root.check_signatures(Role::Release, "manifest", text, &honest)
            .unwrap();
    }

    #[test]
    fn a_revoked_release_key_stops_counting_after_rotation() {
        let (root_pair, root_key) = keypair();
        let (_, leaked) = keypair();
        let (_, fresh) = keypair();
        let first = Root {
            format: ROOT_FORMAT,
            version: 1,
            root: set(&[&root_key], 1),
            release: set(&[&leaked], 1),
            expires_at: None,
        };
        let second = successor(&first, set(&[&root_key], 1), set(&[&fresh], 1));
        let walked = first
            .verify_successor(&signed(&second, &[&root_pair]))
            .unwrap();
        assert_eq!(walked.release.keys, vec![fresh]);
    }

    #[test]
    fn hostile_signature_lists_are_bounded_and_never_panic() {
        let (_, key) = keypair();
        let root = Root::from_key(key);
        let many = vec!["garbage".to_owned(); MAX_SIGNATURES + 1];
        let error = root
            .check_signatures(Role::Release, "manifest", b"x", &many)
            .unwrap_err();
        assert!(
            matches!(error, TrustError::TooManySignatures { .. }),
            "{error}"
        );
        let junk = ["".to_owned(), "untrusted comment: x\nRWQ=\n".to_owned()];
        let error = root
            .check_signatures(Role::Release, "manifest", b"x", &junk)
            .unwrap_err();
        let TrustError::BelowThreshold { uncounted, .. } = &error else {
            panic!("{error}");
        };
        assert_eq!(uncounted.unreadable, 2, "{error}");
        assert!(
            error.to_string().ends_with("; 2 signatures cannot be read"),
            "{error}"
        );
    }

    #[test]
    fn key_sets_refuse_bad_thresholds_and_repeated_keys() {
        let (_, a) = keypair();
        let (_, b) = keypair();
        assert!(KeySet::new(vec![a.clone(), b.clone()], 0).is_err());
        assert!(KeySet::new(vec![a.clone(), b.clone()], 3).is_err());
        assert!(KeySet::new(vec![a.clone(), a.clone()], 1).is_err());
        assert!(KeySet::new(Vec::new(), 1).is_err());
        assert!(KeySet::new(vec![a, b], 2).is_ok());
    }

    #[test]
    fn a_pinned_root_must_be_signed_by_its_own_root_keys() {
        let (pair, key) = keypair();
        let (other_pair, _) = keypair();
        let root = Root::from_key(key);
        assert_eq!(Root::verify_pinned(&signed(&root, &[&pair])).unwrap(), root);
        assert!(Root::verify_pinned(&signed(&root, &[&other_pair])).is_err());
        assert!(Root::verify_pinned(b"{}").is_err());
    }

    #[test]
    fn root_text_round_trips_and_version_0_is_refused() {
        let (_, key) = keypair();
        let root = Root::from_key(key);
        assert_eq!(Root::parse(&root.to_text()).unwrap(), root);
        let zero = root.to_text().replace("\"version\": 1", "\"version\": 0");
        assert!(Root::parse(&zero).is_err());
    }

    #[test]
    fn roots_without_an_expiry_parse_and_never_expire() {
        let (_, key) = keypair();
        let old_text = Root::from_key(key.clone()).to_text();
        assert!(!old_text.contains("expires_at"), "{old_text}");
        let old = Root::parse(&old_text).unwrap();
        assert_eq!(old.expires_at, None);
        assert!(!old.expired(Timestamp::MAX, SignedDuration::ZERO));

        let expiring = Root {
            version: 2,
            expires_at: Some("2027-01-01T00:00:00Z".parse().unwrap()),
            ..old
        };
        let parsed = Root::parse(&expiring.to_text()).unwrap();
        assert_eq!(parsed, expiring);
        let at = |now: &str, grace_minutes: i64| {
            parsed.expired(
                now.parse().unwrap(),
                SignedDuration::from_mins(grace_minutes),
            )
        };
        assert!(!at("2026-12-31T23:59:59Z", 0));
        assert!(at("2027-01-01T00:00:00Z", 0));
        assert!(!at("2027-01-01T00:04:59Z", 5));
        assert!(at("2027-01-01T00:05:00Z", 5));
    }
}
