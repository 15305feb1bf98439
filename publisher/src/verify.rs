//! Checking a published site end to end: every channel's signature and expiry, and
//! every blob its live releases refer to (platform release documents, packages, file
//! indexes, copy packs, delta packs) and the package of every updater build it
//! offers, by size and blake3. Beyond their hashes:
//!
//! - a tree module's package must unpack to exactly the tree its signed file index
//!   lists (files with their modes, sizes and hashes, directories, symbolic links with
//!   their targets), since clients refuse any other;
//! - a copy pack must slice, by its index's copy layout, into copies that decompress
//!   to each content, and an image's package must decompress to the image;
//! - a delta pack must decode, each module delta must turn the index of the release it
//!   updates from into exactly the new release's index, and each patch or copy it
//!   carries must rebuild its content (patches from the old release's copies).
//!
//! A site is read through a [`Source`] (a folder or an `http(s)://` base URL). Checking
//! runs in two steps: [`survey`] reads and verifies the channel envelopes, the
//! platform documents and the file indexes, which list every other blob;
//! [`check_blobs`] then streams each of those blobs and checks it. `mirror` copies the
//! same blobs instead of only checking them.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use semver::Version;
use wavecast_schema::{
    Blake3Hash, Blob, ChannelName, CopySlice, EntryKind, Envelope, ExpectedTree, FileIndex,
    FileMode, Found, IndexBlob, MAX_PACKAGE_WINDOW_LOG, MAX_ROOT_STEPS, Manifest, Mismatch,
    ModuleKind, ModuleName, PLATFORM_RELEASE_SIZE_LIMIT, PackData, PackHeader, PackageFormat,
    Platform, PlatformRelease, PublicKey, ROOT_SIZE_LIMIT, RelativePath, Role, Root, TreeCheck,
    TreeMismatch,
};
use wavecast_site::Storage;
use wavecast_site::layout::{self, BlobKind};

use crate::copies::{LoadedCopies, copies_location};
use crate::error::{Error, Result};

/// The most a channel envelope or status page may weigh.
const MAX_DOCUMENT_SIZE: u64 = 64 << 20;
/// A manifest expiring sooner than this gets a warning.
const EXPIRY_WARNING: SignedDuration = SignedDuration::from_hours(7 * 24);
/// A root expiring sooner than this gets a warning: a new root needs its holders,
/// each on their own machine, which takes longer to arrange than a publish.
const ROOT_EXPIRY_WARNING: SignedDuration = SignedDuration::from_hours(30 * 24);

/// Where a site is read from.
#[derive(Debug)]
pub enum Source {
    /// A local folder (given as a path or a `file://` URL).
    Folder(PathBuf),
    /// An `http://` or `https://` base URL, ending in `/`.
    Http {
        /// The base URL.
        base: String,
        /// The client, with timeouts and HTTP statuses returned as responses.
        agent: ureq::Agent,
    },
    /// A site the publisher writes to (a folder or a bucket), read through its
    /// [`Storage`]: what `gc` surveys before it deletes through the same storage.
    Storage(Arc<dyn Storage>),
}

impl Source {
    /// A source from a folder path, a `file://` URL or an `http(s)://` base URL.
    pub fn parse(location: &str) -> Result<Self> {
        if let Some(path) = location.strip_prefix("file://") {
            return Ok(Self::Folder(PathBuf::from(path)));
        }
        if location.starts_with("http://") || location.starts_with("https://") {
            let base = if location.ends_with('/') {
                location.to_owned()
            } else {
                format!("{location}/")
            };
            return Ok(Self::Http {
                base,
                agent: wavecast_site::http::agent(concat!("wavecast/", env!("CARGO_PKG_VERSION"))),
            });
        }
        if let Some((scheme, _)) = location.split_once("://") {
            return Err(Error::UnsupportedLocation {
                location: location.to_owned(),
                reason: format!(
                    "`{scheme}://` is not supported; give a folder, a `file://` URL or an `http(s)://` URL"
                ),
            });
        }
        Ok(Self::Folder(PathBuf::from(location)))
    }

    /// Where `path` lives, for messages.
    pub fn location(&self, path: &RelativePath) -> String {
        match self {
            Self::Folder(root) => root.join(path.as_str()).display().to_string(),
            Self::Http { base, .. } => format!("{base}{path}"),
            Self::Storage(_) => path.to_string(),
        }
    }

    /// The channels to read: `requested` when given; otherwise every
    /// `channels/*.json` of a folder or storage, or `stable` for a URL (which cannot
    /// be listed).
    pub fn channels(&self, requested: &[ChannelName]) -> Result<Vec<ChannelName>> {
        if !requested.is_empty() {
            return Ok(requested.to_vec());
        }
        match self {
            Self::Http { .. } => Ok(vec!["stable".parse().expect("`stable` is a valid name")]),
            Self::Folder(root) => crate::channel::channels(&wavecast_site::FsStorage::new(root)),
            Self::Storage(storage) => crate::channel::channels(storage.as_ref()),
        }
    }

    /// A reader of the file at `path`, limited to `limit` bytes, or `None` when the
    /// source has no such file.
    pub fn open(&self, path: &RelativePath, limit: u64) -> Result<Option<Box<dyn Read + Send>>> {
        let fetch_error = |source| Error::Fetch {
            location: self.location(path),
            source,
        };
        match self {
            Self::Folder(root) => {
                let local = path.segments().fold(root.clone(), |dir, s| dir.join(s));
                match fs_err::File::open(&local) {
                    Ok(file) => Ok(Some(Box::new(file.take(limit)))),
                    Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
                    Err(error) => Err(fetch_error(error)),
                }
            }
            Self::Http { base, agent } => {
                let url = format!("{base}{path}");
                let response = agent
                    .get(&url)
                    .call()
                    .map_err(|error| fetch_error(io::Error::other(error)))?;
                let status = response.status().as_u16();
                if status == 404 || status == 410 {
                    return Ok(None);
                }
                if !response.status().is_success() {
                    return Err(fetch_error(io::Error::other(format!(
                        "the server answered HTTP {status}"
                    ))));
                }
                Ok(Some(Box::new(
                    response.into_body().into_reader().take(limit),
                )))
            }
            Self::Storage(storage) => Ok(storage.get(path)?.map(|mut bytes| {
                bytes.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
                Box::new(io::Cursor::new(bytes)) as Box<dyn Read + Send>
            })),
        }
    }

    /// The whole file at `path` if it is at most `limit` bytes (longer files are cut
    /// at `limit + 1` bytes, so the caller sees they are too long).
    pub fn read(&self, path: &RelativePath, limit: u64) -> Result<Option<Vec<u8>>> {
        let Some(mut reader) = self.open(path, limit.saturating_add(1))? else {
            return Ok(None);
        };
        let mut bytes = Vec::new();
        reader
            .read_to_end(&mut bytes)
            .map_err(|source| Error::Fetch {
                location: self.location(path),
                source,
            })?;
        Ok(Some(bytes))
    }
}

/// Reads a minisign public key: the path of a `.pub` file, or the key in base64.
pub fn load_public_key(key: &str) -> Result<PublicKey> {
    let path = std::path::Path::new(key);
    let text = if path.is_file() {
        fs_err::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?
    } else {
        key.to_owned()
    };
    PublicKey::parse(&text).map_err(|error| Error::PublicKey {
        key: key.to_owned(),
        reason: error.to_string(),
    })
}

