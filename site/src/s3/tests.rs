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
