//! The transport: frames over a byte stream for both listeners, TCP's length-prefixed frames
//! ([`LenCodec`]) and WebSocket frames ([`ws::WsCodec`] in, [`ws::WsEncoder`] out), cut by a
//! [`Decode`] and made by an [`Encode`], with TLS under either ([`tls`]). It owns what the
//! connection task reads and writes through ([`FrameReader`], [`FrameWriter`], [`Incoming`])
//! and its own error ([`ReadError`]), and knows nothing of agents, sessions or the gate.
//!
//! The reader waits for readiness before it reads, reads into a stack buffer when it holds
//! no partial frame, and gives its buffer back whenever it holds none, so an idle connection
//! keeps no read or write buffer.
//!
//! [`read`] holds the readers, [`write`] the writer, [`ws`] the WebSocket handshake and
//! frames; here are the traits both transports plug in and how a socket splits into the two
//! halves.

pub(crate) mod proxy;
mod read;
pub(crate) mod tls;
mod write;
pub(crate) mod ws;

use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::tcp::OwnedWriteHalf;

use longlink_wire::LenCodec;

pub(crate) use read::{StreamReader, TcpReader};
pub(crate) use write::StreamWriter;

/// Why a transport stopped reading. Peer misbehaviour is logged at debug level only.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The peer broke the protocol (bad frame, end of stream inside a frame).
    Protocol(String),
    /// A WebSocket peer broke the protocol, or sent a message over `max_msg_len`: to be
    /// closed with this close code (1002, 1007, or 1009).
    WsRefused(u16, String),
    /// The socket failed (a WebSocket's TCP stream also ends so without a close frame).
    Io(std::io::Error),
}

/// What a transport read.
pub(crate) enum Incoming {
    /// One application payload.
    Payload(Bytes),
    /// A control frame (WebSocket pong): the peer is alive, nothing to decode.
    Control,
    /// A WebSocket ping, with its payload: the peer is alive and wants it back in a pong.
    Ping(Bytes),
    /// Part of a frame came, and the reader waits for the rest (once per frame begun).
    Partial,
    /// A clean end of stream.
    End,
    /// A clean end of stream by which the peer says goodbye for good (a WebSocket close with
    /// code 1000, "normal closure"), where [`End`](Self::End) may be only a drop.
    Final,
}

/// The incoming half of a transport: whole payloads, one at a time.
pub(crate) trait FrameReader: Send {
    /// The next payload or control frame.
    fn read_frame(&mut self) -> impl Future<Output = Result<Incoming, ReadError>> + Send;
    /// Whether a frame may be ready without reading the socket.
    fn has_buffered(&self) -> bool {
        false
    }
    /// Whether part of a frame is held, waiting for the rest.
    fn partial(&self) -> bool {
        false
    }
    /// Makes the close that follows a reset (linger 0), for a connection destroyed.
    fn set_reset_on_close(&self) {}
}

/// The outgoing half of a transport. It gathers payloads, then writes them out together.
pub(crate) trait FrameWriter: Send + 'static {
    /// Gathers one payload for the next flush.
    fn push(&mut self, payload: Bytes);
    /// Writes one payload now, with nothing gathered before it, if the socket takes it at
    /// once; what it does not take is gathered as [`push`](Self::push) would (so
    /// [`has_pending`](Self::has_pending) says whether a flush must follow).
    fn write_now(&mut self, payload: Bytes) {
        self.push(payload);
    }
    /// Gathers a keep-alive ping (WebSocket only).
    fn push_ping(&mut self) {}
    /// Gathers the answer to the peer's ping (WebSocket only).
    fn push_pong(&mut self, _payload: &[u8]) {}
    /// Whether anything is gathered.
    fn has_pending(&self) -> bool;
    /// Writes out what `push` gathered, and releases buffers it no longer needs. Keeps its
    /// progress in `self`: a flush interrupted at `Pending` resumes where it stopped, and
    /// polling with a waker that does nothing, then again with the task's, is allowed.
    ///
    /// A poll function rather than an `async fn`: the connection keeps no write future in
    /// its state, and the common flush that completes at once is tried inline.
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>>;
    /// Ends the stream gracefully after the last flush (FIN, or a WebSocket close frame
    /// with `close_code`).
    fn finish(&mut self, close_code: u16) -> impl Future<Output = ()> + Send;
}

/// Room reserved for a read when no partial frame says how much is coming.
const READ_CHUNK: usize = 4096;

/// How a transport cuts payloads out of the bytes read.
pub(crate) trait Decode: Send + 'static {
    /// Takes the next payload or control frame off the front of `buf`, if a whole one is
    /// there.
    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Incoming>, ReadError>;
    /// Whether `buf` holds a whole frame.
    fn has_frame(&self, buf: &BytesMut) -> bool;
    /// How many more bytes the frame begun in `buf` needs at least (0: unknown), so that a
    /// big frame is read into one reservation.
    fn wanted(&self, _buf: &BytesMut) -> usize {
        0
    }
    /// What the end of the stream means with nothing buffered.
    fn at_eof(&self) -> Result<Incoming, ReadError> {
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
    /// Writes one payload's frame to the front of `out` and says how long it is, if the
    /// transport can and it fits; `None`: [`payload`](Self::payload) it instead.
    fn frame_into(&self, _payload: &[u8], _out: &mut [u8]) -> Option<usize> {
        None
    }
}

impl Decode for LenCodec {
    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Incoming>, ReadError> {
        match LenCodec::decode(self, buf) {
            Ok(frame) => Ok(frame.map(Incoming::Payload)),
            Err(e) => Err(ReadError::Protocol(e.to_string())),
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

    fn frame_into(&self, payload: &[u8], out: &mut [u8]) -> Option<usize> {
        self.encode_to_slice(payload, out)
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

pub(crate) use tls::TlsStream;

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
