//! HTTP and HTTPS through ureq.

use std::fmt;
use std::io::Read;

use ureq::Agent;

use super::protocol::{
    Conditional, RangeStream, Transport, TransportError, TransportErrorKind, Validators,
};

/// Fetches `http://` and `https://` URLs (TLS through rustls with the Mozilla root
/// store), with connect and per-read timeouts and no content decoding.
///
/// Any non-2xx status is an error: 404 and 410 are
/// [`NotFound`](TransportErrorKind::NotFound), 403 is
/// [`Forbidden`](TransportErrorKind::Forbidden), the rest
/// [`Other`](TransportErrorKind::Other). Redirects are followed. A resumed download
/// ([`Transport::fetch_from`]) sends `Range: bytes=N-`: `206 Partial Content` starting
/// at `N` continues where the caller stopped, `200 OK` sends the whole file again, and
/// `416 Range Not Satisfiable` is retried without a range.
#[derive(Clone)]
pub struct HttpTransport {
    agent: Agent,
}

impl fmt::Debug for HttpTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpTransport").finish_non_exhaustive()
    }
}

impl Default for HttpTransport {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpTransport {
    /// A transport with the default timeouts: 10 s to connect, 30 s per read.
    pub fn new() -> Self {
        Self {
            agent: wavecast_site::http::agent(concat!(
                "wavecast-update/",
                env!("CARGO_PKG_VERSION")
            )),
        }
    }
}

impl HttpTransport {
    /// Sends a GET for `url`, with `Range: bytes=<offset>-` when `offset` is set, and
    /// returns the response of any status.
    fn get(
        &self,
        url: &str,
        range: Option<Span>,
    ) -> Result<ureq::http::Response<ureq::Body>, TransportError> {
        self.get_with(url, range, &Validators::default())
    }

    /// [`get`](Self::get), made conditional on `validators`: `If-None-Match` when
    /// there is an entity tag, else `If-Modified-Since`.
    ///
    /// Never both: dates have one-second resolution, and some servers (moto's S3, for
    /// one) answer 304 on an unchanged date even when the entity tag changed, so a
    /// manifest republished within the same second would be missed.
    fn get_with(
        &self,
        url: &str,
        range: Option<Span>,
        validators: &Validators,
    ) -> Result<ureq::http::Response<ureq::Body>, TransportError> {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(TransportError::new(
                TransportErrorKind::Unsupported,
                "only http:// and https:// URLs can be fetched over HTTP",
            ));
        }
        let mut request = self.agent.get(url);
        // No content encoding is ever asked for (see `new`), so a range counts the
        // bytes as stored.
        match range {
            Some(Span { start, end: None }) => {
                request = request.header("Range", format!("bytes={start}-"));
            }
            Some(Span {
                start,
                end: Some(end),
            }) => {
                request = request.header("Range", format!("bytes={start}-{}", end - 1));
            }
            None => {}
        }
        if let Some(etag) = &validators.etag {
            request = request.header("If-None-Match", etag);
        } else if let Some(date) = &validators.last_modified {
            request = request.header("If-Modified-Since", date);
        }
        request.call().map_err(|error| {
            let kind = match error {
                ureq::Error::BadUri(_) => TransportErrorKind::Unsupported,
                _ => TransportErrorKind::Other,
            };
            let what = match &error {
                ureq::Error::HostNotFound => "the server's name does not resolve",
                ureq::Error::ConnectionFailed => "the server could not be reached",
                ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
                    "the server could not be reached"
                }
                ureq::Error::Timeout(_) => "the server did not answer in time",
                _ => "the request failed",
            };
            TransportError::with_source(kind, what, error)
        })
    }
}

/// The error for a response whose status is not the one expected.
fn status_error(status: ureq::http::StatusCode) -> TransportError {
    let kind = match status.as_u16() {
        404 | 410 => TransportErrorKind::NotFound,
        403 => TransportErrorKind::Forbidden,
        _ => TransportErrorKind::Other,
    };
    let reason = status.canonical_reason().unwrap_or("");
    TransportError::new(
        kind,
        format!("the server answered HTTP {} {reason}", status.as_u16())
            .trim_end()
            .to_owned(),
    )
}

/// The first byte position of a `Content-Range: bytes FIRST-LAST/LENGTH` header.
fn content_range_start(value: &str) -> Option<u64> {
    let range = value.trim().strip_prefix("bytes")?.trim_start();
    let (first, _) = range.split_once('-')?;
    first.trim().parse().ok()
}

