//! Crash safety under fire: `wavecast-update update --yes` killed with SIGKILL at
//! random instants, hundreds of times.
//!
//! ```text
//! cargo build --release --bins && cargo bench -p wavecast-tests --bench crash
//! ```
//!
//! Two releases of 3,000 files (8 KiB each, half of them shared, about 25 MB) are
//! published to a folder site; 1.0.0 is installed in a template root. The benchmark
//! times an undisturbed update to 1.1.0 (and `--full`, which unpacks the package)
//! against `tar xf` of 1.1.0's package (tar.zst). Then every trial copies the
//! template, starts the update, kills it after a random delay (seeded;
//! `WAVECAST_CRASH_SEED` replays a run) and checks what it left: `current` is a
//! tree identical to 1.0.0 or 1.1.0, `state.json` parses. A quarter of the trials
//! also kill the next run, while it recovers. Then `status` must report the
//! journal's step and `update --yes` must recover and end on 1.1.0 with nothing left
//! behind. A kill is survived when all of that holds.
//!
//! `WAVECAST_CRASH_KILLS` (default 200) kills land uniformly in [0, T) where T is the
//! undisturbed update's median time. The commit steps at the end (`promote` to
//! `prune`) take milliseconds of it, so few of those kills land there; the
//! `WAVECAST_CRASH_STEP_KILLS` (default 100) kills that follow are each sent as soon
//! as the journal (polled) names a randomly chosen step. Prints "kills survived: N/M",
//! where the kills landed (the journal step found after the kill, or none) and what
//! the next update did about it.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use wavecast_tests::crash::{CrashRig, Landing, Rng, generated_release};

const FILES: usize = 3_000;
const FILE_SIZE: usize = 8 * 1024;

/// Kills in one phase, by where they landed, and the recoveries that followed.
#[derive(Default)]
struct Tally {
    kills: usize,
    survived: usize,
    landed: BTreeMap<Landing, usize>,
    recoveries: BTreeMap<String, usize>,
    failures: Vec<String>,
}

fn main() {
    let kills: usize = env_number("WAVECAST_CRASH_KILLS", 200);
    let triggered_kills: usize = env_number("WAVECAST_CRASH_STEP_KILLS", 100);
    let seed = Rng::seed_from_env("WAVECAST_CRASH_SEED");
    let mut rng = Rng::new(seed);

    let trees = tempfile::Builder::new()
        .prefix("wavecast-crash-")
        .tempdir()
        .unwrap();
    let (old, new) = (trees.path().join("old"), trees.path().join("new"));
    generated_release(&old, "old", FILES, FILES / 2, FILE_SIZE);
    generated_release(&new, "new", FILES, FILES / 2, FILE_SIZE);
    let rig = CrashRig::new(&old, &new);
    let package = package_of(&rig, "1.1.0");
    println!(
        "releases: {FILES} files of {} KiB each ({} shared), {:.1} MB; 1.1.0's package {:.1} MB",
        FILE_SIZE / 1024,
        FILES / 2,
        (FILES * FILE_SIZE) as f64 / 1e6,
        std::fs::metadata(&package).unwrap().len() as f64 / 1e6
    );

    let install = rig.time_install(5);
    let full = rig.time_install_with(5, &["--full"]);
    let tar = time_tar_xf(&package, trees.path(), 5);
    println!("| step (median of 5) | time |");
    println!("|---|---:|");
    println!(
        "| `update --yes` 1.0.0 → 1.1.0 (differential) | {:.3} s |",
        install.as_secs_f64()
    );
    println!(
        "| `update --yes --full` (the package) | {:.3} s |",
        full.as_secs_f64()
    );
    println!(
        "| `tar xf` of the same package (tar.zst) | {:.3} s |",
        tar.as_secs_f64()
    );
    println!();
    println!("seed: {seed} (WAVECAST_CRASH_SEED={seed} replays the delays)");

    let started = Instant::now();
    let uniform = run_phase(&rig, &mut rng, kills, &mut |rig, rng| {
        let delay = rng.duration_below(install);
        (format!("after {delay:?}"), rig.kill_after(delay))
    });
    let steps = ["build", "promote", "record", "switch", "prune"];
    let triggered = run_phase(&rig, &mut rng, triggered_kills, &mut |rig, rng| {
        let step = steps[(rng.next_u64() % steps.len() as u64) as usize];
        (format!("at `{step}`"), rig.kill_at_step(step))
    });
    let elapsed = started.elapsed();

    let total = uniform.kills + triggered.kills;
    let survived = uniform.survived + triggered.survived;
    println!(
        "kills survived: {survived}/{total} (in {:.0} s)",
        elapsed.as_secs_f64()
    );
    report(
        &format!("at uniform delays in [0, {:.3} s)", install.as_secs_f64()),
        &uniform,
    );
    report("as soon as the journal named a random step", &triggered);
    if survived != total {
        std::process::exit(1);
    }
}

