//! The client's side of rollouts: rules by installed version and by declared
//! attributes, `--now`, pauses, yanks and moving back, ramps with the time a client
//! becomes eligible, consent on a real terminal, mandatory updates, and switching
//! channels. Every site is written by the real `wavecast` CLI.

use std::path::{Path, PathBuf};

use serde_json::Value;
use wavecast_tests::client::{bucket_at, client_on_terminal, init_at};
use wavecast_tests::{FaultServer, Nginx, Sandbox, assert_same_tree, sample_release};

/// `check --json` for the client at `root`, with `extra` arguments.
#[track_caller]
fn check_at(sandbox: &Sandbox, root: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["check", "--json"];
    args.extend_from_slice(extra);
    sandbox.client_at(root, args).success().json()
}

/// `check --json` for the sandbox's own client.
#[track_caller]
fn check(sandbox: &Sandbox, extra: &[&str]) -> Value {
    check_at(sandbox, &sandbox.root(), extra)
}

/// A sandbox with 1.0.0 published and installed by its client from nginx.
fn installed_one() -> (Sandbox, Nginx, PathBuf) {
    let sandbox = Sandbox::new();
    let r1 = sample_release(&sandbox.path("r1"), "1");
    sandbox.publish(&r1, "1.0.0", &[]).success();
    let nginx = Nginx::serve(&sandbox.site());
    sandbox.init_client(&nginx.url());
    sandbox.client(["update", "--yes"]).success();
    (sandbox, nginx, r1)
}

#[track_caller]
fn assert_decision(check: &Value, decision: &str, rule: Option<&str>) {
    assert_eq!(check["decision"], decision, "{check:#}");
    assert_eq!(
        check["rule"],
        rule.map_or(Value::Null, Value::from),
        "{check:#}"
    );
}

#[test]
fn rules_by_installed_version_and_mandatory_updates_without_asking() {
    let sandbox = Sandbox::new();
    let nginx = Nginx::serve(&sandbox.site());
    let roots: Vec<PathBuf> = ["on-1", "on-2", "on-3"]
        .iter()
        .map(|name| sandbox.path(name))
        .collect();
    // One client on each of 1.x, 2.x and 3.0, each installing the newest of its day.
    // 3.0.0 stays at 0 % (its client asks with --now), so that the 2.x client has
    // nothing to fall back to and the rules of 3.1.0 alone decide for it.
    for (version, root, share) in [
        ("1.4.0", 0, "100%"),
        ("2.3.0", 1, "100%"),
        ("3.0.0", 2, "0%"),
    ] {
        let release = sample_release(&sandbox.path(&format!("r{version}")), version);
        sandbox
            .publish(&release, version, &["--rollout", share])
            .success();
        init_at(&sandbox, &roots[root], &nginx.url(), &[]);
        sandbox
            .client_at(&roots[root], ["update", "--now", "--yes"])
            .success();
        let status = sandbox
            .client_at(&roots[root], ["status", "--json"])
            .success()
            .json();
        assert_eq!(status["current"], version);
    }
    // The field example: below 2.0 mandatory, 2.x at 20 %, 3.0 at 5 %, nobody else.
    let newest = sample_release(&sandbox.path("r3.1"), "3.1");
    sandbox
        .publish(
            &newest,
            "3.1.0",
            &[
                "--rollout",
                "0%",
                "--notes",
                "Security fix",
                "--min-version",
                "2.0",
                "--rule",
                "two-x: from >= 2.0; from < 3.0 -> 20%",
                "--rule",
                "three-zero: from >= 3.0; from < 3.1 -> 5%",
            ],
        )
        .success();

    let legacy = check_at(&sandbox, &roots[0], &[]);
    assert_decision(&legacy, "update", Some("mandatory-below-2.0.0"));
    assert_eq!(legacy["mandatory"], true);
    assert_eq!(legacy["target"], "3.1.0");
    assert_eq!(legacy["downgrade"], false);
    assert_eq!(legacy["withdrawn"], Value::Null);
    assert_eq!(legacy["exclusion"], Value::Null);
    let human = sandbox.client_at(&roots[0], ["check"]).success();
    assert!(
        human.stdout.contains("mandatory") && human.stdout.contains("mandatory-below-2.0.0"),
        "{}",
        human.stdout
    );
    // No terminal and no --yes: a mandatory update installs anyway, and says so.
    let run = sandbox.client_at(&roots[0], ["update"]).success();
    assert!(
        run.stderr
            .contains("mandatory update: installing 3.1.0 (rule `mandatory-below-2.0.0`)"),
        "{}",
        run.stderr
    );
    assert_same_tree(&roots[0].join("current"), &newest);

    for (root, rule, threshold) in [(&roots[1], "two-x", 2000), (&roots[2], "three-zero", 500)] {
        let check = check_at(&sandbox, root, &[]);
        let inside = bucket_at(&sandbox, root, "3.1.0") < threshold;
        let decision = if inside { "update" } else { "deferred" };
        assert_decision(&check, decision, Some(rule));
        assert_eq!(check["threshold"], threshold, "{check:#}");
        assert_eq!(check["mandatory"], false);
        assert_eq!(
            check["eligible_at"],
            Value::Null,
            "a fixed share gives no date"
        );
        // Not mandatory: without a terminal or --yes nothing is installed.
        let run = sandbox.client_at(root, ["update"]);
        assert_eq!(run.code, if inside { 1 } else { 0 }, "{}", run.stderr);
        assert!(!run.stderr.contains("mandatory"), "{}", run.stderr);
    }

    // A client on the newest release is up to date, whatever the rules say.
    let up = check_at(&sandbox, &roots[0], &[]);
    assert_decision(&up, "up_to_date", None);
    assert_eq!(up["current"], "3.1.0");
    assert_eq!(up["mandatory"], false);
}

