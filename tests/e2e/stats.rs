//! `wavecast stats` on a real nginx access log: 200 clients, each through a relay
//! of its own (its own address in nginx's log), install fresh, update from two
//! older releases by delta pack, and some have a download cut off; the counts
//! `stats` reads back from the log are exactly the ones the test produced.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use wavecast_tests::relay::Relay;
use wavecast_tests::{Nginx, Run, Sandbox, pseudo_random};

/// Clients that install 1.2.0 on a fresh root.
const FRESH: std::ops::Range<usize> = 0..80;
/// Clients on 1.0.0 that update to 1.2.0.
const FROM_1_0: std::ops::Range<usize> = 80..140;
/// Clients on 1.0.0 that update to 1.1.0, then to 1.2.0.
const FROM_1_1: std::ops::Range<usize> = 140..200;
const CLIENTS: usize = 200;
/// Clients whose 1.2.0 download is cut off mid-body: the package of a fresh
/// install, which the client resumes with a range request in the same run, or the
/// delta pack of an update, which the client drops for the packages or copy packs
/// (a fallback).
const CUT: [usize; 12] = [3, 17, 42, 61, 79, 85, 99, 120, 150, 163, 177, 199];
/// Bytes of a response after which a relay cuts it.
const CUT_AFTER: u64 = 96 * 1024;
/// Client runs at a time: the machine has 2 cores.
const PARALLEL: usize = 4;

/// A release tree: a script, its version, and 1 MiB of data whose first 256 KiB
/// change with each release (so a delta pack is a quarter of the package, and every
/// download is large enough to be cut mid-body).
fn release(dir: &Path, version: &str, seed: u64) -> PathBuf {
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    std::fs::write(dir.join("bin/app"), format!("#!/bin/sh\necho {version}\n")).unwrap();
    std::fs::write(dir.join("VERSION"), version).unwrap();
    let mut data = pseudo_random(256 * 1024, seed);
    data.extend(pseudo_random(768 * 1024, 1000));
    std::fs::write(dir.join("data.bin"), data).unwrap();
    dir.to_owned()
}

/// The address client `index` connects from.
fn address(index: usize) -> Ipv4Addr {
    let [high, low] = u16::try_from(index + 1).unwrap().to_be_bytes();
    Ipv4Addr::new(127, 1, high, low)
}

