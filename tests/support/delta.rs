//! Support for the differential-update tests and the delta benchmark: an nginx whose
//! access log records the body bytes of every response, a fault server that honours
//! `Range` (for resumed downloads and copy-pack ranges), and helpers to read a
//! published release's document, a module's file index and a delta pack, and to tell a
//! site's blobs apart.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use wavecast_schema::{Blake3Hash, Blob, FileIndex, Module, PackHeader, PlatformRelease};
use wavecast_site::layout::BlobKind;

use crate::{Fault, Nginx, Sandbox};

/// One request as a server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    pub method: String,
    /// Site path, without the leading `/`.
    pub path: String,
    pub status: u16,
    /// Bytes of the response body actually sent.
    pub body_bytes: u64,
    /// The request's `Range` header, if any.
    pub range: Option<String>,
}

/// What a site path holds, from its place and extension (see `wavecast_site::layout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BlobClass {
    /// `channels/<channel>.json`, the signed manifest envelope.
    Manifest,
    /// `blobs/<hash>.json`, a release's document for one platform.
    Document,
    /// `blobs/<hash>.json.zst`, a module's file index.
    FileIndex,
    /// `blobs/<hash>.pack`, a delta pack.
    Pack,
    /// `blobs/<hash>.copies`, a module's copy pack (whole or a range of it).
    Copies,
    /// `blobs/<hash>.zst`, an image module's compressed copy.
    FileCopy,
    /// `blobs/<hash>.tar.zst` or `.tar.gz`, a module's whole package.
    Package,
    /// Anything else (the status page…).
    Other,
}

impl BlobClass {
    pub fn of(path: &str) -> Self {
        let path = path.trim_start_matches('/');
        if path.starts_with("channels/") {
            return Self::Manifest;
        }
        match wavecast_site::layout::parse_blob(path) {
            Some((_, BlobKind::PlatformRelease)) => Self::Document,
            Some((_, BlobKind::FileIndex)) => Self::FileIndex,
            Some((_, BlobKind::Pack)) => Self::Pack,
            Some((_, BlobKind::Copies)) => Self::Copies,
            Some((_, BlobKind::FileCopy)) => Self::FileCopy,
            Some((_, BlobKind::Package | BlobKind::ZstdPackage)) => Self::Package,
            None => Self::Other,
        }
    }

    pub const ALL: [Self; 8] = [
        Self::Manifest,
        Self::Document,
        Self::FileIndex,
        Self::Pack,
        Self::Copies,
        Self::FileCopy,
        Self::Package,
        Self::Other,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Self::Manifest => "manifest",
            Self::Document => "release documents",
            Self::FileIndex => "file indexes",
            Self::Pack => "delta packs",
            Self::Copies => "copy packs",
            Self::FileCopy => "image copies",
            Self::Package => "packages",
            Self::Other => "other",
        }
    }
}

/// Body bytes per [`BlobClass`] over `requests`.
pub fn bytes_by_class(requests: &[Served]) -> HashMap<BlobClass, u64> {
    let mut totals = HashMap::new();
    for request in requests {
        *totals.entry(BlobClass::of(&request.path)).or_insert(0) += request.body_bytes;
    }
    totals
}

/// The document of `version` on platform `any` in the `stable` channel, read from the
/// site.
#[track_caller]
pub fn document(sandbox: &Sandbox, version: &str) -> PlatformRelease {
    let manifest = sandbox.manifest("stable");
    let release = manifest
        .release(&version.parse().unwrap())
        .unwrap_or_else(|| panic!("{version} is not published"));
    read_document(&sandbox.site(), &release.platforms["any"])
}

/// The platform release document `blob` names, read from the site folder `site`.
#[track_caller]
pub fn read_document(site: &Path, blob: &Blob) -> PlatformRelease {
    let path = wavecast_site::layout::blob(&blob.blake3, BlobKind::PlatformRelease);
    let bytes = std::fs::read(site.join(path.as_str())).unwrap();
    assert_eq!(Blake3Hash::of(&bytes), blob.blake3, "{path}");
    PlatformRelease::parse(&bytes).unwrap()
}

/// The module `module` of `version` (platform `any`) in the `stable` channel.
#[track_caller]
pub fn module(sandbox: &Sandbox, version: &str, module: &str) -> Module {
    document(sandbox, version).modules[module].clone()
}

/// The module `name` of the newest release (platform `any`) in the `stable` channel.
#[track_caller]
pub fn newest_module(sandbox: &Sandbox, name: &str) -> Module {
    let version = sandbox.manifest("stable").releases[0].version.to_string();
    module(sandbox, &version, name)
}

/// The site path of the blob of `kind` named by `hash`.
pub fn blob_path(hash: &Blake3Hash, kind: BlobKind) -> String {
    wavecast_site::layout::blob(hash, kind).to_string()
}

/// The site path of `module`'s package: a tree's tar.zst or tar.gz, or an image's
/// zstd copy.
pub fn package_path(module: &Module) -> String {
    blob_path(&module.package.blake3, BlobKind::of_package(module))
}

