//! The operations on a handle: check, install, stage, apply, confirm, launched.
//! Each runs the library's `Updater` method of the same name and hands its report
//! back as JSON (see `json.rs`).

use std::ffi::{c_char, c_void};

use wavecast_client::{
    CheckReport, InstallReport, NoReporter, Outcome, Reporter, Timestamp, Updater,
};

use crate::handle::{WavecastUpdater, handle};
use crate::json::{CheckJson, InstallJson, LaunchJson, to_text};
use crate::last_error::guard;
use crate::progress::{CallbackReporter, WavecastProgressFn};
use crate::status::{FfiError, WavecastStatus};
use crate::strings::StringOut;

/// Checks the channel for an update and stores the decision as JSON in `*json_out`
/// (free it with `wavecast_string_free`). The handle keeps the report for the next
/// `wavecast_install` or `wavecast_stage`, so they carry out exactly the decision
/// the application saw.
///
/// The document: `{"decision": "update" | "up_to_date" | "deferred",
/// "current": "1.0.0" | null, "target": "2.0.0" | null, "newest": ... | null,
/// "mandatory": bool, "downgrade": bool, "withdrawn": "yanked" | "capped" | null,
/// "eligible_at": "2026-01-01T00:00:00Z" | null, "channel": "stable",
/// "serial": 7, "notes": "..." | null}`. Later versions may add fields.
///
/// # Safety
///
/// `updater` is NULL or a live handle; `json_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wavecast_check(
    updater: *const WavecastUpdater,
    json_out: *mut *mut c_char,
) -> WavecastStatus {
    guard(|| {
        // SAFETY: the caller promises a live handle and a writable `json_out` (or NULL).
        let (handle, out) = unsafe { (handle(updater)?, StringOut::new(json_out, "json_out")?) };
        let report = handle.updater.check(Timestamp::now())?;
        out.set(to_text(&CheckJson::from(&report)));
        *lock(&handle.last_check) = Some(report);
        Ok(WavecastStatus::Ok)
    })
}

/// Installs what the last `wavecast_check` on this handle decided, or, without one,
/// what a check run now decides; either way the report is used up, so the next
/// install checks again. Stores the result as JSON in `*json_out`:
/// `{"outcome": "installed" | "already_current" | "reused", "version": "2.0.0",
/// "dir": "2.0.0-<id>", "previous": "1.0.0" | null, "planned_bytes": n,
/// "downloaded_bytes": n, "fallbacks": n, "health_check": "<command>" | null}`.
///
/// `progress` (may be NULL) is called with `user_data` on this thread as the
/// install goes. `WAVECAST_STATUS_NOTHING` when the decision is not an update;
/// `WAVECAST_STATUS_CANCELLED` after `wavecast_cancel`. After the switch the new
/// release is on trial until `wavecast_confirm`.
///
/// # Safety
///
/// `updater` is NULL or a live handle; `json_out` is NULL or writable;
/// `progress`, when not NULL, may be called with `user_data` until this returns.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wavecast_install(
    updater: *const WavecastUpdater,
    progress: WavecastProgressFn,
    user_data: *mut c_void,
    json_out: *mut *mut c_char,
) -> WavecastStatus {
    // SAFETY: passed on as the caller promised them.
    unsafe { carry_out(updater, progress, user_data, json_out, Updater::install) }
}

/// Stages the update as `wavecast_install` would install it (the same report, the
/// same progress and cancel), but leaves `current` alone: the running application
/// keeps its files until `wavecast_apply`, or the next `wavecast_launched`,
/// switches to the staged release. `*json_out` gets `wavecast_install`'s document,
/// naming the staged tree. `WAVECAST_STATUS_NOTHING` when there is no update.
///
/// # Safety
///
/// As for `wavecast_install`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wavecast_stage(
    updater: *const WavecastUpdater,
    progress: WavecastProgressFn,
    user_data: *mut c_void,
    json_out: *mut *mut c_char,
) -> WavecastStatus {
    // SAFETY: passed on as the caller promised them.
    unsafe { carry_out(updater, progress, user_data, json_out, Updater::stage) }
}

