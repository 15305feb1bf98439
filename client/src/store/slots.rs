//! `ROOT/.wavecast/slots.json`: which of the two image slots is active and what each
//! holds ([`SlotsState`]). Where the slots are, and writing and activating images,
//! are the lifecycle layer's work.

use std::io;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use semver::Version;
use serde::{Deserialize, Serialize};
use wavecast_schema::{Blake3Hash, ModuleName};

use crate::store::config::SlotName;
use crate::store::error::{Error, Result};

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
