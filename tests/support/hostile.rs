//! Hostile inputs: archives with entries wavecast must refuse, and re-signing a site's
//! manifest to point at them (a publisher key compromise, or a malicious publisher).

use wavecast_publisher::keys::{Password, SigningKey};
use wavecast_schema::{Blake3Hash, Blob, Manifest};

use crate::{KEY_PASSWORD, Sandbox};

/// One raw tar entry: name bytes as written, type, content, link target.
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
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut builder = tar::Builder::new(encoder);
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
    builder.into_inner().unwrap().finish().unwrap()
}

/// Loads the sandbox's signing key.
pub fn signing_key(sandbox: &Sandbox) -> SigningKey {
    SigningKey::load(&sandbox.key(), || {
        Ok(Some(Password::new(KEY_PASSWORD.into())))
    })
    .unwrap()
}

/// Re-signs the `stable` manifest after `change`, with the next serial.
pub fn resign(sandbox: &Sandbox, change: impl FnOnce(&mut Manifest)) {
    let mut manifest = sandbox.manifest("stable");
    change(&mut manifest);
    manifest.serial += 1;
    let storage = wavecast_site::FsStorage::new(sandbox.site());
    let signers = signing_key(sandbox).into();
    wavecast_publisher::publish::write_manifest(&storage, &signers, &mut manifest).unwrap();
}

/// Stores `package` on the site and points the newest release's `app` module at it,
/// with a correct size and hash: only the archive's content is hostile.
pub fn replace_newest_package(sandbox: &Sandbox, package: &[u8], unpacked_size: u64) {
    let hash = Blake3Hash::of(package);
    let path = format!("blobs/{hash}.tar.gz");
    std::fs::write(sandbox.site().join(&path), package).unwrap();
    resign(sandbox, |manifest| {
        let module = manifest.releases[0]
            .platforms
            .get_mut("any")
            .unwrap()
            .modules
            .get_mut("app")
            .unwrap();
        module.package = Blob {
            path: path.parse().unwrap(),
            size: package.len() as u64,
            blake3: hash,
        };
        module.unpacked_size = unpacked_size;
    });
}
