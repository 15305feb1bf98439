//! Sites as web servers see them: the modes of the files every command writes, even
//! under a strict umask; nginx with unprivileged workers, as a stock installation runs
//! it; and changes made within one second, which servers' second-resolution
//! validators would hide from polling clients.

use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use wavecast_tests::self_update::{NEXT_CLIENT_VERSION, next_client};
use wavecast_tests::{
    Listed, NGINX_USER, Nginx, ProcessGroup, Run, Sandbox, assert_same_tree, free_port,
    sample_release, tree_listing, wait_for_port,
};

/// Runs `command` to its end.
fn run(command: &mut Command) -> Run {
    Run::from_output(command.output().expect("run the command"))
}

/// `wavecast args…` under umask 077, with `env` added.
fn wavecast_strict<A>(sandbox: &Sandbox, args: A, env: &[(&str, &str)]) -> Run
where
    A: IntoIterator,
    A::Item: AsRef<OsStr>,
{
    run(sandbox
        .command_with_umask("077", "wavecast")
        .args(args)
        .envs(env.iter().copied()))
}

/// Asserts that `root` is `folder_mode`, as is every folder under it, and that every
/// file under it is `file_mode`.
#[track_caller]
fn assert_modes(root: &Path, folder_mode: u32, file_mode: u32) {
    let root_mode = std::fs::metadata(root).unwrap().permissions().mode() & 0o7777;
    assert_eq!(
        format!("{root_mode:04o}"),
        format!("{folder_mode:04o}"),
        "{}",
        root.display()
    );
    let listing = tree_listing(root);
    assert!(listing.len() > 5, "{listing:?}");
    for (path, entry) in listing {
        let (mode, expected) = match entry {
            Listed::Dir(mode) => (mode, folder_mode),
            Listed::File(mode, _) => (mode, file_mode),
            Listed::Link(target) => panic!("a site holds no links: {path} -> {target}"),
        };
        assert_eq!(
            format!("{mode:04o}"),
            format!("{expected:04o}"),
            "{} in {}",
            path,
            root.display()
        );
    }
}

#[test]
fn every_command_writes_a_world_readable_site_under_a_strict_umask() {
    let sandbox = Sandbox::new();
    let r1 = sample_release(&sandbox.path("release-1.0"), "1.0");
    let (site, key, pubkey) = (sandbox.site(), sandbox.key(), sandbox.pubkey());
    let signed = [
        "--site".as_ref(),
        site.as_os_str(),
        "--key".as_ref(),
        key.as_os_str(),
    ];
    let strict = |args: &[&str]| {
        let args = args.iter().map(OsStr::new).chain(signed);
        wavecast_strict(&sandbox, args, &[]).success();
    };
    strict(&["publish", r1.to_str().unwrap(), "--version", "1.0.0"]);
    strict(&["rollout", "1.0.0", "50%"]);
    strict(&["yank", "1.0.0"]);
    strict(&["yank", "1.0.0", "--undo"]);
    let log = sandbox.path("access.log");
    std::fs::write(&log, "").unwrap();
    let stats = [
        "stats".as_ref(),
        "--html".as_ref(),
        "--site".as_ref(),
        site.as_os_str(),
        log.as_os_str(),
    ];
    wavecast_strict(&sandbox, stats, &[]).success();
    assert!(site.join("stats.json").is_file());
    strict(&[
        "publish-updater",
        next_client().to_str().unwrap(),
        "--version",
        NEXT_CLIENT_VERSION,
        "--platform",
        "x86_64-unknown-linux-gnu",
    ]);
    sandbox
        .wavecast(["keygen", "--out"], [sandbox.path("next")])
        .success();
    let (next_key, next_pubkey) = (
        sandbox.path("next/wavecast.key"),
        sandbox.path("next/wavecast.pub"),
    );
    let rotate = [
        "key".as_ref(),
        "rotate".as_ref(),
        "--site".as_ref(),
        site.as_os_str(),
        "--sign".as_ref(),
        key.as_os_str(),
        "--release-key".as_ref(),
        next_pubkey.as_os_str(),
        "--resign-with".as_ref(),
        next_key.as_os_str(),
    ];
    wavecast_strict(&sandbox, rotate, &[]).success();
    assert!(site.join("roots/2.json").is_file());
    let mirror = |destination: &Path, env: &[(&str, &str)]| {
        let args = [
            "mirror".as_ref(),
            site.as_os_str(),
            destination.as_os_str(),
            "--pubkey".as_ref(),
            pubkey.as_os_str(),
        ];
        wavecast_strict(&sandbox, args, env).success();
    };
    let mirrored = sandbox.path("mirror");
    mirror(&mirrored, &[]);
    assert_modes(&site, 0o755, 0o644);
    assert_modes(&mirrored, 0o755, 0o644);

    // Asked to, the umask keeps the site to its owner: with the flag or the variable.
    let private = sandbox.path("private");
    let publish = [
        "publish".as_ref(),
        r1.as_os_str(),
        "--version".as_ref(),
        "1.0.0".as_ref(),
        "--respect-umask".as_ref(),
        "--site".as_ref(),
        private.as_os_str(),
        "--key".as_ref(),
        key.as_os_str(),
    ];
    wavecast_strict(&sandbox, publish, &[]).success();
    assert_modes(&private, 0o700, 0o600);
    let private_mirror = sandbox.path("private-mirror");
    mirror(&private_mirror, &[("WAVECAST_RESPECT_UMASK", "1")]);
    assert_modes(&private_mirror, 0o700, 0o600);
}

