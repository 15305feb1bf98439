//! Everything the CLI writes: data on stdout, messages and progress on stderr, and
//! the one renderer of errors, which also picks the exit code (2 for a
//! [`UsageError`] or a configuration mistake, else 1).
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use wavecast_publisher::package::PackReporter;
use wavecast_publisher::verify;

/// What every command's help ends with.
pub(crate) const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  operational failure (I/O, signing, site storage)
  2  usage or configuration error (bad arguments, existing key or version, wrong password)

Environment:
  WAVECAST_KEY_PASSWORD  password of the secret key (keygen encrypts with it)
  WAVECAST_NOW           RFC 3339 time to use instead of the clock (for tests)
  WAVECAST_NO_PROGRESS   hide progress (bars on a terminal, lines without one)
  WAVECAST_RESPECT_UMASK 1 acts as --respect-umask on every command that writes a site";

/// A mistake in how the command was called: exit code 2.
#[derive(Debug)]
pub(crate) struct UsageError(pub(crate) String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Prints one JSON document on stdout. A closed pipe is not an error.
pub(crate) fn json(value: &serde_json::Value) {
    JSON_WRITTEN.store(true, Ordering::Relaxed);
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{value:#}");
}

/// Set once a command wrote its JSON document, so that a failure after it writes no
/// second one.
static JSON_WRITTEN: AtomicBool = AtomicBool::new(false);

/// A progress line on stderr.
pub(crate) fn status(message: &str) {
    eprintln!("{message}");
}

/// A warning on stderr.
pub(crate) fn warn(message: &str) {
    eprintln!("warning: {message}");
}

/// Prints `error: …`, one `caused by: …` per underlying cause and any hint, and
/// picks the exit code: 2 for usage and configuration mistakes, 1 otherwise. Under
/// `--json` the same goes to stdout as a JSON object too, unless the command wrote
/// its document already.
pub(crate) fn report_error(error: &anyhow::Error) -> ExitCode {
    let mut causes = error.chain();
    if let Some(first) = causes.next() {
        eprintln!("error: {first}");
    }
    for cause in causes {
        eprintln!("  caused by: {cause}");
    }
    use wavecast_publisher::Error as E;
    let usage = error.chain().any(|cause| {
        cause.is::<UsageError>()
            || matches!(
                cause.downcast_ref::<E>(),
                Some(
                    E::KeyExists { .. }
                        | E::PasswordRequired { .. }
                        | E::WrongPassword { .. }
                        | E::NotASecretKey { .. }
                        | E::LoadKey { .. }
                        | E::ModuleLayout(_)
                        | E::EmptyRelease { .. }
                        | E::VersionExists { .. }
                        | E::UnsupportedEntry { .. }
                        | E::CaseCollision { .. }
                        | E::ForeignManifest { .. }
                        | E::UnsupportedManifestFormat { .. }
                        | E::PatchDepthTooLarge { .. }
                        | E::FirstRootNeedsOneKey
                        | E::NoRoots
                        | E::NotEnoughReleaseKeys { .. }
                        | E::NotEnoughRootKeys { .. }
                        | E::InvalidKeySet { .. }
                        | E::UnknownChannel { .. }
                        | E::UnknownVersion { .. }
                        | E::RetireEverything { .. }
                        | E::NoChannels { .. }
                        | E::AlreadyPaused { .. }
                        | E::NotPaused { .. }
                        | E::YankUnchanged { .. }
                        | E::InvalidCap { .. }
                        | E::UpdaterForAny
                        | E::UpdaterExists { .. }
                        | E::NotAnUpdater { .. }
                        | E::UpdaterVersionMismatch { .. }
                        | E::FloorAboveUpdater { .. }
                        | E::FloorTooLow { .. }
                        | E::PackageFormatAboveUpdater { .. }
                        | E::CompressionLevel { .. }
                        | E::NothingToChange(_)
                        | E::InvalidManifest { .. }
                        | E::ManifestTooLarge { .. }
                        | E::PublicKey { .. }
                        | E::UnsupportedLocation { .. }
                )
            )
    });
    let hint = hint(error);
    if let Some(hint) = &hint {
        eprintln!("hint: {hint}");
    }
    let code = if usage { 2 } else { 1 };
    if std::env::args_os().any(|argument| argument == "--json")
        && !JSON_WRITTEN.load(Ordering::Relaxed)
    {
        json(&serde_json::json!({
            "schema_version": 1,
            "error": {
                "message": error.to_string(),
                "causes": error.chain().skip(1).map(ToString::to_string).collect::<Vec<_>>(),
                "hint": hint,
                "exit_code": code,
            },
        }));
    }
    ExitCode::from(code)
}

/// The hint for `error`, when there is an obvious next step.
fn hint(error: &anyhow::Error) -> Option<String> {
    use wavecast_publisher::Error as E;
    let own = match error.downcast_ref::<E>() {
        Some(E::CaseCollision { second, .. }) => format!(
            "rename or remove `{second}` in the release folder, then publish again"
        ),
        Some(E::WrongPassword { .. }) => "the password is the one `wavecast keygen` was given; check WAVECAST_KEY_PASSWORD or the --password-file, or leave both unset to be asked on a terminal".to_owned(),
        Some(E::ForeignManifest { .. }) => {
            "publish with the key that signed this channel, or to a new site".to_owned()
        }
        Some(E::UnsupportedManifestFormat { channel, .. }) => format!(
            "give another --site (a new folder or bucket), or another --channel than `{channel}`; clients of this wavecast read only sites it writes"
        ),
        Some(E::NotEnoughReleaseKeys { .. }) => "pass the release keys of the newest root with --key (repeat it for a threshold); `wavecast verify` lists them".to_owned(),
        Some(E::UnknownChannel { channel }) => {
            format!("check --site and --channel, or publish a release to `{channel}` first")
        }
        Some(E::RetireEverything { .. }) => "publish the release that replaces them first, or keep at least one (`--keep 1`); `wavecast yank` withdraws a release without removing it".to_owned(),
        Some(E::LiveSetUncertain { .. }) => "`wavecast verify SITE --pubkey KEY` lists every problem; fix them (publish again, restore the missing files) and run gc again".to_owned(),
        Some(E::NoChannels { .. }) => "give the site's root folder (the one holding `channels/` and `blobs/`), or the bucket and prefix `wavecast push` wrote to".to_owned(),
        Some(E::SiteChanged { .. }) => {
            "something published to the site meanwhile; run gc again once it is done".to_owned()
        }
        Some(E::NotPaused { .. }) => {
            "`wavecast pause` stops a rollout; `resume` continues it".to_owned()
        }
        Some(E::NotAnUpdater { .. }) => "give the path of a built wavecast-update; `cargo build --release --bin wavecast-update` writes `target/release/wavecast-update`".to_owned(),
        Some(E::UpdaterVersionMismatch {
            reported, given, ..
        }) => format!(
            "pass --version {}, or build the client reporting {given}: `WAVECAST_CLIENT_VERSION={given} cargo build --release --bin wavecast-update`",
            reported.version
        ),
        Some(E::PackageFormatAboveUpdater { floor, .. }) => format!(
            "offer a build >= {floor} first (`wavecast publish-updater`), so older clients update themselves before they meet tar.zst; or publish this release as tar.gz, which every client reads: --package-format gz"
        ),
        _ => return error.chain().find_map(site_hint),
    };
    Some(own)
}

/// The hint for a storage error among `error`'s causes.
fn site_hint(cause: &(dyn std::error::Error + 'static)) -> Option<String> {
    let site_error =
        cause
            .downcast_ref::<wavecast_site::Error>()
            .or_else(|| match cause.downcast_ref::<wavecast_publisher::Error>() {
                Some(wavecast_publisher::Error::Site(inner)) => Some(inner),
                _ => None,
            })?;
    Some(match site_error {
        wavecast_site::Error::S3Denied(_) => "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or the AWS profile), --region, and that the key may write to the bucket",
        wavecast_site::Error::S3NoSuchBucket(_) => "create the bucket, or check its name in s3://BUCKET/PREFIX, --endpoint and --region",
        wavecast_site::Error::Request { .. } => "check --endpoint and the network; rerun push to resume",
        _ => return None,
    }
    .to_owned())
}

/// The progress of a long step on stderr: a byte-count bar on a terminal; without
/// one, a line when each phase starts, so a log shows what happens; nothing with
/// `--quiet`/`--json`, or when `WAVECAST_NO_PROGRESS` is set.
pub(crate) struct Progress {
    bar: ProgressBar,
    /// No terminal: lines instead of the bar.
    lines: bool,
    /// Bytes of patch work queued, and done, once patches are built.
    patch_queued: AtomicU64,
    patch_done: AtomicU64,
    patching: AtomicBool,
}

impl Progress {
    /// Progress through `total` bytes of the step `label` (`packaging`, `pushing`…).
    pub(crate) fn bytes(total: u64, label: &'static str, hidden: bool) -> Self {
        let shown = !hidden && std::env::var_os("WAVECAST_NO_PROGRESS").is_none();
        let terminal = std::io::stderr().is_terminal();
        let bar = ProgressBar::with_draw_target(
            Some(total),
            if shown && terminal {
                ProgressDrawTarget::stderr()
            } else {
                ProgressDrawTarget::hidden()
            },
        );
        bar.set_style(
            ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
            )
            .expect("the template is valid")
            .progress_chars("=> "),
        );
        bar.set_message(label);
        let lines = shown && !terminal;
        if lines {
            status(&format!("{label} {}", bytes(total)));
        }
        Self {
            bar,
            lines,
            patch_queued: AtomicU64::new(0),
            patch_done: AtomicU64::new(0),
            patching: AtomicBool::new(false),
        }
    }

    pub(crate) fn advance(&self, bytes: u64) {
        self.bar.inc(bytes);
    }

    /// Whether the bar is drawn (a terminal, not hidden).
    pub(crate) fn is_visible(&self) -> bool {
        !self.bar.is_hidden()
    }

    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// A byte count for people: `1.5 MiB`.
pub(crate) fn bytes(count: u64) -> String {
    indicatif::BinaryBytes(count).to_string()
}

impl PackReporter for Progress {
    fn on_bytes(&self, bytes: u64) {
        self.advance(bytes);
    }

    /// The bar turns to the patches once the first is queued; its length grows as
    /// more are.
    fn on_patch_queued(&self, bytes: u64) {
        let queued = self.patch_queued.fetch_add(bytes, Ordering::Relaxed) + bytes;
        if !self.patching.swap(true, Ordering::Relaxed) {
            if self.lines {
                status("building the delta packs' patches");
            }
            self.bar.set_message("patching");
            self.bar
                .set_position(self.patch_done.load(Ordering::Relaxed));
        }
        self.bar.set_length(queued);
    }

    fn on_patch_done(&self, bytes: u64) {
        let done = self.patch_done.fetch_add(bytes, Ordering::Relaxed) + bytes;
        self.bar.set_position(done);
    }
}

impl verify::Reporter for Progress {
    fn on_blob(&self, bytes: u64) {
        self.advance(bytes);
    }
}
