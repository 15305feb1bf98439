//! The facade end to end: sites built in temporary folders, checked, installed,
//! rolled back.

use std::collections::BTreeMap;
use std::path::PathBuf;

use wavecast_schema::{
    Blake3Hash, Blob, EntryKind, Envelope, FORMAT_VERSION, FileIndex, FileMode, IndexEntry, Module,
    PlatformRelease, RolloutPlan,
};

use jiff::Timestamp;
use wavecast_schema::{
    Attributes, BasisPoints, Exclusion, Mode, Outcome, Release, Rule, Withdrawal,
};

use super::*;
use crate::error::{Error, InstallError, LifecycleError, NetError, StoreError};
use crate::install::InstallOutcome;
use crate::install::reporter::NoReporter;
use crate::install::unpack::tests::{Raw, package};
use crate::lifecycle::command::HealthStatus;
use crate::lifecycle::command::tests::shell;
use crate::lifecycle::health::LaunchOutcome;
use crate::net::limits::DownloadLimits;
use crate::net::trust::tests::{keypair, sign};
use crate::store::state::BadReason;
use crate::updater::check::CheckOptions;
use crate::updater::init::{ConfigChange, InitOptions, InitReport};
use crate::updater::install::InstallReport;

const NOW: &str = "2026-11-21T12:00:00Z";

/// The file at `path` in the release `current` names, under the root at `root`.
fn current_file(root: &Path, path: &str) -> PathBuf {
    crate::store::current::current_tree(&InstallRoot::new(root)).join(path)
}

/// A site in a temporary folder, signed with a fresh key.
struct Site {
    dir: tempfile::TempDir,
    pair: minisign::KeyPair,
    key: crate::net::trust::TrustedKey,
    releases: Vec<Release>,
}

impl Site {
    fn new() -> Self {
        let (pair, key) = keypair();
        Self {
            dir: tempfile::tempdir().unwrap(),
            pair,
            key,
            releases: Vec::new(),
        }
    }

    fn url(&self) -> BaseUrl {
        BaseUrl::parse(self.dir.path().to_str().unwrap()).unwrap()
    }

    /// Adds a release whose single module holds `files`, then publishes `serial`.
    fn release(&mut self, version: &str, files: &[(&str, &[u8])], basis_points: u16, serial: u64) {
        let entries: Vec<Raw<'_>> = files
            .iter()
            .map(|(path, content)| Raw(path, tar::EntryType::Regular, 0o644, content))
            .collect();
        self.release_packaged(version, files, package(&entries), basis_points, serial);
    }

    /// [`Self::release`], with `bytes` as the module's package whatever it holds.
    fn release_packaged(
        &mut self,
        version: &str,
        files: &[(&str, &[u8])],
        bytes: Vec<u8>,
        basis_points: u16,
        serial: u64,
    ) {
        self.release_of_kind(
            version,
            files,
            bytes,
            wavecast_schema::ModuleKind::Tree,
            basis_points,
            serial,
        );
    }

    /// [`Self::release_packaged`] with a module of `kind`.
    fn release_of_kind(
        &mut self,
        version: &str,
        files: &[(&str, &[u8])],
        bytes: Vec<u8>,
        kind: wavecast_schema::ModuleKind,
        basis_points: u16,
        serial: u64,
    ) {
        let blake3 = Blake3Hash::of(&bytes);
        let path = wavecast_site::layout::blob(&blake3, wavecast_site::layout::BlobKind::Package);
        std::fs::create_dir_all(self.dir.path().join("blobs")).unwrap();
        std::fs::write(self.dir.path().join(path.as_str()), &bytes).unwrap();
        let module = Module {
            version: version.parse().unwrap(),
            kind,
            // An image names the file its slot holds.
            dest: (kind == wavecast_schema::ModuleKind::Image)
                .then(|| "image.img".parse().unwrap()),
            package: Blob {
                size: bytes.len() as u64,
                blake3,
            },
            unpacked_size: files.iter().map(|(_, content)| content.len() as u64).sum(),
            package_format: wavecast_schema::PackageFormat::TarGz,
            index: self.file_index(files),
            copies: None,
        };
        let mut document = PlatformRelease::new(version.parse().unwrap(), "any".parse().unwrap());
        document.modules.insert("app".parse().unwrap(), module);
        let document = self.blob(
            wavecast_site::layout::BlobKind::PlatformRelease,
            &document.to_json(),
        );
        self.releases.push(Release {
            version: version.parse().unwrap(),
            published_at: "2026-11-01T00:00:00Z".parse().unwrap(),
            notes: format!("notes for {version}"),
            platforms: BTreeMap::from([("any".parse().unwrap(), document)]),
            rollout: RolloutPlan::fixed(
                "00112233445566778899aabbccddeeff".parse().unwrap(),
                BasisPoints::new(basis_points).unwrap(),
            ),
        });
        self.publish(serial);
    }