/// Which part of the site to read.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// The channels (see [`Source::channels`] for an empty list).
    pub channels: Vec<ChannelName>,
    /// Only the newest N releases of each channel.
    pub newest: Option<usize>,
    /// Only these platforms (plus `any`, which clients of every platform fall back
    /// to); empty means all.
    pub platforms: Vec<Platform>,
}

impl Selection {
    /// Whether the selection leaves releases or platforms out.
    pub fn is_filtered(&self) -> bool {
        self.newest.is_some() || !self.platforms.is_empty()
    }
}

/// Something wrong with one file of a site.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// The file's path in the site.
    pub path: String,
    /// What is wrong with it.
    pub problem: String,
}

impl Problem {
    fn new(path: impl ToString, problem: impl Into<String>) -> Self {
        Self {
            path: path.to_string(),
            problem: problem.into(),
        }
    }
}

/// How many files and bytes were read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Count {
    /// Files.
    pub files: u64,
    /// Bytes.
    pub bytes: u64,
}

impl Count {
    pub(crate) fn add(&mut self, bytes: u64) {
        self.files += 1;
        self.bytes += bytes;
    }
}

/// What a blob must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    /// Stored as is: an updater's package, a platform release document.
    Exact {
        /// Stored size.
        size: u64,
        /// blake3 of the stored bytes.
        blake3: Blake3Hash,
    },
    /// A file index: stored compressed, decompressing to the JSON its blake3 names.
    Index(IndexBlob),
    /// A tree module's package: stored as is, and unpacking to exactly each of
    /// `trees` (the file indexes of every module that names this package).
    Package {
        /// How it is compressed.
        format: PackageFormat,
        /// Stored size.
        size: u64,
        /// blake3 of the stored bytes.
        blake3: Blake3Hash,
        /// The trees its modules' file indexes list.
        trees: Vec<ExpectedTree>,
    },
    /// An image module's package, its zstd copy: stored as is, and decompressing to
    /// the image.
    Image {
        /// Stored (compressed) size.
        size: u64,
        /// blake3 of the stored bytes.
        blake3: Blake3Hash,
        /// The image's size.
        content_size: u64,
        /// blake3 of the image.
        content: Blake3Hash,
    },
    /// A tree module's copy pack: stored as is, and sliced by its index's copy layout
    /// into copies that decompress to each content.
    Copies {
        /// Stored size.
        size: u64,
        /// blake3 of the stored bytes.
        blake3: Blake3Hash,
        /// Each content and where its copy lies, by offset.
        slices: Vec<(Blake3Hash, CopySlice)>,
    },
    /// A delta pack: stored as is, and applying as [`PackCheck`] says.
    Pack {
        /// Stored size.
        size: u64,
        /// blake3 of the stored bytes.
        blake3: Blake3Hash,
        /// What it must do.
        check: Arc<PackCheck>,
    },
}

impl Expected {
    /// The size of the stored blob.
    pub fn stored_size(&self) -> u64 {
        match self {
            Self::Exact { size, .. }
            | Self::Package { size, .. }
            | Self::Image { size, .. }
            | Self::Copies { size, .. }
            | Self::Pack { size, .. } => *size,
            Self::Index(blob) => blob.size,
        }
    }
}

/// What a delta pack must do: update release `from` to release `to` on one platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackCheck {
    /// The release it updates from.
    pub from: Version,
    /// The release it updates to.
    pub to: Version,
    /// The modules of `from`, when its document could be read (a pack from a release
    /// no longer live, or whose document is broken, is checked without them: its
    /// patches cannot be).
    pub from_modules: Option<BTreeMap<ModuleName, SourceModule>>,
    /// The blake3 of each module's index in `to`.
    pub to_indexes: BTreeMap<ModuleName, Blake3Hash>,
}

/// A module of the release a pack updates from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceModule {
    /// The blake3 of its index.
    pub index_hash: Blake3Hash,
    /// The index, when it could be read.
    pub index: Option<Arc<FileIndex>>,
    /// Where its copies are (its copy pack, or an image's package).
    pub copies: Option<(RelativePath, Blob)>,
}

/// One channel as read from the site.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ChannelReport {
    /// The channel.
    pub channel: ChannelName,
    /// The envelope's exact bytes (what a mirror copies).
    #[serde(skip)]
    pub envelope: Vec<u8>,
    /// Whether the envelope verified and its manifest parsed.
    pub valid: bool,
    /// The manifest's serial.
    pub serial: Option<u64>,
    /// When the manifest expires.
    pub expires_at: Option<Timestamp>,
    /// The live releases, newest first.
    pub releases: Vec<Version>,
    /// The releases whose blobs were selected.
    pub selected: Vec<Version>,
}

/// What [`survey`] found: the channels, every blob they need, and the problems so far.
#[derive(Debug, Default)]
pub struct Survey {
    /// The site's roots (`roots/<n>.json`) with their bytes, oldest first: root 1 as
    /// found, and each later one verified as the successor of the one before, from
    /// the pinned key.
    pub roots: Vec<(RelativePath, Vec<u8>)>,
    /// The newest root the chain reached.
    pub root: Option<Root>,
    /// The channels, in the order asked for.
    pub channels: Vec<ChannelReport>,
    /// Every package, copy pack, delta pack and updater build, by site path.
    pub blobs: BTreeMap<RelativePath, Expected>,
    /// Every platform release document and file index, by site path, with its
    /// verified stored bytes.
    pub documents: BTreeMap<RelativePath, (Expected, Vec<u8>)>,
    /// Broken files found so far.
    pub problems: Vec<Problem>,
    /// Things that are not broken yet, such as a manifest that expires soon.
    pub warnings: Vec<String>,
    /// What was read.
    pub checked: Count,
}

impl Survey {
    /// Records what the blob at `path` must be. A package named by several modules
    /// (releases that share it) must unpack to each one's tree.
    fn expect(&mut self, path: RelativePath, expected: Expected) {
        match (self.blobs.get_mut(&path), expected) {
            (
                Some(Expected::Package {
                    format,
                    size,
                    blake3,
                    trees,
                }),
                Expected::Package {
                    format: new_format,
                    size: new_size,
                    blake3: new_blake3,
                    trees: new_trees,
                },
            ) if *format == new_format && *size == new_size && *blake3 == new_blake3 => {
                for tree in new_trees {
                    if !trees.contains(&tree) {
                        trees.push(tree);
                    }
                }
            }
            (_, expected) => {
                self.blobs.insert(path, expected);
            }
        }
    }

    /// The number and total size of the blobs listed (documents and indexes
    /// included).
    pub fn total(&self) -> Count {
        let mut total = Count::default();
        for expected in self.blobs.values() {
            total.add(expected.stored_size());
        }
        for (expected, _) in self.documents.values() {
            total.add(expected.stored_size());
        }
        total
    }
}

/// Told about each blob as it is checked or copied.
pub trait Reporter {
    /// `bytes` more bytes of the site have been handled.
    fn on_blob(&self, _bytes: u64) {}
}

impl Reporter for () {}

