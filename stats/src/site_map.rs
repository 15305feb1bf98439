//! What each file of a site is, for a request in a log: a channel's manifest (a
//! poll), or a blob and the releases it belongs to (a release's document, a module's
//! package, file index or copy pack, a delta pack from one release to another).
//!
//! [`SiteMap::build`] is pure, from the manifests and platform release documents;
//! [`SiteMap::load`] reads them from a [`Storage`].

use std::collections::HashMap;

use semver::Version;
use wavecast_schema::{
    Blake3Hash, Blob, ChannelName, Envelope, Manifest, PLATFORM_RELEASE_SIZE_LIMIT,
    PlatformRelease, RelativePath,
};
use wavecast_site::Storage;
use wavecast_site::layout::{self, BlobKind};

use crate::error::{Error, Result};

/// A channel, by its position in [`SiteMap::channels`].
pub type ChannelId = u16;
/// A release, by its position in [`SiteMap::releases`].
pub type ReleaseId = u16;

/// What a requested file is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SiteObject {
    /// `channels/<channel>.json`: a client polling.
    Manifest(ChannelId),
    /// A blob of this size with this role.
    Blob {
        /// Its size in bytes, which a complete download sends.
        size: u64,
        /// What it is for.
        role: Role,
    },
}

/// What a blob is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// A release's platform release document: the first thing an install fetches.
    Document {
        /// The release.
        release: ReleaseId,
        /// How many modules it has: a fresh install downloads each one's package.
        modules: u16,
    },
    /// A module's package: every release listed has the module with this content.
    Package(Vec<ReleaseId>),
    /// A module's file index.
    Index(Vec<ReleaseId>),
    /// A module's copy pack, fetched in ranges.
    Copies(Vec<ReleaseId>),
    /// A delta pack updating `from` to `release`.
    Pack {
        /// The release it installs.
        release: ReleaseId,
        /// The release it updates from.
        from: ReleaseId,
    },
}

impl Role {
    /// The releases a content blob (package, copy pack, pack) installs; empty for a
    /// document or an index, which carry no file content.
    pub fn content_releases(&self) -> &[ReleaseId] {
        match self {
            Self::Package(releases) | Self::Copies(releases) => releases,
            Self::Pack { release, .. } => std::slice::from_ref(release),
            Self::Document { .. } | Self::Index(_) => &[],
        }
    }
}

/// One release: its version and the channels it is live on (none for an earlier
/// release that is only the source of a pack).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseInfo {
    /// The version.
    pub version: Version,
    /// The channels that list it, in [`SiteMap::channels`] order.
    pub channels: Vec<ChannelId>,
}

/// Every file of a site a client requests, by its site path.
#[derive(Debug, Clone, Default)]
pub struct SiteMap {
    /// The channels, in name order.
    pub channels: Vec<ChannelName>,
    /// Every release a manifest or pack names, oldest first.
    pub releases: Vec<ReleaseInfo>,
    objects: HashMap<String, SiteObject>,
    /// Documents the manifests name that were missing or did not match; their
    /// releases' blobs are not recognised.
    pub missing_documents: usize,
}

impl SiteMap {
    /// The map of a site with these channel manifests and documents (by blake3).
    /// Releases absent from `documents` are known by version only.
    pub fn build(manifests: &[Manifest], documents: &HashMap<Blake3Hash, PlatformRelease>) -> Self {
        let mut map = Self::default();
        let mut manifests: Vec<&Manifest> = manifests.iter().collect();
        manifests.sort_by(|a, b| a.channel.cmp(&b.channel));
        let mut versions: Vec<Version> = Vec::new();
        for manifest in &manifests {
            for release in &manifest.releases {
                versions.push(release.version.clone());
                for blob in release.platforms.values() {
                    if let Some(document) = documents.get(&blob.blake3) {
                        versions.extend(document.packs.iter().map(|pack| pack.from.clone()));
                    }
                }
            }
        }
        versions.sort();
        versions.dedup();
        map.releases = versions
            .into_iter()
            .map(|version| ReleaseInfo {
                version,
                channels: Vec::new(),
            })
            .collect();
        for (channel, manifest) in manifests.iter().enumerate() {
            let channel = ChannelId::try_from(channel).unwrap_or(ChannelId::MAX);
            map.channels.push(manifest.channel.clone());
            map.objects.insert(
                layout::channel_manifest(&manifest.channel)
                    .as_str()
                    .to_owned(),
                SiteObject::Manifest(channel),
            );
            for release in &manifest.releases {
                let id = map.release_id(&release.version).unwrap_or_default();
                map.releases[usize::from(id)].channels.push(channel);
                for blob in release.platforms.values() {
                    let Some(document) = documents.get(&blob.blake3) else {
                        map.missing_documents += 1;
                        continue;
                    };
                    map.add_document(id, blob, document);
                }
            }
        }
        map
    }

