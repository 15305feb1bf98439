//! The update decision, structure-aware: the input bytes pick a manifest (versions,
//! platforms, shares, ramps, rules, caps, pauses, yanks), a client (install id,
//! platform, installed version, attributes) and a clock, through
//! `arbitrary::Unstructured`. Every decision is checked with
//! `wavecast_fuzz::check_decision`, and decisions are compared across modes and time:
//! `--now` admits at least what the schedule does, waiting never takes an update
//! away, and a deferral's `eligible_at` is the second the client gets in.
#![no_main]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use arbitrary::{Result, Unstructured};
use jiff::Timestamp;
use libfuzzer_sys::fuzz_target;
use semver::Version;
use wavecast_fuzz::checked_decide;
use wavecast_schema::{
    AttributeMatch, Attributes, BasisPoints, Blob, ClientView, InstallId, Manifest, Mode, Outcome,
    Pattern, Platform, Ramp, RampPoint, Release, RolloutPlan, Rule, RuleAction, Salt, Share,
    VersionRange,
};

/// A valid manifest with no releases; the fuzzer fills `releases`.
const MANIFEST: &str = r#"{
  "format": 2, "product": "fuzz", "channel": "stable", "serial": 1,
  "published_at": "2026-01-01T00:00:00Z", "expires_at": "2027-01-01T00:00:00Z",
  "min_client_version": "0.1.0", "releases": []
}"#;

/// One release; the fuzzer replaces its version, platforms and rollout.
const RELEASE: &str = r#"{
  "version": "1.0.0", "published_at": "2026-01-01T00:00:00Z",
  "platforms": {"any": {"size": 1,
    "blake3": "0000000000000000000000000000000000000000000000000000000000000000"}},
  "rollout": {"salt": "00112233445566778899aabbccddeeff", "basis_points": 10000}
}"#;

const PLATFORMS: [&str; 4] = [
    "any",
    "x86_64-unknown-linux-gnu",
    "aarch64-apple-darwin",
    "riscv64gc-unknown-linux-gnu",
];
const KEYS: [&str; 3] = ["region", "tenant", "server_id"];
const VALUES: [&str; 6] = ["eu", "us", "acme", "globex", "lab-1", ""];
/// Compiled once: compiling a regex costs more than a whole decision.
static PATTERNS: LazyLock<Vec<Pattern>> = LazyLock::new(|| {
    ["eu|us", "[a-z]+", "lab-.*", ".*", "[0-9]{1,3}"]
        .into_iter()
        .map(|source| Pattern::new(source).expect("valid pattern"))
        .collect()
});
const SALTS: [&str; 3] = [
    "00112233445566778899aabbccddeeff",
    "ffffffffffffffff",
    "5a17c0ffee5a17c0ffee5a17c0ffee005a17c0ffee5a17c0ffee5a17c0ffee00",
];
/// 2026-11-21T00:00:00Z, the clock the fuzzer's offsets are counted from.
const EPOCH: i64 = 1_795_219_200;

fn version(u: &mut Unstructured<'_>) -> Result<Version> {
    let mut version = Version::new(
        u.int_in_range(0..=3)?,
        u.int_in_range(0..=2)?,
        u.int_in_range(0..=2)?,
    );
    if u.ratio(1, 8)? {
        version.pre = semver::Prerelease::new(u.choose(&["rc.1", "alpha"])?).expect("valid");
    }
    Ok(version)
}

fn basis_points(u: &mut Unstructured<'_>) -> Result<BasisPoints> {
    let value = if u.arbitrary()? {
        *u.choose(&[0, 1, 2500, 9999, 10_000])?
    } else {
        u.int_in_range(0..=10_000)?
    };
    Ok(BasisPoints::new(value).expect("in range"))
}

/// A second near the epoch, or anywhere jiff can represent.
fn timestamp(u: &mut Unstructured<'_>) -> Result<Timestamp> {
    let second = if u.ratio(1, 16)? {
        u.int_in_range(Timestamp::MIN.as_second()..=Timestamp::MAX.as_second())?
    } else {
        EPOCH + i64::from(u.arbitrary::<i32>()?)
    };
    Ok(Timestamp::from_second(second).expect("in range"))
}

