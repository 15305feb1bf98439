//! Rollout figures: bucket uniformity, a simulated ramp over a million clients, and the
//! cost of one decision on a huge manifest.
//!
//! ```text
//! cargo bench -p wavecast-tests --bench rollout
//! ```
//!
//! Prints, without asserting timings:
//! 1. the share of 1,000,000 pseudo-random install ids inside each threshold, against
//!    the expected share (target: within ±0.1 percentage point);
//! 2. a 3-day linear ramp polled every 6 hours by 1,000,000 simulated clients: how long
//!    the simulation takes, how many clients were admitted at one poll and not at a
//!    later one (must be 0), and the peak and mean installs per hour (target: peak/mean
//!    at most 1.5);
//! 3. `decide` on a manifest with 1,000 releases and 100 rules (all on the release
//!    rolling out, or one on each of the newest 100), for clients that match late or
//!    not at all: median and 99th percentile (target: below 1 ms). A stress row puts
//!    as many rules on every release as the largest manifest clients accept holds
//!    (16 MiB signed, `MANIFEST_SIZE_LIMIT`), to show how the cost scales. Each
//!    manifest is parsed first, as a client does, which checks its limits.
//!
//! `WAVECAST_BENCH_CLIENTS` changes the fleet size of 1 and 2 (default 1,000,000).
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use semver::Version;
use wavecast_schema::{
    Attributes, BasisPoints, Blake3Hash, ClientView, Envelope, FORMAT_VERSION, Fleet, InstallId,
    MANIFEST_SIZE_LIMIT, Manifest, Mode, Outcome, Platform, Release, RolloutPlan, Rule, Salt,
    Share, SimulationPlan, bucket, decide, simulate,
};

const START: &str = "2026-11-21T00:00:00Z";

