//! Controlling a live rollout with `wavecast rollout`, `pause`, `resume`, `yank` and
//! `promote`, watched through real `wavecast-update` clients over nginx, with the
//! clock of both CLIs injected through `WAVECAST_NOW`.

use jiff::{SignedDuration, Timestamp};
use serde_json::Value;
use wavecast_schema::{Ramp, bucket};
use wavecast_tests::{Nginx, Sandbox, assert_same_tree, sample_release};

const T0: &str = "2026-11-21T00:00:00Z";

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn plus(time: Timestamp, seconds: i64) -> Timestamp {
    time.checked_add(SignedDuration::from_secs(seconds))
        .unwrap()
}

/// Asserts a `check --json` field the client may not report yet: when present it must
/// equal `expected`.
#[track_caller]
fn assert_if_reported(check: &Value, field: &str, expected: &Value) {
    if let Some(value) = check.get(field) {
        assert_eq!(value, expected, "`{field}` in {check}");
    }
}

/// The serial of the `stable` manifest.
fn serial(sandbox: &Sandbox) -> u64 {
    sandbox.manifest("stable").serial
}

/// Runs a channel-changing command that must succeed and bump the serial by exactly
/// one (the manifest is checked against its JSON Schema by `control`).
#[track_caller]
fn step_once(sandbox: &Sandbox, args: &[&str]) -> wavecast_tests::Run {
    let before = serial(sandbox);
    let run = sandbox.control(args).success();
    assert_eq!(
        serial(sandbox),
        before + 1,
        "{args:?} bumps the serial once"
    );
    run
}

#[test]
fn a_time_ramp_admits_a_deferred_client_at_its_eligible_at_to_the_second() {
    let mut sandbox = Sandbox::new();
    sandbox.set_now(at(T0));
    let r1 = sample_release(&sandbox.path("r1"), "1.0");
    let r2 = sample_release(&sandbox.path("r2"), "1.1");
    let r3 = sample_release(&sandbox.path("r3"), "1.2");
    sandbox.publish(&r1, "1.0.0", &[]).success();
    sandbox
        .publish(&r2, "1.1.0", &["--ramp", "1%@0h,5%@4h,25%@1d,100%@3d"])
        .success();
    let published = sandbox.release("stable", "1.1.0");
    let ramp: Ramp = "1%@0h,5%@4h,25%@1d,100%@3d".parse().unwrap();
    assert_eq!(published.rollout.share.ramp.as_ref(), Some(&ramp));
    assert_eq!(published.rollout.share.basis_points.get(), 10_000);
    assert_eq!(
        published.rollout.started_at,
        Some(at(T0)),
        "the ramp starts at publish time"
    );

    // A client outside the first 1 %: a fresh install gets 1.0.0 and waits for 1.1.0.
    let nginx = Nginx::serve(&sandbox.site());
    let (client, my_bucket) = sandbox.client_with_bucket(
        "ramp",
        &nginx.url(),
        &published.rollout.salt,
        50,
        |bucket| bucket >= 100,
    );
    sandbox.update_at(&client);
    assert_same_tree(&client.join("current"), &r1);
    let after = ramp
        .admitted_after(my_bucket)
        .expect("the ramp reaches 100 %");
    let eligible_at = plus(at(T0), i64::try_from(after).unwrap());
    let check = sandbox.check_at(&client);
    assert_eq!(check["decision"], "deferred", "{check}");
    assert_eq!(check["current"], "1.0.0");
    assert_eq!(check["bucket"], u64::from(my_bucket));
    assert_if_reported(&check, "eligible_at", &Value::from(eligible_at.to_string()));

    sandbox.set_now(plus(eligible_at, -1));
    let check = sandbox.check_at(&client);
    assert_eq!(check["decision"], "deferred", "one second early: {check}");
    sandbox.set_now(eligible_at);
    let check = sandbox.check_at(&client);
    assert_eq!(check["decision"], "update", "at eligible_at: {check}");
    assert_eq!(check["target"], "1.1.0");
    assert_if_reported(&check, "eligible_at", &Value::Null);
    sandbox.update_at(&client);
    assert_same_tree(&client.join("current"), &r2);

    // `--ramp 7d` is 0 % at publish time to 100 % a week later, linearly.
    let t1 = plus(at(T0), 4 * 86_400);
    sandbox.set_now(t1);
    sandbox.publish(&r3, "1.2.0", &["--ramp", "7d"]).success();
    let week = sandbox.release("stable", "1.2.0");
    assert_eq!(
        week.rollout.share.ramp,
        Some(Ramp::linear(7 * 86_400).unwrap())
    );
    assert_eq!(week.rollout.started_at, Some(t1));
    let week_bucket = bucket(&sandbox.install_id_at(&client), &week.rollout.salt);
    let after = Ramp::linear(7 * 86_400)
        .unwrap()
        .admitted_after(week_bucket)
        .unwrap();
    let eligible_at = plus(t1, i64::try_from(after).unwrap());
    let check = sandbox.check_at(&client);
    assert_eq!(check["decision"], "deferred", "{check}");
    assert_if_reported(&check, "eligible_at", &Value::from(eligible_at.to_string()));
    sandbox.set_now(plus(eligible_at, -1));
    assert_eq!(sandbox.check_at(&client)["decision"], "deferred");
    sandbox.set_now(eligible_at);
    let check = sandbox.check_at(&client);
    assert_eq!(check["decision"], "update", "{check}");
    assert_eq!(check["target"], "1.2.0");
}

