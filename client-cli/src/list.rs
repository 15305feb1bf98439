//! `wavecast-update list`: every release of the channel, and what it is to this client.

use clap::Args;
use jiff::Timestamp;
use serde::Serialize;
use wavecast_client::{Availability, CheckOptions, ListedRelease, Listing, format_bytes};

use crate::args::{AttrArgs, RootArg, WaitArg, now};
use crate::json::JSON_SCHEMA_VERSION;
use crate::output::{ExitStatus, stdout_json, stdout_line};

/// The flags of `list`.
#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    #[command(flatten)]
    root: RootArg,
    #[command(flatten)]
    wait: WaitArg,
    #[command(flatten)]
    attributes: AttrArgs,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

/// `wavecast-update list`.
pub(crate) fn run(args: &ListArgs) -> anyhow::Result<ExitStatus> {
    let updater = args.wait.open(&args.root)?;
    let options = CheckOptions {
        attributes: args.attributes.to_map(),
        // A channel that needs a newer client is listed all the same: it says so.
        ignore_client_floor: true,
        ..CheckOptions::default()
    };
    let report = updater.check_with(now()?, &options)?;
    let listing = updater.list(&report)?;
    if args.json {
        stdout_json(&ListJson {
            schema_version: JSON_SCHEMA_VERSION,
            channel: report.channel().as_str(),
            serial: report.serial(),
            current: report.current().map(|current| current.version.to_string()),
            pin: listing.pin.map(|pin| pin.to_string()),
            needs_newer_client: listing.needs_newer_client,
            releases: listing.releases.iter().map(release_json).collect(),
        })?;
    } else {
        stdout_line(&lines(report.channel().as_str(), report.serial(), &listing).join("\n"))?;
    }
    Ok(ExitStatus::Success)
}

/// The `list --json` document.
#[derive(Debug, Serialize)]
struct ListJson<'a> {
    schema_version: u32,
    channel: &'a str,
    serial: u64,
    current: Option<String>,
    /// The line the client stays on, or null.
    pin: Option<String>,
    /// The channel needs a newer wavecast-update: nothing installs until it updates
    /// itself.
    needs_newer_client: bool,
    /// Newest first.
    releases: Vec<ReleaseJson<'a>>,
}

/// One release in `list --json`.
#[derive(Debug, Serialize)]
struct ReleaseJson<'a> {
    version: String,
    published_at: Timestamp,
    notes: &'a str,
    /// Any of `current`, `installed`, `offered`, `mandatory`, `eligible`, `paused`,
    /// `yanked`, `excluded_by_rule`, `capped`, `outside_share`, `marked_bad`,
    /// `off_pin`.
    states: Vec<&'static str>,
    /// For `eligible`: when the ramp admits this client.
    eligible_at: Option<Timestamp>,
    /// This client's bucket and the release's threshold now, when it is held back.
    bucket: Option<u16>,
    threshold: Option<u16>,
    /// Why it is held back, in words.
    reason: Option<String>,
    /// What updating to it from here would download (file indexes aside); null for
    /// the current release and a yanked one.
    download_bytes: Option<u64>,
}

/// The `list --json` object of `release`.
fn release_json(release: &ListedRelease) -> ReleaseJson<'_> {
    let held = match &release.availability {
        Availability::HeldBack(held) => Some(held),
        _ => None,
    };
    ReleaseJson {
        version: release.version.to_string(),
        published_at: release.published_at,
        notes: &release.notes,
        states: states(release),
        eligible_at: held.and_then(|held| held.eligible_at),
        bucket: held.map(|held| held.rollout.bucket),
        threshold: held.map(|held| held.rollout.threshold.get()),
        reason: held.map(ToString::to_string),
        download_bytes: release.download_bytes,
    }
}

/// The release's states, as codes.
fn states(release: &ListedRelease) -> Vec<&'static str> {
    let mut states = Vec::new();
    if release.current {
        states.push("current");
    }
    if release.installed {
        states.push("installed");
    }
    match &release.availability {
        Availability::Offered { mandatory } => {
            states.push(if *mandatory { "mandatory" } else { "offered" });
        }
        Availability::HeldBack(held) => states.push(match held.reason() {
            "ramping" => "eligible",
            reason => reason,
        }),
        Availability::Yanked => states.push("yanked"),
        // A state added later: shown by the other flags alone.
        _ => {}
    }
    if release.marked_bad {
        states.push("marked_bad");
    }
    if release.off_pin {
        states.push("off_pin");
    }
    states
}

/// The listing as a table for people, with a heading line.
fn lines(channel: &str, serial: u64, listing: &Listing) -> Vec<String> {
    let mut heading = format!("channel `{channel}` (serial {serial})");
    if let Some(pin) = listing.pin {
        heading.push_str(&format!(", pinned to {pin}"));
    }
    if listing.needs_newer_client {
        heading.push_str(
            "; it needs a newer wavecast-update: run `wavecast-update self-update` before installing",
        );
    }
    let rows: Vec<[String; 4]> = listing
        .releases
        .iter()
        .map(|release| {
            [
                release.version.to_string(),
                release.published_at.strftime("%Y-%m-%d").to_string(),
                release
                    .download_bytes
                    .map_or_else(|| "-".to_owned(), format_bytes),
                state_text(release),
            ]
        })
        .collect();
    let header = ["VERSION", "PUBLISHED", "DOWNLOAD", "STATE"].map(str::to_owned);
    let widths: Vec<usize> = (0..3)
        .map(|column| {
            std::iter::once(&header)
                .chain(&rows)
                .map(|row| row[column].len())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut lines = vec![heading];
    for row in std::iter::once(&header).chain(&rows) {
        lines.push(format!(
            "{:<w0$}  {:<w1$}  {:>w2$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
        ));
    }
    if listing.releases.is_empty() {
        lines.push("(no release for this platform)".to_owned());
    }
    lines
}

/// `current, installed`, `offered now`, `eligible at 2026-12-06T10:00:00Z`,
/// `paused`… for people.
fn state_text(release: &ListedRelease) -> String {
    let mut parts = Vec::new();
    if release.current {
        parts.push("current".to_owned());
    } else if release.installed {
        parts.push("installed".to_owned());
    }
    match &release.availability {
        Availability::Offered { mandatory: true } if !release.current => {
            parts.push("offered now (mandatory)".to_owned());
        }
        Availability::Offered { .. } if !release.current => parts.push("offered now".to_owned()),
        Availability::HeldBack(held) if !release.current => parts.push(match held.eligible_at {
            Some(at) => format!("eligible at {at}"),
            None => match held.reason() {
                "paused" => "paused".to_owned(),
                "excluded_by_rule" => match &held.rule {
                    Some(rule) => format!("excluded by rule `{rule}`"),
                    None => "excluded by a rule".to_owned(),
                },
                "capped" => format!("capped at {}", held.rollout.threshold),
                _ => format!(
                    "not offered yet ({}; this client's bucket is {})",
                    held.rollout.threshold, held.rollout.bucket
                ),
            },
        }),
        Availability::Yanked => parts.push("yanked".to_owned()),
        _ => {}
    }
    if release.marked_bad {
        parts.push("marked bad here".to_owned());
    }
    if release.off_pin {
        parts.push("off the pin".to_owned());
    }
    parts.join(", ")
}
