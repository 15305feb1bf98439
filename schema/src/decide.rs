//! The update decision: which release a client should run, from the manifest, what
//! the client knows about itself and its clock. Pure, so any decision can be replayed
//! offline.
//!
//! # How a release is judged for one client
//!
//! 1. A yanked release is offered to nobody; a paused one to nobody new.
//! 2. The first rule matching the client's current version and attributes decides:
//!    `mandatory` admits it at once, `exclude` keeps it out, a share replaces the
//!    release's default share. With no matching rule the default share applies.
//! 3. A cap keeps out every bucket at or above it (mandatory rules excepted).
//! 4. The client is in when its bucket is below the share's threshold at `now` (for a
//!    ramp, the threshold grows with time). In [`Mode::Manual`] (`update --now`) the
//!    share and ramp are skipped, but never a yank, a pause, an excluding rule or a cap.
//!
//! # Which release wins
//!
//! The highest release newer than the installed one that admits the client. If none
//! does and the installed release was yanked, or capped below this client's bucket,
//! the client moves to the highest release that admits it, up or down. A client never
//! moves down otherwise.
//!
//! # A pinned client
//!
//! A client pinned to a line ([`VersionPin`], `config --pin 1.4`) judges only the
//! releases on it, as if the manifest listed no others, and never leaves its line on
//! its own; [`Decision::pinned_out`] names the newest release the pin keeps it from.
//!
//! # Releases a client refuses
//!
//! [`decide_skipping`] takes the versions a client has marked bad on its own machine
//! (a failed health check, launches never confirmed, a rollback on request) and treats
//! them as if the manifest did not list them: never a target, not even to leave a
//! withdrawn release, and never the `newest`. A release newer than a skipped one is
//! judged as usual, so publishing a fix brings the client forward.

use std::collections::BTreeSet;

use jiff::Timestamp;
use semver::Version;

use crate::ids::{InstallId, Platform};
use crate::manifest::{Manifest, Release};
use crate::pin::VersionPin;
use crate::rollout::{Attributes, BasisPoints, Rule, RuleAction, bucket};

/// What a client knows about itself when deciding.
#[derive(Debug, Clone, Copy)]
pub struct ClientView<'a> {
    /// The client's random install id.
    pub install_id: &'a InstallId,
    /// The platform the client runs on; releases without it (or `any`) are skipped.
    pub platform: &'a Platform,
    /// The installed version, `None` before the first install.
    pub current: Option<&'a Version>,
    /// Attributes the client declares (region, tenant, server id…), matched by rules.
    pub attributes: &'a Attributes,
    /// The line of releases the client stays on, if it is pinned: releases off it
    /// are not candidates.
    pub pin: Option<&'a VersionPin>,
}

/// Whether the decision follows the rollout schedule or a person's explicit request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Shares, ramps, rules, caps, pauses and yanks all apply.
    Scheduled,
    /// `update --now`: shares and ramps are skipped; pauses, yanks, excluding rules
    /// and caps still apply.
    Manual,
}

/// The outcome of [`decide`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Another release (newer, or older when the installed one was withdrawn) should
    /// be installed.
    Update,
    /// Nothing better exists for this client.
    UpToDate,
    /// Newer releases exist, but none admits this client yet.
    Deferred,
}

impl Outcome {
    /// The outcome's name in `check --json` output.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Update => "update",
            Self::UpToDate => "up_to_date",
            Self::Deferred => "deferred",
        }
    }
}

/// Why a release keeps a client out regardless of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exclusion {
    /// The release was yanked.
    Yanked,
    /// The rollout is paused.
    Paused,
    /// A rule with the `exclude` action matched.
    Rule,
    /// The client's bucket is at or above the release's cap.
    Capped,
}

impl Exclusion {
    /// The exclusion's name in `check --json` output.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Yanked => "yanked",
            Self::Paused => "paused",
            Self::Rule => "excluded_by_rule",
            Self::Capped => "capped",
        }
    }
}

/// Why the installed release must be left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Withdrawal {
    /// It was yanked.
    Yanked,
    /// Its cap no longer covers this client's bucket.
    Capped,
}

impl Withdrawal {
    /// The withdrawal's name in `check --json` output.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Yanked => "yanked",
            Self::Capped => "capped",
        }
    }
}

/// The rollout test that settled a decision, so it can be shown and reproduced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppliedRollout<'m> {
    /// The release whose rollout plan applied.
    pub release: &'m Release,
    /// The client's bucket for that release, `0..10000`.
    pub bucket: u16,
    /// The threshold in force at decision time (after any cap); the client is in when
    /// `bucket < threshold`, unless a rule or exclusion says otherwise.
    pub threshold: BasisPoints,
    /// The rule that applied, if any.
    pub rule: Option<&'m Rule>,
    /// Why the release keeps the client out regardless of time, if it does.
    pub exclusion: Option<Exclusion>,
}

