//! The update decision: which release a client should run, from the manifest and
//! what the client knows about itself. Pure, so any decision can be replayed offline.

use semver::Version;

use crate::ids::{InstallId, Platform};
use crate::manifest::{Manifest, Release};
use crate::rollout::BasisPoints;

/// What a client knows about itself when deciding.
#[derive(Debug, Clone, Copy)]
pub struct ClientView<'a> {
    /// The client's random install id.
    pub install_id: &'a InstallId,
    /// The platform the client runs on; releases without it (or `any`) are skipped.
    pub platform: &'a Platform,
    /// The installed version, `None` before the first install.
    pub current: Option<&'a Version>,
}

/// The outcome of [`decide`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A release newer than the installed one is offered to this client.
    Update,
    /// Nothing newer exists for this client's platform.
    UpToDate,
    /// Newer releases exist, but this client is outside all of their rollouts.
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

/// The rollout test that settled a decision, so it can be shown and reproduced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppliedRollout<'m> {
    /// The release whose rollout plan applied.
    pub release: &'m Release,
    /// The client's bucket for that release, `0..10000`.
    pub bucket: u16,
    /// That release's threshold; the client is in when `bucket < threshold`.
    pub threshold: BasisPoints,
}

/// Which release a client should run, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision<'m> {
    /// Update, up to date, or deferred.
    pub outcome: Outcome,
    /// The release to install (for [`Outcome::Update`]), else `None`.
    pub target: Option<&'m Release>,
    /// The newest release available for the client's platform.
    pub newest: Option<&'m Release>,
    /// The rollout test that settled the decision: the target's for an update, the
    /// newest release's for a deferral, and the installed release's (when it is still
    /// listed) for up to date.
    pub applied: Option<AppliedRollout<'m>>,
}

/// Picks the highest release newer than the client's current version whose rollout
/// admits the client.
///
/// A client outside the newest release's rollout falls back to the newest release it
/// is admitted to, so a fresh install while 1.1.0 is at 30 % gets 1.1.0 or 1.0.0,
/// never nothing. A client never moves to a lower version here.
pub fn decide<'m>(manifest: &'m Manifest, client: &ClientView<'_>) -> Decision<'m> {
    let mut candidates: Vec<&Release> = manifest
        .releases
        .iter()
        .filter(|release| release.for_platform(client.platform).is_some())
        .collect();
    candidates.sort_by(|a, b| b.version.cmp(&a.version));
    let newest = candidates.first().copied();
    let applied_to = |release: &'m Release| {
        let (_, bucket) = release.rollout.admits(client.install_id);
        AppliedRollout {
            release,
            bucket,
            threshold: release.rollout.basis_points,
        }
    };

    let newer = candidates.iter().copied().filter(|release| {
        client
            .current
            .is_none_or(|current| &release.version > current)
    });
    for release in newer {
        if release.rollout.admits(client.install_id).0 {
            return Decision {
                outcome: Outcome::Update,
                target: Some(release),
                newest,
                applied: Some(applied_to(release)),
            };
        }
    }

    match newest {
        Some(newest)
            if client
                .current
                .is_none_or(|current| &newest.version > current) =>
        {
            Decision {
                outcome: Outcome::Deferred,
                target: None,
                newest: Some(newest),
                applied: Some(applied_to(newest)),
            }
        }
        _ => Decision {
            outcome: Outcome::UpToDate,
            target: None,
            newest,
            applied: client
                .current
                .and_then(|current| {
                    candidates
                        .iter()
                        .find(|release| &release.version == current)
                })
                .map(|release| applied_to(release)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::tests::{manifest, release};

    fn id(n: u64) -> InstallId {
        format!("client{n:08}").parse().unwrap()
    }

    fn any() -> Platform {
        "any".parse().unwrap()
    }

    fn version(text: &str) -> Version {
        text.parse().unwrap()
    }

    #[test]
    fn a_fresh_client_always_gets_something_when_an_older_release_is_at_full() {
        let manifest = manifest(vec![release("1.0.0", 10_000), release("1.1.0", 3000)]);
        let platform = any();
        let mut newest = 0;
        for n in 0..2000 {
            let install_id = id(n);
            let view = ClientView {
                install_id: &install_id,
                platform: &platform,
                current: None,
            };
            let decision = decide(&manifest, &view);
            assert_eq!(decision.outcome, Outcome::Update);
            let target = decision.target.unwrap();
            let applied = decision.applied.unwrap();
            assert_eq!(applied.release.version, target.version);
            assert!(applied.bucket < applied.threshold.get());
            if target.version == version("1.1.0") {
                newest += 1;
            }
        }
        assert!(
            (500..700).contains(&newest),
            "about 30% should get 1.1.0, got {newest}/2000"
        );
    }

    #[test]
    fn a_client_outside_the_newest_rollout_is_deferred_with_the_threshold_that_applied() {
        let manifest = manifest(vec![release("1.0.0", 10_000), release("1.1.0", 3000)]);
        let platform = any();
        let current = version("1.0.0");
        let (mut deferred, mut updated) = (0, 0);
        for n in 0..1000 {
            let install_id = id(n);
            let view = ClientView {
                install_id: &install_id,
                platform: &platform,
                current: Some(&current),
            };
            let decision = decide(&manifest, &view);
            let applied = decision.applied.unwrap();
            assert_eq!(applied.release.version, version("1.1.0"));
            assert_eq!(applied.threshold.get(), 3000);
            match decision.outcome {
                Outcome::Deferred => {
                    assert!(decision.target.is_none());
                    assert!(applied.bucket >= 3000);
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
        let platform = any();
        let install_id = id(1);
        for current in ["1.1.0", "9.0.0"] {
            let current = version(current);
            let view = ClientView {
                install_id: &install_id,
                platform: &platform,
                current: Some(&current),
            };
            let decision = decide(&manifest, &view);
            assert_eq!(decision.outcome, Outcome::UpToDate);
            assert!(decision.target.is_none());
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
        let mac: Platform = "aarch64-apple-darwin".parse().unwrap();
        let linux: Platform = "x86_64-unknown-linux-gnu".parse().unwrap();
        let on = |platform| {
            decide(
                &manifest,
                &ClientView {
                    install_id: &install_id,
                    platform,
                    current: None,
                },
            )
            .target
            .unwrap()
            .version
            .clone()
        };
        assert_eq!(on(&mac), version("1.0.0"));
        assert_eq!(on(&linux), version("2.0.0"));
    }

    #[test]
    fn pre_releases_order_below_their_release() {
        let manifest = manifest(vec![
            release("2.0.0-rc.1", 10_000),
            release("2.0.0", 10_000),
        ]);
        let platform = any();
        let install_id = id(4);
        let current = version("2.0.0-rc.1");
        let view = ClientView {
            install_id: &install_id,
            platform: &platform,
            current: Some(&current),
        };
        assert_eq!(
            decide(&manifest, &view).target.unwrap().version,
            version("2.0.0")
        );
    }

    #[test]
    fn an_empty_channel_is_up_to_date() {
        let manifest = manifest(vec![]);
        let platform = any();
        let install_id = id(5);
        let decision = decide(
            &manifest,
            &ClientView {
                install_id: &install_id,
                platform: &platform,
                current: None,
            },
        );
        assert_eq!(decision.outcome, Outcome::UpToDate);
        assert!(decision.newest.is_none() && decision.applied.is_none());
    }
}
