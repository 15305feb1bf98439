//! A TCP proxy on loopback that holds back every request by a fixed delay before
//! passing it on: a host far away (a CDN at 50 ms round trip) in front of a local
//! server, so benchmarks can count what waiting for each request costs.
//!
//! Each chunk the client sends (a request's headers, in practice) waits `delay`
//! before it is forwarded; answers come back at once. Connections are kept alive as
//! the client keeps them, so a client that reuses its connections pays the delay once
//! per request, not once per connection.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long a blocked read waits before it looks at the stop flag again.
const POLL: Duration = Duration::from_millis(50);

/// A running proxy; stopped (its threads joined) when dropped.
pub struct LatencyProxy {
    address: SocketAddr,
    stop: Arc<AtomicBool>,
    delayed: Arc<AtomicU32>,
    acceptor: Option<JoinHandle<()>>,
}

impl LatencyProxy {
    /// Starts a proxy to `upstream` that delays each request by `delay`.
    pub fn start(upstream: SocketAddr, delay: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let address = listener.local_addr().expect("the proxy's address");
        let stop = Arc::new(AtomicBool::new(false));
        let delayed = Arc::new(AtomicU32::new(0));
        let acceptor = {
            let (stop, delayed) = (Arc::clone(&stop), Arc::clone(&delayed));
            std::thread::spawn(move || accept(&listener, upstream, delay, &stop, &delayed))
        };
        Self {
            address,
            stop,
            delayed,
            acceptor: Some(acceptor),
        }
    }

    /// `http://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.address)
    }

    /// How many chunks of requests were held back so far: the requests, in practice.
    pub fn delayed(&self) -> u32 {
        self.delayed.load(Ordering::SeqCst)
    }
}

impl Drop for LatencyProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// Accepts connections until `stop`, each served by two copying threads.
fn accept(
    listener: &TcpListener,
    upstream: SocketAddr,
    delay: Duration,
    stop: &Arc<AtomicBool>,
    delayed: &Arc<AtomicU32>,
) {
    let mut connections = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((client, _)) => {
                let Ok(server) = TcpStream::connect_timeout(&upstream, Duration::from_secs(5))
                else {
                    continue;
                };
                for stream in [&client, &server] {
                    let _ = stream.set_nonblocking(false);
                    let _ = stream.set_read_timeout(Some(POLL));
                    let _ = stream.set_nodelay(true);
                }
                let (Ok(client_reader), Ok(server_writer)) =
                    (client.try_clone(), server.try_clone())
                else {
                    continue;
                };
                let (delayed, stop_up, stop_down) =
                    (Arc::clone(delayed), Arc::clone(stop), Arc::clone(stop));
                let up = std::thread::spawn(move || {
                    pipe(
                        client_reader,
                        server_writer,
                        &stop_up,
                        Some((delay, &delayed)),
                    );
                });
                let down = std::thread::spawn(move || pipe(server, client, &stop_down, None));
                connections.push((up, down));
            }
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => break,
        }
    }
    for (up, down) in connections {
        let _ = up.join();
        let _ = down.join();
    }
}

/// Copies `from` into `to` until either end closes, the proxy stops, or nothing
/// moves for a while, waiting `delay` before each chunk when given (counting them).
fn pipe(
    mut from: TcpStream,
    mut to: TcpStream,
    stop: &AtomicBool,
    delay: Option<(Duration, &AtomicU32)>,
) {
    let mut buffer = vec![0u8; 64 * 1024];
    let mut idle = Duration::ZERO;
    loop {
        match from.read(&mut buffer) {
            Ok(0) => break,
            Ok(count) => {
                idle = Duration::ZERO;
                if let Some((delay, delayed)) = delay {
                    delayed.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(delay);
                }
                if to.write_all(&buffer[..count]).is_err() {
                    break;
                }
            }
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                // A connection nobody uses for 30 s is over (clients reuse theirs
                // for a few seconds at most).
                idle += POLL;
                if idle > Duration::from_secs(30) || stop.load(Ordering::SeqCst) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    /// An upstream that answers each line it reads with `ok <line>`, on one
    /// connection; returns its address and the thread serving it.
    fn echo_upstream() -> (SocketAddr, JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let thread = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut buffer = [0u8; 64];
            while let Ok(count) = stream.read(&mut buffer) {
                if count == 0 {
                    break;
                }
                let mut answer = b"ok ".to_vec();
                answer.extend_from_slice(&buffer[..count]);
                if stream.write_all(&answer).is_err() {
                    break;
                }
            }
        });
        (address, thread)
    }

    #[test]
    fn each_request_waits_the_delay_and_answers_pass_unchanged() {
        let (upstream, server) = echo_upstream();
        let delay = Duration::from_millis(200);
        let proxy = LatencyProxy::start(upstream, delay);
        let mut stream = TcpStream::connect(proxy.address).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        // Two requests on one kept-alive connection: each pays the delay once.
        for request in ["first\n", "second\n"] {
            let started = Instant::now();
            stream.write_all(request.as_bytes()).unwrap();
            let mut answer = vec![0u8; 3 + request.len()];
            stream.read_exact(&mut answer).unwrap();
            let waited = started.elapsed();
            assert_eq!(answer, format!("ok {request}").into_bytes());
            assert!(waited >= delay, "{waited:?}");
            assert!(waited < delay * 5, "{waited:?}");
        }
        assert_eq!(proxy.delayed(), 2);
        drop(stream);
        drop(proxy);
        server.join().unwrap();
    }
}
