//! A person's view and choice: `list` shows every release and what it is to this
//! client, `update --to` installs a chosen one within its rules, `config --pin`
//! keeps a client on a line, and `check` names what really holds a client back.

use serde_json::Value;
use wavecast_tests::{Nginx, Run, Sandbox, sample_release};

/// A sandbox whose client installed 1.0.0 from nginx, and the server.
fn installed_one() -> (Sandbox, Nginx) {
    let sandbox = Sandbox::new();
    publish(&sandbox, "1.0.0", &[]);
    let nginx = Nginx::serve(&sandbox.site());
    sandbox.init_client(&nginx.url());
    sandbox.client(["update", "--yes"]).success();
    (sandbox, nginx)
}

/// Publishes a release of a sample tree whose content depends on `version`.
fn publish(sandbox: &Sandbox, version: &str, args: &[&str]) {
    let tree = sample_release(&sandbox.path(&format!("release-{version}")), version);
    sandbox.publish(&tree, version, args).success();
}

/// Asserts a refused `update` exited 2 with `needles` in its error and its hint.
#[track_caller]
fn refused(run: &Run, needles: &[&str]) {
    assert_eq!(run.code, 2, "{}", run.stderr);
    for needle in needles {
        assert!(
            run.stderr.contains(needle),
            "expected `{needle}` in:\n{}",
            run.stderr
        );
    }
}

fn current(sandbox: &Sandbox) -> String {
    let status = sandbox.client(["status", "--json"]).success().json();
    status["current"].as_str().unwrap_or_default().to_owned()
}

/// The `list --json` entry of `version`.
fn listed<'a>(list: &'a Value, version: &str) -> &'a Value {
    list["releases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|release| release["version"] == version)
        .unwrap_or_else(|| panic!("{version} is not listed: {list:#}"))
}

