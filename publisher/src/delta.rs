//! Choosing and building binary patches between releases, and the file copies they
//! fall back to. The encodings themselves live in [`wavecast_delta`].
//!
//! # Patches
//!
//! When a module's file has content that none of the previous K releases of the
//! channel (same platform, same module) contains, its *counterpart* in each of those
//! releases ([`Counterparts`]: the same path, else the only file whose path is the
//! same once version numbers are masked, see [`version_key`]) is a base to patch
//! from. Its content comes from the site's file copy (decompressed and checked against
//! its blake3; no copy, no patch). For every distinct (base, target) pair both
//! encodings are built, each is applied and compared with the target, and the smaller
//! is kept when it is smaller than the target's own copy. Kept patches are stored at
//! `blobs/<patch-blake3>.patch` and listed in the new module's file index.
//!

use std::collections::{BTreeMap, HashMap, HashSet};
#[cfg(test)]
use std::ops::Not;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use wavecast_delta::{ALGORITHMS, apply_patch, decompress_copy};
use wavecast_delta::{MAX_PATCH_INPUT, make_patch};
use wavecast_schema::{
    Blake3Hash, EntryKind, FileIndex, IndexEntry, Patch, PatchAlgorithm, RelativePath,
};
use wavecast_site::Storage;
use wavecast_site::layout::{self, BlobKind};

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

/// Finds, for files of a new index, their counterpart in an earlier index of the
/// same module.
#[derive(Debug)]
pub struct Counterparts<'i> {
    by_path: HashMap<&'i str, &'i IndexEntry>,
    by_key: HashMap<String, Vec<&'i IndexEntry>>,
    /// How many files of the new index share each version key.
    new_keys: HashMap<String, usize>,
}

impl<'i> Counterparts<'i> {
    /// A matcher from the files of `new` to those of `old`.
    pub fn new(new: &FileIndex, old: &'i FileIndex) -> Self {
        let mut by_path = HashMap::new();
        let mut by_key: HashMap<String, Vec<&IndexEntry>> = HashMap::new();
        for entry in old.entries.iter().filter(|entry| is_file(entry)) {
            by_path.insert(entry.path.as_str(), entry);
            by_key
                .entry(version_key(entry.path.as_str()))
                .or_default()
                .push(entry);
        }
        let mut new_keys = HashMap::new();
        for entry in new.entries.iter().filter(|entry| is_file(entry)) {
            *new_keys
                .entry(version_key(entry.path.as_str()))
                .or_default() += 1;
        }
        Self {
            by_path,
            by_key,
            new_keys,
        }
    }

    /// The old file at `path`, else the only old file whose path matches once version
    /// numbers are masked, when `path` is the only new file with that masked path.
    pub fn find(&self, path: &RelativePath) -> Option<&'i IndexEntry> {
        if let Some(entry) = self.by_path.get(path.as_str()) {
            return Some(entry);
        }
        let key = version_key(path.as_str());
        if key == path.as_str() || self.new_keys.get(&key) != Some(&1) {
            return None;
        }
        match self.by_key.get(&key).map(Vec::as_slice) {
            Some([only]) => Some(only),
            _ => None,
        }
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

/// A (base, target) pair to build patches for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The old content.
    pub from: Blake3Hash,
    /// Its size.
    pub from_size: u64,
    /// The new content.
    pub to: Blake3Hash,
    /// Its size.
    pub to_size: u64,
    /// The new file's path in its module (the first, if several have the content).
    pub path: RelativePath,
    /// The new file on disk.
    pub local: PathBuf,
}

/// What a module needs patches for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeltaPlan {
    /// The pairs to build patches for, in index order.
    pub candidates: Vec<Candidate>,
    /// New contents that none of the earlier releases has.
    pub changed: Vec<Blake3Hash>,
    /// Changed contents with no counterpart in any earlier release.
    pub without_counterpart: usize,
    /// Pairs left out because a file is larger than [`MAX_PATCH_INPUT`].
    pub too_large: usize,
    /// The contents of the previous release (the first earlier index).
    pub previous: HashSet<Blake3Hash>,
}

