//! Image modules installed into alternating A/B slots and activated by a hook, through
//! the real `wavecast` and `wavecast-update`.

use std::path::{Path, PathBuf};

use wavecast_tests::{Nginx, Sandbox, pseudo_random};

/// The size of the test images: 3 MiB.
const IMAGE_SIZE: usize = 3 << 20;

/// A compressible 3 MiB image: 4 KiB blocks picked from a pool of 64 by `seed`.
fn image(seed: u64) -> Vec<u8> {
    let pool: Vec<Vec<u8>> = (0..64)
        .map(|block| pseudo_random(4096, block + 1))
        .collect();
    let picks = pseudo_random(IMAGE_SIZE / 4096, seed);
    picks
        .iter()
        .flat_map(|pick| pool[usize::from(*pick) % pool.len()].iter().copied())
        .collect()
}

/// `image` with a few small changes, as between two builds of one system.
fn edited(image: &[u8], seed: u64) -> Vec<u8> {
    let mut edited = image.to_vec();
    let noise = pseudo_random(16 * 64, seed);
    for (i, chunk) in noise.chunks(64).enumerate() {
        let at = (i * 190_001 + 12_345) % (edited.len() - 64);
        edited[at..at + 64].copy_from_slice(chunk);
    }
    edited
}

/// Writes `content` as `release-<version>/rootfs.img` (with `extra` files beside it)
/// and publishes it with `--image os=rootfs.img` and `args`.
#[track_caller]
fn publish_image(
    sandbox: &Sandbox,
    version: &str,
    content: &[u8],
    extra: &[(&str, &[u8])],
    args: &[&str],
) {
    let dir = sandbox.path(&format!("release-{version}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("rootfs.img"), content).unwrap();
    for (path, content) in extra {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    let mut all = vec!["--image", "os=rootfs.img"];
    all.extend_from_slice(args);
    sandbox.publish(&dir, version, &all).success();
}

/// A hook that appends `slot|path|version|previous path|previous version` to `log`.
fn recording_hook(log: &Path) -> String {
    format!(
        "printf '%s|%s|%s|%s|%s\\n' \"$WAVECAST_SLOT\" \"$WAVECAST_SLOT_PATH\" \"$WAVECAST_VERSION\" \"$WAVECAST_PREVIOUS_SLOT_PATH\" \"$WAVECAST_PREVIOUS_VERSION\" >> '{}'",
        log.display()
    )
}

/// The lines the hook recorded so far.
fn hook_lines(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The default path of slot `name` of the sandbox's client.
fn slot_path(sandbox: &Sandbox, name: &str) -> PathBuf {
    sandbox.root().join("slots").join(name)
}

/// The content of slot `name`.
fn slot(sandbox: &Sandbox, name: &str) -> Vec<u8> {
    std::fs::read(slot_path(sandbox, name)).unwrap()
}

/// A sandbox with 1.0.0 (an image) published and installed into slot `a` by a client
/// whose hook records to `hook.log`; returns the image and the log's path.
fn installed_v1(url: Option<&str>) -> (Sandbox, Vec<u8>, PathBuf) {
    let sandbox = Sandbox::new();
    let v1 = image(1);
    publish_image(&sandbox, "1.0.0", &v1, &[], &[]);
    let site = sandbox.site();
    sandbox.init_client(url.unwrap_or(site.to_str().unwrap()));
    let log = sandbox.path("hook.log");
    sandbox
        .client(["config", "--on-activate", &recording_hook(&log)])
        .success();
    // The dry run names the image and what it costs at most: its package.
    let planned = sandbox.client(["update", "--dry-run"]).success();
    assert!(
        planned.stdout.contains("image module os: at most "),
        "{}",
        planned.stdout
    );
    let planned = sandbox
        .client(["update", "--dry-run", "--json"])
        .success()
        .json();
    assert_eq!(planned["image"]["module"], "os", "{planned}");
    assert!(
        planned["image"]["max_bytes"].as_u64().unwrap() > 1000,
        "{planned}"
    );
    let run = sandbox.client(["update", "--yes"]).success();
    run.assert_stdout("installed 1.0.0 in releases/1.0.0-");
    run.assert_stdout(" for the image; the release tree has no modules; freed ");
    assert!(
        !run.stdout.contains(": downloaded 0 B for the image"),
        "the image's bytes are counted: {}",
        run.stdout
    );
    assert_eq!(slot(&sandbox, "a"), v1);
    (sandbox, v1, log)
}

#[test]
fn images_alternate_between_slots_and_the_hook_gets_slot_path_and_version() {
    let sandbox = Sandbox::new();
    let nginx = Nginx::serve(&sandbox.site());
    let v1 = image(1);
    publish_image(
        &sandbox,
        "1.0.0",
        &v1,
        &[("bin/tool", b"tool 1")],
        &["--module", "tools=bin"],
    );
    let module = &wavecast_tests::delta::newest_module(&sandbox, "os");
    assert_eq!(module.kind, wavecast_schema::ModuleKind::Image);
    assert!(
        wavecast_tests::delta::package_path(module).ends_with(".zst"),
        "{module:?}"
    );
    assert!(module.package.size * 2 < IMAGE_SIZE as u64, "{module:?}");

    sandbox.init_client(&nginx.url());
    let log = sandbox.path("hook.log");
    let hook = recording_hook(&log);
    sandbox.client(["config", "--on-activate", &hook]).success();
    let first = sandbox.client(["update", "--yes"]).success();
    let (a, b) = (slot_path(&sandbox, "a"), slot_path(&sandbox, "b"));
    first.assert_stderr(&format!(
            "image os 1.0.0 written from its {} package to slot a (`{}`); on-activate `{hook}` passed in ",
            human(module.package.size),
            a.display()
        ));
    first.assert_stderr("; slot a is active\n");
    first.assert_stdout("installed 1.0.0 in releases/1.0.0-");
    assert_eq!(slot(&sandbox, "a"), v1);
    assert!(!b.exists(), "slot b is not written");
    // The tree module went into the release tree; the image did not.
    let current = sandbox.root().join("current");
    assert_eq!(std::fs::read(current.join("bin/tool")).unwrap(), b"tool 1");
    assert!(!current.join("rootfs.img").exists());
    assert_eq!(
        hook_lines(&log),
        [format!("a|{}|1.0.0||", a.display())],
        "the hook ran once, for slot a"
    );

    // 1.1.0 goes to slot b, from a patch against slot a.
    let v2 = edited(&v1, 2);
    publish_image(
        &sandbox,
        "1.1.0",
        &v2,
        &[("bin/tool", b"tool 2")],
        &["--module", "tools=bin"],
    );
    let second = sandbox.client(["update", "--yes", "--json"]).success();
    let json = second.json();
    let image_json = &json["image"];
    assert_eq!(image_json["slot"], "b", "{json}");
    assert_eq!(image_json["previous_slot"], "a");
    assert_eq!(image_json["source"], "patch");
    assert_eq!(image_json["switched"], true);
    assert_eq!(image_json["hook"]["result"], "passed");
    assert_eq!(image_json["slot_path"], b.to_str().unwrap());
    let downloaded = image_json["downloaded_bytes"].as_u64().unwrap();
    assert!(downloaded < 20_000, "a patch, not the image: {downloaded}");
    assert_eq!(slot(&sandbox, "b"), v2);
    assert_eq!(slot(&sandbox, "a"), v1, "the old slot is untouched");
    assert_eq!(std::fs::read(current.join("bin/tool")).unwrap(), b"tool 2");
    assert_eq!(
        hook_lines(&log)[1],
        format!("b|{}|1.1.0|{}|1.0.0", b.display(), a.display())
    );

    let status = sandbox.client(["status"]).success();
    assert!(
        status.stdout.contains(&format!(
            "slot a: 1.0.0 (os, 3.0 MiB) at `{}`\nslot b: 1.1.0 (os, 3.0 MiB) at `{}`, active\n",
            a.display(),
            b.display()
        )),
        "{}",
        status.stdout
    );
    let status = sandbox.client(["status", "--json"]).success().json();
    assert_eq!(status["slots"]["active"], "b", "{status}");
    assert_eq!(status["slots"]["slots"][0]["version"], "1.0.0");
    assert_eq!(status["slots"]["slots"][1]["active"], true);

    // The publisher's own check reads an image site like any other.
    sandbox
        .wavecast(
            ["verify".as_ref(), sandbox.site().as_os_str()],
            ["--pubkey".as_ref(), sandbox.pubkey().as_os_str()],
        )
        .success();
}

/// `614.6 KiB`, as the client prints sizes.
fn human(bytes: u64) -> String {
    let kib = bytes as f64 / 1024.0;
    if kib < 1024.0 {
        format!("{kib:.1} KiB")
    } else {
        format!("{:.1} MiB", kib / 1024.0)
    }
}

#[test]
fn a_failing_hook_keeps_the_active_slot_and_a_corrupt_image_is_refused_before_activation() {
    let (sandbox, v1, log) = installed_v1(None);
    let v2 = edited(&v1, 2);
    publish_image(&sandbox, "1.1.0", &v2, &[], &[]);
    let failing = "echo cannot set the boot target; exit 3";
    let failed = sandbox
        .client(["update", "--yes", "--on-activate", failing])
        .code(1);
    let b = slot_path(&sandbox, "b");
    failed.assert_stderr(&format!(
            "error: 1.1.0 was not activated in slot b (`{}`): on-activate `{failing}` exited with status 3; slot a stays active and 1.1.0 is marked bad (`wavecast-update unmark 1.1.0` clears the mark)\n",
            b.display()
        ));
    failed.assert_stderr("on-activate output:\n  | cannot set the boot target\n");
    failed.assert_stderr("hint: 1.1.0 is not installed again until a newer release is published or its mark is cleared; slot b keeps its image for the next one");
    assert_eq!(slot(&sandbox, "a"), v1, "the active slot is intact");
    assert_eq!(slot(&sandbox, "b"), v2, "the written slot is left as it is");
    assert_eq!(hook_lines(&log).len(), 1, "the configured hook did not run");
    let status = sandbox.client(["status", "--json"]).success().json();
    assert_eq!(status["current"], "1.0.0", "{status}");
    assert_eq!(status["slots"]["active"], "a");
    assert_eq!(status["bad_releases"][0]["version"], "1.1.0");
    assert_eq!(status["bad_releases"][0]["reason"], "activation_failed");
    assert_eq!(
        status["bad_releases"][0]["detail"],
        format!("on-activate `{failing}` exited with status 3 for slot b")
    );
    let again = sandbox.client(["update", "--yes"]).success();
    again.assert_stdout("up to date: 1.0.0; skipping releases marked bad here: 1.1.0");

    // 1.2.0's package (the image's zstd copy) and the site's delta packs are
    // corrupted on the host: the download is refused before a byte reaches a slot.
    let v3 = edited(&v2, 3);
    publish_image(&sandbox, "1.2.0", &v3, &[], &[]);
    let module = &wavecast_tests::delta::newest_module(&sandbox, "os");
    let package = sandbox
        .site()
        .join(wavecast_tests::delta::package_path(module));
    let genuine = std::fs::read(&package).unwrap();
    let mut corrupt = genuine.clone();
    let middle = corrupt.len() / 2;
    corrupt[middle] ^= 0xff;
    std::fs::write(&package, &corrupt).unwrap();
    let patches: Vec<PathBuf> = std::fs::read_dir(sandbox.site().join("blobs"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "pack")
        })
        .collect();
    assert!(!patches.is_empty());
    let genuine_patches: Vec<Vec<u8>> = patches
        .iter()
        .map(|path| std::fs::read(path).unwrap())
        .collect();
    for (path, bytes) in patches.iter().zip(&genuine_patches) {
        let mut bytes = bytes.clone();
        bytes[0] ^= 0xff;
        std::fs::write(path, bytes).unwrap();
    }
    let refused = sandbox.client(["update", "--yes"]).code(1);
    refused.assert_stderr(&format!(
        "error: `{}` is corrupt: its blake3 hash is ",
        url_of(&sandbox, &package)
    ));
    refused.assert_stderr(&format!(
        "but the signed manifest says {}",
        module.package.blake3
    ));
    assert_eq!(hook_lines(&log).len(), 1, "no activation");
    assert_eq!(slot(&sandbox, "a"), v1);
    assert_eq!(slot(&sandbox, "b"), v2, "nothing was written to slot b");
    let status = sandbox.client(["status", "--json"]).success().json();
    assert_eq!(status["slots"]["active"], "a", "{status}");
    assert_eq!(status["current"], "1.0.0");

    // With the package repaired, the corrupt packs give way to it.
    std::fs::write(&package, &genuine).unwrap();
    let fixed = sandbox.client(["update", "--yes", "--json"]).success();
    let json = fixed.json();
    assert_eq!(json["image"]["source"], "package", "{json}");
    assert_eq!(json["image"]["slot"], "b");
    assert_eq!(slot(&sandbox, "b"), v3);
    assert_eq!(slot(&sandbox, "a"), v1);
    assert_eq!(
        hook_lines(&log)[1],
        format!(
            "b|{}|1.2.0|{}|1.0.0",
            slot_path(&sandbox, "b").display(),
            slot_path(&sandbox, "a").display()
        )
    );
}

/// The `file://` URL the client names a site file by.
fn url_of(sandbox: &Sandbox, path: &Path) -> String {
    let relative = path.strip_prefix(sandbox.site()).unwrap();
    format!("file://{}/{}", sandbox.site().display(), relative.display())
}

#[test]
fn rollback_switches_back_to_the_other_slot_and_runs_the_hook_for_it() {
    let (sandbox, v1, log) = installed_v1(None);
    let v2 = edited(&v1, 2);
    publish_image(&sandbox, "1.1.0", &v2, &[], &[]);
    sandbox.client(["update", "--yes"]).success();
    let (a, b) = (slot_path(&sandbox, "a"), slot_path(&sandbox, "b"));
    let hook = recording_hook(&log);

    let rolled = sandbox.client(["rollback", "--json"]).success();
    rolled.assert_stderr(&format!(
        "image os 1.0.0 already in slot a (`{}`); on-activate `{hook}` passed in ",
        a.display()
    ));
    rolled.assert_stderr("; slot a is active (was b)\n");
    let json = rolled.json();
    assert_eq!(
        (json["from"].as_str(), json["to"].as_str()),
        (Some("1.1.0"), Some("1.0.0"))
    );
    assert_eq!(json["image"]["slot"], "a", "{json}");
    assert_eq!(json["image"]["source"], "in_slot");
    assert_eq!(
        hook_lines(&log).last().unwrap(),
        &format!("a|{}|1.0.0|{}|1.1.0", a.display(), b.display())
    );
    assert_eq!(slot(&sandbox, "a"), v1);
    assert_eq!(slot(&sandbox, "b"), v2);
    let status = sandbox.client(["status", "--json"]).success().json();
    assert_eq!(status["current"], "1.0.0", "{status}");
    assert_eq!(status["slots"]["active"], "a");

    // A slot changed behind the client's back is not activated.
    let mut tampered = v2.clone();
    tampered[10] ^= 1;
    std::fs::write(&b, &tampered).unwrap();
    publish_image(&sandbox, "1.2.0", &edited(&v2, 3), &[], &[]);
    sandbox.client(["update", "--yes"]).success();
    let status = sandbox.client(["status", "--json"]).success().json();
    assert_eq!(status["slots"]["active"], "b", "{status}");
    std::fs::write(&a, b"something else").unwrap();
    let refused = sandbox.client(["rollback", "--keep"]).code(1);
    refused.assert_stderr(&format!(
        "error: slot a (`{}`) no longer holds the image of 1.0.0 it was written with",
        a.display()
    ));
    let status = sandbox.client(["status", "--json"]).success().json();
    assert_eq!(
        status["current"], "1.2.0",
        "nothing was rolled back: {status}"
    );
    assert_eq!(status["slots"]["active"], "b");
}

#[test]
fn a_failed_health_check_switches_the_slots_back() {
    let (sandbox, v1, log) = installed_v1(None);
    let v2 = edited(&v1, 2);
    publish_image(&sandbox, "1.1.0", &v2, &[], &[]);
    let failed = sandbox
        .client(["update", "--yes", "--health-check", "exit 1"])
        .code(1);
    failed.assert_stderr("error: 1.1.0 failed its health check `exit 1`: it exited with status 1; rolled back to 1.0.0 and marked 1.1.0 bad");
    let (a, b) = (slot_path(&sandbox, "a"), slot_path(&sandbox, "b"));
    assert_eq!(
        hook_lines(&log)[1..],
        [
            format!("b|{}|1.1.0|{}|1.0.0", b.display(), a.display()),
            format!("a|{}|1.0.0|{}|1.1.0", a.display(), b.display()),
        ],
        "activated, then switched back"
    );
    let status = sandbox.client(["status", "--json"]).success().json();
    assert_eq!(status["current"], "1.0.0", "{status}");
    assert_eq!(status["slots"]["active"], "a");
    assert_eq!(slot(&sandbox, "a"), v1);
}

#[test]
fn a_client_killed_during_activation_keeps_its_slot_and_the_next_update_finishes() {
    let (sandbox, v1, log) = installed_v1(None);
    let v2 = edited(&v1, 2);
    publish_image(&sandbox, "1.1.0", &v2, &[], &[]);
    // The hook kills the client (its parent) before it can record anything.
    let killed = sandbox.client(["update", "--yes", "--on-activate", "kill -KILL $PPID"]);
    assert_eq!(killed.code, -1, "killed by a signal: {}", killed.stderr);
    assert_eq!(slot(&sandbox, "a"), v1);
    assert_eq!(
        slot(&sandbox, "b"),
        v2,
        "written and flushed before the hook"
    );
    let status = sandbox.client(["status", "--json"]).success().json();
    assert_eq!(status["slots"]["active"], "a", "{status}");
    assert_eq!(status["current"], "1.0.0");
    assert_eq!(status["slots"]["slots"][1]["version"], "1.1.0");

    // The next update finds the image in slot b, hashes it again and activates it.
    let finished = sandbox.client(["update", "--yes", "--json"]).success();
    let json = finished.json();
    assert_eq!(json["image"]["source"], "in_slot", "{json}");
    assert_eq!(json["image"]["slot"], "b");
    assert_eq!(json["image"]["switched"], true);
    assert!(
        json["image"]["downloaded_bytes"].as_u64().unwrap() < 1000,
        "{json}"
    );
    assert_eq!(hook_lines(&log).len(), 2);
    let status = sandbox.client(["status", "--json"]).success().json();
    assert_eq!(status["slots"]["active"], "b", "{status}");
    assert_eq!(status["current"], "1.1.0");
}
