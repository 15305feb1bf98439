//! The spine: publish two releases, serve them with nginx, check, update, status.

use wavecast_schema::{InstallId, bucket};
use wavecast_tests::{Nginx, Sandbox, assert_same_tree, sample_release};

/// The install id the client generated, read from `status --json`.
fn install_id(sandbox: &Sandbox) -> InstallId {
    let status = sandbox.client(["status", "--json"]).success().json();
    status["install_id"]
        .as_str()
        .expect("status reports install_id")
        .parse()
        .unwrap()
}

#[test]
fn publish_check_update_and_status_over_nginx() {
    let sandbox = Sandbox::new();
    let r1 = sample_release(&sandbox.path("release-1.0"), "1.0");
    let r2 = sample_release(&sandbox.path("release-1.1"), "1.1");
    sandbox
        .publish(&r1, "1.0.0", &["--notes", "First release"])
        .success();
    sandbox
        .publish(
            &r2,
            "1.1.0",
            &["--rollout", "30%", "--notes", "Faster startup"],
        )
        .success();
    let nginx = Nginx::serve(&sandbox.site());
    sandbox.init_client(&nginx.url());

    // A fresh client always gets a release: 1.1.0 if its bucket is inside 30 %, else 1.0.0.
    let check = sandbox.client(["check", "--json"]).success().json();
    let manifest = sandbox.manifest("stable");
    let newest = manifest.release(&"1.1.0".parse().unwrap()).unwrap();
    let my_bucket = bucket(&install_id(&sandbox), &newest.rollout.salt);
    let expected_target = if my_bucket < 3000 { "1.1.0" } else { "1.0.0" };
    assert_eq!(check["decision"], "update", "{check}");
    assert_eq!(check["current"], serde_json::Value::Null);
    assert_eq!(check["target"], expected_target, "{check}");
    let bucket_reported = check["bucket"].as_u64().unwrap();
    assert!(bucket_reported < 10_000);
    assert!(
        bucket_reported < check["threshold"].as_u64().unwrap(),
        "{check}"
    );
    if expected_target == "1.1.0" {
        assert_eq!(bucket_reported, u64::from(my_bucket));
        assert_eq!(check["threshold"], 3000);
    }

    sandbox.client(["update", "--yes"]).success();
    let installed = if expected_target == "1.1.0" { &r2 } else { &r1 };
    assert_same_tree(&sandbox.root().join("current"), installed);

    let status = sandbox.client(["status", "--json"]).success().json();
    assert_eq!(status["current"], expected_target, "{status}");

    // A new release at 100 % reaches everyone; the previous tree stays on disk.
    let previous = std::fs::canonicalize(sandbox.root().join("current")).unwrap();
    let r3 = sample_release(&sandbox.path("release-1.2"), "1.2");
    sandbox.publish(&r3, "1.2.0", &[]).success();
    let check = sandbox.client(["check", "--json"]).success().json();
    assert_eq!(check["decision"], "update");
    assert_eq!(check["current"], expected_target);
    assert_eq!(check["target"], "1.2.0");
    sandbox.client(["update", "--yes"]).success();
    assert_same_tree(&sandbox.root().join("current"), &r3);
    assert_same_tree(&previous, installed);

    let check = sandbox.client(["check", "--json"]).success().json();
    assert_eq!(check["decision"], "up_to_date", "{check}");
    assert_eq!(check["current"], "1.2.0");
    let update = sandbox.client(["update", "--yes"]).success();
    update.assert_stdout("up to date");
}

