//! Differential update plans: how a client obtains each file of a module it is about
//! to install, from what it already has, at the fewest bytes downloaded.
//!
//! For every file of the target module, in order of preference:
//! 1. **keep**: the client already has this content somewhere (in any installed
//!    release, under any path), so it is copied locally: renames and moves are free;
//! 2. **patch**: a patch from content the client has, when smaller than the file's
//!    compressed copy (the smallest such patch wins);
//! 3. **download**: the file's standalone compressed copy.
//!
//! When the files to fetch would cost at least as much as the module's whole package,
//! the plan takes the package instead. Each request is charged [`REQUEST_COST`] bytes
//! in that comparison (headers, round trips), so a fresh install of thousands of small
//! files takes one package rather than thousands of requests for a few percent fewer
//! bytes, while an update that patches a handful of files never does. Every rebuilt file is verified by blake3 before
//! it is used, and the client falls back (patch → file → package) on any failure, so
//! the plan only decides what is cheapest, never what is correct.

use std::collections::{BTreeMap, BTreeSet};

use crate::file_index::{EntryKind, FileIndex, FileMode, Patch};
use crate::ids::{Blake3Hash, RelativePath};

/// What one request is charged, in bytes, when weighing individual files against the
/// whole package: about the cost of its headers and round trip on a typical link.
pub const REQUEST_COST: u64 = 16 * 1024;

