//! End-to-end tests: the real `wavecast` and `wavecast-update` binaries against real
//! HTTP servers (nginx for the happy paths, an in-process fault server for attacks).
//!
//! Build the binaries first: `cargo build --workspace --bins --lib` (the C ABI
//! test links the `wavecast-ffi` library).

mod attacks;
mod ceremony;
mod choosing;
mod client_rollout;
mod core_loop;
mod crash;
mod delta;
mod examples;
mod ffi;
mod first_minutes;
mod gc;
mod health;
mod hosts;
mod limits;
mod links;
mod mirror_verify;
mod package_formats;
mod permissions;
mod polling;
mod publishing;
mod push;
mod rollout_ops;
mod secrets;
mod self_update;
mod serving;
mod slots;
mod stats;
mod status_page;
mod trust;
mod windows;