fn states(list: &Value, version: &str) -> Vec<String> {
    listed(list, version)["states"]
        .as_array()
        .unwrap()
        .iter()
        .map(|state| state.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn list_shows_every_release_and_update_to_installs_a_chosen_one_within_its_rules() {
    let (sandbox, _nginx) = installed_one();
    publish(&sandbox, "1.1.0", &["--ramp", "30d"]);
    publish(&sandbox, "1.2.0", &[]);
    sandbox.control(&["pause", "1.2.0"]).success();
    publish(&sandbox, "1.3.0", &[]);
    sandbox.control(&["yank", "1.3.0"]).success();
    publish(&sandbox, "1.4.0", &["--rollout", "0%"]);

    let list = sandbox.client(["list", "--json"]).success().json();
    assert_eq!(list["current"], "1.0.0", "{list:#}");
    assert_eq!(states(&list, "1.0.0"), ["current", "installed", "offered"]);
    assert_eq!(states(&list, "1.1.0"), ["eligible"]);
    assert!(
        listed(&list, "1.1.0")["eligible_at"].is_string(),
        "{list:#}"
    );
    assert_eq!(states(&list, "1.2.0"), ["paused"]);
    assert_eq!(states(&list, "1.3.0"), ["yanked"]);
    assert_eq!(states(&list, "1.4.0"), ["outside_share"]);
    assert!(listed(&list, "1.0.0")["download_bytes"].is_null());
    assert!(listed(&list, "1.3.0")["download_bytes"].is_null());
    for version in ["1.1.0", "1.2.0", "1.4.0"] {
        let bytes = listed(&list, version)["download_bytes"].as_u64().unwrap();
        assert!(bytes > 0, "{version}: {list:#}");
    }
    let text = sandbox.client(["list"]).success().stdout;
    for needle in [
        "channel `stable` (serial ",
        "VERSION",
        "DOWNLOAD",
        "current",
        "eligible at ",
        "paused",
        "yanked",
        "not offered yet (0%; this client's bucket is ",
    ] {
        assert!(text.contains(needle), "expected `{needle}` in:\n{text}");
    }

    // What cannot be chosen, each with the flag or command that would do it.
    refused(
        &sandbox.client(["update", "--yes", "--to", "9.9.9"]),
        &[
            "error: channel `stable` has no release 9.9.9 for platform",
            "it lists 1.0.0, 1.1.0, 1.2.0, 1.3.0 and 1.4.0",
            "hint: `wavecast-update list`",
        ],
    );
    refused(
        &sandbox.client(["update", "--yes", "--to", "1.3.0", "--now"]),
        &["error: 1.3.0 was yanked: it is offered to nobody"],
    );
    refused(
        &sandbox.client(["update", "--yes", "--to", "1.2.0"]),
        &[
            "error: the rollout of 1.2.0 is paused, so it is not offered to this client now",
            "hint: add --now to install it anyway",
        ],
    );
    assert_eq!(current(&sandbox), "1.0.0");

    sandbox
        .client(["update", "--yes", "--to", "1.2.0", "--now"])
        .success();
    assert_eq!(current(&sandbox), "1.2.0");
    refused(
        &sandbox.client(["update", "--yes", "--to", "1.1.0", "--now"]),
        &[
            "error: 1.1.0 is older than the installed 1.2.0",
            "hint: add --allow-downgrade",
        ],
    );
    let back = sandbox
        .client([
            "update",
            "--yes",
            "--to",
            "1.0.0",
            "--allow-downgrade",
            "--json",
        ])
        .success()
        .json();
    assert_eq!(back["installed"], "1.0.0", "{back:#}");
    assert_eq!(current(&sandbox), "1.0.0");

    // A rollback marks 1.2.0 bad here: choosing it again needs the mark cleared.
    sandbox
        .client(["update", "--yes", "--to", "1.2.0", "--now"])
        .success();
    sandbox.client(["rollback"]).success();
    refused(
        &sandbox.client(["update", "--yes", "--to", "1.2.0", "--now"]),
        &[
            "error: 1.2.0 is marked bad on this machine",
            "hint: it failed here before; `wavecast-update unmark 1.2.0`",
        ],
    );
    let list = sandbox.client(["list", "--json"]).success().json();
    assert!(
        states(&list, "1.2.0").contains(&"marked_bad".to_owned()),
        "{list:#}"
    );
    assert!(
        !states(&list, "1.2.0").contains(&"current".to_owned()),
        "{list:#}"
    );
}

#[test]
fn a_pin_keeps_the_client_on_its_line_and_says_what_it_holds_back() {
    let sandbox = Sandbox::new();
    publish(&sandbox, "1.4.0", &[]);
    let nginx = Nginx::serve(&sandbox.site());
    sandbox.init_client(&nginx.url());
    sandbox.client(["update", "--yes"]).success();
    publish(&sandbox, "1.4.1", &[]);
    publish(&sandbox, "1.5.0", &[]);

    let pinned = sandbox.client(["config", "--pin", "1.4"]).success();
    assert!(
        pinned
            .stderr
            .contains("pinned to 1.4: updates take the newest allowed release on that line"),
        "{}",
        pinned.stderr
    );
    let check = sandbox.client(["check"]).success();
    assert!(
        check.stdout.contains("update available: 1.4.0 -> 1.4.1")
            && check.stdout.contains(
                "; pinned to 1.4, so 1.5.0 is not taken (`wavecast-update config --unpin` follows the whole channel)"
            ),
        "{}",
        check.stdout
    );
    sandbox.client(["update", "--yes"]).success();
    assert_eq!(current(&sandbox), "1.4.1");
    let check = sandbox.client(["check", "--json"]).success().json();
    assert_eq!(check["decision"], "up_to_date", "{check:#}");
    assert_eq!(check["pin"], "1.4");
    assert_eq!(check["pinned_out"], "1.5.0");
    refused(
        &sandbox.client(["update", "--yes", "--to", "1.5.0"]),
        &[
            "error: 1.5.0 is outside the pin 1.4 this client stays on",
            "hint: `wavecast-update config --unpin`",
        ],
    );
    let list = sandbox.client(["list", "--json"]).success().json();
    assert_eq!(list["pin"], "1.4");
    assert_eq!(states(&list, "1.5.0"), ["offered", "off_pin"]);

    let unpinned = sandbox.client(["config", "--unpin"]).success();
    assert!(unpinned.stderr.contains("unpinned"), "{}", unpinned.stderr);
    sandbox.client(["update", "--yes"]).success();
    assert_eq!(current(&sandbox), "1.5.0");
    refused(
        &sandbox.client(["config", "--pin", "1.x.2"]),
        &["invalid value '1.x.2'"],
    );
}

#[test]
fn check_names_every_release_that_holds_the_client_back() {
    // 1.2.0 is paused for everyone; 1.1.0 would be offered but for its cap. The client
    // hears about both, each with its own bucket and threshold.
    let (sandbox, _nginx) = installed_one();
    // A cap of 1 in 10,000: 0.01 %.
    publish(&sandbox, "1.1.0", &["--cap", "1", "--fleet", "10000"]);
    publish(&sandbox, "1.2.0", &[]);
    sandbox.control(&["pause", "1.2.0"]).success();

    let check = sandbox.client(["check", "--json"]).success().json();
    assert_eq!(check["decision"], "deferred", "{check:#}");
    let held = check["held_back"].as_array().unwrap();
    assert_eq!(held.len(), 2, "{check:#}");
    assert_eq!(held[0]["version"], "1.2.0");
    assert_eq!(held[0]["reason"], "paused");
    assert_eq!(held[1]["version"], "1.1.0");
    assert_eq!(held[1]["reason"], "capped");
    assert_eq!(held[1]["threshold"], 1);
    let bucket = held[1]["bucket"].as_u64().unwrap();
    let text = sandbox.client(["check"]).success().stdout;
    assert!(
        text.contains(&format!(
            "deferred: the rollout of 1.2.0 is paused; 1.1.0 is capped at 0.01%; this client's bucket {bucket} is above the cap"
        )),
        "{text}"
    );
}
