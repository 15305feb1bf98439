//! `wavecast retire`: take releases off a channel, one new signed manifest.

use clap::Args;
use semver::Version;
use wavecast_publisher::retire::{self, Retire};

use crate::args::{ChannelArg, SiteArgs, now};
use crate::output::{self, UsageError};

#[derive(Debug, Args)]
pub(crate) struct RetireArgs {
    /// The versions to retire.
    #[arg(
        value_name = "VERSION",
        value_parser = wavecast_schema::parse_version,
        required_unless_present = "keep",
        conflicts_with = "keep"
    )]
    versions: Vec<Version>,
    /// Retire every release but the newest N (by version); nothing when there are N
    /// or fewer.
    #[arg(long, value_name = "N")]
    keep: Option<usize>,
    #[command(flatten)]
    channel: ChannelArg,
    #[command(flatten)]
    site: SiteArgs,
}

/// `wavecast retire`.
pub(crate) fn run(args: &RetireArgs) -> anyhow::Result<()> {
    let which = match args.keep {
        Some(0) => {
            return Err(UsageError(
                "--keep 0 would retire every release; keep at least one".to_owned(),
            )
            .into());
        }
        Some(keep) => Retire::KeepNewest(keep),
        None => Retire::Versions(args.versions.clone()),
    };
    let site = &args.site;
    let key = site.signers()?;
    let now = now()?;
    let channel = &args.channel.channel;
    let done = retire::retire(&site.storage(), site.signing(&key, now), channel, &which)?;
    let manifest = &done.manifest;
    if site.json {
        output::json(&serde_json::json!({
            "schema_version": 1,
            "command": "retire",
            "channel": manifest.channel,
            "retired": done.retired,
            "live": done.kept,
            "written": !done.retired.is_empty(),
            "serial": manifest.serial,
            "published_at": manifest.published_at,
            "expires_at": manifest.expires_at,
            "manifest": site.manifest_path(&manifest.channel),
            "signed": !site.sign_later,
        }));
    }
    let list = |versions: &[Version]| {
        versions
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    if done.retired.is_empty() {
        output::result(
            &format!(
                "nothing to retire on {channel}: {} live (serial {})",
                list(&done.kept),
                manifest.serial
            ),
            args.site.json,
        );
    } else {
        output::result(
            &format!(
                "retired {} from {channel}; live: {} (serial {}). Their blobs stay until `wavecast gc`, after the manifest's cache time",
                list(&done.retired),
                list(&done.kept),
                manifest.serial
            ),
            args.site.json,
        );
    }
    if !done.retired.is_empty() {
        site.report_pending(&manifest.channel);
    }
    Ok(())
}
