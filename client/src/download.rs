//! Downloading packages into the content-addressed cache, verifying every byte.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use wavecast_schema::{Blake3Hash, Blob, ModuleName};

use crate::error::{Error, Result};
use crate::reporter::Reporter;
use crate::root::sync_dir;
use crate::transport::Transport;
use crate::url::BaseUrl;

/// Returns the path of a verified copy of `blob` in `cache_dir`, downloading it from
/// `base` when the cache has no intact copy.
///
/// The cache holds `<cache_dir>/<blake3>`. A cached file is re-hashed before reuse and
/// replaced when it does not match. A download streams into `<blake3>.partial` while
/// hashing, reads at most `size + 1` bytes (more than `size` is an error, as is
/// less), and is flushed and renamed into place only once the hash matches; on any
/// error the partial file is removed.
pub(crate) fn fetch_package(
    transport: &dyn Transport,
    base: &BaseUrl,
    module: &ModuleName,
    blob: &Blob,
    cache_dir: &Path,
    reporter: &dyn Reporter,
) -> Result<PathBuf> {
    let cached = cache_dir.join(blob.blake3.as_str());
    let cache_error = |path: &Path| {
        let path = path.to_owned();
        move |source| Error::Cache { path, source }
    };
    match hash_file(&cached) {
        Ok((size, hash)) if size == blob.size && hash == blob.blake3 => {
            reporter.on_cache_hit(module, blob.size);
            return Ok(cached);
        }
        Ok(_) => remove_if_present(&cached).map_err(cache_error(&cached))?,
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(Error::Cache {
                path: cached,
                source,
            });
        }
    }

    let url = base.join(&blob.path);
    reporter.on_download_start(module, &url, blob.size);
    let partial = cache_dir.join(format!("{}.partial", blob.blake3));
    let guard = RemoveOnDrop(Some(partial.clone()));
    let mut file = File::create(&partial).map_err(cache_error(&partial))?;
    let reader = transport.fetch(&url).map_err(|source| Error::FetchBlob {
        url: url.clone(),
        source,
    })?;
    let mut reader = reader.take(blob.size.saturating_add(1));
    let mut hasher = blake3::Hasher::new();
    let mut buffer = vec![0u8; 64 * 1024];
    let mut received: u64 = 0;
    loop {
        let count = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(count) => count,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => return Err(Error::DownloadBlob { url, source }),
        };
        received += count as u64;
        if received > blob.size {
            return Err(Error::BlobTooLarge {
                url,
                size: blob.size,
            });
        }
        hasher.update(&buffer[..count]);
        file.write_all(&buffer[..count])
            .map_err(cache_error(&partial))?;
        reporter.on_download_progress(module, received);
    }
    if received < blob.size {
        return Err(Error::BlobTruncated {
            url,
            size: blob.size,
            received,
        });
    }
    let actual = Blake3Hash::from(hasher.finalize());
    if actual != blob.blake3 {
        return Err(Error::ChecksumMismatch {
            url,
            expected: blob.blake3.clone(),
            actual,
        });
    }
    file.sync_all().map_err(cache_error(&partial))?;
    drop(file);
    std::fs::rename(&partial, &cached).map_err(cache_error(&cached))?;
    guard.disarm();
    sync_dir(cache_dir).map_err(cache_error(cache_dir))?;
    reporter.on_download_finish(module);
    Ok(cached)
}

