//! Adding a release to a channel: package, build the delta packs, upload blobs, then
//! sign and write the manifest last, so readers see the old release or the new one,
//! complete.
//!
//! Per module the site gets its package (a tree's tar.zst or tar.gz, an image's zstd
//! copy), its file index (zstd-compressed JSON) and a tree's copy pack
//! ([`crate::copies`]); per earlier release within `--patch-depth`, one delta pack to
//! this release ([`crate::pack`]); then the release's document for the platform
//! ([`PlatformRelease`]), which the manifest names. A module whose content did not
//! change since an earlier release keeps that release's record (version, package,
//! index, copies), so nothing of it is uploaded again.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use semver::Version;
use wavecast_schema::{
    Blake3Hash, Blob, ChannelName, FileIndex, MAX_PACKS, Manifest, Module, ModuleKind, PackRef,
    Platform, PlatformRelease, RelativePath, Release,
};
use wavecast_site::Storage;
use wavecast_site::layout::{self, BlobKind};

use crate::channel::{current_manifest, successor, validate_and_write};
use crate::client_floor::{require_package_format, set_client_floor};
use crate::copies::{CopyStats, FileCopies, Spool, WrittenBlob};
use crate::delta::{self, BuiltPatch, Pair, PatchStats, PatchWork};
use crate::earlier::{self, Earlier};
use crate::error::{Error, Result};
use crate::keys::Signers;
use crate::pack::{self, NewModule, PackInputs, PackSummary};
use crate::package::{
    self, BuiltModule, BuiltPackage, ContentSink, ModuleSpec, PackReporter, PackageCompression,
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
    /// How tree modules are packaged: tar.zst (the default) or tar.gz, and the level.
    /// A tar.zst release raises the channel's `min_client_version` to the first
    /// client that reads it (see [`require_package_format`]).
    pub compression: PackageCompression,
    /// zstd level of the file copies, 1 to 19 (see
    /// [`wavecast_delta::DEFAULT_COPY_LEVEL`]).
    pub copy_level: i32,
    /// How many earlier releases (lower versions on the channel with a document for
    /// the platform, newest first) get a delta pack to this one; 0 builds none.
    pub patch_depth: usize,
    /// The current time (injectable for tests).
    pub now: Timestamp,
}

/// What a publish did.
#[derive(Debug)]
pub struct PublishReport {
    /// The new manifest, as signed.
    pub manifest: Manifest,
    /// The release's document for the platform, as the manifest names it.
    pub document: Blob,
    /// Per module: name, files, sizes, whether anything was uploaded.
    pub modules: Vec<ModuleSummary>,
    /// The file copies compressed or reused, over all modules.
    pub copies: CopyStats,
    /// The patches built for the packs.
    pub patches: PatchStats,
    /// The delta packs, newest source first.
    pub packs: Vec<PackSummary>,
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
    /// Files of this release over [`PAGES_FILE_LIMIT`] (packages, copy packs, delta
    /// packs), which GitHub Pages refuses.
    pub oversized: Vec<(RelativePath, u64)>,
    /// The channel's new `min_client_version` when this release's packages raised it
    /// (a tar.zst release on a channel that older clients could still read).
    pub floor_raised: Option<Version>,
}

impl PublishReport {
    /// Total size of the delta packs.
    pub fn packs_size(&self) -> u64 {
        self.packs.iter().map(|pack| pack.size).sum()
    }
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
    /// Size of the package: the tar.zst or tar.gz of a tree, the zstd copy of an
    /// image.
    pub package_size: u64,
    /// How a tree's package is compressed (an earlier release's format when its
    /// record is reused); tar.gz for an image, whose package is its zstd copy.
    pub package_format: wavecast_schema::PackageFormat,
    /// The level of a tree's package made by this publish (`None` for an image, or
    /// when an earlier release's record is reused).
    pub package_level: Option<u32>,
    /// Size of the compressed file index.
    pub index_size: u64,
    /// Size of a tree's copy pack.
    pub copies_size: Option<u64>,
    /// Whether the package was uploaded, or the site already had it.
    pub uploaded: bool,
    /// Whether an earlier release has this exact module, whose record (version,
    /// package, file index, copy pack) is reused.
    pub index_reused: bool,
}

