//! Counting what the requests of a log say about a rollout, one request at a time.
//!
//! A client is the blake3 of its address and user agent, keyed with a random salt
//! of this run, so the same machine is the same client within one run and nothing
//! can tie it back to an address afterwards; only counts leave this module. Each
//! client carries a little state while the log is read: the channel it last polled,
//! the release it is known to run, and the install it is in the middle of:
//!
//! ```text
//! poll channels/<c>.json ─▶ document of R ─▶ [pack from X] ─▶ [packages, copy ranges] ─▶ poll…
//!                           (install of R starts)                (complete: client on R)
//! ```
//!
//! An install is counted when one of its content downloads completes (a package or
//! pack whose bytes add up to its size, a copy range served), and it is finished
//! at the client's next poll after that, its next document, or the end of the logs:
//! then it is counted as **fresh** (no earlier release, every package downloaded),
//! **from X** (its delta pack came from X, or the client was seen installing X), or
//! **unknown**. A pack followed by packages or copies is a **fallback**. A whole-blob
//! download is **incomplete** when a response sent less than the blob, failed, or
//! was asked for again.
//!
//! Memory grows with the number of clients and buckets, never with the number of
//! lines: a log of any length streams through.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

use crate::log::Request;
use crate::report::{Bucket, ChannelReport, Figures, InstallCount, Report, VersionCount};
use crate::site_map::{ChannelId, ReleaseId, Role, SiteMap, SiteObject};

/// Where an install came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Origin {
    Fresh,
    From(ReleaseId),
    Unknown,
}

/// A channel's counts in one bucket (or in total), by id.
#[derive(Debug, Clone, Default)]
struct Counters {
    active: u64,
    polls: u64,
    installs: BTreeMap<(ReleaseId, Origin), u64>,
    downloads: u64,
    incomplete: u64,
    partial_bodies: u64,
    retries: u64,
    pack_downloads: u64,
    fallbacks: u64,
    versions: BTreeMap<Option<ReleaseId>, u64>,
}

/// One blob one client is downloading for an install.
#[derive(Debug)]
struct BlobTally {
    /// The address of the blob's site path in the [`SiteMap`], which identifies it.
    path: usize,
    bytes: u64,
    requests: u32,
    partial_bodies: u32,
    failed: bool,
    /// A download the incompleteness counts consider (packages, packs, image
    /// copies): not documents, indexes (small, cached) or copy packs (fetched in
    /// ranges by design).
    whole: bool,
}

#[derive(Debug)]
struct Install {
    release: ReleaseId,
    bucket: i64,
    channel: Option<ChannelId>,
    /// The release the client was known to run when the install started.
    previous: Option<ReleaseId>,
    /// Modules of the release's document, when it was requested.
    modules: u16,
    pack_from: Option<ReleaseId>,
    packages: u16,
    copies: bool,
    complete: bool,
    blobs: Vec<BlobTally>,
}

#[derive(Debug, Default)]
struct Client {
    channel: Option<ChannelId>,
    version: Option<ReleaseId>,
    /// The channels it was ever counted active on, for the totals.
    channels_seen: Vec<ChannelId>,
    /// The bucket it was last counted active in, and as what.
    counted: Option<(i64, ChannelId, Option<ReleaseId>)>,
    install: Option<Install>,
}

/// Hashes a client key by taking its low 64 bits: the keys are already keyed
/// blake3 digests under a salt no one else knows, so they are uniform and cannot be
/// chosen to collide, and hashing them again would only cost time.
#[derive(Debug, Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*byte);
        }
    }

    fn write_u128(&mut self, value: u128) {
        // The low half of the key; the narrowing is the point.
        self.0 = value as u64;
    }
}

/// Reads requests one by one against a [`SiteMap`]; [`Tally::finish`] gives the
/// [`Report`]. Its `Debug` shows counts only, never the salt or the clients' keys.
pub struct Tally<'m> {
    map: &'m SiteMap,
    bucket_seconds: i64,
    salt: [u8; 32],
    clients: HashMap<u128, Client, BuildHasherDefault<KeyHasher>>,
    buckets: BTreeMap<i64, Vec<Counters>>,
    lines: u64,
    site_requests: u64,
    first: Option<i64>,
    last: Option<i64>,
}

