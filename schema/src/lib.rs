/*!
The wavecast data model, with no I/O.

# Brief overview

A wavecast site publishes one signed [`Manifest`] per channel. The manifest lists
[`Release`]s; each release carries, per platform, the [`Module`]s a client installs
(content-addressed tar.zst or tar.gz packages, each described by a [`Blob`] and a
[`PackageFormat`]; or, for a module of [`ModuleKind::Image`], one image file that
clients write into the inactive of two A/B slots) and a [`RolloutPlan`] that decides which clients may take it.

On the wire a manifest travels inside an [`Envelope`]: the manifest's exact bytes and
their minisign signatures in one JSON document, so a reader always sees a manifest and
the signatures made for it in the same publish. [`Manifest::parse`] deserializes and
validates; it must only ever be called on bytes whose signatures have been checked.
It first checks the bytes against every [`Limit`] ([`check_manifest`]), so what a
signed manifest can cost a client is bounded, whoever signed it.

Who may sign is decided by a [`Root`]: k-of-n release keys for manifests, and k-of-n
root keys that sign the next root. Clients walk the chain of roots with
[`Root::verify_successor`], so keys can be rotated and revoked without stranding
anyone.

Large per-file data lives outside the polled manifest in a content-addressed
[`FileIndex`], referenced from each module by hash: every file, directory and
symbolic link of the module. The indexes of a release's modules together form its
[`ExpectedTree`], the exact tree every install of that release must end in, whatever
path it took; a [`TreeCheck`] compares a tree with it and names the first
[`TreeMismatch`].

A manifest may also offer builds of the client itself, one [`UpdaterBuild`] per
platform; [`client_update`] tells a client whether it must, may or cannot replace
its own executable before acting on the manifest ([`ClientUpdate`]). Every build
carries the version it reports in a marker ([`version_marker()`]), which
[`marked_versions`] reads from a build that cannot run where it is published.

Rollout is decided by the client alone: [`bucket`] maps an install id and a release's
salt to a number in `0..10000`, and [`decide()`] picks the release a client should run.
Both are pure functions, so any decision can be reproduced offline.

```
use wavecast_schema::{bucket, BasisPoints, InstallId, Salt};

let id: InstallId = "3f2a9c1e5b7d4f60a1b2c3d4e5f60718".parse().unwrap();
let salt: Salt = "00112233445566778899aabbccddeeff".parse().unwrap();
let threshold: BasisPoints = "30%".parse().unwrap();
let included = bucket(&id, &salt) < threshold.get();
assert_eq!(included, bucket(&id, &salt) < 3000);
```
*/
#![deny(missing_docs)]

mod decide;
mod envelope;
mod error;
mod file_index;
mod ids;
mod limits;
mod manifest;
mod pack;
mod pin;
mod plan;
mod release;
mod rollout;
mod root_draft;
mod self_update;
mod simulate;
mod tree;
mod trust;
mod version_marker;

pub use decide::{
    AppliedRollout, ClientView, Decision, Exclusion, Mode, Offer, Outcome, Withdrawal, decide,
    decide_skipping, offer,
};
pub use envelope::Envelope;
pub use error::{Error, Result};
pub use file_index::{
    CopySlice, EntryKind, FileIndex, FileMode, INDEX_SIZE_LIMIT, IndexBlob, IndexEntry,
    PatchAlgorithm,
};
pub use ids::{
    Blake3Hash, ChannelName, InstallId, LinkTarget, ModuleName, Platform, RelativePath, Salt,
};
pub use limits::walk::check_manifest;
pub use limits::{
    Limit, MANIFEST_SIZE_LIMIT, MAX_CONDITIONS, MAX_DOWNLOAD_HOST_LENGTH, MAX_DOWNLOAD_HOSTS,
    MAX_LISTED_VALUES, MAX_MODULES, MAX_NAME_LENGTH, MAX_NOTES_LENGTH, MAX_PACKS,
    MAX_PATTERN_LENGTH, MAX_PATTERNS, MAX_PLATFORMS, MAX_PRODUCT_LENGTH, MAX_RAMP_POINTS,
    MAX_RELEASES, MAX_RULES, MAX_UPDATER_BUILDS, MAX_VALUE_LENGTH, PATTERN_SIZE_LIMIT,
};
pub use manifest::{
    Blob, FORMAT_VERSION, MANIFEST_JSON_SCHEMA, Manifest, Release, UPDATER_EXECUTABLE,
    UpdaterBuild, normalize_download_host,
};
pub use pack::{ModuleDelta, PACK_MAGIC, PackData, PackEntry, PackHeader};
pub use pin::VersionPin;
pub use plan::{
    ByteRange, FileSource, FileStep, MAX_RANGE_REQUESTS, ModulePlan, REQUEST_COST, coalesce,
    plan_module,
};
pub use release::{
    MAX_PACKAGE_WINDOW_LOG, Module, ModuleKind, PLATFORM_RELEASE_SIZE_LIMIT, PackRef,
    PackageFormat, PlatformRelease,
};
pub use rollout::{
    AttributeMatch, Attributes, BUCKETS, BasisPoints, Pattern, Ramp, RampPoint, RolloutPlan, Rule,
    RuleAction, Share, VersionRange, bucket, format_duration, parse_duration, parse_version,
};
pub use root_draft::{CheckedDraft, DRAFT_FORMAT, DraftError, DraftStatus, RootDraft, Signoff};
pub use self_update::{ClientUpdate, client_update};
pub use simulate::{
    AttributeMix, DEFAULT_MAX_SECONDS, Fleet, Install, SimulatedClient, Simulation, SimulationPlan,
    VersionTimeline, client_installs, simulate,
};
pub use tree::{Expected, ExpectedTree, Found, Mismatch, TreeCheck, TreeMismatch};
pub use trust::{
    KeyId, KeySet, MAX_KEYS, MAX_ROOT_STEPS, MAX_SIGNATURES, PublicKey, ROOT_FORMAT,
    ROOT_SIZE_LIMIT, Role, Root, SignedRoot, TrustError, Uncounted,
};
pub use version_marker::{
    MAX_MARKED_VERSION_LENGTH, VERSION_MARKER_PREFIX, marked_versions, version_marker,
    version_marker_length,
};
