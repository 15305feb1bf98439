//! Unpacking a verified module package into a fresh release tree, refusing anything
//! that is not a plain file, a directory or a symbolic link inside it, and never
//! writing through a link.
//!
//! tar's own `unpack_in` is not used: it skips `..` entries silently, knows hard
//! links and devices, and writes through a symlink the archive made before. Here
//! every entry is checked and any surprise is an error naming the entry. What comes
//! out is still only what the package holds: the caller compares the tree with the
//! release's signed file lists before using it.
//!
//! Both package formats go through the same checks: the tar is read as a stream from
//! its decompressor (gzip, or zstd with its window capped at
//! 2^[`MAX_PACKAGE_WINDOW_LOG`] bytes), and every byte the tar reader takes is
//! counted against the module's declared unpacked size, so neither can expand
//! without bound.

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use flate2::read::GzDecoder;
use tar::EntryType;
use wavecast_schema::{
    Blake3Hash, LinkTarget, MAX_PACKAGE_WINDOW_LOG, ModuleName, PackageFormat, RelativePath,
};

use crate::install::error::{Error, Result};
use crate::install::file_writers::{FileJob, with_writers};
use crate::install::verified::HashingWriter;

/// How many bytes of tar headers and extension records (long names, pax) may come
/// before each entry's data. Generous for any real path, small enough that a hostile
/// extension record cannot exhaust memory.
const HEADER_ALLOWANCE: u64 = 1024 * 1024;

/// Files up to this size are read whole and written by writer threads (see
/// [`crate::install::file_writers`]); a larger one is streamed to disk from the
/// reading thread, so that memory stays bounded.
pub(crate) const PARALLEL_FILE_MAX: u64 = 4 << 20;

