//! Where each file of a site lives. Pure: no I/O.
//!
//! Every path is relative to the site root, so a site works unchanged from any base
//! URL, a folder or a mirror.

use wavecast_schema::{Blake3Hash, ChannelName, RelativePath};

/// What a content-addressed blob holds, which decides its file extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobKind {
    /// A module package (`.tar.gz`).
    Package,
    /// A module's file index (`.json`).
    FileIndex,
    /// One file's standalone zstd-compressed copy (`.zst`), named by the blake3 of the
    /// file's *content* (clients verify after decompressing, within the index's sizes).
    FileCopy,
    /// A binary patch (`.patch`), named by the blake3 of the stored patch.
    Patch,
}

/// The signed manifest envelope of `channel`.
pub fn channel_manifest(channel: &ChannelName) -> RelativePath {
    format!("channels/{channel}.json")
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

/// The immutable home of a blob with this hash.
pub fn blob(hash: &Blake3Hash, kind: BlobKind) -> RelativePath {
    let extension = match kind {
        BlobKind::Package => "tar.gz",
        BlobKind::FileIndex => "json",
        BlobKind::FileCopy => "zst",
        BlobKind::Patch => "patch",
    };
    format!("blobs/{hash}.{extension}")
        .parse()
        .expect("hex digests are valid path segments")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_are_named_by_hash_and_kind() {
        let hash = Blake3Hash::of(b"x");
        assert_eq!(
            blob(&hash, BlobKind::Package).as_str(),
            format!("blobs/{hash}.tar.gz")
        );
        assert_eq!(
            blob(&hash, BlobKind::FileIndex).as_str(),
            format!("blobs/{hash}.json")
        );
        assert_eq!(
            blob(&hash, BlobKind::FileCopy).as_str(),
            format!("blobs/{hash}.zst")
        );
        assert_eq!(
            blob(&hash, BlobKind::Patch).as_str(),
            format!("blobs/{hash}.patch")
        );
    }
}
