//! An in-process HTTP server (tiny_http) that serves a site folder and injects faults
//! into chosen files: wrong bytes, short bodies, extra bytes, error statuses, or a
//! different file's content.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
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
                    let _ = request.respond(respond(&root, &path, fault));
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
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn respond(root: &Path, path: &str, fault: Option<Fault>) -> tiny_http::ResponseBox {
    let file: PathBuf = root.join(path);
    let not_found = || tiny_http::Response::empty(404).boxed();
    if path.split('/').any(|segment| segment == "..") {
        return not_found();
    }
    if let Some(Fault::Status(code)) = fault {
        return tiny_http::Response::empty(code).boxed();
    }
    if let Some(Fault::Replace(bytes)) = fault {
        return tiny_http::Response::from_data(bytes).boxed();
    }
    let Ok(mut bytes) = std::fs::read(&file) else {
        return not_found();
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
