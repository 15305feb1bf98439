//! Reusing a release tree kept under `releases/`: when a client moves back to a
//! release it ran before (the newer one was yanked or capped), the old tree is
//! switched to again if it still matches the release's signed file indexes exactly,
//! without downloading or unpacking anything.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use wavecast_schema::{Blake3Hash, EntryKind, PlatformRelease};

use crate::cache::Cache;

/// What one path of a release tree must be.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Expected {
    /// A directory with these permission bits.
    Dir(u32),
    /// A directory a module's destination or an entry needs but no index lists, with
    /// whatever permissions unpacking gave it.
    ParentDir,
    /// A regular file with these permission bits, size and hash.
    File(u32, u64, Blake3Hash),
}

/// Whether the tree at `tree` is exactly what `release` unpacks to: every file and
/// directory of every module's file index with its permission bits, size and blake3,
/// and nothing else.
///
/// The file indexes come from the index cache, or are fetched into it. Any failure
/// to fetch an index or read the tree answers `false`: the caller then installs the
/// release afresh, which verifies everything again.
pub(crate) fn tree_matches(cache: &Cache<'_>, release: &PlatformRelease, tree: &Path) -> bool {
    let Some(expected) = expected_tree(cache, release) else {
        return false;
    };
    let mut seen = 0;
    matches_dir(tree, Path::new(""), &expected, &mut seen).unwrap_or(false)
        && seen == expected.len()
}

fn expected_tree(
    cache: &Cache<'_>,
    release: &PlatformRelease,
) -> Option<BTreeMap<PathBuf, Expected>> {
    let mut expected = BTreeMap::new();
    for (name, module) in &release.modules {
        let index = cache.index(name, &module.file_index).ok()?;
        let mut prefix = PathBuf::new();
        for segment in module.dest.iter().flat_map(|dest| dest.segments()) {
            prefix.push(segment);
            expected
                .entry(prefix.clone())
                .or_insert(Expected::ParentDir);
        }
        for entry in index.entries {
            let path = entry
                .path
                .segments()
                .fold(prefix.clone(), |path, segment| path.join(segment));
            // Unpacking creates the parents of an entry the archive does not list.
            for parent in path.ancestors().skip(1) {
                if parent.as_os_str().is_empty() {
                    break;
                }
                expected
                    .entry(parent.to_owned())
                    .or_insert(Expected::ParentDir);
            }
            let mode = entry.mode.bits();
            let value = match entry.kind {
                EntryKind::Dir => Expected::Dir(mode),
                EntryKind::File { size, blake3, .. } => Expected::File(mode, size, blake3),
            };
            expected.insert(path, value);
        }
    }
    Some(expected)
}

/// Walks `dir` (at `relative` in the tree), checking each entry against `expected`
/// and counting the ones seen.
fn matches_dir(
    dir: &Path,
    relative: &Path,
    expected: &BTreeMap<PathBuf, Expected>,
    seen: &mut usize,
) -> io::Result<bool> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let relative = relative.join(entry.file_name());
        let Some(want) = expected.get(&relative) else {
            return Ok(false);
        };
        *seen += 1;
        let metadata = std::fs::symlink_metadata(&path)?;
        let mode = metadata.permissions().mode() & 0o7777;
        let matches = match want {
            Expected::Dir(want_mode) => metadata.is_dir() && mode == *want_mode,
            Expected::ParentDir => metadata.is_dir(),
            Expected::File(want_mode, size, blake3) => {
                metadata.is_file()
                    && mode == *want_mode
                    && metadata.len() == *size
                    && hash_file(&path)? == *blake3
            }
        };
        if !matches || (metadata.is_dir() && !matches_dir(&path, &relative, expected, seen)?) {
            return Ok(false);
        }
    }
    Ok(true)
}

