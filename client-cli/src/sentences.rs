//! What several subcommands say to people: the decision of a check (`check`,
//! `update`, `poll`), an image's slot activation (`update`, `rollback`), the deleted
//! release trees (`update`, `launched`, `rollback`) and a list of attributes
//! (`init`, `config`, `status`).

use wavecast_client::{
    Attributes, CheckReport, ImageSource, InstallReport, Mode, Outcome, PrunedRelease,
    SlotActivation, TreeReport, Withdrawal, format_bytes,
};

use crate::output::stderr_line;

/// ` (rule `NAME`)` when a rollout rule applied, else nothing.
pub(crate) fn rule_suffix(report: &CheckReport) -> String {
    report
        .rule()
        .map_or_else(String::new, |rule| format!(" (rule `{}`)", rule.name))
}

/// `1.2.0 was yanked: moving back to 1.1.0`, when the installed release is withdrawn
/// and the report moves away from it.
pub(crate) fn withdrawal_sentence(report: &CheckReport) -> Option<String> {
    let withdrawn = report.withdrawn()?;
    let current = report.current()?;
    let target = report.target()?;
    let why = match withdrawn {
        Withdrawal::Yanked => "was yanked",
        Withdrawal::Capped => "was capped below this client's bucket",
    };
    let direction = if report.is_downgrade() {
        "moving back to"
    } else {
        "moving to"
    };
    Some(format!(
        "{} {why}: {direction} {}",
        current.version, target.version
    ))
}

/// The one-line answer of `check` for people, naming the releases skipped as bad and
/// what a pin holds back.
pub(crate) fn check_sentence(report: &CheckReport) -> String {
    let sentence = format!("{}{}", decision_sentence(report), pin_note(report));
    if report.skipped().is_empty() {
        return sentence;
    }
    let skipped: Vec<String> = report
        .skipped()
        .iter()
        .map(|bad| format!("{} ({})", bad.version, bad.detail))
        .collect();
    format!(
        "{sentence}; skipping releases marked bad here: {}; `wavecast-update unmark VERSION` clears a mark",
        skipped.join(", ")
    )
}

/// What the decision says, for people.
fn decision_sentence(report: &CheckReport) -> String {
    let rollout = report.rollout();
    let rule = rule_suffix(report);
    match report.outcome() {
        Outcome::Update => {
            let target = report
                .target()
                .map_or_else(String::new, |target| target.version.to_string());
            if let Some(sentence) = withdrawal_sentence(report) {
                return format!("{sentence}{rule}");
            }
            let from = report.current().map_or_else(
                || "nothing installed".to_owned(),
                |current| current.version.to_string(),
            );
            if report.mandatory() {
                return format!("mandatory update available: {from} -> {target}{rule}");
            }
            match rollout {
                Some(rollout) if rollout.bucket < rollout.threshold.get() => format!(
                    "update available: {from} -> {target} (bucket {} < threshold {}){rule}",
                    rollout.bucket, rollout.threshold
                ),
                Some(_) if report.mode() == Mode::Manual => format!(
                    "update available: {from} -> {target} (asked with --now: the rollout share is skipped){rule}"
                ),
                _ => format!("update available: {from} -> {target}{rule}"),
            }
        }
        Outcome::Deferred => deferred_sentence(report),
        Outcome::UpToDate => {
            let Some(current) = report.current() else {
                return format!(
                    "up to date: channel `{}` has no release for platform `{}`",
                    report.channel(),
                    report.platform()
                );
            };
            if let Some(withdrawn) = report.withdrawn() {
                return format!(
                    "up to date: {} was {}, but no other release admits this client yet",
                    current.version,
                    withdrawn.as_str()
                );
            }
            match report.newest() {
                Some(newest) if newest < &current.version => format!(
                    "up to date: {} (channel `{}` offers {newest} at most; wavecast never moves down)",
                    current.version,
                    report.channel()
                ),
                _ => format!("up to date: {}", current.version),
            }
        }
    }
}

