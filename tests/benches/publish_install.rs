//! Publish and install speed against plain `tar czf` / `tar xzf` of the same tree.
//!
//! ```text
//! cargo build --release --bins && cargo bench -p wavecast-tests --bench publish_install
//! ```
//!
//! Generates a tree of about 240 MB in 2,400 files (text-like and binary content),
//! then prints, best of `WAVECAST_BENCH_RUNS` runs (default 3):
//! - `wavecast publish` (key load, packaging, hashing, file index, signing) vs
//!   `tar czf` of the same tree;
//! - `wavecast-update update` from a folder site (copy into the cache, verify, unpack,
//!   sync to disk, switch) vs `tar xzf` of the same package.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::Command;
use std::time::{Duration, Instant};

use wavecast_tests::generated::generate_tree;
use wavecast_tests::{KEY_PASSWORD, binary};

fn main() {
    let runs: usize = std::env::var("WAVECAST_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let work = tempfile::Builder::new()
        .prefix("wavecast-bench-")
        .tempdir()
        .unwrap();
    let tree = work.path().join("tree");
    let (files, bytes) = generate_tree(&tree);
    println!("tree: {files} files, {:.1} MB", bytes as f64 / 1e6);

    run(Command::new(binary("wavecast"))
        .args(["keygen", "--out"])
        .arg(work.path().join("keys")));
    let tarball = work.path().join("tree.tar.gz");
    let tar_czf = best_of(runs, || {
        run(Command::new("tar")
            .arg("czf")
            .arg(&tarball)
            .arg("-C")
            .arg(&tree)
            .arg("."));
    });
    let site = work.path().join("site");
    let publish = best_of(runs, || {
        let _ = std::fs::remove_dir_all(&site);
        run(Command::new(binary("wavecast"))
            .arg("publish")
            .arg(&tree)
            .args(["--version", "1.0.0", "--site"])
            .arg(&site)
            .arg("--key")
            .arg(work.path().join("keys/wavecast.key")));
    });
    let package_size = std::fs::read_dir(site.join("blobs"))
        .unwrap()
        .map(|entry| entry.unwrap().metadata().unwrap().len())
        .max()
        .unwrap();

    let unpacked = work.path().join("unpacked");
    let tar_xzf = best_of(runs, || {
        let _ = std::fs::remove_dir_all(&unpacked);
        std::fs::create_dir_all(&unpacked).unwrap();
        run(Command::new("tar")
            .arg("xzf")
            .arg(&tarball)
            .arg("-C")
            .arg(&unpacked));
    });
    let root = work.path().join("client");
    let install = best_of_prepared(
        runs,
        || {
            let _ = std::fs::remove_dir_all(&root);
            run(Command::new(binary("wavecast-update"))
                .args(["init", "--root"])
                .arg(&root)
                .arg("--url")
                .arg(&site)
                .arg("--pubkey")
                .arg(work.path().join("keys/wavecast.pub")));
        },
        || {
            run(Command::new(binary("wavecast-update"))
                .args(["update", "--yes", "--root"])
                .arg(&root));
        },
    );

    println!(
        "package: {:.1} MB (tar czf: {:.1} MB)",
        package_size as f64 / 1e6,
        std::fs::metadata(&tarball).unwrap().len() as f64 / 1e6
    );
    println!("| step | wavecast | tar | ratio |");
    println!("|---|---:|---:|---:|");
    row("publish vs tar czf", publish, tar_czf);
    row("install vs tar xzf", install, tar_xzf);
}

fn row(name: &str, ours: Duration, theirs: Duration) {
    println!(
        "| {name} | {:.2} s | {:.2} s | {:.2} |",
        ours.as_secs_f64(),
        theirs.as_secs_f64(),
        ours.as_secs_f64() / theirs.as_secs_f64()
    );
}

fn run(command: &mut Command) {
    let output = command
        .env("WAVECAST_KEY_PASSWORD", KEY_PASSWORD)
        .env("WAVECAST_NO_PROGRESS", "1")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn best_of(runs: usize, mut step: impl FnMut()) -> Duration {
    best_of_prepared(runs, || {}, &mut step)
}

fn best_of_prepared(runs: usize, mut prepare: impl FnMut(), mut step: impl FnMut()) -> Duration {
    (0..runs.max(1))
        .map(|_| {
            prepare();
            let started = Instant::now();
            step();
            started.elapsed()
        })
        .min()
        .unwrap()
}
