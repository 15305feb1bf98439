//! `ROOT/.wavecast/state.json`: what this client has seen and installed; and
//! `ROOT/.wavecast/shared/trial.json`, the release on trial, kept apart because the
//! root's group writes it too (see the `access` module).

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use semver::Version;
use serde::{Deserialize, Serialize};
use wavecast_schema::{
    Blake3Hash, ChannelName, IndexBlob, InstallId, Module, ModuleName, PlatformRelease,
    RelativePath, Root,
};

use crate::net::transport::Validators;
use crate::store::access::read_trial_file;
use crate::store::error::{Error, Result};

use crate::store::root::{random_hex, write_atomically, write_json_atomically};

/// The newest state format this build reads and writes.
pub const STATE_FORMAT: u32 = 1;

/// The client's persistent state. It is only ever replaced atomically, and a corrupt
/// file is an error, never a reason to start over: it holds the install id (which
/// fixes this client's rollout buckets) and the serials that protect against
/// rollback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Format of this file.
    pub format: u32,
    /// This client's random id, generated once by `init`. It is never sent anywhere.
    pub install_id: InstallId,
    /// The highest manifest serial seen, per channel.
    #[serde(default)]
    pub highest_serial: BTreeMap<ChannelName, u64>,
    /// When a manifest was last fetched and verified.
    #[serde(default)]
    pub last_check: Option<Timestamp>,
    /// Every release tree under `ROOT/releases`, in installation order.
    #[serde(default)]
    pub installed: Vec<InstalledRelease>,
    /// Per channel, where the envelope in `ROOT/.wavecast/manifests/` came from and
    /// the validators its host sent, for conditional requests.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub manifests: BTreeMap<ChannelName, StoredManifest>,
    /// The newest root this client walked to from the one pinned in its
    /// configuration; `None` while it still trusts the pinned root. It only moves
    /// forward, one verified step at a time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trusted_root: Option<Root>,
    /// The current release while it is unconfirmed: switched to by an install, and
    /// neither confirmed nor rolled back yet. It is kept in
    /// `ROOT/.wavecast/shared/trial.json`, not in `state.json`, since the root's group
    /// writes it too ([`save_trial`](Self::save_trial)); a trial in a `state.json`
    /// written before that is read until a trial file exists.
    #[serde(default, skip_serializing)]
    pub trial: Option<Trial>,
    /// Releases rolled back on this machine, which it will not install again (newer
    /// releases are installed as usual), oldest mark first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bad_releases: Vec<BadRelease>,
    /// The release [`Updater::stage`](crate::Updater::stage) built and recorded
    /// without switching to it, waiting for
    /// [`Updater::apply`](crate::Updater::apply) or the next
    /// [`Updater::launched`](crate::Updater::launched).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staged: Option<StagedRelease>,
}

/// Where a stored manifest envelope came from, and how its host identified it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredManifest {
    /// The manifest URL it was fetched from; the validators are only sent there.
    pub url: String,
    /// The `ETag` and `Last-Modified` of that response.
    #[serde(flatten)]
    pub validators: Validators,
}

/// A release whose tree is complete under `ROOT/releases`, waiting to be switched to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagedRelease {
    /// The release's version.
    pub version: Version,
    /// Its directory name under `ROOT/releases`.
    pub dir: String,
    /// When it was staged.
    pub staged_at: Timestamp,
    /// What it installs on this platform (its tree modules), from the signed
    /// manifest, so it can be applied without the network: its tree is checked
    /// against these modules' file indexes, which stay in the index cache.
    pub document: PlatformRelease,
}

/// A release tree this client unpacked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstalledRelease {
    /// The release's version.
    pub version: Version,
    /// Its directory name under `ROOT/releases`.
    pub dir: String,
    /// When it was installed.
    pub installed_at: Timestamp,
    /// Its modules, so a later update finds their file indexes (and so the files it
    /// can reuse) without the manifest that described this release. Empty in states
    /// written before differential updates.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub modules: BTreeMap<ModuleName, InstalledModule>,
}

/// One module of an installed release tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstalledModule {
    /// Where the module's files are inside the release tree; absent for the root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dest: Option<RelativePath>,
    /// blake3 of the module's package.
    pub package: Blake3Hash,
    /// The module's file index (on the site, and in the index cache while the release
    /// is installed); absent in records of releases installed from sites of format 1,
    /// whose indexes an update can no longer use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<IndexBlob>,
}

