//! Collecting garbage: deleting the blobs no live release refers to.
//!
//! The live set is what [`verify::survey`] lists from every channel of the site: each
//! live release's platform documents, file indexes, packages, copy packs and delta
//! packs, and every updater build a manifest offers. Roots, channel manifests and the
//! status page are never touched: only `blobs/` is listed. A collection runs in two
//! steps, so that the plan is a value to show before anything is deleted:
//!
//! 1. [`plan`] surveys the site, lists `blobs/` and sorts each file: live, a
//!    candidate old enough to delete (its upload at least the grace period before
//!    `now`), a candidate kept by the grace period, or a name that is not a blob
//!    (left alone and reported). A survey that leaves the live set uncertain (a
//!    channel that does not verify, a document or file index that cannot be read)
//!    is an error, and nothing is deleted.
//! 2. [`apply`] checks that no channel manifest changed since the survey, then
//!    deletes the candidates. None of them is referenced by a live manifest, so the
//!    site stays valid whatever the order and wherever the run is interrupted; a
//!    second run finishes the job.
//!
//! The grace period counts from each blob's upload (its modification time), not from
//! the moment its release was retired: clients mid-update and CDN caches may still
//! hold a manifest that names a retired release for as long as the manifest is cached,
//! so retire, wait out that time, then collect.
//!
//! Run it while nothing publishes to the site: a publish that finds an old blob it
//! needs already present does not upload it again, and a collection deleting it at
//! that moment would break the release. [`apply`] refuses when a manifest changed
//! since the survey, which narrows that window but cannot close it.

use std::collections::BTreeSet;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use wavecast_schema::{PublicKey, RelativePath};
use wavecast_site::Storage;
use wavecast_site::layout;

use crate::error::{Error, Result};
use crate::verify::{self, Selection, Source, Survey};

/// The grace period by default: a week, far longer than any manifest is cached.
pub const DEFAULT_GRACE: SignedDuration = SignedDuration::from_hours(7 * 24);

/// One unreferenced blob.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Garbage {
    /// Its site path.
    pub path: RelativePath,
    /// Its size in bytes.
    pub size: u64,
    /// When it was uploaded (last modified).
    pub modified: Timestamp,
}

/// What a collection would delete and keep: see [`plan`].
#[derive(Debug, Clone, serde::Serialize)]
pub struct GcPlan {
    /// The time the ages were counted to.
    pub now: Timestamp,
    /// The grace period.
    #[serde(serialize_with = "seconds")]
    pub grace: SignedDuration,
    /// How many blobs the live releases refer to.
    pub live: usize,
    /// Unreferenced blobs at least `grace` old: what [`apply`] deletes.
    pub delete: Vec<Garbage>,
    /// Unreferenced blobs younger than `grace`, kept this time.
    pub young: Vec<Garbage>,
    /// Files in `blobs/` whose names are not blobs', left alone.
    pub unrecognised: Vec<RelativePath>,
    /// The survey's warnings, and its problems that do not change the live set (an
    /// expired manifest still names its releases' blobs).
    pub warnings: Vec<String>,
    /// Each channel manifest's path and bytes as surveyed, for [`apply`] to check.
    #[serde(skip)]
    envelopes: Vec<(RelativePath, Vec<u8>)>,
}

impl GcPlan {
    /// The bytes [`apply`] deletes.
    pub fn delete_bytes(&self) -> u64 {
        self.delete.iter().map(|garbage| garbage.size).sum()
    }

    /// When the last of the young blobs is old enough to delete, if there are any.
    pub fn young_until(&self) -> Option<Timestamp> {
        self.young
            .iter()
            .map(|garbage| {
                garbage
                    .modified
                    .saturating_add(self.grace)
                    .unwrap_or(Timestamp::MAX)
            })
            .max()
    }
}

fn seconds<S: serde::Serializer>(
    duration: &SignedDuration,
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    serializer.serialize_i64(duration.as_secs())
}

/// Told about each blob as it is deleted.
pub trait GcReporter {
    /// The blob at `path`, of `bytes` bytes, was deleted.
    fn on_delete(&self, path: &RelativePath, bytes: u64) {
        let _ = (path, bytes);
    }
}

impl GcReporter for () {}

