//! The Windows builds under Wine: the Linux publisher publishes, a real nginx serves,
//! and `wavecast-update.exe` installs, updates through a delta pack, reverts a
//! release whose health check fails (run by `cmd`) and rolls back; `wavecast.exe`
//! publishes a site the Linux `verify` accepts. `bash scripts/windows.sh` builds
//! the `.exe` files (the test command runs it); Wine runs them from a prefix of the
//! test's own, whose server is stopped at the end.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;
use wavecast_tests::{KEY_PASSWORD, Nginx, Run, Sandbox, sample_release};

/// The Wine loader of Debian's `wine64`.
const WINE: &str = "/usr/lib/wine/wine64";
/// Its server, stopped when a test ends.
const WINESERVER: &str = "/usr/lib/wine/wineserver64";

/// Runs the Windows builds in a Wine prefix of its own; stops its server on drop.
struct Wine {
    prefix: PathBuf,
    builds: PathBuf,
}

impl Wine {
    fn new(sandbox: &Sandbox) -> Self {
        let test_exe = std::env::current_exe().unwrap();
        let builds = test_exe
            .ancestors()
            .map(|dir| dir.join("x86_64-pc-windows-gnu/debug"))
            .find(|dir| dir.join("wavecast-update.exe").is_file())
            .expect("the Windows builds are missing: run `bash scripts/windows.sh` first");
        assert!(
            builds.join("bcryptprimitives.dll").is_file(),
            "the ProcessPrng stand-in is missing: run `bash scripts/windows.sh` first"
        );
        Self {
            prefix: sandbox.path("wine"),
            builds,
        }
    }

    fn command(&self, exe: &str) -> Command {
        let mut command = Command::new(WINE);
        command
            .arg(self.builds.join(exe))
            .env("WINEPREFIX", &self.prefix)
            .env("WINEDEBUG", "-all")
            .env("WAVECAST_NO_PROGRESS", "1")
            .env("WAVECAST_KEY_PASSWORD", KEY_PASSWORD)
            .stdin(Stdio::null());
        command
    }

    /// `wavecast-update.exe init` of `root` against `url`, trusting `pubkey`.
    fn init(&self, root: &Path, url: &str, pubkey: &Path) {
        let pubkey = pubkey.to_str().unwrap();
        self.client(root, &["init", "--url", url, "--pubkey", pubkey])
            .success();
    }

    /// `wavecast-update.exe args --root root`.
    fn client(&self, root: &Path, args: &[&str]) -> Run {
        let output = self
            .command("wavecast-update.exe")
            .args(args)
            .arg("--root")
            .arg(root)
            .output()
            .expect("run wine");
        Run::from_output(output)
    }
}

impl Drop for Wine {
    fn drop(&mut self) {
        let _ = Command::new(WINESERVER)
            .arg("-k")
            .env("WINEPREFIX", &self.prefix)
            .status();
        let _ = Command::new(WINESERVER)
            .arg("-w")
            .env("WINEPREFIX", &self.prefix)
            .status();
    }
}

/// `path` as Windows programs under Wine see it: on drive `Z:`, which is `/`.
fn windows_path(path: &Path) -> String {
    format!("Z:{}", path.display()).replace('/', "\\")
}

/// The release directory `ROOT/current` names: on Windows a small file holding
/// `releases/<dir>`.
#[track_caller]
fn current_dir(root: &Path) -> PathBuf {
    let text = std::fs::read_to_string(root.join("current")).unwrap();
    let dir = text
        .trim_end()
        .strip_prefix("releases/")
        .unwrap_or_else(|| panic!("`current` holds {text:?}"));
    root.join("releases").join(dir)
}

/// Every regular file under `published` is under `installed` with the same bytes,
/// and nothing else is (Windows keeps no mode bits to compare).
#[track_caller]
fn assert_same_content(installed: &Path, published: &Path) {
    fn files(root: &Path, dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files(root, &path, out);
            } else {
                let relative = path.strip_prefix(root).unwrap().to_owned();
                out.push((relative, std::fs::read(&path).unwrap()));
            }
        }
    }
    let (mut found, mut expected) = (Vec::new(), Vec::new());
    files(installed, installed, &mut found);
    files(published, published, &mut expected);
    found.sort();
    expected.sort();
    let names = |list: &[(PathBuf, Vec<u8>)]| -> Vec<PathBuf> {
        list.iter().map(|(path, _)| path.clone()).collect()
    };
    assert_eq!(names(&found), names(&expected));
    assert!(found == expected, "a file's content differs");
}

