//! Downloading one file into a `.partial` file, resuming what an interrupted run left,
//! and one span of a file into memory.
//!
//! Nothing here is flushed to disk: a download is verified when it is used (size and
//! blake3, or the content it decompresses to), so a copy torn by a crash is caught and
//! fetched again, and the install flushes its tree once before switching to it.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use wavecast_schema::Blake3Hash;

use crate::install::cancel::Cancel;
use crate::install::error::{Error, Result};
use crate::net::limits::{DownloadLimits, Pace};
use crate::net::transport::{Transport, TransportError, TransportErrorKind};

/// What a download must be.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Expected<'a> {
    /// Exactly `size` bytes whose blake3 is `blake3` (packages, patches, indexes).
    Exact {
        /// The size in bytes.
        size: u64,
        /// The hash of the bytes.
        blake3: &'a Blake3Hash,
    },
    /// At most this many bytes, checked by the caller (file copies, named by the hash
    /// of what they decompress to).
    AtMost(u64),
}

impl Expected<'_> {
    fn limit(self) -> u64 {
        match self {
            Self::Exact { size, .. } => size,
            Self::AtMost(limit) => limit,
        }
    }
}

/// Told how a download goes. The layers above forward it to their own reporting
/// (the install names the module a download is for); downloading knows only bytes.
pub(crate) trait DownloadProgress {
    /// A download of at most `size` bytes from `url` is about to start (or resume).
    fn started(&self, url: &str, size: u64);

    /// `downloaded` bytes are on disk so far, counting any that an interrupted run
    /// left to resume from.
    fn progressed(&self, downloaded: u64);
}

/// One download into the cache.
#[derive(Clone, Copy)]
pub(crate) struct Download<'a> {
    /// Where the bytes come from.
    pub(crate) transport: &'a dyn Transport,
    /// The file's URL.
    pub(crate) url: &'a str,
    /// The `.partial` file the bytes go to.
    pub(crate) partial: &'a Path,
    /// What the bytes must be.
    pub(crate) expected: Expected<'a>,
    /// Told about progress.
    pub(crate) progress: &'a dyn DownloadProgress,
    /// Grows by every byte received over the transport.
    pub(crate) received: &'a AtomicU64,
    /// How slowly the bytes may arrive.
    pub(crate) limits: DownloadLimits,
    /// Stops the download between two chunks.
    pub(crate) cancel: &'a Cancel,
}

/// Downloads `download.url` into `download.partial`, resuming from the bytes already
/// there with [`Transport::fetch_from`].
///
/// Reads at most the expected size (more is an error, and the partial file is
/// removed), within `download.limits` (else [`NetError::TooSlow`](crate::NetError::TooSlow), and the partial file
/// stays). When the transport restarts from byte 0, so does the file. An
/// [`Expected::Exact`] download must end at exactly its size (else
/// [`Error::BlobTruncated`]) and hash to its blake3 (else [`Error::ChecksumMismatch`]
/// and the partial file is removed); when the partial file already holds every byte,
/// nothing is requested. A read error or a short download leaves the partial file for
/// the next attempt to resume. On success the caller renames the file.
pub(crate) fn download(download: &Download<'_>) -> Result<()> {
    let Download {
        transport,
        url,
        partial,
        expected,
        progress,
        received,
        limits,
        cancel,
    } = *download;
    let cache_error = |source| Error::Cache {
        path: partial.to_owned(),
        source,
    };
    let limit = expected.limit();
    let mut offset = match std::fs::metadata(partial) {
        Ok(metadata) => metadata.len(),
        Err(error) if error.kind() == io::ErrorKind::NotFound => 0,
        Err(source) => return Err(cache_error(source)),
    };
    if offset > limit {
        offset = 0;
    }
    // What the partial file holds, hashed as it arrives: the bytes are not read
    // back to check them (only those an earlier run kept are).
    let mut hasher = blake3::Hasher::new();
    if offset > 0 {
        hash_prefix(partial, offset, &mut hasher).map_err(cache_error)?;
    }
    let mut total = offset;
    if offset < limit || offset == 0 {
        progress.started(url, limit);
        let pace = Pace::start(limits);
        let stream = transport
            .fetch_from(url, offset)
            .map_err(|source| Error::FetchBlob {
                url: url.to_owned(),
                source,
            })?;
        if stream.start != offset {
            if stream.start != 0 {
                return Err(Error::FetchBlob {
                    url: url.to_owned(),
                    source: TransportError::new(
                        TransportErrorKind::Other,
                        format!(
                            "asked for the bytes from {offset} on, the transport started at {}",
                            stream.start
                        ),
                    ),
                });
            }
            offset = 0;
            hasher.reset();
        }
        let mut file = if offset == 0 {
            File::create(partial)
        } else {
            OpenOptions::new().append(true).open(partial)
        }
        .map_err(cache_error)?;
        total = offset;
        pace.check(url, 0)?;
        progress.progressed(total);
        let mut reader = stream.reader.take(limit - offset + 1);
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let count = read_chunk(&mut reader, &mut buffer, url)?;
            if count == 0 {
                break;
            }
            received.fetch_add(count as u64, Ordering::Relaxed);
            total += count as u64;
            if total > limit {
                drop(file);
                let _ = std::fs::remove_file(partial);
                return Err(Error::BlobTooLarge {
                    url: url.to_owned(),
                    size: limit,
                });
            }
            file.write_all(&buffer[..count]).map_err(cache_error)?;
            hasher.update(&buffer[..count]);
            progress.progressed(total);
            pace.check(url, total - offset)?;
            cancel.check()?;
        }
    }
    if let Expected::Exact { size, blake3 } = expected {
        if total < size {
            return Err(Error::BlobTruncated {
                url: url.to_owned(),
                size,
                received: total,
            });
        }
        let actual = Blake3Hash::from(hasher.finalize());
        if &actual != blake3 {
            let _ = std::fs::remove_file(partial);
            return Err(Error::ChecksumMismatch {
                url: url.to_owned(),
                expected: blake3.clone(),
                actual,
            });
        }
    }
    Ok(())
}

