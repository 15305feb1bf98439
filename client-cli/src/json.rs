//! The `--json` documents, and the parts of them, that several subcommands print:
//! the check (`check`, `update`, `poll`), a release marked bad (`check`, `update`,
//! `status`), what the channel offers this client for itself (`check`, `update`,
//! `self-update`), an image's slot activation (`update`, `rollback`), a hook's run
//! (`update`, in an image's activation), the deleted release trees (`update`,
//! `launched`, `rollback`), and the trial's document (`confirm`, `launched`). A
//! document only one subcommand prints is in its file.

use jiff::Timestamp;
use semver::Version;
use serde::Serialize;
use wavecast_client::units::format_duration;
use wavecast_client::{
    BUILD_PLATFORM, BadRelease, CheckReport, ClientUpdate, Exclusion, HealthCheckReport,
    HealthStatus, HeldBack, ImageSource, Mode, PrunedRelease, SlotActivation, SlotName, Withdrawal,
    client_version, offered_to_this_client, unmark_command,
};
use wavecast_schema::Manifest;

/// Version of the `--json` documents; bumped only for incompatible changes.
pub(crate) const JSON_SCHEMA_VERSION: u32 = 1;

/// The `check --json` document.
#[derive(Debug, Serialize)]
pub(crate) struct CheckJson<'a> {
    schema_version: u32,
    /// `update`, `up_to_date` or `deferred`.
    decision: &'static str,
    current: Option<String>,
    target: Option<String>,
    newest: Option<String>,
    /// The release whose rollout test settled the decision (`bucket`, `threshold`,
    /// `rule` and `exclusion` are about it).
    rollout_version: Option<String>,
    bucket: Option<u16>,
    threshold: Option<u16>,
    threshold_percent: Option<f64>,
    /// The name of the rollout rule that applied, if one matched.
    rule: Option<&'a str>,
    /// A mandatory update installs without asking.
    mandatory: bool,
    /// `yanked` or `capped` when the installed release must be left.
    withdrawn: Option<&'static str>,
    /// `paused`, `yanked`, `excluded_by_rule` or `capped` when the release keeps this
    /// client out regardless of time.
    exclusion: Option<&'static str>,
    /// For a deferral, when this client becomes eligible as the manifest stands.
    eligible_at: Option<Timestamp>,
    /// The target is older than the installed release.
    downgrade: bool,
    /// `scheduled`, or `manual` with `--now`.
    mode: &'static str,
    channel: &'a str,
    serial: u64,
    served_by: &'a str,
    notes: Option<&'a str>,
    /// Releases newer than the installed one that this client skips because they
    /// are marked bad here.
    skipped_bad: Vec<BadJson<'a>>,
    /// Every newer release that does not admit this client now, newest first, each
    /// with its own rollout test and why it keeps this client out.
    held_back: Vec<HeldBackJson>,
    /// The line the client stays on, or null.
    pin: Option<String>,
    /// The newest release the pin keeps this client from, or null.
    pinned_out: Option<String>,
    /// This client's version, the floor, and the build of it offered.
    client: ClientJson,
}

/// A release that holds back, in `check` and `update` JSON.
#[derive(Debug, Serialize)]
struct HeldBackJson {
    version: String,
    /// `paused`, `excluded_by_rule`, `capped`, `ramping` or `outside_share`.
    reason: &'static str,
    bucket: u16,
    threshold: u16,
    threshold_percent: f64,
    rule: Option<String>,
    eligible_at: Option<Timestamp>,
    /// The reason in words.
    sentence: String,
}

/// The `held_back` object of `held`.
fn held_back_json(held: &HeldBack) -> HeldBackJson {
    HeldBackJson {
        version: held.version.to_string(),
        reason: held.reason(),
        bucket: held.rollout.bucket,
        threshold: held.rollout.threshold.get(),
        threshold_percent: held.rollout.threshold.percent(),
        rule: held.rule.clone(),
        eligible_at: held.eligible_at,
        sentence: held.to_string(),
    }
}

/// A release marked bad, in `check`, `update` and `status` JSON.
#[derive(Debug, Serialize)]
pub(crate) struct BadJson<'a> {
    version: String,
    dir: &'a str,
    /// `health_check_failed`, `health_check_timed_out`, `unconfirmed` or
    /// `rolled_back`.
    reason: &'static str,
    detail: &'a str,
    marked_at: Timestamp,
    /// The command that clears the mark.
    unmark_command: String,
}

