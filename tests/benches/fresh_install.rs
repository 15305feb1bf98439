//! Fresh installs: the bytes a client downloads for its first install, and the time
//! to publish and install a large tree, against stock tar with gzip and zstd.
//!
//! ```text
//! cargo build --release --bins && cargo bench -p wavecast-tests --bench fresh_install
//! ```
//!
//! First, for the newer release of each pair of the corpus ([`wavecast_tests::corpus`]):
//! publish it (the default tar.zst packages), install it from a real nginx into an
//! empty root, and count the response body bytes nginx sent (manifest, release
//! document, package); against `zstd -19` of the tree's tar, made with
//! `tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner`, and that tar with
//! `gzip -6`. Target: received ≤ 1.02 × `tar.zst -19`.
//!
//! Then the generated 240 MB, 2,400-file tree ([`wavecast_tests::generated`]), side
//! by side in one run: `wavecast publish` (no earlier release, so no delta packs)
//! against `tar czf` of the tree, and a fresh `wavecast-update update` from a folder
//! site (copy into the cache, verify, unpack, sync, switch) against `tar xzf` of
//! that tar.gz followed by `sync`, both on a new ext4 file system made for each run
//! ([`ScratchFs`]). The same with `--package-format gz` for comparison. Installs
//! are the best of `WAVECAST_BENCH_RUNS` runs (default 3); publishes run once.
//! Targets: install ≤ 0.5 ×
//! (`tar xzf` + `sync`), publish ≤ 1.0 × `tar czf`. Timings are printed, never
//! asserted; every installed tree must equal the release.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use wavecast_tests::delta::{BlobClass, LoggingNginx, bytes_by_class};
use wavecast_tests::generated::generate_tree;
use wavecast_tests::{Sandbox, assert_same_tree, corpus};

fn main() {
    println!(
        "| release | tree | received by a fresh install (requests) | of it, the package | tar.zst -19 | ratio (target ≤ 1.02) | tar.gz -6 |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for pair in corpus::pairs() {
        corpus_row(&format!("{} {}", pair.name, pair.new), &pair.new_dir);
    }
    println!();
    generated_tree();
}

/// One row of the corpus table: a fresh install of `dir` against stock tar.
fn corpus_row(name: &str, dir: &Path) {
    eprintln!("{name}: publishing and installing");
    let sandbox = Sandbox::new();
    sandbox
        .publish(dir, "1.0.0", &["--patch-depth", "0", "--quiet"])
        .success();
    let nginx = LoggingNginx::serve(&sandbox.site());
    sandbox.init_client(&nginx.url());
    nginx.clear_log();
    sandbox.client(["update", "--yes"]).success();
    assert_same_tree(&sandbox.root().join("current"), dir);
    let requests = nginx.requests();
    let received: u64 = requests.iter().map(|served| served.body_bytes).sum();
    let package = bytes_by_class(&requests)
        .get(&BlobClass::Package)
        .copied()
        .unwrap_or(0);

    let tar = sandbox.path("reference.tar");
    run(Command::new("tar")
        .args([
            "--sort=name",
            "--mtime=@0",
            "--owner=0",
            "--group=0",
            "--numeric-owner",
            "-cf",
        ])
        .arg(&tar)
        .arg("-C")
        .arg(dir)
        .arg("."));
    let zstd = compressed_size(Command::new("zstd").args(["-19", "-q", "-c"]).arg(&tar));
    let gzip = compressed_size(Command::new("gzip").args(["-6", "-c"]).arg(&tar));
    println!(
        "| {name} | {} | {} ({}) | {} | {} | {:.3} | {} |",
        thousands(size_of(dir)),
        thousands(received),
        requests.len(),
        thousands(package),
        thousands(zstd),
        received as f64 / zstd as f64,
        thousands(gzip),
    );
}

