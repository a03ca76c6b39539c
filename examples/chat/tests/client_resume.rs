//! The resumable Rust client (`longlink_client::ResumableClient`) against the real chat
//! server (embedded default: `resume_window = 30`), through a TCP proxy of the tests'
//! (`longlink_testkit::Proxy`) that cuts its connections at seeded random byte counts, mid
//! frame too, or stalls them:
//!
//! - a room streams 2,000 messages to a resumable watcher whose connection is cut again and
//!   again: the application sees every one exactly once, in order (TCP and WebSocket, JSON
//!   and protobuf);
//! - the watcher says numbered messages while its connection is cut: another client in the
//!   room, and the watcher itself, get each exactly once, in order;
//! - a cut that lasts past the window loses the session ("expired"), the server's close
//!   event removes the watcher from its room, and the client logs in again on the fresh
//!   connection, which is resumable again;
//! - too many messages while away, or not acknowledged on a live connection, end the
//!   session ("overflow"), and the client logs in again;
//! - a stalled (half-open) connection is detected by a missing acknowledgement, and the
//!   resume takes the session over from it; `reconnect()` resumes at once;
//! - a server with resume off is an error at connect.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::client::{chat_messages, encoding};
use common::{Enc, TIMEOUT, TestServer, bounded, now_unix, token};
use longlink_chat::msg::{
    C2sMessage, C2sUpdateWatchRoom, C2sUserHeartBeat, C2sUserLogin, S2cMessage, S2cUpdateWatchRoom,
    S2cUserLogin,
};
use longlink_client::{
    Client, ClientConfig, Error, Event, ResumableClient, ResumeOptions, Transport,
};
use longlink_testkit::Proxy;

/// Each test's bound; the whole file runs in a few seconds.
const TEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Messages streamed through the cuts.
const STREAM: u64 = 2000;

fn config(addr: std::net::SocketAddr, transport: Transport, enc: Enc) -> ClientConfig {
    ClientConfig {
        addr: addr.to_string(),
        transport,
        encoding: encoding(enc),
        connect_timeout: Duration::from_secs(2),
        ..ClientConfig::default()
    }
}

/// A proxy in front of one of the server's listeners.
async fn proxy_to(server: &TestServer, transport: Transport) -> Proxy {
    let target = match transport {
        Transport::Tcp => server.tcp,
        Transport::Ws => server.ws,
    };
    Proxy::start(target).await.expect("proxy starts")
}

fn options() -> ResumeOptions {
    ResumeOptions {
        max_backoff: Duration::from_millis(400),
        ack_timeout: Duration::from_millis(600),
        ..ResumeOptions::default()
    }
}

fn say(room: u64, text: String) -> C2sMessage {
    C2sMessage {
        room_id: room,
        to_uid: 0,
        text,
    }
}

/// A resumable client and what it has been told of its connection.
struct Watcher {
    c: ResumableClient,
    reconnecting: u32,
    resumed: u32,
    resent: usize,
}

impl Watcher {
    async fn connect(config: ClientConfig) -> Watcher {
        Watcher::connect_with(config, options()).await
    }

    async fn connect_with(config: ClientConfig, options: ResumeOptions) -> Watcher {
        let c = tokio::time::timeout(
            TIMEOUT,
            ResumableClient::connect(config, chat_messages(), options),
        )
        .await
        .expect("connect in time")
        .expect("connect and start a session");
        Watcher {
            c,
            reconnecting: 0,
            resumed: 0,
            resent: 0,
        }
    }

    /// The next event within [`TIMEOUT`] (presence messages skipped).
    async fn event(&mut self) -> Event {
        let event = loop {
            let event = tokio::time::timeout(TIMEOUT, self.c.next())
                .await
                .unwrap_or_else(|_| panic!("no event within {TIMEOUT:?}"))
                .unwrap_or_else(|e| panic!("next: {e}"));
            if !matches!(&event, Event::Message(m) if common::client::is_presence(m)) {
                break event;
            }
        };
        match &event {
            Event::Reconnecting { .. } => self.reconnecting += 1,
            Event::Resumed { resent } => {
                self.resumed += 1;
                self.resent += resent;
            }
            _ => {}
        }
        event
    }

