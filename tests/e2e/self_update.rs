//! The client updating itself: a real older `wavecast-update` (a copy of the built
//! one, in the sandbox) facing a manifest that needs the newer real client
//! (`WAVECAST_CLIENT_VERSION=0.99.0`, built by `scripts/test.sh`), published as the
//! updater with `wavecast publish-updater`.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use wavecast_schema::marked_versions;
use wavecast_site::layout::BlobKind;
use wavecast_tests::delta::{blob_path, package_path as package_path_of};
use wavecast_tests::self_update::{
    NEXT_CLIENT_VERSION, client_platform, installed_client, next_client, publish_updater, run_at,
    version_of,
};
use wavecast_tests::{Nginx, Sandbox, assert_same_tree, binary, sample_release};

/// `wavecast-update <version>` of the client under test.
fn old_version() -> String {
    version_of(&binary("wavecast-update"))
}

/// The version number alone, e.g. `0.1.0`.
fn old_number() -> String {
    old_version()
        .strip_prefix("wavecast-update ")
        .expect("the client names itself")
        .to_owned()
}

/// A sandbox whose client, a copy of the built one in `bin/`, installed release
/// 1.0.0 from nginx; returns the copy's path and the platform it takes builds for.
fn installed_1_0(sandbox: &Sandbox, nginx: &Nginx) -> (PathBuf, String) {
    let r1 = sample_release(&sandbox.path("release-1.0"), "1.0");
    sandbox.publish(&r1, "1.0.0", &[]).success();
    let client = installed_client(sandbox);
    run_at(
        sandbox,
        &client,
        &[
            "init",
            "--url",
            &nginx.url(),
            "--pubkey",
            sandbox.pubkey().to_str().unwrap(),
        ],
    )
    .success();
    run_at(sandbox, &client, &["update", "--yes"]).success();
    assert_same_tree(&sandbox.root().join("current"), &r1);
    (client, client_platform(sandbox))
}

/// The names in `dir`, sorted.
pub(crate) fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The stderr lines of a run.
fn lines(stderr: &str) -> Vec<&str> {
    stderr.lines().collect()
}

#[test]
fn an_old_client_replaces_itself_then_installs_the_release() {
    let sandbox = Sandbox::new();
    let nginx = Nginx::serve(&sandbox.site());
    let (client, platform) = installed_1_0(&sandbox, &nginx);
    publish_updater(
        &sandbox,
        &next_client(),
        NEXT_CLIENT_VERSION,
        &platform,
        &[],
    )
    .success();
    let r2 = sample_release(&sandbox.path("release-2.0"), "2.0");
    let published = sandbox.publish(&r2, "2.0.0", &["--min-client-version", NEXT_CLIENT_VERSION]);
    assert!(
        published.success().stderr.contains(&format!(
            "channel `stable` requires wavecast-update >= {NEXT_CLIENT_VERSION}; builds offered: {platform} {NEXT_CLIENT_VERSION}"
        )),
    );
    let manifest = sandbox.manifest("stable");
    assert_eq!(manifest.min_client_version.to_string(), NEXT_CLIENT_VERSION);
    assert_eq!(
        manifest.updater[platform.as_str()].version.to_string(),
        NEXT_CLIENT_VERSION
    );

    // `check` installs nothing: it says the client must update itself first.
    let check = run_at(&sandbox, &client, &["check", "--json", "--exit-code"]).code(10);
    let check = check.json();
    assert_eq!(check["decision"], "self_update", "{check}");
    assert_eq!(check["client"]["version"], old_number());
    assert_eq!(check["client"]["self_update"], "required");
    assert_eq!(check["client"]["updater"], NEXT_CLIENT_VERSION);
    assert_eq!(check["client"]["platform"], platform.as_str());
    let dry_run = run_at(&sandbox, &client, &["update", "--dry-run"]).success();
    assert_eq!(
        dry_run.stdout.trim(),
        format!(
            "wavecast-update {} must update itself to {NEXT_CLIENT_VERSION} first (this channel needs >= {NEXT_CLIENT_VERSION}): run `wavecast-update update` or `wavecast-update self-update`",
            old_number()
        )
    );
    assert_eq!(version_of(&client), old_version());

    let update = run_at(&sandbox, &client, &["update", "--yes"]).success();
    let bin = sandbox.path("bin");
    let (exe, old) = (bin.join("wavecast-update"), bin.join("wavecast-update.old"));
    let stderr = lines(&update.stderr);
    assert_eq!(
        stderr[..2],
        [
            format!(
                "wavecast-update {} is older than the {NEXT_CLIENT_VERSION} channel `stable` needs: updating itself to {NEXT_CLIENT_VERSION} first",
                old_number()
            ),
            format!(
                "updated wavecast-update {} -> {NEXT_CLIENT_VERSION} (`{}`; the old executable is kept as `{}`); restarting it",
                old_number(),
                exe.display(),
                old.display()
            ),
        ],
        "{}",
        update.stderr
    );
    assert_eq!(stderr.len(), 2, "{}", update.stderr);
    // The restarted client's result, on the stdout it inherited.
    assert!(
        update
            .stdout
            .starts_with("installed 2.0.0 (was 1.0.0) in releases/2.0.0-"),
        "{}",
        update.stdout
    );

    // The binary on disk is the new client, the old one is kept, nothing else is left.
    assert_eq!(
        version_of(&exe),
        format!("wavecast-update {NEXT_CLIENT_VERSION}")
    );
    assert_eq!(version_of(&old), old_version());
    assert_eq!(names(&bin), ["wavecast-update", "wavecast-update.old"]);
    assert_same_tree(&sandbox.root().join("current"), &r2);

    let check = run_at(&sandbox, &exe, &["check", "--json"])
        .success()
        .json();
    assert_eq!(check["decision"], "up_to_date", "{check}");
    assert_eq!(check["client"]["version"], NEXT_CLIENT_VERSION);
    assert_eq!(check["client"]["self_update"], "up_to_date");
    let again = run_at(&sandbox, &exe, &["self-update", "--json"])
        .success()
        .json();
    assert_eq!(again["result"], "up_to_date", "{again}");
}