/// Walks the site's chain of roots from `key`, then reads every selected channel,
/// verifies its signatures under the root it names, checks its expiry against `now`,
/// and reads and checks the file index of every selected module.
///
/// Broken files become [`Survey::problems`]; errors are failures to read the source at
/// all (a network error, an unreadable folder).
pub fn survey(
    source: &Source,
    selection: &Selection,
    key: &PublicKey,
    now: Timestamp,
) -> Result<Survey> {
    let mut survey = Survey::default();
    let chain = walk_roots(source, key, &mut survey)?;
    let newest = chain.last().expect("the chain starts with root 1");
    let root_expired = newest
        .expires_at
        .filter(|_| newest.expired(now, SignedDuration::ZERO));
    if let Some(expires_at) = newest.expires_at
        && root_expired.is_none()
        && expires_at.duration_since(now) < ROOT_EXPIRY_WARNING
    {
        survey.warnings.push(format!(
            "{}: root v{} expires at {expires_at}, in less than 30 days; clients refuse every manifest after that, so its root key holders must publish root v{} before then (`wavecast key draft-root`)",
            layout::root(newest.version),
            newest.version,
            newest.version + 1
        ));
    }
    for channel in source.channels(&selection.channels)? {
        let path = layout::channel_manifest(&channel);
        let mut report = ChannelReport {
            channel: channel.clone(),
            envelope: Vec::new(),
            valid: false,
            serial: None,
            expires_at: None,
            releases: Vec::new(),
            selected: Vec::new(),
        };
        // A change made with `--sign-later` is not live, but someone must sign it. A
        // host that refuses to serve it (it need not) only leaves the note out.
        let pending = layout::pending_manifest(&channel);
        if matches!(source.open(&pending, 0), Ok(Some(_))) {
            survey.warnings.push(format!(
                "{pending}: a change made with --sign-later waits to be signed; it is not live until `wavecast sign` signs it with a threshold of release keys"
            ));
        }
        let manifest = read_channel(source, &path, &chain, &mut survey, &mut report)?;
        if let Some(manifest) = manifest {
            if manifest.channel != channel {
                survey.problems.push(Problem::new(
                    &path,
                    format!("the manifest is for channel `{}`", manifest.channel),
                ));
            }
            report.valid = true;
            report.serial = Some(manifest.serial);
            report.expires_at = Some(manifest.expires_at);
            if let Some(expires_at) = root_expired {
                survey.problems.push(Problem::new(
                    &path,
                    format!(
                        "the site's newest root, v{}, expired at {expires_at}: clients that reached it refuse this manifest until its root key holders publish root v{}",
                        newest.version,
                        newest.version + 1
                    ),
                ));
            }
            if manifest.expires_at <= now {
                survey.problems.push(Problem::new(
                    &path,
                    format!("the manifest expired at {}", manifest.expires_at),
                ));
            } else if manifest.expires_at.duration_since(now) < EXPIRY_WARNING {
                survey.warnings.push(format!(
                    "{path}: the manifest expires at {}, in less than 7 days; publish again before then",
                    manifest.expires_at
                ));
            }
            for (platform, build) in &manifest.updater {
                if selection.platforms.is_empty() || selection.platforms.contains(platform) {
                    survey.blobs.insert(
                        layout::blob(&build.package.blake3, BlobKind::Package),
                        Expected::Exact {
                            size: build.package.size,
                            blake3: build.package.blake3.clone(),
                        },
                    );
                }
            }
            let mut releases: Vec<_> = manifest.releases.iter().collect();
            releases.sort_by(|a, b| b.version.cmp(&a.version));
            report.releases = releases.iter().map(|r| r.version.clone()).collect();
            let selected: Vec<_> = releases
                .into_iter()
                .take(selection.newest.unwrap_or(usize::MAX))
                .collect();
            report.selected = selected.iter().map(|r| r.version.clone()).collect();
            // Oldest first, so that the releases packs update from are read (and
            // kept) before the packs are checked against them.
            for release in selected.into_iter().rev() {
                for (platform, blob) in &release.platforms {
                    let wanted = selection.platforms.is_empty()
                        || platform.as_str() == "any"
                        || selection.platforms.contains(platform);
                    if wanted {
                        survey_release(source, &manifest, release, platform, blob, &mut survey)?;
                    }
                }
            }
        }
        survey.channels.push(report);
    }
    survey.root = chain.last().cloned();
    Ok(survey)
}

/// Reads `roots/1.json` (kept as found: a client pinned to `key` already trusts
/// root 1) and then `roots/2.json`… until one is missing, each verified as the
/// successor of the one before, starting from [`Root::from_key`]. A root that fails
/// becomes a problem and ends the walk. Returns the chain, oldest first.
fn walk_roots(source: &Source, key: &PublicKey, survey: &mut Survey) -> Result<Vec<Root>> {
    let first = layout::root(1);
    if let Some(bytes) = source.read(&first, ROOT_SIZE_LIMIT)? {
        survey.checked.add(bytes.len() as u64);
        match Root::verify_pinned(&bytes) {
            Ok(root) if root.release.keys.contains(key) || root.root.keys.contains(key) => {
                survey.roots.push((first, bytes));
            }
            Ok(_) => survey.problems.push(Problem::new(
                &first,
                "root 1 does not hold the given public key",
            )),
            Err(error) => survey
                .problems
                .push(Problem::new(&first, error.to_string())),
        }
    }
    let mut chain = vec![Root::from_key(key.clone())];
    for _ in 0..MAX_ROOT_STEPS * 16 {
        let newest = chain.last().expect("the chain starts with root 1");
        let path = layout::root(newest.version + 1);
        let Some(bytes) = source.read(&path, ROOT_SIZE_LIMIT)? else {
            break;
        };
        survey.checked.add(bytes.len() as u64);
        match newest.verify_successor(&bytes) {
            Ok(next) => {
                survey.roots.push((path, bytes));
                chain.push(next);
            }
            Err(error) => {
                survey.problems.push(Problem::new(&path, error.to_string()));
                break;
            }
        }
    }
    Ok(chain)
}

/// Reads, verifies and parses one channel envelope; `None` (with a problem recorded)
/// when it is missing or broken.
fn read_channel(
    source: &Source,
    path: &RelativePath,
    chain: &[Root],
    survey: &mut Survey,
    report: &mut ChannelReport,
) -> Result<Option<Manifest>> {
    let mut problem = |what: String| {
        survey.problems.push(Problem::new(path, what));
        Ok(None)
    };
    let Some(bytes) = source.read(path, MAX_DOCUMENT_SIZE)? else {
        return problem("missing".into());
    };
    survey.checked.add(bytes.len() as u64);
    report.envelope.clone_from(&bytes);
    if bytes.len() as u64 > MAX_DOCUMENT_SIZE {
        return problem(format!("larger than {MAX_DOCUMENT_SIZE} bytes"));
    }
    let envelope = match Envelope::parse(&bytes) {
        Ok(envelope) => envelope,
        Err(error) => return problem(error.to_string()),
    };
    let named = envelope.root_version_hint();
    let Some(root) = named
        .checked_sub(1)
        .and_then(|index| usize::try_from(index).ok())
        .and_then(|index| chain.get(index))
    else {
        return problem(format!(
            "the manifest is signed under root v{named}, but the chain of roots from the given key ends at v{}",
            chain.len()
        ));
    };
    if let Err(error) = root.check_signatures(
        Role::Release,
        "the manifest",
        envelope.manifest.as_bytes(),
        &envelope.signatures,
    ) {
        return problem(error.to_string());
    }
    match Manifest::parse(envelope.manifest.as_bytes()) {
        Ok(manifest) if manifest.root_version == named => {
            let newest = chain.last().expect("the chain starts with root 1");
            let refused_by_newest = newest.version > named
                && newest
                    .check_signatures(
                        Role::Release,
                        "the manifest",
                        envelope.manifest.as_bytes(),
                        &envelope.signatures,
                    )
                    .is_err();
            if refused_by_newest {
                survey.warnings.push(format!(
                    "{path}: signed under root v{named}, whose release keys root v{} no longer trusts; clients that have seen root v{} refuse it until the channel is signed again",
                    newest.version, newest.version
                ));
            }
            Ok(Some(manifest))
        }
        Ok(manifest) => problem(format!(
            "the manifest names root v{} but was read as v{named}",
            manifest.root_version
        )),
        Err(error) => problem(format!("the signed manifest is invalid: {error}")),
    }
}

