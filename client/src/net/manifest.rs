//! Fetching the channel manifest and deciding whether to trust it.

use std::io::{self, Read};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use wavecast_schema::{
    ChannelName, Envelope, MAX_ROOT_STEPS, Manifest, ROOT_SIZE_LIMIT, Role, Root,
};

use crate::build_info::client_version;
use crate::net::error::{Error, Result};
use crate::net::limits::{DownloadLimits, Pace};
use crate::net::transport::{
    Conditional, Transport, TransportError, TransportErrorKind, Validators,
};
use crate::net::url::BaseUrl;

/// The most bytes read for a channel manifest envelope; a host sending more is
/// refused rather than allowed to fill memory. What the manifest inside may hold is
/// bounded by [`wavecast_schema::Limit`]s.
pub use wavecast_schema::MANIFEST_SIZE_LIMIT;

/// What the client checks a manifest, and its download, against.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Expectations<'a> {
    /// The newest root the client trusts.
    pub(crate) root: &'a Root,
    /// The configured channel.
    pub(crate) channel: &'a ChannelName,
    /// The product the root installs, when it knows it.
    pub(crate) product: Option<&'a str>,
    /// The highest serial seen on that channel.
    pub(crate) highest_serial: Option<u64>,
    /// The client's clock.
    pub(crate) now: Timestamp,
    /// How long after its expiry a manifest is still accepted, for a clock that runs
    /// ahead.
    pub(crate) expiry_grace: Duration,
    /// How slowly the manifest may arrive.
    pub(crate) limits: DownloadLimits,
    /// Whether to refuse a manifest that needs a newer client
    /// ([`Error::ClientTooOld`]): always, except when fetching the manifest the
    /// client updates itself from.
    pub(crate) client_floor: bool,
}

/// The envelope a client stored from an earlier check, with what identifies it to
/// its host.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stored<'a> {
    /// The manifest URL it came from.
    pub(crate) url: &'a str,
    /// The validators of that response.
    pub(crate) validators: &'a Validators,
    /// The envelope's bytes, as verified then.
    pub(crate) envelope: &'a [u8],
}

/// A manifest that passed every check of [`verify_envelope`].
#[derive(Debug)]
pub(crate) struct Fetched {
    pub(crate) manifest: Manifest,
    /// Its URL.
    pub(crate) url: String,
    /// The newer root the client walked to for this manifest, to trust from now on.
    pub(crate) root: Option<Root>,
    /// The envelope's bytes and validators when the host sent them, to store for
    /// the next check; `None` when the host answered that the stored envelope is
    /// still current.
    pub(crate) fresh: Option<(Vec<u8>, Validators)>,
}

/// Fetches `channels/<channel>.json` under `base` and returns the manifest if it
/// passes every check of [`verify_envelope`]. Each request must arrive within
/// `expect.limits`.
///
/// With a `stored` envelope from the same URL, the request is conditional: when the
/// host answers that nothing changed, the stored envelope is verified again, in
/// full (signature, expiry, serial), so an unchanged answer can never revive a
/// manifest that has since expired. If the stored envelope fails, the manifest is
/// fetched again without conditions and that copy decides.
pub(crate) fn fetch_manifest(
    transport: &dyn Transport,
    base: &BaseUrl,
    expect: &Expectations<'_>,
    stored: Option<Stored<'_>>,
) -> Result<Fetched> {
    let url = base.join(&wavecast_site::layout::channel_manifest(expect.channel));
    let fetch_error = |source| Error::FetchManifest {
        url: url.clone(),
        source,
    };
    if let Some(stored) = stored.filter(|stored| stored.url == url && !stored.validators.is_empty())
    {
        let pace = Pace::start(expect.limits);
        match transport
            .fetch_conditional(&url, stored.validators)
            .map_err(fetch_error)?
        {
            Conditional::NotModified => {
                if let Ok((manifest, root)) =
                    walk_and_verify(transport, base, stored.envelope, &url, expect)
                {
                    return Ok(Fetched {
                        manifest,
                        url,
                        root,
                        fresh: None,
                    });
                }
            }
            Conditional::Modified { reader, validators } => {
                return read_and_verify(transport, base, reader, &pace, url, validators, expect);
            }
        }
    }
    let pace = Pace::start(expect.limits);
    match transport
        .fetch_conditional(&url, &Validators::default())
        .map_err(fetch_error)?
    {
        Conditional::Modified { reader, validators } => {
            read_and_verify(transport, base, reader, &pace, url, validators, expect)
        }
        // Nothing was asked for; a transport answering this way gave no file.
        Conditional::NotModified => {
            let pace = Pace::start(expect.limits);
            let reader = transport.fetch(&url).map_err(fetch_error)?;
            read_and_verify(
                transport,
                base,
                reader,
                &pace,
                url,
                Validators::default(),
                expect,
            )
        }
    }
}

