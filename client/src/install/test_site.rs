//! A format-2 site in memory for the client's unit tests: module packages, compressed
//! file indexes, copy packs, platform documents and delta packs, served by a
//! [`MapTransport`], built the way the publisher builds them (from the schema's own
//! functions), so the client is tested against what it will meet.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use wavecast_schema::{
    Blake3Hash, Blob, EntryKind, FileIndex, FileMode, IndexEntry, Module, ModuleDelta, ModuleKind,
    ModuleName, PackData, PackHeader, PackRef, PackageFormat, PatchAlgorithm, PlatformRelease,
    RelativePath,
};
use wavecast_site::layout::{self, BlobKind};

use crate::install::fetch::tests::MapTransport;
use crate::install::patch::tests::file_copy;
use crate::install::unpack::tests::{Raw, package};
use crate::net::url::BaseUrl;

/// A file of a module: path, content, mode.
pub(crate) type Spec<'a> = (&'a str, &'a [u8], u32);

/// A site at `https://example.com/site/` in memory.
pub(crate) struct TestSite {
    pub(crate) transport: MapTransport,
    pub(crate) base: BaseUrl,
}

/// A module as published: its record in the platform document, and its index.
#[derive(Debug, Clone)]
pub(crate) struct Published {
    pub(crate) module: Module,
    pub(crate) index: FileIndex,
}

impl TestSite {
    pub(crate) fn new() -> Self {
        Self {
            transport: MapTransport::default(),
            base: BaseUrl::parse("https://example.com/site").unwrap(),
        }
    }

    pub(crate) fn url(&self, path: &RelativePath) -> String {
        self.base.join(path)
    }

    /// Serves `bytes` as a blob of `kind` named by their hash.
    pub(crate) fn put(&self, kind: BlobKind, bytes: Vec<u8>) -> Blob {
        let blob = Blob {
            size: bytes.len() as u64,
            blake3: Blake3Hash::of(&bytes),
        };
        self.transport
            .insert(self.url(&layout::blob(&blob.blake3, kind)), bytes);
        blob
    }

    /// The URL of a blob of `kind` with hash `blake3`.
    pub(crate) fn blob_url(&self, blake3: &Blake3Hash, kind: BlobKind) -> String {
        self.url(&layout::blob(blake3, kind))
    }

