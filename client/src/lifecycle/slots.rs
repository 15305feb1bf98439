//! Image modules and A/B slots: OS-image style updates.
//!
//! A module of [`ModuleKind::Image`] is one file (a root file system, a firmware
//! image) that never enters the release tree. It is written whole into the
//! *inactive* one of two slots, `a` and `b` (by default the files `ROOT/slots/a` and
//! `ROOT/slots/b`; any path, a partition or block device included, with
//! `config --slot-a PATH --slot-b PATH`), and then *activated*: the configured
//! on-activate hook (`sh -c COMMAND`, see [`SlotConfig`]) is told the slot, its path
//! and the version, to point the boot loader at it, restart a service or reconnect to
//! a server. Only when the hook succeeds does the slot become the active one. The
//! active slot is never written.
//!
//! Which slot is active, and what each slot holds (release version, module, size,
//! blake3, the path it was written to), is recorded in `ROOT/.wavecast/slots.json`
//! ([`SlotsState`]), always replaced atomically (temporary file, fsync, rename,
//! directory fsync).
//!
//! # Writing an image
//!
//! [`choose_slot`] picks the slot from the record alone: nothing to do when the
//! active slot already holds the image; the inactive slot when it holds it already
//! (a run that died before activating wrote it; it is hashed again before use); else
//! the inactive slot is written. The image comes from the patch the update's delta
//! pack carries for it, when a slot holds the patch's base (the base is hashed before
//! use and the result after), or else from the module's package, the image's zstd
//! copy, downloaded into the cache and verified by size and blake3 before a byte of it
//! is written, then decompressed straight into the slot while being hashed. Whatever its source, the
//! slot is flushed (`fsync`) and its content checked against the image's blake3
//! before the hook runs. A patch that fails gives way to the package.
//!
//! # Crash safety
//!
//! The order of writes keeps the active slot and its record intact at every instant:
//!
//! 1. the inactive slot's record is cleared (saved), so a slot being written is never
//!    taken for what it held before;
//! 2. the image is written, flushed and verified, then recorded (saved);
//! 3. the hook runs;
//! 4. the record names the new slot active (saved): the commit point.
//!
//! A run killed before 4 leaves the old slot active and recorded; the next update
//! finds the new image already in the inactive slot (step 2 done) and only hashes it
//! again before running the hook, so the hook must be idempotent. The release tree
//! (tree modules, or an empty tree for an image-only release) is installed after the
//! commit point; a run killed in between is finished by the next update, which finds
//! the image active and installs only the tree.
//!
//! # Failures and rollback
//!
//! A hook that fails or times out leaves the previous slot active, marks the release
//! bad ([`BadReason::ActivationFailed`]) and keeps the written slot as it is (the next
//! image goes there again). A failure after the commit point (the tree install, or
//! the health check) switches back with [`Slots::revert`]: the hook runs for the slot that
//! was active before, which becomes active again. A rollback of the release tree
//! (`rollback`, or `launched` past the unconfirmed launches allowed) first makes the
//! slots follow with [`Slots::follow`]: when the other slot holds the image of the release
//! rolled back to, it is hashed, activated and made active; when the active slot holds
//! the image of the release being left and the other one does not hold the older
//! image, the rollback is refused.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use semver::Version;
use wavecast_schema::{
    Blake3Hash, EntryKind, FileIndex, FileMode, Module, ModuleKind, ModuleName, PackData,
    PackHeader, PackRef, PatchAlgorithm, PlatformRelease,
};

use crate::install::error::Error as InstallError;
use crate::install::fetch::Cache;
use crate::install::verified::HashingWriter;
use crate::lifecycle::command::HealthCheckReport;
use crate::lifecycle::command::{Shell, run_shell};
use crate::lifecycle::error::{ActivationFailure, Error, Result};
use crate::store::config::{SlotConfig, SlotName};
use crate::store::root::{InstallRoot, write_json_atomically};
use crate::store::slots::{SlotImage, SlotsState};
use crate::store::state::State;
use crate::store::state::{BadReason, BadRelease};

/// Where an image goes, decided from the record alone by [`choose_slot`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SlotChoice {
    /// The active slot holds the image already: nothing to write or activate.
    Active(SlotName),
    /// The inactive slot holds the image already (written by a run that did not
    /// activate it): hash it again, then activate it.
    Reuse(SlotName),
    /// Write the image into this slot, the inactive one, then activate it.
    Write(SlotName),
}

/// Where the image `blake3` of `size` bytes goes. The active slot is only ever
/// chosen when it holds that image already; with no slot active, `a` is written
/// first.
pub(crate) fn choose_slot(
    state: &SlotsState,
    paths: &SlotPaths,
    blake3: &Blake3Hash,
    size: u64,
) -> SlotChoice {
    let is_target = |slot: SlotName| {
        paths
            .holding(state, slot)
            .is_some_and(|image| &image.blake3 == blake3 && image.size == size)
    };
    if let Some(active) = state.active
        && is_target(active)
    {
        return SlotChoice::Active(active);
    }
    let inactive = state.active.map_or(SlotName::A, SlotName::other);
    if is_target(inactive) {
        SlotChoice::Reuse(inactive)
    } else {
        SlotChoice::Write(inactive)
    }
}

/// The image module of `release`, if it has one.
pub(crate) fn image_module(release: &PlatformRelease) -> Option<(&ModuleName, &Module)> {
    release
        .modules
        .iter()
        .find(|(_, module)| module.kind == ModuleKind::Image)
}

