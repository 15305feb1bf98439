//! Rollout rules: ordered conditions on the client's current version and declared
//! attributes, each with its own share, or making the update mandatory, or excluding
//! the client. The first rule that matches applies; a client no rule matches gets the
//! release's default share.
//!
//! The command-line form, used by `wavecast publish --rule` and `wavecast rollout
//! --rule`, is `NAME: CONDITION; CONDITION -> ACTION`:
//!
//! ```text
//! legacy: from < 2.0 -> mandatory
//! two-x: from >= 2.0; from < 3.0 -> 20%
//! eu-canary: region = eu; tenant in acme|globex -> 1%@0h,100%@2d
//! small-ids: user_id ~ [0-9]{1,7} -> 50%
//! lab: server_id ^= lab- -> exclude
//! ```
//!
//! Conditions are `from < V`, `from >= V`, `KEY = VALUE`, `KEY in A|B|C`,
//! `KEY ^= PREFIX` and `KEY ~ REGEX` (matched against the whole value). A condition on
//! a version never matches a fresh install; a condition on an attribute never matches a
//! client that did not declare it.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use semver::Version;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::share::Share;
use crate::error::{Error, Result};
use crate::limits::{MAX_PATTERN_LENGTH, PATTERN_SIZE_LIMIT};

/// The attributes a client declares about itself (region, tenant, server id…).
pub type Attributes = BTreeMap<String, String>;

/// One ordered rule of a rollout plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// A name shown in `check --json` when the rule applies.
    pub name: String,
    /// Which installed versions the rule applies to.
    #[serde(default, skip_serializing_if = "VersionRange::is_any")]
    pub from: VersionRange,
    /// Conditions on declared attributes, all of which must hold.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, AttributeMatch>,
    /// What happens to clients the rule matches.
    pub action: RuleAction,
}

/// A half-open range of installed versions, `at_least <= v < below`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRange {
    /// The lowest version included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_least: Option<Version>,
    /// The first version excluded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub below: Option<Version>,
}

/// A condition on one attribute's value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttributeMatch {
    /// Exactly this value.
    Equals(String),
    /// Any of these values.
    OneOf(BTreeSet<String>),
    /// A value starting with this prefix.
    Prefix(String),
    /// A value the regular expression matches as a whole.
    Pattern(Pattern),
}

/// What a rule does to the clients it matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleAction {
    /// The update is offered to every matching client at once and installs without
    /// asking; it overrides shares, ramps and caps, but not a pause or a yank.
    Mandatory,
    /// Matching clients are not offered the release.
    Exclude,
    /// Matching clients get this share (and ramp) instead of the release's default.
    Share(Share),
}

/// A regular expression, anchored to match whole values, compiled once when the
/// manifest is parsed. Equality compares the source text.
#[derive(Clone)]
pub struct Pattern {
    source: String,
    regex: Arc<regex::Regex>,
}

thread_local! {
    /// The patterns compiled on this thread within a [`SharedPatterns`] scope, by
    /// source.
    static SHARED: RefCell<Option<HashMap<String, Arc<regex::Regex>>>> =
        const { RefCell::new(None) };
}

/// While one is alive, [`Pattern::new`] on its thread compiles each distinct source
/// once and shares the result. [`crate::Manifest::parse`] holds one, so a rule kept
/// on every release costs one compiled pattern, and [`crate::MAX_PATTERNS`] bounds
/// the distinct patterns of a manifest, not its rules.
pub(crate) struct SharedPatterns {
    outer: Option<HashMap<String, Arc<regex::Regex>>>,
}

impl SharedPatterns {
    /// Starts a scope (within another, a fresh one until this one ends).
    pub(crate) fn begin() -> Self {
        Self {
            outer: SHARED.replace(Some(HashMap::new())),
        }
    }
}

impl Drop for SharedPatterns {
    fn drop(&mut self) {
        SHARED.set(self.outer.take());
    }
}