/// Reads and checks the document of `release` on `platform` (named by `blob`), the
/// file index of each of its modules, and lists every blob they name: packages, copy
/// packs and delta packs. What is broken becomes a problem.
fn survey_release(
    source: &Source,
    manifest: &Manifest,
    release: &wavecast_schema::Release,
    platform: &Platform,
    blob: &Blob,
    survey: &mut Survey,
) -> Result<()> {
    let Some(document) = survey_document(source, blob, true, survey)? else {
        return Ok(());
    };
    let path = layout::blob(&blob.blake3, BlobKind::PlatformRelease);
    if document.version != release.version || &document.platform != platform {
        survey.problems.push(Problem::new(
            &path,
            format!(
                "it is the document of {} on `{}`, not of {} on `{platform}`",
                document.version, document.platform, release.version
            ),
        ));
        return Ok(());
    }
    let mut to_indexes = BTreeMap::new();
    for (name, module) in &document.modules {
        to_indexes.insert(name.clone(), module.index.blake3.clone());
        let needed = module.package_format.min_client_version();
        if module.kind == ModuleKind::Tree && manifest.min_client_version < needed {
            survey.warnings.push(format!(
                "{path}: module {name} of {} is a {} package, which wavecast-update before {needed} cannot read, but channel `{}` lets clients from {} on take it; raise its floor (`wavecast rollout {} --min-client-version {needed}`)",
                release.version, module.package_format, manifest.channel, manifest.min_client_version, release.version
            ));
        }
        let index = survey_index(source, &module.index, true, survey)?;
        let package = &module.package;
        match (module.kind, index) {
            (ModuleKind::Tree, Some(index)) => {
                let mut tree = ExpectedTree::new();
                let expected = match tree.add_module(None, &index) {
                    Ok(()) => Expected::Package {
                        format: module.package_format,
                        size: package.size,
                        blake3: package.blake3.clone(),
                        trees: vec![tree],
                    },
                    // A tree clients would refuse (a problem of its own when they
                    // install it) is checked by hash alone here.
                    Err(_) => Expected::Exact {
                        size: package.size,
                        blake3: package.blake3.clone(),
                    },
                };
                survey.expect(
                    layout::blob(&package.blake3, BlobKind::of_package(module)),
                    expected,
                );
                match copies_location(module) {
                    Some((copies_path, copies)) => {
                        let mut slices: Vec<(Blake3Hash, CopySlice)> = index
                            .copy_layout()
                            .into_iter()
                            .map(|(hash, slice)| (hash.clone(), slice))
                            .collect();
                        slices.sort_by_key(|(_, slice)| slice.offset);
                        survey.expect(
                            copies_path,
                            Expected::Copies {
                                size: copies.size,
                                blake3: copies.blake3,
                                slices,
                            },
                        );
                    }
                    None => survey.problems.push(Problem::new(
                        &path,
                        format!("tree module {name} has no copy pack"),
                    )),
                }
            }
            (ModuleKind::Image, Some(index)) => match index.entries.as_slice() {
                [
                    wavecast_schema::IndexEntry {
                        kind: EntryKind::File { size, blake3, .. },
                        ..
                    },
                ] => survey.expect(
                    layout::blob(&package.blake3, BlobKind::FileCopy),
                    Expected::Image {
                        size: package.size,
                        blake3: package.blake3.clone(),
                        content_size: *size,
                        content: blake3.clone(),
                    },
                ),
                _ => survey.problems.push(Problem::new(
                    &path,
                    format!("the index of image module {name} does not list exactly one file"),
                )),
            },
            // A module whose index is broken (a problem already) has blobs that
            // cannot be named or checked.
            (_, None) => {}
        }
    }
    for pack in &document.packs {
        let from_modules = match manifest
            .release(&pack.from)
            .and_then(|from| from.for_platform(platform))
        {
            Some(from_blob) => source_modules(source, from_blob, survey)?,
            None => None,
        };
        survey.expect(
            layout::blob(&pack.blake3, BlobKind::Pack),
            Expected::Pack {
                size: pack.size,
                blake3: pack.blake3.clone(),
                check: Arc::new(PackCheck {
                    from: pack.from.clone(),
                    to: document.version.clone(),
                    from_modules,
                    to_indexes: to_indexes.clone(),
                }),
            },
        );
    }
    Ok(())
}

/// The modules of the release whose document `blob` names, to check a pack from it:
/// read without recording them as blobs of the survey (that release may not be
/// selected); `None` when the document cannot be read.
fn source_modules(
    source: &Source,
    blob: &Blob,
    survey: &mut Survey,
) -> Result<Option<BTreeMap<ModuleName, SourceModule>>> {
    let Some(document) = survey_document(source, blob, false, survey)? else {
        return Ok(None);
    };
    let mut modules = BTreeMap::new();
    for (name, module) in &document.modules {
        let index = survey_index(source, &module.index, false, survey)?;
        modules.insert(
            name.clone(),
            SourceModule {
                index_hash: module.index.blake3.clone(),
                copies: copies_location(module),
                index: index.map(Arc::new),
            },
        );
    }
    Ok(Some(modules))
}

/// Reads and checks one platform release document. Returns it, or `None` when it is
/// missing or broken; with `record`, the problem is recorded and the document kept
/// in [`Survey::documents`].
fn survey_document(
    source: &Source,
    blob: &Blob,
    record: bool,
    survey: &mut Survey,
) -> Result<Option<PlatformRelease>> {
    let path = layout::blob(&blob.blake3, BlobKind::PlatformRelease);
    if let Some((_, bytes)) = survey.documents.get(&path) {
        return Ok(PlatformRelease::parse(bytes).ok());
    }
    let mut problem = |what: String| {
        if record {
            survey.problems.push(Problem::new(&path, what));
        }
        Ok(None)
    };
    if blob.size > PLATFORM_RELEASE_SIZE_LIMIT {
        return problem(format!(
            "named as {} bytes, more than the {PLATFORM_RELEASE_SIZE_LIMIT} clients read",
            blob.size
        ));
    }
    let Some(bytes) = source.read(&path, blob.size)? else {
        return problem("missing".into());
    };
    if let Err(what) = check_exact(&bytes, blob.size, &blob.blake3) {
        return problem(what);
    }
    let document = match PlatformRelease::parse(&bytes) {
        Ok(document) => document,
        Err(error) => return problem(error.to_string()),
    };
    if record {
        survey.checked.add(bytes.len() as u64);
        let expected = Expected::Exact {
            size: blob.size,
            blake3: blob.blake3.clone(),
        };
        survey.documents.insert(path, (expected, bytes));
    }
    Ok(Some(document))
}

