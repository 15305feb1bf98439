//! Differential updates: a client on a recent release downloads the one delta pack
//! from it (patches and the compressed copies of new files) and no file index; one
//! further behind downloads the index and the ranges of the copy pack it needs. It
//! falls back (pack → copy-pack ranges → package) when a blob is missing or wrong,
//! resumes interrupted downloads with `Range`, and always ends with a tree identical to
//! the published one.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::Value;
use wavecast_schema::{Blake3Hash, PackData};
use wavecast_site::layout::BlobKind;
use wavecast_tests::delta::{
    BlobClass, LoggingNginx, RangeServer, Served, blob_path, bytes_by_class, document, index_path,
    module, pack_header, pack_path, package_path,
};
use wavecast_tests::{Fault, FaultServer, Sandbox, assert_same_tree, pseudo_random};

/// Writes `content` at `root/relative` with permission bits `mode`.
fn write(root: &Path, relative: &str, content: &[u8], mode: u32) {
    let path = root.join(relative);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, content).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// `content` with a few bytes changed in the middle.
fn edited(content: &[u8]) -> Vec<u8> {
    let mut out = content.to_vec();
    let middle = out.len() / 2;
    out[middle..middle + 8].copy_from_slice(b"EDITED!!");
    out
}

/// Text that compresses like source code.
fn text(lines: usize, tag: &str) -> Vec<u8> {
    (0..lines)
        .map(|i| format!("{tag} line {i}: the quick brown fox jumps over the lazy dog\n"))
        .collect::<String>()
        .into_bytes()
}

/// Two releases differing by a small edit of a 200 KB file, a rename, an added and a
/// removed file; the rest is unchanged.
struct EditRenameAddRemove {
    r1: PathBuf,
    r2: PathBuf,
    big_v1: Vec<u8>,
}

fn edit_rename_add_remove(sandbox: &Sandbox) -> EditRenameAddRemove {
    let (r1, r2) = (sandbox.path("r1"), sandbox.path("r2"));
    let big_v1 = pseudo_random(200_000, 11);
    let big_v2 = edited(&big_v1);
    let fresh = pseudo_random(30_000, 13);
    for root in [&r1, &r2] {
        write(root, "bin/tool", b"#!/bin/sh\necho tool\n", 0o755);
        write(root, "etc/config.toml", b"answer = 42\n", 0o644);
        write(root, "share/assets.bin", &pseudo_random(60_000, 17), 0o644);
    }
    write(&r1, "lib/big.bin", &big_v1, 0o644);
    write(&r1, "docs/old-name.txt", &text(500, "manual"), 0o644);
    write(&r1, "share/gone.dat", &pseudo_random(5_000, 12), 0o600);
    write(&r2, "lib/big.bin", &big_v2, 0o644);
    write(&r2, "docs/new-name.txt", &text(500, "manual"), 0o644);
    write(&r2, "share/fresh.dat", &fresh, 0o644);
    EditRenameAddRemove { r1, r2, big_v1 }
}

/// What `update --dry-run --json` announced.
#[derive(Debug)]
struct DryRun {
    /// Path (as printed) → `keep`, `patch`, `copy`, `range` or `delete`.
    actions: BTreeMap<String, String>,
    /// Bytes the update would download.
    download_bytes: u64,
    json: Value,
}

impl DryRun {
    /// The action for `path`, printed relative to the release or to its module.
    #[track_caller]
    fn action(&self, path: &str) -> &str {
        self.actions
            .iter()
            .find(|(printed, _)| {
                printed.as_str() == path
                    || path.ends_with(&format!("/{printed}"))
                    || printed.ends_with(&format!("/{path}"))
            })
            .map(|(_, action)| action.as_str())
            .unwrap_or_else(|| panic!("the dry run says nothing of `{path}`:\n{:#}", self.json))
    }
}

