//! The site's status page: a self-contained `index.html` describing every channel.
//!
//! For each channel it shows the serial, publication and expiry of the signed
//! manifest, then each release: version, publication, notes, platforms and modules
//! with their sizes, and the rollout as it stands when the page is generated (share or
//! ramp with the threshold in force, rules, cap, pause, yank), with a chart of a
//! simulated fleet moving through the releases. The page has inline CSS, inline SVG,
//! relative links only and one inline script ([`crate::live`]) that recomputes what
//! each release is offered to at the time it is viewed, from the manifests embedded
//! as data, so it works from any host or folder and a ramp advances without the page
//! being written again. A Content-Security-Policy lets no other script run. Every
//! string from a manifest is HTML-escaped; release notes are Markdown rendered
//! without their raw HTML (`markdown.rs`).
//!
//! [`render`] is pure; [`write()`] reads the channels, and the platform release
//! documents their releases name (which list the modules), through a [`Storage`] and
//! writes the page. The publisher calls [`write()`] after every change to a channel.

use std::collections::HashMap;
use std::fmt::Write as _;

use jiff::Timestamp;
use wavecast_schema::{
    AttributeMatch, Blake3Hash, Blob, Envelope, Fleet, Manifest, PLATFORM_RELEASE_SIZE_LIMIT,
    Platform, PlatformRelease, RelativePath, Release, RolloutPlan, Rule, RuleAction, Share,
    Simulation, SimulationPlan, format_duration, simulate,
};

use crate::chart::{escape, share_chart};
use crate::error::Result;
use crate::layout;
use crate::live::{self, offered_now, threshold};
use crate::markdown::notes_html;
use crate::measured::{MeasuredAdoption, MeasuredChannel};
use crate::storage::Storage;
use crate::units::format_bytes;

/// Clients in the fleet simulated for each channel's chart.
pub const SIMULATED_CLIENTS: u32 = 10_000;

/// How often the simulated clients poll: every 6 hours.
pub const SIMULATED_POLL_SECONDS: u64 = 6 * 3600;

/// The platform release documents the page describes, by blake3: the manifest names
/// each release's document per platform, and the document lists the modules and
/// delta packs. A release whose document is not here is shown without them.
pub type Documents = HashMap<Blake3Hash, PlatformRelease>;

/// One channel on the page: its manifest, the documents of its releases and, if one
/// could be run, the simulation charted for it.
#[derive(Debug, Clone, Copy)]
pub struct ChannelStatus<'a> {
    /// The channel's current manifest.
    pub manifest: &'a Manifest,
    /// The platform release documents of its releases (others may be there too).
    pub documents: &'a Documents,
    /// The simulated fleet for the chart, usually from [`simulate_channel`].
    pub simulation: Option<&'a Simulation>,
    /// What the access logs showed, when `wavecast stats --html` measured it.
    pub measured: Option<&'a MeasuredChannel>,
}

/// The platform a channel's chart simulates: `any` when some release has it, else the
/// platform most releases are built for.
fn chart_platform(manifest: &Manifest) -> Option<Platform> {
    let mut counts = std::collections::BTreeMap::<&Platform, usize>::new();
    for release in &manifest.releases {
        for platform in release.platforms.keys() {
            *counts.entry(platform).or_default() += 1;
        }
    }
    if counts.keys().any(|platform| platform.as_str() == "any") {
        return "any".parse().ok();
    }
    counts
        .into_iter()
        .max_by_key(|(_, count)| *count)
        .map(|(platform, _)| platform.clone())
}

/// Simulates [`SIMULATED_CLIENTS`] clients polling every [`SIMULATED_POLL_SECONDS`],
/// starting on the oldest live release, over the default span of
/// [`SimulationPlan::for_manifest`]. `None` when the channel has no live release.
pub fn simulate_channel(manifest: &Manifest) -> Option<Simulation> {
    let platform = chart_platform(manifest)?;
    let from = Fleet::oldest_live(manifest, &platform)?;
    let mut fleet = Fleet::new(SIMULATED_CLIENTS, Some(from));
    fleet.platform = platform;
    let plan = SimulationPlan::for_manifest(manifest, SIMULATED_POLL_SECONDS);
    plan.validate().ok()?;
    Some(simulate(manifest, &fleet, &plan))
}

