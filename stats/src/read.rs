//! Streaming one log through a [`Tally`]: a line at a time into one reused buffer,
//! so a log of any size reads in constant memory.

use std::io::BufRead;

use crate::error::{Error, Result};
use crate::log::{LineParser, LogFormat, Parsed};
use crate::tally::Tally;

/// What reading one log took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogRead {
    /// The format it was read in.
    pub format: LogFormat,
    /// Lines read.
    pub lines: u64,
    /// Bytes read (after decompression).
    pub bytes: u64,
}

/// Reads every line of `reader` (the log called `name` in errors) into `tally`, in
/// `format`, or in the format its first line shows ([`LogFormat::detect`]).
/// Empty lines are skipped; bytes that are not UTF-8 are replaced.
///
/// # Errors
///
/// [`Error::ReadLog`] when reading fails, [`Error::ParseLine`] at the first line
/// that is not in the format, with its number.
pub fn read_log(
    reader: &mut dyn BufRead,
    name: &str,
    format: Option<LogFormat>,
    tally: &mut Tally<'_>,
) -> Result<LogRead> {
    let mut buffer = Vec::with_capacity(1024);
    let mut parser: Option<LineParser> = format.map(LineParser::new);
    let mut read = LogRead {
        format: format.unwrap_or(LogFormat::Combined),
        lines: 0,
        bytes: 0,
    };
    loop {
        buffer.clear();
        let count = reader
            .read_until(b'\n', &mut buffer)
            .map_err(|source| Error::ReadLog {
                log: name.to_owned(),
                source,
            })?;
        if count == 0 {
            return Ok(read);
        }
        read.lines += 1;
        read.bytes += count as u64;
        let mut line = &buffer[..];
        while let [rest @ .., b'\n' | b'\r'] = line {
            line = rest;
        }
        if line.is_empty() {
            tally.skip_line();
            continue;
        }
        let text = String::from_utf8_lossy(line);
        let parser = parser.get_or_insert_with(|| {
            let detected = LineParser::new(LogFormat::detect(&text));
            read.format = detected.format();
            detected
        });
        match parser.parse(&text) {
            Ok(Parsed::Request(request)) => tally.add(&request),
            Ok(Parsed::Skip) => tally.skip_line(),
            Err(problem) => {
                return Err(Error::ParseLine {
                    log: name.to_owned(),
                    line: read.lines,
                    format: parser.format(),
                    problem: problem.0,
                });
            }
        }
    }
}