/// Runs `wavecast-update ARGS --root <client i>` for every `i` in `clients`,
/// [`PARALLEL`] at a time; the runs in client order.
fn run_all(sandbox: &Sandbox, clients: &[usize], args: &[&str]) -> Vec<(usize, Run)> {
    let next = AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..PARALLEL {
            scope.spawn(|| {
                loop {
                    let at = next.fetch_add(1, Ordering::Relaxed);
                    let Some(client) = clients.get(at) else { break };
                    let run = sandbox.client_at(&root(sandbox, *client), args);
                    results.lock().unwrap().push((*client, run));
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(client, _)| *client);
    results
}

fn root(sandbox: &Sandbox, client: usize) -> PathBuf {
    sandbox.path(&format!("clients/{client}"))
}

#[test]
fn stats_reads_back_from_nginx_what_two_hundred_clients_did() {
    let sandbox = Sandbox::new();
    let site = sandbox.site();
    let r1 = release(&sandbox.path("release-1.0"), "1.0.0", 1);
    let r2 = release(&sandbox.path("release-1.1"), "1.1.0", 2);
    let r3 = release(&sandbox.path("release-1.2"), "1.2.0", 3);
    sandbox.publish(&r1, "1.0.0", &[]).success();
    let nginx = Nginx::serve_combined_log(&site);
    let relays: Vec<Relay> = (0..CLIENTS)
        .map(|client| Relay::start(nginx.port, address(client)))
        .collect();
    // Every client's root, pointing at its relay: `init` polls once.
    let pubkey = sandbox.pubkey();
    let inits: Vec<(usize, Run)> = {
        let next = AtomicUsize::new(0);
        let results = std::sync::Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            for _ in 0..PARALLEL {
                scope.spawn(|| {
                    loop {
                        let client = next.fetch_add(1, Ordering::Relaxed);
                        if client >= CLIENTS {
                            break;
                        }
                        let run = sandbox.client_at(
                            &root(&sandbox, client),
                            [
                                "init",
                                "--url",
                                &relays[client].url(),
                                "--pubkey",
                                pubkey.to_str().unwrap(),
                            ],
                        );
                        results.lock().unwrap().push((client, run));
                    }
                });
            }
        });
        results.into_inner().unwrap()
    };
    for (client, run) in inits {
        assert_eq!(run.code, 0, "init of client {client}: {}", run.stderr);
    }

    let update = ["update", "--yes"];
    let on_1_0: Vec<usize> = FROM_1_0.chain(FROM_1_1).collect();
    for (client, run) in run_all(&sandbox, &on_1_0, &update) {
        assert_eq!(
            run.code, 0,
            "client {client} installing 1.0.0: {}",
            run.stderr
        );
    }
    sandbox.publish(&r2, "1.1.0", &[]).success();
    let on_1_1: Vec<usize> = FROM_1_1.collect();
    for (client, run) in run_all(&sandbox, &on_1_1, &update) {
        assert_eq!(
            run.code, 0,
            "client {client} updating to 1.1.0: {}",
            run.stderr
        );
    }
    sandbox.publish(&r3, "1.2.0", &[]).success();
    for client in CUT {
        relays[client].cut_next(CUT_AFTER);
    }
    let everyone: Vec<usize> = (0..CLIENTS).collect();
    let mut fallbacks = 0;
    for (client, run) in run_all(&sandbox, &everyone, &update) {
        assert_eq!(
            run.code, 0,
            "client {client} updating to 1.2.0: {}",
            run.stderr
        );
        // What the client says it did.
        if run.stderr.contains("the delta pack cannot be used") {
            fallbacks += 1;
        }
    }
    for (client, relay) in relays.iter().enumerate() {
        assert_eq!(
            relay.cuts(),
            usize::from(CUT.contains(&client)),
            "client {client}"
        );
    }
    let statuses = run_all(&sandbox, &everyone, &["status", "--json"]);
    for (client, run) in &statuses {
        assert_eq!(
            run.json()["current"],
            "1.2.0",
            "client {client}: {}",
            run.stdout
        );
    }
    drop(relays);
    // nginx writes each line as the request ends; its folder goes with it.
    let log = sandbox.path("access.log");
    std::fs::copy(nginx.access_log(), &log).unwrap();
    drop(nginx);

    let stats = sandbox
        .wavecast(
            ["stats", "--json", "--site"],
            [site.as_os_str(), log.as_os_str()],
        )
        .success()
        .json();
    assert!(
        !stats.to_string().contains("127.1."),
        "no address is printed"
    );
    let totals = &stats["channels"][0]["totals"];
    assert_eq!(stats["channels"][0]["channel"], "stable");
    let installs = |version: &str, from: &str| {
        totals["installs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|count| count["version"] == version && count["from"] == from)
            .map_or(0, |count| count["count"].as_u64().unwrap())
    };
    let (fresh, from_1_0, from_1_1) = (
        FRESH.len() as u64,
        FROM_1_0.len() as u64,
        FROM_1_1.len() as u64,
    );
    assert_eq!(
        installs("1.0.0", "fresh"),
        from_1_0 + from_1_1,
        "{totals:#}"
    );
    assert_eq!(installs("1.1.0", "1.0.0"), from_1_1, "{totals:#}");
    assert_eq!(installs("1.2.0", "fresh"), fresh, "{totals:#}");
    assert_eq!(installs("1.2.0", "1.0.0"), from_1_0, "{totals:#}");
    assert_eq!(installs("1.2.0", "1.1.0"), from_1_1, "{totals:#}");
    assert_eq!(
        totals["installs"].as_array().unwrap().len(),
        5,
        "{totals:#}"
    );
    assert_eq!(totals["active_clients"], CLIENTS as u64);
    assert_eq!(totals["incomplete"], CUT.len() as u64, "{totals:#}");
    assert_eq!(totals["partial_bodies"], CUT.len() as u64, "{totals:#}");
    let cut_fresh = CUT.iter().filter(|client| FRESH.contains(client)).count() as u64;
    assert_eq!(
        fallbacks,
        CUT.len() as u64 - cut_fresh,
        "cut packs fall back"
    );
    assert_eq!(totals["retries"], cut_fresh, "{totals:#}");
    assert_eq!(totals["fallbacks"], fallbacks, "{totals:#}");
    assert_eq!(
        totals["pack_downloads"],
        from_1_0 + 2 * from_1_1,
        "{totals:#}"
    );
    assert_eq!(
        totals["versions"],
        serde_json::json!([{"version": "1.2.0", "clients": CLIENTS}])
    );
    // The status page shows the measured adoption beside the simulated curve.
    sandbox
        .wavecast(
            ["stats", "--html", "--bucket", "1m", "-q", "--site"],
            [site.as_os_str(), log.as_os_str()],
        )
        .success();
    let page = std::fs::read_to_string(site.join("index.html")).unwrap();
    assert!(
        page.contains("<figure class=\"measured\">")
            && page.contains("200 active clients, 380 installs, 12 of"),
        "{page}"
    );
    let kept: serde_json::Value =
        serde_json::from_slice(&std::fs::read(site.join("stats.json")).unwrap()).unwrap();
    assert_eq!(kept["channels"]["stable"]["active_clients"], 200);
    let text = std::fs::read_to_string(site.join("stats.json")).unwrap();
    assert!(!text.contains("127.1."), "no address is kept");
    if let Ok(dir) = std::env::var("WAVECAST_KEEP_ACCESS_LOG") {
        let dir = Path::new(&dir);
        std::fs::copy(&log, dir.join("access.log")).unwrap();
        copy_tree(&site, &dir.join("site"));
    }

    // The same figures as text and CSV.
    let text = sandbox
        .wavecast(["stats", "--site"], [site.as_os_str(), log.as_os_str()])
        .success();
    assert!(
        text.stdout.contains(
            "installs        1.2.0: fresh 80, from 1.0.0 60, from 1.1.0 60; 1.1.0: from 1.0.0 60; 1.0.0: fresh 120"
        ),
        "{}",
        text.stdout
    );
    assert!(text.stderr.contains("lines/s"), "{}", text.stderr);
    let csv = sandbox
        .wavecast(
            ["stats", "--csv", "--site"],
            [site.as_os_str(), log.as_os_str()],
        )
        .success();
    for row in [
        "channel,bucket,metric,version,from,value",
        "stable,total,active_clients,,,200",
        "stable,total,installs,1.2.0,fresh,80",
        "stable,total,installs,1.2.0,1.1.0,60",
        "stable,total,incomplete,,,12",
    ] {
        assert!(
            csv.stdout.lines().any(|line| line == row),
            "{row}\n{}",
            csv.stdout
        );
    }

    // An alert on the same log: 12 cut of a few hundred downloads.
    let alert = sandbox.wavecast(
        [
            "stats",
            "--fail-if",
            "incomplete>1%",
            "--fail-if",
            "fallbacks>50%",
            "--site",
        ],
        [site.as_os_str(), log.as_os_str()],
    );
    assert_eq!(alert.code, 3, "{}", alert.stderr);
    assert!(
        alert
            .stderr
            .contains("alert: channel `stable`: 12 incomplete of"),
        "{}",
        alert.stderr
    );
    assert!(!alert.stderr.contains("fallbacks"), "{}", alert.stderr);
    assert!(alert.stdout.contains("channel stable"), "{}", alert.stdout);
    sandbox
        .wavecast(
            ["stats", "--fail-if", "incomplete>10%", "-q", "--site"],
            [site.as_os_str(), log.as_os_str()],
        )
        .success();
}

#[test]
fn a_line_that_does_not_parse_is_named() {
    let sandbox = Sandbox::new();
    let r1 = release(&sandbox.path("release-1.0"), "1.0.0", 1);
    sandbox.publish(&r1, "1.0.0", &[]).success();
    let log = sandbox.path("access.log");
    std::fs::write(
        &log,
        "127.0.0.1 - - [05/Dec/2026:01:19:07 +0000] \"GET /channels/stable.json HTTP/1.1\" 200 1843 \"-\" \"wavecast-update/0.1.0\"\n\
         127.0.0.1 - - 05/Dec/2026:01:19:08 \"GET /channels/stable.json HTTP/1.1\" 200 1843\n",
    )
    .unwrap();
    let run = sandbox
        .wavecast(
            ["stats", "--site"],
            [sandbox.site().as_os_str(), log.as_os_str()],
        )
        .code(2);
    assert!(
        run.stderr.contains("line 2 of `")
            && run
                .stderr
                .contains("is not a combined log line: the time does not start with `[`"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("hint: check the log's format"),
        "{}",
        run.stderr
    );
    let csv = sandbox.wavecast(
        ["stats", "--csv", "--site"],
        [
            sandbox.site().as_os_str(),
            sandbox.path("nothing.log").as_os_str(),
        ],
    );
    assert_eq!(
        csv.code, 2,
        "a missing log is a usage error: {}",
        csv.stderr
    );
}

/// Copies the folder `from` to `to`, for a look at the test's site afterwards.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &to.join(entry.file_name()));
        } else {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}
