//! Black-box WebSocket tests: echo with text and binary in, binary out, any path, TCP and WS
//! clients sharing one module, 1009 over max_msg_len, 405 for non-GET, 400 for plain GET.

mod common;

use std::time::{Duration, Instant};

use common::*;
use futures_util::SinkExt;
use longlink::agent::Transport;
use longlink::{Encoding, GateConfig};
use tokio_tungstenite::tungstenite::Message as WsMessage;

#[tokio::test]
async fn ws_echo_text_and_binary_in_binary_out() {
    bounded(TEST_TIMEOUT, async {
        let server = start(config(Encoding::Json)).await;
        let wire = Wire(Encoding::Json);
        let mut ws = ws_connect(server.ws, "/").await.expect("upgrade");
        // Text in: the JSON payload as a text message.
        ws.send(WsMessage::text(r#"{"Echo":{"text":"via text"}}"#))
            .await
            .unwrap();
        match ws_next(&mut ws).await {
            Ok(WsMessage::Binary(b)) => {
                // No length prefix inside the message: the payload bytes exactly.
                assert_eq!(&b[..], br#"{"Echo":{"text":"via text"}}"#);
            }
            other => panic!("expected binary, got {other:?}"),
        }
        // Binary in.
        assert_eq!(ws_echo(&mut ws, wire, "via binary").await, "via binary");
        // A bigger message, close to the 8192 limit.
        let text = "q".repeat(8000);
        assert_eq!(ws_echo(&mut ws, wire, &text).await, text);
        let agents = server.gate.agents();
        assert_eq!(agents.len(), 1);
        assert_eq!(agents[0].transport(), Transport::Ws);
        ws.close(None).await.unwrap();
        server.wait_connections(0).await;
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn ws_protobuf_echo_golden() {
    bounded(TEST_TIMEOUT, async {
        let server = start(config(Encoding::Protobuf)).await;
        let mut ws = ws_connect(server.ws, "/ws").await.expect("upgrade");
        ws.send(WsMessage::binary(vec![0x00, 0x01, 0x08, 0x96, 0x01]))
            .await
            .unwrap();
        match ws_next(&mut ws).await {
            Ok(WsMessage::Binary(b)) => assert_eq!(&b[..], &[0x00, 0x01, 0x08, 0x96, 0x01]),
            other => panic!("expected binary, got {other:?}"),
        }
        assert_eq!(ws_echo(&mut ws, Wire(Encoding::Protobuf), "pb").await, "pb");
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn ws_any_path_and_query() {
    bounded(TEST_TIMEOUT, async {
        let server = start(config(Encoding::Json)).await;
        for path in ["/any/path?x=1", "/", "/a/b/c/d?e=f&g=h", "/%20space"] {
            let mut ws = ws_connect(server.ws, path)
                .await
                .unwrap_or_else(|e| panic!("upgrade on {path}: {e}"));
            assert_eq!(ws_echo(&mut ws, Wire(Encoding::Json), path).await, path);
        }
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn tcp_and_ws_clients_share_one_module() {
    bounded(TEST_TIMEOUT, async {
        let server = start(config(Encoding::Json)).await;
        let wire = Wire(Encoding::Json);
        let mut tcp = server.tcp_client().await;
        let mut ws = ws_connect(server.ws, "/any/path?x=1").await.unwrap();
        for i in 0..5 {
            assert_eq!(tcp.echo(&format!("t{i}")).await, format!("t{i}"));
            assert_eq!(
                ws_echo(&mut ws, wire, &format!("w{i}")).await,
                format!("w{i}")
            );
        }
        assert_eq!(server.gate.connections(), 2);
        let routed = server.module.call(STEP, |ctx| ctx.routed).await.unwrap();
        assert_eq!(routed, 10);
        drop(tcp);
        ws.close(None).await.unwrap();
        server.wait_connections(0).await;
        let module = server.module.clone();
        wait_for("both close events", || {
            let module = module.clone();
            async move {
                module
                    .call(STEP, |ctx| {
                        ctx.events.iter().filter(|e| e.kind == "close").count() == 2
                    })
                    .await
                    .unwrap()
            }
        })
        .await;
        // Per connection: new, its five messages in order, close.
        let events = server.events().await;
        for (transport, prefix) in [(Transport::Tcp, "t"), (Transport::Ws, "w")] {
            let kinds: Vec<String> = events
                .iter()
                .filter(|e| e.transport == transport)
                .map(|e| e.kind.clone())
                .collect();
            let mut want = vec!["new".to_owned()];
            want.extend((0..5).map(|i| format!("msg:{prefix}{i}")));
            want.push("close".to_owned());
            assert_eq!(kinds, want, "{transport:?}");
        }
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn ws_message_over_max_msg_len_gets_close_1009() {
    bounded(TEST_TIMEOUT, async {
        let server = start(GateConfig {
            max_msg_len: 1024,
            ..config(Encoding::Json)
        })
        .await;
        let wire = Wire(Encoding::Json);
        let mut healthy = ws_connect(server.ws, "/").await.unwrap();
        assert_eq!(ws_echo(&mut healthy, wire, "before").await, "before");
        let mut ws = ws_connect(server.ws, "/").await.unwrap();
        assert_eq!(ws_echo(&mut ws, wire, "ok").await, "ok");
        let text = "o".repeat(1100);
        ws.send(WsMessage::binary(wire.echo(&text))).await.unwrap();
        let close = match ws_next(&mut ws).await {
            Ok(m) => panic!("unexpected message {m:?}"),
            Err(e) => e,
        };
        match close {
            WsEnd::Close(Some(code), _) => assert_eq!(code, 1009, "{close:?}"),
            other => panic!("expected close code 1009, got {other:?}"),
        }
        assert_eq!(ws_echo(&mut healthy, wire, "after").await, "after");
        server.wait_connections(1).await;
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn ws_text_message_over_max_msg_len_gets_close_1009() {
    bounded(TEST_TIMEOUT, async {
        let server = start(GateConfig {
            max_msg_len: 100,
            ..config(Encoding::Json)
        })
        .await;
        let mut ws = ws_connect(server.ws, "/").await.unwrap();
        ws.send(WsMessage::text("x".repeat(101))).await.unwrap();
        let close = ws_next(&mut ws).await.expect_err("closed");
        assert!(
            matches!(close, WsEnd::Close(Some(1009), _)),
            "expected 1009, got {close:?}"
        );
        server.wait_connections(0).await;
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn ws_bad_payload_closes_that_connection_only() {
    bounded(TEST_TIMEOUT, async {
        let server = start(config(Encoding::Json)).await;
        let wire = Wire(Encoding::Json);
        let mut healthy = ws_connect(server.ws, "/").await.unwrap();
        assert_eq!(ws_echo(&mut healthy, wire, "before").await, "before");
        for bad in [
            &br#"{"Nope":{}}"#[..],
            b"not json",
            br#"{"Echo":{},"Num":{}}"#,
        ] {
            let mut ws = ws_connect(server.ws, "/").await.unwrap();
            ws.send(WsMessage::binary(bad.to_vec())).await.unwrap();
            // Closed: a close frame (normal closure) or an error, but no reply.
            let end = ws_next(&mut ws).await.expect_err("closed");
            assert!(
                !matches!(end, WsEnd::Close(Some(1009), _)),
                "not a size error: {end:?}"
            );
        }
        assert_eq!(ws_echo(&mut healthy, wire, "after").await, "after");
        server.wait_connections(1).await;
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn ws_close_flushes_then_closes() {
    bounded(TEST_TIMEOUT, async {
        let server = start(config(Encoding::Json)).await;
        let wire = Wire(Encoding::Json);
        let mut ws = ws_connect(server.ws, "/").await.unwrap();
        ws.send(WsMessage::binary(wire.encode(
            "CloseAfter",
            ID_CLOSE_AFTER,
            &CloseAfter { n: 3 },
        )))
        .await
        .unwrap();
        for i in 0..3 {
            match ws_next(&mut ws).await {
                Ok(WsMessage::Binary(b)) => assert_eq!(wire.decode_echo(&b), format!("bye{i}")),
                other => panic!("expected binary, got {other:?}"),
            }
        }
        let end = ws_next(&mut ws).await.expect_err("closed");
        assert_eq!(
            end,
            WsEnd::Close(Some(1000), String::new()),
            "a normal close"
        );
        server.wait_connections(0).await;
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn non_get_request_gets_405() {
    bounded(TEST_TIMEOUT, async {
        let server = start(config(Encoding::Json)).await;
        for method in ["POST", "PUT", "DELETE", "HEAD"] {
            let resp = http_raw(
                server.ws,
                &format!("{method} /any HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"),
            )
            .await;
            assert!(resp.starts_with("HTTP/1.1 405"), "{method}: {resp:?}");
        }
        // A POST carrying upgrade headers is still refused.
        let resp = http_raw(server.ws, &upgrade_request("POST", "/")).await;
        assert!(resp.starts_with("HTTP/1.1 405"), "{resp:?}");
        server.wait_connections(0).await;
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn plain_get_without_upgrade_gets_400() {
    bounded(TEST_TIMEOUT, async {
        let server = start(config(Encoding::Json)).await;
        let mut healthy = ws_connect(server.ws, "/").await.unwrap();
        let resp = http_raw(server.ws, "GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(resp.starts_with("HTTP/1.1 400"), "{resp:?}");
        // Garbage instead of HTTP.
        let resp = http_raw(server.ws, "\x01\x02\x03 nonsense\r\n\r\n").await;
        assert!(resp.starts_with("HTTP/1.1 400"), "{resp:?}");
        assert_eq!(
            ws_echo(&mut healthy, Wire(Encoding::Json), "ok").await,
            "ok"
        );
        server.wait_connections(1).await;
        server.shutdown().await;
    })
    .await;
}

/// A correct upgrade request followed at once by a WebSocket frame in the same write: the
/// bytes read past the request head are not lost.
#[tokio::test]
async fn ws_frame_in_the_same_packet_as_the_handshake() {
    bounded(TEST_TIMEOUT, async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let server = start(config(Encoding::Json)).await;
        let mut s = tokio::net::TcpStream::connect(server.ws).await.unwrap();
        let payload = br#"{"Echo":{"text":"early"}}"#;
        let mut req = upgrade_request("GET", "/x").into_bytes();
        // A masked binary frame, FIN set, mask key 0 (so the payload is sent as is).
        req.push(0x82);
        req.push(0x80 | payload.len() as u8);
        req.extend([0, 0, 0, 0]);
        req.extend_from_slice(payload);
        s.write_all(&req).await.unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        let want_tail = payload.as_slice();
        loop {
            let n = tokio::time::timeout(STEP, s.read(&mut buf))
                .await
                .expect("reply in time")
                .unwrap();
            assert!(n > 0, "closed early: {:?}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&buf[..n]);
            if got.windows(want_tail.len()).any(|w| w == want_tail) {
                break;
            }
        }
        let text = String::from_utf8_lossy(&got);
        assert!(text.starts_with("HTTP/1.1 101"), "{text}");
        assert!(
            text.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
            "{text}"
        );
        server.shutdown().await;
    })
    .await;
}

/// An outgoing message over max_msg_len on WebSocket: write returns an error, the connection
/// stays open.
#[tokio::test]
async fn ws_outgoing_message_over_max_msg_len_is_refused() {
    bounded(TEST_TIMEOUT, async {
        let server = start(GateConfig {
            max_msg_len: 1000,
            ..config(Encoding::Json)
        })
        .await;
        let wire = Wire(Encoding::Json);
        let mut ws = ws_connect(server.ws, "/").await.unwrap();
        ws.send(WsMessage::binary(wire.encode(
            "TooBig",
            ID_TOO_BIG,
            &TooBig { size: 2000 },
        )))
        .await
        .unwrap();
        match ws_next(&mut ws).await {
            Ok(WsMessage::Binary(b)) => {
                let text = wire.decode_echo(&b);
                assert!(
                    text.starts_with("err:") && text.contains("too long"),
                    "{text}"
                );
            }
            other => panic!("expected binary, got {other:?}"),
        }
        assert_eq!(ws_echo(&mut ws, wire, "still open").await, "still open");
        server.shutdown().await;
    })
    .await;
}

/// A WebSocket client that vanishes without a close frame: the connection task ends.
#[tokio::test]
async fn ws_client_dropped_without_close_frame_leaves_no_task() {
    bounded(TEST_TIMEOUT, async {
        let server = start(config(Encoding::Json)).await;
        let wire = Wire(Encoding::Json);
        let mut ws = ws_connect(server.ws, "/").await.unwrap();
        assert_eq!(ws_echo(&mut ws, wire, "x").await, "x");
        drop(ws);
        server.wait_connections(0).await;
        // A socket to the WS port that never sends its handshake holds a place only until it
        // leaves.
        let idle = tokio::net::TcpStream::connect(server.ws).await.unwrap();
        server.wait_connections(1).await;
        drop(idle);
        server.wait_connections(0).await;
        server.shutdown().await;
    })
    .await;
}

/// A handshake that never completes is dropped after http_timeout.
#[tokio::test]
async fn ws_handshake_times_out() {
    bounded(TEST_TIMEOUT, async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let server = start(GateConfig {
            http_timeout: Duration::from_millis(300),
            ..config(Encoding::Json)
        })
        .await;
        let mut s = tokio::net::TcpStream::connect(server.ws).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        server.wait_connections(1).await;
        let mut buf = Vec::new();
        let _ = tokio::time::timeout(STEP, s.read_to_end(&mut buf))
            .await
            .expect("closed after http_timeout");
        server.wait_connections(0).await;
        server.shutdown().await;
    })
    .await;
}

/// Stopping the app: a WebSocket client gets its pending messages, then a normal close.
#[tokio::test]
async fn app_stop_closes_ws_with_a_close_frame() {
    bounded(TEST_TIMEOUT, async {
        let server = start(config(Encoding::Json)).await;
        let wire = Wire(Encoding::Json);
        let mut ws = ws_connect(server.ws, "/").await.unwrap();
        assert_eq!(ws_echo(&mut ws, wire, "x").await, "x");
        let log = server.log.clone();
        server.stop.stop();
        let end = ws_next(&mut ws).await.expect_err("closed");
        assert_eq!(end, WsEnd::Close(Some(1000), String::new()));
        stops_within(STEP, server.app).await;
        assert_eq!(server.gate.connections(), 0);
        let log = log.lock().unwrap().clone();
        assert_eq!(
            log.last().map(|e| e.kind.as_str()),
            Some("close"),
            "{log:?}"
        );
    })
    .await;
}

/// Stopping the app is bounded by its shutdown timeout (5 s in these tests), even while a
/// WebSocket handshake is pending: the handshake must not hold shutdown up until
/// http_timeout (30 s here).
#[tokio::test]
async fn app_stop_is_not_held_up_by_a_pending_ws_handshake() {
    bounded(Duration::from_secs(40), async {
        let server = start(GateConfig {
            http_timeout: Duration::from_secs(30),
            ..config(Encoding::Json)
        })
        .await;
        let _idle = tokio::net::TcpStream::connect(server.ws).await.unwrap();
        server.wait_connections(1).await;
        let t = Instant::now();
        server.stop.stop();
        let app = server.app;
        let _ = tokio::time::timeout(Duration::from_secs(35), app).await;
        assert!(
            t.elapsed() < Duration::from_secs(8),
            "stop took {:?} with shutdown_timeout = 5 s",
            t.elapsed()
        );
    })
    .await;
}
