//! Who may write what under an install root: the permission model.
//!
//! The root's **owner**, the user that ran `init` (usually root), runs every command.
//! An application often runs as a user of its own, and must still `confirm` its
//! release (and its launcher count `launched`). `init --group G` or
//! `config --group G` shares the root with the group `G` for that, and only that:
//!
//! ```text
//! ROOT/.wavecast/                 2750 owner:G  setgid: what is created inside gets G
//!   config.json, state.json,      0640          the group reads them; only the owner
//!   slots.json, journal.json                    writes them
//!   lock                          0660          the group takes the lock too
//!   shared/                       2770 owner:G  the one directory the group writes in
//!     trial.json                  0660          the release on trial
//! ROOT/, ROOT/current, releases/  as before     only the owner writes them
//! ```
//!
//! Writers keep those modes without knowing the group: a file written in a setgid
//! directory gets its group and group bits (see `group_bits` in the root's module). Without a
//! group, `.wavecast/` is `0755` and its files are `0600`, as before groups existed.
//!
//! The group gets no more, because the owner acts on what it reads from those files:
//! `state.json` names the root whose keys the owner trusts and the serials that stop a
//! rollback, `config.json` the health check and on-activate commands the owner runs,
//! and `ROOT/` and `releases/` hold the trees those commands run in. A member who could
//! write them could make the owner (root) run code of its choosing. So a member's
//! `launched` counts launches but leaves a rollback, and a member's run leaves an
//! interrupted install, to the owner; and the owner reads `trial.json`, which the
//! group writes, as untrusted input. None of the client's files hold secrets, so the
//! group may read them all.

use std::io;
use std::io::Read;
use std::path::Path;

use crate::store::error::{Error, Result};
use crate::store::root::{InstallRoot, create_dir_all, group_bits, write_atomically};

/// The modes of `ROOT/.wavecast/` and its files, with a group and without.
struct Modes {
    meta: u32,
    shared: u32,
    file: u32,
    lock: u32,
}

const WITH_GROUP: Modes = Modes {
    meta: 0o2750,
    shared: 0o2770,
    file: 0o640,
    lock: 0o660,
};

const WITHOUT_GROUP: Modes = Modes {
    meta: 0o755,
    shared: 0o755,
    file: 0o600,
    lock: 0o644,
};

/// The numeric id of the group `name`: a group of the system's group database
/// (`/etc/group`, LDAP…), or a number.
///
/// # Errors
///
/// [`Error::UnknownGroup`] when there is no such group; [`Error::LookUpGroup`] when
/// the database cannot be read.
pub(crate) fn group_id(name: &str) -> Result<u32> {
    #[cfg(not(unix))]
    return Err(Error::LookUpGroup {
        group: name.to_owned(),
        source: io::Error::new(
            io::ErrorKind::Unsupported,
            "a root is shared with a group on Unix only; on Windows, give the application's user write access to `.wavecast\\shared` with an access list",
        ),
    });
    #[cfg(unix)]
    match look_up_group(name) {
        Ok(Some(gid)) => Ok(gid),
        Ok(None) => name.parse().map_err(|_| Error::UnknownGroup {
            group: name.to_owned(),
        }),
        Err(source) => Err(Error::LookUpGroup {
            group: name.to_owned(),
            source,
        }),
    }
}

/// `getgrnam_r(3)`: the id of the group `name`, `None` when there is none.
#[cfg(unix)]
#[expect(
    unsafe_code,
    reason = "getgrnam_r(3) has no safe wrapper in std or rustix"
)]
fn look_up_group(name: &str) -> io::Result<Option<u32>> {
    let Ok(name) = std::ffi::CString::new(name) else {
        return Ok(None);
    };
    let mut buffer = vec![0u8; 1024];
    loop {
        // SAFETY: `group` is plain data that getgrnam_r fills in; its pointers point
        // into `buffer`, which outlives every read of them (only `gr_gid` is read).
        let mut group: libc::group = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::group = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call, and `buffer.len()` is the
        // length of the buffer passed.
        let code = unsafe {
            libc::getgrnam_r(
                name.as_ptr(),
                &raw mut group,
                buffer.as_mut_ptr().cast(),
                buffer.len(),
                &raw mut found,
            )
        };
        match code {
            0 if found.is_null() => return Ok(None),
            0 => return Ok(Some(group.gr_gid)),
            libc::ERANGE if buffer.len() < 1 << 20 => buffer.resize(buffer.len() * 2, 0),
            // Some C libraries report "no such group" as an error.
            libc::ENOENT | libc::ESRCH => return Ok(None),
            code => return Err(io::Error::from_raw_os_error(code)),
        }
    }
}

