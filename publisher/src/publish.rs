//! Adding a release to a channel: package, upload blobs, then sign and write the
//! manifest last, so readers see the old release or the new one, complete.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use semver::Version;
use wavecast_schema::{
    Blake3Hash, Blob, ChannelName, EntryKind, FileIndex, Manifest, Module, ModuleKind, ModuleName,
    Platform, PlatformRelease, RelativePath, Release,
};
use wavecast_site::Storage;
use wavecast_site::layout::{self, BlobKind};

use crate::channel::{current_manifest, successor, validate_and_write};
use crate::client_floor::set_client_floor;
use crate::delta::{self, CandidateWork, DeltaPlan, DeltaStats};
use crate::error::{Error, Result};
use crate::keys::Signers;
use crate::package::{
    self, BuiltModule, BuiltPackage, ContentSink, CopyStats, FileCopies, ModuleSpec, PackReporter,
};
use crate::pages::{self, PAGES_FILE_LIMIT};
use crate::pool::{self, WorkQueue};
use crate::rollout_plan::{RolloutChange, random_salt};
use crate::trust;

/// Everything `publish` needs to know besides the site and the key.
#[derive(Debug, Clone)]
pub struct PublishOptions {
    /// The folder holding the release tree.
    pub release_dir: PathBuf,
    /// The release's version.
    pub version: Version,
    /// The channel to publish to.
    pub channel: ChannelName,
    /// The platform the release is for (`any` when it runs everywhere).
    pub platform: Platform,
    /// How the release folder splits into modules (tree modules and at most one
    /// image module); with none, the whole folder is the tree module `app`.
    pub modules: Vec<ModuleSpec>,
    /// The release's rollout: share or ramp, rules, cap. Unset parts take the
    /// defaults of a new plan (100 %, no rules, no cap).
    pub rollout: RolloutChange,
    /// Release notes.
    pub notes: String,
    /// The product name; kept from the existing manifest when `None`.
    pub product: Option<String>,
    /// The signed download hosts (normalised with
    /// [`wavecast_schema::normalize_download_host`]), tried by clients in order
    /// before the host that served the manifest; kept from the existing manifest
    /// when `None`.
    pub download_hosts: Option<Vec<String>>,
    /// A new `min_client_version` for the channel (see [`set_client_floor`]); kept
    /// from the existing manifest when `None`.
    pub min_client_version: Option<Version>,
    /// Replace the release when the version is already published.
    pub force: bool,
    /// How long the signed manifest stays valid.
    pub expires_in: SignedDuration,
    /// gzip level, 0 to 9.
    pub compression_level: u32,
    /// zstd level of the per-file copies, 1 to 19 (see
    /// [`wavecast_delta::DEFAULT_COPY_LEVEL`]).
    pub copy_level: i32,
    /// How many earlier releases (lower versions on the channel, newest first) to build
    /// binary patches from; 0 builds none.
    pub patch_depth: usize,
    /// The current time (injectable for tests).
    pub now: Timestamp,
}

/// What a publish did.
#[derive(Debug)]
pub struct PublishReport {
    /// The new manifest, as signed.
    pub manifest: Manifest,
    /// Per module: name, files, unpacked size, package size, whether it was uploaded
    /// (false when the site already had the identical package), patches.
    pub modules: Vec<ModuleSummary>,
    /// The file copies compressed and uploaded, over all modules.
    pub copies: CopyStats,
    /// Time spent packaging (modules are packaged in parallel, and file copies are
    /// compressed meanwhile).
    pub packaging_time: Duration,
    /// Wall time from the first patch job queued to the last one finished (patches are
    /// built in parallel, alongside the remaining file copies).
    pub patch_time: Duration,
    /// Wall time of packaging, file copies and patches together.
    pub work_time: Duration,
    /// Wall time of the whole publish.
    pub total_time: Duration,
    /// Files of this release over [`PAGES_FILE_LIMIT`] (packages, patches), which
    /// GitHub Pages refuses.
    pub oversized: Vec<(RelativePath, u64)>,
}