#[test]
fn a_corrupt_updater_package_leaves_the_old_client_in_place() {
    let sandbox = Sandbox::new();
    let nginx = Nginx::serve(&sandbox.site());
    let (client, platform) = installed_1_0(&sandbox, &nginx);
    publish_updater(
        &sandbox,
        &next_client(),
        NEXT_CLIENT_VERSION,
        &platform,
        &["--min-client-version", NEXT_CLIENT_VERSION],
    )
    .success();
    // The host serves other bytes of the same size under the package's name.
    let package = sandbox.manifest("stable").updater[platform.as_str()]
        .package
        .clone();
    let package_path = blob_path(&package.blake3, BlobKind::Package);
    let path = sandbox.site().join(&package_path);
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();

    // `wavecast verify` checks updater packages like any other blob.
    let verify = sandbox.wavecast(
        [
            "verify".as_ref(),
            sandbox.site().as_os_str(),
            "--pubkey".as_ref(),
        ],
        [sandbox.pubkey()],
    );
    assert_eq!(verify.code, 1, "{}", verify.stderr);
    assert!(
        verify
            .stderr
            .contains(&format!("problem: {package_path}: ")),
        "{}",
        verify.stderr
    );

    let update = run_at(&sandbox, &client, &["update", "--yes"]).code(1);
    let stderr = lines(&update.stderr);
    assert_eq!(
        stderr[1],
        format!(
            "error: failed to update wavecast-update {} to {NEXT_CLIENT_VERSION}; it is unchanged",
            old_number()
        ),
        "{}",
        update.stderr
    );
    assert!(
        stderr[2].starts_with(&format!(
            "  caused by: `{}{}` is corrupt: its blake3 hash is ",
            nginx.url(),
            package_path
        )),
        "{}",
        update.stderr
    );
    assert!(
        update.stderr.contains("hint: nothing was installed"),
        "{}",
        update.stderr
    );
    // The old client is intact, runs, and still refuses the manifest it cannot read.
    assert_eq!(version_of(&client), old_version());
    assert_eq!(names(&sandbox.path("bin")), ["wavecast-update"]);
    let status = run_at(&sandbox, &client, &["status", "--json"])
        .success()
        .json();
    assert_eq!(status["current"], "1.0.0", "{status}");
}