/// Collects `path` → `action` from every object of the plan, and paths listed as
/// removed.
fn collect_actions(value: &Value, out: &mut BTreeMap<String, String>) {
    match value {
        Value::Object(map) => {
            if let (Some(Value::String(path)), Some(Value::String(action))) =
                (map.get("path"), map.get("action"))
            {
                out.insert(path.clone(), action.clone());
            }
            for key in ["removed", "deleted", "delete"] {
                if let Some(Value::Array(paths)) = map.get(key) {
                    for path in paths.iter().filter_map(Value::as_str) {
                        out.insert(path.to_owned(), "delete".to_owned());
                    }
                }
            }
            map.values().for_each(|value| collect_actions(value, out));
        }
        Value::Array(values) => values.iter().for_each(|value| collect_actions(value, out)),
        _ => {}
    }
}

/// Runs `update --dry-run --json` and reads the plan.
#[track_caller]
fn dry_run(sandbox: &Sandbox) -> DryRun {
    let json = sandbox
        .client(["update", "--dry-run", "--json"])
        .success()
        .json();
    let mut actions = BTreeMap::new();
    collect_actions(&json, &mut actions);
    let download_bytes = json["download_bytes"]
        .as_u64()
        .or_else(|| json["plan"]["download_bytes"].as_u64())
        .unwrap_or_else(|| panic!("the dry run reports no `download_bytes`:\n{json:#}"));
    DryRun {
        actions,
        download_bytes,
        json,
    }
}

fn paths_of(requests: &[Served], class: BlobClass) -> Vec<String> {
    requests
        .iter()
        .filter(|served| BlobClass::of(&served.path) == class)
        .map(|served| served.path.clone())
        .collect()
}

fn classes(paths: &[String]) -> BTreeSet<BlobClass> {
    paths.iter().map(|path| BlobClass::of(path)).collect()
}

