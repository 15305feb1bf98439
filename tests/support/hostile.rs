//! Hostile inputs: archives with entries wavecast must refuse, and re-signing a site's
//! manifest to point at them (a publisher key compromise, or a malicious publisher).

use std::fmt;
use std::io::Read;

use wavecast_publisher::keys::{Password, SigningKey};
use wavecast_schema::{
    Blake3Hash, Blob, EntryKind, Envelope, FileIndex, FileMode, IndexEntry, Manifest,
    PackageFormat, PlatformRelease,
};

use wavecast_site::layout::BlobKind;

use crate::delta::read_document;
use crate::{KEY_PASSWORD, Run, Sandbox};

/// One raw tar entry: name bytes as written, type, content, link target.
#[derive(Clone, Copy)]
pub struct RawEntry<'a> {
    pub name: &'a str,
    pub kind: tar::EntryType,
    pub content: &'a [u8],
    pub link: Option<&'a str>,
    pub mode: u32,
}

impl<'a> RawEntry<'a> {
    pub fn file(name: &'a str, content: &'a [u8]) -> Self {
        Self {
            name,
            kind: tar::EntryType::Regular,
            content,
            link: None,
            mode: 0o644,
        }
    }
}

/// A tar.gz whose headers are written byte for byte, bypassing the `tar` crate's path
/// checks, so it can hold `../` and absolute names.
pub fn raw_tar_gz(entries: &[RawEntry<'_>]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut encoder, &raw_tar(entries)).unwrap();
    encoder.finish().unwrap()
}

/// [`raw_tar_gz`] as a tar.zst.
pub fn raw_tar_zst(entries: &[RawEntry<'_>]) -> Vec<u8> {
    zstd::encode_all(raw_tar(entries).as_slice(), 19).unwrap()
}

/// The tar of [`raw_tar_gz`], uncompressed.
fn raw_tar(entries: &[RawEntry<'_>]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in entries {
        let mut header = tar::Header::new_old();
        let name = entry.name.as_bytes();
        header.as_old_mut().name[..name.len()].copy_from_slice(name);
        if let Some(link) = entry.link {
            header.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        header.set_entry_type(entry.kind);
        header.set_mode(entry.mode);
        header.set_size(entry.content.len() as u64);
        header.set_mtime(0);
        header.set_cksum();
        builder.append(&header, entry.content).unwrap();
    }
    builder.into_inner().unwrap()
}

/// The format of `package`, a tar.zst or a tar.gz, by its first bytes.
fn format_of(package: &[u8]) -> PackageFormat {
    if package.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        PackageFormat::TarZst
    } else {
        PackageFormat::TarGz
    }
}

/// The tar inside `package`, a tar.zst or a tar.gz.
fn tar_of(package: &[u8]) -> tar::Archive<Box<dyn Read + '_>> {
    tar::Archive::new(match format_of(package) {
        PackageFormat::TarZst => Box::new(zstd::stream::read::Decoder::new(package).unwrap()),
        PackageFormat::TarGz => Box::new(flate2::read::GzDecoder::new(package)),
    })
}

/// Loads the sandbox's signing key.
pub fn signing_key(sandbox: &Sandbox) -> SigningKey {
    SigningKey::load(&sandbox.key(), || {
        Ok(Some(Password::new(KEY_PASSWORD.into())))
    })
    .unwrap()
}

/// Re-signs the `stable` manifest's JSON after `change`, with the next serial,
/// bypassing every check the publisher makes: what a stolen release key, or another
/// tool, could sign.
pub fn resign_json(sandbox: &Sandbox, change: impl FnOnce(&mut serde_json::Value)) {
    let path = sandbox.site().join("channels/stable.json");
    let envelope = Envelope::parse(&std::fs::read(&path).unwrap()).unwrap();
    let mut manifest: serde_json::Value = serde_json::from_str(&envelope.manifest).unwrap();
    change(&mut manifest);
    manifest["serial"] = (manifest["serial"].as_u64().unwrap() + 1).into();
    let text = manifest.to_string();
    let storage = wavecast_site::FsStorage::new(sandbox.site());
    let signers = signing_key(sandbox).into();
    let roots = wavecast_publisher::trust::ensure_roots(&storage, &signers).unwrap();
    let signatures =
        wavecast_publisher::trust::sign_release(&roots, &signers, &text, "hostile").unwrap();
    std::fs::write(&path, Envelope::new(text, signatures).to_json()).unwrap();
}

/// What one run cost, as GNU time measured it.
#[derive(Debug, Clone, Copy)]
pub struct Cost {
    /// Peak resident memory, in KiB.
    pub max_rss_kib: u64,
    /// Wall time, in seconds.
    pub seconds: f64,
}

impl fmt::Display for Cost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:.2} s, peak memory {:.1} MiB",
            self.seconds,
            self.max_rss_kib as f64 / 1024.0
        )
    }
}

/// Runs `wavecast-update args --root <sandbox root>` under GNU time.
pub fn client_timed(sandbox: &Sandbox, args: &[&str]) -> (Run, Cost) {
    let report = sandbox.path("time.txt");
    let output = sandbox
        .command_timed("wavecast-update", &report)
        .args(args)
        .arg("--root")
        .arg(sandbox.root())
        .output()
        .expect("run wavecast-update under /usr/bin/time (Debian package `time`)");
    let report = std::fs::read_to_string(&report).unwrap();
    // The last line: GNU time writes `Command exited with non-zero status N` first.
    let fields: Vec<&str> = report
        .lines()
        .last()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let cost = match fields.as_slice() {
        [kib, seconds] => Cost {
            max_rss_kib: kib.parse().unwrap(),
            seconds: seconds.parse().unwrap(),
        },
        _ => panic!("unexpected report from /usr/bin/time: {report:?}"),
    };
    (Run::from_output(output), cost)
}

