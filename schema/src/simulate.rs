//! Rollout simulation: how a synthetic fleet moves through a channel's releases over
//! time, as the manifest stands. Pure: no clock, no randomness, no I/O.
//!
//! # The model
//!
//! A [`Fleet`] of `clients` synthetic installs, each with an install id derived from
//! the fleet's seed and its index (`blake3("sim-{seed}-{index}")` in hex), a poll phase
//! uniform in `[0, poll)` and attributes drawn from an [`AttributeMix`], all derived
//! from the same hash, so a fleet is reproducible to the client. Every client starts
//! on [`Fleet::from`] and polls at `start + phase + k·poll`. At each poll it runs
//! [`decide`] in [`Mode::Scheduled`] with its current version and installs the target
//! at once.
//!
//! # Exactness
//!
//! The simulator calls [`decide`] itself, so it cannot disagree with a real client.
//! To stay fast it skips polls whose decision cannot differ from the last one: after a
//! deferral it jumps to the first poll at or after the decision's `eligible_at` (the
//! instant a newer release first admits the client, exact to the second), and after
//! an "up to date" with nothing newer it stops. Only when the installed release was
//! withdrawn (yanked or capped) without a replacement does it poll every interval.
//! [`client_installs`] gives one client's installs; the unit tests replay `decide` at
//! every poll and compare.

use std::collections::BTreeMap;

use jiff::Timestamp;
use semver::Version;

use crate::decide::{ClientView, Mode, Outcome, decide};
use crate::error::{Error, Result};
use crate::ids::{InstallId, Platform};
use crate::manifest::Manifest;
use crate::rollout::{Attributes, RuleAction};

/// The longest span [`SimulationPlan::for_manifest`] picks by default: 30 days.
pub const DEFAULT_MAX_SECONDS: u64 = 30 * 86_400;

/// Most sample points a simulation may produce, to bound memory.
const MAX_SAMPLES: u64 = 100_000;

/// How attribute values are spread over a fleet: per attribute, values with relative
/// weights. Read from JSON such as `{"region": {"eu": 0.3, "us": 0.7}}`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AttributeMix {
    /// Per attribute, its values and their cumulative weights normalised to end at 1.
    attributes: BTreeMap<String, Vec<(String, f64)>>,
}

impl AttributeMix {
    /// A mix from per-attribute weighted values. Weights are relative (they need not sum
    /// to one) but must be finite, not negative, and not all zero for an attribute.
    pub fn new(weights: BTreeMap<String, Vec<(String, f64)>>) -> Result<Self> {
        let invalid = |problem: String| Error::Invalid {
            document: "attribute mix",
            problem,
        };
        let mut attributes = BTreeMap::new();
        for (key, values) in weights {
            if values.is_empty() {
                return Err(invalid(format!("attribute `{key}` has no values")));
            }
            if let Some((value, weight)) = values
                .iter()
                .find(|(_, weight)| !weight.is_finite() || *weight < 0.0)
            {
                return Err(invalid(format!(
                    "`{key}` = `{value}` has weight {weight}; weights must be finite and not negative"
                )));
            }
            let total: f64 = values.iter().map(|(_, weight)| weight).sum();
            if total <= 0.0 {
                return Err(invalid(format!("the weights of `{key}` sum to zero")));
            }
            let mut running = 0.0;
            let cumulative = values
                .into_iter()
                .map(|(value, weight)| {
                    running += weight / total;
                    (value, running)
                })
                .collect();
            attributes.insert(key, cumulative);
        }
        Ok(Self { attributes })
    }

    /// Parses `{"attribute": {"value": weight, …}, …}`.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        let raw: BTreeMap<String, BTreeMap<String, f64>> =
            serde_json::from_slice(bytes).map_err(|source| Error::Json {
                document: "attribute mix",
                source,
            })?;
        Self::new(
            raw.into_iter()
                .map(|(key, values)| (key, values.into_iter().collect()))
                .collect(),
        )
    }

    /// Whether the mix declares no attributes.
    pub fn is_empty(&self) -> bool {
        self.attributes.is_empty()
    }

    /// The value drawn by `uniform` in `[0, 1)` for each attribute, in key order.
    fn sample(&self, mut uniform: impl FnMut() -> f64) -> Attributes {
        self.attributes
            .iter()
            .map(|(key, cumulative)| {
                let draw = uniform();
                let value = cumulative
                    .iter()
                    .find(|(_, upto)| draw < *upto)
                    .or(cumulative.last())
                    .map(|(value, _)| value.clone())
                    .unwrap_or_default();
                (key.clone(), value)
            })
            .collect()
    }
}

