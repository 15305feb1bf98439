//! Changing the releases live on a site: a release's rollout (with the edits of
//! [`rollout_plan`](crate::rollout_plan)), and promoting a release from one channel
//! to another.
//!
//! Every change goes the same way (see [`channel`](crate::channel)): read the
//! channel's manifest and verify it with the key, change it in memory, bump `serial`,
//! set `published_at` and `expires_at`, validate, and sign and write it.

use semver::Version;
use wavecast_schema::{ChannelName, Manifest, Release};
use wavecast_site::Storage;

use crate::channel::{
    Signing, change_manifest, current_manifest, live_versions, successor, validate_and_write,
};
use crate::client_floor::set_client_floor;
use crate::error::{Error, Result};
use crate::rollout_plan::{RolloutChange, promoted, random_salt};

/// A release before and after a change, and the manifest written.
#[derive(Debug, Clone)]
pub struct ReleaseChange {
    /// The release as it was.
    pub before: Release,
    /// The release as written.
    pub after: Release,
    /// The new manifest of the channel.
    pub manifest: Manifest,
}

/// Changes one release of a channel with `change` and writes the new manifest
/// through [`change_manifest`].
///
/// # Errors
///
/// [`Error::UnknownVersion`] when `version` is not live on the channel, and those of
/// [`change_manifest`].
pub fn change_release(
    storage: &dyn Storage,
    signing: Signing<'_>,
    channel: &ChannelName,
    version: &Version,
    change: impl FnOnce(&mut Release) -> Result<()>,
) -> Result<ReleaseChange> {
    change_release_and_floor(storage, signing, channel, version, None, change)
}

/// [`change_release`], also setting the channel's `min_client_version` to `floor`
/// when one is given (`rollout --min-client-version`), in the same signed manifest.
///
/// # Errors
///
/// Those of [`change_release`], and of [`set_client_floor`].
pub fn change_release_and_floor(
    storage: &dyn Storage,
    signing: Signing<'_>,
    channel: &ChannelName,
    version: &Version,
    floor: Option<&Version>,
    change: impl FnOnce(&mut Release) -> Result<()>,
) -> Result<ReleaseChange> {
    let mut before = None;
    let manifest = change_manifest(storage, signing, channel, |manifest| {
        if let Some(floor) = floor {
            set_client_floor(manifest, floor)?;
        }
        let live = live_versions(manifest);
        let release = manifest
            .releases
            .iter_mut()
            .find(|release| &release.version == version)
            .ok_or_else(|| Error::UnknownVersion {
                version: version.clone(),
                channel: channel.clone(),
                live,
            })?;
        before = Some(release.clone());
        change(release)
    })?;
    let after = manifest
        .release(version)
        .cloned()
        .expect("the changed release is in the manifest just written");
    Ok(ReleaseChange {
        before: before.expect("the change ran"),
        after,
        manifest,
    })
}

/// What [`promote`] did.
#[derive(Debug, Clone)]
pub struct Promotion {
    /// The release in the source channel.
    pub source: Release,
    /// The release the target channel had with that version, replaced with `--force`.
    pub replaced: Option<Release>,
    /// The release as added to the target channel.
    pub release: Release,
    /// The new manifest of the target channel.
    pub manifest: Manifest,
}

