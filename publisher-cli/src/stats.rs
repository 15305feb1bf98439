//! `wavecast stats`: reads a site's access logs into the measured rollout (installs
//! per release and origin, active clients, incomplete downloads, pack fallbacks and
//! the fleet's versions), per channel and time bucket; `--fail-if` turns a figure
//! into an exit code for a pipeline.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Args;
use wavecast_schema::parse_duration;
use wavecast_site::Storage;
use wavecast_site::measured::{MeasuredAdoption, MeasuredBucket, MeasuredChannel};
use wavecast_stats::{Breach, Condition, Figures, LogFormat, Report, SiteMap, Tally, read_log};

use crate::args::{S3Args, UmaskArg};
use crate::output::{self, ThresholdCrossed, UsageError};

#[derive(Debug, Args)]
pub(crate) struct StatsArgs {
    /// The site the logs are of, a folder or `s3://BUCKET/PREFIX`: its manifests and
    /// release documents say which release each requested file belongs to.
    #[arg(long, value_name = "SITE")]
    site: String,
    /// Access logs, oldest first (`-` for standard input); `.gz` files are
    /// decompressed.
    #[arg(value_name = "LOG", required = true)]
    logs: Vec<PathBuf>,
    /// The logs' format: `combined` (nginx, apache), `s3` (S3 server access logs) or
    /// `cloudfront` (standard logs) [default: from each log's first line].
    #[arg(long, value_name = "FORMAT")]
    format: Option<LogFormat>,
    /// The width of each time bucket: `1h`, `6h`, `1d`.
    #[arg(long, value_name = "DURATION", default_value = "1d", value_parser = parse_duration)]
    bucket: u64,
    /// Only these channels (repeat it) [default: every channel].
    #[arg(long = "channel", value_name = "CHANNEL")]
    channels: Vec<String>,
    /// Exit with 3 when this holds on a channel's totals: `METRIC>N`, `METRIC>N%`
    /// (also `>=`, `<`, `<=`). Metrics: incomplete, partial, retries (shares of
    /// downloads), fallbacks (of pack downloads), installs (of active clients),
    /// active (a count). Repeat it for more; any one holding fails.
    #[arg(long = "fail-if", value_name = "CONDITION", value_parser = parse_condition)]
    fail_if: Vec<Condition>,
    /// Print CSV: `channel,bucket,metric,version,from,value`, one figure a row
    /// (bucket `total` for the totals).
    #[arg(long, conflicts_with = "json")]
    csv: bool,
    /// Print the JSON document (`schema_version` 1): per channel, totals and buckets.
    #[arg(long)]
    json: bool,
    /// Also keep the measured adoption on the site (`SITE/stats.json`, counts only)
    /// and rewrite its status page (`index.html`) to show it beside the simulated
    /// curve; later publishes keep showing it.
    #[arg(long)]
    html: bool,
    #[command(flatten)]
    umask: UmaskArg,
    #[command(flatten)]
    s3: S3Args,
}

fn parse_condition(text: &str) -> Result<Condition, String> {
    text.parse().map_err(|error: wavecast_stats::Error| {
        // The error's message names the text already; clap adds the flag.
        match error {
            wavecast_stats::Error::InvalidCondition { problem, .. } => problem,
            other => other.to_string(),
        }
    })
}

