//! `wavecast simulate`: replays a channel's rollout over a synthetic fleet and prints
//! the share of the fleet on each version over time, and how fast each was installed.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Args;
use jiff::Timestamp;
use wavecast_schema::{
    AttributeMix, ChannelName, DEFAULT_MAX_SECONDS, Envelope, Fleet, Manifest, Platform,
    Simulation, SimulationPlan, format_duration, parse_duration, parse_version, simulate,
};
use wavecast_site::{FsStorage, Storage, layout};

use crate::output::{self, UsageError};

#[derive(Debug, Args)]
pub(crate) struct SimulateArgs {
    /// The site folder holding the channel.
    #[arg(long, value_name = "SITE")]
    site: PathBuf,
    /// The channel to simulate.
    #[arg(long, default_value = "stable")]
    channel: ChannelName,
    /// Number of simulated clients.
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    clients: u32,
    /// How often each client polls: `6h`, `30m`, `1d`.
    #[arg(long, value_name = "DURATION", default_value = "6h", value_parser = parse_duration)]
    poll: u64,
    /// JSON file spreading client attributes, e.g. `{"region": {"eu": 0.3, "us": 0.7}}`.
    #[arg(long, value_name = "FILE")]
    attr_mix: Option<PathBuf>,
    /// The version every client runs at the start, or `none` for fresh installs
    /// (default: the oldest live release).
    #[arg(long, value_name = "VERSION")]
    from_version: Option<String>,
    /// When the simulation starts, RFC 3339 (default: the newest release's rollout
    /// start, or its publication).
    #[arg(long, value_name = "TIME")]
    start: Option<Timestamp>,
    /// How long to simulate (default: until every ramp has finished, plus one poll
    /// interval, at most 30 days).
    #[arg(long, value_parser = parse_duration)]
    duration: Option<u64>,
    /// Time between two rows of output, and the bin of the install rates.
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_duration)]
    step: u64,
    /// The platform the clients run on.
    #[arg(long, value_name = "TRIPLE", default_value = "any")]
    platform: Platform,
    /// Seed of the synthetic fleet's install ids, phases and attributes.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print CSV (`time,<version>,…` in percent) instead of a table.
    #[arg(long, conflicts_with = "json")]
    csv: bool,
    /// Print JSON instead of a table: per version, its installs and rates, and its
    /// share of the fleet at each sample time.
    #[arg(long)]
    json: bool,
    /// Also write the chart of the shares over time as an SVG file.
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
}

/// `wavecast simulate`.
pub(crate) fn run(args: &SimulateArgs) -> anyhow::Result<()> {
    let storage = FsStorage::new(&args.site);
    let path = layout::channel_manifest(&args.channel);
    let Some(bytes) = storage.get(&path)? else {
        bail!(UsageError(format!(
            "the site `{}` has no channel `{}` (no `{path}`)",
            args.site.display(),
            args.channel
        )));
    };
    let envelope = Envelope::parse(&bytes).with_context(|| {
        format!(
            "failed to read `{}`",
            args.site.join(path.as_str()).display()
        )
    })?;
    let manifest = Manifest::parse(envelope.manifest.as_bytes()).with_context(|| {
        format!(
            "failed to read `{}`",
            args.site.join(path.as_str()).display()
        )
    })?;

    let from = match args.from_version.as_deref() {
        Some("none") => None,
        Some(text) => Some(parse_version(text).map_err(|error| UsageError(error.to_string()))?),
        None => Some(
            Fleet::oldest_live(&manifest, &args.platform).ok_or_else(|| {
                UsageError(format!(
                    "channel `{}` has no live release for platform `{}`; pass --from-version",
                    args.channel, args.platform
                ))
            })?,
        ),
    };
    let mut fleet = Fleet::new(args.clients, from);
    fleet.seed = args.seed;
    fleet.platform = args.platform.clone();
    if let Some(file) = &args.attr_mix {
        let bytes = fs_err::read(file)?;
        fleet.attribute_mix = AttributeMix::from_json(&bytes)
            .map_err(|error| UsageError(format!("{}: {error}", file.display())))?;
    }
    let plan = plan(&manifest, args)?;

    let started = Instant::now();
    let simulation = simulate(&manifest, &fleet, &plan);
    output::status(&format!(
        "simulated {} clients of channel `{}` polling every {} from {} to {} in {:.2}s",
        args.clients,
        args.channel,
        format_duration(args.poll),
        plan.start,
        plan.end,
        started.elapsed().as_secs_f64()
    ));
    let shown: Vec<usize> = (0..simulation.versions.len())
        .filter(|index| {
            let version = &simulation.versions[*index];
            version.installed > 0 || version.clients.iter().any(|count| *count > 0)
        })
        .collect();
    let text = if args.json {
        format!("{:#}\n", json(&simulation, &shown))
    } else if args.csv {
        output::status(&rates(&simulation, &shown));
        csv(&simulation, &shown)
    } else {
        format!(
            "{}\n{}\n",
            table(&simulation, &shown),
            rates(&simulation, &shown)
        )
    };
    if let Some(file) = &args.svg {
        let title = format!(
            "{}: {} simulated clients polling every {}",
            args.channel,
            args.clients,
            format_duration(args.poll)
        );
        fs_err::write(
            file,
            wavecast_site::chart::share_chart(&simulation, &title, None),
        )?;
    }
    output::text(&text)
}

