//! Writing the files of an unpack on threads of their own.
//!
//! Creating a file costs the kernel more than its bytes do: unpacking 2,400 files
//! spends most of its system time allocating inodes and directory entries, while
//! decompressing them takes a fraction of that. Creates in different folders run in
//! parallel. So [`unpack_module`](super::unpack::unpack_module) keeps reading and
//! checking the archive on its own thread, where every bound and check lives, and
//! hands each checked file, whole and in memory, to [`with_writers`]' threads, which
//! create, write, hash and set the mode of each.

use std::fs::File;
use std::io::{self, Write};
use std::num::NonZero;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Mutex, PoisonError};

use wavecast_schema::{Blake3Hash, RelativePath};

/// How many files may wait for a writer. With files of at most
/// [`super::unpack::PARALLEL_FILE_MAX`] bytes, that bounds the memory in flight.
const QUEUE: usize = 16;

/// The most writer threads: past a few, creates contend on the file system's locks.
const MAX_WRITERS: usize = 4;

/// The smallest file whose writeback starts as soon as it is written. Smaller ones
/// are left to the flush before the switch, which writes them together: one early
/// write per small file made 3,000 files of 8 KiB slower to install (0.24 to 0.28 s
/// against 0.16 to 0.19 s, on a new ext4), while for a 240 MB tree of 20 to 180 KB
/// files the early writes left the flush 10 ms of its 0.22 s.
const WRITEBACK_MIN: usize = 16 << 10;

/// A checked file to write.
#[derive(Debug)]
pub(crate) struct FileJob {
    /// Its path in the module, as reported back.
    pub(crate) relative: RelativePath,
    /// Where to create it; it must not exist.
    pub(crate) target: PathBuf,
    /// Its whole content.
    pub(crate) content: Vec<u8>,
    /// The permission bits it gets once written.
    pub(crate) mode: u32,
}

/// A file a writer could not write.
#[derive(Debug)]
pub(crate) struct WriteFailure {
    /// Where it was to be created.
    pub(crate) target: PathBuf,
    /// Why it was not.
    pub(crate) source: io::Error,
}

/// Hands files to the writers; see [`with_writers`].
#[derive(Debug)]
pub(crate) struct Writers<'a> {
    sender: SyncSender<FileJob>,
    failed: &'a AtomicBool,
    spare: &'a Spare,
}

/// Buffers the writers are done with, for the next files' content: a new buffer for
/// each file would cost the kernel a fresh, zeroed page for every 4 KiB read.
type Spare = Mutex<Vec<Vec<u8>>>;

impl Writers<'_> {
    /// An empty buffer for a file's content, one a writer is done with if any.
    pub(crate) fn buffer(&self) -> Vec<u8> {
        self.spare
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
            .unwrap_or_default()
    }

    /// Queues `job`, waiting while the queue is full. `false` when a writer has
    /// failed: the caller should stop, as [`with_writers`] reports that failure.
    pub(crate) fn submit(&self, job: FileJob) -> bool {
        !self.failed.load(Ordering::Relaxed) && self.sender.send(job).is_ok()
    }
}

/// Runs `read` on this thread while writer threads (one per core, at most
/// [`MAX_WRITERS`]) write what it submits. Returns what `read` returned, and once
/// every queued file is written, each file with the blake3 of what was written, or
/// the first failure (after which the rest of the queue is dropped).
pub(crate) fn with_writers<T>(
    read: impl FnOnce(&Writers<'_>) -> T,
) -> (
    T,
    std::result::Result<Vec<(RelativePath, Blake3Hash)>, WriteFailure>,
) {
    let threads = std::thread::available_parallelism()
        .map_or(1, NonZero::get)
        .min(MAX_WRITERS);
    let failed = AtomicBool::new(false);
    let spare = Spare::default();
    let (sender, receiver) = mpsc::sync_channel(QUEUE);
    let receiver = Mutex::new(receiver);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| scope.spawn(|| write_files(&receiver, &failed, &spare)))
            .collect();
        let writers = Writers {
            sender,
            failed: &failed,
            spare: &spare,
        };
        let read = read(&writers);
        drop(writers);
        let mut written = Ok(Vec::new());
        for handle in handles {
            let outcome = handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            match (&mut written, outcome) {
                (Ok(all), Ok(mut files)) => all.append(&mut files),
                (Ok(_), Err(failure)) => written = Err(failure),
                (Err(_), _) => {}
            }
        }
        (read, written)
    })
}

