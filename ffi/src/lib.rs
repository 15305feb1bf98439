/*!
A C ABI for the wavecast client library (`wavecast-client`): open an install root,
check, install with a progress callback and a cancel from another thread, stage and
apply, confirm and count launches. Built as a shared library, a static library, and
an rlib (which the crate's own tests link); the C header `include/wavecast.h` is generated from this
crate by cbindgen (`cbindgen.toml`), and `tests/header.rs` fails when the committed
header is not what cbindgen makes of the sources now.

The rules a C caller must follow are in the header's introduction (from
`cbindgen.toml`): every function returns a [`WavecastStatus`] and never unwinds; a
failure leaves its text for [`wavecast_last_error_message`] on the calling thread;
strings are UTF-8 and NUL-terminated, and those the library returns are freed with
[`wavecast_string_free`]; one handle may be used from several threads, and
[`wavecast_cancel`] exists for exactly that.

The modules: `status` (the statuses and the error behind them), `last_error` (the
guard around every body, and the message it keeps), `strings` (C strings both
ways), `handle` (the handle's life and cancel), `operations` (check, install,
stage, apply, confirm, launched), `progress` (the callback behind a `Reporter`) and
`json` (the documents returned).
*/
#![allow(
    unsafe_code,
    reason = "a C ABI takes raw pointers from its callers: every unsafe block reads or writes what the caller promised, as its SAFETY comment says"
)]

mod handle;
mod json;
mod last_error;
mod operations;
mod progress;
mod status;
mod strings;

pub use handle::{WavecastUpdater, wavecast_cancel, wavecast_free, wavecast_init, wavecast_open};
pub use last_error::wavecast_last_error_message;
pub use operations::{
    wavecast_apply, wavecast_check, wavecast_confirm, wavecast_install, wavecast_launched,
    wavecast_stage,
};
pub use progress::{WavecastPhase, WavecastProgressFn};
pub use status::WavecastStatus;
pub use strings::wavecast_string_free;