/// Plans the patches of the module indexed by `new`, whose files are under `root`,
/// against `earlier`, the indexes of the same module in the previous releases (newest
/// first; pass none to build no patches).
pub fn plan(new: &FileIndex, root: &Path, earlier: &[FileIndex]) -> DeltaPlan {
    let contained: HashSet<&Blake3Hash> = earlier.iter().flat_map(FileIndex::file_hashes).collect();
    let matchers: Vec<Counterparts<'_>> = earlier
        .iter()
        .map(|old| Counterparts::new(new, old))
        .collect();
    let mut plan = DeltaPlan {
        previous: earlier
            .first()
            .map(|index| index.file_hashes().cloned().collect())
            .unwrap_or_default(),
        ..DeltaPlan::default()
    };
    let mut seen_targets = HashSet::new();
    for entry in &new.entries {
        let Some((to, to_size)) = file_content(entry) else {
            continue;
        };
        if contained.contains(to) || !seen_targets.insert(to) {
            continue;
        }
        plan.changed.push(to.clone());
        let mut bases = HashSet::new();
        for matcher in &matchers {
            let Some((from, from_size)) = matcher.find(&entry.path).and_then(file_content) else {
                continue;
            };
            if from_size > MAX_PATCH_INPUT || to_size > MAX_PATCH_INPUT {
                plan.too_large += 1;
                bases.insert(from);
                continue;
            }
            if bases.insert(from) {
                plan.candidates.push(Candidate {
                    from: from.clone(),
                    from_size,
                    to: to.clone(),
                    to_size,
                    path: entry.path.clone(),
                    local: entry
                        .path
                        .segments()
                        .fold(root.to_owned(), |local, segment| local.join(segment)),
                });
            }
        }
        if bases.is_empty() {
            plan.without_counterpart += 1;
        }
    }
    plan
}

/// The old and the new content of a candidate.
type Contents = Arc<(Vec<u8>, Vec<u8>)>;

/// The contents of a candidate, loaded by whichever of its jobs runs first and
/// dropped after the last.
enum Inputs {
    Unloaded,
    Loaded(Contents),
    /// The base's copy is missing from the site, or does not decode to the base.
    Unavailable,
    Released,
}

/// What one job (one candidate, one algorithm) produced.
#[derive(Debug)]
pub enum Outcome {
    /// A patch that rebuilds the target, and the time it took.
    Built(Vec<u8>, Duration),
    /// The base could not be obtained from the site.
    BaseUnavailable,
    /// The patch did not rebuild the target: dropped.
    Unverified,
    /// Reading or encoding failed.
    Failed(Error),
}

/// A candidate and the outcome of each algorithm, filled in by jobs on the work queue.
pub struct CandidateWork {
    /// The pair.
    pub candidate: Candidate,
    inputs: Mutex<Inputs>,
    pending: AtomicUsize,
    outcomes: Mutex<Vec<(PatchAlgorithm, Outcome)>>,
}

impl std::fmt::Debug for CandidateWork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CandidateWork")
            .field("candidate", &self.candidate)
            .finish_non_exhaustive()
    }
}

impl CandidateWork {
    /// Work for `candidate`, one job per algorithm of [`ALGORITHMS`].
    pub fn new(candidate: Candidate) -> Self {
        Self {
            candidate,
            inputs: Mutex::new(Inputs::Unloaded),
            pending: AtomicUsize::new(ALGORITHMS.len()),
            outcomes: Mutex::new(Vec::new()),
        }
    }

    /// Memory a job of this candidate may hold, roughly: both contents, the patch, and
    /// bsdiff's suffix array of the old content.
    pub fn weight(&self) -> u64 {
        6 * self.candidate.from_size + 3 * self.candidate.to_size
    }

