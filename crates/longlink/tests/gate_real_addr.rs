//! Real client addresses behind a load balancer: `[gate] proxy_protocol` (a PROXY v1 or v2
//! header before every connection's bytes) and `[gate] trusted_proxies` (`X-Forwarded-For` /
//! `Forwarded` on a WebSocket upgrade from a listed proxy). The address they give is the
//! agent's `remote_addr` and the one `max_conn_per_ip` counts; a connection without a valid
//! header is closed; a forwarded header from anyone else is ignored. The PROXY headers are
//! written by hand from the specification (haproxy's proxy-protocol.txt).

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use common::*;
use longlink::{Encoding, GateConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const JSON: Wire = Wire(Encoding::Json);
const LOCALHOST_2: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const LOCALHOST_3: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));

fn proxied() -> GateConfig {
    GateConfig {
        proxy_protocol: true,
        ..config(Encoding::Json)
    }
}

/// A v1 header for a TCP connection from `source` to `dest`.
fn v1(source: SocketAddr, dest: SocketAddr) -> Vec<u8> {
    let family = if source.is_ipv4() { "TCP4" } else { "TCP6" };
    format!(
        "PROXY {family} {} {} {} {}\r\n",
        source.ip(),
        dest.ip(),
        source.port(),
        dest.port()
    )
    .into_bytes()
}

/// A v2 header: the signature, version 2 / PROXY (0x21), TCP over IPv4 (0x11) or IPv6
/// (0x21), the length of the addresses, then source and destination addresses and ports.
fn v2(source: SocketAddr, dest: SocketAddr) -> Vec<u8> {
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.push(0x21);
    let mut addrs = Vec::new();
    match (source.ip(), dest.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            h.push(0x11);
            addrs.extend_from_slice(&s.octets());
            addrs.extend_from_slice(&d.octets());
        }
        (s, d) => {
            h.push(0x21);
            let six = |ip: IpAddr| match ip {
                IpAddr::V4(v4) => v4.to_ipv6_mapped(),
                IpAddr::V6(v6) => v6,
            };
            addrs.extend_from_slice(&six(s).octets());
            addrs.extend_from_slice(&six(d).octets());
        }
    }
    addrs.extend_from_slice(&source.port().to_be_bytes());
    addrs.extend_from_slice(&dest.port().to_be_bytes());
    h.extend_from_slice(&(addrs.len() as u16).to_be_bytes());
    h.extend_from_slice(&addrs);
    h
}

/// A TCP client whose connection began with `header`.
async fn tcp_with(to: SocketAddr, header: &[u8]) -> TcpClient {
    let mut stream = TcpStream::connect(to).await.expect("connect");
    stream.write_all(header).await.expect("write the header");
    TcpClient {
        stream,
        framing: Framing::default(),
        wire: JSON,
    }
}

/// A WebSocket (tungstenite) over a connection that began with `header`, from `from`.
async fn ws_with(from: IpAddr, to: SocketAddr, header: &[u8]) -> Ws {
    let mut stream = connect_from(from, to).await.expect("connect");
    stream.write_all(header).await.expect("write the header");
    ws_over(stream, to, "/").await.expect("upgrade")
}

/// The status line of the answer to an upgrade sent after `header`, with `extra` header
/// lines (`""` when the server closed without answering), and the connection, kept open.
async fn upgrade_after(
    from: IpAddr,
    to: SocketAddr,
    header: &[u8],
    extra: &str,
) -> (String, TcpStream) {
    let mut stream = connect_from(from, to).await.expect("connect");
    let mut request = upgrade_request("GET", "/");
    if !extra.is_empty() {
        request = format!("{}\r\n{extra}\r\n\r\n", request.trim_end());
    }
    let mut bytes = header.to_vec();
    bytes.extend_from_slice(request.as_bytes());
    let _ = stream.write_all(&bytes).await;
    let mut head = Vec::new();
    let read = async {
        let mut byte = [0u8; 1];
        // Byte by byte: what follows the head (a 101's frames) stays unread.
        while !head.ends_with(b"\r\n\r\n") {
            match stream.read(&mut byte).await {
                Ok(0) | Err(_) => break,
                Ok(_) => head.push(byte[0]),
            }
        }
    };
    tokio::time::timeout(STEP, read)
        .await
        .expect("an answer or a close");
    let head = String::from_utf8_lossy(&head).into_owned();
    (head.lines().next().unwrap_or("").to_owned(), stream)
}

