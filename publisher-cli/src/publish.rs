//! `wavecast publish`: add a release folder to a channel, and report what was
//! packaged, compressed and put in delta packs.

use std::path::{Path, PathBuf};

use anyhow::bail;
use clap::Args;
use semver::Version;
use wavecast_publisher::pack::PackSummary;
use wavecast_publisher::package::{ModuleSpec, PackageCompression};
use wavecast_publisher::publish::{self, ModuleSummary, PublishOptions, PublishReport};
use wavecast_publisher::rollout_plan;
use wavecast_schema::{ModuleKind, PackageFormat, Platform};
use wavecast_site::layout::{self, BlobKind};

use crate::args::{ChannelArg, PlanArgs, ShareArgs, SiteArgs, now};
use crate::client_floor::{self, ClientFloorArg};
use crate::output::{self, UsageError};

#[derive(Debug, Args)]
pub(crate) struct PublishArgs {
    /// The release folder: the exact tree clients will have installed.
    #[arg(value_name = "DIR")]
    release_dir: PathBuf,
    /// The release's semantic version (`2.1` means `2.1.0`, as everywhere a version is
    /// given).
    #[arg(long, value_parser = wavecast_schema::parse_version)]
    version: Version,
    #[command(flatten)]
    channel: ChannelArg,
    #[command(flatten)]
    share: ShareArgs,
    #[command(flatten)]
    plan: PlanArgs,
    /// Target triple the release is for, or `any` for every platform.
    #[arg(long, value_name = "TRIPLE", default_value = "any")]
    platform: Platform,
    /// Split the release into modules, each a subfolder: `--module core=bin
    /// --module assets=share`. Default: the whole folder as one module `app`
    /// (unless --image is given).
    #[arg(long = "module", value_name = "NAME=DIR")]
    modules: Vec<ModuleSpec>,
    /// Publish the file FILE of the release folder as an image module: clients write
    /// it whole into the inactive of two slots (A/B) and activate it with their
    /// on-activate hook, instead of unpacking it into the release tree. Its package
    /// is its zstd copy, and delta packs patch it from earlier images as any file.
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
    /// How tree modules are packaged: `zst` (tar.zst, zstd with a long window: the
    /// smallest fresh install and the fastest to unpack; it needs wavecast-update
    /// 0.2.0 or later, so it raises the channel's --min-client-version to that) or
    /// `gz` (tar.gz, which every client and tool reads). A channel may hold releases
    /// of both.
    #[arg(long, value_name = "FORMAT", default_value = "zst")]
    package_format: PackageFormat,
    /// Compression level of the packages: zstd 1 (fastest) to 19 (smallest), or with
    /// `--package-format gz`, gzip 0 to 9 (default 6). zstd's default is 19 for a
    /// tree of up to 64 MiB of files, and 9 above, where 19 would take minutes.
    #[arg(long, value_name = "LEVEL")]
    compression_level: Option<u32>,
    /// zstd level of the file copies (the copy packs clients fetch single files from,
    /// and the copies delta packs carry), 1 to 19: 19 is about 12 % smaller and 9
    /// times slower than the default.
    #[arg(long, value_name = "LEVEL", default_value_t = wavecast_delta::DEFAULT_COPY_LEVEL, value_parser = clap::value_parser!(i32).range(1..=19))]
    copy_level: i32,
    /// Build a delta pack from each of the K previous releases of the channel (same
    /// platform): one download that updates a client on that release, carrying each
    /// changed file as its smallest patch (zstd, bsdiff or bsdiff-zstd) from the old
    /// file or as its copy; 0 builds none, 16 at most.
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
pub(crate) fn run(args: &PublishArgs) -> anyhow::Result<()> {
    if !args.release_dir.is_dir() {
        bail!(UsageError(format!(
            "the release folder `{}` does not exist or is not a folder",
            args.release_dir.display()
        )));
    }
    warn_before_publishing(args);
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
        compression: PackageCompression {
            format: args.package_format,
            level: args.compression_level,
        }
        .check()?,
        copy_level: args.copy_level,
        patch_depth: args.patch_depth,
        now: now()?,
    };
    let total = folder_size(&args.release_dir);
    let progress = output::Progress::bytes(total, "packaging", args.site.json);
    let report = publish::publish(&args.site.storage(), &key, &options, &progress)?;
    progress.finish();
    if args.site.json {
        output::json(&report_json(&report, &args.site));
    }
    print_report(&report);
    warn_if_older_than_live(&report, &args.version);
    output::result(
        &published_line(&report, &args.version, args.site.sign_later),
        args.site.json,
    );
    args.site.report_pending(&report.manifest.channel);
    client_floor::report_floor(&args.floor, &report.manifest);
    if let Some(floor) = &report.floor_raised {
        client_floor::report_raised_for_packages(floor, &report.manifest);
    }
    Ok(())
}

