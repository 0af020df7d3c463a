//! A userspace delay proxy for the delayed-link case (where `tc netem` is
//! not available): it forwards TCP connections to one upstream address and
//! delays each direction by half the round trip. Bandwidth is unlimited and
//! the order of bytes kept: every read is queued with the time it may leave
//! and written when that time has come.

use anyhow::Result;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// A running proxy; stops when dropped.
pub(crate) struct Proxy {
    port: u16,
    rt: Option<tokio::runtime::Runtime>,
}

impl Proxy {
    /// Listen on 127.0.0.1 (a free port) and forward every connection to
    /// `upstream`, each direction `one_way` late.
    pub(crate) fn start(upstream: SocketAddr, one_way: Duration) -> Result<Proxy> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let listener = rt.block_on(TcpListener::bind("127.0.0.1:0"))?;
        let port = listener.local_addr()?.port();
        rt.spawn(async move {
            while let Ok((down, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let Ok(up) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let _ = (down.set_nodelay(true), up.set_nodelay(true));
                    let (dr, dw) = down.into_split();
                    let (ur, uw) = up.into_split();
                    tokio::join!(carry(dr, uw, one_way), carry(ur, dw, one_way));
                });
            }
        });
        Ok(Proxy { port, rt: Some(rt) })
    }

    /// The port it listens on.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// One direction: read at once, write each chunk `delay` after it was read.
async fn carry(mut rd: OwnedReadHalf, mut wr: OwnedWriteHalf, delay: Duration) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let reader = async move {
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx
                        .send((Instant::now() + delay, buf[..n].to_vec()))
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
    };
    let writer = async move {
        while let Some((at, chunk)) = rx.recv().await {
            tokio::time::sleep_until(at).await;
            if wr.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = wr.shutdown().await;
    };
    tokio::join!(reader, writer);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn delays_a_round_trip_and_keeps_the_bytes() {
        let echo = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = echo.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = echo.accept().unwrap();
            let mut b = [0u8; 65536];
            loop {
                let n = s.read(&mut b).unwrap();
                if n == 0 {
                    break;
                }
                s.write_all(&b[..n]).unwrap();
            }
        });
        let p = Proxy::start(addr, Duration::from_millis(50)).unwrap();
        let mut c = std::net::TcpStream::connect(("127.0.0.1", p.port())).unwrap();
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        let t = std::time::Instant::now();
        c.write_all(&data).unwrap();
        let mut back = vec![0u8; data.len()];
        c.read_exact(&mut back).unwrap();
        let took = t.elapsed();
        assert!(back == data);
        assert!(took >= Duration::from_millis(100), "{took:?}");
        assert!(took < Duration::from_secs(10), "{took:?}");
    }
}
