//! The download progress bar on stderr: the library's [`Reporter`] for the commands
//! that install (`update`, `poll`, `self-update`).

use std::cell::RefCell;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use semver::Version;
use wavecast_client::units::format_duration;
use wavecast_client::{Fallback, InstallError, ModuleName, Phase, Progress, Reporter};

use crate::output::stderr_line;

/// Shows one progress bar for all the bytes an install downloads on stderr (or
/// nothing when hidden), and a warning for every fallback.
pub(crate) struct ProgressReporter {
    enabled: bool,
    bar: RefCell<Option<ProgressBar>>,
}

impl ProgressReporter {
    /// A reporter that draws the bar when `enabled` (never under `-q`), and only warns
    /// otherwise.
    pub(crate) fn new(enabled: bool) -> Self {
        Self {
            enabled: enabled && !crate::output::quiet(),
            bar: RefCell::new(None),
        }
    }

    /// Clears the bar, once the tree is complete.
    fn clear(&self) {
        if let Some(bar) = self.bar.borrow_mut().take() {
            bar.finish_and_clear();
        }
    }
}

impl Reporter for ProgressReporter {
    fn on_progress(&self, progress: Progress) {
        let phase = match progress.phase {
            Phase::Downloading => "downloading",
            Phase::Assembling => "assembling",
            Phase::Switching => return self.clear(),
            _ => return,
        };
        // Nothing to download (a tree rebuilt from local files): no bar.
        if !self.enabled || (progress.total == 0 && self.bar.borrow().is_none()) {
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
