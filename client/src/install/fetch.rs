//! The content-addressed download cache, `ROOT/.wavecast/cache/`, and the index
//! cache beside it, `ROOT/.wavecast/indexes/`.
//!
//! ```text
//! cache/<blake3>          packages and patches, named by the hash of their bytes
//! cache/<blake3>.zst      file copies, named by the hash of what they decompress to
//! cache/<name>.partial    a download in progress; the next run resumes it
//! indexes/<blake3>        file indexes of the installed releases (and the target)
//! ```
//!
//! Nothing enters either cache unverified: packages, patches and indexes are renamed
//! into place once their size and blake3 match, file copies once they decompressed
//! to the content their index describes. A verified entry is never downloaded again;
//! an entry that no longer verifies is replaced. After an install, [`prune`](crate::store::cache::prune) empties
//! the download cache and keeps only the indexes of installed releases, which the
//! next update plans from without the network.

use std::cell::{Cell, RefCell};
use std::io;
use std::path::{Path, PathBuf};

use wavecast_schema::{Blake3Hash, Blob, FileIndex, ModuleName, PlatformRelease, RelativePath};
use wavecast_site::layout::{self, BlobKind};

use crate::install::download::{Download, DownloadProgress, Expected, download, hash_file};
use crate::install::error::{Error, Result};
use crate::install::plan::{FileAction, UpdatePlan};
use crate::install::reporter::{NoReporter, Reporter};
use crate::install::tree::ReleaseIndexes;
use crate::net::limits::DownloadLimits;
use crate::net::transport::Transport;
use crate::net::url::BaseUrl;
use crate::store::root::{InstallRoot, create_dir_all, sync_dir};

/// The cache of one install root, with the hosts it downloads from.
pub(crate) struct Cache<'a> {
    dir: PathBuf,
    indexes: PathBuf,
    transport: &'a dyn Transport,
    hosts: &'a [BaseUrl],
    reporter: &'a dyn Reporter,
    limits: DownloadLimits,
    received: Cell<u64>,
    used: RefCell<Vec<BaseUrl>>,
}

impl std::fmt::Debug for Cache<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("dir", &self.dir)
            .field("indexes", &self.indexes)
            .field("hosts", &self.hosts)
            .field("limits", &self.limits)
            .field("received", &self.received)
            .finish_non_exhaustive()
    }
}

impl<'a> Cache<'a> {
    /// The caches of `root` (created if needed), downloading from `hosts` through
    /// `transport` within `limits` and telling `reporter` about downloads.
    ///
    /// Each blob is asked of the hosts in order until one sends it intact: a host
    /// that fails to send it, sends it too slowly, or sends bytes that do not verify,
    /// is passed over (its wrong bytes are discarded first; a download cut short may
    /// resume on the next host). When every host fails, the first host's error is
    /// returned.
    pub(crate) fn open(
        root: &InstallRoot,
        transport: &'a dyn Transport,
        hosts: &'a [BaseUrl],
        reporter: &'a dyn Reporter,
        limits: DownloadLimits,
    ) -> Result<Self> {
        let (dir, indexes) = (root.cache(), root.indexes());
        create_dir_all(&dir)?;
        create_dir_all(&indexes)?;
        Ok(Self {
            dir,
            indexes,
            transport,
            hosts,
            reporter,
            limits,
            received: Cell::new(0),
            used: RefCell::new(Vec::new()),
        })
    }

    /// The hosts that sent at least one blob, in the order they first did.
    pub(crate) fn hosts_used(&self) -> Vec<BaseUrl> {
        self.used.borrow().clone()
    }

    fn record_use(&self, host: &BaseUrl) {
        let mut used = self.used.borrow_mut();
        if !used.contains(host) {
            used.push(host.clone());
        }
    }

    /// Bytes received over the transport so far.
    pub(crate) fn received(&self) -> u64 {
        self.received.get()
    }

    /// The URL of a site path on the first host, for messages.
    pub(crate) fn url(&self, path: &RelativePath) -> String {
        self.hosts
            .first()
            .map_or_else(|| path.as_str().to_owned(), |host| host.join(path))
    }

