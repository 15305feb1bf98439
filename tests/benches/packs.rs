//! Updates of many files through delta packs: apply time against `tar xzf` + `sync`,
//! the cost of a far host, and the size of a manifest with many releases.
//!
//! ```text
//! cargo build --release --bins && cargo bench -p wavecast-tests --bench packs
//! ```
//!
//! Generates a tree of 3,000 files (text-like and binary, 1–40 KB each) and a next
//! release where 1,000 of them changed (small edits), publishes both behind a real
//! nginx, and prints, best of `WAVECAST_BENCH_RUNS` runs (default 3), side by side:
//! - `wavecast-update update` from the first release to the second (manifest check,
//!   one delta pack, patches applied, every file verified, one sync, switch) against
//!   `tar xzf` of the second tree's `tar czf` followed by `sync`;
//! - the same update through [`LatencyProxy`], which holds back each request by
//!   50 ms (a CDN far away): the time it adds over the direct update, against the
//!   target of 1 s;
//!
//! then the signed manifest of a channel with 100 small releases (one module, one
//! platform): its size (target ≤ 32 KB), that `jq` reads it, and that it matches the
//! JSON Schema (every publish checks it). Timings are printed, never asserted.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use wavecast_tests::client::init_at;
use wavecast_tests::delta::LoggingNginx;
use wavecast_tests::latency::LatencyProxy;
use wavecast_tests::{Sandbox, assert_same_tree, pseudo_random};

const FILES: usize = 3_000;
const CHANGED: usize = 1_000;
const DELAY: Duration = Duration::from_millis(50);

