//! The install root's layout, and small file-system helpers shared by the modules
//! that write under it.
//!
//! ```text
//! ROOT/current -> releases/<version>-<id>    relative symlink, switched atomically
//! ROOT/releases/<version>-<id>/...           installed release trees
//! ROOT/.wavecast/config.json                 written by `init`
//! ROOT/.wavecast/state.json                  install id, serials, installed releases
//! ROOT/.wavecast/cache/<blake3>[.zst]        verified packages, patches, file copies
//! ROOT/.wavecast/indexes/<blake3>            file indexes of installed releases
//! ROOT/.wavecast/manifests/<channel>.json    the last verified manifest envelope
//! ROOT/.wavecast/lock                        held while checking or installing
//! ```

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The paths of one install root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallRoot {
    root: PathBuf,
}

impl InstallRoot {
    /// The install root at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The root itself.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// `ROOT/current`, the symlink to the current release.
    pub fn current(&self) -> PathBuf {
        self.root.join("current")
    }

    /// `ROOT/releases`, which holds every installed release tree.
    pub fn releases(&self) -> PathBuf {
        self.root.join("releases")
    }

    /// `ROOT/.wavecast`, the client's own files.
    pub fn meta(&self) -> PathBuf {
        self.root.join(".wavecast")
    }

    /// `ROOT/.wavecast/config.json`.
    pub fn config(&self) -> PathBuf {
        self.meta().join("config.json")
    }

    /// `ROOT/.wavecast/state.json`.
    pub fn state(&self) -> PathBuf {
        self.meta().join("state.json")
    }

    /// `ROOT/.wavecast/cache`, the content-addressed download cache (packages,
    /// patches, file copies), emptied after each install.
    pub fn cache(&self) -> PathBuf {
        self.meta().join("cache")
    }

    /// `ROOT/.wavecast/indexes`, the file indexes of installed releases by blake3, so
    /// updates plan from local data.
    pub fn indexes(&self) -> PathBuf {
        self.meta().join("indexes")
    }

    /// `ROOT/.wavecast/manifests`, the last verified manifest envelope of each
    /// channel, reused when the host answers `304 Not Modified`.
    pub fn manifests(&self) -> PathBuf {
        self.meta().join("manifests")
    }

    /// `ROOT/.wavecast/lock`.
    pub fn lock_file(&self) -> PathBuf {
        self.meta().join("lock")
    }

    /// Takes the root's exclusive lock, without waiting. The lock is released when the
    /// returned file is dropped (or the process dies).
    pub(crate) fn lock(&self) -> Result<std::fs::File> {
        let path = self.lock_file();
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| Error::Lock {
                path: path.clone(),
                source,
            })?;
        match file.try_lock() {
            Ok(()) => Ok(file),
            Err(std::fs::TryLockError::WouldBlock) => Err(Error::Locked { path }),
            Err(std::fs::TryLockError::Error(source)) => Err(Error::Lock { path, source }),
        }
    }
}

/// `count` random bytes as lowercase hex.
pub(crate) fn random_hex(count: usize) -> Result<String> {
    let mut bytes = vec![0u8; count];
    getrandom::fill(&mut bytes).map_err(|source| Error::Random { source })?;
    Ok(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
}

/// Creates `path` and its parents.
pub(crate) fn create_dir_all(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path).map_err(|source| Error::CreateDirectory {
        path: path.to_owned(),
        source,
    })
}

/// Replaces `path` with `bytes` atomically: a temporary file beside it is written,
/// flushed to disk and renamed over it, then the directory is flushed so the rename
/// survives a power cut. Readers see the old content or the new, never a mix.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let write_error = |source| Error::WriteFile {
        path: path.to_owned(),
        source,
    };
    let dir = path.parent().ok_or_else(|| {
        write_error(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the path has no parent",
        ))
    })?;
    let mut temp = tempfile::Builder::new()
        .prefix(".wavecast-")
        .tempfile_in(dir)
        .map_err(write_error)?;
    temp.write_all(bytes).map_err(write_error)?;
    temp.as_file().sync_all().map_err(write_error)?;
    temp.persist(path)
        .map_err(|error| write_error(error.error))?;
    sync_dir(dir).map_err(write_error)
}

/// Writes `value` as pretty JSON to `path` with [`write_atomically`].
pub(crate) fn write_json_atomically<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|error| Error::WriteFile {
        path: path.to_owned(),
        source: error.into(),
    })?;
    bytes.push(b'\n');
    write_atomically(path, &bytes)
}

/// Flushes a directory's entries (renames, new files) to disk.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}
