//! Stopping an install from another thread: a flag the install reads at its safe
//! points (every chunk of a download, every file it writes, before the switch), so a
//! cancelled install ends the way a failed one does, with its staging tree removed
//! and the installed release untouched.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::install::error::{Error, Result};

/// A handle that stops an install: clone it, give one clone to
/// [`Updater::with_cancel`](crate::Updater::with_cancel) and call
/// [`cancel`](Self::cancel) on another, from any thread.
///
/// The install stops at its next safe point with [`InstallError::Cancelled`]
/// (`Error::is_cancelled` says so): within one chunk of a download, one file of the
/// new tree, or just before `current` is switched. Once `current` points to the new
/// release the install finishes (its health check and pruning included), so a
/// cancel never leaves a half-switched root. Partial downloads stay in the cache,
/// and the next install resumes them.
///
/// [`InstallError::Cancelled`]: crate::InstallError::Cancelled
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// A handle that has not been triggered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks every install using this handle (or a clone) to stop; it stays
    /// triggered, so an install started afterwards stops at once.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether [`cancel`](Self::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// A safe point: [`Error::Cancelled`] once cancelled.
    pub(crate) fn check(&self) -> Result<()> {
        if self.is_cancelled() {
            return Err(Error::Cancelled);
        }
        Ok(())
    }
}
