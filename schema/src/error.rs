//! Errors raised while parsing and validating wavecast documents.

/// A `Result` whose error is this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// Why a wavecast document or identifier was rejected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bytes are not valid JSON for the expected document.
    #[error("{document} is not valid JSON of the expected shape")]
    Json {
        /// Which document was being read (`manifest`, `envelope`, `file index`).
        document: &'static str,
        /// The deserializer's complaint.
        #[source]
        source: serde_json::Error,
    },

    /// The document declares a format this version of wavecast cannot read.
    #[error(
        "{document} uses format {found}, but this wavecast understands format {supported} at most"
    )]
    UnsupportedFormat {
        /// Which document.
        document: &'static str,
        /// The format the document declares.
        found: u32,
        /// The newest format this build reads.
        supported: u32,
    },

    /// An identifier (channel, module, platform, hash, path…) is malformed.
    #[error("invalid {kind} `{value}`: {reason}")]
    InvalidIdentifier {
        /// What kind of identifier.
        kind: &'static str,
        /// The offending text.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A rollout percentage could not be parsed.
    #[error(
        "invalid rollout `{0}`: expected a percentage from 0 to 100 with at most two decimals, like `30%`, `30` or `0.5%`"
    )]
    InvalidPercentage(String),

    /// A time ramp could not be parsed.
    #[error(
        "invalid ramp `{0}`: expected points like `1%@0h,5%@4h,100%@3d` or a duration like `7d`"
    )]
    InvalidRamp(String),

    /// A duration could not be parsed.
    #[error(
        "invalid duration `{0}`: expected a whole number and a unit, like `90m`, `4h`, `3d` or `2w`"
    )]
    InvalidDuration(String),

    /// A rollout rule could not be parsed.
    #[error("invalid rule {0}")]
    InvalidRule(String),

    /// The document holds more than one of the format's limits allows (see
    /// [`crate::Limit`]); nothing was built from it.
    #[error("{document} {}", crate::limits::exceeded_message(*.limit, *.found, .at))]
    LimitExceeded {
        /// Which document.
        document: &'static str,
        /// The limit.
        limit: crate::Limit,
        /// How many items the list has, or how many bytes the string; for
        /// [`crate::Limit::Patterns`], how many in the whole document.
        found: usize,
        /// Where, as a path such as `releases[0].rollout.rules`.
        at: String,
    },

    /// The document parsed but breaks one of the format's rules.
    #[error("invalid {document}: {problem}")]
    Invalid {
        /// Which document.
        document: &'static str,
        /// The rule that was broken, in words.
        problem: String,
    },
}