/// Which release a client should run, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision<'m> {
    /// Update, up to date, or deferred.
    pub outcome: Outcome,
    /// The release to install (for [`Outcome::Update`]), else `None`.
    pub target: Option<&'m Release>,
    /// The newest release available for the client's platform that is not yanked.
    pub newest: Option<&'m Release>,
    /// The rollout test that settled the decision: the target's for an update, the
    /// newest release's for a deferral, and the installed release's (when it is still
    /// listed) for up to date.
    pub applied: Option<AppliedRollout<'m>>,
    /// The update is mandatory: install without asking.
    pub mandatory: bool,
    /// The installed release was withdrawn, so the target may be older.
    pub withdrawn: Option<Withdrawal>,
    /// For a deferral, the first instant at which a newer release will admit this
    /// client as the manifest stands, if that time is known (ramps); `None` when only
    /// a change to the manifest can let it in.
    pub eligible_at: Option<Timestamp>,
    /// Every release newer than the installed one (on the client's pin, not yanked)
    /// that does not admit this client now, newest first, each with what keeps it
    /// out: all a deferred client waits for, not only the newest.
    pub held_back: Vec<Offer<'m>>,
    /// The newest release (not yanked, newer than the installed one) that the
    /// client's pin keeps it from, if any.
    pub pinned_out: Option<&'m Release>,
}

/// How one release judges one client at one moment ([`offer`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offer<'m> {
    /// The rollout test, with the bucket, threshold, rule and exclusion.
    pub applied: AppliedRollout<'m>,
    /// Whether the release admits the client now.
    pub admitted: bool,
    /// Whether it admits the client by a `mandatory` rule.
    pub mandatory: bool,
    /// When a release that does not admit the client yet will, as the manifest
    /// stands (ramps); `None` when it admits it, or only a change can let it in.
    pub eligible_at: Option<Timestamp>,
}

/// How `release` judges this client at `now` in `mode`: the steps 1 to 4 of the
/// module docs for one release, whatever the others say (what `list` shows).
pub fn offer<'m>(
    release: &'m Release,
    client: &ClientView<'_>,
    now: Timestamp,
    mode: Mode,
) -> Offer<'m> {
    judge(release, client, now, mode)
}

fn judge<'m>(
    release: &'m Release,
    client: &ClientView<'_>,
    now: Timestamp,
    mode: Mode,
) -> Offer<'m> {
    let plan = &release.rollout;
    let bucket = bucket(client.install_id, &plan.salt);
    let rule = plan.matching_rule(client.current, client.attributes);
    let elapsed = plan
        .started_at
        .map(|start| now.as_second() - start.as_second());
    let share = match rule.map(|rule| &rule.action) {
        Some(RuleAction::Share(share)) => Some(share),
        Some(RuleAction::Mandatory | RuleAction::Exclude) => None,
        None => Some(&plan.share),
    };
    let mut threshold = share.map_or(BasisPoints::ALL, |share| share.threshold_at(elapsed));
    if let (Some(cap), Some(_)) = (plan.cap, share) {
        threshold = threshold.min(cap);
    }
    let exclusion = if plan.yanked {
        Some(Exclusion::Yanked)
    } else if plan.paused_at.is_some() {
        Some(Exclusion::Paused)
    } else if matches!(rule.map(|rule| &rule.action), Some(RuleAction::Exclude)) {
        Some(Exclusion::Rule)
    } else if share.is_some() && plan.cap.is_some_and(|cap| bucket >= cap.get()) {
        Some(Exclusion::Capped)
    } else {
        None
    };
    let mandatory = exclusion.is_none() && share.is_none();
    let admitted = exclusion.is_none()
        && (mandatory
            || mode == Mode::Manual
            || share.is_some_and(|share| share.admits(bucket, elapsed)));
    let eligible_at = match (exclusion, share, plan.started_at) {
        (None, Some(share), Some(start)) if !admitted => share
            .admitted_after(bucket)
            .and_then(|after| i64::try_from(after).ok())
            .and_then(|after| Timestamp::from_second(start.as_second().checked_add(after)?).ok()),
        _ => None,
    };
    Offer {
        applied: AppliedRollout {
            release,
            bucket,
            threshold,
            rule,
            exclusion,
        },
        admitted,
        mandatory,
        eligible_at,
    }
}

/// Picks the release this client should run; see the module docs for the rules.
pub fn decide<'m>(
    manifest: &'m Manifest,
    client: &ClientView<'_>,
    now: Timestamp,
    mode: Mode,
) -> Decision<'m> {
    decide_skipping(manifest, client, now, mode, &BTreeSet::new())
}