/// An agent that returns every response, whatever its status.
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(30)))
        .http_status_as_error(false)
        .build()
        .into()
}

/// The status of a GET of `url`.
fn status(agent: &ureq::Agent, url: &str) -> u16 {
    agent.get(url).call().expect("a response").status().as_u16()
}

#[test]
fn an_unprivileged_nginx_serves_a_site_published_under_a_strict_umask() {
    let sandbox = Sandbox::new();
    let r1 = sample_release(&sandbox.path("release-1.0"), "1.0");
    let (site, key) = (sandbox.site(), sandbox.key());
    let publish = [
        "publish".as_ref(),
        r1.as_os_str(),
        "--version".as_ref(),
        "1.0.0".as_ref(),
        "--site".as_ref(),
        site.as_os_str(),
        "--key".as_ref(),
        key.as_os_str(),
    ];
    wavecast_strict(&sandbox, publish, &[]).success();
    let nginx = Nginx::serve(&site);
    assert!(
        nginx.unprivileged_workers,
        "run the tests as root: nginx then serves as `{NGINX_USER}`, as users run it"
    );

    // Every file of the site, the manifest, the status page and the blobs among them.
    let agent = agent();
    let files: Vec<String> = tree_listing(&site)
        .into_iter()
        .filter(|(_, entry)| matches!(entry, Listed::File(..)))
        .map(|(path, _)| path)
        .collect();
    for needed in ["channels/stable.json", "index.html", ".nojekyll"] {
        assert!(files.iter().any(|file| file == needed), "{files:?}");
    }
    assert!(
        files.iter().any(|file| file.starts_with("blobs/")),
        "{files:?}"
    );
    for file in &files {
        assert_eq!(
            status(&agent, &format!("{}{file}", nginx.url())),
            200,
            "{file}"
        );
    }
    sandbox.init_client(&nginx.url());
    sandbox.client(["update", "--yes"]).success();
    assert_same_tree(&sandbox.root().join("current"), &r1);

    // The same file unreadable by the server's user, as every file used to be: 403,
    // and the client names the likely cause.
    let manifest = site.join("channels/stable.json");
    std::fs::set_permissions(&manifest, std::fs::Permissions::from_mode(0o600)).unwrap();
    let url = format!("{}channels/stable.json", nginx.url());
    assert_eq!(status(&agent, &url), 403);
    let refused = sandbox.client(["check"]).code(1);
    for needle in ["403", "www-data", "0644", "namei -l"] {
        assert!(
            refused.stderr.contains(needle),
            "expected `{needle}` in:\n{}",
            refused.stderr
        );
    }
}

