//! Per-module file indexes: every file, directory and symbolic link of a module, with
//! the mode, size and blake3 of each file and the target of each link. They live
//! outside the polled manifest, content-addressed, so the manifest stays small;
//! clients use them to verify that the tree they install is exactly the signed one
//! (see [`crate::ExpectedTree`]) and to update differentially.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};
use crate::ids::{Blake3Hash, LinkTarget, RelativePath};
use crate::manifest::FORMAT_VERSION;

/// Every entry of one module's tree, sorted by path, and the binary patches that
/// rebuild its files from files of earlier releases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileIndex {
    /// Format of this document.
    pub format: u32,
    /// The entries, sorted by path, paths relative to the module's destination.
    pub entries: Vec<IndexEntry>,
    /// Patches to this module's files from files of earlier releases, for differential
    /// updates. Each is stored at `blobs/<blake3>.patch`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub patches: Vec<Patch>,
}

/// A binary patch that turns one file content into another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Patch {
    /// blake3 of the content the patch applies to.
    pub from: Blake3Hash,
    /// blake3 of the content the patch produces.
    pub to: Blake3Hash,
    /// How the patch is encoded.
    pub algorithm: PatchAlgorithm,
    /// Size of the stored patch in bytes.
    pub size: u64,
    /// blake3 of the stored patch: verified before the patch is applied.
    pub blake3: Blake3Hash,
}

/// A binary patch format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PatchAlgorithm {
    /// zstd with the old content as a reference prefix (`zstd --patch-from`).
    Zstd,
    /// bsdiff 4 (bzip2-compressed control, diff and extra blocks).
    Bsdiff,
    /// bsdiff's instructions re-encoded compactly (varints, sparse diff bytes) in one
    /// zstd frame; see the `wavecast-delta` crate.
    #[serde(rename = "bsdiff-zstd")]
    BsdiffZstd,
}

impl PatchAlgorithm {
    /// The algorithm's name in indexes and plans.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Zstd => "zstd",
            Self::Bsdiff => "bsdiff",
            Self::BsdiffZstd => "bsdiff-zstd",
        }
    }
}

/// One file, directory or symbolic link in a module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexEntry {
    /// Path relative to the module's destination.
    pub path: RelativePath,
    /// What the entry is, with its content description for files.
    #[serde(flatten)]
    pub kind: EntryKind,
    /// Unix permission bits. A symbolic link has none of its own (Unix ignores them):
    /// publishers write `777`, and clients ignore the field for links.
    pub mode: FileMode,
}

/// Whether an entry is a directory, a regular file or a symbolic link. wavecast
/// packages carry nothing else: no hard links (publishers package each name of a
/// hard-linked file as a file of its own) and no devices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum EntryKind {
    /// A directory.
    Dir,
    /// A regular file.
    File {
        /// Size in bytes.
        size: u64,
        /// blake3 of the content.
        blake3: Blake3Hash,
        /// Size of the file's standalone zstd-compressed copy, stored under the content
        /// hash at `blobs/<blake3>.zst`, which clients download when they have neither
        /// the content nor a patch to it. Clients read no more than this and verify the
        /// decompressed content against `blake3`.
        packed_size: u64,
    },
    /// A symbolic link. Nothing of a module lies under it: an index with an entry
    /// below a link is refused, so installing a module never writes through one.
    Symlink {
        /// Where the link points, as the link holds it.
        target: LinkTarget,
    },
}

impl EntryKind {
    /// `directory`, `file` or `symbolic link`, for messages.
    pub fn describe(&self) -> &'static str {
        match self {
            Self::Dir => "directory",
            Self::File { .. } => "file",
            Self::Symlink { .. } => "symbolic link",
        }
    }
}

/// Unix permission bits (`0o777` at most: wavecast never installs setuid, setgid or
/// sticky bits), written in JSON as an octal string such as `"755"`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileMode(u32);

impl FileMode {
    /// Keeps the permission bits of `mode` and drops everything else.
    pub const fn from_permissions(mode: u32) -> Self {
        Self(mode & 0o777)
    }

    /// The permission bits.
    pub fn bits(self) -> u32 {
        self.0
    }
}

impl fmt::Display for FileMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:03o}", self.0)
    }
}

impl fmt::Debug for FileMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FileMode({self})")
    }
}

impl Serialize for FileMode {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for FileMode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        match u32::from_str_radix(&text, 8) {
            Ok(bits) if bits <= 0o777 && !text.is_empty() => Ok(Self(bits)),
            _ => Err(serde::de::Error::custom(format!(
                "invalid mode `{text}`: expected octal permission bits such as `644`"
            ))),
        }
    }
}

impl FileIndex {
    /// Builds an index with no patches, sorting the entries by path.
    pub fn new(mut entries: Vec<IndexEntry>) -> Self {
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        Self {
            format: FORMAT_VERSION,
            entries,
            patches: Vec::new(),
        }
    }

    /// The content hashes of the index's files.
    pub fn file_hashes(&self) -> impl Iterator<Item = &Blake3Hash> {
        self.entries.iter().filter_map(|entry| match &entry.kind {
            EntryKind::File { blake3, .. } => Some(blake3),
            EntryKind::Dir | EntryKind::Symlink { .. } => None,
        })
    }

