//! The readers: [`TcpReader`] on a plain TCP socket's readiness, [`StreamReader`] on any byte
//! stream (TLS), both cutting frames with a [`Decode`].

use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};
use tokio::net::tcp::OwnedReadHalf;

use super::{Decode, FrameReader, Incoming, READ_CHUNK, ReadError};
use longlink_wire::LenCodec;

/// Frames being assembled from a byte stream: the part both readers share.
struct Frames<D> {
    decoder: D,
    buf: BytesMut,
    /// The frame begun was reported ([`Incoming::Partial`]).
    reported: bool,
}

impl<D: Decode> Frames<D> {
    fn new(decoder: D, buffered: &[u8]) -> Self {
        Frames {
            decoder,
            buf: BytesMut::from(buffered),
            reported: false,
        }
    }

    /// Whether part of a frame (or of a fragmented message) is held.
    fn partial(&self) -> bool {
        !self.buf.is_empty() || self.decoder.in_message()
    }

    /// Before a wait for more bytes: true once for each frame begun (and not finished), so
    /// that the connection can start the frame's deadline (`read_timeout`).
    fn newly_begun(&mut self) -> bool {
        let partial = self.partial();
        let report = partial && !self.reported;
        self.reported = partial;
        report
    }

    /// What the buffer gives without reading: a whole frame if one is there, else
    /// [`Incoming::Partial`] once for a frame begun; `None`: read more.
    fn ready(&mut self) -> Result<Option<Incoming>, ReadError> {
        if let Some(frame) = self.decoder.decode(&mut self.buf)? {
            return Ok(Some(frame));
        }
        Ok(self.newly_begun().then_some(Incoming::Partial))
    }

    /// Makes room for the next read.
    fn reserve(&mut self) {
        let spare = self.buf.capacity() - self.buf.len();
        let wanted = self.decoder.wanted(&self.buf);
        if wanted > spare {
            self.buf.reserve(wanted);
        } else if spare < READ_CHUNK / 4 {
            self.buf.reserve(READ_CHUNK);
        }
    }

    /// What a read of `n` bytes means: `Some` at the end of the stream.
    fn after_read(&self, n: usize) -> Option<Result<Incoming, ReadError>> {
        match n {
            0 if self.buf.is_empty() => Some(self.decoder.at_eof()),
            0 => Some(Err(ReadError::Protocol("eof inside a frame".into()))),
            _ => None,
        }
    }
}

/// Frames from a plain TCP socket.
pub(crate) struct TcpReader<D = LenCodec> {
    half: OwnedReadHalf,
    frames: Frames<D>,
}

impl<D: Decode> TcpReader<D> {
    /// A reader that starts with `buffered`, the bytes read past a handshake.
    pub(crate) fn new(half: OwnedReadHalf, decoder: D, buffered: &[u8]) -> Self {
        TcpReader {
            half,
            frames: Frames::new(decoder, buffered),
        }
    }

    /// Waits until the socket is readable, then reads what it has: into a stack buffer when
    /// no partial frame is held (the frames then take an allocation of exactly the bytes
    /// read, not a 4 KiB buffer), else onto the partial frame. A read through `poll_read`
    /// lets tokio clear the readiness after a short read, which saves the `recv` that would
    /// only say `EAGAIN` before the next wait (one per message in a ping-pong).
    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<Read>> {
        let stream: &tokio::net::TcpStream = self.half.as_ref();
        ready!(stream.poll_read_ready(cx))?;
        let half = Pin::new(&mut self.half);
        if self.frames.buf.is_empty() {
            let mut stack = [MaybeUninit::<u8>::uninit(); READ_CHUNK];
            let mut read = ReadBuf::uninit(&mut stack);
            ready!(half.poll_read(cx, &mut read))?;
            if let Some(frame) = self.frames.decoder.exactly_one(read.filled()) {
                return Poll::Ready(Ok(Read::Frame(frame)));
            }
            self.frames.buf.extend_from_slice(read.filled());
            Poll::Ready(Ok(Read::Bytes(read.filled().len())))
        } else {
            self.frames.reserve();
            tokio_util::io::poll_read_buf(half, cx, &mut self.frames.buf).map_ok(Read::Bytes)
        }
    }
}

/// What a read gave: bytes buffered, or a whole frame that needed no buffer.
enum Read {
    Bytes(usize),
    Frame(Incoming),
}

impl<D: Decode> FrameReader for TcpReader<D> {
    async fn read_frame(&mut self) -> Result<Incoming, ReadError> {
        loop {
            if let Some(frame) = self.frames.ready()? {
                return Ok(frame);
            }
            // Idle: hold no buffer while waiting for the socket.
            if self.frames.buf.is_empty() && self.frames.buf.capacity() > 0 {
                self.frames.buf = BytesMut::new();
            }
            // One `poll_fn` for the wait and the read: its future is a pointer, where
            // `readable().await` takes 168 bytes in every idle connection's task.
            let n = match std::future::poll_fn(|cx| self.poll_read(cx)).await {
                Ok(Read::Bytes(n)) => n,
                Ok(Read::Frame(frame)) => return Ok(frame),
                Err(e) => return Err(ReadError::Io(e)),
            };
            if let Some(end) = self.frames.after_read(n) {
                return end;
            }
        }
    }

    fn has_buffered(&self) -> bool {
        self.frames.decoder.has_frame(&self.frames.buf)
    }

    fn partial(&self) -> bool {
        self.frames.partial()
    }

    fn set_reset_on_close(&self) {
        let _ = socket2::SockRef::from(self.half.as_ref()).set_linger(Some(Duration::ZERO));
    }
}

/// Frames from any byte stream (over TLS). Unlike [`TcpReader`] it keeps its read buffer
/// while it waits, since a TLS stream has no readiness to wait on first.
pub(crate) struct StreamReader<R, D = LenCodec> {
    half: R,
    frames: Frames<D>,
}

impl<R: AsyncRead + Unpin + Send, D: Decode> StreamReader<R, D> {
    /// A reader that starts with `buffered`, the bytes read past a handshake.
    pub(crate) fn new(half: R, decoder: D, buffered: &[u8]) -> Self {
        StreamReader {
            half,
            frames: Frames::new(decoder, buffered),
        }
    }
}

impl<R: AsyncRead + Unpin + Send, D: Decode> FrameReader for StreamReader<R, D> {
    async fn read_frame(&mut self) -> Result<Incoming, ReadError> {
        loop {
            if let Some(frame) = self.frames.ready()? {
                return Ok(frame);
            }
            self.frames.reserve();
            let n = self
                .half
                .read_buf(&mut self.frames.buf)
                .await
                .map_err(ReadError::Io)?;
            if let Some(end) = self.frames.after_read(n) {
                return end;
            }
        }
    }

    fn has_buffered(&self) -> bool {
        self.frames.decoder.has_frame(&self.frames.buf)
    }

    fn partial(&self) -> bool {
        self.frames.partial()
    }
}