    /// Tries `fetch` with each host in turn, until one succeeds or fails with an
    /// error that is not the host's ([`Error::is_remote`]). Returns the first
    /// host's error when all fail.
    fn try_hosts<T>(
        &self,
        path: &RelativePath,
        mut fetch: impl FnMut(&str) -> Result<T>,
    ) -> Result<T> {
        let mut first_error = None;
        for host in self.hosts {
            match fetch(&host.join(path)) {
                Ok(value) => {
                    self.record_use(host);
                    return Ok(value);
                }
                Err(error) if error.is_remote() => {
                    first_error.get_or_insert(error);
                }
                Err(error) => return Err(error),
            }
        }
        Err(first_error.unwrap_or_else(|| Error::FetchBlob {
            url: path.as_str().to_owned(),
            source: crate::net::transport::TransportError::new(
                crate::net::transport::TransportErrorKind::Other,
                "no host to download from".to_owned(),
            ),
        }))
    }

    /// A verified copy of a module's package.
    pub(crate) fn package(&self, module: &ModuleName, package: &Blob) -> Result<PathBuf> {
        self.exact(
            &self.dir,
            module,
            &package.path,
            package.size,
            &package.blake3,
            self.reporter,
        )
    }

    /// A verified copy of a patch, stored on the site at `blobs/<blake3>.patch`.
    pub(crate) fn patch(
        &self,
        module: &ModuleName,
        size: u64,
        blake3: &Blake3Hash,
    ) -> Result<PathBuf> {
        let path = layout::blob(blake3, BlobKind::Patch);
        self.exact(&self.dir, module, &path, size, blake3, self.reporter)
    }

    /// A module's file index, from the index cache or fetched into it (silently).
    ///
    /// # Errors
    ///
    /// Download errors, or [`Error::ParseFileIndex`].
    pub(crate) fn index(&self, module: &ModuleName, blob: &Blob) -> Result<FileIndex> {
        let path = self.exact(
            &self.indexes,
            module,
            &blob.path,
            blob.size,
            &blob.blake3,
            &NoReporter,
        )?;
        let bytes = std::fs::read(&path).map_err(|source| Error::Cache { path, source })?;
        FileIndex::parse(&bytes).map_err(|source| Error::ParseFileIndex {
            url: self.url(&blob.path),
            source,
        })
    }

    /// The file index of every module of `release`, through the index cache (which
    /// then keeps them while the release is installed), checked against the module
    /// and assembled into the release's tree.
    ///
    /// # Errors
    ///
    /// The errors of [`index`](Self::index) and of [`ReleaseIndexes::assemble`].
    pub(crate) fn release_indexes(&self, release: &PlatformRelease) -> Result<ReleaseIndexes> {
        ReleaseIndexes::assemble(
            release,
            |name, module| self.index(name, &module.file_index),
            |module| self.url(&module.file_index.path),
        )
    }