/// `release` without its image modules: what goes into the release tree. A release
/// of only an image installs an empty tree, which keeps `current`, trials, health
/// checks and rollbacks working as for any release.
pub(crate) fn tree_part(release: &PlatformRelease) -> PlatformRelease {
    let mut tree = release.clone();
    tree.modules
        .retain(|_, module| module.kind == ModuleKind::Tree);
    tree
}

/// How an image got into its slot.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ImageSource {
    /// The slot held it already (nothing was written).
    InSlot,
    /// Rebuilt from a patch against the content of `base`.
    Patch {
        /// The slot whose content the patch applied to.
        base: SlotName,
        /// The patch's encoding.
        algorithm: PatchAlgorithm,
        /// The patch's size.
        bytes: u64,
    },
    /// Decompressed from the module's package, the image's zstd copy.
    Package {
        /// The package's size.
        bytes: u64,
    },
}

/// A slot made active: by an install, or by a rollback or revert following the
/// release tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotActivation {
    /// The image module.
    pub module: ModuleName,
    /// The release whose image the slot holds.
    pub version: Version,
    /// The slot now active.
    pub slot: SlotName,
    /// Its path.
    pub slot_path: PathBuf,
    /// The slot active before (`None`: none was).
    pub previous: Option<SlotName>,
    /// How the image got into the slot.
    pub source: ImageSource,
    /// What the on-activate hook did (the same report a health check gets); `None`
    /// when no hook is configured, or when the slot was active already.
    pub hook: Option<HealthCheckReport>,
    /// Whether the active slot changed (`false` when the slot was active already: a
    /// run that died after activating is being finished).
    pub switched: bool,
    /// Patches that failed and gave way to the package.
    pub fallbacks: u32,
    /// Bytes received over the network for the image, its file index included.
    pub downloaded_bytes: u64,
}

/// What `status` shows of the slots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotsStatus {
    /// The active slot.
    pub active: Option<SlotName>,
    /// Both slots, `a` first.
    pub slots: Vec<SlotStatus>,
}

/// One slot in [`SlotsStatus`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotStatus {
    /// The slot.
    pub name: SlotName,
    /// Its configured path.
    pub path: PathBuf,
    /// What it holds, when known (written at this path).
    pub image: Option<SlotImage>,
}

/// The slots' configuration and record, for one locked run.
#[derive(Debug)]
pub(crate) struct Slots<'a> {
    root: &'a InstallRoot,
    config: &'a SlotConfig,
    paths: SlotPaths,
    record: PathBuf,
    state: SlotsState,
}

/// What [`Slots::install`] installs: an image module of a release.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ImageTarget<'a> {
    /// The release.
    pub(crate) version: &'a Version,
    /// The image module's name.
    pub(crate) name: &'a ModuleName,
    /// The image module.
    pub(crate) module: &'a Module,
    /// The release tree's directory name, recorded with a bad mark.
    pub(crate) dir: &'a str,
    /// Take the package, never a patch (`update --full`).
    pub(crate) packages_only: bool,
    /// The update's delta pack, when it has one (from the current release).
    pub(crate) pack: Option<&'a PackRef>,
}

/// The one file of an image module's index.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ImageFile {
    size: u64,
    blake3: Blake3Hash,
    packed_size: u64,
    mode: FileMode,
}

impl<'a> Slots<'a> {
    /// The slots of `root` as `config` describes them, with their record (an empty
    /// one when there is none). The caller holds the root's lock.
    ///
    /// # Errors
    ///
    /// The errors of [`SlotPaths::resolve`]; [`StoreError::ReadSlots`](crate::StoreError::ReadSlots),
    /// [`StoreError::ParseSlots`](crate::StoreError::ParseSlots), [`StoreError::UnsupportedFileFormat`](crate::StoreError::UnsupportedFileFormat).
    pub(crate) fn open(root: &'a InstallRoot, config: &'a SlotConfig) -> Result<Self> {
        let record = root.slots_record();
        Ok(Self {
            root,
            config,
            paths: SlotPaths::resolve(root, config)?,
            state: SlotsState::load(&record)?.unwrap_or_default(),
            record,
        })
    }

    fn save(&self) -> Result<()> {
        Ok(write_json_atomically(&self.record, &self.state)?)
    }

    /// Installs `target`'s image into the inactive slot and activates it (see the
    /// module docs), marking the release bad in `state` when the hook fails.
    ///
    /// # Errors
    ///
    /// [`Error::ActivationFailed`] or [`Error::RunActivation`] (the previous slot
    /// stays active); [`Error::ImageIndex`], [`Error::ImageMismatch`], slot,
    /// download and record errors, with nothing activated.
    pub(crate) fn install(
        &mut self,
        cache: &Cache<'_>,
        target: &ImageTarget<'_>,
        state: &mut State,
        now: Timestamp,
    ) -> Result<SlotActivation> {
        let before = cache.received();
        let index = cache.index(&target.module.index)?;
        let file = image_file(target, &index)?;
        let previous = self.state.active;
        let mut fallbacks = 0;
        let (slot, source) = match choose_slot(&self.state, &self.paths, &file.blake3, file.size) {
            SlotChoice::Active(slot) => {
                return Ok(SlotActivation {
                    module: target.name.clone(),
                    version: target.version.clone(),
                    slot,
                    slot_path: self.paths.get(slot).to_owned(),
                    previous,
                    source: ImageSource::InSlot,
                    hook: None,
                    switched: false,
                    fallbacks,
                    downloaded_bytes: cache.received() - before,
                });
            }
            SlotChoice::Reuse(slot) if self.slot_matches(slot, file.size, &file.blake3)? => {
                (slot, ImageSource::InSlot)
            }
            SlotChoice::Reuse(slot) | SlotChoice::Write(slot) => {
                let source = self.write(cache, target, &index, &file, slot, &mut fallbacks, now)?;
                (slot, source)
            }
        };
        // A hook that cannot even start is not the release's fault: no bad mark.
        let hook = match self.activate(target.name, target.version, slot) {
            Ok(hook) => hook,
            Err(Error::ActivationFailed(mut failure)) => {
                state.mark_bad(BadRelease {
                    version: target.version.clone(),
                    dir: target.dir.to_owned(),
                    reason: BadReason::ActivationFailed,
                    detail: format!(
                        "on-activate `{}` {} for slot {slot}",
                        failure.report.command,
                        failure.report.describe()
                    ),
                    marked_at: now,
                });
                state.save(&self.root.state())?;
                failure.marked_bad = true;
                return Err(Error::ActivationFailed(failure));
            }
            Err(error) => return Err(error),
        };
        Ok(SlotActivation {
            module: target.name.clone(),
            version: target.version.clone(),
            slot,
            slot_path: self.paths.get(slot).to_owned(),
            previous,
            source,
            hook,
            switched: true,
            fallbacks,
            downloaded_bytes: cache.received() - before,
        })
    }