#[test]
fn rules_by_attributes_route_by_region_pattern_server_and_exclusion() {
    let (sandbox, nginx, _) = installed_one();
    let r2 = sample_release(&sandbox.path("r2"), "2");
    sandbox
        .publish(
            &r2,
            "2.0.0",
            &[
                "--rollout",
                "0%",
                "--rule",
                "eu: region = eu -> 100%",
                "--rule",
                "blocked: tenant = hooli -> exclude",
                "--rule",
                "small-ids: user_id ~ [0-9]{1,7} -> 100%",
                "--rule",
                "srv-a: server_id = a -> 100%",
                "--rule",
                "rest: -> 0%",
            ],
        )
        .success();

    let plain = check(&sandbox, &[]);
    assert_decision(&plain, "deferred", Some("rest"));
    for field in [
        "schema_version",
        "decision",
        "current",
        "target",
        "newest",
        "bucket",
        "threshold",
        "threshold_percent",
        "channel",
        "serial",
        "served_by",
        "notes",
        "eligible_at",
        "rule",
        "mandatory",
        "withdrawn",
        "exclusion",
        "downgrade",
    ] {
        assert!(plain.get(field).is_some(), "`{field}` missing: {plain:#}");
    }

    for (attributes, decision, rule) in [
        (&["region=eu"][..], "update", "eu"),
        (&["region=us"], "deferred", "rest"),
        (&["user_id=1234567"], "update", "small-ids"),
        (&["user_id=12345678"], "deferred", "rest"),
        (&["server_id=a"], "update", "srv-a"),
        (&["server_id=b"], "deferred", "rest"),
        (&["tenant=hooli"], "deferred", "blocked"),
        // The first matching rule wins, even over an exclusion further down.
        (&["region=eu", "tenant=hooli"], "update", "eu"),
        (&["tenant=hooli", "server_id=a"], "deferred", "blocked"),
    ] {
        let mut args = Vec::new();
        for attribute in attributes {
            args.extend(["--attr", attribute]);
        }
        let check = check(&sandbox, &args);
        assert_decision(&check, decision, Some(rule));
        let exclusion = if rule == "blocked" {
            Value::from("excluded_by_rule")
        } else {
            Value::Null
        };
        assert_eq!(check["exclusion"], exclusion, "{attributes:?}: {check:#}");
    }
    let blocked = sandbox
        .client(["check", "--attr", "tenant=hooli"])
        .success();
    assert!(
        blocked.stdout.contains("excluded by rule `blocked`"),
        "{}",
        blocked.stdout
    );
    // `--now` never overrides an excluding rule.
    let now = check(&sandbox, &["--now", "--attr", "tenant=hooli"]);
    assert_decision(&now, "deferred", Some("blocked"));

    // Attributes from `init --attr` work the same, and a run's --attr wins over them.
    let eu = sandbox.path("eu-client");
    init_at(&sandbox, &eu, &nginx.url(), &["--attr", "region=eu"]);
    let config = sandbox
        .client_at(&eu, ["config", "--json"])
        .success()
        .json();
    assert_eq!(config["attributes"]["region"], "eu", "{config:#}");
    assert_decision(&check_at(&sandbox, &eu, &[]), "update", Some("eu"));
    // A fresh client outside 2.0.0 gets 1.0.0, whose plan has no rules.
    let us = check_at(&sandbox, &eu, &["--attr", "region=us"]);
    assert_decision(&us, "update", None);
    assert_eq!(us["target"], "1.0.0");

    // `config` edits them for later runs.
    let config = sandbox
        .client_at(&eu, ["config", "--unset-attr", "region", "--json"])
        .success()
        .json();
    assert_eq!(config["changed"], true);
    assert_eq!(config["attributes"], serde_json::json!({}));
    sandbox
        .client(["config", "--attr", "server_id=a", "--attr", "tier=gold"])
        .success();
    let config = sandbox.client(["config"]).success();
    assert!(
        config.stdout.contains("attributes: server_id=a, tier=gold"),
        "{}",
        config.stdout
    );
    assert_decision(&check(&sandbox, &[]), "update", Some("srv-a"));
    sandbox.client(["update", "--yes"]).success();
    assert_same_tree(&sandbox.root().join("current"), &r2);

    // Malformed attributes are usage errors.
    for bad in [
        &["check", "--attr", "region"][..],
        &["check", "--attr", "my region=eu"],
        &["update", "--attr", "=eu"],
        &["config", "--attr", "a/b=c"],
        &["config", "--unset-attr", "a b"],
    ] {
        let run = sandbox.client(bad);
        assert_eq!(run.code, 2, "{bad:?}: {}", run.stderr);
    }
}