    /// The next application message (news of the connection counted on the way); a lost
    /// session fails the test.
    async fn expect<T: 'static>(&mut self) -> T {
        loop {
            match self.event().await {
                Event::Message(m) => {
                    let name = m.name().to_owned();
                    return m
                        .downcast::<T>()
                        .unwrap_or_else(|_| panic!("unexpected {name}"));
                }
                Event::SessionLost { reason, .. } => panic!("session lost: {reason}"),
                _ => {}
            }
        }
    }

    async fn login(&mut self, uid: u64) {
        let login = C2sUserLogin {
            token: token(uid),
            login_plat: 1,
        };
        self.c.send(&login).await.expect("send login");
        let answer: S2cUserLogin = self.expect().await;
        assert_eq!((answer.ret, answer.uid), (1, uid), "{answer:?}");
    }

    async fn watch(&mut self, room: u64) -> u32 {
        let watch = C2sUpdateWatchRoom { room_id: room };
        self.c.send(&watch).await.expect("send watch");
        let answer: S2cUpdateWatchRoom = self.expect().await;
        assert_eq!(answer.room_id, room);
        answer.online
    }

    /// Waits for the next resume; nothing else may come first.
    async fn until_resumed(&mut self) {
        loop {
            match self.event().await {
                Event::Resumed { .. } => return,
                Event::Reconnecting { .. } => {}
                other => panic!("before the resume: {other:?}"),
            }
        }
    }

    /// A heartbeat and its answer: nothing else is pending.
    async fn expect_quiet(&mut self) {
        let hb = C2sUserHeartBeat { ptime: now_unix() };
        self.c.send(&hb).await.expect("send heartbeat");
        let _: C2sUserHeartBeat = self.expect().await;
    }
}

/// A plain client straight to the server, logged in as `uid`.
async fn plain(server: &TestServer, uid: u64) -> Client {
    let mut c = Client::connect(
        config(server.tcp, Transport::Tcp, server.enc),
        chat_messages(),
    )
    .await
    .expect("plain client connects");
    let login = C2sUserLogin {
        token: token(uid),
        login_plat: 1,
    };
    c.send(&login).await.expect("send login");
    let answer: S2cUserLogin = recv_as(&mut c).await;
    assert_eq!(answer.ret, 1);
    c
}

async fn recv_as<T: 'static>(c: &mut Client) -> T {
    tokio::time::timeout(TIMEOUT, common::client::recv_skipping::<T>(c))
        .await
        .expect("a message in time")
        .expect("the message expected")
}

/// 2,000 room messages to a watcher whose connection is cut at random points (`max_cut`
/// bytes at most): each arrives once, in order.
async fn stream_through_cuts(transport: Transport, enc: Enc, seed: u64, max_cut: usize) {
    let server = TestServer::start(enc).await;
    let proxy = proxy_to(&server, transport).await;
    let room = 100 + seed;
    let (watcher_uid, sender_uid) = (1000 + seed, 2000 + seed);
    let mut w = Watcher::connect(config(proxy.addr(), transport, enc)).await;
    w.login(watcher_uid).await;
    assert_eq!(w.watch(room).await, 1);

    // The sender is not in the room: it gets each of its messages back, and drains them.
    let sender = plain(&server, sender_uid).await;
    let (mut echoes, mut tx) = sender.split();
    let drain = tokio::spawn(async move { while echoes.recv().await.is_ok() {} });
    // Paced by the watcher's progress: a session's server-side buffer (resume_buffer) holds
    // what the watcher has not acknowledged, and must not overflow while it reconnects.
    let progress = Arc::new(AtomicU64::new(0));
    let seen = Arc::clone(&progress);
    let send = tokio::spawn(async move {
        for i in 0..STREAM {
            while i >= seen.load(Ordering::Relaxed) + 400 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            tx.send(&say(room, i.to_string())).await.expect("say");
        }
        tx
    });

    proxy.random_cuts(seed, 0, max_cut);
    proxy.cut_after(max_cut / 3);
    for i in 0..STREAM {
        let m: S2cMessage = w.expect().await;
        assert_eq!(
            (m.room_id, m.from_uid, m.text.as_str()),
            (room, sender_uid, i.to_string().as_str()),
            "message {i} (after {} resumes)",
            w.resumed
        );
        progress.store(i + 1, Ordering::Relaxed);
    }
    proxy.no_random_cuts();
    proxy.cut_all(); // the last connection may still be counting: a clean one from here
    w.expect_quiet().await;
    assert!(
        w.resumed >= 5,
        "{transport} {enc:?}: only {} resumes: the proxy did not cut",
        w.resumed
    );
    println!(
        "{transport} {enc:?}: {STREAM} messages through {} resumes ({} reconnection attempts)",
        w.resumed, w.reconnecting
    );
    let tx = send.await.expect("sender");
    drain.abort();
    drop(tx);
    w.c.close().await.expect("close");
    server.shutdown().await;
}

#[tokio::test]
async fn a_stream_survives_random_cuts_tcp_json() {
    bounded(
        TEST_TIMEOUT,
        stream_through_cuts(Transport::Tcp, Enc::Json, 1, 16_000),
    )
    .await;
}

