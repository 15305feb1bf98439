//! Differential update plans: how a client obtains each file of a module it is about
//! to install, from what it already has, at the fewest bytes and requests.
//!
//! For every file of the target module, in order of preference:
//! 1. **keep**: the client already has this content somewhere (in any installed
//!    release, under any path), so it is copied locally: renames and moves are free;
//! 2. **pack**: the delta pack the client downloaded for this update carries the file,
//!    as a patch against content it has or as a copy;
//! 3. **range**: the file's zstd copy, fetched as a byte range of the module's copy
//!    pack. Neighbouring ranges are coalesced, into at most [`MAX_RANGE_REQUESTS`]
//!    requests.
//!
//! When the ranges would cost at least as much as the module's whole package, the plan
//! takes the package instead. Each request is charged [`REQUEST_COST`] bytes in that
//! comparison (headers, round trips), so a fresh install takes one package rather than
//! a scatter of ranges for a few percent fewer bytes. Every rebuilt file is verified by
//! blake3 before it is used, and the client falls back (pack → range → package) on
//! any failure, so the plan only decides what is cheapest, never what is correct.

use std::collections::{BTreeMap, BTreeSet};

use crate::file_index::{CopySlice, EntryKind, FileIndex, FileMode};
use crate::ids::{Blake3Hash, RelativePath};
use crate::pack::{ModuleDelta, PackData};

/// What one request is charged, in bytes, when weighing ranges against the whole
/// package, and the widest gap between two ranges that is fetched rather than split
/// into two requests: about the cost of a request's headers and round trip.
pub const REQUEST_COST: u64 = 16 * 1024;

/// The most range requests one module's files take from its copy pack: beyond it, the
/// ranges closest together are merged, fetching the bytes between them.
pub const MAX_RANGE_REQUESTS: usize = 4;

/// How the client obtains one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileSource<'i> {
    /// The content is already on this machine.
    Keep,
    /// The delta pack of this update carries it.
    Pack(&'i PackData),
    /// Its copy, from the module's copy pack.
    Range(CopySlice),
}

/// One file of the target module and how to obtain it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStep<'i> {
    /// Path relative to the module's destination.
    pub path: &'i RelativePath,
    /// Permission bits.
    pub mode: FileMode,
    /// Size of the content.
    pub size: u64,
    /// blake3 of the content, checked after the file is rebuilt.
    pub blake3: &'i Blake3Hash,
    /// Where the content comes from.
    pub source: FileSource<'i>,
}

/// A span of a copy pack fetched in one request: `start..end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// The first byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

impl ByteRange {
    /// Its length in bytes.
    pub fn len(self) -> u64 {
        self.end - self.start
    }

    /// Whether it is empty.
    pub fn is_empty(self) -> bool {
        self.end == self.start
    }
}

/// How to obtain one module of the target release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModulePlan<'i> {
    /// Every file of the target module, in index order.
    pub files: Vec<FileStep<'i>>,
    /// Paths of the installed module that the target no longer has (for display: the
    /// new tree is built beside the old one, which is left untouched).
    pub removed: Vec<&'i RelativePath>,
    /// The requests to the copy pack, coalesced, in order; empty with the package.
    pub ranges: Vec<ByteRange>,
    /// Download the whole package instead: the ranges would cost at least as much.
    pub use_package: bool,
    /// Bytes to download for this module beyond the pack: the package size when
    /// `use_package`, else the ranges' total.
    pub download_bytes: u64,
}

