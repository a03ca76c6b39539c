//! Hostile and careless clients against a gate with its defaults (issue 14): each test sends
//! what such a client sends and checks what a server on the open internet must promise: a
//! bound on memory, a deadline, replies that are not lost, other connections unharmed.

mod common;

use std::time::Duration;

use common::*;
use longlink::{Encoding, GateConfig};
use tokio::time::Instant;

/// One test at a time: the memory bounds are read from this process's RSS, which the other
/// tests' floods would move.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A TCP client with a small receive buffer, so that what it does not read stays on the
/// server rather than in the kernel.
async fn small_window_client(server: &Server) -> TcpClient {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    let stream = socket.connect(server.tcp).await.expect("connect");
    stream.set_nodelay(true).unwrap();
    TcpClient {
        stream,
        framing: Framing::default(),
        wire: Wire(server.encoding),
    }
}

// ---------------------------------------------------------------------------------------------
// 8. Slow consumers are bounded in bytes, not only in messages

/// Clients that never read, each sent 32 MB in 8 KB messages: far fewer than
/// `pending_write_num` messages, far more than `pending_write_bytes` (1 MiB by default)
/// bytes. Each is cut off once its queue holds a mebibyte; memory stays near that bound; a
/// healthy connection is served throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_consumers_are_cut_off_at_pending_write_bytes() {
    const SLOW: usize = 5;
    const FLOOD: Flood = Flood {
        n: 4000,
        size: 8000,
    };
    let _serial = SERIAL.lock().await;
    bounded(Duration::from_secs(60), async {
        let config = GateConfig {
            pending_write_num: 100_000, // not the bound under test
            ..config(Encoding::Json)
        };
        assert_eq!(config.pending_write_bytes, 1024 * 1024, "the default");
        let server = start(config).await;
        let mut healthy = server.tcp_client().await;
        assert_eq!(healthy.echo("before").await, "before");
        let mut slow = Vec::new();
        for i in 0..SLOW {
            let mut c = small_window_client(&server).await;
            assert_eq!(c.echo(&format!("slow {i}")).await, format!("slow {i}"));
            slow.push(c);
        }
        let before = rss();
        for c in &mut slow {
            c.send_msg("Flood", ID_FLOOD, &FLOOD).await;
        }
        let floods = server.wait_floods(SLOW, Duration::from_secs(40)).await;
        let grown = rss().saturating_sub(before);
        for r in &floods {
            assert!(!r.open_after, "a slow consumer was kept: {r:?}");
            assert!(
                r.first_error.as_deref().unwrap_or("").contains("bytes"),
                "cut off by the byte bound: {r:?}"
            );
            assert!(r.sent < FLOOD.n, "{r:?}");
        }
        // 5 × 32 MB were offered; the bound lets each hold about 1 MiB (plus a write batch).
        assert!(
            grown < 30 << 20,
            "RSS grew by {} MB for {SLOW} slow consumers",
            grown >> 20
        );
        assert_eq!(healthy.echo("during").await, "during");
        server.wait_connections(1).await;
        for c in &mut slow {
            c.expect_closed().await;
        }
        assert_eq!(healthy.echo("after").await, "after");
        server.shutdown().await;
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// 4. A TCP half-close means "no more requests", not "drop the replies"

/// Clients that send their requests, shut down their write side at once
/// (`shutdown(SHUT_WR)`) and read on get every reply, then the server's FIN.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_half_close_gets_every_reply_then_eof() {
    use tokio::io::AsyncWriteExt;
    const TRIALS: usize = 50;
    const REQUESTS: usize = 40;
    let _serial = SERIAL.lock().await;
    bounded(Duration::from_secs(60), async {
        let server = start(config(Encoding::Json)).await;
        let wire = Wire(Encoding::Json);
        for trial in 0..TRIALS {
            let mut c = server.tcp_client().await;
            let mut bytes = Vec::new();
            for i in 0..REQUESTS {
                bytes.extend(c.framing.frame(&wire.echo(&format!("{trial}.{i}"))));
            }
            c.send_raw(&bytes).await;
            c.stream.shutdown().await.expect("shutdown(SHUT_WR)");
            let (got, end) = c.echoes_to_end(STEP).await;
            let want: Vec<String> = (0..REQUESTS).map(|i| format!("{trial}.{i}")).collect();
            assert_eq!(got, want, "trial {trial}: the replies, in order");
            assert_eq!(end, Ended::Eof, "trial {trial}: a FIN, not a reset");
        }
        server.wait_connections(0).await;
        server.shutdown().await;
    })
    .await;
}

/// More requests before the half-close than `pending_write_num` (2000): the replies produced
/// after the EOF are written as they come, so the queue never overflows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_half_close_after_more_requests_than_the_queue_holds() {
    use tokio::io::AsyncWriteExt;
    const REQUESTS: usize = 5000;
    let _serial = SERIAL.lock().await;
    bounded(Duration::from_secs(60), async {
        let server = start(config(Encoding::Json)).await;
        let wire = Wire(Encoding::Json);
        let mut client = server.tcp_client().await;
        let mut bytes = Vec::new();
        for i in 0..REQUESTS {
            bytes.extend(client.framing.frame(&wire.echo(&i.to_string())));
        }
        // About 150 KB: the kernel's buffers take it all before any reply is read.
        client.send_raw(&bytes).await;
        client.stream.shutdown().await.expect("shutdown(SHUT_WR)");
        let (got, end) = client.echoes_to_end(STEP).await;
        let want: Vec<String> = (0..REQUESTS).map(|i| i.to_string()).collect();
        assert_eq!(got, want, "every reply, in order");
        assert_eq!(end, Ended::Eof);
        server.shutdown().await;
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// 9. A frame begun and never finished has a deadline: `read_timeout`, on by default

/// Connections that send half a frame and stall are closed at `read_timeout` (1 s here; 15 s
/// by default), on both transports, while `idle_timeout` is off: a connection that sent
/// nothing at all, and one that finishes its frames, stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_a_frame_is_closed_at_read_timeout() {
    use tokio::io::AsyncWriteExt;
    const STALLED: usize = 200;
    assert_eq!(GateConfig::default().read_timeout, Duration::from_secs(15));
    assert_eq!(GateConfig::default().idle_timeout, Duration::ZERO);
    let _serial = SERIAL.lock().await;
    bounded(Duration::from_secs(30), async {
        let config = GateConfig {
            read_timeout: Duration::from_secs(1),
            ..config(Encoding::Json)
        };
        let server = start(config).await;
        let mut silent = server.tcp_client().await;
        let mut healthy = server.tcp_client().await;
        let mut stalled = Vec::new();
        for i in 0..STALLED {
            let mut c = server.tcp_client().await;
            if i % 2 == 0 {
                // A length of 100, then 10 of its bytes.
                c.send_raw(&[0, 100]).await;
                c.send_raw(&[b'{'; 10]).await;
            } else {
                // A finished frame, then the next one's first length byte only.
                let mut bytes = c.framing.frame(&c.wire.echo("first"));
                bytes.push(0);
                c.send_raw(&bytes).await;
                assert_eq!(c.recv_echo().await, "first");
            }
            stalled.push(c);
        }
        // A WebSocket that sends a frame header with a 1000-byte payload and stalls.
        let mut ws = tokio::net::TcpStream::connect(server.ws).await.unwrap();
        assert!(upgrade_status(&mut ws, "/").await.contains("101"));
        ws.write_all(&[0x82, 0xFE, 0x03, 0xE8, 1, 2, 3, 4, 9])
            .await
            .unwrap();
        server.wait_connections(STALLED + 3).await;
        let started = Instant::now();
        // The healthy connection keeps finishing its frames, each within the deadline.
        for i in 0..8 {
            tokio::time::sleep(Duration::from_millis(250)).await;
            assert_eq!(healthy.echo(&format!("{i}")).await, format!("{i}"));
        }
        server.wait_connections(2).await;
        let took = started.elapsed();
        assert!(took < Duration::from_secs(5), "closed after {took:?}");
        for c in &mut stalled {
            c.expect_closed().await;
        }
        let (_, _) = tokio::time::timeout(STEP, read_to_end(&mut ws))
            .await
            .expect("the stalled WebSocket is closed");
        assert_eq!(silent.echo("still here").await, "still here");
        assert_eq!(healthy.echo("after").await, "after");
        server.shutdown().await;
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// 2. One client that does not read cannot hold up the shutdown drain of the others

/// A stop while one client's socket is full (its writer blocked): every other connection
/// still gets every reply to what the server took, then the goodbye, then a FIN; the stuck
/// one is reset at its own `close_timeout`, and the stop takes about that long, not the
/// whole shutdown deadline (5 s here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_client_does_not_hold_up_the_drain_of_the_others() {
    const REQUESTS: usize = 500;
    let _serial = SERIAL.lock().await;
    bounded(Duration::from_secs(30), async {
        let config = GateConfig {
            max_msg_len: 65_535,
            pending_write_num: 10_000,
            pending_write_bytes: 0, // the stuck client holds its flood
            close_timeout: Duration::from_secs(1),
            ..config(Encoding::Json)
        };
        let server = start_with(config, say_goodbye).await;
        let mut healthy = server.tcp_client().await;
        assert_eq!(healthy.echo("before").await, "before");
        let mut stuck = small_window_client(&server).await;
        stuck
            .send_msg(
                "Flood",
                ID_FLOOD,
                &Flood {
                    n: 300,
                    size: 60_000,
                },
            )
            .await;
        server.wait_floods(1, STEP).await;
        let queued: usize = server.gate.agents().iter().map(|a| a.queued()).sum();
        assert!(
            queued > 0,
            "precondition: the stuck client's writer is blocked"
        );
        let wire = healthy.wire;
        let mut bytes = Vec::new();
        for i in 0..REQUESTS {
            bytes.extend(healthy.framing.frame(&wire.echo(&i.to_string())));
        }
        healthy.send_raw(&bytes).await;
        assert_eq!(healthy.recv_echo().await, "0");
        let started = Instant::now();
        server.stop.stop();
        let (rest, end) = healthy.echoes_to_end(Duration::from_secs(10)).await;
        let mut got = vec!["0".to_owned()];
        got.extend(rest);
        let goodbye = got.pop();
        assert_eq!(
            goodbye.as_deref(),
            Some("goodbye:shutdown"),
            "the last of {} messages",
            got.len() + 1
        );
        let want: Vec<String> = (0..got.len()).map(|i| i.to_string()).collect();
        assert_eq!(got, want, "every reply, in order, before the goodbye");
        assert_eq!(end, Ended::Eof);
        stops_within(Duration::from_secs(10), server.app).await;
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(4),
            "the stop took {took:?} (close_timeout 1 s, deadline 5 s)"
        );
        let (_, ended) = stuck.expect_closed().await;
        assert_eq!(ended, Ended::Reset, "the stuck client is reset");
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// 10. A kicked connection that keeps sending is gone for the application at once

/// The application closes a connection whose client keeps sending: the close event comes at
/// once (the application's counts, such as a room's `online`, drop), though the gate
/// discards the client's input for up to `close_timeout` (5 s) before the socket goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_connection_that_keeps_sending_gets_its_close_event_at_once() {
    let _serial = SERIAL.lock().await;
    bounded(Duration::from_secs(30), async {
        let server = start(config(Encoding::Json)).await;
        let mut c = server.tcp_client().await;
        assert_eq!(c.echo("hi").await, "hi");
        let frame = c.framing.frame(&c.wire.echo("more"));
        let (mut rx, mut tx) = c.stream.into_split();
        let sender = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            while tx.write_all(&frame).await.is_ok() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        let reader = tokio::spawn(async move { read_to_end_half(&mut rx).await });
        let agent = server.gate.agents().pop().expect("the agent");
        let started = Instant::now();
        agent.close();
        let deadline = started + Duration::from_secs(10);
        loop {
            let events = server.events().await;
            if events
                .iter()
                .any(|e| e.kind == "close" && e.conn == agent.id())
            {
                break;
            }
            assert!(Instant::now() < deadline, "no close event");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(1),
            "the close event took {took:?}"
        );
        // The socket goes once the client stops sending (or at close_timeout).
        sender.abort();
        server.wait_connections(0).await;
        let _ = reader.await;
        server.shutdown().await;
    })
    .await;
}

/// Reads a read half until EOF or an error.
async fn read_to_end_half(rx: &mut tokio::net::tcp::OwnedReadHalf) -> usize {
    use tokio::io::AsyncReadExt;
    let mut total = 0;
    let mut buf = vec![0; 64 * 1024];
    while let Ok(n @ 1..) = rx.read(&mut buf).await {
        total += n;
    }
    total
}
