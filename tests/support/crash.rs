//! Crash-safety support: a client root with an old release current and a newer one
//! published (a folder site, so nothing but the client is timed), `wavecast-update
//! update --yes` killed with SIGKILL after a chosen delay, and the checks every kill
//! must pass. The e2e test and the `crash` benchmark share it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Listing, Sandbox, pseudo_random, tree_listing};

/// A small seeded generator (splitmix64): the same seed replays the same kills.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The seed in the environment variable `name`, else one from the clock.
    pub fn seed_from_env(name: &str) -> u64 {
        std::env::var(name)
            .ok()
            .and_then(|value| value.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |elapsed| elapsed.as_nanos() as u64)
            })
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A duration uniformly in `[0, bound)`.
    pub fn duration_below(&mut self, bound: Duration) -> Duration {
        let nanos = u64::try_from(bound.as_nanos()).unwrap_or(u64::MAX).max(1);
        Duration::from_nanos(self.next_u64() % nanos)
    }
}

/// Writes a release tree of `files` files under `dir`: `shared` of them identical in
/// every variant (installed as local copies by a differential update), the others
/// unique to `variant`, `size` bytes each (incompressible), in nested folders.
pub fn generated_release(dir: &Path, variant: &str, files: usize, shared: usize, size: usize) {
    for index in 0..files {
        let (name, seed) = if index < shared {
            (format!("shared/d{}/f{index}.bin", index % 16), index as u64)
        } else {
            (
                format!("{variant}/d{}/f{index}.bin", index % 16),
                index as u64 + 1_000_000 * (variant.len() as u64 + 1),
            )
        };
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, pseudo_random(size, seed)).unwrap();
    }
    std::fs::write(dir.join("VERSION"), variant).unwrap();
}

/// Where a kill landed, as the files left behind tell.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Landing {
    /// No journal: the install had not begun (or had ended) and `current` was on
    /// the old (`false`) or new (`true`) release.
    NoJournal { on_new: bool },
    /// The journal named this step.
    Step(String),
}

impl std::fmt::Display for Landing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoJournal { on_new: false } => f.write_str("no journal, old current"),
            Self::NoJournal { on_new: true } => f.write_str("no journal, new current"),
            Self::Step(step) => write!(f, "journal at `{step}`"),
        }
    }
}

/// A client root to kill installs in: 1.0.0 is current in a template root, 1.1.0 is
/// published; every trial starts from a copy of the template.
pub struct CrashRig {
    pub sandbox: Sandbox,
    template: PathBuf,
    old: Listing,
    new: Listing,
}

impl CrashRig {
    /// Publishes `old` as 1.0.0 to a folder site, installs it in a template root,
    /// then publishes `new` as 1.1.0.
    pub fn new(old: &Path, new: &Path) -> Self {
        let sandbox = Sandbox::new();
        sandbox.publish(old, "1.0.0", &[]).success();
        sandbox.init_client(sandbox.site().to_str().unwrap());
        sandbox.client(["update", "--yes"]).success();
        let template = sandbox.path("template");
        copy_tree(&sandbox.root(), &template);
        sandbox.publish(new, "1.1.0", &[]).success();
        Self {
            sandbox,
            template,
            old: tree_listing(old),
            new: tree_listing(new),
        }
    }

    /// The client root trials run in.
    pub fn root(&self) -> PathBuf {
        self.sandbox.root()
    }

    /// Puts the template (1.0.0 current, nothing interrupted) back in place, and
    /// flushes the copy to disk so that the update's own flush (`syncfs`) finds only
    /// its own writes, the same in every trial.
    pub fn reset(&self) {
        let root = self.root();
        if root.exists() {
            std::fs::remove_dir_all(&root).unwrap();
        }
        copy_tree(&self.template, &root);
        let status = Command::new("sync").arg("-f").arg(&root).status().unwrap();
        assert!(status.success(), "sync -f {}", root.display());
    }

    fn update(&self) -> Command {
        let mut command = self.sandbox.command("wavecast-update");
        command.args(["update", "--yes", "--root"]).arg(self.root());
        command
    }

    /// How long an undisturbed `update --yes` takes from the template: the median of
    /// `runs`. The update must end on 1.1.0.
    pub fn time_install(&self, runs: usize) -> Duration {
        self.time_install_with(runs, &[])
    }

    /// [`CrashRig::time_install`] with `extra` arguments (`--full`).
    pub fn time_install_with(&self, runs: usize, extra: &[&str]) -> Duration {
        let mut times: Vec<Duration> = (0..runs.max(1))
            .map(|_| {
                self.reset();
                let started = Instant::now();
                let output = self.update().args(extra).output().unwrap();
                let elapsed = started.elapsed();
                assert!(
                    output.status.success(),
                    "{}",
                    String::from_utf8_lossy(&output.stderr)
                );
                assert_eq!(self.check_current(), Ok(true));
                elapsed
            })
            .collect();
        times.sort();
        times[times.len() / 2]
    }