/// The site path of `module`'s file index.
pub fn index_path(module: &Module) -> String {
    blob_path(&module.index.blake3, BlobKind::FileIndex)
}

/// The file index of module `name` of `version`, read from the site.
#[track_caller]
pub fn file_index(sandbox: &Sandbox, version: &str, name: &str) -> FileIndex {
    let module = module(sandbox, version, name);
    let path = wavecast_site::layout::blob(&module.index.blake3, BlobKind::FileIndex);
    let bytes = std::fs::read(sandbox.site().join(path.as_str())).unwrap();
    FileIndex::decode(&bytes, &module.index).unwrap()
}

/// The site path of the delta pack of `version` (platform `any`) that updates from
/// `from`, if it has one.
#[track_caller]
pub fn pack_path(sandbox: &Sandbox, version: &str, from: &str) -> Option<String> {
    let pack = document(sandbox, version)
        .pack_from(&from.parse().unwrap())?
        .clone();
    Some(wavecast_site::layout::blob(&pack.blake3, BlobKind::Pack).to_string())
}

/// The header of the delta pack of `version` (platform `any`) that updates from `from`.
#[track_caller]
pub fn pack_header(sandbox: &Sandbox, version: &str, from: &str) -> PackHeader {
    let path = pack_path(sandbox, version, from)
        .unwrap_or_else(|| panic!("{version} has no pack from {from}"));
    let bytes = std::fs::read(sandbox.site().join(path)).unwrap();
    PackHeader::decode(&bytes).unwrap().0
}

/// A real nginx ([`Nginx::serve_logged`]) whose access log is read back as
/// [`Served`] requests. Stopped on drop.
pub struct LoggingNginx {
    nginx: Nginx,
    log: PathBuf,
}

impl LoggingNginx {
    /// Starts nginx serving `root`.
    pub fn serve(root: &Path) -> Self {
        let nginx = Nginx::serve_logged(root);
        let log = nginx.access_log();
        Self { nginx, log }
    }

    pub fn url(&self) -> String {
        self.nginx.url()
    }

    /// Forgets the requests logged so far (nginx appends to the truncated file).
    pub fn clear_log(&self) {
        self.settle();
        std::fs::write(&self.log, b"").unwrap();
    }

    /// Every request logged since the start or the last [`Self::clear_log`].
    pub fn requests(&self) -> Vec<Served> {
        self.settle();
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|line| parse_log_line(line).unwrap_or_else(|| panic!("odd log line: {line}")))
            .collect()
    }

    /// nginx logs a request once its response is handed to the socket, which may be a
    /// moment after the client has read it: wait until the log stops growing.
    fn settle(&self) {
        let size = || std::fs::metadata(&self.log).map_or(0, |m| m.len());
        let mut last = size();
        for _ in 0..20 {
            std::thread::sleep(Duration::from_millis(50));
            let now = size();
            if now == last {
                return;
            }
            last = now;
        }
    }
}

/// Parses `200 1234 "bytes=5-" "GET /blobs/x.zst HTTP/1.1"`.
fn parse_log_line(line: &str) -> Option<Served> {
    let (status, rest) = line.split_once(' ')?;
    let (bytes, rest) = rest.split_once(' ')?;
    let rest = rest.strip_prefix('"')?;
    let (range, rest) = rest.split_once("\" \"")?;
    let request = rest.strip_suffix('"')?;
    let mut words = request.split(' ');
    let method = words.next()?.to_owned();
    let target = words.next()?;
    let path = target.split('?').next()?.trim_start_matches('/').to_owned();
    Some(Served {
        method,
        path,
        status: status.parse().ok()?,
        body_bytes: bytes.parse().ok()?,
        range: (range != "-" && !range.is_empty()).then(|| range.to_owned()),
    })
}

