//! The errors of reading a site and its logs.

/// What went wrong while measuring.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A line of a log is not in the log's format.
    #[error("line {line} of `{log}` is not a {format} log line: {problem}")]
    ParseLine {
        /// The log's name (its path, or `-` for standard input).
        log: String,
        /// The line's number, from 1.
        line: u64,
        /// The format it was read as.
        format: crate::LogFormat,
        /// What does not fit.
        problem: String,
    },
    /// A log could not be read.
    #[error("failed to read `{log}`")]
    ReadLog {
        /// The log's name.
        log: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The site holds no channel manifest that parses.
    #[error("the site has no channel manifest (`channels/*.json`)")]
    NoChannels,
    /// The site could not be read.
    #[error(transparent)]
    Site(#[from] wavecast_site::Error),
    /// A `--fail-if` condition does not parse.
    #[error("`{text}` is not a condition: {problem}")]
    InvalidCondition {
        /// The condition as given.
        text: String,
        /// What is wrong.
        problem: String,
    },
}

/// Results of this crate.
pub type Result<T> = std::result::Result<T, Error>;