impl std::fmt::Debug for Tally<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tally")
            .field("bucket_seconds", &self.bucket_seconds)
            .field("clients", &self.clients.len())
            .field("buckets", &self.buckets.len())
            .field("lines", &self.lines)
            .field("site_requests", &self.site_requests)
            .finish_non_exhaustive()
    }
}

impl<'m> Tally<'m> {
    /// A tally of the site `map` in buckets of `bucket_seconds` (at least 1), hashing
    /// clients with `salt`, which the caller draws at random for each run.
    pub fn new(map: &'m SiteMap, bucket_seconds: u64, salt: [u8; 32]) -> Self {
        Self {
            map,
            bucket_seconds: i64::try_from(bucket_seconds.max(1)).unwrap_or(i64::MAX),
            salt,
            clients: HashMap::default(),
            buckets: BTreeMap::new(),
            lines: 0,
            site_requests: 0,
            first: None,
            last: None,
        }
    }

    /// Counts a line that held no request (a comment or header).
    pub fn skip_line(&mut self) {
        self.lines += 1;
    }

    /// Counts one request.
    pub fn add(&mut self, request: &Request<'_>) {
        self.lines += 1;
        if request.method != "GET" {
            return;
        }
        let map = self.map;
        let Some((path, object)) = map.lookup_entry(request.path) else {
            return;
        };
        self.site_requests += 1;
        self.first = Some(
            self.first
                .map_or(request.time, |first| first.min(request.time)),
        );
        self.last = Some(
            self.last
                .map_or(request.time, |last| last.max(request.time)),
        );
        let bucket = request.time.div_euclid(self.bucket_seconds) * self.bucket_seconds;
        let key = self.client_key(request);
        let mut client = self.clients.remove(&key).unwrap_or_default();
        match object {
            SiteObject::Manifest(channel) => {
                self.counters(bucket, *channel).polls += 1;
                client.channel = Some(*channel);
                if client
                    .install
                    .as_ref()
                    .is_some_and(|install| install.complete)
                {
                    self.finish_install(&mut client);
                }
            }
            SiteObject::Blob { size, role } => {
                self.blob(&mut client, bucket, path, *size, role, request);
            }
        }
        self.touch(&mut client, bucket);
        self.clients.insert(key, client);
    }

    fn client_key(&self, request: &Request<'_>) -> u128 {
        let (address, agent) = (request.address.as_bytes(), request.user_agent.as_bytes());
        // One-shot hashing of a stack buffer is several times cheaper than streaming
        // the parts, for the same digest; long user agents stream.
        let mut buffer = [0u8; 256];
        let length = address.len() + 1 + agent.len();
        let digest = if length <= buffer.len() {
            buffer[..address.len()].copy_from_slice(address);
            buffer[address.len() + 1..length].copy_from_slice(agent);
            blake3::keyed_hash(&self.salt, &buffer[..length])
        } else {
            let mut hasher = blake3::Hasher::new_keyed(&self.salt);
            hasher.update(address);
            hasher.update(b"\0");
            hasher.update(agent);
            hasher.finalize()
        };
        let mut first = [0u8; 16];
        first.copy_from_slice(&digest.as_bytes()[..16]);
        u128::from_le_bytes(first)
    }

    fn counters(&mut self, bucket: i64, channel: ChannelId) -> &mut Counters {
        let channels = self.map.channels.len();
        let row = self
            .buckets
            .entry(bucket)
            .or_insert_with(|| vec![Counters::default(); channels]);
        &mut row[usize::from(channel)]
    }

    /// Counts the client active in `bucket` as what it is now, moving it if it was
    /// counted in this bucket as something else. A request from an earlier bucket
    /// than the client's last (logs slightly out of order) changes nothing.
    fn touch(&mut self, client: &mut Client, bucket: i64) {
        let Some(channel) = client.channel else {
            return;
        };
        let now = (bucket, channel, client.version);
        match client.counted {
            Some(counted) if counted == now || counted.0 > bucket => return,
            Some((counted_bucket, old_channel, old_version)) if counted_bucket == bucket => {
                let counters = self.counters(bucket, old_channel);
                counters.active -= 1;
                *counters.versions.entry(old_version).or_default() -= 1;
            }
            _ => {}
        }
        let counters = self.counters(bucket, channel);
        counters.active += 1;
        *counters.versions.entry(client.version).or_default() += 1;
        client.counted = Some(now);
        if !client.channels_seen.contains(&channel) {
            client.channels_seen.push(channel);
        }
    }

