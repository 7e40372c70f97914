//! A TCP proxy that forwards a server's replies at a fixed, slow rate, so a
//! test can act while a download is in the middle.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// A running proxy on `127.0.0.1:<port>`; stops when dropped.
pub struct SlowProxy {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    forwarded: Arc<AtomicU64>,
    streams: Arc<Mutex<Vec<TcpStream>>>,
    accept: Option<JoinHandle<()>>,
}

const CHUNK: usize = 8 * 1024;

impl SlowProxy {
    /// Forwards connections to `target` (`HOST:PORT`), replies at most
    /// `bytes_per_sec`.
    pub fn start(target: &str, bytes_per_sec: u64) -> SlowProxy {
        let listener =
            TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind the slow proxy: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("slow proxy address: {e}"));
        let stop = Arc::new(AtomicBool::new(false));
        let forwarded = Arc::new(AtomicU64::new(0));
        let streams = Arc::new(Mutex::new(Vec::new()));
        let target = target.to_string();
        let accept = {
            let (stop, forwarded, streams) = (stop.clone(), forwarded.clone(), streams.clone());
            std::thread::spawn(move || {
                for client in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(client) = client else { continue };
                    let Ok(upstream) = TcpStream::connect(&target) else {
                        continue;
                    };
                    let clones = (
                        client.try_clone(),
                        upstream.try_clone(),
                        client.try_clone(),
                        upstream.try_clone(),
                    );
                    let (Ok(to_client), Ok(from_upstream), Ok(keep_c), Ok(keep_u)) = clones else {
                        continue;
                    };
                    if let Ok(mut s) = streams.lock() {
                        s.push(keep_c);
                        s.push(keep_u);
                    }
                    std::thread::spawn(move || pump(client, upstream, None, None));
                    let forwarded = forwarded.clone();
                    std::thread::spawn(move || {
                        pump(
                            from_upstream,
                            to_client,
                            Some(bytes_per_sec),
                            Some(forwarded),
                        )
                    });
                }
            })
        };
        SlowProxy {
            addr,
            stop,
            forwarded,
            streams,
            accept: Some(accept),
        }
    }

    /// `127.0.0.1:PORT`, to put in an image reference instead of the
    /// registry's address.
    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// Bytes forwarded from the server to clients so far.
    pub fn bytes_forwarded(&self) -> u64 {
        self.forwarded.load(Ordering::SeqCst)
    }
}

/// Copies `from` to `to`, at most `rate` bytes a second when given.
fn pump(mut from: TcpStream, mut to: TcpStream, rate: Option<u64>, count: Option<Arc<AtomicU64>>) {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
        if let Some(c) = &count {
            c.fetch_add(n as u64, Ordering::SeqCst);
        }
        if let Some(rate) = rate {
            std::thread::sleep(Duration::from_secs_f64(n as f64 / rate.max(1) as f64));
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

impl Drop for SlowProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
        if let Ok(streams) = self.streams.lock() {
            for s in streams.iter() {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }
}
