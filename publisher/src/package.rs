//! Deterministic module packages and their file indexes.
//!
//! A package is a tar of one module's tree with entries in sorted order, a fixed
//! modification time, owner 0:0 and the permission bits of each file kept, compressed
//! as [`PackageCompression`] says (tar.zst by default, tar.gz on request), so the same
//! tree always produces the same bytes and the same blake3. Regular files, directories
//! and symbolic links are packaged (links as they are, never followed, whatever they
//! point to); the names of a hard-linked file become files of their own; anything
//! else in the release folder (devices, fifos, sockets) is an error.
//!
//! Each file is read once: its bytes are hashed, written to the tar and handed to a
//! [`ContentSink`], which for a publish is [`crate::copies::FileCopies`]: every
//! distinct content gets a zstd copy for the module's copy pack, whose size becomes
//! the file's `packed_size` in the index.
//!
//! An image module ([`ModuleKind::Image`], `--image NAME=FILE`) is one file, installed
//! by clients into alternating slots rather than a release tree. It gets no tar:
//! its package is its zstd copy, made like every file copy, and its file index lists
//! that one file (so delta packs patch it from earlier images as any file).

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use flate2::Compression;
use flate2::write::GzEncoder;
use wavecast_schema::{
    Blake3Hash, EntryKind, FileIndex, FileMode, IndexEntry, LinkTarget, MAX_PACKAGE_WINDOW_LOG,
    ModuleKind, ModuleName, PackageFormat, RelativePath,
};

use crate::error::{Error, Result};
use crate::{platform, pool};

/// How a tree's package is compressed: the format and its level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackageCompression {
    /// tar.zst or tar.gz.
    pub format: PackageFormat,
    /// The level: gzip's 0 to 9, or zstd's 1 to [`MAX_ZSTD_LEVEL`]; `None` for the
    /// format's default for the tree's size ([`PackageCompression::level_for`]).
    pub level: Option<u32>,
}

/// The default gzip level of a tar.gz package, gzip's own default.
pub const DEFAULT_GZ_LEVEL: u32 = 6;

/// The default zstd level of the tar.zst package of a tree of up to [`LARGE_TREE`]
/// bytes of files, with a window as large as the tar (up to 2^[`MAX_PACKAGE_WINDOW_LOG`]) and
/// long-distance matching. A fresh install downloads the package, and it is
/// compressed once per release: on typescript 5.9.3 it is 2.07 MB against 2.82 MB
/// for `zstd -19` with zstd's default window and 4.40 MB for tar.gz, in about 30 s
/// of CPU. esbuild's one large binary needs 19 to come within 2 % of `zstd -19`.
pub const DEFAULT_ZSTD_LEVEL: u32 = 19;

/// Past this many bytes of files, a tree's tar.zst package gets [`LARGE_ZSTD_LEVEL`]
/// by default. Level 19 costs about 0.6 s of CPU per MB (40 times gzip's 6): a
/// minute of CPU at 64 MiB, several minutes for a large application.
pub const LARGE_TREE: u64 = 64 << 20;

/// The default zstd level of the tar.zst package of a tree over [`LARGE_TREE`]:
/// with the same window, about 5 CPU-seconds for 240 MB, so that a publish, which
/// also compresses each file's copy, takes no longer than `tar czf` of the tree. On
/// real trees it stays well under tar.gz (typescript 2.52 MB, git 8.80 MB against
/// 4.40 and 20.7 MB), a fifth to a third larger than level 19 (2.06 and 6.60 MB).
pub const LARGE_ZSTD_LEVEL: u32 = 9;

/// The highest zstd level offered. zstd's `--ultra` levels above it ask clients for
/// far more memory to decompress, for a few percent.
pub const MAX_ZSTD_LEVEL: u32 = 19;

impl PackageCompression {
    /// `format` at its default level for each package's size.
    pub fn new(format: PackageFormat) -> Self {
        Self {
            format,
            level: None,
        }
    }

    /// The level the package of a tree whose files total `tree_size` bytes is
    /// compressed at: the one set, or gzip's 6, or zstd's 19 up to [`LARGE_TREE`]
    /// and [`LARGE_ZSTD_LEVEL`] above. It depends on the tree only, so the same
    /// tree still gives the same package.
    pub fn level_for(self, tree_size: u64) -> u32 {
        self.level.unwrap_or(match self.format {
            PackageFormat::TarGz => DEFAULT_GZ_LEVEL,
            PackageFormat::TarZst if tree_size <= LARGE_TREE => DEFAULT_ZSTD_LEVEL,
            PackageFormat::TarZst => LARGE_ZSTD_LEVEL,
        })
    }

    /// Checks a set level against the format's range.
    ///
    /// # Errors
    ///
    /// [`Error::CompressionLevel`] outside 0 to 9 for gzip or 1 to [`MAX_ZSTD_LEVEL`]
    /// for zstd.
    pub fn check(self) -> Result<Self> {
        let range = match self.format {
            PackageFormat::TarGz => 0..=9,
            PackageFormat::TarZst => 1..=MAX_ZSTD_LEVEL,
        };
        match self.level {
            Some(level) if !range.contains(&level) => Err(Error::CompressionLevel {
                format: self.format,
                level,
                min: *range.start(),
                max: *range.end(),
            }),
            _ => Ok(self),
        }
    }
}

impl Default for PackageCompression {
    /// tar.zst at its default level for each package's size.
    fn default() -> Self {
        Self::new(PackageFormat::TarZst)
    }
}