/// The synthetic fleet: who is simulated.
#[derive(Debug, Clone)]
pub struct Fleet {
    /// Number of clients.
    pub clients: u32,
    /// Changes every install id, phase and attribute draw; the same seed gives the
    /// same fleet.
    pub seed: u64,
    /// The platform every client runs on.
    pub platform: Platform,
    /// The version every client runs at the start; `None` for fresh installs.
    pub from: Option<Version>,
    /// How attributes are spread over the fleet.
    pub attribute_mix: AttributeMix,
}

impl Fleet {
    /// `clients` clients on `from` for the `any` platform, seed 0, no attributes.
    pub fn new(clients: u32, from: Option<Version>) -> Self {
        Self {
            clients,
            seed: 0,
            platform: "any".parse().expect("`any` is a valid platform"),
            from,
            attribute_mix: AttributeMix::default(),
        }
    }

    /// The oldest release of `manifest` that is not yanked and serves `platform`: the
    /// usual starting point of a simulation.
    pub fn oldest_live(manifest: &Manifest, platform: &Platform) -> Option<Version> {
        manifest
            .releases
            .iter()
            .filter(|release| !release.rollout.yanked && release.for_platform(platform).is_some())
            .map(|release| &release.version)
            .min()
            .cloned()
    }

    /// The client at `index`, polling every `poll_seconds`.
    pub fn client(&self, index: u32, poll_seconds: u64) -> SimulatedClient {
        let mut hasher = blake3::Hasher::new();
        hasher.update(format!("sim-{}-{index}", self.seed).as_bytes());
        let mut reader = hasher.finalize_xof();
        let mut head = [0u8; 24];
        reader.fill(&mut head);
        let hex: String = head[..16]
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        let install_id = hex.parse().expect("hex digits are a valid install id");
        let phase_seconds = u64_at(&head[16..24]) % poll_seconds.max(1);
        let attributes = self.attribute_mix.sample(|| {
            let mut bytes = [0u8; 8];
            reader.fill(&mut bytes);
            // The top 53 bits as a fraction in [0, 1).
            (u64::from_be_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
        });
        SimulatedClient {
            install_id,
            phase_seconds,
            attributes,
        }
    }
}

fn u64_at(bytes: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[..8]);
    u64::from_be_bytes(word)
}

/// One synthetic client of a [`Fleet`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimulatedClient {
    /// Its install id.
    pub install_id: InstallId,
    /// Seconds after the simulation's start of its first poll, below the poll interval.
    pub phase_seconds: u64,
    /// The attributes it declares.
    pub attributes: Attributes,
}

/// When a simulation runs and how finely it reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimulationPlan {
    /// The first instant simulated (every client's phase counts from it).
    pub start: Timestamp,
    /// The last instant simulated, inclusive.
    pub end: Timestamp,
    /// Seconds between two polls of one client.
    pub poll_seconds: u64,
    /// Seconds between two sample points of the output, and the width of the install
    /// histograms' bins.
    pub step_seconds: u64,
}