/// Surveys the site in `storage` with `key` (every channel), lists its blobs and
/// sorts the unreferenced ones by age: those uploaded at least `grace` before `now`
/// (in whole seconds) are to delete. Deletes nothing.
///
/// # Errors
///
/// [`Error::PendingManifest`] while a change waits to be signed,
/// [`Error::NoChannels`] for a site without channel manifests,
/// [`Error::LiveSetUncertain`] when the survey found problems that leave the live set
/// uncertain, and storage errors.
pub fn plan(
    storage: &Arc<dyn Storage>,
    location: &str,
    key: &PublicKey,
    grace: SignedDuration,
    now: Timestamp,
) -> Result<GcPlan> {
    // The blobs of a change that waits to be signed are not live yet, and would be
    // deleted once past the grace: refuse until it is signed or dropped.
    if let Some(channel) = crate::channel::pending_channels(storage.as_ref())?.pop() {
        return Err(Error::PendingManifest { channel });
    }
    let source = Source::Storage(Arc::clone(storage));
    if source.channels(&[])?.is_empty() {
        return Err(Error::NoChannels {
            location: location.to_owned(),
        });
    }
    let survey = verify::survey(&source, &Selection::default(), key, now)?;
    let (uncertain, mut warnings) = sort_problems(&survey);
    if !uncertain.is_empty() {
        return Err(Error::LiveSetUncertain {
            problems: uncertain,
        });
    }
    warnings.extend(survey.warnings.iter().cloned());
    let live: BTreeSet<&RelativePath> =
        survey.blobs.keys().chain(survey.documents.keys()).collect();
    let blobs: RelativePath = "blobs".parse().expect("a valid path");
    let (candidates, unrecognised) = unreferenced(storage.list(&blobs)?, &live);
    let mut plan = GcPlan {
        now,
        grace,
        live: live.len(),
        delete: Vec::new(),
        young: Vec::new(),
        unrecognised,
        warnings,
        envelopes: survey
            .channels
            .into_iter()
            .map(|report| (layout::channel_manifest(&report.channel), report.envelope))
            .collect(),
    };
    for path in candidates {
        // Gone meanwhile (another collection): nothing to do.
        let (Some(modified), Some(size)) = (storage.modified(&path)?, storage.size(&path)?) else {
            continue;
        };
        let garbage = Garbage {
            path,
            size,
            modified,
        };
        if old_enough(modified, grace, now) {
            plan.delete.push(garbage);
        } else {
            plan.young.push(garbage);
        }
    }
    Ok(plan)
}

/// Deletes what `plan` says to, after checking that every channel manifest is still
/// the one surveyed (and that no channel appeared).
///
/// # Errors
///
/// [`Error::SiteChanged`] (before any deletion), and storage errors (the blobs
/// deleted before stay deleted; a rerun finishes).
pub fn apply(storage: &dyn Storage, plan: &GcPlan, reporter: &dyn GcReporter) -> Result<()> {
    let channels: RelativePath = "channels".parse().expect("a valid path");
    let surveyed: BTreeSet<&RelativePath> = plan.envelopes.iter().map(|(path, _)| path).collect();
    if let Some(new) = storage
        .list(&channels)?
        .into_iter()
        .find(|path| path.as_str().ends_with(".json") && !surveyed.contains(path))
    {
        return Err(Error::SiteChanged {
            path: new.to_string(),
        });
    }
    for (path, bytes) in &plan.envelopes {
        if storage.get(path)?.as_ref() != Some(bytes) {
            return Err(Error::SiteChanged {
                path: path.to_string(),
            });
        }
    }
    // Nothing live refers to any of them, so any order keeps the site valid.
    for garbage in &plan.delete {
        storage.delete(&garbage.path)?;
        reporter.on_delete(&garbage.path, garbage.size);
    }
    Ok(())
}

/// The survey's problems split into those that leave the live set uncertain and
/// those that do not, each as `path: what`. A problem of a channel whose manifest
/// verified and parsed (it expired, or names another channel) does not: the manifest
/// still names every blob of its releases, and those stay live. Every other problem
/// does: a channel that does not verify names nothing we can trust, a document or
/// index that cannot be read hides the blobs it would name, and a broken root may
/// hide channels signed under later ones.
fn sort_problems(survey: &Survey) -> (Vec<String>, Vec<String>) {
    let verified: BTreeSet<String> = survey
        .channels
        .iter()
        .filter(|report| report.valid)
        .map(|report| layout::channel_manifest(&report.channel).to_string())
        .collect();
    let (harmless, uncertain): (Vec<_>, Vec<_>) = survey
        .problems
        .iter()
        .partition(|problem| verified.contains(&problem.path));
    let describe = |problems: Vec<&verify::Problem>| {
        problems
            .into_iter()
            .map(|problem| format!("{}: {}", problem.path, problem.problem))
            .collect()
    };
    (describe(uncertain), describe(harmless))
}