/// One kill: a description and what [`CrashRig`] found after it.
type Kill<'a> = dyn FnMut(&CrashRig, &mut Rng) -> (String, Result<Landing, String>) + 'a;

/// Makes `kills` kills with `kill`, in trials of one kill or (a quarter of them) two,
/// each followed by the recovering update.
fn run_phase(rig: &CrashRig, rng: &mut Rng, kills: usize, kill: &mut Kill<'_>) -> Tally {
    let mut tally = Tally::default();
    while tally.kills < kills {
        rig.reset();
        let in_a_row = if rng.next_u64().is_multiple_of(4) {
            2
        } else {
            1
        };
        let mut last = None;
        for _ in 0..in_a_row.min(kills - tally.kills) {
            tally.kills += 1;
            let (how, found) = kill(rig, rng);
            match found {
                Ok(landing) => {
                    *tally.landed.entry(landing.clone()).or_default() += 1;
                    last = Some(landing);
                    tally.survived += 1;
                }
                Err(error) => {
                    tally.failures.push(format!("kill {how}: {error}"));
                    last = None;
                    break;
                }
            }
        }
        let Some(landing) = last else { continue };
        match rig.recover_and_finish(&landing) {
            Ok(line) => {
                let recovery = match line {
                    Some(line) if line.starts_with("finished") => "finished",
                    Some(_) => "undone",
                    None => "nothing to recover",
                };
                *tally
                    .recoveries
                    .entry(format!("{landing} → {recovery}"))
                    .or_default() += 1;
            }
            Err(error) => {
                // The kill's state did not recover: it was not survived.
                tally.survived -= 1;
                tally
                    .failures
                    .push(format!("recovery after {landing}: {error}"));
            }
        }
    }
    tally
}

fn report(phase: &str, tally: &Tally) {
    println!();
    println!("{phase}: {}/{} survived", tally.survived, tally.kills);
    println!("| where the kill landed | kills |");
    println!("|---|---:|");
    for (landing, count) in &tally.landed {
        println!("| {landing} | {count} |");
    }
    println!("| the last kill of a trial → what the next update did | trials |");
    println!("|---|---:|");
    for (recovery, count) in &tally.recoveries {
        println!("| {recovery} | {count} |");
    }
    for failure in tally.failures.iter().take(10) {
        println!("FAILED: {failure}");
    }
}

/// The package of the only module of `version` on the rig's site.
fn package_of(rig: &CrashRig, version: &str) -> std::path::PathBuf {
    let document = wavecast_tests::delta::document(&rig.sandbox, version);
    let module = document.modules.values().next().unwrap();
    rig.sandbox
        .site()
        .join(wavecast_tests::delta::package_path(module))
}

/// The median of `runs` `tar xf package` (tar.zst or tar.gz, which GNU tar tells
/// apart) into a fresh folder under `work`, flushed to disk as the client flushes its
/// tree.
fn time_tar_xf(package: &Path, work: &Path, runs: usize) -> Duration {
    let into = work.join("tar-xf");
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let _ = std::fs::remove_dir_all(&into);
            std::fs::create_dir_all(&into).unwrap();
            let status = Command::new("sync").arg("-f").arg(work).status().unwrap();
            assert!(status.success());
            let started = Instant::now();
            let status = Command::new("tar")
                .arg("xf")
                .arg(package)
                .arg("-C")
                .arg(&into)
                .status()
                .unwrap();
            assert!(status.success());
            let status = Command::new("sync").arg("-f").arg(&into).status().unwrap();
            assert!(status.success());
            started.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}
