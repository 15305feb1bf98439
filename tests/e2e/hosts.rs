//! Several hosts: the manifest fails over between configured base URLs, and blobs
//! between the signed download hosts, the manifest's host and the other base URLs.

use std::path::PathBuf;
use std::time::Duration;

use wavecast_tests::{
    Fault, FaultServer, Nginx, Sandbox, assert_same_tree, free_port, sample_release,
};

/// A base URL on which nothing listens.
fn dead_url() -> String {
    format!("http://127.0.0.1:{}/", free_port())
}

/// `wavecast-update init` with several base URLs, in order: each must serve the
/// site (init verifies them all).
fn init_with_urls(sandbox: &Sandbox, urls: &[&str]) {
    init_with(sandbox, urls, &[]);
}

/// [`init_with_urls`] with more flags (`--offline` for a URL that is down).
fn init_with(sandbox: &Sandbox, urls: &[&str], flags: &[&str]) {
    let mut args: Vec<String> = flags.iter().map(|flag| (*flag).to_owned()).collect();
    args.insert(0, "init".to_owned());
    for url in urls {
        args.extend(["--url".to_owned(), (*url).to_owned()]);
    }
    args.extend([
        "--pubkey".to_owned(),
        sandbox.pubkey().to_str().unwrap().to_owned(),
    ]);
    sandbox.client(args).success();
}

fn newest_package_path(sandbox: &Sandbox) -> String {
    use wavecast_tests::delta::{newest_module, package_path};
    package_path(&newest_module(sandbox, "app"))
}

/// The `download_hosts_used` of an `update --json` document.
fn hosts_used(update: &serde_json::Value) -> Vec<String> {
    update["download_hosts_used"]
        .as_array()
        .unwrap_or_else(|| panic!("no download_hosts_used in {update}"))
        .iter()
        .map(|host| host.as_str().unwrap().to_owned())
        .collect()
}

fn release(sandbox: &Sandbox, name: &str) -> PathBuf {
    sample_release(&sandbox.path(name), name)
}

#[test]
fn a_dead_first_url_fails_over_to_the_second() {
    let sandbox = Sandbox::new();
    let r1 = release(&sandbox, "r1");
    sandbox.publish(&r1, "1.0.0", &[]).success();
    let second = FaultServer::serve(&sandbox.site());
    let dead = dead_url();
    // The first URL is down already: an image set up offline, say.
    init_with(&sandbox, &[&dead, &second.url()], &["--offline"]);

    let update = sandbox
        .client(["update", "--yes", "--json"])
        .success()
        .json();
    assert_eq!(update["served_by"], second.url().as_str(), "{update}");
    assert_eq!(update["installed"], "1.0.0");
    assert_eq!(hosts_used(&update), [second.url()]);
    assert_same_tree(&sandbox.root().join("current"), &r1);

    let human = sandbox.client(["update", "--yes"]).success();
    human.assert_stdout("up to date");
}

#[test]
fn a_host_serving_a_stale_manifest_is_passed_over() {
    let sandbox = Sandbox::new();
    let (r1, r2) = (release(&sandbox, "r1"), release(&sandbox, "r2"));
    sandbox.publish(&r1, "1.0.0", &[]).success();
    let stale = std::fs::read(sandbox.site().join("channels/stable.json")).unwrap();
    sandbox.publish(&r2, "2.0.0", &[]).success();
    let first = FaultServer::serve(&sandbox.site());
    let second = FaultServer::serve(&sandbox.site());
    init_with_urls(&sandbox, &[&first.url(), &second.url()]);
    // The client sees serial 2 from the first host…
    let check = sandbox.client(["check", "--json"]).success().json();
    assert_eq!(check["served_by"], first.url().as_str());
    assert_eq!(check["serial"], 2);

    // …which then replays serial 1 (validly signed): the second host is used.
    first.set_fault("channels/stable.json", Fault::Replace(stale));
    let update = sandbox
        .client(["update", "--yes", "--json"])
        .success()
        .json();
    assert_eq!(update["served_by"], second.url().as_str(), "{update}");
    assert_eq!(update["serial"], 2);
    assert_eq!(update["installed"], "2.0.0");
    assert_same_tree(&sandbox.root().join("current"), &r2);
}

#[test]
fn a_truncated_package_is_taken_from_the_next_host() {
    let sandbox = Sandbox::new();
    let r1 = release(&sandbox, "r1");
    sandbox.publish(&r1, "1.0.0", &[]).success();
    let first = FaultServer::serve(&sandbox.site());
    let second = FaultServer::serve(&sandbox.site());
    init_with_urls(&sandbox, &[&first.url(), &second.url()]);
    second.clear_requests();
    let package = newest_package_path(&sandbox);
    first.set_fault(&package, Fault::Truncate(100));

    let update = sandbox
        .client(["update", "--yes", "--full", "--json"])
        .success()
        .json();
    assert_eq!(update["served_by"], first.url().as_str());
    // The first host sent the file index, the second the package.
    assert_eq!(hosts_used(&update), [first.url(), second.url()], "{update}");
    assert!(first.requests().contains(&package));
    assert!(second.requests().contains(&package));
    assert!(
        !second
            .requests()
            .iter()
            .any(|path| path.starts_with("channels/")),
        "the manifest came from the first host"
    );
    assert_same_tree(&sandbox.root().join("current"), &r1);
}

