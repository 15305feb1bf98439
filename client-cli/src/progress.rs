//! The download progress bar on stderr: the library's [`Reporter`] for the commands
//! that install (`update`, `poll`, `self-update`).

use std::cell::{Cell, RefCell};
use std::io::IsTerminal as _;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use semver::Version;
use wavecast_client::units::{format_bytes, format_duration};
use wavecast_client::{Fallback, InstallError, ModuleName, Phase, Progress, Reporter};

use crate::output::stderr_line;

/// How the progress of an install is shown on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shown {
    /// One bar for all the bytes, on a terminal.
    Bar,
    /// One line per phase, when stderr is not a terminal: a log (under systemd, say)
    /// then shows what happens.
    Lines,
    /// Nothing but fallback warnings.
    Hidden,
}

impl Shown {
    /// A bar on a terminal, lines without one; nothing with `--json`, `-q` or
    /// `WAVECAST_NO_PROGRESS`.
    pub(crate) fn for_command(json: bool) -> Self {
        if json || crate::output::quiet() || std::env::var_os("WAVECAST_NO_PROGRESS").is_some() {
            Self::Hidden
        } else if std::io::stderr().is_terminal() {
            Self::Bar
        } else {
            Self::Lines
        }
    }
}

/// Shows an install's progress on stderr as [`Shown`] says, and a warning for every
/// fallback.
pub(crate) struct ProgressReporter {
    shown: Shown,
    bar: RefCell<Option<ProgressBar>>,
    /// The phase the last line named, in [`Shown::Lines`].
    phase: Cell<Option<Phase>>,
}

impl ProgressReporter {
    /// A reporter that shows progress as `shown` says.
    pub(crate) fn new(shown: Shown) -> Self {
        Self {
            shown,
            bar: RefCell::new(None),
            phase: Cell::new(None),
        }
    }

    /// Clears the bar, once the tree is complete.
    fn clear(&self) {
        if let Some(bar) = self.bar.borrow_mut().take() {
            bar.finish_and_clear();
        }
    }

    /// One line when the phase changes.
    fn line(&self, progress: Progress) {
        if self.phase.replace(Some(progress.phase)) == Some(progress.phase) {
            return;
        }
        let line = match progress.phase {
            Phase::Checking => return,
            Phase::Downloading => format!("downloading {}", format_bytes(progress.total)),
            Phase::Assembling => format!(
                "assembling the new tree ({} downloaded)",
                format_bytes(progress.done)
            ),
            _ => "switching to the new tree".to_owned(),
        };
        stderr_line(&line);
    }
}

impl Reporter for ProgressReporter {
    fn on_progress(&self, progress: Progress) {
        match self.shown {
            Shown::Hidden => return,
            Shown::Lines => return self.line(progress),
            Shown::Bar => {}
        }
        let phase = match progress.phase {
            Phase::Downloading => "downloading",
            Phase::Assembling => "assembling",
            Phase::Switching => return self.clear(),
            _ => return,
        };
        // Nothing to download (a tree rebuilt from local files): no bar.
        if progress.total == 0 && self.bar.borrow().is_none() {
            return;
        }
        let mut bar = self.bar.borrow_mut();
        let bar = bar.get_or_insert_with(|| {
            let bar =
                ProgressBar::with_draw_target(Some(progress.total), ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template(
                "{msg:>12} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        bar.set_message(phase);
        bar.set_length(progress.total);
        bar.set_position(progress.done);
    }

    fn on_fallback(&self, module: &ModuleName, fallback: &Fallback, reason: &InstallError) {
        let what = match fallback {
            Fallback::FileCopy(path) => {
                format!("{module}: `{path}`: downloading the file's copy instead")
            }
            Fallback::WithoutPack => "the delta pack cannot be used; fetching the release's \
                 file indexes and the files it carried from the copy packs instead"
                .to_owned(),
            _ => format!("{module}: downloading the module's package instead"),
        };
        let mut causes = reason.to_string();
        let mut source = std::error::Error::source(reason);
        while let Some(cause) = source {
            causes.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        let line = format!("warning: {what}: {causes}");
        match self.bar.borrow().as_ref() {
            Some(bar) => bar.suspend(|| stderr_line(&line)),
            None => stderr_line(&line),
        }
    }

    fn on_switch(&self, _version: &Version, _dir: &str) {
        self.clear();
    }

    fn on_health_check(&self, version: &Version, command: &str, timeout: Duration) {
        stderr_line(&format!(
            "running the health check of {version}: `{command}` (timeout {})",
            format_duration(timeout)
        ));
    }
}

impl Drop for ProgressReporter {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.borrow_mut().take() {
            bar.abandon();
        }
    }
}
