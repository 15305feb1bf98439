//! Errors of the install pipeline: a blob the site cannot send as signed, a package or
//! tree that does not match what was signed for it, and the local file system failing
//! while a release is built, committed or recovered. The layers below it reach the
//! caller unchanged, as [`Error::Net`] and [`Error::Store`].

use std::path::PathBuf;

use semver::Version;
use wavecast_schema::{Blake3Hash, ModuleName, Platform, RelativePath};

use crate::net::error::{NETWORK_HINT, forbidden_hint};
use crate::net::transport::{TransportError, TransportErrorKind};
use crate::store::error::{local_io_hint, storage_full_hint};
use crate::store::journal::InstallStep;
use crate::units::format_bytes;

/// A `Result` whose error is the install pipeline's [`Error`].
pub(crate) type Result<T> = std::result::Result<T, Error>;

/// Why a release could not be installed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The network layer's error: a URL, a key or the manifest.
    #[error(transparent)]
    Net(#[from] crate::net::error::Error),

    /// The storage layer's error: the install root or one of its files.
    #[error(transparent)]
    Store(#[from] crate::store::error::Error),

    /// Finishing an install that a killed (or failed) run left in the journal failed;
    /// `current` still points to a complete release, and the next run tries again.
    #[error(
        "failed to finish the interrupted install of {version} (`releases/{dir}`) from step `{step}`"
    )]
    Recover {
        /// The version being installed.
        version: Version,
        /// Its directory under `ROOT/releases`.
        dir: String,
        /// The journal step the interrupted run had reached.
        step: InstallStep,
        /// What went wrong.
        #[source]
        source: Box<Error>,
    },

    /// The install was stopped through its [`Cancel`](crate::Cancel) handle before
    /// `current` was switched.
    #[error("the install was cancelled; the installed release is unchanged")]
    Cancelled,

    /// The target release has nothing for this client's platform.
    #[error("release {version} has no build for platform `{platform}`")]
    NoBuildForPlatform {
        /// The release.
        version: Version,
        /// The client's platform.
        platform: Platform,
    },

    /// A package, patch, file copy or file index could not be fetched.
    #[error("failed to fetch `{url}`")]
    FetchBlob {
        /// Its URL.
        url: String,
        /// The transport's error.
        #[source]
        source: TransportError,
    },

    /// A download's bytes could not be read. What arrived stays in the cache as a
    /// `.partial` file, and the next run resumes from it.
    #[error("failed to download `{url}`")]
    DownloadBlob {
        /// Its URL.
        url: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The host sent more bytes than the manifest declares.
    #[error("host sent more than the declared {size} bytes for `{url}`")]
    BlobTooLarge {
        /// Its URL.
        url: String,
        /// The declared size.
        size: u64,
    },

    /// The host sent fewer bytes than the manifest declares.
    #[error("`{url}` is truncated: got {received} of the declared {size} bytes")]
    BlobTruncated {
        /// Its URL.
        url: String,
        /// The declared size.
        size: u64,
        /// What arrived.
        received: u64,
    },

    /// The bytes do not hash to the value in the signed manifest.
    #[error(
        "`{url}` is corrupt: its blake3 hash is {actual}, but the signed manifest says {expected}"
    )]
    ChecksumMismatch {
        /// Its URL.
        url: String,
        /// The hash in the manifest.
        expected: Blake3Hash,
        /// The hash of what arrived.
        actual: Blake3Hash,
    },

    /// Reading or writing the download cache failed.
    #[error("failed to access the download cache at `{}`", path.display())]
    Cache {
        /// The cache file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// A release's platform document is not one, or not the one the manifest meant
    /// (another release or platform), although its hash matches the signed manifest.
    #[error("the platform release `{url}` is invalid")]
    ParsePlatformRelease {
        /// Its URL.
        url: String,
        /// The parser's complaint.
        #[source]
        source: wavecast_schema::Error,
    },

    /// A delta pack cannot be used: it is not a pack, or it does not turn the
    /// installed release's indexes into the target's (the install then fetches the
    /// target's indexes and the files it needs).
    #[error("the delta pack `{url}` cannot be used")]
    ParsePack {
        /// Its URL.
        url: String,
        /// What is wrong with it.
        #[source]
        source: wavecast_schema::Error,
    },

    /// A module's file index is not a valid file index, or does not decompress to the
    /// JSON whose hash the release's document names.
    #[error("the file index `{url}` is invalid")]
    ParseFileIndex {
        /// Its URL.
        url: String,
        /// The parser's complaint.
        #[source]
        source: wavecast_schema::Error,
    },

    /// A file's compressed copy does not decompress to the content its file index
    /// describes (a differential install then takes the module's package).
    #[error("`{url}` does not decompress to the content the file index describes")]
    CorruptFileCopy {
        /// Its URL.
        url: String,
    },

    /// The site publishes no copy pack for the module of a file.
    #[error("the site has no compressed copy of `{path}`")]
    NoFileCopy {
        /// The file's path in its module.
        path: RelativePath,
    },

    /// A verified patch does not produce the content its file index describes (a
    /// differential install then downloads the file's compressed copy).
    #[error("patch `{url}` does not produce the content the file index describes")]
    PatchMismatch {
        /// Its URL.
        url: String,
        /// Why the patch could not be applied, when it could not.
        #[source]
        source: Option<std::io::Error>,
    },

    /// No file on this machine still holds content the plan meant to reuse (it was
    /// changed or removed since it was installed).
    #[error("no installed file holds content {blake3} any more")]
    LocalContentChanged {
        /// The content's blake3.
        blake3: Blake3Hash,
    },

    /// A verified package could not be read as a tar of its format (tar.zst or
    /// tar.gz).
    #[error("failed to read package of module `{module}` (`{}`)", path.display())]
    ReadPackage {
        /// The module.
        module: ModuleName,
        /// The cached package.
        path: PathBuf,
        /// The decoder's error.
        #[source]
        source: std::io::Error,
    },

    /// A package holds an entry that is not a regular file, a directory or a symbolic
    /// link.
    #[error(
        "package of module `{module}` holds `{path}`, a {kind}; only regular files, directories and symbolic links are allowed"
    )]
    UnsupportedEntry {
        /// The module.
        module: ModuleName,
        /// The entry's path as written in the archive.
        path: String,
        /// What the entry is (symlink, hard link, fifo…).
        kind: String,
    },

    /// A package entry's path could escape the release tree or is malformed.
    #[error("package of module `{module}` holds an entry with the unsafe path `{path}`")]
    UnsafeEntryPath {
        /// The module.
        module: ModuleName,
        /// The entry's path as written in the archive.
        path: String,
        /// Why the path is refused.
        #[source]
        source: wavecast_schema::Error,
    },

    /// A package entry's path is not valid UTF-8.
    #[error("package of module `{module}` holds an entry whose path `{path}` is not valid UTF-8")]
    NonUtf8EntryPath {
        /// The module.
        module: ModuleName,
        /// The entry's path, with invalid bytes replaced.
        path: String,
    },

    /// A package entry is a symbolic link whose target no link may hold.
    #[error(
        "package of module `{module}` holds the symbolic link `{path}` with the target `{target}`, which no link may hold (empty, over 4095 bytes, not UTF-8, or with a backslash or control character)"
    )]
    InvalidLinkTarget {
        /// The module.
        module: ModuleName,
        /// The entry's path.
        path: String,
        /// The target, with invalid bytes replaced.
        target: String,
    },

    /// A package entry lies inside a symbolic link (or a file) the package made
    /// before it: writing it would write through the link, wherever it points.
    #[error(
        "package of module `{module}` holds `{path}` inside `{parent}`, which it made a {kind}; nothing is written through a link"
    )]
    EntryInsideNonDirectory {
        /// The module.
        module: ModuleName,
        /// The entry's path.
        path: String,
        /// The entry's parent that is no directory.
        parent: String,
        /// What the parent is (`symbolic link`, `file`).
        kind: &'static str,
    },

    /// A module's file index lists more bytes of files than the module declares.
    #[error(
        "the file index of module `{module}` lists {listed} bytes of files, more than the {declared} its manifest declares"
    )]
    IndexExceedsModule {
        /// The module.
        module: ModuleName,
        /// What the index lists.
        listed: u64,
        /// The module's `unpacked_size`.
        declared: u64,
    },

    /// The tree an install built is not the one the release's signed file lists
    /// describe: a package that disagrees with its file index, or another release's
    /// package. Nothing was switched.
    #[error("the tree built for {version} is not the one its signed file lists describe")]
    TreeMismatch {
        /// The release being installed.
        version: Version,
        /// The first difference.
        #[source]
        source: Box<wavecast_schema::TreeMismatch>,
    },

    /// A package lists the same path twice.
    #[error("package of module `{module}` holds `{path}` twice")]
    DuplicateEntry {
        /// The module.
        module: ModuleName,
        /// The entry's path.
        path: String,
    },

    /// A package unpacks to more than the manifest's `unpacked_size`.
    #[error("package of module `{module}` unpacks to more than its declared size of {limit} bytes")]
    UnpackTooLarge {
        /// The module.
        module: ModuleName,
        /// The declared unpacked size.
        limit: u64,
    },

    /// Writing the release tree failed.
    #[error("failed to write `{}`", path.display())]
    Unpack {
        /// The file or directory being written.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// Preparing, promoting or removing a release directory failed.
    #[error("failed to {action} `{}`", path.display())]
    Release {
        /// What was being done (`flush`, `rename`, `remove`…).
        action: &'static str,
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// Reading how much space the file system holding the install root has failed.
    #[error("failed to read the free space of `{}`", path.display())]
    FreeSpace {
        /// The directory whose file system was asked.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The file system holding the install root cannot take the download and the
    /// unpacked tree; nothing was downloaded or changed.
    #[error(
        "not enough free space on `{}`: need {} ({} download + {} unpacked + {} margin), {} free",
        path.display(),
        format_bytes(download.saturating_add(*unpacked).saturating_add(*margin)),
        format_bytes(*download),
        format_bytes(*unpacked),
        format_bytes(*margin),
        format_bytes(*free)
    )]
    NotEnoughSpace {
        /// The install root.
        path: PathBuf,
        /// Bytes still to download (what the cache already holds aside).
        download: u64,
        /// The new tree's unpacked size, per the manifest.
        unpacked: u64,
        /// Room kept for the file system's own overhead.
        margin: u64,
        /// Bytes available to this user on that file system.
        free: u64,
    },

    /// Pointing `ROOT/current` at the new release failed; the old release is still
    /// current.
    #[error("failed to switch `{}` to `{target}`", path.display())]
    SwitchCurrent {
        /// The `current` path.
        path: PathBuf,
        /// The release directory it was to point to.
        target: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// Whether the error means the site could not provide a file as described: it is
    /// missing, too slow, truncated, corrupt, or does not rebuild the expected content. A
    /// differential install falls back (patch → file copy → package) on these, and
    /// stops on every other error (local I/O, the file system).
    pub(crate) fn is_remote(&self) -> bool {
        match self {
            Self::Net(error) => error.is_remote(),
            Self::FetchBlob { .. }
            | Self::DownloadBlob { .. }
            | Self::BlobTooLarge { .. }
            | Self::BlobTruncated { .. }
            | Self::ChecksumMismatch { .. }
            | Self::ParsePlatformRelease { .. }
            | Self::ParsePack { .. }
            | Self::ParseFileIndex { .. }
            | Self::CorruptFileCopy { .. }
            | Self::NoFileCopy { .. }
            | Self::PatchMismatch { .. }
            | Self::LocalContentChanged { .. } => true,
            _ => false,
        }
    }

    /// Whether the error comes from how the client was set up or invoked rather than
    /// from the install itself: only ever a lower layer's.
    pub fn is_configuration(&self) -> bool {
        match self {
            Self::Net(error) => error.is_configuration(),
            Self::Store(error) => error.is_configuration(),
            _ => false,
        }
    }

    /// A suggestion for the user, when there is an obvious next step.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            Self::Net(error) => return error.hint(),
            Self::Store(error) => return error.hint(),
            Self::NotEnoughSpace { .. } => {
                "free some space on that file system (old trees under `releases/` that are not current can go), then try again"
                    .into()
            }
            Self::FetchBlob { url, source } if source.kind() == TransportErrorKind::Forbidden => {
                forbidden_hint(url)
            }
            Self::FetchBlob { source, .. } if source.kind() == TransportErrorKind::NotFound => {
                "the site's manifest names this file but the host does not have it: a publish or mirror still uploading, or a file removed by hand or by `wavecast gc`; nothing was installed. Try again later, or tell the publisher (`wavecast verify` lists what is missing)"
                    .into()
            }
            Self::FetchBlob { .. } => NETWORK_HINT.into(),
            Self::BlobTooLarge { .. }
            | Self::BlobTruncated { .. }
            | Self::ChecksumMismatch { .. } => {
                "nothing was installed; try again later, or from another mirror".into()
            }
            Self::DownloadBlob { .. } => {
                "nothing was installed; run the update again to resume the download".into()
            }
            Self::TreeMismatch { .. }
            | Self::ParsePlatformRelease { .. }
            | Self::ParsePack { .. }
            | Self::ParseFileIndex { .. }
            | Self::IndexExceedsModule { .. }
            | Self::UnsupportedEntry { .. }
            | Self::InvalidLinkTarget { .. }
            | Self::EntryInsideNonDirectory { .. }
            | Self::UnsafeEntryPath { .. }
            | Self::NonUtf8EntryPath { .. }
            | Self::DuplicateEntry { .. }
            | Self::UnpackTooLarge { .. } => {
                "nothing was installed and the current release is untouched; the site's release does not match what was signed for it (`wavecast verify` shows the publisher where)"
                    .into()
            }
            Self::Recover { source, .. } => return source.hint(),
            Self::Cache { path, source }
            | Self::ReadPackage { path, source, .. }
            | Self::Unpack { path, source, .. }
            | Self::Release { path, source, .. }
            | Self::FreeSpace { path, source }
            | Self::SwitchCurrent { path, source, .. } => return local_io_hint(path, source, self),
            _ => return storage_full_hint(self),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_fetch_hints_at_file_modes_and_other_failures_at_the_network() {
        let fetch = |url: &str, kind| {
            Error::Net(crate::net::error::Error::FetchManifest {
                url: url.to_owned(),
                source: TransportError::new(kind, "refused"),
            })
        };
        let http = fetch(
            "http://updates.example/channels/stable.json",
            TransportErrorKind::Forbidden,
        )
        .hint()
        .unwrap();
        assert!(http.contains("www-data") && http.contains("0644"), "{http}");
        let file = Error::FetchBlob {
            url: "file:///srv/site/blobs/x.tar.gz".to_owned(),
            source: TransportError::new(TransportErrorKind::Forbidden, "refused"),
        }
        .hint()
        .unwrap();
        assert!(
            file.starts_with("this user") && file.contains("0755"),
            "{file}"
        );
        let network = fetch(
            "http://updates.example/channels/stable.json",
            TransportErrorKind::Other,
        )
        .hint()
        .unwrap();
        assert!(network.contains("network"), "{network}");
    }
}
