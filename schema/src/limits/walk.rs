//! The walk over a manifest's JSON that checks it against every [`Limit`] before
//! anything is deserialized from it.

use std::collections::HashSet;
use std::fmt;

use serde::Deserialize as _;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::error::{Error, Result};
use crate::limits::{Limit, MAX_PATTERNS};

/// Checks a manifest's bytes against every [`Limit`], before they are deserialized.
///
/// Malformed JSON passes: the deserializer that runs next reports it better.
///
/// # Errors
///
/// [`Error::LimitExceeded`] for the first limit exceeded, in document order (the
/// total of [`MAX_PATTERNS`] is checked last).
pub fn check_manifest(bytes: &[u8]) -> Result<()> {
    let mut walk = State::default();
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let walked = Node {
        shape: &MANIFEST,
        state: &mut walk,
    }
    .deserialize(&mut deserializer);
    let exceeded = match walked {
        Ok(()) if walk.patterns.len() > MAX_PATTERNS => Some(Exceeded {
            limit: Limit::Patterns,
            found: walk.patterns.len(),
            at: walk.first_pattern_too_many.take().unwrap_or_default(),
        }),
        _ => walk.exceeded.take(),
    };
    exceeded.map_or(Ok(()), |exceeded| {
        Err(Error::LimitExceeded {
            document: "manifest",
            limit: exceeded.limit,
            found: exceeded.found,
            at: exceeded.at,
        })
    })
}

/// What the walk knows about the limits of one part of a manifest: which lists and
/// strings are bounded, and by what. The fields a shape does not name, and values of
/// another JSON type than it expects, are skipped unread: the deserializer refuses
/// them afterwards if they are wrong.
enum Shape {
    /// Nothing inside is bounded by a limit of its own.
    Free,
    /// A string of at most this many bytes.
    Text(Limit),
    /// A regular expression: a string of at most [`MAX_PATTERN_LENGTH`](crate::MAX_PATTERN_LENGTH) bytes, one
    /// of at most [`MAX_PATTERNS`] distinct ones.
    Pattern,
    /// An array of at most this many items, each of the shape given.
    List(Limit, &'static Shape),
    /// An object used as a map: at most `entries` entries, keys of at most `key`
    /// bytes when given, values of shape `value`.
    Map {
        entries: Limit,
        key: Option<Limit>,
        value: &'static Shape,
    },
    /// An object with named fields, each of its shape.
    Object(&'static [(&'static str, Shape)]),
}

/// A manifest ([`crate::Manifest`]).
static MANIFEST: Shape = Shape::Object(&[
    ("product", Shape::Text(Limit::ProductLength)),
    (
        "download_hosts",
        Shape::List(
            Limit::DownloadHosts,
            &Shape::Text(Limit::DownloadHostLength),
        ),
    ),
    (
        "updater",
        Shape::Map {
            entries: Limit::UpdaterBuilds,
            key: None,
            value: &Shape::Free,
        },
    ),
    ("releases", Shape::List(Limit::Releases, &RELEASE)),
]);

/// A [`crate::Release`].
static RELEASE: Shape = Shape::Object(&[
    ("notes", Shape::Text(Limit::NotesLength)),
    (
        "platforms",
        Shape::Map {
            entries: Limit::Platforms,
            key: None,
            value: &Shape::Free,
        },
    ),
    (
        "rollout",
        Shape::Object(&[("ramp", RAMP), ("rules", Shape::List(Limit::Rules, &RULE))]),
    ),
]);

/// A [`crate::Ramp`].
const RAMP: Shape = Shape::List(Limit::RampPoints, &Shape::Free);

/// A [`crate::Rule`].
static RULE: Shape = Shape::Object(&[
    ("name", Shape::Text(Limit::NameLength)),
    (
        "attributes",
        Shape::Map {
            entries: Limit::Conditions,
            key: Some(Limit::NameLength),
            value: &Shape::Object(&[
                ("equals", Shape::Text(Limit::ValueLength)),
                (
                    "one_of",
                    Shape::List(Limit::ListedValues, &Shape::Text(Limit::ValueLength)),
                ),
                ("prefix", Shape::Text(Limit::ValueLength)),
                ("pattern", Shape::Pattern),
            ]),
        },
    ),
    (
        "action",
        Shape::Object(&[("share", Shape::Object(&[("ramp", RAMP)]))]),
    ),
]);

