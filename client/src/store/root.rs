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
//! ROOT/.wavecast/journal.json                the install in progress, if any
//! ROOT/.wavecast/shared/trial.json           the release on trial, which the root's
//!                                            group may write too (`confirm`, `launched`)
//! ```
//!
//! Files are written with the group access of their directory: in a directory with
//! the setgid bit (a root shared with a group, as `access` sets up), a new file
//! inherits the directory's group and gets the group read and write bits the
//! directory has; elsewhere files stay private to the owner. So every writer, the
//! owner as much as a member of the group, keeps the modes right without knowing the
//! group.

use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::store::error::{Error, Result};

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

    /// `ROOT/.wavecast/journal.json`, the install in progress: present only while an
    /// install runs, or after one was killed.
    pub fn journal(&self) -> PathBuf {
        self.meta().join("journal.json")
    }

    /// `ROOT/.wavecast/slots.json`, which slot holds which image and which is active.
    pub fn slots_record(&self) -> PathBuf {
        self.meta().join("slots.json")
    }

    /// `ROOT/.wavecast/shared`, the one directory the root's group may write in (see
    /// [`Config::group`](crate::Config::group)): it holds only what `confirm` and
    /// `launched` change.
    pub fn shared(&self) -> PathBuf {
        self.meta().join("shared")
    }

    /// `ROOT/.wavecast/shared/trial.json`, the release on trial.
    pub fn trial(&self) -> PathBuf {
        self.shared().join("trial.json")
    }

    /// Whether this process may write in `ROOT/.wavecast`, as the root's owner does:
    /// the kernel's answer for this process's effective ids (modes, ACLs, a read-only
    /// mount). Only such a run may install, roll back or finish an interrupted
    /// install; a member of the root's group may only write in
    /// [`shared`](Self::shared).
    ///
    /// # Errors
    ///
    /// Why not: `EACCES`, `EROFS`…
    pub(crate) fn writable(&self) -> io::Result<()> {
        crate::platform::writable(&self.meta())
    }

    /// Takes the root's exclusive lock, polling for up to `wait` while another
    /// process holds it, and writes this process's id into the lock file so that a
    /// run refused the lock can name the holder. The lock is released when the
    /// returned [`RootLock`] is dropped, or when the process dies however it dies:
    /// the kernel drops a dead process's `flock`, so a stale lock file never blocks.
    ///
    /// # Errors
    ///
    /// [`Error::Locked`] when another process still holds it after `wait`;
    /// [`Error::Lock`] when the lock file cannot be opened or locked.
    pub(crate) fn lock(&self, wait: Duration) -> Result<RootLock> {
        let path = self.lock_file();
        let lock_error = |source| Error::Lock {
            path: path.clone(),
            source,
        };
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(lock_error)?;
        // Everyone who may confirm takes this lock: in a shared root, the group too.
        // Only its owner may change its mode: set it only when it differs.
        if group_bits(&self.meta()).map_err(lock_error)?.is_some() {
            let mode = 0o660;
            let metadata = file.metadata().map_err(lock_error)?;
            if crate::platform::mode_of(&metadata).is_some_and(|found| found.bits() != mode) {
                crate::platform::set_file_mode(&file, mode).map_err(lock_error)?;
            }
        }
        let started = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) => {
                    let waited = started.elapsed();
                    if waited >= wait {
                        return Err(Error::Locked {
                            holder: lock_holder(&mut file),
                            path: path.clone(),
                            waited: wait,
                        });
                    }
                    std::thread::sleep(LOCK_POLL.min(wait - waited));
                }
                Err(std::fs::TryLockError::Error(source)) => return Err(lock_error(source)),
            }
        }
        // Best effort: the id only names the holder in another run's error, and a full
        // disk must not stop the run that would free it.
        let _ = file
            .set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| writeln!(file, "{}", std::process::id()));
        Ok(RootLock(file))
    }
}

/// The root's lock, held until dropped.
///
/// Dropping it unlocks the file before closing it. Closing alone would not do: a
/// child process another thread is starting holds a copy of every descriptor until
/// it executes its program, and the lock lasts as long as any copy is open.
#[derive(Debug)]
#[must_use = "the lock is released when dropped"]
pub(crate) struct RootLock(std::fs::File);

impl Drop for RootLock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

/// How often a run waiting for the lock tries again.
const LOCK_POLL: Duration = Duration::from_millis(100);

