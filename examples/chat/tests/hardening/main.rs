//! Hardening of the gate as the chat shows it on the wire: the chat's goodbye at the
//! per-connection message rate and at the idle timeout, a graceful shutdown while a room is
//! busy (SIGTERM to the real binary, and `StopHandle::stop` in process: in `drain.rs`), and
//! regressions.
//!
//! Every goodbye the gate says on its own account is an `S2C_Kick{reason}` (src/chat.rs
//! `on_goodbye`), after the replies to what the connection already sent, and before the close.
//! What the gate does without the chat (who is cut, when, who is spared; WebSocket pings;
//! the per-IP cap) is checked in `crates/longlink/tests/gate_liveness.rs`.

#[path = "../common/mod.rs"]
mod common;
mod drain;
mod half_close;

use std::net::SocketAddr;
use std::time::Duration;

use common::process::*;
use common::*;
use futures_util::{SinkExt, StreamExt};
use longlink_chat::msg::{C2sMessage, C2sUpdateWatchRoom, C2sUserHeartBeat, C2sUserLogin};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message as WsMessage;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Everything a connection received until it was closed (or went quiet for [`TIMEOUT`]).
#[derive(Debug)]
struct Transcript {
    replies: Vec<Reply>,
    end: End,
}

/// Reads `c` until the server closes it.
async fn read_to_close(c: &mut Client) -> Transcript {
    let mut replies = Vec::new();
    loop {
        match c.try_recv(TIMEOUT).await {
            Ok(reply) => replies.push(reply),
            Err(end) => return Transcript { replies, end },
        }
    }
}

/// Compares two lists of texts, naming the first difference rather than printing thousands.
fn assert_same_texts(who: &str, got: &[String], want: &[String]) {
    if let Some(i) = (0..got.len().min(want.len())).find(|&i| got[i] != want[i]) {
        panic!(
            "{who}: message #{i} is {:?}, expected {:?} ({} received, {} expected)",
            got[i],
            want[i],
            got.len(),
            want.len()
        );
    }
    assert_eq!(
        got.len(),
        want.len(),
        "{who}: {} messages received, {} expected (first missing or extra: {:?})",
        got.len(),
        want.len(),
        got.get(want.len()).or(want.get(got.len()))
    );
}

/// Checks a goodbye: exactly the `texts` (as `S2C_Message`s, in order), then one
/// `S2C_Kick{reason}`, then the close (a WebSocket close with code 1000 if `ws_close_code`).
fn assert_goodbye(who: &str, t: &Transcript, texts: &[String], reason: &str, ws_close_code: bool) {
    let Some((last, before)) = t.replies.split_last() else {
        panic!("{who}: closed ({:?}) without S2C_Kick", t.end);
    };
    match last {
        Reply::Kick(k) => assert_eq!(k.reason, reason, "{who}: kick reason"),
        other => panic!(
            "{who}: the last thing before the close ({:?}) is {other:?}, not S2C_Kick",
            t.end
        ),
    }
    let got: Vec<String> = before
        .iter()
        .map(|r| match r {
            Reply::Message(m) => m.text.clone(),
            other => panic!("{who}: unexpected {other:?} before the kick"),
        })
        .collect();
    assert_same_texts(who, &got, texts);
    match &t.end {
        End::Closed { ws_code, .. } => {
            if ws_close_code {
                assert_eq!(*ws_code, Some(1000), "{who}: WebSocket close code");
            }
        }
        End::TimedOut => panic!("{who}: still open {TIMEOUT:?} after S2C_Kick"),
    }
}