/// Publish and install of the generated tree, against tar with gzip, side by side.
fn generated_tree() {
    let runs: usize = std::env::var("WAVECAST_BENCH_RUNS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(3);
    let sandbox = Sandbox::new();
    let tree = sandbox.path("tree");
    let (files, bytes) = generate_tree(&tree);
    println!(
        "generated tree: {files} files, {:.1} MB",
        bytes as f64 / 1e6
    );

    let tarball = sandbox.path("tree.tar.gz");
    eprintln!("tar czf");
    let tar_czf = timed(|| {
        run(Command::new("tar")
            .arg("czf")
            .arg(&tarball)
            .arg("-C")
            .arg(&tree)
            .arg("."));
    });
    let mut scratch = ScratchFs::new(&sandbox);
    println!("installs on: {}", scratch.describe());
    let unpacked = std::cell::RefCell::new(PathBuf::new());
    let tar_xzf = best_of(
        runs,
        || {
            let dir = scratch.fresh().join("unpacked");
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            run(&mut Command::new("sync"));
            *unpacked.borrow_mut() = dir;
        },
        || {
            run(Command::new("tar")
                .arg("xzf")
                .arg(&tarball)
                .arg("-C")
                .arg(&*unpacked.borrow()));
            run(&mut Command::new("sync"));
        },
    );

    println!(
        "| step | tar.zst (default) | tar.gz (--package-format gz) | tar | tar.zst / tar (target) |"
    );
    println!("|---|---:|---:|---:|---:|");
    let zst = publish_and_install(&sandbox, &mut scratch, &tree, "zst", runs);
    let gz = publish_and_install(&sandbox, &mut scratch, &tree, "gz", runs);
    println!(
        "| package size | {:.1} MB | {:.1} MB | {:.1} MB (`tar czf`) | {:.2} |",
        zst.package as f64 / 1e6,
        gz.package as f64 / 1e6,
        size_of(&tarball) as f64 / 1e6,
        zst.package as f64 / size_of(&tarball) as f64,
    );
    println!(
        "| publish vs `tar czf` | {:.2} s | {:.2} s | {:.2} s | {:.2} (≤ 1.0) |",
        zst.publish.as_secs_f64(),
        gz.publish.as_secs_f64(),
        tar_czf.as_secs_f64(),
        zst.publish.as_secs_f64() / tar_czf.as_secs_f64(),
    );
    println!(
        "| fresh install vs `tar xzf` + `sync` | {:.2} s | {:.2} s | {:.2} s | {:.2} (≤ 0.5) |",
        zst.install.as_secs_f64(),
        gz.install.as_secs_f64(),
        tar_xzf.as_secs_f64(),
        zst.install.as_secs_f64() / tar_xzf.as_secs_f64(),
    );
}

/// A publish of the generated tree in one package format and a fresh install of it.
struct Measured {
    package: u64,
    publish: Duration,
    install: Duration,
}

fn publish_and_install(
    sandbox: &Sandbox,
    scratch: &mut ScratchFs,
    tree: &Path,
    format: &str,
    runs: usize,
) -> Measured {
    eprintln!("publish --package-format {format}");
    let site = sandbox.path(&format!("site-{format}"));
    let publish = timed(|| {
        sandbox
            .wavecast(
                [
                    "publish".as_ref(),
                    tree.as_os_str(),
                    "--version".as_ref(),
                    "1.0.0".as_ref(),
                    "--package-format".as_ref(),
                    format.as_ref(),
                    "--patch-depth".as_ref(),
                    "0".as_ref(),
                    "--quiet".as_ref(),
                ],
                [
                    "--site".as_ref(),
                    site.as_os_str(),
                    "--key".as_ref(),
                    sandbox.key().as_os_str(),
                ],
            )
            .success();
    });
    let package = std::fs::read_dir(site.join("blobs"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.to_string_lossy().ends_with(&format!(".tar.{format}")))
        .map(|path| size_of(&path))
        .sum();
    eprintln!("fresh installs of the {format} package");
    let root = std::cell::RefCell::new(PathBuf::new());
    let install = best_of(
        runs,
        || {
            let at = scratch.fresh().join(format!("client-{format}"));
            let _ = std::fs::remove_dir_all(&at);
            wavecast_tests::client::init_at(sandbox, &at, site.to_str().unwrap(), &[]);
            run(&mut Command::new("sync"));
            *root.borrow_mut() = at;
        },
        || {
            sandbox
                .client_at(&root.borrow(), ["update", "--yes"])
                .success();
        },
    );
    assert_same_tree(&root.borrow().join("current"), tree);
    Measured {
        package,
        publish,
        install,
    }
}

/// Where the installs (and `tar xzf`) write: a new ext4 file system for each run, on
/// a loop device with direct I/O, when this runs as root with loop devices, or else
/// the sandbox.
///
/// ext4 does not give out inodes freed in the last minutes; on a disk where the
/// previous run's 2,400 files were just deleted, its search for free ones takes
/// most of the time of tar and wavecast alike (`perf`: `recently_deleted`), which a
/// machine's first install does not meet.
struct ScratchFs {
    image: PathBuf,
    mount: PathBuf,
    /// The loop device the image is attached to while it is mounted.
    device: Option<String>,
    fallback: Option<PathBuf>,
}

impl ScratchFs {
    fn new(sandbox: &Sandbox) -> Self {
        let mut scratch = Self {
            image: sandbox.path("scratch.img"),
            mount: sandbox.path("scratch"),
            device: None,
            fallback: None,
        };
        std::fs::create_dir_all(&scratch.mount).unwrap();
        if !scratch.remake() {
            eprintln!("no loop-mounted file system (not root?): installing into the sandbox");
            let fallback = sandbox.path("installs");
            std::fs::create_dir_all(&fallback).unwrap();
            scratch.fallback = Some(fallback);
        }
        scratch
    }

    fn describe(&self) -> &'static str {
        if self.fallback.is_some() {
            "the sandbox's file system"
        } else {
            "a new 2 GiB ext4 file system for each run (loop device, direct I/O)"
        }
    }

    /// A folder on a file system nothing was deleted from.
    fn fresh(&mut self) -> PathBuf {
        if let Some(fallback) = &self.fallback {
            return fallback.clone();
        }
        assert!(self.remake(), "remaking the scratch file system failed");
        self.mount.clone()
    }

    fn remake(&mut self) -> bool {
        self.unmount();
        let _ = std::fs::remove_file(&self.image);
        let ok = |command: &mut Command| {
            command
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|status| status.success())
        };
        if !(ok(Command::new("truncate").args(["-s", "2G"]).arg(&self.image))
            && ok(Command::new("mkfs.ext4")
                .args(["-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0"])
                .arg(&self.image)))
        {
            return false;
        }
        // Direct I/O to the image, as to a disk: no second page cache in between.
        let Ok(attached) = Command::new("losetup")
            .args(["--direct-io=on", "--find", "--show"])
            .arg(&self.image)
            .stderr(Stdio::null())
            .output()
        else {
            return false;
        };
        let device = String::from_utf8_lossy(&attached.stdout).trim().to_owned();
        if !attached.status.success() || device.is_empty() {
            return false;
        }
        if !ok(Command::new("mount").arg(&device).arg(&self.mount)) {
            let _ = Command::new("losetup").args(["-d", &device]).status();
            return false;
        }
        self.device = Some(device);
        true
    }

    fn unmount(&mut self) {
        if let Some(device) = self.device.take() {
            run(Command::new("umount").arg(&self.mount));
            run(Command::new("losetup").args(["-d", &device]));
        }
    }
}

impl Drop for ScratchFs {
    fn drop(&mut self) {
        self.unmount();
    }
}

fn timed(step: impl FnOnce()) -> Duration {
    let started = Instant::now();
    step();
    started.elapsed()
}

fn best_of(runs: usize, mut prepare: impl FnMut(), mut step: impl FnMut()) -> Duration {
    (0..runs.max(1))
        .map(|_| {
            prepare();
            timed(&mut step)
        })
        .min()
        .unwrap()
}

/// The size of what `command` writes to stdout.
fn compressed_size(command: &mut Command) -> u64 {
    let output = command.stderr(Stdio::inherit()).output().unwrap();
    assert!(output.status.success(), "{command:?} failed");
    output.stdout.len() as u64
}

fn run(command: &mut Command) {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The size of a file, or of the regular files under a folder.
fn size_of(path: &Path) -> u64 {
    let metadata = std::fs::symlink_metadata(path).unwrap();
    if metadata.is_dir() {
        std::fs::read_dir(path)
            .unwrap()
            .map(|entry| size_of(&entry.unwrap().path()))
            .sum()
    } else if metadata.is_file() {
        metadata.len()
    } else {
        0
    }
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}
