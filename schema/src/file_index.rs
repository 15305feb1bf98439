//! Per-module file indexes: every file, directory and symbolic link of a module, with
//! the mode, size and blake3 of each file and the target of each link. They live
//! outside the polled manifest, content-addressed, so the manifest stays small;
//! clients use them to verify that the tree they install is exactly the signed one
//! (see [`crate::ExpectedTree`]) and to update differentially.
//!
//! An index is named by the blake3 of its canonical JSON ([`FileIndex::to_json`]:
//! compact, entries sorted by path) and stored zstd-compressed ([`FileIndex::encode`],
//! [`IndexBlob`]). Because the name is the hash of bytes anyone can rebuild from the
//! entries, a client that derives the new release's index from the one it has and a
//! delta pack ([`crate::ModuleDelta::apply`]) checks the result against the signed
//! hash without downloading the index at all.
//!
//! The index also lays out the module's copy pack ([`FileIndex::copy_layout`]): the
//! zstd copies of its distinct file contents, concatenated in index order, from which
//! a client fetches the files it lacks as byte ranges.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::Read as _;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};
use crate::ids::{Blake3Hash, LinkTarget, RelativePath};
use crate::manifest::FORMAT_VERSION;

/// The zstd level of stored indexes: they are written once and read by every client
/// that updates without a pack, so they are compressed hard.
const INDEX_COMPRESSION_LEVEL: i32 = 19;

/// Every entry of one module's tree, sorted by path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileIndex {
    /// Format of this document.
    pub format: u32,
    /// The entries, sorted by path, paths relative to the module's destination.
    pub entries: Vec<IndexEntry>,
}

/// The most bytes an index's JSON may have: a client decompresses no more. A module
/// of 100,000 files has an index of about 16 MiB.
pub const INDEX_SIZE_LIMIT: u64 = 64 * 1024 * 1024;

/// Where a module's file index is and what it is: stored zstd-compressed at
/// `blobs/<blake3>.json.zst`, named by the blake3 of its JSON.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct IndexBlob {
    /// Size of the stored, compressed bytes: a client downloads no more.
    pub size: u64,
    /// Size of the JSON once decompressed: a client decompresses no more.
    pub json_size: u64,
    /// blake3 of the JSON ([`FileIndex::to_json`]), checked after decompressing.
    pub blake3: Blake3Hash,
}

/// One distinct content's zstd copy in a module's copy pack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopySlice {
    /// Where the copy starts in the copy pack.
    pub offset: u64,
    /// Its size in bytes.
    pub length: u64,
    /// The size of the content it decompresses to.
    pub size: u64,
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
        /// Size of the file's zstd-compressed copy in the module's copy pack, which
        /// clients fetch when they have neither the content nor a patch to it. Clients
        /// read no more than this and verify the decompressed content against `blake3`.
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
    /// Builds an index, sorting the entries by path.
    pub fn new(mut entries: Vec<IndexEntry>) -> Self {
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        Self {
            format: FORMAT_VERSION,
            entries,
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

    /// The index as canonical JSON bytes (compact, entries in path order): what its
    /// blake3 names.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a file index always serializes to JSON")
    }

    /// The index as it is stored on a site: its JSON compressed with zstd, and the
    /// [`IndexBlob`] that describes it.
    pub fn encode(&self) -> (Vec<u8>, IndexBlob) {
        let json = self.to_json();
        let compressed = zstd::bulk::compress(&json, INDEX_COMPRESSION_LEVEL)
            .expect("compressing bytes in memory cannot fail");
        let blob = IndexBlob {
            size: compressed.len() as u64,
            json_size: json.len() as u64,
            blake3: Blake3Hash::of(&json),
        };
        (compressed, blob)
    }

    /// Decompresses and parses the stored index `bytes` that `blob` describes,
    /// reading at most [`IndexBlob::json_size`] (and [`INDEX_SIZE_LIMIT`]) bytes of
    /// JSON and checking their blake3 before parsing them.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] when the bytes do not decompress to exactly the JSON the
    /// blob names; the errors of [`FileIndex::parse`].
    pub fn decode(bytes: &[u8], blob: &IndexBlob) -> Result<Self> {
        let invalid = |problem: String| Error::Invalid {
            document: "file index",
            problem,
        };
        if blob.json_size > INDEX_SIZE_LIMIT {
            return Err(invalid(format!(
                "its JSON would be {} bytes, more than the {INDEX_SIZE_LIMIT} allowed",
                blob.json_size
            )));
        }
        let mut json = Vec::new();
        zstd::stream::read::Decoder::new(bytes)
            .and_then(|decoder| decoder.take(blob.json_size + 1).read_to_end(&mut json))
            .map_err(|error| invalid(format!("it does not decompress: {error}")))?;
        if json.len() as u64 != blob.json_size || Blake3Hash::of(&json) != blob.blake3 {
            return Err(invalid(format!(
                "it does not decompress to the index {} it was published as",
                blob.blake3
            )));
        }
        Self::parse(&json)
    }

    /// Where each distinct file content's copy lies in the module's copy pack: the
    /// copies are concatenated in index order, each content once, at its first file.
    pub fn copy_layout(&self) -> HashMap<&Blake3Hash, CopySlice> {
        let mut layout = HashMap::new();
        let mut offset = 0u64;
        for entry in &self.entries {
            if let EntryKind::File {
                size,
                blake3,
                packed_size,
            } = &entry.kind
                && !layout.contains_key(blake3)
            {
                layout.insert(
                    blake3,
                    CopySlice {
                        offset,
                        length: *packed_size,
                        size: *size,
                    },
                );
                offset = offset.saturating_add(*packed_size);
            }
        }
        layout
    }

    /// The size of the module's copy pack: every distinct content's copy once.
    pub fn copies_size(&self) -> u64 {
        self.copy_layout()
            .values()
            .map(|slice| slice.length)
            .fold(0, u64::saturating_add)
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
        let json = r#"{"format":2,"entries":[
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
                r#"{{"format":2,"entries":[{parent},
                {{"path":"etc/passwd","type":"file","size":0,"blake3":"af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262","packed_size":0,"mode":"644"}}]}}"#
            );
            let error = FileIndex::parse(json.as_bytes()).unwrap_err();
            assert!(error.to_string().contains(problem), "{error}");
        }
        // `etc-old` sorts between `etc` and `etc/passwd` and is not inside either.
        let json = r#"{"format":2,"entries":[
            {"path":"etc","type":"dir","mode":"755"},
            {"path":"etc-old","type":"symlink","target":"etc","mode":"777"},
            {"path":"etc/passwd","type":"symlink","target":"/etc/passwd","mode":"777"}]}"#;
        FileIndex::parse(json.as_bytes()).unwrap();
    }

    #[test]
    fn unsorted_or_setuid_indexes_are_refused() {
        let unsorted = r#"{"format":2,"entries":[
            {"path":"b","type":"dir","mode":"755"},{"path":"a","type":"dir","mode":"755"}]}"#;
        assert!(FileIndex::parse(unsorted.as_bytes()).is_err());
        let setuid = r#"{"format":2,"entries":[{"path":"a","type":"dir","mode":"4755"}]}"#;
        assert!(FileIndex::parse(setuid.as_bytes()).is_err());
    }
}
