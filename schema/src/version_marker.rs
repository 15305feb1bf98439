//! The version marker every build of `wavecast-update` carries in its data, so that
//! the version a build reports can be read without running it.
//!
//! A client offered an updater build runs it with `--version` and refuses one that
//! reports another version than the manifest offers it as; so the publisher must know
//! that version before it signs the offer, including for a build made for another
//! platform (a Windows, macOS or aarch64 build published from an x86-64 Linux
//! machine), which it cannot run. The client therefore embeds, from the version it
//! was compiled with, the bytes
//!
//! ```text
//! \0wavecast-update-version: <version>\0
//! ```
//!
//! ([`version_marker`]), and [`marked_versions`] finds them in an executable's bytes.
//! The NUL bytes on both sides keep the marker apart from any text around it, and
//! only a whole marker counts: the prefix alone, as in the publisher's own
//! executable, which searches for it, is never one.

use semver::Version;

/// The bytes before the version in a marker.
pub const VERSION_MARKER_PREFIX: &[u8] = b"\0wavecast-update-version: ";

/// The longest version a marker holds, in bytes; a version is far shorter
/// (`1.2.3-rc.1+build.5` is 18).
pub const MAX_MARKED_VERSION_LENGTH: usize = 64;

/// The length of the marker of `version`, the `N` of [`version_marker`].
pub const fn version_marker_length(version: &str) -> usize {
    VERSION_MARKER_PREFIX.len() + version.len() + 1
}

/// The marker of `version`, built at compile time:
///
/// ```
/// use wavecast_schema::{marked_versions, version_marker, version_marker_length};
///
/// const VERSION: &str = "0.3.0";
/// static MARKER: [u8; version_marker_length(VERSION)] = version_marker(VERSION);
///
/// let mut executable = b"\x7fELF...".to_vec();
/// executable.extend_from_slice(&MARKER);
/// assert_eq!(marked_versions(&executable), ["0.3.0".parse::<semver::Version>().unwrap()]);
/// ```
///
/// # Panics
///
/// When `N` is not [`version_marker_length`] of `version`, or `version` is longer
/// than [`MAX_MARKED_VERSION_LENGTH`] or holds a NUL byte; in a `const` or `static`,
/// that is a compile error.
pub const fn version_marker<const N: usize>(version: &str) -> [u8; N] {
    let version = version.as_bytes();
    assert!(
        version.len() <= MAX_MARKED_VERSION_LENGTH,
        "the version is too long for a marker"
    );
    assert!(
        N == VERSION_MARKER_PREFIX.len() + version.len() + 1,
        "N must be version_marker_length(version)"
    );
    let mut marker = [0u8; N];
    let mut index = 0;
    while index < VERSION_MARKER_PREFIX.len() {
        marker[index] = VERSION_MARKER_PREFIX[index];
        index += 1;
    }
    let mut offset = 0;
    while offset < version.len() {
        assert!(version[offset] != 0, "a version holds no NUL byte");
        marker[index] = version[offset];
        index += 1;
        offset += 1;
    }
    // The last byte stays 0, the closing NUL.
    marker
}

/// The versions named by the markers in `bytes`, each once, in the order they first
/// appear. A marker must be whole: the prefix, a valid semantic version of at most
/// [`MAX_MARKED_VERSION_LENGTH`] bytes, and the closing NUL.
///
/// A slice of a larger file holds every marker that starts in it, unless one is cut
/// off at its end; scanning a file in windows that overlap by
/// `VERSION_MARKER_PREFIX.len() + MAX_MARKED_VERSION_LENGTH` bytes finds them all.
pub fn marked_versions(bytes: &[u8]) -> Vec<Version> {
    let mut versions: Vec<Version> = Vec::new();
    for start in memchr::memmem::find_iter(bytes, VERSION_MARKER_PREFIX) {
        let rest = &bytes[start + VERSION_MARKER_PREFIX.len()..];
        let window = &rest[..rest.len().min(MAX_MARKED_VERSION_LENGTH + 1)];
        let Some(end) = window.iter().position(|byte| *byte == 0) else {
            continue;
        };
        let version = std::str::from_utf8(&window[..end])
            .ok()
            .and_then(|text| Version::parse(text).ok());
        if let Some(version) = version
            && !versions.contains(&version)
        {
            versions.push(version);
        }
    }
    versions
}

#[cfg(test)]
mod tests {
    use super::*;

    const LENGTH: usize = version_marker_length("1.2.3-rc.1+build.5");
    static MARKER: [u8; LENGTH] = version_marker("1.2.3-rc.1+build.5");

    fn version(text: &str) -> Version {
        text.parse().unwrap()
    }

    #[test]
    fn a_marker_is_the_prefix_the_version_and_a_nul() {
        assert_eq!(
            MARKER.as_slice(),
            b"\0wavecast-update-version: 1.2.3-rc.1+build.5\0"
        );
        assert_eq!(marked_versions(&MARKER), [version("1.2.3-rc.1+build.5")]);
    }

    #[test]
    fn markers_are_found_anywhere_and_each_version_once() {
        let marker = |text: &str| {
            let mut bytes = VERSION_MARKER_PREFIX.to_vec();
            bytes.extend_from_slice(text.as_bytes());
            bytes.push(0);
            bytes
        };
        let mut bytes = vec![0x7f, b'E', b'L', b'F'];
        bytes.extend(marker("0.3.0"));
        bytes.extend(b"other data".repeat(1000));
        bytes.extend(marker("0.2.0"));
        bytes.extend(marker("0.3.0"));
        assert_eq!(
            marked_versions(&bytes),
            [version("0.3.0"), version("0.2.0")]
        );
        assert_eq!(marked_versions(b"no marker here"), Vec::<Version>::new());
    }

    /// The prefix alone, or followed by anything but a whole version and its NUL, is
    /// not a marker: the publisher's own executable holds the prefix.
    #[test]
    fn a_partial_or_malformed_marker_is_none() {
        let with = |after: &[u8]| {
            let mut bytes = b"data".to_vec();
            bytes.extend_from_slice(VERSION_MARKER_PREFIX);
            bytes.extend_from_slice(after);
            marked_versions(&bytes)
        };
        assert!(with(b"").is_empty(), "the prefix alone");
        assert!(with(b"0.3.0").is_empty(), "cut off before its NUL");
        assert!(with(b"0.3\0").is_empty(), "not a semantic version");
        assert!(with(b"hint: give a path\0").is_empty(), "other text");
        assert!(with(b"0.3.0\xff\0").is_empty(), "not UTF-8");
        let long = format!("0.3.0-{}\0", "a".repeat(MAX_MARKED_VERSION_LENGTH));
        assert!(with(long.as_bytes()).is_empty(), "too long");
        assert_eq!(with(b"0.3.0\0rest"), [version("0.3.0")]);
    }

    /// Windows overlapping as the docs say find a marker wherever the cut falls.
    #[test]
    fn overlapping_windows_find_a_marker_across_any_cut() {
        let mut bytes = vec![b'x'; 300];
        bytes.splice(100..100, MARKER);
        let overlap = VERSION_MARKER_PREFIX.len() + MAX_MARKED_VERSION_LENGTH;
        for cut in 90..(100 + MARKER.len() + 10) {
            let first = marked_versions(&bytes[..cut]);
            let second = marked_versions(&bytes[cut.saturating_sub(overlap)..]);
            let found = first.into_iter().chain(second).collect::<Vec<_>>();
            assert!(
                found.contains(&version("1.2.3-rc.1+build.5")),
                "cut at {cut}"
            );
        }
    }
}
