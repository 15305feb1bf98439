//! The version a built `wavecast-update` reports, read before `publish-updater`
//! offers it: every client runs the build it downloads with `--version` and refuses
//! one that reports another version than the manifest offers it as, so a wrong
//! `--version` would strand every client the floor asks to update.
//!
//! A build that runs on this machine answers for itself: it is run with `--version`
//! (for at most [`VERSION_TIMEOUT`], then killed) and must print
//! `wavecast-update <version>`. A build that does not run here (one made for another
//! platform, or that fails or hangs) is read instead: every build carries its version
//! in a marker ([`wavecast_schema::version_marker`]), found without running it.

use std::io::{self, Read as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use semver::Version;
use wavecast_schema::{MAX_MARKED_VERSION_LENGTH, VERSION_MARKER_PREFIX, marked_versions};

use crate::error::{Error, Result};
pub use crate::reported_version::{ReportedVersion, VersionSource};

/// How long a build may take to answer `--version` before it is killed and read
/// instead: 10 s, far more than a real one takes.
pub const VERSION_TIMEOUT: Duration = Duration::from_secs(10);

/// Finds the version `executable` reports: its answer to `--version` when it runs
/// here, else its version marker.
///
/// # Errors
///
/// [`Error::NotAnUpdater`] when it answers `--version` with something else than
/// `wavecast-update <version>`, or does not run here and carries no marker (or
/// markers of several versions); [`Error::Read`] when it cannot be read.
pub fn reported_version(executable: &Path) -> Result<ReportedVersion> {
    reported_version_within(executable, VERSION_TIMEOUT)
}

/// [`reported_version`], waiting `timeout` for the answer.
fn reported_version_within(executable: &Path, timeout: Duration) -> Result<ReportedVersion> {
    let not_an_updater = |reason: String| Error::NotAnUpdater {
        path: executable.to_owned(),
        reason,
    };
    let reason = match ask_version(executable, timeout) {
        Ok(answer) => {
            return answer
                .trim()
                .strip_prefix("wavecast-update ")
                .and_then(|version| Version::parse(version).ok())
                .map(|version| ReportedVersion {
                    version,
                    source: VersionSource::Answered,
                })
                .ok_or_else(|| {
                    not_an_updater(format!(
                        "it answered `--version` with `{}`, not `wavecast-update <version>`",
                        answer.trim()
                    ))
                });
        }
        Err(reason) => reason,
    };
    match read_markers(executable)?.as_slice() {
        [version] => Ok(ReportedVersion {
            version: version.clone(),
            source: VersionSource::Marker(reason),
        }),
        [] => Err(not_an_updater(format!(
            "it carries no wavecast-update version marker, and does not run here: {reason}"
        ))),
        several => Err(not_an_updater(format!(
            "it carries markers of several versions ({}), and does not run here: {reason}",
            several
                .iter()
                .map(Version::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Runs `executable --version` and returns what it printed on stdout, or why it did
/// not answer: it could not start, did not exit within `timeout` (it is killed), or
/// exited with a failure.
fn ask_version(executable: &Path, timeout: Duration) -> std::result::Result<String, String> {
    let mut command = Command::new(executable);
    command
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = spawn(&mut command).map_err(|error| error.to_string())?;
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "it did not answer `--version` within {} s",
                    timeout.as_secs_f64()
                ));
            }
            Err(error) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("waiting for it failed: {error}"));
            }
        }
    };
    if !status.success() {
        return Err(describe_failure(status));
    }
    let mut answer = String::new();
    if let Some(stdout) = child.stdout.take() {
        // A version line is short; a longer answer is not a wavecast-update's.
        let _ = stdout.take(4096).read_to_string(&mut answer);
    }
    Ok(answer)
}

