//! Delta packs: everything a client on one release needs to reach another, in one
//! download.
//!
//! A pack (`blobs/<blake3>.pack`) updates release `from` to release `to` on one
//! platform. It is a header, followed by a payload of patches and file copies:
//!
//! ```text
//! "wcpack2\n"                    8 bytes, the magic
//! header length                  8 bytes, little-endian
//! header                         zstd-compressed compact JSON (PackHeader)
//! payload                        patches and zstd file copies, back to back
//! ```
//!
//! For every module whose file index differs, the header lists ([`ModuleDelta`]) the
//! entries of the new index that are not in the old one, each with where its content
//! comes from ([`PackData`]: a patch against content of `from`, a copy, or nothing
//! when `from` has the content under some path), and the paths that are gone. A
//! client applies that to the index it has ([`ModuleDelta::apply`]) and gets the new
//! index exactly: its blake3 must be the one the new release names, so the tree the
//! client installs is checked against signed data without the index being
//! downloaded. A pack from a release two or more behind is a diff of the two trees,
//! so files that changed only in the releases between are patched too.

use std::collections::BTreeMap;
use std::io::Read as _;

use semver::Version;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::file_index::{EntryKind, FileIndex, INDEX_SIZE_LIMIT, IndexEntry, PatchAlgorithm};
use crate::ids::{Blake3Hash, ModuleName, RelativePath};
use crate::manifest::FORMAT_VERSION;

/// The first bytes of every pack.
pub const PACK_MAGIC: &[u8; 8] = b"wcpack2\n";

/// The zstd level of pack headers.
const HEADER_COMPRESSION_LEVEL: i32 = 19;

/// What a pack holds: per module, how its index and files change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackHeader {
    /// Format of this document.
    pub format: u32,
    /// The release the pack updates from.
    pub from: Version,
    /// The release it updates to.
    pub to: Version,
    /// The modules whose index differs between the two releases, by name. A module of
    /// `to` not listed is the same in both; a module of `from` absent from `to` is
    /// gone.
    pub modules: BTreeMap<ModuleName, ModuleDelta>,
}

/// How one module changes from one release to another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleDelta {
    /// blake3 of the module's index in the release updated from; absent when the
    /// module is new. A client whose index of the module is another one cannot use
    /// this delta.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_index: Option<Blake3Hash>,
    /// blake3 of the module's index in the release updated to: what
    /// [`ModuleDelta::apply`] must produce.
    pub to_index: Blake3Hash,
    /// Paths of the old index that the new one does not have, sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<RelativePath>,
    /// The entries of the new index that the old one does not have as they are (new
    /// paths, and paths whose kind, mode, content or target changed), sorted by path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entries: Vec<PackEntry>,
}

/// An entry of the new index, and where a file's content comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackEntry {
    /// The entry, as the new index has it.
    #[serde(flatten)]
    pub entry: IndexEntry,
    /// For a file whose content the old release does not have, where the pack holds
    /// it. Absent for directories, links, and files whose content the old release
    /// has under some path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<PackData>,
}

/// Where a file's content lies in a pack's payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PackData {
    /// A patch that turns content of the old release into this file's.
    Patch {
        /// blake3 of the old content the patch applies to.
        base: Blake3Hash,
        /// How the patch is encoded.
        algorithm: PatchAlgorithm,
        /// Where it starts in the payload.
        offset: u64,
        /// Its size in bytes.
        length: u64,
    },
    /// The file's zstd copy.
    Copy {
        /// Where it starts in the payload.
        offset: u64,
        /// Its size in bytes.
        length: u64,
    },
}

impl PackData {
    /// Where the data lies in the payload: offset and length.
    pub fn span(&self) -> (u64, u64) {
        match self {
            Self::Patch { offset, length, .. } | Self::Copy { offset, length } => {
                (*offset, *length)
            }
        }
    }

    /// The data's bytes in `payload`; `None` when its span lies outside (never for
    /// the payload [`PackHeader::decode`] returned with its header).
    pub fn bytes<'p>(&self, payload: &'p [u8]) -> Option<&'p [u8]> {
        let (offset, length) = self.span();
        let start = usize::try_from(offset).ok()?;
        let end = usize::try_from(offset.checked_add(length)?).ok()?;
        payload.get(start..end)
    }
}

impl PackHeader {
    /// A header of this format updating `from` to `to`, with no modules yet.
    pub fn new(from: Version, to: Version) -> Self {
        Self {
            format: FORMAT_VERSION,
            from,
            to,
            modules: BTreeMap::new(),
        }
    }

