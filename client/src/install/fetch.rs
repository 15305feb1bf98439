//! Fetching a release's blobs into the content-addressed download cache,
//! `ROOT/.wavecast/cache/`, and file indexes into the index cache beside it,
//! `ROOT/.wavecast/indexes/`.
//!
//! ```text
//! cache/<blake3>          platform documents, packages and delta packs, named by the
//!                         hash of their bytes
//! cache/<blake3>.zst      file copies, named by the hash of what they decompress to
//! cache/<name>.partial    a download in progress; the next run resumes it
//! indexes/<blake3>        file indexes (their JSON) of the installed releases and the
//!                         target, named by the hash of the JSON
//! ```
//!
//! Nothing enters either cache unverified: whole blobs are renamed into place once
//! their size and blake3 match, file copies once they decompressed to the content
//! their index describes, indexes once their JSON hashes to their name. A verified
//! entry is never downloaded again; an entry that no longer verifies is replaced. File
//! copies come from the module's copy pack as byte ranges: [`Cache::prefetch`] fetches
//! the coalesced ranges a plan needs, and packages, several at a time. After an
//! install, [`prune`](crate::store::cache::prune) empties the download cache and keeps
//! only the indexes of installed releases, which the next update plans from without
//! the network.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Mutex, PoisonError};

use semver::Version;
use wavecast_schema::{
    Blake3Hash, Blob, ByteRange, CopySlice, FileIndex, IndexBlob, ModuleName,
    PLATFORM_RELEASE_SIZE_LIMIT, PackHeader, PackRef, PackageFormat, PlatformRelease, RelativePath,
};
use wavecast_site::layout::{self, BlobKind};

use crate::install::cancel::Cancel;
use crate::install::download::{
    Download, DownloadProgress, Expected, download, download_span, hash_file,
};
use crate::install::error::{Error, Result};
use crate::install::patch;
use crate::install::reporter::Reporter;
use crate::install::tree::ReleaseIndexes;
use crate::net::limits::DownloadLimits;
use crate::net::transport::Transport;
use crate::net::url::BaseUrl;
use crate::store::root::{InstallRoot, create_dir_all};

/// How many downloads run at once: independent blobs, and ranges of copy packs.
pub(crate) const PARALLEL_DOWNLOADS: usize = 4;

/// The caches of one install root, with the hosts they download from.
pub(crate) struct Cache<'a> {
    fetcher: Fetcher<'a>,
    reporter: &'a dyn Reporter,
}

/// The part of a [`Cache`] that downloads, shared by the threads of
/// [`Cache::prefetch`]: everything but the reporter, which is told about progress on
/// the calling thread only.
struct Fetcher<'a> {
    dir: PathBuf,
    indexes: PathBuf,
    transport: &'a dyn Transport,
    hosts: &'a [BaseUrl],
    limits: DownloadLimits,
    /// Checked with every chunk received, on every download thread.
    cancel: Cancel,
    received: AtomicU64,
    requests: AtomicU32,
    used: Mutex<Vec<BaseUrl>>,
    /// The contents whose copies [`Cache::prefetch`] kept: already told as
    /// downloads, so not told again as cache hits when they are used.
    prefetched: Mutex<HashSet<Blake3Hash>>,
    /// The blobs this run downloaded into the cache, hashed as they arrived: used
    /// without reading them back (a blob found from an earlier run is hashed first).
    downloaded: Mutex<HashSet<PathBuf>>,
}

impl std::fmt::Debug for Cache<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("dir", &self.fetcher.dir)
            .field("indexes", &self.fetcher.indexes)
            .field("hosts", &self.fetcher.hosts)
            .field("limits", &self.fetcher.limits)
            .field("received", &self.fetcher.received)
            .finish_non_exhaustive()
    }
}

/// A download [`Cache::prefetch`] runs: a module's package, or the ranges of its copy
/// pack that hold the copies it needs.
#[derive(Debug, Clone)]
pub(crate) enum Prefetch<'p> {
    /// The package.
    Package {
        /// The module.
        module: &'p ModuleName,
        /// Its package.
        package: &'p Blob,
        /// How the package is compressed, which names its file.
        format: PackageFormat,
    },
    /// Copies from the copy pack.
    Copies {
        /// The module.
        module: &'p ModuleName,
        /// Its copy pack.
        copies: &'p Blob,
        /// The requests, coalesced.
        ranges: &'p [ByteRange],
        /// The copies wanted, by the content they decompress to.
        wanted: Vec<(&'p Blake3Hash, CopySlice)>,
    },
}