/// Only the status line of [`upgrade_after`].
async fn status_after(from: IpAddr, to: SocketAddr, header: &[u8], extra: &str) -> String {
    upgrade_after(from, to, header, extra).await.0
}

/// The remote addresses of the gate's open connections, sorted.
async fn remotes(server: &Server, n: usize) -> Vec<String> {
    server.wait_connections(n).await;
    let gate = server.gate.clone();
    wait_for("every connection announced", || {
        let gate = gate.clone();
        async move { gate.agents().len() == n }
    })
    .await;
    let mut all: Vec<String> = server
        .gate
        .agents()
        .iter()
        .map(|a| a.remote_addr().to_string())
        .collect();
    all.sort();
    all
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Through the PROXY protocol, v1 and v2, IPv4 and IPv6, a TCP and a WebSocket connection's
/// `remote_addr` is the header's source, and the connections work as usual (the client's
/// bytes sent with the header are not lost).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_and_websocket_through_proxy_v1_and_v2_get_the_headers_address() {
    bounded(TEST_TIMEOUT, async {
        let server = start(proxied()).await;
        let mut tcp1 = tcp_with(server.tcp, &v1(addr("203.0.113.7:5555"), server.tcp)).await;
        assert_eq!(tcp1.echo("a").await, "a");
        // The header and the first frame in one write.
        let mut bytes = v2(addr("[2001:db8::7]:6000"), server.tcp);
        bytes.extend_from_slice(&Framing::default().frame(&JSON.echo("b")));
        let mut tcp2 = tcp_with(server.tcp, &bytes).await;
        assert_eq!(tcp2.recv_echo().await, "b");
        let mut ws1 = ws_with(
            Ipv4Addr::LOCALHOST.into(),
            server.ws,
            &v1(addr("198.51.100.1:7001"), server.ws),
        )
        .await;
        assert_eq!(ws_echo(&mut ws1, JSON, "c").await, "c");
        let mut ws2 = ws_with(
            Ipv4Addr::LOCALHOST.into(),
            server.ws,
            &v2(addr("198.51.100.2:7002"), server.ws),
        )
        .await;
        assert_eq!(ws_echo(&mut ws2, JSON, "d").await, "d");
        assert_eq!(
            remotes(&server, 4).await,
            [
                "198.51.100.1:7001",
                "198.51.100.2:7002",
                "203.0.113.7:5555",
                "[2001:db8::7]:6000"
            ]
        );
        // A header naming no address (a balancer's health check) keeps the socket's peer.
        let mut check = tcp_with(server.tcp, b"PROXY UNKNOWN\r\n").await;
        assert_eq!(check.echo("e").await, "e");
        let all = remotes(&server, 5).await;
        assert!(all.iter().any(|r| r.starts_with("127.0.0.1:")), "{all:?}");
        server.shutdown().await;
    })
    .await;
}