/// Unpacks the package of `format` (a tar.zst or tar.gz) at `package` into the
/// existing, empty directory `into`, and returns every regular file written with the
/// blake3 of what was written, in path order.
///
/// Only regular files, directories and symbolic links are accepted; every path must
/// be a [`RelativePath`] (a leading `./` is ignored); the files may total at most
/// `unpacked_size` bytes; a path may appear once. Files get their archive mode
/// masked to `0o777` (no setuid, setgid or sticky bit). Directory modes are applied
/// last, deepest first, so read-only directories can still be filled. A link is
/// created as it is, whatever it points to, and nothing is ever written through
/// one: an entry inside a link (or a file) made before it is refused.
///
/// Every check runs on the calling thread, which reads the archive; files of up to
/// 4 MiB are then written by writer threads (one per core, at most four) while it
/// reads on, larger ones by itself.
///
/// `into` must be a directory that only this function writes to, so that the only
/// links under it are the ones it made.
///
/// The updater calls it only on packages whose size and blake3 it has verified; it
/// is public so that it can be fuzzed (`fuzz/`) on packages nobody vouches for.
///
/// # Errors
///
/// [`Error::ReadPackage`] when the package cannot be read or is not a tar of
/// `format` (a zstd window over 2^[`MAX_PACKAGE_WINDOW_LOG`] included),
/// [`Error::UnsupportedEntry`], [`Error::NonUtf8EntryPath`],
/// [`Error::UnsafeEntryPath`], [`Error::InvalidLinkTarget`],
/// [`Error::EntryInsideNonDirectory`] or [`Error::DuplicateEntry`] for an entry it
/// refuses, [`Error::UnpackTooLarge`] past `unpacked_size`, [`Error::Unpack`] when
/// writing fails.
pub fn unpack_module(
    package: &Path,
    format: PackageFormat,
    module: &ModuleName,
    unpacked_size: u64,
    into: &Path,
) -> Result<Vec<(RelativePath, Blake3Hash)>> {
    let read_error = |source| Error::ReadPackage {
        module: module.clone(),
        path: package.to_owned(),
        source,
    };
    let file = BufReader::new(File::open(package).map_err(read_error)?);
    let decoder: Box<dyn Read> = match format {
        PackageFormat::TarGz => Box::new(GzDecoder::new(file)),
        PackageFormat::TarZst => {
            let mut decoder = zstd::stream::read::Decoder::with_buffer(file).map_err(read_error)?;
            decoder
                .window_log_max(MAX_PACKAGE_WINDOW_LOG)
                .map_err(read_error)?;
            Box::new(decoder)
        }
    };
    let budget = Rc::new(Budget::default());
    let reader = BudgetReader {
        inner: decoder,
        budget: Rc::clone(&budget),
    };
    let mut archive = tar::Archive::new(reader);
    let archive_error = |source: io::Error| {
        if budget.exceeded.get() {
            Error::UnpackTooLarge {
                module: module.clone(),
                limit: unpacked_size,
            }
        } else {
            read_error(source)
        }
    };
    let mut entries = archive.entries().map_err(archive_error)?;
    let mut written: u64 = 0;
    let mut directories: Vec<(PathBuf, usize, u32)> = Vec::new();
    // The files and links made so far: nothing may be written inside one.
    let mut leaves: HashMap<RelativePath, &'static str> = HashMap::new();
    // The folders made so far, so that a file's folder is made once.
    let mut folders: HashSet<PathBuf> = HashSet::from([into.to_owned()]);
    // Large files, streamed to disk from this thread.
    let mut streamed = Vec::new();

    let (read, by_writers) = with_writers(|writers| -> Result<()> {
        loop {
            budget.allow(HEADER_ALLOWANCE);
            let mut entry = match entries.next() {
                None => return Ok(()),
                Some(entry) => entry.map_err(archive_error)?,
            };
            let raw_path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let entry_type = entry.header().entry_type();
            if !matches!(
                entry_type,
                EntryType::Regular | EntryType::Directory | EntryType::Symlink
            ) {
                return Err(Error::UnsupportedEntry {
                    module: module.clone(),
                    path: raw_path,
                    kind: describe(entry_type),
                });
            }
            let is_directory = entry_type == EntryType::Directory;
            if std::str::from_utf8(&entry.path_bytes()).is_err() {
                return Err(Error::NonUtf8EntryPath {
                    module: module.clone(),
                    path: raw_path,
                });
            }
            let relative =
                entry_path(&raw_path, is_directory).map_err(|source| Error::UnsafeEntryPath {
                    module: module.clone(),
                    path: raw_path.clone(),
                    source,
                })?;
            let mode = entry.header().mode().map_err(archive_error)? & 0o777;
            let Some(relative) = relative else {
                // The archive's own root (`./`): the release tree's root is ours.
                continue;
            };
            if let Some((parent, kind)) = relative
                .ancestors()
                .find_map(|parent| leaves.get(parent).map(|kind| (parent, *kind)))
            {
                return Err(Error::EntryInsideNonDirectory {
                    module: module.clone(),
                    path: raw_path,
                    parent: parent.to_owned(),
                    kind,
                });
            }
            let duplicate = || Error::DuplicateEntry {
                module: module.clone(),
                path: raw_path.clone(),
            };
            if leaves.contains_key(&relative) {
                return Err(duplicate());
            }
            let target = relative
                .segments()
                .fold(into.to_owned(), |path, segment| path.join(segment));
            let write_error = |path: &Path| {
                let path = path.to_owned();
                move |source| Error::Unpack { path, source }
            };

            if is_directory {
                std::fs::create_dir_all(&target).map_err(write_error(&target))?;
                folders.insert(target.clone());
                directories.push((target, relative.segments().count(), mode));
                continue;
            }
            if let Some(parent) = target.parent()
                && !folders.contains(parent)
            {
                std::fs::create_dir_all(parent).map_err(write_error(parent))?;
                folders.insert(parent.to_owned());
            }
            let create_error = |source: io::Error| {
                if source.kind() == io::ErrorKind::AlreadyExists {
                    duplicate()
                } else {
                    write_error(&target)(source)
                }
            };

            if entry_type == EntryType::Symlink {
                let link_target = link_target(&entry, module, &raw_path)?;
                crate::platform::symlink(link_target.as_str(), &target).map_err(create_error)?;
                leaves.insert(relative, "symbolic link");
                continue;
            }

            let size = entry.size();
            written = written.saturating_add(size);
            if written > unpacked_size {
                return Err(Error::UnpackTooLarge {
                    module: module.clone(),
                    limit: unpacked_size,
                });
            }
            budget.allow(size.saturating_add(512));
            let short = |got: u64| {
                read_error(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("entry `{raw_path}` holds {got} of its {size} bytes"),
                ))
            };
            leaves.insert(relative.clone(), "file");
            if size <= PARALLEL_FILE_MAX {
                let mut content = writers.buffer();
                content.reserve(usize::try_from(size).unwrap_or(0));
                entry.read_to_end(&mut content).map_err(archive_error)?;
                if content.len() as u64 != size {
                    return Err(short(content.len() as u64));
                }
                let job = FileJob {
                    relative,
                    target,
                    content,
                    mode,
                };
                if !writers.submit(job) {
                    // A writer failed: that failure is the error.
                    return Ok(());
                }
                continue;
            }
            // `create_new` never opens an existing path, a link included.
            let file = crate::platform::create_private(&target).map_err(create_error)?;
            let mut out = HashingWriter::new(file, size);
            let copied = io::copy(&mut entry, &mut out);
            if let Some(source) = out.take_failure() {
                return Err(write_error(&target)(source));
            }
            copied.map_err(archive_error)?;
            if out.written() != size {
                return Err(short(out.written()));
            }
            crate::platform::set_file_mode(out.get_ref(), mode).map_err(write_error(&target))?;
            streamed.push((relative, out.hash()));
        }
    });
    // A writer's failure comes first: the reader may have stopped because of it.
    let mut files = by_writers.map_err(|failure| {
        if failure.source.kind() == io::ErrorKind::AlreadyExists {
            let path = failure.target.strip_prefix(into).unwrap_or(&failure.target);
            Error::DuplicateEntry {
                module: module.clone(),
                path: path.to_string_lossy().into_owned(),
            }
        } else {
            Error::Unpack {
                path: failure.target,
                source: failure.source,
            }
        }
    })?;
    read?;
    files.append(&mut streamed);
    // The writers finish in any order; the caller gets the files in path order.
    files.sort_unstable_by(|(a, _), (b, _)| a.cmp(b));

    directories.sort_by_key(|(_, depth, _)| std::cmp::Reverse(*depth));
    for (path, _, mode) in directories {
        crate::platform::set_mode(&path, mode).map_err(|source| Error::Unpack { path, source })?;
    }
    Ok(files)
}

