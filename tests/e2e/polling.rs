//! Cheap polling: conditional manifest requests against nginx, `poll`, and the
//! GitHub Pages bits of `publish`.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;

use wavecast_tests::{Nginx, Sandbox, assert_same_tree, sample_release};

/// The bytes a polling check may put on the wire when nothing changed: the request
/// and the response, headers included.
const NO_CHANGE_BUDGET: u64 = 1024;

/// A TCP proxy on 127.0.0.1 in front of `upstream_port` that counts the bytes of
/// each connection: what the client sent, what it received.
struct CountingProxy {
    port: u16,
    connections: Arc<Mutex<Vec<(u64, u64)>>>,
}

impl CountingProxy {
    fn start(upstream_port: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&connections);
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let recorded = Arc::clone(&recorded);
                thread::spawn(move || {
                    let server = TcpStream::connect(("127.0.0.1", upstream_port)).unwrap();
                    let (client_read, server_write) =
                        (client.try_clone().unwrap(), server.try_clone().unwrap());
                    let up = thread::spawn(move || pipe(client_read, server_write));
                    let down = pipe(server, client);
                    let up = up.join().unwrap();
                    recorded.lock().unwrap().push((up, down));
                });
            }
        });
        Self { port, connections }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// The connections closed so far, as (sent, received) bytes, and forgets them.
    fn take(&self) -> Vec<(u64, u64)> {
        std::mem::take(&mut *self.connections.lock().unwrap())
    }
}

