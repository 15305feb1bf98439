//! `wavecast gc`: delete the blobs no live release refers to, past a grace period.

use std::sync::Arc;

use clap::Args;
use jiff::SignedDuration;
use wavecast_publisher::gc::{self, GcReporter};
use wavecast_publisher::verify;
use wavecast_schema::RelativePath;
use wavecast_site::Storage;

use crate::args::{S3Args, UmaskArg, now};
use crate::output;

#[derive(Debug, Args)]
pub(crate) struct GcArgs {
    /// The site: a folder, or `s3://BUCKET/PREFIX`.
    site: String,
    /// The public key that must have signed every channel: a `.pub` file or the key
    /// in base64. Nothing is deleted unless every channel verifies under it.
    #[arg(long, value_name = "KEY")]
    pubkey: String,
    /// Keep unreferenced blobs uploaded less than this long ago: `7d`, `12h`, `0s`.
    /// Counted from each blob's upload, so that clients mid-update and caches holding
    /// an older manifest still find what it names.
    #[arg(long, value_name = "DURATION", default_value = "7d", value_parser = parse_grace)]
    grace: SignedDuration,
    /// Report what would be deleted; delete nothing.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    s3: S3Args,
    #[command(flatten)]
    umask: UmaskArg,
    /// Print one JSON document on stdout.
    #[arg(long)]
    json: bool,
}

/// `wavecast gc`.
pub(crate) fn run(args: &GcArgs) -> anyhow::Result<()> {
    let storage: Arc<dyn Storage> = if args.site.starts_with("s3://") {
        Arc::new(args.s3.storage(&args.site)?)
    } else {
        Arc::new(args.umask.storage(&args.site))
    };
    let key = verify::load_public_key(&args.pubkey)?;
    let plan = gc::plan(&storage, &args.site, &key, args.grace, now()?)?;
    if !args.json {
        for warning in &plan.warnings {
            output::warn(warning);
        }
    }
    if !args.dry_run {
        let progress = output::Progress::bytes(plan.delete_bytes(), "deleting", args.json);
        gc::apply(storage.as_ref(), &plan, &progress)?;
        progress.finish();
    }
    if args.json {
        output::json(&serde_json::json!({
            "schema_version": 1,
            "command": "gc",
            "dry_run": args.dry_run,
            "site": args.site,
            "now": plan.now,
            "grace_seconds": plan.grace.as_secs(),
            "live": plan.live,
            "deleted": if args.dry_run { &[][..] } else { &plan.delete[..] },
            "would_delete": if args.dry_run { &plan.delete[..] } else { &[][..] },
            "kept_young": plan.young,
            "kept_until": plan.young_until(),
            "unrecognised": plan.unrecognised,
            "warnings": plan.warnings,
        }));
    }
    if !args.json {
        let mut line = format!(
            "{} {} ({})",
            if args.dry_run {
                "would delete"
            } else {
                "deleted"
            },
            blobs(plan.delete.len()),
            output::bytes(plan.delete_bytes())
        );
        if let Some(until) = plan.young_until() {
            line.push_str(&format!(
                "; {} unreferenced {} younger than {} kept until {}",
                plan.young.len(),
                if plan.young.len() == 1 {
                    "blob"
                } else {
                    "blobs"
                },
                grace_text(plan.grace),
                until.strftime("%Y-%m-%d %H:%M UTC")
            ));
        }
        line.push_str(&format!("; {} live", blobs(plan.live)));
        output::result(&line, false);
        for path in &plan.unrecognised {
            output::warn(&format!("{path} is not a blob; left alone"));
        }
    }
    Ok(())
}

/// `--grace`: a duration as `--expires-in` takes, or zero.
fn parse_grace(text: &str) -> Result<SignedDuration, String> {
    match wavecast_schema::parse_duration(text) {
        Ok(seconds) => i64::try_from(seconds)
            .map(SignedDuration::from_secs)
            .map_err(|_| format!("`{text}` is too long")),
        Err(error) => Err(error.to_string()),
    }
}

/// `7d`, `12h`, `90m`, `30s`: the grace as given, in its largest whole unit.
fn grace_text(grace: SignedDuration) -> String {
    let seconds = grace.as_secs();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
        if seconds != 0 && seconds % size == 0 {
            return format!("{}{unit}", seconds / size);
        }
    }
    format!("{seconds}s")
}

fn blobs(count: usize) -> String {
    if count == 1 {
        "1 blob".to_owned()
    } else {
        format!("{count} blobs")
    }
}

impl GcReporter for output::Progress {
    fn on_delete(&self, _path: &RelativePath, bytes: u64) {
        self.advance(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graces_parse_and_print() {
        assert_eq!(parse_grace("0s").unwrap(), SignedDuration::ZERO);
        assert_eq!(grace_text(parse_grace("7d").unwrap()), "7d");
        assert_eq!(grace_text(parse_grace("36h").unwrap()), "36h");
        assert_eq!(grace_text(SignedDuration::ZERO), "0s");
        assert!(parse_grace("-1d").is_err());
    }
}
