//! `wavecast-update init`: set up an install root.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Args;
use serde::Serialize;
use wavecast_client::{
    BUILD_PLATFORM, BaseUrl, InitOptions, InitReport, PinnedTrust, SiteSummary, TrustedKey, Updater,
};
use wavecast_schema::{ChannelName, Platform};

use crate::args::{AttrArgs, LimitArgs, RootArg, now};
use crate::json::JSON_SCHEMA_VERSION;
use crate::output::{ExitStatus, stderr_line, stdout_json, stdout_line};
use crate::sentences::{attribute_list, plural};

/// The flags of `init`.
#[derive(Debug, Args)]
pub(crate) struct InitArgs {
    #[command(flatten)]
    root: RootArg,
    /// Base URL of the site: http://, https://, file://, or a local folder. Repeat to
    /// add mirrors, tried in order.
    #[arg(long = "url", value_name = "URL", required = true)]
    urls: Vec<String>,
    /// The publisher's minisign public key: a `.pub` file or its base64 line.
    #[arg(long, value_name = "PUBKEY", required_unless_present = "trusted_root")]
    pubkey: Option<String>,
    /// Pin a root file instead of one key: a `roots/<n>.json` from the publisher's
    /// site, obtained by a path you trust (it lists k-of-n keys).
    #[arg(long, value_name = "FILE", conflicts_with = "pubkey")]
    trusted_root: Option<PathBuf>,
    /// The channel to follow.
    #[arg(long, default_value = "stable")]
    channel: ChannelName,
    /// The platform whose builds to install (a Rust target triple, or `any`).
    #[arg(long, value_name = "TRIPLE", default_value = BUILD_PLATFORM)]
    platform: Platform,
    #[command(flatten)]
    attributes: AttrArgs,
    #[command(flatten)]
    limits: LimitArgs,
    /// Rewrite the configuration of an initialized root; the install id and state are
    /// kept.
    #[arg(long)]
    force: bool,
    /// The product this root installs (the site's `product`). `init` checks it
    /// against the site; by default it records the site's. A manifest for another
    /// product is refused from then on.
    #[arg(long, value_name = "NAME")]
    product: Option<String>,
    /// Write the configuration without fetching the site (an image built without
    /// network). The first check verifies the site and, without --product, records
    /// its product.
    #[arg(long)]
    offline: bool,
    /// Share the root with this group (a name or a number), such as the application's
    /// own user's: its members may then run `confirm`, `launched` (a rollback stays
    /// with the owner) and `status`. ROOT/.wavecast becomes 2750 and group-owned, its
    /// files 0640, the lock 0660, and ROOT/.wavecast/shared, which holds the trial,
    /// 2770. Without it only the owner (the user running `init`) may use the root.
    #[arg(long, value_name = "GROUP")]
    group: Option<String>,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

/// `wavecast-update init`.
pub(crate) fn run(args: &InitArgs) -> anyhow::Result<ExitStatus> {
    let cwd = std::env::current_dir().context("failed to read the current directory")?;
    let urls = args
        .urls
        .iter()
        .map(|url| BaseUrl::from_argument(url, &cwd))
        .collect::<Result<Vec<_>, _>>()?;
    let trust = match (&args.pubkey, &args.trusted_root) {
        (_, Some(path)) => PinnedTrust::Root(wavecast_client::read_pinned_root(path)?),
        (Some(key), None) => PinnedTrust::Pubkey(TrustedKey::from_argument(key)?),
        (None, None) => unreachable!("clap requires --pubkey or --trusted-root"),
    };
    let mut urls = urls.into_iter();
    let mut options = InitOptions::new(urls.next().expect("clap requires --url"), trust);
    options.urls.extend(urls);
    options.channel = args.channel.clone();
    options.platform = args.platform.clone();
    options.attributes = args.attributes.to_map();
    options.download_limits = args.limits.download_limits();
    options.expiry_grace = args.limits.expiry_grace.unwrap_or_default();
    options.force = args.force;
    options.product = args.product.clone();
    options.offline = args.offline;
    options.group = args.group.clone();
    let report = Updater::init(&args.root.root, options, now()?)?;
    if args.json {
        stdout_json(&InitJson {
            schema_version: JSON_SCHEMA_VERSION,
            result: verb(&report),
            root: &args.root.root,
            channel: args.channel.as_str(),
            platform: args.platform.as_str(),
            install_id: report.install_id.to_string(),
            kept_state: report.kept_state,
            product: report.product.as_deref(),
            site: report.site.as_ref().map(|site| SiteJson {
                urls: site.urls.iter().map(BaseUrl::as_str).collect(),
                serial: site.serial,
                newest: site.newest.as_ref().map(ToString::to_string),
                releases: site.releases,
                root_version: site.root_version,
                signed_by: site.signed_by.iter().map(ToString::to_string).collect(),
                min_client_version: site.min_client_version.to_string(),
            }),
        })?;
        return Ok(ExitStatus::Success);
    }
    match &report.site {
        Some(site) => stderr_line(&site_line(site, &args.platform)),
        None => stderr_line(
            "not verified (--offline): the first check verifies the site and records its product",
        ),
    }
    let verb = verb(&report);
    let kept = if report.kept_state { " (kept)" } else { "" };
    let attributes = args.attributes.to_map();
    let attributes = if attributes.is_empty() {
        String::new()
    } else {
        format!(", attributes {}", attribute_list(&attributes))
    };
    let group = args.group.as_ref().map_or_else(String::new, |group| {
        format!(", shared with group `{group}`")
    });
    stdout_line(&format!(
        "{verb} {}: channel {}, platform {}, install id {}{kept}{attributes}{group}",
        args.root.root.display(),
        args.channel,
        args.platform,
        report.install_id,
    ))?;
    Ok(ExitStatus::Success)
}

/// `initialized`, or `reconfigured` with `--force`.
fn verb(report: &InitReport) -> &'static str {
    if report.reconfigured {
        "reconfigured"
    } else {
        "initialized"
    }
}

