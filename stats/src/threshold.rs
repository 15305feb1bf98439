//! Alert thresholds (`--fail-if 'incomplete>5%'`): a condition on one figure of a
//! channel's totals, as a count or as a share of what it is a part of, so that a
//! pipeline can pause a rollout when it holds.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;
use crate::report::{Figures, Report};

/// A figure a condition reads, and what its percentage is a share of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Incomplete downloads, of all downloads.
    Incomplete,
    /// Partial bodies, of all downloads.
    Partial,
    /// Retries, of all downloads.
    Retries,
    /// Fallbacks, of installs with a delta pack.
    Fallbacks,
    /// Installs, of active clients.
    Installs,
    /// Active clients (a count only).
    Active,
}

impl Metric {
    const NAMES: [(&'static str, Self); 6] = [
        ("incomplete", Self::Incomplete),
        ("partial", Self::Partial),
        ("retries", Self::Retries),
        ("fallbacks", Self::Fallbacks),
        ("installs", Self::Installs),
        ("active", Self::Active),
    ];

    fn name(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(_, metric)| *metric == self)
            .map_or("?", |(name, _)| name)
    }

    /// The figure and, when it has one, what it is a share of (named).
    fn read(self, figures: &Figures) -> (u64, Option<(u64, &'static str)>) {
        let installs = figures.installs.iter().map(|count| count.count).sum();
        match self {
            Self::Incomplete => (figures.incomplete, Some((figures.downloads, "downloads"))),
            Self::Partial => (
                figures.partial_bodies,
                Some((figures.downloads, "downloads")),
            ),
            Self::Retries => (figures.retries, Some((figures.downloads, "downloads"))),
            Self::Fallbacks => (
                figures.fallbacks,
                Some((figures.pack_downloads, "pack downloads")),
            ),
            Self::Installs => (installs, Some((figures.active_clients, "active clients"))),
            Self::Active => (figures.active_clients, None),
        }
    }
}

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Comparison {
    Above,
    AtLeast,
    Below,
    AtMost,
}

impl Comparison {
    fn symbol(self) -> &'static str {
        match self {
            Self::Above => ">",
            Self::AtLeast => ">=",
            Self::Below => "<",
            Self::AtMost => "<=",
        }
    }

    fn holds(self, value: f64, limit: f64) -> bool {
        match self {
            Self::Above => value > limit,
            Self::AtLeast => value >= limit,
            Self::Below => value < limit,
            Self::AtMost => value <= limit,
        }
    }
}

/// `METRIC OP NUMBER[%]`, e.g. `incomplete>5%`, `fallbacks>=10`, `active<100`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Condition {
    metric: Metric,
    comparison: Comparison,
    limit: f64,
    percent: bool,
}

/// A condition that holds on a channel.
#[derive(Debug, Clone, PartialEq)]
pub struct Breach {
    /// The channel.
    pub channel: String,
    /// The condition, as it parses.
    pub condition: String,
    /// The figure, in words: `12 incomplete of 200 downloads (6.0%)`.
    pub observed: String,
}

impl Condition {
    /// Whether the condition holds on `figures`, and the figure in words. A share of
    /// nothing (no downloads) never holds.
    pub fn check(&self, figures: &Figures) -> (bool, String) {
        let (value, whole) = self.metric.read(figures);
        let name = self.metric.name();
        match (self.percent, whole) {
            (true, Some((whole, of))) => {
                let share = if whole == 0 {
                    None
                } else {
                    Some(value as f64 * 100.0 / whole as f64)
                };
                let observed = match share {
                    Some(share) => format!("{value} {name} of {whole} {of} ({share:.1}%)"),
                    None => format!("{value} {name} of 0 {of}"),
                };
                (
                    share.is_some_and(|share| self.comparison.holds(share, self.limit)),
                    observed,
                )
            }
            _ => (
                self.comparison.holds(value as f64, self.limit),
                format!("{value} {name}"),
            ),
        }
    }

    /// Every channel of `report` on which the condition holds (over its totals).
    pub fn breaches(&self, report: &Report) -> Vec<Breach> {
        report
            .channels
            .iter()
            .filter_map(|channel| {
                let (holds, observed) = self.check(&channel.totals);
                holds.then(|| Breach {
                    channel: channel.channel.clone(),
                    condition: self.to_string(),
                    observed,
                })
            })
            .collect()
    }
}