impl Prefetch<'_> {
    fn module(&self) -> &ModuleName {
        match self {
            Self::Package { module, .. } | Self::Copies { module, .. } => module,
        }
    }
}

/// Tells the calling thread, from a download on another thread, how many new bytes
/// the download of which [`Cache::prefetch`] job has received.
struct Relay {
    sender: mpsc::Sender<(usize, u64)>,
    /// The job this thread downloads for.
    job: std::cell::Cell<usize>,
    /// Bytes of this thread's current download received so far.
    current: std::cell::Cell<u64>,
}

impl DownloadProgress for Relay {
    fn started(&self, _url: &str, _size: u64) {
        self.current.set(0);
    }

    fn progressed(&self, downloaded: u64) {
        let new = downloaded.saturating_sub(self.current.replace(downloaded));
        let _ = self.sender.send((self.job.get(), new));
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
            fetcher: Fetcher {
                dir,
                indexes,
                transport,
                hosts,
                limits,
                cancel: Cancel::new(),
                received: AtomicU64::new(0),
                requests: AtomicU32::new(0),
                used: Mutex::new(Vec::new()),
                prefetched: Mutex::new(HashSet::new()),
                downloaded: Mutex::new(HashSet::new()),
            },
            reporter,
        })
    }

    /// This cache with its downloads stopped once `cancel` is triggered
    /// ([`Error::Cancelled`]).
    pub(crate) fn with_cancel(mut self, cancel: &Cancel) -> Self {
        self.fetcher.cancel = cancel.clone();
        self
    }

    /// A safe point of the install using this cache: [`Error::Cancelled`] once
    /// cancelled.
    pub(crate) fn check_cancel(&self) -> Result<()> {
        self.fetcher.cancel.check()
    }

    /// The hosts that sent at least one blob, in the order they first did.
    pub(crate) fn hosts_used(&self) -> Vec<BaseUrl> {
        self.fetcher
            .used
            .lock()
            .map(|used| used.clone())
            .unwrap_or_default()
    }

    /// Bytes received over the transport so far.
    pub(crate) fn received(&self) -> u64 {
        self.fetcher.received.load(Ordering::Relaxed)
    }

    /// Requests made so far, answered or not.
    pub(crate) fn requests(&self) -> u32 {
        self.fetcher.requests.load(Ordering::Relaxed)
    }

    /// The URL of a site path on the first host, for messages.
    pub(crate) fn url(&self, path: &RelativePath) -> String {
        self.fetcher.url(path)
    }

    /// The platform document release `version`'s manifest entry names, verified,
    /// parsed and checked to describe that release (fetched silently, and kept in
    /// the download cache).
    ///
    /// # Errors
    ///
    /// [`Error::BlobTooLarge`] past [`PLATFORM_RELEASE_SIZE_LIMIT`], download errors,
    /// [`Error::ParsePlatformRelease`], also for a document of another release.
    pub(crate) fn platform_release(
        &self,
        version: &Version,
        blob: &Blob,
    ) -> Result<PlatformRelease> {
        let path = layout::blob(&blob.blake3, BlobKind::PlatformRelease);
        if blob.size > PLATFORM_RELEASE_SIZE_LIMIT {
            return Err(Error::BlobTooLarge {
                url: self.url(&path),
                size: PLATFORM_RELEASE_SIZE_LIMIT,
            });
        }
        let cached =
            self.fetcher
                .exact(&self.fetcher.dir, &path, blob.size, &blob.blake3, &Silent)?;
        let bytes = std::fs::read(&cached).map_err(|source| Error::Cache {
            path: cached.clone(),
            source,
        })?;
        let parse_error = |source| Error::ParsePlatformRelease {
            url: self.url(&path),
            source,
        };
        let document = PlatformRelease::parse(&bytes).map_err(parse_error)?;
        if &document.version != version {
            return Err(parse_error(wavecast_schema::Error::Invalid {
                document: "platform release",
                problem: format!("it describes release {}, not {version}", document.version),
            }));
        }
        Ok(document)
    }

    /// A module's file index, from the index cache or fetched into it (silently).
    ///
    /// # Errors
    ///
    /// Download errors, or [`Error::ParseFileIndex`].
    pub(crate) fn index(&self, blob: &IndexBlob) -> Result<FileIndex> {
        if let Some(index) = self.cached_index(&blob.blake3)? {
            return Ok(index);
        }
        let path = layout::blob(&blob.blake3, BlobKind::FileIndex);
        let partial = self
            .fetcher
            .dir
            .join(format!("{}.json.zst.partial", blob.blake3));
        let index = self.fetcher.try_hosts(&path, |url| {
            self.fetcher
                .download_into(url, &partial, Expected::AtMost(blob.size), &Silent)?;
            let bytes = std::fs::read(&partial).map_err(|source| Error::Cache {
                path: partial.clone(),
                source,
            })?;
            let _ = std::fs::remove_file(&partial);
            FileIndex::decode(&bytes, blob).map_err(|source| Error::ParseFileIndex {
                url: url.to_owned(),
                source,
            })
        })?;
        self.keep_index(&index)?;
        Ok(index)
    }

    /// The index whose JSON hashes to `blake3`, when the index cache holds it intact.
    ///
    /// # Errors
    ///
    /// [`Error::Cache`] when the cache cannot be read.
    pub(crate) fn cached_index(&self, blake3: &Blake3Hash) -> Result<Option<FileIndex>> {
        let path = self.fetcher.indexes.join(blake3.as_str());
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(Error::Cache { path, source }),
        };
        if &Blake3Hash::of(&bytes) != blake3 {
            // Torn by a crash, or changed: fetched or derived again.
            remove_if_present(&path).map_err(|source| Error::Cache { path, source })?;
            return Ok(None);
        }
        Ok(FileIndex::parse(&bytes).ok())
    }

    /// Keeps `index` in the index cache, under the blake3 of its JSON: an index
    /// derived from a delta pack, or one just fetched.
    ///
    /// # Errors
    ///
    /// [`Error::Cache`].
    pub(crate) fn keep_index(&self, index: &FileIndex) -> Result<()> {
        let json = index.to_json();
        let path = self.fetcher.indexes.join(Blake3Hash::of(&json).as_str());
        let temporary = path.with_extension("partial");
        std::fs::write(&temporary, &json)
            .and_then(|()| std::fs::rename(&temporary, &path))
            .map_err(|source| Error::Cache { path, source })
    }

    /// The file index of every module of `release`: from `known` (indexes derived
    /// from a delta pack), else through the index cache (which then keeps them while
    /// the release is installed), checked against the module and assembled into the
    /// release's tree.
    ///
    /// # Errors
    ///
    /// The errors of [`index`](Self::index) and of [`ReleaseIndexes::assemble`].
    pub(crate) fn release_indexes(
        &self,
        release: &PlatformRelease,
        known: &std::collections::BTreeMap<ModuleName, FileIndex>,
    ) -> Result<ReleaseIndexes> {
        ReleaseIndexes::assemble(
            release,
            |name, module| match known.get(name) {
                Some(index) => Ok(index.clone()),
                None => self.index(&module.index),
            },
            |module| self.url(&layout::blob(&module.index.blake3, BlobKind::FileIndex)),
        )
    }

    /// A delta pack's bytes, verified.
    ///
    /// # Errors
    ///
    /// Download errors, [`Error::Cache`].
    pub(crate) fn pack(&self, module: &ModuleName, pack: &PackRef) -> Result<Vec<u8>> {
        let cached = self.module_blob(module, &pack.blob(), BlobKind::Pack)?;
        std::fs::read(&cached).map_err(|source| Error::Cache {
            path: cached,
            source,
        })
    }

    /// The header of a delta pack, read from the first bytes of the pack without
    /// downloading the rest: what a plan shows before anything is installed. Its
    /// bytes are not checked against the pack's hash (the whole pack is, when it is
    /// used); what a client derives from it is checked against the signed indexes.
    ///
    /// # Errors
    ///
    /// Download errors, [`Error::ParsePack`].
    pub(crate) fn pack_header(&self, pack: &PackRef) -> Result<PackHeader> {
        let path = layout::blob(&pack.blake3, BlobKind::Pack);
        let cached = self.fetcher.dir.join(pack.blake3.as_str());
        if let Ok(bytes) = std::fs::read(&cached)
            && Blake3Hash::of(&bytes) == pack.blake3
        {
            return PackHeader::decode(&bytes)
                .map(|(header, _)| header)
                .map_err(|source| Error::ParsePack {
                    url: self.url(&path),
                    source,
                });
        }
        self.fetcher.try_hosts(&path, |url| {
            let parse_error = |source| Error::ParsePack {
                url: url.to_owned(),
                source,
            };
            let mut head = self.fetcher.span(url, (0, 16.min(pack.size)), &Silent)?;
            let length = PackHeader::head_length(&head)
                .filter(|length| *length <= pack.size)
                .ok_or_else(|| {
                    parse_error(wavecast_schema::Error::Invalid {
                        document: "delta pack",
                        problem: "it does not start as a pack".into(),
                    })
                })?;
            head.extend_from_slice(&self.fetcher.span(url, (16, length), &Silent)?);
            PackHeader::decode_head(&head, pack.size)
                .map(|(header, _)| header)
                .map_err(parse_error)
        })
    }

    /// A verified copy of a module's package, a tar of `format`.
    pub(crate) fn package(
        &self,
        module: &ModuleName,
        package: &Blob,
        format: PackageFormat,
    ) -> Result<PathBuf> {
        self.module_blob(module, package, BlobKind::package(format))
    }

    /// A verified copy of an image module's package, the image's zstd copy.
    pub(crate) fn image_package(&self, module: &ModuleName, package: &Blob) -> Result<PathBuf> {
        self.module_blob(module, package, BlobKind::FileCopy)
    }

    /// A verified copy of the whole blob `blob` of kind `kind`, downloaded (or found
    /// in the cache) with its progress reported under `module`.
    fn module_blob(&self, module: &ModuleName, blob: &Blob, kind: BlobKind) -> Result<PathBuf> {
        let cached = self.fetcher.exact(
            &self.fetcher.dir,
            &layout::blob(&blob.blake3, kind),
            blob.size,
            &blob.blake3,
            &ModuleDownload {
                module,
                reporter: self.reporter,
            },
        )?;
        self.reporter.on_download_finish(module);
        Ok(cached)
    }

    /// Hands a compressed copy of the file whose content hashes to `content` to
    /// `use_copy`, which decompresses it into place and answers whether the result is
    /// right (`Ok(false)` leaves nothing behind).
    ///
    /// A cached copy is tried first (one [`prefetch`](Self::prefetch) put there).
    /// Otherwise the copy's range of the module's copy pack `copies` is fetched, and
    /// kept once `use_copy` accepts it.
    ///
    /// # Errors
    ///
    /// Download errors, [`Error::CorruptFileCopy`] when the copy is refused, and the
    /// errors of `use_copy`.
    pub(crate) fn file_copy(
        &self,
        module: &ModuleName,
        content: &Blake3Hash,
        copies: &Blob,
        slice: &CopySlice,
        use_copy: &mut dyn FnMut(&Path) -> Result<bool>,
    ) -> Result<()> {
        let cache_error = |path: &Path| {
            let path = path.to_owned();
            move |source| Error::Cache { path, source }
        };
        let cached = self.fetcher.dir.join(format!("{content}.zst"));
        if let Ok(metadata) = std::fs::metadata(&cached) {
            if use_copy(&cached)? {
                let prefetched = self
                    .fetcher
                    .prefetched
                    .lock()
                    .is_ok_and(|prefetched| prefetched.contains(content));
                if !prefetched {
                    self.reporter.on_cache_hit(module, metadata.len());
                }
                return Ok(());
            }
            remove_if_present(&cached).map_err(cache_error(&cached))?;
        }
        let path = layout::blob(&copies.blake3, BlobKind::Copies);
        let partial = self.fetcher.dir.join(format!("{content}.zst.partial"));
        self.fetcher.try_hosts(&path, |url| {
            let bytes = self.fetcher.span(
                url,
                (slice.offset, slice.offset + slice.length),
                &ModuleDownload {
                    module,
                    reporter: self.reporter,
                },
            )?;
            std::fs::write(&partial, &bytes).map_err(cache_error(&partial))?;
            if use_copy(&partial)? {
                std::fs::rename(&partial, &cached).map_err(cache_error(&cached))?;
                self.reporter.on_download_finish(module);
                return Ok(());
            }
            remove_if_present(&partial).map_err(cache_error(&partial))?;
            Err(Error::CorruptFileCopy {
                url: url.to_owned(),
            })
        })
    }

    /// Downloads `jobs` into the cache, [`PARALLEL_DOWNLOADS`] at a time, telling the
    /// reporter about them as one download per module from this thread. Copies are
    /// kept only once they decompress to their content. Returns each job's outcome:
    /// a failed job leaves what it needed to the fallbacks of the assemble stage.
    pub(crate) fn prefetch<'p>(&self, jobs: &'p [Prefetch<'p>]) -> Vec<Result<()>> {
        if jobs.is_empty() {
            return Vec::new();
        }
        // Each module's downloads are told as one, however many jobs it has.
        let mut modules: Vec<(&ModuleName, u64)> = Vec::new();
        let slots: Vec<usize> = jobs
            .iter()
            .map(|job| {
                let slot = modules
                    .iter()
                    .position(|(module, _)| *module == job.module())
                    .unwrap_or_else(|| {
                        modules.push((job.module(), 0));
                        modules.len() - 1
                    });
                modules[slot].1 += job.bytes();
                slot
            })
            .collect();
        for (module, total) in &modules {
            self.reporter.on_download_start(module, "", *total);
        }
        let mut done = vec![0u64; modules.len()];
        let (sender, receiver) = mpsc::channel();
        let next = std::sync::atomic::AtomicUsize::new(0);
        let results: Mutex<Vec<Option<Result<()>>>> =
            Mutex::new(jobs.iter().map(|_| None).collect());
        let (fetcher, next, outcomes) = (&self.fetcher, &next, &results);
        std::thread::scope(|scope| {
            for _ in 0..PARALLEL_DOWNLOADS.min(jobs.len()) {
                let sender = sender.clone();
                scope.spawn(move || {
                    let relay = Relay {
                        sender,
                        job: std::cell::Cell::new(0),
                        current: std::cell::Cell::new(0),
                    };
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(job) = jobs.get(i) else {
                            break;
                        };
                        relay.job.set(i);
                        let outcome = fetcher.prefetch_one(job, &relay);
                        if let Ok(mut outcomes) = outcomes.lock() {
                            outcomes[i] = Some(outcome);
                        }
                    }
                });
            }
            drop(sender);
            for (job, new) in receiver {
                let slot = slots[job];
                done[slot] += new;
                let (module, total) = modules[slot];
                self.reporter
                    .on_download_progress(module, done[slot].min(total));
            }
        });
        for (module, _) in &modules {
            self.reporter.on_download_finish(module);
        }
        results
            .into_inner()
            .unwrap_or_default()
            .into_iter()
            .map(|outcome| outcome.unwrap_or(Ok(())))
            .collect()
    }

    /// Bytes of `wanted` downloads the cache already holds, whole or as partial
    /// downloads (what an interrupted install left): the install does not download
    /// them again.
    pub(crate) fn held(&self, name: &str, size: u64) -> u64 {
        let whole = partial_len(&self.fetcher.dir.join(name));
        let partial = partial_len(&self.fetcher.dir.join(format!("{name}.partial")));
        whole.max(partial).min(size)
    }
}

