//! Edits of a release's rollout plan: share or ramp, rules, cap, pause, resume,
//! yank, and the copy of a release that promotion adds to another channel.
//!
//! Each edit is a small pure function of a plan or a release and the time, so it can
//! be tested without a site; [`rollout`](crate::rollout) applies them to a channel's
//! manifest, and [`publish`](crate::publish) gives a new release the plan a
//! [`RolloutChange`] makes. [`random_salt`] is the one function here that is not
//! pure: it draws a new plan's salt from the operating system.
//!
//! What a plan means to a client is decided by [`wavecast_schema::decide`].

use jiff::{SignedDuration, Timestamp};
use semver::Version;
use wavecast_schema::{
    BasisPoints, ChannelName, Manifest, Release, RolloutPlan, Rule, RuleAction, Salt, Share,
    VersionRange, format_duration,
};

use crate::error::{Error, Result};

/// The prefix of the rule that `--min-version V` adds: `mandatory-below-V`.
pub const MIN_VERSION_RULE_PREFIX: &str = "mandatory-below-";

/// A change to a release's rollout plan, from the rollout flags of `publish`,
/// `rollout` and `promote`. The default changes nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RolloutChange {
    /// A new default share, fixed or ramped. A ramp starts counting at the time of
    /// the change.
    pub share: Option<Share>,
    /// New rules, in order (the first match wins); `None` keeps the plan's rules and
    /// `Some(vec![])` removes them all.
    pub rules: Option<Vec<Rule>>,
    /// Makes the update mandatory for clients below this version: the rule
    /// `mandatory-below-V: from < V -> mandatory` goes first, replacing any earlier
    /// rule of that kind.
    pub min_version: Option<Version>,
    /// A new cap, or its removal.
    pub cap: CapChange,
}

/// What a [`RolloutChange`] does to the plan's cap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CapChange {
    /// The cap stays as it is.
    #[default]
    Keep,
    /// The cap becomes this share (see [`fleet_cap`]).
    Set(BasisPoints),
    /// The cap is removed.
    Clear,
}

impl RolloutChange {
    /// Whether the change would leave any plan as it is.
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }

    /// Applies the change to `plan` at `now`.
    ///
    /// `started_at` becomes `now` when the change brings a ramp (a ramped share, or a
    /// rule with a ramped share), or when the plan has a ramp and no start; otherwise
    /// it stays as it is.
    pub fn apply(&self, plan: &mut RolloutPlan, now: Timestamp) {
        let mut new_ramp = false;
        if let Some(share) = &self.share {
            new_ramp |= share.ramp.is_some();
            plan.share = share.clone();
        }
        if let Some(rules) = &self.rules {
            new_ramp |= rules.iter().any(Rule::has_ramp);
            plan.rules.clone_from(rules);
        }
        if let Some(version) = &self.min_version {
            plan.rules
                .retain(|rule| !rule.name.starts_with(MIN_VERSION_RULE_PREFIX));
            plan.rules.insert(0, min_version_rule(version));
        }
        match self.cap {
            CapChange::Keep => {}
            CapChange::Set(cap) => plan.cap = Some(cap),
            CapChange::Clear => plan.cap = None,
        }
        if plan.has_ramp() && (new_ramp || plan.started_at.is_none()) {
            plan.started_at = Some(now);
        }
    }

    /// A new plan with `salt`: everyone (100 %), no rules and no cap, then this change.
    pub fn new_plan(&self, salt: Salt, now: Timestamp) -> RolloutPlan {
        let mut plan = RolloutPlan::fixed(salt, BasisPoints::ALL);
        self.apply(&mut plan, now);
        plan
    }
}

/// The rule `--min-version V` adds: `mandatory-below-V: from < V -> mandatory`.
pub fn min_version_rule(version: &Version) -> Rule {
    Rule {
        name: format!("{MIN_VERSION_RULE_PREFIX}{version}"),
        from: VersionRange {
            at_least: None,
            below: Some(version.clone()),
        },
        attributes: std::collections::BTreeMap::new(),
        action: RuleAction::Mandatory,
    }
}