/// Why a deferred client waits: what keeps out each newer release (the three newest
/// at most), so the real blocker is named, not only the newest release's.
fn deferred_sentence(report: &CheckReport) -> String {
    const SHOWN: usize = 3;
    let held = report.held_back();
    let mut reasons: Vec<String> = held.iter().take(SHOWN).map(ToString::to_string).collect();
    if held.len() > SHOWN {
        reasons.push(format!("and {} older ones", held.len() - SHOWN));
    }
    if reasons.is_empty() {
        return "deferred: no newer release is offered to this client yet".to_owned();
    }
    format!("deferred: {}", reasons.join("; "))
}

/// `; pinned to 1.4, so 1.5.0 is not taken (`config --unpin` follows the channel)`
/// when the pin holds a newer release back; nothing otherwise.
fn pin_note(report: &CheckReport) -> String {
    match (report.pin(), report.pinned_out()) {
        (Some(pin), Some(out)) => format!(
            "; pinned to {pin}, so {out} is not taken (`wavecast-update config --unpin` follows the whole channel)"
        ),
        _ => String::new(),
    }
}

/// `image os 1.1.0 written to slot b (`/dev/sda3`) from a 1.2 KiB patch against
/// slot a; on-activate `…` passed in 0.1s; slot b is active (was a)`.
pub(crate) fn image_line(image: &SlotActivation) -> String {
    let written = match &image.source {
        ImageSource::InSlot => "already in".to_owned(),
        ImageSource::Patch {
            base,
            algorithm,
            bytes,
        } => format!(
            "written from a {} {} patch against slot {base} to",
            format_bytes(*bytes),
            algorithm.as_str()
        ),
        ImageSource::Package { bytes } => {
            format!("written from its {} package to", format_bytes(*bytes))
        }
        _ => "written to".to_owned(),
    };
    let mut line = format!(
        "image {} {} {written} slot {} (`{}`)",
        image.module,
        image.version,
        image.slot,
        image.slot_path.display()
    );
    if image.fallbacks > 0 {
        line.push_str(&format!(" after {} failed patch(es)", image.fallbacks));
    }
    if let Some(hook) = &image.hook {
        line.push_str(&format!(
            "; on-activate `{}` {}",
            hook.command,
            hook.describe()
        ));
    }
    line.push_str(&match (image.switched, image.previous) {
        (false, _) => format!("; slot {} was active already", image.slot),
        (true, Some(previous)) => format!("; slot {} is active (was {previous})", image.slot),
        (true, None) => format!("; slot {} is active", image.slot),
    });
    line
}

/// ` (was 1.0.0)` when `tree`'s install replaced a release, else nothing.
pub(crate) fn was_suffix(tree: &TreeReport) -> String {
    tree.previous
        .as_ref()
        .map_or_else(String::new, |previous| format!(" (was {previous})"))
}

/// What followed a switch: the health check's line, if one ran, then the release
/// trees the prune deleted.
pub(crate) fn print_after_switch(installed: &InstallReport) {
    if let Some(health) = &installed.health_check {
        stderr_line(&format!(
            "health check `{}` {}",
            health.command,
            health.describe()
        ));
    }
    print_pruned(&installed.pruned_releases);
}

/// `deleted release trees: releases/1.0.0-…`, when a prune deleted any.
pub(crate) fn print_pruned(pruned: &[PrunedRelease]) {
    if !pruned.is_empty() {
        let dirs: Vec<String> = pruned
            .iter()
            .map(|release| format!("releases/{}", release.dir))
            .collect();
        stderr_line(&format!("deleted release trees: {}", dirs.join(", ")));
    }
}

/// `region=eu, tenant=acme`, or `none`.
pub(crate) fn attribute_list(attributes: &Attributes) -> String {
    if attributes.is_empty() {
        return "none".to_owned();
    }
    attributes
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `1 release`, `3 releases`.
pub(crate) fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}
