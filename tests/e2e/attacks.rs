//! Hostile hosts and hostile packages: every attack ends in a clear error, exit code 1,
//! and the installed release untouched.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use jiff::SignedDuration;
use wavecast_schema::{Blake3Hash, EntryKind, FileIndex, FileMode, IndexEntry};
use wavecast_tests::delta::{file_index, index_path, module, newest_module, package_path};
use wavecast_tests::hostile::{
    RawEntry, index_of, pack_entries, raw_tar_gz, raw_tar_zst, replace_newest_package,
    replace_newest_package_with_index, resign, unpack_entries,
};
use wavecast_tests::{
    Fault, FaultServer, Sandbox, assert_same_tree, pseudo_random, sample_release,
};

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
    package_path(&newest_module(sandbox, "app"))
}

/// Runs `update --yes --full`, expects exit 1 with `needle` in the error, and checks
/// that 1.0.0 is still the intact current release.
#[track_caller]
fn update_fails_cleanly(sandbox: &Sandbox, r1: &std::path::Path, needle: &str) -> String {
    // `--full` takes whole packages, so an attack on a package cannot be sidestepped by
    // the differential path (which has its own fault tests in `delta`).
    fails_cleanly(sandbox, r1, &["update", "--yes", "--full"], needle)
}

/// Runs the client with `args`, expects exit 1 with `needle` (lowercase) in the error,
/// and checks that `r1` is still the intact current release. Returns stderr: any
/// `warning:` lines of fallbacks, then the error.
#[track_caller]
fn fails_cleanly(sandbox: &Sandbox, r1: &Path, args: &[&str], needle: &str) -> String {
    let run = sandbox.client(args);
    assert_eq!(
        run.code, 1,
        "stdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
    let error = run
        .stderr
        .lines()
        .find(|line| !line.starts_with("warning: "))
        .unwrap_or_default();
    assert!(error.starts_with("error: "), "{}", run.stderr);
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
        "\\\"basis_points\\\":10000",
        "\\\"basis_points\\\":9999",
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
            "inside `up`",
            vec![
                RawEntry {
                    name: "up",
                    kind: tar::EntryType::Symlink,
                    content: b"",
                    link: Some(".."),
                    mode: 0o777,
                },
                RawEntry::file("up/escaped", b"evil"),
            ],
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
            "character device",
            vec![RawEntry {
                name: "dev",
                kind: tar::EntryType::Char,
                content: b"",
                link: None,
                mode: 0o644,
            }],
        ),
        (
            "block device",
            vec![RawEntry {
                name: "disk",
                kind: tar::EntryType::Block,
                content: b"",
                link: None,
                mode: 0o644,
            }],
        ),
        (
            "fifo",
            vec![RawEntry {
                name: "pipe",
                kind: tar::EntryType::Fifo,
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
fn a_file_written_through_a_linked_directory_is_refused() {
    // A correctly signed release whose package makes `etc` a link to a directory
    // outside the tree, then writes `etc/passwd` "inside" it. Its signed file index
    // either says so (refused before anything is downloaded: nothing may lie inside a
    // link) or lists the link alone (refused while unpacking: nothing is written
    // through a link the package made).
    let outside_dir = tempfile::tempdir().unwrap();
    let outside = outside_dir.path();
    let target = outside.to_str().unwrap();
    let link = RawEntry {
        name: "etc",
        kind: tar::EntryType::Symlink,
        content: b"",
        link: Some(target),
        mode: 0o777,
    };
    let package = raw_tar_gz(&[
        link,
        RawEntry::file("etc/passwd", b"root::0:0::/:/bin/sh\n"),
    ]);
    let link_only = index_of(&raw_tar_gz(&[link]));
    for (index, needle) in [
        (
            index_of(&package),
            "`etc/passwd` lies inside `etc`, which is a symbolic link",
        ),
        (
            link_only,
            "holds `etc/passwd` inside `etc`, which it made a symbolic link; nothing is written through a link",
        ),
    ] {
        let (sandbox, _server, r1, _) = installed_with_pending_update();
        replace_newest_package_with_index(&sandbox, &package, 100, &index);
        update_fails_cleanly(&sandbox, &r1, needle);
        assert_eq!(
            std::fs::read_dir(outside).unwrap().count(),
            0,
            "nothing appeared outside the tree"
        );
        let leftovers: Vec<_> = std::fs::read_dir(sandbox.root().join("releases"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .filter(|name| name.to_string_lossy().starts_with('.'))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
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
    // The signed index lies too, claiming the declared size: the client only finds
    // out while unpacking.
    let claimed = FileIndex::new(vec![IndexEntry {
        path: "zeros".parse().unwrap(),
        kind: EntryKind::File {
            size: 1 << 20,
            blake3: Blake3Hash::of(&zeros[..1 << 20]),
            packed_size: 0,
        },
        mode: FileMode::from_permissions(0o644),
    }]);
    replace_newest_package_with_index(&sandbox, &bomb, 1 << 20, &claimed);
    update_fails_cleanly(&sandbox, &r1, "unpacks to more than its declared size");
}

#[test]
fn a_tar_zst_decompression_bomb_is_stopped_at_the_declared_size() {
    let (sandbox, _server, r1, _) = installed_with_pending_update();
    let zeros = vec![0u8; 20 << 20];
    let bomb = raw_tar_zst(&[RawEntry::file("zeros", &zeros)]);
    assert!(
        bomb.len() < 10_000,
        "the bomb compresses well: {}",
        bomb.len()
    );
    let claimed = FileIndex::new(vec![IndexEntry {
        path: "zeros".parse().unwrap(),
        kind: EntryKind::File {
            size: 1 << 20,
            blake3: Blake3Hash::of(&zeros[..1 << 20]),
            packed_size: 0,
        },
        mode: FileMode::from_permissions(0o644),
    }]);
    replace_newest_package_with_index(&sandbox, &bomb, 1 << 20, &claimed);
    assert!(newest_package_path(&sandbox).ends_with(".tar.zst"));
    update_fails_cleanly(&sandbox, &r1, "unpacks to more than its declared size");
}

#[test]
fn setuid_bits_are_never_installed() {
    let (sandbox, _server, _, _) = installed_with_pending_update();
    let entry = |name, kind, mode| RawEntry {
        name,
        kind,
        content: if kind == tar::EntryType::Regular {
            b"#!/bin/sh\n"
        } else {
            b""
        },
        link: None,
        mode,
    };
    let package = raw_tar_gz(&[
        entry("setuid", tar::EntryType::Regular, 0o4755),
        entry("setgid", tar::EntryType::Regular, 0o2755),
        entry("sticky", tar::EntryType::Regular, 0o1755),
        entry("all", tar::EntryType::Regular, 0o7777),
        entry("shared/", tar::EntryType::Directory, 0o3775),
        entry("tmp/", tar::EntryType::Directory, 0o1777),
    ]);
    replace_newest_package(&sandbox, &package, 40);
    sandbox.client(["update", "--yes", "--full"]).success();
    for (name, expected) in [
        ("setuid", 0o755),
        ("setgid", 0o755),
        ("sticky", 0o755),
        ("all", 0o777),
        ("shared", 0o775),
        ("tmp", 0o777),
    ] {
        let mode = std::fs::metadata(sandbox.root().join("current").join(name))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, expected, "{name}: {mode:o}");
    }
}

/// Sets the client's download limits with `config` flags (`--min-speed 4KiB/s`…).
fn limit_downloads(sandbox: &Sandbox, flags: &[&str]) {
    let mut args = vec!["config"];
    args.extend_from_slice(flags);
    sandbox.client(args).success();
}

/// The bytes and seconds of a ``download of `URL` cut off after N bytes in X.Ys: …``
/// error for `url`, as the client measured them.
#[track_caller]
fn cut_off(stderr: &str, url: &str) -> (u64, f64) {
    let prefix = format!("error: download of `{url}` cut off after ");
    let rest = stderr
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no `{prefix}` in:\n{stderr}"));
    let (bytes, rest) = rest.split_once(" bytes in ").unwrap();
    let (seconds, _) = rest.split_once("s: ").unwrap();
    (bytes.parse().unwrap(), seconds.parse().unwrap())
}

#[test]
fn a_trickling_host_is_cut_off_by_the_minimum_speed() {
    let (sandbox, server, r1, _) = installed_with_pending_update();
    limit_downloads(
        &sandbox,
        &["--min-speed", "4KiB/s", "--min-speed-grace", "1s"],
    );
    // 320 B/s, far below 4 KiB/s.
    let slowly = Fault::Trickle {
        chunk: 16,
        pause: Duration::from_millis(50),
    };

    // The manifest: cut off once the grace has passed, long before it is complete.
    server.set_fault("channels/stable.json", slowly.clone());
    let error = fails_cleanly(
        &sandbox,
        &r1,
        &["check"],
        "below the minimum average speed of 4kib/s",
    );
    let manifest_size = std::fs::metadata(sandbox.site().join("channels/stable.json"))
        .unwrap()
        .len();
    let (received, seconds) = cut_off(&error, &format!("{}channels/stable.json", server.url()));
    assert!(received < manifest_size / 2, "{error}");
    assert!((1.0..3.0).contains(&seconds), "{error}");

    // A package.
    server.clear_faults();
    let package = newest_package_path(&sandbox);
    server.set_fault(&package, slowly);
    let error = update_fails_cleanly(&sandbox, &r1, "below the minimum average speed of 4kib/s");
    let (received, seconds) = cut_off(&error, &format!("{}{package}", server.url()));
    assert!(received < 2048, "{error}");
    assert!((1.0..3.0).contains(&seconds), "{error}");
}

#[test]
fn a_host_fast_enough_but_past_the_deadline_is_cut_off() {
    let (sandbox, server, r1, _) = installed_with_pending_update();
    // The limits can be set by `init` as well as by `config`.
    let pubkey = sandbox.pubkey();
    sandbox
        .client([
            "init",
            "--force",
            "--url",
            &server.url(),
            "--pubkey",
            pubkey.to_str().unwrap(),
            "--min-speed",
            "1KiB/s",
            "--min-speed-grace",
            "1s",
            "--download-deadline",
            "2s",
        ])
        .success();
    let config = sandbox.client(["config", "--json"]).success().json();
    assert_eq!(
        config["download_limits"],
        serde_json::json!({"min_speed": "1KiB/s", "min_speed_grace": "1s", "deadline": "2s"}),
        "{config}"
    );
    // 2.5 KiB/s keeps well above the minimum speed, but the package would take 4 s.
    let package = newest_package_path(&sandbox);
    let size = newest_module(&sandbox, "app").package.size;
    assert!(size > 10 * 1024, "{size}");
    server.set_fault(
        &package,
        Fault::Trickle {
            chunk: 256,
            pause: Duration::from_millis(100),
        },
    );
    let error = update_fails_cleanly(&sandbox, &r1, "past the download deadline of 2s");
    let (received, seconds) = cut_off(&error, &format!("{}{package}", server.url()));
    assert!(received < size && received >= 2 * 1024, "{error}");
    assert!((2.0..3.5).contains(&seconds), "{error}");
}

#[test]
fn an_expired_manifest_is_accepted_within_the_expiry_grace_only() {
    let (mut sandbox, _server, r1, r2) = installed_with_pending_update();
    let expires_at = sandbox.manifest("stable").expires_at;
    let clock_at = |sandbox: &mut Sandbox, minutes_late: i64| {
        let now = expires_at + SignedDuration::from_mins(minutes_late);
        sandbox.env.insert("WAVECAST_NOW".into(), now.to_string());
    };

    // Two minutes late, with no grace (the default): refused.
    clock_at(&mut sandbox, 2);
    let error = update_fails_cleanly(&sandbox, &r1, "expired");
    assert!(!error.contains("grace of"), "{error}");

    // Eleven minutes late is beyond a ten-minute grace: still refused.
    sandbox
        .client(["config", "--expiry-grace", "10m"])
        .success();
    clock_at(&mut sandbox, 11);
    update_fails_cleanly(&sandbox, &r1, "beyond the grace of 10m");

    // Two minutes late is within it: accepted.
    clock_at(&mut sandbox, 2);
    sandbox.client(["update", "--yes"]).success();
    assert_same_tree(&sandbox.root().join("current"), &r2);
}

/// The bytes of the site file `path`.
fn site_bytes(sandbox: &Sandbox, path: &str) -> Vec<u8> {
    std::fs::read(sandbox.site().join(path)).unwrap()
}

#[test]
fn a_package_of_another_release_is_refused() {
    let (sandbox, server, r1, r2) = installed_with_pending_update();
    let (old_module, new_module) = (
        module(&sandbox, "1.0.0", "app"),
        module(&sandbox, "2.0.0", "app"),
    );
    let (old_path, new_path) = (package_path(&old_module), package_path(&new_module));
    let (old, new) = (old_module.package, new_module.package);
    // Same size: only the hash tells them apart.
    assert_eq!(old.size, new.size);
    server.set_fault(&new_path, Fault::Replace(site_bytes(&sandbox, &old_path)));
    let error = update_fails_cleanly(&sandbox, &r1, "is corrupt");
    assert!(
        error.contains(&format!(
            "error: `{}{}` is corrupt: its blake3 hash is {}, but the signed manifest says {}",
            server.url(),
            new_path,
            old.blake3,
            new.blake3
        )),
        "{error}"
    );
    server.clear_faults();
    sandbox.client(["update", "--yes", "--full"]).success();
    assert_same_tree(&sandbox.root().join("current"), &r2);
}

/// A package a correctly signed 2.0.0 could ship that is not the tree its signed
/// file index lists, for `case`, with the problem the client names.
fn mismatched_package(sandbox: &Sandbox, case: &str) -> (Vec<u8>, &'static str) {
    let mut entries = unpack_entries(&site_bytes(sandbox, &newest_package_path(sandbox)));
    match case {
        "an extra file" => {
            let (mut header, _) = entries
                .iter()
                .find(|(header, _)| header.entry_type() == tar::EntryType::Regular)
                .cloned()
                .unwrap();
            header.set_path("bin/extra").unwrap();
            entries.push((header, b"#!/bin/sh\necho extra\n".to_vec()));
            (
                pack_entries(&entries),
                "`bin/extra` is not in the signed file list",
            )
        }
        "changed bytes" => {
            let (_, data) = entries
                .iter_mut()
                .find(|(header, _)| header.path().unwrap().ends_with("bin/app"))
                .unwrap();
            let last = data.len() - 2;
            data[last] ^= 0x20;
            (
                pack_entries(&entries),
                "`bin/app` holds other bytes than the signed file list says",
            )
        }
        "another release's package" => (
            site_bytes(sandbox, &package_path(&module(sandbox, "1.0.0", "app"))),
            "holds other bytes than the signed file list says",
        ),
        other => panic!("no such case: {other}"),
    }
}

#[test]
fn a_signed_package_that_is_not_its_file_index_tree_is_refused_naming_the_file() {
    for case in [
        "an extra file",
        "changed bytes",
        "another release's package",
    ] {
        let (sandbox, _server, r1, _) = installed_with_pending_update();
        let (package, problem) = mismatched_package(&sandbox, case);
        let index = file_index(&sandbox, "2.0.0", "app");
        replace_newest_package_with_index(&sandbox, &package, 1 << 20, &index);
        for args in [&["update", "--yes"][..], &["update", "--yes", "--full"]] {
            let stderr = fails_cleanly(
                &sandbox,
                &r1,
                args,
                "is not the one its signed file lists describe",
            );
            assert!(stderr.contains(problem), "{case}: {stderr}");
            assert!(stderr.contains("hint: nothing was installed"), "{stderr}");
        }
        let verify = sandbox.wavecast(
            ["verify"],
            [
                sandbox.site().as_os_str(),
                "--pubkey".as_ref(),
                sandbox.pubkey().as_os_str(),
            ],
        );
        assert_eq!(verify.code, 1, "{case}: {}", verify.stderr);
        let output = format!("{}{}", verify.stdout, verify.stderr);
        assert!(
            output.contains("does not unpack to what its file index lists")
                && output.contains(problem),
            "{case}: {output}"
        );
    }
}

#[test]
fn a_file_index_of_another_release_is_refused() {
    let (sandbox, server, r1, r2) = installed_with_pending_update();
    let (old, new) = (
        module(&sandbox, "1.0.0", "app"),
        module(&sandbox, "2.0.0", "app"),
    );
    // Planned from 1.0.0's index, 2.0.0 would be "keep every file": 1.0.0's tree
    // under 2.0.0's name. The index does not match its signed hash, and without the
    // right one the client can neither plan nor check the tree it would install, so it
    // installs nothing, whatever the package. (With the pack from 1.0.0 the client
    // derives the index instead of fetching it, so the pack is taken away.)
    let index = index_path(&new);
    server.set_fault(
        &index,
        Fault::Replace(site_bytes(&sandbox, &index_path(&old))),
    );
    let pack = wavecast_tests::delta::pack_path(&sandbox, "2.0.0", "1.0.0").unwrap();
    server.set_fault(&pack, Fault::Status(404));
    let index = index.as_str();
    for args in [
        &["update", "--dry-run"][..],
        &["update", "--yes"],
        &["update", "--yes", "--full"],
    ] {
        let stderr = fails_cleanly(&sandbox, &r1, args, index);
        assert!(stderr.contains("hint: "), "{stderr}");
    }
    // With the right index, the update installs 2.0.0 exactly.
    server.clear_faults();
    sandbox.client(["update", "--yes"]).success();
    assert_same_tree(&sandbox.root().join("current"), &r2);
}

/// Writes `content` at `root/relative`, readable by all.
fn write(root: &Path, relative: &str, content: &[u8]) {
    let path = root.join(relative);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, content).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
}

#[test]
fn a_file_copy_of_another_release_is_refused() {
    // 2.0.0 changes only `share/data.bin`, and has no delta pack: the update downloads
    // that file's range of the copy pack rather than the package with 300 KB that did
    // not change.
    let sandbox = Sandbox::new();
    let (r1, r2) = (sandbox.path("r1"), sandbox.path("r2"));
    // 1.0.0's file is larger, so that its package is too.
    let (data_v1, data_v2) = (pseudo_random(100_500, 41), pseudo_random(100_000, 42));
    for root in [&r1, &r2] {
        write(root, "share/kept.bin", &pseudo_random(300_000, 43));
    }
    write(&r1, "share/data.bin", &data_v1);
    write(&r2, "share/data.bin", &data_v2);
    sandbox.publish(&r1, "1.0.0", &[]).success();
    let server = FaultServer::serve(&sandbox.site());
    sandbox.init_client(&server.url());
    sandbox.client(["update", "--yes"]).success();
    sandbox
        .publish(&r2, "2.0.0", &["--patch-depth", "0"])
        .success();
    let plan = sandbox
        .client(["update", "--dry-run", "--json"])
        .success()
        .json();
    assert_eq!(plan["modules"][0]["use_package"], false, "{plan}");

    // 1.0.0's copy pack, served where 2.0.0's belongs: the range of `share/data.bin`
    // (first in both) then holds 1.0.0's copy of the file.
    let (old, new) = (
        module(&sandbox, "1.0.0", "app"),
        module(&sandbox, "2.0.0", "app"),
    );
    let copies = |module: &wavecast_schema::Module| {
        wavecast_tests::delta::blob_path(
            &module.copies.as_ref().unwrap().blake3,
            wavecast_site::layout::BlobKind::Copies,
        )
    };
    let (old_copies, new_copies) = (copies(&old), copies(&new));
    server.set_fault(
        &new_copies,
        Fault::Replace(site_bytes(&sandbox, &old_copies)),
    );
    // With 1.0.0's package served as well (a few bytes larger than 2.0.0's), the
    // update fails.
    assert!(
        old.package.size > new.package.size,
        "{} {}",
        old.package.size,
        new.package.size
    );
    server.set_fault(
        &package_path(&new),
        Fault::Replace(site_bytes(&sandbox, &package_path(&old))),
    );
    let error = fails_cleanly(
        &sandbox,
        &r1,
        &["update", "--yes"],
        "more than the declared",
    );
    let refused = format!(
        "`{}{new_copies}` does not decompress to the content the file index describes",
        server.url()
    );
    assert!(error.contains(&refused), "{error}");

    // With the right package, the update installs 2.0.0 exactly, and says why it
    // took the package.
    server.clear_faults();
    server.set_fault(
        &new_copies,
        Fault::Replace(site_bytes(&sandbox, &old_copies)),
    );
    let run = sandbox.client(["update", "--yes"]).success();
    assert!(
        run.stderr.contains(&format!(
            "warning: app: downloading the module's package instead: {refused}"
        )),
        "{}",
        run.stderr
    );
    assert_same_tree(&sandbox.root().join("current"), &r2);
}
