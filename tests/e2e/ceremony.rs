//! Trust ceremonies with the keys in different hands: a root drafted from the site,
//! signed by each holder in a process of its own with only the draft and one key,
//! published once both thresholds are met; and roots that expire.

use std::ffi::OsStr;
use std::path::Path;

use wavecast_schema::{RootDraft, SignedRoot};
use wavecast_tests::{Nginx, Run, Sandbox, assert_same_tree, sample_release};

use crate::trust::{Key, refused, repeated, trusted_root_version};

/// The clock of both CLIs in these tests.
const NOW: &str = "2030-01-01T00:00:00Z";

/// Runs `wavecast key <args>`.
fn key_command(sandbox: &Sandbox, args: &[&OsStr]) -> Run {
    sandbox.wavecast(
        ["key".as_ref()].into_iter().chain(args.iter().copied()),
        [""; 0],
    )
}

/// `wavecast key sign-root DRAFT --key KEY`, run where only the draft and the key
/// are: in a folder of the holder's own, with the site moved away meanwhile so
/// that nothing could read it.
fn holder_signs(sandbox: &Sandbox, draft: &Path, key: &Key) -> Run {
    holder_signs_with(sandbox, draft, key, &[])
}

/// [`holder_signs`] with `extra` arguments.
fn holder_signs_with(sandbox: &Sandbox, draft: &Path, key: &Key, extra: &[&str]) -> Run {
    let site = sandbox.site();
    let away = sandbox.path("site-away");
    std::fs::rename(&site, &away).unwrap();
    let holder = sandbox.path(&format!(
        "holder-{}",
        key.secret
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
    ));
    std::fs::create_dir_all(&holder).unwrap();
    let copy = holder.join("root.draft.json");
    std::fs::copy(draft, &copy).unwrap();
    let mut args: Vec<&OsStr> = vec![
        "sign-root".as_ref(),
        copy.as_os_str(),
        "--key".as_ref(),
        key.secret.as_os_str(),
    ];
    args.extend(extra.iter().map(OsStr::new));
    let run = key_command(sandbox, &args);
    // The signed copy travels back to whoever gathers the signatures.
    std::fs::copy(&copy, draft).unwrap();
    std::fs::rename(&away, &site).unwrap();
    run
}

fn key_id(key: &Key) -> String {
    key.public_key().key_id().to_string()
}

fn signatures_in(draft: &Path) -> usize {
    RootDraft::parse(&std::fs::read(draft).unwrap())
        .unwrap()
        .draft
        .signatures
        .len()
}