impl SimulationPlan {
    /// The default plan for `manifest`: from the newest live release's rollout start
    /// (or publication), until every ramp of every release has finished plus one poll,
    /// at most [`DEFAULT_MAX_SECONDS`]; hourly samples.
    pub fn for_manifest(manifest: &Manifest, poll_seconds: u64) -> Self {
        let newest = manifest
            .releases
            .iter()
            .filter(|release| !release.rollout.yanked)
            .max_by(|a, b| a.version.cmp(&b.version))
            .or_else(|| {
                manifest
                    .releases
                    .iter()
                    .max_by(|a, b| a.version.cmp(&b.version))
            });
        let start = newest.map_or(manifest.published_at, |release| {
            release.rollout.started_at.unwrap_or(release.published_at)
        });
        let mut end = start.as_second();
        for release in &manifest.releases {
            let plan = &release.rollout;
            let Some(started) = plan.started_at else {
                continue;
            };
            let shares = std::iter::once(&plan.share).chain(plan.rules.iter().filter_map(|rule| {
                match &rule.action {
                    RuleAction::Share(share) => Some(share),
                    _ => None,
                }
            }));
            for share in shares {
                if let Some(last) = share.ramp.as_ref().and_then(|ramp| ramp.points().last()) {
                    let finished = i64::try_from(last.after_seconds)
                        .ok()
                        .and_then(|after| started.as_second().checked_add(after))
                        .unwrap_or(i64::MAX);
                    end = end.max(finished);
                }
            }
        }
        let poll = i64::try_from(poll_seconds).unwrap_or(i64::MAX);
        let cap = start.as_second().saturating_add(DEFAULT_MAX_SECONDS as i64);
        let end = end.saturating_add(poll).min(cap);
        Self {
            start,
            end: timestamp(end),
            poll_seconds,
            step_seconds: 3600,
        }
    }

    /// Checks that the intervals are positive, the end is not before the start, and the
    /// output stays below 100,000 samples.
    pub fn validate(&self) -> Result<()> {
        let invalid = |problem: String| Error::Invalid {
            document: "simulation plan",
            problem,
        };
        if self.poll_seconds == 0 || self.step_seconds == 0 {
            return Err(invalid(
                "the poll interval and step must be positive".into(),
            ));
        }
        if i64::try_from(self.poll_seconds).is_err() || i64::try_from(self.step_seconds).is_err() {
            return Err(invalid("the poll interval or step is too long".into()));
        }
        if self.end < self.start {
            return Err(invalid(format!(
                "the end {} is before the start {}",
                self.end, self.start
            )));
        }
        let span = self.end.as_second().abs_diff(self.start.as_second());
        if span / self.step_seconds >= MAX_SAMPLES {
            return Err(invalid(format!(
                "{} samples is too many; use a longer step",
                span / self.step_seconds + 1
            )));
        }
        Ok(())
    }
}

/// One install made by a simulated client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Install {
    /// The poll at which it installed.
    pub at: Timestamp,
    /// The version it left (`None` for a fresh install).
    pub from: Option<Version>,
    /// The version it installed.
    pub to: Version,
}

/// The result of [`simulate`]: the share of the fleet on each version over time, and
/// how fast each version was installed.
#[derive(Debug, Clone, PartialEq)]
pub struct Simulation {
    /// Number of simulated clients.
    pub clients: u32,
    /// The sample instants: `start`, `start + step`, … up to the plan's end.
    pub sample_times: Vec<Timestamp>,
    /// Seconds between samples, and the width of every histogram bin.
    pub step_seconds: u64,
    /// One entry per version a client ran, lowest first (`None`, fresh installs
    /// not yet installed, comes first when the fleet starts without a version).
    pub versions: Vec<VersionTimeline>,
}

/// How one version fared in a [`Simulation`].
#[derive(Debug, Clone, PartialEq)]
pub struct VersionTimeline {
    /// The version, or `None` for clients with nothing installed yet.
    pub version: Option<Version>,
    /// Per sample time, the number of clients running this version.
    pub clients: Vec<u64>,
    /// Per step from the start, the number of installs of this version in
    /// `[start + k·step, start + (k+1)·step)` (the last bin includes the end).
    pub installs_per_step: Vec<u64>,
    /// Total installs of this version.
    pub installed: u64,
    /// The busiest step's installs, per hour.
    pub peak_per_hour: f64,
    /// Installs per hour averaged from the first step with an install to the last one,
    /// both included (0 when nothing was installed).
    pub mean_per_hour: f64,
}

impl VersionTimeline {
    /// The version as text, `none` for clients with nothing installed.
    pub fn label(&self) -> String {
        self.version
            .as_ref()
            .map_or_else(|| "none".to_owned(), Version::to_string)
    }