/// `max_conn_per_ip` counts the header's address: one balancer's connections for many
/// clients all fit, and one client over its cap is refused (TCP closed, WebSocket 503)
/// whichever balancer connection it comes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_conn_per_ip_counts_the_headers_address() {
    bounded(TEST_TIMEOUT, async {
        let server = start(GateConfig {
            max_conn_per_ip: 1,
            ..proxied()
        })
        .await;
        let mut a = tcp_with(server.tcp, &v1(addr("203.0.113.1:1000"), server.tcp)).await;
        let mut b = tcp_with(server.tcp, &v2(addr("203.0.113.2:1000"), server.tcp)).await;
        let mut c = ws_with(
            Ipv4Addr::LOCALHOST.into(),
            server.ws,
            &v1(addr("203.0.113.3:1000"), server.ws),
        )
        .await;
        assert_eq!(a.echo("a").await, "a");
        assert_eq!(b.echo("b").await, "b");
        assert_eq!(ws_echo(&mut c, JSON, "c").await, "c");
        // 203.0.113.1 again, over TCP and over WebSocket: over its cap.
        let mut again = tcp_with(server.tcp, &v2(addr("203.0.113.1:2000"), server.tcp)).await;
        again.send(&JSON.echo("x")).await;
        assert_eq!(
            again.expect_closed().await.0,
            0,
            "a second TCP connection of 203.0.113.1"
        );
        let status = status_after(
            Ipv4Addr::LOCALHOST.into(),
            server.ws,
            &v1(addr("203.0.113.1:3000"), server.ws),
            "",
        )
        .await;
        assert!(status.starts_with("HTTP/1.1 503"), "{status:?}");
        // The refused ones took no place; when 203.0.113.1 leaves, it may come back.
        assert_eq!(a.echo("a2").await, "a2");
        drop(a);
        server.wait_connections(2).await;
        let mut back = tcp_with(server.tcp, &v1(addr("203.0.113.1:4000"), server.tcp)).await;
        assert_eq!(back.echo("back").await, "back");
        server.shutdown().await;
    })
    .await;
}

/// With `proxy_protocol` on, a connection that does not begin with a valid header is closed:
/// none at all (a client that bypasses the balancer), a forged or malformed one, silence past
/// `http_timeout`, a header cut short; and, with `trusted_proxies` set, a valid header from a
/// peer not in it. Nothing of theirs reaches the application.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_forged_header_closes_the_connection() {
    bounded(TEST_TIMEOUT, async {
        let server = start(GateConfig {
            http_timeout: Duration::from_secs(1),
            trusted_proxies: vec!["127.0.0.1".into(), "127.0.0.2/32".into()],
            ..proxied()
        })
        .await;
        let frame = Framing::default().frame(&JSON.echo("x"));
        let forged = [
            frame.clone(),
            b"PROXY TCP4 300.0.0.1 127.0.0.1 1 2\r\n".to_vec(),
            b"PROXY TCP4 1.2.3.4 127.0.0.1 1\r\n".to_vec(),
            b"PROXY TCP9 1.2.3.4 127.0.0.1 1 2\r\n".to_vec(),
            [&b"\r\n\r\n\0\r\nQUIT\n\x21\x11\xff\xff"[..], &[0; 64]].concat(),
            b"\r\n\r\n\0\r\nQUIT\n\x99\x11\x00\x0c123456789012".to_vec(),
            // Cut short, then what is no header: closed at http_timeout, or at once.
            b"PROXY TCP4 1.2.3.4 ".to_vec(),
        ];
        // Silence: closed at http_timeout.
        let mut silent = tcp_with(server.tcp, b"").await;
        assert_eq!(silent.expect_closed().await.0, 0, "a silent TCP connection");
        for bytes in &forged {
            let mut c = tcp_with(server.tcp, bytes).await;
            let _ = c.stream.write_all(&frame).await;
            assert_eq!(c.expect_closed().await.0, 0, "TCP after {bytes:?}");
            let mut w = connect_from(Ipv4Addr::LOCALHOST.into(), server.ws)
                .await
                .unwrap();
            let _ = w.write_all(bytes).await;
            let status = upgrade_status(&mut w, "/").await;
            assert_eq!(status, "", "WebSocket after {bytes:?}");
        }
        // A bare upgrade (no header): not answered, closed.
        let status = status_after(Ipv4Addr::LOCALHOST.into(), server.ws, b"", "").await;
        assert_eq!(status, "");
        // A valid header from 127.0.0.3, not a trusted proxy: closed; from 127.0.0.2: served.
        let header = v1(addr("203.0.113.9:1"), server.ws);
        let status = status_after(LOCALHOST_3, server.ws, &header, "").await;
        assert_eq!(status, "", "from an untrusted peer");
        let (status, _open) = upgrade_after(LOCALHOST_2, server.ws, &header, "").await;
        assert!(status.starts_with("HTTP/1.1 101"), "{status:?}");
        let mut untrusted = connect_from(LOCALHOST_3, server.tcp).await.unwrap();
        let _ = untrusted
            .write_all(&v1(addr("203.0.113.9:2"), server.tcp))
            .await;
        let _ = untrusted.write_all(&frame).await;
        assert_eq!(read_to_end(&mut untrusted).await.0, 0);
        let news = || async {
            let events = server.events().await;
            events.iter().filter(|e| e.kind == "new").count()
        };
        wait_for("the trusted upgrade's new event", || async {
            news().await >= 1
        })
        .await;
        assert_eq!(
            news().await,
            1,
            "only the trusted upgrade became a connection"
        );
        server.shutdown().await;
    })
    .await;
}