/// One module of a [`PublishReport`].
#[derive(Debug)]
pub struct ModuleSummary {
    /// The module's name.
    pub name: String,
    /// Whether it is a tree or an image.
    pub kind: ModuleKind,
    /// Number of regular files.
    pub files: usize,
    /// Number of symbolic links.
    pub links: usize,
    /// Symbolic links whose target leaves the release tree, with their targets (see
    /// [`BuiltModule::outside_links`]).
    pub outside_links: Vec<(RelativePath, wavecast_schema::LinkTarget)>,
    /// Hard-linked files, each packaged as a file of its own (see
    /// [`BuiltModule::hard_links`]).
    pub hard_links: Vec<RelativePath>,
    /// Total size of the files.
    pub unpacked_size: u64,
    /// Size of the package: the tar.gz of a tree, the zstd copy of an image.
    pub package_size: u64,
    /// Whether the package was uploaded, or the site already had it.
    pub uploaded: bool,
    /// Whether an earlier release has this exact module, whose version and file index
    /// (with its patches) are reused.
    pub index_reused: bool,
    /// The patches built for files that changed since the earlier releases.
    pub delta: DeltaStats,
    /// Patches uploaded (the others were on the site already).
    pub patches_uploaded: usize,
}

/// Publishes a release folder to a channel, keeping earlier releases live.
pub fn publish(
    storage: &dyn Storage,
    signers: &Signers,
    options: &PublishOptions,
    reporter: &dyn PackReporter,
) -> Result<PublishReport> {
    let started = Instant::now();
    let existing = current_manifest(storage, signers, &options.channel)?;
    // Refuse keys that cannot sign before spending minutes on packages.
    trust::check_release_signers(storage, signers)?;
    // Publishing a version again for a platform it lacks adds that platform; publishing
    // it again for a platform it has replaces the platform's modules, with --force only.
    if let (Some(floor), Some(manifest)) = (&options.min_client_version, &existing) {
        // Refuse a floor the offered builds would not reach before packaging anything.
        set_client_floor(&mut manifest.clone(), floor)?;
    }
    let replaced = existing
        .as_ref()
        .and_then(|manifest| manifest.release(&options.version));
    if replaced.is_some_and(|release| release.platforms.contains_key(&options.platform))
        && !options.force
    {
        return Err(Error::VersionExists {
            version: options.version.clone(),
            channel: options.channel.clone(),
        });
    }
    let modules = if options.modules.is_empty() {
        vec![ModuleSpec::whole_folder()]
    } else {
        options.modules.clone()
    };
    package::check_layout(&options.release_dir, &modules)?;

    // Indexes of the same modules in the releases before this one, to patch from.
    let earlier = earlier_indexes(storage, existing.as_ref(), options, &modules)?;

    let temp_dir = std::env::temp_dir();
    let patch_finished = Mutex::new(None::<Instant>);
    let copies = FileCopies::new(storage, options.copy_level);
    let queue = WorkQueue::new(QUEUE_BUDGET);
    let sink = CopySink {
        copies: &copies,
        queue: &queue,
    };
    let work_started = Instant::now();
    let (built, packaging_time, patch_started) = std::thread::scope(|scope| {
        for _ in 0..pool::workers() {
            scope.spawn(|| queue.work());
        }
        let packaged = package_modules(options, &modules, &temp_dir, reporter, &sink);
        let packaging_time = work_started.elapsed();
        let patch_started = Instant::now();
        let built = packaged.map(|built| {
            built
                .into_iter()
                .map(|module| {
                    let reused = reusable_index(storage, existing.as_ref(), options, &module);
                    let plan = match (&reused, earlier.get(&module.name)) {
                        (None, Some(earlier)) => delta::plan(&module.index, &module.root, earlier),
                        _ => DeltaPlan::default(),
                    };
                    let work: Vec<Arc<CandidateWork>> = plan
                        .candidates
                        .iter()
                        .map(|candidate| Arc::new(CandidateWork::new(candidate.clone())))
                        .collect();
                    for item in &work {
                        for algorithm in wavecast_delta::ALGORITHMS {
                            let (item, finished) = (Arc::clone(item), &patch_finished);
                            queue.submit(item.weight(), move || {
                                item.run(algorithm, storage);
                                let mut finished =
                                    finished.lock().unwrap_or_else(PoisonError::into_inner);
                                *finished = Some(Instant::now());
                            });
                        }
                    }
                    (module, reused, plan, work)
                })
                .collect::<Vec<_>>()
        });
        if built.is_err() {
            queue.abandon();
        }
        queue.close();
        (built, packaging_time, patch_started)
    });
    let built = built?;
    if let Some(error) = copies.take_error() {
        return Err(error);
    }
    let patch_time = patch_finished
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .map_or(Duration::ZERO, |finished| finished - patch_started);
    let packed_sizes = copies.packed_sizes();

    // Blobs first: nothing refers to them until the manifest is written.
    let mut summaries = Vec::with_capacity(built.len());
    let mut platform_modules = BTreeMap::new();
    let mut oversized = Vec::new();
    for (mut module, reused, plan, work) in built {
        package::fill_packed_sizes(&mut module.index, &packed_sizes);
        let work = work
            .into_iter()
            .map(|item| Arc::try_unwrap(item).expect("every patch job has finished"))
            .collect();
        let (patches, delta) = delta::choose(&plan, work, &packed_sizes)?;
        let mut patches_uploaded = 0;
        for built in &patches {
            note_oversized(
                &mut oversized,
                layout::blob(&built.patch.blake3, BlobKind::Patch),
                built.bytes.len() as u64,
            );
            let path = layout::blob(&built.patch.blake3, BlobKind::Patch);
            if upload_bytes(storage, &path, &built.bytes)? {
                patches_uploaded += 1;
            }
        }
        module.index.patches = patches.into_iter().map(|built| built.patch).collect();
        let package = match &module.package {
            BuiltPackage::Tar { file, size, blake3 } => {
                upload_package(storage, file, *size, blake3)?
            }
            BuiltPackage::Image { content } => copies.copy_blob(content)?,
        };
        note_oversized(&mut oversized, package.0.path.clone(), package.0.size);
        let (version, index) = match reused {
            Some((version, index)) => (version, index),
            None => {
                let index_bytes = module.index.to_json();
                (
                    options.version.clone(),
                    upload_index(storage, &index_bytes)?,
                )
            }
        };
        summaries.push(ModuleSummary {
            name: module.name.to_string(),
            kind: module.kind(),
            files: module.files,
            links: module.links,
            outside_links: std::mem::take(&mut module.outside_links),
            hard_links: std::mem::take(&mut module.hard_links),
            unpacked_size: module.unpacked_size,
            package_size: package.0.size,
            uploaded: package.1,
            index_reused: version != options.version,
            delta,
            patches_uploaded,
        });
        platform_modules.insert(
            module.name.clone(),
            Module {
                version,
                kind: module.kind(),
                dest: module.dest.clone(),
                package: package.0,
                unpacked_size: module.unpacked_size,
                file_index: index,
            },
        );
    }
    let copy_stats = copies.stats();
    let work_time = work_started.elapsed();

    let mut platforms = replaced
        .map(|release| release.platforms.clone())
        .unwrap_or_default();
    platforms.insert(
        options.platform.clone(),
        PlatformRelease {
            modules: platform_modules,
        },
    );
    let notes = match replaced {
        Some(release) if options.notes.is_empty() => release.notes.clone(),
        _ => options.notes.clone(),
    };
    let release = Release {
        version: options.version.clone(),
        published_at: replaced.map_or(options.now, |release| release.published_at),
        notes,
        platforms,
        // A replaced release keeps its salt, so clients keep their buckets.
        rollout: options.rollout.new_plan(
            replaced.map_or_else(random_salt, |release| Ok(release.rollout.salt.clone()))?,
            options.now,
        ),
    };
    let mut manifest = successor(
        existing,
        &options.channel,
        options.product.clone(),
        options.now,
        options.expires_in,
    );
    if let Some(hosts) = &options.download_hosts {
        manifest.download_hosts.clone_from(hosts);
    }
    if let Some(floor) = &options.min_client_version {
        set_client_floor(&mut manifest, floor)?;
    }
    manifest
        .releases
        .retain(|release| release.version != options.version);
    manifest.releases.push(release);
    validate_and_write(storage, signers, &mut manifest)?;
    pages::write_nojekyll(storage)?;
    Ok(PublishReport {
        manifest,
        modules: summaries,
        copies: copy_stats,
        packaging_time,
        patch_time,
        work_time,
        total_time: started.elapsed(),
        oversized,
    })
}

