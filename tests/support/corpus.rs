//! The corpus of real consecutive releases (`../shared/corpus/fetch.sh`): typescript and
//! esbuild from npm, and Debian's `git` package with its symbolic links.
//!
//! It lives in `WAVECAST_CORPUS`, by default `corpus/` beside the workspace, and is
//! fetched there on first use (seconds; later runs reuse the downloads). Tests that use
//! it run in one process with others, so the fetch happens once, under a lock.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// One pair of consecutive releases.
#[derive(Debug, Clone)]
pub struct Pair {
    /// The corpus's name for it (`typescript`, `esbuild-linux-x64`, `git`).
    pub name: String,
    /// The older version.
    pub old: String,
    /// The newer version.
    pub new: String,
    /// The older release's tree.
    pub old_dir: PathBuf,
    /// The newer release's tree.
    pub new_dir: PathBuf,
}

/// The corpus folder, fetched if it is not there yet.
pub fn dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let dir = std::env::var_os("WAVECAST_CORPUS")
            .map_or_else(|| workspace.join("../corpus"), PathBuf::from);
        if !dir.join("pairs.tsv").is_file() {
            let fetch = workspace.join("../shared/corpus/fetch.sh");
            eprintln!("fetching the corpus into {}", dir.display());
            let status = Command::new("bash")
                .arg(&fetch)
                .arg(&dir)
                .status()
                .unwrap_or_else(|error| panic!("cannot run {}: {error}", fetch.display()));
            assert!(status.success(), "{} failed: {status}", fetch.display());
        }
        dir
    })
}

/// Every pair of the corpus, in the order `pairs.tsv` lists them.
pub fn pairs() -> Vec<Pair> {
    let dir = dir();
    let listed = std::fs::read_to_string(dir.join("pairs.tsv")).unwrap();
    listed
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').map(str::trim).collect();
            let [name, old, new] = fields[..] else {
                panic!("odd line in pairs.tsv: {line:?}");
            };
            let release = dir.join("release").join(name);
            Pair {
                name: name.to_owned(),
                old: old.to_owned(),
                new: new.to_owned(),
                old_dir: release.join(old),
                new_dir: release.join(new),
            }
        })
        .collect()
}

/// The pair called `name`.
pub fn pair(name: &str) -> Pair {
    pairs()
        .into_iter()
        .find(|pair| pair.name == name)
        .unwrap_or_else(|| panic!("the corpus has no pair `{name}`"))
}
