//! Adding a release to a channel: package, upload blobs, then sign and write the
//! manifest last, so readers see the old release or the new one, complete.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use semver::Version;
use wavecast_schema::{
    Blob, ChannelName, Envelope, FORMAT_VERSION, Manifest, Module, Platform, PlatformRelease,
    Release, Salt,
};
use wavecast_site::Storage;
use wavecast_site::layout::{self, BlobKind};

use crate::error::{Error, Result};
use crate::keys::SigningKey;
use crate::package::{self, BuiltModule, ModuleSpec, PackReporter};
use crate::rollout::RolloutChange;

/// The oldest `wavecast-update` that reads everything this publisher writes.
pub const MIN_CLIENT_VERSION: Version = Version::new(0, 1, 0);

/// Everything `publish` needs to know besides the site and the key.
#[derive(Debug, Clone)]
pub struct PublishOptions {
    /// The folder holding the release tree.
    pub release_dir: PathBuf,
    /// The release's version.
    pub version: Version,
    /// The channel to publish to.
    pub channel: ChannelName,
    /// The platform the release is for (`any` when it runs everywhere).
    pub platform: Platform,
    /// How the release folder splits into modules.
    pub modules: Vec<ModuleSpec>,
    /// The release's rollout: share or ramp, rules, cap. Unset parts take the
    /// defaults of a new plan (100 %, no rules, no cap).
    pub rollout: RolloutChange,
    /// Release notes.
    pub notes: String,
    /// The product name; kept from the existing manifest when `None`.
    pub product: Option<String>,
    /// Replace the release when the version is already published.
    pub force: bool,
    /// How long the signed manifest stays valid.
    pub expires_in: SignedDuration,
    /// gzip level, 0 to 9.
    pub compression_level: u32,
    /// The current time (injectable for tests).
    pub now: Timestamp,
}

/// What a publish did.
#[derive(Debug)]
pub struct PublishReport {
    /// The new manifest, as signed.
    pub manifest: Manifest,
    /// Per module: name, files, unpacked size, package size, whether it was uploaded
    /// (false when the site already had the identical package).
    pub modules: Vec<ModuleSummary>,
    /// Time spent packaging (modules are packaged in parallel).
    pub packaging_time: Duration,
    /// Wall time of the whole publish.
    pub total_time: Duration,
}

/// One module of a [`PublishReport`].
#[derive(Debug)]
pub struct ModuleSummary {
    /// The module's name.
    pub name: String,
    /// Number of regular files.
    pub files: usize,
    /// Total size of the files.
    pub unpacked_size: u64,
    /// Size of the tar.gz.
    pub package_size: u64,
    /// Whether the package was uploaded, or the site already had it.
    pub uploaded: bool,
}

/// Reads and verifies the channel's current manifest, if there is one. A manifest
/// signed by another key is an error: this publisher will not overwrite it.
pub fn current_manifest(
    storage: &dyn Storage,
    key: &SigningKey,
    channel: &ChannelName,
) -> Result<Option<Manifest>> {
    let Some(bytes) = storage.get(&layout::channel_manifest(channel))? else {
        return Ok(None);
    };
    let corrupt = |source| Error::CorruptManifest {
        channel: channel.clone(),
        source,
    };
    let envelope = Envelope::parse(&bytes).map_err(corrupt)?;
    if !key.verifies(envelope.manifest.as_bytes(), &envelope.signature) {
        return Err(Error::ForeignManifest {
            channel: channel.clone(),
            key_id: key.key_id(),
        });
    }
    Manifest::parse(envelope.manifest.as_bytes())
        .map(Some)
        .map_err(corrupt)
}

