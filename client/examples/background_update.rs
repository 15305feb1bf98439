//! An update that runs in the background while the application goes on: the
//! install runs on a worker thread, its progress comes back over a channel, and the
//! application cancels it if it takes longer than it can wait (when it is closing,
//! say). A cancelled install leaves the installed release as it was.
//!
//! ```text
//! cargo run -p wavecast-client --example background_update -- ROOT SECONDS
//! ```
//!
//! `ROOT` is an initialized install root (`wavecast-update init`, or the
//! `check_and_install` example). The tests run it against nginx
//! (`tests/e2e/examples.rs`).

#![expect(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command-line example prints its progress and its result"
)]

use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

use wavecast_client::{Cancel, Outcome, Phase, Progress, Reporter, Timestamp, Updater};

/// Sends every [`Progress`] to the thread that shows it.
struct Forward(mpsc::Sender<Progress>);

impl Reporter for Forward {
    fn on_progress(&self, progress: Progress) {
        let _ = self.0.send(progress);
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [root, seconds] = args.as_slice() else {
        eprintln!("usage: background_update ROOT SECONDS");
        return ExitCode::from(2);
    };
    let Ok(seconds) = seconds.parse::<u64>() else {
        eprintln!("SECONDS must be a whole number");
        return ExitCode::from(2);
    };
    match update(root, Duration::from_secs(seconds)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn update(root: &str, patience: Duration) -> wavecast_client::Result<()> {
    let cancel = Cancel::new();
    let updater = Updater::open(root)?.with_cancel(cancel.clone());
    let report = updater.check(Timestamp::now())?;
    if report.outcome() != Outcome::Update {
        println!("up to date");
        return Ok(());
    }
    let (sender, progress) = mpsc::channel();
    let worker =
        std::thread::spawn(move || updater.install(&report, Timestamp::now(), &Forward(sender)));
    // Show progress until the install ends (the channel closes) or patience runs out.
    let deadline = std::time::Instant::now() + patience;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match progress.recv_timeout(left) {
            Ok(Progress { phase, done, total }) => {
                let phase = match phase {
                    Phase::Checking => "checking",
                    Phase::Downloading => "downloading",
                    Phase::Assembling => "assembling",
                    _ => "switching",
                };
                eprintln!("{phase}: {done} of {total} bytes");
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                eprintln!("taking too long: cancelling");
                cancel.cancel();
                break;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    match worker.join().expect("the install thread does not panic") {
        Ok(installed) => println!("installed {}", installed.tree.version),
        Err(error) if error.is_cancelled() => println!("cancelled; nothing changed"),
        Err(error) => return Err(error),
    }
    Ok(())
}