    /// Writes the image into `slot` (patch, else package), verifies and records it.
    #[expect(clippy::too_many_arguments, reason = "one internal step of install")]
    fn write(
        &mut self,
        cache: &Cache<'_>,
        target: &ImageTarget<'_>,
        index: &FileIndex,
        file: &ImageFile,
        slot: SlotName,
        fallbacks: &mut u32,
        now: Timestamp,
    ) -> Result<ImageSource> {
        let record = SlotImage {
            version: target.version.clone(),
            module: target.name.clone(),
            size: file.size,
            blake3: file.blake3.clone(),
            path: self.paths.get(slot).to_owned(),
            written_at: now,
        };
        if !target.packages_only {
            match self.rebuild_from_pack(cache, target, index, file) {
                Ok(Some((content, source))) => {
                    self.clear(slot)?;
                    let mut writer = SlotWriter::open(slot, self.paths.get(slot), file.size)?;
                    writer
                        .write_all(&content)
                        .map_err(|error| writer.error(error))?;
                    self.finish(writer, target.name, file, record)?;
                    return Ok(source);
                }
                Ok(None) => {}
                Err(error) if error.is_remote() => *fallbacks += 1,
                Err(error) => return Err(error),
            }
        }
        let package = cache.image_package(target.name, &target.module.package)?;
        let copy = File::open(&package).map_err(|source| InstallError::Cache {
            path: package.clone(),
            source,
        })?;
        self.clear(slot)?;
        let mut writer = SlotWriter::open(slot, self.paths.get(slot), file.size)?;
        if let Err(error) = crate::install::patch::decompress(copy, &mut writer) {
            return Err(match writer.writer.take_failure() {
                Some(source) => Error::WriteSlot {
                    slot,
                    path: writer.path,
                    source,
                },
                None => InstallError::ReadPackage {
                    module: target.name.clone(),
                    path: package,
                    source: error,
                }
                .into(),
            });
        }
        self.finish(writer, target.name, file, record)?;
        Ok(ImageSource::Package {
            bytes: target.module.package.size,
        })
    }

    /// The image rebuilt in memory from the patch the update's delta pack carries for
    /// it, or `None` when there is no pack, it carries no patch for the image, or no
    /// slot holds the patch's base.
    fn rebuild_from_pack(
        &self,
        cache: &Cache<'_>,
        target: &ImageTarget<'_>,
        index: &FileIndex,
        file: &ImageFile,
    ) -> Result<Option<(Vec<u8>, ImageSource)>> {
        let Some(pack) = target.pack else {
            return Ok(None);
        };
        let url = cache.url(&wavecast_site::layout::blob(
            &pack.blake3,
            wavecast_site::layout::BlobKind::Pack,
        ));
        let bytes = cache.pack(target.name, pack)?;
        let (header, payload) =
            PackHeader::decode(&bytes).map_err(|source| InstallError::ParsePack {
                url: url.clone(),
                source,
            })?;
        let [entry] = index.entries.as_slice() else {
            return Ok(None);
        };
        let data = header
            .modules
            .get(target.name)
            .and_then(|delta| {
                delta
                    .entries
                    .iter()
                    .find(|packed| packed.entry.path == entry.path)
            })
            .and_then(|packed| packed.data.as_ref());
        let Some(PackData::Patch {
            base,
            algorithm,
            offset,
            length,
        }) = data
        else {
            return Ok(None);
        };
        let preference = self
            .state
            .active
            .map_or(SlotName::BOTH, |active| [active, active.other()]);
        let Some(base_slot) = preference.into_iter().find(|slot| {
            self.paths
                .holding(&self.state, *slot)
                .is_some_and(|image| &image.blake3 == base)
        }) else {
            return Ok(None);
        };
        let base_image = self
            .paths
            .holding(&self.state, base_slot)
            .expect("the slot was chosen for holding the base");
        let Some(base_content) = read_slot(base_slot, self.paths.get(base_slot), base_image)?
        else {
            return Ok(None);
        };
        let patch = usize::try_from(*offset)
            .ok()
            .zip(usize::try_from(offset + length).ok())
            .and_then(|(start, end)| payload.get(start..end))
            .ok_or_else(|| InstallError::PatchMismatch {
                url: url.clone(),
                source: None,
            })?;
        let content = wavecast_delta::apply_patch(*algorithm, &base_content, patch, file.size)
            .map_err(|source| InstallError::PatchMismatch {
                url: url.clone(),
                source: Some(source),
            })?;
        if content.len() as u64 != file.size || Blake3Hash::of(&content) != file.blake3 {
            return Err(InstallError::PatchMismatch { url, source: None }.into());
        }
        Ok(Some((
            content,
            ImageSource::Patch {
                base: base_slot,
                algorithm: *algorithm,
                bytes: *length,
            },
        )))
    }

