//! Limits: max_conn_num across both listeners (TCP closed at once, WS refused with 503), a
//! connect burst never over the limit, and pending_write_num overflow with both policies.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use longlink::agent::QueueFullPolicy;
use longlink::{Encoding, GateConfig};
use tokio::io::AsyncWriteExt;

fn limited(max_conn_num: usize) -> GateConfig {
    GateConfig {
        max_conn_num,
        // Every place may be in its handshake: a burst here is of real clients, and these
        // tests are about max_conn_num alone (handshake_share: gate_ws_handshake.rs).
        handshake_share: 100,
        ..config(Encoding::Json)
    }
}

#[tokio::test]
async fn third_tcp_connection_is_closed_at_once() {
    bounded(TEST_TIMEOUT, async {
        let server = start(limited(2)).await;
        let mut a = server.tcp_client().await;
        let mut b = server.tcp_client().await;
        assert_eq!(a.echo("a").await, "a");
        assert_eq!(b.echo("b").await, "b");
        assert_eq!(server.gate.connections(), 2);

        let mut c = server.tcp_client().await;
        let (bytes, ended) = c.expect_closed().await;
        assert_eq!((bytes, ended), (0, Ended::Eof), "rejected with a clean FIN");
        assert_eq!(server.gate.connections(), 2);
        // The rejected connection never produced events.
        let events = server.events().await;
        assert_eq!(events.iter().filter(|e| e.kind == "new").count(), 2);

        // After one closes, a new one is accepted.
        drop(a);
        server.wait_connections(1).await;
        let mut d = server.tcp_client().await;
        assert_eq!(d.echo("d").await, "d");
        assert_eq!(b.echo("b2").await, "b2");
        assert_eq!(server.gate.connections(), 2);
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn ws_upgrade_over_the_limit_gets_503_one_count_across_listeners() {
    bounded(TEST_TIMEOUT, async {
        let server = start(limited(2)).await;
        let wire = Wire(Encoding::Json);
        // One TCP and one WS fill the limit: the count is shared.
        let mut a = server.tcp_client().await;
        assert_eq!(a.echo("a").await, "a");
        let mut w = ws_connect(server.ws, "/").await.expect("second fits");
        assert_eq!(ws_echo(&mut w, wire, "w").await, "w");
        assert_eq!(server.gate.connections(), 2);

        match ws_connect(server.ws, "/").await {
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                assert_eq!(resp.status().as_u16(), 503)
            }
            Err(e) => panic!("expected HTTP 503, got error {e}"),
            Ok(_) => panic!("expected HTTP 503, got an upgrade"),
        }
        let resp = http_raw(server.ws, &upgrade_request("GET", "/")).await;
        assert!(resp.starts_with("HTTP/1.1 503"), "{resp:?}");
        // A TCP connection over the limit is closed too.
        let mut c = server.tcp_client().await;
        assert_eq!(c.expect_closed().await, (0, Ended::Eof));
        server.wait_connections(2).await;

        // After the WS one closes, a WS upgrade is accepted again.
        w.close(None).await.unwrap();
        drop(w);
        server.wait_connections(1).await;
        let mut w2 = ws_connect(server.ws, "/again").await.expect("room again");
        assert_eq!(ws_echo(&mut w2, wire, "w2").await, "w2");
        assert_eq!(a.echo("a2").await, "a2");
        server.shutdown().await;
    })
    .await;
}

/// What a burst client holds on to while the others finish (its open connection).
type Held = Option<Box<dyn std::any::Any + Send>>;

/// One burst client: connects, sends an echo; `true` when answered (then it holds the
/// connection), `false` when refused or closed.
async fn burst_client(
    addr_tcp: std::net::SocketAddr,
    addr_ws: std::net::SocketAddr,
    i: usize,
    ws: bool,
) -> (bool, Held) {
    let wire = Wire(Encoding::Json);
    let text = format!("c{i}");
    if ws {
        return match ws_connect(addr_ws, "/burst").await {
            Ok(mut w) => {
                // Admitted by the handshake: it must be answered.
                assert_eq!(ws_echo(&mut w, wire, &text).await, text);
                (true, Some(Box::new(w)))
            }
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                assert_eq!(resp.status().as_u16(), 503, "client {i}");
                (false, None)
            }
            Err(e) => panic!("client {i}: unexpected websocket error {e}"),
        };
    }
    let mut c = TcpClient::connect(addr_tcp, Framing::default(), wire).await;
    let frame = Framing::default().frame(&wire.echo(&text));
    // A rejected connection may already be closed: the write may fail.
    if c.stream.write_all(&frame).await.is_err() {
        return (false, None);
    }
    match tokio::time::timeout(STEP, c.try_recv()).await {
        Ok(Ok(reply)) => {
            assert_eq!(wire.decode_echo(&reply), text);
            (true, Some(Box::new(c)))
        }
        Ok(Err(_)) => (false, None),
        Err(_) => panic!("client {i}: neither answered nor closed"),
    }
}

/// `clients` clients connect at once against max_conn_num = `limit` (every `ws_every`-th over
/// WebSocket); each sends an echo and holds its connection until all are done. Exactly
/// `limit` are answered, the others are refused, and the open count never goes over `limit`.
async fn burst(clients: usize, limit: usize, ws_every: Option<usize>) {
    let server = start(limited(limit)).await;
    let gate = server.gate.clone();
    let done = Arc::new(AtomicBool::new(false));
    let max_seen = Arc::new(AtomicUsize::new(0));
    let monitor = {
        let (done, max_seen) = (Arc::clone(&done), Arc::clone(&max_seen));
        tokio::spawn(async move {
            while !done.load(Ordering::Acquire) {
                max_seen.fetch_max(gate.connections(), Ordering::AcqRel);
                tokio::task::yield_now().await;
            }
        })
    };
    // Every client reaches the barrier with its answer; accepted ones then hold their
    // connection until `release` turns true.
    let barrier = Arc::new(tokio::sync::Barrier::new(clients + 1));
    let (release, released) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    for i in 0..clients {
        let barrier = Arc::clone(&barrier);
        let mut released = released.clone();
        let (tcp, ws) = (server.tcp, server.ws);
        let over_ws = ws_every.is_some_and(|k| i % k == 0);
        tasks.push(tokio::spawn(async move {
            let (accepted, held) = burst_client(tcp, ws, i, over_ws).await;
            barrier.wait().await;
            if accepted {
                released.wait_for(|r| *r).await.unwrap();
            }
            drop(held);
            accepted
        }));
    }
    tokio::time::timeout(Duration::from_secs(20), barrier.wait())
        .await
        .expect("every client answered or was refused");
    let open_while_held = server.gate.connections();
    let agents_while_held = server.gate.agents().len();
    release.send(true).unwrap();
    let mut accepted = 0;
    for t in tasks {
        if t.await.unwrap() {
            accepted += 1;
        }
    }
    done.store(true, Ordering::Release);
    monitor.await.unwrap();
    let max_seen = max_seen.load(Ordering::Acquire);
    assert!(max_seen <= limit, "saw {max_seen} open connections");
    assert_eq!(accepted, limit, "exactly the limit is served");
    assert_eq!(open_while_held, limit);
    assert_eq!(agents_while_held, limit);
    server.wait_connections(0).await;
    let events = server.events().await;
    assert_eq!(events.iter().filter(|e| e.kind == "new").count(), limit);
    server.shutdown().await;
}

/// 50 TCP clients at once against max_conn_num = 10.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_burst_never_exceeds_max_conn_num() {
    bounded(Duration::from_secs(30), burst(50, 10, None)).await;
}

