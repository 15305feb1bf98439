//! Validated identifiers. Each is a string checked once, in `FromStr`, so the rest of
//! the code (and every deserialized manifest) can rely on its shape.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};

/// Declares a string newtype whose constructor runs `$check`, with the traits every
/// identifier needs: parsing, display, ordering, and serde as a plain JSON string.
macro_rules! validated_string {
    ($(#[$meta:meta])* $name:ident, $kind:literal, $check:expr) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = Error;

            fn from_str(value: &str) -> Result<Self> {
                let check: fn(&str) -> std::result::Result<(), &'static str> = $check;
                match check(value) {
                    Ok(()) => Ok(Self(value.to_owned())),
                    Err(reason) => Err(Error::InvalidIdentifier {
                        kind: $kind,
                        value: value.to_owned(),
                        reason,
                    }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

validated_string!(
    /// A release channel such as `stable` or `beta`: lowercase ASCII letters, digits,
    /// `.`, `_` and `-`, starting with a letter or digit, at most 64 characters.
    ChannelName,
    "channel name",
    |s| short_name(s, 64, false)
);

validated_string!(
    /// A module's name within a release, such as `app`, `core` or `assets`; the same
    /// alphabet as [`ChannelName`].
    ModuleName,
    "module name",
    |s| short_name(s, 64, false)
);

validated_string!(
    /// A platform: a Rust target triple such as `x86_64-unknown-linux-gnu`, or `any`
    /// for content that runs everywhere. Letters of either case, digits, `.`, `_`, `-`.
    Platform,
    "platform",
    |s| short_name(s, 128, true)
);

validated_string!(
    /// A client's install id: random, generated locally, never sent anywhere. ASCII
    /// letters, digits, `.`, `_` and `-`, 1 to 128 characters.
    InstallId,
    "install id",
    |s| {
        if s.is_empty() || s.len() > 128 {
            return Err("must be 1 to 128 characters");
        }
        if !s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) {
            return Err("only ASCII letters, digits, `.`, `_` and `-` are allowed");
        }
        Ok(())
    }
);

validated_string!(
    /// A release's rollout salt: 16 to 64 lowercase hex digits, chosen at random when
    /// the release is published so that each release samples a different slice of
    /// the fleet.
    Salt,
    "rollout salt",
    |s| {
        if !(16..=64).contains(&s.len()) {
            return Err("must be 16 to 64 hex digits");
        }
        lowercase_hex(s)
    }
);

validated_string!(
    /// A blake3 digest as 64 lowercase hex digits.
    Blake3Hash,
    "blake3 hash",
    |s| {
        if s.len() != 64 {
            return Err("must be 64 hex digits");
        }
        lowercase_hex(s)
    }
);

validated_string!(
    /// A relative `/`-separated path that cannot escape the directory it is joined to:
    /// no leading `/`, no empty, `.` or `..` segments, no backslashes or control
    /// characters. Used for site paths, module destinations and file-index entries.
    RelativePath,
    "relative path",
    |s| {
        if s.is_empty() {
            return Err("must not be empty");
        }
        if s.len() > 4096 {
            return Err("must be at most 4096 bytes");
        }
        if s.chars().any(|c| c == '\\' || c.is_control()) {
            return Err("must not contain backslashes or control characters");
        }
        if s.split('/').any(|segment| matches!(segment, "" | "." | "..")) {
            return Err("must be relative, with no empty, `.` or `..` segments");
        }
        Ok(())
    }
);

validated_string!(
    /// Where a symbolic link of a release tree points, exactly as the link holds it:
    /// relative (`libfoo.so.1`, `../share/x`) or absolute (`/usr/share/x`). Clients
    /// create it as is and never follow it while writing, so it may point anywhere,
    /// even nowhere; it only has to be a path a link can hold: 1 to 4095 bytes, no
    /// backslashes or control characters (NUL among them).
    LinkTarget,
    "symbolic link target",
    |s| {
        if s.is_empty() {
            return Err("must not be empty");
        }
        if s.len() > 4095 {
            return Err("must be at most 4095 bytes");
        }
        if s.chars().any(|c| c == '\\' || c.is_control()) {
            return Err("must not contain backslashes or control characters");
        }
        Ok(())
    }
);

impl LinkTarget {
    /// Whether a link at `link` (a path inside a tree) pointing here names a path
    /// inside that tree, judged on the text alone: an absolute target, or one whose
    /// `..` segments climb above the tree's root, does not. (A target through
    /// another link of the tree can still lead out; clients never follow links while
    /// installing, so this only informs the publisher.)
    pub fn stays_within(&self, link: &RelativePath) -> bool {
        if self.0.starts_with('/') {
            return false;
        }
        let mut depth = link.segments().count() - 1;
        for segment in self.0.split('/') {
            match segment {
                "" | "." => {}
                ".." => match depth.checked_sub(1) {
                    Some(up) => depth = up,
                    None => return false,
                },
                _ => depth += 1,
            }
        }
        true
    }
}

impl Blake3Hash {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self::from(blake3::hash(bytes))
    }
}

impl From<blake3::Hash> for Blake3Hash {
    fn from(hash: blake3::Hash) -> Self {
        Self(hash.to_hex().to_string())
    }
}

impl RelativePath {
    /// The path's segments, in order.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }

    /// `self` followed by `other`: `share/data` joined with `table.bin` is
    /// `share/data/table.bin`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidIdentifier`] when the joined path is longer than a relative
    /// path may be.
    pub fn join(&self, other: &RelativePath) -> Result<RelativePath> {
        format!("{self}/{other}").parse()
    }

    /// The paths of the directories holding `self`, outermost first: `a` and `a/b`
    /// for `a/b/c`.
    pub fn ancestors(&self) -> impl Iterator<Item = &str> {
        self.0.match_indices('/').map(|(index, _)| &self.0[..index])
    }

    /// Whether `self` is `other` or lies inside it (`a/b` is within `a`, `ab` is not).
    pub fn is_within(&self, other: &RelativePath) -> bool {
        self.0 == other.0
            || (self.0.starts_with(&other.0) && self.0.as_bytes()[other.0.len()] == b'/')
    }
}

fn short_name(s: &str, max: usize, upper_allowed: bool) -> std::result::Result<(), &'static str> {
    if s.is_empty() || s.len() > max {
        return Err("must be 1 to 64 characters (128 for platforms)");
    }
    let first = s.as_bytes()[0];
    if !first.is_ascii_alphanumeric() {
        return Err("must start with a letter or digit");
    }
    let allowed = |b: u8| {
        b.is_ascii_lowercase()
            || b.is_ascii_digit()
            || b"._-".contains(&b)
            || (upper_allowed && b.is_ascii_uppercase())
    };
    if !s.bytes().all(allowed) {
        return Err(if upper_allowed {
            "only ASCII letters, digits, `.`, `_` and `-` are allowed"
        } else {
            "only lowercase ASCII letters, digits, `.`, `_` and `-` are allowed"
        });
    }
    Ok(())
}

fn lowercase_hex(s: &str) -> std::result::Result<(), &'static str> {
    if s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(())
    } else {
        Err("only lowercase hex digits are allowed")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_cannot_escape() {
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../b",
            "a//b",
            "a/./b",
            "a/",
            "a\\b",
            "a\nb",
        ] {
            assert!(bad.parse::<RelativePath>().is_err(), "{bad:?} was accepted");
        }
        for good in ["a", "a/b", "bin/app-1.2.so", ".hidden/x", "a..b"] {
            assert!(
                good.parse::<RelativePath>().is_ok(),
                "{good:?} was rejected"
            );
        }
    }

    #[test]
    fn is_within_respects_segment_boundaries() {
        let path = |s: &str| s.parse::<RelativePath>().unwrap();
        assert!(path("a/b").is_within(&path("a")));
        assert!(path("a").is_within(&path("a")));
        assert!(!path("ab").is_within(&path("a")));
        assert!(!path("a").is_within(&path("a/b")));
    }

    #[test]
    fn joins_and_ancestors_follow_segments() {
        let path = |s: &str| s.parse::<RelativePath>().unwrap();
        assert_eq!(
            path("share/data").join(&path("t.bin")).unwrap(),
            path("share/data/t.bin")
        );
        let deep = path("a/b/c");
        let ancestors: Vec<&str> = deep.ancestors().collect();
        assert_eq!(ancestors, ["a", "a/b"]);
        assert_eq!(path("a").ancestors().count(), 0);
        let long = path(&"x".repeat(3000));
        assert!(long.join(&long).is_err());
    }

    #[test]
    fn link_targets_hold_any_path_a_link_can() {
        for good in ["libfoo.so.1", "../../share/x", "/usr/share/doc", "a b", "."] {
            assert!(good.parse::<LinkTarget>().is_ok(), "{good:?} was rejected");
        }
        for bad in ["", "a\0b", "a\\b", &"x".repeat(4096)] {
            assert!(bad.parse::<LinkTarget>().is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn a_link_target_stays_within_its_tree_unless_it_climbs_out() {
        let stays = |link: &str, target: &str| {
            target
                .parse::<LinkTarget>()
                .unwrap()
                .stays_within(&link.parse().unwrap())
        };
        assert!(stays("lib/libfoo.so", "libfoo.so.1"));
        assert!(stays("usr/share/doc/x", "../../lib/y"));
        assert!(stays("a/b/c", "../../x/../y/./z"));
        assert!(stays("a/b", ".."));
        assert!(!stays("a/b", "../.."));
        assert!(!stays("top", "../outside"));
        assert!(!stays("usr/bin/x", "/usr/bin/y"));
        assert!(!stays("a/b/c", "../x/../../../y"));
    }

    #[test]
    fn names_are_checked() {
        assert!("stable".parse::<ChannelName>().is_ok());
        assert!("Stable".parse::<ChannelName>().is_err());
        assert!("-beta".parse::<ChannelName>().is_err());
        assert!("x86_64-unknown-linux-gnu".parse::<Platform>().is_ok());
        assert!("x86_64-apple-darwin".parse::<Platform>().is_ok());
        assert!("a b".parse::<Platform>().is_err());
        assert!("ABCDEF0123456789abcdef0123456789".parse::<Salt>().is_err());
        assert!("0123456789abcdef".parse::<Salt>().is_ok());
        assert!("a".repeat(64).parse::<Blake3Hash>().is_ok());
        assert!("a".repeat(63).parse::<Blake3Hash>().is_err());
    }

    #[test]
    fn identifiers_round_trip_through_json() {
        let channel: ChannelName = serde_json::from_str("\"beta\"").unwrap();
        assert_eq!(serde_json::to_string(&channel).unwrap(), "\"beta\"");
        let error = serde_json::from_str::<ChannelName>("\"Be ta\"").unwrap_err();
        assert!(error.to_string().contains("invalid channel name"));
    }
}