    /// Forgets what `slot` held, before it is written.
    fn clear(&mut self, slot: SlotName) -> Result<()> {
        if self.state.image(slot).is_some() {
            self.state.set(slot, None);
            self.save()?;
        }
        Ok(())
    }

    /// Flushes a written slot, checks it holds exactly the image and records it.
    fn finish(
        &mut self,
        writer: SlotWriter,
        module: &ModuleName,
        file: &ImageFile,
        record: SlotImage,
    ) -> Result<()> {
        let slot = writer.slot;
        let (written, actual) = writer.finish(file.mode)?;
        if written != file.size || actual != file.blake3 {
            return Err(Error::ImageMismatch {
                module: module.clone(),
                slot,
                expected: file.blake3.clone(),
                actual,
            });
        }
        self.state.set(slot, Some(record));
        self.save()
    }

    /// Whether `slot` still holds `size` bytes hashing to `blake3`.
    fn slot_matches(&self, slot: SlotName, size: u64, blake3: &Blake3Hash) -> Result<bool> {
        let path = self.paths.get(slot);
        Ok(hash_slot(slot, path, size)?.is_some_and(|hash| &hash == blake3))
    }

    /// Runs the hook, when one is configured, for the image of `version` in `slot`,
    /// taking over from `previous`.
    fn run_hook(
        &self,
        module: &ModuleName,
        version: &Version,
        slot: SlotName,
        previous: Option<SlotName>,
    ) -> Result<Option<HealthCheckReport>> {
        let Some(command) = &self.config.on_activate else {
            return Ok(None);
        };
        let run_error = |source| Error::RunActivation {
            version: version.clone(),
            command: command.clone(),
            slot,
            source,
        };
        let root = std::path::absolute(self.root.path()).map_err(run_error)?;
        let previous_image =
            previous.and_then(|previous| self.paths.holding(&self.state, previous));
        let env: [(&str, OsString); 8] = [
            ("WAVECAST_ROOT", root.clone().into_os_string()),
            ("WAVECAST_MODULE", module.as_str().into()),
            ("WAVECAST_SLOT", slot.as_str().into()),
            ("WAVECAST_SLOT_PATH", self.paths.get(slot).into()),
            ("WAVECAST_VERSION", version.to_string().into()),
            (
                "WAVECAST_PREVIOUS_SLOT",
                previous.map_or("", SlotName::as_str).into(),
            ),
            (
                "WAVECAST_PREVIOUS_SLOT_PATH",
                previous.map_or_else(OsString::new, |previous| {
                    self.paths.get(previous).as_os_str().to_owned()
                }),
            ),
            (
                "WAVECAST_PREVIOUS_VERSION",
                previous_image
                    .map(|image| image.version.to_string())
                    .unwrap_or_default()
                    .into(),
            ),
        ];
        run_shell(&Shell {
            command,
            dir: &root,
            env: &env,
            timeout: self.config.activate_timeout,
        })
        .map(Some)
        .map_err(run_error)
    }

    /// Runs the hook for `slot`, which holds `version` of `module`, and makes it the
    /// active slot (recorded) when the hook passes or there is none. A hook that
    /// fails changes nothing: [`Error::ActivationFailed`], not marked bad.
    fn activate(
        &mut self,
        module: &ModuleName,
        version: &Version,
        slot: SlotName,
    ) -> Result<Option<HealthCheckReport>> {
        let previous = self.state.active;
        let hook = self.run_hook(module, version, slot, previous)?;
        if let Some(report) = hook.as_ref().filter(|report| !report.status.passed()) {
            return Err(Error::ActivationFailed(Box::new(ActivationFailure {
                version: version.clone(),
                slot,
                slot_path: self.paths.get(slot).to_owned(),
                report: report.clone(),
                active: previous,
                marked_bad: false,
            })));
        }
        self.state.active = Some(slot);
        self.save()?;
        Ok(hook)
    }

    /// Makes `slot`, which holds `image` (hashed again first), active: runs the hook,
    /// then records the switch. On failure nothing changes.
    fn switch_to(&mut self, slot: SlotName, image: &SlotImage) -> Result<SlotActivation> {
        if !self.slot_matches(slot, image.size, &image.blake3)? {
            return Err(Error::SlotChanged {
                slot,
                path: self.paths.get(slot).to_owned(),
                version: image.version.clone(),
            });
        }
        let previous = self.state.active;
        let hook = self.activate(&image.module, &image.version, slot)?;
        Ok(SlotActivation {
            module: image.module.clone(),
            version: image.version.clone(),
            slot,
            slot_path: self.paths.get(slot).to_owned(),
            previous,
            source: ImageSource::InSlot,
            hook,
            switched: true,
            fallbacks: 0,
            downloaded_bytes: 0,
        })
    }

    /// Undoes `activation` after a later step of the install failed: the slot active
    /// before becomes active again (its hook runs), or, when none was, no slot is
    /// active. Does nothing when `activation` switched nothing.
    ///
    /// # Errors
    ///
    /// [`Error::ActivationFailed`], [`Error::RunActivation`], [`Error::SlotChanged`]
    /// (the new slot stays active); record errors.
    pub(crate) fn revert(&mut self, activation: &SlotActivation) -> Result<()> {
        if !activation.switched || self.state.active != Some(activation.slot) {
            return Ok(());
        }
        match activation.previous {
            Some(previous) => {
                let image = self
                    .paths
                    .holding(&self.state, previous)
                    .cloned()
                    .ok_or_else(|| Error::SlotChanged {
                        slot: previous,
                        path: self.paths.get(previous).to_owned(),
                        version: activation.version.clone(),
                    })?;
                self.switch_to(previous, &image).map(drop)
            }
            None => {
                self.state.active = None;
                self.save()
            }
        }
    }