/// Reads an envelope of at most [`MANIFEST_SIZE_LIMIT`] bytes, at the `pace` of its
/// request's limits, and verifies it.
fn read_and_verify(
    transport: &dyn Transport,
    base: &BaseUrl,
    reader: Box<dyn Read + Send>,
    pace: &Pace,
    url: String,
    validators: Validators,
    expect: &Expectations<'_>,
) -> Result<Fetched> {
    let bytes = read_paced(reader, MANIFEST_SIZE_LIMIT, pace, &url, |source| {
        Error::ReadManifest {
            url: url.clone(),
            source,
        }
    })?;
    if bytes.len() as u64 > MANIFEST_SIZE_LIMIT {
        return Err(Error::ManifestTooLarge {
            url,
            limit: MANIFEST_SIZE_LIMIT,
        });
    }
    let (manifest, root) = walk_and_verify(transport, base, &bytes, &url, expect)?;
    Ok(Fetched {
        manifest,
        url,
        root,
        fresh: Some((bytes, validators)),
    })
}

/// Reads at most `limit + 1` bytes (one more than allowed, so the caller can tell a
/// host sent too much) at the `pace` of the request's limits. `read_error` wraps a
/// failed read.
fn read_paced(
    reader: Box<dyn Read + Send>,
    limit: u64,
    pace: &Pace,
    url: &str,
    read_error: impl Fn(io::Error) -> Error,
) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let mut reader = reader.take(limit + 1);
    let mut buffer = vec![0u8; 64 * 1024];
    pace.check(url, 0)?;
    loop {
        let count = match reader.read(&mut buffer) {
            Ok(0) => return Ok(bytes),
            Ok(count) => count,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => return Err(read_error(source)),
        };
        bytes.extend_from_slice(&buffer[..count]);
        pace.check(url, bytes.len() as u64)?;
    }
}

/// Walks the chain of roots as far as the envelope's manifest says it was signed
/// (see [`walk_roots`]), then verifies the envelope under the newest root. Returns
/// the manifest, and the new root when the client walked.
fn walk_and_verify(
    transport: &dyn Transport,
    base: &BaseUrl,
    bytes: &[u8],
    url: &str,
    expect: &Expectations<'_>,
) -> Result<(Manifest, Option<Root>)> {
    let envelope = parse_envelope(bytes, url)?;
    let walked = walk_roots(transport, base, expect, envelope.root_version_hint(), url)?;
    let root = walked.as_ref().unwrap_or(expect.root);
    check_root_expiry(root, url, expect)?;
    let manifest = verify_envelope(&envelope, url, &Expectations { root, ..*expect })?;
    Ok((manifest, walked))
}