/// [`decide`] for a client that refuses the releases whose versions are in `skip`:
/// they are treated as if the manifest did not list them (see the module docs). An
/// installed release that is skipped is therefore never judged withdrawn; the
/// client leaves it only for a newer release.
pub fn decide_skipping<'m>(
    manifest: &'m Manifest,
    client: &ClientView<'_>,
    now: Timestamp,
    mode: Mode,
    skip: &BTreeSet<Version>,
) -> Decision<'m> {
    let mut listed: Vec<&Release> = manifest
        .releases
        .iter()
        .filter(|release| release.for_platform(client.platform).is_some())
        .filter(|release| !skip.contains(&release.version))
        .collect();
    listed.sort_by(|a, b| b.version.cmp(&a.version));
    let is_newer = |release: &&Release| {
        client
            .current
            .is_none_or(|current| &release.version > current)
    };
    let on_pin = |release: &&Release| client.pin.is_none_or(|pin| pin.matches(&release.version));
    let pinned_out = listed
        .iter()
        .copied()
        .filter(is_newer)
        .find(|release| !release.rollout.yanked && !on_pin(release));
    let candidates: Vec<&Release> = listed.into_iter().filter(on_pin).collect();
    let newest = candidates
        .iter()
        .copied()
        .find(|release| !release.rollout.yanked);

    let mut held_back: Vec<Offer<'m>> = Vec::new();
    for release in candidates.iter().copied().filter(is_newer) {
        let judgement = judge(release, client, now, mode);
        if judgement.admitted {
            return update(judgement, newest, None, held_back, pinned_out);
        }
        if !release.rollout.yanked {
            held_back.push(judgement);
        }
    }
    let eligible_at = held_back.iter().filter_map(|offer| offer.eligible_at).min();

    let installed = client.current.and_then(|current| {
        candidates
            .iter()
            .copied()
            .find(|release| &release.version == current)
    });
    let installed_judgement = installed.map(|release| judge(release, client, now, Mode::Scheduled));
    let withdrawn = installed_judgement.and_then(|judgement| match judgement.applied.exclusion {
        Some(Exclusion::Yanked) => Some(Withdrawal::Yanked),
        Some(Exclusion::Capped) => Some(Withdrawal::Capped),
        _ => None,
    });
    if withdrawn.is_some() {
        let replacement = candidates
            .iter()
            .copied()
            .filter(|release| Some(&release.version) != client.current)
            .map(|release| judge(release, client, now, mode))
            .find(|judgement| judgement.admitted);
        if let Some(judgement) = replacement {
            return update(judgement, newest, withdrawn, held_back, pinned_out);
        }
    }

    match held_back.first().copied() {
        Some(judgement) => Decision {
            outcome: Outcome::Deferred,
            target: None,
            newest,
            applied: Some(judgement.applied),
            mandatory: false,
            withdrawn,
            eligible_at,
            held_back,
            pinned_out,
        },
        None => Decision {
            outcome: Outcome::UpToDate,
            target: None,
            newest,
            applied: installed_judgement.map(|judgement| judgement.applied),
            mandatory: false,
            withdrawn,
            eligible_at: None,
            held_back,
            pinned_out,
        },
    }
}

