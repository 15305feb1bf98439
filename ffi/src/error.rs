//! Status codes, the last error's text, and the guard every exported function runs
//! its body in: no panic and no Rust error crosses the C boundary, only a
//! [`WavecastStatus`] and, for a failure, a message kept for
//! [`wavecast_last_error_message`].

use std::any::Any;
use std::cell::RefCell;
use std::ffi::c_char;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::strings::into_c_string;

/// What a `wavecast_` function did. Every function but the two that free returns
/// one; out-parameters are set to NULL first and filled only with
/// `WAVECAST_STATUS_OK`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WavecastStatus {
    /// It worked.
    Ok = 0,
    /// It failed: `wavecast_last_error_message()` says why.
    Error = 1,
    /// `wavecast_cancel` stopped it; the installed release is unchanged.
    Cancelled = 2,
    /// There was nothing to do: no update to install or stage, nothing staged to
    /// apply. Out-parameters are set to NULL.
    Nothing = 3,
    /// `wavecast_open` found no configuration in the root: initialize it first
    /// (`wavecast_init`, or `wavecast-update init`).
    NotInitialized = 4,
    /// A required pointer was NULL, or a string was not UTF-8.
    InvalidArgument = 5,
    /// The library panicked (a bug in it); the message has the panic's text. The
    /// handle may still be used: the root's journal keeps an interrupted install
    /// recoverable.
    Panic = 6,
}

/// Why a call failed, on the Rust side of the boundary.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FfiError {
    /// A pointer argument was NULL.
    #[error("`{0}` is NULL")]
    Null(&'static str),
    /// A string argument was not UTF-8.
    #[error("`{name}` is not UTF-8")]
    NotUtf8 {
        name: &'static str,
        #[source]
        source: std::str::Utf8Error,
    },
    /// The library failed (or was cancelled).
    #[error(transparent)]
    Client(#[from] wavecast_client::Error),
}

impl FfiError {
    fn status(&self) -> WavecastStatus {
        match self {
            Self::Null(_) | Self::NotUtf8 { .. } => WavecastStatus::InvalidArgument,
            Self::Client(error) if error.is_cancelled() => WavecastStatus::Cancelled,
            Self::Client(wavecast_client::Error::Store(
                wavecast_client::StoreError::NotInitialized { .. },
            )) => WavecastStatus::NotInitialized,
            Self::Client(_) => WavecastStatus::Error,
        }
    }

    /// The message as `wavecast-update` prints it, without its `error: ` prefix:
    /// the error, one `  caused by: …` line per source, then the library's hint.
    fn message(&self) -> String {
        let mut message = self.to_string();
        let mut source = std::error::Error::source(self);
        // `Client` is transparent: its own source is the first cause.
        while let Some(cause) = source {
            message.push_str("\n  caused by: ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        if let Self::Client(error) = self
            && let Some(hint) = error.hint()
        {
            message.push_str("\nhint: ");
            message.push_str(&hint);
        }
        message
    }
}

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