#[test]
fn attributes_never_leave_the_machine() {
    let sandbox = Sandbox::new();
    let r1 = sample_release(&sandbox.path("r1"), "1");
    let r2 = sample_release(&sandbox.path("r2"), "2");
    sandbox.publish(&r1, "1.0.0", &[]).success();
    let server = FaultServer::serve(&sandbox.site());
    let url = server.url();
    init_at(
        &sandbox,
        &sandbox.root(),
        &url,
        &[
            "--attr",
            "region=zz-secret-region",
            "--attr",
            "user_id=4815162",
        ],
    );
    sandbox.client(["update", "--yes"]).success();
    sandbox
        .publish(
            &r2,
            "2.0.0",
            &[
                "--rollout",
                "0%",
                "--rule",
                "ids: user_id ~ [0-9]{1,7} -> 100%",
            ],
        )
        .success();
    let check = check(&sandbox, &["--attr", "tenant=private-tenant-name"]);
    assert_decision(&check, "update", Some("ids"));
    sandbox
        .client(["update", "--yes", "--attr", "tenant=private-tenant-name"])
        .success();
    assert_same_tree(&sandbox.root().join("current"), &r2);

    let requests = server.requests();
    assert!(requests.len() >= 4, "{requests:?}");
    for secret in [
        "zz-secret-region",
        "4815162",
        "private-tenant-name",
        "region",
        "user_id",
        "tenant",
    ] {
        assert!(
            requests.iter().all(|path| !path.contains(secret)),
            "`{secret}` was sent: {requests:?}"
        );
    }
}