#[test]
fn a_trickling_host_is_passed_over_for_the_next() {
    let sandbox = Sandbox::new();
    let r1 = release(&sandbox, "r1");
    sandbox.publish(&r1, "1.0.0", &[]).success();
    let first = FaultServer::serve(&sandbox.site());
    let second = FaultServer::serve(&sandbox.site());
    init_with_urls(&sandbox, &[&first.url(), &second.url()]);
    sandbox
        .client(["config", "--min-speed", "4KiB/s", "--min-speed-grace", "1s"])
        .success();
    // 160 B/s: even the compact manifest (about 600 bytes) takes longer than the
    // grace second.
    let slowly = Fault::Trickle {
        chunk: 16,
        pause: Duration::from_millis(100),
    };

    first.set_fault("channels/stable.json", slowly.clone());
    let check = sandbox.client(["check", "--json"]).success().json();
    assert_eq!(check["served_by"], second.url().as_str(), "{check}");

    first.clear_faults();
    let package = newest_package_path(&sandbox);
    first.set_fault(&package, slowly);
    let update = sandbox
        .client(["update", "--yes", "--full", "--json"])
        .success()
        .json();
    assert_eq!(update["served_by"], first.url().as_str());
    // The first host sent the file index, the second the package.
    assert_eq!(hosts_used(&update), [first.url(), second.url()], "{update}");
    assert!(first.requests().contains(&package));
    assert!(second.requests().contains(&package));
    assert_same_tree(&sandbox.root().join("current"), &r1);
}

#[test]
fn wrong_bytes_from_a_download_host_do_not_poison_the_cache() {
    let sandbox = Sandbox::new();
    let (r1, r2) = (release(&sandbox, "r1"), release(&sandbox, "r2"));
    let cdn = FaultServer::serve(&sandbox.site());
    let cdn_url = cdn.url();
    sandbox
        .publish(&r1, "1.0.0", &["--download-host", &cdn_url])
        .success();
    let origin = Nginx::serve(&sandbox.site());
    init_with_urls(&sandbox, &[&origin.url()]);
    sandbox.client(["update", "--yes"]).success();

    // The download host flips a byte of 2.0.0's package; the origin serves it right.
    sandbox
        .publish(&r2, "2.0.0", &["--download-host", &cdn_url])
        .success();
    let package = newest_package_path(&sandbox);
    cdn.set_fault(&package, Fault::Corrupt);
    let update = sandbox
        .client(["update", "--yes", "--full", "--json"])
        .success()
        .json();
    assert_eq!(update["served_by"], origin.url().as_str());
    // The download host sent the file index, the origin the package.
    assert_eq!(
        hosts_used(&update),
        [cdn_url.clone(), origin.url()],
        "{update}"
    );
    assert!(cdn.requests().contains(&package));
    assert_same_tree(&sandbox.root().join("current"), &r2);
    let leftovers: Vec<_> = std::fs::read_dir(sandbox.root().join(".wavecast/cache"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn blobs_come_from_the_signed_download_host_and_fall_back_when_it_is_down() {
    let sandbox = Sandbox::new();
    let (r1, r2) = (release(&sandbox, "r1"), release(&sandbox, "r2"));
    let cdn = FaultServer::serve(&sandbox.site());
    let origin = FaultServer::serve(&sandbox.site());
    sandbox
        .publish(&r1, "1.0.0", &["--download-host", &cdn.url()])
        .success();
    assert_eq!(sandbox.manifest("stable").download_hosts, [cdn.url()]);
    init_with_urls(&sandbox, &[&origin.url()]);

    let update = sandbox
        .client(["update", "--yes", "--json"])
        .success()
        .json();
    assert_eq!(update["served_by"], origin.url().as_str());
    assert_eq!(hosts_used(&update), [cdn.url()], "{update}");
    let package = newest_package_path(&sandbox);
    assert!(cdn.requests().contains(&package), "{:?}", cdn.requests());
    assert!(
        origin
            .requests()
            .iter()
            .all(|path| path.starts_with("channels/")),
        "the origin served only the manifest: {:?}",
        origin.requests()
    );
    assert_same_tree(&sandbox.root().join("current"), &r1);

    // The next publish signs a download host that is down: the blobs come from the
    // manifest's host.
    let dead = dead_url();
    sandbox
        .publish(&r2, "2.0.0", &["--download-host", &dead])
        .success();
    assert_eq!(
        sandbox.manifest("stable").download_hosts,
        std::slice::from_ref(&dead)
    );
    let human = sandbox.client(["update", "--yes", "--full"]).success();
    human.assert_stdout(&format!("blobs from {}", origin.url()));
    human.assert_stdout(&format!("manifest from {}", origin.url()));
    let package = newest_package_path(&sandbox);
    assert!(origin.requests().contains(&package));
    assert_same_tree(&sandbox.root().join("current"), &r2);

    // Publishing again without --download-host keeps the list.
    let r3 = release(&sandbox, "r3");
    sandbox.publish(&r3, "3.0.0", &[]).success();
    assert_eq!(sandbox.manifest("stable").download_hosts, [dead]);
}

#[test]
fn a_bad_download_host_is_refused_by_the_publisher() {
    let sandbox = Sandbox::new();
    let r1 = release(&sandbox, "r1");
    for bad in ["ftp://cdn.example.com/", "https://user:pw@cdn.example.com/"] {
        let run = sandbox.publish(&r1, "1.0.0", &["--download-host", bad]);
        assert_eq!(run.code, 2, "{bad}: {}", run.stderr);
    }
}
