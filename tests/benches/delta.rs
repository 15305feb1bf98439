//! Differential updates on real consecutive releases, against the stock delta tools.
//!
//! ```text
//! cargo build --release --bins && cargo bench -p wavecast-tests --bench delta
//! ```
//!
//! For each pair of the corpus ([`wavecast_tests::corpus`]: `WAVECAST_CORPUS`, default
//! `../corpus` beside the workspace, fetched with `../shared/corpus/fetch.sh` when
//! missing): publish the old release, install it from a real nginx, publish the new
//! one (timed: the publish that builds the delta packs), then update the client
//! (timed) and count the response body bytes nginx sent for that update, split by
//! kind of file, and the requests after the manifest. The installed tree must be
//! identical to the new release; timings are printed, never asserted.
//!
//! Then the same update for a client further behind than the publisher's
//! `--patch-depth`: the new release is published again with `--patch-depth 0` (no
//! delta pack), so the client fetches the new file index and the files it lacks as
//! byte ranges of the copy pack.
//!
//! Baselines, on the files whose content changed or that are new (matched by path):
//! `zstd -19 --patch-from`, `bsdiff` and `xdelta3 -9`, the smallest per file summed as
//! "best per-file delta" (a new file counts as its `zstd -19` size in every column),
//! and the whole new tree as `tar czf` and as tar + `zstd -19`. The targets: total
//! bytes received at most the manifest + 1.05 × the best per-file delta + 2 KB for
//! typescript, the manifest + 1.0 × the best per-file delta for the other pairs; at
//! most 3 requests after the manifest with a pack, 6 without. Needs `nginx`, `zstd`,
//! `bsdiff` and `xdelta3`.
//!
//! With `WAVECAST_BASELINE_WAVECAST` set to another build of `wavecast` (say, the
//! previous release's), the same two publishes are timed with it too, and the ratio
//! of the publish times is printed.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use wavecast_tests::delta::{BlobClass, LoggingNginx, Served, bytes_by_class};
use wavecast_tests::{KEY_PASSWORD, Sandbox, assert_same_tree, corpus};

fn main() {
    for pair in corpus::pairs() {
        bench_pair(
            &pair.name,
            &pair.old,
            &pair.new,
            &pair.old_dir,
            &pair.new_dir,
        );
    }
}

/// What the client received for one update, and how long the timed steps took.
struct Measured {
    /// The update with a delta pack from the installed release.
    requests: Vec<Served>,
    /// The update of a client further behind than the patch depth (no pack).
    without_pack: Vec<Served>,
    publish: Duration,
    /// The same publish with `WAVECAST_BASELINE_WAVECAST`, when set.
    baseline_publish: Option<Duration>,
    apply: Duration,
}

fn bench_pair(name: &str, old: &str, new: &str, old_dir: &Path, new_dir: &Path) {
    eprintln!("{name} {old} → {new}: publishing and updating");
    let measured = publish_and_update(old, new, old_dir, new_dir);
    eprintln!("{name} {old} → {new}: stock delta tools");
    let baseline = Baseline::compute(old_dir, new_dir);
    print_table(name, old, new, &measured, &baseline);
}

/// The arguments of a publish of `dir` as `version` to the sandbox's site.
fn publish_args(sandbox: &Sandbox, site: &Path, dir: &Path, version: &str) -> Vec<OsString> {
    vec![
        "publish".into(),
        dir.into(),
        "--version".into(),
        version.into(),
        "--site".into(),
        site.into(),
        "--key".into(),
        sandbox.key().into(),
        "--quiet".into(),
    ]
}

fn publish_and_update(old: &str, new: &str, old_dir: &Path, new_dir: &Path) -> Measured {
    let sandbox = Sandbox::new();
    sandbox.publish(old_dir, old, &[]).success();
    let nginx = LoggingNginx::serve(&sandbox.site());
    sandbox.init_client(&nginx.url());
    sandbox.client(["update", "--yes"]).success();
    assert_same_tree(&sandbox.root().join("current"), old_dir);
    let behind = sandbox.path("behind");
    wavecast_tests::client::init_at(&sandbox, &behind, &nginx.url(), &[]);
    sandbox.client_at(&behind, ["update", "--yes"]).success();

    let started = Instant::now();
    sandbox
        .wavecast(
            publish_args(&sandbox, &sandbox.site(), new_dir, new),
            [""; 0],
        )
        .success();
    let publish = started.elapsed();
    let baseline_publish = std::env::var_os("WAVECAST_BASELINE_WAVECAST").map(|binary| {
        let site = sandbox.path("baseline-site");
        let publish = |dir: &Path, version: &str| {
            let mut command = Command::new(&binary);
            command
                .args(publish_args(&sandbox, &site, dir, version))
                .env("WAVECAST_KEY_PASSWORD", KEY_PASSWORD);
            run(&mut command);
        };
        publish(old_dir, old);
        let started = Instant::now();
        publish(new_dir, new);
        started.elapsed()
    });

    nginx.clear_log();
    let started = Instant::now();
    sandbox.client(["update", "--yes"]).success();
    let apply = started.elapsed();
    let requests = nginx.requests();
    assert_same_tree(&sandbox.root().join("current"), new_dir);

    sandbox
        .publish(new_dir, new, &["--force", "--patch-depth", "0"])
        .success();
    nginx.clear_log();
    sandbox.client_at(&behind, ["update", "--yes"]).success();
    let without_pack = nginx.requests();
    assert_same_tree(&behind.join("current"), new_dir);
    Measured {
        requests,
        without_pack,
        publish,
        baseline_publish,
        apply,
    }
}