    /// Makes the slots follow a rollback of the release tree from `from` to `to`
    /// (see the module docs). Returns the activation when a slot was switched.
    ///
    /// # Errors
    ///
    /// [`Error::NoImageToRollBackTo`] when the active slot holds `from`'s image and
    /// the other slot does not hold `to`'s; [`Error::SlotChanged`],
    /// [`Error::ActivationFailed`], [`Error::RunActivation`] (nothing changed).
    pub(crate) fn follow(
        &mut self,
        from: &Version,
        to: &Version,
    ) -> Result<Option<SlotActivation>> {
        let active = self.state.active;
        let active_version = active
            .and_then(|slot| self.paths.holding(&self.state, slot))
            .map(|image| image.version.clone());
        if active_version.as_ref() == Some(to) {
            return Ok(None);
        }
        let candidates = active.map_or(SlotName::BOTH.to_vec(), |active| vec![active.other()]);
        let holding = candidates.into_iter().find_map(|slot| {
            self.paths
                .holding(&self.state, slot)
                .filter(|image| &image.version == to)
                .map(|image| (slot, image.clone()))
        });
        match holding {
            Some((slot, image)) => self.switch_to(slot, &image).map(Some),
            None if active_version.as_ref() == Some(from) => {
                let other = active.map(SlotName::other).unwrap_or(SlotName::B);
                Err(Error::NoImageToRollBackTo {
                    to: to.clone(),
                    slot: other,
                    holds: self
                        .paths
                        .holding(&self.state, other)
                        .map(|image| image.version.clone()),
                })
            }
            None => Ok(None),
        }
    }

    /// Both slots and what they hold, for `status`.
    pub(crate) fn status(&self) -> SlotsStatus {
        SlotsStatus {
            active: self.state.active,
            slots: SlotName::BOTH
                .iter()
                .map(|slot| SlotStatus {
                    name: *slot,
                    path: self.paths.get(*slot).to_owned(),
                    image: self.paths.holding(&self.state, *slot).cloned(),
                })
                .collect(),
        }
    }

    /// Whether a record exists: an image was ever written here.
    pub(crate) fn recorded(&self) -> bool {
        self.state.a.is_some() || self.state.b.is_some() || self.state.active.is_some()
    }
}

/// The one file an image module's index must list, of the module's unpacked size.
fn image_file(target: &ImageTarget<'_>, index: &FileIndex) -> Result<ImageFile> {
    let problem = |problem: String| Error::ImageIndex {
        module: target.name.clone(),
        problem,
    };
    let [entry] = index.entries.as_slice() else {
        return Err(problem(format!(
            "it lists {} entries instead of one file",
            index.entries.len()
        )));
    };
    let EntryKind::File {
        size,
        blake3,
        packed_size,
    } = &entry.kind
    else {
        return Err(problem(format!("`{}` is a directory", entry.path)));
    };
    if *size != target.module.unpacked_size {
        return Err(problem(format!(
            "`{}` is {size} bytes, but the manifest says {}",
            entry.path, target.module.unpacked_size
        )));
    }
    Ok(ImageFile {
        size: *size,
        blake3: blake3.clone(),
        packed_size: *packed_size,
        mode: entry.mode,
    })
}

/// The blake3 of the first `size` bytes of the slot at `path`; `None` when it is
/// missing, shorter, or (a regular file) longer.
fn hash_slot(slot: SlotName, path: &Path, size: u64) -> Result<Option<Blake3Hash>> {
    let read_error = |source| Error::ReadSlot {
        slot,
        path: path.to_owned(),
        source,
    };
    let file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(read_error(source)),
    };
    let metadata = file.metadata().map_err(read_error)?;
    if metadata.is_file() && metadata.len() != size {
        return Ok(None);
    }
    let mut hasher = blake3::Hasher::new();
    let read = io::copy(&mut file.take(size), &mut hasher).map_err(read_error)?;
    Ok((read == size).then(|| hasher.finalize().into()))
}

/// The content of the slot at `path`, when it still is `image`.
fn read_slot(slot: SlotName, path: &Path, image: &SlotImage) -> Result<Option<Vec<u8>>> {
    let read_error = |source| Error::ReadSlot {
        slot,
        path: path.to_owned(),
        source,
    };
    let file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(read_error(source)),
    };
    let mut content = Vec::new();
    file.take(image.size)
        .read_to_end(&mut content)
        .map_err(read_error)?;
    Ok(
        (content.len() as u64 == image.size && Blake3Hash::of(&content) == image.blake3)
            .then_some(content),
    )
}

/// Writes an image into a slot from its first byte, hashing what it writes and
/// refusing more than the image's size. A regular file is created when missing (with
/// its parent folders) and cut to the image's size; a device is written in place.
struct SlotWriter {
    slot: SlotName,
    path: PathBuf,
    regular: bool,
    /// The slot, bounded to the image's size; it remembers an error of the slot
    /// itself, to tell it from a decoder's.
    writer: HashingWriter<File>,
}

impl SlotWriter {
    fn open(slot: SlotName, path: &Path, size: u64) -> Result<Self> {
        let write_error = |source| Error::WriteSlot {
            slot,
            path: path.to_owned(),
            source,
        };
        if let Some(parent) = path.parent()
            && std::fs::symlink_metadata(path).is_err()
        {
            std::fs::create_dir_all(parent).map_err(write_error)?;
        }
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(write_error)?;
        let regular = file.metadata().map_err(write_error)?.is_file();
        Ok(Self {
            slot,
            path: path.to_owned(),
            regular,
            writer: HashingWriter::new(file, size),
        })
    }