/// The target of a symlink entry, checked to be one a link may hold.
fn link_target<R: Read>(
    entry: &tar::Entry<'_, R>,
    module: &ModuleName,
    raw_path: &str,
) -> Result<LinkTarget> {
    let raw = entry
        .link_name_bytes()
        .map(|bytes| bytes.into_owned())
        .unwrap_or_default();
    std::str::from_utf8(&raw)
        .ok()
        .and_then(|target| target.parse().ok())
        .ok_or_else(|| Error::InvalidLinkTarget {
            module: module.clone(),
            path: raw_path.to_owned(),
            target: String::from_utf8_lossy(&raw).into_owned(),
        })
}

/// The entry's path inside the module, or `None` for the archive's root directory.
fn entry_path(
    raw: &str,
    is_directory: bool,
) -> std::result::Result<Option<RelativePath>, wavecast_schema::Error> {
    let mut path = raw;
    while let Some(rest) = path.strip_prefix("./") {
        path = rest;
    }
    if is_directory {
        path = path.strip_suffix('/').unwrap_or(path);
        if path.is_empty() || path == "." {
            return Ok(None);
        }
    }
    path.parse().map(Some)
}

/// Names an entry type for error messages.
fn describe(entry_type: EntryType) -> String {
    match entry_type {
        EntryType::Link => "hard link".into(),
        EntryType::Char => "character device".into(),
        EntryType::Block => "block device".into(),
        EntryType::Fifo => "fifo".into(),
        EntryType::Continuous => "contiguous file".into(),
        EntryType::GNUSparse => "sparse file".into(),
        EntryType::XGlobalHeader => "pax global header".into(),
        EntryType::XHeader => "pax extension header".into(),
        EntryType::GNULongName | EntryType::GNULongLink => "GNU long-name record".into(),
        other => format!("entry of type `{}`", other.as_byte().escape_ascii()),
    }
}

