//! The WebSocket upgrade request: read one HTTP head (CRLF or bare-LF line endings, as
//! httparse reads them), check it against RFC 6455 4.2.1, and answer whatever is wrong at
//! once: `400` (malformed, not HTTP/1.1, no `Host`, a `Sec-WebSocket-Key` that is not 16 bytes
//! in base64, or a plain GET the `on_http` hook does not answer), `405`, `426`, `431`, `503`.

use std::time::Duration;

use ::http::StatusCode;
use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use crate::gate::http::{self, HttpHandler};

/// Largest HTTP request head we read (leaf: `MaxHeaderBytes: 1024`; browsers send more).
const MAX_HEAD: usize = 8 * 1024;
const MAX_HEADERS: usize = 48;

/// The outcome of reading a handshake request.
pub(crate) enum Handshake {
    /// A valid upgrade; the 101 is not sent yet. Holds the accept key, bytes read past the
    /// request head, and (when asked for) the request head itself.
    Upgrade {
        accept: String,
        rest: Vec<u8>,
        request: Option<Box<::http::Request<()>>>,
    },
    /// Answered with an HTTP error (or the peer left); close the socket.
    Refused,
}

/// Reads one request head and checks it; on error, answers with the right status.
/// `admit` is false when the connection limit is reached (answered with 503).
/// `http` may answer a plain GET (no `Upgrade: websocket`) instead of the `400`.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) async fn read_request<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    admit: bool,
    http: Option<&HttpHandler>,
) -> Handshake {
    read_request_after(stream, Vec::new(), admit, http, false).await
}

/// [`read_request`] after `read` (bytes already read from the stream: those past a PROXY
/// header); with `keep`, an upgrade keeps its request head (a head the `http` crate cannot
/// hold is then answered `400`).
pub(crate) async fn read_request_after<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    read: Vec<u8>,
    admit: bool,
    http: Option<&HttpHandler>,
    keep: bool,
) -> Handshake {
    let mut head = BytesMut::from(&read[..]);
    head.reserve(1024);
    let end = match read_head(stream, &mut head).await {
        Ok(end) => end,
        Err(answer) => return refuse(stream, answer).await,
    };
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    if !matches!(req.parse(&head[..end]), Ok(httparse::Status::Complete(_))) {
        return refuse(stream, Answer::bad_request("malformed HTTP request")).await;
    }
    let key = match check_upgrade(&req, admit, http) {
        Ok(key) => key,
        Err(answer) => return refuse(stream, answer).await,
    };
    let request = match keep {
        false => None,
        true => match http::request(req.path.unwrap_or("/"), 1, req.headers) {
            Some(request) => Some(Box::new(request)),
            None => return refuse(stream, Answer::bad_request("malformed HTTP request")).await,
        },
    };
    Handshake::Upgrade {
        accept: derive_accept_key(key.as_bytes()),
        rest: head[end..].to_vec(),
        request,
    }
}

/// Answers an upgrade that will not be made with `bytes` (a whole HTTP response), bounded
/// in time, then closes the write side.
pub(crate) async fn answer<S: AsyncWrite + Unpin>(stream: &mut S, bytes: Vec<u8>) {
    refuse(stream, Answer::Hook(bytes)).await;
}

/// How a request that is not upgraded is answered; then the write side closes.
enum Answer {
    /// A status with a short text body: the code, its reason phrase, the body.
    Text(u16, &'static str, String),
    /// `426`, naming the version this server speaks.
    UpgradeRequired,
    /// What the `on_http` hook answered, as bytes.
    Hook(Vec<u8>),
    /// Nothing: the peer left.
    None,
}

impl Answer {
    fn bad_request(body: impl Into<String>) -> Answer {
        Answer::Text(400, "Bad Request", body.into())
    }
}

/// Writes `answer` (bounded in time), closes the write side, and gives the refusal.
async fn refuse<S: AsyncWrite + Unpin>(stream: &mut S, answer: Answer) -> Handshake {
    match answer {
        Answer::Text(status, reason, body) => respond(stream, status, reason, &body).await,
        Answer::UpgradeRequired => {
            let msg = "HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
            let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(msg.as_bytes()))
                .await;
            let _ = stream.shutdown().await;
        }
        Answer::Hook(bytes) => {
            let _ = tokio::time::timeout(Duration::from_secs(5), stream.write_all(&bytes)).await;
            let _ = stream.shutdown().await;
        }
        Answer::None => {}
    }
    Handshake::Refused
}

