//! CloudFront standard (legacy) access logs: tab-separated, columns named by a
//! `#Fields:` header, times in UTC.
//!
//! ```text
//! (columns separated by tabs)
//! #Version: 1.0
//! #Fields: date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status cs(Referer) cs(User-Agent) …
//! 2026-12-05  01:19:07  FRA56-P1  2311  192.0.2.10  GET  d1.cloudfront.net  /channels/stable.json  200  -  wavecast-update/0.1.0  …
//! ```
//!
//! CloudFront logs `sc-bytes` with the headers included, so a body's size is not
//! known; a response that did not reach the client whole is one with status `000`
//! or the detailed result `ClientCommError`.

use super::combined::parse_status;
use super::request::{LineError, Parsed, Request};
use super::time::parse_date_and_time;

/// The columns of the standard log as AWS documents them, for a log whose
/// `#Fields:` header was lost.
const DEFAULT_FIELDS: &str = "date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id x-host-header cs-protocol cs-bytes time-taken x-forwarded-for ssl-protocol ssl-cipher x-edge-response-result-type cs-protocol-version fle-status fle-encrypted-fields c-port time-to-first-byte x-edge-detailed-result-type sc-content-type sc-content-len sc-range-start sc-range-end";

/// Where each column the reader needs is, from the latest `#Fields:` header.
#[derive(Debug, Clone)]
pub struct Columns {
    date: usize,
    time: usize,
    address: usize,
    method: usize,
    path: usize,
    status: usize,
    user_agent: usize,
    detailed_result: Option<usize>,
    /// The most columns any of the above needs.
    needed: usize,
}

impl Default for Columns {
    fn default() -> Self {
        Self::from_fields(DEFAULT_FIELDS).expect("the documented fields have every column")
    }
}

impl Columns {
    /// The columns named by a `#Fields:` header's list.
    fn from_fields(fields: &str) -> Result<Self, LineError> {
        let names: Vec<&str> = fields.split_whitespace().collect();
        let find = |name: &str| {
            names
                .iter()
                .position(|field| *field == name)
                .ok_or_else(|| LineError(format!("the `#Fields:` header has no `{name}`")))
        };
        let mut columns = Self {
            date: find("date")?,
            time: find("time")?,
            address: find("c-ip")?,
            method: find("cs-method")?,
            path: find("cs-uri-stem")?,
            status: find("sc-status")?,
            user_agent: find("cs(User-Agent)")?,
            detailed_result: find("x-edge-detailed-result-type").ok(),
            needed: 0,
        };
        columns.needed = [
            columns.date,
            columns.time,
            columns.address,
            columns.method,
            columns.path,
            columns.status,
            columns.user_agent,
        ]
        .into_iter()
        .max()
        .unwrap_or(0)
            + 1;
        Ok(columns)
    }

    /// Parses one line: a `#` header (a new `#Fields:` changes the columns) or a
    /// request.
    ///
    /// # Errors
    ///
    /// Too few columns, a malformed time or status, a `#Fields:` header without the
    /// columns needed.
    pub fn parse<'a>(&mut self, line: &'a str) -> Result<Parsed<'a>, LineError> {
        if let Some(header) = line.strip_prefix('#') {
            if let Some(fields) = header.strip_prefix("Fields:") {
                *self = Self::from_fields(fields)?;
            }
            return Ok(Parsed::Skip);
        }
        let mut values: [&str; 40] = [""; 40];
        let mut count = 0;
        for value in line.split('\t') {
            if count == values.len() {
                break;
            }
            values[count] = value;
            count += 1;
        }
        if count < self.needed {
            return Err(LineError(format!(
                "{count} tab-separated columns, fewer than the {} the `#Fields:` header names",
                self.needed
            )));
        }
        let status_text = values[self.status];
        let status = if status_text == "000" {
            0
        } else {
            parse_status(status_text)?
        };
        let detailed = self
            .detailed_result
            .filter(|column| *column < count)
            .map_or("", |column| values[column]);
        Ok(Parsed::Request(Request {
            time: parse_date_and_time(values[self.date], values[self.time])?,
            address: values[self.address],
            user_agent: values[self.user_agent],
            method: values[self.method],
            path: values[self.path],
            status,
            body_bytes: None,
            cut_off: status == 0 || detailed == "ClientCommError",
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(status: &str, detailed: &str) -> String {
        let mut values: Vec<String> = DEFAULT_FIELDS.split(' ').map(|_| "-".to_owned()).collect();
        values[0] = "2026-12-05".into();
        values[1] = "01:19:07".into();
        values[4] = "192.0.2.10".into();
        values[5] = "GET".into();
        values[7] = "/blobs/ab.pack".into();
        values[8] = status.into();
        values[10] = "wavecast-update/0.1.0".into();
        values[28] = detailed.into();
        values.join("\t")
    }

    #[test]
    fn a_line_reads_by_the_default_columns() {
        let mut columns = Columns::default();
        let text = line("200", "Hit");
        let Parsed::Request(request) = columns.parse(&text).unwrap() else {
            panic!("a request")
        };
        assert_eq!(request.address, "192.0.2.10");
        assert_eq!(request.path, "/blobs/ab.pack");
        assert_eq!(request.status, 200);
        assert_eq!(request.body_bytes, None);
        assert!(!request.cut_off);
        assert_eq!(
            request.time,
            "2026-12-05T01:19:07Z"
                .parse::<jiff::Timestamp>()
                .unwrap()
                .as_second()
        );
        for (status, detailed) in [("000", "-"), ("200", "ClientCommError")] {
            let text = line(status, detailed);
            let Parsed::Request(request) = columns.parse(&text).unwrap() else {
                panic!("a request")
            };
            assert!(request.cut_off, "{status} {detailed}");
        }
    }

    #[test]
    fn a_fields_header_reorders_the_columns() {
        let mut columns = Columns::default();
        assert_eq!(columns.parse("#Version: 1.0").unwrap(), Parsed::Skip);
        assert_eq!(
            columns
                .parse("#Fields: cs-uri-stem c-ip date time cs-method sc-status cs(User-Agent)")
                .unwrap(),
            Parsed::Skip
        );
        let Parsed::Request(request) = columns
            .parse("/channels/beta.json\t192.0.2.1\t2026-12-05\t00:00:00\tGET\t304\tagent")
            .unwrap()
        else {
            panic!("a request")
        };
        assert_eq!(
            (request.path, request.status, request.user_agent),
            ("/channels/beta.json", 304, "agent")
        );
        assert_eq!(
            columns.parse("#Fields: date time").unwrap_err().0,
            "the `#Fields:` header has no `c-ip`"
        );
    }

    #[test]
    fn short_lines_are_refused() {
        let mut columns = Columns::default();
        assert!(
            columns
                .parse("2026-12-05\t01:19:07\tFRA")
                .unwrap_err()
                .0
                .contains("3 tab-separated columns")
        );
    }
}