#[test]
fn a_broken_application_package_does_not_block_updating_the_updater() {
    let sandbox = Sandbox::new();
    let nginx = Nginx::serve(&sandbox.site());
    let client = installed_client(&sandbox);
    // Nothing is published yet: set up offline, as an image built before the site.
    sandbox
        .client([
            "init",
            "--offline",
            "--url",
            &nginx.url(),
            "--pubkey",
            sandbox.pubkey().to_str().unwrap(),
        ])
        .success();
    let platform = client_platform(&sandbox);
    publish_updater(
        &sandbox,
        &next_client(),
        NEXT_CLIENT_VERSION,
        &platform,
        &[],
    )
    .success();
    let r1 = sample_release(&sandbox.path("release-1.0"), "1.0");
    sandbox
        .publish(&r1, "1.0.0", &["--min-client-version", NEXT_CLIENT_VERSION])
        .success();
    // The only release's package is broken on the host: a fresh install needs it.
    let module = wavecast_tests::delta::newest_module(&sandbox, "app");
    std::fs::write(sandbox.site().join(package_path_of(&module)), b"broken").unwrap();

    let update = run_at(&sandbox, &client, &["update", "--yes"]).code(1);
    let stderr = lines(&update.stderr);
    assert!(
        stderr[1].starts_with(&format!(
            "updated wavecast-update {} -> {NEXT_CLIENT_VERSION} (",
            old_number()
        )),
        "{}",
        update.stderr
    );
    // The restarted, newer client then fails on the application's package, clearly.
    assert!(
        update.stderr.contains(&format!(
            "`{}{}` is truncated: got 6 of the declared {} bytes",
            nginx.url(),
            package_path_of(&module),
            module.package.size
        )),
        "{}",
        update.stderr
    );
    assert_eq!(
        version_of(&sandbox.path("bin/wavecast-update")),
        format!("wavecast-update {NEXT_CLIENT_VERSION}")
    );
    assert!(!sandbox.root().join("current").exists());
}

#[test]
fn with_no_build_offered_an_old_client_stops_with_a_hint() {
    let mut sandbox = Sandbox::new();
    let nginx = Nginx::serve(&sandbox.site());
    let (client, platform) = installed_1_0(&sandbox, &nginx);
    let r2 = sample_release(&sandbox.path("release-2.0"), "2.0");
    let published = sandbox
        .publish(&r2, "2.0.0", &["--min-client-version", NEXT_CLIENT_VERSION])
        .success();
    assert!(
        published.stderr.contains(&format!(
            "warning: channel `stable` requires wavecast-update >= {NEXT_CLIENT_VERSION} but offers no build of it"
        )),
        "{}",
        published.stderr
    );

    for args in [&["update", "--yes"][..], &["check"][..]] {
        let run = run_at(&sandbox, &client, args).code(1);
        assert_eq!(
            lines(&run.stderr),
            [
                format!(
                    "error: manifest `{}channels/stable.json` needs wavecast-update >= {NEXT_CLIENT_VERSION}; this is {}",
                    nginx.url(),
                    old_number()
                ),
                format!(
                    "hint: the site offers no wavecast-update for `{platform}` at or above {NEXT_CLIENT_VERSION} to update itself to; install a newer one by hand, or ask the publisher to offer one (`wavecast publish-updater`)"
                ),
            ],
            "{args:?}"
        );
    }
    assert_eq!(version_of(&client), old_version());
    assert_eq!(names(&sandbox.path("bin")), ["wavecast-update"]);
    assert_same_tree(
        &sandbox.root().join("current"),
        &sandbox.path("release-1.0"),
    );

    // The publisher refuses to raise the floor above a build it offers.
    publish_updater(
        &sandbox,
        &next_client(),
        NEXT_CLIENT_VERSION,
        &platform,
        &[],
    )
    .success();
    let refused = sandbox.wavecast(
        [
            "rollout",
            "2.0.0",
            "--min-client-version",
            "1.0.0",
            "--site",
        ],
        [sandbox.site(), "--key".into(), sandbox.key()],
    );
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains(&format!(
            "the build offered for `{platform}` is {NEXT_CLIENT_VERSION}, so those clients could not update themselves"
        )),
        "{}",
        refused.stderr
    );

    // A client restarted by a self-update that is still too old stops, even with a
    // build offered: it never updates itself twice in a row.
    sandbox
        .env
        .insert("WAVECAST_SELF_UPDATED_FROM".into(), old_number());
    let run = run_at(&sandbox, &client, &["update", "--yes"]).code(1);
    assert_eq!(
        lines(&run.stderr)[0],
        format!(
            "error: wavecast-update updated itself from {0} and restarted, but `{1}` still reports {0}, below the {NEXT_CLIENT_VERSION} this channel needs; not updating again",
            old_number(),
            client.display()
        ),
        "{}",
        run.stderr
    );
    assert_eq!(version_of(&client), old_version());
}

