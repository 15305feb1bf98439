//! The tree a release installs, from its signed file indexes, and checking a tree on
//! disk against it.
//!
//! Every install ends with [`check_tree`] on the staging tree before anything is
//! switched, whichever way the tree was built (whole packages, local copies,
//! patches, file copies, fallbacks between them): the tree that becomes `current`
//! is exactly the release's [`ExpectedTree`] (every file with its mode, size and
//! blake3, every directory with its mode, every symbolic link with its target, and
//! nothing else), or the install fails naming the first difference. A release tree
//! kept from before is switched back to only if it passes the same check.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};

use wavecast_schema::{
    Blake3Hash, ExpectedTree, FileIndex, Found, Mismatch, Module, ModuleName, PlatformRelease,
    TreeCheck, TreeMismatch,
};

use crate::install::download::hash_file;
use crate::install::error::{Error, Result};

/// The verified file indexes of a release's modules, and the tree they describe.
#[derive(Debug)]
pub(crate) struct ReleaseIndexes {
    indexes: BTreeMap<ModuleName, FileIndex>,
    tree: ExpectedTree,
}

impl ReleaseIndexes {
    /// The indexes of `release`'s modules, each got from `index_of` (the fetch stage
    /// passes the index cache), and the tree they make together.
    ///
    /// # Errors
    ///
    /// The errors of `index_of`, [`Error::ParseFileIndex`] naming the index's URL (from
    /// `url_of`), and [`Error::IndexExceedsModule`] for an index listing more than its
    /// module's declared `unpacked_size` (which bounds unpacking and the free-space
    /// check).
    pub(crate) fn assemble(
        release: &PlatformRelease,
        mut index_of: impl FnMut(&ModuleName, &Module) -> Result<FileIndex>,
        url_of: impl Fn(&Module) -> String,
    ) -> Result<Self> {
        let mut indexes = BTreeMap::new();
        let mut tree = ExpectedTree::new();
        for (name, module) in &release.modules {
            let index = index_of(name, module)?;
            let listed = index.total_size();
            if listed > module.unpacked_size {
                return Err(Error::IndexExceedsModule {
                    module: name.clone(),
                    listed,
                    declared: module.unpacked_size,
                });
            }
            tree.add_module(module.dest.as_ref(), &index)
                .map_err(|source| Error::ParseFileIndex {
                    url: url_of(module),
                    source,
                })?;
            indexes.insert(name.clone(), index);
        }
        Ok(Self { indexes, tree })
    }

    /// The index of `module`, which must be a module of the release.
    pub(crate) fn index(&self, module: &ModuleName) -> &FileIndex {
        &self.indexes[module]
    }

    /// The release's tree.
    pub(crate) fn tree(&self) -> &ExpectedTree {
        &self.tree
    }
}

/// The files an install wrote into its staging tree, with the blake3 of what it
/// wrote (it hashed the bytes on their way to the disk), so that [`check_tree`] does
/// not read them back.
#[derive(Debug, Default)]
pub(crate) struct WrittenFiles(HashMap<PathBuf, Blake3Hash>);

impl WrittenFiles {
    /// `path` now holds content hashing to `blake3`.
    pub(crate) fn record(&mut self, path: PathBuf, blake3: Blake3Hash) {
        self.0.insert(path, blake3);
    }
}

/// Checks that the tree at `dir` is exactly `tree`. Symbolic links are compared by
/// target and never followed. A file in `written` is taken at its recorded hash;
/// any other is read and hashed, once its kind, mode and size match.
///
/// # Errors
///
/// The outer error is a failure to read the tree ([`Error::Release`]); the inner
/// one is the first difference.
pub(crate) fn check_tree(
    dir: &Path,
    tree: &ExpectedTree,
    written: &WrittenFiles,
) -> Result<std::result::Result<(), TreeMismatch>> {
    let mut check = TreeCheck::new(tree);
    let walked = walk(dir, "", &mut check, written).map_err(|(path, source)| Error::Release {
        action: "check",
        path,
        source,
    })?;
    Ok(walked.and_then(|()| check.finish()))
}

