//! `wavecast retire` takes releases off a channel and `wavecast gc` deletes the blobs
//! nothing live refers to, after a grace period, from a folder or a bucket: the site
//! still verifies, clients on a retired release still update (with a pack), and new
//! clients install the newest.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use wavecast_publisher::verify::{self, Selection, Source};
use wavecast_schema::RelativePath;
use wavecast_site::s3::S3Storage;
use wavecast_tests::delta::{BlobClass, LoggingNginx};
use wavecast_tests::{Sandbox, assert_same_tree, pseudo_random};

use crate::push::{BUCKET, public_bucket, push, signed_bucket};

/// Four releases that differ by small edits of a large file (so every release has
/// packs from the three before it), each with a file of its own; returns their
/// folders, oldest first.
fn releases(sandbox: &Sandbox, count: usize) -> Vec<PathBuf> {
    let mut big = pseudo_random(120_000, 11);
    (0..count)
        .map(|n| {
            let root = sandbox.path(&format!("r{n}"));
            big[1000 * n..1000 * n + 8].copy_from_slice(b"EDITED!!");
            std::fs::create_dir_all(root.join("lib")).unwrap();
            std::fs::write(root.join("lib/big.bin"), &big).unwrap();
            std::fs::write(root.join("VERSION"), format!("1.{n}")).unwrap();
            std::fs::write(root.join("shared.txt"), b"the same in every release").unwrap();
            root
        })
        .collect()
}

fn version(n: usize) -> String {
    format!("1.{n}.0")
}

/// The files of the site's `blobs/`.
fn blobs(site: &Path) -> BTreeSet<String> {
    std::fs::read_dir(site.join("blobs"))
        .unwrap()
        .map(|entry| format!("blobs/{}", entry.unwrap().file_name().to_str().unwrap()))
        .collect()
}

/// Every blob the live releases of the site refer to, as the library surveys them.
fn live(source: &Source, sandbox: &Sandbox) -> BTreeSet<String> {
    let key = verify::load_public_key(sandbox.pubkey().to_str().unwrap()).unwrap();
    let survey =
        verify::survey(source, &Selection::default(), &key, jiff::Timestamp::now()).unwrap();
    assert!(survey.problems.is_empty(), "{:?}", survey.problems);
    survey
        .blobs
        .keys()
        .chain(survey.documents.keys())
        .map(ToString::to_string)
        .collect()
}

fn gc(sandbox: &Sandbox, site: &str, extra: &[&str]) -> serde_json::Value {
    let pubkey = sandbox.pubkey();
    let mut args = vec!["gc", site, "--pubkey", pubkey.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    sandbox.wavecast(args, [""; 0]).success().json()
}

fn paths(list: &serde_json::Value) -> BTreeSet<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|garbage| garbage["path"].as_str().unwrap().to_owned())
        .collect()
}

/// Publishes three releases, calls `published` (a push, say), then retires 1.0.0;
/// returns the releases' folders.
fn three_releases_the_first_retired(sandbox: &Sandbox, published: impl FnOnce()) -> Vec<PathBuf> {
    let releases = releases(sandbox, 3);
    for (n, release) in releases.iter().enumerate() {
        sandbox.publish(release, &version(n), &[]).success();
    }
    published();
    let (site, key) = (sandbox.site(), sandbox.key());
    sandbox
        .wavecast(
            ["retire", "1.0.0", "--site"],
            [site.as_os_str(), "--key".as_ref(), key.as_os_str()],
        )
        .success();
    releases
}

/// The blobs in the bucket `storage`.
fn bucket_blobs(storage: &S3Storage) -> BTreeSet<String> {
    storage
        .sizes()
        .unwrap()
        .into_keys()
        .map(|path: RelativePath| path.to_string())
        .filter(|path| path.starts_with("blobs/"))
        .collect()
}

