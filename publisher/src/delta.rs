//! Which old file each changed file is patched from, and building those patches. The
//! encodings themselves live in [`wavecast_delta`]; delta packs are put together from
//! the results by [`crate::pack`].
//!
//! # Counterparts
//!
//! A file of the new release whose content an earlier release lacks is patched from
//! its *counterparts* in that release ([`Counterparts`]), found by, in turn: the same
//! path; the same path once version numbers are masked ([`version_key`]); the same
//! path once hash suffixes are masked ([`hash_key`], auditwheel's
//! `libfoo-6bb31eeb.so` and `libfoo-56d6093b.so`); the same file name, when only one
//! old file has it (a move). Only when none of these finds one, the old file in the
//! same folder with the same extension and the closest size, within a factor of 2.
//! Every counterpart found is tried, and the smallest patch kept.
//!
//! # Patches
//!
//! Each distinct (base, target) pair is built once, however many packs use it
//! ([`PatchWork`], one job per algorithm of [`ALGORITHMS`] on the publish's work
//! queue): the base comes from the earlier release's copies (decompressed and checked
//! against its blake3), the target from the release folder, and every patch is
//! applied and compared with the target before it counts. The smallest is kept, in
//! the publish's spool.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use wavecast_delta::{ALGORITHMS, MAX_PATCH_INPUT, apply_patch, make_patch};
use wavecast_schema::{Blake3Hash, EntryKind, FileIndex, IndexEntry, PatchAlgorithm, RelativePath};

use crate::copies::{LoadedCopies, Spool, Spooled};
use crate::error::{Error, Result};

/// `path` with every version number masked: each run of digits, with any further
/// `.digits` groups (`\d+(\.\d+)*`), becomes `#`. `lib-1.2.so` and `lib-1.3.so` both
/// give `lib-#.so`; `pkg-0.17.5.data/x` gives `pkg-#.data/x`.
pub fn version_key(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut key = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit() {
            key.push(bytes[i]);
            i += 1;
            continue;
        }
        loop {
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            if i + 1 < bytes.len() && bytes[i] == b'.' && bytes[i + 1].is_ascii_digit() {
                i += 1;
            } else {
                break;
            }
        }
        key.push(b'#');
    }
    // Only ASCII digits and dots were replaced, by an ASCII byte: still UTF-8.
    String::from_utf8(key).expect("masking ASCII digits keeps UTF-8 valid")
}

/// The fewest hex digits of a hash suffix that [`hash_key`] masks: shorter runs are
/// more often words or numbers than hashes.
const MIN_HASH_DIGITS: usize = 8;

/// `path` with every hash suffix masked: in each segment, a `-` followed by at least
/// 8 lowercase hex digits that end the segment or come before a `.` (the extension)
/// becomes `-#`. Build tools name files by content hash this way: auditwheel's
/// `libfoo-6bb31eeb.so` and `libfoo-56d6093b.so.1` give `libfoo-#.so` and
/// `libfoo-#.so.1`.
pub fn hash_key(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut key = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'-' {
            let digits = bytes[i + 1..]
                .iter()
                .take_while(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(*byte))
                .count();
            let end = i + 1 + digits;
            if digits >= MIN_HASH_DIGITS && matches!(bytes.get(end), None | Some(b'.' | b'/')) {
                key.extend_from_slice(b"-#");
                i = end;
                continue;
            }
        }
        key.push(bytes[i]);
        i += 1;
    }
    // Only ASCII hex digits were replaced, by ASCII bytes: still UTF-8.
    String::from_utf8(key).expect("masking ASCII digits keeps UTF-8 valid")
}

/// The folder of `path`, `""` at the top.
fn folder(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(folder, _)| folder)
}

/// The file name of `path`.
fn file_name(path: &str) -> &str {
    path.rsplit_once('/').map_or(path, |(_, name)| name)
}

/// The extension of `path`'s file name, after its last `.` (`""` for none; a leading
/// dot starts a name, not an extension).
fn extension(path: &str) -> &str {
    let name = file_name(path);
    match name.rfind('.') {
        Some(dot) if dot > 0 => &name[dot + 1..],
        _ => "",
    }
}

