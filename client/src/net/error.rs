//! Errors of the network layer: a URL or key that cannot be used, and a site whose
//! manifest cannot be fetched, is too slow, or does not verify.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use jiff::Timestamp;
use semver::Version;
use wavecast_schema::ChannelName;

use crate::net::transport::{TransportError, TransportErrorKind};
use crate::units::{format_duration, format_speed};

/// A `Result` whose error is the network layer's [`Error`].
pub(crate) type Result<T> = std::result::Result<T, Error>;

/// Why a URL, a key or a site's manifest could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
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
        source: Box<wavecast_schema::TrustError>,
    },

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
        source: Box<wavecast_schema::TrustError>,
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
        source: Box<wavecast_schema::TrustError>,
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

    /// The newest root the client trusts has expired, and the grace for a skewed
    /// clock has run out too: no manifest is trusted until the site publishes a
    /// newer root.
    #[error(
        "root v{version} of the site expired at {expires_at} (it is now {now}{}), so manifest `{url}` is not trusted",
        grace_note(*grace)
    )]
    RootExpired {
        /// The manifest's URL.
        url: String,
        /// The expired root's version.
        version: u64,
        /// When it expired.
        expires_at: Timestamp,
        /// The client's clock.
        now: Timestamp,
        /// How long after `expires_at` the client still trusts it.
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
}

impl Error {
    /// Whether the error means the host could not provide a file as asked, so that
    /// another host, or a more expensive way to the same content, may be tried: it
    /// was too slow.
    pub(crate) fn is_remote(&self) -> bool {
        matches!(self, Self::TooSlow { .. })
    }

    /// Whether the error comes from how the client was set up or invoked (a bad URL
    /// or key) rather than from the site.
    pub fn is_configuration(&self) -> bool {
        matches!(
            self,
            Self::InvalidUrl { .. }
                | Self::NotAFolder { .. }
                | Self::ReadPublicKey { .. }
                | Self::InvalidPublicKey { .. }
                | Self::ReadPinnedRoot { .. }
                | Self::PinnedRoot { .. }
        )
    }

    /// A suggestion for the user, when there is an obvious next step.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
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
            Self::FetchManifest { url, source } | Self::FetchRoot { url, source, .. }
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
                crate::build_info::BUILD_PLATFORM
            ),
            Self::ManifestExpired { .. } => {
                "check this machine's clock (`wavecast-update config --expiry-grace 5m` tolerates one that runs ahead); if it is right, the site has not been re-signed in time"
                    .into()
            }
            Self::RootExpired { version, .. } => format!(
                "the site's root key holders must publish root v{} (`wavecast key draft-root`, `sign-root` and `publish-root`) and sign the channels again under it; if this machine's clock is wrong, fix it (`wavecast-update config --expiry-grace 5m` tolerates one that runs ahead)",
                version + 1
            ),
            Self::TooSlow { .. } => {
                "the host is too slow or holding back; try again later, or allow slower hosts with `wavecast-update config --min-speed` or `--download-deadline`"
                    .into()
            }
            Self::Rollback { .. } => {
                "the host (or a cache in front of it) is serving an older manifest than it did before"
                    .into()
            }
            Self::FetchManifest { source, .. }
                if source.kind() == TransportErrorKind::NotFound =>
            {
                "the server answers, but has no such channel there: the URL must be the site's root (the folder that holds `channels/`), and the channel one the site publishes (`--channel`)"
                    .into()
            }
            Self::FetchManifest { .. } => NETWORK_HINT.into(),
            Self::WrongProduct { expected, .. } => format!(
                "this root installs `{expected}` and nothing was changed; the host may be serving another product's manifest. To follow another product, set up a root for it, or re-initialize this one with `init --force --product NAME`"
            ),
            _ => return None,
        })
    }
}

/// The limit a download broke, for [`Error::TooSlow`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpeedLimit {
    /// Below this average speed (bytes per second) after the grace.
    MinSpeed(u64),
    /// Past this deadline.
    Deadline(Duration),
}

impl fmt::Display for SpeedLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MinSpeed(speed) => write!(
                f,
                "below the minimum average speed of {}",
                format_speed(*speed)
            ),
            Self::Deadline(deadline) => write!(
                f,
                "past the download deadline of {}",
                format_duration(*deadline)
            ),
        }
    }
}

/// The hint for a file the site could not send for a reason other than refusing it.
pub(crate) const NETWORK_HINT: &str = "check the URL and the network, then try again";

/// The hint for a site file the host refused to serve (`403 Forbidden`, or a local
/// file this user may not read): almost always file modes, as a web server runs as a
/// user of its own.
pub(crate) fn forbidden_hint(url: &str) -> String {
    let reader = if url.starts_with("file://") {
        "this user"
    } else {
        "the web server's user (often `www-data` or `nobody`)"
    };
    format!(
        "{reader} probably cannot read the site's files: `wavecast` writes them 0644 and its folders 0755 (unless it is run with --respect-umask), so check the modes of the site folder and of every folder above it (`namei -l PATH` shows them all); `chmod -R a+rX SITE` fixes the site itself"
    )
}

/// `, beyond the grace of 5m` for a configured expiry grace; nothing without one.
fn grace_note(grace: Duration) -> String {
    if grace.is_zero() {
        String::new()
    } else {
        format!(", beyond the grace of {}", format_duration(grace))
    }
}
