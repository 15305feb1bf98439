//! The JSON documents the C functions return: a check, an install (also a stage and
//! an apply), and a launch. Their fields are listed in the header, on the functions
//! that return them; versions are strings, absent values `null`. A document only
//! ever gains fields.

use serde::Serialize;
use wavecast_client::{
    CheckReport, CurrentRelease, InstallOutcome, InstallReport, LaunchOutcome, LaunchReport,
    Timestamp,
};

/// What `wavecast_check` returns.
#[derive(Debug, Serialize)]
pub(crate) struct CheckJson {
    /// `update`, `up_to_date` or `deferred`.
    decision: &'static str,
    current: Option<String>,
    target: Option<String>,
    newest: Option<String>,
    mandatory: bool,
    /// The target is older than the installed release (which was withdrawn).
    downgrade: bool,
    /// `yanked` or `capped` when the installed release must be left.
    withdrawn: Option<&'static str>,
    /// For a deferral, when this client becomes eligible as the manifest stands.
    eligible_at: Option<Timestamp>,
    channel: String,
    serial: u64,
    /// The target's release notes, if it has any.
    notes: Option<String>,
}

impl From<&CheckReport> for CheckJson {
    fn from(report: &CheckReport) -> Self {
        Self {
            decision: report.outcome().as_str(),
            current: report.current().map(|current| current.version.to_string()),
            target: report.target().map(|target| target.version.to_string()),
            newest: report.newest().map(ToString::to_string),
            mandatory: report.mandatory(),
            downgrade: report.is_downgrade(),
            withdrawn: report.withdrawn().map(|withdrawal| withdrawal.as_str()),
            eligible_at: report.eligible_at(),
            channel: report.channel().to_string(),
            serial: report.serial(),
            notes: report
                .target()
                .map(|target| target.notes.clone())
                .filter(|notes| !notes.is_empty()),
        }
    }
}

/// What `wavecast_install`, `wavecast_stage` and `wavecast_apply` return.
#[derive(Debug, Serialize)]
pub(crate) struct InstallJson {
    /// `installed`, `already_current` or `reused`.
    outcome: &'static str,
    version: String,
    /// The release's directory under `ROOT/releases`.
    dir: String,
    previous: Option<String>,
    planned_bytes: u64,
    downloaded_bytes: u64,
    fallbacks: u32,
    /// The health check's command, when one ran (and passed).
    health_check: Option<String>,
}

impl From<&InstallReport> for InstallJson {
    fn from(report: &InstallReport) -> Self {
        let tree = &report.tree;
        Self {
            outcome: match tree.outcome {
                InstallOutcome::Installed => "installed",
                InstallOutcome::AlreadyCurrent => "already_current",
                InstallOutcome::Reused => "reused",
                // `InstallOutcome` may grow: an unknown outcome is reported, not guessed.
                _ => "unknown",
            },
            version: tree.version.to_string(),
            dir: tree.dir.clone(),
            previous: tree.previous.as_ref().map(ToString::to_string),
            planned_bytes: tree.planned_bytes,
            downloaded_bytes: tree.downloaded_bytes,
            fallbacks: tree.fallbacks,
            health_check: report
                .health_check
                .as_ref()
                .map(|check| check.command.clone()),
        }
    }
}

/// A release: its version and directory.
#[derive(Debug, Serialize)]
struct ReleaseJson {
    version: String,
    dir: String,
}

impl From<&CurrentRelease> for ReleaseJson {
    fn from(release: &CurrentRelease) -> Self {
        Self {
            version: release.version.to_string(),
            dir: release.dir.clone(),
        }
    }
}

/// What `wavecast_launched` returns.
#[derive(Debug, Serialize)]
pub(crate) struct LaunchJson {
    /// The release current when the launch was recorded.
    release: ReleaseJson,
    /// `confirmed`, `counted`, `no_fallback` or `rolled_back`.
    outcome: &'static str,
    /// Launches of the unconfirmed release, this one included (null once confirmed).
    launches: Option<u32>,
    /// The most it may have unconfirmed (0: no limit; null once confirmed).
    limit: Option<u32>,
    /// For `rolled_back`, the release now current: start it.
    rolled_back_to: Option<ReleaseJson>,
    /// The staged release this launch applied first, as `wavecast_apply` reports it.
    applied: Option<InstallJson>,
}

impl From<&LaunchReport> for LaunchJson {
    fn from(report: &LaunchReport) -> Self {
        let (outcome, counts, rolled_back_to) = match &report.outcome {
            LaunchOutcome::Confirmed => ("confirmed", None, None),
            LaunchOutcome::Counted { launches, limit } => {
                ("counted", Some((*launches, *limit)), None)
            }
            LaunchOutcome::NoFallback { launches, limit } => {
                ("no_fallback", Some((*launches, *limit)), None)
            }
            LaunchOutcome::RolledBack {
                launches,
                limit,
                to,
                ..
            } => ("rolled_back", Some((*launches, *limit)), Some(to.into())),
            // `LaunchOutcome` may grow: an unknown outcome is reported, not guessed.
            _ => ("unknown", None, None),
        };
        Self {
            release: (&report.release).into(),
            outcome,
            launches: counts.map(|(launches, _)| launches),
            limit: counts.map(|(_, limit)| limit),
            rolled_back_to,
            applied: report.applied.as_deref().map(Into::into),
        }
    }
}

/// `document` as JSON text.
pub(crate) fn to_text(document: &impl Serialize) -> String {
    serde_json::to_string(document).expect("the documents serialize: no maps with non-string keys")
}