/// A WebSocket upgrade from one of `trusted_proxies` takes its client's address from
/// `X-Forwarded-For` (read from the right, past trusted proxies) or `Forwarded`, and that is
/// the address `max_conn_per_ip` counts; from any other peer the header is ignored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_headers_count_only_from_trusted_proxies() {
    bounded(TEST_TIMEOUT, async {
        let server = start(GateConfig {
            trusted_proxies: vec!["127.0.0.2".into(), "10.0.0.0/8".into()],
            max_conn_per_ip: 1,
            ..config(Encoding::Json)
        })
        .await;
        let xff = |chain: &str| format!("X-Forwarded-For: {chain}");
        // Untrusted: its own address, whatever it says (and its own cap).
        let (s, _u) = upgrade_after(LOCALHOST_3, server.ws, b"", &xff("203.0.113.5")).await;
        assert!(s.starts_with("HTTP/1.1 101"), "{s:?}");
        // Trusted: the rightmost untrusted entry; what the client wrote (left) is ignored.
        let chain = xff("6.6.6.6, 203.0.113.5, 10.1.1.1");
        let (s, _t1) = upgrade_after(LOCALHOST_2, server.ws, b"", &chain).await;
        assert!(s.starts_with("HTTP/1.1 101"), "{s:?}");
        let fwd = "Forwarded: for=\"[2001:db8::5]:4711\";proto=https";
        let (s, _t2) = upgrade_after(LOCALHOST_2, server.ws, b"", fwd).await;
        assert!(s.starts_with("HTTP/1.1 101"), "{s:?}");
        let all = remotes(&server, 3).await;
        assert_eq!(all[1..], ["203.0.113.5:0", "[2001:db8::5]:4711"], "{all:?}");
        assert!(all[0].starts_with("127.0.0.3:"), "{all:?}");
        // 203.0.113.5 again through the proxy: over its cap, though the proxy has more.
        let s = status_after(LOCALHOST_2, server.ws, b"", &xff("203.0.113.5")).await;
        assert!(s.starts_with("HTTP/1.1 503"), "{s:?}");
        // The untrusted peer naming a new address is still counted as itself: over its cap.
        let s = status_after(LOCALHOST_3, server.ws, b"", &xff("198.51.100.77")).await;
        assert!(s.starts_with("HTTP/1.1 503"), "{s:?}");
        // TCP from the proxy is the proxy's own (no header to read there).
        let mut t = TcpClient {
            stream: connect_from(LOCALHOST_2, server.tcp).await.unwrap(),
            framing: Framing::default(),
            wire: JSON,
        };
        assert_eq!(t.echo("t").await, "t");
        let all = remotes(&server, 4).await;
        assert!(all.iter().any(|r| r.starts_with("127.0.0.2:")), "{all:?}");
        server.shutdown().await;
    })
    .await;
}