    /// Stores `bytes` on the site as a blob of `kind`.
    fn blob(&self, kind: wavecast_site::layout::BlobKind, bytes: &[u8]) -> Blob {
        let blob = Blob {
            size: bytes.len() as u64,
            blake3: Blake3Hash::of(bytes),
        };
        let path = wavecast_site::layout::blob(&blob.blake3, kind);
        std::fs::create_dir_all(self.dir.path().join("blobs")).unwrap();
        std::fs::write(self.dir.path().join(path.as_str()), bytes).unwrap();
        blob
    }

    /// Stores the file index of a module holding `files` (mode 644) on the site.
    fn file_index(&self, files: &[(&str, &[u8])]) -> wavecast_schema::IndexBlob {
        let entries = files
            .iter()
            .map(|(path, content)| IndexEntry {
                path: path.parse().unwrap(),
                kind: EntryKind::File {
                    size: content.len() as u64,
                    blake3: Blake3Hash::of(content),
                    packed_size: 0,
                },
                mode: FileMode::from_permissions(0o644),
            })
            .collect();
        let (bytes, index) = FileIndex::new(entries).encode();
        let path =
            wavecast_site::layout::blob(&index.blake3, wavecast_site::layout::BlobKind::FileIndex);
        std::fs::write(self.dir.path().join(path.as_str()), &bytes).unwrap();
        index
    }

    /// Changes the rollout of release `index` and publishes `serial`.
    fn change_rollout(&mut self, index: usize, serial: u64, change: impl FnOnce(&mut RolloutPlan)) {
        change(&mut self.releases[index].rollout);
        self.publish(serial);
    }

    fn publish(&self, serial: u64) {
        let mut manifest = Manifest {
            format: FORMAT_VERSION,
            product: "demo".into(),
            channel: "stable".parse().unwrap(),
            serial,
            published_at: "2026-11-01T00:00:00Z".parse().unwrap(),
            expires_at: "2026-12-01T00:00:00Z".parse().unwrap(),
            min_client_version: "0.1.0".parse().unwrap(),
            root_version: 1,
            download_hosts: Vec::new(),
            updater: BTreeMap::new(),
            releases: self.releases.clone(),
        };
        manifest.sort_releases();
        let text = String::from_utf8(manifest.to_json()).unwrap();
        let envelope = Envelope::new(text.clone(), vec![sign(&self.pair, text.as_bytes())]);
        std::fs::create_dir_all(self.dir.path().join("channels")).unwrap();
        std::fs::write(
            self.dir.path().join("channels/stable.json"),
            envelope.to_json(),
        )
        .unwrap();
    }

    fn init(&self, root: &Path) -> InitReport {
        Updater::init(
            root,
            InitOptions {
                urls: vec![self.url()],
                trust: self.key.clone().into(),
                channel: "stable".parse().unwrap(),
                platform: "x86_64-unknown-linux-gnu".parse().unwrap(),
                attributes: Attributes::new(),
                download_limits: DownloadLimits::default(),
                expiry_grace: Duration::ZERO,
                force: false,
                product: None,
                offline: true,
                group: None,
            },
            "2026-11-21T12:00:00Z".parse().unwrap(),
        )
        .unwrap()
    }
}

fn now() -> Timestamp {
    NOW.parse().unwrap()
}

