//! Module packages in both formats: tar.zst by default, tar.gz with
//! `--package-format gz`, on one channel. Clients install either, `verify`, `mirror`
//! and `gc` handle both, and a tar.zst release raises the channel's client floor.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use wavecast_schema::PackageFormat;
use wavecast_tests::delta::{LoggingNginx, module, package_path};
use wavecast_tests::{Sandbox, assert_same_tree, pseudo_random};

/// A release folder with text that compresses, a binary, a link and an empty folder.
fn release(sandbox: &Sandbox, name: &str, variant: u64) -> PathBuf {
    let root = sandbox.path(name);
    let write = |relative: &str, content: &[u8], mode: u32| {
        let path = root.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    write("bin/app", b"#!/bin/sh\necho app\n", 0o755);
    write("lib/data.bin", &pseudo_random(60_000, variant), 0o644);
    let text: String = (0..4_000)
        .map(|line| format!("line {line} of release {variant}\n"))
        .collect();
    write("share/notes.txt", text.as_bytes(), 0o644);
    std::os::unix::fs::symlink("notes.txt", root.join("share/README")).unwrap();
    std::fs::create_dir_all(root.join("var/empty")).unwrap();
    root
}

fn blobs(site: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(site.join("blobs"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_channel_of_tar_zst_and_tar_gz_releases_installs_verifies_mirrors_and_collects() {
    let sandbox = Sandbox::new();
    let (r1, r2, r3) = (
        release(&sandbox, "r1", 1),
        release(&sandbox, "r2", 2),
        release(&sandbox, "r3", 3),
    );

    // tar.gz on request: every client reads it, so the floor stays.
    let published = sandbox
        .publish(&r1, "1.0.0", &["--package-format", "gz", "--json"])
        .success();
    let report = published.json();
    assert_eq!(report["modules"][0]["package_format"], "tar.gz", "{report}");
    assert_eq!(report["modules"][0]["package_level"], 6, "{report}");
    assert_eq!(
        sandbox.manifest("stable").min_client_version.to_string(),
        "0.1.0"
    );
    let gz = module(&sandbox, "1.0.0", "app");
    assert_eq!(gz.package_format, PackageFormat::TarGz);
    assert!(package_path(&gz).ends_with(".tar.gz"));

    let nginx = LoggingNginx::serve(&sandbox.site());
    sandbox.init_client(&nginx.url());
    sandbox.client(["update", "--yes"]).success();
    assert_same_tree(&sandbox.root().join("current"), &r1);

    // The default, tar.zst, raises the floor to the first client that reads it, and
    // says so.
    let published = sandbox.publish(&r2, "2.0.0", &[]).success();
    assert!(
        published
            .stderr
            .contains("channel `stable` now requires wavecast-update >= 0.2.0, the first to read tar.zst packages"),
        "{}",
        published.stderr
    );
    // A small package gets zstd's 19; large ones get 9 (a unit test of the rule).
    assert!(
        published.stderr.contains("tar.zst (level 19)"),
        "{}",
        published.stderr
    );
    assert_eq!(
        sandbox.manifest("stable").min_client_version.to_string(),
        "0.2.0"
    );
    let zst = module(&sandbox, "2.0.0", "app");
    assert_eq!(zst.package_format, PackageFormat::TarZst);
    let zst_path = package_path(&zst);
    assert!(zst_path.ends_with(".tar.zst"), "{zst_path}");
    let zst_bytes = std::fs::read(sandbox.site().join(&zst_path)).unwrap();
    assert!(
        zst_bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]),
        "a zstd frame"
    );
    assert!(zst.package.size < gz.package.size);

    // `--full` takes the whole tar.zst; a second client installs it fresh.
    nginx.clear_log();
    sandbox.client(["update", "--yes", "--full"]).success();
    assert_same_tree(&sandbox.root().join("current"), &r2);
    let fetched: Vec<String> = nginx
        .requests()
        .into_iter()
        .map(|served| served.path)
        .collect();
    assert!(
        fetched.iter().any(|path| path.ends_with(&zst_path)),
        "{fetched:?}"
    );
    let fresh = sandbox.path("fresh");
    wavecast_tests::client::init_at(&sandbox, &fresh, &nginx.url(), &[]);
    sandbox.client_at(&fresh, ["update", "--yes"]).success();
    assert_same_tree(&fresh.join("current"), &r2);

    // Back to tar.gz: the floor stays, and the client updates from its delta pack.
    sandbox
        .publish(&r3, "3.0.0", &["--package-format", "gz"])
        .success();
    assert_eq!(
        sandbox.manifest("stable").min_client_version.to_string(),
        "0.2.0"
    );
    sandbox.client(["update", "--yes"]).success();
    assert_same_tree(&sandbox.root().join("current"), &r3);

    // verify reads both formats, down to each package's tree.
    let site = sandbox.site();
    let pubkey = sandbox.pubkey();
    let verify = |site: &Path| {
        sandbox
            .wavecast(
                ["verify"],
                [
                    site.as_os_str(),
                    "--pubkey".as_ref(),
                    pubkey.as_os_str(),
                    "--json".as_ref(),
                ],
            )
            .success()
            .json()
    };
    let report = verify(&site);
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["warnings"], serde_json::json!([]), "{report}");

    // A floor lowered by hand below what tar.zst needs is a warning.
    let (site_arg, key) = (site.to_str().unwrap(), sandbox.key());
    let floor = |version: &str| {
        sandbox
            .wavecast(
                [
                    "rollout",
                    "2.0.0",
                    "--min-client-version",
                    version,
                    "--site",
                    site_arg,
                    "--key",
                ],
                [key.as_os_str()],
            )
            .success();
    };
    floor("0.1.0");
    let report = verify(&site);
    let warnings = report["warnings"].to_string();
    assert!(
        warnings.contains("module app of 2.0.0 is a tar.zst package, which wavecast-update before 0.2.0 cannot read"),
        "{report}"
    );
    floor("0.2.0");
    assert_eq!(verify(&site)["warnings"], serde_json::json!([]));

    // A tar.zst that does not hold its index's tree is a problem verify names.
    let mut broken = zst_bytes.clone();
    let last = broken.len() - 1;
    broken[last / 2] ^= 0xff;
    std::fs::write(site.join(&zst_path), &broken).unwrap();
    let problem = sandbox
        .wavecast(
            ["verify"],
            [site.as_os_str(), "--pubkey".as_ref(), pubkey.as_os_str()],
        )
        .code(1);
    assert!(
        problem.stdout.contains(&zst_path) || problem.stderr.contains(&zst_path),
        "{}{}",
        problem.stdout,
        problem.stderr
    );
    std::fs::write(site.join(&zst_path), &zst_bytes).unwrap();

    // mirror copies both kinds, and the copy verifies.
    let copy = sandbox.path("mirror");
    sandbox
        .wavecast(
            ["mirror"],
            [
                site.as_os_str(),
                copy.as_os_str(),
                "--pubkey".as_ref(),
                pubkey.as_os_str(),
            ],
        )
        .success();
    let mirrored = blobs(&copy);
    for path in [package_path(&gz), zst_path.clone()] {
        let name = path.trim_start_matches("blobs/");
        assert!(
            mirrored.iter().any(|blob| blob == name),
            "{path}: {mirrored:?}"
        );
    }
    assert_eq!(verify(&copy)["ok"], true);

    // gc keeps the live packages of both formats, and collects a retired one.
    sandbox
        .wavecast(
            ["retire", "2.0.0", "--site", site_arg, "--key"],
            [key.as_os_str()],
        )
        .success();
    sandbox
        .wavecast(
            [
                "gc",
                site_arg,
                "--pubkey",
                pubkey.to_str().unwrap(),
                "--grace",
                "0s",
            ],
            [""; 0],
        )
        .success();
    let left = blobs(&site);
    let has = |path: &str| {
        left.iter()
            .any(|blob| blob == path.trim_start_matches("blobs/"))
    };
    assert!(has(&package_path(&gz)), "{left:?}");
    assert!(!has(&zst_path), "2.0.0's tar.zst is collected: {left:?}");
    assert!(has(&package_path(&module(&sandbox, "3.0.0", "app"))));
    assert_eq!(verify(&site)["ok"], true);
}
