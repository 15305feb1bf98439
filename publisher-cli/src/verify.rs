//! `wavecast verify`: check a whole site, every signature and every blob.

use clap::Args;
use wavecast_publisher::verify::{self, Selection, Source};
use wavecast_schema::ChannelName;

use crate::args::now;
use crate::output;
use crate::survey::{fail_on_problems, plural, report_survey};

#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// The site: a folder, a `file://` URL or an `http(s)://` base URL.
    site: String,
    /// The public key that must have signed every channel: a `.pub` file or the key
    /// in base64.
    #[arg(long, value_name = "KEY")]
    pubkey: String,
    /// A channel to check; repeat for more. Default: every `channels/*.json` of a
    /// folder, `stable` for a URL.
    #[arg(long = "channel", value_name = "CHANNEL")]
    channels: Vec<ChannelName>,
    /// Print one JSON document on stdout.
    #[arg(long)]
    json: bool,
}

/// `wavecast verify`.
pub(crate) fn run(args: &VerifyArgs) -> anyhow::Result<()> {
    let source = Source::parse(&args.site)?;
    let key = verify::load_public_key(&args.pubkey)?;
    let selection = Selection {
        channels: args.channels.clone(),
        ..Selection::default()
    };
    let mut survey = verify::survey(&source, &selection, &key, now()?)?;
    let progress = output::Progress::bytes(survey.total().bytes, "verifying", args.json);
    verify::check_blobs(&source, &mut survey, &progress)?;
    progress.finish();
    if args.json {
        output::json(&serde_json::json!({
            "schema_version": 1,
            "ok": survey.problems.is_empty(),
            "root_version": survey.root.as_ref().map(|root| root.version),
            "channels": survey.channels,
            "problems": survey.problems,
            "warnings": survey.warnings,
            "checked": survey.checked,
        }));
    }
    report_survey(&survey, args.json);
    if survey.problems.is_empty() {
        output::result(
            &format!(
                "verified {} under root v{}: every signature and blob is correct ({} files, {})",
                plural(survey.channels.len(), "channel"),
                survey.root.as_ref().map_or(1, |root| root.version),
                survey.checked.files,
                output::bytes(survey.checked.bytes)
            ),
            args.json,
        );
    }
    fail_on_problems(&survey)
}
