//! Manifests past a limit (`wavecast_schema::Limit`): correctly signed, as a stolen
//! release key or another tool could sign them, yet refused by the client on their
//! shape alone, before it builds anything from them; and never signed by the
//! publisher.
#![expect(
    clippy::print_stderr,
    reason = "the refusals print what they cost, as measured by GNU time"
)]

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use wavecast_tests::hostile::{client_timed, resign_json};
use wavecast_tests::{Nginx, Sandbox, assert_same_tree, sample_release};

/// A client with 1.0.0 installed from nginx, with 2.0.0 published (the manifest's
/// `releases[0]`). Returns the server and the installed release folder.
fn installed_with_pending_update() -> (Sandbox, Nginx, PathBuf) {
    let sandbox = Sandbox::new();
    let r1 = sample_release(&sandbox.path("r1"), "1");
    let r2 = sample_release(&sandbox.path("r2"), "2");
    sandbox.publish(&r1, "1.0.0", &[]).success();
    let nginx = Nginx::serve(&sandbox.site());
    sandbox.init_client(&nginx.url());
    sandbox.client(["update", "--yes"]).success();
    sandbox.publish(&r2, "2.0.0", &[]).success();
    (sandbox, nginx, r1)
}

/// Runs `update --yes` under GNU time and expects it to stop with `cause` and the
/// hint, leaving `r1` installed; prints what the refusal cost.
#[track_caller]
fn refused(sandbox: &Sandbox, nginx: &Nginx, r1: &Path, what: &str, cause: &str) {
    let (run, cost) = client_timed(sandbox, &["update", "--yes"]);
    assert_eq!(
        run.code, 1,
        "stdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
    assert_eq!(
        run.stderr.lines().collect::<Vec<_>>(),
        [
            format!(
                "error: the signed manifest `{}channels/stable.json` is invalid",
                nginx.url()
            ),
            format!("  caused by: {cause}"),
            "hint: wavecast does not sign a manifest past its limits, so another tool or a stolen release key signed this one; tell the publisher".to_owned(),
        ],
        "{}",
        run.stderr
    );
    assert_same_tree(&sandbox.root().join("current"), r1);
    let size = std::fs::metadata(sandbox.site().join("channels/stable.json"))
        .unwrap()
        .len();
    eprintln!(
        "{what} ({:.2} MiB signed): refused in {cost}",
        size as f64 / f64::from(1 << 20)
    );
}

/// 100,000 distinct pattern rules on one release: compiling them took 1.5 GB. The
/// count alone refuses them now.
#[test]
fn a_signed_manifest_with_a_hundred_thousand_pattern_rules_is_refused() {
    let (sandbox, nginx, r1) = installed_with_pending_update();
    resign_json(&sandbox, |manifest| {
        manifest["releases"][0]["rollout"]["rules"] = (0..100_000)
            .map(|n| {
                json!({
                    "name": format!("rule-{n}"),
                    "attributes": {"user_id": {"pattern": format!("{n}[0-9]{{1,7}}")}},
                    "action": "exclude",
                })
            })
            .collect();
    });
    refused(
        &sandbox,
        &nginx,
        &r1,
        "100,000 pattern rules",
        "manifest lists 100000 rollout rules at `releases[0].rollout.rules`, more than the 256 allowed",
    );
}

/// 100,000 download hosts, each a closed port: trying them took 41 s per blob.
#[test]
fn a_signed_manifest_with_a_hundred_thousand_download_hosts_is_refused() {
    let (sandbox, nginx, r1) = installed_with_pending_update();
    resign_json(&sandbox, |manifest| {
        manifest["download_hosts"] = (0..100_000)
            .map(|n| Value::String(format!("http://127.0.0.{}:{}/", 1 + n % 250, 1 + n / 250)))
            .collect();
    });
    refused(
        &sandbox,
        &nginx,
        &r1,
        "100,000 download hosts",
        "manifest lists 100000 download hosts at `download_hosts`, more than the 16 allowed",
    );
}

/// 513 distinct patterns spread over releases, each release within its limits, are
/// refused by the limit on the whole manifest.
#[test]
fn patterns_are_counted_over_the_whole_manifest() {
    let (sandbox, nginx, r1) = installed_with_pending_update();
    resign_json(&sandbox, |manifest| {
        // Two patterns on each of 200 rules of 2.0.0, one on each of 113 of 1.0.0.
        for (release, rules, keys) in [(0, 200, &["user_id", "host"][..]), (1, 113, &["user_id"])] {
            manifest["releases"][release]["rollout"]["rules"] = (0..rules)
                .map(|n| {
                    let attributes: serde_json::Map<String, Value> = keys
                        .iter()
                        .map(|key| ((*key).to_owned(), json!({"pattern": format!("{release}-{n}-{key}")})))
                        .collect();
                    json!({"name": format!("rule-{n}"), "attributes": attributes, "action": "exclude"})
                })
                .collect();
        }
    });
    refused(
        &sandbox,
        &nginx,
        &r1,
        "513 distinct patterns over two releases",
        "manifest holds 513 distinct rule patterns in all, more than the 512 allowed (the first one too many at `releases[1].rollout.rules[112].attributes.user_id.pattern`)",
    );
}

/// The publisher signs only what clients read: past a limit, it refuses (exit 2)
/// and the channel keeps its manifest.
#[test]
fn the_publisher_refuses_to_sign_past_a_limit() {
    let sandbox = Sandbox::new();
    let r1 = sample_release(&sandbox.path("r1"), "1");
    sandbox.publish(&r1, "1.0.0", &[]).success();
    let before = std::fs::read(sandbox.site().join("channels/stable.json")).unwrap();

    let hosts: Vec<String> = (0..17)
        .map(|n| format!("--download-host=https://cdn{n}.example.com/"))
        .collect();
    let hosts: Vec<&str> = hosts.iter().map(String::as_str).collect();
    let run = sandbox.publish(&r1, "1.1.0", &hosts).code(2);
    assert_eq!(
        run.stderr.lines().collect::<Vec<_>>(),
        [
            "error: the new manifest for channel `stable` would be invalid",
            "  caused by: manifest lists 17 download hosts at `download_hosts`, more than the 16 allowed",
        ],
        "{}",
        run.stderr
    );

    let rules: Vec<String> = (0..257)
        .map(|n| format!("--rule=r{n}: tenant = t{n} -> exclude"))
        .collect();
    let mut args = vec!["1.0.0".to_owned()];
    args.extend(rules);
    let run = sandbox
        .wavecast(
            std::iter::once("rollout".to_owned()).chain(args),
            [
                "--site".into(),
                sandbox.site(),
                "--key".into(),
                sandbox.key(),
            ],
        )
        .code(2);
    assert_eq!(
        run.stderr.lines().collect::<Vec<_>>(),
        [
            "error: the new manifest for channel `stable` would be invalid",
            "  caused by: manifest lists 257 rollout rules at `releases[0].rollout.rules`, more than the 256 allowed",
        ],
        "{}",
        run.stderr
    );
    assert_eq!(
        std::fs::read(sandbox.site().join("channels/stable.json")).unwrap(),
        before,
        "the channel keeps its manifest"
    );
    sandbox.publish(&r1, "1.1.0", &hosts[..16]).success();
}