/// Waits until `uid` is offline (a private message to it gets `S2C_Error` 3), within
/// [`TIMEOUT`]; returns when that was first seen. `asker` must be logged in.
async fn wait_offline(asker: &mut Client, uid: u64) -> Instant {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        asker.tell(uid, "are you there?").await;
        // The watch is answered by the chat module after the private message: if the
        // message was refused, the error comes first.
        asker
            .send(&C2sUpdateWatchRoom {
                room_id: asker.room,
            })
            .await;
        match asker.recv().await {
            Reply::Error(e) if e.code == ERR_NOT_ONLINE => {
                let seen = Instant::now();
                match asker.recv().await {
                    Reply::Watch(_) => return seen,
                    other => panic!("{asker:?}: expected S2C_UpdateWatchRoom, got {other:?}"),
                }
            }
            Reply::Watch(_) => {}
            other => panic!("{asker:?}: probing uid {uid}: unexpected {other:?}"),
        }
        assert!(
            Instant::now() < deadline,
            "uid {uid} still online after {TIMEOUT:?}"
        );
        tokio::time::sleep(ms(20)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Rate limit

/// What a flooding client sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flood {
    /// 20 heartbeats before any login, on a fresh connection (its bucket starts full).
    FreshHeartBeats,
    /// 20 heartbeats, logged in.
    HeartBeats,
    /// 20 room messages, logged in and watching the room.
    RoomMessages,
}

/// Sends every payload at once: one TCP write holding all the frames, or WebSocket messages
/// back to back. The server may close the connection before the last ones are written (it
/// stops reading at the limit): a failed write ends the flood, the first `must` must pass.
async fn send_at_once(c: &mut Client, payloads: &[Vec<u8>], must: usize) {
    match c.transport {
        Transport::Tcp => {
            let mut bytes = Vec::new();
            for p in payloads {
                bytes.extend(Framing::default().frame(p));
            }
            // One write: the kernel takes it all before the server reads any of it.
            c.send_raw(&bytes).await.expect("send the flood");
        }
        Transport::Ws => {
            for (i, p) in payloads.iter().enumerate() {
                if let Err(e) = c.send_payload(p).await {
                    assert!(i > must, "{c:?}: message #{i} of the flood not sent: {e}");
                    break;
                }
            }
        }
    }
}

async fn rate_limit_cuts_a_flood(enc: Enc) {
    const RATE: u32 = 5;
    const BURST: usize = 3;
    const FLOOD: usize = 20;
    let server = TestServer::start_with(enc, |c| {
        c.gate.max_msg_rate = RATE;
        c.gate.max_msg_burst = BURST as u32;
    })
    .await;
    let mut uid = 1000;
    let mut room = 10;
    for t in Transport::ALL {
        for kind in [
            Flood::FreshHeartBeats,
            Flood::HeartBeats,
            Flood::RoomMessages,
        ] {
            let what = format!("{enc:?}/{t:?}/{kind:?}");
            uid += 10;
            room += 1;
            let mut watcher = server.login(t.other(), uid + 1).await;
            watcher.watch(room).await;
            let mut flooder = server.connect(t).await;
            if kind != Flood::FreshHeartBeats {
                flooder.login_uid(uid).await;
            }
            if kind == Flood::RoomMessages {
                flooder.watch(room).await;
            }
            // The login and the watch took up to 2 of the 3 tokens; at 5 per second every
            // bucket is full again after 0.4 s.
            tokio::time::sleep(Duration::from_secs(1)).await;

            let payloads: Vec<Vec<u8>> = (0..FLOOD)
                .map(|i| match kind {
                    Flood::FreshHeartBeats | Flood::HeartBeats => encode(
                        enc,
                        &C2sUserHeartBeat {
                            ptime: 1 + i as i64,
                        },
                    ),
                    Flood::RoomMessages => encode(
                        enc,
                        &C2sMessage {
                            room_id: room,
                            to_uid: 0,
                            text: format!("flood {i}"),
                        },
                    ),
                })
                .collect();
            send_at_once(&mut flooder, &payloads, BURST).await;

            // The messages the bucket admitted are answered, then the kick, then the close.
            for i in 0..BURST {
                match (kind, flooder.recv().await) {
                    (Flood::FreshHeartBeats | Flood::HeartBeats, Reply::HeartBeat(hb)) => {
                        assert_near_now(hb.ptime, &what)
                    }
                    (Flood::RoomMessages, Reply::Message(m)) => {
                        assert_eq!(m.text, format!("flood {i}"), "{what}: echo #{i}")
                    }
                    (_, other) => panic!("{what}: answer #{i}: unexpected {other:?}"),
                }
            }
            match flooder.recv().await {
                Reply::Kick(k) => assert_eq!(k.reason, "rate limit", "{what}"),
                other => panic!(
                    "{what}: expected S2C_Kick after {BURST} answers (burst {BURST}), got {other:?}"
                ),
            }
            flooder.expect_closed().await;

            // The room saw exactly what was admitted.
            if kind == Flood::RoomMessages {
                for i in 0..BURST {
                    assert_eq!(
                        watcher.expect_message().await.text,
                        format!("flood {i}"),
                        "{what}: watcher"
                    );
                }
            }
            watcher.expect_quiet().await;
        }
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_answers_the_burst_then_kicks_json() {
    bounded(TEST_TIMEOUT, rate_limit_cuts_a_flood(Enc::Json)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_answers_the_burst_then_kicks_protobuf() {
    bounded(TEST_TIMEOUT, rate_limit_cuts_a_flood(Enc::Protobuf)).await;
}

// ---------------------------------------------------------------------------------------------
// 2. Idle timeout

/// A silent client, on either transport, gets `S2C_Kick{idle}` as the last thing before the
/// close (WebSocket: close 1000), and its uid goes offline; a client that heartbeats is not
/// kicked. The WebSocket client answers every ping (tungstenite does while it is polled; the
/// gate pings every 0.2 s, faster than `idle_timeout`): the gate's own pings are no activity.
async fn idle_timeout_kicks_the_silent(enc: Enc) {
    let server = TestServer::start_with(enc, |c| {
        c.gate.idle_timeout = ms(600);
        c.gate.ws_ping_interval = ms(200);
        c.gate.ws_pong_timeout = ms(300);
    })
    .await;
    for (i, t) in Transport::ALL.into_iter().enumerate() {
        let what = format!("{enc:?}/{t:?}");
        let uid = 10 + 10 * i as u64;
        let mut silent = server.login(t, uid).await;

        // A client on the other transport that sends a heartbeat every 150 ms is never idle.
        let mut busy = server.login(t.other(), uid + 1).await;
        let busy = tokio::spawn(async move {
            let until = Instant::now() + ms(1500);
            while Instant::now() < until {
                busy.heartbeat().await;
                tokio::time::sleep(ms(150)).await;
            }
            busy
        });

        // try_recv keeps polling, so tungstenite answers the pings.
        match silent.try_recv(TIMEOUT).await {
            Ok(Reply::Kick(k)) => assert_eq!(k.reason, "idle", "{what}"),
            other => panic!("{what}: expected S2C_Kick{{idle}}, got {other:?}"),
        }
        let code = silent.expect_closed().await;
        if t == Transport::Ws {
            assert_eq!(code, Some(1000), "{what}: WebSocket close code");
        }

        let mut busy = busy.await.expect("the busy client kept its heartbeats");
        busy.expect_quiet().await;
        // The kicked uid is offline; the busy one is still logged in (it can ask).
        wait_offline(&mut busy, uid).await;
        busy.heartbeat().await;
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_timeout_kicks_a_silent_client_but_not_a_busy_one_json() {
    bounded(TEST_TIMEOUT, idle_timeout_kicks_the_silent(Enc::Json)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_timeout_kicks_a_silent_client_but_not_a_busy_one_protobuf() {
    bounded(TEST_TIMEOUT, idle_timeout_kicks_the_silent(Enc::Protobuf)).await;
}

// Regression tests: the ping deadline with a short pong timeout, and the close after a
// rate-limit kick (idle against pongs is in `idle_timeout_kicks_the_silent`)

/// Reads a WebSocket logged in as `uid` for `window` (tungstenite answers every ping while
/// polled). Ok with the pings seen if still open at the end; Err if the server dropped it.
async fn ws_answering_pings(
    enc: Enc,
    addr: SocketAddr,
    uid: u64,
    window: Duration,
) -> Result<usize, String> {
    let mut ws = longlink_testkit::ws::ws_connect(addr, "/chat")
        .await
        .expect("WebSocket handshake");
    let login = encode(
        enc,
        &C2sUserLogin {
            token: token(uid),
            login_plat: 1,
        },
    );
    ws.send(WsMessage::Binary(login.into()))
        .await
        .expect("send login");
    let start = Instant::now();
    let until = start + window;
    let mut pings = 0;
    loop {
        match tokio::time::timeout_at(until, ws.next()).await {
            Err(_) => return Ok(pings),
            Ok(Some(Ok(WsMessage::Ping(_)))) => pings += 1,
            Ok(Some(Ok(WsMessage::Binary(b)))) => match decode(enc, &b) {
                Ok(Reply::Login(l)) if l.ret == 1 => {}
                other => panic!("uid {uid}: unexpected {other:?}"),
            },
            Ok(end) => {
                return Err(format!(
                    "uid {uid} dropped after {:?} having seen {pings} pings (all answered): {end:?}",
                    start.elapsed()
                ));
            }
        }
    }
}

/// With `ws_pong_timeout` shorter than the sweeper's tick (a quarter of `ws_ping_interval`,
/// clamped to 50 ms..1 s), a client that answers every ping stays: a sweep that looked at
/// silence alone would find it, at the first tick past `ws_ping_interval`, often silent for
/// `ws_ping_interval + ws_pong_timeout` too, and destroy it before any ping was sent. Clients
/// log in at different phases of the tick; none may be dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_ping_with_a_short_pong_timeout_keeps_clients_that_answer() {
    bounded(TEST_TIMEOUT, async {
        let enc = Enc::Json;
        let server = TestServer::start_with(enc, |c| {
            c.gate.ws_ping_interval = ms(1000);
            c.gate.ws_pong_timeout = ms(50);
        })
        .await;
        let mut clients = Vec::new();
        for uid in 1..=5 {
            let addr = server.ws;
            clients.push(tokio::spawn(ws_answering_pings(enc, addr, uid, ms(3000))));
            tokio::time::sleep(ms(50)).await;
        }
        let mut dropped = Vec::new();
        for c in clients {
            if let Err(why) = c.await.expect("client task") {
                dropped.push(why);
            }
        }
        assert!(
            dropped.is_empty(),
            "clients that answer pings were dropped:\n{}",
            dropped.join("\n")
        );
        server.shutdown().await;
    })
    .await;
}

/// A socket closed while input is still unread in the kernel makes Linux send RST and
/// discard whatever output the peer's window has not taken yet. After the rate-limit kick,
/// with the rest of the flood unread, a client that reads a little slower than the gate
/// writes (here: a 4 KiB receive buffer, reading 0.3 s later, well within `close_timeout`)
/// still gets the answers to its admitted messages and the kick.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_kick_reaches_a_client_with_a_small_window() {
    bounded(TEST_TIMEOUT, async {
        const BURST: usize = 10;
        let enc = Enc::Json;
        let server = TestServer::start_with(enc, |c| {
            c.gate.max_msg_rate = BURST as u32;
            c.gate.max_msg_burst = BURST as u32;
        })
        .await;
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let mut s = socket.connect(server.tcp).await.expect("connect");
        let frame = |p: Vec<u8>| Framing::default().frame(&p);
        let mut hello = frame(encode(
            enc,
            &C2sUserLogin {
                token: token(1),
                login_plat: 1,
            },
        ));
        hello.extend(frame(encode(enc, &C2sUpdateWatchRoom { room_id: 5 })));
        s.write_all(&hello).await.unwrap();
        // The bucket refills (2 of 10 tokens taken).
        tokio::time::sleep(Duration::from_secs(1)).await;
        let texts: Vec<String> = (0..3 * BURST)
            .map(|i| format!("{i:04} {}", "x".repeat(995)))
            .collect();
        let mut flood = Vec::new();
        for text in &texts {
            flood.extend(frame(encode(
                enc,
                &C2sMessage {
                    room_id: 5,
                    to_uid: 0,
                    text: text.clone(),
                },
            )));
        }
        s.write_all(&flood).await.unwrap();
        // A slow reader: it starts 0.3 s later (close_timeout is 5 s).
        tokio::time::sleep(ms(300)).await;
        let mut bytes = Vec::new();
        let read = tokio::time::timeout(TIMEOUT, s.read_to_end(&mut bytes))
            .await
            .expect("the server closes");
        let mut replies = Vec::new();
        let mut rest = bytes;
        while let Some(payload) = Framing::default().take(&mut rest) {
            replies.push(decode(enc, &payload).expect("decodable"));
        }
        let summary: Vec<String> = replies
            .iter()
            .map(|r| match r {
                Reply::Message(m) => format!("S2C_Message {}", &m.text[..4]),
                other => format!("{other:?}"),
            })
            .collect();
        assert!(
            read.is_ok() && rest.is_empty(),
            "the connection was reset ({read:?}) after {} whole replies: {summary:?}",
            replies.len()
        );
        assert_eq!(replies.len(), 2 + BURST + 1, "{summary:?}");
        assert!(
            matches!(&replies[replies.len() - 1], Reply::Kick(k) if k.reason == "rate limit"),
            "{summary:?}"
        );
        server.shutdown().await;
    })
    .await;
}
