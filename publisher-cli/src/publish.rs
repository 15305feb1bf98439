//! `wavecast publish`: add a release folder to a channel, and report what was
//! packaged, compressed and patched.

use std::path::{Path, PathBuf};

use anyhow::bail;
use clap::Args;
use semver::Version;
use wavecast_publisher::package::ModuleSpec;
use wavecast_publisher::publish::{self, ModuleSummary, PublishOptions, PublishReport};
use wavecast_publisher::rollout_plan;
use wavecast_schema::{ModuleKind, Platform};

use crate::args::{ChannelArg, PlanArgs, ShareArgs, SiteArgs, manifest_path, now};
use crate::client_floor::{self, ClientFloorArg};
use crate::output::{self, UsageError};

#[derive(Debug, Args)]
pub(crate) struct PublishArgs {
    /// The release folder: the exact tree clients will have installed.
    release_dir: PathBuf,
    /// The release's semantic version.
    #[arg(long)]
    version: Version,
    #[command(flatten)]
    channel: ChannelArg,
    #[command(flatten)]
    share: ShareArgs,
    #[command(flatten)]
    plan: PlanArgs,
    /// Target triple the release is for, or `any` for every platform.
    #[arg(long, default_value = "any")]
    platform: Platform,
    /// Split the release into modules, each a subfolder: `--module core=bin
    /// --module assets=share`. Default: the whole folder as one module `app`
    /// (unless --image is given).
    #[arg(long = "module", value_name = "NAME=DIR")]
    modules: Vec<ModuleSpec>,
    /// Publish the file FILE of the release folder as an image module: clients write
    /// it whole into the inactive of two slots (A/B) and activate it with their
    /// on-activate hook, instead of unpacking it into the release tree. Its package
    /// is its zstd copy, and patches from earlier images are built as for any file.
    /// Every other file must belong to a --module.
    #[arg(long, value_name = "NAME=FILE", value_parser = ModuleSpec::image)]
    image: Option<ModuleSpec>,
    /// Release notes shown to users before they install.
    #[arg(long, conflicts_with = "notes_file")]
    notes: Option<String>,
    /// Read the release notes from a file.
    #[arg(long, value_name = "FILE")]
    notes_file: Option<PathBuf>,
    /// Product name shown to clients (kept from the existing manifest by default).
    #[arg(long)]
    product: Option<String>,
    /// An http(s) base URL that also serves this site's blobs (a CDN or mirror),
    /// signed into the manifest; clients try these in order before the host that
    /// served the manifest. Repeatable; replaces the channel's list (kept when absent).
    #[arg(long = "download-host", value_name = "URL", value_parser = parse_download_host)]
    download_hosts: Vec<String>,
    /// Replace the release if this version is already published for this platform
    /// (keeping its salt, with a new rollout from the flags).
    #[arg(long)]
    force: bool,
    /// gzip compression level, 0 (fastest) to 9 (smallest).
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(0..=9))]
    compression_level: u32,
    /// zstd level of the per-file copies clients fetch for changed files without a
    /// patch, 1 to 19: 19 is about 12 % smaller and 9 times slower than the default.
    #[arg(long, default_value_t = wavecast_delta::DEFAULT_COPY_LEVEL, value_parser = clap::value_parser!(i32).range(1..=19))]
    copy_level: i32,
    /// Build binary patches (zstd and bsdiff, the smaller kept) for changed files from
    /// the same files in the K previous releases of the channel; 0 builds none.
    #[arg(long, value_name = "K", default_value_t = 3)]
    patch_depth: usize,
    #[command(flatten)]
    floor: ClientFloorArg,
    #[command(flatten)]
    site: SiteArgs,
}

/// A `--download-host` value, normalised (trailing `/`) and checked.
fn parse_download_host(text: &str) -> Result<String, String> {
    wavecast_schema::normalize_download_host(text)
}