/// Which part of the release folder forms a module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleSpec {
    /// The module's name.
    pub name: ModuleName,
    /// For a tree, the subfolder of the release folder it packages, installed at the
    /// same place in the release tree, or `None` for the whole folder. For an image,
    /// the image file (always set).
    pub dir: Option<RelativePath>,
    /// Whether the module is a tree or an image.
    pub kind: ModuleKind,
}

impl ModuleSpec {
    /// The default layout: the whole release folder as one module named `app`.
    pub fn whole_folder() -> Self {
        Self {
            name: "app".parse().expect("`app` is a valid module name"),
            dir: None,
            kind: ModuleKind::Tree,
        }
    }

    /// Parses `NAME=FILE`: an image module made of the file `FILE` of the release
    /// folder (`--image`).
    ///
    /// # Errors
    ///
    /// A description of the problem, for an error message.
    pub fn image(text: &str) -> std::result::Result<Self, String> {
        let spec: Self = text
            .parse()
            .map_err(|_: String| format!("expected NAME=FILE, got `{text}`"))?;
        if spec.dir.is_none() {
            return Err(format!(
                "expected NAME=FILE with FILE inside the release folder, got `{text}`"
            ));
        }
        Ok(Self {
            kind: ModuleKind::Image,
            ..spec
        })
    }
}

impl std::str::FromStr for ModuleSpec {
    type Err = String;

    /// Parses `NAME=SUBDIR` (or `NAME=.` for the whole folder).
    fn from_str(text: &str) -> std::result::Result<Self, String> {
        let (name, dir) = text
            .split_once('=')
            .ok_or_else(|| format!("expected NAME=SUBDIR, got `{text}`"))?;
        let name = name
            .parse()
            .map_err(|error: wavecast_schema::Error| error.to_string())?;
        let dir = dir.trim_end_matches('/');
        let dir = match dir {
            "." | "" => None,
            dir => Some(
                dir.parse()
                    .map_err(|error: wavecast_schema::Error| error.to_string())?,
            ),
        };
        Ok(Self {
            name,
            dir,
            kind: ModuleKind::Tree,
        })
    }
}

/// A packaged module, ready to upload.
#[derive(Debug)]
pub struct BuiltModule {
    /// The module's name.
    pub name: ModuleName,
    /// Where it installs inside the release tree (for an image, the image file's
    /// path in the release folder).
    pub dest: Option<RelativePath>,
    /// The folder its index's paths are relative to: the module's folder, or the
    /// folder holding the image.
    pub root: PathBuf,
    /// Its package.
    pub package: BuiltPackage,
    /// The module's file index. Its `packed_size`s are zero until
    /// [`crate::copies::FileCopies::fill_packed_sizes`] sets them.
    pub index: FileIndex,
    /// Number of regular files.
    pub files: usize,
    /// Number of symbolic links.
    pub links: usize,
    /// Symbolic links whose target leaves the release tree (absolute, or climbing
    /// above its root with `..`): paths in the release tree, and targets. Clients
    /// create them as they are, so they resolve on each client's machine.
    pub outside_links: Vec<(RelativePath, LinkTarget)>,
    /// Paths (in the release tree) of files that have other names too (hard links):
    /// each name is packaged as a file of its own.
    pub hard_links: Vec<RelativePath>,
    /// Total size of the files.
    pub unpacked_size: u64,
    /// Time spent packaging.
    pub elapsed: Duration,
}

/// The package of a [`BuiltModule`].
#[derive(Debug)]
pub enum BuiltPackage {
    /// A tree's deterministic tar, compressed.
    Tar {
        /// How it is compressed.
        format: PackageFormat,
        /// At which level (see [`PackageCompression::level_for`]).
        level: u32,
        /// The package, deleted when this value is dropped.
        file: tempfile::TempPath,
        /// Its size.
        size: u64,
        /// Its blake3.
        blake3: Blake3Hash,
    },
    /// An image: the package is the image's zstd copy, stored at `blobs/<blake3>.zst`
    /// once the copies are made.
    Image {
        /// blake3 of the image.
        content: Blake3Hash,
    },
}

impl BuiltModule {
    /// Whether the module is a tree or an image.
    pub fn kind(&self) -> ModuleKind {
        match self.package {
            BuiltPackage::Tar { .. } => ModuleKind::Tree,
            BuiltPackage::Image { .. } => ModuleKind::Image,
        }
    }
}

/// Receives progress while publishing: packaging, then the patches the delta packs
/// carry, built on worker threads. Every method has a no-op default.
pub trait PackReporter: Sync {
    /// `bytes` more bytes of file content were packaged.
    fn on_bytes(&self, _bytes: u64) {}

    /// A patch between an earlier release's file and a new one was queued; `bytes` is
    /// the two files' size, a measure of its work.
    fn on_patch_queued(&self, _bytes: u64) {}

    /// One try at a queued patch (each algorithm is one) finished; `bytes` is its
    /// share of the patch's work.
    fn on_patch_done(&self, _bytes: u64) {}
}

/// A [`PackReporter`] that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl PackReporter for NoProgress {}

/// Receives the content of every file as it is packaged.
pub trait ContentSink: Sync {
    /// The file at `path` (relative to the module) has `content`, hashing to `hash`.
    fn file(&self, path: &RelativePath, hash: &Blake3Hash, content: Vec<u8>);
}

/// A [`ContentSink`] that drops everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCopies;

impl ContentSink for NoCopies {
    fn file(&self, _path: &RelativePath, _hash: &Blake3Hash, _content: Vec<u8>) {}
}

/// One entry of the release folder, found by [`scan`].
#[derive(Debug)]
struct FoundEntry {
    /// Path relative to the module folder.
    relative: RelativePath,
    /// Path on disk.
    local: PathBuf,
    kind: FoundKind,
    mode: FileMode,
}