#[test]
fn a_2_of_3_root_signed_by_each_holder_alone_is_published_and_clients_walk_to_it() {
    let mut sandbox = Sandbox::new();
    sandbox.env.insert("WAVECAST_NOW".into(), NOW.into());
    let site = sandbox.site();
    let (r1, r2) = (
        sample_release(&sandbox.path("r1"), "1"),
        sample_release(&sandbox.path("r2"), "2"),
    );
    sandbox.publish(&r1, "1.0.0", &[]).success();
    let nginx = Nginx::serve(&site);
    sandbox.init_client(&nginx.url());
    sandbox.client(["update", "--yes"]).success();

    let old = Key::sandbox_key(&sandbox);
    let holders: Vec<Key> = ["h1", "h2", "h3"]
        .iter()
        .map(|name| Key::generate(&sandbox, name))
        .collect();
    let release = Key::generate(&sandbox, "release");
    let draft = sandbox.path("root.draft.json");
    let holder_pubs: Vec<&Path> = holders.iter().map(|key| key.public.as_path()).collect();
    let mut args: Vec<&OsStr> = vec!["draft-root".as_ref(), "--site".as_ref(), site.as_os_str()];
    args.extend(repeated("--root-key", &holder_pubs));
    args.extend(["--root-threshold", "2", "--release-key"].map(OsStr::new));
    args.push(release.public.as_os_str());
    args.extend(["--out".as_ref(), draft.as_os_str()]);
    let drafted = key_command(&sandbox, &args).success();
    drafted.assert_stdout("wrote the draft of root v2");
    drafted.assert_stdout("expires at 2031-01-01T00:00:00Z");
    drafted.assert_stdout(&format!("not signed  {}", key_id(&old)));
    drafted.assert_stdout("still missing: 1 more by the current root v1's root keys");
    drafted.assert_stderr("next: each holder signs with `wavecast key sign-root");
    assert!(!site.join("roots/2.json").exists());
    // A draft is never replaced by accident: it may hold signatures.
    let again = key_command(&sandbox, &args).code(2);
    again.assert_stderr("exists already");
    again.assert_stderr("hint: sign the existing draft");

    // A key of neither root is refused, and the draft is left as it was.
    let before = std::fs::read(&draft).unwrap();
    let stranger = Key::generate(&sandbox, "stranger");
    let refused_signer = holder_signs(&sandbox, &draft, &stranger).code(2);
    refused_signer.assert_stderr(&format!(
        "key {} is not a root key of root v1 or of the new root v2",
        key_id(&stranger)
    ));
    refused_signer.assert_stderr("hint: sign with a root key");
    assert_eq!(std::fs::read(&draft).unwrap(), before);

    // The old root's holder vouches; then the first new holder signs, twice.
    holder_signs(&sandbox, &draft, &old)
        .success()
        .assert_stdout(&format!("signed      {}", key_id(&old)));
    let first = holder_signs(&sandbox, &draft, &holders[0]).success();
    first.assert_stdout(&format!("signed root v2 with key {}", key_id(&holders[0])));
    first.assert_stdout("still missing: 1 more by the new root v2's root keys");
    let twice = holder_signs(&sandbox, &draft, &holders[0]).success();
    twice.assert_stdout("has signed root v2 already; the draft is unchanged");
    let twice = holder_signs_with(&sandbox, &draft, &holders[0], &["--json"])
        .success()
        .json();
    assert_eq!(twice["added"], false, "{twice}");
    assert_eq!(
        twice["new_root_keys"]["signed"][0],
        key_id(&holders[0]),
        "{twice}"
    );
    assert_eq!(twice["new_root_keys"]["missing"], 1, "{twice}");
    assert_eq!(twice["current_root_keys"]["missing"], 0, "{twice}");
    assert_eq!(signatures_in(&draft), 2);

    // One new root key short of the threshold: nothing is published.
    let publish_root = |sandbox: &Sandbox, draft: &Path| {
        key_command(
            sandbox,
            &[
                "publish-root".as_ref(),
                draft.as_os_str(),
                "--site".as_ref(),
                sandbox.site().as_os_str(),
            ],
        )
    };
    let short = publish_root(&sandbox, &draft).code(2);
    short.assert_stderr(
        "root v2 cannot be published yet: it needs 1 more signature by root keys of the new root v2",
    );
    short.assert_stderr(&format!(
        "still missing: 1 more by the new root v2's root keys ({}, {})",
        key_id(&holders[1]),
        key_id(&holders[2])
    ));
    assert!(!site.join("roots/2.json").exists());

    let second = holder_signs(&sandbox, &draft, &holders[1]).success();
    second.assert_stdout("both thresholds are met: ready to publish");
    second.assert_stderr("next: `wavecast key publish-root");
    let published = publish_root(&sandbox, &draft).success();
    published.assert_stdout("wrote roots/2.json");
    stock_minisign_verifies_the_root(
        &sandbox,
        &site.join("roots/2.json"),
        &[&old, &holders[0], &holders[1]],
    );

    // The new release key publishes; a client pinned to the old key walks to root 2.
    sandbox
        .wavecast(
            [
                "publish".as_ref(),
                r2.as_os_str(),
                "--version".as_ref(),
                "2.0.0".as_ref(),
            ],
            [
                "--site".as_ref(),
                site.as_os_str(),
                "--key".as_ref(),
                release.secret.as_os_str(),
            ],
        )
        .success();
    sandbox.client(["update", "--yes"]).success();
    assert_same_tree(&sandbox.root().join("current"), &r2);
    assert_eq!(trusted_root_version(&sandbox), Some(2));

    // Two drafts of root 3 from root 2: once one is published, the other is refused.
    let stale = sandbox.path("stale.draft.json");
    let fresh = sandbox.path("fresh.draft.json");
    for path in [&stale, &fresh] {
        key_command(
            &sandbox,
            &[
                "draft-root".as_ref(),
                "--site".as_ref(),
                site.as_os_str(),
                "--out".as_ref(),
                path.as_os_str(),
            ],
        )
        .success();
        holder_signs(&sandbox, path, &holders[1]).success();
        holder_signs(&sandbox, path, &holders[2]).success();
    }
    publish_root(&sandbox, &fresh).success();
    let outdated = publish_root(&sandbox, &stale).code(2);
    outdated.assert_stderr("the draft follows root v2, but the site's newest root is v3");
    outdated.assert_stderr("hint: the site moved on since the draft was made: draft root v4 again");
}

