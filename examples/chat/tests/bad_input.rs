//! Bad input against the chat server: each offending connection is closed, and the others
//! (two logged-in watchers of one room, one per transport) do not notice.

mod common;

use common::*;
use longlink_chat::msg::C2sUserHeartBeat;
use longlink_testkit::http::{http_raw, status_line};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What a bad client sends.
#[derive(Debug, Clone)]
enum Bad {
    /// One payload (a TCP frame or a binary WebSocket message).
    Payload(Vec<u8>),
    /// One WebSocket text message (a TCP frame on TCP).
    Text(String),
    /// Bytes written to the TCP socket as they are.
    Raw(Vec<u8>),
    /// Bytes written to the TCP socket, then the writing half closed.
    RawThenHangUp(Vec<u8>),
    /// A good heartbeat frame and these bytes in one TCP write: the heartbeat is answered,
    /// then the connection closes.
    GoodThenRaw(Vec<u8>),
}

/// A server with two bystanders in room 1: `a` (uid 1, TCP) and `b` (uid 2, WebSocket).
struct Scene {
    server: TestServer,
    a: Client,
    b: Client,
    round: u64,
}

const ROOM: u64 = 1;
const BAD_UID: u64 = 10;

impl Scene {
    async fn new(enc: Enc) -> Scene {
        let server = TestServer::start(enc).await;
        let mut a = server.login(Transport::Tcp, 1).await;
        let mut b = server.login(Transport::Ws, 2).await;
        assert_eq!(a.watch(ROOM).await, 1);
        assert_eq!(b.watch(ROOM).await, 2);
        Scene {
            server,
            a,
            b,
            round: 0,
        }
    }

    /// A new client on `t` (logged in as [`BAD_UID`] and watching the room if `login`) sends
    /// `bad` and must be closed; the bystanders must be untouched. Returns the WebSocket close
    /// code, if one came.
    async fn expect_rejected(
        &mut self,
        t: Transport,
        what: &str,
        bad: &Bad,
        login: bool,
    ) -> Option<u16> {
        let enc = self.server.enc;
        let ctx = format!("{enc:?}/{t:?}/login={login}: {what}");
        let mut c = self.server.connect(t).await;
        c.heartbeat().await;
        if login {
            c.login_uid(BAD_UID).await;
            assert_eq!(c.watch(ROOM).await, 3, "{ctx}");
        }
        // The server may close before it has read everything: a failed send is fine.
        let _ = match bad {
            Bad::Payload(p) => c.send_payload(p).await,
            Bad::Text(s) => c.send_text(s).await,
            Bad::Raw(bytes) => c.send_raw(bytes).await,
            Bad::RawThenHangUp(bytes) => {
                let r = c.send_raw(bytes).await;
                c.shutdown_write().await;
                r
            }
            Bad::GoodThenRaw(bytes) => {
                let hb = encode(enc, &C2sUserHeartBeat { ptime: 1 });
                let mut frame = (hb.len() as u16).to_be_bytes().to_vec();
                frame.extend_from_slice(&hb);
                frame.extend_from_slice(bytes);
                let r = c.send_raw(&frame).await;
                assert!(matches!(c.recv().await, Reply::HeartBeat(_)), "{ctx}");
                r
            }
        };
        let code = match c.recv_payload_within(TIMEOUT).await {
            Err(End::Closed { ws_code, .. }) => ws_code,
            Err(End::TimedOut) => panic!("{ctx}: the bad connection stayed open"),
            Ok(p) => panic!(
                "{ctx}: expected a close, got {:?}",
                decode(enc, &p).map_err(|_| String::from_utf8_lossy(&p).into_owned())
            ),
        };
        if login {
            // Its close event removes it from the room and logs it out.
            self.a.watch_until(ROOM, 2).await;
            self.a.tell(BAD_UID, "gone").await;
            self.a.expect_error(ERR_NOT_ONLINE).await;
        }
        self.check_untouched(t, &ctx).await;
        code
    }

    /// The bystanders still talk, and a new connection on `t` still logs in.
    async fn check_untouched(&mut self, t: Transport, ctx: &str) {
        self.round += 1;
        let text = format!("round {}", self.round);
        self.a.heartbeat().await;
        self.b.heartbeat().await;
        self.b.say(ROOM, &text).await;
        for c in [&mut self.a, &mut self.b] {
            let m = c.expect_message().await;
            assert_eq!((m.from_uid, m.text.as_str()), (2, text.as_str()), "{ctx}");
            c.expect_quiet().await;
        }
        let mut fresh = self.server.login(t, 50).await;
        fresh.heartbeat().await;
        fresh.tell(1, "hi").await;
        assert_eq!(self.a.expect_message().await.from_uid, 50, "{ctx}");
    }