#[test]
fn check_install_update_and_status() {
    let mut site = Site::new();
    site.release(
        "1.0.0",
        &[("bin/app", b"one"), ("README", b"read me")],
        10_000,
        1,
    );
    let root = tempfile::tempdir().unwrap();
    let first = site.init(root.path());
    let updater = Updater::open(root.path()).unwrap();

    let report = updater.check(now()).unwrap();
    assert_eq!(report.outcome(), Outcome::Update);
    assert_eq!(report.target().unwrap().version.to_string(), "1.0.0");
    assert!(report.current().is_none());
    let installed = updater.install(&report, now(), &NoReporter).unwrap();
    assert_eq!(installed.tree.outcome, InstallOutcome::Installed);
    assert_eq!(
        std::fs::read(current_file(root.path(), "bin/app")).unwrap(),
        b"one"
    );
    let old_dir = installed.tree.dir.clone();

    assert_eq!(updater.check(now()).unwrap().outcome(), Outcome::UpToDate);

    site.release("1.1.0", &[("bin/app", b"two")], 10_000, 2);
    let report = updater.check(now()).unwrap();
    assert_eq!(report.outcome(), Outcome::Update);
    assert_eq!(report.current().unwrap().version.to_string(), "1.0.0");
    let installed = updater.install(&report, now(), &NoReporter).unwrap();
    assert_eq!(installed.tree.previous.unwrap().to_string(), "1.0.0");
    assert_eq!(
        std::fs::read(current_file(root.path(), "bin/app")).unwrap(),
        b"two"
    );
    assert!(!current_file(root.path(), "README").exists());
    assert!(
        root.path()
            .join("releases")
            .join(&old_dir)
            .join("README")
            .exists()
    );

    let status = updater.status().unwrap();
    assert_eq!(status.current.unwrap().version.to_string(), "1.1.0");
    assert_eq!(status.installed.len(), 2);
    assert_eq!(status.highest_serial, Some(2));
    assert_eq!(status.last_check, Some(now()));
    assert_eq!(status.install_id, first.install_id);

    // A host replaying the older manifest is refused, and the serial stays.
    site.publish(1);
    let error = updater.check(now()).unwrap_err();
    assert!(
        matches!(
            error,
            Error::Net(NetError::Rollback {
                serial: 1,
                highest: 2,
                ..
            })
        ),
        "{error}"
    );
}

