//! Bad input over TCP: each offending connection is closed, and a healthy connection opened
//! before it keeps being answered. No connection task is left behind.

mod common;

use common::*;
use longlink::{Encoding, GateConfig};
use tokio::io::AsyncWriteExt;

/// Opens a healthy connection (checked with an echo), then a bad one that sends `bytes`;
/// the bad one must be closed by the server, the healthy one must still echo, and the
/// connection count must return to 1, then 0.
async fn offending_connection_is_closed(config: GateConfig, bytes: &[u8]) {
    let encoding = config.encoding;
    let server = start(config).await;
    let mut healthy = server.tcp_client().await;
    assert_eq!(healthy.echo("before").await, "before");
    let mut bad = server.tcp_client().await;
    bad.send_raw(bytes).await;
    let (_, ended) = bad.expect_closed().await;
    // EOF, or a reset when unread bytes were left in the server's socket: both are a close.
    let _ = ended;
    assert_eq!(healthy.echo("after").await, "after", "{encoding:?}");
    server.wait_connections(1).await;
    assert_eq!(server.gate.agents().len(), 1);
    drop(healthy);
    server.wait_connections(0).await;
    // new/close pairs for both connections reached the module.
    let events = server.events().await;
    let closes = events.iter().filter(|e| e.kind == "close").count();
    assert_eq!(closes, 2, "{events:?}");
    server.shutdown().await;
}

fn json() -> GateConfig {
    config(Encoding::Json)
}

fn protobuf() -> GateConfig {
    config(Encoding::Protobuf)
}