/// Whether `root` is shared with a group: its `.wavecast/` has the setgid bit.
pub(crate) fn is_shared(root: &InstallRoot) -> bool {
    group_bits(&root.meta()).is_ok_and(|bits| bits.is_some())
}

/// Shares `root` with the group `gid`, or with none: sets the group and modes of
/// `.wavecast/`, `shared/` and the files in them as the module docs list them. The
/// caller is the owner and holds the root's lock. Taking it again fixes any mode
/// changed since.
///
/// # Errors
///
/// [`Error::SetAccess`] when a group or mode cannot be set (the owner must be
/// root, or a member of the group); [`Error::CreateDirectory`], [`Error::WriteFile`].
pub(crate) fn share(root: &InstallRoot, gid: Option<u32>) -> Result<()> {
    let modes = if gid.is_some() {
        &WITH_GROUP
    } else {
        &WITHOUT_GROUP
    };
    set_access(&root.meta(), gid, modes.meta)?;
    create_dir_all(&root.shared())?;
    set_access(&root.shared(), gid, modes.shared)?;
    for file in [
        root.config(),
        root.state(),
        root.journal(),
        root.slots_record(),
    ] {
        if std::fs::symlink_metadata(&file).is_ok() {
            set_access(&file, gid, modes.file)?;
        }
    }
    set_access(&root.lock_file(), gid, modes.lock)?;
    // A member may have written it, and only its owner (or root) may change a file's
    // group: written again, it is this user's, with the group and bits of `shared/`.
    if let Some(bytes) = read_trial_file(&root.trial())? {
        write_atomically(&root.trial(), &bytes)?;
    }
    Ok(())
}

/// Sets the group of `path` (unless `gid` is `None`) and its mode.
fn set_access(path: &Path, gid: Option<u32>, mode: u32) -> Result<()> {
    let access_error = |source| Error::SetAccess {
        path: path.to_owned(),
        source,
    };
    #[cfg(unix)]
    if let Some(gid) = gid {
        rustix::fs::chown(path, None, Some(rustix::fs::Gid::from_raw(gid)))
            .map_err(|errno| access_error(errno.into()))?;
    }
    #[cfg(not(unix))]
    let _ = gid;
    // After the chown, which may clear the setgid bit.
    crate::platform::set_mode(path, mode).map_err(access_error)
}

/// Creates `shared` (`ROOT/.wavecast/shared`) if it is missing: writable by the
/// group when the root is shared, whatever the umask.
pub(crate) fn create_shared_dir(shared: &Path) -> Result<()> {
    if shared.is_dir() {
        return Ok(());
    }
    create_dir_all(shared)?;
    let in_shared_root = shared
        .parent()
        .is_some_and(|meta| group_bits(meta).is_ok_and(|bits| bits.is_some()));
    if in_shared_root {
        set_access(shared, None, WITH_GROUP.shared)?;
    }
    Ok(())
}

/// The most a trial file may hold: a trial is a few hundred bytes.
const TRIAL_SIZE_LIMIT: u64 = 64 * 1024;

