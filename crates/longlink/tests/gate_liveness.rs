//! Liveness and admission, per connection, over TCP and WebSocket: the idle timeout, the
//! WebSocket ping and its pong deadline, the per-IP connection cap and the message rate
//! limit, with the gate's goodbye (`GateBuilder::on_goodbye`) where it says one.
//!
//! What the chat adds on top (its `S2C_Kick{reason}` goodbye, its sessions) is checked in
//! `examples/chat/tests/hardening.rs`; connect bursts against `max_conn_num` in
//! `gate_limits.rs`.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use common::*;
use futures_util::{SinkExt, StreamExt};
use longlink::{Encoding, GateConfig};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message as WsMessage;

const LOCALHOST_2: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn base() -> GateConfig {
    config(Encoding::Json)
}

const JSON: Wire = Wire(Encoding::Json);

/// The connection that sent the echo `text` (from the module's event log).
async fn conn_that_said(server: &Server, text: &str) -> u64 {
    let kind = format!("msg:{text}");
    server
        .events()
        .await
        .into_iter()
        .find(|e| e.kind == kind)
        .unwrap_or_else(|| panic!("no connection said {text:?}"))
        .conn
}

/// Waits until the module has seen connection `conn` close.
async fn wait_closed(server: &Server, conn: u64) {
    let module = server.module.clone();
    wait_for(&format!("the close event of connection {conn}"), || {
        let module = module.clone();
        async move {
            module
                .call(STEP, move |ctx| {
                    ctx.events
                        .iter()
                        .any(|e| e.conn == conn && e.kind == "close")
                })
                .await
                .unwrap()
        }
    })
    .await;
}

/// A TCP and a WebSocket client that, in a task, each echo `<tag><i>` (TCP) and `<tag>w<i>`
/// (WebSocket) every `every`, `rounds` times; the task gives them back.
async fn talkers(
    server: &Server,
    tag: &'static str,
    rounds: usize,
    every: Duration,
) -> JoinHandle<(TcpClient, Ws)> {
    let mut tcp = server.tcp_client().await;
    let mut ws = ws_connect(server.ws, "/").await.expect("upgrade");
    tokio::spawn(async move {
        for i in 0..rounds {
            let text = format!("{tag}{i}");
            assert_eq!(tcp.echo(&text).await, text);
            let text = format!("{tag}w{i}");
            assert_eq!(ws_echo(&mut ws, JSON, &text).await, text);
            tokio::time::sleep(every).await;
        }
        (tcp, ws)
    })
}

/// Silent connections are closed once `idle_timeout` has passed, not before: the gate's
/// goodbye, then a graceful close (TCP: EOF; WebSocket: close 1000). A WebSocket that answers
/// every ping is idle all the same (the gate's own pings are no activity of the client's).
/// Connections that talk are spared, on both listeners.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_timeout_closes_silent_connections_and_spares_talking_ones() {
    bounded(TEST_TIMEOUT, async {
        let server = start_with(
            GateConfig {
                idle_timeout: ms(500),
                // Pings more often than the idle timeout.
                ws_ping_interval: ms(200),
                ws_pong_timeout: ms(300),
                ..base()
            },
            say_goodbye,
        )
        .await;
        // The talkers speak every 100 ms for 1.5 s: three idle timeouts' worth.
        let talkers = talkers(&server, "t", 15, ms(100)).await;

        let mut silent_tcp = server.tcp_client().await;
        let tcp_last_sent = Instant::now();
        assert_eq!(silent_tcp.echo("quiet tcp").await, "quiet tcp");
        let silent_tcp = tokio::spawn(async move {
            let goodbye = silent_tcp.recv_echo().await;
            let silence = tcp_last_sent.elapsed();
            (goodbye, silence, silent_tcp.expect_closed().await)
        });
        let mut silent_ws = ws_connect(server.ws, "/").await.expect("upgrade");
        let ws_last_sent = Instant::now();
        assert_eq!(ws_echo(&mut silent_ws, JSON, "quiet ws").await, "quiet ws");
        // ws_next keeps reading, so tungstenite answers every ping.
        let silent_ws = tokio::spawn(async move {
            let goodbye = match ws_next(&mut silent_ws).await {
                Ok(WsMessage::Binary(b)) => JSON.decode_echo(&b),
                other => panic!("WebSocket: expected the goodbye, got {other:?}"),
            };
            let silence = ws_last_sent.elapsed();
            (goodbye, silence, ws_next(&mut silent_ws).await)
        });

        let (goodbye, silence, end) = silent_tcp.await.expect("silent TCP client");
        assert_eq!(goodbye, "goodbye:idle", "TCP");
        assert!(
            silence >= ms(450),
            "TCP: closed as idle after only {silence:?} of silence (idle_timeout 0.5 s)"
        );
        assert_eq!(end, (0, Ended::Eof), "TCP: an idle close is graceful");
        let (goodbye, silence, end) = silent_ws.await.expect("silent WebSocket client");
        assert_eq!(goodbye, "goodbye:idle", "WebSocket");
        assert!(
            silence >= ms(450),
            "WebSocket: closed as idle after only {silence:?} of silence (idle_timeout 0.5 s)"
        );
        assert!(
            matches!(end, Err(WsEnd::Close(Some(1000), _))),
            "WebSocket: an idle close is a normal closure: {end:?}"
        );

        let (mut talker_tcp, mut talker_ws) = talkers.await.expect("the talkers were spared");
        assert_eq!(talker_tcp.echo("still here").await, "still here");
        assert_eq!(
            ws_echo(&mut talker_ws, JSON, "still here").await,
            "still here"
        );
        server.wait_connections(2).await;
        for quiet in ["quiet tcp", "quiet ws"] {
            let conn = conn_that_said(&server, quiet).await;
            wait_closed(&server, conn).await;
        }
        server.shutdown().await;
    })
    .await;
}

