//! Delta packs: one download that takes a client from an earlier release to the new
//! one ([`wavecast_schema::PackHeader`] describes the format).
//!
//! A pack from release `from` lists, for every module whose file index differs, how
//! that index changes ([`ModuleDelta::between`] the two trees, so a pack from two
//! releases back also carries the files that changed only in the release between),
//! and carries each new content `from` lacks as the smallest of its patches from
//! `from`'s counterparts ([`crate::delta`]) and its zstd copy, back to back after the
//! header. The bytes come from the publish's spool and are streamed to a temporary
//! file, so a pack of any size is never held in memory.

use std::collections::HashMap;
use std::path::Path;

use semver::Version;
use wavecast_schema::{
    Blake3Hash, EntryKind, FileIndex, IndexEntry, Module, ModuleDelta, ModuleName, PackData,
    PackHeader,
};

use crate::copies::{BlobWriter, FileCopies, Spool, Spooled, WrittenBlob};
use crate::delta::{BuiltPatch, Pair, targets};
use crate::earlier::Earlier;
use crate::error::Result;

/// One module of the release a pack updates to: its record and its file index.
#[derive(Debug, Clone, Copy)]
pub struct NewModule<'a> {
    /// The module's name.
    pub name: &'a ModuleName,
    /// Its record in the new platform release document.
    pub record: &'a Module,
    /// Its file index, exactly as the record names it.
    pub index: &'a FileIndex,
}

/// What a pack holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackSummary {
    /// The release it updates from.
    pub from: Version,
    /// Its size in bytes.
    pub size: u64,
    /// The size of its magic, length and compressed header, before the payload.
    pub header_size: u64,
    /// Modules whose index changes.
    pub modules: usize,
    /// Contents carried as patches, and their bytes.
    pub patches: usize,
    /// Total size of the patches.
    pub patch_bytes: u64,
    /// Contents carried as zstd copies.
    pub copies: usize,
    /// Total size of the copies.
    pub copy_bytes: u64,
    /// Whether this publish uploaded it (false when the site had it already).
    pub uploaded: bool,
}

/// A pack written to a temporary file, ready to upload.
#[derive(Debug)]
pub struct BuiltPack {
    /// The file and its blob.
    pub written: WrittenBlob,
    /// What it holds.
    pub summary: PackSummary,
}

/// Where a pack's contents come from: the patches built and the copies made.
#[derive(Debug, Clone, Copy)]
pub struct PackInputs<'a> {
    /// The smallest verified patch of each pair that has one.
    pub patches: &'a HashMap<Pair, BuiltPatch>,
    /// The zstd copy of every new content.
    pub copies: &'a FileCopies<'a>,
    /// Where both wait.
    pub spool: &'a Spool,
}

/// Writes the pack that updates `from` to release `to`, made of `modules`, into a
/// temporary file in `temp_dir`. `None` when `from` lacks the file index of a module
/// it has, without which the pack cannot say how that module changes.
///
/// # Errors
///
/// [`crate::Error::MissingCopy`], spool and write errors.
pub fn build(
    from: &Earlier,
    to: &Version,
    modules: &[NewModule<'_>],
    inputs: PackInputs<'_>,
    temp_dir: &Path,
) -> Result<Option<BuiltPack>> {
    let mut header = PackHeader::new(from.version.clone(), to.clone());
    let mut payload = Payload::default();
    for module in modules {
        let old = match from.document.modules.get(module.name) {
            Some(old) if old.index.blake3 == module.record.index.blake3 => continue,
            Some(_) => match from.indexes.get(module.name) {
                Some(index) => Some(index),
                None => return Ok(None),
            },
            None => None,
        };
        let bases: HashMap<Blake3Hash, Vec<Blake3Hash>> = targets(old, module.index)
            .into_iter()
            .map(|target| {
                let bases = target.bases.into_iter().map(|(base, _)| base).collect();
                (target.content, bases)
            })
            .collect();
        let mut failure = None;
        let delta = ModuleDelta::between(old, module.index, |entry| {
            match payload.data(entry, &bases, inputs) {
                Ok(data) => data,
                Err(error) => {
                    failure.get_or_insert(error);
                    None
                }
            }
        });
        if let Some(error) = failure {
            return Err(error);
        }
        header.modules.insert(module.name.clone(), delta);
    }
    // The pack is its header encoded before an empty payload, then the payload: the
    // same bytes as `header.encode(payload)`, without the payload in memory.
    let prefix = header.encode(&[]);
    let mut writer = BlobWriter::new(temp_dir)?;
    writer.append(&prefix)?;
    for spooled in &payload.runs {
        writer.append_spooled(inputs.spool, *spooled)?;
    }
    debug_assert_eq!(writer.size(), prefix.len() as u64 + payload.size);
    let written = writer.finish()?;
    Ok(Some(BuiltPack {
        summary: PackSummary {
            from: from.version.clone(),
            size: written.blob.size,
            header_size: prefix.len() as u64,
            modules: header.modules.len(),
            patches: payload.patches,
            patch_bytes: payload.patch_bytes,
            copies: payload.copies,
            copy_bytes: payload.size - payload.patch_bytes,
            uploaded: false,
        },
        written,
    }))
}

/// A pack's payload as it is laid out: runs of the spool, back to back.
#[derive(Default)]
struct Payload {
    runs: Vec<Spooled>,
    size: u64,
    /// The data of each content carried, so a content at several paths (or in
    /// several modules) is carried once.
    carried: HashMap<Blake3Hash, PackData>,
    patches: usize,
    patch_bytes: u64,
    copies: usize,
}

impl Payload {
    /// The data of the file `entry`, whose content the old release lacks: its
    /// smallest patch from one of `bases` when that is smaller than its copy, else its
    /// copy; appended to the payload the first time.
    fn data(
        &mut self,
        entry: &IndexEntry,
        bases: &HashMap<Blake3Hash, Vec<Blake3Hash>>,
        inputs: PackInputs<'_>,
    ) -> Result<Option<PackData>> {
        let EntryKind::File { blake3: target, .. } = &entry.kind else {
            return Ok(None);
        };
        if let Some(data) = self.carried.get(target) {
            return Ok(Some(data.clone()));
        }
        let copy = inputs.copies.copy(target)?;
        let patch = bases
            .get(target)
            .into_iter()
            .flatten()
            .filter_map(|base| {
                let pair = Pair {
                    base: base.clone(),
                    target: target.clone(),
                };
                inputs.patches.get(&pair).map(|patch| (base, *patch))
            })
            .min_by_key(|(_, patch)| patch.spooled.length)
            .filter(|(_, patch)| patch.spooled.length < copy.length);
        let offset = self.size;
        let data = match patch {
            Some((base, patch)) => {
                self.runs.push(patch.spooled);
                self.patches += 1;
                self.patch_bytes += patch.spooled.length;
                PackData::Patch {
                    base: base.clone(),
                    algorithm: patch.algorithm,
                    offset,
                    length: patch.spooled.length,
                }
            }
            None => {
                self.runs.push(copy);
                self.copies += 1;
                PackData::Copy {
                    offset,
                    length: copy.length,
                }
            }
        };
        self.size += data.span().1;
        self.carried.insert(target.clone(), data.clone());
        Ok(Some(data))
    }
}