/// `wavecast publish`.
pub(crate) fn run(args: &PublishArgs, quiet: bool) -> anyhow::Result<()> {
    if !args.release_dir.is_dir() {
        bail!(UsageError(format!(
            "the release folder `{}` does not exist or is not a folder",
            args.release_dir.display()
        )));
    }
    let key = args.site.signers()?;
    let notes = match &args.notes_file {
        Some(path) => fs_err::read_to_string(path)?,
        None => args.notes.clone().unwrap_or_default(),
    };
    let options = PublishOptions {
        release_dir: args.release_dir.clone(),
        version: args.version.clone(),
        channel: args.channel.channel.clone(),
        platform: args.platform.clone(),
        modules: args.modules.iter().chain(&args.image).cloned().collect(),
        rollout: args.plan.change(args.share.share(), false, false)?,
        notes,
        product: args.product.clone(),
        download_hosts: (!args.download_hosts.is_empty()).then(|| args.download_hosts.clone()),
        min_client_version: args.floor.min_client_version.clone(),
        force: args.force,
        expires_in: args.site.expires_in,
        compression_level: args.compression_level,
        copy_level: args.copy_level,
        patch_depth: args.patch_depth,
        now: now()?,
    };
    let total = folder_size(&args.release_dir);
    let progress = output::Progress::bytes(total, "packaging", quiet || args.site.json);
    let report = publish::publish(&args.site.storage(), &key, &options, &progress)?;
    progress.finish();
    if args.site.json {
        output::json(&report_json(&report, &args.site.site));
    }
    if !quiet {
        print_report(&report, &args.version);
    }
    client_floor::report_floor(&args.floor, &report.manifest, quiet);
    Ok(())
}

fn print_report(report: &PublishReport, version: &Version) {
    for (path, size) in &report.oversized {
        output::warn(&format!(
            "`{path}` is {}: GitHub Pages refuses files over 100 MB (other static hosts are fine)",
            output::bytes(*size)
        ));
    }
    for module in &report.modules {
        warn_about_links(module);
        output::status(&format!(
            "packaged {}: {} files{}, {} -> {} {}{}",
            module.name,
            module.files,
            match module.links {
                0 => String::new(),
                1 => ", 1 symbolic link".to_owned(),
                links => format!(", {links} symbolic links"),
            },
            output::bytes(module.unpacked_size),
            output::bytes(module.package_size),
            match module.kind {
                ModuleKind::Tree => "tar.gz",
                ModuleKind::Image => "zstd image",
            },
            if module.uploaded {
                ""
            } else {
                " (already on the site)"
            }
        ));
        if let Some(line) = delta_line(module, report.patch_time) {
            output::status(&line);
        }
    }
    let copies = &report.copies;
    output::status(&format!(
        "file copies: {} compressed ({} -> {} zstd) in {:.2}s of CPU, {} already on the site",
        copies.compressed,
        output::bytes(copies.raw_bytes),
        output::bytes(copies.packed_bytes),
        copies.compress_time.as_secs_f64(),
        copies.reused
    ));
    let manifest = &report.manifest;
    let rollout = manifest
        .release(version)
        .map_or_else(String::new, |release| {
            rollout_plan::summary(&release.rollout)
        });
    output::status(&format!(
        "published {version} at {rollout} to channel `{}` (serial {}, {} live releases, expires {}) in {:.2}s",
        manifest.channel,
        manifest.serial,
        manifest.releases.len(),
        manifest.expires_at,
        report.total_time.as_secs_f64()
    ));
}

/// One line on a module's patches, or `None` when nothing changed in it.
fn delta_line(module: &ModuleSummary, patch_time: std::time::Duration) -> Option<String> {
    let delta = &module.delta;
    if module.index_reused {
        return Some(format!(
            "patches for {}: the same content as an earlier release; its file index is reused",
            module.name
        ));
    }
    if delta.changed_files == 0 {
        return None;
    }
    let per_algorithm: Vec<String> = delta
        .kept
        .iter()
        .map(|(algorithm, stats)| {
            format!(
                "{} {}: {}",
                stats.count,
                algorithm.as_str(),
                output::bytes(stats.bytes)
            )
        })
        .collect();
    let skipped: Vec<String> = [
        (delta.without_counterpart, "without an old counterpart"),
        (delta.too_large, "too large to diff"),
        (delta.bases_missing, "whose old copy is not on the site"),
        (delta.not_smaller, "not smaller than the file"),
        (delta.unverified, "failed verification"),
    ]
    .into_iter()
    .filter(|(count, _)| *count > 0)
    .map(|(count, reason)| format!("{count} {reason}"))
    .collect();
    Some(format!(
        "patches for {}: {} changed files ({} as copies), {} patches{} = {}, from the previous release: {}; {} tried in {:.2}s ({:.2}s of CPU){}",
        module.name,
        delta.changed_files,
        output::bytes(delta.changed_packed_size),
        delta.patch_count(),
        if per_algorithm.is_empty() {
            String::new()
        } else {
            format!(" ({})", per_algorithm.join(", "))
        },
        output::bytes(delta.patch_bytes()),
        output::bytes(delta.from_previous),
        delta.candidates,
        patch_time.as_secs_f64(),
        delta.build_time.as_secs_f64(),
        if skipped.is_empty() {
            String::new()
        } else {
            format!("; skipped: {}", skipped.join(", "))
        },
    ))
}