    /// `peak_per_hour / mean_per_hour`: 1 for a perfectly even rollout, `None` when
    /// nothing was installed.
    pub fn peak_to_mean(&self) -> Option<f64> {
        (self.mean_per_hour > 0.0).then(|| self.peak_per_hour / self.mean_per_hour)
    }
}

impl Simulation {
    /// The share of the fleet on `versions[version]` at `sample_times[sample]`, in
    /// percent.
    pub fn share_percent(&self, version: usize, sample: usize) -> f64 {
        if self.clients == 0 {
            return 0.0;
        }
        self.versions[version].clients[sample] as f64 * 100.0 / f64::from(self.clients)
    }
}

/// The installs one client makes under `plan`, in order. See the module docs for how
/// polls are skipped without changing the outcome.
pub fn client_installs(
    manifest: &Manifest,
    fleet: &Fleet,
    client: &SimulatedClient,
    plan: &SimulationPlan,
) -> Vec<Install> {
    let mut installs = Vec::new();
    replay(manifest, fleet, client, plan, |at, from, to| {
        installs.push(Install {
            at: timestamp(at),
            from: from.cloned(),
            to: to.clone(),
        });
    });
    installs
}

/// Runs the whole fleet through `plan`. Call [`SimulationPlan::validate`] first; an
/// invalid plan gives an empty simulation.
pub fn simulate(manifest: &Manifest, fleet: &Fleet, plan: &SimulationPlan) -> Simulation {
    let mut columns: Vec<Option<&Version>> = manifest
        .releases
        .iter()
        .filter(|release| release.for_platform(&fleet.platform).is_some())
        .map(|release| Some(&release.version))
        .collect();
    if !columns.contains(&fleet.from.as_ref()) {
        columns.push(fleet.from.as_ref());
    }
    columns.sort();
    columns.dedup();
    let column_of: BTreeMap<Option<&Version>, usize> = columns
        .iter()
        .enumerate()
        .map(|(index, version)| (*version, index))
        .collect();
    if plan.validate().is_err() {
        return Simulation {
            clients: fleet.clients,
            sample_times: Vec::new(),
            step_seconds: plan.step_seconds,
            versions: Vec::new(),
        };
    }

    let start = plan.start.as_second();
    let step = plan.step_seconds as i64;
    let span = plan.end.as_second() - start;
    let samples = (span / step) as usize + 1;
    let bins = (span / step + i64::from(span % step != 0)).max(1) as usize;
    // Per column, the change in client count from each sample on (prefix-summed later).
    let mut deltas = vec![vec![0i64; samples + 1]; columns.len()];
    let mut histograms = vec![vec![0u64; bins]; columns.len()];
    let from_column = column_of[&fleet.from.as_ref()];
    deltas[from_column][0] += i64::from(fleet.clients);

    for index in 0..fleet.clients {
        let client = fleet.client(index, plan.poll_seconds);
        replay(manifest, fleet, &client, plan, |at, from, to| {
            let offset = at - start;
            // The first sample at or after the install sees it.
            let sample = usize::try_from((offset + step - 1) / step).unwrap_or(samples);
            let bin = usize::try_from(offset / step).unwrap_or(0).min(bins - 1);
            let (from, to) = (column_of[&from], column_of[&Some(to)]);
            deltas[from][sample] -= 1;
            deltas[to][sample] += 1;
            histograms[to][bin] += 1;
        });
    }

    let hours_per_step = plan.step_seconds as f64 / 3600.0;
    let versions = columns
        .iter()
        .zip(deltas)
        .zip(histograms)
        .map(|((version, delta), histogram)| {
            let mut running = 0i64;
            let clients = delta[..samples]
                .iter()
                .map(|change| {
                    running += change;
                    running.max(0) as u64
                })
                .collect();
            let installed: u64 = histogram.iter().sum();
            let peak = histogram.iter().copied().max().unwrap_or(0);
            let first = histogram.iter().position(|count| *count > 0);
            let last = histogram.iter().rposition(|count| *count > 0);
            let mean_per_hour = match (first, last) {
                (Some(first), Some(last)) => {
                    installed as f64 / ((last - first + 1) as f64 * hours_per_step)
                }
                _ => 0.0,
            };
            VersionTimeline {
                version: version.cloned(),
                clients,
                installs_per_step: histogram,
                installed,
                peak_per_hour: peak as f64 / hours_per_step,
                mean_per_hour,
            }
        })
        .collect();
    Simulation {
        clients: fleet.clients,
        sample_times: (0..samples)
            .map(|sample| timestamp(start + sample as i64 * step))
            .collect(),
        step_seconds: plan.step_seconds,
        versions,
    }
}

