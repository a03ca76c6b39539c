//! Frames over a byte stream, for both transports: TCP's length-prefixed frames
//! ([`LenCodec`]) and WebSocket frames ([`super::ws::WsCodec`] in, [`super::ws::WsEncoder`]
//! out), cut by a [`Decode`] and made by an [`Encode`].
//!
//! The reader waits for readiness before it reads, reads into a stack buffer when it holds
//! no partial frame, and gives its buffer back whenever it holds none, so an idle connection
//! keeps no read or write buffer.

use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use super::conn::{FrameReader, FrameWriter, Incoming, ReadEnd};
use longlink_wire::LenCodec;

/// Room reserved for a read when no partial frame says how much is coming.
const READ_CHUNK: usize = 4096;

/// How a transport cuts payloads out of the bytes read.
pub(crate) trait Decode: Send + 'static {
    /// Takes the next payload or control frame off the front of `buf`, if a whole one is
    /// there.
    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Incoming>, ReadEnd>;
    /// Whether `buf` holds a whole frame.
    fn has_frame(&self, buf: &BytesMut) -> bool;
    /// How many more bytes the frame begun in `buf` needs at least (0: unknown), so that a
    /// big frame is read into one reservation.
    fn wanted(&self, _buf: &BytesMut) -> usize {
        0
    }
    /// What the end of the stream means with nothing buffered.
    fn at_eof(&self) -> Result<Incoming, ReadEnd> {
        Ok(Incoming::End)
    }
    /// Whether the decoder itself holds part of a message (a WebSocket message's first
    /// fragments), with nothing of it left in the buffer.
    fn in_message(&self) -> bool {
        false
    }
    /// The frame that `data`, read with nothing buffered, is exactly, if the transport can
    /// take it without a buffer (one allocation, of the payload, instead of a buffer and
    /// its shared share); `None`: buffer `data` and [`decode`](Self::decode).
    fn exactly_one(&self, _data: &[u8]) -> Option<Incoming> {
        None
    }
}

/// How a transport frames what it writes.
pub(crate) trait Encode: Send + 'static {
    /// Appends one payload's frame.
    fn payload(&self, payload: &[u8], out: &mut BytesMut);
    /// Appends a keep-alive ping, where the transport has one.
    fn ping(&self, _out: &mut BytesMut) {}
    /// Appends the answer to a ping.
    fn pong(&self, _payload: &[u8], _out: &mut BytesMut) {}
    /// Appends the frame that ends the stream with `code`, where the transport has one.
    fn close(&self, _code: u16, _out: &mut BytesMut) {}
}

impl Decode for LenCodec {
    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Incoming>, ReadEnd> {
        match LenCodec::decode(self, buf) {
            Ok(frame) => Ok(frame.map(Incoming::Payload)),
            Err(e) => Err(ReadEnd::Protocol(e.to_string())),
        }
    }

    fn has_frame(&self, buf: &BytesMut) -> bool {
        self.is_complete(buf)
    }

    fn exactly_one(&self, data: &[u8]) -> Option<Incoming> {
        let payload = LenCodec::exactly_one(self, data)?;
        Some(Incoming::Payload(Bytes::copy_from_slice(payload)))
    }
}

impl Encode for LenCodec {
    fn payload(&self, payload: &[u8], out: &mut BytesMut) {
        // Lengths were checked when the payload was queued.
        if let Err(e) = self.encode(payload, out) {
            tracing::debug!(error = %e, "frame not sent");
        }
    }
}

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
    fn ready(&mut self) -> Result<Option<Incoming>, ReadEnd> {
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
    fn after_read(&self, n: usize) -> Option<Result<Incoming, ReadEnd>> {
        match n {
            0 if self.buf.is_empty() => Some(self.decoder.at_eof()),
            0 => Some(Err(ReadEnd::Protocol("eof inside a frame".into()))),
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
    async fn read_frame(&mut self) -> Result<Incoming, ReadEnd> {
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
                Err(e) => return Err(ReadEnd::Io(e)),
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
    async fn read_frame(&mut self) -> Result<Incoming, ReadEnd> {
        loop {
            if let Some(frame) = self.frames.ready()? {
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
        self.frames.decoder.has_frame(&self.frames.buf)
    }

    fn partial(&self) -> bool {
        self.frames.partial()
    }
}

/// Frames out, to a plain TCP half or any byte stream.
pub(crate) struct StreamWriter<W = OwnedWriteHalf, E = LenCodec> {
    half: W,
    encoder: E,
    buf: BytesMut,
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

impl<W: AsyncWrite + Unpin + Send + 'static, E: Encode> FrameWriter for StreamWriter<W, E> {
    fn push(&mut self, payload: Bytes) {
        self.encoder.payload(&payload, &mut self.buf);
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

/// A socket as a reader and a writer of frames: a plain TCP socket's halves wait on its
/// readiness; a TLS stream's are tokio's generic halves.
pub(crate) trait Halves: AsyncRead + AsyncWrite + Unpin + Send + Sized + 'static {
    /// The reading half, cutting frames with `D`.
    type Reader<D: Decode>: FrameReader + 'static;
    /// The writing half, framing with `E`.
    type Writer<E: Encode>: FrameWriter;
    /// Splits the socket; the reader starts with `buffered`, the bytes read past a handshake.
    fn halves<D: Decode, E: Encode>(
        self,
        decoder: D,
        encoder: E,
        buffered: &[u8],
    ) -> (Self::Reader<D>, Self::Writer<E>);
}

impl Halves for tokio::net::TcpStream {
    type Reader<D: Decode> = TcpReader<D>;
    type Writer<E: Encode> = StreamWriter<OwnedWriteHalf, E>;

    fn halves<D: Decode, E: Encode>(
        self,
        decoder: D,
        encoder: E,
        buffered: &[u8],
    ) -> (TcpReader<D>, StreamWriter<OwnedWriteHalf, E>) {
        let (r, w) = self.into_split();
        (
            TcpReader::new(r, decoder, buffered),
            StreamWriter::new(w, encoder),
        )
    }
}

/// A TLS stream over TCP.
pub(crate) type TlsStream = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;

impl Halves for TlsStream {
    type Reader<D: Decode> = StreamReader<tokio::io::ReadHalf<TlsStream>, D>;
    type Writer<E: Encode> = StreamWriter<tokio::io::WriteHalf<TlsStream>, E>;

    fn halves<D: Decode, E: Encode>(
        self,
        decoder: D,
        encoder: E,
        buffered: &[u8],
    ) -> (Self::Reader<D>, Self::Writer<E>) {
        let (r, w) = tokio::io::split(self);
        (
            StreamReader::new(r, decoder, buffered),
            StreamWriter::new(w, encoder),
        )
    }
}
