//! The zstd copies of a publish's files, and the copy packs made of them.
//!
//! Every distinct file content gets one zstd copy ([`wavecast_delta::compress_copy`],
//! at the publisher's `--copy-level`), compressed once on the publish's worker threads
//! while the modules are packaged, or taken as it is from the copy pack of the
//! previous release when that has the content (so an unchanged file is never
//! compressed again). Copies wait in a [`Spool`], a temporary file, so a release of any
//! size holds only their offsets in memory.
//!
//! Each tree module then gets its copy pack (`blobs/<blake3>.copies`): the copies of
//! its distinct contents back to back, in index order, each once, exactly as
//! [`wavecast_schema::FileIndex::copy_layout`] lays them out. Clients fetch the files
//! they lack as byte ranges of it; the publisher reads it back as [`LoadedCopies`] to
//! find the old contents it patches from. An image module's copy is its package
//! (`blobs/<blake3>.zst`).

use std::collections::{HashMap, HashSet};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use wavecast_schema::{
    Blake3Hash, Blob, CopySlice, EntryKind, FileIndex, Module, ModuleKind, RelativePath,
};
use wavecast_site::Storage;
use wavecast_site::layout::{self, BlobKind};

use crate::error::{Error, Result};
use crate::platform;
use crate::pool::WorkQueue;

/// Where a run of bytes lies in a [`Spool`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spooled {
    /// Its first byte.
    pub offset: u64,
    /// Its length.
    pub length: u64,
}

/// An append-only temporary file of byte runs (file copies, patches) that a publish
/// writes from its worker threads and reads back when it assembles copy packs and
/// delta packs. It disappears with the value.
pub struct Spool {
    file: std::fs::File,
    end: Mutex<u64>,
    /// The folder the file is in, for messages (the file itself has no name).
    dir: PathBuf,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool").field("dir", &self.dir).finish()
    }
}

impl Spool {
    /// An empty spool in a temporary file inside `dir`.
    ///
    /// # Errors
    ///
    /// [`Error::Write`] when the file cannot be created.
    pub fn new(dir: &Path) -> Result<Self> {
        let file = tempfile::tempfile_in(dir).map_err(|source| Error::Write {
            path: dir.to_owned(),
            source,
        })?;
        Ok(Self {
            file,
            end: Mutex::new(0),
            dir: dir.to_owned(),
        })
    }

    /// Appends `bytes`; any thread may call it.
    ///
    /// # Errors
    ///
    /// [`Error::Write`].
    pub fn append(&self, bytes: &[u8]) -> Result<Spooled> {
        let offset = {
            let mut end = self.end.lock().unwrap_or_else(PoisonError::into_inner);
            let offset = *end;
            *end += bytes.len() as u64;
            offset
        };
        platform::write_all_at(&self.file, bytes, offset).map_err(|source| self.error(source))?;
        Ok(Spooled {
            offset,
            length: bytes.len() as u64,
        })
    }

    /// The bytes of `spooled`.
    ///
    /// # Errors
    ///
    /// [`Error::Write`] when the file cannot be read back.
    pub fn read(&self, spooled: Spooled) -> Result<Vec<u8>> {
        let length = usize::try_from(spooled.length)
            .map_err(|_| self.error(io::Error::other("a spooled run larger than memory")))?;
        let mut bytes = vec![0; length];
        platform::read_exact_at(&self.file, &mut bytes, spooled.offset)
            .map_err(|source| self.error(source))?;
        Ok(bytes)
    }