/// A WebSocket that keeps reading answers the gate's pings (tungstenite does) and stays
/// open, getting what is written to it meanwhile, in order. One that does not read is
/// dropped once `ws_ping_interval` + `ws_pong_timeout` have passed, not before; its close
/// event reaches the module and its socket is gone. A silent TCP connection is never pinged:
/// it stays open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_ping_keeps_a_reading_client_and_drops_a_deaf_one() {
    bounded(TEST_TIMEOUT, async {
        let server = start(GateConfig {
            ws_ping_interval: ms(200),
            ws_pong_timeout: ms(300),
            ..base()
        })
        .await;
        let mut alive = ws_connect(server.ws, "/").await.expect("upgrade");
        assert_eq!(ws_echo(&mut alive, JSON, "alive").await, "alive");
        let mut tcp_silent = server.tcp_client().await;
        assert_eq!(tcp_silent.echo("tcp").await, "tcp");
        let mut deaf = ws_connect(server.ws, "/").await.expect("upgrade");
        let deaf_last_sent = Instant::now();
        assert_eq!(ws_echo(&mut deaf, JSON, "deaf").await, "deaf");
        // From here on `deaf` is not polled: it answers no ping.
        let deaf_conn = conn_that_said(&server, "deaf").await;
        let alive_conn = conn_that_said(&server, "alive").await;
        let alive_agent = server
            .gate
            .agents()
            .into_iter()
            .find(|a| a.id() == alive_conn)
            .expect("alive's agent");

        // `alive` sends nothing for 1.5 s but keeps reading: pings come, and what the server
        // writes to it meanwhile.
        let reader = tokio::spawn(async move {
            let until = tokio::time::Instant::now() + ms(1500);
            let (mut pings, mut got) = (0, Vec::new());
            while let Ok(next) = tokio::time::timeout_at(until, alive.next()).await {
                match next {
                    Some(Ok(WsMessage::Ping(_))) => pings += 1,
                    Some(Ok(WsMessage::Binary(b))) => got.push(JSON.decode_echo(&b)),
                    other => panic!("alive: unexpected {other:?} although it answers pings"),
                }
            }
            (alive, pings, got)
        });
        let writer = tokio::spawn(async move {
            let mut said = Vec::new();
            for i in 0..5 {
                tokio::time::sleep(ms(250)).await;
                let text = format!("tick {i}");
                alive_agent
                    .write(&Echo { text: text.clone() })
                    .expect("alive is open");
                said.push(text);
            }
            said
        });

        // `deaf` is pinged after 0.2 s of silence and dropped 0.3 s later.
        wait_closed(&server, deaf_conn).await;
        let silence = deaf_last_sent.elapsed();
        assert!(
            silence >= ms(450),
            "a WebSocket client dropped after only {silence:?} of silence (ping 0.2 s + pong 0.3 s)"
        );

        let (mut alive, pings, mut got) = reader.await.expect("alive's reader");
        let said = writer.await.expect("the writer");
        assert!(pings >= 1, "the server pinged a silent client");
        // The last tick may still have been on its way when the window closed.
        while got.len() < said.len() {
            match ws_next(&mut alive).await {
                Ok(WsMessage::Binary(b)) => got.push(JSON.decode_echo(&b)),
                other => panic!("alive: expected a tick, got {other:?}"),
            }
        }
        assert_eq!(got, said, "what was written to the pinged client");
        assert_eq!(ws_echo(&mut alive, JSON, "a2").await, "a2");
        assert_eq!(tcp_silent.echo("tcp2").await, "tcp2");
        server.wait_connections(2).await;
        // The deaf client's socket is gone: a close, an error or the end, and no data.
        let end = ws_next(&mut deaf).await;
        assert!(end.is_err(), "deaf: {end:?}");
        server.shutdown().await;
    })
    .await;
}

