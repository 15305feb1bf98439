//! The site's chain of roots, as the publisher reads, extends and signs under it.
//!
//! A site's first publish writes `roots/1.json`: [`Root::from_key`] for the signing
//! key, exactly what a client pinned to that key (`wavecast-update init --pubkey`)
//! already trusts. [`rotate`] appends the next root, signed by a threshold of the
//! old root keys and of the new ones. Every manifest is signed under the newest root
//! and says so in `root_version`, which is what makes clients walk the chain.

use jiff::Timestamp;
use wavecast_schema::{Envelope, KeySet, PublicKey, Role, Root, SignedRoot, TrustError};
use wavecast_site::{Storage, layout};

use crate::error::{Error, Result};
use crate::keys::{Signers, SigningKey};

/// A site's roots, from version 1 to the newest, each step verified.
#[derive(Debug, Clone)]
pub struct SiteRoots {
    /// `chain[i]` is root version `i + 1`.
    chain: Vec<Root>,
}

impl SiteRoots {
    /// Reads `roots/1.json`, `roots/2.json`… until one is missing, verifying root 1
    /// as self-signed and each later root as the successor of the one before.
    /// `None` when the site has no roots (a site published before roots existed;
    /// the next publish writes root 1).
    ///
    /// # Errors
    ///
    /// [`Error::Trust`] when a root fails verification; storage errors.
    pub fn load(storage: &dyn Storage) -> Result<Option<Self>> {
        let Some(first) = storage.get(&layout::root(1))? else {
            return Ok(None);
        };
        let mut chain = vec![Root::verify_pinned(&first).map_err(|source| Error::Trust {
            path: layout::root(1).to_string(),
            source,
        })?];
        loop {
            let newest = chain.last().expect("the chain starts with root 1");
            let path = layout::root(newest.version + 1);
            let Some(bytes) = storage.get(&path)? else {
                return Ok(Some(Self { chain }));
            };
            let next = newest
                .verify_successor(&bytes)
                .map_err(|source| Error::Trust {
                    path: path.to_string(),
                    source,
                })?;
            chain.push(next);
        }
    }

    /// The newest root: manifests are signed under it.
    pub fn newest(&self) -> &Root {
        self.chain.last().expect("a chain is never empty")
    }

    /// Root `version`, if the site has it.
    pub fn get(&self, version: u64) -> Option<&Root> {
        let index = usize::try_from(version.checked_sub(1)?).ok()?;
        self.chain.get(index)
    }

    /// Every root, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &Root> {
        self.chain.iter()
    }
}

/// The site's roots, writing `roots/1.json` first when the site has none: root 1 is
/// [`Root::from_key`] of the one signing key, so clients pinned to that key trust it.
///
/// # Errors
///
/// [`Error::FirstRootNeedsOneKey`] when a site without roots is signed with several
/// keys, [`Error::SignLaterNeedsRoots`] when it is to be signed later; verification,
/// signing and storage errors.
pub fn ensure_roots(storage: &dyn Storage, signers: &Signers) -> Result<SiteRoots> {
    if let Some(roots) = SiteRoots::load(storage)? {
        return Ok(roots);
    }
    let mut keys = signers.iter();
    let Some(key) = keys.next() else {
        return Err(Error::SignLaterNeedsRoots);
    };
    if keys.next().is_some() {
        return Err(Error::FirstRootNeedsOneKey);
    }
    let root = Root::from_key(key.public_key());
    let text = root.to_text();
    let signature = key.sign(text.as_bytes(), "wavecast root version=1")?;
    storage.put_bytes(
        &layout::root(1),
        &SignedRoot::new(text, vec![signature]).to_json(),
    )?;
    Ok(SiteRoots { chain: vec![root] })
}

/// Checks, before any work, that `signers` can sign the site's next manifest: a
/// threshold of the newest root's release keys, or one key on a site without roots.
/// A change signed later ([`Signers::later`]) needs a site with roots, whose release
/// keys `wavecast sign` then uses.
///
/// # Errors
///
/// [`Error::FirstRootNeedsOneKey`], [`Error::SignLaterNeedsRoots`],
/// [`Error::NotEnoughReleaseKeys`], verification and storage errors.
pub fn check_release_signers(storage: &dyn Storage, signers: &Signers) -> Result<()> {
    match SiteRoots::load(storage)? {
        Some(_) if signers.sign_later() => Ok(()),
        Some(roots) => release_signers(&roots, signers).map(drop),
        None if signers.sign_later() => Err(Error::SignLaterNeedsRoots),
        None if signers.iter().count() > 1 => Err(Error::FirstRootNeedsOneKey),
        None => Ok(()),
    }
}