/// Reads, decompresses and checks one file index. Returns it, or `None` when it is
/// missing or broken; with `record`, the problem is recorded and the stored bytes kept
/// in [`Survey::documents`].
fn survey_index(
    source: &Source,
    blob: &IndexBlob,
    record: bool,
    survey: &mut Survey,
) -> Result<Option<FileIndex>> {
    let path = layout::blob(&blob.blake3, BlobKind::FileIndex);
    if let Some((_, bytes)) = survey.documents.get(&path) {
        return Ok(FileIndex::decode(bytes, blob).ok());
    }
    let Some(bytes) = source.read(&path, blob.size)? else {
        if record {
            survey.problems.push(Problem::new(&path, "missing"));
        }
        return Ok(None);
    };
    let index = if bytes.len() as u64 == blob.size {
        FileIndex::decode(&bytes, blob).map_err(|error| error.to_string())
    } else {
        Err(size_problem(bytes.len() as u64, blob.size))
    };
    match index {
        Ok(index) => {
            if record {
                survey.checked.add(bytes.len() as u64);
                survey
                    .documents
                    .insert(path, (Expected::Index(blob.clone()), bytes));
            }
            Ok(Some(index))
        }
        Err(what) => {
            if record {
                survey.problems.push(Problem::new(&path, what));
            }
            Ok(None)
        }
    }
}

fn check_exact(bytes: &[u8], size: u64, blake3: &Blake3Hash) -> std::result::Result<(), String> {
    if bytes.len() as u64 != size {
        return Err(size_problem(bytes.len() as u64, size));
    }
    if Blake3Hash::of(bytes) != *blake3 {
        return Err(format!("blake3 mismatch: expected {blake3}"));
    }
    Ok(())
}

fn size_problem(found: u64, expected: u64) -> String {
    if found > expected {
        format!("larger than the expected {expected} bytes")
    } else {
        format!("{found} bytes instead of {expected}")
    }
}

/// Reads the blob at `path` from `source`, checks it against `expected` and writes it
/// to `sink` as it is read (a sink must be discarded when the check fails).
///
/// Returns the bytes read, or `Ok(Err(problem))` when the blob is missing or wrong.
pub fn fetch_blob(
    source: &Source,
    path: &RelativePath,
    expected: &Expected,
    sink: &mut dyn Write,
) -> Result<std::result::Result<u64, String>> {
    let stored_size = expected.stored_size();
    let Some(mut reader) = source.open(path, stored_size.saturating_add(1))? else {
        return Ok(Err("missing".into()));
    };
    let location = source.location(path);
    let read_error = |error| Error::Fetch {
        location: location.clone(),
        source: error,
    };
    match expected {
        Expected::Exact { size, blake3 } => {
            let mut tee = Tee::new(&mut reader, sink);
            tee.read_through(|_| ()).map_err(read_error)?;
            Ok(tee.check(*size, blake3))
        }
        Expected::Index(blob) => {
            let mut bytes = Vec::new();
            reader.read_to_end(&mut bytes).map_err(read_error)?;
            if bytes.len() as u64 != blob.size {
                return Ok(Err(size_problem(bytes.len() as u64, blob.size)));
            }
            if let Err(error) = FileIndex::decode(&bytes, blob) {
                return Ok(Err(error.to_string()));
            }
            sink.write_all(&bytes).map_err(read_error)?;
            Ok(Ok(blob.size))
        }
        Expected::Package {
            format,
            size,
            blake3,
            trees,
        } => {
            let mut tee = Tee::new(&mut reader, sink);
            let unpacked = tee
                .read_through(|tee| check_package_trees(tee, *format, trees))
                .map_err(read_error)?;
            // A wrong hash explains any tree problem; report it first.
            Ok(tee
                .check(*size, blake3)
                .and_then(|count| unpacked.map(|()| count)))
        }
        Expected::Image {
            size,
            blake3,
            content_size,
            content,
        } => {
            let mut tee = Tee::new(&mut reader, sink);
            let mut packed = Vec::new();
            tee.read_through(|tee| tee.read_to_end(&mut packed))
                .and_then(|read| read)
                .map_err(read_error)?;
            Ok(tee
                .check(*size, blake3)
                .and_then(|count| check_copy(&packed, *content_size, content).map(|()| count)))
        }
        Expected::Copies {
            size,
            blake3,
            slices,
        } => {
            let mut tee = Tee::new(&mut reader, sink);
            let sliced = tee
                .read_through(|tee| check_copy_pack(tee, slices))
                .map_err(read_error)?;
            Ok(tee
                .check(*size, blake3)
                .and_then(|count| sliced.map(|()| count)))
        }
        Expected::Pack {
            size,
            blake3,
            check,
        } => {
            let mut tee = Tee::new(&mut reader, sink);
            let mut pack = Vec::new();
            tee.read_through(|tee| tee.read_to_end(&mut pack))
                .and_then(|read| read)
                .map_err(read_error)?;
            if let Err(what) = tee.check(*size, blake3) {
                return Ok(Err(what));
            }
            Ok(check_pack(source, &pack, check)?.map(|()| *size))
        }
    }
}

/// Whether `copy` decompresses to `size` bytes hashing to `content`.
fn check_copy(copy: &[u8], size: u64, content: &Blake3Hash) -> std::result::Result<(), String> {
    let decompressed = wavecast_delta::decompress_copy(copy, size)
        .map_err(|error| format!("does not decompress: {error}"))?;
    if decompressed.len() as u64 != size {
        return Err(format!(
            "decompresses to {} bytes instead of {size}",
            decompressed.len()
        ));
    }
    if Blake3Hash::of(&decompressed) != *content {
        return Err(format!(
            "decompresses to content whose blake3 is not {content}"
        ));
    }
    Ok(())
}

/// Reads a copy pack and checks that each of `slices` (by offset) is a copy that
/// decompresses to its content. A problem in words when one is not.
fn check_copy_pack(
    reader: &mut dyn Read,
    slices: &[(Blake3Hash, CopySlice)],
) -> std::result::Result<(), String> {
    let mut position = 0u64;
    for (content, slice) in slices {
        let gap = slice
            .offset
            .checked_sub(position)
            .ok_or("its index lays out overlapping copies")?;
        io::copy(&mut reader.take(gap), &mut io::sink())
            .map_err(|error| format!("cannot be read: {error}"))?;
        let mut copy = Vec::new();
        reader
            .take(slice.length)
            .read_to_end(&mut copy)
            .map_err(|error| format!("cannot be read: {error}"))?;
        if copy.len() as u64 != slice.length {
            return Err(format!(
                "ends inside the copy of {content}, at byte {}",
                slice.offset + copy.len() as u64
            ));
        }
        check_copy(&copy, slice.size, content)
            .map_err(|what| format!("the copy of {content} at byte {}: {what}", slice.offset))?;
        position = slice.offset + slice.length;
    }
    Ok(())
}

