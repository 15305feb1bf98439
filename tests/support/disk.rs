//! Small file systems for disk-space tests: a tmpfs of a chosen size, mounted on a
//! fresh directory and unmounted on drop.
//!
//! Mounting needs root (or `CAP_SYS_ADMIN`), as the test suite has in CI; without it
//! `sudo -n` is tried. There is no fallback that fakes the free space: a test that
//! cannot mount fails and says why.

use std::path::Path;
use std::process::Command;

/// A tmpfs mounted on a temporary directory.
pub struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (as `mount -o size=` takes it: `8m`, `512k`).
    pub fn mount(size: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("wavecast-tmpfs-")
            .tempdir()
            .unwrap();
        let options = format!("size={size},mode=0755");
        let args = ["-t", "tmpfs", "-o", options.as_str(), "tmpfs"];
        let mounted = privileged("mount", &args, dir.path());
        assert!(
            mounted,
            "cannot mount a tmpfs on {} (needs root, CAP_SYS_ADMIN or passwordless sudo): \
             the disk-space tests need a small real file system",
            dir.path().display()
        );
        Self { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Grows (or shrinks) the mounted tmpfs to `size`, keeping its files.
    pub fn resize(&self, size: &str) {
        let options = format!("remount,size={size}");
        assert!(
            privileged("mount", &["-o", options.as_str()], self.path()),
            "cannot resize the tmpfs at {}",
            self.path().display()
        );
    }

    /// Mounts the tmpfs again read-only, as a root on a read-only image is.
    pub fn remount_read_only(&self) {
        assert!(
            privileged("mount", &["-o", "remount,ro"], self.path()),
            "cannot remount the tmpfs at {} read-only",
            self.path().display()
        );
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazily, so a process still inside cannot keep the mount alive.
        privileged("umount", &["-l"], self.path());
    }
}

/// Runs `program args... target`, then through `sudo -n` if that fails.
fn privileged(program: &str, args: &[&str], target: &Path) -> bool {
    let run = |command: &mut Command| {
        command
            .args(args)
            .arg(target)
            .output()
            .is_ok_and(|output| output.status.success())
    };
    run(&mut Command::new(program)) || run(Command::new("sudo").args(["-n", program]))
}
