//! Black-box TCP tests: echo in JSON and protobuf, golden frame bytes for every length-field
//! width and byte order, coalesced and split frames, event order, close / destroy, panics,
//! oversize outgoing messages, and shutdown flushing.

mod common;

use std::time::Duration;

use common::*;
use longlink::agent::Transport;
use longlink::{Encoding, GateConfig};

#[tokio::test]
async fn json_echo_golden_bytes_2_byte_big_endian() {
    bounded(TEST_TIMEOUT, async {
        let server = start(config(Encoding::Json)).await;
        let mut c = server.tcp_client().await;
        // 45-byte payload -> header 00 2d (DESIGN.md section 2).
        let text = "a".repeat(25);
        let payload = format!(r#"{{"Echo":{{"text":"{text}"}}}}"#);
        assert_eq!(payload.len(), 45);
        let mut frame = vec![0x00, 0x2d];
        frame.extend_from_slice(payload.as_bytes());
        c.send_raw(&frame).await;
        // The reply re-encodes the same message: the same bytes come back.
        assert_eq!(c.recv_exact(frame.len()).await, frame);
        assert_eq!(c.echo("hello").await, "hello");
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn protobuf_echo_and_golden_int32_150() {
    bounded(TEST_TIMEOUT, async {
        let server = start(config(Encoding::Protobuf)).await;
        let mut c = server.tcp_client().await;
        // Num (an Int32Value) is registered second: id 1. Int32Value{150} -> 00 01 08 96 01.
        let frame = [0x00, 0x05, 0x00, 0x01, 0x08, 0x96, 0x01];
        c.send_raw(&frame).await;
        assert_eq!(c.recv_exact(frame.len()).await, frame);
        // Echo{"hi"}, id 0: 00 00 | 0a 02 68 69.
        let frame = [0x00, 0x06, 0x00, 0x00, 0x0a, 0x02, 0x68, 0x69];
        c.send_raw(&frame).await;
        assert_eq!(c.recv_exact(frame.len()).await, frame);
        // An empty body is valid (a default message): Echo{""} comes back as just the id.
        c.send_raw(&[0x00, 0x02, 0x00, 0x00]).await;
        assert_eq!(c.recv_exact(4).await, [0x00, 0x02, 0x00, 0x00]);
        assert_eq!(c.echo("protobuf").await, "protobuf");
        server.shutdown().await;
    })
    .await;
}

/// Every width and byte order: the reply's header bytes are checked against literals.
#[tokio::test]
async fn length_field_widths_and_byte_orders_golden() {
    bounded(TEST_TIMEOUT, async {
        // Payload {"Echo":{"text":"hi"}} is 22 bytes = 0x16.
        let payload = br#"{"Echo":{"text":"hi"}}"#;
        assert_eq!(payload.len(), 0x16);
        let cases: [(usize, bool, &[u8]); 6] = [
            (1, false, &[0x16]),
            (1, true, &[0x16]),
            (2, false, &[0x00, 0x16]),
            (2, true, &[0x16, 0x00]),
            (4, false, &[0x00, 0x00, 0x00, 0x16]),
            (4, true, &[0x16, 0x00, 0x00, 0x00]),
        ];
        for (len, le, header) in cases {
            let server = start(GateConfig {
                len_msg_len: len,
                little_endian: le,
                ..config(Encoding::Json)
            })
            .await;
            let framing = Framing {
                len,
                little_endian: le,
            };
            let mut c = TcpClient::connect(server.tcp, framing, Wire(Encoding::Json)).await;
            let mut frame = header.to_vec();
            frame.extend_from_slice(payload);
            c.send_raw(&frame).await;
            let reply = c.recv_exact(frame.len()).await;
            assert_eq!(
                &reply[..len],
                header,
                "header for len_msg_len={len} little_endian={le}"
            );
            assert_eq!(&reply[len..], payload);
            // A longer message through the same framing (two-byte and four-byte lengths
            // with distinct bytes; one byte limited to 255).
            let text = "z".repeat(if len == 1 { 200 } else { 300 });
            assert_eq!(c.echo(&text).await, text);
            server.shutdown().await;
        }
    })
    .await;
}

#[tokio::test]
async fn golden_4_byte_little_endian_protobuf() {
    bounded(TEST_TIMEOUT, async {
        let server = start(GateConfig {
            len_msg_len: 4,
            little_endian: true,
            ..config(Encoding::Protobuf)
        })
        .await;
        let framing = Framing {
            len: 4,
            little_endian: true,
        };
        let mut c = TcpClient::connect(server.tcp, framing, Wire(Encoding::Protobuf)).await;
        // The TCP length is little-endian but the protobuf id stays big-endian.
        let frame = [0x05, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x96, 0x01];
        c.send_raw(&frame).await;
        assert_eq!(c.recv_exact(frame.len()).await, frame);
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn several_frames_in_one_write() {
    bounded(TEST_TIMEOUT, async {
        for encoding in [Encoding::Json, Encoding::Protobuf] {
            let server = start(config(encoding)).await;
            let mut c = server.tcp_client().await;
            let wire = Wire(encoding);
            let mut bytes = Vec::new();
            for i in 0..20 {
                bytes.extend(Framing::default().frame(&wire.echo(&format!("m{i}"))));
            }
            c.send_raw(&bytes).await;
            for i in 0..20 {
                let reply = c.recv().await;
                assert_eq!(wire.decode_echo(&reply), format!("m{i}"), "{encoding:?}");
            }
            server.shutdown().await;
        }
    })
    .await;
}

#[tokio::test]
async fn one_frame_split_byte_by_byte() {
    bounded(TEST_TIMEOUT, async {
        for encoding in [Encoding::Json, Encoding::Protobuf] {
            let server = start(config(encoding)).await;
            let mut c = server.tcp_client().await;
            let wire = Wire(encoding);
            // Two frames, the second one's header straddling the first's end.
            let mut bytes = Framing::default().frame(&wire.echo("split-one"));
            bytes.extend(Framing::default().frame(&wire.echo("split-two")));
            for b in &bytes {
                c.send_raw(&[*b]).await;
                // Give the server a chance to read each byte on its own (not an assertion).
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            assert_eq!(wire.decode_echo(&c.recv().await), "split-one");
            assert_eq!(wire.decode_echo(&c.recv().await), "split-two");
            assert_eq!(c.echo("after").await, "after");
            server.shutdown().await;
        }
    })
    .await;
}

#[tokio::test]
async fn events_new_messages_close_in_order() {
    bounded(TEST_TIMEOUT, async {
        let server = start(config(Encoding::Json)).await;
        let mut c = server.tcp_client().await;
        for t in ["a", "b", "c"] {
            assert_eq!(c.echo(t).await, t);
        }
        // Several more sent back to back, replies read afterwards.
        for t in ["d", "e", "f"] {
            let p = c.wire.echo(t);
            c.send(&p).await;
        }
        for t in ["d", "e", "f"] {
            assert_eq!(c.recv_echo().await, t);
        }
        drop(c);
        let module = server.module.clone();
        wait_for("the close event", || {
            let module = module.clone();
            async move {
                module
                    .call(STEP, |ctx| ctx.events.iter().any(|e| e.kind == "close"))
                    .await
                    .unwrap()
            }
        })
        .await;
        let events = server.events().await;
        let conn = events[0].conn;
        assert!(events.iter().all(|e| e.conn == conn), "{events:?}");
        assert!(events.iter().all(|e| e.transport == Transport::Tcp));
        let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "new", "msg:a", "msg:b", "msg:c", "msg:d", "msg:e", "msg:f", "close"
            ]
        );
        server.wait_connections(0).await;
        assert!(server.gate.agents().is_empty());
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn agent_addresses_match_the_socket() {
    bounded(TEST_TIMEOUT, async {
        let server = start(config(Encoding::Json)).await;
        let mut c = server.tcp_client().await;
        assert_eq!(c.echo("x").await, "x");
        let agents = server.gate.agents();
        assert_eq!(agents.len(), 1);
        assert_eq!(agents[0].remote_addr(), c.stream.local_addr().unwrap());
        assert_eq!(agents[0].local_addr(), server.tcp);
        assert_eq!(agents[0].transport(), Transport::Tcp);
        assert_eq!(server.gate.connections(), 1);
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn close_flushes_queued_writes_then_eof() {
    bounded(TEST_TIMEOUT, async {
        for encoding in [Encoding::Json, Encoding::Protobuf] {
            let server = start(config(encoding)).await;
            let mut c = server.tcp_client().await;
            c.send_msg("CloseAfter", ID_CLOSE_AFTER, &CloseAfter { n: 3 })
                .await;
            for i in 0..3 {
                assert_eq!(c.recv_echo().await, format!("bye{i}"));
            }
            let (extra, ended) = c.expect_closed().await;
            assert_eq!(extra, 0, "nothing after the three messages");
            assert_eq!(ended, Ended::Eof, "graceful close is a FIN, not a reset");
            server.wait_connections(0).await;
            server.shutdown().await;
        }
    })
    .await;
}

#[tokio::test]
async fn destroy_drops_queued_writes() {
    bounded(TEST_TIMEOUT, async {
        let server = start(config(Encoding::Json)).await;
        let mut healthy = server.tcp_client().await;
        let mut c = server.tcp_client().await;
        assert_eq!(c.echo("before").await, "before");
        c.send_msg("DestroyAfter", ID_DESTROY_AFTER, &DestroyAfter { n: 5 })
            .await;
        // The handler queues 5 messages and destroys in one go on the module's task; on this
        // single-threaded runtime the writer cannot run in between, so none may arrive.
        let (bytes, _ended) = c.expect_closed().await;
        assert_eq!(bytes, 0, "destroy must drop the queue");
        server.wait_connections(1).await;
        assert_eq!(healthy.echo("still here").await, "still here");
        server.shutdown().await;
    })
    .await;
}

/// The flood of [`blocked_writer`]: 300 messages of 60 kB (18 MB).
const N: u32 = 300;
const SIZE: u32 = 60_000;

/// Starts a server with `config` and fills the kernel buffers of a client that does not
/// read: the server has `queued > 0` messages waiting behind a writer blocked on the socket.
/// Returns the server, the client and its agent.
async fn blocked_writer(config: GateConfig) -> (Server, TcpClient, longlink::Agent) {
    let server = start(config).await;
    let mut c = server.tcp_client().await;
    c.send_msg("Flood", ID_FLOOD, &Flood { n: N, size: SIZE })
        .await;
    let module = server.module.clone();
    wait_for("the flood to be queued", || {
        let module = module.clone();
        async move {
            module
                .call(STEP, |ctx| !ctx.floods.is_empty())
                .await
                .unwrap()
        }
    })
    .await;
    let agents = server.gate.agents();
    assert_eq!(agents.len(), 1);
    let agent = agents[0].clone();
    assert!(agent.queued() > 0, "precondition: the writer is blocked");
    (server, c, agent)
}

fn big_queue(close_timeout: Duration) -> GateConfig {
    GateConfig {
        max_msg_len: 65_535,
        pending_write_num: 10_000,
        pending_write_bytes: 0, // the 18 MB flood is queued whole
        close_timeout,
        ..config(Encoding::Json)
    }
}

/// destroy() resets at once, even when the writer is blocked on a full socket: it must not
/// wait for close_timeout (30 s here), which is the deadline of a graceful close.
#[tokio::test]
async fn destroy_resets_at_once_even_with_a_blocked_writer() {
    bounded(Duration::from_secs(30), async {
        let (server, mut c, agent) = blocked_writer(big_queue(Duration::from_secs(30))).await;
        agent.destroy();
        assert_eq!(agent.queued(), 0, "the queue is dropped");
        server.wait_connections(0).await;
        let (bytes, _) = c.expect_closed().await;
        assert!(bytes < (N * SIZE) as usize);
        server.shutdown().await;
    })
    .await;
}

/// close() on a client that does not read: the flush gives up after close_timeout and the
/// connection is reset; its slot is given back.
#[tokio::test]
async fn close_gives_up_after_close_timeout_when_the_client_does_not_read() {
    bounded(Duration::from_secs(30), async {
        let (server, mut c, agent) = blocked_writer(big_queue(Duration::from_millis(300))).await;
        agent.close();
        assert!(!agent.is_open());
        assert!(
            agent
                .write(&Echo {
                    text: "late".into()
                })
                .is_err()
        );
        server.wait_connections(0).await;
        let (bytes, ended) = c.expect_closed().await;
        assert!(bytes < (N * SIZE) as usize);
        assert_eq!(ended, Ended::Reset);
        let events = server.events().await;
        assert_eq!(events.last().map(|e| e.kind.as_str()), Some("close"));
        server.shutdown().await;
    })
    .await;
}

/// close() while a write is blocked half-way through the queue: the flush that follows (in the
/// close) resumes where the interrupted one stopped, so the client, reading at last, gets every
/// queued message exactly once and intact, then a FIN.
#[tokio::test]
async fn close_during_a_blocked_write_delivers_every_message_once() {
    bounded(Duration::from_secs(30), async {
        let (server, mut c, agent) = blocked_writer(big_queue(Duration::from_secs(20))).await;
        agent.close();
        for i in 0..N {
            let text = c.recv_echo().await;
            assert_eq!(text.len(), SIZE as usize, "message {i} is whole");
            assert!(text.bytes().all(|b| b == b'x'), "message {i} is intact");
        }
        let (extra, ended) = c.expect_closed().await;
        assert_eq!(extra, 0, "nothing after the queued messages");
        assert_eq!(ended, Ended::Eof);
        server.shutdown().await;
    })
    .await;
}

/// Stopping the app with a client that does not read: the flush is abandoned and the
/// connection reset once the app's shutdown timeout (5 s in these tests) has passed, even
/// when the gate's close_timeout is longer (30 s here).
#[tokio::test]
async fn app_stop_resets_a_non_reading_client_after_shutdown_timeout() {
    bounded(Duration::from_secs(40), async {
        let (server, _c, _agent) = blocked_writer(big_queue(Duration::from_secs(30))).await;
        let t = std::time::Instant::now();
        server.stop.stop();
        let _ = tokio::time::timeout(Duration::from_secs(35), server.app).await;
        assert!(
            t.elapsed() < Duration::from_secs(8),
            "stop took {:?} with shutdown_timeout = 5 s",
            t.elapsed()
        );
    })
    .await;
}

#[tokio::test]
async fn panicking_handlers_keep_connection_and_module() {
    bounded(TEST_TIMEOUT, async {
        for encoding in [Encoding::Json, Encoding::Protobuf] {
            let server = start(config(encoding)).await;
            let mut other = server.tcp_client().await;
            let mut c = server.tcp_client().await;
            assert_eq!(c.echo("one").await, "one");
            // A routed handler that panics: the module catches it and keeps serving.
            c.send_msg("Panic", ID_PANIC, &Panic {}).await;
            assert_eq!(c.echo("two").await, "two");
            // A sync handler that panics on the connection's reader.
            c.send_msg("SyncPanic", ID_SYNC_PANIC, &SyncPanic {}).await;
            assert_eq!(c.echo("three").await, "three");
            // Several more, back to back.
            for _ in 0..5 {
                c.send_msg("Panic", ID_PANIC, &Panic {}).await;
                c.send_msg("SyncPanic", ID_SYNC_PANIC, &SyncPanic {}).await;
            }
            assert_eq!(c.echo("four").await, "four");
            assert_eq!(other.echo("other").await, "other");
            // The sync handler path still works too.
            c.send_msg("SyncEcho", ID_SYNC_ECHO, &SyncEcho { text: "s".into() })
                .await;
            assert_eq!(c.recv_echo().await, "sync:s");
            assert_eq!(server.gate.connections(), 2);
            let routed = server.module.call(STEP, |ctx| ctx.routed).await.unwrap();
            assert_eq!(routed, 5, "{encoding:?}");
            server.shutdown().await;
        }
    })
    .await;
}

#[tokio::test]
async fn outgoing_message_over_max_msg_len_is_refused_connection_stays() {
    bounded(TEST_TIMEOUT, async {
        for encoding in [Encoding::Json, Encoding::Protobuf] {
            let server = start(GateConfig {
                max_msg_len: 1000,
                ..config(encoding)
            })
            .await;
            let mut c = server.tcp_client().await;
            c.send_msg("TooBig", ID_TOO_BIG, &TooBig { size: 2000 })
                .await;
            let reply = c.recv_echo().await;
            assert!(reply.starts_with("err:"), "{reply}");
            assert!(reply.contains("too long"), "{reply}");
            // Just under the limit is fine: the reply to TooBig is the big echo, then "ok".
            c.send_msg("TooBig", ID_TOO_BIG, &TooBig { size: 900 })
                .await;
            assert_eq!(c.recv_echo().await.len(), 900);
            assert_eq!(c.recv_echo().await, "ok");
            assert_eq!(c.echo("still open").await, "still open");
            assert_eq!(server.gate.connections(), 1);
            server.shutdown().await;
        }
    })
    .await;
}

/// The outgoing limit on a 1-byte length field is clamped to 255 even when max_msg_len is
/// larger.
#[tokio::test]
async fn outgoing_limit_clamped_to_the_length_field() {
    bounded(TEST_TIMEOUT, async {
        let server = start(GateConfig {
            len_msg_len: 1,
            max_msg_len: 100_000,
            ..config(Encoding::Json)
        })
        .await;
        let framing = Framing {
            len: 1,
            little_endian: false,
        };
        let mut c = TcpClient::connect(server.tcp, framing, Wire(Encoding::Json)).await;
        // {"TooBig":{"size":300}} fits; the Echo it asks for does not fit in 255 bytes.
        c.send_msg("TooBig", ID_TOO_BIG, &TooBig { size: 300 })
            .await;
        let reply = c.recv_echo().await;
        assert!(reply.starts_with("err:"), "{reply}");
        assert_eq!(c.echo("ok").await, "ok");
        server.shutdown().await;
    })
    .await;
}

/// Stopping the app flushes what is queued before closing: a client that was not reading
/// while the server queued ~18 MB still receives every message, then EOF.
#[tokio::test]
async fn app_stop_flushes_queued_writes() {
    bounded(Duration::from_secs(30), async {
        // The server queues all N; the client is not reading.
        let (server, mut c, agent) =
            blocked_writer(big_queue(GateConfig::default().close_timeout)).await;
        let flood = server.floods().await.remove(0);
        assert_eq!(flood.sent, N, "{flood:?}");
        let queued = agent.queued();
        assert!(
            queued > 0,
            "precondition: something is still queued when stop is called"
        );

        server.stop.stop();
        let mut got = 0;
        let ended = loop {
            match tokio::time::timeout(STEP, c.try_recv())
                .await
                .expect("data")
            {
                Ok(p) => {
                    assert_eq!(c.wire.decode_echo(&p).len(), SIZE as usize);
                    got += 1;
                }
                Err(e) => break e,
            }
        };
        assert_eq!(
            got, N,
            "every queued message arrives (queued at stop: {queued})"
        );
        assert_eq!(ended, Ended::Eof);
        stops_within(STEP, server.app).await;
        assert_eq!(server.gate.connections(), 0);
    })
    .await;
}

/// Stopping the app with idle connections: each client sees EOF and the close events reach
/// the module before it stops.
#[tokio::test]
async fn app_stop_closes_idle_connections_with_close_events() {
    bounded(TEST_TIMEOUT, async {
        let server = start(config(Encoding::Json)).await;
        let mut a = server.tcp_client().await;
        let mut b = server.tcp_client().await;
        assert_eq!(a.echo("a").await, "a");
        assert_eq!(b.echo("b").await, "b");
        let module = server.module.clone();
        let log = server.log.clone();
        server.stop.stop();
        assert_eq!(a.expect_closed().await, (0, Ended::Eof));
        assert_eq!(b.expect_closed().await, (0, Ended::Eof));
        stops_within(STEP, server.app).await;
        assert_eq!(server.gate.connections(), 0);
        assert!(module.call(STEP, |ctx| ctx.events.len()).await.is_err());
        // The gate stopped first, so both close events reached the still-running module.
        let log = log.lock().unwrap().clone();
        let closes = log.iter().filter(|e| e.kind == "close").count();
        assert_eq!(closes, 2, "{log:?}");
    })
    .await;
}
