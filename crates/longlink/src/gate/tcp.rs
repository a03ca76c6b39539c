//! TCP transport: length-prefixed frames ([`LenCodec`]).
//!
//! The reader waits for readiness before it allocates, and gives its buffer back whenever it
//! holds no partial frame, so an idle connection keeps no read or write buffer.

use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use super::conn::{FrameReader, FrameWriter, Incoming, ReadEnd};
use longlink_wire::LenCodec;

/// Room reserved for a read when no partial frame says how much is coming.
const READ_CHUNK: usize = 4096;

/// Frames being assembled from a byte stream: the part both TCP readers share.
struct Frames {
    codec: LenCodec,
    buf: BytesMut,
}

impl Frames {
    fn new(codec: LenCodec) -> Self {
        Frames {
            codec,
            buf: BytesMut::new(),
        }
    }

    /// A whole frame off the buffer, if one is there.
    fn next(&mut self) -> Result<Option<Incoming>, ReadEnd> {
        match self.codec.decode(&mut self.buf) {
            Ok(frame) => Ok(frame.map(Incoming::Payload)),
            Err(e) => Err(ReadEnd::Protocol(e.to_string())),
        }
    }

    /// Makes room for the next read.
    fn reserve(&mut self) {
        if self.buf.capacity() - self.buf.len() < READ_CHUNK / 4 {
            self.buf.reserve(READ_CHUNK);
        }
    }

    /// What a read of `n` bytes means: `Some` at the end of the stream.
    fn after_read(&self, n: usize) -> Option<Result<Incoming, ReadEnd>> {
        match n {
            0 if self.buf.is_empty() => Some(Ok(Incoming::End)),
            0 => Some(Err(ReadEnd::Protocol("eof inside a frame".into()))),
            _ => None,
        }
    }

    fn has_frame(&self) -> bool {
        self.codec.is_complete(&self.buf)
    }
}

pub(crate) struct TcpReader {
    half: OwnedReadHalf,
    frames: Frames,
}

impl TcpReader {
    pub(crate) fn new(half: OwnedReadHalf, codec: LenCodec) -> Self {
        TcpReader {
            half,
            frames: Frames::new(codec),
        }
    }

    /// Waits until the socket is readable, then reads what it has: into a stack buffer when
    /// no partial frame is held (the frames then take an allocation of exactly the bytes
    /// read, not a 4 KiB buffer), else onto the partial frame. A read through `poll_read`
    /// lets tokio clear the readiness after a short read, which saves the `recv` that would
    /// only say `EAGAIN` before the next wait (one per message in a ping-pong).
    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
        let stream: &tokio::net::TcpStream = self.half.as_ref();
        ready!(stream.poll_read_ready(cx))?;
        let half = Pin::new(&mut self.half);
        if self.frames.buf.is_empty() {
            let mut stack = [MaybeUninit::<u8>::uninit(); READ_CHUNK];
            let mut read = ReadBuf::uninit(&mut stack);
            ready!(half.poll_read(cx, &mut read))?;
            self.frames.buf.extend_from_slice(read.filled());
            Poll::Ready(Ok(read.filled().len()))
        } else {
            self.frames.reserve();
            tokio_util::io::poll_read_buf(half, cx, &mut self.frames.buf)
        }
    }
}

impl FrameReader for TcpReader {
    async fn read_frame(&mut self) -> Result<Incoming, ReadEnd> {
        loop {
            if let Some(frame) = self.frames.next()? {
                return Ok(frame);
            }
            // Idle: hold no buffer while waiting for the socket.
            if self.frames.buf.is_empty() && self.frames.buf.capacity() > 0 {
                self.frames.buf = BytesMut::new();
            }
            // One `poll_fn` for the wait and the read: its future is a pointer, where
            // `readable().await` takes 168 bytes in every idle connection's task.
            let n = std::future::poll_fn(|cx| self.poll_read(cx))
                .await
                .map_err(ReadEnd::Io)?;
            if let Some(end) = self.frames.after_read(n) {
                return end;
            }
        }
    }

    fn has_buffered(&self) -> bool {
        self.frames.has_frame()
    }

    fn set_reset_on_close(&self) {
        let _ =
            socket2::SockRef::from(self.half.as_ref()).set_linger(Some(std::time::Duration::ZERO));
    }
}

/// Length-prefixed frames from any byte stream (TCP over TLS). Unlike [`TcpReader`] it keeps
/// its read buffer while it waits, since a TLS stream has no readiness to wait on first.
pub(crate) struct StreamReader<R> {
    half: R,
    frames: Frames,
}

impl<R: AsyncRead + Unpin + Send> StreamReader<R> {
    pub(crate) fn new(half: R, codec: LenCodec) -> Self {
        StreamReader {
            half,
            frames: Frames::new(codec),
        }
    }
}

impl<R: AsyncRead + Unpin + Send> FrameReader for StreamReader<R> {
    async fn read_frame(&mut self) -> Result<Incoming, ReadEnd> {
        loop {
            if let Some(frame) = self.frames.next()? {
                return Ok(frame);
            }
            self.frames.reserve();
            let n = self
                .half
                .read_buf(&mut self.frames.buf)
                .await
                .map_err(ReadEnd::Io)?;
            if let Some(end) = self.frames.after_read(n) {
                return end;
            }
        }
    }

    fn has_buffered(&self) -> bool {
        self.frames.has_frame()
    }
}

/// Length-prefixed frames out, to a plain TCP half or any byte stream.
pub(crate) struct TcpWriter<W = OwnedWriteHalf> {
    half: W,
    codec: LenCodec,
    buf: BytesMut,
}

impl<W: AsyncWrite + Unpin + Send + 'static> TcpWriter<W> {
    pub(crate) fn new(half: W, codec: LenCodec) -> Self {
        TcpWriter {
            half,
            codec,
            buf: BytesMut::new(),
        }
    }
}

impl<W: AsyncWrite + Unpin + Send + 'static> FrameWriter for TcpWriter<W> {
    fn push(&mut self, payload: Bytes) {
        // Lengths were checked when the payload was queued.
        if let Err(e) = self.codec.encode(&payload, &mut self.buf) {
            tracing::debug!(error = %e, "frame not sent");
        }
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

    async fn finish(&mut self, _close_code: u16) {
        let _ = self.half.shutdown().await;
    }
}
