//! Hostile hosts and hostile packages: every attack ends in a clear error, exit code 1,
//! and the installed release untouched.

use wavecast_tests::hostile::{RawEntry, raw_tar_gz, replace_newest_package, resign};
use wavecast_tests::{Fault, FaultServer, Sandbox, assert_same_tree, sample_release};

/// A sandbox whose client has 1.0.0 installed from a fault server, with 2.0.0 published
/// (not yet installed). Returns the server and both release folders.
fn installed_with_pending_update() -> (Sandbox, FaultServer, std::path::PathBuf, std::path::PathBuf)
{
    let sandbox = Sandbox::new();
    let r1 = sample_release(&sandbox.path("r1"), "1");
    let r2 = sample_release(&sandbox.path("r2"), "2");
    sandbox.publish(&r1, "1.0.0", &[]).success();
    let server = FaultServer::serve(&sandbox.site());
    sandbox.init_client(&server.url());
    sandbox.client(["update", "--yes"]).success();
    sandbox.publish(&r2, "2.0.0", &[]).success();
    (sandbox, server, r1, r2)
}

fn newest_package_path(sandbox: &Sandbox) -> String {
    let manifest = sandbox.manifest("stable");
    manifest.releases[0].platforms["any"].modules["app"]
        .package
        .path
        .to_string()
}

