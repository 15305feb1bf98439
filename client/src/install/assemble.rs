//! Assembling the staging tree an [`UpdatePlan`] describes, from what is already on
//! disk plus patches and single-file copies from the site, and whole packages only
//! where they are cheaper or nothing else works. [`Builder::build`] takes every file
//! of the plan:
//!
//! - **keep**: the content is copied (never hard-linked: the old tree stays intact)
//!   from a local file;
//! - **patch**: the patch is fetched into the cache, its blake3 checked, and applied
//!   to a local file holding the patch's base content;
//! - **download**: the file's zstd copy is fetched and decompressed;
//! - a module that takes its **package** is unpacked as before.
//!
//! Directories and symbolic links come from the index itself. Every file is written
//! through a [`VerifiedFile`], so it is kept only if it has the size and blake3 its
//! index gives. When a step fails the next one takes over: a
//! missing or corrupt patch, a patch that rebuilds the wrong content, or a local file
//! that changed since it was installed → the file's copy; a missing or corrupt copy →
//! the module's package, unpacked over a clean slate. Errors of the local file system
//! stop the install instead. Either way the caller then checks the whole tree
//! against the indexes ([`crate::install::tree::check_tree`]) before using it.

use std::cell::Cell;
use std::fs::{File, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use wavecast_schema::{Blake3Hash, FileMode, ModuleName, Patch, PlatformRelease};
use wavecast_site::layout::{self, BlobKind};

use crate::install::error::{Error, Result};
use crate::install::fetch::Cache;
use crate::install::patch;
use crate::install::reporter::{Fallback, Reporter};
use crate::install::tree::WrittenFiles;
use crate::install::unpack::unpack_module;
use crate::install::verified::VerifiedFile;
use crate::store::root::create_dir_all;

use crate::install::plan::{FileAction, FileUpdate, LocalFiles, ModuleUpdate, UpdatePlan, join};

/// Why a step failed: the site could not provide what was needed (fall back), or the
/// local file system failed (stop).
#[derive(Debug)]
enum Failure {
    Remote(Error),
    Local(Error),
}

impl<E: Into<Error>> From<E> for Failure {
    fn from(error: E) -> Self {
        let error = error.into();
        if error.is_remote() {
            Self::Remote(error)
        } else {
            Self::Local(error)
        }
    }
}

/// Carries out an [`UpdatePlan`] in a staging tree.
pub(crate) struct Builder<'a> {
    cache: &'a Cache<'a>,
    local: &'a LocalFiles,
    reporter: &'a dyn Reporter,
    fallbacks: Cell<u32>,
}

impl<'a> Builder<'a> {
    /// A builder reading local content from `local` and downloads through `cache`.
    pub(crate) fn new(
        cache: &'a Cache<'a>,
        local: &'a LocalFiles,
        reporter: &'a dyn Reporter,
    ) -> Self {
        Self {
            cache,
            local,
            reporter,
            fallbacks: Cell::new(0),
        }
    }

    /// How many times a step failed and another took over.
    pub(crate) fn fallbacks(&self) -> u32 {
        self.fallbacks.get()
    }

    /// Builds every module of `release` as `plan` says into the empty directory
    /// `staging`, falling back as the module docs describe, then applies the
    /// directory modes, deepest first. Returns the files written, with their hashes.
    ///
    /// # Errors
    ///
    /// Local file-system errors, and the errors of the package path (download,
    /// verification, unpacking) when a module's package is needed.
    pub(crate) fn build(
        &self,
        plan: &UpdatePlan,
        release: &PlatformRelease,
        staging: &Path,
    ) -> Result<WrittenFiles> {
        let mut dir_modes: Vec<(PathBuf, usize, FileMode)> = Vec::new();
        let mut written = WrittenFiles::default();
        for (name, module) in &release.modules {
            let Some(module_plan) = plan.modules.iter().find(|planned| &planned.name == name)
            else {
                continue;
            };
            let into = join(staging, module.dest.as_ref());
            create_dir_all(&into)?;
            self.reporter.on_module_plan(module_plan);
            if !module_plan.use_package {
                let mut made = Vec::new();
                match self.build_module(module_plan, &into, &mut made) {
                    Ok(()) => {
                        dir_modes.extend(module_plan.dirs.iter().map(|(path, mode)| {
                            (join(&into, Some(path)), path.segments().count(), *mode)
                        }));
                        for (path, blake3) in made {
                            if let Some(blake3) = blake3 {
                                written.record(path, blake3);
                            }
                        }
                        continue;
                    }
                    Err(Failure::Local(error)) => return Err(error),
                    Err(Failure::Remote(reason)) => {
                        for (path, _) in made.iter().rev() {
                            std::fs::remove_file(path).map_err(|source| Error::Unpack {
                                path: path.clone(),
                                source,
                            })?;
                        }
                        self.fall_back(name, &Fallback::Package, &reason);
                    }
                }
            }
            let package = self.cache.package(name, &module.package)?;
            self.reporter.on_unpack(name);
            for (path, blake3) in unpack_module(&package, name, module.unpacked_size, &into)? {
                written.record(join(&into, Some(&path)), blake3);
            }
        }
        dir_modes.sort_by_key(|(_, depth, _)| std::cmp::Reverse(*depth));
        for (path, _, mode) in dir_modes {
            std::fs::set_permissions(&path, Permissions::from_mode(mode.bits()))
                .map_err(|source| Error::Unpack { path, source })?;
        }
        Ok(written)
    }

    fn fall_back(&self, module: &ModuleName, fallback: &Fallback, reason: &Error) {
        self.fallbacks.set(self.fallbacks.get() + 1);
        self.reporter.on_fallback(module, fallback, reason);
    }

