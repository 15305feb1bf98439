//! Running a hook command: `sh -c COMMAND` in a directory with extra environment
//! variables, in its own process group, for at most a timeout, with the end of its
//! output captured. The health check and the on-activate hook of image slots both run through
//! [`run_shell`].

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::units::format_duration;

/// A command to run with [`run_shell`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shell<'a> {
    /// The shell command, run as `sh -c command`.
    pub(crate) command: &'a str,
    /// Its working directory (also its `PWD`); absolute.
    pub(crate) dir: &'a Path,
    /// Variables added to the environment it inherits.
    pub(crate) env: &'a [(&'a str, OsString)],
    /// How long it may run before its whole process group is killed.
    pub(crate) timeout: Duration,
}

/// Runs `shell` and waits for it, at most its timeout. Output (stdout and stderr,
/// interleaved) goes to an anonymous temporary file, so a command that leaves
/// processes behind cannot make the client wait for them; on timeout the command's
/// whole process group is killed. The report keeps the last
/// [`HEALTH_OUTPUT_LIMIT`] bytes of output.
///
/// # Errors
///
/// The I/O error when the temporary file cannot be made, `sh` cannot be started or
/// waited for.
pub(crate) fn run_shell(shell: &Shell<'_>) -> io::Result<HealthCheckReport> {
    let mut output = tempfile::tempfile()?;
    let started = Instant::now();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(shell.command)
        .current_dir(shell.dir)
        .env("PWD", shell.dir)
        .envs(shell.env.iter().map(|(name, value)| (name, value)))
        .stdin(Stdio::null())
        .stdout(output.try_clone()?)
        .stderr(output.try_clone()?)
        .process_group(0)
        .spawn()?;
    let status = match wait_within(&mut child, started + shell.timeout) {
        Ok(Some(status)) => match status.code() {
            Some(0) => HealthStatus::Passed,
            Some(code) => HealthStatus::Exited(code),
            None => HealthStatus::Signaled(status.signal().unwrap_or(0)),
        },
        Ok(None) => {
            kill_group(&child);
            child.wait()?;
            HealthStatus::TimedOut
        }
        Err(error) => {
            kill_group(&child);
            let _ = child.wait();
            return Err(error);
        }
    };
    let duration = started.elapsed();
    let (text, output_bytes) = output_tail(&mut output).unwrap_or_default();
    Ok(HealthCheckReport {
        command: shell.command.to_owned(),
        status,
        timeout: shell.timeout,
        duration,
        output: text,
        output_bytes,
    })
}

/// Waits for `child` until `deadline`; `None` when it is still running then.
fn wait_within(
    child: &mut Child,
    deadline: Instant,
) -> io::Result<Option<std::process::ExitStatus>> {
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        std::thread::sleep(left.min(Duration::from_millis(10)));
    }
}

/// Kills the process group `child` leads. The child has not been reaped, so its
/// process group id cannot have been reused.
fn kill_group(child: &Child) {
    let Ok(group) = libc::pid_t::try_from(child.id()) else {
        return;
    };
    #[expect(unsafe_code, reason = "kill(2) has no safe wrapper in std")]
    // SAFETY: kill takes plain integers and touches no memory of ours.
    unsafe {
        libc::kill(-group, libc::SIGKILL);
    }
}

/// The last [`HEALTH_OUTPUT_LIMIT`] bytes of `file`, and its length.
fn output_tail(file: &mut File) -> io::Result<(String, u64)> {
    let length = file.seek(SeekFrom::End(0))?;
    file.seek(SeekFrom::Start(length.saturating_sub(HEALTH_OUTPUT_LIMIT)))?;
    let mut bytes = Vec::new();
    file.take(HEALTH_OUTPUT_LIMIT).read_to_end(&mut bytes)?;
    Ok((String::from_utf8_lossy(&bytes).into_owned(), length))
}

/// How much of a health check's output (stdout and stderr, interleaved) is kept: its
/// last 4 KiB.
pub const HEALTH_OUTPUT_LIMIT: u64 = 4096;

/// How a health check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthStatus {
    /// It exited with status 0.
    Passed,
    /// It exited with this non-zero status.
    Exited(i32),
    /// It was killed by this signal (not by the client).
    Signaled(i32),
    /// It ran past its timeout, and its process group was killed.
    TimedOut,
}

impl HealthStatus {
    /// Whether the check passed.
    pub fn passed(self) -> bool {
        self == Self::Passed
    }
}

/// What a health check did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheckReport {
    /// The shell command.
    pub command: String,
    /// How it ended.
    pub status: HealthStatus,
    /// Its timeout.
    pub timeout: Duration,
    /// How long it ran.
    pub duration: Duration,
    /// The end of its output, stdout and stderr interleaved: at most
    /// [`HEALTH_OUTPUT_LIMIT`] bytes, invalid UTF-8 replaced.
    pub output: String,
    /// How many bytes of output it wrote in all.
    pub output_bytes: u64,
}

impl HealthCheckReport {
    /// `exited with status 3`, `timed out after 1s`…, for messages.
    pub fn describe(&self) -> String {
        match self.status {
            HealthStatus::Passed => format!("passed in {:.1}s", self.duration.as_secs_f64()),
            HealthStatus::Exited(code) => format!("exited with status {code}"),
            HealthStatus::Signaled(signal) => format!("was killed by signal {signal}"),
            HealthStatus::TimedOut => format!(
                "timed out after {} (its processes were killed)",
                format_duration(self.timeout)
            ),
        }
    }
}
