//! The chat's delivery classes and rate limits (issue 24), black-box over real sockets:
//!
//! - a watcher that stops reading while its room floods it with typing signals (volatile)
//!   and watcher-count changes (`S2C_RoomInfo`, latest per room) is not disconnected, and
//!   when it reads again gets every room message in order, the current room info once (after
//!   the room messages said before the change), and typing signals only from after it caught
//!   up; what it missed was dropped or replaced, not queued (the metrics say so);
//! - a resumable session cut while the room changes: its replay holds the latest room info
//!   once and no typing signal, and the client's count stays exact (typing signals it got
//!   before the cut were not numbered: nothing after the resume is lost or doubled);
//! - `[chat] max_msgs_per_sec` answers a burst's excess with `S2C_Error{code: 9}`, delivered
//!   nowhere; typing signals over 5 a second are dropped silently; the metrics count both.

mod common;

use std::time::Duration;

use common::client::{chat_messages, encoding};
use common::{
    Client, ERR_TOO_FAST, Enc, Reply, TIMEOUT, TestServer, Transport, bounded, encode, token,
};
use longlink_chat::msg::{
    C2sMessage, C2sTyping, C2sUpdateWatchRoom, C2sUserLogin, S2cMessage, S2cRoomInfo,
};
use longlink_client::{ClientConfig, Event, ResumableClient, ResumeOptions};
use longlink_testkit::Proxy;
use longlink_testkit::prometheus::{scrape, value};

const TEST_TIMEOUT: Duration = Duration::from_secs(90);
/// Longer than the chat's room-info delay (100 ms): a change's `S2C_RoomInfo` is out.
const SETTLE: Duration = Duration::from_millis(400);

fn say(room: u64, text: String) -> C2sMessage {
    C2sMessage {
        room_id: room,
        to_uid: 0,
        text,
    }
}

/// A client logged in as `uid` watching `room`, whose reads return presence messages too.
async fn watcher(server: &TestServer, uid: u64, room: u64) -> Client {
    let mut c = server.login(Transport::Tcp, uid).await;
    c.watch(room).await;
    c.presence = true;
    c
}

/// A reader that counts typing signals: Rx skips presence messages, so this one reads its
/// socket itself through a `Client` with presence on.
fn count_typing(
    mut c: Client,
) -> (
    tokio::task::JoinHandle<usize>,
    tokio::sync::oneshot::Sender<()>,
) {
    let (tx, mut stop) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let mut typing = 0;
        loop {
            tokio::select! {
                _ = &mut stop => return typing,
                got = c.try_recv(Duration::from_secs(60)) => match got {
                    Ok(Reply::Typing(_)) => typing += 1,
                    Ok(_) => {}
                    Err(_) => return typing,
                },
            }
        }
    });
    (task, tx)
}

