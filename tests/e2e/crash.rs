//! Crash safety, one updater at a time, and disk space: `update` killed with SIGKILL
//! at random instants, a held lock, a dead lock holder, and tmpfs file systems too
//! small for an update.
#![expect(
    clippy::print_stderr,
    reason = "the kill test prints its seed and where the kills landed"
)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use wavecast_tests::client::init_at;
use wavecast_tests::crash::{CrashRig, Landing, Rng, generated_release};
use wavecast_tests::disk::Tmpfs;
use wavecast_tests::{Sandbox, assert_same_tree, sample_release};

/// How many kills the test makes; the `crash` benchmark makes hundreds.
const KILLS: usize = 20;

#[test]
fn updates_killed_at_random_instants_leave_a_complete_release_and_recover() {
    let seed = Rng::seed_from_env("WAVECAST_CRASH_SEED");
    eprintln!("crash test seed: {seed} (set WAVECAST_CRASH_SEED={seed} to replay)");
    let mut rng = Rng::new(seed);
    let trees = tempfile::tempdir().unwrap();
    let (old, new) = (trees.path().join("old"), trees.path().join("new"));
    generated_release(&old, "old", 300, 150, 8 * 1024);
    generated_release(&new, "new", 300, 150, 8 * 1024);
    let rig = CrashRig::new(&old, &new);
    let duration = rig.time_install(2);
    eprintln!("an undisturbed update takes {duration:?}");

    let mut landings: BTreeMap<String, usize> = BTreeMap::new();
    let mut kills = 0;
    while kills < KILLS {
        rig.reset();
        // Every other trial kills the next run too, while it recovers.
        let in_a_row = 1 + usize::from(rng.next_u64().is_multiple_of(2));
        let mut landing = Landing::NoJournal { on_new: false };
        for _ in 0..in_a_row {
            let delay = rng.duration_below(duration);
            landing = rig.kill_after(delay).unwrap_or_else(|error| {
                panic!("seed {seed}, kill {kills} after {delay:?}: {error}")
            });
            kills += 1;
            *landings.entry(landing.to_string()).or_default() += 1;
        }
        rig.recover_and_finish(&landing)
            .unwrap_or_else(|error| panic!("seed {seed}, after kill {kills}: {error}"));
    }
    eprintln!("where {kills} kills landed: {landings:#?}");
    let inside: usize = landings
        .iter()
        .filter(|(landing, _)| landing.starts_with("journal"))
        .map(|(_, count)| count)
        .sum();
    assert!(
        inside > 0,
        "seed {seed}: no kill landed inside an install ({landings:?})"
    );
}

/// Takes the flock of `lock` in a shell that writes its pid into the file (as
/// `wavecast-update` does) and then sleeps: a stand-in for another updater at work.
fn hold_lock(lock: &Path) -> std::process::Child {
    let mut holder = Command::new("sh")
        .arg("-c")
        .arg(r#"exec 9>>"$1" && flock -x 9 && echo $$ > "$1" && echo locked && exec sleep 60"#)
        .arg("sh")
        .arg(lock)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(holder.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "locked\n", "the holder did not take the lock");
    holder
}

#[test]
fn a_second_updater_is_told_who_holds_the_lock_and_a_dead_holder_never_blocks() {
    let sandbox = Sandbox::new();
    let release = sample_release(&sandbox.path("release"), "1");
    sandbox.publish(&release, "1.0.0", &[]).success();
    sandbox.init_client(sandbox.site().to_str().unwrap());
    let lock = sandbox.root().join(".wavecast/lock");

    let mut holder = hold_lock(&lock);
    let refused = sandbox.client(["update", "--yes"]).code(1);
    assert!(
        refused.stderr.contains(&format!(
            "error: another wavecast-update (process {}) is working on this install root: `{}` is locked\n",
            holder.id(),
            lock.display()
        )),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains(
            "hint: wait for the other run to finish, or pass `--wait 60s` to wait for it"
        ),
        "{}",
        refused.stderr
    );
    assert!(!sandbox.root().join("current").exists());

    // A bounded wait gives up once its time is over, and says how long it waited.
    let started = Instant::now();
    let waited = sandbox.client(["check", "--wait", "1s"]).code(1);
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(
        waited.stderr.contains("is locked (waited 1s)"),
        "{}",
        waited.stderr
    );

    // A holder killed with SIGKILL takes its lock with it, although its pid stays
    // in the file: the next run goes ahead at once.
    holder.kill().unwrap();
    holder.wait().unwrap();
    sandbox.client(["update", "--yes"]).success();
    assert_same_tree(&sandbox.root().join("current"), &release);

    // A run that waits gets the lock as soon as the holder dies.
    let mut holder = hold_lock(&lock);
    let waiting = sandbox
        .command("wavecast-update")
        .args(["check", "--json", "--wait", "30s", "--root"])
        .arg(sandbox.root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    holder.kill().unwrap();
    holder.wait().unwrap();
    let output = waiting.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// `1.5 MiB`, as the client prints sizes.
fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
}

/// The names under `dir` that a finished install must not leave.
pub(crate) fn leftovers(root: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root.join("releases"))
        .unwrap()
        .chain(std::fs::read_dir(root).unwrap())
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(".staging-") || name.starts_with(".current.tmp-"))
        .collect();
    if root.join(".wavecast/journal.json").exists() {
        names.push("journal.json".into());
    }
    names
}

