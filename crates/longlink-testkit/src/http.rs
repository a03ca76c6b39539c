//! Plain HTTP/1.1 over a socket, read until the server closes: enough for `/metrics`,
//! `/healthz`, the refusals of the WebSocket port and pages served beside it.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::STEP;

/// Sends `request` as it is and returns the whole response, until the server closes (read
/// errors end it too); panics if that takes over [`STEP`].
pub async fn http_raw(addr: SocketAddr, request: &str) -> String {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(request.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    let _ = tokio::time::timeout(STEP, s.read_to_end(&mut out))
        .await
        .expect("the server answers and closes");
    String::from_utf8_lossy(&out).into_owned()
}

/// The first line of a response (`HTTP/1.1 200 OK`), or `""`.
pub fn status_line(response: &str) -> &str {
    response.lines().next().unwrap_or_default()
}

/// A response to [`http_get`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpReply {
    /// The status code.
    pub status: u16,
    /// The status line and the headers, without the blank line.
    pub head: String,
    /// Everything after the blank line.
    pub body: String,
}

impl HttpReply {
    /// The value of header `name` (any case), if there is one.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (k, v) = line.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// `GET path` on `addr`, read until the server closes (within [`STEP`]); `Err` if the
/// connection or the exchange fails (e.g. nothing listens any more). Panics on an answer
/// that is not UTF-8 HTTP with a status code.
pub async fn try_http_get(addr: SocketAddr, path: &str) -> std::io::Result<HttpReply> {
    let mut s = TcpStream::connect(addr).await?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await?;
    let mut out = Vec::new();
    tokio::time::timeout(STEP, s.read_to_end(&mut out))
        .await
        .expect("an answer in time")?;
    Ok(parse_reply(out))
}

/// `method path` with `headers` and `body` (sent with `Content-Length` and
/// `Connection: close`), read until the server closes; panics if the exchange fails.
pub async fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpReply {
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(head.as_bytes()).await.expect("write the head");
    // A server may answer (and close) before reading all of an oversized body.
    let _ = s.write_all(body).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(STEP, s.read_to_end(&mut out))
        .await
        .expect("an answer in time");
    parse_reply(out)
}

/// A whole response as read; panics on one that is not UTF-8 HTTP with a status code.
fn parse_reply(out: Vec<u8>) -> HttpReply {
    let text = String::from_utf8(out).expect("a UTF-8 answer");
    let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status code");
    HttpReply {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

/// [`try_http_get`], panicking if the exchange fails.
pub async fn http_get(addr: SocketAddr, path: &str) -> HttpReply {
    try_http_get(addr, path)
        .await
        .unwrap_or_else(|e| panic!("GET {path} on {addr}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn get_reads_status_headers_and_body() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut req = [0u8; 1024];
            let n = s.read(&mut req).await.unwrap();
            assert!(req[..n].starts_with(b"GET /x HTTP/1.1\r\n"));
            s.write_all(b"HTTP/1.1 404 Not Found\r\ncontent-type: text/plain\r\n\r\nnope")
                .await
                .unwrap();
        });
        let reply = http_get(addr, "/x").await;
        assert_eq!((reply.status, reply.body.as_str()), (404, "nope"));
        assert_eq!(reply.header("Content-Type"), Some("text/plain"));
        assert_eq!(status_line(&reply.head), "HTTP/1.1 404 Not Found");
        server.await.unwrap();
    }
}