/// Records a file GitHub Pages would refuse (the CLI warns about each).
fn note_oversized(oversized: &mut Vec<(RelativePath, u64)>, path: RelativePath, size: u64) {
    if size > PAGES_FILE_LIMIT {
        oversized.push((path, size));
    }
}

/// Jobs queued on the work queue may hold this many bytes of file content at once.
const QUEUE_BUDGET: u64 = 512 << 20;

/// Hands each packaged file to [`FileCopies`], whose jobs run on the work queue.
struct CopySink<'a, 'q> {
    copies: &'q FileCopies<'q>,
    queue: &'a WorkQueue<'q>,
}

impl ContentSink for CopySink<'_, '_> {
    fn file(&self, path: &RelativePath, hash: &Blake3Hash, content: Vec<u8>) {
        self.copies.submit(self.queue, path, hash, content);
    }
}

/// Packages every module on its own thread, handing file contents to `sink`.
fn package_modules(
    options: &PublishOptions,
    modules: &[ModuleSpec],
    temp_dir: &Path,
    reporter: &dyn PackReporter,
    sink: &dyn ContentSink,
) -> Result<Vec<BuiltModule>> {
    std::thread::scope(|scope| {
        let workers: Vec<_> = modules
            .iter()
            .map(|spec| {
                scope.spawn(move || match spec.kind {
                    ModuleKind::Tree => package::build_module(
                        &options.release_dir,
                        spec,
                        options.compression_level,
                        temp_dir,
                        reporter,
                        sink,
                    ),
                    ModuleKind::Image => {
                        package::build_image(&options.release_dir, spec, reporter, sink)
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| worker.join().expect("packaging threads do not panic"))
            .collect()
    })
}

/// The file indexes of each module in the `options.patch_depth` releases before the
/// one being published (lower versions, newest first, on the same channel and for the
/// same platform, or `any`), to build patches from. An index that is missing or
/// unreadable is skipped: it only costs patches.
fn earlier_indexes(
    storage: &dyn Storage,
    existing: Option<&Manifest>,
    options: &PublishOptions,
    modules: &[ModuleSpec],
) -> Result<HashMap<ModuleName, Vec<FileIndex>>> {
    let mut earlier: HashMap<ModuleName, Vec<FileIndex>> = HashMap::new();
    let Some(manifest) = existing else {
        return Ok(earlier);
    };
    let mut releases: Vec<&Release> = manifest
        .releases
        .iter()
        .filter(|release| release.version < options.version)
        .collect();
    releases.sort_by(|a, b| b.version.cmp(&a.version));
    for release in releases.into_iter().take(options.patch_depth) {
        let Some(platform) = release.for_platform(&options.platform) else {
            continue;
        };
        for spec in modules {
            let Some(module) = platform.modules.get(&spec.name) else {
                continue;
            };
            let indexes = earlier.entry(spec.name.clone()).or_default();
            if let Some(index) = read_index(storage, &module.file_index)?
                && !indexes.contains(&index)
            {
                indexes.push(index);
            }
        }
    }
    Ok(earlier)
}

/// The file index `blob`, or `None` when it is missing, altered or unreadable.
fn read_index(storage: &dyn Storage, blob: &Blob) -> Result<Option<FileIndex>> {
    let Some(bytes) = storage.get(&blob.path)? else {
        return Ok(None);
    };
    if bytes.len() as u64 != blob.size || Blake3Hash::of(&bytes) != blob.blake3 {
        return Ok(None);
    }
    Ok(FileIndex::parse(&bytes).ok())
}

/// The version and file index of the same module in an earlier release when its
/// package is byte-identical (same content: "same module version" means "same
/// content"; for an image, the same image content), and its index lists file copies
/// (indexes from before file copies are not reused). The index is reused as is, with
/// its patches.
fn reusable_index(
    storage: &dyn Storage,
    existing: Option<&Manifest>,
    options: &PublishOptions,
    module: &BuiltModule,
) -> Option<(Version, Blob)> {
    let earlier = existing?
        .releases
        .iter()
        .filter(|release| release.version != options.version)
        .filter_map(|release| {
            release
                .platforms
                .get(&options.platform)?
                .modules
                .get(&module.name)
        })
        .find(|earlier| match &module.package {
            BuiltPackage::Tar { blake3, .. } => {
                earlier.kind == ModuleKind::Tree && &earlier.package.blake3 == blake3
            }
            BuiltPackage::Image { content } => {
                earlier.kind == ModuleKind::Image
                    && earlier.package.path == layout::blob(content, BlobKind::FileCopy)
            }
        })?;
    let index = read_index(storage, &earlier.file_index).ok()??;
    let complete = index.entries.iter().all(|entry| match entry.kind {
        EntryKind::File { packed_size, .. } => packed_size > 0,
        EntryKind::Dir | EntryKind::Symlink { .. } => true,
    });
    complete.then(|| (earlier.version.clone(), earlier.file_index.clone()))
}

/// Uploads a tar.gz package (at `file`, of `size` bytes hashing to `blake3`) unless
/// the site already holds it; returns its blob and whether it was uploaded.
fn upload_package(
    storage: &dyn Storage,
    file: &Path,
    size: u64,
    blake3: &Blake3Hash,
) -> Result<(Blob, bool)> {
    let path = layout::blob(blake3, BlobKind::Package);
    let present = storage.size(&path)? == Some(size);
    if !present {
        storage.put_file(&path, file)?;
    }
    let blob = Blob {
        path,
        size,
        blake3: blake3.clone(),
    };
    Ok((blob, !present))
}

/// Uploads `bytes` to the content-addressed `path` unless the site has it (same
/// size); returns whether it was uploaded.
fn upload_bytes(storage: &dyn Storage, path: &RelativePath, bytes: &[u8]) -> Result<bool> {
    let present = storage.size(path)? == Some(bytes.len() as u64);
    if !present {
        storage.put_bytes(path, bytes)?;
    }
    Ok(!present)
}

fn upload_index(storage: &dyn Storage, bytes: &[u8]) -> Result<Blob> {
    let hash = Blake3Hash::of(bytes);
    let path = layout::blob(&hash, BlobKind::FileIndex);
    upload_bytes(storage, &path, bytes)?;
    Ok(Blob {
        path,
        size: bytes.len() as u64,
        blake3: hash,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys;
    use crate::package::NoProgress;
    use wavecast_site::FsStorage;

    /// A folder site that records every path written.
    #[derive(Debug)]
    struct RecordingStorage {
        inner: FsStorage,
        written: Mutex<Vec<String>>,
    }

    impl RecordingStorage {
        fn take_written(&self) -> Vec<String> {
            let mut written = std::mem::take(&mut *self.written.lock().unwrap());
            written.sort();
            written
        }
    }

    impl Storage for RecordingStorage {
        fn get(&self, path: &RelativePath) -> wavecast_site::Result<Option<Vec<u8>>> {
            self.inner.get(path)
        }
        fn size(&self, path: &RelativePath) -> wavecast_site::Result<Option<u64>> {
            self.inner.size(path)
        }
        fn list(&self, prefix: &RelativePath) -> wavecast_site::Result<Vec<RelativePath>> {
            self.inner.list(prefix)
        }
        fn put_bytes(&self, path: &RelativePath, bytes: &[u8]) -> wavecast_site::Result<()> {
            self.written.lock().unwrap().push(path.to_string());
            self.inner.put_bytes(path, bytes)
        }
        fn put_file(&self, path: &RelativePath, source: &Path) -> wavecast_site::Result<()> {
            self.written.lock().unwrap().push(path.to_string());
            self.inner.put_file(path, source)
        }
    }

    struct Fixture {
        dir: tempfile::TempDir,
        storage: RecordingStorage,
        key: Signers,
    }

    impl Fixture {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            keys::generate(&dir.path().join("keys"), None, false).unwrap();
            let key =
                crate::keys::SigningKey::load(&dir.path().join("keys/wavecast.key"), || Ok(None))
                    .unwrap()
                    .into();
            let storage = RecordingStorage {
                inner: FsStorage::new(dir.path().join("site")),
                written: Mutex::default(),
            };
            Self { dir, storage, key }
        }

        /// Writes `files` as the release folder `version` and publishes it.
        fn publish(&self, version: &str, files: &[(&str, &[u8])], depth: usize) -> PublishReport {
            self.publish_modules(version, files, depth, Vec::new())
        }

        /// [`publish`](Self::publish) with a module layout.
        fn publish_modules(
            &self,
            version: &str,
            files: &[(&str, &[u8])],
            depth: usize,
            modules: Vec<ModuleSpec>,
        ) -> PublishReport {
            let release_dir = self.dir.path().join("releases").join(version);
            for (path, content) in files {
                let local = release_dir.join(path);
                fs_err::create_dir_all(local.parent().unwrap()).unwrap();
                fs_err::write(local, content).unwrap();
            }
            let options = PublishOptions {
                release_dir,
                version: version.parse().unwrap(),
                channel: "stable".parse().unwrap(),
                platform: "any".parse().unwrap(),
                modules,
                rollout: RolloutChange::default(),
                notes: String::new(),
                product: None,
                download_hosts: None,
                min_client_version: None,
                force: false,
                expires_in: SignedDuration::from_hours(24),
                compression_level: 6,
                copy_level: wavecast_delta::DEFAULT_COPY_LEVEL,
                patch_depth: depth,
                now: "2026-11-22T00:00:00Z".parse().unwrap(),
            };
            publish(&self.storage, &self.key, &options, &NoProgress).unwrap()
        }

        fn index(&self, report: &PublishReport, version: &str) -> FileIndex {
            let release = report.manifest.release(&version.parse().unwrap()).unwrap();
            let module = &release.platforms["any"].modules["app"];
            read_index(&self.storage, &module.file_index)
                .unwrap()
                .unwrap()
        }
    }

    fn text(seed: u64, lines: usize) -> Vec<u8> {
        crate::delta::tests::text(seed, lines)
    }

    fn edited(old: &[u8]) -> Vec<u8> {
        crate::delta::tests::edited(old)
    }

    #[test]
    fn packed_sizes_are_the_sizes_of_the_stored_copies() {
        let site = Fixture::new();
        let big = text(1, 3000);
        let report = site.publish(
            "1.0.0",
            &[("a.txt", &big), ("copy-of-a.txt", &big), ("b/c", b"small")],
            3,
        );
        let index = site.index(&report, "1.0.0");
        let mut copies = 0;
        for entry in &index.entries {
            let EntryKind::File {
                size,
                blake3,
                packed_size,
            } = &entry.kind
            else {
                continue;
            };
            let copy = site
                .storage
                .get(&layout::blob(blake3, BlobKind::FileCopy))
                .unwrap()
                .unwrap();
            assert_eq!(copy.len() as u64, *packed_size, "{}", entry.path);
            let content = wavecast_delta::decompress_copy(&copy, *size).unwrap();
            assert_eq!(&Blake3Hash::of(&content), blake3);
            copies += 1;
        }
        assert_eq!(copies, 3);
        assert_eq!(
            report.copies.compressed, 2,
            "identical contents share one copy"
        );
        assert!(index.patches.is_empty(), "nothing to patch from");
    }

    #[test]
    fn a_changed_tree_gets_patches_for_its_changed_files_only() {
        let site = Fixture::new();
        let (lib, data, same) = (text(1, 4000), text(2, 4000), text(3, 4000));
        site.publish(
            "1.0.0",
            &[
                ("lib-1.0.so", &lib),
                ("data.txt", &data),
                ("same.txt", &same),
            ],
            3,
        );
        let (lib2, data2) = (edited(&lib), edited(&data));
        let report = site.publish(
            "1.1.0",
            &[
                ("lib-1.1.so", &lib2),
                ("data.txt", &data2),
                ("moved/same.txt", &same),
                ("fresh.txt", &text(4, 100)),
            ],
            3,
        );
        let delta = &report.modules[0].delta;
        assert_eq!(delta.changed_files, 3, "{delta:?}");
        assert_eq!(delta.without_counterpart, 1, "fresh.txt");
        assert_eq!(delta.patched_files, 2);
        assert_eq!(report.modules[0].patches_uploaded, 2);
        let index = site.index(&report, "1.1.0");
        let mut targets: Vec<&Blake3Hash> = index.patches.iter().map(|patch| &patch.to).collect();
        targets.sort();
        let mut expected = [Blake3Hash::of(&lib2), Blake3Hash::of(&data2)];
        expected.sort();
        assert_eq!(targets, expected.iter().collect::<Vec<_>>());
        for patch in &index.patches {
            let bytes = site
                .storage
                .get(&layout::blob(&patch.blake3, BlobKind::Patch))
                .unwrap()
                .unwrap();
            assert_eq!(bytes.len() as u64, patch.size);
            assert_eq!(Blake3Hash::of(&bytes), patch.blake3);
            let old = if patch.to == Blake3Hash::of(&lib2) {
                &lib
            } else {
                &data
            };
            assert_eq!(patch.from, Blake3Hash::of(old));
            let rebuilt =
                wavecast_delta::apply_patch(patch.algorithm, old, &bytes, 1 << 20).unwrap();
            assert_eq!(Blake3Hash::of(&rebuilt), patch.to);
            let packed_size = index
                .entries
                .iter()
                .find_map(|entry| match &entry.kind {
                    EntryKind::File {
                        blake3,
                        packed_size,
                        ..
                    } if blake3 == &patch.to => Some(*packed_size),
                    _ => None,
                })
                .unwrap();
            assert!(patch.size * 10 < packed_size, "{patch:?} vs {packed_size}");
        }
        assert_eq!(
            delta.patch_bytes(),
            index.patches.iter().map(|patch| patch.size).sum::<u64>()
        );
        assert!(delta.from_previous < delta.changed_packed_size);

        // A third release patches from both earlier ones.
        let lib3 = edited(&lib2);
        let report = site.publish("1.2.0", &[("lib-1.2.so", &lib3)], 3);
        let index = site.index(&report, "1.2.0");
        let mut bases: Vec<&Blake3Hash> = index.patches.iter().map(|patch| &patch.from).collect();
        bases.sort();
        let mut expected = [Blake3Hash::of(&lib), Blake3Hash::of(&lib2)];
        expected.sort();
        assert_eq!(bases, expected.iter().collect::<Vec<_>>());
    }

    #[test]
    fn an_image_module_is_published_as_its_copy_with_a_patch_from_the_previous_image() {
        let site = Fixture::new();
        let layout = || {
            vec![
                "tools=bin".parse::<ModuleSpec>().unwrap(),
                ModuleSpec::image("os=rootfs.img").unwrap(),
            ]
        };
        let image = text(1, 20_000);
        let report = site.publish_modules(
            "1.0.0",
            &[("rootfs.img", &image), ("bin/x", b"x")],
            3,
            layout(),
        );
        let summary = report.modules.iter().find(|m| m.name == "os").unwrap();
        assert_eq!(summary.kind, ModuleKind::Image);
        assert!(summary.uploaded);
        let module = |report: &PublishReport, version: &str| {
            let release = report.manifest.release(&version.parse().unwrap()).unwrap();
            release.platforms["any"].modules["os"].clone()
        };
        let first = module(&report, "1.0.0");
        assert_eq!(first.kind, ModuleKind::Image);
        assert_eq!(first.dest.as_ref().unwrap().as_str(), "rootfs.img");
        assert_eq!(first.unpacked_size, image.len() as u64);
        let content = Blake3Hash::of(&image);
        assert_eq!(
            first.package.path,
            layout::blob(&content, BlobKind::FileCopy),
            "the package is the image's copy"
        );
        let copy = site.storage.get(&first.package.path).unwrap().unwrap();
        assert_eq!(copy.len() as u64, first.package.size);
        assert_eq!(Blake3Hash::of(&copy), first.package.blake3);
        assert_eq!(
            wavecast_delta::decompress_copy(&copy, image.len() as u64).unwrap(),
            image
        );
        assert!(
            !site
                .storage
                .take_written()
                .iter()
                .any(|path| path.ends_with(".tar.gz") && path.contains(content.as_str())),
            "no tar.gz for the image"
        );

        let image2 = edited(&image);
        let report = site.publish_modules(
            "1.1.0",
            &[("rootfs.img", &image2), ("bin/x", b"x")],
            3,
            layout(),
        );
        let second = module(&report, "1.1.0");
        let index = read_index(&site.storage, &second.file_index)
            .unwrap()
            .unwrap();
        assert_eq!(index.entries.len(), 1);
        assert_eq!(index.patches.len(), 1, "{index:?}");
        assert_eq!(index.patches[0].from, content);
        assert_eq!(index.patches[0].to, Blake3Hash::of(&image2));
        assert!(index.patches[0].size * 10 < second.package.size);

        // The same image again keeps the module's version and index.
        let report = site.publish_modules(
            "1.2.0",
            &[("rootfs.img", &image2), ("bin/x", b"y")],
            3,
            layout(),
        );
        let third = module(&report, "1.2.0");
        assert_eq!(third.version.to_string(), "1.1.0");
        assert_eq!(third.package, second.package);
        assert_eq!(third.file_index, second.file_index);
        let summary = report.modules.iter().find(|m| m.name == "os").unwrap();
        assert!(!summary.uploaded);
    }

    #[test]
    fn a_patch_depth_of_zero_builds_no_patches() {
        let site = Fixture::new();
        let lib = text(1, 4000);
        site.publish("1.0.0", &[("lib", &lib)], 0);
        let report = site.publish("1.1.0", &[("lib", &edited(&lib))], 0);
        assert!(site.index(&report, "1.1.0").patches.is_empty());
        assert_eq!(report.modules[0].delta, DeltaStats::default());
        // Depth 1 patches from the newest earlier release only.
        let report = site.publish("1.2.0", &[("lib", &edited(&edited(&lib)))], 1);
        let index = site.index(&report, "1.2.0");
        assert_eq!(index.patches.len(), 1);
        assert_eq!(index.patches[0].from, Blake3Hash::of(&edited(&lib)));
    }

    #[test]
    fn republishing_the_same_content_uploads_nothing_new() {
        let site = Fixture::new();
        let lib = text(1, 4000);
        site.publish("1.0.0", &[("lib", &lib), ("doc", b"doc")], 3);
        let files: [(&str, &[u8]); 2] = [("lib", &edited(&lib)), ("doc", b"doc")];
        site.publish("1.1.0", &files, 3);
        site.storage.take_written();
        let report = site.publish("1.2.0", &files, 3);
        assert_eq!(
            site.storage.take_written(),
            ["channels/stable.json", "index.html"],
            "only the manifest and the status page"
        );
        assert_eq!(report.copies.compressed, 0);
        assert!(report.modules[0].index_reused);
        let release = report.manifest.release(&"1.2.0".parse().unwrap()).unwrap();
        let module = &release.platforms["any"].modules["app"];
        assert_eq!(module.version.to_string(), "1.1.0");
        assert_eq!(
            site.index(&report, "1.2.0").patches.len(),
            1,
            "the reused index keeps its patch"
        );
    }
}