impl Prefetch<'_> {
    /// Bytes the job downloads.
    fn bytes(&self) -> u64 {
        match self {
            Self::Package { package, .. } => package.size,
            Self::Copies { ranges, .. } => ranges.iter().map(|range| range.len()).sum(),
        }
    }
}

impl Fetcher<'_> {
    fn url(&self, path: &RelativePath) -> String {
        self.hosts
            .first()
            .map_or_else(|| path.as_str().to_owned(), |host| host.join(path))
    }

    fn record_use(&self, host: &BaseUrl) {
        if let Ok(mut used) = self.used.lock()
            && !used.contains(host)
        {
            used.push(host.clone());
        }
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

    /// Downloads `url` into `partial` (one request), resuming it.
    fn download_into(
        &self,
        url: &str,
        partial: &Path,
        expected: Expected<'_>,
        progress: &dyn DownloadProgress,
    ) -> Result<()> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        download(&Download {
            transport: self.transport,
            url,
            partial,
            expected,
            progress,
            received: &self.received,
            limits: self.limits,
            cancel: &self.cancel,
        })
    }

    /// Bytes `start..end` of `url`, in one request.
    fn span(
        &self,
        url: &str,
        span: (u64, u64),
        progress: &dyn DownloadProgress,
    ) -> Result<Vec<u8>> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        download_span(
            self.transport,
            url,
            span,
            progress,
            &self.received,
            self.limits,
            &self.cancel,
        )
    }

    /// Returns the path of a verified copy of the blob at `path` in `dir`, named by
    /// its hash, downloading it (or the rest of it) when the cache has no intact copy.
    /// A resumed download whose hash does not match is downloaded once more from the
    /// start: the bytes kept from the earlier run may be the wrong ones.
    fn exact(
        &self,
        dir: &Path,
        path: &RelativePath,
        size: u64,
        blake3: &Blake3Hash,
        progress: &dyn DownloadProgress,
    ) -> Result<PathBuf> {
        let cached = dir.join(blake3.as_str());
        let cache_error = |path: &Path| {
            let path = path.to_owned();
            move |source| Error::Cache { path, source }
        };
        let downloaded = || {
            self.downloaded
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
        };
        if downloaded().contains(&cached) {
            return Ok(cached);
        }
        match hash_file(&cached) {
            Ok((found, hash)) if found == size && &hash == blake3 => {
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
                match self.download_into(url, &partial, Expected::Exact { size, blake3 }, progress)
                {
                    Ok(()) => return Ok(()),
                    Err(Error::ChecksumMismatch { .. }) if resuming => {}
                    Err(error) => return Err(error),
                }
            }
        })?;
        std::fs::rename(&partial, &cached).map_err(cache_error(&cached))?;
        downloaded().insert(cached.clone());
        Ok(cached)
    }

    /// Runs one [`Prefetch`] job, reporting through `relay`.
    fn prefetch_one(&self, job: &Prefetch<'_>, relay: &Relay) -> Result<()> {
        match job {
            Prefetch::Package {
                package, format, ..
            } => {
                let path = layout::blob(&package.blake3, BlobKind::package(*format));
                self.exact(&self.dir, &path, package.size, &package.blake3, relay)
                    .map(|_| ())
            }
            Prefetch::Copies {
                copies,
                ranges,
                wanted,
                ..
            } => {
                let path = layout::blob(&copies.blake3, BlobKind::Copies);
                for range in *ranges {
                    let bytes = self
                        .try_hosts(&path, |url| self.span(url, (range.start, range.end), relay))?;
                    for (content, slice) in wanted.iter().filter(|(_, slice)| {
                        slice.offset >= range.start && slice.offset + slice.length <= range.end
                    }) {
                        let start = slice.offset - range.start;
                        let copy = usize::try_from(start)
                            .ok()
                            .zip(usize::try_from(start + slice.length).ok())
                            .and_then(|(start, end)| bytes.get(start..end));
                        if let Some(copy) = copy {
                            self.keep_copy(content, slice, copy)?;
                        }
                    }
                }
                Ok(())
            }
        }
    }

    /// Keeps `copy` as the cached copy of `content` when it decompresses to it;
    /// drops it otherwise (the assemble stage then fetches it alone, or falls back).
    fn keep_copy(&self, content: &Blake3Hash, slice: &CopySlice, copy: &[u8]) -> Result<()> {
        let mut hasher = HashingSink::default();
        let decoded = patch::decompress(copy, &mut hasher);
        if decoded.is_err() || hasher.size != slice.size || &hasher.finish() != content {
            return Ok(());
        }
        let cached = self.dir.join(format!("{content}.zst"));
        let partial = self.dir.join(format!("{content}.zst.partial"));
        std::fs::write(&partial, copy)
            .and_then(|()| std::fs::rename(&partial, &cached))
            .map_err(|source| Error::Cache {
                path: cached,
                source,
            })?;
        if let Ok(mut prefetched) = self.prefetched.lock() {
            prefetched.insert(content.clone());
        }
        Ok(())
    }
}

