//! The exact tree a release installs, and checking a tree against it.
//!
//! A release's tree is the union of its tree modules' file indexes, each under the
//! module's destination. Every way a client can come by that tree (unpacking whole
//! packages, building it from local files, patches and file copies, switching back to
//! a tree kept from before) must end in exactly this tree, so that two clients of one
//! release run the same files whatever path each took, and a package that disagrees
//! with its signed index is caught. [`ExpectedTree`] holds the tree; [`TreeCheck`]
//! compares a tree against it entry by entry (the client's walk of a staging tree,
//! `wavecast verify`'s walk of a package) and names the first difference.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::error::Result;
use crate::file_index::{EntryKind, FileIndex, FileMode};
use crate::ids::{Blake3Hash, LinkTarget, RelativePath};

/// What one path of a release tree must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    /// A directory with these permission bits.
    Dir {
        /// Its permission bits.
        mode: FileMode,
    },
    /// A directory no index lists with a mode: a module's destination, its parents,
    /// or the parent of an entry whose index leaves the parent out. Any mode will do.
    ParentDir,
    /// A regular file.
    File {
        /// Its permission bits.
        mode: FileMode,
        /// Its size in bytes.
        size: u64,
        /// The blake3 of its content.
        blake3: Blake3Hash,
    },
    /// A symbolic link (its own permission bits mean nothing).
    Symlink {
        /// Where it points.
        target: LinkTarget,
    },
}

impl Expected {
    fn describe(&self) -> &'static str {
        match self {
            Self::Dir { .. } | Self::ParentDir => "directory",
            Self::File { .. } => "file",
            Self::Symlink { .. } => "symbolic link",
        }
    }
}

/// Every path of a release tree and what it must be, relative to the tree's root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExpectedTree {
    entries: BTreeMap<RelativePath, Expected>,
}

impl ExpectedTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the entries of a module's `index`, installed at `dest` (the tree's root
    /// when `None`), with the directories leading to them.
    ///
    /// # Errors
    ///
    /// [`crate::Error::InvalidIdentifier`] when a path joined to `dest` is longer than
    /// a relative path may be.
    pub fn add_module(&mut self, dest: Option<&RelativePath>, index: &FileIndex) -> Result<()> {
        if let Some(dest) = dest {
            self.add_parents(dest)?;
            self.entries
                .entry(dest.clone())
                .or_insert(Expected::ParentDir);
        }
        for entry in &index.entries {
            let path = match dest {
                Some(dest) => dest.join(&entry.path)?,
                None => entry.path.clone(),
            };
            self.add_parents(&path)?;
            let expected = match &entry.kind {
                EntryKind::Dir => Expected::Dir { mode: entry.mode },
                EntryKind::File { size, blake3, .. } => Expected::File {
                    mode: entry.mode,
                    size: *size,
                    blake3: blake3.clone(),
                },
                EntryKind::Symlink { target } => Expected::Symlink {
                    target: target.clone(),
                },
            };
            self.entries.insert(path, expected);
        }
        Ok(())
    }

    fn add_parents(&mut self, path: &RelativePath) -> Result<()> {
        for parent in path.ancestors() {
            if !self.entries.contains_key(parent) {
                self.entries.insert(parent.parse()?, Expected::ParentDir);
            }
        }
        Ok(())
    }

    /// What `path` must be, if the tree has it.
    pub fn get(&self, path: &str) -> Option<&Expected> {
        self.entries.get(path)
    }

    /// Every path and what it must be, sorted by path.
    pub fn iter(&self) -> impl Iterator<Item = (&RelativePath, &Expected)> {
        self.entries.iter()
    }

    /// The number of paths.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the tree has no paths at all.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// An entry found in a tree being checked (on disk, or in a package).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found<'a> {
    /// A directory.
    Dir {
        /// Its permission bits; `None` where the file system keeps none (Windows),
        /// and then not compared.
        mode: Option<FileMode>,
    },
    /// A regular file; its content is checked separately (see [`TreeCheck::visit`]).
    File {
        /// Its permission bits, as for [`Found::Dir`].
        mode: Option<FileMode>,
        /// Its size in bytes.
        size: u64,
    },
    /// A symbolic link.
    Symlink {
        /// Where it points.
        target: &'a str,
    },
    /// Anything else (a device, a fifo, a socket, a hard link in a package).
    Other {
        /// What it is, for the message.
        kind: &'static str,
    },
}

impl Found<'_> {
    fn describe(&self) -> &'static str {
        match self {
            Self::Dir { .. } => "directory",
            Self::File { .. } => "file",
            Self::Symlink { .. } => "symbolic link",
            Self::Other { kind } => kind,
        }
    }
}

/// How a tree differs from the [`ExpectedTree`] at one path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{path}` {problem}")]
pub struct TreeMismatch {
    /// The path, relative to the tree's root.
    pub path: String,
    /// What is wrong there.
    pub problem: Mismatch,
}

