//! PRA patch: a read buffer in front of a session's socket that holds
//! memory only while it holds data.
//!
//! Upstream read every packet with two reads on the socket (its length,
//! then the rest) and a third that found nothing. This takes what the
//! socket has, up to [`READ_BUFFER`] bytes, when asked for less, so small
//! packets that arrived together come in one read. Unlike
//! `tokio::io::BufReader`, whose buffer lives as long as the reader, the
//! buffer here is allocated for a read and freed once it is empty: an idle
//! session, parked in a read that returned `Pending`, holds none (a gateway
//! keeps thousands of them). A read of at least [`READ_BUFFER`] bytes
//! with nothing buffered goes to the socket directly, so a bulk packet is
//! copied once more only for the part that came in with the read before it.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, ReadBuf};

/// Most bytes taken from the socket by one buffered read.
pub(crate) const READ_BUFFER: usize = 4096;

/// `inner`, read through a buffer that exists only while it has data.
pub(crate) struct ReadBuffer<R> {
    inner: R,
    /// Bytes read from `inner` and not yet handed out: `buf[pos..]`.
    buf: Vec<u8>,
    pos: usize,
}

impl<R> ReadBuffer<R> {
    pub(crate) fn new(inner: R) -> Self {
        ReadBuffer {
            inner,
            buf: Vec::new(),
            pos: 0,
        }
    }

    /// Hand out what is buffered, up to `out`'s room; free the buffer once
    /// it is empty.
    fn take(&mut self, out: &mut ReadBuf<'_>) {
        let n = (self.buf.len() - self.pos).min(out.remaining());
        #[allow(clippy::indexing_slicing)] // pos + n <= buf.len()
        out.put_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        if self.pos == self.buf.len() {
            self.buf = Vec::new();
            self.pos = 0;
        }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for ReadBuffer<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.pos < this.buf.len() {
            this.take(out);
            return Poll::Ready(Ok(()));
        }
        if out.remaining() >= READ_BUFFER {
            return Pin::new(&mut this.inner).poll_read(cx, out);
        }
        let mut buf = vec![0u8; READ_BUFFER];
        let mut read = ReadBuf::new(&mut buf);
        // On `Pending` the buffer is dropped: an idle reader holds nothing.
        ready!(Pin::new(&mut this.inner).poll_read(cx, &mut read))?;
        // Nothing is buffered here (`take` empties `buf` and `pos` together),
        // so the bytes read become the buffer; at EOF (0 bytes) it is dropped.
        let n = read.filled().len();
        if n > 0 {
            buf.truncate(n);
            this.buf = buf;
            this.take(out);
        }
        Poll::Ready(Ok(()))
    }
}

/// Checks for a workspace's tests (this vendored copy has no
/// dev-dependencies): reads through [`ReadBuffer`] of a stream that
/// arrives in pieces of every size give back the same bytes, for reads of
/// every size; EOF is passed on. `Err` names the first difference.
#[doc(hidden)]
pub fn self_check() -> Result<(), String> {
    use tokio::io::AsyncReadExt;
    let data: Vec<u8> = (0..3 * READ_BUFFER + 123).map(|i| (i * 7 + i / 251) as u8).collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| e.to_string())?;
    for piece in [1, 5, 36, 1000, READ_BUFFER - 1, READ_BUFFER, READ_BUFFER + 1, 70_000] {
        for want in [1, 4, 31, 500, READ_BUFFER - 1, READ_BUFFER, 9_000] {
            let (mut tx, rx) = tokio::io::duplex(piece);
            let sent = data.clone();
            let got: Result<Vec<u8>, String> = rt.block_on(async move {
                let writer = async move {
                    use tokio::io::AsyncWriteExt;
                    for c in sent.chunks(piece) {
                        tx.write_all(c).await.map_err(|e| e.to_string())?;
                    }
                    Ok::<(), String>(())
                };
                let reader = async move {
                    let mut r = ReadBuffer::new(rx);
                    let mut got = Vec::new();
                    let mut chunk = vec![0u8; want];
                    loop {
                        let n = r.read(&mut chunk).await.map_err(|e| e.to_string())?;
                        if n == 0 {
                            break;
                        }
                        got.extend_from_slice(chunk.get(..n).unwrap_or_default());
                    }
                    Ok::<Vec<u8>, String>(got)
                };
                let (w, got) = tokio::join!(writer, reader);
                w?;
                got
            });
            let got = got?;
            if got != data {
                return Err(format!(
                    "pieces of {piece}, reads of {want}: {} bytes back, first difference at {:?}",
                    got.len(),
                    got.iter().zip(&data).position(|(a, b)| a != b)
                ));
            }
        }
    }
    Ok(())
}