    /// Writes the bytes of `spooled` to `out`, a megabyte at a time.
    ///
    /// # Errors
    ///
    /// [`Error::Write`] for the spool; `out`'s errors as I/O errors for the caller to
    /// name.
    pub fn copy_to(&self, spooled: Spooled, out: &mut dyn Write) -> Result<io::Result<()>> {
        const CHUNK: u64 = 1 << 20;
        let mut buffer = vec![0; usize::try_from(spooled.length.min(CHUNK)).unwrap_or(0)];
        let mut done = 0;
        while done < spooled.length {
            let chunk = (spooled.length - done).min(CHUNK) as usize;
            platform::read_exact_at(&self.file, &mut buffer[..chunk], spooled.offset + done)
                .map_err(|source| self.error(source))?;
            if let Err(error) = out.write_all(&buffer[..chunk]) {
                return Ok(Err(error));
            }
            done += chunk as u64;
        }
        Ok(Ok(()))
    }

    fn error(&self, source: io::Error) -> Error {
        Error::Write {
            path: self.dir.clone(),
            source,
        }
    }
}

/// The zstd copies of a publish: each distinct content once, compressed on the work
/// queue or reused from an earlier copy pack, waiting in the [`Spool`].
pub struct FileCopies<'s> {
    spool: &'s Spool,
    level: i32,
    state: Mutex<CopiesState>,
}

#[derive(Default)]
struct CopiesState {
    /// Earlier copy packs whose copies are reused rather than compressed again.
    reusable: Vec<Arc<LoadedCopies>>,
    /// The copy of each content, once known.
    copies: HashMap<Blake3Hash, Spooled>,
    /// Contents already handed over (compressed, queued or reused).
    seen: HashSet<Blake3Hash>,
    stats: CopyStats,
    error: Option<Error>,
}

/// What [`FileCopies`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyStats {
    /// Distinct contents compressed in this publish.
    pub compressed: usize,
    /// Their total size before compression.
    pub raw_bytes: u64,
    /// Their total size after compression.
    pub packed_bytes: u64,
    /// Contents whose copy was taken from the previous release's copy pack.
    pub reused: usize,
    /// Time spent compressing, summed over the workers.
    pub compress_time: Duration,
}

impl std::fmt::Debug for FileCopies<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileCopies").finish_non_exhaustive()
    }
}