#[test]
fn a_cap_moves_clients_above_it_back_to_the_previous_release() {
    let mut sandbox = Sandbox::new();
    sandbox.set_now(at(T0));
    let r1 = sample_release(&sandbox.path("r1"), "1.0");
    let r2 = sample_release(&sandbox.path("r2"), "1.1");
    let r3 = sample_release(&sandbox.path("r3"), "1.2");
    sandbox.publish(&r1, "1.0.0", &[]).success();
    sandbox.publish(&r2, "1.1.0", &[]).success();
    let nginx = Nginx::serve(&sandbox.site());
    let salt = sandbox.release("stable", "1.1.0").rollout.salt;
    let (inside, _) = sandbox.client_with_bucket("in", &nginx.url(), &salt, 50, |b| b < 3333);
    let (outside, _) = sandbox.client_with_bucket("out", &nginx.url(), &salt, 50, |b| b >= 3333);
    for client in [&inside, &outside] {
        sandbox.update_at(client);
        assert_same_tree(&client.join("current"), &r2);
    }

    let before = serial(&sandbox);
    let cap = [
        "rollout", "1.1.0", "100%", "--cap", "1000000", "--fleet", "3000000",
    ];
    let run = sandbox.control(&cap).success();
    run.assert_stdout("cap none -> 33.33%");
    assert_eq!(serial(&sandbox), before + 1);
    let capped = sandbox.release("stable", "1.1.0");
    assert_eq!(capped.rollout.cap.map(|cap| cap.get()), Some(3333));

    let check = sandbox.check_at(&outside);
    assert_eq!(check["decision"], "update", "{check}");
    assert_eq!(check["target"], "1.0.0");
    assert_if_reported(&check, "withdrawn", &Value::from("capped"));
    sandbox.update_at(&outside);
    assert_same_tree(&outside.join("current"), &r1);
    assert_eq!(sandbox.current_at(&outside).as_deref(), Some("1.0.0"));

    let check = sandbox.check_at(&inside);
    assert_eq!(check["decision"], "up_to_date", "{check}");
    assert_eq!(check["threshold"], 3333);

    // Lifting the cap lets the client back up.
    sandbox.control(&["rollout", "1.1.0", "--no-cap"]).success();
    assert_eq!(sandbox.release("stable", "1.1.0").rollout.cap, None);
    let check = sandbox.check_at(&outside);
    assert_eq!(check["target"], "1.1.0", "{check}");

    // `publish --cap --fleet` caps a new release the same way.
    sandbox
        .publish(&r3, "1.2.0", &["--cap", "1000000", "--fleet", "3000000"])
        .success();
    let published = sandbox.release("stable", "1.2.0");
    assert_eq!(published.rollout.cap.map(|cap| cap.get()), Some(3333));
    let check = sandbox.check_at(&inside);
    assert_eq!(check["threshold"], 3333, "{check}");
}