/// How far into the decompressed stream the tar reader may go.
#[derive(Debug, Default)]
struct Budget {
    consumed: Cell<u64>,
    limit: Cell<u64>,
    exceeded: Cell<bool>,
}

impl Budget {
    /// Lets the reader go `bytes` past where it is now.
    fn allow(&self, bytes: u64) {
        self.limit.set(self.consumed.get().saturating_add(bytes));
    }
}

/// Counts the decompressed bytes the tar reader takes and refuses past the budget,
/// so neither file data nor oversized headers can decompress without bound.
struct BudgetReader<R> {
    inner: R,
    budget: Rc<Budget>,
}

impl<R: Read> Read for BudgetReader<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let remaining = self
            .budget
            .limit
            .get()
            .saturating_sub(self.budget.consumed.get());
        if remaining == 0 {
            self.budget.exceeded.set(true);
            return Err(io::Error::other(
                "the archive holds more data than declared",
            ));
        }
        let len = buffer
            .len()
            .min(usize::try_from(remaining).unwrap_or(usize::MAX));
        let count = self.inner.read(&mut buffer[..len])?;
        self.budget
            .consumed
            .set(self.budget.consumed.get() + count as u64);
        Ok(count)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use flate2::Compression;
    use flate2::write::GzEncoder;

    use super::*;

    /// One archive entry for [`package`]: raw path bytes, type, mode, content (for a
    /// link, its raw target).
    pub(crate) struct Raw<'a>(
        pub(crate) &'a str,
        pub(crate) EntryType,
        pub(crate) u32,
        pub(crate) &'a [u8],
    );

    /// A tar.gz of `entries`, written with raw headers so hostile paths survive.
    pub(crate) fn package(entries: &[Raw<'_>]) -> Vec<u8> {
        compress(&tar(entries), PackageFormat::TarGz)
    }

    /// `tar` compressed as `format` says.
    pub(crate) fn compress(tar: &[u8], format: PackageFormat) -> Vec<u8> {
        match format {
            PackageFormat::TarGz => {
                let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
                std::io::Write::write_all(&mut encoder, tar).unwrap();
                encoder.finish().unwrap()
            }
            PackageFormat::TarZst => zstd::encode_all(tar, 3).unwrap(),
        }
    }

    /// The tar of `entries`, written with raw headers so hostile paths survive.
    pub(crate) fn tar(entries: &[Raw<'_>]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for Raw(path, entry_type, mode, content) in entries {
            let mut header = tar::Header::new_gnu();
            let gnu = header.as_gnu_mut().unwrap();
            gnu.name[..path.len()].copy_from_slice(path.as_bytes());
            let is_link = *entry_type == EntryType::Symlink || *entry_type == EntryType::Link;
            let data: &[u8] = if is_link {
                let target: &[u8] = if content.is_empty() {
                    b"target"
                } else {
                    content
                };
                gnu.linkname[..target.len()].copy_from_slice(target);
                b""
            } else {
                content
            };
            header.set_entry_type(*entry_type);
            header.set_mode(*mode);
            header.set_size(data.len() as u64);
            header.set_cksum();
            builder.append(&header, data).unwrap();
        }
        builder.into_inner().unwrap()
    }

    /// Unpacks `bytes`, a package of `format`, into `dir/tree_name`.
    fn unpack_bytes(
        dir: &Path,
        tree_name: &str,
        bytes: &[u8],
        format: PackageFormat,
        limit: u64,
    ) -> Result<Vec<(RelativePath, Blake3Hash)>> {
        let package_path = dir.join(format!("{tree_name}.{format}"));
        std::fs::write(&package_path, bytes).unwrap();
        let into = dir.join(tree_name);
        std::fs::create_dir(&into).unwrap();
        unpack_module(&package_path, format, &"app".parse().unwrap(), limit, &into)
    }

    /// Unpacks `entries` as a tar.zst into `tree` and as a tar.gz into `tree-gz`,
    /// checks that both formats give the same outcome, and returns the tar.zst's.
    fn unpack(
        entries: &[Raw<'_>],
        limit: u64,
    ) -> (tempfile::TempDir, Result<Vec<(RelativePath, Blake3Hash)>>) {
        let dir = tempfile::tempdir().unwrap();
        let tar = tar(entries);
        let zst = unpack_bytes(
            dir.path(),
            "tree",
            &compress(&tar, PackageFormat::TarZst),
            PackageFormat::TarZst,
            limit,
        );
        let gz = unpack_bytes(
            dir.path(),
            "tree-gz",
            &compress(&tar, PackageFormat::TarGz),
            PackageFormat::TarGz,
            limit,
        );
        match (&zst, &gz) {
            (Ok(zst_files), Ok(gz_files)) => assert_eq!(zst_files, gz_files),
            (Err(zst_error), Err(gz_error)) => assert_eq!(
                std::mem::discriminant(zst_error),
                std::mem::discriminant(gz_error),
                "{zst_error} / {gz_error}"
            ),
            _ => panic!("tar.zst gave {zst:?}, tar.gz {gz:?}"),
        }
        (dir, zst)
    }

    fn file<'a>(path: &'a str, content: &'a [u8]) -> Raw<'a> {
        Raw(path, EntryType::Regular, 0o644, content)
    }

    #[test]
    fn files_and_directories_unpack_with_their_modes() {
        let (dir, result) = unpack(
            &[
                Raw("./", EntryType::Directory, 0o755, b""),
                Raw("bin/", EntryType::Directory, 0o555, b""),
                Raw("bin/app", EntryType::Regular, 0o755, b"#!/bin/sh\n"),
                file("./share/data.txt", b"data"),
            ],
            100,
        );
        result.unwrap();
        let tree = dir.path().join("tree");
        assert_eq!(std::fs::read(tree.join("bin/app")).unwrap(), b"#!/bin/sh\n");
        assert_eq!(std::fs::read(tree.join("share/data.txt")).unwrap(), b"data");
        crate::platform::assert_mode(&tree.join("bin/app"), 0o755);
        crate::platform::assert_mode(&tree.join("bin"), 0o555);
        crate::platform::assert_mode(&tree.join("share/data.txt"), 0o644);
        crate::platform::set_mode(&tree.join("bin"), 0o755).unwrap();
    }

    #[test]
    fn escaping_paths_are_refused() {
        for path in ["../x", "a/../../x", "/etc/passwd", "a//b"] {
            let (dir, result) = unpack(&[file(path, b"evil")], 100);
            let error = result.unwrap_err();
            assert!(
                matches!(error, Error::UnsafeEntryPath { .. }),
                "{path}: {error}"
            );
            assert!(error.to_string().contains(path), "{error}");
            assert!(!dir.path().join("x").exists());
        }
    }

    #[test]
    fn files_are_hashed_as_they_are_written() {
        let (_dir, result) = unpack(&[file("a", b"one"), file("d/b", b"two")], 100);
        let files: Vec<(String, Blake3Hash)> = result
            .unwrap()
            .into_iter()
            .map(|(path, hash)| (path.to_string(), hash))
            .collect();
        assert_eq!(
            files,
            [
                ("a".to_owned(), Blake3Hash::of(b"one")),
                ("d/b".to_owned(), Blake3Hash::of(b"two"))
            ]
        );
    }

    // Not on Windows: Wine 8's CreateSymbolicLinkW is a stub that makes no link.
    #[cfg(not(windows))]
    #[test]
    fn symbolic_links_are_made_as_they_are_and_never_followed() {
        let (dir, result) = unpack(
            &[
                Raw("lib/", EntryType::Directory, 0o755, b""),
                file("lib/libfoo.so.1", b"elf"),
                Raw("lib/libfoo.so", EntryType::Symlink, 0o777, b"libfoo.so.1"),
                Raw("doc", EntryType::Symlink, 0o777, b"/usr/share/doc/app"),
                Raw("up", EntryType::Symlink, 0o777, b"../../outside"),
            ],
            100,
        );
        result.unwrap();
        let tree = dir.path().join("tree");
        let target = |path: &str| std::fs::read_link(tree.join(path)).unwrap();
        assert_eq!(target("lib/libfoo.so"), Path::new("libfoo.so.1"));
        assert_eq!(target("doc"), Path::new("/usr/share/doc/app"));
        assert_eq!(target("up"), Path::new("../../outside"));
        assert_eq!(std::fs::read(tree.join("lib/libfoo.so")).unwrap(), b"elf");
    }

    #[test]
    fn nothing_is_written_through_a_link_the_package_made() {
        let outside = tempfile::tempdir().unwrap();
        // With slashes: a link target holds no backslash (Windows' separator).
        let outside_path = outside.path().to_str().unwrap().replace('\\', "/");
        for entries in [
            vec![
                Raw("etc", EntryType::Symlink, 0o777, outside_path.as_bytes()),
                file("etc/passwd", b"owned"),
            ],
            vec![
                Raw("etc", EntryType::Symlink, 0o777, outside_path.as_bytes()),
                Raw("etc/cron.d/", EntryType::Directory, 0o755, b""),
            ],
            vec![
                Raw("etc", EntryType::Symlink, 0o777, outside_path.as_bytes()),
                Raw("etc/x", EntryType::Symlink, 0o777, b"/etc/passwd"),
            ],
            vec![
                Raw("etc", EntryType::Symlink, 0o777, outside_path.as_bytes()),
                Raw("./etc/", EntryType::Directory, 0o755, b""),
                file("etc/passwd", b"owned"),
            ],
        ] {
            let (_dir, result) = unpack(&entries, 100);
            let error = result.unwrap_err();
            assert!(
                matches!(
                    error,
                    Error::EntryInsideNonDirectory { .. } | Error::DuplicateEntry { .. }
                ),
                "{error}"
            );
            assert_eq!(
                std::fs::read_dir(outside.path()).unwrap().count(),
                0,
                "something was written outside the tree"
            );
        }
        let (_dir, result) = unpack(&[file("a", b"x"), file("a/b", b"y")], 100);
        let error = result.unwrap_err().to_string();
        assert!(
            error.contains("inside `a`, which it made a file"),
            "{error}"
        );
        let (_dir, result) = unpack(
            &[
                Raw("a", EntryType::Symlink, 0o777, b"b"),
                Raw("a", EntryType::Symlink, 0o777, b"c"),
            ],
            100,
        );
        assert!(matches!(result.unwrap_err(), Error::DuplicateEntry { .. }));
    }

    #[test]
    fn a_link_target_no_link_may_hold_is_refused() {
        let (_dir, result) = unpack(&[Raw("a", EntryType::Symlink, 0o777, b"x\ny")], 100);
        let error = result.unwrap_err();
        assert!(matches!(error, Error::InvalidLinkTarget { .. }), "{error}");
        let (_dir, result) = unpack(&[Raw("a", EntryType::Symlink, 0o777, b"x\xffy")], 100);
        assert!(matches!(
            result.unwrap_err(),
            Error::InvalidLinkTarget { .. }
        ));
    }

    #[test]
    fn hard_links_devices_and_fifos_are_refused() {
        for (entry_type, name) in [
            (EntryType::Link, "hard link"),
            (EntryType::Char, "character device"),
            (EntryType::Block, "block device"),
            (EntryType::Fifo, "fifo"),
        ] {
            let (_dir, result) = unpack(&[Raw("thing", entry_type, 0o644, b"")], 100);
            let error = result.unwrap_err();
            assert!(matches!(error, Error::UnsupportedEntry { .. }), "{error}");
            let message = error.to_string();
            assert!(
                message.contains("`thing`") && message.contains(name),
                "{message}"
            );
        }
    }

    #[cfg(unix)]
    #[test]
    fn setuid_setgid_and_sticky_bits_are_stripped() {
        let (dir, result) = unpack(
            &[
                Raw("tool", EntryType::Regular, 0o6755, b"x"),
                Raw("d/", EntryType::Directory, 0o1777, b""),
            ],
            100,
        );
        result.unwrap();
        let tree = dir.path().join("tree");
        crate::platform::assert_mode(&tree.join("tool"), 0o755);
        crate::platform::assert_mode(&tree.join("d"), 0o777);
    }

    #[test]
    fn a_decompression_bomb_stops_at_the_declared_size() {
        let zeros = vec![0u8; 4 * 1024 * 1024];
        let entries = [file("a", &zeros), file("b", &zeros)];
        for format in [PackageFormat::TarGz, PackageFormat::TarZst] {
            let compressed = compress(&tar(&entries), format).len();
            assert!(
                compressed < 100_000,
                "the {format} bomb should be small, got {compressed}"
            );
        }
        let (dir, result) = unpack(&entries, 5 * 1024 * 1024);
        let error = result.unwrap_err();
        assert!(matches!(error, Error::UnpackTooLarge { .. }), "{error}");
        assert!(!dir.path().join("tree/b").exists());
    }

    #[test]
    fn an_oversized_extension_header_is_a_bomb_too() {
        let long = vec![b'a'; 2 * 1024 * 1024];
        let (_dir, result) = unpack(
            &[Raw("././@LongLink", EntryType::GNULongName, 0o644, &long)],
            100,
        );
        let error = result.unwrap_err();
        assert!(matches!(error, Error::UnpackTooLarge { .. }), "{error}");
    }

    #[test]
    fn a_package_in_the_other_format_or_a_window_too_large_is_refused() {
        let entries = [file("a", b"one")];
        let dir = tempfile::tempdir().unwrap();
        let gz = compress(&tar(&entries), PackageFormat::TarGz);
        let error = unpack_bytes(dir.path(), "zst", &gz, PackageFormat::TarZst, 100).unwrap_err();
        assert!(matches!(error, Error::ReadPackage { .. }), "{error}");
        let zst = compress(&tar(&entries), PackageFormat::TarZst);
        let error = unpack_bytes(dir.path(), "gz", &zst, PackageFormat::TarGz, 100).unwrap_err();
        assert!(matches!(error, Error::ReadPackage { .. }), "{error}");

        // A frame that asks for a 256 MiB window (written in pieces, so zstd cannot
        // shrink the window to the content): refused before anything is unpacked.
        let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
        encoder.window_log(MAX_PACKAGE_WINDOW_LOG + 1).unwrap();
        encoder.long_distance_matching(true).unwrap();
        for chunk in tar(&entries).chunks(100) {
            std::io::Write::write_all(&mut encoder, chunk).unwrap();
            std::io::Write::flush(&mut encoder).unwrap();
        }
        let wide = encoder.finish().unwrap();
        let error =
            unpack_bytes(dir.path(), "wide", &wide, PackageFormat::TarZst, 100).unwrap_err();
        assert!(matches!(error, Error::ReadPackage { .. }), "{error}");
        assert!(!dir.path().join("wide/a").exists());
        // The same frame with a window within the limit unpacks.
        let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
        encoder.window_log(MAX_PACKAGE_WINDOW_LOG).unwrap();
        for chunk in tar(&entries).chunks(100) {
            std::io::Write::write_all(&mut encoder, chunk).unwrap();
            std::io::Write::flush(&mut encoder).unwrap();
        }
        let within = encoder.finish().unwrap();
        unpack_bytes(dir.path(), "within", &within, PackageFormat::TarZst, 100).unwrap();
        assert_eq!(std::fs::read(dir.path().join("within/a")).unwrap(), b"one");
    }

    #[test]
    fn duplicate_entries_are_refused() {
        let (_dir, result) = unpack(&[file("a", b"one"), file("./a", b"two")], 100);
        let error = result.unwrap_err();
        assert!(matches!(error, Error::DuplicateEntry { .. }), "{error}");
    }
}
