//! Checks shared by the fuzz targets in `fuzz_targets/`.
//!
//! [`check_decision`] states what must hold of any [`Decision`], whatever the
//! manifest, client and clock; the `decide` target also checks how decisions relate
//! across modes and time, and the `manifest` target runs these checks on every
//! manifest that parses.

use jiff::Timestamp;
use wavecast_schema::{
    ClientView, Decision, Manifest, Mode, Outcome, Release, RuleAction, Share, Withdrawal, bucket,
    decide,
};

/// Decides and checks the result with [`check_decision`].
pub fn checked_decide<'m>(
    manifest: &'m Manifest,
    client: &ClientView<'_>,
    now: Timestamp,
    mode: Mode,
) -> Decision<'m> {
    let decision = decide(manifest, client, now, mode);
    check_decision(manifest, client, now, mode, &decision);
    decision
}

/// The releases listed for the client's platform (directly or as `any`).
fn candidates<'m>(manifest: &'m Manifest, client: &ClientView<'_>) -> Vec<&'m Release> {
    manifest
        .releases
        .iter()
        .filter(|release| release.for_platform(client.platform).is_some())
        .collect()
}

/// Whether `release` is newer than what the client runs (anything is, on a fresh
/// install).
fn is_newer(release: &Release, client: &ClientView<'_>) -> bool {
    client
        .current
        .is_none_or(|current| &release.version > current)
}

/// Panics unless `decision` is consistent with the manifest and the documented rules
/// of `wavecast_schema::decide`.
pub fn check_decision(
    manifest: &Manifest,
    client: &ClientView<'_>,
    now: Timestamp,
    mode: Mode,
    decision: &Decision<'_>,
) {
    let candidates = candidates(manifest, client);
    let listed = |release: &Release| candidates.iter().any(|c| std::ptr::eq(*c, release));

    assert_eq!(
        decision.outcome == Outcome::Update,
        decision.target.is_some(),
        "an update, and only an update, has a target: {decision:?}"
    );
    assert!(
        !decision.mandatory || decision.outcome == Outcome::Update,
        "only an update can be mandatory"
    );

    // `newest` is the highest release for the platform that is not yanked.
    let newest = candidates
        .iter()
        .copied()
        .filter(|release| !release.rollout.yanked)
        .max_by(|a, b| a.version.cmp(&b.version));
    assert_eq!(
        decision.newest.map(|release| &release.version),
        newest.map(|release| &release.version),
        "newest"
    );
    if let Some(reported) = decision.newest {
        assert!(listed(reported), "newest is a release of the manifest");
    }

    let installed = client.current.and_then(|current| {
        candidates
            .iter()
            .copied()
            .find(|release| &release.version == current)
    });
    match decision.withdrawn {
        Some(Withdrawal::Yanked) => {
            let installed = installed.expect("only a listed release can be withdrawn");
            assert!(installed.rollout.yanked, "withdrawn as yanked");
        }
        Some(Withdrawal::Capped) => {
            let installed = installed.expect("only a listed release can be withdrawn");
            let plan = &installed.rollout;
            let cap = plan.cap.expect("withdrawn by a cap it does not have");
            assert!(!plan.yanked && plan.paused_at.is_none());
            assert!(bucket(client.install_id, &plan.salt) >= cap.get());
        }
        // A newer release that admits the client wins without looking back.
        None if decision.outcome == Outcome::Update => {}
        None => {
            if let Some(installed) = installed {
                assert!(
                    !installed.rollout.yanked,
                    "the installed release is yanked but not withdrawn"
                );
            }
        }
    }

    let newer_live = candidates
        .iter()
        .any(|release| is_newer(release, client) && !release.rollout.yanked);
    match decision.outcome {
        Outcome::Update => {
            let target = decision.target.expect("checked above");
            check_target(target, client, now, mode, decision);
            assert!(listed(target), "the target is a release of the manifest");
        }
        Outcome::Deferred => {
            assert!(newer_live, "deferred with no newer live release");
            let applied = decision.applied.expect("a deferral says what applied");
            assert!(listed(applied.release));
            assert!(is_newer(applied.release, client) && !applied.release.rollout.yanked);
            if mode == Mode::Manual {
                assert_eq!(
                    decision.eligible_at, None,
                    "time cannot change a manual decision"
                );
            }
            if let Some(at) = decision.eligible_at {
                assert!(at > now, "eligible at {at}, not after now ({now})");
            }
        }
        Outcome::UpToDate => {
            assert!(!newer_live, "up to date with a newer live release");
            assert_eq!(decision.eligible_at, None);
            if let Some(applied) = decision.applied {
                assert_eq!(
                    Some(&applied.release.version),
                    client.current,
                    "up to date reports the installed release"
                );
            }
        }
    }
    if let Some(applied) = decision.applied {
        assert!(applied.bucket < wavecast_schema::BUCKETS);
        assert_eq!(
            applied.bucket,
            bucket(client.install_id, &applied.release.rollout.salt)
        );
        let rule = applied
            .release
            .rollout
            .matching_rule(client.current, client.attributes);
        assert_eq!(
            applied.rule.map(|rule| &rule.name),
            rule.map(|rule| &rule.name),
            "the first matching rule applies"
        );
        if let Some(cap) = applied.release.rollout.cap
            && !matches!(
                rule.map(|rule| &rule.action),
                Some(RuleAction::Mandatory | RuleAction::Exclude)
            )
        {
            assert!(applied.threshold <= cap, "the cap bounds the threshold");
        }
    }
}

/// What must hold of the release a decision installs.
fn check_target(
    target: &Release,
    client: &ClientView<'_>,
    now: Timestamp,
    mode: Mode,
    decision: &Decision<'_>,
) {
    let plan = &target.rollout;
    assert!(!plan.yanked, "a yanked release is never a target");
    assert!(
        plan.paused_at.is_none(),
        "a paused release is never a target"
    );
    assert_ne!(
        Some(&target.version),
        client.current,
        "the target is another release"
    );
    if decision.withdrawn.is_none() {
        assert!(
            is_newer(target, client),
            "a client only moves down when its release is withdrawn"
        );
    }
    let applied = decision.applied.expect("an update says what applied");
    assert!(std::ptr::eq(applied.release, target));
    assert_eq!(applied.exclusion, None, "an excluded client is not updated");

    let bucket = applied.bucket;
    let rule = plan.matching_rule(client.current, client.attributes);
    let share: Option<&Share> = match rule.map(|rule| &rule.action) {
        Some(RuleAction::Mandatory) => None,
        Some(RuleAction::Exclude) => panic!("an excluding rule admitted {target:?}"),
        Some(RuleAction::Share(share)) => Some(share),
        None => Some(&plan.share),
    };
    assert_eq!(
        decision.mandatory,
        share.is_none(),
        "mandatory exactly when a mandatory rule applies"
    );
    if let Some(share) = share {
        if let Some(cap) = plan.cap {
            assert!(bucket < cap.get(), "a capped-out client is never a target");
        }
        if mode == Mode::Scheduled {
            let elapsed = plan
                .started_at
                .map(|start| now.as_second() - start.as_second());
            assert!(
                share.admits(bucket, elapsed),
                "the share admits the client on schedule"
            );
        }
    }
}
