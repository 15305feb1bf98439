//! The permission model, for real: a root that root initializes and updates, shared
//! with the application's group, where the application's own unprivileged user
//! confirms and counts launches; the same root without a group, and on a read-only
//! file system, where every command that cannot work says which file and what to do,
//! and the installed release keeps running. These tests run as root, as CI does.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use wavecast_tests::client::{APP_GROUP_ID, APP_USER, client_as, init_at};
use wavecast_tests::disk::Tmpfs;
use wavecast_tests::{Sandbox, assert_same_tree, sample_release};

fn require_root() {
    assert!(
        rustix::process::geteuid().is_root(),
        "run the tests as root: they run commands as `nobody` with `setpriv`"
    );
}

/// Publishes release `version` of the sample app.
fn publish(sandbox: &Sandbox, version: &str) -> PathBuf {
    let tree = sample_release(&sandbox.path(&format!("release-{version}")), version);
    sandbox.publish(&tree, version, &[]).success();
    tree
}

/// A root at the sandbox's client path, initialized by root (with `init_args`) from
/// the site folder, with 1.0.0 installed and confirmed, then 1.1.0 installed: on
/// trial. Returns 1.1.0's tree.
fn on_trial(sandbox: &Sandbox, init_args: &[&str]) -> PathBuf {
    publish(sandbox, "1.0.0");
    init_at(
        sandbox,
        &sandbox.root(),
        sandbox.site().to_str().unwrap(),
        init_args,
    );
    sandbox.client(["update", "--yes"]).success();
    sandbox.client(["confirm"]).success();
    let tree = publish(sandbox, "1.1.0");
    sandbox.client(["update", "--yes"]).success();
    tree
}

/// What the application at `root/current` prints.
fn run_app(root: &Path) -> String {
    let output = std::process::Command::new(root.join("current/bin/app"))
        .output()
        .unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stdout).unwrap()
}

/// Asserts the mode bits (setgid included), owner and group of `path`.
#[track_caller]
fn assert_access(path: &Path, mode: u32, uid: u32, gid: u32) {
    let meta = std::fs::metadata(path).unwrap();
    assert_eq!(
        (
            format!("{:04o}", meta.permissions().mode() & 0o7777),
            meta.uid(),
            meta.gid()
        ),
        (format!("{mode:04o}"), uid, gid),
        "{}",
        path.display()
    );
}

#[test]
fn the_application_user_confirms_and_counts_launches_on_a_root_shared_with_its_group() {
    require_root();
    let sandbox = Sandbox::new();
    let second = on_trial(&sandbox, &["--group", "nogroup"]);
    let meta = sandbox.root().join(".wavecast");
    let group = APP_GROUP_ID;
    assert_access(&meta, 0o2750, 0, group);
    assert_access(&meta.join("shared"), 0o2770, 0, group);
    for file in ["config.json", "state.json"] {
        assert_access(&meta.join(file), 0o640, 0, group);
    }
    assert_access(&meta.join("lock"), 0o660, 0, group);
    assert_access(&meta.join("shared/trial.json"), 0o660, 0, group);
    let config = sandbox.client(["config", "--json"]).success().json();
    assert_eq!(config["group"], "nogroup", "{config}");
    let config = sandbox.client(["config"]).success();
    assert!(
        config
            .stdout
            .contains("group: nogroup (its members may run confirm, launched and status)"),
        "{}",
        config.stdout
    );

    // The application's user counts a launch, reads the status and confirms.
    let launched = client_as(&sandbox, &APP_USER, &["launched"]).success();
    launched.assert_stdout("1.1.0 is not confirmed yet: launch 1 of at most 3");
    let status = client_as(&sandbox, &APP_USER, &["status", "--json"])
        .success()
        .json();
    assert_eq!(status["confirmed"], false, "{status}");
    assert_eq!(status["unconfirmed_launches"], 1);
    let confirmed = client_as(&sandbox, &APP_USER, &["confirm"]).success();
    confirmed.assert_stdout("confirmed 1.1.0 after 1 launch(es): it is kept");
    assert_access(&meta.join("shared/trial.json"), 0o660, 65534, group);
    let status = sandbox.client(["status", "--json"]).success().json();
    assert_eq!(status["confirmed"], true, "{status}");
    assert_same_tree(&sandbox.root().join("current"), &second);

    // It may not do the owner's work, and is told so before anything is fetched.
    let update = client_as(&sandbox, &APP_USER, &["update", "--yes"]).code(1);
    update.assert_stderr(&format!(
        "error: this user may not write in `{}`",
        meta.display()
    ));
    update.assert_stderr("caused by: Permission denied");
    update.assert_stderr(&format!(
        "hint: only the owner of `{}` (the user that ran `init`)",
        meta.display()
    ));

    // Root's own writes keep the group's modes: the trial file it writes again, the
    // state, the configuration.
    let third = publish(&sandbox, "1.2.0");
    sandbox
        .client(["config", "--max-unconfirmed-launches", "1"])
        .success();
    sandbox.client(["update", "--yes"]).success();
    for file in ["config.json", "state.json"] {
        assert_access(&meta.join(file), 0o640, 0, group);
    }
    assert_access(&meta.join("shared/trial.json"), 0o660, 0, group);

    // A launch past the limit is counted, but the rollback is the owner's.
    client_as(&sandbox, &APP_USER, &["launched"]).success();
    let refused = client_as(&sandbox, &APP_USER, &["launched", "--json"]).code(1);
    refused.assert_stderr(&format!(
            "error: 1.2.0 was not confirmed after 2 launches (at most 1), but this user may not roll it back: only the owner of `{}` may switch `current`",
            meta.display()
        ));
    refused.assert_stderr("ExecStartPre=+");
    assert_same_tree(&sandbox.root().join("current"), &third);
    let rolled = sandbox.client(["launched"]).code(1);
    rolled.assert_stderr("error: 1.2.0 was not confirmed after 3 launches (at most 1): rolled back to 1.1.0 and marked 1.2.0 bad");
    assert_same_tree(&sandbox.root().join("current"), &second);
    assert_eq!(run_app(&sandbox.root()), "app 1.1.0\n");
}

