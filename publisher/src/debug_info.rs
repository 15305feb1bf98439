//! How much debug info a build of the client carries, so that `publish-updater` can
//! warn before every client downloads it: a dev build of `wavecast-update` is mostly
//! DWARF (about four fifths of it), which no client needs to run it.
//!
//! Debug info is counted as the sizes of the DWARF sections: `.debug_*` (ELF, and PE
//! built with mingw-w64), `.zdebug_*` (compressed ELF) and `__debug_*` (Mach-O's
//! `__DWARF` segment). Only the headers are read (through [`ReadCache`], which reads
//! the ranges the parser asks for), never the whole file.
//!
//! A build counts as carrying debug info from [`DEBUG_INFO_THRESHOLD`] on, not from
//! the first byte: a build without debug info may keep a stray small section (such
//! as `.debug_gdb_scripts`, a few bytes), while the standard library's line tables
//! alone, which a build made with `debug = 0` but not stripped keeps, take megabytes.

use std::path::Path;

use object::read::ReadCache;
use object::{Object as _, ObjectSection as _};

use crate::error::{Error, Result};

/// The size of DWARF sections from which a build counts as carrying debug info:
/// 256 KiB, far above the few bytes a build without debug info may keep, and far
/// below the megabytes of even the standard library's line tables.
pub const DEBUG_INFO_THRESHOLD: u64 = 256 * 1024;

/// The total size of the DWARF sections of `executable` when it is at least
/// [`DEBUG_INFO_THRESHOLD`], `None` when below or when it is not an object file the
/// reader knows (ELF, PE, Mach-O).
///
/// # Errors
///
/// [`Error::Read`] when the file cannot be opened.
pub fn debug_info_size(executable: &Path) -> Result<Option<u64>> {
    let file = std::fs::File::open(executable).map_err(|source| Error::Read {
        path: executable.to_owned(),
        source,
    })?;
    let cache = ReadCache::new(file);
    let Ok(object) = object::File::parse(&cache) else {
        return Ok(None);
    };
    let size: u64 = object
        .sections()
        .filter(|section| section.name_bytes().is_ok_and(is_dwarf_section))
        .map(|section| section.size())
        .sum();
    Ok((size >= DEBUG_INFO_THRESHOLD).then_some(size))
}

/// Whether a section of this name holds DWARF, in any of the three formats.
fn is_dwarf_section(name: &[u8]) -> bool {
    [b".debug_".as_slice(), b".zdebug_", b"__debug_"]
        .iter()
        .any(|prefix| name.starts_with(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dwarf_sections_are_named_alike_in_every_format() {
        for name in [".debug_info", ".debug_line", ".zdebug_str", "__debug_info"] {
            assert!(is_dwarf_section(name.as_bytes()), "{name}");
        }
        for name in [".text", ".rodata", "__text", ".debuglink", ".gnu_debuglink"] {
            assert!(!is_dwarf_section(name.as_bytes()), "{name}");
        }
    }

    #[test]
    fn a_file_that_is_no_object_file_has_no_debug_info() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("script");
        std::fs::write(&path, "#!/bin/sh\necho wavecast-update 1.0.0\n").unwrap();
        assert_eq!(debug_info_size(&path).unwrap(), None);
    }

    #[test]
    fn the_test_binary_itself_carries_debug_info() {
        // Tests are built with the dev profile, which keeps full debug info.
        let this = std::env::current_exe().unwrap();
        let size = debug_info_size(&this).unwrap().expect("debug info");
        assert!(size >= DEBUG_INFO_THRESHOLD);
    }
}
