//! Errors raised by the client library.
//!
//! Each variant is named after the operation that failed and carries the URL, path or
//! version involved; the underlying cause, when there is one, is its
//! [`source`](std::error::Error::source) and is never repeated in the message, so a
//! renderer that walks the cause chain prints every fact once.

use std::path::PathBuf;
use std::time::Duration;

use jiff::Timestamp;
use semver::Version;
use wavecast_schema::{Blake3Hash, ChannelName, ModuleName, Platform, RelativePath, VersionPin};

use crate::lifecycle::health::HealthCheckFailure;
use crate::lifecycle::slots::ActivationFailure;
use crate::net::limits::SpeedLimit;
use crate::net::transport::{TransportError, TransportErrorKind};
use crate::store::config::SlotName;
use crate::units::format_bytes;
use crate::units::format_duration;
use crate::updater::decision::HeldBack;

/// A `Result` whose error is this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// Why a client operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ----- configuration and local state -----
    /// The install root has no configuration: `wavecast-update init` was never run
    /// for it.
    #[error("`{}` is not a wavecast install root (no `{}`)", root.display(), config.display())]
    NotInitialized {
        /// The install root.
        root: PathBuf,
        /// The configuration file that is missing.
        config: PathBuf,
    },

    /// `init` was asked to set up a root that already has a configuration.
    #[error("`{}` is already initialized", root.display())]
    AlreadyInitialized {
        /// The install root.
        root: PathBuf,
    },

    /// Creating the install root or one of its directories failed.
    #[error("failed to create directory `{}`", path.display())]
    CreateDirectory {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// Reading the configuration file failed.
    #[error("failed to read configuration `{}`", path.display())]
    ReadConfig {
        /// The configuration file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The configuration file is not valid.
    #[error("configuration `{}` is invalid", path.display())]
    ParseConfig {
        /// The configuration file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: serde_json::Error,
    },

    /// The configuration or state file declares a format newer than this client reads.
    #[error(
        "`{}` uses format {found}, but this wavecast-update understands format {supported} at most",
        path.display()
    )]
    UnsupportedFileFormat {
        /// The file.
        path: PathBuf,
        /// The format it declares.
        found: u32,
        /// The newest format this build reads.
        supported: u32,
    },

    /// The configuration lists no base URL.
    #[error("configuration `{}` lists no URL to update from", path.display())]
    NoUrls {
        /// The configuration file.
        path: PathBuf,
    },

    /// Reading the state file failed.
    #[error("failed to read state `{}`", path.display())]
    ReadState {
        /// The state file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The install root has a configuration but no state file.
    #[error("state file `{}` is missing", path.display())]
    MissingState {
        /// The state file.
        path: PathBuf,
    },

    /// The state file is corrupt. It is never reset silently, because it holds the
    /// install id and the rollback-protection serials.
    #[error("state file `{}` is corrupt", path.display())]
    ParseState {
        /// The state file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: serde_json::Error,
    },

    /// Writing a configuration or state file failed; the previous content is untouched.
    #[error("failed to write `{}`", path.display())]
    WriteFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// Taking the install root's lock failed.
    #[error("failed to lock `{}`", path.display())]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// This process may not write in the install root's `.wavecast/`: only the root's
    /// owner may install, roll back, check (which records what it saw) or change the
    /// configuration. Also a read-only file system.
    #[error("this user may not write in `{}`", path.display())]
    NotWritable {
        /// `ROOT/.wavecast`.
        path: PathBuf,
        /// Why (`EACCES`, `EROFS`…).
        #[source]
        source: std::io::Error,
    },

    /// The trial file is not valid JSON of the expected shape.
    #[error("the trial file `{}` is corrupt", path.display())]
    ParseTrial {
        /// `ROOT/.wavecast/shared/trial.json`.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: serde_json::Error,
    },

    /// `--group` names no group of the system.
    #[error("unknown group `{group}`")]
    UnknownGroup {
        /// The name as given.
        group: String,
    },

    /// The system's group database could not be read.
    #[error("failed to look up group `{group}`")]
    LookUpGroup {
        /// The name as given.
        group: String,
        /// The C library's error.
        #[source]
        source: std::io::Error,
    },

    /// Setting the group or mode of a file of the root failed (`--group`).
    #[error("failed to set the group and mode of `{}`", path.display())]
    SetAccess {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// Another `wavecast-update` holds the install root's lock (and still did after
    /// waiting, when asked to wait).
    #[error(
        "another wavecast-update{} is working on this install root: `{}` is locked{}",
        holder.map(|pid| format!(" (process {pid})")).unwrap_or_default(),
        path.display(),
        waited_note(*waited)
    )]
    Locked {
        /// The lock file.
        path: PathBuf,
        /// The process id the holder wrote into the lock file, if it could be read.
        holder: Option<u32>,
        /// How long this run waited for the lock before giving up.
        waited: Duration,
    },

    /// Reading or removing the install journal failed.
    #[error("failed to {action} the install journal `{}`", path.display())]
    Journal {
        /// `read` or `remove`.
        action: &'static str,
        /// The journal file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The install journal is not valid JSON of the expected shape.
    #[error("failed to parse the install journal `{}`", path.display())]
    ParseJournal {
        /// The journal file.
        path: PathBuf,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },

    /// Finishing an install that a killed (or failed) run left in the journal failed;
    /// `current` still points to a complete release, and the next run tries again.
    #[error(
        "failed to finish the interrupted install of {version} (`releases/{dir}`) from step `{step}`"
    )]
    Recover {
        /// The version being installed.
        version: Version,
        /// Its directory under `ROOT/releases`.
        dir: String,
        /// The journal step the interrupted run had reached.
        step: crate::store::journal::InstallStep,
        /// What went wrong.
        #[source]
        source: Box<Error>,
    },

    /// The operating system's random number generator failed.
    #[error("failed to get random bytes from the operating system")]
    Random {
        /// The generator's error.
        #[source]
        source: getrandom::Error,
    },

    /// A `--attr` argument is not `KEY=VALUE`.
    #[error("invalid attribute `{argument}`: expected KEY=VALUE")]
    InvalidAttribute {
        /// The argument as given.
        argument: String,
    },

    /// An attribute name has characters rules cannot name.
    #[error("invalid attribute name `{key}`: use ASCII letters, digits, `.`, `_` and `-` only")]
    InvalidAttributeKey {
        /// The name as given.
        key: String,
    },

    /// A base URL is not usable.
    #[error("invalid URL `{url}`: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A command-line site location has no scheme and names no folder here.
    #[error(
        "`{argument}` is not a folder on this machine, and not a URL (no `http://`, `https://` or `file://`)"
    )]
    NotAFolder {
        /// The argument as given.
        argument: String,
        /// The folder it would have been.
        path: PathBuf,
    },

    /// Reading a public key file failed.
    #[error("failed to read public key `{}`", path.display())]
    ReadPublicKey {
        /// The key file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// A public key is not a minisign public key.
    #[error("invalid minisign public key `{key}`")]
    InvalidPublicKey {
        /// The key text (or file name) as given.
        key: String,
        /// The decoder's complaint.
        #[source]
        source: wavecast_schema::Error,
    },

    /// Reading a root file to pin failed.
    #[error("failed to read root file `{}`", path.display())]
    ReadPinnedRoot {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// A root file to pin is not a root signed by its own root keys.
    #[error("`{}` is not a root signed by its own root keys", path.display())]
    PinnedRoot {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: wavecast_schema::TrustError,
    },

    // ----- the installed release -----
    /// `ROOT/current` exists but is not a symlink, so it was not made by wavecast.
    #[error("`{}` is not a symlink; wavecast will not replace a directory it did not create", path.display())]
    CurrentNotSymlink {
        /// The `current` path.
        path: PathBuf,
    },

    /// `ROOT/current` points somewhere wavecast never installs to.
    #[error("`{}` points to `{target}`, which is not a wavecast release", path.display())]
    UnrecognizedCurrent {
        /// The `current` path.
        path: PathBuf,
        /// Where it points.
        target: String,
    },

    /// Reading `ROOT/current` failed.
    #[error("failed to read `{}`", path.display())]
    ReadCurrent {
        /// The `current` path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// `confirm`, `launched` or `rollback` on a root where no release is current.
    #[error("no release is installed in `{}`", root.display())]
    NothingInstalled {
        /// The install root.
        root: PathBuf,
    },

    /// `rollback` found no release to return to.
    #[error(
        "nothing to roll back to: no release installed before {version} is still on disk and not marked bad"
    )]
    NothingToRollBackTo {
        /// The current release.
        version: Version,
    },

    /// `unmark` named a version that is not marked bad.
    #[error("{version} is not marked bad here; {}", marked_list(marked))]
    NotMarkedBad {
        /// The version given.
        version: Version,
        /// The versions that are marked bad, oldest mark first.
        marked: Vec<Version>,
    },

    /// `launched`, run by a member of the root's group, found the current release
    /// launched more often than allowed without a `confirm`, but only the root's owner
    /// may switch `current`. The launch was counted; nothing was rolled back.
    #[error(
        "{version} was not confirmed after {launches} launches (at most {limit}), but this user may not roll it back: only the owner of `{}` may switch `current`",
        path.display()
    )]
    RollbackNotAllowed {
        /// The current release.
        version: Version,
        /// Launches since the switch, this one included.
        launches: u32,
        /// The most it may have unconfirmed.
        limit: u32,
        /// `ROOT/.wavecast`, which this user may not write in.
        path: PathBuf,
        /// Why (`EACCES`…).
        #[source]
        source: std::io::Error,
    },

    // ----- health -----
    /// The release just switched to failed its health check (or timed out); `current`
    /// was switched back and the release marked bad.
    #[error("{0}")]
    HealthCheckFailed(Box<HealthCheckFailure>),

    /// The health check of the release just switched to could not be run at all;
    /// `current` was switched back, but the release is not marked bad, since the
    /// check never judged it.
    #[error(
        "failed to run the health check `{command}` of {version}; {}",
        rollback_note(rolled_back_to.as_ref())
    )]
    RunHealthCheck {
        /// The release that was checked.
        version: Version,
        /// The shell command.
        command: String,
        /// The release `current` points to again, if one was current before.
        rolled_back_to: Option<Version>,
        /// Why `sh` could not be run.
        #[source]
        source: std::io::Error,
    },

    // ----- the manifest -----
    /// The channel manifest could not be fetched.
    #[error("failed to fetch the channel manifest `{url}`")]
    FetchManifest {
        /// Its URL.
        url: String,
        /// The transport's error.
        #[source]
        source: TransportError,
    },

    /// The channel manifest's bytes could not be read.
    #[error("failed to read the channel manifest `{url}`")]
    ReadManifest {
        /// Its URL.
        url: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The host sent more than any channel manifest may hold.
    #[error("the channel manifest `{url}` is larger than {limit} bytes")]
    ManifestTooLarge {
        /// Its URL.
        url: String,
        /// The limit, in bytes.
        limit: u64,
    },

    /// The signed envelope is malformed.
    #[error("the channel manifest `{url}` is not a signed wavecast manifest")]
    ParseEnvelope {
        /// Its URL.
        url: String,
        /// The parser's complaint.
        #[source]
        source: wavecast_schema::Error,
    },

    /// The manifest's signatures do not reach the trusted root's release threshold.
    #[error(
        "the signature of the channel manifest `{url}` does not verify against the trusted keys"
    )]
    VerifySignature {
        /// Its URL.
        url: String,
        /// Which keys signed, and how many had to.
        #[source]
        source: wavecast_schema::TrustError,
    },

    /// A manifest names a root further ahead than one check walks.
    #[error(
        "the channel manifest `{url}` names root v{named}, {} versions past the trusted root v{trusted}; at most {} are walked in one check",
        named - trusted,
        wavecast_schema::MAX_ROOT_STEPS
    )]
    RootChainTooLong {
        /// The manifest's URL.
        url: String,
        /// The root version the client trusts.
        trusted: u64,
        /// The root version the manifest names.
        named: u64,
    },

    /// A root the chain needs could not be fetched (or is missing).
    #[error("failed to fetch root v{version} from `{url}`, which the channel manifest names")]
    FetchRoot {
        /// The root's URL.
        url: String,
        /// Its version.
        version: u64,
        /// The transport's error.
        #[source]
        source: TransportError,
    },

    /// A root file is larger than any root may be.
    #[error(
        "root `{url}` is larger than {} bytes",
        wavecast_schema::ROOT_SIZE_LIMIT
    )]
    RootTooLarge {
        /// Its URL.
        url: String,
    },

    /// A root along the chain fails verification.
    #[error("root `{url}` is not trusted")]
    UntrustedRoot {
        /// Its URL.
        url: String,
        /// Why.
        #[source]
        source: wavecast_schema::TrustError,
    },

    /// The signed manifest is malformed (or uses a newer format).
    #[error("the signed manifest `{url}` is invalid")]
    ParseManifest {
        /// Its URL.
        url: String,
        /// The parser's complaint.
        #[source]
        source: wavecast_schema::Error,
    },

    /// The manifest describes another channel than the configured one.
    #[error("manifest `{url}` is for channel `{found}`, expected `{expected}`")]
    WrongChannel {
        /// Its URL.
        url: String,
        /// The manifest's channel.
        found: ChannelName,
        /// The configured channel.
        expected: ChannelName,
    },

    /// The manifest is for another product than the one this root installs: the
    /// same key signs several products, and a host serves another one's manifest.
    #[error(
        "manifest `{url}` is for product `{found}`, but this root installs `{expected}`; refusing to switch products"
    )]
    WrongProduct {
        /// Its URL.
        url: String,
        /// The manifest's product.
        found: String,
        /// The root's product.
        expected: String,
    },

    /// A chosen version is not a release of the channel for this platform.
    #[error(
        "channel `{channel}` has no release {version} for platform `{platform}`; it lists {}",
        version_list(listed)
    )]
    NotListed {
        /// The version asked for.
        version: Version,
        /// The channel.
        channel: ChannelName,
        /// The client's platform.
        platform: Platform,
        /// The versions it lists for the platform, oldest first.
        listed: Vec<Version>,
    },

    /// A chosen release was yanked.
    #[error("{version} was yanked: it is offered to nobody")]
    ChosenYanked {
        /// The version asked for.
        version: Version,
    },

    /// A chosen release is off the client's pin.
    #[error("{version} is outside the pin {pin} this client stays on")]
    ChosenOffPin {
        /// The version asked for.
        version: Version,
        /// The pin.
        pin: VersionPin,
    },

    /// A chosen release is marked bad on this machine.
    #[error("{version} is marked bad on this machine")]
    ChosenMarkedBad {
        /// The version asked for.
        version: Version,
    },

    /// A chosen release is older than the installed one, without
    /// `--allow-downgrade`.
    #[error("{version} is older than the installed {current}")]
    ChosenDowngrade {
        /// The version asked for.
        version: Version,
        /// The installed version.
        current: Version,
    },

    /// The rollout does not offer a chosen release to this client now, and `--now`
    /// was not given.
    #[error("{0}, so it is not offered to this client now")]
    ChosenNotOffered(Box<HeldBack>),

    /// The manifest needs a newer client.
    #[error("manifest `{url}` needs wavecast-update >= {required}; this is {running}")]
    ClientTooOld {
        /// Its URL.
        url: String,
        /// The manifest's `min_client_version`.
        required: Version,
        /// This client's version.
        running: Version,
    },

    /// The manifest has expired, and the configured grace for a skewed clock has run
    /// out too (freeze protection).
    #[error(
        "manifest `{url}` expired at {expires_at} (it is now {now}{}); the publisher must re-sign it",
        grace_note(*grace)
    )]
    ManifestExpired {
        /// Its URL.
        url: String,
        /// When it expired.
        expires_at: Timestamp,
        /// The client's clock.
        now: Timestamp,
        /// How long after `expires_at` the client still accepts it.
        grace: Duration,
    },

    /// The manifest is older than one already seen (rollback protection).
    #[error(
        "manifest `{url}` has serial {serial}, lower than serial {highest} already seen on channel `{channel}`: refusing a rollback"
    )]
    Rollback {
        /// Its URL.
        url: String,
        /// The channel.
        channel: ChannelName,
        /// The manifest's serial.
        serial: u64,
        /// The highest serial this client has seen.
        highest: u64,
    },

    // ----- installing -----
    /// [`crate::Updater::install`] was called with a check that offers no update.
    #[error("there is no update to install")]
    NothingToInstall,

    /// The target release has nothing for this client's platform.
    #[error("release {version} has no build for platform `{platform}`")]
    NoBuildForPlatform {
        /// The release.
        version: Version,
        /// The client's platform.
        platform: Platform,
    },

    /// A package, patch, file copy or file index could not be fetched.
    #[error("failed to fetch `{url}`")]
    FetchBlob {
        /// Its URL.
        url: String,
        /// The transport's error.
        #[source]
        source: TransportError,
    },

    /// A download's bytes could not be read. What arrived stays in the cache as a
    /// `.partial` file, and the next run resumes from it.
    #[error("failed to download `{url}`")]
    DownloadBlob {
        /// Its URL.
        url: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// A host sent a file (the channel manifest or a blob) too slowly: below the
    /// minimum average speed once the grace had passed, or past the download deadline
    /// (slow-retrieval protection). A blob's bytes so far stay in the cache as a
    /// `.partial` file, for the next host or run to resume.
    #[error(
        "download of `{url}` cut off after {received} bytes in {:.1}s: {limit}",
        elapsed.as_secs_f64()
    )]
    TooSlow {
        /// Its URL.
        url: String,
        /// The bytes this request received.
        received: u64,
        /// The time since the request was sent.
        elapsed: Duration,
        /// The limit it broke.
        limit: SpeedLimit,
    },

    /// The host sent more bytes than the manifest declares.
    #[error("host sent more than the declared {size} bytes for `{url}`")]
    BlobTooLarge {
        /// Its URL.
        url: String,
        /// The declared size.
        size: u64,
    },

    /// The host sent fewer bytes than the manifest declares.
    #[error("`{url}` is truncated: got {received} of the declared {size} bytes")]
    BlobTruncated {
        /// Its URL.
        url: String,
        /// The declared size.
        size: u64,
        /// What arrived.
        received: u64,
    },

    /// The bytes do not hash to the value in the signed manifest.
    #[error(
        "`{url}` is corrupt: its blake3 hash is {actual}, but the signed manifest says {expected}"
    )]
    ChecksumMismatch {
        /// Its URL.
        url: String,
        /// The hash in the manifest.
        expected: Blake3Hash,
        /// The hash of what arrived.
        actual: Blake3Hash,
    },

    /// Reading or writing the download cache failed.
    #[error("failed to access the download cache at `{}`", path.display())]
    Cache {
        /// The cache file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// A module's file index is not a valid file index, although its hash matches the
    /// signed manifest.
    #[error("the file index `{url}` is invalid")]
    ParseFileIndex {
        /// Its URL.
        url: String,
        /// The parser's complaint.
        #[source]
        source: wavecast_schema::Error,
    },

    /// A file's compressed copy does not decompress to the content its file index
    /// describes (a differential install then takes the module's package).
    #[error("`{url}` does not decompress to the content the file index describes")]
    CorruptFileCopy {
        /// Its URL.
        url: String,
    },

    /// The site publishes no compressed copy of a file (its index was written by a
    /// publisher without differential updates).
    #[error("the site has no compressed copy of `{path}`")]
    NoFileCopy {
        /// The file's path in its module.
        path: RelativePath,
    },

    /// A verified patch does not produce the content its file index describes (a
    /// differential install then downloads the file's compressed copy).
    #[error("patch `{url}` does not produce the content the file index describes")]
    PatchMismatch {
        /// Its URL.
        url: String,
        /// Why the patch could not be applied, when it could not.
        #[source]
        source: Option<std::io::Error>,
    },

    /// No file on this machine still holds content the plan meant to reuse (it was
    /// changed or removed since it was installed).
    #[error("no installed file holds content {blake3} any more")]
    LocalContentChanged {
        /// The content's blake3.
        blake3: Blake3Hash,
    },

    /// A verified package could not be read as a tar.gz archive.
    #[error("failed to read package of module `{module}` (`{}`)", path.display())]
    ReadPackage {
        /// The module.
        module: ModuleName,
        /// The cached package.
        path: PathBuf,
        /// The decoder's error.
        #[source]
        source: std::io::Error,
    },

    /// A package holds an entry that is not a regular file, a directory or a symbolic
    /// link.
    #[error(
        "package of module `{module}` holds `{path}`, a {kind}; only regular files, directories and symbolic links are allowed"
    )]
    UnsupportedEntry {
        /// The module.
        module: ModuleName,
        /// The entry's path as written in the archive.
        path: String,
        /// What the entry is (symlink, hard link, fifo…).
        kind: String,
    },

    /// A package entry's path could escape the release tree or is malformed.
    #[error("package of module `{module}` holds an entry with the unsafe path `{path}`")]
    UnsafeEntryPath {
        /// The module.
        module: ModuleName,
        /// The entry's path as written in the archive.
        path: String,
        /// Why the path is refused.
        #[source]
        source: wavecast_schema::Error,
    },

    /// A package entry's path is not valid UTF-8.
    #[error("package of module `{module}` holds an entry whose path `{path}` is not valid UTF-8")]
    NonUtf8EntryPath {
        /// The module.
        module: ModuleName,
        /// The entry's path, with invalid bytes replaced.
        path: String,
    },

    /// A package entry is a symbolic link whose target no link may hold.
    #[error(
        "package of module `{module}` holds the symbolic link `{path}` with the target `{target}`, which no link may hold (empty, over 4095 bytes, not UTF-8, or with a backslash or control character)"
    )]
    InvalidLinkTarget {
        /// The module.
        module: ModuleName,
        /// The entry's path.
        path: String,
        /// The target, with invalid bytes replaced.
        target: String,
    },

    /// A package entry lies inside a symbolic link (or a file) the package made
    /// before it: writing it would write through the link, wherever it points.
    #[error(
        "package of module `{module}` holds `{path}` inside `{parent}`, which it made a {kind}; nothing is written through a link"
    )]
    EntryInsideNonDirectory {
        /// The module.
        module: ModuleName,
        /// The entry's path.
        path: String,
        /// The entry's parent that is no directory.
        parent: String,
        /// What the parent is (`symbolic link`, `file`).
        kind: &'static str,
    },

    /// A module's file index lists more bytes of files than the module declares.
    #[error(
        "the file index of module `{module}` lists {listed} bytes of files, more than the {declared} its manifest declares"
    )]
    IndexExceedsModule {
        /// The module.
        module: ModuleName,
        /// What the index lists.
        listed: u64,
        /// The module's `unpacked_size`.
        declared: u64,
    },

    /// The tree an install built is not the one the release's signed file lists
    /// describe: a package that disagrees with its file index, or another release's
    /// package. Nothing was switched.
    #[error("the tree built for {version} is not the one its signed file lists describe")]
    TreeMismatch {
        /// The release being installed.
        version: Version,
        /// The first difference.
        #[source]
        source: wavecast_schema::TreeMismatch,
    },

    /// A package lists the same path twice.
    #[error("package of module `{module}` holds `{path}` twice")]
    DuplicateEntry {
        /// The module.
        module: ModuleName,
        /// The entry's path.
        path: String,
    },

    /// A package unpacks to more than the manifest's `unpacked_size`.
    #[error("package of module `{module}` unpacks to more than its declared size of {limit} bytes")]
    UnpackTooLarge {
        /// The module.
        module: ModuleName,
        /// The declared unpacked size.
        limit: u64,
    },

    /// Writing the release tree failed.
    #[error("failed to write `{}`", path.display())]
    Unpack {
        /// The file or directory being written.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// Preparing, promoting or removing a release directory failed.
    #[error("failed to {action} `{}`", path.display())]
    Release {
        /// What was being done (`flush`, `rename`, `remove`…).
        action: &'static str,
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// Reading how much space the file system holding the install root has failed.
    #[error("failed to read the free space of `{}`", path.display())]
    FreeSpace {
        /// The directory whose file system was asked.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The file system holding the install root cannot take the download and the
    /// unpacked tree; nothing was downloaded or changed.
    #[error(
        "not enough free space on `{}`: need {} ({} download + {} unpacked + {} margin), {} free",
        path.display(),
        format_bytes(download.saturating_add(*unpacked).saturating_add(*margin)),
        format_bytes(*download),
        format_bytes(*unpacked),
        format_bytes(*margin),
        format_bytes(*free)
    )]
    NotEnoughSpace {
        /// The install root.
        path: PathBuf,
        /// Bytes still to download (what the cache already holds aside).
        download: u64,
        /// The new tree's unpacked size, per the manifest.
        unpacked: u64,
        /// Room kept for the file system's own overhead.
        margin: u64,
        /// Bytes available to this user on that file system.
        free: u64,
    },

    /// Pointing `ROOT/current` at the new release failed; the old release is still
    /// current.
    #[error("failed to switch `{}` to `{target}`", path.display())]
    SwitchCurrent {
        /// The `current` path.
        path: PathBuf,
        /// The release directory it was to point to.
        target: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    // ----- image slots -----
    /// The on-activate hook failed or timed out; the previous slot stays active.
    #[error("{0}")]
    ActivationFailed(Box<ActivationFailure>),

    /// The on-activate hook could not be run at all (no `sh`, no temporary file).
    #[error("failed to run on-activate `{command}` for {version} in slot {slot}")]
    RunActivation {
        /// The release whose image was to be activated.
        version: Version,
        /// The hook.
        command: String,
        /// The slot holding the image.
        slot: SlotName,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// An image module's file index does not describe one file of the module's size.
    #[error("the file index of image module `{module}` does not describe an image: {problem}")]
    ImageIndex {
        /// The module.
        module: ModuleName,
        /// What is wrong.
        problem: String,
    },

    /// The image written into a slot does not hash to its file index's blake3,
    /// although its package verified: the signed manifest and index disagree.
    #[error(
        "the image of module `{module}` written to slot {slot} hashes to {actual}, but its file index says {expected}"
    )]
    ImageMismatch {
        /// The module.
        module: ModuleName,
        /// The slot written.
        slot: SlotName,
        /// The blake3 of the index.
        expected: Blake3Hash,
        /// The blake3 of what was written.
        actual: Blake3Hash,
    },

    /// Writing or flushing a slot failed; the active slot is untouched.
    #[error("failed to write slot {slot} (`{}`)", path.display())]
    WriteSlot {
        /// The slot.
        slot: SlotName,
        /// Its path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// Reading a slot (to verify it, or as a patch's base) failed.
    #[error("failed to read slot {slot} (`{}`)", path.display())]
    ReadSlot {
        /// The slot.
        slot: SlotName,
        /// Its path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// Reading the slots' record failed.
    #[error("failed to read the slots' record `{}`", path.display())]
    ReadSlots {
        /// `ROOT/.wavecast/slots.json`.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The slots' record is not valid.
    #[error("the slots' record `{}` is invalid", path.display())]
    ParseSlots {
        /// `ROOT/.wavecast/slots.json`.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: serde_json::Error,
    },

    /// Both slots are configured with the same path.
    #[error("slots a and b are both `{}`", path.display())]
    SlotsShareAPath {
        /// The path.
        path: PathBuf,
    },

    /// A slot no longer holds the image recorded for it (it was changed on disk).
    #[error("slot {slot} (`{}`) no longer holds the image of {version} it was written with", path.display())]
    SlotChanged {
        /// The slot.
        slot: SlotName,
        /// Its path.
        path: PathBuf,
        /// The release whose image it held.
        version: Version,
    },

    /// A rollback of the release tree would leave the active slot on the image of the
    /// release being left: the other slot does not hold the older release's image.
    #[error(
        "cannot roll back to {to}: the active slot holds the current release's image and slot {slot} does not hold {to}'s ({})",
        holds.as_ref().map_or_else(|| "it holds no image".to_owned(), |version| format!("it holds {version}'s"))
    )]
    NoImageToRollBackTo {
        /// The release rolled back to.
        to: Version,
        /// The inactive slot.
        slot: SlotName,
        /// The release whose image it holds, if any.
        holds: Option<Version>,
    },

    // ----- updating the client itself -----
    /// The path of the running executable could not be found.
    #[error("failed to find the path of the running wavecast-update")]
    LocateExecutable {
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The directory of the executable to replace does not let this user write in it.
    #[error(
        "cannot replace `{}`: failed to write in its directory `{}`",
        executable.display(),
        dir.display()
    )]
    ExecutableNotWritable {
        /// The executable.
        executable: PathBuf,
        /// Its directory.
        dir: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// An updater package holds something else than the one executable.
    #[error(
        "the updater package `{url}` must hold only the file `wavecast-update`; it holds {found}"
    )]
    UpdaterPackage {
        /// The package's URL.
        url: String,
        /// What it holds instead, for the message.
        found: String,
    },

    /// The downloaded executable could not be started.
    #[error("failed to run the downloaded wavecast-update `{}`", path.display())]
    RunUpdater {
        /// The downloaded executable.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The downloaded executable did not answer `--version` as a wavecast-update does.
    #[error("the downloaded wavecast-update `{}` {problem}", path.display())]
    UpdaterMisbehaved {
        /// The downloaded executable.
        path: PathBuf,
        /// What it did, e.g. `exited with status 1 on --version`.
        problem: String,
    },

    /// The downloaded executable reports another version than the manifest offers
    /// it as.
    #[error(
        "the downloaded wavecast-update `{}` reports version {reported}, but the manifest offers it as {expected}; refusing to install it",
        path.display()
    )]
    UpdaterVersionMismatch {
        /// The downloaded executable.
        path: PathBuf,
        /// What its `--version` said.
        reported: Version,
        /// The build's version in the manifest.
        expected: Version,
    },

    /// Keeping the old executable, or moving the new one into place, failed.
    #[error("failed to {action} `{}`", path.display())]
    ReplaceExecutable {
        /// What was being done (`keep the old executable as`, `replace`…).
        action: &'static str,
        /// The file written.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// Whether the error means the site could not provide a file as described: it is
    /// missing, too slow, truncated, corrupt, or does not rebuild the expected content. A
    /// differential install falls back (patch → file copy → package) on these, and
    /// stops on every other error (local I/O, the file system).
    pub(crate) fn is_remote(&self) -> bool {
        matches!(
            self,
            Self::FetchBlob { .. }
                | Self::DownloadBlob { .. }
                | Self::TooSlow { .. }
                | Self::BlobTooLarge { .. }
                | Self::BlobTruncated { .. }
                | Self::ChecksumMismatch { .. }
                | Self::ParseFileIndex { .. }
                | Self::CorruptFileCopy { .. }
                | Self::NoFileCopy { .. }
                | Self::PatchMismatch { .. }
                | Self::LocalContentChanged { .. }
        )
    }

    /// Whether the error comes from how the client was set up or invoked (a missing or
    /// invalid configuration, a bad URL or key, a release asked for that cannot be
    /// installed as asked) rather than from the operation itself.
    /// `wavecast-update` exits with 2 for these and 1 for the rest.
    pub fn is_configuration(&self) -> bool {
        matches!(
            self,
            Self::NotInitialized { .. }
                | Self::AlreadyInitialized { .. }
                | Self::ReadConfig { .. }
                | Self::ParseConfig { .. }
                | Self::NoUrls { .. }
                | Self::MissingState { .. }
                | Self::InvalidUrl { .. }
                | Self::NotAFolder { .. }
                | Self::InvalidAttribute { .. }
                | Self::InvalidAttributeKey { .. }
                | Self::ReadPublicKey { .. }
                | Self::InvalidPublicKey { .. }
                | Self::ReadPinnedRoot { .. }
                | Self::PinnedRoot { .. }
                | Self::SlotsShareAPath { .. }
                | Self::NotListed { .. }
                | Self::ChosenYanked { .. }
                | Self::ChosenOffPin { .. }
                | Self::ChosenMarkedBad { .. }
                | Self::ChosenDowngrade { .. }
                | Self::ChosenNotOffered(_)
                | Self::UnknownGroup { .. }
                | Self::NotMarkedBad { .. }
        )
    }

    /// A suggestion for the user, when there is an obvious next step.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            Self::NotInitialized { root, .. } => format!(
                "run `wavecast-update init --root {} --url URL --pubkey KEY` (or --trusted-root FILE) first",
                root.display()
            ),
            Self::AlreadyInitialized { .. } => {
                "pass --force to rewrite the configuration; the install id and state are kept"
                    .into()
            }
            Self::ParseState { path, .. } => format!(
                "the file holds this client's install id; repair `{}` by hand or restore it from a backup",
                path.display()
            ),
            Self::MissingState { .. } => {
                "run `wavecast-update init --force` to create a new one; this client gets a new install id"
                    .into()
            }
            Self::Locked { .. } => {
                "wait for the other run to finish, or pass `--wait 60s` to wait for it; the lock is released when its holder exits or dies, so never delete the lock file"
                    .into()
            }
            Self::NotEnoughSpace { .. } => {
                "free some space on that file system (old trees under `releases/` that are not current can go), then try again"
                    .into()
            }
            Self::ParseJournal { path, .. } => format!(
                "`current` points to a complete release either way; remove `{}` and run `wavecast-update update` again",
                path.display()
            ),
            Self::InvalidPublicKey { .. } => {
                "pass the path of a minisign `.pub` file or the base64 line from it".into()
            }
            Self::ReadPublicKey { .. } => {
                "pass the path of the site's minisign `.pub` file (`wavecast keygen` wrote it beside the secret key), or the base64 key line from it"
                    .into()
            }
            Self::NotAFolder { argument, path } => format!(
                "for a web server, write `http://{argument}/` (or `https://`); for a folder that does not exist yet, write `file://{}`",
                path.display()
            ),
            Self::ParseManifest {
                source: wavecast_schema::Error::LimitExceeded { .. },
                ..
            } => {
                "wavecast does not sign a manifest past its limits, so another tool or a stolen release key signed this one; tell the publisher"
                    .into()
            }
            Self::VerifySignature { .. } => {
                "for a new client, check that --pubkey is this site's key (its id is on the `.pub` file's comment line); otherwise the host may be serving a tampered or forged manifest, or one signed by a key the publisher revoked (a publisher changes keys with `wavecast key rotate`, which clients follow)"
                    .into()
            }
            Self::FetchManifest { url, source }
            | Self::FetchBlob { url, source }
            | Self::FetchRoot { url, source, .. }
                if source.kind() == TransportErrorKind::Forbidden =>
            {
                forbidden_hint(url)
            }
            Self::FetchRoot { .. } | Self::UntrustedRoot { .. } | Self::RootTooLarge { .. } => {
                "the host may be hiding or forging the site's roots/ folder; try another URL, or ask the publisher whether they rotated keys"
                    .into()
            }
            Self::RootChainTooLong { .. } => {
                "a real rotation history is never this long; if it is, pin the newest root with `init --force --trusted-root FILE`, copied from the site by a trusted path"
                    .into()
            }
            Self::PinnedRoot { .. } => {
                "pass a roots/<n>.json file copied from the publisher's site, signed by its root keys"
                    .into()
            }
            Self::ClientTooOld { required, .. } => format!(
                "the site offers no wavecast-update for `{}` at or above {required} to update itself to; install a newer one by hand, or ask the publisher to offer one (`wavecast publish-updater`)",
                crate::BUILD_PLATFORM
            ),
            Self::ExecutableNotWritable { dir, .. } => format!(
                "run the update as a user who may write to `{}`, or install wavecast-update where this user can",
                dir.display()
            ),
            Self::UpdaterPackage { .. }
            | Self::RunUpdater { .. }
            | Self::UpdaterMisbehaved { .. }
            | Self::UpdaterVersionMismatch { .. } => {
                "this wavecast-update is unchanged; the publisher must offer a build that runs on this platform and reports the version it is offered as"
                    .into()
            }
            Self::ManifestExpired { .. } => {
                "check this machine's clock (`wavecast-update config --expiry-grace 5m` tolerates one that runs ahead); if it is right, the site has not been re-signed in time"
                    .into()
            }
            Self::TooSlow { .. } => {
                "the host is too slow or holding back; try again later, or allow slower hosts with `wavecast-update config --min-speed` or `--download-deadline`"
                    .into()
            }
            Self::Rollback { .. } => {
                "the host (or a cache in front of it) is serving an older manifest than it did before"
                    .into()
            }
            Self::CurrentNotSymlink { path } => format!(
                "move `{}` out of the way; wavecast manages it as a symlink into `releases/`",
                path.display()
            ),
            Self::FetchManifest { source, .. }
                if source.kind() == TransportErrorKind::NotFound =>
            {
                "the server answers, but has no such channel there: the URL must be the site's root (the folder that holds `channels/`), and the channel one the site publishes (`--channel`)"
                    .into()
            }
            Self::FetchManifest { .. } | Self::FetchBlob { .. } => {
                "check the URL and the network, then try again".into()
            }
            Self::NotListed { .. } => {
                "`wavecast-update list` shows every release of the channel and what it is to this client"
                    .into()
            }
            Self::ChosenYanked { .. } => {
                "the publisher withdrew it; `wavecast-update list` shows the releases that can be installed"
                    .into()
            }
            Self::ChosenOffPin { pin, .. } => format!(
                "`wavecast-update config --unpin` follows the whole channel again; `config --pin` another line moves the pin (it stays on {pin} now)"
            ),
            Self::ChosenMarkedBad { version } => format!(
                "it failed here before; `wavecast-update unmark {version}` clears the mark if you want to try it again"
            ),
            Self::ChosenDowngrade { .. } => {
                "add --allow-downgrade to go back to it".into()
            }
            Self::ChosenNotOffered(_) => {
                "add --now to install it anyway: a person's choice skips shares, ramps, pauses, rules and caps (never a yank)"
                    .into()
            }
            Self::WrongProduct { expected, .. } => format!(
                "this root installs `{expected}` and nothing was changed; the host may be serving another product's manifest. To follow another product, set up a root for it, or re-initialize this one with `init --force --product NAME`"
            ),
            Self::BlobTooLarge { .. }
            | Self::BlobTruncated { .. }
            | Self::ChecksumMismatch { .. } => {
                "nothing was installed; try again later, or from another mirror".into()
            }
            Self::DownloadBlob { .. } => {
                "nothing was installed; run the update again to resume the download".into()
            }
            Self::HealthCheckFailed(failure) => format!(
                "{0} is not installed again until a newer release is published or its mark is cleared; `wavecast-update status` lists the releases marked bad",
                failure.version
            ),
            Self::ActivationFailed(failure) if failure.marked_bad => format!(
                "{} is not installed again until a newer release is published or its mark is cleared; slot {} keeps its image for the next one; `wavecast-update status` shows the slots",
                failure.version, failure.slot
            ),
            Self::ActivationFailed(_) | Self::RunActivation { .. } => {
                "nothing was switched; fix the hook (`wavecast-update config --on-activate`) and try again"
                    .into()
            }
            Self::TreeMismatch { .. }
            | Self::IndexExceedsModule { .. }
            | Self::UnsupportedEntry { .. }
            | Self::InvalidLinkTarget { .. }
            | Self::EntryInsideNonDirectory { .. }
            | Self::UnsafeEntryPath { .. }
            | Self::NonUtf8EntryPath { .. }
            | Self::DuplicateEntry { .. }
            | Self::UnpackTooLarge { .. } => {
                "nothing was installed and the current release is untouched; the site's release does not match what was signed for it (`wavecast verify` shows the publisher where)"
                    .into()
            }
            Self::NoImageToRollBackTo { .. } => {
                "a later install wrote over the older image; `wavecast-update status` shows what each slot holds"
                    .into()
            }
            Self::NothingToRollBackTo { .. } => {
                "`wavecast-update status` lists the installed releases; `config --keep-releases N` keeps more of them"
                    .into()
            }
            Self::Recover { source, .. } => return source.hint(),
            Self::NotWritable { path, source } if !is_read_only(source) => format!(
                "only the owner of `{}` (the user that ran `init`) may install, check, roll back or reconfigure this root: run this as that user; members of the group given to `init --group` or `config --group` may run `confirm`, `launched` and `status`",
                path.display()
            ),
            Self::RollbackNotAllowed { .. } => {
                "start `current` as usual; run `wavecast-update launched` from the launcher as the root's owner (with systemd, `ExecStartPre=+…`), which rolls back, and `confirm` from the application as its own user"
                    .into()
            }
            Self::ParseTrial { path, .. } => format!(
                "remove `{}`: the current release then counts as confirmed",
                path.display()
            ),
            Self::UnknownGroup { .. } => {
                "name an existing group (`getent group NAME`) that the application's user is in, or create one with `groupadd`"
                    .into()
            }
            Self::SetAccess { source, .. }
                if source.kind() == std::io::ErrorKind::PermissionDenied =>
            {
                "only root, or an owner who is a member of the group, may share the root with it".into()
            }
            _ if let Some((path, source)) = self.local_io() => {
                if is_read_only(source) {
                    read_only_hint(path)
                } else if source.kind() == std::io::ErrorKind::PermissionDenied {
                    format!(
                        "this user may not access `{}`: run wavecast-update as the owner of the install root (the user that ran `init`), or, for `confirm` and `launched`, have the owner share the root with a group of this user (`wavecast-update config --group GROUP`, or `init --group GROUP`)",
                        path.display()
                    )
                } else if self.is_storage_full() {
                    STORAGE_FULL_HINT.into()
                } else {
                    return None;
                }
            }
            Self::NotWritable { path, .. } => read_only_hint(path),
            _ if self.is_storage_full() => STORAGE_FULL_HINT.into(),
            _ => return None,
        })
    }

    /// The file of the install root and the I/O error, for the errors of reading or
    /// writing one, so that permission and read-only errors get one hint.
    fn local_io(&self) -> Option<(&std::path::Path, &std::io::Error)> {
        match self {
            Self::CreateDirectory { path, source }
            | Self::ReadConfig { path, source }
            | Self::ReadState { path, source }
            | Self::WriteFile { path, source }
            | Self::Lock { path, source }
            | Self::Journal { path, source, .. }
            | Self::ReadCurrent { path, source }
            | Self::Cache { path, source }
            | Self::ReadPackage { path, source, .. }
            | Self::Unpack { path, source, .. }
            | Self::Release { path, source, .. }
            | Self::FreeSpace { path, source }
            | Self::SwitchCurrent { path, source, .. }
            | Self::ReadSlots { path, source } => Some((path, source)),
            _ => None,
        }
    }

    /// Whether the error, or one of its causes, is a full file system (`ENOSPC`).
    fn is_storage_full(&self) -> bool {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(error) = cause {
            if error
                .downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::StorageFull)
            {
                return true;
            }
            cause = error.source();
        }
        false
    }
}

