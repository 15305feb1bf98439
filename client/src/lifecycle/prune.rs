//! Keeping the last N release trees: after an install or a rollback, the trees
//! beyond the newest N under `ROOT/releases` are deleted, with the file indexes only
//! they used.
//!
//! Which trees stay is decided purely ([`releases_to_keep`]): the current release,
//! the release an unconfirmed current one would roll back to, then the newest
//! releases in installation order that are not marked bad, until N are kept. The
//! state is saved without the others first and their directories deleted after, so a
//! crash in between leaves only directories no record names; the next prune deletes
//! those too (only names of the form `<version>-<12 hex digits>`, never `current`'s
//! target).

use std::collections::BTreeSet;
use std::io;
use std::num::NonZeroU32;

use semver::Version;

use crate::store::cache::prune_indexes;
use crate::store::current::trial_of;
use crate::store::current::{STAGING_PREFIX, read_current, version_from_dir_name};
use crate::store::error::Result;
use crate::store::root::InstallRoot;
use crate::store::root::remove_tree;
use crate::store::state::installed_indexes;

use crate::store::state::{InstalledRelease, State};

/// A release tree a prune deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrunedRelease {
    /// Its version.
    pub version: Version,
    /// Its directory name under `ROOT/releases`.
    pub dir: String,
}

/// The directories of `installed` to keep: every one in `protected` (the current
/// release and its rollback target), then the newest releases in installation order
/// whose version is not in `bad`, until `keep` are kept (more when `protected` alone
/// holds more).
pub(crate) fn releases_to_keep<'a>(
    installed: &'a [InstalledRelease],
    keep: usize,
    protected: &[&'a str],
    bad: &BTreeSet<Version>,
) -> BTreeSet<&'a str> {
    let mut kept: BTreeSet<&str> = protected.iter().copied().collect();
    for release in installed.iter().rev() {
        if kept.len() >= keep {
            break;
        }
        if !bad.contains(&release.version) {
            kept.insert(&release.dir);
        }
    }
    kept
}

/// Deletes the release trees beyond the newest `keep` (see the module docs), then the
/// cached file indexes no remaining release uses. The caller holds the root's lock.
/// Returns what was deleted.
///
/// # Errors
///
/// The errors of reading `current` and of saving the state. Directories that cannot
/// be deleted are not errors: no record names them any more, so the next prune tries
/// again.
pub(crate) fn prune_releases(
    root: &InstallRoot,
    state: &mut State,
    keep: NonZeroU32,
) -> Result<Vec<PrunedRelease>> {
    let current = read_current(root, state)?;
    let mut protected: Vec<&str> = Vec::new();
    if let Some(current) = &current {
        protected.push(&current.dir);
        if let Some(fallback) = trial_of(state, current).and_then(|trial| trial.fallback.as_deref())
        {
            protected.push(fallback);
        }
    }
    if let Some(staged) = &state.staged {
        protected.push(&staged.dir);
    }
    let keep = usize::try_from(keep.get()).unwrap_or(usize::MAX);
    let kept: BTreeSet<String> =
        releases_to_keep(&state.installed, keep, &protected, &state.bad_versions())
            .into_iter()
            .map(str::to_owned)
            .collect();
    let (stay, go): (Vec<InstalledRelease>, Vec<InstalledRelease>) =
        std::mem::take(&mut state.installed)
            .into_iter()
            .partition(|release| kept.contains(&release.dir));
    state.installed = stay;
    if !go.is_empty() {
        state.save(&root.state())?;
    }

    let mut pruned = Vec::new();
    for release in go {
        if remove_release_dir(root, &release.dir) {
            pruned.push(PrunedRelease {
                version: release.version,
                dir: release.dir,
            });
        }
    }
    // Directories a crash left without a record.
    let current_dir = current.as_ref().map(|current| current.dir.as_str());
    for entry in std::fs::read_dir(root.releases())
        .into_iter()
        .flatten()
        .flatten()
    {
        let Ok(dir) = entry.file_name().into_string() else {
            continue;
        };
        let Some(version) = version_from_dir_name(&dir) else {
            continue;
        };
        if Some(dir.as_str()) != current_dir
            && state.installed_in(&dir).is_none()
            && entry.file_type().is_ok_and(|kind| kind.is_dir())
            && remove_release_dir(root, &dir)
        {
            pruned.push(PrunedRelease { version, dir });
        }
    }
    prune_indexes(root, &installed_indexes(state));
    Ok(pruned)
}