/// The cap for "at most `installs` out of a fleet of `fleet`": `floor(installs ·
/// 10000 / fleet)` basis points. It is an approximation of a count: no server counts
/// installs, so it holds only as far as `fleet` is right and buckets are uniform.
///
/// # Errors
///
/// [`Error::InvalidCap`] when `fleet` is zero or `installs` exceeds it.
pub fn fleet_cap(installs: u64, fleet: u64) -> Result<BasisPoints> {
    let invalid = |reason| Error::InvalidCap {
        installs,
        fleet,
        reason,
    };
    if fleet == 0 {
        return Err(invalid("the fleet must have at least one install"));
    }
    if installs > fleet {
        return Err(invalid("the cap is larger than the fleet"));
    }
    let basis_points =
        u128::from(installs) * u128::from(wavecast_schema::BUCKETS) / u128::from(fleet);
    u16::try_from(basis_points)
        .ok()
        .and_then(BasisPoints::new)
        .ok_or_else(|| invalid("the cap is larger than the fleet"))
}

/// Pauses the rollout at `now`: nobody new is offered the release.
///
/// # Errors
///
/// [`Error::AlreadyPaused`] when it is paused.
pub fn pause(release: &mut Release, channel: &ChannelName, now: Timestamp) -> Result<()> {
    if let Some(since) = release.rollout.paused_at {
        return Err(Error::AlreadyPaused {
            version: release.version.clone(),
            channel: channel.clone(),
            since,
        });
    }
    release.rollout.paused_at = Some(now);
    Ok(())
}

/// Resumes a paused rollout at `now`. A ramp continues where it stopped:
/// `started_at` moves later by the time the ramp spent paused (from the pause, or
/// from the ramp's start when it was set during the pause). Returns that shift.
///
/// # Errors
///
/// [`Error::NotPaused`] when it is not paused.
pub fn resume(
    release: &mut Release,
    channel: &ChannelName,
    now: Timestamp,
) -> Result<SignedDuration> {
    let plan = &mut release.rollout;
    let paused_at = plan.paused_at.take().ok_or_else(|| Error::NotPaused {
        version: release.version.clone(),
        channel: channel.clone(),
    })?;
    let Some(started_at) = plan.started_at else {
        return Ok(SignedDuration::ZERO);
    };
    let stopped = paused_at.max(started_at);
    let shift = now.duration_since(stopped).max(SignedDuration::ZERO);
    plan.started_at = Some(started_at.saturating_add(shift).unwrap_or(Timestamp::MAX));
    Ok(shift)
}

/// Yanks the release (or with `undo`, takes the yank back).
///
/// # Errors
///
/// [`Error::YankUnchanged`] when the release already is in the requested state.
pub fn yank(release: &mut Release, channel: &ChannelName, undo: bool) -> Result<()> {
    if release.rollout.yanked != undo {
        return Err(Error::YankUnchanged {
            version: release.version.clone(),
            channel: channel.clone(),
            state: if undo { "not yanked" } else { "already yanked" },
        });
    }
    release.rollout.yanked = !undo;
    Ok(())
}

/// Whether every release of `manifest` is yanked, so clients on a yanked release
/// have nowhere to go and stay where they are.
pub fn nothing_live(manifest: &Manifest) -> bool {
    manifest
        .releases
        .iter()
        .all(|release| release.rollout.yanked)
}

/// The copy of `source` that [`promote`](crate::rollout::promote) adds to another
/// channel: same platforms, modules and notes, published at `now`, with its own plan
/// made from `change` on top of a new plan with `salt`.
pub fn promoted(source: &Release, salt: Salt, change: &RolloutChange, now: Timestamp) -> Release {
    Release {
        version: source.version.clone(),
        published_at: now,
        notes: source.notes.clone(),
        platforms: source.platforms.clone(),
        rollout: change.new_plan(salt, now),
    }
}

/// A new random rollout salt: 16 bytes from the operating system, as hex.
///
/// # Errors
///
/// [`Error::Random`] when the operating system's generator fails.
pub fn random_salt() -> Result<Salt> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|error| Error::Random(error.to_string()))?;
    let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    Ok(hex
        .parse()
        .expect("32 lowercase hex digits are a valid salt"))
}

/// One line for people: the plan's share, rules, cap and state, e.g. `ramp
/// 1%@0s,100%@3d, rules [legacy], cap 33.33%, paused`.
pub fn summary(plan: &RolloutPlan) -> String {
    let mut parts = vec![plan.share.to_string()];
    if !plan.rules.is_empty() {
        parts.push(format!("rules {}", rule_names(&plan.rules)));
    }
    if let Some(cap) = plan.cap {
        parts.push(format!("cap {cap}"));
    }
    if plan.paused_at.is_some() {
        parts.push("paused".to_owned());
    }
    if plan.yanked {
        parts.push("yanked".to_owned());
    }
    parts.join(", ")
}