#[test]
fn without_a_group_the_application_user_is_told_the_file_and_the_fix_and_the_release_runs_on() {
    require_root();
    let sandbox = Sandbox::new();
    on_trial(&sandbox, &[]);
    let meta = sandbox.root().join(".wavecast");
    assert_access(&meta.join("config.json"), 0o600, 0, 0);
    assert_access(&meta.join("state.json"), 0o600, 0, 0);
    let config = meta.join("config.json");
    for command in ["confirm", "launched"] {
        let refused = client_as(&sandbox, &APP_USER, &[command]).code(2);
        refused.assert_stderr(&format!(
                "error: failed to read configuration `{}`\n  caused by: Permission denied (os error 13)\nhint: this user may not access `{}`: run wavecast-update as the owner of the install root (the user that ran `init`), or, for `confirm` and `launched`, have the owner share the root with a group of this user (`wavecast-update config --group GROUP`, or `init --group GROUP`)",
                config.display(),
                config.display()
            ));
    }
    assert_eq!(run_app(&sandbox.root()), "app 1.1.0\n");
    let status = sandbox.client(["status", "--json"]).success().json();
    assert_eq!(status["current"], "1.1.0");
    assert_eq!(status["unconfirmed_launches"], 0, "nothing was counted");

    // The fix the hint names, later; and back.
    let shared = sandbox.client(["config", "--group", "nogroup"]).success();
    shared.assert_stderr("shared with group `nogroup`: its members may run `confirm`, `launched` and `status`; modes set");
    assert_access(&meta.join("state.json"), 0o640, 0, APP_GROUP_ID);
    client_as(&sandbox, &APP_USER, &["confirm"]).success();
    let unshared = sandbox.client(["config", "--no-group"]).success();
    unshared.assert_stderr("shared with no group: only the owner may use this root; modes set");
    assert_access(&meta, 0o755, 0, APP_GROUP_ID);
    assert_access(&meta.join("shared/trial.json"), 0o600, 0, 0);
    client_as(&sandbox, &APP_USER, &["confirm"]).code(2);
    let unknown = sandbox
        .client(["config", "--group", "no-such-group-here"])
        .code(2);
    unknown.assert_stderr("error: unknown group `no-such-group-here`");
}

#[test]
fn a_read_only_root_is_refused_naming_the_file_system_and_the_release_runs_on() {
    let sandbox = Sandbox::new();
    let first = publish(&sandbox, "1.0.0");
    let tmpfs = Tmpfs::mount("16m");
    let root = tmpfs.path().join("client");
    init_at(&sandbox, &root, sandbox.site().to_str().unwrap(), &[]);
    sandbox.client_at(&root, ["update", "--yes"]).success();
    publish(&sandbox, "1.1.0");
    tmpfs.remount_read_only();

    let meta = root.join(".wavecast");
    let update = sandbox.client_at(&root, ["update", "--yes"]).code(1);
    update.assert_stderr(&format!(
            "error: this user may not write in `{0}`\n  caused by: Read-only file system (os error 30)\nhint: `{0}` is on a read-only file system: remount it read-write to change this install root; the installed release is untouched",
            meta.display()
        ));
    let confirm = sandbox.client_at(&root, ["confirm"]).code(1);
    confirm.assert_stderr(&format!(
        "hint: `{}` is on a read-only file system",
        meta.join("lock").display()
    ));
    assert_same_tree(&root.join("current"), &first);
    assert_eq!(run_app(&root), "app 1.0.0\n");
    let status = sandbox
        .client_at(&root, ["status", "--json"])
        .success()
        .json();
    assert_eq!(status["current"], "1.0.0", "{status}");
}
