//! Processes the tests start, each leading a process group of its own, so that
//! stopping one also stops every process it started.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, WaitId, WaitIdOptions, kill_process_group, waitid};

/// How long a group's leader has to exit after SIGTERM before the group is killed.
const GRACE: Duration = Duration::from_secs(5);

/// A child process leading a new process group, which every process it starts joins
/// (nginx's workers, chromium's helpers, a shell's commands). Killing the leader
/// alone would leave those running, orphaned, after the test; this stops them all.
///
/// Dropping it [stops](Self::stop) the group, so a test that panics stops it too.
#[derive(Debug)]
pub struct ProcessGroup {
    child: Child,
    /// The leader's exit status once it has been reaped.
    reaped: Option<ExitStatus>,
}

impl ProcessGroup {
    /// Starts `command` as the leader of a new process group.
    pub fn spawn(command: &mut Command) -> io::Result<Self> {
        let child = command.process_group(0).spawn()?;
        Ok(Self {
            child,
            reaped: None,
        })
    }

    /// The leader, for its pipes.
    pub fn leader(&mut self) -> &mut Child {
        &mut self.child
    }

    fn group(&self) -> Pid {
        let id = i32::try_from(self.child.id()).expect("process ids fit in an i32");
        Pid::from_raw(id).expect("a child's process id is positive")
    }

    /// Whether the leader has exited. It is not reaped (see [`Self::stop`]), so the
    /// group's id stays reserved and signals to the group reach no other process.
    pub fn has_exited(&self) -> bool {
        if self.reaped.is_some() {
            return true;
        }
        let options = WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT;
        waitid(WaitId::Pid(self.group()), options).map_or(true, |status| status.is_some())
    }

    /// Waits up to `timeout` for the leader to exit on its own; whether it did.
    pub fn wait_for_exit(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while !self.has_exited() {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }

    /// Stops the group and returns the leader's exit status: SIGTERM to every process
    /// in it, up to 5 s for the leader to exit (nginx's master first waits for its
    /// workers), then SIGKILL to whatever is left, and the leader is reaped. Only the
    /// first call does anything.
    pub fn stop(&mut self) -> io::Result<ExitStatus> {
        if let Some(status) = self.reaped {
            return Ok(status);
        }
        let group = self.group();
        // An error means that no process is left in the group.
        let _ = kill_process_group(group, Signal::TERM);
        self.wait_for_exit(GRACE);
        let _ = kill_process_group(group, Signal::KILL);
        let status = self.child.wait()?;
        self.reaped = Some(status);
        Ok(status)
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}
