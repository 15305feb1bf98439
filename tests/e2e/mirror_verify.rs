//! `wavecast verify` checks a whole site (signatures and every blob) and names each
//! broken file; `wavecast mirror` copies a site, verified, incrementally and resumably,
//! and clients update from the copy.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use wavecast_schema::Module;
use wavecast_site::layout::BlobKind;
use wavecast_tests::delta::{blob_path, index_path, package_path};
use wavecast_tests::{Nginx, Sandbox, assert_same_tree, pseudo_random};

/// Writes `content` at `root/relative` with permission bits `mode`.
fn write(root: &Path, relative: &str, content: &[u8], mode: u32) {
    let path = root.join(relative);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, content).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Publishes 1.0.0 and 1.1.0, which differ by a small edit of a large file (so 1.1.0
/// has a delta pack with a patch), and returns the two release folders.
fn two_releases(sandbox: &Sandbox) -> (PathBuf, PathBuf) {
    let (r1, r2) = (sandbox.path("r1"), sandbox.path("r2"));
    let big = pseudo_random(150_000, 7);
    let mut edited = big.clone();
    edited[75_000..75_008].copy_from_slice(b"EDITED!!");
    for (root, content, variant) in [(&r1, &big, "1.0"), (&r2, &edited, "1.1")] {
        write(root, "bin/app", b"#!/bin/sh\necho app\n", 0o755);
        write(root, "lib/big.bin", content, 0o644);
        write(root, "VERSION", variant.as_bytes(), 0o444);
        std::fs::create_dir_all(root.join("var/empty")).unwrap();
    }
    sandbox.publish(&r1, "1.0.0", &[]).success();
    sandbox.publish(&r2, "1.1.0", &[]).success();
    (r1, r2)
}

/// The `app` module of `version` on the stable channel.
fn module(sandbox: &Sandbox, version: &str) -> Module {
    wavecast_tests::delta::module(sandbox, version, "app")
}

fn verify(sandbox: &Sandbox, site: &str, extra: &[&str]) -> wavecast_tests::Run {
    let pubkey = sandbox.pubkey();
    let mut args = vec!["verify", site, "--pubkey", pubkey.to_str().unwrap()];
    args.extend_from_slice(extra);
    sandbox.wavecast(args, [""; 0])
}

fn mirror(
    sandbox: &Sandbox,
    source: &str,
    destination: &Path,
    extra: &[&str],
) -> wavecast_tests::Run {
    let pubkey = sandbox.pubkey();
    let mut args = vec![
        "mirror",
        source,
        destination.to_str().unwrap(),
        "--pubkey",
        pubkey.to_str().unwrap(),
        "--json",
    ];
    args.extend_from_slice(extra);
    sandbox.wavecast(args, [""; 0])
}

#[test]
fn verify_passes_on_a_fresh_site_and_names_every_broken_file() {
    let sandbox = Sandbox::new();
    two_releases(&sandbox);
    let site = sandbox.site();
    let site_arg = site.to_str().unwrap();

    let report = verify(&sandbox, site_arg, &["--json"]).success().json();
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["schema_version"], 1);
    assert_eq!(report["channels"][0]["channel"], "stable", "{report}");
    assert!(
        report["checked"]["files"].as_u64().unwrap() >= 6,
        "{report}"
    );
    verify(&sandbox, &format!("file://{site_arg}"), &[]).success();
    {
        let nginx = Nginx::serve(&site);
        let served = verify(&sandbox, &nginx.url(), &["--json"]).success().json();
        assert_eq!(served["checked"], report["checked"], "{served}");
    }

    // A key that did not sign the site.
    sandbox
        .wavecast(["keygen", "--out"], [sandbox.path("other")])
        .success();
    let other = sandbox.path("other/wavecast.pub");
    let wrong = sandbox
        .wavecast(
            ["verify", site_arg, "--pubkey", other.to_str().unwrap()],
            [""; 0],
        )
        .code(1);
    assert!(
        wrong
            .stderr
            .contains("problem: channels/stable.json: the manifest is signed by 0 of the release keys of root v1"),
        "{}",
        wrong.stderr
    );

    // Break a package byte and a copy pack byte, and lose the delta pack.
    let newest = module(&sandbox, "1.1.0");
    let package = package_path(&newest);
    let copies = blob_path(&newest.copies.as_ref().unwrap().blake3, BlobKind::Copies);
    for path in [&package, &copies] {
        let mut bytes = std::fs::read(site.join(path)).unwrap();
        bytes[100] ^= 0xff;
        std::fs::write(site.join(path), bytes).unwrap();
    }
    let pack = wavecast_tests::delta::pack_path(&sandbox, "1.1.0", "1.0.0").expect("a pack");
    std::fs::remove_file(site.join(&pack)).unwrap();

    let broken = verify(&sandbox, site_arg, &[]).code(1);
    for (path, what) in [
        (package.as_str(), "blake3 mismatch"),
        (copies.as_str(), "blake3 mismatch"),
        (pack.as_str(), "missing"),
    ] {
        assert!(
            broken.stderr.contains(&format!("problem: {path}: {what}")),
            "{path}: {}",
            broken.stderr
        );
    }
    assert!(broken.stderr.contains("3 problems"), "{}", broken.stderr);
    let json = verify(&sandbox, site_arg, &["--json"]).code(1).json();
    assert_eq!(json["ok"], false);
    assert_eq!(json["problems"].as_array().unwrap().len(), 3, "{json}");
}