    /// Parses and validates an index.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let index: Self = serde_json::from_slice(bytes).map_err(|source| Error::Json {
            document: "file index",
            source,
        })?;
        if index.format > FORMAT_VERSION {
            return Err(Error::UnsupportedFormat {
                document: "file index",
                found: index.format,
                supported: FORMAT_VERSION,
            });
        }
        index.validate()?;
        Ok(index)
    }

    /// Checks what serde's types cannot: entries sorted by path and unique, and none
    /// inside a file or a symbolic link (a link to a directory followed by entries
    /// "inside" it would have a client write through the link, outside the tree).
    fn validate(&self) -> Result<()> {
        let invalid = |problem: String| Error::Invalid {
            document: "file index",
            problem,
        };
        if let Some(pair) = self
            .entries
            .windows(2)
            .find(|pair| pair[0].path >= pair[1].path)
        {
            return Err(invalid(format!(
                "entries are not sorted and unique at `{}`",
                pair[1].path
            )));
        }
        let mut leaves: BTreeMap<&str, &EntryKind> = BTreeMap::new();
        for entry in &self.entries {
            if let Some((parent, kind)) = entry
                .path
                .ancestors()
                .find_map(|parent| leaves.get(parent).map(|kind| (parent, kind)))
            {
                return Err(invalid(format!(
                    "`{}` lies inside `{parent}`, which is a {}",
                    entry.path,
                    kind.describe()
                )));
            }
            if entry.kind != EntryKind::Dir {
                leaves.insert(entry.path.as_str(), &entry.kind);
            }
        }
        Ok(())
    }

    /// The index as compact JSON bytes, the form that gets hashed and published.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a file index always serializes to JSON")
    }

    /// Total size of the files, in bytes.
    pub fn total_size(&self) -> u64 {
        self.entries
            .iter()
            .map(|entry| match entry.kind {
                EntryKind::File { size, .. } => size,
                EntryKind::Dir | EntryKind::Symlink { .. } => 0,
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_round_trips_with_octal_modes() {
        let index = FileIndex::new(vec![
            IndexEntry {
                path: "bin/app".parse().unwrap(),
                kind: EntryKind::File {
                    size: 3,
                    blake3: Blake3Hash::of(b"abc"),
                    packed_size: 12,
                },
                mode: FileMode::from_permissions(0o100_755),
            },
            IndexEntry {
                path: "bin".parse().unwrap(),
                kind: EntryKind::Dir,
                mode: FileMode::from_permissions(0o755),
            },
        ]);
        let json = String::from_utf8(index.to_json()).unwrap();
        assert!(json.contains(r#""mode":"755""#), "{json}");
        assert!(json.contains(r#""type":"dir""#), "{json}");
        let parsed = FileIndex::parse(json.as_bytes()).unwrap();
        assert_eq!(parsed, index);
        assert_eq!(parsed.entries[0].path.as_str(), "bin");
        assert_eq!(parsed.total_size(), 3);
    }

    #[test]
    fn symbolic_links_round_trip_with_their_targets() {
        let json = r#"{"format":1,"entries":[
            {"path":"lib","type":"dir","mode":"755"},
            {"path":"lib/libfoo.so","type":"symlink","target":"libfoo.so.1","mode":"777"},
            {"path":"lib/libfoo.so.1","type":"file","size":0,"blake3":"af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262","packed_size":0,"mode":"644"}]}"#;
        let index = FileIndex::parse(json.as_bytes()).unwrap();
        assert_eq!(
            index.entries[1].kind,
            EntryKind::Symlink {
                target: "libfoo.so.1".parse().unwrap()
            }
        );
        assert_eq!(index.file_hashes().count(), 1);
        assert_eq!(FileIndex::parse(&index.to_json()).unwrap(), index);
    }

    #[test]
    fn nothing_may_lie_inside_a_link_or_a_file() {
        for (parent, problem) in [
            (
                r#"{"path":"etc","type":"symlink","target":"/etc","mode":"777"}"#,
                "`etc/passwd` lies inside `etc`, which is a symbolic link",
            ),
            (
                r#"{"path":"etc","type":"file","size":0,"blake3":"af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262","packed_size":0,"mode":"644"}"#,
                "`etc/passwd` lies inside `etc`, which is a file",
            ),
        ] {
            let json = format!(
                r#"{{"format":1,"entries":[{parent},
                {{"path":"etc/passwd","type":"file","size":0,"blake3":"af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262","packed_size":0,"mode":"644"}}]}}"#
            );
            let error = FileIndex::parse(json.as_bytes()).unwrap_err();
            assert!(error.to_string().contains(problem), "{error}");
        }
        // `etc-old` sorts between `etc` and `etc/passwd` and is not inside either.
        let json = r#"{"format":1,"entries":[
            {"path":"etc","type":"dir","mode":"755"},
            {"path":"etc-old","type":"symlink","target":"etc","mode":"777"},
            {"path":"etc/passwd","type":"symlink","target":"/etc/passwd","mode":"777"}]}"#;
        FileIndex::parse(json.as_bytes()).unwrap();
    }

    #[test]
    fn unsorted_or_setuid_indexes_are_refused() {
        let unsorted = r#"{"format":1,"entries":[
            {"path":"b","type":"dir","mode":"755"},{"path":"a","type":"dir","mode":"755"}]}"#;
        assert!(FileIndex::parse(unsorted.as_bytes()).is_err());
        let setuid = r#"{"format":1,"entries":[{"path":"a","type":"dir","mode":"4755"}]}"#;
        assert!(FileIndex::parse(setuid.as_bytes()).is_err());
    }
}