    /// Hands a compressed copy of the file whose content hashes to `content` to
    /// `use_copy`, which decompresses it into place and answers whether the result is
    /// right (`Ok(false)` leaves nothing behind).
    ///
    /// A cached copy is tried first. Otherwise the copy is downloaded (at most
    /// `packed_size` bytes, resuming a `.partial`) and kept once `use_copy` accepts it.
    /// A refused download shorter than `packed_size` may have been cut short: it stays
    /// as a `.partial` for the next run to resume. A refused download of the full size
    /// is removed, and downloaded once more from the start if it was resumed.
    ///
    /// # Errors
    ///
    /// Download errors, [`Error::CorruptFileCopy`] when the copy is refused, and the
    /// errors of `use_copy`.
    pub(crate) fn file_copy(
        &self,
        module: &ModuleName,
        content: &Blake3Hash,
        packed_size: u64,
        use_copy: &mut dyn FnMut(&Path) -> Result<bool>,
    ) -> Result<()> {
        let cache_error = |path: &Path| {
            let path = path.to_owned();
            move |source| Error::Cache { path, source }
        };
        let cached = self.dir.join(format!("{content}.zst"));
        if let Ok(metadata) = std::fs::metadata(&cached) {
            if use_copy(&cached)? {
                self.reporter.on_cache_hit(module, metadata.len());
                return Ok(());
            }
            remove_if_present(&cached).map_err(cache_error(&cached))?;
        }
        let path = layout::blob(content, BlobKind::FileCopy);
        let partial = self.dir.join(format!("{content}.zst.partial"));
        self.try_hosts(&path, |url| {
            loop {
                let resuming = partial_len(&partial) > 0;
                download(&Download {
                    transport: self.transport,
                    url,
                    partial: &partial,
                    expected: Expected::AtMost(packed_size),
                    progress: &ModuleDownload {
                        module,
                        reporter: self.reporter,
                    },
                    received: &self.received,
                    limits: self.limits,
                })?;
                if use_copy(&partial)? {
                    std::fs::rename(&partial, &cached).map_err(cache_error(&cached))?;
                    sync_dir(&self.dir).map_err(cache_error(&self.dir))?;
                    self.reporter.on_download_finish(module);
                    return Ok(());
                }
                if partial_len(&partial) < packed_size {
                    return Err(Error::CorruptFileCopy {
                        url: url.to_owned(),
                    });
                }
                remove_if_present(&partial).map_err(cache_error(&partial))?;
                if !resuming {
                    return Err(Error::CorruptFileCopy {
                        url: url.to_owned(),
                    });
                }
            }
        })
    }

    /// Bytes of `plan`'s downloads the cache already holds, whole or as partial
    /// downloads (what an interrupted install left): the install does not download
    /// them again. `release` is the release `plan` was made for.
    pub(crate) fn held_bytes(&self, plan: &UpdatePlan, release: &PlatformRelease) -> u64 {
        let held = |name: String, size: u64| {
            let whole = partial_len(&self.dir.join(&name));
            let partial = partial_len(&self.dir.join(format!("{name}.partial")));
            whole.max(partial).min(size)
        };
        plan.modules
            .iter()
            .map(|module| {
                if module.use_package {
                    release.modules.get(&module.name).map_or(0, |listed| {
                        held(listed.package.blake3.to_string(), listed.package.size)
                    })
                } else {
                    module
                        .files
                        .iter()
                        .map(|file| match &file.action {
                            FileAction::Keep => 0,
                            FileAction::Patch(patch) => held(patch.blake3.to_string(), patch.size),
                            FileAction::Download => {
                                held(format!("{}.zst", file.blake3), file.packed_size)
                            }
                        })
                        .sum()
                }
            })
            .sum()
    }

    /// Returns the path of a verified copy of the blob at `path` in `dir`, named by
    /// its hash, downloading it (or the rest of it) when the cache has no intact copy.
    /// A resumed download whose hash does not match is downloaded once more from the
    /// start: the bytes kept from the earlier run may be the wrong ones.
    fn exact(
        &self,
        dir: &Path,
        module: &ModuleName,
        path: &RelativePath,
        size: u64,
        blake3: &Blake3Hash,
        reporter: &dyn Reporter,
    ) -> Result<PathBuf> {
        let cached = dir.join(blake3.as_str());
        let cache_error = |path: &Path| {
            let path = path.to_owned();
            move |source| Error::Cache { path, source }
        };
        match hash_file(&cached) {
            Ok((found, hash)) if found == size && &hash == blake3 => {
                reporter.on_cache_hit(module, size);
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
        let partial = dir.join(format!("{blake3}.partial"));
        self.try_hosts(path, |url| {
            loop {
                let resuming = partial_len(&partial) > 0;
                match download(&Download {
                    transport: self.transport,
                    url,
                    partial: &partial,
                    expected: Expected::Exact { size, blake3 },
                    progress: &ModuleDownload { module, reporter },
                    received: &self.received,
                    limits: self.limits,
                }) {
                    Ok(()) => return Ok(()),
                    Err(Error::ChecksumMismatch { .. }) if resuming => {}
                    Err(error) => return Err(error),
                }
            }
        })?;
        std::fs::rename(&partial, &cached).map_err(cache_error(&cached))?;
        sync_dir(dir).map_err(cache_error(dir))?;
        reporter.on_download_finish(module);
        Ok(cached)
    }
}

/// A download for `module`, told to the install's reporter.
struct ModuleDownload<'a> {
    module: &'a ModuleName,
    reporter: &'a dyn Reporter,
}

impl DownloadProgress for ModuleDownload<'_> {
    fn started(&self, url: &str, size: u64) {
        self.reporter.on_download_start(self.module, url, size);
    }

