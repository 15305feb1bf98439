//! Limits on what one signed manifest may hold.
//!
//! A signature proves who wrote a manifest, not that it is reasonable: a stolen
//! release key, or a buggy tool signing for the publisher, can make a manifest that
//! costs every client far more than its bytes. The envelope's size limit
//! ([`MANIFEST_SIZE_LIMIT`]) bounds the bytes, but not what they expand into: 16 MiB
//! of one-line regular expressions compile to gigabytes, and a list of 100,000
//! download hosts is 100,000 failed requests for every blob. So each list and string
//! a client acts on has a limit of its own ([`Limit`]), chosen so that every real
//! site fits with room to spare.
//!
//! The limits are checked on the manifest's bytes before anything is built from them
//! ([`walk::check_manifest`], called by [`crate::Manifest::parse`]): a walk over the JSON
//! that allocates nothing but the path it is at, and stops at the first list past
//! its limit (counting the rest of that list without reading it). Only a manifest
//! within every limit is deserialized, so no regular expression of a refused
//! manifest is ever compiled. The publisher signs only bytes that
//! [`crate::Manifest::parse`] accepts, so it refuses what clients would.

pub(crate) mod walk;

/// The most bytes of a signed manifest envelope (`channels/<channel>.json`): a
/// client reads no more, and the publisher signs nothing larger. A manifest of
/// 1,000 releases on each of 10 platforms is about 1.5 MiB.
pub const MANIFEST_SIZE_LIMIT: u64 = 16 * 1024 * 1024;

/// The most releases one channel lists. Releases stay listed until the publisher
/// removes them, so this is a release a day for 27 years; every decision judges
/// each release, at well under a microsecond apiece.
pub const MAX_RELEASES: usize = 10_000;

/// The most platforms of one release. Rust knows about 100 target triples; a
/// product ships to a handful, and one `any` covers the rest.
pub const MAX_PLATFORMS: usize = 64;

/// The most modules of one release on one platform. Modules are declared one by one
/// (`--module`), a few per product; checking that they do not overlap takes time
/// quadratic in their number.
pub const MAX_MODULES: usize = 256;

/// The most delta packs one release offers on one platform, one per earlier release
/// a client may update from in one download (`wavecast publish --patch-depth`).
/// Each costs the publisher a diff of two trees; a handful covers real fleets.
pub const MAX_PACKS: usize = 16;

/// The most builds of the client (`updater`) a manifest offers, one per target
/// triple, as for [`MAX_PLATFORMS`].
pub const MAX_UPDATER_BUILDS: usize = 64;

/// The most download hosts. Each blob is tried on every host in turn until one
/// serves it, so each host listed can cost a failed request, or a timeout, per
/// blob; real sites use one to three CDNs or mirrors.
pub const MAX_DOWNLOAD_HOSTS: usize = 16;

/// The most bytes of one download host's URL, the length most HTTP software
/// accepts.
pub const MAX_DOWNLOAD_HOST_LENGTH: usize = 2048;

/// The most rollout rules of one release. Rules are written by hand, one
/// `--rule` each; the rollout benchmark's 100 on one release is already far more
/// than a real rollout needs.
pub const MAX_RULES: usize = 256;

/// The most attribute conditions of one rule (one per attribute name); real rules
/// test one to three.
pub const MAX_CONDITIONS: usize = 32;

/// The most values one `KEY in A|B|C` condition lists, such as tenants or machines
/// named one by one. A client looks its value up in the set, so the cost is memory
/// alone.
pub const MAX_LISTED_VALUES: usize = 1024;

/// The most distinct regular expressions (`KEY ~ REGEX` conditions) in all the rules
/// of a manifest. Each is compiled once when the manifest is parsed, however many
/// rules use it, to at most [`PATTERN_SIZE_LIMIT`] (about 80 KiB in memory at worst,
/// a few KiB for real patterns such as `[0-9]{1,7}`), so this bounds what the rules
/// of any manifest cost to about 40 MiB and half a second. A rule kept on every
/// release counts once; real sites use a handful.
pub const MAX_PATTERNS: usize = 512;

/// The most bytes of one regular expression's text. A longer pattern is a list in
/// disguise: `KEY in A|B|C` is cheaper.
pub const MAX_PATTERN_LENGTH: usize = 1024;

/// The most bytes one regular expression may compile to (the `regex` crate's
/// `size_limit`). `[0-9a-z]{1,500}` fits; a counted repetition of a Unicode class
/// such as `\w{1,50}` does not.
pub const PATTERN_SIZE_LIMIT: usize = 64 * 1024;

/// The most bytes of a rule's name or of an attribute's name, names people type.
pub const MAX_NAME_LENGTH: usize = 128;

/// The most bytes of an attribute value a condition compares with (`=`, `^=`, one
/// value of `in`): region names, tenant or machine ids, host names (at most 253).
pub const MAX_VALUE_LENGTH: usize = 1024;

/// The most bytes of the product's name, shown in messages.
pub const MAX_PRODUCT_LENGTH: usize = 256;

