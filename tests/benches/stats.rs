//! `wavecast stats` on a large access log: parsing speed and peak memory.
//!
//! ```text
//! cargo build --release --bin wavecast && cargo bench -p wavecast-tests --bench stats
//! ```
//!
//! Publishes a small site with three releases, writes a synthetic nginx `combined`
//! log of its traffic (200,000 clients polling over 30 days, some installing fresh
//! or updating by delta pack), then runs the real `wavecast stats --json` on it
//! under GNU time. Prints, without asserting timings: lines and bytes read, wall
//! time, lines per second, and peak memory, for the whole log and for a quarter of
//! it, so that memory can be seen not to grow with the log's length.
//!
//! `WAVECAST_BENCH_LOG_MB` sets the log's size (default 1024, 1 GiB).
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use wavecast_tests::{Sandbox, binary, sample_release};

/// Distinct clients in the log.
const CLIENTS: u64 = 200_000;

fn main() {
    let megabytes: u64 = std::env::var("WAVECAST_BENCH_LOG_MB")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(1024);
    let sandbox = Sandbox::new();
    for (version, variant) in [("1.0.0", "a"), ("1.1.0", "b"), ("1.2.0", "c")] {
        let release = sample_release(&sandbox.path(&format!("release-{version}")), variant);
        sandbox.publish(&release, version, &[]).success();
    }
    let blobs = Blobs::of(&sandbox.site());
    let full = sandbox.path("access.log");
    let quarter = sandbox.path("access-quarter.log");
    let started = Instant::now();
    let lines = write_log(&full, &blobs, megabytes << 20);
    write_log(&quarter, &blobs, (megabytes << 20) / 4);
    println!(
        "wrote a {} MiB log of {lines} lines in {:.1}s",
        std::fs::metadata(&full).unwrap().len() >> 20,
        started.elapsed().as_secs_f64()
    );
    for log in [&quarter, &full] {
        measure(&sandbox, log);
    }
}

/// The site paths the log asks for.
struct Blobs {
    documents: Vec<String>,
    packages: Vec<String>,
    indexes: Vec<String>,
    packs: Vec<String>,
}

impl Blobs {
    fn of(site: &Path) -> Self {
        let mut blobs = Self {
            documents: Vec::new(),
            packages: Vec::new(),
            indexes: Vec::new(),
            packs: Vec::new(),
        };
        for entry in std::fs::read_dir(site.join("blobs")).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            let path = format!("/blobs/{name}");
            if name.ends_with(".json.zst") {
                blobs.indexes.push(path);
            } else if name.ends_with(".json") {
                blobs.documents.push(path);
            } else if name.ends_with(".tar.gz") {
                blobs.packages.push(path);
            } else if name.ends_with(".pack") {
                blobs.packs.push(path);
            }
        }
        blobs
    }
}

/// Writes a combined log of at least `size` bytes; returns its lines.
fn write_log(path: &Path, blobs: &Blobs, size: u64) -> u64 {
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap());
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut random = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut written, mut lines) = (0u64, 0u64);
    let start = 1_796_083_200i64; // 2026-12-01T00:00:00Z
    let span = 30 * 86_400;
    while written < size {
        let client = random() % CLIENTS;
        let time = start + i64::try_from(lines * span / (size / 190).max(1)).unwrap_or(0);
        let address = format!(
            "10.{}.{}.{}",
            client >> 16,
            (client >> 8) & 255,
            client & 255
        );
        let agent = if client.is_multiple_of(7) {
            "wavecast-update/0.1.0 (aarch64-apple-darwin)"
        } else {
            "wavecast-update/0.1.0"
        };
        let pick =
            |list: &[String], n: u64| list[usize::try_from(n % list.len() as u64).unwrap()].clone();
        let mut requests = vec![(
            "/channels/stable.json".to_owned(),
            if random().is_multiple_of(4) { 200 } else { 304 },
            1843,
        )];
        if random().is_multiple_of(20) {
            requests.push((pick(&blobs.documents, random()), 200, 900));
            requests.push((pick(&blobs.indexes, random()), 200, 300));
            if random().is_multiple_of(2) && !blobs.packs.is_empty() {
                requests.push((pick(&blobs.packs, random()), 200, 20_000));
            } else {
                requests.push((pick(&blobs.packages, random()), 200, 40_000));
            }
        }
        for (path, status, bytes) in requests {
            let stamp = jiff::Timestamp::from_second(time).unwrap();
            let line = format!(
                "{address} - - [{}] \"GET {path} HTTP/1.1\" {status} {bytes} \"-\" \"{agent}\"\n",
                stamp.strftime("%d/%b/%Y:%H:%M:%S +0000")
            );
            out.write_all(line.as_bytes()).unwrap();
            written += line.len() as u64;
            lines += 1;
        }
    }
    out.flush().unwrap();
    lines
}

/// Runs `wavecast stats --json` on `log` under GNU time and prints its figures.
fn measure(sandbox: &Sandbox, log: &Path) {
    let report = sandbox.path("time.txt");
    let output = Command::new("/usr/bin/time")
        .args(["--format", "%M %e", "--output"])
        .arg(&report)
        .arg(binary("wavecast"))
        .args(["stats", "--json", "--bucket", "1d", "--site"])
        .arg(sandbox.site())
        .arg(log)
        .output()
        .expect("run /usr/bin/time (apt-get install time)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let time = std::fs::read_to_string(&report).unwrap();
    let mut fields = time.split_whitespace();
    let peak_kib: u64 = fields.next().unwrap().parse().unwrap();
    let wall: f64 = fields.next().unwrap().parse().unwrap();
    let lines = json["read"]["lines"].as_u64().unwrap();
    let bytes = json["read"]["bytes"].as_u64().unwrap();
    let seconds = json["read"]["seconds"].as_f64().unwrap();
    let totals = &json["channels"][0]["totals"];
    println!(
        "{}: {lines} lines, {} MiB: read in {seconds:.2}s ({:.0} lines/s, {:.0} MiB/s), {wall:.2}s wall in all, peak memory {} MiB; {} active clients, {} installs",
        log.file_name().unwrap().to_string_lossy(),
        bytes >> 20,
        lines as f64 / seconds,
        (bytes >> 20) as f64 / seconds,
        peak_kib >> 10,
        totals["active_clients"],
        totals["installs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|count| count["count"].as_u64().unwrap())
            .sum::<u64>()
    );
}
