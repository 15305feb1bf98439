//! Unpacking a verified module package into a fresh release tree, refusing anything
//! that is not a plain file or directory inside it.
//!
//! tar's own `unpack_in` is not used: it skips `..` entries silently and knows
//! symlinks, hard links and devices. Here every entry is checked and any surprise is
//! an error naming the entry.

use std::cell::Cell;
use std::fs::{File, OpenOptions, Permissions};
use std::io::{self, BufReader, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use flate2::read::GzDecoder;
use tar::EntryType;
use wavecast_schema::{ModuleName, RelativePath};

use crate::error::{Error, Result};

/// How many bytes of tar headers and extension records (long names, pax) may come
/// before each entry's data. Generous for any real path, small enough that a hostile
/// extension record cannot exhaust memory.
const HEADER_ALLOWANCE: u64 = 1024 * 1024;

/// Unpacks the tar.gz at `package` into the existing, empty directory `into`.
///
/// Only regular files and directories are accepted; every path must be a
/// [`RelativePath`] (a leading `./` is ignored); the files may total at most
/// `unpacked_size` bytes; a path may appear once. Files get their archive mode
/// masked to `0o777` (no setuid, setgid or sticky bit). Directory modes are applied
/// last, deepest first, so read-only directories can still be filled.
///
/// `into` must be a directory that only this function writes to: it creates no
/// symlinks, so no path under `into` can lead outside it.
///
/// The updater calls it only on packages whose size and blake3 it has verified; it
/// is public so that it can be fuzzed (`fuzz/`) on packages nobody vouches for.
///
/// # Errors
///
/// [`Error::ReadPackage`] when the package cannot be read or is not a tar.gz,
/// [`Error::UnsupportedEntry`], [`Error::NonUtf8EntryPath`],
/// [`Error::UnsafeEntryPath`] or [`Error::DuplicateEntry`] for an entry it refuses,
/// [`Error::UnpackTooLarge`] past `unpacked_size`, [`Error::Unpack`] when writing fails.
pub fn unpack_module(
    package: &Path,
    module: &ModuleName,
    unpacked_size: u64,
    into: &Path,
) -> Result<()> {
    let read_error = |source| Error::ReadPackage {
        module: module.clone(),
        path: package.to_owned(),
        source,
    };
    let file = File::open(package).map_err(read_error)?;
    let budget = Rc::new(Budget::default());
    let reader = BudgetReader {
        inner: GzDecoder::new(BufReader::new(file)),
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
    let mut buffer = vec![0u8; 64 * 1024];

    loop {
        budget.allow(HEADER_ALLOWANCE);
        let mut entry = match entries.next() {
            None => break,
            Some(entry) => entry.map_err(archive_error)?,
        };
        let raw_path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let entry_type = entry.header().entry_type();
        let is_directory = match entry_type {
            EntryType::Regular => false,
            EntryType::Directory => true,
            other => {
                return Err(Error::UnsupportedEntry {
                    module: module.clone(),
                    path: raw_path,
                    kind: describe(other),
                });
            }
        };
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
        let target = relative
            .segments()
            .fold(into.to_owned(), |path, segment| path.join(segment));
        let write_error = |path: &Path| {
            let path = path.to_owned();
            move |source| Error::Unpack { path, source }
        };

        if is_directory {
            std::fs::create_dir_all(&target).map_err(write_error(&target))?;
            directories.push((target, relative.segments().count(), mode));
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
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(write_error(parent))?;
        }
        let mut file = match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&target)
        {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
                return Err(Error::DuplicateEntry {
                    module: module.clone(),
                    path: raw_path,
                });
            }
            Err(source) => {
                return Err(Error::Unpack {
                    path: target,
                    source,
                });
            }
        };
        budget.allow(size.saturating_add(512));
        let mut copied: u64 = 0;
        loop {
            let count = match entry.read(&mut buffer) {
                Ok(0) => break,
                Ok(count) => count,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => return Err(archive_error(source)),
            };
            copied += count as u64;
            file.write_all(&buffer[..count])
                .map_err(write_error(&target))?;
        }
        if copied != size {
            return Err(read_error(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("entry `{raw_path}` holds {copied} of its {size} bytes"),
            )));
        }
        file.set_permissions(Permissions::from_mode(mode))
            .map_err(write_error(&target))?;
    }

    directories.sort_by_key(|(_, depth, _)| std::cmp::Reverse(*depth));
    for (path, _, mode) in directories {
        std::fs::set_permissions(&path, Permissions::from_mode(mode))
            .map_err(|source| Error::Unpack { path, source })?;
    }
    Ok(())
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
        EntryType::Symlink => "symlink".into(),
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

    /// One archive entry for [`package`]: raw path bytes, type, mode, content.
    pub(crate) struct Raw<'a>(
        pub(crate) &'a str,
        pub(crate) EntryType,
        pub(crate) u32,
        pub(crate) &'a [u8],
    );

    /// A tar.gz of `entries`, written with raw headers so hostile paths survive.
    pub(crate) fn package(entries: &[Raw<'_>]) -> Vec<u8> {
        let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
        for Raw(path, entry_type, mode, content) in entries {
            let mut header = tar::Header::new_gnu();
            let name = &mut header.as_gnu_mut().unwrap().name;
            name[..path.len()].copy_from_slice(path.as_bytes());
            header.set_entry_type(*entry_type);
            header.set_mode(*mode);
            header.set_size(content.len() as u64);
            if *entry_type == EntryType::Symlink || *entry_type == EntryType::Link {
                header.set_link_name("target").unwrap();
            }
            header.set_cksum();
            builder.append(&header, *content).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap()
    }

    fn unpack(entries: &[Raw<'_>], limit: u64) -> (tempfile::TempDir, Result<()>) {
        let dir = tempfile::tempdir().unwrap();
        let package_path = dir.path().join("package.tar.gz");
        std::fs::write(&package_path, package(entries)).unwrap();
        let into = dir.path().join("tree");
        std::fs::create_dir(&into).unwrap();
        let result = unpack_module(&package_path, &"app".parse().unwrap(), limit, &into);
        (dir, result)
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
        let mode = |p: &str| {
            std::fs::metadata(tree.join(p))
                .unwrap()
                .permissions()
                .mode()
                & 0o7777
        };
        assert_eq!(mode("bin/app"), 0o755);
        assert_eq!(mode("bin"), 0o555);
        assert_eq!(mode("share/data.txt"), 0o644);
        std::fs::set_permissions(tree.join("bin"), Permissions::from_mode(0o755)).unwrap();
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
    fn links_devices_and_fifos_are_refused() {
        for (entry_type, name) in [
            (EntryType::Symlink, "symlink"),
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
        assert_eq!(
            std::fs::metadata(tree.join("tool"))
                .unwrap()
                .permissions()
                .mode()
                & 0o7777,
            0o755
        );
        assert_eq!(
            std::fs::metadata(tree.join("d"))
                .unwrap()
                .permissions()
                .mode()
                & 0o7777,
            0o777
        );
    }

    #[test]
    fn a_decompression_bomb_stops_at_the_declared_size() {
        let zeros = vec![0u8; 4 * 1024 * 1024];
        let entries = [file("a", &zeros), file("b", &zeros)];
        let compressed = package(&entries).len();
        assert!(
            compressed < 100_000,
            "the bomb should be small, got {compressed}"
        );
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
    fn duplicate_entries_are_refused() {
        let (_dir, result) = unpack(&[file("a", b"one"), file("./a", b"two")], 100);
        let error = result.unwrap_err();
        assert!(matches!(error, Error::DuplicateEntry { .. }), "{error}");
    }
}