/// `python3 -m http.server` serving a folder on 127.0.0.1, stopped on drop. It
/// validates with `Last-Modified` alone, compared to the second.
struct PythonServer {
    port: u16,
    _process: ProcessGroup,
}

impl PythonServer {
    fn serve(root: &Path) -> Self {
        for _ in 0..5 {
            let port = free_port();
            let process = ProcessGroup::spawn(
                Command::new("python3")
                    .args([
                        "-m",
                        "http.server",
                        &port.to_string(),
                        "--bind",
                        "127.0.0.1",
                    ])
                    .arg("--directory")
                    .arg(root)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null()),
            )
            .expect("python3 is not installed");
            // Something else may have taken the port meanwhile: then python exits.
            if wait_for_port(port) && !process.has_exited() {
                return Self {
                    port,
                    _process: process,
                };
            }
        }
        panic!("python3 -m http.server did not start");
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }
}

/// Whole seconds since the epoch of `time`.
fn second(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// How many times a change is tried again when the machine was too slow to make it
/// within one second.
const ATTEMPTS: u32 = 10;

#[test]
fn a_change_within_the_same_second_reaches_clients_behind_nginx_and_python() {
    let sandbox = Sandbox::new();
    let r1 = sample_release(&sandbox.path("release-1.0"), "1.0");
    sandbox.publish(&r1, "1.0.0", &[]).success();
    let nginx = Nginx::serve(&sandbox.site());
    let python = PythonServer::serve(&sandbox.site());
    let clients: Vec<(&str, PathBuf)> = [("nginx", nginx.url()), ("python", python.url())]
        .into_iter()
        .map(|(server, url)| {
            let root = sandbox.path(&format!("client-{server}"));
            wavecast_tests::client::init_at(&sandbox, &root, &url, &[]);
            (server, root)
        })
        .collect();
    let check = |root: &Path| {
        sandbox
            .client_at(root, ["check", "--json"])
            .success()
            .json()["serial"]
            .as_u64()
            .unwrap()
    };
    let manifest = sandbox.site().join("channels/stable.json");
    let rollout = |percent: u32| {
        sandbox
            .wavecast(
                ["rollout", "1.0.0", &format!("{percent}%"), "--site"],
                [
                    sandbox.site().as_os_str(),
                    "--key".as_ref(),
                    sandbox.key().as_os_str(),
                ],
            )
            .success();
        sandbox.manifest("stable").serial
    };

    for attempt in 0..ATTEMPTS {
        // Start as a second starts, for the most room.
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap();
        std::thread::sleep(Duration::from_nanos(u64::from(
            1_000_000_000 - now.subsec_nanos(),
        )));
        let started = SystemTime::now();
        // Two-digit shares: both manifests have the same size, so nginx's `ETag`
        // (modification time and size) can only change with the time.
        let seen = rollout(10 + 2 * attempt);
        let size = std::fs::metadata(&manifest).unwrap().len();
        for (server, root) in &clients {
            assert_eq!(check(root), seen, "behind {server}");
        }
        let next = rollout(11 + 2 * attempt);
        let finished = SystemTime::now();
        if second(started) != second(finished) {
            let _ = writeln!(
                std::io::stderr(),
                "attempt {attempt}: the change took {:?}, past the end of its second; again",
                finished.duration_since(started).unwrap()
            );
            continue;
        }
        assert_eq!(std::fs::metadata(&manifest).unwrap().len(), size);
        for (server, root) in &clients {
            assert_eq!(
                check(root),
                next,
                "behind {server}, a client still sees serial {seen} after the change to serial {next} within the same second"
            );
        }
        return;
    }
    panic!("in {ATTEMPTS} attempts, this machine never published twice within one second");
}
