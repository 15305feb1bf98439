//! Planning an install: what to keep, take from the delta pack, fetch as ranges of
//! copy packs, or take as whole packages.
//!
//! [`LocalFiles`] records where each content hash of the installed release trees
//! lies on disk. [`plan_release`] takes the target's file indexes
//! ([`ReleaseIndexes`]) and the delta pack's header, when the update has one, and asks
//! [`wavecast_schema::plan_module`] how to obtain every file of every module; the
//! result is an [`UpdatePlan`], which `update --dry-run` prints as it is, whose
//! ranges and packages the fetch stage downloads, and which the assemble stage
//! carries out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use semver::Version;
use wavecast_schema::{
    Blake3Hash, Blob, ByteRange, CopySlice, EntryKind, FileIndex, FileMode, FileSource, IndexBlob,
    LinkTarget, Module, ModuleName, PackData, PackHeader, PatchAlgorithm, PlatformRelease,
    RelativePath, plan_module,
};

use crate::install::tree::ReleaseIndexes;
use crate::store::root::InstallRoot;
use crate::store::state::{InstalledModule, InstalledRelease, State};

/// How a release will be obtained, module by module and file by file: what
/// [`Updater::plan`](crate::Updater::plan) returns and `update --dry-run` prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdatePlan {
    /// The target release.
    pub version: Version,
    /// Its directory name under `ROOT/releases`.
    pub dir: String,
    /// Every module of the target, by name.
    pub modules: Vec<ModuleUpdate>,
    /// The delta pack the update downloads, when one updates from the current release.
    pub pack: Option<PackUse>,
    /// Bytes to download for the whole release (file indexes aside): the pack, the
    /// ranges of copy packs and the packages.
    pub download_bytes: u64,
    /// What downloading every module's package would cost instead.
    pub package_bytes: u64,
    /// Bytes received to fetch file indexes for this plan (0 when all were cached or
    /// derived from the pack): the target's, which every install checks its tree
    /// against, and any of the installed releases the index cache lacked.
    pub index_bytes: u64,
    /// The release's image module, which goes to a slot rather than the tree, and is
    /// not counted in `download_bytes`.
    pub image: Option<ImageDownload>,
}

/// What an update's image module costs at most.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageDownload {
    /// The module.
    pub module: ModuleName,
    /// Its package's size: the most it downloads (a patch against the image in the
    /// other slot is smaller).
    pub package_bytes: u64,
}

/// The delta pack an update takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackUse {
    /// The release it updates from: the current one.
    pub from: Version,
    /// Its size in bytes, downloaded in one request.
    pub size: u64,
}

/// How one module will be obtained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleUpdate {
    /// The module.
    pub name: ModuleName,
    /// Where its files go inside the release tree; `None` for the tree's root.
    pub dest: Option<RelativePath>,
    /// Whether the whole package is downloaded and unpacked.
    pub use_package: bool,
    /// Why the package is used, when it is.
    pub package_reason: Option<PackageReason>,
    /// Size of the module's package.
    pub package_bytes: u64,
    /// Bytes to download for this module: the package's size when `use_package`, else
    /// what its files take from the pack and the ranges of its copy pack.
    pub download_bytes: u64,
    /// Every file of the module and how it is obtained; empty when `use_package`.
    pub files: Vec<FileUpdate>,
    /// Paths of the installed module that the target lacks. Nothing is deleted: the
    /// new tree is built beside the old one, without them.
    pub removed: Vec<RelativePath>,
    /// The requests to the module's copy pack, coalesced.
    pub ranges: Vec<ByteRange>,
    /// The module's directories and their modes (applied once the tree is complete).
    pub(super) dirs: Vec<(RelativePath, FileMode)>,
    /// The module's symbolic links and their targets.
    pub(super) links: Vec<(RelativePath, LinkTarget)>,
    /// The module's copy pack, if the site has one.
    pub(super) copies: Option<Blob>,
}

/// Why a module is installed from its whole package.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PackageReason {
    /// The files to download would cost at least as much as the package.
    Cheaper,
    /// The site publishes no copy pack for the module.
    NoFileCopies,
    /// The caller asked for whole packages (`update --full`).
    Requested,
    /// Nothing is installed, so no file could be kept or patched.
    FreshInstall,
}

impl PackageReason {
    /// The reason as printed: `cheaper`, `no_file_copies`, `requested` or
    /// `fresh_install`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cheaper => "cheaper",
            Self::NoFileCopies => "no_file_copies",
            Self::Requested => "requested",
            Self::FreshInstall => "fresh_install",
        }
    }
}

