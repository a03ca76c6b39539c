//! WebSocket transport: one WebSocket message is one payload, no length prefix inside.
//!
//! The HTTP handshake is read here so the gate can answer as leaf does: any path, `405` for a
//! method other than GET, `503` over the connection limit, `400` for a plain request (unless
//! the `on_http` hook answers it); all within `http_timeout`. Frames are cut and made by
//! [`frame`] over the byte-stream halves of [`super::stream`], as TCP's are, so an idle
//! WebSocket holds no buffer either. Text and binary messages are accepted; replies are
//! binary; an incoming message over `max_msg_len` gets close code 1009.

use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use super::conn::{Incoming, ReadEnd};
use super::http::{HttpHandler, HttpRequest, HttpResponse};
use super::stream::{Decode, Encode, Halves};

pub(crate) mod frame;

use frame::{CLOSE_BAD_DATA, CLOSE_PROTOCOL, CLOSE_TOO_BIG, WsDecoder, WsEvent};

/// The close code of a normal closure.
const CLOSE_NORMAL: u16 = 1000;

/// Largest HTTP request head we read (leaf: `MaxHeaderBytes: 1024`; browsers send more).
const MAX_HEAD: usize = 8 * 1024;
const MAX_HEADERS: usize = 48;

/// The outcome of reading a handshake request.
pub(crate) enum Handshake {
    /// A valid upgrade; the 101 is not sent yet. Holds the accept key and bytes read past the
    /// request head.
    Upgrade { accept: String, rest: Vec<u8> },
    /// Answered with an HTTP error (or the peer left); close the socket.
    Refused,
}

/// Reads one request head and checks it; on error, answers with the right status.
/// `admit` is false when the connection limit is reached (answered with 503).
/// `http` may answer a plain GET (no `Upgrade: websocket`) instead of the `400`.
pub(crate) async fn read_request<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    admit: bool,
    http: Option<&HttpHandler>,
) -> Handshake {
    let mut head = BytesMut::with_capacity(1024);
    let end = loop {
        if let Some(end) = find_head_end(&head) {
            break end;
        }
        if head.len() >= MAX_HEAD {
            respond(stream, 431, "Request Header Fields Too Large", "").await;
            return Handshake::Refused;
        }
        match stream.read_buf(&mut head).await {
            Ok(0) | Err(_) => return Handshake::Refused,
            Ok(_) => {}
        }
    };
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    if !matches!(req.parse(&head[..end]), Ok(httparse::Status::Complete(_))) {
        respond(stream, 400, "Bad Request", "").await;
        return Handshake::Refused;
    }
    if req.method != Some("GET") {
        respond(stream, 405, "Method Not Allowed", "Method not allowed").await;
        return Handshake::Refused;
    }
    let header = |name: &str| {
        req.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).into_owned())
    };
    let has_token = |name: &str, token: &str| {
        header(name).is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    };
    if let Some(http) = http.filter(|_| !has_token("upgrade", "websocket")) {
        let request = HttpRequest::new(
            "GET",
            req.path.unwrap_or("/"),
            req.headers
                .iter()
                .map(|h| {
                    let value = String::from_utf8_lossy(h.value).into_owned();
                    (h.name.to_owned(), value)
                })
                .collect(),
        );
        let answer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| http(&request)))
            .unwrap_or_else(|_| {
                tracing::error!(path = %request.path, "on_http hook panicked");
                Some(HttpResponse::text(500, "Internal Server Error"))
            });
        if let Some(response) = answer {
            let bytes = response.to_bytes();
            let _ = tokio::time::timeout(Duration::from_secs(5), stream.write_all(&bytes)).await;
            let _ = stream.shutdown().await;
            return Handshake::Refused;
        }
    }
    if !has_token("upgrade", "websocket") || !has_token("connection", "upgrade") {
        respond(stream, 400, "Bad Request", "This is a WebSocket endpoint").await;
        return Handshake::Refused;
    }
    if header("sec-websocket-version").as_deref().map(str::trim) != Some("13") {
        let msg = "HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        let _ = stream.write_all(msg.as_bytes()).await;
        return Handshake::Refused;
    }
    let Some(key) = header("sec-websocket-key") else {
        respond(stream, 400, "Bad Request", "missing Sec-WebSocket-Key").await;
        return Handshake::Refused;
    };
    if !admit {
        respond(stream, 503, "Service Unavailable", "too many connections").await;
        return Handshake::Refused;
    }
    Handshake::Upgrade {
        accept: derive_accept_key(key.trim().as_bytes()),
        rest: head[end..].to_vec(),
    }
}

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

fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

async fn respond<S: AsyncWrite + Unpin>(stream: &mut S, status: u16, reason: &str, body: &str) {
    let msg = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(msg.as_bytes())).await;
    let _ = stream.shutdown().await;
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
    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Incoming>, ReadEnd> {
        let event = match self.decoder.decode(buf) {
            Ok(Some(event)) => event,
            Ok(None) => return Ok(None),
            Err(e) => return Err(ReadEnd::WsRefused(e.close_code(), e.to_string())),
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
    fn at_eof(&self) -> Result<Incoming, ReadEnd> {
        Err(ReadEnd::Io(std::io::ErrorKind::UnexpectedEof.into()))
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";

    /// Runs the handshake reader over `bytes` as a client's whole input.
    fn handshake(bytes: &[u8]) -> Handshake {
        // Timers on: an HTTP error answer is bounded by a timeout.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let (mut client, mut server) = tokio::io::duplex(64 * 1024);
            client.write_all(bytes).await.expect("write");
            client.shutdown().await.expect("shutdown");
            read_request(&mut server, true, None).await
        })
    }

    #[test]
    fn a_valid_upgrade_gives_the_rfc_accept_key_and_keeps_what_follows() {
        let mut bytes = UPGRADE.to_vec();
        bytes.extend_from_slice(&[0x82, 0x80]);
        match handshake(&bytes) {
            // RFC 6455's example key and answer.
            Handshake::Upgrade { accept, rest } => {
                assert_eq!(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
                assert_eq!(rest, vec![0x82, 0x80]);
            }
            Handshake::Refused => panic!("refused a valid upgrade"),
        }
    }

    proptest! {
        /// Any bytes: an answer or a refusal, never a panic; only a real upgrade passes.
        #[test]
        fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..2048)) {
            if let Handshake::Upgrade { .. } = handshake(&data) {
                prop_assert!(data.starts_with(b"GET "));
            }
        }

        /// A valid upgrade cut anywhere before its end is refused, not misread.
        #[test]
        fn a_cut_upgrade_is_refused(cut in 0..UPGRADE.len()) {
            prop_assert!(matches!(handshake(&UPGRADE[..cut]), Handshake::Refused));
        }
    }
}