/// Polls for one client from `plan.start + phase` to `plan.end`, calling `on_install`
/// with (second, from, to) for every install.
fn replay<'a>(
    manifest: &'a Manifest,
    fleet: &'a Fleet,
    client: &SimulatedClient,
    plan: &SimulationPlan,
    mut on_install: impl FnMut(i64, Option<&'a Version>, &'a Version),
) {
    let Ok(poll) = i64::try_from(plan.poll_seconds.max(1)) else {
        return;
    };
    let first = plan
        .start
        .as_second()
        .saturating_add(i64::try_from(client.phase_seconds).unwrap_or(i64::MAX));
    let end = plan.end.as_second();
    let mut current: Option<&'a Version> = fleet.from.as_ref();
    let mut at = first;
    while at <= end {
        let view = ClientView {
            install_id: &client.install_id,
            platform: &fleet.platform,
            current,
            attributes: &client.attributes,
            pin: None,
        };
        let decision = decide(manifest, &view, timestamp(at), Mode::Scheduled);
        match (decision.outcome, decision.target) {
            (Outcome::Update, Some(target)) => {
                on_install(at, current, &target.version);
                current = Some(&target.version);
                at = at.saturating_add(poll);
            }
            // A withdrawn release with no replacement yet: an older ramp may still
            // admit the client later, and `eligible_at` only looks at newer ones.
            _ if decision.withdrawn.is_some() => at = at.saturating_add(poll),
            (Outcome::Deferred, _) => match decision.eligible_at {
                Some(eligible) if eligible.as_second() > at => {
                    let wait = eligible.as_second() - first;
                    let polls = wait / poll + i64::from(wait % poll != 0);
                    at = first.saturating_add(polls.saturating_mul(poll));
                }
                Some(_) => at = at.saturating_add(poll),
                None => break,
            },
            _ => break,
        }
    }
}