impl From<&Module> for InstalledModule {
    fn from(module: &Module) -> Self {
        Self {
            dest: module.dest.clone(),
            package: module.package.blake3.clone(),
            index: Some(module.index.clone()),
        }
    }
}

impl State {
    /// A fresh state with a new random install id: 16 random bytes as 32 lowercase
    /// hex digits.
    ///
    /// # Errors
    ///
    /// [`Error::Random`] when the operating system has no randomness to give.
    pub fn generate() -> Result<Self> {
        let id = random_hex(16)?;
        let install_id = id.parse().map_err(|_| Error::Random {
            source: getrandom::Error::UNEXPECTED,
        })?;
        Ok(Self {
            format: STATE_FORMAT,
            install_id,
            highest_serial: BTreeMap::new(),
            last_check: None,
            installed: Vec::new(),
            manifests: BTreeMap::new(),
            trusted_root: None,
            trial: None,
            bad_releases: Vec::new(),
            staged: None,
        })
    }

    /// Reads the state at `path` (`ROOT/.wavecast/state.json`) and the trial file
    /// beside it; `None` when there is no state.
    ///
    /// # Errors
    ///
    /// [`Error::ReadState`], [`Error::ParseState`] or
    /// [`Error::UnsupportedFileFormat`], for either file.
    pub fn load(path: &Path) -> Result<Option<Self>> {
        let Some(mut state) = Self::load_state_file(path)? else {
            return Ok(None);
        };
        let trial_path = trial_path(path);
        if let Some(bytes) = read_trial_file(&trial_path)? {
            state.trial = parse_trial(&trial_path, &bytes)?;
        }
        Ok(Some(state))
    }

    fn load_state_file(path: &Path) -> Result<Option<Self>> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(Error::ReadState {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        let format = peek_format(&bytes).map_err(|source| Error::ParseState {
            path: path.to_owned(),
            source,
        })?;
        if format > STATE_FORMAT {
            return Err(Error::UnsupportedFileFormat {
                path: path.to_owned(),
                found: format,
                supported: STATE_FORMAT,
            });
        }
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| Error::ParseState {
                path: path.to_owned(),
                source,
            })
    }

    /// Writes the state to `path` atomically (temporary file, flush, rename), and the
    /// trial beside it ([`save_trial`](Self::save_trial)) first, so a trial read from
    /// an older `state.json` is never lost.
    ///
    /// # Errors
    ///
    /// [`Error::WriteFile`], and the errors of [`save_trial`](Self::save_trial).
    pub fn save(&self, path: &Path) -> Result<()> {
        self.save_trial(path)?;
        write_json_atomically(path, self)
    }

    /// Writes only the trial, to `shared/trial.json` beside the state at `path`, when
    /// it changed: all a member of the root's group may write (`confirm`,
    /// `launched`).
    ///
    /// # Errors
    ///
    /// [`Error::WriteFile`], [`Error::CreateDirectory`], [`Error::ReadState`].
    pub fn save_trial(&self, path: &Path) -> Result<()> {
        let trial_path = trial_path(path);
        let mut bytes = serde_json::to_vec_pretty(&TrialFile {
            format: STATE_FORMAT,
            trial: self.trial.clone(),
        })
        .map_err(|error| Error::WriteFile {
            path: trial_path.clone(),
            source: error.into(),
        })?;
        bytes.push(b'\n');
        match read_trial_file(&trial_path)? {
            Some(existing) if existing == bytes => return Ok(()),
            // Nothing on trial and no file to override: a root that never had a trial.
            None if self.trial.is_none() => return Ok(()),
            _ => {}
        }
        if let Some(shared) = trial_path.parent() {
            crate::store::access::create_shared_dir(shared)?;
        }
        write_atomically(&trial_path, &bytes)
    }

    /// The highest serial seen on `channel`, if any.
    pub fn highest_serial(&self, channel: &ChannelName) -> Option<u64> {
        self.highest_serial.get(channel).copied()
    }

    /// The installed release in directory `dir`, if any.
    pub fn installed_in(&self, dir: &str) -> Option<&InstalledRelease> {
        self.installed
            .iter()
            .rev()
            .find(|release| release.dir == dir)
    }

