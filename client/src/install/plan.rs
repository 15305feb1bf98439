//! Planning an install: what to keep, patch and fetch.
//!
//! [`LocalFiles`] records where each content hash of the installed release trees
//! lies on disk. [`plan_release`] takes the target's file indexes
//! ([`ReleaseIndexes`]) and asks [`wavecast_schema::plan_module`] how to obtain every
//! file of every module; the result is an [`UpdatePlan`], which `update --dry-run`
//! prints as it is, and which the assemble stage carries out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use semver::Version;
use wavecast_schema::{
    Blake3Hash, Blob, EntryKind, FileIndex, FileMode, FileSource, LinkTarget, Manifest, Module,
    ModuleName, Patch, Platform, PlatformRelease, RelativePath, plan_module,
};

use crate::install::tree::ReleaseIndexes;
use crate::store::current::release_dir_name;
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
    /// Bytes to download for the whole release (file indexes aside).
    pub download_bytes: u64,
    /// What downloading every module's package would cost instead.
    pub package_bytes: u64,
    /// Bytes received to fetch file indexes for this plan (0 when all were cached):
    /// the target's, which every install checks its tree against, and any of the
    /// installed releases the index cache lacked.
    pub index_bytes: u64,
}

/// How one module will be obtained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleUpdate {
    /// The module.
    pub name: ModuleName,
    /// Whether the whole package is downloaded and unpacked.
    pub use_package: bool,
    /// Why the package is used, when it is.
    pub package_reason: Option<PackageReason>,
    /// Size of the module's package.
    pub package_bytes: u64,
    /// Bytes to download for this module: the package's size when `use_package`, else
    /// the sum of the files' patches and copies.
    pub download_bytes: u64,
    /// Every file of the module and how it is obtained; empty when `use_package`.
    pub files: Vec<FileUpdate>,
    /// Paths of the installed module that the target lacks. Nothing is deleted: the
    /// new tree is built beside the old one, without them.
    pub removed: Vec<RelativePath>,
    /// The module's directories and their modes (applied once the tree is complete).
    pub(super) dirs: Vec<(RelativePath, FileMode)>,
    /// The module's symbolic links and their targets.
    pub(super) links: Vec<(RelativePath, LinkTarget)>,
}

/// Why a module is installed from its whole package.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PackageReason {
    /// The files to download would cost at least as much as the package.
    Cheaper,
    /// The site publishes no per-file copies (an older publisher).
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
    /// Size of the file's compressed copy on the site (0 when there is none).
    pub packed_size: u64,
    /// Where the content comes from.
    pub action: FileAction,
}

/// Where a file's content comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileAction {
    /// A local file already holds it.
    Keep,
    /// This patch, applied to a local file.
    Patch(Patch),
    /// The file's compressed copy.
    Download,
}

impl FileAction {
    /// `keep`, `patch` or `download`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Keep => "keep",
            Self::Patch(_) => "patch",
            Self::Download => "download",
        }
    }
}

impl FileUpdate {
    /// Bytes this file's action downloads.
    pub fn download_bytes(&self) -> u64 {
        match &self.action {
            FileAction::Keep => 0,
            FileAction::Patch(patch) => patch.size,
            FileAction::Download => self.packed_size,
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
            use_package: true,
            package_reason: Some(reason),
            package_bytes: module.package.size,
            download_bytes: module.package.size,
            files: Vec::new(),
            removed,
            dirs: Vec::new(),
            links: Vec::new(),
        }
    }
}

/// The content on this machine: where each content hash of the installed release
/// trees lies, and the file indexes of the current release.
#[derive(Debug, Default)]
pub(crate) struct LocalFiles {
    paths: BTreeMap<Blake3Hash, Vec<PathBuf>>,
    current: BTreeMap<ModuleName, FileIndex>,
}

impl LocalFiles {
    /// Reads the file indexes of every installed release tree still under
    /// `releases/` (the current one first, then the most recent first) through
    /// `index_of` (the install passes the index cache, so no network is needed for
    /// them). A release's modules come from its state record, or else from
    /// `manifest` when it still lists that release (states written before modules
    /// were recorded). A module whose index cannot be had contributes nothing.
    pub(crate) fn gather(
        index_of: impl Fn(&ModuleName, &Blob) -> Option<FileIndex>,
        root: &InstallRoot,
        state: &State,
        current_dir: Option<&str>,
        manifest: &Manifest,
        platform: &Platform,
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
            for (name, module) in installed_modules(release, manifest, platform) {
                let Some(index) = index_of(&name, &module.file_index) else {
                    continue;
                };
                let prefix = join(&tree, module.dest.as_ref());
                for entry in &index.entries {
                    if let EntryKind::File { blake3, .. } = &entry.kind {
                        local
                            .paths
                            .entry(blake3.clone())
                            .or_default()
                            .push(join(&prefix, Some(&entry.path)));
                    }
                }
                if is_current {
                    local.current.insert(name, index);
                }
            }
        }
        local
    }

    fn available(&self) -> BTreeSet<&Blake3Hash> {
        self.paths.keys().collect()
    }

    pub(super) fn paths(&self, blake3: &Blake3Hash) -> &[PathBuf] {
        self.paths.get(blake3).map_or(&[], Vec::as_slice)
    }
}