/// `wavecast stats`.
pub(crate) fn run(args: &StatsArgs) -> anyhow::Result<()> {
    let storage: Box<dyn Storage> = if args.site.starts_with("s3://") {
        Box::new(args.s3.storage(&args.site)?)
    } else {
        Box::new(args.umask.storage(&args.site))
    };
    let map = match SiteMap::load(storage.as_ref()) {
        Err(wavecast_stats::Error::NoChannels) => bail!(UsageError(format!(
            "the site `{}` has no channel manifest (`channels/*.json`)",
            args.site
        ))),
        other => other.with_context(|| format!("failed to read the site `{}`", args.site))?,
    };
    for channel in &args.channels {
        if !map.channels.iter().any(|known| known.as_str() == channel) {
            bail!(UsageError(format!(
                "the site `{}` has no channel `{channel}`",
                args.site
            )));
        }
    }
    if map.missing_documents > 0 {
        output::warn(&format!(
            "{} release documents the manifests name are missing from the site; their blobs are not counted",
            map.missing_documents
        ));
    }
    let mut salt = [0u8; 32];
    getrandom::fill(&mut salt).map_err(|error| anyhow::anyhow!("no random salt: {error}"))?;
    let mut tally = Tally::new(&map, args.bucket, salt);
    let started = Instant::now();
    let (mut lines, mut bytes) = (0u64, 0u64);
    let mut formats = Vec::new();
    for log in &args.logs {
        let name = log.display().to_string();
        let mut reader = open(log)?;
        let read = read_log(&mut *reader, &name, args.format, &mut tally)?;
        lines += read.lines;
        bytes += read.bytes;
        if !formats.contains(&read.format) {
            formats.push(read.format);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut report = tally.finish();
    if !args.channels.is_empty() {
        report
            .channels
            .retain(|channel| args.channels.contains(&channel.channel));
    }
    if !args.json {
        output::status(&format!(
            "read {lines} lines ({}) of {} logs in {elapsed:.2}s: {} lines/s",
            output::bytes(bytes),
            formats
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" and "),
            per_second(lines, elapsed)
        ));
    }
    if args.html {
        let now = crate::args::now()?;
        storage.put_bytes(
            &wavecast_site::layout::measured_adoption(),
            &measured(&report, now).to_json(),
        )?;
        wavecast_site::status_page::write(storage.as_ref(), now)?;
        if !args.json {
            output::status(&format!(
                "wrote the measured adoption to `stats.json` and `index.html` of {}",
                args.site
            ));
        }
    }
    let breaches: Vec<Breach> = args
        .fail_if
        .iter()
        .flat_map(|condition| condition.breaches(&report))
        .collect();
    let text = if args.json {
        let mut document = serde_json::to_value(&report)?;
        document["alerts"] = breaches
            .iter()
            .map(|breach| {
                serde_json::json!({
                    "channel": breach.channel,
                    "condition": breach.condition,
                    "observed": breach.observed,
                })
            })
            .collect();
        document["read"] = serde_json::json!({
            "lines": lines,
            "bytes": bytes,
            "seconds": elapsed,
        });
        output::json(&document);
        String::new()
    } else if args.csv {
        csv(&report)
    } else {
        text(&report)
    };
    output::text(&text)?;
    if !breaches.is_empty() {
        for breach in &breaches {
            output::alert(&format!(
                "channel `{}`: {} ({})",
                breach.channel, breach.observed, breach.condition
            ));
        }
        bail!(ThresholdCrossed(breaches.len()));
    }
    Ok(())
}

/// The report as the status page keeps it: counts per channel and bucket.
fn measured(report: &Report, now: jiff::Timestamp) -> MeasuredAdoption {
    MeasuredAdoption {
        measured_at: now,
        channels: report
            .channels
            .iter()
            .map(|channel| {
                let totals = &channel.totals;
                (
                    channel.channel.clone(),
                    MeasuredChannel {
                        active_clients: totals.active_clients,
                        installs: totals.installs.iter().map(|count| count.count).sum(),
                        downloads: totals.downloads,
                        incomplete: totals.incomplete,
                        fallbacks: totals.fallbacks,
                        buckets: channel
                            .buckets
                            .iter()
                            .map(|bucket| MeasuredBucket {
                                start: bucket.start,
                                active_clients: bucket.figures.active_clients,
                                versions: bucket
                                    .figures
                                    .versions
                                    .iter()
                                    .map(|count| (count.version.clone(), count.clients))
                                    .collect(),
                            })
                            .collect(),
                    },
                )
            })
            .collect(),
    }
}

/// The reader of one log: standard input for `-`, decompressed for `.gz`.
fn open(log: &PathBuf) -> anyhow::Result<Box<dyn BufRead>> {
    const BUFFER: usize = 256 * 1024;
    if log.as_os_str() == "-" {
        return Ok(Box::new(BufReader::with_capacity(BUFFER, std::io::stdin())));
    }
    let file = fs_err::File::open(log).map_err(|error| {
        if error.kind() == std::io::ErrorKind::NotFound {
            anyhow::Error::new(UsageError(error.to_string()))
        } else {
            error.into()
        }
    })?;
    if log.extension().is_some_and(|extension| extension == "gz") {
        Ok(Box::new(BufReader::with_capacity(
            BUFFER,
            flate2::read::MultiGzDecoder::new(file),
        )))
    } else {
        Ok(Box::new(BufReader::with_capacity(BUFFER, file)))
    }
}

/// `1234567` lines in `2.0` s → `617,284`.
fn per_second(lines: u64, seconds: f64) -> String {
    if seconds <= 0.0 {
        return "-".to_owned();
    }
    let rate = (lines as f64 / seconds).round() as u64;
    let digits = rate.to_string();
    let mut text = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            text.push(',');
        }
        text.push(digit);
    }
    text
}

fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        "-".to_owned()
    } else {
        format!("{:.1}%", part as f64 * 100.0 / whole as f64)
    }
}