/// Starts `command`, again for up to a second while the executable is busy
/// (`ETXTBSY`: a file just written can be held open a moment by a process forked
/// meanwhile, until it runs another program).
fn spawn(command: &mut Command) -> io::Result<Child> {
    let mut attempts = 0;
    loop {
        match command.spawn() {
            Err(error) if error.kind() == io::ErrorKind::ExecutableFileBusy && attempts < 20 => {
                attempts += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            result => return result,
        }
    }
}

/// Why a build's `--version` failed, in words.
fn describe_failure(status: ExitStatus) -> String {
    match (status.code(), crate::platform::abnormal_end(status)) {
        (Some(code), _) => format!("`--version` exited with status {code}"),
        (None, Some(end)) => format!("`--version` {end}"),
        (None, None) => format!("`--version` ended with {status}"),
    }
}

/// The versions named by the version markers in the file at `path`, read in windows
/// that overlap by the longest marker, so one across a window's end is found whole.
fn read_markers(path: &Path) -> Result<Vec<Version>> {
    const WINDOW: usize = 1 << 20;
    let overlap = VERSION_MARKER_PREFIX.len() + MAX_MARKED_VERSION_LENGTH;
    let read_error = |source| Error::Read {
        path: PathBuf::from(path),
        source,
    };
    let mut file = fs_err::File::open(path).map_err(read_error)?;
    let mut window = Vec::with_capacity(WINDOW + overlap);
    let mut versions: Vec<Version> = Vec::new();
    loop {
        let kept = window.len();
        window.resize(kept + WINDOW, 0);
        let count = read_full(&mut file, &mut window[kept..]).map_err(read_error)?;
        window.truncate(kept + count);
        for version in marked_versions(&window) {
            if !versions.contains(&version) {
                versions.push(version);
            }
        }
        if count < WINDOW {
            return Ok(versions);
        }
        window.drain(..window.len() - overlap);
    }
}

/// Reads until `buffer` is full or the file ends; how many bytes were read.
fn read_full(file: &mut fs_err::File, buffer: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match file.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(count) => filled += count,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    /// The marker of `version`, as a build carries it.
    fn marker(version: &str) -> Vec<u8> {
        let mut bytes = VERSION_MARKER_PREFIX.to_vec();
        bytes.extend_from_slice(version.as_bytes());
        bytes.push(0);
        bytes
    }

    /// Writes `content` to a file named `name` in `dir` with `mode`.
    fn file(dir: &Path, name: &str, content: &[u8], mode: u32) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, content).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    fn version(text: &str) -> Version {
        text.parse().unwrap()
    }

    #[track_caller]
    fn not_an_updater(path: &Path) -> String {
        match reported_version_within(path, Duration::from_secs(5)) {
            Err(Error::NotAnUpdater { reason, .. }) => reason,
            other => panic!("expected NotAnUpdater, got {other:?}"),
        }
    }

    #[test]
    fn a_build_that_runs_here_answers_for_itself() {
        let dir = tempfile::tempdir().unwrap();
        // Its answer wins over a marker of another version.
        let mut script = b"#!/bin/sh\necho 'wavecast-update 1.2.3'\nexit 0\n".to_vec();
        script.extend(marker("9.9.9"));
        let path = file(dir.path(), "answers", &script, 0o755);
        assert_eq!(
            reported_version(&path).unwrap(),
            ReportedVersion {
                version: version("1.2.3"),
                source: VersionSource::Answered,
            }
        );
        let path = file(
            dir.path(),
            "publisher",
            b"#!/bin/sh\necho 'wavecast 0.1.0'\n",
            0o755,
        );
        assert_eq!(
            not_an_updater(&path),
            "it answered `--version` with `wavecast 0.1.0`, not `wavecast-update <version>`"
        );
    }

    #[test]
    fn a_build_that_does_not_run_here_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let mut foreign = b"MZ\x90\x00 a build for another platform".to_vec();
        foreign.extend(marker("0.3.0-rc.1"));
        let path = file(dir.path(), "foreign.exe", &foreign, 0o755);
        let reported = reported_version(&path).unwrap();
        assert_eq!(reported.version, version("0.3.0-rc.1"));
        assert!(
            matches!(&reported.source, VersionSource::Marker(reason) if reason.contains("Exec format error")),
            "{:?}",
            reported.source
        );
        assert!(
            reported.source.to_string().starts_with(
                "read from its version marker: it does not run here, Exec format error"
            ),
            "{}",
            reported.source
        );

        let mut failing = b"#!/bin/sh\nexit 3\n".to_vec();
        failing.extend(marker("0.3.0"));
        let path = file(dir.path(), "fails", &failing, 0o755);
        assert_eq!(
            reported_version(&path).unwrap().source,
            VersionSource::Marker("`--version` exited with status 3".into())
        );

        let path = file(dir.path(), "data", b"just some data", 0o644);
        let reason = not_an_updater(&path);
        assert!(
            reason.starts_with(
                "it carries no wavecast-update version marker, and does not run here: Permission denied"
            ),
            "{reason}"
        );

        let mut two = marker("0.3.0");
        two.extend(marker("0.4.0"));
        let path = file(dir.path(), "two", &two, 0o644);
        assert!(not_an_updater(&path).starts_with(
            "it carries markers of several versions (0.3.0, 0.4.0), and does not run here: "
        ));
    }

    #[test]
    fn a_build_that_hangs_is_killed_and_read() {
        let dir = tempfile::tempdir().unwrap();
        let mut script = b"#!/bin/sh\nexec sleep 60\n".to_vec();
        script.extend(marker("0.3.0"));
        let path = file(dir.path(), "hangs", &script, 0o755);
        let started = Instant::now();
        let reported = reported_version_within(&path, Duration::from_millis(200)).unwrap();
        assert!(started.elapsed() < Duration::from_secs(30));
        assert_eq!(
            reported.source,
            VersionSource::Marker("it did not answer `--version` within 0.2 s".into())
        );
    }

    /// A marker across the end of a read window is found whole.
    #[test]
    fn a_marker_across_a_window_is_found() {
        let dir = tempfile::tempdir().unwrap();
        for before in [(1 << 20) - 30, (1 << 20) - 1, 1 << 20, (2 << 20) - 5] {
            let mut bytes = vec![b'x'; before];
            bytes.extend(marker("1.2.3-beta.4"));
            bytes.extend(vec![b'y'; 100]);
            let path = file(dir.path(), "big", &bytes, 0o644);
            assert_eq!(
                read_markers(&path).unwrap(),
                [version("1.2.3-beta.4")],
                "{before}"
            );
        }
    }
}