/// The hint for a site file the host refused to serve (`403 Forbidden`, or a local
/// file this user may not read): almost always file modes, as a web server runs as a
/// user of its own.
fn forbidden_hint(url: &str) -> String {
    let reader = if url.starts_with("file://") {
        "this user"
    } else {
        "the web server's user (often `www-data` or `nobody`)"
    };
    format!(
        "{reader} probably cannot read the site's files: `wavecast` writes them 0644 and its folders 0755 (unless it is run with --respect-umask), so check the modes of the site folder and of every folder above it (`namei -l PATH` shows them all); `chmod -R a+rX SITE` fixes the site itself"
    )
}

/// `1.0.0, 1.1.0 and 2.0.0`, or `nothing` for none.
fn version_list(versions: &[Version]) -> String {
    match versions {
        [] => "nothing".to_owned(),
        [one] => one.to_string(),
        [rest @ .., last] => format!(
            "{} and {last}",
            rest.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The hint for a full file system.
const STORAGE_FULL_HINT: &str = "the file system is full and `current` still points to a complete release; free some space, then run the update again";

/// Whether `error` is a read-only file system (`EROFS`).
fn is_read_only(error: &std::io::Error) -> bool {
    error.kind() == std::io::ErrorKind::ReadOnlyFilesystem
}

/// The hint for a file on a read-only file system.
fn read_only_hint(path: &std::path::Path) -> String {
    format!(
        "`{}` is on a read-only file system: remount it read-write to change this install root; the installed release is untouched",
        path.display()
    )
}

/// `marked bad: 1.1.0, 1.2.0`, or `no release is marked bad`.
fn marked_list(marked: &[Version]) -> String {
    if marked.is_empty() {
        return "no release is marked bad".to_owned();
    }
    let versions: Vec<String> = marked.iter().map(ToString::to_string).collect();
    format!("marked bad: {}", versions.join(", "))
}

/// ` (`wavecast-update unmark 1.1.0` clears the mark)`: what follows every sentence
/// saying that a release was marked bad.
pub(crate) fn unmark_note(version: &Version) -> String {
    format!(" (`{}` clears the mark)", unmark_command(version))
}

/// `wavecast-update unmark 1.1.0`: the command that clears the bad mark of `version`,
/// so that updates may install it again.
pub fn unmark_command(version: &Version) -> String {
    format!("wavecast-update unmark {version}")
}

/// ` (waited 1m)` after a wait; nothing when the run did not wait.
fn waited_note(waited: Duration) -> String {
    if waited.is_zero() {
        String::new()
    } else {
        format!(" (waited {})", format_duration(waited))
    }
}

/// `rolled back to 1.0.0`, or what happens when there was nothing to go back to.
pub(crate) fn rollback_note(to: Option<&Version>) -> String {
    match to {
        Some(version) => format!("rolled back to {version}"),
        None => "removed `current`, as no release was current before it".to_owned(),
    }
}

/// `, beyond the grace of 5m` for a configured expiry grace; nothing without one.
fn grace_note(grace: Duration) -> String {
    if grace.is_zero() {
        String::new()
    } else {
        format!(", beyond the grace of {}", format_duration(grace))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_this_user_may_not_write_are_named_with_the_fix() {
        let path = PathBuf::from("/opt/app/.wavecast/state.json");
        let denied = Error::WriteFile {
            path: path.clone(),
            source: std::io::Error::from_raw_os_error(libc::EACCES),
        };
        let hint = denied.hint().unwrap();
        assert!(
            hint.starts_with("this user may not access `/opt/app/.wavecast/state.json`: run wavecast-update as the owner of the install root")
                && hint.contains("`wavecast-update config --group GROUP`, or `init --group GROUP`"),
            "{hint}"
        );
        let read_only = Error::Lock {
            path: "/opt/app/.wavecast/lock".into(),
            source: std::io::Error::from_raw_os_error(libc::EROFS),
        };
        assert_eq!(
            read_only.hint().unwrap(),
            "`/opt/app/.wavecast/lock` is on a read-only file system: remount it read-write to change this install root; the installed release is untouched"
        );
        let member = Error::NotWritable {
            path: "/opt/app/.wavecast".into(),
            source: std::io::Error::from_raw_os_error(libc::EACCES),
        };
        assert!(
            member
                .hint()
                .unwrap()
                .starts_with("only the owner of `/opt/app/.wavecast` (the user that ran `init`)"),
            "{member}"
        );
        // Other I/O errors keep their own hints, or none.
        let other = Error::WriteFile {
            path,
            source: std::io::Error::from_raw_os_error(libc::EIO),
        };
        assert_eq!(other.hint(), None);
    }

    #[test]
    fn unmarking_a_release_not_marked_names_the_marked_ones() {
        let error = |marked: &[&str]| Error::NotMarkedBad {
            version: "1.2.0".parse().unwrap(),
            marked: marked
                .iter()
                .map(|version| version.parse().unwrap())
                .collect(),
        };
        assert_eq!(
            error(&["1.0.0", "1.1.0"]).to_string(),
            "1.2.0 is not marked bad here; marked bad: 1.0.0, 1.1.0"
        );
        assert_eq!(
            error(&[]).to_string(),
            "1.2.0 is not marked bad here; no release is marked bad"
        );
        assert!(error(&[]).is_configuration());
    }

    #[test]
    fn a_refused_fetch_hints_at_file_modes_and_other_failures_at_the_network() {
        let fetch = |url: &str, kind| Error::FetchManifest {
            url: url.to_owned(),
            source: TransportError::new(kind, "refused"),
        };
        let http = fetch(
            "http://updates.example/channels/stable.json",
            TransportErrorKind::Forbidden,
        )
        .hint()
        .unwrap();
        assert!(http.contains("www-data") && http.contains("0644"), "{http}");
        let file = Error::FetchBlob {
            url: "file:///srv/site/blobs/x.tar.gz".to_owned(),
            source: TransportError::new(TransportErrorKind::Forbidden, "refused"),
        }
        .hint()
        .unwrap();
        assert!(
            file.starts_with("this user") && file.contains("0755"),
            "{file}"
        );
        let network = fetch(
            "http://updates.example/channels/stable.json",
            TransportErrorKind::Other,
        )
        .hint()
        .unwrap();
        assert!(network.contains("network"), "{network}");
    }
}