/// Runs `update --yes`, expects exit 1 with `needle` in the error, and checks that
/// 1.0.0 is still the intact current release.
#[track_caller]
fn update_fails_cleanly(sandbox: &Sandbox, r1: &std::path::Path, needle: &str) -> String {
    // `--full` takes whole packages, so an attack on a package cannot be sidestepped by
    // the differential path (which has its own fault tests in `delta`).
    let run = sandbox.client(["update", "--yes", "--full"]);
    assert_eq!(
        run.code, 1,
        "stdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
    assert!(run.stderr.starts_with("error: "), "{}", run.stderr);
    assert!(
        run.stderr.to_lowercase().contains(needle),
        "expected `{needle}` in:\n{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("panicked") && !run.stderr.contains("RUST_BACKTRACE"),
        "{}",
        run.stderr
    );
    assert_same_tree(&sandbox.root().join("current"), r1);
    run.stderr
}

#[test]
fn a_package_with_wrong_bytes_is_refused() {
    let (sandbox, server, r1, r2) = installed_with_pending_update();
    server.set_fault(&newest_package_path(&sandbox), Fault::Corrupt);
    update_fails_cleanly(&sandbox, &r1, "hash");
    // Once the host serves the right bytes again, the update goes through.
    server.clear_faults();
    sandbox.client(["update", "--yes"]).success();
    assert_same_tree(&sandbox.root().join("current"), &r2);
}

#[test]
fn a_truncated_package_is_refused() {
    let (sandbox, server, r1, _) = installed_with_pending_update();
    server.set_fault(&newest_package_path(&sandbox), Fault::Truncate(100));
    update_fails_cleanly(&sandbox, &r1, "bytes");
}

#[test]
fn a_host_sending_more_than_declared_is_cut_off() {
    let (sandbox, server, r1, _) = installed_with_pending_update();
    server.set_fault(&newest_package_path(&sandbox), Fault::Extend(5 << 20));
    update_fails_cleanly(&sandbox, &r1, "more than");
}

#[test]
fn a_manifest_signed_by_another_key_is_refused() {
    let (sandbox, server, r1, r2) = installed_with_pending_update();
    let impostor = Sandbox::new();
    impostor.publish(&r2, "3.0.0", &[]).success();
    let forged = std::fs::read(impostor.site().join("channels/stable.json")).unwrap();
    server.set_fault("channels/stable.json", Fault::Replace(forged));
    update_fails_cleanly(&sandbox, &r1, "signature");
}

#[test]
fn a_tampered_manifest_is_refused() {
    let (sandbox, server, r1, _) = installed_with_pending_update();
    let bytes = std::fs::read(sandbox.site().join("channels/stable.json")).unwrap();
    let tampered = String::from_utf8(bytes).unwrap().replacen(
        "\\\"basis_points\\\": 10000",
        "\\\"basis_points\\\": 9999",
        1,
    );
    assert!(tampered.contains("9999"));
    server.set_fault(
        "channels/stable.json",
        Fault::Replace(tampered.into_bytes()),
    );
    update_fails_cleanly(&sandbox, &r1, "signature");
}

#[test]
fn a_replayed_older_manifest_is_refused() {
    let (sandbox, server, r1, _) = installed_with_pending_update();
    let old = std::fs::read(sandbox.site().join("channels/stable.json")).unwrap();
    // The client sees serial N+1, then a host replays serial N.
    resign(&sandbox, |_| {});
    sandbox.client(["check", "--json"]).success();
    server.set_fault("channels/stable.json", Fault::Replace(old));
    let error = update_fails_cleanly(&sandbox, &r1, "serial");
    assert!(
        error.contains('3') && error.contains('2'),
        "the error names both serials: {error}"
    );
}

#[test]
fn an_expired_manifest_is_refused() {
    let (mut sandbox, _server, r1, _) = installed_with_pending_update();
    sandbox
        .env
        .insert("WAVECAST_NOW".into(), "2099-01-01T00:00:00Z".into());
    update_fails_cleanly(&sandbox, &r1, "expired");
}

#[test]
fn a_manifest_for_another_channel_is_refused() {
    let (sandbox, server, r1, r2) = installed_with_pending_update();
    sandbox
        .publish(&r2, "9.0.0", &["--channel", "beta"])
        .success();
    let beta = std::fs::read(sandbox.site().join("channels/beta.json")).unwrap();
    server.set_fault("channels/stable.json", Fault::Replace(beta));
    update_fails_cleanly(&sandbox, &r1, "channel");
}

#[test]
fn archive_entries_that_escape_or_are_not_plain_files_are_refused() {
    let cases: Vec<(&str, Vec<RawEntry<'static>>)> = vec![
        ("..", vec![RawEntry::file("../escaped", b"evil")]),
        (
            "/",
            vec![RawEntry::file("/tmp/wavecast-absolute-escape", b"evil")],
        ),
        (
            "symlink",
            vec![RawEntry {
                name: "link",
                kind: tar::EntryType::Symlink,
                content: b"",
                link: Some("/etc/passwd"),
                mode: 0o777,
            }],
        ),
        (
            "link",
            vec![
                RawEntry::file("a", b"x"),
                RawEntry {
                    name: "hard",
                    kind: tar::EntryType::Link,
                    content: b"",
                    link: Some("a"),
                    mode: 0o644,
                },
            ],
        ),
        (
            "device",
            vec![RawEntry {
                name: "dev",
                kind: tar::EntryType::Char,
                content: b"",
                link: None,
                mode: 0o644,
            }],
        ),
    ];
    for (needle, entries) in cases {
        let (sandbox, _server, r1, _) = installed_with_pending_update();
        replace_newest_package(&sandbox, &raw_tar_gz(&entries), 100);
        let stderr = update_fails_cleanly(&sandbox, &r1, needle);
        assert!(
            !sandbox.path("escaped").exists() && !sandbox.root().join("releases/escaped").exists(),
            "{stderr}"
        );
        assert!(!std::path::Path::new("/tmp/wavecast-absolute-escape").exists());
    }
}

#[test]
fn a_decompression_bomb_is_stopped_at_the_declared_size() {
    let (sandbox, _server, r1, _) = installed_with_pending_update();
    let zeros = vec![0u8; 20 << 20];
    let bomb = raw_tar_gz(&[RawEntry::file("zeros", &zeros)]);
    assert!(
        bomb.len() < 100_000,
        "the bomb compresses well: {}",
        bomb.len()
    );
    replace_newest_package(&sandbox, &bomb, 1 << 20);
    update_fails_cleanly(&sandbox, &r1, "size");
}

#[test]
fn setuid_bits_are_never_installed() {
    let (sandbox, _server, _, _) = installed_with_pending_update();
    let package = raw_tar_gz(&[RawEntry {
        name: "tool",
        kind: tar::EntryType::Regular,
        content: b"#!/bin/sh\n",
        link: None,
        mode: 0o4755,
    }]);
    replace_newest_package(&sandbox, &package, 10);
    sandbox.client(["update", "--yes", "--full"]).success();
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(sandbox.root().join("current/tool"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o7777, 0o755);
}
