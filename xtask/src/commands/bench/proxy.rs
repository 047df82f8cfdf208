//! A TCP proxy on 127.0.0.1 that delays every byte by a fixed time in each direction, so a
//! benchmark sees the round trips of a real network (there is no netem on these machines): with
//! 15 ms each way a query costs 30 ms more, a TLS + SCRAM login several times that. It models
//! latency, not bandwidth; bytes keep their order. It counts the connections it accepts, which is
//! how the bench knows how many a run opened to the target, and the round trips on them: each time
//! a client sends after the server last spoke on that connection (TLS and login exchanges count).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

pub struct DelayProxy {
    pub port: u16,
    accepted: Arc<AtomicUsize>,
    turns: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl DelayProxy {
    /// Listen on a free 127.0.0.1 port and forward to `upstream`, each direction `one_way` late.
    pub fn start(upstream: SocketAddr, one_way: Duration) -> Result<DelayProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").context("binding the delay proxy")?;
        let port = listener.local_addr()?.port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let turns = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (count, turned, stopping) = (accepted.clone(), turns.clone(), stop.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                count.fetch_add(1, Ordering::SeqCst);
                let Ok(server) = TcpStream::connect(upstream) else { continue };
                for s in [&client, &server] {
                    let _ = s.set_nodelay(true);
                }
                let (Ok(client2), Ok(server2)) = (client.try_clone(), server.try_clone()) else { continue };
                // Who spoke last on this connection: a client that speaks after the server
                // starts a round trip.
                let last = Arc::new(AtomicU8::new(SERVER));
                pipe(client, server2, one_way, Turns { me: CLIENT, last: last.clone(), count: Some(turned.clone()) });
                pipe(server, client2, one_way, Turns { me: SERVER, last, count: None });
            }
        });
        Ok(DelayProxy { port, accepted, turns, stop })
    }

    /// Round trips so far, on all connections.
    pub fn round_trips(&self) -> usize {
        self.turns.load(Ordering::SeqCst)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port)); // wake the accept loop
    }
}

const CLIENT: u8 = 0;
const SERVER: u8 = 1;

/// One direction's part in counting a connection's round trips.
struct Turns {
    me: u8,
    last: Arc<AtomicU8>,
    /// The client's side counts.
    count: Option<Arc<AtomicUsize>>,
}

/// Copy `from` to `to`, each chunk released `delay` after it arrived. A reader thread stamps the
/// chunks; a writer thread waits for each stamp, so a slow write does not delay the reading.
fn pipe(mut from: TcpStream, mut to: TcpStream, delay: Duration, turns: Turns) {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => {
                    let _ = tx.send((Instant::now() + delay, Vec::new()));
                    return;
                }
                Ok(n) => {
                    if turns.last.swap(turns.me, Ordering::SeqCst) != turns.me {
                        if let Some(count) = &turns.count {
                            count.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    if tx.send((Instant::now() + delay, buf[..n].to_vec())).is_err() {
                        return;
                    }
                }
            }
        }
    });
    std::thread::spawn(move || {
        for (due, chunk) in rx {
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            if chunk.is_empty() {
                let _ = to.shutdown(Shutdown::Write);
                return;
            }
            if to.write_all(&chunk).is_err() {
                let _ = to.shutdown(Shutdown::Both);
                return;
            }
        }
    });
}
