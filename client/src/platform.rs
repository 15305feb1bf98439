//! What the client does differently on Unix and on Windows, in one place, so the
//! layers above read the same on both.
//!
//! - **Modes.** Windows keeps no mode bits: files are written without them, and a
//!   tree on disk is checked by kind, size, content and link target only
//!   ([`mode_of`] answers `None`). The executable bit is ignored there.
//! - **Durability.** A folder cannot be opened as a file on Windows, and NTFS
//!   journals renames itself, so [`sync_dir`] does nothing there; a file is flushed
//!   through a handle that may write ([`sync_file`]).
//! - **Links.** [`symlink`] makes a file or a folder link by what the target is, as
//!   Windows needs to know; creating one may need Developer Mode or administrator
//!   rights there, and fails with the system's error otherwise.
//! - **Free space and writability** come from the system's own calls.

use std::fs::{File, Metadata, OpenOptions};
use std::io;
use std::path::Path;

use wavecast_schema::FileMode;

/// The mode bits of an entry with `metadata`; `None` where the file system keeps
/// none (Windows), so that a tree check does not compare them.
pub(crate) fn mode_of(metadata: &Metadata) -> Option<FileMode> {
    raw_mode(metadata).map(FileMode::from_permissions)
}

/// The whole `st_mode` of an entry (setuid, setgid and sticky bits included), or
/// `None` on Windows.
pub(crate) fn raw_mode(metadata: &Metadata) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        Some(metadata.permissions().mode())
    }
    #[cfg(not(unix))]
    {
        let _ = metadata;
        None
    }
}

/// Asserts that the entry at `path` (followed if a link) has the permission bits
/// `expected`, setuid, setgid and sticky bits included, where the file system keeps
/// modes; on Windows, which keeps none, there is nothing to compare.
#[cfg(test)]
#[track_caller]
pub(crate) fn assert_mode(path: &Path, expected: u32) {
    let metadata = std::fs::metadata(path).unwrap();
    if let Some(mode) = raw_mode(&metadata) {
        assert_eq!(
            mode & 0o7777,
            expected,
            "the mode of `{}`: {:o}, not {expected:o}",
            path.display(),
            mode & 0o7777
        );
    }
}

/// Gives the file or folder at `path` the mode `mode` (nothing on Windows).
pub(crate) fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
    }
    #[cfg(not(unix))]
    {
        let _ = (path, mode);
        Ok(())
    }
}

/// Gives the open `file` the mode `mode` (nothing on Windows).
pub(crate) fn set_file_mode(file: &File, mode: u32) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(std::fs::Permissions::from_mode(mode))
    }
    #[cfg(not(unix))]
    {
        let _ = (file, mode);
        Ok(())
    }
}

/// Creates a new file at `path` that only its owner may read (`0600` on Unix), for
/// writing; fails if anything, a link included, is there already.
pub(crate) fn create_private(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options.open(path)
}

/// Creates a symbolic link at `link` pointing to `target` (relative to the link's
/// folder, or absolute), exactly as written.
pub(crate) fn symlink(target: &str, link: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(target, link)
    }
    #[cfg(windows)]
    {
        let resolved = link
            .parent()
            .map_or_else(|| Path::new(target).to_owned(), |dir| dir.join(target));
        if resolved.is_dir() {
            std::os::windows::fs::symlink_dir(target, link)
        } else {
            std::os::windows::fs::symlink_file(target, link)
        }
    }
}

/// Removes the link at `path`, not what it points to: a file link, or on Windows a
/// folder link or junction, which are removed as folders.
pub(crate) fn remove_link(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        #[cfg(windows)]
        Err(_) if path.is_dir() => std::fs::remove_dir(path),
        result => result,
    }
}

/// Flushes a folder's entries (renames, new files) to disk; nothing on Windows,
/// where NTFS journals them and a folder cannot be opened as a file.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// Starts writing `file`'s data to disk without waiting for it, so that the flush
/// that makes a new release tree durable finds most of it written already: on
/// Linux `sync_file_range(2)` with `SYNC_FILE_RANGE_WRITE`, a hint that gives no
/// guarantee on its own (the flush still does). Elsewhere nothing.
pub(crate) fn start_writeback(file: &File) {
    #[cfg(target_os = "linux")]
    {
        #[expect(
            unsafe_code,
            reason = "sync_file_range(2) has no safe wrapper in std or rustix"
        )]
        // SAFETY: the descriptor is open for the call's duration (borrowed from
        // `file`), and the call reads no memory of ours. Its result is a hint's: an
        // error leaves the data to the flush.
        unsafe {
            use std::os::fd::AsRawFd as _;
            libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = file;
}

/// Flushes the file at `path` to disk (Windows flushes only through a handle that
/// may write).
pub(crate) fn sync_file(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    let file = File::open(path)?;
    #[cfg(not(unix))]
    let file = OpenOptions::new().write(true).open(path)?;
    file.sync_all()
}

/// Whether this process may create and remove entries in `dir`: the kernel's answer
/// for its effective ids on Unix (modes, ACLs, a read-only mount); on Windows, a
/// file created and removed there.
///
/// # Errors
///
/// Why not: `EACCES`, `EROFS`, access denied…
pub(crate) fn writable(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        let access = rustix::fs::Access::WRITE_OK | rustix::fs::Access::EXEC_OK;
        rustix::fs::accessat(rustix::fs::CWD, dir, access, rustix::fs::AtFlags::EACCESS)
            .map_err(io::Error::from)
    }
    #[cfg(not(unix))]
    {
        tempfile::tempfile_in(dir).map(drop)
    }
}

/// Bytes an unprivileged user may still write on the file system holding `path`.
pub(crate) fn free_bytes(path: &Path) -> io::Result<u64> {
    #[cfg(all(unix, not(target_vendor = "apple")))]
    {
        let stat = rustix::fs::statvfs(path)?;
        Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
    }
    // On macOS `statvfs` counts blocks in 32 bits, too few for a large volume;
    // `statfs` counts them in 64 bits, in units of `f_bsize`.
    #[cfg(target_vendor = "apple")]
    {
        let stat = rustix::fs::statfs(path)?;
        Ok(stat.f_bavail.saturating_mul(u64::from(stat.f_bsize)))
    }
    #[cfg(windows)]
    {
        use std::os::windows::ffi::OsStrExt as _;
        let wide: Vec<u16> = path
            .as_os_str()
            .encode_wide()
            .chain(std::iter::once(0))
            .collect();
        let mut available = 0u64;
        #[expect(unsafe_code, reason = "GetDiskFreeSpaceExW has no safe wrapper")]
        // SAFETY: `wide` is NUL-terminated and outlives the call; the out pointer is
        // to a live u64, and the two others may be null.
        let ok = unsafe {
            windows_sys::Win32::Storage::FileSystem::GetDiskFreeSpaceExW(
                wide.as_ptr(),
                &mut available,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(available)
    }
}

/// Runs `command` in place of this process; returns only when it cannot be started.
/// Unix replaces the process image (`exec`). Windows cannot: the program runs as a
/// child with this process's standard streams, and this process then exits with its
/// status.
pub(crate) fn replace_process(command: &mut std::process::Command) -> io::Error {
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt as _;
        command.exec()
    }
    #[cfg(not(unix))]
    {
        match command.status() {
            Ok(status) => std::process::exit(status.code().unwrap_or(1)),
            Err(error) => error,
        }
    }
}