/// What changed from `before` to `after`, for people: `rollout 30% -> 50%, cap none
/// -> 33.33%`, or `no change`.
pub fn describe(before: &RolloutPlan, after: &RolloutPlan) -> String {
    let mut parts = Vec::new();
    if before.share != after.share {
        parts.push(format!("rollout {} -> {}", before.share, after.share));
    } else if before.started_at != after.started_at
        && before.paused_at.is_none() == after.paused_at.is_none()
        && after.share.ramp.is_some()
    {
        parts.push(format!("{} restarts now", after.share));
    }
    if before.rules != after.rules {
        parts.push(format!(
            "rules {} -> {}",
            rule_names(&before.rules),
            rule_names(&after.rules)
        ));
    }
    if before.cap != after.cap {
        let show =
            |cap: Option<BasisPoints>| cap.map_or_else(|| "none".to_owned(), |c| c.to_string());
        parts.push(format!("cap {} -> {}", show(before.cap), show(after.cap)));
    }
    match (before.paused_at, after.paused_at) {
        (None, Some(_)) => parts.push("paused".to_owned()),
        (Some(_), None) => match (before.started_at, after.started_at) {
            (Some(old), Some(new)) if old != new => {
                let shift = u64::try_from(new.as_second() - old.as_second()).unwrap_or(0);
                parts.push(format!(
                    "resumed (the ramp continues where it stopped: started_at moved {} later)",
                    format_duration(shift)
                ));
            }
            _ => parts.push("resumed".to_owned()),
        },
        _ => {}
    }
    match (before.yanked, after.yanked) {
        (false, true) => parts.push("yanked".to_owned()),
        (true, false) => parts.push("yank undone".to_owned()),
        _ => {}
    }
    if before.salt != after.salt {
        parts.push("new salt".to_owned());
    }
    if parts.is_empty() {
        "no change".to_owned()
    } else {
        parts.join(", ")
    }
}