    /// Writes the module's directories, files and symbolic links under `into`,
    /// recording in `made` each file (with its verified hash) and link (with none)
    /// it makes. The index has nothing inside a link or a file (see
    /// [`wavecast_schema::FileIndex::parse`]), so nothing here is written through a link.
    fn build_module(
        &self,
        plan: &ModuleUpdate,
        into: &Path,
        made: &mut Vec<(PathBuf, Option<Blake3Hash>)>,
    ) -> std::result::Result<(), Failure> {
        for (path, _) in &plan.dirs {
            create_dir_all(&join(into, Some(path)))?;
        }
        for file in &plan.files {
            let target = join(into, Some(&file.path));
            if let Some(parent) = target.parent() {
                create_dir_all(parent)?;
            }
            self.write_file(&plan.name, file, &target)?;
            made.push((target, Some(file.blake3.clone())));
        }
        for (path, link_target) in &plan.links {
            let target = join(into, Some(path));
            if let Some(parent) = target.parent() {
                create_dir_all(parent)?;
            }
            std::os::unix::fs::symlink(link_target.as_str(), &target).map_err(|source| {
                Error::Unpack {
                    path: target.clone(),
                    source,
                }
            })?;
            made.push((target, None));
        }
        Ok(())
    }

    /// Writes one file by its planned action, falling back to its compressed copy.
    fn write_file(
        &self,
        module: &ModuleName,
        file: &FileUpdate,
        target: &Path,
    ) -> std::result::Result<(), Failure> {
        let reason = match &file.action {
            FileAction::Keep => {
                if self.copy_local(file, target)? {
                    return Ok(());
                }
                Error::LocalContentChanged {
                    blake3: file.blake3.clone(),
                }
            }
            FileAction::Patch(patch) => match self.apply_patch(module, file, patch, target) {
                Ok(true) => return Ok(()),
                Ok(false) => Error::LocalContentChanged {
                    blake3: patch.from.clone(),
                },
                Err(Failure::Remote(reason)) => reason,
                Err(local) => return Err(local),
            },
            FileAction::Download => return self.copy_from_site(module, file, target),
        };
        self.fall_back(module, &Fallback::FileCopy(file.path.clone()), &reason);
        self.copy_from_site(module, file, target)
    }

