//! Exports the target triple the client is compiled for, as `WAVECAST_TARGET`: the
//! default platform `wavecast-update init` records.

fn main() {
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".to_owned());
    println!("cargo::rustc-env=WAVECAST_TARGET={target}");
    println!("cargo::rerun-if-changed=build.rs");
}
