//! WebSocket clients: tungstenite's (a third-party implementation, so not our own handshake
//! or framing), and the upgrade request written out by hand for the tests that need the raw
//! bytes (refusals, a frame in the same packet as the request).

use std::net::SocketAddr;

use futures_util::{Stream, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::{Error, Message};

use crate::STEP;

/// A client WebSocket over plain TCP.
pub type Ws = WebSocketStream<TcpStream>;

/// The `Sec-WebSocket-Key` of [`upgrade_request`]: the sample nonce of RFC 6455, 1.3.
pub const WS_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// The `Sec-WebSocket-Accept` a server must answer [`WS_KEY`] with (RFC 6455, 1.3).
pub const WS_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// A complete WebSocket upgrade request (`Host: x`, version 13, [`WS_KEY`]) with any method
/// and path, e.g. `("GET", "/")`, or `("POST", "/")` to check that only a GET upgrades.
pub fn upgrade_request(method: &str, path: &str) -> String {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {WS_KEY}\r\n\r\n"
    )
}

/// Sends a GET [`upgrade_request`] for `path` on `stream` and returns the status line of the
/// answer (e.g. `HTTP/1.1 101 Switching Protocols`, or `""` if the server closed without
/// one). Reads the head only, within [`STEP`]: after a `101` the connection stays open.
pub async fn upgrade_status(stream: &mut TcpStream, path: &str) -> String {
    let work = async {
        stream
            .write_all(upgrade_request("GET", path).as_bytes())
            .await
            .expect("write the upgrade request");
        let mut head = Vec::new();
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let mut chunk = [0u8; 1024];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&chunk[..n]),
            }
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        head.lines().next().unwrap_or("").to_owned()
    };
    tokio::time::timeout(STEP, work)
        .await
        .expect("no answer to the upgrade request")
}

/// Connects to `addr` and upgrades with `path` (e.g. `/any/path?x=1`); panics if the TCP
/// connection fails, returns tungstenite's error if the upgrade does (e.g. an HTTP `503`).
pub async fn ws_connect(addr: SocketAddr, path: &str) -> Result<Ws, Error> {
    let stream = TcpStream::connect(addr).await.expect("connect");
    ws_over(stream, addr, path).await
}

/// Upgrades a connected socket (e.g. one bound to another local address) to `addr` with
/// `path`.
pub async fn ws_over(stream: TcpStream, addr: SocketAddr, path: &str) -> Result<Ws, Error> {
    tokio_tungstenite::client_async(format!("ws://{addr}{path}"), stream)
        .await
        .map(|(ws, _response)| ws)
}

/// How a WebSocket connection ended, seen from the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsEnd {
    /// A close frame: its code (if it had one) and its reason.
    Close(Option<u16>, String),
    /// An error (e.g. a reset, or a close without a close frame).
    Error(String),
    /// The stream ended.
    Eof,
}

/// The next data message (text or binary), or how the connection ended; `None` if neither
/// came by `deadline`. Pings and pongs are skipped (tungstenite answers a ping while it is
/// being read).
pub async fn next_data<S>(ws: &mut S, deadline: Instant) -> Option<Result<Message, WsEnd>>
where
    S: Stream<Item = Result<Message, Error>> + Unpin,
{
    loop {
        let next = tokio::time::timeout_at(deadline, ws.next()).await.ok()?;
        return Some(match next {
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Close(frame))) => Err(match frame {
                Some(f) => WsEnd::Close(Some(u16::from(f.code)), f.reason.to_string()),
                None => WsEnd::Close(None, String::new()),
            }),
            Some(Ok(m)) => Ok(m),
            Some(Err(e)) => Err(WsEnd::Error(e.to_string())),
            None => Err(WsEnd::Eof),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_upgrade_request_is_complete() {
        let req = upgrade_request("GET", "/chat");
        assert!(req.starts_with("GET /chat HTTP/1.1\r\n"), "{req}");
        for header in [
            "Upgrade: websocket",
            "Connection: Upgrade",
            "Sec-WebSocket-Version: 13",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        ] {
            assert!(
                req.contains(&format!("\r\n{header}\r\n")),
                "{header}: {req}"
            );
        }
        assert!(req.ends_with("\r\n\r\n"));
    }
}
