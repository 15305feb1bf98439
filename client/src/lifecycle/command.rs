//! Running a hook command: `sh -c COMMAND` (`cmd /C COMMAND` on Windows) in a
//! directory with extra environment variables, in its own process group (a job
//! object on Windows), for at most a timeout, with the end of its output captured. The health check and the on-activate hook of image slots both run through
//! [`run_shell`].

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
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
    let mut command = shell_command(shell.command);
    let mut child = command
        .current_dir(shell.dir)
        .env("PWD", shell.dir)
        .envs(shell.env.iter().map(|(name, value)| (name, value)))
        .stdin(Stdio::null())
        .stdout(output.try_clone()?)
        .stderr(output.try_clone()?)
        .spawn()?;
    let group = Group::of(&child);
    let status = match wait_within(&mut child, started + shell.timeout) {
        Ok(Some(status)) => match status.code() {
            Some(0) => HealthStatus::Passed,
            Some(code) => HealthStatus::Exited(code),
            None => HealthStatus::Signaled(signal_of(status)),
        },
        Ok(None) => {
            group.kill(&child);
            child.wait()?;
            HealthStatus::TimedOut
        }
        Err(error) => {
            group.kill(&child);
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

/// `sh -c command` in a process group of its own, so that a timeout kills whatever
/// it started.
#[cfg(unix)]
fn shell_command(command: &str) -> Command {
    use std::os::unix::process::CommandExt as _;
    let mut shell = Command::new("sh");
    shell.arg("-c").arg(command).process_group(0);
    shell
}

/// `cmd /C command`, the command passed as written (cmd parses its own line).
#[cfg(windows)]
fn shell_command(command: &str) -> Command {
    use std::os::windows::process::CommandExt as _;
    let mut shell = Command::new("cmd");
    shell.arg("/C").raw_arg(command);
    shell
}

/// The signal that ended a process (0 where there are none).
fn signal_of(status: std::process::ExitStatus) -> i32 {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt as _;
        status.signal().unwrap_or(0)
    }
    #[cfg(not(unix))]
    {
        let _ = status;
        0
    }
}

/// The processes a command started, to be killed together: its process group on
/// Unix; on Windows a job object the child is put in as soon as it is spawned (what
/// it starts after that joins the job too).
struct Group {
    #[cfg(windows)]
    job: Option<windows_sys::Win32::Foundation::HANDLE>,
}

impl Group {
    #[cfg(unix)]
    fn of(_child: &Child) -> Self {
        Self {}
    }

    #[cfg(windows)]
    #[expect(unsafe_code, reason = "job objects have no safe wrapper in std")]
    fn of(child: &Child) -> Self {
        use std::os::windows::io::AsRawHandle as _;
        use windows_sys::Win32::System::JobObjects::{AssignProcessToJobObject, CreateJobObjectW};
        // SAFETY: both pointers may be null (no attributes, no name).
        let job = unsafe { CreateJobObjectW(std::ptr::null(), std::ptr::null()) };
        if job.is_null() {
            return Self { job: None };
        }
        // SAFETY: `job` was just created and the child's handle is live until the
        // child is waited for, which happens after this.
        let assigned = unsafe { AssignProcessToJobObject(job, child.as_raw_handle()) };
        if assigned == 0 {
            // SAFETY: `job` is ours and closed once.
            unsafe { windows_sys::Win32::Foundation::CloseHandle(job) };
            return Self { job: None };
        }
        Self { job: Some(job) }
    }

    /// Kills the process group `child` leads. The child has not been reaped, so its
    /// process group id cannot have been reused.
    #[cfg(unix)]
    fn kill(&self, child: &Child) {
        let Ok(group) = libc::pid_t::try_from(child.id()) else {
            return;
        };
        #[expect(unsafe_code, reason = "kill(2) has no safe wrapper in std")]
        // SAFETY: kill takes plain integers and touches no memory of ours.
        unsafe {
            libc::kill(-group, libc::SIGKILL);
        }
    }

    /// Terminates every process of the job, or the child alone without one.
    #[cfg(windows)]
    fn kill(&self, child: &Child) {
        match self.job {
            #[expect(unsafe_code, reason = "job objects have no safe wrapper in std")]
            // SAFETY: the job handle is open until drop.
            Some(job) => unsafe {
                windows_sys::Win32::System::JobObjects::TerminateJobObject(job, 1);
            },
            None => {
                // `kill` needs `&mut`; the handle is what matters, so kill by id.
                let _ = Command::new("taskkill")
                    .args(["/F", "/T", "/PID", &child.id().to_string()])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }
}

#[cfg(windows)]
impl Drop for Group {
    fn drop(&mut self) {
        if let Some(job) = self.job.take() {
            #[expect(unsafe_code, reason = "job objects have no safe wrapper in std")]
            // SAFETY: `job` is ours and closed once.
            unsafe {
                windows_sys::Win32::Foundation::CloseHandle(job);
            }
        }
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

/// Commands for the shell hooks and health checks run in, for tests.
#[cfg(test)]
pub(crate) mod tests {
    /// `sh` on Unix, `cmd` on Windows: of the same command written for each shell,
    /// the one this platform runs.
    pub(crate) fn shell<'a>(sh: &'a str, cmd: &'a str) -> &'a str {
        if cfg!(windows) { cmd } else { sh }
    }

    /// How a line of the shell's `echo` ends.
    pub(crate) const NEWLINE: &str = if cfg!(windows) { "\r\n" } else { "\n" };
}