/// The stock `minisign` CLI verifies signature `i` of a published root with
/// `keys[i]`: a k-of-n root is k plain minisign signatures of its text.
fn stock_minisign_verifies_the_root(sandbox: &Sandbox, root_file: &Path, keys: &[&Key]) {
    let signed = SignedRoot::parse(&std::fs::read(root_file).unwrap()).unwrap();
    let printed = crate::trust::stock_minisign_verifies(
        sandbox,
        signed.root.as_bytes(),
        &signed.signatures,
        keys,
    );
    for stdout in printed {
        assert!(
            stdout.contains("wavecast root version="),
            "minisign prints the trusted comment: {stdout}"
        );
    }
}

#[test]
fn an_expired_root_is_refused_until_its_holders_publish_the_next() {
    let mut sandbox = Sandbox::new();
    sandbox.env.insert("WAVECAST_NOW".into(), NOW.into());
    let site = sandbox.site();
    let (r1, r2) = (
        sample_release(&sandbox.path("r1"), "1"),
        sample_release(&sandbox.path("r2"), "2"),
    );
    sandbox.publish(&r1, "1.0.0", &[]).success();
    let nginx = Nginx::serve(&site);
    sandbox.init_client(&nginx.url());
    let old = Key::sandbox_key(&sandbox);

    // A rotation (keys unchanged) to a root that expires in 10 days; every channel
    // is signed again under it and the client walks to it.
    let rotate = |sandbox: &Sandbox, valid_for: &str| {
        key_command(
            sandbox,
            &[
                "rotate".as_ref(),
                "--site".as_ref(),
                site.as_os_str(),
                "--sign".as_ref(),
                old.secret.as_os_str(),
                "--root-expires-in".as_ref(),
                valid_for.as_ref(),
                "--resign-with".as_ref(),
                old.secret.as_os_str(),
            ],
        )
    };
    rotate(&sandbox, "10d")
        .success()
        .assert_stdout("expires at 2030-01-11T00:00:00Z");
    sandbox.client(["update", "--yes"]).success();
    assert_eq!(trusted_root_version(&sandbox), Some(2));
    let verify = |sandbox: &Sandbox| {
        sandbox.wavecast(
            ["verify".as_ref(), site.as_os_str(), "--pubkey".as_ref()],
            [old.public.as_os_str()],
        )
    };
    let warned = verify(&sandbox).success();
    warned.assert_stderr(
        "roots/2.json: root v2 expires at 2030-01-11T00:00:00Z, in less than 30 days",
    );

    // Eleven days later: the manifest is still valid, the root is not.
    sandbox
        .env
        .insert("WAVECAST_NOW".into(), "2030-01-12T00:00:00Z".into());
    let run = refused(
        &sandbox,
        &r1,
        &["root v2 of the site expired at 2030-01-11T00:00:00Z (it is now 2030-01-12T00:00:00Z)"],
    );
    run.assert_stderr("hint: the site's root key holders must publish root v3");
    verify(&sandbox)
        .code(1)
        .assert_stderr("the site's newest root, v2, expired at 2030-01-11T00:00:00Z");
    // The publisher refuses to sign under it too, rather than stop every client.
    let refused_publish = sandbox.publish(&r2, "2.0.0", &[]).code(1);
    refused_publish.assert_stderr("the site's newest root, v2, expired at 2030-01-11T00:00:00Z");
    refused_publish.assert_stderr("hint: the root key holders publish root v3 first");

    // The holders publish root 3 (a year by default) and clients trust the site again.
    rotate(&sandbox, "365d").success();
    sandbox.publish(&r2, "2.0.0", &[]).success();
    sandbox.client(["update", "--yes"]).success();
    assert_same_tree(&sandbox.root().join("current"), &r2);
    assert_eq!(trusted_root_version(&sandbox), Some(3));
}

