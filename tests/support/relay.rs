//! A TCP relay standing for one machine's network path to the host: it forwards
//! every connection to a server on 127.0.0.1 from an address of its own in
//! 127.0.0.0/8, so the server (nginx) logs each simulated machine under its own
//! address, and it can cut one download off, as a dropped connection does.
//!
//! It moves bytes only: the requests and responses, the statuses and the access
//! log lines are all the real server's. A cut closes both sides after a number of
//! response bytes; the relay's small receive buffer toward the server keeps the
//! server from having handed the kernel the whole body by then, so the server's log
//! shows the short body too.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddrV4, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use rustix::net::{AddressFamily, SocketType, bind, connect, socket, sockopt};

/// The receive buffer toward the server (the kernel doubles it): what the server
/// may have sent beyond a cut is at most this and its own send buffer.
const RECEIVE_BUFFER: usize = 8 * 1024;

/// A relay on 127.0.0.1, stopped on drop.
pub struct Relay {
    pub port: u16,
    stop: Arc<AtomicBool>,
    cuts: Arc<AtomicUsize>,
    /// The response bytes after which the next connection to pass them is cut, or
    /// 0 for none.
    cut_after: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl Relay {
    /// Forwards each connection to 127.0.0.1:`upstream`, connecting from `source`.
    pub fn start(upstream: u16, source: Ipv4Addr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let cuts = Arc::new(AtomicUsize::new(0));
        let cut_after = Arc::new(AtomicU64::new(0));
        let thread = {
            let (stop, cuts, cut_after) = (stop.clone(), cuts.clone(), cut_after.clone());
            std::thread::spawn(move || {
                for client in listener.incoming() {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let Ok(client) = client else { continue };
                    let Ok(server) = connect_from(source, upstream) else {
                        continue;
                    };
                    let (cuts, cut_after) = (cuts.clone(), cut_after.clone());
                    std::thread::spawn(move || relay(client, server, &cut_after, &cuts));
                }
            })
        };
        Self {
            port,
            stop,
            cuts,
            cut_after,
            thread: Some(thread),
        }
    }

    /// Cuts the next response that passes `bytes` there (on its connection), both
    /// sides closed; later ones pass whole.
    pub fn cut_next(&self, bytes: u64) {
        self.cut_after.store(bytes.max(1), Ordering::Relaxed);
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// How many connections it cut.
    pub fn cuts(&self) -> usize {
        self.cuts.load(Ordering::Relaxed)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accepting thread.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A connection to 127.0.0.1:`port` from `source`.
fn connect_from(source: Ipv4Addr, port: u16) -> std::io::Result<TcpStream> {
    let fd = socket(AddressFamily::INET, SocketType::STREAM, None)?;
    sockopt::set_socket_recv_buffer_size(&fd, RECEIVE_BUFFER)?;
    bind(&fd, &SocketAddrV4::new(source, 0))?;
    connect(&fd, &SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))?;
    Ok(TcpStream::from(fd))
}

/// Copies requests up and responses down until either side closes, or cuts the
/// response after `cut_after` bytes when a cut is armed (not 0).
fn relay(client: TcpStream, server: TcpStream, cut_after: &AtomicU64, cuts: &AtomicUsize) {
    let (Ok(mut client_reader), Ok(mut server_writer)) = (client.try_clone(), server.try_clone())
    else {
        return;
    };
    let upward = std::thread::spawn(move || {
        let _ = std::io::copy(&mut client_reader, &mut server_writer);
        let _ = server_writer.shutdown(Shutdown::Write);
    });
    let (mut server, mut client) = (server, client);
    let mut buffer = vec![0u8; 16 * 1024];
    let mut sent = 0u64;
    loop {
        let count = match server.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(count) => count,
        };
        let mut chunk = &buffer[..count];
        let limit = cut_after.load(Ordering::Relaxed);
        if limit > 0
            && sent + count as u64 > limit
            && cut_after
                .compare_exchange(limit, 0, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            chunk = &chunk[..usize::try_from(limit - sent).unwrap_or(0)];
            let _ = client.write_all(chunk);
            cuts.fetch_add(1, Ordering::Relaxed);
            // Closing with linger 0 resets the connection, as a dropped link does:
            // the server's next write fails and it logs what it sent so far.
            let _ = sockopt::set_socket_linger(&server, Some(Duration::ZERO));
            let _ = client.shutdown(Shutdown::Both);
            drop(server);
            break;
        }
        if client.write_all(chunk).is_err() {
            break;
        }
        sent += count as u64;
    }
    let _ = client.shutdown(Shutdown::Both);
    let _ = upward.join();
}