/// The object of a release marked bad.
pub(crate) fn bad_json(bad: &BadRelease) -> BadJson<'_> {
    BadJson {
        version: bad.version.to_string(),
        dir: &bad.dir,
        reason: bad.reason.as_str(),
        detail: &bad.detail,
        marked_at: bad.marked_at,
        unmark_command: unmark_command(&bad.version),
    }
}

/// The `check --json` document of `report`.
pub(crate) fn check_json(report: &CheckReport) -> CheckJson<'_> {
    let rollout = report.rollout();
    CheckJson {
        schema_version: JSON_SCHEMA_VERSION,
        decision: report.outcome().as_str(),
        current: report.current().map(|current| current.version.to_string()),
        target: report.target().map(|target| target.version.to_string()),
        newest: report.newest().map(ToString::to_string),
        rollout_version: report.rollout_version().map(ToString::to_string),
        bucket: rollout.map(|rollout| rollout.bucket),
        threshold: rollout.map(|rollout| rollout.threshold.get()),
        threshold_percent: rollout.map(|rollout| rollout.threshold.percent()),
        rule: report.rule().map(|rule| rule.name.as_str()),
        mandatory: report.mandatory(),
        withdrawn: report.withdrawn().map(Withdrawal::as_str),
        exclusion: report.exclusion().map(Exclusion::as_str),
        eligible_at: report.eligible_at(),
        downgrade: report.is_downgrade(),
        mode: match report.mode() {
            Mode::Scheduled => "scheduled",
            Mode::Manual => "manual",
        },
        channel: report.channel().as_str(),
        serial: report.serial(),
        served_by: report.served_by().as_str(),
        notes: report
            .target()
            .map(|target| target.notes.as_str())
            .filter(|notes| !notes.is_empty()),
        skipped_bad: report.skipped().iter().map(bad_json).collect(),
        held_back: report.held_back().iter().map(held_back_json).collect(),
        pin: report.pin().map(|pin| pin.to_string()),
        pinned_out: report.pinned_out().map(ToString::to_string),
        client: client_json(report.manifest()),
    }
}

/// The `client` object of `check --json` and `update --json`, and the `self-update
/// --json` document's core.
#[derive(Debug, Serialize)]
pub(crate) struct ClientJson {
    /// This client's version.
    version: String,
    /// The manifest's `min_client_version`.
    min_client_version: String,
    /// The platform whose updater build this client takes (the one it was built
    /// for).
    platform: &'static str,
    /// The version of the build offered for that platform, if any.
    updater: Option<String>,
    /// `up_to_date`, `available`, `required` or `unavailable`.
    self_update: &'static str,
}

impl ClientJson {
    /// The object for a client that needs `required` and is offered `offered`.
    pub(crate) fn new(required: &Version, offered: Option<&Version>, status: ClientUpdate) -> Self {
        Self {
            version: client_version().to_string(),
            min_client_version: required.to_string(),
            platform: BUILD_PLATFORM,
            updater: offered.map(ToString::to_string),
            self_update: status.as_str(),
        }
    }
}

/// What `manifest` offers this client for itself.
fn client_json(manifest: &Manifest) -> ClientJson {
    let (status, offered) = offered_to_this_client(manifest);
    ClientJson::new(
        &manifest.min_client_version,
        offered.map(|build| &build.version),
        status,
    )
}

/// An image module's slot activation in `update --json` and `rollback --json`.
#[derive(Debug, Serialize)]
pub(crate) struct ImageJson<'a> {
    module: &'a str,
    version: String,
    /// `a` or `b`: the slot now active.
    slot: SlotName,
    slot_path: &'a std::path::Path,
    /// The slot active before (null when none was).
    previous_slot: Option<SlotName>,
    /// `in_slot`, `patch` or `package`.
    source: &'static str,
    /// Bytes received for the image, its file index included.
    downloaded_bytes: u64,
    /// Whether the active slot changed.
    switched: bool,
    /// What the on-activate hook did (as `health_check`), when one ran.
    hook: Option<HealthCheckJson<'a>>,
}