#[test]
fn retired_releases_are_collected_and_clients_still_update() {
    let mut sandbox = Sandbox::new();
    let releases = releases(&sandbox, 4);
    let site = sandbox.site();
    let site_arg = site.to_str().unwrap().to_owned();
    sandbox.publish(&releases[0], &version(0), &[]).success();
    let nginx = LoggingNginx::serve(&site);
    sandbox.init_client(&nginx.url());
    sandbox.client(["update", "--yes"]).success();
    assert_same_tree(&sandbox.root().join("current"), &releases[0]);
    for (n, release) in releases.iter().enumerate().skip(1) {
        sandbox.publish(release, &version(n), &[]).success();
    }
    let serial = sandbox.manifest("stable").serial;

    // Retiring every release is refused; keeping the newest two is one new manifest.
    let retire = |extra: &[&str]| {
        let mut args = vec!["retire", "--site", &site_arg, "--key"];
        let key = sandbox.key();
        args.push(key.to_str().unwrap());
        args.extend_from_slice(extra);
        sandbox.wavecast(args, [""; 0])
    };
    let refused = retire(&["--keep", "0"]).code(2);
    assert!(
        refused.stderr.contains("every release"),
        "{}",
        refused.stderr
    );
    let refused = retire(&["1.0.0", "1.1.0", "1.2.0", "1.3.0"]).code(2);
    assert!(refused.stderr.contains("hint:"), "{}", refused.stderr);
    let unknown = retire(&["9.0.0"]).code(2);
    assert!(
        unknown.stderr.contains("live: 1.3.0, 1.2.0"),
        "{}",
        unknown.stderr
    );
    let page_before = std::fs::read_to_string(site.join("index.html")).unwrap();
    let retired = retire(&["--keep", "2", "--json"]).success().json();
    assert_eq!(retired["retired"], serde_json::json!(["1.1.0", "1.0.0"]));
    let manifest = sandbox.manifest("stable");
    assert_eq!(manifest.serial, serial + 1);
    let live_versions: Vec<String> = manifest
        .releases
        .iter()
        .map(|release| release.version.to_string())
        .collect();
    assert_eq!(live_versions, ["1.3.0", "1.2.0"]);
    let page = std::fs::read_to_string(site.join("index.html")).unwrap();
    assert_ne!(page, page_before, "the status page follows the manifest");
    // Nothing more to retire: nothing written.
    retire(&["--keep", "2"]).success();
    assert_eq!(sandbox.manifest("stable").serial, serial + 1);

    let before = blobs(&site);
    let live = live(&Source::Folder(site.clone()), &sandbox);
    let garbage: BTreeSet<String> = before.difference(&live).cloned().collect();
    let classes: BTreeSet<BlobClass> = garbage.iter().map(|path| BlobClass::of(path)).collect();
    for class in [
        BlobClass::Document,
        BlobClass::FileIndex,
        BlobClass::Package,
        BlobClass::Pack,
    ] {
        assert!(classes.contains(&class), "{class:?} in {garbage:?}");
    }
    // 1.3.0's pack from 1.0.0 is live: clients still on 1.0.0 update with it.
    let newest = wavecast_tests::delta::document(&sandbox, "1.3.0");
    assert!(
        newest
            .packs
            .iter()
            .any(|pack| pack.from.to_string() == "1.0.0")
    );

    // A dry run deletes nothing, and names what a run would.
    let dry = gc(&sandbox, &site_arg, &["--dry-run", "--grace", "0s"]);
    assert_eq!(paths(&dry["would_delete"]), garbage);
    assert_eq!(blobs(&site), before);
    // The default grace keeps blobs uploaded within a week ...
    let young = gc(&sandbox, &site_arg, &[]);
    assert_eq!(paths(&young["deleted"]), BTreeSet::new());
    assert_eq!(paths(&young["kept_young"]), garbage);
    assert_eq!(blobs(&site), before);
    // ... and lets them go a week later.
    sandbox.env.insert(
        "WAVECAST_NOW".into(),
        (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(8 * 24)).to_string(),
    );
    let later = gc(&sandbox, &site_arg, &["--dry-run"]);
    assert_eq!(paths(&later["would_delete"]), garbage);
    sandbox.env.remove("WAVECAST_NOW");
    let pubkey = sandbox.pubkey();
    let human = sandbox
        .wavecast(
            [
                "gc",
                &site_arg,
                "--pubkey",
                pubkey.to_str().unwrap(),
                "--grace",
                "0s",
            ],
            [""; 0],
        )
        .success();
    human.assert_stdout(&format!("deleted {} blobs", garbage.len()));
    assert_eq!(blobs(&site), live);

    let verified = sandbox.wavecast(["verify", &site_arg, "--pubkey"], [sandbox.pubkey()]);
    assert_eq!(verified.code, 0, "{}", verified.stderr);
    let again = gc(&sandbox, &site_arg, &["--grace", "0s"]);
    assert_eq!(paths(&again["deleted"]), BTreeSet::new());

    // The client on retired 1.0.0 updates to 1.3.0 with its pack.
    nginx.clear_log();
    sandbox.client(["update", "--yes"]).success();
    assert_same_tree(&sandbox.root().join("current"), &releases[3]);
    let requests = nginx.requests();
    assert!(
        requests
            .iter()
            .any(|request| BlobClass::of(&request.path) == BlobClass::Pack && request.status < 300),
        "{requests:?}"
    );
    assert!(
        requests.iter().all(|request| request.status != 404),
        "{requests:?}"
    );
    // A fresh client installs the newest.
    let fresh = sandbox.path("fresh");
    wavecast_tests::client::init_at(&sandbox, &fresh, &nginx.url(), &[]);
    sandbox.client_at(&fresh, ["update", "--yes"]).success();
    assert_same_tree(&fresh.join("current"), &releases[3]);
}

