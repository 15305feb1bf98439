//! Where each file of a site lives. Pure: no I/O.
//!
//! Every path is relative to the site root, so a site works unchanged from any base
//! URL, a folder or a mirror.

use wavecast_schema::{Blake3Hash, ChannelName, Module, ModuleKind, PackageFormat, RelativePath};

/// What a content-addressed blob holds, which decides its file extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BlobKind {
    /// A release's document for one platform (`.json`,
    /// [`wavecast_schema::PlatformRelease`]).
    PlatformRelease,
    /// A tree module's tar.gz package, or a build of the client (`.tar.gz`).
    Package,
    /// A tree module's tar.zst package (`.tar.zst`).
    ZstdPackage,
    /// A module's file index (`.json.zst`), named by the blake3 of its JSON (clients
    /// verify after decompressing, within the sizes its reference gives).
    FileIndex,
    /// A module's copy pack (`.copies`): the zstd copy of each of its distinct file
    /// contents, back to back.
    Copies,
    /// One file's zstd-compressed copy (`.zst`): the package of an image module.
    FileCopy,
    /// A delta pack (`.pack`, [`wavecast_schema::PackHeader`]).
    Pack,
}

impl BlobKind {
    /// Every kind.
    pub const ALL: [Self; 7] = [
        Self::PlatformRelease,
        Self::Package,
        Self::ZstdPackage,
        Self::FileIndex,
        Self::Copies,
        Self::FileCopy,
        Self::Pack,
    ];

    /// The file extension, after the hash and a dot.
    pub fn extension(self) -> &'static str {
        match self {
            Self::PlatformRelease => "json",
            Self::Package => "tar.gz",
            Self::ZstdPackage => "tar.zst",
            Self::FileIndex => "json.zst",
            Self::Copies => "copies",
            Self::FileCopy => "zst",
            Self::Pack => "pack",
        }
    }
}

impl BlobKind {
    /// The kind of a tree module's package of this format.
    pub fn package(format: PackageFormat) -> Self {
        match format {
            PackageFormat::TarGz => Self::Package,
            PackageFormat::TarZst => Self::ZstdPackage,
        }
    }

    /// The kind of `module`'s package: a tree's tar of its format, an image's zstd
    /// copy.
    pub fn of_package(module: &Module) -> Self {
        match module.kind {
            ModuleKind::Tree => Self::package(module.package_format),
            ModuleKind::Image => Self::FileCopy,
        }
    }
}

/// The signed manifest envelope of `channel`.
pub fn channel_manifest(channel: &ChannelName) -> RelativePath {
    format!("channels/{channel}.json")
        .parse()
        .expect("channel names are valid path segments")
}

/// A change to `channel` made with `--sign-later`: its manifest, not yet signed by
/// enough release keys, in an envelope beside the live one. Clients never read it;
/// `wavecast sign` moves it to [`channel_manifest`] once a threshold has signed.
pub fn pending_manifest(channel: &ChannelName) -> RelativePath {
    format!("channels/{channel}.json.unsigned")
        .parse()
        .expect("channel names are valid path segments")
}

/// Root `version` of the site's chain of trust (see [`wavecast_schema::Root`]):
/// written once, never changed, like a blob.
pub fn root(version: u64) -> RelativePath {
    format!("roots/{version}.json")
        .parse()
        .expect("numbers are valid path segments")
}

/// The status page, `index.html` at the site root: derived from the channels, and
/// rewritten after each of them.
pub fn status_page() -> RelativePath {
    "index.html".parse().expect("`index.html` is a valid path")
}

/// The adoption measured from the host's access logs (`wavecast stats --html`),
/// which the status page shows: counts only.
pub fn measured_adoption() -> RelativePath {
    "stats.json".parse().expect("`stats.json` is a valid path")
}

/// The immutable home of a blob with this hash.
pub fn blob(hash: &Blake3Hash, kind: BlobKind) -> RelativePath {
    format!("blobs/{hash}.{}", kind.extension())
        .parse()
        .expect("hex digests are valid path segments")
}

/// The hash and kind of the blob at `path`, when it is one (`blobs/<blake3>.<ext>`);
/// the reverse of [`blob`], for a site's listing.
pub fn parse_blob(path: &str) -> Option<(Blake3Hash, BlobKind)> {
    let name = path.strip_prefix("blobs/")?;
    let (hash, extension) = name.split_once('.')?;
    let kind = BlobKind::ALL
        .into_iter()
        .find(|kind| kind.extension() == extension)?;
    Some((hash.parse().ok()?, kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_are_named_by_hash_and_kind_and_read_back() {
        let hash = Blake3Hash::of(b"x");
        for (kind, extension) in [
            (BlobKind::PlatformRelease, "json"),
            (BlobKind::Package, "tar.gz"),
            (BlobKind::ZstdPackage, "tar.zst"),
            (BlobKind::FileIndex, "json.zst"),
            (BlobKind::Copies, "copies"),
            (BlobKind::FileCopy, "zst"),
            (BlobKind::Pack, "pack"),
        ] {
            let path = blob(&hash, kind);
            assert_eq!(path.as_str(), format!("blobs/{hash}.{extension}"));
            assert_eq!(parse_blob(path.as_str()), Some((hash.clone(), kind)));
        }
        assert_eq!(
            BlobKind::package(PackageFormat::TarZst),
            BlobKind::ZstdPackage
        );
        assert_eq!(BlobKind::package(PackageFormat::TarGz), BlobKind::Package);
        assert_eq!(parse_blob("blobs/xyz.json"), None);
        assert_eq!(parse_blob(&format!("blobs/{hash}.patch")), None);
        assert_eq!(parse_blob("channels/stable.json"), None);
    }
}
