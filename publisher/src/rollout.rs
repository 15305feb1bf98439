//! Changing a live release's rollout: share or ramp, rules, cap, pause, resume, yank,
//! and promoting a release from one channel to another.
//!
//! Every change goes the same way: read the channel's manifest and verify it with the
//! key ([`current_manifest`]), change it in memory, bump `serial`, set `published_at`
//! and `expires_at`, validate, and sign and write it ([`validate_and_write`]). The
//! edits themselves are small pure functions ([`RolloutChange::apply`], [`pause`],
//! [`resume`], [`yank`], [`promoted`]) so they can be tested without a site.
//!
//! What a plan means to a client is decided by [`wavecast_schema::decide`].

use jiff::{SignedDuration, Timestamp};
use semver::Version;
use wavecast_schema::{
    BasisPoints, ChannelName, Manifest, Release, RolloutPlan, Rule, RuleAction, Salt, Share,
    VersionRange, format_duration,
};
use wavecast_site::Storage;

use crate::error::{Error, Result};
use crate::keys::Signers;
use crate::publish::{current_manifest, random_salt, successor, validate_and_write};

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

/// The copy of `source` that [`promote`] adds to another channel: same platforms,
/// modules and notes, published at `now`, with its own plan made from `change` on
/// top of a new plan with `salt`.
pub fn promoted(source: &Release, salt: Salt, change: &RolloutChange, now: Timestamp) -> Release {
    Release {
        version: source.version.clone(),
        published_at: now,
        notes: source.notes.clone(),
        platforms: source.platforms.clone(),
        rollout: change.new_plan(salt, now),
    }
}

/// When and for how long a changed manifest is signed.
#[derive(Debug, Clone, Copy)]
pub struct Signing<'a> {
    /// The keys that sign the change (release keys of the site's newest root).
    pub signers: &'a Signers,
    /// The time of the change: the manifest's `published_at`.
    pub now: Timestamp,
    /// How long the signed manifest stays valid.
    pub expires_in: SignedDuration,
}

/// Verifies the channel's manifest, lets `change` edit it, and writes its successor
/// (next serial, published now). Returns the manifest as written.
///
/// # Errors
///
/// [`Error::UnknownChannel`] when the channel has no manifest, verification errors,
/// whatever `change` returns, [`Error::InvalidManifest`], signing and storage errors.
pub fn change_manifest(
    storage: &dyn Storage,
    signing: Signing<'_>,
    channel: &ChannelName,
    change: impl FnOnce(&mut Manifest) -> Result<()>,
) -> Result<Manifest> {
    let existing = current_manifest(storage, signing.signers, channel)?.ok_or_else(|| {
        Error::UnknownChannel {
            channel: channel.clone(),
        }
    })?;
    let mut manifest = successor(
        Some(existing),
        channel,
        None,
        signing.now,
        signing.expires_in,
    );
    change(&mut manifest)?;
    validate_and_write(storage, signing.signers, &mut manifest)?;
    Ok(manifest)
}

/// A release before and after a change, and the manifest written.
#[derive(Debug, Clone)]
pub struct ReleaseChange {
    /// The release as it was.
    pub before: Release,
    /// The release as written.
    pub after: Release,
    /// The new manifest of the channel.
    pub manifest: Manifest,
}

/// Changes one release of a channel with `change` and writes the new manifest
/// through [`change_manifest`].
///
/// # Errors
///
/// [`Error::UnknownVersion`] when `version` is not live on the channel, and those of
/// [`change_manifest`].
pub fn change_release(
    storage: &dyn Storage,
    signing: Signing<'_>,
    channel: &ChannelName,
    version: &Version,
    change: impl FnOnce(&mut Release) -> Result<()>,
) -> Result<ReleaseChange> {
    change_release_and_floor(storage, signing, channel, version, None, change)
}

/// [`change_release`], also setting the channel's `min_client_version` to `floor`
/// when one is given (`rollout --min-client-version`), in the same signed manifest.
///
/// # Errors
///
/// Those of [`change_release`], and of
/// [`set_client_floor`](crate::self_update::set_client_floor).
pub fn change_release_and_floor(
    storage: &dyn Storage,
    signing: Signing<'_>,
    channel: &ChannelName,
    version: &Version,
    floor: Option<&Version>,
    change: impl FnOnce(&mut Release) -> Result<()>,
) -> Result<ReleaseChange> {
    let mut before = None;
    let manifest = change_manifest(storage, signing, channel, |manifest| {
        if let Some(floor) = floor {
            crate::self_update::set_client_floor(manifest, floor)?;
        }
        let live = live_versions(manifest);
        let release = manifest
            .releases
            .iter_mut()
            .find(|release| &release.version == version)
            .ok_or_else(|| Error::UnknownVersion {
                version: version.clone(),
                channel: channel.clone(),
                live,
            })?;
        before = Some(release.clone());
        change(release)
    })?;
    let after = manifest
        .release(version)
        .cloned()
        .expect("the changed release is in the manifest just written");
    Ok(ReleaseChange {
        before: before.expect("the change ran"),
        after,
        manifest,
    })
}