    /// Whether `version` is marked bad.
    pub fn is_bad(&self, version: &Version) -> bool {
        self.bad_releases.iter().any(|bad| &bad.version == version)
    }

    /// The versions marked bad, which the decision skips.
    pub fn bad_versions(&self) -> BTreeSet<Version> {
        self.bad_releases
            .iter()
            .map(|bad| bad.version.clone())
            .collect()
    }

    /// Marks a release bad, replacing an earlier mark of the same version.
    pub fn mark_bad(&mut self, bad: BadRelease) {
        self.bad_releases
            .retain(|existing| existing.version != bad.version);
        self.bad_releases.push(bad);
    }

    /// Removes the bad mark of `version`, if it has one, and returns it.
    pub fn unmark(&mut self, version: &Version) -> Option<BadRelease> {
        let position = self
            .bad_releases
            .iter()
            .position(|bad| &bad.version == version)?;
        Some(self.bad_releases.remove(position))
    }

    /// Records a release tree, replacing any older record of the same directory.
    pub fn record_install(&mut self, release: InstalledRelease) {
        self.installed
            .retain(|existing| existing.dir != release.dir);
        self.installed.push(release);
    }
}

/// The trial file's shape: `{"format": 1, "trial": {...}}`, or `"trial": null` when
/// the current release is confirmed.
#[derive(Serialize, Deserialize)]
struct TrialFile {
    format: u32,
    #[serde(default)]
    trial: Option<Trial>,
}

/// `shared/trial.json` beside the state file at `state_path`.
fn trial_path(state_path: &Path) -> PathBuf {
    state_path.with_file_name("shared").join("trial.json")
}

/// The trial the trial file at `path` holds.
fn parse_trial(path: &Path, bytes: &[u8]) -> Result<Option<Trial>> {
    let parse_error = |source| Error::ParseTrial {
        path: path.to_owned(),
        source,
    };
    let format = peek_format(bytes).map_err(parse_error)?;
    if format > STATE_FORMAT {
        return Err(Error::UnsupportedFileFormat {
            path: path.to_owned(),
            found: format,
            supported: STATE_FORMAT,
        });
    }
    serde_json::from_slice::<TrialFile>(bytes)
        .map(|file| file.trial)
        .map_err(parse_error)
}

/// Reads just the `format` field of a JSON document, so a newer file is reported as
/// "too new" rather than as whatever field this build does not recognise.
pub(crate) fn peek_format(bytes: &[u8]) -> std::result::Result<u32, serde_json::Error> {
    #[derive(Deserialize)]
    struct FormatOnly {
        format: u32,
    }
    serde_json::from_slice::<FormatOnly>(bytes).map(|only| only.format)
}

/// The release on trial, in `state.json`: switched to by an install and not confirmed
/// yet. There is at most one, and only while it is current.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trial {
    /// Its version.
    pub version: Version,
    /// Its directory under `ROOT/releases`.
    pub dir: String,
    /// When `current` was switched to it.
    pub started_at: Timestamp,
    /// How many launches were recorded since.
    pub launches: u32,
    /// The release to roll back to: the last confirmed release that was current
    /// before it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
}

/// Why a release was marked bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum BadReason {
    /// Its health check failed (a non-zero status, or killed by a signal).
    HealthCheckFailed,
    /// Its health check timed out.
    HealthCheckTimedOut,
    /// It was launched more times than allowed without being confirmed.
    Unconfirmed,
    /// Someone rolled it back (`wavecast-update rollback`).
    RolledBack,
    /// Its image was written to a slot, but the on-activate hook failed or timed out.
    ActivationFailed,
}

impl BadReason {
    /// The reason's name in `state.json` and `--json` output.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HealthCheckFailed => "health_check_failed",
            Self::HealthCheckTimedOut => "health_check_timed_out",
            Self::Unconfirmed => "unconfirmed",
            Self::RolledBack => "rolled_back",
            Self::ActivationFailed => "activation_failed",
        }
    }
}

/// A release this client will not install again, in `state.json`. Newer releases
/// are installed as usual.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BadRelease {
    /// Its version.
    pub version: Version,
    /// The directory it was installed in.
    pub dir: String,
    /// Why it was marked.
    pub reason: BadReason,
    /// What happened, in words (`health check `…` exited with status 3`).
    pub detail: String,
    /// When.
    pub marked_at: Timestamp,
}

