//! Offering builds of the client itself (`wavecast publish-updater`).
//!
//! A build is packaged like a module (a deterministic tar.gz, here of the one file
//! [`UPDATER_EXECUTABLE`], mode `0755`), uploaded to `blobs/` by its blake3 and listed
//! in the channel manifest's `updater` map under its target triple, so the same
//! signatures that cover the releases cover it. It is independent of the releases: a
//! broken application package never keeps a client from updating itself. Before
//! any of that, [`check_build`] makes sure the file is a `wavecast-update` reporting
//! the version it is to be offered as, which every client checks before installing
//! it.
//!
//! A build carrying debug info is offered all the same, but the report says how much
//! ([`debug_info::debug_info_size`]), so the caller can warn: every client would
//! download it for nothing.
//!
//! The channel's `min_client_version` may change with the build (see
//! [`client_floor`](crate::client_floor)): every build offered must reach it.

use std::path::{Path, PathBuf};

use jiff::{SignedDuration, Timestamp};
use semver::Version;
use wavecast_schema::{
    Blake3Hash, Blob, ChannelName, Manifest, PackageFormat, Platform, UPDATER_EXECUTABLE,
    UpdaterBuild,
};
use wavecast_site::Storage;
use wavecast_site::layout::{self, BlobKind};

use crate::channel::{current_manifest, successor, validate_and_write};
use crate::client_floor::check_client_floor;
use crate::debug_info;
use crate::error::{Error, Result};
use crate::keys::Signers;
use crate::package::{self, BuiltPackage, ModuleSpec, NoCopies, NoProgress, PackageCompression};
use crate::pages::write_nojekyll;
use crate::trust;
use crate::updater_version;

/// How updater packages are compressed: tar.gz, the format every client reads (a
/// client too old for tar.zst updates itself from this package), at gzip's
/// smallest level since it is one file, packaged once per version.
const UPDATER_COMPRESSION: PackageCompression = PackageCompression {
    format: PackageFormat::TarGz,
    level: Some(9),
};

/// What `publish-updater` needs besides the site and the keys.
#[derive(Debug, Clone)]
pub struct UpdaterOptions {
    /// The `wavecast-update` executable built for `platform`.
    pub executable: PathBuf,
    /// The version that executable reports (`wavecast-update --version`); clients
    /// check it before they install the build, and so does [`publish_updater`].
    pub version: Version,
    /// The channel whose manifest offers the build.
    pub channel: ChannelName,
    /// The target triple the executable runs on; never `any`.
    pub platform: Platform,
    /// Also set the channel's `min_client_version` (see
    /// [`set_client_floor`](crate::client_floor::set_client_floor)).
    pub min_client_version: Option<Version>,
    /// Replace a build of the same or a newer version for this platform.
    pub force: bool,
    /// How long the signed manifest stays valid.
    pub expires_in: SignedDuration,
    /// The current time (injectable for tests).
    pub now: Timestamp,
}

/// What [`publish_updater`] did.
#[derive(Debug, Clone)]
pub struct UpdaterReport {
    /// The build as listed in the manifest.
    pub build: UpdaterBuild,
    /// The build it replaced for the same platform, if any.
    pub replaced: Option<UpdaterBuild>,
    /// Whether the package was uploaded (false when the site already had it).
    pub uploaded: bool,
    /// The size of the debug info the executable carries, when it counts as
    /// carrying some (see [`debug_info::debug_info_size`]).
    pub debug_info: Option<u64>,
    /// The new manifest of the channel, as signed.
    pub manifest: Manifest,
}

