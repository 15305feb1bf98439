//! Signing changes made with `--sign-later`, where the release keys are.
//!
//! A change made without keys ([`Signers::later`]) leaves its manifest unsigned in
//! `channels/<channel>.json.unsigned`, which no client reads. [`sign_pending`] adds
//! the signatures of the release keys it is given, one run per machine if the keys
//! are on several, and keeps the pending file until a threshold of the newest root's
//! release keys has signed. Then it checks again what may have changed meanwhile
//! (the root, the live serial, the expiry, every blob the manifest refers to) and
//! only then writes the live manifest, the commit point. A half-signed manifest is
//! never live.

use jiff::Timestamp;
use wavecast_schema::{Blake3Hash, ChannelName, Envelope, KeyId, Manifest, PlatformRelease, Role};
use wavecast_site::Storage;
use wavecast_site::layout::{self, BlobKind};

use crate::channel::{live_manifest, manifest_comment, pending_channels, put_envelope};
use crate::error::{Error, Result};
use crate::keys::Signers;
use crate::trust::SiteRoots;

/// What [`sign_pending`] did to one channel's pending manifest.
#[derive(Debug, Clone)]
pub struct Pending {
    /// The pending manifest.
    pub manifest: Manifest,
    /// The release keys that have signed it, this run included.
    pub signed: Vec<KeyId>,
    /// The release keys that have not.
    pub unsigned: Vec<KeyId>,
    /// How many must sign.
    pub threshold: u32,
    /// The keys given that signed it in this run.
    pub added: Vec<KeyId>,
    /// Whether it is now the live manifest.
    pub published: bool,
}

impl Pending {
    /// How many more release keys must sign.
    pub fn missing(&self) -> usize {
        (self.threshold as usize).saturating_sub(self.signed.len())
    }
}

/// Signs every pending manifest of the site with each of `signers` that has not
/// signed it yet, and publishes those a threshold of release keys has signed, when
/// `publish` is set. Without it (an air-gapped copy of the site, which lacks the
/// blobs) the signatures are only added. Every key must be a release key of the
/// site's newest root; the pending files are unchanged otherwise.
///
/// # Errors
///
/// [`Error::NoRoots`], [`Error::NotAReleaseKey`], [`Error::CorruptPending`],
/// [`Error::PendingOutdated`], and before publishing [`Error::RootExpired`],
/// [`Error::PendingStale`], [`Error::PendingExpired`], [`Error::PendingBlob`];
/// signing and storage errors.
pub fn sign_pending(
    storage: &dyn Storage,
    signers: &Signers,
    now: Timestamp,
    publish: bool,
) -> Result<Vec<Pending>> {
    let roots = SiteRoots::load(storage)?.ok_or(Error::NoRoots)?;
    let root = roots.newest();
    for key in signers.iter() {
        if !root.release.keys.contains(&key.public_key()) {
            return Err(Error::NotAReleaseKey {
                key_id: key.key_id(),
                root: root.version,
            });
        }
    }
    let mut done = Vec::new();
    for channel in pending_channels(storage)? {
        done.push(sign_one(storage, &roots, signers, &channel, now, publish)?);
    }
    Ok(done)
}

fn sign_one(
    storage: &dyn Storage,
    roots: &SiteRoots,
    signers: &Signers,
    channel: &ChannelName,
    now: Timestamp,
    publish: bool,
) -> Result<Pending> {
    let path = layout::pending_manifest(channel);
    let corrupt = |source| Error::CorruptPending {
        channel: channel.clone(),
        source,
    };
    let bytes = storage.get(&path)?.ok_or_else(|| Error::PendingManifest {
        channel: channel.clone(),
    })?;
    let mut envelope = Envelope::parse(&bytes).map_err(corrupt)?;
    let manifest = Manifest::parse(envelope.manifest.as_bytes()).map_err(corrupt)?;
    let root = roots.newest();
    if manifest.root_version != root.version || &manifest.channel != channel {
        return Err(Error::PendingOutdated {
            channel: channel.clone(),
            root_version: manifest.root_version,
            newest: root.version,
        });
    }
    let text = envelope.manifest.clone();
    let mut added = Vec::new();
    for key in signers.iter() {
        let signed = envelope
            .signatures
            .iter()
            .any(|signature| key.verifies(text.as_bytes(), signature));
        if !signed {
            envelope
                .signatures
                .push(key.sign(text.as_bytes(), &manifest_comment(&manifest))?);
            added.push(key.public_key().key_id());
        }
    }
    let signed = root.signing_keys(Role::Release, text.as_bytes(), &envelope.signatures);
    let mut pending = Pending {
        unsigned: root
            .release
            .keys
            .iter()
            .map(wavecast_schema::PublicKey::key_id)
            .filter(|id| !signed.contains(id))
            .collect(),
        signed,
        threshold: root.release.threshold,
        added,
        published: false,
        manifest,
    };
    // Kept before anything else is checked: a signature made is never lost.
    if !pending.added.is_empty() {
        storage.put_bytes(&path, &envelope.to_json())?;
    }
    if pending.missing() > 0 || !publish {
        return Ok(pending);
    }
    check_before_publishing(storage, roots, &pending.manifest, now)?;
    // Only the signatures that count go live.
    envelope.signatures.retain(|signature| {
        root.release
            .keys
            .iter()
            .any(|key| key.verifies(text.as_bytes(), signature))
    });
    put_envelope(storage, &pending.manifest, &envelope)?;
    storage.delete(&path)?;
    pending.published = true;
    Ok(pending)
}

