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
  3  stats: a --fail-if condition holds (the figures are printed first)

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

/// `--fail-if` held: exit code 3, after the figures were printed.
#[derive(Debug)]
pub(crate) struct ThresholdCrossed(pub(crate) usize);

impl std::fmt::Display for ThresholdCrossed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            1 => f.write_str("a --fail-if condition holds"),
            count => write!(f, "{count} --fail-if conditions hold"),
        }
    }
}

impl std::error::Error for ThresholdCrossed {}

/// Prints one JSON document on stdout. A closed pipe is not an error.
pub(crate) fn json(value: &serde_json::Value) {
    JSON_WRITTEN.store(true, Ordering::Relaxed);
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{value:#}");
}

/// Set once a command wrote its JSON document, so that a failure after it writes no
/// second one.
static JSON_WRITTEN: AtomicBool = AtomicBool::new(false);

/// A command's report (a table, CSV rows) on stdout as it is. A closed pipe is not
/// an error: a reader such as `head` may stop early.
pub(crate) fn text(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => Err(error.into()),
        _ => Ok(()),
    }
}

/// A command's result, the sentence that says what it did or found, on stdout:
/// unless `json`, as the command then prints its JSON document instead. Results
/// stay under `--quiet`, which silences stderr only. A closed pipe is not an error.
pub(crate) fn result(text: &str, json: bool) {
    if !json {
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{text}");
    }
}

/// A progress line on stderr, unless `--quiet`.
pub(crate) fn status(message: &str) {
    if !quiet() {
        eprintln!("{message}");
    }
}

/// A warning on stderr, unless `--quiet`.
pub(crate) fn warn(message: &str) {
    if !quiet() {
        eprintln!("warning: {message}");
    }
}

/// One of the problems that make a command fail (`verify`'s), on stderr even under
/// `--quiet`: they are its errors.
pub(crate) fn problem(message: &str) {
    eprintln!("problem: {message}");
}

/// A `stats --fail-if` condition that the logs crossed, on stderr even under
/// `--quiet`: the command fails because of it.
pub(crate) fn alert(message: &str) {
    eprintln!("alert: {message}");
}

/// Set by `--quiet`: only errors reach stderr; results still go to stdout.
static QUIET: AtomicBool = AtomicBool::new(false);

/// `--quiet` was given.
pub(crate) fn set_quiet() {
    QUIET.store(true, Ordering::Relaxed);
}

/// Whether `--quiet` was given.
pub(crate) fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
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
                cause.downcast_ref::<wavecast_stats::Error>(),
                Some(
                    wavecast_stats::Error::ParseLine { .. }
                        | wavecast_stats::Error::InvalidCondition { .. }
                )
            )
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
                        | E::InvalidDraft { .. }
                        | E::DraftExists { .. }
                        | E::DraftOutdated { .. }
                        | E::DraftForeign { .. }
                        | E::DraftExpired { .. }
                        | E::DraftIncomplete { .. }
                        | E::SignLaterNeedsRoots
                        | E::PendingManifest { .. }
                        | E::PendingOutdated { .. }
                        | E::PendingStale { .. }
                        | E::PendingExpired { .. }
                        | E::NotAReleaseKey { .. }
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
    let code = if error.is::<ThresholdCrossed>() {
        3
    } else if usage {
        2
    } else {
        1
    };
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
        Some(E::RootExpired { version, .. }) => format!(
            "the root key holders publish root v{} first (`wavecast key draft-root`, `sign-root` on each holder's machine, `publish-root`; or `wavecast key rotate` with every root key at hand), then sign again",
            version + 1
        ),
        Some(E::InvalidDraft { source, .. })
            if matches!(**source, wavecast_schema::DraftError::NotARootKey { .. }) =>
        {
            "sign with a root key of the current or the new root (`wavecast key sign-root` lists them); the draft is unchanged".to_owned()
        }
        Some(E::InvalidDraft { .. }) => "give the file `wavecast key draft-root --out` wrote, as the holders signed it (a published roots/<n>.json is not a draft)".to_owned(),
        Some(E::DraftExists { path }) => format!(
            "sign the existing draft with `wavecast key sign-root {} --key KEY`, or pass --force to start over without its signatures",
            path.display()
        ),
        Some(E::DraftOutdated { newest, .. }) => format!(
            "the site moved on since the draft was made: draft root v{} again with `wavecast key draft-root` and have it signed again",
            newest + 1
        ),
        Some(E::DraftIncomplete { .. }) => "the missing holders each sign with `wavecast key sign-root DRAFT --key KEY` on their own machine; the lines above list who has signed".to_owned(),
        Some(E::SignLaterNeedsRoots) => "publish the first release with its --key (that writes roots/1.json); later changes can be signed later".to_owned(),
        Some(E::PendingManifest { channel }) => format!(
            "sign it first with `wavecast sign --site SITE --key KEY` where the release keys are, or drop the change by deleting channels/{channel}.json.unsigned"
        ),
        Some(E::PendingOutdated { channel, .. } | E::PendingStale { channel, .. } | E::PendingExpired { channel, .. }) => format!(
            "delete channels/{channel}.json.unsigned and make the change again (with --sign-later), then sign that"
        ),
        Some(E::PendingBlob { .. }) => "the blobs of the release must be on the site before its manifest goes live: finish the upload (or `wavecast push` them), then run `wavecast sign --site SITE` again; the signatures are kept".to_owned(),
        Some(E::NotAReleaseKey { .. }) => "give the release keys of the site's newest root (`wavecast verify` names the root); nothing was signed".to_owned(),
        Some(E::DraftForeign { .. }) => "check --site: the draft was made from another site's roots".to_owned(),
        Some(E::DraftExpired { .. }) => "draft again with a longer --expires-in (default 365d), or check this machine's clock".to_owned(),
        Some(E::NotEnoughRootKeys { .. }) => "a threshold of the current root's root keys and of the new root's must sign; with `key rotate` pass more --sign keys, with a draft have more holders run `wavecast key sign-root`".to_owned(),
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
        _ => {
            if let Some(wavecast_stats::Error::ParseLine { .. }) =
                error.downcast_ref::<wavecast_stats::Error>()
            {
                return Some("check the log's format: `--format combined` reads nginx's and Apache's `combined` log_format, `s3` S3 server access logs, `cloudfront` CloudFront standard logs".to_owned());
            }
            return error.chain().find_map(site_hint);
        }
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
    pub(crate) fn bytes(total: u64, label: &'static str, json: bool) -> Self {
        let shown = !json && !quiet() && std::env::var_os("WAVECAST_NO_PROGRESS").is_none();
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
