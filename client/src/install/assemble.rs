//! Assembling the staging tree an [`UpdatePlan`] describes, from what is already on
//! disk, the delta pack and the copies the fetch stage put in the cache, and whole
//! packages only where they are cheaper or nothing else works. [`Builder::build`]
//! takes every file of the plan:
//!
//! - **keep**: the content is copied (never hard-linked: the old tree stays intact)
//!   from a local file;
//! - **patch**: the pack's patch is applied to a local file holding its base content;
//! - **copy**: the pack's zstd copy of the file is decompressed;
//! - **range**: the file's zstd copy, fetched from the module's copy pack (usually
//!   already in the cache), is decompressed;
//! - a module that takes its **package** is unpacked as before.
//!
//! Directories and symbolic links come from the index itself. Every file is written
//! through a [`VerifiedFile`], so it is kept only if it has the size and blake3 its
//! index gives. When a step fails the next one takes over: a patch that rebuilds the
//! wrong content, a copy that does not decompress to it, or a local file that changed
//! since it was installed → the file's copy from the copy pack; a missing or corrupt
//! copy → the module's package, unpacked over a clean slate. Errors of the local file
//! system stop the install instead. Either way the caller then checks the whole tree
//! against the indexes ([`crate::install::tree::check_tree`]) before using it.

use std::cell::Cell;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use wavecast_schema::{Blake3Hash, FileMode, ModuleName, PackData, PlatformRelease};
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
    /// The delta pack's payload and its blake3 (for messages), when the plan takes one.
    pack: Option<(&'a [u8], &'a Blake3Hash)>,
    reporter: &'a dyn Reporter,
    fallbacks: Cell<u32>,
}