/// Packages `options.executable`, uploads the package unless the site has it, and
/// signs the channel's next manifest with the build listed for `options.platform`
/// (and the floor changed, when asked). A channel without a manifest gets one, with
/// no releases yet.
///
/// # Errors
///
/// [`Error::UpdaterForAny`] for the platform `any`; [`Error::UnsupportedEntry`] when
/// the executable is not a regular file, [`Error::NotAnUpdater`] when it is not a
/// `wavecast-update` and [`Error::UpdaterVersionMismatch`] when it reports another
/// version (see [`check_build`]); [`Error::UpdaterExists`] when the platform already
/// has a build of this or a newer version and `force` is false;
/// [`Error::FloorAboveUpdater`] or [`Error::FloorTooLow`] for a floor the builds
/// would not reach; I/O, signing and storage errors.
pub fn publish_updater(
    storage: &dyn Storage,
    signers: &Signers,
    options: &UpdaterOptions,
) -> Result<UpdaterReport> {
    if options.platform.as_str() == "any" {
        return Err(Error::UpdaterForAny);
    }
    // Clients refuse a build that reports another version than it is offered as:
    // refuse it here, before the site is touched.
    check_build(&options.executable, &options.version)?;
    let debug_info = debug_info::debug_info_size(&options.executable)?;
    let existing = current_manifest(storage, signers, &options.channel)?;
    trust::check_release_signers(storage, signers)?;
    let replaced = existing
        .as_ref()
        .and_then(|manifest| manifest.updater.get(&options.platform))
        .cloned();
    if let Some(published) = &replaced
        && published.version >= options.version
        && !options.force
    {
        return Err(Error::UpdaterExists {
            platform: options.platform.clone(),
            published: published.version.clone(),
            version: options.version.clone(),
        });
    }
    let mut manifest = successor(
        existing,
        &options.channel,
        None,
        options.now,
        options.expires_in,
    );
    let floor = options
        .min_client_version
        .clone()
        .unwrap_or_else(|| manifest.min_client_version.clone());
    // Refuse a floor the new set of builds would not reach before packaging anything.
    let others = manifest
        .updater
        .iter()
        .filter(|(platform, _)| **platform != options.platform)
        .map(|(platform, build)| (platform, &build.version));
    check_client_floor(
        others.chain([(&options.platform, &options.version)]),
        &floor,
    )?;

    let (package, package_size, package_hash, unpacked_size) = package_executable(options)?;
    let path = layout::blob(&package_hash, BlobKind::Package);
    let uploaded = storage.size(&path)? != Some(package_size);
    if uploaded {
        storage.put_file(&path, &package)?;
    }
    let build = UpdaterBuild {
        version: options.version.clone(),
        package: Blob {
            size: package_size,
            blake3: package_hash,
        },
        unpacked_size,
    };
    manifest
        .updater
        .insert(options.platform.clone(), build.clone());
    manifest.min_client_version = floor;
    validate_and_write(storage, signers, &mut manifest)?;
    write_nojekyll(storage)?;
    Ok(UpdaterReport {
        build,
        replaced,
        uploaded,
        debug_info,
        manifest,
    })
}

/// Checks that `executable` is a regular file, a build of `wavecast-update` that
/// reports `version` (see [`updater_version::reported_version`]).
///
/// # Errors
///
/// [`Error::UnsupportedEntry`], [`Error::NotAnUpdater`],
/// [`Error::UpdaterVersionMismatch`] or [`Error::Read`].
pub fn check_build(executable: &Path, version: &Version) -> Result<()> {
    let metadata = fs_err::metadata(executable).map_err(|source| Error::Read {
        path: executable.to_owned(),
        source,
    })?;
    if !metadata.is_file() {
        return Err(Error::UnsupportedEntry {
            path: executable.to_owned(),
            reason: "it is not a regular file; give the path of the built wavecast-update executable",
        });
    }
    let reported = updater_version::reported_version(executable)?;
    if &reported.version != version {
        return Err(Error::UpdaterVersionMismatch {
            path: executable.to_owned(),
            reported: Box::new(reported),
            given: version.clone(),
        });
    }
    Ok(())
}

