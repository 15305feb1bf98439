//! Release trees with symbolic links and hard links: Debian's `git` package (148
//! links, some pointing out of the package) updated differentially behind nginx, and
//! hand-made trees for what `publish` reports about links.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use serde_json::Value;
use wavecast_tests::delta::{BlobClass, LoggingNginx, module};
use wavecast_tests::{Sandbox, assert_same_tree, corpus};

/// `diff -r --no-dereference` of two trees: the stock tool's word that they are the
/// same, links compared by target.
#[track_caller]
fn assert_diff_clean(installed: &Path, published: &Path) {
    // A trailing `/` makes diff enter `current` itself, which is a link.
    let output = Command::new("diff")
        .args(["-r", "--no-dereference"])
        .arg(format!("{}/", installed.display()))
        .arg(format!("{}/", published.display()))
        .output()
        .expect("run diff");
    assert!(
        output.status.success(),
        "diff -r --no-dereference found differences:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_git_package_updates_differentially_to_exactly_its_new_tree() {
    let pair = corpus::pair("git");
    let (old, new) = ("2.39.5-deb12u2", "2.39.5-deb12u3");
    let sandbox = Sandbox::new();
    let published = sandbox.publish(&pair.old_dir, old, &["--json"]).success();
    let summary: Value = serde_json::from_str(&published.stdout).unwrap();
    assert_eq!(summary["modules"][0]["links"], 148, "{summary}");

    let nginx = LoggingNginx::serve(&sandbox.site());
    sandbox.init_client(&nginx.url());
    sandbox.client(["update", "--yes"]).success();
    let current = sandbox.root().join("current");
    assert_same_tree(&current, &pair.old_dir);
    assert_diff_clean(&current, &pair.old_dir);

    sandbox.publish(&pair.new_dir, new, &[]).success();
    nginx.clear_log();
    let update = sandbox
        .client(["update", "--yes", "--json"])
        .success()
        .json();
    assert_eq!(update["installed"], new, "{update}");
    assert_same_tree(&current, &pair.new_dir);
    assert_diff_clean(&current, &pair.new_dir);

    // Differential: one delta pack after the manifest and the release's document,
    // never the 20 MB package, and no file index: the client derives the new one
    // from the pack and the index it kept at its install.
    let requests = nginx.requests();
    let new_module = module(&sandbox, new, "app");
    let classes: Vec<BlobClass> = requests
        .iter()
        .map(|served| BlobClass::of(&served.path))
        .collect();
    assert_eq!(
        classes,
        [BlobClass::Manifest, BlobClass::Document, BlobClass::Pack],
        "{requests:#?}"
    );
    let received: u64 = requests.iter().map(|served| served.body_bytes).sum();
    assert!(
        received * 20 < new_module.package.size,
        "{received} bytes received for a {} byte package",
        new_module.package.size
    );

    // The tree the client left behind is the old release, intact, links and all.
    let kept = std::fs::read_dir(sandbox.root().join("releases"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.file_name().unwrap().to_string_lossy().starts_with(old))
        .expect("the previous release is kept");
    assert_same_tree(&kept, &pair.old_dir);

    sandbox
        .wavecast(
            ["verify"],
            [
                sandbox.site().as_os_str(),
                "--pubkey".as_ref(),
                sandbox.pubkey().as_os_str(),
            ],
        )
        .success();
}

#[test]
fn publish_packages_links_as_they_are_and_says_where_they_lead_out() {
    let sandbox = Sandbox::new();
    let release = sandbox.path("release");
    std::fs::create_dir_all(release.join("lib")).unwrap();
    std::fs::create_dir_all(release.join("share")).unwrap();
    std::fs::write(release.join("lib/libfoo.so.1.2"), b"\x7fELF").unwrap();
    std::fs::set_permissions(
        release.join("lib/libfoo.so.1.2"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::fs::write(release.join("share/a.txt"), b"shared").unwrap();
    std::fs::hard_link(release.join("share/a.txt"), release.join("share/b.txt")).unwrap();
    for (link, target) in [
        ("lib/libfoo.so.1", "libfoo.so.1.2"),
        ("lib/libfoo.so", "libfoo.so.1"),
        ("share/licence", "/usr/share/common-licenses/GPL-2"),
        ("share/up", "../../outside"),
        ("share/nowhere", "missing"),
    ] {
        std::os::unix::fs::symlink(target, release.join(link)).unwrap();
    }

    let run = sandbox.publish(&release, "1.0.0", &["--json"]).success();
    let summary: Value = serde_json::from_str(&run.stdout).unwrap();
    let module = &summary["modules"][0];
    assert_eq!(module["links"], 5, "{summary}");
    let outside: Vec<(&str, &str)> = module["outside_links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|link| {
            (
                link["path"].as_str().unwrap(),
                link["target"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        outside,
        [
            ("share/licence", "/usr/share/common-licenses/GPL-2"),
            ("share/up", "../../outside")
        ]
    );
    assert!(
        run.stderr
            .contains("warning: module app: symbolic links that point outside the release tree")
            && run.stderr.contains("`share/up` -> `../../outside`"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("note: module app: hard links become copies (each name is packaged as a file of its own): `share/a.txt`, `share/b.txt`"),
        "{}",
        run.stderr
    );

    let nginx = wavecast_tests::Nginx::serve(&sandbox.site());
    sandbox.init_client(&nginx.url());
    sandbox.client(["update", "--yes"]).success();
    let current = sandbox.root().join("current");
    assert_same_tree(&current, &release);
    assert_eq!(
        std::fs::read(current.join("lib/libfoo.so")).unwrap(),
        b"\x7fELF"
    );
    let (a, b) = (
        std::fs::metadata(current.join("share/a.txt")).unwrap(),
        std::fs::metadata(current.join("share/b.txt")).unwrap(),
    );
    assert_eq!((a.len(), b.len()), (6, 6));
    assert_ne!(
        std::os::unix::fs::MetadataExt::ino(&a),
        std::os::unix::fs::MetadataExt::ino(&b),
        "hard links arrive as separate files"
    );
}
