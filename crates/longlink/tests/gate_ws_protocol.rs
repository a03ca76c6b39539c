//! Black-box WebSocket protocol violations over a raw socket: each is closed with the close
//! code RFC 6455 gives it (1002 for a protocol error, 1007 for invalid UTF-8), not 1000, and
//! a client that floods pings without reading holds the server's memory to a bound.

mod common;

use common::*;
use longlink::Encoding;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A client frame: `b0` (FIN, RSV, opcode) and `payload`, masked with key 0 unless `masked`
/// is false (so the payload goes as is).
fn frame(b0: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mut f = vec![b0];
    let mask = if masked { 0x80 } else { 0 };
    match payload.len() {
        n @ 0..=125 => f.push(mask | n as u8),
        n => {
            f.push(mask | 126);
            f.extend((n as u16).to_be_bytes());
        }
    }
    if masked {
        f.extend([0, 0, 0, 0]);
    }
    f.extend_from_slice(payload);
    f
}

/// Upgrades a raw socket to the server's WebSocket port; returns it past the `101` head.
async fn upgraded(server: &Server) -> TcpStream {
    let mut s = TcpStream::connect(server.ws).await.unwrap();
    assert!(
        upgrade_status(&mut s, "/")
            .await
            .starts_with("HTTP/1.1 101")
    );
    s
}

/// Sends `bytes`, then reads until the server closes; returns the code of the close frame
/// it sent first (`None`: no close frame).
async fn close_code_after(server: &Server, bytes: &[u8]) -> Option<u16> {
    let mut s = upgraded(server).await;
    s.write_all(bytes).await.unwrap();
    let mut got = Vec::new();
    let _ = tokio::time::timeout(STEP, s.read_to_end(&mut got)).await;
    match got.as_slice() {
        [0x88, len, hi, lo, ..] if *len >= 2 => Some(u16::from_be_bytes([*hi, *lo])),
        _ => None,
    }
}

#[tokio::test]
async fn protocol_violations_close_with_1002_and_bad_utf8_with_1007() {
    bounded(TEST_TIMEOUT, async {
        let server = start(config(Encoding::Json)).await;
        let cases: [(&str, Vec<u8>, u16); 7] = [
            ("unmasked frame", frame(0x82, b"x", false), 1002),
            ("reserved bit", frame(0xC2, b"x", true), 1002),
            ("reserved opcode", frame(0x83, b"x", true), 1002),
            (
                "control frame over 125 bytes",
                frame(0x89, &[0; 126], true),
                1002,
            ),
            ("fragmented ping", frame(0x09, b"x", true), 1002),
            (
                "continuation without a start",
                frame(0x80, b"x", true),
                1002,
            ),
            (
                "text that is not UTF-8",
                frame(0x81, &[0xff, 0xfe], true),
                1007,
            ),
        ];
        for (what, bytes, code) in cases {
            assert_eq!(
                close_code_after(&server, &bytes).await,
                Some(code),
                "{what}"
            );
        }
        // The others were not disturbed.
        let mut canary = server.tcp_client().await;
        assert_eq!(canary.echo("still here").await, "still here");
        server.shutdown().await;
    })
    .await;
}

/// A client that sends pings and never reads: the server answers each with a pong, but stops
/// reading while its answers cannot be written, so the pongs waiting for the socket stay
/// bounded (this once grew by 200 MB in two seconds).
#[tokio::test]
async fn a_ping_flood_that_never_reads_holds_memory_to_a_bound() {
    bounded(TEST_TIMEOUT, async {
        let server = start(config(Encoding::Json)).await;
        let before = rss();
        let mut s = upgraded(&server).await;
        let ping = frame(0x89, &[7; 125], true);
        let burst: Vec<u8> = ping
            .iter()
            .copied()
            .cycle()
            .take(ping.len() * 512)
            .collect();
        // Up to 2 million pings of 125 bytes (260 MB) within 2 s; writes stop once the
        // server stops reading.
        let flood = async {
            for _ in 0..4_000 {
                if s.write_all(&burst).await.is_err() {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), flood).await;
        let grown = rss().saturating_sub(before);
        assert!(grown < 32 << 20, "RSS grew by {grown} bytes");
        let mut canary = server.tcp_client().await;
        assert_eq!(canary.echo("still here").await, "still here");
        drop(s);
        server.shutdown().await;
    })
    .await;
}