impl FromStr for Condition {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        let invalid = |problem: &str| Error::InvalidCondition {
            text: text.to_owned(),
            problem: problem.to_owned(),
        };
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let at = compact
            .find(['<', '>'])
            .ok_or_else(|| invalid("no comparison: write METRIC>NUMBER, such as incomplete>5%"))?;
        let (name, rest) = compact.split_at(at);
        let metric = Metric::NAMES
            .iter()
            .find(|(known, _)| *known == name)
            .map(|(_, metric)| *metric)
            .ok_or_else(|| {
                invalid(&format!(
                    "`{name}` is not a figure: use {}",
                    Metric::NAMES.map(|(name, _)| name).join(", ")
                ))
            })?;
        let (comparison, number) = if let Some(number) = rest.strip_prefix(">=") {
            (Comparison::AtLeast, number)
        } else if let Some(number) = rest.strip_prefix("<=") {
            (Comparison::AtMost, number)
        } else if let Some(number) = rest.strip_prefix('>') {
            (Comparison::Above, number)
        } else {
            (Comparison::Below, &rest[1..])
        };
        let (number, percent) = match number.strip_suffix('%') {
            Some(number) => (number, true),
            None => (number, false),
        };
        let limit: f64 = number
            .parse()
            .ok()
            .filter(|limit: &f64| limit.is_finite() && *limit >= 0.0)
            .ok_or_else(|| invalid(&format!("`{number}` is not a number")))?;
        if percent && metric == Metric::Active {
            return Err(invalid("`active` is a count, not a share: drop the `%`"));
        }
        Ok(Self {
            metric,
            comparison,
            limit,
            percent,
        })
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{}{}{}",
            self.metric.name(),
            self.comparison.symbol(),
            self.limit,
            if self.percent { "%" } else { "" }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::InstallCount;

    fn figures() -> Figures {
        Figures {
            active_clients: 200,
            downloads: 200,
            incomplete: 12,
            partial_bodies: 12,
            retries: 4,
            pack_downloads: 100,
            fallbacks: 8,
            installs: vec![InstallCount {
                version: "1.2.0".into(),
                from: "fresh".into(),
                count: 150,
            }],
            ..Figures::default()
        }
    }

    #[test]
    fn conditions_hold_on_counts_and_shares() {
        for (text, holds, observed) in [
            (
                "incomplete>5%",
                true,
                "12 incomplete of 200 downloads (6.0%)",
            ),
            (
                "incomplete > 6%",
                false,
                "12 incomplete of 200 downloads (6.0%)",
            ),
            (
                "incomplete>=6%",
                true,
                "12 incomplete of 200 downloads (6.0%)",
            ),
            ("fallbacks>10", false, "8 fallbacks"),
            (
                "fallbacks>5%",
                true,
                "8 fallbacks of 100 pack downloads (8.0%)",
            ),
            ("retries<=4", true, "4 retries"),
            (
                "installs<80%",
                true,
                "150 installs of 200 active clients (75.0%)",
            ),
            ("active<100", false, "200 active"),
            ("partial>0", true, "12 partial"),
        ] {
            let condition: Condition = text.parse().unwrap();
            assert_eq!(
                condition.check(&figures()),
                (holds, observed.to_owned()),
                "{text}"
            );
        }
    }

    #[test]
    fn a_share_of_nothing_never_holds() {
        let condition: Condition = "incomplete>=0%".parse().unwrap();
        assert!(!condition.check(&Figures::default()).0);
    }

    #[test]
    fn bad_conditions_say_why() {
        for (text, problem) in [
            ("incomplete", "no comparison"),
            ("broken>5%", "`broken` is not a figure"),
            ("incomplete>five", "`five` is not a number"),
            ("incomplete>-1", "`-1` is not a number"),
            ("active>5%", "`active` is a count"),
        ] {
            let error = text.parse::<Condition>().unwrap_err().to_string();
            assert!(error.contains(problem), "{text}: {error}");
        }
        assert_eq!(
            "incomplete >= 5 %"
                .parse::<Condition>()
                .unwrap()
                .to_string(),
            "incomplete>=5%"
        );
    }
}