/// The stock tools' sizes for one pair.
struct Baseline {
    new_files: usize,
    new_bytes: u64,
    changed: usize,
    added: usize,
    /// Per tool (`zstd`, `bsdiff`, `xdelta3`), summed over the changed files.
    per_tool: BTreeMap<&'static str, u64>,
    best: u64,
    /// The same with only the publisher's algorithms (zstd and bsdiff).
    best_of_published: u64,
    /// Which tool was smallest, per changed file.
    winners: BTreeMap<&'static str, usize>,
    tar_gz: u64,
    tar_zst: u64,
}

const TOOLS: [&str; 3] = ["zstd", "bsdiff", "xdelta3"];

impl Baseline {
    fn compute(old_dir: &Path, new_dir: &Path) -> Self {
        let work = tempfile::Builder::new()
            .prefix("wavecast-delta-baseline-")
            .tempdir()
            .unwrap();
        let out = work.path().join("out");
        let (old_files, new_files) = (regular_files(old_dir), regular_files(new_dir));
        let mut baseline = Self {
            new_files: new_files.len(),
            new_bytes: new_files
                .iter()
                .map(|path| std::fs::metadata(new_dir.join(path)).unwrap().len())
                .sum(),
            changed: 0,
            added: 0,
            per_tool: TOOLS.iter().map(|tool| (*tool, 0)).collect(),
            best: 0,
            best_of_published: 0,
            winners: BTreeMap::new(),
            tar_gz: 0,
            tar_zst: 0,
        };
        for path in &new_files {
            let new_file = new_dir.join(path);
            if !old_files.contains(path) {
                baseline.added += 1;
                baseline.changed += 1;
                run(Command::new("zstd")
                    .args(["-q", "-f", "-19"])
                    .arg(&new_file)
                    .arg("-o")
                    .arg(&out));
                let size = size_of(&out);
                baseline.per_tool.values_mut().for_each(|sum| *sum += size);
                baseline.best += size;
                baseline.best_of_published += size;
                *baseline.winners.entry("new: zstd -19").or_default() += 1;
                continue;
            }
            let old_file = old_dir.join(path);
            if std::fs::read(&old_file).unwrap() == std::fs::read(&new_file).unwrap() {
                continue;
            }
            baseline.changed += 1;
            let mut sizes = Vec::new();
            for tool in TOOLS {
                let mut command = match tool {
                    "zstd" => {
                        let mut command = Command::new("zstd");
                        command
                            .args(["-q", "-f", "-19"])
                            .arg(format!("--patch-from={}", old_file.display()))
                            .arg(&new_file)
                            .arg("-o")
                            .arg(&out);
                        command
                    }
                    "bsdiff" => {
                        let mut command = Command::new("bsdiff");
                        command.arg(&old_file).arg(&new_file).arg(&out);
                        command
                    }
                    _ => {
                        let mut command = Command::new("xdelta3");
                        command
                            .args(["-9", "-e", "-f", "-s"])
                            .arg(&old_file)
                            .arg(&new_file)
                            .arg(&out);
                        command
                    }
                };
                run(&mut command);
                let size = size_of(&out);
                *baseline.per_tool.get_mut(tool).unwrap() += size;
                sizes.push((size, tool));
            }
            baseline.best_of_published += sizes
                .iter()
                .filter(|(_, tool)| *tool != "xdelta3")
                .map(|(size, _)| *size)
                .min()
                .unwrap();
            let (size, tool) = sizes.into_iter().min().unwrap();
            baseline.best += size;
            *baseline.winners.entry(tool).or_default() += 1;
        }
        let tar = work.path().join("new.tar");
        run(Command::new("tar")
            .arg("czf")
            .arg(work.path().join("new.tar.gz"))
            .arg("-C")
            .arg(new_dir)
            .arg("."));
        baseline.tar_gz = size_of(&work.path().join("new.tar.gz"));
        run(Command::new("tar")
            .arg("cf")
            .arg(&tar)
            .arg("-C")
            .arg(new_dir)
            .arg("."));
        run(Command::new("zstd")
            .args(["-q", "-f", "-19"])
            .arg(&tar)
            .arg("-o")
            .arg(work.path().join("new.tar.zst")));
        baseline.tar_zst = size_of(&work.path().join("new.tar.zst"));
        baseline
    }
}

