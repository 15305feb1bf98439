//! The guard every exported function runs its body in, and the last error's text:
//! no panic and no Rust error crosses the C boundary, only a [`WavecastStatus`]
//! and, for a failure, a message kept per thread for
//! [`wavecast_last_error_message`].

use std::any::Any;
use std::cell::RefCell;
use std::ffi::c_char;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::status::{FfiError, WavecastStatus};
use crate::strings::into_c_string;

thread_local! {
    /// The message of the last call on this thread that did not succeed.
    static LAST_ERROR: RefCell<Option<String>> = const { RefCell::new(None) };
}

fn set_last_error(message: Option<String>) {
    LAST_ERROR.with(|last| *last.borrow_mut() = message);
}

/// Runs an exported function's `body`: clears this thread's last error, turns a
/// failure into its status and message, and a panic into
/// [`WavecastStatus::Panic`], so that nothing unwinds into C.
pub(crate) fn guard(body: impl FnOnce() -> Result<WavecastStatus, FfiError>) -> WavecastStatus {
    set_last_error(None);
    // Unwind safety: after a panic the handle's parts are either untouched or, for
    // the root on disk, recovered by the next operation from the install journal.
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(status)) => status,
        Ok(Err(error)) => {
            set_last_error(Some(error.message()));
            error.status()
        }
        Err(panic) => {
            set_last_error(Some(format!(
                "the wavecast library panicked: {}",
                panic_text(panic.as_ref())
            )));
            WavecastStatus::Panic
        }
    }
}

fn panic_text(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// The message of the last call on this thread that did not return
/// `WAVECAST_STATUS_OK` or `WAVECAST_STATUS_NOTHING`: the error, one
/// `  caused by: …` line per cause, then a `hint: …` line when the library has
/// advice, as `wavecast-update` prints it (without its `error: ` prefix). NULL when
/// the last call succeeded. Every `wavecast_` call but this one and
/// `wavecast_string_free` resets it.
///
/// The message is per thread, so a failed `wavecast_open` (which has no handle)
/// has one too. The caller owns the returned copy: free it with
/// `wavecast_string_free`.
#[unsafe(no_mangle)]
pub extern "C" fn wavecast_last_error_message() -> *mut c_char {
    catch_unwind(|| {
        LAST_ERROR
            .with(|last| last.borrow().clone())
            .map_or(std::ptr::null_mut(), |message| {
                into_c_string(message).into_raw()
            })
    })
    .unwrap_or(std::ptr::null_mut())
}