/// `1.2.0: fresh 80, from 1.0.0 60; 1.1.0: …`, newest release first.
fn installs_text(figures: &Figures) -> String {
    let mut versions: Vec<&str> = figures
        .installs
        .iter()
        .map(|count| count.version.as_str())
        .collect();
    versions.dedup();
    versions.sort_by(|a, b| compare_versions(b, a));
    versions.dedup();
    if versions.is_empty() {
        return "none".to_owned();
    }
    versions
        .iter()
        .map(|version| {
            let origins: Vec<String> = figures
                .installs
                .iter()
                .filter(|count| count.version == *version)
                .map(|count| match count.from.as_str() {
                    "fresh" | "unknown" => format!("{} {}", count.from, count.count),
                    from => format!("from {from} {}", count.count),
                })
                .collect();
            format!("{version}: {}", origins.join(", "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Orders versions by semver (`unknown` last).
fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    match (semver::Version::parse(a), semver::Version::parse(b)) {
        (Ok(a), Ok(b)) => a.cmp(&b),
        (Ok(_), Err(_)) => std::cmp::Ordering::Greater,
        (Err(_), Ok(_)) => std::cmp::Ordering::Less,
        (Err(_), Err(_)) => a.cmp(b),
    }
}

/// The versions seen anywhere in a channel's figures, newest first, `unknown` last.
fn versions_of<'a>(figures: impl Iterator<Item = &'a Figures>) -> Vec<String> {
    let mut versions: Vec<String> = figures
        .flat_map(|figures| figures.versions.iter().map(|count| count.version.clone()))
        .collect();
    versions.sort_by(|a, b| compare_versions(b, a));
    versions.dedup();
    versions
}

/// The figures for people: per channel the totals in sentences, then a table of the
/// buckets with the share of active clients on each version.
fn text(report: &Report) -> String {
    let mut text = String::new();
    let time = |at: jiff::Timestamp| at.strftime("%Y-%m-%d %H:%M").to_string();
    if let (Some(first), Some(last)) = (report.first, report.last) {
        let _ = writeln!(
            text,
            "requests from {} to {} UTC, {} of {} lines for this site's files",
            time(first),
            time(last),
            report.site_requests,
            report.lines
        );
    } else {
        let _ = writeln!(
            text,
            "no request for this site's files in {} lines",
            report.lines
        );
    }
    for channel in &report.channels {
        let totals = &channel.totals;
        let _ = writeln!(text, "\nchannel {}", channel.channel);
        let _ = writeln!(
            text,
            "  active clients  {} ({} polls)",
            totals.active_clients, totals.polls
        );
        let _ = writeln!(text, "  installs        {}", installs_text(totals));
        let _ = writeln!(
            text,
            "  downloads       {}, incomplete {} ({}): {} partial bodies, {} retries",
            totals.downloads,
            totals.incomplete,
            percent(totals.incomplete, totals.downloads),
            totals.partial_bodies,
            totals.retries
        );
        let _ = writeln!(
            text,
            "  delta packs     {}, fallbacks {} ({})",
            totals.pack_downloads,
            totals.fallbacks,
            percent(totals.fallbacks, totals.pack_downloads)
        );
        let on: Vec<String> = versions_of(std::iter::once(totals))
            .iter()
            .map(|version| {
                let clients = totals.clients_on(version);
                format!(
                    "{version} {clients} ({})",
                    percent(clients, totals.active_clients)
                )
            })
            .collect();
        let _ = writeln!(
            text,
            "  last seen on    {}",
            if on.is_empty() {
                "-".to_owned()
            } else {
                on.join(", ")
            }
        );
        if channel.buckets.is_empty() {
            continue;
        }
        let versions = versions_of(channel.buckets.iter().map(|bucket| &bucket.figures));
        let widths: Vec<usize> = versions.iter().map(|v| v.len().max(7)).collect();
        let _ = write!(
            text,
            "\n  {:<16}  {:>7}  {:>8}  {:>10}  {:>9}",
            "time (UTC)", "active", "installs", "incomplete", "fallbacks"
        );
        for (version, width) in versions.iter().zip(&widths) {
            let _ = write!(text, "  {version:>width$}");
        }
        text.push('\n');
        for bucket in &channel.buckets {
            let figures = &bucket.figures;
            let installs: u64 = figures.installs.iter().map(|count| count.count).sum();
            let _ = write!(
                text,
                "  {:<16}  {:>7}  {:>8}  {:>10}  {:>9}",
                time(bucket.start),
                figures.active_clients,
                installs,
                figures.incomplete,
                figures.fallbacks
            );
            for (version, width) in versions.iter().zip(&widths) {
                let share = percent(figures.clients_on(version), figures.active_clients);
                let _ = write!(text, "  {share:>width$}");
            }
            text.push('\n');
        }
    }
    text
}

/// One figure a row: `channel,bucket,metric,version,from,value`.
fn csv(report: &Report) -> String {
    let mut text = String::from("channel,bucket,metric,version,from,value\n");
    for channel in &report.channels {
        let rows = std::iter::once(("total".to_owned(), &channel.totals)).chain(
            channel
                .buckets
                .iter()
                .map(|bucket| (bucket.start.to_string(), &bucket.figures)),
        );
        for (bucket, figures) in rows {
            let mut row = |metric: &str, version: &str, from: &str, value: u64| {
                let _ = writeln!(
                    text,
                    "{},{bucket},{metric},{version},{from},{value}",
                    channel.channel
                );
            };
            row("active_clients", "", "", figures.active_clients);
            row("polls", "", "", figures.polls);
            for count in &figures.installs {
                row("installs", &count.version, &count.from, count.count);
            }
            row("downloads", "", "", figures.downloads);
            row("incomplete", "", "", figures.incomplete);
            row("partial_bodies", "", "", figures.partial_bodies);
            row("retries", "", "", figures.retries);
            row("pack_downloads", "", "", figures.pack_downloads);
            row("fallbacks", "", "", figures.fallbacks);
            for count in &figures.versions {
                row("clients_on", &count.version, "", count.clients);
            }
        }
    }
    text
}
