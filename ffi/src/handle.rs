//! The opaque `WavecastUpdater` handle: an [`Updater`] on one install root, the
//! [`Cancel`] it installs under, and the last check's report for the next install.
//! Creating, freeing and cancelling it are here; the operations are in
//! `operations.rs`.

use std::ffi::c_char;
use std::sync::Mutex;

use wavecast_client::{
    BaseUrl, Cancel, CheckReport, InitOptions, PinnedTrust, Timestamp, TrustedKey, Updater,
};

use crate::last_error::guard;
use crate::status::{FfiError, WavecastStatus};
use crate::strings::read_str;

/// An open install root (opaque). Created by `wavecast_open`, freed by
/// `wavecast_free`. See the header's introduction for which functions may run on
/// it at the same time.
pub struct WavecastUpdater {
    pub(crate) updater: Updater,
    cancel: Cancel,
    /// The report of the last `wavecast_check`, taken by the next install or stage.
    pub(crate) last_check: Mutex<Option<CheckReport>>,
}

// Two threads use one handle (an install, and the cancel that stops it): the
// compiler checks here that they may.
const _: fn() = || {
    fn shared_between_threads<T: Send + Sync>() {}
    shared_between_threads::<WavecastUpdater>();
};

/// The handle behind `updater`.
///
/// # Safety
///
/// `updater` is NULL or a handle from `wavecast_open`, not freed, that stays valid
/// for `'a`.
pub(crate) unsafe fn handle<'a>(
    updater: *const WavecastUpdater,
) -> Result<&'a WavecastUpdater, FfiError> {
    // SAFETY: the caller promises a live handle or NULL, which `as_ref` checks.
    unsafe { updater.as_ref() }.ok_or(FfiError::Null("updater"))
}

/// Initializes the install root `root` with the library's defaults
/// (`InitOptions::new`: channel `stable`, this build's platform, the usual limits):
/// the site at `url` is fetched and its manifest verified with `pubkey` (a minisign
/// public key, or the path of a `.pub` file holding one) before anything is
/// written. Then open it with `wavecast_open`. `wavecast-update init` offers every
/// other option.
///
/// Returns `WAVECAST_STATUS_ERROR` when the site cannot be reached or does not verify
/// (nothing is written), or the root is initialized already.
///
/// # Safety
///
/// `root`, `url` and `pubkey` are NULL or NUL-terminated strings.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wavecast_init(
    root: *const c_char,
    url: *const c_char,
    pubkey: *const c_char,
) -> WavecastStatus {
    guard(|| {
        // SAFETY: the caller promises NUL-terminated strings (or NULL).
        let (root, url, pubkey) = unsafe {
            (
                read_str(root, "root")?,
                read_str(url, "url")?,
                read_str(pubkey, "pubkey")?,
            )
        };
        let trust = PinnedTrust::Pubkey(
            TrustedKey::from_argument(pubkey).map_err(wavecast_client::Error::from)?,
        );
        let url = BaseUrl::parse(url).map_err(wavecast_client::Error::from)?;
        Updater::init(root, InitOptions::new(url, trust), Timestamp::now())?;
        Ok(WavecastStatus::Ok)
    })
}

/// Opens the initialized install root `root` and stores a new handle in `*out`
/// (NULL on failure). `WAVECAST_STATUS_NOT_INITIALIZED` when the root has no
/// configuration yet: `wavecast_init` it, then open it again.
///
/// # Safety
///
/// `root` is NULL or a NUL-terminated string; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wavecast_open(
    root: *const c_char,
    out: *mut *mut WavecastUpdater,
) -> WavecastStatus {
    guard(|| {
        if out.is_null() {
            return Err(FfiError::Null("out"));
        }
        // SAFETY: not NULL, and the caller promises it is writable.
        unsafe { out.write(std::ptr::null_mut()) };
        // SAFETY: the caller promises a NUL-terminated string (or NULL).
        let root = unsafe { read_str(root, "root")? };
        let cancel = Cancel::new();
        let handle = WavecastUpdater {
            updater: Updater::open(root)?.with_cancel(cancel.clone()),
            cancel,
            last_check: Mutex::new(None),
        };
        // SAFETY: checked above.
        unsafe { out.write(Box::into_raw(Box::new(handle))) };
        Ok(WavecastStatus::Ok)
    })
}

/// Frees a handle. NULL is ignored. No other call may be using it, or use it
/// afterwards.
///
/// # Safety
///
/// `updater` is NULL or a handle from `wavecast_open`, not freed yet, and no other
/// thread uses it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wavecast_free(updater: *mut WavecastUpdater) {
    if !updater.is_null() {
        // SAFETY: the caller promises it came from `Box::into_raw` in
        // `wavecast_open`, is freed once, and is not in use.
        let handle = unsafe { Box::from_raw(updater) };
        // Dropping runs the library's destructors; none should panic, but none may
        // unwind into C either.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(handle)));
    }
}

/// Stops an install or stage running on this handle, from any thread (or from its
/// progress callback): it returns `WAVECAST_STATUS_CANCELLED` at its next safe point
/// (a chunk of a download, a file of the new tree, or just before the switch), with
/// the installed release untouched and any earlier staged release kept. Once
/// `current` is switched an install finishes instead.
///
/// The cancel stays in effect, as the library's `Cancel` does, so that one arriving
/// just before an install starts is not lost: every later install or stage on this
/// handle is cancelled at once. Open a new handle to update again.
///
/// # Safety
///
/// `updater` is NULL or a handle from `wavecast_open`, not freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wavecast_cancel(updater: *const WavecastUpdater) -> WavecastStatus {
    guard(|| {
        // SAFETY: the caller promises a live handle or NULL.
        unsafe { handle(updater)? }.cancel.cancel();
        Ok(WavecastStatus::Ok)
    })
}