#[test]
fn now_skips_the_share_but_never_a_pause_or_a_yank() {
    let (sandbox, _nginx, r1) = installed_one();
    let r2 = sample_release(&sandbox.path("r2"), "2");
    sandbox
        .publish(&r2, "2.0.0", &["--rollout", "0%"])
        .success();
    assert_decision(&check(&sandbox, &[]), "deferred", None);
    let manual = check(&sandbox, &["--now"]);
    assert_decision(&manual, "update", None);
    assert_eq!(manual["target"], "2.0.0");

    sandbox.control(&["pause", "2.0.0"]).success();
    let paused = check(&sandbox, &["--now"]);
    assert_decision(&paused, "deferred", None);
    assert_eq!(paused["exclusion"], "paused", "{paused:#}");
    let run = sandbox.client(["update", "--now", "--yes"]).success();
    run.assert_stdout("paused");
    assert_same_tree(&sandbox.root().join("current"), &r1);

    sandbox.control(&["resume", "2.0.0"]).success();
    sandbox.client(["update", "--now", "--yes"]).success();
    assert_same_tree(&sandbox.root().join("current"), &r2);

    // Yanked: the client on it moves back, and nobody is ever offered it again.
    sandbox.control(&["yank", "2.0.0"]).success();
    let moved = check(&sandbox, &["--now"]);
    assert_decision(&moved, "update", None);
    assert_eq!(moved["target"], "1.0.0");
    assert_eq!(moved["withdrawn"], "yanked");
    assert_eq!(moved["downgrade"], true);
    assert_eq!(moved["newest"], "1.0.0");
    sandbox.client(["update", "--yes"]).success();
    assert_same_tree(&sandbox.root().join("current"), &r1);
    let after = check(&sandbox, &["--now"]);
    assert_decision(&after, "up_to_date", None);
    assert_eq!(after["target"], Value::Null);
    assert_eq!(after["withdrawn"], Value::Null);
}

#[test]
fn a_yanked_release_moves_clients_back_to_the_tree_kept_on_disk() {
    let sandbox = Sandbox::new();
    let r1 = sample_release(&sandbox.path("r1"), "1.1");
    let r2 = sample_release(&sandbox.path("r2"), "1.2");
    sandbox.publish(&r1, "1.1.0", &[]).success();
    let server = FaultServer::serve(&sandbox.site());
    sandbox.init_client(&server.url());
    sandbox.client(["update", "--yes"]).success();
    sandbox.publish(&r2, "1.2.0", &[]).success();
    sandbox.client(["update", "--yes"]).success();
    assert_same_tree(&sandbox.root().join("current"), &r2);

    sandbox.control(&["yank", "1.2.0"]).success();
    let human = sandbox.client(["check"]).success();
    assert!(
        human
            .stdout
            .contains("1.2.0 was yanked: moving back to 1.1.0"),
        "{}",
        human.stdout
    );
    // A move back is an update like any other: it needs consent.
    let refused = sandbox.client(["update"]).code(1);
    assert!(refused.stderr.contains("--yes"), "{}", refused.stderr);
    assert_same_tree(&sandbox.root().join("current"), &r2);

    // With an empty cache, only the kept tree can avoid a download.
    std::fs::remove_dir_all(sandbox.root().join(".wavecast/cache")).unwrap();
    let before = server.requests().len();
    let run = sandbox.client(["update", "--yes"]).success();
    assert!(
        run.stderr
            .contains("1.2.0 was yanked: moving back to 1.1.0"),
        "{}",
        run.stderr
    );
    run.assert_stdout("switched back to 1.1.0");
    assert_same_tree(&sandbox.root().join("current"), &r1);
    let downloads: Vec<String> = server.requests()[before..]
        .iter()
        .filter(|path| path.ends_with(".tar.zst") || path.ends_with(".tar.gz"))
        .cloned()
        .collect();
    assert!(downloads.is_empty(), "{downloads:?}");

    let status = sandbox.client(["status", "--json"]).success().json();
    assert_eq!(status["current"], "1.1.0");
    assert_decision(&check(&sandbox, &[]), "up_to_date", None);
}

