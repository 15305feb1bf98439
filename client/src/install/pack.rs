//! The delta pack of an update: choosing it, loading it, and deriving the target's
//! file indexes from the installed ones and the pack's header, so that an update
//! from a recent release downloads no index at all.
//!
//! A pack applies when the target's platform release lists one from the current
//! release, and the current release's indexes are in the index cache. Every derived
//! index must hash to the index the target names (the signed chain vouches for that
//! hash), so the tree the install checks against is exactly the signed one. When a
//! pack cannot be used (it is missing, damaged, or does not fit what is installed),
//! the install goes on without it: the indexes are fetched and the files the pack
//! would have carried come from the copy packs.

use std::collections::BTreeMap;

use semver::Version;
use wavecast_schema::{FileIndex, ModuleName, PackHeader, PackRef, PlatformRelease};
use wavecast_site::layout::{self, BlobKind};

use crate::install::error::{Error, Result};
use crate::install::fetch::Cache;

/// A delta pack an update takes, with the indexes derived from it.
#[derive(Debug)]
pub(crate) struct Delta {
    /// The pack as the platform release lists it.
    pub(crate) pack: PackRef,
    /// Its header.
    pub(crate) header: PackHeader,
    /// Its payload; `None` when only the header was read (a plan).
    pub(crate) payload: Option<Vec<u8>>,
    /// The target's file index of every module, derived.
    pub(crate) indexes: BTreeMap<ModuleName, FileIndex>,
}

/// The pack of `release` that updates from `current`, if it lists one and it is
/// smaller than the release's packages together. The pack is downloaded before the
/// plan is made, so one that outweighs the packages (new files that compress well
/// together but not one by one) would cost more than any plan without it.
pub(crate) fn choose<'r>(
    release: &'r PlatformRelease,
    current: Option<&Version>,
) -> Option<&'r PackRef> {
    let packages: u64 = release
        .modules
        .values()
        .map(|module| module.package.size)
        .sum();
    current
        .and_then(|version| release.pack_from(version))
        .filter(|pack| pack.size < packages)
}

/// Downloads the pack `pack` of `release` (or, for a plan, only its header) and
/// derives the target's indexes from `installed`, the current release's indexes.
///
/// # Errors
///
/// Download errors, and [`Error::ParsePack`] when the pack is not one or does not
/// fit what is installed; the caller then goes on without it.
pub(crate) fn load(
    cache: &Cache<'_>,
    release: &PlatformRelease,
    pack: &PackRef,
    installed: &BTreeMap<ModuleName, FileIndex>,
    header_only: bool,
) -> Result<Delta> {
    let url = cache.url(&layout::blob(&pack.blake3, BlobKind::Pack));
    let parse_error = |source| Error::ParsePack {
        url: url.clone(),
        source,
    };
    let (header, payload) = if header_only {
        (cache.pack_header(pack)?, None)
    } else {
        // A module name to report the download under: the first of the release (the
        // caller does not load a pack for a release without modules).
        let first = release
            .modules
            .keys()
            .next()
            .expect("a pack is loaded only for a release with modules");
        let bytes = cache.pack(first, pack)?;
        let (header, payload) = PackHeader::decode(&bytes).map_err(parse_error)?;
        let payload = payload.to_vec();
        (header, Some(payload))
    };
    let indexes = derive(&header, release, installed).map_err(parse_error)?;
    Ok(Delta {
        pack: pack.clone(),
        header,
        payload,
        indexes,
    })
}

/// The index of every module of `release`: a module the pack changes is its delta
/// applied to the installed index, any other module must be installed as it is.
/// Each must hash to the index `release` names.
fn derive(
    header: &PackHeader,
    release: &PlatformRelease,
    installed: &BTreeMap<ModuleName, FileIndex>,
) -> std::result::Result<BTreeMap<ModuleName, FileIndex>, wavecast_schema::Error> {
    let invalid = |problem: String| wavecast_schema::Error::Invalid {
        document: "delta pack",
        problem,
    };
    if header.to != release.version {
        return Err(invalid(format!(
            "it updates to {}, not {}",
            header.to, release.version
        )));
    }
    let mut indexes = BTreeMap::new();
    for (name, module) in &release.modules {
        let index = match header.modules.get(name) {
            Some(delta) => {
                if delta.to_index != module.index.blake3 {
                    return Err(invalid(format!(
                        "it updates module {name} to another index than the release's"
                    )));
                }
                let from = match delta.from_index {
                    Some(_) => Some(installed.get(name).ok_or_else(|| {
                        invalid(format!("module {name} is not installed to update from"))
                    })?),
                    None => None,
                };
                delta.apply(from)?
            }
            None => installed
                .get(name)
                .filter(|index| {
                    wavecast_schema::Blake3Hash::of(&index.to_json()) == module.index.blake3
                })
                .cloned()
                .ok_or_else(|| {
                    invalid(format!(
                        "it leaves module {name} as installed, but the release changes it"
                    ))
                })?,
        };
        indexes.insert(name.clone(), index);
    }
    Ok(indexes)
}

#[cfg(test)]
mod tests {
    use wavecast_schema::Blake3Hash;

    use super::*;
    use crate::install::test_site::TestSite;

    #[test]
    fn a_pack_is_chosen_from_the_current_release_while_it_is_smaller_than_the_packages() {
        let site = TestSite::new();
        let app = site.module("2.0.0", &[("bin/app", b"#!/bin/sh\n", 0o755)], &[], None);
        let mut release = site.document("2.0.0", &[("app", &app)]);
        let packages = app.module.package.size;
        let pack = |from: &str, size| PackRef {
            from: from.parse().unwrap(),
            size,
            blake3: Blake3Hash::of(from.as_bytes()),
        };
        release.packs = vec![pack("1.0.0", packages - 1), pack("1.1.0", packages)];
        let chosen = |current: Option<&str>| {
            let current = current.map(|version| version.parse::<Version>().unwrap());
            choose(&release, current.as_ref()).map(|pack| pack.from.to_string())
        };
        assert_eq!(chosen(Some("1.0.0")).as_deref(), Some("1.0.0"));
        // As large as the package: the plan does better without it.
        assert_eq!(chosen(Some("1.1.0")), None);
        // No pack from there, or nothing installed.
        assert_eq!(chosen(Some("0.9.0")), None);
        assert_eq!(chosen(None), None);
    }
}
