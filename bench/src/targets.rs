//! `pra-bench targets`: the forward targets in their own process (so they
//! do not share a runtime with the measuring side): an echo server, a
//! firehose (writes forever, never reads) and a black hole (accepts, never
//! reads). Prints `echo PORT`, `firehose PORT`, `blackhole PORT`; exits when
//! its stdin closes, so it never outlives the benchmark.

use anyhow::Result;
use std::io::Write;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Run the targets until stdin closes.
pub(crate) fn run() -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let echo = TcpListener::bind("127.0.0.1:0").await?;
        let firehose = TcpListener::bind("127.0.0.1:0").await?;
        let blackhole = TcpListener::bind("127.0.0.1:0").await?;
        {
            let mut out = std::io::stdout().lock();
            writeln!(out, "echo {}", echo.local_addr()?.port())?;
            writeln!(out, "firehose {}", firehose.local_addr()?.port())?;
            writeln!(out, "blackhole {}", blackhole.local_addr()?.port())?;
            out.flush()?;
        }
        tokio::spawn(async move {
            while let Ok((s, _)) = echo.accept().await {
                let _ = s.set_nodelay(true);
                tokio::spawn(async move {
                    let (mut r, mut w) = s.into_split();
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        match r.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                if w.write_all(&buf[..n]).await.is_err() {
                                    break;
                                }
                            }
                        }
                    }
                    let _ = w.shutdown().await;
                });
            }
        });
        tokio::spawn(async move {
            while let Ok((mut s, _)) = firehose.accept().await {
                tokio::spawn(async move {
                    let chunk = vec![0x5au8; 64 * 1024];
                    while s.write_all(&chunk).await.is_ok() {}
                });
            }
        });
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = blackhole.accept().await {
                held.push(s);
            }
        });
        // Until the benchmark goes away.
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let mut sink = [0u8; 64];
            let mut stdin = std::io::stdin();
            while std::io::Read::read(&mut stdin, &mut sink).unwrap_or(0) > 0 {}
            let _ = tx.send(());
        });
        let _ = rx.await;
        Ok(())
    })
}