    /// Builds and verifies the patch with `algorithm`, loading the contents first if
    /// no other job of this candidate has.
    pub fn run(&self, algorithm: PatchAlgorithm, storage: &dyn Storage) {
        let outcome = match self.inputs(storage) {
            Ok(Some(inputs)) => {
                let (old, new) = &*inputs;
                let started = Instant::now();
                match make_patch(algorithm, old, new) {
                    Ok(patch) => {
                        let rebuilt = apply_patch(algorithm, old, &patch, new.len() as u64);
                        if rebuilt.is_ok_and(|rebuilt| rebuilt == *new) {
                            Outcome::Built(patch, started.elapsed())
                        } else {
                            Outcome::Unverified
                        }
                    }
                    Err(source) => Outcome::Failed(match algorithm {
                        PatchAlgorithm::Zstd => Error::Compress {
                            what: format!("a patch for `{}`", self.candidate.path),
                            source,
                        },
                        PatchAlgorithm::Bsdiff | PatchAlgorithm::BsdiffZstd => Error::Bsdiff {
                            path: self.candidate.path.to_string(),
                            source,
                        },
                    }),
                }
            }
            Ok(None) => Outcome::BaseUnavailable,
            Err(error) => Outcome::Failed(error),
        };
        self.outcomes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((algorithm, outcome));
        if self.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            *self.inputs.lock().unwrap_or_else(PoisonError::into_inner) = Inputs::Released;
        }
    }

    fn inputs(&self, storage: &dyn Storage) -> Result<Option<Contents>> {
        let mut inputs = self.inputs.lock().unwrap_or_else(PoisonError::into_inner);
        match &*inputs {
            Inputs::Loaded(loaded) => return Ok(Some(Arc::clone(loaded))),
            Inputs::Unavailable | Inputs::Released => return Ok(None),
            Inputs::Unloaded => {}
        }
        // Marked first, so that an error below leaves the other job nothing to retry.
        *inputs = Inputs::Unavailable;
        let candidate = &self.candidate;
        let Some(old) = load_base(storage, &candidate.from, candidate.from_size)? else {
            return Ok(None);
        };
        let new = fs_err::read(&candidate.local).map_err(|source| Error::Read {
            path: candidate.local.clone(),
            source,
        })?;
        if new.len() as u64 != candidate.to_size || Blake3Hash::of(&new) != candidate.to {
            return Err(Error::FileChanged {
                path: candidate.local.clone(),
            });
        }
        let loaded = Arc::new((old, new));
        *inputs = Inputs::Loaded(Arc::clone(&loaded));
        Ok(Some(loaded))
    }

    /// The outcomes, once every job has run.
    pub fn into_outcomes(self) -> Vec<(PatchAlgorithm, Outcome)> {
        self.outcomes
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// The content `hash` of `size` bytes from its file copy on the site, or `None` when
/// the site has no such copy or it does not decode to that content.
///
/// # Errors
///
/// Reading the site failed.
pub fn load_base(storage: &dyn Storage, hash: &Blake3Hash, size: u64) -> Result<Option<Vec<u8>>> {
    let Some(copy) = storage.get(&layout::blob(hash, BlobKind::FileCopy))? else {
        return Ok(None);
    };
    Ok(decompress_copy(&copy, size)
        .ok()
        .filter(|content| content.len() as u64 == size && &Blake3Hash::of(content) == hash))
}

/// A patch chosen for publication, with its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltPatch {
    /// Its entry in the file index.
    pub patch: Patch,
    /// The stored bytes.
    pub bytes: Vec<u8>,
}

/// Count and bytes of the patches kept with one algorithm.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AlgorithmStats {
    /// Patches kept.
    pub count: usize,
    /// Their total size.
    pub bytes: u64,
}

/// What patch building did for one module.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeltaStats {
    /// Files whose content none of the earlier releases has (distinct contents).
    pub changed_files: usize,
    /// Total size of their file copies.
    pub changed_packed_size: u64,
    /// Changed files with no counterpart in any earlier release.
    pub without_counterpart: usize,
    /// (base, target) pairs tried.
    pub candidates: usize,
    /// Pairs left out because a file is larger than [`MAX_PATCH_INPUT`].
    pub too_large: usize,
    /// Pairs skipped because the base's copy is missing from the site.
    pub bases_missing: usize,
    /// Pairs whose best patch was not smaller than the target's copy.
    pub not_smaller: usize,
    /// Patches dropped because applying them did not rebuild the target (an encoder
    /// bug; the other algorithm's patch may still be kept).
    pub unverified: usize,
    /// Patches kept, per algorithm.
    pub kept: BTreeMap<PatchAlgorithm, AlgorithmStats>,
    /// Changed files that have at least one patch.
    pub patched_files: usize,
    /// What a client on the previous release downloads for the changed files: per
    /// changed file, its smallest patch from content of that release, else its copy.
    pub from_previous: u64,
    /// Time spent building and verifying patches, summed over the workers.
    pub build_time: Duration,
}