/// Asserts that 127.0.0.1 has no place left: a TCP connection is closed at once without a
/// byte (no goodbye: it never was a connection of the gate's), a WebSocket upgrade gets 503.
async fn assert_full(server: &Server) {
    let mut c = server.tcp_client().await;
    assert_eq!(
        c.expect_closed().await,
        (0, Ended::Eof),
        "a TCP connection over the per-IP cap"
    );
    let resp = http_raw(server.ws, &upgrade_request("GET", "/")).await;
    assert!(
        resp.starts_with("HTTP/1.1 503"),
        "a WebSocket upgrade over the per-IP cap: {resp:?}"
    );
}

/// `max_conn_per_ip` counts an address's connections over both listeners. Over it, a TCP
/// connection is closed at once and a WebSocket upgrade refused with 503; another address has
/// places of its own; refused connections take no place and the held ones keep working; a
/// place given back is taken again, and only that one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_conn_per_ip_caps_one_address_and_not_another() {
    bounded(TEST_TIMEOUT, async {
        let server = start_with(
            GateConfig {
                max_conn_per_ip: 3,
                ..base()
            },
            say_goodbye,
        )
        .await;
        // Three from 127.0.0.1, over both listeners: one count.
        let mut a = server.tcp_client().await;
        assert_eq!(a.echo("a").await, "a");
        let mut b = ws_connect(server.ws, "/").await.expect("the second fits");
        assert_eq!(ws_echo(&mut b, JSON, "b").await, "b");
        let mut c = server.tcp_client().await;
        assert_eq!(c.echo("c").await, "c");
        assert_full(&server).await;

        // Another address is not affected, on either listener.
        let stream = connect_from(LOCALHOST_2, server.tcp)
            .await
            .expect("connect from 127.0.0.2");
        let mut d = TcpClient {
            stream,
            framing: Framing::default(),
            wire: JSON,
        };
        assert_eq!(d.echo("d").await, "d");
        let stream = connect_from(LOCALHOST_2, server.ws)
            .await
            .expect("connect from 127.0.0.2");
        let mut e = ws_over(stream, server.ws, "/")
            .await
            .expect("upgrade from 127.0.0.2");
        assert_eq!(ws_echo(&mut e, JSON, "e").await, "e");
        let mut f = connect_from(LOCALHOST_2, server.ws)
            .await
            .expect("connect from 127.0.0.2");
        let status = upgrade_status(&mut f, "/").await;
        assert!(
            status.starts_with("HTTP/1.1 101"),
            "a third connection from 127.0.0.2: {status:?}"
        );

        // The refused ones took no place, and the held ones still work.
        assert_eq!(a.echo("a2").await, "a2");
        assert_eq!(ws_echo(&mut b, JSON, "b2").await, "b2");
        assert_eq!(c.echo("c2").await, "c2");
        assert_eq!(d.echo("d2").await, "d2");
        assert_eq!(ws_echo(&mut e, JSON, "e2").await, "e2");
        assert_full(&server).await;

        // When one from 127.0.0.1 leaves, its place is free again, and only that one: once
        // over WebSocket, once over TCP.
        drop(a);
        server.wait_connections(5).await;
        let mut g = ws_connect(server.ws, "/again")
            .await
            .expect("a place given back");
        assert_eq!(ws_echo(&mut g, JSON, "g").await, "g");
        assert_full(&server).await;
        drop(c);
        server.wait_connections(5).await;
        let mut h = server.tcp_client().await;
        assert_eq!(h.echo("h").await, "h");
        assert_full(&server).await;
        assert_eq!(ws_echo(&mut b, JSON, "b3").await, "b3");
        assert_eq!(ws_echo(&mut g, JSON, "g2").await, "g2");
        assert_eq!(d.echo("d3").await, "d3");
        server.shutdown().await;
    })
    .await;
}

const BURST: usize = 5;
const FLOOD: usize = 30;

/// The texts `<tag>0`, `<tag>1`, ... the burst lets through.
fn admitted(tag: &str) -> Vec<String> {
    (0..BURST).map(|i| format!("{tag}{i}")).collect()
}

