//! Emptying the download cache, `ROOT/.wavecast/cache/`, and the index cache beside
//! it, `ROOT/.wavecast/indexes/`, once an install no longer needs them. Their layout
//! is [`InstallRoot`]'s; filling them is the install layer's work.

use std::collections::BTreeSet;
use std::path::Path;

use wavecast_schema::Blake3Hash;

use crate::store::root::InstallRoot;

/// Empties the download cache of `root` (packages, patches, file copies and partial
/// downloads all go) and removes the cached file indexes not in `keep`. Returns the
/// bytes freed.
///
/// Best effort: an entry that cannot be removed stays (and is not counted); the next
/// prune tries again.
pub(crate) fn prune(root: &InstallRoot, keep: &BTreeSet<&Blake3Hash>) -> u64 {
    prune_downloads(root) + prune_indexes(root, keep)
}

/// Empties the download cache of `root`. Returns the bytes freed.
///
/// An install calls it once its tree is built and checked, before flushing that
/// tree to disk: a package just downloaded is still in the page cache, and removing
/// it then spares the flush writing it (a fresh install's package is a third of
/// what it writes). Best effort, as [`prune`].
pub(crate) fn prune_downloads(root: &InstallRoot) -> u64 {
    std::fs::read_dir(root.cache())
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| remove_counting(&entry.path()))
        .sum()
}

/// Removes the cached file indexes not in `keep` (after releases were pruned, the
/// indexes only they used). Returns the bytes freed; files that cannot be removed
/// are left for the next prune.
pub(crate) fn prune_indexes(root: &InstallRoot, keep: &BTreeSet<&Blake3Hash>) -> u64 {
    let kept: BTreeSet<&str> = keep.iter().map(|hash| hash.as_str()).collect();
    std::fs::read_dir(root.indexes())
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| !kept.contains(entry.file_name().to_string_lossy().as_ref()))
        .map(|entry| remove_counting(&entry.path()))
        .sum()
}

/// Removes the regular file at `path`; its size when it was removed, else 0.
fn remove_counting(path: &Path) -> u64 {
    match std::fs::symlink_metadata(path) {
        Ok(metadata) if metadata.is_file() && std::fs::remove_file(path).is_ok() => metadata.len(),
        _ => 0,
    }
}