#[test]
fn rollout_pause_resume_and_yank_each_bump_the_serial_once() {
    let mut sandbox = Sandbox::new();
    sandbox.set_now(at(T0));
    let r1 = sample_release(&sandbox.path("r1"), "1.0");
    let r2 = sample_release(&sandbox.path("r2"), "1.1");
    sandbox.publish(&r1, "1.0.0", &[]).success();
    sandbox
        .publish(&r2, "1.1.0", &["--rollout", "0%"])
        .success();
    let nginx = Nginx::serve(&sandbox.site());
    let first = sandbox.new_client("first", &nginx.url());
    let second = sandbox.new_client("second", &nginx.url());
    for client in [&first, &second] {
        sandbox.update_at(client);
        assert_same_tree(&client.join("current"), &r1);
    }
    let salt = sandbox.release("stable", "1.1.0").rollout.salt;
    let first_bucket = bucket(&sandbox.install_id_at(&first), &salt);
    let check = sandbox.check_at(&first);
    assert_eq!(check["decision"], "deferred", "{check}");
    assert_eq!(check["threshold"], 0);

    // Raising the share: 50 % admits exactly the buckets below 5000, 100 % everyone.
    let run = step_once(&sandbox, &["rollout", "1.1.0", "50%"]);
    run.assert_stdout("1.1.0 on stable: rollout 0% -> 50%");
    let check = sandbox.check_at(&first);
    assert_eq!(check["threshold"], 5000, "{check}");
    assert_eq!(check["bucket"], u64::from(first_bucket));
    let expected = if first_bucket < 5000 {
        "update"
    } else {
        "deferred"
    };
    assert_eq!(check["decision"], expected, "{check}");
    step_once(&sandbox, &["rollout", "1.1.0", "100%"]);
    let check = sandbox.check_at(&first);
    assert_eq!(check["decision"], "update", "{check}");
    assert_eq!(check["target"], "1.1.0");
    sandbox.update_at(&first);
    assert_same_tree(&first.join("current"), &r2);

    // Pause: nobody new gets 1.1.0; clients already on it stay.
    let paused_at = plus(at(T0), 3600);
    sandbox.set_now(paused_at);
    let run = step_once(&sandbox, &["pause", "1.1.0", "--json"]);
    let json = run.json();
    assert_eq!(json["schema_version"], 1);
    assert_eq!(json["command"], "pause");
    assert_eq!(json["serial"], serial(&sandbox));
    assert_eq!(
        sandbox.release("stable", "1.1.0").rollout.paused_at,
        Some(paused_at)
    );
    let check = sandbox.check_at(&second);
    assert_eq!(check["decision"], "deferred", "{check}");
    assert_if_reported(&check, "exclusion", &Value::from("paused"));
    assert_eq!(sandbox.check_at(&first)["decision"], "up_to_date");
    let again = sandbox.control(&["pause", "1.1.0"]).code(2);
    assert!(again.stderr.contains("already paused"), "{}", again.stderr);
    assert_eq!(serial(&sandbox), json["serial"]);

    // Resume: offered again.
    sandbox.set_now(plus(paused_at, 600));
    step_once(&sandbox, &["resume", "1.1.0"]);
    assert_eq!(sandbox.release("stable", "1.1.0").rollout.paused_at, None);
    let check = sandbox.check_at(&second);
    assert_eq!(check["decision"], "update", "{check}");
    assert_eq!(check["target"], "1.1.0");
    sandbox.update_at(&second);
    assert_same_tree(&second.join("current"), &r2);

    // Yank: clients on 1.1.0 move back to 1.0.0, and nobody is offered 1.1.0.
    let run = step_once(&sandbox, &["yank", "1.1.0"]);
    assert!(
        !run.stderr.contains("warning"),
        "1.0.0 is still live: {}",
        run.stderr
    );
    assert!(sandbox.release("stable", "1.1.0").rollout.yanked);
    for client in [&first, &second] {
        let check = sandbox.check_at(client);
        assert_eq!(check["decision"], "update", "{check}");
        assert_eq!(check["target"], "1.0.0");
        assert_if_reported(&check, "withdrawn", &Value::from("yanked"));
        sandbox.update_at(client);
        assert_same_tree(&client.join("current"), &r1);
        let check = sandbox.check_at(client);
        assert_eq!(check["decision"], "up_to_date", "{check}");
        assert_eq!(check["target"], Value::Null);
    }
    let fresh = sandbox.new_client("fresh", &nginx.url());
    let check = sandbox.check_at(&fresh);
    assert_eq!(
        check["target"], "1.0.0",
        "a yanked release is never a target: {check}"
    );
    assert_eq!(check["newest"], "1.0.0");

    // Undoing the yank offers 1.1.0 again.
    step_once(&sandbox, &["yank", "1.1.0", "--undo"]);
    let check = sandbox.check_at(&first);
    assert_eq!(check["target"], "1.1.0", "{check}");
}

