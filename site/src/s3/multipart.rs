//! Uploading a large file in parts (multipart upload).
//!
//! One `PutObject` must send the whole body in one request, so a dropped connection
//! near the end of a large blob sends it all again, and S3 refuses bodies over 5 GiB.
//! Parts are sent, and retried, one at a time, streamed from the file at their
//! offset, so the blob is never held in memory. The object appears only when the
//! upload completes, so a `put` stays atomic. An upload that fails is aborted:
//! S3 keeps, and bills, the parts of an unfinished upload until then.

use std::path::Path;

use rusty_s3::Bucket;
use rusty_s3::actions::CreateMultipartUpload;

use super::request::{Body, Client, Malformed, Request, failure_in, url};
use crate::error::{Error, Result};

/// Files larger than this are uploaded in parts.
pub(super) const THRESHOLD: u64 = 64 << 20;

/// The size of each part but the last: large enough that parts are few, small
/// enough that a retried part resends little.
const PART_SIZE: u64 = 16 << 20;

/// S3 takes at most this many parts; larger files get larger parts.
const MAX_PARTS: u64 = 10_000;

/// Uploads the `size` bytes of `source` to `key` in parts, with `headers` (content
/// type, cache control) set on the object.
///
/// # Errors
///
/// A request failed; the upload was then aborted, and
/// [`Error::S3UploadNotAborted`] if that failed too.
pub(super) fn upload(
    client: &Client,
    bucket: &Bucket,
    key: &str,
    source: &Path,
    size: u64,
    headers: &[(&str, &str)],
) -> Result<()> {
    let create = Request {
        method: "POST",
        url: url(&bucket.create_multipart_upload(None, key)),
        headers,
        body: Body::Empty,
    };
    let answer = client.send(&create)?;
    let created = CreateMultipartUpload::parse_response(answer.text(&create)?)
        .map_err(|error| create.unreadable(error))?;
    let upload_id = created.upload_id();
    let result = send_parts(client, bucket, key, upload_id, source, size)
        .and_then(|etags| complete(client, bucket, key, upload_id, &etags));
    let Err(upload) = result else {
        return Ok(());
    };
    let abort = Request {
        method: "DELETE",
        url: url(&bucket.abort_multipart_upload(None, key, upload_id)),
        headers: &[],
        body: Body::Empty,
    };
    // The abort is retried like any request. If it fails too, the error says so,
    // as the parts stay in the bucket (and are billed) until removed.
    match client.send(&abort) {
        Ok(_) => Err(upload),
        Err(abort) => Err(Error::S3UploadNotAborted {
            key: key.to_owned(),
            upload: Box::new(upload),
            abort: Box::new(abort),
        }),
    }
}

/// Sends every part, in order, and returns their `ETag`s.
fn send_parts(
    client: &Client,
    bucket: &Bucket,
    key: &str,
    upload_id: &str,
    source: &Path,
    size: u64,
) -> Result<Vec<String>> {
    let part_size = PART_SIZE.max(size.div_ceil(MAX_PARTS));
    let mut etags = Vec::new();
    let mut offset = 0;
    for number in 1u16.. {
        if offset >= size {
            break;
        }
        let length = part_size.min(size - offset);
        let part = Request {
            method: "PUT",
            url: url(&bucket.upload_part(None, key, number, upload_id)),
            headers: &[],
            body: Body::File {
                path: source,
                offset,
                length,
            },
        };
        let answer = client.send(&part)?;
        let etag = answer
            .header("etag")
            .ok_or_else(|| part.unreadable(Malformed("the answer has no `ETag` header")))?;
        etags.push(etag.to_owned());
        offset += length;
    }
    Ok(etags)
}

/// Completes the upload: the object appears, made of the parts with `etags`.
fn complete(
    client: &Client,
    bucket: &Bucket,
    key: &str,
    upload_id: &str,
    etags: &[String],
) -> Result<()> {
    let action =
        bucket.complete_multipart_upload(None, key, upload_id, etags.iter().map(String::as_str));
    let request_url = url(&action);
    let body = action.body();
    let request = Request {
        method: "POST",
        url: request_url,
        headers: &[],
        body: Body::Bytes(body.as_bytes()),
    };
    let answer = client.send(&request)?;
    // S3 may answer 200 and still fail, with an error document in the body. (The
    // success document is not parsed: moto names its root element differently.)
    match failure_in(&request, &answer) {
        Some(error) => Err(error),
        None => Ok(()),
    }
}