/// The first limit exceeded.
struct Exceeded {
    limit: Limit,
    found: usize,
    at: String,
}

/// Where the walk is, and what it found.
#[derive(Default)]
struct State {
    /// The path from the document's root to the value being walked.
    path: Vec<Segment>,
    /// The distinct patterns seen so far (as long as the manifest's text at most).
    patterns: HashSet<String>,
    /// Where the distinct pattern one past [`MAX_PATTERNS`] is.
    first_pattern_too_many: Option<String>,
    /// Set when a limit stops the walk.
    exceeded: Option<Exceeded>,
}

/// One step of a path: `releases`, `[3]`, `user_id`.
enum Segment {
    Field(&'static str),
    Index(usize),
    Key(String),
}

impl State {
    /// The path, as `releases[3].rollout.rules`.
    fn at(&self) -> String {
        let mut text = String::new();
        for segment in &self.path {
            match segment {
                Segment::Index(index) => text.push_str(&format!("[{index}]")),
                Segment::Field(name) => push_name(&mut text, name),
                Segment::Key(key) => push_name(&mut text, key),
            }
        }
        text
    }

    /// Records that `limit` is exceeded here, with `found`, and returns the error
    /// that stops the walk.
    fn exceed<E: de::Error>(&mut self, limit: Limit, found: usize) -> E {
        self.exceeded = Some(Exceeded {
            limit,
            found,
            at: self.at(),
        });
        E::custom(format_args!("more than {} {limit:?}", limit.max()))
    }

