//! Helpers for the self-update tests: a newer real client to publish as the updater,
//! and copies of the built client in a sandbox, which a self-update may replace
//! (so no test ever overwrites the binaries under `target/`).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::{Run, Sandbox, binary};

/// The version the newer client reports.
pub const NEXT_CLIENT_VERSION: &str = "0.99.0";

/// The newer `wavecast-update`: `WAVECAST_NEXT_CLIENT` when set, else the build in
/// `<target>/next/<profile>/` that `scripts/test.sh` makes with
/// `WAVECAST_CLIENT_VERSION=0.99.0`.
pub fn next_client() -> PathBuf {
    if let Some(path) = std::env::var_os("WAVECAST_NEXT_CLIENT") {
        return PathBuf::from(path);
    }
    let built = binary("wavecast-update");
    let profile_dir = built.parent().expect("a binary lives in a directory");
    let profile = profile_dir
        .file_name()
        .expect("the profile directory has a name");
    let target = profile_dir
        .parent()
        .expect("the profile lives in a target directory");
    let next = target.join("next").join(profile).join("wavecast-update");
    assert!(
        next.is_file(),
        "the newer client `{}` is not built; run `WAVECAST_CLIENT_VERSION={NEXT_CLIENT_VERSION} cargo build -p wavecast-client-cli --bin wavecast-update --target-dir {}` (scripts/test.sh does)",
        next.display(),
        target.join("next").display()
    );
    next
}

/// Copies the built `wavecast-update` to `bin/wavecast-update` in the sandbox and
/// returns that path: the "installed" client a self-update replaces.
pub fn installed_client(sandbox: &Sandbox) -> PathBuf {
    let bin = sandbox.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let path = bin.join("wavecast-update");
    std::fs::copy(binary("wavecast-update"), &path).unwrap();
    path
}

/// Runs `executable` with `args`, then `--root <sandbox root>`, in the sandbox's
/// environment (as [`Sandbox::client`] runs the built client).
pub fn run_at(sandbox: &Sandbox, executable: &Path, args: &[&str]) -> Run {
    let mut command = Command::new(executable);
    command
        .args(args)
        .arg("--root")
        .arg(sandbox.root())
        .env("WAVECAST_NO_PROGRESS", "1")
        .env_remove("WAVECAST_NOW")
        .env_remove("WAVECAST_SELF_UPDATED_FROM")
        .envs(&sandbox.env)
        .stdin(Stdio::null())
        .current_dir(sandbox.dir.path());
    run(&mut command)
}

/// What `executable --version` prints, trimmed.
pub fn version_of(executable: &Path) -> String {
    let run = run(Command::new(executable)
        .arg("--version")
        .stdin(Stdio::null()))
    .success();
    run.stdout.trim().to_owned()
}

/// The platform the built client takes updater builds for (its default platform).
pub fn client_platform(sandbox: &Sandbox) -> String {
    let config = sandbox.client(["config", "--json"]).success().json();
    config["platform"].as_str().expect("a platform").to_owned()
}

/// `wavecast publish-updater EXECUTABLE --version V --platform P` on the sandbox's
/// site with `extra` arguments; on success the manifest is checked against the
/// JSON Schema.
pub fn publish_updater(
    sandbox: &Sandbox,
    executable: &Path,
    version: &str,
    platform: &str,
    extra: &[&str],
) -> Run {
    let run = sandbox.wavecast(
        [
            OsStr::new("publish-updater"),
            executable.as_os_str(),
            OsStr::new("--version"),
            OsStr::new(version),
            OsStr::new("--platform"),
            OsStr::new(platform),
            OsStr::new("--site"),
            sandbox.site().as_os_str(),
            OsStr::new("--key"),
            sandbox.key().as_os_str(),
        ],
        extra,
    );
    if run.code == 0 {
        crate::assert_manifest_matches_schema(&sandbox.site(), "stable");
    }
    run
}

/// Runs `command` to the end, starting it again for up to a second while the
/// executable is busy (`ETXTBSY`: another test's fork may briefly hold a descriptor
/// of a file just copied).
fn run(command: &mut Command) -> Run {
    for _ in 0..20 {
        match command.output() {
            Err(error) if error.kind() == std::io::ErrorKind::ExecutableFileBusy => {
                std::thread::sleep(Duration::from_millis(50));
            }
            output => return Run::from_output(output.expect("run the client")),
        }
    }
    panic!("`{command:?}` stayed busy for a second");
}