/// One file of a module and how it is obtained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileUpdate {
    /// Path relative to the module's destination.
    pub path: RelativePath,
    /// Permission bits.
    pub mode: FileMode,
    /// Size of the content.
    pub size: u64,
    /// blake3 of the content.
    pub blake3: Blake3Hash,
    /// Size of the file's compressed copy in the module's copy pack.
    pub packed_size: u64,
    /// Where the content comes from.
    pub action: FileAction,
    /// Where the file's copy lies in the module's copy pack: the fallback of every
    /// other action.
    pub(super) slice: CopySlice,
    /// Where the pack holds the file, for [`FileAction::Patch`] and
    /// [`FileAction::Copy`].
    pub(super) data: Option<PackData>,
}

/// Where a file's content comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileAction {
    /// A local file already holds it.
    Keep,
    /// A patch in the delta pack, applied to local content.
    Patch {
        /// blake3 of the local content it applies to.
        base: Blake3Hash,
        /// How it is encoded.
        algorithm: PatchAlgorithm,
        /// Its size in the pack.
        size: u64,
    },
    /// The file's compressed copy, in the delta pack.
    Copy {
        /// Its size in the pack.
        size: u64,
    },
    /// The file's compressed copy, fetched as a range of the module's copy pack.
    Range,
}

impl FileAction {
    /// `keep`, `patch`, `copy` or `range`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Keep => "keep",
            Self::Patch { .. } => "patch",
            Self::Copy { .. } => "copy",
            Self::Range => "range",
        }
    }
}

impl FileUpdate {
    /// Bytes this file's action downloads: its share of the pack, or its copy.
    pub fn download_bytes(&self) -> u64 {
        match &self.action {
            FileAction::Keep => 0,
            FileAction::Patch { size, .. } | FileAction::Copy { size } => *size,
            FileAction::Range => self.packed_size,
        }
    }
}

impl ModuleUpdate {
    fn package(
        name: &ModuleName,
        module: &Module,
        reason: PackageReason,
        removed: Vec<RelativePath>,
    ) -> Self {
        Self {
            name: name.clone(),
            dest: module.dest.clone(),
            use_package: true,
            package_reason: Some(reason),
            package_bytes: module.package.size,
            download_bytes: module.package.size,
            files: Vec::new(),
            removed,
            ranges: Vec::new(),
            dirs: Vec::new(),
            links: Vec::new(),
            copies: module.copies.clone(),
        }
    }
}

/// The content on this machine: where each content hash of the installed release
/// trees lies, and the file indexes of the current release.
#[derive(Debug, Default)]
pub(crate) struct LocalFiles {
    paths: BTreeMap<Blake3Hash, Vec<PathBuf>>,
    pub(super) current: BTreeMap<ModuleName, FileIndex>,
}

impl LocalFiles {
    /// Reads the file indexes of every installed release tree still under
    /// `releases/` (the current one first, then the most recent first) through
    /// `index_of` (the install passes the index cache, so no network is needed for
    /// them). A module whose index cannot be had contributes nothing.
    pub(crate) fn gather(
        index_of: impl Fn(&IndexBlob) -> Option<FileIndex>,
        root: &InstallRoot,
        state: &State,
        current_dir: Option<&str>,
    ) -> Self {
        let mut releases: Vec<&InstalledRelease> = state.installed.iter().rev().collect();
        releases.sort_by_key(|release| Some(release.dir.as_str()) != current_dir);
        let mut local = Self::default();
        for release in releases {
            let tree = root.releases().join(&release.dir);
            if !tree.is_dir() {
                continue;
            }
            let is_current = Some(release.dir.as_str()) == current_dir;
            for (name, module) in &release.modules {
                let Some(index) = module.index.as_ref().and_then(&index_of) else {
                    continue;
                };
                local.add(&tree, module, &index);
                if is_current {
                    local.current.insert(name.clone(), index);
                }
            }
        }
        local
    }

    /// Records the files of `module`, whose index is `index`, in the tree `tree`.
    fn add(&mut self, tree: &Path, module: &InstalledModule, index: &FileIndex) {
        let prefix = join(tree, module.dest.as_ref());
        for entry in &index.entries {
            if let EntryKind::File { blake3, .. } = &entry.kind {
                self.paths
                    .entry(blake3.clone())
                    .or_default()
                    .push(join(&prefix, Some(&entry.path)));
            }
        }
    }

    fn available(&self) -> BTreeSet<&Blake3Hash> {
        self.paths.keys().collect()
    }

    pub(super) fn paths(&self, blake3: &Blake3Hash) -> &[PathBuf] {
        self.paths.get(blake3).map_or(&[], Vec::as_slice)
    }
}

/// `base` joined with a relative path, segment by segment.
pub(super) fn join(base: &Path, path: Option<&RelativePath>) -> PathBuf {
    path.iter()
        .flat_map(|path| path.segments())
        .fold(base.to_owned(), |path, segment| path.join(segment))
}