    fn add_document(&mut self, release: ReleaseId, blob: &Blob, document: &PlatformRelease) {
        let modules = u16::try_from(document.modules.len()).unwrap_or(u16::MAX);
        self.objects.insert(
            layout::blob(&blob.blake3, BlobKind::PlatformRelease)
                .as_str()
                .to_owned(),
            SiteObject::Blob {
                size: blob.size,
                role: Role::Document { release, modules },
            },
        );
        for module in document.modules.values() {
            self.add_shared(
                &module.package,
                BlobKind::of_package(module),
                release,
                Role::Package,
            );
            self.add_shared(
                &Blob {
                    size: module.index.size,
                    blake3: module.index.blake3.clone(),
                },
                BlobKind::FileIndex,
                release,
                Role::Index,
            );
            if let Some(copies) = &module.copies {
                self.add_shared(copies, BlobKind::Copies, release, Role::Copies);
            }
        }
        for pack in &document.packs {
            let Some(from) = self.release_id(&pack.from) else {
                continue;
            };
            self.objects.insert(
                layout::blob(&pack.blake3, BlobKind::Pack)
                    .as_str()
                    .to_owned(),
                SiteObject::Blob {
                    size: pack.size,
                    role: Role::Pack { release, from },
                },
            );
        }
    }

    /// Adds `release` to the blob's releases (a module unchanged across releases has
    /// one package for all of them).
    fn add_shared(
        &mut self,
        blob: &Blob,
        kind: BlobKind,
        release: ReleaseId,
        role: fn(Vec<ReleaseId>) -> Role,
    ) {
        let key = layout::blob(&blob.blake3, kind).as_str().to_owned();
        let entry = self.objects.entry(key).or_insert_with(|| SiteObject::Blob {
            size: blob.size,
            role: role(Vec::new()),
        });
        if let SiteObject::Blob {
            role: Role::Package(releases) | Role::Index(releases) | Role::Copies(releases),
            ..
        } = entry
            && !releases.contains(&release)
        {
            releases.push(release);
            releases.sort_unstable();
        }
    }

    /// The id of the release `version`.
    pub fn release_id(&self, version: &Version) -> Option<ReleaseId> {
        self.releases
            .binary_search_by(|release| release.version.cmp(version))
            .ok()
            .and_then(|index| ReleaseId::try_from(index).ok())
    }

    /// The release with this id.
    pub fn release(&self, id: ReleaseId) -> &ReleaseInfo {
        &self.releases[usize::from(id)]
    }

    /// What the file requested at `path` is: the site's own path is found at the
    /// end of it (`/prefix/blobs/<hash>.pack` is `blobs/<hash>.pack`), so a site
    /// served under a folder or a bucket's prefix is read the same.
    pub fn lookup(&self, path: &str) -> Option<&SiteObject> {
        self.lookup_entry(path).map(|(_, object)| object)
    }

    /// [`SiteMap::lookup`], with the site path as the map holds it (one string per
    /// file, so its address identifies the file).
    pub fn lookup_entry(&self, path: &str) -> Option<(&str, &SiteObject)> {
        self.objects
            .get_key_value(site_path(path)?)
            .map(|(key, object)| (key.as_str(), object))
    }

    /// Reads every channel manifest of the site at `storage` (signatures are not
    /// checked: the map only names files) and the documents their releases name.
    ///
    /// # Errors
    ///
    /// [`Error::Site`] when the storage cannot be read, [`Error::NoChannels`] when
    /// no channel manifest parses.
    pub fn load(storage: &dyn Storage) -> Result<Self> {
        let folder: RelativePath = "channels".parse().expect("`channels` is a valid path");
        let mut manifests = Vec::new();
        for path in storage.list(&folder)? {
            if !path.as_str().ends_with(".json") {
                continue;
            }
            let Some(bytes) = storage.get(&path)? else {
                continue;
            };
            if let Some(manifest) = Envelope::parse(&bytes)
                .ok()
                .and_then(|envelope| Manifest::parse(envelope.manifest.as_bytes()).ok())
            {
                manifests.push(manifest);
            }
        }
        if manifests.is_empty() {
            return Err(Error::NoChannels);
        }
        let mut documents = HashMap::new();
        for blob in manifests
            .iter()
            .flat_map(|manifest| &manifest.releases)
            .flat_map(|release| release.platforms.values())
        {
            if documents.contains_key(&blob.blake3) || blob.size > PLATFORM_RELEASE_SIZE_LIMIT {
                continue;
            }
            let path = layout::blob(&blob.blake3, BlobKind::PlatformRelease);
            let Some(bytes) = storage.get(&path)? else {
                continue;
            };
            if bytes.len() as u64 == blob.size
                && Blake3Hash::of(&bytes) == blob.blake3
                && let Ok(document) = PlatformRelease::parse(&bytes)
            {
                documents.insert(blob.blake3.clone(), document);
            }
        }
        Ok(Self::build(&manifests, &documents))
    }
}

/// The site path at the end of a requested path: from its last `blobs/` or
/// `channels/` folder on.
fn site_path(path: &str) -> Option<&str> {
    let path = path.trim_start_matches('/');
    for (folder, inner) in [("blobs/", "/blobs/"), ("channels/", "/channels/")] {
        if path.starts_with(folder) {
            return Some(path);
        }
        if let Some(at) = path.rfind(inner) {
            return Some(&path[at + 1..]);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn site_paths_are_found_under_prefixes() {
        assert_eq!(site_path("/blobs/ab.pack"), Some("blobs/ab.pack"));
        assert_eq!(
            site_path("bucket/prefix/blobs/ab.pack"),
            Some("blobs/ab.pack")
        );
        assert_eq!(
            site_path("/app/channels/stable.json"),
            Some("channels/stable.json")
        );
        assert_eq!(site_path("/index.html"), None);
        assert_eq!(site_path("/myblobs/ab.pack"), None);
    }
}