/// Checks a delta pack (whose size and hash matched) against `check`: its header,
/// each module delta applied to the old release's index, and each content it carries
/// rebuilt, patches from the old release's copies (read from `source`). A problem in
/// words when something is wrong.
fn check_pack(
    source: &Source,
    pack: &[u8],
    check: &PackCheck,
) -> Result<std::result::Result<(), String>> {
    let (header, payload) = match PackHeader::decode(pack) {
        Ok(decoded) => decoded,
        Err(error) => return Ok(Err(error.to_string())),
    };
    if header.from != check.from || header.to != check.to {
        return Ok(Err(format!(
            "it updates {} to {}, not {} to {}",
            header.from, header.to, check.from, check.to
        )));
    }
    if let Some(name) = header
        .modules
        .keys()
        .find(|name| !check.to_indexes.contains_key(*name))
    {
        return Ok(Err(format!(
            "it lists module {name}, which {} lacks",
            check.to
        )));
    }
    let mut bases = BaseContents::default();
    for (name, to_index) in &check.to_indexes {
        let delta = header.modules.get(name);
        if let Some(delta) = delta
            && &delta.to_index != to_index
        {
            return Ok(Err(format!(
                "module {name}: it gives the index {}, not {to_index}",
                delta.to_index
            )));
        }
        if let Some(from_modules) = &check.from_modules {
            let old = from_modules.get(name);
            let changed = old.is_none_or(|old| &old.index_hash != to_index);
            match (delta, changed) {
                (None, true) => {
                    return Ok(Err(format!(
                        "module {name} changes from {} but the pack does not list it",
                        check.from
                    )));
                }
                (Some(delta), _) => {
                    // An old index that cannot be read is a problem of its own.
                    let readable = match old {
                        Some(old) => old.index.as_deref().map(Some),
                        None => Some(None),
                    };
                    if let Some(old_index) = readable
                        && let Err(error) = delta.apply(old_index)
                    {
                        return Ok(Err(format!("module {name}: {error}")));
                    }
                }
                (None, false) => {}
            }
        }
        let Some(delta) = delta else {
            continue;
        };
        for entry in &delta.entries {
            let (EntryKind::File { size, blake3, .. }, Some(data)) =
                (&entry.entry.kind, &entry.data)
            else {
                continue;
            };
            let Some(bytes) = data.bytes(payload) else {
                unreachable!("decoding the pack checked that its data lies in the payload");
            };
            let rebuilt = match data {
                PackData::Copy { .. } => check_copy(bytes, *size, blake3),
                PackData::Patch {
                    base, algorithm, ..
                } => match bases.content(source, check, base)? {
                    Base::Unreadable => Ok(()),
                    Base::Absent => Err(format!("its base {base} is not in {}", check.from)),
                    Base::Found(old) => wavecast_delta::apply_patch(*algorithm, &old, bytes, *size)
                        .map_err(|error| format!("does not apply: {error}"))
                        .and_then(|new| {
                            if new.len() as u64 == *size && Blake3Hash::of(&new) == *blake3 {
                                Ok(())
                            } else {
                                Err(format!("does not rebuild {blake3}"))
                            }
                        }),
                },
            };
            if let Err(what) = rebuilt {
                return Ok(Err(format!(
                    "module {name}: the data of `{}`: {what}",
                    entry.entry.path
                )));
            }
        }
    }
    Ok(Ok(()))
}

/// The contents of the old release of a pack that its patches start from, read from
/// that release's copies once per module.
#[derive(Default)]
struct BaseContents {
    copies: HashMap<ModuleName, Option<LoadedCopies>>,
}

/// An old content a patch starts from, as [`BaseContents`] finds it.
enum Base {
    /// The content.
    Found(Vec<u8>),
    /// The old release, or its copies holding the content, cannot be read (it is no
    /// longer live, or they are broken: a problem of their own).
    Unreadable,
    /// No module of the old release holds it: clients on it cannot apply the patch.
    Absent,
}

impl BaseContents {
    /// The old content `base`.
    fn content(&mut self, source: &Source, check: &PackCheck, base: &Blake3Hash) -> Result<Base> {
        let Some(from_modules) = &check.from_modules else {
            return Ok(Base::Unreadable);
        };
        let holder = from_modules.iter().find(|(_, module)| {
            module
                .index
                .as_ref()
                .is_some_and(|index| index.file_hashes().any(|hash| hash == base))
        });
        let Some((name, module)) = holder else {
            return Ok(
                if from_modules.values().all(|module| module.index.is_some()) {
                    Base::Absent
                } else {
                    Base::Unreadable
                },
            );
        };
        if !self.copies.contains_key(name) {
            let loaded = match (&module.copies, &module.index) {
                (Some((path, blob)), Some(index)) => source
                    .read(path, blob.size)?
                    .filter(|bytes| check_exact(bytes, blob.size, &blob.blake3).is_ok())
                    .and_then(|bytes| LoadedCopies::new(bytes, index)),
                _ => None,
            };
            self.copies.insert(name.clone(), loaded);
        }
        Ok(match &self.copies[name] {
            Some(copies) => copies.content(base).map_or(Base::Unreadable, Base::Found),
            None => Base::Unreadable,
        })
    }
}

/// Passes what it reads on to `sink`, counting and hashing it, and remembers an
/// error of the reader itself (the network, the disk), so a caller reading through a
/// decoder can tell it from bad content.
struct Tee<'a> {
    reader: &'a mut dyn Read,
    sink: &'a mut dyn Write,
    hasher: blake3::Hasher,
    count: u64,
    failure: Option<io::Error>,
}

impl<'a> Tee<'a> {
    fn new(reader: &'a mut dyn Read, sink: &'a mut dyn Write) -> Self {
        Self {
            reader,
            sink,
            hasher: blake3::Hasher::new(),
            count: 0,
            failure: None,
        }
    }

    /// Runs `read` on the tee, then reads what it left (a gzip trailer, padding), so
    /// that every byte counts for the hash. A failure of the source or the sink, met
    /// by `read` or here, is the error returned: it is not a problem of the blob.
    fn read_through<T>(&mut self, read: impl FnOnce(&mut Self) -> T) -> io::Result<T> {
        let value = read(self);
        let drained = io::copy(self, &mut io::sink());
        if let Some(source) = self.failure.take() {
            return Err(source);
        }
        drained?;
        Ok(value)
    }

    /// Whether exactly `size` bytes hashing to `blake3` went through.
    fn check(&self, size: u64, blake3: &Blake3Hash) -> std::result::Result<u64, String> {
        if self.count != size {
            return Err(size_problem(self.count, size));
        }
        if Blake3Hash::from(self.hasher.finalize()) != *blake3 {
            return Err(format!("blake3 mismatch: expected {blake3}"));
        }
        Ok(self.count)
    }
}

impl Read for Tee<'_> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let read = match self.reader.read(buffer) {
            Ok(read) => read,
            Err(error) => {
                let message = error.to_string();
                self.failure = Some(error);
                return Err(io::Error::other(message));
            }
        };
        self.hasher.update(&buffer[..read]);
        self.count += read as u64;
        if let Err(error) = self.sink.write_all(&buffer[..read]) {
            let message = error.to_string();
            self.failure = Some(error);
            return Err(io::Error::other(message));
        }
        Ok(read)
    }
}

/// How many bytes of tar headers and extension records each entry may bring before
/// its data: plenty for any real path, little enough that a hostile record cannot
/// exhaust memory.
const HEADER_ALLOWANCE: u64 = 64 * 1024;