/// Sends [`FLOOD`] echoes (`<tag>0`...) in one write; returns what was answered before the
/// gate's goodbye (which must be the rate limit's), then checks that nothing follows the
/// goodbye but the close.
async fn flood_tcp(c: &mut TcpClient, tag: &str) -> Vec<String> {
    let mut bytes = Vec::new();
    for i in 0..FLOOD {
        bytes.extend(c.framing.frame(&c.wire.echo(&format!("{tag}{i}"))));
    }
    // One write: the kernel takes it all before the server reads any of it.
    c.send_raw(&bytes).await;
    let mut answered = Vec::new();
    loop {
        let text = c.recv_echo().await;
        if text.starts_with("goodbye:") {
            assert_eq!(text, "goodbye:rate limit", "TCP {tag}");
            break;
        }
        answered.push(text);
    }
    assert_eq!(
        c.expect_closed().await.0,
        0,
        "TCP {tag}: nothing after the goodbye"
    );
    answered
}

/// [`flood_tcp`] over WebSocket: the messages back to back. The server may close the
/// connection before the last ones are written (it stops reading at the limit): a failed
/// send ends the flood, but not before the burst.
async fn flood_ws(ws: &mut Ws, tag: &str) -> Vec<String> {
    for i in 0..FLOOD {
        let msg = WsMessage::binary(JSON.echo(&format!("{tag}{i}")));
        if let Err(e) = ws.send(msg).await {
            assert!(i > BURST, "WebSocket {tag}: message #{i} not sent: {e}");
            break;
        }
    }
    let mut answered = Vec::new();
    loop {
        let text = match ws_next(ws).await {
            Ok(WsMessage::Binary(b)) => JSON.decode_echo(&b),
            other => panic!("WebSocket {tag}: expected an answer or the goodbye, got {other:?}"),
        };
        if text.starts_with("goodbye:") {
            assert_eq!(text, "goodbye:rate limit", "WebSocket {tag}");
            break;
        }
        answered.push(text);
    }
    let end = ws_next(ws).await;
    assert!(end.is_err(), "WebSocket {tag}: after the goodbye: {end:?}");
    answered
}

/// `max_msg_rate` and its burst, per connection: of a flood, exactly the burst is answered,
/// then comes the gate's goodbye, then the close; over TCP and WebSocket, on a fresh
/// connection (its bucket starts full) and on one that spent tokens and then rested (the
/// bucket refills up to the burst, no more). The module sees exactly the admitted messages.
/// Connections under the rate are never cut.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_msg_rate_closes_a_flooding_connection_only() {
    bounded(TEST_TIMEOUT, async {
        let server = start_with(
            GateConfig {
                max_msg_rate: 10,
                max_msg_burst: BURST as u32,
                ..base()
            },
            say_goodbye,
        )
        .await;
        // Calm ones, one per listener, each at 5 per second (under the rate) all along.
        let calm = talkers(&server, "c", 15, ms(200)).await;

        // Fresh connections.
        let mut fresh_tcp = server.tcp_client().await;
        assert_eq!(flood_tcp(&mut fresh_tcp, "ft").await, admitted("ft"));
        let mut fresh_ws = ws_connect(server.ws, "/").await.expect("upgrade");
        assert_eq!(flood_ws(&mut fresh_ws, "fw").await, admitted("fw"));
        // Two tokens spent, then a second's rest: ten tokens' worth, capped at the burst.
        let mut rested_tcp = server.tcp_client().await;
        assert_eq!(rested_tcp.echo("rt-a").await, "rt-a");
        assert_eq!(rested_tcp.echo("rt-b").await, "rt-b");
        let mut rested_ws = ws_connect(server.ws, "/").await.expect("upgrade");
        assert_eq!(ws_echo(&mut rested_ws, JSON, "rw-a").await, "rw-a");
        assert_eq!(ws_echo(&mut rested_ws, JSON, "rw-b").await, "rw-b");
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(flood_tcp(&mut rested_tcp, "rt").await, admitted("rt"));
        assert_eq!(flood_ws(&mut rested_ws, "rw").await, admitted("rw"));

        // The module saw exactly what was admitted, then the close.
        for (first, tag, before) in [
            ("ft0", "ft", &[][..]),
            ("fw0", "fw", &[][..]),
            ("rt-a", "rt", &["rt-a", "rt-b"][..]),
            ("rw-a", "rw", &["rw-a", "rw-b"][..]),
        ] {
            let conn = conn_that_said(&server, first).await;
            wait_closed(&server, conn).await;
            let mut want = vec!["new".to_owned()];
            want.extend(before.iter().map(|t| format!("msg:{t}")));
            want.extend(admitted(tag).iter().map(|t| format!("msg:{t}")));
            want.push("close".to_owned());
            assert_eq!(kinds_of(&server.events().await, conn), want, "{tag}");
        }

        let (mut calm_tcp, mut calm_ws) = calm.await.expect("the calm ones were spared");
        assert_eq!(calm_tcp.echo("calm").await, "calm");
        assert_eq!(ws_echo(&mut calm_ws, JSON, "calm").await, "calm");
        server.wait_connections(2).await;
        server.shutdown().await;
    })
    .await;
}