/// Reads until `head` holds a whole request head; gives its length. Parsed after every read:
/// a head is complete at its first empty line, whatever its line endings, and bytes that are
/// not HTTP are answered at once, not at `http_timeout`.
async fn read_head<S: AsyncRead + Unpin>(
    stream: &mut S,
    head: &mut BytesMut,
) -> Result<usize, Answer> {
    loop {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        match httparse::Request::new(&mut headers).parse(head) {
            Ok(httparse::Status::Complete(end)) => return Ok(end),
            Ok(httparse::Status::Partial) => {}
            Err(e) => return Err(Answer::bad_request(format!("malformed HTTP request: {e}"))),
        }
        if head.len() >= MAX_HEAD {
            return Err(Answer::Text(
                431,
                "Request Header Fields Too Large",
                String::new(),
            ));
        }
        match stream.read_buf(head).await {
            Ok(0) | Err(_) => return Err(Answer::None),
            Ok(_) => {}
        }
    }
}

/// Checks a whole request head against RFC 6455 4.2.1, in the order the answers are due
/// (`405`, the `on_http` hook for a plain GET, `400`, `426`, `400`, `503`); gives the
/// `Sec-WebSocket-Key` of an upgrade to make.
fn check_upgrade(
    req: &httparse::Request<'_, '_>,
    admit: bool,
    http: Option<&HttpHandler>,
) -> Result<String, Answer> {
    if req.method != Some("GET") {
        return Err(Answer::Text(
            405,
            "Method Not Allowed",
            "Method not allowed".into(),
        ));
    }
    let upgrade = has_token(req, "upgrade", "websocket");
    if let Some(bytes) = http
        .filter(|_| !upgrade)
        .and_then(|http| ask_hook(req, http))
    {
        return Err(Answer::Hook(bytes));
    }
    if !upgrade || !has_token(req, "connection", "upgrade") {
        return Err(Answer::bad_request("This is a WebSocket endpoint"));
    }
    if let Some(wrong) = version_and_host(req) {
        return Err(Answer::bad_request(wrong));
    }
    if header(req, "sec-websocket-version")
        .as_deref()
        .map(str::trim)
        != Some("13")
    {
        return Err(Answer::UpgradeRequired);
    }
    let Some(key) = header(req, "sec-websocket-key") else {
        return Err(Answer::bad_request("missing Sec-WebSocket-Key"));
    };
    let key = key.trim();
    if !is_nonce(key) {
        return Err(Answer::bad_request(
            "Sec-WebSocket-Key must be 16 bytes in base64",
        ));
    }
    if !admit {
        return Err(Answer::Text(
            503,
            "Service Unavailable",
            "too many connections".into(),
        ));
    }
    Ok(key.to_owned())
}

/// The first value of header `name`, any case.
fn header(req: &httparse::Request<'_, '_>, name: &str) -> Option<String> {
    req.headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| String::from_utf8_lossy(h.value).into_owned())
}

/// Whether header `name`'s comma-separated list holds `token`, any case.
fn has_token(req: &httparse::Request<'_, '_>, name: &str, token: &str) -> bool {
    header(req, name).is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
}

/// What is wrong with an upgrade's version and `Host` (RFC 6455 4.2.1: HTTP/1.1 and one Host).
fn version_and_host(req: &httparse::Request<'_, '_>) -> Option<&'static str> {
    let hosts = req
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("host"))
        .count();
    match (req.version, hosts) {
        (Some(1), 1) => None,
        (Some(1), 0) => Some("missing Host header"),
        (Some(1), _) => Some("more than one Host header"),
        _ => Some("a WebSocket upgrade needs HTTP/1.1"),
    }
}

/// The `on_http` hook's answer to a plain GET, as bytes; `None` keeps the usual `400` (and a
/// request the `http` crate cannot hold is not shown to the hook). A panic in the hook is
/// logged and answered `500`.
fn ask_hook(req: &httparse::Request<'_, '_>, http: &HttpHandler) -> Option<Vec<u8>> {
    let request = http::request(
        req.path.unwrap_or("/"),
        req.version.unwrap_or(1),
        req.headers,
    )?;
    let answer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| http(&request)))
        .unwrap_or_else(|_| {
            tracing::error!(path = %request.uri().path(), "on_http hook panicked");
            Some(http::text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal Server Error",
            ))
        });
    answer.map(|response| http::to_bytes(&response))
}