/// 200 TCP clients at once against max_conn_num = 50.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_200_connects_never_exceeds_max_conn_num_50() {
    bounded(TEST_TIMEOUT, burst(200, 50, None)).await;
}

/// 50 clients, TCP and WebSocket mixed, against one shared max_conn_num = 10.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_tcp_ws_burst_never_exceeds_max_conn_num() {
    bounded(Duration::from_secs(30), burst(50, 10, Some(2))).await;
}

/// Flood parameters: 60 kB messages, up to 1000 of them (60 MB), far more than the kernel
/// buffers of a client that does not read.
const FLOOD: Flood = Flood {
    n: 1000,
    size: 60_000,
};

/// `close_timeout` is the flush deadline of a closing connection. The strict tests set it
/// long (30 s), so a connection cut off at pending_write_num must be seen to close because of
/// the overflow and not because of this deadline.
fn flooding(policy: QueueFullPolicy, close_timeout: Duration) -> GateConfig {
    GateConfig {
        max_msg_len: 65_535,
        pending_write_num: 8,
        queue_full: policy,
        close_timeout,
        ..config(Encoding::Json)
    }
}

const STRICT: Duration = Duration::from_secs(30);
const LENIENT: Duration = Duration::from_millis(500);

async fn wait_flood(server: &Server) -> FloodResult {
    server
        .wait_floods(1, Duration::from_secs(20))
        .await
        .remove(0)
}