/// The bytes of the trial file at `path`; `None` when there is none. The root's group
/// writes that file, so the owner reads it as untrusted input: not through a symbolic
/// link, only a regular file, and at most [`TRIAL_SIZE_LIMIT`] bytes.
///
/// # Errors
///
/// [`Error::ReadState`].
pub(crate) fn read_trial_file(path: &Path) -> Result<Option<Vec<u8>>> {
    let read_error = |source| Error::ReadState {
        path: path.to_owned(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    // A FIFO must not block the open before it can be refused.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(
        &mut options,
        libc::O_NOFOLLOW | libc::O_NONBLOCK,
    );
    // Windows has no FIFOs in the file system, and opening a link follows it: a
    // link is refused before the open.
    #[cfg(not(unix))]
    if std::fs::symlink_metadata(path).is_ok_and(|metadata| metadata.file_type().is_symlink()) {
        return Err(read_error(io::Error::new(
            io::ErrorKind::InvalidData,
            "a link, not a regular file",
        )));
    }
    let file = options.open(path);
    let file = match file {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(read_error(source)),
    };
    if !file.metadata().map_err(read_error)?.is_file() {
        return Err(read_error(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a regular file",
        )));
    }
    let mut bytes = Vec::new();
    file.take(TRIAL_SIZE_LIMIT + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > TRIAL_SIZE_LIMIT {
        return Err(read_error(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {TRIAL_SIZE_LIMIT} bytes"),
        )));
    }
    Ok(Some(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn groups_are_found_by_name_or_number() {
        assert_eq!(group_id("root").unwrap(), 0);
        assert_eq!(group_id("4242").unwrap(), 4242);
        let error = group_id("no-such-group-here").unwrap_err();
        assert!(matches!(error, Error::UnknownGroup { .. }), "{error}");
        assert_eq!(error.to_string(), "unknown group `no-such-group-here`");
        assert!(group_id("nul\0byte").is_err());
    }

    #[cfg(windows)]
    #[test]
    fn groups_are_refused_on_windows_naming_the_alternative() {
        let error = group_id("root").unwrap_err();
        assert!(matches!(error, Error::LookUpGroup { .. }), "{error}");
        let cause = std::error::Error::source(&error).unwrap().to_string();
        assert!(
            cause.starts_with("a root is shared with a group on Unix only")
                && cause.contains("`.wavecast\\shared` with an access list"),
            "{cause}"
        );
    }

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    /// Sharing with the owner's own group works for any user; the e2e tests share
    /// with another group as root.
    #[cfg(unix)]
    #[test]
    fn sharing_sets_the_modes_and_later_writes_keep_them() {
        use std::os::unix::fs::MetadataExt as _;
        use std::os::unix::fs::PermissionsExt as _;

        let temp = tempfile::tempdir().unwrap();
        let root = InstallRoot::new(temp.path());
        create_dir_all(&root.meta()).unwrap();
        crate::store::root::write_atomically(&root.config(), b"{}").unwrap();
        assert_eq!(mode(&root.config()), 0o600, "private without a group");
        let lock = root.lock(std::time::Duration::ZERO).unwrap();
        let gid = std::fs::metadata(root.meta()).unwrap().gid();

        share(&root, Some(gid)).unwrap();
        assert!(is_shared(&root));
        assert_eq!(mode(&root.meta()), 0o2750);
        assert_eq!(mode(&root.shared()), 0o2770);
        assert_eq!(mode(&root.config()), 0o640);
        assert_eq!(mode(&root.lock_file()), 0o660);
        // New files follow their directory, whoever writes them.
        crate::store::root::write_atomically(&root.state(), b"{}").unwrap();
        assert_eq!(mode(&root.state()), 0o640);
        crate::store::root::write_atomically(&root.trial(), b"{}").unwrap();
        assert_eq!(mode(&root.trial()), 0o660);
        // A lock file made by hand (or by an older client) is opened up again.
        drop(lock);
        std::fs::set_permissions(root.lock_file(), std::fs::Permissions::from_mode(0o600)).unwrap();
        drop(root.lock(std::time::Duration::ZERO).unwrap());
        assert_eq!(mode(&root.lock_file()), 0o660);

        share(&root, None).unwrap();
        assert!(!is_shared(&root));
        assert_eq!(mode(&root.meta()), 0o755);
        for file in [root.config(), root.state(), root.trial()] {
            assert_eq!(mode(&file), 0o600, "{}", file.display());
        }
        crate::store::root::write_atomically(&root.state(), b"{}").unwrap();
        assert_eq!(mode(&root.state()), 0o600);
    }
}