#[test]
fn self_update_on_request_takes_a_newer_build_without_a_floor() {
    let sandbox = Sandbox::new();
    let nginx = Nginx::serve(&sandbox.site());
    let (client, platform) = installed_1_0(&sandbox, &nginx);
    publish_updater(
        &sandbox,
        &next_client(),
        NEXT_CLIENT_VERSION,
        &platform,
        &[],
    )
    .success();
    // A mirror carries the updater package; this client updates itself from it.
    let mirror = sandbox.path("mirror");
    sandbox
        .wavecast(
            [
                "mirror".as_ref(),
                sandbox.site().as_os_str(),
                mirror.as_os_str(),
            ],
            ["--pubkey".as_ref(), sandbox.pubkey().as_os_str()],
        )
        .success();
    let package = sandbox.manifest("stable").updater[platform.as_str()]
        .package
        .clone();
    assert!(
        mirror
            .join(blob_path(&package.blake3, BlobKind::Package))
            .is_file()
    );
    let pubkey = sandbox.pubkey();
    run_at(
        &sandbox,
        &client,
        &[
            "init",
            "--force",
            "--url",
            mirror.to_str().unwrap(),
            "--pubkey",
            pubkey.to_str().unwrap(),
        ],
    )
    .success();
    drop(nginx);

    let check = run_at(&sandbox, &client, &["check", "--json"])
        .success()
        .json();
    assert_eq!(check["decision"], "up_to_date", "{check}");
    assert_eq!(check["client"]["self_update"], "available");
    // `update` leaves an optional self-update alone.
    run_at(&sandbox, &client, &["update", "--yes"]).success();
    assert_eq!(version_of(&client), old_version());

    let updated = run_at(&sandbox, &client, &["self-update", "--json"])
        .success()
        .json();
    assert_eq!(updated["result"], "updated", "{updated}");
    assert_eq!(updated["from"], old_number());
    assert_eq!(updated["to"], NEXT_CLIENT_VERSION);
    assert!(updated["downloaded_bytes"].as_u64().unwrap() > 0);
    assert_eq!(
        version_of(&client),
        format!("wavecast-update {NEXT_CLIENT_VERSION}")
    );
    assert_eq!(
        version_of(&sandbox.path("bin/wavecast-update.old")),
        old_version()
    );
}

/// Every built client carries the version marker of the version it answers, which
/// `publish-updater` reads from a build it cannot run; the publisher, which searches
/// for the marker, carries none.
#[test]
fn every_built_client_carries_the_version_it_reports() {
    for (client, reported) in [
        (binary("wavecast-update"), old_number()),
        (next_client(), NEXT_CLIENT_VERSION.to_owned()),
    ] {
        let bytes = std::fs::read(&client).unwrap();
        assert_eq!(
            marked_versions(&bytes),
            [reported.parse::<semver::Version>().unwrap()],
            "{}",
            client.display()
        );
    }
    let publisher = std::fs::read(binary("wavecast")).unwrap();
    assert_eq!(marked_versions(&publisher), []);
}

/// `publish-updater` with a `--version` the build does not report: refused (exit 2)
/// before the site is touched, naming both versions; the right one is accepted.
#[test]
fn publish_updater_refuses_a_build_reporting_another_version() {
    let sandbox = Sandbox::new();
    let next = next_client();
    let refused = publish_updater(
        &sandbox,
        &next,
        "0.98.0",
        "x86_64-unknown-linux-gnu",
        &["--min-client-version", "0.98.0"],
    )
    .code(2);
    assert_eq!(
        lines(&refused.stderr),
        [
            format!(
                "error: `{}` reports wavecast-update {NEXT_CLIENT_VERSION}, not the 0.98.0 given with --version, so every client would refuse it (its answer to `--version` here)",
                next.display()
            ),
            format!(
                "hint: pass --version {NEXT_CLIENT_VERSION}, or build the client reporting 0.98.0: `WAVECAST_CLIENT_VERSION=0.98.0 cargo build --release --bin wavecast-update`"
            ),
        ],
        "{}",
        refused.stderr
    );
    assert!(!sandbox.site().exists(), "nothing was written");
    publish_updater(
        &sandbox,
        &next,
        NEXT_CLIENT_VERSION,
        "x86_64-unknown-linux-gnu",
        &[],
    )
    .success();
}