fn main() {
    let clients: u32 = std::env::var("WAVECAST_BENCH_CLIENTS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(1_000_000);
    bucket_uniformity(clients);
    ramp_simulation(clients);
    decision_time();
}

/// The id of synthetic client `n`: 32 hex digits, like a real install id.
fn install_id(n: u64) -> InstallId {
    blake3::hash(&n.to_le_bytes()).to_hex()[..32]
        .parse()
        .expect("hex is a valid install id")
}

fn bucket_uniformity(clients: u32) {
    let salt: Salt = "c0ffee00c0ffee00c0ffee00c0ffee00".parse().unwrap();
    let started = Instant::now();
    let mut counts = vec![0u32; 10_000];
    for n in 0..u64::from(clients) {
        counts[usize::from(bucket(&install_id(n), &salt))] += 1;
    }
    let elapsed = started.elapsed();
    // Inside at threshold t: bucket < t, i.e. the sum of counts below t.
    let mut below = vec![0u64; 10_001];
    for (index, count) in counts.iter().enumerate() {
        below[index + 1] = below[index] + u64::from(*count);
    }
    println!(
        "## 1. Bucket uniformity: {clients} ids ({:.0} ns per bucket)\n",
        elapsed.as_nanos() as f64 / f64::from(clients)
    );
    println!("| threshold | expected | measured | deviation (pp) |");
    println!("|---:|---:|---:|---:|");
    let mut worst: f64 = 0.0;
    for threshold in [
        "0.01%", "0.1%", "1%", "5%", "10%", "25%", "50%", "75%", "99.9%",
    ] {
        let basis_points: BasisPoints = threshold.parse().unwrap();
        let expected = basis_points.percent();
        let measured = below[usize::from(basis_points.get())] as f64 * 100.0 / f64::from(clients);
        let deviation = measured - expected;
        worst = worst.max(deviation.abs());
        println!("| {threshold} | {expected:.2}% | {measured:.4}% | {deviation:+.4} |");
    }
    println!(
        "\nmax deviation: {worst:.4} percentage points (target ±0.1): {}\n",
        if worst <= 0.1 { "ok" } else { "MISSED" }
    );
}

fn ramp_simulation(clients: u32) {
    let start: Timestamp = START.parse().unwrap();
    let mut ramped = release("1.1.0", Share::ramped("3d".parse().unwrap()));
    ramped.rollout.started_at = Some(start);
    let manifest = manifest(vec![
        release("1.0.0", Share::fixed(BasisPoints::ALL)),
        ramped,
    ]);
    let fleet = Fleet::new(clients, Some(Version::new(1, 0, 0)));
    let plan = SimulationPlan::for_manifest(&manifest, 6 * 3600);
    plan.validate().unwrap();
    let started = Instant::now();
    let simulation = simulate(&manifest, &fleet, &plan);
    let simulated_in = started.elapsed();

    // Admission of 1.1.0 for a client still on 1.0.0, at each poll, straight from
    // `decide`: once admitted, a client must stay admitted at every later poll.
    let started = Instant::now();
    let polls = (plan.end.as_second() - plan.start.as_second()) / 21_600 + 2;
    let dropped = count_dropped(&manifest, &fleet, &plan, polls);
    let checked_in = started.elapsed();

    let new = &simulation.versions[1];
    let moved_back = simulation.versions[0].installed;
    println!(
        "## 2. 3-day linear ramp, 6 h polls, {clients} simulated clients ({} to {})\n",
        plan.start, plan.end
    );
    println!(
        "simulation: {:.2} s ({} decisions replayed for {polls} polls per client in {:.2} s to check drops)",
        simulated_in.as_secs_f64(),
        u64::from(clients) * polls as u64,
        checked_in.as_secs_f64()
    );
    println!("| figure | value |");
    println!("|---|---:|");
    println!("| clients admitted, then not admitted at a later poll | {dropped} |");
    println!("| clients moved back to 1.0.0 | {moved_back} |");
    println!(
        "| on 1.1.0 at the end | {} ({:.2}%) |",
        new.clients.last().unwrap(),
        simulation.share_percent(1, simulation.sample_times.len() - 1)
    );
    println!("| peak installs per hour | {:.0} |", new.peak_per_hour);
    println!("| mean installs per hour | {:.0} |", new.mean_per_hour);
    let ratio = new.peak_to_mean().unwrap_or(f64::NAN);
    println!(
        "| peak / mean (target ≤ 1.5) | {ratio:.3} {} |",
        if ratio <= 1.5 { "ok" } else { "MISSED" }
    );
    println!("\nshare on 1.1.0 every 12 h:");
    let step = simulation.step_seconds;
    for (sample, at) in simulation.sample_times.iter().enumerate() {
        if (sample as u64 * step).is_multiple_of(12 * 3600) {
            println!("  {at}  {:6.2}%", simulation.share_percent(1, sample));
        }
    }
    println!();
}

/// Clients admitted at one poll and not at a later one, over `polls` polls from each
/// client's phase, on two threads.
fn count_dropped(manifest: &Manifest, fleet: &Fleet, plan: &SimulationPlan, polls: i64) -> u64 {
    let threads = 2u32;
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|thread| {
                scope.spawn(move || {
                    let none = Attributes::new();
                    let from = Version::new(1, 0, 0);
                    let mut dropped = 0u64;
                    for index in (thread..fleet.clients).step_by(threads as usize) {
                        let client = fleet.client(index, plan.poll_seconds);
                        let view = ClientView {
                            install_id: &client.install_id,
                            platform: &fleet.platform,
                            current: Some(&from),
                            attributes: &none,
                            pin: None,
                        };
                        let mut was_in = false;
                        for poll in 0..polls {
                            let at = plan.start.as_second()
                                + client.phase_seconds as i64
                                + poll * plan.poll_seconds as i64;
                            let now = Timestamp::from_second(at).unwrap();
                            let is_in = decide(manifest, &view, now, Mode::Scheduled).outcome
                                == Outcome::Update;
                            if was_in && !is_in {
                                dropped += 1;
                                break;
                            }
                            was_in = is_in;
                        }
                    }
                    dropped
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| worker.join().unwrap())
            .sum()
    })
}

fn decision_time() {
    let platform: Platform = "any".parse().unwrap();
    let now: Timestamp = "2026-11-22T12:00:00Z".parse().unwrap();
    println!("## 3. decide on 1,000 releases\n");
    println!("| manifest | client | outcome | median | p99 | max |");
    println!("|---|---|---|---:|---:|---:|");
    // Matches the last rule of every rule list (attributes and version range checked by
    // all of them), or matches none.
    let late: Attributes = [
        ("region".to_owned(), "region-99".to_owned()),
        ("tenant".to_owned(), "tenant-99".to_owned()),
        ("user_id".to_owned(), "1234567".to_owned()),
    ]
    .into();
    let nobody: Attributes = [
        ("region".to_owned(), "mars".to_owned()),
        ("user_id".to_owned(), "x".to_owned()),
    ]
    .into();
    let stress = largest_rules_per_release();
    let shapes: [(String, &RulesPerRelease); 3] = [
        ("100 rules on the newest release".into(), &|index| {
            if index == 999 { 100 } else { 0 }
        }),
        (
            "100 rules, one on each of the newest 100".into(),
            &|index| u64::from(index >= 900),
        ),
        (
            format!(
                "stress, the largest manifest clients accept: {stress} rules on every release ({})",
                stress * 1000
            ),
            &move |_| stress,
        ),
    ];
    let mut parsed = Vec::new();
    for (shape, rules_per_release) in shapes {
        let manifest = huge_manifest(rules_per_release);
        let text = manifest.to_json();
        let started = Instant::now();
        Manifest::parse(&text).expect("clients accept the manifest");
        parsed.push(format!(
            "- {shape}: {:.1} MiB signed, parsed in {:.1} ms",
            signed_size(&text) as f64 / f64::from(1 << 20),
            started.elapsed().as_secs_f64() * 1e3
        ));
        let oldest = Version::new(1, 0, 0);
        let behind = manifest.releases[1].version.clone();
        let clients: [(&str, Option<&Version>, &Attributes); 4] = [
            (
                "on the oldest, matching the last rule",
                Some(&oldest),
                &late,
            ),
            ("on the oldest, matching no rule", Some(&oldest), &nobody),
            ("fresh install, matching no rule", None, &nobody),
            (
                "one release behind, matching the last rule",
                Some(&behind),
                &late,
            ),
        ];
        for (name, current, attributes) in clients {
            let mut times = Vec::with_capacity(2_000);
            let mut outcome = Outcome::UpToDate;
            for n in 0..2_000u64 {
                let id = install_id(n);
                let view = ClientView {
                    install_id: &id,
                    platform: &platform,
                    current,
                    attributes,
                    pin: None,
                };
                let started = Instant::now();
                let decision = decide(&manifest, &view, now, Mode::Scheduled);
                times.push(started.elapsed());
                outcome = std::hint::black_box(decision).outcome;
            }
            times.sort();
            let at = |quantile: f64| times[((times.len() - 1) as f64 * quantile) as usize];
            println!(
                "| {shape} | {name} | {} | {} | {} | {} |",
                outcome.as_str(),
                micros(at(0.5)),
                micros(at(0.99)),
                micros(*times.last().unwrap())
            );
        }
    }
    println!("\ntarget: below 1 ms on a manifest with 1,000 releases and 100 rules");
    println!("\neach manifest, signed, and parsed as a client parses it (limits checked):");
    for line in parsed {
        println!("{line}");
    }
}

/// How many of the rules release number `index` carries.
type RulesPerRelease = dyn Fn(u64) -> u64;

/// The bytes of `text` signed once, as clients fetch it.
fn signed_size(text: &[u8]) -> u64 {
    let pair = minisign::KeyPair::generate_unencrypted_keypair().unwrap();
    let signature = minisign::sign(
        Some(&pair.pk),
        &pair.sk,
        std::io::Cursor::new(text),
        Some("wavecast manifest product=bench channel=stable serial=1"),
        None,
    )
    .unwrap()
    .to_string();
    let text = String::from_utf8(text.to_vec()).unwrap();
    Envelope::new(text, vec![signature]).to_json().len() as u64
}

/// The most rules every one of the 1,000 releases can carry with the manifest
/// still within [`MANIFEST_SIZE_LIMIT`] signed.
fn largest_rules_per_release() -> u64 {
    let size = |rules: u64| signed_size(&huge_manifest(&move |_| rules).to_json());
    let (empty, full) = (size(0), size(100));
    let mut rules = (MANIFEST_SIZE_LIMIT - empty) * 100 / (full - empty);
    while size(rules) > MANIFEST_SIZE_LIMIT {
        rules -= 1;
    }
    rules.min(100)
}

fn micros(duration: Duration) -> String {
    format!("{:.1} µs", duration.as_secs_f64() * 1e6)
}

/// 1,000 releases (`1.0.0` to `1.999.0`); release `index` carries the last
/// `rules_per_release(index)` of 100 rules (up to 100) mixing version ranges,
/// attribute values, sets, prefixes and patterns (8 distinct ones in all). Only rule 99 matches the "late" client, and excludes
/// it, so `decide` judges every release; the default share is a slow ramp (about
/// 0.05 % at decision time), so a client matching no rule is also judged by nearly
/// every release.
fn huge_manifest(rules_per_release: &RulesPerRelease) -> Manifest {
    let releases = (0..1000u64)
        .map(|index| {
            let mut release = release(
                &format!("1.{index}.0"),
                Share::ramped("0%@0h,1%@30d".parse().unwrap()),
            );
            release.rollout.started_at = Some(START.parse().unwrap());
            release.rollout.rules = (100 - rules_per_release(index)..100)
                .map(|rule| {
                    let text = match rule % 4 {
                        _ if rule == 99 => "r99: from >= 1.0; region = region-99; tenant in tenant-99|tenant-98; user_id ~ [0-9]{1,7} -> exclude".to_owned(),
                        0 => format!("r{rule}: from >= 0.{rule}; from < 0.{}; region = region-{rule} -> mandatory", rule + 1),
                        1 => format!("r{rule}: tenant in tenant-{rule}|acme-{rule}; from < 1.{index} -> 20%"),
                        2 => format!("r{rule}: server_id ^= lab-{rule}- -> exclude"),
                        _ => format!("r{rule}: region = region-99; user_id ~ 9[0-9]{{{}}} -> 2d", rule % 7 + 1),
                    };
                    text.parse::<Rule>().unwrap()
                })
                .collect();
            release
        })
        .collect();
    manifest(releases)
}

fn release(version: &str, share: Share) -> Release {
    let hash = Blake3Hash::of(version.as_bytes());
    let mut rollout = RolloutPlan::fixed(hash.as_str()[..32].parse().unwrap(), share.basis_points);
    rollout.share = share;
    Release {
        version: version.parse().unwrap(),
        published_at: START.parse().unwrap(),
        notes: String::new(),
        platforms: BTreeMap::from([(
            "any".parse().unwrap(),
            wavecast_schema::Blob {
                size: 1000,
                blake3: hash,
            },
        )]),
        rollout,
    }
}

fn manifest(releases: Vec<Release>) -> Manifest {
    let mut manifest = Manifest {
        format: FORMAT_VERSION,
        product: "bench".into(),
        channel: "stable".parse().unwrap(),
        serial: 1,
        published_at: START.parse().unwrap(),
        expires_at: "2027-01-01T00:00:00Z".parse().unwrap(),
        min_client_version: Version::new(0, 1, 0),
        root_version: 1,
        download_hosts: Vec::new(),
        updater: BTreeMap::new(),
        releases,
    };
    manifest.sort_releases();
    manifest
        .validate()
        .expect("the benchmark manifest is valid");
    manifest
}
