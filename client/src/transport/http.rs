//! HTTP and HTTPS through ureq.

use std::fmt;
use std::io::Read;
use std::time::Duration;

use ureq::Agent;

use super::{Transport, TransportError, TransportErrorKind};

/// How long to wait to establish a connection (DNS, TCP and TLS).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long any single read may wait for data, headers or body. Restarts with each
/// read, so large downloads on slow links are fine while stalled hosts are not.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Fetches `http://` and `https://` URLs (TLS through rustls with the Mozilla root
/// store), with connect and per-read timeouts and no content decoding.
///
/// Any non-2xx status is an error: 404 and 410 are
/// [`NotFound`](TransportErrorKind::NotFound), the rest
/// [`Other`](TransportErrorKind::Other). Redirects are followed.
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
        let config = Agent::config_builder()
            .timeout_resolve(Some(CONNECT_TIMEOUT))
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_per_read(Some(READ_TIMEOUT))
            .timeout_recv_response(Some(READ_TIMEOUT))
            .http_status_as_error(false)
            // The bytes are hashed as sent: never ask for, nor undo, a content encoding.
            .accept_encoding(ureq::config::AutoHeaderValue::None)
            .user_agent(concat!("wavecast-update/", env!("CARGO_PKG_VERSION")))
            .build();
        Self {
            agent: Agent::new_with_config(config),
        }
    }
}

impl Transport for HttpTransport {
    fn fetch(&self, url: &str) -> Result<Box<dyn Read + Send>, TransportError> {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(TransportError::new(
                TransportErrorKind::Unsupported,
                "only http:// and https:// URLs can be fetched over HTTP",
            ));
        }
        let response = self.agent.get(url).call().map_err(|error| {
            let kind = match error {
                ureq::Error::BadUri(_) => TransportErrorKind::Unsupported,
                _ => TransportErrorKind::Other,
            };
            TransportError::with_source(kind, "the request failed", error)
        })?;
        let status = response.status();
        if !status.is_success() {
            let kind = match status.as_u16() {
                404 | 410 => TransportErrorKind::NotFound,
                _ => TransportErrorKind::Other,
            };
            let reason = status.canonical_reason().unwrap_or("");
            return Err(TransportError::new(
                kind,
                format!("the server answered HTTP {} {reason}", status.as_u16())
                    .trim_end()
                    .to_owned(),
            ));
        }
        Ok(Box::new(response.into_body().into_reader()))
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::thread;

    use super::*;

    /// Serves `count` requests on a loopback port: `/ok` with a body, everything else
    /// with 404, `/boom` with 500.
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
                    _ => tiny_http::Response::from_data(b"missing".to_vec()).with_status_code(404),
                };
                let _ = request.respond(response);
            }
        });
        (base, handle)
    }

    #[test]
    fn bodies_stream_past_ten_megabytes_and_statuses_map_to_kinds() {
        let (base, handle) = serve(3);
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
        handle.join().unwrap();
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