/// Fetches and verifies `roots/<n>.json` for every version after `trusted` up to
/// `named`, each one as the successor of the one before (see
/// [`Root::verify_successor`]). `None` when the client already trusts `named` or
/// later. The walk is bounded by [`MAX_ROOT_STEPS`] and each root by
/// [`ROOT_SIZE_LIMIT`] bytes.
///
/// `named` comes from the manifest before its signatures are checked: a host can
/// only make the client fetch roots it then has to verify, or fail.
fn walk_roots(
    transport: &dyn Transport,
    base: &BaseUrl,
    expect: &Expectations<'_>,
    named: u64,
    manifest_url: &str,
) -> Result<Option<Root>> {
    let trusted = expect.root;
    if named <= trusted.version {
        return Ok(None);
    }
    if named - trusted.version > MAX_ROOT_STEPS {
        return Err(Error::RootChainTooLong {
            url: manifest_url.to_owned(),
            trusted: trusted.version,
            named,
        });
    }
    let mut newest = trusted.clone();
    while newest.version < named {
        let version = newest.version + 1;
        let url = base.join(&wavecast_site::layout::root(version));
        let fetch_error = |source| Error::FetchRoot {
            url: url.clone(),
            version,
            source,
        };
        let pace = Pace::start(expect.limits);
        let reader = transport.fetch(&url).map_err(fetch_error)?;
        let bytes = read_paced(reader, ROOT_SIZE_LIMIT, &pace, &url, |source| {
            fetch_error(TransportError::with_source(
                TransportErrorKind::Other,
                "the connection failed while reading",
                source,
            ))
        })?;
        if bytes.len() as u64 > ROOT_SIZE_LIMIT {
            return Err(Error::RootTooLarge { url });
        }
        newest = newest
            .verify_successor(&bytes)
            .map_err(|source| Error::UntrustedRoot {
                url,
                source: Box::new(source),
            })?;
    }
    Ok(Some(newest))
}

/// Refuses every manifest once the newest root the client trusts has expired
/// (give or take the expiry grace): its keys may have been lost without anyone
/// noticing, and only a newer root, signed by its root keys, restores trust.
fn check_root_expiry(root: &Root, url: &str, expect: &Expectations<'_>) -> Result<()> {
    let grace = SignedDuration::try_from(expect.expiry_grace).unwrap_or(SignedDuration::MAX);
    match root.expires_at {
        Some(expires_at) if root.expired(expect.now, grace) => Err(Error::RootExpired {
            url: url.to_owned(),
            version: root.version,
            expires_at,
            now: expect.now,
            grace: expect.expiry_grace,
        }),
        _ => Ok(()),
    }
}

/// Parses an envelope's bytes; nothing in it is trusted yet.
fn parse_envelope(bytes: &[u8], url: &str) -> Result<Envelope> {
    Envelope::parse(bytes).map_err(|source| Error::ParseEnvelope {
        url: url.to_owned(),
        source,
    })
}