/// The modules of an installed release: from its state record, or from `manifest`
/// when the record has none and the manifest still lists exactly that tree.
fn installed_modules(
    release: &InstalledRelease,
    manifest: &Manifest,
    platform: &Platform,
) -> BTreeMap<ModuleName, InstalledModule> {
    if !release.modules.is_empty() {
        return release.modules.clone();
    }
    manifest
        .release(&release.version)
        .and_then(|listed| listed.for_platform(platform))
        .filter(|modules| release_dir_name(&release.version, modules) == release.dir)
        .map(|modules| {
            modules
                .modules
                .iter()
                .map(|(name, module)| (name.clone(), InstalledModule::from(module)))
                .collect()
        })
        .unwrap_or_default()
}

/// `base` joined with a relative path, segment by segment.
pub(super) fn join(base: &Path, path: Option<&RelativePath>) -> PathBuf {
    path.iter()
        .flat_map(|path| path.segments())
        .fold(base.to_owned(), |path, segment| path.join(segment))
}

/// Plans how to obtain every module of `release` (version `version`, directory
/// `dir`, file indexes `indexes`) from `local`.
///
/// A module whose files would cost at least as much as its package takes the
/// package; so does one that needs a file copy the site does not publish, and every
/// module when nothing is installed or with `packages_only`. `index_bytes` is left
/// at 0 for the caller to fill in.
pub(crate) fn plan_release(
    indexes: &ReleaseIndexes,
    version: &Version,
    dir: &str,
    release: &PlatformRelease,
    local: &LocalFiles,
    packages_only: bool,
) -> UpdatePlan {
    let available = local.available();
    let modules: Vec<ModuleUpdate> = release
        .modules
        .iter()
        .map(|(name, module)| {
            if packages_only {
                ModuleUpdate::package(name, module, PackageReason::Requested, Vec::new())
            } else if available.is_empty() {
                // Per-file copies of a whole tree cost a request each, and the
                // planner would pick the package anyway (`REQUEST_COST`).
                ModuleUpdate::package(name, module, PackageReason::FreshInstall, Vec::new())
            } else {
                plan_one(
                    name,
                    module,
                    indexes.index(name),
                    &available,
                    local.current.get(name),
                )
            }
        })
        .collect();
    UpdatePlan {
        version: version.clone(),
        dir: dir.to_owned(),
        download_bytes: modules.iter().map(|module| module.download_bytes).sum(),
        package_bytes: modules.iter().map(|module| module.package_bytes).sum(),
        index_bytes: 0,
        modules,
    }
}

fn plan_one(
    name: &ModuleName,
    module: &Module,
    index: &FileIndex,
    available: &BTreeSet<&Blake3Hash>,
    installed: Option<&FileIndex>,
) -> ModuleUpdate {
    let plan = plan_module(index, available, installed, module.package.size);
    let removed: Vec<RelativePath> = plan.removed.iter().map(|path| (*path).clone()).collect();
    let no_copies = plan
        .files
        .iter()
        .any(|step| step.size > 0 && step.source == FileSource::Download { packed_size: 0 });
    // An index without file copies (an older publisher) can only be served by the
    // package, whatever the sizes say; name that reason first.
    if no_copies {
        return ModuleUpdate::package(name, module, PackageReason::NoFileCopies, removed);
    }
    if plan.use_package {
        return ModuleUpdate::package(name, module, PackageReason::Cheaper, removed);
    }
    // `plan.files` lists the index's files in index order.
    let packed_sizes = index.entries.iter().filter_map(|entry| match entry.kind {
        EntryKind::File { packed_size, .. } => Some(packed_size),
        EntryKind::Dir | EntryKind::Symlink { .. } => None,
    });
    let files = plan
        .files
        .iter()
        .zip(packed_sizes)
        .map(|(step, packed_size)| FileUpdate {
            path: step.path.clone(),
            mode: step.mode,
            size: step.size,
            blake3: step.blake3.clone(),
            packed_size,
            action: match &step.source {
                FileSource::Keep => FileAction::Keep,
                FileSource::Patch(patch) => FileAction::Patch((*patch).clone()),
                FileSource::Download { .. } => FileAction::Download,
            },
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
        use_package: false,
        package_reason: None,
        package_bytes: module.package.size,
        download_bytes: plan.download_bytes,
        files,
        removed,
        dirs,
        links,
    }
}