    fn blob(
        &mut self,
        client: &mut Client,
        bucket: i64,
        path: &str,
        size: u64,
        role: &Role,
        request: &Request<'_>,
    ) {
        let release = match role {
            Role::Document { release, .. } | Role::Pack { release, .. } => *release,
            Role::Package(releases) | Role::Index(releases) | Role::Copies(releases) => {
                match &client.install {
                    Some(install) if releases.contains(&install.release) => install.release,
                    _ => match releases.last() {
                        Some(newest) => *newest,
                        None => return,
                    },
                }
            }
        };
        if client
            .install
            .as_ref()
            .is_none_or(|install| install.release != release)
        {
            self.finish_install(client);
            let channel = client
                .channel
                .or_else(|| self.map.release(release).channels.first().copied());
            if client.channel.is_none() {
                client.channel = channel;
            }
            client.install = Some(Install {
                release,
                bucket,
                channel,
                previous: client.version,
                modules: 0,
                pack_from: None,
                packages: 0,
                copies: false,
                complete: false,
                blobs: Vec::new(),
            });
        }
        let install = client.install.as_mut().expect("an install was just set");
        let whole = matches!(role, Role::Package(_) | Role::Pack { .. });
        let index = match install
            .blobs
            .iter()
            .position(|blob| blob.path == path.as_ptr() as usize)
        {
            Some(index) => index,
            None => {
                match role {
                    Role::Package(_) => install.packages = install.packages.saturating_add(1),
                    Role::Copies(_) => install.copies = true,
                    Role::Pack { from, .. } => install.pack_from = Some(*from),
                    Role::Document { modules, .. } => install.modules = *modules,
                    Role::Index(_) => {}
                }
                install.blobs.push(BlobTally {
                    path: path.as_ptr() as usize,
                    bytes: 0,
                    requests: 0,
                    partial_bodies: 0,
                    failed: false,
                    whole,
                });
                install.blobs.len() - 1
            }
        };
        let tally = &mut install.blobs[index];
        tally.requests += 1;
        let success = matches!(request.status, 200 | 206) && !request.cut_off;
        if !matches!(request.status, 200 | 206) {
            tally.failed = true;
        }
        let sent = match request.body_bytes {
            Some(bytes) => bytes,
            None if success => size,
            None => 0,
        };
        tally.bytes = tally.bytes.saturating_add(sent);
        if request.cut_off || (request.status == 200 && sent < size) {
            tally.partial_bodies += 1;
        }
        let delivered = match role {
            Role::Copies(_) => success,
            Role::Package(_) | Role::Pack { .. } => tally.bytes >= size && success,
            Role::Document { .. } | Role::Index(_) => false,
        };
        if delivered && !install.complete {
            install.complete = true;
            client.version = Some(release);
        }
    }

    /// Counts the client's install, if any, and forgets it.
    fn finish_install(&mut self, client: &mut Client) {
        let Some(install) = client.install.take() else {
            return;
        };
        let Some(channel) = install.channel else {
            return;
        };
        let counters = self.counters(install.bucket, channel);
        for blob in install.blobs.iter().filter(|blob| blob.whole) {
            counters.downloads += 1;
            counters.partial_bodies += u64::from(blob.partial_bodies);
            counters.retries += u64::from(blob.requests.saturating_sub(1));
            if blob.partial_bodies > 0 || blob.failed || blob.requests > 1 {
                counters.incomplete += 1;
            }
        }
        if !install.complete {
            return;
        }
        let origin = match (install.pack_from, install.previous) {
            (Some(from), _) => Origin::From(from),
            (None, Some(previous)) if previous != install.release => Origin::From(previous),
            _ if !install.copies && install.modules > 0 && install.packages >= install.modules => {
                Origin::Fresh
            }
            _ => Origin::Unknown,
        };
        *counters
            .installs
            .entry((install.release, origin))
            .or_default() += 1;
        if install.pack_from.is_some() {
            counters.pack_downloads += 1;
            if install.packages > 0 || install.copies {
                counters.fallbacks += 1;
            }
        }
    }

