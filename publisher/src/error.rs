//! Errors from the publisher library.
//!
//! Every module returns this one [`Error`], so it sits below all of them and names
//! none of them: what a variant carries is plain data, or a type of a lower crate,
//! or [`ReportedVersion`], which has a module of its own for that reason.

use std::path::PathBuf;

use jiff::Timestamp;
use semver::Version;
use wavecast_schema::ChannelName;

use crate::reported_version::ReportedVersion;

/// A `Result` whose error is this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// Why a publisher operation failed. Messages name the file, version or channel
/// involved; the underlying cause is in `source()`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A local file or directory could not be read.
    #[error("failed to read `{}`", path.display())]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// A local file could not be written.
    #[error("failed to write `{}`", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The release folder holds no file or link: clients would install an empty tree.
    #[error(
        "the release folder `{}` holds no files: clients would install an empty tree; give the folder of the built release",
        dir.display()
    )]
    EmptyRelease {
        /// The release folder.
        dir: PathBuf,
    },

    /// A key file exists where `keygen` would write one.
    #[error("`{}` already exists; refusing to overwrite a key (pass --force to replace it)", path.display())]
    KeyExists {
        /// The existing file.
        path: PathBuf,
    },

    /// A key file could not be parsed or decrypted.
    #[error("failed to load the secret key `{}`: {reason}", path.display())]
    LoadKey {
        /// The key file.
        path: PathBuf,
        /// What minisign reported, such as a wrong password.
        reason: String,
    },

    /// The password does not decrypt the secret key.
    #[error("wrong password for the secret key `{}`", path.display())]
    WrongPassword {
        /// The key file.
        path: PathBuf,
    },

    /// A public key file was given where a secret key is needed.
    #[error(
        "`{}` is a public key; --key takes the secret key (`wavecast keygen` writes it beside the public one, as `wavecast.key`)",
        path.display()
    )]
    NotASecretKey {
        /// The public key file.
        path: PathBuf,
    },

    /// The secret key is encrypted and no password was provided.
    #[error(
        "the secret key `{}` is encrypted and no password was given; set WAVECAST_KEY_PASSWORD, pass --password-file, or run on a terminal to be asked",
        path.display()
    )]
    PasswordRequired {
        /// The key file.
        path: PathBuf,
    },

    /// minisign failed to generate, sign or verify.
    #[error("minisign failed to {operation}: {reason}")]
    Minisign {
        /// What was being done.
        operation: &'static str,
        /// minisign's message.
        reason: String,
    },

    /// The release folder holds something wavecast does not package.
    #[error("cannot package `{}`: {reason}", path.display())]
    UnsupportedEntry {
        /// The offending entry.
        path: PathBuf,
        /// Why it is refused.
        reason: &'static str,
    },

    /// Two paths of one module differ only in case: Windows and macOS (by default)
    /// see one file where the release has two, so it cannot be installed there.
    #[error(
        "`{first}` and `{second}` differ only in case, so the release cannot be installed on Windows or on macOS's default file system"
    )]
    CaseCollision {
        /// The first path, in name order.
        first: String,
        /// The second.
        second: String,
    },

    /// A file changed size while it was being packaged.
    #[error("`{}` changed while it was being packaged; publish again from a stable folder", path.display())]
    FileChanged {
        /// The file.
        path: PathBuf,
    },

    /// A root of the site's chain of trust fails verification.
    #[error("the site's `{path}` is not trusted")]
    Trust {
        /// The root file.
        path: String,
        /// Why.
        #[source]
        source: wavecast_schema::TrustError,
    },

    /// A site without roots was given several signing keys.
    #[error(
        "this site has no roots yet, and its first root holds one key: sign the first publish with one --key, then add keys with `wavecast key rotate`"
    )]
    FirstRootNeedsOneKey,

    /// `key rotate` on a site without roots.
    #[error("this site has no roots/1.json yet: publish a release first, which writes it")]
    NoRoots,

    /// The keys given do not reach the newest root's release threshold.
    #[error(
        "the keys given cannot sign manifests under root v{root}{}",
        outsiders_note(outsiders)
    )]
    NotEnoughReleaseKeys {
        /// The newest root's version.
        root: u64,
        /// Ids of the given keys that are not release keys of that root.
        outsiders: Vec<String>,
        /// The threshold shortfall.
        #[source]
        source: wavecast_schema::TrustError,
    },

    /// The keys given do not reach the thresholds a new root needs.
    #[error("the keys given cannot sign the new root")]
    NotEnoughRootKeys {
        /// Which threshold fell short.
        #[source]
        source: wavecast_schema::TrustError,
    },

    /// The site's newest root has expired: clients would refuse what is signed
    /// under it.
    #[error(
        "the site's newest root, v{version}, expired at {expires_at}; clients refuse every manifest signed under it"
    )]
    RootExpired {
        /// Its version.
        version: u64,
        /// When it expired.
        expires_at: jiff::Timestamp,
    },

    /// A root draft cannot be read or used, or a key may not sign it.
    #[error("cannot use the root draft `{}`", path.display())]
    InvalidDraft {
        /// The draft file.
        path: PathBuf,
        /// What is wrong (boxed: it is large, and rare).
        #[source]
        source: Box<wavecast_schema::DraftError>,
    },

    /// `key draft-root` would replace a draft, and the signatures it gathered.
    #[error("`{}` exists already", path.display())]
    DraftExists {
        /// The draft file.
        path: PathBuf,
    },

    /// The site moved past the root a draft follows.
    #[error("the draft follows root v{base}, but the site's newest root is v{newest}")]
    DraftOutdated {
        /// The draft's base root.
        base: u64,
        /// The site's newest root.
        newest: u64,
    },

    /// A draft's base root is not the site's root of that version.
    #[error("the draft's base root v{version} is not this site's root v{version}")]
    DraftForeign {
        /// The version.
        version: u64,
    },

    /// A draft lacks signatures for one of the thresholds.
    #[error(
        "root v{version} cannot be published yet: it needs {}",
        draft_missing(*base, *base_missing, *version, *new_missing)
    )]
    DraftIncomplete {
        /// The new root's version.
        version: u64,
        /// The base root's version.
        base: u64,
        /// How many more of the base root's root keys must sign.
        base_missing: usize,
        /// How many more of the new root's root keys must sign.
        new_missing: usize,
    },

    /// A drafted root has expired already.
    #[error("the new root v{version} expires at {expires_at}, which has passed")]
    DraftExpired {
        /// Its version.
        version: u64,
        /// Its expiry.
        expires_at: jiff::Timestamp,
    },

    /// `--sign-later` on a site without roots: its first manifest must be signed, as
    /// that writes root 1 from the signing key.
    #[error("a new site's first manifest cannot be signed later: signing it writes roots/1.json")]
    SignLaterNeedsRoots,

    /// A change to the channel waits to be signed; another change would replace it.
    #[error(
        "a change to channel `{channel}` waits to be signed (channels/{channel}.json.unsigned)"
    )]
    PendingManifest {
        /// The channel.
        channel: ChannelName,
    },

    /// A pending manifest cannot be read.
    #[error("the pending manifest of channel `{channel}` is corrupt")]
    CorruptPending {
        /// The channel.
        channel: ChannelName,
        /// The parser's complaint.
        #[source]
        source: wavecast_schema::Error,
    },

    /// A pending manifest was made under a root the site has moved past.
    #[error(
        "the pending manifest of channel `{channel}` was made under root v{root_version}, but the site's newest root is v{newest}"
    )]
    PendingOutdated {
        /// The channel.
        channel: ChannelName,
        /// The root the manifest names.
        root_version: u64,
        /// The site's newest root.
        newest: u64,
    },

    /// The live manifest has moved past a pending one.
    #[error(
        "the pending manifest of channel `{channel}` has serial {serial}, but the live one has serial {live} already"
    )]
    PendingStale {
        /// The channel.
        channel: ChannelName,
        /// The pending serial.
        serial: u64,
        /// The live serial.
        live: u64,
    },

    /// A pending manifest expired before a threshold signed it.
    #[error(
        "the pending manifest of channel `{channel}` expired at {expires_at} before it was signed"
    )]
    PendingExpired {
        /// The channel.
        channel: ChannelName,
        /// Its expiry.
        expires_at: jiff::Timestamp,
    },

    /// A blob a pending manifest refers to is missing or wrong.
    #[error("the pending manifest of channel `{channel}` refers to `{path}`, which {problem}")]
    PendingBlob {
        /// The channel.
        channel: ChannelName,
        /// The blob's site path.
        path: String,
        /// What is wrong.
        problem: String,
    },

    /// A key given to sign manifests is not a release key of the newest root.
    #[error("key {key_id} is not a release key of root v{root}")]
    NotAReleaseKey {
        /// The key's id.
        key_id: String,
        /// The site's newest root.
        root: u64,
    },

    /// A rotation would produce an invalid key set.
    #[error("invalid {role} keys for the new root")]
    InvalidKeySet {
        /// The role.
        role: wavecast_schema::Role,
        /// What is wrong.
        #[source]
        source: wavecast_schema::Error,
    },

    /// The module layout given on the command line does not fit the release folder.
    #[error("invalid module layout: {0}")]
    ModuleLayout(String),

    /// A file content was packaged but no zstd copy of it was made: every packaged
    /// file passes through the copies, so this is a bug of the publisher.
    #[error("no zstd copy was made of the packaged content {content}")]
    MissingCopy {
        /// blake3 of the content.
        content: wavecast_schema::Blake3Hash,
    },

    /// The site's current manifest is not signed by the release keys of its root (or,
    /// on a site without roots, by the key in use).
    #[error(
        "the manifest of channel `{channel}` in the site is not signed by this site's release keys (signing with key id {key_id}); refusing to replace it"
    )]
    ForeignManifest {
        /// The channel.
        channel: ChannelName,
        /// The id of the key in use.
        key_id: String,
    },

    /// The channel's manifest is of a format this publisher does not write: a site of
    /// an older wavecast, whose releases it cannot extend.
    #[error(
        "channel `{channel}` holds a format-{found} manifest; this publisher reads and writes format {supported} only, so it cannot add to or change that channel (publish into a new site or a new channel)"
    )]
    UnsupportedManifestFormat {
        /// The channel.
        channel: ChannelName,
        /// The format found.
        found: u32,
        /// The format this publisher writes.
        supported: u32,
    },

    /// The site's current manifest could not be read as a wavecast manifest.
    #[error("the site's manifest for channel `{channel}` is unreadable")]
    CorruptManifest {
        /// The channel.
        channel: ChannelName,
        /// The parse error.
        #[source]
        source: wavecast_schema::Error,
    },

    /// More delta packs asked for than a release may offer.
    #[error(
        "a patch depth of {depth} asks for more delta packs than the {max} a release may offer"
    )]
    PatchDepthTooLarge {
        /// The depth asked for.
        depth: usize,
        /// [`wavecast_schema::MAX_PACKS`].
        max: usize,
    },

    /// The version is already published on the channel.
    #[error(
        "version {version} is already published on channel `{channel}` (pass --force to replace it)"
    )]
    VersionExists {
        /// The version.
        version: Version,
        /// The channel.
        channel: ChannelName,
    },

    /// The channel has no manifest on the site yet.
    #[error("channel `{channel}` has no manifest on the site")]
    UnknownChannel {
        /// The channel.
        channel: ChannelName,
    },

    /// The version is not live on the channel.
    #[error("version {version} is not published on channel `{channel}` (live: {live})")]
    UnknownVersion {
        /// The version asked for.
        version: Version,
        /// The channel.
        channel: ChannelName,
        /// The live versions, newest first, for the message (`none` when empty).
        live: String,
    },

    /// `retire` would take every release off the channel.
    #[error(
        "refusing to retire every release of channel `{channel}`: clients would have nothing to install"
    )]
    RetireEverything {
        /// The channel.
        channel: ChannelName,
    },

    /// `gc` found problems that leave it unsure which blobs are live (a channel that
    /// does not verify, a document or file index it cannot read), so it deletes
    /// nothing.
    #[error(
        "refusing to collect garbage: {} in the site leave it unsure which blobs are live (first: {})",
        if problems.len() == 1 { "1 problem".to_owned() } else { format!("{} problems", problems.len()) },
        problems.first().map_or("", String::as_str)
    )]
    LiveSetUncertain {
        /// Each problem, as `path: what`.
        problems: Vec<String>,
    },

    /// `gc` found no channel on the site: with nothing live, it would delete every
    /// blob, which is far more likely a wrong location than an empty site.
    #[error("refusing to collect garbage: `{location}` has no channel manifests")]
    NoChannels {
        /// The site as given.
        location: String,
    },

    /// A channel manifest changed between `gc`'s survey and its deletions (a
    /// publish or rollout ran meanwhile); nothing was deleted.
    #[error(
        "the site changed while collecting garbage (`{path}` was rewritten); nothing was deleted"
    )]
    SiteChanged {
        /// The channel manifest that changed, appeared or disappeared.
        path: String,
    },

    /// `pause` on a rollout that is already paused.
    #[error("the rollout of {version} on channel `{channel}` is already paused (since {since})")]
    AlreadyPaused {
        /// The version.
        version: Version,
        /// The channel.
        channel: ChannelName,
        /// When it was paused.
        since: Timestamp,
    },

    /// `resume` on a rollout that is not paused.
    #[error("the rollout of {version} on channel `{channel}` is not paused")]
    NotPaused {
        /// The version.
        version: Version,
        /// The channel.
        channel: ChannelName,
    },

    /// `yank` on a yanked release, or `yank --undo` on one that is not yanked.
    #[error("{version} on channel `{channel}` is {state}")]
    YankUnchanged {
        /// The version.
        version: Version,
        /// The channel.
        channel: ChannelName,
        /// `already yanked` or `not yanked`.
        state: &'static str,
    },

    /// `--cap N --fleet M` does not describe a share of the fleet.
    #[error("cannot cap at {installs} installs out of a fleet of {fleet}: {reason}")]
    InvalidCap {
        /// The `--cap` count.
        installs: u64,
        /// The `--fleet` count.
        fleet: u64,
        /// What is wrong.
        reason: &'static str,
    },

    /// `publish-updater --platform any`.
    #[error(
        "an updater build runs on one platform: give its target triple with --platform, not `any`"
    )]
    UpdaterForAny,

    /// `publish-updater` for a platform whose build is as new or newer.
    #[error(
        "wavecast-update {published} is already offered for `{platform}` on this channel, so {version} would not be newer (pass --force to replace it)"
    )]
    UpdaterExists {
        /// The platform.
        platform: wavecast_schema::Platform,
        /// The version offered now.
        published: Version,
        /// The version given.
        version: Version,
    },

    /// The file given to `publish-updater` is not a build of `wavecast-update`.
    #[error("`{}` is not a wavecast-update executable: {reason}", path.display())]
    NotAnUpdater {
        /// The file.
        path: PathBuf,
        /// Why, in words: what it answered, or why it does not run and has no
        /// version marker.
        reason: String,
    },

    /// The build given to `publish-updater` reports another version than the one
    /// given: every client would refuse it.
    #[error(
        "`{}` reports wavecast-update {}, not the {given} given with --version, so every client would refuse it ({})",
        path.display(),
        reported.version,
        reported.source
    )]
    UpdaterVersionMismatch {
        /// The executable.
        path: PathBuf,
        /// The version it reports, and how that was learnt.
        reported: Box<ReportedVersion>,
        /// The version given.
        given: Version,
    },

    /// A `min_client_version` above the version of a build offered: that platform's
    /// clients would download it and still be too old.
    #[error(
        "cannot require wavecast-update >= {floor} on this channel: the build offered for `{platform}` is {version}, so those clients could not update themselves (publish a newer build with `wavecast publish-updater` first)"
    )]
    FloorAboveUpdater {
        /// The floor asked for.
        floor: Version,
        /// The platform whose build is older.
        platform: wavecast_schema::Platform,
        /// That build's version.
        version: Version,
    },

    /// A tar.zst release on a channel offering a build of the client too old to read
    /// it: the release would raise the channel's floor above that build, stranding
    /// its platform's clients.
    #[error(
        "cannot publish tar.zst packages to this channel yet: they need wavecast-update >= {floor}, but the build offered for `{platform}` is {version}, so those clients could not update themselves to read them"
    )]
    PackageFormatAboveUpdater {
        /// The client version tar.zst packages need.
        floor: Version,
        /// The platform whose build is older.
        platform: wavecast_schema::Platform,
        /// That build's version.
        version: Version,
    },

    /// A package compression level outside its format's range.
    #[error("compression level {level} is not a {format} level ({min} to {max})")]
    CompressionLevel {
        /// The format.
        format: wavecast_schema::PackageFormat,
        /// The level given.
        level: u32,
        /// The format's lowest level.
        min: u32,
        /// The format's highest level.
        max: u32,
    },

    /// A `min_client_version` below what this publisher's manifests need.
    #[error(
        "cannot require wavecast-update >= {floor}: the manifests this publisher writes need at least {minimum}"
    )]
    FloorTooLow {
        /// The floor asked for.
        floor: Version,
        /// The lowest floor this publisher's manifests allow.
        minimum: Version,
    },

    /// A command was given nothing to change.
    #[error("nothing to change: {0}")]
    NothingToChange(&'static str),

    /// The changed manifest breaks a rule of the format, e.g. two rules with one name.
    #[error("the new manifest for channel `{channel}` would be invalid")]
    InvalidManifest {
        /// The channel.
        channel: ChannelName,
        /// The rule that would be broken.
        #[source]
        source: wavecast_schema::Error,
    },

    /// The signed manifest would be larger than clients read.
    #[error(
        "the new manifest for channel `{channel}` would be {size} bytes signed, more than the {} clients read",
        wavecast_schema::MANIFEST_SIZE_LIMIT
    )]
    ManifestTooLarge {
        /// The channel.
        channel: ChannelName,
        /// The size of the signed envelope, in bytes.
        size: u64,
    },

    /// The operating system's random number generator failed.
    #[error("failed to draw random bytes: {0}")]
    Random(String),

    /// The manifest was signed and published, but the status page could not be
    /// rewritten afterwards.
    #[error(
        "channel `{channel}` is published (serial {serial}), but the status page `index.html` could not be updated; the next publish or rollout command rewrites it"
    )]
    StatusPage {
        /// The channel that was published.
        channel: ChannelName,
        /// Its new serial.
        serial: u64,
        /// Why the page could not be written.
        #[source]
        source: wavecast_site::Error,
    },

    /// zstd failed to compress a file copy or a patch.
    #[error("zstd failed to compress {what}")]
    Compress {
        /// What was being compressed, e.g. `the copy of lib/app.so`.
        what: String,
        /// zstd's error.
        #[source]
        source: std::io::Error,
    },

    /// bsdiff failed to compare two files.
    #[error("bsdiff failed to build a patch for `{path}`")]
    Bsdiff {
        /// The new file's path in its module.
        path: String,
        /// qbsdiff's error.
        #[source]
        source: std::io::Error,
    },

    /// A site location names a scheme or place that is not supported.
    #[error("cannot use `{location}`: {reason}")]
    UnsupportedLocation {
        /// The location as given.
        location: String,
        /// Why it is refused.
        reason: String,
    },

    /// A file of a site could not be fetched (other than being absent).
    #[error("failed to fetch `{location}`")]
    Fetch {
        /// The file's path or URL.
        location: String,
        /// The I/O or HTTP error.
        #[source]
        source: std::io::Error,
    },

    /// The public key given to check signatures could not be read.
    #[error("invalid public key `{key}`: {reason}")]
    PublicKey {
        /// The key or key file as given.
        key: String,
        /// What minisign reported.
        reason: String,
    },

    /// Reading from or writing to the site failed.
    #[error(transparent)]
    Site(#[from] wavecast_site::Error),
}

fn outsiders_note(outsiders: &[String]) -> String {
    if outsiders.is_empty() {
        String::new()
    } else {
        format!(
            " (not release keys there, so their signatures would not count: {})",
            outsiders.join(", ")
        )
    }
}

/// `1 more signature by root keys of root v1 and 2 more by root keys of the new
/// root v2`, leaving out a threshold that is met.
fn draft_missing(base: u64, base_missing: usize, version: u64, new_missing: usize) -> String {
    let mut parts = Vec::new();
    if base_missing > 0 {
        parts.push(format!(
            "{base_missing} more signature{} by root keys of the current root v{base}",
            if base_missing == 1 { "" } else { "s" }
        ));
    }
    if new_missing > 0 {
        parts.push(format!(
            "{new_missing} more signature{} by root keys of the new root v{version}",
            if new_missing == 1 { "" } else { "s" }
        ));
    }
    parts.join(" and ")
}