/// What a [`FoundEntry`] is.
#[derive(Debug)]
enum FoundKind {
    Dir,
    File {
        size: u64,
        /// The file has other names (a hard link count above one).
        hard_linked: bool,
    },
    Symlink(LinkTarget),
}

/// Lists a module folder depth-first in byte order of names, without following
/// symbolic links, refusing anything that is not a regular file, a directory or a
/// symbolic link.
/// The entries under `root`, in name order. Two paths that differ only in case are
/// refused ([`Error::CaseCollision`]): a release is one tree on every platform.
fn scan(root: &Path) -> Result<Vec<FoundEntry>> {
    let mut found = Vec::new();
    scan_into(root, None, &mut found)?;
    let mut folded: std::collections::HashMap<String, &RelativePath> =
        std::collections::HashMap::new();
    for entry in &found {
        let key = entry.relative.as_str().to_lowercase();
        if let Some(first) = folded.insert(key, &entry.relative) {
            return Err(Error::CaseCollision {
                first: first.to_string(),
                second: entry.relative.to_string(),
            });
        }
    }
    Ok(found)
}

fn scan_into(dir: &Path, prefix: Option<&str>, found: &mut Vec<FoundEntry>) -> Result<()> {
    let read_error = |source| Error::Read {
        path: dir.to_owned(),
        source,
    };
    let mut children: Vec<_> = fs_err::read_dir(dir)
        .map_err(read_error)?
        .collect::<io::Result<_>>()
        .map_err(read_error)?;
    children.sort_by_key(|child| child.file_name());
    for child in children {
        let local = child.path();
        let name = child
            .file_name()
            .into_string()
            .map_err(|_| Error::UnsupportedEntry {
                path: local.clone(),
                reason: "its name is not valid UTF-8",
            })?;
        let relative_text = match prefix {
            Some(prefix) => format!("{prefix}/{name}"),
            None => name,
        };
        let relative: RelativePath =
            relative_text.parse().map_err(|_| Error::UnsupportedEntry {
                path: local.clone(),
                reason: "its name contains a backslash or control character",
            })?;
        let metadata = fs_err::symlink_metadata(&local).map_err(|source| Error::Read {
            path: local.clone(),
            source,
        })?;
        let file_type = metadata.file_type();
        let mode = platform::mode_of(&metadata);
        let kind = if file_type.is_dir() {
            FoundKind::Dir
        } else if file_type.is_file() {
            FoundKind::File {
                size: metadata.len(),
                hard_linked: platform::is_hard_linked(&metadata),
            }
        } else if file_type.is_symlink() {
            FoundKind::Symlink(read_link_target(&local)?)
        } else {
            return Err(Error::UnsupportedEntry {
                path: local,
                reason: "it is not a regular file, a directory or a symbolic link",
            });
        };
        let is_dir = matches!(kind, FoundKind::Dir);
        found.push(FoundEntry {
            relative,
            local: local.clone(),
            kind,
            mode,
        });
        if is_dir {
            scan_into(&local, Some(&relative_text), found)?;
        }
    }
    Ok(())
}

/// The target of the symbolic link at `local`, as the link holds it.
fn read_link_target(local: &Path) -> Result<LinkTarget> {
    let target = fs_err::read_link(local).map_err(|source| Error::Read {
        path: local.to_owned(),
        source,
    })?;
    let text = target
        .into_os_string()
        .into_string()
        .map_err(|_| Error::UnsupportedEntry {
            path: local.to_owned(),
            reason: "it is a symbolic link whose target is not valid UTF-8",
        })?;
    text.parse().map_err(|_| Error::UnsupportedEntry {
        path: local.to_owned(),
        reason: "it is a symbolic link whose target holds a backslash or control character, or is over 4095 bytes",
    })
}

/// A writer that hashes and counts what passes through it.
struct HashingWriter<W> {
    inner: W,
    hasher: blake3::Hasher,
    written: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.hasher.update(&buf[..written]);
        self.written += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The compressing writer a package's tar goes through.
enum Compressor<W: Write> {
    Gz(GzEncoder<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> Compressor<W> {
    /// A compressor at `level` for a tar of at most `tar_size` bytes.
    ///
    /// zstd runs multithreaded with at least one worker: zstd's output then depends on
    /// the level and window but not on the number of workers (a test checks it), so
    /// the package's hash is the same on any machine. The window covers the whole tar
    /// up to 2^[`MAX_PACKAGE_WINDOW_LOG`], never more, so that a client needs no more
    /// memory than the package unpacks to, nor more than 128 MiB.
    fn new(
        inner: W,
        format: PackageFormat,
        level: u32,
        tar_size: u64,
        workers: usize,
    ) -> io::Result<Self> {
        Ok(match format {
            PackageFormat::TarGz => Self::Gz(GzEncoder::new(inner, Compression::new(level))),
            PackageFormat::TarZst => {
                let level = i32::try_from(level).unwrap_or(i32::MAX);
                let mut encoder = zstd::stream::write::Encoder::new(inner, level)?;
                encoder.long_distance_matching(true)?;
                encoder.window_log(window_log(tar_size))?;
                encoder.multithread(u32::try_from(workers.max(1)).unwrap_or(1))?;
                Self::Zstd(encoder)
            }
        })
    }

    /// Ends the stream, returning the writer.
    fn finish(self) -> io::Result<W> {
        match self {
            Self::Gz(encoder) => encoder.finish(),
            Self::Zstd(encoder) => encoder.finish(),
        }
    }
}

impl<W: Write> Write for Compressor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Gz(encoder) => encoder.write(buf),
            Self::Zstd(encoder) => encoder.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Gz(encoder) => encoder.flush(),
            Self::Zstd(encoder) => encoder.flush(),
        }
    }
}