/// A whole-second instant, clamped to jiff's range.
fn timestamp(second: i64) -> Timestamp {
    Timestamp::from_second(second.clamp(Timestamp::MIN.as_second(), Timestamp::MAX.as_second()))
        .unwrap_or(Timestamp::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::tests::{manifest, release};
    use crate::rollout::{BasisPoints, Ramp, Rule, Share};

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    const START: &str = "2026-11-21T00:00:00Z";

    fn ramped(version: &str, ramp: &str) -> crate::Release {
        let mut release = release(version, 0);
        release.rollout.share = Share::ramped(ramp.parse::<Ramp>().unwrap());
        release.rollout.started_at = Some(at(START));
        release
    }

    fn plan(days: i64) -> SimulationPlan {
        SimulationPlan {
            start: at(START),
            end: Timestamp::from_second(at(START).as_second() + days * 86_400).unwrap(),
            poll_seconds: 6 * 3600,
            step_seconds: 3600,
        }
    }

    /// Every install a client makes when it runs `decide` at every single poll.
    fn brute_force(
        manifest: &Manifest,
        fleet: &Fleet,
        client: &SimulatedClient,
        plan: &SimulationPlan,
    ) -> Vec<Install> {
        let mut installs = Vec::new();
        let mut current = fleet.from.clone();
        let mut poll = plan.start.as_second() + client.phase_seconds as i64;
        while poll <= plan.end.as_second() {
            let view = ClientView {
                install_id: &client.install_id,
                platform: &fleet.platform,
                current: current.as_ref(),
                attributes: &client.attributes,
                pin: None,
            };
            let decision = decide(manifest, &view, timestamp(poll), Mode::Scheduled);
            if decision.outcome == Outcome::Update {
                let to = decision.target.unwrap().version.clone();
                installs.push(Install {
                    at: timestamp(poll),
                    from: current.clone(),
                    to: to.clone(),
                });
                current = Some(to);
            }
            poll += plan.poll_seconds as i64;
        }
        installs
    }

    fn mix() -> AttributeMix {
        AttributeMix::from_json(
            br#"{"region": {"eu": 0.3, "us": 0.7}, "tier": {"gold": 1, "free": 3}}"#,
        )
        .unwrap()
    }

    /// A channel exercising ramps, rules by version and attribute, a cap, a yank and a
    /// pause at once.
    fn busy_manifest() -> Manifest {
        let mut capped = ramped("1.1.0", "5%@0h,60%@2d");
        capped.rollout.cap = BasisPoints::new(8000);
        let mut ruled = ramped("1.2.0", "0%@0h,10%@12h,100%@4d");
        ruled.rollout.rules = [
            "eu-first: region = eu -> 1d",
            "gold-later: tier = gold; from < 1.1 -> 20%@2d,100%@3d",
            "none-from-old: from < 1.0.1 -> exclude",
        ]
        .iter()
        .map(|text| text.parse::<Rule>().unwrap())
        .collect();
        let mut yanked = release("1.3.0", 10_000);
        yanked.rollout.yanked = true;
        let mut paused = ramped("1.4.0", "1d");
        paused.rollout.paused_at = Some(at(START));
        manifest(vec![
            release("1.0.0", 10_000),
            release("1.0.1", 10_000),
            capped,
            ruled,
            yanked,
            paused,
        ])
    }

    #[test]
    fn the_simulator_agrees_with_decide_at_every_poll() {
        let manifest = busy_manifest();
        for from in [None, Some("1.0.0"), Some("1.1.0"), Some("1.3.0")] {
            let mut fleet = Fleet::new(400, from.map(|v| v.parse().unwrap()));
            fleet.attribute_mix = mix();
            let plan = plan(6);
            let mut installs = 0;
            for index in 0..fleet.clients {
                let client = fleet.client(index, plan.poll_seconds);
                let fast = client_installs(&manifest, &fleet, &client, &plan);
                assert_eq!(
                    fast,
                    brute_force(&manifest, &fleet, &client, &plan),
                    "client {index} from {from:?}"
                );
                installs += fast.len();
            }
            assert!(installs > 100, "from {from:?}: only {installs} installs");
        }
    }

    #[test]
    fn clients_are_reproducible_and_spread() {
        let mut fleet = Fleet::new(10_000, None);
        fleet.attribute_mix = mix();
        let poll = 6 * 3600;
        assert_eq!(fleet.client(7, poll), fleet.client(7, poll));
        let clients: Vec<_> = (0..fleet.clients).map(|i| fleet.client(i, poll)).collect();
        let eu = clients
            .iter()
            .filter(|c| c.attributes["region"] == "eu")
            .count();
        let gold = clients
            .iter()
            .filter(|c| c.attributes["tier"] == "gold")
            .count();
        assert!((2700..3300).contains(&eu), "eu {eu}");
        assert!((2200..2800).contains(&gold), "gold {gold}");
        let early = clients
            .iter()
            .filter(|c| c.phase_seconds < poll / 2)
            .count();
        assert!(
            (4700..5300).contains(&early),
            "first half of the interval {early}"
        );
        assert!(clients.iter().all(|c| c.phase_seconds < poll));
        fleet.seed = 1;
        assert_ne!(fleet.client(7, poll).install_id, clients[7].install_id);
    }

    #[test]
    fn a_linear_ramp_moves_the_fleet_evenly_and_completely() {
        let manifest = manifest(vec![release("1.0.0", 10_000), ramped("1.1.0", "3d")]);
        let fleet = Fleet::new(20_000, Some("1.0.0".parse().unwrap()));
        let plan = SimulationPlan::for_manifest(&manifest, 6 * 3600);
        assert_eq!(plan.start, at(START));
        assert_eq!(
            plan.end.as_second() - plan.start.as_second(),
            3 * 86_400 + 6 * 3600
        );
        let simulation = simulate(&manifest, &fleet, &plan);
        assert_eq!(simulation.sample_times.len(), 79);
        let labels: Vec<String> = simulation
            .versions
            .iter()
            .map(VersionTimeline::label)
            .collect();
        assert_eq!(labels, ["1.0.0", "1.1.0"]);
        let new = &simulation.versions[1];
        assert!(
            new.clients.windows(2).all(|pair| pair[0] <= pair[1]),
            "monotone"
        );
        assert_eq!(new.clients[0], 0);
        assert_eq!(*new.clients.last().unwrap(), 20_000, "everyone by the end");
        assert_eq!(new.installed, 20_000);
        for sample in 0..simulation.sample_times.len() {
            let total: u64 = simulation.versions.iter().map(|v| v.clients[sample]).sum();
            assert_eq!(total, 20_000);
        }
        let half = simulation.share_percent(1, 36 + 3);
        assert!((45.0..55.0).contains(&half), "half-way {half}");
        let ratio = new.peak_to_mean().unwrap();
        assert!((1.0..1.3).contains(&ratio), "peak/mean {ratio}");
    }

    #[test]
    fn fresh_installs_and_yanks_show_as_their_own_columns() {
        let mut yanked = release("1.1.0", 10_000);
        yanked.rollout.yanked = true;
        let manifest = manifest(vec![release("1.0.0", 10_000), yanked]);
        let fleet = Fleet::new(1000, Some("1.1.0".parse().unwrap()));
        let simulation = simulate(&manifest, &fleet, &plan(1));
        let back = &simulation.versions[0];
        assert_eq!(back.label(), "1.0.0");
        assert_eq!(back.installed, 1000, "everyone leaves a yanked release");
        let fresh = simulate(&manifest, &Fleet::new(1000, None), &plan(1));
        assert_eq!(fresh.versions[0].label(), "none");
        assert_eq!(fresh.versions[0].clients[0], 1000);
        assert_eq!(*fresh.versions[0].clients.last().unwrap(), 0);
    }

    #[test]
    fn default_plans_cover_every_ramp_and_are_capped() {
        let mut late = ramped("1.1.0", "1%@0h,100%@3d");
        late.rollout.rules = vec!["slow: tier = x -> 10d".parse().unwrap()];
        let manifest = manifest(vec![release("1.0.0", 10_000), late]);
        let plan = SimulationPlan::for_manifest(&manifest, 3600);
        assert_eq!(
            plan.end.as_second() - plan.start.as_second(),
            10 * 86_400 + 3600
        );
        let long = manifest_with_ramp("90d");
        let plan = SimulationPlan::for_manifest(&long, 3600);
        assert_eq!(
            plan.end.as_second() - plan.start.as_second(),
            DEFAULT_MAX_SECONDS as i64
        );
        let fixed = crate::manifest::tests::manifest(vec![release("1.0.0", 5000)]);
        let plan = SimulationPlan::for_manifest(&fixed, 3600);
        assert_eq!(plan.start, fixed.releases[0].published_at);
        assert_eq!(plan.end.as_second() - plan.start.as_second(), 3600);
        plan.validate().unwrap();
    }

    fn manifest_with_ramp(ramp: &str) -> Manifest {
        manifest(vec![release("1.0.0", 10_000), ramped("1.1.0", ramp)])
    }

    #[test]
    fn bad_plans_and_mixes_are_refused() {
        let mut bad = plan(1);
        bad.step_seconds = 0;
        assert!(bad.validate().is_err());
        let mut bad = plan(1);
        bad.end = at("2026-01-01T00:00:00Z");
        assert!(bad.validate().is_err());
        let mut bad = plan(1);
        bad.step_seconds = 1;
        bad.end = at("2027-11-21T00:00:00Z");
        assert!(bad.validate().is_err(), "too many samples");
        for json in [
            r#"{"region": {}}"#,
            r#"{"region": {"eu": -1}}"#,
            r#"{"region": {"eu": 0}}"#,
            r#"{"region": ["eu"]}"#,
        ] {
            assert!(AttributeMix::from_json(json.as_bytes()).is_err(), "{json}");
        }
    }
}
