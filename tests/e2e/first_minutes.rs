//! A client's first minutes: `init` verifies the site before it writes anything and
//! names what is wrong (a wrong or missing key, a dead server, a wrong path, a
//! forgotten `http://`), records the site's product, and a root never moves to
//! another product's releases.

use std::path::Path;

use wavecast_schema::PublicKey;
use wavecast_tests::{
    Fault, FaultServer, Nginx, Run, Sandbox, assert_same_tree, free_port, sample_release,
};

/// The key id minisign shows for the public key in `path`.
fn key_id(path: &Path) -> String {
    let key: PublicKey = std::fs::read_to_string(path).unwrap().parse().unwrap();
    key.key_id().to_string()
}

/// `init` of the sandbox's client root with `url` and `pubkey`, and extra flags.
fn init(sandbox: &Sandbox, url: &str, pubkey: &str, extra: &[&str]) -> Run {
    let mut args = vec!["init", "--url", url, "--pubkey", pubkey];
    args.extend_from_slice(extra);
    sandbox.client(args)
}

/// Asserts a failed `init` exited `code`, said each of `needles`, and wrote nothing.
#[track_caller]
fn refused(sandbox: &Sandbox, run: &Run, code: i32, needles: &[&str]) {
    assert_eq!(run.code, code, "{}", run.stderr);
    assert!(run.stderr.starts_with("error: "), "{}", run.stderr);
    for needle in needles {
        assert!(
            run.stderr.contains(needle),
            "expected `{needle}` in:\n{}",
            run.stderr
        );
    }
    assert!(
        !sandbox.root().exists(),
        "a failed init wrote {}",
        sandbox.root().display()
    );
}

