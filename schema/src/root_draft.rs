//! A root in the making, signed one holder at a time.
//!
//! A k-of-n root only protects anything when its keys are in different hands, so
//! the next root cannot need every key on one machine. A [`RootDraft`] carries what
//! each holder needs, offline, to see what they sign and to add their signature:
//! the site's current root as published (the *base*, whose root keys must vouch for
//! the change) and the exact text of the next root, with the signatures made so
//! far. Once a threshold of the base's root keys and of the new root's own root keys
//! have signed, [`CheckedDraft::to_signed_root`] is the file the site publishes as
//! `roots/<n>.json`, checked by clients exactly like any other root
//! ([`Root::verify_successor`]).
//!
//! Everything here is pure: the caller reads the draft, signs with its key and
//! writes the draft back.

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::trust::{KeyId, PublicKey, Role, Root, SignedRoot, TrustError};

/// The draft file's format version.
pub const DRAFT_FORMAT: u32 = 1;

/// The next root of a site, with the signatures it has gathered so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RootDraft {
    /// Format of the draft file.
    pub format: u32,
    /// The site's newest root when the draft was made, as published: its root keys
    /// must sign the new root, and publishing refuses the draft once the site has
    /// moved past it.
    pub base: SignedRoot,
    /// The new root, byte for byte as it is signed.
    pub root: String,
    /// minisign signatures of `root`, one per holder who signed so far.
    pub signatures: Vec<String>,
}

/// A draft whose base and new root have been read and checked against each other.
#[derive(Debug, Clone)]
pub struct CheckedDraft {
    /// The draft as read.
    pub draft: RootDraft,
    /// The base root (signed by a threshold of its own root keys).
    pub base: Root,
    /// The new root.
    pub next: Root,
}

/// How far one key set's threshold has got: who signed and who has not yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signoff {
    /// The root whose root keys these are.
    pub root_version: u64,
    /// How many of them must sign.
    pub threshold: u32,
    /// The keys that signed, in the root's order.
    pub signed: Vec<KeyId>,
    /// The keys that have not signed yet, in the root's order.
    pub unsigned: Vec<KeyId>,
}

impl Signoff {
    /// How many more of the keys must sign; 0 once the threshold is reached.
    pub fn missing(&self) -> usize {
        (self.threshold as usize).saturating_sub(self.signed.len())
    }
}

/// Who has signed a draft, for both thresholds a new root needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DraftStatus {
    /// The base root's root keys, which vouch for the change.
    pub old: Signoff,
    /// The new root's own root keys, which prove they are held.
    pub new: Signoff,
}

impl DraftStatus {
    /// Whether both thresholds are reached, so the draft can be published.
    pub fn complete(&self) -> bool {
        self.old.missing() == 0 && self.new.missing() == 0
    }
}

/// What a draft holds, or a signature added to it, that cannot be.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DraftError {
    /// The file is not a root draft.
    #[error("the root draft is malformed")]
    Malformed {
        /// What is wrong with it.
        #[source]
        source: Error,
    },

    /// The base root in the draft is not one its own root keys signed.
    #[error("the draft's base root is not signed by its own root keys")]
    Base {
        /// Why.
        #[source]
        source: TrustError,
    },

    /// The new root is not the version after the base.
    #[error(
        "the draft's new root is v{found}, but its base is root v{base}; a draft holds the version after its base"
    )]
    NotNext {
        /// The base root's version.
        base: u64,
        /// The new root's version.
        found: u64,
    },

    /// A key that is not a root key of either root tried to sign.
    #[error(
        "key {key} is not a root key of root v{base} or of the new root v{next}; only their holders sign this draft"
    )]
    NotARootKey {
        /// The key's id.
        key: KeyId,
        /// The base root's version.
        base: u64,
        /// The new root's version.
        next: u64,
    },

    /// A signature to add does not verify with the key that claims it.
    #[error("the signature by key {key} does not match the draft's new root")]
    BadSignature {
        /// The key's id.
        key: KeyId,
    },
}

impl RootDraft {
    /// A draft of `next`, to follow `base` (the site's newest root, as published),
    /// with no signatures yet.
    pub fn new(base: SignedRoot, next: &Root) -> Self {
        Self {
            format: DRAFT_FORMAT,
            base,
            root: next.to_text(),
            signatures: Vec::new(),
        }
    }