/// A client that never reads is cut off when its queue overflows; another connection keeps
/// working. `close_timeout` is the gate's flush deadline (see [`flooding`]).
async fn tcp_slow_client_is_cut_off(close_timeout: Duration) {
    let server = start(flooding(QueueFullPolicy::Disconnect, close_timeout)).await;
    let mut healthy = server.tcp_client().await;
    assert_eq!(healthy.echo("before").await, "before");
    let mut slow = server.tcp_client().await;
    assert_eq!(slow.echo("hi").await, "hi");
    slow.send_msg("Flood", ID_FLOOD, &FLOOD).await;
    // The healthy connection is answered while the flood runs.
    assert_eq!(healthy.echo("during").await, "during");
    let r = wait_flood(&server).await;
    assert!(r.sent < FLOOD.n, "the flood was cut short: {r:?}");
    assert!(!r.open_after, "{r:?}");
    assert!(
        r.first_error
            .as_deref()
            .unwrap_or("")
            .contains("queue full"),
        "{r:?}"
    );
    // The slow connection goes away on the server, within STEP (5 s).
    server.wait_connections(1).await;
    assert_eq!(server.gate.agents().len(), 1);
    // The client sees the end of the stream: what it had buffered (less than the flood),
    // then a reset or EOF.
    let (bytes, _ended) = slow.expect_closed().await;
    assert!(
        bytes < (FLOOD.n as usize) * (FLOOD.size as usize),
        "{bytes} bytes"
    );
    assert_eq!(healthy.echo("after").await, "after");
    let events = server.events().await;
    assert_eq!(events.iter().filter(|e| e.kind == "close").count(), 1);
    server.shutdown().await;
}

/// Overflow destroys the connection at once: it must not wait for the close_timeout flush
/// deadline (30 s here) that applies to graceful closes.
#[tokio::test]
async fn queue_full_disconnects_only_the_slow_client() {
    bounded(Duration::from_secs(30), tcp_slow_client_is_cut_off(STRICT)).await;
}

/// The same with a short close_timeout, so that the rest is checked even if an overflow
/// waited for the flush deadline: the slow client is cut off, the other keeps working.
#[tokio::test]
async fn queue_full_disconnects_only_the_slow_client_short_close_timeout() {
    bounded(Duration::from_secs(30), tcp_slow_client_is_cut_off(LENIENT)).await;
}

/// The same over WebSocket.
async fn ws_slow_client_is_cut_off(close_timeout: Duration) {
    use futures_util::SinkExt;
    let server = start(flooding(QueueFullPolicy::Disconnect, close_timeout)).await;
    let wire = Wire(Encoding::Json);
    let mut healthy = ws_connect(server.ws, "/").await.unwrap();
    assert_eq!(ws_echo(&mut healthy, wire, "before").await, "before");
    let mut slow = ws_connect(server.ws, "/").await.unwrap();
    slow.send(tokio_tungstenite::tungstenite::Message::binary(
        wire.encode("Flood", ID_FLOOD, &FLOOD),
    ))
    .await
    .unwrap();
    let r = wait_flood(&server).await;
    assert!(r.sent < FLOOD.n, "{r:?}");
    assert!(!r.open_after, "{r:?}");
    server.wait_connections(1).await;
    assert_eq!(ws_echo(&mut healthy, wire, "after").await, "after");
    // The slow client gets what was buffered, then the end.
    let mut got = 0;
    while ws_next(&mut slow).await.is_ok() {
        got += 1;
    }
    assert!(got < FLOOD.n, "{got}");
    server.shutdown().await;
}