/// What may have changed since the manifest was made: the root must not have
/// expired, the live manifest must not have moved past it, it must not have expired,
/// and every blob it refers to must be on the site.
fn check_before_publishing(
    storage: &dyn Storage,
    roots: &SiteRoots,
    manifest: &Manifest,
    now: Timestamp,
) -> Result<()> {
    let root = roots.newest();
    if let Some(expires_at) = root.expires_at
        && root.expired(now, jiff::SignedDuration::ZERO)
    {
        return Err(Error::RootExpired {
            version: root.version,
            expires_at,
        });
    }
    let channel = &manifest.channel;
    if let Some(live) = live_manifest(storage, &Signers::later(), channel)?
        && live.serial >= manifest.serial
    {
        return Err(Error::PendingStale {
            channel: channel.clone(),
            serial: manifest.serial,
            live: live.serial,
        });
    }
    if manifest.expires_at <= now {
        return Err(Error::PendingExpired {
            channel: channel.clone(),
            expires_at: manifest.expires_at,
        });
    }
    check_blobs(storage, manifest)
}

/// Checks that every blob `manifest` refers to is on the site with its size, reading
/// each platform release document (checked by blake3 too) for the blobs it names.
fn check_blobs(storage: &dyn Storage, manifest: &Manifest) -> Result<()> {
    let problem = |path: &wavecast_schema::RelativePath, problem: String| Error::PendingBlob {
        channel: manifest.channel.clone(),
        path: path.to_string(),
        problem,
    };
    let check_size = |hash: &Blake3Hash, kind: BlobKind, size: u64| -> Result<()> {
        let path = layout::blob(hash, kind);
        match storage.size(&path)? {
            Some(found) if found == size => Ok(()),
            Some(found) => Err(problem(&path, format!("holds {found} bytes, not {size}"))),
            None => Err(problem(&path, "is missing".into())),
        }
    };
    for build in manifest.updater.values() {
        check_size(&build.package.blake3, BlobKind::Package, build.package.size)?;
    }
    for blob in manifest
        .releases
        .iter()
        .flat_map(|release| release.platforms.values())
    {
        let path = layout::blob(&blob.blake3, BlobKind::PlatformRelease);
        let bytes = storage
            .get(&path)?
            .ok_or_else(|| problem(&path, "is missing".into()))?;
        if bytes.len() as u64 != blob.size || Blake3Hash::of(&bytes) != blob.blake3 {
            return Err(problem(&path, "does not match its size and blake3".into()));
        }
        let document = PlatformRelease::parse(&bytes)
            .map_err(|error| problem(&path, format!("does not parse: {error}")))?;
        for module in document.modules.values() {
            check_size(
                &module.package.blake3,
                BlobKind::of_package(module),
                module.package.size,
            )?;
            check_size(&module.index.blake3, BlobKind::FileIndex, module.index.size)?;
            if let Some(copies) = &module.copies {
                check_size(&copies.blake3, BlobKind::Copies, copies.size)?;
            }
        }
        for pack in &document.packs {
            check_size(&pack.blake3, BlobKind::Pack, pack.size)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use jiff::SignedDuration;
    use wavecast_site::FsStorage;

    use super::*;
    use crate::channel::{current_manifest, successor, validate_and_write};
    use crate::keys::{self, SigningKey};
    use crate::rollout_plan::tests::release;
    use crate::trust::{self, Rotation};

    fn key(dir: &std::path::Path, name: &str) -> SigningKey {
        let folder = dir.join(name);
        if !folder.exists() {
            keys::generate(&folder, None, false).unwrap();
        }
        SigningKey::load(&folder.join(keys::SECRET_KEY_FILE), || Ok(None)).unwrap()
    }

    fn signers(dir: &std::path::Path, names: &[&str]) -> Signers {
        Signers::new(names.iter().map(|name| key(dir, name)).collect()).unwrap()
    }

    fn signatures(storage: &FsStorage, channel: &ChannelName) -> usize {
        let bytes = storage
            .get(&layout::pending_manifest(channel))
            .unwrap()
            .unwrap();
        Envelope::parse(&bytes).unwrap().signatures.len()
    }

    #[test]
    fn a_pending_manifest_goes_live_only_once_a_threshold_signed_and_it_still_holds() {
        let dir = tempfile::tempdir().unwrap();
        let storage = FsStorage::new(dir.path().join("site"));
        let channel: ChannelName = "stable".parse().unwrap();
        let now: Timestamp = "2030-01-01T00:00:00Z".parse().unwrap();
        let day = SignedDuration::from_hours(24);

        // Without roots the first manifest cannot wait: signing it writes root 1.
        let mut first = successor(None, &channel, None, now, day);
        let error = validate_and_write(&storage, &Signers::later(), &mut first).unwrap_err();
        assert!(matches!(error, Error::SignLaterNeedsRoots), "{error}");
        validate_and_write(&storage, &signers(dir.path(), &["a"]), &mut first).unwrap();
        let rotation = Rotation {
            root_keys: Vec::new(),
            root_threshold: None,
            release_keys: vec![
                key(dir.path(), "b").public_key(),
                key(dir.path(), "c").public_key(),
            ],
            release_threshold: Some(2),
            expires_at: "2031-01-01T00:00:00Z".parse().unwrap(),
        };
        trust::rotate(&storage, &signers(dir.path(), &["a"]), &rotation).unwrap();

        let existing = current_manifest(&storage, &Signers::later(), &channel).unwrap();
        let mut next = successor(existing, &channel, None, now, day);
        next.releases.push(release("1.0.0", 10_000));
        validate_and_write(&storage, &Signers::later(), &mut next).unwrap();
        let live = || storage.get(&layout::channel_manifest(&channel)).unwrap();
        let before = live();
        // A second change would replace the pending one: refused.
        let error = current_manifest(&storage, &Signers::later(), &channel).unwrap_err();
        assert!(matches!(error, Error::PendingManifest { .. }), "{error}");

        let error = sign_pending(&storage, &signers(dir.path(), &["a"]), now, true).unwrap_err();
        assert!(
            matches!(error, Error::NotAReleaseKey { root: 2, .. }),
            "{error}"
        );
        let done = sign_pending(&storage, &signers(dir.path(), &["b"]), now, true).unwrap();
        assert_eq!((done[0].missing(), done[0].published), (1, false));
        let again = sign_pending(&storage, &signers(dir.path(), &["b"]), now, true).unwrap();
        assert!(again[0].added.is_empty());
        assert_eq!(signatures(&storage, &channel), 1);
        assert_eq!(live(), before, "a half-signed manifest is never live");

        // The second key completes it, but its release's blobs are not on the site:
        // the signature is kept, nothing goes live.
        let error = sign_pending(&storage, &signers(dir.path(), &["c"]), now, true).unwrap_err();
        assert!(error.to_string().contains("is missing"), "{error}");
        assert_eq!(signatures(&storage, &channel), 2);
        assert_eq!(live(), before);

        // Past its expiry it can no longer go live.
        let late = now + SignedDuration::from_hours(48);
        let error = sign_pending(&storage, &signers(dir.path(), &["c"]), late, true).unwrap_err();
        assert!(matches!(error, Error::PendingExpired { .. }), "{error}");
    }

    #[test]
    fn a_pending_manifest_the_live_one_moved_past_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let storage = FsStorage::new(dir.path().join("site"));
        let channel: ChannelName = "stable".parse().unwrap();
        let now: Timestamp = "2030-01-01T00:00:00Z".parse().unwrap();
        let day = SignedDuration::from_hours(24);
        let key_a = signers(dir.path(), &["a"]);
        let mut first = successor(None, &channel, None, now, day);
        validate_and_write(&storage, &key_a, &mut first).unwrap();

        let mut pending = successor(Some(first.clone()), &channel, None, now, day);
        validate_and_write(&storage, &Signers::later(), &mut pending).unwrap();
        // Another publisher, unaware of it, signs serial 2 directly.
        let held = storage
            .get(&layout::pending_manifest(&channel))
            .unwrap()
            .unwrap();
        storage.delete(&layout::pending_manifest(&channel)).unwrap();
        let mut direct = successor(Some(first), &channel, None, now, day);
        validate_and_write(&storage, &key_a, &mut direct).unwrap();
        storage
            .put_bytes(&layout::pending_manifest(&channel), &held)
            .unwrap();

        let error = sign_pending(&storage, &key_a, now, true).unwrap_err();
        assert!(
            matches!(
                error,
                Error::PendingStale {
                    serial: 2,
                    live: 2,
                    ..
                }
            ),
            "{error}"
        );
        // An empty manifest needs no blobs: once the stale one is dropped, the next
        // pending change goes live with one signature.
        storage.delete(&layout::pending_manifest(&channel)).unwrap();
        let mut third = successor(Some(direct), &channel, None, now, day);
        validate_and_write(&storage, &Signers::later(), &mut third).unwrap();
        let done = sign_pending(&storage, &key_a, now, true).unwrap();
        assert!(done[0].published);
        assert!(
            storage
                .get(&layout::pending_manifest(&channel))
                .unwrap()
                .is_none()
        );
        let live = current_manifest(&storage, &key_a, &channel)
            .unwrap()
            .unwrap();
        assert_eq!(live.serial, 3);
    }
}
