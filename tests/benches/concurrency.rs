//! Many clients updating at once from one nginx on loopback.
//!
//! ```text
//! cargo build --release --bins && cargo bench -p wavecast-tests --bench concurrency
//! ```
//!
//! Publishes a release of about 300 files, starts `WAVECAST_BENCH_CLIENTS` (default
//! 1,000) `wavecast-update update --yes` processes at the same instant, each with its
//! own install root, and waits for all of them; then publishes the next release (a
//! tenth of the files changed) and does it again. For each round it prints how many
//! clients succeeded, the wall time, the per-client times, and what nginx sent
//! (requests and body bytes, from its access log). Every client's tree is checked
//! against the published release. Exits non-zero unless every client succeeded.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use wavecast_tests::{KEY_PASSWORD, Nginx, binary, pseudo_random, scratch_dir};

const FILES: usize = 300;

fn main() {
    let clients: usize = std::env::var("WAVECAST_BENCH_CLIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000);
    // nginx's workers run as www-data: they must be able to enter the folder.
    let work = scratch_dir();
    let (v1, v2) = (work.path().join("v1"), work.path().join("v2"));
    let bytes = generate_tree(&v1, 0);
    generate_tree(&v2, 1);
    println!(
        "release: {FILES} files, {:.1} MB; next release changes every tenth file",
        bytes as f64 / 1e6
    );
    run(Command::new(binary("wavecast"))
        .args(["keygen", "--out"])
        .arg(work.path().join("keys")));
    let site = work.path().join("site");
    publish(work.path(), &v1, "1.0.0");
    let nginx = Nginx::serve_logged(&site);

    let roots: Vec<PathBuf> = (0..clients)
        .map(|i| work.path().join(format!("clients/{i}")))
        .collect();
    let pubkey = work.path().join("keys/wavecast.pub");
    let pubkey = pubkey.to_str().unwrap();
    let started = Instant::now();
    for batch in roots.chunks(64) {
        let children: Vec<Child> = batch
            .iter()
            .map(|root| {
                client(root, &["init", "--url", &nginx.url(), "--pubkey", pubkey])
                    .spawn()
                    .unwrap()
            })
            .collect();
        for mut child in children {
            assert!(child.wait().unwrap().success(), "init failed");
        }
    }
    println!("initialized {clients} clients in {:.1?}", started.elapsed());

    println!();
    println!(
        "{:<22} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10} {:>12} {:>11}",
        "round", "clients", "ok", "wall", "p50", "max", "requests", "sent (MB)", "KB/client"
    );
    let mut all_ok = true;
    all_ok &= round("fresh install 1.0.0", &roots, &nginx, &v1, work.path());
    publish(work.path(), &v2, "2.0.0");
    all_ok &= round("update 1.0.0 -> 2.0.0", &roots, &nginx, &v2, work.path());
    if !all_ok {
        eprintln!(
            "some clients failed; their output is in {}",
            work.path().display()
        );
        let _ = work.keep();
        std::process::exit(1);
    }
}

/// Starts every client's `update --yes` at once, waits for all, prints one row, and
/// checks each tree against `release`. Returns whether every client succeeded.
fn round(name: &str, roots: &[PathBuf], nginx: &Nginx, release: &Path, work: &Path) -> bool {
    let log_before = std::fs::read_to_string(nginx.access_log())
        .unwrap_or_default()
        .lines()
        .count();
    let logs = work.join("logs").join(name.replace(' ', "_"));
    std::fs::create_dir_all(&logs).unwrap();
    let started = Instant::now();
    let children: Vec<(Instant, Child)> = roots
        .iter()
        .enumerate()
        .map(|(i, root)| {
            let out = File::create(logs.join(format!("{i}.log"))).unwrap();
            let err = out.try_clone().unwrap();
            let child = client(root, &["update", "--yes"])
                .stdout(Stdio::from(out))
                .stderr(Stdio::from(err))
                .spawn()
                .unwrap();
            (Instant::now(), child)
        })
        .collect();
    let mut times = Vec::with_capacity(children.len());
    let mut ok = 0;
    for (spawned, mut child) in children {
        if child.wait().unwrap().success() {
            ok += 1;
        }
        times.push(spawned.elapsed());
    }
    let wall = started.elapsed();
    times.sort();
    let log = std::fs::read_to_string(nginx.access_log()).unwrap();
    let (requests, sent) =
        log.lines()
            .skip(log_before)
            .fold((0u64, 0u64), |(requests, sent), line| {
                let bytes = line
                    .split(' ')
                    .nth(1)
                    .and_then(|field| field.parse::<u64>().ok())
                    .unwrap_or(0);
                (requests + 1, sent + bytes)
            });
    let trees_match = roots
        .iter()
        .all(|root| same_files(&root.join("current"), release));
    println!(
        "{:<22} {:>9} {:>9} {:>8.1}s {:>8.2}s {:>8.2}s {:>10} {:>12.1} {:>11.1}",
        name,
        roots.len(),
        ok,
        wall.as_secs_f64(),
        percentile(&times, 50).as_secs_f64(),
        times.last().copied().unwrap_or_default().as_secs_f64(),
        requests,
        sent as f64 / 1e6,
        sent as f64 / 1e3 / roots.len() as f64,
    );
    if !trees_match {
        eprintln!("{name}: some installed trees differ from the release");
    }
    ok == roots.len() && trees_match
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted
        .get(sorted.len().saturating_sub(1) * p / 100)
        .copied()
        .unwrap_or_default()
}

/// Whether every file of `release` is in `installed` with the same bytes.
fn same_files(installed: &Path, release: &Path) -> bool {
    (0..FILES).all(|i| {
        let name = file_name(i);
        std::fs::read(installed.join(&name)).ok() == std::fs::read(release.join(&name)).ok()
    })
}

/// `wavecast-update ARGS --root ROOT`, with output discarded unless redirected.
fn client(root: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(binary("wavecast-update"));
    command
        .args(args)
        .arg("--root")
        .arg(root)
        .env("WAVECAST_NO_PROGRESS", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

fn publish(work: &Path, release: &Path, version: &str) {
    run(Command::new(binary("wavecast"))
        .arg("publish")
        .arg(release)
        .args(["--version", version, "--site"])
        .arg(work.join("site"))
        .arg("--key")
        .arg(work.join("keys/wavecast.key")));
}

fn file_name(i: usize) -> String {
    format!("dir{}/file{i}.bin", i % 10)
}

/// Writes the release tree; `variant` 1 changes every tenth file. Returns its size.
fn generate_tree(dir: &Path, variant: u64) -> u64 {
    let mut total = 0;
    for i in 0..FILES {
        let path = dir.join(file_name(i));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let seed = if i % 10 == 0 {
            i as u64 + variant * 1_000_003
        } else {
            i as u64
        };
        let content = pseudo_random(4_000 + (i % 7) * 2_000, seed);
        total += content.len() as u64;
        std::fs::write(path, content).unwrap();
    }
    total
}

fn run(command: &mut Command) {
    let output = command
        .env("WAVECAST_KEY_PASSWORD", KEY_PASSWORD)
        .env("WAVECAST_NO_PROGRESS", "1")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{:?} failed: {}",
        command,
        String::from_utf8_lossy(&output.stderr)
    );
}
