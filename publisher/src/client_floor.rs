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
use wavecast_schema::{Manifest, Platform};

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