#[test]
fn a_dry_run_plans_without_installing_or_downloading_content() {
    let mut site = Site::new();
    site.release(
        "1.0.0",
        &[("app", b"one"), ("README", b"read me")],
        10_000,
        1,
    );
    let root = tempfile::tempdir().unwrap();
    site.init(root.path());
    let updater = Updater::open(root.path()).unwrap();
    updater
        .install(&updater.check(now()).unwrap(), now(), &NoReporter)
        .unwrap();
    site.release("1.1.0", &[("app", b"two"), ("NEWS", b"news")], 10_000, 2);
    let report = updater.check(now()).unwrap();
    let plan = updater.plan(&report).unwrap();
    assert_eq!(plan.version.to_string(), "1.1.0");
    assert!(plan.index_bytes > 0);
    let module = &plan.modules[0];
    // This site has no copy packs.
    assert!(module.use_package);
    assert_eq!(
        module.package_reason,
        Some(crate::install::plan::PackageReason::NoFileCopies)
    );
    assert_eq!(plan.download_bytes, module.package_bytes);
    let removed: Vec<&str> = module.removed.iter().map(|path| path.as_str()).collect();
    assert_eq!(removed, ["README"]);
    assert_eq!(
        updater.current().unwrap().unwrap().version.to_string(),
        "1.0.0"
    );
    let cached: Vec<String> = std::fs::read_dir(root.path().join(".wavecast/cache"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let document = &report.target().unwrap().platforms["any"].blake3;
    assert_eq!(
        cached,
        [document.to_string()],
        "a dry run downloads the release's document, no package"
    );

    let installed = updater.install(&report, now(), &NoReporter).unwrap();
    assert_eq!(installed.tree.planned_bytes, module.package_bytes);
    assert_eq!(
        installed.tree.downloaded_bytes, module.package_bytes,
        "the index was cached by the dry run"
    );
    assert!(installed.tree.pruned_bytes >= module.package_bytes);
    assert!(matches!(
        updater.plan(&updater.check(now()).unwrap()),
        Err(Error::NothingToInstall)
    ));
}

#[test]
fn a_first_install_that_fails_its_health_check_leaves_nothing_current() {
    let mut site = Site::new();
    site.release("1.0.0", &[("app", b"one")], 10_000, 1);
    let root = tempfile::tempdir().unwrap();
    site.init(root.path());
    let check = |command: &str| HealthCheck {
        command: command.into(),
        timeout: Duration::from_secs(10),
    };
    let failing = shell("cat app; exit 7", "type app& exit 7");
    let updater = Updater::open(root.path())
        .unwrap()
        .with_health_check(check(failing));
    let error = updater
        .install(&updater.check(now()).unwrap(), now(), &NoReporter)
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "1.0.0 failed its health check `{failing}`: it exited with status 7; removed `current`, as no release was current before it, and marked 1.0.0 bad (`wavecast-update unmark 1.0.0` clears the mark)"
        )
    );
    let Error::Lifecycle(LifecycleError::HealthCheckFailed(failure)) = error else {
        panic!("not a health check failure");
    };
    assert_eq!(failure.rolled_back_to, None);
    assert_eq!(failure.report.status, HealthStatus::Exited(7));
    assert_eq!(failure.report.output, "one");
    assert_eq!(failure.pruned.len(), 1, "the bad tree is deleted");
    assert!(std::fs::symlink_metadata(root.path().join("current")).is_err());
    assert!(updater.current().unwrap().is_none());
    let status = updater.status().unwrap();
    assert!(status.installed.is_empty() && status.trial.is_none());
    assert_eq!(status.bad_releases[0].reason, BadReason::HealthCheckFailed);

    // Nothing else is offered, and the bad release is named as skipped.
    let report = updater.check(now()).unwrap();
    assert_eq!(report.outcome(), Outcome::UpToDate);
    assert_eq!(report.skipped()[0].version.to_string(), "1.0.0");

    // A newer release is installed and kept when its check passes.
    site.release("1.1.0", &[("app", b"two")], 10_000, 2);
    let updater = updater.with_health_check(check(shell(
        "grep -q two app",
        "for /f %l in (app) do @if not %l==two exit 1",
    )));
    let installed = updater
        .install(&updater.check(now()).unwrap(), now(), &NoReporter)
        .unwrap();
    assert_eq!(installed.tree.previous, None);
    assert_eq!(installed.health_check.unwrap().status, HealthStatus::Passed);
    let status = updater.status().unwrap();
    assert_eq!(status.current.unwrap().version.to_string(), "1.1.0");
    assert_eq!(
        status.trial.unwrap().fallback,
        None,
        "nothing to fall back to"
    );
    assert_eq!(
        std::fs::read(current_file(root.path(), "app")).unwrap(),
        b"two"
    );
}

#[test]
fn init_twice_needs_force_and_keeps_the_install_id() {
    let site = Site::new();
    let root = tempfile::tempdir().unwrap();
    let first = site.init(root.path());
    assert!(!first.kept_state);
    let options = |force| InitOptions {
        urls: vec![BaseUrl::parse("https://example.com/other").unwrap()],
        trust: site.key.clone().into(),
        channel: "beta".parse().unwrap(),
        platform: "any".parse().unwrap(),
        attributes: Attributes::new(),
        download_limits: DownloadLimits::default(),
        expiry_grace: Duration::ZERO,
        force,
        product: None,
        offline: true,
        group: None,
    };
    let error = Updater::init(root.path(), options(false), now()).unwrap_err();
    assert!(
        matches!(error, Error::Store(StoreError::AlreadyInitialized { .. })),
        "{error}"
    );
    let second = Updater::init(root.path(), options(true), now()).unwrap();
    assert!(second.reconfigured && second.kept_state);
    assert_eq!(second.install_id, first.install_id);
    let updater = Updater::open(root.path()).unwrap();
    assert_eq!(updater.config().channel.as_str(), "beta");

    std::fs::write(root.path().join(".wavecast/state.json"), b"garbage").unwrap();
    let error = Updater::init(root.path(), options(true), now()).unwrap_err();
    assert!(
        matches!(error, Error::Store(StoreError::ParseState { .. })),
        "{error}"
    );
    assert_eq!(
        std::fs::read(root.path().join(".wavecast/state.json")).unwrap(),
        b"garbage"
    );
}