#[test]
fn min_version_makes_the_update_mandatory_below_it() {
    let mut sandbox = Sandbox::new();
    sandbox.set_now(at(T0));
    let r1 = sample_release(&sandbox.path("r1"), "1.0");
    let r2 = sample_release(&sandbox.path("r2"), "1.1");
    sandbox.publish(&r1, "1.0.0", &[]).success();
    let nginx = Nginx::serve(&sandbox.site());
    let client = sandbox.new_client("old", &nginx.url());
    sandbox.update_at(&client);
    sandbox
        .publish(
            &r2,
            "1.1.0",
            &[
                "--rollout",
                "0%",
                "--min-version",
                "1.1",
                "--rule",
                "lab: server_id ^= lab- -> exclude",
            ],
        )
        .success();
    let rules = sandbox.release("stable", "1.1.0").rollout.rules;
    let names: Vec<&str> = rules.iter().map(|rule| rule.name.as_str()).collect();
    assert_eq!(names, ["mandatory-below-1.1.0", "lab"]);
    let check = sandbox.check_at(&client);
    assert_eq!(
        check["decision"], "update",
        "at 0 %, but mandatory: {check}"
    );
    assert_eq!(check["target"], "1.1.0");
    assert_if_reported(&check, "mandatory", &Value::Bool(true));
    assert_if_reported(&check, "rule", &Value::from("mandatory-below-1.1.0"));

    // `rollout --clear-rules` removes them; the 0 % share applies again.
    sandbox
        .control(&["rollout", "1.1.0", "--clear-rules"])
        .success();
    assert!(sandbox.release("stable", "1.1.0").rollout.rules.is_empty());
    assert_eq!(sandbox.check_at(&client)["decision"], "deferred");
    sandbox.update_at(&client);
    assert_same_tree(&client.join("current"), &r1);
}