/// Whether `key` is base64 of 16 bytes: 22 characters of the alphabet, then `==`.
fn is_nonce(key: &str) -> bool {
    let b = key.as_bytes();
    b.len() == 24
        && b.ends_with(b"==")
        && b[..22]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/')
}

/// Answers with `status` and a short text `body`, then closes the write side.
async fn respond<S: AsyncWrite + Unpin>(stream: &mut S, status: u16, reason: &str, body: &str) {
    let msg = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(msg.as_bytes())).await;
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";

    /// Runs the handshake reader over `bytes` as a client's whole input; returns the outcome
    /// and what the server wrote.
    fn exchange(bytes: &[u8]) -> (Handshake, String) {
        // Timers on: an HTTP error answer is bounded by a timeout.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let (mut client, mut server) = tokio::io::duplex(64 * 1024);
            client.write_all(bytes).await.expect("write");
            client.shutdown().await.expect("shutdown");
            let outcome = read_request(&mut server, true, None).await;
            drop(server);
            let mut answer = Vec::new();
            let _ = client.read_to_end(&mut answer).await;
            (outcome, String::from_utf8_lossy(&answer).into_owned())
        })
    }

    fn handshake(bytes: &[u8]) -> Handshake {
        exchange(bytes).0
    }

    #[test]
    fn a_valid_upgrade_gives_the_rfc_accept_key_and_keeps_what_follows() {
        let mut bytes = UPGRADE.to_vec();
        bytes.extend_from_slice(&[0x82, 0x80]);
        match handshake(&bytes) {
            // RFC 6455's example key and answer.
            Handshake::Upgrade { accept, rest, .. } => {
                assert_eq!(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
                assert_eq!(rest, vec![0x82, 0x80]);
            }
            Handshake::Refused => panic!("refused a valid upgrade"),
        }
    }

    #[test]
    fn bare_lf_line_endings_are_read_as_httparse_reads_them() {
        let lf = String::from_utf8(UPGRADE.to_vec())
            .unwrap()
            .replace("\r\n", "\n");
        let mut bytes = lf.into_bytes();
        bytes.push(0x82);
        match handshake(&bytes) {
            Handshake::Upgrade { rest, .. } => assert_eq!(rest, vec![0x82]),
            Handshake::Refused => panic!("refused a bare-LF upgrade"),
        }
    }

    #[test]
    fn what_rfc_6455_requires_is_checked_with_a_400() {
        let upgrade = String::from_utf8(UPGRADE.to_vec()).unwrap();
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        for (bad, names) in [
            (upgrade.replace("HTTP/1.1", "HTTP/1.0"), "HTTP/1.1"),
            (upgrade.replace("Host: x\r\n", ""), "missing Host"),
            (
                upgrade.replace("Host: x\r\n", "Host: x\r\nHost: y\r\n"),
                "more than one Host",
            ),
            (upgrade.replace(key, ""), "16 bytes"),
            (upgrade.replace(key, "dGVzdA=="), "16 bytes"),
            (upgrade.replace(key, "dGhlIHNhbXBsZSBub25jZQ!="), "16 bytes"),
            (upgrade.replace(key, "dGhlIHNhbXBsZSBub25jZQ=x"), "16 bytes"),
            (
                upgrade.replace(&format!("Sec-WebSocket-Key: {key}\r\n"), ""),
                "missing Sec-WebSocket-Key",
            ),
            ("\x16\x03\x01\x00\x05\x01".into(), "malformed"),
        ] {
            let (outcome, answer) = exchange(bad.as_bytes());
            assert!(matches!(outcome, Handshake::Refused), "{bad:?}");
            assert!(answer.starts_with("HTTP/1.1 400 "), "{bad:?}: {answer:?}");
            assert!(
                answer.ends_with(names) || answer.contains(names),
                "{answer:?}"
            );
        }
        assert!(is_nonce(key));
        assert!(is_nonce("AAAAAAAAAAAAAAAAAAAAAA=="));
        assert!(!is_nonce("AAAAAAAAAAAAAAAAAAAAAAA="));
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
