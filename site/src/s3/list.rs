//! Listing keys with `ListObjectsV2`, which answers at most 1000 keys a page and a
//! continuation token for the next.

use rusty_s3::Bucket;
use rusty_s3::actions::ListObjectsV2;

use super::request::{Body, Client, Malformed, Request, url};
use crate::error::Result;

/// The keys and sizes of the objects whose keys start with `prefix`, every page of
/// them; with `delimited`, only those with no further `/`.
///
/// # Errors
///
/// A request failed, or an answer was not a listing or repeated its token (the loop
/// is bounded by the listing itself, so a server that never ends it is an error).
pub(super) fn objects(
    client: &Client,
    bucket: &Bucket,
    prefix: &str,
    delimited: bool,
) -> Result<Vec<(String, u64)>> {
    let mut objects = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut action = bucket.list_objects_v2(None);
        action.with_prefix(prefix);
        if delimited {
            action.with_delimiter("/");
        }
        if let Some(token) = &token {
            action.with_continuation_token(token.as_str());
        }
        let request = Request {
            method: "GET",
            url: url(&action),
            headers: &[],
            body: Body::Empty,
        };
        let answer = client.send(&request)?;
        let page = ListObjectsV2::parse_response(answer.text(&request)?)
            .map_err(|error| request.unreadable(error))?;
        objects.extend(
            page.contents
                .into_iter()
                .map(|object| (object.key, object.size.unwrap_or(0))),
        );
        match page.next_continuation_token {
            None => return Ok(objects),
            Some(next) if token.as_ref() == Some(&next) => {
                return Err(request.unreadable(Malformed("the listing repeats its last page")));
            }
            next => token = next,
        }
    }
}