/// The zstd window (its log) for a tar of at most `tar_size` bytes: the smallest
/// power of two that holds it, from zstd's minimum up to
/// [`MAX_PACKAGE_WINDOW_LOG`].
fn window_log(tar_size: u64) -> u32 {
    const MIN_WINDOW_LOG: u32 = 10;
    let needed = u64::BITS - tar_size.saturating_sub(1).leading_zeros();
    needed.clamp(MIN_WINDOW_LOG, MAX_PACKAGE_WINDOW_LOG)
}

/// At least the size of the tar of `entries`: each entry's data padded to a block,
/// and per entry a header plus room for GNU long-name and long-link records.
fn tar_size_bound(entries: &[FoundEntry]) -> u64 {
    const BLOCK: u64 = 512;
    let entries_size: u64 = entries
        .iter()
        .map(|entry| {
            let data = match &entry.kind {
                FoundKind::File { size, .. } => size.div_ceil(BLOCK) * BLOCK,
                FoundKind::Symlink(target) => 2 * BLOCK + target.as_str().len() as u64,
                FoundKind::Dir => 0,
            };
            3 * BLOCK + entry.relative.as_str().len() as u64 + data
        })
        .sum();
    // The two zero blocks that end the archive, and tar's padding to a record.
    entries_size + 2 * BLOCK + 20 * BLOCK
}

/// Packages the module `spec` of `release_dir` as a deterministic tar, compressed as
/// `compression` says, in a temporary file inside `temp_dir`, with its file index.
pub fn build_module(
    release_dir: &Path,
    spec: &ModuleSpec,
    compression: PackageCompression,
    temp_dir: &Path,
    reporter: &dyn PackReporter,
    sink: &dyn ContentSink,
) -> Result<BuiltModule> {
    let started = Instant::now();
    let root = match &spec.dir {
        Some(dir) => dir
            .segments()
            .fold(release_dir.to_owned(), |path, segment| path.join(segment)),
        None => release_dir.to_owned(),
    };
    // The module's folder itself is never followed as a link: the client installs
    // a directory there, and the tree must be what the folder holds.
    let root_is_link = spec.dir.is_some()
        && fs_err::symlink_metadata(&root).is_ok_and(|metadata| metadata.is_symlink());
    if root_is_link || !root.is_dir() {
        return Err(Error::ModuleLayout(format!(
            "module `{}` expects the folder `{}`, which {}",
            spec.name,
            root.display(),
            if root_is_link {
                "is a symbolic link; name the folder it points to instead"
            } else {
                "does not exist"
            }
        )));
    }
    let entries = scan(&root)?;
    let in_release = |relative: &RelativePath| match &spec.dir {
        Some(dir) => dir
            .join(relative)
            .expect("a path found under a module folder fits a relative path"),
        None => relative.clone(),
    };

    let temp = tempfile::Builder::new()
        .prefix(".wavecast-package-")
        .tempfile_in(temp_dir)
        .map_err(|source| Error::Write {
            path: temp_dir.to_owned(),
            source,
        })?;
    let temp_path = temp.path().to_owned();
    let write_error = |source| Error::Write {
        path: temp_path.clone(),
        source,
    };
    let (file, package) = temp.into_parts();
    let hashing = HashingWriter {
        inner: BufWriter::with_capacity(1 << 20, file),
        hasher: blake3::Hasher::new(),
        written: 0,
    };
    let tree_size = entries
        .iter()
        .map(|entry| match entry.kind {
            FoundKind::File { size, .. } => size,
            FoundKind::Dir | FoundKind::Symlink(_) => 0,
        })
        .sum();
    let level = compression.level_for(tree_size);
    let compressor = Compressor::new(
        hashing,
        compression.format,
        level,
        tar_size_bound(&entries),
        pool::workers(),
    )
    .map_err(write_error)?;
    let mut archive = tar::Builder::new(compressor);
    let mut index_entries = Vec::with_capacity(entries.len());
    let (mut files, mut links, mut unpacked_size) = (0usize, 0usize, 0u64);
    let (mut outside_links, mut hard_links) = (Vec::new(), Vec::new());

    for entry in entries {
        let mut header = tar::Header::new_gnu();
        header.set_mode(entry.mode.bits());
        header.set_mtime(DETERMINISTIC_MTIME);
        header.set_uid(0);
        header.set_gid(0);
        let kind = match entry.kind {
            FoundKind::Dir => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_size(0);
                archive
                    .append_data(&mut header, format!("{}/", entry.relative), io::empty())
                    .map_err(write_error)?;
                EntryKind::Dir
            }
            FoundKind::Symlink(target) => {
                // A link's own permission bits mean nothing on Unix: one value for all.
                header.set_mode(LINK_MODE.bits());
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_size(0);
                archive
                    .append_link(&mut header, entry.relative.as_str(), target.as_str())
                    .map_err(write_error)?;
                links += 1;
                let in_release = in_release(&entry.relative);
                if !target.stays_within(&in_release) {
                    outside_links.push((in_release, target.clone()));
                }
                index_entries.push(IndexEntry {
                    path: entry.relative,
                    kind: EntryKind::Symlink { target },
                    mode: LINK_MODE,
                });
                continue;
            }
            FoundKind::File { size, hard_linked } => {
                let content = fs_err::read(&entry.local).map_err(|source| Error::Read {
                    path: entry.local.clone(),
                    source,
                })?;
                if content.len() as u64 != size {
                    return Err(Error::FileChanged { path: entry.local });
                }
                reporter.on_bytes(size);
                let hash = Blake3Hash::of(&content);
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(size);
                archive
                    .append_data(&mut header, entry.relative.as_str(), content.as_slice())
                    .map_err(write_error)?;
                sink.file(&entry.relative, &hash, content);
                files += 1;
                unpacked_size += size;
                if hard_linked {
                    hard_links.push(in_release(&entry.relative));
                }
                EntryKind::File {
                    size,
                    blake3: hash,
                    // Set from the file copies once they are compressed.
                    packed_size: 0,
                }
            }
        };
        index_entries.push(IndexEntry {
            path: entry.relative,
            kind,
            mode: entry.mode,
        });
    }

    let mut hashing = archive
        .into_inner()
        .and_then(Compressor::finish)
        .map_err(write_error)?;
    hashing.flush().map_err(write_error)?;
    Ok(BuiltModule {
        name: spec.name.clone(),
        dest: spec.dir.clone(),
        root,
        package: BuiltPackage::Tar {
            format: compression.format,
            level,
            file: package,
            size: hashing.written,
            blake3: hashing.hasher.finalize().into(),
        },
        index: FileIndex::new(index_entries),
        files,
        links,
        outside_links,
        hard_links,
        unpacked_size,
        elapsed: started.elapsed(),
    })
}