fn hash_file(path: &Path) -> io::Result<Blake3Hash> {
    let mut hasher = blake3::Hasher::new();
    io::copy(&mut File::open(path)?, &mut hasher)?;
    Ok(Blake3Hash::from(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::os::unix::fs::PermissionsExt;

    use wavecast_schema::{Blob, FileIndex, FileMode, IndexEntry, Module};

    use super::*;
    use crate::cache::tests::MapTransport;
    use crate::limits::DownloadLimits;
    use crate::reporter::NoReporter;
    use crate::root::InstallRoot;
    use crate::url::BaseUrl;

    fn file_entry(path: &str, content: &[u8], mode: u32) -> IndexEntry {
        IndexEntry {
            path: path.parse().unwrap(),
            kind: EntryKind::File {
                size: content.len() as u64,
                blake3: Blake3Hash::of(content),
                packed_size: 0,
            },
            mode: FileMode::from_permissions(mode),
        }
    }

    fn dir_entry(path: &str, mode: u32) -> IndexEntry {
        IndexEntry {
            path: path.parse().unwrap(),
            kind: EntryKind::Dir,
            mode: FileMode::from_permissions(mode),
        }
    }

    /// A two-module release (`app` at the root, `data` under `share/data`) served by
    /// a map transport, and a tree on disk that matches it.
    fn setup() -> (
        tempfile::TempDir,
        MapTransport,
        BaseUrl,
        PlatformRelease,
        PathBuf,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let base = BaseUrl::parse("https://example.com/site").unwrap();
        let transport = MapTransport::default();
        let mut modules = BTreeMap::new();
        for (name, dest, entries) in [
            (
                "app",
                None,
                vec![
                    dir_entry("bin", 0o755),
                    file_entry("bin/app", b"run", 0o755),
                ],
            ),
            (
                "data",
                Some("share/data"),
                vec![file_entry("table.txt", b"1 2 3", 0o644)],
            ),
        ] {
            let index = serde_json::to_vec(&FileIndex::new(entries)).unwrap();
            let blake3 = Blake3Hash::of(&index);
            let file_index = Blob {
                path: format!("blobs/{blake3}.json").parse().unwrap(),
                size: index.len() as u64,
                blake3: blake3.clone(),
            };
            transport.insert(base.join(&file_index.path), index);
            let module = Module {
                version: "1.0.0".parse().unwrap(),
                kind: wavecast_schema::ModuleKind::Tree,
                dest: dest.map(|dest: &str| dest.parse().unwrap()),
                package: file_index.clone(),
                unpacked_size: 0,
                file_index,
            };
            modules.insert(name.parse().unwrap(), module);
        }
        let tree = dir.path().join("tree");
        let write = |path: &str, content: &[u8], mode: u32| {
            let path = tree.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, content).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        };
        write("bin/app", b"run", 0o755);
        write("share/data/table.txt", b"1 2 3", 0o644);
        std::fs::set_permissions(tree.join("bin"), std::fs::Permissions::from_mode(0o755)).unwrap();
        (dir, transport, base, PlatformRelease { modules }, tree)
    }

    #[test]
    fn an_intact_tree_matches_and_any_change_does_not() {
        let (dir, transport, base, release, tree) = setup();
        let root = InstallRoot::new(dir.path().join("root"));
        let cache = Cache::open(
            &root,
            &transport,
            std::slice::from_ref(&base),
            &NoReporter,
            DownloadLimits::default(),
        )
        .unwrap();
        assert!(tree_matches(&cache, &release, &tree));

        std::fs::write(tree.join("extra"), b"").unwrap();
        assert!(!tree_matches(&cache, &release, &tree));
        std::fs::remove_file(tree.join("extra")).unwrap();

        std::fs::set_permissions(tree.join("bin/app"), std::fs::Permissions::from_mode(0o700))
            .unwrap();
        assert!(!tree_matches(&cache, &release, &tree));
        std::fs::set_permissions(tree.join("bin/app"), std::fs::Permissions::from_mode(0o755))
            .unwrap();

        std::fs::write(tree.join("share/data/table.txt"), b"1 2 4").unwrap();
        assert!(!tree_matches(&cache, &release, &tree));
        std::fs::write(tree.join("share/data/table.txt"), b"1 2 3").unwrap();
        assert!(tree_matches(&cache, &release, &tree));

        std::fs::remove_file(tree.join("bin/app")).unwrap();
        assert!(!tree_matches(&cache, &release, &tree));
    }

    #[test]
    fn an_unavailable_index_means_no_reuse() {
        let (dir, _, base, release, tree) = setup();
        let empty = MapTransport::default();
        let root = InstallRoot::new(dir.path().join("root"));
        let cache = Cache::open(
            &root,
            &empty,
            std::slice::from_ref(&base),
            &NoReporter,
            DownloadLimits::default(),
        )
        .unwrap();
        assert!(!tree_matches(&cache, &release, &tree));
    }
}
