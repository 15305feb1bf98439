//! `wavecast-update status`: what is installed and configured, without the network.

use clap::Args;
use jiff::Timestamp;
use serde::Serialize;
use wavecast_client::{Attributes, BaseUrl, SlotName, SlotsStatus, Updater, format_bytes};

use crate::args::RootArg;
use crate::json::{BadJson, JSON_SCHEMA_VERSION, bad_json};
use crate::output::{ExitStatus, stdout_json, stdout_line};
use crate::sentences::attribute_list;

/// The flags of `status`.
#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    root: RootArg,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

/// `wavecast-update status`.
pub(crate) fn run(args: &StatusArgs) -> anyhow::Result<ExitStatus> {
    let updater = Updater::open(&args.root.root)?;
    let status = updater.status()?;
    if args.json {
        stdout_json(&StatusJson {
            schema_version: JSON_SCHEMA_VERSION,
            current: status
                .current
                .as_ref()
                .map(|current| current.version.to_string()),
            current_dir: status.current.as_ref().map(|current| current.dir.as_str()),
            installed: status
                .installed
                .iter()
                .map(|release| InstalledJson {
                    version: release.version.to_string(),
                    dir: &release.dir,
                    installed_at: release.installed_at,
                })
                .collect(),
            channel: status.channel.as_str(),
            platform: status.platform.as_str(),
            attributes: &status.attributes,
            urls: status.urls.iter().map(BaseUrl::as_str).collect(),
            install_id: status.install_id.as_str(),
            highest_serial: status.highest_serial,
            last_check: status.last_check,
            confirmed: status.current.as_ref().map(|_| status.trial.is_none()),
            unconfirmed_launches: status.trial.as_ref().map(|trial| trial.launches),
            bad_releases: status.bad_releases.iter().map(bad_json).collect(),
            slots: status.slots.as_ref().map(slots_json),
            interrupted: status.interrupted.as_ref().map(|install| InterruptedJson {
                version: install.release.version.to_string(),
                dir: &install.release.dir,
                step: install.step.as_str(),
                previous: install.previous.as_deref(),
                finishes: install.finishes(),
            }),
            staged: status.staged.as_ref().map(|staged| StagedJson {
                version: staged.version.to_string(),
                dir: &staged.dir,
            }),
        })?;
        return Ok(ExitStatus::Success);
    }
    let current = status.current.as_ref().map_or_else(
        || "none".to_owned(),
        |current| {
            let confirmation = match &status.trial {
                Some(trial) => format!("unconfirmed, {} launch(es)", trial.launches),
                None => "confirmed".to_owned(),
            };
            format!(
                "{} (releases/{}), {confirmation}",
                current.version, current.dir
            )
        },
    );
    let bad = if status.bad_releases.is_empty() {
        "none".to_owned()
    } else {
        status
            .bad_releases
            .iter()
            .map(|bad| format!("{} ({}, {})", bad.version, bad.detail, bad.marked_at))
            .collect::<Vec<_>>()
            .join("; ")
            + "; `wavecast-update unmark VERSION` clears a mark"
    };
    let installed = if status.installed.is_empty() {
        "none".to_owned()
    } else {
        status
            .installed
            .iter()
            .map(|release| release.version.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let slots = status.slots.as_ref().map(slots_lines).unwrap_or_default();
    let mut lines = [
        format!("current: {current}"),
        format!("installed: {installed}"),
        format!("marked bad: {bad}"),
    ]
    .into_iter()
    .chain(slots)
    .chain([
        format!("channel: {}", status.channel),
        format!("platform: {}", status.platform),
        format!("attributes: {}", attribute_list(&status.attributes)),
        format!(
            "urls: {}",
            status
                .urls
                .iter()
                .map(BaseUrl::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        format!("install id: {}", status.install_id),
        format!(
            "highest serial seen: {}",
            status
                .highest_serial
                .map_or_else(|| "none".to_owned(), |serial| serial.to_string())
        ),
        format!(
            "last check: {}",
            status
                .last_check
                .map_or_else(|| "never".to_owned(), |time| time.to_string())
        ),
    ])
    .collect::<Vec<_>>();
    if let Some(install) = &status.interrupted {
        lines.push(format!(
            "interrupted install: {} at step `{}`; the next check or update {} it",
            install.release.version,
            install.step,
            if install.finishes() {
                "finishes"
            } else {
                "undoes"
            }
        ));
    }
    if let Some(staged) = &status.staged {
        lines.push(format!(
            "staged: {} in releases/{}; `apply` or the next `launched` switches to it",
            staged.version, staged.dir
        ));
    }
    stdout_line(&lines.join("\n"))?;
    Ok(ExitStatus::Success)
}

/// The `status --json` document.
#[derive(Debug, Serialize)]
struct StatusJson<'a> {
    schema_version: u32,
    current: Option<String>,
    current_dir: Option<&'a str>,
    installed: Vec<InstalledJson<'a>>,
    channel: &'a str,
    platform: &'a str,
    attributes: &'a Attributes,
    urls: Vec<&'a str>,
    install_id: &'a str,
    highest_serial: Option<u64>,
    last_check: Option<Timestamp>,
    /// Whether the current release is confirmed (null when none is current).
    confirmed: Option<bool>,
    /// Launches recorded since the switch while the current release is unconfirmed.
    unconfirmed_launches: Option<u32>,
    /// The releases marked bad here, which updates skip.
    bad_releases: Vec<BadJson<'a>>,
    /// The image slots, once an image module was installed (else null).
    slots: Option<SlotsJson<'a>>,
    interrupted: Option<InterruptedJson<'a>>,
    /// The release `update --stage` staged, until `apply` or `launched` applies it.
    staged: Option<StagedJson<'a>>,
}

/// A staged release in `status --json`.
#[derive(Debug, Serialize)]
struct StagedJson<'a> {
    version: String,
    dir: &'a str,
}

/// An interrupted install in `status --json`.
#[derive(Debug, Serialize)]
struct InterruptedJson<'a> {
    version: String,
    dir: &'a str,
    /// The journal step it had reached.
    step: &'static str,
    /// The directory `current` pointed to when it began.
    previous: Option<&'a str>,
    /// Whether the next check or update finishes it (else it undoes it).
    finishes: bool,
}

/// One installed release in `status --json`.
#[derive(Debug, Serialize)]
struct InstalledJson<'a> {
    version: String,
    dir: &'a str,
    installed_at: Timestamp,
}