#[test]
fn a_mirror_is_verified_incremental_resumable_and_serves_clients() {
    let sandbox = Sandbox::new();
    let (_, r2) = two_releases(&sandbox);
    let nginx = Nginx::serve(&sandbox.site());
    let copy = sandbox.path("mirror");

    let first = mirror(&sandbox, &nginx.url(), &copy, &[]).success().json();
    assert_eq!(first["ok"], true, "{first}");
    assert_eq!(first["copied"], first["blobs"], "{first}");
    assert_eq!(first["already_present"]["files"], 0, "{first}");
    assert_eq!(first["channels_written"], serde_json::json!(["stable"]));
    assert_eq!(
        std::fs::read(copy.join("channels/stable.json")).unwrap(),
        std::fs::read(sandbox.site().join("channels/stable.json")).unwrap(),
        "the signed manifest is copied unchanged"
    );
    assert!(copy.join("index.html").is_file());
    verify(&sandbox, copy.to_str().unwrap(), &[]).success();

    // Clients update from the mirror, as a folder and as a file:// URL.
    sandbox.init_client(copy.to_str().unwrap());
    sandbox.client(["update", "--yes"]).success();
    assert_same_tree(&sandbox.root().join("current"), &r2);
    let second_root = sandbox.path("client-2");
    sandbox
        .client_at(
            &second_root,
            [
                "init",
                "--url",
                &format!("file://{}", copy.display()),
                "--pubkey",
                sandbox.pubkey().to_str().unwrap(),
            ],
        )
        .success();
    sandbox
        .client_at(&second_root, ["update", "--yes"])
        .success();
    assert_same_tree(&second_root.join("current"), &r2);

    // Mirroring again copies nothing.
    let again = mirror(&sandbox, &nginx.url(), &copy, &[]).success().json();
    assert_eq!(again["copied"]["files"], 0, "{again}");
    assert_eq!(again["already_present"], first["blobs"], "{again}");
    assert_eq!(again["channels_written"], serde_json::json!([]));

    // An interrupted mirror (blobs missing) fails verification and is completed by
    // running the mirror again.
    let newest = module(&sandbox, "1.1.0");
    let lost = [package_path(&newest), index_path(&newest)];
    for path in &lost {
        std::fs::remove_file(copy.join(path)).unwrap();
    }
    verify(&sandbox, copy.to_str().unwrap(), &[]).code(1);
    let resumed = mirror(&sandbox, &nginx.url(), &copy, &[]).success().json();
    assert_eq!(resumed["copied"]["files"], 2, "{resumed}");
    verify(&sandbox, copy.to_str().unwrap(), &[]).success();
    let leftovers: Vec<_> = std::fs::read_dir(&copy)
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .filter(|name| name.to_string_lossy().starts_with(".wavecast"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_filtered_mirror_copies_only_the_newest_releases_and_says_so() {
    let sandbox = Sandbox::new();
    let (_, r2) = two_releases(&sandbox);
    let copy = sandbox.path("mirror");
    let run = mirror(
        &sandbox,
        sandbox.site().to_str().unwrap(),
        &copy,
        &["--newest", "1"],
    )
    .success();
    let json = run.json();
    assert_eq!(json["filtered"], true, "{json}");
    let old = module(&sandbox, "1.0.0");
    assert!(!copy.join(package_path(&old)).exists());
    assert!(
        copy.join(package_path(&module(&sandbox, "1.1.0")))
            .is_file()
    );
    sandbox.init_client(copy.to_str().unwrap());
    sandbox.client(["update", "--yes"]).success();
    assert_same_tree(&sandbox.root().join("current"), &r2);

    let warned = sandbox.wavecast(
        [
            "mirror",
            sandbox.site().to_str().unwrap(),
            copy.to_str().unwrap(),
            "--pubkey",
            sandbox.pubkey().to_str().unwrap(),
            "--newest",
            "1",
        ],
        [""; 0],
    );
    assert!(
        warned
            .success()
            .stderr
            .contains("can only install the copied"),
        "the filtered mirror warns"
    );
    let refused = sandbox.wavecast(
        [
            "mirror",
            sandbox.site().to_str().unwrap(),
            "ftp://example.invalid/site",
            "--pubkey",
            sandbox.pubkey().to_str().unwrap(),
        ],
        [""; 0],
    );
    assert!(refused.code(2).stderr.contains("not supported"));
}
