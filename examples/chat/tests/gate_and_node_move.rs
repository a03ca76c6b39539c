//! A rolling deploy that stops a gate and a chat node at the same time, over a real
//! `nats-server` on 127.0.0.1: two gates and two chat nodes in this process, resumable clients
//! (`longlink_client::ResumableClient`, each knowing both gates) logged in on the first gate
//! and bound to the first chat node, watching one room, saying room and private messages.
//! The first gate and the first chat node stop together while they talk: the gate drains
//! (`LL_Move`) and its sessions resume on the other gate while the chat node hands their
//! bindings to the other chat node. The users stay logged in and in the room (their chat
//! state arrives on the second chat node, for their connections on the second gate): no
//! `S2C_Error`, no lost session; every room message reaches every watcher once, each
//! sender's in order, and every private message its receiver once.
//! (`crates/longlink/tests/move_handover.rs` forces each order of the two moves.)

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::client::{chat_messages, encoding, is_presence};
use common::node::{Node, login_until_served};
use common::{Enc, TEST_TIMEOUT, TIMEOUT, bounded, token};
use longlink_chat::msg::{
    C2sMessage, C2sUpdateWatchRoom, C2sUserLogin, S2cError, S2cMessage, S2cUpdateWatchRoom,
    S2cUserLogin,
};
use longlink_client::{ClientConfig, Event, ResumableClient, ResumeOptions, Transport};
use longlink_testkit::NatsServer;

/// The room every user watches.
const ROOM: u64 = 6;
/// Users on the gate that stops, and on the one that stays (all bound to the chat node
/// that stops).
const ON_STOPPING: usize = 8;
const ON_STAYING: usize = 2;
/// Rounds of traffic: before the stop, and from the stop on (a round every 30 ms).
const BEFORE: usize = 4;
const AFTER: usize = 30;

/// What one client heard: its messages' texts in order, the errors, and what it was told
/// of its connection.
#[derive(Default, Debug)]
struct Heard {
    texts: Vec<String>,
    errors: Vec<(i32, String)>,
    other: Vec<String>,
    moving: u32,
    resumed: u32,
    lost: Vec<String>,
}

/// A resumable client, logged in and watching [`ROOM`]; a task reads its events.
struct User {
    uid: u64,
    sender: longlink_client::ResumableSender,
    heard: Arc<Mutex<Heard>>,
    reader: tokio::task::JoinHandle<()>,
}

async fn expect<T: 'static>(c: &mut ResumableClient) -> T {
    loop {
        let event = tokio::time::timeout(TIMEOUT, c.next())
            .await
            .expect("an event in time")
            .expect("next");
        if let Event::Message(m) = event {
            if is_presence(&m) {
                continue;
            }
            let name = m.name().to_owned();
            return m.downcast::<T>().unwrap_or_else(|_| panic!("got {name}"));
        }
    }
}

impl User {
    async fn join(gate: &Node, other: &Node, uid: u64, enc: Enc) -> User {
        let config = ClientConfig {
            addr: gate.tcp.expect("a gate").to_string(),
            transport: Transport::Tcp,
            encoding: encoding(enc),
            connect_timeout: Duration::from_secs(2),
            ..ClientConfig::default()
        };
        let options = ResumeOptions {
            max_backoff: Duration::from_millis(300),
            addresses: vec![other.tcp.expect("a gate").to_string()],
            ..ResumeOptions::default()
        };
        let mut c = tokio::time::timeout(
            TIMEOUT,
            ResumableClient::connect(config, chat_messages(), options),
        )
        .await
        .expect("connect in time")
        .expect("a resumable session");
        let login = C2sUserLogin {
            token: token(uid),
            login_plat: 1,
        };
        c.send(&login).await.expect("send login");
        let answer: S2cUserLogin = expect(&mut c).await;
        assert_eq!((answer.ret, answer.uid), (1, uid), "{answer:?}");
        c.send(&C2sUpdateWatchRoom { room_id: ROOM })
            .await
            .expect("send watch");
        let watched: S2cUpdateWatchRoom = expect(&mut c).await;
        assert_eq!(watched.room_id, ROOM);
        let heard = Arc::new(Mutex::new(Heard::default()));
        let sender = c.sender();
        let reader = tokio::spawn(read(c, Arc::clone(&heard)));
        User {
            uid,
            sender,
            heard,
            reader,
        }
    }
}

/// Reads every event of `c` into `heard` until the client ends.
async fn read(mut c: ResumableClient, heard: Arc<Mutex<Heard>>) {
    while let Ok(event) = c.next().await {
        let mut h = heard.lock().unwrap_or_else(|p| p.into_inner());
        match event {
            Event::Message(m) if is_presence(&m) => {}
            Event::Message(m) => {
                let name = m.name().to_owned();
                match m.downcast::<S2cMessage>() {
                    Ok(m) => h.texts.push(m.text),
                    Err(m) => match m.downcast::<S2cError>() {
                        Ok(e) => h.errors.push((e.code, e.msg)),
                        Err(_) => h.other.push(name),
                    },
                }
            }
            Event::Moving { .. } => h.moving += 1,
            Event::Resumed { .. } => h.resumed += 1,
            Event::SessionLost { reason, .. } => h.lost.push(reason),
            _ => {}
        }
    }
}

/// One message sent: to the room (`to: None`) or privately to user `to`.
struct Sent {
    from: usize,
    to: Option<usize>,
    text: String,
}

