//! What [`crate::Tally::finish`] gives: per channel, the totals over the logs read and
//! one row per time bucket, with counts only. Serializes as the `--json` document of
//! `wavecast stats`.

use jiff::Timestamp;
use serde::Serialize;

/// The whole measurement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The document's format, for readers of `--json`.
    pub schema_version: u32,
    /// Lines read, requests for a site file among them, and the others (other paths,
    /// methods other than GET).
    pub lines: u64,
    /// Requests for a file of the site (a manifest or a blob it names).
    pub site_requests: u64,
    /// Lines that were not such a request.
    pub ignored: u64,
    /// The first and last request times seen.
    pub first: Option<Timestamp>,
    /// See `first`.
    pub last: Option<Timestamp>,
    /// The width of each bucket, in seconds.
    pub bucket_seconds: u64,
    /// One entry per channel of the site, in name order.
    pub channels: Vec<ChannelReport>,
}

/// One channel's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChannelReport {
    /// The channel's name.
    pub channel: String,
    /// Over everything read: `active_clients` counts each client once, and
    /// `versions` is where each client was last seen.
    pub totals: Figures,
    /// One row per bucket with requests, oldest first: `active_clients` and
    /// `versions` count the clients seen in that bucket, at its end.
    pub buckets: Vec<Bucket>,
}

/// One time bucket of a channel.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bucket {
    /// When the bucket starts (it lasts [`Report::bucket_seconds`]).
    pub start: Timestamp,
    /// What happened in it.
    #[serde(flatten)]
    pub figures: Figures,
}

/// Counts for a channel over some time.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Figures {
    /// Distinct clients (by hashed address and user agent) that requested anything.
    pub active_clients: u64,
    /// Manifest requests (polls), answered `200` or `304` alike.
    pub polls: u64,
    /// Completed downloads of a release, by release and where it came from.
    pub installs: Vec<InstallCount>,
    /// Downloads of a whole blob (package, delta pack, image copy) by one client.
    pub downloads: u64,
    /// Those that did not complete in one go: a body cut short, a failed
    /// response, or the blob asked for again.
    pub incomplete: u64,
    /// Responses whose body was shorter than the blob.
    pub partial_bodies: u64,
    /// Requests for a blob the same client had asked for already (resumed or
    /// restarted downloads).
    pub retries: u64,
    /// Installs that downloaded a delta pack.
    pub pack_downloads: u64,
    /// Installs that downloaded a delta pack and then packages or file copies
    /// anyway: the pack was cut off, corrupt or did not fit.
    pub fallbacks: u64,
    /// Active clients by the release they are known to run (`unknown` when the
    /// logs never showed them installing).
    pub versions: Vec<VersionCount>,
}

impl Figures {
    /// Installs of `version` (from anywhere).
    pub fn installs_of(&self, version: &str) -> u64 {
        self.installs
            .iter()
            .filter(|count| count.version == version)
            .map(|count| count.count)
            .sum()
    }

    /// Installs of `version` from `origin` (`fresh`, `unknown` or a version).
    pub fn installs_from(&self, version: &str, origin: &str) -> u64 {
        self.installs
            .iter()
            .filter(|count| count.version == version && count.from == origin)
            .map(|count| count.count)
            .sum()
    }

    /// Active clients known to run `version` (or `unknown`).
    pub fn clients_on(&self, version: &str) -> u64 {
        self.versions
            .iter()
            .filter(|count| count.version == version)
            .map(|count| count.clients)
            .sum()
    }
}

/// Installs of one release from one origin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstallCount {
    /// The release installed.
    pub version: String,
    /// `fresh` (nothing earlier: every package downloaded), the release it updated
    /// from (named by its delta pack, or installed earlier in the logs), or
    /// `unknown`.
    pub from: String,
    /// How many.
    pub count: u64,
}

/// Clients on one release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionCount {
    /// The release, or `unknown`.
    pub version: String,
    /// How many clients.
    pub clients: u64,
}
