//! Updating the client itself: when a channel's manifest needs a newer
//! `wavecast-update` than the one running, the client replaces its own executable
//! with the build the manifest offers for its platform, before anything else.
//!
//! [`Updater::check_client`] fetches the manifest with every check but the client
//! floor (signature, channel, expiry, serial) and says what it offers
//! ([`ClientCheck`]). [`Updater::self_update`] then installs the offered build over
//! the running executable:
//!
//! 1. a staging directory is made beside the executable (same file system, so the
//!    last step is a rename; a directory this user cannot write to fails here,
//!    before any download);
//! 2. the package is downloaded into the root's download cache like any module
//!    package (hosts in order, limits, resume, size and blake3 checked) and unpacked
//!    into the staging directory, which must then hold exactly
//!    [`UPDATER_EXECUTABLE`];
//! 3. the new executable gets the old one's permission bits and is flushed to disk;
//! 4. it is run with `--version` (at most [`PROBE_TIMEOUT`]) and must report the
//!    version the manifest offers it as, so a build that does not run here, or is
//!    not what it claims, never replaces a working client;
//! 5. the old executable is kept as `<name>.old` (a hard link, else a copy), the new
//!    one is renamed over it (Unix lets a running executable be replaced this way)
//!    and the directory is flushed.
//!
//! Any failure before step 5 leaves the executable untouched. The updater packages
//! are independent of the releases, so a broken application package never blocks
//! this. Restarting the process on the new executable is up to the caller
//! (`wavecast-update` re-executes itself with the same arguments).

use std::io::{self, Read as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use semver::Version;
use wavecast_schema::{
    ClientUpdate, Manifest, ModuleName, PackageFormat, Platform, UPDATER_EXECUTABLE, UpdaterBuild,
    client_update,
};

use crate::build_info::{BUILD_PLATFORM, client_version};
use crate::error::{Error, InstallError, NetError, Result, StoreError};
use crate::install::reporter::{Phase, Reporter, Tracker};
use crate::install::unpack::unpack_module;
use crate::net::manifest::{Expectations, fetch_manifest};
use crate::net::url::BaseUrl;
use crate::store::root::sync_dir;
use crate::updater::Updater;

/// How long the downloaded executable may take to answer `--version`: 30 s.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

/// What a manifest offers the running client: the build for [`BUILD_PLATFORM`] (the
/// platform this client was compiled for, whatever platform it installs releases
/// for), if any, and whether the client must, may or cannot update itself to it.
pub fn offered_to_this_client(manifest: &Manifest) -> (ClientUpdate, Option<&UpdaterBuild>) {
    let offered = BUILD_PLATFORM
        .parse::<Platform>()
        .ok()
        .and_then(|platform| manifest.updater.get(&platform));
    let status = client_update(
        &manifest.min_client_version,
        &client_version(),
        offered.map(|build| &build.version),
    );
    (status, offered)
}

/// What the site offers the running client, from [`Updater::check_client`].
#[derive(Debug, Clone)]
pub struct ClientCheck {
    status: ClientUpdate,
    running: Version,
    required: Version,
    offered: Option<UpdaterBuild>,
    manifest_url: String,
    download_hosts: Vec<BaseUrl>,
}

impl ClientCheck {
    /// Whether the client must, may or cannot update itself.
    pub fn status(&self) -> ClientUpdate {
        self.status
    }

    /// The running client's version ([`crate::CLIENT_VERSION`]).
    pub fn running(&self) -> &Version {
        &self.running
    }

    /// The manifest's `min_client_version`.
    pub fn required(&self) -> &Version {
        &self.required
    }

    /// The build offered for this client's platform, if any.
    pub fn offered(&self) -> Option<&UpdaterBuild> {
        self.offered.as_ref()
    }

    /// The URL of the manifest checked.
    pub fn manifest_url(&self) -> &str {
        &self.manifest_url
    }
}

/// What [`Updater::self_update`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelfUpdateReport {
    /// The version replaced.
    pub from: Version,
    /// The version installed.
    pub to: Version,
    /// The executable replaced.
    pub executable: PathBuf,
    /// Where the old executable was kept: the executable's path with `.old` added.
    pub previous: PathBuf,
    /// Bytes received over the network (0 when the package was in the cache).
    pub downloaded_bytes: u64,
}

