//! WebSocket transport: one WebSocket message is one payload, no length prefix inside.
//!
//! The HTTP handshake is read by [`request`] so the gate can answer as leaf does: any path,
//! `405` for a method other than GET, `503` over the connection limit, `400` for a plain
//! request (unless the `on_http` hook answers it) or a bad upgrade; all within
//! `http_timeout`. Frames are cut and made by [`frame`] over the byte-stream halves of
//! the transport ([`super`]), as TCP's are, so an idle WebSocket holds no buffer either. Text and
//! binary messages are accepted; replies are binary; an incoming message over `max_msg_len`
//! gets close code 1009.

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;

use super::{Decode, Encode, Halves, Incoming, ReadError};

pub(crate) mod frame;
mod request;

#[cfg(feature = "fuzzing")]
pub(crate) use request::read_request;
pub(crate) use request::{Handshake, answer, read_request_after};

use frame::{CLOSE_BAD_DATA, CLOSE_PROTOCOL, CLOSE_TOO_BIG, WsDecoder, WsEvent};

/// The close code of a normal closure.
const CLOSE_NORMAL: u16 = 1000;

/// Sends the 101 and splits the socket into WebSocket frame halves; the reader starts with
/// `rest`, the bytes the client sent after its request.
pub(crate) async fn accept<S: Halves>(
    mut stream: S,
    accept: &str,
    rest: Vec<u8>,
    max_msg_len: usize,
) -> std::io::Result<(S::Reader<WsCodec>, S::Writer<WsEncoder>)> {
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    stream.write_all(response.as_bytes()).await?;
    Ok(stream.halves(WsCodec::new(max_msg_len), WsEncoder, &rest))
}

/// WebSocket frames in, for the byte-stream reader: a [`WsDecoder`].
pub(crate) struct WsCodec {
    decoder: WsDecoder,
}

impl WsCodec {
    /// A codec whose decoder refuses messages over `max_msg_len`.
    pub(crate) fn new(max_msg_len: usize) -> Self {
        WsCodec {
            decoder: WsDecoder::new(max_msg_len),
        }
    }
}

impl Decode for WsCodec {
    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Incoming>, ReadError> {
        let event = match self.decoder.decode(buf) {
            Ok(Some(event)) => event,
            Ok(None) => return Ok(None),
            Err(e) => return Err(ReadError::WsRefused(e.close_code(), e.to_string())),
        };
        Ok(Some(match event {
            WsEvent::Message(payload) => Incoming::Payload(payload),
            WsEvent::Ping(payload) => Incoming::Ping(payload),
            WsEvent::Pong => Incoming::Control,
            // A normal closure (1000) is the client's "goodbye for good"; any other close is
            // a drop (a resumable session waits).
            WsEvent::Close(Some(CLOSE_NORMAL), _) => Incoming::Final,
            WsEvent::Close(..) => Incoming::End,
        }))
    }

    fn has_frame(&self, buf: &BytesMut) -> bool {
        WsDecoder::has_frame(buf)
    }

    fn wanted(&self, buf: &BytesMut) -> usize {
        self.decoder.wanted(buf)
    }

    fn in_message(&self) -> bool {
        self.decoder.in_message()
    }

    /// The TCP stream ended without a close frame: the socket dropped.
    fn at_eof(&self) -> Result<Incoming, ReadError> {
        Err(ReadError::Io(std::io::ErrorKind::UnexpectedEof.into()))
    }
}

/// WebSocket frames out, for the byte-stream writer: server frames, never masked.
pub(crate) struct WsEncoder;

impl Encode for WsEncoder {
    fn payload(&self, payload: &[u8], out: &mut BytesMut) {
        frame::encode_binary(payload, out);
    }

    fn ping(&self, out: &mut BytesMut) {
        frame::encode_ping(&[], out);
    }

    fn pong(&self, payload: &[u8], out: &mut BytesMut) {
        frame::encode_pong(payload, out);
    }

    fn close(&self, code: u16, out: &mut BytesMut) {
        let reason = match code {
            CLOSE_TOO_BIG => "message too big",
            CLOSE_PROTOCOL => "protocol error",
            CLOSE_BAD_DATA => "invalid utf-8",
            _ => "",
        };
        frame::encode_close(code, reason, out);
    }
}