/// Packages the executable as the one file [`UPDATER_EXECUTABLE`], mode `0755`, in a
/// deterministic tar.gz. Returns the package, its size and blake3, and the
/// executable's size.
fn package_executable(
    options: &UpdaterOptions,
) -> Result<(tempfile::TempPath, u64, Blake3Hash, u64)> {
    let source = &options.executable;
    let temp_root = std::env::temp_dir();
    let folder = tempfile::Builder::new()
        .prefix(".wavecast-updater-")
        .tempdir_in(&temp_root)
        .map_err(|error| Error::Write {
            path: temp_root.clone(),
            source: error,
        })?;
    let copy = folder.path().join(UPDATER_EXECUTABLE);
    let write_error = |error| Error::Write {
        path: copy.clone(),
        source: error,
    };
    fs_err::copy(source, &copy).map_err(write_error)?;
    crate::platform::make_executable(&copy).map_err(write_error)?;
    let built = package::build_module(
        folder.path(),
        &ModuleSpec::whole_folder(),
        UPDATER_COMPRESSION,
        &temp_root,
        &NoProgress,
        &NoCopies,
    )?;
    let BuiltPackage::Tar {
        file, size, blake3, ..
    } = built.package
    else {
        unreachable!("a whole-folder module is packaged as a tar.gz")
    };
    Ok((file, size, blake3, built.unpacked_size))
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use super::*;
    use crate::client_floor::{floor_without_builds, set_client_floor};
    use crate::keys;
    use wavecast_site::FsStorage;

    /// What the tests publish as a build reporting `version`: bytes that do not run,
    /// with the version marker a real build carries.
    fn executable(version: &str) -> Vec<u8> {
        let mut bytes = b"\x7fELF pretend executable".to_vec();
        bytes.extend_from_slice(wavecast_schema::VERSION_MARKER_PREFIX);
        bytes.extend_from_slice(version.as_bytes());
        bytes.push(0);
        bytes
    }

    fn version(text: &str) -> Version {
        text.parse().unwrap()
    }

    struct Site {
        dir: tempfile::TempDir,
        signers: Signers,
    }

    impl Site {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let generated = keys::generate(&dir.path().join("keys"), None, false).unwrap();
            let signers = Signers::new(vec![
                keys::SigningKey::load(&generated.secret_key, || unreachable!()).unwrap(),
            ])
            .unwrap();
            Self { dir, signers }
        }

        /// A build reporting `version`, in the site's folder.
        fn build(&self, version: &str) -> PathBuf {
            let path = self.dir.path().join(format!("built-client-{version}"));
            std::fs::write(&path, executable(version)).unwrap();
            path
        }

        fn storage(&self) -> FsStorage {
            FsStorage::new(self.dir.path().join("site"))
        }

        fn options(&self, version_text: &str, platform: &str) -> UpdaterOptions {
            UpdaterOptions {
                executable: self.build(version_text),
                version: version(version_text),
                channel: "stable".parse().unwrap(),
                platform: platform.parse().unwrap(),
                min_client_version: None,
                force: false,
                expires_in: SignedDuration::from_hours(24),
                now: "2026-11-21T12:00:00Z".parse().unwrap(),
            }
        }

        fn publish(&self, options: &UpdaterOptions) -> Result<UpdaterReport> {
            publish_updater(&self.storage(), &self.signers, options)
        }
    }

    #[test]
    fn a_build_is_packaged_as_one_executable_and_listed_under_its_platform() {
        let site = Site::new();
        let report = site
            .publish(&site.options("0.2.0", "x86_64-unknown-linux-gnu"))
            .unwrap();
        assert!(report.uploaded && report.replaced.is_none());
        let listed = &report.manifest.updater["x86_64-unknown-linux-gnu"];
        assert_eq!(listed, &report.build);
        assert_eq!(listed.unpacked_size, executable("0.2.0").len() as u64);
        assert_eq!(report.manifest.serial, 1);

        let bytes = std::fs::read(
            site.dir
                .path()
                .join("site")
                .join(layout::blob(&listed.package.blake3, BlobKind::Package).as_str()),
        )
        .unwrap();
        assert_eq!(bytes.len() as u64, listed.package.size);
        assert_eq!(
            wavecast_schema::Blake3Hash::of(&bytes),
            listed.package.blake3
        );
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes.as_slice()));
        let mut entries: Vec<(String, u32, Vec<u8>)> = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let mut content = Vec::new();
            entry.read_to_end(&mut content).unwrap();
            entries.push((
                entry.path().unwrap().to_string_lossy().into_owned(),
                entry.header().mode().unwrap(),
                content,
            ));
        }
        assert_eq!(
            entries,
            vec![(UPDATER_EXECUTABLE.to_owned(), 0o755, executable("0.2.0"))]
        );

        // The same bytes again upload nothing, and need --force at the same version.
        let error = site
            .publish(&site.options("0.2.0", "x86_64-unknown-linux-gnu"))
            .unwrap_err();
        assert!(matches!(error, Error::UpdaterExists { .. }), "{error}");
        let mut forced = site.options("0.2.0", "x86_64-unknown-linux-gnu");
        forced.force = true;
        let again = site.publish(&forced).unwrap();
        assert!(!again.uploaded);
        assert_eq!(again.replaced.unwrap().version, version("0.2.0"));
        assert_eq!(again.manifest.serial, 2);
    }

    #[test]
    fn a_build_reporting_another_version_or_none_is_refused_before_the_site_changes() {
        let site = Site::new();
        let mut options = site.options("0.2.0", "x86_64-unknown-linux-gnu");
        options.executable = site.build("0.1.0");
        let error = site.publish(&options).unwrap_err();
        assert!(
            matches!(
                &error,
                Error::UpdaterVersionMismatch { reported, given, .. }
                    if reported.version == version("0.1.0")
                        && matches!(reported.source, updater_version::VersionSource::Marker(_))
                        && *given == version("0.2.0")
            ),
            "{error}"
        );
        options.executable = site.dir.path().join("notes.txt");
        std::fs::write(&options.executable, "not a program").unwrap();
        let error = site.publish(&options).unwrap_err();
        assert!(matches!(error, Error::NotAnUpdater { .. }), "{error}");
        options.executable = site.dir.path().to_owned();
        let error = site.publish(&options).unwrap_err();
        assert!(matches!(error, Error::UnsupportedEntry { .. }), "{error}");
        assert!(
            !site.dir.path().join("site").exists(),
            "the site is untouched"
        );
    }

    #[test]
    fn floors_must_be_reached_by_every_build_offered() {
        let site = Site::new();
        let error = site.publish(&site.options("0.2.0", "any")).unwrap_err();
        assert!(matches!(error, Error::UpdaterForAny), "{error}");

        let mut raised = site.options("0.2.0", "x86_64-unknown-linux-gnu");
        raised.min_client_version = Some(version("0.2.0"));
        let report = site.publish(&raised).unwrap();
        assert_eq!(report.manifest.min_client_version, version("0.2.0"));
        assert!(!floor_without_builds(&report.manifest));

        // Another platform's build below the floor would strand its clients.
        let error = site
            .publish(&site.options("0.1.5", "aarch64-unknown-linux-gnu"))
            .unwrap_err();
        assert!(
            matches!(&error, Error::FloorAboveUpdater { platform, .. } if platform.as_str() == "aarch64-unknown-linux-gnu"),
            "{error}"
        );
        let mut manifest = site
            .publish(&site.options("0.3.0", "aarch64-unknown-linux-gnu"))
            .unwrap()
            .manifest;
        assert_eq!(
            manifest.min_client_version,
            version("0.2.0"),
            "the floor is kept"
        );

        let error = set_client_floor(&mut manifest, &version("0.3.0")).unwrap_err();
        assert!(
            matches!(&error, Error::FloorAboveUpdater { version: below, .. } if *below == version("0.2.0")),
            "{error}"
        );
        let error = set_client_floor(&mut manifest, &version("0.0.9")).unwrap_err();
        assert!(matches!(error, Error::FloorTooLow { .. }), "{error}");
        set_client_floor(&mut manifest, &version("0.1.0")).unwrap();
        assert_eq!(manifest.min_client_version, version("0.1.0"));

        manifest.updater.clear();
        assert!(!floor_without_builds(&manifest));
        set_client_floor(&mut manifest, &version("5.0.0")).unwrap();
        assert!(floor_without_builds(&manifest));
    }
}