#[test]
fn an_update_too_big_for_the_disk_is_refused_with_the_numbers_before_it_downloads() {
    let sandbox = Sandbox::new();
    let disk = Tmpfs::mount("8m");
    let root = disk.path().join("app");
    let r1 = sample_release(&sandbox.path("r1"), "1");
    sandbox.publish(&r1, "1.0.0", &[]).success();
    init_at(&sandbox, &root, sandbox.site().to_str().unwrap(), &[]);
    sandbox.client_at(&root, ["update", "--yes"]).success();

    // 10 MiB of incompressible files: 10 MiB to download and 10 MiB unpacked.
    let r2 = sandbox.path("r2");
    generated_release(&r2, "2", 10, 0, 1 << 20);
    sandbox.publish(&r2, "2.0.0", &[]).success();
    let unpacked: u64 = wavecast_tests::delta::document(&sandbox, "2.0.0")
        .modules
        .values()
        .map(|module| module.unpacked_size)
        .sum();
    let refused = sandbox.client_at(&root, ["update", "--yes"]).code(1);
    let line = refused.stderr.lines().next().unwrap_or_default().to_owned();
    let prefix = format!(
        "error: not enough free space on `{}`: need ",
        root.display()
    );
    assert!(line.starts_with(&prefix), "{}", refused.stderr);
    // `need T (D download + U unpacked + M margin), F free`
    let figures = &line[prefix.len()..];
    let (total, rest) = figures.split_once(" (").unwrap();
    let (parts, free) = rest.split_once("), ").unwrap();
    let parts: Vec<&str> = parts.split(" + ").collect();
    assert_eq!(parts.len(), 3, "{line}");
    assert!(parts[0].ends_with(" MiB download"), "{line}");
    let download: f64 = parts[0].split(' ').next().unwrap().parse().unwrap();
    assert!((10.0..10.5).contains(&download), "{line}");
    assert_eq!(parts[1], format!("{} unpacked", mib(unpacked)), "{line}");
    assert!(parts[2].ends_with(" margin"), "{line}");
    let total: f64 = total.strip_suffix(" MiB").unwrap().parse().unwrap();
    assert!(total > 20.0, "{line}");
    let free: f64 = free.strip_suffix(" MiB free").unwrap().parse().unwrap();
    assert!(free > 6.0 && free < 8.0, "{line}");
    assert!(
        refused
            .stderr
            .contains("hint: free some space on that file system"),
        "{}",
        refused.stderr
    );

    // Nothing was downloaded but the release's document (a few hundred bytes, kept
    // for the next try), and nothing changed.
    assert_same_tree(&root.join("current"), &r1);
    let cached: Vec<String> = std::fs::read_dir(root.join(".wavecast/cache"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let manifest = sandbox.manifest("stable");
    let document = &manifest
        .release(&"2.0.0".parse().unwrap())
        .unwrap()
        .platforms["any"];
    assert_eq!(cached, [document.blake3.to_string()]);
    assert!(leftovers(&root).is_empty(), "{:?}", leftovers(&root));
}

#[test]
fn a_disk_that_fills_up_mid_install_leaves_the_installed_release_working() {
    let sandbox = Sandbox::new();
    let disk = Tmpfs::mount("4m");
    let root = disk.path().join("app");
    let r1 = sample_release(&sandbox.path("r1"), "1");
    sandbox.publish(&r1, "1.0.0", &[]).success();
    init_at(&sandbox, &root, sandbox.site().to_str().unwrap(), &[]);
    sandbox.client_at(&root, ["update", "--yes"]).success();

    // 2,000 files of 100 bytes: 200 KB to the free-space check, which counts bytes,
    // but a 4 KiB page each on tmpfs, 8 MB in all: the download fits, the tree not.
    let r2 = sandbox.path("r2");
    generated_release(&r2, "2", 2_000, 0, 100);
    sandbox.publish(&r2, "2.0.0", &[]).success();
    let failed = sandbox.client_at(&root, ["update", "--yes"]).code(1);
    assert!(
        failed
            .stderr
            .contains("caused by: No space left on device (os error 28)"),
        "{}",
        failed.stderr
    );
    assert!(
        failed.stderr.contains(
            "hint: the file system is full and `current` still points to a complete release"
        ),
        "{}",
        failed.stderr
    );
    assert_same_tree(&root.join("current"), &r1);
    let status = sandbox
        .client_at(&root, ["status", "--json"])
        .success()
        .json();
    assert_eq!(status["current"], "1.0.0", "{status}");

    // The next run (any that takes the lock) leaves nothing of the failed install.
    sandbox.client_at(&root, ["check"]).success();
    assert!(leftovers(&root).is_empty(), "{:?}", leftovers(&root));
    assert_eq!(
        std::fs::read_dir(root.join("releases")).unwrap().count(),
        1,
        "only 1.0.0's tree"
    );
    assert_same_tree(&root.join("current"), &r1);

    // With room, the same update goes through.
    disk.resize("64m");
    sandbox.client_at(&root, ["update", "--yes"]).success();
    assert_same_tree(&root.join("current"), &r2);
    assert!(leftovers(&root).is_empty(), "{:?}", leftovers(&root));
}