/// The process id the lock's holder wrote into the lock file; `None` when it has not
/// written it yet or the file cannot be read.
fn lock_holder(file: &mut std::fs::File) -> Option<u32> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
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

/// The prefix of the temporary files [`write_atomically`] writes beside its target.
pub(crate) const ATOMIC_TEMP_PREFIX: &str = ".wavecast-";

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
        .prefix(ATOMIC_TEMP_PREFIX)
        .tempfile_in(dir)
        .map_err(write_error)?;
    // The rename replaces the inode: the new file must carry the modes itself. Its
    // group came from the setgid directory; the bits are set whatever the umask.
    if let Some(bits) = group_bits(dir).map_err(write_error)? {
        crate::platform::set_file_mode(temp.as_file(), 0o600 | (bits & 0o060))
            .map_err(write_error)?;
    }
    temp.write_all(bytes).map_err(write_error)?;
    temp.as_file().sync_all().map_err(write_error)?;
    temp.persist(path)
        .map_err(|error| write_error(error.error))?;
    sync_dir(dir).map_err(write_error)
}

/// The set-group-ID bit of a mode.
const SETGID: u32 = 0o2000;

/// The group permission bits (`0o070` at most) that files in `dir` share with its
/// group: `None` unless `dir` has the setgid bit, which marks a directory shared with
/// a group (see the module docs).
/// Always `None` on Windows, which has no modes (a shared root is Unix only).
pub(crate) fn group_bits(dir: &Path) -> io::Result<Option<u32>> {
    let metadata = std::fs::metadata(dir)?;
    Ok(crate::platform::raw_mode(&metadata)
        .filter(|mode| mode & SETGID != 0)
        .map(|mode| mode & 0o070))
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
    crate::platform::sync_dir(dir)
}

/// Removes a file, a symlink (not its target) or a whole directory tree, making
/// read-only directories writable first.
pub(crate) fn remove_tree(path: &Path) -> io::Result<()> {
    let metadata = std::fs::symlink_metadata(path)?;
    if !metadata.is_dir() {
        return crate::platform::remove_link(path);
    }
    crate::platform::set_mode(path, 0o700)?;
    for entry in std::fs::read_dir(path)? {
        remove_tree(&entry?.path())?;
    }
    std::fs::remove_dir(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_is_refused_naming_the_holder_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let root = InstallRoot::new(dir.path());
        create_dir_all(&root.meta()).unwrap();
        let held = root.lock(Duration::ZERO).unwrap();
        let text = std::fs::read_to_string(root.lock_file()).unwrap();
        assert_eq!(text, format!("{}\n", std::process::id()));

        let error = root.lock(Duration::ZERO).unwrap_err();
        let Error::Locked {
            path,
            holder,
            waited,
        } = &error
        else {
            panic!("{error}");
        };
        assert_eq!(path, &root.lock_file());
        assert_eq!(*holder, Some(std::process::id()));
        assert_eq!(*waited, Duration::ZERO);
        assert_eq!(
            error.to_string(),
            format!(
                "another wavecast-update (process {}) is working on this install root: `{}` is locked",
                std::process::id(),
                root.lock_file().display()
            )
        );

        let started = Instant::now();
        let error = root.lock(Duration::from_millis(300)).unwrap_err();
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(
            error.to_string().ends_with("is locked (waited 300ms)"),
            "{error}"
        );

        drop(held);
        drop(root.lock(Duration::ZERO).unwrap());
    }

    #[test]
    fn a_waiting_run_gets_the_lock_once_the_holder_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let root = InstallRoot::new(dir.path());
        create_dir_all(&root.meta()).unwrap();
        let held = root.lock(Duration::ZERO).unwrap();
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            drop(held);
        });
        let started = Instant::now();
        drop(root.lock(Duration::from_secs(10)).unwrap());
        assert!(started.elapsed() < Duration::from_secs(5));
        releaser.join().unwrap();
    }

    /// A copy of the lock's descriptor, as a child being started by another thread
    /// holds until it executes its program, does not keep the lock once dropped.
    #[test]
    fn a_dropped_lock_is_free_while_a_copy_of_its_descriptor_is_open() {
        let dir = tempfile::tempdir().unwrap();
        let root = InstallRoot::new(dir.path());
        create_dir_all(&root.meta()).unwrap();
        let held = root.lock(Duration::ZERO).unwrap();
        let copy = held.0.try_clone().unwrap();
        drop(held);
        drop(root.lock(Duration::ZERO).unwrap());
        drop(copy);
    }
}
