//! Checking a published site end to end: every channel's signature and expiry, and
//! every blob its releases refer to (packages, file indexes, file copies, patches)
//! and the package of every updater build it offers, by size and blake3. A tree
//! module's package must also unpack to exactly the tree its signed file index lists
//! (files with their modes, sizes and hashes, directories, symbolic links with their
//! targets), since clients refuse any other.
//!
//! A site is read through a [`Source`] (a folder or an `http(s)://` base URL). Checking
//! runs in two steps: [`survey`] reads and verifies the channel envelopes and the file
//! indexes, which list every other blob; [`check_blobs`] then streams each of those
//! blobs and checks it. `mirror` copies the same blobs instead of only checking them.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::path::PathBuf;

use jiff::{SignedDuration, Timestamp};
use semver::Version;
use wavecast_schema::{
    Blake3Hash, ChannelName, EntryKind, Envelope, ExpectedTree, FileIndex, FileMode, Found,
    MAX_ROOT_STEPS, Manifest, Mismatch, ModuleKind, Platform, PublicKey, ROOT_SIZE_LIMIT,
    RelativePath, Role, Root, TreeCheck, TreeMismatch,
};
use wavecast_site::layout::{self, BlobKind};

use crate::error::{Error, Result};

/// The most a channel envelope or status page may weigh.
const MAX_DOCUMENT_SIZE: u64 = 64 << 20;
/// A manifest expiring sooner than this gets a warning.
const EXPIRY_WARNING: SignedDuration = SignedDuration::from_hours(7 * 24);

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
        }
    }

    /// The channels to read: `requested` when given; otherwise every
    /// `channels/*.json` of a folder, or `stable` for a URL (which cannot be listed).
    pub fn channels(&self, requested: &[ChannelName]) -> Result<Vec<ChannelName>> {
        if !requested.is_empty() {
            return Ok(requested.to_vec());
        }
        match self {
            Self::Http { .. } => Ok(vec!["stable".parse().expect("`stable` is a valid name")]),
            Self::Folder(root) => {
                let storage = wavecast_site::FsStorage::new(root);
                let prefix: RelativePath = "channels".parse().expect("a valid path");
                let listed = wavecast_site::Storage::list(&storage, &prefix)?;
                Ok(listed
                    .iter()
                    .filter_map(|path| {
                        let name = path.as_str().strip_prefix("channels/")?;
                        name.strip_suffix(".json")?.parse().ok()
                    })
                    .collect())
            }
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
    /// Stored as is: an image's or updater's package, a file index or a patch.
    Exact {
        /// Stored size.
        size: u64,
        /// blake3 of the stored bytes.
        blake3: Blake3Hash,
    },
    /// A tree module's tar.gz: stored as is, and unpacking to exactly each of
    /// `trees` (the file indexes of every module that names this package).
    Package {
        /// Stored size.
        size: u64,
        /// blake3 of the stored bytes.
        blake3: Blake3Hash,
        /// The trees its modules' file indexes list.
        trees: Vec<ExpectedTree>,
    },
    /// A file's zstd copy: `packed_size` stored bytes that decompress to `size` bytes
    /// with hash `blake3`.
    Copy {
        /// Stored (compressed) size.
        packed_size: u64,
        /// The file's size.
        size: u64,
        /// blake3 of the file's content.
        blake3: Blake3Hash,
    },
}

impl Expected {
    /// The size of the stored blob.
    pub fn stored_size(&self) -> u64 {
        match self {
            Self::Exact { size, .. } | Self::Package { size, .. } => *size,
            Self::Copy { packed_size, .. } => *packed_size,
        }
    }
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
    /// Every package, file copy and patch, by site path.
    pub blobs: BTreeMap<RelativePath, Expected>,
    /// Every file index, by site path, with its verified bytes.
    pub indexes: BTreeMap<RelativePath, (Expected, Vec<u8>)>,
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
                    size,
                    blake3,
                    trees,
                }),
                Expected::Package {
                    size: new_size,
                    blake3: new_blake3,
                    trees: new_trees,
                },
            ) if *size == new_size && *blake3 == new_blake3 => {
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

    /// The number and total size of the blobs listed (indexes included).
    pub fn total(&self) -> Count {
        let mut total = Count::default();
        for expected in self.blobs.values() {
            total.add(expected.stored_size());
        }
        for (expected, _) in self.indexes.values() {
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
                        build.package.path.clone(),
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
            for release in releases
                .into_iter()
                .take(selection.newest.unwrap_or(usize::MAX))
            {
                report.selected.push(release.version.clone());
                for (platform, platform_release) in &release.platforms {
                    let wanted = selection.platforms.is_empty()
                        || platform.as_str() == "any"
                        || selection.platforms.contains(platform);
                    if !wanted {
                        continue;
                    }
                    for module in platform_release.modules.values() {
                        let package = &module.package;
                        let index = survey_index(source, &module.file_index, &mut survey)?;
                        let tree =
                            index
                                .filter(|_| module.kind == ModuleKind::Tree)
                                .and_then(|index| {
                                    let mut tree = ExpectedTree::new();
                                    tree.add_module(None, &index).ok().map(|()| tree)
                                });
                        let expected = match tree {
                            Some(tree) => Expected::Package {
                                size: package.size,
                                blake3: package.blake3.clone(),
                                trees: vec![tree],
                            },
                            // An image is its file's copy; a module whose index is
                            // broken (a problem already) is checked by hash alone.
                            None => Expected::Exact {
                                size: package.size,
                                blake3: package.blake3.clone(),
                            },
                        };
                        survey.expect(package.path.clone(), expected);
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

/// Reads and checks one file index and lists the file copies and patches it names.
/// Returns the index, or `None` when it is missing or broken (a problem is recorded).
fn survey_index(
    source: &Source,
    blob: &wavecast_schema::Blob,
    survey: &mut Survey,
) -> Result<Option<FileIndex>> {
    if let Some((_, bytes)) = survey.indexes.get(&blob.path) {
        return Ok(FileIndex::parse(bytes).ok());
    }
    let expected = Expected::Exact {
        size: blob.size,
        blake3: blob.blake3.clone(),
    };
    let Some(bytes) = source.read(&blob.path, blob.size)? else {
        survey.problems.push(Problem::new(&blob.path, "missing"));
        return Ok(None);
    };
    survey.checked.add(bytes.len() as u64);
    if let Err(what) = check_exact(&bytes, blob.size, &blob.blake3) {
        survey.problems.push(Problem::new(&blob.path, what));
        return Ok(None);
    }
    let index = match FileIndex::parse(&bytes) {
        Ok(index) => index,
        Err(error) => {
            survey
                .problems
                .push(Problem::new(&blob.path, error.to_string()));
            return Ok(None);
        }
    };
    for entry in &index.entries {
        if let EntryKind::File {
            size,
            blake3,
            packed_size,
        } = &entry.kind
        {
            let (size, packed_size) = (*size, *packed_size);
            // Indexes from before file copies have none (packed size 0).
            if packed_size > 0 {
                survey.blobs.insert(
                    layout::blob(blake3, BlobKind::FileCopy),
                    Expected::Copy {
                        packed_size,
                        size,
                        blake3: blake3.clone(),
                    },
                );
            }
        }
    }
    for patch in &index.patches {
        survey.blobs.insert(
            layout::blob(&patch.blake3, BlobKind::Patch),
            Expected::Exact {
                size: patch.size,
                blake3: patch.blake3.clone(),
            },
        );
    }
    survey.indexes.insert(blob.path.clone(), (expected, bytes));
    Ok(Some(index))
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
    match *expected {
        Expected::Exact { size, ref blake3 } => {
            let mut tee = Tee::new(&mut reader, sink);
            let copied = io::copy(&mut tee, &mut io::sink());
            if let Some(source) = tee.failure.take() {
                return Err(read_error(source));
            }
            copied.map_err(read_error)?;
            Ok(tee.check(size, blake3))
        }
        Expected::Package {
            size,
            ref blake3,
            ref trees,
        } => {
            let mut tee = Tee::new(&mut reader, sink);
            let unpacked = check_package_trees(&mut tee, trees);
            // The rest of the stream (the gzip trailer, padding) counts for the hash. A
            // failure of the source itself, met by the tar reader or here, is an
            // error, not a problem of the blob.
            let drained = io::copy(&mut tee, &mut io::sink());
            if let Some(source) = tee.failure.take() {
                return Err(read_error(source));
            }
            drained.map_err(read_error)?;
            // A wrong hash explains any tree problem; report it first.
            Ok(tee
                .check(size, blake3)
                .and_then(|count| unpacked.map(|()| count)))
        }
        Expected::Copy {
            packed_size,
            size,
            ref blake3,
        } => {
            let mut packed = Vec::new();
            reader.read_to_end(&mut packed).map_err(read_error)?;
            if packed.len() as u64 != packed_size {
                return Ok(Err(size_problem(packed.len() as u64, packed_size)));
            }
            let content = match wavecast_delta::decompress_copy(&packed, size) {
                Ok(content) => content,
                Err(error) => return Ok(Err(format!("does not decompress: {error}"))),
            };
            if content.len() as u64 != size {
                return Ok(Err(format!(
                    "decompresses to {} bytes instead of {size}",
                    content.len()
                )));
            }
            if Blake3Hash::of(&content) != *blake3 {
                return Ok(Err(format!(
                    "decompresses to content whose blake3 is not {blake3}"
                )));
            }
            sink.write_all(&packed).map_err(read_error)?;
            Ok(Ok(packed_size))
        }
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

/// Reads a tar.gz and checks that it holds exactly each of `trees`: the entries the
/// file index lists, no others, each with its kind, mode, size, content or link
/// target. A problem in words when it does not (or is no tar.gz at all).
fn check_package_trees(
    reader: &mut dyn Read,
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
    let decoder = flate2::read::GzDecoder::new(reader).take(limit);
    let mut archive = tar::Archive::new(decoder);
    let unreadable = |error: io::Error| format!("is not a readable tar.gz: {error}");
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
                mode,
                size: entry.size(),
            },
            tar::EntryType::Directory => Found::Dir { mode },
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
            Source::Folder(_) => panic!("a URL is not a folder"),
        }
        assert!(Source::parse("s3://bucket/site").is_err());
    }

    #[test]
    fn exact_blobs_are_checked_by_size_and_hash() {
        let dir = tempfile::tempdir().unwrap();
        fs_err::create_dir_all(dir.path().join("blobs")).unwrap();
        fs_err::write(dir.path().join("blobs/a.patch"), b"hello").unwrap();
        let source = Source::Folder(dir.path().to_owned());
        let path: RelativePath = "blobs/a.patch".parse().unwrap();
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
        let missing: RelativePath = "blobs/b.patch".parse().unwrap();
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
            br#"{"format":1,"entries":[
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
        check_package_trees(&mut linked_package("libfoo.so.1").as_slice(), &trees).unwrap();
        let problem =
            check_package_trees(&mut linked_package("/etc/passwd").as_slice(), &trees).unwrap_err();
        assert!(
            problem.contains("`lib/libfoo.so` points to `/etc/passwd`"),
            "{problem}"
        );
        let problem = check_package_trees(&mut &b"not a package"[..], &trees).unwrap_err();
        assert!(problem.starts_with("is not a readable tar.gz"), "{problem}");
    }
}
