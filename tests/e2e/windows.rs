//! The Windows builds under Wine: the Linux publisher publishes, a real nginx serves,
//! and `wavecast-update.exe` installs, updates through a delta pack, reverts a
//! release whose health check fails (run by `cmd`), rolls back, recovers from a kill
//! and replaces its own running `.exe`; `wavecast.exe` publishes a site the Linux
//! `verify` accepts. `bash scripts/windows.sh` builds
//! the `.exe` files (the test command runs it); Wine runs them from a prefix of the
//! test's own, whose server is stopped at the end.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;
use wavecast_tests::self_update::{NEXT_CLIENT_VERSION, publish_updater};
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

    /// The build `name` (`wavecast-update.exe`, `wavecast.exe`).
    fn build(&self, name: &str) -> PathBuf {
        self.builds.join(name)
    }

    /// The newer `wavecast-update.exe` (it reports 0.99.0) that `scripts/windows.sh`
    /// builds in `<target>/next/`.
    fn next_client(&self) -> PathBuf {
        let target = self
            .builds
            .ancestors()
            .nth(2)
            .expect("<target>/<triple>/debug");
        let next = target.join("next/x86_64-pc-windows-gnu/debug/wavecast-update.exe");
        assert!(
            next.is_file(),
            "the newer Windows client `{}` is missing: run `bash scripts/windows.sh` first",
            next.display()
        );
        next
    }

    /// A command running `exe` under Wine, in the test's environment.
    fn command(&self, exe: &Path) -> Command {
        let mut command = Command::new(WINE);
        command
            .arg(exe)
            .env("WINEPREFIX", &self.prefix)
            .env("WINEDEBUG", "-all")
            // Where the ProcessPrng stand-in is found by any `.exe`, as a system DLL
            // is on Windows (PATH is searched for DLLs): self-update runs the new
            // build from a staging folder before it takes the old one's place.
            .env("WINEPATH", windows_path(&self.builds))
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
        self.client_at(&self.build("wavecast-update.exe"), root, args)
    }

    /// `exe args --root root`, where `exe` is a copy of a client.
    fn client_at(&self, exe: &Path, root: &Path, args: &[&str]) -> Run {
        let output = self
            .command(exe)
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
    // A file whose installed path is longer than Windows' classic 260-character
    // limit (std prefixes such paths with `\\?\`).
    let deep =
        Path::new("deep").join(["a-folder-name-of-fifty-characters-for-a-long-path"; 5].join("/"));
    let long_file = deep.join("and-a-file-at-the-end.txt");
    std::fs::create_dir_all(r2.join(&deep)).unwrap();
    std::fs::write(r2.join(&long_file), b"far down").unwrap();
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
    let installed_long = windows_path(&current_dir(&root).join(&long_file));
    assert!(installed_long.len() > 260, "{installed_long}");

    // The health check (run by `cmd` in a job object) is a second `update` of the
    // same root: the lock refuses it while the first holds it, so the check fails
    // and 3.0.0 is switched back to 2.0.0.
    sandbox.publish(&r3, "3.0.0", &[]).success();
    let nested = format!(
        "{} update --yes --root {}",
        windows_path(&wine.build("wavecast-update.exe")),
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
        .command(&wine.build("wavecast-update.exe"))
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
            wine.command(&wine.build("wavecast.exe"))
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

#[test]
fn the_running_windows_client_replaces_its_own_exe_then_installs_the_release() {
    let sandbox = Sandbox::new();
    let wine = Wine::new(&sandbox);
    let (r1, r2) = (
        sample_release(&sandbox.path("r1"), "1"),
        sample_release(&sandbox.path("r2"), "2"),
    );
    sandbox.publish(&r1, "1.0.0", &[]).success();
    let nginx = Nginx::serve(&sandbox.site());

    // The installed client: a copy of the build, which a self-update may replace.
    let bin = sandbox.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let exe = bin.join("wavecast-update.exe");
    std::fs::copy(wine.build("wavecast-update.exe"), &exe).unwrap();
    let version = |exe: &Path| {
        let run = Run::from_output(wine.command(exe).arg("--version").output().unwrap());
        run.success().stdout.trim().to_owned()
    };
    let old = version(&exe);
    let old_number = old.strip_prefix("wavecast-update ").unwrap().to_owned();
    let root = sandbox.path("windows-client");
    let pubkey = sandbox.pubkey();
    let init = [
        "init",
        "--url",
        &nginx.url(),
        "--pubkey",
        pubkey.to_str().unwrap(),
    ];
    wine.client_at(&exe, &root, &init).success();
    wine.client_at(&exe, &root, &["update", "--yes"]).success();

    // 2.0.0 needs the newer client, which is published as the Windows updater.
    publish_updater(
        &sandbox,
        &wine.next_client(),
        NEXT_CLIENT_VERSION,
        "x86_64-pc-windows-gnu",
        &[],
    )
    .success();
    sandbox
        .publish(&r2, "2.0.0", &["--min-client-version", NEXT_CLIENT_VERSION])
        .success();

    // The running .exe renames itself aside, the new one takes its name, runs as a
    // child with the same arguments and installs 2.0.0.
    let update = wine.client_at(&exe, &root, &["update", "--yes"]).success();
    let old_kept = bin.join("wavecast-update.exe.old");
    let stderr: Vec<&str> = update.stderr.lines().collect();
    assert_eq!(
        stderr[..2],
        [
            format!(
                "wavecast-update {old_number} is older than the {NEXT_CLIENT_VERSION} channel `stable` needs: updating itself to {NEXT_CLIENT_VERSION} first"
            ),
            format!(
                "updated wavecast-update {old_number} -> {NEXT_CLIENT_VERSION} (`{}`; the old executable is kept as `{}`); restarting it",
                windows_path(&exe),
                windows_path(&old_kept)
            ),
        ],
        "{}",
        update.stderr
    );
    assert_eq!(stderr.len(), 2, "{}", update.stderr);
    // The child's result, on the stdout the parent handed it.
    assert!(
        update
            .stdout
            .starts_with("installed 2.0.0 (was 1.0.0) in releases/2.0.0-"),
        "{}",
        update.stdout
    );
    assert_same_content(&current_dir(&root), &r2);
    assert_eq!(
        version(&exe),
        format!("wavecast-update {NEXT_CLIENT_VERSION}")
    );
    assert_eq!(version(&old_kept), old);
    assert_eq!(
        crate::self_update::names(&bin),
        ["wavecast-update.exe", "wavecast-update.exe.old"],
        "the staging folder is gone"
    );

    // Up to date now: the replaced client only checks.
    let check: Value = wine
        .client_at(&exe, &root, &["check", "--json"])
        .success()
        .json();
    assert_eq!(check["decision"], "up_to_date", "{check}");
    assert_eq!(check["client"]["version"], NEXT_CLIENT_VERSION, "{check}");
}