/// One writer: takes jobs until the queue closes. After a failure it keeps taking
/// them without writing, so that the reader never waits on a full queue nobody
/// empties.
fn write_files(
    jobs: &Mutex<Receiver<FileJob>>,
    failed: &AtomicBool,
    spare: &Spare,
) -> std::result::Result<Vec<(RelativePath, Blake3Hash)>, WriteFailure> {
    let next = || {
        jobs.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .recv()
            .ok()
    };
    let mut written = Vec::new();
    while let Some(job) = next() {
        if failed.load(Ordering::Relaxed) {
            continue;
        }
        match write_file(&job) {
            Ok(hash) => {
                written.push((job.relative, hash));
                let mut buffer = job.content;
                buffer.clear();
                let mut spare = spare.lock().unwrap_or_else(PoisonError::into_inner);
                if spare.len() < QUEUE + MAX_WRITERS {
                    spare.push(buffer);
                }
            }
            Err(source) => {
                failed.store(true, Ordering::Relaxed);
                while next().is_some() {}
                return Err(WriteFailure {
                    target: job.target,
                    source,
                });
            }
        }
    }
    Ok(written)
}

/// Creates the file (never opening an existing path, a link included), writes it
/// in one call, gives it its mode and, when it is large enough, starts writing it
/// to disk, so that the flush before the switch overlaps the unpack.
fn write_file(job: &FileJob) -> io::Result<Blake3Hash> {
    let mut file: File = crate::platform::create_private(&job.target)?;
    file.write_all(&job.content)?;
    crate::platform::set_file_mode(&file, job.mode)?;
    if job.content.len() >= WRITEBACK_MIN {
        crate::platform::start_writeback(&file);
    }
    Ok(Blake3Hash::of(&job.content))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(dir: &std::path::Path, name: &str, content: &[u8]) -> FileJob {
        FileJob {
            relative: name.parse().unwrap(),
            target: dir.join(name),
            content: content.to_vec(),
            mode: 0o644,
        }
    }

    #[test]
    fn every_submitted_file_is_written_and_hashed() {
        let dir = tempfile::tempdir().unwrap();
        let ((), written) = with_writers(|writers| {
            for i in 0..100 {
                let content = format!("file {i}").into_bytes();
                assert!(writers.submit(job(dir.path(), &format!("f{i}"), &content)));
            }
        });
        let mut written = written.unwrap();
        written.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(written.len(), 100);
        for (relative, hash) in written {
            let content = std::fs::read(dir.path().join(relative.as_str())).unwrap();
            assert_eq!(hash, Blake3Hash::of(&content));
            assert_eq!(
                content,
                format!("file {}", &relative.as_str()[1..]).into_bytes()
            );
        }
    }

    #[test]
    fn a_failure_stops_the_reader_and_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("taken"), b"already here").unwrap();
        let (submitted, written) = with_writers(|writers| {
            let mut submitted = 0;
            if writers.submit(job(dir.path(), "taken", b"new")) {
                submitted += 1;
            }
            // However long the reader goes on, it neither blocks nor writes on: the
            // writers drain the queue once one has failed.
            for i in 0..1000 {
                if !writers.submit(job(dir.path(), &format!("later{i}"), b"x")) {
                    break;
                }
                submitted += 1;
            }
            submitted
        });
        let failure = written.unwrap_err();
        assert_eq!(failure.target, dir.path().join("taken"));
        assert_eq!(failure.source.kind(), io::ErrorKind::AlreadyExists);
        assert!(submitted <= 1000, "{submitted}");
        assert_eq!(
            std::fs::read(dir.path().join("taken")).unwrap(),
            b"already here"
        );
    }
}