/// A build for another platform does not run here: its version marker is read, so a
/// cross build is checked like a native one.
#[test]
fn publish_updater_reads_a_build_it_cannot_run() {
    let sandbox = Sandbox::new();
    // The newer client with an ELF header naming no machine: the kernel refuses to
    // run it (ENOEXEC), as it refuses a build for another architecture.
    let foreign = sandbox.path("wavecast-update.foreign");
    let mut bytes = std::fs::read(next_client()).unwrap();
    assert_eq!(&bytes[..4], b"\x7fELF");
    bytes[18..20].copy_from_slice(&[0, 0]);
    std::fs::write(&foreign, &bytes).unwrap();
    std::fs::set_permissions(&foreign, std::fs::Permissions::from_mode(0o755)).unwrap();

    let refused = publish_updater(
        &sandbox,
        &foreign,
        "0.98.0",
        "riscv64gc-unknown-linux-gnu",
        &[],
    )
    .code(2);
    assert_eq!(
        lines(&refused.stderr)[0],
        format!(
            "error: `{}` reports wavecast-update {NEXT_CLIENT_VERSION}, not the 0.98.0 given with --version, so every client would refuse it (read from its version marker: it does not run here, Exec format error (os error 8))",
            foreign.display()
        ),
        "{}",
        refused.stderr
    );
    publish_updater(
        &sandbox,
        &foreign,
        NEXT_CLIENT_VERSION,
        "riscv64gc-unknown-linux-gnu",
        &[],
    )
    .success();
    let manifest = sandbox.manifest("stable");
    assert_eq!(
        manifest.updater["riscv64gc-unknown-linux-gnu"]
            .version
            .to_string(),
        NEXT_CLIENT_VERSION
    );
}

/// A file that is not a wavecast-update is refused, whether it runs (and answers
/// something else) or not (and has no marker).
#[test]
fn publish_updater_refuses_what_is_not_a_wavecast_update() {
    let sandbox = Sandbox::new();
    let publisher = binary("wavecast");
    let refused = publish_updater(
        &sandbox,
        &publisher,
        "0.1.0",
        "x86_64-unknown-linux-gnu",
        &[],
    )
    .code(2);
    let hint = "hint: give the path of a built wavecast-update; `cargo build --release --bin wavecast-update` writes `target/release/wavecast-update`";
    assert_eq!(
        lines(&refused.stderr),
        [
            format!(
                "error: `{}` is not a wavecast-update executable: it answered `--version` with `{}`, not `wavecast-update <version>`",
                publisher.display(),
                version_of(&publisher)
            )
            .as_str(),
            hint,
        ],
        "{}",
        refused.stderr
    );

    let data = sandbox.path("release-notes.txt");
    std::fs::write(&data, "3.2.0: faster").unwrap();
    let refused =
        publish_updater(&sandbox, &data, "0.1.0", "x86_64-unknown-linux-gnu", &[]).code(2);
    assert_eq!(
        lines(&refused.stderr),
        [
            format!(
                "error: `{}` is not a wavecast-update executable: it carries no wavecast-update version marker, and does not run here: Permission denied (os error 13)",
                data.display()
            )
            .as_str(),
            hint,
        ],
        "{}",
        refused.stderr
    );
    assert!(!sandbox.site().exists(), "nothing was written");
}

/// A build carrying debug info (the dev build) is offered with a warning saying how
/// much and how to leave it out; one without (the newer client, built with
/// `CARGO_PROFILE_DEV_DEBUG=0`, which cargo then strips of the standard library's
/// debug info too) is offered without one.
#[test]
fn publish_updater_warns_about_a_build_carrying_debug_info() {
    let sandbox = Sandbox::new();
    let dev = binary("wavecast-update");
    let offered = publish_updater(
        &sandbox,
        &dev,
        &old_number(),
        "x86_64-unknown-linux-gnu",
        &["--json"],
    )
    .success();
    let size = offered.json()["debug_info"]
        .as_u64()
        .expect("the dev build carries debug info");
    assert!(size > 1024 * 1024, "{size}");
    let warnings: Vec<&str> = lines(&offered.stderr)
        .into_iter()
        .filter(|line| line.starts_with("warning: "))
        .collect();
    assert_eq!(warnings.len(), 1, "{}", offered.stderr);
    let prefix = format!("warning: `{}` carries ", dev.display());
    assert!(warnings[0].starts_with(&prefix), "{}", warnings[0]);
    assert!(
        warnings[0].ends_with(
            "which every client would download without needing it; offer a release build (`cargo build --release --bin wavecast-update`: wavecast's release profile strips it), or run `strip` on the file first"
        ),
        "{}",
        warnings[0]
    );

    let stripped = publish_updater(
        &sandbox,
        &next_client(),
        NEXT_CLIENT_VERSION,
        "x86_64-unknown-linux-gnu",
        &["--json"],
    )
    .success();
    assert_eq!(stripped.json()["debug_info"], serde_json::Value::Null);
    assert!(!stripped.stderr.contains("warning:"), "{}", stripped.stderr);
}
