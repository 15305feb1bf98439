//! Helpers for end-to-end tests of the client: several install roots in one sandbox,
//! runs on a real pseudo-terminal, the publisher's release commands, and the buckets a
//! client computes for itself.

use std::ffi::OsStr;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use wavecast_schema::{InstallId, bucket};

use crate::{Run, Sandbox, binary};

fn run_of(output: Output) -> Run {
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// `wavecast-update` with the sandbox's environment, stdin closed.
fn client_command(sandbox: &Sandbox) -> Command {
    let mut command = Command::new(binary("wavecast-update"));
    command
        .env("WAVECAST_NO_PROGRESS", "1")
        .env_remove("WAVECAST_NOW")
        .envs(&sandbox.env)
        .stdin(Stdio::null())
        .current_dir(sandbox.dir.path());
    command
}

/// Runs `wavecast-update` with `args`, adding `--root root`: a second (third…) client
/// in the same sandbox, next to [`Sandbox::client`]'s.
pub fn client_at<A>(sandbox: &Sandbox, root: &Path, args: A) -> Run
where
    A: IntoIterator,
    A::Item: AsRef<OsStr>,
{
    let output = client_command(sandbox)
        .args(args)
        .arg("--root")
        .arg(root)
        .output()
        .expect("run wavecast-update");
    run_of(output)
}

/// `wavecast-update init` of `root` against `url` with the sandbox's key and `extra`
/// arguments (`--attr`, `--channel`…).
#[track_caller]
pub fn init_at(sandbox: &Sandbox, root: &Path, url: &str, extra: &[&str]) {
    let pubkey = sandbox.pubkey();
    let mut args = vec!["init", "--url", url, "--pubkey", pubkey.to_str().unwrap()];
    args.extend_from_slice(extra);
    client_at(sandbox, root, args).success();
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
    run_of(child.wait_with_output().expect("wait for script"))
}

/// Runs `wavecast COMMAND VERSION --site S --key K` plus `extra` (`yank`, `pause`,
/// `resume`, `rollout`…).
pub fn release_command(sandbox: &Sandbox, command: &str, version: &str, extra: &[&str]) -> Run {
    let (site, key) = (sandbox.site(), sandbox.key());
    sandbox.wavecast(
        [command, version],
        [
            OsStr::new("--site"),
            site.as_os_str(),
            OsStr::new("--key"),
            key.as_os_str(),
        ]
        .into_iter()
        .chain(extra.iter().map(OsStr::new)),
    )
}

/// The install id of the client at `root`, from `status --json`.
#[track_caller]
pub fn install_id_at(sandbox: &Sandbox, root: &Path) -> InstallId {
    let status = client_at(sandbox, root, ["status", "--json"])
        .success()
        .json();
    status["install_id"]
        .as_str()
        .expect("status reports install_id")
        .parse()
        .unwrap()
}

/// The bucket of the client at `root` for `version` of the `stable` channel.
#[track_caller]
pub fn bucket_at(sandbox: &Sandbox, root: &Path, version: &str) -> u16 {
    let manifest = sandbox.manifest("stable");
    let release = manifest
        .release(&version.parse().unwrap())
        .expect("the release is published");
    bucket(&install_id_at(sandbox, root), &release.rollout.salt)
}