/// Plans how to obtain every module of `release` (directory `dir`, file indexes
/// `indexes`) from `local` and, when the update has one, the delta pack whose header
/// is `pack` (of `pack_size` bytes).
///
/// A module whose ranges would cost at least as much as its package takes the
/// package; so does one whose copy pack the site lacks, and every module when nothing
/// is installed or with `packages_only`. `index_bytes` is left at 0 for the caller to
/// fill in.
pub(crate) fn plan_release(
    indexes: &ReleaseIndexes,
    dir: &str,
    release: &PlatformRelease,
    local: &LocalFiles,
    pack: Option<(&PackHeader, u64)>,
    packages_only: bool,
) -> UpdatePlan {
    let available = local.available();
    let modules: Vec<ModuleUpdate> = release
        .modules
        .iter()
        .map(|(name, module)| {
            if packages_only {
                ModuleUpdate::package(name, module, PackageReason::Requested, Vec::new())
            } else if available.is_empty() && pack.is_none() {
                // Ranges of a whole tree cost as much as the package, or more.
                ModuleUpdate::package(name, module, PackageReason::FreshInstall, Vec::new())
            } else {
                plan_one(
                    name,
                    module,
                    indexes.index(name),
                    &available,
                    pack.and_then(|(header, _)| header.modules.get(name)),
                    local.current.get(name),
                )
            }
        })
        .collect();
    let pack = pack
        .filter(|_| !packages_only)
        .map(|(header, size)| PackUse {
            from: header.from.clone(),
            size,
        });
    let module_bytes: u64 = modules
        .iter()
        .map(|module| {
            if module.use_package {
                module.download_bytes
            } else {
                module.ranges.iter().map(|range| range.len()).sum()
            }
        })
        .sum();
    UpdatePlan {
        version: release.version.clone(),
        dir: dir.to_owned(),
        download_bytes: module_bytes + pack.as_ref().map_or(0, |pack| pack.size),
        package_bytes: modules.iter().map(|module| module.package_bytes).sum(),
        index_bytes: 0,
        pack,
        modules,
        image: None,
    }
}

fn plan_one(
    name: &ModuleName,
    module: &Module,
    index: &FileIndex,
    available: &BTreeSet<&Blake3Hash>,
    delta: Option<&wavecast_schema::ModuleDelta>,
    installed: Option<&FileIndex>,
) -> ModuleUpdate {
    let plan = plan_module(index, available, delta, installed, module.package.size);
    let removed: Vec<RelativePath> = plan.removed.iter().map(|path| (*path).clone()).collect();
    let needs_copies = plan
        .files
        .iter()
        .any(|step| matches!(step.source, FileSource::Range(_)));
    // A module without a copy pack can only fetch what it lacks as its package,
    // whatever the sizes say; name that reason first.
    if needs_copies && module.copies.is_none() {
        return ModuleUpdate::package(name, module, PackageReason::NoFileCopies, removed);
    }
    if plan.use_package {
        return ModuleUpdate::package(name, module, PackageReason::Cheaper, removed);
    }
    let layout = index.copy_layout();
    let files: Vec<FileUpdate> = plan
        .files
        .iter()
        .map(|step| {
            let slice = layout[step.blake3].clone();
            let (action, data) = match &step.source {
                FileSource::Keep => (FileAction::Keep, None),
                FileSource::Pack(
                    data @ PackData::Patch {
                        base,
                        algorithm,
                        length,
                        ..
                    },
                ) => (
                    FileAction::Patch {
                        base: base.clone(),
                        algorithm: *algorithm,
                        size: *length,
                    },
                    Some((*data).clone()),
                ),
                FileSource::Pack(data @ PackData::Copy { length, .. }) => {
                    (FileAction::Copy { size: *length }, Some((*data).clone()))
                }
                FileSource::Range(_) => (FileAction::Range, None),
            };
            FileUpdate {
                path: step.path.clone(),
                mode: step.mode,
                size: step.size,
                blake3: step.blake3.clone(),
                packed_size: slice.length,
                action,
                slice,
                data,
            }
        })
        .collect();
    let mut dirs = Vec::new();
    let mut links = Vec::new();
    for entry in &index.entries {
        match &entry.kind {
            EntryKind::Dir => dirs.push((entry.path.clone(), entry.mode)),
            EntryKind::Symlink { target } => links.push((entry.path.clone(), target.clone())),
            EntryKind::File { .. } => {}
        }
    }
    ModuleUpdate {
        name: name.clone(),
        dest: module.dest.clone(),
        use_package: false,
        package_reason: None,
        package_bytes: module.package.size,
        // Files of one content share their data in the pack: count each span once.
        download_bytes: files
            .iter()
            .filter_map(|file| file.data.as_ref().map(PackData::span))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .map(|(_, length)| length)
            .sum::<u64>()
            + plan.ranges.iter().map(|range| range.len()).sum::<u64>(),
        files,
        removed,
        ranges: plan.ranges,
        dirs,
        links,
        copies: module.copies.clone(),
    }
}