/// What is wrong at one path of a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    /// The tree has a path the signed file lists do not.
    NotListed,
    /// The tree lacks a path the signed file lists have.
    Missing,
    /// The path appears twice (in a package).
    Duplicate,
    /// The path is another kind of entry than listed.
    Kind {
        /// What the file list says.
        expected: &'static str,
        /// What was found.
        found: &'static str,
    },
    /// Other permission bits than listed.
    Mode {
        /// What the file list says.
        expected: FileMode,
        /// What was found.
        found: FileMode,
    },
    /// Another size than listed.
    Size {
        /// What the file list says.
        expected: u64,
        /// What was found.
        found: u64,
    },
    /// Other content than listed.
    Content {
        /// What the file list says.
        expected: Blake3Hash,
        /// The blake3 of what was found.
        found: Blake3Hash,
    },
    /// A link pointing elsewhere than listed.
    Target {
        /// What the file list says.
        expected: LinkTarget,
        /// Where the link found points.
        found: String,
    },
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotListed => f.write_str("is not in the signed file list"),
            Self::Missing => f.write_str("is missing"),
            Self::Duplicate => f.write_str("appears twice"),
            Self::Kind { expected, found } => {
                write!(f, "is a {found}, but the signed file list has a {expected}")
            }
            Self::Mode { expected, found } => write!(
                f,
                "has mode {found}, but the signed file list says {expected}"
            ),
            Self::Size { expected, found } => write!(
                f,
                "holds {found} bytes, but the signed file list says {expected}"
            ),
            Self::Content { expected, found } => write!(
                f,
                "holds other bytes than the signed file list says: its blake3 is {found}, not {expected}"
            ),
            Self::Target { expected, found } => write!(
                f,
                "points to `{found}`, but the signed file list says `{expected}`"
            ),
        }
    }
}

/// Compares a tree with an [`ExpectedTree`], one entry at a time, in any order.
#[derive(Debug)]
pub struct TreeCheck<'t> {
    tree: &'t ExpectedTree,
    seen: BTreeSet<&'t str>,
}

impl<'t> TreeCheck<'t> {
    /// A check against `tree` that has seen nothing yet.
    pub fn new(tree: &'t ExpectedTree) -> Self {
        Self {
            tree,
            seen: BTreeSet::new(),
        }
    }

    /// Checks the entry found at `path` (relative to the tree's root, `/`-separated).
    ///
    /// For a file whose kind, mode and size match, returns the blake3 its content
    /// must have: the caller compares it with the hash of what it found (or wrote)
    /// and reports a difference with [`Mismatch::Content`].
    ///
    /// # Errors
    ///
    /// The [`TreeMismatch`] at `path`.
    pub fn visit(
        &mut self,
        path: &str,
        found: &Found<'_>,
    ) -> std::result::Result<Option<&'t Blake3Hash>, TreeMismatch> {
        let mismatch = |problem| TreeMismatch {
            path: path.to_owned(),
            problem,
        };
        let Some((listed, expected)) = self.tree.entries.get_key_value(path) else {
            return Err(mismatch(Mismatch::NotListed));
        };
        if !self.seen.insert(listed.as_str()) {
            return Err(mismatch(Mismatch::Duplicate));
        }
        match (expected, found) {
            (Expected::ParentDir, Found::Dir { .. }) => Ok(None),
            (Expected::Dir { mode }, Found::Dir { mode: found }) => {
                check_mode(*mode, *found).map_err(mismatch)?;
                Ok(None)
            }
            (
                Expected::File { mode, size, blake3 },
                Found::File {
                    mode: found_mode,
                    size: found_size,
                },
            ) => {
                check_mode(*mode, *found_mode).map_err(mismatch)?;
                if size != found_size {
                    return Err(mismatch(Mismatch::Size {
                        expected: *size,
                        found: *found_size,
                    }));
                }
                Ok(Some(blake3))
            }
            (Expected::Symlink { target }, Found::Symlink { target: found }) => {
                if target.as_str() == *found {
                    Ok(None)
                } else {
                    Err(mismatch(Mismatch::Target {
                        expected: target.clone(),
                        found: (*found).to_owned(),
                    }))
                }
            }
            (expected, found) => Err(mismatch(Mismatch::Kind {
                expected: expected.describe(),
                found: found.describe(),
            })),
        }
    }

    /// Ends the check: every path of the tree must have been visited, but for the
    /// directories no index lists ([`Expected::ParentDir`]), which the entries inside
    /// them imply (a package need not list them; unpacking makes them).
    ///
    /// # Errors
    ///
    /// [`Mismatch::Missing`] at the first path never visited.
    pub fn finish(self) -> std::result::Result<(), TreeMismatch> {
        match self.tree.entries.iter().find(|(path, expected)| {
            **expected != Expected::ParentDir && !self.seen.contains(path.as_str())
        }) {
            Some((path, _)) => Err(TreeMismatch {
                path: path.to_string(),
                problem: Mismatch::Missing,
            }),
            None => Ok(()),
        }
    }
}

