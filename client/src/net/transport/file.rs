//! Local folders through `file://` URLs.

use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::protocol::{
    Conditional, RangeStream, Transport, TransportError, TransportErrorKind, Validators,
};
use crate::net::url::file_url_to_path;

/// Reads `file://` URLs (`file:///abs/path` or `file://localhost/abs/path`, with
/// percent-encoding) from the local file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct FileTransport;

impl FileTransport {
    /// A transport for local files.
    pub fn new() -> Self {
        Self
    }
}

impl FileTransport {
    fn open(url: &str) -> Result<(std::fs::File, PathBuf), TransportError> {
        let path: PathBuf = file_url_to_path(url).ok_or_else(|| {
            TransportError::new(
                TransportErrorKind::Unsupported,
                "only file:///absolute/path URLs on this machine can be read as files",
            )
        })?;
        match std::fs::File::open(&path) {
            Ok(file) => Ok((file, path)),
            Err(error) => {
                let kind = match error.kind() {
                    io::ErrorKind::NotFound => TransportErrorKind::NotFound,
                    io::ErrorKind::PermissionDenied => TransportErrorKind::Forbidden,
                    _ => TransportErrorKind::Other,
                };
                let message = match kind {
                    TransportErrorKind::NotFound => format!("`{}` does not exist", path.display()),
                    TransportErrorKind::Forbidden => {
                        format!("no permission to read `{}`", path.display())
                    }
                    _ => format!("cannot open `{}`", path.display()),
                };
                Err(TransportError::with_source(kind, message, error))
            }
        }
    }
}

impl Transport for FileTransport {
    fn fetch(&self, url: &str) -> Result<Box<dyn Read + Send>, TransportError> {
        Ok(Box::new(Self::open(url)?.0))
    }

    /// Seeks to `offset`, or starts at 0 when the file is shorter than that.
    fn fetch_from(&self, url: &str, offset: u64) -> Result<RangeStream, TransportError> {
        let (mut file, path) = Self::open(url)?;
        let seek_error = |path: &Path| {
            let message = format!("cannot seek in `{}`", path.display());
            move |error| TransportError::with_source(TransportErrorKind::Other, message, error)
        };
        let length = file.metadata().map_err(seek_error(&path))?.len();
        let start = if offset <= length { offset } else { 0 };
        file.seek(SeekFrom::Start(start))
            .map_err(seek_error(&path))?;
        Ok(RangeStream {
            start,
            reader: Box::new(file),
        })
    }

    /// Reads `start..end` only.
    fn fetch_span(&self, url: &str, start: u64, end: u64) -> Result<RangeStream, TransportError> {
        let stream = self.fetch_from(url, start)?;
        Ok(RangeStream {
            reader: Box::new(stream.reader.take(end.saturating_sub(stream.start))),
            start: stream.start,
        })
    }

    /// Compares the file's modification time (to the nanosecond) and length, kept as
    /// the `etag` validator.
    fn fetch_conditional(
        &self,
        url: &str,
        validators: &Validators,
    ) -> Result<Conditional, TransportError> {
        let (file, _) = Self::open(url)?;
        let tag = file.metadata().ok().and_then(|metadata| {
            let modified = metadata
                .modified()
                .ok()?
                .duration_since(std::time::UNIX_EPOCH)
                .ok()?;
            Some(format!(
                "{}.{:09}-{}",
                modified.as_secs(),
                modified.subsec_nanos(),
                metadata.len()
            ))
        });
        if tag.is_some() && validators.etag == tag {
            return Ok(Conditional::NotModified);
        }
        Ok(Conditional::Modified {
            reader: Box::new(file),
            validators: Validators {
                etag: tag,
                last_modified: None,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_read_and_missing_ones_are_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("a site");
        std::fs::create_dir(&folder).unwrap();
        std::fs::write(folder.join("x.json"), b"hello").unwrap();
        let base = crate::BaseUrl::parse(folder.to_str().unwrap()).unwrap();

        let mut text = String::new();
        let url = base.join(&"x.json".parse().unwrap());
        assert!(url.contains("a%20site"), "{url}");
        FileTransport
            .fetch(&url)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "hello");

        let Err(error) = FileTransport.fetch(&base.join(&"y.json".parse().unwrap())) else {
            panic!("y.json does not exist");
        };
        assert_eq!(error.kind(), TransportErrorKind::NotFound);

        let Err(error) = FileTransport.fetch("https://example.invalid/x") else {
            panic!()
        };
        assert_eq!(error.kind(), TransportErrorKind::Unsupported);
        let Err(error) = FileTransport.fetch("file://otherhost/x") else {
            panic!()
        };
        assert_eq!(error.kind(), TransportErrorKind::Unsupported);
    }

    #[test]
    fn a_ranged_fetch_seeks_and_an_offset_past_the_end_starts_over() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("x"), b"0123456789").unwrap();
        let url = crate::BaseUrl::parse(dir.path().to_str().unwrap())
            .unwrap()
            .join(&"x".parse().unwrap());
        let read = |offset| {
            let stream = FileTransport.fetch_from(&url, offset).unwrap();
            let mut text = String::new();
            { stream.reader }.read_to_string(&mut text).unwrap();
            (stream.start, text)
        };
        assert_eq!(read(4), (4, "456789".to_owned()));
        assert_eq!(read(10), (10, String::new()));
        assert_eq!(read(11), (0, "0123456789".to_owned()));
    }
}
