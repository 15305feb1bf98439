//! `wavecast-update config`: show the configuration, or change it.

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use serde::Serialize;
use wavecast_client::limits::DownloadLimits;
use wavecast_client::units::{format_duration, format_speed};
use wavecast_client::{
    Attributes, BaseUrl, Config, ConfigChange, HealthConfig, SlotConfig, SlotName, Updater,
};
use wavecast_schema::{ChannelName, VersionPin};

use crate::args::{
    ActivationArgs, LimitArgs, RootArg, attribute_argument, health_timeout_argument,
};
use crate::json::JSON_SCHEMA_VERSION;
use crate::output::{ExitStatus, stderr_line, stdout_json, stdout_line};
use crate::sentences::attribute_list;

/// The flags of `config`.
#[derive(Debug, Args)]
pub(crate) struct ConfigArgs {
    #[command(flatten)]
    root: RootArg,
    /// Follow this channel from now on. A client never moves down: on a channel whose
    /// newest release is older than the installed one, it stays where it is.
    #[arg(long)]
    channel: Option<ChannelName>,
    /// Set an attribute in the configuration. Repeatable.
    #[arg(long = "attr", value_name = "KEY=VALUE", value_parser = attribute_argument)]
    attributes: Vec<(String, String)>,
    /// Remove an attribute from the configuration (before any --attr). Repeatable.
    #[arg(long = "unset-attr", value_name = "KEY", value_parser = attribute_key_argument)]
    unset_attributes: Vec<String>,
    #[command(flatten)]
    limits: LimitArgs,
    /// Run this shell command (`sh -c`) in the new release tree after every switch;
    /// when it fails or times out, `current` is switched back and the release marked
    /// bad. It gets WAVECAST_ROOT, WAVECAST_RELEASE_DIR, WAVECAST_VERSION and
    /// WAVECAST_PREVIOUS_VERSION (empty on a first install).
    #[arg(long, value_name = "COMMAND", conflicts_with = "no_health_check")]
    health_check: Option<String>,
    /// Remove the health check.
    #[arg(long)]
    no_health_check: bool,
    /// How long the health check may run before its processes are killed and it
    /// counts as failed (default 30s).
    #[arg(long, value_name = "DURATION", value_parser = health_timeout_argument)]
    health_timeout: Option<Duration>,
    /// How many times a release switched to by an update may be launched (see
    /// `launched`) without a `confirm`; the next launch rolls it back (default 3; 0
    /// never rolls back).
    #[arg(long, value_name = "N")]
    max_unconfirmed_launches: Option<u32>,
    /// How many release trees to keep under ROOT/releases, the current one included
    /// (default 2; at least 1). Older ones are deleted after each install and
    /// rollback.
    #[arg(long, value_name = "N", value_parser = parse_keep_releases)]
    keep_releases: Option<NonZeroU32>,
    #[command(flatten)]
    activation: ActivationArgs,
    /// Remove the on-activate hook: a written image's slot then becomes active at
    /// once.
    #[arg(long, conflicts_with = "on_activate")]
    no_on_activate: bool,
    /// Where image modules are written: slot a's path (a file, partition or block
    /// device; default ROOT/slots/a).
    #[arg(long, value_name = "PATH")]
    slot_a: Option<PathBuf>,
    /// Slot b's path (default ROOT/slots/b).
    #[arg(long, value_name = "PATH")]
    slot_b: Option<PathBuf>,
    /// Stay on a line of releases: `1.4` (every 1.4.x), `1` or `1.4.2`. Updates then
    /// take the newest allowed release on it, never leave it, and `check` and `list`
    /// say what the pin holds back.
    #[arg(long, value_name = "LINE", conflicts_with = "unpin")]
    pin: Option<VersionPin>,
    /// Remove the pin: follow the whole channel again.
    #[arg(long)]
    unpin: bool,
    /// Share the root with this group (see `init --group`), or set its modes again.
    #[arg(long, value_name = "GROUP", conflicts_with = "no_group")]
    group: Option<String>,
    /// Share the root with no group: only the owner may use it.
    #[arg(long)]
    no_group: bool,
    /// Print the resulting configuration as one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

/// Parses the KEY of `--unset-attr`.
fn attribute_key_argument(text: &str) -> Result<String, String> {
    wavecast_client::check_attribute_key(text)
        .map(|()| text.to_owned())
        .map_err(|error| error.to_string())
}

/// `wavecast-update config`.
pub(crate) fn run(args: &ConfigArgs) -> anyhow::Result<ExitStatus> {
    let mut updater = Updater::open(&args.root.root)?;
    let change = ConfigChange {
        channel: args.channel.clone(),
        set_attributes: args.attributes.iter().cloned().collect(),
        unset_attributes: args.unset_attributes.iter().cloned().collect(),
        min_speed: args.limits.min_speed,
        min_speed_grace: args.limits.min_speed_grace,
        download_deadline: args.limits.download_deadline,
        expiry_grace: args.limits.expiry_grace,
        health_check: if args.no_health_check {
            Some(None)
        } else {
            args.health_check.clone().map(Some)
        },
        health_timeout: args.health_timeout,
        max_unconfirmed_launches: args.max_unconfirmed_launches,
        keep_releases: args.keep_releases,
        on_activate: if args.no_on_activate {
            Some(None)
        } else {
            args.activation.on_activate.clone().map(Some)
        },
        activate_timeout: args.activation.activate_timeout,
        slot_a: args
            .slot_a
            .as_deref()
            .map(std::path::absolute)
            .transpose()?,
        slot_b: args
            .slot_b
            .as_deref()
            .map(std::path::absolute)
            .transpose()?,
        pin: if args.unpin {
            Some(None)
        } else {
            args.pin.map(Some)
        },
        group: if args.no_group {
            Some(None)
        } else {
            args.group.clone().map(Some)
        },
    };
    let before = updater.config().clone();
    let changed = if change == ConfigChange::default() {
        false
    } else {
        updater.reconfigure(&change)?
    };
    let config = updater.config();
    if changed {
        if config.channel != before.channel {
            stderr_line(&format!(
                "now following channel `{}` (was `{}`)",
                config.channel, before.channel
            ));
        }
        if config.attributes != before.attributes {
            stderr_line("attributes updated");
        }
        if config.download_limits != before.download_limits {
            stderr_line(&format!(
                "download limits now {}",
                limits_text(&config.download_limits)
            ));
        }
        if config.expiry_grace != before.expiry_grace {
            stderr_line(&format!(
                "expiry grace now {}",
                format_duration(config.expiry_grace)
            ));
        }
        let (health, was) = (&config.health, &before.health);
        if (&health.check, health.timeout) != (&was.check, was.timeout) {
            stderr_line(&format!("health check now {}", health_text(health)));
        }
        if health.max_unconfirmed_launches != was.max_unconfirmed_launches {
            stderr_line(&format!(
                "unconfirmed launches now {}",
                launches_text(health.max_unconfirmed_launches)
            ));
        }
        if config.keep_releases != before.keep_releases {
            stderr_line(&format!(
                "keeping {} release tree(s) from the next install or rollback on",
                config.keep_releases
            ));
        }
        let (slots, was) = (&config.slots, &before.slots);
        if (&slots.on_activate, slots.activate_timeout) != (&was.on_activate, was.activate_timeout)
        {
            stderr_line(&format!("on-activate hook now {}", activation_text(slots)));
        }
        if (&slots.a, &slots.b) != (&was.a, &was.b) {
            stderr_line(&format!("image slots now {}", slot_paths_text(slots)));
        }
        if config.pin != before.pin {
            stderr_line(&match config.pin {
                Some(pin) => format!(
                    "pinned to {pin}: updates take the newest allowed release on that line and never leave it"
                ),
                None => "unpinned: updates follow the whole channel".to_owned(),
            });
        }
    } else if change != ConfigChange::default() && change.group.is_none() {
        stderr_line("nothing changed");
    }
    if change.group.is_some() {
        stderr_line(&match &config.group {
            Some(group) => format!(
                "shared with group `{group}`: its members may run `confirm`, `launched` and `status`; modes set"
            ),
            None => "shared with no group: only the owner may use this root; modes set".to_owned(),
        });
    }
    if args.json {
        stdout_json(&ConfigJson {
            schema_version: JSON_SCHEMA_VERSION,
            changed,
            channel: config.channel.as_str(),
            platform: config.platform.as_str(),
            urls: config.urls.iter().map(BaseUrl::as_str).collect(),
            attributes: &config.attributes,
            download_limits: &config.download_limits,
            expiry_grace: format_duration(config.expiry_grace),
            health: &config.health,
            keep_releases: config.keep_releases.get(),
            slots: &config.slots,
            pin: config.pin.map(|pin| pin.to_string()),
            group: config.group.as_deref(),
        })?;
    } else {
        stdout_line(&config_lines(config).join("\n"))?;
    }
    Ok(ExitStatus::Success)
}

/// The `config --json` document.
#[derive(Debug, Serialize)]
struct ConfigJson<'a> {
    schema_version: u32,
    /// Whether this run changed the configuration.
    changed: bool,
    channel: &'a str,
    platform: &'a str,
    urls: Vec<&'a str>,
    attributes: &'a Attributes,
    /// `{"min_speed": "4KiB/s", "min_speed_grace": "10s", "deadline": "1h"}`.
    download_limits: &'a DownloadLimits,
    /// `"0s"`, `"5m"`…
    expiry_grace: String,
    /// `{"check": "…" or null, "timeout": "30s", "max_unconfirmed_launches": 3}`.
    health: &'a HealthConfig,
    /// How many release trees are kept.
    keep_releases: u32,
    /// `{"on_activate": "…" or null, "activate_timeout": "1m", "a": path or null,
    /// "b": path or null}`.
    slots: &'a SlotConfig,
    /// The line the client stays on (`"1.4"`), or null.
    pin: Option<String>,
    /// The group the root is shared with, or null.
    group: Option<&'a str>,
}

