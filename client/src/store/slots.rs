//! `ROOT/.wavecast/slots.json`: which of the two image slots is active and what each
//! holds ([`SlotsState`]), and where the slots are ([`SlotPaths`]). Writing images
//! into slots and activating them is the lifecycle layer's work.

use std::io;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use semver::Version;
use serde::{Deserialize, Serialize};
use wavecast_schema::{Blake3Hash, ModuleName};

use crate::error::{Error, Result};
use crate::store::config::{SlotConfig, SlotName};
use crate::store::root::InstallRoot;

/// The newest format of `slots.json` this build reads and writes.
pub const SLOTS_FORMAT: u32 = 1;

/// What a slot holds: a verified image, as recorded in `slots.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotImage {
    /// The release the image was installed for.
    pub version: Version,
    /// The image module.
    pub module: ModuleName,
    /// The image's size in bytes (a block device is larger; only these bytes count).
    pub size: u64,
    /// The image's blake3.
    pub blake3: Blake3Hash,
    /// The path it was written to. A slot whose configured path has changed since
    /// holds nothing as far as the client knows.
    pub path: PathBuf,
    /// When it was written.
    pub written_at: Timestamp,
}

/// `ROOT/.wavecast/slots.json`: which slot is active and what each holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotsState {
    /// Format of this file.
    pub format: u32,
    /// The active slot; `None` before the first image is activated.
    pub active: Option<SlotName>,
    /// What slot `a` holds, when known.
    #[serde(default)]
    pub a: Option<SlotImage>,
    /// What slot `b` holds, when known.
    #[serde(default)]
    pub b: Option<SlotImage>,
}

impl Default for SlotsState {
    fn default() -> Self {
        Self {
            format: SLOTS_FORMAT,
            active: None,
            a: None,
            b: None,
        }
    }
}

impl SlotsState {
    /// The record of `slot`.
    pub fn image(&self, slot: SlotName) -> Option<&SlotImage> {
        match slot {
            SlotName::A => self.a.as_ref(),
            SlotName::B => self.b.as_ref(),
        }
    }

    pub(crate) fn set(&mut self, slot: SlotName, image: Option<SlotImage>) {
        match slot {
            SlotName::A => self.a = image,
            SlotName::B => self.b = image,
        }
    }

    /// What `slot` holds, when it was written at the path it has now.
    pub(crate) fn holds(&self, paths: &SlotPaths, slot: SlotName) -> Option<&SlotImage> {
        self.image(slot)
            .filter(|image| image.path == paths.get(slot))
    }

    /// Reads the record at `path`; `None` when there is none.
    pub(crate) fn load(path: &Path) -> Result<Option<Self>> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(Error::ReadSlots {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        let format =
            crate::store::state::peek_format(&bytes).map_err(|source| Error::ParseSlots {
                path: path.to_owned(),
                source,
            })?;
        if format > SLOTS_FORMAT {
            return Err(Error::UnsupportedFileFormat {
                path: path.to_owned(),
                found: format,
                supported: SLOTS_FORMAT,
            });
        }
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| Error::ParseSlots {
                path: path.to_owned(),
                source,
            })
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

    /// The path of `slot`.
    pub(crate) fn get(&self, slot: SlotName) -> &Path {
        match slot {
            SlotName::A => &self.a,
            SlotName::B => &self.b,
        }
    }
}
