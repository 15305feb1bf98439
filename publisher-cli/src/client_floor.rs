//! The `--min-client-version` flag of `publish`, `rollout` and `publish-updater`,
//! and what `publish` and `rollout` say after it.

use clap::Args;
use semver::Version;
use wavecast_publisher::client_floor;
use wavecast_schema::Manifest;

use crate::output;

/// `--min-client-version`: shared by `publish`, `rollout` and `publish-updater`.
#[derive(Debug, Args)]
pub(crate) struct ClientFloorArg {
    /// Require wavecast-update >= VERSION on this channel (the manifest's
    /// `min_client_version`; kept until changed): older clients update themselves
    /// first from the build `publish-updater` offers for their platform, or stop
    /// with an error when none reaches it. Refused above a build already offered.
    #[arg(long, value_name = "VERSION", value_parser = wavecast_schema::parse_version)]
    pub(crate) min_client_version: Option<Version>,
}

/// After a publish whose tar.zst packages raised the channel's floor to `floor`:
/// says so, and warns when clients may already follow the channel (it had a manifest
/// before) and no build of the client is offered to reach it.
pub(crate) fn report_raised_for_packages(floor: &Version, manifest: &Manifest) {
    let channel_existed = manifest.serial > 1;
    if channel_existed && client_floor::floor_without_builds(manifest) {
        output::warn(&format!(
            "channel `{}` now requires wavecast-update >= {floor}, the first to read tar.zst packages, but offers no build of it: older clients stop with an error until they are updated by other means; offer one with `wavecast publish-updater`, or publish with --package-format gz",
            manifest.channel
        ));
    } else {
        output::status(&format!(
            "channel `{}` now requires wavecast-update >= {floor}, the first to read tar.zst packages; older clients update themselves first",
            manifest.channel
        ));
    }
}

/// After a command that set `--min-client-version`: says what the floor is now, and
/// warns when no build of the client is offered to reach it.
pub(crate) fn report_floor(floor: &ClientFloorArg, manifest: &Manifest) {
    if floor.min_client_version.is_none() {
        return;
    }
    if client_floor::floor_without_builds(manifest) {
        output::warn(&format!(
            "channel `{}` requires wavecast-update >= {} but offers no build of it: older clients stop with an error until they are updated by other means; offer one with `wavecast publish-updater`",
            manifest.channel, manifest.min_client_version
        ));
    } else {
        let platforms: Vec<String> = manifest
            .updater
            .iter()
            .map(|(platform, build)| format!("{platform} {}", build.version))
            .collect();
        let offered = if platforms.is_empty() {
            String::new()
        } else {
            format!("; builds offered: {}", platforms.join(", "))
        };
        output::status(&format!(
            "channel `{}` requires wavecast-update >= {}{offered}",
            manifest.channel, manifest.min_client_version
        ));
    }
}