#[tokio::test]
async fn a_stream_survives_random_cuts_tcp_protobuf() {
    bounded(
        TEST_TIMEOUT,
        stream_through_cuts(Transport::Tcp, Enc::Protobuf, 2, 4_000),
    )
    .await;
}

#[tokio::test]
async fn a_stream_survives_random_cuts_ws_json() {
    bounded(
        TEST_TIMEOUT,
        stream_through_cuts(Transport::Ws, Enc::Json, 3, 16_000),
    )
    .await;
}

#[tokio::test]
async fn a_stream_survives_random_cuts_ws_protobuf() {
    bounded(
        TEST_TIMEOUT,
        stream_through_cuts(Transport::Ws, Enc::Protobuf, 4, 4_000),
    )
    .await;
}

/// The watcher says 400 numbered messages while its connection is cut: it, and a plain
/// client in the room, get each exactly once, in order.
async fn messages_sent_around_cuts(transport: Transport, enc: Enc, seed: u64, max_cut: usize) {
    const SAID: usize = 400;
    let server = TestServer::start(enc).await;
    let proxy = proxy_to(&server, transport).await;
    let room = 200 + seed;
    let (watcher_uid, other_uid) = (3000 + seed, 4000 + seed);
    let mut w = Watcher::connect(config(proxy.addr(), transport, enc)).await;
    w.login(watcher_uid).await;
    assert_eq!(w.watch(room).await, 1);
    let mut other = plain(&server, other_uid).await;
    other
        .send(&C2sUpdateWatchRoom { room_id: room })
        .await
        .expect("send watch");
    let watching: S2cUpdateWatchRoom = recv_as(&mut other).await;
    assert_eq!(watching.online, 2);

    proxy.random_cuts(seed, 0, max_cut);
    proxy.cut_after(max_cut / 2);
    let sender = w.c.sender();
    let send = tokio::spawn(async move {
        for i in 0..SAID {
            sender.send(&say(room, format!("w{i}"))).await.expect("say");
            if i % 4 == 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    });
    let want: Vec<String> = (0..SAID).map(|i| format!("w{i}")).collect();
    let mut got = Vec::new();
    while got.len() < SAID {
        let m: S2cMessage = w.expect().await;
        assert_eq!(m.from_uid, watcher_uid);
        got.push(m.text);
    }
    assert_eq!(got, want, "the watcher's own messages, once each, in order");
    send.await.expect("sender task");
    let mut theirs = Vec::new();
    while theirs.len() < SAID {
        let m: S2cMessage = recv_as(&mut other).await;
        theirs.push(m.text);
    }
    assert_eq!(theirs, want, "the other client: once each, in order");
    proxy.no_random_cuts();
    proxy.cut_all();
    w.expect_quiet().await;
    assert!(w.resumed >= 3, "only {} resumes", w.resumed);
    println!(
        "{transport} {enc:?}: {SAID} messages said through {} resumes, {} resent",
        w.resumed, w.resent
    );
    w.c.close().await.expect("close");
    server.shutdown().await;
}

#[tokio::test]
async fn messages_sent_around_cuts_are_handled_once_tcp_json() {
    bounded(
        TEST_TIMEOUT,
        messages_sent_around_cuts(Transport::Tcp, Enc::Json, 5, 3_000),
    )
    .await;
}

#[tokio::test]
async fn messages_sent_around_cuts_are_handled_once_ws_protobuf() {
    bounded(
        TEST_TIMEOUT,
        messages_sent_around_cuts(Transport::Ws, Enc::Protobuf, 6, 1_200),
    )
    .await;
}

/// Every connection is cut at once for longer than the window (1 s): the session is lost
/// ("expired"), the server's close event takes the watcher out of its room, and the client
/// logs in again on its fresh connection, which is resumable again. Over WebSocket, so
/// that a connection the proxy kills at once fails the handshake and never looks
/// connected.
#[tokio::test]
async fn a_cut_past_the_window_loses_the_session() {
    bounded(TEST_TIMEOUT, async {
        let server = TestServer::start_with(Enc::Json, |c| {
            c.gate.resume_window = Duration::from_secs(1);
        })
        .await;
        let proxy = proxy_to(&server, Transport::Ws).await;
        let room = 300;
        let mut w = Watcher::connect(config(proxy.addr(), Transport::Ws, Enc::Json)).await;
        w.login(3001).await;
        assert_eq!(w.watch(room).await, 1);
        let mut other = plain(&server, 3002).await;
        other
            .send(&C2sUpdateWatchRoom { room_id: room })
            .await
            .expect("send watch");
        let watching: S2cUpdateWatchRoom = recv_as(&mut other).await;
        assert_eq!(watching.online, 2);

        proxy.random_cuts(7, 0, 0); // every new connection dies at once
        proxy.cut_all();
        let started = tokio::time::Instant::now();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        proxy.no_random_cuts();
        let reason = loop {
            match w.event().await {
                Event::SessionLost { reason, .. } => break reason,
                Event::Message(m) => panic!("a message while cut: {m:?}"),
                _ => {}
            }
        };
        assert_eq!(reason, "expired");
        assert!(w.reconnecting >= 2, "{} attempts", w.reconnecting);
        assert!(started.elapsed() >= Duration::from_secs(1));
        assert_eq!(w.resumed, 0);

        // The server gave up on the session: its close event took the watcher out.
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            other
                .send(&C2sUpdateWatchRoom { room_id: room })
                .await
                .expect("send watch");
            let watching: S2cUpdateWatchRoom = recv_as(&mut other).await;
            if watching.online == 1 {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "still 2 watchers");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // A fresh, working connection, already resumable again: log in again.
        w.login(3001).await;
        assert_eq!(w.watch(room).await, 2);
        proxy.cut_all();
        w.until_resumed().await;
        other
            .send(&say(room, "welcome back".into()))
            .await
            .expect("say");
        let m: S2cMessage = w.expect().await;
        assert_eq!((m.text.as_str(), w.resumed), ("welcome back", 1));
        w.c.close().await.expect("close");
        server.shutdown().await;
    })
    .await;
}

/// While the watcher is cut off, the room gets more messages than the session may keep
/// (`resume_buffer = 1024`): the server ends the session, and the resume is refused with
/// "overflow"; the client goes on as a fresh connection and logs in again.
#[tokio::test]
async fn an_overflow_while_away_loses_the_session_with_its_reason() {
    bounded(TEST_TIMEOUT, async {
        const SAID: usize = 1100;
        let server = TestServer::start(Enc::Protobuf).await;
        let proxy = proxy_to(&server, Transport::Ws).await;
        let room = 500;
        let mut w = Watcher::connect(config(proxy.addr(), Transport::Ws, Enc::Protobuf)).await;
        w.login(5001).await;
        assert_eq!(w.watch(room).await, 1);
        let mut sender = plain(&server, 5002).await;

        proxy.random_cuts(9, 0, 0); // every new connection dies at once
        proxy.cut_all();
        for i in 0..SAID {
            sender.send(&say(room, format!("o{i}"))).await.expect("say");
        }
        for _ in 0..SAID {
            let _: S2cMessage = recv_as(&mut sender).await; // all of them broadcast
        }
        proxy.no_random_cuts();
        let (reason, unacknowledged) = loop {
            match w.event().await {
                Event::SessionLost {
                    reason,
                    unacknowledged,
                } => break (reason, unacknowledged),
                Event::Message(m) => panic!("a message while cut: {m:?}"),
                _ => {}
            }
        };
        assert_eq!(reason, "overflow");
        assert!(unacknowledged <= 2, "{unacknowledged}");
        w.login(5001).await;
        assert_eq!(w.watch(room).await, 1);
        w.expect_quiet().await;
        w.c.close().await.expect("close");
        server.shutdown().await;
    })
    .await;
}

/// A watcher that never acknowledges (its options say so) lets more than `resume_buffer`
/// messages wait for an acknowledgement on a live connection: the server ends the session
/// and says so (`LL_ResumeRefused{"overflow"}`) on that connection, which goes on as a fresh
/// one (still logged in and in its room: the module saw no close). Every message still
/// comes once, in order; the client, resumable again at once, logs in again without
/// reconnecting, and its new session survives a cut.
#[tokio::test]
async fn an_overflow_on_a_live_connection_loses_the_session_and_keeps_the_connection() {
    bounded(TEST_TIMEOUT, async {
        const SAID: usize = 1100;
        let server = TestServer::start(Enc::Json).await;
        let proxy = proxy_to(&server, Transport::Tcp).await;
        let never = ResumeOptions {
            ack_every: u64::MAX,
            ack_interval: Duration::from_secs(3600),
            ..options()
        };
        let config = config(proxy.addr(), Transport::Tcp, Enc::Json);
        let mut w = Watcher::connect_with(config, never).await;
        let room = 600;
        w.login(6001).await;
        assert_eq!(w.watch(room).await, 1);
        let mut sender = plain(&server, 6002).await;
        for i in 0..SAID {
            sender.send(&say(room, format!("o{i}"))).await.expect("say");
        }
        let (mut got, mut lost) = (Vec::new(), Vec::new());
        while got.len() < SAID {
            match w.event().await {
                Event::SessionLost {
                    reason,
                    unacknowledged,
                } => {
                    // The login and the watch may not have been acknowledged yet.
                    assert!(unacknowledged <= 2, "{unacknowledged}");
                    lost.push((reason, got.len()));
                }
                Event::Message(m) => {
                    got.push(m.downcast::<S2cMessage>().expect("S2C_Message").text)
                }
                other => panic!("{other:?}"),
            }
        }
        println!("session lost after message {:?}", lost);
        assert_eq!(lost.len(), 1, "{lost:?}");
        assert_eq!(lost[0].0, "overflow");
        assert!(lost[0].1 <= 1024, "{lost:?}");
        let want: Vec<String> = (0..SAID).map(|i| format!("o{i}")).collect();
        assert_eq!(got, want, "every message once, in order");
        w.login(6001).await;
        assert_eq!(w.watch(room).await, 1);
        w.expect_quiet().await;
        assert_eq!((w.reconnecting, w.resumed), (0, 0));

        // The new session resumes, with its numbering right: what was pending is replayed.
        proxy.stall();
        for i in 0..5 {
            sender.send(&say(room, format!("p{i}"))).await.expect("say");
        }
        let hb = C2sUserHeartBeat { ptime: now_unix() };
        w.c.send(&hb).await.expect("send heartbeat");
        w.until_resumed().await;
        for i in 0..5 {
            let m: S2cMessage = w.expect().await;
            assert_eq!(m.text, format!("p{i}"));
        }
        let _: C2sUserHeartBeat = w.expect().await;
        w.c.close().await.expect("close");
        server.shutdown().await;
    })
    .await;
}

/// The proxy stalls the connection both ways (half-open: no data, no EOF). Room messages
/// pile up on the server's side of it; the watcher's heartbeat goes unacknowledged, so it
/// reconnects, and the resume takes the session over from the stalled socket: the
/// messages come once, in order, then the heartbeat's answer. `reconnect()` then resumes
/// at once.
#[tokio::test]
async fn a_half_open_connection_is_taken_over_by_the_resume() {
    bounded(TEST_TIMEOUT, async {
        let server = TestServer::start(Enc::Json).await;
        let proxy = proxy_to(&server, Transport::Tcp).await;
        let room = 400;
        let mut w = Watcher::connect(config(proxy.addr(), Transport::Tcp, Enc::Json)).await;
        w.login(4001).await;
        assert_eq!(w.watch(room).await, 1);
        let mut other = plain(&server, 4002).await;

        proxy.stall();
        for i in 0..3 {
            other.send(&say(room, format!("s{i}"))).await.expect("say");
            let echo: S2cMessage = recv_as(&mut other).await;
            assert_eq!(echo.text, format!("s{i}"));
        }
        let hb = C2sUserHeartBeat { ptime: now_unix() };
        w.c.send(&hb).await.expect("send heartbeat");
        for i in 0..3 {
            let m: S2cMessage = w.expect().await;
            assert_eq!(m.text, format!("s{i}"));
        }
        let _: C2sUserHeartBeat = w.expect().await;
        assert_eq!(
            (w.resumed, w.resent),
            (1, 1),
            "one resume, the heartbeat resent"
        );
        assert_eq!(proxy.connections(), 2, "the stalled one and the new one");

        // Asked for: resumes at once, nothing lost.
        w.c.reconnect().await.expect("reconnect");
        other.send(&say(room, "after".into())).await.expect("say");
        w.until_resumed().await;
        let m: S2cMessage = w.expect().await;
        assert_eq!(m.text, "after");
        assert_eq!(w.resumed, 2);
        w.expect_quiet().await;
        w.c.close().await.expect("close");
        server.shutdown().await;
    })
    .await;
}

/// A server with resume off (`resume_window = 0`) does not know `LL_SessionStart`: connecting
/// is an error that says so, not a hang.
#[tokio::test]
async fn a_server_without_resume_is_an_error_at_connect() {
    bounded(TEST_TIMEOUT, async {
        let server = TestServer::start_with(Enc::Protobuf, |c| {
            c.gate.resume_window = Duration::ZERO;
        })
        .await;
        let config = config(server.ws, Transport::Ws, Enc::Protobuf);
        let started = tokio::time::Instant::now();
        let e = ResumableClient::connect(config, chat_messages(), options())
            .await
            .expect_err("no session without resume");
        assert!(matches!(e, Error::Session(_)), "{e}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        println!("{e}");
        server.shutdown().await;
    })
    .await;
}