/// Regenerates the page from every readable channel manifest on the site, and the
/// platform release documents they name, and writes it to [`layout::status_page`].
/// Unreadable or malformed channel files are left out, and so are documents that are
/// missing or do not match their reference (signatures are not checked: the page only
/// describes what the site holds).
pub fn write(storage: &dyn Storage, generated_at: Timestamp) -> Result<()> {
    let folder: RelativePath = "channels".parse().expect("`channels` is a valid path");
    let mut manifests: Vec<Manifest> = storage
        .list(&folder)?
        .iter()
        .filter(|path| path.as_str().ends_with(".json"))
        .filter_map(|path| storage.get(path).ok().flatten())
        .filter_map(|bytes| Envelope::parse(&bytes).ok())
        .filter_map(|envelope| Manifest::parse(envelope.manifest.as_bytes()).ok())
        .collect();
    manifests.sort_by(|a, b| a.channel.cmp(&b.channel));
    let mut documents = Documents::new();
    for blob in manifests
        .iter()
        .flat_map(|manifest| &manifest.releases)
        .flat_map(|release| release.platforms.values())
    {
        if !documents.contains_key(&blob.blake3)
            && let Some(document) = read_document(storage, blob)?
        {
            documents.insert(blob.blake3.clone(), document);
        }
    }
    let simulations: Vec<Option<Simulation>> = manifests.iter().map(simulate_channel).collect();
    let measured = storage
        .get(&layout::measured_adoption())?
        .and_then(|bytes| MeasuredAdoption::parse(&bytes));
    let channels: Vec<ChannelStatus<'_>> = manifests
        .iter()
        .zip(&simulations)
        .map(|(manifest, simulation)| ChannelStatus {
            manifest,
            documents: &documents,
            simulation: simulation.as_ref(),
            measured: measured
                .as_ref()
                .and_then(|measured| measured.channels.get(manifest.channel.as_str())),
        })
        .collect();
    let page = render(&channels, generated_at);
    storage.put_bytes(&layout::status_page(), page.as_bytes())
}

/// The platform release document `blob` names, or `None` when the site does not hold
/// exactly it or it does not parse.
fn read_document(storage: &dyn Storage, blob: &Blob) -> Result<Option<PlatformRelease>> {
    if blob.size > PLATFORM_RELEASE_SIZE_LIMIT {
        return Ok(None);
    }
    let path = layout::blob(&blob.blake3, layout::BlobKind::PlatformRelease);
    let Some(bytes) = storage.get(&path)? else {
        return Ok(None);
    };
    if bytes.len() as u64 != blob.size || Blake3Hash::of(&bytes) != blob.blake3 {
        return Ok(None);
    }
    Ok(PlatformRelease::parse(&bytes).ok())
}