    /// Parses a draft and checks it: its base is signed by a threshold of its own
    /// root keys and the new root is the version after it. The signatures gathered
    /// are not checked here: [`CheckedDraft::status`] counts the valid ones.
    ///
    /// # Errors
    ///
    /// [`DraftError::Malformed`], [`DraftError::Base`] or [`DraftError::NotNext`].
    pub fn parse(bytes: &[u8]) -> Result<CheckedDraft, DraftError> {
        let draft: Self =
            serde_json::from_slice(bytes).map_err(|source| DraftError::Malformed {
                source: Error::Json {
                    document: "root draft",
                    source,
                },
            })?;
        if draft.format > DRAFT_FORMAT {
            return Err(DraftError::Malformed {
                source: Error::UnsupportedFormat {
                    document: "root draft",
                    found: draft.format,
                    supported: DRAFT_FORMAT,
                },
            });
        }
        let base = Root::verify_pinned(&draft.base.to_json())
            .map_err(|source| DraftError::Base { source })?;
        let next = Root::parse(&draft.root).map_err(|source| DraftError::Malformed { source })?;
        if Some(next.version) != base.version.checked_add(1) {
            return Err(DraftError::NotNext {
                base: base.version,
                found: next.version,
            });
        }
        Ok(CheckedDraft { draft, base, next })
    }

    /// The draft as the bytes of its file.
    pub fn to_json(&self) -> Vec<u8> {
        let mut bytes =
            serde_json::to_vec_pretty(self).expect("a root draft always serializes to JSON");
        bytes.push(b'\n');
        bytes
    }
}

impl CheckedDraft {
    /// Who has signed, for the base's root keys and the new root's. Signatures that
    /// do not verify count for no one.
    pub fn status(&self) -> DraftStatus {
        let bytes = self.draft.root.as_bytes();
        let signoff = |root: &Root| {
            let signed = root.signing_keys(Role::Root, bytes, &self.draft.signatures);
            let unsigned = root
                .root
                .keys
                .iter()
                .map(PublicKey::key_id)
                .filter(|id| !signed.contains(id))
                .collect();
            Signoff {
                root_version: root.version,
                threshold: root.root.threshold,
                signed,
                unsigned,
            }
        };
        DraftStatus {
            old: signoff(&self.base),
            new: signoff(&self.next),
        }
    }

    /// Whether `key` may sign this draft: it is a root key of the base or of the new
    /// root.
    pub fn may_sign(&self, key: &PublicKey) -> bool {
        self.base.root.keys.contains(key) || self.next.root.keys.contains(key)
    }

    /// Adds `signature`, made by `key` over the new root's text. Returns `false`, and
    /// leaves the draft as it was, when `key` has signed already: a second signature
    /// by one key counts for nothing.
    ///
    /// # Errors
    ///
    /// [`DraftError::NotARootKey`] when `key` may not sign, and
    /// [`DraftError::BadSignature`] when the signature does not verify; the draft is
    /// unchanged.
    pub fn add_signature(
        &mut self,
        key: &PublicKey,
        signature: String,
    ) -> Result<bool, DraftError> {
        if !self.may_sign(key) {
            return Err(DraftError::NotARootKey {
                key: key.key_id(),
                base: self.base.version,
                next: self.next.version,
            });
        }
        let bytes = self.draft.root.as_bytes();
        if self.signed_by(key) {
            return Ok(false);
        }
        if !key.verifies(bytes, &signature) {
            return Err(DraftError::BadSignature { key: key.key_id() });
        }
        self.draft.signatures.push(signature);
        Ok(true)
    }

    /// Whether `key` made a valid signature of the new root already.
    pub fn signed_by(&self, key: &PublicKey) -> bool {
        self.draft
            .signatures
            .iter()
            .any(|signature| key.verifies(self.draft.root.as_bytes(), signature))
    }

