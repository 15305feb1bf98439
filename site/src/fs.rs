//! A site in a local folder.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use wavecast_schema::RelativePath;

use crate::error::{Error, Result};
use crate::storage::Storage;

/// A site stored in a local folder. Writes go to a temporary file in the destination
/// directory, are flushed to disk, then renamed into place.
#[derive(Debug, Clone)]
pub struct FsStorage {
    root: PathBuf,
}

impl FsStorage {
    /// A site rooted at `root`, which is created on the first write if missing.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The folder holding the site.
    pub fn root(&self) -> &Path {
        &self.root
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
        fs_err::create_dir_all(dir).map_err(write_error)?;
        let mut temp = tempfile::Builder::new()
            .prefix(".wavecast-")
            .tempfile_in(dir)
            .map_err(write_error)?;
        fill(temp.as_file_mut()).map_err(write_error)?;
        temp.as_file().sync_all().map_err(write_error)?;
        temp.persist(&target)
            .map_err(|error| write_error(error.error))?;
        std::fs::File::open(dir)
            .and_then(|dir| dir.sync_all())
            .map_err(write_error)
    }
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
