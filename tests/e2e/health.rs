//! Health checks, confirmation by the application, rollback and keeping the last N
//! release trees, through the real `wavecast-update`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use wavecast_tests::{Nginx, Sandbox, assert_same_tree, binary, sample_release};

/// A sandbox with release `version` published (its `VERSION` file holds `variant`)
/// and installed by a client reading the site folder.
fn installed(version: &str, variant: &str) -> (Sandbox, PathBuf) {
    let sandbox = Sandbox::new();
    let tree = sample_release(&sandbox.path(&format!("release-{version}")), variant);
    sandbox.publish(&tree, version, &[]).success();
    sandbox.init_client(sandbox.site().to_str().unwrap());
    sandbox.client(["update", "--yes"]).success();
    (sandbox, tree)
}

/// Publishes release `version` whose `VERSION` file holds `variant`.
fn publish(sandbox: &Sandbox, version: &str, variant: &str) -> PathBuf {
    let tree = sample_release(&sandbox.path(&format!("release-{version}")), variant);
    sandbox.publish(&tree, version, &[]).success();
    tree
}

/// The release trees under the client's `releases/`, by name.
fn release_dirs(sandbox: &Sandbox) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(sandbox.root().join("releases"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// What `current/bin/app` prints.
fn run_app(sandbox: &Sandbox) -> String {
    let output = std::process::Command::new(sandbox.root().join("current/bin/app"))
        .output()
        .unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn a_failing_health_check_rolls_back_marks_the_release_bad_and_a_newer_release_installs() {
    let sandbox = Sandbox::new();
    let good = sample_release(&sandbox.path("release-1.0"), "good 1.0");
    sandbox.publish(&good, "1.0.0", &[]).success();
    let nginx = Nginx::serve(&sandbox.site());
    sandbox.init_client(&nginx.url());
    sandbox.client(["update", "--yes"]).success();
    publish(&sandbox, "1.1.0", "bad 1.1");

    let check = "echo \"checking $WAVECAST_VERSION (was $WAVECAST_PREVIOUS_VERSION) in $PWD\"; grep -q good VERSION";
    let failed = sandbox
        .client(["update", "--yes", "--json", "--health-check", check])
        .code(1);
    failed.assert_stderr(&format!(
            "error: 1.1.0 failed its health check `{check}`: it exited with status 1; rolled back to 1.0.0 and marked 1.1.0 bad (`wavecast-update unmark 1.1.0` clears the mark)\n"
        ));
    failed.assert_stderr("hint: 1.1.0 is not installed again until a newer release is published");
    let json = failed.json();
    assert_eq!(json["installed"], serde_json::Value::Null, "{json}");
    assert_eq!(json["target"], "1.1.0");
    assert_eq!(json["rolled_back_to"], "1.0.0");
    assert_eq!(json["marked_bad"], "1.1.0");
    assert_eq!(json["unmark_command"], "wavecast-update unmark 1.1.0");
    let health = &json["health_check"];
    assert_eq!(health["command"], check);
    assert_eq!(health["result"], "failed");
    assert_eq!(health["exit_code"], 1);
    assert_eq!(health["timeout"], "30s");
    let output = health["output"].as_str().unwrap();
    let releases = sandbox.root().join("releases");
    assert!(
        output.starts_with(&format!(
            "checking 1.1.0 (was 1.0.0) in {}/1.1.0-",
            releases.display()
        )),
        "{output}"
    );
    // The bad tree is gone; the good one is current and intact.
    assert_eq!(json["pruned_releases"][0]["version"], "1.1.0", "{json}");
    assert_same_tree(&sandbox.root().join("current"), &good);
    assert_eq!(release_dirs(&sandbox).len(), 1);
    let status = sandbox.client(["status", "--json"]).success().json();
    assert_eq!(status["current"], "1.0.0");
    assert_eq!(status["bad_releases"][0]["version"], "1.1.0", "{status}");
    assert_eq!(status["bad_releases"][0]["reason"], "health_check_failed");
    assert_eq!(
        status["bad_releases"][0]["detail"],
        format!("health check `{check}` exited with status 1")
    );

    // The next update does not install it again.
    let again = sandbox.client(["update", "--yes"]).success();
    again
        .assert_stdout("up to date: 1.0.0; skipping releases marked bad here: 1.1.0 (health check");
    let check_json = sandbox.client(["check", "--json"]).success().json();
    assert_eq!(check_json["decision"], "up_to_date", "{check_json}");
    assert_eq!(check_json["skipped_bad"][0]["version"], "1.1.0");
    assert_same_tree(&sandbox.root().join("current"), &good);

    // A newer release is installed as usual, checked by the configured command.
    let fixed = publish(&sandbox, "1.2.0", "good 1.2");
    sandbox
        .client(["config", "--health-check", "grep -q good VERSION"])
        .success();
    let update = sandbox.client(["update", "--yes"]).success();
    update.assert_stderr("running the health check of 1.2.0: `grep -q good VERSION` (timeout 30s)");
    update.assert_stderr("health check `grep -q good VERSION` passed in ");
    assert_same_tree(&sandbox.root().join("current"), &fixed);
}

#[test]
fn a_health_check_that_hangs_is_killed_and_rolled_back_quickly() {
    let (sandbox, first) = installed("1.0.0", "1.0");
    sandbox
        .client([
            "config",
            "--health-check",
            "echo started; sleep 30 & echo $! > \"$WAVECAST_ROOT/background.pid\"; sleep 30",
            "--health-timeout",
            "1s",
        ])
        .success();
    publish(&sandbox, "1.1.0", "1.1");

    let started = Instant::now();
    let run = sandbox.client(["update", "--yes"]).code(1);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
    run.assert_stderr("health check output:\n  | started\n");
    run.assert_stderr("error: 1.1.0 failed its health check `echo started; sleep 30 & echo $! > \"$WAVECAST_ROOT/background.pid\"; sleep 30`: it timed out after 1s (its processes were killed); rolled back to 1.0.0 and marked 1.1.0 bad");
    assert_same_tree(&sandbox.root().join("current"), &first);
    let status = sandbox.client(["status", "--json"]).success().json();
    assert_eq!(
        status["bad_releases"][0]["reason"], "health_check_timed_out",
        "{status}"
    );

    // What the check left in the background was killed with it.
    let pid = std::fs::read_to_string(sandbox.root().join("background.pid")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !process_gone(pid.trim()) {
        assert!(Instant::now() < deadline, "process {pid} still runs");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether process `pid` is gone (or a zombie waiting to be reaped).
fn process_gone(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
        stat.rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z'))
    })
}

#[test]
fn a_passing_health_check_keeps_the_new_release_unconfirmed() {
    let sandbox = Sandbox::new();
    let first = publish(&sandbox, "1.0.0", "1.0.0");
    sandbox.init_client(sandbox.site().to_str().unwrap());
    // The check sees the new tree as its working directory, and both versions.
    let check = "test \"$(cat VERSION)\" = \"$WAVECAST_VERSION\" && test \"$WAVECAST_RELEASE_DIR\" = \"$PWD\" && test -x bin/app && case $WAVECAST_VERSION in 1.0.0) test -z \"$WAVECAST_PREVIOUS_VERSION\";; *) test \"$WAVECAST_PREVIOUS_VERSION\" = 1.0.0;; esac";
    sandbox
        .client(["config", "--health-check", check, "--health-timeout", "1m"])
        .success();
    let run = sandbox.client(["update", "--yes"]).success();
    run.assert_stdout("installed 1.0.0 in releases/1.0.0-");
    assert_same_tree(&sandbox.root().join("current"), &first);

    let second = publish(&sandbox, "1.1.0", "1.1.0");
    let json = sandbox
        .client(["update", "--yes", "--json"])
        .success()
        .json();
    assert_eq!(json["installed"], "1.1.0", "{json}");
    assert_eq!(json["health_check"]["result"], "passed");
    assert_eq!(json["health_check"]["exit_code"], 0);
    assert_eq!(json["health_check"]["timeout"], "1m");
    assert_eq!(json["rolled_back_to"], serde_json::Value::Null);
    assert_same_tree(&sandbox.root().join("current"), &second);
    let status = sandbox.client(["status", "--json"]).success().json();
    assert_eq!(status["confirmed"], false, "{status}");
    assert_eq!(status["unconfirmed_launches"], 0);
    assert_eq!(status["bad_releases"], serde_json::json!([]));
    let text = sandbox.client(["status"]).success();
    assert!(
        text.stdout.contains("current: 1.1.0 (releases/1.1.0-")
            && text.stdout.contains("), unconfirmed, 0 launch(es)"),
        "{}",
        text.stdout
    );
}

#[test]
fn unconfirmed_launches_roll_back_after_the_limit_and_confirm_ends_the_count() {
    let (sandbox, first) = installed("1.0.0", "1.0.0");
    sandbox
        .client(["config", "--max-unconfirmed-launches", "2"])
        .success();
    let confirm = sandbox.client(["confirm"]).success();
    confirm.assert_stdout("confirmed 1.0.0 after 0 launch(es): it is kept");
    sandbox
        .client(["confirm"])
        .success()
        .assert_stdout("1.0.0 was confirmed already");

    publish(&sandbox, "1.1.0", "1.1.0");
    sandbox.client(["update", "--yes"]).success();
    for launch in 1..=2 {
        let run = sandbox.client(["launched"]).success();
        run.assert_stdout(&format!(
            "1.1.0 is not confirmed yet: launch {launch} of at most 2"
        ));
    }
    let rolled = sandbox.client(["launched", "--json"]).code(1);
    rolled.assert_stderr("error: 1.1.0 was not confirmed after 3 launches (at most 2): rolled back to 1.0.0 and marked 1.1.0 bad (`wavecast-update unmark 1.1.0` clears the mark)\n");
    rolled.assert_stderr("hint: start `current` as usual: it is 1.0.0 now");
    let json = rolled.json();
    assert_eq!(json["result"], "rolled_back", "{json}");
    assert_eq!(json["launches"], 3);
    assert_eq!(json["rolled_back_to"], "1.0.0");
    assert_eq!(json["marked_bad"], "1.1.0");
    assert_eq!(json["unmark_command"], "wavecast-update unmark 1.1.0");
    assert_same_tree(&sandbox.root().join("current"), &first);
    assert_eq!(run_app(&sandbox), "app 1.0.0\n");
    sandbox
        .client(["launched"])
        .success()
        .assert_stdout("1.0.0 is confirmed: the launch is not counted");
    let status = sandbox.client(["status", "--json"]).success().json();
    assert_eq!(
        status["bad_releases"][0]["reason"], "unconfirmed",
        "{status}"
    );
    sandbox.client(["update", "--yes"]).success().assert_stdout("skipping releases marked bad here: 1.1.0 (not confirmed after 3 launches (at most 2 allowed))");

    // A release that confirms itself keeps running however often it starts. A
    // health check that runs the application's own `launched` and `confirm` is
    // neither counted nor blocked by the lock the update holds.
    let client = binary("wavecast-update");
    let check = format!("'{0}' launched && '{0}' confirm", client.display());
    sandbox
        .client(["config", "--health-check", &check])
        .success();
    let third = publish(&sandbox, "1.2.0", "1.2.0");
    sandbox.client(["update", "--yes"]).success();
    let status = sandbox.client(["status", "--json"]).success().json();
    assert_eq!(status["confirmed"], false, "{status}");
    sandbox
        .client(["launched"])
        .success()
        .assert_stdout("1.2.0 is not confirmed yet: launch 1 of at most 2");
    sandbox
        .client(["confirm"])
        .success()
        .assert_stdout("confirmed 1.2.0 after 1 launch(es): it is kept");
    for _ in 0..4 {
        sandbox
            .client(["launched"])
            .success()
            .assert_stdout("1.2.0 is confirmed: the launch is not counted");
    }
    assert_same_tree(&sandbox.root().join("current"), &third);
}

#[test]
fn rollback_on_request_marks_the_release_bad_unless_kept_and_needs_an_older_release() {
    let (sandbox, first) = installed("1.0.0", "1.0.0");
    let nothing = sandbox.client(["rollback"]).code(1);
    nothing.assert_stderr("error: nothing to roll back to: no release installed before 1.0.0 is still on disk and not marked bad");

    let second = publish(&sandbox, "1.1.0", "1.1.0");
    sandbox.client(["update", "--yes"]).success();
    let kept = sandbox.client(["rollback", "--keep"]).success();
    kept.assert_stdout("rolled back to 1.0.0 (was 1.1.0) in releases/1.0.0-");
    kept.assert_stdout("; 1.1.0 is not marked bad, so the next update may install it again");
    assert_same_tree(&sandbox.root().join("current"), &first);

    // Not marked: the next update goes forward again, reusing the kept tree.
    let forward = sandbox.client(["update", "--yes"]).success();
    forward.assert_stdout("nothing to download");
    assert_same_tree(&sandbox.root().join("current"), &second);

    let back = sandbox.client(["rollback", "--json"]).success().json();
    assert_eq!(
        (back["from"].as_str(), back["to"].as_str()),
        (Some("1.1.0"), Some("1.0.0"))
    );
    assert_eq!(back["marked_bad"], true, "{back}");
    assert_eq!(back["unmark_command"], "wavecast-update unmark 1.1.0");
    assert_same_tree(&sandbox.root().join("current"), &first);
    assert_eq!(run_app(&sandbox), "app 1.0.0\n");
    sandbox.client(["update", "--yes"]).success().assert_stdout("up to date: 1.0.0; skipping releases marked bad here: 1.1.0 (rolled back to 1.0.0 on request)");
    assert_eq!(sandbox.client(["rollback"]).code(1).code, 1);
}

#[test]
fn only_the_newest_release_trees_are_kept_and_rollback_works_within_them() {
    let (sandbox, _) = installed("1.0.0", "1.0.0");
    let second = publish(&sandbox, "1.1.0", "1.1.0");
    sandbox.client(["update", "--yes"]).success();
    sandbox.client(["confirm"]).success();
    let third = publish(&sandbox, "1.2.0", "1.2.0");
    let update = sandbox.client(["update", "--yes"]).success();
    update.assert_stderr("deleted release trees: releases/1.0.0-");
    let dirs = release_dirs(&sandbox);
    assert_eq!(dirs.len(), 2, "{dirs:?}");
    assert!(
        dirs[0].starts_with("1.1.0-") && dirs[1].starts_with("1.2.0-"),
        "{dirs:?}"
    );
    let status = sandbox.client(["status", "--json"]).success().json();
    let installed: Vec<&str> = status["installed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|release| release["version"].as_str().unwrap())
        .collect();
    assert_eq!(installed, ["1.1.0", "1.2.0"]);
    let indexes = std::fs::read_dir(sandbox.root().join(".wavecast/indexes"))
        .unwrap()
        .count();
    assert_eq!(indexes, 2, "the file index of 1.0.0 went with its tree");

    // A tree a crash left behind goes at the next prune; foreign folders stay.
    std::fs::create_dir_all(sandbox.root().join("releases/0.9.0-0123456789ab/bin")).unwrap();
    std::fs::create_dir_all(sandbox.root().join("releases/notes")).unwrap();
    sandbox.client(["config", "--keep-releases", "3"]).success();
    sandbox.client(["confirm"]).success();
    publish(&sandbox, "1.3.0", "1.3.0");
    sandbox.client(["update", "--yes"]).success();
    let dirs = release_dirs(&sandbox);
    assert_eq!(dirs.len(), 4, "{dirs:?}");
    assert!(
        dirs[3] == "notes" && dirs[0].starts_with("1.1.0-"),
        "{dirs:?}"
    );

    // Rolling back within the kept trees runs the older release again.
    sandbox.client(["rollback"]).success();
    assert_same_tree(&sandbox.root().join("current"), &third);
    assert_eq!(run_app(&sandbox), "app 1.2.0\n");
    sandbox.client(["rollback"]).success();
    assert_same_tree(&sandbox.root().join("current"), &second);
    assert_eq!(run_app(&sandbox), "app 1.1.0\n");
    let dirs = release_dirs(&sandbox);
    assert_eq!(dirs.len(), 2, "the bad 1.3.0 and 1.2.0 went: {dirs:?}");

    // An unconfirmed release keeps what it rolls back to, even with one tree to keep.
    sandbox.client(["config", "--keep-releases", "1"]).success();
    publish(&sandbox, "1.4.0", "1.4.0");
    sandbox.client(["update", "--yes"]).success();
    let dirs = release_dirs(&sandbox);
    assert_eq!(dirs.len(), 3, "{dirs:?}");
    assert!(
        dirs[0].starts_with("1.1.0-") && dirs[1].starts_with("1.4.0-"),
        "{dirs:?}"
    );
    let zero = sandbox.client(["config", "--keep-releases", "0"]).code(2);
    assert!(zero.stderr.contains("--keep-releases"), "{}", zero.stderr);
}

#[test]
fn rollback_says_how_to_clear_its_mark_and_unmark_lets_updates_install_the_release_again() {
    let sandbox = Sandbox::new();
    let first = publish(&sandbox, "1.0.0", "1.0.0");
    let nginx = Nginx::serve(&sandbox.site());
    sandbox.init_client(&nginx.url());
    sandbox.client(["update", "--yes"]).success();
    let second = publish(&sandbox, "1.1.0", "1.1.0");
    sandbox.client(["update", "--yes"]).success();

    let rolled = sandbox.client(["rollback"]).success();
    rolled.assert_stdout("1.1.0 is marked bad and is not installed again until a newer release is published (`wavecast-update unmark 1.1.0` clears the mark)\n");
    let status = sandbox.client(["status"]).success();
    assert!(
        status
            .stdout
            .contains("marked bad: 1.1.0 (rolled back to 1.0.0 on request, 2")
            && status
                .stdout
                .contains("Z); `wavecast-update unmark VERSION` clears a mark\n"),
        "{}",
        status.stdout
    );
    let status = sandbox.client(["status", "--json"]).success().json();
    assert_eq!(
        status["bad_releases"][0]["unmark_command"], "wavecast-update unmark 1.1.0",
        "{status}"
    );

    // Over HTTP, the update skips it and says how to take it back.
    let skipped = sandbox.client(["update", "--yes"]).success();
    skipped.assert_stdout("up to date: 1.0.0; skipping releases marked bad here: 1.1.0 (rolled back to 1.0.0 on request); `wavecast-update unmark VERSION` clears a mark");
    assert_same_tree(&sandbox.root().join("current"), &first);

    let wrong = sandbox.client(["unmark", "1.2.0"]).code(2);
    assert_eq!(
        wrong.stderr,
        "error: 1.2.0 is not marked bad here; marked bad: 1.1.0\n"
    );
    let json = sandbox
        .client(["unmark", "1.1.0", "--json"])
        .success()
        .json();
    assert_eq!(json["result"], "unmarked", "{json}");
    assert_eq!(json["version"], "1.1.0");
    assert_eq!(json["reason"], "rolled_back");
    let status = sandbox.client(["status", "--json"]).success().json();
    assert_eq!(status["bad_releases"], serde_json::json!([]), "{status}");

    // The next update installs it again, from the site.
    let update = sandbox.client(["update", "--yes"]).success();
    update.assert_stdout("installed 1.1.0 (was 1.0.0) in releases/1.1.0-");
    assert_same_tree(&sandbox.root().join("current"), &second);
    assert_eq!(run_app(&sandbox), "app 1.1.0\n");
    let again = sandbox.client(["unmark", "1.1.0"]).code(2);
    assert_eq!(
        again.stderr,
        "error: 1.1.0 is not marked bad here; no release is marked bad\n"
    );
}