/// Copies `from` to `to` until end of stream, then half-closes `to`; returns the
/// bytes copied.
fn pipe(mut from: TcpStream, mut to: TcpStream) -> u64 {
    let mut total = 0;
    let mut buffer = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(read) => {
                if to.write_all(&buffer[..read]).is_err() {
                    break;
                }
                total += read as u64;
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
    total
}

/// The access-log lines of requests for the stable manifest, as (status, body bytes).
fn manifest_requests(nginx: &Nginx) -> Vec<(u16, u64)> {
    std::fs::read_to_string(nginx.access_log())
        .unwrap_or_default()
        .lines()
        .filter(|line| line.contains("GET /channels/stable.json"))
        .map(|line| {
            let mut fields = line.split(' ');
            let status = fields.next().unwrap().parse().unwrap();
            let bytes = fields.next().unwrap().parse().unwrap();
            (status, bytes)
        })
        .collect()
}

#[test]
fn an_unchanged_manifest_costs_one_small_304_and_a_new_one_is_fetched() {
    let sandbox = Sandbox::new();
    let r1 = sample_release(&sandbox.path("release-1.0"), "1.0");
    sandbox.publish(&r1, "1.0.0", &[]).success();
    let nginx = Nginx::serve_logged(&sandbox.site());
    let proxy = CountingProxy::start(nginx.port);
    sandbox.init_client(&proxy.url());
    // `init` fetched the manifest once to verify the site: its connection is not a
    // check's.
    let mut connections = Vec::new();
    for _ in 0..100 {
        connections.extend(proxy.take());
        if !connections.is_empty() {
            break;
        }
        thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(connections.len(), 1, "init's connection");

    let first = sandbox.client(["check", "--json"]).success();
    let second = sandbox.client(["check", "--json"]).success();
    assert_eq!(first.stdout, second.stdout);
    assert_eq!(first.json()["target"], "1.0.0", "{}", first.stdout);
    let requests = manifest_requests(&nginx)[1..].to_vec();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(requests[0].0, 200);
    assert!(requests[0].1 > 0);
    assert_eq!(requests[1], (304, 0));

    // The client closes its connection when it exits; wait for the proxy to see both.
    let mut connections = Vec::new();
    for _ in 0..100 {
        connections.extend(proxy.take());
        if connections.len() >= 2 {
            break;
        }
        thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(connections.len(), 2, "one connection per check");
    let (sent, received) = *connections
        .iter()
        .min_by_key(|(sent, received)| sent + received)
        .unwrap();
    let _ = writeln!(
        std::io::stderr(),
        "no-change check: {sent} bytes sent + {received} bytes received = {} bytes",
        sent + received
    );
    assert!(
        sent + received <= NO_CHANGE_BUDGET,
        "a no-change check took {sent} + {received} bytes"
    );

    // Maybe within the same second: the publisher dates the new manifest a second
    // later, so nginx's validators change anyway.
    let r2 = sample_release(&sandbox.path("release-1.1"), "1.1");
    sandbox.publish(&r2, "1.1.0", &[]).success();
    let third = sandbox.client(["check", "--json"]).success().json();
    assert_eq!(third["target"], "1.1.0", "{third}");
    let requests = manifest_requests(&nginx)[1..].to_vec();
    assert_eq!(requests.len(), 3, "{requests:?}");
    assert_eq!(requests[2].0, 200);
}

#[test]
fn a_304_does_not_revive_an_expired_manifest() {
    let mut sandbox = Sandbox::new();
    let r1 = sample_release(&sandbox.path("release-1.0"), "1.0");
    sandbox.publish(&r1, "1.0.0", &[]).success();
    let nginx = Nginx::serve_logged(&sandbox.site());
    sandbox.init_client(&nginx.url());
    sandbox.client(["check"]).success();

    let expires_at = sandbox.manifest("stable").expires_at;
    let later = expires_at + jiff::SignedDuration::from_hours(1);
    sandbox
        .env
        .insert("WAVECAST_NOW".to_owned(), later.to_string());
    let run = sandbox.client(["check"]).code(1);
    assert!(run.stderr.contains("expired at"), "{}", run.stderr);
    // `init`'s fetch, the first check's, then the 304 that must not revive it.
    let requests = manifest_requests(&nginx);
    assert_eq!(requests[2], (304, 0), "{requests:?}");
}

#[test]
fn poll_installs_a_new_release_and_prints_a_line_per_check() {
    let sandbox = Sandbox::new();
    let r1 = sample_release(&sandbox.path("release-1.0"), "1.0");
    sandbox.publish(&r1, "1.0.0", &[]).success();
    let nginx = Nginx::serve(&sandbox.site());
    sandbox.init_client(&nginx.url());
    sandbox.client(["update", "--yes"]).success();
    assert_same_tree(&sandbox.root().join("current"), &r1);

    let r2 = sample_release(&sandbox.path("release-1.1"), "1.1");
    sandbox.publish(&r2, "1.1.0", &[]).success();
    let run = sandbox
        .client([
            "poll",
            "--interval",
            "1s",
            "--max-polls",
            "3",
            "--install",
            "--json",
        ])
        .success();
    assert_same_tree(&sandbox.root().join("current"), &r2);
    let lines: Vec<serde_json::Value> = run
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{}", run.stdout);
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line["type"], "poll");
        assert_eq!(line["data"]["poll"], i + 1);
    }
    assert_eq!(lines[0]["data"]["result"], "installed", "{}", run.stdout);
    assert_eq!(lines[0]["data"]["installed"], "1.1.0");
    assert_eq!(lines[1]["data"]["result"], "checked", "{}", run.stdout);
    assert_eq!(lines[1]["data"]["not_modified"], true, "{}", run.stdout);
    assert_eq!(lines[2]["data"]["next_poll_secs"], serde_json::Value::Null);

    // Without --install an update is only reported, one plain line per check.
    let run = sandbox
        .client(["poll", "--interval", "1s", "--max-polls", "2"])
        .success();
    assert_eq!(run.stdout.lines().count(), 2, "{}", run.stdout);
    assert!(run.stdout.starts_with("poll 1: "), "{}", run.stdout);
}

#[test]
fn publish_writes_nojekyll_for_github_pages() {
    let sandbox = Sandbox::new();
    let r1 = sample_release(&sandbox.path("release-1.0"), "1.0");
    sandbox.publish(&r1, "1.0.0", &[]).success();
    let nojekyll = sandbox.site().join(".nojekyll");
    assert_eq!(std::fs::read(&nojekyll).unwrap(), b"");
}

/// Without a terminal (a log under systemd), an install says each phase on a line
/// of its own; a bar needs a terminal, and `WAVECAST_NO_PROGRESS` silences both.
#[test]
fn without_a_terminal_an_install_prints_a_line_per_phase() {
    let sandbox = Sandbox::new();
    let r1 = sample_release(&sandbox.path("release-1.0"), "1.0");
    sandbox.publish(&r1, "1.0.0", &[]).success();
    sandbox.init_client(sandbox.site().to_str().unwrap());
    let mut command = sandbox.command("wavecast-update");
    command
        .args(["poll", "--install", "--max-polls", "1", "--root"])
        .arg(sandbox.root())
        .env_remove("WAVECAST_NO_PROGRESS");
    let run = wavecast_tests::Run::from_output(command.output().unwrap()).success();
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert!(lines[0].starts_with("downloading "), "{}", run.stderr);
    assert!(
        lines[1].starts_with("assembling the new tree ("),
        "{}",
        run.stderr
    );
    assert_eq!(lines[2..], ["switching to the new tree"], "{}", run.stderr);
    assert!(
        run.stdout.starts_with("poll 1: installed 1.0.0"),
        "{}",
        run.stdout
    );
    assert_same_tree(&sandbox.root().join("current"), &r1);
}