#[test]
fn gc_refuses_a_site_it_cannot_read_whole() {
    let sandbox = Sandbox::new();
    let releases = releases(&sandbox, 2);
    for (n, release) in releases.iter().enumerate() {
        sandbox.publish(release, &version(n), &[]).success();
    }
    let site = sandbox.site();
    let document = wavecast_tests::delta::blob_path(
        &sandbox.manifest("stable").releases[0].platforms["any"].blake3,
        wavecast_site::layout::BlobKind::PlatformRelease,
    );
    std::fs::remove_file(site.join(&document)).unwrap();
    let before = blobs(&site);
    let pubkey = sandbox.pubkey();
    let run = sandbox
        .wavecast(
            [
                "gc",
                site.to_str().unwrap(),
                "--pubkey",
                pubkey.to_str().unwrap(),
                "--grace",
                "0s",
            ],
            [""; 0],
        )
        .code(1);
    assert!(
        run.stderr.contains("refusing to collect garbage"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("hint: `wavecast verify"),
        "{}",
        run.stderr
    );
    assert_eq!(blobs(&site), before);

    let elsewhere = sandbox.path("elsewhere");
    let run = sandbox
        .wavecast(
            [
                "gc",
                elsewhere.to_str().unwrap(),
                "--pubkey",
                pubkey.to_str().unwrap(),
            ],
            [""; 0],
        )
        .code(2);
    assert!(
        run.stderr.contains("no channel manifests"),
        "{}",
        run.stderr
    );
}

#[test]
fn gc_collects_a_bucket() {
    let (moto, sandbox, storage) = public_bucket("site");
    let destination = format!("s3://{BUCKET}/site");
    let url = format!("{}/{BUCKET}/site/", moto.endpoint());

    let releases = three_releases_the_first_retired(&sandbox, || {
        push(&sandbox, &moto, &destination).success();
    });
    push(&sandbox, &moto, &destination).success();

    let before = bucket_blobs(&storage);
    let live = live(&Source::parse(&url).unwrap(), &sandbox);
    let garbage: BTreeSet<String> = before.difference(&live).cloned().collect();
    assert!(!garbage.is_empty());

    let endpoint = moto.endpoint();
    let s3 = ["--endpoint", endpoint.as_str()];
    let young = gc(&sandbox, &destination, &s3);
    assert_eq!(paths(&young["kept_young"]), garbage);
    assert_eq!(bucket_blobs(&storage), before);
    let collected = gc(
        &sandbox,
        &destination,
        &[&s3[..], &["--grace", "0s"]].concat(),
    );
    assert_eq!(paths(&collected["deleted"]), garbage);
    assert_eq!(bucket_blobs(&storage), live);

    let verified = sandbox.wavecast(["verify", url.as_str(), "--pubkey"], [sandbox.pubkey()]);
    assert_eq!(verified.code, 0, "{}", verified.stderr);
    sandbox.init_client(&url);
    sandbox.client(["update", "--yes"]).success();
    assert_same_tree(&sandbox.root().join("current"), &releases[2]);
}

/// `gc` lists and deletes in a bucket whose storage checks every signature. The
/// bucket holds what the site folder does, so the folder says what is live.
#[test]
fn gc_collects_a_bucket_with_signatures_enforced() {
    let (moto, sandbox, storage) = signed_bucket("site");
    let destination = format!("s3://{BUCKET}/site");

    three_releases_the_first_retired(&sandbox, || {});
    push(&sandbox, &moto, &destination).success();

    let site = sandbox.site();
    let before = bucket_blobs(&storage);
    assert_eq!(before, blobs(&site));
    let live = live(&Source::parse(site.to_str().unwrap()).unwrap(), &sandbox);
    let garbage: BTreeSet<String> = before.difference(&live).cloned().collect();
    assert!(!garbage.is_empty());

    let endpoint = moto.endpoint();
    let args = ["--endpoint", endpoint.as_str(), "--grace", "0s"];
    let collected = gc(&sandbox, &destination, &args);
    assert_eq!(paths(&collected["deleted"]), garbage);
    assert_eq!(
        bucket_blobs(&storage),
        before.intersection(&live).cloned().collect()
    );
}