    /// The new root as the site publishes it: its text and the signatures gathered.
    pub fn to_signed_root(&self) -> SignedRoot {
        SignedRoot::new(self.draft.root.clone(), self.draft.signatures.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::tests::{keypair, sign};
    use crate::trust::{KeySet, ROOT_FORMAT};

    fn set(keys: &[&PublicKey], threshold: u32) -> KeySet {
        KeySet::new(keys.iter().map(|key| (*key).clone()).collect(), threshold).unwrap()
    }

    #[test]
    fn holders_sign_one_at_a_time_until_both_thresholds_are_reached() {
        let (old_pair, old) = keypair();
        let base = Root::from_key(old.clone());
        let base_text = base.to_text();
        let base_signed = SignedRoot::new(
            base_text.clone(),
            vec![sign(&old_pair, base_text.as_bytes())],
        );
        let holders: Vec<_> = (0..3).map(|_| keypair()).collect();
        let keys: Vec<&PublicKey> = holders.iter().map(|(_, key)| key).collect();
        let next = Root {
            format: ROOT_FORMAT,
            version: 2,
            root: set(&keys, 2),
            release: set(&keys, 2),
            expires_at: Some("2027-12-01T00:00:00Z".parse().unwrap()),
        };
        let file = RootDraft::new(base_signed, &next).to_json();
        let mut draft = RootDraft::parse(&file).unwrap();
        assert_eq!(draft.next, next);
        let status = draft.status();
        assert_eq!((status.old.missing(), status.new.missing()), (1, 2));
        assert_eq!(status.new.unsigned.len(), 3);

        let text = draft.draft.root.clone();
        let add = |draft: &mut CheckedDraft, pair: &minisign::KeyPair, key: &PublicKey| {
            draft.add_signature(key, sign(pair, text.as_bytes()))
        };
        assert!(add(&mut draft, &holders[0].0, &holders[0].1).unwrap());
        // Signing twice with one key adds nothing.
        assert!(!add(&mut draft, &holders[0].0, &holders[0].1).unwrap());
        assert_eq!(draft.draft.signatures.len(), 1);
        // A stranger's key is refused, and nothing changes.
        let (stranger_pair, stranger) = keypair();
        let error = add(&mut draft, &stranger_pair, &stranger).unwrap_err();
        assert!(matches!(error, DraftError::NotARootKey { .. }), "{error}");
        // A signature by another key than the one named is refused.
        let error = add(&mut draft, &holders[2].0, &holders[1].1).unwrap_err();
        assert!(matches!(error, DraftError::BadSignature { .. }), "{error}");
        assert_eq!(draft.draft.signatures.len(), 1);

        // The draft travels as a file between holders.
        let mut draft = RootDraft::parse(&draft.draft.to_json()).unwrap();
        add(&mut draft, &holders[1].0, &holders[1].1).unwrap();
        let status = draft.status();
        assert_eq!((status.old.missing(), status.new.missing()), (1, 0));
        assert!(!status.complete());
        assert!(
            base.verify_successor(&draft.to_signed_root().to_json())
                .is_err()
        );

        add(&mut draft, &old_pair, &old).unwrap();
        let status = draft.status();
        assert!(status.complete(), "{status:?}");
        assert_eq!(status.old.signed, vec![old.key_id()]);
        assert_eq!(
            base.verify_successor(&draft.to_signed_root().to_json())
                .unwrap(),
            next
        );
    }

    #[test]
    fn a_draft_must_hold_the_version_after_a_genuine_base() {
        let (pair, key) = keypair();
        let base = Root::from_key(key.clone());
        let text = base.to_text();
        let genuine = SignedRoot::new(text.clone(), vec![sign(&pair, text.as_bytes())]);
        let skipping = Root {
            version: 3,
            ..base.clone()
        };
        let error = RootDraft::parse(&RootDraft::new(genuine, &skipping).to_json()).unwrap_err();
        assert!(
            matches!(error, DraftError::NotNext { base: 1, found: 3 }),
            "{error}"
        );

        let (other_pair, _) = keypair();
        let forged = SignedRoot::new(text.clone(), vec![sign(&other_pair, text.as_bytes())]);
        let next = Root { version: 2, ..base };
        let error = RootDraft::parse(&RootDraft::new(forged, &next).to_json()).unwrap_err();
        assert!(matches!(error, DraftError::Base { .. }), "{error}");

        // A published root given where a draft is expected.
        let error = RootDraft::parse(&SignedRoot::new(text, Vec::new()).to_json()).unwrap_err();
        assert!(matches!(error, DraftError::Malformed { .. }), "{error}");
    }
}