/// The plan from the arguments, defaulting to [`SimulationPlan::for_manifest`].
fn plan(manifest: &Manifest, args: &SimulateArgs) -> anyhow::Result<SimulationPlan> {
    let mut plan = SimulationPlan::for_manifest(manifest, args.poll);
    plan.step_seconds = args.step;
    let seconds = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
    let at = |second: i64| Timestamp::from_second(second).unwrap_or(Timestamp::MAX);
    if let Some(start) = args.start {
        let start = at(start.as_second());
        // Keep the default end (every ramp finished), within one poll and 30 days.
        let earliest = start.as_second().saturating_add(seconds(args.poll));
        let latest = start
            .as_second()
            .saturating_add(seconds(DEFAULT_MAX_SECONDS));
        plan.end = at(plan.end.as_second().clamp(earliest, latest.max(earliest)));
        plan.start = start;
    }
    if let Some(duration) = args.duration {
        plan.end = at(plan.start.as_second().saturating_add(seconds(duration)));
    }
    plan.validate()
        .map_err(|error| UsageError(error.to_string()))?;
    Ok(plan)
}

/// The `--json` document: the sample times, and per version its share at each (in
/// percent) and its install rates.
fn json(simulation: &Simulation, shown: &[usize]) -> serde_json::Value {
    let versions: Vec<serde_json::Value> = shown
        .iter()
        .map(|index| {
            let version = &simulation.versions[*index];
            let shares: Vec<f64> = (0..simulation.sample_times.len())
                .map(|sample| simulation.share_percent(*index, sample))
                .collect();
            serde_json::json!({
                "version": version.version.as_ref().map(ToString::to_string),
                "installed": version.installed,
                "peak_per_hour": version.peak_per_hour,
                "mean_per_hour": version.mean_per_hour,
                "share_percent": shares,
            })
        })
        .collect();
    serde_json::json!({
        "schema_version": 1,
        "clients": simulation.clients,
        "sample_times": simulation.sample_times,
        "versions": versions,
    })
}

/// One row per sample, one column per version, in percent.
fn table(simulation: &Simulation, shown: &[usize]) -> String {
    let labels: Vec<String> = shown
        .iter()
        .map(|index| simulation.versions[*index].label())
        .collect();
    let widths: Vec<usize> = labels.iter().map(|label| label.len().max(7)).collect();
    let mut text = format!("{:<17}", "time (UTC)");
    for (label, width) in labels.iter().zip(&widths) {
        let _ = write!(text, "  {label:>width$}");
    }
    text.push('\n');
    for (sample, time) in simulation.sample_times.iter().enumerate() {
        let _ = write!(text, "{:<17}", time.strftime("%Y-%m-%d %H:%M"));
        for (index, width) in shown.iter().zip(&widths) {
            let share = format!("{:.1}%", simulation.share_percent(*index, sample));
            let _ = write!(text, "  {share:>width$}");
        }
        text.push('\n');
    }
    text
}

/// `time,<version>,…` then one row per sample, shares in percent.
fn csv(simulation: &Simulation, shown: &[usize]) -> String {
    let mut text = String::from("time");
    for index in shown {
        let _ = write!(text, ",{}", simulation.versions[*index].label());
    }
    text.push('\n');
    for (sample, time) in simulation.sample_times.iter().enumerate() {
        let _ = write!(text, "{time}");
        for index in shown {
            let _ = write!(text, ",{:.3}", simulation.share_percent(*index, sample));
        }
        text.push('\n');
    }
    text
}

/// Per version: installs, peak and mean installs per hour, and their ratio.
fn rates(simulation: &Simulation, shown: &[usize]) -> String {
    let mut text = format!(
        "{:<12}  {:>10}  {:>12}  {:>12}  {:>9}\n",
        "version", "installed", "peak/hour", "mean/hour", "peak/mean"
    );
    for index in shown {
        let version = &simulation.versions[*index];
        let ratio = version
            .peak_to_mean()
            .map_or_else(|| "-".to_owned(), |ratio| format!("{ratio:.2}"));
        let _ = writeln!(
            text,
            "{:<12}  {:>10}  {:>12.1}  {:>12.1}  {ratio:>9}",
            version.label(),
            version.installed,
            version.peak_per_hour,
            version.mean_per_hour
        );
    }
    text.trim_end().to_owned()
}
