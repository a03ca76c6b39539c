//! The application's look at a WebSocket upgrade (`GateBuilder::on_upgrade`) and
//! `[gate] ws_origins`: an upgrade is refused with the hook's status or `403`, before it
//! becomes a connection (no new event, no place kept), or accepted with values attached to
//! the new agent, which its new event already sees.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use common::*;
use http::StatusCode;
use longlink::gate::{Accept, Refuse, UpgradeRequest};
use longlink::{Encoding, GateConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const JSON: Wire = Wire(Encoding::Json);

/// What the hook attaches: the uid of a "verified" token.
#[derive(Debug, Clone, PartialEq)]
struct Uid(u64);

/// Sends an upgrade for `path` with `extra` header lines; the answer's status line, its
/// whole head, and the connection (kept open).
async fn upgrade(to: SocketAddr, path: &str, extra: &str) -> (String, String, TcpStream) {
    let mut stream = TcpStream::connect(to).await.expect("connect");
    let mut request = upgrade_request("GET", path);
    if !extra.is_empty() {
        request = format!("{}\r\n{extra}\r\n\r\n", request.trim_end());
    }
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut head = Vec::new();
    let read = async {
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            match stream.read(&mut byte).await {
                Ok(0) | Err(_) => break,
                Ok(_) => head.push(byte[0]),
            }
        }
    };
    tokio::time::timeout(STEP, read).await.expect("an answer");
    let head = String::from_utf8_lossy(&head).into_owned();
    let status = head.lines().next().unwrap_or("").to_owned();
    (status, head, stream)
}

/// What the hook saw: path and remote address of each request.
type Seen = Arc<Mutex<Vec<(String, SocketAddr)>>>;

/// A server whose hook refuses `/deny` with 401 (and a header of its own), panics on
/// `/panic`, attaches `Uid(n)` for `?token=uid-n`, and accepts the rest.
async fn hooked(config: GateConfig) -> (Server, Seen) {
    let seen: Seen = Arc::default();
    let log = Arc::clone(&seen);
    let server = start_with(config, move |gate| {
        gate.on_upgrade(move |req: &UpgradeRequest| {
            log.lock()
                .unwrap()
                .push((req.path().to_owned(), req.remote_addr()));
            match req.path() {
                "/deny" => {
                    let answer = http::Response::builder()
                        .status(StatusCode::UNAUTHORIZED)
                        .header("www-authenticate", "Bearer")
                        .body(bytes::Bytes::from_static(b"token please"))
                        .unwrap();
                    Err(Refuse::response(answer))
                }
                "/forbidden" => Err(Refuse::status(StatusCode::FORBIDDEN)),
                "/panic" => panic!("the hook panics on purpose"),
                _ => match req.query_param("token") {
                    Some(token) => match token.strip_prefix("uid-").and_then(|n| n.parse().ok()) {
                        Some(uid) => Ok(Accept::new().attach(Uid(uid))),
                        None => Err(Refuse::status(StatusCode::UNAUTHORIZED)),
                    },
                    None => Ok(Accept::new()),
                },
            }
        })
    })
    .await;
    (server, seen)
}

async fn news(server: &Server) -> usize {
    server
        .events()
        .await
        .iter()
        .filter(|e| e.kind == "new")
        .count()
}

/// The hook refuses with its own answer (status, headers, body) or a bare status, accepts,
/// and attaches a uid that the agent carries from its new event on; a refused upgrade never
/// becomes a connection and keeps no place; a panic in the hook is a 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hook_refuses_accepts_and_attaches_a_uid() {
    bounded(TEST_TIMEOUT, async {
        let (server, seen) = hooked(GateConfig {
            max_conn_num: 2,
            ..config(Encoding::Json)
        })
        .await;
        let (status, head, mut refused) = upgrade(server.ws, "/deny", "").await;
        assert_eq!(status, "HTTP/1.1 401 Unauthorized", "{head}");
        assert!(head.contains("Www-Authenticate: Bearer\r\n"), "{head}");
        let mut body = Vec::new();
        let _ = refused.read_to_end(&mut body).await;
        assert_eq!(body, b"token please");
        let (status, ..) = upgrade(server.ws, "/forbidden", "").await;
        assert_eq!(status, "HTTP/1.1 403 Forbidden");
        let (status, ..) = upgrade(server.ws, "/?token=forged", "").await;
        assert_eq!(status, "HTTP/1.1 401 Unauthorized");
        let (status, ..) = upgrade(server.ws, "/panic", "").await;
        assert_eq!(status, "HTTP/1.1 500 Internal Server Error");
        // None of them took a place (max_conn_num is 2) or became a connection.
        server.wait_connections(0).await;
        let (status, _, _with_uid) = upgrade(server.ws, "/chat?token=uid-42", "").await;
        assert_eq!(status, "HTTP/1.1 101 Switching Protocols");
        let mut plain = ws_connect(server.ws, "/plain").await.expect("accepted");
        assert_eq!(ws_echo(&mut plain, JSON, "hi").await, "hi");
        server.wait_connections(2).await;
        wait_for("two new events", || async { news(&server).await == 2 }).await;
        let mut uids: Vec<Option<Uid>> = server
            .gate
            .agents()
            .iter()
            .map(|a| a.attached::<Uid>().cloned())
            .collect();
        uids.sort_by_key(|u| u.as_ref().map(|u| u.0));
        assert_eq!(uids, [None, Some(Uid(42))]);
        assert_eq!(news(&server).await, 2, "the refused ones had no new event");
        let paths: Vec<String> = seen.lock().unwrap().iter().map(|s| s.0.clone()).collect();
        assert_eq!(
            paths,
            ["/deny", "/forbidden", "/", "/panic", "/chat", "/plain"]
        );
        server.shutdown().await;
    })
    .await;
}