/// Reads a package of `format` and checks that it holds exactly each of `trees`: the
/// entries the file index lists, no others, each with its kind, mode, size, content
/// or link target. A problem in words when it does not (or is no such package at
/// all).
fn check_package_trees(
    reader: &mut dyn Read,
    format: PackageFormat,
    trees: &[ExpectedTree],
) -> std::result::Result<(), String> {
    // What the largest tree may hold, and a header allowance per entry: past that the
    // archive cannot match any tree, and is not read further.
    let limit = trees
        .iter()
        .map(|tree| {
            let data: u64 = tree
                .iter()
                .map(|(_, expected)| match expected {
                    wavecast_schema::Expected::File { size, .. } => *size,
                    _ => 0,
                })
                .sum();
            data.saturating_add((tree.len() as u64 + 16).saturating_mul(HEADER_ALLOWANCE))
        })
        .max()
        .unwrap_or(0);
    let unreadable = |error: io::Error| format!("is not a readable {format}: {error}");
    let decoder: Box<dyn Read> = match format {
        PackageFormat::TarGz => Box::new(flate2::read::GzDecoder::new(reader)),
        PackageFormat::TarZst => {
            let mut decoder = zstd::stream::read::Decoder::new(reader).map_err(unreadable)?;
            decoder
                .window_log_max(MAX_PACKAGE_WINDOW_LOG)
                .map_err(unreadable)?;
            Box::new(decoder)
        }
    };
    let mut archive = tar::Archive::new(decoder.take(limit));
    let mismatch =
        |error: TreeMismatch| format!("does not unpack to what its file index lists: {error}");
    let mut checks: Vec<TreeCheck<'_>> = trees.iter().map(TreeCheck::new).collect();
    for entry in archive.entries().map_err(unreadable)? {
        let mut entry = entry.map_err(unreadable)?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let mut path = raw.as_str();
        while let Some(rest) = path.strip_prefix("./") {
            path = rest;
        }
        let path = path.trim_end_matches('/');
        if path.is_empty() {
            continue;
        }
        let header = entry.header();
        let mode = FileMode::from_permissions(header.mode().map_err(unreadable)?);
        let target = entry
            .link_name_bytes()
            .map(|target| String::from_utf8_lossy(&target).into_owned());
        let found = match header.entry_type() {
            tar::EntryType::Regular => Found::File {
                mode: Some(mode),
                size: entry.size(),
            },
            tar::EntryType::Directory => Found::Dir { mode: Some(mode) },
            tar::EntryType::Symlink => Found::Symlink {
                target: target.as_deref().unwrap_or(""),
            },
            tar::EntryType::Link => Found::Other { kind: "hard link" },
            _ => Found::Other {
                kind: "special file",
            },
        };
        let mut content = None;
        for check in &mut checks {
            let Some(blake3) = check.visit(path, &found).map_err(mismatch)? else {
                continue;
            };
            let found = match &content {
                Some(found) => found,
                None => {
                    let mut hasher = blake3::Hasher::new();
                    io::copy(&mut entry, &mut hasher).map_err(unreadable)?;
                    content.insert(Blake3Hash::from(hasher.finalize()))
                }
            };
            if found != blake3 {
                return Err(mismatch(TreeMismatch {
                    path: path.to_owned(),
                    problem: Mismatch::Content {
                        expected: blake3.clone(),
                        found: found.clone(),
                    },
                }));
            }
        }
    }
    checks
        .into_iter()
        .try_for_each(TreeCheck::finish)
        .map_err(mismatch)
}