/// A TCP connection that reads little at a time (a 4 KB receive buffer): once it stops
/// reading, the server's writes back up quickly.
async fn slow_reader(server: &TestServer) -> Client {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("small buffer");
    let stream = socket.connect(server.tcp).await.expect("connect");
    Client::over(stream, Transport::Tcp, server.enc, server.tcp)
        .await
        .expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_watcher_is_not_disconnected_and_catches_up_on_what_matters() {
    bounded(TEST_TIMEOUT, async {
        // Room messages of 7,000 characters: a few MB fill any socket's buffers; the queue
        // may hold as many bytes.
        let server = TestServer::start_with(Enc::Json, |c| {
            c.chat.max_text_len = 7000;
            c.gate.pending_write_bytes = 64 << 20;
        })
        .await;
        let admin = server.admin.expect("admin");
        let room = 24;
        let mut w = slow_reader(&server).await;
        w.login_uid(1).await;
        w.watch(room).await;
        let sender = watcher(&server, 2, room).await;
        let (mut s, s_rx) = sender.into_split();
        let (s_drained, s_stop) = drain_rx(s_rx);
        let healthy = watcher(&server, 3, room).await;
        let (healthy_typing, healthy_stop) = count_typing(healthy);
        let mut typers = Vec::new();
        for uid in 10..14 {
            let c = watcher(&server, uid, room).await;
            let (tx, rx) = c.into_split();
            typers.push((tx, drain_rx(rx)));
        }
        // The joins' room info reaches w; then nothing is pending for it.
        tokio::time::sleep(SETTLE).await;
        w.expect_quiet().await;
        w.presence = true;
        let before = scrape(admin).await;

        // w stops reading. 7 KB room messages fill its socket's buffers (the kernel's grow
        // to 4 MB), then its queue (under pending_write_num: w is not disconnected).
        const FILL: usize = 1000;
        let text = |i: usize| format!("p{i}:{}", "x".repeat(6990));
        for i in 0..FILL {
            s.send(encode(Enc::Json, &say(room, text(i))))
                .await
                .expect("say");
        }
        tokio::time::sleep(SETTLE).await;

        // The flood: typing from four watchers, the count changing ten times, with room
        // messages between the changes.
        let (mut toggler, toggler_rx) = server.login(Transport::Tcp, 20).await.into_split();
        let toggler_drained = drain_rx(toggler_rx);
        let mut said = Vec::new();
        for j in 0..10 {
            let target = if j % 2 == 0 { room } else { room + 1 };
            toggler
                .send(encode(Enc::Json, &C2sUpdateWatchRoom { room_id: target }))
                .await
                .expect("watch");
            for (tx, _) in &mut typers {
                tx.send(encode(Enc::Json, &C2sTyping { room_id: room }))
                    .await
                    .expect("typing");
            }
            let marker = format!("m{j}");
            s.send(encode(Enc::Json, &say(room, marker.clone())))
                .await
                .expect("say");
            said.push(marker);
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        // The last change (j = 9) left the toggler in room + 1: the room has w, the sender,
        // the healthy watcher and four typers.
        let online_now = 7;
        tokio::time::sleep(SETTLE).await;
        s.send(encode(Enc::Json, &say(room, "end".into())))
            .await
            .expect("say");

        // w reads again: the room messages in order, one room info, no typing signal.
        let mut got = Vec::new(); // room messages, and "info" where the room info came
        let mut infos = Vec::new();
        loop {
            match w.try_recv(TIMEOUT).await.expect("w is still connected") {
                Reply::Message(m) if m.text == "end" => break,
                Reply::Message(m) => got.push(m.text.split(':').next().unwrap_or("").to_owned()),
                Reply::RoomInfo(info) => {
                    infos.push(info);
                    got.push("info".into());
                }
                Reply::Typing(t) => panic!(
                    "a typing signal from while w was behind: {t:?} after {} messages",
                    got.len()
                ),
                other => panic!("unexpected {other:?}"),
            }
        }
        let mut want: Vec<String> = (0..FILL).map(|i| format!("p{i}")).collect();
        want.extend(said.iter().cloned());
        let messages: Vec<&String> = got.iter().filter(|t| *t != "info").collect();
        assert_eq!(
            messages,
            want.iter().collect::<Vec<_>>(),
            "every room message, in order"
        );
        assert_eq!(
            infos,
            [S2cRoomInfo {
                room_id: room,
                online: online_now
            }],
            "the current room info, once"
        );
        // The last change's info comes after every room message said before that change.
        let info_at = got.iter().position(|t| t == "info").expect("info");
        let before_last_change = got.iter().position(|t| t == "m8").expect("m8");
        assert!(info_at > before_last_change, "{got:?}");

        // Caught up: a typing signal now reaches w.
        tokio::time::sleep(Duration::from_millis(1100)).await; // the typer's bucket refills
        typers[0]
            .0
            .send(encode(Enc::Json, &C2sTyping { room_id: room }))
            .await
            .expect("typing");
        match w.try_recv(TIMEOUT).await.expect("still connected") {
            Reply::Typing(t) => assert_eq!((t.room_id, t.uid), (room, 10)),
            other => panic!("expected the typing signal, got {other:?}"),
        }

        // Dropped and replaced, not queued: the metrics moved.
        let after = scrape(admin).await;
        let moved = |series: &str| value(&after, series) - value(&before, series);
        assert!(moved(r#"longlink_volatile_dropped_total{msg="S2C_Typing"}"#) >= 1.0);
        assert!(moved(r#"longlink_latest_replaced_total{msg="S2C_RoomInfo"}"#) >= 1.0);

        let _ = healthy_stop.send(());
        let healthy_typing = healthy_typing.await.expect("healthy reader");
        assert!(
            healthy_typing >= 4,
            "a reading watcher gets typing signals ({healthy_typing})"
        );
        let _ = s_stop.send(());
        let _ = s_drained.await;
        let _ = toggler_drained.1.send(());
        let _ = toggler_drained.0.await;
        for (_, (task, stop)) in typers {
            let _ = stop.send(());
            let _ = task.await;
        }
        server.shutdown().await;
    })
    .await;
}

/// [`drain`] for a receiving half.
fn drain_rx(
    mut r: common::Rx,
) -> (
    tokio::task::JoinHandle<()>,
    tokio::sync::oneshot::Sender<()>,
) {
    let (tx, mut stop) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = &mut stop => return,
                got = r.recv(Duration::from_secs(60)) => if got.is_err() { return },
            }
        }
    });
    (task, tx)
}

fn resume_options() -> ResumeOptions {
    ResumeOptions {
        max_backoff: Duration::from_millis(300),
        ack_timeout: Duration::from_millis(600),
        ..ResumeOptions::default()
    }
}

/// The next event of `c` within [`TIMEOUT`].
async fn event(c: &mut ResumableClient) -> Event {
    tokio::time::timeout(TIMEOUT, c.next())
        .await
        .expect("an event in time")
        .expect("next")
}

/// The next message of `c` (connection news skipped).
async fn message(c: &mut ResumableClient) -> longlink_client::Message {
    loop {
        if let Event::Message(m) = event(c).await {
            return m;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_session_replays_the_latest_room_info_once_and_no_typing() {
    bounded(TEST_TIMEOUT, async {
        for enc in [Enc::Json, Enc::Protobuf] {
            let server = TestServer::start(enc).await;
            let proxy = Proxy::start(server.tcp).await.expect("proxy");
            let room = 77;
            let config = ClientConfig {
                addr: proxy.addr().to_string(),
                encoding: encoding(enc),
                connect_timeout: Duration::from_secs(2),
                ..ClientConfig::default()
            };
            let mut w = ResumableClient::connect(config, chat_messages(), resume_options())
                .await
                .expect("a resumable session");
            w.send(&C2sUserLogin {
                token: token(100),
                login_plat: 1,
            })
            .await
            .expect("login");
            let _login = message(&mut w).await;
            w.send(&C2sUpdateWatchRoom { room_id: room })
                .await
                .expect("watch");
            let _watching = message(&mut w).await;
            let mut typer = server.login(Transport::Tcp, 101).await;
            typer.watch(room).await;
            let mut sender = server.login(Transport::Tcp, 102).await;
            // w's room info (2 watchers) comes now, before what follows.
            tokio::time::sleep(SETTLE).await;

            // Typing signals reach w (not numbered), then room messages (numbered).
            for _ in 0..3 {
                typer.send(&C2sTyping { room_id: room }).await;
            }
            typer.expect_quiet().await; // the chat module has handled them
            let mut typing_before = 0;
            sender.say(room, "a1").await;
            loop {
                let m = message(&mut w).await;
                match m.name() {
                    "S2C_Typing" => typing_before += 1,
                    "S2C_RoomInfo" => {}
                    _ => {
                        let m: S2cMessage = m.downcast().expect("S2C_Message");
                        assert_eq!(m.text, "a1");
                        break;
                    }
                }
            }
            assert_eq!(typing_before, 3, "{enc:?}: typing signals while connected");
            let _ = sender.expect_message().await; // not watching: its own copy

            // Cut off: the count changes three times, the typer types, the room talks.
            proxy.random_cuts(3, 0, 0);
            proxy.cut_all();
            let mut toggler = server.login(Transport::Tcp, 103).await;
            for target in [room, room + 1, room] {
                toggler.watch(target).await;
                typer.send(&C2sTyping { room_id: room }).await;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            for text in ["b1", "b2", "b3"] {
                sender.say(room, text).await;
                let _ = sender.expect_message().await;
            }
            tokio::time::sleep(SETTLE).await;
            proxy.no_random_cuts();

            // The replay: b1..b3 once each, in order, one room info with the count now (w,
            // the typer, the toggler), no typing signal.
            let mut texts = Vec::new();
            let mut infos = Vec::new();
            let mut resumed = false;
            while texts.len() < 3 {
                match event(&mut w).await {
                    Event::Resumed { .. } => resumed = true,
                    Event::Message(m) if m.name() == "S2C_RoomInfo" => {
                        infos.push(m.downcast::<S2cRoomInfo>().expect("room info"))
                    }
                    Event::Message(m) if m.name() == "S2C_Typing" => {
                        panic!("{enc:?}: a typing signal in the replay")
                    }
                    Event::Message(m) => {
                        texts.push(m.downcast::<S2cMessage>().expect("S2C_Message").text)
                    }
                    Event::SessionLost { reason, .. } => panic!("{enc:?}: session lost: {reason}"),
                    _ => {}
                }
            }
            assert!(resumed, "{enc:?}");
            assert_eq!(texts, ["b1", "b2", "b3"], "{enc:?}");
            assert_eq!(
                infos,
                [S2cRoomInfo {
                    room_id: room,
                    online: 3
                }],
                "{enc:?}: the latest room info, once"
            );
            // The count goes on exactly: the next message is the next one.
            sender.say(room, "c1").await;
            let m: S2cMessage = message(&mut w).await.downcast().expect("S2C_Message");
            assert_eq!(m.text, "c1", "{enc:?}");
            w.close().await.expect("close");
            server.shutdown().await;
        }
    })
    .await;
}

#[tokio::test]
async fn max_msgs_per_sec_answers_the_excess_with_error_9_and_typing_over_5_is_dropped() {
    bounded(TEST_TIMEOUT, async {
        let server = TestServer::start_with(Enc::Json, |c| c.chat.max_msgs_per_sec = 3).await;
        let admin = server.admin.expect("admin");
        let before = scrape(admin).await;
        let room = 9;
        let mut a = server.login(Transport::Tcp, 1).await;
        a.watch(room).await;
        let b = watcher(&server, 2, room).await;
        let (b_typing, b_stop) = count_typing(b);
        // Ten at once: three delivered (the burst), seven refused with code 9.
        let mut burst = Vec::new();
        for i in 0..10 {
            let payload = encode(Enc::Json, &say(room, format!("t{i}")));
            burst.extend(common::Framing::default().frame(&payload));
        }
        a.send_raw(&burst).await.expect("burst");
        let (mut delivered, mut refused) = (Vec::new(), 0);
        for _ in 0..10 {
            match a.recv().await {
                Reply::Message(m) => delivered.push(m.text),
                Reply::Error(e) => {
                    assert_eq!(e.code, ERR_TOO_FAST, "{e:?}");
                    refused += 1;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(delivered.len() + refused, 10);
        assert!((3..=4).contains(&delivered.len()), "{delivered:?}");
        assert_eq!(delivered[..3], ["t0", "t1", "t2"]);
        // Twenty typing signals at once: five reach the other watcher, no answer to a.
        let mut burst = Vec::new();
        for _ in 0..20 {
            let payload = encode(Enc::Json, &C2sTyping { room_id: room });
            burst.extend(common::Framing::default().frame(&payload));
        }
        a.send_raw(&burst).await.expect("typing burst");
        a.expect_quiet().await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let _ = b_stop.send(());
        let typing = b_typing.await.expect("b's reader");
        assert!((5..=6).contains(&typing), "{typing} typing signals passed");
        // Still connected; the limit refills.
        tokio::time::sleep(Duration::from_millis(700)).await;
        a.say(room, "later").await;
        assert_eq!(a.expect_message().await.text, "later");

        let after = scrape(admin).await;
        let moved = |series: &str| value(&after, series) - value(&before, series);
        assert!(moved(r#"longlink_rate_limited_total{msg="C2S_Message"}"#) >= 6.0);
        assert!(moved(r#"longlink_rate_limited_total{msg="C2S_Typing"}"#) >= 14.0);
        server.shutdown().await;
    })
    .await;
}