#[test]
fn a_ramp_defers_a_client_until_the_time_its_bucket_enters() {
    let (mut sandbox, _nginx, _) = installed_one();
    let start = "2031-05-01T00:00:00Z";
    sandbox.env.insert("WAVECAST_NOW".into(), start.into());
    let r2 = sample_release(&sandbox.path("r2"), "2");
    sandbox
        .publish(&r2, "2.0.0", &["--ramp", "0%@0h,100%@10d"])
        .success();

    // At the start the threshold is 0: everyone waits, and knows until when.
    let waiting = check(&sandbox, &[]);
    assert_decision(&waiting, "deferred", None);
    assert_eq!(waiting["threshold"], 0);
    let eligible_at = waiting["eligible_at"]
        .as_str()
        .expect("a ramp to 100% gives a date")
        .to_owned();
    let eligible: jiff::Timestamp = eligible_at.parse().unwrap();
    let bucket = waiting["bucket"].as_i64().unwrap();
    let expected = jiff::Timestamp::from_second(
        start.parse::<jiff::Timestamp>().unwrap().as_second() + bucket * 864_000 / 10_000,
    )
    .unwrap();
    assert!(
        (eligible.as_second() - expected.as_second()).abs() <= 87,
        "{eligible} vs about {expected}"
    );
    let human = sandbox.client(["check"]).success();
    assert!(
        human.stdout.contains("is ramping (threshold 0% now)")
            && human
                .stdout
                .contains(&format!("bucket {bucket} enters at {eligible_at}")),
        "{}",
        human.stdout
    );

    let just_before = jiff::Timestamp::from_second(eligible.as_second() - 1).unwrap();
    sandbox
        .env
        .insert("WAVECAST_NOW".into(), just_before.to_string());
    assert_decision(&check(&sandbox, &[]), "deferred", None);
    sandbox.env.insert("WAVECAST_NOW".into(), eligible_at);
    assert_decision(&check(&sandbox, &[]), "update", None);
    sandbox.client(["update", "--yes"]).success();
    assert_same_tree(&sandbox.root().join("current"), &r2);
}

#[test]
fn consent_on_a_terminal_shows_the_version_and_notes() {
    let sandbox = Sandbox::new();
    let r1 = sample_release(&sandbox.path("r1"), "1");
    sandbox
        .publish(&r1, "1.0.0", &["--notes", "Faster startup"])
        .success();
    sandbox.init_client(sandbox.site().to_str().unwrap());

    let declined = client_on_terminal(&sandbox, &["update"], "n\n");
    assert_eq!(declined.code, 0, "{}", declined.stdout);
    for needle in [
        "1.0.0 is available",
        "Faster startup",
        "Install 1.0.0? [y/N]",
        "not installing 1.0.0",
    ] {
        assert!(
            declined.stdout.contains(needle),
            "`{needle}` missing:\n{}",
            declined.stdout
        );
    }
    assert!(!sandbox.root().join("current").exists());

    let accepted = client_on_terminal(&sandbox, &["update"], "y\n");
    assert_eq!(accepted.code, 0, "{}", accepted.stdout);
    assert!(
        accepted.stdout.contains("installed 1.0.0"),
        "{}",
        accepted.stdout
    );
    assert_same_tree(&sandbox.root().join("current"), &r1);
}

#[test]
fn switching_channels_follows_the_new_one_and_never_moves_down() {
    let (sandbox, _nginx, _) = installed_one();
    let beta = sample_release(&sandbox.path("beta"), "2-beta");
    sandbox
        .publish(&beta, "2.0.0", &["--channel", "beta"])
        .success();
    assert_decision(&check(&sandbox, &[]), "up_to_date", None);

    let config = sandbox
        .client(["config", "--channel", "beta", "--json"])
        .success()
        .json();
    assert_eq!(config["channel"], "beta");
    assert_eq!(config["changed"], true);
    let on_beta = check(&sandbox, &[]);
    assert_decision(&on_beta, "update", None);
    assert_eq!(on_beta["channel"], "beta");
    sandbox.client(["update", "--yes"]).success();
    assert_same_tree(&sandbox.root().join("current"), &beta);

    // Back on stable, whose newest (1.0.0) is older: the client stays on 2.0.0.
    let human = sandbox.client(["config", "--channel", "stable"]).success();
    assert!(human.stdout.contains("channel: stable"), "{}", human.stdout);
    assert!(
        human.stderr.contains("now following channel `stable`"),
        "{}",
        human.stderr
    );
    let stable = check(&sandbox, &["--now"]);
    assert_decision(&stable, "up_to_date", None);
    assert_eq!(stable["current"], "2.0.0");
    assert_eq!(stable["newest"], "1.0.0");
    assert_eq!(stable["target"], Value::Null);
    sandbox.client(["update", "--yes"]).success();
    assert_same_tree(&sandbox.root().join("current"), &beta);

    let r3 = sample_release(&sandbox.path("r3"), "3");
    sandbox.publish(&r3, "2.1.0", &[]).success();
    assert_decision(&check(&sandbox, &[]), "update", None);
    sandbox.client(["update", "--yes"]).success();
    assert_same_tree(&sandbox.root().join("current"), &r3);
}