/// Copies release `version` from channel `from` to channel `to` with a new salt and
/// the plan `change` makes from a new one (100 % by default). The packages are
/// already on the site, content-addressed, so nothing but the manifest is written.
/// A target channel without a manifest is created. With `force` a release the target
/// already has is replaced, keeping its salt so its clients keep their buckets.
///
/// # Errors
///
/// [`Error::UnknownChannel`] and [`Error::UnknownVersion`] for the source,
/// [`Error::VersionExists`] when the target has the version and `force` is false,
/// and those of [`change_manifest`].
pub fn promote(
    storage: &dyn Storage,
    signing: Signing<'_>,
    version: &Version,
    (from, to): (&ChannelName, &ChannelName),
    change: &RolloutChange,
    force: bool,
) -> Result<Promotion> {
    let source_manifest =
        current_manifest(storage, signing.signers, from)?.ok_or_else(|| Error::UnknownChannel {
            channel: from.clone(),
        })?;
    let source =
        source_manifest
            .release(version)
            .cloned()
            .ok_or_else(|| Error::UnknownVersion {
                version: version.clone(),
                channel: from.clone(),
                live: live_versions(&source_manifest),
            })?;
    let target = current_manifest(storage, signing.signers, to)?;
    let replaced = target
        .as_ref()
        .and_then(|manifest| manifest.release(version))
        .cloned();
    if replaced.is_some() && !force {
        return Err(Error::VersionExists {
            version: version.clone(),
            channel: to.clone(),
        });
    }
    let salt = match &replaced {
        Some(release) => release.rollout.salt.clone(),
        None => random_salt()?,
    };
    let release = promoted(&source, salt, change, signing.now);
    let product = target.is_none().then(|| source_manifest.product.clone());
    let mut manifest = successor(target, to, product, signing.now, signing.expires_in);
    manifest
        .releases
        .retain(|release| &release.version != version);
    manifest.releases.push(release.clone());
    validate_and_write(storage, signing.signers, &mut manifest)?;
    Ok(Promotion {
        source,
        replaced,
        release,
        manifest,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use jiff::SignedDuration;
    use wavecast_schema::BasisPoints;
    use wavecast_site::FsStorage;

    use super::*;
    use crate::keys::{self, Password, Signers};
    use crate::rollout_plan::pause;
    use crate::rollout_plan::tests::{T0, at, channel, release, rule};

    /// A site with one signed manifest, for the storage-level functions.
    pub(crate) fn site(dir: &std::path::Path, releases: Vec<Release>) -> (FsStorage, Signers) {
        let password = Password::new("pw".into());
        keys::generate(&dir.join("keys"), Some(&password), false).unwrap();
        let key = crate::keys::SigningKey::load(&dir.join("keys/wavecast.key"), || {
            Ok(Some(Password::new("pw".into())))
        })
        .unwrap()
        .into();
        let storage = FsStorage::new(dir.join("site"));
        let mut manifest = successor(
            None,
            &channel(),
            None,
            at(T0),
            SignedDuration::from_hours(24),
        );
        manifest.releases = releases;
        validate_and_write(&storage, &key, &mut manifest).unwrap();
        (storage, key)
    }

    #[test]
    fn changing_a_release_bumps_the_serial_and_signs_the_result() {
        let dir = tempfile::tempdir().unwrap();
        let (storage, key) = site(dir.path(), vec![release("1.0.0", 10_000)]);
        let now = at("2026-11-22T00:00:00Z");
        let signing = Signing {
            signers: &key,
            now,
            expires_in: SignedDuration::from_hours(48),
        };
        let version: Version = "1.0.0".parse().unwrap();
        let changed = change_release(&storage, signing, &channel(), &version, |release| {
            pause(release, &channel(), now)
        })
        .unwrap();
        assert_eq!(changed.manifest.serial, 2);
        assert_eq!(changed.manifest.published_at, now);
        assert_eq!(changed.manifest.expires_at, at("2026-11-24T00:00:00Z"));
        assert_eq!(changed.before.rollout.paused_at, None);
        assert_eq!(changed.after.rollout.paused_at, Some(now));
        let read = current_manifest(&storage, &key, &channel())
            .unwrap()
            .unwrap();
        assert_eq!(read, changed.manifest);

        let missing: Version = "9.9.9".parse().unwrap();
        let error =
            change_release(&storage, signing, &channel(), &missing, |_| Ok(())).unwrap_err();
        assert!(matches!(error, Error::UnknownVersion { .. }), "{error}");
        assert!(error.to_string().contains("live: 1.0.0"), "{error}");
        let beta: ChannelName = "beta".parse().unwrap();
        let error = change_release(&storage, signing, &beta, &version, |_| Ok(())).unwrap_err();
        assert!(matches!(error, Error::UnknownChannel { .. }), "{error}");
        // A failed change writes nothing.
        let error = change_release(&storage, signing, &channel(), &version, |release| {
            pause(release, &channel(), now)
        })
        .unwrap_err();
        assert!(matches!(error, Error::AlreadyPaused { .. }));
        let error = change_release(&storage, signing, &channel(), &version, |release| {
            release.rollout.rules = vec![rule("a: x = 1 -> 5%"), rule("a: x = 2 -> 5%")];
            Ok(())
        })
        .unwrap_err();
        assert!(matches!(error, Error::InvalidManifest { .. }), "{error}");
        assert_eq!(
            current_manifest(&storage, &key, &channel())
                .unwrap()
                .unwrap()
                .serial,
            2
        );
    }

    #[test]
    fn promote_copies_into_another_channel_once() {
        let dir = tempfile::tempdir().unwrap();
        let (storage, key) = site(dir.path(), vec![release("2.0.0", 500)]);
        let signing = Signing {
            signers: &key,
            now: at("2026-11-22T00:00:00Z"),
            expires_in: SignedDuration::from_hours(48),
        };
        let version: Version = "2.0.0".parse().unwrap();
        let (stable, beta): (ChannelName, ChannelName) =
            ("stable".parse().unwrap(), "beta".parse().unwrap());
        let promotion = promote(
            &storage,
            signing,
            &version,
            (&stable, &beta),
            &RolloutChange::default(),
            false,
        )
        .unwrap();
        assert_eq!(promotion.manifest.serial, 1, "a new channel starts at 1");
        assert_eq!(promotion.manifest.channel, beta);
        assert_ne!(
            promotion.release.rollout.salt,
            promotion.source.rollout.salt
        );
        assert_eq!(
            promotion.release.rollout.share.basis_points,
            BasisPoints::ALL
        );
        let again = promote(
            &storage,
            signing,
            &version,
            (&stable, &beta),
            &RolloutChange::default(),
            false,
        );
        assert!(matches!(again, Err(Error::VersionExists { .. })));
        let forced = promote(
            &storage,
            signing,
            &version,
            (&stable, &beta),
            &RolloutChange::default(),
            true,
        )
        .unwrap();
        assert_eq!(forced.manifest.serial, 2);
        assert_eq!(forced.release.rollout.salt, promotion.release.rollout.salt);
        let missing: Version = "3.0.0".parse().unwrap();
        let error = promote(
            &storage,
            signing,
            &missing,
            (&stable, &beta),
            &RolloutChange::default(),
            false,
        )
        .unwrap_err();
        assert!(matches!(error, Error::UnknownVersion { .. }));
    }
}
