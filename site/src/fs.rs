//! A site in a local folder.

use std::fs::DirBuilder;
use std::io::{self, Write};
#[cfg(unix)]
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use jiff::Timestamp;
use wavecast_schema::RelativePath;

use crate::error::{Error, Result};
use crate::storage::Storage;

/// The mode of every file an [`FsStorage`] writes: readable by everyone.
#[cfg(unix)]
const FILE_MODE: u32 = 0o644;

/// The mode of every folder an [`FsStorage`] creates: searchable by everyone.
#[cfg(unix)]
const FOLDER_MODE: u32 = 0o755;

/// A site stored in a local folder. Writes go to a temporary file in the destination
/// directory, are flushed to disk, then renamed into place.
///
/// # Permissions
///
/// A site is public, and the web server that serves the folder usually runs as
/// another user than the publisher (`www-data`, `nobody`): a file it cannot read is a
/// `403 Forbidden` for every client. So files are written `0644` and the folders
/// this creates `0755`, whatever the process umask (a temporary file alone would be
/// `0600`). [`respect_umask`](Self::respect_umask) lets the umask take bits away
/// instead, for a site that must stay private to its owner or group. Folders that
/// already exist, the site's own included, are left as they are.
///
/// # Modification times
///
/// A file that replaces another is given a modification time at least one whole
/// second after the old one's, even when both are written within the same second.
/// Web servers derive their cache validators from the modification time in whole
/// seconds (nginx's `ETag` is the time in seconds and the size; Python's
/// `http.server` compares `If-Modified-Since` to the second), so a channel manifest
/// replaced within the second by one of the same size (serial 41 by serial 42)
/// would keep its validators, and every client that had fetched the older one
/// would be answered `304 Not Modified` until the next change. The time may run
/// ahead of the clock by a second for each replacement within the same second.
#[derive(Debug, Clone)]
pub struct FsStorage {
    root: PathBuf,
    respect_umask: bool,
}

impl FsStorage {
    /// A site rooted at `root`, which is created on the first write if missing, with
    /// world-readable files and folders.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            respect_umask: false,
        }
    }

    /// With `true`, files are `0644` and new folders `0755` less the bits the
    /// process umask clears (with umask `077`: `0600` and `0700`), never more; with
    /// `false`, the default, exactly `0644` and `0755`.
    #[must_use]
    pub fn respect_umask(mut self, respect: bool) -> Self {
        self.respect_umask = respect;
        self
    }

    /// The folder holding the site.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Creates the site folder, and the missing folders above it, as the first write
    /// would: for a caller that puts files of its own into the folder before that.
    pub fn create_folder(&self) -> Result<()> {
        self.create_folders(&self.root)
            .map_err(|source| Error::Write {
                path: self.root.clone(),
                source,
            })
    }

    /// The local path of a site file.
    pub fn local_path(&self, path: &RelativePath) -> PathBuf {
        path.segments()
            .fold(self.root.clone(), |dir, segment| dir.join(segment))
    }

    /// Writes through `fill` into a temporary file beside `path`, syncs it and renames
    /// it over `path`, then syncs the directory so the rename survives a power cut.
    fn write_atomically(
        &self,
        path: &RelativePath,
        fill: impl FnOnce(&mut std::fs::File) -> io::Result<()>,
    ) -> Result<()> {
        let target = self.local_path(path);
        let write_error = |source| Error::Write {
            path: target.clone(),
            source,
        };
        let dir = target.parent().expect("a site path always has a parent");
        self.create_folders(dir).map_err(write_error)?;
        let mut builder = tempfile::Builder::new();
        builder.prefix(".wavecast-");
        // `open` applies the umask to this mode; without `respect_umask` the mode is
        // set again below, which the umask does not touch. Windows has no mode bits:
        // files inherit their folder's access list.
        #[cfg(unix)]
        builder.permissions(std::fs::Permissions::from_mode(FILE_MODE));
        let mut temp = builder.tempfile_in(dir).map_err(write_error)?;
        #[cfg(unix)]
        if !self.respect_umask {
            temp.as_file()
                .set_permissions(std::fs::Permissions::from_mode(FILE_MODE))
                .map_err(write_error)?;
        }
        fill(temp.as_file_mut()).map_err(write_error)?;
        match std::fs::metadata(&target).and_then(|old| old.modified()) {
            Ok(old) => temp
                .as_file()
                .set_modified(replacement_mtime(old, SystemTime::now()))
                .map_err(write_error)?,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(source) => return Err(write_error(source)),
        }
        temp.as_file().sync_all().map_err(write_error)?;
        temp.persist(&target)
            .map_err(|error| write_error(error.error))?;
        sync_folder(dir).map_err(write_error)
    }

    /// Creates `dir` and its missing parents with [`FOLDER_MODE`] (less the umask
    /// with `respect_umask`), leaving existing ones as they are.
    fn create_folders(&self, dir: &Path) -> io::Result<()> {
        if dir.as_os_str().is_empty() || dir.is_dir() {
            return Ok(());
        }
        if let Some(parent) = dir.parent() {
            self.create_folders(parent)?;
        }
        #[cfg_attr(not(unix), allow(unused_mut))]
        let mut builder = DirBuilder::new();
        #[cfg(unix)]
        builder.mode(FOLDER_MODE);
        match builder.create(dir) {
            #[cfg(unix)]
            Ok(()) if !self.respect_umask => {
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(FOLDER_MODE))
            }
            Ok(()) => Ok(()),
            // Another writer created it meanwhile.
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
            Err(error) => Err(error),
        }
    }
}

