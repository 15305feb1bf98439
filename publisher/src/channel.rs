//! One channel's manifest, and the steps every change to it shares.
//!
//! Publishing a release, changing a rollout, promoting, offering an updater and
//! signing again after a key rotation all change a channel the same way: read its
//! manifest and check that the site's release keys signed it ([`current_manifest`]),
//! make its [`successor`] (next serial, published now, everything else kept), change
//! that, then validate it, sign it under the site's newest root and write it
//! ([`validate_and_write`]). The envelope is the commit point; the status page
//! follows. [`change_manifest`] is the whole round for a change that needs nothing
//! else.
//!
//! These steps sit below [`publish`](crate::publish), [`rollout`](crate::rollout) and
//! [`self_update`](crate::self_update), so that each of those uses them without
//! using another.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use wavecast_schema::{ChannelName, Envelope, FORMAT_VERSION, MANIFEST_SIZE_LIMIT, Manifest};
use wavecast_site::Storage;
use wavecast_site::layout;

use crate::client_floor::MIN_CLIENT_VERSION;
use crate::error::{Error, Result};
use crate::keys::{Signers, SigningKey};
use crate::trust;

/// When and for how long a changed manifest is signed.
#[derive(Debug, Clone, Copy)]
pub struct Signing<'a> {
    /// The keys that sign the change (release keys of the site's newest root).
    pub signers: &'a Signers,
    /// The time of the change: the manifest's `published_at`.
    pub now: Timestamp,
    /// How long the signed manifest stays valid.
    pub expires_in: SignedDuration,
}

/// Reads and verifies the channel's current manifest, if there is one. A manifest not
/// signed by the site's release keys (see [`trust::envelope_is_genuine`]) is an
/// error: this publisher will not overwrite it.
///
/// # Errors
///
/// [`Error::PendingManifest`] while a change to the channel waits to be signed (a
/// second change would replace it), [`Error::ForeignManifest`],
/// [`Error::UnsupportedManifestFormat`] for a manifest of another format (a site of
/// an older wavecast), [`Error::CorruptManifest`], verification and storage errors.
pub fn current_manifest(
    storage: &dyn Storage,
    signers: &Signers,
    channel: &ChannelName,
) -> Result<Option<Manifest>> {
    if storage.get(&layout::pending_manifest(channel))?.is_some() {
        return Err(Error::PendingManifest {
            channel: channel.clone(),
        });
    }
    live_manifest(storage, signers, channel)
}

/// [`current_manifest`], whether or not a change waits to be signed.
pub(crate) fn live_manifest(
    storage: &dyn Storage,
    signers: &Signers,
    channel: &ChannelName,
) -> Result<Option<Manifest>> {
    let Some(bytes) = storage.get(&layout::channel_manifest(channel))? else {
        return Ok(None);
    };
    let corrupt = |source| Error::CorruptManifest {
        channel: channel.clone(),
        source,
    };
    let envelope = Envelope::parse(&bytes).map_err(corrupt)?;
    let roots = trust::SiteRoots::load(storage)?;
    if !trust::envelope_is_genuine(roots.as_ref(), signers, &envelope) {
        return Err(Error::ForeignManifest {
            channel: channel.clone(),
            key_id: signers
                .first()
                .map_or_else(|| "none: --sign-later".to_owned(), SigningKey::key_id),
        });
    }
    match Manifest::parse(envelope.manifest.as_bytes()) {
        Ok(manifest) => Ok(Some(manifest)),
        Err(wavecast_schema::Error::UnsupportedFormat {
            found, supported, ..
        }) => Err(Error::UnsupportedManifestFormat {
            channel: channel.clone(),
            found,
            supported,
        }),
        Err(source) => Err(corrupt(source)),
    }
}

/// The channels the site publishes: every `channels/<c>.json`.
///
/// # Errors
///
/// Storage errors.
pub fn channels(storage: &dyn Storage) -> Result<Vec<ChannelName>> {
    channels_ending(storage, ".json")
}

/// The channels with a change waiting to be signed: every
/// `channels/<c>.json.unsigned`.
///
/// # Errors
///
/// Storage errors.
pub fn pending_channels(storage: &dyn Storage) -> Result<Vec<ChannelName>> {
    channels_ending(storage, ".json.unsigned")
}

/// The channels named by the files `channels/<c><suffix>`.
fn channels_ending(storage: &dyn Storage, suffix: &str) -> Result<Vec<ChannelName>> {
    let folder = "channels".parse().expect("a valid path");
    Ok(storage
        .list(&folder)?
        .iter()
        .filter_map(|path| {
            let name = path.as_str().strip_prefix("channels/")?;
            name.strip_suffix(suffix)?.parse().ok()
        })
        .collect())
}

