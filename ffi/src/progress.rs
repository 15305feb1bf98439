//! Progress for C: a function pointer and its `user_data`, called through a
//! [`Reporter`] whose `on_progress` forwards every [`Progress`] to it.

use std::ffi::c_void;

use wavecast_client::{Phase, Progress, Reporter};

/// The phases of an install or stage, in order (the library's `Phase`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WavecastPhase {
    /// Fetching the release's document and planning; nothing of the new tree is
    /// downloaded yet.
    Checking = 0,
    /// Downloading what the plan needs.
    Downloading = 1,
    /// Writing and verifying the new tree.
    Assembling = 2,
    /// Flushing the tree and switching `current` to it (staging records it).
    Switching = 3,
}

impl From<Phase> for WavecastPhase {
    fn from(phase: Phase) -> Self {
        match phase {
            Phase::Checking => Self::Checking,
            Phase::Downloading => Self::Downloading,
            Phase::Assembling => Self::Assembling,
            // `Phase` may grow; a new phase comes last, as switching does.
            _ => Self::Switching,
        }
    }
}

/// Called on the thread running `wavecast_install` or `wavecast_stage`, at the
/// start of each phase and as bytes arrive: `done` bytes of `total` downloaded (all
/// modules together). `total` is known once downloading starts and grows only when
/// a fallback downloads more; `done` never decreases. The callback must return
/// normally (no C++ exception, no `longjmp` through the library); it may call
/// `wavecast_cancel`.
pub type WavecastProgressFn =
    Option<extern "C" fn(user_data: *mut c_void, phase: WavecastPhase, done: u64, total: u64)>;

/// Forwards the install's progress to a C callback.
pub(crate) struct CallbackReporter {
    callback: WavecastProgressFn,
    user_data: *mut c_void,
}

impl CallbackReporter {
    /// `callback` (may be NULL: no progress) with its `user_data`, which is passed
    /// back untouched.
    pub(crate) fn new(callback: WavecastProgressFn, user_data: *mut c_void) -> Self {
        Self {
            callback,
            user_data,
        }
    }
}

impl Reporter for CallbackReporter {
    fn on_progress(&self, progress: Progress) {
        if let Some(callback) = self.callback {
            callback(
                self.user_data,
                progress.phase.into(),
                progress.done,
                progress.total,
            );
        }
    }
}