    fn progressed(&self, downloaded: u64) {
        self.reporter.on_download_progress(self.module, downloaded);
    }
}

fn partial_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |metadata| metadata.len())
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::HashMap;
    use std::io::{Cursor, Read};
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};

    use std::collections::BTreeSet;

    use super::*;
    use crate::net::transport::{RangeStream, TransportError, TransportErrorKind};
    use crate::store::cache::prune;

    /// Serves fixed bytes per URL, honouring offsets (unless told not to), and logs
    /// every request as its URL and the offset asked for. A URL can be cut: its body
    /// then fails with a connection reset after that many bytes.
    #[derive(Debug, Default)]
    pub(crate) struct MapTransport {
        files: Mutex<HashMap<String, Vec<u8>>>,
        cuts: Mutex<HashMap<String, usize>>,
        requests: Mutex<Vec<(String, u64)>>,
        ignore_ranges: AtomicBool,
    }

    impl MapTransport {
        pub(crate) fn insert(&self, url: String, bytes: Vec<u8>) {
            self.files.lock().unwrap().insert(url, bytes);
        }

        pub(crate) fn remove(&self, url: &str) {
            self.files.lock().unwrap().remove(url);
        }

        /// Cuts the body of `url` after `after` bytes, once.
        pub(crate) fn cut(&self, url: &str, after: usize) {
            self.cuts.lock().unwrap().insert(url.to_owned(), after);
        }

        pub(crate) fn ignore_ranges(&self) {
            self.ignore_ranges.store(true, Ordering::SeqCst);
        }

        /// Every request so far: URL and offset.
        pub(crate) fn requests(&self) -> Vec<(String, u64)> {
            self.requests.lock().unwrap().clone()
        }

        pub(crate) fn clear_requests(&self) {
            self.requests.lock().unwrap().clear();
        }
    }

    /// A body that breaks off.
    struct Reset;

    impl Read for Reset {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::ErrorKind::ConnectionReset.into())
        }
    }

    impl Transport for MapTransport {
        fn fetch(&self, url: &str) -> std::result::Result<Box<dyn Read + Send>, TransportError> {
            Ok(self.fetch_from(url, 0)?.reader)
        }

        fn fetch_from(
            &self,
            url: &str,
            offset: u64,
        ) -> std::result::Result<RangeStream, TransportError> {
            self.requests.lock().unwrap().push((url.to_owned(), offset));
            let Some(bytes) = self.files.lock().unwrap().get(url).cloned() else {
                return Err(TransportError::new(
                    TransportErrorKind::NotFound,
                    "no such file",
                ));
            };
            let honour = !self.ignore_ranges.load(Ordering::SeqCst);
            let start = if honour && offset <= bytes.len() as u64 {
                offset
            } else {
                0
            };
            let body = bytes[usize::try_from(start).unwrap()..].to_vec();
            let reader: Box<dyn Read + Send> = match self.cuts.lock().unwrap().remove(url) {
                Some(after) => {
                    Box::new(Cursor::new(body[..after.min(body.len())].to_vec()).chain(Reset))
                }
                None => Box::new(Cursor::new(body)),
            };
            Ok(RangeStream { start, reader })
        }
    }

    struct Setup {
        _dir: tempfile::TempDir,
        root: InstallRoot,
        transport: MapTransport,
        base: BaseUrl,
        blob: Blob,
        content: Vec<u8>,
    }

    impl Setup {
        /// A site serving `served` for a blob declared as `declared`.
        fn new(served: &[u8], declared: &[u8]) -> Self {
            let dir = tempfile::tempdir().unwrap();
            let root = InstallRoot::new(dir.path());
            let base = BaseUrl::parse("https://example.com/site").unwrap();
            let blake3 = Blake3Hash::of(declared);
            let blob = Blob {
                path: format!("blobs/{blake3}.tar.gz").parse().unwrap(),
                size: declared.len() as u64,
                blake3,
            };
            let transport = MapTransport::default();
            transport.insert(base.join(&blob.path), served.to_vec());
            Self {
                _dir: dir,
                root,
                transport,
                base,
                blob,
                content: declared.to_vec(),
            }
        }

        fn url(&self) -> String {
            self.base.join(&self.blob.path)
        }

        fn cache(&self) -> Cache<'_> {
            Cache::open(
                &self.root,
                &self.transport,
                std::slice::from_ref(&self.base),
                &NoReporter,
                DownloadLimits::default(),
            )
            .unwrap()
        }

        fn fetch(&self) -> Result<PathBuf> {
            self.cache().package(&"app".parse().unwrap(), &self.blob)
        }

        fn partial(&self) -> PathBuf {
            self.root
                .cache()
                .join(format!("{}.partial", self.blob.blake3))
        }

        fn leftovers(&self) -> Vec<String> {
            let mut names: Vec<String> = std::fs::read_dir(self.root.cache())
                .unwrap()
                .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        }
    }

    fn content(len: usize) -> Vec<u8> {
        crate::install::patch::tests::noise(len, 7)
    }

    #[test]
    fn each_blob_fails_over_to_the_next_host_and_wrong_bytes_are_discarded() {
        let good = content(200_000);
        let mut wrong = good.clone();
        wrong[100_000] ^= 0xff;
        let setup = Setup::new(&wrong, &good);
        let hosts = [
            BaseUrl::parse("https://down.example.com/").unwrap(),
            setup.base.clone(),
            BaseUrl::parse("https://mirror.example.com/").unwrap(),
            BaseUrl::parse("https://unused.example.com/").unwrap(),
        ];
        let mirror_url = hosts[2].join(&setup.blob.path);
        setup.transport.insert(mirror_url.clone(), good.clone());
        let cache = Cache::open(
            &setup.root,
            &setup.transport,
            &hosts,
            &NoReporter,
            DownloadLimits::default(),
        )
        .unwrap();
        let path = cache.package(&"app".parse().unwrap(), &setup.blob).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), good);
        assert_eq!(cache.hosts_used(), [hosts[2].clone()]);
        let asked: Vec<String> = setup
            .transport
            .requests()
            .into_iter()
            .map(|(url, offset)| {
                assert_eq!(offset, 0, "{url}: the wrong bytes were not resumed");
                url
            })
            .collect();
        assert_eq!(
            asked,
            [hosts[0].join(&setup.blob.path), setup.url(), mirror_url]
        );

        // When every host fails, the first host's error is returned.
        let other = Setup::new(&wrong, &good);
        let hosts = [other.base.clone(), hosts[0].clone()];
        let cache = Cache::open(
            &other.root,
            &other.transport,
            &hosts,
            &NoReporter,
            DownloadLimits::default(),
        )
        .unwrap();
        let error = cache
            .package(&"app".parse().unwrap(), &other.blob)
            .unwrap_err();
        assert!(matches!(error, Error::ChecksumMismatch { .. }), "{error}");
        assert!(other.leftovers().is_empty(), "{:?}", other.leftovers());
        assert!(cache.hosts_used().is_empty());
    }

    #[test]
    fn a_good_download_lands_in_the_cache() {
        let setup = Setup::new(&content(200_000), &content(200_000));
        let cache = setup.cache();
        let path = cache.package(&"app".parse().unwrap(), &setup.blob).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), setup.content);
        assert_eq!(setup.leftovers(), [setup.blob.blake3.to_string()]);
        assert_eq!(cache.received(), 200_000);
    }

    #[test]
    fn too_many_bytes_are_refused_and_discarded() {
        let setup = Setup::new(b"hello world!", b"hello world");
        let error = setup.fetch().unwrap_err();
        assert!(
            error
                .to_string()
                .contains("more than the declared 11 bytes"),
            "{error}"
        );
        assert!(setup.leftovers().is_empty());
    }

    #[test]
    fn a_wrong_hash_is_refused_naming_both_hashes() {
        let setup = Setup::new(b"hello w0rld", b"hello world");
        let message = setup.fetch().unwrap_err().to_string();
        assert!(message.contains(setup.blob.blake3.as_str()), "{message}");
        assert!(
            message.contains(Blake3Hash::of(b"hello w0rld").as_str()),
            "{message}"
        );
        assert!(setup.leftovers().is_empty());
    }

    #[test]
    fn a_verified_cache_hit_makes_no_request_and_a_corrupt_entry_is_replaced() {
        let setup = Setup::new(b"hello world", b"hello world");
        let path = setup.fetch().unwrap();
        setup.fetch().unwrap();
        assert_eq!(
            setup.transport.requests().len(),
            1,
            "the cached copy is reused"
        );

        std::fs::write(&path, b"hello w0rld").unwrap();
        setup.fetch().unwrap();
        assert_eq!(
            setup.transport.requests().len(),
            2,
            "a corrupt copy is re-fetched"
        );
        assert_eq!(std::fs::read(&path).unwrap(), b"hello world");
    }

    #[test]
    fn an_interrupted_download_keeps_its_partial_and_resumes_with_a_range() {
        let setup = Setup::new(&content(300_000), &content(300_000));
        setup.transport.cut(&setup.url(), 100_000);
        let error = setup.fetch().unwrap_err();
        assert!(matches!(error, Error::DownloadBlob { .. }), "{error}");
        assert_eq!(std::fs::metadata(setup.partial()).unwrap().len(), 100_000);

        let cache = setup.cache();
        let path = cache.package(&"app".parse().unwrap(), &setup.blob).unwrap();
        assert_eq!(std::fs::read(path).unwrap(), setup.content);
        assert_eq!(cache.received(), 200_000, "only the rest is downloaded");
        assert_eq!(
            setup.transport.requests(),
            [(setup.url(), 0), (setup.url(), 100_000)]
        );
        assert_eq!(setup.leftovers(), [setup.blob.blake3.to_string()]);
    }

    #[test]
    fn a_short_download_is_kept_for_the_next_run() {
        let full = content(50_000);
        let setup = Setup::new(&full[..20_000], &full);
        let error = setup.fetch().unwrap_err();
        assert!(
            matches!(
                error,
                Error::BlobTruncated {
                    received: 20_000,
                    size: 50_000,
                    ..
                }
            ),
            "{error}"
        );
        assert!(setup.partial().exists());
        setup.transport.insert(setup.url(), full.clone());
        setup.fetch().unwrap();
        assert_eq!(setup.transport.requests()[1], (setup.url(), 20_000));
    }

    #[test]
    fn a_server_ignoring_ranges_restarts_the_download() {
        let setup = Setup::new(&content(30_000), &content(30_000));
        std::fs::create_dir_all(setup.root.cache()).unwrap();
        std::fs::write(setup.partial(), &setup.content[..10_000]).unwrap();
        setup.transport.ignore_ranges();
        let cache = setup.cache();
        let path = cache.package(&"app".parse().unwrap(), &setup.blob).unwrap();
        assert_eq!(std::fs::read(path).unwrap(), setup.content);
        assert_eq!(cache.received(), 30_000);
        assert_eq!(setup.transport.requests(), [(setup.url(), 10_000)]);
    }

    #[test]
    fn a_resumed_download_that_does_not_verify_starts_over_once() {
        let setup = Setup::new(&content(30_000), &content(30_000));
        std::fs::create_dir_all(setup.root.cache()).unwrap();
        std::fs::write(setup.partial(), vec![0u8; 10_000]).unwrap();
        let path = setup.fetch().unwrap();
        assert_eq!(std::fs::read(path).unwrap(), setup.content);
        assert_eq!(
            setup.transport.requests(),
            [(setup.url(), 10_000), (setup.url(), 0)]
        );
    }

    #[test]
    fn a_partial_longer_than_declared_is_discarded() {
        let setup = Setup::new(b"hello world", b"hello world");
        std::fs::create_dir_all(setup.root.cache()).unwrap();
        std::fs::write(setup.partial(), b"hello world and more").unwrap();
        setup.fetch().unwrap();
        assert_eq!(setup.transport.requests(), [(setup.url(), 0)]);
    }

    #[test]
    fn a_complete_partial_is_verified_without_a_request() {
        let setup = Setup::new(b"hello world", b"hello world");
        std::fs::create_dir_all(setup.root.cache()).unwrap();
        std::fs::write(setup.partial(), b"hello world").unwrap();
        setup.fetch().unwrap();
        assert!(setup.transport.requests().is_empty());
    }

    /// A site with one file copy: the zstd of `content`, served as `served`.
    fn copy_setup(content: &[u8], served: Option<Vec<u8>>) -> (Setup, Blake3Hash, u64) {
        let copy = crate::install::patch::tests::file_copy(content);
        let hash = Blake3Hash::of(content);
        let setup = Setup::new(b"", b"");
        let url = setup.base.join(&layout::blob(&hash, BlobKind::FileCopy));
        setup
            .transport
            .insert(url, served.unwrap_or_else(|| copy.clone()));
        (setup, hash, copy.len() as u64)
    }

    /// Decompresses through the cache's `file_copy`, answering whether the content
    /// was right.
    fn use_copy(setup: &Setup, hash: &Blake3Hash, packed: u64) -> Result<Vec<u8>> {
        let mut got = Vec::new();
        setup
            .cache()
            .file_copy(&"app".parse().unwrap(), hash, packed, &mut |path| {
                got.clear();
                let _ =
                    crate::install::patch::decompress(std::fs::File::open(path).unwrap(), &mut got);
                Ok(&Blake3Hash::of(&got) == hash)
            })?;
        Ok(got)
    }

    #[test]
    fn a_file_copy_is_kept_once_it_decompresses_right_and_reused_without_a_request() {
        let content = content(40_000);
        let (setup, hash, packed) = copy_setup(&content, None);
        assert_eq!(use_copy(&setup, &hash, packed).unwrap(), content);
        assert_eq!(setup.leftovers(), [format!("{hash}.zst")]);
        assert_eq!(use_copy(&setup, &hash, packed).unwrap(), content);
        assert_eq!(setup.transport.requests().len(), 1);
    }

    #[test]
    fn a_corrupt_file_copy_is_refused_and_removed() {
        let content = content(40_000);
        let packed = crate::install::patch::tests::file_copy(&content).len();
        let (setup, hash, _) = copy_setup(&content, Some(vec![7u8; packed]));
        let error = use_copy(&setup, &hash, packed as u64).unwrap_err();
        assert!(matches!(error, Error::CorruptFileCopy { .. }), "{error}");
        assert!(setup.leftovers().is_empty());
    }

    #[test]
    fn a_cut_file_copy_resumes_on_the_next_run() {
        let content = content(40_000);
        let (setup, hash, packed) = copy_setup(&content, None);
        let url = setup.base.join(&layout::blob(&hash, BlobKind::FileCopy));
        setup.transport.cut(&url, 1000);
        assert!(use_copy(&setup, &hash, packed).is_err());
        assert_eq!(setup.leftovers(), [format!("{hash}.zst.partial")]);
        assert_eq!(use_copy(&setup, &hash, packed).unwrap(), content);
        assert_eq!(setup.transport.requests(), [(url.clone(), 0), (url, 1000)]);
    }

    #[test]
    fn prune_empties_the_download_cache_and_keeps_the_installed_indexes() {
        let setup = Setup::new(b"", b"");
        setup.cache();
        std::fs::write(setup.root.cache().join("aaaa"), vec![0u8; 1000]).unwrap();
        std::fs::write(setup.root.cache().join("bbbb.zst.partial"), vec![0u8; 24]).unwrap();
        let (kept, dropped) = (Blake3Hash::of(b"kept"), Blake3Hash::of(b"dropped"));
        std::fs::write(setup.root.indexes().join(kept.as_str()), b"{}").unwrap();
        std::fs::write(setup.root.indexes().join(dropped.as_str()), b"{}").unwrap();
        assert_eq!(prune(&setup.root, &BTreeSet::from([&kept])), 1026);
        assert!(setup.leftovers().is_empty());
        let indexes: Vec<_> = std::fs::read_dir(setup.root.indexes())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(indexes, [kept.to_string()]);
    }
}
