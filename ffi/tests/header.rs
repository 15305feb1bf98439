//! The committed C header is the one cbindgen generates from the sources now: a
//! changed signature or doc comment without a regenerated header fails here.
//! cbindgen runs as a library in this test, not in a build script, so building the
//! library (for the tests, for Windows, for a release) never compiles it; only this
//! test does.

use std::path::Path;

/// Set to write the header instead of comparing.
const WRITE: &str = "WAVECAST_WRITE_HEADER";

#[test]
fn the_committed_header_is_what_cbindgen_generates() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config =
        cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("read cbindgen.toml");
    let bindings = cbindgen::Builder::new()
        .with_crate(crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen parses the crate");
    let mut generated = Vec::new();
    bindings.write(&mut generated);
    let header = crate_dir.join("include/wavecast.h");
    if std::env::var_os(WRITE).is_some() {
        std::fs::write(&header, &generated).expect("write the header");
        return;
    }
    let committed = std::fs::read(&header).unwrap_or_default();
    assert!(
        committed == generated,
        "ffi/include/wavecast.h is not what cbindgen generates from ffi/src: regenerate it with `{WRITE}=1 cargo test -p wavecast-ffi --test header` and commit it"
    );
}