fn rule_names(rules: &[Rule]) -> String {
    if rules.is_empty() {
        return "none".to_owned();
    }
    let names: Vec<&str> = rules.iter().map(|rule| rule.name.as_str()).collect();
    format!("[{}]", names.join(", "))
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;

    use wavecast_schema::{Blake3Hash, Blob, Ramp};

    use super::*;

    pub(crate) fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    pub(crate) const T0: &str = "2026-11-21T00:00:00Z";

    fn salt(n: u8) -> Salt {
        format!("{n:02x}").repeat(16).parse().unwrap()
    }

    /// A release for every platform (its document named by a made-up hash), with a
    /// fixed share.
    pub(crate) fn release(version: &str, basis_points: u16) -> Release {
        Release {
            version: version.parse().unwrap(),
            published_at: at(T0),
            notes: "notes".into(),
            platforms: BTreeMap::from([(
                "any".parse().unwrap(),
                Blob {
                    size: 1,
                    blake3: Blake3Hash::of(version.as_bytes()),
                },
            )]),
            rollout: RolloutPlan::fixed(salt(1), BasisPoints::new(basis_points).unwrap()),
        }
    }

    pub(crate) fn channel() -> ChannelName {
        "stable".parse().unwrap()
    }

    pub(crate) fn rule(text: &str) -> Rule {
        text.parse().unwrap()
    }

    #[test]
    fn caps_are_the_floor_of_the_fleet_share() {
        assert_eq!(fleet_cap(1_000_000, 3_000_000).unwrap().get(), 3333);
        assert_eq!(fleet_cap(2, 3).unwrap().get(), 6666);
        assert_eq!(fleet_cap(5, 5).unwrap().get(), 10_000);
        assert_eq!(fleet_cap(0, 7).unwrap().get(), 0);
        assert_eq!(fleet_cap(u64::MAX, u64::MAX).unwrap().get(), 10_000);
        assert_eq!(fleet_cap(1, u64::MAX).unwrap().get(), 0);
        assert!(matches!(fleet_cap(1, 0), Err(Error::InvalidCap { .. })));
        assert!(matches!(fleet_cap(4, 3), Err(Error::InvalidCap { .. })));
    }

    #[test]
    fn a_ramp_starts_now_and_a_fixed_share_keeps_the_start() {
        let mut plan = RolloutPlan::fixed(salt(1), BasisPoints::new(3000).unwrap());
        let ramp: Ramp = "1%@0h,100%@3d".parse().unwrap();
        RolloutChange {
            share: Some(Share::ramped(ramp.clone())),
            ..RolloutChange::default()
        }
        .apply(&mut plan, at(T0));
        assert_eq!(plan.started_at, Some(at(T0)));
        assert_eq!(plan.share.basis_points, BasisPoints::ALL);

        RolloutChange {
            share: Some(Share::fixed(BasisPoints::new(5000).unwrap())),
            ..RolloutChange::default()
        }
        .apply(&mut plan, at("2026-11-22T00:00:00Z"));
        assert_eq!(plan.started_at, Some(at(T0)), "left as it is");
        assert_eq!(plan.share, Share::fixed(BasisPoints::new(5000).unwrap()));

        // A ramp in a rule needs a start too, and a new one restarts the clock.
        let later = at("2026-11-23T00:00:00Z");
        RolloutChange {
            rules: Some(vec![rule("eu: region = eu -> 1%@0h,100%@2d")]),
            ..RolloutChange::default()
        }
        .apply(&mut plan, later);
        assert_eq!(plan.started_at, Some(later));
        let mut fresh = RolloutChange {
            rules: Some(vec![rule("eu: region = eu -> 1%@0h,100%@2d")]),
            ..RolloutChange::default()
        }
        .new_plan(salt(2), at(T0));
        assert_eq!(fresh.started_at, Some(at(T0)));
        assert_eq!(fresh.share, Share::fixed(BasisPoints::ALL));
        fresh.rules.clear();
        RolloutChange::default().apply(&mut fresh, later);
        assert_eq!(fresh.started_at, Some(at(T0)));
    }

    #[test]
    fn rules_are_kept_replaced_or_cleared_and_min_version_goes_first() {
        let mut plan = RolloutPlan::fixed(salt(1), BasisPoints::ALL);
        plan.rules = vec![rule("lab: server_id ^= lab- -> exclude")];
        let min_version = RolloutChange {
            min_version: Some("2.0.0".parse().unwrap()),
            ..RolloutChange::default()
        };
        min_version.apply(&mut plan, at(T0));
        let names: Vec<&str> = plan.rules.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["mandatory-below-2.0.0", "lab"]);
        assert_eq!(
            plan.rules[0],
            rule("mandatory-below-2.0.0: from < 2.0 -> mandatory")
        );

        // A second --min-version replaces the first instead of naming a rule twice.
        RolloutChange {
            min_version: Some("2.1.0".parse().unwrap()),
            ..RolloutChange::default()
        }
        .apply(&mut plan, at(T0));
        let names: Vec<&str> = plan.rules.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["mandatory-below-2.1.0", "lab"]);

        RolloutChange {
            rules: Some(vec![rule("a: from < 1 -> 5%"), rule("b: x = y -> exclude")]),
            ..RolloutChange::default()
        }
        .apply(&mut plan, at(T0));
        let names: Vec<&str> = plan.rules.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["a", "b"], "order is kept");
        RolloutChange::default().apply(&mut plan, at(T0));
        assert_eq!(plan.rules.len(), 2, "no rule flags keep the rules");
        RolloutChange {
            rules: Some(Vec::new()),
            ..RolloutChange::default()
        }
        .apply(&mut plan, at(T0));
        assert!(plan.rules.is_empty());
    }

    #[test]
    fn caps_are_set_kept_and_cleared() {
        let mut plan = RolloutPlan::fixed(salt(1), BasisPoints::ALL);
        let cap = fleet_cap(1, 3).unwrap();
        RolloutChange {
            cap: CapChange::Set(cap),
            ..RolloutChange::default()
        }
        .apply(&mut plan, at(T0));
        assert_eq!(plan.cap, Some(cap));
        RolloutChange::default().apply(&mut plan, at(T0));
        assert_eq!(plan.cap, Some(cap));
        RolloutChange {
            cap: CapChange::Clear,
            ..RolloutChange::default()
        }
        .apply(&mut plan, at(T0));
        assert_eq!(plan.cap, None);
        assert!(RolloutChange::default().is_empty());
    }

    #[test]
    fn resume_shifts_started_at_by_the_paused_time() {
        let mut release = release("1.1.0", 0);
        release.rollout.share = Share::ramped("1%@0h,100%@3d".parse().unwrap());
        release.rollout.started_at = Some(at(T0));
        pause(&mut release, &channel(), at("2026-11-21T06:00:00Z")).unwrap();
        assert!(matches!(
            pause(&mut release, &channel(), at("2026-11-21T07:00:00Z")),
            Err(Error::AlreadyPaused { .. })
        ));
        let shift = resume(&mut release, &channel(), at("2026-11-21T08:30:00Z")).unwrap();
        assert_eq!(shift, SignedDuration::from_mins(150));
        assert_eq!(release.rollout.paused_at, None);
        assert_eq!(release.rollout.started_at, Some(at("2026-11-21T02:30:00Z")));
        // Six hours of ramp ran before and after the pause alike.
        let elapsed = at("2026-11-21T08:30:00Z").as_second()
            - release.rollout.started_at.unwrap().as_second();
        assert_eq!(elapsed, 6 * 3600);
        assert!(matches!(
            resume(&mut release, &channel(), at("2026-11-21T09:00:00Z")),
            Err(Error::NotPaused { .. })
        ));
    }

    #[test]
    fn a_ramp_set_during_a_pause_starts_at_the_resume() {
        let mut release = release("1.1.0", 0);
        pause(&mut release, &channel(), at(T0)).unwrap();
        RolloutChange {
            share: Some(Share::ramped("7d".parse().unwrap())),
            ..RolloutChange::default()
        }
        .apply(&mut release.rollout, at("2026-11-21T01:00:00Z"));
        resume(&mut release, &channel(), at("2026-11-21T03:00:00Z")).unwrap();
        assert_eq!(release.rollout.started_at, Some(at("2026-11-21T03:00:00Z")));

        // Without a ramp there is nothing to shift.
        let mut fixed = self::release("1.0.0", 5000);
        pause(&mut fixed, &channel(), at(T0)).unwrap();
        assert_eq!(
            resume(&mut fixed, &channel(), at("2026-11-22T00:00:00Z")).unwrap(),
            SignedDuration::ZERO
        );
        assert_eq!(fixed.rollout.started_at, None);
    }

    #[test]
    fn yanking_twice_or_undoing_nothing_is_refused() {
        let mut release = release("1.1.0", 10_000);
        assert!(matches!(
            yank(&mut release, &channel(), true),
            Err(Error::YankUnchanged { .. })
        ));
        yank(&mut release, &channel(), false).unwrap();
        assert!(release.rollout.yanked);
        assert!(yank(&mut release, &channel(), false).is_err());
        yank(&mut release, &channel(), true).unwrap();
        assert!(!release.rollout.yanked);
    }

    #[test]
    fn promote_gives_a_new_salt_and_its_own_plan() {
        let mut source = release("2.0.0", 500);
        source.rollout.yanked = false;
        source.rollout.paused_at = Some(at(T0));
        source.rollout.rules = vec![rule("lab: server_id ^= lab- -> exclude")];
        let now = at("2026-11-25T00:00:00Z");
        let copy = promoted(&source, salt(9), &RolloutChange::default(), now);
        assert_eq!(copy.rollout, RolloutPlan::fixed(salt(9), BasisPoints::ALL));
        assert_ne!(copy.rollout.salt, source.rollout.salt);
        assert_eq!(copy.published_at, now);
        assert_eq!(copy.platforms, source.platforms);
        assert_eq!(copy.notes, source.notes);
        let ramped = promoted(
            &source,
            salt(9),
            &RolloutChange {
                share: Some(Share::ramped("7d".parse().unwrap())),
                ..RolloutChange::default()
            },
            now,
        );
        assert_eq!(ramped.rollout.started_at, Some(now));
    }

    #[test]
    fn descriptions_name_what_changed() {
        let before = RolloutPlan::fixed(salt(1), BasisPoints::new(3000).unwrap());
        let mut after = before.clone();
        assert_eq!(describe(&before, &after), "no change");
        RolloutChange {
            share: Some(Share::ramped("1%@0h,100%@3d".parse().unwrap())),
            cap: CapChange::Set(fleet_cap(1, 3).unwrap()),
            min_version: Some("1.0.0".parse().unwrap()),
            ..RolloutChange::default()
        }
        .apply(&mut after, at(T0));
        assert_eq!(
            describe(&before, &after),
            "rollout 30% -> ramp 1%@0s,100%@3d, rules none -> [mandatory-below-1.0.0], cap none -> 33.33%"
        );
        assert_eq!(
            summary(&after),
            "ramp 1%@0s,100%@3d, rules [mandatory-below-1.0.0], cap 33.33%"
        );
        let mut paused = after.clone();
        paused.paused_at = Some(at(T0));
        assert_eq!(describe(&after, &paused), "paused");
        let mut resumed = paused.clone();
        resumed.paused_at = None;
        resumed.started_at = Some(at("2026-11-21T02:00:00Z"));
        assert_eq!(
            describe(&paused, &resumed),
            "resumed (the ramp continues where it stopped: started_at moved 2h later)"
        );
    }
}