    /// Starts `update --yes`, kills it with SIGKILL after `delay` (if it is still
    /// running), then checks what it left: see [`CrashRig::check_after_kill`].
    pub fn kill_after(&self, delay: Duration) -> Result<Landing, String> {
        let mut child = self
            .update()
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        // SIGKILL on Unix; an error means it had already exited.
        let _ = child.kill();
        child.wait().unwrap();
        self.check_after_kill()
    }

    /// Starts `update --yes` and kills it with SIGKILL as soon as its journal names
    /// `step` (polling the file), or lets it finish if it never does within a minute;
    /// then checks what it left, as [`CrashRig::kill_after`] does. The run may have
    /// moved past `step` by the time the signal lands.
    pub fn kill_at_step(&self, step: &str) -> Result<Landing, String> {
        let journal = self.root().join(".wavecast/journal.json");
        let mut child = self
            .update()
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline && child.try_wait().unwrap().is_none() {
            let found = std::fs::read(&journal)
                .ok()
                .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
                .is_some_and(|journal| journal["step"] == step);
            if found {
                break;
            }
        }
        let _ = child.kill();
        child.wait().unwrap();
        self.check_after_kill()
    }

    /// What a kill must leave: `current` resolving to a tree identical to the old or
    /// the new release, a `state.json` that parses with its install id, and a journal
    /// that parses if there is one. Returns where the kill landed.
    pub fn check_after_kill(&self) -> Result<Landing, String> {
        let on_new = self.check_current()?;
        let root = self.root();
        let state: serde_json::Value =
            serde_json::from_slice(&std::fs::read(root.join(".wavecast/state.json")).unwrap())
                .map_err(|error| format!("state.json does not parse: {error}"))?;
        if !state["install_id"].is_string() || !state["installed"].is_array() {
            return Err(format!("state.json lacks its install id: {state}"));
        }
        match std::fs::read(root.join(".wavecast/journal.json")) {
            Ok(bytes) => {
                let journal: serde_json::Value = serde_json::from_slice(&bytes)
                    .map_err(|error| format!("journal.json does not parse: {error}"))?;
                let step = journal["step"]
                    .as_str()
                    .ok_or("the journal names no step")?;
                Ok(Landing::Step(step.to_owned()))
            }
            Err(_) => Ok(Landing::NoJournal { on_new }),
        }
    }

    /// Whether `current` is the new release (else the old); an error unless it
    /// resolves to a tree identical to one of them.
    fn check_current(&self) -> Result<bool, String> {
        let current = self.root().join("current");
        let target = std::fs::read_link(&current)
            .map_err(|error| format!("`current` is not a symlink: {error}"))?;
        let listing = std::panic::catch_unwind(|| tree_listing(&current))
            .map_err(|_| format!("`current` -> {} cannot be listed", target.display()))?;
        if listing == self.new {
            Ok(true)
        } else if listing == self.old {
            Ok(false)
        } else {
            Err(format!(
                "`current` -> {} is neither release: {} entries, old has {}, new has {}",
                target.display(),
                listing.len(),
                self.old.len(),
                self.new.len()
            ))
        }
    }

    /// The run after the kills: `status --json` (read-only) reports the journal's
    /// step if there is one, then `update --yes` must succeed and end on the new
    /// release with no journal, staging tree or temporary symlink left. Returns the
    /// recovery line the update printed, if any.
    pub fn recover_and_finish(&self, landing: &Landing) -> Result<Option<String>, String> {
        let status = self.sandbox.client(["status", "--json"]);
        if status.code != 0 {
            return Err(format!("status failed: {}", status.stderr));
        }
        let interrupted = &status.json()["interrupted"];
        let reported = interrupted["step"].as_str().map(str::to_owned);
        let expected = match landing {
            Landing::Step(step) => Some(step.clone()),
            Landing::NoJournal { .. } => None,
        };
        if reported != expected {
            return Err(format!(
                "status reports {interrupted} for a kill that left {landing}"
            ));
        }
        let update = self.sandbox.client(["update", "--yes"]);
        if update.code != 0 {
            return Err(format!(
                "the update after the kill failed: {}",
                update.stderr
            ));
        }
        if !self.check_current()? {
            return Err(format!(
                "the update after the kill did not end on 1.1.0: {}",
                update.stderr
            ));
        }
        let root = self.root();
        let mut leftovers: Vec<String> = std::fs::read_dir(root.join("releases"))
            .unwrap()
            .chain(std::fs::read_dir(&root).unwrap())
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with(".staging-") || name.starts_with(".current.tmp-"))
            .collect();
        if root.join(".wavecast/journal.json").exists() {
            leftovers.push("journal.json".into());
        }
        if !leftovers.is_empty() {
            return Err(format!("left behind after recovery: {leftovers:?}"));
        }
        Ok(update
            .stderr
            .lines()
            .find(|line| line.contains("interrupted at step"))
            .map(str::to_owned))
    }
}

/// `cp -a from to`.
fn copy_tree(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "cp -a {} {}",
        from.display(),
        to.display()
    );
}