/// `slot a: 1.0.0 (os, 4.0 MiB, `/x/slots/a`), active` and the same for `b`.
fn slots_lines(slots: &SlotsStatus) -> Vec<String> {
    slots
        .slots
        .iter()
        .map(|slot| {
            let held = slot.image.as_ref().map_or_else(
                || "no image".to_owned(),
                |image| {
                    format!(
                        "{} ({}, {})",
                        image.version,
                        image.module,
                        format_bytes(image.size)
                    )
                },
            );
            let active = if slots.active == Some(slot.name) {
                ", active"
            } else {
                ""
            };
            format!(
                "slot {}: {held} at `{}`{active}",
                slot.name,
                slot.path.display()
            )
        })
        .collect()
}

/// The `slots` object of `status --json`.
#[derive(Debug, Serialize)]
struct SlotsJson<'a> {
    /// `a`, `b` or null.
    active: Option<SlotName>,
    /// Both slots, `a` first.
    slots: Vec<SlotJson<'a>>,
}

/// One slot in `status --json`.
#[derive(Debug, Serialize)]
struct SlotJson<'a> {
    name: SlotName,
    path: &'a std::path::Path,
    active: bool,
    /// The release whose image it holds (null when unknown or empty).
    version: Option<String>,
    module: Option<&'a str>,
    size: Option<u64>,
    blake3: Option<&'a str>,
}

/// The `slots` object of `status --json`.
fn slots_json(slots: &SlotsStatus) -> SlotsJson<'_> {
    SlotsJson {
        active: slots.active,
        slots: slots
            .slots
            .iter()
            .map(|slot| SlotJson {
                name: slot.name,
                path: &slot.path,
                active: slots.active == Some(slot.name),
                version: slot.image.as_ref().map(|image| image.version.to_string()),
                module: slot.image.as_ref().map(|image| image.module.as_str()),
                size: slot.image.as_ref().map(|image| image.size),
                blake3: slot.image.as_ref().map(|image| image.blake3.as_str()),
            })
            .collect(),
    }
}
