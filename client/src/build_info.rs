//! This build of the client: the version it reports and compares with a manifest's
//! floor, and the platform it was compiled for.

use semver::Version;
use wavecast_schema::{VERSION_MARKER_PREFIX, version_marker, version_marker_length};

/// The platform this client was compiled for (its target triple): the build of
/// `wavecast-update` a self-update takes, and the default platform of a new root.
pub const BUILD_PLATFORM: &str = env!("WAVECAST_TARGET");

/// The version this build of `wavecast-update` reports (`--version`) and compares
/// with a manifest's `min_client_version`: the package version, unless
/// `WAVECAST_CLIENT_VERSION` was set when it was compiled. That variable is the
/// packaging override, for a distribution that stamps its own version (and how the
/// tests build a newer client to update to).
pub const CLIENT_VERSION: &str = match option_env!("WAVECAST_CLIENT_VERSION") {
    Some(version) => version,
    None => env!("CARGO_PKG_VERSION"),
};

/// [`CLIENT_VERSION`] as a version marker ([`wavecast_schema::version_marker`]) in the
/// executable's data, so that `wavecast publish-updater` can read the version of a
/// build it cannot run, one made for another platform.
#[used]
static VERSION_MARKER: [u8; version_marker_length(CLIENT_VERSION)] = version_marker(CLIENT_VERSION);

/// [`CLIENT_VERSION`], read from the executable's version marker: what
/// `wavecast-update --version` prints. Reading it there, rather than from the
/// constant, keeps the marker in every executable whatever the linker prunes, and
/// the two can never disagree.
pub fn marked_version() -> &'static str {
    let version = &VERSION_MARKER[VERSION_MARKER_PREFIX.len()..VERSION_MARKER.len() - 1];
    std::str::from_utf8(version).unwrap_or(CLIENT_VERSION)
}

/// [`CLIENT_VERSION`], parsed (`0.0.0` if a packager set an invalid one, so every
/// floor applies).
pub fn client_version() -> Version {
    Version::parse(CLIENT_VERSION).unwrap_or_else(|_| Version::new(0, 0, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_version_parses_and_is_marked() {
        assert_eq!(client_version().to_string(), CLIENT_VERSION);
        assert_eq!(marked_version(), CLIENT_VERSION);
        assert_eq!(
            wavecast_schema::marked_versions(&VERSION_MARKER),
            [client_version()]
        );
        if option_env!("WAVECAST_CLIENT_VERSION").is_none() {
            assert_eq!(CLIENT_VERSION, env!("CARGO_PKG_VERSION"));
        }
    }

    #[test]
    fn this_client_meets_the_floor_of_every_package_format_it_reads() {
        // Channels holding tar.zst releases require this version: a client that
        // reads them must report at least it, or it would refuse those channels.
        let version: Version = env!("CARGO_PKG_VERSION").parse().unwrap();
        for format in [
            wavecast_schema::PackageFormat::TarGz,
            wavecast_schema::PackageFormat::TarZst,
        ] {
            assert!(version >= format.min_client_version(), "{format}");
        }
    }
}