/// The new event runs with the hook's values already attached: a module that logs users in
/// from them needs no message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_new_event_sees_what_the_hook_attached() {
    bounded(TEST_TIMEOUT, async {
        let at_new: Arc<Mutex<Vec<Option<Uid>>>> = Arc::default();
        let log = Arc::clone(&at_new);
        let module = longlink::Module::new("users", ());
        let users = module.module_ref();
        let server = start_with(config(Encoding::Json), move |gate| {
            gate.on_upgrade(|req: &UpgradeRequest| match req.cookie("uid") {
                Some(uid) => Ok(Accept::new().attach(Uid(uid.parse().unwrap_or(0)))),
                None => Ok(Accept::new()),
            })
            .on_new_agent(&users, move |_: &mut (), agent: &longlink::Agent| {
                log.lock().unwrap().push(agent.attached::<Uid>().cloned());
            })
        })
        .await;
        let app = longlink::App::new().module(module).handle_signals(false);
        let stop = app.stop_handle();
        let users_app = tokio::spawn(app.run());
        let (status, _, _c) = upgrade(server.ws, "/", "Cookie: a=b; uid=7").await;
        assert!(status.starts_with("HTTP/1.1 101"), "{status}");
        wait_for("the new event", || async {
            !at_new.lock().unwrap().is_empty()
        })
        .await;
        assert_eq!(*at_new.lock().unwrap(), [Some(Uid(7))]);
        server.shutdown().await;
        stop.stop();
        let _ = users_app.await;
    })
    .await;
}

/// `ws_origins`: an upgrade whose `Origin` is not listed is refused with 403 (the hook is not
/// asked); a listed one, or none (not a browser), is upgraded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_origins_refuses_an_unlisted_origin_with_403() {
    bounded(TEST_TIMEOUT, async {
        let (server, seen) = hooked(GateConfig {
            ws_origins: vec!["https://chat.example.com".into()],
            ..config(Encoding::Json)
        })
        .await;
        for origin in [
            "https://evil.example",
            "https://chat.example.com.evil.example",
            "http://chat.example.com",
            "null",
        ] {
            let (status, ..) = upgrade(server.ws, "/", &format!("Origin: {origin}")).await;
            assert_eq!(status, "HTTP/1.1 403 Forbidden", "{origin}");
        }
        assert!(seen.lock().unwrap().is_empty(), "the hook is not asked");
        let (status, _, _a) = upgrade(server.ws, "/", "Origin: https://chat.example.com").await;
        assert_eq!(status, "HTTP/1.1 101 Switching Protocols");
        let (status, _, _b) = upgrade(server.ws, "/", "").await;
        assert_eq!(status, "HTTP/1.1 101 Switching Protocols");
        server.wait_connections(2).await;
        server.shutdown().await;
    })
    .await;
}

/// Behind a PROXY protocol balancer, the hook sees the client's address, not the balancer's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hook_sees_the_real_address() {
    bounded(TEST_TIMEOUT, async {
        let (server, seen) = hooked(GateConfig {
            proxy_protocol: true,
            ..config(Encoding::Json)
        })
        .await;
        let mut stream = connect_from(IpAddr::V4(Ipv4Addr::LOCALHOST), server.ws)
            .await
            .unwrap();
        let header = format!(
            "PROXY TCP4 203.0.113.8 127.0.0.1 4444 {}\r\n",
            server.ws.port()
        );
        stream.write_all(header.as_bytes()).await.unwrap();
        let status = upgrade_status(&mut stream, "/here").await;
        assert!(status.starts_with("HTTP/1.1 101"), "{status}");
        let seen = seen.lock().unwrap().clone();
        assert_eq!(
            seen,
            [("/here".to_owned(), "203.0.113.8:4444".parse().unwrap())]
        );
        server.shutdown().await;
    })
    .await;
}