impl DeltaStats {
    /// Total size of the kept patches.
    pub fn patch_bytes(&self) -> u64 {
        self.kept.values().map(|stats| stats.bytes).sum()
    }

    /// Number of kept patches.
    pub fn patch_count(&self) -> usize {
        self.kept.values().map(|stats| stats.count).sum()
    }
}

/// Picks the patches to publish from the finished `work`: per pair, the smallest
/// verified patch, when smaller than the target's copy (`packed_sizes`).
///
/// # Errors
///
/// The first job that failed to read or encode.
pub fn choose(
    plan: &DeltaPlan,
    work: Vec<CandidateWork>,
    packed_sizes: &HashMap<Blake3Hash, u64>,
) -> Result<(Vec<BuiltPatch>, DeltaStats)> {
    let packed = |hash: &Blake3Hash| packed_sizes.get(hash).copied().unwrap_or(u64::MAX);
    let mut stats = DeltaStats {
        changed_files: plan.changed.len(),
        changed_packed_size: plan.changed.iter().map(packed).fold(0, u64::saturating_add),
        without_counterpart: plan.without_counterpart,
        too_large: plan.too_large,
        candidates: work.len(),
        ..DeltaStats::default()
    };
    let mut chosen = Vec::new();
    let mut patched = HashSet::new();
    let mut from_previous: HashMap<Blake3Hash, u64> = HashMap::new();
    for item in work {
        let candidate = item.candidate.clone();
        let mut best: Option<(PatchAlgorithm, Vec<u8>)> = None;
        let mut unavailable = false;
        let mut outcomes = item.into_outcomes();
        outcomes.sort_by_key(|(algorithm, _)| *algorithm);
        for (algorithm, outcome) in outcomes {
            match outcome {
                Outcome::Built(bytes, time) => {
                    stats.build_time += time;
                    if best
                        .as_ref()
                        .is_none_or(|(_, kept)| bytes.len() < kept.len())
                    {
                        best = Some((algorithm, bytes));
                    }
                }
                Outcome::BaseUnavailable => unavailable = true,
                Outcome::Unverified => stats.unverified += 1,
                Outcome::Failed(error) => return Err(error),
            }
        }
        if unavailable {
            stats.bases_missing += 1;
            continue;
        }
        let Some((algorithm, bytes)) = best else {
            continue;
        };
        let size = bytes.len() as u64;
        if size >= packed(&candidate.to) {
            stats.not_smaller += 1;
            continue;
        }
        let kept = stats.kept.entry(algorithm).or_default();
        kept.count += 1;
        kept.bytes += size;
        patched.insert(candidate.to.clone());
        if plan.previous.contains(&candidate.from) {
            from_previous
                .entry(candidate.to.clone())
                .and_modify(|best| *best = (*best).min(size))
                .or_insert(size);
        }
        chosen.push(BuiltPatch {
            patch: Patch {
                from: candidate.from,
                to: candidate.to,
                algorithm,
                size,
                blake3: Blake3Hash::of(&bytes),
            },
            bytes,
        });
    }
    stats.patched_files = patched.len();
    stats.from_previous = plan
        .changed
        .iter()
        .map(|hash| {
            from_previous
                .get(hash)
                .copied()
                .unwrap_or_else(|| packed(hash))
        })
        .fold(0, u64::saturating_add);
    chosen.sort_by(|a, b| {
        (&a.patch.to, &a.patch.from, a.patch.algorithm).cmp(&(
            &b.patch.to,
            &b.patch.from,
            b.patch.algorithm,
        ))
    });
    Ok((chosen, stats))
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

    fn file(path: &str, content: &[u8]) -> IndexEntry {
        IndexEntry {
            path: path.parse().unwrap(),
            kind: EntryKind::File {
                size: content.len() as u64,
                blake3: Blake3Hash::of(content),
                packed_size: 1,
            },
            mode: FileMode::from_permissions(0o644),
        }
    }

    #[test]
    fn a_tampered_patch_is_caught_by_verification() {
        let old = text(4, 3000);
        let new = edited(&old);
        let mut work = CandidateWork::new(Candidate {
            from: Blake3Hash::of(&old),
            from_size: old.len() as u64,
            to: Blake3Hash::of(&new),
            to_size: new.len() as u64,
            path: "f".parse().unwrap(),
            local: PathBuf::new(),
        });
        work.inputs = Mutex::new(Inputs::Loaded(Arc::new((old.clone(), new.clone()))));
        let site = tempfile::tempdir().unwrap();
        let storage = wavecast_site::FsStorage::new(site.path());
        for algorithm in ALGORITHMS {
            work.run(algorithm, &storage);
        }
        for (algorithm, outcome) in work.into_outcomes() {
            let Outcome::Built(mut patch, _) = outcome else {
                panic!("{algorithm:?}: {outcome:?}");
            };
            let last = patch.len() - 1;
            patch[last] ^= 0x55;
            assert!(
                apply_patch(algorithm, &old, &patch, new.len() as u64)
                    .is_ok_and(|rebuilt| rebuilt == new)
                    .not(),
                "{algorithm:?}"
            );
        }
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
    fn counterparts_match_by_path_then_by_a_unique_version_key() {
        let old = FileIndex::new(vec![
            file("lib-1.2.so", b"lib 1.2"),
            file("pkg-0.17.5.data/x", b"x 0.17.5"),
            file("same", b"same 1"),
            file("plugin-1.so", b"p1"),
            file("plugin-2.so", b"p2"),
            file("tool-7", b"tool"),
        ]);
        let new = FileIndex::new(vec![
            file("lib-1.3.so", b"lib 1.3"),
            file("pkg-0.17.6.data/x", b"x 0.17.6"),
            file("same", b"same 2"),
            file("plugin-3.so", b"p3"),
            file("tool-8", b"tool 8"),
            file("tool-9", b"tool 9"),
            file("fresh", b"new"),
        ]);
        let matcher = Counterparts::new(&new, &old);
        let found = |path: &str| {
            matcher
                .find(&path.parse().unwrap())
                .map(|entry| entry.path.as_str().to_owned())
        };
        assert_eq!(found("lib-1.3.so").as_deref(), Some("lib-1.2.so"));
        assert_eq!(
            found("pkg-0.17.6.data/x").as_deref(),
            Some("pkg-0.17.5.data/x")
        );
        assert_eq!(found("same").as_deref(), Some("same"));
        assert_eq!(found("plugin-3.so"), None, "two old candidates");
        assert_eq!(found("tool-8"), None, "two new files share the key");
        assert_eq!(found("fresh"), None);
    }

    #[test]
    fn plans_cover_changed_contents_once_per_base() {
        let v1 = FileIndex::new(vec![file("a", b"a1"), file("b", b"b1"), file("c", b"c")]);
        let v2 = FileIndex::new(vec![file("a", b"a2"), file("b", b"b1"), file("c", b"c")]);
        let v3 = FileIndex::new(vec![
            file("a", b"a3"),
            file("b", b"b1"),
            file("c-moved", b"c"),
            file("d", b"a3"),
            file("e", b"e"),
        ]);
        let plan = plan(&v3, Path::new("/r"), &[v2.clone(), v1.clone(), v2]);
        let pairs: Vec<(&[u8], Blake3Hash)> = vec![
            (b"a2", Blake3Hash::of(b"a3")),
            (b"a1", Blake3Hash::of(b"a3")),
        ];
        let found: Vec<(Blake3Hash, Blake3Hash)> = plan
            .candidates
            .iter()
            .map(|candidate| (candidate.from.clone(), candidate.to.clone()))
            .collect();
        let expected: Vec<(Blake3Hash, Blake3Hash)> = pairs
            .into_iter()
            .map(|(from, to)| (Blake3Hash::of(from), to))
            .collect();
        assert_eq!(
            found, expected,
            "unchanged and moved content needs no patch"
        );
        assert_eq!(plan.candidates[0].local, Path::new("/r/a"));
        assert_eq!(plan.changed, [Blake3Hash::of(b"a3"), Blake3Hash::of(b"e")]);
        assert_eq!(plan.without_counterpart, 1);
        assert!(plan.previous.contains(&Blake3Hash::of(b"a2")));
    }
}
