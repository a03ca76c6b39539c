//! The writer: frames made by an [`Encode`], gathered and written out to a plain TCP half or
//! any byte stream.

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;

use super::{Encode, FrameWriter};
use longlink_wire::LenCodec;

/// Frames out, to a plain TCP half or any byte stream.
pub(crate) struct StreamWriter<W = OwnedWriteHalf, E = LenCodec> {
    half: W,
    encoder: E,
    buf: BytesMut,
}

/// Most bytes of a frame written at once from the stack ([`FrameWriter::write_now`]).
const DIRECT_MAX: usize = 1024;

/// Whether a half's `poll_write` is the socket's own write, so that a frame it took is sent
/// (a plain TCP half); a TLS half only buffers it until its flush.
pub(crate) trait DirectWrite {
    const DIRECT: bool;
}

impl DirectWrite for OwnedWriteHalf {
    const DIRECT: bool = true;
}

impl<T> DirectWrite for tokio::io::WriteHalf<T> {
    const DIRECT: bool = false;
}

impl<W: AsyncWrite + Unpin + Send + 'static, E: Encode> StreamWriter<W, E> {
    pub(crate) fn new(half: W, encoder: E) -> Self {
        StreamWriter {
            half,
            encoder,
            buf: BytesMut::new(),
        }
    }
}

impl<W: AsyncWrite + DirectWrite + Unpin + Send + 'static, E: Encode> FrameWriter
    for StreamWriter<W, E>
{
    fn push(&mut self, payload: Bytes) {
        self.encoder.payload(&payload, &mut self.buf);
    }

    /// The frame is made in a stack buffer and sent from there: a reply that the socket
    /// takes at once (the common one) needs no write buffer, which an idle connection does
    /// not keep and a busy one would otherwise allocate and free for every message.
    fn write_now(&mut self, payload: Bytes) {
        let mut stack = [0u8; DIRECT_MAX];
        let framed = match self.encoder.frame_into(&payload, &mut stack) {
            Some(n) if W::DIRECT && self.buf.is_empty() => n,
            _ => return self.push(payload),
        };
        let frame = &stack[..framed];
        let mut cx = Context::from_waker(std::task::Waker::noop());
        match Pin::new(&mut self.half).poll_write(&mut cx, frame) {
            Poll::Ready(Ok(n)) if n == framed => {}
            // Part of it, none (the socket's buffer is full) or an error: the rest is
            // gathered, and the flush that follows writes it or meets the error again.
            Poll::Ready(Ok(n)) => self.buf.extend_from_slice(&frame[n..]),
            Poll::Ready(Err(_)) | Poll::Pending => self.buf.extend_from_slice(frame),
        }
    }

    fn push_ping(&mut self) {
        self.encoder.ping(&mut self.buf);
    }

    fn push_pong(&mut self, payload: &[u8]) {
        self.encoder.pong(payload, &mut self.buf);
    }

    fn has_pending(&self) -> bool {
        !self.buf.is_empty()
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        // `poll_write` of the one slice (a `send`, where a vectored write makes a `writev`),
        // advancing past what was written: an interrupted flush resends nothing.
        while !self.buf.is_empty() {
            let n = ready!(Pin::new(&mut self.half).poll_write(cx, &self.buf))?;
            if n == 0 {
                return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
            }
            self.buf.advance(n);
        }
        ready!(Pin::new(&mut self.half).poll_flush(cx))?;
        // Nothing left to write: give the buffer back while idle.
        self.buf = BytesMut::new();
        Poll::Ready(Ok(()))
    }

    async fn finish(&mut self, close_code: u16) {
        self.encoder.close(close_code, &mut self.buf);
        if !self.buf.is_empty() {
            let flush = std::future::poll_fn(|cx| self.poll_flush(cx));
            if !matches!(
                tokio::time::timeout(Duration::from_secs(1), flush).await,
                Ok(Ok(()))
            ) {
                return;
            }
        }
        let _ = self.half.shutdown().await;
    }
}
