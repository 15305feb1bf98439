//! Helpers for rollout-control tests: extra client roots (each with its own install
//! id), the rollout commands of `wavecast` against the sandbox's site, and the clock.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use wavecast_schema::{InstallId, Manifest, Release};

use crate::{Run, Sandbox, assert_manifest_matches_schema};

impl Sandbox {
    /// Sets `WAVECAST_NOW` for both CLIs.
    pub fn set_now(&mut self, now: Timestamp) {
        self.env.insert("WAVECAST_NOW".into(), now.to_string());
    }

    /// Runs a `wavecast` command that changes a channel (`rollout`, `pause`,
    /// `resume`, `yank`, `promote`, …) with `--site` and `--key` added. On success the
    /// written manifest (of `--channel`, `--to`, or `stable`) is checked against the
    /// JSON Schema.
    #[track_caller]
    pub fn control(&self, args: &[&str]) -> Run {
        let site = self.site();
        let key = self.key();
        let run = self.wavecast(
            args,
            [
                OsStr::new("--site"),
                site.as_os_str(),
                OsStr::new("--key"),
                key.as_os_str(),
            ],
        );
        if run.code == 0 {
            let channel = args
                .iter()
                .position(|arg| *arg == "--channel" || *arg == "--to")
                .map_or("stable", |i| args[i + 1]);
            assert_manifest_matches_schema(&site, channel);
        }
        run
    }

    /// The live release `version` of `channel`, as published.
    #[track_caller]
    pub fn release(&self, channel: &str, version: &str) -> Release {
        let manifest: Manifest = self.manifest(channel);
        manifest
            .release(&version.parse().expect("a version"))
            .unwrap_or_else(|| panic!("{version} is not on {channel}"))
            .clone()
    }

    /// A new client root `clients/NAME`, initialized against `url` with its own install
    /// id.
    #[track_caller]
    pub fn new_client(&self, name: &str, url: &str) -> PathBuf {
        let root = self.path(&format!("clients/{name}"));
        let pubkey = self.pubkey();
        self.client_at(
            &root,
            [
                OsStr::new("init"),
                OsStr::new("--url"),
                OsStr::new(url),
                OsStr::new("--pubkey"),
                pubkey.as_os_str(),
            ],
        )
        .success();
        root
    }

    /// `check --json` of the client at `root`.
    #[track_caller]
    pub fn check_at(&self, root: &Path) -> serde_json::Value {
        self.client_at(root, ["check", "--json"]).success().json()
    }

    /// `update --yes` of the client at `root`, which must succeed.
    #[track_caller]
    pub fn update_at(&self, root: &Path) -> Run {
        self.client_at(root, ["update", "--yes"]).success()
    }

    /// The install id of the client at `root`, from `status --json`.
    #[track_caller]
    pub fn install_id_at(&self, root: &Path) -> InstallId {
        let status = self.client_at(root, ["status", "--json"]).success().json();
        status["install_id"]
            .as_str()
            .expect("status reports install_id")
            .parse()
            .expect("a valid install id")
    }

    /// The installed version of the client at `root`, from `status --json`.
    #[track_caller]
    pub fn current_at(&self, root: &Path) -> Option<String> {
        let status = self.client_at(root, ["status", "--json"]).success().json();
        status["current"].as_str().map(str::to_owned)
    }

    /// Creates client roots `PREFIX-0`, `PREFIX-1`, … until `wanted` accepts one's
    /// bucket for `salt`, trying at most `tries` roots.
    #[track_caller]
    pub fn client_with_bucket(
        &self,
        prefix: &str,
        url: &str,
        salt: &wavecast_schema::Salt,
        tries: usize,
        wanted: impl Fn(u16) -> bool,
    ) -> (PathBuf, u16) {
        for n in 0..tries {
            let root = self.new_client(&format!("{prefix}-{n}"), url);
            let bucket = wavecast_schema::bucket(&self.install_id_at(&root), salt);
            if wanted(bucket) {
                return (root, bucket);
            }
            std::fs::remove_dir_all(&root).expect("remove an unused client root");
        }
        panic!("no client with a wanted bucket in {tries} tries");
    }
}