/// Switches to the staged release (no network needed): it is verified on disk,
/// made current, put on trial and health-checked, as an install is. `*json_out`
/// gets `wavecast_install`'s document. `WAVECAST_STATUS_NOTHING` (and NULL) when
/// nothing is staged, or the staged release is current already.
///
/// # Safety
///
/// `updater` is NULL or a live handle; `json_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wavecast_apply(
    updater: *const WavecastUpdater,
    json_out: *mut *mut c_char,
) -> WavecastStatus {
    guard(|| {
        // SAFETY: the caller promises a live handle and a writable `json_out` (or NULL).
        let (handle, out) = unsafe { (handle(updater)?, StringOut::new(json_out, "json_out")?) };
        match handle.updater.apply(Timestamp::now(), &NoReporter)? {
            Some(applied) => {
                out.set(to_text(&InstallJson::from(&applied)));
                Ok(WavecastStatus::Ok)
            }
            None => Ok(WavecastStatus::Nothing),
        }
    })
}

/// Marks the current release healthy: its trial ends, and launches no longer count
/// towards a rollback. Confirming a confirmed release changes nothing. Call it once
/// the application works.
///
/// # Safety
///
/// `updater` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wavecast_confirm(updater: *const WavecastUpdater) -> WavecastStatus {
    guard(|| {
        // SAFETY: the caller promises a live handle (or NULL).
        unsafe { handle(updater)? }.updater.confirm()?;
        Ok(WavecastStatus::Ok)
    })
}

/// Records a start of the application, as its launcher calls it before starting
/// `current`: a staged release is applied first, and an unconfirmed release that
/// has had too many launches is rolled back. `*json_out` gets
/// `{"release": {"version": "2.0.0", "dir": "..."}, "outcome": "confirmed" |
/// "counted" | "no_fallback" | "rolled_back", "launches": n | null,
/// "limit": n | null, "rolled_back_to": {"version", "dir"} | null,
/// "applied": <wavecast_install's document> | null}`, where `release` is the
/// release current when the launch was counted.
///
/// # Safety
///
/// `updater` is NULL or a live handle; `json_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wavecast_launched(
    updater: *const WavecastUpdater,
    json_out: *mut *mut c_char,
) -> WavecastStatus {
    guard(|| {
        // SAFETY: the caller promises a live handle and a writable `json_out` (or NULL).
        let (handle, out) = unsafe { (handle(updater)?, StringOut::new(json_out, "json_out")?) };
        let launch = handle.updater.launched(Timestamp::now())?;
        out.set(to_text(&LaunchJson::from(&launch)));
        Ok(WavecastStatus::Ok)
    })
}

/// `wavecast_install` and `wavecast_stage`: `run` (`Updater::install` or
/// `Updater::stage`) carries out the report `update_to_install` gives, telling
/// `progress`, and its report goes to `*json_out`.
///
/// # Safety
///
/// As for `wavecast_install`.
unsafe fn carry_out(
    updater: *const WavecastUpdater,
    progress: WavecastProgressFn,
    user_data: *mut c_void,
    json_out: *mut *mut c_char,
    run: fn(
        &Updater,
        &CheckReport,
        Timestamp,
        &dyn Reporter,
    ) -> wavecast_client::Result<InstallReport>,
) -> WavecastStatus {
    guard(|| {
        // SAFETY: the caller promises a live handle and a writable `json_out` (or NULL).
        let (handle, out) = unsafe { (handle(updater)?, StringOut::new(json_out, "json_out")?) };
        let Some(report) = update_to_install(handle)? else {
            return Ok(WavecastStatus::Nothing);
        };
        let reporter = CallbackReporter::new(progress, user_data);
        let done = run(&handle.updater, &report, Timestamp::now(), &reporter)?;
        out.set(to_text(&InstallJson::from(&done)));
        Ok(WavecastStatus::Ok)
    })
}

/// The report an install or stage carries out: the last check's, used up, or a new
/// check's; `None` when it decides no update.
fn update_to_install(handle: &WavecastUpdater) -> Result<Option<CheckReport>, FfiError> {
    let last = lock(&handle.last_check).take();
    let report = match last {
        Some(report) => report,
        None => handle.updater.check(Timestamp::now())?,
    };
    Ok((report.outcome() == Outcome::Update).then_some(report))
}

/// Locks the last check. A panic while it was held (caught at the boundary) left
/// at most an old report in it, which is still a valid one.
fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