/// Checks an envelope, in this order: a threshold of the trusted root's release keys
/// signed it (before any manifest field is read); the manifest parses and validates;
/// it is for the expected channel and product; this client is new enough (unless
/// [`Expectations::client_floor`] is off); it has not expired (give or take the
/// expiry grace); its serial is not lower than one already seen.
fn verify_envelope(envelope: &Envelope, url: &str, expect: &Expectations<'_>) -> Result<Manifest> {
    expect
        .root
        .check_signatures(
            Role::Release,
            "the manifest",
            envelope.manifest.as_bytes(),
            &envelope.signatures,
        )
        .map_err(|source| Error::VerifySignature {
            url: url.to_owned(),
            source: Box::new(source),
        })?;
    let manifest =
        Manifest::parse(envelope.manifest.as_bytes()).map_err(|source| Error::ParseManifest {
            url: url.to_owned(),
            source,
        })?;
    if &manifest.channel != expect.channel {
        return Err(Error::WrongChannel {
            url: url.to_owned(),
            found: manifest.channel,
            expected: expect.channel.clone(),
        });
    }
    if let Some(product) = expect.product
        && manifest.product != product
    {
        return Err(Error::WrongProduct {
            url: url.to_owned(),
            found: manifest.product,
            expected: product.to_owned(),
        });
    }
    let running = client_version();
    if expect.client_floor && manifest.min_client_version > running {
        return Err(Error::ClientTooOld {
            url: url.to_owned(),
            required: manifest.min_client_version,
            running,
        });
    }
    let grace = SignedDuration::try_from(expect.expiry_grace).unwrap_or(SignedDuration::MAX);
    if expect.now.duration_since(manifest.expires_at) >= grace {
        return Err(Error::ManifestExpired {
            url: url.to_owned(),
            expires_at: manifest.expires_at,
            now: expect.now,
            grace: expect.expiry_grace,
        });
    }
    if let Some(highest) = expect.highest_serial
        && manifest.serial < highest
    {
        return Err(Error::Rollback {
            url: url.to_owned(),
            channel: manifest.channel,
            serial: manifest.serial,
            highest,
        });
    }
    Ok(manifest)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Parses and verifies envelope bytes, as a fetch does after walking the roots.
    fn verify_manifest(bytes: &[u8], url: &str, expect: &Expectations<'_>) -> Result<Manifest> {
        verify_envelope(&parse_envelope(bytes, url)?, url, expect)
    }
    use crate::net::trust::tests::{keypair, sign};

    /// A valid manifest for `stable` with no releases.
    pub(crate) fn manifest_json(serial: u64, channel: &str) -> String {
        serde_json::json!({
            "format": wavecast_schema::FORMAT_VERSION,
            "product": "demo",
            "channel": channel,
            "serial": serial,
            "published_at": "2026-11-01T00:00:00Z",
            "expires_at": "2026-12-01T00:00:00Z",
            "min_client_version": "0.1.0",
            "releases": [],
        })
        .to_string()
    }

    fn envelope(pair: &minisign::KeyPair, manifest: &str) -> Vec<u8> {
        Envelope::new(manifest.to_owned(), vec![sign(pair, manifest.as_bytes())]).to_json()
    }

    fn expect<'a>(
        root: &'a Root,
        channel: &'a ChannelName,
        highest: Option<u64>,
    ) -> Expectations<'a> {
        Expectations {
            root,
            channel,
            product: None,
            highest_serial: highest,
            now: "2026-11-21T12:00:00Z".parse().unwrap(),
            expiry_grace: Duration::ZERO,
            limits: DownloadLimits::default(),
            client_floor: true,
        }
    }

    #[test]
    fn a_good_manifest_passes_and_each_check_fails_on_its_own() {
        let (pair, key) = keypair();
        let key = key.root();
        let (other_pair, _) = keypair();
        let stable: ChannelName = "stable".parse().unwrap();
        let good = envelope(&pair, &manifest_json(7, "stable"));
        assert_eq!(
            verify_manifest(&good, "u", &expect(&key, &stable, Some(7)))
                .unwrap()
                .serial,
            7
        );

        let forged = envelope(&other_pair, &manifest_json(7, "stable"));
        let error = verify_manifest(&forged, "u", &expect(&key, &stable, None)).unwrap_err();
        assert!(matches!(error, Error::VerifySignature { .. }), "{error}");

        // The signature is checked before the manifest is even parsed.
        let garbage =
            Envelope::new("not json".into(), vec![sign(&other_pair, b"not json")]).to_json();
        let error = verify_manifest(&garbage, "u", &expect(&key, &stable, None)).unwrap_err();
        assert!(matches!(error, Error::VerifySignature { .. }), "{error}");

        let beta = envelope(&pair, &manifest_json(7, "beta"));
        let error = verify_manifest(&beta, "u", &expect(&key, &stable, None)).unwrap_err();
        assert_eq!(
            error.to_string(),
            "manifest `u` is for channel `beta`, expected `stable`"
        );

        let error = verify_manifest(&good, "u", &expect(&key, &stable, Some(8))).unwrap_err();
        assert!(
            matches!(
                error,
                Error::Rollback {
                    serial: 7,
                    highest: 8,
                    ..
                }
            ),
            "{error}"
        );

        let mut late = expect(&key, &stable, None);
        late.now = "2026-12-01T00:00:00Z".parse().unwrap();
        let error = verify_manifest(&good, "u", &late).unwrap_err();
        assert!(
            error.to_string().contains("the publisher must re-sign it"),
            "{error}"
        );

        let mut future: serde_json::Value =
            serde_json::from_str(&manifest_json(7, "stable")).unwrap();
        future["min_client_version"] = "999.0.0".into();
        let too_new = envelope(&pair, &future.to_string());
        let error = verify_manifest(&too_new, "u", &expect(&key, &stable, None)).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("needs wavecast-update >= 999.0.0"),
            "{error}"
        );
        // The client updating itself reads the manifest all the same.
        let updating_itself = Expectations {
            client_floor: false,
            ..expect(&key, &stable, None)
        };
        let manifest = verify_manifest(&too_new, "u", &updating_itself).unwrap();
        assert_eq!(manifest.min_client_version.to_string(), "999.0.0");

        let error = verify_manifest(b"<html>", "u", &expect(&key, &stable, None)).unwrap_err();
        assert!(matches!(error, Error::ParseEnvelope { .. }), "{error}");
    }

    #[test]
    fn an_expiry_grace_accepts_a_manifest_that_expired_within_it() {
        let (pair, key) = keypair();
        let key = key.root();
        let stable: ChannelName = "stable".parse().unwrap();
        // Expires at 2026-12-01T00:00:00Z.
        let good = envelope(&pair, &manifest_json(7, "stable"));
        let at = |now: &str, grace_minutes: u64| {
            let mut expect = expect(&key, &stable, None);
            expect.now = now.parse().unwrap();
            expect.expiry_grace = Duration::from_secs(grace_minutes * 60);
            verify_manifest(&good, "u", &expect)
        };
        at("2026-11-30T23:59:59Z", 0).unwrap();
        let error = at("2026-12-01T00:02:00Z", 0).unwrap_err();
        assert_eq!(
            error.to_string(),
            "manifest `u` expired at 2026-12-01T00:00:00Z (it is now 2026-12-01T00:02:00Z); the publisher must re-sign it"
        );
        at("2026-12-01T00:02:00Z", 10).unwrap();
        at("2026-12-01T00:09:59Z", 10).unwrap();
        let error = at("2026-12-01T00:10:00Z", 10).unwrap_err();
        assert_eq!(
            error.to_string(),
            "manifest `u` expired at 2026-12-01T00:00:00Z (it is now 2026-12-01T00:10:00Z, beyond the grace of 10m); the publisher must re-sign it"
        );
    }

    #[test]
    fn an_expired_root_is_refused_with_its_version_and_expiry() {
        let (_, key) = keypair();
        let stable: ChannelName = "stable".parse().unwrap();
        let mut root = key.root();
        root.version = 3;
        check_root_expiry(&root, "u", &expect(&root, &stable, None)).unwrap();
        root.expires_at = Some("2026-11-21T00:00:00Z".parse().unwrap());
        let error = check_root_expiry(&root, "u", &expect(&root, &stable, None)).unwrap_err();
        assert_eq!(
            error.to_string(),
            "root v3 of the site expired at 2026-11-21T00:00:00Z (it is now 2026-11-21T12:00:00Z), so manifest `u` is not trusted"
        );
        assert!(
            error.hint().unwrap().contains("publish root v4"),
            "{:?}",
            error.hint()
        );
        let lenient = Expectations {
            expiry_grace: Duration::from_secs(13 * 3600),
            ..expect(&root, &stable, None)
        };
        check_root_expiry(&root, "u", &lenient).unwrap();
    }
}