    fn check_text<E: de::Error>(
        &mut self,
        shape: &Shape,
        text: &str,
    ) -> std::result::Result<(), E> {
        let limit = match shape {
            Shape::Text(limit) => *limit,
            Shape::Pattern => Limit::PatternLength,
            _ => return Ok(()),
        };
        if text.len() > limit.max() {
            return Err(self.exceed(limit, text.len()));
        }
        if matches!(shape, Shape::Pattern) && !self.patterns.contains(text) {
            self.patterns.insert(text.to_owned());
            if self.patterns.len() == MAX_PATTERNS + 1 {
                self.first_pattern_too_many = Some(self.at());
            }
        }
        Ok(())
    }
}

/// Appends `.name` (no dot at the start), a long name cut short.
fn push_name(text: &mut String, name: &str) {
    const SHOWN: usize = 64;
    if !text.is_empty() {
        text.push('.');
    }
    match name.char_indices().nth(SHOWN) {
        Some((end, _)) => {
            text.push_str(&name[..end]);
            text.push('…');
        }
        None => text.push_str(name),
    }
}

/// A value of the manifest being walked, with its expected shape.
struct Node<'a> {
    shape: &'static Shape,
    state: &'a mut State,
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> std::result::Result<(), D::Error> {
        match self.shape {
            Shape::Free => IgnoredAny::deserialize(deserializer).map(|_| ()),
            _ => deserializer.deserialize_any(self),
        }
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = ();

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> std::result::Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> std::result::Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> std::result::Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> std::result::Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> std::result::Result<(), E> {
        Ok(())
    }

    fn visit_str<E: de::Error>(self, text: &str) -> std::result::Result<(), E> {
        self.state.check_text(self.shape, text)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> std::result::Result<(), A::Error> {
        let Shape::List(limit, item) = self.shape else {
            while items.next_element::<IgnoredAny>()?.is_some() {}
            return Ok(());
        };
        let mut count = 0;
        loop {
            if count == limit.max() {
                // One more is one too many: count the rest without reading them.
                let mut found = count;
                while items.next_element::<IgnoredAny>()?.is_some() {
                    found += 1;
                }
                if found > count {
                    return Err(self.state.exceed(*limit, found));
                }
                return Ok(());
            }
            self.state.path.push(Segment::Index(count));
            let more = items.next_element_seed(Node {
                shape: item,
                state: self.state,
            })?;
            self.state.path.pop();
            if more.is_none() {
                return Ok(());
            }
            count += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> std::result::Result<(), A::Error> {
        match self.shape {
            Shape::Object(fields) => {
                while let Some(field) = entries.next_key_seed(FieldName(fields))? {
                    let Some((name, shape)) = field else {
                        entries.next_value::<IgnoredAny>()?;
                        continue;
                    };
                    self.state.path.push(Segment::Field(name));
                    entries.next_value_seed(Node {
                        shape,
                        state: self.state,
                    })?;
                    self.state.path.pop();
                }
                Ok(())
            }
            Shape::Map {
                entries: limit,
                key,
                value,
            } => {
                let mut count = 0;
                while let Some(name) = entries.next_key::<String>()? {
                    if count == limit.max() {
                        let mut found = count + 1;
                        entries.next_value::<IgnoredAny>()?;
                        while entries.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {
                            found += 1;
                        }
                        return Err(self.state.exceed(*limit, found));
                    }
                    let length = name.len();
                    self.state.path.push(Segment::Key(name));
                    if let Some(key) = key
                        && length > key.max()
                    {
                        return Err(self.state.exceed(*key, length));
                    }
                    entries.next_value_seed(Node {
                        shape: value,
                        state: self.state,
                    })?;
                    self.state.path.pop();
                    count += 1;
                }
                Ok(())
            }
            _ => {
                while entries.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(())
            }
        }
    }
}

/// Reads an object's key and finds its field among `.0`; `None` for a field the
/// walk skips.
struct FieldName(&'static [(&'static str, Shape)]);

impl<'de> DeserializeSeed<'de> for FieldName {
    type Value = Option<(&'static str, &'static Shape)>;

    fn deserialize<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> std::result::Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for FieldName {
    type Value = Option<(&'static str, &'static Shape)>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a field name")
    }

    fn visit_str<E>(self, key: &str) -> std::result::Result<Self::Value, E> {
        Ok(self
            .0
            .iter()
            .find(|(name, _)| *name == key)
            .map(|(name, shape)| (*name, shape)))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::Manifest;
    use crate::limits::MAX_RULES;
    use crate::manifest::tests::{manifest, release};

    /// A valid manifest with two releases, as JSON to break.
    fn sample() -> Value {
        serde_json::to_value(manifest(vec![release("1.0.0", 100), release("1.1.0", 50)])).unwrap()
    }

    fn check(value: &Value) -> Result<()> {
        check_manifest(value.to_string().as_bytes())
    }

    /// `count` distinct rules, each testing `user_id` against its own pattern.
    fn pattern_rules(count: usize) -> Value {
        pattern_rules_from(0, count)
    }

    /// [`pattern_rules`] numbered from `first`, so their patterns differ from those
    /// of rules numbered below.
    fn pattern_rules_from(first: usize, count: usize) -> Value {
        (first..first + count)
            .map(|n| {
                json!({
                    "name": format!("rule-{n}"),
                    "attributes": {"user_id": {"pattern": format!("{n}[0-9]{{1,7}}")}},
                    "action": "exclude",
                })
            })
            .collect()
    }

    /// `count` values of `make(n)`.
    fn many(count: usize, make: impl Fn(usize) -> Value) -> Value {
        (0..count).map(make).collect()
    }

    /// An object of `count` entries, keys `key(n)`, values `value`.
    fn map(count: usize, key: impl Fn(usize) -> String, value: &Value) -> Value {
        Value::Object((0..count).map(|n| (key(n), value.clone())).collect())
    }

    /// Sets the field at the JSON `pointer`, adding it if missing.
    fn set(value: &mut Value, pointer: &str, new: Value) {
        let (parent, field) = pointer.rsplit_once('/').unwrap();
        let parent = value.pointer_mut(parent).unwrap().as_object_mut().unwrap();
        parent.insert(field.to_owned(), new);
    }

    #[track_caller]
    fn assert_exceeds(value: &Value, limit: Limit, found: usize, at: &str) {
        match check(value) {
            Err(Error::LimitExceeded {
                document: "manifest",
                limit: got,
                found: got_found,
                at: got_at,
            }) => assert_eq!((got, got_found, got_at.as_str()), (limit, found, at)),
            other => panic!("expected {limit:?} exceeded, got {other:?}"),
        }
    }

    /// Every limit, one past it and exactly at it: the walk refuses the first and
    /// lets the second through.
    #[test]
    fn each_limit_is_refused_one_past_it_and_not_at_it() {
        let text = |bytes: usize| Value::String("a".repeat(bytes));
        let host = |n: usize| Value::String(format!("https://cdn{n}.example.com/"));
        let long_host = |bytes: usize| {
            Value::String(format!("https://{}.example.com/", "a".repeat(bytes - 21)))
        };
        let sample = sample();
        let platform = sample["releases"][0]["platforms"]["any"].clone();
        let build = json!({"version": "0.2.0", "unpacked_size": 1});
        let point = |n: usize| json!({"after_seconds": n, "basis_points": 10_000});
        let rule = |attributes: Value| json!([{"name": "r", "attributes": attributes, "action": "exclude"}]);
        // (limit, where, the value at that place for `count` items or bytes)
        type Make = Box<dyn Fn(usize) -> Value>;
        let cases: Vec<(Limit, &str, Make)> = vec![
            (Limit::ProductLength, "/product", Box::new(text)),
            (
                Limit::DownloadHosts,
                "/download_hosts",
                Box::new(move |count| many(count, host)),
            ),
            (
                Limit::DownloadHostLength,
                "/download_hosts",
                Box::new(move |bytes| json!([long_host(bytes)])),
            ),
            (
                Limit::UpdaterBuilds,
                "/updater",
                Box::new(move |count| map(count, |n| format!("triple-{n}"), &build)),
            ),
            (
                Limit::Releases,
                "/releases",
                Box::new({
                    let one = sample["releases"][1].clone();
                    move |count| many(count, |_| one.clone())
                }),
            ),
            (Limit::NotesLength, "/releases/1/notes", Box::new(text)),
            (
                Limit::Platforms,
                "/releases/1/platforms",
                Box::new(move |count| map(count, |n| format!("triple-{n}"), &platform)),
            ),
            (
                Limit::Rules,
                "/releases/1/rollout/rules",
                Box::new(pattern_rules),
            ),
            (
                Limit::RampPoints,
                "/releases/1/rollout/ramp",
                Box::new(move |count| many(count, point)),
            ),
            (
                Limit::NameLength,
                "/releases/1/rollout/rules",
                Box::new(move |bytes| json!([{"name": "a".repeat(bytes), "action": "exclude"}])),
            ),
            (
                Limit::Conditions,
                "/releases/1/rollout/rules",
                Box::new(move |count| {
                    rule(map(count, |n| format!("key-{n}"), &json!({"equals": "x"})))
                }),
            ),
            (
                Limit::NameLength,
                "/releases/1/rollout/rules",
                Box::new(move |bytes| rule(map(1, |_| "k".repeat(bytes), &json!({"equals": "x"})))),
            ),
            (
                Limit::ValueLength,
                "/releases/1/rollout/rules",
                Box::new(move |bytes| rule(json!({"region": {"prefix": "a".repeat(bytes)}}))),
            ),
            (
                Limit::ListedValues,
                "/releases/1/rollout/rules",
                Box::new(move |count| {
                    rule(
                        json!({"tenant": {"one_of": many(count, |n| Value::String(format!("t{n}")))}}),
                    )
                }),
            ),
            (
                Limit::PatternLength,
                "/releases/1/rollout/rules",
                Box::new(move |bytes| rule(json!({"user_id": {"pattern": "a".repeat(bytes)}}))),
            ),
            (
                Limit::RampPoints,
                "/releases/1/rollout/rules",
                Box::new(
                    move |count| json!([{"name": "r", "action": {"share": {"basis_points": 10_000, "ramp": many(count, point)}}}]),
                ),
            ),
        ];
        for (limit, pointer, make) in cases {
            let mut within = sample.clone();
            set(&mut within, pointer, make(limit.max()));
            check(&within).unwrap_or_else(|error| panic!("{limit:?} at its limit: {error}"));
            let mut past = sample.clone();
            set(&mut past, pointer, make(limit.max() + 1));
            let error = check(&past).unwrap_err();
            assert!(
                matches!(error, Error::LimitExceeded { limit: got, found, .. } if got == limit && found == limit.max() + 1),
                "{limit:?}: {error}"
            );
        }
    }

    #[test]
    fn the_error_names_the_limit_the_value_found_and_where() {
        let mut value = sample();
        value["releases"][0]["rollout"]["rules"] = pattern_rules(300);
        assert_exceeds(&value, Limit::Rules, 300, "releases[0].rollout.rules");
        assert_eq!(
            check(&value).unwrap_err().to_string(),
            "manifest lists 300 rollout rules at `releases[0].rollout.rules`, more than the 256 allowed"
        );

        let mut value = sample();
        value["releases"][1]["rollout"]["rules"] = json!([{"name": "r", "attributes": {"user_id": {"pattern": "a".repeat(2000)}}, "action": "exclude"}]);
        assert_eq!(
            check(&value).unwrap_err().to_string(),
            "manifest has a rule pattern of 2000 bytes at `releases[1].rollout.rules[0].attributes.user_id.pattern`, more than the 1024 allowed"
        );

        let mut value = sample();
        let key = "k".repeat(200);
        value["releases"][0]["rollout"]["rules"] = json!([{"name": "r", "attributes": {key.clone(): {"equals": "x"}}, "action": "exclude"}]);
        let shown = format!("releases[0].rollout.rules[0].attributes.{}…", &key[..64]);
        assert_exceeds(&value, Limit::NameLength, 200, &shown);
    }

    /// 512 distinct patterns fit however they are spread; one more anywhere is
    /// refused, with the total and where the first one too many is. A pattern used
    /// again counts once.
    #[test]
    fn distinct_patterns_are_counted_over_the_whole_manifest() {
        let mut value = sample();
        let third = value["releases"][1].clone();
        value["releases"].as_array_mut().unwrap().push(third);
        value["releases"][0]["rollout"]["rules"] = pattern_rules(200);
        value["releases"][1]["rollout"]["rules"] = pattern_rules_from(200, 200);
        value["releases"][2]["rollout"]["rules"] = pattern_rules_from(400, MAX_PATTERNS - 400);
        check(&value).unwrap();
        let mut repeated = value.clone();
        repeated["releases"][1]["rollout"]["rules"] = pattern_rules(MAX_RULES);
        repeated["releases"][2]["rollout"]["rules"] = pattern_rules(MAX_RULES);
        check(&repeated).unwrap();
        value["releases"][2]["rollout"]["rules"] = pattern_rules_from(400, MAX_PATTERNS - 400 + 10);
        assert_exceeds(
            &value,
            Limit::Patterns,
            MAX_PATTERNS + 10,
            "releases[2].rollout.rules[112].attributes.user_id.pattern",
        );
        assert_eq!(
            check(&value).unwrap_err().to_string(),
            "manifest holds 522 distinct rule patterns in all, more than the 512 allowed (the first one too many at `releases[2].rollout.rules[112].attributes.user_id.pattern`)"
        );
    }

    /// The walk stops at the limit: items past it are counted, not read, and nothing
    /// of the manifest is built, so a broken pattern past the limit is never compiled.
    #[test]
    fn nothing_past_a_limit_is_read_or_built() {
        let mut value = sample();
        let mut rules = pattern_rules(MAX_RULES);
        let broken = json!({"name": "x".repeat(5000), "attributes": {"id": {"pattern": "("}}, "action": "exclude"});
        rules
            .as_array_mut()
            .unwrap()
            .extend(vec![broken.clone(); 10]);
        value["releases"][0]["rollout"]["rules"] = rules;
        assert_exceeds(
            &value,
            Limit::Rules,
            MAX_RULES + 10,
            "releases[0].rollout.rules",
        );
        // `parse` stops there too, rather than at the first broken pattern.
        let error = Manifest::parse(value.to_string().as_bytes()).unwrap_err();
        assert!(
            matches!(
                error,
                Error::LimitExceeded {
                    limit: Limit::Rules,
                    ..
                }
            ),
            "{error}"
        );
        // Within the limit, the same broken rule is the deserializer's to refuse.
        value["releases"][0]["rollout"]["rules"] = json!([broken]);
        check(&value).unwrap_err();
        value["releases"][0]["rollout"]["rules"][0]["name"] = "short".into();
        check(&value).unwrap();
        let error = Manifest::parse(value.to_string().as_bytes()).unwrap_err();
        assert!(matches!(error, Error::Json { .. }), "{error}");
    }

    /// A hundred thousand rules or hosts are refused on their count alone.
    #[test]
    fn huge_lists_are_refused_by_count() {
        let mut value = sample();
        value["releases"][0]["rollout"]["rules"] = pattern_rules(100_000);
        assert_exceeds(&value, Limit::Rules, 100_000, "releases[0].rollout.rules");
        let mut value = sample();
        value["download_hosts"] = many(100_000, |n| {
            Value::String(format!("http://127.0.0.{}:{}/", n % 250, 1024 + n / 250))
        });
        assert_exceeds(&value, Limit::DownloadHosts, 100_000, "download_hosts");
    }

    /// The published JSON Schema states the same limits, so other tools refuse
    /// what clients refuse.
    #[test]
    fn the_json_schema_states_the_same_limits() {
        let schema: Value = serde_json::from_str(crate::MANIFEST_JSON_SCHEMA).unwrap();
        for (pointer, limit) in [
            ("/properties/product/maxLength", Limit::ProductLength),
            ("/properties/download_hosts/maxItems", Limit::DownloadHosts),
            (
                "/properties/download_hosts/items/maxLength",
                Limit::DownloadHostLength,
            ),
            ("/properties/updater/maxProperties", Limit::UpdaterBuilds),
            ("/properties/releases/maxItems", Limit::Releases),
            (
                "/$defs/release/properties/notes/maxLength",
                Limit::NotesLength,
            ),
            (
                "/$defs/release/properties/platforms/maxProperties",
                Limit::Platforms,
            ),
            ("/$defs/rollout/properties/rules/maxItems", Limit::Rules),
            ("/$defs/ramp/maxItems", Limit::RampPoints),
            ("/$defs/rule/properties/name/maxLength", Limit::NameLength),
            (
                "/$defs/rule/properties/attributes/maxProperties",
                Limit::Conditions,
            ),
            (
                "/$defs/rule/properties/attributes/propertyNames/maxLength",
                Limit::NameLength,
            ),
            (
                "/$defs/attribute_match/properties/equals/maxLength",
                Limit::ValueLength,
            ),
            (
                "/$defs/attribute_match/properties/one_of/maxItems",
                Limit::ListedValues,
            ),
            (
                "/$defs/attribute_match/properties/one_of/items/maxLength",
                Limit::ValueLength,
            ),
            (
                "/$defs/attribute_match/properties/prefix/maxLength",
                Limit::ValueLength,
            ),
            (
                "/$defs/attribute_match/properties/pattern/maxLength",
                Limit::PatternLength,
            ),
        ] {
            assert_eq!(
                schema.pointer(pointer).and_then(Value::as_u64),
                Some(limit.max() as u64),
                "{pointer}"
            );
        }
    }

    /// Fields the walk does not know, wrong JSON types and malformed JSON are left
    /// to the deserializer.
    #[test]
    fn what_the_walk_does_not_bound_passes() {
        let mut value = sample();
        value["a_field_from_the_future"] = many(100_000, |n| n.into());
        value["releases"][0]["rollout"]["rules"] = "not a list".into();
        value["download_hosts"] = json!({"not": "a list"});
        check(&value).unwrap();
        check_manifest(b"{\"releases\": [").unwrap();
        check_manifest(b"[1, 2, 3]").unwrap();
    }
}
