//! The library's examples (`client/examples/`), built by `cargo build --examples`,
//! run as an application would run them: against nginx, on a root they create.

use std::process::{Command, Stdio};

use wavecast_tests::{Nginx, Run, Sandbox, assert_same_tree, binary, sample_release};

#[test]
fn the_check_and_install_example_initializes_installs_updates_and_stays_up_to_date() {
    let sandbox = Sandbox::new();
    let (r1, r2) = (
        sample_release(&sandbox.path("r1"), "1"),
        sample_release(&sandbox.path("r2"), "2"),
    );
    sandbox.publish(&r1, "1.0.0", &[]).success();
    let nginx = Nginx::serve(&sandbox.site());
    let root = sandbox.root();
    let url = nginx.url();
    let pubkey = sandbox.pubkey();
    let check_and_install = || {
        example(
            "check_and_install",
            &[root.as_os_str(), url.as_ref(), pubkey.as_os_str()],
        )
    };

    // The first run initializes the root with InitOptions' defaults, then installs.
    let first = check_and_install().success();
    assert!(
        first.stdout.starts_with("installed 1.0.0 ("),
        "{}",
        first.stdout
    );
    assert!(
        first.stderr.contains("installing 1.0.0"),
        "{}",
        first.stderr
    );
    assert_same_tree(&root.join("current"), &r1);
    let config = sandbox.client(["config", "--json"]).success().json();
    assert_eq!(config["channel"], "stable", "{config}");

    sandbox.publish(&r2, "2.0.0", &[]).success();
    let second = check_and_install().success();
    assert!(
        second.stdout.starts_with("installed 2.0.0 ("),
        "{}",
        second.stdout
    );
    assert_same_tree(&root.join("current"), &r2);
    assert_eq!(check_and_install().success().stdout, "up to date\n");

    // Another root pinned to a wrong key: `init` refuses the site with the library's
    // error and hint, and writes no configuration.
    let other = Sandbox::new();
    let refused = example(
        "check_and_install",
        &[
            other.root().as_os_str(),
            url.as_ref(),
            "RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3".as_ref(),
        ],
    );
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        refused.stderr.starts_with("error: ") && refused.stderr.contains("\nhint: "),
        "{}",
        refused.stderr
    );
    assert!(!other.root().join(".wavecast/config.json").exists());
}

#[test]
fn the_readme_shows_the_example_as_it_is() {
    let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let example =
        std::fs::read_to_string(workspace.join("client/examples/check_and_install.rs")).unwrap();
    let start = example
        .find("fn update(")
        .expect("the example has `fn update`");
    let end = start + example[start..].find("\n}\n").expect("`fn update` ends") + 3;
    let readme = std::fs::read_to_string(workspace.join("README.md")).unwrap();
    assert!(
        readme.contains(&format!("```rust\n{}```\n", &example[start..end])),
        "README.md's \"Embed the updater in an application\" no longer shows `fn update` of client/examples/check_and_install.rs as it is"
    );
}

/// A release whose `bin/app` prints its version and arguments, and `data` of
/// `data_bytes` random bytes.
fn app_release(dir: &std::path::Path, version: &str, data_bytes: usize) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let app = dir.join("bin/app");
    std::fs::create_dir_all(app.parent().unwrap()).unwrap();
    std::fs::write(&app, format!("#!/bin/sh\necho \"app {version} $*\"\n")).unwrap();
    std::fs::set_permissions(&app, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        dir.join("data"),
        wavecast_tests::pseudo_random(data_bytes, version.len() as u64),
    )
    .unwrap();
    dir.to_owned()
}

/// Runs the example `name` with `args`.
fn example(name: &str, args: &[&std::ffi::OsStr]) -> Run {
    let output = Command::new(binary(&format!("examples/{name}")))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run the example");
    Run::from_output(output)
}