/// Plans how to obtain the module described by `target`.
///
/// `available` holds the content hashes the client has on disk (from the file indexes
/// of its installed releases); `pack` is this module's part of the delta pack the
/// client has for this update, if any; `installed` is the index of the same module in
/// the current release, if any, used only to list removed paths; `package_size` is
/// the size of the module's full package.
pub fn plan_module<'i>(
    target: &'i FileIndex,
    available: &BTreeSet<&Blake3Hash>,
    pack: Option<&'i ModuleDelta>,
    installed: Option<&'i FileIndex>,
    package_size: u64,
) -> ModulePlan<'i> {
    let carried: BTreeMap<&Blake3Hash, &PackData> =
        pack.map(ModuleDelta::data_by_content).unwrap_or_default();
    let layout = target.copy_layout();
    let files: Vec<FileStep<'i>> = target
        .entries
        .iter()
        .filter_map(|entry| match &entry.kind {
            EntryKind::Dir | EntryKind::Symlink { .. } => None,
            EntryKind::File { size, blake3, .. } => {
                let source = if available.contains(blake3) {
                    FileSource::Keep
                } else if let Some(data) = carried.get(blake3) {
                    FileSource::Pack(data)
                } else {
                    FileSource::Range(layout[blake3].clone())
                };
                Some(FileStep {
                    path: &entry.path,
                    mode: entry.mode,
                    size: *size,
                    blake3,
                    source,
                })
            }
        })
        .collect();
    let ranges = coalesce(files.iter().filter_map(|step| match &step.source {
        FileSource::Range(slice) => Some(ByteRange {
            start: slice.offset,
            end: slice.offset + slice.length,
        }),
        FileSource::Keep | FileSource::Pack(_) => None,
    }));
    let range_bytes: u64 = ranges.iter().map(|range| range.len()).sum();
    let requests = ranges.len() as u64;
    let use_package =
        requests > 0 && range_bytes + requests * REQUEST_COST >= package_size + REQUEST_COST;
    let target_paths: BTreeSet<&RelativePath> =
        target.entries.iter().map(|entry| &entry.path).collect();
    let removed = installed
        .map(|index| {
            index
                .entries
                .iter()
                .map(|entry| &entry.path)
                .filter(|path| !target_paths.contains(path))
                .collect()
        })
        .unwrap_or_default();
    ModulePlan {
        files,
        removed,
        ranges: if use_package { Vec::new() } else { ranges },
        use_package,
        download_bytes: if use_package {
            package_size
        } else {
            range_bytes
        },
    }
}