/// Warnings about flags that are allowed but rarely meant.
fn warn_before_publishing(args: &PublishArgs) {
    if !args.version.pre.is_empty() && args.channel.channel.as_str() == "stable" {
        output::warn(&format!(
            "{} is a pre-release, published to `stable`: every client on `stable` may install it; pre-releases usually go to a channel of their own (--channel beta)",
            args.version
        ));
    }
    if args.site.expires_in > MAX_USUAL_EXPIRY {
        output::warn(
            "--expires-in is over a year: a host that keeps serving this manifest (frozen, or replaying it) goes unnoticed by clients until it expires; the default is 30d, and a scheduled `wavecast rollout` re-signs it",
        );
    }
}

/// Manifests valid longer than this weaken freeze protection enough to warn.
const MAX_USUAL_EXPIRY: jiff::SignedDuration = jiff::SignedDuration::from_hours(365 * 24);

/// A warning when `version` is older than the newest live release of its channel:
/// clients on newer releases never move to it.
fn warn_if_older_than_live(report: &PublishReport, version: &Version) {
    let newest = report
        .manifest
        .releases
        .iter()
        .filter(|release| !release.rollout.yanked)
        .map(|release| &release.version)
        .max();
    if let Some(newest) = newest.filter(|newest| *newest > version) {
        output::warn(&format!(
            "{version} is older than {newest}, the newest live release of `{}`: only clients below {version} install it; to move clients back, `wavecast yank {newest}`",
            report.manifest.channel
        ));
    }
}

/// What was built and uploaded on the way, on stderr.
fn print_report(report: &PublishReport) {
    for (path, size) in &report.oversized {
        output::warn(&format!(
            "`{path}` is {}: GitHub Pages refuses files over 100 MB (other static hosts are fine)",
            output::bytes(*size)
        ));
    }
    for module in &report.modules {
        warn_about_links(module);
        output::status(&module_line(module));
    }
    let copies = &report.copies;
    output::status(&format!(
        "file copies: {} compressed ({} -> {} zstd) in {:.2}s of CPU, {} reused from the previous release",
        copies.compressed,
        output::bytes(copies.raw_bytes),
        output::bytes(copies.packed_bytes),
        copies.compress_time.as_secs_f64(),
        copies.reused
    ));
    for pack in &report.packs {
        output::status(&pack_line(pack));
    }
    if let Some(line) = patches_line(report) {
        output::status(&line);
    }
}

/// The result: `published 1.1.0 at 30% to channel `stable` (serial 2, …)`.
fn published_line(report: &PublishReport, version: &Version, sign_later: bool) -> String {
    let manifest = &report.manifest;
    let rollout = manifest
        .release(version)
        .map_or_else(String::new, |release| {
            rollout_plan::summary(&release.rollout)
        });
    format!(
        "{} {version} at {rollout} to channel `{}` (serial {}, {} live releases, expires {}) in {:.2}s",
        if sign_later {
            "uploaded and prepared (unsigned)"
        } else {
            "published"
        },
        manifest.channel,
        manifest.serial,
        manifest.releases.len(),
        manifest.expires_at,
        report.total_time.as_secs_f64()
    )
}

/// One line on a packaged module: files, sizes, and what the site already had.
fn module_line(module: &ModuleSummary) -> String {
    format!(
        "packaged {}: {} files{}, {} -> {} {}{}{}{}",
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
            ModuleKind::Tree => module.package_format.as_str(),
            ModuleKind::Image => "zstd image",
        },
        match module.package_level {
            Some(level) => format!(" (level {level})"),
            None => String::new(),
        },
        match module.copies_size {
            Some(size) => format!(", copy pack {}", output::bytes(size)),
            None => String::new(),
        },
        if module.index_reused {
            " (the same content as an earlier release: its record is reused)"
        } else if module.uploaded {
            ""
        } else {
            " (already on the site)"
        }
    )
}

/// One line on a delta pack.
fn pack_line(pack: &PackSummary) -> String {
    let count = |count: usize, one: &str, many: &str| match count {
        1 => format!("1 {one}"),
        count => format!("{count} {many}"),
    };
    format!(
        "delta pack from {}: {} (header {}; {} {}, {} {}; {} changed){}",
        pack.from,
        output::bytes(pack.size),
        output::bytes(pack.header_size),
        count(pack.patches, "patch", "patches"),
        output::bytes(pack.patch_bytes),
        count(pack.copies, "copy", "copies"),
        output::bytes(pack.copy_bytes),
        count(pack.modules, "module", "modules"),
        if pack.uploaded {
            ""
        } else {
            " (already on the site)"
        }
    )
}