const STYLE: &str = "\
body{font:15px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1a1a1a;background:#fafafa;margin:0}
main{max-width:1060px;margin:0 auto;padding:24px}
h1{font-size:26px;margin:0 0 4px}h2{font-size:21px;margin:36px 0 8px;border-bottom:2px solid #1a1a1a;padding-bottom:4px}
h3{font-size:17px;margin:0 0 6px}
section.channel{margin-bottom:40px}
article.release{background:#fff;border:1px solid #ccc;border-radius:6px;padding:14px 18px;margin:14px 0}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:8px 0}
dl.facts dt{font-weight:600;color:#444}dl.facts dd{margin:0}
table{border-collapse:collapse;margin:8px 0;font-size:14px}
th,td{border:1px solid #ccc;padding:4px 10px;text-align:left;vertical-align:top}
th{background:#eee}
td.number{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;border:1px solid #555;border-radius:4px;padding:0 6px;font-size:12px;font-weight:700;letter-spacing:.03em;text-transform:uppercase}
.badge.yanked{background:#fde2e1;border-color:#b3261e;color:#7a1a14}
.badge.paused{background:#fff4d6;border-color:#8a6100;color:#5c4100}
.badge.live{background:#e3f4e8;border-color:#1e6b3a;color:#14502b}
.badge.expired{background:#fde2e1;border-color:#b3261e;color:#7a1a14}
div.notes{background:#f4f4f4;padding:2px 12px;border-radius:4px;margin:6px 0}
figure{margin:12px 0;background:#fff;border:1px solid #ccc;border-radius:6px;padding:8px;overflow-x:auto}
figcaption{font-size:13px;color:#444;margin-top:4px}
svg.chart{max-width:100%;height:auto}
code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:13px}
footer{color:#555;font-size:13px;margin-top:40px}
";

/// Renders the whole page: one section per channel, in the order given.
pub fn render(channels: &[ChannelStatus<'_>], generated_at: Timestamp) -> String {
    let product = channels
        .first()
        .map_or("wavecast site", |channel| channel.manifest.product.as_str());
    let mut page = String::new();
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src '{script_hash}'\">\n\
         <title>{product}: release status</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n<main>\n\
         <header><h1>{product}: release status</h1>\n<p>Generated {generated}. Rollouts as of \
         <time id=\"as-of\" datetime=\"{generated_at}\">{generated_text}</time> (computed when the page is viewed). {count}: {links}</p></header>\n",
        product = escape(product),
        script_hash = live::script_hash(),
        generated = time(generated_at),
        generated_text = generated_at.strftime("%Y-%m-%d %H:%M UTC"),
        count = match channels.len() {
            1 => "1 channel".to_owned(),
            count => format!("{count} channels"),
        },
        links = channels
            .iter()
            .map(|channel| {
                let name = escape(channel.manifest.channel.as_str());
                format!("<a href=\"#channel-{name}\">{name}</a>")
            })
            .collect::<Vec<_>>()
            .join(", "),
    );
    if channels.is_empty() {
        page.push_str("<p>No channel has been published yet.</p>\n");
    }
    for channel in channels {
        render_channel(&mut page, channel, generated_at);
    }
    page.push_str(
        "<footer>Rollouts are decided by each client from its own random install id; \
         no client reports to a server. The charts simulate a synthetic fleet against the \
         manifests as they stand; <code>wavecast stats</code> measures the real rollout \
         from the host's access logs.</footer>\n</main>\n",
    );
    for channel in channels {
        page.push_str(&live::manifest_data(channel.manifest));
    }
    let _ = write!(
        page,
        "<script>{}</script>\n</body>\n</html>\n",
        live::SCRIPT
    );
    page
}

fn render_channel(page: &mut String, channel: &ChannelStatus<'_>, now: Timestamp) {
    let manifest = channel.manifest;
    let name = escape(manifest.channel.as_str());
    let expiry = if manifest.expires_at <= now {
        " <span class=\"badge expired\">expired</span>"
    } else {
        ""
    };
    let _ = write!(
        page,
        "<section class=\"channel\" id=\"channel-{name}\">\n<h2>Channel {name}</h2>\n\
         <dl class=\"facts\"><dt>Serial</dt><dd>{serial}</dd>\
         <dt>Published</dt><dd>{published}</dd>\
         <dt>Expires</dt><dd>{expires}{expiry}</dd>\
         <dt>Releases</dt><dd>{count} live</dd>\
         <dt>Minimum client</dt><dd>wavecast-update {min_client}</dd>\
         <dt>Updater builds</dt><dd>{updaters}</dd>\
         <dt>Signed manifest</dt><dd><a href=\"channels/{name}.json\"><code>channels/{name}.json</code></a></dd></dl>\n",
        min_client = escape(&manifest.min_client_version.to_string()),
        updaters = if manifest.updater.is_empty() {
            "none offered".to_owned()
        } else {
            manifest
                .updater
                .iter()
                .map(|(platform, build)| {
                    format!(
                        "{} {} ({})",
                        escape(platform.as_str()),
                        escape(&build.version.to_string()),
                        format_bytes(build.package.size)
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        },
        serial = manifest.serial,
        published = time(manifest.published_at),
        expires = time(manifest.expires_at),
        count = manifest.releases.len(),
    );
    match channel.simulation {
        Some(simulation) if !simulation.sample_times.is_empty() => {
            let start_version = simulation
                .versions
                .iter()
                .find(|version| version.clients.first().is_some_and(|count| *count > 0))
                .map_or_else(|| "nothing".to_owned(), |version| version.label());
            let _ = writeln!(
                page,
                "<figure>{svg}<figcaption>Simulated fleet: {clients} clients starting on \
                 {from}, each polling every {poll} at a random phase, from {start} to {end}. \
                 Each line is the share of the fleet running a version; the dashed \
                 vertical line marks when this page was generated.</figcaption></figure>",
                svg = share_chart(
                    simulation,
                    &format!(
                        "{}: simulated share of the fleet per version",
                        manifest.channel
                    ),
                    Some(now)
                ),
                clients = thousands(u64::from(simulation.clients)),
                from = escape(&start_version),
                poll = format_duration(SIMULATED_POLL_SECONDS),
                start = time(simulation.sample_times[0]),
                end = time(*simulation.sample_times.last().expect("not empty")),
            );
        }
        _ => page.push_str("<p>No live release to simulate.</p>\n"),
    }
    if let Some(measured) = channel.measured {
        render_measured(page, manifest, measured);
    }
    if !manifest.releases.is_empty() {
        page.push_str(
            "<table class=\"summary\"><thead><tr><th>Version</th><th>Published</th>\
             <th>State</th><th>Platforms</th><th>Offered now</th><th>Download</th></tr></thead><tbody>\n",
        );
        for release in &manifest.releases {
            let _ = writeln!(
                page,
                "<tr><td><a href=\"#{anchor}\">{version}</a></td><td>{published}</td>\
                 <td>{state}</td><td>{platforms}</td><td class=\"offered\" data-offered=\"{key}\">{offered}</td>\
                 <td class=\"number\">{size}</td></tr>",
                anchor = release_anchor(manifest, release),
                key = live::release_key(manifest, release),
                platforms = release
                    .platforms
                    .keys()
                    .map(|platform| escape(platform.as_str()))
                    .collect::<Vec<_>>()
                    .join(", "),
                version = escape(&release.version.to_string()),
                published = time(release.published_at),
                state = state_badge(release),
                offered = escape(&offered_now(release, now)),
                size = download_size(release, channel.documents)
                    .map_or_else(|| "?".to_owned(), format_bytes),
            );
        }
        page.push_str("</tbody></table>\n");
    }
    for release in &manifest.releases {
        render_release(page, manifest, channel.documents, release, now);
    }
    page.push_str("</section>\n");
}

/// The adoption measured from the access logs: its chart, beside the simulated one,
/// and its totals.
fn render_measured(page: &mut String, manifest: &Manifest, measured: &MeasuredChannel) {
    let chart = measured.chart(&format!(
        "{}: measured share of active clients per version",
        manifest.channel
    ));
    let _ = writeln!(
        page,
        "<figure class=\"measured\">{chart}<figcaption>Measured from the host's access logs \
         (<code>wavecast stats</code>; no client sends anything beyond its requests, and no \
         address is kept): {active} active clients, {installs} installs, {incomplete} of \
         {downloads} downloads incomplete, {fallbacks} delta pack fallbacks. Each line is the \
         share of the clients seen in a time bucket that were known to run a version.\
         </figcaption></figure>",
        chart = chart.unwrap_or_default(),
        active = thousands(measured.active_clients),
        installs = thousands(measured.installs),
        incomplete = thousands(measured.incomplete),
        downloads = thousands(measured.downloads),
        fallbacks = thousands(measured.fallbacks),
    );
}

fn release_anchor(manifest: &Manifest, release: &Release) -> String {
    escape(&format!("{}-{}", manifest.channel, release.version))
}

fn state_badge(release: &Release) -> &'static str {
    if release.rollout.yanked {
        "<span class=\"badge yanked\">yanked</span>"
    } else if release.rollout.paused_at.is_some() {
        "<span class=\"badge paused\">paused</span>"
    } else {
        "<span class=\"badge live\">live</span>"
    }
}

/// What a fresh install of the release downloads on its first platform: every
/// module's package. `None` when that platform's document is not available.
fn download_size(release: &Release, documents: &Documents) -> Option<u64> {
    let blob = release.platforms.values().next()?;
    let document = documents.get(&blob.blake3)?;
    Some(
        document
            .modules
            .values()
            .map(|module| module.package.size)
            .sum(),
    )
}

fn render_release(
    page: &mut String,
    manifest: &Manifest,
    documents: &Documents,
    release: &Release,
    now: Timestamp,
) {
    let plan = &release.rollout;
    let _ = write!(
        page,
        "<article class=\"release\" id=\"{anchor}\">\n<h3>{version} {badge}</h3>\n\
         <dl class=\"facts\"><dt>Published</dt><dd>{published}</dd>",
        anchor = release_anchor(manifest, release),
        version = escape(&release.version.to_string()),
        badge = state_badge(release),
        published = time(release.published_at),
    );
    if let Some(paused) = plan.paused_at {
        let _ = write!(page, "<dt>Paused</dt><dd>since {}</dd>", time(paused));
    }
    if plan.yanked {
        page.push_str(
            "<dt>Yanked</dt><dd>offered to nobody; clients on it move to the best release still allowed</dd>",
        );
    }
    let _ = write!(
        page,
        "<dt>Default share</dt><dd>{}</dd>",
        share_text(
            &plan.share,
            plan,
            (&live::release_key(manifest, release), None),
            now
        )
    );
    if let Some(started) = plan.started_at {
        let _ = write!(page, "<dt>Rollout started</dt><dd>{}</dd>", time(started));
    }
    if let Some(cap) = plan.cap {
        let _ = write!(
            page,
            "<dt>Cap</dt><dd>{} (clients with a bucket at or above it are kept off, or moved off)</dd>",
            escape(&cap.to_string())
        );
    }
    let _ = writeln!(
        page,
        "<dt>Salt</dt><dd><code>{}</code></dd></dl>",
        escape(plan.salt.as_str())
    );
    if !release.notes.is_empty() {
        let _ = writeln!(
            page,
            "<div class=\"notes\">{}</div>",
            notes_html(&release.notes)
        );
    }
    if let Some(ramp) = &plan.share.ramp {
        page.push_str(
            "<table class=\"ramp\"><thead><tr><th>After</th><th>At</th><th>Share</th></tr></thead><tbody>",
        );
        for point in ramp.points() {
            let at = plan
                .started_at
                .and_then(|start| {
                    Timestamp::from_second(
                        start.as_second() + i64::try_from(point.after_seconds).ok()?,
                    )
                    .ok()
                })
                .map_or_else(String::new, time);
            let _ = write!(
                page,
                "<tr><td>{}</td><td>{at}</td><td class=\"number\">{}</td></tr>",
                escape(&format_duration(point.after_seconds)),
                escape(&point.basis_points.to_string())
            );
        }
        page.push_str("</tbody></table>\n");
    }
    if !plan.rules.is_empty() {
        page.push_str(
            "<table class=\"rules\"><thead><tr><th>#</th><th>Rule</th><th>Applies to</th><th>Action</th></tr></thead><tbody>\n",
        );
        for (index, rule) in plan.rules.iter().enumerate() {
            let action = match &rule.action {
                RuleAction::Mandatory => "mandatory: installs at once, without asking".to_owned(),
                RuleAction::Exclude => "excluded".to_owned(),
                RuleAction::Share(share) => share_text(
                    share,
                    plan,
                    (&live::release_key(manifest, release), Some(index)),
                    now,
                ),
            };
            let _ = writeln!(
                page,
                "<tr><td class=\"number\">{}</td><td>{}</td><td>{}</td><td>{action}</td></tr>",
                index + 1,
                escape(&rule.name),
                escape(&conditions(rule)),
            );
        }
        page.push_str("</tbody></table>\n");
    }
    page.push_str(
        "<table class=\"modules\"><thead><tr><th>Platform</th><th>Module</th><th>Module version</th>\
         <th>Installs into</th><th>Package</th><th>Unpacked</th></tr></thead><tbody>\n",
    );
    let mut packs = Vec::new();
    for (platform, blob) in &release.platforms {
        let Some(document) = documents.get(&blob.blake3) else {
            let _ = writeln!(
                page,
                "<tr><td>{}</td><td colspan=\"5\">its document <code>{}</code> is not on the site</td></tr>",
                escape(platform.as_str()),
                escape(layout::blob(&blob.blake3, layout::BlobKind::PlatformRelease).as_str()),
            );
            continue;
        };
        for (name, module) in &document.modules {
            let _ = writeln!(
                page,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td>\
                 <td class=\"number\">{}</td><td class=\"number\">{}</td></tr>",
                escape(platform.as_str()),
                escape(name.as_str()),
                escape(&module.version.to_string()),
                escape(module.dest.as_ref().map_or(".", |dest| dest.as_str())),
                format_bytes(module.package.size),
                format_bytes(module.unpacked_size),
            );
        }
        if !document.packs.is_empty() {
            packs.push(format!(
                "{}: {}",
                escape(platform.as_str()),
                document
                    .packs
                    .iter()
                    .map(|pack| format!(
                        "from {} ({})",
                        escape(&pack.from.to_string()),
                        format_bytes(pack.size)
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    page.push_str("</tbody></table>\n");
    if !packs.is_empty() {
        let _ = writeln!(
            page,
            "<p class=\"packs\">Updates in one download (delta packs): {}</p>",
            packs.join("; ")
        );
    }
    page.push_str("</article>\n");
}

/// A share in words, with the threshold in force at `now` for a ramp, in an element
/// the page's script updates (`key` names the release, `rule` the rule whose share
/// it is, if not the default). Escaped.
fn share_text(
    share: &Share,
    plan: &RolloutPlan,
    (key, rule): (&str, Option<usize>),
    now: Timestamp,
) -> String {
    let (started_at, cap) = (plan.started_at, plan.cap);
    let current = threshold(share, started_at, cap, now);
    match &share.ramp {
        Some(ramp) => format!(
            "{} (<span class=\"threshold-now\" data-threshold=\"{key}\"{rule}>{}</span> now)",
            escape(&format!("ramp {ramp}")),
            escape(&current.to_string()),
            rule = rule.map_or_else(String::new, |index| format!(" data-rule=\"{index}\"")),
        ),
        None if cap.is_some_and(|cap| cap < share.basis_points) => {
            escape(&format!("{} (capped to {current})", share.basis_points))
        }
        None => escape(&share.basis_points.to_string()),
    }
}

/// A rule's conditions in the command-line syntax.
fn conditions(rule: &Rule) -> String {
    let mut parts = Vec::new();
    if let Some(version) = &rule.from.at_least {
        parts.push(format!("from >= {version}"));
    }
    if let Some(version) = &rule.from.below {
        parts.push(format!("from < {version}"));
    }
    for (key, condition) in &rule.attributes {
        parts.push(match condition {
            AttributeMatch::Equals(value) => format!("{key} = {value}"),
            AttributeMatch::OneOf(values) => format!(
                "{key} in {}",
                values.iter().cloned().collect::<Vec<_>>().join("|")
            ),
            AttributeMatch::Prefix(prefix) => format!("{key} ^= {prefix}"),
            AttributeMatch::Pattern(pattern) => format!("{key} ~ {}", pattern.as_str()),
        });
    }
    if parts.is_empty() {
        "every client".to_owned()
    } else {
        parts.join("; ")
    }
}

/// An instant as a `<time>` element, to the minute in UTC.
fn time(at: Timestamp) -> String {
    format!(
        "<time datetime=\"{at}\">{}</time>",
        at.strftime("%Y-%m-%d %H:%M UTC")
    )
}

/// `512 B`, `1.5 KiB`, `324.0 MiB`: binary units with one decimal, as
/// `wavecast-update` prints sizes.
fn thousands(count: u64) -> String {
    let digits = count.to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = "2026-11-22T12:00:00Z";

    /// The document of `version` on `any`: one module `app`, and a delta pack from
    /// 1.0.0 for the later releases.
    fn document(version: &str) -> PlatformRelease {
        let hash = Blake3Hash::of(version.as_bytes());
        let packs = if version == "1.0.0" {
            String::new()
        } else {
            format!(r#","packs":[{{"from":"1.0.0","size":4321,"blake3":"{hash}"}}]"#)
        };
        let json = format!(
            r#"{{"format":2,"version":"{version}","platform":"any","modules":{{"app":{{
                "version":"{version}","unpacked_size":4567890,
                "package":{{"size":1234567,"blake3":"{hash}"}},
                "index":{{"size":321,"json_size":1000,"blake3":"{hash}"}},
                "copies":{{"size":2000000,"blake3":"{hash}"}}}}}}{packs}}}"#
        );
        PlatformRelease::parse(json.as_bytes()).unwrap()
    }

    /// A channel with 1.0.0 at 100 % and 1.1.0 ramping over 3 days from `2026-11-21`,
    /// with rules, a cap and hostile notes, and the documents of both releases.
    fn manifest() -> (Manifest, Documents) {
        let mut documents = Documents::new();
        let mut release = |version: &str, rollout: &str| {
            let document = document(version).to_json();
            let blob = Blake3Hash::of(&document);
            documents.insert(blob.clone(), PlatformRelease::parse(&document).unwrap());
            format!(
                r#"{{"version": "{version}", "published_at": "2026-11-21T00:00:00Z",
                    "notes": "Notes <script>alert('{version}')</script> & more",
                    "platforms": {{"any": {{"size": {size}, "blake3": "{blob}"}}}},
                    "rollout": {rollout}}}"#,
                size = document.len(),
            )
        };
        let newer = release(
            "1.1.0",
            r#"{"salt": "00112233445566778899aabbccddeeff", "basis_points": 10000,
                "ramp": [{"after_seconds": 0, "basis_points": 0}, {"after_seconds": 259200, "basis_points": 10000}],
                "started_at": "2026-11-21T00:00:00Z", "cap": 8000,
                "rules": [{"name": "legacy<i>", "from": {"below": "1.0.0"}, "action": "mandatory"},
                          {"name": "lab", "attributes": {"server": {"prefix": "lab-"}}, "action": "exclude"}]}"#,
        );
        let older = release(
            "1.0.0",
            r#"{"salt": "ffeeddccbbaa99887766554433221100", "basis_points": 10000}"#,
        );
        let json = format!(
            r#"{{"format": 2, "product": "demo<b>", "channel": "stable", "serial": 4,
                "published_at": "2026-11-21T00:00:00Z", "expires_at": "2026-12-21T00:00:00Z",
                "min_client_version": "0.1.0", "releases": [{newer}, {older}]}}"#,
        );
        (Manifest::parse(json.as_bytes()).unwrap(), documents)
    }

    fn page() -> String {
        let (manifest, documents) = manifest();
        let simulation = simulate_channel(&manifest).unwrap();
        render(
            &[ChannelStatus {
                manifest: &manifest,
                documents: &documents,
                simulation: Some(&simulation),
                measured: None,
            }],
            NOW.parse().unwrap(),
        )
    }

    #[test]
    fn manifest_text_is_escaped() {
        let page = page();
        assert_eq!(
            page.matches("<script>").count(),
            1,
            "the page's own script only"
        );
        assert_eq!(
            page.matches("<script type=\"application/json\" class=\"wavecast-manifest\"")
                .count(),
            1,
            "one channel's data"
        );
        assert_eq!(page.matches("<script").count(), 2);
        assert!(
            page.contains("Notes &lt;script&gt;alert('1.1.0')&lt;/script&gt; &amp; more"),
            "notes rendered with their HTML as text"
        );
        assert!(
            page.contains("Notes \\u003cscript>alert('1.1.0')\\u003c/script>"),
            "the embedded manifest cannot close its element"
        );
        assert!(page.contains(&format!("script-src '{}'", live::script_hash())));
        assert!(page.contains("demo&lt;b&gt;: release status"));
        assert!(page.contains("legacy&lt;i&gt;") && !page.contains("legacy<i>"));
    }

    #[test]
    fn the_page_describes_channels_releases_and_rollouts() {
        let page = page();
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(page.contains("<h2>Channel stable</h2>"));
        assert!(page.contains("href=\"channels/stable.json\""));
        assert!(page.contains("<h3>1.1.0 ") && page.contains("<h3>1.0.0 "));
        // Half-way through a 3-day ramp, capped at 80 %.
        assert!(
            page.contains("ramp 0%@0s,100%@3d (<span class=\"threshold-now\" data-threshold=\"stable 1.1.0\">50%</span> now)"),
            "threshold now"
        );
        assert!(
            page.contains("data-offered=\"stable 1.1.0\">50% of clients, ramping to 100% when no rule matches (2 rules)<"),
            "offered now"
        );
        assert!(page.contains("<dt>Minimum client</dt><dd>wavecast-update 0.1.0</dd>"));
        assert!(page.contains("<dt>Updater builds</dt><dd>none offered</dd>"));
        assert!(page.contains("<th>Platforms</th>"));
        assert!(page.contains("<dt>Cap</dt><dd>80%"));
        assert!(page.contains("from &lt; 1.0.0") && page.contains("server ^= lab-"));
        assert!(page.contains("mandatory: installs at once") && page.contains("excluded"));
        assert!(
            page.contains("1.2 MiB") && page.contains("4.4 MiB"),
            "module sizes"
        );
        assert!(
            page.contains("delta packs): any: from 1.0.0 (4.2 KiB)"),
            "packs"
        );
        assert_eq!(page.matches("<svg").count(), 1);
        assert!(page.contains("10,000 clients starting on 1.0.0"));
        for link in page.split("href=\"").skip(1) {
            let link = link.split('"').next().unwrap();
            assert!(
                !link.starts_with('/') && !link.contains("://"),
                "relative links only: {link}"
            );
        }
    }

    #[test]
    fn paused_yanked_and_expired_are_shown_in_words() {
        let (mut manifest, documents) = manifest();
        manifest.releases[0].rollout.paused_at = Some("2026-11-22T00:00:00Z".parse().unwrap());
        manifest.releases[1].rollout.yanked = true;
        let page = render(
            &[ChannelStatus {
                manifest: &manifest,
                documents: &documents,
                simulation: None,
                measured: None,
            }],
            "2027-01-01T00:00:00Z".parse().unwrap(),
        );
        assert!(page.contains("nobody new (paused)") && page.contains("nobody (yanked)"));
        assert!(page.contains("badge expired"));
        assert!(page.contains("No live release to simulate."));
    }

    #[test]
    fn no_channels_is_a_valid_page() {
        let page = render(&[], NOW.parse().unwrap());
        assert!(page.contains("No channel has been published yet."));
        assert!(page.ends_with("</html>\n"));
    }

    #[test]
    fn write_reads_every_channel_and_skips_broken_ones() {
        let dir = tempfile::tempdir().unwrap();
        let storage = crate::FsStorage::new(dir.path());
        let (manifest, documents) = manifest();
        for document in documents.values() {
            let bytes = document.to_json();
            storage
                .put_bytes(
                    &layout::blob(&Blake3Hash::of(&bytes), layout::BlobKind::PlatformRelease),
                    &bytes,
                )
                .unwrap();
        }
        // One release of beta names a document the site does not hold.
        let mut beta = manifest.clone();
        beta.releases[1].platforms.get_mut("any").unwrap().blake3 = Blake3Hash::of(b"gone");
        beta.channel = "beta".parse().unwrap();
        for manifest in [&manifest, &beta] {
            let envelope = Envelope::new(
                String::from_utf8(manifest.to_json()).unwrap(),
                vec!["unchecked".into()],
            );
            storage
                .put_bytes(
                    &layout::channel_manifest(&manifest.channel),
                    &envelope.to_json(),
                )
                .unwrap();
        }
        storage
            .put_bytes(&"channels/broken.json".parse().unwrap(), b"{not json")
            .unwrap();
        write(&storage, NOW.parse().unwrap()).unwrap();
        let page =
            String::from_utf8(storage.get(&layout::status_page()).unwrap().unwrap()).unwrap();
        let beta_at = page.find("<h2>Channel beta</h2>").unwrap();
        let stable_at = page.find("<h2>Channel stable</h2>").unwrap();
        assert!(beta_at < stable_at, "channels in name order");
        assert!(!page.contains("broken"));
        assert_eq!(page.matches("<svg").count(), 2);
        assert_eq!(
            page.matches("4.4 MiB").count(),
            3,
            "modules read from the documents"
        );
        assert_eq!(page.matches("is not on the site").count(), 1, "{page}");
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(thousands(10_000), "10,000");
        assert_eq!(thousands(1_000_000), "1,000,000");
        assert_eq!(thousands(999), "999");
    }
}
