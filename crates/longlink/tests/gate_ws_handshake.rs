//! The WebSocket upgrade under hostile input (issue 14, items 6 and 7): HTTP/1.0, a missing
//! `Host`, a bad `Sec-WebSocket-Key`, bare-LF line endings and a TLS hello on the plain port
//! get a prompt `400`, well before `http_timeout`; valid upgrades (browser-like, bare LF) get
//! `101`. Sockets that connect and say nothing hold at most `handshake_share` of the places
//! (the oldest is pushed out by a newcomer), cost little memory each, and real clients still
//! connect past them.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use longlink::{Encoding, GateConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The tests of this file run one at a time: the memory test reads the process's RSS.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How fast an answer must come: far below the 10 s `http_timeout` of [`cfg`].
const PROMPT: Duration = Duration::from_secs(2);

/// RFC 6455's sample key and its accept value.
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

fn cfg() -> GateConfig {
    GateConfig {
        http_timeout: Duration::from_secs(10),
        ..config(Encoding::Json)
    }
}

/// An upgrade request with `version` (`"HTTP/1.1"`), `host` (`None`: no `Host` header) and
/// `key` (`None`: no key header), its lines ended by `eol`.
fn request(version: &str, host: Option<&str>, key: Option<&str>, eol: &str) -> String {
    let mut lines = vec![format!("GET /chat {version}")];
    lines.extend(host.map(|h| format!("Host: {h}")));
    lines.push("Upgrade: websocket".into());
    lines.push("Connection: Upgrade".into());
    lines.push("Sec-WebSocket-Version: 13".into());
    lines.extend(key.map(|k| format!("Sec-WebSocket-Key: {k}")));
    lines.push(String::new());
    lines.push(String::new());
    lines.join(eol)
}

/// Sends `bytes` and reads until the server closes, within [`PROMPT`]; `None` when the
/// server stayed silent (or kept the socket open) that long.
async fn answer(addr: SocketAddr, bytes: &[u8]) -> Option<String> {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(bytes).await.expect("write");
    let mut out = Vec::new();
    tokio::time::timeout(PROMPT, s.read_to_end(&mut out))
        .await
        .ok()?
        .ok()?;
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// Sends `bytes` and reads the answer's head (the socket stays open after a 101), within
/// [`PROMPT`]; `""` when none came.
async fn answer_head(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(bytes).await.expect("write");
    let mut head = Vec::new();
    let read = async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let mut chunk = [0u8; 1024];
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&chunk[..n]),
            }
        }
    };
    let _ = tokio::time::timeout(PROMPT, read).await;
    String::from_utf8_lossy(&head).into_owned()
}