/// The `init --json` document.
#[derive(Debug, Serialize)]
struct InitJson<'a> {
    schema_version: u32,
    /// `initialized`, or `reconfigured` with `--force`.
    result: &'static str,
    root: &'a Path,
    channel: &'a str,
    platform: &'a str,
    /// The root's random install id, which picks its rollout buckets; it never
    /// leaves the machine.
    install_id: String,
    /// Whether an existing state (install id, serials, releases) was kept.
    kept_state: bool,
    /// The product the root installs, when known (not with `--offline`).
    product: Option<&'a str>,
    /// What the site serves, as verified; `null` with `--offline`.
    site: Option<SiteJson<'a>>,
}

/// What `init` verified of the site, in `init --json`.
#[derive(Debug, Serialize)]
struct SiteJson<'a> {
    urls: Vec<&'a str>,
    serial: u64,
    /// The newest release for the platform that is not yanked.
    newest: Option<String>,
    /// The number of releases for the platform.
    releases: usize,
    root_version: u64,
    /// The release keys that signed the manifest.
    signed_by: Vec<String>,
    /// The oldest client the manifest accepts.
    min_client_version: String,
}

/// What `init` verified, for people: the site's product, channel, serial, newest
/// release and the keys that signed it.
fn site_line(site: &SiteSummary, platform: &Platform) -> String {
    let urls: Vec<&str> = site.urls.iter().map(BaseUrl::as_str).collect();
    let newest = match &site.newest {
        Some(newest) => format!(
            "newest release {newest} ({} for {platform})",
            plural(site.releases, "release")
        ),
        None => format!("no release for {platform} yet"),
    };
    let keys: Vec<String> = site.signed_by.iter().map(ToString::to_string).collect();
    let floor = if site.min_client_version > wavecast_client::client_version() {
        format!(
            "; it needs wavecast-update >= {}, which the first update installs first",
            site.min_client_version
        )
    } else {
        String::new()
    };
    format!(
        "verified {}: product `{}`, channel {}, serial {}, {newest}, signed by release key {} of root v{}{floor}",
        urls.join(" and "),
        site.product,
        site.channel,
        site.serial,
        keys.join(", "),
        site.root_version,
    )
}
