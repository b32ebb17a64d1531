//! A latency-injecting TCP proxy on 127.0.0.1: a model of a distant S3 endpoint.
//!
//! # What it does, exactly
//!
//! [`LatencyProxy::start`] binds `127.0.0.1:0` and, for every accepted connection, opens one
//! connection to the upstream address (the S3 server) and copies bytes both ways. Both sockets
//! have `TCP_NODELAY` set. Each direction is a pipe with a fixed **one-way delay of D/2**:
//!
//! - a reader task stamps every chunk it reads with `arrival + D/2` and queues it;
//! - a writer task forwards the chunks in order, each not before its stamp.
//!
//! So every byte reaches the other side D/2 after the proxy received it, however many chunks
//! are in flight: the delays overlap like propagation delay on a real link (they do not add
//! up per chunk, and bandwidth is not limited). A request/response exchange therefore costs
//! one round trip of D on top of the server's own time, whatever the sizes: a 300 KB listing
//! page pays D once, like a small GET. Concurrent requests on separate connections are
//! delayed independently, so N requests in flight cost about D, not N × D.
//!
//! Not modelled: the TCP and TLS handshakes (a connection is usable at once; both gc-audit and
//! the registry keep connections alive, so this matters only for the first request of each
//! connection), bandwidth, loss. A half-close is forwarded after the data queued before it.
//! At most 64 chunks (up to 4 MiB) are queued per direction; beyond that the reader waits,
//! which keeps TCP back-pressure end to end.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

const CHUNK: usize = 64 * 1024;
const QUEUE: usize = 64;

/// A running proxy. Dropping it stops accepting and closes every connection.
#[derive(Debug)]
pub struct LatencyProxy {
    addr: SocketAddr,
    connections: Arc<AtomicU64>,
    shutdown: Option<watch::Sender<bool>>,
    thread: Option<JoinHandle<()>>,
}

impl LatencyProxy {
    /// Listen on `127.0.0.1:0` and forward to `upstream`, adding `round_trip` per
    /// request/response exchange (`round_trip / 2` each way). Runs on its own thread and
    /// tokio runtime (`workers` threads).
    pub fn start(upstream: SocketAddr, round_trip: Duration, workers: usize) -> io::Result<Self> {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers.max(1))
            .thread_name("latency-proxy")
            .enable_all()
            .build()?;
        let listener = {
            let _guard = runtime.enter();
            TcpListener::from_std(listener)?
        };
        let (tx, rx) = watch::channel(false);
        let connections = Arc::new(AtomicU64::new(0));
        let counter = connections.clone();
        let one_way = round_trip / 2;
        let thread = std::thread::Builder::new()
            .name("latency-proxy-main".to_string())
            .spawn(move || {
                runtime.block_on(accept_loop(listener, upstream, one_way, counter, rx));
                runtime.shutdown_background();
            })?;
        Ok(LatencyProxy {
            addr,
            connections,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }
}

impl Drop for LatencyProxy {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(true);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    one_way: Duration,
    connections: Arc<AtomicU64>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((client, _)) = accepted else { continue };
                connections.fetch_add(1, Ordering::Relaxed);
                let stop = shutdown.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        _ = relay(client, upstream, one_way) => {}
                        _ = wait_stop(stop) => {}
                    }
                });
            }
            _ = shutdown.changed() => break,
        }
    }
}

async fn wait_stop(mut stop: watch::Receiver<bool>) {
    while !*stop.borrow() {
        if stop.changed().await.is_err() {
            return;
        }
    }
}

async fn relay(client: TcpStream, upstream: SocketAddr, one_way: Duration) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        return; // dropping `client` closes it: the caller sees a reset, as with a dead server
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    tokio::join!(pipe(cr, sw, one_way), pipe(sr, cw, one_way));
}

/// Copy `from` to `to`, each chunk `delay` after it was read, in order.
async fn pipe(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, delay: Duration) {
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(QUEUE);
    let reader = async move {
        let mut buf = vec![0u8; CHUNK];
        loop {
            match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let due = Instant::now() + delay;
                    if tx.send((due, buf[..n].to_vec())).await.is_err() {
                        break;
                    }
                }
            }
        }
        // Dropping `tx` ends the writer after the queued chunks.
    };
    let writer = async move {
        while let Some((due, data)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&data).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(reader, writer);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// An echo server on 127.0.0.1 (one connection at a time, echoes until EOF).
    fn echo_server() -> SocketAddr {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let mut s = s.unwrap();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    loop {
                        match s.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                if s.write_all(&buf[..n]).is_err() {
                                    break;
                                }
                            }
                        }
                    }
                });
            }
        });
        addr
    }

    #[test]
    fn each_exchange_costs_one_round_trip() {
        let proxy = LatencyProxy::start(echo_server(), Duration::from_millis(40), 1).unwrap();
        let mut c = std::net::TcpStream::connect(proxy.addr).unwrap();
        c.set_nodelay(true).unwrap();
        let mut buf = [0u8; 5];
        // Warm-up exchange, then time five sequential exchanges.
        c.write_all(b"hello").unwrap();
        c.read_exact(&mut buf).unwrap();
        let t = std::time::Instant::now();
        for _ in 0..5 {
            c.write_all(b"hello").unwrap();
            c.read_exact(&mut buf).unwrap();
            assert_eq!(&buf, b"hello");
        }
        let per = t.elapsed() / 5;
        assert!(per >= Duration::from_millis(40), "{per:?}");
        assert!(per < Duration::from_millis(70), "{per:?}");
        assert_eq!(proxy.connections(), 1);
    }

    #[test]
    fn large_transfers_pay_the_delay_once() {
        let proxy = LatencyProxy::start(echo_server(), Duration::from_millis(40), 1).unwrap();
        let mut c = std::net::TcpStream::connect(proxy.addr).unwrap();
        let data: Vec<u8> = (0..2_000_000u32).map(|i| (i % 251) as u8).collect();
        let t = std::time::Instant::now();
        let mut w = c.try_clone().unwrap();
        let sent = data.clone();
        let h = std::thread::spawn(move || w.write_all(&sent).unwrap());
        let mut got = vec![0u8; data.len()];
        c.read_exact(&mut got).unwrap();
        h.join().unwrap();
        assert_eq!(got, data);
        // Dozens of chunks each way: far less than one delay per chunk.
        assert!(
            t.elapsed() < Duration::from_millis(600),
            "{:?}",
            t.elapsed()
        );
    }
}