/// Finds, for files of a new index, their counterparts in an earlier index of the
/// same module (see the [module documentation](self)).
#[derive(Debug)]
pub struct Counterparts<'i> {
    by_path: HashMap<&'i str, &'i IndexEntry>,
    by_version_key: HashMap<String, Vec<&'i IndexEntry>>,
    by_hash_key: HashMap<String, Vec<&'i IndexEntry>>,
    by_name: HashMap<&'i str, Vec<&'i IndexEntry>>,
    by_folder_and_extension: HashMap<(&'i str, &'i str), Vec<&'i IndexEntry>>,
    /// How many files of the new index share each version key, and each hash key: a
    /// masked path shared by several new files says nothing about which is which.
    new_version_keys: HashMap<String, usize>,
    new_hash_keys: HashMap<String, usize>,
}

impl<'i> Counterparts<'i> {
    /// A matcher from the files of `new` to those of `old`.
    pub fn new(new: &FileIndex, old: &'i FileIndex) -> Self {
        let mut matcher = Self {
            by_path: HashMap::new(),
            by_version_key: HashMap::new(),
            by_hash_key: HashMap::new(),
            by_name: HashMap::new(),
            by_folder_and_extension: HashMap::new(),
            new_version_keys: HashMap::new(),
            new_hash_keys: HashMap::new(),
        };
        for entry in old.entries.iter().filter(|entry| is_file(entry)) {
            let path = entry.path.as_str();
            matcher.by_path.insert(path, entry);
            matcher
                .by_version_key
                .entry(version_key(path))
                .or_default()
                .push(entry);
            matcher
                .by_hash_key
                .entry(hash_key(path))
                .or_default()
                .push(entry);
            matcher
                .by_name
                .entry(file_name(path))
                .or_default()
                .push(entry);
            matcher
                .by_folder_and_extension
                .entry((folder(path), extension(path)))
                .or_default()
                .push(entry);
        }
        for entry in new.entries.iter().filter(|entry| is_file(entry)) {
            let path = entry.path.as_str();
            *matcher
                .new_version_keys
                .entry(version_key(path))
                .or_default() += 1;
            *matcher.new_hash_keys.entry(hash_key(path)).or_default() += 1;
        }
        matcher
    }

    /// The old files a patch to the new file `entry` may start from, best first:
    /// the same path, the only old file with the same version-masked path, the only
    /// one with the same hash-masked path, the only one with the same file name; when
    /// none of these exists, the old file of the same folder and extension closest in
    /// size, within a factor of 2.
    pub fn candidates(&self, entry: &IndexEntry) -> Vec<&'i IndexEntry> {
        let path = entry.path.as_str();
        let mut found: Vec<&'i IndexEntry> = Vec::new();
        let masked = |key: String,
                      old: &HashMap<String, Vec<&'i IndexEntry>>,
                      new: &HashMap<String, usize>| {
            if key == path || new.get(&key) != Some(&1) {
                return None;
            }
            match old.get(&key).map(Vec::as_slice) {
                Some([only]) => Some(*only),
                _ => None,
            }
        };
        let named = [
            self.by_path.get(path).copied(),
            masked(
                version_key(path),
                &self.by_version_key,
                &self.new_version_keys,
            ),
            masked(hash_key(path), &self.by_hash_key, &self.new_hash_keys),
            match self.by_name.get(file_name(path)).map(Vec::as_slice) {
                Some([only]) => Some(*only),
                _ => None,
            },
        ];
        for candidate in named.into_iter().flatten() {
            if !found.iter().any(|known| std::ptr::eq(*known, candidate)) {
                found.push(candidate);
            }
        }
        if found.is_empty()
            && let Some((_, size)) = file_content(entry)
        {
            let similar = self
                .by_folder_and_extension
                .get(&(folder(path), extension(path)))
                .into_iter()
                .flatten()
                .filter_map(|old| Some((*old, file_content(old)?.1)))
                .filter(|(_, old_size)| {
                    old_size.saturating_mul(2) >= size && size.saturating_mul(2) >= *old_size
                })
                .min_by_key(|(_, old_size)| old_size.abs_diff(size));
            found.extend(similar.map(|(old, _)| old));
        }
        found
    }
}

fn is_file(entry: &IndexEntry) -> bool {
    matches!(entry.kind, EntryKind::File { .. })
}

fn file_content(entry: &IndexEntry) -> Option<(&Blake3Hash, u64)> {
    match &entry.kind {
        EntryKind::File { blake3, size, .. } => Some((blake3, *size)),
        EntryKind::Dir | EntryKind::Symlink { .. } => None,
    }
}