/// Hashes what is written to it, keeping nothing.
#[derive(Default)]
struct HashingSink {
    hasher: blake3::Hasher,
    size: u64,
}

impl HashingSink {
    fn finish(&self) -> Blake3Hash {
        Blake3Hash::from(self.hasher.finalize())
    }
}

impl io::Write for HashingSink {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.hasher.update(bytes);
        self.size += bytes.len() as u64;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A download for `module`, told to the install's reporter (on the calling thread).
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

/// A download nobody is told about: documents and indexes.
struct Silent;

impl DownloadProgress for Silent {
    fn started(&self, _url: &str, _size: u64) {}

    fn progressed(&self, _downloaded: u64) {}
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
    use crate::install::reporter::NoReporter;
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

        fn fetch_span(
            &self,
            url: &str,
            start: u64,
            end: u64,
        ) -> std::result::Result<RangeStream, TransportError> {
            let stream = self.fetch_from(url, start)?;
            let length = end.saturating_sub(stream.start);
            Ok(RangeStream {
                start: stream.start,
                reader: Box::new(stream.reader.take(length)),
            })
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
            let blob = Blob {
                size: declared.len() as u64,
                blake3: Blake3Hash::of(declared),
            };
            let transport = MapTransport::default();
            transport.insert(
                base.join(&layout::blob(&blob.blake3, BlobKind::Package)),
                served.to_vec(),
            );
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
            self.base.join(&self.path())
        }