#[test]
fn a_client_outside_the_rollout_is_deferred_and_stays_put() {
    let sandbox = Sandbox::new();
    let r1 = sample_release(&sandbox.path("r1"), "1");
    let r2 = sample_release(&sandbox.path("r2"), "2");
    sandbox.publish(&r1, "1.0.0", &[]).success();
    let nginx = Nginx::serve(&sandbox.site());
    sandbox.init_client(&nginx.url());
    sandbox.client(["update", "--yes"]).success();

    sandbox
        .publish(&r2, "2.0.0", &["--rollout", "0%"])
        .success();
    let check = sandbox.client(["check", "--json"]).success().json();
    assert_eq!(check["decision"], "deferred", "{check}");
    assert_eq!(check["current"], "1.0.0");
    assert_eq!(check["threshold"], 0);
    let salt = sandbox
        .manifest("stable")
        .release(&"2.0.0".parse().unwrap())
        .unwrap()
        .rollout
        .salt
        .clone();
    assert_eq!(
        check["bucket"],
        u64::from(bucket(&install_id(&sandbox), &salt))
    );
    sandbox.client(["check", "--exit-code"]).code(0);
    sandbox.client(["update", "--yes"]).success();
    assert_same_tree(&sandbox.root().join("current"), &r1);

    // Raising the rollout lets the same client in.
    sandbox
        .publish(&r2, "2.0.0", &["--rollout", "100%", "--force"])
        .success();
    sandbox.client(["check", "--exit-code"]).code(10);
    sandbox.client(["update", "--yes"]).success();
    assert_same_tree(&sandbox.root().join("current"), &r2);
}

#[test]
fn several_modules_install_into_one_identical_tree() {
    let sandbox = Sandbox::new();
    let release = sandbox.path("release");
    for (path, content) in [
        ("bin/app", "binary"),
        ("share/a/b.txt", "asset"),
        ("share/c", "more"),
    ] {
        let file = release.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, content).unwrap();
    }
    sandbox
        .publish(
            &release,
            "1.0.0",
            &["--module", "core=bin", "--module", "assets=share"],
        )
        .success();
    let modules = &wavecast_tests::delta::document(&sandbox, "1.0.0").modules;
    assert_eq!(
        modules.keys().map(|name| name.as_str()).collect::<Vec<_>>(),
        ["assets", "core"]
    );

    let nginx = Nginx::serve(&sandbox.site());
    sandbox.init_client(&nginx.url());
    sandbox.client(["update", "--yes"]).success();
    assert_same_tree(&sandbox.root().join("current"), &release);
}

#[test]
fn a_folder_site_works_without_any_server() {
    let sandbox = Sandbox::new();
    let release = sample_release(&sandbox.path("r"), "x");
    sandbox.publish(&release, "0.1.0", &[]).success();
    sandbox.init_client(sandbox.site().to_str().unwrap());
    sandbox.client(["update", "--yes"]).success();
    assert_same_tree(&sandbox.root().join("current"), &release);
}

#[test]
fn without_a_terminal_or_yes_nothing_is_installed() {
    let sandbox = Sandbox::new();
    let release = sample_release(&sandbox.path("r"), "x");
    sandbox.publish(&release, "1.0.0", &[]).success();
    sandbox.init_client(sandbox.site().to_str().unwrap());
    let run = sandbox.client(["update"]).code(1);
    assert!(run.stderr.contains("--yes"), "{}", run.stderr);
    assert!(!sandbox.root().join("current").exists());
}

#[test]
fn init_keeps_the_install_id_and_usage_errors_exit_2() {
    let sandbox = Sandbox::new();
    // Nothing listens on port 9: set up offline, as an image built without network.
    let pubkey = sandbox.pubkey();
    let init = |extra: &[&str]| {
        let mut args = vec![
            "init",
            "--offline",
            "--url",
            "http://127.0.0.1:9/",
            "--pubkey",
            pubkey.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        sandbox.client(args)
    };
    init(&[]).success();
    let first = install_id(&sandbox);
    let again = init(&[]);
    assert_eq!(again.code, 2, "{}", again.stderr);
    assert!(again.stderr.starts_with("error: "), "{}", again.stderr);
    init(&["--force"]).success();
    assert_eq!(install_id(&sandbox), first);
    sandbox.client(["check", "--no-such-flag"]).code(2);
    let bad_key = sandbox.client([
        "init",
        "--force",
        "--url",
        "http://127.0.0.1:9/",
        "--pubkey",
        "not-a-key",
    ]);
    assert_eq!(bad_key.code, 2, "{}", bad_key.stderr);
    let unreachable = sandbox.client(["check"]);
    assert_eq!(unreachable.code, 1, "{}", unreachable.stderr);
    assert!(
        !unreachable.stderr.contains("panicked"),
        "{}",
        unreachable.stderr
    );
}