/// A content of a module's new index that the module's old index lacks, and the old
/// contents a patch to it may start from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The new content.
    pub content: Blake3Hash,
    /// Its size.
    pub size: u64,
    /// The first path that holds it, in the new index.
    pub path: RelativePath,
    /// The contents of its counterparts in the old index (over every path that holds
    /// it), best first, with their sizes.
    pub bases: Vec<(Blake3Hash, u64)>,
}

/// The contents of `new` that `old` (the same module in an earlier release; `None`
/// when the module is new) lacks, in index order, each once with its bases.
pub fn targets(old: Option<&FileIndex>, new: &FileIndex) -> Vec<Target> {
    let old_contents: HashSet<&Blake3Hash> = old
        .map(|old| old.file_hashes().collect())
        .unwrap_or_default();
    let matcher = old.map(|old| Counterparts::new(new, old));
    let mut targets: Vec<Target> = Vec::new();
    let mut by_content: HashMap<&Blake3Hash, usize> = HashMap::new();
    for entry in &new.entries {
        let Some((content, size)) = file_content(entry) else {
            continue;
        };
        if old_contents.contains(content) {
            continue;
        }
        let at = *by_content.entry(content).or_insert_with(|| {
            targets.push(Target {
                content: content.clone(),
                size,
                path: entry.path.clone(),
                bases: Vec::new(),
            });
            targets.len() - 1
        });
        let bases = matcher
            .as_ref()
            .map(|matcher| matcher.candidates(entry))
            .unwrap_or_default();
        for (base, base_size) in bases.into_iter().filter_map(file_content) {
            let known = &mut targets[at].bases;
            if !known.iter().any(|(hash, _)| hash == base) {
                known.push((base.clone(), base_size));
            }
        }
    }
    targets
}

/// A (base, target) pair to build patches for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pair {
    /// The old content.
    pub base: Blake3Hash,
    /// The new content.
    pub target: Blake3Hash,
}

impl Pair {
    /// Whether one side is larger than [`MAX_PATCH_INPUT`]: such pairs are not built.
    pub fn too_large(base_size: u64, target_size: u64) -> bool {
        base_size > MAX_PATCH_INPUT || target_size > MAX_PATCH_INPUT
    }
}

/// The old and the new content of a pair.
type Contents = Arc<(Vec<u8>, Vec<u8>)>;

/// The contents of a pair: where the base comes from until the first job loads both,
/// dropped after the last job (with the earlier copies they came from).
enum Inputs {
    Unloaded(Arc<LoadedCopies>),
    Loaded(Contents),
    /// The base is not in its copies, or does not decode to itself.
    Unavailable,
    Released,
}

/// A patch kept for a pair: the smallest verified one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltPatch {
    /// How it is encoded.
    pub algorithm: PatchAlgorithm,
    /// Where its bytes are in the spool.
    pub spooled: Spooled,
}

/// What the jobs of a pair found, filled in as they finish.
#[derive(Default)]
struct Findings {
    best: Option<(PatchAlgorithm, Vec<u8>)>,
    base_unavailable: bool,
    unverified: usize,
    build_time: Duration,
    error: Option<Error>,
    kept: Option<BuiltPatch>,
}

/// The jobs of one (base, target) pair, one per algorithm of [`ALGORITHMS`], run on
/// the work queue; the last one to finish spools the smallest verified patch.
pub struct PatchWork {
    /// The pair.
    pub pair: Pair,
    /// The base's size.
    pub base_size: u64,
    /// The target's size.
    pub target_size: u64,
    /// A path of the target in its module, for messages.
    pub path: RelativePath,
    /// The target on disk, in the release folder.
    pub local: PathBuf,
    inputs: Mutex<Inputs>,
    pending: AtomicUsize,
    findings: Mutex<Findings>,
}

