//! Adoption measured from the host's access logs, kept on the site as `stats.json`
//! (counts only) so that the status page shows it beside the simulated curve, and
//! keeps showing it when a publish rewrites the page. `wavecast stats --html` writes
//! it.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::chart::{LineChart, Series, render};

/// What the logs showed, per channel.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeasuredAdoption {
    /// When the logs were read.
    pub measured_at: Timestamp,
    /// By channel name.
    pub channels: BTreeMap<String, MeasuredChannel>,
}

/// One channel's measured figures.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeasuredChannel {
    /// Distinct clients over the logs read.
    pub active_clients: u64,
    /// Completed installs.
    pub installs: u64,
    /// Downloads of a whole blob, and those that did not complete in one go.
    pub downloads: u64,
    /// See `downloads`.
    pub incomplete: u64,
    /// Installs that left their delta pack for packages.
    pub fallbacks: u64,
    /// Per time bucket, oldest first.
    pub buckets: Vec<MeasuredBucket>,
}

/// The clients seen in one time bucket, by the version they were known to run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeasuredBucket {
    /// When the bucket starts.
    pub start: Timestamp,
    /// Distinct clients seen in it.
    pub active_clients: u64,
    /// Of those, how many ran each version (or `unknown`).
    pub versions: BTreeMap<String, u64>,
}

impl MeasuredAdoption {
    /// Parses `stats.json`; `None` when it is not one.
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }

    /// The document as written to the site.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("measured adoption serializes to JSON")
    }
}

impl MeasuredChannel {
    /// The chart of the share of active clients on each version per bucket, or
    /// `None` with fewer than one bucket.
    pub fn chart(&self, title: &str) -> Option<String> {
        if self.buckets.is_empty() {
            return None;
        }
        let mut versions: Vec<&String> = self
            .buckets
            .iter()
            .flat_map(|bucket| bucket.versions.keys())
            .collect();
        versions.sort();
        versions.dedup();
        let series = versions
            .into_iter()
            .map(|version| Series {
                label: version.clone(),
                values: self
                    .buckets
                    .iter()
                    .map(|bucket| {
                        let clients = bucket.versions.get(version).copied().unwrap_or(0);
                        if bucket.active_clients == 0 {
                            0.0
                        } else {
                            clients as f64 * 100.0 / bucket.active_clients as f64
                        }
                    })
                    .collect(),
            })
            .collect();
        Some(render(&LineChart {
            title: title.to_owned(),
            times: self.buckets.iter().map(|bucket| bucket.start).collect(),
            series,
            marker: None,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_charts_shares() {
        let bucket = |start: &str, on_old: u64, on_new: u64| MeasuredBucket {
            start: start.parse().unwrap(),
            active_clients: on_old + on_new,
            versions: [("1.0.0".to_owned(), on_old), ("1.1.0".to_owned(), on_new)]
                .into_iter()
                .collect(),
        };
        let channel = MeasuredChannel {
            active_clients: 100,
            installs: 60,
            buckets: vec![
                bucket("2026-12-05T00:00:00Z", 90, 10),
                bucket("2026-12-05T01:00:00Z", 40, 60),
            ],
            ..MeasuredChannel::default()
        };
        let adoption = MeasuredAdoption {
            measured_at: "2026-12-05T02:00:00Z".parse().unwrap(),
            channels: [("stable".to_owned(), channel.clone())]
                .into_iter()
                .collect(),
        };
        assert_eq!(MeasuredAdoption::parse(&adoption.to_json()), Some(adoption));
        let svg = channel.chart("stable").unwrap();
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("1.1.0 · 60.0%"), "{svg}");
        assert_eq!(MeasuredChannel::default().chart("x"), None);
        assert_eq!(MeasuredAdoption::parse(b"{not json"), None);
    }
}