#[test]
fn promote_copies_a_beta_release_to_stable_with_a_new_salt() {
    let mut sandbox = Sandbox::new();
    sandbox.set_now(at(T0));
    let r1 = sample_release(&sandbox.path("r1"), "1.0");
    let r2 = sample_release(&sandbox.path("r2"), "2.0");
    sandbox.publish(&r1, "1.0.0", &[]).success();
    sandbox
        .publish(&r2, "2.0.0", &["--channel", "beta", "--rollout", "10%"])
        .success();
    let nginx = Nginx::serve(&sandbox.site());
    let client = sandbox.new_client("stable", &nginx.url());
    sandbox.update_at(&client);
    assert_same_tree(&client.join("current"), &r1);

    let later = plus(at(T0), 86_400);
    sandbox.set_now(later);
    let before = serial(&sandbox);
    let run = sandbox
        .control(&[
            "promote",
            "2.0.0",
            "--from",
            "beta",
            "--to",
            "stable",
            "--rollout",
            "100%",
            "--json",
        ])
        .success();
    assert_eq!(run.json()["schema_version"], 1);
    assert_eq!(run.json()["to"], "stable");
    assert_eq!(serial(&sandbox), before + 1);
    let beta = sandbox.release("beta", "2.0.0");
    let promoted = sandbox.release("stable", "2.0.0");
    assert_ne!(
        promoted.rollout.salt, beta.rollout.salt,
        "a new salt per channel"
    );
    assert_eq!(promoted.platforms, beta.platforms, "the same packages");
    assert_eq!(promoted.rollout.share.basis_points.get(), 10_000);
    assert_eq!(promoted.published_at, later);
    assert_eq!(
        sandbox.manifest("beta").serial,
        1,
        "the source channel is untouched"
    );

    let check = sandbox.check_at(&client);
    assert_eq!(check["decision"], "update", "{check}");
    assert_eq!(check["target"], "2.0.0");
    sandbox.update_at(&client);
    assert_same_tree(&client.join("current"), &r2);

    let missing = sandbox
        .control(&["promote", "9.9.9", "--from", "beta", "--to", "stable"])
        .code(2);
    assert!(missing.stderr.starts_with("error: "), "{}", missing.stderr);
    assert!(missing.stderr.contains("9.9.9"), "{}", missing.stderr);
    let twice = sandbox
        .control(&["promote", "2.0.0", "--from", "beta", "--to", "stable"])
        .code(2);
    assert!(
        twice.stderr.contains("already published"),
        "{}",
        twice.stderr
    );
    sandbox
        .control(&[
            "promote", "2.0.0", "--from", "beta", "--to", "stable", "--force", "--ramp", "7d",
        ])
        .success();
    let forced = sandbox.release("stable", "2.0.0");
    assert_eq!(
        forced.rollout.salt, promoted.rollout.salt,
        "--force keeps the salt"
    );
    assert_eq!(forced.rollout.started_at, Some(later));
}

#[test]
fn rollout_commands_refuse_unknown_versions_and_bad_flags() {
    let mut sandbox = Sandbox::new();
    sandbox.set_now(at(T0));
    let r1 = sample_release(&sandbox.path("r1"), "1.0");
    sandbox.publish(&r1, "1.0.0", &[]).success();

    let unknown = sandbox.control(&["rollout", "9.9.9", "50%"]).code(2);
    assert!(
        unknown
            .stderr
            .starts_with("error: version 9.9.9 is not published on channel `stable` (live: 1.0.0)"),
        "{}",
        unknown.stderr
    );
    let not_paused = sandbox.control(&["resume", "1.0.0"]).code(2);
    assert!(
        not_paused.stderr.contains("is not paused"),
        "{}",
        not_paused.stderr
    );
    for bad in [
        &["rollout", "1.0.0", "50%", "--cap", "5"][..],
        &["rollout", "1.0.0", "50%", "--fleet", "5"],
        &["rollout", "1.0.0", "--cap", "6", "--fleet", "5"],
        &["rollout", "1.0.0", "--cap", "1", "--fleet", "0"],
        &["rollout", "1.0.0", "--cap", "1", "--fleet", "5", "--no-cap"],
        &["rollout", "1.0.0", "50%", "--ramp", "7d"],
        &["rollout", "1.0.0", "--rule", "no arrow"],
        &[
            "rollout",
            "1.0.0",
            "--rule",
            "a: x = 1 -> 5%",
            "--rule",
            "a: x = 2 -> 6%",
        ],
        &[
            "rollout",
            "1.0.0",
            "--rule",
            "a: x = 1 -> 5%",
            "--clear-rules",
        ],
        &["rollout", "1.0.0"],
        &["pause", "1.0.0", "--channel", "beta"],
        &["yank", "1.0.0", "--undo"],
    ] {
        let run = sandbox.control(bad).code(2);
        assert!(run.stderr.starts_with("error: "), "{bad:?}: {}", run.stderr);
    }
    assert_eq!(serial(&sandbox), 1, "no failed command wrote a manifest");

    // Yanking the only live release works, with a warning.
    let run = sandbox.control(&["yank", "1.0.0"]).success();
    assert!(
        run.stderr.contains("warning: no other release is live"),
        "{}",
        run.stderr
    );
    sandbox.control(&["yank", "1.0.0"]).code(2);
    assert_eq!(serial(&sandbox), 2);
}
