//! Shared support for wavecast's end-to-end tests and benchmarks: the built CLIs, sample
//! release trees, tree comparison, a real nginx on loopback and a fault-injecting HTTP
//! server.
#![allow(clippy::print_stdout, clippy::print_stderr, missing_docs)]

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub mod client;
pub mod corpus;
pub mod crash;
pub mod delta;
pub mod disk;
pub mod faults;
pub mod generated;
pub mod hostile;
pub mod latency;
pub mod process;
pub mod relay;
pub mod rollout;
pub mod self_update;

pub use faults::{Fault, FaultServer};
pub use process::ProcessGroup;

/// The password every test key is encrypted with.
pub const KEY_PASSWORD: &str = "wavecast test password";

/// Path of a binary built from this workspace (`wavecast`, `wavecast-update`), in the
/// same target directory and profile as the running test or benchmark.
///
/// The binaries must have been built first (`cargo build --bins`); the README's test
/// command does that.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary knows its path");
    let profile_dir = exe
        .ancestors()
        .find(|dir| dir.join(name).is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{name}` is not built; run `cargo build --workspace --lib --bins --examples` first"
            )
        });
    profile_dir.join(name)
}

/// What a CLI run produced.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from_output(output: Output) -> Self {
        Self {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Panics with the run's output unless it exited 0.
    #[track_caller]
    pub fn success(self) -> Self {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Panics unless the run exited with `code`.
    #[track_caller]
    pub fn code(self, code: i32) -> Self {
        assert_eq!(
            self.code, code,
            "expected exit {code}\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Panics unless stdout, where a command's result goes, contains `expected`.
    #[track_caller]
    pub fn assert_stdout(&self, expected: &str) {
        assert!(
            self.stdout.contains(expected),
            "stdout lacks {expected:?}:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
    }

    /// Panics unless stderr, where messages and warnings go, contains `expected`.
    #[track_caller]
    pub fn assert_stderr(&self, expected: &str) {
        assert!(
            self.stderr.contains(expected),
            "stderr lacks {expected:?}:\n{}\nstdout:\n{}",
            self.stderr,
            self.stdout
        );
    }

    /// stdout parsed as one JSON document.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|error| panic!("stdout is not JSON ({error}):\n{}", self.stdout))
    }
}

/// A scratch directory with a key pair, a site folder and helpers to run both CLIs.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
    /// Extra environment for every command (e.g. `WAVECAST_NOW`).
    pub env: BTreeMap<String, String>,
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Sandbox {
    /// A new sandbox with an encrypted key pair in `keys/`.
    pub fn new() -> Self {
        let sandbox = Self {
            dir: scratch_dir(),
            env: BTreeMap::new(),
        };
        sandbox
            .wavecast(["keygen", "--out"], [sandbox.path("keys")])
            .success();
        sandbox
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    pub fn site(&self) -> PathBuf {
        self.path("site")
    }

    pub fn key(&self) -> PathBuf {
        self.path("keys/wavecast.key")
    }

    pub fn pubkey(&self) -> PathBuf {
        self.path("keys/wavecast.pub")
    }

    pub fn root(&self) -> PathBuf {
        self.path("client")
    }

    /// A command running the built `binary_name` in the sandbox, with its
    /// environment; the caller adds the arguments.
    pub fn command(&self, binary_name: &str) -> Command {
        let mut command = Command::new(binary(binary_name));
        self.prepare(&mut command);
        command
    }

    /// [`Sandbox::command`] under the file mode creation mask `umask` (`077`), which
    /// `sh` sets before it runs the binary.
    pub fn command_with_umask(&self, umask: &str, binary_name: &str) -> Command {
        let mut command = Command::new("sh");
        command
            .args(["-c", r#"umask "$0" && exec "$@""#, umask])
            .arg(binary(binary_name));
        self.prepare(&mut command);
        command
    }

    /// [`Sandbox::command`] under GNU time, which writes the run's peak memory and
    /// wall time to `report` (see [`hostile::Cost`]).
    pub fn command_timed(&self, binary_name: &str, report: &Path) -> Command {
        let mut command = Command::new("/usr/bin/time");
        command
            .args(["--format", "%M %e", "--output"])
            .arg(report)
            .arg(binary(binary_name));
        self.prepare(&mut command);
        command
    }

    /// The sandbox's environment and working directory, on `command`.
    fn prepare(&self, command: &mut Command) {
        command
            .env("WAVECAST_KEY_PASSWORD", KEY_PASSWORD)
            .env("WAVECAST_NO_PROGRESS", "1")
            .env_remove("WAVECAST_NOW")
            .envs(&self.env)
            .stdin(Stdio::null())
            .current_dir(self.dir.path());
    }

    /// Runs `wavecast` with `args` followed by `paths`.
    pub fn wavecast<A, P>(&self, args: A, paths: P) -> Run
    where
        A: IntoIterator,
        A::Item: AsRef<OsStr>,
        P: IntoIterator,
        P::Item: AsRef<OsStr>,
    {
        let output = self
            .command("wavecast")
            .args(args)
            .args(paths)
            .output()
            .expect("run wavecast");
        Run::from_output(output)
    }

    /// Runs `wavecast-update` with `args`, adding `--root <client root>`.
    pub fn client<A>(&self, args: A) -> Run
    where
        A: IntoIterator,
        A::Item: AsRef<OsStr>,
    {
        self.client_at(&self.root(), args)
    }

    /// Runs `wavecast-update` with `args`, adding `--root root`: a second (third…)
    /// client in the same sandbox.
    pub fn client_at<A>(&self, root: &Path, args: A) -> Run
    where
        A: IntoIterator,
        A::Item: AsRef<OsStr>,
    {
        let output = self
            .command("wavecast-update")
            .args(args)
            .arg("--root")
            .arg(root)
            .output()
            .expect("run wavecast-update");
        Run::from_output(output)
    }

    /// Publishes `release` as `version` to the `stable` channel with extra `args`,
    /// then checks the written manifest against the JSON Schema.
    #[track_caller]
    pub fn publish(&self, release: &Path, version: &str, args: &[&str]) -> Run {
        let run = self.wavecast(
            [
                "publish".as_ref(),
                release.as_os_str(),
                "--version".as_ref(),
                version.as_ref(),
            ],
            [
                OsStr::new("--site"),
                self.site().as_os_str(),
                OsStr::new("--key"),
                self.key().as_os_str(),
            ]
            .into_iter()
            .chain(args.iter().map(OsStr::new)),
        );
        if run.code == 0 {
            let channel = args
                .iter()
                .position(|arg| *arg == "--channel")
                .map_or("stable", |i| args[i + 1]);
            assert_manifest_matches_schema(&self.site(), channel);
        }
        run
    }

    /// `wavecast-update init` against `url` with this sandbox's public key.
    #[track_caller]
    pub fn init_client(&self, url: &str) {
        self.client([
            "init",
            "--url",
            url,
            "--pubkey",
            self.pubkey().to_str().unwrap(),
        ])
        .success();
    }

    /// The current signed manifest of `channel`, parsed (the signature is not checked).
    pub fn manifest(&self, channel: &str) -> wavecast_schema::Manifest {
        let bytes = std::fs::read(self.site().join(format!("channels/{channel}.json"))).unwrap();
        let envelope = wavecast_schema::Envelope::parse(&bytes).unwrap();
        wavecast_schema::Manifest::parse(envelope.manifest.as_bytes()).unwrap()
    }
}

/// Validates the published manifest of `channel` against `schema/manifest.schema.json`.
#[track_caller]
pub fn assert_manifest_matches_schema(site: &Path, channel: &str) {
    let schema: serde_json::Value =
        serde_json::from_str(wavecast_schema::MANIFEST_JSON_SCHEMA).expect("schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let bytes = std::fs::read(site.join(format!("channels/{channel}.json"))).unwrap();
    let envelope = wavecast_schema::Envelope::parse(&bytes).unwrap();
    let manifest: serde_json::Value = serde_json::from_str(&envelope.manifest).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&manifest)
        .map(|e| e.to_string())
        .collect();
    assert!(
        errors.is_empty(),
        "manifest breaks its JSON Schema: {errors:#?}"
    );
}

/// Writes a small sample release tree: an executable, nested data, an empty folder.
/// `variant` changes the content so that two variants differ.
pub fn sample_release(dir: &Path, variant: &str) -> PathBuf {
    let write = |relative: &str, content: &[u8], mode: u32| {
        let path = dir.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    write(
        "bin/app",
        format!("#!/bin/sh\necho app {variant}\n").as_bytes(),
        0o755,
    );
    write(
        "share/readme.txt",
        format!("release {variant}\n").repeat(100).as_bytes(),
        0o644,
    );
    write(
        "share/nested/deep/data.bin",
        &pseudo_random(20_000, variant.len() as u64),
        0o600,
    );
    write("VERSION", variant.as_bytes(), 0o444);
    std::fs::create_dir_all(dir.join("var/empty")).unwrap();
    dir.to_owned()
}

/// Deterministic incompressible bytes.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// One entry of a [`tree_listing`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listed {
    /// A directory with these permission bits.
    Dir(u32),
    /// A regular file with these permission bits and the blake3 of its content.
    File(u32, String),
    /// A symbolic link and its target (never followed).
    Link(String),
}

/// A tree as [`tree_listing`] returns it: relative path → entry.
pub type Listing = BTreeMap<String, Listed>;

/// Every entry under `root`, without following symbolic links: relative path →
/// directory or file with its permission bits and content hash, or link with its
/// target.
pub fn tree_listing(root: &Path) -> Listing {
    fn walk(root: &Path, dir: &Path, out: &mut Listing) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let metadata = std::fs::symlink_metadata(&path).unwrap();
            let relative = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let mode = metadata.permissions().mode() & 0o7777;
            if metadata.file_type().is_symlink() {
                let target = std::fs::read_link(&path).unwrap();
                out.insert(
                    relative,
                    Listed::Link(target.to_string_lossy().into_owned()),
                );
            } else if metadata.is_dir() {
                out.insert(relative, Listed::Dir(mode));
                walk(root, &path, out);
            } else {
                let hash = blake3::hash(&std::fs::read(&path).unwrap())
                    .to_hex()
                    .to_string();
                out.insert(relative, Listed::File(mode, hash));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// Asserts that `installed` holds exactly the tree `published`: same paths, kinds,
/// permission bits and bytes, and links with the same targets.
#[track_caller]
pub fn assert_same_tree(installed: &Path, published: &Path) {
    let (left, right) = (tree_listing(installed), tree_listing(published));
    assert!(!right.is_empty(), "the published tree is empty");
    assert_eq!(
        left,
        right,
        "{} differs from {}",
        installed.display(),
        published.display()
    );
}

/// A scratch folder in the system's temporary folder that every user may enter and
/// list (0755, whatever the umask), as the folders above a site a web server serves
/// must be: `tempfile` makes its folders 0700, which [`Nginx`]'s workers, running as
/// `www-data`, could not pass.
pub fn scratch_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary folder");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("make the temporary folder traversable");
    dir
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something accepts TCP connections on `port`, for at most 10 s.
pub fn wait_for_port(port: u16) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// The user nginx's workers run as when the tests run as root, as the Debian package
/// sets it: sites are served only if that user may read them.
pub const NGINX_USER: &str = "www-data";

/// Which access log an [`Nginx`] keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AccessLog {
    Off,
    /// Status, body bytes, `Range` and request line: what the delta tests read.
    Delta,
    /// nginx's stock `combined` format, read by `wavecast stats`.
    Combined,
}

/// A real nginx serving a folder on 127.0.0.1, stopped with its workers on drop.
///
/// Run as root (as in CI), its master switches its workers to [`NGINX_USER`], as a
/// stock installation does; the folder served and every folder above it must let
/// that user through (see [`scratch_dir`]). Run as another user, nginx cannot switch
/// and its workers run as that user.
pub struct Nginx {
    pub port: u16,
    /// Whether the workers run as [`NGINX_USER`] rather than as the test's user.
    pub unprivileged_workers: bool,
    /// The master and its workers, stopped on drop (before `_dir` is removed).
    _process: ProcessGroup,
    _dir: tempfile::TempDir,
}

impl Nginx {
    /// Whether nginx is installed (`/usr/sbin/nginx` or on `PATH`).
    pub fn path() -> Option<PathBuf> {
        let candidates = [
            PathBuf::from("/usr/sbin/nginx"),
            PathBuf::from("/usr/bin/nginx"),
        ];
        candidates.into_iter().find(|path| path.is_file())
    }

    /// Starts nginx serving `root` with ETag, Range and the site's cache rules.
    pub fn serve(root: &Path) -> Self {
        Self::start(root, AccessLog::Off)
    }

    /// Like [`Nginx::serve`], with an access log at [`Nginx::access_log`] of every
    /// response's status, body bytes sent, `Range` header and request line.
    pub fn serve_logged(root: &Path) -> Self {
        Self::start(root, AccessLog::Delta)
    }

    /// Like [`Nginx::serve`], with an access log at [`Nginx::access_log`] in nginx's
    /// stock `combined` format, as a CDN or web host keeps it, and small socket send
    /// buffers, so that a connection cut mid-body (see [`relay::Relay`]) is logged
    /// with the bytes that really left rather than the whole body handed to the
    /// kernel.
    pub fn serve_combined_log(root: &Path) -> Self {
        Self::start(root, AccessLog::Combined)
    }

    /// The access log of [`Nginx::serve_logged`].
    pub fn access_log(&self) -> PathBuf {
        self._dir.path().join("access.log")
    }

    fn start(root: &Path, logged: AccessLog) -> Self {
        let nginx = Self::path().expect("nginx is not installed: apt-get install nginx-light");
        let dir = scratch_dir();
        let is_root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|out| out.stdout.starts_with(b"0\n"));
        for attempt in 0..5 {
            let port = free_port();
            let config = format!(
                "{user}worker_processes 1;\n\
                 pid {dir}/nginx.pid;\n\
                 error_log {dir}/error.log warn;\n\
                 worker_rlimit_nofile 16384;\n\
                 events {{ worker_connections 4096; }}\n\
                 http {{\n\
                   {access_log}\n\
                   client_body_temp_path {dir}/body;\n\
                   proxy_temp_path {dir}/proxy;\n\
                   fastcgi_temp_path {dir}/fastcgi;\n\
                   uwsgi_temp_path {dir}/uwsgi;\n\
                   scgi_temp_path {dir}/scgi;\n\
                   types {{ application/json json; application/gzip gz; text/html html; }}\n\
                   default_type application/octet-stream;\n\
                   server {{\n\
                     listen 127.0.0.1:{port}{listen_options};\n\
                     root {root};\n\
                     location /channels/ {{ add_header Cache-Control \"max-age=60, must-revalidate\"; }}\n\
                     location /blobs/ {{ add_header Cache-Control \"public, max-age=31536000, immutable\"; }}\n\
                   }}\n\
                 }}\n",
                user = if is_root {
                    format!("user {NGINX_USER};\n")
                } else {
                    String::new()
                },
                access_log = match logged {
                    AccessLog::Delta => format!(
                        "log_format delta '$status $body_bytes_sent \"$http_range\" \"$request\"'; access_log {} delta;",
                        dir.path().join("access.log").display()
                    ),
                    AccessLog::Combined => format!(
                        "access_log {} combined;",
                        dir.path().join("access.log").display()
                    ),
                    AccessLog::Off => "access_log off;".to_owned(),
                },
                listen_options = match logged {
                    AccessLog::Combined => " sndbuf=8k",
                    _ => "",
                },
                dir = dir.path().display(),
                root = root.display(),
            );
            let config_path = dir.path().join("nginx.conf");
            std::fs::write(&config_path, config).unwrap();
            let mut process = ProcessGroup::spawn(
                Command::new(&nginx)
                    .arg("-c")
                    .arg(&config_path)
                    .arg("-p")
                    .arg(dir.path())
                    .args(["-g", "daemon off;"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped()),
            )
            .expect("start nginx");
            if wait_for_port(port) {
                return Self {
                    port,
                    unprivileged_workers: is_root,
                    _process: process,
                    _dir: dir,
                };
            }
            let _ = process.stop();
            let mut stderr = String::new();
            let _ = process
                .leader()
                .stderr
                .take()
                .map(|mut e| e.read_to_string(&mut stderr));
            eprintln!("nginx attempt {attempt} failed on port {port}: {stderr}");
        }
        panic!("nginx did not start");
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }
}
