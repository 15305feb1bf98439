//! An in-process HTTP server (tiny_http) that serves a site folder and injects faults
//! into chosen files: wrong bytes, short bodies, extra bytes, error statuses, a
//! different file's content, or the right bytes sent slowly.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// What to do instead of serving a file faithfully.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Serve these bytes instead.
    Replace(Vec<u8>),
    /// Serve only the first `n` bytes (a well-formed but short response).
    Truncate(usize),
    /// Serve the file with one byte flipped in the middle (same size).
    Corrupt,
    /// Serve the file followed by `n` more bytes.
    Extend(usize),
    /// Answer with this HTTP status and no body.
    Status(u16),
    /// Serve the file faithfully, but `chunk` bytes at a time with a `pause` before
    /// each chunk (a slow-retrieval attack, or a very slow link). Each such response
    /// is sent from its own thread, so other requests are not held up.
    Trickle { chunk: usize, pause: Duration },
}

/// A fault-injecting static server on 127.0.0.1, stopped on drop.
pub struct FaultServer {
    pub port: u16,
    faults: Arc<Mutex<HashMap<String, Fault>>>,
    requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FaultServer {
    /// Serves the folder `root`.
    pub fn serve(root: &Path) -> Self {
        let server = tiny_http::Server::http("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = server.server_addr().to_ip().expect("an IP listener").port();
        let faults: Arc<Mutex<HashMap<String, Fault>>> = Arc::default();
        let requests: Arc<Mutex<Vec<String>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let root = root.to_owned();
        let thread = {
            let (faults, requests, stop) = (faults.clone(), requests.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let Ok(Some(request)) = server.recv_timeout(Duration::from_millis(50)) else {
                        continue;
                    };
                    let path = request.url().trim_start_matches('/').to_owned();
                    requests.lock().unwrap().push(path.clone());
                    let fault = faults.lock().unwrap().get(&path).cloned();
                    match (fault, site_file(&root, &path)) {
                        (Some(Fault::Trickle { chunk, pause }), Some(bytes)) => {
                            std::thread::spawn(move || trickle(request, &bytes, chunk, pause));
                        }
                        (fault, _) => {
                            let _ = request.respond(respond(&root, &path, fault));
                        }
                    }
                }
            })
        };
        Self {
            port,
            faults,
            requests,
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

    /// The paths requested so far.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    /// Forgets the requests so far.
    pub fn clear_requests(&self) {
        self.requests.lock().unwrap().clear();
    }
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The content of the site file at `path` under `root`; `None` when there is none or
/// the path climbs out of the site.
fn site_file(root: &Path, path: &str) -> Option<Vec<u8>> {
    if path.split('/').any(|segment| segment == "..") {
        return None;
    }
    std::fs::read(root.join(path)).ok()
}

fn respond(root: &Path, path: &str, fault: Option<Fault>) -> tiny_http::ResponseBox {
    if let Some(Fault::Status(code)) = fault {
        return tiny_http::Response::empty(code).boxed();
    }
    if let Some(Fault::Replace(bytes)) = fault {
        return tiny_http::Response::from_data(bytes).boxed();
    }
    let Some(mut bytes) = site_file(root, path) else {
        return tiny_http::Response::empty(404).boxed();
    };
    match fault {
        Some(Fault::Truncate(n)) => bytes.truncate(n),
        Some(Fault::Corrupt) => {
            let middle = bytes.len() / 2;
            if let Some(byte) = bytes.get_mut(middle) {
                *byte ^= 0xff;
            }
        }
        Some(Fault::Extend(n)) => bytes.extend(std::iter::repeat_n(b'A', n)),
        _ => {}
    }
    tiny_http::Response::from_data(bytes).boxed()
}

/// Sends `bytes` as a `200 OK` response `chunk` bytes at a time, flushing each after
/// `pause`; stops when the client hangs up. tiny_http buffers what a response's
/// reader gives, so the response is written by hand.
fn trickle(request: tiny_http::Request, bytes: &[u8], chunk: usize, pause: Duration) {
    let mut writer = request.into_writer();
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
        bytes.len()
    );
    if writer
        .write_all(head.as_bytes())
        .and_then(|()| writer.flush())
        .is_err()
    {
        return;
    }
    for piece in bytes.chunks(chunk.max(1)) {
        std::thread::sleep(pause);
        if writer
            .write_all(piece)
            .and_then(|()| writer.flush())
            .is_err()
        {
            return;
        }
    }
}