/// Visits every entry under `dir` (at `prefix` in the tree). An I/O error comes with
/// the path it concerns.
fn walk(
    dir: &Path,
    prefix: &str,
    check: &mut TreeCheck<'_>,
    written: &WrittenFiles,
) -> std::result::Result<std::result::Result<(), TreeMismatch>, (PathBuf, io::Error)> {
    let with_path = |path: &Path| {
        let path = path.to_owned();
        move |error| (path, error)
    };
    let mut entries = std::fs::read_dir(dir)
        .map_err(with_path(dir))?
        .collect::<io::Result<Vec<_>>>()
        .map_err(with_path(dir))?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for entry in entries {
        let local = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let relative = if prefix.is_empty() {
            name.into_owned()
        } else {
            format!("{prefix}/{name}")
        };
        if entry.file_name().to_str().is_none() {
            // No signed path holds invalid UTF-8.
            return Ok(Err(TreeMismatch {
                path: relative,
                problem: Mismatch::NotListed,
            }));
        }
        let metadata = std::fs::symlink_metadata(&local).map_err(with_path(&local))?;
        let file_type = metadata.file_type();
        let mode = crate::platform::mode_of(&metadata);
        let target;
        let found = if file_type.is_dir() {
            Found::Dir { mode }
        } else if file_type.is_file() {
            Found::File {
                mode,
                size: metadata.len(),
            }
        } else if file_type.is_symlink() {
            target = std::fs::read_link(&local).map_err(with_path(&local))?;
            Found::Symlink {
                target: target.to_str().unwrap_or("\u{fffd}"),
            }
        } else {
            Found::Other {
                kind: "special file",
            }
        };
        let expected = match check.visit(&relative, &found) {
            Ok(expected) => expected,
            Err(mismatch) => return Ok(Err(mismatch)),
        };
        if let Some(expected) = expected {
            let found = match written.0.get(&local) {
                Some(recorded) => recorded.clone(),
                None => hash_file(&local).map_err(with_path(&local))?.1,
            };
            if &found != expected {
                return Ok(Err(TreeMismatch {
                    path: relative,
                    problem: Mismatch::Content {
                        expected: expected.clone(),
                        found,
                    },
                }));
            }
        }
        if file_type.is_dir()
            && let Err(mismatch) = walk(&local, &relative, check, written)?
        {
            return Ok(Err(mismatch));
        }
    }
    Ok(Ok(()))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use wavecast_schema::FileMode;

    use wavecast_schema::{Blob, EntryKind, IndexEntry, Module};

    use super::*;
    use crate::install::fetch::Cache;
    use crate::install::fetch::tests::MapTransport;
    use crate::install::reporter::NoReporter;
    use crate::net::limits::DownloadLimits;
    use crate::net::url::BaseUrl;
    use crate::store::root::InstallRoot;

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

    fn link_entry(path: &str, target: &str) -> IndexEntry {
        IndexEntry {
            path: path.parse().unwrap(),
            kind: EntryKind::Symlink {
                target: target.parse().unwrap(),
            },
            mode: FileMode::from_permissions(0o777),
        }
    }

    /// Whether the trees of these tests hold symbolic links: not on Windows, where
    /// Wine 8's CreateSymbolicLinkW is a stub that makes no link.
    const LINKS: bool = cfg!(not(windows));

    /// A two-module release (`app` at the root, `data` under `share/data`) served by
    /// a map transport, and a tree on disk that matches it (with links, see [`LINKS`]).
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
                    link_entry("bin/app-link", "app"),
                ],
            ),
            (
                "data",
                Some("share/data"),
                vec![
                    file_entry("table.txt", b"1 2 3", 0o644),
                    link_entry("system", "/usr/share/data"),
                ],
            ),
        ] {
            let entries = entries
                .into_iter()
                .filter(|entry| LINKS || !matches!(entry.kind, EntryKind::Symlink { .. }))
                .collect();
            let (bytes, index) = FileIndex::new(entries).encode();
            transport.insert(
                base.join(&wavecast_site::layout::blob(
                    &index.blake3,
                    wavecast_site::layout::BlobKind::FileIndex,
                )),
                bytes,
            );
            let module = Module {
                version: "1.0.0".parse().unwrap(),
                kind: wavecast_schema::ModuleKind::Tree,
                dest: dest.map(|dest: &str| dest.parse().unwrap()),
                package: Blob {
                    size: 1,
                    blake3: index.blake3.clone(),
                },
                unpacked_size: 100,
                package_format: wavecast_schema::PackageFormat::TarGz,
                index,
                copies: None,
            };
            modules.insert(name.parse().unwrap(), module);
        }
        let tree = dir.path().join("tree");
        let write = |path: &str, content: &[u8], mode: u32| {
            let path = tree.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, content).unwrap();
            crate::platform::set_mode(&path, mode).unwrap();
        };
        write("bin/app", b"run", 0o755);
        write("share/data/table.txt", b"1 2 3", 0o644);
        if LINKS {
            crate::platform::symlink("app", &tree.join("bin/app-link")).unwrap();
            crate::platform::symlink("/usr/share/data", &tree.join("share/data/system")).unwrap();
        }
        crate::platform::set_mode(&tree.join("bin"), 0o755).unwrap();
        let mut release = PlatformRelease::new("1.0.0".parse().unwrap(), "any".parse().unwrap());
        release.modules = modules;
        (dir, transport, base, release, tree)
    }

    fn fetch(
        dir: &Path,
        transport: &MapTransport,
        base: &BaseUrl,
        release: &PlatformRelease,
    ) -> Result<ReleaseIndexes> {
        let root = InstallRoot::new(dir.join("root"));
        let cache = Cache::open(
            &root,
            transport,
            std::slice::from_ref(base),
            &NoReporter,
            DownloadLimits::default(),
        )
        .unwrap();
        cache.release_indexes(release, &BTreeMap::new())
    }

    #[test]
    fn an_intact_tree_matches_and_any_change_is_named() {
        let (dir, transport, base, release, tree) = setup();
        let indexes = fetch(dir.path(), &transport, &base, &release).unwrap();
        let check = || {
            check_tree(&tree, indexes.tree(), &WrittenFiles::default())
                .unwrap()
                .map_err(|mismatch| mismatch.to_string())
        };
        check().unwrap();

        std::fs::write(tree.join("extra"), b"").unwrap();
        assert_eq!(
            check().unwrap_err(),
            "`extra` is not in the signed file list"
        );
        std::fs::remove_file(tree.join("extra")).unwrap();

        crate::platform::set_mode(&tree.join("bin/app"), 0o700).unwrap();
        let app = std::fs::metadata(tree.join("bin/app")).unwrap();
        if crate::platform::mode_of(&app).is_some() {
            assert!(check().unwrap_err().contains("has mode 700"));
        } else {
            // No modes kept, none to differ.
            check().unwrap();
        }
        crate::platform::set_mode(&tree.join("bin/app"), 0o755).unwrap();

        std::fs::write(tree.join("share/data/table.txt"), b"1 2 4").unwrap();
        assert!(check().unwrap_err().contains("holds other bytes"));
        std::fs::write(tree.join("share/data/table.txt"), b"1 2 3").unwrap();
        check().unwrap();

        if LINKS {
            crate::platform::remove_link(&tree.join("bin/app-link")).unwrap();
            crate::platform::symlink("/etc/passwd", &tree.join("bin/app-link")).unwrap();
            assert!(check().unwrap_err().contains("points to `/etc/passwd`"));
            crate::platform::remove_link(&tree.join("bin/app-link")).unwrap();
            assert_eq!(check().unwrap_err(), "`bin/app-link` is missing");
            std::fs::write(tree.join("bin/app-link"), b"app").unwrap();
            assert!(
                check()
                    .unwrap_err()
                    .contains("is a file, but the signed file list has a symbolic link")
            );
        }
    }

    #[test]
    fn recorded_hashes_are_trusted_and_others_are_read() {
        let (dir, transport, base, release, tree) = setup();
        let indexes = fetch(dir.path(), &transport, &base, &release).unwrap();
        let mut written = WrittenFiles::default();
        written.record(tree.join("bin/app"), Blake3Hash::of(b"something else"));
        let mismatch = check_tree(&tree, indexes.tree(), &written)
            .unwrap()
            .unwrap_err();
        assert_eq!(mismatch.path, "bin/app");
        written.record(tree.join("bin/app"), Blake3Hash::of(b"run"));
        check_tree(&tree, indexes.tree(), &written)
            .unwrap()
            .unwrap();
    }

    #[test]
    fn an_unavailable_or_oversized_index_is_an_error() {
        let (dir, _, base, release, _) = setup();
        let error = fetch(dir.path(), &MapTransport::default(), &base, &release).unwrap_err();
        assert!(matches!(error, Error::FetchBlob { .. }), "{error}");

        let (dir, transport, base, mut release, _) = setup();
        for module in release.modules.values_mut() {
            module.unpacked_size = 2;
        }
        let error = fetch(dir.path(), &transport, &base, &release).unwrap_err();
        assert!(matches!(error, Error::IndexExceedsModule { .. }), "{error}");
    }
}
