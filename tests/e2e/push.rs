//! `wavecast push` uploads a site to S3-compatible storage (a local `moto_server`),
//! only what is missing, with the right headers and signatures; clients update from
//! the bucket over plain HTTP.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use wavecast_schema::RelativePath;
use wavecast_site::S3Storage;
use wavecast_site::s3::{Credentials, S3Location};
use wavecast_tests::{ProcessGroup, Sandbox, assert_same_tree, free_port, sample_release};

pub(crate) const BUCKET: &str = "wavecast-test";

/// `moto_server`, except that the URL moto checks a signature against keeps its query
/// as sent. moto rebuilds the URL with werkzeug's `request.url`, an IRI in which
/// `%2F` (and `%2C`, `%3A`, `%40`) are decoded, so the canonical request it computes
/// has `prefix=a/b/` where the one signed (as SigV4 and AWS require) has
/// `prefix=a%2Fb%2F`: it refuses every listing with a `/` in its prefix or delimiter
/// with `SignatureDoesNotMatch`, boto3's too (getmoto/moto#5948). The path is left
/// to werkzeug, as moto's signature check encodes it again.
const MOTO_SERVER: &str = r#"
import sys
from werkzeug.sansio import utils
from werkzeug.urls import uri_to_iri

def iri_with_query_as_sent(uri):
    base, question, query = uri.partition("?")
    return uri_to_iri(base) + question + query

utils.uri_to_iri = iri_with_query_as_sent
from moto.server import main
main(sys.argv[1:])
"#;

/// A `moto_server` on 127.0.0.1, stopped on drop.
pub(crate) struct Moto {
    _process: ProcessGroup,
    port: u16,
}

