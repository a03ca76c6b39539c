//! WebSocket transport: one WebSocket message is one payload, no length prefix inside.
//!
//! The HTTP handshake is read here (not by tungstenite) so the gate can answer as leaf does:
//! any path, `405` for a method other than GET, `503` over the connection limit, `400` for a
//! plain request (unless the `on_http` hook answers it); all within `http_timeout`. Text and
//! binary messages are accepted; replies are binary; an incoming message over `max_msg_len`
//! gets close code 1009.

use std::collections::VecDeque;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::conn::{FrameReader, FrameWriter, Incoming, ReadEnd};
use super::http::{HttpHandler, HttpRequest, HttpResponse};

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

/// Sends the 101 and wraps the socket as a WebSocket.
pub(crate) async fn accept<S: AsyncRead + AsyncWrite + Unpin + Send>(
    mut stream: S,
    accept: &str,
    rest: Vec<u8>,
    max_msg_len: usize,
) -> std::io::Result<(WsReader<S>, WsWriter<S>)> {
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    stream.write_all(response.as_bytes()).await?;
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(16 * 1024)
        .max_message_size(Some(max_msg_len))
        .max_frame_size(Some(max_msg_len));
    let ws = WebSocketStream::from_partially_read(stream, rest, Role::Server, Some(config)).await;
    let (sink, stream) = ws.split();
    Ok((
        WsReader { stream },
        WsWriter {
            sink,
            pending: VecDeque::new(),
        },
    ))
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

pub(crate) struct WsReader<S> {
    stream: SplitStream<WebSocketStream<S>>,
}

/// Set by the reader when a message was too big, read by the writer's close frame.
pub(crate) const CLOSE_TOO_BIG: u16 = 1009;

impl<S: AsyncRead + AsyncWrite + Unpin + Send> FrameReader for WsReader<S> {
    async fn read_frame(&mut self) -> Result<Incoming, ReadEnd> {
        match self.stream.next().await {
            None => Ok(Incoming::End),
            Some(Ok(Message::Binary(b))) => Ok(Incoming::Payload(b)),
            Some(Ok(Message::Text(t))) => Ok(Incoming::Payload(Bytes::from(t))),
            // A normal closure (1000) is the client's "goodbye for good"; any other close is
            // a drop (a resumable session waits).
            Some(Ok(Message::Close(Some(frame)))) if frame.code == CloseCode::Normal => {
                Ok(Incoming::Final)
            }
            Some(Ok(Message::Close(_))) => Ok(Incoming::End),
            // Ping (tungstenite answers it itself), pong, raw frames: the peer is alive.
            Some(Ok(_)) => Ok(Incoming::Control),
            Some(Err(WsError::Capacity(e))) => Err(ReadEnd::TooBig(e.to_string())),
            Some(Err(WsError::ConnectionClosed | WsError::AlreadyClosed)) => Ok(Incoming::End),
            Some(Err(WsError::Io(e))) => Err(ReadEnd::Io(e)),
            // The TCP stream ended without a close frame: the socket dropped.
            Some(Err(WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake))) => {
                Err(ReadEnd::Io(std::io::ErrorKind::UnexpectedEof.into()))
            }
            Some(Err(e)) => Err(ReadEnd::Protocol(e.to_string())),
        }
    }
}

pub(crate) struct WsWriter<S> {
    sink: SplitSink<WebSocketStream<S>, Message>,
    pending: VecDeque<Message>,
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> FrameWriter for WsWriter<S> {
    fn push(&mut self, payload: Bytes) {
        self.pending.push_back(Message::Binary(payload));
    }

    fn push_ping(&mut self) {
        self.pending.push_back(Message::Ping(Bytes::new()));
    }

    fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let to_io = |e: WsError| match e {
            WsError::Io(e) => e,
            other => std::io::Error::other(other.to_string()),
        };
        // A payload leaves `pending` only once the sink has taken it.
        while let Some(msg) = self.pending.front() {
            ready!(self.sink.poll_ready_unpin(cx)).map_err(to_io)?;
            self.sink.start_send_unpin(msg.clone()).map_err(to_io)?;
            self.pending.pop_front();
        }
        ready!(self.sink.poll_flush_unpin(cx)).map_err(to_io)?;
        if self.pending.capacity() > 16 {
            self.pending = VecDeque::new();
        }
        Poll::Ready(Ok(()))
    }

    async fn finish(&mut self, close_code: u16) {
        let frame = CloseFrame {
            code: CloseCode::from(close_code),
            reason: match close_code {
                CLOSE_TOO_BIG => "message too big".into(),
                _ => "".into(),
            },
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            let _ = self.sink.send(Message::Close(Some(frame))).await;
            let _ = self.sink.close().await;
        })
        .await;
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
