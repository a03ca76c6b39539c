//! Frames over a byte stream, for both transports: TCP's length-prefixed frames
//! ([`LenCodec`]) and WebSocket frames ([`super::ws::WsCodec`] in, [`super::ws::WsEncoder`]
//! out), cut by a [`Decode`] and made by an [`Encode`].
//!
//! The reader waits for readiness before it reads, reads into a stack buffer when it holds
//! no partial frame, and gives its buffer back whenever it holds none, so an idle connection
//! keeps no read or write buffer.
//!
//! [`read`] holds the readers, [`write`] the writer; here are what both transports plug in
//! and how a socket splits into the two.

mod read;
mod write;

use tokio::net::tcp::OwnedWriteHalf;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite};

use super::conn::{FrameReader, FrameWriter, Incoming, ReadEnd};
use longlink_wire::LenCodec;

pub(crate) use read::{StreamReader, TcpReader};
pub(crate) use write::StreamWriter;

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
    /// Writes one payload's frame to the front of `out` and says how long it is, if the
    /// transport can and it fits; `None`: [`payload`](Self::payload) it instead.
    fn frame_into(&self, _payload: &[u8], _out: &mut [u8]) -> Option<usize> {
        None
    }
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

pub(crate) use super::tls::TlsStream;

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
