//! Per-module file indexes: every file and directory of a module with its mode, size
//! and blake3. They live outside the polled manifest, content-addressed, so the
//! manifest stays small; clients use them to verify and to update differentially.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};
use crate::ids::{Blake3Hash, RelativePath};
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

/// One file or directory in a module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexEntry {
    /// Path relative to the module's destination.
    pub path: RelativePath,
    /// What the entry is, with its content description for files.
    #[serde(flatten)]
    pub kind: EntryKind,
    /// Unix permission bits.
    pub mode: FileMode,
}

/// Whether an entry is a directory or a regular file. wavecast packages carry nothing
/// else: no symlinks, hard links or devices.
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
}

/// Unix permission bits (`0o777` at most: wavecast never installs setuid, setgid or
/// sticky bits), written in JSON as an octal string such as `"755"`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileMode(u32);

impl FileMode {
    /// Keeps the permission bits of `mode` and drops everything else.
    pub fn from_permissions(mode: u32) -> Self {
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
            EntryKind::Dir => None,
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
        if let Some(pair) = index
            .entries
            .windows(2)
            .find(|pair| pair[0].path >= pair[1].path)
        {
            return Err(Error::Invalid {
                document: "file index",
                problem: format!("entries are not sorted and unique at `{}`", pair[1].path),
            });
        }
        Ok(index)
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
                EntryKind::Dir => 0,
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
    fn unsorted_or_setuid_indexes_are_refused() {
        let unsorted = r#"{"format":1,"entries":[
            {"path":"b","type":"dir","mode":"755"},{"path":"a","type":"dir","mode":"755"}]}"#;
        assert!(FileIndex::parse(unsorted.as_bytes()).is_err());
        let setuid = r#"{"format":1,"entries":[{"path":"a","type":"dir","mode":"4755"}]}"#;
        assert!(FileIndex::parse(setuid.as_bytes()).is_err());
    }
}