/// An in-process static server on 127.0.0.1 that injects [`Fault`]s like
/// [`crate::FaultServer`], and answers `Range: bytes=A-` / `bytes=A-B` with
/// `206 Partial Content` (honouring `If-Range` against its ETag), logging every request
/// with its `Range` header and body size. Stopped on drop.
pub struct RangeServer {
    pub port: u16,
    faults: Arc<Mutex<HashMap<String, Fault>>>,
    served: Arc<Mutex<Vec<Served>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl RangeServer {
    /// Serves the folder `root`.
    pub fn serve(root: &Path) -> Self {
        let server = tiny_http::Server::http("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = server.server_addr().to_ip().expect("an IP listener").port();
        let faults: Arc<Mutex<HashMap<String, Fault>>> = Arc::default();
        let served: Arc<Mutex<Vec<Served>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let root = root.to_owned();
        let thread = {
            let (faults, served, stop) = (faults.clone(), served.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let Ok(Some(request)) = server.recv_timeout(Duration::from_millis(50)) else {
                        continue;
                    };
                    let path = request.url().trim_start_matches('/').to_owned();
                    let header = |name: &str| {
                        request
                            .headers()
                            .iter()
                            .find(|header| header.field.to_string().eq_ignore_ascii_case(name))
                            .map(|header| header.value.as_str().to_owned())
                    };
                    let (range, if_range) = (header("Range"), header("If-Range"));
                    let fault = faults.lock().unwrap().get(&path).cloned();
                    let (status, body, headers) =
                        respond(&root, &path, fault, range.as_deref(), if_range.as_deref());
                    served.lock().unwrap().push(Served {
                        method: request.method().as_str().to_owned(),
                        path,
                        status,
                        body_bytes: body.len() as u64,
                        range,
                    });
                    let mut response =
                        tiny_http::Response::from_data(body).with_status_code(status);
                    for (name, value) in headers {
                        response.add_header(
                            tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes())
                                .expect("valid header"),
                        );
                    }
                    let _ = request.respond(response);
                }
            })
        };
        Self {
            port,
            faults,
            served,
            stop,
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// Injects `fault` into every later request for the site path `path`.
    pub fn set_fault(&self, path: &str, fault: Fault) {
        self.faults.lock().unwrap().insert(path.to_owned(), fault);
    }

    /// Serves every file faithfully again.
    pub fn clear_faults(&self) {
        self.faults.lock().unwrap().clear();
    }

    /// The requests served so far.
    pub fn requests(&self) -> Vec<Served> {
        self.served.lock().unwrap().clone()
    }

    /// Forgets the requests served so far.
    pub fn clear_requests(&self) {
        self.served.lock().unwrap().clear();
    }
}

impl Drop for RangeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

type Answer = (u16, Vec<u8>, Vec<(String, String)>);

fn respond(
    root: &Path,
    path: &str,
    fault: Option<Fault>,
    range: Option<&str>,
    if_range: Option<&str>,
) -> Answer {
    let not_found = || (404, Vec::new(), Vec::new());
    if path.split('/').any(|segment| segment == "..") {
        return not_found();
    }
    match fault {
        Some(Fault::Status(code)) => return (code, Vec::new(), Vec::new()),
        Some(Fault::Replace(bytes)) => return (200, bytes, Vec::new()),
        _ => {}
    }
    let file = root.join(path);
    let (Ok(mut bytes), Ok(metadata)) = (std::fs::read(&file), std::fs::metadata(&file)) else {
        return not_found();
    };
    let mtime = metadata
        .modified()
        .ok()
        .and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |since| since.as_secs());
    let etag = format!("\"{mtime:x}-{:x}\"", bytes.len());
    let mut headers = vec![
        ("ETag".to_owned(), etag.clone()),
        ("Accept-Ranges".to_owned(), "bytes".to_owned()),
    ];
    match fault {
        Some(Fault::Truncate(n)) => {
            bytes.truncate(n);
            return (200, bytes, headers);
        }
        Some(Fault::Corrupt) => {
            let middle = bytes.len() / 2;
            if let Some(byte) = bytes.get_mut(middle) {
                *byte ^= 0xff;
            }
            return (200, bytes, headers);
        }
        Some(Fault::Extend(n)) => {
            bytes.extend(std::iter::repeat_n(b'A', n));
            return (200, bytes, headers);
        }
        _ => {}
    }
    let range = range.filter(|_| if_range.is_none_or(|tag| tag == etag));
    let Some(range) = range else {
        return (200, bytes, headers);
    };
    let len = bytes.len() as u64;
    let parsed = range.strip_prefix("bytes=").and_then(|spec| {
        let (start, end) = spec.split_once('-')?;
        let start: u64 = start.trim().parse().ok()?;
        let end: u64 = match end.trim() {
            "" => len.saturating_sub(1),
            end => end.parse::<u64>().ok()?.min(len.saturating_sub(1)),
        };
        Some((start, end))
    });
    match parsed {
        Some((start, end)) if start < len && start <= end => {
            headers.push((
                "Content-Range".to_owned(),
                format!("bytes {start}-{end}/{len}"),
            ));
            let body = bytes[start as usize..=end as usize].to_vec();
            (206, body, headers)
        }
        Some(_) => {
            headers.push(("Content-Range".to_owned(), format!("bytes */{len}")));
            (416, Vec::new(), headers)
        }
        // A range this server does not understand (several ranges…): the whole file.
        None => (200, bytes, headers),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_parse() {
        let served =
            parse_log_line(r#"206 1234 "bytes=5-" "GET /blobs/abc.zst HTTP/1.1""#).unwrap();
        assert_eq!(served.path, "blobs/abc.zst");
        assert_eq!(served.status, 206);
        assert_eq!(served.body_bytes, 1234);
        assert_eq!(served.range.as_deref(), Some("bytes=5-"));
        let served = parse_log_line(r#"200 7 "-" "GET /channels/stable.json HTTP/1.1""#).unwrap();
        assert_eq!(served.range, None);
        assert_eq!(BlobClass::of(&served.path), BlobClass::Manifest);
    }
}