/// How the client obtains one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileSource<'i> {
    /// The content is already on this machine.
    Keep,
    /// Rebuild the content by applying this patch to local content.
    Patch(&'i Patch),
    /// Download the standalone compressed copy of `packed_size` bytes.
    Download {
        /// Bytes to download.
        packed_size: u64,
    },
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

impl FileStep<'_> {
    /// Bytes this step downloads.
    pub fn download_bytes(&self) -> u64 {
        match &self.source {
            FileSource::Keep => 0,
            FileSource::Patch(patch) => patch.size,
            FileSource::Download { packed_size } => *packed_size,
        }
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
    /// Download the whole package instead of individual files: the files would cost at
    /// least as much.
    pub use_package: bool,
    /// Bytes to download: the package size when `use_package`, else the sum of the
    /// steps.
    pub download_bytes: u64,
}

/// Plans how to obtain the module described by `target`.
///
/// `available` holds the content hashes the client has on disk (from the file indexes
/// of its installed releases); `installed` is the index of the same module in the
/// current release, if any, used only to list removed paths; `package_size` is the
/// size of the module's full package.
pub fn plan_module<'i>(
    target: &'i FileIndex,
    available: &BTreeSet<&Blake3Hash>,
    installed: Option<&'i FileIndex>,
    package_size: u64,
) -> ModulePlan<'i> {
    let mut patches_to: BTreeMap<&Blake3Hash, &Patch> = BTreeMap::new();
    for patch in target
        .patches
        .iter()
        .filter(|patch| available.contains(&patch.from))
    {
        let best = patches_to.entry(&patch.to).or_insert(patch);
        if patch.size < best.size {
            *best = patch;
        }
    }
    let files: Vec<FileStep<'i>> = target
        .entries
        .iter()
        .filter_map(|entry| match &entry.kind {
            EntryKind::Dir | EntryKind::Symlink { .. } => None,
            EntryKind::File {
                size,
                blake3,
                packed_size,
            } => {
                let source = if available.contains(blake3) {
                    FileSource::Keep
                } else {
                    match patches_to.get(blake3) {
                        Some(patch) if patch.size < *packed_size => FileSource::Patch(patch),
                        _ => FileSource::Download {
                            packed_size: *packed_size,
                        },
                    }
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
    let file_bytes: u64 = files.iter().map(FileStep::download_bytes).sum();
    let requests = files
        .iter()
        .filter(|step| step.source != FileSource::Keep)
        .count() as u64;
    let use_package =
        requests > 0 && file_bytes + requests * REQUEST_COST >= package_size + REQUEST_COST;
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
        use_package,
        download_bytes: if use_package {
            package_size
        } else {
            file_bytes
        },
    }
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

    fn patch(from: &str, to: &str, algorithm: PatchAlgorithm, size: u64) -> Patch {
        Patch {
            from: Blake3Hash::of(from.as_bytes()),
            to: Blake3Hash::of(to.as_bytes()),
            algorithm,
            size,
            blake3: Blake3Hash::of(format!("{from}{to}{size}").as_bytes()),
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
    fn kept_renamed_patched_and_downloaded_files() {
        let old = FileIndex::new(vec![
            file("a", "same", 10),
            file("old-name", "moved", 10),
            file("gone", "x", 10),
            file("lib", "v1", 900),
        ]);
        let mut target = FileIndex::new(vec![
            file("a", "same", 10),
            file("new-name", "moved", 10),
            file("lib", "v2", 900),
            file("fresh", "brand new", 300),
        ]);
        target.patches = vec![
            patch("v1", "v2", PatchAlgorithm::Zstd, 40),
            patch("v1", "v2", PatchAlgorithm::Bsdiff, 30),
            patch("v0", "v2", PatchAlgorithm::Bsdiff, 5),
        ];
        let mut store = Vec::new();
        let available = hashes(&["same", "moved", "x", "v1"], &mut store);
        let plan = plan_module(&target, &available, Some(&old), 100_000);
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
        match by_path["lib"] {
            FileSource::Patch(patch) => {
                assert_eq!(
                    patch.algorithm,
                    PatchAlgorithm::Bsdiff,
                    "the smallest usable patch"
                );
                assert_eq!(patch.size, 30);
            }
            other => panic!("expected a patch, got {other:?}"),
        }
        assert_eq!(by_path["fresh"], &FileSource::Download { packed_size: 300 });
        assert_eq!(plan.download_bytes, 330);
        assert!(!plan.use_package);
        let removed: Vec<&str> = plan.removed.iter().map(|path| path.as_str()).collect();
        assert_eq!(removed, ["gone", "old-name"]);
    }

    #[test]
    fn a_patch_larger_than_the_file_is_not_used() {
        let mut target = FileIndex::new(vec![file("lib", "v2", 50)]);
        target.patches = vec![patch("v1", "v2", PatchAlgorithm::Zstd, 60)];
        let mut store = Vec::new();
        let available = hashes(&["v1"], &mut store);
        let plan = plan_module(&target, &available, None, 100_000);
        assert_eq!(
            plan.files[0].source,
            FileSource::Download { packed_size: 50 }
        );
    }

    #[test]
    fn many_small_requests_lose_to_one_package() {
        let many: Vec<IndexEntry> = (0..100)
            .map(|n| file(&format!("f{n}"), &n.to_string(), 1000))
            .collect();
        let target = FileIndex::new(many);
        // 100 KB of files against a 200 KB package: fewer bytes, but 100 requests.
        let plan = plan_module(&target, &BTreeSet::new(), None, 200_000);
        assert!(plan.use_package);
        // One changed file of the same module is a single small request.
        let mut store = Vec::new();
        let contents: Vec<String> = (1..100).map(|n| n.to_string()).collect();
        let refs: Vec<&str> = contents.iter().map(String::as_str).collect();
        let available = hashes(&refs, &mut store);
        let plan = plan_module(&target, &available, None, 200_000);
        assert!(!plan.use_package);
        assert_eq!(plan.download_bytes, 1000);
    }

    #[test]
    fn the_package_wins_when_files_cost_as_much() {
        let target = FileIndex::new(vec![file("a", "1", 600), file("b", "2", 600)]);
        let plan = plan_module(&target, &BTreeSet::new(), None, 1000);
        assert!(plan.use_package);
        assert_eq!(plan.download_bytes, 1000);
    }

    #[test]
    fn an_unchanged_module_downloads_nothing() {
        let target = FileIndex::new(vec![file("a", "1", 600), file("b", "2", 600)]);
        let mut store = Vec::new();
        let available = hashes(&["1", "2"], &mut store);
        let plan = plan_module(&target, &available, Some(&target), 1000);
        assert_eq!(plan.download_bytes, 0);
        assert!(!plan.use_package && plan.removed.is_empty());
        assert!(
            plan.files
                .iter()
                .all(|step| step.source == FileSource::Keep)
        );
    }
}
