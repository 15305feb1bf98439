//! What the publisher does differently on Unix and on Windows, in one place.
//!
//! Windows has no mode bits: a release folder read there lists files as `0644` and
//! folders as `0755` (read-only files as `0444`), so a tree that needs executables on
//! Unix is published from Unix. Hard links cannot be counted with stable Rust on
//! Windows, so there each hard link is simply packaged as the file it is.

use std::fs::{File, Metadata, OpenOptions};
use std::io;
use std::path::Path;

use wavecast_schema::FileMode;

/// The mode an entry with `metadata` is published with.
pub(crate) fn mode_of(metadata: &Metadata) -> FileMode {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        FileMode::from_permissions(metadata.permissions().mode())
    }
    #[cfg(not(unix))]
    {
        let mode = if metadata.is_dir() {
            0o755
        } else if metadata.permissions().readonly() {
            0o444
        } else {
            0o644
        };
        FileMode::from_permissions(mode)
    }
}

/// Whether the file with `metadata` has other names (hard links).
pub(crate) fn is_hard_linked(metadata: &Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        metadata.nlink() > 1
    }
    #[cfg(not(unix))]
    {
        let _ = metadata;
        false
    }
}

/// Options that create a file only its owner can read (`0600` on Unix; on Windows
/// the file takes its folder's access list, which for a user's profile is private).
pub(crate) fn private_file_options() -> OpenOptions {
    #[cfg_attr(not(unix), allow(unused_mut))]
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options
}

/// Marks the file at `path` executable (`0755`); Windows runs files by name.
pub(crate) fn make_executable(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        fs_err::set_permissions(path, std::fs::Permissions::from_mode(0o755))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(())
    }
}

/// Writes all of `bytes` at `offset` of `file`, without moving a shared cursor.
pub(crate) fn write_all_at(file: &File, bytes: &[u8], offset: u64) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileExt as _;
        file.write_all_at(bytes, offset)
    }
    #[cfg(windows)]
    {
        use std::os::windows::fs::FileExt as _;
        let (mut bytes, mut offset) = (bytes, offset);
        while !bytes.is_empty() {
            let written = file.seek_write(bytes, offset)?;
            if written == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            bytes = &bytes[written..];
            offset += written as u64;
        }
        Ok(())
    }
}

/// Fills `buffer` from `offset` of `file`, without moving a shared cursor.
pub(crate) fn read_exact_at(file: &File, buffer: &mut [u8], offset: u64) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileExt as _;
        file.read_exact_at(buffer, offset)
    }
    #[cfg(windows)]
    {
        use std::os::windows::fs::FileExt as _;
        let (mut buffer, mut offset) = (buffer, offset);
        while !buffer.is_empty() {
            let read = file.seek_read(buffer, offset)?;
            if read == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            buffer = &mut buffer[read..];
            offset += read as u64;
        }
        Ok(())
    }
}

/// How a process that did not exit normally ended: `killed by signal N` on Unix.
pub(crate) fn abnormal_end(status: std::process::ExitStatus) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt as _;
        status
            .signal()
            .map(|signal| format!("was killed by signal {signal}"))
    }
    #[cfg(not(unix))]
    {
        let _ = status;
        None
    }
}