impl Moto {
    /// Starts moto. With `enforce_auth`, it checks every request's signature against
    /// IAM access keys once the first three requests (which create the key) are done.
    pub(crate) fn start(enforce_auth: bool) -> Self {
        let port = free_port();
        let mut command = Command::new("python3");
        command
            .args([
                "-c",
                MOTO_SERVER,
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if enforce_auth {
            command.env("INITIAL_NO_AUTH_ACTION_COUNT", "3");
        }
        let process = ProcessGroup::spawn(&mut command)
            .expect("moto_server is not installed; run scripts/install-deps.sh");
        let moto = Self {
            _process: process,
            port,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto_server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        moto
    }

    pub(crate) fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// One IAM query API call (unsigned: only valid among the first requests).
    fn iam(&self, form: &str) -> String {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        agent
            .post(format!("{}/", self.endpoint()))
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=setup/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0",
            )
            .content_type("application/x-www-form-urlencoded")
            .send(format!("{form}&Version=2010-05-08"))
            .expect("IAM request")
            .body_mut()
            .read_to_string()
            .unwrap()
    }

    /// Creates an IAM user allowed everything and returns its access key.
    fn create_user(&self) -> Credentials {
        self.iam("Action=CreateUser&UserName=pusher");
        let key = self.iam("Action=CreateAccessKey&UserName=pusher");
        let field = |name: &str| {
            let start = key.find(&format!("<{name}>")).unwrap() + name.len() + 2;
            let end = key[start..].find('<').unwrap();
            key[start..start + end].to_owned()
        };
        let credentials = Credentials {
            access_key_id: field("AccessKeyId"),
            secret_access_key: field("SecretAccessKey"),
            session_token: None,
        };
        self.iam(
            "Action=PutUserPolicy&UserName=pusher&PolicyName=all&PolicyDocument=%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22*%22%2C%22Resource%22%3A%22*%22%7D%5D%7D",
        );
        credentials
    }

    pub(crate) fn storage(&self, prefix: &str, credentials: &Credentials) -> S3Storage {
        let location: S3Location = format!("s3://{BUCKET}/{prefix}").parse().unwrap();
        S3Storage::new(
            location,
            Some(&self.endpoint()),
            "us-east-1",
            credentials.clone(),
        )
        .unwrap()
    }
}

/// A moto that does not enforce signatures (see `clients_update_from_the_bucket`),
/// its bucket readable by anyone, the storage under `prefix`, and a sandbox whose
/// `wavecast` runs with the credentials that may write it.
pub(crate) fn public_bucket(prefix: &str) -> (Moto, Sandbox, S3Storage) {
    let moto = Moto::start(false);
    let credentials = Credentials {
        access_key_id: "AKIDTEST".into(),
        secret_access_key: "secret".into(),
        session_token: None,
    };
    let storage = moto.storage(prefix, &credentials);
    storage.create_bucket().unwrap();
    storage.allow_public_reads().unwrap();
    let mut sandbox = Sandbox::new();
    use_credentials(&mut sandbox, &credentials);
    (moto, sandbox, storage)
}

/// A moto that enforces signatures, with a user allowed everything, the storage under
/// `prefix` with that user's credentials, and a sandbox whose `wavecast` runs with
/// them.
pub(crate) fn signed_bucket(prefix: &str) -> (Moto, Sandbox, S3Storage) {
    let moto = Moto::start(true);
    let credentials = moto.create_user();
    let storage = moto.storage(prefix, &credentials);
    storage.create_bucket().unwrap();
    let mut sandbox = Sandbox::new();
    use_credentials(&mut sandbox, &credentials);
    (moto, sandbox, storage)
}

/// Sets the credentials `wavecast` runs with.
pub(crate) fn use_credentials(sandbox: &mut Sandbox, credentials: &Credentials) {
    sandbox.env.insert(
        "AWS_ACCESS_KEY_ID".into(),
        credentials.access_key_id.clone(),
    );
    sandbox.env.insert(
        "AWS_SECRET_ACCESS_KEY".into(),
        credentials.secret_access_key.clone(),
    );
    sandbox
        .env
        .insert("AWS_SESSION_TOKEN".into(), String::new());
    sandbox.env.insert("AWS_REGION".into(), "us-east-1".into());
}

pub(crate) fn push(sandbox: &Sandbox, moto: &Moto, destination: &str) -> wavecast_tests::Run {
    let site = sandbox.site();
    sandbox.wavecast(
        [
            "push",
            site.to_str().unwrap(),
            destination,
            "--endpoint",
            &moto.endpoint(),
            "--json",
        ],
        [""; 0],
    )
}

/// Every file of the site folder, as site paths.
fn site_files(site: &Path) -> Vec<RelativePath> {
    wavecast_publisher::push::site_files(site)
        .unwrap()
        .into_iter()
        .map(|(path, _, _)| path)
        .collect()
}

#[test]
fn push_uploads_what_is_missing_with_signed_requests() {
    let moto = Moto::start(true);
    let credentials = moto.create_user();
    let storage = moto.storage("apps/demo", &credentials);
    storage.create_bucket().unwrap();

    let mut sandbox = Sandbox::new();
    let release = sample_release(&sandbox.path("r1"), "one");
    sandbox.publish(&release, "1.0.0", &[]).success();
    use_credentials(&mut sandbox, &credentials);
    let destination = format!("s3://{BUCKET}/apps/demo");

    let first = push(&sandbox, &moto, &destination).success().json();
    let files = site_files(&sandbox.site());
    assert_eq!(first["uploaded"]["files"], files.len());
    assert_eq!(first["already_present"]["files"], 0);
    assert_eq!(
        first["channels_written"],
        serde_json::json!(["channels/stable.json"])
    );

    let again = push(&sandbox, &moto, &destination).success().json();
    assert_eq!(again["uploaded"]["files"], 0, "{again}");
    assert_eq!(again["already_present"]["files"], files.len());

    for path in &files {
        let local = std::fs::read(sandbox.site().join(path.as_str())).unwrap();
        assert_eq!(
            wavecast_site::Storage::get(&storage, path).unwrap(),
            Some(local),
            "{path}"
        );
        let info = storage.head(path).unwrap().unwrap();
        let (content_type, cache_control) = match path.as_str() {
            "index.html" => ("text/html", "max-age=60, must-revalidate"),
            ".nojekyll" => ("text/plain", "max-age=300"),
            name if name.starts_with("channels/") => {
                ("application/json", "max-age=60, must-revalidate")
            }
            name if name.ends_with(".tar.gz") => {
                ("application/gzip", "public, max-age=31536000, immutable")
            }
            name if name.ends_with(".json") => {
                ("application/json", "public, max-age=31536000, immutable")
            }
            name if name.ends_with(".zst") => {
                ("application/zstd", "public, max-age=31536000, immutable")
            }
            _ => (
                "application/octet-stream",
                "public, max-age=31536000, immutable",
            ),
        };
        assert!(
            info.content_type
                .as_deref()
                .is_some_and(|value| value.starts_with(content_type)),
            "{path}: {info:?}"
        );
        assert_eq!(info.cache_control.as_deref(), Some(cache_control), "{path}");
    }

    // A wrong secret is refused by the server, and the error says so.
    sandbox
        .env
        .insert("AWS_SECRET_ACCESS_KEY".into(), "not-the-secret".into());
    let refused = push(&sandbox, &moto, &destination).code(1);
    assert!(
        refused.stderr.contains("HTTP 403") && refused.stderr.contains("SignatureDoesNotMatch"),
        "{}",
        refused.stderr
    );
    assert!(refused.stderr.contains("hint: check AWS_ACCESS_KEY_ID"));
}

#[test]
fn push_explains_missing_credentials_and_unreachable_endpoints() {
    let mut sandbox = Sandbox::new();
    let release = sample_release(&sandbox.path("r1"), "one");
    sandbox.publish(&release, "1.0.0", &[]).success();
    for name in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"] {
        sandbox.env.insert(name.into(), String::new());
    }
    sandbox.env.insert(
        "AWS_SHARED_CREDENTIALS_FILE".into(),
        sandbox.path("no-credentials").to_str().unwrap().into(),
    );
    let site = sandbox.site();
    let run = sandbox
        .wavecast(
            ["push", site.to_str().unwrap(), "s3://wavecast-test/x"],
            [""; 0],
        )
        .code(2);
    assert!(run.stderr.contains("no AWS credentials"), "{}", run.stderr);

    sandbox.env.insert("AWS_ACCESS_KEY_ID".into(), "id".into());
    sandbox
        .env
        .insert("AWS_SECRET_ACCESS_KEY".into(), "secret".into());
    let endpoint = format!("http://127.0.0.1:{}", free_port());
    let run = sandbox
        .wavecast(
            [
                "push",
                site.to_str().unwrap(),
                "s3://wavecast-test/x",
                "--endpoint",
                &endpoint,
            ],
            [""; 0],
        )
        .code(1);
    assert!(run.stderr.contains("failed to send"), "{}", run.stderr);
    assert!(
        run.stderr.contains("hint: check --endpoint"),
        "{}",
        run.stderr
    );
}

/// moto answers unsigned reads with an internal error while it enforces signatures,
/// so the client half runs against a moto that does not (where the bucket policy
/// still decides who may read).
#[test]
fn clients_update_from_the_bucket() {
    let (moto, sandbox, storage) = public_bucket("site");
    let destination = format!("s3://{BUCKET}/site");
    let url = format!("{}/{BUCKET}/site/", moto.endpoint());

    let r1 = sample_release(&sandbox.path("r1"), "one");
    sandbox.publish(&r1, "1.0.0", &[]).success();
    push(&sandbox, &moto, &destination).success();
    sandbox.init_client(&url);
    sandbox.client(["update", "--yes"]).success();
    assert_same_tree(&sandbox.root().join("current"), &r1);

    let r2 = sample_release(&sandbox.path("r2"), "two");
    sandbox.publish(&r2, "1.1.0", &[]).success();
    let second = push(&sandbox, &moto, &destination).success().json();
    assert!(second["already_present"]["files"].as_u64().unwrap() > 0);
    assert_eq!(
        second["channels_written"],
        serde_json::json!(["channels/stable.json"])
    );
    let channels: RelativePath = "channels".parse().unwrap();
    assert_eq!(
        wavecast_site::Storage::list(&storage, &channels).unwrap(),
        ["channels/stable.json".parse::<RelativePath>().unwrap()]
    );
    // Pushed within the same second as the first: the client must still see it.
    sandbox.client(["update", "--yes"]).success();
    assert_same_tree(&sandbox.root().join("current"), &r2);
}

/// Publishes a release to the sandbox's site and mirrors the site into the bucket
/// `s3://BUCKET/mirror` of `moto` twice: the first copies files, the second nothing.
/// Returns the release.
fn mirror_twice(moto: &Moto, sandbox: &Sandbox) -> PathBuf {
    let release = sample_release(&sandbox.path("r1"), "one");
    sandbox.publish(&release, "1.0.0", &[]).success();
    let destination = format!("s3://{BUCKET}/mirror");
    let endpoint = moto.endpoint();
    let mirror = || {
        let (site, pubkey) = (sandbox.site(), sandbox.pubkey());
        let args = [
            "mirror",
            site.to_str().unwrap(),
            &destination,
            "--pubkey",
            pubkey.to_str().unwrap(),
            "--endpoint",
            &endpoint,
            "--json",
        ];
        sandbox.wavecast(args, [""; 0]).success().json()
    };
    let first = mirror();
    assert!(first["copied"]["files"].as_u64().unwrap() > 0, "{first}");
    let again = mirror();
    assert_eq!(
        again["copied"]["files"], 0,
        "a second mirror copies nothing: {again}"
    );
    release
}

#[test]
fn a_mirror_into_a_bucket_is_verified_and_serves_clients() {
    let (moto, sandbox, _) = public_bucket("mirror");
    let release = mirror_twice(&moto, &sandbox);

    let url = format!("{}/{BUCKET}/mirror/", moto.endpoint());
    let verify = sandbox.wavecast(["verify", url.as_str(), "--pubkey"], [sandbox.pubkey()]);
    assert_eq!(verify.code, 0, "{}", verify.stderr);
    sandbox.init_client(&url);
    sandbox.client(["update", "--yes"]).success();
    assert_same_tree(&sandbox.root().join("current"), &release);
}

/// `mirror` lists the bucket to copy only what is missing, signed and checked.
#[test]
fn a_mirror_into_a_bucket_with_signatures_enforced_copies_what_is_missing() {
    let (moto, sandbox, storage) = signed_bucket("mirror");
    mirror_twice(&moto, &sandbox);
    assert_eq!(
        storage.sizes().unwrap().len(),
        site_files(&sandbox.site()).len()
    );
}

/// A blob over the multipart threshold goes up in parts, signed, and reads back
/// whole. The file is sparse (a distinct marker every MiB, so parts sent out of
/// order or twice would not compare equal) and is removed with the sandbox.
#[test]
fn a_200_mib_blob_is_uploaded_in_signed_parts() {
    const SIZE: u64 = 200 << 20;
    let moto = Moto::start(true);
    let credentials = moto.create_user();
    let storage = moto.storage("big", &credentials);
    storage.create_bucket().unwrap();

    let sandbox = Sandbox::new();
    let local = sandbox.path("big.bin");
    let mut expected = blake3::Hasher::new();
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut file = std::fs::File::create(&local).unwrap();
        file.set_len(SIZE).unwrap();
        for mib in 0..SIZE >> 20 {
            file.seek(SeekFrom::Start(mib << 20)).unwrap();
            file.write_all(&mib.to_le_bytes()).unwrap();
        }
    }
    expected
        .update_reader(std::fs::File::open(&local).unwrap())
        .unwrap();