    /// Copies the content from the first local file that still holds it. `false`
    /// when none does.
    fn copy_local(&self, file: &FileUpdate, target: &Path) -> Result<bool> {
        for candidate in self.local.paths(&file.blake3) {
            let Ok(mut source) = File::open(candidate) else {
                continue;
            };
            let mut out = VerifiedFile::create(target, file.size)?;
            // A read error shows as wrong content, and the next candidate is tried.
            let _ = pump(&mut source, &mut out);
            if out.finish(&file.blake3, file.mode)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Applies `patch` (fetched and verified only once a local file still holds its
    /// base content) to that base. `false` when no local file does.
    fn apply_patch(
        &self,
        module: &ModuleName,
        file: &FileUpdate,
        patch: &Patch,
        target: &Path,
    ) -> std::result::Result<bool, Failure> {
        let base = self.local.paths(&patch.from).iter().find_map(|candidate| {
            std::fs::read(candidate)
                .ok()
                .filter(|base| Blake3Hash::of(base) == patch.from)
        });
        let Some(base) = base else {
            return Ok(false);
        };
        let stored = self.cache.patch(module, patch.size, &patch.blake3)?;
        let bytes = std::fs::read(&stored).map_err(|source| Error::Cache {
            path: stored.clone(),
            source,
        })?;
        let mut out = VerifiedFile::create(target, file.size)?;
        let applied = patch::apply(patch.algorithm, &base, &bytes, file.size, &mut out);
        if out.finish(&file.blake3, file.mode)? {
            return Ok(true);
        }
        Err(Failure::Remote(Error::PatchMismatch {
            url: self
                .cache
                .url(&layout::blob(&patch.blake3, BlobKind::Patch)),
            source: applied.err(),
        }))
    }

    /// Decompresses the file's copy from the site (or the cache) into `target`.
    fn copy_from_site(
        &self,
        module: &ModuleName,
        file: &FileUpdate,
        target: &Path,
    ) -> std::result::Result<(), Failure> {
        if file.size == 0 && file.blake3 == Blake3Hash::of(b"") {
            VerifiedFile::create(target, 0)?.finish(&file.blake3, file.mode)?;
            return Ok(());
        }
        if file.packed_size == 0 {
            return Err(Failure::Remote(Error::NoFileCopy {
                path: file.path.clone(),
            }));
        }
        self.cache
            .file_copy(module, &file.blake3, file.packed_size, &mut |copy| {
                let source = File::open(copy).map_err(|source| Error::Cache {
                    path: copy.to_owned(),
                    source,
                })?;
                let mut out = VerifiedFile::create(target, file.size)?;
                // A decoding error shows as wrong content.
                let _ = patch::decompress(source, &mut out);
                out.finish(&file.blake3, file.mode)
            })?;
        Ok(())
    }
}

/// Copies `reader` into `out` with a large buffer (hashing works best on big
/// chunks).
fn pump(reader: &mut dyn Read, out: &mut dyn Write) -> io::Result<u64> {
    let mut buffer = vec![0u8; 256 * 1024];
    let mut total = 0;
    loop {
        let count = match reader.read(&mut buffer) {
            Ok(0) => return Ok(total),
            Ok(count) => count,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        out.write_all(&buffer[..count])?;
        total += count as u64;
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::io::Read as _;
    use std::os::unix::fs::MetadataExt;

    use jiff::Timestamp;
    use wavecast_schema::{
        BasisPoints, Blob, FORMAT_VERSION, IndexEntry, PatchAlgorithm, Release, RolloutPlan,
    };

    use std::collections::{BTreeMap, BTreeSet};

    use wavecast_schema::{EntryKind, FileIndex, Manifest, Module, Platform, RelativePath};

    use super::*;
    use crate::install::fetch::tests::MapTransport;
    use crate::install::patch::tests::{edited, noise, zstd_patch};
    use crate::install::plan::PackageReason;
    use crate::install::reporter::NoReporter;
    use crate::install::unpack::tests::{Raw, package};
    use crate::install::{InstallOutcome, InstallPlan, TreeReport, install_release, plan_install};
    use crate::net::limits::DownloadLimits;
    use crate::net::transport::Transport as _;
    use crate::net::url::BaseUrl;
    use crate::store::root::InstallRoot;
    use crate::store::state::State;

    /// A file of a module: path, content, mode.
    type Spec<'a> = (&'a str, &'a [u8], u32);

    /// An install root with a site served by a [`MapTransport`].
    struct Fixture {
        _dir: tempfile::TempDir,
        root: InstallRoot,
        transport: MapTransport,
        base: BaseUrl,
        state: State,
    }

    /// Records fallbacks.
    #[derive(Default)]
    struct Recorder {
        fallbacks: RefCell<Vec<(String, Fallback)>>,
    }

    impl Reporter for Recorder {
        fn on_fallback(&self, module: &ModuleName, fallback: &Fallback, _: &Error) {
            self.fallbacks
                .borrow_mut()
                .push((module.to_string(), fallback.clone()));
        }
    }

    impl Recorder {
        fn fallbacks(&self) -> Vec<(String, Fallback)> {
            self.fallbacks.borrow().clone()
        }
    }

    fn file_copy(path: &str) -> (String, Fallback) {
        ("app".to_owned(), Fallback::FileCopy(path.parse().unwrap()))
    }

    impl Fixture {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let root = InstallRoot::new(dir.path().join("root"));
            std::fs::create_dir_all(root.meta()).unwrap();
            Self {
                _dir: dir,
                root,
                transport: MapTransport::default(),
                base: BaseUrl::parse("https://example.com/site").unwrap(),
                state: State::generate().unwrap(),
            }
        }

        fn url(&self, path: &RelativePath) -> String {
            self.base.join(path)
        }

        fn put(&self, path: &RelativePath, bytes: Vec<u8>) -> Blob {
            let blob = Blob {
                path: path.clone(),
                size: bytes.len() as u64,
                blake3: Blake3Hash::of(&bytes),
            };
            self.transport.insert(self.url(path), bytes);
            blob
        }

        fn copy_url(&self, content: &[u8]) -> String {
            self.url(&layout::blob(&Blake3Hash::of(content), BlobKind::FileCopy))
        }

        /// Publishes a module of `files` (with their parent directories, mode 755)
        /// whose index lists `patches`; `copies` says whether the site has per-file
        /// copies (an older publisher has none).
        fn publish(
            &self,
            files: &[Spec<'_>],
            dest: Option<&str>,
            patches: Vec<(Patch, Vec<u8>)>,
            copies: bool,
        ) -> Module {
            self.publish_with_links(files, &[], dest, patches, copies)
        }

        /// [`Self::publish`], with symbolic links (path, target) too.
        fn publish_with_links(
            &self,
            files: &[Spec<'_>],
            links: &[(&str, &str)],
            dest: Option<&str>,
            patches: Vec<(Patch, Vec<u8>)>,
            copies: bool,
        ) -> Module {
            let mut entries = Vec::new();
            let mut raws = Vec::new();
            let mut dirs = BTreeSet::new();
            let paths = files
                .iter()
                .map(|(path, _, _)| path)
                .chain(links.iter().map(|(path, _)| path));
            for path in paths {
                let mut parent = Path::new(path).parent();
                while let Some(dir) = parent.filter(|dir| !dir.as_os_str().is_empty()) {
                    dirs.insert(dir.to_str().unwrap().to_owned());
                    parent = dir.parent();
                }
            }
            for (path, content, mode) in files {
                let packed_size = if copies {
                    let copy = crate::install::patch::tests::file_copy(content);
                    self.put(
                        &layout::blob(&Blake3Hash::of(content), BlobKind::FileCopy),
                        copy,
                    )
                    .size
                } else {
                    0
                };
                entries.push(IndexEntry {
                    path: path.parse().unwrap(),
                    kind: EntryKind::File {
                        size: content.len() as u64,
                        blake3: Blake3Hash::of(content),
                        packed_size,
                    },
                    mode: FileMode::from_permissions(*mode),
                });
            }
            let dir_names: Vec<String> = dirs.iter().map(|dir| format!("{dir}/")).collect();
            for (dir, name) in dirs.iter().zip(&dir_names) {
                entries.push(IndexEntry {
                    path: dir.parse().unwrap(),
                    kind: EntryKind::Dir,
                    mode: FileMode::from_permissions(0o755),
                });
                raws.push(Raw(name, tar::EntryType::Directory, 0o755, b""));
            }
            for (path, content, mode) in files {
                raws.push(Raw(path, tar::EntryType::Regular, *mode, content));
            }
            for (path, target) in links {
                entries.push(IndexEntry {
                    path: path.parse().unwrap(),
                    kind: EntryKind::Symlink {
                        target: target.parse().unwrap(),
                    },
                    mode: FileMode::from_permissions(0o777),
                });
                raws.push(Raw(path, tar::EntryType::Symlink, 0o777, target.as_bytes()));
            }
            let mut index = FileIndex::new(entries);
            for (patch, bytes) in patches {
                self.put(&layout::blob(&patch.blake3, BlobKind::Patch), bytes);
                index.patches.push(patch);
            }
            let index = index.to_json();
            let file_index = self.put(
                &layout::blob(&Blake3Hash::of(&index), BlobKind::FileIndex),
                index,
            );
            let bytes = package(&raws);
            let package = self.put(
                &layout::blob(&Blake3Hash::of(&bytes), BlobKind::Package),
                bytes,
            );
            Module {
                version: "1.0.0".parse().unwrap(),
                kind: wavecast_schema::ModuleKind::Tree,
                dest: dest.map(|dest| dest.parse().unwrap()),
                package,
                unpacked_size: files
                    .iter()
                    .map(|(_, content, _)| content.len() as u64)
                    .sum(),
                file_index,
            }
        }

        /// Publishes a module of `files` with a patch to each from each of `bases`
        /// that differs.
        fn module(&self, files: &[Spec<'_>], bases: &[&[u8]], algorithm: PatchAlgorithm) -> Module {
            let mut patches = Vec::new();
            for (_, content, _) in files {
                for base in bases.iter().filter(|base| *base != content) {
                    let bytes = wavecast_delta::make_patch(algorithm, base, content).unwrap();
                    patches.push((
                        Patch {
                            from: Blake3Hash::of(base),
                            to: Blake3Hash::of(content),
                            algorithm,
                            size: bytes.len() as u64,
                            blake3: Blake3Hash::of(&bytes),
                        },
                        bytes,
                    ));
                }
            }
            self.publish(files, None, patches, true)
        }

        fn release(&self, version: &str, modules: Vec<(&str, Module)>) -> Release {
            Release {
                version: version.parse().unwrap(),
                published_at: "2026-11-01T00:00:00Z".parse().unwrap(),
                notes: String::new(),
                platforms: BTreeMap::from([(
                    "any".parse().unwrap(),
                    PlatformRelease {
                        modules: modules
                            .into_iter()
                            .map(|(name, module)| (name.parse().unwrap(), module))
                            .collect(),
                    },
                )]),
                rollout: RolloutPlan::fixed(
                    "00112233445566778899aabbccddeeff".parse().unwrap(),
                    BasisPoints::new(10_000).unwrap(),
                ),
            }
        }

        fn manifest(release: &Release) -> Manifest {
            Manifest {
                format: FORMAT_VERSION,
                product: "demo".into(),
                channel: "stable".parse().unwrap(),
                serial: 1,
                published_at: "2026-11-01T00:00:00Z".parse().unwrap(),
                expires_at: "2026-12-01T00:00:00Z".parse().unwrap(),
                min_client_version: "0.1.0".parse().unwrap(),
                root_version: 1,
                download_hosts: Vec::new(),
                updater: BTreeMap::new(),
                releases: vec![release.clone()],
            }
        }

        fn install(&mut self, release: &Release, reporter: &dyn Reporter) -> TreeReport {
            let report = self.try_install(release, reporter).unwrap();
            assert_eq!(report.outcome, InstallOutcome::Installed);
            report
        }

        fn try_install(
            &mut self,
            release: &Release,
            reporter: &dyn Reporter,
        ) -> Result<TreeReport> {
            let manifest = Self::manifest(release);
            let platform: Platform = "any".parse().unwrap();
            let plan = InstallPlan {
                transport: &self.transport,
                hosts: std::slice::from_ref(&self.base),
                root: &self.root,
                platform: &platform,
                release,
                manifest: &manifest,
                now: Timestamp::UNIX_EPOCH,
                reporter,
                packages_only: false,
                limits: DownloadLimits::default(),
            };
            install_release(&plan, &mut self.state)
        }

        fn plan(&self, release: &Release) -> UpdatePlan {
            let manifest = Self::manifest(release);
            let platform: Platform = "any".parse().unwrap();
            let plan = InstallPlan {
                transport: &self.transport,
                hosts: std::slice::from_ref(&self.base),
                root: &self.root,
                platform: &platform,
                release,
                manifest: &manifest,
                now: Timestamp::UNIX_EPOCH,
                reporter: &NoReporter,
                packages_only: false,
                limits: DownloadLimits::default(),
            };
            plan_install(&plan, &self.state).unwrap()
        }

        /// The URLs requested since the last clear, file indexes aside.
        fn content_requests(&self) -> Vec<String> {
            self.transport
                .requests()
                .into_iter()
                .map(|(url, _)| url)
                .filter(|url| !url.ends_with(".json"))
                .collect()
        }

        fn current(&self, path: &str) -> PathBuf {
            self.root.current().join(path)
        }

        fn read(&self, path: &str) -> Vec<u8> {
            std::fs::read(self.current(path)).unwrap()
        }

        fn mode(&self, path: &str) -> u32 {
            std::fs::metadata(self.current(path))
                .unwrap()
                .permissions()
                .mode()
                & 0o7777
        }
    }

    const TOOL: &[u8] = b"#!/bin/sh\necho tool\n";

    /// 1.0.0 with `lib/big` = `big` (among other files) installed; returns the fixture
    /// and the release directory.
    fn with_v1(big: &[u8]) -> (Fixture, String) {
        let mut fixture = Fixture::new();
        let v1 = fixture.module(
            &[
                ("bin/tool", TOOL, 0o755),
                ("docs/old-name.txt", b"moved around", 0o644),
                ("lib/big", big, 0o644),
                ("share/gone", b"removed in 2.0.0", 0o644),
            ],
            &[],
            PatchAlgorithm::Zstd,
        );
        let release = fixture.release("1.0.0", vec![("app", v1)]);
        let report = fixture.install(&release, &NoReporter);
        fixture.transport.clear_requests();
        (fixture, report.dir)
    }

    /// 2.0.0: the tool kept, a rename, `lib/big` edited (with patches from `big` by
    /// `algorithm`), a fresh file, one removed.
    fn v2(fixture: &Fixture, big: &[u8], fresh: &[u8], algorithm: PatchAlgorithm) -> Release {
        let module = fixture.module(
            &[
                ("bin/tool", TOOL, 0o755),
                ("docs/new-name.txt", b"moved around", 0o600),
                ("lib/big", &edited(big), 0o644),
                ("share/fresh", fresh, 0o644),
            ],
            &[big],
            algorithm,
        );
        fixture.release("2.0.0", vec![("app", module)])
    }

    /// The bytes the site serves at `url`.
    fn served(fixture: &Fixture, url: &str) -> Vec<u8> {
        let mut bytes = Vec::new();
        fixture
            .transport
            .fetch(url)
            .unwrap()
            .read_to_end(&mut bytes)
            .unwrap();
        bytes
    }

    /// The URLs of the patches of `release` that produce `to`.
    fn patch_urls(fixture: &Fixture, release: &Release, to: &[u8]) -> Vec<String> {
        let module = &release.platforms["any"].modules["app"];
        let index =
            FileIndex::parse(&served(fixture, &fixture.url(&module.file_index.path))).unwrap();
        index
            .patches
            .iter()
            .filter(|patch| patch.to == Blake3Hash::of(to))
            .map(|patch| fixture.url(&layout::blob(&patch.blake3, BlobKind::Patch)))
            .collect()
    }

    fn assert_v2_tree(fixture: &Fixture, big: &[u8], fresh: &[u8]) {
        assert_eq!(fixture.read("bin/tool"), TOOL);
        assert_eq!(fixture.mode("bin/tool"), 0o755);
        assert_eq!(fixture.read("docs/new-name.txt"), b"moved around");
        assert_eq!(fixture.mode("docs/new-name.txt"), 0o600);
        assert_eq!(fixture.read("lib/big"), edited(big));
        assert_eq!(fixture.read("share/fresh"), fresh);
        assert!(!fixture.current("docs/old-name.txt").exists());
        assert!(!fixture.current("share/gone").exists());
    }

    #[test]
    fn the_plan_keeps_renames_patches_edits_downloads_new_files_and_lists_removals() {
        let big = noise(100_000, 1);
        let (fixture, _) = with_v1(&big);
        let release = v2(&fixture, &big, b"brand new", PatchAlgorithm::Zstd);
        let plan = fixture.plan(&release);
        assert!(
            fixture.content_requests().is_empty(),
            "a plan fetches only indexes"
        );
        assert!(plan.index_bytes > 0, "the new index was fetched");
        let module = &plan.modules[0];
        assert!(!module.use_package);
        let actions: BTreeMap<&str, &str> = module
            .files
            .iter()
            .map(|file| (file.path.as_str(), file.action.as_str()))
            .collect();
        assert_eq!(
            actions,
            BTreeMap::from([
                ("bin/tool", "keep"),
                ("docs/new-name.txt", "keep"),
                ("lib/big", "patch"),
                ("share/fresh", "download"),
            ])
        );
        let removed: Vec<&str> = module.removed.iter().map(RelativePath::as_str).collect();
        assert_eq!(removed, ["docs/old-name.txt", "share/gone"]);
        let expected: u64 = module.files.iter().map(FileUpdate::download_bytes).sum();
        assert_eq!(module.download_bytes, expected);
        assert_eq!(plan.download_bytes, expected);
        assert!(plan.download_bytes < plan.package_bytes / 10, "{plan:#?}");
    }

    #[test]
    fn kept_and_renamed_files_are_copied_and_nothing_is_downloaded() {
        let big = noise(100_000, 2);
        let (mut fixture, v1_dir) = with_v1(&big);
        let module = fixture.module(
            &[
                ("bin/tool", TOOL, 0o755),
                ("docs/new-name.txt", b"moved around", 0o644),
                ("lib/renamed-big", &big, 0o644),
            ],
            &[],
            PatchAlgorithm::Zstd,
        );
        let release = fixture.release("2.0.0", vec![("app", module)]);
        let report = fixture.install(&release, &NoReporter);
        assert_eq!(fixture.content_requests(), Vec::<String>::new());
        assert_eq!(report.planned_bytes, 0);
        assert_eq!(report.downloaded_bytes, report.index_bytes);
        assert_eq!(fixture.read("lib/renamed-big"), big);
        assert_eq!(fixture.read("docs/new-name.txt"), b"moved around");
        // Copies, not links: the old tree stays as it was.
        let old = fixture.root.releases().join(&v1_dir).join("lib/big");
        assert_eq!(std::fs::metadata(&old).unwrap().nlink(), 1);
        assert_ne!(
            std::fs::metadata(&old).unwrap().ino(),
            std::fs::metadata(fixture.current("lib/renamed-big"))
                .unwrap()
                .ino()
        );
        assert!(
            fixture
                .root
                .releases()
                .join(&v1_dir)
                .join("share/gone")
                .exists()
        );
    }

    #[test]
    fn edits_are_rebuilt_from_zstd_and_bsdiff_patches() {
        for algorithm in [PatchAlgorithm::Zstd, PatchAlgorithm::Bsdiff] {
            let big = noise(200_000, 3);
            let (mut fixture, _) = with_v1(&big);
            let release = v2(&fixture, &big, b"brand new", algorithm);
            let recorder = Recorder::default();
            let report = fixture.install(&release, &recorder);
            assert_v2_tree(&fixture, &big, b"brand new");
            assert_eq!(recorder.fallbacks(), []);
            let mut expected = patch_urls(&fixture, &release, &edited(&big));
            expected.push(fixture.copy_url(b"brand new"));
            assert_eq!(fixture.content_requests(), expected, "{algorithm:?}");
            assert_eq!(
                report.downloaded_bytes - report.index_bytes,
                report.planned_bytes
            );
            assert_eq!(report.fallbacks, 0);
        }
    }

    #[test]
    fn a_missing_or_corrupt_patch_falls_back_to_the_file_copy() {
        for corrupt in [false, true] {
            let big = noise(100_000, 4);
            let (mut fixture, _) = with_v1(&big);
            let release = v2(&fixture, &big, b"brand new", PatchAlgorithm::Zstd);
            for url in patch_urls(&fixture, &release, &edited(&big)) {
                if corrupt {
                    let size = served(&fixture, &url).len();
                    fixture.transport.insert(url, vec![0u8; size]);
                } else {
                    fixture.transport.remove(&url);
                }
            }
            let recorder = Recorder::default();
            let report = fixture.install(&release, &recorder);
            assert_v2_tree(&fixture, &big, b"brand new");
            assert_eq!(
                recorder.fallbacks(),
                [file_copy("lib/big")],
                "corrupt: {corrupt}"
            );
            assert!(
                fixture
                    .content_requests()
                    .contains(&fixture.copy_url(&edited(&big)))
            );
            assert_eq!(report.fallbacks, 1);
        }
    }

    #[test]
    fn a_patch_that_builds_other_content_falls_back_to_the_file_copy() {
        let big = noise(100_000, 5);
        let (mut fixture, _) = with_v1(&big);
        let new = edited(&big);
        // A genuine, correctly hashed patch from `big`, but to other content than the
        // index says.
        let bytes = zstd_patch(&big, &noise(100_000, 6));
        let patch = Patch {
            from: Blake3Hash::of(&big),
            to: Blake3Hash::of(&new),
            algorithm: PatchAlgorithm::Zstd,
            size: bytes.len() as u64,
            blake3: Blake3Hash::of(&bytes),
        };
        let module = fixture.publish(
            &[("lib/big", &new, 0o644)],
            None,
            vec![(patch, bytes)],
            true,
        );
        let release = fixture.release("2.0.0", vec![("app", module)]);
        let recorder = Recorder::default();
        fixture.install(&release, &recorder);
        assert_eq!(fixture.read("lib/big"), new);
        assert_eq!(recorder.fallbacks(), [file_copy("lib/big")]);
        assert!(fixture.content_requests().contains(&fixture.copy_url(&new)));
    }

    #[test]
    fn local_files_that_changed_since_their_install_fall_back_to_the_file_copy() {
        let big = noise(100_000, 7);
        let (mut fixture, v1_dir) = with_v1(&big);
        let release = v2(&fixture, &big, b"brand new", PatchAlgorithm::Zstd);
        let tree = fixture.root.releases().join(&v1_dir);
        std::fs::write(tree.join("lib/big"), b"tampered base").unwrap();
        std::fs::write(tree.join("docs/old-name.txt"), b"tampered kept").unwrap();
        let recorder = Recorder::default();
        fixture.install(&release, &recorder);
        assert_v2_tree(&fixture, &big, b"brand new");
        assert_eq!(
            recorder.fallbacks(),
            [file_copy("docs/new-name.txt"), file_copy("lib/big")]
        );
        assert!(
            !fixture
                .content_requests()
                .iter()
                .any(|url| url.ends_with(".patch")),
            "no local base, so the patch is not fetched"
        );
        assert_eq!(
            std::fs::read(tree.join("lib/big")).unwrap(),
            b"tampered base"
        );
    }

    #[test]
    fn a_missing_or_corrupt_file_copy_falls_back_to_the_package() {
        for corrupt in [false, true] {
            let big = noise(100_000, 8);
            let (mut fixture, _) = with_v1(&big);
            let fresh = noise(5000, 9);
            let release = v2(&fixture, &big, &fresh, PatchAlgorithm::Bsdiff);
            let url = fixture.copy_url(&fresh);
            if corrupt {
                let size = served(&fixture, &url).len();
                fixture.transport.insert(url.clone(), vec![1u8; size]);
            } else {
                fixture.transport.remove(&url);
            }
            let recorder = Recorder::default();
            let report = fixture.install(&release, &recorder);
            // The files already rebuilt were cleared before the package was unpacked.
            assert_v2_tree(&fixture, &big, &fresh);
            assert_eq!(
                recorder.fallbacks(),
                [("app".to_owned(), Fallback::Package)],
                "corrupt: {corrupt}"
            );
            let package = fixture.url(&release.platforms["any"].modules["app"].package.path);
            assert_eq!(fixture.content_requests().last(), Some(&package));
            assert!(report.downloaded_bytes > report.planned_bytes);
        }
    }

    #[test]
    fn an_unchanged_module_downloads_nothing_and_directory_modes_apply_last() {
        let mut fixture = Fixture::new();
        let data = fixture.publish(
            &[("table.bin", &noise(50_000, 10), 0o644)],
            Some("share/data"),
            Vec::new(),
            true,
        );
        let app = |content: &[u8]| {
            fixture.module(&[("bin/app", content, 0o755)], &[], PatchAlgorithm::Zstd)
        };
        let v1 = fixture.release("1.0.0", vec![("app", app(b"one")), ("data", data.clone())]);
        let v2 = fixture.release("2.0.0", vec![("app", app(b"two")), ("data", data)]);
        fixture.install(&v1, &NoReporter);
        fixture.transport.clear_requests();

        let plan = fixture.plan(&v2);
        let data_plan = plan
            .modules
            .iter()
            .find(|module| module.name.as_str() == "data")
            .unwrap();
        assert_eq!(data_plan.download_bytes, 0);
        assert!(
            data_plan
                .files
                .iter()
                .all(|file| file.action == FileAction::Keep)
        );
        fixture.install(&v2, &NoReporter);
        assert_eq!(fixture.content_requests(), [fixture.copy_url(b"two")]);
        assert_eq!(fixture.read("bin/app"), b"two");
        assert_eq!(fixture.read("share/data/table.bin"), noise(50_000, 10));
        assert_eq!(fixture.mode("bin"), 0o755);
    }

    #[test]
    fn an_index_without_file_copies_takes_the_package() {
        let mut fixture = Fixture::new();
        let old = fixture.publish(
            &[("a", b"one", 0o644), ("b", b"same", 0o644)],
            None,
            Vec::new(),
            false,
        );
        let v1 = fixture.release("1.0.0", vec![("app", old)]);
        let plan = fixture.plan(&v1);
        assert_eq!(
            plan.modules[0].package_reason,
            Some(PackageReason::FreshInstall),
            "with nothing installed, no index is fetched"
        );
        fixture.install(&v1, &NoReporter);
        let new = fixture.publish(
            &[("a", b"two", 0o644), ("b", b"same", 0o644)],
            None,
            Vec::new(),
            false,
        );
        let package = fixture.url(&new.package.path);
        let v2 = fixture.release("2.0.0", vec![("app", new)]);
        assert_eq!(
            fixture.plan(&v2).modules[0].package_reason,
            Some(PackageReason::NoFileCopies)
        );
        fixture.transport.clear_requests();
        fixture.install(&v2, &NoReporter);
        assert_eq!(fixture.content_requests(), [package]);
        assert_eq!(fixture.read("a"), b"two");
    }

    #[test]
    fn an_install_records_its_modules_and_prunes_all_but_their_indexes() {
        let big = noise(100_000, 11);
        let (mut fixture, v1_dir) = with_v1(&big);
        let release = v2(&fixture, &big, b"brand new", PatchAlgorithm::Zstd);
        let report = fixture.install(&release, &NoReporter);
        assert!(report.pruned_bytes > 0);
        assert_eq!(std::fs::read_dir(fixture.root.cache()).unwrap().count(), 0);
        let v1 = fixture.state.installed_in(&v1_dir).unwrap();
        let v2 = fixture.state.installed_in(&report.dir).unwrap();
        let mut expected: Vec<String> = [v1, v2]
            .iter()
            .map(|release| release.modules["app"].file_index.blake3.to_string())
            .collect();
        expected.sort();
        let mut indexes: Vec<String> = std::fs::read_dir(fixture.root.indexes())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        indexes.sort();
        assert_eq!(indexes, expected);
    }

    #[test]
    fn releases_recorded_without_modules_are_found_in_the_manifest() {
        let big = noise(100_000, 12);
        let (fixture, _) = with_v1(&big);
        let mut fixture = fixture;
        for release in &mut fixture.state.installed {
            release.modules.clear();
        }
        let v1 = {
            let module = fixture.module(
                &[
                    ("bin/tool", TOOL, 0o755),
                    ("docs/old-name.txt", b"moved around", 0o644),
                    ("lib/big", &big, 0o644),
                    ("share/gone", b"removed in 2.0.0", 0o644),
                ],
                &[],
                PatchAlgorithm::Zstd,
            );
            fixture.release("1.0.0", vec![("app", module)])
        };
        let v2 = v2(&fixture, &big, b"brand new", PatchAlgorithm::Zstd);
        let mut manifest = Fixture::manifest(&v2);
        manifest.releases.push(v1);
        let platform: Platform = "any".parse().unwrap();
        let plan = InstallPlan {
            transport: &fixture.transport,
            hosts: std::slice::from_ref(&fixture.base),
            root: &fixture.root,
            platform: &platform,
            release: &v2,
            manifest: &manifest,
            now: Timestamp::UNIX_EPOCH,
            reporter: &NoReporter,
            packages_only: false,
            limits: DownloadLimits::default(),
        };
        let update = plan_install(&plan, &fixture.state).unwrap();
        assert_eq!(update.modules[0].files[0].action, FileAction::Keep);
        install_release(&plan, &mut fixture.state).unwrap();
        assert_v2_tree(&fixture, &big, b"brand new");
        assert!(
            !fixture
                .content_requests()
                .iter()
                .any(|url| url.ends_with(".tar.gz"))
        );
    }

    #[test]
    fn packages_only_takes_every_package_and_still_checks_the_tree_with_the_index() {
        let big = noise(100_000, 13);
        let (mut fixture, _) = with_v1(&big);
        let release = v2(&fixture, &big, b"brand new", PatchAlgorithm::Zstd);
        let manifest = Fixture::manifest(&release);
        let platform: Platform = "any".parse().unwrap();
        let plan = InstallPlan {
            transport: &fixture.transport,
            hosts: std::slice::from_ref(&fixture.base),
            root: &fixture.root,
            platform: &platform,
            release: &release,
            manifest: &manifest,
            now: Timestamp::UNIX_EPOCH,
            reporter: &NoReporter,
            packages_only: true,
            limits: DownloadLimits::default(),
        };
        let update = plan_install(&plan, &fixture.state).unwrap();
        assert_eq!(
            update.modules[0].package_reason,
            Some(PackageReason::Requested)
        );
        let module = &release.platforms["any"].modules["app"];
        assert_eq!(update.index_bytes, module.file_index.size);
        install_release(&plan, &mut fixture.state).unwrap();
        assert_v2_tree(&fixture, &big, b"brand new");
        let requested: Vec<String> = fixture
            .transport
            .requests()
            .into_iter()
            .map(|(url, _)| url)
            .collect();
        assert_eq!(
            requested,
            [
                fixture.url(&module.file_index.path),
                fixture.url(&module.package.path)
            ],
            "the index once (the plan cached it), then the package"
        );
    }

    #[test]
    fn symbolic_links_are_added_removed_and_retargeted_differentially() {
        let big = noise(100_000, 14);
        let mut fixture = Fixture::new();
        let v1 = fixture.publish_with_links(
            &[("lib/libfoo.so.1", &big, 0o755)],
            &[
                ("lib/libfoo.so", "libfoo.so.1"),
                ("share/doc", "/usr/share/doc/app"),
                ("gone", "lib"),
            ],
            None,
            Vec::new(),
            true,
        );
        let v1 = fixture.release("1.0.0", vec![("app", v1)]);
        fixture.install(&v1, &NoReporter);
        assert_eq!(
            std::fs::read(fixture.current("lib/libfoo.so")).unwrap(),
            big,
            "a relative link works in the installed tree"
        );
        fixture.transport.clear_requests();

        let v2 = fixture.publish_with_links(
            &[("lib/libfoo.so.1", &big, 0o755)],
            &[
                ("lib/libfoo.so", "libfoo.so.1"),
                ("share/doc", "/opt/app/doc"),
                ("bin/app", "../lib/libfoo.so.1"),
            ],
            None,
            Vec::new(),
            true,
        );
        let v2 = fixture.release("2.0.0", vec![("app", v2)]);
        let report = fixture.install(&v2, &NoReporter);
        assert_eq!(fixture.content_requests(), Vec::<String>::new());
        assert_eq!(report.planned_bytes, 0);
        let target = |path: &str| {
            std::fs::read_link(fixture.current(path))
                .unwrap()
                .to_string_lossy()
                .into_owned()
        };
        assert_eq!(target("lib/libfoo.so"), "libfoo.so.1");
        assert_eq!(target("share/doc"), "/opt/app/doc");
        assert_eq!(target("bin/app"), "../lib/libfoo.so.1");
        assert!(std::fs::symlink_metadata(fixture.current("gone")).is_err());
    }

    #[test]
    fn links_made_before_a_fallback_to_the_package_do_not_stop_it() {
        let mut fixture = Fixture::new();
        let v1 = fixture.publish(&[("a", b"one", 0o644)], None, Vec::new(), true);
        let v1 = fixture.release("1.0.0", vec![("app", v1)]);
        fixture.install(&v1, &NoReporter);
        let fresh = noise(5000, 15);
        let v2 = fixture.publish_with_links(
            &[("a", b"one", 0o644), ("b", &fresh, 0o644)],
            &[("c", "a")],
            None,
            Vec::new(),
            true,
        );
        fixture.transport.remove(&fixture.copy_url(&fresh));
        let recorder = Recorder::default();
        let v2 = fixture.release("2.0.0", vec![("app", v2)]);
        fixture.install(&v2, &recorder);
        assert_eq!(
            recorder.fallbacks(),
            [("app".to_owned(), Fallback::Package)]
        );
        assert_eq!(fixture.read("b"), fresh);
        assert_eq!(
            std::fs::read_link(fixture.current("c")).unwrap(),
            Path::new("a")
        );
    }

    #[test]
    fn a_package_that_differs_from_its_index_is_refused_naming_the_file() {
        let cases: [(&[Raw<'_>], &str); 4] = [
            (
                &[
                    Raw("a", tar::EntryType::Regular, 0o644, b"one"),
                    Raw("extra", tar::EntryType::Regular, 0o644, b"x"),
                ],
                "`extra` is not in the signed file list",
            ),
            (
                &[Raw("a", tar::EntryType::Regular, 0o644, b"eno")],
                "`a` holds other bytes than the signed file list says",
            ),
            (
                &[Raw("a", tar::EntryType::Regular, 0o600, b"one")],
                "`a` has mode 600, but the signed file list says 644",
            ),
            (&[], "`a` is missing"),
        ];
        for (entries, message) in cases {
            let mut fixture = Fixture::new();
            let mut module = fixture.publish(&[("a", b"one", 0o644)], None, Vec::new(), true);
            // Room for what the package holds: the declared size is not the check.
            module.unpacked_size = 100;
            let bytes = package(entries);
            module.package = fixture.put(
                &layout::blob(&Blake3Hash::of(&bytes), BlobKind::Package),
                bytes,
            );
            let release = fixture.release("1.0.0", vec![("app", module)]);
            let error = fixture.try_install(&release, &NoReporter).unwrap_err();
            assert!(matches!(error, Error::TreeMismatch { .. }), "{error}");
            let chain = format!("{error}: {}", std::error::Error::source(&error).unwrap());
            assert!(chain.contains(message), "{chain}");
            assert!(std::fs::symlink_metadata(fixture.root.current()).is_err());
            let left: Vec<_> = std::fs::read_dir(fixture.root.releases())
                .unwrap()
                .collect();
            assert!(left.is_empty(), "the staging tree is removed: {left:?}");
        }
    }
}