#[test]
fn a_release_signed_later_by_two_release_keys_in_two_steps_installs_and_is_never_served_half_signed()
 {
    let mut sandbox = Sandbox::new();
    sandbox.env.insert("WAVECAST_NOW".into(), NOW.into());
    let site = sandbox.site();
    let (r1, r2) = (
        sample_release(&sandbox.path("r1"), "1"),
        sample_release(&sandbox.path("r2"), "2"),
    );
    sandbox.publish(&r1, "1.0.0", &[]).success();
    let nginx = Nginx::serve(&site);
    sandbox.init_client(&nginx.url());
    sandbox.client(["update", "--yes"]).success();

    // Two release keys, both needed, each on a machine of its own.
    let old = Key::sandbox_key(&sandbox);
    let releases = [Key::generate(&sandbox, "ra"), Key::generate(&sandbox, "rb")];
    key_command(
        &sandbox,
        &[
            "rotate".as_ref(),
            "--site".as_ref(),
            site.as_os_str(),
            "--sign".as_ref(),
            old.secret.as_os_str(),
            "--release-key".as_ref(),
            releases[0].public.as_os_str(),
            "--release-key".as_ref(),
            releases[1].public.as_os_str(),
            "--release-threshold".as_ref(),
            "2".as_ref(),
            "--resign-with".as_ref(),
            releases[0].secret.as_os_str(),
            "--resign-with".as_ref(),
            releases[1].secret.as_os_str(),
        ],
    )
    .success();
    sandbox.client(["update", "--yes"]).success();
    let live_before = std::fs::read(site.join("channels/stable.json")).unwrap();
    let serial_before = sandbox.manifest("stable").serial;

    // The machine with the site holds no release key.
    let later = sandbox
        .wavecast(
            [
                "publish".as_ref(),
                r2.as_os_str(),
                "--version".as_ref(),
                "2.0.0".as_ref(),
            ],
            ["--site".as_ref(), site.as_os_str(), "--sign-later".as_ref()],
        )
        .success();
    later.assert_stdout("not live yet: channels/stable.json.unsigned waits for `wavecast sign");
    let pending = site.join("channels/stable.json.unsigned");
    assert!(pending.is_file());
    assert_eq!(
        std::fs::read(site.join("channels/stable.json")).unwrap(),
        live_before
    );
    // A second change would replace the pending one: refused, nothing lost.
    let pending_bytes = std::fs::read(&pending).unwrap();
    let second = sandbox
        .wavecast(
            ["pause", "1.0.0", "--site"],
            [site.as_os_str(), OsStr::new("--sign-later")],
        )
        .code(2);
    second.assert_stderr("a change to channel `stable` waits to be signed");
    second.assert_stderr("hint: sign it first with `wavecast sign");
    assert_eq!(std::fs::read(&pending).unwrap(), pending_bytes);
    sandbox
        .wavecast(
            ["verify".as_ref(), site.as_os_str(), "--pubkey".as_ref()],
            [old.public.as_os_str()],
        )
        .success()
        .assert_stderr(
            "channels/stable.json.unsigned: a change made with --sign-later waits to be signed",
        );
    // Its blobs are not live yet: gc refuses rather than count them as garbage.
    sandbox
        .wavecast(
            [
                "gc".as_ref(),
                site.as_os_str(),
                "--grace".as_ref(),
                "0s".as_ref(),
            ],
            ["--pubkey".as_ref(), old.public.as_os_str()],
        )
        .code(2)
        .assert_stderr("a change to channel `stable` waits to be signed");

    // Step 1, air-gapped: a copy of roots/ and the pending manifest, and key A.
    let airgap = sandbox.path("airgap");
    std::fs::create_dir_all(airgap.join("channels")).unwrap();
    std::fs::create_dir_all(airgap.join("roots")).unwrap();
    for name in ["1.json", "2.json"] {
        std::fs::copy(
            site.join("roots").join(name),
            airgap.join("roots").join(name),
        )
        .unwrap();
    }
    std::fs::copy(&pending, airgap.join("channels/stable.json.unsigned")).unwrap();
    let first = sandbox
        .wavecast(
            ["sign".as_ref(), "--site".as_ref(), airgap.as_os_str()],
            [
                "--key".as_ref(),
                releases[0].secret.as_os_str(),
                "--no-publish".as_ref(),
            ],
        )
        .success();
    first.assert_stdout("stable serial");
    first.assert_stdout("signed by 1 of 2 release keys needed");
    first.assert_stdout(&format!("signed      {} (now)", key_id(&releases[0])));
    first.assert_stdout("not live yet: 1 more release key must sign");
    std::fs::copy(airgap.join("channels/stable.json.unsigned"), &pending).unwrap();

    // Half-signed, it is never served: the host still has the old manifest, and the
    // client stays where it is.
    let served = ureq::get(&format!("{}channels/stable.json", nginx.url()))
        .call()
        .unwrap()
        .into_body()
        .read_to_vec()
        .unwrap();
    assert_eq!(served, live_before);
    sandbox.client(["update", "--yes"]).success();
    assert_same_tree(&sandbox.root().join("current"), &r1);

    // Step 2, on the site's machine with key B: checked again and published.
    let second = sandbox
        .wavecast(
            ["sign".as_ref(), "--site".as_ref(), site.as_os_str()],
            ["--key".as_ref(), releases[1].secret.as_os_str()],
        )
        .success();
    second.assert_stdout("signed by 2 of 2 release keys needed");
    second.assert_stdout("published channels/stable.json");
    assert!(!pending.exists());
    assert_eq!(sandbox.manifest("stable").serial, serial_before + 1);
    crate::trust::stock_minisign_verifies_each_signature(&sandbox, &releases);
    sandbox.client(["update", "--yes"]).success();
    assert_same_tree(&sandbox.root().join("current"), &r2);

    // Rollout commands sign later too.
    sandbox
        .wavecast(
            ["pause", "2.0.0", "--site"],
            [site.as_os_str(), OsStr::new("--sign-later")],
        )
        .success()
        .assert_stdout("not live yet");
    let both = sandbox
        .wavecast(
            [
                "sign".as_ref(),
                "--site".as_ref(),
                site.as_os_str(),
                "--json".as_ref(),
            ],
            [
                "--key".as_ref(),
                releases[0].secret.as_os_str(),
                "--key".as_ref(),
                releases[1].secret.as_os_str(),
            ],
        )
        .success()
        .json();
    assert_eq!(both["pending"][0]["published"], true, "{both}");
    assert_eq!(sandbox.manifest("stable").serial, serial_before + 2);
}