/// The files of `listed` that are blobs no live release refers to, and those whose
/// names are not blobs' at all. Pure.
fn unreferenced(
    listed: Vec<RelativePath>,
    live: &BTreeSet<&RelativePath>,
) -> (Vec<RelativePath>, Vec<RelativePath>) {
    let mut candidates = Vec::new();
    let mut unrecognised = Vec::new();
    for path in listed {
        if layout::parse_blob(path.as_str()).is_none() {
            unrecognised.push(path);
        } else if !live.contains(&path) {
            candidates.push(path);
        }
    }
    (candidates, unrecognised)
}

/// Whether a blob uploaded at `modified` is at least `grace` old at `now`, counted in
/// whole seconds (S3 dates uploads to the second, and a zero grace then means every
/// unreferenced blob, even one uploaded within the current second).
fn old_enough(modified: Timestamp, grace: SignedDuration, now: Timestamp) -> bool {
    modified.as_second().saturating_add(grace.as_secs()) <= now.as_second()
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use wavecast_site::FsStorage;

    use super::*;
    use crate::channel::Signing;
    use crate::publish::tests::Fixture;
    use crate::retire::{Retire, retire};

    /// A site of three releases, with every blob dated `uploaded`, of which the
    /// oldest is retired.
    fn retired_site(uploaded: Timestamp) -> (Fixture, Arc<dyn Storage>, PublicKey) {
        let site = Fixture::new();
        let text = crate::delta::tests::text;
        site.publish("1.0.0", &[("lib.so", &text(1, 4000)), ("old", b"old")], 3);
        site.publish("1.1.0", &[("lib.so", &text(2, 4000)), ("same", b"same")], 3);
        site.publish("1.2.0", &[("lib.so", &text(3, 4000)), ("same", b"same")], 3);
        let storage = FsStorage::new(site.dir.path().join("site"));
        retire(
            &storage,
            Signing {
                signers: &site.key,
                now: "2026-11-22T00:00:00Z".parse().unwrap(),
                expires_in: SignedDuration::from_hours(24),
            },
            &"stable".parse().unwrap(),
            &Retire::Versions(vec!["1.0.0".parse().unwrap()]),
        )
        .unwrap();
        let blobs = site.dir.path().join("site/blobs");
        let time =
            SystemTime::UNIX_EPOCH + Duration::from_secs(uploaded.as_second().cast_unsigned());
        for entry in fs_err::read_dir(&blobs).unwrap() {
            std::fs::File::options()
                .write(true)
                .open(entry.unwrap().path())
                .unwrap()
                .set_modified(time)
                .unwrap();
        }
        let key =
            verify::load_public_key(site.dir.path().join("keys/wavecast.pub").to_str().unwrap())
                .unwrap();
        (site, Arc::new(storage), key)
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn only_unreferenced_blobs_past_the_grace_period_are_deleted() {
        let uploaded = at("2026-11-22T00:00:00Z");
        let (site, storage, key) = retired_site(uploaded);
        let listed = storage.list(&"blobs".parse().unwrap()).unwrap();
        // A file that is not a blob is never touched.
        storage
            .put_bytes(&"blobs/notes.txt".parse().unwrap(), b"mine")
            .unwrap();

        // Six days later, with the default grace: everything is young (the manifests
        // expired meanwhile, which does not stop a collection).
        let early = plan(
            &storage,
            "site",
            &key,
            DEFAULT_GRACE,
            at("2026-11-28T00:00:00Z"),
        )
        .unwrap();
        assert!(early.delete.is_empty());
        let now = at("2026-11-22T12:00:00Z");
        let young = plan(&storage, "site", &key, DEFAULT_GRACE, now).unwrap();
        assert!(young.delete.is_empty());
        assert!(!young.young.is_empty());
        assert_eq!(young.young_until(), Some(at("2026-11-29T00:00:00Z")));
        assert_eq!(
            young.unrecognised,
            vec!["blobs/notes.txt".parse::<RelativePath>().unwrap()]
        );

        let plan = plan(&storage, "site", &key, SignedDuration::from_hours(12), now).unwrap();
        assert!(plan.young.is_empty());
        assert_eq!(plan.live + plan.delete.len(), listed.len());
        // The retired release's document goes, with its package, index and copy
        // pack where no live release shares them; the packs from 1.0.0 that the live
        // documents list stay, for clients still on 1.0.0.
        let live = verify::survey(
            &Source::Storage(Arc::clone(&storage)),
            &Selection::default(),
            &key,
            now,
        )
        .unwrap();
        for garbage in &plan.delete {
            assert!(!live.blobs.contains_key(&garbage.path));
            assert!(!live.documents.contains_key(&garbage.path));
        }
        assert!(
            plan.delete
                .iter()
                .any(|garbage| garbage.path.as_str().ends_with(".json"))
        );
        assert!(
            live.blobs
                .keys()
                .filter(|path| path.as_str().ends_with(".pack"))
                .count()
                >= 2
        );

        apply(storage.as_ref(), &plan, &()).unwrap();
        let after = storage.list(&"blobs".parse().unwrap()).unwrap();
        assert_eq!(after.len(), plan.live + 1, "the live blobs and notes.txt");
        let mut survey = verify::survey(
            &Source::Folder(site.dir.path().join("site")),
            &Selection::default(),
            &key,
            now,
        )
        .unwrap();
        verify::check_blobs(
            &Source::Folder(site.dir.path().join("site")),
            &mut survey,
            &(),
        )
        .unwrap();
        assert!(survey.problems.is_empty(), "{:?}", survey.problems);

        // A second run finds nothing.
        let again = super::plan(&storage, "site", &key, SignedDuration::ZERO, now).unwrap();
        assert!(again.delete.is_empty() && again.young.is_empty());
    }

    #[test]
    fn expiry_does_not_stop_a_collection_but_a_broken_site_does() {
        let (site, storage, key) = retired_site(at("2026-11-22T00:00:00Z"));
        // Past the manifest's expiry: a warning, and the live set is still known.
        let late = plan(
            &storage,
            "site",
            &key,
            DEFAULT_GRACE,
            at("2026-12-01T00:00:00Z"),
        )
        .unwrap();
        assert!(!late.delete.is_empty());
        assert!(
            late.warnings
                .iter()
                .any(|warning| warning.contains("expired")),
            "{:?}",
            late.warnings
        );

        // A live document missing: refused, nothing deleted.
        let now = at("2026-11-22T12:00:00Z");
        let live = verify::survey(
            &Source::Storage(Arc::clone(&storage)),
            &Selection::default(),
            &key,
            now,
        )
        .unwrap();
        let document = live
            .documents
            .keys()
            .find(|path| path.as_str().ends_with(".json"))
            .unwrap()
            .clone();
        let bytes = storage.get(&document).unwrap().unwrap();
        storage.delete(&document).unwrap();
        let error = plan(&storage, "site", &key, SignedDuration::ZERO, now).unwrap_err();
        assert!(matches!(error, Error::LiveSetUncertain { .. }), "{error}");
        assert!(error.to_string().contains(document.as_str()), "{error}");
        storage.put_bytes(&document, &bytes).unwrap();

        // Another key: no channel verifies.
        let other = Fixture::new();
        let other_key =
            verify::load_public_key(other.dir.path().join("keys/wavecast.pub").to_str().unwrap())
                .unwrap();
        let error = plan(&storage, "site", &other_key, SignedDuration::ZERO, now).unwrap_err();
        assert!(matches!(error, Error::LiveSetUncertain { .. }), "{error}");

        // No channels at all: a wrong location, most likely.
        let empty: Arc<dyn Storage> = Arc::new(FsStorage::new(site.dir.path().join("elsewhere")));
        let error = plan(&empty, "elsewhere", &key, SignedDuration::ZERO, now).unwrap_err();
        assert!(matches!(error, Error::NoChannels { .. }), "{error}");
    }

    #[test]
    fn a_dry_run_is_a_plan_and_a_changed_manifest_stops_the_deletions() {
        let (site, storage, key) = retired_site(at("2026-11-22T00:00:00Z"));
        let now = at("2026-11-22T12:00:00Z");
        let before = storage.list(&"blobs".parse().unwrap()).unwrap();
        let planned = plan(&storage, "site", &key, SignedDuration::ZERO, now).unwrap();
        assert!(!planned.delete.is_empty());
        assert_eq!(storage.list(&"blobs".parse().unwrap()).unwrap(), before);

        // A publish meanwhile: nothing is deleted.
        site.publish("1.3.0", &[("lib.so", b"four")], 0);
        let error = apply(storage.as_ref(), &planned, &()).unwrap_err();
        assert!(matches!(error, Error::SiteChanged { .. }), "{error}");
        for garbage in &planned.delete {
            assert!(storage.size(&garbage.path).unwrap().is_some());
        }
    }

    #[test]
    fn ages_count_in_whole_seconds() {
        let now = at("2026-11-22T12:00:00.2Z");
        for (modified, grace, expected) in [
            ("2026-11-22T12:00:00.9Z", 0, true),
            ("2026-11-22T12:00:01Z", 0, false),
            ("2026-11-22T11:00:00Z", 3600, true),
            ("2026-11-22T11:00:01Z", 3600, false),
        ] {
            assert_eq!(
                old_enough(at(modified), SignedDuration::from_secs(grace), now),
                expected,
                "{modified} {grace}"
            );
        }
    }
}
