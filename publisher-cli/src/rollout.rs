//! `wavecast rollout`, `pause`, `resume`, `yank` and `promote`: changes to the
//! releases live on a site, each one new signed manifest.

use clap::Args;
use semver::Version;
use wavecast_publisher::rollout::{self, ReleaseChange};
use wavecast_publisher::rollout_plan;
use wavecast_schema::{BasisPoints, ChannelName};

use crate::args::{ChannelArg, PlanArgs, RampArg, ShareArgs, SiteArgs, now, share_from};
use crate::client_floor::{self, ClientFloorArg};
use crate::output;

#[derive(Debug, Args)]
pub(crate) struct RolloutArgs {
    /// The version whose rollout changes.
    #[arg(value_parser = wavecast_schema::parse_version)]
    version: Version,
    /// The new share: `50%`, `50` or `0.5%`. Raising it only adds clients.
    #[arg(value_name = "PERCENT", conflicts_with = "ramp")]
    share: Option<BasisPoints>,
    #[command(flatten)]
    ramp: RampArg,
    #[command(flatten)]
    plan: PlanArgs,
    /// Remove every rule (given --rule flags replace the rules; none keeps them).
    #[arg(long, conflicts_with = "rules")]
    clear_rules: bool,
    /// Remove the cap.
    #[arg(long, conflicts_with_all = ["cap", "fleet"])]
    no_cap: bool,
    #[command(flatten)]
    floor: ClientFloorArg,
    #[command(flatten)]
    channel: ChannelArg,
    #[command(flatten)]
    site: SiteArgs,
}

#[derive(Debug, Args)]
pub(crate) struct ReleaseArgs {
    /// The release's version.
    #[arg(value_parser = wavecast_schema::parse_version)]
    version: Version,
    #[command(flatten)]
    channel: ChannelArg,
    #[command(flatten)]
    site: SiteArgs,
}

#[derive(Debug, Args)]
pub(crate) struct YankArgs {
    #[command(flatten)]
    release: ReleaseArgs,
    /// Take a yank back: the release is offered again under its rollout.
    #[arg(long)]
    undo: bool,
}

#[derive(Debug, Args)]
pub(crate) struct PromoteArgs {
    /// The version to promote.
    #[arg(value_parser = wavecast_schema::parse_version)]
    version: Version,
    /// The channel that has the release.
    #[arg(long, value_name = "CHANNEL")]
    from: ChannelName,
    /// The channel to add it to (created if it has no manifest yet).
    #[arg(long, value_name = "CHANNEL")]
    to: ChannelName,
    #[command(flatten)]
    share: ShareArgs,
    #[command(flatten)]
    plan: PlanArgs,
    /// Replace the release if the target channel has it (keeping its salt there).
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    site: SiteArgs,
}

/// `wavecast rollout`.
pub(crate) fn change(args: &RolloutArgs) -> anyhow::Result<()> {
    let share = share_from(args.share, args.ramp.ramp.as_ref());
    let change = args.plan.change(share, args.clear_rules, args.no_cap)?;
    if change.is_empty() && args.floor.min_client_version.is_none() {
        return Err(wavecast_publisher::Error::NothingToChange(
            "give a share (`50%`), --ramp, --rule, --clear-rules, --min-version, --cap with --fleet, --no-cap, or --min-client-version",
        )
        .into());
    }
    let site = &args.site;
    let key = site.signers()?;
    let now = now()?;
    let changed = rollout::change_release_and_floor(
        &site.storage(),
        site.signing(&key, now),
        &args.channel.channel,
        &args.version,
        args.floor.min_client_version.as_ref(),
        |release| {
            change.apply(&mut release.rollout, now);
            Ok(())
        },
    )?;
    report_change("rollout", &changed, site);
    client_floor::report_floor(&args.floor, &changed.manifest);
    Ok(())
}

/// `wavecast pause` (with `pause`) and `wavecast resume` (without).
pub(crate) fn pause_or_resume(args: &ReleaseArgs, pause: bool) -> anyhow::Result<()> {
    let site = &args.site;
    let key = site.signers()?;
    let now = now()?;
    let channel = &args.channel.channel;
    let changed = rollout::change_release(
        &site.storage(),
        site.signing(&key, now),
        channel,
        &args.version,
        |release| {
            if pause {
                rollout_plan::pause(release, channel, now)
            } else {
                rollout_plan::resume(release, channel, now).map(drop)
            }
        },
    )?;
    report_change(if pause { "pause" } else { "resume" }, &changed, site);
    Ok(())
}

/// `wavecast yank`.
pub(crate) fn yank(args: &YankArgs) -> anyhow::Result<()> {
    let site = &args.release.site;
    let key = site.signers()?;
    let now = now()?;
    let channel = &args.release.channel.channel;
    let changed = rollout::change_release(
        &site.storage(),
        site.signing(&key, now),
        channel,
        &args.release.version,
        |release| rollout_plan::yank(release, channel, args.undo),
    )?;
    if !args.undo && rollout_plan::nothing_live(&changed.manifest) {
        output::warn(&format!(
            "no other release is live on channel `{channel}`: clients on {} have nowhere to go and stay on it until you publish another release",
            args.release.version
        ));
    }
    report_change("yank", &changed, site);
    Ok(())
}

/// `wavecast promote`.
pub(crate) fn promote(args: &PromoteArgs) -> anyhow::Result<()> {
    let change = args.plan.change(args.share.share(), false, false)?;
    let site = &args.site;
    let key = site.signers()?;
    let now = now()?;
    let promotion = rollout::promote(
        &site.storage(),
        site.signing(&key, now),
        &args.version,
        (&args.from, &args.to),
        &change,
        args.force,
    )?;
    let manifest = &promotion.manifest;
    if site.json {
        output::json(&serde_json::json!({
            "schema_version": 1,
            "command": "promote",
            "version": args.version,
            "from": args.from,
            "to": args.to,
            "channel": manifest.channel,
            "serial": manifest.serial,
            "published_at": manifest.published_at,
            "expires_at": manifest.expires_at,
            "replaced": promotion.replaced.is_some(),
            "rollout": promotion.release.rollout,
            "manifest": site.manifest_path(&manifest.channel),
            "signed": !site.sign_later,
        }));
    }
    output::result(
        &format!(
            "{} promoted from {} to {}{}: {} (serial {})",
            args.version,
            args.from,
            args.to,
            if promotion.replaced.is_some() {
                ", replacing the release there"
            } else {
                ""
            },
            rollout_plan::summary(&promotion.release.rollout),
            manifest.serial
        ),
        args.site.json,
    );
    args.site.report_pending(&manifest.channel);
    Ok(())
}

/// The result line (or the `--json` document) of a release change.
fn report_change(command: &str, changed: &ReleaseChange, site: &SiteArgs) {
    let manifest = &changed.manifest;
    let change = rollout_plan::describe(&changed.before.rollout, &changed.after.rollout);
    if site.json {
        output::json(&serde_json::json!({
            "schema_version": 1,
            "command": command,
            "version": changed.after.version,
            "channel": manifest.channel,
            "serial": manifest.serial,
            "published_at": manifest.published_at,
            "expires_at": manifest.expires_at,
            "change": change,
            "before": changed.before.rollout,
            "rollout": changed.after.rollout,
            "manifest": site.manifest_path(&manifest.channel),
            "signed": !site.sign_later,
        }));
    }
    output::result(
        &format!(
            "{} on {}: {change} (serial {})",
            changed.after.version, manifest.channel, manifest.serial
        ),
        site.json,
    );
    site.report_pending(&manifest.channel);
}