    /// The [`Error::WriteSlot`] for a failed write.
    fn error(&mut self, error: io::Error) -> Error {
        Error::WriteSlot {
            slot: self.slot,
            path: self.path.clone(),
            source: self.writer.take_failure().unwrap_or(error),
        }
    }

    /// Cuts a regular file to what was written (with `mode`), flushes the slot to
    /// disk, and returns the bytes written and their blake3.
    fn finish(self, mode: FileMode) -> Result<(u64, Blake3Hash)> {
        let write_error = |source| Error::WriteSlot {
            slot: self.slot,
            path: self.path.clone(),
            source,
        };
        let file = self.writer.get_ref();
        if self.regular {
            file.set_len(self.writer.written()).map_err(write_error)?;
            crate::platform::set_file_mode(file, mode.bits()).map_err(write_error)?;
        }
        file.sync_all().map_err(write_error)?;
        if let Some(parent) = self.path.parent().filter(|_| self.regular) {
            crate::store::root::sync_dir(parent).map_err(write_error)?;
        }
        Ok((self.writer.written(), self.writer.hash()))
    }
}

impl Write for SlotWriter {
    fn write(&mut self, buffer: &[u8]) -> io::Result<usize> {
        self.writer.write(buffer)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer.flush()
    }
}

/// The absolute paths of both slots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SlotPaths {
    /// Where slot `a` is.
    pub(crate) a: PathBuf,
    /// Where slot `b` is.
    pub(crate) b: PathBuf,
}

impl SlotPaths {
    /// The configured paths (relative ones under the root), else `ROOT/slots/a` and
    /// `ROOT/slots/b`, made absolute.
    ///
    /// # Errors
    ///
    /// [`Error::SlotsShareAPath`] when both are the same path; [`Error::ReadSlot`]
    /// when the working directory cannot be read to make a path absolute.
    pub(crate) fn resolve(root: &InstallRoot, config: &SlotConfig) -> Result<Self> {
        let path = |slot: SlotName| {
            let path = config.path(slot).map_or_else(
                || root.path().join("slots").join(slot.as_str()),
                |path| root.path().join(path),
            );
            std::path::absolute(&path).map_err(|source| Error::ReadSlot { slot, path, source })
        };
        let paths = Self {
            a: path(SlotName::A)?,
            b: path(SlotName::B)?,
        };
        if paths.a == paths.b {
            return Err(Error::SlotsShareAPath { path: paths.a });
        }
        Ok(paths)
    }

