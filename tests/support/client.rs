//! Helpers for end-to-end tests of the client: install roots with extra `init`
//! arguments, runs on a real pseudo-terminal, and the buckets a client computes for
//! itself.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use wavecast_schema::bucket;

use crate::{Run, Sandbox, binary};

/// `wavecast-update init` of `root` against `url` with the sandbox's key and `extra`
/// arguments (`--attr`, `--channel`…).
#[track_caller]
pub fn init_at(sandbox: &Sandbox, root: &Path, url: &str, extra: &[&str]) {
    let pubkey = sandbox.pubkey();
    let mut args = vec!["init", "--url", url, "--pubkey", pubkey.to_str().unwrap()];
    args.extend_from_slice(extra);
    sandbox.client_at(root, args).success();
}

/// `setpriv` arguments that run a command as `nobody` with the one group `nogroup`:
/// an application's own unprivileged user, for the permission tests (which run as
/// root).
pub const APP_USER: [&str; 3] = ["--reuid=nobody", "--regid=nogroup", "--clear-groups"];

/// The id of `nogroup`, [`APP_USER`]'s group.
pub const APP_GROUP_ID: u32 = 65534;

/// Runs `wavecast-update args --root <sandbox root>` as another user, through
/// util-linux `setpriv` with `identity` (such as [`APP_USER`]); the caller must be
/// root.
pub fn client_as(sandbox: &Sandbox, identity: &[&str], args: &[&str]) -> Run {
    let mut command = Command::new("setpriv");
    sandbox.prepare(&mut command);
    let output = command
        .args(identity)
        .arg("--")
        .arg(binary("wavecast-update"))
        .args(args)
        .arg("--root")
        .arg(sandbox.root())
        .output()
        .expect("run setpriv (util-linux)");
    Run::from_output(output)
}

/// Quotes `text` for `sh`.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Runs `wavecast-update args --root <sandbox root>` on a pseudo-terminal (through
/// util-linux `script`), typing `input`. The program's stdout and stderr both arrive
/// in [`Run::stdout`], with `\r\n` line ends and the typed input echoed.
pub fn client_on_terminal(sandbox: &Sandbox, args: &[&str], input: &str) -> Run {
    let root = sandbox.root();
    let program = binary("wavecast-update");
    let command_line = std::iter::once(program.to_str().unwrap())
        .chain(args.iter().copied())
        .chain(["--root", root.to_str().unwrap()])
        .map(shell_quote)
        .collect::<Vec<_>>()
        .join(" ");
    let mut child = Command::new("script")
        .args(["-qec", &command_line, "/dev/null"])
        .env("WAVECAST_NO_PROGRESS", "1")
        .env_remove("WAVECAST_NOW")
        .envs(&sandbox.env)
        .current_dir(sandbox.dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run script (util-linux)");
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(input.as_bytes())
        .expect("type the input");
    Run::from_output(child.wait_with_output().expect("wait for script"))
}

/// The bucket of the client at `root` for `version` of the `stable` channel.
#[track_caller]
pub fn bucket_at(sandbox: &Sandbox, root: &Path, version: &str) -> u16 {
    let manifest = sandbox.manifest("stable");
    let release = manifest
        .release(&version.parse().unwrap())
        .expect("the release is published");
    bucket(&sandbox.install_id_at(root), &release.rollout.salt)
}