impl Updater {
    /// Fetches and verifies the channel manifest like [`check`](Self::check), except
    /// that a manifest needing a newer client is accepted, and says what it offers
    /// this client for itself. Nothing is recorded in the state: the next check
    /// records the serial.
    ///
    /// # Errors
    ///
    /// The manifest errors of [`check`](Self::check) (but never
    /// [`NetError::ClientTooOld`]), and state errors.
    pub fn check_client(&self, now: Timestamp) -> Result<ClientCheck> {
        let state = self.load_state()?;
        let config = self.config();
        let trusted_root = self.trusted_root(&state);
        let expect = Expectations {
            root: &trusted_root,
            channel: &config.channel,
            product: config.product.as_deref(),
            highest_serial: state.highest_serial(&config.channel),
            now,
            expiry_grace: config.expiry_grace,
            limits: config.download_limits,
            client_floor: false,
        };
        let mut first_error = None;
        for base in &config.urls {
            match fetch_manifest(self.transport(), base, &expect, None) {
                Ok(fetched) => {
                    let (status, offered) = offered_to_this_client(&fetched.manifest);
                    return Ok(ClientCheck {
                        status,
                        running: client_version(),
                        required: fetched.manifest.min_client_version.clone(),
                        offered: offered.cloned(),
                        download_hosts: self.download_hosts(&fetched.manifest, base),
                        manifest_url: fetched.url,
                    });
                }
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        Err(match first_error {
            Some(error) => error.into(),
            None => StoreError::NoUrls {
                path: self.root().config(),
            }
            .into(),
        })
    }

    /// Replaces `executable` (normally [`std::env::current_exe`]) with the build
    /// `check` offers, when the client must or may update itself: downloaded and
    /// verified into the cache, unpacked beside the executable, run once to check the
    /// version it reports, then renamed over it (the old one kept as `<name>.old`).
    /// Returns `None` when the client is up
    /// to date. Holds the root's lock while it runs, for the download cache.
    ///
    /// # Errors
    ///
    /// [`NetError::ClientTooOld`] when the client is below the floor and no build
    /// reaches it; [`Error::ExecutableNotWritable`]; download and unpacking errors;
    /// [`Error::UpdaterPackage`], [`Error::RunUpdater`], [`Error::UpdaterMisbehaved`]
    /// or [`Error::UpdaterVersionMismatch`] for a build that is not a working client
    /// of the version offered; [`Error::ReplaceExecutable`]; [`StoreError::Locked`]. In
    /// every case but the last step's failure, `executable` is untouched.
    pub fn self_update(
        &self,
        check: &ClientCheck,
        executable: &Path,
        reporter: &dyn Reporter,
    ) -> Result<Option<SelfUpdateReport>> {
        let build = match (check.status, &check.offered) {
            (ClientUpdate::UpToDate, _) => return Ok(None),
            (ClientUpdate::Available | ClientUpdate::Required, Some(build)) => build,
            _ => {
                return Err(NetError::ClientTooOld {
                    url: check.manifest_url.clone(),
                    required: check.required.clone(),
                    running: check.running.clone(),
                }
                .into());
            }
        };
        let dir = match executable.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let not_writable = |source| Error::ExecutableNotWritable {
            executable: executable.to_owned(),
            dir: dir.to_owned(),
            source,
        };
        let staging = tempfile::Builder::new()
            .prefix(".wavecast-update-")
            .tempdir_in(dir)
            .map_err(not_writable)?;
        let _lock = self.lock()?;
        let reporter = &Tracker::new(reporter);
        reporter.expect(build.package.size);
        reporter.phase(Phase::Downloading);
        let module: ModuleName = UPDATER_EXECUTABLE
            .parse()
            .expect("`wavecast-update` is a valid module name");
        let cache = self.cache(&check.download_hosts, reporter)?;
        // Builds of the client are tar.gz, which every client reads.
        let package = cache.package(&module, &build.package, PackageFormat::TarGz)?;
        let unpacked = staging.path().join("unpacked");
        crate::store::root::create_dir_all(&unpacked)?;
        unpack_module(
            &package,
            PackageFormat::TarGz,
            &module,
            build.unpacked_size,
            &unpacked,
        )?;
        let new = only_executable(
            &unpacked,
            &cache.url(&wavecast_site::layout::blob(
                &build.package.blake3,
                wavecast_site::layout::BlobKind::Package,
            )),
        )?;

        let replace_error = |action, path: &Path| {
            let path = path.to_owned();
            move |source| Error::ReplaceExecutable {
                action,
                path,
                source,
            }
        };
        let metadata = std::fs::metadata(executable)
            .map_err(replace_error("read the permissions of", executable))?;
        if let Some(mode) = crate::platform::raw_mode(&metadata) {
            crate::platform::set_mode(&new, mode & 0o7777)
                .map_err(replace_error("set the permissions of", &new))?;
        }
        crate::platform::sync_file(&new).map_err(replace_error("flush", &new))?;
        probe(&new, &build.version)?;
        reporter.phase(Phase::Switching);

        let previous = with_suffix(executable, ".old");
        #[cfg(unix)]
        {
            let kept = staging.path().join("previous");
            std::fs::hard_link(executable, &kept)
                .or_else(|_| std::fs::copy(executable, &kept).map(drop))
                .and_then(|()| std::fs::rename(&kept, &previous))
                .map_err(replace_error("keep the old executable as", &previous))?;
            std::fs::rename(&new, executable).map_err(replace_error("replace", executable))?;
        }
        // A running `.exe` can be neither replaced nor deleted on Windows, but it can
        // be renamed: it becomes the kept previous executable, and the new one takes
        // its name. If that fails, the old one gets its name back.
        #[cfg(windows)]
        {
            let _ = std::fs::remove_file(&previous);
            std::fs::rename(executable, &previous)
                .map_err(replace_error("keep the old executable as", &previous))?;
            if let Err(source) = std::fs::rename(&new, executable) {
                let _ = std::fs::rename(&previous, executable);
                return Err(replace_error("replace", executable)(source));
            }
        }
        sync_dir(dir).map_err(replace_error("flush the directory", dir))?;
        // The package is not needed again; the next install's prune would remove it.
        let _ = std::fs::remove_file(&package);
        Ok(Some(SelfUpdateReport {
            from: check.running.clone(),
            to: build.version.clone(),
            executable: executable.to_owned(),
            previous,
            downloaded_bytes: cache.received(),
        }))
    }
}

/// The path of the one regular file [`UPDATER_EXECUTABLE`] in `unpacked`, which must
/// hold nothing else.
fn only_executable(unpacked: &Path, url: &str) -> Result<PathBuf> {
    let read_error = |source| InstallError::Unpack {
        path: unpacked.to_owned(),
        source,
    };
    let mut names: Vec<String> = std::fs::read_dir(unpacked)
        .map_err(read_error)?
        .map(|entry| entry.map(|entry| entry.file_name().to_string_lossy().into_owned()))
        .collect::<io::Result<_>>()
        .map_err(read_error)?;
    names.sort();
    let path = unpacked.join(UPDATER_EXECUTABLE);
    // A regular file, not a link to one: the executable is replaced by what is here.
    let is_file = std::fs::symlink_metadata(&path).is_ok_and(|metadata| metadata.is_file());
    if names != [UPDATER_EXECUTABLE] || !is_file {
        let found = if names.is_empty() {
            "nothing".to_owned()
        } else {
            names
                .iter()
                .map(|name| format!("`{name}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Err(Error::UpdaterPackage {
            url: url.to_owned(),
            found,
        });
    }
    Ok(path)
}

/// `path` with `suffix` added to its file name.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(suffix);
    path.with_file_name(name)
}

/// Runs `executable --version` (for at most [`PROBE_TIMEOUT`]) and checks that it
/// prints `wavecast-update <expected>`.
fn probe(executable: &Path, expected: &Version) -> Result<()> {
    let misbehaved = |problem: String| Error::UpdaterMisbehaved {
        path: executable.to_owned(),
        problem,
    };
    let mut child = spawn(
        Command::new(executable)
            .arg("--version")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null()),
    )
    .map_err(|source| Error::RunUpdater {
        path: executable.to_owned(),
        source,
    })?;
    let deadline = Instant::now() + PROBE_TIMEOUT;
    let wait_error = |source| Error::RunUpdater {
        path: executable.to_owned(),
        source,
    };
    let status = loop {
        if let Some(status) = child.try_wait().map_err(wait_error)? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(misbehaved(format!(
                "did not answer `--version` within {}s",
                PROBE_TIMEOUT.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut output = String::new();
    if let Some(stdout) = child.stdout.take() {
        // A version line is short; more than this is not a wavecast-update answering.
        let _ = stdout.take(4096).read_to_string(&mut output);
    }
    if !status.success() {
        return Err(misbehaved(format!("exited with {status} on `--version`")));
    }
    let reported = output
        .trim()
        .strip_prefix("wavecast-update ")
        .and_then(|version| Version::parse(version).ok())
        .ok_or_else(|| {
            misbehaved(format!(
                "answered `--version` with `{}`, not `wavecast-update <version>`",
                output.trim()
            ))
        })?;
    if &reported != expected {
        return Err(Error::UpdaterVersionMismatch {
            path: executable.to_owned(),
            reported,
            expected: expected.clone(),
        });
    }
    Ok(())
}

/// Starts `command`, trying again for up to a second while the executable is busy
/// (`ETXTBSY`: another thread's fork may briefly hold a descriptor of a file just
/// written).
fn spawn(command: &mut Command) -> io::Result<std::process::Child> {
    let mut attempts = 0;
    loop {
        match command.spawn() {
            Err(error) if error.kind() == io::ErrorKind::ExecutableFileBusy && attempts < 20 => {
                attempts += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            result => return result,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use wavecast_schema::{Attributes, Blake3Hash, Blob, Envelope, FORMAT_VERSION};

    use super::*;
    use crate::install::reporter::NoReporter;
    use crate::install::unpack::tests::{Raw, package};
    use crate::net::limits::DownloadLimits;
    use crate::net::trust::tests::{keypair, sign};
    use crate::updater::init::InitOptions;

    /// A site offering a client build, an install root following it, and a folder
    /// holding the "running" client: a script that reports the running version.
    struct Fixture {
        site: tempfile::TempDir,
        /// The install root's folder, kept while the updater works in it.
        _root: tempfile::TempDir,
        bin: tempfile::TempDir,
        pair: minisign::KeyPair,
        updater: Updater,
    }

    /// A client script that answers `--version` with `version`: a shell script, which
    /// only Unix runs as an executable (Windows runs only programs, PE files, under the
    /// name `wavecast-update`), so the tests that probe one are Unix only.
    fn client_script(version: &Version) -> String {
        format!("#!/bin/sh\necho 'wavecast-update {version}'\n")
    }

    /// One major version above the running client.
    fn next() -> Version {
        Version::new(client_version().major + 1, 0, 0)
    }

    impl Fixture {
        fn new() -> Self {
            let (pair, key) = keypair();
            let (site, root, bin) = (
                tempfile::tempdir().unwrap(),
                tempfile::tempdir().unwrap(),
                tempfile::tempdir().unwrap(),
            );
            Updater::init(
                root.path(),
                InitOptions {
                    urls: vec![BaseUrl::parse(site.path().to_str().unwrap()).unwrap()],
                    trust: key.into(),
                    channel: "stable".parse().unwrap(),
                    platform: "any".parse().unwrap(),
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
            .unwrap();
            let updater = Updater::open(root.path()).unwrap();
            let executable = bin.path().join("wavecast-update");
            std::fs::write(&executable, client_script(&client_version())).unwrap();
            crate::platform::set_mode(&executable, 0o750).unwrap();
            Self {
                site,
                _root: root,
                bin,
                pair,
                updater,
            }
        }

        fn executable(&self) -> PathBuf {
            self.bin.path().join("wavecast-update")
        }

        /// Publishes a manifest requiring `floor`, offering for this platform a build
        /// of `version` whose package holds `entries`.
        fn publish(&self, floor: &Version, build: Option<(&Version, &[Raw<'_>])>) {
            let mut updater = BTreeMap::new();
            if let Some((version, entries)) = build {
                let bytes = package(entries);
                let blake3 = Blake3Hash::of(&bytes);
                let path =
                    wavecast_site::layout::blob(&blake3, wavecast_site::layout::BlobKind::Package);
                std::fs::create_dir_all(self.site.path().join("blobs")).unwrap();
                std::fs::write(self.site.path().join(path.as_str()), &bytes).unwrap();
                let unpacked_size = entries.iter().map(|raw| raw.3.len() as u64).sum();
                updater.insert(
                    BUILD_PLATFORM.parse().unwrap(),
                    UpdaterBuild {
                        version: version.clone(),
                        package: Blob {
                            size: bytes.len() as u64,
                            blake3,
                        },
                        unpacked_size,
                    },
                );
            }
            let manifest = Manifest {
                format: FORMAT_VERSION,
                product: "demo".into(),
                channel: "stable".parse().unwrap(),
                serial: 1,
                published_at: "2026-11-01T00:00:00Z".parse().unwrap(),
                expires_at: "2026-12-01T00:00:00Z".parse().unwrap(),
                min_client_version: floor.clone(),
                root_version: 1,
                download_hosts: Vec::new(),
                updater,
                releases: Vec::new(),
            };
            let text = String::from_utf8(manifest.to_json()).unwrap();
            let envelope = Envelope::new(text.clone(), vec![sign(&self.pair, text.as_bytes())]);
            std::fs::create_dir_all(self.site.path().join("channels")).unwrap();
            std::fs::write(
                self.site.path().join("channels/stable.json"),
                envelope.to_json(),
            )
            .unwrap();
        }

        fn self_update(&self, executable: &Path) -> Result<Option<SelfUpdateReport>> {
            let check = self
                .updater
                .check_client("2026-11-21T12:00:00Z".parse().unwrap())?;
            self.updater.self_update(&check, executable, &NoReporter)
        }

        /// The executable is the running client still, with no `.old` and no staging
        /// directory left beside it.
        #[track_caller]
        fn assert_untouched(&self) {
            assert_eq!(
                std::fs::read_to_string(self.executable()).unwrap(),
                client_script(&client_version())
            );
            let names: Vec<_> = std::fs::read_dir(self.bin.path())
                .unwrap()
                .map(|entry| entry.unwrap().file_name())
                .collect();
            assert_eq!(names, ["wavecast-update"]);
        }
    }

    // The stand-in client is a shell script (see `client_script`).
    #[cfg(unix)]
    #[test]
    fn a_client_below_the_floor_replaces_itself_and_keeps_the_old_executable() {
        let fixture = Fixture::new();
        let script = client_script(&next());
        fixture.publish(
            &next(),
            Some((
                &next(),
                &[Raw(
                    "wavecast-update",
                    tar::EntryType::Regular,
                    0o755,
                    script.as_bytes(),
                )],
            )),
        );
        let check = fixture
            .updater
            .check_client("2026-11-21T12:00:00Z".parse().unwrap())
            .unwrap();
        assert_eq!(check.status(), ClientUpdate::Required);
        assert_eq!(check.required(), &next());
        assert_eq!(check.offered().unwrap().version, next());

        let report = fixture.self_update(&fixture.executable()).unwrap().unwrap();
        assert_eq!((report.from, &report.to), (client_version(), &next()));
        assert_eq!(
            report.previous,
            fixture.bin.path().join("wavecast-update.old")
        );
        assert!(report.downloaded_bytes > 0);
        assert_eq!(
            std::fs::read_to_string(fixture.executable()).unwrap(),
            script
        );
        // The old executable's permissions are kept.
        crate::platform::assert_mode(&fixture.executable(), 0o750);
        assert_eq!(
            std::fs::read_to_string(&report.previous).unwrap(),
            client_script(&client_version())
        );
        assert!(
            std::fs::read_dir(fixture.updater.root().cache())
                .unwrap()
                .next()
                .is_none(),
            "the package leaves the cache"
        );
        assert_eq!(std::fs::read_dir(fixture.bin.path()).unwrap().count(), 2);
    }

    #[test]
    fn a_bad_build_or_none_leaves_the_executable_untouched() {
        let fixture = Fixture::new();
        // No build: the client is too old, with nothing to update to.
        fixture.publish(&next(), None);
        let error = fixture.self_update(&fixture.executable()).unwrap_err();
        assert!(
            matches!(error, Error::Net(NetError::ClientTooOld { .. })),
            "{error}"
        );
        fixture.assert_untouched();

        // A build that reports another version than it is offered as; on Windows, one
        // that does not run, as the stand-in client is a shell script (see
        // `client_script`).
        let liar = client_script(&client_version());
        fixture.publish(
            &next(),
            Some((
                &next(),
                &[Raw(
                    "wavecast-update",
                    tar::EntryType::Regular,
                    0o755,
                    liar.as_bytes(),
                )],
            )),
        );
        let error = fixture.self_update(&fixture.executable()).unwrap_err();
        let refused = if cfg!(unix) {
            matches!(error, Error::UpdaterVersionMismatch { .. })
        } else {
            matches!(error, Error::RunUpdater { .. })
        };
        assert!(refused, "{error}");
        fixture.assert_untouched();

        // A package with something else beside the executable.
        let script = client_script(&next());
        fixture.publish(
            &next(),
            Some((
                &next(),
                &[
                    Raw(
                        "wavecast-update",
                        tar::EntryType::Regular,
                        0o755,
                        script.as_bytes(),
                    ),
                    Raw("extra", tar::EntryType::Regular, 0o644, b"x"),
                ],
            )),
        );
        let error = fixture.self_update(&fixture.executable()).unwrap_err();
        assert!(matches!(error, Error::UpdaterPackage { .. }), "{error}");
        fixture.assert_untouched();

        // Bytes on the host that do not match the signed hash.
        fixture.publish(
            &next(),
            Some((
                &next(),
                &[Raw(
                    "wavecast-update",
                    tar::EntryType::Regular,
                    0o755,
                    script.as_bytes(),
                )],
            )),
        );
        for entry in std::fs::read_dir(fixture.site.path().join("blobs")).unwrap() {
            std::fs::write(entry.unwrap().path(), b"not the package").unwrap();
        }
        let error = fixture.self_update(&fixture.executable()).unwrap_err();
        assert!(
            matches!(
                error,
                Error::Install(InstallError::BlobTruncated { .. })
                    | Error::Install(InstallError::ChecksumMismatch { .. })
            ),
            "{error}"
        );
        fixture.assert_untouched();

        // A directory this client cannot write to fails before any download.
        let error = fixture
            .self_update(&fixture.bin.path().join("missing/wavecast-update"))
            .unwrap_err();
        assert!(
            error.to_string().starts_with("cannot replace `")
                && error
                    .to_string()
                    .contains("failed to write in its directory"),
            "{error}"
        );
    }

    #[test]
    fn a_client_at_the_floor_is_up_to_date_or_may_update() {
        let fixture = Fixture::new();
        fixture.publish(&client_version(), None);
        assert!(
            fixture
                .self_update(&fixture.executable())
                .unwrap()
                .is_none()
        );
        fixture.assert_untouched();
        let script = client_script(&next());
        fixture.publish(
            &client_version(),
            Some((
                &next(),
                &[Raw(
                    "wavecast-update",
                    tar::EntryType::Regular,
                    0o755,
                    script.as_bytes(),
                )],
            )),
        );
        let check = fixture
            .updater
            .check_client("2026-11-21T12:00:00Z".parse().unwrap())
            .unwrap();
        assert_eq!(check.status(), ClientUpdate::Available);
        // The stand-in client is a shell script (see `client_script`).
        #[cfg(unix)]
        {
            let report = fixture.self_update(&fixture.executable()).unwrap().unwrap();
            assert_eq!(report.to, next());
        }
    }

    /// A script standing in for a downloaded client: a shell script on Unix, a batch
    /// file on Windows (which runs it with `cmd`).
    fn script(dir: &Path, body: &str) -> PathBuf {
        #[cfg(unix)]
        let (path, text) = (dir.join("candidate"), format!("#!/bin/sh\n{body}\n"));
        #[cfg(windows)]
        let (path, text) = (
            dir.join("candidate.cmd"),
            format!("@echo off\r\n{body}\r\n"),
        );
        std::fs::write(&path, text).unwrap();
        crate::platform::set_mode(&path, 0o755).unwrap();
        path
    }

    #[test]
    fn the_probe_accepts_only_the_version_offered() {
        let dir = tempfile::tempdir().unwrap();
        let expected: Version = "0.9.0".parse().unwrap();
        probe(&script(dir.path(), "echo wavecast-update 0.9.0"), &expected).unwrap();

        let error =
            probe(&script(dir.path(), "echo wavecast-update 0.8.0"), &expected).unwrap_err();
        assert!(
            matches!(&error, Error::UpdaterVersionMismatch { reported, .. } if reported.to_string() == "0.8.0"),
            "{error}"
        );
        let error = probe(&script(dir.path(), "echo hello"), &expected).unwrap_err();
        assert!(
            error
                .to_string()
                .ends_with("answered `--version` with `hello`, not `wavecast-update <version>`"),
            "{error}"
        );
        let error = probe(&script(dir.path(), "exit 3"), &expected).unwrap_err();
        let exited = if cfg!(windows) {
            "exited with exit code: 3 on `--version`"
        } else {
            "exited with exit status: 3 on `--version`"
        };
        assert!(error.to_string().ends_with(exited), "{error}");
        let error = probe(&dir.path().join("missing"), &expected).unwrap_err();
        assert!(matches!(error, Error::RunUpdater { .. }), "{error}");
    }

    #[test]
    fn a_package_must_hold_the_executable_alone() {
        let dir = tempfile::tempdir().unwrap();
        let error = only_executable(dir.path(), "u").unwrap_err();
        assert_eq!(
            error.to_string(),
            "the updater package `u` must hold only the file `wavecast-update`; it holds nothing"
        );
        std::fs::create_dir(dir.path().join(UPDATER_EXECUTABLE)).unwrap();
        assert!(
            only_executable(dir.path(), "u").is_err(),
            "a directory is not it"
        );
        std::fs::remove_dir(dir.path().join(UPDATER_EXECUTABLE)).unwrap();
        // Not on Windows: Wine 8's CreateSymbolicLinkW is a stub that makes no link.
        #[cfg(not(windows))]
        {
            let link = dir.path().join(UPDATER_EXECUTABLE);
            crate::platform::symlink("/bin/sh", &link).unwrap();
            assert!(
                only_executable(dir.path(), "u").is_err(),
                "a link to a file is not it"
            );
            crate::platform::remove_link(&link).unwrap();
        }
        std::fs::write(dir.path().join(UPDATER_EXECUTABLE), b"x").unwrap();
        assert_eq!(
            only_executable(dir.path(), "u").unwrap(),
            dir.path().join(UPDATER_EXECUTABLE)
        );
        std::fs::write(dir.path().join("extra"), b"x").unwrap();
        let error = only_executable(dir.path(), "u").unwrap_err();
        assert!(
            error
                .to_string()
                .ends_with("it holds `extra`, `wavecast-update`"),
            "{error}"
        );
    }

    #[test]
    fn the_old_executable_keeps_its_name_with_old_added() {
        assert_eq!(
            with_suffix(Path::new("/usr/local/bin/wavecast-update"), ".old"),
            Path::new("/usr/local/bin/wavecast-update.old")
        );
    }
}