impl std::fmt::Debug for PatchWork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PatchWork")
            .field("pair", &self.pair)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl PatchWork {
    /// Work for `pair`, whose base comes from `copies` and whose target is the file
    /// `local` (at `path` in its module).
    pub fn new(
        pair: Pair,
        (base_size, target_size): (u64, u64),
        copies: Arc<LoadedCopies>,
        path: RelativePath,
        local: PathBuf,
    ) -> Self {
        Self {
            pair,
            base_size,
            target_size,
            path,
            local,
            inputs: Mutex::new(Inputs::Unloaded(copies)),
            pending: AtomicUsize::new(ALGORITHMS.len()),
            findings: Mutex::default(),
        }
    }

    /// Memory a job of this pair may hold, roughly: both contents, the patch, and
    /// bsdiff's suffix array of the base.
    pub fn weight(&self) -> u64 {
        6 * self.base_size + 3 * self.target_size
    }

    fn findings(&self) -> std::sync::MutexGuard<'_, Findings> {
        self.findings.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Builds and verifies the patch with `algorithm`, loading the contents first if
    /// no other job of this pair has; the last job spools the smallest patch.
    pub fn run(&self, algorithm: PatchAlgorithm, spool: &Spool) {
        match self.inputs() {
            Ok(Some(inputs)) => self.build(algorithm, &inputs),
            Ok(None) => self.findings().base_unavailable = true,
            Err(error) => {
                self.findings().error.get_or_insert(error);
            }
        }
        if self.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            *self.inputs.lock().unwrap_or_else(PoisonError::into_inner) = Inputs::Released;
            let mut findings = self.findings();
            if let Some((algorithm, bytes)) = findings.best.take() {
                match spool.append(&bytes) {
                    Ok(spooled) => findings.kept = Some(BuiltPatch { algorithm, spooled }),
                    Err(error) => {
                        findings.error.get_or_insert(error);
                    }
                }
            }
        }
    }

    fn build(&self, algorithm: PatchAlgorithm, inputs: &Contents) {
        let (old, new) = &**inputs;
        let started = Instant::now();
        let built = make_patch(algorithm, old, new);
        let elapsed = started.elapsed();
        let mut findings = self.findings();
        findings.build_time += elapsed;
        match built {
            Ok(patch) => {
                let rebuilt = apply_patch(algorithm, old, &patch, new.len() as u64);
                if !rebuilt.is_ok_and(|rebuilt| rebuilt == *new) {
                    findings.unverified += 1;
                } else if findings.best.as_ref().is_none_or(|(kept_algorithm, kept)| {
                    (patch.len(), algorithm) < (kept.len(), *kept_algorithm)
                }) {
                    findings.best = Some((algorithm, patch));
                }
            }
            Err(source) => {
                findings.error.get_or_insert(match algorithm {
                    PatchAlgorithm::Zstd => Error::Compress {
                        what: format!("a patch for `{}`", self.path),
                        source,
                    },
                    PatchAlgorithm::Bsdiff | PatchAlgorithm::BsdiffZstd => Error::Bsdiff {
                        path: self.path.to_string(),
                        source,
                    },
                });
            }
        }
    }

    fn inputs(&self) -> Result<Option<Contents>> {
        let mut inputs = self.inputs.lock().unwrap_or_else(PoisonError::into_inner);
        let copies = match &*inputs {
            Inputs::Loaded(loaded) => return Ok(Some(Arc::clone(loaded))),
            Inputs::Unavailable | Inputs::Released => return Ok(None),
            Inputs::Unloaded(copies) => Arc::clone(copies),
        };
        // Marked first, so that an error below leaves the other jobs nothing to retry.
        *inputs = Inputs::Unavailable;
        let Some(old) = copies.content(&self.pair.base) else {
            return Ok(None);
        };
        let new = fs_err::read(&self.local).map_err(|source| Error::Read {
            path: self.local.clone(),
            source,
        })?;
        if new.len() as u64 != self.target_size || Blake3Hash::of(&new) != self.pair.target {
            return Err(Error::FileChanged {
                path: self.local.clone(),
            });
        }
        let loaded = Arc::new((old, new));
        *inputs = Inputs::Loaded(Arc::clone(&loaded));
        Ok(Some(loaded))
    }

    /// The patch kept, once every job has run: `Ok(None)` when no patch could be
    /// built (the base was unavailable, or none verified).
    ///
    /// # Errors
    ///
    /// The first failure to read the target or to encode.
    pub fn take_result(&self) -> Result<Option<BuiltPatch>> {
        let mut findings = self.findings();
        match findings.error.take() {
            Some(error) => Err(error),
            None => Ok(findings.kept),
        }
    }

    /// Adds what this pair's jobs did to `stats`.
    pub fn count(&self, stats: &mut PatchStats) {
        let findings = self.findings();
        stats.pairs += 1;
        stats.unverified += findings.unverified;
        stats.build_time += findings.build_time;
        if findings.base_unavailable {
            stats.bases_missing += 1;
        }
        if let Some(kept) = findings.kept {
            let built = stats.built.entry(kept.algorithm).or_default();
            built.count += 1;
            built.bytes += kept.spooled.length;
        }
    }
}

