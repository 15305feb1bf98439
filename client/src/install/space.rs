//! The free-space check an install makes before it downloads anything.
//!
//! An install needs room for what it still has to download (into the cache) and for
//! the whole new tree (in staging), both at once: the cache is emptied only after
//! `current` has switched. [`ensure_free_space`] asks the file system holding the
//! install root (`statvfs`) and refuses, with the numbers, when that room is not
//! there. The check counts bytes: a file system also spends a block on every file and
//! directory, which the margin covers for ordinary trees but not for one of many tiny
//! files. A disk that fills up anyway (that, or another process writing) fails the
//! install with `ENOSPC` and leaves the installed release current and intact.

use std::path::Path;

use crate::install::error::{Error, Result};

/// The smallest margin kept on top of the download and the unpacked tree.
const MIN_MARGIN: u64 = 1 << 20;

/// The margin as a fraction of the download and the unpacked tree: 1/20 (5 %).
const MARGIN_DIVISOR: u64 = 20;

/// The room kept for the file system's own overhead (blocks, directories, the
/// journal and state files): 5 % of `bytes`, at least 1 MiB.
pub(crate) fn margin(bytes: u64) -> u64 {
    (bytes / MARGIN_DIVISOR).max(MIN_MARGIN)
}

/// Checks that the file system holding `root` has room for `download` more bytes in
/// the cache and an `unpacked`-byte tree, plus [`margin`].
///
/// # Errors
///
/// [`Error::NotEnoughSpace`] with every figure when it has not; [`Error::FreeSpace`]
/// when the file system cannot be asked.
pub(crate) fn ensure_free_space(root: &Path, download: u64, unpacked: u64) -> Result<()> {
    let margin = margin(download.saturating_add(unpacked));
    let needed = download.saturating_add(unpacked).saturating_add(margin);
    let free = free_bytes(root)?;
    if free < needed {
        return Err(Error::NotEnoughSpace {
            path: root.to_owned(),
            download,
            unpacked,
            margin,
            free,
        });
    }
    Ok(())
}

/// Bytes an unprivileged user may still write on the file system holding `path`.
fn free_bytes(path: &Path) -> Result<u64> {
    crate::platform::free_bytes(path).map_err(|source| Error::FreeSpace {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use crate::units::format_bytes;

    use super::*;

    #[test]
    fn the_margin_is_five_percent_and_at_least_one_mebibyte() {
        assert_eq!(margin(0), 1 << 20);
        assert_eq!(margin(10 << 20), 1 << 20);
        assert_eq!(margin(200 << 20), 10 << 20);
    }

    #[test]
    fn a_root_with_room_passes_and_one_without_is_refused_with_the_figures() {
        let dir = tempfile::tempdir().unwrap();
        ensure_free_space(dir.path(), 1000, 1000).unwrap();
        let free = free_bytes(dir.path()).unwrap();
        assert!(free > 0);
        let error = ensure_free_space(dir.path(), free, 1 << 20).unwrap_err();
        let Error::NotEnoughSpace {
            path,
            download,
            unpacked,
            margin: kept,
            free: reported,
        } = &error
        else {
            panic!("{error}");
        };
        assert_eq!(path, dir.path());
        assert_eq!((*download, *unpacked), (free, 1 << 20));
        assert_eq!(*kept, margin(free + (1 << 20)));
        // Other processes write to the same file system meanwhile.
        assert!(reported.abs_diff(free) < free / 10, "{reported} vs {free}");
        let message = error.to_string();
        assert!(
            message.starts_with("not enough free space on `"),
            "{message}"
        );
        assert!(
            message.contains(&format!(
                "{} download + 1.0 MiB unpacked",
                format_bytes(free)
            )),
            "{message}"
        );
        assert!(message.ends_with(" free"), "{message}");
    }

    #[test]
    fn a_missing_directory_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let error = ensure_free_space(&missing, 0, 0).unwrap_err();
        assert!(matches!(error, Error::FreeSpace { .. }), "{error}");
        assert!(error.to_string().contains("missing"), "{error}");
    }
}