/// Re-signs the `stable` manifest after `change`, with the next serial.
pub fn resign(sandbox: &Sandbox, change: impl FnOnce(&mut Manifest)) {
    let mut manifest = sandbox.manifest("stable");
    change(&mut manifest);
    manifest.serial += 1;
    let storage = wavecast_site::FsStorage::new(sandbox.site());
    let signers = signing_key(sandbox).into();
    wavecast_publisher::channel::write_manifest(&storage, &signers, &mut manifest).unwrap();
}

/// The file index a publisher signing `package` as it is would write: every entry
/// whose path is a valid relative path, with its mode (permission bits only), size
/// and hash or link target. Entries no index can hold (escaping paths, devices) are
/// left out: the client refuses them while unpacking, before any comparison.
pub fn index_of(package: &[u8]) -> FileIndex {
    let mut archive = tar_of(package);
    let mut entries = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let Ok(path) = raw.trim_start_matches("./").trim_end_matches('/').parse() else {
            continue;
        };
        let mode = FileMode::from_permissions(entry.header().mode().unwrap());
        let kind = match entry.header().entry_type() {
            tar::EntryType::Regular => {
                let mut content = Vec::new();
                entry.read_to_end(&mut content).unwrap();
                EntryKind::File {
                    size: content.len() as u64,
                    blake3: Blake3Hash::of(&content),
                    packed_size: 0,
                }
            }
            tar::EntryType::Directory => EntryKind::Dir,
            tar::EntryType::Symlink => {
                let target = entry.link_name_bytes().unwrap_or_default();
                let Ok(target) = String::from_utf8_lossy(&target).parse() else {
                    continue;
                };
                EntryKind::Symlink { target }
            }
            _ => continue,
        };
        entries.push(IndexEntry { path, kind, mode });
    }
    FileIndex::new(entries)
}

/// Stores `package` (a tar.gz or a tar.zst) on the site, with the file index a
/// publisher would sign for it
/// ([`index_of`]), and points the newest release's `app` module at both, with
/// correct sizes and hashes: only the archive's content is hostile.
pub fn replace_newest_package(sandbox: &Sandbox, package: &[u8], unpacked_size: u64) {
    replace_newest_package_with_index(sandbox, package, unpacked_size, &index_of(package));
}

/// [`replace_newest_package`] with the file index `index`, which may lie about the
/// package too. The module's copy pack becomes an empty one, which the index's copies
/// (all of `packed_size` 0 in [`index_of`]) lay out: clients can only take the
/// package.
pub fn replace_newest_package_with_index(
    sandbox: &Sandbox,
    package: &[u8],
    unpacked_size: u64,
    index: &FileIndex,
) {
    let hash = Blake3Hash::of(package);
    let format = format_of(package);
    let path = format!("blobs/{hash}.{format}");
    std::fs::write(sandbox.site().join(&path), package).unwrap();
    let (index_bytes, index_blob) = index.encode();
    let index_path = format!("blobs/{}.json.zst", index_blob.blake3);
    std::fs::write(sandbox.site().join(&index_path), &index_bytes).unwrap();
    let copies = Blob {
        size: 0,
        blake3: Blake3Hash::of(b""),
    };
    std::fs::write(
        sandbox
            .site()
            .join(format!("blobs/{}.copies", copies.blake3)),
        b"",
    )
    .unwrap();
    change_newest_document(sandbox, |document| {
        let module = document.modules.get_mut("app").unwrap();
        module.package = Blob {
            size: package.len() as u64,
            blake3: hash,
        };
        module.package_format = format;
        module.unpacked_size = unpacked_size;
        module.index = index_blob;
        module.copies = Some(copies);
        document.packs.clear();
    });
}

/// The entries of a package (tar.zst or tar.gz), header and data each, to be changed
/// and packed again with [`pack_entries`].
pub fn unpack_entries(package: &[u8]) -> Vec<(tar::Header, Vec<u8>)> {
    let mut archive = tar_of(package);
    archive
        .entries()
        .unwrap()
        .map(|entry| {
            let mut entry = entry.unwrap();
            let header = entry.header().clone();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            (header, data)
        })
        .collect()
}

/// A tar.gz of `entries`, as [`unpack_entries`] returns them.
pub fn pack_entries(entries: &[(tar::Header, Vec<u8>)]) -> Vec<u8> {
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut builder = tar::Builder::new(encoder);
    for (header, data) in entries {
        let mut header = header.clone();
        header.set_size(data.len() as u64);
        header.set_cksum();
        builder.append(&header, data.as_slice()).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

/// Rewrites the document of the newest release on platform `any` with `change`,
/// stores it, and signs the manifest naming it (the blobs it names are the caller's
/// to store).
pub fn change_newest_document(sandbox: &Sandbox, change: impl FnOnce(&mut PlatformRelease)) {
    let manifest = sandbox.manifest("stable");
    let mut document = read_document(&sandbox.site(), &manifest.releases[0].platforms["any"]);
    change(&mut document);
    let bytes = document.to_json();
    let blob = Blob {
        size: bytes.len() as u64,
        blake3: Blake3Hash::of(&bytes),
    };
    let path = wavecast_site::layout::blob(&blob.blake3, BlobKind::PlatformRelease);
    std::fs::write(sandbox.site().join(path.as_str()), &bytes).unwrap();
    resign(sandbox, |manifest| {
        manifest.releases[0]
            .platforms
            .insert("any".parse().unwrap(), blob);
    });
}