    let path: RelativePath = "blobs/big.pack".parse().unwrap();
    wavecast_site::Storage::put_file(&storage, &path, &local).unwrap();
    let info = storage.head(&path).unwrap().unwrap();
    assert_eq!(info.size, SIZE);
    assert_eq!(
        info.cache_control.as_deref(),
        Some("public, max-age=31536000, immutable")
    );
    let back = wavecast_site::Storage::get(&storage, &path)
        .unwrap()
        .unwrap();
    assert_eq!(back.len() as u64, SIZE);
    assert_eq!(blake3::hash(&back), expected.finalize());
}

/// Listings follow continuation tokens past S3's 1000 keys a page, and deletes
/// (what `gc` does) work, all signed and checked.
#[test]
fn listings_page_and_deletes_work() {
    const KEYS: usize = 1003;
    let (_moto, _sandbox, storage) = signed_bucket("many");

    let paths: Vec<RelativePath> = (0..KEYS)
        .map(|n| format!("blobs/{n:05}.json").parse().unwrap())
        .collect();
    for path in &paths {
        wavecast_site::Storage::put_bytes(&storage, path, b"{}").unwrap();
    }
    let blobs: RelativePath = "blobs".parse().unwrap();
    assert_eq!(
        wavecast_site::Storage::list(&storage, &blobs).unwrap(),
        paths
    );
    assert_eq!(storage.sizes().unwrap().len(), KEYS);

    for path in &paths[..3] {
        wavecast_site::Storage::delete(&storage, path).unwrap();
    }
    // Deleting what is already gone is not an error, so an interrupted gc can rerun.
    wavecast_site::Storage::delete(&storage, &paths[0]).unwrap();
    assert_eq!(
        wavecast_site::Storage::list(&storage, &blobs).unwrap(),
        paths[3..]
    );
}

