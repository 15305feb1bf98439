//! Unit tests of the S3 storage: parsing, headers, and retries against an in-process
//! fault server.

use super::*;

#[test]
fn http_dates_parse() {
    assert_eq!(
        http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
        Some("1994-11-06T08:49:37Z".parse().unwrap())
    );
    assert_eq!(
        http_date("Wed, 21 Oct 2026 07:28:00 GMT "),
        Some("2026-10-21T07:28:00Z".parse().unwrap())
    );
    assert_eq!(http_date("yesterday"), None);
}

#[test]
fn locations_parse() {
    let location: S3Location = "s3://my-bucket/sites/app/".parse().unwrap();
    assert_eq!(location.bucket, "my-bucket");
    assert_eq!(location.prefix, "sites/app");
    assert_eq!("s3://b1".parse::<S3Location>().unwrap().prefix, "");
    for bad in ["my-bucket/x", "s3://", "s3://Upper/x", "https://b/x"] {
        assert!(bad.parse::<S3Location>().is_err(), "{bad}");
    }
}

#[test]
fn files_get_their_headers() {
    let cases = [
        ("blobs/ab.tar.gz", "application/gzip", "immutable"),
        ("roots/2.json", "application/json", "immutable"),
        ("blobs/ab.json", "application/json", "immutable"),
        ("blobs/ab.zst", "application/zstd", "immutable"),
        ("blobs/ab.tar.zst", "application/zstd", "immutable"),
        ("blobs/ab.json.zst", "application/zstd", "immutable"),
        ("blobs/ab.copies", "application/octet-stream", "immutable"),
        ("blobs/ab.pack", "application/octet-stream", "immutable"),
        (
            "channels/stable.json",
            "application/json",
            "must-revalidate",
        ),
        ("index.html", "text/html; charset=utf-8", "must-revalidate"),
        (".nojekyll", "text/plain", "max-age=300"),
    ];
    for (path, kind, cache) in cases {
        let path: RelativePath = path.parse().unwrap();
        assert_eq!(content_type(&path), kind, "{path}");
        assert!(cache_control(&path).contains(cache), "{path}");
    }
}

/// An S3 stand-in on 127.0.0.1 that answers each request with the next of
/// `statuses` (the last one repeated), and counts the requests. Stopped on drop.
struct Faulty {
    port: u16,
    requests: std::sync::Arc<std::sync::atomic::AtomicU32>,
    server: std::sync::Arc<tiny_http::Server>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Faulty {
    fn start(statuses: &'static [u16]) -> Self {
        let server = std::sync::Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let port = server.server_addr().to_ip().unwrap().port();
        let requests = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let thread = {
            let (server, requests) = (server.clone(), requests.clone());
            std::thread::spawn(move || {
                for request in server.incoming_requests() {
                    let n = requests.fetch_add(1, std::sync::atomic::Ordering::SeqCst) as usize;
                    let status = statuses[n.min(statuses.len() - 1)];
                    let body = if status == 200 {
                        "hello".to_owned()
                    } else {
                        "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>".to_owned()
                    };
                    let _ = request
                        .respond(tiny_http::Response::from_string(body).with_status_code(status));
                }
            })
        };
        Self {
            port,
            requests,
            server,
            thread: Some(thread),
        }
    }

    fn storage(&self) -> S3Storage {
        storage_at(self.port)
    }

    fn requests(&self) -> u32 {
        self.requests.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// A storage at 127.0.0.1:`port` with short retry delays, so tests stay fast.
fn storage_at(port: u16) -> S3Storage {
    let retry = Retry {
        attempts: 4,
        first_delay: std::time::Duration::from_millis(10),
        max_delay: std::time::Duration::from_millis(40),
    };
    let credentials = Credentials {
        access_key_id: "AKIDTEST".to_owned(),
        secret_access_key: "very-secret-key".to_owned(),
        session_token: None,
    };
    let endpoint = format!("http://127.0.0.1:{port}");
    S3Storage::with_retry(
        "s3://bucket/site".parse().unwrap(),
        Some(&endpoint),
        "us-east-1",
        credentials,
        retry,
    )
    .unwrap()
}

impl Drop for Faulty {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }
}

#[test]
fn a_passing_failure_is_retried() {
    let server = Faulty::start(&[503, 429, 200]);
    let path: RelativePath = "channels/stable.json".parse().unwrap();
    assert_eq!(
        server.storage().get(&path).unwrap(),
        Some(b"hello".to_vec())
    );
    assert_eq!(server.requests(), 3);
}

#[test]
fn retries_are_bounded_and_the_error_names_the_url_and_status() {
    let server = Faulty::start(&[503]);
    let path: RelativePath = "channels/stable.json".parse().unwrap();
    let error = server.storage().get(&path).unwrap_err();
    assert_eq!(server.requests(), 4, "exactly the configured attempts");
    let text = error.to_string();
    let url = format!(
        "http://127.0.0.1:{}/bucket/site/channels/stable.json",
        server.port
    );
    assert!(matches!(error, Error::S3Response(_)), "{error:?}");
    for expected in [url.as_str(), "HTTP 503", "SlowDown", "after 4 attempts"] {
        assert!(text.contains(expected), "{expected} in {text}");
    }
    assert!(!format!("{error:?}").contains("very-secret-key"));
}

#[test]
fn a_refusal_is_not_retried() {
    let server = Faulty::start(&[403, 200]);
    let path: RelativePath = "index.html".parse().unwrap();
    let error = server.storage().put_bytes(&path, b"x").unwrap_err();
    assert!(matches!(error, Error::S3Denied(_)), "{error:?}");
    assert_eq!(server.requests(), 1);
}

#[test]
fn an_unreachable_endpoint_is_retried_then_reported() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let storage = storage_at(port);
    let path: RelativePath = "index.html".parse().unwrap();
    let error = storage.get(&path).unwrap_err();
    assert!(
        matches!(error, Error::Request { attempts: 4, .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains(&format!("127.0.0.1:{port}")));
}

#[test]
fn the_storage_debug_hides_the_secret() {
    let server = Faulty::start(&[200]);
    let text = format!("{:?}", server.storage());
    assert!(text.contains("AKIDTEST"), "{text}");
    assert!(!text.contains("very-secret-key"), "{text}");
}
