//! Package extraction: the input is unpacked with `wavecast_client::unpack_module`
//! in both package formats, each once as the package itself (a tar.gz, a tar.zst)
//! and once as a raw tar the target compresses (so the fuzzer mutates tar headers
//! directly), each time into a fresh tree two levels
//! below a temporary directory, beside a bait directory that links in a package may
//! point to. Nothing may panic, and whatever the result, nothing may appear outside
//! the tree (the bait stays empty), the tree holds only plain files, directories and
//! symbolic links, without setuid, setgid or sticky bits, every file written is
//! reported with the hash of its content, and the files total at most the declared
//! unpacked size.
#![no_main]

use std::collections::BTreeSet;
use std::fs::{self, Permissions};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use flate2::Compression;
use flate2::write::GzEncoder;
use libfuzzer_sys::fuzz_target;
use wavecast_client::unpack_module;
use wavecast_schema::PackageFormat;

/// The unpacked size the package declares.
const LIMIT: u64 = 64 * 1024;

fn names(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .expect("readable")
        .map(|entry| {
            entry
                .expect("readable")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

/// Checks everything under `dir` (never following a link) and returns the total size
/// of its files. Makes every directory writable on the way down so the temporary
/// directory can be removed.
fn walk(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in fs::read_dir(dir).expect("readable") {
        let path = entry.expect("readable").path();
        let meta = fs::symlink_metadata(&path).expect("stat");
        if meta.is_symlink() {
            continue;
        }
        let mode = meta.permissions().mode();
        assert_eq!(mode & 0o7000, 0, "{} has mode {mode:o}", path.display());
        if meta.is_dir() {
            fs::set_permissions(&path, Permissions::from_mode(0o700)).expect("chmod");
            total += walk(&path);
        } else {
            assert!(meta.is_file(), "{} is not a plain file", path.display());
            total += meta.len();
        }
    }
    total
}

fn unpack(package: &[u8], format: PackageFormat) {
    // In memory where there is a tmpfs, so the fuzzer does not wait on the disk.
    let dir = tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .expect("temporary directory");
    let package_name = format!("package.{format}");
    let path = dir.path().join(&package_name);
    fs::write(&path, package).expect("write the package");
    let outer = dir.path().join("outer");
    let tree = outer.join("tree");
    let bait = outer.join("bait");
    fs::create_dir_all(&tree).expect("create the tree");
    fs::create_dir_all(&bait).expect("create the bait");

    let module = "app".parse().expect("valid module name");
    if let Ok(files) = unpack_module(&path, format, &module, LIMIT, &tree) {
        for (file, hash) in files {
            let local = file.segments().fold(tree.clone(), |path, s| path.join(s));
            let content = fs::read(&local).expect("a reported file is readable");
            assert_eq!(
                blake3::hash(&content).to_hex().as_str(),
                hash.as_str(),
                "{file} is reported with another hash"
            );
        }
    }
    assert!(
        names(&bait).is_empty(),
        "something was written through a link"
    );

    assert_eq!(
        names(dir.path()),
        BTreeSet::from(["outer".to_owned(), package_name]),
        "something was written next to the tree's parent"
    );
    assert_eq!(
        names(&outer),
        BTreeSet::from(["bait".to_owned(), "tree".to_owned()]),
        "something was written next to the tree"
    );
    fs::set_permissions(&tree, Permissions::from_mode(0o700)).expect("chmod");
    let total = walk(&tree);
    assert!(total <= LIMIT, "{total} bytes unpacked, {LIMIT} declared");
}

fuzz_target!(|data: &[u8]| {
    unpack(data, PackageFormat::TarGz);
    unpack(data, PackageFormat::TarZst);
    let mut gzip = GzEncoder::new(Vec::new(), Compression::none());
    gzip.write_all(data).expect("in memory");
    unpack(&gzip.finish().expect("in memory"), PackageFormat::TarGz);
    let zstd = zstd::encode_all(data, 1).expect("in memory");
    unpack(&zstd, PackageFormat::TarZst);
});