/// The manifest that follows `existing` on `channel`: the next serial (1 for a new
/// channel), published at `now`, expiring `expires_in` later, with the same releases,
/// download hosts, updater builds and `min_client_version` (never below
/// [`MIN_CLIENT_VERSION`]).
/// The product name is `product`, else the existing one, else `app`.
pub fn successor(
    existing: Option<Manifest>,
    channel: &ChannelName,
    product: Option<String>,
    now: Timestamp,
    expires_in: SignedDuration,
) -> Manifest {
    let product = product
        .or_else(|| existing.as_ref().map(|manifest| manifest.product.clone()))
        .unwrap_or_else(|| "app".to_owned());
    let mut manifest = Manifest {
        format: FORMAT_VERSION,
        product,
        channel: channel.clone(),
        serial: 1,
        published_at: now,
        expires_at: now.saturating_add(expires_in).unwrap_or(Timestamp::MAX),
        min_client_version: MIN_CLIENT_VERSION,
        root_version: 1,
        download_hosts: Vec::new(),
        updater: BTreeMap::new(),
        releases: Vec::new(),
    };
    if let Some(existing) = existing {
        manifest.serial = existing.serial + 1;
        manifest.min_client_version = existing.min_client_version.max(MIN_CLIENT_VERSION);
        manifest.download_hosts = existing.download_hosts;
        manifest.updater = existing.updater;
        manifest.releases = existing.releases;
    }
    manifest
}

/// Verifies the channel's manifest, lets `change` edit it, and writes its successor
/// (next serial, published now). Returns the manifest as written.
///
/// # Errors
///
/// [`Error::UnknownChannel`] when the channel has no manifest, verification errors,
/// whatever `change` returns, [`Error::InvalidManifest`], signing and storage errors.
pub fn change_manifest(
    storage: &dyn Storage,
    signing: Signing<'_>,
    channel: &ChannelName,
    change: impl FnOnce(&mut Manifest) -> Result<()>,
) -> Result<Manifest> {
    let existing = current_manifest(storage, signing.signers, channel)?.ok_or_else(|| {
        Error::UnknownChannel {
            channel: channel.clone(),
        }
    })?;
    let mut manifest = successor(
        Some(existing),
        channel,
        None,
        signing.now,
        signing.expires_in,
    );
    change(&mut manifest)?;
    validate_and_write(storage, signing.signers, &mut manifest)?;
    Ok(manifest)
}

/// Sorts the releases newest first, validates the manifest and writes it with
/// [`write_manifest`]. Every command that changes a channel ends here.
///
/// # Errors
///
/// [`Error::InvalidManifest`] when the change breaks a rule of the format (such as
/// two rollout rules with one name); signing and storage errors.
pub fn validate_and_write(
    storage: &dyn Storage,
    signers: &Signers,
    manifest: &mut Manifest,
) -> Result<()> {
    manifest.sort_releases();
    manifest
        .validate()
        .map_err(|source| Error::InvalidManifest {
            channel: manifest.channel.clone(),
            source,
        })?;
    write_manifest(storage, signers, manifest)
}

/// Signs `manifest` under the site's newest root (writing root 1 on a new site, see
/// [`trust::ensure_roots`]), records that root in `root_version`, and writes it as the
/// channel's envelope. This is the commit point of every change to a channel, so it
/// must come after every blob it refers to. With [`Signers::later`] the envelope
/// goes, unsigned, to `channels/<channel>.json.unsigned` instead, and nothing is
/// live until `wavecast sign` ([`crate::sign`]) signs and moves it.
///
/// It signs only what clients read: text that [`Manifest::parse`] accepts (within
/// every [`wavecast_schema::Limit`]), in an envelope of at most
/// [`MANIFEST_SIZE_LIMIT`] bytes.
///
/// # Errors
///
/// [`Error::RootExpired`] when the newest root has expired, [`Error::InvalidManifest`]
/// when clients would refuse the text, [`Error::ManifestTooLarge`] when they would
/// refuse the envelope; signing and storage errors.
pub fn write_manifest(
    storage: &dyn Storage,
    signers: &Signers,
    manifest: &mut Manifest,
) -> Result<()> {
    let roots = trust::ensure_roots(storage, signers)?;
    let newest = roots.newest();
    if let Some(expires_at) = newest.expires_at
        && newest.expired(manifest.published_at, SignedDuration::ZERO)
    {
        return Err(Error::RootExpired {
            version: newest.version,
            expires_at,
        });
    }
    manifest.root_version = newest.version;
    let text = String::from_utf8(manifest.to_json()).expect("serde_json writes UTF-8");
    Manifest::parse(text.as_bytes()).map_err(|source| Error::InvalidManifest {
        channel: manifest.channel.clone(),
        source,
    })?;
    if signers.sign_later() {
        let pending = Envelope::new(text, Vec::new()).to_json();
        // Refused now rather than when signed: every release key may add a
        // signature of at most `SIGNATURE_SIZE` bytes.
        check_envelope_size(
            manifest,
            pending.len() + SIGNATURE_SIZE * newest.release.keys.len(),
        )?;
        storage.put_bytes(&layout::pending_manifest(&manifest.channel), &pending)?;
        return Ok(());
    }
    let signatures = trust::sign_release(&roots, signers, &text, &manifest_comment(manifest))?;
    put_envelope(storage, manifest, &Envelope::new(text, signatures))
}