/// The `image` object of a slot activation.
pub(crate) fn image_json(image: &SlotActivation) -> ImageJson<'_> {
    ImageJson {
        module: image.module.as_str(),
        version: image.version.to_string(),
        slot: image.slot,
        slot_path: &image.slot_path,
        previous_slot: image.previous,
        source: match image.source {
            ImageSource::Patch { .. } => "patch",
            ImageSource::Package { .. } => "package",
            _ => "in_slot",
        },
        downloaded_bytes: image.downloaded_bytes,
        switched: image.switched,
        hook: image.hook.as_ref().map(health_check_json),
    }
}

/// A health check in `update --json`.
#[derive(Debug, Serialize)]
pub(crate) struct HealthCheckJson<'a> {
    command: &'a str,
    /// `passed`, `failed` or `timed_out`.
    result: &'static str,
    /// The exit status, when it exited.
    exit_code: Option<i32>,
    /// The signal that killed it (not the client's, on a timeout).
    signal: Option<i32>,
    /// Its timeout: `"30s"`…
    timeout: String,
    duration_secs: f64,
    /// The end of its output (at most 4 KiB), stdout and stderr interleaved.
    output: &'a str,
    /// How many bytes of output it wrote in all.
    output_bytes: u64,
}

/// The object of a hook's run (a health check or an on-activate hook).
pub(crate) fn health_check_json(report: &HealthCheckReport) -> HealthCheckJson<'_> {
    let (result, exit_code, signal) = match report.status {
        HealthStatus::Passed => ("passed", Some(0), None),
        HealthStatus::Exited(code) => ("failed", Some(code), None),
        HealthStatus::Signaled(signal) => ("failed", None, Some(signal)),
        HealthStatus::TimedOut => ("timed_out", None, None),
    };
    HealthCheckJson {
        command: &report.command,
        result,
        exit_code,
        signal,
        timeout: format_duration(report.timeout),
        duration_secs: report.duration.as_secs_f64(),
        output: &report.output,
        output_bytes: report.output_bytes,
    }
}

/// A deleted release tree in `--json` output.
#[derive(Debug, Serialize)]
pub(crate) struct PrunedJson<'a> {
    version: String,
    dir: &'a str,
}

/// The deleted release trees, as `pruned_releases`.
pub(crate) fn pruned_json(pruned: &[PrunedRelease]) -> Vec<PrunedJson<'_>> {
    pruned
        .iter()
        .map(|release| PrunedJson {
            version: release.version.to_string(),
            dir: &release.dir,
        })
        .collect()
}

/// The `confirm --json` and `launched --json` document.
#[derive(Debug, Serialize)]
pub(crate) struct TrialJson<'a> {
    pub(crate) schema_version: u32,
    /// `confirm`: `confirmed`, `already_confirmed` or `in_health_check`.
    /// `launched`: `confirmed`, `counted`, `no_fallback`, `rolled_back` or
    /// `in_health_check`.
    pub(crate) result: &'static str,
    /// The release current when the command ran.
    pub(crate) version: Option<String>,
    /// Launches recorded while it was unconfirmed.
    pub(crate) launches: Option<u32>,
    /// The most unconfirmed launches allowed (`0`: no limit), for `launched`.
    pub(crate) limit: Option<u32>,
    /// The release `current` points to after a rollback.
    pub(crate) rolled_back_to: Option<String>,
    /// The release a rollback marked bad.
    pub(crate) marked_bad: Option<String>,
    /// The command that clears that mark.
    pub(crate) unmark_command: Option<String>,
    /// Release trees deleted after a rollback.
    pub(crate) pruned_releases: Vec<PrunedJson<'a>>,
    /// `launched`: whether it first applied a staged release (`version` names it).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(crate) applied: bool,
}

impl TrialJson<'_> {
    /// The document with `result` and nothing else known.
    pub(crate) fn new(result: &'static str) -> Self {
        Self {
            schema_version: JSON_SCHEMA_VERSION,
            result,
            version: None,
            launches: None,
            limit: None,
            rolled_back_to: None,
            marked_bad: None,
            unmark_command: None,
            pruned_releases: Vec::new(),
            applied: false,
        }
    }
}
