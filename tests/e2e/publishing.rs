//! The publisher CLI: keys, versions, modules, and interoperability with stock minisign.

use std::process::Command;

use wavecast_tests::{KEY_PASSWORD, Sandbox, sample_release};

#[test]
fn stock_minisign_verifies_a_published_manifest() {
    let sandbox = Sandbox::new();
    let release = sample_release(&sandbox.path("r"), "1");
    sandbox.publish(&release, "1.0.0", &[]).success();
    let envelope: serde_json::Value = serde_json::from_slice(
        &std::fs::read(sandbox.site().join("channels/stable.json")).unwrap(),
    )
    .unwrap();
    let manifest = sandbox.path("stable.manifest.json");
    std::fs::write(&manifest, envelope["manifest"].as_str().unwrap()).unwrap();
    std::fs::write(
        sandbox.path("stable.manifest.json.minisig"),
        envelope["signatures"][0].as_str().unwrap(),
    )
    .unwrap();
    let verify = Command::new("minisign")
        .args(["-V", "-p"])
        .arg(sandbox.pubkey())
        .arg("-m")
        .arg(&manifest)
        .output()
        .expect("the minisign CLI is installed (apt-get install minisign)");
    let stdout = String::from_utf8_lossy(&verify.stdout);
    assert!(
        verify.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    assert!(
        stdout.contains("serial=1"),
        "the trusted comment names the serial: {stdout}"
    );

    // And a tampered copy fails.
    let genuine = std::fs::read_to_string(&manifest).unwrap();
    let text = genuine.replace("\"serial\":1,", "\"serial\":9,");
    assert_ne!(text, genuine, "the manifest is compact JSON");
    std::fs::write(&manifest, text).unwrap();
    let tampered = Command::new("minisign")
        .args(["-V", "-q", "-p"])
        .arg(sandbox.pubkey())
        .arg("-m")
        .arg(&manifest)
        .status()
        .unwrap();
    assert!(!tampered.success());
}

#[test]
fn stock_minisign_signs_with_a_key_from_keygen() {
    let sandbox = Sandbox::new();
    let data = sandbox.path("data");
    std::fs::write(&data, "payload").unwrap();
    let mut sign = Command::new("minisign")
        .args(["-S", "-s"])
        .arg(sandbox.key())
        .arg("-m")
        .arg(&data)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write;
    writeln!(sign.stdin.take().unwrap(), "{KEY_PASSWORD}").unwrap();
    assert!(
        sign.wait().unwrap().success(),
        "minisign could not use our secret key"
    );
    let verify = Command::new("minisign")
        .args(["-V", "-q", "-p"])
        .arg(sandbox.pubkey())
        .arg("-m")
        .arg(&data)
        .status()
        .unwrap();
    assert!(verify.success());
}

#[test]
fn republishing_a_version_needs_force_and_earlier_releases_stay_live() {
    let sandbox = Sandbox::new();
    let r1 = sample_release(&sandbox.path("r1"), "1");
    let r2 = sample_release(&sandbox.path("r2"), "2");
    sandbox.publish(&r1, "1.0.0", &[]).success();
    sandbox
        .publish(&r2, "1.1.0", &["--rollout", "0.5%"])
        .success();
    let again = sandbox.publish(&r2, "1.1.0", &[]).code(2);
    assert!(
        again.stderr.contains("already published"),
        "{}",
        again.stderr
    );
    let before = sandbox.manifest("stable");
    sandbox
        .publish(&r2, "1.1.0", &["--force", "--rollout", "5%"])
        .success();
    let after = sandbox.manifest("stable");
    assert_eq!(after.serial, before.serial + 1);
    let versions: Vec<String> = after
        .releases
        .iter()
        .map(|r| r.version.to_string())
        .collect();
    assert_eq!(versions, ["1.1.0", "1.0.0"]);
    assert_eq!(after.releases[0].rollout.share.basis_points.get(), 500);
    assert_eq!(before.releases[0].rollout.share.basis_points.get(), 50);
    // Same release salt after --force: clients keep their buckets.
    assert_eq!(
        after.releases[0].rollout.salt,
        before.releases[0].rollout.salt
    );
    // Identical content republished gives identical packages.
    assert_eq!(after.releases[0].platforms, before.releases[0].platforms);
    for bad in ["101%", "abc", "-5"] {
        sandbox.publish(&r2, "1.2.0", &["--rollout", bad]).code(2);
    }
}

#[test]
fn a_wrong_password_or_foreign_site_is_refused() {
    let sandbox = Sandbox::new();
    let release = sample_release(&sandbox.path("r"), "1");
    let mut wrong = Sandbox::new();
    wrong
        .env
        .insert("WAVECAST_KEY_PASSWORD".into(), "nope".into());
    let run = wrong.wavecast(
        ["publish"],
        [
            release.as_os_str(),
            "--version".as_ref(),
            "1.0.0".as_ref(),
            "--site".as_ref(),
            wrong.site().as_os_str(),
            "--key".as_ref(),
            wrong.key().as_os_str(),
        ],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(
        run.stderr,
        format!(
            "error: wrong password for the secret key `{}`\nhint: the password is the one `wavecast keygen` was given; check WAVECAST_KEY_PASSWORD or the --password-file, or leave both unset to be asked on a terminal\n",
            wrong.key().display()
        )
    );

    // The public key, which sits beside the secret one, given to --key.
    let run = sandbox.wavecast(
        ["publish"],
        [
            release.as_os_str(),
            "--version".as_ref(),
            "1.0.0".as_ref(),
            "--site".as_ref(),
            sandbox.site().as_os_str(),
            "--key".as_ref(),
            sandbox.pubkey().as_os_str(),
        ],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.starts_with(&format!(
            "error: `{}` is a public key; --key takes the secret key",
            sandbox.pubkey().display()
        )),
        "{}",
        run.stderr
    );

    sandbox.publish(&release, "1.0.0", &[]).success();
    let other = Sandbox::new();
    let run = other.wavecast(
        ["publish"],
        [
            release.as_os_str(),
            "--version".as_ref(),
            "2.0.0".as_ref(),
            "--site".as_ref(),
            sandbox.site().as_os_str(),
            "--key".as_ref(),
            other.key().as_os_str(),
        ],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("the keys given cannot sign manifests under root v1"),
        "{}",
        run.stderr
    );
}

#[test]
fn risky_publishes_are_refused_or_warned_about() {
    let sandbox = Sandbox::new();
    let release = sample_release(&sandbox.path("r"), "1");
    let publish =
        |dir: &std::path::Path, version: &str, extra: &[&str]| sandbox.publish(dir, version, extra);

    // A folder of empty folders installs nothing: refused, nothing written.
    let empty = sandbox.path("empty");
    std::fs::create_dir_all(empty.join("only/folders")).unwrap();
    let run = publish(&empty, "1.0.0", &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.starts_with(&format!(
            "error: the release folder `{}` holds no files",
            empty.display()
        )),
        "{}",
        run.stderr
    );
    assert!(!sandbox.site().join("channels").exists());

    publish(&release, "2.0.0", &[]).success();
    let warnings = |run: &wavecast_tests::Run| -> Vec<String> {
        run.stderr
            .lines()
            .filter(|line| line.starts_with("warning: "))
            .map(str::to_owned)
            .collect()
    };

    // Older than the newest live release: published, with a warning.
    let older = publish(&release, "1.5.0", &[]).success();
    assert_eq!(
        warnings(&older),
        [
            "warning: 1.5.0 is older than 2.0.0, the newest live release of `stable`: only clients below 1.5.0 install it; to move clients back, `wavecast yank 2.0.0`"
        ]
    );

    // A pre-release on `stable`, and a manifest valid for more than a year.
    let pre = publish(&release, "3.0.0-beta.1", &["--expires-in", "60w"]).success();
    let pre = warnings(&pre);
    assert_eq!(pre.len(), 2, "{pre:?}");
    assert!(pre[0].starts_with("warning: 3.0.0-beta.1 is a pre-release, published to `stable`"));
    assert!(pre[1].starts_with("warning: --expires-in is over a year"));

    // On another channel, a pre-release is what one expects; -q hides warnings.
    let beta = publish(&release, "3.0.0-beta.2", &["--channel", "beta"]).success();
    assert!(warnings(&beta).is_empty(), "{}", beta.stderr);
    let quiet = sandbox.wavecast(
        ["-q", "publish"],
        [
            release.as_os_str(),
            "--version".as_ref(),
            "1.6.0".as_ref(),
            "--site".as_ref(),
            sandbox.site().as_os_str(),
            "--key".as_ref(),
            sandbox.key().as_os_str(),
        ],
    );
    assert_eq!(quiet.code, 0, "{}", quiet.stderr);
    assert_eq!(quiet.stderr, "");
}

#[test]
fn the_publisher_names_its_commit_and_target_in_its_version() {
    let sandbox = Sandbox::new();
    let run = sandbox.wavecast(["--version"], [] as [&str; 0]).success();
    let version = run.stdout.trim();
    let rest = version
        .strip_prefix(&format!("wavecast {} (commit ", env!("CARGO_PKG_VERSION")))
        .unwrap_or_else(|| panic!("{version}"));
    let (commit, target) = rest.split_once(", ").unwrap();
    assert!(
        commit.len() == 12 && commit.chars().all(|c| c.is_ascii_hexdigit()),
        "{version}"
    );
    assert_eq!(target, "x86_64-unknown-linux-gnu)", "{version}");
}

#[test]
fn a_short_version_means_the_same_everywhere() {
    let sandbox = Sandbox::new();
    let release = sample_release(&sandbox.path("r"), "1");
    let run = sandbox.publish(&release, "2.1", &[]).success();
    run.assert_stdout("published 2.1.0 at 100%");
    sandbox
        .wavecast(
            ["yank", "2.1"],
            [
                "--site".as_ref(),
                sandbox.site().as_os_str(),
                "--key".as_ref(),
                sandbox.key().as_os_str(),
            ],
        )
        .success();
    let manifest = sandbox.manifest("stable");
    assert!(manifest.releases[0].rollout.yanked);
    let bad = sandbox.publish(&release, "2.x", &[]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(
        bad.stderr.contains("`2.x` is not a version"),
        "{}",
        bad.stderr
    );
}

/// Without a terminal, `publish` says when each long step starts (a bar needs a
/// terminal): packaging, then the delta packs' patches.
#[test]
fn without_a_terminal_publish_prints_a_line_per_step() {
    let sandbox = Sandbox::new();
    let (r1, r2) = (sandbox.path("r1"), sandbox.path("r2"));
    for (dir, extra) in [(&r1, 0), (&r2, 4096)] {
        std::fs::create_dir_all(dir).unwrap();
        let mut data = wavecast_tests::pseudo_random(200_000, 7);
        data.extend(wavecast_tests::pseudo_random(extra, 8));
        std::fs::write(dir.join("data.bin"), data).unwrap();
    }
    let publish = |dir: &std::path::Path, version: &str| {
        let mut command = sandbox.command("wavecast");
        command
            .args(["publish"])
            .arg(dir)
            .args(["--version", version, "--site"])
            .arg(sandbox.site())
            .arg("--key")
            .arg(sandbox.key())
            .env_remove("WAVECAST_NO_PROGRESS");
        wavecast_tests::Run::from_output(command.output().unwrap()).success()
    };
    let first = publish(&r1, "1.0.0");
    assert!(
        first.stderr.starts_with("packaging 195.31 KiB\n"),
        "{}",
        first.stderr
    );
    assert!(!first.stderr.contains("patches\n"), "{}", first.stderr);
    let second = publish(&r2, "2.0.0");
    let lines: Vec<&str> = second.stderr.lines().collect();
    assert_eq!(
        lines[..2],
        ["packaging 199.31 KiB", "building the delta packs' patches"],
        "{}",
        second.stderr
    );
}

#[test]
fn keygen_and_simulate_answer_in_json() {
    let sandbox = Sandbox::new();
    let keys = sandbox.path("more-keys");
    let generated = sandbox
        .wavecast(["keygen", "--json", "--out"], [keys.as_os_str()])
        .success()
        .json();
    let key_id = generated["key_id"].as_str().unwrap();
    assert_eq!(key_id.len(), 16, "{generated}");
    assert_eq!(
        generated["public_key"],
        keys.join("wavecast.pub").to_str().unwrap()
    );
    let public = std::fs::read_to_string(keys.join("wavecast.pub")).unwrap();
    assert!(public.contains(key_id), "{public}");

    let release = sample_release(&sandbox.path("r"), "1");
    sandbox.publish(&release, "1.0.0", &[]).success();
    sandbox
        .publish(&release, "2.0.0", &["--ramp", "10%@0h,100%@1d"])
        .success();
    let simulated = sandbox
        .wavecast(
            ["simulate", "--json", "--clients", "200", "--site"],
            [sandbox.site().as_os_str()],
        )
        .success()
        .json();
    let samples = simulated["sample_times"].as_array().unwrap().len();
    assert!(samples > 2, "{simulated}");
    let versions = simulated["versions"].as_array().unwrap();
    let released = versions
        .iter()
        .find(|version| version["version"] == "2.0.0")
        .unwrap();
    let shares = released["share_percent"].as_array().unwrap();
    assert_eq!(shares.len(), samples);
    assert!(
        shares.last().unwrap().as_f64().unwrap() > 99.0,
        "{simulated}"
    );
    assert_eq!(released["installed"], 200, "{simulated}");
}