/// `wavecast stats` reads a site kept in a bucket and the bucket's S3 server access
/// log (lines in S3's format, written here: moto keeps no access log), and `--html`
/// writes the measured adoption back into the bucket.
#[test]
fn stats_reads_a_site_in_a_bucket_and_its_s3_access_log() {
    let (moto, sandbox, storage) = public_bucket("site");
    let destination = format!("s3://{BUCKET}/site");
    let r1 = sample_release(&sandbox.path("r1"), "one");
    sandbox.publish(&r1, "1.0.0", &[]).success();
    let r2 = sample_release(&sandbox.path("r2"), "two");
    sandbox.publish(&r2, "1.1.0", &[]).success();
    push(&sandbox, &moto, &destination).success();

    let manifest = sandbox.manifest("stable");
    let document_blob = &manifest
        .release(&"1.1.0".parse().unwrap())
        .unwrap()
        .platforms["any"];
    let document_path = format!("blobs/{}.json", document_blob.blake3);
    let document = wavecast_schema::PlatformRelease::parse(
        &std::fs::read(sandbox.site().join(&document_path)).unwrap(),
    )
    .unwrap();
    let pack = document
        .pack_from(&"1.0.0".parse().unwrap())
        .expect("a pack from 1.0.0");
    let owner = "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be";
    let line = |second: u32, address: &str, key: &str, status: u16, bytes: u64| {
        format!(
            "{owner} {BUCKET} [05/Dec/2026:10:00:{second:02} +0000] {address} - REQ{second} REST.GET.OBJECT site/{key} \"GET /{BUCKET}/site/{key} HTTP/1.1\" {status} - {bytes} {bytes} 12 3 \"-\" \"wavecast-update/0.1.0\" - hostid SigV4 ECDHE-RSA-AES128-GCM-SHA256 - {BUCKET}.s3.us-east-1.amazonaws.com TLSv1.3 - -\n"
        )
    };
    let log: String = [
        line(1, "192.0.2.1", "channels/stable.json", 200, 1500),
        line(2, "192.0.2.1", &document_path, 200, document_blob.size),
        line(
            3,
            "192.0.2.1",
            &format!("blobs/{}.pack", pack.blake3),
            200,
            pack.size,
        ),
        line(4, "192.0.2.2", "channels/stable.json", 304, 0),
    ]
    .concat();
    std::fs::write(sandbox.path("s3.log"), log).unwrap();
    let run = sandbox
        .wavecast(
            [
                "stats",
                "--json",
                "--html",
                "--site",
                &destination,
                "--endpoint",
                &moto.endpoint(),
            ],
            [sandbox.path("s3.log")],
        )
        .success()
        .json();
    let totals = &run["channels"][0]["totals"];
    assert_eq!(totals["active_clients"], 2, "{totals:#}");
    assert_eq!(
        totals["installs"],
        serde_json::json!([{"version": "1.1.0", "from": "1.0.0", "count": 1}])
    );
    let kept = wavecast_site::Storage::get(&storage, &"stats.json".parse().unwrap())
        .unwrap()
        .expect("stats.json in the bucket");
    assert!(
        String::from_utf8(kept)
            .unwrap()
            .contains("\"active_clients\": 2")
    );
    let page = wavecast_site::Storage::get(&storage, &"index.html".parse().unwrap())
        .unwrap()
        .unwrap();
    assert!(
        String::from_utf8(page)
            .unwrap()
            .contains("<figure class=\"measured\">")
    );
}