/// A round: even users say something to the room, odd ones tell the next user privately.
async fn round(r: usize, users: &[User], sent: &mut Vec<Sent>) {
    let n = users.len();
    for (i, u) in users.iter().enumerate() {
        let text = format!("round {r} from {}", u.uid);
        let (msg, to) = if i % 2 == 0 {
            (
                C2sMessage {
                    room_id: ROOM,
                    to_uid: 0,
                    text: text.clone(),
                },
                None,
            )
        } else {
            let to = (i + 1) % n;
            (
                C2sMessage {
                    room_id: 0,
                    to_uid: users[to].uid,
                    text: text.clone(),
                },
                Some(to),
            )
        };
        u.sender.send(&msg).await.expect("send");
        sent.push(Sent { from: i, to, text });
    }
}

/// What user `j` should hear, in the order each sender sent it.
fn expected(sent: &[Sent], j: usize) -> Vec<&str> {
    sent.iter()
        .filter(|s| s.to.is_none() || s.to == Some(j))
        .map(|s| s.text.as_str())
        .collect()
}

/// A chat node (every node uses the same encoding).
async fn chat(nats: &NatsServer, enc: Enc) -> Node {
    Node::start_with(nats, "chat", |c| c.gate.encoding = enc.config()).await
}

/// A gate whose drain spreads its sessions' moves over 200 ms, the time the chat node's
/// moves take too.
async fn gate(nats: &NatsServer, enc: Enc) -> Node {
    Node::start_with(nats, "gate", |c| {
        c.gate.encoding = enc.config();
        c.gate.drain_spread = Duration::from_millis(200);
        c.gate.drain_timeout = Duration::from_secs(10);
    })
    .await
}

/// Logs probes in on `gate` until `chat` has one of them (it serves the queue group).
async fn until_serving(gate: &Node, chat: &Node, enc: Enc, probes: &mut Vec<common::Client>) {
    while chat.online().await == 0 {
        let addr = gate.tcp.expect("a gate");
        let mut probe = common::Client::connect(common::Transport::Tcp, enc, addr).await;
        login_until_served(&mut probe, 1000 + probes.len() as u64).await;
        probes.push(probe);
        assert!(probes.len() < 100, "the chat node never served");
    }
}

async fn a_gate_and_a_chat_node_stopping_together_keep_their_users(enc: Enc) {
    let Some(nats) = NatsServer::start_or_skip() else {
        return;
    };
    bounded(TEST_TIMEOUT, async {
        let chat1 = chat(&nats, enc).await;
        let stopping = gate(&nats, enc).await;
        let staying = gate(&nats, enc).await;
        let mut probes = Vec::new();
        until_serving(&staying, &chat1, enc, &mut probes).await;
        let mut users = Vec::new();
        for uid in 1..=ON_STOPPING as u64 {
            users.push(User::join(&stopping, &staying, uid, enc).await);
        }
        for uid in 1..=ON_STAYING as u64 {
            let uid = ON_STOPPING as u64 + uid;
            users.push(User::join(&staying, &stopping, uid, enc).await);
        }
        let chat2 = chat(&nats, enc).await;
        until_serving(&staying, &chat2, enc, &mut probes).await;
        let mut sent = Vec::new();
        for r in 0..BEFORE {
            round(r, &users, &mut sent).await;
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        let stop_gate = tokio::spawn(stopping.shutdown());
        let stop_chat = tokio::spawn(chat1.shutdown());
        for r in BEFORE..BEFORE + AFTER {
            round(r, &users, &mut sent).await;
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        stop_gate.await.expect("the gate stops");
        stop_chat.await.expect("the chat node stops");

        // Every user hears everything meant for it, or the deadline passes.
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        let heard_all = |users: &[User]| {
            users.iter().enumerate().all(|(j, u)| {
                let h = u.heard.lock().unwrap_or_else(|p| p.into_inner());
                h.texts.len() >= expected(&sent, j).len() || !h.errors.is_empty()
            })
        };
        while !heard_all(&users) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await; // duplicates, if any, land
        for (j, u) in users.iter().enumerate() {
            let h = u.heard.lock().unwrap_or_else(|p| p.into_inner());
            assert!(h.errors.is_empty(), "user {}: errors {:?}", u.uid, h.errors);
            assert!(
                h.lost.is_empty(),
                "user {}: sessions lost {:?}",
                u.uid,
                h.lost
            );
            assert!(h.other.is_empty(), "user {}: got {:?}", u.uid, h.other);
            if j < ON_STOPPING {
                assert!(h.moving >= 1 && h.resumed >= 1, "user {}: {h:?}", u.uid);
            }
            let mut by_sender: HashMap<usize, Vec<&str>> = HashMap::new();
            for s in sent.iter().filter(|s| s.to.is_none() || s.to == Some(j)) {
                by_sender.entry(s.from).or_default().push(&s.text);
            }
            for (from, want) in by_sender {
                let have: Vec<&str> = h
                    .texts
                    .iter()
                    .map(String::as_str)
                    .filter(|t| want.contains(t))
                    .collect();
                assert_eq!(have, want, "user {}: the messages of user {from}", u.uid);
            }
            assert_eq!(
                h.texts.len(),
                expected(&sent, j).len(),
                "user {}: every message once",
                u.uid
            );
        }
        // Every user is logged in on the chat node that stayed, and so is every probe.
        assert_eq!(chat2.online().await, users.len() + probes.len());
        drop(probes);
        for u in users {
            drop(u.sender);
            u.reader.abort();
        }
        staying.shutdown().await;
        chat2.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gate_and_a_chat_node_stopping_together_keep_their_users_json() {
    a_gate_and_a_chat_node_stopping_together_keep_their_users(Enc::Json).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gate_and_a_chat_node_stopping_together_keep_their_users_protobuf() {
    a_gate_and_a_chat_node_stopping_together_keep_their_users(Enc::Protobuf).await;
}
