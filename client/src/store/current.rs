//! `ROOT/current` and the trees under `ROOT/releases/`: which release is current,
//! how release directories are named, and the trial a newly current release is on.

use std::io;
use std::path::Path;

use jiff::Timestamp;
use semver::Version;
use serde::Serialize;
use wavecast_schema::PlatformRelease;

use crate::store::error::{Error, Result};
use crate::store::root::InstallRoot;
use crate::store::state::{State, Trial};

/// The prefix of staging trees (and of trees moved aside) under `releases/`.
pub(crate) const STAGING_PREFIX: &str = ".staging-";

pub(crate) const CURRENT_TEMP_PREFIX: &str = ".current.tmp-";

/// The release `ROOT/current` points to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CurrentRelease {
    /// Its version.
    pub version: Version,
    /// Its directory name under `ROOT/releases`.
    pub dir: String,
}

/// The directory name of a release tree: `<version>-<id>`, where `id` is the first 12
/// hex digits of blake3 over each module's name, destination and package hash. Equal
/// names mean equal trees, so a re-published version with other content gets a new
/// directory instead of overwriting one that may be running.
pub fn release_dir_name(version: &Version, release: &PlatformRelease) -> String {
    let mut hasher = blake3::Hasher::new();
    for (name, module) in &release.modules {
        hasher.update(name.as_str().as_bytes());
        hasher.update(b"\0");
        hasher.update(
            module
                .dest
                .as_ref()
                .map_or("", |dest| dest.as_str())
                .as_bytes(),
        );
        hasher.update(b"\0");
        hasher.update(module.package.blake3.as_str().as_bytes());
        hasher.update(b"\n");
    }
    let digest = hasher.finalize().to_hex();
    format!("{version}-{}", &digest[..12])
}

/// What `ROOT/current` names, `releases/<dir>`: the target of the relative symlink
/// on Unix; on Windows, where a link needs administrator rights and a junction
/// cannot be replaced atomically, the one line of the small file `current` (which
/// the application's launcher reads too). `None` when there is no `current`.
pub(crate) fn read_pointer(path: &Path) -> Result<Option<String>> {
    let metadata = match std::fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(Error::ReadCurrent {
                path: path.to_owned(),
                source,
            });
        }
    };
    let read_error = |source| Error::ReadCurrent {
        path: path.to_owned(),
        source,
    };
    #[cfg(unix)]
    {
        if !metadata.file_type().is_symlink() {
            return Err(Error::CurrentNotSymlink {
                path: path.to_owned(),
            });
        }
        let target = std::fs::read_link(path).map_err(read_error)?;
        Ok(Some(target.to_string_lossy().into_owned()))
    }
    #[cfg(not(unix))]
    {
        if !metadata.is_file() || metadata.len() > 4096 {
            return Err(Error::CurrentNotSymlink {
                path: path.to_owned(),
            });
        }
        let text = std::fs::read_to_string(path).map_err(read_error)?;
        Ok(Some(text.trim_end().to_owned()))
    }
}

/// The release tree `ROOT/current` names, for tests to look into: `current` itself on
/// Unix, where the file system follows the link; on Windows, the folder the small
/// file names.
#[cfg(test)]
pub(crate) fn current_tree(root: &InstallRoot) -> std::path::PathBuf {
    #[cfg(unix)]
    {
        root.current()
    }
    #[cfg(not(unix))]
    {
        let target = read_pointer(&root.current()).unwrap();
        root.path().join(target.expect("no `current`"))
    }
}

/// The release `ROOT/current` points to, or `None` when there is no `current` or it
/// points to a release directory that no longer exists.
///
/// The version comes from the state's record of that directory, else from the
/// directory's name.
pub(crate) fn read_current(root: &InstallRoot, state: &State) -> Result<Option<CurrentRelease>> {
    let path = root.current();
    let Some(target_text) = read_pointer(&path)? else {
        return Ok(None);
    };
    let unrecognized = || Error::UnrecognizedCurrent {
        path: path.clone(),
        target: target_text.clone(),
    };
    let dir = target_text
        .strip_prefix("releases/")
        .filter(|dir| !dir.is_empty() && !dir.contains(['/', '\\']) && !dir.starts_with('.'))
        .ok_or_else(unrecognized)?;
    match std::fs::symlink_metadata(root.releases().join(dir)) {
        Ok(metadata) if metadata.is_dir() => {}
        Ok(_) => return Err(unrecognized()),
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(Error::ReadCurrent {
                path: root.releases().join(dir),
                source,
            });
        }
    }
    let version = match state.installed_in(dir) {
        Some(installed) => installed.version.clone(),
        None => version_from_dir_name(dir).ok_or_else(unrecognized)?,
    };
    Ok(Some(CurrentRelease {
        version,
        dir: dir.to_owned(),
    }))
}

pub(crate) fn version_from_dir_name(dir: &str) -> Option<Version> {
    let (version, id) = dir.rsplit_once('-')?;
    if id.len() != 12 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    version.parse().ok()
}

/// Starts the trial of `switched`, which `current` now points to instead of `before`.
/// The trial remembers the release to fall back to: `before`, or, when `before` was
/// itself still on trial, what it would have fallen back to.
pub(crate) fn start_trial(
    state: &mut State,
    switched: &CurrentRelease,
    before: Option<&CurrentRelease>,
    now: Timestamp,
) {
    let fallback = before.and_then(|before| match &state.trial {
        Some(trial) if trial.dir == before.dir => trial.fallback.clone(),
        _ => Some(before.dir.clone()),
    });
    state.trial = Some(Trial {
        version: switched.version.clone(),
        dir: switched.dir.clone(),
        started_at: now,
        launches: 0,
        fallback: fallback.filter(|dir| dir != &switched.dir),
    });
}

/// The trial of `current`, if it is on trial.
pub(crate) fn trial_of<'s>(state: &'s State, current: &CurrentRelease) -> Option<&'s Trial> {
    state
        .trial
        .as_ref()
        .filter(|trial| trial.dir == current.dir)
}