impl Pattern {
    /// Compiles `source`, refusing one longer than [`MAX_PATTERN_LENGTH`] bytes or
    /// that would compile to more than [`PATTERN_SIZE_LIMIT`]. The source must be a
    /// regular expression on its own: `a)|(b` would otherwise slip out of the
    /// anchoring group and match values that merely start with `a`.
    pub fn new(source: &str) -> Result<Self> {
        if source.len() > MAX_PATTERN_LENGTH {
            return Err(Error::InvalidRule(format!(
                "a pattern of {} bytes is longer than the {MAX_PATTERN_LENGTH} allowed; list the values with `KEY in A|B|C` instead",
                source.len()
            )));
        }
        let shared = SHARED.with_borrow(|shared| shared.as_ref()?.get(source).cloned());
        let regex = match shared {
            Some(regex) => regex,
            None => {
                let regex = Arc::new(Self::compile(source)?);
                SHARED.with_borrow_mut(|shared| {
                    if let Some(shared) = shared {
                        shared.insert(source.to_owned(), Arc::clone(&regex));
                    }
                });
                regex
            }
        };
        Ok(Self {
            source: source.to_owned(),
            regex,
        })
    }

    /// Compiles `source`, anchored.
    fn compile(source: &str) -> Result<regex::Regex> {
        let build = |pattern: &str| {
            regex::RegexBuilder::new(pattern)
                .size_limit(PATTERN_SIZE_LIMIT)
                .build()
                .map_err(|error| Error::InvalidRule(format!("bad pattern `{source}`: {error}")))
        };
        build(source)?;
        build(&format!("^(?:{source})$"))
    }

    /// Whether the pattern matches all of `value`.
    pub fn is_match(&self, value: &str) -> bool {
        self.regex.is_match(value)
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for Pattern {}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pattern({:?})", self.source)
    }
}

impl Serialize for Pattern {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.source)
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let source = String::deserialize(deserializer)?;
        Self::new(&source).map_err(serde::de::Error::custom)
    }
}

impl VersionRange {
    /// Whether the range has no bounds (it then matches fresh installs too).
    pub fn is_any(&self) -> bool {
        self.at_least.is_none() && self.below.is_none()
    }

    /// Whether `current` lies in the range. A bounded range never matches a fresh
    /// install.
    pub fn contains(&self, current: Option<&Version>) -> bool {
        if self.is_any() {
            return true;
        }
        let Some(current) = current else { return false };
        self.at_least.as_ref().is_none_or(|low| current >= low)
            && self.below.as_ref().is_none_or(|high| current < high)
    }
}

impl AttributeMatch {
    /// Whether `value` satisfies the condition.
    pub fn is_match(&self, value: &str) -> bool {
        match self {
            Self::Equals(expected) => value == expected,
            Self::OneOf(values) => values.contains(value),
            Self::Prefix(prefix) => value.starts_with(prefix.as_str()),
            Self::Pattern(pattern) => pattern.is_match(value),
        }
    }
}

impl Rule {
    /// Whether the rule applies to a client on `current` declaring `attributes`.
    pub fn matches(&self, current: Option<&Version>, attributes: &Attributes) -> bool {
        self.from.contains(current)
            && self.attributes.iter().all(|(key, condition)| {
                attributes
                    .get(key)
                    .is_some_and(|value| condition.is_match(value))
            })
    }

    /// Whether the rule (through its share) uses a time ramp.
    pub fn has_ramp(&self) -> bool {
        matches!(&self.action, RuleAction::Share(share) if share.ramp.is_some())
    }
}

/// Parses a version leniently: `2` and `2.1` mean `2.0.0` and `2.1.0`.
pub fn parse_version(text: &str) -> Result<Version> {
    let text = text.trim();
    let padded = match text
        .split(['-', '+'])
        .next()
        .unwrap_or("")
        .matches('.')
        .count()
    {
        0 if !text.is_empty() && !text.contains(['-', '+']) => format!("{text}.0.0"),
        1 if !text.contains(['-', '+']) => format!("{text}.0"),
        _ => text.to_owned(),
    };
    padded
        .parse()
        .map_err(|_| Error::InvalidRule(format!("`{text}` is not a version")))
}

