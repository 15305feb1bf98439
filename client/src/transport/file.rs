//! Local folders through `file://` URLs.

use std::io::{self, Read};
use std::path::PathBuf;

use super::{Transport, TransportError, TransportErrorKind};
use crate::url::file_url_to_path;

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

impl Transport for FileTransport {
    fn fetch(&self, url: &str) -> Result<Box<dyn Read + Send>, TransportError> {
        let path: PathBuf = file_url_to_path(url).ok_or_else(|| {
            TransportError::new(
                TransportErrorKind::Unsupported,
                "only file:///absolute/path URLs on this machine can be read as files",
            )
        })?;
        match std::fs::File::open(&path) {
            Ok(file) => Ok(Box::new(file)),
            Err(error) => {
                let kind = match error.kind() {
                    io::ErrorKind::NotFound => TransportErrorKind::NotFound,
                    _ => TransportErrorKind::Other,
                };
                let message = match kind {
                    TransportErrorKind::NotFound => format!("`{}` does not exist", path.display()),
                    _ => format!("cannot open `{}`", path.display()),
                };
                Err(TransportError::with_source(kind, message, error))
            }
        }
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
}