#[test]
fn a_failed_install_leaves_the_current_release_and_no_staging() {
    let mut site = Site::new();
    site.release("1.0.0", &[("app", b"one")], 10_000, 1);
    let root = tempfile::tempdir().unwrap();
    site.init(root.path());
    let updater = Updater::open(root.path()).unwrap();
    updater
        .install(&updater.check(now()).unwrap(), now(), &NoReporter)
        .unwrap();

    // 1.1.0's package holds a hard link: the unpack fails after the download.
    let hostile = package(&[
        Raw("app", tar::EntryType::Regular, 0o644, b"two"),
        Raw("link", tar::EntryType::Link, 0o644, b"app"),
    ]);
    site.release_packaged("1.1.0", &[("app", b"two")], hostile, 10_000, 3);

    let report = updater.check(now()).unwrap();
    let error = updater.install(&report, now(), &NoReporter).unwrap_err();
    assert!(
        matches!(error, Error::Install(InstallError::UnsupportedEntry { .. })),
        "{error}"
    );
    assert_eq!(
        std::fs::read(current_file(root.path(), "app")).unwrap(),
        b"one"
    );
    assert_eq!(
        updater.current().unwrap().unwrap().version.to_string(),
        "1.0.0"
    );
    let names: Vec<String> = std::fs::read_dir(root.path().join("releases"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    assert_eq!(
        updater.status().unwrap().interrupted,
        None,
        "the build was undone"
    );
}

#[test]
fn a_client_outside_the_rollout_is_deferred() {
    let mut site = Site::new();
    site.release("1.0.0", &[("app", b"one")], 0, 1);
    let root = tempfile::tempdir().unwrap();
    site.init(root.path());
    let updater = Updater::open(root.path()).unwrap();
    let report = updater.check(now()).unwrap();
    assert_eq!(report.outcome(), Outcome::Deferred);
    assert_eq!(report.rollout().unwrap().threshold.get(), 0);
    assert!(matches!(
        updater.install(&report, now(), &NoReporter),
        Err(Error::NothingToInstall)
    ));
}

fn attributes(pairs: &[(&str, &str)]) -> Attributes {
    pairs
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect()
}

fn rule(text: &str) -> Rule {
    text.parse().unwrap()
}

/// A root with 1.0.0 (`app` = `one`) installed from a site of its own.
fn installed_one() -> (Site, tempfile::TempDir, Updater) {
    let mut site = Site::new();
    site.release("1.0.0", &[("app", b"one")], 10_000, 1);
    let root = tempfile::tempdir().unwrap();
    site.init(root.path());
    let updater = Updater::open(root.path()).unwrap();
    updater
        .install(&updater.check(now()).unwrap(), now(), &NoReporter)
        .unwrap();
    (site, root, updater)
}

/// A root with 1.0.0 installed and 2.0.0 published at 0 %.
fn installed_with_newer_at_zero() -> (Site, tempfile::TempDir, Updater) {
    let (mut site, root, updater) = installed_one();
    site.release("2.0.0", &[("app", b"two")], 0, 2);
    (site, root, updater)
}

#[test]
fn configured_attributes_feed_rules_and_a_check_can_override_them() {
    let (mut site, _root, mut updater) = installed_with_newer_at_zero();
    site.change_rollout(1, 3, |plan| {
        plan.rules = vec![rule("eu: region = eu -> 100%")];
    });
    let report = updater.check(now()).unwrap();
    assert_eq!(report.outcome(), Outcome::Deferred);
    assert!(report.rule().is_none());

    let changed = updater
        .reconfigure(&ConfigChange {
            set_attributes: attributes(&[("region", "eu")]),
            ..ConfigChange::default()
        })
        .unwrap();
    assert!(changed);
    let reopened = Updater::open(updater.root().path()).unwrap();
    assert_eq!(
        reopened.config().attributes,
        attributes(&[("region", "eu")])
    );
    let report = reopened.check(now()).unwrap();
    assert_eq!(report.outcome(), Outcome::Update);
    assert_eq!(report.rule().unwrap().name, "eu");
    assert_eq!(report.attributes(), &attributes(&[("region", "eu")]));

    let options = CheckOptions {
        attributes: attributes(&[("region", "us")]),
        ..CheckOptions::default()
    };
    let report = updater.check_with(now(), &options).unwrap();
    assert_eq!(report.outcome(), Outcome::Deferred, "the check's own win");
    assert_eq!(report.attributes(), &attributes(&[("region", "us")]));

    let unset = ConfigChange {
        unset_attributes: ["region".to_owned()].into(),
        ..ConfigChange::default()
    };
    assert!(updater.reconfigure(&unset).unwrap());
    assert!(
        !updater.reconfigure(&unset).unwrap(),
        "nothing left to unset"
    );
    assert_eq!(updater.check(now()).unwrap().outcome(), Outcome::Deferred);

    let bad = CheckOptions {
        attributes: attributes(&[("bad key", "x")]),
        ..CheckOptions::default()
    };
    assert!(matches!(
        updater.check_with(now(), &bad),
        Err(Error::Store(StoreError::InvalidAttributeKey { .. }))
    ));
}

#[test]
fn manual_mode_skips_the_share_but_not_a_pause_or_an_excluding_rule() {
    let (mut site, _root, updater) = installed_with_newer_at_zero();
    let manual = CheckOptions {
        mode: Mode::Manual,
        ..CheckOptions::default()
    };
    let report = updater.check_with(now(), &manual).unwrap();
    assert_eq!(report.outcome(), Outcome::Update);
    assert_eq!(report.mode(), Mode::Manual);
    assert!(!report.mandatory());

    site.change_rollout(1, 3, |plan| plan.paused_at = Some(now()));
    let report = updater.check_with(now(), &manual).unwrap();
    assert_eq!(report.outcome(), Outcome::Deferred);
    assert_eq!(report.exclusion(), Some(Exclusion::Paused));

    site.change_rollout(1, 4, |plan| {
        plan.paused_at = None;
        plan.rules = vec![rule("nobody: -> exclude")];
    });
    let report = updater.check_with(now(), &manual).unwrap();
    assert_eq!(report.exclusion(), Some(Exclusion::Rule));
    assert_eq!(report.rule().unwrap().name, "nobody");
}

#[test]
fn a_mandatory_rule_is_reported_with_its_name() {
    let (mut site, _root, updater) = installed_with_newer_at_zero();
    site.change_rollout(1, 3, |plan| {
        plan.rules = vec![rule("legacy: from < 2.0 -> mandatory")];
    });
    let report = updater.check(now()).unwrap();
    assert_eq!(report.outcome(), Outcome::Update);
    assert!(report.mandatory());
    assert_eq!(report.rule().unwrap().name, "legacy");
    assert!(!report.is_downgrade());
    assert_eq!(report.withdrawn(), None);
}

#[test]
fn a_yanked_release_moves_back_to_the_kept_tree_without_downloading() {
    let mut site = Site::new();
    site.release("1.0.0", &[("app", b"one")], 10_000, 1);
    let root = tempfile::tempdir().unwrap();
    site.init(root.path());
    let updater = Updater::open(root.path()).unwrap();
    let install = |updater: &Updater| {
        updater
            .install(&updater.check(now()).unwrap(), now(), &NoReporter)
            .unwrap()
    };
    let old = install(&updater);
    site.release("1.1.0", &[("app", b"two")], 10_000, 2);
    let new = install(&updater);
    assert_eq!(new.tree.outcome, InstallOutcome::Installed);

    site.change_rollout(1, 3, |plan| plan.yanked = true);
    let report = updater.check(now()).unwrap();
    assert_eq!(report.outcome(), Outcome::Update);
    assert_eq!(report.target().unwrap().version.to_string(), "1.0.0");
    assert_eq!(report.withdrawn(), Some(Withdrawal::Yanked));
    assert!(report.is_downgrade());

    // Without packages on the site or in the cache, only the kept tree can serve.
    std::fs::remove_dir_all(root.path().join(".wavecast/cache")).unwrap();
    for entry in std::fs::read_dir(site.dir.path().join("blobs")).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().ends_with(".tar.gz") {
            std::fs::remove_file(path).unwrap();
        }
    }
    let moved = updater.install(&report, now(), &NoReporter).unwrap();
    assert_eq!(moved.tree.outcome, InstallOutcome::Reused);
    assert_eq!(moved.tree.dir, old.tree.dir);
    assert_eq!(moved.tree.previous.unwrap().to_string(), "1.1.0");
    assert_eq!(
        std::fs::read(current_file(root.path(), "app")).unwrap(),
        b"one"
    );
    assert_eq!(updater.check(now()).unwrap().outcome(), Outcome::UpToDate);
}

#[test]
fn a_kept_tree_that_changed_is_installed_afresh() {
    let mut site = Site::new();
    site.release("1.0.0", &[("app", b"one")], 10_000, 1);
    let root = tempfile::tempdir().unwrap();
    site.init(root.path());
    let updater = Updater::open(root.path()).unwrap();
    let old = updater
        .install(&updater.check(now()).unwrap(), now(), &NoReporter)
        .unwrap();
    site.release("1.1.0", &[("app", b"two")], 10_000, 2);
    updater
        .install(&updater.check(now()).unwrap(), now(), &NoReporter)
        .unwrap();
    let kept = root.path().join("releases").join(&old.tree.dir).join("app");
    std::fs::write(&kept, b"tampered").unwrap();

    site.change_rollout(1, 3, |plan| plan.yanked = true);
    let report = updater.check(now()).unwrap();
    let moved = updater.install(&report, now(), &NoReporter).unwrap();
    assert_eq!(moved.tree.outcome, InstallOutcome::Installed);
    assert_eq!(moved.tree.dir, old.tree.dir);
    assert_eq!(
        std::fs::read(current_file(root.path(), "app")).unwrap(),
        b"one"
    );
}

#[test]
fn reconfigure_switches_the_channel_and_refuses_bad_names() {
    let site = Site::new();
    let root = tempfile::tempdir().unwrap();
    site.init(root.path());
    let mut updater = Updater::open(root.path()).unwrap();
    let change = ConfigChange {
        channel: Some("beta".parse().unwrap()),
        ..ConfigChange::default()
    };
    assert!(updater.reconfigure(&change).unwrap());
    assert!(!updater.reconfigure(&change).unwrap());
    assert_eq!(updater.config().channel.as_str(), "beta");
    assert_eq!(
        Updater::open(root.path())
            .unwrap()
            .config()
            .channel
            .as_str(),
        "beta"
    );
    let bad = ConfigChange {
        set_attributes: attributes(&[("a/b", "c")]),
        ..ConfigChange::default()
    };
    assert!(matches!(
        updater.reconfigure(&bad),
        Err(Error::Store(StoreError::InvalidAttributeKey { .. }))
    ));
}

/// The content of `app` in the current release of `root`.
fn current_app(root: &Path) -> Vec<u8> {
    std::fs::read(current_file(root, "app")).unwrap()
}

/// 1.0.0 installed from a site that now also has 1.1.0, which is staged.
fn with_1_1_staged() -> (Site, tempfile::TempDir, Updater, InstallReport) {
    let (mut site, root, updater) = installed_one();
    site.release("1.1.0", &[("app", b"two")], 10_000, 2);
    let staged = updater
        .stage(&updater.check(now()).unwrap(), now(), &NoReporter)
        .unwrap();
    (site, root, updater, staged)
}

#[test]
fn a_staged_release_waits_beside_the_running_one_and_applies_without_the_network() {
    let (site, root, updater, staged) = with_1_1_staged();
    assert_eq!(staged.tree.outcome, InstallOutcome::Installed);
    assert_eq!(staged.tree.version.to_string(), "1.1.0");
    assert_eq!(current_app(root.path()), b"one", "current did not move");
    let tree = root.path().join("releases").join(&staged.tree.dir);
    assert_eq!(std::fs::read(tree.join("app")).unwrap(), b"two");
    let state = updater.load_state().unwrap();
    assert_eq!(state.staged.as_ref().unwrap().dir, staged.tree.dir);
    assert!(state.trial.is_none() || state.trial.as_ref().unwrap().version.to_string() == "1.0.0");

    // Staging it again reuses the tree.
    let again = updater
        .stage(&updater.check(now()).unwrap(), now(), &NoReporter)
        .unwrap();
    assert_eq!(again.tree.outcome, InstallOutcome::Reused);

    // With the site gone, applying it needs nothing but the disk.
    std::fs::remove_dir_all(site.dir.path().join("blobs")).unwrap();
    let applied = updater.apply(now(), &NoReporter).unwrap().unwrap();
    assert_eq!(applied.tree.outcome, InstallOutcome::Reused);
    assert_eq!(applied.tree.previous.unwrap().to_string(), "1.0.0");
    assert_eq!(current_app(root.path()), b"two");
    let state = updater.load_state().unwrap();
    assert!(state.staged.is_none());
    assert_eq!(state.trial.unwrap().version.to_string(), "1.1.0");
    assert!(updater.apply(now(), &NoReporter).unwrap().is_none());
}

#[test]
fn the_next_launch_applies_the_staged_release_and_counts_as_its_first() {
    let (_site, root, updater, staged) = with_1_1_staged();
    let launch = updater.launched(now()).unwrap();
    let applied = launch
        .applied
        .expect("the launch applied the staged release");
    assert_eq!(applied.tree.dir, staged.tree.dir);
    assert_eq!(launch.release.version.to_string(), "1.1.0");
    assert!(
        matches!(launch.outcome, LaunchOutcome::Counted { launches: 1, .. }),
        "{:?}",
        launch.outcome
    );
    assert_eq!(current_app(root.path()), b"two");
    assert!(updater.launched(now()).unwrap().applied.is_none());
}

#[test]
fn a_staged_release_that_cannot_be_applied_stays_staged_and_current_stays() {
    let (site, root, updater, staged) = with_1_1_staged();
    // Its tree changed on disk and the site is gone: it cannot be rebuilt.
    let tree = root.path().join("releases").join(&staged.tree.dir);
    std::fs::write(tree.join("app"), b"tampered").unwrap();
    std::fs::remove_dir_all(site.dir.path().join("blobs")).unwrap();
    assert!(updater.apply(now(), &NoReporter).is_err());
    assert_eq!(current_app(root.path()), b"one");
    let state = updater.load_state().unwrap();
    assert_eq!(state.staged.unwrap().dir, staged.tree.dir);
}

#[test]
fn an_install_replaces_the_staged_release_and_pruning_keeps_a_staged_tree() {
    let (mut site, root, updater, staged) = with_1_1_staged();
    // Two installs later nothing but the staged tree's record is older, yet a prune
    // after staging never removes it while it is staged.
    let kept = root.path().join("releases").join(&staged.tree.dir);
    assert!(kept.exists());
    site.release("1.2.0", &[("app", b"three")], 10_000, 3);
    updater
        .install(&updater.check(now()).unwrap(), now(), &NoReporter)
        .unwrap();
    assert_eq!(current_app(root.path()), b"three");
    assert!(updater.load_state().unwrap().staged.is_none());
    assert!(updater.apply(now(), &NoReporter).unwrap().is_none());
    assert_eq!(current_app(root.path()), b"three");
}

#[test]
fn a_release_with_an_image_cannot_be_staged() {
    let (mut site, root, updater, staged) = with_1_1_staged();
    site.release_of_kind(
        "2.0.0",
        &[("image", b"a root file system")],
        b"image bytes".to_vec(),
        wavecast_schema::ModuleKind::Image,
        10_000,
        3,
    );
    let error = updater
        .stage(&updater.check(now()).unwrap(), now(), &NoReporter)
        .unwrap_err();
    assert!(
        matches!(&error, Error::StageImage { version } if version.to_string() == "2.0.0"),
        "{error}"
    );
    assert!(error.is_configuration());
    assert_eq!(current_app(root.path()), b"one");
    let state = updater.load_state().unwrap();
    assert_eq!(
        state.staged.unwrap().dir,
        staged.tree.dir,
        "1.1.0 stays staged"
    );
}