        fn path(&self) -> RelativePath {
            layout::blob(&self.blob.blake3, BlobKind::Package)
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
            self.cache()
                .package(&"app".parse().unwrap(), &self.blob, PackageFormat::TarGz)
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
        let mirror_url = hosts[2].join(&setup.path());
        setup.transport.insert(mirror_url.clone(), good.clone());
        let cache = Cache::open(
            &setup.root,
            &setup.transport,
            &hosts,
            &NoReporter,
            DownloadLimits::default(),
        )
        .unwrap();
        let path = cache
            .package(&"app".parse().unwrap(), &setup.blob, PackageFormat::TarGz)
            .unwrap();
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
            [hosts[0].join(&setup.path()), setup.url(), mirror_url]
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
            .package(&"app".parse().unwrap(), &other.blob, PackageFormat::TarGz)
            .unwrap_err();
        assert!(matches!(error, Error::ChecksumMismatch { .. }), "{error}");
        assert!(other.leftovers().is_empty(), "{:?}", other.leftovers());
        assert!(cache.hosts_used().is_empty());
    }

    #[test]
    fn a_good_download_lands_in_the_cache() {
        let setup = Setup::new(&content(200_000), &content(200_000));
        let cache = setup.cache();
        let path = cache
            .package(&"app".parse().unwrap(), &setup.blob, PackageFormat::TarGz)
            .unwrap();
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
        let path = cache
            .package(&"app".parse().unwrap(), &setup.blob, PackageFormat::TarGz)
            .unwrap();
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
        let path = cache
            .package(&"app".parse().unwrap(), &setup.blob, PackageFormat::TarGz)
            .unwrap();
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
    /// A copy pack holding some other copy, then `content`'s copy (or `served` in
    /// its place), then another one; the copy's slice in it.
    fn copy_setup(content: &[u8], served: Option<Vec<u8>>) -> (Setup, Blake3Hash, Blob, CopySlice) {
        let copy = crate::install::patch::tests::file_copy(content);
        let before = crate::install::patch::tests::file_copy(b"before");
        let mut pack = before.clone();
        pack.extend_from_slice(&served.unwrap_or_else(|| copy.clone()));
        pack.extend_from_slice(&crate::install::patch::tests::file_copy(b"after"));
        let setup = Setup::new(b"", b"");
        let copies = Blob {
            size: pack.len() as u64,
            blake3: Blake3Hash::of(&pack),
        };
        setup.transport.insert(
            setup
                .base
                .join(&layout::blob(&copies.blake3, BlobKind::Copies)),
            pack,
        );
        let slice = CopySlice {
            offset: before.len() as u64,
            length: copy.len() as u64,
            size: content.len() as u64,
        };
        (setup, Blake3Hash::of(content), copies, slice)
    }

    /// Decompresses through the cache's `file_copy`, answering whether the content
    /// was right.
    fn use_copy(
        setup: &Setup,
        hash: &Blake3Hash,
        copies: &Blob,
        slice: &CopySlice,
    ) -> Result<Vec<u8>> {
        let mut got = Vec::new();
        setup
            .cache()
            .file_copy(&"app".parse().unwrap(), hash, copies, slice, &mut |path| {
                got.clear();
                let _ =
                    crate::install::patch::decompress(std::fs::File::open(path).unwrap(), &mut got);
                Ok(&Blake3Hash::of(&got) == hash)
            })?;
        Ok(got)
    }

    #[test]
    fn a_file_copy_is_fetched_as_its_range_kept_once_it_decompresses_right_and_reused() {
        let content = content(40_000);
        let (setup, hash, copies, slice) = copy_setup(&content, None);
        assert_eq!(use_copy(&setup, &hash, &copies, &slice).unwrap(), content);
        assert_eq!(setup.leftovers(), [format!("{hash}.zst")]);
        assert_eq!(use_copy(&setup, &hash, &copies, &slice).unwrap(), content);
        let url = setup
            .base
            .join(&layout::blob(&copies.blake3, BlobKind::Copies));
        assert_eq!(setup.transport.requests(), [(url, slice.offset)]);
    }

    #[test]
    fn a_corrupt_file_copy_is_refused_and_removed() {
        let content = content(40_000);
        let packed = crate::install::patch::tests::file_copy(&content).len();
        let (setup, hash, copies, slice) = copy_setup(&content, Some(vec![7u8; packed]));
        let error = use_copy(&setup, &hash, &copies, &slice).unwrap_err();
        assert!(matches!(error, Error::CorruptFileCopy { .. }), "{error}");
        assert!(setup.leftovers().is_empty());
    }

    #[test]
    fn a_cut_range_is_an_error_and_fetched_again_next_time() {
        let content = content(40_000);
        let (setup, hash, copies, slice) = copy_setup(&content, None);
        let url = setup
            .base
            .join(&layout::blob(&copies.blake3, BlobKind::Copies));
        setup.transport.cut(&url, 1000);
        assert!(use_copy(&setup, &hash, &copies, &slice).is_err());
        assert_eq!(use_copy(&setup, &hash, &copies, &slice).unwrap(), content);
    }

    #[test]
    fn prefetched_ranges_keep_the_copies_that_decompress_right() {
        let (one, two) = (content(30_000), content(20_000));
        let (copy_one, copy_two) = (
            crate::install::patch::tests::file_copy(&one),
            crate::install::patch::tests::file_copy(&two),
        );
        let mut pack = copy_one.clone();
        pack.extend_from_slice(&[0u8; 50]);
        pack.extend_from_slice(&copy_two);
        let setup = Setup::new(b"", b"");
        let copies = Blob {
            size: pack.len() as u64,
            blake3: Blake3Hash::of(&pack),
        };
        setup.transport.insert(
            setup
                .base
                .join(&layout::blob(&copies.blake3, BlobKind::Copies)),
            pack.clone(),
        );
        let (hash_one, hash_two, hash_bad) = (
            Blake3Hash::of(&one),
            Blake3Hash::of(&two),
            Blake3Hash::of(b"not there"),
        );
        let slice = |offset: usize, copy: &[u8], size: usize| CopySlice {
            offset: offset as u64,
            length: copy.len() as u64,
            size: size as u64,
        };
        let ranges = [ByteRange {
            start: 0,
            end: pack.len() as u64,
        }];
        let module: ModuleName = "app".parse().unwrap();
        let jobs = [Prefetch::Copies {
            module: &module,
            copies: &copies,
            ranges: &ranges,
            wanted: vec![
                (&hash_one, slice(0, &copy_one, one.len())),
                (&hash_two, slice(copy_one.len() + 50, &copy_two, two.len())),
                // Bytes that are not this content's copy are dropped.
                (&hash_bad, slice(copy_one.len(), &[0; 50], 9)),
            ],
        }];
        let outcomes = setup.cache().prefetch(&jobs);
        assert!(outcomes.iter().all(Result::is_ok));
        assert_eq!(
            setup.leftovers(),
            [format!("{hash_two}.zst"), format!("{hash_one}.zst")]
                .into_iter()
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect::<Vec<_>>()
        );
        assert_eq!(setup.transport.requests().len(), 1, "one request for both");
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