/// Streams and checks every blob of `survey` (the file indexes were checked by
/// [`survey`]), adding what is wrong to its problems.
pub fn check_blobs(source: &Source, survey: &mut Survey, reporter: &dyn Reporter) -> Result<()> {
    for (path, expected) in &survey.blobs {
        match fetch_blob(source, path, expected, &mut io::sink())? {
            Ok(bytes) => survey.checked.add(bytes),
            Err(what) => survey.problems.push(Problem::new(path, what)),
        }
        reporter.on_blob(expected.stored_size());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_parse() {
        assert!(
            matches!(Source::parse("site").unwrap(), Source::Folder(p) if p == std::path::Path::new("site"))
        );
        assert!(
            matches!(Source::parse("file:///srv/site").unwrap(), Source::Folder(p) if p == std::path::Path::new("/srv/site"))
        );
        match Source::parse("http://127.0.0.1:8080").unwrap() {
            Source::Http { base, .. } => assert_eq!(base, "http://127.0.0.1:8080/"),
            other => panic!("a URL is not {other:?}"),
        }
        assert!(Source::parse("s3://bucket/site").is_err());
    }

    #[test]
    fn exact_blobs_are_checked_by_size_and_hash() {
        let dir = tempfile::tempdir().unwrap();
        fs_err::create_dir_all(dir.path().join("blobs")).unwrap();
        fs_err::write(dir.path().join("blobs/a.json"), b"hello").unwrap();
        let source = Source::Folder(dir.path().to_owned());
        let path: RelativePath = "blobs/a.json".parse().unwrap();
        let good = Expected::Exact {
            size: 5,
            blake3: Blake3Hash::of(b"hello"),
        };
        let mut sink = Vec::new();
        assert_eq!(fetch_blob(&source, &path, &good, &mut sink).unwrap(), Ok(5));
        assert_eq!(sink, b"hello");
        let short = Expected::Exact {
            size: 4,
            blake3: Blake3Hash::of(b"hell"),
        };
        assert!(
            fetch_blob(&source, &path, &short, &mut io::sink())
                .unwrap()
                .is_err()
        );
        let wrong = Expected::Exact {
            size: 5,
            blake3: Blake3Hash::of(b"world"),
        };
        assert!(
            fetch_blob(&source, &path, &wrong, &mut io::sink())
                .unwrap()
                .is_err()
        );
        let missing: RelativePath = "blobs/b.json".parse().unwrap();
        assert_eq!(
            fetch_blob(&source, &missing, &good, &mut io::sink()).unwrap(),
            Err("missing".to_owned())
        );
    }

    /// A tar.gz of a link `lib/libfoo.so` to `target` and the file it names.
    fn linked_package(target: &str) -> Vec<u8> {
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::fast(),
        ));
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_mode(0o777);
        header.set_size(0);
        builder
            .append_link(&mut header, "lib/libfoo.so", target)
            .unwrap();
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o644);
        header.set_size(3);
        builder
            .append_data(&mut header, "lib/libfoo.so.1", &b"elf"[..])
            .unwrap();
        builder.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn a_package_must_hold_its_index_tree_links_included() {
        let index = FileIndex::parse(
            br#"{"format":2,"entries":[
                {"path":"lib/libfoo.so","type":"symlink","target":"libfoo.so.1","mode":"777"},
                {"path":"lib/libfoo.so.1","type":"file","size":3,"blake3":"0000000000000000000000000000000000000000000000000000000000000000","packed_size":0,"mode":"644"}]}"#,
        )
        .unwrap();
        let mut index = index;
        if let EntryKind::File { blake3, .. } = &mut index.entries[1].kind {
            *blake3 = Blake3Hash::of(b"elf");
        }
        let mut tree = ExpectedTree::new();
        tree.add_module(None, &index).unwrap();
        let trees = [tree];
        check_package_trees(
            &mut linked_package("libfoo.so.1").as_slice(),
            PackageFormat::TarGz,
            &trees,
        )
        .unwrap();
        let problem = check_package_trees(
            &mut linked_package("/etc/passwd").as_slice(),
            PackageFormat::TarGz,
            &trees,
        )
        .unwrap_err();
        assert!(
            problem.contains("`lib/libfoo.so` points to `/etc/passwd`"),
            "{problem}"
        );
        let problem = check_package_trees(&mut &b"not a package"[..], PackageFormat::TarGz, &trees)
            .unwrap_err();
        assert!(problem.starts_with("is not a readable tar.gz"), "{problem}");
        // The same tar as tar.zst.
        let tar = {
            let mut tar = Vec::new();
            io::copy(
                &mut flate2::read::GzDecoder::new(linked_package("libfoo.so.1").as_slice()),
                &mut tar,
            )
            .unwrap();
            tar
        };
        let zst = zstd::encode_all(tar.as_slice(), 3).unwrap();
        check_package_trees(&mut zst.as_slice(), PackageFormat::TarZst, &trees).unwrap();
        let problem =
            check_package_trees(&mut &tar[..], PackageFormat::TarZst, &trees).unwrap_err();
        assert!(
            problem.starts_with("is not a readable tar.zst"),
            "{problem}"
        );
    }

    /// A site with three releases of a tree module `app` and an image module `os`,
    /// and its survey.
    fn published() -> (crate::publish::tests::Fixture, Source, Survey) {
        let site = crate::publish::tests::Fixture::new();
        let text = crate::delta::tests::text;
        let edited = crate::delta::tests::edited;
        let (lib, image) = (text(1, 4000), text(2, 8000));
        let modules = || {
            vec![
                "app=app".parse().unwrap(),
                crate::package::ModuleSpec::image("os=os.img").unwrap(),
            ]
        };
        site.publish_modules(
            "1.0.0",
            &[
                ("app/lib-1.0.so", &lib),
                ("app/same", b"same"),
                ("os.img", &image),
            ],
            3,
            modules(),
        );
        let lib2 = edited(&lib);
        site.publish_modules(
            "1.1.0",
            &[
                ("app/lib-1.1.so", &lib2),
                ("app/same", b"same"),
                ("os.img", &edited(&image)),
            ],
            3,
            modules(),
        );
        site.publish_modules(
            "1.2.0",
            &[
                ("app/lib-1.2.so", &edited(&lib2)),
                ("app/new", b"new"),
                ("os.img", &edited(&image)),
            ],
            3,
            modules(),
        );
        let source = Source::Folder(site.dir.path().join("site"));
        let key =
            load_public_key(site.dir.path().join("keys/wavecast.pub").to_str().unwrap()).unwrap();
        let survey = survey(
            &source,
            &Selection::default(),
            &key,
            "2026-11-22T01:00:00Z".parse().unwrap(),
        )
        .unwrap();
        (site, source, survey)
    }

    fn of_kind(survey: &Survey, extension: &str) -> Vec<(RelativePath, Expected)> {
        survey
            .blobs
            .iter()
            .filter(|(path, _)| {
                layout::parse_blob(path.as_str())
                    .is_some_and(|(_, kind)| format!(".{}", kind.extension()) == extension)
            })
            .map(|(path, expected)| (path.clone(), expected.clone()))
            .collect()
    }

    #[test]
    fn a_published_site_verifies_with_every_blob_of_its_releases() {
        let (_site, source, mut survey) = published();
        assert!(survey.problems.is_empty(), "{:?}", survey.problems);
        // Three documents, two indexes per release but the unchanged ones.
        let documents = survey
            .documents
            .keys()
            .filter(|path| path.as_str().ends_with(".json"));
        assert_eq!(documents.count(), 3);
        assert_eq!(
            of_kind(&survey, ".pack").len(),
            3,
            "1.0->1.1, 1.1->1.2, 1.0->1.2"
        );
        assert_eq!(of_kind(&survey, ".copies").len(), 3);
        assert_eq!(of_kind(&survey, ".zst").len(), 2, "two images");
        assert!(!of_kind(&survey, ".tar.zst").is_empty());
        assert!(of_kind(&survey, ".tar.gz").is_empty());
        check_blobs(&source, &mut survey, &()).unwrap();
        assert!(survey.problems.is_empty(), "{:?}", survey.problems);
    }

    #[test]
    fn copy_packs_and_packs_that_do_not_rebuild_their_contents_are_problems() {
        let (site, source, survey) = published();
        let check = |path: &RelativePath, expected: &Expected| {
            fetch_blob(&source, path, expected, &mut io::sink())
                .unwrap()
                .unwrap_err()
        };
        // A copy pack whose layout names other contents than its copies hold.
        let (path, copies) = of_kind(&survey, ".copies").remove(0);
        let Expected::Copies {
            size,
            blake3,
            mut slices,
        } = copies
        else {
            panic!("a copy pack");
        };
        slices[0].0 = Blake3Hash::of(b"something else");
        let problem = check(
            &path,
            &Expected::Copies {
                size,
                blake3,
                slices,
            },
        );
        assert!(problem.contains("decompresses to content"), "{problem}");

        let packs = of_kind(&survey, ".pack");
        let (
            path,
            Expected::Pack {
                size,
                blake3,
                check: pack_check,
            },
        ) = &packs[0]
        else {
            panic!("a pack");
        };
        let with = |change: &dyn Fn(&mut PackCheck)| {
            let mut changed = (**pack_check).clone();
            change(&mut changed);
            Expected::Pack {
                size: *size,
                blake3: blake3.clone(),
                check: Arc::new(changed),
            }
        };
        // Another new index than the pack gives.
        let problem = check(
            path,
            &with(&|check| {
                check
                    .to_indexes
                    .insert("app".parse().unwrap(), Blake3Hash::of(b"other"));
            }),
        );
        assert!(
            problem.contains("module app: it gives the index"),
            "{problem}"
        );
        // Another old index than the pack applies to.
        let problem = check(
            path,
            &with(&|check| {
                let modules = check.from_modules.as_mut().unwrap();
                let app = modules.get_mut("app").unwrap();
                app.index_hash = Blake3Hash::of(b"other");
                app.index = Some(Arc::new(FileIndex::new(Vec::new())));
            }),
        );
        assert!(
            problem.contains("another index than the one installed"),
            "{problem}"
        );
        // Another release than the pack updates.
        let problem = check(path, &with(&|check| check.from = "0.9.0".parse().unwrap()));
        assert!(problem.contains("not 0.9.0"), "{problem}");

        // A patch whose base is not the one it was made from.
        let bytes = source.read(path, *size).unwrap().unwrap();
        let (mut header, payload) = PackHeader::decode(&bytes).unwrap();
        let app = header.modules.get_mut("app").unwrap();
        let entry = app
            .entries
            .iter_mut()
            .find(|entry| matches!(entry.data, Some(PackData::Patch { .. })))
            .unwrap();
        let Some(PackData::Patch { base, .. }) = &mut entry.data else {
            unreachable!("found above");
        };
        *base = Blake3Hash::of(b"same");
        let broken = header.encode(payload);
        let broken_path = layout::blob(&Blake3Hash::of(&broken), BlobKind::Pack);
        fs_err::write(
            site.dir.path().join("site").join(broken_path.as_str()),
            &broken,
        )
        .unwrap();
        let problem = check(
            &broken_path,
            &Expected::Pack {
                size: broken.len() as u64,
                blake3: Blake3Hash::of(&broken),
                check: Arc::clone(pack_check),
            },
        );
        assert!(problem.contains("the data of `lib-1."), "{problem}");
    }
}
