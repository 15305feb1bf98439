//! Writing content while checking it: [`HashingWriter`] counts, hashes and bounds what
//! passes through; [`VerifiedFile`] uses it to write one file of a new release tree
//! against its file index.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use wavecast_schema::{Blake3Hash, FileMode};

use crate::install::error::{Error, Result};

/// A new file that is kept only if it receives exactly the content its index
/// describes.
///
/// Writes past the expected size fail (so a hostile patch or copy cannot fill the
/// disk); [`finish`](Self::finish) keeps the file, with its mode, when the size and
/// blake3 match, and removes it otherwise. Errors of the file itself are remembered,
/// so the caller can tell a local failure (stop) from wrong content (fall back).
#[derive(Debug)]
pub(crate) struct VerifiedFile {
    writer: HashingWriter<File>,
    path: PathBuf,
}

/// A writer that counts and hashes what it passes on to `inner`, refuses to pass on
/// more than `limit` bytes, and remembers an error of `inner` itself, so that a
/// caller can tell a local failure (a full disk: stop) from bad content coming in (a
/// decoder's error, too many bytes: fall back or refuse).
#[derive(Debug)]
pub(crate) struct HashingWriter<W> {
    inner: W,
    hasher: blake3::Hasher,
    written: u64,
    limit: u64,
    over_limit: bool,
    failure: Option<io::Error>,
}

impl<W> HashingWriter<W> {
    /// A writer passing at most `limit` bytes on to `inner`.
    pub(crate) fn new(inner: W, limit: u64) -> Self {
        Self {
            inner,
            hasher: blake3::Hasher::new(),
            written: 0,
            limit,
            over_limit: false,
            failure: None,
        }
    }

    /// The bytes passed on so far.
    pub(crate) fn written(&self) -> u64 {
        self.written
    }

    /// The blake3 of the bytes passed on so far.
    pub(crate) fn hash(&self) -> Blake3Hash {
        self.hasher.finalize().into()
    }

    /// Whether a write was refused for going past the limit.
    pub(crate) fn over_limit(&self) -> bool {
        self.over_limit
    }

    /// The error `inner` returned, if any (taken, so it is reported once).
    pub(crate) fn take_failure(&mut self) -> Option<io::Error> {
        self.failure.take()
    }

    /// The writer written to.
    pub(crate) fn get_ref(&self) -> &W {
        &self.inner
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buffer: &[u8]) -> io::Result<usize> {
        if self.written + buffer.len() as u64 > self.limit {
            self.over_limit = true;
            return Err(io::Error::other("more bytes than declared"));
        }
        match self.inner.write(buffer) {
            Ok(count) => {
                self.hasher.update(&buffer[..count]);
                self.written += count as u64;
                Ok(count)
            }
            Err(error) => {
                let message = error.to_string();
                self.failure = Some(error);
                Err(io::Error::other(message))
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl VerifiedFile {
    /// Creates `path`, which must not exist yet, for `size` bytes. It stays private
    /// (mode 600) until finished.
    ///
    /// # Errors
    ///
    /// [`Error::Unpack`].
    pub(crate) fn create(path: &Path, size: u64) -> Result<Self> {
        let file = crate::platform::create_private(path).map_err(|source| Error::Unpack {
            path: path.to_owned(),
            source,
        })?;
        Ok(Self {
            writer: HashingWriter::new(file, size),
            path: path.to_owned(),
        })
    }

    /// Keeps the file with `mode` and answers `true` when exactly the expected size
    /// was written and it hashes to `blake3`; otherwise removes it and answers
    /// `false`.
    ///
    /// # Errors
    ///
    /// [`Error::Unpack`] when writing, setting the mode or removing failed.
    pub(crate) fn finish(mut self, blake3: &Blake3Hash, mode: FileMode) -> Result<bool> {
        let unpack_error = |path: &Path| {
            let path = path.to_owned();
            move |source| Error::Unpack { path, source }
        };
        if let Some(source) = self.writer.take_failure() {
            return Err(unpack_error(&self.path)(source));
        }
        let matches = !self.writer.over_limit()
            && self.writer.written() == self.writer.limit
            && &self.writer.hash() == blake3;
        if matches {
            crate::platform::set_file_mode(self.writer.get_ref(), mode.bits())
                .map_err(unpack_error(&self.path))?;
        } else {
            drop(self.writer);
            std::fs::remove_file(&self.path).map_err(unpack_error(&self.path))?;
        }
        Ok(matches)
    }
}

impl Write for VerifiedFile {
    fn write(&mut self, buffer: &[u8]) -> io::Result<usize> {
        self.writer.write(buffer)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_declared_content_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mode = FileMode::from_permissions(0o751);
        let hash = Blake3Hash::of(b"hello");

        let mut file = VerifiedFile::create(&path, 5).unwrap();
        file.write_all(b"hello").unwrap();
        assert!(file.finish(&hash, mode).unwrap());
        assert_eq!(std::fs::read(&path).unwrap(), b"hello");
        crate::platform::assert_mode(&path, 0o751);
        assert!(VerifiedFile::create(&path, 5).is_err(), "never overwrites");
        std::fs::remove_file(&path).unwrap();

        let mut file = VerifiedFile::create(&path, 5).unwrap();
        file.write_all(b"hellO").unwrap();
        assert!(!file.finish(&hash, mode).unwrap());
        assert!(!path.exists());

        let mut file = VerifiedFile::create(&path, 5).unwrap();
        assert!(file.write_all(b"hello world").is_err());
        assert!(!file.finish(&hash, mode).unwrap());
        assert!(!path.exists());

        let mut file = VerifiedFile::create(&path, 5).unwrap();
        file.write_all(b"hell").unwrap();
        assert!(!file.finish(&hash, mode).unwrap());
    }
}