/// Reads the image module `spec` (one regular file of `release_dir`), hands its
/// content to `sink` (which makes its zstd copy, the module's package) and indexes it
/// under its file name.
///
/// The image is held in memory while it is hashed and compressed.
pub fn build_image(
    release_dir: &Path,
    spec: &ModuleSpec,
    reporter: &dyn PackReporter,
    sink: &dyn ContentSink,
) -> Result<BuiltModule> {
    let started = Instant::now();
    let file = spec.dir.as_ref().ok_or_else(|| {
        Error::ModuleLayout(format!("image module `{}` names no file", spec.name))
    })?;
    let local = file
        .segments()
        .fold(release_dir.to_owned(), |path, segment| path.join(segment));
    let metadata = fs_err::symlink_metadata(&local).map_err(|source| Error::Read {
        path: local.clone(),
        source,
    })?;
    if !metadata.is_file() {
        return Err(Error::ModuleLayout(format!(
            "image module `{}` expects `{}` to be a regular file",
            spec.name,
            local.display()
        )));
    }
    let content = fs_err::read(&local).map_err(|source| Error::Read {
        path: local.clone(),
        source,
    })?;
    if content.len() as u64 != metadata.len() {
        return Err(Error::FileChanged { path: local });
    }
    let size = metadata.len();
    reporter.on_bytes(size);
    let hash = Blake3Hash::of(&content);
    let name: RelativePath = file
        .segments()
        .last()
        .unwrap_or(file.as_str())
        .parse()
        .expect("a segment of a valid relative path is one");
    sink.file(&name, &hash, content);
    let root = local
        .parent()
        .map_or_else(|| release_dir.to_owned(), Path::to_owned);
    Ok(BuiltModule {
        name: spec.name.clone(),
        dest: spec.dir.clone(),
        root,
        package: BuiltPackage::Image {
            content: hash.clone(),
        },
        index: FileIndex::new(vec![IndexEntry {
            path: name,
            kind: EntryKind::File {
                size,
                blake3: hash,
                packed_size: 0,
            },
            mode: platform::mode_of(&metadata),
        }]),
        files: 1,
        links: 0,
        outside_links: Vec::new(),
        hard_links: Vec::new(),
        unpacked_size: size,
        elapsed: started.elapsed(),
    })
}

/// The modification time stored for every entry: tar's own deterministic timestamp
/// (2006-07-23), since some tools mishandle zero.
const DETERMINISTIC_MTIME: u64 = 1_153_704_088;

/// The mode recorded for every symbolic link, what `ls -l` shows for one on Linux.
const LINK_MODE: FileMode = FileMode::from_permissions(0o777);