/// The given keys that are release keys of the newest root, each once.
///
/// # Errors
///
/// [`Error::NotEnoughReleaseKeys`] when they fall short of its threshold.
fn release_signers<'s>(roots: &SiteRoots, signers: &'s Signers) -> Result<Vec<&'s SigningKey>> {
    let root = roots.newest();
    let mut members: Vec<(PublicKey, &SigningKey)> = Vec::new();
    let mut outsiders = Vec::new();
    for key in signers.iter() {
        let public = key.public_key();
        if !root.release.keys.contains(&public) {
            outsiders.push(key.key_id());
        } else if members.iter().all(|(member, _)| *member != public) {
            members.push((public, key));
        }
    }
    if members.len() < root.release.threshold as usize {
        return Err(Error::NotEnoughReleaseKeys {
            root: root.version,
            source: TrustError::BelowThreshold {
                document: "the manifest".into(),
                role: Role::Release,
                root: root.version,
                signers: members.len(),
                threshold: root.release.threshold,
                trusted: root.release.keys.iter().map(PublicKey::key_id).collect(),
                // Outsiders sign nothing here; the error lists them itself.
                uncounted: Box::default(),
            },
            outsiders,
        });
    }
    Ok(members.into_iter().map(|(_, key)| key).collect())
}

/// Signs manifest text with every given key that is a release key of the newest
/// root, once each, when they reach its threshold.
///
/// # Errors
///
/// [`Error::NotEnoughReleaseKeys`] when they fall short; signing errors.
pub fn sign_release(
    roots: &SiteRoots,
    signers: &Signers,
    text: &str,
    trusted_comment: &str,
) -> Result<Vec<String>> {
    release_signers(roots, signers)?
        .into_iter()
        .map(|key| key.sign(text.as_bytes(), trusted_comment))
        .collect()
}

/// Whether an envelope on the site is genuine: signed by a threshold of the release
/// keys of the root its manifest names. A site without roots predates them: any of
/// the given keys will do.
pub fn envelope_is_genuine(
    roots: Option<&SiteRoots>,
    signers: &Signers,
    envelope: &Envelope,
) -> bool {
    let text = envelope.manifest.as_bytes();
    match roots {
        Some(roots) => roots.get(envelope.root_version_hint()).is_some_and(|root| {
            root.check_signatures(Role::Release, "manifest", text, &envelope.signatures)
                .is_ok()
        }),
        None => signers.iter().any(|key| {
            envelope
                .signatures
                .iter()
                .any(|signature| key.verifies(text, signature))
        }),
    }
}

/// What changes in the next root. A role without new keys keeps its keys, and a
/// threshold not given stays as it was.
#[derive(Debug, Clone)]
pub struct Rotation {
    /// The new root keys, if they change.
    pub root_keys: Vec<PublicKey>,
    /// The new root threshold.
    pub root_threshold: Option<u32>,
    /// The new release keys, if they change.
    pub release_keys: Vec<PublicKey>,
    /// The new release threshold.
    pub release_threshold: Option<u32>,
    /// When the new root expires: clients refuse every manifest after it, until a
    /// newer root replaces it.
    pub expires_at: Timestamp,
}

/// The root that follows `old` with `rotation` applied, unsigned.
///
/// # Errors
///
/// [`Error::InvalidKeySet`] for a bad key set.
pub(crate) fn next_root(old: &Root, rotation: &Rotation) -> Result<Root> {
    let next_set = |role: Role, keys: &[PublicKey], threshold: Option<u32>| {
        let current = old.keys(role);
        let keys = if keys.is_empty() {
            current.keys.clone()
        } else {
            keys.to_vec()
        };
        KeySet::new(keys, threshold.unwrap_or(current.threshold))
            .map_err(|source| Error::InvalidKeySet { role, source })
    };
    Ok(Root {
        format: wavecast_schema::ROOT_FORMAT,
        version: old.version + 1,
        root: next_set(Role::Root, &rotation.root_keys, rotation.root_threshold)?,
        release: next_set(
            Role::Release,
            &rotation.release_keys,
            rotation.release_threshold,
        )?,
        expires_at: Some(rotation.expires_at),
    })
}

/// The trusted comment of a root signature, which `minisign -V` prints.
pub(crate) fn root_comment(root: &Root) -> String {
    format!("wavecast root version={}", root.version)
}

