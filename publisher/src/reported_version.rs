//! What a build of `wavecast-update` reports as its version, and how that was learnt:
//! the answer of [`updater_version::reported_version`](crate::updater_version::reported_version).
//!
//! Plain data, in a module of its own below [`error`](crate::error), because the
//! error a mismatched build raises carries it; [`updater_version`](crate::updater_version)
//! re-exports it.

use std::fmt;

use semver::Version;

/// How the version of a build was learnt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionSource {
    /// The build ran here and answered `--version`.
    Answered,
    /// The build does not run here, for this reason (`exec format error`, `exited
    /// with status 1`…); its version marker was read.
    Marker(String),
}

impl fmt::Display for VersionSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Answered => f.write_str("its answer to `--version` here"),
            Self::Marker(reason) => write!(
                f,
                "read from its version marker: it does not run here, {reason}"
            ),
        }
    }
}

/// The version a build reports, and how it was learnt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportedVersion {
    /// The version.
    pub version: Version,
    /// How it was learnt.
    pub source: VersionSource,
}