/// One line on the patches built for the packs, or `None` when none were tried.
fn patches_line(report: &PublishReport) -> Option<String> {
    let patches = &report.patches;
    if patches.pairs == 0 && patches.too_large == 0 {
        return None;
    }
    let per_algorithm: Vec<String> = patches
        .built
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
        (patches.too_large, "too large to diff"),
        (patches.bases_missing, "whose old copy is not on the site"),
        (patches.unverified, "failed verification"),
    ]
    .into_iter()
    .filter(|(count, _)| *count > 0)
    .map(|(count, reason)| format!("{count} {reason}"))
    .collect();
    Some(format!(
        "delta packs: {} in all; {} patches tried in {:.2}s ({:.2}s of CPU), smallest of each: {}{}",
        output::bytes(report.packs_size()),
        patches.pairs,
        report.patch_time.as_secs_f64(),
        patches.build_time.as_secs_f64(),
        if per_algorithm.is_empty() {
            "none".to_owned()
        } else {
            per_algorithm.join(", ")
        },
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

fn report_json(report: &PublishReport, site: &SiteArgs) -> serde_json::Value {
    let manifest = &report.manifest;
    let patches = &report.patches;
    serde_json::json!({
        "schema_version": 2,
        "channel": manifest.channel,
        "serial": manifest.serial,
        "expires_at": manifest.expires_at,
        "manifest": site.manifest_path(&manifest.channel),
        "signed": !site.sign_later,
        "document": {
            "path": layout::blob(&report.document.blake3, BlobKind::PlatformRelease),
            "size": report.document.size,
        },
        "oversized": report.oversized.iter().map(|(path, size)| serde_json::json!({
            "path": path,
            "size": size,
        })).collect::<Vec<_>>(),
        "releases": manifest.releases.iter().map(|release| serde_json::json!({
            "version": release.version,
            "rollout_basis_points": release.rollout.share.basis_points,
            "rollout": release.rollout,
        })).collect::<Vec<_>>(),
        "modules": report.modules.iter().map(|module| serde_json::json!({
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
            "package_format": (module.kind == ModuleKind::Tree).then_some(module.package_format.as_str()),
            "package_level": module.package_level,
            "index_size": module.index_size,
            "copies_size": module.copies_size,
            "uploaded": module.uploaded,
            "index_reused": module.index_reused,
        })).collect::<Vec<_>>(),
        "packs": report.packs.iter().map(|pack| serde_json::json!({
            "from": pack.from,
            "size": pack.size,
            "header_size": pack.header_size,
            "modules": pack.modules,
            "patches": pack.patches,
            "patch_bytes": pack.patch_bytes,
            "copies": pack.copies,
            "copy_bytes": pack.copy_bytes,
            "uploaded": pack.uploaded,
        })).collect::<Vec<_>>(),
        "packs_total": {
            "count": report.packs.len(),
            "bytes": report.packs_size(),
        },
        "patches": {
            "pairs": patches.pairs,
            "too_large": patches.too_large,
            "bases_missing": patches.bases_missing,
            "unverified": patches.unverified,
            "by_algorithm": patches.built.iter().map(|(algorithm, stats)| {
                (algorithm.as_str().to_owned(), serde_json::json!({
                    "count": stats.count,
                    "bytes": stats.bytes,
                }))
            }).collect::<serde_json::Map<_, _>>(),
            "cpu_seconds": patches.build_time.as_secs_f64(),
        },
        "file_copies": {
            "compressed": report.copies.compressed,
            "raw_bytes": report.copies.raw_bytes,
            "packed_bytes": report.copies.packed_bytes,
            "reused": report.copies.reused,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pack_is_reported_with_its_parts() {
        let pack = PackSummary {
            from: "1.0.0".parse().unwrap(),
            size: 3100,
            header_size: 764,
            modules: 1,
            patches: 3,
            patch_bytes: 156,
            copies: 1,
            copy_bytes: 2180,
            uploaded: true,
        };
        assert_eq!(
            pack_line(&pack),
            "delta pack from 1.0.0: 3.03 KiB (header 764 B; 3 patches 156 B, 1 copy 2.13 KiB; 1 module changed)"
        );
        let again = PackSummary {
            uploaded: false,
            patches: 1,
            copies: 0,
            modules: 2,
            ..pack
        };
        assert!(
            pack_line(&again).ends_with("2 modules changed) (already on the site)"),
            "{}",
            pack_line(&again)
        );
    }
}