#[tokio::test]
async fn ws_queue_full_disconnects_only_the_slow_client() {
    bounded(Duration::from_secs(30), ws_slow_client_is_cut_off(STRICT)).await;
}

#[tokio::test]
async fn ws_queue_full_disconnects_only_the_slow_client_short_close_timeout() {
    bounded(Duration::from_secs(30), ws_slow_client_is_cut_off(LENIENT)).await;
}

/// With `QueueFullPolicy::Drop` the slow client keeps its connection; the overflow is
/// dropped and counted.
#[tokio::test]
async fn queue_full_drop_policy_keeps_the_connection() {
    bounded(Duration::from_secs(30), async {
        let server = start(flooding(QueueFullPolicy::Drop, STRICT)).await;
        let mut healthy = server.tcp_client().await;
        assert_eq!(healthy.echo("before").await, "before");
        let mut slow = server.tcp_client().await;
        assert_eq!(slow.echo("hi").await, "hi");
        slow.send_msg("Flood", ID_FLOOD, &FLOOD).await;
        let r = wait_flood(&server).await;
        assert!(r.open_after, "{r:?}");
        assert!(r.dropped > 0, "{r:?}");
        assert_eq!(u64::from(r.failed), r.dropped, "{r:?}");
        assert_eq!(r.sent + r.failed, FLOOD.n, "{r:?}");
        assert_eq!(server.gate.connections(), 2);
        let agent = server
            .gate
            .agents()
            .into_iter()
            .find(|a| a.id() == r.conn)
            .expect("the slow agent is still registered");
        assert!(agent.is_open());
        assert_eq!(agent.dropped(), r.dropped);
        assert_eq!(healthy.echo("during").await, "during");
        // The slow client now reads: it gets exactly the messages that were not dropped
        // (an echo sent now would be dropped too, while the queue is still full).
        for _ in 0..r.sent {
            assert_eq!(slow.recv_echo().await.len(), FLOOD.size as usize);
        }
        // Then the connection works as before.
        assert_eq!(slow.echo("ping").await, "ping");
        assert_eq!(agent.dropped(), r.dropped, "nothing more was dropped");
        assert_eq!(slow.echo("pong").await, "pong");
        assert_eq!(server.gate.connections(), 2);
        server.shutdown().await;
    })
    .await;
}

/// Over the limit, silent sockets on the WebSocket port wait for their 503 only up to a cap
/// (64 at once); beyond it they are closed at once, so a flood cannot pin sockets open for
/// http_timeout. A polite client still gets its 503 once the silent ones are gone.
#[tokio::test]
async fn refused_ws_handshakes_are_capped() {
    bounded(TEST_TIMEOUT, async {
        let server = start(limited(1)).await;
        let mut a = server.tcp_client().await;
        assert_eq!(a.echo("a").await, "a");
        // 64 silent sockets take every refusal place...
        let mut silent = Vec::new();
        for _ in 0..64 {
            silent.push(
                tokio::net::TcpStream::connect(server.ws)
                    .await
                    .expect("connect"),
            );
        }
        // ...so the next ones are closed without an answer, quickly (not after http_timeout).
        let mut closed_at_once = 0;
        for _ in 0..10 {
            let mut s = tokio::net::TcpStream::connect(server.ws)
                .await
                .expect("connect");
            let mut buf = [0u8; 64];
            let read = tokio::time::timeout(
                Duration::from_secs(2),
                tokio::io::AsyncReadExt::read(&mut s, &mut buf),
            )
            .await;
            if matches!(read, Ok(Ok(0)) | Ok(Err(_))) {
                closed_at_once += 1;
            }
        }
        assert!(
            closed_at_once >= 9,
            "only {closed_at_once} of 10 closed at once"
        );
        assert_eq!(server.gate.connections(), 1);
        // The silent ones leave; a real client gets its 503 again.
        for s in &mut silent {
            let _ = s.shutdown().await;
        }
        drop(silent);
        let mut got_503 = false;
        for _ in 0..50 {
            let resp = http_raw(server.ws, &upgrade_request("GET", "/")).await;
            if resp.starts_with("HTTP/1.1 503") {
                got_503 = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(got_503, "no 503 after the silent sockets left");
        assert_eq!(a.echo("a2").await, "a2");
        server.shutdown().await;
    })
    .await;
}