    /// Publishes a tree module of `files` and `links` (with their parent
    /// directories, mode 755): its package, compressed index and copy pack.
    pub(crate) fn module(
        &self,
        version: &str,
        files: &[Spec<'_>],
        links: &[(&str, &str)],
        dest: Option<&str>,
    ) -> Published {
        let mut dirs = BTreeSet::new();
        let paths = files
            .iter()
            .map(|(path, _, _)| path)
            .chain(links.iter().map(|(path, _)| path));
        for path in paths {
            let mut parent = Path::new(path).parent();
            while let Some(dir) = parent.filter(|dir| !dir.as_os_str().is_empty()) {
                dirs.insert(dir.to_str().unwrap().to_owned());
                parent = dir.parent();
            }
        }
        let mut entries = Vec::new();
        let mut raws = Vec::new();
        let mut copies: HashMap<Blake3Hash, Vec<u8>> = HashMap::new();
        for (path, content, mode) in files {
            let copy = file_copy(content);
            entries.push(IndexEntry {
                path: path.parse().unwrap(),
                kind: EntryKind::File {
                    size: content.len() as u64,
                    blake3: Blake3Hash::of(content),
                    packed_size: copy.len() as u64,
                },
                mode: FileMode::from_permissions(*mode),
            });
            copies.insert(Blake3Hash::of(content), copy);
        }
        let dir_names: Vec<String> = dirs.iter().map(|dir| format!("{dir}/")).collect();
        for (dir, name) in dirs.iter().zip(&dir_names) {
            entries.push(IndexEntry {
                path: dir.parse().unwrap(),
                kind: EntryKind::Dir,
                mode: FileMode::from_permissions(0o755),
            });
            raws.push(Raw(name, tar::EntryType::Directory, 0o755, b""));
        }
        for (path, content, mode) in files {
            raws.push(Raw(path, tar::EntryType::Regular, *mode, content));
        }
        for (path, target) in links {
            entries.push(IndexEntry {
                path: path.parse().unwrap(),
                kind: EntryKind::Symlink {
                    target: target.parse().unwrap(),
                },
                mode: FileMode::from_permissions(0o777),
            });
            raws.push(Raw(path, tar::EntryType::Symlink, 0o777, target.as_bytes()));
        }
        let index = FileIndex::new(entries);
        // tar.gz: a package's size decides against packs here, and the publisher's
        // tar.zst is covered by the unpacker's tests and end to end.
        let package = self.put(BlobKind::Package, package(&raws));
        let module = Module {
            version: version.parse().unwrap(),
            kind: ModuleKind::Tree,
            dest: dest.map(|dest| dest.parse().unwrap()),
            unpacked_size: files
                .iter()
                .map(|(_, content, _)| content.len() as u64)
                .sum(),
            package,
            package_format: PackageFormat::TarGz,
            index: self.put_index(&index),
            copies: Some(self.put(BlobKind::Copies, copy_pack(&index, &copies))),
        };
        Published { module, index }
    }

    /// Publishes an image module: one file, whose package is its zstd copy.
    pub(crate) fn image(&self, version: &str, path: &str, content: &[u8]) -> Published {
        let copy = file_copy(content);
        let index = FileIndex::new(vec![IndexEntry {
            path: Path::new(path)
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .parse()
                .unwrap(),
            kind: EntryKind::File {
                size: content.len() as u64,
                blake3: Blake3Hash::of(content),
                packed_size: copy.len() as u64,
            },
            mode: FileMode::from_permissions(0o644),
        }]);
        let module = Module {
            version: version.parse().unwrap(),
            kind: ModuleKind::Image,
            dest: Some(path.parse().unwrap()),
            unpacked_size: content.len() as u64,
            package: self.put(BlobKind::FileCopy, copy),
            package_format: PackageFormat::TarGz,
            index: self.put_index(&index),
            copies: None,
        };
        Published { module, index }
    }

    /// Serves `index` compressed, as the publisher stores it.
    pub(crate) fn put_index(&self, index: &FileIndex) -> wavecast_schema::IndexBlob {
        let (bytes, blob) = index.encode();
        self.transport
            .insert(self.blob_url(&blob.blake3, BlobKind::FileIndex), bytes);
        blob
    }

    /// The platform document of `version` with `modules` (not served: the tests hand
    /// it to the install directly).
    pub(crate) fn document(
        &self,
        version: &str,
        modules: &[(&str, &Published)],
    ) -> PlatformRelease {
        let mut document = PlatformRelease::new(version.parse().unwrap(), "any".parse().unwrap());
        for (name, published) in modules {
            document
                .modules
                .insert(name.parse().unwrap(), published.module.clone());
        }
        document
    }

    /// Builds and serves the delta pack from `from` to `to` (each a document and
    /// its modules' indexes), patching each changed file against its counterpart
    /// (same path) in `from` with `algorithm` when that is smaller than its copy,
    /// and lists it in `to`.
    pub(crate) fn pack(
        &self,
        from: (&PlatformRelease, &BTreeMap<&str, &FileIndex>),
        to: (&mut PlatformRelease, &BTreeMap<&str, &FileIndex>),
        contents: &HashMap<Blake3Hash, Vec<u8>>,
        algorithm: PatchAlgorithm,
    ) -> PackRef {
        let (from_document, from_indexes) = from;
        let (to_document, to_indexes) = to;
        let mut header =
            PackHeader::new(from_document.version.clone(), to_document.version.clone());
        let mut payload = Vec::new();
        for (name, module) in &to_document.modules {
            let name_str = name.as_str();
            let old = from_indexes.get(name_str).copied();
            let new = to_indexes[name_str];
            let old_module = from_document.modules.get(name);
            if old_module.is_some_and(|old| old.index == module.index) {
                continue;
            }
            let delta = ModuleDelta::between(old, new, |entry| {
                let EntryKind::File { blake3, .. } = &entry.kind else {
                    return None;
                };
                let content = &contents[blake3];
                let base = old.and_then(|old| {
                    old.entries
                        .iter()
                        .find_map(|candidate| match &candidate.kind {
                            EntryKind::File { blake3, .. } if candidate.path == entry.path => {
                                contents.get(blake3).map(|base| (blake3.clone(), base))
                            }
                            _ => None,
                        })
                });
                let copy = file_copy(content);
                let patch = base.map(|(hash, base)| {
                    (
                        hash,
                        wavecast_delta::make_patch(algorithm, base, content).unwrap(),
                    )
                });
                let offset = payload.len() as u64;
                Some(match patch {
                    Some((base, patch)) if patch.len() < copy.len() => {
                        payload.extend_from_slice(&patch);
                        PackData::Patch {
                            base,
                            algorithm,
                            offset,
                            length: patch.len() as u64,
                        }
                    }
                    _ => {
                        payload.extend_from_slice(&copy);
                        PackData::Copy {
                            offset,
                            length: copy.len() as u64,
                        }
                    }
                })
            });
            header.modules.insert(ModuleName::clone(name), delta);
        }
        let bytes = header.encode(&payload);
        let blob = self.put(BlobKind::Pack, bytes);
        let pack = PackRef {
            from: from_document.version.clone(),
            size: blob.size,
            blake3: blob.blake3,
        };
        to_document.packs.push(pack.clone());
        pack
    }
}

/// The copy pack of `index`: each distinct content's copy, in index order.
fn copy_pack(index: &FileIndex, copies: &HashMap<Blake3Hash, Vec<u8>>) -> Vec<u8> {
    let mut layout: Vec<_> = index.copy_layout().into_iter().collect();
    layout.sort_by_key(|(_, slice)| slice.offset);
    let mut pack = Vec::new();
    for (content, slice) in layout {
        assert_eq!(pack.len() as u64, slice.offset);
        pack.extend_from_slice(&copies[content]);
    }
    pack
}