/// Deletes `ROOT/releases/<dir>`; whether it is gone now.
///
/// The tree is first renamed to a staging name, which Windows refuses while a
/// program runs from the tree or holds one of its files open: such a tree stays
/// whole, never half deleted under a running app, and a later prune tries again (the
/// directory is no longer recorded, so the loop over unrecorded trees finds it). A
/// renamed tree a kill leaves half deleted is removed by the next run's clean-up of
/// staging trees.
fn remove_release_dir(root: &InstallRoot, dir: &str) -> bool {
    let aside = root
        .releases()
        .join(format!("{STAGING_PREFIX}pruned-{dir}"));
    match std::fs::rename(root.releases().join(dir), &aside) {
        Ok(()) => {
            let _ = remove_tree(&aside);
            true
        }
        Err(error) => error.kind() == io::ErrorKind::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use jiff::Timestamp;
    use wavecast_schema::{Blake3Hash, IndexBlob};

    use super::*;
    use crate::install::commit::switch_current;
    use crate::store::current::CurrentRelease;
    use crate::store::current::start_trial;
    use crate::store::state::InstalledModule;

    fn record(version: &str, dir: &str) -> InstalledRelease {
        InstalledRelease {
            version: version.parse().unwrap(),
            dir: dir.into(),
            installed_at: Timestamp::UNIX_EPOCH,
            modules: BTreeMap::new(),
        }
    }

    /// Releases to keep, protected directories, versions marked bad, the kept
    /// directories.
    type Case = (
        usize,
        &'static [&'static str],
        &'static [&'static str],
        &'static [&'static str],
    );

    #[test]
    fn the_newest_good_releases_are_kept_with_the_current_one_and_its_fallback() {
        let installed: Vec<InstalledRelease> = ["1", "2", "3", "4", "5"]
            .into_iter()
            .map(|n| record(&format!("1.{n}.0"), n))
            .collect();
        let bad = |versions: &[&str]| -> BTreeSet<Version> {
            versions
                .iter()
                .map(|version| version.parse().unwrap())
                .collect()
        };
        let table: [Case; 7] = [
            (2, &["5"], &[], &["4", "5"]),
            (1, &["5"], &[], &["5"]),
            (3, &["5"], &[], &["3", "4", "5"]),
            // After a rollback to an older release, the newest fill the rest.
            (2, &["2"], &[], &["2", "5"]),
            // Bad releases go first.
            (2, &["3"], &["1.4.0", "1.5.0"], &["2", "3"]),
            // An unconfirmed current release keeps its fallback even with N = 1.
            (1, &["5", "1"], &[], &["1", "5"]),
            (9, &["5"], &["1.2.0"], &["1", "3", "4", "5"]),
        ];
        for (row, (keep, protected, marked, expected)) in table.into_iter().enumerate() {
            let kept = releases_to_keep(&installed, keep, protected, &bad(marked));
            let expected: BTreeSet<&str> = expected.iter().copied().collect();
            assert_eq!(kept, expected, "row {row}");
        }
    }

    fn index(name: &str) -> IndexBlob {
        IndexBlob {
            size: 2,
            json_size: 2,
            blake3: Blake3Hash::of(name.as_bytes()),
        }
    }

    #[test]
    fn pruning_updates_the_state_then_deletes_trees_orphans_and_their_indexes() {
        let temp = tempfile::tempdir().unwrap();
        let root = InstallRoot::new(temp.path());
        std::fs::create_dir_all(root.indexes()).unwrap();
        let mut state = State::generate().unwrap();
        let dirs = [
            "1.0.0-000000000000",
            "1.1.0-111111111111",
            "1.2.0-222222222222",
        ];
        for (n, dir) in dirs.iter().enumerate() {
            let mut release = record(&format!("1.{n}.0"), dir);
            let file_index = index(dir);
            std::fs::write(root.indexes().join(file_index.blake3.as_str()), b"{}").unwrap();
            release.modules.insert(
                "app".parse().unwrap(),
                InstalledModule {
                    dest: None,
                    package: Blake3Hash::of(b"package"),
                    index: Some(file_index),
                },
            );
            state.record_install(release);
            std::fs::create_dir_all(root.releases().join(dir).join("bin")).unwrap();
        }
        // A tree a crash left behind, and things wavecast did not make.
        std::fs::create_dir_all(root.releases().join("0.9.0-999999999999/bin")).unwrap();
        std::fs::create_dir_all(root.releases().join("notes")).unwrap();
        std::fs::create_dir_all(root.releases().join(".staging-0123")).unwrap();
        // 1.1.0 is current and on trial, falling back to 1.0.0.
        switch_current(&root, dirs[1]).unwrap();
        let current = |dir: &str, version: &str| CurrentRelease {
            version: version.parse().unwrap(),
            dir: dir.into(),
        };
        start_trial(
            &mut state,
            &current(dirs[1], "1.1.0"),
            Some(&current(dirs[0], "1.0.0")),
            Timestamp::UNIX_EPOCH,
        );

        let pruned = prune_releases(&root, &mut state, NonZeroU32::new(1).unwrap()).unwrap();
        let names: Vec<&str> = pruned.iter().map(|release| release.dir.as_str()).collect();
        assert_eq!(names, [dirs[2], "0.9.0-999999999999"]);
        let mut left: Vec<String> = std::fs::read_dir(root.releases())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, [".staging-0123", dirs[0], dirs[1], "notes"]);
        let saved = State::load(&root.state()).unwrap().unwrap();
        let recorded: Vec<&str> = saved
            .installed
            .iter()
            .map(|release| release.dir.as_str())
            .collect();
        assert_eq!(recorded, [dirs[0], dirs[1]], "the state is saved");
        assert!(!root.indexes().join(index(dirs[2]).blake3.as_str()).exists());
        assert!(root.indexes().join(index(dirs[0]).blake3.as_str()).exists());

        // Once confirmed, N = 1 keeps the current release alone.
        state.trial = None;
        let pruned = prune_releases(&root, &mut state, NonZeroU32::new(1).unwrap()).unwrap();
        assert_eq!(
            pruned,
            [PrunedRelease {
                version: "1.0.0".parse().unwrap(),
                dir: dirs[0].into()
            }]
        );
        assert_eq!(state.installed.len(), 1);
        assert!(root.releases().join(dirs[1]).is_dir());
        assert!(
            prune_releases(&root, &mut state, NonZeroU32::new(1).unwrap())
                .unwrap()
                .is_empty()
        );
    }
}