fn print_table(name: &str, old: &str, new: &str, measured: &Measured, baseline: &Baseline) {
    let by_class = bytes_by_class(&measured.requests);
    let class = |class: BlobClass| by_class.get(&class).copied().unwrap_or(0);
    let count = |wanted: BlobClass| {
        measured
            .requests
            .iter()
            .filter(|served| BlobClass::of(&served.path) == wanted)
            .count()
    };
    let total: u64 = by_class.values().sum();
    let manifest = class(BlobClass::Manifest);
    let content = total - manifest;
    let ratio = |bytes: u64| bytes as f64 / baseline.best.max(1) as f64;
    // typescript's target leaves room for its pack's header and document; the
    // larger pairs get none.
    let target = if name == "typescript" {
        manifest + (baseline.best as f64 * 1.05) as u64 + 2048
    } else {
        manifest + baseline.best
    };
    let without_pack: u64 = measured
        .without_pack
        .iter()
        .map(|served| served.body_bytes)
        .sum();
    let winners = baseline
        .winners
        .iter()
        .map(|(tool, n)| format!("{tool} ×{n}"))
        .collect::<Vec<_>>()
        .join(", ");

    println!();
    println!("### {name} {old} → {new}");
    println!();
    println!(
        "new tree: {} files, {} bytes; changed: {} files ({} new); smallest per file: {winners}",
        baseline.new_files,
        thousands(baseline.new_bytes),
        baseline.changed,
        baseline.added,
    );
    println!();
    println!("| measure | value |");
    println!("|---|---:|");
    println!(
        "| bytes received, total ({} requests) | {} |",
        measured.requests.len(),
        thousands(total)
    );
    for kind in BlobClass::ALL {
        if class(kind) == 0 && count(kind) == 0 {
            continue;
        }
        println!(
            "| … {} ({} requests) | {} |",
            kind.label(),
            count(kind),
            thousands(class(kind))
        );
    }
    println!(
        "| target: manifest + {} × best per-file delta{} | {} ({}) |",
        if name == "typescript" { "1.05" } else { "1.0" },
        if name == "typescript" { " + 2 KB" } else { "" },
        thousands(target),
        if total <= target { "met" } else { "missed" }
    );
    println!(
        "| requests after the manifest (target ≤ 3) | {} |",
        measured.requests.len().saturating_sub(1)
    );
    println!(
        "| client further behind (no pack): bytes received ({} requests after the manifest, target ≤ 6) | {} |",
        measured.without_pack.len().saturating_sub(1),
        thousands(without_pack)
    );
    println!(
        "| full tar.gz (`tar czf`) | {} |",
        thousands(baseline.tar_gz)
    );
    println!("| full tar.zst (-19) | {} |", thousands(baseline.tar_zst));
    println!("| best per-file delta | {} |", thousands(baseline.best));
    println!(
        "| … best of zstd and bsdiff (the publisher's algorithms) | {} |",
        thousands(baseline.best_of_published)
    );
    for (tool, label) in [
        ("zstd", "zstd -19 --patch-from"),
        ("bsdiff", "bsdiff"),
        ("xdelta3", "xdelta3 -9"),
    ] {
        println!("| … {label} | {} |", thousands(baseline.per_tool[tool]));
    }
    println!(
        "| received / best, with the manifest | {:.2} |",
        ratio(total)
    );
    println!(
        "| received / best, without the manifest | {:.2} |",
        ratio(content)
    );
    println!(
        "| received / full tar.gz | {:.4} |",
        total as f64 / baseline.tar_gz.max(1) as f64
    );
    println!(
        "| publish time with delta packs | {:.2} s |",
        measured.publish.as_secs_f64()
    );
    if let Some(before) = measured.baseline_publish {
        println!(
            "| … with `WAVECAST_BASELINE_WAVECAST` | {:.2} s (ratio {:.2}) |",
            before.as_secs_f64(),
            measured.publish.as_secs_f64() / before.as_secs_f64()
        );
    }
    println!(
        "| client apply time | {:.2} s |",
        measured.apply.as_secs_f64()
    );
}

/// Relative paths of the regular files under `root`.
fn regular_files(root: &Path) -> std::collections::BTreeSet<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut std::collections::BTreeSet<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let metadata = std::fs::symlink_metadata(&path).unwrap();
            if metadata.is_dir() {
                walk(root, &path, out);
            } else if metadata.is_file() {
                out.insert(path.strip_prefix(root).unwrap().to_owned());
            }
        }
    }
    let mut out = std::collections::BTreeSet::new();
    walk(root, root, &mut out);
    out
}

fn size_of(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
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

fn run(command: &mut Command) {
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("cannot run {command:?}: {error}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