/// The most bytes one minisign signature takes in an envelope (two base64 lines,
/// two comments, JSON escapes), with room to spare.
const SIGNATURE_SIZE: usize = 1024;

/// The trusted comment of a manifest's signatures, which `minisign -V` prints.
pub(crate) fn manifest_comment(manifest: &Manifest) -> String {
    format!(
        "wavecast manifest product={} channel={} serial={}",
        manifest.product, manifest.channel, manifest.serial
    )
}

/// Refuses an envelope of `size` bytes that clients would not read.
fn check_envelope_size(manifest: &Manifest, size: usize) -> Result<()> {
    if size as u64 > MANIFEST_SIZE_LIMIT {
        return Err(Error::ManifestTooLarge {
            channel: manifest.channel.clone(),
            size: size as u64,
        });
    }
    Ok(())
}

/// Writes the signed envelope of `manifest` as the channel's live manifest (the
/// commit point), then the status page.
///
/// # Errors
///
/// [`Error::ManifestTooLarge`], storage errors and [`Error::StatusPage`].
pub(crate) fn put_envelope(
    storage: &dyn Storage,
    manifest: &Manifest,
    envelope: &Envelope,
) -> Result<()> {
    let bytes = envelope.to_json();
    check_envelope_size(manifest, bytes.len())?;
    storage.put_bytes(&layout::channel_manifest(&manifest.channel), &bytes)?;
    // The status page describes every channel; rewrite it after the commit point. A
    // failure here must not read as a failed publish: the manifest is already live.
    wavecast_site::status_page::write(storage, manifest.published_at).map_err(|source| {
        Error::StatusPage {
            channel: manifest.channel.clone(),
            serial: manifest.serial,
            source,
        }
    })
}

/// The live versions of `manifest` in its order (newest first once written), for
/// messages: `1.2.0, 1.1.0`, or `none`.
pub(crate) fn live_versions(manifest: &Manifest) -> String {
    if manifest.releases.is_empty() {
        return "none".to_owned();
    }
    let versions: Vec<String> = manifest
        .releases
        .iter()
        .map(|release| release.version.to_string())
        .collect();
    versions.join(", ")
}

#[cfg(test)]
mod tests {
    use semver::Version;
    use wavecast_schema::Release;
    use wavecast_site::FsStorage;

    use super::*;
    use crate::keys::{self, SigningKey};
    use crate::rollout_plan::tests::release;

    /// The publisher signs only what clients read: a manifest past a limit, or an
    /// envelope past the size clients read, is refused and the channel keeps its
    /// manifest.
    #[test]
    fn a_manifest_clients_would_refuse_is_not_signed() {
        let dir = tempfile::tempdir().unwrap();
        keys::generate(&dir.path().join("keys"), None, false).unwrap();
        let key: Signers = SigningKey::load(&dir.path().join("keys/wavecast.key"), || Ok(None))
            .unwrap()
            .into();
        let storage = FsStorage::new(dir.path().join("site"));
        let channel: ChannelName = "stable".parse().unwrap();
        let now = "2026-11-22T00:00:00Z".parse().unwrap();
        let mut manifest = successor(None, &channel, None, now, SignedDuration::from_hours(24));
        manifest.releases.push(release("1.0.0", 10_000));
        validate_and_write(&storage, &key, &mut manifest).unwrap();
        let before = storage.get(&layout::channel_manifest(&channel));
        let before = before.unwrap();

        let mut hosts = manifest.clone();
        hosts.download_hosts = (0..=wavecast_schema::MAX_DOWNLOAD_HOSTS)
            .map(|n| format!("https://cdn{n}.example.com/"))
            .collect();
        let error = write_manifest(&storage, &key, &mut hosts).unwrap_err();
        assert!(
            matches!(
                &error,
                Error::InvalidManifest {
                    source: wavecast_schema::Error::LimitExceeded {
                        limit: wavecast_schema::Limit::DownloadHosts,
                        found: 17,
                        ..
                    },
                    ..
                }
            ),
            "{error}"
        );

        // Within every limit, but 300 releases of 64 KiB notes make 19 MiB.
        let mut large = manifest.clone();
        let release = large.releases[0].clone();
        large.releases = (0..300)
            .map(|minor| Release {
                version: Version::new(1, minor, 0),
                notes: "n".repeat(wavecast_schema::MAX_NOTES_LENGTH),
                ..release.clone()
            })
            .collect();
        let error = write_manifest(&storage, &key, &mut large).unwrap_err();
        assert!(
            matches!(error, Error::ManifestTooLarge { size, .. } if size > MANIFEST_SIZE_LIMIT),
            "{error}"
        );
        let after = storage.get(&layout::channel_manifest(&channel));
        assert_eq!(after.unwrap(), before, "the channel keeps its manifest");
    }
}