/// Publishes a release folder to a channel, keeping earlier releases live.
///
/// # Errors
///
/// [`Error::VersionExists`] without `force`, [`Error::UnsupportedManifestFormat`] for
/// a channel of an older format, [`Error::PatchDepthTooLarge`],
/// [`Error::CompressionLevel`], [`Error::PackageFormatAboveUpdater`] for tar.zst on a
/// channel offering a client too old to read it, layout, packaging, signing and
/// storage errors.
pub fn publish(
    storage: &dyn Storage,
    signers: &Signers,
    options: &PublishOptions,
    reporter: &dyn PackReporter,
) -> Result<PublishReport> {
    let started = Instant::now();
    if options.patch_depth > MAX_PACKS {
        return Err(Error::PatchDepthTooLarge {
            depth: options.patch_depth,
            max: MAX_PACKS,
        });
    }
    options.compression.check()?;
    let existing = current_manifest(storage, signers, &options.channel)?;
    // Refuse keys that cannot sign before spending minutes on packages.
    trust::check_release_signers(storage, signers)?;
    // Publishing a version again for a platform it lacks adds that platform; publishing
    // it again for a platform it has replaces the platform's modules, with --force only.
    let modules = if options.modules.is_empty() {
        vec![ModuleSpec::whole_folder()]
    } else {
        options.modules.clone()
    };
    if let Some(manifest) = &existing {
        // Refuse a floor the offered builds would not reach before packaging anything.
        let mut changed = manifest.clone();
        if let Some(floor) = &options.min_client_version {
            set_client_floor(&mut changed, floor)?;
        }
        if modules.iter().any(|spec| spec.kind == ModuleKind::Tree) {
            require_package_format(&mut changed, options.compression.format)?;
        }
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
    package::check_layout(&options.release_dir, &modules)?;

    // The releases before this one: packs from the newest `patch_depth`, and records
    // and copies reused from the previous one even with no packs.
    let earlier = earlier::load(
        storage,
        existing.as_ref(),
        &options.version,
        &options.platform,
        options.patch_depth.max(1),
    )?;
    let sources = &earlier[..options.patch_depth.min(earlier.len())];
    let reusable = match earlier.first() {
        Some(previous) => previous
            .document
            .modules
            .keys()
            .filter_map(|name| previous.copies(storage, name).transpose())
            .collect::<Result<Vec<_>>>()?,
        None => Vec::new(),
    };

    let temp_dir = std::env::temp_dir();
    let spool = Spool::new(&temp_dir)?;
    let copies = FileCopies::new(&spool, options.copy_level, reusable);
    let patch_finished = Mutex::new(None::<Instant>);
    let queue = WorkQueue::new(QUEUE_BUDGET);
    let sink = CopySink {
        copies: &copies,
        queue: &queue,
    };
    let work_started = Instant::now();
    let (planned, packaging_time, patch_started) = std::thread::scope(|scope| {
        for _ in 0..pool::workers() {
            scope.spawn(|| queue.work());
        }
        let packaged = package_modules(options, &modules, &temp_dir, reporter, &sink);
        let packaging_time = work_started.elapsed();
        copies.stop_reusing();
        let patch_started = Instant::now();
        let planned = packaged.and_then(|built| {
            let built: Vec<Packaged> = built
                .into_iter()
                .map(|module| {
                    let reused = reused_module(&earlier, &module);
                    Packaged { module, reused }
                })
                .collect();
            let patches = Patches {
                storage,
                queue: &queue,
                spool: &spool,
                finished: &patch_finished,
                reporter,
            };
            let jobs = patches.submit(sources, &built);
            // Whatever copies are still read are in the jobs that use them.
            earlier.iter().for_each(Earlier::forget_copies);
            Ok((built, jobs?))
        });
        if planned.is_err() {
            queue.abandon();
        }
        queue.close();
        (planned, packaging_time, patch_started)
    });
    let (built, jobs) = planned?;
    if built
        .iter()
        .all(|packaged| packaged.module.files + packaged.module.links == 0)
    {
        return Err(Error::EmptyRelease {
            dir: options.release_dir.clone(),
        });
    }
    if let Some(error) = copies.take_error() {
        return Err(error);
    }
    let patch_time = patch_finished
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .map_or(Duration::ZERO, |finished| finished - patch_started);
    let mut patch_stats = PatchStats {
        too_large: jobs.too_large,
        bases_missing: jobs.bases_missing,
        ..PatchStats::default()
    };
    let mut patches: HashMap<Pair, BuiltPatch> = HashMap::new();
    for item in jobs.work.values() {
        item.count(&mut patch_stats);
        if let Some(patch) = item.take_result()? {
            patches.insert(item.pair.clone(), patch);
        }
    }
    drop(jobs);

    // Blobs first: nothing refers to them until the manifest is written.
    let mut oversized = Vec::new();
    let mut summaries = Vec::with_capacity(built.len());
    let mut published = Vec::with_capacity(built.len());
    for packaged in built {
        let (summary, record, index) = upload_module(
            storage,
            options,
            &copies,
            &temp_dir,
            packaged,
            &mut oversized,
        )?;
        summaries.push(summary);
        published.push((record, index));
    }
    let new_modules: Vec<NewModule<'_>> = modules
        .iter()
        .zip(&published)
        .map(|(spec, (record, index))| NewModule {
            name: &spec.name,
            record,
            index,
        })
        .collect();
    let inputs = PackInputs {
        patches: &patches,
        copies: &copies,
        spool: &spool,
    };
    let mut packs = Vec::new();
    let mut pack_refs = Vec::new();
    for source in sources {
        let Some(built) = pack::build(source, &options.version, &new_modules, inputs, &temp_dir)?
        else {
            continue;
        };
        let mut summary = built.summary;
        let path = layout::blob(&built.written.blob.blake3, BlobKind::Pack);
        summary.uploaded = upload_file(storage, &path, &built.written)?;
        note_oversized(&mut oversized, path, summary.size);
        pack_refs.push(PackRef {
            from: summary.from.clone(),
            size: built.written.blob.size,
            blake3: built.written.blob.blake3.clone(),
        });
        packs.push(summary);
    }
    let copy_stats = copies.stats();
    let work_time = work_started.elapsed();

    let mut document = PlatformRelease::new(options.version.clone(), options.platform.clone());
    document.modules = modules
        .iter()
        .map(|spec| spec.name.clone())
        .zip(published.into_iter().map(|(record, _)| record))
        .collect();
    document.packs = pack_refs;
    document
        .validate()
        .map_err(|source| Error::InvalidManifest {
            channel: options.channel.clone(),
            source,
        })?;
    let document_bytes = document.to_json();
    let document_blob = Blob {
        size: document_bytes.len() as u64,
        blake3: Blake3Hash::of(&document_bytes),
    };
    upload_bytes(
        storage,
        &layout::blob(&document_blob.blake3, BlobKind::PlatformRelease),
        &document_bytes,
    )?;

    let mut platforms = replaced
        .map(|release| release.platforms.clone())
        .unwrap_or_default();
    platforms.insert(options.platform.clone(), document_blob.clone());
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
    let mut floor_raised = None;
    for module in document.modules.values() {
        if module.kind == ModuleKind::Tree {
            floor_raised =
                require_package_format(&mut manifest, module.package_format)?.or(floor_raised);
        }
    }
    manifest
        .releases
        .retain(|release| release.version != options.version);
    manifest.releases.push(release);
    validate_and_write(storage, signers, &mut manifest)?;
    pages::write_nojekyll(storage)?;
    Ok(PublishReport {
        manifest,
        document: document_blob,
        modules: summaries,
        copies: copy_stats,
        patches: patch_stats,
        packs,
        packaging_time,
        patch_time,
        work_time,
        total_time: started.elapsed(),
        oversized,
        floor_raised,
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
                        options.compression,
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

/// A packaged module, and the earlier record it keeps when its content is unchanged.
struct Packaged {
    module: BuiltModule,
    reused: Option<(Module, FileIndex)>,
}

impl Packaged {
    /// The module's file index as it will be published (an earlier one when reused).
    fn index(&self) -> &FileIndex {
        self.reused
            .as_ref()
            .map_or(&self.module.index, |(_, index)| index)
    }
}

/// The record and file index of the same module in an earlier release when it has the
/// same content: the same package for a tree ("same module version" means "same
/// content"; a tree packaged in another format gets a record of its own), the same
/// image for an image.
fn reused_module(earlier: &[Earlier], module: &BuiltModule) -> Option<(Module, FileIndex)> {
    earlier.iter().find_map(|release| {
        let (record, index) = release.module(&module.name)?;
        let same = match &module.package {
            BuiltPackage::Tar { blake3, format, .. } => {
                record.kind == ModuleKind::Tree
                    && record.package_format == *format
                    && &record.package.blake3 == blake3
            }
            BuiltPackage::Image { content } => {
                record.kind == ModuleKind::Image && index.file_hashes().eq([content])
            }
        };
        same.then(|| (record.clone(), index.clone()))
    })
}

/// Where patch jobs go, and what they share.
struct Patches<'a, 'q> {
    storage: &'q dyn Storage,
    queue: &'a WorkQueue<'q>,
    spool: &'q Spool,
    /// When the last patch job finished.
    finished: &'q Mutex<Option<Instant>>,
    /// Told of each patch queued and each try at one finished.
    reporter: &'q dyn PackReporter,
}

/// The patch work of a publish, and the pairs not built.
struct PatchJobs {
    /// The work of each pair queued.
    work: HashMap<Pair, Arc<PatchWork>>,
    /// Pairs with a file larger than patches are built for.
    too_large: usize,
    /// Pairs whose old release's copies are not on the site as its document says.
    bases_missing: usize,
}

impl<'q> Patches<'_, 'q> {
    /// Queues the patches every pack may use: for each source release and each module,
    /// each content the source lacks from each of its counterparts there, every
    /// distinct pair once. A source's copies are read when its first pair needs them
    /// and let go once its pairs are queued, so few releases' copies are held at once.
    fn submit(&self, sources: &[Earlier], modules: &[Packaged]) -> Result<PatchJobs> {
        let mut work: HashMap<Pair, Arc<PatchWork>> = HashMap::new();
        let mut too_large = HashSet::new();
        let mut missing = HashSet::new();
        for source in sources {
            for packaged in modules {
                let name = &packaged.module.name;
                let old = match source.module(name) {
                    Some((record, _))
                        if packaged
                            .reused
                            .as_ref()
                            .is_some_and(|(reused, _)| reused.index == record.index) =>
                    {
                        continue;
                    }
                    Some((_, index)) => Some(index),
                    None => None,
                };
                for target in delta::targets(old, packaged.index()) {
                    for (base, base_size) in &target.bases {
                        let pair = Pair {
                            base: base.clone(),
                            target: target.content.clone(),
                        };
                        if work.contains_key(&pair) || too_large.contains(&pair) {
                            continue;
                        }
                        if Pair::too_large(*base_size, target.size) {
                            too_large.insert(pair);
                            continue;
                        }
                        let Some(copies) = source.copies(self.storage, name)? else {
                            // Another source may have the base: counted once, at the end.
                            missing.insert(pair);
                            continue;
                        };
                        let local = target
                            .path
                            .segments()
                            .fold(packaged.module.root.clone(), |local, segment| {
                                local.join(segment)
                            });
                        let item = Arc::new(PatchWork::new(
                            pair.clone(),
                            (*base_size, target.size),
                            copies,
                            target.path.clone(),
                            local,
                        ));
                        self.queue_jobs(&item);
                        missing.remove(&pair);
                        work.insert(pair, item);
                    }
                }
            }
            source.forget_copies();
        }
        Ok(PatchJobs {
            work,
            too_large: too_large.len(),
            bases_missing: missing.len(),
        })
    }

    fn queue_jobs(&self, item: &Arc<PatchWork>) {
        let bytes = item.base_size.saturating_add(item.target_size);
        self.reporter.on_patch_queued(bytes);
        let tries = wavecast_delta::ALGORITHMS.len() as u64;
        for (n, algorithm) in wavecast_delta::ALGORITHMS.into_iter().enumerate() {
            let (item, spool, finished) = (Arc::clone(item), self.spool, self.finished);
            let reporter = self.reporter;
            // The tries share the patch's bytes, the first taking what division leaves.
            let share = bytes / tries + if n == 0 { bytes % tries } else { 0 };
            self.queue.submit(item.weight(), move || {
                item.run(algorithm, spool);
                *finished.lock().unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
                reporter.on_patch_done(share);
            });
        }
    }
}

/// Uploads what a module needs that the site lacks (its package, file index and copy
/// pack, none of them for a reused module but a missing package) and returns its
/// summary, its record and its file index as published.
fn upload_module(
    storage: &dyn Storage,
    options: &PublishOptions,
    copies: &FileCopies<'_>,
    temp_dir: &Path,
    packaged: Packaged,
    oversized: &mut Vec<(RelativePath, u64)>,
) -> Result<(ModuleSummary, Module, FileIndex)> {
    let Packaged { mut module, reused } = packaged;
    let (record, index, uploaded) = match reused {
        Some((record, index)) => {
            let uploaded = match &module.package {
                BuiltPackage::Tar {
                    format,
                    file,
                    size,
                    blake3,
                    ..
                } => upload_package(storage, *format, file, *size, blake3)?.1,
                BuiltPackage::Image { .. } => false,
            };
            (record, index, uploaded)
        }
        None => {
            let (package, package_format, uploaded) = match &module.package {
                BuiltPackage::Tar {
                    format,
                    file,
                    size,
                    blake3,
                    ..
                } => {
                    let (blob, uploaded) = upload_package(storage, *format, file, *size, blake3)?;
                    (blob, *format, uploaded)
                }
                BuiltPackage::Image { content } => {
                    let (blob, uploaded) = upload_image(storage, copies, content)?;
                    (blob, wavecast_schema::PackageFormat::TarGz, uploaded)
                }
            };
            copies.fill_packed_sizes(&mut module.index)?;
            let copy_pack = match module.kind() {
                ModuleKind::Tree => {
                    let written = copies.write_copy_pack(&module.index, temp_dir)?;
                    let path = layout::blob(&written.blob.blake3, BlobKind::Copies);
                    upload_file(storage, &path, &written)?;
                    note_oversized(oversized, path, written.blob.size);
                    Some(written.blob)
                }
                ModuleKind::Image => None,
            };
            let (index_bytes, index_blob) = module.index.encode();
            upload_bytes(
                storage,
                &layout::blob(&index_blob.blake3, BlobKind::FileIndex),
                &index_bytes,
            )?;
            let record = Module {
                version: options.version.clone(),
                kind: module.kind(),
                dest: module.dest.clone(),
                unpacked_size: module.unpacked_size,
                package,
                package_format,
                index: index_blob,
                copies: copy_pack,
            };
            (record, module.index.clone(), uploaded)
        }
    };
    note_oversized(
        oversized,
        layout::blob(&record.package.blake3, BlobKind::of_package(&record)),
        record.package.size,
    );
    let summary = ModuleSummary {
        name: module.name.to_string(),
        kind: module.kind(),
        files: module.files,
        links: module.links,
        outside_links: std::mem::take(&mut module.outside_links),
        hard_links: std::mem::take(&mut module.hard_links),
        unpacked_size: module.unpacked_size,
        package_size: record.package.size,
        package_format: record.package_format,
        package_level: match module.package {
            BuiltPackage::Tar { level, .. } if record.version == options.version => Some(level),
            _ => None,
        },
        index_size: record.index.size,
        copies_size: record.copies.as_ref().map(|copies| copies.size),
        uploaded,
        index_reused: record.version != options.version,
    };
    Ok((summary, record, index))
}

/// Uploads a tree's package of `format` (at `file`, of `size` bytes hashing to
/// `blake3`) unless the site already holds it; returns its blob and whether it was
/// uploaded.
fn upload_package(
    storage: &dyn Storage,
    format: wavecast_schema::PackageFormat,
    file: &Path,
    size: u64,
    blake3: &Blake3Hash,
) -> Result<(Blob, bool)> {
    let path = layout::blob(blake3, BlobKind::package(format));
    let present = storage.size(&path)? == Some(size);
    if !present {
        storage.put_file(&path, file)?;
    }
    let blob = Blob {
        size,
        blake3: blake3.clone(),
    };
    Ok((blob, !present))
}

/// Uploads an image's zstd copy, its package, to `blobs/<blake3>.zst` unless the site
/// has it; returns the package's blob and whether it was uploaded.
fn upload_image(
    storage: &dyn Storage,
    copies: &FileCopies<'_>,
    content: &Blake3Hash,
) -> Result<(Blob, bool)> {
    let copy = copies.copy_bytes(content)?;
    let blob = Blob {
        size: copy.len() as u64,
        blake3: Blake3Hash::of(&copy),
    };
    let uploaded = upload_bytes(
        storage,
        &layout::blob(&blob.blake3, BlobKind::FileCopy),
        &copy,
    )?;
    Ok((blob, uploaded))
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

/// Uploads the `written` blob to the content-addressed `path` unless the site has it
/// (same size); returns whether it was uploaded.
fn upload_file(storage: &dyn Storage, path: &RelativePath, written: &WrittenBlob) -> Result<bool> {
    let present = storage.size(path)? == Some(written.blob.size);
    if !present {
        storage.put_file(path, &written.file)?;
    }
    Ok(!present)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::copies::LoadedCopies;
    use crate::keys;
    use crate::package::NoProgress;
    use wavecast_schema::{EntryKind, PackData, PackHeader};
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
        fn delete(&self, path: &RelativePath) -> wavecast_site::Result<()> {
            self.inner.delete(path)
        }
        fn modified(&self, path: &RelativePath) -> wavecast_site::Result<Option<jiff::Timestamp>> {
            self.inner.modified(path)
        }
    }

    pub(crate) struct Fixture {
        pub(crate) dir: tempfile::TempDir,
        storage: RecordingStorage,
        pub(crate) key: Signers,
    }

    impl Fixture {
        pub(crate) fn new() -> Self {
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
        pub(crate) fn publish(
            &self,
            version: &str,
            files: &[(&str, &[u8])],
            depth: usize,
        ) -> PublishReport {
            self.publish_modules(version, files, depth, Vec::new())
        }

        /// [`publish`](Self::publish) with a module layout.
        pub(crate) fn publish_modules(
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
            publish(
                &self.storage,
                &self.key,
                &options(release_dir, version, depth, modules),
                &NoProgress,
            )
            .unwrap()
        }

        /// The document of `version` on `any`.
        fn document(&self, report: &PublishReport, version: &str) -> PlatformRelease {
            let release = report.manifest.release(&version.parse().unwrap()).unwrap();
            earlier::read_document(&self.storage, &release.platforms["any"])
                .unwrap()
                .unwrap()
        }

        fn index(&self, module: &Module) -> FileIndex {
            earlier::read_index(&self.storage, &module.index)
                .unwrap()
                .unwrap()
        }

        /// Checks every pack of `to`: each module delta turns the old index into the
        /// new one, and each content it carries rebuilds from the old release's copies
        /// or from its copy. Returns the packs' headers, newest source first.
        fn check_packs(&self, report: &PublishReport, to: &str) -> Vec<PackHeader> {
            let document = self.document(report, to);
            let mut headers = Vec::new();
            for pack in &document.packs {
                let bytes = self
                    .storage
                    .get(&layout::blob(&pack.blake3, BlobKind::Pack))
                    .unwrap()
                    .unwrap();
                assert_eq!(bytes.len() as u64, pack.size);
                assert_eq!(Blake3Hash::of(&bytes), pack.blake3);
                let (header, payload) = PackHeader::decode(&bytes).unwrap();
                assert_eq!(header.encode(payload), bytes);
                assert_eq!(header.to, document.version);
                let old = self.document(report, &pack.from.to_string());
                for (name, module) in &document.modules {
                    let new_index = self.index(module);
                    let old_module = old.modules.get(name);
                    let Some(delta) = header.modules.get(name) else {
                        assert_eq!(old_module.map(|old| &old.index), Some(&module.index));
                        continue;
                    };
                    let old_index = old_module.map(|old| self.index(old));
                    assert_eq!(delta.apply(old_index.as_ref()).unwrap(), new_index);
                    for entry in &delta.entries {
                        let (EntryKind::File { size, blake3, .. }, Some(data)) =
                            (&entry.entry.kind, &entry.data)
                        else {
                            continue;
                        };
                        let bytes = data.bytes(payload).unwrap();
                        let rebuilt = match data {
                            PackData::Copy { .. } => {
                                wavecast_delta::decompress_copy(bytes, *size).unwrap()
                            }
                            PackData::Patch {
                                base, algorithm, ..
                            } => {
                                let old_module = old_module.unwrap();
                                let old_index = old_index.as_ref().unwrap();
                                let copies =
                                    LoadedCopies::load(&self.storage, old_module, old_index)
                                        .unwrap()
                                        .unwrap();
                                let base = copies.content(base).unwrap();
                                wavecast_delta::apply_patch(*algorithm, &base, bytes, *size)
                                    .unwrap()
                            }
                        };
                        assert_eq!(&Blake3Hash::of(&rebuilt), blake3, "{}", entry.entry.path);
                    }
                }
                headers.push(header);
            }
            headers
        }
    }

    pub(crate) fn options(
        release_dir: PathBuf,
        version: &str,
        depth: usize,
        modules: Vec<ModuleSpec>,
    ) -> PublishOptions {
        PublishOptions {
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
            compression: PackageCompression::default(),
            copy_level: wavecast_delta::DEFAULT_COPY_LEVEL,
            patch_depth: depth,
            now: "2026-11-22T00:00:00Z".parse().unwrap(),
        }
    }

    fn text(seed: u64, lines: usize) -> Vec<u8> {
        crate::delta::tests::text(seed, lines)
    }

    #[test]
    fn a_channel_holds_both_package_formats_and_tar_zst_raises_its_floor() {
        use wavecast_schema::PackageFormat;
        let site = Fixture::new();
        let files: &[(&str, &[u8])] =
            &[("bin/app", b"#!/bin/sh\n"), ("share/a.txt", &text(1, 500))];
        let publish = |version: &str, format: PackageFormat| {
            let release_dir = site.dir.path().join("releases").join(version);
            for (path, content) in files {
                let local = release_dir.join(path);
                fs_err::create_dir_all(local.parent().unwrap()).unwrap();
                fs_err::write(local, content).unwrap();
            }
            let mut options = options(release_dir, version, 3, Vec::new());
            options.compression = PackageCompression::new(format);
            publish(&site.storage, &site.key, &options, &NoProgress)
        };
        let package_exists = |module: &Module| {
            site.dir
                .path()
                .join("site")
                .join(layout::blob(&module.package.blake3, BlobKind::of_package(module)).as_str())
                .is_file()
        };

        // tar.gz leaves the floor where it is: every client reads it.
        let gz = publish("1.0.0", PackageFormat::TarGz).unwrap();
        assert_eq!(gz.floor_raised, None);
        assert_eq!(gz.manifest.min_client_version, Version::new(0, 1, 0));
        let record = &site.document(&gz, "1.0.0").modules["app"];
        assert_eq!(record.package_format, PackageFormat::TarGz);
        assert!(package_exists(record));

        // The same tree as tar.zst: a record of its own, and the floor raised.
        let zst = publish("1.1.0", PackageFormat::TarZst).unwrap();
        assert_eq!(zst.floor_raised, Some(Version::new(0, 2, 0)));
        assert_eq!(zst.manifest.min_client_version, Version::new(0, 2, 0));
        let record = &site.document(&zst, "1.1.0").modules["app"];
        assert_eq!(record.package_format, PackageFormat::TarZst);
        assert_eq!(record.version, Version::new(1, 1, 0), "not 1.0.0's tar.gz");
        assert!(package_exists(record));
        assert!(zst.modules[0].package_size < gz.modules[0].package_size);
        // The earlier release keeps its tar.gz.
        assert_eq!(
            site.document(&zst, "1.0.0").modules["app"].package_format,
            PackageFormat::TarGz
        );

        // Raised once; a tar.gz release later keeps the floor.
        let again = publish("1.2.0", PackageFormat::TarZst).unwrap();
        assert_eq!(again.floor_raised, None);
        assert_eq!(
            site.document(&again, "1.2.0").modules["app"].version,
            Version::new(1, 1, 0),
            "the same tar.zst: 1.1.0's record is reused"
        );
        let later = publish("1.3.0", PackageFormat::TarGz).unwrap();
        assert_eq!(later.manifest.min_client_version, Version::new(0, 2, 0));
    }

    #[test]
    fn tar_zst_is_refused_while_the_channel_offers_a_client_that_cannot_read_it() {
        use crate::client_floor::require_package_format;
        use wavecast_schema::{PackageFormat, UpdaterBuild};
        let site = Fixture::new();
        let report = site.publish("1.0.0", &[("a", b"one")], 0);
        let mut manifest = report.manifest;
        manifest.min_client_version = Version::new(0, 1, 0);
        manifest.updater.insert(
            "x86_64-unknown-linux-gnu".parse().unwrap(),
            UpdaterBuild {
                version: Version::new(0, 1, 5),
                package: Blob {
                    size: 1,
                    blake3: Blake3Hash::of(b"x"),
                },
                unpacked_size: 1,
            },
        );
        let error =
            require_package_format(&mut manifest.clone(), PackageFormat::TarZst).unwrap_err();
        assert!(
            matches!(&error, Error::PackageFormatAboveUpdater { version, .. } if *version == Version::new(0, 1, 5)),
            "{error}"
        );
        assert_eq!(
            require_package_format(&mut manifest.clone(), PackageFormat::TarGz).unwrap(),
            None
        );
        manifest.updater.values_mut().for_each(|build| {
            build.version = Version::new(0, 2, 0);
        });
        assert_eq!(
            require_package_format(&mut manifest, PackageFormat::TarZst).unwrap(),
            Some(Version::new(0, 2, 0))
        );
        assert_eq!(manifest.min_client_version, Version::new(0, 2, 0));
    }

    fn edited(old: &[u8]) -> Vec<u8> {
        crate::delta::tests::edited(old)
    }

    /// The data of the content `content` in `header`'s module `app`.
    fn data<'h>(header: &'h PackHeader, content: &[u8]) -> &'h PackData {
        header.modules["app"].data_by_content()[&Blake3Hash::of(content)]
    }

    #[test]
    fn the_copy_pack_slices_by_the_copy_layout_into_each_content() {
        let site = Fixture::new();
        let big = text(1, 3000);
        let report = site.publish(
            "1.0.0",
            &[("a.txt", &big), ("copy-of-a.txt", &big), ("b/c", b"small")],
            3,
        );
        let written = site.storage.take_written();
        assert!(
            !written.iter().any(|path| path.ends_with(".zst")
                && !path.ends_with(".json.zst")
                && !path.ends_with(".tar.zst")),
            "no file copy of its own for a tree: {written:?}"
        );
        let document = site.document(&report, "1.0.0");
        let module = &document.modules["app"];
        let index = site.index(module);
        let copies = module.copies.clone().unwrap();
        let pack = site
            .storage
            .get(&layout::blob(&copies.blake3, BlobKind::Copies))
            .unwrap()
            .unwrap();
        assert_eq!(pack.len() as u64, copies.size);
        assert_eq!(Blake3Hash::of(&pack), copies.blake3);
        assert_eq!(index.copies_size(), copies.size);
        let layout = index.copy_layout();
        assert_eq!(layout.len(), 2, "identical contents share one copy");
        for (hash, slice) in &layout {
            let copy = &pack[slice.offset as usize..(slice.offset + slice.length) as usize];
            let content = wavecast_delta::decompress_copy(copy, slice.size).unwrap();
            assert_eq!(&Blake3Hash::of(&content), *hash);
        }
        assert_eq!(report.copies.compressed, 2);
        assert!(document.packs.is_empty(), "nothing to update from");
        assert_eq!(report.modules[0].copies_size, Some(copies.size));
    }

    #[test]
    fn a_pack_patches_changed_renamed_and_moved_files_and_copies_new_ones() {
        let site = Fixture::new();
        let (lib, data_file, same) = (text(1, 4000), text(2, 4000), text(3, 4000));
        site.publish(
            "1.0.0",
            &[
                ("lib-1.0.so", &lib),
                ("data.txt", &data_file),
                ("same.txt", &same),
                ("plugin-0a1b2c3d4e.so", &text(5, 4000)),
            ],
            3,
        );
        let (lib2, data2, plugin2) = (edited(&lib), edited(&data_file), edited(&text(5, 4000)));
        let fresh = text(4, 100);
        let report = site.publish(
            "1.1.0",
            &[
                ("lib-1.1.so", &lib2),
                ("data.txt", &data2),
                ("moved/same.txt", &same),
                ("plugin-99887766ff.so", &plugin2),
                ("fresh.txt", &fresh),
            ],
            3,
        );
        assert_eq!(report.copies.reused, 1, "same.txt keeps its copy");
        let headers = site.check_packs(&report, "1.1.0");
        let [header] = headers.as_slice() else {
            panic!("one pack: {headers:?}");
        };
        for (content, old) in [(&lib2, &lib), (&data2, &data_file)] {
            let PackData::Patch { base, .. } = data(header, content) else {
                panic!("a patch");
            };
            assert_eq!(base, &Blake3Hash::of(old));
        }
        assert!(matches!(data(header, &plugin2), PackData::Patch { .. }));
        assert!(matches!(data(header, &fresh), PackData::Copy { .. }));
        let moved = header.modules["app"]
            .entries
            .iter()
            .find(|entry| entry.entry.path.as_str() == "moved/same.txt")
            .unwrap();
        assert_eq!(moved.data, None, "the old release has the content");
        let summary = &report.packs[0];
        assert_eq!(summary.from.to_string(), "1.0.0");
        assert_eq!((summary.patches, summary.copies), (3, 1));
        assert!(summary.patch_bytes < 1000, "{summary:?}");
        assert_eq!(
            summary.size,
            summary.header_size + summary.patch_bytes + summary.copy_bytes
        );
        assert_eq!(report.patches.pairs, 3);
        assert_eq!(report.packs_size(), summary.size);
    }

    #[test]
    fn a_pack_from_two_releases_back_patches_what_changed_in_between_and_shares_patches() {
        let site = Fixture::new();
        let (a, b) = (text(1, 4000), text(2, 4000));
        site.publish("1.0.0", &[("a", &a), ("b", &b)], 3);
        let a2 = edited(&a);
        site.publish("1.1.0", &[("a", &a2), ("b", &b)], 3);
        let b2 = edited(&b);
        let report = site.publish("1.2.0", &[("a", &a2), ("b", &b2)], 3);
        let headers = site.check_packs(&report, "1.2.0");
        let froms: Vec<String> = headers.iter().map(|h| h.from.to_string()).collect();
        assert_eq!(froms, ["1.1.0", "1.0.0"], "newest source first");
        let PackData::Patch { base, .. } = data(&headers[1], &a2) else {
            panic!("a changed only in 1.1.0 and is patched from 1.0.0");
        };
        assert_eq!(base, &Blake3Hash::of(&a));
        assert!(
            !headers[0].modules["app"]
                .data_by_content()
                .contains_key(&Blake3Hash::of(&a2))
        );
        for header in &headers {
            assert!(matches!(data(header, &b2), PackData::Patch { .. }));
        }
        assert_eq!(
            report.patches.pairs, 2,
            "b -> b2 is built once for both packs"
        );
    }

    #[test]
    fn a_patch_depth_of_zero_builds_no_packs_and_one_builds_one() {
        let site = Fixture::new();
        let lib = text(1, 4000);
        site.publish("1.0.0", &[("lib", &lib)], 0);
        let report = site.publish("1.1.0", &[("lib", &edited(&lib))], 0);
        assert!(site.document(&report, "1.1.0").packs.is_empty());
        assert!(report.packs.is_empty());
        assert_eq!(report.patches, PatchStats::default());
        assert_eq!(report.copies.reused, 0, "a changed file is compressed");
        let report = site.publish("1.2.0", &[("lib", &edited(&edited(&lib)))], 1);
        let headers = site.check_packs(&report, "1.2.0");
        assert_eq!(headers.len(), 1);
        assert_eq!(headers[0].from.to_string(), "1.1.0");
    }

    #[test]
    fn an_image_module_is_published_as_its_copy_and_patched_from_the_previous_image() {
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
        let first = site.document(&report, "1.0.0").modules["os"].clone();
        assert_eq!(first.kind, ModuleKind::Image);
        assert_eq!(first.copies, None);
        assert_eq!(first.dest.as_ref().unwrap().as_str(), "rootfs.img");
        assert_eq!(first.unpacked_size, image.len() as u64);
        let content = Blake3Hash::of(&image);
        let copy = site
            .storage
            .get(&layout::blob(&first.package.blake3, BlobKind::FileCopy))
            .unwrap()
            .unwrap();
        assert_eq!(copy.len() as u64, first.package.size);
        assert_eq!(Blake3Hash::of(&copy), first.package.blake3);
        assert_eq!(
            wavecast_delta::decompress_copy(&copy, image.len() as u64).unwrap(),
            image
        );
        let written = site.storage.take_written();
        assert!(
            !written
                .iter()
                .any(|path| path.contains(".tar.") && path.contains(content.as_str())),
            "no tar for the image"
        );
        assert_eq!(
            written
                .iter()
                .filter(|path| path.ends_with(".copies"))
                .count(),
            1
        );

        let image2 = edited(&image);
        let report = site.publish_modules(
            "1.1.0",
            &[("rootfs.img", &image2), ("bin/x", b"x")],
            3,
            layout(),
        );
        let second = site.document(&report, "1.1.0").modules["os"].clone();
        let headers = site.check_packs(&report, "1.1.0");
        let delta = &headers[0].modules["os"];
        let PackData::Patch { base, length, .. } =
            delta.data_by_content()[&Blake3Hash::of(&image2)]
        else {
            panic!("the image is patched");
        };
        assert_eq!(base, &content);
        assert!(length * 10 < second.package.size);
        assert!(!headers[0].modules.contains_key("tools"), "unchanged");

        // The same image again keeps the module's record.
        let report = site.publish_modules(
            "1.2.0",
            &[("rootfs.img", &image2), ("bin/x", b"y")],
            3,
            layout(),
        );
        let third = site.document(&report, "1.2.0").modules["os"].clone();
        assert_eq!(third, second);
        assert_eq!(third.version.to_string(), "1.1.0");
        let summary = report.modules.iter().find(|m| m.name == "os").unwrap();
        assert!(!summary.uploaded && summary.index_reused);
        let headers = site.check_packs(&report, "1.2.0");
        assert!(!headers[0].modules.contains_key("os"));
    }

    #[test]
    fn republishing_the_same_content_uploads_only_documents() {
        let site = Fixture::new();
        let lib = text(1, 4000);
        site.publish("1.0.0", &[("lib", &lib), ("doc", b"doc")], 3);
        let files: [(&str, &[u8]); 2] = [("lib", &edited(&lib)), ("doc", b"doc")];
        let second = site.publish("1.1.0", &files, 3);
        site.storage.take_written();
        let report = site.publish("1.2.0", &files, 3);
        let written = site.storage.take_written();
        assert!(
            written.iter().all(|path| path.ends_with(".json")
                || path.ends_with(".pack")
                || path == "index.html"),
            "only the document, packs, the manifest and the status page: {written:?}"
        );
        assert_eq!(report.copies.compressed, 0);
        assert!(report.modules[0].index_reused);
        let module = &site.document(&report, "1.2.0").modules["app"];
        assert_eq!(module, &site.document(&second, "1.1.0").modules["app"]);
        assert_eq!(module.version.to_string(), "1.1.0");
        let headers = site.check_packs(&report, "1.2.0");
        assert!(headers[0].modules.is_empty(), "nothing changed since 1.1.0");
        assert!(
            matches!(data(&headers[1], &edited(&lib)), PackData::Patch { .. }),
            "the pack from 1.0.0 still patches lib"
        );
    }

    #[test]
    fn a_patch_depth_past_the_packs_a_release_may_offer_is_refused_before_any_work() {
        let site = Fixture::new();
        let error = publish(
            &site.storage,
            &site.key,
            &options(site.dir.path().join("missing"), "1.0.0", 17, Vec::new()),
            &NoProgress,
        )
        .unwrap_err();
        assert!(
            matches!(error, Error::PatchDepthTooLarge { depth: 17, max: 16 }),
            "{error}"
        );
    }

    #[test]
    fn a_channel_of_format_1_is_refused_by_name() {
        let site = Fixture::new();
        site.publish("1.0.0", &[("a", b"a")], 3);
        // The same channel, rewritten as a format-1 site would have it, signed.
        let mut manifest: serde_json::Value =
            serde_json::from_slice(&report_manifest(&site)).unwrap();
        manifest["format"] = 1.into();
        let text = manifest.to_string();
        let roots = trust::SiteRoots::load(&site.storage).unwrap().unwrap();
        let signatures = trust::sign_release(&roots, &site.key, &text, "format 1").unwrap();
        site.storage
            .put_bytes(
                &layout::channel_manifest(&"stable".parse().unwrap()),
                &wavecast_schema::Envelope::new(text, signatures).to_json(),
            )
            .unwrap();
        let release_dir = site.dir.path().join("releases/1.0.0");
        let error = publish(
            &site.storage,
            &site.key,
            &options(release_dir, "1.1.0", 3, Vec::new()),
            &NoProgress,
        )
        .unwrap_err();
        assert!(
            matches!(
                error,
                Error::UnsupportedManifestFormat {
                    found: 1,
                    supported: 2,
                    ..
                }
            ),
            "{error}"
        );
        let message = error.to_string();
        assert!(
            message.contains("format-1") && message.contains("new site or a new channel"),
            "{message}"
        );
    }

    /// The signed manifest text of the `stable` channel.
    fn report_manifest(site: &Fixture) -> Vec<u8> {
        let bytes = site
            .storage
            .get(&layout::channel_manifest(&"stable".parse().unwrap()))
            .unwrap()
            .unwrap();
        wavecast_schema::Envelope::parse(&bytes)
            .unwrap()
            .manifest
            .into_bytes()
    }
}
