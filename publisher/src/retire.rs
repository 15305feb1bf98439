//! Retiring releases: taking them off a channel's manifest, so that no client is
//! offered them and `gc` may later delete the blobs nothing else refers to.
//!
//! Retiring is one round of [`channel`](crate::channel): a new signed manifest with
//! the next serial and without the retired releases (the status page follows, as after
//! every change). Nothing is deleted: a client that read the older manifest can still
//! fetch everything it names, until `gc` collects what no live release refers to.
//!
//! A client installed on a retired release keeps updating: it is offered the live
//! releases, and a delta pack from its version stays on the site as long as a live
//! release's document lists it (packs belong to the release they update *to*).

use semver::Version;
use wavecast_schema::{ChannelName, Manifest};
use wavecast_site::Storage;

use crate::channel::{Signing, change_manifest, current_manifest, live_versions};
use crate::error::{Error, Result};

/// Which releases to retire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retire {
    /// These versions; each must be live on the channel.
    Versions(Vec<Version>),
    /// Every release but the newest N (by version); none when there are N or fewer.
    KeepNewest(usize),
}

/// What [`retire`] did.
#[derive(Debug, Clone)]
pub struct Retirement {
    /// The releases taken off the channel, newest first; empty when there was
    /// nothing to retire (and nothing was written).
    pub retired: Vec<Version>,
    /// The releases still live, newest first.
    pub kept: Vec<Version>,
    /// The channel's manifest: the one written, or the current one when nothing was
    /// retired.
    pub manifest: Manifest,
}

/// Takes the releases `which` names off `channel`, in one new signed manifest. With
/// [`Retire::KeepNewest`] and no more releases than that, nothing is written (so a
/// script may run `retire --keep N` after every publish).
///
/// # Errors
///
/// [`Error::UnknownChannel`]; [`Error::UnknownVersion`] for a version that is not
/// live; [`Error::RetireEverything`] when no release would be left (clients would
/// have nothing to install, and a fresh install would fail); those of
/// [`change_manifest`].
pub fn retire(
    storage: &dyn Storage,
    signing: Signing<'_>,
    channel: &ChannelName,
    which: &Retire,
) -> Result<Retirement> {
    let current = current_manifest(storage, signing.signers, channel)?.ok_or_else(|| {
        Error::UnknownChannel {
            channel: channel.clone(),
        }
    })?;
    if retired_from(&current, channel, which)?.is_empty() {
        return Ok(Retirement {
            retired: Vec::new(),
            kept: newest_first(&current),
            manifest: current,
        });
    }
    let mut retired = Vec::new();
    let manifest = change_manifest(storage, signing, channel, |manifest| {
        // Chosen again from the manifest being changed, which is the one just read.
        retired = retired_from(manifest, channel, which)?;
        manifest
            .releases
            .retain(|release| !retired.contains(&release.version));
        Ok(())
    })?;
    Ok(Retirement {
        retired,
        kept: newest_first(&manifest),
        manifest,
    })
}

/// The versions `which` retires from `manifest`, newest first. Pure.
///
/// # Errors
///
/// [`Error::UnknownVersion`] and [`Error::RetireEverything`].
pub fn retired_from(
    manifest: &Manifest,
    channel: &ChannelName,
    which: &Retire,
) -> Result<Vec<Version>> {
    let live = newest_first(manifest);
    let retired: Vec<Version> = match which {
        Retire::Versions(versions) => {
            if let Some(unknown) = versions.iter().find(|version| !live.contains(version)) {
                return Err(Error::UnknownVersion {
                    version: unknown.clone(),
                    channel: channel.clone(),
                    live: live_versions(manifest),
                });
            }
            live.iter()
                .filter(|version| versions.contains(version))
                .cloned()
                .collect()
        }
        Retire::KeepNewest(keep) => live.iter().skip(*keep).cloned().collect(),
    };
    if !live.is_empty() && retired.len() == live.len() {
        return Err(Error::RetireEverything {
            channel: channel.clone(),
        });
    }
    Ok(retired)
}

/// The live versions of `manifest`, newest first.
fn newest_first(manifest: &Manifest) -> Vec<Version> {
    let mut versions: Vec<Version> = manifest
        .releases
        .iter()
        .map(|release| release.version.clone())
        .collect();
    versions.sort_by(|a, b| b.cmp(a));
    versions
}

#[cfg(test)]
mod tests {
    use jiff::SignedDuration;

    use super::*;
    use crate::rollout::tests::site;
    use crate::rollout_plan::tests::{at, channel, release};

    fn versions(list: &[&str]) -> Vec<Version> {
        list.iter()
            .map(|version| version.parse().unwrap())
            .collect()
    }

    #[test]
    fn retiring_signs_a_manifest_without_the_releases() {
        let dir = tempfile::tempdir().unwrap();
        let releases = ["1.0.0", "1.1.0", "1.2.0", "2.0.0"]
            .map(|version| release(version, 10_000))
            .to_vec();
        let (storage, key) = site(dir.path(), releases);
        let signing = Signing {
            signers: &key,
            now: at("2026-11-22T00:00:00Z"),
            expires_in: SignedDuration::from_hours(48),
        };

        let done = retire(
            &storage,
            signing,
            &channel(),
            &Retire::Versions(versions(&["1.1.0"])),
        )
        .unwrap();
        assert_eq!(done.retired, versions(&["1.1.0"]));
        assert_eq!(done.kept, versions(&["2.0.0", "1.2.0", "1.0.0"]));
        assert_eq!(done.manifest.serial, 2);
        let read = current_manifest(&storage, &key, &channel())
            .unwrap()
            .unwrap();
        assert_eq!(read, done.manifest);

        let done = retire(&storage, signing, &channel(), &Retire::KeepNewest(1)).unwrap();
        assert_eq!(done.retired, versions(&["1.2.0", "1.0.0"]));
        assert_eq!(done.kept, versions(&["2.0.0"]));
        assert_eq!(done.manifest.serial, 3);

        // Nothing left to retire: nothing is written.
        let done = retire(&storage, signing, &channel(), &Retire::KeepNewest(1)).unwrap();
        assert!(done.retired.is_empty());
        assert_eq!(done.manifest.serial, 3);
    }

    #[test]
    fn unknown_versions_and_retiring_everything_are_refused() {
        let manifest = {
            let mut manifest = crate::channel::successor(
                None,
                &channel(),
                None,
                at("2026-11-22T00:00:00Z"),
                SignedDuration::from_hours(24),
            );
            manifest.releases = vec![release("1.0.0", 10_000), release("2.0.0", 10_000)];
            manifest
        };
        let error = retired_from(
            &manifest,
            &channel(),
            &Retire::Versions(versions(&["3.0.0"])),
        )
        .unwrap_err();
        assert!(matches!(error, Error::UnknownVersion { .. }), "{error}");
        assert!(error.to_string().contains("1.0.0"), "{error}");
        for which in [
            Retire::Versions(versions(&["1.0.0", "2.0.0"])),
            Retire::KeepNewest(0),
        ] {
            let error = retired_from(&manifest, &channel(), &which).unwrap_err();
            assert!(matches!(error, Error::RetireEverything { .. }), "{which:?}");
        }
        assert_eq!(
            retired_from(&manifest, &channel(), &Retire::KeepNewest(5)).unwrap(),
            Vec::<Version>::new()
        );
    }
}
