//! `wavecast mirror`: copy a site (or some of its releases) into a folder or a
//! bucket, verifying every signature and blob on the way.

use std::path::PathBuf;

use anyhow::bail;
use clap::Args;
use wavecast_publisher::mirror;
use wavecast_publisher::verify::{self, Selection, Source};
use wavecast_schema::{ChannelName, Platform};

use crate::args::{S3Args, UmaskArg, now};
use crate::output::{self, UsageError};
use crate::survey::{fail_on_problems, plural, report_survey};

#[derive(Debug, Args)]
pub(crate) struct MirrorArgs {
    /// The site to copy: a folder, a `file://` URL or an `http(s)://` base URL.
    source: String,
    /// Where to copy it: a folder (created if missing; `file://` URLs work too) or
    /// `s3://BUCKET/PREFIX`.
    destination: String,
    #[command(flatten)]
    s3: S3Args,
    /// The public key that must have signed every channel: a `.pub` file or the key
    /// in base64.
    #[arg(long, value_name = "KEY")]
    pubkey: String,
    /// A channel to copy; repeat for more. Default: every channel of a folder,
    /// `stable` for a URL.
    #[arg(long = "channel", value_name = "CHANNEL")]
    channels: Vec<ChannelName>,
    /// Copy only the blobs of the newest N releases of each channel. The manifests are
    /// copied unchanged (they are signed), so they still list every release, but
    /// clients of the mirror can only install the copied releases.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    newest: Option<u64>,
    /// Copy only the builds for this platform (and `any`, which every platform falls
    /// back to); repeat for more. The manifests are copied unchanged, so clients of
    /// the mirror on other platforms cannot install anything from it.
    #[arg(long = "platform", value_name = "TRIPLE")]
    platforms: Vec<Platform>,
    /// Print one JSON document on stdout.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    umask: UmaskArg,
}

/// `wavecast mirror`.
pub(crate) fn run(args: &MirrorArgs) -> anyhow::Result<()> {
    // A folder mirror stages blobs beside their final place (`folder`, created with
    // the site's modes before the copy); a bucket mirror stages them in a local
    // temporary folder before uploading.
    let bucket_staging;
    let (storage, destination, folder): (Box<dyn wavecast_site::Storage>, PathBuf, _) = match args
        .destination
        .split_once("://")
    {
        None | Some(("file", _)) => {
            let path = args
                .destination
                .strip_prefix("file://")
                .unwrap_or(&args.destination);
            let folder = args.umask.storage(path);
            (Box::new(folder.clone()), PathBuf::from(path), Some(folder))
        }
        Some(("s3", _)) => {
            bucket_staging = tempfile::tempdir()?;
            (
                Box::new(args.s3.storage(&args.destination)?),
                bucket_staging.path().to_owned(),
                None,
            )
        }
        Some((scheme, _)) => bail!(UsageError(format!(
            "cannot mirror into `{}`: `{scheme}://` destinations are not supported; mirror into a folder or `s3://BUCKET/PREFIX`",
            args.destination
        ))),
    };
    let source = Source::parse(&args.source)?;
    let key = verify::load_public_key(&args.pubkey)?;
    let selection = Selection {
        channels: args.channels.clone(),
        newest: args
            .newest
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
        platforms: args.platforms.clone(),
    };
    if selection.is_filtered() && !args.json {
        output::warn(
            "this mirror is filtered: its manifests still list every release and platform (they are signed and copied unchanged), but its clients can only install the copied ones",
        );
    }
    let mut survey = verify::survey(&source, &selection, &key, now()?)?;
    let total = survey.total();
    let progress = output::Progress::bytes(total.bytes, "mirroring", args.json);
    if let Some(folder) = &folder {
        folder.create_folder()?;
    }
    let report = mirror::copy(
        &source,
        &mut survey,
        storage.as_ref(),
        &destination,
        &progress,
    )?;
    progress.finish();
    let complete = survey.problems.is_empty();
    if args.json {
        output::json(&serde_json::json!({
            "schema_version": 1,
            "ok": complete,
            "destination": args.destination,
            "filtered": selection.is_filtered(),
            "channels": survey.channels,
            "channels_written": report.channels_written,
            "status_page": report.status_page,
            "blobs": total,
            "copied": report.copied,
            "already_present": report.present,
            "problems": survey.problems,
            "warnings": survey.warnings,
        }));
    }
    report_survey(&survey, args.json);
    output::result(
        &format!(
            "{} {} into {}: {} blobs ({}), {} copied ({}), {} already there ({}){}",
            if complete {
                "mirrored"
            } else {
                "partly mirrored"
            },
            plural(survey.channels.len(), "channel"),
            args.destination,
            total.files,
            output::bytes(total.bytes),
            report.copied.files,
            output::bytes(report.copied.bytes),
            report.present.files,
            output::bytes(report.present.bytes),
            if complete {
                format!(
                    "; {} updated",
                    plural(report.channels_written.len(), "channel manifest")
                )
            } else {
                "; the channel manifests were not copied".to_owned()
            }
        ),
        args.json,
    );
    fail_on_problems(&survey)
}