/// The bytes asked of a server: from `start`, to `end` (exclusive) or the end of the
/// file.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: u64,
    end: Option<u64>,
}

impl HttpTransport {
    /// A request for `span`: `206` with the range asked for is that range; `416` or
    /// a whole `2xx` answer is the whole file, from byte 0, for the caller to skip
    /// or start over.
    fn ranged(&self, url: &str, span: Span) -> Result<RangeStream, TransportError> {
        let response = self.get(url, Some(span))?;
        let status = response.status();
        match status.as_u16() {
            206 => {
                let start = response
                    .headers()
                    .get("content-range")
                    .and_then(|value| value.to_str().ok())
                    .and_then(content_range_start);
                if start != Some(span.start) {
                    return Err(TransportError::new(
                        TransportErrorKind::Other,
                        format!(
                            "the server answered a request for bytes {}- with another range",
                            span.start
                        ),
                    ));
                }
                Ok(RangeStream {
                    start: span.start,
                    reader: Box::new(response.into_body().into_reader()),
                })
            }
            // The caller holds the whole file already, or more than the server has:
            // start over, and let the size and hash checks decide.
            416 => Ok(RangeStream {
                start: 0,
                reader: self.fetch(url)?,
            }),
            _ if status.is_success() => Ok(RangeStream {
                start: 0,
                reader: Box::new(response.into_body().into_reader()),
            }),
            _ => Err(status_error(status)),
        }
    }
}

impl Transport for HttpTransport {
    fn fetch(&self, url: &str) -> Result<Box<dyn Read + Send>, TransportError> {
        let response = self.get(url, None)?;
        let status = response.status();
        if !status.is_success() {
            return Err(status_error(status));
        }
        Ok(Box::new(response.into_body().into_reader()))
    }

    fn fetch_from(&self, url: &str, offset: u64) -> Result<RangeStream, TransportError> {
        if offset == 0 {
            return Ok(RangeStream {
                start: 0,
                reader: self.fetch(url)?,
            });
        }
        self.ranged(
            url,
            Span {
                start: offset,
                end: None,
            },
        )
    }

    /// Asks for `start..end` only (`Range: bytes=start-(end-1)`).
    fn fetch_span(&self, url: &str, start: u64, end: u64) -> Result<RangeStream, TransportError> {
        if end <= start {
            return Ok(RangeStream {
                start,
                reader: Box::new(std::io::empty()),
            });
        }
        self.ranged(
            url,
            Span {
                start,
                end: Some(end),
            },
        )
    }