fn ramp(u: &mut Unstructured<'_>) -> Result<Ramp> {
    let mut points = Vec::new();
    let mut after: u64 = if u.arbitrary()? {
        0
    } else {
        u64::from(u.arbitrary::<u16>()?)
    };
    let mut share = 0;
    for _ in 0..u.int_in_range(1..=4)? {
        share = u.int_in_range(share..=10_000)?;
        points.push(RampPoint {
            after_seconds: after,
            basis_points: BasisPoints::new(share).expect("in range"),
        });
        let gap = if u.ratio(1, 16)? {
            u.arbitrary::<u64>()?.max(1)
        } else {
            u64::from(u.arbitrary::<u32>()?).max(1)
        };
        match after.checked_add(gap) {
            Some(next) => after = next,
            None => break,
        }
    }
    Ok(Ramp::new(points).expect("increasing times, non-decreasing shares"))
}

fn share(u: &mut Unstructured<'_>) -> Result<Share> {
    Ok(if u.arbitrary()? {
        Share::ramped(ramp(u)?)
    } else {
        Share::fixed(basis_points(u)?)
    })
}

fn rule(u: &mut Unstructured<'_>, index: usize) -> Result<Rule> {
    let from = VersionRange {
        at_least: if u.ratio(1, 3)? {
            Some(version(u)?)
        } else {
            None
        },
        below: if u.ratio(1, 3)? {
            Some(version(u)?)
        } else {
            None
        },
    };
    let mut attributes = BTreeMap::new();
    for _ in 0..u.int_in_range(0..=2)? {
        // Mostly equality; a compiled pattern in one condition of eight.
        let matcher = match u.int_in_range(0..=7)? {
            1 => AttributeMatch::OneOf(BTreeSet::from([
                u.choose(&VALUES)?.to_string(),
                u.choose(&VALUES)?.to_string(),
            ])),
            2 => {
                let value = u.choose(&VALUES)?;
                let len = u.int_in_range(0..=value.len())?;
                AttributeMatch::Prefix(value[..len].to_owned())
            }
            3 => AttributeMatch::Pattern(u.choose(&PATTERNS)?.clone()),
            _ => AttributeMatch::Equals(u.choose(&VALUES)?.to_string()),
        };
        attributes.insert(u.choose(&KEYS)?.to_string(), matcher);
    }
    let action = match u.int_in_range(0..=3)? {
        0 => RuleAction::Mandatory,
        1 => RuleAction::Exclude,
        _ => RuleAction::Share(share(u)?),
    };
    Ok(Rule {
        name: format!("r{index}"),
        from,
        attributes,
        action,
    })
}

fn rollout(u: &mut Unstructured<'_>) -> Result<RolloutPlan> {
    let salt: Salt = if u.ratio(3, 4)? {
        u.choose(&SALTS)?.parse().expect("valid salt")
    } else {
        let len = u.int_in_range(16..=64)?;
        let mut text = String::with_capacity(len);
        for _ in 0..len {
            text.push(*u.choose(&b"0123456789abcdef".map(char::from))?);
        }
        text.parse().expect("valid salt")
    };
    let mut plan = RolloutPlan::fixed(salt, basis_points(u)?);
    plan.share = share(u)?;
    plan.rules = (0..u.int_in_range(0..=3)?)
        .map(|index| rule(u, index))
        .collect::<Result<_>>()?;
    if plan.has_ramp() || u.arbitrary()? {
        plan.started_at = Some(timestamp(u)?);
    }
    if u.ratio(1, 4)? {
        plan.cap = Some(basis_points(u)?);
    }
    if u.ratio(1, 8)? {
        plan.paused_at = Some(timestamp(u)?);
    }
    plan.yanked = u.ratio(1, 8)?;
    Ok(plan)
}

fn manifest(u: &mut Unstructured<'_>) -> Result<Manifest> {
    let template: Release = serde_json::from_str(RELEASE).expect("valid release");
    let document = template.platforms["any"].clone();
    let mut manifest: Manifest = serde_json::from_str(MANIFEST).expect("valid manifest");
    let mut versions = BTreeSet::new();
    for _ in 0..u.int_in_range(0..=5)? {
        let version = version(u)?;
        if !versions.insert(version.clone()) {
            continue;
        }
        let mut platforms: BTreeMap<Platform, Blob> = BTreeMap::new();
        for platform in &PLATFORMS[..3] {
            if u.ratio(1, 2)? {
                platforms.insert(platform.parse().expect("valid"), document.clone());
            }
        }
        if platforms.is_empty() {
            platforms.insert("any".parse().expect("valid"), document.clone());
        }
        manifest.releases.push(Release {
            version,
            platforms,
            rollout: rollout(u)?,
            ..template.clone()
        });
    }
    manifest.sort_releases();
    Ok(manifest)
}