#[test]
fn the_background_example_shows_progress_and_a_cancel_changes_nothing() {
    let sandbox = Sandbox::new();
    let r1 = app_release(&sandbox.path("r1"), "1.0.0", 1000);
    let r2 = app_release(&sandbox.path("r2"), "2.0.0", 8 << 20);
    sandbox.publish(&r1, "1.0.0", &[]).success();
    let nginx = Nginx::serve(&sandbox.site());
    let root = sandbox.root();
    sandbox.init_client(&nginx.url());
    sandbox.client(["update", "--yes"]).success();
    sandbox.publish(&r2, "2.0.0", &[]).success();

    // No patience at all: cancelled at once, and 1.0.0 stays.
    let cancelled = example("background_update", &[root.as_os_str(), "0".as_ref()]).success();
    assert_eq!(
        cancelled.stdout, "cancelled; nothing changed\n",
        "{}",
        cancelled.stderr
    );
    assert!(cancelled.stderr.contains("taking too long: cancelling"));
    assert_same_tree(&root.join("current"), &r1);
    assert!(
        sandbox.client(["status", "--json"]).success().json()["interrupted"].is_null(),
        "no install is left half done"
    );

    // Enough patience: progress to the end, then 2.0.0.
    let installed = example("background_update", &[root.as_os_str(), "120".as_ref()]).success();
    assert_eq!(
        installed.stdout, "installed 2.0.0\n",
        "{}",
        installed.stderr
    );
    let lines: Vec<&str> = installed.stderr.lines().collect();
    assert_eq!(lines[0], "checking: 0 of 0 bytes", "{}", installed.stderr);
    let downloading: Vec<&str> = lines
        .iter()
        .filter(|line| line.starts_with("downloading: "))
        .copied()
        .collect();
    assert!(downloading.len() > 2, "{}", installed.stderr);
    let last = downloading.last().unwrap();
    let total = last
        .rsplit(" of ")
        .next()
        .unwrap()
        .trim_end_matches(" bytes");
    assert_eq!(*last, format!("downloading: {total} of {total} bytes"));
    assert!(total.parse::<u64>().unwrap() > 1 << 20, "{last}");
    assert_same_tree(&root.join("current"), &r2);
}

#[test]
fn a_staged_release_is_applied_by_the_next_launch_and_by_apply() {
    let sandbox = Sandbox::new();
    let r1 = app_release(&sandbox.path("r1"), "1.0.0", 1000);
    let r2 = app_release(&sandbox.path("r2"), "2.0.0", 1000);
    let r3 = app_release(&sandbox.path("r3"), "3.0.0", 1000);
    sandbox.publish(&r1, "1.0.0", &[]).success();
    let nginx = Nginx::serve(&sandbox.site());
    let root = sandbox.root();
    sandbox.init_client(&nginx.url());
    sandbox.client(["update", "--yes"]).success();

    // The running app stages 2.0.0; `current` stays on 1.0.0.
    sandbox.publish(&r2, "2.0.0", &[]).success();
    let staged = example("staged_apply", &["stage".as_ref(), root.as_os_str()]).success();
    assert_eq!(staged.stdout, "staged 2.0.0: applied at the next start\n");
    assert_same_tree(&root.join("current"), &r1);

    // The launcher applies it, then becomes the new release's app.
    let launched = example(
        "staged_apply",
        &[
            "launch".as_ref(),
            root.as_os_str(),
            "bin/app".as_ref(),
            "hello".as_ref(),
        ],
    )
    .success();
    assert_eq!(launched.stdout, "app 2.0.0 hello\n", "{}", launched.stderr);
    assert_eq!(launched.stderr, "applied 2.0.0\n");
    assert_same_tree(&root.join("current"), &r2);
    let status = sandbox.client(["status", "--json"]).success().json();
    assert_eq!(status["unconfirmed_launches"], 1, "{status}");

    // The same from the command line: `update --stage`, then `apply`.
    sandbox.publish(&r3, "3.0.0", &[]).success();
    let stage = sandbox.client(["update", "--stage", "--yes"]).success();
    assert!(
        stage.stdout.starts_with("staged 3.0.0 in releases/3.0.0-"),
        "{}",
        stage.stdout
    );
    assert_same_tree(&root.join("current"), &r2);
    let status = sandbox.client(["status", "--json"]).success().json();
    assert_eq!(status["staged"]["version"], "3.0.0", "{status}");
    let apply = sandbox.client(["apply"]).success();
    assert!(
        apply
            .stdout
            .starts_with("applied 3.0.0 (was 2.0.0): current is releases/3.0.0-"),
        "{}",
        apply.stdout
    );
    assert_same_tree(&root.join("current"), &r3);
    let again = sandbox.client(["apply", "--json"]).success().json();
    assert_eq!(again["result"], "nothing_staged", "{again}");
}