    /// The whole pack: magic, header and `payload`.
    pub fn encode(&self, payload: &[u8]) -> Vec<u8> {
        let json = serde_json::to_vec(self).expect("pack headers always serialize to JSON");
        let header = zstd::bulk::compress(&json, HEADER_COMPRESSION_LEVEL)
            .expect("compressing bytes in memory cannot fail");
        let mut pack = Vec::with_capacity(16 + header.len() + payload.len());
        pack.extend_from_slice(PACK_MAGIC);
        pack.extend_from_slice(&(header.len() as u64).to_le_bytes());
        pack.extend_from_slice(&header);
        pack.extend_from_slice(payload);
        pack
    }

    /// Reads the header of `pack` (whose blake3 the caller checked against the
    /// platform release naming it) and returns it with the payload. Every entry's data
    /// must lie inside the payload, and every list be sorted and free of duplicates.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] for a pack that is not one or is inconsistent,
    /// [`Error::UnsupportedFormat`], [`Error::Json`].
    pub fn decode(pack: &[u8]) -> Result<(Self, &[u8])> {
        let (header, start) = Self::decode_head(pack, pack.len() as u64)?;
        Ok((header, &pack[start..]))
    }

    /// How many bytes of a pack hold its magic, header length and header: the
    /// length of [`decode_head`](Self::decode_head)'s input, from the pack's first 16
    /// bytes (`None` when they are not a pack's).
    pub fn head_length(first: &[u8]) -> Option<u64> {
        let rest = first.strip_prefix(PACK_MAGIC.as_slice())?;
        let (length, _) = rest.split_first_chunk::<8>()?;
        u64::from_le_bytes(*length).checked_add(16)
    }

    /// Reads the header from `head`, the first bytes of a pack of `pack_size` bytes
    /// (at least [`head_length`](Self::head_length) of them), checking every entry's
    /// data against the payload's size; returns it with where the payload starts.
    /// This is how a client reads what a pack holds without downloading it.
    ///
    /// # Errors
    ///
    /// As [`decode`](Self::decode).
    pub fn decode_head(head: &[u8], pack_size: u64) -> Result<(Self, usize)> {
        let invalid = |problem: String| Error::Invalid {
            document: "delta pack",
            problem,
        };
        let rest = head
            .strip_prefix(PACK_MAGIC.as_slice())
            .ok_or_else(|| invalid("it does not start as a pack".into()))?;
        let (length, rest) = rest
            .split_first_chunk::<8>()
            .ok_or_else(|| invalid("it ends before its header".into()))?;
        let length = usize::try_from(u64::from_le_bytes(*length))
            .ok()
            .filter(|length| *length <= rest.len())
            .ok_or_else(|| invalid("its header is longer than the pack".into()))?;
        let compressed = &rest[..length];
        let start = 16 + length;
        let mut json = Vec::new();
        zstd::stream::read::Decoder::new(compressed)
            .and_then(|decoder| decoder.take(INDEX_SIZE_LIMIT + 1).read_to_end(&mut json))
            .map_err(|error| invalid(format!("its header does not decompress: {error}")))?;
        if json.len() as u64 > INDEX_SIZE_LIMIT {
            return Err(invalid(format!(
                "its header is larger than {INDEX_SIZE_LIMIT} bytes"
            )));
        }
        let header: Self = serde_json::from_slice(&json).map_err(|source| Error::Json {
            document: "delta pack header",
            source,
        })?;
        if header.format != FORMAT_VERSION {
            return Err(Error::UnsupportedFormat {
                document: "delta pack",
                found: header.format,
                supported: FORMAT_VERSION,
            });
        }
        header
            .validate(pack_size.saturating_sub(start as u64))
            .map_err(invalid)?;
        Ok((header, start))
    }