#[tokio::test]
async fn oversize_length_header() {
    bounded(TEST_TIMEOUT, async {
        // max_msg_len is 8192; ff ff announces 65535.
        offending_connection_is_closed(json(), &[0xff, 0xff]).await;
        // Just over the limit, with a payload following.
        let mut frame = (8193u16).to_be_bytes().to_vec();
        frame.extend(vec![b'x'; 100]);
        offending_connection_is_closed(json(), &frame).await;
        // With a 4-byte length field: a huge length is refused before any allocation.
        let config = GateConfig {
            len_msg_len: 4,
            ..json()
        };
        let server = start(config).await;
        let framing = Framing {
            len: 4,
            little_endian: false,
        };
        let mut healthy = TcpClient::connect(server.tcp, framing, Wire(Encoding::Json)).await;
        assert_eq!(healthy.echo("h").await, "h");
        let mut bad = TcpClient::connect(server.tcp, framing, Wire(Encoding::Json)).await;
        bad.send_raw(&[0xff, 0xff, 0xff, 0xff]).await;
        bad.expect_closed().await;
        assert_eq!(healthy.echo("h2").await, "h2");
        server.wait_connections(1).await;
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn zero_length_frame() {
    bounded(TEST_TIMEOUT, async {
        offending_connection_is_closed(json(), &[0x00, 0x00]).await;
        offending_connection_is_closed(protobuf(), &[0x00, 0x00]).await;
    })
    .await;
}

#[tokio::test]
async fn length_header_then_eof() {
    bounded(TEST_TIMEOUT, async {
        let server = start(json()).await;
        let mut healthy = server.tcp_client().await;
        assert_eq!(healthy.echo("before").await, "before");
        let mut bad = server.tcp_client().await;
        bad.send_raw(&[0x00, 0x05]).await;
        bad.stream.shutdown().await.unwrap(); // FIN after the header
        bad.expect_closed().await;
        assert_eq!(healthy.echo("after").await, "after");
        server.wait_connections(1).await;
        // Also a header cut in the middle (1 of 2 bytes), then EOF.
        let mut bad = server.tcp_client().await;
        bad.send_raw(&[0x00]).await;
        bad.stream.shutdown().await.unwrap();
        bad.expect_closed().await;
        server.wait_connections(1).await;
        assert_eq!(healthy.echo("again").await, "again");
        server.shutdown().await;
    })
    .await;
}

/// A partial frame, then silence, then the client goes away: the connection's task ends and
/// its slot is given back.
#[tokio::test]
async fn partial_frame_then_silence_then_disconnect_leaves_no_task() {
    bounded(TEST_TIMEOUT, async {
        let server = start(json()).await;
        let mut healthy = server.tcp_client().await;
        assert_eq!(healthy.echo("before").await, "before");
        let mut bad = server.tcp_client().await;
        // Header says 40 bytes, only 3 follow.
        bad.send_raw(&[0x00, 40, b'{', b'"', b'E']).await;
        server.wait_connections(2).await;
        // Silence: the server keeps waiting, and keeps serving the other connection.
        assert_eq!(healthy.echo("during").await, "during");
        assert_eq!(server.gate.connections(), 2);
        drop(bad);
        server.wait_connections(1).await;
        assert_eq!(server.gate.agents().len(), 1);
        assert_eq!(healthy.echo("after").await, "after");
        drop(healthy);
        server.wait_connections(0).await;
        assert!(server.gate.agents().is_empty());
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn invalid_json() {
    bounded(TEST_TIMEOUT, async {
        let f = Framing::default();
        offending_connection_is_closed(json(), &f.frame(b"not json")).await;
        offending_connection_is_closed(json(), &f.frame(br#"{"Echo":{"text":"x""#)).await;
        // A non-object top-level value.
        offending_connection_is_closed(json(), &f.frame(b"[1,2,3]")).await;
        offending_connection_is_closed(json(), &f.frame(br#""Echo""#)).await;
        // Zero keys.
        offending_connection_is_closed(json(), &f.frame(b"{}")).await;
        // Trailing garbage after the object.
        offending_connection_is_closed(json(), &f.frame(br#"{"Echo":{}} x"#)).await;
    })
    .await;
}

#[tokio::test]
async fn json_object_with_two_keys() {
    bounded(TEST_TIMEOUT, async {
        let f = Framing::default();
        offending_connection_is_closed(
            json(),
            &f.frame(br#"{"Echo":{"text":"a"},"Num":{"value":1}}"#),
        )
        .await;
    })
    .await;
}

#[tokio::test]
async fn json_body_of_the_wrong_shape() {
    bounded(TEST_TIMEOUT, async {
        let f = Framing::default();
        offending_connection_is_closed(json(), &f.frame(br#"{"Echo":{"text":5}}"#)).await;
        offending_connection_is_closed(json(), &f.frame(br#"{"Echo":[1]}"#)).await;
    })
    .await;
}

#[tokio::test]
async fn unknown_message_name() {
    bounded(TEST_TIMEOUT, async {
        let f = Framing::default();
        offending_connection_is_closed(json(), &f.frame(br#"{"Nope":{}}"#)).await;
        // Names are exact: a different case is another name.
        offending_connection_is_closed(json(), &f.frame(br#"{"echo":{"text":"a"}}"#)).await;
    })
    .await;
}

#[tokio::test]
async fn protobuf_id_out_of_range() {
    bounded(TEST_TIMEOUT, async {
        let f = Framing::default();
        // ID_COUNT is the first unregistered id.
        let mut payload = ID_COUNT.to_be_bytes().to_vec();
        payload.extend([0x0a, 0x01, b'x']);
        offending_connection_is_closed(protobuf(), &f.frame(&payload)).await;
        offending_connection_is_closed(protobuf(), &f.frame(&[0xff, 0xfe])).await;
        // Fewer than 2 bytes: no id at all.
        offending_connection_is_closed(protobuf(), &f.frame(&[0x00])).await;
    })
    .await;
}

#[tokio::test]
async fn protobuf_body_that_does_not_decode() {
    bounded(TEST_TIMEOUT, async {
        let f = Framing::default();
        // Echo (id 0), body: a truncated varint key.
        offending_connection_is_closed(protobuf(), &f.frame(&[0x00, 0x00, 0xff, 0xff])).await;
        // Echo, field 1 declared as a 10-byte string with only 1 byte present.
        offending_connection_is_closed(protobuf(), &f.frame(&[0x00, 0x00, 0x0a, 0x0a, b'x'])).await;
        // Echo.text with invalid UTF-8.
        offending_connection_is_closed(protobuf(), &f.frame(&[0x00, 0x00, 0x0a, 0x01, 0xff])).await;
    })
    .await;
}

/// A bad frame after good ones: replies already queued (here by the sync handler, which runs
/// on the reader before the bad frame is read) are flushed before the close.
#[tokio::test]
async fn good_frames_before_a_bad_one_are_answered() {
    bounded(TEST_TIMEOUT, async {
        let server = start(json()).await;
        let mut c = server.tcp_client().await;
        let f = Framing::default();
        let sync = |t: &str| {
            c.wire
                .encode("SyncEcho", ID_SYNC_ECHO, &SyncEcho { text: t.into() })
        };
        let mut bytes = f.frame(&sync("one"));
        bytes.extend(f.frame(&sync("two")));
        bytes.extend(f.frame(br#"{"Nope":{}}"#));
        c.send_raw(&bytes).await;
        assert_eq!(c.recv_echo().await, "sync:one");
        assert_eq!(c.recv_echo().await, "sync:two");
        let (rest, ended) = c.expect_closed().await;
        assert_eq!((rest, ended), (0, Ended::Eof));
        server.wait_connections(0).await;
        server.shutdown().await;
    })
    .await;
}

/// Incoming payloads of exactly max_msg_len are accepted; one byte more closes the
/// connection. With a 1-byte length field the limit is clamped to 255.
#[tokio::test]
async fn incoming_length_limit_is_inclusive() {
    bounded(TEST_TIMEOUT, async {
        for (len_msg_len, max_msg_len, limit) in [(2, 100u32, 100usize), (1, 100_000, 255)] {
            let server = start(GateConfig {
                len_msg_len,
                max_msg_len,
                ..json()
            })
            .await;
            let framing = Framing {
                len: len_msg_len,
                little_endian: false,
            };
            let wire = Wire(Encoding::Json);
            // {"Echo":{"text":"..."}} is 20 bytes plus the text.
            let exact = "e".repeat(limit - 20);
            assert_eq!(wire.echo(&exact).len(), limit);
            let mut c = TcpClient::connect(server.tcp, framing, wire).await;
            assert_eq!(c.echo(&exact).await, exact);
            if len_msg_len == 2 {
                let over = "o".repeat(limit - 19);
                let mut bad = TcpClient::connect(server.tcp, framing, wire).await;
                let payload = wire.echo(&over);
                bad.send(&payload).await;
                bad.expect_closed().await;
            }
            assert_eq!(c.echo("still").await, "still");
            server.shutdown().await;
        }
    })
    .await;
}

/// A client that connects and leaves without sending anything (and one that resets).
#[tokio::test]
async fn silent_and_reset_clients_leave_no_task() {
    bounded(TEST_TIMEOUT, async {
        let server = start(json()).await;
        let mut healthy = server.tcp_client().await;
        assert_eq!(healthy.echo("h").await, "h");
        let silent = server.tcp_client().await;
        server.wait_connections(2).await;
        drop(silent);
        server.wait_connections(1).await;
        // A reset: linger 0, with a partial frame sent.
        let mut reset = server.tcp_client().await;
        reset.send_raw(&[0x00, 0x10, b'{']).await;
        server.wait_connections(2).await;
        // Linger 0 on a non-blocking socket does not block: the close is a reset.
        #[allow(deprecated)]
        reset
            .stream
            .set_linger(Some(std::time::Duration::ZERO))
            .unwrap();
        drop(reset);
        server.wait_connections(1).await;
        assert_eq!(healthy.echo("h2").await, "h2");
        let events = server.events().await;
        assert_eq!(events.iter().filter(|e| e.kind == "close").count(), 2);
        server.shutdown().await;
    })
    .await;
}