/// The file indexes of the installed releases, which the index cache keeps.
pub(crate) fn installed_indexes(state: &State) -> BTreeSet<&wavecast_schema::Blake3Hash> {
    state
        .installed
        .iter()
        .flat_map(|release| release.modules.values())
        .filter_map(|module| module.index.as_ref().map(|index| &index.blake3))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        assert_eq!(State::load(&path).unwrap(), None);
        let mut state = State::generate().unwrap();
        assert_eq!(state.install_id.as_str().len(), 32);
        assert!(
            state
                .install_id
                .as_str()
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        state.highest_serial.insert("stable".parse().unwrap(), 7);
        state.last_check = Some("2026-11-21T12:00:00Z".parse().unwrap());
        state.record_install(InstalledRelease {
            version: "1.0.0".parse().unwrap(),
            dir: "1.0.0-0123456789ab".into(),
            installed_at: "2026-11-21T12:00:00Z".parse().unwrap(),
            modules: BTreeMap::from([(
                "app".parse().unwrap(),
                InstalledModule {
                    dest: Some("opt/app".parse().unwrap()),
                    package: Blake3Hash::of(b"package"),
                    index: Some(IndexBlob {
                        size: 10,
                        json_size: 40,
                        blake3: Blake3Hash::of(b"index"),
                    }),
                },
            )]),
        });
        state.trial = Some(Trial {
            version: "1.0.0".parse().unwrap(),
            dir: "1.0.0-0123456789ab".into(),
            started_at: "2026-11-21T12:00:00Z".parse().unwrap(),
            launches: 2,
            fallback: None,
        });
        for detail in ["first", "second"] {
            state.mark_bad(BadRelease {
                version: "0.9.0".parse().unwrap(),
                dir: "0.9.0-0123456789ab".into(),
                reason: BadReason::HealthCheckTimedOut,
                detail: detail.into(),
                marked_at: "2026-11-21T12:00:00Z".parse().unwrap(),
            });
        }
        assert_eq!(state.bad_releases.len(), 1, "one mark per version");
        assert!(state.is_bad(&"0.9.0".parse().unwrap()));
        assert!(!state.is_bad(&"1.0.0".parse().unwrap()));
        state.save(&path).unwrap();
        let loaded = State::load(&path).unwrap().unwrap();
        assert_eq!(loaded, state);
        assert_eq!(loaded.highest_serial(&"stable".parse().unwrap()), Some(7));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("\"highest_serial\": {\n    \"stable\": 7\n  }"),
            "{text}"
        );
        assert!(
            text.contains("\"reason\": \"health_check_timed_out\""),
            "{text}"
        );
        // The trial is kept apart, where the root's group may write it.
        assert!(!text.contains("trial"), "{text}");
        let trial = std::fs::read_to_string(dir.path().join("shared/trial.json")).unwrap();
        assert!(trial.contains("\"launches\": 2"), "{trial}");
        assert_ne!(State::generate().unwrap().install_id, state.install_id);

        // States written before modules and bad marks were recorded still load.
        let mut old: serde_json::Value = serde_json::from_str(&text).unwrap();
        old["installed"][0]
            .as_object_mut()
            .unwrap()
            .remove("modules")
            .unwrap();
        old.as_object_mut().unwrap().remove("bad_releases").unwrap();
        let old: State = serde_json::from_value(old).unwrap();
        assert!(old.installed[0].modules.is_empty());
        assert!(old.trial.is_none() && old.bad_releases.is_empty());
    }

    fn trial(launches: u32) -> Trial {
        Trial {
            version: "1.1.0".parse().unwrap(),
            dir: "1.1.0-0123456789ab".into(),
            started_at: "2026-11-21T12:00:00Z".parse().unwrap(),
            launches,
            fallback: Some("1.0.0-0123456789ab".into()),
        }
    }

    #[test]
    fn a_trial_in_an_older_state_is_read_until_a_trial_file_exists_and_then_moves_there() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let trial_file = dir.path().join("shared/trial.json");
        let mut older = serde_json::to_value(State::generate().unwrap()).unwrap();
        older["trial"] = serde_json::to_value(trial(2)).unwrap();
        std::fs::write(&path, older.to_string()).unwrap();
        let mut state = State::load(&path).unwrap().unwrap();
        assert_eq!(state.trial, Some(trial(2)));

        // A member's save writes the trial file alone, which then wins.
        state.trial = Some(trial(3));
        state.save_trial(&path).unwrap();
        assert!(
            std::fs::read_to_string(&path)
                .unwrap()
                .contains("\"launches\":2")
        );
        assert_eq!(State::load(&path).unwrap().unwrap().trial, Some(trial(3)));
        // An unchanged trial is not written again.
        let written = std::fs::metadata(&trial_file).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        state.save_trial(&path).unwrap();
        assert_eq!(
            std::fs::metadata(&trial_file).unwrap().modified().unwrap(),
            written
        );

        // The owner's save moves it out of `state.json`; a confirmed release has none.
        state.trial = None;
        state.save(&path).unwrap();
        assert!(!std::fs::read_to_string(&path).unwrap().contains("trial"));
        assert_eq!(State::load(&path).unwrap().unwrap().trial, None);
    }

    #[test]
    fn the_owner_reads_the_trial_file_as_untrusted_input() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        State::generate().unwrap().save(&path).unwrap();
        let trial_file = dir.path().join("shared").join("trial.json");
        let secret = dir.path().join("secret");
        std::fs::write(&secret, b"{}").unwrap();
        std::fs::create_dir(dir.path().join("shared")).unwrap();
        // Not on Windows: Wine 8's CreateSymbolicLinkW is a stub that makes no link.
        #[cfg(not(windows))]
        {
            crate::platform::symlink(secret.to_str().unwrap(), &trial_file).unwrap();
            let error = State::load(&path).unwrap_err();
            assert!(matches!(error, Error::ReadState { .. }), "{error}");
            assert!(error.to_string().contains("trial.json"), "{error}");
            crate::platform::remove_link(&trial_file).unwrap();
        }

        // A FIFO would block a plain open until someone writes to it (Windows has
        // none in the file system).
        #[cfg(unix)]
        {
            let made = std::process::Command::new("mkfifo")
                .arg(&trial_file)
                .status()
                .unwrap();
            assert!(made.success());
            let error = State::load(&path).unwrap_err();
            let cause = std::error::Error::source(&error).unwrap().to_string();
            assert_eq!(cause, "not a regular file");
            std::fs::remove_file(&trial_file).unwrap();
        }

        std::fs::write(&trial_file, vec![b' '; 70_000]).unwrap();
        let error = State::load(&path).unwrap_err();
        let cause = std::error::Error::source(&error).unwrap().to_string();
        assert_eq!(cause, "larger than 65536 bytes");

        std::fs::write(&trial_file, b"{\"format\": 1, \"trial\": 3}").unwrap();
        let error = State::load(&path).unwrap_err();
        assert!(matches!(error, Error::ParseTrial { .. }), "{error}");
        assert_eq!(
            error.hint().unwrap(),
            format!(
                "remove `{}`: the current release then counts as confirmed",
                trial_file.display()
            )
        );
    }

    #[test]
    fn unmarking_removes_only_that_mark() {
        let mut state = State::generate().unwrap();
        for version in ["1.0.0", "1.1.0"] {
            state.mark_bad(BadRelease {
                version: version.parse().unwrap(),
                dir: format!("{version}-0123456789ab"),
                reason: BadReason::RolledBack,
                detail: String::new(),
                marked_at: "2026-11-21T12:00:00Z".parse().unwrap(),
            });
        }
        let cleared = state.unmark(&"1.0.0".parse().unwrap()).unwrap();
        assert_eq!(cleared.dir, "1.0.0-0123456789ab");
        assert_eq!(state.unmark(&"1.0.0".parse().unwrap()), None);
        assert_eq!(
            state.bad_versions(),
            BTreeSet::from(["1.1.0".parse().unwrap()])
        );
    }

    #[test]
    fn a_corrupt_state_is_an_error_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(&path, b"{\"format\":1,\"install_id\":").unwrap();
        let error = State::load(&path).unwrap_err();
        assert!(matches!(error, Error::ParseState { .. }), "{error}");
        assert!(error.to_string().contains("state.json"), "{error}");
    }
}