impl FromStr for Rule {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        let invalid = |why: &str| Error::InvalidRule(format!("`{text}`: {why}"));
        let (head, action) = text
            .split_once("->")
            .ok_or_else(|| invalid("expected `CONDITIONS -> ACTION`"))?;
        let (name, conditions) = head
            .split_once(':')
            .ok_or_else(|| invalid("expected a name first: `NAME: CONDITIONS -> ACTION`"))?;
        let name = name.trim();
        if name.is_empty() {
            return Err(invalid("the rule needs a name"));
        }
        let mut rule = Rule {
            name: name.to_owned(),
            from: VersionRange::default(),
            attributes: BTreeMap::new(),
            action: parse_action(action.trim()).map_err(|error| invalid(&error.to_string()))?,
        };
        for condition in conditions
            .split(';')
            .map(str::trim)
            .filter(|c| !c.is_empty())
        {
            parse_condition(condition, &mut rule).map_err(|error| invalid(&error.to_string()))?;
        }
        Ok(rule)
    }
}

fn parse_action(text: &str) -> Result<RuleAction> {
    Ok(match text {
        "mandatory" => RuleAction::Mandatory,
        "exclude" => RuleAction::Exclude,
        share => RuleAction::Share(share.parse()?),
    })
}

fn parse_condition(condition: &str, rule: &mut Rule) -> Result<()> {
    let bad = || Error::InvalidRule(format!("cannot read the condition `{condition}`"));
    if let Some(rest) = condition
        .strip_prefix("from")
        .filter(|rest| rest.starts_with([' ', '<', '>']))
    {
        let rest = rest.trim_start();
        if let Some(version) = rest.strip_prefix(">=") {
            rule.from.at_least = Some(parse_version(version)?);
        } else if let Some(version) = rest.strip_prefix('<') {
            rule.from.below = Some(parse_version(version)?);
        } else {
            return Err(bad());
        }
        return Ok(());
    }
    let (key, matcher) = if let Some((key, value)) = condition.split_once("^=") {
        (key, AttributeMatch::Prefix(value.trim().to_owned()))
    } else if let Some((key, pattern)) = condition.split_once('~') {
        (key, AttributeMatch::Pattern(Pattern::new(pattern.trim())?))
    } else if let Some((key, value)) = condition.split_once('=') {
        (key, AttributeMatch::Equals(value.trim().to_owned()))
    } else if let Some((key, values)) = condition.split_once(" in ") {
        let set = values
            .split('|')
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .collect();
        (key, AttributeMatch::OneOf(set))
    } else {
        return Err(bad());
    };
    let key = key.trim();
    if key.is_empty()
        || !key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        return Err(bad());
    }
    rule.attributes.insert(key.to_owned(), matcher);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attributes(pairs: &[(&str, &str)]) -> Attributes {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn rules_parse_from_the_command_line_form() {
        let rule: Rule = "legacy: from < 2.0 -> mandatory".parse().unwrap();
        assert_eq!(rule.action, RuleAction::Mandatory);
        assert_eq!(rule.from.below, Some(Version::new(2, 0, 0)));
        let rule: Rule = "two: from >= 2; from < 3.0.0 -> 20%".parse().unwrap();
        assert!(rule.matches(Some(&Version::new(2, 5, 0)), &Attributes::new()));
        assert!(!rule.matches(Some(&Version::new(3, 0, 0)), &Attributes::new()));
        assert!(!rule.matches(None, &Attributes::new()));
        let rule: Rule = "eu: region = eu; tenant in acme|globex -> 1%@0h,100%@2d"
            .parse()
            .unwrap();
        assert!(rule.has_ramp());
        assert!(rule.matches(None, &attributes(&[("region", "eu"), ("tenant", "acme")])));
        assert!(!rule.matches(
            None,
            &attributes(&[("region", "eu"), ("tenant", "initech")])
        ));
        assert!(!rule.matches(None, &attributes(&[("region", "eu")])));
        for bad in [
            "no arrow",
            "x -> 5%",
            ": a = b -> 5%",
            "x: from > 2 -> 5%",
            "x: a = b -> 500%",
            "x: id ~ ( -> 5%",
            "x: junk -> exclude",
        ] {
            assert!(bad.parse::<Rule>().is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn a_pattern_cannot_escape_its_anchors() {
        assert!(Pattern::new("a)|(b").is_err());
        let whole = Pattern::new("a|b").unwrap();
        assert!(whole.is_match("a") && whole.is_match("b"));
        assert!(!whole.is_match("axyz") && !whole.is_match("xyzb"));
    }

    #[test]
    fn a_pattern_is_bounded_in_length_and_compiled_size() {
        Pattern::new(&"a".repeat(MAX_PATTERN_LENGTH)).unwrap();
        let error = Pattern::new(&"a".repeat(MAX_PATTERN_LENGTH + 1)).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("a pattern of 1025 bytes is longer than the 1024 allowed"),
            "{error}"
        );
        Pattern::new("[0-9a-z]{1,500}").unwrap();
        let error = Pattern::new(r"\w{1,50}").unwrap_err();
        assert!(error.to_string().contains("exceeds size limit"), "{error}");
    }

    #[test]
    fn a_pattern_is_compiled_once_within_a_scope() {
        let compile = || Pattern::new("[0-9]{1,7}").unwrap();
        let shared = |a: &Pattern, b: &Pattern| Arc::ptr_eq(&a.regex, &b.regex);
        assert!(!shared(&compile(), &compile()));
        let scope = SharedPatterns::begin();
        let first = compile();
        assert!(shared(&first, &compile()));
        drop(scope);
        assert!(!shared(&first, &compile()), "the scope ended");

        // `Manifest::parse` holds a scope: a rule on every release shares one regex.
        let mut releases = vec![
            crate::manifest::tests::release("1.0.0", 100),
            crate::manifest::tests::release("1.1.0", 100),
        ];
        for release in &mut releases {
            release.rollout.rules = vec!["small: user_id ~ [0-9]{1,7} -> 50%".parse().unwrap()];
        }
        let bytes = crate::manifest::tests::manifest(releases).to_json();
        let parsed = crate::Manifest::parse(&bytes).unwrap();
        let pattern = |index: usize| match &parsed.releases[index].rollout.rules[0].attributes["user_id"]
        {
            AttributeMatch::Pattern(pattern) => pattern.clone(),
            other => panic!("{other:?}"),
        };
        assert!(shared(&pattern(0), &pattern(1)));
    }

    #[test]
    fn attribute_matches_cover_values_sets_prefixes_and_patterns() {
        let small_ids: Rule = "small: user_id ~ [0-9]{1,7} -> 50%".parse().unwrap();
        let prefix: Rule = "lab: server_id ^= lab- -> exclude".parse().unwrap();
        let check = |rule: &Rule, key, value| rule.matches(None, &attributes(&[(key, value)]));
        assert!(check(&small_ids, "user_id", "1234567"));
        assert!(!check(&small_ids, "user_id", "12345678"));
        assert!(!check(&small_ids, "user_id", "12a"));
        assert!(check(&prefix, "server_id", "lab-7"));
        assert!(!check(&prefix, "server_id", "prod-lab-7"));
    }

    #[test]
    fn rules_round_trip_through_json() {
        let rule: Rule = "small: user_id ~ [0-9]{1,7}; from >= 1.2 -> 1%@0h,100%@2d"
            .parse()
            .unwrap();
        let json = serde_json::to_string(&rule).unwrap();
        assert_eq!(serde_json::from_str::<Rule>(&json).unwrap(), rule);
        let bad = json.replace("[0-9]{1,7}", "(");
        assert!(serde_json::from_str::<Rule>(&bad).is_err());
    }

    #[test]
    fn lenient_versions() {
        assert_eq!(parse_version("2").unwrap(), Version::new(2, 0, 0));
        assert_eq!(parse_version("2.1").unwrap(), Version::new(2, 1, 0));
        assert_eq!(
            parse_version("2.1.3-rc.1").unwrap().to_string(),
            "2.1.3-rc.1"
        );
        assert!(parse_version("two").is_err());
    }
}
