//! The earlier releases a publish builds on: their platform documents, the file
//! indexes of their modules, and (read only when needed, once each) their copies.
//!
//! A publish reuses an earlier release's record of a module whose content did not
//! change, takes unchanged files' zstd copies from the previous release's copy packs
//! instead of compressing them again, and builds one delta pack from each of the
//! `--patch-depth` newest earlier releases, patching from their files. What is
//! missing from the site or does not match the signed references is skipped: it only
//! costs reuse or packs, never correctness.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use semver::Version;
use wavecast_schema::{
    Blake3Hash, Blob, FileIndex, IndexBlob, Manifest, Module, ModuleName,
    PLATFORM_RELEASE_SIZE_LIMIT, Platform, PlatformRelease,
};
use wavecast_site::Storage;
use wavecast_site::layout::{self, BlobKind};

use crate::copies::LoadedCopies;
use crate::error::Result;

/// One earlier release, as a publish reads it.
#[derive(Debug)]
pub struct Earlier {
    /// Its version.
    pub version: Version,
    /// Its document for the platform being published.
    pub document: PlatformRelease,
    /// The file index of each of its modules that could be read.
    pub indexes: BTreeMap<ModuleName, FileIndex>,
    /// Copies read so far, by module (`None`: not on the site as its document says).
    copies: Mutex<HashMap<ModuleName, Option<Arc<LoadedCopies>>>>,
}

impl Earlier {
    /// Its module `name` with that module's file index, when both are known.
    pub fn module(&self, name: &ModuleName) -> Option<(&Module, &FileIndex)> {
        Some((self.document.modules.get(name)?, self.indexes.get(name)?))
    }

    /// The copies of module `name` (its copy pack, or an image's package), read
    /// from the site on first use; `None` when the site does not hold them as the
    /// document names them.
    ///
    /// # Errors
    ///
    /// Reading the site failed.
    pub fn copies(
        &self,
        storage: &dyn Storage,
        name: &ModuleName,
    ) -> Result<Option<Arc<LoadedCopies>>> {
        let mut loaded = self.copies.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(copies) = loaded.get(name) {
            return Ok(copies.clone());
        }
        let copies = match self.module(name) {
            Some((module, index)) => LoadedCopies::load(storage, module, index)?.map(Arc::new),
            None => None,
        };
        loaded.insert(name.clone(), copies.clone());
        Ok(copies)
    }

    /// Forgets the copies read so far (those still in use stay alive until their
    /// last user is done), so that a publish holds few releases' copies at once.
    pub fn forget_copies(&self) {
        self.copies
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

/// The `count` newest releases of `manifest` older than `version` that have a
/// document for `platform` (or `any`, as a client of that platform would read),
/// newest first, with the indexes of their modules. A release whose document is
/// missing or altered is left out.
///
/// # Errors
///
/// Reading the site failed.
pub fn load(
    storage: &dyn Storage,
    manifest: Option<&Manifest>,
    version: &Version,
    platform: &Platform,
    count: usize,
) -> Result<Vec<Earlier>> {
    let Some(manifest) = manifest else {
        return Ok(Vec::new());
    };
    let mut releases: Vec<_> = manifest
        .releases
        .iter()
        .filter(|release| &release.version < version)
        .filter_map(|release| Some((&release.version, release.for_platform(platform)?)))
        .collect();
    releases.sort_by(|a, b| b.0.cmp(a.0));
    let mut earlier = Vec::new();
    for (version, blob) in releases.into_iter().take(count) {
        let Some(document) =
            read_document(storage, blob)?.filter(|document| &document.version == version)
        else {
            continue;
        };
        let mut indexes = BTreeMap::new();
        for (name, module) in &document.modules {
            if let Some(index) = read_index(storage, &module.index)? {
                indexes.insert(name.clone(), index);
            }
        }
        earlier.push(Earlier {
            version: version.clone(),
            document,
            indexes,
            copies: Mutex::default(),
        });
    }
    Ok(earlier)
}

/// The platform release document `blob` names, or `None` when the site does not hold
/// exactly it or it does not parse.
///
/// # Errors
///
/// Reading the site failed.
pub fn read_document(storage: &dyn Storage, blob: &Blob) -> Result<Option<PlatformRelease>> {
    if blob.size > PLATFORM_RELEASE_SIZE_LIMIT {
        return Ok(None);
    }
    let Some(bytes) = storage.get(&layout::blob(&blob.blake3, BlobKind::PlatformRelease))? else {
        return Ok(None);
    };
    if bytes.len() as u64 != blob.size || Blake3Hash::of(&bytes) != blob.blake3 {
        return Ok(None);
    }
    Ok(PlatformRelease::parse(&bytes).ok())
}

/// The file index `blob` names, or `None` when the site does not hold it or it does
/// not decode to that index.
///
/// # Errors
///
/// Reading the site failed.
pub fn read_index(storage: &dyn Storage, blob: &IndexBlob) -> Result<Option<FileIndex>> {
    let Some(bytes) = storage.get(&layout::blob(&blob.blake3, BlobKind::FileIndex))? else {
        return Ok(None);
    };
    if bytes.len() as u64 != blob.size {
        return Ok(None);
    }
    Ok(FileIndex::decode(&bytes, blob).ok())
}