#[tokio::test]
async fn hostile_upgrades_get_a_prompt_400_naming_what_is_wrong() {
    let _serial = SERIAL.lock().await;
    bounded(TEST_TIMEOUT, async {
        let server = start(cfg()).await;
        let crlf = "\r\n";
        let cases: Vec<(&str, String, &str)> = vec![
            (
                "HTTP/1.0",
                request("HTTP/1.0", Some("x"), Some(KEY), crlf),
                "HTTP/1.1",
            ),
            (
                "no Host",
                request("HTTP/1.1", None, Some(KEY), crlf),
                "Host",
            ),
            (
                "no key",
                request("HTTP/1.1", Some("x"), None, crlf),
                "Sec-WebSocket-Key",
            ),
            (
                "empty key",
                request("HTTP/1.1", Some("x"), Some(""), crlf),
                "Sec-WebSocket-Key",
            ),
            (
                "non-base64 key",
                request("HTTP/1.1", Some("x"), Some("not base64 at all!!"), crlf),
                "Sec-WebSocket-Key",
            ),
            (
                "a key of 4 bytes",
                request("HTTP/1.1", Some("x"), Some("dGVzdA=="), crlf),
                "Sec-WebSocket-Key",
            ),
            (
                "24 characters, not base64",
                request(
                    "HTTP/1.1",
                    Some("x"),
                    Some("dGhlIHNhbXBsZSBub25jZQ!="),
                    crlf,
                ),
                "Sec-WebSocket-Key",
            ),
            (
                "bare LF, HTTP/1.0",
                request("HTTP/1.0", Some("x"), Some(KEY), "\n"),
                "HTTP/1.1",
            ),
            (
                "bare LF, plain GET",
                "GET / HTTP/1.1\nHost: x\n\n".into(),
                "WebSocket",
            ),
            (
                "bare LF, no Host",
                request("HTTP/1.1", None, Some(KEY), "\n"),
                "Host",
            ),
        ];
        for (what, req, names) in &cases {
            let started = Instant::now();
            let got = answer(server.ws, req.as_bytes())
                .await
                .unwrap_or_else(|| panic!("{what}: no answer and not closed within {PROMPT:?}"));
            assert!(
                got.starts_with("HTTP/1.1 400 Bad Request\r\n"),
                "{what}: {got:?}"
            );
            let body = got.split_once("\r\n\r\n").map_or("", |(_, b)| b);
            assert!(
                body.contains(names),
                "{what}: the body names {names}: {got:?}"
            );
            assert!(
                started.elapsed() < PROMPT,
                "{what}: {:?}",
                started.elapsed()
            );
        }
        // A TLS ClientHello on the plain port (a wss:// client on a ws:// address): not HTTP.
        let hello = [
            0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03,
        ];
        let got = answer(server.ws, &hello)
            .await
            .expect("a TLS hello: no answer within PROMPT");
        assert!(got.starts_with("HTTP/1.1 400 "), "TLS hello: {got:?}");
        // Still a 426 for a WebSocket version other than 13, a 405 for another method.
        let v8 =
            request("HTTP/1.1", Some("x"), Some(KEY), crlf).replace("Version: 13", "Version: 8");
        let got = answer(server.ws, v8.as_bytes()).await.expect("426 in time");
        assert!(got.starts_with("HTTP/1.1 426 "), "{got:?}");
        let post = request("HTTP/1.1", Some("x"), Some(KEY), crlf).replacen("GET", "POST", 1);
        let got = answer(server.ws, post.as_bytes())
            .await
            .expect("405 in time");
        assert!(got.starts_with("HTTP/1.1 405 "), "{got:?}");
        assert_eq!(server.gate.connections(), 0);
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn valid_upgrades_get_101_browser_like_and_bare_lf() {
    let _serial = SERIAL.lock().await;
    bounded(TEST_TIMEOUT, async {
        let server = start(cfg()).await;
        let browser = format!(
            "GET /chat?room=1 HTTP/1.1\r\nHost: {}\r\nConnection: keep-alive, Upgrade\r\n\
             Pragma: no-cache\r\nCache-Control: no-cache\r\nUser-Agent: Mozilla/5.0 (X11; \
             Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36\r\n\
             Upgrade: websocket\r\nOrigin: http://localhost:8080\r\nSec-WebSocket-Version: 13\r\n\
             Accept-Encoding: gzip, deflate, br\r\nAccept-Language: en-US,en;q=0.9\r\n\
             Sec-WebSocket-Key: {KEY}\r\n\
             Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n",
            server.ws
        );
        let bare_lf = request("HTTP/1.1", Some("x"), Some(KEY), "\n");
        for (what, req) in [("browser", browser), ("bare LF", bare_lf)] {
            let head = answer_head(server.ws, req.as_bytes()).await;
            assert!(
                head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
                "{what}: {head:?}"
            );
            assert!(
                head.contains(&format!("\r\nSec-WebSocket-Accept: {ACCEPT}\r\n")),
                "{what}: {head:?}"
            );
        }
        // And a real client exchanges messages.
        let mut ws = ws_connect(server.ws, "/").await.expect("upgrade");
        assert_eq!(ws_echo(&mut ws, Wire(Encoding::Json), "hi").await, "hi");
        server.shutdown().await;
    })
    .await;
}

/// Whether the server closed `s` within `within` (a silent socket gets no bytes).
async fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let mut byte = [0u8; 1];
    match tokio::time::timeout(within, s.read(&mut byte)).await {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(_)) => panic!("a silent socket was sent bytes"),
        Err(_) => false,
    }
}

/// Opens `n` sockets to `addr` that say nothing.
async fn silent(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut all = Vec::with_capacity(n);
    for _ in 0..n {
        all.push(TcpStream::connect(addr).await.expect("connect"));
    }
    all
}

#[tokio::test]
async fn silent_sockets_hold_at_most_their_share_and_real_clients_still_connect() {
    let _serial = SERIAL.lock().await;
    bounded(TEST_TIMEOUT, async {
        let server = start(GateConfig {
            max_conn_num: 100,
            handshake_share: 25,
            ..cfg()
        })
        .await;
        // 25 silent sockets: the whole share of handshakes.
        let mut quiet = silent(server.ws, 25).await;
        server.wait_connections(25).await;
        // The 26th pushes out the oldest, at once; the others stay.
        quiet.extend(silent(server.ws, 1).await);
        assert!(
            closed_within(&mut quiet[0], PROMPT).await,
            "the oldest silent socket is closed promptly"
        );
        server.wait_connections(25).await;
        for s in &mut quiet[1..] {
            assert!(!closed_within(s, Duration::from_millis(20)).await);
        }
        // A real client takes the next oldest one's place for its handshake, then keeps only
        // its connection's: 24 silent sockets and one client.
        let mut ws = ws_connect(server.ws, "/real")
            .await
            .expect("a real client gets in");
        assert_eq!(ws_echo(&mut ws, Wire(Encoding::Json), "hi").await, "hi");
        assert!(closed_within(&mut quiet[1], PROMPT).await);
        server.wait_connections(25).await;
        // Its handshake place was given back: one more silent socket pushes nobody out.
        quiet.extend(silent(server.ws, 1).await);
        server.wait_connections(26).await;
        assert!(!closed_within(&mut quiet[2], Duration::from_millis(200)).await);
        assert_eq!(
            ws_echo(&mut ws, Wire(Encoding::Json), "still").await,
            "still"
        );
        server.shutdown().await;
    })
    .await;
}

/// Silent sockets on the WebSocket port, this many (both ends are in this process: 2 × as
/// many descriptors).
const SILENT: usize = 2_000;

#[tokio::test]
async fn a_silent_socket_costs_little_memory() {
    let _serial = SERIAL.lock().await;
    bounded(Duration::from_secs(20), async {
        let server = start(GateConfig {
            max_conn_num: 10_000,
            handshake_share: 100,
            http_timeout: Duration::from_secs(15),
            ..cfg()
        })
        .await;
        // Warm up (the runtime's and the allocator's first pages), then measure.
        let warm = silent(server.ws, 200).await;
        server.wait_connections(200).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let before = rss();
        let quiet = silent(server.ws, SILENT).await;
        server.wait_connections(200 + SILENT).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let per_socket = rss().saturating_sub(before) / SILENT;
        eprintln!("RSS per silent socket (both ends): {per_socket} bytes");
        assert!(
            per_socket < BOUND,
            "{per_socket} bytes per silent socket, over {BOUND}"
        );
        drop((warm, quiet));
        server.shutdown().await;
    })
    .await;
}

/// The memory test's bound per silent socket, both ends.
const BOUND: usize = 8 * 1024;