/// How many paths a message lists before it says how many there are in all.
const LISTED_PATHS: usize = 5;

/// Warns about symbolic links leaving the release tree, and says that hard links
/// became copies: both are packaged, but the user should know what clients get.
fn warn_about_links(module: &ModuleSummary) {
    let listed = |items: Vec<String>| {
        let count = items.len();
        let mut text = items
            .into_iter()
            .take(LISTED_PATHS)
            .collect::<Vec<_>>()
            .join(", ");
        if count > LISTED_PATHS {
            text.push_str(&format!(", … ({count} in all)"));
        }
        text
    };
    if !module.outside_links.is_empty() {
        output::warn(&format!(
            "module {}: symbolic links that point outside the release tree are installed as they are and resolve on each client's machine: {}",
            module.name,
            listed(
                module
                    .outside_links
                    .iter()
                    .map(|(path, target)| format!("`{path}` -> `{target}`"))
                    .collect()
            )
        ));
    }
    if !module.hard_links.is_empty() {
        output::status(&format!(
            "note: module {}: hard links become copies (each name is packaged as a file of its own): {}",
            module.name,
            listed(
                module
                    .hard_links
                    .iter()
                    .map(|path| format!("`{path}`"))
                    .collect()
            )
        ));
    }
}

fn report_json(report: &PublishReport, site: &Path) -> serde_json::Value {
    let manifest = &report.manifest;
    serde_json::json!({
        "schema_version": 1,
        "channel": manifest.channel,
        "serial": manifest.serial,
        "expires_at": manifest.expires_at,
        "manifest": manifest_path(site, &manifest.channel),
        "oversized": report.oversized.iter().map(|(path, size)| serde_json::json!({
            "path": path,
            "size": size,
        })).collect::<Vec<_>>(),
        "releases": manifest.releases.iter().map(|release| serde_json::json!({
            "version": release.version,
            "rollout_basis_points": release.rollout.share.basis_points,
            "rollout": release.rollout,
        })).collect::<Vec<_>>(),
        "modules": report.modules.iter().map(|module| {
            let delta = &module.delta;
            serde_json::json!({
                "name": module.name,
                "kind": module.kind,
                "files": module.files,
                "links": module.links,
                "outside_links": module.outside_links.iter().map(|(path, target)| serde_json::json!({
                    "path": path,
                    "target": target,
                })).collect::<Vec<_>>(),
                "hard_links": module.hard_links,
                "unpacked_size": module.unpacked_size,
                "package_size": module.package_size,
                "uploaded": module.uploaded,
                "index_reused": module.index_reused,
                "patches": {
                    "changed_files": delta.changed_files,
                    "changed_packed_size": delta.changed_packed_size,
                    "without_counterpart": delta.without_counterpart,
                    "candidates": delta.candidates,
                    "too_large": delta.too_large,
                    "bases_missing": delta.bases_missing,
                    "not_smaller": delta.not_smaller,
                    "unverified": delta.unverified,
                    "count": delta.patch_count(),
                    "bytes": delta.patch_bytes(),
                    "by_algorithm": delta.kept.iter().map(|(algorithm, stats)| {
                        (algorithm.as_str().to_owned(), serde_json::json!({
                            "count": stats.count,
                            "bytes": stats.bytes,
                        }))
                    }).collect::<serde_json::Map<_, _>>(),
                    "patched_files": delta.patched_files,
                    "download_from_previous": delta.from_previous,
                    "uploaded": module.patches_uploaded,
                    "cpu_seconds": delta.build_time.as_secs_f64(),
                },
            })
        }).collect::<Vec<_>>(),
        "file_copies": {
            "compressed": report.copies.compressed,
            "raw_bytes": report.copies.raw_bytes,
            "packed_bytes": report.copies.packed_bytes,
            "already_on_site": report.copies.reused,
            "cpu_seconds": report.copies.compress_time.as_secs_f64(),
        },
        "packaging_seconds": report.packaging_time.as_secs_f64(),
        "patch_seconds": report.patch_time.as_secs_f64(),
        "work_seconds": report.work_time.as_secs_f64(),
        "total_seconds": report.total_time.as_secs_f64(),
    })
}

/// Total size of the regular files under `dir`, for the progress bar. Unreadable
/// entries count as zero here; packaging reports them properly.
fn folder_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => folder_size(&entry.path()),
            Ok(kind) if kind.is_file() => entry.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}
