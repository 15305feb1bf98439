//! `wavecast push`: upload a site folder to an S3 bucket.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::bail;
use clap::Args;
use wavecast_publisher::push::{self, PushReporter};
use wavecast_schema::RelativePath;

use crate::args::S3Args;
use crate::output::{self, UsageError};

#[derive(Debug, Args)]
pub(crate) struct PushArgs {
    /// The site folder to upload.
    site: PathBuf,
    /// Where to: `s3://BUCKET/PREFIX`.
    destination: String,
    #[command(flatten)]
    s3: S3Args,
    /// Print a JSON summary on stdout.
    #[arg(long)]
    json: bool,
}

/// `wavecast push`.
pub(crate) fn run(args: &PushArgs) -> anyhow::Result<()> {
    if !args.site.join("channels").is_dir() {
        bail!(UsageError(format!(
            "`{}` is not a site folder (it has no `channels/`); publish a release into it first",
            args.site.display()
        )));
    }
    let storage = args.s3.storage(&args.destination)?;
    let files = push::site_files(&args.site)?;
    let total: u64 = files.iter().map(|(_, _, size)| size).sum();
    let reporter = Reporter {
        progress: output::Progress::bytes(total, "pushing", args.json),
        verbose: !args.json,
        done: AtomicU64::new(0),
        files: files.len() as u64,
    };
    let report = push::push(&args.site, &storage, &reporter)?;
    reporter.progress.finish();
    if args.json {
        output::json(&serde_json::json!({
            "schema_version": 1,
            "destination": args.destination,
            "uploaded": report.uploaded,
            "already_present": report.present,
            "channels_written": report.channels_written,
        }));
    }
    output::result(
        &format!(
            "pushed {} to {}: {} files ({}) uploaded, {} ({}) already there",
            args.site.display(),
            args.destination,
            report.uploaded.files,
            output::bytes(report.uploaded.bytes),
            report.present.files,
            output::bytes(report.present.bytes),
        ),
        args.json,
    );
    Ok(())
}

struct Reporter {
    progress: output::Progress,
    verbose: bool,
    done: AtomicU64,
    files: u64,
}

impl PushReporter for Reporter {
    fn on_upload(&self, path: &RelativePath, bytes: u64) {
        if self.verbose && !self.progress.is_visible() {
            output::status(&format!(
                "[{}/{}] uploading {path} ({})",
                self.done.load(Ordering::Relaxed) + 1,
                self.files,
                output::bytes(bytes)
            ));
        }
    }

    fn on_file(&self, _path: &RelativePath, bytes: u64, _uploaded: bool) {
        self.done.fetch_add(1, Ordering::Relaxed);
        self.progress.advance(bytes);
    }
}
