//! `wavecast publish-updater`: offer a build of the client on a channel.

use std::path::PathBuf;

use clap::Args;
use semver::Version;
use wavecast_publisher::self_update::{self, UpdaterOptions};
use wavecast_schema::Platform;

use crate::args::{ChannelArg, SiteArgs, now};
use crate::client_floor::ClientFloorArg;
use crate::output;

#[derive(Debug, Args)]
pub(crate) struct PublishUpdaterArgs {
    /// The built `wavecast-update` executable for --platform (`WAVECAST_CLIENT_VERSION=V
    /// cargo build --release --bin wavecast-update [--target TRIPLE]` sets its
    /// version).
    executable: PathBuf,
    /// The version the executable reports (`wavecast-update --version`); clients
    /// refuse a build that reports another, so it is checked first: by running the
    /// executable, or when it does not run here (a cross build) by reading the
    /// version marker every build carries.
    #[arg(long, value_parser = wavecast_schema::parse_version)]
    version: Version,
    /// The target triple the executable runs on (e.g. x86_64-unknown-linux-gnu);
    /// clients take the build of the triple they were built for.
    #[arg(long, value_name = "TRIPLE")]
    platform: Platform,
    #[command(flatten)]
    channel: ChannelArg,
    #[command(flatten)]
    floor: ClientFloorArg,
    /// Replace the build offered for this platform even when it is as new or newer.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    site: SiteArgs,
}

/// `wavecast publish-updater`.
pub(crate) fn run(args: &PublishUpdaterArgs) -> anyhow::Result<()> {
    let key = args.site.signers()?;
    let options = UpdaterOptions {
        executable: args.executable.clone(),
        version: args.version.clone(),
        channel: args.channel.channel.clone(),
        platform: args.platform.clone(),
        min_client_version: args.floor.min_client_version.clone(),
        force: args.force,
        expires_in: args.site.expires_in,
        now: now()?,
    };
    let report = self_update::publish_updater(&args.site.storage(), &key, &options)?;
    let manifest = &report.manifest;
    if args.site.json {
        output::json(&serde_json::json!({
            "schema_version": 1,
            "command": "publish-updater",
            "channel": manifest.channel,
            "serial": manifest.serial,
            "expires_at": manifest.expires_at,
            "platform": args.platform,
            "version": report.build.version,
            "package": report.build.package,
            "unpacked_size": report.build.unpacked_size,
            "uploaded": report.uploaded,
            "debug_info": report.debug_info,
            "replaced": report.replaced.as_ref().map(|build| &build.version),
            "min_client_version": manifest.min_client_version,
            "manifest": args.site.manifest_path(&manifest.channel),
            "signed": !args.site.sign_later,
        }));
    }
    if let Some(size) = report.debug_info {
        output::warn(&format!(
            "`{}` carries {} of debug info (of {}), which every client would download without needing it; offer a release build (`cargo build --release --bin wavecast-update`: wavecast's release profile strips it), or run `strip` on the file first",
            args.executable.display(),
            output::bytes(size),
            output::bytes(report.build.unpacked_size),
        ));
    }
    let replaced = report.replaced.as_ref().map_or_else(String::new, |build| {
        format!(", replacing {}", build.version)
    });
    output::result(
        &format!(
            "offered wavecast-update {} for `{}` on channel `{}`{replaced}: {} -> {} tar.gz{} (serial {}; the channel requires wavecast-update >= {})",
            report.build.version,
            args.platform,
            manifest.channel,
            output::bytes(report.build.unpacked_size),
            output::bytes(report.build.package.size),
            if report.uploaded {
                ""
            } else {
                " (already on the site)"
            },
            manifest.serial,
            manifest.min_client_version,
        ),
        args.site.json,
    );
    args.site.report_pending(&manifest.channel);
    Ok(())
}
