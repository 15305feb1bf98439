//! The download progress bar on stderr: the library's [`Reporter`] for the commands
//! that install (`update`, `poll`, `self-update`).

use std::cell::{Cell, RefCell};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use semver::Version;
use wavecast_client::units::format_duration;
use wavecast_client::{Fallback, InstallError, ModuleUpdate, Reporter};
use wavecast_schema::ModuleName;

use crate::output::stderr_line;

/// Shows one progress bar for all the bytes an install downloads on stderr (or
/// nothing when hidden), and a warning for every fallback.
pub(crate) struct ProgressReporter {
    enabled: bool,
    bar: RefCell<Option<ProgressBar>>,
    /// Bytes the plans of the modules seen so far expect.
    planned: Cell<u64>,
    /// Bytes of the downloads that ended (finished or failed).
    done: Cell<u64>,
    /// Bytes of the current download so far.
    current: Cell<u64>,
}

impl ProgressReporter {
    /// A reporter that draws the bar when `enabled`, and only warns otherwise.
    pub(crate) fn new(enabled: bool) -> Self {
        Self {
            enabled,
            bar: RefCell::new(None),
            planned: Cell::new(0),
            done: Cell::new(0),
            current: Cell::new(0),
        }
    }

    /// The bytes downloaded so far.
    fn position(&self) -> u64 {
        self.done.get() + self.current.get()
    }

    /// Ends the current download, counting its bytes as done.
    fn end_download(&self) {
        self.done.set(self.position());
        self.current.set(0);
    }

    /// Draws the bar with the current length and position.
    fn update_bar(&self) {
        if let Some(bar) = self.bar.borrow().as_ref() {
            bar.set_length(self.planned.get().max(self.position()));
            bar.set_position(self.position());
        }
    }
}

impl Reporter for ProgressReporter {
    fn on_module_plan(&self, plan: &ModuleUpdate) {
        self.planned.set(self.planned.get() + plan.download_bytes);
        self.update_bar();
    }

    fn on_download_start(&self, module: &ModuleName, _url: &str, size: u64) {
        self.end_download();
        if !self.enabled {
            return;
        }
        if self.bar.borrow().is_none() {
            let length = self.planned.get().max(self.position() + size);
            let bar = ProgressBar::with_draw_target(Some(length), ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template(
                "{msg:>12} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.enable_steady_tick(Duration::from_millis(200));
            *self.bar.borrow_mut() = Some(bar);
        }
        if let Some(bar) = self.bar.borrow().as_ref() {
            bar.set_message(module.to_string());
        }
        self.update_bar();
    }

    fn on_download_progress(&self, _module: &ModuleName, downloaded: u64) {
        self.current.set(downloaded);
        self.update_bar();
    }

    fn on_download_finish(&self, _module: &ModuleName) {
        self.end_download();
        self.update_bar();
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
        if let Some(bar) = self.bar.borrow_mut().take() {
            bar.finish_and_clear();
        }
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