/// Reads the next chunk of `reader` into `buffer`, retrying an interrupted read;
/// 0 at the end of the stream.
fn read_chunk(reader: &mut impl Read, buffer: &mut [u8], url: &str) -> Result<usize> {
    loop {
        match reader.read(buffer) {
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            result => {
                return result.map_err(|source| Error::DownloadBlob {
                    url: url.to_owned(),
                    source,
                });
            }
        }
    }
}

/// Reads bytes `start..end` of the file at `url` into memory, within `limits`: the
/// bytes of one request to a copy pack. When the transport sends the whole file
/// instead, the bytes before `start` are read and dropped.
///
/// # Errors
///
/// [`Error::FetchBlob`], [`Error::DownloadBlob`], [`Error::BlobTruncated`] when the
/// stream ends early, [`NetError::TooSlow`](crate::NetError::TooSlow),
/// [`Error::Cancelled`].
pub(crate) fn download_span(
    transport: &dyn Transport,
    url: &str,
    (start, end): (u64, u64),
    progress: &dyn DownloadProgress,
    received: &AtomicU64,
    limits: DownloadLimits,
    cancel: &Cancel,
) -> Result<Vec<u8>> {
    let length = end - start;
    progress.started(url, length);
    let pace = Pace::start(limits);
    let stream = transport
        .fetch_span(url, start, end)
        .map_err(|source| Error::FetchBlob {
            url: url.to_owned(),
            source,
        })?;
    let skip = if stream.start == start { 0 } else { start };
    let mut reader = stream.reader.take(skip + length);
    let mut bytes = Vec::with_capacity(usize::try_from(length).unwrap_or(0).min(1 << 26));
    let mut buffer = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    pace.check(url, 0)?;
    loop {
        let count = read_chunk(&mut reader, &mut buffer, url)?;
        if count == 0 {
            break;
        }
        received.fetch_add(count as u64, Ordering::Relaxed);
        // The chunk holds bytes `total..total + count` of the stream; those before
        // `skip` are not part of the span.
        let from =
            usize::try_from(skip.saturating_sub(total)).map_or(count, |from| from.min(count));
        bytes.extend_from_slice(&buffer[from..count]);
        total += count as u64;
        progress.progressed(total.saturating_sub(skip).min(length));
        pace.check(url, total)?;
        cancel.check()?;
    }
    if (bytes.len() as u64) < length {
        return Err(Error::BlobTruncated {
            url: url.to_owned(),
            size: length,
            received: bytes.len() as u64,
        });
    }
    Ok(bytes)
}

/// Hashes the first `len` bytes of the file at `path` into `hasher`.
fn hash_prefix(path: &Path, len: u64, hasher: &mut blake3::Hasher) -> io::Result<()> {
    let copied = io::copy(&mut File::open(path)?.take(len), hasher)?;
    if copied == len {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the partial download shrank while it was read",
        ))
    }
}

/// The size and blake3 of the file at `path`.
pub(crate) fn hash_file(path: &Path) -> io::Result<(u64, Blake3Hash)> {
    let mut file = File::open(path)?;
    let mut hasher = blake3::Hasher::new();
    let size = io::copy(&mut file, &mut hasher)?;
    Ok((size, Blake3Hash::from(hasher.finalize())))
}
