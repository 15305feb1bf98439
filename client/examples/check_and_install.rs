//! The smallest updater an application embeds: initializes the install root on
//! first use, checks the channel, and installs the release the check decides on,
//! printing a line per module as it goes.
//!
//! ```text
//! cargo run -p wavecast-client --example check_and_install -- ROOT URL PUBKEY
//! ```
//!
//! `PUBKEY` is the publisher's minisign public key (its base64 line or a `.pub`
//! file). The tests run it against nginx (`tests/e2e/examples.rs`).

#![expect(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command-line example prints its progress and its result"
)]

use std::process::ExitCode;

use wavecast_client::{
    BaseUrl, InitOptions, ModuleName, ModuleUpdate, Outcome, PinnedTrust, Reporter, StoreError,
    Timestamp, TrustedKey, Updater, format_bytes,
};

/// Prints what each module will cost before it downloads.
struct Lines;

impl Reporter for Lines {
    fn on_module_plan(&self, plan: &ModuleUpdate) {
        eprintln!(
            "{}: {} to download",
            plan.name,
            format_bytes(plan.download_bytes)
        );
    }

    fn on_unpack(&self, module: &ModuleName) {
        eprintln!("{module}: unpacking");
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [root, url, pubkey] = args.as_slice() else {
        eprintln!("usage: check_and_install ROOT URL PUBKEY");
        return ExitCode::from(2);
    };
    match update(root, url, pubkey) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            if let Some(hint) = error.hint() {
                eprintln!("hint: {hint}");
            }
            ExitCode::FAILURE
        }
    }
}

fn update(root: &str, url: &str, pubkey: &str) -> wavecast_client::Result<()> {
    let updater = match Updater::open(root) {
        Err(wavecast_client::Error::Store(StoreError::NotInitialized { .. })) => {
            let trust = PinnedTrust::Pubkey(TrustedKey::from_argument(pubkey)?);
            let options = InitOptions::new(BaseUrl::parse(url)?, trust);
            Updater::init(root, options, Timestamp::now())?;
            Updater::open(root)?
        }
        opened => opened?,
    };
    let report = updater.check(Timestamp::now())?;
    match (report.outcome(), report.target()) {
        (Outcome::Update, Some(target)) => {
            eprintln!("installing {}", target.version);
            let installed = updater.install(&report, Timestamp::now(), &Lines)?;
            println!(
                "installed {} ({} downloaded)",
                installed.tree.version,
                format_bytes(installed.tree.downloaded_bytes)
            );
        }
        (Outcome::Deferred, _) => println!("an update is rolling out; not this machine yet"),
        _ => println!("up to date"),
    }
    Ok(())
}