/// Everything one run decides on.
struct Case {
    manifest: Manifest,
    install_id: InstallId,
    platform: Platform,
    current: Option<Version>,
    attributes: Attributes,
    now: Timestamp,
    later: Timestamp,
}

impl Case {
    fn build(u: &mut Unstructured<'_>) -> Result<Self> {
        let manifest = manifest(u)?;
        let install_id = if u.arbitrary()? {
            format!("client{:08}", u.int_in_range(0..=999)?)
        } else {
            let len = u.int_in_range(1..=128)?;
            let alphabet = b"abcXYZ019._-".map(char::from);
            let mut text = String::with_capacity(len);
            for _ in 0..len {
                text.push(*u.choose(&alphabet)?);
            }
            text
        };
        let current = if u.ratio(1, 4)? {
            None
        } else {
            Some(version(u)?)
        };
        let mut attributes = Attributes::new();
        for key in KEYS {
            if u.arbitrary()? {
                attributes.insert(key.to_owned(), u.choose(&VALUES)?.to_string());
            }
        }
        let now = timestamp(u)?;
        let wait = i64::from(u.arbitrary::<u32>()?);
        let later =
            Timestamp::from_second(now.as_second().saturating_add(wait)).unwrap_or(Timestamp::MAX);
        Ok(Self {
            manifest,
            install_id: install_id.parse().expect("valid install id"),
            platform: u.choose(&PLATFORMS)?.parse().expect("valid platform"),
            current,
            attributes,
            now,
            later,
        })
    }

    fn check(&self) {
        // What a client decides on is always a manifest that went through JSON.
        let manifest = match self.manifest.validate() {
            Ok(()) => {
                let parsed = Manifest::parse(&self.manifest.to_json())
                    .expect("a valid manifest parses back");
                assert_eq!(parsed, self.manifest, "the manifest round-trips");
                parsed
            }
            Err(_) => self.manifest.clone(),
        };
        let view = ClientView {
            install_id: &self.install_id,
            platform: &self.platform,
            current: self.current.as_ref(),
            attributes: &self.attributes,
            pin: None,
        };
        let scheduled = checked_decide(&manifest, &view, self.now, Mode::Scheduled);
        let manual = checked_decide(&manifest, &view, self.now, Mode::Manual);

        // `--now` skips shares and ramps only: it admits whatever the schedule does.
        if let Some(target) = scheduled.target {
            let manual_target = manual
                .target
                .expect("manual mode admits what the schedule does");
            assert!(
                manual_target.version >= target.version,
                "manual mode picks lower than the schedule"
            );
        }

        // Waiting only adds clients: an update now is an update (as high) later.
        let later = checked_decide(&manifest, &view, self.later, Mode::Scheduled);
        if let Some(target) = scheduled.target {
            let later_target = later.target.expect("an update is not taken back by time");
            assert!(
                later_target.version >= target.version,
                "a later decision picks lower"
            );
        }

        // A deferral's `eligible_at` is exactly when a newer release lets the client in.
        if let (Outcome::Deferred, Some(at)) = (scheduled.outcome, scheduled.eligible_at) {
            let then = checked_decide(&manifest, &view, at, Mode::Scheduled);
            assert_eq!(
                then.outcome,
                Outcome::Update,
                "not admitted at eligible_at {at}"
            );
            let just_before = Timestamp::from_second(at.as_second() - 1).expect("after now");
            if scheduled.withdrawn.is_none() && just_before > self.now {
                let before = checked_decide(&manifest, &view, just_before, Mode::Scheduled);
                assert_eq!(
                    before.outcome,
                    Outcome::Deferred,
                    "admitted before eligible_at"
                );
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    if let Ok(case) = Case::build(&mut u) {
        case.check();
    }
});