/// The configuration for people, one setting a line.
fn config_lines(config: &Config) -> Vec<String> {
    vec![
        format!("channel: {}", config.channel),
        format!("platform: {}", config.platform),
        format!(
            "urls: {}",
            config
                .urls
                .iter()
                .map(BaseUrl::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        format!("attributes: {}", attribute_list(&config.attributes)),
        format!("download limits: {}", limits_text(&config.download_limits)),
        format!("expiry grace: {}", format_duration(config.expiry_grace)),
        format!("health check: {}", health_text(&config.health)),
        format!(
            "unconfirmed launches: {}",
            launches_text(config.health.max_unconfirmed_launches)
        ),
        format!("keep releases: {}", config.keep_releases),
        format!("on-activate hook: {}", activation_text(&config.slots)),
        format!("image slots: {}", slot_paths_text(&config.slots)),
        format!(
            "pin: {}",
            config
                .pin
                .map_or_else(|| "none".to_owned(), |pin| pin.to_string())
        ),
        format!("group: {}", group_text(config.group.as_deref())),
    ]
}

/// `app (its members may run …)`, or `none (…)`, for `config`'s `group:` line.
fn group_text(group: Option<&str>) -> String {
    match group {
        Some(group) => format!("{group} (its members may run confirm, launched and status)"),
        None => "none (only the owner may use this root)".to_owned(),
    }
}

/// ``reboot-into "$WAVECAST_SLOT"` (timeout 1m)`, or `none (timeout 1m)`.
fn activation_text(slots: &SlotConfig) -> String {
    let timeout = format_duration(slots.activate_timeout);
    match &slots.on_activate {
        Some(command) => format!("`{command}` (timeout {timeout})"),
        None => format!("none (timeout {timeout})"),
    }
}

/// `a = /dev/sda2, b = ROOT/slots/b`.
fn slot_paths_text(slots: &SlotConfig) -> String {
    SlotName::BOTH
        .iter()
        .map(|slot| {
            let path = slots.path(*slot).map_or_else(
                || format!("ROOT/slots/{slot}"),
                |path| path.display().to_string(),
            );
            format!("{slot} = {path}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// ``./bin/app --self-test` (timeout 30s)`, or `none (timeout 30s)`.
fn health_text(health: &HealthConfig) -> String {
    let timeout = format_duration(health.timeout);
    match &health.check {
        Some(command) => format!("`{command}` (timeout {timeout})"),
        None => format!("none (timeout {timeout})"),
    }
}

/// `at most 3, then a rollback`, or `counted, never rolled back`.
fn launches_text(limit: u32) -> String {
    if limit == 0 {
        "counted, never rolled back".to_owned()
    } else {
        format!("at most {limit}, then a rollback")
    }
}

/// `at least 4KiB/s on average after 10s, at most 1h per download`.
fn limits_text(limits: &DownloadLimits) -> String {
    let speed = if limits.min_speed == 0 {
        "no minimum speed".to_owned()
    } else {
        format!(
            "at least {} on average after {}",
            format_speed(limits.min_speed),
            format_duration(limits.min_speed_grace)
        )
    };
    format!(
        "{speed}, at most {} per download",
        format_duration(limits.deadline)
    )
}

/// Parses `--keep-releases`: a whole number of at least 1, as the current release's
/// tree is always kept.
fn parse_keep_releases(text: &str) -> Result<NonZeroU32, String> {
    match text.parse::<u32>() {
        Ok(count) => NonZeroU32::new(count).ok_or_else(|| {
            "keep at least 1 release: the current release's tree is always kept".to_owned()
        }),
        Err(_) => Err(format!("`{text}` is not a whole number")),
    }
}