/// The most bytes of one release's notes, shown to people before they consent to an
/// install: 64 KiB is about 20 pages of text.
pub const MAX_NOTES_LENGTH: usize = 64 * 1024;

/// The most points of one time ramp. Ramps are written by hand, such as
/// `1%@0h,5%@4h,25%@1d,100%@3d`, and every decision walks them.
pub const MAX_RAMP_POINTS: usize = 64;

/// One of the limits on what a manifest may hold, named in
/// [`Error::LimitExceeded`](crate::Error::LimitExceeded). Each has a `MAX_…` constant saying why it is what it
/// is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Limit {
    /// [`MAX_RELEASES`].
    Releases,
    /// [`MAX_PLATFORMS`].
    Platforms,
    /// [`MAX_MODULES`].
    Modules,
    /// [`MAX_PACKS`].
    Packs,
    /// [`MAX_UPDATER_BUILDS`].
    UpdaterBuilds,
    /// [`MAX_DOWNLOAD_HOSTS`].
    DownloadHosts,
    /// [`MAX_DOWNLOAD_HOST_LENGTH`].
    DownloadHostLength,
    /// [`MAX_RULES`].
    Rules,
    /// [`MAX_CONDITIONS`].
    Conditions,
    /// [`MAX_LISTED_VALUES`].
    ListedValues,
    /// [`MAX_PATTERNS`], distinct patterns counted over the whole manifest.
    Patterns,
    /// [`MAX_PATTERN_LENGTH`].
    PatternLength,
    /// [`MAX_NAME_LENGTH`].
    NameLength,
    /// [`MAX_VALUE_LENGTH`].
    ValueLength,
    /// [`MAX_PRODUCT_LENGTH`].
    ProductLength,
    /// [`MAX_NOTES_LENGTH`].
    NotesLength,
    /// [`MAX_RAMP_POINTS`].
    RampPoints,
}

/// What a [`Limit`] bounds, for its message.
enum Bound {
    /// The items of one list: `"rollout rules"`.
    Items(&'static str),
    /// The bytes of one string: `"rule pattern"`.
    Bytes(&'static str),
    /// Items counted over the whole document.
    Total(&'static str),
}

impl Limit {
    /// The most the limit allows: items, or bytes for a string.
    pub fn max(self) -> usize {
        match self {
            Self::Releases => MAX_RELEASES,
            Self::Platforms => MAX_PLATFORMS,
            Self::Modules => MAX_MODULES,
            Self::Packs => MAX_PACKS,
            Self::UpdaterBuilds => MAX_UPDATER_BUILDS,
            Self::DownloadHosts => MAX_DOWNLOAD_HOSTS,
            Self::DownloadHostLength => MAX_DOWNLOAD_HOST_LENGTH,
            Self::Rules => MAX_RULES,
            Self::Conditions => MAX_CONDITIONS,
            Self::ListedValues => MAX_LISTED_VALUES,
            Self::Patterns => MAX_PATTERNS,
            Self::PatternLength => MAX_PATTERN_LENGTH,
            Self::NameLength => MAX_NAME_LENGTH,
            Self::ValueLength => MAX_VALUE_LENGTH,
            Self::ProductLength => MAX_PRODUCT_LENGTH,
            Self::NotesLength => MAX_NOTES_LENGTH,
            Self::RampPoints => MAX_RAMP_POINTS,
        }
    }

    fn bound(self) -> Bound {
        match self {
            Self::Releases => Bound::Items("releases"),
            Self::Platforms => Bound::Items("platforms"),
            Self::Modules => Bound::Items("modules"),
            Self::Packs => Bound::Items("delta packs"),
            Self::UpdaterBuilds => Bound::Items("updater builds"),
            Self::DownloadHosts => Bound::Items("download hosts"),
            Self::DownloadHostLength => Bound::Bytes("download host"),
            Self::Rules => Bound::Items("rollout rules"),
            Self::Conditions => Bound::Items("attribute conditions"),
            Self::ListedValues => Bound::Items("listed values"),
            Self::Patterns => Bound::Total("distinct rule patterns"),
            Self::PatternLength => Bound::Bytes("rule pattern"),
            Self::NameLength => Bound::Bytes("name"),
            Self::ValueLength => Bound::Bytes("attribute value"),
            Self::ProductLength => Bound::Bytes("product name"),
            Self::NotesLength => Bound::Bytes("release notes text"),
            Self::RampPoints => Bound::Items("ramp points"),
        }
    }
}

/// The message of [`Error::LimitExceeded`](crate::Error::LimitExceeded), after the document's name.
pub(crate) fn exceeded_message(limit: Limit, found: usize, at: &str) -> String {
    let max = limit.max();
    match limit.bound() {
        Bound::Items(items) => {
            format!("lists {found} {items} at `{at}`, more than the {max} allowed")
        }
        Bound::Bytes(string) => {
            format!("has a {string} of {found} bytes at `{at}`, more than the {max} allowed")
        }
        Bound::Total(items) => format!(
            "holds {found} {items} in all, more than the {max} allowed (the first one too many at `{at}`)"
        ),
    }
}