fn check_mode(expected: FileMode, found: Option<FileMode>) -> std::result::Result<(), Mismatch> {
    match found {
        Some(found) if found != expected => Err(Mismatch::Mode { expected, found }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::file_index::IndexEntry;

    fn mode(bits: u32) -> FileMode {
        FileMode::from_permissions(bits)
    }

    fn index() -> FileIndex {
        FileIndex::new(vec![
            IndexEntry {
                path: "lib".parse().unwrap(),
                kind: EntryKind::Dir,
                mode: mode(0o755),
            },
            IndexEntry {
                path: "lib/libfoo.so".parse().unwrap(),
                kind: EntryKind::Symlink {
                    target: "libfoo.so.1".parse().unwrap(),
                },
                mode: mode(0o777),
            },
            IndexEntry {
                path: "lib/libfoo.so.1".parse().unwrap(),
                kind: EntryKind::File {
                    size: 3,
                    blake3: Blake3Hash::of(b"foo"),
                    packed_size: 0,
                },
                mode: mode(0o644),
            },
        ])
    }

    fn tree() -> ExpectedTree {
        let mut tree = ExpectedTree::new();
        tree.add_module(Some(&"opt/app".parse().unwrap()), &index())
            .unwrap();
        tree
    }

    /// Visits the whole tree as it should be, replacing the entry at `path` with
    /// `found`, and returns the first mismatch.
    fn check_with(path: &str, found: Option<Found<'_>>) -> std::result::Result<(), TreeMismatch> {
        let tree = tree();
        let mut check = TreeCheck::new(&tree);
        let right = [
            (
                "opt",
                Found::Dir {
                    mode: Some(mode(0o700)),
                },
            ),
            (
                "opt/app",
                Found::Dir {
                    mode: Some(mode(0o755)),
                },
            ),
            (
                "opt/app/lib",
                Found::Dir {
                    mode: Some(mode(0o755)),
                },
            ),
            (
                "opt/app/lib/libfoo.so",
                Found::Symlink {
                    target: "libfoo.so.1",
                },
            ),
            (
                "opt/app/lib/libfoo.so.1",
                Found::File {
                    mode: Some(mode(0o644)),
                    size: 3,
                },
            ),
        ];
        for (at, entry) in right {
            let entry = if at == path {
                match found {
                    Some(found) => found,
                    None => continue,
                }
            } else {
                entry
            };
            if let Some(blake3) = check.visit(at, &entry)? {
                assert_eq!(blake3, &Blake3Hash::of(b"foo"));
            }
        }
        if !right.iter().any(|(at, _)| *at == path)
            && let Some(found) = found
        {
            check.visit(path, &found)?;
        }
        check.finish()
    }

    #[test]
    fn the_exact_tree_passes_with_parents_of_any_mode_or_left_implied() {
        check_with("", None).unwrap();
        assert_eq!(tree().len(), 5);
        check_with("opt", None).unwrap();
        check_with("opt/app", None).unwrap();
    }

    #[test]
    fn every_difference_is_named_with_its_path() {
        let cases = [
            (
                "opt/app/extra",
                Some(Found::File {
                    mode: Some(mode(0o644)),
                    size: 1,
                }),
                "`opt/app/extra` is not in the signed file list",
            ),
            (
                "opt/app/lib/libfoo.so.1",
                None,
                "`opt/app/lib/libfoo.so.1` is missing",
            ),
            (
                "opt/app/lib/libfoo.so.1",
                Some(Found::File {
                    mode: Some(mode(0o600)),
                    size: 3,
                }),
                "has mode 600, but the signed file list says 644",
            ),
            (
                "opt/app/lib/libfoo.so.1",
                Some(Found::File {
                    mode: Some(mode(0o644)),
                    size: 4,
                }),
                "holds 4 bytes, but the signed file list says 3",
            ),
            (
                "opt/app/lib/libfoo.so",
                Some(Found::Symlink { target: "/etc" }),
                "points to `/etc`, but the signed file list says `libfoo.so.1`",
            ),
            (
                "opt/app/lib",
                Some(Found::Symlink { target: "/tmp" }),
                "`opt/app/lib` is a symbolic link, but the signed file list has a directory",
            ),
            (
                "opt",
                Some(Found::Other { kind: "fifo" }),
                "`opt` is a fifo, but the signed file list has a directory",
            ),
        ];
        for (path, found, message) in cases {
            let error = check_with(path, found).unwrap_err();
            assert!(error.to_string().contains(message), "{path}: {error}");
        }
    }

    #[test]
    fn a_path_visited_twice_is_a_duplicate() {
        let tree = tree();
        let mut check = TreeCheck::new(&tree);
        let dir = Found::Dir {
            mode: Some(mode(0o755)),
        };
        check.visit("opt/app/lib", &dir).unwrap();
        let error = check.visit("opt/app/lib", &dir).unwrap_err();
        assert_eq!(error.problem, Mismatch::Duplicate);
    }
}
