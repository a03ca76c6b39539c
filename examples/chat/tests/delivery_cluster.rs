//! The delivery classes across gates (issue 24), over a real `nats-server`: one chat node and
//! two gates (the cluster walk-through's layout), a resumable session that speaks the resume
//! protocol itself (`LL_SessionStart`, `LL_Resume` with the `last_seq` it chooses), in JSON
//! and in protobuf.
//!
//! A session away from its socket while the room's watcher count changes, resumed on the
//! other gate (handed over), away again while the count changes there, then handed back:
//! the replay holds every room message once, in order, and **one** `S2C_RoomInfo`, the
//! current one, though the one the first gate kept had been written (to a socket the client
//! lost) on the second; and the numbering stays exact: a resume after the replay gets what
//! was said since, nothing again.
//!
//! A typing signal is one room broadcast (one NATS message on the room's group subject, which
//! every gate delivers to its own watchers), and the sender, on one of the gates, does not
//! get it.

mod common;

use std::time::Duration;

use common::node::{ERR_UNAVAILABLE, Layout, Node, login_until_served};
use common::*;
use futures_util::StreamExt;
use longlink::wire::resume::{
    ACK_ID, LlResume, LlResumed, LlSession, LlSessionStart, RESUME_ID, RESUMED_ID, SESSION_ID,
    SESSION_START_ID,
};
use longlink_chat::msg::{C2sTyping, C2sUpdateWatchRoom, C2sUserLogin, S2cRoomInfo, S2cTyping};
use longlink_testkit::{NatsServer, envelope};

/// Longer than the chat's room-info delay (100 ms): a change's `S2C_RoomInfo` is out.
const SETTLE: Duration = Duration::from_millis(400);

impl Wire for LlSessionStart {
    const NAME: &'static str = "LL_SessionStart";
    const ID: u16 = SESSION_START_ID;
}

impl Wire for LlResume {
    const NAME: &'static str = "LL_Resume";
    const ID: u16 = RESUME_ID;
}

/// What the server sends a resumable session, as this test tells it apart.
#[derive(Debug)]
enum Frame {
    Session(String),
    Resumed(LlResumed),
    /// An `LL_Ack` of the client's messages: not numbered.
    Ack,
    /// An application message: numbered (the test sends nothing volatile its way).
    App(Reply),
}

fn frame(enc: Enc, payload: &[u8]) -> Frame {
    fn body<M: prost::Message + serde::de::DeserializeOwned + Default>(
        enc: Enc,
        payload: &[u8],
    ) -> M {
        match enc {
            Enc::Json => {
                let (_, body) = envelope::open_json(payload).expect("a JSON envelope");
                serde_json::from_value(body).expect("the body")
            }
            Enc::Protobuf => {
                let (_, body) = envelope::open_protobuf(payload).expect("an id");
                M::decode(body).expect("the body")
            }
        }
    }
    let id_or_name = match enc {
        Enc::Json => envelope::open_json(payload).expect("a JSON envelope").0,
        Enc::Protobuf => match envelope::open_protobuf(payload).expect("an id").0 {
            SESSION_ID => "LL_Session".into(),
            RESUMED_ID => "LL_Resumed".into(),
            ACK_ID => "LL_Ack".into(),
            _ => String::new(),
        },
    };
    match id_or_name.as_str() {
        "LL_Session" => Frame::Session(body::<LlSession>(enc, payload).token),
        "LL_Resumed" => Frame::Resumed(body(enc, payload)),
        "LL_Ack" => Frame::Ack,
        _ => Frame::App(decode(enc, payload).expect("a chat message")),
    }
}

/// A resumable session's client: its connection, its token, and how many numbered messages
/// it has read (its `last_seq`).
struct Session {
    c: Client,
    token: String,
    seq: u64,
}

impl Session {
    /// The next frame within `within`; `None` if nothing came.
    async fn next(&mut self, within: Duration) -> Option<Frame> {
        let payload = self.c.recv_payload_within(within).await.ok()?;
        let f = frame(self.c.enc, &payload);
        if matches!(f, Frame::App(_)) {
            self.seq += 1;
        }
        Some(f)
    }

    /// The next application message (acknowledgements skipped).
    async fn app(&mut self) -> Reply {
        loop {
            match self.next(TIMEOUT).await.expect("a message") {
                Frame::App(r) => return r,
                Frame::Ack => {}
                other => panic!("expected a chat message, got {other:?}"),
            }
        }
    }