/// The size and blake3 of the file at `path`.
fn hash_file(path: &Path) -> io::Result<(u64, Blake3Hash)> {
    let mut file = File::open(path)?;
    let mut hasher = blake3::Hasher::new();
    let size = io::copy(&mut file, &mut hasher)?;
    Ok((size, Blake3Hash::from(hasher.finalize())))
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

/// Removes a file when dropped, unless disarmed.
struct RemoveOnDrop(Option<PathBuf>);

impl RemoveOnDrop {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            // Best effort: a leftover `.partial` is truncated on the next attempt.
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::HashMap;
    use std::io::Cursor;
    use std::sync::Mutex;

    use super::*;
    use crate::reporter::NoReporter;
    use crate::transport::{TransportError, TransportErrorKind};

    /// Serves fixed bytes per URL and counts fetches.
    #[derive(Debug, Default)]
    pub(crate) struct MapTransport {
        pub(crate) files: Mutex<HashMap<String, Vec<u8>>>,
        pub(crate) fetches: Mutex<usize>,
    }

    impl MapTransport {
        pub(crate) fn insert(&self, url: String, bytes: Vec<u8>) {
            self.files.lock().unwrap().insert(url, bytes);
        }
    }

    impl Transport for MapTransport {
        fn fetch(&self, url: &str) -> std::result::Result<Box<dyn Read + Send>, TransportError> {
            *self.fetches.lock().unwrap() += 1;
            match self.files.lock().unwrap().get(url) {
                Some(bytes) => Ok(Box::new(Cursor::new(bytes.clone()))),
                None => Err(TransportError::new(
                    TransportErrorKind::NotFound,
                    "no such file",
                )),
            }
        }
    }

    fn setup(served: &[u8], declared: &[u8]) -> (tempfile::TempDir, MapTransport, BaseUrl, Blob) {
        let dir = tempfile::tempdir().unwrap();
        let base = BaseUrl::parse("https://example.com/site").unwrap();
        let blake3 = Blake3Hash::of(declared);
        let blob = Blob {
            path: format!("blobs/{blake3}.tar.gz").parse().unwrap(),
            size: declared.len() as u64,
            blake3,
        };
        let transport = MapTransport::default();
        transport.insert(base.join(&blob.path), served.to_vec());
        (dir, transport, base, blob)
    }

    fn fetch(
        dir: &tempfile::TempDir,
        transport: &MapTransport,
        base: &BaseUrl,
        blob: &Blob,
    ) -> Result<PathBuf> {
        let module: ModuleName = "app".parse().unwrap();
        fetch_package(transport, base, &module, blob, dir.path(), &NoReporter)
    }

    fn leftovers(dir: &tempfile::TempDir) -> Vec<String> {
        std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn a_good_download_lands_in_the_cache() {
        let content = vec![42u8; 200_000];
        let (dir, transport, base, blob) = setup(&content, &content);
        let path = fetch(&dir, &transport, &base, &blob).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), content);
        assert_eq!(leftovers(&dir), vec![blob.blake3.to_string()]);
    }

    #[test]
    fn too_many_bytes_are_refused() {
        let (dir, transport, base, blob) = setup(b"hello world!", b"hello world");
        let error = fetch(&dir, &transport, &base, &blob).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("more than the declared 11 bytes"),
            "{error}"
        );
        assert!(leftovers(&dir).is_empty());
    }

    #[test]
    fn too_few_bytes_are_refused() {
        let (dir, transport, base, blob) = setup(b"hello", b"hello world");
        let error = fetch(&dir, &transport, &base, &blob).unwrap_err();
        assert!(
            matches!(
                error,
                Error::BlobTruncated {
                    received: 5,
                    size: 11,
                    ..
                }
            ),
            "{error}"
        );
        assert!(leftovers(&dir).is_empty());
    }

    #[test]
    fn a_wrong_hash_is_refused_naming_both_hashes() {
        let (dir, transport, base, blob) = setup(b"hello w0rld", b"hello world");
        let error = fetch(&dir, &transport, &base, &blob).unwrap_err();
        let message = error.to_string();
        assert!(message.contains(blob.blake3.as_str()), "{message}");
        assert!(
            message.contains(Blake3Hash::of(b"hello w0rld").as_str()),
            "{message}"
        );
        assert!(leftovers(&dir).is_empty());
    }

    #[test]
    fn a_verified_cache_entry_is_reused_and_a_corrupt_one_replaced() {
        let (dir, transport, base, blob) = setup(b"hello world", b"hello world");
        let path = fetch(&dir, &transport, &base, &blob).unwrap();
        fetch(&dir, &transport, &base, &blob).unwrap();
        assert_eq!(
            *transport.fetches.lock().unwrap(),
            1,
            "the cached copy must be reused"
        );

        std::fs::write(&path, b"hello w0rld").unwrap();
        fetch(&dir, &transport, &base, &blob).unwrap();
        assert_eq!(
            *transport.fetches.lock().unwrap(),
            2,
            "a corrupt copy must be re-fetched"
        );
        assert_eq!(std::fs::read(&path).unwrap(), b"hello world");
    }
}