    fn validate(&self, payload_size: u64) -> std::result::Result<(), String> {
        for (name, delta) in &self.modules {
            if !strictly_sorted(delta.removed.iter()) {
                return Err(format!("module {name}: removed paths are not sorted"));
            }
            if !strictly_sorted(delta.entries.iter().map(|entry| &entry.entry.path)) {
                return Err(format!("module {name}: entries are not sorted"));
            }
            for entry in &delta.entries {
                let Some(data) = &entry.data else {
                    continue;
                };
                if !matches!(entry.entry.kind, EntryKind::File { .. }) {
                    return Err(format!(
                        "module {name}: `{}` has data but is not a file",
                        entry.entry.path
                    ));
                }
                let (offset, length) = data.span();
                if offset
                    .checked_add(length)
                    .is_none_or(|end| end > payload_size)
                {
                    return Err(format!(
                        "module {name}: the data of `{}` lies outside the payload",
                        entry.entry.path
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Whether `paths` are sorted and free of duplicates.
fn strictly_sorted<'p>(paths: impl Iterator<Item = &'p RelativePath>) -> bool {
    let mut previous: Option<&RelativePath> = None;
    for path in paths {
        if previous.replace(path).is_some_and(|before| before >= path) {
            return false;
        }
    }
    true
}

impl ModuleDelta {
    /// What turns `from` (the module's index in the old release, `None` for a new
    /// module) into `to`: the removed paths and the new or changed entries, each with
    /// the data `data` gives it. `data` is called for each changed or new file whose
    /// content `from` does not have.
    pub fn between(
        from: Option<&FileIndex>,
        to: &FileIndex,
        mut data: impl FnMut(&IndexEntry) -> Option<PackData>,
    ) -> Self {
        let old = by_path(from);
        let old_contents: std::collections::HashSet<&Blake3Hash> = from
            .map(|index| index.file_hashes().collect())
            .unwrap_or_default();
        let new_paths: std::collections::HashSet<&RelativePath> =
            to.entries.iter().map(|entry| &entry.path).collect();
        let entries = to
            .entries
            .iter()
            .filter(|entry| old.get(&entry.path) != Some(entry))
            .map(|entry| PackEntry {
                entry: entry.clone(),
                data: match &entry.kind {
                    EntryKind::File { blake3, .. } if !old_contents.contains(blake3) => data(entry),
                    _ => None,
                },
            })
            .collect();
        Self {
            from_index: from.map(|index| Blake3Hash::of(&index.to_json())),
            to_index: Blake3Hash::of(&to.to_json()),
            removed: old
                .keys()
                .filter(|path| !new_paths.contains(*path))
                .map(|path| (*path).clone())
                .collect(),
            entries,
        }
    }

    /// The new index: `from` (the module's index in the old release, `None` for a new
    /// module) without the removed paths, with the new entries. Its blake3 is checked
    /// against [`ModuleDelta::to_index`].
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] when `from` is not the index the delta was made from, or the
    /// result is not the index it names.
    pub fn apply(&self, from: Option<&FileIndex>) -> Result<FileIndex> {
        let invalid = |problem: String| Error::Invalid {
            document: "delta pack",
            problem,
        };
        let from_hash = from.map(|index| Blake3Hash::of(&index.to_json()));
        if from_hash != self.from_index {
            return Err(invalid(
                "it updates from another index than the one installed".into(),
            ));
        }
        let mut entries = by_path(from);
        for path in &self.removed {
            entries.remove(path);
        }
        for entry in &self.entries {
            entries.insert(&entry.entry.path, &entry.entry);
        }
        let index = FileIndex {
            format: FORMAT_VERSION,
            entries: entries.into_values().cloned().collect(),
        };
        if Blake3Hash::of(&index.to_json()) != self.to_index {
            return Err(invalid(format!(
                "applied to the installed index it does not give the index {}",
                self.to_index
            )));
        }
        Ok(index)
    }

    /// The pack's data for each content of the new index it carries, by blake3.
    pub fn data_by_content(&self) -> BTreeMap<&Blake3Hash, &PackData> {
        self.entries
            .iter()
            .filter_map(|entry| match (&entry.entry.kind, &entry.data) {
                (EntryKind::File { blake3, .. }, Some(data)) => Some((blake3, data)),
                _ => None,
            })
            .collect()
    }
}

/// The entries of `index` by path; none without an index.
fn by_path(index: Option<&FileIndex>) -> BTreeMap<&RelativePath, &IndexEntry> {
    index
        .map(|index| {
            index
                .entries
                .iter()
                .map(|entry| (&entry.path, entry))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::file_index::FileMode;

    pub(crate) fn file(path: &str, content: &str) -> IndexEntry {
        IndexEntry {
            path: path.parse().unwrap(),
            kind: EntryKind::File {
                size: content.len() as u64,
                blake3: Blake3Hash::of(content.as_bytes()),
                packed_size: content.len() as u64 + 9,
            },
            mode: FileMode::from_permissions(0o644),
        }
    }

    fn dir(path: &str) -> IndexEntry {
        IndexEntry {
            path: path.parse().unwrap(),
            kind: EntryKind::Dir,
            mode: FileMode::from_permissions(0o755),
        }
    }

    fn link(path: &str, target: &str) -> IndexEntry {
        IndexEntry {
            path: path.parse().unwrap(),
            kind: EntryKind::Symlink {
                target: target.parse().unwrap(),
            },
            mode: FileMode::from_permissions(0o777),
        }
    }

    fn indexes() -> (FileIndex, FileIndex) {
        let old = FileIndex::new(vec![
            dir("bin"),
            file("bin/app", "v1"),
            file("lib-1.2.so", "lib v1"),
            file("moved", "same"),
            file("gone", "x"),
            link("current", "bin/app"),
        ]);
        let mut chmod = file("bin/app", "v2");
        chmod.mode = FileMode::from_permissions(0o755);
        let new = FileIndex::new(vec![
            dir("bin"),
            chmod,
            file("lib-1.3.so", "lib v2"),
            file("elsewhere/moved", "same"),
            dir("elsewhere"),
            file("fresh", "brand new"),
            link("current", "bin/app2"),
        ]);
        (old, new)
    }

    #[test]
    fn a_delta_lists_only_what_changed_and_applies_back_to_the_new_index() {
        let (old, new) = indexes();
        let mut asked = Vec::new();
        let delta = ModuleDelta::between(Some(&old), &new, |entry| {
            asked.push(entry.path.to_string());
            Some(PackData::Copy {
                offset: 0,
                length: 1,
            })
        });
        // Contents the old release has (`moved`) need no data, wherever they go.
        assert_eq!(asked, ["bin/app", "fresh", "lib-1.3.so"]);
        let changed: Vec<&str> = delta
            .entries
            .iter()
            .map(|entry| entry.entry.path.as_str())
            .collect();
        assert_eq!(
            changed,
            [
                "bin/app",
                "current",
                "elsewhere",
                "elsewhere/moved",
                "fresh",
                "lib-1.3.so"
            ]
        );
        let removed: Vec<&str> = delta.removed.iter().map(RelativePath::as_str).collect();
        assert_eq!(removed, ["gone", "lib-1.2.so", "moved"]);
        assert_eq!(delta.apply(Some(&old)).unwrap(), new);
        assert_eq!(delta.data_by_content().len(), 3);

        // Another starting index is refused; so is a result that is not the new one.
        assert!(delta.apply(Some(&new)).is_err());
        assert!(delta.apply(None).is_err());
        let mut wrong = delta.clone();
        wrong.removed.pop();
        assert!(wrong.apply(Some(&old)).is_err());

        let fresh = ModuleDelta::between(None, &new, |_| None);
        assert_eq!(fresh.from_index, None);
        assert_eq!(fresh.apply(None).unwrap(), new);
    }

    #[test]
    fn a_pack_round_trips_and_inconsistent_ones_are_refused() {
        let (old, new) = indexes();
        let mut header = PackHeader::new("1.0.0".parse().unwrap(), "1.1.0".parse().unwrap());
        header.modules.insert(
            "app".parse().unwrap(),
            ModuleDelta::between(Some(&old), &new, |_| {
                Some(PackData::Patch {
                    base: Blake3Hash::of(b"v1"),
                    algorithm: PatchAlgorithm::Zstd,
                    offset: 2,
                    length: 3,
                })
            }),
        );
        let pack = header.encode(b"01234");
        let (decoded, payload) = PackHeader::decode(&pack).unwrap();
        assert_eq!(decoded, header);
        assert_eq!(payload, b"01234");

        // Data past the payload, a cut pack, another format, something else.
        assert!(PackHeader::decode(&header.encode(b"0123")).is_err());
        assert!(PackHeader::decode(&pack[..pack.len() - 10]).is_err());
        // The head alone says as much, given the pack's size.
        let head = PackHeader::head_length(&pack[..16]).unwrap() as usize;
        let (from_head, start) = PackHeader::decode_head(&pack[..head], pack.len() as u64).unwrap();
        assert_eq!((from_head, start), (header.clone(), head));
        assert!(PackHeader::decode_head(&pack[..head], pack.len() as u64 - 1).is_err());
        assert!(PackHeader::decode(b"not a pack at all").is_err());
        let mut future = header.clone();
        future.format = FORMAT_VERSION + 1;
        assert!(matches!(
            PackHeader::decode(&future.encode(b"01234")).unwrap_err(),
            Error::UnsupportedFormat { .. }
        ));
        let mut unsorted = header;
        let delta = unsorted.modules.values_mut().next().unwrap();
        delta.entries.reverse();
        assert!(PackHeader::decode(&unsorted.encode(b"01234")).is_err());
    }
}