impl<'a> Builder<'a> {
    /// A builder reading local content from `local`, the pack's files from `pack`
    /// (its payload and blake3), and downloads through `cache`.
    pub(crate) fn new(
        cache: &'a Cache<'a>,
        local: &'a LocalFiles,
        pack: Option<(&'a [u8], &'a Blake3Hash)>,
        reporter: &'a dyn Reporter,
    ) -> Self {
        Self {
            cache,
            local,
            pack,
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
            let format = module.package_format;
            let package = self.cache.package(name, &module.package, format)?;
            self.cache.check_cancel()?;
            self.reporter.on_unpack(name);
            for (path, blake3) in
                unpack_module(&package, format, name, module.unpacked_size, &into)?
            {
                written.record(join(&into, Some(&path)), blake3);
            }
        }
        dir_modes.sort_by_key(|(_, depth, _)| std::cmp::Reverse(*depth));
        for (path, _, mode) in dir_modes {
            crate::platform::set_mode(&path, mode.bits())
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
            self.cache.check_cancel()?;
            let target = join(into, Some(&file.path));
            if let Some(parent) = target.parent() {
                create_dir_all(parent)?;
            }
            self.write_file(plan, file, &target)?;
            made.push((target, Some(file.blake3.clone())));
        }
        for (path, link_target) in &plan.links {
            let target = join(into, Some(path));
            if let Some(parent) = target.parent() {
                create_dir_all(parent)?;
            }
            crate::platform::symlink(link_target.as_str(), &target).map_err(|source| {
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
        module: &ModuleUpdate,
        file: &FileUpdate,
        target: &Path,
    ) -> std::result::Result<(), Failure> {
        let reason = match (&file.action, &file.data) {
            (FileAction::Keep, _) => {
                if self.copy_local(file, target)? {
                    return Ok(());
                }
                Error::LocalContentChanged {
                    blake3: file.blake3.clone(),
                }
            }
            (FileAction::Patch { base, .. }, Some(data)) => {
                match self.apply_patch(file, base, data, target) {
                    Ok(true) => return Ok(()),
                    Ok(false) => Error::LocalContentChanged {
                        blake3: base.clone(),
                    },
                    Err(Failure::Remote(reason)) => reason,
                    Err(local) => return Err(local),
                }
            }
            (FileAction::Copy { .. }, Some(data)) => {
                match self.copy_from_pack(file, data, target) {
                    Ok(()) => return Ok(()),
                    Err(Failure::Remote(reason)) => reason,
                    Err(local) => return Err(local),
                }
            }
            _ => return self.copy_from_site(module, file, target),
        };
        self.fall_back(
            &module.name,
            &Fallback::FileCopy(file.path.clone()),
            &reason,
        );
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

    /// The bytes of `data` in the pack's payload, and the pack's URL for messages.
    fn pack_bytes(&self, data: &PackData) -> std::result::Result<(&'a [u8], String), Failure> {
        let Some((payload, blake3)) = self.pack else {
            unreachable!("a plan takes data from a pack only when it has one");
        };
        let url = self.cache.url(&layout::blob(blake3, BlobKind::Pack));
        // The header was checked to keep every span inside the payload.
        let bytes = data.bytes(payload).ok_or_else(|| {
            Failure::Remote(Error::PatchMismatch {
                url: url.clone(),
                source: None,
            })
        })?;
        Ok((bytes, url))
    }

    /// Applies the pack's patch `data` to a local file holding `base`. `false` when no
    /// local file does.
    fn apply_patch(
        &self,
        file: &FileUpdate,
        base: &Blake3Hash,
        data: &PackData,
        target: &Path,
    ) -> std::result::Result<bool, Failure> {
        let PackData::Patch { algorithm, .. } = data else {
            unreachable!("a patch action carries patch data");
        };
        let local = self.local.paths(base).iter().find_map(|candidate| {
            std::fs::read(candidate)
                .ok()
                .filter(|content| Blake3Hash::of(content) == *base)
        });
        let Some(local) = local else {
            return Ok(false);
        };
        let (bytes, url) = self.pack_bytes(data)?;
        let mut out = VerifiedFile::create(target, file.size)?;
        let applied = patch::apply(*algorithm, &local, bytes, file.size, &mut out);
        if out.finish(&file.blake3, file.mode)? {
            return Ok(true);
        }
        Err(Failure::Remote(Error::PatchMismatch {
            url,
            source: applied.err(),
        }))
    }

    /// Decompresses the pack's copy `data` of the file into `target`.
    fn copy_from_pack(
        &self,
        file: &FileUpdate,
        data: &PackData,
        target: &Path,
    ) -> std::result::Result<(), Failure> {
        let (bytes, url) = self.pack_bytes(data)?;
        let mut out = VerifiedFile::create(target, file.size)?;
        // A decoding error shows as wrong content.
        let _ = patch::decompress(bytes, &mut out);
        if out.finish(&file.blake3, file.mode)? {
            return Ok(());
        }
        Err(Failure::Remote(Error::CorruptFileCopy { url }))
    }

    /// Decompresses the file's copy from the module's copy pack (or the cache) into
    /// `target`.
    fn copy_from_site(
        &self,
        module: &ModuleUpdate,
        file: &FileUpdate,
        target: &Path,
    ) -> std::result::Result<(), Failure> {
        if file.size == 0 && file.blake3 == Blake3Hash::of(b"") {
            VerifiedFile::create(target, 0)?.finish(&file.blake3, file.mode)?;
            return Ok(());
        }
        let Some(copies) = &module.copies else {
            return Err(Failure::Remote(Error::NoFileCopy {
                path: file.path.clone(),
            }));
        };
        self.cache.file_copy(
            &module.name,
            &file.blake3,
            copies,
            &file.slice,
            &mut |copy| {
                let source = File::open(copy).map_err(|source| Error::Cache {
                    path: copy.to_owned(),
                    source,
                })?;
                let mut out = VerifiedFile::create(target, file.size)?;
                // A decoding error shows as wrong content.
                let _ = patch::decompress(source, &mut out);
                out.finish(&file.blake3, file.mode)
            },
        )?;
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
    use std::collections::{BTreeMap, HashMap};

    use jiff::Timestamp;
    use wavecast_schema::{
        FileIndex, ModuleDelta, PackHeader, PackageFormat, PatchAlgorithm, PlatformRelease,
        RelativePath,
    };

    use super::*;
    use crate::install::patch::tests::{edited, noise, zstd_patch};
    use crate::install::plan::PackageReason;
    use crate::install::reporter::{NoReporter, Phase, Progress, Tracker};
    use crate::install::test_site::{Published, Spec, TestSite};
    use crate::install::unpack::tests::{Raw, compress, package, tar};
    use crate::install::{InstallOutcome, InstallPlan, TreeReport, install_release, plan_install};
    use crate::net::limits::DownloadLimits;
    use crate::store::root::InstallRoot;
    use crate::store::state::State;

    /// An install root, and a site served by a map transport.
    struct Fixture {
        _dir: tempfile::TempDir,
        root: InstallRoot,
        site: TestSite,
        state: State,
        /// Every content published, by hash: the bases of packs.
        contents: HashMap<Blake3Hash, Vec<u8>>,
        /// The installs' cancel handle.
        cancel: crate::install::cancel::Cancel,
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

    fn file_copy_fallback(path: &str) -> (String, Fallback) {
        ("app".to_owned(), Fallback::FileCopy(path.parse().unwrap()))
    }

    /// A release as published: its document and its modules' indexes.
    struct Published2 {
        document: PlatformRelease,
        indexes: BTreeMap<String, FileIndex>,
    }

    impl Published2 {
        fn indexes(&self) -> BTreeMap<&str, &FileIndex> {
            self.indexes
                .iter()
                .map(|(name, index)| (name.as_str(), index))
                .collect()
        }
    }

    impl Fixture {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let root = InstallRoot::new(dir.path().join("root"));
            std::fs::create_dir_all(root.meta()).unwrap();
            Self {
                _dir: dir,
                root,
                site: TestSite::new(),
                state: State::generate().unwrap(),
                contents: HashMap::new(),
                cancel: crate::install::cancel::Cancel::new(),
            }
        }

        /// Publishes a tree module of `files` and `links`.
        fn module(
            &mut self,
            version: &str,
            files: &[Spec<'_>],
            links: &[(&str, &str)],
            dest: Option<&str>,
        ) -> Published {
            for (_, content, _) in files {
                self.contents
                    .insert(Blake3Hash::of(content), content.to_vec());
            }
            self.site.module(version, files, links, dest)
        }

        /// A release of `modules` (not served yet).
        fn release(&self, version: &str, modules: &[(&str, &Published)]) -> Published2 {
            Published2 {
                document: self.site.document(version, modules),
                indexes: modules
                    .iter()
                    .map(|(name, published)| ((*name).to_owned(), published.index.clone()))
                    .collect(),
            }
        }

        /// Adds the pack from `from` to `to`, patching with `algorithm`.
        fn pack(&self, from: &Published2, to: &mut Published2, algorithm: PatchAlgorithm) {
            let to_indexes: BTreeMap<String, FileIndex> = to.indexes.clone();
            let to_indexes: BTreeMap<&str, &FileIndex> = to_indexes
                .iter()
                .map(|(name, index)| (name.as_str(), index))
                .collect();
            self.site.pack(
                (&from.document, &from.indexes()),
                (&mut to.document, &to_indexes),
                &self.contents,
                algorithm,
            );
        }

        fn plan_for<'a>(
            &'a self,
            release: &'a PlatformRelease,
            reporter: &'a Tracker<'a>,
            packages_only: bool,
        ) -> InstallPlan<'a> {
            InstallPlan {
                transport: &self.site.transport,
                hosts: std::slice::from_ref(&self.site.base),
                root: &self.root,
                release,
                now: Timestamp::UNIX_EPOCH,
                reporter,
                packages_only,
                cancel: &self.cancel,
                stage_only: false,
                limits: DownloadLimits::default(),
            }
        }

        fn install(&mut self, release: &Published2, reporter: &dyn Reporter) -> TreeReport {
            let report = self.try_install(release, reporter).unwrap();
            assert_eq!(report.outcome, InstallOutcome::Installed);
            report
        }

        fn try_install(
            &mut self,
            release: &Published2,
            reporter: &dyn Reporter,
        ) -> Result<TreeReport> {
            let mut state = self.state.clone();
            let tracker = Tracker::new(reporter);
            let outcome = install_release(
                &self.plan_for(&release.document, &tracker, false),
                &mut state,
            );
            self.state = state;
            outcome
        }

        fn plan(&self, release: &Published2) -> UpdatePlan {
            plan_install(
                &self.plan_for(&release.document, &Tracker::new(&NoReporter), false),
                &self.state,
            )
            .unwrap()
        }

        /// The URLs requested since the last clear.
        fn requests(&self) -> Vec<String> {
            self.site
                .transport
                .requests()
                .into_iter()
                .map(|(url, _)| url)
                .collect()
        }

        fn url(&self, blake3: &Blake3Hash, kind: BlobKind) -> String {
            self.site.blob_url(blake3, kind)
        }

        fn current(&self, path: &str) -> PathBuf {
            crate::store::current::current_tree(&self.root).join(path)
        }

        fn read(&self, path: &str) -> Vec<u8> {
            std::fs::read(self.current(path)).unwrap()
        }

        #[track_caller]
        fn assert_mode(&self, path: &str, mode: u32) {
            crate::platform::assert_mode(&self.current(path), mode);
        }
    }

    const TOOL: &[u8] = b"#!/bin/sh\necho tool\n";

    /// 1.0.0 with `lib/big` = `big` (among other files) installed; returns the fixture,
    /// the release, and its directory.
    fn with_v1(big: &[u8]) -> (Fixture, Published2, String) {
        let mut fixture = Fixture::new();
        let v1 = fixture.module(
            "1.0.0",
            &[
                ("bin/tool", TOOL, 0o755),
                ("docs/old-name.txt", b"moved around", 0o644),
                ("lib/big", big, 0o644),
                ("share/gone", b"removed in 2.0.0", 0o644),
            ],
            &[],
            None,
        );
        let release = fixture.release("1.0.0", &[("app", &v1)]);
        let report = fixture.install(&release, &NoReporter);
        fixture.site.transport.clear_requests();
        (fixture, release, report.dir)
    }

    /// 2.0.0: the tool kept, a rename, `lib/big` edited, a fresh file, one removed;
    /// with a pack from `v1` patching by `algorithm`, when given.
    fn v2(
        fixture: &mut Fixture,
        v1: &Published2,
        big: &[u8],
        fresh: &[u8],
        algorithm: Option<PatchAlgorithm>,
    ) -> Published2 {
        let module = fixture.module(
            "2.0.0",
            &[
                ("bin/tool", TOOL, 0o755),
                ("docs/new-name.txt", b"moved around", 0o600),
                ("lib/big", &edited(big), 0o644),
                ("share/fresh", fresh, 0o644),
            ],
            &[],
            None,
        );
        let mut release = fixture.release("2.0.0", &[("app", &module)]);
        if let Some(algorithm) = algorithm {
            fixture.pack(v1, &mut release, algorithm);
        }
        release
    }

    fn assert_v2_tree(fixture: &Fixture, big: &[u8], fresh: &[u8]) {
        assert_eq!(fixture.read("bin/tool"), TOOL);
        fixture.assert_mode("bin/tool", 0o755);
        assert_eq!(fixture.read("docs/new-name.txt"), b"moved around");
        fixture.assert_mode("docs/new-name.txt", 0o600);
        assert_eq!(fixture.read("lib/big"), edited(big));
        assert_eq!(fixture.read("share/fresh"), fresh);
        assert!(!fixture.current("docs/old-name.txt").exists());
        assert!(!fixture.current("share/gone").exists());
    }

    fn pack_url(fixture: &Fixture, release: &Published2) -> String {
        fixture.url(&release.document.packs[0].blake3, BlobKind::Pack)
    }

    #[test]
    fn the_plan_keeps_renames_takes_edits_and_new_files_from_the_pack_and_lists_removals() {
        let big = noise(100_000, 1);
        let (mut fixture, v1, _) = with_v1(&big);
        let release = v2(
            &mut fixture,
            &v1,
            &big,
            b"brand new",
            Some(PatchAlgorithm::Zstd),
        );
        let plan = fixture.plan(&release);
        let pack = pack_url(&fixture, &release);
        assert!(
            fixture.requests().iter().all(|url| url == &pack),
            "a plan reads only the pack's header: {:?}",
            fixture.requests()
        );
        assert_eq!(
            plan.index_bytes, 0,
            "the new index is derived from the pack"
        );
        assert_eq!(plan.pack.as_ref().unwrap().from.to_string(), "1.0.0");
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
                ("share/fresh", "copy"),
            ])
        );
        let removed: Vec<&str> = module.removed.iter().map(RelativePath::as_str).collect();
        assert_eq!(removed, ["docs/old-name.txt", "share/gone"]);
        let carried: u64 = module.files.iter().map(FileUpdate::download_bytes).sum();
        assert_eq!(module.download_bytes, carried);
        assert_eq!(plan.download_bytes, release.document.packs[0].size);
        assert!(plan.download_bytes < plan.package_bytes / 10, "{plan:#?}");
    }

    #[test]
    fn an_update_from_a_recent_release_is_one_request_for_its_pack() {
        for algorithm in [
            PatchAlgorithm::Zstd,
            PatchAlgorithm::Bsdiff,
            PatchAlgorithm::BsdiffZstd,
        ] {
            let big = noise(200_000, 3);
            let (mut fixture, v1, _) = with_v1(&big);
            let release = v2(&mut fixture, &v1, &big, b"brand new", Some(algorithm));
            let recorder = Recorder::default();
            let report = fixture.install(&release, &recorder);
            assert_v2_tree(&fixture, &big, b"brand new");
            assert_eq!(recorder.fallbacks(), []);
            assert_eq!(
                fixture.requests(),
                [pack_url(&fixture, &release)],
                "{algorithm:?}"
            );
            assert_eq!(report.requests, 1);
            assert_eq!(report.index_bytes, 0);
            assert_eq!(report.downloaded_bytes, report.planned_bytes);
            assert_eq!(report.pack_from.as_ref().unwrap().to_string(), "1.0.0");
            assert_eq!(report.fallbacks, 0);
        }
    }

    #[test]
    fn without_a_pack_the_index_is_fetched_and_kept_files_are_copied() {
        let big = noise(100_000, 2);
        let (mut fixture, _, v1_dir) = with_v1(&big);
        let module = fixture.module(
            "2.0.0",
            &[
                ("bin/tool", TOOL, 0o755),
                ("docs/new-name.txt", b"moved around", 0o644),
                ("lib/renamed-big", &big, 0o644),
            ],
            &[],
            None,
        );
        let release = fixture.release("2.0.0", &[("app", &module)]);
        let report = fixture.install(&release, &NoReporter);
        assert_eq!(
            fixture.requests(),
            [fixture.url(&module.module.index.blake3, BlobKind::FileIndex)]
        );
        assert_eq!(report.planned_bytes, 0);
        assert_eq!(report.downloaded_bytes, report.index_bytes);
        assert_eq!(fixture.read("lib/renamed-big"), big);
        // Copies, not links: the old tree stays as it was.
        let old = fixture.root.releases().join(&v1_dir).join("lib/big");
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt as _;
            assert_eq!(std::fs::metadata(&old).unwrap().nlink(), 1);
            assert_ne!(
                std::fs::metadata(&old).unwrap().ino(),
                std::fs::metadata(fixture.current("lib/renamed-big"))
                    .unwrap()
                    .ino()
            );
        }
        std::fs::write(fixture.current("lib/renamed-big"), b"changed").unwrap();
        assert_eq!(std::fs::read(&old).unwrap(), big);
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
    fn without_a_pack_new_files_come_as_ranges_of_the_copy_pack_in_few_requests() {
        let big = noise(100_000, 16);
        let (mut fixture, v1, _) = with_v1(&big);
        let release = v2(&mut fixture, &v1, &big, &noise(30_000, 17), None);
        let report = fixture.install(&release, &NoReporter);
        assert_v2_tree(&fixture, &big, &noise(30_000, 17));
        let module = &release.document.modules["app"];
        let copies = fixture.url(&module.copies.as_ref().unwrap().blake3, BlobKind::Copies);
        let requests = fixture.requests();
        assert_eq!(
            requests[0],
            fixture.url(&module.index.blake3, BlobKind::FileIndex)
        );
        assert!(
            requests[1..].iter().all(|url| url == &copies),
            "{requests:?}"
        );
        assert_eq!(requests.len(), 2, "both new contents in one range");
        assert_eq!(report.requests, 2);
    }

    #[test]
    fn a_missing_or_corrupt_pack_is_set_aside_for_the_index_and_ranges() {
        for corrupt in [false, true] {
            let big = noise(100_000, 4);
            let (mut fixture, v1, _) = with_v1(&big);
            let release = v2(
                &mut fixture,
                &v1,
                &big,
                b"brand new",
                Some(PatchAlgorithm::Zstd),
            );
            let url = pack_url(&fixture, &release);
            if corrupt {
                let size = release.document.packs[0].size as usize;
                fixture.site.transport.insert(url.clone(), vec![0u8; size]);
            } else {
                fixture.site.transport.remove(&url);
            }
            let recorder = Recorder::default();
            let report = fixture.install(&release, &recorder);
            assert_v2_tree(&fixture, &big, b"brand new");
            assert_eq!(
                recorder.fallbacks(),
                [("app".to_owned(), Fallback::WithoutPack)],
                "corrupt: {corrupt}"
            );
            assert!(report.pack_from.is_none());
            let index = fixture.url(
                &release.document.modules["app"].index.blake3,
                BlobKind::FileIndex,
            );
            assert!(fixture.requests().contains(&index));
        }
    }

    #[test]
    fn a_pack_for_other_installed_files_is_set_aside() {
        let big = noise(100_000, 18);
        let (mut fixture, v1, _) = with_v1(&big);
        // A pack made from another 1.0.0 than the one installed.
        let other = fixture.module("1.0.0", &[("lib/big", &big, 0o644)], &[], None);
        let other = fixture.release("1.0.0", &[("app", &other)]);
        let mut release = v2(&mut fixture, &v1, &big, b"brand new", None);
        fixture.pack(&other, &mut release, PatchAlgorithm::Zstd);
        let recorder = Recorder::default();
        fixture.install(&release, &recorder);
        assert_v2_tree(&fixture, &big, b"brand new");
        assert_eq!(
            recorder.fallbacks(),
            [("app".to_owned(), Fallback::WithoutPack)]
        );
    }

    #[test]
    fn a_patch_that_builds_other_content_falls_back_to_the_file_copy() {
        let big = noise(100_000, 5);
        let (mut fixture, v1, _) = with_v1(&big);
        let new = edited(&big);
        let module = fixture.module("2.0.0", &[("lib/big", &new, 0o644)], &[], None);
        let mut release = fixture.release("2.0.0", &[("app", &module)]);
        // A genuine patch from `big`, but to other content than the index says.
        let wrong = zstd_patch(&big, &noise(100_000, 6));
        let mut header = PackHeader::new("1.0.0".parse().unwrap(), "2.0.0".parse().unwrap());
        header.modules.insert(
            "app".parse().unwrap(),
            ModuleDelta::between(Some(&v1.indexes["app"]), &module.index, |_| {
                Some(PackData::Patch {
                    base: Blake3Hash::of(&big),
                    algorithm: PatchAlgorithm::Zstd,
                    offset: 0,
                    length: wrong.len() as u64,
                })
            }),
        );
        let blob = fixture.site.put(BlobKind::Pack, header.encode(&wrong));
        release.document.packs.push(wavecast_schema::PackRef {
            from: "1.0.0".parse().unwrap(),
            size: blob.size,
            blake3: blob.blake3,
        });
        let recorder = Recorder::default();
        fixture.install(&release, &recorder);
        assert_eq!(fixture.read("lib/big"), new);
        assert_eq!(recorder.fallbacks(), [file_copy_fallback("lib/big")]);
        let copies = fixture.url(
            &module.module.copies.as_ref().unwrap().blake3,
            BlobKind::Copies,
        );
        assert!(fixture.requests().contains(&copies));
    }

    #[test]
    fn local_files_that_changed_since_their_install_fall_back_to_the_file_copy() {
        let big = noise(100_000, 7);
        let (mut fixture, v1, v1_dir) = with_v1(&big);
        let release = v2(
            &mut fixture,
            &v1,
            &big,
            b"brand new",
            Some(PatchAlgorithm::Zstd),
        );
        let tree = fixture.root.releases().join(&v1_dir);
        std::fs::write(tree.join("lib/big"), b"tampered base").unwrap();
        std::fs::write(tree.join("docs/old-name.txt"), b"tampered kept").unwrap();
        let recorder = Recorder::default();
        fixture.install(&release, &recorder);
        assert_v2_tree(&fixture, &big, b"brand new");
        assert_eq!(
            recorder.fallbacks(),
            [
                file_copy_fallback("docs/new-name.txt"),
                file_copy_fallback("lib/big")
            ]
        );
        assert_eq!(
            std::fs::read(tree.join("lib/big")).unwrap(),
            b"tampered base"
        );
    }

    #[test]
    fn a_missing_or_corrupt_copy_pack_falls_back_to_the_package() {
        for corrupt in [false, true] {
            let big = noise(100_000, 8);
            let (mut fixture, v1, _) = with_v1(&big);
            let fresh = noise(5000, 9);
            let release = v2(&mut fixture, &v1, &big, &fresh, None);
            let module = &release.document.modules["app"];
            let url = fixture.url(&module.copies.as_ref().unwrap().blake3, BlobKind::Copies);
            if corrupt {
                let size = module.copies.as_ref().unwrap().size as usize;
                fixture.site.transport.insert(url.clone(), vec![1u8; size]);
            } else {
                fixture.site.transport.remove(&url);
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
            let package = fixture.url(&module.package.blake3, BlobKind::of_package(module));
            assert_eq!(fixture.requests().last(), Some(&package));
            assert!(report.downloaded_bytes > report.planned_bytes);
        }
    }

    #[test]
    fn an_unchanged_module_downloads_nothing_and_directory_modes_apply_last() {
        let mut fixture = Fixture::new();
        let data = fixture.module(
            "1.0.0",
            &[("table.bin", &noise(50_000, 10), 0o644)],
            &[],
            Some("share/data"),
        );
        let one = fixture.module("1.0.0", &[("bin/app", b"one", 0o755)], &[], None);
        let two = fixture.module("2.0.0", &[("bin/app", b"two", 0o755)], &[], None);
        let v1 = fixture.release("1.0.0", &[("app", &one), ("data", &data)]);
        let mut v2 = fixture.release("2.0.0", &[("app", &two), ("data", &data)]);
        fixture.pack(&v1, &mut v2, PatchAlgorithm::Zstd);
        fixture.install(&v1, &NoReporter);
        fixture.site.transport.clear_requests();

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
        fixture.site.transport.clear_requests();
        fixture.install(&v2, &NoReporter);
        assert_eq!(fixture.requests(), [pack_url(&fixture, &v2)]);
        assert_eq!(fixture.read("bin/app"), b"two");
        assert_eq!(fixture.read("share/data/table.bin"), noise(50_000, 10));
        fixture.assert_mode("bin", 0o755);
    }

    #[test]
    fn a_module_without_a_copy_pack_takes_its_package() {
        let mut fixture = Fixture::new();
        let old = fixture.module(
            "1.0.0",
            &[("a", b"one", 0o644), ("b", b"same", 0o644)],
            &[],
            None,
        );
        let v1 = fixture.release("1.0.0", &[("app", &old)]);
        assert_eq!(
            fixture.plan(&v1).modules[0].package_reason,
            Some(PackageReason::FreshInstall),
            "with nothing installed, no index is fetched"
        );
        fixture.install(&v1, &NoReporter);
        let mut new = fixture.module(
            "2.0.0",
            &[("a", b"two", 0o644), ("b", b"same", 0o644)],
            &[],
            None,
        );
        new.module.copies = None;
        let package = fixture.url(
            &new.module.package.blake3,
            BlobKind::of_package(&new.module),
        );
        let v2 = fixture.release("2.0.0", &[("app", &new)]);
        assert_eq!(
            fixture.plan(&v2).modules[0].package_reason,
            Some(PackageReason::NoFileCopies)
        );
        fixture.site.transport.clear_requests();
        fixture.install(&v2, &NoReporter);
        assert_eq!(fixture.requests(), [package]);
        assert_eq!(fixture.read("a"), b"two");
    }

    #[test]
    fn a_fresh_install_reads_a_tar_zst_package_at_its_own_address() {
        let mut fixture = Fixture::new();
        let files: [(&str, &[u8], u32); 2] =
            [("bin/app", b"#!/bin/sh\n", 0o755), ("a", b"one", 0o644)];
        // No link: links are covered by the unpacker's tests, and Wine makes none.
        let mut module = fixture.module("1.0.0", &files, &[], None);
        let raws: Vec<Raw<'_>> = files
            .iter()
            .map(|(path, content, mode)| Raw(path, tar::EntryType::Regular, *mode, content))
            .collect();
        module.module.package = fixture.site.put(
            BlobKind::ZstdPackage,
            compress(&tar(&raws), PackageFormat::TarZst),
        );
        module.module.package_format = PackageFormat::TarZst;
        let package = fixture.url(&module.module.package.blake3, BlobKind::ZstdPackage);
        assert!(package.ends_with(".tar.zst"), "{package}");
        let release = fixture.release("1.0.0", &[("app", &module)]);
        fixture.install(&release, &NoReporter);
        assert!(fixture.requests().contains(&package));
        assert_eq!(fixture.read("bin/app"), b"#!/bin/sh\n");
        assert_eq!(fixture.read("a"), b"one");
    }

    #[test]
    fn an_install_records_its_modules_and_prunes_all_but_their_indexes() {
        let big = noise(100_000, 11);
        let (mut fixture, v1, v1_dir) = with_v1(&big);
        let release = v2(
            &mut fixture,
            &v1,
            &big,
            b"brand new",
            Some(PatchAlgorithm::Zstd),
        );
        let report = fixture.install(&release, &NoReporter);
        assert!(report.pruned_bytes > 0);
        assert_eq!(std::fs::read_dir(fixture.root.cache()).unwrap().count(), 0);
        let v1 = fixture.state.installed_in(&v1_dir).unwrap();
        let v2 = fixture.state.installed_in(&report.dir).unwrap();
        let mut expected: Vec<String> = [v1, v2]
            .iter()
            .map(|release| {
                release.modules["app"]
                    .index
                    .as_ref()
                    .unwrap()
                    .blake3
                    .to_string()
            })
            .collect();
        expected.sort();
        let mut indexes: Vec<String> = std::fs::read_dir(fixture.root.indexes())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        indexes.sort();
        assert_eq!(
            indexes, expected,
            "the derived index was kept as if fetched"
        );
    }

    #[test]
    fn releases_recorded_without_indexes_install_from_packages() {
        let big = noise(100_000, 12);
        let (mut fixture, v1, _) = with_v1(&big);
        for release in &mut fixture.state.installed {
            for module in release.modules.values_mut() {
                module.index = None;
            }
        }
        let release = v2(
            &mut fixture,
            &v1,
            &big,
            b"brand new",
            Some(PatchAlgorithm::Zstd),
        );
        let update = fixture.plan(&release);
        assert!(update.pack.is_none(), "nothing to apply a pack to");
        assert_eq!(
            update.modules[0].package_reason,
            Some(PackageReason::FreshInstall)
        );
        fixture.install(&release, &NoReporter);
        assert_v2_tree(&fixture, &big, b"brand new");
    }

    #[test]
    fn packages_only_takes_every_package_and_still_checks_the_tree_with_the_index() {
        let big = noise(100_000, 13);
        let (mut fixture, v1, _) = with_v1(&big);
        let release = v2(
            &mut fixture,
            &v1,
            &big,
            b"brand new",
            Some(PatchAlgorithm::Zstd),
        );
        let tracker = Tracker::new(&NoReporter);
        let plan = fixture.plan_for(&release.document, &tracker, true);
        let update = plan_install(&plan, &fixture.state).unwrap();
        assert_eq!(
            update.modules[0].package_reason,
            Some(PackageReason::Requested)
        );
        let module = &release.document.modules["app"];
        assert_eq!(update.index_bytes, module.index.size);
        let mut state = fixture.state.clone();
        install_release(&plan, &mut state).unwrap();
        fixture.state = state;
        assert_v2_tree(&fixture, &big, b"brand new");
        assert_eq!(
            fixture.requests(),
            [
                fixture.url(&module.index.blake3, BlobKind::FileIndex),
                fixture.url(&module.package.blake3, BlobKind::of_package(module))
            ],
            "the index once (the plan cached it), then the package; no pack"
        );
    }

    // Not on Windows: Wine 8's CreateSymbolicLinkW is a stub that makes no link.
    #[cfg(not(windows))]
    #[test]
    fn symbolic_links_are_added_removed_and_retargeted_by_the_pack_alone() {
        let big = noise(100_000, 14);
        let mut fixture = Fixture::new();
        let v1 = fixture.module(
            "1.0.0",
            &[("lib/libfoo.so.1", &big, 0o755)],
            &[
                ("lib/libfoo.so", "libfoo.so.1"),
                ("share/doc", "/usr/share/doc/app"),
                ("gone", "lib"),
            ],
            None,
        );
        let v1 = fixture.release("1.0.0", &[("app", &v1)]);
        fixture.install(&v1, &NoReporter);
        assert_eq!(
            std::fs::read(fixture.current("lib/libfoo.so")).unwrap(),
            big,
            "a relative link works in the installed tree"
        );
        fixture.site.transport.clear_requests();

        let v2 = fixture.module(
            "2.0.0",
            &[("lib/libfoo.so.1", &big, 0o755)],
            &[
                ("lib/libfoo.so", "libfoo.so.1"),
                ("share/doc", "/opt/app/doc"),
                ("bin/app", "../lib/libfoo.so.1"),
            ],
            None,
        );
        let mut v2 = fixture.release("2.0.0", &[("app", &v2)]);
        fixture.pack(&v1, &mut v2, PatchAlgorithm::Zstd);
        let report = fixture.install(&v2, &NoReporter);
        assert_eq!(fixture.requests(), [pack_url(&fixture, &v2)]);
        assert_eq!(report.planned_bytes, v2.document.packs[0].size);
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

    // Not on Windows: Wine 8's CreateSymbolicLinkW is a stub that makes no link.
    #[cfg(not(windows))]
    #[test]
    fn links_made_before_a_fallback_to_the_package_do_not_stop_it() {
        let mut fixture = Fixture::new();
        let v1 = fixture.module("1.0.0", &[("a", b"one", 0o644)], &[], None);
        let v1 = fixture.release("1.0.0", &[("app", &v1)]);
        fixture.install(&v1, &NoReporter);
        let fresh = noise(5000, 15);
        let v2 = fixture.module(
            "2.0.0",
            &[("a", b"one", 0o644), ("b", &fresh, 0o644)],
            &[("c", "a")],
            None,
        );
        fixture
            .site
            .transport
            .remove(&fixture.url(&v2.module.copies.as_ref().unwrap().blake3, BlobKind::Copies));
        let recorder = Recorder::default();
        let v2 = fixture.release("2.0.0", &[("app", &v2)]);
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
        let mut cases: Vec<(&[Raw<'_>], &str)> = vec![
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
            (&[], "`a` is missing"),
        ];
        // Windows keeps no modes to differ.
        if cfg!(unix) {
            cases.push((
                &[Raw("a", tar::EntryType::Regular, 0o600, b"one")],
                "`a` has mode 600, but the signed file list says 644",
            ));
        }
        for (entries, message) in cases {
            let mut fixture = Fixture::new();
            let mut module = fixture.module("1.0.0", &[("a", b"one", 0o644)], &[], None);
            // Room for what the package holds: the declared size is not the check.
            module.module.unpacked_size = 100;
            module.module.package = fixture.site.put(BlobKind::Package, package(entries));
            let release = fixture.release("1.0.0", &[("app", &module)]);
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

    /// Counts every report and triggers `cancel` at the `at`-th (from 0).
    struct CancelAt {
        at: usize,
        seen: std::cell::Cell<usize>,
        cancel: crate::install::cancel::Cancel,
    }

    impl CancelAt {
        fn new(at: usize, cancel: &crate::install::cancel::Cancel) -> Self {
            Self {
                at,
                seen: std::cell::Cell::new(0),
                cancel: cancel.clone(),
            }
        }

        fn tick(&self) {
            if self.seen.get() == self.at {
                self.cancel.cancel();
            }
            self.seen.set(self.seen.get() + 1);
        }
    }

    impl Reporter for CancelAt {
        fn on_module_plan(&self, _: &ModuleUpdate) {
            self.tick();
        }
        fn on_download_start(&self, _: &ModuleName, _: &str, _: u64) {
            self.tick();
        }
        fn on_download_progress(&self, _: &ModuleName, _: u64) {
            self.tick();
        }
        fn on_download_finish(&self, _: &ModuleName) {
            self.tick();
        }
        fn on_cache_hit(&self, _: &ModuleName, _: u64) {
            self.tick();
        }
        fn on_fallback(&self, _: &ModuleName, _: &Fallback, _: &Error) {
            self.tick();
        }
        fn on_unpack(&self, _: &ModuleName) {
            self.tick();
        }
        fn on_switch(&self, _: &semver::Version, _: &str) {
            self.tick();
        }
    }

    /// The entries of `releases/`, sorted (none when it does not exist).
    fn release_dirs(fixture: &Fixture) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(fixture.root.releases()) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// Cancels an install at each of its reports in turn: every cancel before the
    /// switch (the last report) ends in `Cancelled` with the installed release, its
    /// tree and `releases/` as they were and no journal; a cancel at the switch comes
    /// too late and the install completes. After a cancel, the install runs again
    /// to the end.
    #[test]
    fn an_install_cancelled_at_any_point_changes_nothing_and_runs_again() {
        let big = noise(300_000, 21);
        let fresh = noise(200_000, 22);
        // Through the pack, and without one (the index and the copy pack's ranges).
        for algorithm in [Some(PatchAlgorithm::Zstd), None] {
            let events = {
                let (mut fixture, v1, _) = with_v1(&big);
                let release = v2(&mut fixture, &v1, &big, &fresh, algorithm);
                let counter = CancelAt::new(usize::MAX, &fixture.cancel);
                fixture.install(&release, &counter);
                counter.seen.get()
            };
            assert!(events >= 4, "{algorithm:?}: {events} reports");
            for at in 0..events {
                let (mut fixture, v1, v1_dir) = with_v1(&big);
                let release = v2(&mut fixture, &v1, &big, &fresh, algorithm);
                let before = release_dirs(&fixture);
                let reporter = CancelAt::new(at, &fixture.cancel);
                match fixture.try_install(&release, &reporter) {
                    Err(Error::Cancelled) => {
                        assert!(at + 1 < events, "{algorithm:?}: cancelled at the switch");
                        let current =
                            crate::store::current::read_current(&fixture.root, &fixture.state);
                        assert_eq!(current.unwrap().unwrap().dir, v1_dir);
                        assert_eq!(fixture.read("lib/big"), big);
                        assert!(fixture.current("share/gone").exists());
                        assert_eq!(release_dirs(&fixture), before, "{algorithm:?} at {at}");
                        assert!(!fixture.root.journal().exists());
                        fixture.cancel = crate::install::cancel::Cancel::new();
                        fixture.install(&release, &NoReporter);
                        assert_v2_tree(&fixture, &big, &fresh);
                    }
                    Ok(report) => {
                        assert_eq!(at + 1, events, "{algorithm:?}: not cancelled at {at}");
                        assert_eq!(report.outcome, InstallOutcome::Installed);
                        assert_v2_tree(&fixture, &big, &fresh);
                    }
                    Err(error) => panic!("{algorithm:?} at {at}: {error}"),
                }
            }
        }
    }

    #[test]
    fn a_first_install_cancelled_from_another_thread_leaves_no_release() {
        let mut fixture = Fixture::new();
        let v1 = fixture.module(
            "1.0.0",
            &[("lib/big", &noise(300_000, 23), 0o644)],
            &[],
            None,
        );
        let release = fixture.release("1.0.0", &[("app", &v1)]);
        let handle = fixture.cancel.clone();
        std::thread::spawn(move || handle.cancel()).join().unwrap();
        let outcome = fixture.try_install(&release, &NoReporter);
        assert!(matches!(outcome, Err(Error::Cancelled)), "{outcome:?}");
        assert!(!fixture.root.current().exists());
        assert_eq!(release_dirs(&fixture), Vec::<String>::new());
        assert!(!fixture.root.journal().exists());
    }

    /// Records every [`Progress`].
    #[derive(Default)]
    struct Progresses(RefCell<Vec<Progress>>);

    impl Reporter for Progresses {
        fn on_progress(&self, progress: Progress) {
            self.0.borrow_mut().push(progress);
        }
    }

    /// Every way to 2.0.0 reports its phases in order, bytes done that only grow and
    /// never pass the total, and ends with everything planned done.
    #[test]
    fn progress_moves_through_the_phases_to_done_equal_to_the_planned_total() {
        let big = noise(300_000, 24);
        let fresh = noise(200_000, 25);
        for (algorithm, phases) in [
            (
                Some(PatchAlgorithm::Zstd),
                &[
                    Phase::Checking,
                    Phase::Downloading,
                    Phase::Assembling,
                    Phase::Switching,
                ][..],
            ),
            (
                None,
                &[
                    Phase::Checking,
                    Phase::Downloading,
                    Phase::Assembling,
                    Phase::Switching,
                ][..],
            ),
        ] {
            let (mut fixture, v1, _) = with_v1(&big);
            let release = v2(&mut fixture, &v1, &big, &fresh, algorithm);
            let recorder = Progresses::default();
            let report = fixture.install(&release, &recorder);
            let seen = recorder.0.into_inner();
            let mut told: Vec<Phase> = seen.iter().map(|progress| progress.phase).collect();
            told.dedup();
            assert_eq!(told, phases, "{algorithm:?}");
            for pair in seen.windows(2) {
                assert!(pair[1].done >= pair[0].done, "{algorithm:?}: {pair:?}");
            }
            assert!(seen.iter().all(|progress| progress.done <= progress.total));
            let last = seen.last().unwrap();
            assert!(report.planned_bytes > 0);
            assert_eq!(
                (last.done, last.total),
                (report.planned_bytes, report.planned_bytes),
                "{algorithm:?}"
            );
            let first_download = seen
                .iter()
                .find(|progress| progress.phase == Phase::Downloading)
                .unwrap();
            assert_eq!(first_download.done, 0, "{algorithm:?}");
            if algorithm.is_none() {
                assert_eq!(
                    first_download.total, report.planned_bytes,
                    "the total is known before the first byte"
                );
            }
        }
    }
}