fn update<'m>(
    judgement: Offer<'m>,
    newest: Option<&'m Release>,
    withdrawn: Option<Withdrawal>,
    held_back: Vec<Offer<'m>>,
    pinned_out: Option<&'m Release>,
) -> Decision<'m> {
    Decision {
        outcome: Outcome::Update,
        target: Some(judgement.applied.release),
        newest,
        applied: Some(judgement.applied),
        mandatory: judgement.mandatory,
        withdrawn,
        eligible_at: None,
        held_back,
        pinned_out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::tests::{manifest, release};
    use crate::rollout::{Ramp, Share};

    fn id(n: u64) -> InstallId {
        format!("client{n:08}").parse().unwrap()
    }

    fn any() -> Platform {
        "any".parse().unwrap()
    }

    fn version(text: &str) -> Version {
        text.parse().unwrap()
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    const NOW: &str = "2026-11-21T00:00:00Z";

    /// Decides for client `n` on `current` with `attributes`, at `now`.
    fn decide_for<'m>(
        manifest: &'m Manifest,
        n: u64,
        current: Option<&str>,
        attributes: &Attributes,
        now: &str,
        mode: Mode,
    ) -> Decision<'m> {
        let install_id = id(n);
        let platform = any();
        let current = current.map(version);
        let view = ClientView {
            install_id: &install_id,
            platform: &platform,
            current: current.as_ref(),
            attributes,
            pin: None,
        };
        decide(manifest, &view, at(now), mode)
    }

    fn target(decision: &Decision<'_>) -> Option<String> {
        decision.target.map(|release| release.version.to_string())
    }

    fn with_plan(mut release: Release, change: impl FnOnce(&mut crate::RolloutPlan)) -> Release {
        change(&mut release.rollout);
        release
    }

    fn rule(text: &str) -> Rule {
        text.parse().unwrap()
    }

    #[test]
    fn a_fresh_client_always_gets_something_when_an_older_release_is_at_full() {
        let manifest = manifest(vec![release("1.0.0", 10_000), release("1.1.0", 3000)]);
        let none = Attributes::new();
        let mut newest = 0;
        for n in 0..2000 {
            let decision = decide_for(&manifest, n, None, &none, NOW, Mode::Scheduled);
            assert_eq!(decision.outcome, Outcome::Update);
            let applied = decision.applied.unwrap();
            assert_eq!(applied.release.version, decision.target.unwrap().version);
            assert!(applied.bucket < applied.threshold.get());
            newest += usize::from(target(&decision).as_deref() == Some("1.1.0"));
        }
        assert!(
            (500..700).contains(&newest),
            "about 30% should get 1.1.0, got {newest}/2000"
        );
    }

    #[test]
    fn a_client_outside_the_newest_rollout_is_deferred_with_the_threshold_that_applied() {
        let manifest = manifest(vec![release("1.0.0", 10_000), release("1.1.0", 3000)]);
        let none = Attributes::new();
        let (mut deferred, mut updated) = (0, 0);
        for n in 0..1000 {
            let decision = decide_for(&manifest, n, Some("1.0.0"), &none, NOW, Mode::Scheduled);
            let applied = decision.applied.unwrap();
            assert_eq!(applied.release.version, version("1.1.0"));
            assert_eq!(applied.threshold.get(), 3000);
            match decision.outcome {
                Outcome::Deferred => {
                    assert!(decision.target.is_none() && applied.bucket >= 3000);
                    assert_eq!(decision.eligible_at, None, "a fixed share gives no date");
                    deferred += 1;
                }
                Outcome::Update => {
                    assert!(applied.bucket < 3000);
                    updated += 1;
                }
                Outcome::UpToDate => panic!("1.1.0 is newer than 1.0.0"),
            }
        }
        assert!(deferred > 0 && updated > 0);
    }

    #[test]
    fn the_newest_client_is_up_to_date_and_never_downgraded() {
        let manifest = manifest(vec![release("1.0.0", 10_000), release("1.1.0", 0)]);
        for current in ["1.1.0", "9.0.0"] {
            let decision = decide_for(
                &manifest,
                1,
                Some(current),
                &Attributes::new(),
                NOW,
                Mode::Scheduled,
            );
            assert_eq!(decision.outcome, Outcome::UpToDate);
            assert!(decision.target.is_none() && decision.withdrawn.is_none());
        }
    }

    #[test]
    fn releases_for_other_platforms_are_invisible() {
        let mut linux_only = release("2.0.0", 10_000);
        let modules = linux_only.platforms.remove("any").unwrap();
        linux_only
            .platforms
            .insert("x86_64-unknown-linux-gnu".parse().unwrap(), modules);
        let manifest = manifest(vec![release("1.0.0", 10_000), linux_only]);
        let install_id = id(3);
        let none = Attributes::new();
        let on = |platform: &str| {
            let platform: Platform = platform.parse().unwrap();
            let view = ClientView {
                install_id: &install_id,
                platform: &platform,
                current: None,
                attributes: &none,
                pin: None,
            };
            decide(&manifest, &view, at(NOW), Mode::Scheduled)
                .target
                .unwrap()
                .version
                .clone()
        };
        assert_eq!(on("aarch64-apple-darwin"), version("1.0.0"));
        assert_eq!(on("x86_64-unknown-linux-gnu"), version("2.0.0"));
    }

    #[test]
    fn pre_releases_order_below_their_release() {
        let manifest = manifest(vec![
            release("2.0.0-rc.1", 10_000),
            release("2.0.0", 10_000),
        ]);
        let decision = decide_for(
            &manifest,
            4,
            Some("2.0.0-rc.1"),
            &Attributes::new(),
            NOW,
            Mode::Scheduled,
        );
        assert_eq!(target(&decision).as_deref(), Some("2.0.0"));
    }

    #[test]
    fn an_empty_channel_is_up_to_date() {
        let manifest = manifest(vec![]);
        let decision = decide_for(&manifest, 5, None, &Attributes::new(), NOW, Mode::Scheduled);
        assert_eq!(decision.outcome, Outcome::UpToDate);
        assert!(decision.newest.is_none() && decision.applied.is_none());
    }

    #[test]
    fn a_ramp_admits_each_client_at_its_eligible_at() {
        let ramped = with_plan(release("2.0.0", 0), |plan| {
            plan.share = Share::ramped("1%@0h,5%@4h,25%@1d,100%@3d".parse().unwrap());
            plan.started_at = Some(at(NOW));
        });
        let manifest = manifest(vec![release("1.0.0", 10_000), ramped]);
        let none = Attributes::new();
        for n in 0..300 {
            let before = decide_for(
                &manifest,
                n,
                Some("1.0.0"),
                &none,
                "2026-11-20T23:59:59Z",
                Mode::Scheduled,
            );
            assert_eq!(
                before.outcome,
                Outcome::Deferred,
                "nothing before the ramp starts"
            );
            let start = decide_for(&manifest, n, Some("1.0.0"), &none, NOW, Mode::Scheduled);
            if start.outcome == Outcome::Update {
                continue;
            }
            let eligible_at = start
                .eligible_at
                .expect("a ramp to 100% admits everyone eventually");
            let just_before = (eligible_at - jiff::SignedDuration::from_secs(1)).to_string();
            let exactly = eligible_at.to_string();
            assert_eq!(
                decide_for(
                    &manifest,
                    n,
                    Some("1.0.0"),
                    &none,
                    &just_before,
                    Mode::Scheduled
                )
                .outcome,
                Outcome::Deferred
            );
            assert_eq!(
                decide_for(
                    &manifest,
                    n,
                    Some("1.0.0"),
                    &none,
                    &exactly,
                    Mode::Scheduled
                )
                .outcome,
                Outcome::Update
            );
            assert!(eligible_at <= at("2026-11-24T00:00:00Z"));
        }
    }

    #[test]
    fn rules_by_version_first_match_wins_and_mandatory_overrides_the_ramp() {
        // Below 2.0 must update now, 2.x at 20 %, 3.0 at 5 %, everyone else at 0 %.
        let plan_release = with_plan(release("3.1.0", 0), |plan| {
            plan.share = Share::ramped("0%@0h,100%@30d".parse().unwrap());
            plan.started_at = Some(at(NOW));
            plan.rules = vec![
                rule("legacy: from < 2.0 -> mandatory"),
                rule("two: from >= 2.0; from < 3.0 -> 20%"),
                rule("three: from >= 3.0; from < 3.1 -> 5%"),
            ];
        });
        let manifest = manifest(vec![plan_release]);
        let none = Attributes::new();
        let share_of = |current: &str| {
            (0..4000)
                .filter(|n| {
                    decide_for(&manifest, *n, Some(current), &none, NOW, Mode::Scheduled).outcome
                        == Outcome::Update
                })
                .count()
        };
        assert_eq!(share_of("1.9.0"), 4000);
        let two = share_of("2.4.0");
        let three = share_of("3.0.2");
        assert!((700..900).contains(&two), "2.x at 20%: {two}/4000");
        assert!((130..270).contains(&three), "3.0 at 5%: {three}/4000");
        assert_eq!(share_of("3.1.0"), 0, "clients on the newest get nothing");

        let legacy = decide_for(&manifest, 7, Some("1.0.0"), &none, NOW, Mode::Scheduled);
        assert!(legacy.mandatory);
        assert_eq!(legacy.applied.unwrap().rule.unwrap().name, "legacy");
        let two = decide_for(&manifest, 7, Some("2.0.0"), &none, NOW, Mode::Scheduled);
        assert_eq!(two.applied.unwrap().rule.unwrap().name, "two");
        assert!(!two.mandatory);
    }

    #[test]
    fn attribute_rules_route_server_groups_and_exclusions() {
        let routed = with_plan(release("2.0.0", 0), |plan| {
            plan.rules = vec![
                rule("lab-servers: server_id = lab-1 -> 100%"),
                rule("blocked-tenant: tenant in initech|hooli -> exclude"),
                rule("small-ids: user_id ~ [0-9]{1,7} -> 100%"),
            ];
        });
        let manifest = manifest(vec![release("1.0.0", 10_000), routed]);
        let attrs = |pairs: &[(&str, &str)]| -> Attributes {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let run = |attributes: &Attributes| {
            decide_for(
                &manifest,
                11,
                Some("1.0.0"),
                attributes,
                NOW,
                Mode::Scheduled,
            )
        };
        let lab = run(&attrs(&[("server_id", "lab-1"), ("tenant", "initech")]));
        assert_eq!(
            lab.outcome,
            Outcome::Update,
            "first match wins over the exclusion"
        );
        let blocked = run(&attrs(&[("tenant", "hooli"), ("user_id", "42")]));
        assert_eq!(blocked.outcome, Outcome::Deferred);
        assert_eq!(blocked.applied.unwrap().exclusion, Some(Exclusion::Rule));
        assert_eq!(
            run(&attrs(&[("user_id", "1234567")])).outcome,
            Outcome::Update
        );
        assert_eq!(
            run(&attrs(&[("user_id", "12345678")])).outcome,
            Outcome::Deferred
        );
        assert_eq!(run(&Attributes::new()).outcome, Outcome::Deferred);
    }

    #[test]
    fn manual_mode_skips_shares_but_not_pauses_yanks_exclusions_or_caps() {
        let base = |change: fn(&mut crate::RolloutPlan)| {
            manifest(vec![
                release("1.0.0", 10_000),
                with_plan(release("2.0.0", 0), change),
            ])
        };
        let none = Attributes::new();
        let manual = |manifest: &Manifest| {
            decide_for(manifest, 3, Some("1.0.0"), &none, NOW, Mode::Manual).outcome
        };
        assert_eq!(manual(&base(|_| {})), Outcome::Update);
        assert_eq!(
            manual(&base(|plan| plan.paused_at = Some(at(NOW)))),
            Outcome::Deferred
        );
        assert_eq!(manual(&base(|plan| plan.yanked = true)), Outcome::UpToDate);
        assert_eq!(
            manual(&base(|plan| plan.rules = vec![rule("all: -> exclude")])),
            Outcome::Deferred
        );
        assert_eq!(
            manual(&base(|plan| plan.cap = BasisPoints::new(0))),
            Outcome::Deferred
        );
    }

    #[test]
    fn yanked_and_capped_releases_move_their_clients_to_the_best_allowed() {
        let none = Attributes::new();
        let yanked = manifest(vec![
            release("1.0.0", 10_000),
            release("1.1.0", 10_000),
            with_plan(release("1.2.0", 10_000), |plan| plan.yanked = true),
        ]);
        let moved = decide_for(&yanked, 1, Some("1.2.0"), &none, NOW, Mode::Scheduled);
        assert_eq!(target(&moved).as_deref(), Some("1.1.0"));
        assert_eq!(moved.withdrawn, Some(Withdrawal::Yanked));
        assert_eq!(moved.newest.unwrap().version, version("1.1.0"));
        let fresh = decide_for(&yanked, 1, None, &none, NOW, Mode::Scheduled);
        assert_eq!(
            target(&fresh).as_deref(),
            Some("1.1.0"),
            "a yanked release is never picked"
        );

        // A newer release that admits the client wins over moving down.
        let up = manifest(vec![
            release("1.0.0", 10_000),
            with_plan(release("1.1.0", 10_000), |plan| plan.yanked = true),
            release("1.2.0", 10_000),
        ]);
        assert_eq!(
            target(&decide_for(
                &up,
                2,
                Some("1.1.0"),
                &none,
                NOW,
                Mode::Scheduled
            ))
            .as_deref(),
            Some("1.2.0")
        );

        let capped = manifest(vec![
            release("1.0.0", 10_000),
            with_plan(release("1.1.0", 10_000), |plan| {
                plan.cap = BasisPoints::new(2500)
            }),
        ]);
        let (mut moved_back, mut stayed) = (0, 0);
        for n in 0..1000 {
            let decision = decide_for(&capped, n, Some("1.1.0"), &none, NOW, Mode::Scheduled);
            let bucket = bucket(&id(n), &capped.releases[0].rollout.salt);
            if bucket >= 2500 {
                assert_eq!(target(&decision).as_deref(), Some("1.0.0"));
                assert_eq!(decision.withdrawn, Some(Withdrawal::Capped));
                moved_back += 1;
            } else {
                assert_eq!(decision.outcome, Outcome::UpToDate);
                stayed += 1;
            }
        }
        assert!(moved_back > 600 && stayed > 150, "{moved_back} {stayed}");
    }

    /// One case of [`skipped_releases_are_never_targets_and_a_newer_release_is_taken_as_usual`].
    struct SkipCase {
        releases: Vec<Release>,
        installed: Option<&'static str>,
        skipped: &'static [&'static str],
        outcome: Outcome,
        target: Option<&'static str>,
        newest: Option<&'static str>,
    }

    #[test]
    fn skipped_releases_are_never_targets_and_a_newer_release_is_taken_as_usual() {
        let none = Attributes::new();
        let yanked = |text: &str| with_plan(release(text, 10_000), |plan| plan.yanked = true);
        let full = |text: &str| release(text, 10_000);
        let table = [
            // A bad newer release is not installed again.
            SkipCase {
                releases: vec![full("1.0.0"), full("1.1.0")],
                installed: Some("1.0.0"),
                skipped: &["1.1.0"],
                outcome: Outcome::UpToDate,
                target: None,
                newest: Some("1.0.0"),
            },
            // Until a newer one appears.
            SkipCase {
                releases: vec![full("1.0.0"), full("1.1.0"), full("1.2.0")],
                installed: Some("1.0.0"),
                skipped: &["1.1.0"],
                outcome: Outcome::Update,
                target: Some("1.2.0"),
                newest: Some("1.2.0"),
            },
            // A fresh install falls back past a bad release.
            SkipCase {
                releases: vec![full("1.0.0"), full("1.1.0")],
                installed: None,
                skipped: &["1.1.0"],
                outcome: Outcome::Update,
                target: Some("1.0.0"),
                newest: Some("1.0.0"),
            },
            // Leaving a yanked release never lands on a bad one.
            SkipCase {
                releases: vec![full("1.0.0"), full("1.1.0"), yanked("1.2.0")],
                installed: Some("1.2.0"),
                skipped: &["1.1.0"],
                outcome: Outcome::Update,
                target: Some("1.0.0"),
                newest: Some("1.0.0"),
            },
            // Nowhere to go but a bad release: stay.
            SkipCase {
                releases: vec![full("1.1.0"), yanked("1.2.0")],
                installed: Some("1.2.0"),
                skipped: &["1.1.0"],
                outcome: Outcome::UpToDate,
                target: None,
                newest: None,
            },
            // An installed release that is skipped is left only for a newer one.
            SkipCase {
                releases: vec![full("1.0.0"), yanked("1.1.0")],
                installed: Some("1.1.0"),
                skipped: &["1.1.0"],
                outcome: Outcome::UpToDate,
                target: None,
                newest: Some("1.0.0"),
            },
            // Skipping nothing decides as `decide` does.
            SkipCase {
                releases: vec![full("1.0.0"), full("1.1.0")],
                installed: Some("1.0.0"),
                skipped: &[],
                outcome: Outcome::Update,
                target: Some("1.1.0"),
                newest: Some("1.1.0"),
            },
        ];
        for (row, case) in table.into_iter().enumerate() {
            let manifest = manifest(case.releases);
            let install_id = id(9);
            let platform = any();
            let current = case.installed.map(version);
            let view = ClientView {
                install_id: &install_id,
                platform: &platform,
                current: current.as_ref(),
                attributes: &none,
                pin: None,
            };
            let skip: BTreeSet<Version> = case.skipped.iter().copied().map(version).collect();
            let decision = decide_skipping(&manifest, &view, at(NOW), Mode::Manual, &skip);
            assert_eq!(decision.outcome, case.outcome, "row {row}");
            assert_eq!(target(&decision).as_deref(), case.target, "row {row}");
            assert_eq!(
                decision
                    .newest
                    .map(|release| release.version.to_string())
                    .as_deref(),
                case.newest,
                "row {row}"
            );
            if case.skipped.is_empty() {
                assert_eq!(decision, decide(&manifest, &view, at(NOW), Mode::Manual));
            }
        }
    }

    #[test]
    fn a_paused_release_keeps_its_clients_and_takes_no_new_ones() {
        let paused = manifest(vec![
            release("1.0.0", 10_000),
            with_plan(release("1.1.0", 10_000), |plan| {
                plan.paused_at = Some(at(NOW))
            }),
        ]);
        let none = Attributes::new();
        assert_eq!(
            decide_for(&paused, 1, Some("1.1.0"), &none, NOW, Mode::Scheduled).outcome,
            Outcome::UpToDate
        );
        let waiting = decide_for(&paused, 1, Some("1.0.0"), &none, NOW, Mode::Scheduled);
        assert_eq!(waiting.outcome, Outcome::Deferred);
        assert_eq!(waiting.applied.unwrap().exclusion, Some(Exclusion::Paused));
        assert_eq!(waiting.eligible_at, None);
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        fn ramp_strategy() -> impl Strategy<Value = Ramp> {
            proptest::collection::vec((1u64..200_000, 0u16..=10_000), 1..6).prop_map(|mut steps| {
                steps.sort_by_key(|(_, share)| *share);
                let mut after = 0;
                let points = steps
                    .into_iter()
                    .map(|(gap, share)| {
                        after += gap;
                        crate::RampPoint {
                            after_seconds: after,
                            basis_points: BasisPoints::new(share).unwrap(),
                        }
                    })
                    .collect();
                Ramp::new(points).unwrap()
            })
        }

        fn ramped(ramp: Ramp) -> Manifest {
            manifest(vec![
                release("1.0.0", 10_000),
                with_plan(release("2.0.0", 0), |plan| {
                    plan.share = Share::ramped(ramp);
                    plan.started_at = Some(at(NOW));
                }),
            ])
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(200))]

            #[test]
            fn admission_is_monotone_in_time(ramp in ramp_strategy(), n in 0u64..1_000_000, t1 in 0i64..1_000_000, dt in 0i64..1_000_000) {
                let manifest = ramped(ramp);
                let when = |offset: i64| Timestamp::from_second(at(NOW).as_second() + offset).unwrap().to_string();
                let none = Attributes::new();
                let early = decide_for(&manifest, n, Some("1.0.0"), &none, &when(t1), Mode::Scheduled);
                let late = decide_for(&manifest, n, Some("1.0.0"), &none, &when(t1 + dt), Mode::Scheduled);
                prop_assert!(early.outcome != Outcome::Update || late.outcome == Outcome::Update);
            }

            #[test]
            fn admission_is_monotone_in_the_percentage(low in 0u16..=10_000, extra in 0u16..=10_000, n in 0u64..1_000_000) {
                let high = low.saturating_add(extra).min(10_000);
                let at_share = |share| manifest(vec![release("1.0.0", 10_000), release("2.0.0", share)]);
                let none = Attributes::new();
                let (low_manifest, high_manifest) = (at_share(low), at_share(high));
                let before = decide_for(&low_manifest, n, Some("1.0.0"), &none, NOW, Mode::Scheduled);
                let after = decide_for(&high_manifest, n, Some("1.0.0"), &none, NOW, Mode::Scheduled);
                prop_assert!(before.outcome != Outcome::Update || after.outcome == Outcome::Update);
            }

            #[test]
            fn the_first_matching_rule_applies(shares in proptest::collection::vec(0u16..=10_000, 1..6), matching in 0usize..6, n in 0u64..100_000) {
                let matching = matching % shares.len();
                let rules: Vec<Rule> = shares
                    .iter()
                    .enumerate()
                    .map(|(i, share)| {
                        let value = if i >= matching { "yes" } else { "no" };
                        rule(&format!("r{i}: flag = {value} -> {}", BasisPoints::new(*share).unwrap()))
                    })
                    .collect();
                let manifest = manifest(vec![with_plan(release("2.0.0", 0), |plan| plan.rules = rules)]);
                let attributes: Attributes = [("flag".to_owned(), "yes".to_owned())].into();
                let decision = decide_for(&manifest, n, Some("1.0.0"), &attributes, NOW, Mode::Scheduled);
                let applied = decision.applied.unwrap();
                prop_assert_eq!(applied.rule.unwrap().name.clone(), format!("r{matching}"));
                prop_assert_eq!(decision.outcome == Outcome::Update, applied.bucket < shares[matching]);
            }

            #[test]
            fn mandatory_overrides_any_ramp_and_cap(ramp in ramp_strategy(), cap in 0u16..=10_000, n in 0u64..1_000_000, offset in -100_000i64..1_000_000) {
                let manifest = manifest(vec![with_plan(release("2.0.0", 0), |plan| {
                    plan.share = Share::ramped(ramp);
                    plan.started_at = Some(at(NOW));
                    plan.cap = BasisPoints::new(cap);
                    plan.rules = vec![rule("old: from < 2.0 -> mandatory")];
                })]);
                let when = Timestamp::from_second(at(NOW).as_second() + offset).unwrap().to_string();
                let decision = decide_for(&manifest, n, Some("1.5.0"), &Attributes::new(), &when, Mode::Scheduled);
                prop_assert_eq!(decision.outcome, Outcome::Update);
                prop_assert!(decision.mandatory);
            }

            #[test]
            fn yanked_or_capped_out_clients_always_leave(cap in 0u16..=10_000, yank in proptest::bool::ANY, n in 0u64..1_000_000) {
                let manifest = manifest(vec![
                    release("1.0.0", 10_000),
                    with_plan(release("1.1.0", 10_000), |plan| {
                        plan.cap = BasisPoints::new(cap);
                        plan.yanked = yank;
                    }),
                ]);
                let decision = decide_for(&manifest, n, Some("1.1.0"), &Attributes::new(), NOW, Mode::Scheduled);
                let bucket = bucket(&id(n), &manifest.releases[0].rollout.salt);
                let must_leave = yank || bucket >= cap;
                prop_assert_eq!(decision.outcome == Outcome::Update, must_leave);
                if must_leave {
                    let moved_to = target(&decision);
                    prop_assert_eq!(moved_to.as_deref(), Some("1.0.0"));
                }
            }
        }
    }

    /// Decides for client `n` on `current` with no attributes, pinned to `pin`.
    fn decide_pinned<'m>(
        manifest: &'m Manifest,
        n: u64,
        current: Option<&str>,
        pin: Option<&str>,
    ) -> Decision<'m> {
        let install_id = id(n);
        let platform = any();
        let current = current.map(version);
        let pin: Option<VersionPin> = pin.map(|pin| pin.parse().unwrap());
        let none = Attributes::new();
        let view = ClientView {
            install_id: &install_id,
            platform: &platform,
            current: current.as_ref(),
            attributes: &none,
            pin: pin.as_ref(),
        };
        decide(manifest, &view, at(NOW), Mode::Scheduled)
    }

    #[test]
    fn a_pinned_client_stays_on_its_line_and_is_told_what_it_misses() {
        let manifest = manifest(vec![
            release("1.3.0", 10_000),
            release("1.4.0", 10_000),
            release("1.4.1", 10_000),
            release("1.5.0", 10_000),
            with_plan(release("2.0.0", 10_000), |plan| plan.yanked = true),
        ]);
        let decision = decide_pinned(&manifest, 1, Some("1.3.0"), Some("1.4"));
        assert_eq!(target(&decision).as_deref(), Some("1.4.1"));
        assert_eq!(decision.newest.unwrap().version, version("1.4.1"));
        assert_eq!(decision.pinned_out.unwrap().version, version("1.5.0"));

        let decision = decide_pinned(&manifest, 1, Some("1.4.1"), Some("1.4"));
        assert_eq!(decision.outcome, Outcome::UpToDate);
        assert_eq!(decision.pinned_out.unwrap().version, version("1.5.0"));

        // Pinned below the installed line: the client stays, it never moves down.
        let decision = decide_pinned(&manifest, 1, Some("1.5.0"), Some("1.3"));
        assert_eq!(decision.outcome, Outcome::UpToDate);
        assert_eq!(decision.pinned_out, None);

        let unpinned = decide_pinned(&manifest, 1, Some("1.4.1"), None);
        assert_eq!(target(&unpinned).as_deref(), Some("1.5.0"));
        assert_eq!(unpinned.pinned_out, None);
    }

    #[test]
    fn a_deferred_client_hears_of_every_newer_release_and_what_keeps_each_out() {
        // 1.2.0 is paused for everyone; 1.1.0 would be offered but for its cap.
        let manifest = manifest(vec![
            release("1.0.0", 10_000),
            with_plan(release("1.1.0", 10_000), |plan| {
                plan.cap = BasisPoints::new(0);
            }),
            with_plan(release("1.2.0", 10_000), |plan| {
                plan.paused_at = Some(at(NOW));
            }),
        ]);
        let decision = decide_pinned(&manifest, 3, Some("1.0.0"), None);
        assert_eq!(decision.outcome, Outcome::Deferred);
        let held: Vec<(String, Option<Exclusion>)> = decision
            .held_back
            .iter()
            .map(|offer| {
                (
                    offer.applied.release.version.to_string(),
                    offer.applied.exclusion,
                )
            })
            .collect();
        assert_eq!(
            held,
            [
                ("1.2.0".to_owned(), Some(Exclusion::Paused)),
                ("1.1.0".to_owned(), Some(Exclusion::Capped)),
            ]
        );
        assert!(decision.held_back.iter().all(|offer| !offer.admitted));
        let one = offer(
            &manifest.releases[1],
            &ClientView {
                install_id: &id(3),
                platform: &any(),
                current: Some(&version("1.0.0")),
                attributes: &Attributes::new(),
                pin: None,
            },
            at(NOW),
            Mode::Scheduled,
        );
        assert_eq!(one, decision.held_back[1]);
    }
}
