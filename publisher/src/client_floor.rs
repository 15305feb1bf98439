//! The client floor: the `min_client_version` of a channel, below which clients
//! update themselves before anything else (`--min-client-version`).
//!
//! Raising it above the version of a build already offered (see
//! [`self_update`](crate::self_update)) would strand that platform's clients, so
//! [`check_client_floor`] refuses it; raising it with no build offered at all is
//! allowed (clients can be updated by other means) and [`floor_without_builds`] tells
//! the caller to warn. `publish`, `rollout` and `publish-updater` all set it, so it
//! sits below them.

use semver::Version;
use wavecast_schema::{Manifest, PackageFormat, Platform};

use crate::error::{Error, Result};

/// The oldest `wavecast-update` that reads everything this publisher writes: the
/// lowest `min_client_version` it signs.
pub const MIN_CLIENT_VERSION: Version = Version::new(0, 1, 0);

/// Sets the manifest's `min_client_version` to `floor` after [`check_client_floor`].
///
/// # Errors
///
/// Those of [`check_client_floor`].
pub fn set_client_floor(manifest: &mut Manifest, floor: &Version) -> Result<()> {
    let builds = manifest
        .updater
        .iter()
        .map(|(platform, build)| (platform, &build.version));
    check_client_floor(builds, floor)?;
    manifest.min_client_version = floor.clone();
    Ok(())
}

/// Raises the manifest's `min_client_version` to what reading packages of `format`
/// needs ([`PackageFormat::min_client_version`]) when it is lower, so that clients
/// which cannot read them are never offered them: they update themselves first, from
/// a build the channel offers, or stop with a hint. Returns the new floor when it was
/// raised.
///
/// # Errors
///
/// [`Error::PackageFormatAboveUpdater`] when a build offered is older than that: its
/// platform's clients could neither read the packages nor update themselves.
pub fn require_package_format(
    manifest: &mut Manifest,
    format: PackageFormat,
) -> Result<Option<Version>> {
    let needed = format.min_client_version();
    if manifest.min_client_version >= needed {
        return Ok(None);
    }
    if let Some((platform, build)) = manifest
        .updater
        .iter()
        .find(|(_, build)| build.version < needed)
    {
        return Err(Error::PackageFormatAboveUpdater {
            floor: needed,
            platform: platform.clone(),
            version: build.version.clone(),
        });
    }
    manifest.min_client_version = needed.clone();
    Ok(Some(needed))
}

/// Checks that `floor` can be the `min_client_version` of a channel offering
/// `builds` (platform and version of each): it is not below [`MIN_CLIENT_VERSION`]
/// (what this publisher writes needs), and every build offered reaches it, so no
/// platform's clients are left with a build they cannot use.
///
/// # Errors
///
/// [`Error::FloorTooLow`] or [`Error::FloorAboveUpdater`].
pub fn check_client_floor<'a>(
    builds: impl IntoIterator<Item = (&'a Platform, &'a Version)>,
    floor: &Version,
) -> Result<()> {
    if floor < &MIN_CLIENT_VERSION {
        return Err(Error::FloorTooLow {
            floor: floor.clone(),
            minimum: MIN_CLIENT_VERSION,
        });
    }
    let mut builds = builds.into_iter();
    if let Some((platform, version)) = builds.find(|(_, version)| *version < floor) {
        return Err(Error::FloorAboveUpdater {
            floor: floor.clone(),
            platform: platform.clone(),
            version: version.clone(),
        });
    }
    Ok(())
}

/// Whether the manifest asks for a newer client than this publisher needs while
/// offering no build of it: clients below the floor can then only stop with an
/// error until they are updated by other means.
pub fn floor_without_builds(manifest: &Manifest) -> bool {
    manifest.min_client_version > MIN_CLIENT_VERSION && manifest.updater.is_empty()
}