/// Writes the site's next root: `rotation` applied to the newest root, signed by
/// every given key that is a root key of the old or the new root. A threshold of
/// both must sign. Returns the root written. This is a whole ceremony on one
/// machine; [`crate::root_draft`] spreads it over the holders.
///
/// # Errors
///
/// [`Error::NoRoots`] when the site has no root yet; [`Error::InvalidKeySet`] for a
/// bad key set; [`Error::NotEnoughRootKeys`] when the keys given fall short of
/// either threshold; storage and signing errors.
pub fn rotate(storage: &dyn Storage, signers: &Signers, rotation: &Rotation) -> Result<Root> {
    let roots = SiteRoots::load(storage)?.ok_or(Error::NoRoots)?;
    let old = roots.newest();
    let new = next_root(old, rotation)?;
    let text = new.to_text();
    let comment = root_comment(&new);
    let mut signatures = Vec::new();
    for key in signers.iter() {
        let public = key.public_key();
        if old.root.keys.contains(&public) || new.root.keys.contains(&public) {
            signatures.push(key.sign(text.as_bytes(), &comment)?);
        }
    }
    let signed = SignedRoot::new(text, signatures).to_json();
    // The same checks a client makes, so a root that leaves here is one they accept.
    let checked = old
        .verify_successor(&signed)
        .map_err(|source| Error::NotEnoughRootKeys { source })?;
    storage.put_bytes(&layout::root(new.version), &signed)?;
    Ok(checked)
}

#[cfg(test)]
mod tests {
    use wavecast_site::FsStorage;

    use super::*;
    use crate::keys::SigningKey;

    /// Generates an unencrypted key pair under `dir/name` and loads it.
    fn key(dir: &std::path::Path, name: &str) -> SigningKey {
        crate::keys::generate(&dir.join(name), None, false).unwrap();
        load(dir, name)
    }

    fn load(dir: &std::path::Path, name: &str) -> SigningKey {
        let path = dir.join(name).join(crate::keys::SECRET_KEY_FILE);
        SigningKey::load(&path, || Ok(None)).unwrap()
    }

    fn signers(dir: &std::path::Path, names: &[&str]) -> Signers {
        Signers::new(names.iter().map(|name| load(dir, name)).collect()).unwrap()
    }

    #[test]
    fn the_first_root_is_the_signing_key_and_rotation_extends_the_chain() {
        let dir = tempfile::tempdir().unwrap();
        let storage = FsStorage::new(dir.path().join("site"));
        let old = key(dir.path(), "old");
        let new_root = key(dir.path(), "root");
        let new_release = key(dir.path(), "release");

        let roots = ensure_roots(&storage, &signers(dir.path(), &["old"])).unwrap();
        assert_eq!(*roots.newest(), Root::from_key(old.public_key()));

        let rotation = Rotation {
            root_keys: vec![new_root.public_key()],
            release_keys: vec![new_release.public_key()],
            root_threshold: None,
            release_threshold: None,
            expires_at: "2027-11-22T00:00:00Z".parse().unwrap(),
        };
        // The new root key alone cannot vouch for itself.
        let error = rotate(&storage, &signers(dir.path(), &["root"]), &rotation).unwrap_err();
        assert!(matches!(error, Error::NotEnoughRootKeys { .. }), "{error}");
        // Nor can the old key alone bring in keys that never signed.
        let error = rotate(&storage, &signers(dir.path(), &["old"]), &rotation).unwrap_err();
        assert!(matches!(error, Error::NotEnoughRootKeys { .. }), "{error}");

        let second = rotate(&storage, &signers(dir.path(), &["old", "root"]), &rotation).unwrap();
        assert_eq!(second.version, 2);
        assert_eq!(second.expires_at, Some(rotation.expires_at));
        let roots = SiteRoots::load(&storage).unwrap().unwrap();
        assert_eq!(roots.newest(), &second);
        assert_eq!(roots.iter().count(), 2);

        // Manifests are now signed by the new release key only.
        let error = sign_release(&roots, &signers(dir.path(), &["old"]), "m", "c").unwrap_err();
        assert!(
            matches!(error, Error::NotEnoughReleaseKeys { .. }),
            "{error}"
        );
        let signatures =
            sign_release(&roots, &signers(dir.path(), &["release"]), "m", "c").unwrap();
        assert_eq!(signatures.len(), 1);
    }

    #[test]
    fn a_new_site_starts_with_one_key() {
        let dir = tempfile::tempdir().unwrap();
        let storage = FsStorage::new(dir.path().join("site"));
        key(dir.path(), "a");
        key(dir.path(), "b");
        let error = ensure_roots(&storage, &signers(dir.path(), &["a", "b"])).unwrap_err();
        assert!(matches!(error, Error::FirstRootNeedsOneKey), "{error}");
    }
}