#[test]
fn the_windows_client_installs_updates_reverts_and_rolls_back_under_wine() {
    let sandbox = Sandbox::new();
    let wine = Wine::new(&sandbox);
    let (r1, r2, r3) = (
        sample_release(&sandbox.path("r1"), "1"),
        sample_release(&sandbox.path("r2"), "2"),
        sample_release(&sandbox.path("r3"), "3"),
    );
    sandbox.publish(&r1, "1.0.0", &[]).success();
    let nginx = Nginx::serve(&sandbox.site());
    let root = sandbox.path("windows-client");
    wine.init(&root, &nginx.url(), &sandbox.pubkey());

    let check: Value = wine.client(&root, &["check", "--json"]).success().json();
    assert_eq!(check["decision"], "update", "{check}");
    assert_eq!(
        check["client"]["platform"], "x86_64-pc-windows-gnu",
        "{check}"
    );

    // A fresh install: the document and the package.
    let installed = wine
        .client(&root, &["update", "--yes", "--json"])
        .success()
        .json();
    assert_eq!(installed["installed"], "1.0.0", "{installed}");
    assert_same_content(&current_dir(&root), &r1);

    // A differential update through the delta pack from 1.0.0.
    sandbox.publish(&r2, "2.0.0", &[]).success();
    let updated = wine
        .client(&root, &["update", "--yes", "--json"])
        .success()
        .json();
    assert_eq!(updated["installed"], "2.0.0", "{updated}");
    assert_eq!(updated["pack_from"], "1.0.0", "{updated}");
    assert_same_content(&current_dir(&root), &r2);

    // The health check (run by `cmd` in a job object) is a second `update` of the
    // same root: the lock refuses it while the first holds it, so the check fails
    // and 3.0.0 is switched back to 2.0.0.
    sandbox.publish(&r3, "3.0.0", &[]).success();
    let nested = format!(
        "{} update --yes --root {}",
        windows_path(&wine.builds.join("wavecast-update.exe")),
        windows_path(&root)
    );
    let reverted = wine.client(&root, &["update", "--yes", "--health-check", &nested]);
    assert_eq!(reverted.code, 1, "{}", reverted.stderr);
    assert!(
        reverted.stderr.contains("is locked") && reverted.stderr.contains("status 1"),
        "{}",
        reverted.stderr
    );
    assert_same_content(&current_dir(&root), &r2);
    let status: Value = wine.client(&root, &["status", "--json"]).success().json();
    assert_eq!(status["current"], "2.0.0", "{status}");
    assert_eq!(status["bad_releases"][0]["version"], "3.0.0", "{status}");

    // Rolling back returns to the release before.
    wine.client(&root, &["rollback"]).success();
    assert_same_content(&current_dir(&root), &r1);
}

#[test]
fn a_windows_install_killed_mid_way_is_finished_or_undone_by_the_next_run() {
    let sandbox = Sandbox::new();
    let wine = Wine::new(&sandbox);
    let (r1, r2) = (sandbox.path("r1"), sandbox.path("r2"));
    for (dir, seed) in [(&r1, 1), (&r2, 2)] {
        for n in 0..300 {
            let path = dir.join(format!("data/{:02}/{n:03}.bin", n % 30));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, wavecast_tests::pseudo_random(8_000, seed * 1000 + n)).unwrap();
        }
    }
    sandbox.publish(&r1, "1.0.0", &[]).success();
    let nginx = Nginx::serve(&sandbox.site());
    let root = sandbox.path("windows-client");
    wine.init(&root, &nginx.url(), &sandbox.pubkey());
    wine.client(&root, &["update", "--yes"]).success();
    sandbox
        .publish(&r2, "2.0.0", &["--patch-depth", "0"])
        .success();

    // Killed (SIGKILL to the Wine process: no clean-up runs) as soon as the journal
    // names a step.
    let mut update = wine
        .command("wavecast-update.exe")
        .args(["update", "--yes", "--root"])
        .arg(&root)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run wine");
    let journal = root.join(".wavecast/journal.json");
    let started = std::time::Instant::now();
    while !journal.exists() && started.elapsed() < std::time::Duration::from_secs(60) {
        if update.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let _ = update.kill();
    update.wait().unwrap();
    // Whatever the instant, `current` names a complete release.
    let current = current_dir(&root);
    let tree = if current.to_string_lossy().contains("/2.0.0-") {
        &r2
    } else {
        &r1
    };
    assert_same_content(&current, tree);

    // The next run finishes or undoes it, then installs 2.0.0, leaving nothing behind.
    wine.client(&root, &["update", "--yes"]).success();
    assert_same_content(&current_dir(&root), &r2);
    let leftovers = crate::crash::leftovers(&root);
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn the_windows_publisher_writes_a_site_the_linux_tools_verify_and_install() {
    let sandbox = Sandbox::new();
    let wine = Wine::new(&sandbox);
    let release = sample_release(&sandbox.path("release"), "1");
    let (keys, site) = (sandbox.path("win-keys"), sandbox.path("win-site"));
    let run = |args: &[&std::ffi::OsStr]| {
        Run::from_output(
            wine.command("wavecast.exe")
                .args(args)
                .output()
                .expect("run wine"),
        )
    };
    run(&["keygen".as_ref(), "--out".as_ref(), keys.as_os_str()]).success();
    run(&[
        "publish".as_ref(),
        release.as_os_str(),
        "--version".as_ref(),
        "1.0.0".as_ref(),
        "--site".as_ref(),
        site.as_os_str(),
        "--key".as_ref(),
        keys.join("wavecast.key").as_os_str(),
    ])
    .success();
    sandbox
        .wavecast(
            ["verify"],
            [
                site.as_os_str(),
                "--pubkey".as_ref(),
                keys.join("wavecast.pub").as_os_str(),
            ],
        )
        .success();
}