    /// What `state` records in `slot`, if the image there was written at the path
    /// the slot has now.
    pub(crate) fn holding<'s>(
        &self,
        state: &'s SlotsState,
        slot: SlotName,
    ) -> Option<&'s SlotImage> {
        state
            .image(slot)
            .filter(|image| image.path == self.get(slot))
    }

    /// The path of `slot`.
    pub(crate) fn get(&self, slot: SlotName) -> &Path {
        match slot {
            SlotName::A => &self.a,
            SlotName::B => &self.b,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::command::tests::{NEWLINE, shell};

    /// Writes the image of `document` (whose image module is `os`) through the slots
    /// of `root`, with `pack` as the update's pack.
    fn install_image(
        root: &InstallRoot,
        site: &crate::install::test_site::TestSite,
        document: &PlatformRelease,
        pack: Option<&PackRef>,
    ) -> SlotActivation {
        let config = SlotConfig::default();
        let cache = Cache::open(
            root,
            &site.transport,
            std::slice::from_ref(&site.base),
            &crate::install::reporter::NoReporter,
            crate::net::limits::DownloadLimits::default(),
        )
        .unwrap();
        let (name, module) = image_module(document).unwrap();
        let target = ImageTarget {
            version: &document.version,
            name,
            module,
            dir: "dir",
            packages_only: false,
            pack,
        };
        let mut state = State::generate().unwrap();
        Slots::open(root, &config)
            .unwrap()
            .install(&cache, &target, &mut state, Timestamp::UNIX_EPOCH)
            .unwrap()
    }

    #[test]
    fn an_image_is_rebuilt_from_the_packs_patch_against_the_slot_holding_its_base() {
        let dir = tempfile::tempdir().unwrap();
        let root = InstallRoot::new(dir.path());
        std::fs::create_dir_all(root.meta()).unwrap();
        let site = crate::install::test_site::TestSite::new();
        let old = crate::install::patch::tests::noise(200_000, 1);
        let new = crate::install::patch::tests::edited(&old);
        let one = site.image("1.0.0", "rootfs.img", &old);
        let two = site.image("2.0.0", "rootfs.img", &new);
        let v1 = site.document("1.0.0", &[("os", &one)]);
        let mut v2 = site.document("2.0.0", &[("os", &two)]);
        let contents = std::collections::HashMap::from([
            (Blake3Hash::of(&old), old.clone()),
            (Blake3Hash::of(&new), new.clone()),
        ]);
        let pack = site.pack(
            (&v1, &std::collections::BTreeMap::from([("os", &one.index)])),
            (
                &mut v2,
                &std::collections::BTreeMap::from([("os", &two.index)]),
            ),
            &contents,
            PatchAlgorithm::BsdiffZstd,
        );

        let first = install_image(&root, &site, &v1, None);
        assert_eq!(first.slot, SlotName::A);
        assert!(matches!(first.source, ImageSource::Package { .. }));
        site.transport.clear_requests();
        let second = install_image(&root, &site, &v2, Some(&pack));
        assert_eq!(second.slot, SlotName::B);
        let ImageSource::Patch { base, bytes, .. } = second.source else {
            panic!("{:?}", second.source);
        };
        assert_eq!(base, SlotName::A);
        assert!(bytes < 10_000, "{bytes}");
        assert_eq!(std::fs::read(root.path().join("slots/b")).unwrap(), new);
        let pack_url = site.blob_url(&pack.blake3, wavecast_site::layout::BlobKind::Pack);
        assert!(
            site.transport
                .requests()
                .iter()
                .all(|(url, _)| url == &pack_url || url.ends_with(".json.zst")),
            "no package: {:?}",
            site.transport.requests()
        );
    }

    fn paths() -> SlotPaths {
        SlotPaths {
            a: "/slots/a".into(),
            b: "/slots/b".into(),
        }
    }

    fn image(version: &str, content: &[u8], path: &str) -> SlotImage {
        SlotImage {
            version: version.parse().unwrap(),
            module: "os".parse().unwrap(),
            size: content.len() as u64,
            blake3: Blake3Hash::of(content),
            path: path.into(),
            written_at: Timestamp::UNIX_EPOCH,
        }
    }

    fn state(active: Option<SlotName>, a: Option<SlotImage>, b: Option<SlotImage>) -> SlotsState {
        SlotsState {
            active,
            a,
            b,
            ..SlotsState::default()
        }
    }

    #[test]
    fn the_inactive_slot_is_chosen_and_the_active_one_never_written() {
        let (one, two) = (Blake3Hash::of(b"one"), Blake3Hash::of(b"two"));
        let choose = |state: &SlotsState, hash: &Blake3Hash| choose_slot(state, &paths(), hash, 3);
        // Nothing installed: `a` first.
        let empty = SlotsState::default();
        assert_eq!(choose(&empty, &one), SlotChoice::Write(SlotName::A));
        // `a` active with 1.0.0: 1.1.0 goes to `b`, and 1.0.0 is already there.
        let a_one = state(
            Some(SlotName::A),
            Some(image("1.0.0", b"one", "/slots/a")),
            None,
        );
        assert_eq!(choose(&a_one, &two), SlotChoice::Write(SlotName::B));
        assert_eq!(choose(&a_one, &one), SlotChoice::Active(SlotName::A));
        // `b` holds the target but was never activated: reused, not rewritten.
        let b_two = state(
            Some(SlotName::A),
            Some(image("1.0.0", b"one", "/slots/a")),
            Some(image("1.1.0", b"two", "/slots/b")),
        );
        assert_eq!(choose(&b_two, &two), SlotChoice::Reuse(SlotName::B));
        // The active slot is rewritten by nobody, even when the inactive one holds
        // something else and the target matches neither.
        let three = Blake3Hash::of(b"333");
        assert_eq!(choose(&b_two, &three), SlotChoice::Write(SlotName::B));
        let b_active = SlotsState {
            active: Some(SlotName::B),
            ..b_two.clone()
        };
        assert_eq!(choose(&b_active, &three), SlotChoice::Write(SlotName::A));
        assert_eq!(choose(&b_active, &one), SlotChoice::Reuse(SlotName::A));
        // A record written at another path (the slot was reconfigured) holds nothing.
        let moved = state(
            Some(SlotName::A),
            Some(image("1.0.0", b"one", "/old/a")),
            Some(image("1.1.0", b"two", "/old/b")),
        );
        assert_eq!(choose(&moved, &one), SlotChoice::Write(SlotName::B));
        assert_eq!(choose(&moved, &two), SlotChoice::Write(SlotName::B));
        // Same hash, other size: not the image.
        assert_eq!(
            choose_slot(&a_one, &paths(), &one, 4),
            SlotChoice::Write(SlotName::B)
        );
    }

    #[test]
    fn a_slot_writer_keeps_exactly_the_image_and_cuts_a_longer_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deep/slots/a");
        let mut writer = SlotWriter::open(SlotName::A, &path, 5).unwrap();
        writer.write_all(b"hello").unwrap();
        assert!(writer.write_all(b"!").is_err(), "past the declared size");
        let mode = FileMode::from_permissions(0o640);
        let (written, hash) = writer.finish(mode).unwrap();
        assert_eq!((written, hash), (5, Blake3Hash::of(b"hello")));
        assert_eq!(std::fs::read(&path).unwrap(), b"hello");
        crate::platform::assert_mode(&path, 0o640);
        assert_eq!(
            hash_slot(SlotName::A, &path, 5).unwrap(),
            Some(Blake3Hash::of(b"hello"))
        );

        let mut writer = SlotWriter::open(SlotName::A, &path, 2).unwrap();
        writer.write_all(b"hi").unwrap();
        writer.finish(mode).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"hi", "the old tail is cut");
        assert_eq!(hash_slot(SlotName::A, &path, 5).unwrap(), None);
        assert_eq!(
            hash_slot(SlotName::A, &dir.path().join("missing"), 2).unwrap(),
            None
        );
        let recorded = image("1.0.0", b"hi", path.to_str().unwrap());
        assert_eq!(
            read_slot(SlotName::A, &path, &recorded).unwrap().unwrap(),
            b"hi"
        );
        std::fs::write(&path, b"ho").unwrap();
        assert_eq!(read_slot(SlotName::A, &path, &recorded).unwrap(), None);
    }

    fn version(text: &str) -> Version {
        text.parse().unwrap()
    }

    #[test]
    fn rollbacks_follow_into_the_other_slot_or_are_refused_and_reverts_restore() {
        let dir = tempfile::tempdir().unwrap();
        let root = InstallRoot::new(dir.path());
        std::fs::create_dir_all(root.meta()).unwrap();
        let slots_dir = dir.path().join("slots");
        std::fs::create_dir_all(&slots_dir).unwrap();
        let (a, b) = (slots_dir.join("a"), slots_dir.join("b"));
        std::fs::write(&a, b"one").unwrap();
        std::fs::write(&b, b"two").unwrap();
        let config = SlotConfig {
            on_activate: Some(
                shell(
                    "echo \"$WAVECAST_SLOT $WAVECAST_VERSION from $WAVECAST_PREVIOUS_SLOT\" >> hook.log",
                    "echo %WAVECAST_SLOT% %WAVECAST_VERSION% from %WAVECAST_PREVIOUS_SLOT%>> hook.log",
                )
                .into(),
            ),
            ..SlotConfig::default()
        };
        let log = || std::fs::read_to_string(dir.path().join("hook.log")).unwrap_or_default();
        let mut slots = Slots::open(&root, &config).unwrap();
        slots.state = state(
            Some(SlotName::B),
            Some(image("1.0.0", b"one", a.to_str().unwrap())),
            Some(image("1.1.0", b"two", b.to_str().unwrap())),
        );

        // 1.1.0 (in b) back to 1.0.0: slot a holds it, so it is activated.
        let switched = slots
            .follow(&version("1.1.0"), &version("1.0.0"))
            .unwrap()
            .unwrap();
        assert_eq!(
            (switched.slot, switched.previous),
            (SlotName::A, Some(SlotName::B))
        );
        assert!(switched.hook.unwrap().status.passed());
        assert_eq!(log(), format!("a 1.0.0 from b{NEWLINE}"));
        assert_eq!(
            Slots::open(&root, &config).unwrap().state.active,
            Some(SlotName::A),
            "the switch is saved"
        );
        assert!(
            slots
                .follow(&version("1.1.0"), &version("1.0.0"))
                .unwrap()
                .is_none(),
            "already there"
        );
        // Leaving 1.0.0 (active) for 0.9.0, which no slot holds: refused.
        let error = slots
            .follow(&version("1.0.0"), &version("0.9.0"))
            .unwrap_err();
        assert!(
            matches!(
                &error,
                Error::NoImageToRollBackTo { slot: SlotName::B, holds: Some(holds), .. }
                    if holds.to_string() == "1.1.0"
            ),
            "{error}"
        );
        // Leaving a release without an image: the slots stay as they are.
        assert!(
            slots
                .follow(&version("2.0.0"), &version("1.5.0"))
                .unwrap()
                .is_none()
        );
        assert_eq!(log().lines().count(), 1);

        // Reverting an activation of b that took over from a.
        slots.state.active = Some(SlotName::B);
        let activation = SlotActivation {
            module: "os".parse().unwrap(),
            version: version("1.1.0"),
            slot: SlotName::B,
            slot_path: b.clone(),
            previous: Some(SlotName::A),
            source: ImageSource::InSlot,
            hook: None,
            switched: true,
            fallbacks: 0,
            downloaded_bytes: 0,
        };
        slots.revert(&activation).unwrap();
        assert_eq!(slots.state.active, Some(SlotName::A));
        assert_eq!(log().lines().last(), Some("a 1.0.0 from b"));
        // A first activation reverts to no active slot, running nothing.
        slots.state.active = Some(SlotName::B);
        slots
            .revert(&SlotActivation {
                previous: None,
                ..activation.clone()
            })
            .unwrap();
        assert_eq!(slots.state.active, None);
        assert_eq!(log().lines().count(), 2);

        // A failing hook changes nothing.
        let failing = SlotConfig {
            on_activate: Some("exit 4".into()),
            ..SlotConfig::default()
        };
        let mut slots = Slots::open(&root, &failing).unwrap();
        slots.state.active = Some(SlotName::B);
        let error = slots
            .follow(&version("1.1.0"), &version("1.0.0"))
            .unwrap_err();
        let Error::ActivationFailed(failure) = &error else {
            panic!("{error}");
        };
        assert_eq!(
            failure.to_string(),
            format!(
                "1.0.0 was not activated in slot a (`{}`): on-activate `exit 4` exited with status 4; slot b stays active",
                a.display()
            )
        );
        assert_eq!(slots.state.active, Some(SlotName::B));
    }

    #[test]
    fn both_slots_cannot_share_a_path_and_the_record_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let root = InstallRoot::new(dir.path());
        let config = SlotConfig::default();
        let paths = SlotPaths::resolve(&root, &config).unwrap();
        assert_eq!(paths.get(SlotName::B), dir.path().join("slots/b"));
        let same = SlotConfig {
            a: Some(dir.path().join("x")),
            b: Some(dir.path().join("x")),
            ..SlotConfig::default()
        };
        let error = SlotPaths::resolve(&root, &same).unwrap_err();
        assert!(matches!(error, Error::SlotsShareAPath { .. }), "{error}");

        std::fs::create_dir_all(root.meta()).unwrap();
        let mut slots = Slots::open(&root, &config).unwrap();
        assert!(!slots.recorded());
        slots.state = state(
            Some(SlotName::B),
            None,
            Some(image(
                "1.0.0",
                b"one",
                dir.path().join("slots/b").to_str().unwrap(),
            )),
        );
        slots.save().unwrap();
        let reopened = Slots::open(&root, &config).unwrap();
        assert_eq!(reopened.state, slots.state);
        let status = reopened.status();
        assert_eq!(status.active, Some(SlotName::B));
        assert_eq!(
            status.slots[1].image.as_ref().unwrap().version.to_string(),
            "1.0.0"
        );
        assert!(status.slots[0].image.is_none());
    }
}