    /// Everything until the connection is quiet for [`SETTLE`].
    async fn until_quiet(&mut self) -> Vec<Reply> {
        let mut got = Vec::new();
        while let Some(f) = self.next(SETTLE).await {
            match f {
                Frame::App(r) => got.push(r),
                Frame::Ack => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        got
    }

    /// Resumes on a new connection to `gate`, saying it has `self.seq`: the `LL_Resumed`.
    async fn resume(&mut self, gate: &Node) -> LlResumed {
        let mut c = connect(gate, self.c.enc).await;
        c.send(&LlResume {
            token: self.token.clone(),
            last_seq: self.seq,
        })
        .await;
        self.c = c;
        loop {
            match self.next(TIMEOUT).await.expect("an answer to LL_Resume") {
                Frame::Resumed(r) => {
                    self.token = r.token.clone();
                    return r;
                }
                Frame::Ack => {}
                other => panic!("expected LL_Resumed, got {other:?}"),
            }
        }
    }

    /// Drops the connection (a FIN: the session waits for its client), and lets the gate
    /// see it.
    async fn away(&mut self) {
        self.c.shutdown_write().await;
        let _ = self.c.recv_payload_within(SETTLE).await;
        tokio::time::sleep(SETTLE).await;
    }
}

async fn connect(gate: &Node, enc: Enc) -> Client {
    let mut c = Client::connect(Transport::Tcp, enc, gate.tcp.expect("a gate")).await;
    c.presence = true;
    c
}

/// A plain client of `gate` logged in as `uid`.
async fn login(gate: &Node, enc: Enc, uid: u64) -> Client {
    let mut c = Client::connect(Transport::Tcp, enc, gate.tcp.expect("a gate")).await;
    login_until_served(&mut c, uid).await;
    c
}

/// Moves the toggler into `room` (room messages it got meanwhile skipped) and waits until
/// the count has gone out.
async fn toggle(toggler: &mut Client, room: u64) {
    toggler.send(&C2sUpdateWatchRoom { room_id: room }).await;
    while !matches!(toggler.recv().await, Reply::Watch(_)) {}
    tokio::time::sleep(SETTLE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_handed_over_between_gates_replays_the_current_room_info_once() {
    let Some(nats) = NatsServer::start_or_skip() else {
        return;
    };
    bounded(Duration::from_secs(120), async {
        for enc in [Enc::Json, Enc::Protobuf] {
            let tweak = |c: &mut longlink_chat::Config| {
                c.gate.encoding = enc.config();
                // At the end, the session left on g1 ends with it (no drain to wait for).
                c.gate.drain_timeout = Duration::ZERO;
            };
            let l = Layout {
                chat: Node::start_with(&nats, "chat", tweak).await,
                g1: Node::start_with(&nats, "gate", tweak).await,
                g2: Node::start_with(&nats, "gate", tweak).await,
            };
            let room = 31;

            // A resumable session on g1, logged in, watching the room.
            let mut c = connect(&l.g1, enc).await;
            c.send(&LlSessionStart {}).await;
            let payload = c.recv_payload().await;
            let Frame::Session(session) = frame(enc, &payload) else {
                panic!("{enc:?}: expected LL_Session");
            };
            let mut w = Session {
                c,
                token: session,
                seq: 0,
            };
            let mut sent = 0;
            loop {
                w.c.send(&C2sUserLogin {
                    token: token(100),
                    login_plat: 1,
                })
                .await;
                sent += 1;
                match w.app().await {
                    Reply::Login(answer) if answer.ret == 1 => break,
                    Reply::Error(e) if e.code == ERR_UNAVAILABLE => {
                        tokio::time::sleep(Duration::from_millis(50)).await
                    }
                    other => panic!("{enc:?}: login: {other:?}"),
                }
            }
            w.c.send(&C2sUpdateWatchRoom { room_id: room }).await;
            sent += 1;
            assert!(matches!(w.app().await, Reply::Watch(_)), "{enc:?}");
            let mut other = login(&l.g1, enc, 103).await;
            other.watch(room).await;
            let mut toggler = login(&l.g2, enc, 101).await;
            let mut sender = login(&l.g2, enc, 102).await;
            toggle(&mut toggler, room).await;
            w.until_quiet().await; // its room infos (2, then 3 watchers)

            // Away from g1: the count changes four times (3 at the end), the room talks.
            w.away().await;
            for target in [room + 1, room, room + 1, room] {
                toggle(&mut toggler, target).await;
            }
            sender.say(room, "b1").await;
            let _ = sender.expect_message().await;
            tokio::time::sleep(SETTLE).await;

            // Resumed on g2 (handed over), and lost again before anything after LL_Resumed
            // arrived: the client says it has none of it.
            let resumed = w.resume(&l.g2).await;
            assert_eq!(resumed.last_seq, sent, "{enc:?}: client messages handled");
            let had = w.seq;
            w.away().await;
            w.seq = had;

            // Away from g2: the count changes again (2: w and `other`), the room talks.
            toggle(&mut toggler, room + 1).await;
            sender.say(room, "b2").await;
            let _ = sender.expect_message().await;
            tokio::time::sleep(SETTLE).await;

            // Back on g1: b1, b2, once each, in order, and one room info, the current one.
            let resumed = w.resume(&l.g1).await;
            assert_eq!(resumed.last_seq, sent, "{enc:?}");
            let replay = w.until_quiet().await;
            let texts: Vec<_> = (replay.iter())
                .filter_map(|r| match r {
                    Reply::Message(m) => Some(m.text.as_str()),
                    _ => None,
                })
                .collect();
            let infos: Vec<_> = (replay.iter())
                .filter_map(|r| match r {
                    Reply::RoomInfo(i) => Some(*i),
                    _ => None,
                })
                .collect();
            assert_eq!(texts, ["b1", "b2"], "{enc:?}: {replay:?}");
            assert_eq!(
                infos,
                [S2cRoomInfo {
                    room_id: room,
                    online: 2
                }],
                "{enc:?}: the current room info, once: {replay:?}"
            );
            assert_eq!(replay.len(), 3, "{enc:?}: {replay:?}");

            // The numbering is exact: away once more, a resume with everything read gets
            // what was said since, and nothing again.
            w.away().await;
            sender.say(room, "c1").await;
            let _ = sender.expect_message().await;
            w.resume(&l.g1).await;
            let after = w.until_quiet().await;
            assert!(
                matches!(&after[..], [Reply::Message(m)] if m.text == "c1"),
                "{enc:?}: {after:?}"
            );
            drop((w, other, toggler, sender));
            l.shutdown().await;
        }
    })
    .await;
}

/// The next `S2C_Typing` `c` gets within [`SETTLE`] (room infos skipped).
async fn typing(c: &mut Client) -> Option<S2cTyping> {
    loop {
        match c.try_recv(SETTLE).await {
            Ok(Reply::Typing(t)) => return Some(t),
            Ok(Reply::RoomInfo(_)) => {}
            Ok(other) => panic!("{c:?}: {other:?}"),
            Err(_) => return None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typing_signal_is_one_room_broadcast_that_leaves_the_sender_out() {
    let Some(nats) = NatsServer::start_or_skip() else {
        return;
    };
    bounded(Duration::from_secs(60), async {
        let l = Layout::start(&nats).await;
        let room = 41;
        let mut typer = login(&l.g1, Enc::Json, 201).await;
        let mut watchers = vec![
            login(&l.g1, Enc::Json, 202).await,
            login(&l.g2, Enc::Json, 203).await,
            login(&l.g2, Enc::Json, 204).await,
        ];
        for c in watchers.iter_mut().chain([&mut typer]) {
            c.watch(room).await;
            c.presence = true;
        }
        tokio::time::sleep(SETTLE).await;
        for c in watchers.iter_mut().chain([&mut typer]) {
            assert_eq!(typing(c).await, None); // the room infos, read
        }
        let bus = l
            .chat
            .cluster
            .as_ref()
            .expect("a cluster node")
            .nats()
            .clone();
        let mut groups = bus.subscribe("longlink.grp.>").await.expect("subscribe");
        bus.flush().await.expect("flush");

        typer.send(&C2sTyping { room_id: room }).await;
        for w in &mut watchers {
            let t = typing(w).await;
            assert_eq!(
                t,
                Some(S2cTyping {
                    room_id: room,
                    uid: 201
                }),
                "{w:?}"
            );
        }
        assert_eq!(typing(&mut typer).await, None, "the sender's own signal");
        let mut broadcasts = 0;
        while let Ok(Some(m)) = tokio::time::timeout(SETTLE, groups.next()).await {
            if m.payload.starts_with(br#"{"S2C_Typing""#) {
                broadcasts += 1;
            }
        }
        assert_eq!(
            broadcasts, 1,
            "one room broadcast for 3 watchers on 2 gates"
        );
        drop((typer, watchers));
        l.shutdown().await;
    })
    .await;
}