/// Count and bytes of patches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AlgorithmStats {
    /// Patches.
    pub count: usize,
    /// Their total size.
    pub bytes: u64,
}

/// What patch building did for a publish, over all its packs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PatchStats {
    /// Distinct (base, target) pairs tried.
    pub pairs: usize,
    /// Pairs left out because a file is larger than [`MAX_PATCH_INPUT`].
    pub too_large: usize,
    /// Pairs whose base could not be read from the earlier release's copies.
    pub bases_missing: usize,
    /// Patches dropped because applying them did not rebuild the target (an encoder
    /// bug; another algorithm's patch may still be kept).
    pub unverified: usize,
    /// The smallest verified patch of each pair, per algorithm (a pack uses one only
    /// when it is smaller than the file's copy).
    pub built: BTreeMap<PatchAlgorithm, AlgorithmStats>,
    /// Time spent building and verifying patches, summed over the workers.
    pub build_time: Duration,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use wavecast_schema::FileMode;

    /// Deterministic text that compresses about as well as source code: lines of
    /// pseudo-random words.
    pub(crate) fn text(seed: u64, lines: usize) -> Vec<u8> {
        let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let mut out = Vec::new();
        for line in 0..lines {
            out.extend_from_slice(format!("{line:6}:").as_bytes());
            for _ in 0..8 {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                out.extend_from_slice(format!(" w{:x}", (state >> 52) & 0xfff).as_bytes());
            }
            out.push(b'\n');
        }
        out
    }

    /// `old` with a few edits: a changed byte, an inserted and a removed line.
    pub(crate) fn edited(old: &[u8]) -> Vec<u8> {
        let mut new = old.to_vec();
        new[100] ^= 1;
        let middle = new.len() / 2;
        new.splice(middle..middle, b"an inserted line\n".iter().copied());
        new.drain(new.len() - 300..new.len() - 250);
        new
    }

    /// A file entry of `size` bytes whose content is named by `tag`.
    fn file(path: &str, tag: &str, size: u64) -> IndexEntry {
        IndexEntry {
            path: path.parse().unwrap(),
            kind: EntryKind::File {
                size,
                blake3: Blake3Hash::of(tag.as_bytes()),
                packed_size: 1,
            },
            mode: FileMode::from_permissions(0o644),
        }
    }

    /// The candidates of each new path, from `old` to `new` (each `(path, size)`;
    /// every file's content differs).
    fn candidates(old: &[(&str, u64)], new: &[(&str, u64)]) -> Vec<(String, Vec<String>)> {
        let old = FileIndex::new(
            old.iter()
                .map(|(path, size)| file(path, &format!("old {path}"), *size))
                .collect(),
        );
        let new = FileIndex::new(
            new.iter()
                .map(|(path, size)| file(path, &format!("new {path}"), *size))
                .collect(),
        );
        let matcher = Counterparts::new(&new, &old);
        new.entries
            .iter()
            .map(|entry| {
                let found = matcher
                    .candidates(entry)
                    .iter()
                    .map(|old| old.path.to_string())
                    .collect();
                (entry.path.to_string(), found)
            })
            .collect()
    }

    /// The candidates of the one new file `path` of `size` bytes.
    fn of(old: &[(&str, u64)], path: &str, size: u64) -> Vec<String> {
        candidates(old, &[(path, size)]).remove(0).1
    }

    #[test]
    fn version_numbers_are_masked() {
        assert_eq!(version_key("lib-1.2.so"), "lib-#.so");
        assert_eq!(version_key("lib-1.3.so"), "lib-#.so");
        assert_eq!(version_key("pkg-0.17.5.data/x"), "pkg-#.data/x");
        assert_eq!(version_key("a1b22/v3.x"), "a#b#/v#.x");
        assert_eq!(version_key("no-digits/é.txt"), "no-digits/é.txt");
        assert_eq!(version_key("1."), "#.");
    }

    #[test]
    fn hash_suffixes_before_the_extension_are_masked() {
        assert_eq!(hash_key("libs/libfoo-6bb31eeb.so"), "libs/libfoo-#.so");
        assert_eq!(hash_key("libs/libfoo-56d6093b.so"), "libs/libfoo-#.so");
        assert_eq!(
            hash_key("libgfortran-040039e1.so.5.0.0"),
            "libgfortran-#.so.5.0.0"
        );
        assert_eq!(hash_key("main-0123456789abcdef"), "main-#");
        assert_eq!(hash_key("cache-deadbeef00/é.txt"), "cache-#/é.txt");
        // Near misses: 7 digits, upper case, letters after the digits, no dash.
        for kept in [
            "libfoo-6bb31ee.so",
            "libfoo-6BB31EEB.so",
            "libfoo-6bb31eebx.so",
            "libfoo_6bb31eeb.so",
            "libfoo6bb31eeb.so",
        ] {
            assert_eq!(hash_key(kept), kept);
        }
    }

    #[test]
    fn the_same_path_comes_first() {
        assert_eq!(
            of(&[("bin/app", 100), ("bin/app2", 100)], "bin/app", 100),
            ["bin/app"]
        );
    }

    #[test]
    fn a_version_masked_path_matches_when_it_is_unique_on_both_sides() {
        let old = [("lib/libfoo-1.2.so", 100), ("pkg-0.17.5.data/x", 100)];
        assert_eq!(of(&old, "lib/libfoo-1.3.so", 100), ["lib/libfoo-1.2.so"]);
        assert_eq!(of(&old, "pkg-0.17.6.data/x", 100), ["pkg-0.17.5.data/x"]);
        // Two old files share the masked path (and the sizes keep rule 5 out).
        let two = [("lib/plugin-1.so", 100), ("lib/plugin-2.so", 100)];
        assert!(of(&two, "lib/plugin-3.so", 1000).is_empty());
        // Two new files share it.
        let both = candidates(
            &[("lib/tool-7", 100)],
            &[("lib/tool-8", 1000), ("lib/tool-9", 1000)],
        );
        assert!(both.iter().all(|(_, found)| found.is_empty()), "{both:?}");
    }

    #[test]
    fn a_hash_masked_path_matches_when_it_is_unique_on_both_sides() {
        let old = [("numpy.libs/libgfortran-040039e1.so.5.0.0", 100)];
        assert_eq!(
            of(&old, "numpy.libs/libgfortran-daac5196.so.5.0.0", 100),
            ["numpy.libs/libgfortran-040039e1.so.5.0.0"]
        );
        // Near misses: a 7-digit suffix, two old files with the masked path.
        assert!(
            of(
                &[("libs/libfoo-6bb31ee.so", 100)],
                "libs/libfoo-56d6093.so",
                1000
            )
            .is_empty()
        );
        let two = [
            ("libs/libfoo-6bb31eeb.so", 100),
            ("libs/libfoo-11111111.so", 100),
        ];
        assert!(of(&two, "libs/libfoo-56d6093b.so", 1000).is_empty());
    }

    #[test]
    fn a_file_name_matches_when_one_old_file_has_it() {
        assert_eq!(
            of(&[("src/old/tool.py", 100)], "lib/new/tool.py", 1000),
            ["src/old/tool.py"]
        );
        // Two old files have the name.
        let two = [("a/__init__.py", 100), ("b/__init__.py", 100)];
        assert!(of(&two, "c/__init__.py", 100).is_empty());
    }

    #[test]
    fn else_the_closest_size_in_the_same_folder_with_the_same_extension() {
        let old = [
            ("share/a.dat", 100),
            ("share/b.dat", 150),
            ("share/c.txt", 140),
            ("other/d.dat", 140),
            ("share/.dat", 140),
        ];
        assert_eq!(of(&old, "share/new.dat", 140), ["share/b.dat"]);
        assert_eq!(of(&old, "share/new.dat", 60), ["share/a.dat"]);
        // Beyond a factor of 2 of every candidate; another folder; no extension.
        assert!(of(&old, "share/new.dat", 400).is_empty());
        assert!(of(&old, "share/new.dat", 40).is_empty());
        assert!(of(&old, "elsewhere/new.dat", 140).is_empty());
        assert!(of(&[("bin/git", 100)], "bin/git-new", 120) == ["bin/git"]);
        assert!(of(&[("bin/git.exe", 100)], "bin/git-new", 120).is_empty());
        // Not tried when a name matched.
        assert_eq!(of(&old, "share/a.dat", 150), ["share/a.dat"]);
    }

    #[test]
    fn every_name_rule_adds_its_candidate_once() {
        let old = [
            ("lib/libfoo-1.2.so", 100),
            ("bin/libfoo-1.3.so", 100),
            ("lib/libbar.so", 100),
        ];
        assert_eq!(
            of(&old, "lib/libfoo-1.3.so", 100),
            ["lib/libfoo-1.2.so", "bin/libfoo-1.3.so"]
        );
        assert_eq!(of(&old, "lib/libbar.so", 100), ["lib/libbar.so"]);
    }

    #[test]
    fn targets_are_the_new_contents_once_each_with_their_bases() {
        let old = FileIndex::new(vec![
            file("a", "a1", 10),
            file("b", "b1", 10),
            file("c", "c", 10),
        ]);
        let new = FileIndex::new(vec![
            file("a", "a2", 10),
            file("b", "a2", 10),
            file("c-moved", "c", 10),
            file("e", "e", 1000),
        ]);
        let found = targets(Some(&old), &new);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[0].content, Blake3Hash::of(b"a2"));
        assert_eq!(found[0].path.as_str(), "a");
        let bases: Vec<&Blake3Hash> = found[0].bases.iter().map(|(hash, _)| hash).collect();
        assert_eq!(bases, [&Blake3Hash::of(b"a1"), &Blake3Hash::of(b"b1")]);
        assert_eq!(found[1].content, Blake3Hash::of(b"e"));
        assert!(
            found[1].bases.is_empty(),
            "`e` has no counterpart, not even one of a similar size ({:?})",
            found[1].bases
        );
        let fresh = targets(None, &new);
        assert_eq!(fresh.len(), 3);
        assert!(fresh.iter().all(|target| target.bases.is_empty()));
    }

    #[test]
    fn the_smallest_verified_patch_is_kept_and_a_tampered_one_fails() {
        let old = text(4, 3000);
        let new = edited(&old);
        let work = PatchWork {
            inputs: Mutex::new(Inputs::Loaded(Arc::new((old.clone(), new.clone())))),
            ..PatchWork::new(
                Pair {
                    base: Blake3Hash::of(&old),
                    target: Blake3Hash::of(&new),
                },
                (old.len() as u64, new.len() as u64),
                Arc::new(LoadedCopies::new(Vec::new(), &FileIndex::new(Vec::new())).unwrap()),
                "f".parse().unwrap(),
                PathBuf::new(),
            )
        };
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path()).unwrap();
        for algorithm in ALGORITHMS {
            work.run(algorithm, &spool);
        }
        let mut stats = PatchStats::default();
        work.count(&mut stats);
        assert_eq!(
            (stats.pairs, stats.unverified, stats.bases_missing),
            (1, 0, 0)
        );
        let kept = work.take_result().unwrap().unwrap();
        let mut patch = spool.read(kept.spooled).unwrap();
        for algorithm in ALGORITHMS {
            let other = make_patch(algorithm, &old, &new).unwrap();
            assert!(patch.len() <= other.len(), "{algorithm:?} is smaller");
        }
        let rebuilt = apply_patch(kept.algorithm, &old, &patch, new.len() as u64).unwrap();
        assert_eq!(rebuilt, new);
        let last = patch.len() - 1;
        patch[last] ^= 0x55;
        assert!(
            !apply_patch(kept.algorithm, &old, &patch, new.len() as u64)
                .is_ok_and(|rebuilt| rebuilt == new)
        );
    }

    #[test]
    fn a_base_missing_from_its_copies_builds_nothing() {
        let work = PatchWork::new(
            Pair {
                base: Blake3Hash::of(b"old"),
                target: Blake3Hash::of(b"new"),
            },
            (3, 3),
            Arc::new(LoadedCopies::new(Vec::new(), &FileIndex::new(Vec::new())).unwrap()),
            "f".parse().unwrap(),
            PathBuf::new(),
        );
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path()).unwrap();
        for algorithm in ALGORITHMS {
            work.run(algorithm, &spool);
        }
        assert_eq!(work.take_result().unwrap(), None);
        let mut stats = PatchStats::default();
        work.count(&mut stats);
        assert_eq!(stats.bases_missing, 1);
    }
}