/// Flushes `dir`'s entries, so that a rename into it survives a power cut. Windows
/// makes a rename durable with the file (NTFS journals its metadata) and cannot open
/// a folder as a file, so there it does nothing.
fn sync_folder(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// The modification time of a file written `now` that replaces one last modified
/// at `old`: `now`, or the start of the second after `old`'s if that is later, so
/// the two never share a second (see [`FsStorage`]).
fn replacement_mtime(old: SystemTime, now: SystemTime) -> SystemTime {
    let old_second = old
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    now.max(SystemTime::UNIX_EPOCH + Duration::from_secs(old_second + 1))
}

impl Storage for FsStorage {
    fn get(&self, path: &RelativePath) -> Result<Option<Vec<u8>>> {
        let local = self.local_path(path);
        match std::fs::read(&local) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(Error::Read {
                path: local,
                source,
            }),
        }
    }

    fn size(&self, path: &RelativePath) -> Result<Option<u64>> {
        let local = self.local_path(path);
        match std::fs::metadata(&local) {
            Ok(metadata) => Ok(Some(metadata.len())),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(Error::Read {
                path: local,
                source,
            }),
        }
    }

    fn list(&self, prefix: &RelativePath) -> Result<Vec<RelativePath>> {
        let local = self.local_path(prefix);
        let read_error = |source| Error::Read {
            path: local.clone(),
            source,
        };
        let entries = match std::fs::read_dir(&local) {
            Ok(entries) => entries,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(read_error(source)),
        };
        let mut paths = Vec::new();
        for entry in entries {
            let entry = entry.map_err(read_error)?;
            if !entry.file_type().map_err(read_error)?.is_file() {
                continue;
            }
            let name = entry.file_name();
            let Some(name) = name.to_str().filter(|name| !name.starts_with(".wavecast-")) else {
                continue;
            };
            // Names that are not valid site paths cannot be site files; skip them.
            if let Ok(path) = format!("{prefix}/{name}").parse() {
                paths.push(path);
            }
        }
        paths.sort();
        Ok(paths)
    }

    fn put_bytes(&self, path: &RelativePath, bytes: &[u8]) -> Result<()> {
        self.write_atomically(path, |file| file.write_all(bytes))
    }

    fn put_file(&self, path: &RelativePath, source: &Path) -> Result<()> {
        let read_error = |error| Error::Read {
            path: source.to_owned(),
            source: error,
        };
        let mut input = std::fs::File::open(source).map_err(read_error)?;
        self.write_atomically(path, |file| io::copy(&mut input, file).map(drop))
    }

    fn delete(&self, path: &RelativePath) -> Result<()> {
        let local = self.local_path(path);
        match std::fs::remove_file(&local) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(source) => {
                return Err(Error::Write {
                    path: local,
                    source,
                });
            }
        }
        let dir = local.parent().expect("a site path always has a parent");
        // So the removal survives a power cut, as a write's rename does.
        std::fs::File::open(dir)
            .and_then(|dir| dir.sync_all())
            .map_err(|source| Error::Write {
                path: dir.to_owned(),
                source,
            })
    }

    fn modified(&self, path: &RelativePath) -> Result<Option<Timestamp>> {
        let local = self.local_path(path);
        let read_error = |source| Error::Read {
            path: local.clone(),
            source,
        };
        let modified = match std::fs::metadata(&local).and_then(|metadata| metadata.modified()) {
            Ok(modified) => modified,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(read_error(source)),
        };
        Timestamp::try_from(modified)
            .map(Some)
            .map_err(|error| read_error(io::Error::other(error)))
    }
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    /// Tells a rerun of a test (see [`under_umasks`]) which umask it runs under.
    const UMASK_VARIABLE: &str = "WAVECAST_SITE_TEST_UMASK";

    /// Runs the test `name` of this binary again in a child process for each of
    /// `umasks`, asserting that it passed there, and returns `None`. In such a child,
    /// returns the umask it runs under, after checking that it is in force: the
    /// test's body runs there, as the umask of the test process is shared by every
    /// test running beside it.
    fn under_umasks(name: &str, umasks: &[u32]) -> Option<u32> {
        if let Ok(umask) = std::env::var(UMASK_VARIABLE) {
            let umask = u32::from_str_radix(&umask, 8).unwrap();
            let dir = tempfile::tempdir().unwrap();
            let probe = dir.path().join("probe");
            std::fs::write(&probe, b"").unwrap();
            assert_eq!(
                mode(&probe),
                octal(0o666 & !umask),
                "the umask is not in force"
            );
            return Some(umask);
        }
        for umask in umasks {
            let umask = format!("{umask:03o}");
            let output = Command::new("sh")
                .args(["-c", r#"umask "$0" && exec "$@""#, &umask])
                .arg(std::env::current_exe().unwrap())
                .args(["--exact", name, "--nocapture", "--test-threads", "1"])
                .env(UMASK_VARIABLE, &umask)
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&output.stdout);
            assert!(
                output.status.success() && stdout.contains("1 passed"),
                "`{name}` under umask {umask}:\n{stdout}\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        None
    }

    /// The permission bits of `path`, in octal.
    fn mode(path: &Path) -> String {
        octal(std::fs::metadata(path).unwrap().permissions().mode() & 0o7777)
    }

    fn octal(mode: u32) -> String {
        format!("{mode:04o}")
    }

    /// Writes a file with each `put` into a fresh site under `dir`, returning the
    /// site folder, the folders it created and the files.
    fn write_site(dir: &Path, storage: &FsStorage) -> (Vec<PathBuf>, Vec<PathBuf>) {
        let source = dir.join("package");
        std::fs::write(&source, b"package").unwrap();
        storage
            .put_bytes(&"channels/stable.json".parse().unwrap(), b"{}")
            .unwrap();
        storage
            .put_file(&"blobs/x.tar.gz".parse().unwrap(), &source)
            .unwrap();
        let root = storage.root();
        (
            vec![root.to_owned(), root.join("channels"), root.join("blobs")],
            vec![
                root.join("channels/stable.json"),
                root.join("blobs/x.tar.gz"),
            ],
        )
    }

    #[test]
    fn files_and_new_folders_are_world_readable_whatever_the_umask() {
        let Some(umask) = under_umasks(
            "fs::tests::files_and_new_folders_are_world_readable_whatever_the_umask",
            &[0o077, 0o027],
        ) else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let (folders, files) = write_site(dir.path(), &FsStorage::new(dir.path().join("site")));
        for folder in &folders {
            assert_eq!(
                mode(folder),
                "0755",
                "{} (umask {umask:03o})",
                folder.display()
            );
        }
        for file in &files {
            assert_eq!(mode(file), "0644", "{} (umask {umask:03o})", file.display());
        }

        let made = dir.path().join("made");
        FsStorage::new(made.join("site")).create_folder().unwrap();
        assert_eq!(mode(&made), "0755");
        assert_eq!(mode(&made.join("site")), "0755");

        // A folder that exists keeps its mode; the owner chose it.
        let private = dir.path().join("private");
        std::fs::create_dir(&private).unwrap();
        FsStorage::new(&private)
            .put_bytes(&"index.html".parse().unwrap(), b"<html>")
            .unwrap();
        assert_eq!(mode(&private), octal(0o777 & !umask));
        assert_eq!(mode(&private.join("index.html")), "0644");
    }

    #[test]
    fn respecting_the_umask_only_takes_bits_away() {
        let Some(umask) = under_umasks(
            "fs::tests::respecting_the_umask_only_takes_bits_away",
            &[0o077, 0o002],
        ) else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let storage = FsStorage::new(dir.path().join("site")).respect_umask(true);
        let (folders, files) = write_site(dir.path(), &storage);
        for folder in &folders {
            assert_eq!(
                mode(folder),
                octal(0o755 & !umask),
                "{} (umask {umask:03o})",
                folder.display()
            );
        }
        for file in &files {
            assert_eq!(
                mode(file),
                octal(0o644 & !umask),
                "{} (umask {umask:03o})",
                file.display()
            );
        }
    }

    #[test]
    fn a_replaced_file_is_dated_in_a_later_second() {
        let dir = tempfile::tempdir().unwrap();
        let storage = FsStorage::new(dir.path());
        let path: RelativePath = "channels/stable.json".parse().unwrap();
        let local = storage.local_path(&path);
        let second = |file: &Path| {
            std::fs::metadata(file)
                .unwrap()
                .modified()
                .unwrap()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_secs()
        };
        storage.put_bytes(&path, b"serial 41").unwrap();
        let mut seconds = vec![second(&local)];
        // Far quicker than a second apart, as a publish and a rollout can be.
        for serial in 42..45 {
            storage
                .put_bytes(&path, format!("serial {serial}").as_bytes())
                .unwrap();
            seconds.push(second(&local));
        }
        assert!(
            seconds.windows(2).all(|pair| pair[1] > pair[0]),
            "{seconds:?}"
        );
        // A new file keeps the time it was written at.
        let fresh = storage.local_path(&"channels/beta.json".parse().unwrap());
        let before = SystemTime::now() - Duration::from_secs(1);
        storage
            .put_bytes(&"channels/beta.json".parse().unwrap(), b"{}")
            .unwrap();
        let written = std::fs::metadata(&fresh).unwrap().modified().unwrap();
        assert!(
            written >= before && written <= SystemTime::now(),
            "{written:?}"
        );
    }

    #[test]
    fn replacement_times_skip_to_the_next_second_only_when_needed() {
        let at = |seconds: f64| SystemTime::UNIX_EPOCH + Duration::from_secs_f64(seconds);
        for (old, now, expected) in [
            // Within the same second: the start of the next one.
            (1000.2, 1000.7, 1001.0),
            // Within the next second already: now.
            (1000.9, 1001.1, 1001.1),
            (1000.0, 1005.5, 1005.5),
            // The old file is dated ahead of the clock (replaced in a burst): after it.
            (1003.0, 1001.5, 1004.0),
        ] {
            assert_eq!(
                replacement_mtime(at(old), at(now)),
                at(expected),
                "old {old}, now {now}"
            );
        }
    }

    #[test]
    fn files_round_trip_and_missing_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let storage = FsStorage::new(dir.path().join("site"));
        let path: RelativePath = "channels/stable.json".parse().unwrap();
        assert_eq!(storage.get(&path).unwrap(), None);
        assert_eq!(storage.size(&path).unwrap(), None);
        storage.put_bytes(&path, b"one").unwrap();
        storage.put_bytes(&path, b"second").unwrap();
        assert_eq!(storage.get(&path).unwrap().as_deref(), Some(&b"second"[..]));
        assert_eq!(storage.size(&path).unwrap(), Some(6));
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("site/channels"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(
            leftovers.len(),
            1,
            "temporary files must not remain: {leftovers:?}"
        );
    }

    #[test]
    fn list_names_the_files_of_one_folder() {
        let dir = tempfile::tempdir().unwrap();
        let storage = FsStorage::new(dir.path().join("site"));
        let channels: RelativePath = "channels".parse().unwrap();
        assert!(
            storage.list(&channels).unwrap().is_empty(),
            "missing folder"
        );
        for path in [
            "channels/stable.json",
            "channels/beta.json",
            "channels/deep/x.json",
        ] {
            storage.put_bytes(&path.parse().unwrap(), b"{}").unwrap();
        }
        std::fs::write(
            dir.path().join("site/channels/.wavecast-abc123"),
            b"partial",
        )
        .unwrap();
        let listed: Vec<String> = storage
            .list(&channels)
            .unwrap()
            .iter()
            .map(|path| path.as_str().to_owned())
            .collect();
        assert_eq!(listed, ["channels/beta.json", "channels/stable.json"]);
    }

    #[test]
    fn files_are_deleted_once_and_dated_by_their_write() {
        let dir = tempfile::tempdir().unwrap();
        let storage = FsStorage::new(dir.path().join("site"));
        let path: RelativePath = "blobs/x.tar.gz".parse().unwrap();
        assert_eq!(storage.modified(&path).unwrap(), None);
        storage.delete(&path).unwrap();

        let before = Timestamp::now() - jiff::SignedDuration::from_secs(1);
        storage.put_bytes(&path, b"package").unwrap();
        let written = storage.modified(&path).unwrap().unwrap();
        assert!(
            written >= before && written <= Timestamp::now(),
            "{written}"
        );
        std::fs::File::options()
            .write(true)
            .open(storage.local_path(&path))
            .unwrap()
            .set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000))
            .unwrap();
        assert_eq!(
            storage.modified(&path).unwrap(),
            Some(Timestamp::from_second(1_000_000_000).unwrap())
        );

        storage.delete(&path).unwrap();
        assert_eq!(storage.get(&path).unwrap(), None);
        assert_eq!(storage.modified(&path).unwrap(), None);
        // Deleting again, as a rerun after an interruption would, is not an error.
        storage.delete(&path).unwrap();
    }

    #[test]
    fn put_file_copies_content() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("package");
        std::fs::write(&source, vec![7u8; 100_000]).unwrap();
        let storage = FsStorage::new(dir.path().join("site"));
        let path: RelativePath = "blobs/x.tar.gz".parse().unwrap();
        storage.put_file(&path, &source).unwrap();
        assert_eq!(storage.get(&path).unwrap().unwrap(), vec![7u8; 100_000]);
    }
}