fn main() {
    let runs: usize = std::env::var("WAVECAST_BENCH_RUNS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(3);
    many_files(runs);
    hundred_releases();
}

/// The update of 1,000 of 3,000 files, direct and through a 50 ms proxy, against
/// `tar xzf` + `sync`.
fn many_files(runs: usize) {
    let sandbox = Sandbox::new();
    let (old, new) = (sandbox.path("r1"), sandbox.path("r2"));
    let bytes = generate(&old, &new);
    println!(
        "tree: {FILES} files, {:.1} MB; {CHANGED} changed by a small edit",
        bytes as f64 / 1e6
    );

    sandbox.publish(&old, "1.0.0", &[]).success();
    let nginx = LoggingNginx::serve(&sandbox.site());
    let upstream: SocketAddr = nginx
        .url()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .expect("nginx listens on an address");
    let proxy = LatencyProxy::start(upstream, DELAY);
    // One client root per run and way, each with the first release installed.
    let roots: Vec<(std::path::PathBuf, std::path::PathBuf)> = (0..runs)
        .map(|run| {
            let (direct, far) = (
                sandbox.path(&format!("direct-{run}")),
                sandbox.path(&format!("far-{run}")),
            );
            init_at(&sandbox, &direct, &nginx.url(), &[]);
            init_at(&sandbox, &far, &proxy.url(), &[]);
            for root in [&direct, &far] {
                sandbox.client_at(root, ["update", "--yes"]).success();
            }
            (direct, far)
        })
        .collect();
    let started = Instant::now();
    sandbox.publish(&new, "2.0.0", &[]).success();
    println!(
        "publish of the second release (one delta pack, from the first): {:.2} s",
        started.elapsed().as_secs_f64()
    );

    let work = tempfile::Builder::new()
        .prefix("wavecast-bench-packs-")
        .tempdir()
        .unwrap();
    let tarball = work.path().join("new.tar.gz");
    run(Command::new("tar")
        .arg("czf")
        .arg(&tarball)
        .arg("-C")
        .arg(&new)
        .arg("."));

    let (mut update, mut far, mut untar) = (Vec::new(), Vec::new(), Vec::new());
    let mut requests = (0, 0);
    for (n, (direct_root, far_root)) in roots.iter().enumerate() {
        let target = work.path().join(format!("untar-{n}"));
        std::fs::create_dir(&target).unwrap();
        // Each timed step starts with nothing else waiting to be flushed, so its
        // `sync` (or the update's) writes only its own files.
        run(&mut Command::new("sync"));
        let started = Instant::now();
        run(Command::new("tar")
            .arg("xzf")
            .arg(&tarball)
            .arg("-C")
            .arg(&target));
        run(&mut Command::new("sync"));
        untar.push(started.elapsed());

        nginx.clear_log();
        run(&mut Command::new("sync"));
        let started = Instant::now();
        let report = sandbox
            .client_at(direct_root, ["update", "--yes", "--json"])
            .success()
            .json();
        update.push(started.elapsed());
        requests.0 = nginx.requests().len();
        assert_eq!(report["pack_from"], "1.0.0", "{report:#}");
        assert_same_tree(&direct_root.join("current"), &new);

        let before = proxy.delayed();
        run(&mut Command::new("sync"));
        let started = Instant::now();
        sandbox.client_at(far_root, ["update", "--yes"]).success();
        far.push(started.elapsed());
        requests.1 = proxy.delayed() - before;
        assert_same_tree(&far_root.join("current"), &new);
    }
    let (update, far, untar) = (best(&update), best(&far), best(&untar));
    println!();
    println!("| measure (best of {runs}) | value |");
    println!("|---|---:|");
    println!(
        "| `wavecast-update update`, 1,000 of 3,000 files changed ({} requests) | {:.2} s |",
        requests.0,
        update.as_secs_f64()
    );
    println!(
        "| `tar xzf` of the new tree's tar.gz + `sync` | {:.2} s |",
        untar.as_secs_f64()
    );
    println!(
        "| update / (tar xzf + sync) (target ≤ 1.0) | {:.2} |",
        update.as_secs_f64() / untar.as_secs_f64()
    );
    println!(
        "| the same update behind a proxy adding {} ms per request ({} requests) | {:.2} s |",
        DELAY.as_millis(),
        requests.1,
        far.as_secs_f64()
    );
    println!(
        "| time the far host adds (target ≤ 1 s) | {:.2} s |",
        far.saturating_sub(update).as_secs_f64()
    );
}

/// Publishes 100 small releases of one module to one channel and prints the size of
/// its signed manifest.
fn hundred_releases() {
    let sandbox = Sandbox::new();
    let release = sandbox.path("release");
    let started = Instant::now();
    for n in 1..=100 {
        write(
            &release,
            "bin/app",
            format!("#!/bin/sh\necho {n}\n").as_bytes(),
        );
        write(&release, "share/data.txt", &text(4_000, n));
        sandbox
            .publish(&release, &format!("1.{n}.0"), &["--quiet"])
            .success();
    }
    let envelope = sandbox.site().join("channels/stable.json");
    let size = std::fs::metadata(&envelope).unwrap().len();
    let jq = Command::new("jq")
        .args(["-e", ".manifest | fromjson | .releases | length"])
        .arg(&envelope)
        .output()
        .expect("run jq");
    let listed = String::from_utf8_lossy(&jq.stdout).trim().to_owned();
    assert!(jq.status.success() && listed == "100", "jq read {listed:?}");
    println!();
    println!(
        "100 releases published in {:.1} s; `jq` lists {listed} releases",
        started.elapsed().as_secs_f64()
    );
    println!();
    println!("| measure | value |");
    println!("|---|---:|");
    println!(
        "| signed manifest of 100 releases, `channels/stable.json` (target ≤ 32 KB) | {} bytes |",
        size
    );
    println!("| … per release | {} bytes |", size / 100);
}

/// Writes the first release's tree under `old` and the second under `new`; returns
/// the size of the first.
fn generate(old: &Path, new: &Path) -> u64 {
    let mut total = 0;
    for index in 0..FILES {
        let relative = format!("dir{:02}/sub{}/file{index:04}.dat", index % 40, index % 3);
        let size = 1_000 + (index * 7_919) % 39_000;
        // Two files in three are text-like (they compress), one is binary.
        let content = if index % 3 == 2 {
            pseudo_random(size, index as u64)
        } else {
            text(size, index)
        };
        total += content.len() as u64;
        write(old, &relative, &content);
        // Every third file changes: a few bytes in the middle.
        let content = if index % 3 == 0 && index / 3 < CHANGED {
            let mut edited = content;
            let middle = edited.len() / 2;
            edited[middle..middle + 6].copy_from_slice(b"EDITED");
            edited
        } else {
            content
        };
        write(new, &relative, &content);
    }
    total
}

/// `size` bytes of words, different for each `seed`.
fn text(size: usize, seed: usize) -> Vec<u8> {
    const WORDS: [&str; 12] = [
        "update", "release", "static", "site", "client", "manifest", "signed", "bytes", "patch",
        "module", "channel", "rollout",
    ];
    let noise = pseudo_random(size / 4 + 1, seed as u64 + 7);
    let mut out = Vec::with_capacity(size + 16);
    let mut n = 0;
    while out.len() < size {
        out.extend_from_slice(WORDS[usize::from(noise[n % noise.len()]) % WORDS.len()].as_bytes());
        out.push(if n % 11 == 10 { b'\n' } else { b' ' });
        n += 1;
    }
    out.truncate(size);
    out
}

fn write(root: &Path, relative: &str, content: &[u8]) {
    let path = root.join(relative);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

fn best(times: &[Duration]) -> Duration {
    times.iter().copied().min().unwrap_or_default()
}

fn run(command: &mut Command) {
    let status = command.status().expect("run a stock tool");
    assert!(status.success(), "{command:?} failed");
}