/// Signs `manifest` and writes it as the channel's envelope. This is the commit point
/// of every change to a channel, so it must come after every blob it refers to.
pub fn write_manifest(storage: &dyn Storage, key: &SigningKey, manifest: &Manifest) -> Result<()> {
    let text = String::from_utf8(manifest.to_json()).expect("serde_json writes UTF-8");
    let trusted_comment = format!(
        "wavecast manifest product={} channel={} serial={}",
        manifest.product, manifest.channel, manifest.serial
    );
    let signature = key.sign(text.as_bytes(), &trusted_comment)?;
    let envelope = Envelope::new(text, signature);
    storage.put_bytes(
        &layout::channel_manifest(&manifest.channel),
        &envelope.to_json(),
    )?;
    // The status page describes every channel; rewrite it after the commit point. A
    // failure here must not read as a failed publish: the manifest is already live.
    wavecast_site::status_page::write(storage, manifest.published_at).map_err(|source| {
        Error::StatusPage {
            channel: manifest.channel.clone(),
            serial: manifest.serial,
            source,
        }
    })
}

/// Publishes a release folder to a channel, keeping earlier releases live.
pub fn publish(
    storage: &dyn Storage,
    key: &SigningKey,
    options: &PublishOptions,
    reporter: &dyn PackReporter,
) -> Result<PublishReport> {
    let started = Instant::now();
    let existing = current_manifest(storage, key, &options.channel)?;
    // Publishing a version again for a platform it lacks adds that platform; publishing
    // it again for a platform it has replaces the platform's modules, with --force only.
    let replaced = existing
        .as_ref()
        .and_then(|manifest| manifest.release(&options.version));
    if replaced.is_some_and(|release| release.platforms.contains_key(&options.platform))
        && !options.force
    {
        return Err(Error::VersionExists {
            version: options.version.clone(),
            channel: options.channel.clone(),
        });
    }
    let modules = if options.modules.is_empty() {
        vec![ModuleSpec::whole_folder()]
    } else {
        options.modules.clone()
    };
    package::check_layout(&options.release_dir, &modules)?;

    let temp_dir = std::env::temp_dir();
    let packaging_started = Instant::now();
    let built: Vec<BuiltModule> = std::thread::scope(|scope| {
        let workers: Vec<_> = modules
            .iter()
            .map(|spec| {
                let temp_dir = &temp_dir;
                scope.spawn(move || {
                    package::build_module(
                        &options.release_dir,
                        spec,
                        options.compression_level,
                        temp_dir,
                        reporter,
                    )
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| worker.join().expect("packaging threads do not panic"))
            .collect::<Result<_>>()
    })?;
    let packaging_time = packaging_started.elapsed();

    // Blobs first: nothing refers to them until the manifest is written.
    let mut summaries = Vec::with_capacity(built.len());
    let mut platform_modules = BTreeMap::new();
    for module in &built {
        let package = upload_package(storage, module)?;
        let index_bytes = module.index.to_json();
        let index = upload_index(storage, &index_bytes)?;
        summaries.push(ModuleSummary {
            name: module.name.to_string(),
            files: module.files,
            unpacked_size: module.unpacked_size,
            package_size: module.package_size,
            uploaded: package.1,
        });
        let version = earlier_module_version(existing.as_ref(), options, module)
            .unwrap_or_else(|| options.version.clone());
        platform_modules.insert(
            module.name.clone(),
            Module {
                version,
                dest: module.dest.clone(),
                package: package.0,
                unpacked_size: module.unpacked_size,
                file_index: index,
            },
        );
    }

    let mut platforms = replaced
        .map(|release| release.platforms.clone())
        .unwrap_or_default();
    platforms.insert(
        options.platform.clone(),
        PlatformRelease {
            modules: platform_modules,
        },
    );
    let notes = match replaced {
        Some(release) if options.notes.is_empty() => release.notes.clone(),
        _ => options.notes.clone(),
    };
    let release = Release {
        version: options.version.clone(),
        published_at: replaced.map_or(options.now, |release| release.published_at),
        notes,
        platforms,
        // A replaced release keeps its salt, so clients keep their buckets.
        rollout: options.rollout.new_plan(
            replaced.map_or_else(random_salt, |release| Ok(release.rollout.salt.clone()))?,
            options.now,
        ),
    };
    let mut manifest = successor(
        existing,
        &options.channel,
        options.product.clone(),
        options.now,
        options.expires_in,
    );
    manifest
        .releases
        .retain(|release| release.version != options.version);
    manifest.releases.push(release);
    validate_and_write(storage, key, &mut manifest)?;
    Ok(PublishReport {
        manifest,
        modules: summaries,
        packaging_time,
        total_time: started.elapsed(),
    })
}

/// The manifest that follows `existing` on `channel`: the next serial (1 for a new
/// channel), published at `now`, expiring `expires_in` later, with the same releases.
/// The product name is `product`, else the existing one, else `app`.
pub fn successor(
    existing: Option<Manifest>,
    channel: &ChannelName,
    product: Option<String>,
    now: Timestamp,
    expires_in: SignedDuration,
) -> Manifest {
    let product = product
        .or_else(|| existing.as_ref().map(|manifest| manifest.product.clone()))
        .unwrap_or_else(|| "app".to_owned());
    let (serial, releases) = existing.map_or((1, Vec::new()), |manifest| {
        (manifest.serial + 1, manifest.releases)
    });
    Manifest {
        format: FORMAT_VERSION,
        product,
        channel: channel.clone(),
        serial,
        published_at: now,
        expires_at: now.saturating_add(expires_in).unwrap_or(Timestamp::MAX),
        min_client_version: MIN_CLIENT_VERSION,
        releases,
    }
}

/// Sorts the releases newest first, validates the manifest and writes it with
/// [`write_manifest`]. Every command that changes a channel ends here.
///
/// # Errors
///
/// [`Error::InvalidManifest`] when the change breaks a rule of the format (such as
/// two rollout rules with one name); signing and storage errors.
pub fn validate_and_write(
    storage: &dyn Storage,
    key: &SigningKey,
    manifest: &mut Manifest,
) -> Result<()> {
    manifest.sort_releases();
    manifest
        .validate()
        .map_err(|source| Error::InvalidManifest {
            channel: manifest.channel.clone(),
            source,
        })?;
    write_manifest(storage, key, manifest)
}

/// The version of the same module in an earlier release when its package is
/// byte-identical, so "same module version" means "same content".
fn earlier_module_version(
    existing: Option<&Manifest>,
    options: &PublishOptions,
    module: &BuiltModule,
) -> Option<Version> {
    existing?
        .releases
        .iter()
        .filter(|release| release.version != options.version)
        .filter_map(|release| {
            release
                .platforms
                .get(&options.platform)?
                .modules
                .get(&module.name)
        })
        .find(|earlier| earlier.package.blake3 == module.package_hash)
        .map(|earlier| earlier.version.clone())
}

/// Uploads a package unless the site already holds it; returns its blob and whether
/// it was uploaded.
fn upload_package(storage: &dyn Storage, module: &BuiltModule) -> Result<(Blob, bool)> {
    let path = layout::blob(&module.package_hash, BlobKind::Package);
    let present = storage.size(&path)? == Some(module.package_size);
    if !present {
        storage.put_file(&path, &module.package)?;
    }
    let blob = Blob {
        path,
        size: module.package_size,
        blake3: module.package_hash.clone(),
    };
    Ok((blob, !present))
}

fn upload_index(storage: &dyn Storage, bytes: &[u8]) -> Result<Blob> {
    let hash = wavecast_schema::Blake3Hash::of(bytes);
    let path = layout::blob(&hash, BlobKind::FileIndex);
    if storage.size(&path)? != Some(bytes.len() as u64) {
        storage.put_bytes(&path, bytes)?;
    }
    Ok(Blob {
        path,
        size: bytes.len() as u64,
        blake3: hash,
    })
}

/// A new random rollout salt: 16 bytes from the operating system, as hex.
///
/// # Errors
///
/// [`Error::Random`] when the operating system's generator fails.
pub fn random_salt() -> Result<Salt> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|error| Error::Random(error.to_string()))?;
    let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    Ok(hex
        .parse()
        .expect("32 lowercase hex digits are a valid salt"))
}