impl<'s> FileCopies<'s> {
    /// Copies compressed at zstd `level` into `spool`, or taken from `reusable` (the
    /// previous release's copy packs) when one has the content.
    pub fn new(spool: &'s Spool, level: i32, reusable: Vec<Arc<LoadedCopies>>) -> Self {
        Self {
            spool,
            level,
            state: Mutex::new(CopiesState {
                reusable,
                ..CopiesState::default()
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CopiesState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes sure `content` (of the file at `path`, hashing to `hash`) has a copy:
    /// takes an earlier one, or queues its compression on `queue`.
    pub(crate) fn submit<'q>(
        &'q self,
        queue: &WorkQueue<'q>,
        path: &RelativePath,
        hash: &Blake3Hash,
        content: Vec<u8>,
    ) {
        let reused = {
            let mut state = self.lock();
            if !state.seen.insert(hash.clone()) {
                return;
            }
            state
                .reusable
                .iter()
                .find(|copies| copies.copy(hash).is_some())
                .cloned()
        };
        if let Some(copies) = reused {
            let copy = copies.copy(hash).expect("found above");
            match self.spool.append(copy) {
                Ok(spooled) => {
                    let mut state = self.lock();
                    state.copies.insert(hash.clone(), spooled);
                    state.stats.reused += 1;
                }
                Err(error) => {
                    self.lock().error.get_or_insert(error);
                }
            }
            return;
        }
        let (path, hash) = (path.clone(), hash.clone());
        queue.submit(content.len() as u64, move || {
            if let Err(error) = self.compress(&path, &hash, &content) {
                self.lock().error.get_or_insert(error);
            }
        });
    }

    fn compress(&self, path: &RelativePath, hash: &Blake3Hash, content: &[u8]) -> Result<()> {
        let started = Instant::now();
        let copy = wavecast_delta::compress_copy(content, self.level).map_err(|source| {
            Error::Compress {
                what: format!("the copy of `{path}`"),
                source,
            }
        })?;
        let compress_time = started.elapsed();
        let spooled = self.spool.append(&copy)?;
        let mut state = self.lock();
        state.copies.insert(hash.clone(), spooled);
        let stats = &mut state.stats;
        stats.compressed += 1;
        stats.raw_bytes += content.len() as u64;
        stats.packed_bytes += spooled.length;
        stats.compress_time += compress_time;
        Ok(())
    }

    /// Lets go of the earlier copy packs: every file has been handed over.
    pub fn stop_reusing(&self) {
        self.lock().reusable.clear();
    }

    /// The first error met while compressing or spooling, if any.
    pub fn take_error(&self) -> Option<Error> {
        self.lock().error.take()
    }

    /// What was done so far.
    pub fn stats(&self) -> CopyStats {
        self.lock().stats.clone()
    }

    /// Where the copy of `content` is, once the work queue is drained.
    ///
    /// # Errors
    ///
    /// [`Error::MissingCopy`] when `content` was never handed over.
    pub fn copy(&self, content: &Blake3Hash) -> Result<Spooled> {
        self.lock()
            .copies
            .get(content)
            .copied()
            .ok_or_else(|| Error::MissingCopy {
                content: content.clone(),
            })
    }

    /// The bytes of the copy of `content` (an image's, to upload as its package).
    ///
    /// # Errors
    ///
    /// [`Error::MissingCopy`], [`Error::Write`] for the spool.
    pub fn copy_bytes(&self, content: &Blake3Hash) -> Result<Vec<u8>> {
        self.spool.read(self.copy(content)?)
    }

    /// Sets the `packed_size` of every file of `index` to the size of its copy.
    ///
    /// # Errors
    ///
    /// [`Error::MissingCopy`] for a content never handed over.
    pub fn fill_packed_sizes(&self, index: &mut FileIndex) -> Result<()> {
        for entry in &mut index.entries {
            if let EntryKind::File {
                blake3,
                packed_size,
                ..
            } = &mut entry.kind
            {
                *packed_size = self.copy(blake3)?.length;
            }
        }
        Ok(())
    }

    /// Writes the copy pack of the module indexed by `index` (its packed sizes
    /// filled) to a temporary file in `temp_dir`: the copy of each distinct content in
    /// index order, as [`FileIndex::copy_layout`] lays it out.
    ///
    /// # Errors
    ///
    /// [`Error::MissingCopy`], [`Error::Write`].
    pub fn write_copy_pack(&self, index: &FileIndex, temp_dir: &Path) -> Result<WrittenBlob> {
        let mut writer = BlobWriter::new(temp_dir)?;
        let mut written = HashSet::new();
        for hash in index.file_hashes() {
            if written.insert(hash) {
                let spooled = self.copy(hash)?;
                writer.append_spooled(self.spool, spooled)?;
            }
        }
        debug_assert_eq!(writer.size, index.copies_size());
        writer.finish()
    }
}

/// A blob written to a temporary file, ready to upload.
#[derive(Debug)]
pub struct WrittenBlob {
    /// The file, deleted when this value is dropped.
    pub file: tempfile::TempPath,
    /// Its size and blake3.
    pub blob: Blob,
}

/// Writes a blob to a temporary file, hashing and counting it on the way.
pub(crate) struct BlobWriter {
    writer: BufWriter<std::fs::File>,
    path: tempfile::TempPath,
    hasher: blake3::Hasher,
    size: u64,
}

impl BlobWriter {
    /// A new, empty temporary file in `temp_dir`.
    pub(crate) fn new(temp_dir: &Path) -> Result<Self> {
        let temp = tempfile::Builder::new()
            .prefix(".wavecast-blob-")
            .tempfile_in(temp_dir)
            .map_err(|source| Error::Write {
                path: temp_dir.to_owned(),
                source,
            })?;
        let (file, path) = temp.into_parts();
        Ok(Self {
            writer: BufWriter::with_capacity(1 << 20, file),
            path,
            hasher: blake3::Hasher::new(),
            size: 0,
        })
    }

    fn error(&self, source: io::Error) -> Error {
        Error::Write {
            path: self.path.to_path_buf(),
            source,
        }
    }

    /// Appends `bytes`.
    pub(crate) fn append(&mut self, bytes: &[u8]) -> Result<()> {
        self.writer
            .write_all(bytes)
            .map_err(|source| self.error(source))?;
        self.hasher.update(bytes);
        self.size += bytes.len() as u64;
        Ok(())
    }

    /// Appends the spooled run `spooled`.
    pub(crate) fn append_spooled(&mut self, spool: &Spool, spooled: Spooled) -> Result<()> {
        let mut hashing = HashingWrite {
            inner: &mut self.writer,
            hasher: &mut self.hasher,
        };
        if let Err(source) = spool.copy_to(spooled, &mut hashing)? {
            return Err(self.error(source));
        }
        self.size += spooled.length;
        Ok(())
    }

    /// The bytes written so far.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// Flushes the file and describes it.
    pub(crate) fn finish(mut self) -> Result<WrittenBlob> {
        self.writer.flush().map_err(|source| self.error(source))?;
        Ok(WrittenBlob {
            file: self.path,
            blob: Blob {
                size: self.size,
                blake3: self.hasher.finalize().into(),
            },
        })
    }
}

/// Hashes what it passes on.
struct HashingWrite<'a> {
    inner: &'a mut BufWriter<std::fs::File>,
    hasher: &'a mut blake3::Hasher,
}

impl Write for HashingWrite<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.hasher.update(&buf[..written]);
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Where the copies of a published module are, and what that blob must be: a tree's
/// copy pack, or an image's package (its one copy). `None` for a tree without a copy
/// pack (never written by this publisher).
pub fn copies_location(module: &Module) -> Option<(RelativePath, Blob)> {
    match module.kind {
        ModuleKind::Tree => {
            let copies = module.copies.clone()?;
            Some((layout::blob(&copies.blake3, BlobKind::Copies), copies))
        }
        ModuleKind::Image => Some((
            layout::blob(&module.package.blake3, BlobKind::FileCopy),
            module.package.clone(),
        )),
    }
}

/// An earlier release's module copies in memory (its copy pack, or an image's
/// package), checked against the size and blake3 its document gives, and sliced by
/// its index's copy layout.
#[derive(Debug)]
pub struct LoadedCopies {
    bytes: Vec<u8>,
    layout: HashMap<Blake3Hash, CopySlice>,
}

impl LoadedCopies {
    /// Reads the copies of `module` (indexed by `index`) from `storage`, or `None`
    /// when the site does not hold exactly the blob its document names, or that blob
    /// is shorter than the index lays out: such a module only costs patches.
    ///
    /// # Errors
    ///
    /// Reading the site failed.
    pub fn load(storage: &dyn Storage, module: &Module, index: &FileIndex) -> Result<Option<Self>> {
        let Some((path, blob)) = copies_location(module) else {
            return Ok(None);
        };
        let Some(bytes) = storage.get(&path)? else {
            return Ok(None);
        };
        if bytes.len() as u64 != blob.size || Blake3Hash::of(&bytes) != blob.blake3 {
            return Ok(None);
        }
        Ok(Self::new(bytes, index))
    }

    /// `bytes` sliced by the copy layout of `index`, or `None` when they are shorter
    /// than the layout.
    pub fn new(bytes: Vec<u8>, index: &FileIndex) -> Option<Self> {
        let layout: HashMap<Blake3Hash, CopySlice> = index
            .copy_layout()
            .into_iter()
            .map(|(hash, slice)| (hash.clone(), slice))
            .collect();
        let fits = layout.values().all(|slice| {
            slice
                .offset
                .checked_add(slice.length)
                .is_some_and(|end| end <= bytes.len() as u64)
        });
        fits.then_some(Self { bytes, layout })
    }

    /// The zstd copy of `content`, if these copies hold it.
    pub fn copy(&self, content: &Blake3Hash) -> Option<&[u8]> {
        let slice = self.layout.get(content)?;
        let start = usize::try_from(slice.offset).ok()?;
        let end = usize::try_from(slice.offset + slice.length).ok()?;
        self.bytes.get(start..end)
    }

    /// `content` itself, decompressed from its copy and checked against its size and
    /// blake3; `None` when these copies do not hold it or its copy is not it.
    pub fn content(&self, content: &Blake3Hash) -> Option<Vec<u8>> {
        let size = self.layout.get(content)?.size;
        let copy = self.copy(content)?;
        wavecast_delta::decompress_copy(copy, size)
            .ok()
            .filter(|bytes| bytes.len() as u64 == size && &Blake3Hash::of(bytes) == content)
    }

    /// The size of `content`, if these copies hold it.
    pub fn size(&self, content: &Blake3Hash) -> Option<u64> {
        self.layout.get(content).map(|slice| slice.size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wavecast_schema::{FileMode, IndexEntry};

    #[test]
    fn a_spool_gives_back_what_every_thread_appended() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path()).unwrap();
        let runs: Vec<(Vec<u8>, Spooled)> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..8u8)
                .map(|n| {
                    let spool = &spool;
                    scope.spawn(move || {
                        let bytes = vec![n; 1000 * usize::from(n) + 1];
                        let spooled = spool.append(&bytes).unwrap();
                        (bytes, spooled)
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).collect()
        });
        for (bytes, spooled) in &runs {
            assert_eq!(&spool.read(*spooled).unwrap(), bytes);
            let mut out = Vec::new();
            spool.copy_to(*spooled, &mut out).unwrap().unwrap();
            assert_eq!(&out, bytes);
        }
        let total: u64 = runs.iter().map(|(_, spooled)| spooled.length).sum();
        assert_eq!(*spool.end.lock().unwrap(), total);
    }

    fn file(path: &str, content: &[u8], packed_size: u64) -> IndexEntry {
        IndexEntry {
            path: path.parse().unwrap(),
            kind: EntryKind::File {
                size: content.len() as u64,
                blake3: Blake3Hash::of(content),
                packed_size,
            },
            mode: FileMode::from_permissions(0o644),
        }
    }

    #[test]
    fn loaded_copies_are_sliced_by_the_layout_and_checked() {
        let (a, b) = (b"first content".repeat(10), b"second".repeat(10));
        let (copy_a, copy_b) = (
            wavecast_delta::compress_copy(&a, 3).unwrap(),
            wavecast_delta::compress_copy(&b, 3).unwrap(),
        );
        let index = FileIndex::new(vec![
            file("a", &a, copy_a.len() as u64),
            file("b", &b, copy_b.len() as u64),
            file("c", &a, copy_a.len() as u64),
        ]);
        let pack = [copy_a.as_slice(), copy_b.as_slice()].concat();
        let loaded = LoadedCopies::new(pack.clone(), &index).unwrap();
        assert_eq!(loaded.copy(&Blake3Hash::of(&b)), Some(copy_b.as_slice()));
        assert_eq!(loaded.content(&Blake3Hash::of(&a)), Some(a.clone()));
        assert_eq!(loaded.size(&Blake3Hash::of(&b)), Some(b.len() as u64));
        assert_eq!(loaded.content(&Blake3Hash::of(b"absent")), None);
        // Shorter than the layout: refused. Copies swapped: no content checks out.
        assert!(LoadedCopies::new(pack[..pack.len() - 1].to_vec(), &index).is_none());
        let swapped = LoadedCopies::new([copy_b.clone(), copy_a.clone()].concat(), &index).unwrap();
        assert_eq!(swapped.content(&Blake3Hash::of(&a)), None);
    }
}