/// The spans to request for `ranges`: sorted, merged where they touch or overlap or
/// lie at most [`REQUEST_COST`] apart, then, while there are more than
/// [`MAX_RANGE_REQUESTS`], merged across the smallest gap.
pub fn coalesce(ranges: impl IntoIterator<Item = ByteRange>) -> Vec<ByteRange> {
    let mut sorted: Vec<ByteRange> = ranges
        .into_iter()
        .filter(|range| !range.is_empty())
        .collect();
    sorted.sort_by_key(|range| (range.start, range.end));
    let mut merged: Vec<ByteRange> = Vec::with_capacity(sorted.len());
    for range in sorted {
        match merged.last_mut() {
            Some(last) if range.start <= last.end.saturating_add(REQUEST_COST) => {
                last.end = last.end.max(range.end);
            }
            _ => merged.push(range),
        }
    }
    while merged.len() > MAX_RANGE_REQUESTS {
        let narrowest = (1..merged.len())
            .min_by_key(|&i| merged[i].start - merged[i - 1].end)
            .expect("more than one range");
        let next = merged.remove(narrowest);
        merged[narrowest - 1].end = next.end;
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::file_index::{IndexEntry, PatchAlgorithm};

    fn file(path: &str, content: &str, packed_size: u64) -> IndexEntry {
        IndexEntry {
            path: path.parse().unwrap(),
            kind: EntryKind::File {
                size: content.len() as u64,
                blake3: Blake3Hash::of(content.as_bytes()),
                packed_size,
            },
            mode: FileMode::from_permissions(0o644),
        }
    }

    fn hashes<'a>(contents: &[&str], store: &'a mut Vec<Blake3Hash>) -> BTreeSet<&'a Blake3Hash> {
        store.extend(
            contents
                .iter()
                .map(|content| Blake3Hash::of(content.as_bytes())),
        );
        store.iter().collect()
    }

    #[test]
    fn kept_renamed_packed_and_ranged_files() {
        let old = FileIndex::new(vec![
            file("a", "same", 10),
            file("old-name", "moved", 10),
            file("gone", "x", 10),
            file("lib", "v1", 900),
        ]);
        let target = FileIndex::new(vec![
            file("a", "same", 10),
            file("new-name", "moved", 10),
            file("lib", "v2", 900),
            file("fresh", "brand new", 300),
        ]);
        let patch = PackData::Patch {
            base: Blake3Hash::of(b"v1"),
            algorithm: PatchAlgorithm::BsdiffZstd,
            offset: 0,
            length: 30,
        };
        let delta = ModuleDelta::between(Some(&old), &target, |entry| {
            (entry.path.as_str() == "lib").then(|| patch.clone())
        });
        let mut store = Vec::new();
        let available = hashes(&["same", "moved", "x", "v1"], &mut store);
        let plan = plan_module(&target, &available, Some(&delta), Some(&old), 100_000);
        let by_path: BTreeMap<&str, &FileSource<'_>> = plan
            .files
            .iter()
            .map(|step| (step.path.as_str(), &step.source))
            .collect();
        assert_eq!(by_path["a"], &FileSource::Keep);
        assert_eq!(
            by_path["new-name"],
            &FileSource::Keep,
            "a rename costs nothing"
        );
        assert_eq!(by_path["lib"], &FileSource::Pack(&patch));
        // The copy pack holds a, fresh, lib, moved (index order): fresh is at 10.
        assert_eq!(
            by_path["fresh"],
            &FileSource::Range(CopySlice {
                offset: 10,
                length: 300,
                size: 9
            })
        );
        assert_eq!(
            plan.ranges,
            [ByteRange {
                start: 10,
                end: 310
            }]
        );
        assert_eq!(plan.download_bytes, 300);
        assert!(!plan.use_package);
        let removed: Vec<&str> = plan.removed.iter().map(|path| path.as_str()).collect();
        assert_eq!(removed, ["gone", "old-name"]);
    }

    #[test]
    fn without_a_pack_every_missing_file_is_a_range() {
        let target = FileIndex::new(vec![file("a", "1", 50), file("b", "2", 60)]);
        let mut store = Vec::new();
        let available = hashes(&["1"], &mut store);
        let plan = plan_module(&target, &available, None, None, 100_000);
        assert_eq!(
            plan.ranges,
            [ByteRange {
                start: 50,
                end: 110
            }]
        );
        assert_eq!(plan.download_bytes, 60);
    }

    #[test]
    fn ranges_are_coalesced_into_a_few_requests() {
        let range = |start, end| ByteRange { start, end };
        // Touching, overlapping and near ranges merge; far ones do not.
        assert_eq!(
            coalesce([range(0, 10), range(10, 20), range(15, 30), range(100, 200)]),
            [range(0, 200)]
        );
        let far = REQUEST_COST * 10;
        assert_eq!(
            coalesce([range(far, far + 5), range(0, 5)]),
            [range(0, 5), range(far, far + 5)]
        );
        // Past the most requests, the closest neighbours merge first.
        let spread: Vec<ByteRange> = [0, 1, 2, 3, 4, 5, 7]
            .iter()
            .map(|n| range(n * far, n * far + 1))
            .collect();
        let merged = coalesce(spread);
        assert_eq!(merged.len(), MAX_RANGE_REQUESTS);
        assert_eq!(merged[0], range(0, 3 * far + 1));
        assert_eq!(merged.last().unwrap(), &range(7 * far, 7 * far + 1));
        assert!(coalesce([range(3, 3)]).is_empty());
    }

    #[test]
    fn many_scattered_files_lose_to_one_package() {
        let many: Vec<IndexEntry> = (0..100)
            .map(|n| file(&format!("f{n:03}"), &n.to_string(), 1000))
            .collect();
        let target = FileIndex::new(many);
        // 100 KB of copies against a 90 KB package.
        let plan = plan_module(&target, &BTreeSet::new(), None, None, 90_000);
        assert!(plan.use_package && plan.ranges.is_empty());
        assert_eq!(plan.download_bytes, 90_000);
        // One changed file of the same module is a single small range.
        let mut store = Vec::new();
        let contents: Vec<String> = (1..100).map(|n| n.to_string()).collect();
        let refs: Vec<&str> = contents.iter().map(String::as_str).collect();
        let available = hashes(&refs, &mut store);
        let plan = plan_module(&target, &available, None, None, 90_000);
        assert!(!plan.use_package);
        assert_eq!(plan.download_bytes, 1000);
    }

    #[test]
    fn an_unchanged_module_downloads_nothing() {
        let target = FileIndex::new(vec![file("a", "1", 600), file("b", "2", 600)]);
        let mut store = Vec::new();
        let available = hashes(&["1", "2"], &mut store);
        let plan = plan_module(&target, &available, None, Some(&target), 1000);
        assert_eq!(plan.download_bytes, 0);
        assert!(!plan.use_package && plan.removed.is_empty() && plan.ranges.is_empty());
        assert!(
            plan.files
                .iter()
                .all(|step| step.source == FileSource::Keep)
        );
    }
}