    /// Runs `bad` on `transports`, logged in and not.
    async fn run(&mut self, transports: &[Transport], cases: &[(&str, Bad)]) {
        for &t in transports {
            for (what, bad) in cases {
                for login in [false, true] {
                    self.expect_rejected(t, what, bad, login).await;
                }
            }
        }
    }

    async fn finish(self) {
        let Scene { server, a, b, .. } = self;
        drop((a, b));
        server.shutdown().await;
    }
}

fn payload(bytes: &[u8]) -> Bad {
    Bad::Payload(bytes.to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_json_closes_the_connection() {
    bounded(TEST_TIMEOUT, async {
        let mut scene = Scene::new(Enc::Json).await;
        let cases = [
            ("invalid JSON", payload(br#"{"C2S_UserHeartBeat":"#)),
            ("not JSON", payload(b"hello")),
            ("not UTF-8", payload(&[0xff, 0xfe, 0xfd])),
            (
                "two keys",
                payload(br#"{"C2S_UserHeartBeat":{},"C2S_UserLogin":{}}"#),
            ),
            ("no key", payload(b"{}")),
            ("an array", payload(br#"[{"C2S_UserHeartBeat":{}}]"#)),
            ("a string", payload(br#""C2S_UserHeartBeat""#)),
            ("null", payload(b"null")),
            ("unknown name", payload(br#"{"C2S_Nope":{}}"#)),
            (
                "name in the wrong case",
                payload(br#"{"c2s_userheartbeat":{}}"#),
            ),
            ("Rust type name", payload(br#"{"C2sUserHeartBeat":{}}"#)),
            (
                "body of the wrong type",
                payload(br#"{"C2S_UserHeartBeat":{"ptime":"soon"}}"#),
            ),
            ("body a number", payload(br#"{"C2S_UserHeartBeat":5}"#)),
            (
                "uid out of range",
                payload(br#"{"C2S_UpdateWatchRoom":{"room_id":-1}}"#),
            ),
            (
                "protobuf to a JSON server",
                payload(&[0x00, 0x00, 0x08, 0x01]),
            ),
            ("trailing garbage", payload(br#"{"C2S_UserHeartBeat":{}}x"#)),
            (
                "outgoing-only S2C_Kick",
                payload(br#"{"S2C_Kick":{"reason":"x"}}"#),
            ),
            (
                "outgoing-only S2C_UserLogin",
                payload(br#"{"S2C_UserLogin":{"ret":1,"msg":"ok","uid":5}}"#),
            ),
            (
                "outgoing-only S2C_UpdateWatchRoom",
                payload(br#"{"S2C_UpdateWatchRoom":{"room_id":1,"online":1}}"#),
            ),
            (
                "outgoing-only S2C_Message",
                payload(br#"{"S2C_Message":{"room_id":1,"from_uid":1,"text":"x"}}"#),
            ),
            (
                "outgoing-only S2C_Error",
                payload(br#"{"S2C_Error":{"code":1,"msg":"x"}}"#),
            ),
            (
                "invalid JSON in a text message",
                Bad::Text("{not json".into()),
            ),
            (
                "outgoing-only in a text message",
                Bad::Text(r#"{"S2C_Kick":{}}"#.into()),
            ),
        ];
        scene.run(&Transport::ALL, &cases).await;
        scene.finish().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_protobuf_closes_the_connection() {
    bounded(TEST_TIMEOUT, async {
        let mut scene = Scene::new(Enc::Protobuf).await;
        let cases = [
            ("id 12, one past the table", payload(&[0x00, 0x0c])),
            // 65529 to 65535 are the resume protocol's (on in the chat's default config):
            // the id just below them is unregistered.
            ("id 65528", payload(&[0xff, 0xf8, 0x08, 0x01])),
            (
                "LL_Move, which only the server sends",
                payload(&[0xff, 0xf9, 0x08, 0x01]),
            ),
            (
                "LL_Session, which only the server sends",
                payload(&[0xff, 0xfb]),
            ),
            ("id 1 little-endian (256)", payload(&[0x01, 0x00])),
            ("one byte, shorter than an id", payload(&[0x00])),
            ("truncated string", payload(&[0x00, 0x01, 0x0a, 0x05, b'a'])),
            (
                "string not UTF-8",
                payload(&[0x00, 0x01, 0x0a, 0x02, 0xff, 0xfe]),
            ),
            ("wrong wire type", payload(&[0x00, 0x03, 0x0a, 0x01, 0x00])),
            (
                "varint too long",
                payload(&[
                    0x00, 0x00, 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                    0xff,
                ]),
            ),
            ("truncated varint", payload(&[0x00, 0x00, 0x08, 0xff])),
            ("field number 0", payload(&[0x00, 0x00, 0x00, 0x01])),
            (
                "JSON to a protobuf server",
                payload(br#"{"C2S_UserHeartBeat":{}}"#),
            ),
            (
                "outgoing-only S2C_UserLogin (2)",
                payload(&[0x00, 0x02, 0x08, 0x01, 0x18, 0x05]),
            ),
            (
                "outgoing-only S2C_UpdateWatchRoom (4)",
                payload(&[0x00, 0x04, 0x08, 0x01]),
            ),
            (
                "outgoing-only S2C_Message (6)",
                payload(&[0x00, 0x06, 0x22, 0x01, b'x']),
            ),
            (
                "outgoing-only S2C_Kick (7)",
                payload(&[0x00, 0x07, 0x0a, 0x01, b'x']),
            ),
            ("outgoing-only S2C_Kick (7), empty", payload(&[0x00, 0x07])),
            (
                "outgoing-only S2C_Error (8)",
                payload(&[0x00, 0x08, 0x08, 0x01]),
            ),
        ];
        scene.run(&Transport::ALL, &cases).await;
        scene.finish().await;
    })
    .await;
}

/// A heartbeat payload of exactly `len` bytes.
fn heartbeat_of_len(enc: Enc, len: usize) -> Vec<u8> {
    match enc {
        // JSON allows trailing whitespace.
        Enc::Json => {
            let mut p = br#"{"C2S_UserHeartBeat":{"ptime":1}}"#.to_vec();
            p.resize(len, b' ');
            p
        }
        // An unknown length-delimited field (number 15) pads the body; decoders skip it.
        Enc::Protobuf => {
            let mut p = vec![0x00, 0x00, 0x08, 0x01, 0x7a];
            let mut pad = len - p.len() - 1;
            let mut lenbytes = Vec::new();
            write_varint(&mut lenbytes, pad as u64);
            while p.len() + lenbytes.len() + pad != len {
                pad -= 1;
                lenbytes.clear();
                write_varint(&mut lenbytes, pad as u64);
            }
            p.extend_from_slice(&lenbytes);
            p.resize(len, b'p');
            p
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_at_the_size_limit_pass_and_one_byte_more_closes() {
    bounded(TEST_TIMEOUT, async {
        for enc in Enc::ALL {
            let mut scene = Scene::new(enc).await;
            for t in Transport::ALL {
                let ok = heartbeat_of_len(enc, MAX_MSG_LEN);
                assert_eq!(ok.len(), MAX_MSG_LEN);
                let mut c = scene.server.connect(t).await;
                c.send_payload(&ok).await.unwrap();
                assert!(
                    matches!(c.recv().await, Reply::HeartBeat(_)),
                    "{enc:?}/{t:?}"
                );
                c.heartbeat().await;

                let too_big = heartbeat_of_len(enc, MAX_MSG_LEN + 1);
                let code = scene
                    .expect_rejected(t, "one byte over max_msg_len", &Bad::Payload(too_big), true)
                    .await;
                if t == Transport::Ws {
                    assert_eq!(
                        code,
                        Some(1009),
                        "{enc:?}: close code for a message too big"
                    );
                }
            }
            scene.finish().await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tcp_framing_closes_the_connection() {
    bounded(TEST_TIMEOUT, async {
        for enc in Enc::ALL {
            let mut scene = Scene::new(enc).await;
            let mut oversize = 8193u16.to_be_bytes().to_vec();
            oversize.resize(2 + 8193, b' ');
            let cases = [
                ("zero-length frame", Bad::Raw(vec![0x00, 0x00])),
                (
                    "zero-length frame after a good one",
                    Bad::GoodThenRaw(vec![0x00, 0x00]),
                ),
                ("oversize frame (8193)", Bad::Raw(oversize)),
                (
                    "oversize length only (65535)",
                    Bad::Raw(vec![0xff, 0xff, 0x00]),
                ),
                (
                    "a 4-byte length field",
                    Bad::Raw(vec![0x00, 0x00, 0x00, 0x05, b'h', b'e', b'l', b'l', b'o']),
                ),
                (
                    "half a frame, then hang up",
                    Bad::RawThenHangUp(vec![0x00, 0x10, 0x01, 0x02]),
                ),
                (
                    "half a length, then hang up",
                    Bad::RawThenHangUp(vec![0x00]),
                ),
            ];
            scene.run(&[Transport::Tcp], &cases).await;
            scene.finish().await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_websocket_messages_close_the_connection() {
    bounded(TEST_TIMEOUT, async {
        for enc in Enc::ALL {
            let mut scene = Scene::new(enc).await;
            let cases = [
                ("empty binary message", payload(&[])),
                ("empty text message", Bad::Text(String::new())),
                ("a 64 KiB message", payload(&vec![b' '; 65536])),
            ];
            scene.run(&[Transport::Ws], &cases).await;
            let code = scene
                .expect_rejected(
                    Transport::Ws,
                    "a 64 KiB message",
                    &payload(&vec![b' '; 65536]),
                    false,
                )
                .await;
            assert_eq!(code, Some(1009), "{enc:?}");
            scene.finish().await;
        }
    })
    .await;
}

/// Sends a raw HTTP request to the WebSocket port and returns the status line.
async fn http_status(addr: std::net::SocketAddr, request: &str) -> String {
    status_line(&http_raw(addr, request).await).to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_websocket_requests_to_the_websocket_port_are_refused() {
    bounded(TEST_TIMEOUT, async {
        let mut scene = Scene::new(Enc::Json).await;
        let ws = scene.server.ws;
        let post = http_status(
            ws,
            "POST /chat HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
        )
        .await;
        assert!(post.contains(" 405"), "POST: {post:?}");
        // `/` is the demo page (src/web.rs); a plain GET elsewhere is refused.
        let plain = http_status(ws, "GET /chat HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(plain.contains(" 400"), "plain GET: {plain:?}");
        let garbage = http_status(ws, "\x00\x01\x02 nonsense\r\n\r\n").await;
        assert!(
            garbage.is_empty() || garbage.contains(" 400"),
            "garbage: {garbage:?}"
        );
        scene
            .check_untouched(Transport::Ws, "after HTTP requests")
            .await;
        // TCP-framed chat bytes to the WebSocket port.
        let mut c = TcpStream::connect(ws).await.unwrap();
        c.write_all(&[
            0x00, 0x05, b'h', b'e', b'l', b'l', b'o', b'\r', b'\n', b'\r', b'\n',
        ])
        .await
        .unwrap();
        let mut sink = Vec::new();
        tokio::time::timeout(TIMEOUT, c.read_to_end(&mut sink))
            .await
            .expect("closed in time")
            .ok();
        scene
            .check_untouched(Transport::Tcp, "after TCP bytes on the WS port")
            .await;
        scene.finish().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_bad_clients_at_once_do_not_disturb_the_others() {
    bounded(TEST_TIMEOUT, async {
        for enc in Enc::ALL {
            let mut scene = Scene::new(enc).await;
            let mut tasks = Vec::new();
            for i in 0..40u64 {
                let t = if i % 2 == 0 {
                    Transport::Tcp
                } else {
                    Transport::Ws
                };
                let addr = scene.server.addr(t);
                tasks.push(tokio::spawn(async move {
                    let mut c = Client::connect(t, enc, addr).await;
                    if i % 4 < 2 {
                        c.login_uid(1000 + i).await;
                        c.watch(ROOM).await;
                    }
                    let _ = c.send_payload(&[0xff, 0xff, 0xff]).await;
                    c.expect_closed().await;
                }));
            }
            for task in tasks {
                task.await.expect("bad client task");
            }
            scene.a.watch_until(ROOM, 2).await;
            scene
                .check_untouched(Transport::Tcp, "after 40 bad clients")
                .await;
            scene
                .check_untouched(Transport::Ws, "after 40 bad clients")
                .await;
            scene.finish().await;
        }
    })
    .await;
}