    /// Finishes every install in progress and gives the figures.
    pub fn finish(mut self) -> Report {
        let mut clients = std::mem::take(&mut self.clients);
        for client in clients.values_mut() {
            self.finish_install(client);
        }
        let map = self.map;
        let version = |id: Option<ReleaseId>| {
            id.map_or_else(
                || "unknown".to_owned(),
                |id| map.release(id).version.to_string(),
            )
        };
        let figures = |counters: &Counters| Figures {
            active_clients: counters.active,
            polls: counters.polls,
            installs: counters
                .installs
                .iter()
                .map(|((release, origin), count)| InstallCount {
                    version: version(Some(*release)),
                    from: match origin {
                        Origin::Fresh => "fresh".to_owned(),
                        Origin::From(from) => version(Some(*from)),
                        Origin::Unknown => "unknown".to_owned(),
                    },
                    count: *count,
                })
                .collect(),
            downloads: counters.downloads,
            incomplete: counters.incomplete,
            partial_bodies: counters.partial_bodies,
            retries: counters.retries,
            pack_downloads: counters.pack_downloads,
            fallbacks: counters.fallbacks,
            versions: counters
                .versions
                .iter()
                .filter(|(_, clients)| **clients > 0)
                .map(|(release, clients)| VersionCount {
                    version: version(*release),
                    clients: *clients,
                })
                .collect(),
        };
        let channels = map
            .channels
            .iter()
            .enumerate()
            .map(|(index, name)| {
                let channel = ChannelId::try_from(index).unwrap_or(ChannelId::MAX);
                let mut total = Counters::default();
                let mut buckets = Vec::new();
                for (start, row) in &self.buckets {
                    let counters = &row[index];
                    if counters.active == 0 && counters.polls == 0 && counters.installs.is_empty() {
                        continue;
                    }
                    add(&mut total, counters);
                    buckets.push(Bucket {
                        start: jiff::Timestamp::from_second(*start).unwrap_or_default(),
                        figures: figures(counters),
                    });
                }
                total.active = 0;
                total.versions.clear();
                for client in clients.values() {
                    if client.channels_seen.contains(&channel) {
                        total.active += 1;
                    }
                    if client.channel == Some(channel) && client.counted.is_some() {
                        *total.versions.entry(client.version).or_default() += 1;
                    }
                }
                ChannelReport {
                    channel: name.to_string(),
                    totals: figures(&total),
                    buckets,
                }
            })
            .collect();
        let time = |second: Option<i64>| second.and_then(|s| jiff::Timestamp::from_second(s).ok());
        Report {
            schema_version: 1,
            lines: self.lines,
            site_requests: self.site_requests,
            ignored: self.lines - self.site_requests,
            first: time(self.first),
            last: time(self.last),
            bucket_seconds: u64::try_from(self.bucket_seconds).unwrap_or(1),
            channels,
        }
    }
}