    /// Sends the validators; `304 Not Modified` is [`Conditional::NotModified`], any
    /// 2xx the whole file with its `ETag` and `Last-Modified`.
    fn fetch_conditional(
        &self,
        url: &str,
        validators: &Validators,
    ) -> Result<Conditional, TransportError> {
        let response = self.get_with(url, None, validators)?;
        let status = response.status();
        if status.as_u16() == 304 && !validators.is_empty() {
            return Ok(Conditional::NotModified);
        }
        if !status.is_success() {
            return Err(status_error(status));
        }
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
        };
        let validators = Validators {
            etag: header("etag"),
            last_modified: header("last-modified"),
        };
        Ok(Conditional::Modified {
            reader: Box::new(response.into_body().into_reader()),
            validators,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::thread;

    use super::*;

    /// Serves `count` requests on a loopback port: `/ok` with a body, everything else
    /// with 404, `/boom` with 500, `/private` with 403.
    fn serve(count: usize) -> (String, thread::JoinHandle<()>) {
        let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
        let base = format!("http://{}", server.server_addr().to_ip().unwrap());
        let handle = thread::spawn(move || {
            for request in server.incoming_requests().take(count) {
                let response = match request.url() {
                    "/ok" => tiny_http::Response::from_data(vec![7u8; 20_000_000]),
                    "/boom" => {
                        tiny_http::Response::from_data(b"nope".to_vec()).with_status_code(500)
                    }
                    "/private" => {
                        tiny_http::Response::from_data(b"no".to_vec()).with_status_code(403)
                    }
                    _ => tiny_http::Response::from_data(b"missing".to_vec()).with_status_code(404),
                };
                let _ = request.respond(response);
            }
        });
        (base, handle)
    }

    #[test]
    fn bodies_stream_past_ten_megabytes_and_statuses_map_to_kinds() {
        let (base, handle) = serve(4);
        let transport = HttpTransport::new();
        let mut body = Vec::new();
        transport
            .fetch(&format!("{base}/ok"))
            .unwrap()
            .read_to_end(&mut body)
            .unwrap();
        assert_eq!(body.len(), 20_000_000);

        let Err(missing) = transport.fetch(&format!("{base}/missing")) else {
            panic!()
        };
        assert_eq!(missing.kind(), TransportErrorKind::NotFound);
        assert!(missing.to_string().contains("404"), "{missing}");

        let Err(boom) = transport.fetch(&format!("{base}/boom")) else {
            panic!()
        };
        assert_eq!(boom.kind(), TransportErrorKind::Other);
        assert!(boom.to_string().contains("500"), "{boom}");

        let Err(private) = transport.fetch(&format!("{base}/private")) else {
            panic!()
        };
        assert_eq!(private.kind(), TransportErrorKind::Forbidden);
        assert!(private.to_string().contains("403"), "{private}");
        handle.join().unwrap();
    }

    /// Serves `count` requests for a 1000-byte file honouring `Range: bytes=N-`, except
    /// under `/plain/`, which ignores ranges; records each request's `Range` header.
    fn serve_ranges(count: usize) -> (String, thread::JoinHandle<Vec<Option<String>>>, Vec<u8>) {
        let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
        let base = format!("http://{}", server.server_addr().to_ip().unwrap());
        let body: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
        let served = body.clone();
        let handle = thread::spawn(move || {
            let mut ranges = Vec::new();
            for request in server.incoming_requests().take(count) {
                let range = request
                    .headers()
                    .iter()
                    .find(|header| header.field.equiv("Range"))
                    .map(|header| header.value.as_str().to_owned());
                let encoding = request
                    .headers()
                    .iter()
                    .any(|header| header.field.equiv("Accept-Encoding"));
                assert!(!encoding, "no content encoding may be asked for");
                let offset = range
                    .as_deref()
                    .and_then(|range| range.strip_prefix("bytes="))
                    .and_then(|range| range.strip_suffix('-'))
                    .and_then(|offset| offset.parse::<usize>().ok());
                let response = match offset {
                    Some(offset) if request.url().starts_with("/plain/") || offset == 0 => {
                        tiny_http::Response::from_data(served.clone())
                    }
                    Some(offset) if offset >= served.len() => {
                        tiny_http::Response::from_data(Vec::new()).with_status_code(416)
                    }
                    Some(offset) => {
                        let header = tiny_http::Header::from_bytes(
                            "Content-Range",
                            format!("bytes {offset}-{}/{}", served.len() - 1, served.len()),
                        )
                        .unwrap();
                        tiny_http::Response::from_data(served[offset..].to_vec())
                            .with_status_code(206)
                            .with_header(header)
                    }
                    None => tiny_http::Response::from_data(served.clone()),
                };
                ranges.push(range);
                let _ = request.respond(response);
            }
            ranges
        });
        (base, handle, body)
    }

    #[test]
    fn ranged_fetches_resume_restart_or_retry_by_status() {
        let (base, handle, body) = serve_ranges(5);
        let transport = HttpTransport::new();
        let read = |url: String, offset| {
            let stream = transport.fetch_from(&url, offset).unwrap();
            let mut bytes = Vec::new();
            { stream.reader }.read_to_end(&mut bytes).unwrap();
            (stream.start, bytes)
        };
        assert_eq!(read(format!("{base}/f"), 600), (600, body[600..].to_vec()));
        assert_eq!(read(format!("{base}/plain/f"), 600), (0, body.clone()));
        // 416, then the whole file without a range.
        assert_eq!(read(format!("{base}/f"), 1000), (0, body.clone()));
        assert_eq!(read(format!("{base}/f"), 0), (0, body));
        let ranges = handle.join().unwrap();
        assert_eq!(
            ranges,
            [
                Some("bytes=600-".to_owned()),
                Some("bytes=600-".to_owned()),
                Some("bytes=1000-".to_owned()),
                None,
                None
            ]
        );
    }

    #[test]
    fn content_ranges_parse() {
        assert_eq!(content_range_start("bytes 600-999/1000"), Some(600));
        assert_eq!(content_range_start("bytes 7-9/*"), Some(7));
        assert_eq!(content_range_start("items 7-9/10"), None);
    }

    #[test]
    fn a_refused_connection_is_other() {
        // Bind then drop, so the port is (almost certainly) closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let Err(error) = HttpTransport::new().fetch(&format!("http://127.0.0.1:{port}/x")) else {
            panic!("nothing listens there");
        };
        assert_eq!(error.kind(), TransportErrorKind::Other);
    }
}
