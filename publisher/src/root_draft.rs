//! Root ceremonies with the keys in different hands: the next root is drafted from
//! the site, signed by each holder on their own machine with only the draft file and
//! their key, and published once both thresholds are met.
//!
//! [`draft`] writes the next root unsigned, beside the site's newest root (its
//! *base*, see [`RootDraft`]); [`sign`] adds one key's signature to a draft file and
//! needs no site; [`publish`] checks that the draft still follows the site's newest
//! root and that a threshold of the old and of the new root keys signed it (the
//! checks a client makes), then writes `roots/<n>.json`. A draft file is rewritten
//! atomically, so a failed step leaves it as it was.

use std::io::Write;
use std::path::Path;

use jiff::{SignedDuration, Timestamp};
use wavecast_schema::{CheckedDraft, DraftError, Root, RootDraft, SignedRoot};
use wavecast_site::{Storage, layout};

use crate::error::{Error, Result};
use crate::keys::SigningKey;
use crate::trust::{Rotation, SiteRoots, next_root, root_comment};

/// Drafts the site's next root: `rotation` applied to its newest root, unsigned.
///
/// # Errors
///
/// [`Error::NoRoots`] when the site has no root yet, [`Error::InvalidKeySet`] for a
/// bad key set, [`Error::DraftExpired`] for an expiry already past at `now`;
/// verification and storage errors.
pub fn draft(storage: &dyn Storage, rotation: &Rotation, now: Timestamp) -> Result<CheckedDraft> {
    let roots = SiteRoots::load(storage)?.ok_or(Error::NoRoots)?;
    let old = roots.newest();
    let next = next_root(old, rotation)?;
    refuse_expired(&next, now)?;
    let path = layout::root(old.version);
    let bytes = storage.get(&path)?.ok_or(Error::NoRoots)?;
    let base = SignedRoot::parse(&bytes).map_err(|source| Error::Trust {
        path: path.to_string(),
        source: wavecast_schema::TrustError::Malformed {
            document: format!("root v{}", old.version),
            source,
        },
    })?;
    RootDraft::parse(&RootDraft::new(base, &next).to_json()).map_err(|source| Error::InvalidDraft {
        path: path.as_str().into(),
        source: Box::new(source),
    })
}

/// Reads and checks a draft file.
///
/// # Errors
///
/// [`Error::Read`] and [`Error::InvalidDraft`].
pub fn read(path: &Path) -> Result<CheckedDraft> {
    let bytes = fs_err::read(path).map_err(|source| Error::Read {
        path: path.into(),
        source,
    })?;
    RootDraft::parse(&bytes).map_err(|source| Error::InvalidDraft {
        path: path.into(),
        source: Box::new(source),
    })
}

/// Writes a draft file atomically (a temporary file beside it, then a rename), so
/// that a failure leaves the file as it was. An existing file is only replaced when
/// `replace` is set.
///
/// # Errors
///
/// [`Error::DraftExists`] and [`Error::Write`].
pub fn write(path: &Path, draft: &RootDraft, replace: bool) -> Result<()> {
    if !replace && path.exists() {
        return Err(Error::DraftExists { path: path.into() });
    }
    let write_error = |source| Error::Write {
        path: path.into(),
        source,
    };
    let mut temp_name = path.file_name().unwrap_or_default().to_owned();
    temp_name.push(".tmp");
    let temp = path.with_file_name(temp_name);
    let mut file = fs_err::File::create(&temp).map_err(write_error)?;
    file.write_all(&draft.to_json())
        .and_then(|()| file.sync_all())
        .map_err(write_error)?;
    fs_err::rename(&temp, path).map_err(write_error)
}

/// Signs the draft's new root with `key`. Returns `false`, with the draft unchanged,
/// when `key` signed it already.
///
/// # Errors
///
/// [`Error::InvalidDraft`] with [`DraftError::NotARootKey`] when `key` is not a root
/// key of the base or of the new root (nothing is signed); signing errors.
pub fn sign(draft: &mut CheckedDraft, path: &Path, key: &SigningKey) -> Result<bool> {
    let public = key.public_key();
    let invalid = |source| Error::InvalidDraft {
        path: path.into(),
        source: Box::new(source),
    };
    if !draft.may_sign(&public) {
        return Err(invalid(DraftError::NotARootKey {
            key: public.key_id(),
            base: draft.base.version,
            next: draft.next.version,
        }));
    }
    if draft.signed_by(&public) {
        return Ok(false);
    }
    let signature = key.sign(draft.draft.root.as_bytes(), &root_comment(&draft.next))?;
    draft.add_signature(&public, signature).map_err(invalid)
}

/// Publishes a fully signed draft as the site's `roots/<n>.json`, after the checks a
/// client makes. Returns the root published.
///
/// # Errors
///
/// [`Error::NoRoots`]; [`Error::DraftOutdated`] when the site's newest root is no
/// longer the draft's base, [`Error::DraftForeign`] when the base is another site's
/// root; [`Error::DraftExpired`]; [`Error::DraftIncomplete`] when a threshold is
/// not met; verification and storage errors.
pub fn publish(storage: &dyn Storage, draft: &CheckedDraft, now: Timestamp) -> Result<Root> {
    let roots = SiteRoots::load(storage)?.ok_or(Error::NoRoots)?;
    let newest = roots.newest();
    if newest.version != draft.base.version {
        return Err(Error::DraftOutdated {
            base: draft.base.version,
            newest: newest.version,
        });
    }
    if *newest != draft.base {
        return Err(Error::DraftForeign {
            version: newest.version,
        });
    }
    refuse_expired(&draft.next, now)?;
    let status = draft.status();
    if !status.complete() {
        return Err(Error::DraftIncomplete {
            version: draft.next.version,
            base: draft.base.version,
            base_missing: status.old.missing(),
            new_missing: status.new.missing(),
        });
    }
    let signed = draft.to_signed_root().to_json();
    let checked = newest
        .verify_successor(&signed)
        .map_err(|source| Error::NotEnoughRootKeys { source })?;
    storage.put_bytes(&layout::root(checked.version), &signed)?;
    Ok(checked)
}