/// Adds `counters` into `total` (all but the distinct counts, which do not add).
fn add(total: &mut Counters, counters: &Counters) {
    total.polls += counters.polls;
    for (key, count) in &counters.installs {
        *total.installs.entry(*key).or_default() += count;
    }
    total.downloads += counters.downloads;
    total.incomplete += counters.incomplete;
    total.partial_bodies += counters.partial_bodies;
    total.retries += counters.retries;
    total.pack_downloads += counters.pack_downloads;
    total.fallbacks += counters.fallbacks;
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use wavecast_schema::{Blake3Hash, Manifest, PlatformRelease};

    use super::*;
    use crate::log::LogFormat;
    use crate::read::read_log;

    const PACKAGE: u64 = 100_000;
    const PACK: u64 = 20_000;

    /// Hash of a named blob of the fixture.
    fn hash(name: &str) -> Blake3Hash {
        Blake3Hash::of(name.as_bytes())
    }

    fn document(version: &str, packs_from: &[&str]) -> PlatformRelease {
        let packs: Vec<String> = packs_from
            .iter()
            .map(|from| {
                format!(
                    r#"{{"from":"{from}","size":{PACK},"blake3":"{}"}}"#,
                    hash(&format!("pack {from} {version}"))
                )
            })
            .collect();
        let json = format!(
            r#"{{"format":2,"version":"{version}","platform":"any","modules":{{"app":{{
                "version":"{version}","unpacked_size":200000,
                "package":{{"size":{PACKAGE},"blake3":"{}"}},
                "index":{{"size":300,"json_size":1000,"blake3":"{}"}},
                "copies":{{"size":90000,"blake3":"{}"}}}}}},"packs":[{}]}}"#,
            hash(&format!("package {version}")),
            hash(&format!("index {version}")),
            hash(&format!("copies {version}")),
            packs.join(",")
        );
        PlatformRelease::parse(json.as_bytes()).unwrap()
    }

    /// `stable` with 1.0.0, 1.1.0 (pack from 1.0.0) and 1.2.0 (packs from both), and
    /// `beta` with 1.2.0.
    fn site() -> (SiteMap, HashMap<String, String>) {
        let mut documents = HashMap::new();
        let mut paths = HashMap::new();
        let mut releases = Vec::new();
        for (version, packs) in [
            ("1.2.0", &["1.1.0", "1.0.0"][..]),
            ("1.1.0", &["1.0.0"][..]),
            ("1.0.0", &[][..]),
        ] {
            let document = document(version, packs);
            let bytes = document.to_json();
            let blob = Blake3Hash::of(&bytes);
            paths.insert(format!("doc {version}"), format!("/blobs/{blob}.json"));
            paths.insert(
                format!("package {version}"),
                format!("/blobs/{}.tar.gz", hash(&format!("package {version}"))),
            );
            paths.insert(
                format!("index {version}"),
                format!("/blobs/{}.json.zst", hash(&format!("index {version}"))),
            );
            paths.insert(
                format!("copies {version}"),
                format!("/blobs/{}.copies", hash(&format!("copies {version}"))),
            );
            for from in packs {
                paths.insert(
                    format!("pack {from} {version}"),
                    format!("/blobs/{}.pack", hash(&format!("pack {from} {version}"))),
                );
            }
            documents.insert(blob.clone(), document);
            releases.push(format!(
                r#"{{"version":"{version}","published_at":"2026-11-21T00:00:00Z",
                    "platforms":{{"any":{{"size":{},"blake3":"{blob}"}}}},
                    "rollout":{{"salt":"00112233445566778899aabbccddeeff","basis_points":10000}}}}"#,
                bytes.len()
            ));
        }
        let manifest = |channel: &str, releases: &[String]| {
            let json = format!(
                r#"{{"format":2,"product":"demo","channel":"{channel}","serial":1,
                    "published_at":"2026-11-21T00:00:00Z","expires_at":"2027-11-21T00:00:00Z",
                    "min_client_version":"0.1.0","releases":[{}]}}"#,
                releases.join(",")
            );
            Manifest::parse(json.as_bytes()).unwrap()
        };
        let manifests = [
            manifest("stable", &releases),
            manifest("beta", &releases[..1]),
        ];
        paths.insert("stable".into(), "/channels/stable.json".into());
        paths.insert("beta".into(), "/channels/beta.json".into());
        (SiteMap::build(&manifests, &documents), paths)
    }

    /// A log of `(second, client, path name, status, bytes)` in the combined format,
    /// starting at 2026-12-05T00:00:00Z.
    fn log(paths: &HashMap<String, String>, lines: &[(i64, &str, &str, u16, u64)]) -> String {
        lines
            .iter()
            .map(|(second, client, name, status, bytes)| {
                let (address, agent) = client.split_once('/').unwrap_or((client, "wavecast-update/0.1.0"));
                let path = paths.get(*name).map_or(*name, String::as_str);
                format!(
                    "{address} - - [05/Dec/2026:{:02}:{:02}:{:02} +0000] \"GET {path} HTTP/1.1\" {status} {bytes} \"-\" \"{agent}\"\n",
                    second / 3600,
                    second / 60 % 60,
                    second % 60
                )
            })
            .collect()
    }

    fn report(lines: &[(i64, &str, &str, u16, u64)], bucket: u64) -> Report {
        let (map, paths) = site();
        let text = log(&paths, lines);
        let mut tally = Tally::new(&map, bucket, [7; 32]);
        read_log(&mut text.as_bytes(), "test.log", None, &mut tally).unwrap();
        tally.finish()
    }

    fn stable(report: &Report) -> &Figures {
        &report
            .channels
            .iter()
            .find(|channel| channel.channel == "stable")
            .unwrap()
            .totals
    }

    #[test]
    fn fresh_installs_and_updates_by_pack_are_told_apart() {
        let report = report(
            &[
                (0, "10.0.0.1", "stable", 200, 2000),
                (1, "10.0.0.1", "doc 1.2.0", 200, 900),
                (1, "10.0.0.1", "index 1.2.0", 200, 300),
                (2, "10.0.0.1", "package 1.2.0", 200, PACKAGE),
                (3, "10.0.0.2", "stable", 304, 0),
                (4, "10.0.0.2", "doc 1.2.0", 200, 900),
                (5, "10.0.0.2", "pack 1.0.0 1.2.0", 200, PACK),
                (6, "10.0.0.3", "stable", 304, 0),
                (7, "10.0.0.3", "/index.html", 200, 5000),
            ],
            3600,
        );
        let totals = stable(&report);
        assert_eq!(totals.installs_from("1.2.0", "fresh"), 1);
        assert_eq!(totals.installs_from("1.2.0", "1.0.0"), 1);
        assert_eq!(totals.installs.len(), 2);
        assert_eq!((totals.active_clients, totals.polls), (3, 3));
        assert_eq!(
            (totals.downloads, totals.incomplete, totals.fallbacks),
            (2, 0, 0)
        );
        assert_eq!(totals.pack_downloads, 1);
        assert_eq!(totals.clients_on("1.2.0"), 2);
        assert_eq!(totals.clients_on("unknown"), 1);
        assert_eq!(
            (report.lines, report.site_requests, report.ignored),
            (9, 8, 1)
        );
    }

    #[test]
    fn cut_downloads_retries_and_fallbacks_are_counted() {
        let report = report(
            &[
                // A fresh install cut off, resumed on the next run.
                (0, "10.0.0.1", "stable", 200, 2000),
                (1, "10.0.0.1", "doc 1.2.0", 200, 900),
                (2, "10.0.0.1", "package 1.2.0", 200, 30_000),
                (60, "10.0.0.1", "stable", 304, 0),
                (61, "10.0.0.1", "package 1.2.0", 206, 70_000),
                // An update whose pack is cut off falls back to the package.
                (70, "10.0.0.2", "stable", 304, 0),
                (71, "10.0.0.2", "doc 1.2.0", 200, 900),
                (72, "10.0.0.2", "pack 1.1.0 1.2.0", 200, 5_000),
                (73, "10.0.0.2", "package 1.2.0", 200, PACKAGE),
                // A download that fails outright and never completes.
                (80, "10.0.0.3", "stable", 304, 0),
                (81, "10.0.0.3", "doc 1.2.0", 200, 900),
                (82, "10.0.0.3", "package 1.2.0", 503, 0),
            ],
            3600,
        );
        let totals = stable(&report);
        assert_eq!(totals.installs_from("1.2.0", "fresh"), 1);
        assert_eq!(totals.installs_from("1.2.0", "1.1.0"), 1);
        assert_eq!(
            totals.installs_of("1.2.0"),
            2,
            "the failed download installs nothing"
        );
        assert_eq!(
            totals.downloads, 4,
            "package, pack and package, failed package"
        );
        assert_eq!(totals.incomplete, 3);
        assert_eq!(totals.partial_bodies, 2);
        assert_eq!(totals.retries, 1);
        assert_eq!((totals.pack_downloads, totals.fallbacks), (1, 1));
        assert_eq!(totals.clients_on("1.2.0"), 2);
        assert_eq!(totals.clients_on("unknown"), 1);
    }

    #[test]
    fn an_update_without_a_pack_is_from_the_release_seen_before() {
        let report = report(
            &[
                (0, "10.0.0.1", "stable", 200, 2000),
                (1, "10.0.0.1", "doc 1.0.0", 200, 900),
                (2, "10.0.0.1", "package 1.0.0", 200, PACKAGE),
                (3600, "10.0.0.1", "stable", 200, 2000),
                (3601, "10.0.0.1", "doc 1.1.0", 200, 900),
                (3602, "10.0.0.1", "copies 1.1.0", 206, 4000),
                // Copy ranges with nothing known before: unknown.
                (3700, "10.0.0.2", "stable", 200, 2000),
                (3701, "10.0.0.2", "doc 1.1.0", 200, 900),
                (3702, "10.0.0.2", "copies 1.1.0", 206, 4000),
                (3703, "10.0.0.2", "copies 1.1.0", 206, 4000),
            ],
            3600,
        );
        let channel = report
            .channels
            .iter()
            .find(|c| c.channel == "stable")
            .unwrap();
        assert_eq!(channel.totals.installs_from("1.0.0", "fresh"), 1);
        assert_eq!(channel.totals.installs_from("1.1.0", "1.0.0"), 1);
        assert_eq!(channel.totals.installs_from("1.1.0", "unknown"), 1);
        assert_eq!(
            channel.totals.incomplete, 0,
            "ranges of a copy pack are no retries"
        );
        // Two buckets: the first has one client on 1.0.0, the second two on 1.1.0.
        assert_eq!(channel.buckets.len(), 2);
        let (first, second) = (&channel.buckets[0].figures, &channel.buckets[1].figures);
        assert_eq!((first.active_clients, first.clients_on("1.0.0")), (1, 1));
        assert_eq!((second.active_clients, second.clients_on("1.1.0")), (2, 2));
        assert_eq!(second.clients_on("1.0.0"), 0, "moved within the bucket");
        assert_eq!(first.installs_of("1.0.0"), 1);
        assert_eq!(second.installs_of("1.1.0"), 2);
        assert_eq!(
            channel.buckets[1].start.as_second() - channel.buckets[0].start.as_second(),
            3600
        );
    }

    #[test]
    fn clients_are_address_and_agent_and_channels_apart() {
        let report = report(
            &[
                (0, "10.0.0.1/agent-a", "stable", 200, 2000),
                (1, "10.0.0.1/agent-b", "stable", 200, 2000),
                (2, "10.0.0.1/agent-a", "stable", 304, 0),
                (3, "10.0.0.2", "beta", 200, 2000),
                (4, "10.0.0.2", "doc 1.2.0", 200, 900),
                (5, "10.0.0.2", "package 1.2.0", 200, PACKAGE),
            ],
            3600,
        );
        assert_eq!(stable(&report).active_clients, 2);
        assert_eq!(stable(&report).polls, 3);
        assert!(stable(&report).installs.is_empty());
        let beta = &report
            .channels
            .iter()
            .find(|c| c.channel == "beta")
            .unwrap()
            .totals;
        assert_eq!(
            (beta.active_clients, beta.installs_from("1.2.0", "fresh")),
            (1, 1)
        );
    }

    /// The same requests as S3 server access log and CloudFront lines, detected from
    /// their first line, count the same.
    #[test]
    fn s3_and_cloudfront_logs_count_alike() {
        let (map, paths) = site();
        let owner = "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be";
        let requests = [
            ("stable", 200, 2000, "-"),
            ("doc 1.2.0", 200, 900, "-"),
            ("package 1.2.0", 200, 40_000, "ClientCommError"),
            ("package 1.2.0", 206, 60_000, "-"),
        ];
        let s3: String = requests
            .iter()
            .enumerate()
            .map(|(second, (name, status, bytes, _))| {
                let key = paths[*name].trim_start_matches('/');
                format!(
                    "{owner} updates [05/Dec/2026:00:00:0{second} +0000] 192.0.2.3 - ID{second} REST.GET.OBJECT prefix/{key} \"GET /updates/prefix/{key} HTTP/1.1\" {status} - {bytes} 100000 7 6 \"-\" \"wavecast-update/0.1.0\" - x SigV4\n"
                )
            })
            .collect();
        let mut cloudfront = String::from(
            "#Version: 1.0\n#Fields: date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status cs(Referer) cs(User-Agent) x-edge-detailed-result-type\n",
        );
        for (second, (name, status, bytes, result)) in requests.iter().enumerate() {
            cloudfront.push_str(&format!(
                "2026-12-05\t00:00:0{second}\tFRA56\t{bytes}\t192.0.2.3\tGET\td1.cloudfront.net\t{}\t{status}\t-\twavecast-update/0.1.0\t{result}\n",
                paths[*name]
            ));
        }
        for (text, format) in [(s3, LogFormat::S3), (cloudfront, LogFormat::CloudFront)] {
            let mut tally = Tally::new(&map, 3600, [1; 32]);
            let read = read_log(&mut text.as_bytes(), "log", None, &mut tally).unwrap();
            assert_eq!(read.format, format);
            let report = tally.finish();
            let totals = stable(&report);
            assert_eq!(totals.installs_from("1.2.0", "fresh"), 1, "{format}");
            assert_eq!(totals.active_clients, 1, "{format}");
            assert_eq!(
                (totals.incomplete, totals.partial_bodies, totals.retries),
                (1, 1, 1),
                "{format}"
            );
        }
    }

    /// A module unchanged between releases has one package for both: a fresh install
    /// of the newer one is told by the document it fetched first.
    #[test]
    fn a_shared_package_belongs_to_the_release_being_installed() {
        let module = |name: &str, version: &str| {
            format!(
                r#""{name}":{{"version":"{version}","unpacked_size":10,"dest":"{name}",
                    "package":{{"size":{PACKAGE},"blake3":"{}"}},
                    "index":{{"size":30,"json_size":100,"blake3":"{}"}}}}"#,
                hash(&format!("package {name} {version}")),
                hash(&format!("index {name} {version}"))
            )
        };
        let mut documents = HashMap::new();
        let mut releases = Vec::new();
        let mut doc_paths = Vec::new();
        for (version, app) in [("1.1.0", "1.1.0"), ("1.0.0", "1.0.0")] {
            let json = format!(
                r#"{{"format":2,"version":"{version}","platform":"any","modules":{{{},{}}}}}"#,
                module("app", app),
                module("lib", "1.0.0")
            );
            let document = PlatformRelease::parse(json.as_bytes()).unwrap();
            let bytes = document.to_json();
            let blob = Blake3Hash::of(&bytes);
            doc_paths.push(format!("/blobs/{blob}.json"));
            documents.insert(blob.clone(), document);
            releases.push(format!(
                r#"{{"version":"{version}","published_at":"2026-11-21T00:00:00Z",
                    "platforms":{{"any":{{"size":{},"blake3":"{blob}"}}}},
                    "rollout":{{"salt":"00112233445566778899aabbccddeeff","basis_points":10000}}}}"#,
                bytes.len()
            ));
        }
        let manifest = Manifest::parse(
            format!(
                r#"{{"format":2,"product":"demo","channel":"stable","serial":1,
                    "published_at":"2026-11-21T00:00:00Z","expires_at":"2027-11-21T00:00:00Z",
                    "min_client_version":"0.1.0","releases":[{}]}}"#,
                releases.join(",")
            )
            .as_bytes(),
        )
        .unwrap();
        let map = SiteMap::build(&[manifest], &documents);
        let lib = format!("/blobs/{}.tar.gz", hash("package lib 1.0.0"));
        let app = format!("/blobs/{}.tar.gz", hash("package app 1.1.0"));
        match map.lookup(&lib) {
            Some(SiteObject::Blob {
                role: Role::Package(releases),
                ..
            }) => {
                assert_eq!(releases.len(), 2, "one package, two releases");
            }
            other => panic!("{other:?}"),
        }
        let mut paths = HashMap::new();
        paths.insert("stable".to_owned(), "/channels/stable.json".to_owned());
        paths.insert("doc".to_owned(), doc_paths[0].clone());
        paths.insert("lib".to_owned(), lib);
        paths.insert("app".to_owned(), app);
        let text = log(
            &paths,
            &[
                (0, "10.0.0.1", "stable", 200, 2000),
                (1, "10.0.0.1", "doc", 200, 900),
                (2, "10.0.0.1", "lib", 200, PACKAGE),
                (3, "10.0.0.1", "app", 200, PACKAGE),
            ],
        );
        let mut tally = Tally::new(&map, 3600, [3; 32]);
        read_log(&mut text.as_bytes(), "log", None, &mut tally).unwrap();
        let report = tally.finish();
        let totals = stable(&report);
        assert_eq!(totals.installs_from("1.1.0", "fresh"), 1, "{totals:?}");
        assert_eq!(totals.installs.len(), 1, "{totals:?}");
        assert_eq!(totals.downloads, 2);
    }

    #[test]
    fn debug_shows_no_salt_or_client() {
        let (map, paths) = site();
        let text = log(&paths, &[(0, "10.0.0.1", "stable", 200, 2000)]);
        let mut tally = Tally::new(&map, 3600, [0xab; 32]);
        read_log(&mut text.as_bytes(), "log", None, &mut tally).unwrap();
        let debug = format!("{tally:?}");
        assert!(debug.contains("clients: 1"), "{debug}");
        assert!(
            !debug.contains("171") && !debug.contains("ab, ab"),
            "{debug}"
        );
    }

    #[test]
    fn a_bad_line_is_named_by_its_number() {
        let (map, _) = site();
        let mut tally = Tally::new(&map, 3600, [7; 32]);
        let text = "10.0.0.1 - - [05/Dec/2026:00:00:00 +0000] \"GET / HTTP/1.1\" 200 1 \"-\" \"a\"\n\ngarbage here\n";
        let error = read_log(&mut text.as_bytes(), "access.log", None, &mut tally).unwrap_err();
        assert_eq!(
            error.to_string(),
            "line 3 of `access.log` is not a combined log line: the user (`-`) is missing"
        );
    }
}