/// Checks that module folders do not overlap and that, when modules are split, every
/// file of the release folder belongs to exactly one of them.
pub fn check_layout(release_dir: &Path, specs: &[ModuleSpec]) -> Result<()> {
    for (i, a) in specs.iter().enumerate() {
        for b in &specs[i + 1..] {
            if a.name == b.name {
                return Err(Error::ModuleLayout(format!(
                    "module `{}` is named twice",
                    a.name
                )));
            }
            let overlap = match (&a.dir, &b.dir) {
                (Some(x), Some(y)) => x.is_within(y) || y.is_within(x),
                _ => true,
            };
            if overlap {
                return Err(Error::ModuleLayout(format!(
                    "modules `{}` and `{}` cover overlapping folders",
                    a.name, b.name
                )));
            }
        }
    }
    if specs.iter().any(|spec| spec.dir.is_none()) {
        return Ok(());
    }
    let stray: Vec<String> = scan(release_dir)?
        .into_iter()
        .filter(|entry| {
            !specs.iter().any(|spec| {
                let dir = spec
                    .dir
                    .as_ref()
                    .expect("checked above: every module has a folder");
                entry.relative.is_within(dir)
                    || (matches!(entry.kind, FoundKind::Dir) && dir.is_within(&entry.relative))
            })
        })
        .map(|entry| entry.relative.to_string())
        .take(5)
        .collect();
    if stray.is_empty() {
        Ok(())
    } else {
        Err(Error::ModuleLayout(format!(
            "these entries belong to no module: {} (add a module for them, e.g. --module rest=DIR)",
            stray.join(", ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::sync::Mutex;

    fn tree(root: &Path) {
        fs_err::create_dir_all(root.join("bin")).unwrap();
        fs_err::create_dir_all(root.join("share/empty")).unwrap();
        fs_err::write(root.join("bin/app"), b"#!/bin/sh\necho hi\n").unwrap();
        fs_err::set_permissions(root.join("bin/app"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        fs_err::write(root.join("share/data.txt"), vec![b'x'; 10_000]).unwrap();
        fs_err::write(root.join("README"), b"readme").unwrap();
    }

    /// Packages all of `release` as the module `app` in the default format, with
    /// temporary files in `work`.
    fn build_whole(release: &Path, work: &Path) -> Result<BuiltModule> {
        build_module(
            release,
            &ModuleSpec::whole_folder(),
            PackageCompression::default(),
            work,
            &NoProgress,
            &NoCopies,
        )
    }

    /// The tar inside the package `file` of `format`.
    fn archive(file: &Path, format: PackageFormat) -> tar::Archive<Box<dyn io::Read>> {
        let file = std::fs::File::open(file).unwrap();
        tar::Archive::new(match format {
            PackageFormat::TarGz => Box::new(flate2::read::GzDecoder::new(file)),
            PackageFormat::TarZst => Box::new(zstd::stream::read::Decoder::new(file).unwrap()),
        })
    }

    #[test]
    fn two_paths_that_differ_only_in_case_are_refused() {
        let work = tempfile::tempdir().unwrap();
        let release = work.path().join("release");
        tree(&release);
        fs_err::write(release.join("bin/App"), b"another").unwrap();
        let error = build_whole(&release, work.path()).unwrap_err();
        assert!(
            matches!(&error, Error::CaseCollision { first, second }
                if first == "bin/App" && second == "bin/app"),
            "{error:?}"
        );
        // Folders too: `Share/x` beside `share/`.
        fs_err::remove_file(release.join("bin/App")).unwrap();
        fs_err::create_dir_all(release.join("Share")).unwrap();
        assert!(matches!(
            build_whole(&release, work.path()).unwrap_err(),
            Error::CaseCollision { .. }
        ));
    }

    #[test]
    fn the_same_tree_always_gives_the_same_package() {
        let work = tempfile::tempdir().unwrap();
        let (a, b) = (work.path().join("a"), work.path().join("b"));
        tree(&a);
        tree(&b);
        // Different mtimes and creation order must not matter.
        fs_err::write(b.join("README"), b"readme").unwrap();
        let spec = ModuleSpec::whole_folder();
        let mut hashes = Vec::new();
        for format in [PackageFormat::TarZst, PackageFormat::TarGz] {
            let compression = PackageCompression::new(format);
            let first =
                build_module(&a, &spec, compression, work.path(), &NoProgress, &NoCopies).unwrap();
            let second =
                build_module(&b, &spec, compression, work.path(), &NoProgress, &NoCopies).unwrap();
            let (
                BuiltPackage::Tar {
                    format: built_format,
                    level,
                    file,
                    size,
                    blake3,
                },
                BuiltPackage::Tar {
                    blake3: second_hash,
                    ..
                },
            ) = (&first.package, &second.package)
            else {
                panic!("trees are packaged as tars");
            };
            assert_eq!(*built_format, format);
            assert_eq!(*level, compression.level_for(0));
            assert_eq!(blake3, second_hash, "{format}");
            assert_eq!(first.index, second.index);
            assert_eq!(first.files, 3);
            assert_eq!(first.unpacked_size, 10_000 + 6 + 18);
            let bytes = std::fs::read(file).unwrap();
            assert_eq!(&Blake3Hash::of(&bytes), blake3);
            assert_eq!(bytes.len() as u64, *size);
            let magic: &[u8] = match format {
                PackageFormat::TarGz => &[0x1f, 0x8b],
                PackageFormat::TarZst => &[0x28, 0xb5, 0x2f, 0xfd],
            };
            assert!(bytes.starts_with(magic), "{format}");
            let names: Vec<String> = archive(file, format)
                .entries()
                .unwrap()
                .map(|entry| entry.unwrap().path().unwrap().display().to_string())
                .collect();
            assert_eq!(names.len(), 6, "{format}: {names:?}");
            hashes.push(blake3.clone());
        }
        assert_ne!(hashes[0], hashes[1]);
    }

    /// Text-like content of `size` bytes that zstd compresses a few times over.
    fn text(size: usize, seed: u64) -> Vec<u8> {
        let words = [
            &b"update "[..],
            b"release ",
            b"module ",
            b"{ ",
            b"} ",
            b"42\n",
        ];
        let mut state = seed;
        let mut out = Vec::with_capacity(size + 8);
        while out.len() < size {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            out.extend_from_slice(words[usize::try_from(state >> 61).unwrap() % words.len()]);
        }
        out.truncate(size);
        out
    }

    #[test]
    fn zstd_packages_do_not_depend_on_the_number_of_workers() {
        // Level 3 cuts jobs of 2 MiB, so 8 MiB is four jobs shared among the workers
        // (level 19's jobs are 64 MiB, too slow for a unit test; zstd cuts jobs the
        // same way at every level).
        let content = text(8 << 20, 7);
        let compress = |workers: usize| {
            let mut compressor = Compressor::new(
                Vec::new(),
                PackageFormat::TarZst,
                3,
                content.len() as u64,
                workers,
            )
            .unwrap();
            compressor.write_all(&content).unwrap();
            compressor.finish().unwrap()
        };
        let one = compress(1);
        assert!(one.len() < content.len() / 2, "{}", one.len());
        assert_eq!(compress(2), one);
        assert_eq!(compress(4), one);
        assert_eq!(zstd::decode_all(one.as_slice()).unwrap(), content);
    }

    #[test]
    fn the_zstd_window_covers_the_tar_up_to_the_limit_clients_accept() {
        assert_eq!(window_log(0), 10);
        assert_eq!(window_log(1000), 10);
        assert_eq!(window_log(1 << 20), 20);
        assert_eq!(window_log((1 << 20) + 1), 21);
        assert_eq!(window_log(u64::MAX), MAX_PACKAGE_WINDOW_LOG);
        let work = tempfile::tempdir().unwrap();
        let release = work.path().join("release");
        tree(&release);
        let entries = scan(&release).unwrap();
        let built = build_whole(&release, work.path()).unwrap();
        let BuiltPackage::Tar { file, .. } = &built.package else {
            panic!("trees are packaged as tars");
        };
        let mut tar = Vec::new();
        io::copy(
            &mut archive(file, PackageFormat::TarZst).into_inner(),
            &mut tar,
        )
        .unwrap();
        assert!(
            tar_size_bound(&entries) >= tar.len() as u64,
            "{} < {}",
            tar_size_bound(&entries),
            tar.len()
        );
    }

    #[test]
    fn compression_levels_are_checked_against_the_format() {
        for (format, level, ok) in [
            (PackageFormat::TarGz, 0, true),
            (PackageFormat::TarGz, 9, true),
            (PackageFormat::TarGz, 10, false),
            (PackageFormat::TarZst, 0, false),
            (PackageFormat::TarZst, 19, true),
            (PackageFormat::TarZst, 22, false),
        ] {
            let result = PackageCompression {
                format,
                level: Some(level),
            }
            .check();
            assert_eq!(result.is_ok(), ok, "{format} {level}");
        }
        PackageCompression::default().check().unwrap();
    }

    #[test]
    fn the_default_zstd_level_drops_for_large_packages_only() {
        let zstd = PackageCompression::default();
        assert_eq!(zstd.level_for(0), DEFAULT_ZSTD_LEVEL);
        assert_eq!(zstd.level_for(LARGE_TREE), DEFAULT_ZSTD_LEVEL);
        assert_eq!(zstd.level_for(LARGE_TREE + 1), LARGE_ZSTD_LEVEL);
        let gz = PackageCompression::new(PackageFormat::TarGz);
        assert_eq!(gz.level_for(0), DEFAULT_GZ_LEVEL);
        assert_eq!(gz.level_for(u64::MAX), DEFAULT_GZ_LEVEL);
        let set = PackageCompression {
            level: Some(19),
            ..zstd
        };
        assert_eq!(set.level_for(u64::MAX), 19);
    }

    #[test]
    fn packages_keep_modes_and_sorted_entries() {
        let work = tempfile::tempdir().unwrap();
        let release = work.path().join("release");
        tree(&release);
        let built = build_whole(&release, work.path()).unwrap();
        let BuiltPackage::Tar { file, .. } = &built.package else {
            panic!("trees are packaged as tars");
        };
        let mut archive = archive(file, PackageFormat::TarZst);
        let listed: Vec<(String, u32)> = archive
            .entries()
            .unwrap()
            .map(|entry| {
                let entry = entry.unwrap();
                (
                    entry.path().unwrap().to_string_lossy().into_owned(),
                    entry.header().mode().unwrap(),
                )
            })
            .collect();
        let names: Vec<&str> = listed.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(
            names,
            [
                "README",
                "bin/",
                "bin/app",
                "share/",
                "share/data.txt",
                "share/empty/"
            ]
        );
        assert_eq!(listed[2].1, 0o755);
    }

    #[test]
    fn symbolic_links_are_packaged_as_links_and_never_followed() {
        let work = tempfile::tempdir().unwrap();
        let release = work.path().join("release");
        tree(&release);
        let outside = work.path().join("outside");
        fs_err::create_dir_all(&outside).unwrap();
        fs_err::write(outside.join("secret"), b"not part of the release").unwrap();
        let long_target = format!("{}/app", "../bin/.".repeat(20));
        for (link, target) in [
            ("bin/app-link", "app"),
            ("share/doc", "/usr/share/doc/app"),
            ("share/up", "../../outside"),
            ("share/long", long_target.as_str()),
            ("dangling", "missing/file"),
        ] {
            std::os::unix::fs::symlink(target, release.join(link)).unwrap();
        }
        std::os::unix::fs::symlink(&outside, release.join("share/via-link")).unwrap();
        let built = build_whole(&release, work.path()).unwrap();
        assert_eq!((built.files, built.links), (3, 6));
        let link_entries: Vec<(&str, &str)> = built
            .index
            .entries
            .iter()
            .filter_map(|entry| match &entry.kind {
                EntryKind::Symlink { target } => Some((entry.path.as_str(), target.as_str())),
                _ => None,
            })
            .collect();
        assert!(
            link_entries.contains(&("bin/app-link", "app")),
            "{link_entries:?}"
        );
        assert!(link_entries.contains(&("share/long", long_target.as_str())));
        assert!(
            !built
                .index
                .entries
                .iter()
                .any(|entry| entry.path.as_str().contains("secret")),
            "a linked directory is not followed"
        );
        let outside: Vec<String> = built
            .outside_links
            .iter()
            .map(|(path, target)| format!("{path} -> {target}"))
            .collect();
        assert_eq!(
            outside,
            [
                "share/doc -> /usr/share/doc/app".to_owned(),
                "share/up -> ../../outside".to_owned(),
                format!(
                    "share/via-link -> {}",
                    work.path().join("outside").display()
                ),
            ]
        );

        let BuiltPackage::Tar { file, .. } = &built.package else {
            panic!("trees are packaged as tars");
        };
        let mut archive = archive(file, PackageFormat::TarZst);
        let links: Vec<(String, String)> = archive
            .entries()
            .unwrap()
            .map(|entry| entry.unwrap())
            .filter(|entry| entry.header().entry_type() == tar::EntryType::Symlink)
            .map(|entry| {
                (
                    entry.path().unwrap().to_string_lossy().into_owned(),
                    entry
                        .link_name()
                        .unwrap()
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                )
            })
            .collect();
        assert_eq!(links.len(), 6);
        assert!(links.contains(&("share/long".to_owned(), long_target.clone())));
    }

    #[test]
    fn hard_links_become_copies_and_other_entries_are_refused() {
        let work = tempfile::tempdir().unwrap();
        let release = work.path().join("release");
        tree(&release);
        std::fs::hard_link(release.join("README"), release.join("bin/README")).unwrap();
        let built = build_whole(&release, work.path()).unwrap();
        let hard: Vec<&str> = built.hard_links.iter().map(RelativePath::as_str).collect();
        assert_eq!(hard, ["README", "bin/README"]);
        assert_eq!(built.files, 4, "each name is a file of its own");

        let fifo = release.join("pipe");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        let error = build_whole(&release, work.path()).unwrap_err();
        assert!(matches!(error, Error::UnsupportedEntry { .. }), "{error}");
        assert!(error.to_string().contains("pipe"), "{error}");
    }

    #[test]
    fn a_module_folder_that_is_a_link_is_refused() {
        let work = tempfile::tempdir().unwrap();
        let release = work.path().join("release");
        tree(&release);
        std::os::unix::fs::symlink("share", release.join("assets")).unwrap();
        let spec: ModuleSpec = "assets=assets".parse().unwrap();
        let error = build_module(
            &release,
            &spec,
            PackageCompression::default(),
            work.path(),
            &NoProgress,
            &NoCopies,
        )
        .unwrap_err();
        assert!(error.to_string().contains("is a symbolic link"), "{error}");
    }

    /// A [`ContentSink`] that keeps what it is given.
    #[derive(Default)]
    struct Recorded(Mutex<Vec<(RelativePath, Blake3Hash, usize)>>);

    impl ContentSink for Recorded {
        fn file(&self, path: &RelativePath, hash: &Blake3Hash, content: Vec<u8>) {
            self.0
                .lock()
                .unwrap()
                .push((path.clone(), hash.clone(), content.len()));
        }
    }

    #[test]
    fn an_image_is_one_file_indexed_by_its_name_with_no_tar() {
        let work = tempfile::tempdir().unwrap();
        let release = work.path().join("release");
        tree(&release);
        fs_err::create_dir_all(release.join("images")).unwrap();
        let image = vec![7u8; 50_000];
        fs_err::write(release.join("images/rootfs.img"), &image).unwrap();
        let spec = ModuleSpec::image("os=images/rootfs.img").unwrap();
        assert_eq!(spec.kind, ModuleKind::Image);
        let sink = Recorded::default();
        let built = build_image(&release, &spec, &NoProgress, &sink).unwrap();
        assert_eq!(built.kind(), ModuleKind::Image);
        let hash = Blake3Hash::of(&image);
        assert!(
            matches!(&built.package, BuiltPackage::Image { content } if content == &hash),
            "{:?}",
            built.package
        );
        assert_eq!(built.root, release.join("images"));
        assert_eq!(built.dest.as_ref().unwrap().as_str(), "images/rootfs.img");
        assert_eq!(built.index.entries.len(), 1);
        assert_eq!(built.index.entries[0].path.as_str(), "rootfs.img");
        assert_eq!(built.unpacked_size, 50_000);
        assert_eq!(
            sink.0.lock().unwrap().as_slice(),
            [("rootfs.img".parse().unwrap(), hash, 50_000)]
        );

        let folder = ModuleSpec::image("os=images").unwrap();
        let error = build_image(&release, &folder, &NoProgress, &sink).unwrap_err();
        assert!(error.to_string().contains("regular file"), "{error}");
        assert!(ModuleSpec::image("os=.").is_err());
        assert!(ModuleSpec::image("os").is_err());
        // The image counts as covering its file; the rest of the folder must belong
        // to tree modules.
        let error = check_layout(&release, std::slice::from_ref(&spec)).unwrap_err();
        assert!(error.to_string().contains("README"), "{error}");
        let bin: ModuleSpec = "core=bin".parse().unwrap();
        let share: ModuleSpec = "data=share".parse().unwrap();
        fs_err::remove_file(release.join("README")).unwrap();
        check_layout(&release, &[bin.clone(), share, spec.clone()]).unwrap();
        let inside = ModuleSpec::image("os=bin/app").unwrap();
        assert!(check_layout(&release, &[bin, inside]).is_err());
    }

    #[test]
    fn module_layouts_must_cover_the_folder_without_overlap() {
        let work = tempfile::tempdir().unwrap();
        let release = work.path().join("release");
        tree(&release);
        let spec = |text: &str| text.parse::<ModuleSpec>().unwrap();
        let error = check_layout(&release, &[spec("core=bin"), spec("assets=share")]).unwrap_err();
        assert!(error.to_string().contains("README"), "{error}");
        fs_err::remove_file(release.join("README")).unwrap();
        check_layout(&release, &[spec("core=bin"), spec("assets=share")]).unwrap();
        assert!(check_layout(&release, &[spec("a=share"), spec("b=share/empty")]).is_err());
        assert!(check_layout(&release, &[spec("a=."), spec("b=bin")]).is_err());
        assert!("core".parse::<ModuleSpec>().is_err());
        assert!("core=../x".parse::<ModuleSpec>().is_err());
    }
}