/// Refuses a new root that has expired at `now`: publishing it would stop every
/// client.
fn refuse_expired(root: &Root, now: Timestamp) -> Result<()> {
    match root.expires_at {
        Some(expires_at) if root.expired(now, SignedDuration::ZERO) => Err(Error::DraftExpired {
            version: root.version,
            expires_at,
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use wavecast_site::FsStorage;

    use super::*;
    use crate::keys::{self, Signers};
    use crate::trust;

    fn key(dir: &Path, name: &str) -> SigningKey {
        keys::generate(&dir.join(name), None, false).unwrap();
        SigningKey::load(&dir.join(name).join(keys::SECRET_KEY_FILE), || Ok(None)).unwrap()
    }

    fn rotation(root_keys: &[&SigningKey], threshold: u32, expires_at: &str) -> Rotation {
        Rotation {
            root_keys: root_keys.iter().map(|key| key.public_key()).collect(),
            root_threshold: Some(threshold),
            release_keys: Vec::new(),
            release_threshold: None,
            expires_at: expires_at.parse().unwrap(),
        }
    }

    #[test]
    fn a_draft_signed_one_key_at_a_time_publishes_only_when_complete_and_current() {
        let dir = tempfile::tempdir().unwrap();
        let storage = FsStorage::new(dir.path().join("site"));
        let old = key(dir.path(), "old");
        let holders: Vec<SigningKey> = ["a", "b", "c"]
            .iter()
            .map(|name| key(dir.path(), name))
            .collect();
        trust::ensure_roots(&storage, &Signers::from(key_copy(dir.path(), "old"))).unwrap();
        let now: Timestamp = "2026-12-01T00:00:00Z".parse().unwrap();
        let holder_refs: Vec<&SigningKey> = holders.iter().collect();

        let error = draft(
            &storage,
            &rotation(&holder_refs, 2, "2026-11-01T00:00:00Z"),
            now,
        )
        .unwrap_err();
        assert!(matches!(error, Error::DraftExpired { .. }), "{error}");

        let path = dir.path().join("root.draft.json");
        let mut drafted = draft(
            &storage,
            &rotation(&holder_refs, 2, "2027-12-01T00:00:00Z"),
            now,
        )
        .unwrap();
        write(&path, &drafted.draft, false).unwrap();
        assert!(matches!(
            write(&path, &drafted.draft, false),
            Err(Error::DraftExists { .. })
        ));

        assert!(sign(&mut drafted, &path, &holders[0]).unwrap());
        assert!(!sign(&mut drafted, &path, &holders[0]).unwrap());
        let error = publish(&storage, &drafted, now).unwrap_err();
        assert!(
            matches!(
                error,
                Error::DraftIncomplete {
                    base_missing: 1,
                    new_missing: 1,
                    ..
                }
            ),
            "{error}"
        );
        assert!(storage.get(&layout::root(2)).unwrap().is_none());

        sign(&mut drafted, &path, &holders[1]).unwrap();
        sign(&mut drafted, &path, &old).unwrap();
        assert!(drafted.status().complete());

        // Meanwhile someone rotated with every key at hand: the draft is outdated.
        let other = dir.path().join("other");
        let mut racing = draft(
            &storage,
            &rotation(&holder_refs, 1, "2027-12-01T00:00:00Z"),
            now,
        )
        .unwrap();
        sign(&mut racing, &other, &old).unwrap();
        sign(&mut racing, &other, &holders[2]).unwrap();
        publish(&storage, &racing, now).unwrap();
        let error = publish(&storage, &drafted, now).unwrap_err();
        assert!(
            matches!(error, Error::DraftOutdated { base: 1, newest: 2 }),
            "{error}"
        );
    }

    #[test]
    fn a_published_draft_is_a_root_clients_walk_to() {
        let dir = tempfile::tempdir().unwrap();
        let storage = FsStorage::new(dir.path().join("site"));
        let old = key(dir.path(), "old");
        let new = key(dir.path(), "new");
        trust::ensure_roots(&storage, &Signers::from(key_copy(dir.path(), "old"))).unwrap();
        let now: Timestamp = "2026-12-01T00:00:00Z".parse().unwrap();
        let mut drafted =
            draft(&storage, &rotation(&[&new], 1, "2027-12-01T00:00:00Z"), now).unwrap();
        let path = dir.path().join("d.json");
        sign(&mut drafted, &path, &old).unwrap();
        sign(&mut drafted, &path, &new).unwrap();
        let published = publish(&storage, &drafted, now).unwrap();
        let roots = SiteRoots::load(&storage).unwrap().unwrap();
        assert_eq!(roots.newest(), &published);
        assert_eq!(published.root.keys, vec![new.public_key()]);
        assert_eq!(
            published.expires_at,
            Some("2027-12-01T00:00:00Z".parse().unwrap())
        );
    }

    /// Loads the key generated under `dir/name` again (a `SigningKey` is not `Clone`).
    fn key_copy(dir: &Path, name: &str) -> SigningKey {
        SigningKey::load(&dir.join(name).join(keys::SECRET_KEY_FILE), || Ok(None)).unwrap()
    }
}