/// Every regular file left under `dir` (recursively), relative to it.
fn files_under(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.push(path.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out
}

/// The pack of `version` from `from`: its site path and size.
#[track_caller]
fn pack(sandbox: &Sandbox, version: &str, from: &str) -> (String, u64) {
    let path = pack_path(sandbox, version, from)
        .unwrap_or_else(|| panic!("{version} has no pack from {from}"));
    let size = std::fs::metadata(sandbox.site().join(&path)).unwrap().len();
    (path, size)
}

/// The requests of an update after its manifest.
fn after_manifest(requests: &[Served]) -> Vec<&Served> {
    requests
        .iter()
        .filter(|served| BlobClass::of(&served.path) != BlobClass::Manifest)
        .collect()
}

#[test]
fn an_edit_a_rename_an_addition_and_a_removal_download_one_pack() {
    let sandbox = Sandbox::new();
    let releases = edit_rename_add_remove(&sandbox);
    sandbox.publish(&releases.r1, "1.0.0", &[]).success();
    let nginx = LoggingNginx::serve(&sandbox.site());
    sandbox.init_client(&nginx.url());
    sandbox.client(["update", "--yes"]).success();
    assert_same_tree(&sandbox.root().join("current"), &releases.r1);
    let previous = std::fs::canonicalize(sandbox.root().join("current")).unwrap();
    sandbox.publish(&releases.r2, "2.0.0", &[]).success();

    // The pack from 1.0.0 patches the edited file from its previous content, carries
    // the new file's copy, and nothing for the unchanged or renamed ones.
    let header = pack_header(&sandbox, "2.0.0", "1.0.0");
    let delta = &header.modules["app"];
    let data: BTreeMap<&str, &PackData> = delta
        .entries
        .iter()
        .filter_map(|entry| Some((entry.entry.path.as_str(), entry.data.as_ref()?)))
        .collect();
    assert!(
        matches!(data["lib/big.bin"], PackData::Patch { base, .. } if *base == Blake3Hash::of(&releases.big_v1)),
        "{data:#?}"
    );
    assert!(
        matches!(data["share/fresh.dat"], PackData::Copy { .. }),
        "{data:#?}"
    );
    assert_eq!(data.len(), 2, "{data:#?}");

    nginx.clear_log();
    let plan = dry_run(&sandbox);
    for kept in ["bin/tool", "etc/config.toml", "share/assets.bin"] {
        assert_eq!(plan.action(kept), "keep", "{kept}: {:#}", plan.json);
    }
    assert_eq!(
        plan.action("docs/new-name.txt"),
        "keep",
        "a renamed file is copied locally: {:#}",
        plan.json
    );
    assert_eq!(plan.action("lib/big.bin"), "patch", "{:#}", plan.json);
    assert_eq!(plan.action("share/fresh.dat"), "copy", "{:#}", plan.json);
    assert_eq!(plan.action("share/gone.dat"), "delete", "{:#}", plan.json);
    assert_eq!(
        plan.action("docs/old-name.txt"),
        "delete",
        "{:#}",
        plan.json
    );
    let (pack_path, pack_size) = pack(&sandbox, "2.0.0", "1.0.0");
    assert_eq!(
        plan.download_bytes, pack_size,
        "the pack, and nothing else: {:#}",
        plan.json
    );
    let package_size = module(&sandbox, "2.0.0", "app").package.size;
    assert!(
        plan.download_bytes > 30_000 && plan.download_bytes < package_size / 4,
        "{} bytes planned against a {package_size}-byte package: {:#}",
        plan.download_bytes,
        plan.json
    );
    // A dry run reads the pack's header only, and installs nothing.
    let dry = nginx.requests();
    let dry_paths: Vec<String> = dry.iter().map(|s| s.path.clone()).collect();
    assert!(
        classes(&dry_paths).is_subset(&BTreeSet::from([
            BlobClass::Manifest,
            BlobClass::Document,
            BlobClass::Pack
        ])),
        "a dry run fetched content: {dry_paths:#?}"
    );
    let pack_read: u64 = dry
        .iter()
        .filter(|served| served.path == pack_path)
        .map(|served| served.body_bytes)
        .sum();
    assert!(pack_read < pack_size / 10, "{dry:#?}");
    assert_same_tree(&sandbox.root().join("current"), &releases.r1);

    nginx.clear_log();
    let report = sandbox
        .client(["update", "--yes", "--json"])
        .success()
        .json();
    assert_same_tree(&sandbox.root().join("current"), &releases.r2);
    assert_same_tree(&previous, &releases.r1);
    assert_eq!(report["pack_from"], "1.0.0", "{report:#}");

    let requests = nginx.requests();
    assert!(
        requests.iter().all(|s| matches!(s.status, 200 | 304)),
        "{requests:#?}"
    );
    // The document came from the dry run's cache: after the manifest, the pack alone.
    let content: Vec<&str> = after_manifest(&requests)
        .iter()
        .map(|served| served.path.as_str())
        .collect();
    assert_eq!(content, [pack_path.as_str()], "{requests:#?}");
    assert_eq!(report["requests"], 1, "{report:#}");
    let by_class = bytes_by_class(&requests);
    assert_eq!(
        by_class.get(&BlobClass::Pack),
        Some(&pack_size),
        "{requests:#?}"
    );
    assert_eq!(
        by_class.get(&BlobClass::FileIndex),
        None,
        "no index: {requests:#?}"
    );
}

#[test]
fn an_unchanged_module_downloads_nothing() {
    let sandbox = Sandbox::new();
    let (r1, r2) = (sandbox.path("r1"), sandbox.path("r2"));
    let app = pseudo_random(200_000, 21);
    for root in [&r1, &r2] {
        write(root, "share/data.bin", &pseudo_random(50_000, 22), 0o644);
        write(root, "share/readme.txt", &text(200, "readme"), 0o644);
    }
    write(&r1, "bin/app", &app, 0o755);
    write(&r2, "bin/app", &edited(&app), 0o755);
    let modules = ["--module", "core=bin", "--module", "assets=share"];
    sandbox.publish(&r1, "1.0.0", &modules).success();
    let nginx = LoggingNginx::serve(&sandbox.site());
    sandbox.init_client(&nginx.url());
    sandbox.client(["update", "--yes"]).success();
    sandbox.publish(&r2, "2.0.0", &modules).success();
    let assets = module(&sandbox, "2.0.0", "assets");
    assert_eq!(
        assets.version.to_string(),
        "1.0.0",
        "an unchanged module keeps its version"
    );
    let header = pack_header(&sandbox, "2.0.0", "1.0.0");
    let changed: Vec<&str> = header.modules.keys().map(|name| name.as_str()).collect();
    assert_eq!(
        changed,
        ["core"],
        "the pack leaves the unchanged module out"
    );

    let plan = dry_run(&sandbox);
    assert_eq!(plan.action("share/data.bin"), "keep", "{:#}", plan.json);
    assert_eq!(plan.action("share/readme.txt"), "keep", "{:#}", plan.json);
    assert_eq!(plan.action("bin/app"), "patch", "{:#}", plan.json);
    assert!(plan.download_bytes < 20_000, "{:#}", plan.json);

    nginx.clear_log();
    sandbox.client(["update", "--yes"]).success();
    assert_same_tree(&sandbox.root().join("current"), &r2);
    let requests = nginx.requests();
    let assets_blobs = [
        package_path(&assets),
        index_path(&assets),
        blob_path(&assets.copies.as_ref().unwrap().blake3, BlobKind::Copies),
    ];
    let fetched: Vec<&Served> = requests
        .iter()
        .filter(|served| assets_blobs.contains(&served.path))
        .collect();
    assert!(
        fetched.is_empty(),
        "content of the unchanged module was downloaded: {fetched:#?}"
    );
    for class in [BlobClass::Package, BlobClass::Copies, BlobClass::FileIndex] {
        assert_eq!(
            paths_of(&requests, class),
            Vec::<String>::new(),
            "{class:?}"
        );
    }
}

/// 1.0.0 installed from a fault server, 2.0.0 published: an edited 200 KB file (a
/// patch in the pack) and a new file (a copy in the pack).
struct Pending {
    sandbox: Sandbox,
    server: FaultServer,
    r2: PathBuf,
}

fn pending_update() -> Pending {
    let sandbox = Sandbox::new();
    let (r1, r2) = (sandbox.path("r1"), sandbox.path("r2"));
    let big = pseudo_random(200_000, 31);
    for root in [&r1, &r2] {
        write(root, "bin/tool", b"#!/bin/sh\necho tool\n", 0o755);
        write(root, "share/kept.bin", &pseudo_random(80_000, 32), 0o644);
    }
    write(&r1, "lib/big.bin", &big, 0o644);
    write(&r2, "lib/big.bin", &edited(&big), 0o644);
    write(&r2, "share/fresh.txt", &text(300, "fresh"), 0o644);
    sandbox.publish(&r1, "1.0.0", &[]).success();
    let server = FaultServer::serve(&sandbox.site());
    sandbox.init_client(&server.url());
    sandbox.client(["update", "--yes"]).success();
    assert_same_tree(&sandbox.root().join("current"), &r1);
    sandbox.publish(&r2, "2.0.0", &[]).success();
    assert_eq!(dry_run(&sandbox).action("lib/big.bin"), "patch");
    Pending {
        sandbox,
        server,
        r2,
    }
}

/// Updates, expects success and the 2.0.0 tree; returns the paths requested by the
/// update, and its stderr.
#[track_caller]
fn update_installs_v2(pending: &Pending) -> (Vec<String>, String) {
    let before = pending.server.requests().len();
    let run = pending.sandbox.client(["update", "--yes"]);
    assert_eq!(
        run.code, 0,
        "stdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
    assert_same_tree(&pending.sandbox.root().join("current"), &pending.r2);
    (pending.server.requests()[before..].to_vec(), run.stderr)
}

#[test]
fn a_missing_or_corrupt_pack_falls_back_to_the_index_and_copy_pack_ranges() {
    for fault in [Fault::Status(404), Fault::Corrupt] {
        let pending = pending_update();
        let (pack, _) = pack(&pending.sandbox, "2.0.0", "1.0.0");
        pending.server.set_fault(&pack, fault.clone());
        let (requested, stderr) = update_installs_v2(&pending);
        assert!(
            requested.contains(&pack),
            "the pack was tried first: {requested:#?}"
        );
        let app = module(&pending.sandbox, "2.0.0", "app");
        assert!(requested.contains(&index_path(&app)), "{requested:#?}");
        assert!(
            !paths_of_strings(&requested, BlobClass::Copies).is_empty(),
            "the files the pack carried came as ranges: {requested:#?}"
        );
        assert!(
            paths_of_strings(&requested, BlobClass::Package).is_empty(),
            "{requested:#?}"
        );
        assert!(stderr.contains("the delta pack"), "{fault:?}: {stderr}");
    }
}

#[test]
fn without_pack_or_copy_pack_the_package_is_used() {
    let pending = pending_update();
    let (pack, _) = pack(&pending.sandbox, "2.0.0", "1.0.0");
    pending.server.set_fault(&pack, Fault::Status(404));
    let app = module(&pending.sandbox, "2.0.0", "app");
    let copies = blob_path(&app.copies.as_ref().unwrap().blake3, BlobKind::Copies);
    pending.server.set_fault(&copies, Fault::Status(404));
    let (requested, _) = update_installs_v2(&pending);
    assert!(
        requested.contains(&package_path(&app)),
        "the package was used: {requested:#?}"
    );
}
#[test]
fn a_file_the_host_lacks_fails_the_update_with_a_hint_and_changes_nothing() {
    let pending = pending_update();
    let (pack, _) = pack(&pending.sandbox, "2.0.0", "1.0.0");
    let app = module(&pending.sandbox, "2.0.0", "app");
    let copies = blob_path(&app.copies.as_ref().unwrap().blake3, BlobKind::Copies);
    for path in [pack, copies, package_path(&app)] {
        pending.server.set_fault(&path, Fault::Status(404));
    }
    let before = std::fs::read_link(pending.sandbox.root().join("current")).unwrap();
    let run = pending.sandbox.client(["update", "--yes"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("hint: the site's manifest names this file but the host does not have it"),
        "{}",
        run.stderr
    );
    assert_eq!(
        std::fs::read_link(pending.sandbox.root().join("current")).unwrap(),
        before
    );
}

fn paths_of_strings(paths: &[String], class: BlobClass) -> Vec<String> {
    paths
        .iter()
        .filter(|path| BlobClass::of(path) == class)
        .cloned()
        .collect()
}

/// Installs `r1` from a [`RangeServer`], publishes `r2`, cuts every blob `cut_paths`
/// returns after `cut` bytes: the update fails (exit 1) and leaves `r1` in place. Once
/// the host serves whole files again, the update resumes each cut download with
/// `Range: bytes=<cut>-`, installs `r2` and leaves nothing in the download cache.
fn cut_then_resume(
    r1: &Path,
    r2: &Path,
    sandbox: &Sandbox,
    cut: usize,
    cut_paths: impl FnOnce(&Sandbox) -> Vec<String>,
) {
    sandbox.publish(r1, "1.0.0", &[]).success();
    let server = RangeServer::serve(&sandbox.site());
    sandbox.init_client(&server.url());
    sandbox.client(["update", "--yes"]).success();
    sandbox.publish(r2, "2.0.0", &[]).success();

    let cut_paths = cut_paths(sandbox);
    for path in &cut_paths {
        server.set_fault(path, Fault::Truncate(cut));
    }
    let run = sandbox.client(["update", "--yes"]);
    assert_eq!(
        run.code, 1,
        "stdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
    assert!(
        run.stderr.lines().any(|line| line.starts_with("error: ")),
        "{}",
        run.stderr
    );
    assert_same_tree(&sandbox.root().join("current"), r1);
    let status = sandbox.client(["status", "--json"]).success().json();
    assert_eq!(status["current"], "1.0.0", "{status}");

    server.clear_faults();
    server.clear_requests();
    sandbox.client(["update", "--yes"]).success();
    assert_same_tree(&sandbox.root().join("current"), r2);
    let requests = server.requests();
    let resumed: Vec<&Served> = requests
        .iter()
        .filter(|served| cut_paths.contains(&served.path))
        .collect();
    assert!(!resumed.is_empty(), "{requests:#?}");
    for served in &resumed {
        assert_eq!(
            served.range.as_deref(),
            Some(format!("bytes={cut}-").as_str()),
            "the download resumes where it stopped: {requests:#?}"
        );
        assert_eq!(served.status, 206, "{requests:#?}");
        let full = std::fs::metadata(sandbox.site().join(&served.path))
            .unwrap()
            .len();
        assert_eq!(served.body_bytes, full - cut as u64, "{served:?}");
    }

    let leftovers = files_under(&sandbox.root().join(".wavecast/cache"));
    assert!(
        leftovers.is_empty(),
        "the cache is pruned after an install: {leftovers:#?}"
    );
}

#[test]
fn an_interrupted_pack_resumes_with_a_range_and_leaves_no_leftovers() {
    let sandbox = Sandbox::new();
    let (r1, r2) = (sandbox.path("r1"), sandbox.path("r2"));
    let fresh = pseudo_random(400_000, 41);
    for root in [&r1, &r2] {
        write(root, "bin/tool", b"#!/bin/sh\necho tool\n", 0o755);
        write(root, "share/kept.bin", &pseudo_random(150_000, 42), 0o644);
    }
    write(&r2, "share/fresh.bin", &fresh, 0o644);
    // The connection drops after 150 KB of the pack (which carries the new file's
    // copy), of the copy pack and of the package a client falls back to.
    cut_then_resume(&r1, &r2, &sandbox, 150_000, |sandbox| {
        assert_eq!(dry_run(sandbox).action("share/fresh.bin"), "copy");
        let app = module(sandbox, "2.0.0", "app");
        vec![
            pack(sandbox, "2.0.0", "1.0.0").0,
            blob_path(&app.copies.as_ref().unwrap().blake3, BlobKind::Copies),
            package_path(&app),
        ]
    });
}

#[test]
fn an_interrupted_package_resumes_with_a_range_and_leaves_no_leftovers() {
    let sandbox = Sandbox::new();
    let (r1, r2) = (sandbox.path("r1"), sandbox.path("r2"));
    for root in [&r1, &r2] {
        write(root, "bin/tool", b"#!/bin/sh\necho tool\n", 0o755);
        write(root, "share/kept.bin", &pseudo_random(150_000, 43), 0o644);
    }
    // Sixty new files that differ only in their first bytes: sixty compressed copies
    // cost far more than the package, where gzip stores the common content about
    // once, so the update skips the pack and takes the package.
    let repeated = pseudo_random(20_000, 44);
    for n in 0..60u8 {
        let mut content = repeated.clone();
        content[0] = n;
        write(&r2, &format!("share/copies/{n:02}.bin"), &content, 0o644);
    }
    cut_then_resume(&r1, &r2, &sandbox, 100_000, |sandbox| {
        let plan = dry_run(sandbox);
        assert_eq!(plan.json["pack"], Value::Null, "{:#}", plan.json);
        assert_eq!(
            plan.json["modules"][0]["use_package"], true,
            "{:#}",
            plan.json
        );
        vec![package_path(&module(sandbox, "2.0.0", "app"))]
    });
}

#[test]
fn a_version_renamed_library_gets_a_patch() {
    let sandbox = Sandbox::new();
    let (r1, r2) = (sandbox.path("r1"), sandbox.path("r2"));
    let lib = pseudo_random(150_000, 51);
    for root in [&r1, &r2] {
        write(root, "bin/app", b"#!/bin/sh\necho app\n", 0o755);
    }
    write(&r1, "lib/libfoo-1.2.so", &lib, 0o755);
    write(&r2, "lib/libfoo-1.3.so", &edited(&lib), 0o755);
    sandbox.publish(&r1, "1.2.0", &[]).success();
    let server = FaultServer::serve(&sandbox.site());
    sandbox.init_client(&server.url());
    sandbox.client(["update", "--yes"]).success();
    sandbox.publish(&r2, "1.3.0", &[]).success();

    let plan = dry_run(&sandbox);
    assert_eq!(plan.action("lib/libfoo-1.3.so"), "patch", "{:#}", plan.json);
    assert_eq!(
        plan.action("lib/libfoo-1.2.so"),
        "delete",
        "{:#}",
        plan.json
    );
    assert_eq!(plan.action("bin/app"), "keep", "{:#}", plan.json);
    assert!(plan.download_bytes < 10_000, "{:#}", plan.json);

    let before = server.requests().len();
    sandbox.client(["update", "--yes"]).success();
    assert_same_tree(&sandbox.root().join("current"), &r2);
    // The document may come from the dry run's cache; the content is one pack.
    let requested = server.requests()[before..].to_vec();
    assert_eq!(
        classes(&requested),
        BTreeSet::from([BlobClass::Manifest, BlobClass::Pack]),
        "{requested:#?}"
    );
    let header = pack_header(&sandbox, "1.3.0", "1.2.0");
    assert!(
        header.modules["app"]
            .entries
            .iter()
            .any(|entry| entry.entry.path.as_str() == "lib/libfoo-1.3.so"
                && matches!(entry.data, Some(PackData::Patch { .. }))),
        "{header:#?}"
    );
}

#[test]
fn a_client_two_releases_behind_patches_within_the_patch_depth() {
    let sandbox = Sandbox::new();
    let big = pseudo_random(200_000, 61);
    let mut content = big.clone();
    let mut releases = Vec::new();
    for n in 1..=3 {
        let root = sandbox.path(&format!("r{n}"));
        write(&root, "lib/big.bin", &content, 0o644);
        write(&root, "bin/tool", b"#!/bin/sh\n", 0o755);
        releases.push((root, content.clone()));
        content[n * 1000..n * 1000 + 4].copy_from_slice(b"EDIT");
    }
    sandbox.publish(&releases[0].0, "1.0.0", &[]).success();
    let server = FaultServer::serve(&sandbox.site());
    sandbox.init_client(&server.url());
    sandbox.client(["update", "--yes"]).success();
    sandbox.publish(&releases[1].0, "2.0.0", &[]).success();

    // Default depth (3): 3.0.0 has a pack from 1.0.0 as well, a diff of the two
    // trees, so the file that changed in 2.0.0 and again in 3.0.0 is one patch.
    sandbox.publish(&releases[2].0, "3.0.0", &[]).success();
    let header = pack_header(&sandbox, "3.0.0", "1.0.0");
    let big = header.modules["app"]
        .entries
        .iter()
        .find(|entry| entry.entry.path.as_str() == "lib/big.bin")
        .unwrap();
    assert!(
        matches!(&big.data, Some(PackData::Patch { base, .. }) if *base == Blake3Hash::of(&releases[0].1)),
        "{big:#?}"
    );
    let plan = dry_run(&sandbox);
    assert_eq!(plan.action("lib/big.bin"), "patch", "{:#}", plan.json);

    // Depth 1: only a pack from 2.0.0, so a client on 1.0.0 fetches the index and the
    // file's range of the copy pack, in a handful of requests.
    sandbox
        .publish(&releases[2].0, "3.0.0", &["--force", "--patch-depth", "1"])
        .success();
    let packs: Vec<String> = document(&sandbox, "3.0.0")
        .packs
        .iter()
        .map(|pack| pack.from.to_string())
        .collect();
    assert_eq!(packs, ["2.0.0"]);
    let before = server.requests().len();
    let plan = dry_run(&sandbox);
    assert_eq!(plan.action("lib/big.bin"), "range", "{:#}", plan.json);
    let planned = server.requests()[before..].to_vec();
    assert_eq!(
        classes(&planned),
        BTreeSet::from([
            BlobClass::Manifest,
            BlobClass::Document,
            BlobClass::FileIndex
        ]),
        "the plan needs the target's index: {planned:#?}"
    );

    let before = server.requests().len();
    let report = sandbox
        .client(["update", "--yes", "--json"])
        .success()
        .json();
    assert_same_tree(&sandbox.root().join("current"), &releases[2].0);
    let requested = server.requests()[before..].to_vec();
    assert!(
        requested.len() <= 1 + 6,
        "the manifest, then at most 6 requests: {requested:#?}"
    );
    assert!(report["requests"].as_u64().unwrap() <= 6, "{report:#}");
    assert_eq!(
        classes(&requested),
        BTreeSet::from([BlobClass::Manifest, BlobClass::Copies]),
        "the document and the index came from the dry run's cache: {requested:#?}"
    );
}
