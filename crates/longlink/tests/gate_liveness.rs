//! Liveness and admission: idle timeout, WebSocket ping and pong deadline, per-IP cap,
//! message rate limit, and a burst of simultaneous connects against max_conn_num.

mod common;

use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use longlink::{Encoding, GateConfig};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message as WsMessage;

fn base() -> GateConfig {
    config(Encoding::Json)
}

#[tokio::test]
async fn idle_timeout_closes_a_silent_connection_and_spares_a_talking_one() {
    bounded(TEST_TIMEOUT, async {
        let server = start(GateConfig {
            idle_timeout: Duration::from_millis(400),
            ..base()
        })
        .await;
        let mut silent = server.tcp_client().await;
        let mut talker = server.tcp_client().await;
        assert_eq!(silent.echo("hello").await, "hello");
        // The talker speaks every 100 ms for 1.2 s: three idle timeouts' worth.
        for i in 0..12 {
            assert_eq!(talker.echo(&format!("t{i}")).await, format!("t{i}"));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (_, ended) = silent.expect_closed().await;
        assert_eq!(ended, Ended::Eof, "an idle close is graceful");
        assert_eq!(talker.echo("still here").await, "still here");
        server.wait_connections(1).await;
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn websocket_ping_keeps_a_reading_client_and_drops_a_deaf_one() {
    bounded(TEST_TIMEOUT, async {
        let server = start(GateConfig {
            ws_ping_interval: Duration::from_millis(200),
            ws_pong_timeout: Duration::from_millis(300),
            ..base()
        })
        .await;
        let wire = Wire(Encoding::Json);
        let mut alive = ws_connect(server.ws, "/").await.expect("upgrade");
        let mut deaf = ws_connect(server.ws, "/").await.expect("upgrade");
        assert_eq!(ws_echo(&mut alive, wire, "a").await, "a");
        assert_eq!(ws_echo(&mut deaf, wire, "d").await, "d");

        // `alive` keeps reading (tungstenite answers pings while it reads) but sends no data
        // for 1.5 s; it must see pings and stay open.
        let mut pings = 0;
        let until = tokio::time::Instant::now() + Duration::from_millis(1500);
        while let Ok(next) = tokio::time::timeout_at(until, alive.next()).await {
            match next {
                Some(Ok(WsMessage::Ping(_))) => pings += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(pings >= 1, "the server pinged a silent client");
        assert_eq!(ws_echo(&mut alive, wire, "a2").await, "a2");

        // `deaf` was never polled, so it never answered: the server dropped it.
        server.wait_connections(1).await;
        let mut ended = false;
        while let Ok(Some(next)) = tokio::time::timeout(STEP, deaf.next()).await {
            if next.is_err() {
                ended = true;
                break;
            }
        }
        let _ = ended; // Either an error or the end of the stream: the connection is gone.
        assert!(
            deaf.send(WsMessage::binary(wire.echo("x"))).await.is_err() || {
                // A send may still be buffered; the read side must then report the end.
                matches!(
                    tokio::time::timeout(STEP, deaf.next()).await,
                    Ok(None) | Ok(Some(Err(_)))
                )
            }
        );
        server.shutdown().await;
    })
    .await;
}

async fn connect_from(local: &str, to: std::net::SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(local.parse().expect("addr"))?;
    socket.connect(to).await
}

#[tokio::test]
async fn max_conn_per_ip_caps_one_address_and_not_another() {
    bounded(TEST_TIMEOUT, async {
        let server = start(GateConfig {
            max_conn_per_ip: 2,
            ..base()
        })
        .await;
        let mut a = server.tcp_client().await;
        let mut b = server.tcp_client().await;
        assert_eq!(a.echo("a").await, "a");
        assert_eq!(b.echo("b").await, "b");
        // A third from 127.0.0.1 is closed at once, over TCP and refused over WebSocket.
        let mut c = server.tcp_client().await;
        assert_eq!(c.expect_closed().await, (0, Ended::Eof));
        let resp = http_raw(
            server.ws,
            "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        )
        .await;
        assert!(resp.starts_with("HTTP/1.1 503"), "{resp:?}");
        // Another address is not affected.
        let other = connect_from("127.0.0.2:0", server.tcp)
            .await
            .expect("connect from 127.0.0.2");
        let mut d = TcpClient {
            stream: other,
            framing: Framing::default(),
            wire: Wire(Encoding::Json),
        };
        assert_eq!(d.echo("d").await, "d");
        // When one from 127.0.0.1 leaves, its place is free again.
        drop(a);
        server.wait_connections(2).await;
        let mut e = server.tcp_client().await;
        assert_eq!(e.echo("e").await, "e");
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn max_msg_rate_closes_a_flooding_connection_only() {
    bounded(TEST_TIMEOUT, async {
        let server = start(GateConfig {
            max_msg_rate: 10,
            max_msg_burst: 5,
            ..base()
        })
        .await;
        let wire = Wire(Encoding::Json);
        let mut flood = server.tcp_client().await;
        let mut calm = server.tcp_client().await;
        // 30 messages at once: the burst of 5 passes and is answered (the gate lets the module
        // reply to what it took), then the connection is closed.
        let mut bytes = Vec::new();
        for i in 0..30 {
            bytes.extend(Framing::default().frame(&wire.echo(&format!("f{i}"))));
        }
        flood.send_raw(&bytes).await;
        let mut answered = 0;
        while flood.try_recv().await.is_ok() {
            answered += 1;
        }
        assert_eq!(answered, 5, "{answered} of 30 answered with a burst of 5");
        // The calm one sends 8 messages at 5 per second: under the rate.
        for i in 0..8 {
            assert_eq!(calm.echo(&format!("c{i}")).await, format!("c{i}"));
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        server.wait_connections(1).await;
        server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_200_connects_never_exceeds_max_conn_num_50() {
    bounded(TEST_TIMEOUT, async {
        let server = start(GateConfig {
            max_conn_num: 50,
            ..base()
        })
        .await;
        let tcp = server.tcp;
        let mut tasks = Vec::new();
        for i in 0..200 {
            tasks.push(tokio::spawn(async move {
                let Ok(stream) = TcpStream::connect(tcp).await else {
                    return None;
                };
                let mut c = TcpClient {
                    stream,
                    framing: Framing::default(),
                    wire: Wire(Encoding::Json),
                };
                c.send(&Wire(Encoding::Json).echo(&format!("n{i}"))).await;
                match c.try_recv().await {
                    Ok(_) => Some(c),
                    Err(_) => None,
                }
            }));
        }
        let mut held = Vec::new();
        for t in tasks {
            assert!(server.gate.connections() <= 50);
            if let Some(c) = t.await.expect("task") {
                held.push(c);
            }
        }
        assert_eq!(held.len(), 50, "exactly max_conn_num were served");
        assert_eq!(server.gate.connections(), 50);
        drop(held);
        server.wait_connections(0).await;
        server.shutdown().await;
    })
    .await;
}
