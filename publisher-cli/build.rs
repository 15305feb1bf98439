//! Exports `WAVECAST_BUILD` for `wavecast --version`: the commit it was built from
//! and the target triple, e.g. `commit 1a2b3c4d5e6f, x86_64-unknown-linux-gnu`.
//!
//! The commit comes from `WAVECAST_COMMIT` when set (a packager building from a
//! tarball), else from git when the sources are a checkout; a build from crates.io
//! has neither and names only the target. The build reruns when the checkout's
//! `HEAD` or current branch moves.

use std::process::Command;

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=WAVECAST_COMMIT");
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".to_owned());
    let commit = std::env::var("WAVECAST_COMMIT").ok().or_else(git_commit);
    let build = match commit {
        Some(commit) => format!("commit {commit}, {target}"),
        None => target,
    };
    println!("cargo::rustc-env=WAVECAST_BUILD={build}");
}

/// The checkout's commit, when the sources are one; also asks cargo to rerun when
/// `HEAD` or the branch it names moves.
fn git_commit() -> Option<String> {
    let git = |args: &[&str]| {
        let output = Command::new("git").args(args).output().ok()?;
        let text = String::from_utf8(output.stdout).ok()?;
        output.status.success().then(|| text.trim().to_owned())
    };
    let commit = git(&["rev-parse", "--short=12", "HEAD"])?;
    for name in ["HEAD", "packed-refs"] {
        if let Some(path) = git(&["rev-parse", "--git-path", name]) {
            println!("cargo::rerun-if-changed={path}");
        }
    }
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"])
        && let Some(path) = git(&["rev-parse", "--git-path", &branch])
    {
        println!("cargo::rerun-if-changed={path}");
    }
    Some(commit)
}