/// What [`promote`] did.
#[derive(Debug, Clone)]
pub struct Promotion {
    /// The release in the source channel.
    pub source: Release,
    /// The release the target channel had with that version, replaced with `--force`.
    pub replaced: Option<Release>,
    /// The release as added to the target channel.
    pub release: Release,
    /// The new manifest of the target channel.
    pub manifest: Manifest,
}

/// Copies release `version` from channel `from` to channel `to` with a new salt and
/// the plan `change` makes from a new one (100 % by default). The packages are
/// already on the site, content-addressed, so nothing but the manifest is written.
/// A target channel without a manifest is created. With `force` a release the target
/// already has is replaced, keeping its salt so its clients keep their buckets.
///
/// # Errors
///
/// [`Error::UnknownChannel`] and [`Error::UnknownVersion`] for the source,
/// [`Error::VersionExists`] when the target has the version and `force` is false,
/// and those of [`change_manifest`].
pub fn promote(
    storage: &dyn Storage,
    signing: Signing<'_>,
    version: &Version,
    (from, to): (&ChannelName, &ChannelName),
    change: &RolloutChange,
    force: bool,
) -> Result<Promotion> {
    let source_manifest =
        current_manifest(storage, signing.signers, from)?.ok_or_else(|| Error::UnknownChannel {
            channel: from.clone(),
        })?;
    let source =
        source_manifest
            .release(version)
            .cloned()
            .ok_or_else(|| Error::UnknownVersion {
                version: version.clone(),
                channel: from.clone(),
                live: live_versions(&source_manifest),
            })?;
    let target = current_manifest(storage, signing.signers, to)?;
    let replaced = target
        .as_ref()
        .and_then(|manifest| manifest.release(version))
        .cloned();
    if replaced.is_some() && !force {
        return Err(Error::VersionExists {
            version: version.clone(),
            channel: to.clone(),
        });
    }
    let salt = match &replaced {
        Some(release) => release.rollout.salt.clone(),
        None => random_salt()?,
    };
    let release = promoted(&source, salt, change, signing.now);
    let product = target.is_none().then(|| source_manifest.product.clone());
    let mut manifest = successor(target, to, product, signing.now, signing.expires_in);
    manifest
        .releases
        .retain(|release| &release.version != version);
    manifest.releases.push(release.clone());
    validate_and_write(storage, signing.signers, &mut manifest)?;
    Ok(Promotion {
        source,
        replaced,
        release,
        manifest,
    })
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

fn live_versions(manifest: &Manifest) -> String {
    if manifest.releases.is_empty() {
        return "none".to_owned();
    }
    let versions: Vec<String> = manifest
        .releases
        .iter()
        .map(|release| release.version.to_string())
        .collect();
    versions.join(", ")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use wavecast_schema::{Blake3Hash, Blob, Module, PlatformRelease, Ramp};
    use wavecast_site::FsStorage;

    use super::*;
    use crate::keys::{self, Password};

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    const T0: &str = "2026-11-21T00:00:00Z";

    fn salt(n: u8) -> Salt {
        format!("{n:02x}").repeat(16).parse().unwrap()
    }

    fn release(version: &str, basis_points: u16) -> Release {
        let blob = |name: &str| Blob {
            path: format!("blobs/{name}").parse().unwrap(),
            size: 1,
            blake3: Blake3Hash::of(name.as_bytes()),
        };
        let module = Module {
            version: version.parse().unwrap(),
            kind: wavecast_schema::ModuleKind::Tree,
            dest: None,
            package: blob("p"),
            unpacked_size: 1,
            file_index: blob("i"),
        };
        Release {
            version: version.parse().unwrap(),
            published_at: at(T0),
            notes: "notes".into(),
            platforms: BTreeMap::from([(
                "any".parse().unwrap(),
                PlatformRelease {
                    modules: BTreeMap::from([("app".parse().unwrap(), module)]),
                },
            )]),
            rollout: RolloutPlan::fixed(salt(1), BasisPoints::new(basis_points).unwrap()),
        }
    }

    fn channel() -> ChannelName {
        "stable".parse().unwrap()
    }

    fn rule(text: &str) -> Rule {
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

    /// A site with one signed manifest, for the storage-level functions.
    fn site(dir: &std::path::Path, releases: Vec<Release>) -> (FsStorage, Signers) {
        let password = Password::new("pw".into());
        keys::generate(&dir.join("keys"), Some(&password), false).unwrap();
        let key = crate::keys::SigningKey::load(&dir.join("keys/wavecast.key"), || {
            Ok(Some(Password::new("pw".into())))
        })
        .unwrap()
        .into();
        let storage = FsStorage::new(dir.join("site"));
        let mut manifest = successor(
            None,
            &channel(),
            None,
            at(T0),
            SignedDuration::from_hours(24),
        );
        manifest.releases = releases;
        validate_and_write(&storage, &key, &mut manifest).unwrap();
        (storage, key)
    }

    #[test]
    fn changing_a_release_bumps_the_serial_and_signs_the_result() {
        let dir = tempfile::tempdir().unwrap();
        let (storage, key) = site(dir.path(), vec![release("1.0.0", 10_000)]);
        let now = at("2026-11-22T00:00:00Z");
        let signing = Signing {
            signers: &key,
            now,
            expires_in: SignedDuration::from_hours(48),
        };
        let version: Version = "1.0.0".parse().unwrap();
        let changed = change_release(&storage, signing, &channel(), &version, |release| {
            pause(release, &channel(), now)
        })
        .unwrap();
        assert_eq!(changed.manifest.serial, 2);
        assert_eq!(changed.manifest.published_at, now);
        assert_eq!(changed.manifest.expires_at, at("2026-11-24T00:00:00Z"));
        assert_eq!(changed.before.rollout.paused_at, None);
        assert_eq!(changed.after.rollout.paused_at, Some(now));
        let read = current_manifest(&storage, &key, &channel())
            .unwrap()
            .unwrap();
        assert_eq!(read, changed.manifest);

        let missing: Version = "9.9.9".parse().unwrap();
        let error =
            change_release(&storage, signing, &channel(), &missing, |_| Ok(())).unwrap_err();
        assert!(matches!(error, Error::UnknownVersion { .. }), "{error}");
        assert!(error.to_string().contains("live: 1.0.0"), "{error}");
        let beta: ChannelName = "beta".parse().unwrap();
        let error = change_release(&storage, signing, &beta, &version, |_| Ok(())).unwrap_err();
        assert!(matches!(error, Error::UnknownChannel { .. }), "{error}");
        // A failed change writes nothing.
        let error = change_release(&storage, signing, &channel(), &version, |release| {
            pause(release, &channel(), now)
        })
        .unwrap_err();
        assert!(matches!(error, Error::AlreadyPaused { .. }));
        let error = change_release(&storage, signing, &channel(), &version, |release| {
            release.rollout.rules = vec![rule("a: x = 1 -> 5%"), rule("a: x = 2 -> 5%")];
            Ok(())
        })
        .unwrap_err();
        assert!(matches!(error, Error::InvalidManifest { .. }), "{error}");
        assert_eq!(
            current_manifest(&storage, &key, &channel())
                .unwrap()
                .unwrap()
                .serial,
            2
        );
    }

    #[test]
    fn promote_copies_into_another_channel_once() {
        let dir = tempfile::tempdir().unwrap();
        let (storage, key) = site(dir.path(), vec![release("2.0.0", 500)]);
        let signing = Signing {
            signers: &key,
            now: at("2026-11-22T00:00:00Z"),
            expires_in: SignedDuration::from_hours(48),
        };
        let version: Version = "2.0.0".parse().unwrap();
        let (stable, beta): (ChannelName, ChannelName) =
            ("stable".parse().unwrap(), "beta".parse().unwrap());
        let promotion = promote(
            &storage,
            signing,
            &version,
            (&stable, &beta),
            &RolloutChange::default(),
            false,
        )
        .unwrap();
        assert_eq!(promotion.manifest.serial, 1, "a new channel starts at 1");
        assert_eq!(promotion.manifest.channel, beta);
        assert_ne!(
            promotion.release.rollout.salt,
            promotion.source.rollout.salt
        );
        assert_eq!(
            promotion.release.rollout.share.basis_points,
            BasisPoints::ALL
        );
        let again = promote(
            &storage,
            signing,
            &version,
            (&stable, &beta),
            &RolloutChange::default(),
            false,
        );
        assert!(matches!(again, Err(Error::VersionExists { .. })));
        let forced = promote(
            &storage,
            signing,
            &version,
            (&stable, &beta),
            &RolloutChange::default(),
            true,
        )
        .unwrap();
        assert_eq!(forced.manifest.serial, 2);
        assert_eq!(forced.release.rollout.salt, promotion.release.rollout.salt);
        let missing: Version = "3.0.0".parse().unwrap();
        let error = promote(
            &storage,
            signing,
            &missing,
            (&stable, &beta),
            &RolloutChange::default(),
            false,
        )
        .unwrap_err();
        assert!(matches!(error, Error::UnknownVersion { .. }));
    }
}