#[test]
fn init_verifies_the_site_before_it_writes_and_names_what_is_wrong() {
    let sandbox = Sandbox::new();
    sandbox
        .publish(&sample_release(&sandbox.path("r1"), "1"), "1.0.0", &[])
        .success();
    let nginx = Nginx::serve(&sandbox.site());
    let pubkey = sandbox.pubkey();
    let pubkey = pubkey.to_str().unwrap();

    // Another publisher's key.
    sandbox
        .wavecast(["keygen", "--out"], [sandbox.path("other")])
        .success();
    let other = sandbox.path("other/wavecast.pub");
    let run = init(&sandbox, &nginx.url(), other.to_str().unwrap(), &[]);
    refused(
        &sandbox,
        &run,
        1,
        &[
            "does not verify against the trusted keys",
            &format!(
                "it is signed by key {}, not by {}",
                key_id(&sandbox.pubkey()),
                key_id(&other)
            ),
        ],
    );

    // A key file that is not there, and one that holds no key.
    let missing = sandbox.path("keys/missing.pub");
    let run = init(&sandbox, &nginx.url(), missing.to_str().unwrap(), &[]);
    refused(
        &sandbox,
        &run,
        2,
        &[
            &format!("failed to read public key `{}`", missing.display()),
            "No such file",
            "hint: pass the path of the site's minisign `.pub` file",
        ],
    );
    std::fs::write(sandbox.path("garbage.pub"), "not a key\n").unwrap();
    let run = init(
        &sandbox,
        &nginx.url(),
        sandbox.path("garbage.pub").to_str().unwrap(),
        &[],
    );
    refused(&sandbox, &run, 2, &["invalid minisign public key"]);

    // Nothing listening, a path with no site, and a URL without its scheme.
    let dead = format!("http://127.0.0.1:{}/", free_port());
    let run = init(&sandbox, &dead, pubkey, &[]);
    refused(
        &sandbox,
        &run,
        1,
        &[
            &format!("failed to fetch the channel manifest `{dead}channels/stable.json`"),
            "caused by: the server could not be reached",
            "Connection refused",
        ],
    );
    let wrong_path = format!("{}nope/", nginx.url());
    let run = init(&sandbox, &wrong_path, pubkey, &[]);
    refused(
        &sandbox,
        &run,
        1,
        &[
            &format!("`{wrong_path}channels/stable.json`"),
            "HTTP 404 Not Found",
        ],
    );
    let run = init(&sandbox, "127.0.0.1:8080", pubkey, &[]);
    refused(
        &sandbox,
        &run,
        2,
        &[
            "`127.0.0.1:8080` is not a folder on this machine, and not a URL",
            "hint: for a web server, write `http://127.0.0.1:8080/`",
        ],
    );
    // A second URL that fails fails the whole init, naming it.
    let run = sandbox.client([
        "init",
        "--url",
        &nginx.url(),
        "--url",
        &dead,
        "--pubkey",
        pubkey,
    ]);
    refused(
        &sandbox,
        &run,
        1,
        &[&format!("`{dead}channels/stable.json`")],
    );
    // The site's product is checked when given.
    let run = init(&sandbox, &nginx.url(), pubkey, &["--product", "other-app"]);
    refused(
        &sandbox,
        &run,
        1,
        &["is for product `app`, but this root installs `other-app`"],
    );

    // The right site: what was verified is said, and the product recorded.
    let run = init(&sandbox, &nginx.url(), pubkey, &[]).success();
    assert!(
        run.stderr.contains(&format!(
            "verified {}: product `app`, channel stable, serial 1, newest release 1.0.0 (1 release for ",
            nginx.url()
        )) && run.stderr.contains(&format!(
            "signed by release key {} of root v1",
            key_id(&sandbox.pubkey())
        )),
        "{}",
        run.stderr
    );
    let config: serde_json::Value = serde_json::from_slice(
        &std::fs::read(sandbox.root().join(".wavecast/config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(config["product"], "app", "{config}");
}

#[test]
fn a_root_never_moves_to_another_products_releases() {
    // Two products signed by one key: `app` on one site, `other` on another.
    let sandbox = Sandbox::new();
    let r1 = sample_release(&sandbox.path("r1"), "1");
    sandbox.publish(&r1, "1.0.0", &[]).success();
    let other_site = sandbox.path("other-site");
    let other_release = sample_release(&sandbox.path("other-release"), "other");
    sandbox
        .wavecast(
            ["publish".as_ref(), other_release.as_os_str()],
            [
                "--version".as_ref(),
                "9.0.0".as_ref(),
                "--product".as_ref(),
                "other".as_ref(),
                "--site".as_ref(),
                other_site.as_os_str(),
                "--key".as_ref(),
                sandbox.key().as_os_str(),
            ],
        )
        .success();
    let server = FaultServer::serve(&sandbox.site());
    sandbox.init_client(&server.url());
    sandbox.client(["update", "--yes"]).success();

    // The host serves the other product's manifest, correctly signed, at a serial
    // no lower than the one seen.
    let foreign = std::fs::read(other_site.join("channels/stable.json")).unwrap();
    server.set_fault("channels/stable.json", Fault::Replace(foreign));
    for args in [&["check"][..], &["update", "--yes"]] {
        let run = sandbox.client(args);
        assert_eq!(run.code, 1, "{}", run.stderr);
        assert!(
            run.stderr.contains(&format!(
                "error: manifest `{}channels/stable.json` is for product `other`, but this root installs `app`; refusing to switch products",
                server.url()
            )),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains("hint: "), "{}", run.stderr);
    }
    assert_same_tree(&sandbox.root().join("current"), &r1);

    // An offline root learns its product from its first verified manifest.
    let offline = sandbox.path("offline-root");
    sandbox
        .client_at(
            &offline,
            [
                "init",
                "--offline",
                "--url",
                &server.url(),
                "--pubkey",
                sandbox.pubkey().to_str().unwrap(),
            ],
        )
        .success();
    server.clear_faults();
    sandbox.client_at(&offline, ["check"]).success();
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(offline.join(".wavecast/config.json")).unwrap())
            .unwrap();
    assert_eq!(config["product"], "app", "{config}");
    server.set_fault(
        "channels/stable.json",
        Fault::Replace(std::fs::read(other_site.join("channels/stable.json")).unwrap()),
    );
    let run = sandbox.client_at(&offline, ["check"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("is for product `other`"),
        "{}",
        run.stderr
    );
}

/// A sandbox with 1.0.0 published to its site and the client initialized on it with
/// `extra` flags (nothing installed); returns the release.
fn initialized(extra: &[&str]) -> (Sandbox, std::path::PathBuf) {
    let sandbox = Sandbox::new();
    let release = sample_release(&sandbox.path("r1"), "1");
    sandbox.publish(&release, "1.0.0", &[]).success();
    let site = sandbox.site();
    let pubkey = sandbox.pubkey();
    init(
        &sandbox,
        site.to_str().unwrap(),
        pubkey.to_str().unwrap(),
        extra,
    )
    .success();
    (sandbox, release)
}

#[test]
fn settings_that_would_flood_the_host_or_delete_the_current_tree_are_refused() {
    let (sandbox, _) = initialized(&[]);
    let config = || sandbox.client(["config", "--json"]).success().stdout;
    let before = config();

    let poll = sandbox.client(["poll", "--interval", "0s"]);
    assert_eq!(poll.code, 2, "{}", poll.stderr);
    assert!(
        poll.stderr
            .contains("`0s` is shorter than 1s: a fleet polling that often floods the host"),
        "{}",
        poll.stderr
    );
    let keep = sandbox.client(["config", "--keep-releases", "0"]);
    assert_eq!(keep.code, 2, "{}", keep.stderr);
    assert!(
        keep.stderr
            .contains("keep at least 1 release: the current release's tree is always kept"),
        "{}",
        keep.stderr
    );
    assert_eq!(config(), before, "nothing changed");
}

/// Asserts `run` succeeded with its result on stdout, starting `result`, and
/// nothing on stderr (it ran under `-q`).
#[track_caller]
fn quiet_result(run: Run, result: &str) -> Run {
    let run = run.success();
    assert!(
        run.stdout.starts_with(result),
        "expected a result starting `{result}` on stdout, got:\n{}",
        run.stdout
    );
    assert_eq!(run.stderr, "", "-q leaves nothing on stderr but errors");
    run
}

#[test]
fn results_go_to_stdout_and_quiet_leaves_only_errors_on_stderr() {
    let (sandbox, release) = initialized(&["-q"]);
    let second = sample_release(&sandbox.path("r2"), "2");

    // The publisher: the result on stdout, progress and details on stderr.
    let published = sandbox.publish(&second, "1.1.0", &[]).success();
    assert!(
        published
            .stdout
            .starts_with("published 1.1.0 at 100% to channel `stable`"),
        "{}",
        published.stdout
    );
    assert!(
        !published.stdout.contains("packaged"),
        "{}",
        published.stdout
    );
    assert!(
        published.stderr.contains("packaged app: "),
        "{}",
        published.stderr
    );
    let site = sandbox.site();
    let (site, key, pubkey) = (site.as_os_str(), sandbox.key(), sandbox.pubkey());
    let change = |command: &str| {
        sandbox.wavecast(
            ["-q", command, "1.1.0", "--channel", "stable"],
            ["--site".as_ref(), site, "--key".as_ref(), key.as_os_str()],
        )
    };
    quiet_result(change("pause"), "1.1.0 on stable: ");
    quiet_result(change("resume"), "1.1.0 on stable: ");
    quiet_result(
        sandbox.wavecast(
            ["-q", "verify"],
            [site, "--pubkey".as_ref(), pubkey.as_os_str()],
        ),
        "verified 1 channel under root v1",
    );
    // The JSON document replaces the result.
    let json = sandbox.wavecast(
        ["verify", "--json"],
        [site, "--pubkey".as_ref(), pubkey.as_os_str()],
    );
    assert_eq!(json.success().json()["ok"], true);

    // The client, the same way.
    quiet_result(
        sandbox.client(["-q", "update", "--yes", "--to", "1.0.0"]),
        "installed 1.0.0 in releases/",
    );
    assert_same_tree(&sandbox.root().join("current"), &release);
    // The flag may come after the subcommand too.
    quiet_result(
        sandbox.client(["check", "--quiet"]),
        "update available: 1.0.0 -> 1.1.0",
    );
    quiet_result(
        sandbox.client(["-q", "update", "--yes"]),
        "installed 1.1.0 (was 1.0.0)",
    );
    quiet_result(
        sandbox.client(["-q", "launched"]),
        "1.1.0 is not confirmed yet: launch 1",
    );
    quiet_result(
        sandbox.client(["-q", "confirm"]),
        "confirmed 1.1.0 after 1 launch(es)",
    );
    quiet_result(sandbox.client(["-q", "update", "--yes"]), "up to date");
    quiet_result(
        sandbox.client(["-q", "rollback"]),
        "rolled back to 1.0.0 (was 1.1.0)",
    );
    quiet_result(sandbox.client(["-q", "unmark", "1.1.0"]), "unmarked 1.1.0");
    let updated = sandbox.client(["update", "--yes", "--json"]).success();
    assert_eq!(updated.json()["installed"], "1.1.0", "{}", updated.stdout);

    // An error still shows on stderr, with its hint.
    let status = sandbox.client_at(&sandbox.path("elsewhere"), ["-q", "status"]);
    assert_eq!(status.code, 2, "{}", status.stderr);
    assert!(status.stderr.starts_with("error: "), "{}", status.stderr);
    assert!(status.stderr.contains("\nhint: "), "{}", status.stderr);
    assert_eq!(status.stdout, "");
}

/// The subcommands `binary --help` lists.
fn subcommands(binary: &str) -> Vec<String> {
    let help = Run::from_output(
        std::process::Command::new(wavecast_tests::binary(binary))
            .arg("--help")
            .output()
            .unwrap(),
    )
    .success()
    .stdout;
    help.split("Commands:\n")
        .nth(1)
        .expect("a Commands section")
        .lines()
        .take_while(|line| line.starts_with("  "))
        // A name is indented by two spaces; its description's further lines by more.
        .filter(|line| !line[2..].starts_with(' '))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_subcommands_help_lists_the_exit_codes_and_names_its_values() {
    for binary in ["wavecast", "wavecast-update"] {
        let names = subcommands(binary);
        assert!(names.len() >= 10, "{binary}: {names:?}");
        for name in names {
            let mut args = vec![name.clone()];
            if name == "key" {
                args.push("rotate".to_owned());
            }
            args.push("--help".to_owned());
            let help = Run::from_output(
                std::process::Command::new(wavecast_tests::binary(binary))
                    .args(&args)
                    .output()
                    .unwrap(),
            )
            .success()
            .stdout;
            assert!(
                help.contains("\nExit codes:\n  0 "),
                "`{binary} {}` lists no exit codes:\n{help}",
                args.join(" ")
            );
            // Value names are chosen (<DURATION>, <TRIPLE>), not a field's name.
            let derived: Vec<&str> = help
                .split('<')
                .skip(1)
                .filter_map(|rest| rest.split_once('>').map(|(name, _)| name))
                .filter(|name| name.contains('_'))
                .collect();
            assert!(
                derived.is_empty(),
                "`{binary} {}`: {derived:?}",
                args.join(" ")
            );
        }
    }
}

#[test]
fn under_json_an_error_is_a_json_object_on_stdout_too() {
    let sandbox = Sandbox::new();
    // The client: a root that was never initialized.
    let client = sandbox.client(["status", "--json"]);
    assert_eq!(client.code, 2, "{}", client.stderr);
    assert!(client.stderr.starts_with("error: "), "{}", client.stderr);
    let error = client.json();
    assert_eq!(error["error"]["exit_code"], 2, "{error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("is not a wavecast install root"),
        "{error}"
    );
    assert!(error["error"]["hint"].is_string(), "{error}");

    // The publisher: a release folder that does not exist.
    let missing = sandbox.path("missing");
    let publisher = sandbox.wavecast(
        ["publish"],
        [
            missing.as_os_str(),
            "--version".as_ref(),
            "1.0.0".as_ref(),
            "--site".as_ref(),
            sandbox.site().as_os_str(),
            "--key".as_ref(),
            sandbox.key().as_os_str(),
            "--json".as_ref(),
        ],
    );
    assert_eq!(publisher.code, 2, "{}", publisher.stderr);
    let error = publisher.json();
    assert_eq!(error["error"]["exit_code"], 2, "{error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("does not exist"),
        "{error}"
    );
}
